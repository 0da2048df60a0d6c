/* awscred_http.c: the I/O under the credential providers: the environment and clock
 * hooks, secret-safe file reading, the default libcurl HTTP hook and the STS client
 * (AssumeRoleWithWebIdentity and SigV4-signed AssumeRole).
 *
 * STS uses the AWS query protocol: a form-encoded POST of Action, Version=2011-06-15
 * and the parameters, answered in XML. The endpoint is, in order: the configured
 * override, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL (both ignored when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, as the SDKs do), the regional endpoint
 * https://sts.<region>.amazonaws.com, or the global https://sts.amazonaws.com (signed
 * for us-east-1) when no region is known.
 *
 * Buffers that carry secrets (request bodies with tokens, signed headers, replies with
 * credentials) have their full capacity reserved up front, so they never reallocate
 * and leave an unwiped copy behind, and are wiped before they are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "awscred_int.h"
#include "sstext.h"

#define STS_VERSION  "2011-06-15"
#define MAX_STS_BODY (48u << 10) /* our request: the web identity token dominates */
#define MAX_HEADERS  8

/* ---- hooks ------------------------------------------------------------- */

const char *awscred_env(const struct awscred_cfg *cfg, const char *name)
{
    const char *v = cfg->getenv_fn ? cfg->getenv_fn(cfg->hook_ud, name) : getenv(name);
    return v && *v ? v : NULL;
}

bool awscred_env_true(const struct awscred_cfg *cfg, const char *name)
{
    const char *v = awscred_env(cfg, name);
    return v && strcasecmp(v, "true") == 0;
}

int64_t awscred_now(const struct awscred_cfg *cfg)
{
    return cfg->now_ms_fn ? cfg->now_ms_fn(cfg->hook_ud) : ss_now_ms();
}

/* ---- files ------------------------------------------------------------- */

int awscred_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? SS_ENOTFOUND : SS_EIO;
    struct stat st;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = SS_EIO;
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        rc = SS_ELIMIT;
        goto fail;
    }
    cap = (size_t)st.st_size + 1;
    if (!(buf = malloc(cap))) {
        rc = SS_ENOMEM;
        goto fail;
    }
    while (n < cap - 1) { /* a file that grows after fstat is cut at its old size */
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = SS_EIO;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    *out = buf;
    if (out_len)
        *out_len = n;
    return 0;
fail:
    if (buf) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    close(fd);
    return rc;
}

/* ---- libcurl hook ------------------------------------------------------ */

struct sink {
    struct ss_buf *b;
    bool over;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (ss_buf_append(s->b, p, n) != 0) {
        s->over = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* curl_slist_free_all does not wipe: header values can be tokens. */
static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            OPENSSL_cleanse(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

int awscred_http_curl(void *ud, const struct awscred_http_request *req, struct awscred_http_response *resp,
                      char *why, size_t whycap)
{
    (void)ud;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct sink sink = {&resp->body, false};
    int rc = 0;
    resp->status = 0;
    if (!h) {
        awscred_why(why, whycap, "cannot create an HTTP handle");
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hl, req->headers[i]);
        if (!n) {
            rc = SS_ENOMEM;
            goto fail;
        }
        hl = n;
    }
    /* no 100-continue round trip, and no default form Content-Type on a bodyless PUT */
    const char *extra[] = {"Expect:", req->body_len ? NULL : "Content-Type:"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if (!extra[i])
            continue;
        struct curl_slist *n = curl_slist_append(hl, extra[i]);
        if (!n) {
            rc = SS_ENOMEM;
            goto fail;
        }
        hl = n;
    }

    long timeout = (long)(req->timeout_ms > 0 ? req->timeout_ms : AWSCRED_STS_TIMEOUT_MS);
    long ctimeout = (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : timeout);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* IMDS and STS never redirect */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);       /* we run on a worker thread */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION);
    if (req->no_proxy)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (sink.over) {
            rc = SS_ELIMIT;
            awscred_why(why, whycap, "reply larger than %zu bytes", resp->body.max);
        } else {
            rc = cc == CURLE_OPERATION_TIMEDOUT ? SS_ETIMEDOUT : SS_EIO;
            awscred_why(why, whycap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
        goto fail;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
fail:
    if (rc == SS_ENOMEM)
        awscred_why(why, whycap, "out of memory");
    slist_free_wiped(hl);
    curl_easy_cleanup(h);
    return rc;
}

int awscred_http(const struct awscred_cfg *cfg, const struct awscred_http_request *req,
                 struct awscred_http_response *resp, char *why, size_t whycap)
{
    resp->status = 0;
    ss_buf_init(&resp->body, AWSCRED_MAX_RESPONSE);
    int rc = ss_buf_reserve(&resp->body, AWSCRED_MAX_RESPONSE);
    if (rc == 0)
        rc = ss_buf_append(&resp->body, "", 0); /* data is never NULL afterwards */
    if (rc) {
        awscred_why(why, whycap, "out of memory");
        return rc;
    }
    struct awscred_http_request r = *req;
    if (cfg->http_timeout_ms > 0)
        r.timeout_ms = cfg->http_timeout_ms;
    awscred_http_fn fn = cfg->http_fn ? cfg->http_fn : awscred_http_curl;
    rc = fn(cfg->hook_ud, &r, resp, why, whycap);
    if (rc && why && !why[0])
        awscred_why(why, whycap, "%s", ss_strerror(rc));
    return rc;
}

/* ---- STS --------------------------------------------------------------- */

const char *awscred_sts_region(const struct awscred_cfg *cfg, const char *region_hint)
{
    if (cfg->region)
        return cfg->region;
    const char *r = awscred_env(cfg, "AWS_REGION");
    if (!r)
        r = awscred_env(cfg, "AWS_DEFAULT_REGION");
    return r ? r : region_hint;
}

static bool region_ok(const char *r)
{
    size_t n = 0;
    for (; r[n]; n++)
        if (n >= SIGV4_MAX_SCOPE_PART ||
            !((r[n] >= 'a' && r[n] <= 'z') || (r[n] >= '0' && r[n] <= '9') || r[n] == '-'))
            return false;
    return n > 0;
}

/* The STS URL into url; the region to sign for into *sign_region. */
static int sts_endpoint(const struct awscred_cfg *cfg, const char *region, char *url, size_t cap,
                        const char **sign_region, char *why, size_t whycap)
{
    const char *ep = cfg->sts_endpoint;
    if (!ep && !awscred_env_true(cfg, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
        ep = awscred_env(cfg, "AWS_ENDPOINT_URL_STS");
        if (!ep)
            ep = awscred_env(cfg, "AWS_ENDPOINT_URL");
    }
    if (region && !region_ok(region)) {
        awscred_why(why, whycap, "region is not a valid AWS region name");
        return SS_ECONFIG;
    }
    *sign_region = region ? region : "us-east-1";
    int n;
    if (ep) {
        if (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) {
            awscred_why(why, whycap, "STS endpoint must be an http or https URL");
            return SS_ECONFIG;
        }
        const char *host = strstr(ep, "://") + 3;
        /* a URL without a path posts to "/" */
        n = snprintf(url, cap, "%s%s", ep, strchr(host, '/') ? "" : "/");
    } else if (region) {
        bool china = strncmp(region, "cn-", 3) == 0;
        n = snprintf(url, cap, "https://sts.%s.amazonaws.com%s/", region, china ? ".cn" : "");
    } else {
        n = snprintf(url, cap, "https://sts.amazonaws.com/");
    }
    if (n < 0 || (size_t)n >= cap) {
        awscred_why(why, whycap, "STS endpoint URL too long");
        return SS_ECONFIG;
    }
    return 0;
}

/* application/x-www-form-urlencoded as the AWS query protocol wants it: everything
 * but unreserved characters percent-encoded. */
static int form_append(struct ss_buf *b, const char *k, const char *v)
{
    int rc = 0;
    if (b->len)
        rc = ss_buf_append(b, "&", 1);
    if (!rc)
        rc = ss_buf_append_str(b, k);
    if (!rc)
        rc = ss_buf_append(b, "=", 1);
    if (!rc)
        rc = ss_percent_encode(b, v, strlen(v), 0);
    return rc;
}

/* A "Name: value" header in a secret-safe heap string. */
static char *header_line(const char *name, const char *value, int *rc)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *s = malloc(n);
    if (!s) {
        *rc = SS_ENOMEM;
        return NULL;
    }
    snprintf(s, n, "%s: %s", name, value);
    return s;
}

struct sts_param {
    const char *name, *value;
};

static int sts_call(const struct awscred_cfg *cfg, const char *region_hint, const char *action,
                    const struct sts_param *params, size_t nparams, const struct awscred_value *signer,
                    const char *const *secrets, struct awscred_value *out, char *why, size_t whycap)
{
    char url[AWSCRED_MAX_URL], detail[AWSCRED_ERR_MAX] = "";
    const char *sign_region = NULL;
    const char *region = awscred_sts_region(cfg, region_hint);
    struct ss_buf body;
    struct awscred_http_response resp = {0};
    struct sigv4_result sig = {0};
    char *hdr[MAX_HEADERS] = {0};
    size_t nh = 0;
    int rc;
    ss_buf_init(&body, MAX_STS_BODY);
    ss_buf_init(&resp.body, 1);
    memset(out, 0, sizeof *out);

    if ((rc = sts_endpoint(cfg, region, url, sizeof url, &sign_region, why, whycap)))
        return rc;
    if ((rc = ss_buf_reserve(&body, MAX_STS_BODY)) || (rc = form_append(&body, "Action", action)) ||
        (rc = form_append(&body, "Version", STS_VERSION)))
        goto fail_build;
    for (size_t i = 0; i < nparams; i++)
        if (params[i].value && (rc = form_append(&body, params[i].name, params[i].value)))
            goto fail_build;

    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    if (!(hdr[nh++] = header_line("Content-Type", ctype, &rc)))
        goto fail_build;
    if (signer) {
        struct sigv4_header sh[] = {{"Content-Type", ctype}};
        struct sigv4_request sreq = {
            .method = "POST",
            .url = url,
            .headers = sh,
            .nheaders = 1,
            .body = body.data,
            .body_len = body.len,
        };
        struct sigv4_credentials sc = {signer->access_key_id, signer->secret_access_key,
                                       signer->session_token};
        struct sigv4_params sp = {
            .region = sign_region, .service = "sts", .now_unix = awscred_now(cfg) / 1000};
        if ((rc = sigv4_sign(&sreq, &sc, &sp, &sig))) {
            awscred_why(why, whycap, "cannot sign STS %s: %s", action, ss_strerror(rc));
            goto done;
        }
        /* send exactly the Host that was signed */
        if (!(hdr[nh++] = header_line("Authorization", sig.authorization, &rc)) ||
            !(hdr[nh++] = header_line("X-Amz-Date", sig.x_amz_date, &rc)) ||
            (sig.host && !(hdr[nh++] = header_line("Host", sig.host, &rc))) ||
            (sig.x_amz_security_token &&
             !(hdr[nh++] = header_line("X-Amz-Security-Token", sig.x_amz_security_token, &rc))))
            goto fail_build;
    }

    struct awscred_http_request req = {
        .method = "POST",
        .url = url,
        .headers = (const char *const *)hdr,
        .nheaders = nh,
        .body = body.data,
        .body_len = body.len,
        .timeout_ms = AWSCRED_STS_TIMEOUT_MS,
    };
    if ((rc = awscred_http(cfg, &req, &resp, detail, sizeof detail))) {
        awscred_why(why, whycap, "STS %s at %s: %s", action, url, detail);
        goto done;
    }
    /* a reply that echoes what we sent must not carry it into an error string */
    awscred_redact(resp.body.data, resp.body.len, secrets);
    rc = awscred_parse_sts_xml(resp.body.data, resp.body.len, action, out, detail, sizeof detail);
    if (resp.status == 200 && rc == 0)
        goto done;
    if (rc == 0) /* credentials with a non-200 status: do not trust them */
        awscred_value_clear(out);
    if (resp.status == 200)
        awscred_why(why, whycap, "STS %s: bad reply: %s", action, detail);
    else if (rc == SS_EAUTH)
        awscred_why(why, whycap, "STS %s: HTTP %ld %s", action, resp.status, detail);
    else
        awscred_why(why, whycap, "STS %s: HTTP %ld", action, resp.status);
    rc = resp.status >= 400 && resp.status < 500 ? SS_EAUTH : resp.status == 200 ? rc : SS_EHTTP;
    goto done;
fail_build:
    awscred_why(why, whycap, "cannot build the STS %s request: %s", action, ss_strerror(rc));
done: /* success and failure share the cleanup */
    for (size_t i = 0; i < nh; i++)
        ss_free_secret(hdr[i]);
    sigv4_result_free(&sig);
    ss_buf_free_secret(&body);
    ss_buf_free_secret(&resp.body);
    return rc;
}

const char *awscred_session_name(const struct awscred_cfg *cfg, const char *configured, char *buf, size_t cap)
{
    if (configured)
        return configured;
    if (cfg->role_session_name)
        return cfg->role_session_name;
    snprintf(buf, cap, "scrapeship-%lld", (long long)awscred_now(cfg));
    return buf;
}

int awscred_sts_web_identity(const struct awscred_cfg *cfg, const char *region_hint, const char *role_arn,
                             const char *session_name, const char *token, struct awscred_value *out,
                             char *why, size_t whycap)
{
    const struct sts_param p[] = {
        {"RoleArn", role_arn},
        {"RoleSessionName", session_name},
        {"WebIdentityToken", token},
    };
    const char *secrets[] = {token, NULL};
    return sts_call(cfg, region_hint, "AssumeRoleWithWebIdentity", p, 3, NULL, secrets, out, why, whycap);
}

int awscred_sts_assume_role(const struct awscred_cfg *cfg, const char *region_hint,
                            const struct awscred_value *source, const char *role_arn,
                            const char *session_name, const char *external_id, const char *duration_seconds,
                            struct awscred_value *out, char *why, size_t whycap)
{
    const struct sts_param p[] = {
        {"RoleArn", role_arn},
        {"RoleSessionName", session_name},
        {"ExternalId", external_id},
        {"DurationSeconds", duration_seconds},
    };
    const char *secrets[] = {source->secret_access_key, source->session_token, NULL};
    return sts_call(cfg, region_hint, "AssumeRole", p, 4, source, secrets, out, why, whycap);
}
