#!/usr/bin/python3
"""ab.py: two or more scrapeship builds side by side, at the same time, on one profile.

    /usr/bin/python3 bench/ab.py WORKDIR PROFILE BIN_A BIN_B [BIN...]

WORKDIR is a work directory that `compare.py` kept (KEEP_WORK=1): its
`nginx-PROFILE/` serves the profile's targets and its null sink, and
`PROFILE-scrapeship/config.yml` is scrapeship's config. Each round starts that nginx
and every binary at once (each on its own loopback web port, the order reversed every
other round), waits WARMUP s, then reads each process' CPU (its threads' schedstat, ns)
and its delivered samples and wire bytes (`scrapeship_remote_samples_total`,
`scrapeship_remote_bytes_total`) over DURATION s, and its VmHWM at the end.

Why at the same time: this VM's speed drifts by 10-20% from minute to minute, so runs
one after another differ by more than most changes; binaries running together see the
same drift, and their ratio holds from round to round. They share the two cores with
nginx, so absolute figures come out a little above `compare.py`'s; the peaks of RSS
are each process' own. Knobs: WARMUP (default 8), DURATION (20), ROUNDS (4).
Standard library only; loopback only; every process stops with the round.
"""
import glob
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

PROG = "ab"


def cpu_ns(pid):
    """The process' CPU time: its threads' schedstat (threads may come and go)."""
    total = 0
    for d in glob.glob("/proc/%d/task/*" % pid):
        try:
            with open(d + "/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def counter(port, prefix):
    _, body = B.http_get("http://127.0.0.1:%d/metrics" % port)
    return sum(float(l.split()[-1]) for l in body.decode().splitlines() if l.startswith(prefix))


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    work, prof, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
    warm = B.env_int("WARMUP", 8, 1, 600, PROG)
    dur = B.env_int("DURATION", 20, 1, 3600, PROG)
    rounds = B.env_int("ROUNDS", 4, 1, 100, PROG)
    nd = os.path.join(work, "nginx-" + prof)
    cfg = os.path.join(work, prof + "-scrapeship", "config.yml")
    for p in (nd, cfg, *bins):
        if not os.path.exists(p):
            raise SystemExit("ab: %s: not found" % p)
    B.install_handlers()
    cpu = {b: [] for b in bins}
    hwm = {b: [] for b in bins}
    wire = {b: [] for b in bins}
    for rd in range(rounds):
        ng = B.start(["/usr/sbin/nginx", "-c", os.path.join(nd, "nginx.conf"), "-p", nd], "/dev/null")
        time.sleep(0.5)
        order = bins if rd % 2 == 0 else bins[::-1]
        ports = B.free_ports(len(order))
        procs = []
        try:
            for b, port in zip(order, ports):
                procs.append((b, port, B.start([b, "run", "--config", cfg, "--web.listen-address",
                                                "127.0.0.1:%d" % port, "--log.level", "warn"], "/dev/null")))
            time.sleep(warm)
            first = {b: (counter(pt, "scrapeship_remote_samples_total{"),
                         counter(pt, "scrapeship_remote_bytes_total{"), cpu_ns(p.pid)) for b, pt, p in procs}
            time.sleep(dur)
            for b, pt, p in procs:
                n = counter(pt, "scrapeship_remote_samples_total{") - first[b][0]
                nbytes = counter(pt, "scrapeship_remote_bytes_total{") - first[b][1]
                if n <= 0:
                    raise SystemExit("ab: %s delivered nothing in the window" % b)
                cpu[b].append((cpu_ns(p.pid) - first[b][2]) / 1000.0 / n)
                wire[b].append(nbytes / n)
                hwm[b].append(B.proc_status_kb(p.pid, "VmHWM") / 1024.0)
        finally:
            for _, _, p in procs:
                B.stop(p)
            B.stop(ng)
        B.log(PROG, "round %d: " % rd + "  ".join("%s %.3f" % (b, cpu[b][-1]) for b in bins))
    print("| binary | CPU µs/sample, median | rounds | peak RSS MB, median | wire B/sample |")
    print("| --- | --- | --- | --- | --- |")
    for b in bins:
        print("| %s | %.3f | %s | %.1f | %.2f |" % (b, statistics.median(cpu[b]), " ".join("%.3f" % x for x in cpu[b]),
                                                   statistics.median(hwm[b]), statistics.median(wire[b])))


if __name__ == "__main__":
    main()
