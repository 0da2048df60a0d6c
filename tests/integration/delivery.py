"""Helpers for the "delivery at any size" tests (issue #10): test_delivery_large_targets.py,
test_queue_memory_bound.py and test_resharding.py.

* static targets of any size on one nginx (the bench's mix of histograms, counters and
  gauges, as bench/gen_targets.py writes them), one job per target, each
  job's target list in a file_sd file so a test can remove the targets, which stops
  scraping (after one round of stale markers) while scrapeship keeps running; its
  counters then stop moving and can be compared exactly with what arrived;
* scrapeship's self-metrics: the remote-write counters, "drained" (nothing queued in
  memory or on disk, every sample handed to the remote delivered or dropped);
* the exact completeness check against a Prometheus 2.42 receiver: per job, the scrape
  timestamps are the timestamps of its synthetic series (up, scrape_*) and must be as
  many as scrapeship_scrapes_total says, and for every one of them every
  series of the job has a sample at exactly that timestamp, every series has exactly
  one sample per scrape, and the series per metric name are those of the exposition.
  Only aggregate queries are used, so the answers stay small at 100k series.
"""
import collections
import concurrent.futures
import json
import os
import signal
import time
import urllib.error

import harness as h
import fake_receiver as fr

SYNTHETIC = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added")


BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
CODES = ["200", "201", "204", "400", "404", "500", "503"]


def render(m, seed):
    """An exposition of exactly m series in the bench's mix (bench/gen_targets.py):
    about half histogram series (12 buckets, _sum, _count per label set), a third
    counters, the rest gauges, with HELP/TYPE lines and handler/method/code labels.
    Values differ per series and per target. (Self-contained, so that changes to the
    bench's generator do not move these tests.)"""
    out, n = [], 0
    per_h = len(BUCKETS) + 2
    nh = (m // 2) // per_h  # histogram label sets
    nc = m // 3
    ng = m - nh * per_h - nc

    def labels(i):
        return 'handler="/api/v%d/resource_%d/{id}",method="%s",code="%s"' % (
            seed % 7 + 1, i // 28, METHODS[i % 4], CODES[(i // 4) % 7])

    out.append("# HELP app_request_duration_seconds Latency of requests by handler, method and code.")
    out.append("# TYPE app_request_duration_seconds histogram")
    for i in range(nh):
        count = 1000 + (i * 7919 + seed * 104729) % 50_000_000
        acc = 0
        for k, le in enumerate(BUCKETS[:-1]):
            acc += (count - acc) // (3 + k % 3)
            out.append('app_request_duration_seconds_bucket{%s,le="%s"} %d' % (labels(i), le, acc))
        out.append('app_request_duration_seconds_bucket{%s,le="+Inf"} %d' % (labels(i), count))
        out.append("app_request_duration_seconds_sum{%s} %.6f" % (labels(i), count * 0.0371))
        out.append("app_request_duration_seconds_count{%s} %d" % (labels(i), count))
    n += nh * per_h
    out.append("# HELP app_requests_total Requests by handler, method and code.")
    out.append("# TYPE app_requests_total counter")
    for i in range(nc):
        out.append("app_requests_total{%s} %d" % (labels(i), (i * 48271 + seed) % 1_000_000_007))
    n += nc
    out.append("# HELP app_queue_depth Jobs waiting per queue and shard.")
    out.append("# TYPE app_queue_depth gauge")
    for i in range(ng):
        out.append('app_queue_depth{queue="queue_%d",shard="%d"} %s' % (i // 64, i % 64, repr((i * 31 + seed) % 5000
                                                                                            + 0.25)))
    n += ng
    assert n == m, (n, m)
    return "\n".join(out) + "\n"


class Targets:
    """Static targets on one nginx; one job per target, listed in a file_sd file."""

    def __init__(self, specs):
        """specs: [(job, nseries, seed)]."""
        self.root = h.tmpdir("ss-big-targets-")
        self.sd_dir = h.tmpdir("ss-sd-")
        self.jobs = []
        self.nseries = {}
        self.names = {}  # job -> Counter(metric name -> series), synthetic series included
        for job, n, seed in specs:
            text = render(n, seed)
            path = os.path.join(self.root, job + ".prom")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            names = collections.Counter()
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    names[line.split("{", 1)[0].split(" ", 1)[0]] += 1
            for s in SYNTHETIC:
                names[s] += 1
            self.jobs.append(job)
            self.nseries[job] = n + len(SYNTHETIC)
            self.names[job] = names
        self.port = h.start_nginx(self.root)
        for job in self.jobs:
            self.set_sd(job, True)

    def sd_file(self, job):
        return os.path.join(self.sd_dir, job + ".json")

    def set_sd(self, job, present):
        groups = [{"targets": ["127.0.0.1:%d" % self.port], "labels": {}}] if present else []
        tmp = self.sd_file(job) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(groups, f)
        os.rename(tmp, self.sd_file(job))

    def remove_all(self):
        for job in self.jobs:
            self.set_sd(job, False)

    def scrape_configs(self):
        return "".join("""  - job_name: %s
    metrics_path: /%s.prom
    file_sd_configs: [{files: ['%s'], refresh_interval: 1s}]
""" % (job, job, self.sd_file(job)) for job in self.jobs)


def start_receiver_prometheus():
    """A fresh Prometheus 2.42 remote-write receiver; returns (base, proc, dir)."""
    return h.start_prometheus("global:\n  scrape_interval: 1h\n", extra_args=["--web.enable-remote-write-receiver"])


class Run:
    """`scrapeship run` with a config, its log and its self-metrics."""

    def __init__(self, config_text, shutdown_timeout="30s", tee=False):
        self.dir = h.tmpdir("ss-run-")
        self.cfg = os.path.join(self.dir, "scrapeship.yml")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "scrapeship.log")
        self.port = h.free_port()
        self.tee = os.path.join(self.dir, "tee.jsonl") if tee else None
        self.t_start = time.time()
        self.proc = h.start([h.BIN, "run", "--config", self.cfg, "--web.listen-address", "127.0.0.1:%d" % self.port,
                             "--shutdown-timeout", shutdown_timeout] + (["--tee", self.tee] if tee else []),
                            self.log_path)
        h.wait_http("http://127.0.0.1:%d/healthz" % self.port, timeout=30, what="scrapeship")

    def metrics(self):
        _, body = h.http_get("http://127.0.0.1:%d/metrics" % self.port, timeout=10)
        return fr.parse_metrics(body.decode("utf-8", "replace"))

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout=60):
        return h.stop(self.proc, signal.SIGTERM, timeout=timeout)


def drops(ms):
    """{reason: dropped samples} from scrapeship_remote_samples_dropped_total."""
    out = {}
    for (name, ls), v in ms.items():
        if name == "scrapeship_remote_samples_dropped_total":
            r = dict(ls).get("reason", "")
            out[r] = out.get(r, 0) + v
    return out


def remote_numbers(ms):
    m = fr.metric
    return {"in": m(ms, "scrapeship_remote_samples_in_total"),
            "sent": m(ms, "scrapeship_remote_samples_total"),
            "dropped": sum(drops(ms).values()),
            "queue": m(ms, "scrapeship_remote_queue_samples"),
            "disk": m(ms, "scrapeship_remote_disk_samples"),
            "spilling": m(ms, "scrapeship_remote_spilling"),
            "shards": m(ms, "scrapeship_remote_shards"),
            "targets": m(ms, "scrapeship_targets")}


def wait_targets_gone(run, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if remote_numbers(run.metrics())["targets"] == 0:
            return True
        time.sleep(0.5)
    return False


def wait_drained(run, timeout=180, settle=2.0):
    """Until nothing is queued (memory or disk) and every sample handed to the remote
    was delivered or dropped, with samples_in unchanged over `settle` seconds.
    Returns (drained, last metrics)."""
    deadline = time.time() + timeout
    last_in, since = None, None
    ms = run.metrics()
    while time.time() < deadline:
        ms = run.metrics()
        n = remote_numbers(ms)
        done = n["queue"] == 0 and n["disk"] == 0 and n["spilling"] == 0 and n["in"] == n["sent"] + n["dropped"]
        if done and n["in"] == last_in:
            if time.time() - since >= settle:
                return True, ms
        else:
            since = time.time()
        last_in = n["in"] if done else None
        time.sleep(0.5)
    return False, ms


# ---- the exact completeness check against Prometheus ------------------------------

def scrape_timestamps(base, job):
    """The job's scrape timestamps (ms) as stored in Prometheus: every timestamp of its
    synthetic series (up, scrape_*) and its one-series gauges, so that a scrape whose
    `up` sample alone was lost still counts."""
    data = query(base, '{job="%s",__name__=~"up|scrape_.*|go_goroutines|process_open_fds"}[1h]' % job)
    out = set()
    for r in data["result"]:
        out.update(int(round(t * 1000)) for t, _ in r["values"])
    return sorted(out)


def query(base, q, at=None):
    """h.prom_query, with Prometheus' error message in the exception."""
    try:
        return h.prom_query(base, q, at)
    except urllib.error.HTTPError as e:
        raise RuntimeError("query %r: HTTP %d: %s" % (q, e.code, e.read()[:300]))


def scalar(base, q, at=None):
    res = query(base, q, at)["result"]
    if not res:
        return 0
    return float(res[0]["value"][1])


def parallel(fn, items, workers=4):
    """[fn(x) for x in items], a few at a time (Prometheus answers queries in parallel)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def check_job_complete(chk, base, targets, job, scrapes_total, label):
    """Exact: every one of the `scrapes_total` scrapes of `job` (scrapeship's count)
    has every series of the job in Prometheus, and nothing else is there. Returns the
    number of scrape timestamps found."""
    nseries = targets.nseries[job]
    want_names = dict(targets.names[job])
    ts = scrape_timestamps(base, job)
    nscr = scrapes_total
    chk.ok(len(ts) == scrapes_total,
           "%s job %s: samples at %d distinct scrape timestamps in Prometheus but scrapeship counts %d scrapes"
           % (label, job, len(ts), scrapes_total))
    # 1. at every scrape timestamp, every series has a sample stamped exactly then:
    #    [1ms] at t holds only the samples stamped t (scrapes are an interval apart);
    #    last_over_time keeps the metric name, so series differing only by it stay apart
    counts = parallel(lambda t: scalar(base, 'count(last_over_time({job="%s"}[1ms]))' % job, at=t / 1000.0), ts)
    short = [(t, int(n)) for t, n in zip(ts, counts) if n != nseries]
    chk.ok(not short, "%s job %s: %d of %d scrapes with series missing in Prometheus (timestamp ms, series "
           "found of %d): %s" % (label, job, len(short), len(ts), nseries, short[:10]))
    # 2. the series, per metric name, are the exposition's (plus the synthetic ones)
    per_name = {}
    for r in query(base, 'count by (__name__) (last_over_time({job="%s"}[1h]))' % job)["result"]:
        per_name[r["metric"].get("__name__", "")] = int(float(r["value"][1]))
    diff = {k: (per_name.get(k, 0), want_names.get(k, 0)) for k in set(per_name) | set(want_names)
            if per_name.get(k, 0) != want_names.get(k, 0)}
    chk.ok(not diff, "%s job %s: series per metric name differ (stored, exposed): %s"
           % (label, job, dict(list(diff.items())[:10])))
    # 3. every series has exactly one sample per scrape: per metric name, the number of
    #    series by sample count (count_values keeps the answer small)
    names = sorted(want_names)
    answers = parallel(lambda name: query(base, 'count_values("n", count_over_time({__name__="%s",job="%s"}[1h]))'
                                          % (name, job))["result"], names)
    bad, total = {}, 0
    for name, res in zip(names, answers):
        hist = {}
        for r in res:
            c, k = int(r["metric"]["n"]), int(float(r["value"][1]))
            hist[c] = k
            total += c * k
        if hist != {nscr: want_names[name]}:
            bad[name] = hist
    chk.ok(not bad, "%s job %s: series without exactly %d samples, one per scrape ({metric: {samples: series}}): %s"
           % (label, job, nscr, dict(list(bad.items())[:5])))
    chk.ok(total == nseries * nscr, "%s job %s: %d samples stored, want %d series x %d scrapes = %d"
           % (label, job, total, nseries, nscr, nseries * nscr))
    print("%s job %s: %d scrapes x %d series checked (%d samples stored, %d expected)"
          % (label, job, nscr, nseries, total, nscr * nseries), flush=True)
    return len(ts)


def prom_write_status(base):
    """{code: requests} of Prometheus' own /api/v1/write handler."""
    _, body = h.http_get(base + "/metrics", timeout=10)
    out = {}
    for (name, ls), v in fr.parse_metrics(body.decode()).items():
        d = dict(ls)
        if name == "prometheus_http_requests_total" and d.get("handler") == "/api/v1/write":
            out[d.get("code", "")] = out.get(d.get("code", ""), 0) + v
    return out


def prom_out_of_order(base):
    """Sum of Prometheus' out-of-order / out-of-bounds / too-old counters (2.42 names)."""
    _, body = h.http_get(base + "/metrics", timeout=10)
    total, names = 0.0, []
    for (name, ls), v in fr.parse_metrics(body.decode()).items():
        if name.startswith("prometheus_tsdb_") and ("out_of_order" in name or "out_of_bound" in name
                                                    or "too_old" in name) and "exemplar" not in name:
            total += v
            names.append(name)
    return total, sorted(set(names))


def prom_log_rejections(prom_dir):
    p = os.path.join(prom_dir, "prometheus.log")
    if not os.path.exists(p):
        return []
    out = []
    for line in open(p, errors="replace"):
        low = line.lower()
        if "out of order" in low or "out-of-order" in low or "out of bounds" in low or "too old" in low:
            out.append(line.strip())
    return out
