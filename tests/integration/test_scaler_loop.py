#!/usr/bin/python3
"""Closed loop with real parts: load -> scrapeship run -> Prometheus 2.42 -> scrapeship
scaler -> Kubernetes API (fake_kube.py) -> replicas.

A stdlib HTTP target exposes a counter requests_total that grows by LOAD_RATE per
second while "load" is on and stands still when it is off. `scrapeship run` scrapes
it every second and ships to a real Prometheus started with
--web.enable-remote-write-receiver. Three `scrapeship scaler` processes query that
Prometheus for sum(rate(requests_total[15s])) every second (pollingInterval: 1) and
act on a fake Kubernetes API that records every PATCH of a scale subresource. The HPA
step runs on its own 5 s sync period (--hpa-sync-period 5s): replica changes above 1
must fall on those sync beats, while activation (0 -> 1) reacts at the next poll:

  web         plain queries. Replicas must rise from 0 while the load runs (the
              first PATCH is answered 409 and must be retried at the next poll;
              the token file is rotated mid-run and must be re-read), then fall
              back to 0 (minReplicaCount) only after the load stops and the 20 s
              cooldownPeriod has passed since the metric was last active.
  web-signed  the same loop with queries signed by SigV4 (awsRegion: us-east-1,
              env credentials) through tests/integration/sigv4_front.py, which
              recomputes each signature with botocore and forwards to Prometheus.
  web-dry     --dry-run, signed too, but through a TriggerAuthentication with
              podIdentity.provider aws: decides and logs, patches nothing.

Also: one-shot runs show the 403 RBAC hint and a query refused for a wrong AWS
secret; every poll logs one line with value, active, current, desired, rule and
action; the scaler's /metrics carries its gauges; SIGTERM stops it cleanly.
Everything listens on 127.0.0.1; the whole test takes about two minutes.
"""
import base64
import calendar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from fake_kube import FakeKube  # noqa: E402

LOAD_RATE = 100.0   # requests_total per second while the load is on
THRESHOLD = 28      # per replica: 100/28 = 3.6, so 4 replicas even with +-10% jitter
LOAD_SECONDS = 36
COOLDOWN = 20
SYNC = 5            # --hpa-sync-period
FRONT = os.path.join(HERE, "sigv4_front.py")
KEY_ID, SECRET = "AKIDSCALERLOOPTEST01", "scaler/loop/secret/key/0123456789abcdefgh"

LINE_RE = re.compile(r'component=scaler msg="scaledobject=(\S+) target=(\S+) (value\S*=\S+) active=(\S+) '
                     r'current=(\S+) desired=(\S+) rule=(\S+) action=(\S+) \| ')


class Load:
    """The target: requests_total grows at LOAD_RATE/s while on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.on = False
        self.count = 0.0
        self.since = time.time()
        load = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = ("# TYPE requests_total counter\nrequests_total %.0f\n" % load.value()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def value(self):
        with self.lock:
            now = time.time()
            if self.on:
                self.count += LOAD_RATE * (now - self.since)
            self.since = now
            return self.count

    def set(self, on):
        self.value()
        with self.lock:
            self.on = on


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)  # readers never see half a file
    return path


def scaled_object(name, server, extra_meta="", auth_ref=None):
    return """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: %(name)s
  namespace: shop
spec:
  scaleTargetRef: {name: %(name)s}
  pollingInterval: 1
  cooldownPeriod: %(cooldown)d
  minReplicaCount: 0
  maxReplicaCount: 8
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 6
          policies: [{type: Percent, value: 100, periodSeconds: 2}]
        scaleUp:
          stabilizationWindowSeconds: 0
          policies: [{type: Pods, value: 4, periodSeconds: 2}]
  triggers:
  - type: prometheus
    name: load
    metadata:
      serverAddress: %(server)s
      query: sum(rate(requests_total[15s]))
      threshold: "%(threshold)d"
%(extra)s%(auth)s""" % {"name": name, "server": server, "cooldown": COOLDOWN, "threshold": THRESHOLD,
                       "extra": extra_meta, "auth": ("    authenticationRef: {name: %s}\n" % auth_ref) if auth_ref else ""}


TRIGGER_AUTH = """---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: amp, namespace: shop}
spec:
  podIdentity: {provider: aws}
"""


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC keys: fast)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True, timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=scaler-test-ca")
    write(os.path.join(d, "san.ext"), "subjectAltName=IP:127.0.0.1\n")
    for name, cn, ext in (("server", "127.0.0.1", ["-extfile", "san.ext"]), ("client", "scaler", [])):
        run("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".pem", "-days", "2", *ext)
    return {n: os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def line_time(m):
    """The ts= of the log line a LINE_RE match is in, as epoch seconds."""
    text = m.string
    start = text.rfind("\n", 0, m.start()) + 1
    ts = re.match(r"ts=(\S+)Z", text[start:m.start() + 1])
    return calendar.timegm(time.strptime(ts.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts.group(1)[19:] or 0)


def poll_lines(log_path, name):
    with open(log_path, errors="replace") as f:
        text = f.read()
    return [m for m in LINE_RE.finditer(text) if m.group(1) == "shop/" + name]


def start_front(prom, d):
    settings = write(os.path.join(d, "front.json"), json.dumps({"known_keys": {KEY_ID: SECRET}}))
    p = h.start(["/usr/bin/python3", FRONT, "--upstream", prom, "--config", settings], os.path.join(d, "front.log"),
                stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("sigv4_front.py did not start: " + open(os.path.join(d, "front.log")).read())
    return "http://127.0.0.1:%d" % json.loads(line)["port"]


def front_stats(front):
    with urllib.request.urlopen(front + "/__stats", timeout=5) as r:
        return json.loads(r.read())


def main():
    chk = h.Check("scaler_loop")
    t_start = time.time()
    d = h.tmpdir("ss-scaler-")
    load = Load()
    prom, _, _ = h.start_prometheus("global:\n  scrape_interval: 1h\n",
                                    extra_args=["--web.enable-remote-write-receiver"])
    front = start_front(prom, d)

    collector_cfg = write(os.path.join(d, "collector.yml"), """
global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: load
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s/api/v1/write
    queue_config: {batch_send_deadline: 500ms}
""" % (load.port, prom))
    collector = h.start([h.BIN, "run", "--config", collector_cfg, "--web.listen-address",
                         "127.0.0.1:%d" % h.free_port()], os.path.join(d, "collector.log"))

    token_file = write(os.path.join(d, "token"), "token-generation-1\n")
    fk = FakeKube(tokens={"token-generation-1"}, record=os.path.join(d, "patches.jsonl")).start()
    for name in ("web", "web-signed", "web-dry", "web-rbac"):
        fk.add("shop", "deployments", name, 0)
    kubeconfig = write(os.path.join(d, "kubeconfig"), """apiVersion: v1
kind: Config
current-context: test
contexts: [{name: test, context: {cluster: fake, user: scaler, namespace: shop}}]
clusters: [{name: fake, cluster: {server: '%s'}}]
users: [{name: scaler, user: {tokenFile: token}}]
""" % fk.url)

    so_plain = write(os.path.join(d, "web.yaml"), scaled_object("web", prom))
    so_signed = write(os.path.join(d, "web-signed.yaml"), scaled_object(
        "web-signed", front + "/workspaces/ws-scaler", extra_meta="      awsRegion: us-east-1\n"))
    so_dry = write(os.path.join(d, "web-dry.yaml"),
                   scaled_object("web-dry", front + "/workspaces/ws-scaler", auth_ref="amp") + TRIGGER_AUTH)
    so_rbac = write(os.path.join(d, "web-rbac.yaml"), scaled_object("web-rbac", prom))

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    aws_env = dict(base_env, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/nonexistent",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    common = ["--kubeconfig", kubeconfig]
    sync = ["--hpa-sync-period", "%ds" % SYNC]

    # ---- one-shot checks while everything is idle -------------------------
    fk.fail_next("GET", 403, count=1, name="web-rbac")
    rc, _, err = h.run_scrapeship(["scaler", "--config", so_rbac, "--once", "--web.listen-address", "none"] + common,
                                  timeout=60, env=base_env)
    chk.ok(rc == 1, "a 403 makes --once fail (rc %d)" % rc)
    chk.ok('HTTP 403 forbidden' in err and 'needs: apiGroups [\\"apps\\"], resources [\\"deployments/scale\\"], '
           'verbs [\\"get\\",\\"patch\\"] in namespace shop' in err,
           "403 names the missing RBAC rule:\n" + err[-1500:])
    bad_env = dict(aws_env, AWS_SECRET_ACCESS_KEY="not-the-secret")
    rc, _, err = h.run_scrapeship(["scaler", "--config", so_signed, "--once", "--web.listen-address", "none"] + common,
                                  timeout=60, env=bad_env)
    chk.ok(rc == 1 and "value=error" in err and "403" in err,
           "a wrong AWS secret is refused by the front (rc %d):\n%s" % (rc, err[-1500:]))
    chk.ok(fk.count("PATCH") == 0, "one-shot runs patched nothing")

    # HTTPS with a client certificate: once as kubeconfig data, once as files
    certs = make_certs(h.tmpdir("ss-scaler-tls-"))
    fk_tls = FakeKube(tls=(certs["server.pem"], certs["server.key"], certs["ca.pem"])).start()
    fk_tls.add("shop", "deployments", "web-tls", 2)
    so_tls = write(os.path.join(d, "web-tls.yaml"), scaled_object("web-tls", prom))
    users = {
        "data": "{client-certificate-data: %s, client-key-data: %s}" % (b64(certs["client.pem"]),
                                                                       b64(certs["client.key"])),
        "files": "{client-certificate: %s, client-key: %s}" % (certs["client.pem"], certs["client.key"]),
        "none": "{}",
    }
    for variant, user in users.items():
        ca = ("certificate-authority-data: %s" % b64(certs["ca.pem"]) if variant != "files"
              else "certificate-authority: %s" % certs["ca.pem"])
        kc_tls = write(os.path.join(d, "kubeconfig-tls-" + variant), """apiVersion: v1
kind: Config
current-context: tls
contexts: [{name: tls, context: {cluster: c, user: u, namespace: shop}}]
clusters: [{name: c, cluster: {server: '%s', %s}}]
users: [{name: u, user: %s}]
""" % (fk_tls.url, ca, user))
        rc, _, err = h.run_scrapeship(["scaler", "--config", so_tls, "--once", "--dry-run", "--kubeconfig", kc_tls,
                                       "--web.listen-address", "none"], timeout=60, env=base_env)
        if variant == "none":
            chk.ok(rc == 1 and "cannot read the scale" in err, "TLS without a client certificate is refused:\n"
                   + err[-800:])
        else:
            # a start counts as the last activity (KEDA would resume from
            # status.lastActiveTime), so a one-shot run is inside cooldownPeriod
            chk.ok(rc == 0 and "current=2 desired=2 rule=cooldown action=none" in err,
                   "TLS with the client certificate as %s (rc %d):\n%s" % (variant, rc, err[-800:]))
    chk.ok(fk_tls.count("PATCH") == 0 and fk_tls.count("GET", "/web-tls/scale") == 2,
           "TLS: two reads, no PATCH under --dry-run")
    fk_tls.stop()

    # ---- the loops ----------------------------------------------------------
    logs = {n: os.path.join(d, "scaler-%s.log" % n) for n in ("web", "web-signed", "web-dry")}
    metrics_port = h.free_port()
    scalers = {
        "web": h.start([h.BIN, "scaler", "--config", so_plain, "--web.listen-address",
                        "127.0.0.1:%d" % metrics_port] + common + sync, logs["web"], env=base_env),
        "web-signed": h.start([h.BIN, "scaler", "--config", so_signed, "--web.listen-address", "none"] + common
                              + sync, logs["web-signed"], env=aws_env),
        "web-dry": h.start([h.BIN, "scaler", "--config", so_dry, "--dry-run", "--web.listen-address", "none"]
                           + common + sync, logs["web-dry"], env=aws_env),
    }
    h.wait_http("http://127.0.0.1:%d/readyz" % metrics_port, timeout=20, what="scaler")
    time.sleep(6)  # idle: a few polls at 0 with nothing to do
    chk.ok(fk.count("PATCH") == 0, "no load, nothing patched (%d PATCHes)" % fk.count("PATCH"))
    idle = poll_lines(logs["web"], "web")
    chk.ok(len(idle) >= 2 and all(m.group(7) == "inactive" and m.group(8) == "none" for m in idle),
           "idle polls decide 'inactive' and do nothing: %s" % [m.group(0) for m in idle[-3:]])

    fk.fail_next("PATCH", 409, count=1, name="web")  # the first scale-up is refused once
    t_on = time.time()
    load.set(True)
    peak = {"web": 0, "web-signed": 0}
    rotated = revoked = False
    while time.time() - t_on < LOAD_SECONDS:
        for n in peak:
            peak[n] = max(peak[n], fk.replicas("shop", "deployments", n))
        # the kubelet rotates projected tokens; the old one stays valid for a while,
        # then is revoked: from then on only a client that re-reads the file gets in
        if not rotated and time.time() - t_on > LOAD_SECONDS / 3:
            fk.accept_token("token-generation-2")
            write(token_file, "token-generation-2\n")
            rotated = time.time()
        if rotated and not revoked and time.time() - rotated > 5:
            fk.revoke_token("token-generation-1")
            revoked = True
        time.sleep(0.5)
    chk.ok(revoked, "the old token was revoked during the load")
    t_off = time.time()
    load.set(False)
    for n in peak:
        peak[n] = max(peak[n], fk.replicas("shop", "deployments", n))
        chk.ok(3 <= peak[n] <= 8, "%s: load gives several replicas (peak %d)" % (n, peak[n]))

    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as r:
            metrics = r.read().decode()
    except OSError as e:
        metrics = "unreachable: %s" % e
    for want in ('scrapeship_scaler_desired_replicas{namespace="shop",scaledobject="web"} ',
                 'scrapeship_scaler_current_replicas{namespace="shop",scaledobject="web"} ',
                 'scrapeship_scaler_metric_value{namespace="shop",scaledobject="web",trigger="load"} ',
                 'scrapeship_scaler_active{namespace="shop",scaledobject="web"} 1',
                 'scrapeship_scaler_fallback_active{namespace="shop",scaledobject="web"} 0',
                 'scrapeship_scaler_kube_errors_total{namespace="shop",scaledobject="web"} 1',
                 'scrapeship_scaler_scale_actions_total{namespace="shop",scaledobject="web",result="failure"} 1'):
        chk.ok(want in metrics, "scaler /metrics has %s" % want)

    # back to the minimum once the rate is 0 and the cooldown has passed
    deadline = t_off + 100
    while time.time() < deadline:
        if all(fk.replicas("shop", "deployments", n) == 0 for n in peak):
            break
        time.sleep(0.5)
    for n in peak:
        pts = fk.patches_for(n)
        chk.ok(pts and pts[-1]["to"] == 0, "%s: back to minReplicaCount 0 (patches %s)"
               % (n, [(p["from"], p["to"]) for p in pts]))
        if not pts:
            continue
        first_up = next((p for p in pts if p["to"] > 0), None)
        chk.ok(first_up is not None and first_up["t"] - t_on < 15,
               "%s: scaled up within 15 s of the load starting" % n)
        chk.ok(pts[-1]["t"] - t_off >= COOLDOWN,
               "%s: scaled to 0 %.1f s after the load stopped, not before the %d s cooldown"
               % (n, pts[-1]["t"] - t_off, COOLDOWN))
        during = [p for p in pts if p["t"] <= t_off]
        chk.ok(all(p["to"] >= p["from"] for p in during), "%s: only scale-ups while the load runs: %s"
               % (n, [(p["from"], p["to"]) for p in during]))
        chk.ok(all(p["t"] < t_off + 3 or p["to"] <= p["from"] for p in pts),
               "%s: only scale-downs after the load stopped" % n)

    chk.ok(fk.count("PATCH", "/web-dry/") == 0 and fk.replicas("shop", "deployments", "web-dry") == 0,
           "--dry-run patched nothing (%d PATCHes)" % fk.count("PATCH", "/web-dry/"))
    chk.ok(fk.auth_failures == 0, "the rotated token was re-read: %d requests refused" % fk.auth_failures)
    rc, _, err = h.run_scrapeship(["scaler", "--config", so_rbac, "--once", "--web.listen-address", "none",
                                   "--kubeconfig", write(os.path.join(d, "kubeconfig-old"), open(kubeconfig).read()
                                                         .replace("tokenFile: token", "token: token-generation-1"))],
                                  timeout=60, env=base_env)
    chk.ok(rc == 1 and "HTTP 401 unauthorized" in err, "the revoked token is refused (rc %d)" % rc)

    # SIGTERM stops every loop cleanly and promptly
    for n, p in scalers.items():
        t0 = time.time()
        rc = h.stop(p, timeout=15)
        chk.ok(rc == 0 and time.time() - t0 < 8, "%s: SIGTERM stops cleanly (rc %s, %.1f s)" % (n, rc, time.time() - t0))
    h.stop(collector)

    # ---- what the logs say ----------------------------------------------------
    for n in ("web", "web-signed", "web-dry"):
        lines = poll_lines(logs[n], n)
        text = open(logs[n], errors="replace").read()
        chk.ok(len(lines) >= 30, "%s: one line per poll (%d lines)" % (n, len(lines)))
        rules = {m.group(7) for m in lines}
        values = [m.group(3) for m in lines]
        chk.ok(all(v.startswith("value=") for v in values), "%s: every line has the query value" % n)
        chk.ok(any(v not in ("value=0", "value=error") for v in values), "%s: non-zero values seen" % n)
        chk.ok("value=error" not in values, "%s: no query failed: %s" % (n, [m.group(0) for m in lines
                                                                           if m.group(3) == "value=error"][:2]))
        chk.ok('msg="stopped"' in text, "%s: logs its clean stop" % n)
        if n == "web-dry":
            actions = {m.group(8) for m in lines}
            chk.ok("dry-run(0->1)" in actions and not any(a.startswith("scaled(") for a in actions),
                   "dry run logs what it would do: %s" % sorted(actions))
            continue
        chk.ok({"activation", "deactivation"} <= rules and rules & {"metric", "policy-limit", "tolerance"},
               "%s: activation, HPA and deactivation rules all decided: %s" % (n, sorted(rules)))
        chk.ok(any(m.group(7) == "cooldown" or (m.group(7) in ("stabilization", "metric", "hpa-wait")
                                                 and m.group(4) == "false") for m in lines),
               "%s: inactive polls waited before scaling to 0" % n)
        deact = [m for m in lines if m.group(7) == "deactivation"]
        chk.ok(deact and deact[0].group(8).startswith("scaled(") and deact[0].group(8).endswith("->0)"),
               "%s: deactivation scaled to 0: %s" % (n, deact[0].group(0) if deact else None))
        # the HPA clock: every replica change other than activation/deactivation lands
        # on the beat of the first poll + k x SYNC; polls in between say hpa-wait
        ts = [line_time(m) for m in lines]
        t0 = ts[0]
        hpa_moves = [(ts[i], m.group(8)) for i, m in enumerate(lines)
                     if m.group(7) not in ("activation", "deactivation")
                     and (m.group(8).startswith("scaled(") or m.group(8).startswith("dry-run("))]
        off_beat = [(round(t - t0, 2), a) for t, a in hpa_moves if min((t - t0) % SYNC, SYNC - (t - t0) % SYNC) > 0.6]
        chk.ok(hpa_moves and not off_beat, "%s: HPA changes only on the %d s sync beat: %d changes, off beat: %s"
               % (n, SYNC, len(hpa_moves), off_beat))
        chk.ok(sum(m.group(7) == "hpa-wait" for m in lines) >= 10, "%s: polls between syncs decide hpa-wait" % n)
    for n in ("web", "web-signed"):
        lines = poll_lines(logs[n], n)
        first_active = next((i for i, m in enumerate(lines) if m.group(4) == "true"), None)
        chk.ok(first_active is not None and lines[first_active].group(7) == "activation",
               "%s: the first active poll activates at once, without waiting for a sync" % n)
    web_text = open(logs["web"], errors="replace").read()
    chk.ok(re.search(r"action=scale-failed\(0->1\) \|[^\n]*HTTP 409 conflict", web_text) is not None,
           "the 409 is logged as a failed scale, retried next poll")
    web_lines = poll_lines(logs["web"], "web")
    failed_at = next((i for i, m in enumerate(web_lines) if m.group(8).startswith("scale-failed")), None)
    chk.ok(failed_at is not None and failed_at + 1 < len(web_lines)
           and web_lines[failed_at + 1].group(8).startswith("scaled(0->"),
           "the next poll after the 409 scales")
    st = front_stats(front)
    chk.ok(st["accepted"] >= 40 and st.get("upstream_status", {}).get("200", 0) >= 40,
           "signed queries verified by the front: %d accepted" % st["accepted"])
    chk.ok(set(st["rejected"]) == {"InvalidSignatureException"} and sum(st["rejected"].values()) == 1,
           "the front refused only the wrong secret's query: %s" % st["rejected"])

    fk.stop()
    print("scaler_loop: %.0f s" % (time.time() - t_start), flush=True)
    chk.finish()


if __name__ == "__main__":
    main()
