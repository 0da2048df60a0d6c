#!/usr/bin/python3
"""The AWS credential chain end to end: tests/tools/awscred_tool against fake_aws.py.

The tool runs the real chain (environment, files, libcurl) with a clean environment
per case; the fake plays STS, IMDSv2 and the container endpoint on 127.0.0.1 and
counts what it was asked. Cases:
  environment        keys in AWS_* win over everything configured after them
  web identity       token file + AWS_ROLE_ARN -> AssumeRoleWithWebIdentity; a wrong
                     token fails with STS's code, and the fake's echo of it is redacted
  container          full URI + token file (EKS Pod Identity style); a wrong token
                     fails; a non-allowed host is refused without a request
  IMDSv2             token PUT then GETs with the token; when the PUT is refused the
                     tool fails and no token-less (IMDSv1) GET ever reaches the fake
  shared profile     role_arn + source_profile: AssumeRole, SigV4 checked by botocore;
                     a second hop signed with the first hop's session
  config role        --role-arn/--external-id on top of environment keys
  watch              20 s credentials, 25 s of polling: the background refresher
                     replaces them before each expiry with no failed get; a forced
                     refresh is shared by a second caller
Finally every byte the tool wrote (stdout and logs at debug level) is searched for
every secret in play: none may appear, and access key ids only masked in logs.
Runs in about 30 s; only 127.0.0.1 is contacted.
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOOL = os.path.join(h.TOOLS, "awscred_tool")
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_aws.py")

WEB_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln+/="
CONTAINER_TOKEN = "pod-identity-token-3f9c2a7b1e5d4c8a9b0f"
ENV_KEY, ENV_SECRET, ENV_TOKEN = "AKIAENVKEY000000TEST", "envSecret/Key+0123456789abcdefghijABCDEFGHIJ", \
    "envSessionToken/abc+def=="
BASE_KEY, BASE_SECRET = "AKIABASEPROFILE00001", "baseProfileSecret/+9876543210zyxwvutsrqponml"
ROLE = "arn:aws:iam::123456789012:role/"

check = h.Check("test_awscred")
outputs = []  # every stdout/stderr the tool produced


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def start_fake(workdir):
    cfg = os.path.join(workdir, "fake.json")
    with open(cfg, "w") as f:
        json.dump({"lifetime": 900, "web_identity_token": WEB_TOKEN, "container_token": CONTAINER_TOKEN,
                   "known_keys": {ENV_KEY: ENV_SECRET, BASE_KEY: BASE_SECRET},
                   "role_name": "scrapeship-node"}, f)
    p = subprocess.Popen(["/usr/bin/python3", FAKE, "--config", cfg], stdout=subprocess.PIPE,
                         stderr=open(os.path.join(workdir, "fake.log"), "wb"), start_new_session=True)
    h._procs.append(p)
    line = p.stdout.readline()  # {"port": N}, printed once listening
    if not line:
        raise RuntimeError("fake_aws.py did not start: " + open(os.path.join(workdir, "fake.log")).read())
    return "http://127.0.0.1:%d" % json.loads(line)["port"]


def fake_get(base, path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return json.loads(r.read())


def fake_config(base, **kw):
    req = urllib.request.Request(base + "/__config", data=json.dumps(kw).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def stats(base):
    return fake_get(base, "/__stats")


def run_tool(env_extra, args=(), timeout=30):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": HOME,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           # never let a case wander to the real 169.254.169.254
           "AWS_EC2_METADATA_DISABLED": "true"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(env_extra)
    env = {k: v for k, v in env.items() if v is not None}
    p = subprocess.run([TOOL, "--log-level", "debug"] + list(args), env=env, capture_output=True,
                       timeout=timeout)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    outputs.append(out)
    outputs.append(err)
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    return p.returncode, lines, err


def one(env_extra, args=()):
    rc, lines, err = run_tool(env_extra, args)
    res = lines[0] if lines else {"ok": False, "error": "no output", "stderr": err}
    return rc, res, err


def issued_by_id(base):
    return {c["id"]: c for c in fake_get(base, "/__issued")["credentials"]}


def main():
    global HOME
    work = h.tmpdir("ss-awscred-")
    HOME = os.path.join(work, "home")  # no ~/.aws unless a case writes one
    os.makedirs(HOME)
    base = start_fake(work)
    t_start = time.time()

    web_token_file = os.path.join(work, "web-token")
    with open(web_token_file, "w") as f:
        f.write(WEB_TOKEN + "\n")
    wrong_token_file = os.path.join(work, "wrong-token")
    with open(wrong_token_file, "w") as f:
        f.write("eyJ.wrong-web-identity-token.sig")
    ctok_file = os.path.join(work, "container-token")
    with open(ctok_file, "w") as f:
        f.write(CONTAINER_TOKEN)
    wrong_ctok_file = os.path.join(work, "wrong-container-token")
    with open(wrong_ctok_file, "w") as f:
        f.write("not-the-pod-identity-token-value")

    web_env = {"AWS_WEB_IDENTITY_TOKEN_FILE": web_token_file, "AWS_ROLE_ARN": ROLE + "irsa",
               "AWS_ROLE_SESSION_NAME": "it-web", "AWS_ENDPOINT_URL_STS": base, "AWS_REGION": "us-west-2"}
    container_env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": base + "/container/v1/credentials",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": ctok_file}
    imds_env = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": base}
    everything = dict(web_env, **container_env, **imds_env)

    # -- environment beats everything after it -----------------------------
    before = stats(base)
    rc, r, _ = one(dict(everything, AWS_ACCESS_KEY_ID=ENV_KEY, AWS_SECRET_ACCESS_KEY=ENV_SECRET,
                        AWS_SESSION_TOKEN=ENV_TOKEN))
    check.ok(rc == 0 and r.get("provider") == "environment", "env: %s" % r)
    check.ok(r.get("access_key_id") == ENV_KEY and r.get("secret_sha256") == sha(ENV_SECRET)
             and r.get("session_token_sha256") == sha(ENV_TOKEN) and r.get("expiration") is None, "env values: %s" % r)
    after = stats(base)
    check.ok({k: v for k, v in after.items() if k != "last"} == {k: v for k, v in before.items() if k != "last"},
             "env: the fake was contacted: %s -> %s" % (before, after))

    # -- web identity beats container and IMDS -----------------------------
    rc, r, _ = one(everything)
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "web_identity", "web identity: %s" % r)
    issued = issued_by_id(base)
    cred = issued.get(r.get("access_key_id"), {})
    check.ok(cred.get("by") == "sts-web-identity" and r.get("secret_sha256") == sha(cred.get("secret", "")) and
             r.get("session_token_sha256") == sha(cred.get("token", "")), "web identity: not the issued credentials")
    check.ok(r.get("expiration") and 800 < r["expiration"] - time.time() < 1000, "web identity expiration: %s" % r)
    check.ok(s.get("sts_web_identity") == 1 and not s.get("sts_web_identity_signed") and
             not s.get("container_credentials") and not s.get("imds_token_put"), "web identity stats: %s" % s)
    check.ok(s["last"].get("AssumeRoleWithWebIdentity_session") == "it-web", "session name: %s" % s["last"])

    rc, r, err = one(dict(web_env, AWS_WEB_IDENTITY_TOKEN_FILE=wrong_token_file))
    check.ok(rc == 1 and not r.get("ok") and "web_identity" in r.get("error", "") and
             "InvalidIdentityToken" in r.get("error", ""), "wrong web identity token: %s" % r)
    check.ok("Token *" in r.get("error", ""), "the echoed token is masked: %s" % r)

    # -- container (full URI + token file) beats IMDS ------------------------
    rc, r, _ = one(dict(container_env, **imds_env))
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "container", "container: %s" % r)
    check.ok(issued_by_id(base).get(r.get("access_key_id"), {}).get("by") == "container", "container: not issued")
    check.ok(s.get("container_credentials") == 1 and not s.get("imds_token_put"), "container stats: %s" % s)
    rc, r, _ = one(dict(container_env, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=wrong_ctok_file))
    check.ok(rc == 1 and "HTTP 403" in r.get("error", "") and "container" in r.get("error", ""),
             "wrong container token: %s" % r)
    n = stats(base).get("container_denied", 0)
    rc, r, _ = one(dict(container_env, AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.1/creds"))
    check.ok(rc == 1 and "must be https" in r.get("error", ""), "non-allowed host: %s" % r)
    check.ok(stats(base).get("container_denied", 0) == n, "non-allowed host still contacted something")

    # -- IMDSv2 -------------------------------------------------------------
    rc, r, _ = one(imds_env)
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "imds", "imds: %s" % r)
    check.ok(issued_by_id(base).get(r.get("access_key_id"), {}).get("by") == "imds", "imds: not issued")
    check.ok(s.get("imds_token_put") == 1 and s.get("imds_get") == 2 and not s.get("imds_get_without_token")
             and not s.get("imds_token_bad_ttl"), "imds stats: %s" % s)
    fake_config(base, imds_token_status=403)
    rc, r, _ = one(imds_env)
    s2 = stats(base)
    check.ok(rc == 1 and "IMDSv1 is never used" in r.get("error", "") and "HTTP 403" in r.get("error", ""),
             "imds with the token PUT refused: %s" % r)
    check.ok(s2.get("imds_token_put") == 2 and s2.get("imds_get") == 2 and not s2.get("imds_get_without_token"),
             "imds fell back to IMDSv1: %s" % s2)
    fake_config(base, imds_token_status=200)

    # -- shared profile: role_arn + source_profile ---------------------------
    aws = os.path.join(HOME, ".aws")
    os.makedirs(aws)
    with open(os.path.join(aws, "credentials"), "w") as f:
        f.write("# static keys for the source profile\n"
                "[base]\n"
                "aws_access_key_id = %s\n"
                "aws_secret_access_key = %s   ; trailing comment\n"
                "[badsig]\n"
                "aws_access_key_id = %s\n"
                "aws_secret_access_key = notTheSecretTheFakeKnows\n" % (BASE_KEY, BASE_SECRET, BASE_KEY))
    with open(os.path.join(aws, "config"), "w") as f:
        f.write("[default]\nregion = eu-west-1\n\n"
                "[profile app]\n"
                "role_arn = %sapp\n"
                "source_profile = base\n"
                "role_session_name = it-profile\n"
                "region = ap-southeast-2\n"
                "[profile hop2]\n"
                "role_arn = %shop2\n"
                "source_profile = app\n"
                "[profile badrole]\n"
                "role_arn = %sbad\n"
                "source_profile = badsig\n" % (ROLE, ROLE, ROLE))
    before = stats(base)
    rc, r, _ = one({"AWS_PROFILE": "app", "AWS_ENDPOINT_URL_STS": base})
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "shared_profile", "profile: %s" % r)
    check.ok(s.get("sts_assume_role", 0) - before.get("sts_assume_role", 0) == 1 and
             s.get("sts_assume_role_sig_ok", 0) - before.get("sts_assume_role_sig_ok", 0) == 1 and
             not s.get("sts_assume_role_sig_bad"), "profile stats: %s" % s)
    check.ok(s["last"].get("AssumeRole_signing_key") == BASE_KEY and s["last"].get("AssumeRole_region") ==
             "ap-southeast-2" and s["last"].get("AssumeRole_session") == "it-profile", "profile: %s" % s["last"])
    rc, r, _ = one({"AWS_PROFILE": "hop2", "AWS_ENDPOINT_URL_STS": base})
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "shared_profile" and not s.get("sts_assume_role_sig_bad") and
             s["last"].get("AssumeRole_role") == ROLE + "hop2" and
             s["last"].get("AssumeRole_signing_key", "").startswith("ASIA"),
             "two hops, the second signed with a session: %s %s" % (r, s["last"]))
    # the fake's signature check is not vacuous: a wrong secret is refused
    rc, r, _ = one({"AWS_PROFILE": "badrole", "AWS_ENDPOINT_URL_STS": base})
    check.ok(rc == 1 and "SignatureDoesNotMatch" in r.get("error", "") and
             stats(base).get("sts_assume_role_sig_bad") == 1, "bad signature accepted: %s" % r)
    if s.get("sigv4_checked_with_botocore"):
        check.ok(True, "signatures checked with botocore")

    # -- config role_arn + external_id on top of the environment --------------
    env_keys = {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET, "AWS_ENDPOINT_URL": base}
    fake_config(base, external_id="ext-8675309")
    rc, r, _ = one(env_keys, ["--role-arn", ROLE + "amp-writer", "--external-id", "ext-8675309",
                              "--region", "us-east-2", "--session-name", "it-config"])
    s = stats(base)
    check.ok(rc == 0 and r.get("provider") == "environment" and r.get("assumed_role") is True, "config role: %s" % r)
    check.ok(issued_by_id(base).get(r.get("access_key_id"), {}).get("by") == "sts-assume-role",
             "config role: not the assumed credentials")
    check.ok(s["last"].get("AssumeRole_external_id") == "ext-8675309" and s["last"].get("AssumeRole_role") ==
             ROLE + "amp-writer" and s["last"].get("AssumeRole_signing_key") == ENV_KEY and
             s["last"].get("AssumeRole_region") == "us-east-2", "config role: %s" % s["last"])
    rc, r, _ = one(env_keys, ["--role-arn", ROLE + "amp-writer", "--external-id", "wrong"])
    check.ok(rc == 1 and "AccessDenied" in r.get("error", "") and "assume_role" in r.get("error", ""),
             "wrong external id: %s" % r)
    fake_config(base, external_id=None)

    # -- watch: refresh before expiry, in the background -------------------
    fake_config(base, lifetime=20)
    n0 = stats(base).get("sts_web_identity", 0)
    rc, lines, _ = run_tool(web_env, ["--watch", "25", "--poll-ms", "100", "--force-after", "3", "--metrics"],
                            timeout=60)
    gens = [x for x in lines if x.get("event") == "generation"]
    summary = next((x for x in lines if x.get("event") == "summary"), {})
    forced = next((x for x in lines if x.get("event") == "forced"), {})
    metrics = next((x for x in lines if x.get("event") == "metrics"), {}).get("text", "")
    check.ok(rc == 0 and summary.get("failures") == 0 and summary.get("gets", 0) > 100,
             "watch: gets failed (a gap): %s" % summary)
    check.ok(forced.get("rc") == 0 and forced.get("rc_again") == 0, "forced refresh: %s" % forced)
    # forced at ~3 s, then 20 s credentials refreshed at half life: >= 3 generations
    check.ok(len(gens) >= 3, "watch: only %d generations" % len(gens))
    for a, b in zip(gens, gens[1:]):
        check.ok(b["access_key_id"] != a["access_key_id"] and b["observed"] < a["expiration"],
                 "generation %d appeared at %.1f, after %d expired at %.1f" %
                 (b["generation"], b["observed"], a["generation"], a["expiration"]))
    for g in gens[1:]:
        left = g["expiration"] - g["observed"]
        check.ok(15 <= left <= 21, "a new generation should be fresh, has %.1f s left" % left)
    n1 = stats(base).get("sts_web_identity", 0)
    check.ok(n1 - n0 == len(gens), "STS calls (%d) != generations seen (%d)" % (n1 - n0, len(gens)))
    check.ok('scrapeship_aws_credentials_refreshes_total{remote="tool",result="success"} %d' % len(gens) in metrics
             and 'provider_info{remote="tool",provider="web_identity",assume_role="false"} 1' in metrics
             and "scrapeship_aws_credentials_expiry_timestamp_seconds" in metrics, "metrics: %s" % metrics)

    # -- no secret anywhere in what the tool wrote -------------------------
    doc = fake_get(base, "/__issued")
    secrets = [WEB_TOKEN, CONTAINER_TOKEN, ENV_SECRET, ENV_TOKEN, BASE_SECRET, "eyJ.wrong-web-identity-token.sig",
               "not-the-pod-identity-token-value", "notTheSecretTheFakeKnows"]
    for c in doc["credentials"]:
        secrets += [c["secret"], c["token"]]
    secrets += doc["imds_tokens"]
    text = "\n".join(outputs)
    leaked = [i for i, sec in enumerate(secrets) if sec in text]
    check.ok(not leaked, "%d secrets found in tool output or logs (indexes %s)" % (len(leaked), leaked[:5]))
    logs = "\n".join(outputs[1::2])
    key_ids = [c["id"] for c in doc["credentials"]] + [ENV_KEY, BASE_KEY]
    check.ok(not [k for k in key_ids if k in logs], "an unmasked access key id in the logs")
    check.ok("****" in logs, "logs should show masked key ids")
    print("checked %d secrets against %d bytes of output; %d credentials issued; %.1f s" %
          (len(secrets), len(text), len(doc["credentials"]), time.time() - t_start))
    check.finish()


if __name__ == "__main__":
    main()
