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

usage: gen_targets.py OUTDIR N M [SEED] [--shape=service|openmetrics|ksm|cadvisor]
writes OUTDIR/0 .. OUTDIR/N-1, M series each; the exact series count of each file is M
(the last family is cut to fit).

--shape=ksm writes what kube-state-metrics exposes for a cluster's pods instead: no
histograms, gauges with 0/1 and Unix-time values, grouped by family (all pods'
kube_pod_info, then all pods' kube_pod_status_phase, ...), with the long label values
KSM has (pod UIDs, images, image digests, container IDs), about 32 series per pod.

--shape=cadvisor writes what the kubelet's /metrics/cadvisor exposes for one node's
pods: family by family, for every cgroup (the pod's, its pause container's, its
containers'), with the long `id` (the cgroup path, pod UID and container ID in it),
`image`, `name` (the container ID) labels, per-device, per-interface and per-state
series, and a timestamp in milliseconds on every sample, about 50 series per cgroup.
The timestamps do not move between scrapes (the file is static), so the bench scrapes
it with honor_timestamps: false, as kube-prometheus scrapes the kubelet's cAdvisor.

--shape=openmetrics writes the service shape as OpenMetrics 1.0.0, as the Java and
Python clients answer a scraper that asks for it (Prometheus does): counter families
named without `_total` in HELP and TYPE, and `# EOF` at the end. The bench's nginx
serves it as application/openmetrics-text.
"""
import gzip
import os
import random
import re
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


# ---- kube-state-metrics shape ------------------------------------------------------------

KSM_NAMESPACES = ["default", "kube-system", "monitoring", "payments", "checkout", "search", "ingress-nginx",
                  "cert-manager", "data-pipeline", "batch-jobs", "web-frontend", "identity"]
KSM_APPS = ["api", "worker", "frontend", "scheduler", "indexer", "gateway", "consumer", "cache", "exporter",
            "migrator", "notifier", "renderer"]
KSM_IMAGES = ["registry.example.com/%s/%s:v1.%d.%d", "docker.io/library/%s-%s:2.%d.%d",
              "ghcr.io/example/%s-%s:release-%d.%d"]
PHASES = ["Pending", "Succeeded", "Failed", "Unknown", "Running"]
CONDITIONS = ["true", "false", "unknown"]
QOS = ["BestEffort", "Burstable", "Guaranteed"]


def ksm_pods(count, rng):
    pods = []
    for _ in range(count):
        ns = rng.choice(KSM_NAMESPACES)
        app = rng.choice(KSM_APPS)
        rs = "%08x" % rng.getrandbits(32)
        pod = "%s-%s-%s-%s" % (ns.split("-")[0], app, rs[:9], "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789")
                                                                      for _ in range(5)))
        uid = "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                              rng.getrandbits(16), rng.getrandbits(48))
        node = "ip-10-%d-%d-%d.eu-west-1.compute.internal" % (rng.randint(0, 255), rng.randint(0, 255),
                                                               rng.randint(1, 254))
        image = rng.choice(KSM_IMAGES) % (ns, app, rng.randint(0, 40), rng.randint(0, 9))
        created = 1_700_000_000 + rng.randint(0, 30_000_000)
        pods.append({
            "namespace": ns, "pod": pod, "uid": uid, "node": node, "app": app, "rs": "%s-%s" % (app, rs[:9]),
            "host_ip": "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)),
            "pod_ip": "100.%d.%d.%d" % (rng.randint(64, 127), rng.randint(0, 255), rng.randint(1, 254)),
            "container": app, "image": image,
            "image_id": "%s@sha256:%064x" % (image.split(":")[0], rng.getrandbits(256)),
            "container_id": "containerd://%064x" % rng.getrandbits(256),
            "created": created, "phase": rng.choice(PHASES[:1] + PHASES[4:] * 30), "qos": rng.choice(QOS),
            "restarts": rng.choice([0] * 8 + [1, 2, 3, 17]),
            "cpu": rng.choice([0.05, 0.1, 0.25, 0.5, 1, 2]), "mem": rng.choice([64, 128, 256, 512, 1024, 4096]) << 20,
        })
    return pods


def ksm_families():
    """(name, type, help, fn(pod) -> [(extra labels, value)]); pod labels come first."""
    base = ("namespace", "pod", "uid")

    def one(v):
        return lambda p: [((), v(p))]

    def res(kind):
        return lambda p: [((("container", p["container"]), ("node", p["node"]), ("resource", "cpu"),
                            ("unit", "core")), p["cpu"] * (1 if kind == "requests" else 2)),
                          ((("container", p["container"]), ("node", p["node"]), ("resource", "memory"),
                            ("unit", "byte")), p["mem"] * (1 if kind == "requests" else 2))]

    def cont(v):
        return lambda p: [(((("container", p["container"]),)), v(p))]

    return [
        ("kube_pod_info", "gauge", "Information about pod.", base, lambda p: [(
            (("host_ip", p["host_ip"]), ("pod_ip", p["pod_ip"]), ("node", p["node"]),
             ("created_by_kind", "ReplicaSet"), ("created_by_name", p["rs"]), ("priority_class", ""),
             ("host_network", "false")), 1)]),
        ("kube_pod_start_time", "gauge", "Start time in unix timestamp for a pod.", base,
         one(lambda p: p["created"] + 3)),
        ("kube_pod_created", "gauge", "Unix creation timestamp", base, one(lambda p: p["created"])),
        ("kube_pod_owner", "gauge", "Information about the Pod's owner.", base, lambda p: [(
            (("owner_kind", "ReplicaSet"), ("owner_name", p["rs"]), ("owner_is_controller", "true")), 1)]),
        ("kube_pod_labels", "gauge", "Kubernetes labels converted to Prometheus labels.", base, lambda p: [(
            (("label_app", p["app"]), ("label_pod_template_hash", p["rs"].split("-")[-1])), 1)]),
        ("kube_pod_restart_policy", "gauge", "Describes the restart policy in use by this pod.", base,
         lambda p: [((("type", "Always"),), 1)]),
        ("kube_pod_status_scheduled_time", "gauge", "Unix timestamp when pod moved into scheduled status",
         base, one(lambda p: p["created"] + 1)),
        ("kube_pod_status_phase", "gauge", "The pods current phase.", base,
         lambda p: [((("phase", ph),), 1 if ph == p["phase"] else 0) for ph in PHASES]),
        ("kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests.", base,
         lambda p: [((("condition", c),), 1 if c == ("true" if p["phase"] == "Running" else "false") else 0)
                    for c in CONDITIONS]),
        ("kube_pod_status_scheduled", "gauge", "Describes the status of the scheduling process for the pod.",
         base, lambda p: [((("condition", c),), 1 if c == "true" else 0) for c in CONDITIONS]),
        ("kube_pod_status_qos_class", "gauge", "The pods current qosClass.", base,
         lambda p: [((("qos_class", q),), 1 if q == p["qos"] else 0) for q in QOS]),
        ("kube_pod_container_info", "gauge", "Information about a container in a pod.", base, lambda p: [(
            (("container", p["container"]), ("image_spec", p["image"]), ("image", p["image"]),
             ("image_id", p["image_id"]), ("container_id", p["container_id"])), 1)]),
        ("kube_pod_container_status_waiting", "gauge", "Describes whether the container is currently in "
         "waiting state.", base, cont(lambda p: 0 if p["phase"] == "Running" else 1)),
        ("kube_pod_container_status_running", "gauge", "Describes whether the container is currently in "
         "running state.", base, cont(lambda p: 1 if p["phase"] == "Running" else 0)),
        ("kube_pod_container_status_terminated", "gauge", "Describes whether the container is currently in "
         "terminated state.", base, cont(lambda p: 0)),
        ("kube_pod_container_status_ready", "gauge", "Describes whether the containers readiness check "
         "succeeded.", base, cont(lambda p: 1 if p["phase"] == "Running" else 0)),
        ("kube_pod_container_status_restarts_total", "counter", "The number of container restarts per "
         "container.", base, cont(lambda p: p["restarts"])),
        ("kube_pod_container_state_started", "gauge", "Start time in unix timestamp for a pod container.",
         base, cont(lambda p: p["created"] + 5)),
        ("kube_pod_container_resource_requests", "gauge", "The number of requested request resource by a "
         "container.", base, res("requests")),
        ("kube_pod_container_resource_limits", "gauge", "The number of requested limit resource by a "
         "container.", base, res("limits")),
    ]


def render_ksm(m, rng):
    """Exactly m series: enough pods for m, then family by family until m are out."""
    fams = ksm_families()
    per_pod = sum(len(fn({"container": "", "node": "", "cpu": 0, "mem": 0, "phase": "Running", "qos": "",
                          "host_ip": "", "pod_ip": "", "rs": "a-b", "app": "", "image": "", "image_id": "",
                          "container_id": "", "created": 0, "restarts": 0})) for _, _, _, _, fn in fams)
    pods = ksm_pods(max(1, -(-m // per_pod)), rng)
    out, n = [], 0
    for name, mtype, help_text, base, fn in fams:
        if n >= m:
            break
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s %s" % (name, mtype))
        for p in pods:
            for extra, v in fn(p):
                if n >= m:
                    break
                labels = ",".join('%s="%s"' % (k, p[k]) for k in base)
                labels += "".join(',%s="%s"' % kv for kv in extra)
                out.append("%s{%s} %s" % (name, labels, repr(v) if isinstance(v, float) else v))
                n += 1
    assert n == m, (n, m)
    return "\n".join(out) + "\n"


# ---- the kubelet's cAdvisor shape -------------------------------------------------------

TASK_STATES = ["iowait", "running", "sleeping", "stopped", "uninterruptible"]
# (name, type, help, extra label sets (None: one series), pod cgroup only, value kind)
CADVISOR_FAMILIES = [
    ("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals.", None,
     False, "count"),
    ("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals.", None,
     False, "count"),
    ("container_cpu_cfs_throttled_seconds_total", "counter", "Total time duration the container has been "
     "throttled.", None, False, "seconds"),
    ("container_cpu_system_seconds_total", "counter", "Cumulative system cpu time consumed in seconds.", None,
     False, "seconds"),
    ("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.",
     [[("cpu", "total")]], False, "seconds"),
    ("container_cpu_user_seconds_total", "counter", "Cumulative user cpu time consumed in seconds.", None,
     False, "seconds"),
    ("container_file_descriptors", "gauge", "Number of open file descriptors for the container.", None, False,
     "small"),
    ("container_fs_reads_bytes_total", "counter", "Cumulative count of bytes read", [[("device", "/dev/nvme0n1")]],
     False, "bytes"),
    ("container_fs_reads_total", "counter", "Cumulative count of reads completed",
     [[("device", "/dev/nvme0n1")]], False, "count"),
    ("container_fs_writes_bytes_total", "counter", "Cumulative count of bytes written",
     [[("device", "/dev/nvme0n1")]], False, "bytes"),
    ("container_fs_writes_total", "counter", "Cumulative count of writes completed",
     [[("device", "/dev/nvme0n1")]], False, "count"),
    ("container_last_seen", "gauge", "Last time a container was seen by the exporter", None, False, "now"),
    ("container_memory_cache", "gauge", "Number of bytes of page cache memory.", None, False, "bytes"),
    ("container_memory_failcnt", "counter", "Number of memory usage hits limits", None, False, "zero"),
    ("container_memory_failures_total", "counter", "Cumulative count of memory allocation failures.",
     [[("failure_type", f), ("scope", sc)] for f in ("pgfault", "pgmajfault") for sc in ("container", "hierarchy")],
     False, "count"),
    ("container_memory_mapped_file", "gauge", "Size of memory mapped files in bytes.", None, False, "bytes"),
    ("container_memory_max_usage_bytes", "gauge", "Maximum memory usage recorded in bytes", None, False, "bytes"),
    ("container_memory_rss", "gauge", "Size of RSS in bytes.", None, False, "bytes"),
    ("container_memory_swap", "gauge", "Container swap usage in bytes.", None, False, "zero"),
    ("container_memory_usage_bytes", "gauge", "Current memory usage in bytes, including all memory regardless "
     "of when it was accessed", None, False, "bytes"),
    ("container_memory_working_set_bytes", "gauge", "Current working set in bytes.", None, False, "bytes"),
    ("container_network_receive_bytes_total", "counter", "Cumulative count of bytes received",
     [[("interface", "eth0")]], True, "bytes"),
    ("container_network_receive_errors_total", "counter", "Cumulative count of errors encountered while "
     "receiving", [[("interface", "eth0")]], True, "zero"),
    ("container_network_receive_packets_dropped_total", "counter", "Cumulative count of packets dropped while "
     "receiving", [[("interface", "eth0")]], True, "zero"),
    ("container_network_receive_packets_total", "counter", "Cumulative count of packets received",
     [[("interface", "eth0")]], True, "count"),
    ("container_network_transmit_bytes_total", "counter", "Cumulative count of bytes transmitted",
     [[("interface", "eth0")]], True, "bytes"),
    ("container_network_transmit_errors_total", "counter", "Cumulative count of errors encountered while "
     "transmitting", [[("interface", "eth0")]], True, "zero"),
    ("container_network_transmit_packets_dropped_total", "counter", "Cumulative count of packets dropped "
     "while transmitting", [[("interface", "eth0")]], True, "zero"),
    ("container_network_transmit_packets_total", "counter", "Cumulative count of packets transmitted",
     [[("interface", "eth0")]], True, "count"),
    ("container_oom_events_total", "counter", "Count of out of memory events observed for the container",
     None, False, "zero"),
    ("container_processes", "gauge", "Number of processes running inside the container.", None, False, "small"),
    ("container_sockets", "gauge", "Number of open sockets for the container.", None, False, "small"),
    ("container_spec_cpu_period", "gauge", "CPU period of the container.", None, False, "period"),
    ("container_spec_cpu_shares", "gauge", "CPU share of the container.", None, False, "shares"),
    ("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", None, False, "bytes"),
    ("container_spec_memory_reservation_limit_bytes", "gauge", "Memory reservation limit for the container.",
     None, False, "zero"),
    ("container_spec_memory_swap_limit_bytes", "gauge", "Memory swap limit for the container.", None, False,
     "bytes"),
    ("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds.", None,
     False, "start"),
    ("container_tasks_state", "gauge", "Number of tasks in given state", [[("state", st)] for st in TASK_STATES],
     False, "small"),
    ("container_threads", "gauge", "Number of threads running inside the container", None, False, "small"),
    ("container_threads_max", "gauge", "Maximum number of threads allowed inside the container, infinity if "
     "value is zero", None, False, "small"),
    ("container_ulimits_soft", "gauge", "Soft ulimit values for the container root process. Unlimited if -1, "
     "except priority and nice", [[("ulimit", "max_open_files")]], False, "files"),
]
CADVISOR_NOW_MS = 1_765_000_000_000


def cadvisor_cgroups(npods, rng):
    """Each pod's cgroups: the pod's own (container, image and name empty), its pause
    container's and one or two containers'."""
    out = []
    for p in ksm_pods(npods, rng):
        uid = p["uid"].replace("-", "_")
        qos = p["qos"].lower()
        pod_path = "/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice" % (qos, qos, uid)
        common = {"namespace": p["namespace"], "pod": p["pod"]}
        out.append(dict(common, container="", id=pod_path, image="", name="", pod_cgroup=True))
        for cname, image in [("POD", "registry.k8s.io/pause:3.9"), (p["container"], p["image"])] + (
                [("istio-proxy", "docker.io/istio/proxyv2:1.20.%d" % rng.randint(0, 9))] if rng.random() < 0.3
                else []):
            cid = "%064x" % rng.getrandbits(256)
            out.append(dict(common, container=cname if cname != "POD" else "", id="%s/cri-containerd-%s.scope"
                            % (pod_path, cid), image=image, name=cid, pod_cgroup=False))
    return out


def cadvisor_value(kind, rng):
    if kind == "seconds":
        return "%.6f" % rng.uniform(0, 500_000)
    if kind == "bytes":
        return "%d" % (rng.randint(1, 4096) << 20)
    if kind == "count":
        return "%d" % rng.randint(0, 10**9)
    if kind == "small":
        return "%d" % rng.randint(0, 200)
    if kind == "zero":
        return "0"
    if kind == "now":
        return "%d" % (CADVISOR_NOW_MS // 1000)
    if kind == "start":
        return "%d" % (CADVISOR_NOW_MS // 1000 - rng.randint(60, 3_000_000))
    if kind == "period":
        return "100000"
    if kind == "shares":
        return "%d" % rng.choice([2, 102, 256, 512, 1024])
    return "1.048576e+06"  # files


def render_cadvisor(m, rng):
    """Exactly m series: enough pods for m, then family by family until m are out."""
    per_pod = 0
    probe = [{"pod_cgroup": True}, {"pod_cgroup": False}, {"pod_cgroup": False}]
    for _, _, _, extra, pod_only, _ in CADVISOR_FAMILIES:
        per_pod += sum(len(extra or [[]]) for c in probe if c["pod_cgroup"] or not pod_only)
    cgroups = cadvisor_cgroups(max(1, -(-m // per_pod) + 1), rng)
    out, n = [], 0
    for name, mtype, help_text, extra, pod_only, kind in CADVISOR_FAMILIES:
        if n >= m:
            break
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s %s" % (name, mtype))
        for c in cgroups:
            if pod_only and not c["pod_cgroup"]:
                continue
            for ex in extra or [[]]:
                if n >= m:
                    break
                pairs = sorted([(k, c[k]) for k in ("container", "id", "image", "name", "namespace", "pod")] + ex)
                ts = CADVISOR_NOW_MS - rng.randint(0, 15_000)
                out.append("%s{%s} %s %d" % (name, ",".join('%s="%s"' % kv for kv in pairs),
                                             cadvisor_value(kind, rng), ts))
                n += 1
    assert n == m, (n, m)
    return "\n".join(out) + "\n"


def to_openmetrics(text):
    """A service-shape body in OpenMetrics: a counter's family drops `_total`."""
    out = []
    counters = set(re.findall(r"^# TYPE (\S+)_total counter$", text, re.M))
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE") and \
                parts[2].endswith("_total") and parts[2][:-6] in counters:
            parts[2] = parts[2][:-6]
            line = " ".join(parts)
        out.append(line)
    return "\n".join(out) + "\n# EOF\n"


def main():
    shape = "service"
    argv = []
    for a in sys.argv[1:]:
        if a.startswith("--shape="):
            shape = a.split("=", 1)[1]
        else:
            argv.append(a)
    if len(argv) not in (3, 4) or shape not in ("service", "openmetrics", "ksm", "cadvisor"):
        raise SystemExit(__doc__)
    outdir, n, m = argv[0], int(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) == 4 else 1
    if not (1 <= n <= MAX_TARGETS and 1 <= m <= MAX_SERIES):
        raise SystemExit("gen_targets: need 1 <= N <= %d and 1 <= M <= %d" % (MAX_TARGETS, MAX_SERIES))
    total = 0
    for i in range(n):
        d = os.path.join(outdir, str(i))
        os.makedirs(d, exist_ok=True)
        rng = random.Random(seed * 1_000_003 + i)
        body = {"ksm": render_ksm, "cadvisor": render_cadvisor}.get(shape, render)(m, rng)
        body = (to_openmetrics(body) if shape == "openmetrics" else body).encode()
        with open(os.path.join(d, "metrics"), "wb") as f:
            f.write(body)
        with open(os.path.join(d, "metrics.gz"), "wb") as f:
            f.write(gzip.compress(body, compresslevel=6, mtime=0))
        total += len(body)
    print("gen_targets: %d targets x %d series (%s), %.1f KiB per target" % (n, m, shape, total / n / 1024.0))


if __name__ == "__main__":
    main()
