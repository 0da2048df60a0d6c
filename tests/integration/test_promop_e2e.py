"""monitor_discovery end to end against real Prometheus 2.42 servers.

Real HTTP targets on 127.0.4.x are Pods, a Service and its Endpoints in the fake
Kubernetes API (fake_kube_api.py), selected by a ServiceMonitor and a PodMonitor:
the monitors of two of prometheus-operator's golden cases (promop_cases/
SettingHonorTimestampsInServiceMonitor.json and PodTargetLabelsFromPodMonitor.json).

  * scrapeship reads the monitors (monitor_discovery), discovers and scrapes the
    targets, and ships to Prometheus A (--web.enable-remote-write-receiver);
  * Prometheus B scrapes the same targets with the operator's config for the same
    monitors: the golden files' scrape_configs (`expected` of the cases, which
    test_promop_golden.py checks against the golden files and against scrapeship's
    translation), verbatim but for three substitutions: $(SHARD) -> 0 (the operator's
    config reloader does this), interval 30s -> 1s in monitor and config alike (the
    operator copies it verbatim), and kubernetes_sd_configs -> http_sd_configs.

The last one because Debian's /usr/bin/prometheus 2.42.0+ds is built without the
kubernetes service discovery: with kubernetes_sd_configs it refuses the config
("field kubernetes_sd_configs not found in type config.ScrapeConfig"), so it cannot
talk to the fake API itself. The http_sd endpoint here serves what Prometheus 2.42's
kubernetes_sd would discover from the fake API's objects, computed by
prom_kube_sd.py (a port of its discovery/kubernetes code, independent of
scrapeship's), for the role and namespaces of each job's kubernetes_sd_configs. The
relabeling, scraping and storage on that side are Prometheus' own.

Then the series (label sets) of both Prometheus servers must be the same, and the
deterministic values (the targets' samples, up, scrape_samples_*) equal. A pod that
is not Running and a container port the monitors do not name are served as well, so
that a target kept by one side only would show. Everything listens on 127.0.x.x;
every wait is bounded; all processes are stopped at the end.
"""
import copy
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402
import prom_kube_sd  # noqa: E402

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promop_cases")
GOLDEN = ["SettingHonorTimestampsInServiceMonitor", "PodTargetLabelsFromPodMonitor"]
DETERMINISTIC = ["e2e_requests_total", "e2e_temperature_celsius", "up", "scrape_samples_scraped",
                 "scrape_samples_post_metric_relabeling"]


class Target:
    """An exposition on ip:port; `pod` and `job` labels collide with target labels."""

    def __init__(self, name, ip, port, temp):
        body = ("# TYPE e2e_requests_total counter\n"
                'e2e_requests_total{code="200",pod="inner"} 42\n'
                'e2e_requests_total{code="500",job="inner"} 3\n'
                "# TYPE e2e_temperature_celsius gauge\n"
                'e2e_temperature_celsius{served_by="%s"} %s\n' % (name, temp)).encode()

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer((ip, port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


class HTTPSD:
    """http_sd_configs endpoint: GET /sd/<role>/<ns,ns> -> what prom_kube_sd discovers."""

    def __init__(self, api):
        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = self.path.strip("/").split("/")
                with api.lock:
                    objs = copy.deepcopy(api.objects)
                ts = prom_kube_sd.targets(objs, parts[1], set(parts[2].split(",")) if len(parts) > 2 else None)
                addr = "__address__"
                body = json.dumps([{"targets": [t[addr]], "labels": {k: v for k, v in t.items() if k != addr}}
                                   for t in ts]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def load_case(name):
    c = json.load(open(os.path.join(CASES, name + ".json")))
    mon = c["monitor"]
    for ep in mon["spec"].get("endpoints", []) + mon["spec"].get("podMetricsEndpoints", []):
        assert ep["interval"] == "30s"
        ep["interval"] = "1s"
    cfgs = json.loads(json.dumps(c["expected"]).replace("$(SHARD)", "0"))
    for j in cfgs:
        assert j["scrape_interval"] == "30s"
        j["scrape_interval"] = "1s"
    return mon, cfgs


def with_http_sd(cfgs, sd_url):
    """kubernetes_sd_configs [{role, namespaces.names}] -> http_sd_configs serving those."""
    out = copy.deepcopy(cfgs)
    for j in out:
        sds = j.pop("kubernetes_sd_configs")
        j["http_sd_configs"] = [{"url": "%s/sd/%s/%s" % (sd_url, sd["role"], ",".join(sd["namespaces"]["names"])),
                                 "refresh_interval": "1s"} for sd in sds]
        assert all(set(sd) == {"role", "namespaces"} for sd in sds), sds
    return out


def setup_cluster(api, port):
    web = [("web", port, "TCP"), ("admin", port + 1, "TCP")]
    pods = [("app-0", "127.0.4.1", "Running", "node-a"), ("app-1", "127.0.4.2", "Running", "node-b"),
            ("app-2", "127.0.4.3", "Succeeded", "node-b")]
    for name, ip, phase, node in pods:
        api.apply("pods", fk.pod(name, ip, node=node, phase=phase, owner=("ReplicaSet", "app-5d8f"),
                                 labels={"app": "shop", "example": "ex-" + name, "env": "staging"},
                                 containers=[("app", "example/app:1", web)]))
    api.apply("services", fk.service("shop", [("web", port, "web")], labels={"example": "ex1", "env": "prod"},
                                     selector={"app": "shop"}))
    api.apply("endpoints", fk.endpoints("shop", [(ip, name, node) for name, ip, phase, node in pods[:2]],
                                        [("web", port)]))


def series(base, start, end):
    url = "%s/api/v1/series?%s" % (base, urllib.parse.urlencode(
        {"match[]": '{job!=""}', "start": "%.3f" % start, "end": "%.3f" % end}))
    doc = json.loads(h.http_get(url, timeout=30)[1])
    return {frozenset(s.items()) for s in doc["data"]}


def last_values(base, names, at):
    out = {}
    for n in names:
        for r in h.prom_query(base, "last_over_time(%s[1m])" % n, at=at)["result"]:
            m = dict(r["metric"], __name__=n)
            out[frozenset(m.items())] = r["value"][1]
    return out


def main():
    chk = h.Check("promop_e2e")
    port = h.free_port()
    targets = [Target("app-%d" % i, "127.0.4.%d" % (i + 1), p, "%.1f" % (20 + i))
               for i in range(3) for p in (port, port + 1)]
    api = fk.FakeKubeAPI()
    api.start()
    setup_cluster(api, port)
    operator_cfgs = []
    for name in GOLDEN:
        mon, cfgs = load_case(name)
        api.apply("servicemonitors" if mon["kind"] == "ServiceMonitor" else "podmonitors", mon)
        operator_cfgs += cfgs
    sd = HTTPSD(api)

    # Prometheus A: the remote-write receiver; B: the operator's config
    base_a, prom_a, _ = h.start_prometheus("global:\n  scrape_interval: 1h\n",
                                           extra_args=["--web.enable-remote-write-receiver"])
    b_cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
             "scrape_configs": with_http_sd(operator_cfgs, sd.url)}
    d = h.tmpdir("ss-promop-e2e-")
    cfg = os.path.join(d, "scrapeship.yml")
    with open(cfg, "w") as f:
        yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
                        "monitor_discovery": {"namespaces": ["default"], "api_server": api.url()},
                        "remote_write": [{"url": base_a + "/api/v1/write", "name": "prom-a",
                                          "queue_config": {"batch_send_deadline": "500ms"}}]}, f, sort_keys=False)
    t_start = time.time()
    base_b, prom_b, bdir = h.start_prometheus(yaml.safe_dump(b_cfg, sort_keys=False))
    log = os.path.join(d, "scrapeship.log")
    proc = h.start([h.BIN, "run", "--config", cfg, "--web.listen-address", "127.0.0.1:%d" % h.free_port(),
                    "--shutdown-timeout", "20s"], log)

    # both sides up on the same targets, then a few more scrapes
    want_up = 4  # app-0 and app-1, once per monitor
    deadline = time.time() + 40
    na = nb = 0
    while time.time() < deadline:
        na = len(h.prom_query(base_a, "up == 1")["result"])
        nb = len(h.prom_query(base_b, "up == 1")["result"])
        if na >= want_up and nb >= want_up:
            break
        time.sleep(0.5)
    chk.ok(na == want_up and nb == want_up, "targets up: scrapeship %d, Prometheus %d (want %d)\n%s" %
           (na, nb, want_up, open(log).read()[-2000:]))
    time.sleep(4)
    rc = h.stop(proc, signal.SIGTERM, timeout=40)
    chk.ok(rc == 0, "scrapeship exit status %s" % rc)
    t_end = time.time()
    time.sleep(1.5)  # B's last scrape lands

    got_a = series(base_a, t_start, t_end + 2)
    got_b = series(base_b, t_start, t_end + 2)
    chk.ok(len(got_b) >= 20, "Prometheus B has only %d series" % len(got_b))
    only_a, only_b = got_a - got_b, got_b - got_a
    chk.ok(not only_a and not only_b, "series differ:\n only shipped by scrapeship: %s\n only in Prometheus: %s" %
           (sorted(h.fmt_labels(x) for x in only_a)[:8], sorted(h.fmt_labels(x) for x in only_b)[:8]))
    print("series: scrapeship shipped %d, Prometheus scraped %d, %d in common" %
          (len(got_a), len(got_b), len(got_a & got_b)))
    va = last_values(base_a, DETERMINISTIC, t_end)
    vb = last_values(base_b, DETERMINISTIC, t_end)
    diff = [h.fmt_labels(k) + ": %s vs %s" % (va.get(k), vb.get(k)) for k in set(va) | set(vb)
            if va.get(k) is None or vb.get(k) is None or not h.same_value(va[k], vb[k])]
    chk.ok(len(va) >= 4 * 5 and not diff, "values differ (%d vs %d series): %s" % (len(va), len(vb), diff[:6]))

    # spot checks of what the operator's chain gives, on the shipped side
    by = {(dict(k)["__name__"], dict(k).get("job"), dict(k)["instance"], dict(k).get("code", "")): dict(k)
          for k in got_a}
    sm = by.get(("e2e_requests_total", "shop", "127.0.4.1:%d" % port, "200"))
    chk.ok(sm == {"__name__": "e2e_requests_total", "code": "200", "exported_pod": "inner", "job": "shop",
                  "instance": "127.0.4.1:%d" % port, "namespace": "default", "service": "shop", "pod": "app-0",
                  "container": "app", "endpoint": "web", "example": "ex1", "env": "prod"},
           "ServiceMonitor series: %s" % sm)
    pm = by.get(("e2e_requests_total", "default/testpodmonitor1", "127.0.4.2:%d" % port, "500"))
    chk.ok(pm == {"__name__": "e2e_requests_total", "code": "500", "exported_job": "inner",
                  "job": "default/testpodmonitor1", "instance": "127.0.4.2:%d" % port, "namespace": "default",
                  "pod": "app-1", "container": "app", "endpoint": "web", "example": "ex-app-1", "env": "staging"},
           "PodMonitor series: %s" % pm)
    chk.ok(not any("127.0.4.3" in dict(k)["instance"] or dict(k)["instance"].endswith(":%d" % (port + 1))
                   for k in got_a | got_b), "a Succeeded pod or an unnamed port was scraped")

    h.stop(prom_a)
    h.stop(prom_b)
    api.stop()
    sd.srv.shutdown()
    for t in targets:
        t.srv.shutdown()
    chk.finish()


if __name__ == "__main__":
    main()
