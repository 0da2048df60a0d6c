#!/usr/bin/python3
"""fake_receiver.py: a scripted Prometheus remote-write receiver, and the helpers the
remote-write delivery tests (test_remote_write_*.py) share.

As a program it is a ThreadingHTTPServer on 127.0.0.1 that answers each POST as its
script says, in arrival order, then 200 once the script is used up. A script is a JSON
list of entries:

    {"status": 500, "retry_after": "2", "delay": 1.5, "body": "text", "repeat": 3,
     "kind": "series"}

all keys optional (status 200, no Retry-After, no delay, a short body, repeat 1). "kind"
("series", "metadata" or "any", the default) limits the entry to requests of that kind;
a request of another kind is answered 200 without using the entry up, so a metadata
send cannot shift a test's script. Entries can be appended while running with
POST /-/script (same JSON), and GET /-/state reports how much of the script is left.

Every POST body is decoded as the spec says (remote-write 1.0: snappy block format,
then a prometheus.WriteRequest) with python3-snappy and the official prompb schema,
compiled at start with protoc into a temp dir (gogoproto stubbed as
test_wire_python.py does). The receiver checks what the spec requires of a request:
the four headers (Content-Encoding: snappy, Content-Type: application/x-protobuf,
X-Prometheus-Remote-Write-Version: 0.1.0, a User-Agent), labels sorted by name in byte
order, unique, non-empty, with __name__, samples oldest first. Each request is logged
as one JSON line (times, headers, body hash, what was answered, every series with its
samples, problems found). A body that does not decode is answered 400, as a real
receiver would.

To test "receiver down", the test simply starts the receiver later on a fixed --port.

As a module it gives the tests: Receiver (start one as a subprocess, read its log),
a static scrape target on nginx, config writing, starting scrapeship with --tee,
reading /metrics and the tee file, and sample bookkeeping keyed by (labels, timestamp).
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA_DIR = os.environ.get("SS_CORPORA_DIR", "/work/shared/corpora")
PROTO_DIR = os.path.join(CORPORA_DIR, "remotewrite", "proto")
STALE_BITS = 0x7FF0000000000002
MAX_BODY = 64 << 20  # a remote-write body larger than this is a bug in the sender
MAX_DELAY = 60.0

REQUIRED_HEADERS = {
    "content-encoding": "snappy",
    "content-type": "application/x-protobuf",
    "x-prometheus-remote-write-version": "0.1.0",
}


# ---- the receiver program ---------------------------------------------------------

def compile_schema(tmp):
    """Generate the official prompb Python classes into tmp; returns the remote_pb2 module."""
    import importlib
    from google.protobuf import descriptor_pb2
    out = os.path.join(tmp, "py")
    os.makedirs(out, exist_ok=True)
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    official = os.path.join(PROTO_DIR, "official")
    # official/*.proto import gogoproto/gogo.proto for Go-only options; declare the one
    # option they use so the files compile unmodified.
    stub = os.path.join(tmp, "stub")
    os.makedirs(os.path.join(stub, "gogoproto"), exist_ok=True)
    with open(os.path.join(stub, "gogoproto", "gogo.proto"), "w") as f:
        f.write('syntax = "proto2";\npackage gogoproto;\n'
                'import "google/protobuf/descriptor.proto";\n'
                "extend google.protobuf.FieldOptions { optional bool nullable = 65001; }\n")
    fds = descriptor_pb2.FileDescriptorSet()
    descriptor_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    desc = os.path.join(tmp, "descriptor.pb")
    with open(desc, "wb") as f:
        f.write(fds.SerializeToString())
    r = subprocess.run([protoc, "--descriptor_set_in=" + desc, "-I" + stub, "-I" + official,
                        "--python_out=" + out, os.path.join(stub, "gogoproto", "gogo.proto"),
                        os.path.join(official, "types.proto"), os.path.join(official, "remote.proto")],
                       capture_output=True)
    if r.returncode != 0:
        # the gogo-free copy differs only in options that do not touch the wire
        nogogo = os.path.join(PROTO_DIR, "nogogo")
        subprocess.run([protoc, "-I" + nogogo, "--python_out=" + out, os.path.join(nogogo, "types.proto"),
                        os.path.join(nogogo, "remote.proto")], check=True, capture_output=True)
    sys.path.insert(0, out)
    return importlib.import_module("remote_pb2")


def float_bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def value_text(v):
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


class Script:
    """The scripted answers, consumed in arrival order under a lock."""

    def __init__(self, entries):
        self.lock = threading.Lock()
        self.entries = []
        self.used = 0
        self.add(entries)

    def add(self, entries):
        with self.lock:
            for e in entries:
                for _ in range(max(1, int(e.get("repeat", 1)))):
                    self.entries.append(e)

    def next_for(self, kind):
        with self.lock:
            if self.used < len(self.entries):
                e = self.entries[self.used]
                want = e.get("kind", "any")
                if want == "any" or want == kind:
                    self.used += 1
                    return e, self.used - 1
            return {}, None

    def state(self):
        with self.lock:
            return {"used": self.used, "left": len(self.entries) - self.used}


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, script, log_path, pb):
        super().__init__(addr, Handler)
        self.script = script
        self.log = open(log_path, "a", encoding="utf-8")
        self.log_lock = threading.Lock()
        self.seq = 0
        self.pb = pb

    def record(self, rec):
        with self.log_lock:
            rec["seq"] = self.seq
            self.seq += 1
            self.log.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
            self.log.flush()


def decode_body(pb, raw, problems):
    """Decompress and parse one body; returns (kind, series, nmetadata)."""
    import snappy
    try:
        data = snappy.uncompress(raw)
    except Exception as e:  # python-snappy raises several types
        problems.append("snappy: %s" % e)
        return "undecodable", [], 0
    req = pb.WriteRequest()
    try:
        req.ParseFromString(data)
    except Exception as e:
        problems.append("protobuf: %s" % e)
        return "undecodable", [], 0
    series = []
    for ts in req.timeseries:
        labels = [(l.name, l.value) for l in ts.labels]
        names = [n.encode("utf-8") for n, _ in labels]
        if names != sorted(names) or len(set(names)) != len(names):
            problems.append("labels not sorted/unique: %r" % (labels,))
        if any(not n or not v for n, v in labels):
            problems.append("empty label name or value: %r" % (labels,))
        if "__name__" not in dict(labels):
            problems.append("no __name__: %r" % (labels,))
        samples = []
        last = None
        for s in ts.samples:
            if last is not None and s.timestamp <= last:
                problems.append("samples out of order in one series: %r" % (labels,))
            last = s.timestamp
            samples.append([value_text(s.value), s.timestamp, float_bits(s.value) == STALE_BITS])
        if not samples:
            problems.append("series without samples: %r" % (labels,))
        series.append([labels, samples])
    kind = "series" if series else ("metadata" if len(req.metadata) else "empty")
    return kind, series, len(req.metadata)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and Expect: 100-continue, as curl uses

    def log_message(self, fmt, *args):  # quiet: the JSON log says everything
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/-/state":
            st = self.server.script.state()
            st["requests"] = self.server.seq
            self.reply(200, json.dumps(st).encode(), [("Content-Type", "application/json")])
        else:
            self.reply(200, b"fake remote-write receiver\n")

    def do_POST(self):
        t_recv = time.time()
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            self.reply(413, b"body too large")
            self.close_connection = True
            return
        raw = self.rfile.read(n)
        if self.path == "/-/script":
            self.server.script.add(json.loads(raw or b"[]"))
            self.reply(200, b"ok\n")
            return
        problems = []
        headers = {k.lower(): v for k, v in self.headers.items()}
        for k, want in REQUIRED_HEADERS.items():
            if headers.get(k) != want:
                problems.append("header %s: got %r, want %r" % (k, headers.get(k), want))
        if not headers.get("user-agent", "").startswith("scrapeship/"):
            problems.append("header user-agent: %r" % headers.get("user-agent"))
        kind, series, nmeta = decode_body(self.server.pb, raw, problems)
        entry, index = self.server.script.next_for(kind)
        status = int(entry.get("status", 200))
        if kind == "undecodable" and index is None:
            status = 400
        delay = min(float(entry.get("delay", 0)), MAX_DELAY)
        retry_after = entry.get("retry_after")
        body = entry.get("body")
        if body is None:
            body = "" if status < 300 else "fake receiver: HTTP %d for request of %d series" % (status, len(series))
        if delay > 0:
            time.sleep(delay)
        rec = {"t_recv": t_recv, "path": self.path, "headers": headers, "sha256": hashlib.sha256(raw).hexdigest(),
               "body_len": len(raw), "kind": kind, "series": series, "nmetadata": nmeta, "problems": problems,
               "status": status, "retry_after": retry_after, "delay": delay, "script_index": index}
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        rec["t_resp"] = time.time()
        try:
            self.reply(status, body.encode("utf-8"), extra)
            rec["write_ok"] = True
        except OSError as e:  # the client gave up (timeout, shutdown)
            rec["write_ok"] = False
            rec["write_error"] = str(e)
            self.close_connection = True
        self.server.record(rec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--log", required=True, help="JSON lines log of every request")
    ap.add_argument("--script", default="[]", help="JSON list, or @file")
    a = ap.parse_args()
    text = open(a.script[1:]).read() if a.script.startswith("@") else a.script
    tmp = tempfile.mkdtemp(prefix="ss-fakerecv-")
    try:
        pb = compile_schema(tmp)
        srv = Receiver(("127.0.0.1", a.port), Script(json.loads(text)), a.log, pb)
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())
        port = srv.server_address[1]
        if a.port_file:
            with open(a.port_file + ".tmp", "w") as f:
                f.write("%d\n" % port)
            os.rename(a.port_file + ".tmp", a.port_file)
        print("listening on 127.0.0.1:%d" % port, flush=True)
        srv.serve_forever(poll_interval=0.1)
        srv.server_close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- helpers for the tests ---------------------------------------------------------

def _harness():
    sys.path.insert(0, HERE)
    import harness
    return harness


class FakeReceiver:
    """A fake_receiver.py subprocess and its request log."""

    def __init__(self, script=(), port=None):
        h = _harness()
        self.dir = h.tmpdir("ss-recv-")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        open(self.log_path, "w").close()
        self.script = list(script)
        self.port = port or h.free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.port

    def start(self, timeout=30):
        h = _harness()
        script_path = os.path.join(self.dir, "script.json")
        with open(script_path, "w") as f:
            json.dump(self.script, f)
        port_file = os.path.join(self.dir, "port")
        self.proc = h.start(["/usr/bin/python3", os.path.abspath(__file__), "--port", str(self.port),
                             "--port-file", port_file, "--log", self.log_path, "--script", "@" + script_path],
                            os.path.join(self.dir, "receiver.log"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(port_file):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("fake receiver did not start: " + open(os.path.join(self.dir, "receiver.log")).read())

    def stop(self):
        if self.proc:
            _harness().stop(self.proc, timeout=10)

    def records(self):
        out = []
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    def series_records(self):
        return [r for r in self.records() if r["kind"] == "series"]

    def wait(self, cond, timeout, what):
        """Poll the log until cond(records) holds; returns whether it did."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond(self.records()):
                return True
            time.sleep(0.2)
        print("timed out after %ss waiting for %s" % (timeout, what), flush=True)
        return False


EXPOSITION = """# HELP rwt_requests_total Requests handled.
# TYPE rwt_requests_total counter
rwt_requests_total{method="get",code="200"} 1027
rwt_requests_total{method="post",code="200"} 3
rwt_requests_total{method="get",code="500"} 0
# HELP rwt_temperature_celsius A gauge.
# TYPE rwt_temperature_celsius gauge
rwt_temperature_celsius{room="a"} -12.5
rwt_temperature_celsius{room="b"} 21.25
rwt_temperature_celsius{room="c"} 1e+21
# HELP rwt_queue_depth Another gauge.
# TYPE rwt_queue_depth gauge
rwt_queue_depth{queue="x",zone="eu"} 4
rwt_queue_depth{queue="y",zone="us"} 0.5
rwt_info{version="1.2.3",commit="abc"} 1
rwt_no_labels 7
"""


def start_target(exposition=EXPOSITION):
    """nginx serving a static exposition as /metrics.prom; returns its port."""
    h = _harness()
    root = h.tmpdir("ss-target-")
    with open(os.path.join(root, "metrics.prom"), "w") as f:
        f.write(exposition)
    os.chmod(os.path.join(root, "metrics.prom"), 0o644)
    return h.start_nginx(root)


def queue_yaml(**q):
    base = {"capacity": 10000, "min_shards": 1, "max_shards": 1, "max_samples_per_send": 500,
            "batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"}
    base.update(q)
    return "\n".join("      %s: %s" % (k, str(v).lower() if isinstance(v, bool) else v) for k, v in base.items())


def remote_yaml(url, name, remote_timeout="30s", metadata=False, **queue):
    return """  - url: %s
    name: %s
    remote_timeout: %s
    queue_config:
%s
    metadata_config:
      send: %s
""" % (url, name, remote_timeout, queue_yaml(**queue), "true" if metadata else "false")


def config_yaml(target_port, remotes):
    return """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: rwt
    metrics_path: /metrics.prom
    static_configs:
      - targets: ['127.0.0.1:%d']
        labels: {env: test}
remote_write:
%s""" % (target_port, "".join(remotes))


class Scrapeship:
    """`scrapeship run` with --tee, its log and its /metrics."""

    def __init__(self, config_text, shutdown_timeout="30s", extra=()):
        h = _harness()
        self.dir = h.tmpdir("ss-run-")
        self.cfg = os.path.join(self.dir, "scrapeship.yml")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.tee = os.path.join(self.dir, "tee.jsonl")
        self.log_path = os.path.join(self.dir, "scrapeship.log")
        self.port = h.free_port()
        self.args = [h.BIN, "run", "--config", self.cfg, "--web.listen-address", "127.0.0.1:%d" % self.port,
                     "--shutdown-timeout", shutdown_timeout, "--tee", self.tee] + list(extra)
        self.proc = None
        self.t_start = self.t_term = self.t_exit = None

    def start(self):
        h = _harness()
        self.t_start = time.time()
        self.proc = h.start(self.args, self.log_path)
        h.wait_http("http://127.0.0.1:%d/metrics" % self.port, timeout=30, what="scrapeship")
        return self

    def terminate(self, timeout=60):
        """SIGTERM, wait (bounded); returns the exit status (None if it had to be killed)."""
        self.t_term = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.t_exit = time.time()
        return rc

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def metrics(self):
        """/metrics -> {(name, frozenset(labels)): float}."""
        _, body = _harness().http_get("http://127.0.0.1:%d/metrics" % self.port, timeout=10)
        return parse_metrics(body.decode("utf-8", "replace"))

    def tee_samples(self):
        return read_tee(self.tee)


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, rest = head.split("{", 1)
            rest = rest.rstrip("}")
            # our own metrics' label values hold no commas or quotes except URLs' ':' '/'
            for part in rest.split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
        try:
            out[(name, frozenset(labels.items()))] = float(value)
        except ValueError:
            pass
    return out


def metric(ms, name, **labels):
    """Sum of every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in ms.items() if n == name and want <= ls)


def read_tee(path):
    """--tee JSON lines -> [(key, value_text, stale)], key = (frozenset(labels), ts)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                continue  # a line being written as we read
            rec = json.loads(line)
            out.append(((frozenset(rec["labels"].items()), rec["timestamp"]), rec["value"], rec["stale"]))
    return out


def record_samples(rec):
    """One logged request -> [(key, value_text, stale)]."""
    out = []
    for labels, samples in rec["series"]:
        ls = frozenset((n, v) for n, v in labels)
        for value, ts, stale in samples:
            out.append(((ls, ts), value, stale))
    return out


def same_sample_value(a, b, stale_a, stale_b):
    if stale_a or stale_b:
        return stale_a == stale_b
    fa, fb = float(a), float(b)
    if fa != fa or fb != fb:
        return fa != fa and fb != fb
    return fa == fb


def compare_delivery(check, tee, accepted, label, missing_ok=frozenset()):
    """Every teed sample (minus missing_ok keys) was accepted with the same value."""
    got = {}
    for key, value, stale in accepted:
        got.setdefault(key, (value, stale))
    missing = [k for k, _, _ in tee if k not in got and k not in missing_ok]
    wrong = [k for k, v, s in tee if k in got and not same_sample_value(v, got[k][0], s, got[k][1])]
    check.ok(not missing, "%s: %d of %d teed samples never accepted by the receiver, e.g. %s"
             % (label, len(missing), len(tee), fmt_key(missing[0]) if missing else ""))
    check.ok(not wrong, "%s: %d samples arrived with another value, e.g. %s"
             % (label, len(wrong), fmt_key(wrong[0]) if wrong else ""))
    print("%s: %d samples teed, %d distinct accepted" % (label, len(tee), len(got)), flush=True)
    extra = set(got) - {k for k, _, _ in tee}
    check.ok(not extra, "%s: %d samples received that were never teed, e.g. %s"
             % (label, len(extra), fmt_key(next(iter(extra))) if extra else ""))
    return not missing


def fmt_key(key):
    ls, ts = key
    return "%s@%d" % (_harness().fmt_labels(ls), ts)


def check_requests_wellformed(check, records, label):
    bad = [r for r in records if r["problems"]]
    check.ok(not bad, "%s: %d requests with problems, first: %s"
             % (label, len(bad), bad[0]["problems"][:3] if bad else ""))
    check.ok(all(r["kind"] != "undecodable" for r in records), "%s: an undecodable request" % label)


def check_order(check, records, label):
    """Per series, timestamps strictly increase over the accepted (2xx) requests in arrival
    order; an accepted batch is never delivered twice; a failed, retryable batch is
    delivered later byte for byte. Returns nothing; counts into check."""
    ok_recs = sorted((r for r in records if r["kind"] == "series" and 200 <= r["status"] < 300),
                     key=lambda r: r["t_recv"])
    shas = [r["sha256"] for r in ok_recs]
    check.ok(len(shas) == len(set(shas)), "%s: an accepted batch was delivered twice" % label)
    last = {}
    bad = []
    for r in ok_recs:
        for (ls, ts), _, _ in record_samples(r):
            if ls in last and ts <= last[ls]:
                bad.append((ls, last[ls], ts))
            last[ls] = ts
    check.ok(not bad, "%s: %d timestamps not strictly increasing per series, e.g. %s: %s then %s"
             % (label, len(bad), _harness().fmt_labels(bad[0][0]) if bad else "",
                bad[0][1] if bad else "", bad[0][2] if bad else ""))
    # A batch whose samples also show up in an earlier request must be a byte-exact
    # resend of a batch that failed (no partial re-batching of failed data).
    seen = {}
    overlaps = []
    for r in sorted((r for r in records if r["kind"] == "series"), key=lambda r: r["t_recv"]):
        keys = {k for k, _, _ in record_samples(r)}
        for k in keys:
            if k in seen:
                prev = seen[k]
                if prev["sha256"] != r["sha256"] or 200 <= prev["status"] < 300:
                    overlaps.append((prev["seq"], r["seq"]))
                    break
        for k in keys:
            seen[k] = r
    check.ok(not overlaps, "%s: samples resent other than as an exact resend of a failed batch: "
             "requests %s" % (label, overlaps[:5]))


def check_resends(check, records, label, retryable=(408, 429)):
    """Every batch that failed with a retryable status was sent again, byte for byte,
    with Retry-Attempt: 1, 2, ... (none on the first try), until it was accepted; a
    batch rejected with another 4xx was never sent again."""
    groups = {}
    for r in sorted((r for r in records if r["kind"] == "series"), key=lambda r: r["t_recv"]):
        groups.setdefault(r["sha256"], []).append(r)
    bad_attempt, unfinished, resent_4xx = [], [], []
    for sha, rs in groups.items():
        for i, r in enumerate(rs):
            want = None if i == 0 else str(i)
            if r["headers"].get("retry-attempt") != want:
                bad_attempt.append((r["seq"], r["headers"].get("retry-attempt"), want))
            st = r["status"]
            if i < len(rs) - 1 and not (st >= 500 or st in retryable):
                resent_4xx.append(r["seq"])
        last = rs[-1]["status"]
        if last >= 500 or last in retryable:
            unfinished.append(rs[-1]["seq"])
    nresent = sum(len(rs) - 1 for rs in groups.values())
    print("%s: %d batches, %d resends" % (label, len(groups), nresent), flush=True)
    check.ok(not bad_attempt, "%s: Retry-Attempt headers wrong (seq, got, want): %s" % (label, bad_attempt[:5]))
    check.ok(not resent_4xx, "%s: batches resent after a non-retryable status: requests %s" % (label, resent_4xx[:5]))
    check.ok(not unfinished, "%s: batches that failed with a retryable status and were never resent: "
             "requests %s" % (label, unfinished[:5]))
    return groups


if __name__ == "__main__":
    main()
