#!/usr/bin/python3
"""compare.py: scrapeship vs Prometheus agent mode vs vmagent on one workload.

One nginx serves N static targets of M series each (bench/gen_targets.py: histograms,
counters and gauges, gzip_static as Go exporters gzip) on N loopback ports, and is
also the remote-write null sink: `return 204` makes nginx read and discard each body
(ngx_http_discard_request_body), so the sink costs next to nothing, and its access log
records every request's Content-Length and status as an independent byte count.

Each tool then runs alone, one after another, on the same targets with the same
interval, batch size (max_samples_per_send / -remoteWrite.maxRowsPerBlock) and no
metadata, and is measured the same way:
  warm-up:    WARMUP seconds after its first delivered sample;
  window:     DURATION seconds; at both ends utime+stime from /proc/<pid>/stat and the
              tool's own delivered-samples and delivered-bytes counters (read from its
              /metrics just before the window opens and just after it closes, so the
              scrapes of /metrics stay outside the CPU window);
  results:    CPU us per delivered sample, CPU % of one core, samples/s delivered,
              peak RSS (VmHWM from /proc/<pid>/status at the end), wire bytes per
              sample from the tool's counter and from the sink's log.
The sidecar case runs scrapeship (SIDECAR_TOOLS to add peers) on one target of
SIDECAR_M series every SIDECAR_INTERVAL and reports RSS and CPU %, the latter also
from /proc/<pid>/task/*/schedstat (ns resolution; 10 ms ticks are coarse at 0.05%).

Everything listens on 127.0.0.1, every wait has a deadline, and every process started
here is stopped on exit (atexit, SIGTERM, SIGINT). Only the standard library is used.

Environment (defaults in brackets): N [100] targets, M [1000] series per target,
INTERVAL [1] s, DURATION [60] s window, WARMUP [15] s, BATCH [2000], GZIP [1],
TOOLS [scrapeship,prometheus,vmagent], SIDECAR [1], SIDECAR_M [1000],
SIDECAR_INTERVAL [15], SIDECAR_DURATION [60], SIDECAR_WARMUP [20],
SIDECAR_TOOLS [scrapeship], PROFILE [1 if perf works] PROFILE_SECONDS [10],
SCRAPESHIP_BIN [build/scrapeship], PROMETHEUS_BIN, VMAGENT_BIN, NGINX_BIN, OUT [a temp dir].
"""
import atexit
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def env_int(name, default, lo, hi):
    v = int(os.environ.get(name, default))
    if not lo <= v <= hi:
        raise SystemExit("compare: %s must be in [%d, %d], got %d" % (name, lo, hi, v))
    return v


N = env_int("N", 100, 1, 2000)
M = env_int("M", 1000, 1, 1_000_000)
INTERVAL = env_int("INTERVAL", 1, 1, 300)
DURATION = env_int("DURATION", 60, 5, 3600)
WARMUP = env_int("WARMUP", 15, 0, 600)
BATCH = env_int("BATCH", 2000, 1, 100_000)
GZIP = env_int("GZIP", 1, 0, 1)
SIDECAR = env_int("SIDECAR", 1, 0, 1)
SIDECAR_M = env_int("SIDECAR_M", 1000, 1, 1_000_000)
SIDECAR_INTERVAL = env_int("SIDECAR_INTERVAL", 15, 1, 300)
SIDECAR_DURATION = env_int("SIDECAR_DURATION", 60, 5, 3600)
SIDECAR_WARMUP = env_int("SIDECAR_WARMUP", 20, 0, 600)
PROFILE_SECONDS = env_int("PROFILE_SECONDS", 10, 1, 120)
TOOLS = [t for t in os.environ.get("TOOLS", "scrapeship,prometheus,vmagent").split(",") if t]
SIDECAR_TOOLS = [t for t in os.environ.get("SIDECAR_TOOLS", "scrapeship").split(",") if t]
BINS = {
    "scrapeship": os.environ.get("SCRAPESHIP_BIN") or os.path.join(REPO, "build", "scrapeship"),
    "prometheus": os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus"),
    "vmagent": os.environ.get("VMAGENT_BIN", "/usr/bin/vmagent"),
}
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
START_TIMEOUT = 60   # s until a tool answers on its port
FIRST_SEND_TIMEOUT = 90  # s until its first sample is delivered
STOP_TIMEOUT = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

_procs = []


def log(msg):
    print("compare: " + msg, file=sys.stderr, flush=True)


def _cleanup():
    for p in reversed(_procs):
        stop(p)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
signal.signal(signal.SIGINT, lambda *a: sys.exit(130))


def start(args, log_path):
    f = open(log_path, "ab")
    p = subprocess.Popen(args, stdout=f, stderr=f, stdin=subprocess.DEVNULL, start_new_session=True)
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


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape_metrics(port):
    """Text exposition -> {name: sum over label sets}."""
    _, body = http_get("http://127.0.0.1:%d/metrics" % port)
    out = {}
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
        out[m.group(1)] = out.get(m.group(1), 0.0) + v
    return out


def proc_cpu_s(pid):
    """utime+stime of the whole process (live and exited threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of proc(5)


def proc_sched_s(pid):
    """Sum of on-CPU time of the live threads, ns resolution (seconds)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread exited meanwhile
    return total / 1e9


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# ---- tools ---------------------------------------------------------------------------

def scrape_yaml(targets, interval, with_remote, sink_port, tool):
    lines = ["global:", "  scrape_interval: %ds" % interval, "  scrape_timeout: %ds" % interval,
             "scrape_configs:", "  - job_name: bench", "    static_configs:", "      - targets:"]
    lines += ["          - 127.0.0.1:%d" % p for p in targets]
    if with_remote:
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


class Tool:
    """How to start one collector and read its own delivered-samples counters."""

    def __init__(self, name, workdir, sink_port):
        self.name = name
        self.dir = workdir
        self.sink_port = sink_port
        self.port = free_ports(1)[0]

    def args(self, cfg):
        b = BINS[self.name]
        addr = "127.0.0.1:%d" % self.port
        if self.name == "scrapeship":
            return [b, "run", "--config", cfg, "--web.listen-address", addr, "--log.level", "warn"]
        if self.name == "prometheus":
            return [b, "--enable-feature=agent", "--config.file=" + cfg,
                    "--storage.agent.path=" + os.path.join(self.dir, "wal"),
                    "--web.listen-address=" + addr, "--log.level=warn"]
        if self.name == "vmagent":
            return [b, "-promscrape.config=" + cfg,
                    "-remoteWrite.url=http://127.0.0.1:%d/write" % self.sink_port,
                    "-remoteWrite.tmpDataPath=" + os.path.join(self.dir, "vmq"),
                    "-remoteWrite.maxRowsPerBlock=%d" % BATCH,
                    "-httpListenAddr=" + addr, "-loggerLevel=WARN"]
        raise SystemExit("compare: unknown tool " + self.name)

    def counters(self):
        """(samples delivered, compressed bytes delivered) from the tool's /metrics."""
        m = scrape_metrics(self.port)
        if self.name == "scrapeship":
            return m.get("scrapeship_remote_samples_total", 0.0), m.get("scrapeship_remote_bytes_total", 0.0)
        if self.name == "prometheus":
            s = m.get("prometheus_remote_storage_samples_total")
            if s is None:  # older name
                s = m.get("prometheus_remote_storage_succeeded_samples_total", 0.0)
            return s, m.get("prometheus_remote_storage_bytes_total", 0.0)
        # vmagent 1.79 has no delivered-samples counter: block_size_rows (rows, i.e.
        # samples, per block) is observed when a block is built and bytes_sent when its
        # first send starts, retries not counted again. Against this sink, which always
        # answers 204 (sink_non_2xx checks), both equal what was delivered, and the
        # sink's own byte count cross-checks bytes_sent.
        return (m.get("vmagent_remotewrite_block_size_rows_sum", 0.0),
                m.get("vmagent_remotewrite_bytes_sent_total", 0.0))

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


# ---- nginx: targets and sink ------------------------------------------------------------

def start_nginx(workdir, target_dirs, sink_port):
    """target_dirs: {port: directory holding `metrics` and `metrics.gz`}."""
    d = os.path.join(workdir, "nginx")
    os.makedirs(d, exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""
    listen = "\n".join("    listen 127.0.0.1:%d;" % p for p in target_dirs)
    mapping = "\n".join("    %d %s;" % (p, dd) for p, dd in target_dirs.items())
    conf = """%(user)s
worker_processes 1;
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
    default_type "text/plain; version=0.0.4; charset=utf-8";
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
""" % {"user": user, "d": d, "mapping": mapping, "listen": listen, "gzip": "on" if GZIP else "off",
       "sink": sink_port}
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    p = start([NGINX, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "stderr.log")],
              os.path.join(d, "out.log"))
    first = next(iter(target_dirs))
    wait_until(lambda: http_get("http://127.0.0.1:%d/metrics" % first, timeout=2)[0] == 200, 20, "nginx", p)
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


# ---- one measured run ------------------------------------------------------------------

def run_case(case, tool_name, workdir, targets, interval, warmup, duration, sink_port, sink_log,
             profile=False):
    tdir = os.path.join(workdir, "%s-%s" % (case, tool_name))
    os.makedirs(tdir, exist_ok=True)
    tool = Tool(tool_name, tdir, sink_port)
    cfg = os.path.join(tdir, "config.yml")
    with open(cfg, "w") as f:
        f.write(scrape_yaml(targets, interval, tool_name != "vmagent", sink_port, tool_name))
    log("%s/%s: starting (%d targets, every %ds)" % (case, tool_name, len(targets), interval))
    p = start(tool.args(cfg), os.path.join(tdir, "stderr.log"))
    res = {"case": case, "tool": tool_name}
    try:
        wait_until(lambda: tool.counters() is not None, START_TIMEOUT, tool_name, p)
        res["version"] = tool.version()
        wait_until(lambda: tool.counters()[0] > 0, FIRST_SEND_TIMEOUT + interval,
                   tool_name + " first delivery", p, step=0.5)
        time.sleep(warmup)
        if p.poll() is not None:
            raise RuntimeError("%s exited during warm-up" % tool_name)

        s0, b0 = tool.counters()
        c0, sc0, w0, m0 = proc_cpu_s(p.pid), proc_sched_s(p.pid), time.time(), time.monotonic()
        time.sleep(duration)
        c1, sc1, w1, m1 = proc_cpu_s(p.pid), proc_sched_s(p.pid), time.time(), time.monotonic()
        s1, b1 = tool.counters()
        hwm, rss = proc_status_kb(p.pid, "VmHWM"), proc_status_kb(p.pid, "VmRSS")
        # RssAnon is heap and stacks; the rest of RSS is mostly mapped shared libraries
        anon = proc_status_kb(p.pid, "RssAnon")
        with open("/proc/loadavg") as f:  # other work on the machine skews CPU figures
            res["loadavg_1m_end"] = float(f.read().split()[0])
        reqs, sink_bytes, bad = sink_window(sink_log, w0, w1)

        samples, nbytes, wall = s1 - s0, b1 - b0, m1 - m0
        cpu, sched = c1 - c0, sc1 - sc0
        res.update({
            "wall_s": wall, "cpu_s": cpu, "sched_cpu_s": sched, "samples": samples, "bytes": nbytes,
            "samples_per_s": samples / wall,
            "cpu_us_per_sample": cpu * 1e6 / samples if samples else None,
            "cpu_pct": cpu * 100.0 / wall, "sched_cpu_pct": sched * 100.0 / wall,
            "peak_rss_mb": hwm / 1024.0, "rss_mb": rss / 1024.0, "rss_anon_mb": anon / 1024.0,
            "wire_bytes_per_sample": nbytes / samples if samples else None,
            "sink_requests": reqs, "sink_bytes": sink_bytes, "sink_non_2xx": bad,
            "sink_bytes_per_sample": sink_bytes / samples if samples else None,
        })
        if profile:
            res["profile"] = perf_profile(p.pid, tdir)
    except Exception as e:  # one tool failing must not lose the others' figures
        res["error"] = str(e)
        log("%s/%s: %s (log: %s)" % (case, tool_name, e, os.path.join(tdir, "stderr.log")))
    finally:
        rc = stop(p)
        res["exit_code"] = rc
    log("%s/%s: %s" % (case, tool_name, summary(res)))
    return res


def perf_profile(pid, tdir):
    """Top symbols by self time, sampled with perf for PROFILE_SECONDS (after the window,
    so the sampling overhead stays out of the measured figures)."""
    data = os.path.join(tdir, "perf.data")
    try:
        subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-o", data, "-p", str(pid), "--",
                        "sleep", str(PROFILE_SECONDS)], capture_output=True, timeout=PROFILE_SECONDS + 60)
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                              "--sort", "dso,symbol", "--percent-limit", "1.5", "-g", "none"],
                             capture_output=True, timeout=120)
        rows = []
        for line in out.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
            if m:
                # drop the IPC columns perf adds where the PMU gives none ("-  -")
                rows.append((float(m.group(1)), m.group(2), re.sub(r"(\s+-)+\s*$", "", m.group(3))))
        with open(os.path.join(tdir, "perf-top.txt"), "w") as f:
            f.write(out.stdout.decode("utf-8", "replace"))
        return rows[:25]
    except Exception as e:  # profiling is optional
        return [("error", str(e))]


def summary(r):
    if "error" in r:
        return "ERROR " + r["error"]
    return ("%.0f samples/s, %.3f us CPU/sample, %.1f%% CPU, peak RSS %.1f MB, %.1f wire B/sample"
            % (r["samples_per_s"], r["cpu_us_per_sample"] or 0, r["cpu_pct"], r["peak_rss_mb"],
               r["wire_bytes_per_sample"] or 0))


# ---- report ----------------------------------------------------------------------------

def fmt(v, spec):
    return "n/a" if v is None else spec % v


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


def table(results, sidecar=False):
    if sidecar:
        head = ["tool", "samples/s", "CPU % (ticks)", "CPU % (schedstat)", "RSS MB", "anon RSS MB",
                "peak RSS MB", "wire B/sample"]
        rows = [[r["tool"], fmt(r.get("samples_per_s"), "%.0f"), fmt(r.get("cpu_pct"), "%.3f"),
                 fmt(r.get("sched_cpu_pct"), "%.3f"), fmt(r.get("rss_mb"), "%.1f"),
                 fmt(r.get("rss_anon_mb"), "%.1f"), fmt(r.get("peak_rss_mb"), "%.1f"),
                 fmt(r.get("wire_bytes_per_sample"), "%.1f")]
                for r in results]
    else:
        head = ["tool", "samples/s", "CPU us/sample", "CPU %", "peak RSS MB", "anon RSS MB",
                "wire B/sample", "sink B/sample", "load 1m"]
        rows = [[r["tool"], fmt(r.get("samples_per_s"), "%.0f"), fmt(r.get("cpu_us_per_sample"), "%.3f"),
                 fmt(r.get("cpu_pct"), "%.1f"), fmt(r.get("peak_rss_mb"), "%.1f"),
                 fmt(r.get("rss_anon_mb"), "%.1f"),
                 fmt(r.get("wire_bytes_per_sample"), "%.1f"), fmt(r.get("sink_bytes_per_sample"), "%.1f"),
                 fmt(r.get("loadavg_1m_end"), "%.2f")]
                for r in results]
    for r, row in zip(results, rows):
        if "error" in r:
            row[1] = "ERROR"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    for t in set(TOOLS + (SIDECAR_TOOLS if SIDECAR else [])):
        if t not in BINS:
            raise SystemExit("compare: unknown tool %r (scrapeship, prometheus, vmagent)" % t)
        if not os.access(BINS[t], os.X_OK):
            raise SystemExit("compare: %s not found at %s" % (t, BINS[t]))
    if not os.access(NGINX, os.X_OK):
        raise SystemExit("compare: nginx not found at " + NGINX)
    out = os.environ.get("OUT") or tempfile.mkdtemp(prefix="scrapeship-bench-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="work-", dir=out)
    os.chmod(work, 0o755)  # nginx workers may run as another user
    profile = os.environ.get("PROFILE", "1" if shutil.which("perf") else "0") == "1"

    ports = free_ports(N + 2 + (1 if SIDECAR else 0))
    sink_port, target_ports = ports[0], ports[2:2 + N]
    sidecar_port = ports[2 + N] if SIDECAR else None
    tdir = os.path.join(work, "targets")
    log("generating %d targets x %d series" % (N, M))
    subprocess.run([sys.executable, os.path.join(HERE, "gen_targets.py"), tdir, str(N), str(M)],
                   check=True, timeout=600)
    dirs = {p: os.path.join(tdir, str(i)) for i, p in enumerate(target_ports)}
    if SIDECAR:
        sdir = os.path.join(work, "sidecar-target")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_targets.py"), sdir, "1", str(SIDECAR_M), "7"],
                       check=True, timeout=600)
        dirs[sidecar_port] = os.path.join(sdir, "0")
    nginx, sink_log = start_nginx(work, dirs, sink_port)

    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                timeout=20).stdout.decode().strip() or "?"
    except Exception:  # not a git checkout
        commit = "?"
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "commit": commit,
               "workload": {"targets": N, "series_per_target": M, "interval_s": INTERVAL,
                            "nominal_samples_per_s": N * M / INTERVAL, "warmup_s": WARMUP,
                            "window_s": DURATION, "batch": BATCH, "gzip": bool(GZIP)},
               "main": [], "sidecar": []}
    for t in TOOLS:
        results["main"].append(run_case("main", t, work, target_ports, INTERVAL, WARMUP, DURATION,
                                        sink_port, sink_log, profile=profile and t == "scrapeship"))
    if SIDECAR:
        results["sidecar_workload"] = {"targets": 1, "series": SIDECAR_M, "interval_s": SIDECAR_INTERVAL,
                                       "warmup_s": SIDECAR_WARMUP, "window_s": SIDECAR_DURATION}
        for t in SIDECAR_TOOLS:
            results["sidecar"].append(run_case("sidecar", t, work, [sidecar_port], SIDECAR_INTERVAL,
                                               SIDECAR_WARMUP, SIDECAR_DURATION, sink_port, sink_log))
    stop(nginx)

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    mach = results["machine"]
    report = ["date: %s, commit %s" % (results["date"], commit),
              "machine: %d CPUs, %s, %d MB RAM, Linux %s" % (mach["nproc"], mach["cpu"], mach["mem_mb"],
                                                            mach["kernel"]),
              "workload: %d targets x %d series every %ds (%.0f samples/s nominal), batch %d, gzip %s, "
              "warm-up %ds, window %ds" % (N, M, INTERVAL, N * M / INTERVAL, BATCH,
                                           "on" if GZIP else "off", WARMUP, DURATION),
              "versions: " + "; ".join("%s: %s" % (r["tool"], r.get("version", "?")) for r in results["main"]),
              "", table(results["main"])]
    if SIDECAR:
        report += ["", "sidecar: 1 target x %d series every %ds, window %ds" % (SIDECAR_M, SIDECAR_INTERVAL,
                                                                             SIDECAR_DURATION),
                   "", table(results["sidecar"], sidecar=True)]
    for r in results["main"]:
        if r.get("profile"):
            report += ["", "perf, %s, top symbols by self time (%ds after the window):" % (r["tool"], PROFILE_SECONDS)]
            report += ["  %5s%%  %-22s %s" % (row[0], row[1], row[2]) if len(row) == 3 else "  %s" % (row,)
                       for row in r["profile"]]
    text = "\n".join(report) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    print("results: %s" % out)
    if not os.environ.get("KEEP_WORK"):
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any("error" in r for r in results["main"] + results["sidecar"]) else 0


if __name__ == "__main__":
    sys.exit(main())
