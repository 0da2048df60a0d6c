"""Scraping with basic auth, bearer tokens and TLS, against a real nginx.

nginx serves the same exposition behind basic auth, behind a bearer-token check, and
over TLS with a certificate from a CA made for the test. scrapeship must:
  * authenticate with basic_auth (password and password_file) and authorization
    (credentials and credentials_file, re-read on every scrape);
  * verify TLS by default: an unknown CA fails the scrape (up=0), ca_file makes it
    succeed, insecure_skip_verify skips verification;
  * fail a scrape with a wrong password (HTTP 401) without printing the password.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PASSWORD = "pw-Xq7-never-logged"
TOKEN = "tok-Zr9-never-logged"


def make_ca(d):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=scrapeship test CA",
        "-keyout", d + "/ca.key", "-out", d + "/ca.crt")
    with open(d + "/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", d + "/srv.key",
        "-out", d + "/srv.csr")
    run("x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", d + "/ext.cnf", "-out", d + "/srv.crt")


def main():
    chk = h.Check("scrape_auth_tls")
    d = h.tmpdir("ss-authtls-")
    make_ca(d)
    with open(d + "/metrics.prom", "w") as f:
        f.write("# TYPE secret_metric gauge\nsecret_metric 42\n")
    # htpasswd entry with an apr1/SHA hash made by openssl
    hashed = subprocess.run(["openssl", "passwd", "-apr1", PASSWORD], check=True, capture_output=True,
                            text=True).stdout.strip()
    with open(d + "/htpasswd", "w") as f:
        f.write("user:%s\n" % hashed)
    p_basic, p_bearer, p_tls = h.free_port(), h.free_port(), h.free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = """%(user)s
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p; fastcgi_temp_path %(d)s/f;
  uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  default_type text/plain;
  server { listen 127.0.0.1:%(basic)d; root %(d)s;
           auth_basic "metrics"; auth_basic_user_file %(d)s/htpasswd; }
  server { listen 127.0.0.1:%(bearer)d; root %(d)s;
           location / { if ($http_authorization != "Bearer %(token)s") { return 401; } } }
  server { listen 127.0.0.1:%(tls)d ssl; root %(d)s;
           ssl_certificate %(d)s/srv.crt; ssl_certificate_key %(d)s/srv.key; }
}
""" % {"user": user, "d": d, "basic": p_basic, "bearer": p_bearer, "tls": p_tls, "token": TOKEN}
    with open(d + "/nginx.conf", "w") as f:
        f.write(conf)
    h.start(["/usr/sbin/nginx", "-p", d, "-c", d + "/nginx.conf", "-e", d + "/stderr.log"], d + "/out.log")
    time.sleep(1)
    with open(d + "/pw", "w") as f:
        f.write(PASSWORD + "\n")
    with open(d + "/token", "w") as f:
        f.write(TOKEN + "\n")
    cfg = d + "/ss.yml"
    with open(cfg, "w") as f:
        f.write("""scrape_configs:
  - job_name: basic
    metrics_path: /metrics.prom
    basic_auth: {username: user, password: %(pw)s}
    static_configs: [{targets: ['127.0.0.1:%(basic)d']}]
  - job_name: basic_file
    metrics_path: /metrics.prom
    basic_auth: {username: user, password_file: %(d)s/pw}
    static_configs: [{targets: ['127.0.0.1:%(basic)d']}]
  - job_name: basic_wrong
    metrics_path: /metrics.prom
    basic_auth: {username: user, password: wrong-%(pw)s}
    static_configs: [{targets: ['127.0.0.1:%(basic)d']}]
  - job_name: bearer
    metrics_path: /metrics.prom
    authorization: {credentials: %(tok)s}
    static_configs: [{targets: ['127.0.0.1:%(bearer)d']}]
  - job_name: bearer_file
    metrics_path: /metrics.prom
    authorization: {credentials_file: %(d)s/token}
    static_configs: [{targets: ['127.0.0.1:%(bearer)d']}]
  - job_name: tls_verified
    scheme: https
    metrics_path: /metrics.prom
    tls_config: {ca_file: %(d)s/ca.crt}
    static_configs: [{targets: ['127.0.0.1:%(tls)d']}]
  - job_name: tls_unknown_ca
    scheme: https
    metrics_path: /metrics.prom
    static_configs: [{targets: ['127.0.0.1:%(tls)d']}]
  - job_name: tls_insecure
    scheme: https
    metrics_path: /metrics.prom
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ['127.0.0.1:%(tls)d']}]
""" % {"pw": PASSWORD, "tok": TOKEN, "d": d, "basic": p_basic, "bearer": p_bearer, "tls": p_tls})
    rc, out, err = h.run_scrapeship(["scrape", "--config", cfg, "--format", "json"])
    chk.ok(rc == 1, "two targets must fail (wrong password, unknown CA): exit %d" % rc)
    recs = h.parse_json_lines(out)
    up = {dict(k)["job"]: float(r["value"]) for k, r in recs.items() if dict(k)["__name__"] == "up"}
    got = {dict(k)["job"] for k in recs if dict(k)["__name__"] == "secret_metric"}
    for job in ["basic", "basic_file", "bearer", "bearer_file", "tls_verified", "tls_insecure"]:
        chk.ok(up.get(job) == 1 and job in got, "%s: up=%s, scraped=%s" % (job, up.get(job), job in got))
    for job in ["basic_wrong", "tls_unknown_ca"]:
        chk.ok(up.get(job) == 0 and job not in got, "%s: expected a failed scrape, up=%s" % (job, up.get(job)))
    chk.ok("HTTP status 401" in err, "the wrong password's 401 is not reported: " + err[-500:])
    chk.ok("certificate" in err.lower() or "ssl" in err.lower(), "the TLS failure is not explained: " + err[-500:])
    for secret in [PASSWORD, TOKEN]:
        chk.ok(secret not in out and secret not in err, "a secret was printed")
    rc, out, err = h.run_scrapeship(["check-config", cfg])
    chk.ok(rc == 0 and PASSWORD not in out + err and TOKEN not in out + err, "check-config printed a secret")
    chk.finish()


if __name__ == "__main__":
    main()
