#!/usr/bin/python3
"""test_remote_write_shutdown.py: SIGTERM flushes the remote-write queue, and says so truly.

  1. flush: fake_receiver.py answers every request after 0.3 s; scrapeship waits up to
     batch_send_deadline 10s to fill a batch, so at SIGTERM about 7 s of samples are
     queued and none sent yet. scrapeship must stop scraping, send them at once
     (not wait for the batch deadline), exit 0 well within --shutdown-timeout, with every
     teed sample accepted by the receiver before it exits and the log saying all queued
     samples were delivered.
  2. deadline: the receiver holds every request for 20 s and --shutdown-timeout is 2s, so
     nothing can be delivered. scrapeship must still exit 0 soon after the timeout, and
     the count it logs as not delivered must be every teed sample (the batch it was
     waiting on included): it must never claim "all queued samples delivered".
"""
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_receiver as fr  # noqa: E402
import harness as h  # noqa: E402

ALL_DELIVERED = re.compile(r"all queued samples delivered")
NOT_DELIVERED = re.compile(r"(\d+) samples could not be delivered before the shutdown deadline")


def scenario_flush(check, target):
    rcv = fr.FakeReceiver([{"delay": 0.3, "repeat": 100000}]).start()
    cfg = fr.config_yaml(target, [fr.remote_yaml(rcv.url, "flush", batch_send_deadline="10s")])
    ss = fr.Scrapeship(cfg, shutdown_timeout="30s").start()
    time.sleep(7)
    ms = ss.metrics()
    queued = fr.metric(ms, "scrapeship_remote_queue_samples", remote_name="flush")
    check.ok(queued > 0, "flush: samples queued at SIGTERM (%r)" % queued)
    rc = ss.terminate(timeout=60)
    check.ok(rc == 0, "flush: exit status %r, want 0" % rc)
    took = ss.t_exit - ss.t_term
    print("flush: exited %.2fs after SIGTERM" % took, flush=True)
    check.ok(took < 20, "flush: took %.1fs to exit (--shutdown-timeout 30s)" % took)
    time.sleep(0.5)  # the receiver logs a request after answering it
    recs = rcv.records()
    after = [r for r in recs if r["t_recv"] >= ss.t_term]
    nafter = sum(len(fr.record_samples(r)) for r in after)
    check.ok(nafter >= queued > 0, "flush: %d samples sent after SIGTERM, %d were queued just before"
             % (nafter, queued))
    if after:
        first = min(r["t_recv"] for r in after) - ss.t_term
        check.ok(first < 3, "flush: first batch %.1fs after SIGTERM: the flush must not wait for "
                 "batch_send_deadline" % first)
    check.ok(all(r["t_recv"] < ss.t_exit for r in recs), "flush: requests after exit")
    tee = ss.tee_samples()
    newest = max((k[1] for k, _, _ in tee), default=0) / 1000.0
    check.ok(newest <= ss.t_term + 0.2, "flush: scraped %.2fs after SIGTERM" % (newest - ss.t_term))
    fr.compare_delivery(check, tee, [s for r in recs if 200 <= r["status"] < 300
                                     for s in fr.record_samples(r)], "flush")
    fr.check_requests_wellformed(check, recs, "flush")
    fr.check_order(check, recs, "flush")
    log = ss.log()
    check.ok(ALL_DELIVERED.search(log), "flush: log says all queued samples were delivered")
    check.ok(not NOT_DELIVERED.search(log), "flush: log reports undelivered samples")
    check.ok("received SIGTERM" in log, "flush: log notes the SIGTERM")
    rcv.stop()


def scenario_deadline(check, target):
    rcv = fr.FakeReceiver([{"delay": 20, "repeat": 1000}]).start()
    cfg = fr.config_yaml(target, [fr.remote_yaml(rcv.url, "stuck")])
    ss = fr.Scrapeship(cfg, shutdown_timeout="2s").start()
    time.sleep(4)
    rc = ss.terminate(timeout=60)
    check.ok(rc == 0, "deadline: exit status %r, want 0" % rc)
    took = ss.t_exit - ss.t_term
    print("deadline: exited %.2fs after SIGTERM" % took, flush=True)
    check.ok(took < 2 + 5, "deadline: took %.1fs to exit with --shutdown-timeout 2s" % took)
    check.ok(took >= 1.5, "deadline: exited after %.1fs, before trying for --shutdown-timeout" % took)
    tee = ss.tee_samples()
    # answers come 20 s after each request, long after the exit: nothing was accepted
    answered = [r for r in rcv.records() if r["t_resp"] < ss.t_exit]
    check.ok(not answered, "deadline: %d requests answered before the exit" % len(answered))
    log = ss.log()
    check.ok(not ALL_DELIVERED.search(log), "deadline: log claims all queued samples were delivered, "
             "but the receiver accepted none of %d" % len(tee))
    m = NOT_DELIVERED.search(log)
    check.ok(m is not None, "deadline: log reports samples not delivered")
    if m:
        check.ok(int(m.group(1)) == len(tee), "deadline: log says %s samples not delivered, but none of "
                 "the %d teed samples were (the in-flight batch counts too)" % (m.group(1), len(tee)))
    rcv.stop()


def main():
    check = h.Check("test_remote_write_shutdown")
    target = fr.start_target()
    for name, fn in (("flush", scenario_flush), ("deadline", scenario_deadline)):
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
