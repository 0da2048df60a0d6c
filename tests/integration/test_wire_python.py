#!/usr/bin/python3
"""test_wire_python.py: our remote-write bytes, judged by independent implementations.

The oracle is Prometheus' own schema (the corpus copy of prompb/types.proto and
remote.proto), compiled at test time with protoc into Python classes, plus python3-snappy
and python3-protobuf (the C++ implementation). The test:

  1. checks that remotewrite/remote.proto agrees with the official schema on every field
     number, type and label of the messages it declares, and on the MetricType values;
  2. generates a deterministic set of series and metadata, has tests/tools/rw_wire_tool
     encode them with rw_encode_series / rw_encode_metadata and snappy, then decompresses
     and parses the body in Python and compares labels (sorted, as sent), values (bit for
     bit, including the stale-marker NaN) and timestamps; re-serializing the parsed message
     must give back our exact bytes;
  3. goes the other way: Python builds and compresses a WriteRequest (with exemplars and
     native histograms the decoder must skip), and `rw_wire_tool decode` must read it back.

Environment: SS_TOOLS_DIR (default /work/main/build/tools), SS_CORPORA_DIR, SS_SOURCE_DIR.
Needs protoc (Debian package protobuf-compiler, listed in scripts/install-deps.sh).
"""
import importlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SS_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
TOOLS_DIR = os.environ.get("SS_TOOLS_DIR", "/work/main/build/tools")
CORPORA_DIR = os.environ.get("SS_CORPORA_DIR", "/work/shared/corpora")
PROTO_DIR = os.path.join(CORPORA_DIR, "remotewrite", "proto")
TOOL = os.path.join(TOOLS_DIR, "rw_wire_tool")

STALE_BITS = 0x7FF0000000000002

import snappy  # noqa: E402  (python3-snappy)
from google.protobuf import descriptor_pb2  # noqa: E402  (python3-protobuf)


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def protoc(args):
    exe = shutil.which("protoc")
    if not exe:
        raise unittest.SkipTest("protoc not installed (apt-get install protobuf-compiler)")
    subprocess.run([exe] + args, check=True, capture_output=True)


class Schema:
    """The official prompb classes, generated once into a temp dir."""

    tmp = None
    remote_pb2 = None
    types_pb2 = None
    flavour = None

    @classmethod
    def load(cls):
        if cls.remote_pb2:
            return cls
        cls.tmp = tempfile.mkdtemp(prefix="ss-wire-")
        out = os.path.join(cls.tmp, "py")
        os.makedirs(out)
        try:
            cls._compile_official(out)
            cls.flavour = "official"
        except subprocess.CalledProcessError:
            # The gogo-free copy differs only in field options that do not affect the wire.
            shutil.rmtree(out)
            os.makedirs(out)
            nogogo = os.path.join(PROTO_DIR, "nogogo")
            protoc(["-I" + nogogo, "--python_out=" + out,
                    os.path.join(nogogo, "types.proto"), os.path.join(nogogo, "remote.proto")])
            cls.flavour = "nogogo"
        sys.path.insert(0, out)
        cls.types_pb2 = importlib.import_module("types_pb2")
        cls.remote_pb2 = importlib.import_module("remote_pb2")
        return cls

    @classmethod
    def _compile_official(cls, out):
        # official/*.proto import gogoproto/gogo.proto for Go-only field options. Supply a
        # stub declaring the one option used (nullable), with descriptor.proto taken from
        # the installed Python runtime, so the files compile unmodified.
        official = os.path.join(PROTO_DIR, "official")
        stub_root = os.path.join(cls.tmp, "stub")
        os.makedirs(os.path.join(stub_root, "gogoproto"))
        with open(os.path.join(stub_root, "gogoproto", "gogo.proto"), "w") as f:
            f.write('syntax = "proto2";\npackage gogoproto;\n'
                    'import "google/protobuf/descriptor.proto";\n'
                    "extend google.protobuf.FieldOptions { optional bool nullable = 65001; }\n")
        fds = descriptor_pb2.FileDescriptorSet()
        descriptor_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
        desc_in = os.path.join(cls.tmp, "descriptor.pb")
        with open(desc_in, "wb") as f:
            f.write(fds.SerializeToString())
        protoc(["--descriptor_set_in=" + desc_in, "-I" + stub_root, "-I" + official,
                "--python_out=" + out, os.path.join(stub_root, "gogoproto", "gogo.proto"),
                os.path.join(official, "types.proto"), os.path.join(official, "remote.proto")])

    @classmethod
    def cleanup(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)


def run_tool(args, data):
    if not os.access(TOOL, os.X_OK):
        raise AssertionError("%s not built (set SS_TOOLS_DIR)" % TOOL)
    p = subprocess.run([TOOL] + args, input=data, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("rw_wire_tool %s failed (%d): %s"
                             % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


# ---- deterministic test data ------------------------------------------------------

SPECIAL_VALUES = [
    ("StaleNaN", STALE_BITS),
    ("NaN", bits(float("nan"))),
    ("+Inf", bits(math.inf)),
    ("-Inf", bits(-math.inf)),
    ("0", 0),
    ("-0", 0),  # proto3 omits a double equal to 0, so -0.0 reads back as +0.0
    ("0x7ff8000000000001", 0x7FF8000000000001),  # Prometheus' normal NaN
    ("0x0000000000000001", 1),  # smallest denormal
    ("0x7fefffffffffffff", 0x7FEFFFFFFFFFFFFF),
    ("-1.5", bits(-1.5)),
    ("1e-300", bits(1e-300)),
]

SPECIAL_TS = [0, 1, -1, 127, 128, 16384, 1700000000000, 2**63 - 1, -(2**63), -1700000000000]

UNICODE = ["Zürich", "日本語", "🚀 rocket", "naïve café", "Ελληνικά", "a\"b\\c\nd\te", "ø" * 70]


def make_label_value(rng):
    r = rng.random()
    if r < 0.15:
        return rng.choice(UNICODE)
    if r < 0.2:
        return "v" * rng.choice([127, 128, 129, 16383, 16384, 20000])
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789:/.-_")
                   for _ in range(rng.randint(1, 24)))


def make_label_name(rng):
    first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
    return rng.choice(first) + "".join(
        rng.choice(first + "0123456789") for _ in range(rng.randint(0, 12)))


def make_value(rng):
    r = rng.random()
    if r < 0.3:
        text, b = rng.choice(SPECIAL_VALUES)
        return text, b
    if r < 0.6:
        b = rng.getrandbits(64)
        return "0x%016x" % b, 0 if from_bits(b) == 0 else b
    v = rng.uniform(-1e6, 1e6)
    return repr(v), bits(v)


def make_ts(rng):
    if rng.random() < 0.3:
        return rng.choice(SPECIAL_TS)
    return rng.randint(-(2**63), 2**63 - 1) >> rng.randint(0, 63)


def generate(seed=20240611, nseries=400):
    rng = random.Random(seed)
    lines, expected = [], []
    for i in range(nseries):
        labels = {"__name__": "metric_%d_%s" % (i, make_label_name(rng))}
        for _ in range(rng.randint(0, 8)):
            labels[make_label_name(rng)] = make_label_value(rng)
        if rng.random() < 0.2:
            samples = [make_value(rng) + (make_ts(rng),) for _ in range(rng.randint(0, 5))]
            lines.append({"labels": labels,
                          "samples": [[text, ts] for text, _, ts in samples]})
            expected.append(("series", labels, [(b, ts) for _, b, ts in samples]))
        else:
            text, b = make_value(rng)
            ts = make_ts(rng)
            lines.append({"labels": labels, "value": text, "ts": ts})
            expected.append(("series", labels, [(b, ts)]))
        if i % 50 == 0:
            md = {"type": ["unknown", "counter", "gauge", "histogram", "gaugehistogram",
                           "summary", "info", "stateset"][(i // 50) % 8],
                  "family": "metric_%d" % i,
                  "help": rng.choice(["", "Help text.", "Ünïcødé ✓", "h" * 200]),
                  "unit": rng.choice(["", "seconds", "bytes"])}
            lines.append({"metadata": md})
            expected.append(("metadata", md, None))
    # Python's str order is code-point order, which equals UTF-8 byte order: the order
    # the spec and our encoder use.
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return data.encode("utf-8"), expected


TYPE_NUMBERS = {"unknown": 0, "counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4,
                "summary": 5, "info": 6, "stateset": 7}


class WireOracleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = Schema.load()

    @classmethod
    def tearDownClass(cls):
        Schema.cleanup()

    def test_schema_matches_official(self):
        """remotewrite/remote.proto is wire-compatible with prompb, field by field."""
        tmp = Schema.tmp
        ours_set = os.path.join(tmp, "ours.pb")
        official_set = os.path.join(tmp, "official.pb")
        protoc(["-I" + os.path.join(SOURCE_DIR, "remotewrite"), "--descriptor_set_out=" + ours_set,
                os.path.join(SOURCE_DIR, "remotewrite", "remote.proto")])
        nogogo = os.path.join(PROTO_DIR, "nogogo")
        protoc(["-I" + nogogo, "--include_imports", "--descriptor_set_out=" + official_set,
                os.path.join(nogogo, "remote.proto")])

        def messages(path):
            fds = descriptor_pb2.FileDescriptorSet()
            with open(path, "rb") as f:
                fds.ParseFromString(f.read())
            out = {}
            for fd in fds.file:
                if fd.package != "prometheus":
                    continue
                for m in fd.message_type:
                    out[m.name] = m
            return out

        ours, official = messages(ours_set), messages(official_set)
        self.assertEqual(
            set(ours), {"WriteRequest", "TimeSeries", "Label", "Sample", "Exemplar", "MetricMetadata"})
        for name, m in ours.items():
            self.assertIn(name, official)
            theirs = {f.number: f for f in official[name].field}
            for f in m.field:
                self.assertIn(f.number, theirs, "%s.%s" % (name, f.name))
                t = theirs[f.number]
                self.assertEqual((f.name, f.type, f.label, f.type_name),
                                 (t.name, t.type, t.label, t.type_name), "%s.%s" % (name, f.name))
            self.assertEqual([(r.start, r.end) for r in m.reserved_range],
                             [(r.start, r.end) for r in official[name].reserved_range], name)
        ours_enum = {v.name: v.number for v in ours["MetricMetadata"].enum_type[0].value}
        theirs_enum = {v.name: v.number for v in official["MetricMetadata"].enum_type[0].value}
        self.assertEqual(ours_enum, theirs_enum)
        self.assertEqual(ours_enum, {k.upper(): v for k, v in TYPE_NUMBERS.items()})

    def test_encoder_against_python(self):
        data, expected = generate()
        body = run_tool([], data)
        raw = run_tool(["--raw"], data)
        # The body is snappy *block* format: python-snappy's uncompress reads exactly that.
        self.assertEqual(snappy.uncompress(body), raw)
        req = self.schema.remote_pb2.WriteRequest()
        req.ParseFromString(snappy.uncompress(body))

        series = [e for e in expected if e[0] == "series"]
        metas = [e for e in expected if e[0] == "metadata"]
        self.assertEqual(len(req.timeseries), len(series))
        self.assertEqual(len(req.metadata), len(metas))
        stale_seen = 0
        for ts, (_, labels, samples) in zip(req.timeseries, series):
            got = [(l.name, l.value) for l in ts.labels]
            self.assertEqual(got, sorted(labels.items()))
            names = [n for n, _ in got]
            self.assertEqual(names, sorted(set(names)), "sorted and unique")
            self.assertTrue(all(n and v for n, v in got), "no empty names or values")
            self.assertIn("__name__", names)
            self.assertEqual(len(ts.samples), len(samples))
            for s, (want_bits, want_ts) in zip(ts.samples, samples):
                self.assertEqual("%016x" % bits(s.value), "%016x" % want_bits)
                self.assertEqual(s.timestamp, want_ts)
                stale_seen += want_bits == STALE_BITS
        self.assertGreater(stale_seen, 0)
        for md, (_, want, _) in zip(req.metadata, metas):
            self.assertEqual(md.type, TYPE_NUMBERS[want["type"]])
            self.assertEqual(md.metric_family_name, want["family"])
            self.assertEqual(md.help, want["help"])
            self.assertEqual(md.unit, want["unit"])

        # Our encoder writes series and metadata records in input order; protobuf writes
        # all field-1 records before field-3 ones. Compare against a body with series only,
        # and check metadata-only bodies separately.
        series_only = b"".join(
            json.dumps(l, ensure_ascii=False).encode() + b"\n"
            for l in map(json.loads, data.decode().splitlines()) if "metadata" not in l)
        raw_series = run_tool(["--raw"], series_only)
        again = self.schema.remote_pb2.WriteRequest()
        again.ParseFromString(raw_series)
        self.assertEqual(again.SerializeToString(deterministic=True), raw_series,
                         "re-serializing with C++ protobuf gives our exact bytes")
        meta_only = b"".join(
            json.dumps(l, ensure_ascii=False).encode() + b"\n"
            for l in map(json.loads, data.decode().splitlines()) if "metadata" in l)
        raw_meta = run_tool(["--raw"], meta_only)
        again = self.schema.remote_pb2.WriteRequest()
        again.ParseFromString(raw_meta)
        self.assertEqual(again.SerializeToString(deterministic=True), raw_meta)

    def test_stale_marker_exact(self):
        line = json.dumps({"labels": {"job": "j", "__name__": "up"}, "value": "StaleNaN",
                           "ts": 1700000000000}).encode() + b"\n"
        req = self.schema.remote_pb2.WriteRequest()
        req.ParseFromString(snappy.uncompress(run_tool([], line)))
        self.assertEqual(bits(req.timeseries[0].samples[0].value), STALE_BITS)
        self.assertEqual([(l.name, l.value) for l in req.timeseries[0].labels],
                         [("__name__", "up"), ("job", "j")])

    def test_empty_request(self):
        body = run_tool([], b"")
        self.assertEqual(snappy.uncompress(body), b"")
        self.assertEqual(run_tool(["decode"], body), b"")

    def test_decoder_against_python(self):
        pb, types = self.schema.remote_pb2, self.schema.types_pb2
        rng = random.Random(7)
        req = pb.WriteRequest()
        want = []
        for i in range(200):
            ts = req.timeseries.add()
            labels = sorted({"__name__": "py_metric_%d" % i,
                             make_label_name(rng): make_label_value(rng)}.items())
            for n, v in labels:
                ts.labels.add(name=n, value=v)
            samples = []
            for _ in range(rng.randint(1, 3)):
                _, b = make_value(rng)
                t = make_ts(rng)
                ts.samples.add(value=from_bits(b), timestamp=t)
                samples.append(["%016x" % b, t])
            if i % 10 == 0:
                ex = ts.exemplars.add(value=0.5, timestamp=123)
                ex.labels.add(name="trace_id", value="%032x" % i)
            if i % 25 == 0:
                # Native histogram (field 4): not in our schema, must be skipped.
                h = ts.histograms.add(count_int=10, sum=2.5, schema=3, timestamp=1000)
                h.positive_spans.add(offset=0, length=2)
                h.positive_deltas.extend([4, -1])
            want.append({"labels": [list(p) for p in labels], "samples": samples})
        md = req.metadata.add(type=types.MetricMetadata.GAUGEHISTOGRAM,
                              metric_family_name="fam", help="Hélp", unit="bytes")
        out = run_tool(["decode"], snappy.compress(req.SerializeToString()))
        got = [json.loads(l) for l in out.decode("utf-8").splitlines()]
        self.assertEqual(got[:-1], want)
        self.assertEqual(got[-1], {"metadata": {"type": md.type, "family": "fam",
                                                "help": "Hélp", "unit": "bytes"}})

    def test_decoder_rejects_garbage(self):
        p = subprocess.run([TOOL, "decode"], input=b"\xff\xff\xff\xff\x0f garbage",
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        p = subprocess.run([TOOL, "decode"], input=snappy.compress(b"\x0a\x05\x0a"),
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
