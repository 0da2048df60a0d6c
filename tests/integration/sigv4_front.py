#!/usr/bin/python3
"""A signature-checking front that plays Amazon Managed Service for Prometheus (AMP)
in front of a real Prometheus, for tests/integration/test_sigv4_e2e.py.

Every request to the API paths must carry a valid SigV4 signature (header form,
AWS4-HMAC-SHA256) for service "aps" and the configured region. The front recomputes
the signature with python3-botocore's SigV4Auth from what arrived on the wire (method,
path, decoded and re-encoded query, the headers the client listed in SignedHeaders,
the body), using the secret that belongs to the request's access key id:
  - static keys given in the settings (known_keys {id: secret}), which never expire;
  - every temporary credential fake_aws.py handed out, fetched from its GET /__issued
    (again whenever an unknown key id arrives); these need their session token in
    X-Amz-Security-Token, signed, and are refused once their Expiration has passed.
Refusals are 403 with an AWS-style JSON error body and an x-amzn-ErrorType header,
as AMP's REST-JSON protocol answers:
  MissingAuthenticationTokenException  no Authorization header
  IncompleteSignatureException         malformed header, wrong scope or missing x-amz-date
  UnrecognizedClientException          unknown access key id, missing or wrong token
  ExpiredTokenException                temporary credentials past their Expiration
  InvalidSignatureException            signature mismatch, or X-Amz-Date >5 min off
Accepted requests are forwarded to the upstream Prometheus (AMP path forms
/workspaces/<ws-id>/api/v1/remote_write and /workspaces/<ws-id>/api/v1/query(_range)
are mapped to Prometheus' /api/v1/write and /api/v1/query(_range); the plain
Prometheus paths are accepted as well) and the upstream answer is relayed.

Control paths (unsigned, for the test): GET /__stats (counters, per-key usage with
first/last use and expiration, the last rejections; never a secret), POST /__config
(merge JSON settings).

Usage: sigv4_front.py --upstream http://127.0.0.1:P --config settings.json [--port N];
prints {"port": N} on stdout once listening.
Settings: known_keys {id: secret}, key_labels {id: label}, fake_aws (base URL),
region (default us-east-1), service (default aps), max_skew_s (default 300).
"""
import argparse
import datetime
import hmac
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]{1,128})/(\d{8})/([a-z0-9-]{1,64})/"
                     r"([a-z0-9-]{1,64})/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$")
DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
WS_PREFIX_RE = re.compile(r"^/workspaces/[A-Za-z0-9_-]{1,64}(/.*)$")
MAX_BODY = 32 << 20  # remote write bodies are a few MiB at most
MAX_REJECTIONS_KEPT = 50

lock = threading.Lock()
settings = {"known_keys": {}, "key_labels": {}, "fake_aws": None, "region": "us-east-1", "service": "aps",
            "max_skew_s": 300}
upstream = None  # (host, port)
issued = {}      # access key id -> {"secret", "token", "by", "expiration" (epoch s)}
stats = {"accepted": 0, "rejected": {}, "rejections": [], "keys": {}, "paths": {}, "upstream_status": {},
         "issued_fetches": 0, "expired_uses": 0}


def parse_expiration(s):
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def refresh_issued():
    """Reload what fake_aws.py issued. Called without the lock held."""
    base = settings.get("fake_aws")
    if not base:
        return
    try:
        with urllib.request.urlopen(base + "/__issued", timeout=5) as r:
            doc = json.loads(r.read())
    except Exception:  # the fake is gone: keep what we know
        return
    with lock:
        stats["issued_fetches"] += 1
        for c in doc.get("credentials", []):
            issued[c["id"]] = {"secret": c["secret"], "token": c["token"], "by": c["by"],
                               "expiration": parse_expiration(c["expiration"]) if c.get("expiration") else None}


def lookup(key_id):
    """(secret, token, expiration, label) for a key id, or None."""
    for attempt in range(2):
        with lock:
            if key_id in settings["known_keys"]:
                return (settings["known_keys"][key_id], None, None,
                        settings["key_labels"].get(key_id, "static"))
            c = issued.get(key_id)
            if c:
                return (c["secret"], c["token"], c["expiration"], c["by"])
        if attempt == 0:
            refresh_issued()
    return None


def upstream_path(path):
    """The Prometheus path an AMP (or plain Prometheus) API path maps to, or None."""
    m = WS_PREFIX_RE.match(path)
    if m:
        path = m.group(1)
        if path == "/api/v1/remote_write":
            return "/api/v1/write"
    if path in ("/api/v1/write", "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels"):
        return path
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigv4-front/1"

    def log_message(self, fmt, *args):  # quiet: /__stats says what matters
        pass

    def reply(self, status, body=b"", ctype="application/json", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(data)

    def deny(self, code, message, detail=""):
        """403 as AMP sends it; `detail` goes to /__stats only (never secrets)."""
        with lock:
            stats["rejected"][code] = stats["rejected"].get(code, 0) + 1
            stats["rejections"].append({"t": time.time(), "code": code, "path": self.path[:200],
                                        "detail": detail[:300]})
            del stats["rejections"][:-MAX_REJECTIONS_KEPT]
        body = json.dumps({"message": message})
        self.reply(403, body, extra={"x-amzn-ErrorType": code + ":http://internal.amazon.com/coral/"})

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        n = int(n)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    # ---- control --------------------------------------------------------

    def control(self, body):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__stats" and self.command == "GET":
            with lock:
                doc = json.loads(json.dumps(stats))
            return self.reply(200, json.dumps(doc))
        if path == "/__config" and self.command == "POST":
            with lock:
                settings.update(json.loads(body or b"{}"))
            return self.reply(200, "{}")
        return self.reply(404, json.dumps({"message": "not found"}))

    # ---- the API ----------------------------------------------------------

    def handle_any(self):
        arrival = time.time()
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.reply(413, json.dumps({"message": "request body too large"}))
        split = urllib.parse.urlsplit(self.path)
        if split.path.startswith("/__"):
            return self.control(body)
        with lock:
            stats["paths"][split.path] = stats["paths"].get(split.path, 0) + 1
        verdict = self.verify(split, body, arrival)
        if verdict is not None:
            return self.deny(*verdict)
        target = upstream_path(split.path)
        if target is None:
            return self.reply(404, json.dumps({"message": "no such API: %s" % split.path[:100]}))
        self.forward(target, split.query, body)

    do_GET = handle_any
    do_POST = handle_any
    do_PUT = handle_any

    def verify(self, split, body, arrival):
        """None when the request is signed correctly with live credentials, else
        (code, message, detail)."""
        auth = self.headers.get("Authorization")
        if not auth:
            return ("MissingAuthenticationTokenException", "Missing Authentication Token", "no Authorization")
        m = AUTH_RE.match(auth)
        if not m:
            return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                    "'Signature' and 'SignedHeaders' parameters.", "malformed Authorization")
        key_id, date, region, service, signed, signature = m.groups()
        with lock:
            want_region, want_service, skew = settings["region"], settings["service"], settings["max_skew_s"]
        if region != want_region or service != want_service:
            return ("IncompleteSignatureException", "Credential should be scoped to a valid region and "
                    "service.", "scope %s/%s, want %s/%s" % (region, service, want_region, want_service))
        amz_date = self.headers.get("X-Amz-Date") or ""
        if not DATE_RE.match(amz_date) or amz_date[:8] != date:
            return ("IncompleteSignatureException", "X-Amz-Date is missing or does not match the "
                    "credential scope date.", "x-amz-date %r vs scope %s" % (amz_date, date))
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs(arrival - t.timestamp()) > skew:
            return ("InvalidSignatureException", "Signature expired: %s is now earlier or later than "
                    "the allowed skew." % amz_date, "clock skew")
        signed_list = signed.split(";")
        if signed_list != sorted(set(signed_list)) or "host" not in signed_list or \
                "x-amz-date" not in signed_list:
            return ("IncompleteSignatureException", "SignedHeaders must be sorted and include host and "
                    "x-amz-date.", "signed headers %s" % signed)
        found = lookup(key_id)
        if found is None:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.",
                    "unknown key id")
        secret, token, expiration, label = found
        if token is not None:
            got = self.headers.get("X-Amz-Security-Token")
            if got is None or "x-amz-security-token" not in signed_list:
                return ("UnrecognizedClientException", "The security token included in the request is "
                        "invalid.", "temporary key %s without its (signed) session token" % label)
            if not hmac.compare_digest(got.encode(), token.encode()):
                return ("UnrecognizedClientException", "The security token included in the request is "
                        "invalid.", "temporary key %s with another session token" % label)
        if expiration is not None and arrival >= expiration:
            with lock:
                stats["expired_uses"] += 1
            return ("ExpiredTokenException", "The security token included in the request is expired",
                    "key from %s expired %.1f s before the request" % (label, arrival - expiration))
        headers = {}
        for name in signed_list:
            values = self.headers.get_all(name)
            if not values:
                return ("InvalidSignatureException", "The request signature we calculated does not match "
                        "the signature you provided.", "signed header %s missing" % name)
            headers[name] = ",".join(values) if len(values) > 1 else values[0]
        # The server's view of the query: decode each piece, then SigV4Auth encodes
        # it again (RFC 3986 unreserved set) and sorts, as AWS does.
        params = [(urllib.parse.unquote(k), urllib.parse.unquote(v))
                  for k, _, v in (p.partition("=") for p in split.query.split("&") if p)]
        req = AWSRequest(method=self.command, url="http://%s%s" % (headers["host"], split.path), data=body,
                         headers=headers, params=params)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(key_id, secret, token), service, region)
        creq = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, creq), req)
        if not hmac.compare_digest(want, signature):
            return ("InvalidSignatureException", "The request signature we calculated does not match the "
                    "signature you provided. Check your AWS Secret Access Key and signing method.",
                    "signature mismatch, key from %s, canonical request:\n%s" % (label, creq))
        with lock:
            stats["accepted"] += 1
            k = stats["keys"].setdefault(key_id, {"label": label, "accepted": 0, "first": arrival,
                                                  "last": arrival, "expiration": expiration,
                                                  "min_left": None})
            k["accepted"] += 1
            k["last"] = arrival
            if expiration is not None:
                left = expiration - arrival
                k["min_left"] = left if k["min_left"] is None else min(k["min_left"], left)
        return None

    def forward(self, path, query, body):
        conn = http.client.HTTPConnection(upstream[0], upstream[1], timeout=30)
        headers = {}
        for h in ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version", "Accept",
                  "User-Agent", "Retry-Attempt"):
            v = self.headers.get(h)
            if v is not None:
                headers[h] = v
        try:
            conn.request(self.command, path + ("?" + query if query else ""),
                         body=body if self.command != "GET" else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            status, ctype = r.status, r.getheader("Content-Type", "text/plain")
        except OSError as e:
            status, ctype, data = 502, "application/json", json.dumps({"message": "upstream: %s" % e}).encode()
        finally:
            conn.close()
        with lock:
            key = str(status)
            stats["upstream_status"][key] = stats["upstream_status"].get(key, 0) + 1
        self.reply(status, data, ctype)


def main():
    global upstream
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="Prometheus base URL, http://127.0.0.1:PORT")
    ap.add_argument("--config", help="JSON settings file")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.upstream)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("sigv4_front.py: the upstream must be on loopback")
    upstream = (u.hostname, u.port or 80)
    if a.config:
        with open(a.config) as f:
            settings.update(json.load(f))
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
