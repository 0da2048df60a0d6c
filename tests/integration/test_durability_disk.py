"""Disk queue damage and bounds (real Prometheus 2.42 receiver).

1. Damage: with the receiver down, scrapeship spills to disk and stops. One segment is
   then truncated in the middle of its last record and another gets a flipped byte in
   the middle of one record. On restart (receiver up) scrapeship skips exactly those
   two records, counts them, and delivers everything else; the samples of the damaged
   records (decoded before the damage) are the only ones missing.
2. max_disk_bytes: a long outage fills the bound; the oldest data is dropped and
   counted, the newest is delivered, and disk use never exceeds the bound plus one
   segment.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import durability as d  # noqa: E402

WIDE = "".join("wide_metric{i=\"%d\",pad=\"%s\"} %d\n" % (i, "x" * 20, i) for i in range(300))


def wide_targets(n):
    root = h.tmpdir("ss-wide-")
    for i in range(n):
        with open(os.path.join(root, "t%d.prom" % i), "w") as f:
            f.write(d.STATIC + WIDE)
    return h.start_nginx(root), n


def segments(qdir):
    return sorted(os.path.join(qdir, f) for f in os.listdir(qdir) if f.endswith(".seg"))


def records(path):
    """[(offset, total_len, samples, payload)] of a segment file."""
    out = []
    data = open(path, "rb").read()
    off = 0
    while off + 32 <= len(data):
        magic, ln, _crc = struct.unpack_from("<III", data, off)
        if magic != 0x31515353:
            break
        _first, _last, samples = struct.unpack_from("<qqI", data, off + 12)
        out.append((off, 12 + ln, samples, data[off + 32:off + 12 + ln]))
        off += 12 + ln
    return out


def decode(payload):
    tool = os.path.join(h.TOOLS, "rw_wire_tool")
    p = subprocess.run([tool, "decode"], input=payload, capture_output=True, check=True)
    got = set()
    for line in p.stdout.decode().splitlines():
        rec = json.loads(line)
        if "labels" not in rec:
            continue
        key = frozenset((k, v) for k, v in rec["labels"])
        for _bits, ts in rec["samples"]:
            got.add((key, ts))
    return got


def queue_dir(work):
    q = os.path.join(work, "queue")
    subs = [os.path.join(q, s) for s in os.listdir(q)]
    return subs[0]


def scenario_damage(chk, nginx, n):
    recv = d.Receiver()  # not started: the receiver is down
    work = h.tmpdir("ss-dur-damage-")
    cfg = os.path.join(work, "ss.yml")
    d.write_config(cfg, nginx, n, recv.base + "/api/v1/write", storage=os.path.join(work, "queue"),
                   max_disk="1MB")
    tee1, tee2 = os.path.join(work, "tee1.json"), os.path.join(work, "tee2.json")
    p1, _ = d.run_scrapeship(cfg, tee1, os.path.join(work, "ss1.log"), extra=["--shutdown-timeout", "2s"])
    qd = None
    deadline = time.time() + 90
    while time.time() < deadline:
        time.sleep(2)
        try:
            qd = queue_dir(work)
            if len(segments(qd)) >= 3:
                break
        except OSError:
            pass
    h.stop(p1, signal.SIGTERM, timeout=60)
    segs = segments(qd)
    chk.ok(len(segs) >= 2, "need two segments, have %d" % len(segs))
    if len(segs) < 2:
        return
    ra, rb = records(segs[0]), records(segs[1])
    chk.ok(len(ra) >= 3 and len(rb) >= 3, "segments too small: %d, %d records" % (len(ra), len(rb)))
    lost = set()
    # segment A: cut in the middle of its last record
    off, ln, _, payload = ra[-1]
    lost |= decode(payload)
    os.truncate(segs[0], off + ln // 2)
    # segment B: one flipped byte in the middle of a middle record's payload
    off, ln, _, payload = rb[len(rb) // 2]
    lost |= decode(payload)
    with open(segs[1], "r+b") as f:
        f.seek(off + 32 + (ln - 32) // 2)
        b = f.read(1)
        f.seek(off + 32 + (ln - 32) // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    print("damaged 2 records holding %d samples" % len(lost))

    recv.start()
    p2, port2 = d.run_scrapeship(cfg, tee2, os.path.join(work, "ss2.log"))
    deadline = time.time() + 90
    while time.time() < deadline and d.metric_value(port2, "scrapeship_remote_disk_samples") > 0:
        time.sleep(1)
    time.sleep(3)
    corrupt = d.metric_value(port2, "scrapeship_remote_disk_corrupt_records_total")
    h.stop(p2, signal.SIGTERM, timeout=60)
    chk.ok(corrupt == 2, "expected exactly 2 damaged records counted, got %s" % corrupt)
    teed = d.read_tee(tee1, tee2)
    got = d.stored(recv.base)
    missing = set()
    for k, samples in teed.items():
        for ts in samples:
            if ts not in got.get(k, {}):
                missing.add((k, ts))
    print("teed %d samples; %d missing; %d in damaged records" %
          (sum(len(v) for v in teed.values()), len(missing), len(lost)))
    chk.ok(missing == lost, "missing samples differ from the damaged records: %d extra missing, %d expected "
           "missing but present" % (len(missing - lost), len(lost - missing)))
    chk.ok(len(lost) > 0, "the damaged records held no samples")
    chk.ok(not d.out_of_order_logged(recv), "Prometheus logged out-of-order samples")
    recv.stop()


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def scenario_max_disk(chk, nginx, n):
    recv = d.Receiver()
    work = h.tmpdir("ss-dur-maxdisk-")
    cfg = os.path.join(work, "ss.yml")
    bound = 300 * 1024
    seg = bound // 4
    d.write_config(cfg, nginx, n, recv.base + "/api/v1/write", storage=os.path.join(work, "queue"),
                   max_disk="300KB")
    tee1, tee2 = os.path.join(work, "tee1.json"), os.path.join(work, "tee2.json")
    p1, port1 = d.run_scrapeship(cfg, tee1, os.path.join(work, "ss1.log"), extra=["--shutdown-timeout", "2s"])
    peak = 0
    t_end = time.time() + 75
    while time.time() < t_end:
        time.sleep(0.5)
        peak = max(peak, dir_bytes(os.path.join(work, "queue")))
    dropped = d.metric_value(port1, "scrapeship_remote_disk_dropped_space_samples_total")
    h.stop(p1, signal.SIGTERM, timeout=60)
    print("peak disk use %d bytes (bound %d + segment %d); %d samples dropped for space" % (peak, bound, seg, dropped))
    chk.ok(peak <= bound + seg + 4096, "disk use %d above the bound plus one segment" % peak)
    chk.ok(dropped > 0, "the bound was never reached: nothing dropped")
    log1 = open(os.path.join(work, "ss1.log")).read()
    chk.ok("max_disk_bytes reached" in log1, "no log line for dropping")
    recv.start()
    p2, port2 = d.run_scrapeship(cfg, tee2, os.path.join(work, "ss2.log"))
    deadline = time.time() + 90
    while time.time() < deadline and d.metric_value(port2, "scrapeship_remote_disk_samples") > 0:
        time.sleep(1)
    time.sleep(3)
    h.stop(p2, signal.SIGTERM, timeout=60)
    teed1 = d.read_tee(tee1)
    got = d.stored(recv.base)
    # per series: what was lost is the oldest, what was kept is the newest
    bad = 0
    delivered = lost = 0
    for k, samples in teed1.items():
        have = got.get(k, {})
        ts_have = sorted(t for t in samples if t in have)
        ts_lost = sorted(t for t in samples if t not in have)
        delivered += len(ts_have)
        lost += len(ts_lost)
        if ts_have and ts_lost and ts_lost[-1] > ts_have[0]:
            bad += 1
    chk.ok(bad == 0, "%d series lost samples newer than some delivered ones" % bad)
    chk.ok(delivered > 0, "nothing delivered")
    chk.ok(lost > 0, "nothing lost although the bound was hit")
    newest = max(t for s in teed1.values() for t in s)
    newest_ok = all(newest in got.get(k, {}) for k, s in teed1.items() if newest in s)
    chk.ok(newest_ok, "the newest scrape before shutdown was not delivered")
    _, missing2, ex2 = d.wait_delivered(recv.base, d.read_tee(tee2), timeout=60)
    chk.ok(missing2 == 0, "after restart %d samples missing: %s" % (missing2, ex2))
    recv.stop()


def main():
    chk = h.Check("durability_disk")
    nginx, n = wide_targets(5)
    scenario_damage(chk, nginx, n)
    scenario_max_disk(chk, nginx, n)
    chk.finish()


if __name__ == "__main__":
    main()
