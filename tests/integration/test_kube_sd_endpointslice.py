"""kubernetes_sd_configs role endpointslice against the fake Kubernetes API.

EndpointSlices (discovery.k8s.io/v1, /apis/discovery.k8s.io/v1/namespaces/NS/
endpointslices) of a Service, with ready and not-ready endpoints, a Pod targetRef, a
node name, a hostname, deprecatedTopology and an appProtocol, plus a slice of another
service that the job's endpointslice selector leaves out. The job maps every
__meta_kubernetes_* label onto the `up` series (labelmap), so the discovered labels
can be compared with what Prometheus 2.42 builds from the same objects
(prom_kube_sd.py, a port of its endpointslice.go), plus the one label scrapeship adds
(__meta_kubernetes_endpointslice_endpoint_node_name, from Prometheus 2.52).

Then a slice gains an endpoint and loses one over WATCH, a slice with a malformed
field is logged by name and counted (its other fields still used), and a
ServiceMonitor with serviceDiscoveryRole: EndpointSlice (the operator's golden case
TestServiceMonitorWithEndpointSliceEnable_Expected) is no longer left out: its targets
get the operator's labels. Every wait is bounded.
"""
import copy
import json
import os
import re
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402
import prom_kube_sd  # noqa: E402
import test_kube_sd as tk  # noqa: E402
import test_promop as tp  # noqa: E402

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promop_cases")
META = "__meta_kubernetes_"


def setup(api, port):
    for name, ip, node in [("web-0", "127.0.5.1", "node-a"), ("web-1", "127.0.5.2", "node-b")]:
        api.apply("pods", fk.pod(name, ip, namespace="shop", node=node, labels={"app": "web"},
                                 containers=[("app", "example/app:1", [("web", port, "TCP"), ("admin", 9901, "TCP")])]))
    svc = fk.service("web", [("web", port, "web")], namespace="shop", labels={"app": "web", "team": "a.b"},
                     selector={"app": "web"})
    svc["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    api.apply("services", svc)
    es = fk.endpointslice("web-abc12", "web", [("127.0.5.1", "web-0", "node-a", True),
                                               ("127.0.5.9", None, None, False)],
                          [("web", port, "TCP")], namespace="shop")
    es["ports"][0]["appProtocol"] = "http"
    es["endpoints"][0]["hostname"] = "web-0"
    es["endpoints"][0]["deprecatedTopology"] = {"topology.kubernetes.io/zone": "eu-west-1a"}
    api.apply("endpointslices", es)
    api.apply("endpointslices", fk.endpointslice("other-xyz", "other", [("127.0.5.7", None, None, True)],
                                                 [("web", port, "TCP")], namespace="shop"))


def expected(api, job, port_ok):
    """Prometheus 2.42's targets of the web slices, as the labelmap shows them on `up`."""
    with api.lock:
        objs = copy.deepcopy(api.objects)
        objs["endpointslices"] = {k: v for k, v in objs["endpointslices"].items()
                                  if v["metadata"]["labels"].get("kubernetes.io/service-name") == "web"}
        ts = prom_kube_sd.targets(objs, "endpointslice", {"shop"})
        nodes = {}
        for es in objs["endpointslices"].values():
            for ep in es.get("endpoints") or []:
                for a in ep["addresses"]:
                    if ep.get("nodeName"):
                        nodes[a] = ep["nodeName"]
    out = {}
    for t in ts:
        lab = {"k8s_" + k[len(META):]: v for k, v in t.items() if k.startswith(META) and v != ""}
        ip = t["__address__"].rsplit(":", 1)[0]
        if META + "endpointslice_name" in t and ip in nodes and META + "endpointslice_port" in t:
            lab["k8s_endpointslice_endpoint_node_name"] = nodes[ip]
        lab.update({"__name__": "up", "job": job, "instance": t["__address__"]})
        out[t["__address__"]] = lab
    return out


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def role_labels(chk, port):
    api = fk.FakeKubeAPI()
    api.start()
    setup(api, port)
    d = h.tmpdir("ss-kube-es-")
    job = {"job_name": "slices", "kubernetes_sd_configs": [{
        "role": "endpointslice", "kubeconfig_file": tk.write_kubeconfig(d, api.url()), "namespaces": {"names": ["shop"]},
        "selectors": [{"role": "endpointslice", "label": "kubernetes.io/service-name=web"}]}],
        "relabel_configs": [{"action": "labelmap", "regex": "__meta_kubernetes_(.+)", "replacement": "k8s_$1"}]}
    cfg = tk.write_config(d, [job])
    web_port = "127.0.5.1:%d" % port
    run = tk.Run(cfg, tag="es")
    want = expected(api, "slices", port)
    ok = run.wait(lambda r: set(want) <= set(r.ups()), timeout=20, what="endpointslice targets")
    chk.ok(ok, "targets: %s, want %s" % (sorted(run.ups()), sorted(want)))
    got = run.ups()
    chk.ok(set(got) == set(want), "target set: %s vs %s" % (sorted(got), sorted(want)))
    for inst, w in sorted(want.items()):
        g = got.get(inst, {})
        diff = {k: (g.get(k), w.get(k)) for k in set(g) | set(w) if g.get(k) != w.get(k)}
        chk.ok(not diff, "%s: labels differ (scrapeship, Prometheus 2.42): %s" % (inst, diff))
    g = got.get(web_port, {})
    chk.ok(g.get("k8s_endpointslice_port_app_protocol") == "http" and g.get("k8s_pod_name") == "web-0" and
           g.get("k8s_endpointslice_endpoint_topology_topology_kubernetes_io_zone") == "eu-west-1a" and
           g.get("k8s_service_label_team") == "a.b", "hand-checked labels of %s: %s" % (web_port, g))
    chk.ok(run.up_ok().keys() >= {web_port}, "the pod behind the slice was not scraped")
    reqs = {(r["path"], r["watch"]) for r in api.requests if r["kind"] == "endpointslices"}
    chk.ok(("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", False) in reqs and
           ("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", True) in reqs,
           "endpointslices not LISTed and WATCHed at the discovery.k8s.io/v1 path: %s" % reqs)
    chk.ok(all(r["query"].get("labelSelector") == "kubernetes.io/service-name=web" for r in api.requests
               if r["kind"] == "endpointslices"), "the endpointslice selector was not sent")

    # WATCH: web-1 joins, the not-ready address leaves
    es = api.objects["endpointslices"][("shop", "web-abc12")]
    es = json.loads(json.dumps(es))
    es["endpoints"] = [es["endpoints"][0], {"addresses": ["127.0.5.2"], "conditions": {"ready": True},
                                            "nodeName": "node-b",
                                            "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}]
    n0 = len(run.records)
    api.apply("endpointslices", es)
    ok = run.wait(lambda r: "127.0.5.2:%d" % port in r.up_ok(n0) and "127.0.5.9:%d" % port in r.ups(n0, stale=True),
                  timeout=10, what="slice update")
    chk.ok(ok, "an updated slice did not change the targets")
    got = run.ups(n0)
    g = got.get("127.0.5.2:%d" % port, {})
    chk.ok(g.get("k8s_pod_name") == "web-1" and g.get("k8s_endpointslice_endpoint_node_name") == "node-b",
           "new endpoint labels: %s" % g)

    # a malformed slice: logged by name, counted, nothing breaks
    api.apply("endpointslices", {"metadata": {"name": "web-bad", "namespace": "shop",
                                              "labels": {"kubernetes.io/service-name": "web"}},
                                 "addressType": "IPv4", "endpoints": 3, "ports": []})
    time.sleep(1.5)
    log = run.log()
    chk.ok("endpointslices shop/web-bad: endpoints is not a list" in log, "malformed slice not logged:\n%s" %
           log[-1500:])
    m = h.http_get("http://%s/metrics" % run.proc.args[run.proc.args.index("--web.listen-address") + 1])[1].decode()
    chk.ok((metric(m, 'scrapeship_sd_kubernetes_invalid_objects_total{scrape_job="slices"}') or 0) >= 1,
           "no invalid-object counter")
    n0 = len(run.records)
    chk.ok(run.wait(lambda r: web_port in r.up_ok(n0), timeout=5, what="scrapes after the bad slice"),
           "scraping stopped after the malformed slice")
    chk.ok(run.stop() == 0, "exit status")
    api.stop()


def service_monitor(chk, port):
    """The golden EndpointSlice ServiceMonitor case: selector foo=bar, alpha in (beta, gamma)."""
    case = json.load(open(os.path.join(CASES, "TestServiceMonitorWithEndpointSliceEnable_Expected.json")))
    mon = case["monitor"]
    mon["spec"]["serviceDiscoveryRole"] = "EndpointSlice"
    mon["spec"]["endpoints"][0]["interval"] = "1s"
    api = fk.FakeKubeAPI()
    api.start()
    api.apply("pods", fk.pod("web-0", "127.0.5.1", namespace="default", labels={"app": "web"},
                             containers=[("app", "example/app:1", [("web", port, "TCP")])]))
    api.apply("services", fk.service("web", [("web", port, "web")], labels={"foo": "bar", "alpha": "beta"}))
    api.apply("endpointslices", fk.endpointslice("web-1", "web", [("127.0.5.1", "web-0", "node-a", True)],
                                                 [("web", port, "TCP")]))
    api.apply("servicemonitors", mon)
    d = h.tmpdir("ss-kube-es-sm-")
    path = os.path.join(d, "scrapeship.yml")
    with open(path, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                        "monitor_discovery": {"kubeconfig_file": tk.write_kubeconfig(d, api.url())}}, f)
    run = tk.Run(path, tag="es-sm")
    inst = "127.0.5.1:%d" % port
    ok = run.wait(lambda r: inst in r.up_ok(), timeout=20, what="EndpointSlice ServiceMonitor target")
    chk.ok(ok, "the EndpointSlice ServiceMonitor's target was not scraped")
    want = {"__name__": "up", "job": "web", "instance": inst, "namespace": "default", "service": "web",
            "pod": "web-0", "container": "app", "endpoint": "web"}
    chk.ok(run.up_ok().get(inst) == want, "labels: %s" % run.up_ok().get(inst))
    chk.ok(" left out:" not in run.log(), "a monitor was left out:\n%s" % run.log()[-1500:])
    chk.ok(run.stop() == 0, "exit status")
    api.stop()


def main():
    chk = h.Check("kube_sd_endpointslice")
    port = h.free_port()
    servers = [tp.Target("web-0", "127.0.5.1", port), tp.Target("web-1", "127.0.5.2", port)]
    role_labels(chk, port)
    service_monitor(chk, port)
    for s in servers:
        s.srv.shutdown()
    chk.finish()


if __name__ == "__main__":
    main()
