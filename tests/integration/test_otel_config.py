#!/usr/bin/python3
"""ADOT collector configs end to end: the two public AWS samples run as they are.

The fixtures tests/unit/collector/otel/keda_amp_scaling.yaml (legacy
awsprometheusremotewrite + aws_auth, $$1 relabel replacements, a traces pipeline) and
eks_prometheus_daemonset.yaml (prometheusremotewrite + sigv4auth, namespace "adot") each
run with `scrapeship run --config` and ship SigV4-signed remote write to a real
Prometheus 2.42 (--web.enable-remote-write-receiver) behind sigv4_front.py, which
verifies every signature with botocore (service aps) and forwards what it accepts.

Each run uses a copy of its fixture in which only what the sample's README asks the
user to fill in and the cluster's addresses are substituted; every other line is the
fixture's:
  * the placeholders (REMOTE_WRITE_URL / AWSREGION, <YOUR_ENDPOINT> / <YOUR_REGION>)
    by the front's workspace URL and us-east-1, as the samples' READMEs do with sed;
  * the health_check extension gets `endpoint: 127.0.0.1:PORT` instead of its default
    0.0.0.0:13133, so the test listens on loopback only and runs beside others;
  * the EKS sample's service account paths /var/run/secrets/kubernetes.io/serviceaccount/
    (bearer token and CA of the scrape job) point to the test's service account dir.
Discovery is in-cluster, as in a pod: KUBERNETES_SERVICE_HOST/PORT name a fake
Kubernetes API (fake_kube_api.py, https with the service account's CA and token), whose
Services, Endpoints and Pods have 127.0.0.x IPs where real HTTP servers answer.
Credentials come from the environment (the default chain, as ADOT's sigv4auth uses).

Checks, per sample: check-config passes and lists the ignored components; the health
endpoint answers 200; the series in Prometheus are exactly the ones the OTel collector
(contrib v0.98.0, README "Coming from ADOT") ships for those targets (names with _total
and the namespace prefix, key_ label names, target_info, the relabelled target labels),
and none under Prometheus' own names; the front accepted signed requests only to the
workspace path and refused none; the EKS scrape sent the service account token. Every
wait is bounded. Takes about 60 s.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(h.REPO, "tests", "unit", "collector", "otel")
FRONT = os.path.join(HERE, "sigv4_front.py")
PY = "/usr/bin/python3"
REGION = "us-east-1"
WS = "ws-otel0a1b2c3-4d5e-6f70-8192-a3b4c5d6e7f8"
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/"
SA_TOKEN = "sa-token-otel-1"
KEYS = {"eks": ("AKIAOTELEKS000000001", "eksSecret/otel+0123456789abcdefghijABCDEFGHIJ"),
        "keda": ("AKIAOTELKEDA00000002", "kedaSecret/otel+9876543210zyxwvutsrqponmlkj")}
WAIT_S = 90

# What every target serves: a counter with _total, a counter without it (Prometheus
# stores it as is; the collector adds _total), and a gauge with a "_"-led label name.
EXPOSITION = b"""# HELP app_requests_total Requests served.
# TYPE app_requests_total counter
app_requests_total{code="200"} 7
# TYPE jobs_done counter
jobs_done 4
# TYPE app_queue_depth gauge
app_queue_depth{_shard="a"} 3
"""
# The receiver's own series per target (v0.98.0 scrape internal metrics)
INTERNAL = ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
            "scrape_series_added"]


class Target:
    """Serves EXPOSITION on ip:port at path; remembers the Authorization headers it saw."""

    def __init__(self, ip, port=0, path="/metrics"):
        self.auth = set()
        self.hits = 0
        tgt = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                tgt.hits += 1
                tgt.auth.add(self.headers.get("Authorization"))
                ok = self.path.split("?")[0] == path
                body = EXPOSITION if ok else b""
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer((ip, port), H)
        self.srv.daemon_threads = True
        self.ip, self.port = ip, self.srv.server_address[1]
        self.instance = "%s:%d" % (ip, self.port)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def service(name, annotations, labels=None, namespace="default"):
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name},
                         "annotations": annotations},
            "spec": {"clusterIP": "10.100.0.1", "ports": [{"name": "metrics", "port": 8080, "protocol": "TCP"}]}}


def endpoints(name, ip, port, pod_name, namespace="default", node="node-a"):
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "subsets": [{"addresses": [{"ip": ip, "nodeName": node,
                                        "targetRef": {"kind": "Pod", "name": pod_name, "namespace": namespace}}],
                         "ports": [{"name": "metrics", "port": port, "protocol": "TCP"}]}]}


def start_front(work, prom):
    cfg = os.path.join(work, "front.json")
    with open(cfg, "w") as f:
        json.dump({"known_keys": dict(KEYS.values()), "key_labels": {k: n for n, (k, _) in KEYS.items()},
                   "region": REGION, "service": "aps"}, f)
    p = subprocess.Popen([PY, FRONT, "--upstream", prom, "--config", cfg], stdout=subprocess.PIPE,
                         stderr=open(os.path.join(work, "front.log"), "wb"), start_new_session=True)
    h._procs.append(p)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("sigv4_front.py did not start: %s" % open(os.path.join(work, "front.log")).read())
    return "http://127.0.0.1:%d" % json.loads(line)["port"]


def derive(fixture, work, subst):
    """The fixture with exactly the listed substitutions; each must apply."""
    with open(os.path.join(FIXTURES, fixture)) as f:
        text = f.read()
    for old, new in subst:
        if old not in text:
            raise RuntimeError("%s: %r not found" % (fixture, old))
        text = text.replace(old, new)
    path = os.path.join(work, fixture)
    with open(path, "w") as f:
        f.write(text)
    return path


def k8s(ns, node, pod=None, container=None):
    """The k8s.* resource attributes the receiver's addKubernetesResource derives from
    kubernetes_sd's discovered labels, as target_info labels."""
    r = {"k8s_namespace_name": ns, "k8s_node_name": node}
    if pod:
        r.update(k8s_pod_name=pod, k8s_pod_uid="uid-pods-%s-%s" % (ns, pod), k8s_container_name=container)
    return r


def expected(job, tgt, ns="", target_labels=None, resource=None):
    """The OTel collector's series for one target: {frozenset(labels)}."""
    base = {"job": job, "instance": tgt.instance}
    base.update(target_labels or {})
    p = ns + "_" if ns else ""
    out = [
        dict(base, __name__=p + "app_requests_total", code="200"),  # already ends in _total: one _total
        dict(base, __name__=p + "jobs_done_total"),  # monotonic counter: _total added
        dict(base, __name__=p + "app_queue_depth", key_shard="a"),  # NormalizeLabel: _shard -> key_shard
        # target_info: resource attributes only (loopback: no net_host_name), no target labels
        {"__name__": p + "target_info", "job": job, "instance": tgt.instance, "http_scheme": "http",
         "net_host_port": str(tgt.port), **(resource or {})},
    ]
    out += [dict(base, __name__=p + n) for n in INTERNAL]
    return {frozenset(d.items()) for d in out}


class Sample:
    def __init__(self, name, cfg, env, health, api, want, instances, key):
        self.name, self.cfg, self.env, self.health, self.api = name, cfg, env, health, api
        self.want, self.instances, self.key = want, instances, key
        self.proc = None
        self.log = None


def stored(prom, instances):
    """Every series Prometheus holds for these instances (looked back over 10 minutes)."""
    sel = "|".join(i.replace(".", "\\\\.") for i in instances)
    data = h.prom_query(prom, '{instance=~"%s"}[10m]' % sel)
    return {frozenset(r["metric"].items()) for r in data["result"]}


def main():
    chk = h.Check("test_otel_config")
    t0 = time.time()
    work = h.tmpdir("ss-otel-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    # the service account, as kubelet mounts it; the fake API serves https with its CA
    sa = os.path.join(work, "serviceaccount")
    os.makedirs(sa)
    cert, key = os.path.join(work, "tls.crt"), os.path.join(work, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    shutil.copy(cert, os.path.join(sa, "ca.crt"))
    with open(os.path.join(sa, "token"), "w") as f:
        f.write(SA_TOKEN + "\n")
    with open(os.path.join(sa, "namespace"), "w") as f:
        f.write("amazon-metrics")

    prom, _, _ = h.start_prometheus("global:\n  scrape_interval: 1h\n",
                                    extra_args=["--web.enable-remote-write-receiver"])
    front = start_front(work, prom)
    rw_url = "%s/workspaces/%s/api/v1/remote_write" % (front, WS)

    def env_for(sample, api):
        k, s = KEYS[sample]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": k, "AWS_SECRET_ACCESS_KEY": s,
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port),
               "SCRAPESHIP_KUBE_SA_DIR": sa}
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if v in os.environ:
                env[v] = os.environ[v]
        return env

    samples = []

    # -- aws-otel-collector EKS DaemonSet: role endpoints, keep annotation scrape=true ----
    api = fk.FakeKubeAPI(token_file=os.path.join(sa, "token"), certfile=cert, keyfile=key)
    e1, e_off = Target("127.0.0.31"), Target("127.0.0.32")
    api.apply("services", service("app-a", {"scrape": "true"}))
    api.apply("endpoints", endpoints("app-a", e1.ip, e1.port, "app-a-1"))
    api.apply("services", service("app-off", {}))  # not opted in: never scraped
    api.apply("endpoints", endpoints("app-off", e_off.ip, e_off.port, "app-off-1"))
    api.start()
    hp = h.free_port()
    cfg = derive("eks_prometheus_daemonset.yaml", work, [
        ('"<YOUR_ENDPOINT>"', '"%s"' % rw_url), ('"<YOUR_REGION>"', '"%s"' % REGION),
        ("  health_check:\n", "  health_check:\n    endpoint: 127.0.0.1:%d\n" % hp),
        (SA_PATH, sa + "/")])
    samples.append(Sample("eks", cfg, env_for("eks", api), hp, api,
                          expected("kubernetes-service-endpoints", e1, ns="adot", resource=k8s("default", "node-a")), [e1.instance, e_off.instance],
                          KEYS["eks"][0]))
    eks_targets = (e1, e_off)

    # -- keda-amp-scaling: three jobs, $$1:$$2 address rewrite, ${1}:8888 ------------------
    api = fk.FakeKubeAPI(token_file=os.path.join(sa, "token"), certfile=cert, keyfile=key)
    web = Target("127.0.0.41", path="/custom/metrics")
    adot = Target("127.0.0.42", port=8888)
    front_pod = Target("127.0.0.43")
    other = Target("127.0.0.44")
    api.apply("services", service("web", {"prometheus.io/scrape": "true", "prometheus.io/port": str(web.port),
                                          "prometheus.io/path": "/custom/metrics"},
                                  labels={"app": "web", "tier": "edge"}))
    # the endpoint declares 8080; the port annotation moves the address to the real one
    api.apply("endpoints", endpoints("web", web.ip, 8080, "web-1"))
    api.apply("pods", fk.pod("web-1", web.ip, labels={"app": "web"},
                             containers=[("server", "example/web:1", [("metrics", 8080, "TCP")])]))
    api.apply("pods", fk.pod("adot-collector-x1", adot.ip, namespace="amazon-metrics", labels={"app": "adot"},
                             containers=[("otc", "aws-otel-collector:v0.39", [("otlp", 4317, "TCP")])]))
    api.apply("pods", fk.pod("frontend-7d9", front_pod.ip, labels={"app": "frontend"},
                             containers=[("ho11y", "ho11y:1", [("http", front_pod.port, "TCP")])]))
    api.apply("pods", fk.pod("db-0", other.ip, labels={"app": "db"},  # kept by no job
                             containers=[("db", "db:1", [("http", other.port, "TCP")])]))
    api.start()
    hp = h.free_port()
    cfg = derive("keda_amp_scaling.yaml", work, [
        ('"REMOTE_WRITE_URL"', '"%s"' % rw_url), ('"AWSREGION"', '"%s"' % REGION),
        ("  health_check:\n", "  health_check:\n    endpoint: 127.0.0.1:%d\n" % hp)])
    want = expected("kubernetes-service-endpoints", web, target_labels={
        "app": "web", "tier": "edge", "k8s_namespace": "default", "k8s_service": "web", "k8s_node": "node-a",
        "k8s_pod": "web-1", "k8s_container": "server"}, resource=k8s("default", "node-a", "web-1", "server"))
    want |= expected("adot", adot, target_labels={"k8s_namespace": "amazon-metrics", "k8s_pod": "adot-collector-x1"},
                     resource=k8s("amazon-metrics", "node-a", "adot-collector-x1", "otc"))
    want |= expected("ho11y", front_pod, target_labels={"k8s_namespace": "default", "k8s_pod": "frontend-7d9"},
                     resource=k8s("default", "node-a", "frontend-7d9", "ho11y"))
    samples.append(Sample("keda", cfg, env_for("keda", api), hp, api, want,
                          [web.instance, adot.instance, front_pod.instance, other.instance], KEYS["keda"][0]))

    # -- check-config, then run both -------------------------------------------------
    for s in samples:
        rc, out, err = h.run_scrapeship(["check-config", s.cfg], env=s.env)
        chk.ok(rc == 0, "%s: check-config failed: %s" % (s.name, (out + err)[-800:]))
        chk.ok("# health_check: served on 127.0.0.1:%d" % s.health in out, "%s: check-config: no health_check "
               "line:\n%s" % (s.name, out[-600:]))
        ignored = {"eks": ["exporter debug", "extension pprof", "extension zpages"],
                   "keda": ["receiver otlp", "receiver awsxray", "exporter awsxray", "exporter awsemf",
                            "exporter logging", "pipeline traces"]}[s.name]
        for what in ignored:
            chk.ok(any(l.startswith("# ignored: " + what) for l in out.splitlines()),
                   "%s: check-config does not list %r as ignored:\n%s" % (s.name, what, out[-800:]))
        chk.ok(KEYS[s.name][1] not in out + err, "%s: check-config printed the secret key" % s.name)
    for s in samples:
        s.log = os.path.join(work, s.name + ".log")
        s.proc = h.start([h.BIN, "run", "--config", s.cfg, "--web.listen-address", "127.0.0.1:%d" % h.free_port(),
                          "--log.level", "debug"], s.log, env=s.env)
    for s in samples:
        try:
            h.wait_http("http://127.0.0.1:%d/" % s.health, timeout=20, what=s.name + " health_check")
            st, _ = h.http_get("http://127.0.0.1:%d/" % s.health, timeout=5)
            chk.ok(st == 200, "%s: health_check answered %s" % (s.name, st))
        except Exception as e:
            chk.ok(False, "%s: health_check on 127.0.0.1:%d: %s" % (s.name, s.health, e))

    # -- wait until every expected series is in Prometheus (scrape 15 s, batch 5/10 s) --
    deadline = time.time() + WAIT_S
    got = {}
    while time.time() < deadline:
        got = {s.name: stored(prom, s.instances) for s in samples}
        if all(got[s.name] >= s.want for s in samples) or any(s.proc.poll() is not None for s in samples):
            break
        time.sleep(2)
    time.sleep(1)
    got = {s.name: stored(prom, s.instances) for s in samples}
    for s in samples:
        missing, extra = s.want - got[s.name], got[s.name] - s.want
        chk.ok(not missing, "%s: %d series not in Prometheus: %s\n  stored: %s" %
               (s.name, len(missing), sorted(h.fmt_labels(m) for m in missing)[:12],
                sorted(h.fmt_labels(m) for m in got[s.name])[:30]))
        chk.ok(not extra, "%s: series the collector would not ship: %s" %
               (s.name, sorted(h.fmt_labels(m) for m in extra)[:12]))
        print("%s: %d series as the OTel collector ships them" % (s.name, len(got[s.name] & s.want)), flush=True)
    # Prometheus' own names are absent: the rewrite happened before shipping
    for q in ["jobs_done", "adot_jobs_done", "app_requests_total{job=\"kubernetes-service-endpoints\","
              "instance=\"%s\"}" % eks_targets[0].instance, "up{instance=\"%s\"}" % eks_targets[0].instance]:
        chk.ok(not h.prom_query(prom, q)["result"], "Prometheus has %s" % q)
    chk.ok(eks_targets[0].auth == {"Bearer " + SA_TOKEN}, "eks: scrape Authorization %s" % eks_targets[0].auth)
    chk.ok(eks_targets[1].hits == 0, "eks: the service without scrape=true was scraped")
    chk.ok(other.hits == 0 and web.hits > 0 and adot.hits > 0 and front_pod.hits > 0,
           "keda: target hits web %d adot %d frontend %d db %d" % (web.hits, adot.hits, front_pod.hits, other.hits))

    # -- the front: only signed requests, to the workspace, from both instances ---------
    st = json.loads(h.http_get(front + "/__stats", timeout=10)[1])
    chk.ok(st["rejected"] == {}, "the front rejected requests: %s %s" % (st["rejected"], st["rejections"][-3:]))
    chk.ok(set(st["paths"]) == {"/workspaces/%s/api/v1/remote_write" % WS}, "paths: %s" % st["paths"])
    chk.ok(set(st["upstream_status"]) <= {"200", "204"}, "Prometheus answered %s" % st["upstream_status"])
    for s in samples:
        n = st["keys"].get(s.key, {}).get("accepted", 0)
        chk.ok(n >= 1, "%s: no signed request accepted" % s.name)

    for s in samples:
        s.proc.terminate()
    for s in samples:
        rc = h.stop(s.proc, timeout=40)
        log = open(s.log, encoding="utf-8", errors="replace").read()
        chk.ok(rc == 0, "%s: exit status %s:\n%s" % (s.name, rc, log[-1500:]))
        chk.ok("ignored" in log, "%s: no startup warning listing what is ignored" % s.name)
        chk.ok(KEYS[s.name][1] not in log and SA_TOKEN not in log, "%s: a secret is in the log" % s.name)
        s.api.stop()
    print("test_otel_config: %.1f s" % (time.time() - t0), flush=True)
    chk.finish()


if __name__ == "__main__":
    try:
        main()
    except urllib.error.URLError as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
