"""monitor_discovery with many monitors: one changed monitor changes only its own jobs.

150 ServiceMonitors (N below) select the same Service, each with its own relabeling
so every monitor gives its own series. After all are scraped, one monitor is updated
and one deleted. Checked:

  * the update costs the API server only the changed monitor's discovery (a LIST and
    WATCH per resource), not a relist of every monitor's Endpoints, Services and Pods
    (it was 3 LISTs + 3 WATCHes per monitor on every change: 900 requests here);
  * no other monitor's series gets a stale marker or an up=0 because of the change
    (the rebuild re-created every discoverer on the scrape thread, which stalled the
    scrapes of unrelated monitors into timeouts);
  * the updated monitor's new labels and the deleted monitor's stale markers arrive;
  * the thread count does not grow with the number of changes.
The target runs in its own process with a deep listen backlog, so a short burst of
scrapes is never the test server's limit. Every wait is bounded.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_kube_api as fk  # noqa: E402
import harness as h  # noqa: E402
import test_kube_sd as tk  # noqa: E402
import test_promop as tp  # noqa: E402

N = 150
TARGET = r"""
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
body = b'# TYPE promop_scale_up gauge\npromop_scale_up 1\n'
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
S(('127.0.3.1', int(sys.argv[1])), H).serve_forever()
"""


def spec(i, rep="one"):
    return {"selector": {"matchLabels": {"app": "shop"}},
            "endpoints": [{"port": "web", "interval": "2s",
                           "relabelings": [{"targetLabel": "mon", "replacement": "m%d-%s" % (i, rep)}]}]}


def threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def main():
    chk = h.Check("promop_scale")
    port = h.free_port()
    srv = subprocess.Popen([sys.executable, "-c", TARGET, str(port)])
    api = fk.FakeKubeAPI()
    api.start()
    d = h.tmpdir("ss-promop-scale-")
    api.apply("pods", fk.pod("app-0", "127.0.3.1", namespace="shop", labels={"app": "shop"},
                             containers=[("app", "example/app:1", [("web", port, "TCP")])]))
    api.apply("services", fk.service("shop", [("web", port, "web")], namespace="shop", labels={"app": "shop"},
                                     selector={"app": "shop"}))
    api.apply("endpoints", fk.endpoints("shop", [("127.0.3.1", "app-0", "node-a")], [("web", port)],
                                        namespace="shop", labels={"app": "shop"}))
    for i in range(N):
        api.apply("servicemonitors", tp.smon("m%d" % i, spec=spec(i)))
    cfg = tp.write_cfg(d, {"kubeconfig_file": tk.write_kubeconfig(d, api.url())})
    t0 = time.time()
    r = tk.Run(cfg, tag="promop-scale")

    def mons(x, since=0):
        return {rec["labels"]["mon"] for rec in x.records[since:]
                if rec["labels"].get("__name__") == "up" and rec["value"] == "1" and "mon" in rec["labels"]}

    ok = r.wait(lambda x: len(mons(x)) >= N, timeout=90, what="every monitor scraped")
    chk.ok(ok, "only %d of %d monitors scraped" % (len(mons(r)), N))
    print("%d monitors scraped in %.1fs" % (N, time.time() - t0))
    time.sleep(2.5)
    th0 = threads(r.proc.pid)

    # update one monitor
    r.read()
    n0, req0 = len(r.records), len(api.requests)
    api.apply("servicemonitors", tp.smon("m0", spec=spec(0, "two")))
    ok = r.wait(lambda x: "m0-two" in mons(x, n0), timeout=20, what="the updated monitor's labels")
    chk.ok(ok, "the updated monitor's new labels did not arrive")
    # deleting one more: only its series go stale
    api.delete("servicemonitors", "shop", "m1")
    ok = r.wait(lambda x: any(rec["stale"] and rec["labels"].get("mon") == "m1-one" for rec in x.records[n0:]),
                timeout=20, what="stale markers of the deleted monitor")
    chk.ok(ok, "the deleted monitor's series did not go stale")
    n1 = len(r.records)
    time.sleep(5)  # two more scrape intervals for every monitor
    r.read()
    reqs = len(api.requests) - req0
    print("API requests for one update and one delete: %d" % reqs)
    chk.ok(reqs <= 24, "one update and one delete made %d API requests (a relist of every monitor?)" % reqs)
    hurt = sorted({rec["labels"].get("mon") for rec in r.records[n0:]
                   if rec["labels"].get("mon") not in (None, "m0-one", "m1-one")
                   and (rec["stale"] or (rec["labels"].get("__name__") == "up" and rec["value"] != "1"))})
    chk.ok(not hurt, "unchanged monitors got stale markers or up=0: %s" % hurt[:10])
    fails = [x for x in r.log().splitlines() if "scrape failed" in x]
    chk.ok(not fails, "scrapes failed around the change: %s" % fails[:3])
    alive = mons(r, n1)
    chk.ok(len(alive - {"m0-one", "m1-one"}) == N - 1, "monitors scraped after the change: %d" % len(alive))
    th1 = threads(r.proc.pid)
    chk.ok(th1 <= th0 + 2, "threads grew from %d to %d" % (th0, th1))
    r.stop()
    api.stop()
    srv.kill()
    srv.wait()
    chk.finish()


if __name__ == "__main__":
    main()
