"""kubernetes_sd_configs end to end: scrapeship against a fake Kubernetes API server
(fake_kube_api.py) with pods whose IPs are 127.0.0.x and whose container ports are
real HTTP servers, so every discovered target is really scraped.

  * node agent: the job and relabel_configs of deploy/overlays/daemonset/scrapeship.yaml
    (the standard prometheus.io/scrape, /port, /path, /scheme block and the
    spec.nodeName=${NODE_NAME} field selector), reached through a kubeconfig over
    http. Targets and labels follow ADDED / MODIFIED / DELETED events; a removed pod's
    series get stale markers; a 410 Gone (history compacted while a pod was deleted)
    forces a relist that catches the deletion; a cut connection is resumed with a WATCH
    from the last resourceVersion, without a relist.
  * in-cluster: https with the fake's self-signed CA as the service account's ca.crt,
    the service account token (re-read on every request: after rotation the new one is
    sent), namespaces.own_namespace.
  * sharding: deploy/overlays/sharded/scrapeship.yaml's hashmod pair run as two
    replicas (SHARD=0, SHARD=1) splits the targets with no overlap and no gap.

scrapeship runs as `scrapeship run --config F --stdout --format json`; its JSON lines
are read back as they are written. Every wait is bounded.
"""
import copy
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402

DEPLOY = os.path.join(h.REPO, "deploy", "overlays")


# ---- scrape targets: one HTTP(S) server per pod IP ---------------------------------

class Target:
    """Serves `kube_test_up{served_by=NAME} 1` on ip:port at path (optionally https)."""

    def __init__(self, name, ip, path="/metrics", tls=None):
        self.name, self.ip, self.path = name, ip, path
        body = ("# TYPE kube_test_up gauge\nkube_test_up{served_by=\"%s\"} 1\n" % name).encode()
        want = path

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != want:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer((ip, 0), H)
        self.srv.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


# ---- scrapeship's output -----------------------------------------------------------

class Run:
    """A `scrapeship run --stdout --format json` process whose output is parsed as it grows."""

    def __init__(self, cfg_path, env=None, tag="run"):
        d = h.tmpdir("ss-kube-%s-" % tag)
        self.out_path = os.path.join(d, "out.jsonl")
        self.err_path = os.path.join(d, "err.log")
        self.out = open(self.out_path, "wb")
        self.proc = h.start([h.BIN, "run", "--config", cfg_path, "--stdout", "--format", "json",
                             "--web.listen-address", "127.0.0.1:%d" % h.free_port(), "--log.level", "debug"],
                            self.err_path, env=env, stdout=self.out)
        self.records = []
        self._pos = 0

    def read(self):
        with open(self.out_path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        cut = data.rfind(b"\n")
        if cut < 0:
            return self.records
        self._pos += cut + 1
        for line in data[:cut].splitlines():
            if line.strip():
                self.records.append(json.loads(line))
        return self.records

    def wait(self, pred, timeout=15, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.read()
            if pred(self):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        print("timed out waiting for %s; scrapeship log tail:\n%s" % (what, self.log()[-3000:]), flush=True)
        return False

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        rc = h.stop(self.proc)
        self.out.close()
        self.read()
        return rc

    # views over the records since index `since`
    def ups(self, since=0, stale=False):
        """{instance: labels} of the `up` series seen (live or stale)."""
        return {r["labels"]["instance"]: r["labels"] for r in self.records[since:]
                if r["labels"].get("__name__") == "up" and r["stale"] == stale}

    def up_ok(self, since=0):
        return {r["labels"]["instance"]: r["labels"] for r in self.records[since:]
                if r["labels"].get("__name__") == "up" and not r["stale"] and r["value"] == "1"}

    def served(self, since=0, stale=False):
        return {r["labels"]["served_by"] for r in self.records[since:]
                if r["labels"].get("__name__") == "kube_test_up" and r["stale"] == stale}


def write_kubeconfig(d, server, user=None):
    path = os.path.join(d, "kubeconfig")
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "fake", "cluster": {"server": server}}],
           "users": [{"name": "u", "user": user or {}}],
           "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "u"}}]}
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return path


def deploy_job(overlay, job="kubernetes-pods"):
    with open(os.path.join(DEPLOY, overlay, "scrapeship.yaml")) as f:
        doc = yaml.safe_load(f)
    return next(j for j in doc["scrape_configs"] if j["job_name"] == job)


def write_config(d, jobs, name="scrapeship.yml"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                        "scrape_configs": jobs}, f, sort_keys=False)
    return path


def annotated(name, target, node="node-a", port_annotation=False, path=None, scheme=None,
              labels=None, declared_port=None, phase="Running", namespace="default"):
    ann = {"prometheus.io/scrape": "true"}
    if port_annotation:
        ann["prometheus.io/port"] = str(target.port)
    if path:
        ann["prometheus.io/path"] = path
    if scheme:
        ann["prometheus.io/scheme"] = scheme
    port = declared_port if declared_port is not None else target.port
    return fk.pod(name, target.ip, namespace=namespace, node=node, phase=phase,
                  labels=labels or {"app": name}, annotations=ann,
                  containers=[("app", "example/%s:1" % name, [("metrics", port, "TCP")])],
                  owner=("ReplicaSet", name + "-rs"))


def make_cert(d):
    cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


# ---- the node agent ------------------------------------------------------------------

def node_agent(chk, tls):
    api = fk.FakeKubeAPI()
    ta = Target("pod-a", "127.0.0.11")
    tb = Target("pod-b", "127.0.0.12", path="/custom/metrics")
    tc = Target("pod-c", "127.0.0.13", tls=tls)
    td = Target("pod-d", "127.0.0.14")
    te = Target("pod-e", "127.0.0.15")
    tf = Target("pod-f", "127.0.0.16")
    tg = Target("pod-g", "127.0.0.17")
    th = Target("pod-h", "127.0.0.18")
    api.apply("pods", annotated("pod-a", ta, labels={"app": "a", "version": "1"}))
    # declares 8080 (nothing there) but asks for its real port and a custom path
    api.apply("pods", annotated("pod-b", tb, port_annotation=True, path="/custom/metrics",
                                declared_port=8080))
    api.apply("pods", annotated("pod-c", tc, port_annotation=True, scheme="https", namespace="shop"))
    pod_d = annotated("pod-d", td)
    del pod_d["metadata"]["annotations"]["prometheus.io/scrape"]  # not opted in
    api.apply("pods", pod_d)
    api.apply("pods", annotated("pod-e", te, node="node-b"))  # another node
    api.apply("pods", annotated("pod-f", tf, phase="Succeeded"))
    api.start()

    d = h.tmpdir("ss-kube-agent-")
    job = deploy_job("daemonset")
    sd = job["kubernetes_sd_configs"][0]
    chk.ok(sd["selectors"][0]["field"] == "spec.nodeName=${NODE_NAME}",
           "daemonset config lost its node selector: %r" % sd)
    sd["kubeconfig_file"] = write_kubeconfig(d, api.url())
    job["tls_config"] = {"insecure_skip_verify": True}  # pod-c serves a self-signed cert
    cfg = write_config(d, [job])
    env = dict(os.environ, NODE_NAME="node-a")
    rc, _, err = h.run_scrapeship(["check-config", cfg], env=env)
    chk.ok(rc == 0, "check-config: %s" % err)

    run = Run(cfg, env=env, tag="agent")
    want = {"127.0.0.11:%d" % ta.port, "127.0.0.12:%d" % tb.port, "127.0.0.13:%d" % tc.port}
    ok = run.wait(lambda r: set(r.up_ok()) >= want, what="pods a, b, c up")
    chk.ok(ok, "annotated pods not all scraped: up=1 for %s" % sorted(run.up_ok()))
    time.sleep(1.5)  # more scrapes: anything not wanted would show up by now
    run.read()
    chk.ok(set(run.ups()) == want, "unexpected targets: %s" % sorted(set(run.ups()) ^ want))
    chk.ok(run.served() == {"pod-a", "pod-b", "pod-c"}, "scraped: %s" % sorted(run.served()))
    la = run.ups()["127.0.0.11:%d" % ta.port]
    for k, v in {"job": "kubernetes-pods", "namespace": "default", "pod": "pod-a", "node": "node-a",
                 "app": "a", "version": "1"}.items():
        chk.ok(la.get(k) == v, "pod-a label %s=%r, want %r (labels %s)" % (k, la.get(k), v, la))
    chk.ok(not any(k.startswith("__") and k != "__name__" for k in la), "meta labels leaked: %s" % la)
    chk.ok(run.ups()["127.0.0.13:%d" % tc.port].get("namespace") == "shop", "pod-c namespace")
    # the node selector went to the API server
    lists = [r for r in api.requests if r["kind"] == "pods" and not r["watch"]]
    chk.ok(lists and lists[0]["query"].get("fieldSelector") == "spec.nodeName=node-a",
           "LIST without the node field selector: %s" % (lists[:1],))

    # ADDED
    mark = len(run.read())
    api.apply("pods", annotated("pod-g", tg))
    chk.ok(run.wait(lambda r: "pod-g" in r.served(mark), what="pod-g scraped"), "added pod not scraped")

    # MODIFIED: a label change makes a new target; the old one's series go stale
    mark = len(run.read())
    api.apply("pods", annotated("pod-a", ta, labels={"app": "a", "version": "2"}))
    ok = run.wait(lambda r: any(l.get("version") == "2" for l in r.up_ok(mark).values()) and
                  any(l.get("version") == "1" for l in r.ups(mark, stale=True).values()),
                  what="pod-a relabelled")
    chk.ok(ok, "modified pod: no new series with version=2 and stale version=1")

    # DELETED: stale markers for every series of the pod
    mark = len(run.read())
    api.delete("pods", "default", "pod-g")
    ok = run.wait(lambda r: "pod-g" in r.served(mark, stale=True) and
                  "127.0.0.17:%d" % tg.port in r.ups(mark, stale=True), what="pod-g stale markers")
    chk.ok(ok, "deleted pod: no stale markers")
    # a scrape that finished between the mark and the DELETE may legitimately print
    # pod-g samples; after its stale markers, nothing more may come
    after_stale = len(run.read())
    time.sleep(1.5)
    run.read()
    chk.ok("pod-g" not in run.served(after_stale), "deleted pod still scraped")

    # 410 Gone: pod-b disappears while the history is compacted; only a relist sees it
    lists_before = sum(1 for r in api.requests if r["kind"] == "pods" and not r["watch"])
    mark = len(run.read())
    with api.lock:
        del api.objects["pods"][("default", "pod-b")]
    api.compact()
    ok = run.wait(lambda r: "pod-b" in r.served(mark, stale=True), what="pod-b gone after relist")
    chk.ok(ok, "410 Gone: the pod deleted during compaction was not removed")
    lists_after = sum(1 for r in api.requests if r["kind"] == "pods" and not r["watch"])
    chk.ok(lists_after == lists_before + 1, "410 Gone: %d LISTs, want %d" % (lists_after, lists_before + 1))
    chk.ok(any(r.get("gone") for r in api.requests), "the fake never answered 410")
    chk.ok("is gone (410); relisting" in run.log(), "no relist logged")

    # dropped connection: a WATCH from the last RV, no relist
    time.sleep(0.5)
    last_rv = api.rv
    lists_before = lists_after
    api.drop()
    ok = False
    for _ in range(100):
        if any(r["watch"] and r["query"].get("resourceVersion") == str(last_rv) for r in api.requests):
            ok = True
            break
        time.sleep(0.1)
    chk.ok(ok, "no WATCH from resourceVersion %d after the drop: %s" %
           (last_rv, [r["query"].get("resourceVersion") for r in api.requests if r["watch"]]))
    mark = len(run.read())
    api.apply("pods", annotated("pod-h", th))
    chk.ok(run.wait(lambda r: "pod-h" in r.served(mark), what="pod-h after the drop"), "pod added after a drop not scraped")
    lists_after = sum(1 for r in api.requests if r["kind"] == "pods" and not r["watch"])
    chk.ok(lists_after == lists_before, "the drop caused a relist (%d LISTs)" % (lists_after - lists_before))

    chk.ok(run.stop() == 0, "scrapeship exit status")
    # the remaining targets' series were marked stale at shutdown or are live: never both lost
    api.stop()


# ---- in cluster ----------------------------------------------------------------------

def in_cluster(chk, tls):
    d = h.tmpdir("ss-kube-incluster-")
    sa = os.path.join(d, "serviceaccount")
    os.makedirs(sa)
    token = os.path.join(sa, "token")
    with open(token, "w") as f:
        f.write("tok-1\n")
    with open(os.path.join(sa, "namespace"), "w") as f:
        f.write("monitoring")
    with open(tls[0]) as src, open(os.path.join(sa, "ca.crt"), "w") as dst:
        dst.write(src.read())
    api = fk.FakeKubeAPI(token_file=token, certfile=tls[0], keyfile=tls[1])
    t1 = Target("mon-1", "127.0.0.21")
    t2 = Target("other-1", "127.0.0.22")
    t3 = Target("mon-2", "127.0.0.23")
    api.apply("pods", annotated("mon-1", t1, namespace="monitoring"))
    api.apply("pods", annotated("other-1", t2, namespace="other"))
    api.start()
    cfg = write_config(d, [{"job_name": "in-cluster", "kubernetes_sd_configs": [
        {"role": "pod", "namespaces": {"own_namespace": True}}]}])
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api.port),
               SCRAPESHIP_KUBE_SA_DIR=sa)
    run = Run(cfg, env=env, tag="incluster")
    ok = run.wait(lambda r: "mon-1" in r.served(), what="in-cluster discovery")
    chk.ok(ok, "in-cluster: own-namespace pod not scraped")
    chk.ok("other-1" not in run.served(), "in-cluster: a pod of another namespace was scraped")
    paths = {r["path"] for r in api.requests}
    chk.ok(paths == {"/api/v1/namespaces/monitoring/pods"}, "in-cluster: requested %s" % sorted(paths))
    chk.ok(all(r["auth"] == "Bearer tok-1" for r in api.requests), "in-cluster: token not sent")

    # rotation: the kubelet replaces the token file; the next request must carry it
    with open(token + ".new", "w") as f:
        f.write("tok-2\n")
    os.replace(token + ".new", token)
    for _ in range(50):
        if api.active_watches():
            break
        time.sleep(0.1)
    api.drop()
    mark = len(run.read())
    api.apply("pods", annotated("mon-2", t3, namespace="monitoring"))
    ok = run.wait(lambda r: "mon-2" in r.served(mark), what="discovery after token rotation")
    chk.ok(ok, "in-cluster: nothing discovered after the token rotated")
    chk.ok(any(r["auth"] == "Bearer tok-2" for r in api.requests), "rotated token never sent")
    chk.ok(not any(r["status"] == 401 for r in api.requests), "a request was refused (stale token?)")
    chk.ok(run.stop() == 0, "in-cluster: exit status")
    api.stop()


# ---- sharding --------------------------------------------------------------------------

def sharding(chk):
    api = fk.FakeKubeAPI()
    n = 10
    for i in range(n):
        api.apply("pods", fk.pod("shard-%d" % i, "127.0.1.%d" % (i + 1), annotations={"prometheus.io/scrape": "true"},
                                 containers=[("app", "x:1", [("m", 9100 + i, "TCP")])]))
    api.start()
    d = h.tmpdir("ss-kube-shard-")
    job = deploy_job("sharded")
    sd = job["kubernetes_sd_configs"][0]
    sd["kubeconfig_file"] = write_kubeconfig(d, api.url())
    job["scrape_timeout"] = "200ms"
    cfg = write_config(d, [job])
    runs = [Run(cfg, env=dict(os.environ, SHARD=str(s), SHARDS="2"), tag="shard%d" % s) for s in range(2)]
    every = {"127.0.1.%d:%d" % (i + 1, 9100 + i) for i in range(n)}
    ok = all(r.wait(lambda x: len(x.ups()) > 0, what="shard targets") for r in runs)
    time.sleep(2.5)
    got = [set(r.read() and r.ups()) for r in runs]
    for r in runs:
        r.stop()
    chk.ok(ok and got[0] and got[1], "a shard scraped nothing: %s" % got)
    chk.ok(not (got[0] & got[1]), "shards overlap: %s" % sorted(got[0] & got[1]))
    chk.ok(got[0] | got[1] == every, "shards miss targets: %s" % sorted(every - (got[0] | got[1])))
    print("sharding: shard0 %d targets, shard1 %d targets" % (len(got[0]), len(got[1])))
    api.stop()


def main():
    chk = h.Check("kube_sd")
    tls = make_cert(h.tmpdir("ss-kube-tls-"))
    t0 = time.time()
    node_agent(chk, tls)
    in_cluster(chk, tls)
    sharding(chk)
    print("kube_sd: %.1fs" % (time.time() - t0))
    chk.finish()


if __name__ == "__main__":
    main()
