#!/usr/bin/python3
"""compare.py: scrapeship vs Prometheus agent mode vs vmagent, profile by profile.

For each profile of PROFILES, one nginx serves the profile's static targets
(bench/gen_targets.py; gzipped with gzip_static as Go exporters gzip, or plain) on
loopback ports and is also the remote-write null sink: `return 204` makes nginx read
and discard each body, and its access log records every body's size, an independent
count of the wire bytes. Each tool of TOOLS then runs alone, one after another, on the
same targets, with the same interval, batch size and no metadata, and is measured the
same way (benchlib.measure):

  warm-up     WARMUP s after its first delivered sample;
  window      a whole number of scrape intervals (DURATION s); CPU is utime+stime
              (or the threads' schedstat, ns, when no thread came or went) over it;
  counters    read from the tool's own /metrics as means over whole intervals just
              before and just after the window (so the reads stay out of the CPU
              figure, and the scrape and send bursts cancel out exactly):
                offered   = samples the tool scraped, its synthetic series included
                            (scrapeship_scrape_samples_scraped_total + 5 x scrapes,
                            prometheus_agent_samples_appended_total,
                            vm_promscrape_scraped_samples_sum + 6 x scrapes),
                delivered = samples its remote-write side counts as sent;
  results     offered samples/s (and against the nominal series x targets /
              interval), delivered/offered, CPU us per delivered sample, CPU % of a
              core, peak RSS (VmHWM), wire bytes per sample from the tool's counter and
              from the sink's log, what the tool says it dropped.

PROFILES names: ksm-1x100k (1 target x 100k series every 15 s, the
kube-state-metrics shape), 10x10k, 30x10k, 100x1k (every 1 s), sidecar-1x1k (1 x 1000
every 15 s); any NxM[k][@Is] works too (e.g. 20x5k@5s), and cadvisor-NxM the kubelet's
cAdvisor shape (every 15 s, honor_timestamps: false), om-NxM the service shape served
as OpenMetrics (every 1 s, as Java and Python clients answer). A -plain or -gzip suffix picks
the body encoding; without one, GZIP decides (1, 0, or `both` to run each twice).
`ceiling` in PROFILES (or CEILING=1) adds the ceiling run: per tool, targets of 10k
series every 1 s are added step by step (file_sd, no restart) until a step loses
samples, falls behind its scrapes or saturates the CPU; it reports the highest rate
sustained without loss.

Everything listens on 127.0.0.1, every wait has a deadline, and every process started
here is stopped on exit (atexit, SIGTERM, SIGINT, PR_SET_PDEATHSIG). Standard library
only. Knobs: see bench/README.md.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import benchlib as B  # noqa: E402

PROG = "compare"
DEFAULT_PROFILES = ("ksm-1x100k,cadvisor-10x20k,10x10k,30x10k,100x1k,1000x100,sidecar-1x1k,100x1k-plain,"
                    "10x10k-plain,om-100x1k")


def log(msg):
    B.log(PROG, msg)


def env_int(name, default, lo, hi):
    return B.env_int(name, default, lo, hi, PROG)


B.BATCH = env_int("BATCH", 2000, 1, 100_000)
FAST_DURATION, SLOW_DURATION = 30, 90   # defaults: window for intervals < 5 s and >= 5 s
FAST_WARMUP, SLOW_WARMUP = 12, 30
DURATION = os.environ.get("DURATION", "").strip()
WARMUP = os.environ.get("WARMUP", "").strip()
GZIP = os.environ.get("GZIP", "1").strip()
TOOLS = B.env_list("TOOLS", ",".join(B.ALL_TOOLS))
PROFILES = B.env_list("PROFILES", DEFAULT_PROFILES)
CEILING = env_int("CEILING", 0, 0, 1)
CEILING_TOOLS = B.env_list("CEILING_TOOLS", ",".join(TOOLS))
CEILING_SERIES = env_int("CEILING_SERIES", 10000, 100, 1_000_000)
CEILING_STEPS = sorted(set(int(x) for x in B.env_list("CEILING_STEPS", "25,50,100,150,200")))
if not CEILING_STEPS or not 1 <= CEILING_STEPS[0] <= CEILING_STEPS[-1] <= 2000:
    raise SystemExit("compare: CEILING_STEPS must be target counts in [1, 2000]")
CEILING_DURATION = env_int("CEILING_DURATION", 15, 5, 600)
CEILING_SETTLE = env_int("CEILING_SETTLE", 6, 2, 120)
CEILING_BUDGET = env_int("CEILING_BUDGET", 200, 30, 3600)  # s per tool, steps included
CEILING_MIN_RATIO = float(os.environ.get("CEILING_MIN_RATIO", "0.999"))
CEILING_CPU_MAX = float(os.environ.get("CEILING_CPU_MAX", "95"))  # % of all cores, tool + nginx
PROFILE_SECONDS = env_int("PROFILE_SECONDS", 10, 1, 120)
PERF_PROFILES = B.env_list("PERF_PROFILES", "100x1k")


# ---- profiles ------------------------------------------------------------------------------

PROFILE_RE = re.compile(r"^(?:(ksm|cadvisor|sidecar|om)-)?(\d+)x(\d+)(k?)(?:@(\d+)s)?(?:-(plain|gzip))?$")


def parse_profile(name):
    """'ksm-1x100k', '10x10k-plain', '20x5k@5s' -> dict, or SystemExit."""
    m = PROFILE_RE.match(name)
    if not m:
        raise SystemExit("compare: bad profile %r (want [ksm-|cadvisor-|sidecar-|om-]NxM[k][@Is][-plain|-gzip] or "
                         "ceiling)" % name)
    kind, n, mm, k, iv, enc = m.groups()
    series = int(mm) * (1000 if k else 1)
    interval = int(iv) if iv else (15 if kind in ("ksm", "cadvisor", "sidecar") else 1)
    targets = int(n)
    if not (1 <= targets <= 2000 and 1 <= series <= 2_000_000 and 1 <= interval <= 300):
        raise SystemExit("compare: profile %r out of range" % name)
    gz = {"plain": [False], "gzip": [True]}.get(enc)
    if gz is None:
        gz = {"0": [False], "1": [True], "both": [True, False]}.get(GZIP)
        if gz is None:
            raise SystemExit("compare: GZIP must be 0, 1 or both")
    out = []
    for g in gz:
        label = name if enc or (g and len(gz) == 1) else "%s-%s" % (name, "gzip" if g else "plain")
        out.append({"name": label, "targets": targets, "series": series, "interval": interval, "gzip": g,
                    "shape": kind if kind in ("ksm", "cadvisor") else "openmetrics" if kind == "om" else "service",
                    "seed": 7 if kind == "sidecar" else 1})
    return out


def window_for(interval):
    """(warm-up, window): the window a whole number of intervals, at least two; the
    warm-up at least one interval plus the edge span (measure() enforces it too)."""
    slow = interval >= 5
    d = int(DURATION) if DURATION else (SLOW_DURATION if slow else FAST_DURATION)
    w = int(WARMUP) if WARMUP else (SLOW_WARMUP if slow else FAST_WARMUP)
    d = max(2 * interval, int(math.ceil(d / float(interval))) * interval)
    # the first edge (EDGE s, whole intervals) starts an interval after the first delivery
    return max(w, interval + B.edge_span(interval)), d


class Targets:
    """Generated target sets, by (shape, series, seed), big enough for every profile."""

    def __init__(self, root):
        self.root = root
        self.sets = {}

    def dirs(self, shape, series, seed, n):
        key = (shape, series, seed)
        have = self.sets.get(key, 0)
        d = os.path.join(self.root, "%s-%d-%d" % key)
        if have < n:
            log("generating %d targets x %d series (%s)" % (n, series, shape))
            B.gen_targets(d, n, series, seed, shape)
            self.sets[key] = n
        return [os.path.join(d, str(i)) for i in range(n)]


# ---- one tool on one profile --------------------------------------------------------------

def run_case(prof, tool_name, workdir, ports, sink_port, sink_log, nginx, perf=False):
    interval = prof["interval"]
    warmup, duration = window_for(interval)
    tdir = os.path.join(workdir, "%s-%s" % (prof["name"], tool_name))
    tool = B.Tool(tool_name, tdir, sink_port)
    nominal = len(ports) * (prof["series"] + tool.synthetic) / float(interval)
    log("%s/%s: starting (%d targets x %d series every %ds, %s; warm-up %ds, window %ds)"
        % (prof["name"], tool_name, len(ports), prof["series"], interval, "gzip" if prof["gzip"] else "plain",
           warmup, duration))
    res = {"profile": prof["name"], "tool": tool_name, "warmup_s": warmup, "window_s": duration}
    # cAdvisor's static timestamps would repeat scrape after scrape (gen_targets.py)
    p = tool.start(B.scrape_yaml(tool_name, interval, sink_port, targets=ports,
                                 honor_timestamps=prof["shape"] != "cadvisor"))
    try:
        B.wait_ready(tool, interval)
        res["version"] = tool.version()
        res.update(B.measure(tool, interval, warmup, duration, sink_log, nominal, nginx))
        if perf:
            res["perf"] = perf_profile(p.pid, tdir)
    except Exception as e:  # one tool failing must not lose the others' figures
        res["error"] = str(e)
        log("%s/%s: %s (log: %s)" % (prof["name"], tool_name, e, tool.log_path))
    finally:
        res["exit_code"] = B.stop(p)
    log("%s/%s: %s" % (prof["name"], tool_name, summary(res)))
    return res


def perf_profile(pid, tdir):
    """Top symbols by self time, sampled with perf for PROFILE_SECONDS (after the window,
    so the sampling overhead stays out of the measured figures)."""
    data = os.path.join(tdir, "perf.data")
    try:
        subprocess.run(["perf", "record", "-q", "-F", "999", "-g", "-o", data, "-p", str(pid), "--",
                        "sleep", str(PROFILE_SECONDS)], capture_output=True, timeout=PROFILE_SECONDS + 60)
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                              "--sort", "dso,symbol", "--percent-limit", "1.5", "-g", "none"],
                             capture_output=True, timeout=120)
        rows = []
        for line in out.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
            if m:
                # drop the IPC columns perf adds where the PMU gives none ("-  -")
                rows.append((float(m.group(1)), m.group(2), re.sub(r"(\s+-)+\s*$", "", m.group(3))))
        with open(os.path.join(tdir, "perf-top.txt"), "w") as f:
            f.write(out.stdout.decode("utf-8", "replace"))
        return rows[:25]
    except Exception as e:  # profiling is optional
        return [("error", str(e))]


def pct(v):
    return None if v is None else 100.0 * v


def summary(r):
    if "error" in r:
        return "ERROR " + r["error"]
    return ("offered %.0f/s, delivered %.2f%%, %s us CPU/sample, %.1f%% CPU, peak RSS %.1f MB, "
            "%s wire B/sample, tool-reported drops %.0f"
            % (r["offered_per_s"], pct(r["delivered_ratio"]) or 0, B.fmt(r["cpu_us_per_sample"], "%.3f"),
               r["cpu_pct"], r["peak_rss_mb"], B.fmt(r["wire_bytes_per_sample"], "%.1f"), r["tool_dropped"]))


# ---- ceiling ------------------------------------------------------------------------------

def ceiling_step_ok(r):
    """(sustained?, why not)."""
    why = []
    if r["delivered_ratio"] is None or r["delivered_ratio"] < CEILING_MIN_RATIO:
        why.append("delivered %.2f%% < %.1f%%" % (pct(r["delivered_ratio"]) or 0, 100 * CEILING_MIN_RATIO))
    if r["offered_vs_nominal"] is not None and r["offered_vs_nominal"] < 0.99:
        why.append("scraped only %.1f%% of nominal (missed scrapes)" % pct(r["offered_vs_nominal"]))
    if r["tool_dropped"] > 0:
        why.append("tool reports %.0f dropped" % r["tool_dropped"])
    busy = (r["cpu_pct"] + (r["nginx_cpu_pct"] or 0)) / (os.cpu_count() or 1)
    if busy >= CEILING_CPU_MAX:
        why.append("CPU saturated (tool+nginx %.0f%% of all cores)" % busy)
    return not why, "; ".join(why)


def run_ceiling(tool_name, workdir, ports, sink_port, sink_log, nginx):
    """Add targets (file_sd, no restart) up the CEILING_STEPS ladder until a step is not
    sustained; then one probe halfway back (or, if the first step already fails, halving
    down to 1 target), each probe on a freshly started tool so that no backlog from the
    failed step is carried over. Bounded by CEILING_BUDGET seconds per tool."""
    interval = 1
    span = B.edge_span(interval)
    tdir = os.path.join(workdir, "ceiling-%s" % tool_name)
    os.makedirs(tdir, exist_ok=True)
    sd = os.path.join(tdir, "targets.json")
    steps = sorted(set(s for s in CEILING_STEPS if 1 <= s <= len(ports)))
    out = {"tool": tool_name, "steps": [], "series_per_target": CEILING_SERIES, "interval_s": interval,
           "restarts": 0}
    deadline = time.monotonic() + CEILING_BUDGET
    cur = {"tool": None}
    tol = 1.0 - CEILING_MIN_RATIO

    def launch(n):
        if cur["tool"] is not None:
            B.stop(cur["tool"].proc)
            out["restarts"] += 1
        B.write_sd(sd, [("127.0.0.1:%d" % q, {}) for q in ports[:n]])
        tool = B.Tool(tool_name, tdir, sink_port)
        tool.start(B.scrape_yaml(tool_name, interval, sink_port, sd_file=sd))
        cur["tool"] = tool
        B.wait_ready(tool, interval)
        out.setdefault("version", tool.version())
        return tool

    def room(extra=0):
        return time.monotonic() + extra + CEILING_DURATION + 2 * span < deadline

    def step(n, fresh=False, started=False):
        """Measure n targets (fresh: on a restarted tool; started: the tool was just
        started with them); None when the budget has no room for it."""
        if not room(max(CEILING_SETTLE, 20) + 20 if fresh else CEILING_SETTLE):
            out["stopped"] = "time budget (CEILING_BUDGET=%ds)" % CEILING_BUDGET
            return None
        if fresh:
            tool = launch(n)
        else:
            tool = cur["tool"]
            B.write_sd(sd, [("127.0.0.1:%d" % q, {}) for q in ports[:n]])
        nominal = n * (CEILING_SERIES + tool.synthetic) / float(interval)
        # after a start the tool also has to size its send queue (Prometheus reshards
        # every 10 s): a longer settle
        settle = max(CEILING_SETTLE, 20) if fresh or started else CEILING_SETTLE
        r = B.measure(tool, interval, settle, CEILING_DURATION, sink_log, nominal, nginx)
        windows = 1
        while windows < 3 and room():
            ratio = r["delivered_ratio"] or 0
            catching_up = ratio > 1 + tol or (r["offered_vs_nominal"] or 0) > 1.01
            near = CEILING_MIN_RATIO - 0.01 <= ratio < CEILING_MIN_RATIO and r["tool_dropped"] == 0 \
                and (r["offered_vs_nominal"] or 1) >= 0.99
            if not (catching_up or near):
                break
            # Not settled yet: still working off what the previous step (or the start)
            # left behind, or lagging a little more while the tool adapts to the new
            # load. Judge the next window instead; real loss persists into it.
            r = B.measure(tool, interval, 0, CEILING_DURATION, sink_log, nominal, nginx)
            windows += 1
        ok, why = ceiling_step_ok(r)
        if (r["delivered_ratio"] or 0) > 1 + tol or (r["offered_vs_nominal"] or 0) > 1.01:
            # more out than in, or more scraped than the targets offer, even after the
            # extra windows: no loss, but the figures still include backlog from before
            r["catching_up"] = True
        r.pop("edges", None)
        r.update({"targets": n, "nominal_per_s": nominal, "sustained": ok, "why_not": why, "windows": windows,
                  "fresh_start": fresh})
        out["steps"].append(r)
        log("ceiling/%s: %d targets (%.0f/s nominal): %s, delivered %.0f/s (%.2f%%%s), CPU %.0f%%" % (
            tool_name, n, nominal, "sustained" if ok else "NOT sustained: " + why, r["samples_per_s"],
            pct(r["delivered_ratio"]) or 0, ", still catching up" if r.get("catching_up") else "", r["cpu_pct"]))
        return r

    try:
        launch(steps[0])
        last_ok, first_bad = 0, None
        for n in steps:
            r = step(n, started=n == steps[0])
            if r is None:
                break
            if not r["sustained"]:
                first_bad = n
                break
            last_ok = n
        if first_bad is not None:
            if last_ok:
                mid = (last_ok + first_bad) // 2
                if last_ok < mid < first_bad:
                    step(mid, fresh=True)
            else:  # not even the first step: halve down to one target
                n = first_bad // 2
                while n >= 1:
                    r = step(n, fresh=True)
                    if r is None or r["sustained"]:
                        break
                    n //= 2
    except Exception as e:
        out["error"] = str(e)
        log("ceiling/%s: %s (log: %s)" % (tool_name, e, cur["tool"].log_path if cur["tool"] else "-"))
    finally:
        if cur["tool"] is not None:
            out["exit_code"] = B.stop(cur["tool"].proc)
    good = [s for s in out["steps"] if s["sustained"]]
    if good:
        # the load the step put on it, taken in and delivered in full (while catching
        # up, scraped and delivered can run above what the targets offer)
        def sustained_rate(s):
            return min(s["samples_per_s"], s["offered_per_s"], s["nominal_per_s"])
        best = max(good, key=sustained_rate)
        out.update({"ceiling_samples_per_s": sustained_rate(best),
                    "ceiling_targets": best["targets"],
                    "ceiling_cpu_pct": best["cpu_pct"], "ceiling_peak_rss_mb": best["peak_rss_mb"]})
        if best["targets"] == steps[-1]:
            out["stopped"] = "top of the ladder (CEILING_STEPS)"
    bad = [s for s in out["steps"] if not s["sustained"]]
    if bad:
        first = min(bad, key=lambda s: s["targets"])
        out["first_failure"] = {"targets": first["targets"], "why": first["why_not"],
                                "offered_per_s": first["offered_per_s"]}
    return out


# ---- report -------------------------------------------------------------------------------

HEAD = ["profile", "tool", "offered/s", "% of nominal", "delivered/offered %", "CPU us/sample", "CPU % of a core",
        "peak RSS MB", "wire B/sample", "sink B/sample", "tool drops", "load 1m"]


def row(r):
    if "error" in r:
        return [r["profile"], r["tool"], "ERROR: " + r["error"][:60]] + [""] * (len(HEAD) - 3)
    drops = "%.0f" % r["tool_dropped"]
    if r["tool"] == "vmagent" and r["tool_dropped"]:
        drops += " blocks"
    return [r["profile"], r["tool"], "%.0f" % r["offered_per_s"], B.fmt(pct(r["offered_vs_nominal"]), "%.1f"),
            B.fmt(pct(r["delivered_ratio"]), "%.2f"), B.fmt(r["cpu_us_per_sample"], "%.3f"),
            "%.3f" % r["cpu_pct"] if r["cpu_pct"] < 1 else "%.1f" % r["cpu_pct"],
            "%.1f" % r["peak_rss_mb"], B.fmt(r["wire_bytes_per_sample"], "%.1f"),
            B.fmt(r["sink_bytes_per_sample"], "%.1f"), drops, "%.2f" % r["loadavg_1m_end"]]


def md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def ceiling_table(ceil):
    rows = []
    for c in ceil:
        if c.get("error") and not c["steps"]:
            rows.append([c["tool"], "ERROR: " + c["error"][:60], "", "", "", ""])
            continue
        steps = ", ".join("%d%s" % (s["targets"], "" if s["sustained"] else "x") for s in c["steps"])
        ff = c.get("first_failure")
        rows.append([c["tool"],
                     ("%s%.0f" % (">= " if not ff else "", c["ceiling_samples_per_s"]))
                     if "ceiling_samples_per_s" in c else "none",
                     "%d" % c["ceiling_targets"] if "ceiling_targets" in c else "-",
                     B.fmt(c.get("ceiling_cpu_pct"), "%.0f"),
                     ("%d targets: %s" % (ff["targets"], ff["why"])) if ff else (c.get("stopped") or "-"),
                     steps])
    return md_table(["tool", "highest sustained samples/s", "targets", "CPU % there", "first step not sustained",
                     "steps (x = not sustained)"], rows)


def main():
    B.install_handlers()
    old = [k for k in ("N", "M", "INTERVAL", "SIDECAR", "SIDECAR_M", "SIDECAR_INTERVAL", "SIDECAR_TOOLS")
           if os.environ.get(k)]
    if old:
        log("ignoring %s: the workloads are PROFILES now (e.g. PROFILES=100x1k@1s,sidecar-1x1k)" % ", ".join(old))
    profiles, ceiling = [], bool(CEILING)
    for name in PROFILES:
        if name == "ceiling":
            ceiling = True
        else:
            profiles.extend(p for p in parse_profile(name) if p["name"] not in [q["name"] for q in profiles])
    for t in set(TOOLS + (CEILING_TOOLS if ceiling else [])):
        if t not in B.BINS:
            raise SystemExit("compare: unknown tool %r (scrapeship, prometheus, vmagent)" % t)
        if not os.access(B.BINS[t], os.X_OK):
            raise SystemExit("compare: %s not found at %s" % (t, B.BINS[t]))
    if not os.access(B.NGINX, os.X_OK):
        raise SystemExit("compare: nginx not found at " + B.NGINX)
    out = os.environ.get("OUT") or tempfile.mkdtemp(prefix="scrapeship-bench-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="work-", dir=out)
    os.chmod(work, 0o755)  # nginx workers may run as another user
    perf_ok = os.environ.get("PROFILE", "1" if shutil.which("perf") else "0") == "1"
    targets = Targets(os.path.join(work, "targets"))

    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": B.machine(), "commit": B.git_commit(),
               "batch": B.BATCH, "tools": TOOLS, "profiles": [], "results": [], "ceiling": []}
    json_path = os.path.join(out, "results.json")

    def save():
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2, default=str)

    need = {}
    for prof in profiles:  # each target set generated once, as large as its largest profile
        key = (prof["shape"], prof["series"], prof["seed"])
        need[key] = max(need.get(key, 0), prof["targets"])
    for (shape, series, seed), n in need.items():
        targets.dirs(shape, series, seed, n)
    for prof in profiles:
        warmup, duration = window_for(prof["interval"])
        prof = dict(prof, warmup_s=warmup, window_s=duration)
        results["profiles"].append(prof)
        dirs = targets.dirs(prof["shape"], prof["series"], prof["seed"], prof["targets"])
        ports = B.free_ports(prof["targets"] + 1)
        sink_port, tports = ports[0], ports[1:]
        nginx, sink_log = B.start_nginx(work, dict(zip(tports, dirs)), sink_port, gzip=prof["gzip"],
                                        tag="nginx-" + prof["name"],
                                        content_type=B.OPENMETRICS_TYPE if prof["shape"] == "openmetrics"
                                        else B.TEXT_TYPE)
        try:
            for t in TOOLS:
                r = run_case(prof, t, work, tports, sink_port, sink_log, nginx,
                             perf=perf_ok and t == "scrapeship" and prof["name"] in PERF_PROFILES)
                r.pop("edges", None)
                results["results"].append(r)
                save()
        finally:
            B.stop(nginx)

    if ceiling:
        n = max(CEILING_STEPS)
        distinct = min(n, 64)  # more ports than files: the extra ports serve the same files again
        dirs = targets.dirs("service", CEILING_SERIES, 3, distinct)
        ports = B.free_ports(n + 1)
        sink_port, tports = ports[0], ports[1:]
        gz = GZIP != "0"
        nginx, sink_log = B.start_nginx(work, {p: dirs[i % distinct] for i, p in enumerate(tports)}, sink_port,
                                        gzip=gz, tag="nginx-ceiling")
        results["ceiling_workload"] = {"series_per_target": CEILING_SERIES, "interval_s": 1, "gzip": gz,
                                       "steps": CEILING_STEPS, "step_window_s": CEILING_DURATION,
                                       "settle_s": CEILING_SETTLE, "min_ratio": CEILING_MIN_RATIO}
        try:
            for t in CEILING_TOOLS:
                results["ceiling"].append(run_ceiling(t, work, tports, sink_port, sink_log, nginx))
                save()
        finally:
            B.stop(nginx)
    save()

    mach = results["machine"]
    versions = {}
    for r in results["results"] + results["ceiling"]:
        if r.get("version"):
            versions.setdefault(r["tool"], r["version"])
    report = ["date: %s, commit %s" % (results["date"], results["commit"]),
              "machine: %d CPUs, %s, %d MB RAM, Linux %s" % (mach["nproc"], mach["cpu"], mach["mem_mb"],
                                                            mach["kernel"]),
              "versions: " + "; ".join("%s: %s" % kv for kv in versions.items()),
              "batch %d samples per request for every tool; offered = what the tool scraped (synthetic "
              "series included), delivered = what it counts as sent" % B.BATCH, ""]
    for prof in results["profiles"]:
        nom = prof["targets"] * prof["series"] / float(prof["interval"])
        report.append("* %s: %d target%s x %d series every %ds (%s shape), %s bodies, %.0f samples/s "
                      "nominal; warm-up %ds, window %ds (%d scrapes)"
                      % (prof["name"], prof["targets"], "" if prof["targets"] == 1 else "s", prof["series"],
                         prof["interval"], prof["shape"], "gzip" if prof["gzip"] else "plain", nom,
                         prof["warmup_s"], prof["window_s"], prof["window_s"] // prof["interval"]))
    if results["results"]:
        report += ["", md_table(HEAD, [row(r) for r in results["results"]])]
    if results["ceiling"]:
        cw = results["ceiling_workload"]
        report += ["", "ceiling: targets of %d series every 1 s (%s), added via file_sd at steps %s; a step is "
                   "sustained when delivered/offered >= %.1f%%, the tool scraped >= 99%% of nominal, reported no "
                   "drops, and tool+nginx stayed under %.0f%% of all cores; %ds window per step"
                   % (cw["series_per_target"], "gzip" if cw["gzip"] else "plain",
                      ",".join(map(str, cw["steps"])), 100 * cw["min_ratio"], CEILING_CPU_MAX,
                      cw["step_window_s"]), "", ceiling_table(results["ceiling"])]
    for r in results["results"]:
        if r.get("perf"):
            report += ["", "perf, %s on %s, top symbols by self time (%ds after the window):"
                       % (r["tool"], r["profile"], PROFILE_SECONDS)]
            report += ["  %5s%%  %-22s %s" % (x[0], x[1], x[2]) if len(x) == 3 else "  %s" % (x,)
                       for x in r["perf"]]
    text = "\n".join(report) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    print("results: %s" % out)
    if not os.environ.get("KEEP_WORK"):
        shutil.rmtree(work, ignore_errors=True)
    bad = any("error" in r for r in results["results"] + results["ceiling"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
