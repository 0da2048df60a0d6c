"""Real-peer parity: Prometheus 2.42 and scrapeship scrape the same targets with the
same config (relabel_configs, metric_relabel_configs, honor_labels) and must produce
the same series.

Targets:
  * static expositions served by nginx: Prometheus text 0.0.4 and OpenMetrics 1.0,
    with counters, gauges, histograms, summaries, untyped, info, stateset, escapes,
    exposed labels clashing with target labels, explicit timestamps, NaN/Inf.
    Values (and explicit timestamps) must match exactly, series for series; the
    synthetic series must match by name and labels, and up / scrape_samples_scraped /
    scrape_samples_post_metric_relabeling by value too.
  * a real prometheus-node-exporter and Prometheus' own /metrics: label sets match.

Prometheus' side is read back through its query API; scrapeship's side is the
`scrapeship scrape --config F --format json` output.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NOW_MS = int(time.time() * 1000)

TEXT_BODY = """# HELP http_requests_total Total requests.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027
http_requests_total{method="post",code="200"} 3
http_requests_total{method="get",code="500"} 0
# HELP temperature_celsius A gauge with odd values.
# TYPE temperature_celsius gauge
temperature_celsius{room="a"} -12.5
temperature_celsius{room="b"} 1e+21
temperature_celsius{room="c"} +Inf
temperature_celsius{room="d"} -Inf
temperature_celsius{room="e"} NaN
temperature_celsius{room="f"} 0.000001
# HELP rpc_duration_seconds A summary.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service="x",quantile="0.5"} 4773
rpc_duration_seconds{service="x",quantile="0.9"} 9001
rpc_duration_seconds{service="x",quantile="0.99"} 76656
rpc_duration_seconds_sum{service="x"} 1.7560473e+07
rpc_duration_seconds_count{service="x"} 2693
# HELP request_duration_seconds A histogram.
# TYPE request_duration_seconds histogram
request_duration_seconds_bucket{le="0.05"} 24054
request_duration_seconds_bucket{le="0.1"} 33444
request_duration_seconds_bucket{le="0.2"} 100392
request_duration_seconds_bucket{le="0.5"} 129389
request_duration_seconds_bucket{le="1"} 133988
request_duration_seconds_bucket{le="+Inf"} 144320
request_duration_seconds_sum 53423
request_duration_seconds_count 144320
# A plain comment.
untyped_thing{a="with \\"quotes\\" and \\\\ backslash",b="line\\nbreak"} 42
untyped_no_labels 7
clash_metric{job="exposed-job",instance="exposed-instance",env="exposed-env"} 1
empty_label_metric{a="",b="x"} 5
tmp_source_metric{tmp_origin="mapped"} 9
drop_me_please 1
drop_me_too{x="y"} 2
with_timestamp{k="v"} 77 %(ts)d
""" % {"ts": NOW_MS - 5000}

OM_BODY = """# TYPE om_requests counter
# HELP om_requests Requests.
om_requests_total{path="/"} 17 # {trace_id="abc"} 1.0 %(tsf).3f
om_requests_created{path="/"} 1.6e+09
# TYPE om_latency_seconds histogram
# UNIT om_latency_seconds seconds
om_latency_seconds_bucket{le="0.1"} 2
om_latency_seconds_bucket{le="1.0"} 5 # {trace_id="def"} 0.5
om_latency_seconds_bucket{le="+Inf"} 7
om_latency_seconds_count 7
om_latency_seconds_sum 3.25
# TYPE om_build info
om_build_info{version="1.2.3",revision="abc"} 1
# TYPE om_feature stateset
om_feature{om_feature="a"} 1
om_feature{om_feature="b"} 0
# TYPE om_level gauge
om_level{kind="x"} 2.5
om_level{kind="y"} 3 %(tsf).3f
# TYPE om_unknown unknown
om_unknown 1
# EOF
""" % {"tsf": (NOW_MS - 3000) / 1000.0}

SYNTHETIC = ["up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"]
SYNTHETIC_VALUES = ["up", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling"]


def config(nginx_port, node_port, prom_port):
    return """
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: static-text
    metrics_path: /metrics.prom
    static_configs:
      - targets: ['127.0.0.1:%(nginx)d']
        labels: {env: test, team: a}
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):(\\d+)'
        target_label: port
        replacement: '$2'
      - target_label: instance
        replacement: static-1
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'drop_me_.*'
        action: drop
      - regex: 'tmp_(.*)'
        action: labelmap
        replacement: 'mapped_$1'
      - regex: 'tmp_.*'
        action: labeldrop
      - source_labels: [method, code]
        separator: '/'
        target_label: route
        regex: '(get)/(.*)'
        replacement: '${1}-$2'
  - job_name: static-honor
    metrics_path: /metrics.prom
    honor_labels: true
    static_configs:
      - targets: ['localhost:%(nginx)d']
  - job_name: static-om
    metrics_path: /metrics.om
    honor_timestamps: true
    static_configs:
      - targets: ['127.0.0.1:%(nginx)d']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:%(node)d']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:%(prom)d']
""" % {"nginx": nginx_port, "node": node_port, "prom": prom_port}


def wait_for_up(base, jobs, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = h.prom_series(base, 'up == 1')
        have = {dict(k).get("job") for k in got}
        if all(j in have for j in jobs):
            return True
        time.sleep(0.5)
    return False


def by_job(series, job):
    return {k: v for k, v in series.items() if dict(k).get("job") == job}


def compare_exact(chk, job, ours, theirs):
    """Static targets: every series equal, values equal (synthetic: see SYNTHETIC)."""
    ours_keys = set(ours)
    theirs_keys = set(theirs)
    only_ours = ours_keys - theirs_keys
    only_theirs = theirs_keys - ours_keys
    chk.ok(not only_ours, "%s: series only in scrapeship: %s" % (job, sorted(h.fmt_labels(k) for k in only_ours)))
    chk.ok(not only_theirs, "%s: series only in Prometheus: %s" % (job, sorted(h.fmt_labels(k) for k in only_theirs)))
    for k in sorted(ours_keys & theirs_keys, key=h.fmt_labels):
        name = dict(k)["__name__"]
        if name in SYNTHETIC and name not in SYNTHETIC_VALUES:
            continue
        ov = ours[k]["value"]
        pv = theirs[k][0]
        chk.ok(h.same_value(ov, pv), "%s: %s value scrapeship=%s prometheus=%s" % (job, h.fmt_labels(k), ov, pv))
    return len(ours_keys & theirs_keys)


def main():
    chk = h.Check("prometheus_parity")
    root = h.tmpdir("ss-static-")
    with open(os.path.join(root, "metrics.prom"), "w") as f:
        f.write(TEXT_BODY)
    with open(os.path.join(root, "metrics.om"), "w") as f:
        f.write(OM_BODY)
    nginx_port = h.start_nginx(root)
    node_port = h.start_node_exporter()
    prom_port = h.free_port()
    cfg_text = config(nginx_port, node_port, prom_port)
    base, prom, pdir = h.start_prometheus(cfg_text, port=prom_port)
    cfg_path = os.path.join(pdir, "scrapeship.yml")
    with open(cfg_path, "w") as f:
        f.write(cfg_text)

    rc, out, err = h.run_scrapeship(["check-config", cfg_path])
    chk.ok(rc == 0, "check-config rejected the shared config: %s" % err)

    jobs = ["static-text", "static-honor", "static-om", "node", "prometheus"]
    chk.ok(wait_for_up(base, jobs), "Prometheus did not scrape every job")
    time.sleep(2.5)  # let every job complete a second scrape (series_added settles)

    # Prometheus' series of a job are read right before and right after scrapeship's
    # scrape. For the static targets they are identical; for the live ones a series
    # may legitimately appear in between (e.g. a handler label after our query).
    before = h.prom_series(base, '{job=~".+"}')
    rc, out, err = h.run_scrapeship(["scrape", "--config", cfg_path, "--format", "json"])
    chk.ok(rc == 0, "scrapeship scrape exit %d: %s" % (rc, err[-2000:]))
    ours_all = h.parse_json_lines(out)
    after = h.prom_series(base, '{job=~".+"}')

    for job in ["static-text", "static-honor", "static-om"]:
        n = compare_exact(chk, job, by_job(ours_all, job), by_job(after, job))
        chk.ok(n > 10, "%s: only %d series compared" % (job, n))

    # explicit timestamps are kept exactly (honor_timestamps defaults to true)
    for k, rec in ours_all.items():
        d = dict(k)
        if d["__name__"] == "with_timestamp" and d["job"] == "static-text":
            chk.ok(rec["timestamp"] == NOW_MS - 5000, "with_timestamp ts %s" % rec["timestamp"])
            # an instant query reports the evaluation time; a range selector returns
            # the samples with their own timestamps
            data = h.prom_query(base, 'with_timestamp{job="static-text"}[10m]')
            stamps = [v[0] for r in data["result"] for v in r["values"]]
            chk.ok(stamps and all(abs(t * 1000 - (NOW_MS - 5000)) < 1 for t in stamps),
                   "Prometheus timestamps for with_timestamp: %s" % stamps)

    for job in ["node", "prometheus"]:
        ours = set(by_job(ours_all, job))
        lo = set(by_job(before, job)) & set(by_job(after, job))
        hi = set(by_job(before, job)) | set(by_job(after, job))
        missing = lo - ours
        extra = ours - hi
        chk.ok(not missing, "%s: %d series Prometheus has but scrapeship lacks, e.g. %s" %
               (job, len(missing), sorted(h.fmt_labels(k) for k in missing)[:10]))
        chk.ok(not extra, "%s: %d series scrapeship has but Prometheus lacks, e.g. %s" %
               (job, len(extra), sorted(h.fmt_labels(k) for k in extra)[:10]))
        chk.ok(len(ours) > 50, "%s: only %d series" % (job, len(ours)))
        print("%s: %d series compared by label set" % (job, len(ours)))
    chk.finish()


if __name__ == "__main__":
    main()
