#!/usr/bin/python3
"""fake_kube_api.py: a small Kubernetes API server for discovery tests.

It serves the core/v1 collections kubernetes_sd reads (pods, services, endpoints),
discovery.k8s.io/v1 endpointslices and monitoring.coreos.com/v1 servicemonitors and
podmonitors, cluster-wide (/api/v1/pods, /apis/GROUP/VERSION/endpointslices) and per
namespace (/api/v1/namespaces/NS/pods), the way kube-apiserver does for a JSON client:

  * LIST returns {"kind": "PodList", "metadata": {"resourceVersion": RV}, "items": [...]}
    with labelSelector and fieldSelector applied, and pages of `limit` items with a
    `continue` token;
  * WATCH (?watch=true&resourceVersion=RV) streams newline-delimited JSON events
    (ADDED / MODIFIED / DELETED, and BOOKMARK when allowWatchBookmarks) over a chunked
    response, first every retained event newer than RV, then live ones, until
    timeoutSeconds. An object that starts or stops matching the selectors is sent as
    ADDED or DELETED, as the API server does;
  * a RV older than the retained history ("compacted") gets 410 Gone: by default as an
    ERROR event with a Status {code: 410, reason: Expired} on a 200 stream (what the
    API server's watch cache does), or as an HTTP 410 when gone_mode == "http".

Auth is optional: with `token` or `token_file` set (the file is re-read on every
request, so a test can rotate it), requests without "Authorization: Bearer <token>"
get 401. With `certfile`/`keyfile` it serves HTTPS.

The test drives it in-process: apply()/delete() change objects (each change bumps the
resource version), compact() forgets history and ends every watch so clients come back
with an expired RV, drop() cuts every watch connection without a clean end (clients
must re-watch from their last RV), and `requests` records every request (path, query,
status) for assertions. Run as a program it serves the objects of a JSON file until
killed (for poking at it with curl or Prometheus).

Only the Python standard library is used.
"""
import argparse
import copy
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = {"pods": "Pod", "services": "Service", "endpoints": "Endpoints", "secrets": "Secret",
         "servicemonitors": "ServiceMonitor", "podmonitors": "PodMonitor", "endpointslices": "EndpointSlice"}
# Resources outside the core group are served under /apis/GROUP/VERSION/...
GROUP_OF = {"servicemonitors": "monitoring.coreos.com/v1", "podmonitors": "monitoring.coreos.com/v1",
            "endpointslices": "discovery.k8s.io/v1"}
GROUP_KINDS = set(GROUP_OF)
GROUP = "monitoring.coreos.com/v1"  # Prometheus Operator's CRDs


def api_version(kind):
    return GROUP_OF.get(kind, "v1")
MAX_WATCH_SECONDS = 600


# ---- selectors (k8s.io/apimachinery labels.Parse and fields.ParseSelector subsets) ----

def _split_top(s):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(s):
    """-> list of predicates over a labels dict. Supports =, ==, !=, in, notin, exists, !."""
    preds = []
    for term in _split_top(s or ""):
        if " notin " in term or " in " in term:
            neg = " notin " in term
            key, vals = term.split(" notin " if neg else " in ", 1)
            vals = {v.strip() for v in vals.strip().strip("()").split(",") if v.strip()}
            key = key.strip()
            if neg:
                preds.append(lambda ls, k=key, vs=vals: ls.get(k) not in vs)
            else:
                preds.append(lambda ls, k=key, vs=vals: k in ls and ls[k] in vs)
        elif "!=" in term:
            key, val = [x.strip() for x in term.split("!=", 1)]
            preds.append(lambda ls, k=key, v=val: ls.get(k) != v)
        elif "==" in term or "=" in term:
            key, val = [x.strip() for x in term.split("==" if "==" in term else "=", 1)]
            preds.append(lambda ls, k=key, v=val: ls.get(k) == v)
        elif term.startswith("!"):
            preds.append(lambda ls, k=term[1:].strip(): k not in ls)
        else:
            preds.append(lambda ls, k=term: k in ls)
    return preds


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_field_selector(s):
    preds = []
    for term in _split_top(s or ""):
        if "!=" in term:
            key, val = term.split("!=", 1)
            preds.append(lambda o, k=key.strip(), v=val.strip(): field_value(o, k) != v)
        else:
            key, val = term.split("==" if "==" in term else "=", 1)
            preds.append(lambda o, k=key.strip(), v=val.strip(): field_value(o, k) == v)
    return preds


def matches(obj, namespace, lsel, fsel):
    if obj is None:
        return False
    md = obj.get("metadata", {})
    if namespace and md.get("namespace") != namespace:
        return False
    labels = md.get("labels") or {}
    return all(p(labels) for p in lsel) and all(p(obj) for p in fsel)


# ---- the server -----------------------------------------------------------------------

class _Watch:
    def __init__(self, kind, namespace, lsel, fsel, bookmarks):
        self.kind, self.namespace, self.lsel, self.fsel = kind, namespace, lsel, fsel
        self.bookmarks = bookmarks
        self.queue = []
        self.closed = False
        self.dropped = False
        self.sock = None


class FakeKubeAPI:
    def __init__(self, token=None, token_file=None, certfile=None, keyfile=None, gone_mode="event"):
        self.token, self.token_file = token, token_file
        self.certfile, self.keyfile = certfile, keyfile
        self.gone_mode = gone_mode
        self.lock = threading.Condition()
        self.rv = 100
        self.min_rv = 0  # a watch from an RV below this is answered 410 Gone
        self.objects = {k: {} for k in KINDS}
        self.history = []  # (rv, kind, old, new)
        self.watches = []
        self.requests = []  # {"method","path","query","status","watch"}
        self.httpd = None
        self.port = None
        self.forbidden = set()  # resources answered 403, as without an RBAC rule
        self.secret_delay = 0.0  # seconds before a Secret GET is answered (a slow API server)
        self.secret_error = None  # HTTP status every Secret GET gets instead (e.g. 500)

    # -- state changes (bump the resource version, notify watches) --

    def _notify(self, kind, old, new, rv):
        self.history.append((rv, kind, old, new))
        for w in self.watches:
            if w.kind == kind and not w.closed:
                w.queue.append((rv, old, new))
        self.lock.notify_all()

    def apply(self, kind, obj):
        """Create or replace an object (by namespace/name). Returns its new RV."""
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        md.setdefault("uid", "uid-%s-%s-%s" % (kind, md["namespace"], md["name"]))
        obj["kind"] = KINDS[kind]
        obj["apiVersion"] = api_version(kind)
        with self.lock:
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            key = (md["namespace"], md["name"])
            old = self.objects[kind].get(key)
            self.objects[kind][key] = obj
            self._notify(kind, old, obj, self.rv)
            return self.rv

    def delete(self, kind, namespace, name):
        with self.lock:
            old = self.objects[kind].pop((namespace, name), None)
            if old is None:
                return None
            self.rv += 1
            # DELETED events carry the last state of the object, at the deletion RV
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._notify(kind, gone, None, self.rv)
            return self.rv

    def compact(self):
        """Forget all history and end every watch: reconnecting clients get 410 Gone."""
        with self.lock:
            self.rv += 1
            self.min_rv = self.rv
            self.history = []
            for w in self.watches:
                w.closed = True
            self.lock.notify_all()

    def drop(self):
        """Cut every watch connection abruptly (no terminating chunk)."""
        with self.lock:
            for w in self.watches:
                w.dropped = True
                w.closed = True
                if w.sock is not None:
                    try:
                        w.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self.lock.notify_all()

    def active_watches(self, kind=None):
        with self.lock:
            return sum(1 for w in self.watches if not w.closed and (kind is None or w.kind == kind))

    def count(self, watch=None, status=None, kind=None):
        with self.lock:
            return sum(1 for r in self.requests
                       if (watch is None or r["watch"] == watch) and (status is None or r["status"] == status)
                       and (kind is None or r["kind"] == kind))

    # -- serving --

    def start(self, port=0):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                api._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.port

    def stop(self):
        self.drop()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.certfile else "http", self.port)

    def _expected_token(self):
        if self.token_file:
            try:
                with open(self.token_file) as f:
                    return f.read().strip()
            except OSError:
                return None
        return self.token

    def _send_json(self, h, status, doc):
        body = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _status(self, code, reason, message):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}

    def _handle(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        parts = [p for p in u.path.split("/") if p]
        watch = q.get("watch") in ("1", "true")
        rec = {"method": "GET", "path": u.path, "query": q, "status": 0, "watch": watch, "kind": None,
               "auth": h.headers.get("Authorization", "")}
        with self.lock:
            self.requests.append(rec)
        want = self._expected_token()
        if (self.token or self.token_file) and h.headers.get("Authorization") != "Bearer %s" % want:
            rec["status"] = 401
            return self._send_json(h, 401, self._status(401, "Unauthorized", "Unauthorized"))
        if parts == ["version"]:
            rec["status"] = 200
            return self._send_json(h, 200, {"major": "1", "minor": "27", "gitVersion": "v1.27.0"})
        namespace = None
        prefix = parts[:3] if parts[:1] == ["apis"] else ["api", "v1"]
        n = len(prefix)
        if len(parts) == n + 1 and parts[:n] == prefix:
            kind = parts[n]
        elif len(parts) == n + 3 and parts[:n + 1] == prefix + ["namespaces"]:
            namespace, kind = parts[n + 1], parts[n + 2]
        elif len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
            return self._get_secret(h, rec, parts[3], parts[5])
        else:
            kind = None
        if kind in KINDS and api_version(kind) != "/".join(prefix[1:]):
            kind = None  # a resource asked for under another group or version
        if kind in self.forbidden:
            rec["status"] = 403
            where = "in the namespace \"%s\"" % namespace if namespace else "at the cluster scope"
            grp = api_version(kind).split("/")[0] if kind in GROUP_KINDS else ""
            return self._send_json(h, 403, self._status(403, "Forbidden",
                                   '%s.%s is forbidden: User "system:serviceaccount:scrapeship:scrapeship" cannot '
                                   '%s resource "%s" in API group "%s" %s' % (kind, grp, "watch" if watch else "list",
                                                                            kind, grp, where)))
        if kind not in KINDS or kind == "secrets":
            rec["status"] = 404
            return self._send_json(h, 404, self._status(404, "NotFound", "the server could not find the requested resource"))
        rec["kind"] = kind
        try:
            lsel = parse_label_selector(q.get("labelSelector", ""))
            fsel = parse_field_selector(q.get("fieldSelector", ""))
        except ValueError:
            rec["status"] = 400
            return self._send_json(h, 400, self._status(400, "BadRequest", "bad selector"))
        if watch:
            return self._watch(h, rec, kind, namespace, lsel, fsel, q)
        return self._list(h, rec, kind, namespace, lsel, fsel, q)

    def _get_secret(self, h, rec, namespace, name):
        rec["kind"] = "secrets"
        if "secrets" in self.forbidden:
            rec["status"] = 403
            return self._send_json(h, 403, self._status(403, "Forbidden", 'secrets "%s" is forbidden' % name))
        if self.secret_delay:
            time.sleep(self.secret_delay)
        if self.secret_error:
            rec["status"] = self.secret_error
            return self._send_json(h, self.secret_error, self._status(self.secret_error, "InternalError",
                                                                      "an error on the server has prevented the "
                                                                      "request from succeeding"))
        with self.lock:
            obj = copy.deepcopy(self.objects["secrets"].get((namespace, name)))
        if obj is None:
            rec["status"] = 404
            return self._send_json(h, 404, self._status(404, "NotFound", 'secrets "%s" not found' % name))
        rec["status"] = 200
        return self._send_json(h, 200, obj)

    def _list(self, h, rec, kind, namespace, lsel, fsel, q):
        limit = int(q.get("limit") or 0)
        start = 0
        with self.lock:
            rv = self.rv
            if q.get("continue"):
                off, crv = q["continue"].split(":")
                start, rv_at = int(off), int(crv)
                if rv_at < self.min_rv:
                    rec["status"] = 410
                    return self._send_json(h, 410, self._status(410, "Expired", "continue token expired"))
                rv = rv_at
            items = [copy.deepcopy(o) for _, o in sorted(self.objects[kind].items())
                     if matches(o, namespace, lsel, fsel)]
        page = items[start:start + limit] if limit else items[start:]
        for it in page:  # list items carry no kind/apiVersion
            it.pop("kind", None)
            it.pop("apiVersion", None)
        meta = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = "%d:%d" % (start + limit, rv)
        rec["status"] = 200
        self._send_json(h, 200, {"kind": KINDS[kind] + "List", "apiVersion": api_version(kind), "metadata": meta,
                                 "items": page})

    def _watch(self, h, rec, kind, namespace, lsel, fsel, q):
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            since = 0
        timeout = min(int(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        w = _Watch(kind, namespace, lsel, fsel, q.get("allowWatchBookmarks") in ("1", "true"))
        w.sock = h.connection
        with self.lock:
            expired = since and since < self.min_rv
            if not expired:
                for (rv, k, old, new) in self.history:
                    if k == kind and rv > since:
                        w.queue.append((rv, old, new))
                self.watches.append(w)
        if expired and self.gone_mode == "http":
            rec["status"] = 410
            return self._send_json(h, 410, self._status(
                410, "Expired", "too old resource version: %d (%d)" % (since, self.min_rv)))
        rec["status"] = 200
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def send(doc):
            line = (json.dumps(doc) + "\n").encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            h.wfile.flush()

        try:
            if expired:
                rec["gone"] = True
                send({"type": "ERROR", "object": self._status(
                    410, "Expired", "too old resource version: %d (%d)" % (since, self.min_rv))})
                h.wfile.write(b"0\r\n\r\n")
                return
            deadline = time.time() + timeout
            while True:
                with self.lock:
                    while not w.queue and not w.closed and time.time() < deadline:
                        self.lock.wait(min(0.2, max(0.0, deadline - time.time())))
                    batch, w.queue = w.queue, []
                    done = w.closed or time.time() >= deadline
                    dropped = w.dropped
                if dropped:
                    return
                for rv, old, new in batch:
                    was = matches(old, namespace, lsel, fsel)
                    now = matches(new, namespace, lsel, fsel)
                    if was and now:
                        send({"type": "MODIFIED", "object": new})
                    elif now:
                        send({"type": "ADDED", "object": new})
                    elif was:
                        gone = new if new is not None else old
                        send({"type": "DELETED", "object": gone})
                    elif w.bookmarks:
                        send({"type": "BOOKMARK", "object": {
                            "kind": KINDS[kind], "apiVersion": api_version(kind),
                            "metadata": {"resourceVersion": str(rv)}}})
                if done:
                    h.wfile.write(b"0\r\n\r\n")
                    h.wfile.flush()
                    return
        except OSError:
            return
        finally:
            with self.lock:
                w.closed = True
                if w in self.watches:
                    self.watches.remove(w)
            if w.dropped:
                h.close_connection = True


# ---- object builders for tests ---------------------------------------------------------

def pod(name, ip, namespace="default", node="node-a", containers=None, init_containers=None,
        labels=None, annotations=None, phase="Running", ready="True", host_ip="10.0.0.1",
        owner=None, statuses=True):
    """A Pod as the API server returns it. containers: [(name, image, [(port_name, number, proto)])]."""
    containers = containers or [("app", "example/app:1", [("metrics", 8080, "TCP")])]

    def spec_c(c):
        d = {"name": c[0], "image": c[1]}
        if c[2]:
            d["ports"] = [dict([("containerPort", p[1]), ("protocol", p[2])] + ([("name", p[0])] if p[0] else []))
                          for p in c[2]]
        return d
    md = {"name": name, "namespace": namespace}
    if labels:
        md["labels"] = dict(labels)
    if annotations:
        md["annotations"] = dict(annotations)
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                  "uid": "owner-uid", "controller": True, "blockOwnerDeletion": True}]
    spec = {"nodeName": node, "containers": [spec_c(c) for c in containers]}
    if init_containers:
        spec["initContainers"] = [spec_c(c) for c in init_containers]
    status = {"phase": phase, "hostIP": host_ip}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if ready is not None:
        status["conditions"] = [{"type": "Initialized", "status": "True"},
                                {"type": "Ready", "status": ready},
                                {"type": "ContainersReady", "status": ready}]
    if statuses:
        status["containerStatuses"] = [{"name": c[0], "ready": ready == "True", "image": c[1],
                                        "containerID": "containerd://%s-%s" % (name, c[0])} for c in containers]
        if init_containers:
            status["initContainerStatuses"] = [{"name": c[0], "image": c[1],
                                                "containerID": "containerd://%s-init-%s" % (name, c[0])}
                                               for c in init_containers]
    return {"metadata": md, "spec": spec, "status": status}


def service(name, ports, namespace="default", labels=None, selector=None):
    """A Service; ports: [(name, port, targetPort)]."""
    md = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    return {"metadata": md, "spec": {"selector": dict(selector or {}), "type": "ClusterIP",
                                     "clusterIP": "10.96.0.10",
                                     "ports": [{"name": p[0], "port": p[1], "targetPort": p[2], "protocol": "TCP"}
                                               for p in ports]}}


def endpoints(name, addresses, ports, namespace="default", labels=None):
    """Endpoints of a Service; addresses: [(ip, pod_name, node)], ports: [(name, port)]."""
    md = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    return {"metadata": md, "subsets": [{
        "addresses": [{"ip": a[0], "nodeName": a[2],
                       "targetRef": {"kind": "Pod", "name": a[1], "namespace": namespace}} for a in addresses],
        "ports": [{"name": p[0], "port": p[1], "protocol": "TCP"} for p in ports]}]}


def endpointslice(name, service, addresses, ports, namespace="default", address_type="IPv4", labels=None):
    """A discovery.k8s.io/v1 EndpointSlice of a Service (label kubernetes.io/service-name);
    addresses: [(ip, pod_name or None, node or None, ready)], ports: [(name, port, protocol)],
    a None in a port leaves that field out (the API allows it)."""
    md = {"name": name, "namespace": namespace,
          "labels": dict(labels or {}, **{"kubernetes.io/service-name": service,
                                          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})}
    eps = []
    for ip, pod_name, node, ready in addresses:
        ep = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": False}}
        if pod_name:
            ep["targetRef"] = {"kind": "Pod", "name": pod_name, "namespace": namespace}
        if node:
            ep["nodeName"] = node
        eps.append(ep)
    return {"metadata": md, "addressType": address_type, "endpoints": eps,
            "ports": [{k: v for k, v in (("name", p[0]), ("port", p[1]), ("protocol", p[2])) if v is not None}
                      for p in ports]}


def secret(name, data, namespace="default"):
    """A Secret; data values are plain strings (sent base64-encoded, as the API does)."""
    import base64
    return {"metadata": {"name": name, "namespace": namespace}, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--objects", help="JSON file: {\"pods\": [...], \"services\": [...], \"endpoints\": [...]}")
    ap.add_argument("--token")
    args = ap.parse_args()
    api = FakeKubeAPI(token=args.token)
    if args.objects:
        with open(args.objects) as f:
            doc = json.load(f)
        for kind, objs in doc.items():
            for o in objs:
                api.apply(kind, o)
    api.start(args.port)
    print(api.url(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
