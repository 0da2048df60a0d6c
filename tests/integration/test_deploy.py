"""deploy/: manifests, kustomize overlays, the container image recipe, IAM policies,
the Grafana dashboard and the README's "Deploy on EKS" section are checked here,
since no cluster or container engine runs in the test environment.

  * Every YAML file parses; every Kubernetes object has apiVersion, kind and
    metadata.name; every overlay renders. The renderer below implements the kustomize
    features deploy/ uses (resources, namespace, images, configMapGenerator with
    content-hash names and the references to them, strategic-merge patches); when a
    `kubectl` with kustomize is on the machine, its output must match ours (generated
    names compared without their hash suffix).
  * Rendered workloads: containers have images, requests and limits, a restricted
    securityContext (runAsNonRoot, readOnlyRootFilesystem, no privilege escalation,
    capabilities drop ALL), probes on /healthz and /readyz, and every volume, ConfigMap
    and ServiceAccount they name exists. RBAC grants exactly what discovery and the
    scaler need.
  * Every scrapeship config shipped in a ConfigMap passes `scrapeship check-config`
    with the environment its container really gets (env, envFrom, downward API), and
    names no variable the container lacks. The adot overlay mounts the EKS example's
    ADOT collector config (the unit-test fixture, placeholders filled) unchanged. The scaler's ScaledObjects load with
    `scrapeship scaler`'s own loader.
  * deploy/Dockerfile builds with the repository's scripts (install-deps.sh
    --build-only, build.sh, the same CMake build type as scripts/test.sh) and installs
    at runtime exactly the Debian packages whose libraries the tested binary links
    (readelf/ldd + dpkg -S).
  * The IAM policy grants the five AMP actions; the trust policies name the manifests'
    service account; every metric the dashboard queries exists in the source.
"""
import copy
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEPLOY = os.path.join(h.REPO, "deploy")
OVERLAYS = sorted(p for p in glob.glob(os.path.join(DEPLOY, "overlays", "*")) if os.path.isdir(p))
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet"}
RBAC_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
NAMESPACE = "scrapeship"


# ---- a small kustomize ------------------------------------------------------------------

def _merge(dst, patch):
    """Strategic merge patch, the parts deploy/ uses: maps merge, null deletes, lists of
    named maps merge by name, other lists are replaced."""
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
            if not dst[k]:
                dst.pop(k)  # kustomize drops a map the patch emptied
        elif (isinstance(v, list) and isinstance(dst.get(k), list) and v and
              all(isinstance(x, dict) and "name" in x for x in v + dst[k])):
            # as kubectl kustomize orders them: the patch's items first (merged into
            # their originals), then the originals the patch does not name
            merged = []
            for item in v:
                cur = next((x for x in dst[k] if x["name"] == item["name"]), None)
                if cur is None:
                    merged.append(copy.deepcopy(item))
                else:
                    _merge(cur, item)
                    merged.append(cur)
            named = {x["name"] for x in v}
            dst[k] = merged + [x for x in dst[k] if x["name"] not in named]
        else:
            dst[k] = copy.deepcopy(v)


def pod_specs(o):
    if o["kind"] in WORKLOADS:
        return [o["spec"]["template"]["spec"]]
    if o["kind"] == "Pod":
        return [o["spec"]]
    return []


def containers(o):
    for spec in pod_specs(o):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            yield spec, c


def _hash(data):
    # any stable content hash works for the checks; kubectl's differs and is compared
    # with the suffix masked
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def kustomize(path):
    with open(os.path.join(path, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    known = {"apiVersion", "kind", "namespace", "resources", "images", "configMapGenerator", "patches"}
    unknown = set(k) - known
    if unknown:
        raise ValueError("%s: kustomization uses %s, which this renderer does not implement" % (path, unknown))
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(path, r))
        if os.path.isdir(p):
            objs += kustomize(p)
        else:
            with open(p) as f:
                objs += [o for o in yaml.safe_load_all(f) if o]
    renames = {}
    for g in k.get("configMapGenerator", []):
        data = {}
        for f in g.get("files", []):
            key, rel = f.split("=", 1) if "=" in f else (os.path.basename(f), f)
            with open(os.path.join(path, rel)) as fh:
                data[key] = fh.read()
        for lit in g.get("literals", []):
            key, val = lit.split("=", 1)
            data[key] = val
        name = "%s-%s" % (g["name"], _hash(data))
        renames[g["name"]] = name
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    for p in k.get("patches", []):
        with open(os.path.join(path, p["path"])) as f:
            patch = yaml.safe_load(f)
        target = [o for o in objs if o["kind"] == patch["kind"] and o["metadata"]["name"] == patch["metadata"]["name"]]
        if len(target) != 1:
            raise ValueError("%s: patch %s matches %d objects" % (path, p["path"], len(target)))
        _merge(target[0], patch)
    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    for img in k.get("images", []):
        for _, c in containers_of(objs):
            if c["image"].split(":")[0] == img["name"]:
                c["image"] = "%s:%s" % (img.get("newName", img["name"]), img["newTag"])
    for o in objs:
        for spec in pod_specs(o):
            for v in spec.get("volumes", []):
                if "configMap" in v and v["configMap"]["name"] in renames:
                    v["configMap"]["name"] = renames[v["configMap"]["name"]]
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for ef in c.get("envFrom", []):
                    if "configMapRef" in ef and ef["configMapRef"]["name"] in renames:
                        ef["configMapRef"]["name"] = renames[ef["configMapRef"]["name"]]
    return objs


def containers_of(objs):
    for o in objs:
        yield from containers(o)


def key(o):
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


def mask(objs, generated):
    """Replace the hash suffix of generated ConfigMap names, wherever they appear."""
    text = json.dumps(sorted(objs, key=key), sort_keys=True)
    for g in generated:
        text = re.sub(r'"%s-[a-z0-9]{10}"' % re.escape(g), '"%s-HASH"' % g, text)
    return json.loads(text)


def generated_names(path):
    with open(os.path.join(path, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    names = [g["name"] for g in k.get("configMapGenerator", [])]
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(path, r))
        if os.path.isdir(p):
            names += generated_names(p)
    return names


def kubectl_kustomize():
    exe = shutil.which("kubectl")
    if not exe:
        return None
    try:
        p = subprocess.run([exe, "kustomize", "--help"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if p.returncode == 0 else None


# ---- checks ---------------------------------------------------------------------------

def check_yaml_files(chk):
    files = sorted(glob.glob(os.path.join(DEPLOY, "**", "*.yaml"), recursive=True))
    chk.ok(len(files) >= 15, "only %d YAML files under deploy/" % len(files))
    for path in files:
        rel = os.path.relpath(path, h.REPO)
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            chk.ok(False, "%s does not parse: %s" % (rel, e))
            continue
        chk.ok(docs, "%s is empty" % rel)
        if os.path.basename(path) == "scrapeship.yaml":
            chk.ok("scrape_configs" in docs[0], "%s: no scrape_configs" % rel)
            continue
        if os.path.basename(path) == "adot-collector-config.yaml":  # an OTel collector config
            chk.ok({"receivers", "exporters", "service"} <= set(docs[0]), "%s: not a collector config" % rel)
            continue
        if os.path.basename(path) == "web.yaml":  # a --web.config.file, checked with its workload
            chk.ok(set(docs[0]) <= {"tls_server_config", "http_server_config", "basic_auth_users"},
                   "%s: not a web config" % rel)
            continue
        for d in docs:
            chk.ok(isinstance(d, dict) and d.get("apiVersion") and d.get("kind"),
                   "%s: a document without apiVersion/kind" % rel)
            if d.get("kind") == "Kustomization":
                chk.ok(d["apiVersion"] == "kustomize.config.k8s.io/v1beta1", "%s: apiVersion" % rel)
                for r in d.get("resources", []) + [p["path"] for p in d.get("patches", [])]:
                    chk.ok(os.path.exists(os.path.join(os.path.dirname(path), r)), "%s: %s missing" % (rel, r))
            else:
                chk.ok((d.get("metadata") or {}).get("name"), "%s: %s without metadata.name" % (rel, d.get("kind")))


def env_for(obj, c, cms):
    """The environment the container gets; downward API fields get plausible values."""
    ns = obj["metadata"].get("namespace", "default")
    field = {"spec.nodeName": "ip-10-0-1-23.ec2.internal", "metadata.name": obj["metadata"]["name"] + "-0",
             "metadata.namespace": ns, "metadata.labels['apps.kubernetes.io/pod-index']": "0"}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    missing = []
    for ef in c.get("envFrom", []):
        name = ef.get("configMapRef", {}).get("name")
        if name in cms:
            env.update(cms[name]["data"])
        else:
            missing.append("envFrom ConfigMap %s" % name)
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "fieldRef" in e.get("valueFrom", {}):
            fp = e["valueFrom"]["fieldRef"]["fieldPath"]
            if fp in field:
                env[e["name"]] = field[fp]
            else:
                missing.append("fieldRef %s" % fp)
    return env, missing


def check_workload(chk, name, o, objs, cms):
    what = "%s %s/%s" % (name, o["kind"], o["metadata"]["name"])
    spec = o["spec"]["template"]["spec"]
    sel = o["spec"]["selector"]["matchLabels"]
    tl = o["spec"]["template"]["metadata"].get("labels", {})
    chk.ok(all(tl.get(k) == v for k, v in sel.items()), "%s: selector does not match the template" % what)
    sas = {x["metadata"]["name"] for x in objs if x["kind"] == "ServiceAccount"}
    chk.ok(spec.get("serviceAccountName") in sas, "%s: service account %s not in the overlay" %
           (what, spec.get("serviceAccountName")))
    psc = spec.get("securityContext", {})
    chk.ok(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, "%s: pod not non-root" % what)
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for v in vols.values():
        if "configMap" in v:
            chk.ok(v["configMap"]["name"] in cms, "%s: volume %s names a missing ConfigMap" % (what, v["name"]))
    for c in spec["containers"]:
        cw = "%s container %s" % (what, c["name"])
        chk.ok(isinstance(c.get("image"), str) and "/" in c["image"] and ":" in c["image"].split("/")[-1],
               "%s: image %r is not a full reference" % (cw, c.get("image")))
        res = c.get("resources", {})
        chk.ok(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and
               res.get("limits", {}).get("cpu") and res.get("limits", {}).get("memory"),
               "%s: requests and limits" % cw)
        sc = c.get("securityContext", {})
        chk.ok(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False and
               sc.get("capabilities", {}).get("drop") == ["ALL"], "%s: securityContext %s" % (cw, sc))
        for m in c.get("volumeMounts", []):
            chk.ok(m["name"] in vols, "%s: mount %s has no volume" % (cw, m["name"]))
        if "scrapeship" not in c["image"]:
            continue
        chk.ok(sc.get("runAsNonRoot") is True, "%s: runAsNonRoot" % cw)
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            g = c.get(probe, {}).get("httpGet", {})
            chk.ok(g.get("path") == path and (g.get("port") in ports or g.get("port") in ports.values()),
                   "%s: %s should GET %s on a declared port, has %s" % (cw, probe, path, g))
        args = c.get("args", [])
        check_web_config(chk, cw, c, args, vols, cms)
        listen = [a.split("=", 1)[1] for a in args if a.startswith("--web.listen-address=")]
        chk.ok(listen and int(listen[0].rsplit(":", 1)[1]) in ports.values(), "%s: listen address not a container port" % cw)
        cfgs = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
        chk.ok(len(cfgs) == 1, "%s: no --config=" % cw)
        if not cfgs:
            continue
        mount = next((m for m in c.get("volumeMounts", []) if cfgs[0].startswith(m["mountPath"].rstrip("/") + "/")), None)
        chk.ok(mount is not None, "%s: %s is not on a mounted volume" % (cw, cfgs[0]))
        if mount is None:
            continue
        cm = cms.get(vols[mount["name"]].get("configMap", {}).get("name"))
        key_ = cfgs[0][len(mount["mountPath"].rstrip("/")) + 1:]
        chk.ok(cm is not None and key_ in cm["data"], "%s: %s not in the mounted ConfigMap" % (cw, key_))
        if cm is None or key_ not in cm["data"]:
            continue
        env, missing = env_for(o, c, cms)
        chk.ok(not missing, "%s: %s" % (cw, missing))
        text = cm["data"][key_]
        if args[0] == "run":
            yield_config_check(chk, cw, text, env, args, c, spec)
        elif args[0] == "scaler":
            check_scaler_config(chk, cw, text)


def check_web_config(chk, cw, c, args, vols, cms):
    """--web.config.file: in a mounted ConfigMap, valid for `scrapeship check-config`, its
    certificate and key on a mounted Secret, and HTTPS probes when it serves TLS."""
    webs = [a.split("=", 1)[1] for a in args if a.startswith("--web.config.file=")]
    if not webs:
        return
    mounts = c.get("volumeMounts", [])

    def mounted(path):  # the innermost mount holding path
        ms = [m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")]
        return max(ms, key=lambda m: len(m["mountPath"])) if ms else None
    m = mounted(webs[0])
    cm = cms.get(vols.get(m["name"], {}).get("configMap", {}).get("name")) if m else None
    key_ = webs[0][len(m["mountPath"].rstrip("/")) + 1:] if m else None
    chk.ok(cm is not None and key_ in cm["data"], "%s: %s is not in a mounted ConfigMap" % (cw, webs[0]))
    if cm is None or key_ not in cm["data"]:
        return
    d = tempfile.mkdtemp(prefix="ss-deploy-web-")
    try:
        path = os.path.join(d, "web.yaml")
        with open(path, "w") as f:
            f.write(cm["data"][key_])
        rc, _, err = h.run_scrapeship(["check-config", "--web.config.file", path])
        chk.ok(rc == 0, "%s: web config invalid: %s" % (cw, err.strip()[:300]))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    tls = (yaml.safe_load(cm["data"][key_]) or {}).get("tls_server_config") or {}
    for f in ("cert_file", "key_file", "client_ca_file"):
        if tls.get(f):
            fm = mounted(tls[f])
            chk.ok(fm is not None and "secret" in vols.get(fm["name"], {}),
                   "%s: %s %s is not on a mounted Secret" % (cw, f, tls[f]))
    if tls.get("cert_file"):
        for probe in ("livenessProbe", "readinessProbe"):
            chk.ok(c.get(probe, {}).get("httpGet", {}).get("scheme") == "HTTPS",
                   "%s: %s must use scheme HTTPS on a TLS endpoint" % (cw, probe))


def yield_config_check(chk, cw, text, env, args, c, spec):
    # ${VAR} in values (comments are not expanded)
    values = "\n".join(re.sub(r"(^|\s)#.*$", "", l) for l in text.splitlines())
    needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", values))
    chk.ok(needed <= set(env), "%s: the config needs %s, the container lacks them" % (cw, sorted(needed - set(env))))
    d = tempfile.mkdtemp(prefix="ss-deploy-")
    try:
        path = os.path.join(d, "scrapeship.yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = h.run_scrapeship(["check-config", path], env=env)
        chk.ok(rc == 0, "%s: check-config failed: %s" % (cw, err.strip()[:500]))
        if rc == 0:
            doc = yaml.safe_load(text)
            store = (doc.get("storage") or {}).get("path")
            if store:
                mounts = [m["mountPath"] for m in c.get("volumeMounts", []) if not m.get("readOnly")]
                chk.ok(store in mounts, "%s: storage.path %s is not a writable mount (%s)" % (cw, store, mounts))
            # the printed effective config loads again
            with open(os.path.join(d, "printed.yaml"), "w") as f:
                f.write(out)
            rc2, _, err2 = h.run_scrapeship(["check-config", os.path.join(d, "printed.yaml")], env=env)
            chk.ok(rc2 == 0, "%s: printed config does not reload: %s" % (cw, err2[:300]))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_scaler_config(chk, cw, text):
    docs = [d for d in yaml.safe_load_all(text) if d]
    sos = [d for d in docs if d.get("kind") == "ScaledObject"]
    chk.ok(sos, "%s: no ScaledObject" % cw)
    for so in sos:
        chk.ok(so["apiVersion"] == "keda.sh/v1alpha1" and so["spec"]["scaleTargetRef"].get("name"),
               "%s: ScaledObject %s" % (cw, so["metadata"]["name"]))
        for t in so["spec"]["triggers"]:
            md = t["metadata"]
            chk.ok(t["type"] == "prometheus" and md.get("serverAddress") and md.get("query") and md.get("threshold"),
                   "%s: trigger %s" % (cw, t))
    auths = {d["metadata"]["name"] for d in docs if d.get("kind") == "TriggerAuthentication"}
    for so in sos:
        for t in so["spec"]["triggers"]:
            ref = (t.get("authenticationRef") or {}).get("name")
            chk.ok(ref is None or ref in auths, "%s: authenticationRef %s missing" % (cw, ref))
    # scrapeship's own loader: config errors come first; with no cluster to reach, a
    # valid file gets as far as the Kubernetes client and fails there
    rc, out, err = h.run_scrapeship(["scaler", "--help"])
    if "--config" not in out + err:
        print("note: `scrapeship scaler` not built in this binary; ScaledObjects checked structurally only")
        return
    d = tempfile.mkdtemp(prefix="ss-deploy-scaler-")
    try:
        path = os.path.join(d, "scaledobjects.yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = h.run_scrapeship(["scaler", "--config", path, "--once", "--dry-run",
                                         "--web.listen-address", "none", "--kubeconfig",
                                         os.path.join(d, "no-such-kubeconfig")], timeout=60)
        config_err = "cannot load" in err or "holds no ScaledObject" in err
        chk.ok(not config_err, "%s: the scaler rejects scaledobjects.yaml: %s" % (cw, err.strip()[:500]))
        for line in err.splitlines():
            if "level=warn" in line and "component=config" in line:
                chk.ok(False, "%s: scaler config warning: %s" % (cw, line))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_rbac(chk, name, objs):
    roles = {o["metadata"]["name"]: o for o in objs if o["kind"] in ("ClusterRole", "Role")}
    sas = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs if o["kind"] == "ServiceAccount"}
    for r in roles.values():
        for rule in r.get("rules", []):
            verbs = set(rule.get("verbs", []))
            chk.ok(verbs and verbs <= RBAC_VERBS, "%s: %s has verbs %s" % (name, r["metadata"]["name"], verbs))
            chk.ok("*" not in rule.get("resources", []) + rule.get("apiGroups", []), "%s: wildcard rule" % name)
    for b in (o for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        chk.ok(b["roleRef"]["name"] in roles, "%s: binding %s to a missing role" % (name, b["metadata"]["name"]))
        for s in b["subjects"]:
            chk.ok((s.get("namespace"), s["name"]) in sas, "%s: binding subject %s missing" % (name, s))
    grants = {(g, res, v) for r in roles.values() for rule in r["rules"]
              for g in rule["apiGroups"] for res in rule["resources"] for v in rule["verbs"]}
    if name == "adot":  # the ADOT example's role: endpoints reads endpoints, services and pods
        want = {("", r, v) for r in ("pods", "services", "endpoints") for v in ("list", "watch")}
        chk.ok(grants == want, "adot: discovery RBAC %s" % sorted(grants))
    elif any(o["kind"] in ("DaemonSet", "StatefulSet") for o in objs):
        want = {(g, r, v) for g, rs in (("", ("pods", "services", "endpoints")),
                                        ("discovery.k8s.io", ("endpointslices",)),
                                        ("monitoring.coreos.com", ("servicemonitors", "podmonitors")))
                for r in rs for v in ("list", "watch")}
        chk.ok(grants == want, "%s: discovery RBAC %s" % (name, sorted(grants)))
    if name == "scaler":
        want = {("apps", r, v) for r in ("deployments/scale", "statefulsets/scale") for v in ("get", "patch")}
        want.add(("apps", "deployments", "get"))
        chk.ok(grants == want, "scaler RBAC %s" % sorted(grants))


def check_overlays(chk):
    kubectl = kubectl_kustomize()
    names = {os.path.basename(p) for p in OVERLAYS}
    chk.ok(names >= {"daemonset", "daemonset-pod-identity", "sidecar", "sidecar-tls", "scaler"},
           "overlays: %s" % sorted(names))
    rendered = {}
    for path in OVERLAYS:
        name = os.path.basename(path)
        try:
            objs = kustomize(path)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            chk.ok(False, "%s does not render: %s" % (name, e))
            continue
        rendered[name] = objs
        for o in objs:
            chk.ok(o.get("apiVersion") and o.get("kind") and o["metadata"].get("name"), "%s: incomplete object %s" % (name, o))
            if o["kind"] not in CLUSTER_SCOPED:
                chk.ok(o["metadata"].get("namespace") == NAMESPACE, "%s: %s not in %s" % (name, key(o), NAMESPACE))
        chk.ok(len({key(o) for o in objs}) == len(objs), "%s: duplicate objects" % name)
        cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
        workloads = [o for o in objs if o["kind"] in WORKLOADS]
        chk.ok(workloads, "%s: no workload" % name)
        for o in workloads:
            check_workload(chk, name, o, objs, cms)
        check_rbac(chk, name, objs)
        if kubectl:
            p = subprocess.run([kubectl, "kustomize", path], capture_output=True, timeout=120)
            chk.ok(p.returncode == 0, "kubectl kustomize %s: %s" % (name, p.stderr.decode()[:300]))
            if p.returncode == 0:
                theirs = [o for o in yaml.safe_load_all(p.stdout) if o]
                gen = generated_names(path)
                a, b = mask(objs, gen), mask(theirs, gen)
                chk.ok(a == b, "%s: our render differs from kubectl kustomize:\n ours %s\n kubectl %s" %
                       (name, json.dumps(a)[:1500], json.dumps(b)[:1500]))
    if not kubectl:
        print("note: no kubectl with kustomize here; overlays rendered by the test's own renderer only")

    # overlay specifics
    ds = rendered.get("daemonset", [])
    sa = next((o for o in ds if o["kind"] == "ServiceAccount"), {})
    chk.ok("eks.amazonaws.com/role-arn" in sa.get("metadata", {}).get("annotations", {}), "daemonset: no IRSA annotation")
    pi = rendered.get("daemonset-pod-identity", [])
    sa = next((o for o in pi if o["kind"] == "ServiceAccount"), {})
    chk.ok(sa and "eks.amazonaws.com/role-arn" not in (sa["metadata"].get("annotations") or {}),
           "pod identity overlay still has the IRSA annotation")
    dset = next((o for o in ds if o["kind"] == "DaemonSet"), None)
    if dset:
        c = dset["spec"]["template"]["spec"]["containers"][0]
        node = [e for e in c.get("env", []) if e["name"] == "NODE_NAME"]
        chk.ok(node and node[0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", "daemonset: NODE_NAME not from spec.nodeName")
        cfg = next(o for o in ds if o["kind"] == "ConfigMap" and "scrapeship.yaml" in o.get("data", {}))
        doc = yaml.safe_load(cfg["data"]["scrapeship.yaml"])
        sels = [s for j in doc["scrape_configs"] for k in j.get("kubernetes_sd_configs", []) for s in k.get("selectors", [])]
        chk.ok(any(s.get("field") == "spec.nodeName=${NODE_NAME}" for s in sels), "daemonset: no node-local selector")
        qv = [v for v in dset["spec"]["template"]["spec"]["volumes"] if v["name"] == "queue"]
        chk.ok(qv and ("emptyDir" in qv[0] or "hostPath" in qv[0]), "daemonset: no emptyDir/hostPath queue volume")
    side = next((o for o in rendered.get("sidecar", []) if o["kind"] == "Deployment"), None)
    if side:
        cs = side["spec"]["template"]["spec"]["containers"]
        chk.ok(len(cs) == 2 and any("scrapeship" in c["image"] for c in cs), "sidecar: want app + scrapeship")
    tls = next((o for o in rendered.get("sidecar-tls", []) if o["kind"] == "Deployment"), None)
    if tls:
        c = next(c for c in tls["spec"]["template"]["spec"]["containers"] if c["name"] == "scrapeship")
        chk.ok(any(a.startswith("--web.config.file=") for a in c["args"]), "sidecar-tls: no --web.config.file")
        chk.ok(any("secret" in v for v in tls["spec"]["template"]["spec"]["volumes"]), "sidecar-tls: no Secret volume")
    check_adot_overlay(chk, rendered.get("adot", []))
    sc = next((o for o in rendered.get("scaler", []) if o["kind"] == "Deployment"), None)
    if sc:
        args = sc["spec"]["template"]["spec"]["containers"][0]["args"]
        chk.ok(args[:2] == ["scaler", "--config=/etc/scrapeship/scaledobjects.yaml"], "scaler args %s" % args)
    return rendered


def check_adot_overlay(chk, objs):
    """The ADOT overlay mounts the EKS example's collector config unchanged (the test
    fixture with only the README's placeholders filled) and runs it as is; check_workload
    has already passed it through check-config."""
    ds = next((o for o in objs if o["kind"] == "DaemonSet"), None)
    chk.ok(ds is not None, "adot: no DaemonSet")
    if ds is None:
        return
    spec = ds["spec"]["template"]["spec"]
    c = next(c for c in spec["containers"] if c["name"] == "scrapeship")
    chk.ok("--config=/conf/adot-collector-config" in c["args"], "adot: args %s" % c["args"])
    vol = next((v for v in spec["volumes"] if v["name"] == "adot-collector-config-vol"), {})
    cm = next((o for o in objs if o["kind"] == "ConfigMap" and
               o["metadata"]["name"] == vol.get("configMap", {}).get("name")), None)
    chk.ok(cm is not None and cm["metadata"]["name"].startswith("adot-collector-conf"),
           "adot: the mounted ConfigMap is not adot-collector-conf: %s" % vol)
    if cm is None:
        return
    with open(os.path.join(h.REPO, "tests", "unit", "collector", "otel", "eks_prometheus_daemonset.yaml")) as f:
        fixture = f.read()
    url = yaml.safe_load(cm["data"]["adot-collector-config"])["exporters"]["prometheusremotewrite"]["endpoint"]
    fixture = fixture.replace("<YOUR_ENDPOINT>", url).replace("<YOUR_REGION>", "us-east-1")
    chk.ok(yaml.safe_load(cm["data"]["adot-collector-config"]) == yaml.safe_load(fixture),
           "adot: the ConfigMap is not the EKS example's collector config")
    ports = {p["containerPort"] for p in c.get("ports", [])}
    chk.ok(13133 in ports, "adot: health_check port 13133 not declared: %s" % ports)


def parse_bash_array(text, name):
    m = re.search(r"^%s=\((.*?)^\)" % name, text, re.S | re.M)
    if not m:
        return None
    words = []
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0]
        words += line.split()
    return words


def check_image(chk):
    path = os.path.join(DEPLOY, "Dockerfile")
    with open(path) as f:
        text = f.read()
    lines = [l for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.lstrip().startswith("#")]
    froms = [l.split()[1:] for l in lines if l.startswith("FROM ")]
    chk.ok(froms and froms[0][0] == "debian:bookworm" and froms[0][-1] == "build", "builder stage: %s" % froms)
    chk.ok(froms and froms[-1][0] == "debian:bookworm-slim", "runtime stage: %s" % froms)
    build_stage = text.split("FROM debian:bookworm-slim")[0]
    runtime = text.split("FROM debian:bookworm-slim")[-1]
    chk.ok("bash scripts/install-deps.sh --build-only" in build_stage, "builder does not run install-deps.sh --build-only")
    chk.ok("bash scripts/build.sh build" in build_stage, "builder does not run scripts/build.sh")
    build_cmds = [l for l in build_stage.splitlines() if not l.lstrip().startswith("#")]
    chk.ok(not any("cmake" in l.lower() for l in build_cmds), "builder runs cmake itself instead of scripts/build.sh")
    chk.ok("COPY --from=build /src/build/scrapeship /usr/bin/scrapeship" in runtime, "runtime does not copy build/scrapeship")
    user = [l.split()[1] for l in lines if l.startswith("USER ")]
    chk.ok(user and user[-1].split(":")[0].isdigit() and int(user[-1].split(":")[0]) > 0, "USER %s is not a numeric non-root uid" % user)
    chk.ok(any(l.startswith("ENTRYPOINT") and "scrapeship" in l for l in lines), "ENTRYPOINT is not scrapeship")
    with open(os.path.join(DEPLOY, "Dockerfile.dockerignore")) as f:
        ign = f.read().split()
    chk.ok("build" in ign and "build-*" in ign, "Dockerfile.dockerignore lets build trees into the context")

    # the shared scripts: same build type as the test suite, --build-only a subset
    with open(os.path.join(h.REPO, "scripts", "build.sh")) as f:
        build_sh = f.read()
    with open(os.path.join(h.REPO, "scripts", "test.sh")) as f:
        test_sh = f.read()
    bt = re.findall(r"-DCMAKE_BUILD_TYPE=(\w+)", build_sh)
    tt = re.findall(r"cmake -S \. -B build -DCMAKE_BUILD_TYPE=(\w+)", test_sh)
    chk.ok(bt and tt and bt[0] == tt[0], "build.sh builds %s, test.sh tests %s" % (bt, tt))
    with open(os.path.join(h.REPO, "scripts", "install-deps.sh")) as f:
        deps = f.read()
    allp, buildp = parse_bash_array(deps, "PKGS"), parse_bash_array(deps, "BUILD_PKGS")
    chk.ok(buildp and allp and set(buildp) <= set(allp), "BUILD_PKGS is not a subset of PKGS")
    chk.ok(buildp and not ({"libcmocka-dev", "prometheus", "valgrind"} & set(buildp)), "--build-only installs test packages")
    # ...and it holds what CMake looks for: every pkg-config module, snappy, protoc-c
    with open(os.path.join(h.REPO, "CMakeLists.txt")) as f:
        mods = re.findall(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET (\S+)\)", f.read())
    chk.ok(len(mods) >= 6, "CMakeLists.txt: pkg-config modules %s" % mods)
    build_files = ["/usr/include/snappy-c.h", shutil.which("protoc-c") or "/usr/bin/protoc-c"]
    for mod in mods:
        q = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True, text=True)
        build_files.append(os.path.join(q.stdout.strip(), mod + ".pc"))
    for path in build_files:
        q = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
        owner_pkg = q.stdout.split(":")[0].strip() if q.returncode == 0 else None
        chk.ok(owner_pkg in set(buildp or []), "the builder needs %s (package %s), not in BUILD_PKGS" % (path, owner_pkg))

    # runtime packages == what the tested binary links
    m = re.search(r"apt-get install -y --no-install-recommends(.*?)&&", runtime, re.S)
    pkgs = set(m.group(1).replace("\\", " ").split()) if m else set()
    chk.ok(pkgs, "no apt-get install in the runtime stage")
    binary = h.BIN
    p = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout)
    chk.ok(needed, "readelf found no NEEDED entries in %s" % binary)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    resolved = {}
    for line in ldd.splitlines():
        mm = re.match(r"\s*(\S+) => (\S+)", line)
        if mm:
            resolved[mm.group(1)] = mm.group(2)
        mm = re.match(r"\s*(/\S+) \(", line)  # the dynamic loader, named by its path
        if mm:
            resolved[os.path.basename(mm.group(1))] = mm.group(1)

    def owner(lib):
        path = os.path.realpath(resolved.get(lib, ""))
        for cand in (path, "/usr" + path if not path.startswith("/usr") else path[4:]):
            q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if q.returncode == 0:
                return q.stdout.split(":")[0].strip()
        return None

    direct = {lib: owner(lib) for lib in needed}
    chk.ok(all(direct.values()), "no Debian package owns %s" % [l for l, p in direct.items() if not p])
    want = {p for p in direct.values() if p and p != "libc6"}
    closure = {owner(lib) for lib in resolved} - {None}
    chk.ok(want <= pkgs, "runtime stage lacks %s (linked by the binary)" % sorted(want - pkgs))
    extra = pkgs - want
    chk.ok(extra <= (closure | {"ca-certificates"}), "runtime installs packages the binary does not use: %s" %
           sorted(extra - closure - {"ca-certificates"}))
    print("image: runtime packages %s; linked %s" % (sorted(pkgs), sorted(want)))
    rc, out, err = h.run_scrapeship(["--version"])
    chk.ok(rc == 0 and out.startswith("scrapeship "), "scrapeship --version: %d %r" % (rc, out + err))


def check_iam(chk):
    with open(os.path.join(DEPLOY, "iam", "amp-policy.json")) as f:
        pol = json.load(f)
    chk.ok(pol.get("Version") == "2012-10-17", "policy Version")
    actions = {a for s in pol["Statement"] if s["Effect"] == "Allow" for a in
               (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    want = {"aps:RemoteWrite", "aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"}
    chk.ok(actions == want, "AMP policy actions %s" % sorted(actions))
    chk.ok(all(s["Resource"].startswith("arn:aws:aps:") and ":workspace/" in s["Resource"] for s in pol["Statement"]),
           "AMP policy should name the workspace")
    with open(os.path.join(DEPLOY, "iam", "irsa-trust-policy.json")) as f:
        irsa = json.load(f)
    st = irsa["Statement"][0]
    conds = st["Condition"]["StringEquals"]
    subs = [v for k, v in conds.items() if k.endswith(":sub")]
    chk.ok(st["Action"] == "sts:AssumeRoleWithWebIdentity" and subs == ["system:serviceaccount:%s:scrapeship" % NAMESPACE],
           "IRSA trust policy: %s" % st)
    with open(os.path.join(DEPLOY, "iam", "pod-identity-trust-policy.json")) as f:
        pit = json.load(f)
    st = pit["Statement"][0]
    chk.ok(st["Principal"] == {"Service": "pods.eks.amazonaws.com"} and set(st["Action"]) == {"sts:AssumeRole", "sts:TagSession"},
           "Pod Identity trust policy: %s" % st)


def check_dashboard(chk):
    with open(os.path.join(DEPLOY, "grafana", "scrapeship-dashboard.json")) as f:
        dash = json.load(f)
    chk.ok(dash.get("uid") and dash.get("title") and dash.get("panels"), "dashboard basics")
    src = ""
    for p in glob.glob(os.path.join(h.REPO, "*", "*.c")):
        with open(p, encoding="utf-8", errors="replace") as f:
            src += f.read()
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    chk.ok(len(exprs) >= 25, "dashboard has only %d queries" % len(exprs))
    names = set()
    for e in exprs:
        names |= set(re.findall(r"\b((?:scrapeship|process)_[a-z_]+)", e))
    for n in sorted(names):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        chk.ok(n in src or base in src, "dashboard queries %s, which nothing exports" % n)
    for p in dash["panels"]:
        if p["type"] != "row":
            chk.ok(p.get("datasource", {}).get("uid") == "${datasource}", "panel %r datasource" % p.get("title"))
    ids = [p["id"] for p in dash["panels"]]
    chk.ok(len(ids) == len(set(ids)), "duplicate panel ids")
    print("dashboard: %d panels, %d queries, %d metric names" % (len(dash["panels"]), len(exprs), len(names)))


def check_readme(chk):
    with open(os.path.join(h.REPO, "README.md")) as f:
        text = f.read()
    i, j = text.find("## Deploy on EKS"), text.find("## Design")
    chk.ok(0 <= i < j, "README: '## Deploy on EKS' missing or not right before '## Design'")
    if not 0 <= i < j:
        return
    sec = text[i:j]
    chk.ok(text[:j].rstrip().endswith(sec.rstrip()), "README: Deploy on EKS is not the section right before Design")
    for needle in ("aws amp create-workspace", "kubectl apply -k deploy/overlays/daemonset",
                   "scrapeship query --url https://aps-workspaces.", "eks.amazonaws.com/role-arn",
                   "create-pod-identity-association", "hashmod", "SHARD", "deploy/iam/amp-policy.json",
                   "deploy/grafana/scrapeship-dashboard.json"):
        chk.ok(needle in sec, "README Deploy on EKS lacks %r" % needle)
    # the relabel block shown is the DaemonSet's
    with open(os.path.join(DEPLOY, "overlays", "daemonset", "scrapeship.yaml")) as f:
        ds = yaml.safe_load(f)
    ds_rules = next(j for j in ds["scrape_configs"] if j["job_name"] == "kubernetes-pods")["relabel_configs"]
    shown = None
    for block in re.findall(r"```yaml\n(.*?)```", sec, re.S):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and "relabel_configs" in doc:
            shown = doc["relabel_configs"]
            break
        if isinstance(doc, dict) and "scrape_configs" in doc:
            for j in doc["scrape_configs"]:
                if j.get("job_name") == "kubernetes-pods":
                    shown = j.get("relabel_configs")
            if shown:
                break
    chk.ok(shown == ds_rules, "README's relabel block differs from the DaemonSet config's")


def main():
    chk = h.Check("deploy")
    check_yaml_files(chk)
    check_overlays(chk)
    check_image(chk)
    check_iam(chk)
    check_dashboard(chk)
    check_readme(chk)
    chk.finish()


if __name__ == "__main__":
    main()
