"""Config reload: SIGHUP and POST /-/reload apply a new config without dropping the
queued samples of remotes whose configuration did not change; a broken file is
rejected, counted, and the running config keeps working.

The receiver (real Prometheus 2.42) is down while scrapeship scrapes and reloads
twice, so samples sit in the in-memory queue (no storage.path); then it comes up and
every teed sample must arrive.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import durability as d  # noqa: E402


def main():
    chk = h.Check("reload")
    nginx, n = d.start_targets(3)
    recv = d.Receiver()  # down for now
    work = h.tmpdir("ss-reload-")
    cfg, tee, log = os.path.join(work, "ss.yml"), os.path.join(work, "tee.json"), os.path.join(work, "ss.log")
    d.write_config(cfg, nginx, 2, recv.base + "/api/v1/write")
    # POST /-/reload is gated, as in Prometheus (test_web.py checks the 403 without it)
    proc, port = d.run_scrapeship(cfg, tee, log, extra=["--web.enable-lifecycle"])
    time.sleep(6)
    queued0 = d.metric_value(port, "scrapeship_remote_queue_samples")
    chk.ok(queued0 > 0, "nothing queued while the receiver is down")

    # 1. SIGHUP with one more scrape job: the remote is unchanged, its queue survives
    d.write_config(cfg, nginx, 3, recv.base + "/api/v1/write")
    proc.send_signal(signal.SIGHUP)
    time.sleep(4)
    chk.ok(d.metric_value(port, "scrapeship_config_reloads_total", result="success") == 1, "SIGHUP reload not counted")
    queued1 = d.metric_value(port, "scrapeship_remote_queue_samples")
    chk.ok(queued1 >= queued0, "queue shrank across the reload: %s -> %s" % (queued0, queued1))
    chk.ok(d.metric_value(port, "scrapeship_targets", scrape_job="t2") == 1, "the new job was not added")

    # 2. a broken file: rejected, counted, everything keeps running
    with open(cfg, "a") as f:
        f.write("scrape_intervall: 5s\n")
    status, _ = h.http_get("http://127.0.0.1:%d/-/reload" % port, data=b"")
    time.sleep(2)
    chk.ok(d.metric_value(port, "scrapeship_config_reloads_total", result="failure") == 1, "failed reload not counted")
    chk.ok(d.metric_value(port, "scrapeship_config_last_reload_successful") == 0, "last reload reported successful")
    chk.ok("unknown field" in open(log).read(), "the reload error does not say what is wrong")

    # 3. POST /-/reload with the good file again
    d.write_config(cfg, nginx, 3, recv.base + "/api/v1/write")
    status, _ = h.http_get("http://127.0.0.1:%d/-/reload" % port, data=b"")
    chk.ok(status == 200, "POST /-/reload status %s" % status)
    time.sleep(2)
    chk.ok(d.metric_value(port, "scrapeship_config_reloads_total", result="success") == 2, "POST reload not counted")
    chk.ok(d.metric_value(port, "scrapeship_config_last_reload_successful") == 1, "last reload not successful")

    # the receiver comes up: every sample queued before and after the reloads arrives
    recv.start()
    time.sleep(8)
    rc = h.stop(proc, signal.SIGTERM, timeout=60)
    chk.ok(rc == 0, "exit %s" % rc)
    teed = d.read_tee(tee)
    total, missing, ex = d.wait_delivered(recv.base, teed, timeout=60)
    print("%d samples teed across two reloads, %d missing" % (total, missing))
    chk.ok(missing == 0, "%d samples lost across reloads: %s" % (missing, ex))
    recv.stop()
    chk.finish()


if __name__ == "__main__":
    main()
