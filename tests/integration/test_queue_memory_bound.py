"""Delivery at any size (issue #10): the memory bound, queue_config.max_memory_bytes.

No disk queue, max_memory_bytes 512KiB (about four scrapes of the 1000-series target
scraped every second). The receiver (stall_receiver.py: fake_receiver.py's decoding
and request log, with a mode switch) accepts everything, then stalls for 16 s (4 s
not answering at all, then 12 s of 503), then recovers. Five seconds later the target
is removed (file SD), so scrapeship's counters stop moving, and once its queue is
empty (scrapeship_remote_queue_samples 0, every sample handed to the remote delivered
or dropped) it is stopped and --tee (every sample scraped) is compared with every
sample the receiver accepted:

* drops happened (the stall holds about four times the bound), all with reason
  queue_full, and the count is exact: dropped == samples_in - samples accepted ==
  teed samples missing at the receiver; nothing arrived twice or that was not teed;
* what survives is what the README promises, oldest dropped, newest kept: per series,
  the missing samples are one contiguous run of scrapes taken during the stall (from
  at most a scrape before it), and the sample scraped last before recovery (at least
  1.5 s before, so queued during the stall) was delivered, as was everything before
  the stall and after recovery;
* the batch in flight when the receiver stalled was not dropped: every batch answered
  503 was sent again, byte for byte, until accepted (fake_receiver.check_resends);
  per series, accepted timestamps strictly increase (fake_receiver.check_order);
* the queued bytes (scrapeship_remote_queue_bytes) never passed max_memory_bytes;
* the drop was logged, naming the remote and queue_full; scraping went on during the
  stall (scrapeship_scrapes_total, teed `up` samples) and up/scrape_* reached the
  receiver after recovery.

About 45 s.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import fake_receiver as fr  # noqa: E402
import delivery as dl  # noqa: E402
import stall_receiver as sr  # noqa: E402

NSERIES = 1000
MEM_BOUND = 512 << 10
HANG_S = 4
S503_S = 12
AFTER_S = 5
REMOTE = "stallrecv"


def accepted_samples(records):
    out = []
    for r in records:
        if r["kind"] == "series" and 200 <= r["status"] < 300:
            out.extend(fr.record_samples(r))
    return out


def main():
    chk = h.Check("queue_memory_bound")
    recv = sr.StallReceiver().start()
    targets = dl.Targets([("mem", NSERIES, 5)])
    cfg = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
%sremote_write:
  - url: %s
    name: %s
    queue_config: {max_memory_bytes: 512KiB, batch_send_deadline: 500ms, max_backoff: 1s}
    metadata_config: {send: false}
""" % (targets.scrape_configs(), recv.url, REMOTE)
    run = dl.Run(cfg, tee=True)

    # normal delivery first
    ok = recv.wait(lambda rs: len(accepted_samples(rs)) >= 5 * (NSERIES + 5), 30, "5 scrapes delivered")
    chk.ok(ok, "nothing delivered before the stall")

    peak_bytes = 0

    def watch(seconds):
        nonlocal peak_bytes
        end = time.time() + seconds
        while time.time() < end:
            ms = run.metrics()
            peak_bytes = max(peak_bytes, fr.metric(ms, "scrapeship_remote_queue_bytes"))
            time.sleep(0.25)

    scrapes0 = fr.metric(run.metrics(), "scrapeship_scrapes_total")
    t_stall = time.time()
    recv.set_mode("hang")
    watch(HANG_S)
    recv.set_mode("503")
    watch(S503_S)
    ms = run.metrics()
    t_rec = time.time()
    recv.set_mode("ok")
    scrapes_during = fr.metric(ms, "scrapeship_scrapes_total") - scrapes0
    dropped_at_recovery = dl.drops(ms).get("queue_full", 0)
    print("stall %.1fs: %d scrapes, %d samples dropped for queue_full by the end of it, peak queue %d bytes"
          % (t_rec - t_stall, scrapes_during, dropped_at_recovery, peak_bytes), flush=True)
    chk.ok(scrapes_during >= (HANG_S + S503_S) * 0.8, "only %d scrapes during a %ds stall: scraping was held up"
           % (scrapes_during, HANG_S + S503_S))
    watch(AFTER_S)
    targets.remove_all()
    chk.ok(dl.wait_targets_gone(run), "target still listed 30 s after its file SD entry was emptied")
    drained, ms = dl.wait_drained(run, timeout=120)
    n = dl.remote_numbers(ms)
    drop = dl.drops(ms)
    chk.ok(drained, "queue not empty 120 s after recovery: %s" % n)
    chk.ok(n["queue"] == 0, "scrapeship_remote_queue_samples = %d after draining" % n["queue"])
    # the receiver logs a request after answering it: wait until it has logged all
    recv.wait(lambda rs: len(accepted_samples(rs)) >= n["sent"], 30, "receiver log to catch up")
    rc = run.stop()
    chk.ok(rc == 0, "scrapeship exit status %s" % rc)
    recv.stop()

    records = recv.records()
    acc = accepted_samples(records)
    got = {}
    for key, value, stale in acc:
        got.setdefault(key, (value, stale))
    tee = fr.read_tee(run.tee)
    teed = {k: (v, s) for k, v, s in tee}
    qf = drop.get("queue_full", 0)
    missing = set(teed) - set(got)
    extra = set(got) - set(teed)
    print("samples: in=%d teed=%d accepted=%d (distinct %d) missing=%d; dropped %s"
          % (n["in"], len(tee), len(acc), len(got), len(missing), {k: int(v) for k, v in drop.items() if v}),
          flush=True)
    chk.ok(len(tee) == len(teed), "the tee holds %d duplicate samples" % (len(tee) - len(teed)))
    chk.ok(len(tee) == n["in"], "teed %d samples but scrapeship_remote_samples_in_total is %d" % (len(tee), n["in"]))
    chk.ok(qf > 0, "nothing dropped for queue_full: the stall should overflow a %d-byte bound" % MEM_BOUND)
    for reason, v in sorted(drop.items()):
        if reason != "queue_full":
            chk.ok(v == 0, "dropped for %s: %d" % (reason, v))
    chk.ok(len(acc) == len(got), "%d samples accepted more than once" % (len(acc) - len(got)))
    chk.ok(not extra, "%d samples accepted that were never teed, e.g. %s"
           % (len(extra), fr.fmt_key(next(iter(extra))) if extra else ""))
    chk.ok(qf == n["in"] - len(got), "dropped(queue_full) %d != samples_in %d - accepted %d = %d"
           % (qf, n["in"], len(got), n["in"] - len(got)))
    chk.ok(qf == len(missing), "dropped(queue_full) %d != %d teed samples missing at the receiver"
           % (qf, len(missing)))
    chk.ok(n["sent"] == len(got), "scrapeship counts %d delivered, the receiver accepted %d" % (n["sent"], len(got)))
    wrong = [k for k in got if k in teed and not fr.same_sample_value(teed[k][0], got[k][0], teed[k][1], got[k][1])]
    chk.ok(not wrong, "%d samples accepted with another value than teed" % len(wrong))
    fr.check_requests_wellformed(chk, records, "stall")
    fr.check_order(chk, records, "stall")
    groups = fr.check_resends(chk, records, "stall", retryable=(408, 429))
    stalled = [sha for sha, rs in groups.items() if any(r["status"] == 503 for r in rs)]
    chk.ok(stalled, "no request was answered 503: the stall did not reach scrapeship")
    print("%d distinct batches were answered 503 at least once; all resent until accepted" % len(stalled),
          flush=True)

    # per series: oldest dropped, newest kept
    t_stall_ms, t_rec_ms = int(t_stall * 1000), int(t_rec * 1000)
    per = {}
    for (ls, ts) in teed:
        per.setdefault(ls, []).append(ts)
    not_contig, out_of_window, newest_lost, series_with_loss = [], [], [], 0
    for ls, tss in per.items():
        tss.sort()
        miss = [i for i, t in enumerate(tss) if (ls, t) not in got]
        if miss:
            series_with_loss += 1
            if miss[-1] - miss[0] + 1 != len(miss):
                not_contig.append((h.fmt_labels(ls), [tss[i] for i in miss][:6]))
            lo, hi = tss[miss[0]], tss[miss[-1]]
            if lo < t_stall_ms - 2500 or hi > t_rec_ms:
                out_of_window.append((h.fmt_labels(ls), lo - t_stall_ms, hi - t_rec_ms))
        before = [t for t in tss if t <= t_rec_ms - 1500]
        if before and (ls, before[-1]) not in got:
            newest_lost.append((h.fmt_labels(ls), before[-1] - t_rec_ms))
    print("%d of %d series lost samples" % (series_with_loss, len(per)), flush=True)
    chk.ok(not not_contig, "%d series whose missing samples are not one contiguous run, e.g. %s"
           % (len(not_contig), not_contig[:2]))
    chk.ok(not out_of_window, "%d series lost samples outside the stall (series, first missing - stall start ms, "
           "last missing - recovery ms), e.g. %s" % (len(out_of_window), out_of_window[:3]))
    chk.ok(not newest_lost, "%d series lost their newest sample queued before recovery (oldest must go first, "
           "newest kept), e.g. %s (ms before recovery)" % (len(newest_lost), newest_lost[:3]))
    chk.ok(peak_bytes <= MEM_BOUND, "scrapeship_remote_queue_bytes peaked at %d > max_memory_bytes %d"
           % (peak_bytes, MEM_BOUND))

    # logged, naming the remote; scraping went on; up/scrape_* delivered after recovery
    log = run.log()
    lines = [l for l in log.splitlines() if "queue_full" in l and ("remote=%s" % REMOTE) in l]
    chk.ok(lines, "no log line naming remote=%s and queue_full:\n%s" % (REMOTE, log[-1500:]))
    if lines:
        print("log: " + lines[0][:300], flush=True)
    ups_stall = [ts for (ls, ts) in teed if dict(ls).get("__name__") == "up" and t_stall_ms <= ts < t_rec_ms]
    chk.ok(len(ups_stall) >= (HANG_S + S503_S) * 0.8, "only %d up samples scraped during the stall" % len(ups_stall))
    for name in dl.SYNTHETIC:
        after = [ts for (ls, ts) in got if dict(ls).get("__name__") == name and ts > t_rec_ms]
        chk.ok(len(after) >= AFTER_S - 2, "%s: only %d samples after recovery reached the receiver" % (name,
                                                                                                        len(after)))
    chk.finish()


if __name__ == "__main__":
    main()
