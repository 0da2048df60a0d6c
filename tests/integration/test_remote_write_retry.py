#!/usr/bin/python3
"""test_remote_write_retry.py: remote-write delivery semantics against a scripted receiver.

scrapeship scrapes a static exposition (nginx) every second and ships it to
fake_receiver.py, which answers as scripted and logs every request it decodes. Each
scenario runs its own `scrapeship run --tee`, ends it with SIGTERM and compares what was
teed with what the receiver accepted. The rules checked are remote-write 1.0
§Retries & Backoff:

  1. statuses, one shard so the script lines up with batches:
     500 -> the same bytes are sent once more, with Retry-Attempt: 1;
     400 -> never resent, counted as dropped{reason="http_4xx"} and requests{code="400"},
            the receiver's message appears, truncated, in scrapeship's log;
     429 + Retry-After: 2 -> resent, not before 2 s; 413 -> not resent; 408 -> resent;
     every teed sample was accepted except those in the two rejected batches.
  2. receiver down for ~5 s at start: retried with backoff (capped at max_backoff), and
     once it is up every teed sample arrives.
  3. two shards, responses delayed at random up to 5 s (some 503s): per series the
     timestamps accepted strictly increase, no sample is sent twice except in an exact
     resend of a failed batch, and every teed sample arrives.
Every request must carry the spec's headers and sorted, unique labels with __name__.
"""
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_receiver as fr  # noqa: E402
import harness as h  # noqa: E402

TOKEN = "RWT-REJECT-7f3a"  # the receiver's 400 message, to find in scrapeship's log
LONG_BODY = TOKEN + " bad batch: " + "x" * 3000  # longer than scrapeship keeps


def accepted(records):
    out = []
    for r in records:
        if r["kind"] == "series" and 200 <= r["status"] < 300:
            out += fr.record_samples(r)
    return out


def by_index(records):
    return {r["script_index"]: r for r in records if r.get("script_index") is not None}


def scenario_statuses(check, target):
    script = [{"status": 500, "kind": "series"}, {"status": 200, "kind": "series"},
              {"status": 400, "kind": "series", "body": LONG_BODY}, {"status": 200, "kind": "series"},
              {"status": 429, "retry_after": "2", "kind": "series"}, {"status": 200, "kind": "series"},
              {"status": 413, "kind": "series"}, {"status": 200, "kind": "series"},
              {"status": 408, "kind": "series"}, {"status": 200, "kind": "series"}]
    rcv = fr.FakeReceiver(script).start()
    ss = fr.Scrapeship(fr.config_yaml(target, [fr.remote_yaml(rcv.url, "scripted")])).start()
    done = rcv.wait(lambda rs: len([r for r in rs if r["kind"] == "series"]) >= len(script) + 2, 60,
                    "the status script to be used up")
    check.ok(done, "statuses: script used up")
    ms = ss.metrics()
    rc = ss.terminate()
    check.ok(rc == 0, "statuses: exit status %r, want 0" % rc)
    recs = [r for r in rcv.records() if r["kind"] == "series"]
    ix = by_index(recs)
    if not check.ok(all(i in ix for i in range(len(script))), "statuses: every script entry answered a request"):
        return
    shas = [r["sha256"] for r in recs]
    n = {i: sum(len(s[1]) for s in ix[i]["series"]) for i in ix}

    # 500 then 200: the same bytes once more, marked as the first retry
    check.ok(ix[1]["sha256"] == ix[0]["sha256"], "500: the next request is the same batch")
    check.ok(shas.count(ix[0]["sha256"]) == 2, "500: resent exactly once (sent %d times)" % shas.count(ix[0]["sha256"]))
    check.ok("retry-attempt" not in ix[0]["headers"], "500: no Retry-Attempt on the first try")
    check.ok(ix[1]["headers"].get("retry-attempt") == "1",
             "500: Retry-Attempt: 1 on the resend (got %r)" % ix[1]["headers"].get("retry-attempt"))

    # 400 and 413: dropped, never resent
    for i, code in ((2, 400), (6, 413)):
        check.ok(shas.count(ix[i]["sha256"]) == 1, "%d: batch sent %d times, want once" % (code, shas.count(ix[i]["sha256"])))
        check.ok(ix[i + 1]["sha256"] != ix[i]["sha256"], "%d: the next request is a new batch" % code)
        got = fr.metric(ms, "scrapeship_remote_requests_total", remote_name="scripted", code=str(code))
        check.ok(got == 1, "%d: requests_total{code=\"%d\"} = %r, want 1" % (code, code, got))
    dropped = fr.metric(ms, "scrapeship_remote_samples_dropped_total", remote_name="scripted", reason="http_4xx")
    check.ok(dropped == n[2] + n[6], "4xx: dropped{reason=http_4xx} = %r, want %d" % (dropped, n[2] + n[6]))
    failed = fr.metric(ms, "scrapeship_remote_samples_failed_total", remote_name="scripted")
    check.ok(failed == n[2] + n[6], "4xx: samples_failed_total = %r, want %d" % (failed, n[2] + n[6]))
    log = ss.log()
    lines = [l for l in log.splitlines() if TOKEN in l]
    check.ok(len(lines) == 1, "400: the receiver's message is logged once (found %d lines)" % len(lines))
    check.ok(all(len(l) < 1500 and "x" * 1500 not in l for l in lines),
             "400: the receiver's message is truncated in the log")
    check.ok(any("400" in l for l in lines), "400: the log line names the status")

    # 429 with Retry-After: 2
    check.ok(ix[5]["sha256"] == ix[4]["sha256"], "429: resent")
    check.ok(ix[5]["headers"].get("retry-attempt") == "1", "429: Retry-Attempt: 1 on the resend")
    gap = ix[5]["t_recv"] - ix[4]["t_resp"]
    check.ok(gap >= 1.98, "429: resent %.3fs after the answer, before Retry-After: 2 elapsed" % gap)
    check.ok(gap < 10, "429: resent only %.3fs after the answer (Retry-After: 2)" % gap)

    # 408: retried like 5xx
    check.ok(ix[9]["sha256"] == ix[8]["sha256"], "408: resent")
    check.ok(shas.count(ix[8]["sha256"]) == 2, "408: resent exactly once")

    for code in (500, 429, 408):
        got = fr.metric(ms, "scrapeship_remote_requests_total", remote_name="scripted", code=str(code))
        check.ok(got == 1, "requests_total{code=\"%d\"} = %r, want 1" % (code, got))
    retried = fr.metric(ms, "scrapeship_remote_samples_retried_total", remote_name="scripted")
    check.ok(retried == n[0] + n[4] + n[8], "samples_retried_total = %r, want %d" % (retried, n[0] + n[4] + n[8]))

    # every teed sample was accepted, except the two rejected batches'
    rejected = {k for i in (2, 6) for k, _, _ in fr.record_samples(ix[i])}
    acc = accepted(rcv.records())
    check.ok(not rejected & {k for k, _, _ in acc}, "4xx: samples of a rejected batch were accepted later")
    fr.compare_delivery(check, ss.tee_samples(), acc, "statuses", missing_ok=rejected)
    fr.check_requests_wellformed(check, rcv.records(), "statuses")
    fr.check_resends(check, rcv.records(), "statuses")
    fr.check_order(check, rcv.records(), "statuses")


def scenario_down_then_up(check, target):
    rcv = fr.FakeReceiver(port=h.free_port())
    ss = fr.Scrapeship(fr.config_yaml(target, [fr.remote_yaml(rcv.url, "late")])).start()
    time.sleep(5)
    ms = ss.metrics()
    neterr = fr.metric(ms, "scrapeship_remote_requests_total", remote_name="late", code="network_error")
    check.ok(neterr >= 2, "down: %r network errors while the receiver is down, want >= 2" % neterr)
    check.ok(fr.metric(ms, "scrapeship_remote_samples_total", remote_name="late") == 0, "down: nothing delivered")
    queued = fr.metric(ms, "scrapeship_remote_queue_samples", remote_name="late")
    check.ok(queued > 0, "down: samples queued (%r)" % queued)
    t_up = time.time()
    rcv.start()
    got = rcv.wait(lambda rs: any(r["kind"] == "series" for r in rs), 30, "a first request once up")
    check.ok(got, "down: the receiver got a request once it was up")
    if got:
        first = min((r for r in rcv.records() if r["kind"] == "series"), key=lambda r: r["t_recv"])
        # max_backoff is 1s: the retry loop must not have backed off further
        check.ok(first["t_recv"] - t_up < 1 + 5, "down: first request %.1fs after the receiver came up"
                 % (first["t_recv"] - t_up))
        check.ok(first["headers"].get("retry-attempt") not in (None, "0"),
                 "down: the first request received is marked as a retry (Retry-Attempt %r)"
                 % first["headers"].get("retry-attempt"))
    time.sleep(3)
    rc = ss.terminate()
    check.ok(rc == 0, "down: exit status %r, want 0" % rc)
    recs = rcv.records()
    fr.compare_delivery(check, ss.tee_samples(), accepted(recs), "down")
    fr.check_requests_wellformed(check, recs, "down")
    fr.check_order(check, recs, "down")
    rcv.stop()


def scenario_random_delays(check, target, seed):
    rng = random.Random(seed)
    script = []
    for _ in range(14):
        e = {"delay": round(rng.uniform(0, 5), 3), "kind": "series"}
        if rng.random() < 0.25:
            e["status"] = 503
        script.append(e)
    rcv = fr.FakeReceiver(script).start()
    ss = fr.Scrapeship(fr.config_yaml(target, [fr.remote_yaml(
        rcv.url, "slow", min_shards=2, max_shards=2, max_samples_per_send=8)])).start()
    done = rcv.wait(lambda rs: len([r for r in rs if r.get("script_index") is not None]) >= len(script),
                    120, "the delay script to be used up")
    check.ok(done, "delays: script used up")
    time.sleep(2)
    rc = ss.terminate()
    check.ok(rc == 0, "delays: exit status %r, want 0" % rc)
    recs = rcv.records()
    check.ok(len([r for r in recs if r["kind"] == "series"]) > len(script),
             "delays: requests continued after the slow phase")
    fr.compare_delivery(check, ss.tee_samples(), accepted(recs), "delays")
    fr.check_requests_wellformed(check, recs, "delays")
    fr.check_resends(check, recs, "delays")
    fr.check_order(check, recs, "delays")


def main():
    check = h.Check("test_remote_write_retry")
    seed = int(os.environ.get("SS_TEST_SEED") or time.time())
    print("seed %d (set SS_TEST_SEED to repeat)" % seed, flush=True)
    target = fr.start_target()
    for name, fn in (("statuses", lambda: scenario_statuses(check, target)),
                     ("down_then_up", lambda: scenario_down_then_up(check, target)),
                     ("random_delays", lambda: scenario_random_delays(check, target, seed))):
        t0 = time.time()
        try:
            fn()
        except Exception:
            traceback.print_exc()
            check.ok(False, "%s: raised" % name)
        print("%s: %.1fs" % (name, time.time() - t0), flush=True)
    check.finish()


if __name__ == "__main__":
    main()
