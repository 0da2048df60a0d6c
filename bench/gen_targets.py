#!/usr/bin/python3
"""gen_targets.py: write the bench's scrape targets as static exposition files.

Each target is one directory holding `metrics` (Prometheus text 0.0.4) and
`metrics.gz` (served by nginx's gzip_static to clients that accept gzip, as Go
exporters gzip their answers). The series mix is what a typical instrumented
service exposes, by series count: about half histogram series (12 buckets plus _sum
and _count per label set), about a third counters, the rest gauges, with HELP and
TYPE lines and the label names and value lengths of real services (handler, method,
code, service, ...). Values differ per series and per target but not over time: the
tools' cost does not depend on whether a value changed, and remote write carries
every sample anyway.

usage: gen_targets.py OUTDIR N M [SEED]   writes OUTDIR/0 .. OUTDIR/N-1, M series each
The exact series count of each file is M (the last family is cut to fit).
"""
import gzip
import os
import random
import sys

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
HANDLERS = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users", "/api/v1/users/{id}",
            "/api/v1/cart", "/api/v1/checkout", "/api/v1/search", "/healthz", "/metrics",
            "/api/v2/inventory", "/api/v2/inventory/{sku}", "/api/v2/payments"]
METHODS = ["GET", "POST", "PUT", "DELETE"]
CODES = ["200", "201", "204", "400", "404", "500", "503"]
SERVICES = ["payments.PaymentService", "inventory.StockService", "users.UserService",
            "search.SearchService", "orders.OrderService"]
RPCS = ["Get", "List", "Create", "Update", "Delete", "Watch"]
STATUSES = ["OK", "NOT_FOUND", "UNAVAILABLE", "DEADLINE_EXCEEDED"]
QUEUES = ["email", "billing", "indexer", "thumbnails", "webhooks", "exports"]
CACHES = ["sessions", "products", "prices", "users"]
MAX_SERIES = 10_000_000  # per target: keeps a typo from filling the disk
MAX_TARGETS = 100_000


# (family, type, help, label dimensions, share of the target's series)
FAMILIES = [
    ("http_request_duration_seconds", "histogram",
     "Latency of HTTP requests by handler, method and status code.",
     [("handler", HANDLERS), ("method", METHODS), ("code", CODES)], 0.35),
    ("grpc_client_handling_seconds", "histogram", "Latency of outgoing gRPC calls.",
     [("grpc_service", SERVICES), ("grpc_method", RPCS), ("grpc_code", STATUSES)], 0.15),
    ("http_requests_total", "counter", "HTTP requests by handler, method and status code.",
     [("handler", HANDLERS), ("method", METHODS), ("code", CODES)], 0.15),
    ("grpc_client_handled_total", "counter", "Outgoing gRPC calls by service, method and code.",
     [("grpc_service", SERVICES), ("grpc_method", RPCS), ("grpc_code", STATUSES)], 0.08),
    ("http_response_size_bytes_total", "counter", "Bytes sent in HTTP responses.",
     [("handler", HANDLERS), ("method", METHODS), ("code", CODES)], 0.07),
    ("process_open_fds", "gauge", "Number of open file descriptors.", [], 0.0),
    ("go_goroutines", "gauge", "Number of goroutines that currently exist.", [], 0.0),
    ("db_pool_connections", "gauge", "Database pool connections by state.",
     [("pool", ["primary", "replica-1", "replica-2", "analytics"]),
      ("state", ["idle", "in_use", "waiting"])], 0.012),
    ("worker_queue_depth", "gauge", "Jobs waiting per queue and priority.",
     [("queue", QUEUES), ("priority", ["low", "normal", "high"])], 0.018),
    # the last family takes whatever is left, so a file has exactly M series
    ("cache_entries", "gauge", "Entries per cache shard.",
     [("cache", CACHES), ("shard", [str(i) for i in range(64)])], None),
]
PER_SET = {"histogram": len(BUCKETS) + 2, "counter": 1, "gauge": 1}


def label_sets(dims, rng):
    """Endless label sets for one family: every combination of dims in a per-target
    shuffled order, then again with a `replica` label when a large M needs more."""
    combos = [[]]
    for name, values in dims:
        combos = [c + [(name, v)] for c in combos for v in values]
    rng.shuffle(combos)
    for rnd in range(MAX_SERIES):
        for c in combos:
            yield c if rnd == 0 else c + [("replica", str(rnd))]


def fmt_labels(pairs):
    pairs = sorted(pairs, key=lambda kv: kv[0] == "le")  # le last, as client libraries do
    return "{" + ",".join('%s="%s"' % kv for kv in pairs) + "}" if pairs else ""


def series_lines(name, mtype, labels, rng):
    """The exposition lines of one label set of one family."""
    if mtype == "histogram":
        count = rng.randint(1_000, 50_000_000)
        lines, acc = [], 0
        for le in BUCKETS[:-1]:
            acc += rng.randint(0, max(1, (count - acc) // 3))
            lines.append("%s_bucket%s %d" % (name, fmt_labels(labels + [("le", le)]), acc))
        lines.append("%s_bucket%s %d" % (name, fmt_labels(labels + [("le", "+Inf")]), count))
        lines.append("%s_sum%s %.6f" % (name, fmt_labels(labels), count * rng.uniform(0.01, 0.4)))
        lines.append("%s_count%s %d" % (name, fmt_labels(labels), count))
        return lines
    if mtype == "counter":
        return ["%s%s %d" % (name, fmt_labels(labels), rng.randint(0, 10**9))]
    return ["%s%s %s" % (name, fmt_labels(labels), repr(round(rng.uniform(0, 5000), rng.randint(0, 3))))]


def render(m, rng):
    """Exactly m series, each family getting its share (whole histograms only)."""
    out, n = [], 0
    for name, mtype, help_text, dims, share in FAMILIES:
        per = PER_SET[mtype]
        if share is None:
            want = m - n
        else:
            want = max(per if share else 1, int(m * share) // per * per)
        want = min(want, (m - n) // per * per)
        if want <= 0:
            continue
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s %s" % (name, mtype))
        sets = label_sets(dims, rng)
        for _ in range(want // per):
            out.extend(series_lines(name, mtype, next(sets), rng))
        n += want
    assert n == m, (n, m)
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    outdir, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    if not (1 <= n <= MAX_TARGETS and 1 <= m <= MAX_SERIES):
        raise SystemExit("gen_targets: need 1 <= N <= %d and 1 <= M <= %d" % (MAX_TARGETS, MAX_SERIES))
    total = 0
    for i in range(n):
        d = os.path.join(outdir, str(i))
        os.makedirs(d, exist_ok=True)
        body = render(m, random.Random(seed * 1_000_003 + i)).encode()
        with open(os.path.join(d, "metrics"), "wb") as f:
            f.write(body)
        with open(os.path.join(d, "metrics.gz"), "wb") as f:
            f.write(gzip.compress(body, compresslevel=6, mtime=0))
        total += len(body)
    print("gen_targets: %d targets x %d series, %.1f KiB per target" % (n, m, total / n / 1024.0))


if __name__ == "__main__":
    main()
