"""Delivery at any size (issue #10): big targets with the DEFAULT queue_config.

One target of 50 000 series and two of 20 000 (the bench's mix, as
bench/gen_targets.py writes it: about half histogram series, a third counters, the
rest gauges), scraped every 2 s for 20 s, shipped to a real Prometheus 2.42
(--web.enable-remote-write-receiver) with no queue_config section at all. Then the
targets are removed (file SD), scrapeship drains and its counters stop moving, and:

* every series of every scrape is in Prometheus, exactly: per job, the scrape
  timestamps are those of its up/scrape_* samples (as many as
  scrapeship_scrapes_total); at each of them every series of the job has a sample
  stamped exactly then, every series has exactly one sample per scrape, and the
  series per metric name are the exposition's;
* scrapeship_remote_samples_dropped_total is 0 for every reason, samples_in equals
  samples delivered, Prometheus answered no write with an error and logged no
  out-of-order or out-of-bounds rejection.

Run twice in this script: memory only, then with `storage: {path: ...}` (disk queue),
each time with a fresh Prometheus. About 2 minutes in all.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import delivery as dl  # noqa: E402

SCRAPE_FOR_S = float(os.environ.get("SS_LARGE_SCRAPE_SECONDS", "20"))
SPECS = [("big50k", 50000, 1), ("mid20k_a", 20000, 2), ("mid20k_b", 20000, 3)]


def one_run(chk, targets, label, storage=None):
    base, prom, pdir = dl.start_receiver_prometheus()
    for job in targets.jobs:
        targets.set_sd(job, True)
    st = "storage:\n  path: %s\n" % storage if storage else ""
    cfg = """global:
  scrape_interval: 2s
  external_labels: {run: large}
%sscrape_configs:
%sremote_write:
  - url: %s/api/v1/write
    name: prom
""" % (st, targets.scrape_configs(), base)
    t0 = time.time()
    run = dl.Run(cfg)
    # scrape for SCRAPE_FOR_S, watching the remote (bounded)
    peak_queue = peak_shards = 0
    first_drop_seen = None
    while time.time() - t0 < SCRAPE_FOR_S:
        n = dl.remote_numbers(run.metrics())
        peak_queue = max(peak_queue, n["queue"])
        peak_shards = max(peak_shards, n["shards"])
        if n["dropped"] and first_drop_seen is None:
            first_drop_seen = time.time() - t0
        time.sleep(1)
    targets.remove_all()
    gone = dl.wait_targets_gone(run)
    chk.ok(gone, "%s: targets still listed 30 s after their file SD entries were emptied" % label)
    drained, ms = dl.wait_drained(run, timeout=180)
    t_drained = time.time()
    n = dl.remote_numbers(ms)
    drop = dl.drops(ms)
    print("%s: in=%d sent=%d dropped=%s; peak queue %d samples, peak shards %d; drained %.1fs after the "
          "targets were removed%s" % (label, n["in"], n["sent"], {k: int(v) for k, v in drop.items() if v},
                                      peak_queue, peak_shards, t_drained - t0 - SCRAPE_FOR_S,
                                      "" if first_drop_seen is None else
                                      "; first drop seen %.0fs into the run" % first_drop_seen), flush=True)
    chk.ok(drained, "%s: scrapeship did not drain within 180 s: %s" % (label, n))
    chk.ok("queue_full" in drop, "%s: no scrapeship_remote_samples_dropped_total{reason=\"queue_full\"} in "
           "/metrics" % label)
    for reason, v in sorted(drop.items()):
        chk.ok(v == 0, "%s: scrapeship_remote_samples_dropped_total{reason=%r} = %d" % (label, reason, v))
    chk.ok(n["in"] == n["sent"], "%s: samples_in %d != samples delivered %d" % (label, n["in"], n["sent"]))
    codes = {dict(ls).get("code"): v for (name, ls), v in ms.items() if name == "scrapeship_remote_requests_total"
             and v}
    chk.ok(all(c in ("200", "204") for c in codes), "%s: scrapeship saw non-2xx answers: %s" % (label, codes))
    if storage:
        print("%s: %d samples spilled to disk, %d replayed" % (
            label, dl.fr.metric(ms, "scrapeship_remote_samples_spilled_total"),
            dl.fr.metric(ms, "scrapeship_remote_samples_replayed_total")), flush=True)

    # exact completeness in Prometheus
    total_scrapes = 0
    for job in targets.jobs:
        scrapes = dl.fr.metric(ms, "scrapeship_scrapes_total", scrape_job=job)
        fails = dl.fr.metric(ms, "scrapeship_scrape_failures_total", scrape_job=job)
        chk.ok(fails == 0, "%s job %s: %d failed scrapes (the check needs every scrape to succeed)"
               % (label, job, fails))
        chk.ok(scrapes >= SCRAPE_FOR_S / 2 - 2, "%s job %s: only %d scrapes in %.0fs" % (label, job, scrapes,
                                                                                        SCRAPE_FOR_S))
        total_scrapes += dl.check_job_complete(chk, base, targets, job, int(scrapes), label)
    wst = dl.prom_write_status(base)
    chk.ok(set(wst) <= {"204", "200"}, "%s: Prometheus answered remote writes with %s" % (label, wst))
    ooo, names = dl.prom_out_of_order(base)
    chk.ok(ooo == 0, "%s: Prometheus out-of-order/out-of-bounds counters %s sum to %d" % (label, names, ooo))
    rej = dl.prom_log_rejections(pdir)
    chk.ok(not rej, "%s: Prometheus logged rejections: %s" % (label, rej[:3]))
    drop_lines = [l for l in run.log().splitlines() if "drop" in l.lower()]
    chk.ok(not drop_lines, "%s: scrapeship logged drops:\n%s" % (label, "\n".join(drop_lines[:5])))
    rc = run.stop()
    chk.ok(rc == 0, "%s: scrapeship exit status %s" % (label, rc))
    h.stop(prom)
    print("%s: %d scrapes checked, %.0fs" % (label, total_scrapes, time.time() - t0), flush=True)


def main():
    chk = h.Check("delivery_large_targets")
    t = time.time()
    targets = dl.Targets(SPECS)
    print("targets ready in %.1fs: %s" % (time.time() - t, ", ".join("%s=%d" % (j, n) for j, n, _ in SPECS)),
          flush=True)
    one_run(chk, targets, "memory")
    one_run(chk, targets, "disk", storage=h.tmpdir("ss-large-queue-"))
    chk.finish()


if __name__ == "__main__":
    main()
