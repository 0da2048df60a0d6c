#!/usr/bin/python3
"""sidecar_rss.py: what the sidecar case (1 target x 1000 series every 15 s) costs in
memory and CPU, and which mappings the resident pages belong to.

One nginx serves the target (bench/gen_targets.py) and a remote-write null sink
(`return 204`); scrapeship runs with one job and one remote_write. After WAIT seconds
(default 35: two scrapes and their sends) the script reads /proc/PID/status and sums
Rss per mapping from /proc/PID/smaps; with CPU=N it then measures CPU over N seconds
from /proc/PID/task/*/schedstat (nanosecond resolution).

usage: sidecar_rss.py [BIN] [-- extra scrapeship run args]
env: WAIT [35], CPU [0], TOP [20], RUNS [1], JSON=1 for one JSON line per run, HOLD=S to
keep scrapeship running S more seconds after the figures (its pid is printed),
WRAP="CMD ARGS" to start it under CMD (strace, ltrace...).
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as h  # noqa: E402


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[k] = int(v.split()[0])
    return out


def mappings(pid):
    """Rss in KB per mapped file (or [heap], [stack], anonymous)."""
    per = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                per[name] = per.get(name, 0) + int(parts[1])
    return per


def sched_ns(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended
    return total


def one_run(binary, extra, wait, cpu_s):
    work = h.tmpdir("ss-sidecar-")
    tdir = os.path.join(work, "targets")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_targets.py"), tdir, "1", "1000"], check=True,
                   stdout=subprocess.DEVNULL)
    tport, sport = h.free_port(), h.free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = """%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/body;
  server {
    listen 127.0.0.1:%d;
    root %s/0;
    default_type "text/plain; version=0.0.4; charset=utf-8";
    gzip_static on;
    location / { }
  }
  server {
    listen 127.0.0.1:%d;
    client_max_body_size 64m;
    location / { return 204; }
  }
}
""" % (user, work, work, work, tport, tdir, sport)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(conf)
    h.start(["/usr/sbin/nginx", "-p", work, "-c", os.path.join(work, "nginx.conf"), "-e",
             os.path.join(work, "stderr.log")], os.path.join(work, "nginx.log"))
    h.wait_http("http://127.0.0.1:%d/metrics" % tport, what="nginx")
    cfg = os.path.join(work, "config.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n"
                "scrape_configs:\n  - job_name: sidecar\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n"
                "remote_write:\n  - url: http://127.0.0.1:%d/write\n" % (tport, sport))
    web = h.free_port()
    wrap = os.environ.get("WRAP", "").split()  # e.g. "strace -f -o FILE": figures are then the wrapper's
    p = h.start(wrap + [binary, "run", "--config", cfg, "--web.listen-address", "127.0.0.1:%d" % web,
                 "--log.level", "warn"] + extra, os.path.join(work, "scrapeship.log"))
    time.sleep(wait)
    if p.poll() is not None:
        raise SystemExit("scrapeship exited: " + open(os.path.join(work, "scrapeship.log")).read())
    res = status(p.pid)
    res["maps"] = mappings(p.pid)
    try:
        _, body = h.http_get("http://127.0.0.1:%d/metrics" % web)
        for line in body.decode().splitlines():
            if line.startswith("scrapeship_remote_samples_total"):
                res["samples"] = float(line.split()[-1])
    except Exception as e:
        res["samples_error"] = str(e)
    if cpu_s:
        c0, w0 = sched_ns(p.pid), time.monotonic()
        time.sleep(cpu_s)
        c1, w1 = sched_ns(p.pid), time.monotonic()
        res["cpu_pct"] = (c1 - c0) / 1e9 * 100.0 / (w1 - w0)
        res["VmHWM_end"] = status(p.pid)["VmHWM"]
    if os.environ.get("HOLD"):  # keep it running for a look from outside
        print("pid %d held for %s s" % (p.pid, os.environ["HOLD"]), flush=True)
        time.sleep(float(os.environ["HOLD"]))
    h.stop(p)
    return res


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    binary = os.path.abspath(args[0]) if args else h.BIN
    wait = float(os.environ.get("WAIT", "35"))
    cpu_s = float(os.environ.get("CPU", "0"))
    top = int(os.environ.get("TOP", "20"))
    for _ in range(int(os.environ.get("RUNS", "1"))):
        r = one_run(binary, extra, wait, cpu_s)
        if os.environ.get("JSON"):
            print(json.dumps(r))
            continue
        print("VmHWM %d KB  VmRSS %d KB  RssAnon %d KB  RssFile %d KB  threads %d  samples %s%s" % (
            r["VmHWM"], r["VmRSS"], r["RssAnon"], r["RssFile"], r["Threads"], r.get("samples"),
            "  CPU %.4f%% (HWM at end %d KB)" % (r["cpu_pct"], r["VmHWM_end"]) if "cpu_pct" in r else ""))
        maps = sorted(r["maps"].items(), key=lambda kv: -kv[1])
        print("  " + ", ".join("%s %d" % kv for kv in maps[:top]))


if __name__ == "__main__":
    main()
