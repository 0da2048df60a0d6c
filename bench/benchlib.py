#!/usr/bin/python3
"""benchlib.py: what compare.py (profiles, ceiling) and churn.py share.

Processes: every process is started in its own session with PR_SET_PDEATHSIG, kept in a
list, and stopped by pid (SIGTERM, then SIGKILL) on exit, SIGTERM or SIGINT. nginx
serves the targets and is the remote-write null sink. Tool knows how to start
scrapeship, the Prometheus agent and vmagent and how to read, from each one's own
/metrics, what it scraped (the offered samples, synthetic series included), what it
delivered, its wire bytes, what it says it dropped and what it holds queued.
measure() is the one measurement every profile and every ceiling step uses.

Only the standard library; everything on 127.0.0.1; every wait has a deadline.
"""
import atexit
import ctypes
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 60       # s until a tool answers on its port
FIRST_SEND_TIMEOUT = 90  # s (plus one interval) until its first sample is delivered
STOP_TIMEOUT = 30
BATCH = 2000             # samples per remote-write request, all tools (env BATCH)

BINS = {
    "scrapeship": os.environ.get("SCRAPESHIP_BIN") or os.path.join(REPO, "build", "scrapeship"),
    "prometheus": os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus"),
    "vmagent": os.environ.get("VMAGENT_BIN", "/usr/bin/vmagent"),
}
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
ALL_TOOLS = ("scrapeship", "prometheus", "vmagent")

# Synthetic series each tool adds per scrape: up, scrape_duration_seconds,
# scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added;
# vmagent 1.79 adds scrape_timeout_seconds too (checked against its
# vmagent_remotewrite_global_rows_pushed_before_relabel_total).
SYNTHETIC = {"scrapeship": 5, "prometheus": 5, "vmagent": 6}

_procs = []


def log(prog, msg):
    print("%s: %s" % (prog, msg), file=sys.stderr, flush=True)


def env_int(name, default, lo, hi, prog="bench"):
    raw = os.environ.get(name, "")
    v = int(raw) if raw.strip() else default
    if not lo <= v <= hi:
        raise SystemExit("%s: %s must be in [%d, %d], got %d" % (prog, name, lo, hi, v))
    return v


def env_list(name, default):
    return [t.strip() for t in os.environ.get(name, default).split(",") if t.strip()]


# ---- processes -------------------------------------------------------------------------

def _cleanup():
    for p in reversed(list(_procs)):
        stop(p)


def install_handlers():
    """Stop everything we started on exit, SIGTERM and SIGINT (sys.exit unwinds the
    `finally` blocks first)."""
    atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))


def _pdeathsig():
    """In the child: get SIGTERM if this Python process dies without cleaning up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # best effort; atexit/signal handlers remain the main path
        pass


def start(args, log_path, env=None):
    f = open(log_path, "ab")
    try:
        p = subprocess.Popen(args, stdout=f, stderr=f, stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=_pdeathsig, env=env)
    finally:
        f.close()
    _procs.append(p)
    return p


def stop(p, timeout=STOP_TIMEOUT):
    """SIGTERM, then SIGKILL after timeout; only our own child, by pid."""
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def free_ports(n):
    """n distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_until(pred, timeout, what, proc=None, step=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s: process exited with %s" % (what, proc.returncode))
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # not listening yet
            last = e
        time.sleep(step)
    raise RuntimeError("%s: not ready after %ds (%s)" % (what, timeout, last))


# ---- /proc --------------------------------------------------------------------------------

def proc_cpu_s(pid):
    """utime+stime of the whole process (live and exited threads), seconds (10 ms ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of proc(5)


def proc_sched(pid):
    """(on-CPU seconds of the live threads at ns resolution, their tids)."""
    total, tids = 0, set()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
            tids.add(tid)
        except (OSError, ValueError, IndexError):
            pass  # the thread exited meanwhile
    return total / 1e9, tids


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree_cpu_s(pid):
    """CPU of a process and its direct children (nginx: master and workers)."""
    total = 0.0
    for q in [pid] + children(pid):
        try:
            total += proc_cpu_s(q)
        except OSError:
            pass
    return total


def machine_busy():
    """(busy jiffies, total jiffies) over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


def loadavg1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem_mb": mem, "kernel": platform.release()}


def git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             timeout=20).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, timeout=20).stdout.decode().strip()
        return (out or "?") + ("+dirty" if dirty else "")
    except Exception:  # not a git checkout
        return "?"


# ---- exposition parsing ---------------------------------------------------------------------

METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def parse_metrics(body):
    """Text exposition -> ({name: sum over label sets}, {name+labels: value})."""
    sums, series = {}, {}
    for line in body.decode("utf-8", "replace").splitlines():
        if not line or line[0] == "#":
            continue
        m = METRIC_LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        sums[m.group(1)] = sums.get(m.group(1), 0.0) + v
        series[m.group(1) + (m.group(2) or "")] = v
    return sums, series


def label_value(series_key, label):
    m = re.search(r'[{,]\s*%s="([^"]*)"' % re.escape(label), series_key)
    return m.group(1) if m else None


# ---- nginx: targets and sink ---------------------------------------------------------------

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def start_nginx(workdir, target_dirs, sink_port, gzip=True, tag="nginx", content_type=TEXT_TYPE):
    """target_dirs: {port: directory holding `metrics` and `metrics.gz`}. Returns (proc,
    sink log path). gzip=True serves metrics.gz to clients that accept gzip
    (gzip_static, as Go exporters gzip), gzip=False always the plain body; every body
    as content_type."""
    d = os.path.join(workdir, tag)
    os.makedirs(d, exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    listen = "\n".join("    listen 127.0.0.1:%d;" % p for p in target_dirs)
    mapping = "\n".join("    %d %s;" % (p, dd) for p, dd in target_dirs.items())
    conf = """%(user)s
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  sendfile on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  log_format sink '$msec $content_length $status';
  map $server_port $target_root {
%(mapping)s
    default /nonexistent;
  }
  server {
%(listen)s
    root $target_root;
    default_type "%(ctype)s";
    gzip_static %(gzip)s;
    location / { }
  }
  # The null sink: `return` discards the request body (nginx reads it off the socket
  # without buffering it), answers 204, and the log keeps every body size.
  server {
    listen 127.0.0.1:%(sink)d;
    client_max_body_size 256m;
    client_body_buffer_size 1m;
    access_log %(d)s/sink.log sink;
    location / { return 204; }
  }
}
""" % {"user": user, "d": d, "mapping": mapping, "listen": listen, "gzip": "on" if gzip else "off", "ctype": content_type,
       "sink": sink_port}
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    p = start([NGINX, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "stderr.log")],
              os.path.join(d, "out.log"))
    first = next(iter(target_dirs))
    wait_until(lambda: http_get("http://127.0.0.1:%d/metrics" % first, timeout=2)[0] == 200, 20, "nginx", p)
    wait_until(lambda: socket.create_connection(("127.0.0.1", sink_port), timeout=2).close() or True, 20,
               "nginx sink", p)
    return p, os.path.join(d, "sink.log")


def sink_window(sink_log, t0, t1):
    """Requests, body bytes and non-2xx answers the sink logged in [t0, t1] (wall)."""
    reqs = nbytes = bad = 0
    try:
        with open(sink_log) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                t = float(parts[0])
                if t0 <= t <= t1:
                    reqs += 1
                    nbytes += int(parts[1]) if parts[1].isdigit() else 0
                    bad += 0 if parts[2].startswith("2") else 1
    except OSError:
        pass
    return reqs, nbytes, bad


def gen_targets(outdir, n, m, seed=1, shape=None):
    args = [sys.executable, os.path.join(HERE, "gen_targets.py"), outdir, str(n), str(m), str(seed)]
    if shape:
        args.append("--shape=" + shape)
    out = subprocess.run(args, check=True, timeout=900, capture_output=True)
    return out.stdout.decode().strip()


# ---- tools ------------------------------------------------------------------------------

def scrape_yaml(tool, interval, sink_port, targets=None, sd_file=None, honor_timestamps=True):
    """The config each tool reads. Prometheus and scrapeship get the same YAML; vmagent
    gets it without remote_write (its strict parser rejects the section; the URL is a
    flag) and without file_sd refresh_interval (not a vmagent field; a flag instead)."""
    lines = ["global:", "  scrape_interval: %ds" % interval, "  scrape_timeout: %ds" % interval,
             "scrape_configs:", "  - job_name: bench"]
    if not honor_timestamps:
        lines += ["    honor_timestamps: false"]
    if sd_file:
        lines += ["    file_sd_configs:", "      - files: ['%s']" % sd_file]
        if tool != "vmagent":
            lines += ["        refresh_interval: 1s"]
    else:
        lines += ["    static_configs:", "      - targets:"]
        lines += ["          - 127.0.0.1:%d" % p for p in targets]
    if tool != "vmagent":
        lines += ["remote_write:",
                  "  - url: http://127.0.0.1:%d/write" % sink_port,
                  "    queue_config:",
                  "      capacity: %d" % max(10000, BATCH * 5),
                  "      max_samples_per_send: %d" % BATCH,
                  "      max_shards: 50",
                  "      batch_send_deadline: 5s",
                  "    metadata_config:",
                  "      send: false"]
    return "\n".join(lines) + "\n"


def write_sd(path, groups):
    """file_sd: [(address, {labels})]; written whole and renamed into place."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump([{"targets": [a], "labels": lab} for a, lab in groups], f)
    os.replace(tmp, path)


class Tool:
    """How to start one collector and read its own counters."""

    def __init__(self, name, workdir, sink_port):
        if name not in BINS:
            raise SystemExit("unknown tool %r (scrapeship, prometheus, vmagent)" % name)
        self.name = name
        self.dir = workdir
        self.sink_port = sink_port
        self.port = free_ports(1)[0]
        self.synthetic = SYNTHETIC[name]

    def args(self, cfg):
        b = BINS[self.name]
        addr = "127.0.0.1:%d" % self.port
        if self.name == "scrapeship":
            return [b, "run", "--config", cfg, "--web.listen-address", addr, "--log.level", "warn"]
        if self.name == "prometheus":
            return [b, "--enable-feature=agent", "--config.file=" + cfg,
                    "--storage.agent.path=" + os.path.join(self.dir, "wal"),
                    "--web.listen-address=" + addr, "--log.level=warn"]
        return [b, "-promscrape.config=" + cfg,
                "-remoteWrite.url=http://127.0.0.1:%d/write" % self.sink_port,
                "-remoteWrite.tmpDataPath=" + os.path.join(self.dir, "vmq"),
                "-remoteWrite.maxRowsPerBlock=%d" % BATCH,
                # the 100k-series target is bigger than the 16 MB default
                "-promscrape.maxScrapeSize=1GB",
                "-promscrape.fileSDCheckInterval=1s",
                "-httpListenAddr=" + addr, "-loggerLevel=WARN"]

    def start(self, cfg_text):
        os.makedirs(self.dir, exist_ok=True)
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(cfg_text)
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.proc = start(self.args(cfg), self.log_path)
        return self.proc

    def raw(self):
        _, body = http_get("http://127.0.0.1:%d/metrics" % self.port)
        return parse_metrics(body)

    def counters(self):
        """{scraped, delivered, bytes, dropped, queued, t}: scraped is what the tool took
        in from its targets, its synthetic series and in-scrape stale markers included
        (what it should ship), counted on the scrape side; delivered and bytes what its
        remote-write side counts as sent; dropped what it says it lost; queued what it
        holds unsent (None where it has no such gauge)."""
        t_a = time.monotonic()
        m, series = self.raw()
        t = (t_a + time.monotonic()) / 2
        g = m.get
        if self.name == "scrapeship":
            return {"t": t,
                    "scraped": g("scrapeship_scrape_samples_scraped_total", 0.0)
                    + self.synthetic * g("scrapeship_scrapes_total", 0.0)
                    + g("scrapeship_scrape_stale_markers_total", 0.0),
                    "delivered": g("scrapeship_remote_samples_total", 0.0),
                    "bytes": g("scrapeship_remote_bytes_total", 0.0),
                    "dropped": g("scrapeship_remote_samples_dropped_total", 0.0)
                    + g("scrapeship_remote_samples_failed_total", 0.0),
                    "queued": g("scrapeship_remote_queue_samples"),
                    "in": g("scrapeship_remote_samples_in_total", 0.0),
                    "scrapes": g("scrapeship_scrapes_total", 0.0),
                    "targets": g("scrapeship_targets", 0.0),
                    "scrape_failures": g("scrapeship_scrape_failures_total", 0.0),
                    "series": series}
        if self.name == "prometheus":
            d = g("prometheus_remote_storage_samples_total")
            if d is None:  # older name
                d = g("prometheus_remote_storage_succeeded_samples_total", 0.0)
            app = g("prometheus_agent_samples_appended_total")
            if app is None:  # server mode
                app = g("prometheus_tsdb_head_samples_appended_total", 0.0)
            return {"t": t, "scraped": app, "delivered": d,
                    "bytes": g("prometheus_remote_storage_bytes_total", 0.0),
                    "dropped": g("prometheus_remote_storage_samples_dropped_total", 0.0)
                    + g("prometheus_remote_storage_samples_failed_total", 0.0),
                    "queued": g("prometheus_remote_storage_samples_pending"),
                    "in": g("prometheus_remote_storage_samples_in_total", 0.0),
                    "targets": g("prometheus_sd_discovered_targets", 0.0)}
        # vmagent 1.79 has no delivered-samples counter: block_size_rows (rows, i.e.
        # samples, per block) is observed when a block is built and bytes_sent when its
        # first send starts, retries not counted again. Against this sink, which always
        # answers 204 (sink_non_2xx checks), both equal what was delivered, and the
        # sink's own byte count cross-checks bytes_sent.
        return {"t": t,
                "scraped": g("vm_promscrape_scraped_samples_sum", 0.0)
                + self.synthetic * g("vm_promscrape_scraped_samples_count", 0.0)
                + g("vm_promscrape_stale_samples_created_total", 0.0),
                "delivered": g("vmagent_remotewrite_block_size_rows_sum", 0.0),
                "bytes": g("vmagent_remotewrite_bytes_sent_total", 0.0),
                # blocks, not samples: vmagent counts whole dropped packets
                "dropped": g("vmagent_remotewrite_packets_dropped_total", 0.0)
                + g("vm_persistentqueue_blocks_dropped_total", 0.0),
                "queued": None,
                "in": g("vmagent_remotewrite_global_rows_pushed_before_relabel_total", 0.0),
                "targets": g("vm_promscrape_active_scrapers", 0.0)}

    def version(self):
        """First line of --version, without scrapeship's library list. Debian's vmagent
        1.79 prints nothing for -version, so then the owning package's version."""
        try:
            flag = "-version" if self.name == "vmagent" else "--version"
            out = subprocess.run([BINS[self.name], flag], capture_output=True, timeout=20)
            text = (out.stdout + out.stderr).decode("utf-8", "replace").strip().splitlines()
            if text:
                return text[0].split(" (")[0]
            owner = subprocess.run(["dpkg-query", "-S", os.path.realpath(BINS[self.name])],
                                   capture_output=True, timeout=20).stdout.decode().split(":")[0]
            ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", owner],
                                 capture_output=True, timeout=20).stdout.decode().strip()
            return "%s %s (Debian package)" % (owner, ver) if owner and ver else "?"
        except Exception as e:  # a version string is nice to have, not required
            return "? (%s)" % e


def wait_ready(tool, interval):
    """Until the tool answers and has delivered its first sample."""
    p = tool.proc
    wait_until(lambda: tool.counters() is not None, START_TIMEOUT, tool.name, p)
    wait_until(lambda: tool.counters()["delivered"] > 0, FIRST_SEND_TIMEOUT + interval,
               tool.name + " first delivery", p, step=0.5)
    tool.ready_at = time.monotonic()


# ---- the measurement ---------------------------------------------------------------------

EDGE_MIN = float(os.environ.get("EDGE", "4"))


def edge_span(interval):
    """Edge averaging span: whole intervals, at least EDGE (4) s."""
    k = 1
    while k * interval < EDGE_MIN:
        k += 1
    return k * interval


def poll_edge(tool, span, npolls=None):
    """Read the counters npolls times, evenly over span seconds; return the means
    (t, scraped, delivered, bytes, in) and the first and last reading.

    Why: every counter is a staircase that climbs once per scrape (scraped) or per
    batch (delivered), with a lag between the two. The mean of a staircase that repeats
    every interval, taken over one whole interval, moves linearly with time; so the
    difference of two such means, whole intervals apart, counts exactly the samples of
    those intervals on either side, whatever the phase of the scrapes and whatever the
    lag. Point readings would be off by up to one interval's samples (1-2% of a 60 s
    window), more than the 0.1% the ceiling has to resolve."""
    npolls = npolls or max(32, min(80, int(span * 4)))
    step = span / float(npolls)
    t_start = time.monotonic()
    reads = []
    for i in range(npolls):
        when = t_start + (i + 0.5) * step
        delay = when - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        reads.append(tool.counters())
    if tool.proc.poll() is not None:
        raise RuntimeError("%s exited (rc %s)" % (tool.name, tool.proc.returncode))
    mean = {k: sum(r[k] for r in reads) / len(reads) for k in ("t", "scraped", "delivered", "bytes", "in")}
    # The settled reading (nothing scraped or delivered since the previous one and until
    # the next) where the tool holds the least. Not one where it has delivered more than
    # it scraped: that is the middle of a push (vmagent, stream-parsing a big target,
    # counts rows out in blocks before it counts the scrape in), not an idle moment.
    key = [(r["scraped"], r["delivered"]) for r in reads]
    settled = [reads[i] for i in range(1, len(reads) - 1)
               if key[i - 1] == key[i] == key[i + 1] and reads[i]["scraped"] >= reads[i]["delivered"]]
    low = min(settled or reads, key=lambda r: r["scraped"] - r["delivered"])
    mean["low"] = {k: low[k] for k in ("t", "scraped", "delivered", "bytes")}
    mean["low"]["settled"] = bool(settled)
    return mean, reads[0], reads[-1]


def measure(tool, interval, warmup, duration, sink_log, nominal_per_s=None, nginx=None):
    """One measurement of a running, delivering tool. The CPU window [t0, t1] is
    `duration` s (a whole number of intervals); the counters come from period means
    taken over `span` s just before t0 and just after t1, so /metrics reads stay out
    of the CPU window. Returns a dict of figures."""
    p = tool.proc
    span = edge_span(interval)
    # The first edge must see the steady pattern: it starts a whole interval after the
    # first delivery at the earliest, so the first scrape's delivery is behind it.
    lead = getattr(tool, "ready_at", 0) + interval - time.monotonic()
    time.sleep(max(0.0, warmup - span, lead))
    if p.poll() is not None:
        raise RuntimeError("%s exited during warm-up (rc %s)" % (tool.name, p.returncode))
    e0, first0, _ = poll_edge(tool, span)
    c0, (sc0, tids0), w0, m0 = proc_cpu_s(p.pid), proc_sched(p.pid), time.time(), time.monotonic()
    b0 = machine_busy()
    n0 = tree_cpu_s(nginx.pid) if nginx else None
    time.sleep(duration)
    c1, (sc1, tids1), w1, m1 = proc_cpu_s(p.pid), proc_sched(p.pid), time.time(), time.monotonic()
    b1 = machine_busy()
    n1 = tree_cpu_s(nginx.pid) if nginx else None
    e1, _, last1 = poll_edge(tool, span)
    hwm, rss = proc_status_kb(p.pid, "VmHWM"), proc_status_kb(p.pid, "VmRSS")
    anon = proc_status_kb(p.pid, "RssAnon")  # heap and stacks; the rest is mostly shared libraries
    reqs, sink_bytes, bad = sink_window(sink_log, w0, w1)

    wall = m1 - m0
    cspan = e1["t"] - e0["t"]
    offered = e1["scraped"] - e0["scraped"]
    delivered = e1["delivered"] - e0["delivered"]
    nbytes = e1["bytes"] - e0["bytes"]
    cpu_ticks = c1 - c0
    # schedstat (ns) is exact when no thread came or went in the window (it only sees
    # live threads); otherwise the 10 ms ticks, which count exited threads too.
    cpu = sc1 - sc0 if tids0 == tids1 else cpu_ticks
    ratio_mean = delivered / offered if offered > 0 else None
    lo0, lo1 = e0["low"], e1["low"]
    ratio_low = ((lo1["delivered"] - lo0["delivered"]) / (lo1["scraped"] - lo0["scraped"])
                 if lo1["scraped"] > lo0["scraped"] else None)
    # Long intervals: a few big steps, which period means resolve only to ~1% with
    # polls 0.25 s apart; but between scrapes the tool is idle and has delivered all it
    # scraped, so the settled reading where it holds the least is exact. Used when the two
    # agree within 1% (a tool that is losing or lagging moves both alike); else, and
    # for short intervals (many small steps, never idle), the means.
    if interval >= 5 and lo0["settled"] and lo1["settled"] and ratio_low is not None and ratio_mean is not None \
            and abs(ratio_low - ratio_mean) <= 0.01:
        ratio, method = ratio_low, "least-held reading"
    else:
        ratio, method = ratio_mean, "period means"
    deliv_rate = delivered / cspan if cspan > 0 else 0.0
    offer_rate = offered / cspan if cspan > 0 else 0.0
    busy = (b1[0] - b0[0]) / float(max(1, b1[1] - b0[1]))  # share of all CPUs busy
    res = {
        "wall_s": wall, "counter_span_s": cspan, "edge_span_s": span,
        "offered": offered, "delivered": delivered, "bytes": nbytes,
        "offered_per_s": offer_rate, "samples_per_s": deliv_rate,
        "delivered_ratio": ratio, "ratio_method": method,
        "delivered_ratio_mean": ratio_mean, "delivered_ratio_low": ratio_low,
        "nominal_per_s": nominal_per_s,
        "offered_vs_nominal": offer_rate / nominal_per_s if nominal_per_s else None,
        "tool_dropped": last1["dropped"] - first0["dropped"],
        "queued_end": last1.get("queued"),
        "in_minus_scraped": (e1["in"] - e0["in"]) - offered,
        "cpu_s": cpu, "cpu_ticks_s": cpu_ticks, "cpu_source": "schedstat" if tids0 == tids1 else "ticks",
        "cpu_pct": cpu * 100.0 / wall,
        "cpu_us_per_sample": cpu * 1e6 / (deliv_rate * wall) if deliv_rate > 0 else None,
        "machine_busy_pct": busy * 100.0 * (os.cpu_count() or 1),  # in % of one core, all cores
        "machine_busy_share": busy,
        "nginx_cpu_pct": (n1 - n0) * 100.0 / wall if nginx else None,
        "peak_rss_mb": hwm / 1024.0, "rss_mb": rss / 1024.0, "rss_anon_mb": anon / 1024.0,
        "wire_bytes_per_sample": nbytes / delivered if delivered > 0 else None,
        "sink_requests": reqs, "sink_bytes": sink_bytes, "sink_non_2xx": bad,
        "sink_bytes_per_sample": sink_bytes / (deliv_rate * wall) if deliv_rate > 0 else None,
        "loadavg_1m_end": loadavg1(),
    }
    # edge means without the per-read series maps
    res["edges"] = [{k: v for k, v in e.items()} for e in (e0, e1)]
    return res


def fmt(v, spec):
    return "n/a" if v is None else spec % v


def fit_slope(xs, ys):
    """Least-squares slope and intercept."""
    n = len(xs)
    if n < 2:
        return 0.0, ys[0] if ys else 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return b, my - b * mx
