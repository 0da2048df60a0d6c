"""Helpers for the durable-delivery (disk queue) tests.

* a Prometheus 2.42 remote-write receiver that can be stopped and started again on
  the same port and data directory (a real outage: connections refused);
* a gate proxy in front of it that can answer 429 with Retry-After for a while and
  records when each request arrived, per client connection;
* N static targets on one nginx, and the comparison of scrapeship's --tee output with
  what Prometheus stored (every sample, exact timestamps).
"""
import http.client
import http.server
import json
import os
import signal
import socketserver
import threading
import time
import urllib.parse

import harness as h


class Receiver:
    """Prometheus with --web.enable-remote-write-receiver, restartable in place."""

    def __init__(self):
        self.dir = h.tmpdir("ss-recv-")
        self.port = h.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        self.starts = 0

    def start(self):
        self.starts += 1
        args = ["/usr/bin/prometheus", "--config.file=" + os.path.join(self.dir, "prometheus.yml"),
                "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn",
                "--web.enable-remote-write-receiver"]
        self.proc = h.start(args, os.path.join(self.dir, "prometheus-%d.log" % self.starts))
        h.wait_http(self.base + "/-/ready", timeout=120, what="prometheus")

    def stop(self):
        if self.proc:
            h.stop(self.proc, signal.SIGTERM, timeout=60)
            self.proc = None

    def logs(self):
        out = ""
        for i in range(1, self.starts + 1):
            p = os.path.join(self.dir, "prometheus-%d.log" % i)
            if os.path.exists(p):
                out += open(p, errors="replace").read()
        return out


class Gate:
    """A forwarding proxy: mode 'forward', or ('429', retry_after_s). Records arrivals."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.mode = "forward"
        self.retry_after = 0
        self.lock = threading.Lock()
        self.events = []  # (time, client, status)
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                now = time.time()
                client = "%s:%d" % self.client_address
                with gate.lock:
                    mode, ra = gate.mode, gate.retry_after
                if mode == "429":
                    msg = b"Rate exceeded"
                    self.send_response(429)
                    self.send_header("Retry-After", str(ra))
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    with gate.lock:
                        gate.events.append((now, client, 429))
                    return
                conn = http.client.HTTPConnection("127.0.0.1", gate.upstream, timeout=30)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                try:
                    conn.request("POST", self.path, body=body, headers=hdrs)
                    r = conn.getresponse()
                    data = r.read()
                    status = r.status
                except OSError:
                    status, data = 503, b"upstream down"
                finally:
                    conn.close()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with gate.lock:
                    gate.events.append((now, client, status))

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/api/v1/write" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, mode, retry_after=0):
        with self.lock:
            self.mode = mode
            self.retry_after = retry_after


STATIC = "".join("# TYPE t_counter_%d counter\nt_counter_%d_total{k=\"v%d\"} %d\n" % (i, i, i, i) for i in range(10)) + \
    "# TYPE t_gauge gauge\n" + "".join("t_gauge{g=\"%d\"} %d.5\n" % (i, i) for i in range(10))


def start_targets(n):
    root = h.tmpdir("ss-targets-")
    for i in range(n):
        with open(os.path.join(root, "t%d.prom" % i), "w") as f:
            f.write(STATIC)
    return h.start_nginx(root), n


def write_config(path, nginx_port, ntargets, url, storage=None, max_disk=None, extra_queue=""):
    jobs = "".join("""  - job_name: t%d
    metrics_path: /t%d.prom
    static_configs: [{targets: ['127.0.0.1:%d']}]
""" % (i, i, nginx_port) for i in range(ntargets))
    st = ""
    if storage:
        st = "storage:\n  path: %s\n" % storage
        if max_disk:
            st += "  max_disk_bytes: %s\n" % max_disk
    with open(path, "w") as f:
        f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {run: durability}
scrape_configs:
%s
remote_write:
  - url: %s
    name: recv
    queue_config: {batch_send_deadline: 1s, max_backoff: 2s%s}
%s""" % (jobs, url, extra_queue, st))


def run_scrapeship(cfg, tee, log, storage_flag=None, extra=()):
    port = h.free_port()
    args = [h.BIN, "run", "--config", cfg, "--web.listen-address", "127.0.0.1:%d" % port, "--tee", tee,
            "--shutdown-timeout", "20s"] + list(extra)
    if storage_flag:
        args += ["--storage.path", storage_flag]
    proc = h.start(args, log)
    h.wait_http("http://127.0.0.1:%d/healthz" % port, timeout=30, what="scrapeship")
    return proc, port


def read_tee(*paths):
    teed = {}
    for p in paths:
        if not os.path.exists(p):
            continue
        for line in open(p):
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by SIGKILL
            if rec["stale"]:
                continue
            teed.setdefault(frozenset(rec["labels"].items()), {})[rec["timestamp"]] = rec["value"]
    return teed


def stored(base, selector='{run="durability"}', window="2h"):
    data = h.prom_query(base, "%s[%s]" % (selector, window))
    return {frozenset(r["metric"].items()): {int(round(t * 1000)): v for t, v in r["values"]}
            for r in data["result"]}


def compare(teed, got, before_ms=None):
    """Samples teed (optionally only those older than before_ms) missing from got."""
    missing, examples, total = 0, [], 0
    for k, samples in teed.items():
        have = got.get(k, {})
        for ts in samples:
            if before_ms is not None and ts >= before_ms:
                continue
            total += 1
            if ts not in have:
                missing += 1
                if len(examples) < 5:
                    examples.append("%s @%d" % (h.fmt_labels(k), ts))
    return total, missing, examples


def wait_delivered(base, teed, timeout=240, before_ms=None):
    deadline = time.time() + timeout
    while True:
        total, missing, ex = compare(teed, stored(base), before_ms)
        if missing == 0 or time.time() > deadline:
            return total, missing, ex
        time.sleep(3)


def metric_value(port, name, **labels):
    """Sum of a scrapeship self-metric with the given labels."""
    _, body = h.http_get("http://127.0.0.1:%d/metrics" % port)
    total = 0.0
    for line in body.decode().splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, val = line.rpartition(" ")
        if not (head == name or head.startswith(name + "{")):
            continue
        if all('%s="%s"' % kv in head for kv in labels.items()):
            total += float(val)
    return total


def out_of_order_logged(recv):
    logs = recv.logs().lower()
    return "out of order" in logs or "out-of-order" in logs
