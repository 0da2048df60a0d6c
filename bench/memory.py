#!/usr/bin/python3
"""memory.py: scrapeship's memory per active series (issue #12).

One nginx serves MEM_MAX_TARGETS targets of MEM_M series (MEM_SHAPE: service, the
default, ksm for kube-state-metrics' pods, or cadvisor for the kubelets' cAdvisor,
scraped with honor_timestamps: false; gzip) and is
the remote-write null sink. For each step of MEM_STEPS (active series; default 0,
100000, 300000) a fresh scrapeship scrapes steps/MEM_M of those targets every
MEM_INTERVAL s (default 1, as the 10x10k profile) for MEM_WARMUP s after its first
delivery, then VmRSS, RssAnon, RssFile and VmHWM are read MEM_READS times, one
interval apart, with the remote's queued bytes (scrapeship_remote_queue_bytes, the
part of the heap that is data in flight, not series state). The table gives each
step's median, and bytes per added active series between consecutive steps (VmRSS
difference over series difference): what the series state costs, since everything
else (libraries, threads, buffers) is in both readings.

Results: $OUT/memory.md and $OUT/memory.json (OUT defaults to a new /tmp directory).
Standard library only; everything on 127.0.0.1; every process stopped on exit.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

PROG = "memory"
M = B.env_int("MEM_M", 10_000, 1, 1_000_000, PROG)
INTERVAL = B.env_int("MEM_INTERVAL", 1, 1, 3600, PROG)
WARMUP = B.env_int("MEM_WARMUP", 15, 0, 3600, PROG)
READS = B.env_int("MEM_READS", 5, 1, 1000, PROG)
STEPS = [int(x) for x in B.env_list("MEM_STEPS", "0,100000,300000")]
SHAPE = os.environ.get("MEM_SHAPE", "service").strip()
if SHAPE not in ("service", "ksm", "cadvisor"):
    raise SystemExit("memory: MEM_SHAPE must be service, ksm or cadvisor")


def log(msg):
    B.log(PROG, msg)


def status(pid):
    return {k: B.proc_status_kb(pid, k) for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}


def one_step(work, ports, sink_port, nseries):
    ntargets = (nseries + M - 1) // M
    tool = B.Tool("scrapeship", os.path.join(work, "step-%d" % nseries), sink_port)
    tool.start(B.scrape_yaml("scrapeship", INTERVAL, sink_port, targets=ports[:ntargets],
                             honor_timestamps=SHAPE != "cadvisor"))
    try:
        if ntargets:
            B.wait_ready(tool, INTERVAL)
        else:
            B.wait_until(lambda: tool.counters() is not None, B.START_TIMEOUT, "scrapeship", tool.proc)
        time.sleep(WARMUP)
        reads = []
        for _ in range(READS):
            st = status(tool.proc.pid)
            st["queue_bytes"] = tool.raw()[0].get("scrapeship_remote_queue_bytes", 0)
            reads.append(st)
            time.sleep(INTERVAL)
    finally:
        B.stop(tool.proc)
    med = {k: statistics.median(r[k] for r in reads if r[k] is not None) for k in reads[0]}
    med["series"] = ntargets * M
    med["targets"] = ntargets
    log("%d active series (%d targets): VmRSS %.1f MB (anon %.1f, file %.1f), VmHWM %.1f MB, queued %.1f MB"
        % (med["series"], ntargets, med["VmRSS"] / 1024, med["RssAnon"] / 1024, med["RssFile"] / 1024,
           med["VmHWM"] / 1024, med["queue_bytes"] / 2**20))
    return med


def main():
    B.install_handlers()
    out = os.environ.get("OUT") or tempfile.mkdtemp(prefix="scrapeship-memory-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="scrapeship-memory-work-")
    try:
        return run(out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(out, work):
    maxt = max(1, (max(STEPS) + M - 1) // M)
    log("generating %d targets x %d series" % (maxt, M))
    B.gen_targets(os.path.join(work, "targets"), maxt, M, 1, shape=SHAPE)
    dirs = [os.path.join(work, "targets", str(i)) for i in range(maxt)]
    ports = B.free_ports(maxt + 1)
    sink_port, tports = ports[0], ports[1:]
    nginx, _ = B.start_nginx(work, dict(zip(tports, dirs)), sink_port)
    try:
        rows = [one_step(work, tports, sink_port, n) for n in STEPS]
    finally:
        B.stop(nginx)
    lines = ["| active series | targets | VmRSS MB | RssAnon MB | RssFile MB | VmHWM MB | queued MB | "
             "bytes per added series (VmRSS) |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        per = ""
        if i and r["series"] > rows[i - 1]["series"]:
            per = "%.0f" % ((r["VmRSS"] - rows[i - 1]["VmRSS"]) * 1024.0 / (r["series"] - rows[i - 1]["series"]))
            r["bytes_per_series"] = float(per)
        lines.append("| %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s |"
                     % (r["series"], r["targets"], r["VmRSS"] / 1024, r["RssAnon"] / 1024, r["RssFile"] / 1024,
                        r["VmHWM"] / 1024, r["queue_bytes"] / 2**20, per))
    head = ("memory: scrapeship %s, %d-series targets (%s shape, gzip) every %ds, %ds after the first "
            "delivery, median of %d reads\n\n" % (B.git_commit(), M, SHAPE, INTERVAL, WARMUP, READS))
    with open(os.path.join(out, "memory.md"), "w") as f:
        f.write(head + "\n".join(lines) + "\n")
    with open(os.path.join(out, "memory.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(head + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
