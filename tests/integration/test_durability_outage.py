"""Durable delivery: the receiver (a real Prometheus 2.42) is down for 3 minutes
while 5 targets are scraped every second. After it returns, Prometheus holds every
sample scraped during the outage (per series, exactly the teed timestamps), in order:
no out-of-order rejections, nothing dropped.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import durability as d  # noqa: E402

OUTAGE_S = int(os.environ.get("SS_OUTAGE_SECONDS", "180"))


def main():
    chk = h.Check("durability_outage")
    nginx, n = d.start_targets(5)
    recv = d.Receiver()
    recv.start()
    work = h.tmpdir("ss-dur-outage-")
    cfg, tee, log = os.path.join(work, "ss.yml"), os.path.join(work, "tee.json"), os.path.join(work, "ss.log")
    d.write_config(cfg, nginx, n, recv.base + "/api/v1/write", storage=os.path.join(work, "queue"))
    proc, port = d.run_scrapeship(cfg, tee, log)
    time.sleep(8)
    recv.stop()
    t_down = time.time()
    print("receiver down for %ds" % OUTAGE_S, flush=True)
    time.sleep(OUTAGE_S)
    spilled = d.metric_value(port, "scrapeship_remote_disk_samples")
    recv.start()
    print("receiver back after %.0fs; %d samples on disk" % (time.time() - t_down, spilled), flush=True)
    time.sleep(5)
    chk.ok(d.metric_value(port, "scrapeship_scrapes_total") >= 5 * (OUTAGE_S + 8) * 0.9,
           "scraping slowed down during the outage")
    rc = h.stop(proc, signal.SIGTERM, timeout=90)
    chk.ok(rc == 0, "scrapeship exit %s" % rc)
    teed = d.read_tee(tee)
    total, missing, ex = d.wait_delivered(recv.base, teed, timeout=120)
    print("%d samples of %d series teed; %d missing" % (total, len(teed), missing))
    chk.ok(total > 5 * OUTAGE_S * 20, "too few samples teed: %d" % total)
    chk.ok(missing == 0, "%d samples not delivered: %s" % (missing, ex))
    chk.ok(spilled > 0, "nothing was on disk during the outage")
    got = d.stored(recv.base)
    extra = sum(len(set(got.get(k, {})) - set(v)) for k, v in teed.items())
    chk.ok(extra == 0, "%d samples stored that were never teed (duplicates?)" % extra)
    chk.ok(not d.out_of_order_logged(recv), "Prometheus logged out-of-order samples")
    s = open(log).read()
    chk.ok("spilling to disk" in s, "no spill logged")
    chk.ok("disk backlog delivered" in s, "backlog drain not logged")
    chk.ok("dropping" not in s and "dropped" not in s.replace("dropped for", ""), "something was dropped:\n" +
           "\n".join(l for l in s.splitlines() if "drop" in l)[:2000])
    chk.finish()


if __name__ == "__main__":
    main()
