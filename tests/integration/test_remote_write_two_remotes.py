#!/usr/bin/python3
"""test_remote_write_two_remotes.py: a dead remote must not hold back a healthy one.

scrapeship ships one scrape job to two remote_write entries: "dead", a loopback port
nothing listens on (listed first), and "healthy", fake_receiver.py answering 200.
Remotes have their own queues and sender threads, so:

  1. steady state (batch_send_deadline 1s): the healthy receiver gets every teed sample,
     each within batch_send_deadline + 3 s of its timestamp, in order, exactly once;
     meanwhile the dead remote's network errors, retried samples and queue keep growing
     and scraping goes on (scrapeship_scrapes_total rises);
  2. shutdown: the dead remote cannot deliver, but it must not use up the healthy
     remote's flush. The healthy remote here waits 10 s to fill a batch, so its queue
     is full of unsent samples at SIGTERM; they must all arrive before the process
     exits, and only the dead remote's samples may be reported unsent.
"""
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_receiver as fr  # noqa: E402
import harness as h  # noqa: E402

BATCH_DEADLINE_S = 1.0
LATENESS_S = BATCH_DEADLINE_S + 3.0


def first_arrivals(records):
    """key -> (t_recv, value, stale) of the first accepted request carrying it."""
    out = {}
    for r in sorted(records, key=lambda r: r["t_recv"]):
        if r["kind"] == "series" and 200 <= r["status"] < 300:
            for key, value, stale in fr.record_samples(r):
                out.setdefault(key, (r["t_recv"], value, stale))
    return out


def dead_url():
    return "http://127.0.0.1:%d/api/v1/write" % h.free_port()


def scenario_steady(check, target):
    rcv = fr.FakeReceiver().start()
    cfg = fr.config_yaml(target, [fr.remote_yaml(dead_url(), "dead"), fr.remote_yaml(rcv.url, "healthy")])
    ss = fr.Scrapeship(cfg, shutdown_timeout="3s").start()
    snaps = []
    for wait in (4, 5, 5):
        time.sleep(wait)
        snaps.append(ss.metrics())

    def series(name, **labels):
        return [fr.metric(m, name, **labels) for m in snaps]

    for name in ("scrapeship_remote_queue_samples", "scrapeship_remote_samples_retried_total",
                 "scrapeship_remote_samples_in_total"):
        v = series(name, remote_name="dead")
        check.ok(v[0] < v[1] < v[2], "dead: %s keeps growing: %s" % (name, v))
    v = series("scrapeship_remote_requests_total", remote_name="dead", code="network_error")
    check.ok(v[0] < v[1] < v[2], "dead: network errors keep growing: %s" % v)
    v = series("scrapeship_remote_samples_total", remote_name="dead")
    check.ok(v == [0, 0, 0], "dead: nothing delivered: %s" % v)
    v = series("scrapeship_scrapes_total", scrape_job="rwt")
    check.ok(v[0] < v[1] < v[2] and v[2] - v[0] >= 6, "scrapes keep going: %s" % v)
    v = series("scrapeship_remote_samples_total", remote_name="healthy")
    check.ok(v[0] < v[1] < v[2], "healthy: samples delivered keep growing: %s" % v)
    q = series("scrapeship_remote_queue_samples", remote_name="healthy")
    per_scrape = (v[2] - v[0]) / max(1.0, series("scrapeship_scrapes_total", scrape_job="rwt")[2]
                                     - series("scrapeship_scrapes_total", scrape_job="rwt")[0])
    check.ok(max(q) <= 3 * per_scrape + 1, "healthy: queue stays short: %s (%.0f samples per scrape)"
             % (q, per_scrape))

    rc = ss.terminate()
    check.ok(rc == 0, "steady: exit status %r, want 0" % rc)
    recs = rcv.records()
    tee = ss.tee_samples()
    fr.compare_delivery(check, tee, [s for r in recs if 200 <= r["status"] < 300 for s in fr.record_samples(r)],
                        "healthy")
    arrivals = first_arrivals(recs)
    late = sorted(((arrivals[k][0] - k[1] / 1000.0, k) for k, _, _ in tee if k in arrivals), reverse=True)
    worst = late[0][0] if late else 0
    print("healthy: worst delay from sample timestamp to arrival %.2fs" % worst, flush=True)
    check.ok(late and worst < LATENESS_S, "healthy: %d samples arrived more than %.0fs after their timestamp, "
             "worst %.2fs (%s)" % (len([x for x in late if x[0] >= LATENESS_S]), LATENESS_S, worst,
                                   fr.fmt_key(late[0][1]) if late else ""))
    fr.check_requests_wellformed(check, recs, "healthy")
    fr.check_order(check, recs, "healthy")
    check.ok(all(r["status"] == 200 for r in recs), "healthy: all answered 200")
    log = ss.log()
    check.ok(not re.search(r"remote=healthy [^\n]*(unsent|dropp)", log), "healthy: nothing reported unsent")
    rcv.stop()


def scenario_shutdown(check, target):
    rcv = fr.FakeReceiver().start()
    cfg = fr.config_yaml(target, [fr.remote_yaml(dead_url(), "dead"),
                                  fr.remote_yaml(rcv.url, "healthy", batch_send_deadline="10s")])
    ss = fr.Scrapeship(cfg, shutdown_timeout="4s").start()
    time.sleep(5)
    ms = ss.metrics()
    queued = fr.metric(ms, "scrapeship_remote_queue_samples", remote_name="healthy")
    check.ok(queued > 0, "shutdown: the healthy remote has samples queued at SIGTERM (%r)" % queued)
    rc = ss.terminate(timeout=60)
    check.ok(rc == 0, "shutdown: exit status %r, want 0" % rc)
    took = ss.t_exit - ss.t_term
    check.ok(took < 4 + 6, "shutdown: took %.1fs with --shutdown-timeout 4s" % took)
    time.sleep(0.5)  # the receiver logs a request after answering it
    recs = rcv.records()
    check.ok(all(r["t_recv"] < ss.t_exit for r in recs), "shutdown: requests after exit")
    tee = ss.tee_samples()
    fr.compare_delivery(check, tee, [s for r in recs if 200 <= r["status"] < 300 for s in fr.record_samples(r)],
                        "shutdown healthy")
    log = ss.log()
    bad = [l for l in log.splitlines() if "remote=healthy" in l and "unsent" in l]
    check.ok(not bad, "shutdown: the dead remote used up the healthy one's flush: %s" % (bad[:1],))
    m = re.search(r"remote=dead shutdown deadline passed with (\d+) samples unsent", log)
    check.ok(m is not None, "shutdown: the dead remote's unsent samples are reported")
    if m:
        check.ok(int(m.group(1)) == len(tee), "shutdown: dead remote reports %s unsent, but it delivered "
                 "none of the %d teed samples" % (m.group(1), len(tee)))
    rcv.stop()


def main():
    check = h.Check("test_remote_write_two_remotes")
    target = fr.start_target()
    for name, fn in (("steady", scenario_steady), ("shutdown", scenario_shutdown)):
        t0 = time.time()
        try:
            fn(check, target)
        except Exception:
            traceback.print_exc()
            check.ok(False, "%s: raised" % name)
        print("%s: %.1fs" % (name, time.time() - t0), flush=True)
    check.finish()


if __name__ == "__main__":
    main()
