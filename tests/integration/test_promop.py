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
    a counter, while the ServiceMonitors keep being scraped;
  * Secrets: a monitor whose Secret does not exist yet is picked up once it is created
    (no change to the monitor), a rotated Secret takes effect at the next
    refresh_interval, a monitor whose Secret GET fails keeps its previous jobs, and a
    slow API server delays the new jobs but never a scrape.
Every wait is bounded.
"""
import base64
import copy
import os
import re
import signal
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
                auth = self.server.auth
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
        self.srv.auth = auth  # the Authorization wanted; change it to rotate the password
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


def start_cluster(port, tag, forbidden=()):
    """The fake API with setup_cluster's objects, ServiceMonitor shop and PodMonitor pods;
    (api, a new temporary directory)."""
    api = fk.FakeKubeAPI()
    api.forbidden = set(forbidden)
    api.start()
    d = h.tmpdir("ss-promop-%s-" % tag)
    setup_cluster(api, port)
    api.apply("servicemonitors", smon("shop", spec=SM_SPEC))
    api.apply("podmonitors", smon("pods", spec=pm_spec(port)))
    return api, d


def cluster_view(chk, port):
    api, d = start_cluster(port, "view")
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

    # update: a changed relabeling gives new labels within seconds; only the changed
    # monitor is translated again (its Secret read), not the PodMonitor beside it
    spec = copy.deepcopy(SM_SPEC)
    spec["endpoints"][0]["relabelings"][0]["replacement"] = "two"
    n0 = len(r.records)
    gets0 = len([q for q in api.requests if q["kind"] == "secrets"])
    t0 = time.time()
    api.apply("servicemonitors", smon("shop", spec=spec))
    ok = r.wait(lambda x: any(lab.get("rule") == "two" for lab in ups(x, n0).values()), timeout=10,
                what="updated relabeling")
    chk.ok(ok, "the updated ServiceMonitor did not change the labels")
    print("update applied in %.1fs" % (time.time() - t0))
    time.sleep(0.5)
    gets = len([q for q in api.requests if q["kind"] == "secrets"]) - gets0
    chk.ok(gets == 2, "a change to one monitor read %d Secret keys, want 2 (its username and password)" % gets)
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
    api, d = start_cluster(port, "node")
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
    # A reload that leaves monitor_discovery as it was keeps it running: no new LIST of
    # monitors or of their targets, and the targets never go stale.
    lists0 = api.count(watch=False)
    n0 = len(r.records)
    r.proc.send_signal(signal.SIGHUP)
    ok = r.wait(lambda x: "configuration reloaded" in x.log(), timeout=10, what="the reload")
    time.sleep(2)
    r.read()
    stale = [x["labels"].get("job") for x in r.records[n0:] if x["stale"]]
    chk.ok(ok and api.count(watch=False) == lists0 and not stale,
           "a reload with the same monitor_discovery: %d new LISTs, stale markers of %s" %
           (api.count(watch=False) - lists0, sorted(set(stale))))
    # a changed section starts again (and relists)
    write_cfg(d, {"node_name": "node-b", "kubeconfig_file": tk.write_kubeconfig(d, api.url()),
                  "refresh_interval": "2m"})
    r.proc.send_signal(signal.SIGHUP)
    ok = r.wait(lambda x: x.log().count("configuration reloaded") >= 2 and api.count(watch=False) > lists0,
                timeout=15, what="the second reload")
    chk.ok(ok, "a reload with a changed monitor_discovery did not list the monitors again")
    r.stop()
    api.stop()


def forbidden(chk, port):
    api, d = start_cluster(port, "403", forbidden={"podmonitors"})
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


def secrets(chk, port, targets):
    """Secrets are read on monitor_discovery's own thread, again every refresh_interval
    (and every 10 s while a monitor fails)."""
    api, d = start_cluster(port, "secrets")
    late = copy.deepcopy(SM_SPEC)
    for k in ("username", "password"):
        late["endpoints"][0]["basicAuth"][k]["name"] = "late-auth"
    late["endpoints"][0]["relabelings"][0]["replacement"] = "late"
    api.apply("servicemonitors", smon("late", spec=late))  # its Secret does not exist yet
    cfg = write_cfg(d, {"kubeconfig_file": tk.write_kubeconfig(d, api.url()), "refresh_interval": "3s"})
    r = tk.Run(cfg, tag="promop-secrets")

    def up_rules(run, since=0, value="1"):
        return {(x["labels"].get("rule"), x["labels"]["instance"]) for x in run.records[since:]
                if x["labels"].get("__name__") == "up" and not x["stale"] and x["value"] == value}

    chk.ok(r.wait(lambda x: len({i for rule, i in up_rules(x) if rule == "one"}) == 2, timeout=20,
                  what="ServiceMonitor shop up"), "ServiceMonitor shop not scraped")
    log = r.log()
    chk.ok(log.count("ServiceMonitor shop/late left out") == 1 and "not found" in log,
           "the monitor with a missing Secret was not logged once by name:\n%s" %
           "\n".join(x for x in log.splitlines() if "late" in x))
    # 1. the Secret appears: picked up without any change to the monitor
    t0 = time.time()
    api.apply("secrets", fk.secret("late-auth", {"user": "scraper", "pass": "pa55-w0rd"}, namespace="shop"))
    n0 = len(r.records)
    ok = r.wait(lambda x: any(rule == "late" for rule, _ in up_rules(x, n0)), timeout=20,
                what="the monitor whose Secret was created later")
    chk.ok(ok, "a monitor whose Secret was created after it was never scraped")
    print("secret created -> scraped in %.1fs" % (time.time() - t0))
    # 2. rotation: the targets want a new password, the Secret gets it; the next
    # refresh_interval re-reads it (the monitor itself does not change)
    new_auth = "Basic " + base64.b64encode(b"scraper:n3w-pass").decode()
    for t in targets:
        t.srv.auth = new_auth
    api.apply("secrets", fk.secret("shop-auth", {"user": "scraper", "pass": "n3w-pass"}, namespace="shop"))
    api.apply("secrets", fk.secret("late-auth", {"user": "scraper", "pass": "n3w-pass"}, namespace="shop"))
    t0 = time.time()
    time.sleep(0.5)
    r.read()
    n0 = len(r.records)
    ok = r.wait(lambda x: {rule for rule, _ in up_rules(x, n0)} >= {"one", "late", None}, timeout=15,
                what="scrapes with the rotated password")
    chk.ok(ok, "a rotated Secret did not take effect: %s" % sorted(up_rules(r, n0), key=str))
    print("secret rotated -> scraped again in %.1fs" % (time.time() - t0))
    # 3. the Secret GET fails (500) while the monitor changes: its jobs keep running on
    # the last good config, and the change lands once the API answers again
    api.secret_error = 500
    spec = copy.deepcopy(SM_SPEC)
    spec["endpoints"][0]["relabelings"][0]["replacement"] = "two"
    api.apply("servicemonitors", smon("shop", spec=spec))
    time.sleep(2)
    r.read()
    n0 = len(r.records)
    time.sleep(3)
    r.read()
    kept = up_rules(r, n0)
    chk.ok({rule for rule, _ in kept} >= {"one", "late"} and not any(rule == "two" for rule, _ in kept),
           "while the Secret GET fails the monitors' previous jobs must keep running: %s" % sorted(kept, key=str))
    log = r.log()
    chk.ok("ServiceMonitor shop/shop keeps its previous jobs" in log,
           "no log line for the monitor that keeps its jobs:\n%s" % log[-2000:])
    m = metrics(r)
    chk.ok(metric(m, "scrapeship_monitor_discovery_invalid_monitors") == 3,
           "invalid_monitors while every Secret GET fails: %s" %
           [x for x in m.splitlines() if "invalid" in x])
    api.secret_error = None
    n0 = len(r.records)
    ok = r.wait(lambda x: any(rule == "two" for rule, _ in up_rules(x, n0)), timeout=20,
                what="the change once Secrets can be read")
    chk.ok(ok, "the monitor change did not land after the API recovered")
    # 4. a slow API server (each Secret GET takes 2.5 s; the changed monitor reads two):
    # the change lands late, and every target keeps its 1 s scrapes meanwhile
    api.secret_delay = 2.5
    spec["endpoints"][0]["relabelings"][0]["replacement"] = "three"
    t0 = time.time()
    r.read()
    n0 = len(r.records)
    api.apply("servicemonitors", smon("shop", spec=spec))
    ok = r.wait(lambda x: any(rule == "three" for rule, _ in up_rules(x, n0)), timeout=30,
                what="the change with a slow API server")
    chk.ok(ok, "the monitor change did not land with a slow API server")
    took = time.time() - t0
    api.secret_delay = 0
    stamps = {}
    for x in r.records[n0:]:
        lab = x["labels"]
        if lab.get("__name__") == "up" and not x["stale"] and lab.get("job") == "shop/pods":
            stamps.setdefault(lab["instance"], []).append(x["timestamp"] / 1000.0)
    gaps = [b - a for v in stamps.values() for a, b in zip(sorted(v), sorted(v)[1:])]
    chk.ok(took > 4.5 and gaps and max(gaps) < 2.5,
           "scrapes stalled while Secrets were read slowly (the change took %.1fs): largest gap between "
           "scrapes of a PodMonitor target %.1fs" % (took, max(gaps) if gaps else -1))
    print("slow API server: change landed in %.1fs, largest scrape gap %.2fs" % (took, max(gaps) if gaps else -1))
    chk.ok("n3w-pass" not in r.log(), "a secret value reached the log")
    # 5. a Secret GET that hangs does not hold up the shutdown
    api.secret_delay = 9
    spec["endpoints"][0]["relabelings"][0]["replacement"] = "four"
    api.apply("servicemonitors", smon("shop", spec=spec))
    time.sleep(1.5)  # the builder is now waiting for the API server
    t0 = time.time()
    rc = r.stop()
    took = time.time() - t0
    chk.ok(rc == 0 and took < 5, "shutdown during a hanging Secret GET: exit %s after %.1fs" % (rc, took))
    print("shutdown during a hanging Secret GET: %.1fs" % took)
    api.secret_delay = 0
    api.stop()
    for t in targets:
        t.srv.auth = AUTH


def main():
    chk = h.Check("promop")
    port = h.free_port()
    targets = [Target("app-0", "127.0.3.1", port, auth=AUTH), Target("app-1", "127.0.3.2", port, auth=AUTH)]
    t0 = time.time()
    cluster_view(chk, port)
    node_local(chk, port)
    forbidden(chk, port)
    secrets(chk, port, targets)
    for t in targets:
        t.srv.shutdown()
    print("promop: %.1fs" % (time.time() - t0))
    chk.finish()


if __name__ == "__main__":
    main()
