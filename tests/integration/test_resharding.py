"""Delivery at any size (issue #10): resharding under load, in order.

10 targets of 10 000 series each (the bench's mix of histograms, counters and
gauges), one job each, scraped every second (100 000 samples/s) and shipped with the DEFAULT queue_config to a real
Prometheus 2.42 (--web.enable-remote-write-receiver). After 30 s the targets are
removed (file SD) and scrapeship drains. Asserts:

* scrapeship_remote_shards rises above 1 within 10 s of the first scrape (polled every
  0.25 s; the first scrape is the earliest up/scrape_* timestamp stored);
* every sample arrived in per-series timestamp order: Prometheus rejects out-of-order
  samples with a 400, so no write was answered with an error (Prometheus'
  prometheus_http_requests_total{handler="/api/v1/write"} and scrapeship's
  scrapeship_remote_requests_total), no drop for any reason (http_4xx included),
  Prometheus' tsdb out-of-order/out-of-bounds counters are 0 and its log has no
  rejection;
* every sample of every scrape is stored, exactly: per job, at each scrape timestamp
  every one of the 10 005 series has a sample, each series has exactly one sample per
  scrape (about 30 scrapes, over 20 s of them), the series per metric name are the
  exposition's, and samples_in equals samples delivered.

About 1.5 minutes.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_receiver as fr  # noqa: E402
import delivery as dl  # noqa: E402

NTARGETS = 10
NSERIES = 10000
RUN_S = float(os.environ.get("SS_RESHARD_SCRAPE_SECONDS", "30"))
RESHARD_WITHIN_S = 10.0


def main():
    chk = h.Check("resharding")
    t = time.time()
    targets = dl.Targets([("t%d" % i, NSERIES, 100 + i) for i in range(NTARGETS)])
    base, prom, pdir = dl.start_receiver_prometheus()
    print("targets and Prometheus ready in %.1fs" % (time.time() - t), flush=True)
    cfg = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
%sremote_write:
  - url: %s/api/v1/write
    name: prom
""" % (targets.scrape_configs(), base)
    run = dl.Run(cfg)
    t0 = run.t_start
    t_first_seen = t_gt1 = None
    peak_shards = peak_desired = peak_queue = 0
    timeline = []
    while time.time() - t0 < RUN_S:
        now = time.time()
        ms = run.metrics()
        n = dl.remote_numbers(ms)
        desired = fr.metric(ms, "scrapeship_remote_shards_desired")
        if t_first_seen is None and fr.metric(ms, "scrapeship_scrapes_total") > 0:
            t_first_seen = now
        if t_gt1 is None and n["shards"] > 1:
            t_gt1 = now
        if n["shards"] != (timeline[-1][1] if timeline else None):
            timeline.append((round(now - t0, 2), int(n["shards"]), int(desired)))
        peak_shards = max(peak_shards, n["shards"])
        peak_desired = max(peak_desired, desired)
        peak_queue = max(peak_queue, n["queue"])
        time.sleep(0.25)
    targets.remove_all()
    chk.ok(dl.wait_targets_gone(run), "targets still listed 30 s after their file SD entries were emptied")
    drained, ms = dl.wait_drained(run, timeout=180)
    n = dl.remote_numbers(ms)
    drop = dl.drops(ms)
    print("in=%d sent=%d dropped=%s; peak shards %d (desired %d), peak queue %d samples; drained %.1fs after "
          "the targets were removed" % (n["in"], n["sent"], {k: int(v) for k, v in drop.items() if v}, peak_shards,
                                        peak_desired, peak_queue, time.time() - t0 - RUN_S), flush=True)
    print("shards over time (s since start, shards, desired): %s" % timeline[:20], flush=True)

    # resharding: above 1 within 10 s of the first scrape
    firsts = [dl.scrape_timestamps(base, job)[:1] for job in targets.jobs]
    firsts = [f[0] / 1000.0 for f in firsts if f]
    t_first = min(firsts) if firsts else t_first_seen
    chk.ok(t_gt1 is not None, "scrapeship_remote_shards never rose above 1 in %.0fs at %d samples/s"
           % (RUN_S, NTARGETS * NSERIES))
    if t_gt1 is not None and t_first is not None:
        print("first scrape %.1fs after start; shards > 1 seen %.2fs after the first scrape"
              % (t_first - t0, t_gt1 - t_first), flush=True)
        chk.ok(t_gt1 - t_first <= RESHARD_WITHIN_S, "shards rose above 1 only %.1fs after the first scrape (want "
               "<= %.0fs)" % (t_gt1 - t_first, RESHARD_WITHIN_S))

    # order: nothing rejected anywhere
    chk.ok(drained, "scrapeship did not drain within 180 s: %s" % n)
    for reason, v in sorted(drop.items()):
        chk.ok(v == 0, "scrapeship_remote_samples_dropped_total{reason=%r} = %d" % (reason, v))
    chk.ok("http_4xx" in drop, "no reason=\"http_4xx\" drop counter in /metrics")
    codes = {dict(ls).get("code"): v for (name, ls), v in ms.items() if name == "scrapeship_remote_requests_total"
             and v}
    chk.ok(all(c in ("200", "204") for c in codes), "scrapeship saw non-2xx answers: %s" % codes)
    chk.ok(n["in"] == n["sent"], "samples_in %d != samples delivered %d" % (n["in"], n["sent"]))
    wst = dl.prom_write_status(base)
    chk.ok(wst and set(wst) <= {"204", "200"}, "Prometheus answered remote writes with %s" % wst)
    ooo, names = dl.prom_out_of_order(base)
    chk.ok(ooo == 0, "Prometheus out-of-order/out-of-bounds counters %s sum to %d" % (names, ooo))
    rej = dl.prom_log_rejections(pdir)
    chk.ok(not rej, "Prometheus logged rejections: %s" % rej[:3])

    # completeness, exact per series and scrape
    tq = time.time()
    for job in targets.jobs:
        scrapes = fr.metric(ms, "scrapeship_scrapes_total", scrape_job=job)
        fails = fr.metric(ms, "scrapeship_scrape_failures_total", scrape_job=job)
        chk.ok(fails == 0, "job %s: %d failed scrapes (the check needs every scrape to succeed)" % (job, fails))
        nscr = dl.check_job_complete(chk, base, targets, job, int(scrapes), "resharding")
        chk.ok(nscr >= 20, "job %s: only %d scrapes stored, want at least 20 s of them" % (job, nscr))
    print("completeness queries took %.1fs" % (time.time() - tq), flush=True)
    rc = run.stop()
    chk.ok(rc == 0, "scrapeship exit status %s" % rc)
    chk.finish()


if __name__ == "__main__":
    main()
