"""Reload (SIGHUP) of a changed remote with a disk queue, during a backlog.

A changed remote_write entry is a new remote on the same storage directory. The old
remote must be stopped (its backlog written to disk) before the new one opens that
directory: both open at once lost the old backlog silently (the new remote did not know
the records the old one appended, and removed the segment as acknowledged).

The receiver hangs (no failure, so nothing is spilled yet and the backlog is in memory),
the config changes, SIGHUP, the receiver recovers: every sample scraped arrives, in
per-series timestamp order, nothing counted as dropped, and scraping was held up by the
reload for about a second, not the whole shutdown timeout. (A request hanging at the
reload is cut short and sent again from disk; the receiver answers the hung copy late,
so a sample seen twice is a duplicate, not an order violation.)
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_receiver as fr  # noqa: E402
import stall_receiver as sr  # noqa: E402


def main():
    chk = h.Check("durability_reload")
    tport = fr.start_target()
    recv = sr.StallReceiver().start()
    work = h.tmpdir("ss-dur-reload-")
    q = os.path.join(work, "queue")

    def conf(backoff):
        return fr.config_yaml(tport, [fr.remote_yaml(recv.url, "r1", max_backoff=backoff)]) + \
            "storage:\n  path: %s\n" % q

    ss = fr.Scrapeship(conf("1s"), shutdown_timeout="10s").start()
    try:
        time.sleep(3)
        recv.set_mode("hang")
        time.sleep(5)
        with open(ss.cfg, "w") as f:
            f.write(conf("2s"))  # queue_config changed: a new remote, same storage dir
        ss.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while "configuration reloaded" not in ss.log() and time.time() < deadline:
            time.sleep(0.2)
        chk.ok("configuration reloaded" in ss.log(), "no reload:\n" + ss.log()[-2000:])
        time.sleep(3)
        recv.set_mode("ok")
        teed = [k for k, _, stale in fr.read_tee(ss.tee) if not stale]

        def delivered(recs):
            got = set()
            for r in recs:
                if r["kind"] == "series" and r["status"] == 200:
                    for key, _, _ in fr.record_samples(r):
                        got.add(key)
            return all(k in got for k in teed)

        recv.wait(delivered, 40, "every sample scraped before the recovery")
        m = ss.metrics()
        dropped = sum(v for (name, _), v in m.items() if name == "scrapeship_remote_samples_dropped_total")
        chk.ok(dropped == 0, "samples counted as dropped: %s" % dropped)
    finally:
        rc = ss.terminate()
    chk.ok(rc == 0, "exit status %s" % rc)

    got, last, out_of_order = set(), {}, []
    for r in recv.series_records():
        if r["status"] != 200:
            continue
        for (labels, ts), _, _ in fr.record_samples(r):
            if (labels, ts) in got:
                continue  # a request cut short to spill, answered late: sent again from disk
            got.add((labels, ts))
            if ts < last.get(labels, 0) and len(out_of_order) < 3:
                out_of_order.append("%s: %d after %d" % (h.fmt_labels(labels), ts, last[labels]))
            last[labels] = max(ts, last.get(labels, 0))
    missing = [k for k in teed if k not in got]
    print("teed %d samples, %d missing at the receiver" % (len(teed), len(missing)))
    chk.ok(not missing, "%d samples scraped before the reload never arrived (e.g. %s @%d)" %
           (len(missing), h.fmt_labels(missing[0][0]), missing[0][1]) if missing else "")
    chk.ok(not out_of_order, "out of order at the receiver: %s" % out_of_order)
    # scraping went on across the reload: no gap much longer than the flush second
    stamps = sorted({ts for _, ts in teed})
    gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0)
    chk.ok(gap <= 3500, "scraping stopped for %d ms during the reload" % gap)
    recv.stop()
    chk.finish()


if __name__ == "__main__":
    main()
