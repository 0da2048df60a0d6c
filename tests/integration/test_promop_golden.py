"""ServiceMonitor/PodMonitor translation against prometheus-operator's golden outputs.

Each tests/integration/promop_cases/<Name>.json holds one case of the operator's
promcfg tests (pkg/prometheus/promcfg_test.go): the monitor the Go test builds, written
as the JSON the API server would send, the generator options that test uses (shards=1
with the "$(SHARD)" placeholder, or DaemonSet mode with "$(NODE_NAME)", or the
EndpointSlice role), and `expected`: the scrape_configs of its golden file
(pkg/prometheus/testdata/<Name>.golden). Three checks per case:

  1. the scrape configs scrapeship generates (build/tools/promop_tool translate) equal
     `expected`: job names, kubernetes_sd_configs, every relabel rule and its fields;
  2. when a checkout of prometheus-operator is at hand (SS_PROMOP_REPO, default the
     shared mirror), `expected` still equals the golden file itself;
  3. the labels of a set of discovered targets (endpoints-role and pod-role metadata)
     are the same under scrapeship's config and under the operator's, both run through
     the scrape engine's target code (promop_tool targets), and a few are checked by
     hand. The EndpointSlice case has no labels check here (TARGETS carry endpoints-role
     metadata); test_kube_sd_endpointslice.py runs that monitor against the fake API.
"""
import glob
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promop_cases")
TOOL = os.path.join(h.TOOLS, "promop_tool")
OPREPO = os.environ.get("SS_PROMOP_REPO", "/work/.mirror/prometheus-operator+prometheus-operator/repo")


def norm(x):
    """YAML gives ints where JSON may give strings (regex: 1024): compare as text."""
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    if isinstance(x, list):
        return [norm(v) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    return str(x)


def svc_target(port_name, svc_labels, pod="app-0", phase="Running", node="node-a", addr="127.0.0.1:8080"):
    t = {"__address__": addr, "__meta_kubernetes_namespace": "default",
         "__meta_kubernetes_service_name": "shop",
         "__meta_kubernetes_endpoint_port_name": port_name,
         "__meta_kubernetes_endpoint_address_target_kind": "Pod",
         "__meta_kubernetes_endpoint_address_target_name": pod,
         "__meta_kubernetes_endpoint_node_name": node,
         "__meta_kubernetes_pod_name": pod, "__meta_kubernetes_pod_container_name": "app",
         "__meta_kubernetes_pod_phase": phase,
         "__meta_kubernetes_pod_container_port_name": port_name,
         "__meta_kubernetes_pod_container_port_number": "10240"}
    for k, v in svc_labels.items():
        t["__meta_kubernetes_service_label_" + k] = v
        t["__meta_kubernetes_service_labelpresent_" + k] = "true"
    return t


def pod_target(port_name, pod_labels, port_number="1024", pod="app-1", phase="Running", addr="127.0.0.2:1024"):
    t = {"__address__": addr, "__meta_kubernetes_namespace": "default",
         "__meta_kubernetes_pod_name": pod, "__meta_kubernetes_pod_container_name": "app",
         "__meta_kubernetes_pod_phase": phase,
         "__meta_kubernetes_pod_container_port_name": port_name,
         "__meta_kubernetes_pod_container_port_number": port_number}
    for k, v in pod_labels.items():
        t["__meta_kubernetes_pod_label_" + k] = v
        t["__meta_kubernetes_pod_labelpresent_" + k] = "true"
    return t


TARGETS = [
    svc_target("web", {"group": "group1", "alpha": "beta", "foo": "bar", "example": "ex1", "env": "prod"}),
    svc_target("web", {"group": "group2", "alpha": "delta"}, pod="app-9", addr="127.0.0.9:8080"),
    svc_target("metrics", {"group": "group1"}, pod="app-3", addr="127.0.0.3:9090"),
    svc_target("web", {"group": "group1", "alpha": "gamma"}, phase="Succeeded", pod="app-4", addr="127.0.0.4:8080"),
    pod_target("web", {"group": "group1", "example": "ex2"}),
    pod_target("test", {"group": "group1"}, phase="Failed", pod="app-5", addr="127.0.0.5:1024"),
    pod_target("10240", {"group": "group1"}, port_number="10240", pod="app-6", addr="127.0.0.6:10240"),
    pod_target("web", {"group": "other"}, pod="app-7", addr="127.0.0.7:1024"),
]


def substitute(cfgs):
    """The operator's config reloader replaces $(SHARD) and $(NODE_NAME); so do we here."""
    s = json.dumps(cfgs).replace("$(SHARD)", "0").replace("$(NODE_NAME)", "node-a")
    return {"scrape_configs": json.loads(s)}


def labels_under(d, name, cfg):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    tpath = os.path.join(d, "targets.json")
    with open(tpath, "w") as f:
        json.dump(TARGETS, f)
    r = subprocess.run([TOOL, "targets", path, tpath], capture_output=True, text=True, timeout=60)
    if r.returncode:
        return None, r.stderr.strip()
    return json.loads(r.stdout), None


def main():
    chk = h.Check("promop_golden")
    d = h.tmpdir("ss-promop-")
    files = sorted(glob.glob(os.path.join(CASES, "*.json")))
    chk.ok(len(files) >= 6, "fewer than 6 golden cases: %d" % len(files))
    have_repo = os.path.isdir(OPREPO)
    for path in files:
        name = os.path.basename(path)[:-5]
        case = json.load(open(path))
        r = subprocess.run([TOOL, "translate", path], capture_output=True, text=True, timeout=60)
        if not chk.ok(r.returncode == 0, "%s: translate failed: %s" % (name, r.stderr)):
            continue
        got = json.loads(r.stdout)["scrape_configs"]
        same = norm(got) == norm(case["expected"])
        if not chk.ok(same, "%s: generated config differs from the golden" % name):
            print(yaml.safe_dump({"got": got, "want": case["expected"]}, sort_keys=False))
        # Key order too, rule by rule, as the operator writes them.
        if same:
            orders = [list(a.keys()) == list(b.keys()) for ga, gb in zip(got, case["expected"])
                      for a, b in zip(ga["relabel_configs"], gb["relabel_configs"])]
            chk.ok(all(orders), "%s: relabel rule keys in another order" % name)
        if have_repo:
            g = subprocess.run(["git", "-C", OPREPO, "show", "HEAD:" + case["golden"]], capture_output=True,
                               text=True, timeout=60)
            if g.returncode == 0:
                chk.ok(norm(yaml.safe_load(g.stdout)["scrape_configs"]) == norm(case["expected"]),
                       "%s: expected no longer matches %s" % (name, case["golden"]))
        if got and got[0]["kubernetes_sd_configs"][0]["role"] == "endpointslice":
            continue
        ours, e1 = labels_under(d, name + "-ours.json", substitute(got))
        theirs, e2 = labels_under(d, name + "-operator.json", substitute(case["expected"]))
        if not chk.ok(ours is not None and theirs is not None, "%s: targets: %s %s" % (name, e1, e2)):
            continue
        chk.ok(ours == theirs, "%s: target labels differ:\n%s\n%s" % (name, ours, theirs))
        kept = [t for ts in ours.values() for t in ts if isinstance(t, dict)]
        chk.ok(len(kept) >= 1, "%s: no target kept" % name)
        print("%s: %d configs, %d of %d targets kept" % (name, len(got), len(kept), len(TARGETS)))
        if name == "SettingHonorTimestampsInServiceMonitor":
            want = {"container": "app", "endpoint": "web", "env": "prod", "example": "ex1",
                    "instance": "127.0.0.1:8080", "job": "shop", "namespace": "default", "pod": "app-0",
                    "service": "shop"}
            chk.ok(ours["serviceMonitor/default/testservicemonitor1/0"][0] == want,
                   "service monitor labels: %s" % ours["serviceMonitor/default/testservicemonitor1/0"][0])
        if name == "PodTargetLabelsFromPodMonitor":
            want = {"container": "app", "endpoint": "web", "example": "ex2", "instance": "127.0.0.2:1024",
                    "job": "default/testpodmonitor1", "namespace": "default", "pod": "app-1"}
            chk.ok(want in ours["podMonitor/default/testpodmonitor1/0"], "pod monitor labels: %s" % ours)
    chk.finish()


if __name__ == "__main__":
    main()
