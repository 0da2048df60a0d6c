"""`scrapeship lint` over the conformance corpora and against the real promtool 2.42.

* OpenMetrics parser suite (SS_CORPORA_DIR/openmetrics, 211 cases): exit 0 for
  exactly the cases that should parse, 1 for every other, each failure with a line.
* prometheus/common text cases (common-expfmt/cases/error_*.txt and the fuzz seeds):
  every invalid input exits 1, and its first error is on the line prometheus/common
  names (legacy validation: 0.0.4 has no quoted UTF-8 names).
* promtool lint table: one exposition per promlint rule (plus a clean one); our
  warnings (metric, message) equal `promtool check metrics`' lines, and exit codes
  agree (0 clean, 3 warnings only, 1 errors).
* Validation goes on past problems: a body with three bad lines reports all three.
* `--json`, and a URL fetched over HTTP (the format from its Content-Type).
"""
import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CORPORA = os.environ.get("SS_CORPORA_DIR", os.path.join(h.REPO, "..", "shared", "corpora"))

# One exposition per promlint rule (client_golang 1.14, in promtool 2.42).
RULES = {
    "clean": "# HELP good_seconds_total Fine.\n# TYPE good_seconds_total counter\ngood_seconds_total 1\n",
    "no_help": "# TYPE x_bytes gauge\nx_bytes 1\n",
    "counter_total": "# HELP c_seconds h\n# TYPE c_seconds counter\nc_seconds 1\n",
    "non_counter_total": "# HELP g_total h\n# TYPE g_total gauge\ng_total 1\n",
    "base_unit": "# HELP d_milliseconds h\n# TYPE d_milliseconds gauge\nd_milliseconds 1\n"
                 "# HELP e_kilograms h\n# TYPE e_kilograms gauge\ne_kilograms 1\n"
                 "# HELP w_milliamperes h\n# TYPE w_milliamperes gauge\nw_milliamperes 1\n"
                 "# HELP v_kelvin h\n# TYPE v_kelvin gauge\nv_kelvin 1\n",
    # promlint's units map also lists non-base units (bits, minutes, inches...), and its
    # prefixes include the binary ones (kibi, "mibi", tebi) but not exa
    "non_base_unit": "# HELP a_bits h\n# TYPE a_bits gauge\na_bits 1\n"
                     "# HELP b_minutes h\n# TYPE b_minutes gauge\nb_minutes 1\n"
                     "# HELP c_kilobits_total h\n# TYPE c_kilobits_total counter\nc_kilobits_total 1\n"
                     "# HELP d_kibibytes h\n# TYPE d_kibibytes gauge\nd_kibibytes 1\n"
                     "# HELP e_exabytes h\n# TYPE e_exabytes gauge\ne_exabytes 1\n"
                     "# HELP f_kelvins h\n# TYPE f_kelvins gauge\nf_kelvins 1\n",
    "bucket_suffix": "# HELP q_bucket h\n# TYPE q_bucket gauge\nq_bucket 1\n",
    "count_suffix": "# HELP q_count h\n# TYPE q_count gauge\nq_count 1\n",
    "sum_suffix": "# HELP q_sum h\n# TYPE q_sum gauge\nq_sum 1\n",
    "le_quantile_labels": "# HELP lq h\n# TYPE lq gauge\nlq{le=\"1\",quantile=\"0.5\"} 1\n",
    "type_in_name": "# HELP my_gauge h\n# TYPE my_gauge gauge\nmy_gauge 1\n"
                    "# HELP n_histogram_x h\n# TYPE n_histogram_x histogram\nn_histogram_x_count 1\n"
                    "# HELP u_untyped h\nu_untyped 1\n",
    "colon": "# HELP x:y h\n# TYPE x:y gauge\nx:y 1\n",
    "camel_metric": "# HELP fooBar h\n# TYPE fooBar gauge\nfooBar 1\n",
    "camel_label": "# HELP lbl h\n# TYPE lbl gauge\nlbl{labelName=\"a\"} 1\n",
    "abbreviation": "# HELP m_kb h\n# TYPE m_kb gauge\nm_kb 1\n# HELP t_ms_x h\n# TYPE t_ms_x gauge\nt_ms_x 1\n",
    "parse_error": "# HELP a h\n# TYPE a gauge\na{ 1\n",
}


def lint(args, stdin=None):
    p = subprocess.run([h.BIN, "lint"] + args, capture_output=True, input=stdin, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def openmetrics_suite(chk):
    root = os.path.join(CORPORA, "openmetrics", "parsers")
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(CORPORA, "openmetrics", "INDEX.tsv"))][1:]
    good = 0
    for row in rows:
        name, should = row[0], row[1] == "true"
        rc, out, err = lint(["--format", "openmetrics", "--lint", "none", "--json",
                             os.path.join(root, name, "metrics")])
        doc = json.loads(out) if out.strip() else {}
        errs = [p for p in doc.get("problems", []) if p["severity"] == "error"]
        if should:
            ok = rc == 0 and not errs
        else:
            ok = rc == 1 and errs and all(p["line"] >= 1 for p in errs)
        chk.ok(ok, "openmetrics %s: shouldParse=%s, exit %d, %s" % (name, should, rc, errs[:2] or err))
        good += bool(ok)
        # with the lint warnings on, a valid case may warn (exit 3) but never fails
        if should and name.endswith("_0"):
            rc2, _, _ = lint(["--format", "openmetrics", os.path.join(root, name, "metrics")])
            chk.ok(rc2 in (0, 3), "openmetrics %s with warnings: exit %d" % (name, rc2))
    print("openmetrics suite: %d/%d" % (good, len(rows)))
    chk.ok(len(rows) == 211 and good == 211, "openmetrics suite: %d/%d" % (good, len(rows)))


def text_cases(chk):
    base = os.path.join(CORPORA, "promtext", "common-expfmt")
    exp = json.load(open(os.path.join(base, "cases", "expected.json")))
    n = 0
    for e in exp["error"]:
        want = e["error_prefix_legacy_validation"]
        m = re.search(r"in line (\d+):", want)
        rc, out, err = lint(["--format", "text", "--lint", "none", "--json", os.path.join(base, "cases", e["file"])])
        doc = json.loads(out) if out.strip() else {}
        errs = [p for p in doc.get("problems", []) if p["severity"] == "error"]
        line = errs[0]["line"] if errs else None
        chk.ok(rc == 1 and m and line == int(m.group(1)),
               "text %s: exit %d, first error line %s, prometheus/common: %r" % (e["file"], rc, line, want))
        n += 1
    for path in sorted(glob.glob(os.path.join(base, "fuzz-corpus", "from_test_parse_error_*"))):
        rc, out, err = lint(["--format", "text", "--lint", "none", path])
        chk.ok(rc == 1 and re.search(r":\d+:\d+: error: ", out), "text %s: exit %d %r" % (path, rc, out[:200]))
        n += 1
    for v in exp["valid"]:
        if v["file"] in ("parse_%02d.txt" % i for i in (0, 1, 2, 3, 4, 12, 13, 14)):
            rc, out, err = lint(["--format", "text", "--lint", "none", os.path.join(base, "cases", v["file"])])
            chk.ok(rc == 0, "text %s (valid): exit %d %s" % (v["file"], rc, out[:300]))
    print("text cases: %d invalid inputs checked" % n)


def promtool_table(chk, work):
    have_promtool = os.path.exists("/usr/bin/promtool")
    for name, body in RULES.items():
        path = os.path.join(work, name + ".prom")
        with open(path, "w") as f:
            f.write(body)
        rc, out, err = lint(["--format", "text", path])
        ours = set()
        for line in out.splitlines():
            m = re.match(r"^.*?:(\d+):(\d+): warning: (\S+) (.*)$", line)
            if m:
                ours.add((m.group(3), m.group(4)))
        if name == "clean":
            chk.ok(rc == 0 and not out, "clean: exit %d %r" % (rc, out))
        elif name == "parse_error":
            chk.ok(rc == 1 and ":3:4: error: " in out, "parse_error: exit %d %r" % (rc, out))
        else:
            chk.ok(rc == 3 and ours, "%s: exit %d, warnings %s" % (name, rc, ours))
        if not have_promtool:
            continue
        p = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=body.encode(), capture_output=True,
                           timeout=60)
        theirs = set()
        for line in (p.stdout + p.stderr).decode().splitlines():
            if line and not line.startswith("error while linting"):
                mname, _, msg = line.partition(" ")
                theirs.add((mname, msg))
        chk.ok(p.returncode == rc, "%s: exit %d, promtool %d" % (name, rc, p.returncode))
        if name != "parse_error":
            chk.ok(ours == theirs, "%s: warnings differ: ours %s, promtool %s" % (name, sorted(ours), sorted(theirs)))
    # promtool's own test exposition is clean but for what promtool says too
    path = os.path.join(CORPORA, "promtext", "prometheus-promtool", "metrics-test.prom")
    rc, out, err = lint(["--format", "text", path])
    if have_promtool:
        p = subprocess.run(["/usr/bin/promtool", "check", "metrics"], stdin=open(path, "rb"), capture_output=True)
        chk.ok(rc == p.returncode, "metrics-test.prom: exit %d, promtool %d (%r)" % (rc, p.returncode, out[:300]))


# Odd bodies where only the exit status is compared with promtool's (the same parse
# error or warnings, or none): blanks, line endings, BOM, binary junk.
H = b"# HELP foo h\n# TYPE foo gauge\n"
EXIT_DIFF = {
    "blank_after_value": H + b"foo 1 \n",
    "tab_after_value": H + b"foo{a=\"1\"} 1\t\n",
    "blank_after_timestamp": H + b"foo 1 123 \n",
    "two_blanks_before_timestamp": H + b"foo 1  123\n",
    "blanks_around_labels": H + b"foo { a = \"1\" } 1\n",
    "crlf": H.replace(b"\n", b"\r\n") + b"foo 1\r\n",
    "cr_only": H.replace(b"\n", b"\r") + b"foo 1\r",
    "bom": b"\xef\xbb\xbf" + H + b"foo 1\n",
    "binary": b"\x00\x01\x02\xff\xfe junk\n",
    "nul_after_value": H + b"foo 1\x00\n",
    "bad_utf8_label": H + b"foo{a=\"\xff\"} 1\n",
    "no_final_newline": H + b"foo 1",
    "empty": b"",
    "signed_timestamp": H + b"foo 1 -5\n",
    "float_timestamp": H + b"foo 1 1.5\n",
}


def promtool_exit_parity(chk, work):
    if not os.path.exists("/usr/bin/promtool"):
        return
    for name, body in EXIT_DIFF.items():
        rc, out, err = lint(["--format", "text", "-"], stdin=body)
        p = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
        chk.ok(rc == p.returncode, "%s: exit %d, promtool %d (%r / %r)" % (name, rc, p.returncode, out[:200],
                                                                              p.stderr[:200]))


def goes_on(chk):
    body = b"a{ 1\nb 2\nc 3 4 5\nd{x=\"1\",x=\"2\"} 4\ne 5\n"
    rc, out, err = lint(["--format", "text", "--lint", "none", "-"], stdin=body)
    lines = [l for l in out.splitlines() if ": error: " in l]
    chk.ok(rc == 1 and [l.split(":")[1] for l in lines] == ["1", "3", "4"],
           "every bad line reported: %r" % out)
    chk.ok(lines and lines[0].startswith("<stdin>:1:4: error: "), "column of the first error: %r" % out)
    # a line over the 1 MiB line limit is one error; the lines after it are still checked
    long = b"# HELP a h\n# TYPE a gauge\na{x=\"" + b"y" * (1 << 20) + b"\"} 1\nb zz\nc 1 2 3\n"
    rc, out, err = lint(["--format", "text", "--lint", "none", "-"], stdin=long)
    got = [int(l.split(":")[1]) for l in out.splitlines() if ": error: " in l]
    chk.ok(rc == 1 and got == [3, 4, 5] and "line longer than" in out, "goes on after a long line: %r" % out[:400])
    om = b"# TYPE a gauge\na 1\n\nb x\n# EOF\nafter 1\n"
    rc, out, err = lint(["--format", "openmetrics", "--lint", "none", "-"], stdin=om)
    got = [int(l.split(":")[1]) for l in out.splitlines() if ": error: " in l]
    chk.ok(rc == 1 and got == [3, 4, 6], "openmetrics errors on lines 3, 4, 6: %r" % out)


def over_http(chk, work):
    root = os.path.join(work, "www")
    os.makedirs(root)
    with open(os.path.join(root, "m.om"), "w") as f:
        f.write("# TYPE a gauge\n# HELP a h\na 1\n")  # no # EOF
    with open(os.path.join(root, "m.prom"), "w") as f:
        f.write("# TYPE a gauge\n# HELP a h\na 1\n")
    port = h.start_nginx(root)
    rc, out, err = lint(["http://127.0.0.1:%d/m.om" % port])
    chk.ok(rc == 1 and "does not end with # EOF" in out, "OpenMetrics by Content-Type: %d %r %r" % (rc, out, err))
    rc, out, err = lint(["--json", "http://127.0.0.1:%d/m.prom" % port])
    chk.ok(rc == 0 and json.loads(out)["format"] == "text", "text by Content-Type: %d %r" % (rc, out))
    rc, out, err = lint(["http://127.0.0.1:%d/missing" % port])
    chk.ok(rc == 1 and "404" in err, "a 404 is an error: %d %r" % (rc, err))
    cfg = os.path.join(work, "c.yml")
    with open(cfg, "w") as f:
        f.write("scrape_configs:\n  - job_name: a\n    scrape_timeout: 2s\n"
                "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % port)
    rc, out, err = lint(["--config", cfg, "--job", "a", "http://127.0.0.1:%d/m.prom" % port])
    chk.ok(rc == 0, "--config/--job: %d %r" % (rc, err))
    rc, out, err = lint(["--config", cfg, "--job", "nope", "http://127.0.0.1:%d/m.prom" % port])
    chk.ok(rc == 2, "unknown --job: exit %d" % rc)


def main():
    chk = h.Check("lint")
    work = h.tmpdir("ss-lint-")
    openmetrics_suite(chk)
    text_cases(chk)
    promtool_table(chk, work)
    promtool_exit_parity(chk, work)
    goes_on(chk)
    over_http(chk, work)
    chk.finish()


if __name__ == "__main__":
    main()
