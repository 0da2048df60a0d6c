"""Real-peer parity for the edges: Prometheus 2.42 and scrapeship scrape the same
expositions and must ship the same series with the same scrape_* values.

  * halfway:  a text body whose fourth sample line is broken. Prometheus fails the
              scrape but reports scrape_samples_scraped / _post_metric_relabeling as
              the samples parsed (and kept by metric relabeling) before the error.
  * om-noeof: an OpenMetrics body without `# EOF`: every sample parsed, then failed.
  * dups:     one series twice in one exposition: the first value is stored, and both
              samples count in scrape_samples_post_metric_relabeling.
  * zeros:    -0, 0, NaN, ±Inf, the smallest subnormal and the largest double. The
              JSON output must print what Prometheus' HTTP API prints ("-0"), the
              text output what its exposition (/federate) prints ("0").

Shipped series are compared one for one (label sets equal), values exactly (as
strings), except scrape_duration_seconds.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BODIES = {
    "halfway.prom": 'a{x="1"} 1\na{x="2"} 2\ndrop_me 3\nb 4\nc{ 5\nd 6\n',
    "noeof.om": "# TYPE g gauge\ng 1\nh_total 2\ni 3\n",
    "dups.prom": 'dup{k="v"} 1\nother 3\ndup{k="v"} 2\nlast 4\n',
    "zeros.prom": ('z{k="neg"} -0\nz{k="pos"} 0\nz{k="nan"} NaN\nz{k="inf"} +Inf\nz{k="ninf"} -Inf\n'
                   'z{k="tiny"} -4.9e-324\nz{k="big"} 1.7976931348623157e308\nz{k="one"} -1\n'
                   'z{k="small"} 1e-05\n'),
}
JOBS = {"halfway": "halfway.prom", "om-noeof": "noeof.om", "dups": "dups.prom", "zeros": "zeros.prom"}
FAILED = {"halfway", "om-noeof"}


def config(port):
    out = "global:\n  scrape_interval: 2s\n  scrape_timeout: 1s\nscrape_configs:\n"
    for job, path in JOBS.items():
        out += """  - job_name: %s
    metrics_path: /%s
    static_configs: [{targets: ['127.0.0.1:%d']}]
    metric_relabel_configs:
      - {source_labels: [__name__], regex: drop_me, action: drop}
""" % (job, path, port)
    return out


def parse_text(text):
    """Exposition lines (ours or /federate) -> {frozenset(labels): value string}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 2)[:2]
        name, _, rest = series.partition("{")
        labels = {"__name__": name}
        for kv in rest.rstrip("}").split('",') if rest else []:
            if kv:
                k, _, v = kv.partition('="')
                labels[k] = v.rstrip('"')
        out[frozenset(labels.items())] = value
    return out


def main():
    chk = h.Check("prometheus_parity_edges")
    root = h.tmpdir("ss-edges-")
    for name, body in BODIES.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(body)
    port = h.start_nginx(root)
    cfg_text = config(port)
    base, prom, pdir = h.start_prometheus(cfg_text)
    cfg_path = os.path.join(pdir, "scrapeship.yml")
    with open(cfg_path, "w") as f:
        f.write(cfg_text)

    deadline = time.time() + 60
    while time.time() < deadline:
        have = {dict(k).get("job") for k in h.prom_series(base, "up")}
        if set(JOBS) <= have:
            break
        time.sleep(0.5)
    time.sleep(2.5)  # a second scrape of every job

    rc, out, err = h.run_scrapeship(["scrape", "--config", cfg_path, "--format", "json"])
    chk.ok(rc == 1, "two targets fail, exit must be 1: %d %s" % (rc, err[-500:]))
    ours = h.parse_json_lines(out)
    theirs = h.prom_series(base, '{job=~".+"}')
    for job in JOBS:
        o = {k: v for k, v in ours.items() if dict(k)["job"] == job}
        t = {k: v for k, v in theirs.items() if dict(k)["job"] == job}
        chk.ok(set(o) == set(t), "%s: series differ: only scrapeship %s, only Prometheus %s" % (
            job, sorted(h.fmt_labels(k) for k in set(o) - set(t)), sorted(h.fmt_labels(k) for k in set(t) - set(o))))
        for k in set(o) & set(t):
            name = dict(k)["__name__"]
            if name == "scrape_duration_seconds" or (name == "scrape_series_added" and job not in FAILED):
                continue  # scrapeship's one-shot scrape adds every series; Prometheus' steady state none
            chk.ok(o[k]["value"] == t[k][0], "%s: %s JSON value %r, Prometheus API %r" % (
                job, h.fmt_labels(k), o[k]["value"], t[k][0]))
        print("%s: %d series compared" % (job, len(set(o) & set(t))))

    def val(job, name):
        for k, v in theirs.items():
            d = dict(k)
            if d["job"] == job and d["__name__"] == name:
                return v[0]
        return None
    # the expected numbers, so a Prometheus change would show too
    chk.ok(val("halfway", "scrape_samples_scraped") == "4" and
           val("halfway", "scrape_samples_post_metric_relabeling") == "3", "halfway: Prometheus counts changed")
    chk.ok(val("om-noeof", "scrape_samples_scraped") == "3", "om-noeof: Prometheus count changed")
    chk.ok(val("dups", "scrape_samples_post_metric_relabeling") == "4", "dups: Prometheus count changed")

    # text output against Prometheus' own exposition of what it stored
    rc, out, err = h.run_scrapeship(["scrape", "--config", cfg_path])
    ours_text = {k: v for k, v in parse_text(out).items() if dict(k)["job"] == "zeros"}
    _, fed = h.http_get(base + '/federate?match[]={job="zeros",__name__="z"}', timeout=10)
    fed_text = parse_text(fed.decode())
    chk.ok(len(fed_text) == 9, "federate: %d z series" % len(fed_text))
    for k, v in fed_text.items():
        chk.ok(ours_text.get(k) == v, "zeros text: %s scrapeship %r, Prometheus /federate %r" % (
            h.fmt_labels(k), ours_text.get(k), v))
    chk.finish()


if __name__ == "__main__":
    main()
