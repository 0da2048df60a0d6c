#!/usr/bin/python3
"""Differential test: our SigV4 signer (tests/tools/sigv4_sign) against botocore.

Generates randomised requests from a fixed seed, signs each with botocore's SigV4Auth
(or S3SigV4Auth) at a frozen instant and with our signer at the same instant, and
compares the Authorization headers byte for byte. Exits 1 on any mismatch and prints
the first few with both canonical requests.

Run with Debian's /usr/bin/python3 (python3-botocore). The tool is found in
$SS_TOOLS_DIR (default /work/main/build/tools).

Apples to apples: where botocore makes its own canonicalisation choices, the generator
or the options passed to our signer line up with it. Each choice:

 1. SigV4Auth always normalises the path and encodes it again ("double encoding");
    S3SigV4Auth does neither and adds X-Amz-Content-SHA256. S3 cases therefore pass our
    signer skip_path_normalization, single_encode_path and add_content_sha256.
 2. S3SigV4Auth signs the path exactly as given, while our single encoding still
    escapes bytes that cannot appear bare on the wire. S3 paths are generated already
    encoded (unreserved bytes, '/', %XX in either case), as an HTTP client sends them.
 3. Given a URL query string, botocore sorts the raw pieces without re-encoding them;
    given `params`, it encodes each decoded key and value. We give botocore the
    decoded (key, value) list and our signer a wire URL that encodes the same pairs in
    varying but equivalent ways (bare or %XX, upper- or lowercase hex, '+' as a literal
    plus, keys without '=', empty '&&' pieces), so our decode/re-encode is what is tested.
 4. A 'Date' header makes botocore rewrite it and drop X-Amz-Date: never generated.
 5. botocore uppercases the method: only uppercase methods are generated.
 6. botocore uses a caller's X-Amz-Content-SHA256 value as the payload hash; our
    signer owns that header when add_content_sha256 is set. Non-S3 cases send it only
    with add_content_sha256 and with the true body hash.
 7. botocore's Trimall is Python's str.split(), which also splits on Unicode spaces and
    \\x1c-\\x1f; header values use ASCII whitespace (space, tab, CR LF folds) only.
 8. urlsplit strips whitespace at the ends of a URL and removes tabs/newlines: URLs
    never contain those.
 9. botocore has no "sign without the session token" option: not exercised here (the
    AWS suites cover it in the unit test).
Headers both sides never sign (Authorization, User-Agent, Expect, X-Amzn-Trace-Id) and
stale X-Amz-Date / X-Amz-Security-Token values are generated on purpose.
"""

import datetime
import hashlib
import json
import os
import random
import subprocess
import sys
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SEED = 20150830
N_STANDARD = 520
N_S3 = 130
MAX_SHOWN = 5

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
RESERVED = ":@!$&'()*+,;="
UNICODE = ["é", "ü", "ሴ", "日本", "😀", "Ω"]
B64 = UNRESERVED[:62] + "+/"


def rand_word(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def pct(byte, rng):
    return ("%%%02X" if rng.random() < 0.7 else "%%%02x") % byte


def path_segment(rng):
    kind = rng.random()
    if kind < 0.08:
        return "."
    if kind < 0.16:
        return ".."
    if kind < 0.22:
        return ""
    parts = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.4:
            parts.append(rand_word(rng, UNRESERVED, 1, 8))
        elif r < 0.55:
            parts.append(rng.choice(RESERVED))
        elif r < 0.65:
            parts.append(" ")
        elif r < 0.78:
            parts.append(rng.choice(UNICODE))
        elif r < 0.95:
            parts.append(pct(rng.randrange(256), rng))
        else:
            parts.append("%")  # a stray percent, not an escape
    return "".join(parts)


def std_path(rng):
    if rng.random() < 0.05:
        return ""
    segs = [path_segment(rng) for _ in range(rng.randint(0, 6))]
    path = "/" + "/".join(segs)
    if segs and rng.random() < 0.3:
        path += "/"
    return path


def s3_path(rng):
    """Already encoded, as it goes on the wire (choice 2)."""
    segs = []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.1:
            segs.append(rng.choice([".", "..", ""]))
            continue
        seg = ""
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.6:
                seg += rand_word(rng, UNRESERVED, 1, 6)
            else:
                seg += pct(rng.randrange(256), rng)
        segs.append(seg)
    path = "/" + "/".join(segs)
    if segs and rng.random() < 0.3:
        path += "/"
    return path


QUERY_CHARS = list(UNRESERVED) + list(RESERVED) + [" ", "/", "?", "#", "%", "&", "="] + UNICODE


def query_text(rng, lo, hi):
    return "".join(rng.choice(QUERY_CHARS) for _ in range(rng.randint(lo, hi)))


def wire_encode(text, rng, is_key):
    """Encode decoded text for our URL, varying the (equivalent) spelling (choice 3)."""
    out = []
    must = {"&", "#", "%"} | ({"="} if is_key else set())
    for ch in text:
        raw = ch.encode("utf-8")
        if ch in must or (ch not in UNRESERVED and rng.random() < 0.5):
            out.append("".join(pct(b, rng) for b in raw))
        elif ch in UNRESERVED and rng.random() < 0.1:
            out.append("".join(pct(b, rng) for b in raw))  # needless escape
        else:
            out.append(ch)
    return "".join(out)


def gen_query(rng):
    if rng.random() < 0.3:
        return [], rng.choice(["", "", "?", "?&&"])
    params = []
    for _ in range(rng.randint(1, 6)):
        if params and rng.random() < 0.25:
            key = rng.choice(params)[0]  # repeated key
        else:
            key = "" if rng.random() < 0.08 else query_text(rng, 1, 8)
        value = "" if rng.random() < 0.3 else query_text(rng, 1, 10)
        params.append((key, value))
    pieces = []
    for key, value in params:
        k = wire_encode(key, rng, True)
        if value == "" and k and rng.random() < 0.5:
            pieces.append(k)  # key without '=' (an empty key needs "=" to exist at all)
        else:
            pieces.append(k + "=" + wire_encode(value, rng, False))
        if rng.random() < 0.1:
            pieces.append("")  # "&&"
    return params, "?" + "&".join(pieces)


def header_value(rng):
    if rng.random() < 0.1:
        return ""
    parts = []
    if rng.random() < 0.3:
        parts.append(rng.choice([" ", "  ", "\t", " \t "]))
    for i in range(rng.randint(1, 5)):
        if i:
            parts.append(rng.choice([" ", "   ", "\t", " \t", "\r\n ", "\n\t", ","]))
        r = rng.random()
        if r < 0.6:
            parts.append(rand_word(rng, UNRESERVED + RESERVED + "\"/\\<>[]{}^`|?", 1, 12))
        elif r < 0.8:
            parts.append('"' + rand_word(rng, UNRESERVED, 1, 4) + "   " + rand_word(rng, UNRESERVED, 1, 4) + '"')
        else:
            parts.append(rng.choice(UNICODE))
    if rng.random() < 0.3:
        parts.append(rng.choice([" ", "  ", "\t"]))
    return "".join(parts)


def flip_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


HEADER_NAMES = ["Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version",
                "X-Amz-Meta-Foo", "X-Custom", "Accept", "X-Multi", "Content-Length",
                "X-Scope-OrgID", "If-Match"]


def gen_headers(rng, host_hdr, s3):
    headers = []
    for _ in range(rng.randint(0, 6)):
        if headers and rng.random() < 0.25:
            name = flip_case(rng.choice(headers)[0], rng)  # multi-valued
        else:
            name = flip_case(rng.choice(HEADER_NAMES), rng)
        headers.append((name, header_value(rng)))
    specials = [("User-Agent", "aws-cli/2 scrapeship/0.1"), ("X-Amz-Date", "19990101T000000Z"),
                ("X-Amz-Security-Token", "stale-token-value"), ("Authorization", "stale"),
                ("X-Amzn-Trace-Id", "Root=1-5759e988"), ("Expect", "100-continue")]
    if s3:
        specials.append(("X-Amz-Content-SHA256", "0" * 64))
    for name, value in specials:
        if rng.random() < 0.1:
            headers.insert(rng.randint(0, len(headers)), (flip_case(name, rng), value))
    if host_hdr is not None:
        headers.insert(rng.randint(0, len(headers)), (flip_case("Host", rng), host_hdr))
    return headers


def gen_case(rng, idx, s3):
    scheme = rng.choice(["https", "https", "http"])
    host = rng.choice(["example.amazonaws.com", "aps-workspaces.us-west-2.amazonaws.com",
                       "EXAMPLE.com", "localhost", "127.0.0.1", "[::1]"])
    port = ""
    r = rng.random()
    if r < 0.2:
        port = ":%d" % {"http": 80, "https": 443}[scheme]
    elif r < 0.45:
        port = ":%d" % rng.randint(1, 65535)
    userinfo = "user:pw@" if rng.random() < 0.1 else ""
    path = s3_path(rng) if s3 else std_path(rng)
    params, query = gen_query(rng)
    frag = "#frag" if rng.random() < 0.1 else ""
    base = f"{scheme}://{userinfo}{host}{port}{path}"
    if base.endswith(" "):
        base += "x"  # choice 8
    host_hdr = None
    if rng.random() < 0.25:
        host_hdr = rng.choice(["", " "]) + host.upper() + port + rng.choice(["", "  "])
    headers = gen_headers(rng, host_hdr, s3)
    body = b"" if rng.random() < 0.4 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 2048)))
    token = None if rng.random() < 0.5 else rand_word(rng, B64, 100, 1200)
    add_sha = s3 or rng.random() < 0.15
    return {
        "id": idx,
        "s3": s3,
        "method": rng.choice(["GET", "POST", "PUT", "DELETE"]),
        "boto_url": base + frag,
        "url": base + query + frag,
        "params": params,
        "headers": headers,
        "body": body,
        "access_key": "AKIA" + rand_word(rng, UNRESERVED[:36], 16, 16),
        "secret_key": rand_word(rng, B64, 40, 40),
        "token": token,
        "region": rng.choice(["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"]),
        "service": "s3" if s3 else rng.choice(["aps", "execute-api", "lambda", "service"]),
        "time": rng.randint(946684800, 4102444800),
        "add_sha": add_sha,
    }


class Recording:
    """Mixin: keep the canonical request botocore signed, for diff output."""

    def canonical_request(self, request):
        cr = super().canonical_request(request)
        self.last_canonical = cr
        return cr


class RecSigV4(Recording, SigV4Auth):
    pass


class RecS3SigV4(Recording, S3SigV4Auth):
    pass


def botocore_sign(case):
    req = AWSRequest(method=case["method"], url=case["boto_url"], data=case["body"],
                     params=list(case["params"]))
    for name, value in case["headers"]:
        req.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    if case["add_sha"] and not case["s3"]:
        req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(case["body"]).hexdigest()  # choice 6
    creds = Credentials(case["access_key"], case["secret_key"], case["token"])
    cls = RecS3SigV4 if case["s3"] else RecSigV4
    auth = cls(creds, case["service"], case["region"])
    instant = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.datetime") as fake:
        fake.datetime.utcnow.return_value = instant
        auth.add_auth(req)
    return req.headers["Authorization"], auth.last_canonical


def tool_line(case):
    return json.dumps({
        "id": case["id"],
        "method": case["method"],
        "url": case["url"],
        "headers": [[n, v] for n, v in case["headers"]],
        "body_hex": case["body"].hex(),
        "access_key": case["access_key"],
        "secret_key": case["secret_key"],
        "token": case["token"],
        "region": case["region"],
        "service": case["service"],
        "time": case["time"],
        "add_content_sha256": case["add_sha"],
        "skip_path_normalization": case["s3"],
        "single_encode_path": case["s3"],
        "omit_session_token": False,
    })


def main():
    tools = os.environ.get("SS_TOOLS_DIR", "/work/main/build/tools")
    tool = os.path.join(tools, "sigv4_sign")
    if not os.access(tool, os.X_OK):
        print(f"FAIL: {tool} not built (set SS_TOOLS_DIR)", file=sys.stderr)
        return 1
    rng = random.Random(SEED)
    cases = [gen_case(rng, i, False) for i in range(N_STANDARD)]
    cases += [gen_case(rng, N_STANDARD + i, True) for i in range(N_S3)]

    stdin = "".join(tool_line(c) + "\n" for c in cases)
    proc = subprocess.run([tool], input=stdin.encode(), capture_output=True, timeout=120)
    if proc.returncode != 0:
        print(f"FAIL: sigv4_sign exited {proc.returncode}: {proc.stderr.decode()}", file=sys.stderr)
        return 1
    ours = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    if len(ours) != len(cases):
        print(f"FAIL: {len(ours)} results for {len(cases)} requests", file=sys.stderr)
        return 1

    mismatches = []
    for case, mine in zip(cases, ours):
        want, boto_creq = botocore_sign(case)
        got = mine.get("authorization")
        if mine.get("id") != case["id"] or got != want:
            mismatches.append((case, mine, want, boto_creq))

    n_s3 = sum(1 for c in cases if c["s3"])
    n_tok = sum(1 for c in cases if c["token"])
    print(f"sigv4 vs botocore: {len(cases) - len(mismatches)}/{len(cases)} match "
          f"({len(cases) - n_s3} SigV4Auth, {n_s3} S3SigV4Auth, {n_tok} with session token, seed {SEED})")
    for case, mine, want, boto_creq in mismatches[:MAX_SHOWN]:
        print(f"\n--- case {case['id']} ({'s3' if case['s3'] else 'standard'}): {case['method']} {case['url']!r}")
        print(f"headers: {case['headers']!r}")
        print(f"params (botocore): {case['params']!r}")
        print(f"botocore: {want}\nours:     {mine.get('authorization') or mine.get('error')}")
        print("--- botocore canonical request\n" + boto_creq)
        print("--- our canonical request\n" + str(mine.get("canonical_request")))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
