#!/usr/bin/python3
"""SigV4 end to end: scrapeship ships to an AMP-like endpoint with every credential source.

Pieces, all on 127.0.0.1:
  Prometheus 2.42   --web.enable-remote-write-receiver: stores what arrives
  sigv4_front.py    plays AMP in front of it: recomputes every request's SigV4 signature
                    (botocore, service aps, region us-east-1) with the secret of the
                    request's access key id, refuses bad/unknown/expired ones with 403
                    and forwards the rest (AMP paths /workspaces/<ws>/api/v1/...)
  fake_aws.py       STS, IMDSv2 and the container endpoint; its credentials live
                    LIFETIME_S (24 s) so each refreshing instance renews them about
                    every 12 s and crosses at least one expiry during the run
Seven `scrapeship run` instances run at once for RUN_S (60 s), each scraping its own
self-metrics every second with external_labels {cred_source: X} (not "provider":
scrapeship_aws_credentials_provider_info has its own provider label, which an external
label does not override) and its own --tee:
  static        sigv4.access_key/secret_key in the config
  static_role   the same keys, plus role_arn + external_id: STS AssumeRole on top
  env           AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (sigv4: {}, AWS_REGION)
  session       env keys with AWS_SESSION_TOKEN issued by the fake STS (AWS_DEFAULT_REGION)
  web_identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, STS via AWS_ENDPOINT_URL_STS
  container     AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
  imds          IMDSv2 via AWS_EC2_METADATA_SERVICE_ENDPOINT
Checks: the front rejected nothing and no request used expired credentials; every
refreshing source used several generations, each before its expiry, and kept shipping
across the first one's expiry; the fake's counters show the refreshes; every teed
sample is in Prometheus with its value; `scrapeship query` (GET and --post, plain and
workspace URL, env keys with and without a session token) signed through the front
returns what a direct unsigned query to Prometheus returns; the front is not vacuous
(wrong secret, unknown key, missing or expired token, wrong region, unsigned: all 403);
and no secret appears in any log, output, tee file, /metrics body or check-config
output. Takes about 90 s.
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_aws.py")
FRONT = os.path.join(HERE, "sigv4_front.py")
PY = "/usr/bin/python3"

RUN_S = float(os.environ.get("SS_SIGV4E2E_SECONDS", "60"))
LIFETIME_S = 24
REGION = "us-east-1"
WS = "ws-e2e0a1b2c3-4d5e-6f70-8192-a3b4c5d6e7f8"
ROLE = "arn:aws:iam::123456789012:role/"
EXTERNAL_ID = "ext-amp-writer-4711"

STATIC_KEY, STATIC_SECRET = "AKIASTATICE2E0000001", "staticSecret/e2e+0123456789abcdefghijABCDEFGHIJ"
ENV_KEY, ENV_SECRET = "AKIAENVE2E0000000002", "envSecret/e2e+9876543210zyxwvutsrqponmlkjihgf"
WRONG_SECRET = "wrongSecret/e2e+000000000000000000000000000000"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImUyZSJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZTJlIn0.c2lnZTJl+/="
CONTAINER_TOKEN = "pod-identity-e2e-token-8d1f0c6b5a4e3d2c1b0a"

PROVIDERS = ["static", "static_role", "env", "session", "web_identity", "container", "imds"]
REFRESHING = {"static_role": "sts-assume-role", "web_identity": "sts-web-identity", "container": "container",
              "imds": "imds"}

check = h.Check("test_sigv4_e2e")
texts = []  # (what, text) of every log and output, for the secret search


def start_helper(script, args, workdir, name):
    """Start fake_aws.py or sigv4_front.py; returns its base URL once it listens."""
    p = subprocess.Popen([PY, script] + args, stdout=subprocess.PIPE,
                         stderr=open(os.path.join(workdir, name + ".log"), "wb"), start_new_session=True)
    h._procs.append(p)
    line = p.stdout.readline()  # {"port": N}, printed once listening
    if not line:
        raise RuntimeError("%s did not start: %s" % (name, open(os.path.join(workdir, name + ".log")).read()))
    return "http://127.0.0.1:%d" % json.loads(line)["port"]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post_json(url, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def sts_web_identity(fake, session):
    """Credentials straight from the fake STS (for the env-with-session-token cases)."""
    form = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                   "RoleArn": ROLE + "e2e-session", "RoleSessionName": session,
                                   "WebIdentityToken": WEB_TOKEN}).encode()
    req = urllib.request.Request(fake + "/", data=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read().decode()
    pick = lambda tag: body.split("<%s>" % tag)[1].split("</%s>" % tag)[0]  # noqa: E731
    unesc = lambda s: s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")  # noqa: E731
    return pick("AccessKeyId"), unesc(pick("SecretAccessKey")), unesc(pick("SessionToken"))


def base_env(home):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "AWS_EC2_METADATA_DISABLED": "true"}  # never the real 169.254.169.254
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def write_config(path, provider, port, sigv4):
    with open(path, "w") as f:
        f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {cred_source: %s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s/workspaces/%s/api/v1/remote_write
    name: amp
    remote_timeout: 10s
    queue_config: {batch_send_deadline: 500ms, max_samples_per_send: 500, max_backoff: 1s}
    metadata_config: {send_interval: 10s}
    sigv4: %s
""" % (provider, port, FRONT_URL, WS, sigv4))


def query(args, env):
    p = subprocess.run([h.BIN, "query"] + args, capture_output=True, timeout=60, env=env)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    texts.append(("query %s stdout" % args[:4], out))
    texts.append(("query %s stderr" % args[:4], err))
    return p.returncode, out, err


def parse_text_result(out):
    """`name{k="v",...} value @ts` lines -> {(labels frozenset): (value, ts)}."""
    res = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        head, _, rest = line.rpartition("} ")
        name, _, body = head.partition("{")
        labels = {"__name__": name} if name else {}
        for part in filter(None, body.split('",')):
            k, _, v = part.partition('="')
            labels[k] = v.rstrip('"')
        value, _, ts = rest.partition(" @")
        res[frozenset(labels.items())] = (value, round(float(ts), 3))
    return res


def direct_vector(q, at):
    data = h.prom_query(PROM, q, at)
    out = {}
    for r in data["result"]:
        out[frozenset(r["metric"].items())] = (r["value"][1], round(float(r["value"][0]), 3))
    return data, out


def front_stats():
    return get_json(FRONT_URL + "/__stats")


def rejected_total(st):
    return sum(st["rejected"].values())


def main():
    global FRONT_URL, PROM
    t0 = time.time()
    work = h.tmpdir("ss-sigv4e2e-")
    home = os.path.join(work, "home")  # no ~/.aws: nothing from shared files
    os.makedirs(home)
    web_token_file = os.path.join(work, "web-identity-token")
    with open(web_token_file, "w") as f:
        f.write(WEB_TOKEN + "\n")
    ctok_file = os.path.join(work, "container-token")
    with open(ctok_file, "w") as f:
        f.write(CONTAINER_TOKEN)

    fake_cfg = os.path.join(work, "fake.json")
    with open(fake_cfg, "w") as f:
        json.dump({"lifetime": 900, "web_identity_token": WEB_TOKEN, "container_token": CONTAINER_TOKEN,
                   "known_keys": {STATIC_KEY: STATIC_SECRET, ENV_KEY: ENV_SECRET}, "external_id": EXTERNAL_ID,
                   "role_name": "scrapeship-e2e-node"}, f)
    fake = start_helper(FAKE, ["--config", fake_cfg], work, "fake_aws")
    # env + AWS_SESSION_TOKEN: a session that outlives the run; then short lifetimes
    sess_key, sess_secret, sess_token = sts_web_identity(fake, "e2e-env-session")
    post_json(fake + "/__config", {"lifetime": LIFETIME_S})

    PROM, _, pdir = h.start_prometheus("global:\n  scrape_interval: 1h\n",
                                       extra_args=["--web.enable-remote-write-receiver"])
    front_cfg = os.path.join(work, "front.json")
    with open(front_cfg, "w") as f:
        json.dump({"known_keys": {STATIC_KEY: STATIC_SECRET, ENV_KEY: ENV_SECRET},
                   "key_labels": {STATIC_KEY: "static", ENV_KEY: "env"}, "fake_aws": fake,
                   "region": REGION, "service": "aps"}, f)
    FRONT_URL = start_helper(FRONT, ["--upstream", PROM, "--config", front_cfg], work, "front")

    # -- seven instances, one per credential source -------------------------
    sigv4_region = "{region: %s}" % REGION
    plans = {
        "static": ("{region: %s, access_key: %s, secret_key: '%s'}" % (REGION, STATIC_KEY, STATIC_SECRET), {}),
        "static_role": ("{region: %s, access_key: %s, secret_key: '%s', role_arn: '%samp-writer', "
                        "external_id: %s}" % (REGION, STATIC_KEY, STATIC_SECRET, ROLE, EXTERNAL_ID),
                        {"AWS_ENDPOINT_URL_STS": fake}),
        "env": ("{}", {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET, "AWS_REGION": REGION}),
        "session": ("{}", {"AWS_ACCESS_KEY_ID": sess_key, "AWS_SECRET_ACCESS_KEY": sess_secret,
                           "AWS_SESSION_TOKEN": sess_token, "AWS_DEFAULT_REGION": REGION}),
        "web_identity": (sigv4_region, {"AWS_WEB_IDENTITY_TOKEN_FILE": web_token_file,
                                        "AWS_ROLE_ARN": ROLE + "irsa-e2e", "AWS_ROLE_SESSION_NAME": "e2e-irsa",
                                        "AWS_ENDPOINT_URL_STS": fake}),
        "container": ("{}", {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake + "/container/v1/credentials",
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": ctok_file, "AWS_REGION": REGION}),
        "imds": (sigv4_region, {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake}),
    }
    inst = {}
    for name in PROVIDERS:
        sigv4, extra = plans[name]
        d = os.path.join(work, name)
        os.makedirs(d)
        port = h.free_port()
        cfg = os.path.join(d, "scrapeship.yml")
        write_config(cfg, name, port, sigv4)
        env = base_env(home)
        env.update(extra)
        env = {k: v for k, v in env.items() if v is not None}
        cc = subprocess.run([h.BIN, "check-config", cfg], capture_output=True, timeout=30, env=env)
        cc_out = cc.stdout.decode("utf-8", "replace") + cc.stderr.decode("utf-8", "replace")
        texts.append(("check-config " + name, cc_out))
        check.ok(cc.returncode == 0, "%s: check-config failed: %s" % (name, cc_out[-500:]))
        if name.startswith("static"):
            check.ok("<secret>" in cc_out, "%s: check-config does not redact the keys" % name)
        inst[name] = {"dir": d, "port": port, "env": env, "tee": os.path.join(d, "tee.json"),
                      "stdout": os.path.join(d, "stdout.log"), "stderr": os.path.join(d, "stderr.log"),
                      "metrics": []}
    t_run = time.time()
    for name, it in inst.items():
        it["proc"] = h.start([h.BIN, "run", "--config", os.path.join(it["dir"], "scrapeship.yml"),
                              "--web.listen-address", "127.0.0.1:%d" % it["port"], "--tee", it["tee"],
                              "--shutdown-timeout", "30s", "--log.level", "debug"],
                             it["stderr"], env=it["env"], stdout=open(it["stdout"], "wb"))
    # /metrics bodies at a third, two thirds and the end of the run
    for frac in (1 / 3, 2 / 3, 1.0):
        time.sleep(max(0.0, t_run + RUN_S * frac - 1 - time.time()))
        for name, it in inst.items():
            try:
                _, body = h.http_get("http://127.0.0.1:%d/metrics" % it["port"], timeout=5)
                it["metrics"].append(body.decode("utf-8", "replace"))
            except Exception as e:
                check.ok(False, "%s: /metrics not served: %s" % (name, e))
    t_stop = time.time()
    for name, it in inst.items():
        it["proc"].send_signal(signal.SIGTERM)
    for name, it in inst.items():
        rc = h.stop(it["proc"], timeout=60)
        log = open(it["stderr"], encoding="utf-8", errors="replace").read()
        check.ok(rc == 0, "%s: exit status %s:\n%s" % (name, rc, log[-1500:]))
        check.ok("all queued samples delivered" in log, "%s: shutdown did not deliver everything:\n%s" %
                 (name, log[-1500:]))
        texts.append((name + " stderr", log))
        texts.append((name + " stdout", open(it["stdout"], encoding="utf-8", errors="replace").read()))
        texts.append((name + " tee", open(it["tee"], encoding="utf-8", errors="replace").read()))
        for i, m in enumerate(it["metrics"]):
            texts.append(("%s /metrics #%d" % (name, i), m))
    print("ran %d instances for %.1f s" % (len(inst), t_stop - t_run), flush=True)

    # -- the front: nothing refused, never an expired credential ----------------
    st = front_stats()
    run_stats = st
    check.ok(st["rejected"] == {}, "the front rejected requests: %s; last: %s" %
             (st["rejected"], json.dumps(st["rejections"][-5:], indent=1)[:3000]))
    check.ok(st["expired_uses"] == 0, "%d requests with expired credentials" % st["expired_uses"])
    check.ok(set(st["upstream_status"]) <= {"200", "204"}, "Prometheus answered %s" % st["upstream_status"])
    check.ok(list(st["paths"]) == ["/workspaces/%s/api/v1/remote_write" % WS],
             "remote write went to other paths: %s" % st["paths"])
    issued = {c["id"]: c for c in get_json(fake + "/__issued")["credentials"]}
    keys = st["keys"]
    by_provider = {p: [] for p in PROVIDERS}
    for kid, k in keys.items():
        if kid == STATIC_KEY:
            by_provider["static"].append(kid)
        elif kid == ENV_KEY:
            by_provider["env"].append(kid)
        elif kid == sess_key:
            by_provider["session"].append(kid)
        else:
            for p, by in REFRESHING.items():
                if issued.get(kid, {}).get("by") == by:
                    by_provider[p].append(kid)
    for p in PROVIDERS:
        used = sorted(by_provider[p], key=lambda kid: keys[kid]["first"])
        n = sum(keys[kid]["accepted"] for kid in used)
        # ~1 batch a second plus metadata; a third of that is plenty to show steady shipping
        check.ok(n >= RUN_S / 3, "%s: only %d signed requests accepted" % (p, n))
        if p not in REFRESHING:
            check.ok(len(used) == 1, "%s: %d access keys used, want 1" % (p, len(used)))
            continue
        check.ok(len(used) >= 3, "%s: %d credential generations used in %.0f s of %d s credentials" %
                 (p, len(used), RUN_S, LIFETIME_S))
        last_use = max(keys[kid]["last"] for kid in used) if used else 0
        first_exp = keys[used[0]]["expiration"] if used else None
        check.ok(first_exp is not None and last_use > first_exp + 5,
                 "%s: shipping did not continue across the first credentials' expiry" % p)
        for kid in used:
            k = keys[kid]
            check.ok(k["expiration"] is not None and k["last"] < k["expiration"] and k["min_left"] > 1,
                     "%s: a generation was used %.1f s before its expiry" % (p, k["min_left"] or -1))
        print("%-12s %3d requests, %d generations, least lifetime left at use %.1f s" %
              (p, n, len(used), min(keys[kid]["min_left"] for kid in used)) if used else p, flush=True)

    # -- the fake's counters: refreshes happened, IMDSv1 never ---------------------
    fs = get_json(fake + "/__stats")
    # one resolution at start, then one per half lifetime: 5 in 60 s; allow one less
    n_min = int(RUN_S // (LIFETIME_S / 2)) - 1
    check.ok(fs.get("sts_web_identity", 0) - 1 >= n_min, "web identity refreshes: %s" % fs)
    check.ok(fs.get("container_credentials", 0) >= n_min, "container refreshes: %s" % fs)
    check.ok(fs.get("imds_credentials", 0) >= n_min and fs.get("imds_token_put", 0) >= 1, "imds refreshes: %s" % fs)
    check.ok(fs.get("sts_assume_role", 0) >= n_min and not fs.get("sts_assume_role_sig_bad") and
             not fs.get("sts_assume_role_denied"), "assume role refreshes: %s" % fs)
    check.ok(fs["last"].get("AssumeRole_external_id") == EXTERNAL_ID and
             fs["last"].get("AssumeRole_signing_key") == STATIC_KEY, "assume role: %s" % fs["last"])
    check.ok(not fs.get("imds_get_without_token") and not fs.get("container_denied") and
             not fs.get("sts_web_identity_denied"), "fake refused something: %s" % fs)
    # and the instances say the same in their self-metrics
    for p in REFRESHING:
        last = inst[p]["metrics"][-1] if inst[p]["metrics"] else ""
        ok_line = [l for l in last.splitlines()
                   if l.startswith('scrapeship_aws_credentials_refreshes_total{remote="amp",result="success"}')]
        check.ok(ok_line and float(ok_line[0].split()[-1]) >= 3, "%s: refreshes metric: %s" % (p, ok_line))

    # -- every teed sample is in Prometheus -------------------------------------
    at = time.time()
    total = 0
    for p, it in inst.items():
        teed = {}
        for line in open(it["tee"]):
            rec = json.loads(line)
            if not rec["stale"]:
                teed.setdefault(frozenset(rec["labels"].items()), {})[rec["timestamp"]] = rec["value"]
        data = h.prom_query(PROM, '{cred_source="%s"}[10m]' % p, at)
        got = {frozenset(r["metric"].items()): {int(round(float(t) * 1000)): v for t, v in r["values"]}
               for r in data["result"]}
        missing = wrong = extra = 0
        examples = []
        for key, samples in teed.items():
            have = got.get(key, {})
            for ts, v in samples.items():
                if ts not in have:
                    missing += 1
                    if len(examples) < 3:
                        examples.append("missing %s @%d" % (h.fmt_labels(key), ts))
                elif not h.same_value(v, have[ts]):
                    wrong += 1
                    if len(examples) < 3:
                        examples.append("%s @%d sent %s stored %s" % (h.fmt_labels(key), ts, v, have[ts]))
            extra += len(set(have) - set(samples))
        extra += sum(len(v) for k, v in got.items() if k not in teed)
        n = sum(len(v) for v in teed.values())
        total += n
        check.ok(n > RUN_S * 20, "%s: only %d samples teed" % (p, n))
        check.ok(missing == 0 and wrong == 0, "%s: %d missing, %d wrong in Prometheus: %s" %
                 (p, missing, wrong, examples))
        check.ok(extra == 0, "%s: %d samples in Prometheus that were not teed" % (p, extra))
    print("%d teed samples compared with Prometheus" % total, flush=True)

    # -- scrapeship query, signed through the front --------------------------------
    env_q = base_env(home)
    env_q.update({"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET})
    # whole seconds: `query --time` sends RFC 3339 without a fraction
    at_q = "%d" % int(t_stop - 5)
    before = front_stats()["accepted"]
    nq = 0
    for q in ['count by (cred_source) ({cred_source!=""})', 'up{job="self"}',
              'scrapeship_scrapes_total{cred_source=~"env|imds"}', 'sum(scrape_samples_scraped)']:
        data, want = direct_vector(q, float(at_q))
        for url in (FRONT_URL + "/", FRONT_URL + "/workspaces/%s/" % WS):
            rc, out, err = query(["--url", url, "--region", REGION, "--time", at_q, q], env_q)
            nq += 1
            if data["resultType"] == "scalar":
                continue
            got = parse_text_result(out)
            check.ok(rc == 0 and got == want and len(want) > 0,
                     "query %r via %s: rc %d, %d vs %d results; %s" % (q, url, rc, len(got), len(want), err[-300:]))
        rc, out, err = query(["--url", FRONT_URL + "/", "--region", REGION, "--time", at_q, "--post",
                              "--format", "json", q], env_q)
        nq += 1
        got = json.loads(out)["data"] if rc == 0 and out.strip() else None
        check.ok(got == data, "query --post %r: rc %d; %s" % (q, rc, err[-300:]))
    # a session token from the environment, and --sigv4 with the region from AWS_REGION
    env_s = base_env(home)
    env_s.update({"AWS_ACCESS_KEY_ID": sess_key, "AWS_SECRET_ACCESS_KEY": sess_secret,
                  "AWS_SESSION_TOKEN": sess_token, "AWS_REGION": REGION})
    data, want = direct_vector('up{cred_source="session"}', float(at_q))
    rc, out, err = query(["--url", FRONT_URL + "/", "--sigv4", "--time", at_q, 'up{cred_source="session"}'], env_s)
    nq += 1
    check.ok(rc == 0 and parse_text_result(out) == want and len(want) == 1,
             "query with a session token: rc %d %s %s" % (rc, out, err[-300:]))
    st = front_stats()
    check.ok(st["accepted"] - before == nq and rejected_total(st) == 0,
             "queries: %d accepted of %d, rejected %s" % (st["accepted"] - before, nq, st["rejected"]))

    # a botocore-signed query_range through the front agrees with Prometheus too
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    params = {"query": 'up{cred_source="imds"}', "start": "%.3f" % (t_run + 5), "end": "%.3f" % (t_stop - 5),
              "step": "5s"}
    qs = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    url = FRONT_URL + "/workspaces/%s/api/v1/query_range?%s" % (WS, qs)
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(ENV_KEY, ENV_SECRET), "aps", REGION).add_auth(req)
    _, body = h.http_get(url, headers=dict(req.headers.items()), timeout=30)
    _, direct = h.http_get(PROM + "/api/v1/query_range?" + qs, timeout=30)
    check.ok(json.loads(body) == json.loads(direct) and json.loads(body)["data"]["result"],
             "botocore-signed query_range through the front differs from Prometheus")

    # -- the front refuses what it must (it is not a rubber stamp) ------------------
    post_json(fake + "/__config", {"lifetime": 2})
    exp_key, exp_secret, exp_token = sts_web_identity(fake, "e2e-expiring")
    post_json(fake + "/__config", {"lifetime": LIFETIME_S})
    time.sleep(3)
    bad = [
        ("wrong secret", {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": WRONG_SECRET}, [],
         "InvalidSignatureException"),
        ("unknown key", {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNE2E000009", "AWS_SECRET_ACCESS_KEY": ENV_SECRET}, [],
         "UnrecognizedClientException"),
        ("missing token", {"AWS_ACCESS_KEY_ID": sess_key, "AWS_SECRET_ACCESS_KEY": sess_secret}, [],
         "UnrecognizedClientException"),
        ("expired token", {"AWS_ACCESS_KEY_ID": exp_key, "AWS_SECRET_ACCESS_KEY": exp_secret,
                           "AWS_SESSION_TOKEN": exp_token}, [], "ExpiredTokenException"),
        ("wrong region", {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET},
         ["--region", "us-west-2"], "IncompleteSignatureException"),
    ]
    for what, extra, args, code in bad:
        env_b = base_env(home)
        env_b.update(extra)
        before = front_stats()["rejected"].get(code, 0)
        rc, out, err = query(["--url", FRONT_URL + "/"] + (args or ["--region", REGION]) + ["up"], env_b)
        after = front_stats()["rejected"].get(code, 0)
        check.ok(rc == 1 and "HTTP 403" in err and after == before + 1,
                 "%s: rc %d, %s rejections %d -> %d: %s" % (what, rc, code, before, after, err[-300:]))
        if code == "ExpiredTokenException":
            check.ok("expired" in err, "the expired-token 403 body was not shown: %s" % err[-300:])
    try:
        h.http_get(FRONT_URL + "/api/v1/query?query=up", timeout=10)
        check.ok(False, "an unsigned query was answered")
    except urllib.error.HTTPError as e:
        check.ok(e.code == 403 and "Missing Authentication Token" in e.read().decode(), "unsigned: %s" % e)

    # -- no secret anywhere -------------------------------------------------------
    doc = get_json(fake + "/__issued")
    secrets = [("static secret", STATIC_SECRET), ("env secret", ENV_SECRET), ("wrong secret", WRONG_SECRET),
               ("web identity token", WEB_TOKEN), ("container token", CONTAINER_TOKEN),
               ("session secret", sess_secret), ("session token", sess_token)]
    for c in doc["credentials"]:
        secrets += [("%s secret" % c["by"], c["secret"]), ("%s session token" % c["by"], c["token"])]
    secrets += [("imds token", t) for t in doc["imds_tokens"]]
    nbytes = sum(len(t) for _, t in texts)
    leaks = ["%s in %s" % (what, where) for what, sec in secrets for where, t in texts if sec in t]
    check.ok(not leaks, "%d secrets leaked: %s" % (len(leaks), leaks[:10]))
    # access key ids: masked in logs ("ASIA****"), never in full
    logs = [(w, t) for w, t in texts if w.endswith("stderr")]
    key_ids = [c["id"] for c in doc["credentials"]] + [STATIC_KEY, ENV_KEY]
    unmasked = ["%s in %s" % (k, w) for k in key_ids for w, t in logs if k in t]
    check.ok(not unmasked, "unmasked access key ids in logs: %s" % unmasked[:5])
    check.ok(all("key AKIA****" in t or "key ASIA****" in t for w, t in logs if w.endswith(" stderr") and
                 not w.startswith("query")), "the logs do not name the (masked) key in use")
    print("searched %d bytes in %d logs/outputs for %d secrets; front: %d accepted during the run, %d total, "
          "rejections only from the negative cases: %s; %.1f s" %
          (nbytes, len(texts), len(secrets), run_stats["accepted"], front_stats()["accepted"],
           front_stats()["rejected"], time.time() - t0), flush=True)
    check.finish()


if __name__ == "__main__":
    main()
