"""A 429 storm: for 60 s every remote-write request gets 429 with Retry-After (as AMP
answers "Rate exceeded" throttling). scrapeship must drop nothing (everything arrives
in the real Prometheus 2.42 receiver behind the gate once the storm ends) and must never
send on a connection before the Retry-After it was given has elapsed.
"""
import collections
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import durability as d  # noqa: E402

STORM_S = int(os.environ.get("SS_STORM_SECONDS", "60"))
RETRY_AFTER = 5


def main():
    chk = h.Check("durability_429")
    nginx, n = d.start_targets(5)
    recv = d.Receiver()
    recv.start()
    gate = d.Gate(recv.port)
    work = h.tmpdir("ss-dur-429-")
    cfg, tee, log = os.path.join(work, "ss.yml"), os.path.join(work, "tee.json"), os.path.join(work, "ss.log")
    d.write_config(cfg, nginx, n, gate.url, storage=os.path.join(work, "queue"))
    proc, port = d.run_scrapeship(cfg, tee, log)
    time.sleep(5)
    gate.set("429", RETRY_AFTER)
    t0 = time.time()
    time.sleep(STORM_S)
    gate.set("forward")
    t1 = time.time()
    time.sleep(RETRY_AFTER + 10)
    dropped = d.metric_value(port, "scrapeship_remote_samples_dropped_total")
    failed = d.metric_value(port, "scrapeship_remote_samples_failed_total")
    rc = h.stop(proc, signal.SIGTERM, timeout=90)
    chk.ok(rc == 0, "exit %s" % rc)
    chk.ok(dropped == 0, "%s samples dropped during the storm" % dropped)
    chk.ok(failed == 0, "%s samples failed during the storm" % failed)

    with gate.lock:
        events = list(gate.events)
    storm = [e for e in events if t0 <= e[0] <= t1 + 0.5]
    n429 = sum(1 for e in storm if e[2] == 429)
    chk.ok(n429 > 0, "no request met the storm")
    # per connection: after a 429, the next request comes no earlier than Retry-After
    by_conn = collections.defaultdict(list)
    for e in events:
        by_conn[e[1]].append(e)
    early = []
    for conn, evs in by_conn.items():
        for a, b in zip(evs, evs[1:]):
            if a[2] == 429 and b[0] - a[0] < RETRY_AFTER - 0.05:
                early.append("%s: %.2fs after a 429" % (conn, b[0] - a[0]))
    chk.ok(not early, "requests sent before Retry-After elapsed: %s" % early[:5])
    # all senders together: a few requests per Retry-After period, not a hammering
    per_period = n429 / max(1.0, STORM_S / RETRY_AFTER)
    print("storm: %d requests answered 429 over %ds (%.1f per Retry-After period), %d connections" %
          (n429, STORM_S, per_period, len(by_conn)))
    chk.ok(per_period <= 6, "too many requests during the storm: %.1f per period" % per_period)

    teed = d.read_tee(tee)
    total, missing, ex = d.wait_delivered(recv.base, teed, timeout=120)
    print("%d samples teed, %d missing" % (total, missing))
    chk.ok(missing == 0, "%d samples lost: %s" % (missing, ex))
    chk.ok(not d.out_of_order_logged(recv), "Prometheus logged out-of-order samples")
    chk.finish()


if __name__ == "__main__":
    main()
