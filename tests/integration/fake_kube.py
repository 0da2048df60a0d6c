#!/usr/bin/python3
"""fake_kube.py: a small Kubernetes API server for the scaler's tests.

It serves what `scrapeship scaler` calls, the way kube-apiserver answers a JSON
client:

  GET   /apis/apps/v1/namespaces/NS/{deployments,statefulsets}/NAME/scale
        -> autoscaling/v1 Scale {spec.replicas, status.replicas, status.selector}
  PATCH the same path, Content-Type application/merge-patch+json,
        body {"spec":{"replicas":N}} -> the updated Scale
  GET   /apis/apps/v1/namespaces/NS/{deployments,statefulsets}/NAME
        -> the apps/v1 object (metadata.annotations, spec.replicas,
           status.replicas / readyReplicas)

Errors are Status objects with the codes the API server uses: 401 without
"Authorization: Bearer <token>" (the token is compared to `token`, or re-read from
`token_file` on every request, or checked against the set `tokens`, which a test
edits with accept_token()/revoke_token() to rotate it the way the kubelet does: the
old token stays valid for a while), 404 for unknown objects or
paths, 405 for other methods, 415 for a PATCH with another content type, 422 for a
body that is not a replicas merge patch. A test can make it answer 403 (with the
RBAC message) or 409/5xx for the next N requests of a method with fail_next().

With tls=(cert, key, client_ca) it serves HTTPS and, given client_ca, requires a
client certificate (kubeconfig client-certificate auth).

Pods are not simulated: status.replicas and readyReplicas follow spec.replicas at
once. Every PATCH is recorded as a JSON line {"t", "namespace", "kind", "name",
"from", "to"} in `patches` and, when `record` is set, appended to that file.
`requests` counts (method, path) pairs.

Use in-process (FakeKube(...).start()) or as a program:
  fake_kube.py --port N --token T --record patches.jsonl --object ns/deployments/name=replicas ...
which prints {"port": N} once listening. Only the standard library is used.
"""
import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^/apis/apps/v1/namespaces/([a-z0-9.-]+)/(deployments|statefulsets)/([a-z0-9.-]+)(/scale)?$")
KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
MAX_BODY = 1 << 20


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class FakeKube:
    def __init__(self, token=None, token_file=None, record=None, port=0, tls=None, tokens=None):
        """tls: (certfile, keyfile, client_ca or None): serve HTTPS; with client_ca,
        a client certificate signed by it is required."""
        self.tokens = set(tokens) if tokens is not None else None
        self.token = token
        self.token_file = token_file
        self.record = record
        self.lock = threading.Lock()
        self.objects = {}   # (ns, resource, name) -> {"replicas", "annotations", "rv", "uid"}
        self.patches = []   # recorded PATCHes
        self.requests = {}  # (method, path) -> count
        self.failures = []  # [method or None, status, remaining]
        self.auth_failures = 0
        self.rv = 100
        self.srv = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            if tls[2]:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(tls[2])
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
            self.url = "https://127.0.0.1:%d" % self.port

    # ---- test controls -----------------------------------------------------

    def add(self, ns, resource, name, replicas, annotations=None):
        with self.lock:
            self.rv += 1
            self.objects[(ns, resource, name)] = {"replicas": replicas, "annotations": dict(annotations or {}),
                                                  "rv": self.rv, "uid": "uid-%s-%s" % (ns, name)}

    def annotate(self, ns, resource, name, key, value):
        """value None removes the annotation."""
        with self.lock:
            o = self.objects[(ns, resource, name)]
            if value is None:
                o["annotations"].pop(key, None)
            else:
                o["annotations"][key] = value
            self.rv += 1
            o["rv"] = self.rv

    def replicas(self, ns, resource, name):
        with self.lock:
            return self.objects[(ns, resource, name)]["replicas"]

    def accept_token(self, token):
        with self.lock:
            self.tokens = (self.tokens or set()) | {token}

    def revoke_token(self, token):
        with self.lock:
            self.tokens.discard(token)

    def fail_next(self, method, status, count=1, name=None):
        """Answer the next `count` requests of `method` (None: any) for object `name`
        (None: any) with `status`."""
        with self.lock:
            self.failures.append([method, status, count, name])

    def patches_for(self, name):
        with self.lock:
            return [p for p in self.patches if p["name"] == name]

    def count(self, method, path_part=""):
        with self.lock:
            return sum(n for (m, p), n in self.requests.items() if m == method and path_part in p)

    def start(self):
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    # ---- the server ----------------------------------------------------------

    def _handler(self):
        fk = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fake-kube/1"

            def log_message(self, fmt, *args):
                pass

            def send_json(self, code, doc):
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def fail(self, code, reason, message):
                self.send_json(code, status_obj(code, reason, message))

            def authorized(self):
                got = self.headers.get("Authorization", "")
                with fk.lock:
                    if fk.tokens is not None:
                        return any(got == "Bearer " + t for t in fk.tokens)
                want = fk.token
                if fk.token_file:
                    try:
                        with open(fk.token_file) as f:
                            want = f.read().strip()
                    except OSError:
                        want = None
                if want is None:
                    return True
                return got == "Bearer " + want

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n < 0 or n > MAX_BODY:
                    self.close_connection = True
                    return self.fail(413, "RequestEntityTooLarge", "request body too large")
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?", 1)[0]
                with fk.lock:
                    key = (self.command, path)
                    fk.requests[key] = fk.requests.get(key, 0) + 1
                if not self.authorized():
                    with fk.lock:
                        fk.auth_failures += 1
                    return self.fail(401, "Unauthorized", "Unauthorized")
                m = PATH_RE.match(path)
                if not m:
                    return self.fail(404, "NotFound", "the server could not find the requested resource")
                ns, resource, name, scale = m.groups()
                kind = KINDS[resource]
                with fk.lock:
                    injected = None
                    for f in fk.failures:
                        if f[2] > 0 and (f[0] is None or f[0] == self.command) and f[3] in (None, name):
                            f[2] -= 1
                            injected = f[1]
                            break
                if injected == 403:
                    verb = {"GET": "get", "PATCH": "patch"}.get(self.command, self.command.lower())
                    return self.fail(403, "Forbidden",
                                     '%s.apps "%s" is forbidden: User "system:serviceaccount:%s:scaler" cannot %s '
                                     'resource "%s%s" in API group "apps" in the namespace "%s"'
                                     % (resource, name, ns, verb, resource, scale or "", ns))
                if injected == 409:
                    return self.fail(409, "Conflict", 'Operation cannot be fulfilled on %s.apps "%s": the object '
                                     'has been modified; please apply your changes to the latest version and try '
                                     'again' % (resource, name))
                if injected is not None:
                    return self.fail(injected, "InternalError", "injected failure %d" % injected)
                with fk.lock:
                    obj = fk.objects.get((ns, resource, name))
                    if obj is not None:
                        obj = json.loads(json.dumps(obj))
                if obj is None:
                    return self.fail(404, "NotFound", '%s.apps "%s" not found' % (resource, name))
                if self.command == "GET":
                    return self.send_json(200, self.scale_doc(ns, kind, name, obj) if scale
                                          else self.object_doc(ns, kind, name, obj))
                if self.command != "PATCH" or not scale:
                    return self.fail(405, "MethodNotAllowed", "the server does not allow this method on the "
                                     "requested resource")
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if ctype != "application/merge-patch+json":
                    return self.fail(415, "UnsupportedMediaType",
                                     "the body of the request was in an unknown format - accepted media types "
                                     "include: application/json-patch+json, application/merge-patch+json, "
                                     "application/apply-patch+yaml")
                try:
                    doc = json.loads(body)
                    to = doc["spec"]["replicas"]
                    if set(doc) != {"spec"} or set(doc["spec"]) != {"replicas"} or not isinstance(to, int) \
                            or isinstance(to, bool) or to < 0:
                        raise ValueError
                except (ValueError, KeyError, TypeError):
                    return self.fail(422, "Invalid", "Scale.autoscaling \"%s\" is invalid: %r" % (name, body[:200]))
                with fk.lock:
                    o = fk.objects[(ns, resource, name)]
                    rec = {"t": time.time(), "namespace": ns, "kind": kind, "name": name,
                           "from": o["replicas"], "to": to}
                    o["replicas"] = to
                    fk.rv += 1
                    o["rv"] = fk.rv
                    fk.patches.append(rec)
                    if fk.record:
                        with open(fk.record, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                    obj = json.loads(json.dumps(o))
                return self.send_json(200, self.scale_doc(ns, kind, name, obj))

            def meta(self, ns, name, obj):
                return {"name": name, "namespace": ns, "uid": obj["uid"], "resourceVersion": str(obj["rv"]),
                        "creationTimestamp": "2024-01-01T00:00:00Z"}

            def scale_doc(self, ns, kind, name, obj):
                status = {"replicas": obj["replicas"], "selector": "app=%s" % name}
                spec = {"replicas": obj["replicas"]} if obj["replicas"] else {}  # omitempty, as Go does
                return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": self.meta(ns, name, obj),
                        "spec": spec, "status": status}

            def object_doc(self, ns, kind, name, obj):
                md = self.meta(ns, name, obj)
                md["generation"] = obj["rv"]
                if obj["annotations"]:
                    md["annotations"] = obj["annotations"]
                status = {"observedGeneration": obj["rv"]}
                if obj["replicas"]:
                    status.update({"replicas": obj["replicas"], "readyReplicas": obj["replicas"],
                                   "availableReplicas": obj["replicas"], "updatedReplicas": obj["replicas"]})
                return {"kind": kind, "apiVersion": "apps/v1", "metadata": md,
                        "spec": {"replicas": obj["replicas"], "selector": {"matchLabels": {"app": name}}},
                        "status": status}

            do_GET = handle_any
            do_PATCH = handle_any
            do_POST = handle_any
            do_PUT = handle_any
            do_DELETE = handle_any

        return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--token-file")
    ap.add_argument("--record")
    ap.add_argument("--object", action="append", default=[], help="ns/deployments/name=replicas")
    a = ap.parse_args()
    fk = FakeKube(token=a.token, token_file=a.token_file, record=a.record, port=a.port)
    for spec in a.object:
        path, _, n = spec.partition("=")
        ns, resource, name = path.split("/")
        fk.add(ns, resource, name, int(n or 1))
    print(json.dumps({"port": fk.port}), flush=True)
    try:
        fk.srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
