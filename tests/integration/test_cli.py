"""The binary's command line, as a user runs it.

* check-config: every broken fixture (tests/unit/collector/configs/broken_*.yml,
  expected message on its first line) exits 1 and prints that file:line:column
  message; good configs exit 0 and print the effective config with secrets redacted.
* scrape: exit 0 when every target is up, 1 when one is down, 2 on usage errors;
  text and JSON output.
* --version, unknown commands.
* scrape --strict and strict_parsing: true fail a scrape Prometheus 2.42 accepts
  (no final newline) that lint calls an error; without them it succeeds.
* `make run` (run --stdout on the embedded default, which scrapes itself): the
  per-job self-metrics are labelled scrape_job, so no line carries an exported_ label.
* The open-file limit: started with a soft limit of 256, `run` raises it to the hard
  limit (process_max_fds), as Go programs do; with a hard limit of 128, more targets
  than fit are named in a warning.
"""
import glob
import json
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONFIGS = os.path.join(h.REPO, "tests", "unit", "collector", "configs")


def main():
    chk = h.Check("cli")
    broken = sorted(glob.glob(os.path.join(CONFIGS, "broken_*.yml")))
    chk.ok(len(broken) >= 15, "only %d broken configs" % len(broken))
    for path in broken:
        first = open(path, encoding="utf-8", errors="replace").readline()
        if not first.startswith("# expect: "):
            continue
        want = first[len("# expect: "):].strip()
        env = dict(os.environ, SS_TEST_VAR="x")
        rc, out, err = h.run_scrapeship(["check-config", path], env=env)
        chk.ok(rc == 1, "%s: exit %d, want 1" % (os.path.basename(path), rc))
        # the loader names the file as given on the command line
        chk.ok(want.split(": ", 1)[0].split(":")[0] in err and want.split(": ", 1)[1] in err,
               "%s: message %r not in %r" % (os.path.basename(path), want, err.strip()[:300]))

    work = h.tmpdir("ss-cli-")
    good = os.path.join(work, "good.yml")
    with open(good, "w") as f:
        f.write("""global:
  scrape_interval: 10s
scrape_configs:
  - job_name: app
    basic_auth: {username: u, password: hunter2-secret}
    static_configs: [{targets: ['127.0.0.1:1']}]
remote_write:
  - url: https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write
    sigv4: {region: us-east-1, access_key: AKIAEXAMPLEKEY, secret_key: s3cr3t-value}
""")
    rc, out, err = h.run_scrapeship(["check-config", good])
    chk.ok(rc == 0, "good config rejected: %s" % err)
    chk.ok('job_name: "app"' in out and "scrape_timeout: 10s" in out, "effective config not printed:\n" + out[:500])
    chk.ok("hunter2-secret" not in out + err and "s3cr3t-value" not in out + err, "a secret was printed")
    chk.ok("<secret>" in out, "secrets not shown as <secret>")

    root = h.tmpdir("ss-cli-static-")
    with open(os.path.join(root, "metrics.prom"), "w") as f:
        f.write("# TYPE a counter\na_total{x=\"1\"} 3\n")
    port = h.start_nginx(root)
    rc, out, err = h.run_scrapeship(["scrape", "http://127.0.0.1:%d/metrics.prom" % port])
    chk.ok(rc == 0, "scrape exit %d: %s" % (rc, err))
    chk.ok('a_total{instance="127.0.0.1:%d",job="scrape",x="1"} 3 ' % port in out, "text output:\n" + out)
    chk.ok('up{instance="127.0.0.1:%d",job="scrape"} 1 ' % port in out, "no up line:\n" + out)
    rc, out, err = h.run_scrapeship(["scrape", "--format", "json", "--job", "j",
                                     "http://127.0.0.1:%d/metrics.prom" % port])
    recs = [json.loads(l) for l in out.splitlines()]
    chk.ok(rc == 0 and any(r["labels"].get("__name__") == "a_total" and r["labels"]["job"] == "j" and
                           r["value"] == "3" for r in recs), "json output: " + out[:500])
    rc, out, err = h.run_scrapeship(["scrape", "http://127.0.0.1:1/metrics"])
    chk.ok(rc == 1, "a down target must exit 1, got %d" % rc)
    chk.ok('up{instance="127.0.0.1:1",job="scrape"} 0' in out, "down target: no up=0 line")
    chk.ok("127.0.0.1:1" in err and "connect" in err, "down target: error does not name the target: " + err)
    rc, out, err = h.run_scrapeship(["scrape"])
    chk.ok(rc == 2, "scrape without targets: exit %d" % rc)

    with open(os.path.join(root, "nonl.prom"), "w") as f:
        f.write("a 1\nb 2")  # no final newline: lenient as Prometheus, an error for prometheus/common
    url = "http://127.0.0.1:%d/nonl.prom" % port
    rc, out, err = h.run_scrapeship(["scrape", url])
    chk.ok(rc == 0 and "b{instance=" in out, "lenient scrape: exit %d %s" % (rc, err))
    rc, out, err = h.run_scrapeship(["scrape", "--strict", url])
    chk.ok(rc == 1 and "no newline" in err and "b{instance=" not in out, "--strict: exit %d %s" % (rc, err))
    strict_cfg = os.path.join(work, "strict.yml")
    with open(strict_cfg, "w") as f:
        f.write("scrape_configs:\n  - job_name: s\n    strict_parsing: true\n    metrics_path: /nonl.prom\n"
                "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % port)
    rc, out, err = h.run_scrapeship(["scrape", "--config", strict_cfg])
    chk.ok(rc == 1 and "no newline" in err, "strict_parsing: true: exit %d %s" % (rc, err))
    rc, out, err = h.run_scrapeship(["check-config", strict_cfg])
    chk.ok(rc == 0 and "strict_parsing: true" in out, "check-config prints strict_parsing: %s" % out[-300:])
    rc, out, err = h.run_scrapeship(["lint", url])
    chk.ok(rc == 1 and "no newline" in out, "lint calls it an error: %d %s" % (rc, out))
    rc, out, err = h.run_scrapeship(["--version"])
    chk.ok(rc == 0 and out.startswith("scrapeship "), "--version: %r" % out)
    rc, out, err = h.run_scrapeship(["frobnicate"])
    chk.ok(rc == 2 and "unknown command" in err, "unknown command: %d %r" % (rc, err))

    # what `make run` prints first: its self-scrape, every per-job series included
    lp = h.free_port()
    rc, out, err = h.run_scrapeship(["run", "--stdout", "--web.listen-address", "127.0.0.1:%d" % lp,
                                     "--run-for", "7s"], timeout=60)
    chk.ok(rc == 0, "run --stdout exit %d: %s" % (rc, err[-500:]))
    chk.ok('scrapeship_scrapes_total{instance="127.0.0.1:%d",job="scrapeship",scrape_job="scrapeship"}' % lp
           in out, "self-scrape: no per-job scrapeship_scrapes_total line:\n" + out[:1500])
    bad = [l for l in out.splitlines() if "exported_" in l]
    chk.ok(not bad, "run --stdout prints exported_ labels: %s" % bad[:3])
    fd_limits(chk, work)
    chk.finish()


def run_limited(args, soft, hard, timeout=60):
    """scrapeship with RLIMIT_NOFILE (soft, hard) set before it starts."""
    def lim():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    p = subprocess.run([h.BIN] + args, capture_output=True, timeout=timeout, preexec_fn=lim)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def fd_limits(chk, work):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        print("fd limits: hard limit %s, nothing to raise; skipped" % hard)
        return
    lp = h.free_port()
    rc, out, err = run_limited(["run", "--stdout", "--web.listen-address", "127.0.0.1:%d" % lp,
                                "--run-for", "7s"], 256, hard)
    got = [l.split()[1] for l in out.splitlines() if l.startswith("process_max_fds{")]
    chk.ok(rc == 0 and got and float(got[0]) == hard,
           "soft limit 256 not raised to the hard limit %d: process_max_fds %s (exit %d)" % (hard, got, rc))
    many = os.path.join(work, "many.yml")
    with open(many, "w") as f:
        f.write("scrape_configs:\n  - job_name: many\n    scrape_timeout: 2s\n    static_configs:\n"
                "      - targets: [%s]\n" % ", ".join("'127.0.0.1:%d'" % (i + 1) for i in range(100)))
    # the senders, the web server and files need descriptors too: 100 targets do not fit in 128
    rc, out, err = run_limited(["scrape", "--config", many], 128, 128)
    chk.ok(rc == 1 and "100 targets keep a connection open each, and the open-file limit is 128" in err,
           "100 targets under a hard limit of 128: no warning (exit %d): %s" % (rc, err[:600]))


if __name__ == "__main__":
    main()
