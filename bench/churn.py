#!/usr/bin/python3
"""churn.py: the churn soak. Targets come and go every few seconds for minutes; nothing
may be dropped and RSS must stay flat.

One nginx serves CHURN_POOL static targets of CHURN_M series (bench/gen_targets.py) and
is the remote-write null sink. scrapeship (CHURN_TOOLS adds peers, one after another)
scrapes a file_sd file (refresh_interval 1s) that is rewritten every CHURN_EVERY s:
each time CHURN_REPLACE of the CHURN_LIVE live targets leave and as many others come,
each arrival a new incarnation with a new `pod` label, so its series are new series
(as pods of a Deployment being rolled), and each departure leaves staleness markers.
Default: 20 live targets x 1000 series every 1 s (20k samples/s), 4 replaced every 3 s,
for 300 s.

Every CHURN_RSS_EVERY s: VmRSS, RssAnon and the tool's counters. At the end the file
is emptied, every target leaves, and the tool is given up to 60 s to drain (its queue
empty, its counters still), so the totals are exact:

  offered    the samples it scraped + 5 synthetic per scrape + in-scrape staleness
             markers (its own scrape-side counters) + the markers for the departed
             targets (counted here: departures x (M + 5), scrapeship does not count them);
  delivered  scrapeship_remote_samples_total, and the sink's body bytes against
             scrapeship_remote_bytes_total;
  dropped    scrapeship_remote_samples_dropped_total by reason (and failed_total).

Exit status: 1 when a sample was dropped or lost (offered > delivered) or, with
CHURN_RSS_STRICT=1 (the default), when RSS grew after the warm-up (least-squares slope
over the samples after CHURN_WARMUP s, times that span, above max(CHURN_RSS_TOLERANCE_MB,
5% of the mean)); 2 when the harness itself failed. Standard library only; everything
on 127.0.0.1; every loop bounded; every process stopped on exit.
"""
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

PROG = "churn"


def env_int(name, default, lo, hi):
    return B.env_int(name, default, lo, hi, PROG)


def log(msg):
    B.log(PROG, msg)


B.BATCH = env_int("BATCH", 2000, 1, 100_000)
DURATION = env_int("CHURN_DURATION", 300, 10, 24 * 3600)
WARMUP = env_int("CHURN_WARMUP", 60, 0, 3600)
LIVE = env_int("CHURN_LIVE", 20, 1, 1000)
POOL = env_int("CHURN_POOL", 40, 2, 2000)
M = env_int("CHURN_M", 1000, 1, 1_000_000)
EVERY = env_int("CHURN_EVERY", 3, 1, 3600)
REPLACE = env_int("CHURN_REPLACE", 4, 1, 1000)
RSS_EVERY = env_int("CHURN_RSS_EVERY", 10, 1, 600)
INTERVAL = env_int("CHURN_INTERVAL", 1, 1, 60)
GZIP = env_int("GZIP", 1, 0, 1) if os.environ.get("GZIP", "1") in ("0", "1") else 1
RSS_TOL_MB = float(os.environ.get("CHURN_RSS_TOLERANCE_MB", "2"))
RSS_STRICT = env_int("CHURN_RSS_STRICT", 1, 0, 1)
SEED = env_int("CHURN_SEED", 1, 0, 2**31)
TOOLS = B.env_list("CHURN_TOOLS", "scrapeship")
DRAIN_TIMEOUT = 60
# scrapeship counts the staleness markers of a departed target nowhere on the scrape
# side (scrapeship_scrape_stale_markers_total counts in-scrape ones only); the peers'
# appended/created counters include them.
COUNTS_DEPARTURE_MARKERS = {"scrapeship": False, "prometheus": True, "vmagent": True}


def rss(pid):
    return {"rss_mb": B.proc_status_kb(pid, "VmRSS") / 1024.0,
            "anon_mb": B.proc_status_kb(pid, "RssAnon") / 1024.0,
            "hwm_mb": B.proc_status_kb(pid, "VmHWM") / 1024.0}


def drop_reasons(series):
    out = {}
    for k, v in series.items():
        if k.startswith("scrapeship_remote_samples_dropped_total{"):
            r = B.label_value(k, "reason") or "?"
            out[r] = out.get(r, 0) + v
    return out


def trend(samples, key, t_from):
    pts = [(s["t"], s[key]) for s in samples if s["t"] >= t_from]
    if len(pts) < 3:
        return None
    slope, _ = B.fit_slope([p[0] for p in pts], [p[1] for p in pts])
    span = pts[-1][0] - pts[0][0]
    mean = sum(p[1] for p in pts) / len(pts)
    growth = slope * span
    return {"slope_mb_per_min": slope * 60, "growth_mb": growth, "span_s": span, "mean_mb": mean,
            "min_mb": min(p[1] for p in pts), "max_mb": max(p[1] for p in pts),
            "flat": growth < max(RSS_TOL_MB, 0.05 * mean)}


def soak(tool_name, work, ports, sink_port, sink_log):
    rng = random.Random(SEED)
    tdir = os.path.join(work, tool_name)
    os.makedirs(tdir, exist_ok=True)
    sd = os.path.join(tdir, "targets.json")
    gen = [0]

    def incarnation(port):
        gen[0] += 1
        return (port, "churn-%06d" % gen[0])

    live = [incarnation(p) for p in ports[:LIVE]]
    idle = list(ports[LIVE:])

    def write():
        B.write_sd(sd, [("127.0.0.1:%d" % p, {"pod": pod}) for p, pod in live])

    write()
    tool = B.Tool(tool_name, tdir, sink_port)
    res = {"tool": tool_name, "rss": [], "counters": [], "departed": 0, "arrived": len(live)}
    wall0 = time.time()
    p = tool.start(B.scrape_yaml(tool_name, INTERVAL, sink_port, sd_file=sd))
    try:
        B.wait_ready(tool, INTERVAL)
        res["version"] = tool.version()
        t_start = time.monotonic()
        end = t_start + DURATION
        next_churn, next_rss = t_start + EVERY, t_start
        log("%s: %d live of %d targets x %d series every %ds, %d replaced every %ds, for %ds"
            % (tool_name, LIVE, POOL, M, INTERVAL, REPLACE, EVERY, DURATION))
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if p.poll() is not None:
                raise RuntimeError("%s exited (rc %s)" % (tool_name, p.returncode))
            if now >= next_rss:
                c = tool.counters()
                s = dict(rss(p.pid), t=now - t_start)
                res["rss"].append(s)
                res["counters"].append({k: v for k, v in c.items() if k != "series"})
                marks = 0 if COUNTS_DEPARTURE_MARKERS[tool_name] else res["departed"] * (M + tool.synthetic)
                log("%s: t=%4.0fs RSS %.1f MB (anon %.1f), targets %.0f, offered %.0f, delivered %.0f, "
                    "queued %s, dropped %.0f" % (tool_name, s["t"], s["rss_mb"], s["anon_mb"],
                                                 c.get("targets", 0), c["scraped"] + marks, c["delivered"],
                                                 B.fmt(c["queued"], "%.0f"), c["dropped"]))
                next_rss += RSS_EVERY
            if now >= next_churn:
                k = min(REPLACE, len(live), len(idle))
                leaving = rng.sample(range(len(live)), k)
                for i in sorted(leaving, reverse=True):
                    idle.append(live.pop(i)[0])
                rng.shuffle(idle)
                for _ in range(k):
                    live.append(incarnation(idle.pop(0)))
                res["departed"] += k
                res["arrived"] += k
                write()
                next_churn += EVERY
            time.sleep(max(0.05, min(next_churn, next_rss, end) - time.monotonic()))
        # every target leaves; then wait for the tool to drain and its counters to stop
        res["departed"] += len(live)
        live = []
        write()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        last, still_since = None, None
        while time.monotonic() < deadline:
            c = tool.counters()
            key = (c["scraped"], c["delivered"], c["dropped"], c["in"])
            quiet = c.get("targets", 0) == 0 and (c["queued"] in (None, 0)) and key == last
            if quiet:
                still_since = still_since or time.monotonic()
                if time.monotonic() - still_since >= 3:
                    break
            else:
                still_since = None
            last = key
            time.sleep(0.5)
        else:
            res["drain_timeout"] = True
        final = tool.counters()
        res["final_rss"] = rss(p.pid)
        res["cpu_s"] = B.proc_cpu_s(p.pid)
    finally:
        res["exit_code"] = B.stop(p)
    _, sink_bytes, bad = B.sink_window(sink_log, wall0, time.time() + 1)

    markers = 0 if COUNTS_DEPARTURE_MARKERS[tool_name] else res["departed"] * (M + tool.synthetic)
    offered = final["scraped"] + markers
    res.update({
        "scraped_side": final["scraped"], "departure_markers_added": markers, "offered": offered,
        "in": final["in"], "delivered": final["delivered"], "dropped": final["dropped"],
        "lost": offered - final["delivered"] - final["dropped"],
        "queued_end": final["queued"], "scrapes": final.get("scrapes"),
        "scrape_failures": final.get("scrape_failures"),
        "tool_bytes": final["bytes"], "sink_bytes": sink_bytes, "sink_non_2xx": bad,
    })
    if tool_name == "scrapeship":
        res["dropped_by_reason"] = drop_reasons(final["series"])
    t_from = WARMUP
    res["rss_trend"] = trend(res["rss"], "rss_mb", t_from)
    res["anon_trend"] = trend(res["rss"], "anon_mb", t_from)
    return res


def report(r):
    lines = ["## churn soak: %s (%s)" % (r["tool"], r.get("version", "?")), ""]
    if "error" in r:
        lines.append("ERROR: " + r["error"])
    if "offered" not in r:
        return lines
    lines += [
        "targets: %d arrived, %d departed (each a new set of %d series)" % (r["arrived"], r["departed"], M),
        "offered (scrape side%s): %.0f" % (", + %.0f departure staleness markers" % r["departure_markers_added"]
                                           if r["departure_markers_added"] else "", r["offered"]),
        "handed to remote write: %.0f; delivered: %.0f (%.4f%% of offered); queued at the end: %s"
        % (r["in"], r["delivered"], 100.0 * r["delivered"] / r["offered"] if r["offered"] else 0,
           B.fmt(r["queued_end"], "%.0f")),
        "dropped (tool's counter): %.0f%s" % (r["dropped"], "" if "dropped_by_reason" not in r else " by reason: " +
                                              ", ".join("%s=%.0f" % kv for kv in
                                                        sorted(r["dropped_by_reason"].items()))),
        "lost without a count (offered - delivered - dropped): %.0f" % r["lost"],
        "wire bytes: tool %.0f, sink %d (%s); sink non-2xx: %d; scrape failures: %s"
        % (r["tool_bytes"], r["sink_bytes"], "equal" if abs(r["tool_bytes"] - r["sink_bytes"]) < 1 else
           "differ by %.0f" % (r["sink_bytes"] - r["tool_bytes"]), r["sink_non_2xx"],
           B.fmt(r.get("scrape_failures"), "%.0f")),
    ]
    if r.get("drain_timeout"):
        lines.append("WARNING: did not drain within %ds; the totals include what was still in flight"
                     % DRAIN_TIMEOUT)
    lines += ["", "RSS every %ds (MB): " % RSS_EVERY + " ".join("%.1f" % s["rss_mb"] for s in r["rss"]),
              "RssAnon (MB):        " + " ".join("%.1f" % s["anon_mb"] for s in r["rss"])]
    for name, key in (("RSS", "rss_trend"), ("RssAnon", "anon_trend")):
        tr = r.get(key)
        if tr:
            lines.append("%s after %ds: slope %+.3f MB/min, fitted growth %+.2f MB over %.0f s (min %.1f, "
                         "max %.1f): %s" % (name, WARMUP, tr["slope_mb_per_min"], tr["growth_mb"], tr["span_s"],
                                            tr["min_mb"], tr["max_mb"], "flat" if tr["flat"] else "GROWING"))
        else:
            lines.append("%s: too few samples after the %ds warm-up for a trend" % (name, WARMUP))
    return lines


def main():
    B.install_handlers()
    for t in TOOLS:
        if t not in B.BINS or not os.access(B.BINS[t], os.X_OK):
            raise SystemExit("churn: tool %r not found (%s)" % (t, B.BINS.get(t)))
    if LIVE >= POOL:
        raise SystemExit("churn: CHURN_LIVE must be below CHURN_POOL")
    out = os.environ.get("OUT") or tempfile.mkdtemp(prefix="scrapeship-churn-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="churn-work-", dir=out)
    os.chmod(work, 0o755)
    log("generating %d targets x %d series" % (POOL, M))
    B.gen_targets(os.path.join(work, "targets"), POOL, M, 11)
    ports = B.free_ports(POOL + 1)
    sink_port, tports = ports[0], ports[1:]
    nginx, sink_log = B.start_nginx(work, {p: os.path.join(work, "targets", str(i)) for i, p in enumerate(tports)},
                                    sink_port, gzip=bool(GZIP))
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": B.machine(), "commit": B.git_commit(),
               "workload": {"live": LIVE, "pool": POOL, "series": M, "interval_s": INTERVAL, "every_s": EVERY,
                            "replace": REPLACE, "duration_s": DURATION, "warmup_s": WARMUP, "gzip": bool(GZIP),
                            "nominal_samples_per_s": LIVE * M / float(INTERVAL)},
               "runs": []}
    rc = 0
    try:
        for t in TOOLS:
            try:
                r = soak(t, work, tports, sink_port, sink_log)
            except Exception as e:
                r = {"tool": t, "error": str(e)}
                log("%s: %s" % (t, e))
                rc = max(rc, 2)
            results["runs"].append(r)
    finally:
        B.stop(nginx)
    w = results["workload"]
    text = ["date: %s, commit %s" % (results["date"], results["commit"]),
            "workload: %d live of %d targets x %d series every %ds (%.0f samples/s), %d replaced every %ds, %ds, "
            "%s bodies; RSS trend after %ds" % (w["live"], w["pool"], w["series"], w["interval_s"],
                                                  w["nominal_samples_per_s"], w["replace"], w["every_s"],
                                                  w["duration_s"], "gzip" if w["gzip"] else "plain",
                                                  w["warmup_s"]), ""]
    verdicts = []
    for r in results["runs"]:
        text += report(r) + [""]
        if "offered" not in r:
            continue
        bad = []
        if r["dropped"] > 0:
            bad.append("%.0f dropped" % r["dropped"])
        if r["lost"] > 0:
            bad.append("%.0f lost" % r["lost"])
        if r.get("drain_timeout"):
            bad.append("did not drain")
        grow = [k for k in ("rss_trend", "anon_trend") if r.get(k) and not r[k]["flat"]]
        if grow:
            bad.append("RSS growing" + ("" if RSS_STRICT else " (not failing: CHURN_RSS_STRICT=0)"))
        fail = bool([b for b in bad if not b.startswith("RSS")] or (grow and RSS_STRICT))
        if r["tool"] == "scrapeship" or r["dropped"] > 0:
            rc = max(rc, 1 if fail else 0)
        verdicts.append("%s: %s" % (r["tool"], "FAIL (" + "; ".join(bad) + ")" if fail else
                                    "ok" + (" (" + "; ".join(bad) + ")" if bad else "")))
    text += ["verdict: " + ("; ".join(verdicts) or "no result")]
    with open(os.path.join(out, "churn.json"), "w") as f:
        for r in results["runs"]:
            r.pop("series", None)
        json.dump(results, f, indent=2, default=str)
    with open(os.path.join(out, "churn.md"), "w") as f:
        f.write("\n".join(text) + "\n")
    print("\n".join(text))
    print("results: %s" % out)
    if not os.environ.get("KEEP_WORK"):
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
