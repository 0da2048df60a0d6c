"""monitor_discovery end to end: ServiceMonitors and PodMonitors served by the fake
Kubernetes API (fake_kube_api.py), their Services, Endpoints, Pods and Secrets, and
real HTTP targets on 127.0.3.x, scraped by `scrapeship run --stdout --format json`.

  * cluster view: the monitors' label selector (release=prod) and namespaces (shop,
    tools) pick which monitors are read; a ServiceMonitor with a named port, jobLabel,
    targetLabels, a user relabeling and basicAuth from a Secret, and a PodMonitor with
    a numeric port and podTargetLabels, give the labels prometheus-operator's config
    gives; a malformed monitor is logged by name and counted and changes nothing else;
    adding, changing and deleting monitors over WATCH changes the targets within
    seconds, also after a 410 Gone forces a relist;
  * node-local (DaemonSet): node_name keeps only the pods on that node;
  * missing RBAC: a 403 on the PodMonitor list gives one log line naming the rule and
    a counter, while the ServiceMonitors keep being scraped.
Every wait is bounded.
"""
import base64
import copy
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402
import test_kube_sd as tk  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"scraper:pa55-w0rd").decode()


class Target:
    """Serves `promop_test_up{served_by=NAME} 1` on ip:port; with auth, only to that Authorization."""

    def __init__(self, name, ip, port, auth=None):
        body = ('# TYPE promop_test_up gauge\npromop_test_up{served_by="%s"} 1\n' % name).encode()

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                if auth and self.headers.get("Authorization") != auth:
                    self.send_response(401)
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

        self.srv = ThreadingHTTPServer((ip, port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def smon(name, ns="shop", labels=None, spec=None):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {"release": "prod"}}, "spec": spec}


def write_cfg(d, md, name="scrapeship.yml"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                        "monitor_discovery": md}, f, sort_keys=False)
    return path


def metrics(run):
    args = run.proc.args
    addr = args[args.index("--web.listen-address") + 1]
    try:
        return h.http_get("http://%s/metrics" % addr)[1].decode()
    except Exception as e:  # noqa: BLE001
        return str(e)


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def setup_cluster(api, port):
    for i, (node, ip) in enumerate([("node-a", "127.0.3.1"), ("node-b", "127.0.3.2")]):
        api.apply("pods", fk.pod("app-%d" % i, ip, namespace="shop", node=node,
                                 labels={"app": "shop", "tier": "web", "owner": "team-%d" % i},
                                 containers=[("app", "example/app:1", [("web", port, "TCP")])]))
    api.apply("services", fk.service("shop", [("web", port, "web")], namespace="shop",
                                     labels={"app": "shop", "team": "payments"}, selector={"app": "shop"}))
    api.apply("endpoints", fk.endpoints("shop", [("127.0.3.1", "app-0", "node-a"), ("127.0.3.2", "app-1", "node-b")],
                                        [("web", port)], namespace="shop", labels={"app": "shop", "team": "payments"}))
    api.apply("secrets", fk.secret("shop-auth", {"user": "scraper", "pass": "pa55-w0rd"}, namespace="shop"))


SM_SPEC = {"selector": {"matchLabels": {"app": "shop"}}, "jobLabel": "app", "targetLabels": ["team"],
           "endpoints": [{"port": "web", "interval": "1s",
                          "basicAuth": {"username": {"name": "shop-auth", "key": "user"},
                                        "password": {"name": "shop-auth", "key": "pass"}},
                          "relabelings": [{"targetLabel": "rule", "replacement": "one"}]}]}


def pm_spec(port):
    return {"selector": {"matchLabels": {"tier": "web"}}, "podTargetLabels": ["owner"],
            "podMetricsEndpoints": [{"portNumber": port, "interval": "1s",
                                     "basicAuth": {"username": {"name": "shop-auth", "key": "user"},
                                                   "password": {"name": "shop-auth", "key": "pass"}}}]}


def cluster_view(chk, port):
    api = fk.FakeKubeAPI()
    api.start()
    d = h.tmpdir("ss-promop-")
    setup_cluster(api, port)
    api.apply("servicemonitors", smon("shop", spec=SM_SPEC))
    api.apply("podmonitors", smon("pods", spec=pm_spec(port)))
    # not read: wrong label, wrong namespace
    api.apply("servicemonitors", smon("other", labels={"release": "dev"}, spec=SM_SPEC))
    api.apply("servicemonitors", smon("elsewhere", ns="default", spec=SM_SPEC))
    # read but malformed: logged and counted, nothing else changes
    api.apply("servicemonitors", smon("broken", ns="tools", spec={"endpoints": 3}))
    cfg = write_cfg(d, {"label_selector": "release=prod", "namespaces": ["shop", "tools"],
                        "kubeconfig_file": tk.write_kubeconfig(d, api.url())})
    r = tk.Run(cfg, tag="promop")

    def ups(run, since=0):
        return {(lab["job"], lab["instance"]): lab for lab in run.up_ok(since).values()} if False else {
            (x["labels"]["job"], x["labels"]["instance"]): x["labels"] for x in run.records[since:]
            if x["labels"].get("__name__") == "up" and not x["stale"] and x["value"] == "1"}

    ok = r.wait(lambda x: len(ups(x)) >= 4, timeout=20, what="4 targets up")
    got = ups(r)
    chk.ok(ok, "monitor targets not all up: %s" % sorted(got))
    sm_lab = got.get(("shop", "127.0.3.1:%d" % port), {})
    want = {"__name__": "up", "job": "shop", "instance": "127.0.3.1:%d" % port, "namespace": "shop",
            "service": "shop", "pod": "app-0", "container": "app", "endpoint": "web", "team": "payments",
            "rule": "one"}
    chk.ok(sm_lab == want, "ServiceMonitor target labels: %s" % sm_lab)
    pm_lab = got.get(("shop/pods", "127.0.3.2:%d" % port), {})
    want = {"__name__": "up", "job": "shop/pods", "instance": "127.0.3.2:%d" % port, "namespace": "shop",
            "pod": "app-1", "container": "app", "owner": "team-1"}
    chk.ok(pm_lab == want, "PodMonitor target labels: %s" % pm_lab)
    chk.ok({j for j, _ in got} == {"shop", "shop/pods"}, "unexpected jobs: %s" % sorted(got))
    log = r.log()
    chk.ok("ServiceMonitor tools/broken left out" in log and "endpoints must be a list" in log,
           "no error naming the broken monitor:\n%s" % log[-2000:])
    chk.ok("pa55-w0rd" not in log, "a secret value reached the log")
    m = metrics(r)
    chk.ok(metric(m, 'scrapeship_monitor_discovery_monitors{kind="ServiceMonitor"}') == 1 and
           metric(m, "scrapeship_monitor_discovery_invalid_monitors") == 1 and
           (metric(m, "scrapeship_monitor_discovery_invalid_total") or 0) >= 1,
           "monitor self-metrics:\n%s" % "\n".join(x for x in m.splitlines() if "monitor_discovery" in x))
    chk.ok(metric(m, 'scrapeship_targets{scrape_job="serviceMonitor/shop/shop/0"}') == 2,
           "scrapeship_targets for the generated job: %s" %
           [x for x in m.splitlines() if x.startswith("scrapeship_targets")])

    # update: a changed relabeling gives new labels within seconds
    spec = copy.deepcopy(SM_SPEC)
    spec["endpoints"][0]["relabelings"][0]["replacement"] = "two"
    n0 = len(r.records)
    t0 = time.time()
    api.apply("servicemonitors", smon("shop", spec=spec))
    ok = r.wait(lambda x: any(lab.get("rule") == "two" for lab in ups(x, n0).values()), timeout=10,
                what="updated relabeling")
    chk.ok(ok, "the updated ServiceMonitor did not change the labels")
    print("update applied in %.1fs" % (time.time() - t0))
    # delete: the PodMonitor's targets go stale
    n0 = len(r.records)
    api.delete("podmonitors", "shop", "pods")
    ok = r.wait(lambda x: any(rec["labels"].get("job") == "shop/pods" and rec["stale"] for rec in x.records[n0:]),
                timeout=10, what="stale markers of the deleted PodMonitor")
    chk.ok(ok, "deleting the PodMonitor did not stop its targets")
    # add after a compaction (410 Gone on re-watch: relist)
    api.compact()
    n0 = len(r.records)
    api.apply("podmonitors", smon("pods2", spec=dict(pm_spec(port),
                                                                 namespaceSelector={"any": True})))
    ok = r.wait(lambda x: any(j == "shop/pods2" for j, _ in ups(x, n0)), timeout=15, what="PodMonitor after 410")
    chk.ok(ok, "a PodMonitor added after a compaction was not picked up")
    m = metrics(r)
    chk.ok((metric(m, "scrapeship_monitor_discovery_relists_total") or 0) >= 1, "no relist counted after 410")
    r.stop()
    api.stop()


def node_local(chk, port):
    api = fk.FakeKubeAPI()
    api.start()
    d = h.tmpdir("ss-promop-node-")
    setup_cluster(api, port)
    api.apply("servicemonitors", smon("shop", spec=SM_SPEC))
    api.apply("podmonitors", smon("pods", spec=pm_spec(port)))
    cfg = write_cfg(d, {"node_name": "node-b", "kubeconfig_file": tk.write_kubeconfig(d, api.url())})
    r = tk.Run(cfg, tag="promop-node")
    r.wait(lambda x: len(x.up_ok()) >= 1, timeout=15, what="node-local targets")
    time.sleep(2.5)
    r.read()
    insts = {(x["labels"]["job"], x["labels"]["instance"]) for x in r.records
             if x["labels"].get("__name__") == "up" and not x["stale"]}
    want = {("shop", "127.0.3.2:%d" % port), ("shop/pods", "127.0.3.2:%d" % port)}
    chk.ok(insts == want, "node-local targets: %s" % sorted(insts))
    pod_reqs = [q for q in api.requests if q["kind"] == "pods"]
    chk.ok(pod_reqs and all(q["query"].get("fieldSelector") == "spec.nodeName=node-b" for q in pod_reqs),
           "pods not listed with the node's field selector: %s" % [q["query"] for q in pod_reqs][:3])
    r.stop()
    api.stop()


def forbidden(chk, port):
    api = fk.FakeKubeAPI()
    api.start()
    api.forbidden = {"podmonitors"}
    d = h.tmpdir("ss-promop-403-")
    setup_cluster(api, port)
    api.apply("servicemonitors", smon("shop", spec=SM_SPEC))
    api.apply("podmonitors", smon("pods", spec=pm_spec(port)))
    cfg = write_cfg(d, {"kubeconfig_file": tk.write_kubeconfig(d, api.url())})
    r = tk.Run(cfg, tag="promop-403")
    ok = r.wait(lambda x: len(x.up_ok()) >= 2, timeout=20, what="ServiceMonitor targets despite 403")
    chk.ok(ok, "ServiceMonitor targets not scraped while PodMonitors are forbidden")
    time.sleep(1.5)
    log = r.log()
    lines = [x for x in log.splitlines() if "403 Forbidden" in x and "podmonitors" in x]
    chk.ok(len(lines) == 1, "want one 403 log line, got %d:\n%s" % (len(lines), "\n".join(lines[:3])))
    chk.ok(lines and "resources: [podmonitors], verbs: [list, watch]" in lines[0], "403 line names no rule: %s" % lines)
    m = metrics(r)
    chk.ok((metric(m, "scrapeship_monitor_discovery_forbidden_total") or 0) >= 1, "no forbidden counter")
    r.stop()
    api.stop()


def main():
    chk = h.Check("promop")
    port = h.free_port()
    targets = [Target("app-0", "127.0.3.1", port, auth=AUTH), Target("app-1", "127.0.3.2", port, auth=AUTH)]
    t0 = time.time()
    cluster_view(chk, port)
    node_local(chk, port)
    forbidden(chk, port)
    for t in targets:
        t.srv.shutdown()
    print("promop: %.1fs" % (time.time() - t0))
    chk.finish()


if __name__ == "__main__":
    main()
