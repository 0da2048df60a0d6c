#!/usr/bin/python3
"""A fake of the AWS credential endpoints, for tests/integration/test_awscred.py.

One stdlib ThreadingHTTPServer on 127.0.0.1 serves, on one port:

  STS (AWS query protocol, POST form to any path not listed below), as documented in
  the STS API reference:
    Action=AssumeRoleWithWebIdentity  unsigned; WebIdentityToken must equal the
                                      configured token, else 400 InvalidIdentityToken
    Action=AssumeRole                 must carry a SigV4 Authorization header for service
                                      "sts" from a key the fake knows (configured static
                                      keys, or temporary keys it issued, whose session
                                      token must then come in X-Amz-Security-Token); the
                                      signature is recomputed with botocore, else 403
                                      SignatureDoesNotMatch / InvalidClientTokenId /
                                      MissingAuthenticationToken; ExternalId must equal the
                                      configured one when one is configured
    replies: <ActionResponse><ActionResult><Credentials>... and <ErrorResponse><Error>
  IMDSv2 (EC2 instance metadata):
    PUT /latest/api/token             needs X-aws-ec2-metadata-token-ttl-seconds (1-21600),
                                      refuses X-Forwarded-For (as IMDS does)
    GET /latest/meta-data/iam/security-credentials/[role]
                                      needs a valid X-aws-ec2-metadata-token, else 401:
                                      token-less (IMDSv1) GETs are counted and refused
  container credentials (ECS / EKS Pod Identity agent):
    GET /container/...                Authorization must equal the configured token
  control, for the test:
    GET /__stats    counters as JSON     GET /__issued  every secret handed out
    POST /__config  merge JSON settings  (lifetime, imds_token_status, ...)

Usage: fake_aws.py --config settings.json [--port N]; prints {"port": N} on stdout.
Settings: lifetime (s), web_identity_token, container_token, known_keys {id: secret},
external_id, role_name, imds_token_status.
"""
import argparse
import datetime
import hashlib
import hmac
import json
import re
import secrets
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    HAVE_BOTOCORE = True
except ImportError:  # fall back to a stdlib SigV4 check
    HAVE_BOTOCORE = False

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)/(\d{8})/([a-z0-9-]+)/sts/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")

lock = threading.Lock()
settings = {"lifetime": 900, "web_identity_token": None, "container_token": None, "known_keys": {},
            "external_id": None, "role_name": "scrapeship-node-role", "imds_token_status": 200}
stats = {}
issued = []       # every credential handed out: {"id", "secret", "token", "by"}
imds_tokens = {}  # token -> expiry (monotonic)
temp_keys = {}    # access key id -> (secret, token)
last = {}         # last values seen, for the test (session names, external id)


def count(name, n=1):
    with lock:
        stats[name] = stats.get(name, 0) + n


def new_credentials(by):
    alnum = string.ascii_uppercase + string.digits
    cred = {
        "id": "ASIA" + "".join(secrets.choice(alnum) for _ in range(16)),
        # base64 alphabet, so '+' and '/' travel through form and JSON encoding
        "secret": "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40)),
        "token": "FQoGZXIvYXdz" + "".join(secrets.choice(string.ascii_letters + string.digits + "+/")
                                          for _ in range(300)) + "==",
        "by": by,
    }
    with lock:
        lifetime = settings["lifetime"]
        issued.append(cred)
        temp_keys[cred["id"]] = (cred["secret"], cred["token"])
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
    cred["expiration"] = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return cred


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sts_ok(action, cred, role_arn, session):
    role_name = role_arn.rsplit("/", 1)[-1]
    extra = ""
    if action == "AssumeRoleWithWebIdentity":
        extra = ("    <SubjectFromWebIdentityToken>system:serviceaccount:monitoring:scrapeship"
                 "</SubjectFromWebIdentityToken>\n"
                 "    <Audience>sts.amazonaws.com</Audience>\n"
                 "    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>\n")
    return ('<%sResponse xmlns="%s">\n'
            "  <%sResult>\n%s"
            "    <AssumedRoleUser>\n"
            "      <Arn>arn:aws:sts::123456789012:assumed-role/%s/%s</Arn>\n"
            "      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s</AssumedRoleId>\n"
            "    </AssumedRoleUser>\n"
            "    <Credentials>\n"
            "      <AccessKeyId>%s</AccessKeyId>\n"
            "      <SecretAccessKey>%s</SecretAccessKey>\n"
            "      <SessionToken>%s</SessionToken>\n"
            "      <Expiration>%s</Expiration>\n"
            "    </Credentials>\n"
            "  </%sResult>\n"
            "  <ResponseMetadata>\n"
            "    <RequestId>%s</RequestId>\n"
            "  </ResponseMetadata>\n"
            "</%sResponse>\n") % (action, STS_NS, action, extra, xml_escape(role_name), xml_escape(session),
                                  xml_escape(session), cred["id"], xml_escape(cred["secret"]),
                                  xml_escape(cred["token"]), cred["expiration"], action, request_id(), action)


def sts_error(code, message, sender=True):
    return ('<ErrorResponse xmlns="%s">\n'
            "  <Error>\n"
            "    <Type>%s</Type>\n"
            "    <Code>%s</Code>\n"
            "    <Message>%s</Message>\n"
            "  </Error>\n"
            "  <RequestId>%s</RequestId>\n"
            "</ErrorResponse>\n") % (STS_NS, "Sender" if sender else "Receiver", code, xml_escape(message),
                                     request_id())


def request_id():
    h = secrets.token_hex(16)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def sigv4_stdlib(secret, method, path, headers, signed, body, amz_date, region):
    """SigV4 for a POST to a plain path with no query: enough for STS."""
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers[h].split())) for h in signed)
    creq = "\n".join([method, path, "", canon_headers, ";".join(signed), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/sts/aws4_request" % (amz_date[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "sts", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-aws/1"

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def reply(self, status, body, ctype="text/xml", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- control --------------------------------------------------------

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__stats":
            with lock:
                doc = dict(stats)
                doc["last"] = dict(last)
            return self.reply(200, json.dumps(doc), "application/json")
        if path == "/__issued":
            with lock:
                doc = {"credentials": list(issued), "imds_tokens": list(imds_tokens)}
            return self.reply(200, json.dumps(doc), "application/json")
        if path.startswith("/latest/"):
            return self.imds_get(path)
        if path.startswith("/container/"):
            return self.container_get()
        self.reply(404, "not found", "text/plain")

    def do_PUT(self):
        self.body()
        if urllib.parse.urlsplit(self.path).path == "/latest/api/token":
            return self.imds_token()
        self.reply(404, "not found", "text/plain")

    def do_POST(self):
        body = self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__config":
            with lock:
                settings.update(json.loads(body))
            return self.reply(200, "{}", "application/json")
        if path.startswith("/latest/") or path.startswith("/container/"):
            return self.reply(405, "method not allowed", "text/plain")
        self.sts(path, body)

    # ---- IMDSv2 ---------------------------------------------------------

    def imds_token(self):
        count("imds_token_put")
        with lock:
            forced = settings["imds_token_status"]
        if forced != 200:
            return self.reply(forced, "", "text/plain")
        if self.headers.get("X-Forwarded-For"):
            return self.reply(403, "", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            count("imds_token_bad_ttl")
            return self.reply(400, "", "text/plain")
        token = "AQAEA" + secrets.token_urlsafe(40)
        with lock:
            imds_tokens[token] = time.monotonic() + int(ttl)
        self.reply(200, token, "text/plain", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})

    def imds_get(self, path):
        token = self.headers.get("X-aws-ec2-metadata-token")
        if not token:
            count("imds_get_without_token")  # an IMDSv1 request: must never happen
            return self.reply(401, "", "text/plain")
        with lock:
            exp = imds_tokens.get(token)
            role = settings["role_name"]
        if exp is None or exp < time.monotonic():
            count("imds_get_bad_token")
            return self.reply(401, "", "text/plain")
        count("imds_get")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return self.reply(200, role, "text/plain")
        if path == base + role:
            cred = new_credentials("imds")
            count("imds_credentials")
            doc = {"Code": "Success",
                   "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "Type": "AWS-HMAC", "AccessKeyId": cred["id"], "SecretAccessKey": cred["secret"],
                   "Token": cred["token"], "Expiration": cred["expiration"]}
            return self.reply(200, json.dumps(doc, indent=2), "text/plain")
        self.reply(404, "", "text/plain")

    # ---- container credentials -------------------------------------------

    def container_get(self):
        with lock:
            want = settings["container_token"]
        got = self.headers.get("Authorization")
        if want is not None and got != want:
            count("container_denied")
            return self.reply(401 if got is None else 403,
                              json.dumps({"code": "AccessDeniedException",
                                          "message": "invalid or missing authorization token"}),
                              "application/json")
        cred = new_credentials("container")
        count("container_credentials")
        doc = {"AccessKeyId": cred["id"], "SecretAccessKey": cred["secret"], "Token": cred["token"],
               "AccountId": "123456789012", "Expiration": cred["expiration"],
               "RoleArn": "arn:aws:iam::123456789012:role/scrapeship-task"}
        self.reply(200, json.dumps(doc), "application/json")

    # ---- STS ------------------------------------------------------------

    def sts(self, path, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            count("sts_bad_content_type")
            return self.reply(400, sts_error("InvalidParameterValue", "expected a form-encoded body"))
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return self.reply(400, sts_error("MalformedInput", "body is not a form"))
        f = {k: v[0] for k, v in form.items() if len(v) == 1}
        if len(f) != len(form):
            return self.reply(400, sts_error("InvalidParameterValue", "repeated parameter"))
        action = f.get("Action")
        if f.get("Version") != "2011-06-15":
            return self.reply(400, sts_error("InvalidParameterValue", "Version must be 2011-06-15"))
        role_arn, session = f.get("RoleArn", ""), f.get("RoleSessionName", "")
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            return self.reply(400, sts_error("InvalidAction", "Could not find operation %s" % action))
        if not ARN_RE.match(role_arn) or not SESSION_RE.match(session):
            count("sts_validation_error")
            return self.reply(400, sts_error("ValidationError", "RoleArn or RoleSessionName is invalid"))
        with lock:
            last[action + "_session"] = session
            last[action + "_role"] = role_arn
        if action == "AssumeRoleWithWebIdentity":
            count("sts_web_identity_calls")
            if self.headers.get("Authorization"):
                count("sts_web_identity_signed")  # the SDKs send it unsigned
            with lock:
                want = settings["web_identity_token"]
            if f.get("WebIdentityToken") != want:
                count("sts_web_identity_denied")
                # echo a piece of the request, as some servers do: the client must redact
                return self.reply(400, sts_error("InvalidIdentityToken",
                                                 "Token %s is not valid" % f.get("WebIdentityToken", "")))
            cred = new_credentials("sts-web-identity")
            count("sts_web_identity")
            return self.reply(200, sts_ok(action, cred, role_arn, session))
        # AssumeRole
        count("sts_assume_role_calls")
        with lock:
            last["AssumeRole_external_id"] = f.get("ExternalId")
        problem = self.check_sigv4(path, body)
        if problem:
            count("sts_assume_role_sig_bad")
            code, msg = problem
            return self.reply(403, sts_error(code, msg))
        count("sts_assume_role_sig_ok")
        with lock:
            want_ext = settings["external_id"]
        if want_ext is not None and f.get("ExternalId") != want_ext:
            count("sts_assume_role_denied")
            return self.reply(403, sts_error("AccessDenied", "User is not authorized to perform: "
                                             "sts:AssumeRole on resource: %s" % role_arn))
        cred = new_credentials("sts-assume-role")
        count("sts_assume_role")
        self.reply(200, sts_ok(action, cred, role_arn, session))

    def check_sigv4(self, path, body):
        """None when the Authorization header is a valid SigV4 signature, else (code, message)."""
        auth = self.headers.get("Authorization")
        if not auth:
            return ("MissingAuthenticationToken", "Request is missing Authentication Token")
        m = AUTH_RE.match(auth)
        if not m:
            return ("IncompleteSignature", "Authorization header is not a well-formed AWS4-HMAC-SHA256 header")
        key_id, date, region, signed, signature = m.groups()
        amz_date = self.headers.get("X-Amz-Date") or ""
        if not re.match(r"^\d{8}T\d{6}Z$", amz_date) or amz_date[:8] != date:
            return ("IncompleteSignature", "X-Amz-Date missing or not matching the credential scope")
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 300:
            return ("SignatureDoesNotMatch", "Signature expired")
        signed_list = signed.split(";")
        if "host" not in signed_list or "x-amz-date" not in signed_list or signed_list != sorted(signed_list):
            return ("SignatureDoesNotMatch", "SignedHeaders must be sorted and include host and x-amz-date")
        with lock:
            secret = settings["known_keys"].get(key_id)
            token = None
            if secret is None and key_id in temp_keys:
                secret, token = temp_keys[key_id]
        if secret is None:
            return ("InvalidClientTokenId", "The security token included in the request is invalid.")
        if token is not None:
            if self.headers.get("X-Amz-Security-Token") != token or "x-amz-security-token" not in signed_list:
                return ("InvalidClientTokenId", "The security token included in the request is invalid.")
        headers = {}
        for h in signed_list:
            v = self.headers.get(h)
            if v is None:
                return ("SignatureDoesNotMatch", "signed header %s is missing" % h)
            headers[h] = v
        if HAVE_BOTOCORE:
            req = AWSRequest(method="POST", url="http://%s%s" % (headers["host"], self.path), data=body,
                             headers=headers)
            req.context["timestamp"] = amz_date
            signer = SigV4Auth(Credentials(key_id, secret, token), "sts", region)
            want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
            count("sigv4_checked_with_botocore")
        else:
            want = sigv4_stdlib(secret, "POST", urllib.parse.urlsplit(self.path).path or "/", headers,
                                signed_list, body, amz_date, region)
        if not hmac.compare_digest(want, signature):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                    "signature you provided.")
        with lock:
            last["AssumeRole_signing_key"] = key_id
            last["AssumeRole_region"] = region
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="JSON settings file")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
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
