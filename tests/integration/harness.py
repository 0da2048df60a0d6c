"""Shared helpers for scrapeship's integration tests.

Starts real servers (Prometheus 2.42, nginx, prometheus-node-exporter) on loopback
ports, each in its own temp directory, and stops them all when the test exits. Every
wait is bounded. Only the Python standard library is used, so the tests run on
Debian's /usr/bin/python3 as installed by scripts/install-deps.sh.
"""
import atexit
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.environ.get("SS_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SCRAPESHIP_BIN") or os.path.join(REPO, "build", "scrapeship")
TOOLS = os.environ.get("SS_TOOLS_DIR") or os.path.join(REPO, "build", "tools")

_procs = []
_dirs = []


def _cleanup():
    for p in reversed(_procs):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=10)
            except Exception:
                p.kill()
    for d in _dirs:
        if os.environ.get("SS_KEEP_TMP"):
            print("kept", d, file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def tmpdir(prefix="ss-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)  # nginx workers may run as another user
    _dirs.append(d)
    return d


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log_path, env=None, stdout=None):
    """Start a process; its stderr (and stdout unless given) go to log_path."""
    log = open(log_path, "wb")
    p = subprocess.Popen(args, stdout=stdout if stdout is not None else log, stderr=log,
                         env=env, start_new_session=True)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=30):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def http_get(url, timeout=5, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, timeout=60, what=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            status, _ = http_get(url, timeout=2)
            if status == 200:
                return
        except Exception as e:  # connection refused while starting
            last = e
        time.sleep(0.2)
    raise RuntimeError("%s not ready at %s after %ss: %s" % (what or "server", url, timeout, last))


def start_nginx(root, types=None):
    """Serve directory `root` on a loopback port. types: {extension: content-type}."""
    d = tmpdir("ss-nginx-")
    port = free_port()
    types = types or {"prom": "text/plain; version=0.0.4; charset=utf-8",
                      "om": "application/openmetrics-text; version=1.0.0; charset=utf-8",
                      "txt": "text/plain"}
    type_lines = "\n".join("    %s %s;" % ('"%s"' % v, k) for k, v in types.items())
    user = "user root;" if os.geteuid() == 0 else ""
    conf = """%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  types {
%s
  }
  default_type application/octet-stream;
  gzip on;
  gzip_types text/plain application/openmetrics-text;
  gzip_min_length 256;
  server {
    listen 127.0.0.1:%d;
    root %s;
  }
}
""" % (user, d, d, d, d, d, d, d, type_lines, port, root)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    start(["/usr/sbin/nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "stderr.log")],
          os.path.join(d, "out.log"))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not start: " + open(os.path.join(d, "stderr.log")).read())


def start_node_exporter():
    d = tmpdir("ss-node-")
    port = free_port()
    start(["/usr/bin/prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % port,
           # collectors that shell out or need hardware are noise for a label-set comparison
           "--no-collector.systemd", "--no-collector.hwmon", "--no-collector.thermal_zone",
           "--no-collector.rapl", "--no-collector.powersupplyclass"],
          os.path.join(d, "node.log"))
    wait_http("http://127.0.0.1:%d/metrics" % port, what="node-exporter")
    return port


def start_prometheus(config_text, extra_args=(), port=None):
    """Start Prometheus 2.42 with config_text; returns (base_url, proc, dir)."""
    d = tmpdir("ss-prom-")
    port = port or free_port()
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(config_text)
    args = ["/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
            "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"] + list(extra_args)
    p = start(args, os.path.join(d, "prometheus.log"))
    base = "http://127.0.0.1:%d" % port
    wait_http(base + "/-/ready", timeout=90, what="prometheus")
    return base, p, d


def prom_query(base, q, at=None):
    params = {"query": q}
    if at is not None:
        params["time"] = "%.3f" % at
    url = base + "/api/v1/query?" + urllib.parse.urlencode(params)
    _, body = http_get(url, timeout=30)
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError("query %r failed: %s" % (q, body[:300]))
    return doc["data"]


def prom_series(base, q, at=None):
    """Instant vector -> {frozenset(labels.items()): (value_str, ts_seconds)}."""
    data = prom_query(base, q, at)
    out = {}
    for r in data["result"]:
        out[frozenset(r["metric"].items())] = (r["value"][1], r["value"][0])
    return out


def run_scrapeship(args, timeout=120, env=None):
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def parse_json_lines(text):
    """scrapeship --format json output -> {frozenset(labels): record}."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        out[frozenset(rec["labels"].items())] = rec
    return out


def same_value(a, b):
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return fa == fb


def fmt_labels(ls):
    d = dict(ls)
    name = d.pop("__name__", "")
    return name + "{" + ",".join('%s="%s"' % kv for kv in sorted(d.items())) + "}"


class Check:
    """Counts assertions; prints a closing 'N passed, N failed' line."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, cond, msg):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + msg, flush=True)
        return cond

    def finish(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)
