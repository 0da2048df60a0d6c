"""A reload that changes a remote while its receiver is down does not stop scraping.

The changed remote's old queue is flushed within --shutdown-timeout (20 s here) on a
thread of its own; before, the scrape thread did that flush, so every target went
unscraped for the whole timeout. The new remote queues the scrapes at once and starts
sending only when the old one's flush is over, so older samples are not overtaken:
when the receiver (real Prometheus 2.42) comes up, every teed sample arrives and
Prometheus logs no out-of-order sample.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import durability as d  # noqa: E402


def main():
    chk = h.Check("reload_receiver_down")
    nginx, n = d.start_targets(3)
    recv = d.Receiver()  # down for now
    work = h.tmpdir("ss-reload-down-")
    cfg, tee, log = os.path.join(work, "ss.yml"), os.path.join(work, "tee.json"), os.path.join(work, "ss.log")
    url = recv.base + "/api/v1/write"
    d.write_config(cfg, nginx, n, url)
    proc, port = d.run_scrapeship(cfg, tee, log)  # --shutdown-timeout 20s
    time.sleep(4)
    chk.ok(d.metric_value(port, "scrapeship_remote_queue_samples") > 0, "nothing queued while the receiver is down")

    # change the remote (a new queue_config): it is replaced, and its old queue flushes
    d.write_config(cfg, nginx, n, url, extra_queue=", max_samples_per_send: 500")
    scrapes0 = d.metric_value(port, "scrapeship_scrapes_total")
    t0 = time.time()
    proc.send_signal(signal.SIGHUP)
    reloaded = None
    while time.time() - t0 < 25:
        if d.metric_value(port, "scrapeship_config_reloads_total", result="success") >= 1:
            reloaded = time.time() - t0
            break
        time.sleep(0.2)
    chk.ok(reloaded is not None and reloaded < 5, "the reload took %s s (the old remote's flush blocked it)" % reloaded)
    time.sleep(5)
    scraped = d.metric_value(port, "scrapeship_scrapes_total") - scrapes0
    print("reload applied after %.1f s; %d scrapes in the %.0f s after the SIGHUP" % (
        reloaded or -1, scraped, time.time() - t0))
    # 3 targets at 1 s: about 15 in 5 s; the old code scraped nothing for 20 s
    chk.ok(scraped >= 9, "only %d scrapes in the seconds after the reload: scraping stopped" % scraped)

    # the receiver comes up within the old remote's flush time: it delivers its backlog,
    # then the new remote sends what it queued meanwhile
    recv.start()
    time.sleep(10)
    rc = h.stop(proc, signal.SIGTERM, timeout=60)
    chk.ok(rc == 0, "exit %s" % rc)
    teed = d.read_tee(tee)
    total, missing, ex = d.wait_delivered(recv.base, teed, timeout=60)
    print("%d samples teed, %d missing" % (total, missing))
    chk.ok(total > 0 and missing == 0, "%d of %d samples lost across the reload: %s" % (missing, total, ex))
    chk.ok(not d.out_of_order_logged(recv), "the receiver logged out-of-order samples")
    recv.stop()
    chk.finish()


if __name__ == "__main__":
    main()
