"""End to end against a real Prometheus 2.42 remote-write receiver.

scrapeship scrapes a static exposition (nginx: counters, gauges, a histogram, a
summary) and a real prometheus-node-exporter every second and ships to Prometheus
started with --web.enable-remote-write-receiver. --tee records every sample handed to
remote write. After SIGTERM (which flushes the queues) every teed sample, including
up, scrape_* and the histogram and summary series, must be in Prometheus with the same
labels, value and timestamp, read back through the query API; and a series removed
from the exposition gets a stale marker that makes it vanish from instant queries.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

STATIC = """# TYPE app_requests_total counter
app_requests_total{code="200"} %(n)d
app_requests_total{code="500"} 3
# TYPE app_temperature gauge
app_temperature %(t)s
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="0.1"} %(n)d
app_latency_seconds_bucket{le="1"} %(n2)d
app_latency_seconds_bucket{le="+Inf"} %(n2)d
app_latency_seconds_sum 12.5
app_latency_seconds_count %(n2)d
# TYPE app_rpc_seconds summary
app_rpc_seconds{quantile="0.5"} 0.25
app_rpc_seconds{quantile="0.99"} NaN
app_rpc_seconds_sum 3.5
app_rpc_seconds_count 9
%(extra)s"""


def write_static(root, i, with_removed):
    body = STATIC % {"n": 100 + i, "n2": 200 + i, "t": "%.2f" % (20 + i * 0.25),
                     "extra": "app_going_away 1\n" if with_removed else ""}
    tmp = os.path.join(root, "metrics.prom.tmp")
    with open(tmp, "w") as f:
        f.write(body)
    os.rename(tmp, os.path.join(root, "metrics.prom"))


def main():
    chk = h.Check("remote_write_prometheus")
    root = h.tmpdir("ss-rw-static-")
    write_static(root, 0, True)
    nginx = h.start_nginx(root)
    node = h.start_node_exporter()
    base, prom, pdir = h.start_prometheus("global:\n  scrape_interval: 1h\n",
                                          extra_args=["--web.enable-remote-write-receiver"])
    cfg = os.path.join(pdir, "scrapeship.yml")
    with open(cfg, "w") as f:
        f.write("""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {shipper: scrapeship}
scrape_configs:
  - job_name: static
    metrics_path: /metrics.prom
    static_configs: [{targets: ['127.0.0.1:%d']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s/api/v1/write
    name: prom
    queue_config: {batch_send_deadline: 500ms, max_samples_per_send: 1000}
""" % (nginx, node, base))
    tee = os.path.join(pdir, "tee.json")
    port = h.free_port()
    proc = h.start([h.BIN, "run", "--config", cfg, "--web.listen-address", "127.0.0.1:%d" % port,
                    "--tee", tee, "--shutdown-timeout", "30s"], os.path.join(pdir, "scrapeship.log"))
    # a few scrapes with changing values
    for i in range(1, 6):
        time.sleep(1)
        write_static(root, i, True)
    write_static(root, 6, False)  # app_going_away disappears: stale marker
    time.sleep(3)
    _, metrics = h.http_get("http://127.0.0.1:%d/metrics" % port)
    rc = h.stop(proc, signal.SIGTERM, timeout=60)
    log = open(os.path.join(pdir, "scrapeship.log")).read()
    chk.ok(rc == 0, "scrapeship exit status %s" % rc)
    chk.ok("all queued samples delivered" in log, "shutdown did not report full delivery:\n" + log[-2000:])
    chk.ok(b"scrapeship_remote_samples_total" in metrics, "remote metrics missing from /metrics")

    teed = {}
    stale = {}
    for line in open(tee):
        rec = json.loads(line)
        key = frozenset(rec["labels"].items())
        if rec["stale"]:
            stale[key] = rec["timestamp"]
        else:
            teed.setdefault(key, {})[rec["timestamp"]] = rec["value"]
    nsamples = sum(len(v) for v in teed.values())
    chk.ok(nsamples > 1000, "only %d samples teed" % nsamples)

    data = h.prom_query(base, '{shipper="scrapeship"}[1h]')
    got = {}
    for r in data["result"]:
        got[frozenset(r["metric"].items())] = {int(round(t * 1000)): v for t, v in r["values"]}
    missing = wrong = extra = 0
    examples = []
    for key, samples in teed.items():
        have = got.get(key, {})
        for ts, v in samples.items():
            if ts not in have:
                missing += 1
                if len(examples) < 5:
                    examples.append("missing %s @%d" % (h.fmt_labels(key), ts))
            elif not h.same_value(v, have[ts]):
                wrong += 1
                if len(examples) < 5:
                    examples.append("value %s @%d: sent %s, stored %s" % (h.fmt_labels(key), ts, v, have[ts]))
        extra += len(set(have) - set(samples))
    extra += sum(len(v) for k, v in got.items() if k not in teed)
    chk.ok(missing == 0, "%d samples not in Prometheus: %s" % (missing, examples))
    chk.ok(wrong == 0, "%d samples with different values: %s" % (wrong, examples))
    chk.ok(extra == 0, "%d samples in Prometheus that were not teed" % extra)
    names = {dict(k)["__name__"] for k in teed}
    for n in ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
              "scrape_series_added", "app_latency_seconds_bucket", "app_latency_seconds_sum",
              "app_latency_seconds_count", "app_rpc_seconds", "app_rpc_seconds_sum", "node_cpu_seconds_total"]:
        chk.ok(n in names, "no %s series shipped" % n)
    print("compared %d samples of %d series" % (nsamples, len(teed)))

    # the stale marker hides app_going_away from instant queries right after it
    gone = [k for k in stale if dict(k)["__name__"] == "app_going_away"]
    chk.ok(len(gone) == 1, "expected one stale marker for app_going_away, got %d" % len(gone))
    if gone:
        t = stale[gone[0]] / 1000.0 + 0.1
        r1 = h.prom_query(base, 'app_going_away', at=t)["result"]
        r2 = h.prom_query(base, 'app_temperature', at=t)["result"]
        r0 = h.prom_query(base, 'app_going_away', at=t - 1.2)["result"]
        chk.ok(r0 != [], "app_going_away absent even before its stale marker")
        chk.ok(r1 == [], "app_going_away still returned after its stale marker: %s" % r1)
        chk.ok(r2 != [], "app_temperature missing at the same time")
    chk.finish()


if __name__ == "__main__":
    main()
