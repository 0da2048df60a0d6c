#!/usr/bin/python3
"""A restarted scaler must not scale anything down before the stabilization window.

Kubernetes' HPA records the current replica count as its first recommendation
(horizontal.go recordInitialRecommendation, TestScaleDownStabilizeInitialSize), so a
new HPA holds scale-down for the whole window. scrapeship runs the HPA itself, so a
restart of the scaler pod is a new HPA and must do the same.

Real Prometheus 2.42 answers the trigger's query (a constant, vector(N), so no data
is needed) and fake_kube.py stands in for the scale API:

  1. the scaler scales a Deployment from 1 to 6 (the metric wants 6);
  2. it is killed with SIGKILL, as an OOM kill or a node loss would;
  3. it starts again with the metric wanting 1. Nothing may be PATCHed until the
     20 s scale-down window has passed; then one PATCH 6 -> 1 follows at the next
     HPA sync (every 2 s here, from the sync-period annotation).

Everything listens on 127.0.0.1; the test takes about 40 s.
"""
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from fake_kube import FakeKube  # noqa: E402

WINDOW = 20  # scaleDown.stabilizationWindowSeconds
SYNC = 2     # scrapeship.io/hpa-sync-period


def scaled_object(prom, wants):
    return """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: api
  namespace: shop
  annotations: {scrapeship.io/hpa-sync-period: %(sync)ds}
spec:
  scaleTargetRef: {name: api}
  pollingInterval: 1
  minReplicaCount: 1
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp: {policies: [{type: Pods, value: 10, periodSeconds: 1}]}
        scaleDown: {stabilizationWindowSeconds: %(window)d}
  triggers:
  - type: prometheus
    metadata:
      serverAddress: %(prom)s
      query: vector(%(value)d)
      threshold: "10"
""" % {"sync": SYNC, "window": WINDOW, "prom": prom, "value": wants * 10}


COOLDOWN = 15  # cooldownPeriod of the scale-to-zero case


def worker_object(prom):
    """minReplicaCount 0 and a metric that is not active (0 <= activationThreshold 0)."""
    return """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker, namespace: shop}
spec:
  scaleTargetRef: {name: worker}
  pollingInterval: 1
  cooldownPeriod: %(cooldown)d
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
  - type: prometheus
    metadata: {serverAddress: %(prom)s, query: vector(0), threshold: "10"}
""" % {"cooldown": COOLDOWN, "prom": prom}


def restart_keeps_cooldown(chk, d, prom, fk, kubeconfig, env):
    """A restart must not scale to zero before cooldownPeriod either.

    KEDA keeps status.lastActiveTime in the cluster, so a restarted operator still
    waits out the cooldown of a workload that went quiet a moment ago. scrapeship
    cannot read it: counting the object as never active made a restart scale a
    workload at 3 replicas to 0 on its first poll (initialCooldownPeriod is 0).
    Now the start counts as the last activity, so the cooldown runs in full."""
    fk.add("shop", "deployments", "worker", 3)
    so = write(os.path.join(d, "worker.yaml"), worker_object(prom))
    log = os.path.join(d, "scaler-worker.log")
    t0 = time.time()
    p = h.start([h.BIN, "scaler", "--config", so, "--kubeconfig", kubeconfig, "--web.listen-address", "none"],
                log, env=env)
    deadline = t0 + COOLDOWN + 10  # bounded
    while time.time() < deadline and fk.replicas("shop", "deployments", "worker") != 0:
        time.sleep(0.2)
    h.stop(p)
    patches = fk.patches_for("worker")
    chk.ok(len(patches) == 1 and patches[0]["from"] == 3 and patches[0]["to"] == 0,
           "restart with an inactive metric: exactly one PATCH, 3 -> 0: %s"
           % [(x["from"], x["to"]) for x in patches])
    if patches:
        waited = patches[0]["t"] - t0
        print("restart: scale to zero %.1f s after the start (cooldownPeriod %d s)" % (waited, COOLDOWN),
              flush=True)
        chk.ok(waited >= COOLDOWN, "scaled to zero %.1f s after a restart, before cooldownPeriod %d s"
               % (waited, COOLDOWN))
    text = open(log, errors="replace").read()
    chk.ok("rule=cooldown" in text, "the held scale-in is not logged as cooldown:\n" + text[-1500:])


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)
    return path


def main():
    chk = h.Check("scaler_restart")
    d = h.tmpdir("ss-restart-")
    prom, _, _ = h.start_prometheus("global:\n  scrape_interval: 1h\n")
    fk = FakeKube().start()
    fk.add("shop", "deployments", "api", 1)
    kubeconfig = write(os.path.join(d, "kubeconfig"), """apiVersion: v1
kind: Config
current-context: t
contexts: [{name: t, context: {cluster: fake, user: u, namespace: shop}}]
clusters: [{name: fake, cluster: {server: '%s'}}]
users: [{name: u, user: {}}]
""" % fk.url)
    so = write(os.path.join(d, "api.yaml"), scaled_object(prom, 6))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    args = [h.BIN, "scaler", "--config", so, "--kubeconfig", kubeconfig, "--web.listen-address", "none"]

    # 1. up to 6
    log1 = os.path.join(d, "scaler-1.log")
    p = h.start(args, log1, env=env)
    deadline = time.time() + 30
    while time.time() < deadline and fk.replicas("shop", "deployments", "api") != 6:
        time.sleep(0.2)
    chk.ok(fk.replicas("shop", "deployments", "api") == 6,
           "first run scales 1 -> 6: %s" % [(x["from"], x["to"]) for x in fk.patches_for("api")])

    # 2. killed without a chance to clean up
    p.send_signal(signal.SIGKILL)
    p.wait()
    n_before = len(fk.patches_for("api"))

    # 3. the metric now wants 1; restart
    write(so, scaled_object(prom, 1))
    log2 = os.path.join(d, "scaler-2.log")
    t_restart = time.time()
    p = h.start(args, log2, env=env)
    deadline = t_restart + WINDOW + 15
    while time.time() < deadline and fk.replicas("shop", "deployments", "api") != 1:
        time.sleep(0.2)
    after = fk.patches_for("api")[n_before:]
    chk.ok(len(after) == 1 and after[0]["from"] == 6 and after[0]["to"] == 1,
           "after the restart: exactly one PATCH, 6 -> 1: %s" % [(x["from"], x["to"]) for x in after])
    if after:
        waited = after[0]["t"] - t_restart
        print("restart: first PATCH %.1f s after the restart" % waited, flush=True)
        chk.ok(WINDOW <= waited <= WINDOW + SYNC + 3,
               "nothing PATCHed for the %d s window after the restart (first PATCH after %.1f s)"
               % (WINDOW, waited))
    h.stop(p)
    text = open(log2, errors="replace").read()
    held = re.findall(r'current=6 desired=6 rule=stabilization action=none', text)
    chk.ok(len(held) >= WINDOW // SYNC - 2,
           "the restarted scaler logged the stabilization hold (%d lines)" % len(held))
    chk.ok('rule=hpa-wait' in text, "polls between HPA syncs are logged as hpa-wait")
    chk.ok(re.search(r'current=6 desired=1 rule=metric action=scaled\(6->1\)', text) is not None,
           "the scale-down is logged with the metric as its rule:\n" + text[-1500:])
    restart_keeps_cooldown(chk, d, prom, fk, kubeconfig, env)
    fk.stop()
    chk.finish()


if __name__ == "__main__":
    main()
