/* awscred_providers.c: the six credential providers of the chain, one section each,
 * in chain order: static config keys, environment, web identity, container, shared
 * profile, EC2 instance metadata (IMDSv2).
 *
 * Each provider returns SS_ENOTFOUND when it is not configured, so the chain moves
 * on, and any other error, with a reason that names what was wrong but never a
 * secret, when it is configured and fails. Providers re-read their environment and
 * files on every call: web identity and container tokens rotate (Kubernetes rewrites
 * the projected token file), and a refresh must pick up the new one.
 */
#include <arpa/inet.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "awscred_int.h"

#define MAX_IMDS_TOKEN 1024
#define MAX_ROLE_NAME  128
#define MAX_PATH_LEN   4096

static int copy_static(const char *id, const char *secret, const char *token, struct awscred_value *out,
                       char *why, size_t whycap)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    out->access_key_id = awscred_strdup(id, &rc);
    out->secret_access_key = awscred_strdup(secret, &rc);
    out->session_token = awscred_strdup(token, &rc);
    if (rc) {
        awscred_value_clear(out);
        awscred_why(why, whycap, "out of memory");
        return rc;
    }
    return awscred_value_check(out, why, whycap);
}

/* Read a token file: whole content, trailing whitespace trimmed, never empty. */
static int read_token_file(const char *path, const char *what, char **out, char *why, size_t whycap)
{
    size_t n = 0;
    char *tok = NULL;
    int rc = awscred_read_file(path, AWSCRED_MAX_TOKEN_FILE, &tok, &n);
    *out = NULL;
    if (rc) {
        awscred_why(why, whycap, "%s %s: %s", what, path,
                    rc == SS_ENOTFOUND ? "does not exist"
                    : rc == SS_ELIMIT  ? "is too large"
                                       : "cannot be read");
        return rc == SS_ENOTFOUND ? SS_ECONFIG : rc;
    }
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        tok[--n] = '\0';
    if (n == 0 || strlen(tok) != n) {
        awscred_why(why, whycap, "%s %s is empty or binary", what, path);
        ss_free_secret(tok);
        return SS_ECONFIG;
    }
    *out = tok;
    return 0;
}

/* ---- 1. static keys from the config ------------------------------------ */

static int provider_static(const struct awscred_cfg *cfg, struct awscred_value *out, char *why, size_t whycap)
{
    if (!cfg->access_key_id)
        return SS_ENOTFOUND;
    return copy_static(cfg->access_key_id, cfg->secret_access_key, NULL, out, why, whycap);
}

/* ---- 2. environment ---------------------------------------------------- */

static int provider_env(const struct awscred_cfg *cfg, struct awscred_value *out, char *why, size_t whycap)
{
    /* AWS_ACCESS_KEY and AWS_SECRET_KEY are the older names the SDKs still accept */
    const char *id = awscred_env(cfg, "AWS_ACCESS_KEY_ID");
    if (!id)
        id = awscred_env(cfg, "AWS_ACCESS_KEY");
    const char *secret = awscred_env(cfg, "AWS_SECRET_ACCESS_KEY");
    if (!secret)
        secret = awscred_env(cfg, "AWS_SECRET_KEY");
    const char *token = awscred_env(cfg, "AWS_SESSION_TOKEN");
    if (!token)
        token = awscred_env(cfg, "AWS_SECURITY_TOKEN");
    if (!id && !secret)
        return SS_ENOTFOUND;
    if (!id || !secret) {
        awscred_why(why, whycap, "%s is set without %s", id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                    id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return SS_ECONFIG;
    }
    char detail[AWSCRED_ERR_MAX] = "";
    int rc = copy_static(id, secret, token, out, detail, sizeof detail);
    if (rc) {
        awscred_why(why, whycap, "AWS_* variables: %s", detail);
        return SS_ECONFIG;
    }
    const char *exp = awscred_env(cfg, "AWS_CREDENTIAL_EXPIRATION");
    if (exp && awscred_parse_time(exp, strlen(exp), &out->expiration_ms)) {
        awscred_value_clear(out);
        awscred_why(why, whycap, "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
        return SS_ECONFIG;
    }
    return 0;
}

/* ---- 3. web identity --------------------------------------------------- */

static int web_identity(const struct awscred_cfg *cfg, const char *region_hint, const char *token_file,
                        const char *role_arn, const char *session, struct awscred_value *out, char *why,
                        size_t whycap)
{
    char *token = NULL, name_buf[48];
    int rc = read_token_file(token_file, "web identity token file", &token, why, whycap);
    if (rc)
        return rc;
    const char *name = awscred_session_name(cfg, session, name_buf, sizeof name_buf);
    rc = awscred_sts_web_identity(cfg, region_hint, role_arn, name, token, out, why, whycap);
    ss_free_secret(token);
    return rc;
}

static int provider_web_identity(const struct awscred_cfg *cfg, struct awscred_value *out, char *why,
                                 size_t whycap)
{
    const char *file = awscred_env(cfg, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *arn = awscred_env(cfg, "AWS_ROLE_ARN");
    if (!file)
        return SS_ENOTFOUND; /* a role ARN alone configures nothing (botocore) */
    if (!arn) {
        awscred_why(why, whycap, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        return SS_ECONFIG;
    }
    return web_identity(cfg, NULL, file, arn, awscred_env(cfg, "AWS_ROLE_SESSION_NAME"), out, why, whycap);
}

/* ---- 4. container (ECS task role, EKS Pod Identity) -------------------- */

/* The SDKs fetch a full URI over plain http only from hosts that cannot be an
 * attacker's: loopback, the ECS agent (169.254.170.2) and the EKS Pod Identity agent
 * (169.254.170.23, fd00:ec2::23). Anything else must be https. Host names other than
 * "localhost" are not resolved here: a DNS answer is not proof of locality. */
bool awscred_container_url_allowed(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto done;
    if (strcasecmp(scheme, "https") == 0) {
        ok = true;
        goto done;
    }
    if (strcasecmp(scheme, "http") != 0)
        goto done;
    char h[128];
    size_t n = strlen(host);
    if (n >= sizeof h)
        goto done;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* IPv6 literal */
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
    } else {
        memcpy(h, host, n + 1);
    }
    unsigned char a[16];
    if (strcasecmp(h, "localhost") == 0)
        ok = true;
    else if (inet_pton(AF_INET, h, a) == 1)
        ok = a[0] == 127 || strcmp(h, "169.254.170.2") == 0 || strcmp(h, "169.254.170.23") == 0;
    else if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char loop6[16] = {[15] = 1};
        static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};
        ok = memcmp(a, loop6, 16) == 0 || memcmp(a, eks6, 16) == 0;
    }
done:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int provider_container(const struct awscred_cfg *cfg, struct awscred_value *out, char *why,
                              size_t whycap)
{
    const char *rel = awscred_env(cfg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = awscred_env(cfg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char url[AWSCRED_MAX_URL], detail[AWSCRED_ERR_MAX] = "";
    char *token = NULL, *auth = NULL;
    struct awscred_http_response resp = {0};
    int rc = 0;
    ss_buf_init(&resp.body, 1);
    if (!rel && !full)
        return SS_ENOTFOUND;
    if (rel) { /* the relative URI wins, as in every SDK */
        const char *base = cfg->container_endpoint ? cfg->container_endpoint : AWSCRED_DEFAULT_CONTAINER;
        if (rel[0] != '/' || has_line_break(rel)) {
            awscred_why(why, whycap, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
            return SS_ECONFIG;
        }
        if (snprintf(url, sizeof url, "%s%s", base, rel) >= (int)sizeof url) {
            awscred_why(why, whycap, "container credentials URL too long");
            return SS_ECONFIG;
        }
    } else {
        if (strlen(full) >= sizeof url || has_line_break(full) || !awscred_container_url_allowed(full)) {
            awscred_why(why, whycap,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback "
                        "address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23");
            return SS_ECONFIG;
        }
        snprintf(url, sizeof url, "%s", full);
    }

    /* the token file wins over the variable: EKS Pod Identity rotates the file */
    const char *tfile = awscred_env(cfg, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (tfile) {
        if ((rc = read_token_file(tfile, "container authorization token file", &token, why, whycap)))
            return rc;
    } else if (awscred_env(cfg, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        if (!(token = awscred_strdup(awscred_env(cfg, "AWS_CONTAINER_AUTHORIZATION_TOKEN"), &rc)))
            goto done;
    }
    if (token && has_line_break(token)) { /* it becomes a header: no injection */
        awscred_why(why, whycap, "container authorization token contains a line break");
        rc = SS_ECONFIG;
        goto done;
    }
    const char *hdrs[2];
    size_t nh = 0;
    if (token) {
        size_t n = strlen("Authorization: ") + strlen(token) + 1;
        if (!(auth = malloc(n))) {
            rc = SS_ENOMEM;
            goto done;
        }
        snprintf(auth, n, "Authorization: %s", token);
        hdrs[nh++] = auth;
    }
    hdrs[nh++] = "Accept: application/json";
    struct awscred_http_request req = {
        .method = "GET",
        .url = url,
        .headers = hdrs,
        .nheaders = nh,
        .timeout_ms = AWSCRED_CONTAINER_TIMEOUT_MS,
        .no_proxy = strncasecmp(url, "http:", 5) == 0,
    };
    if ((rc = awscred_http(cfg, &req, &resp, detail, sizeof detail))) {
        awscred_why(why, whycap, "GET %s: %s", url, detail);
        goto done;
    }
    const char *secrets[] = {token, NULL};
    awscred_redact(resp.body.data, resp.body.len, secrets);
    rc = awscred_parse_creds_json(resp.body.data, resp.body.len, out, detail, sizeof detail);
    if (resp.status == 200 && rc == 0)
        goto done;
    if (rc == 0)
        awscred_value_clear(out);
    if (resp.status == 200)
        awscred_why(why, whycap, "GET %s: bad reply: %s", url, detail);
    else if (rc == SS_EAUTH)
        awscred_why(why, whycap, "GET %s: HTTP %ld %s", url, resp.status, detail);
    else
        awscred_why(why, whycap, "GET %s: HTTP %ld", url, resp.status);
    rc = resp.status == 200 ? rc : resp.status >= 400 && resp.status < 500 ? SS_EAUTH : SS_EHTTP;
done: /* success and failure share the cleanup */
    if (rc == SS_ENOMEM)
        awscred_why(why, whycap, "out of memory");
    ss_free_secret(auth);
    ss_free_secret(token);
    ss_buf_free_secret(&resp.body);
    return rc;
}

/* ---- 6. EC2 instance metadata, IMDSv2 ---------------------------------- */

/* IMDSv2 only: PUT a session token first and send it on every GET. If the PUT fails
 * we fail; we never fall back to token-less IMDSv1 requests, which are what SSRF
 * attacks against instance credentials rely on. */
static int provider_imds(const struct awscred_cfg *cfg, struct awscred_value *out, char *why, size_t whycap)
{
    if (awscred_env_true(cfg, "AWS_EC2_METADATA_DISABLED"))
        return SS_ENOTFOUND;
    const char *ep = cfg->imds_endpoint;
    if (!ep)
        ep = awscred_env(cfg, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!ep) {
        const char *mode = awscred_env(cfg, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        ep = mode && strcasecmp(mode, "IPv6") == 0 ? AWSCRED_DEFAULT_IMDS_V6 : AWSCRED_DEFAULT_IMDS;
    }
    size_t eplen = strlen(ep);
    while (eplen > 0 && ep[eplen - 1] == '/')
        eplen--;
    char url[AWSCRED_MAX_URL], detail[AWSCRED_ERR_MAX] = "", role[MAX_ROLE_NAME + 1];
    char *token = NULL, *token_hdr = NULL;
    struct awscred_http_response resp = {0};
    int rc = 0;
    ss_buf_init(&resp.body, 1);
    if ((strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) || has_line_break(ep) ||
        eplen > 1024) {
        awscred_why(why, whycap, "IMDS endpoint must be an http or https URL");
        return SS_ECONFIG;
    }

    snprintf(url, sizeof url, "%.*s/latest/api/token", (int)eplen, ep);
    const char *put_hdr[] = {"X-aws-ec2-metadata-token-ttl-seconds: " AWSCRED_IMDS_TOKEN_TTL};
    struct awscred_http_request req = {
        .method = "PUT",
        .url = url,
        .headers = put_hdr,
        .nheaders = 1,
        .timeout_ms = AWSCRED_IMDS_TIMEOUT_MS,
        .connect_timeout_ms = AWSCRED_IMDS_CONNECT_TIMEOUT_MS,
        .no_proxy = true,
    };
    if ((rc = awscred_http(cfg, &req, &resp, detail, sizeof detail))) {
        awscred_why(why, whycap, "IMDSv2 token PUT %s: %s (IMDSv1 is never used)", url, detail);
        goto done;
    }
    if (resp.status != 200) {
        awscred_why(why, whycap, "IMDSv2 token PUT %s: HTTP %ld (IMDSv1 is never used)", url, resp.status);
        rc = SS_EHTTP;
        goto done;
    }
    {
        size_t n = resp.body.len;
        while (n > 0 && (resp.body.data[n - 1] == '\n' || resp.body.data[n - 1] == '\r'))
            n--;
        resp.body.data[n] = '\0';
        if (awscred_check_cred_string(resp.body.data, MAX_IMDS_TOKEN) ||
            !(token = awscred_strdup(resp.body.data, &rc))) {
            awscred_why(why, whycap, "IMDSv2 token reply is malformed");
            rc = rc ? rc : SS_EPARSE;
            goto done;
        }
        size_t hn = strlen("X-aws-ec2-metadata-token: ") + n + 1;
        if (!(token_hdr = malloc(hn))) {
            rc = SS_ENOMEM;
            goto done;
        }
        snprintf(token_hdr, hn, "X-aws-ec2-metadata-token: %s", token);
    }
    ss_buf_free_secret(&resp.body);

    /* which role is attached to the instance */
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/", (int)eplen, ep);
    const char *get_hdr[] = {token_hdr};
    req = (struct awscred_http_request){
        .method = "GET",
        .url = url,
        .headers = get_hdr,
        .nheaders = 1,
        .timeout_ms = AWSCRED_IMDS_TIMEOUT_MS,
        .connect_timeout_ms = AWSCRED_IMDS_CONNECT_TIMEOUT_MS,
        .no_proxy = true,
    };
    if ((rc = awscred_http(cfg, &req, &resp, detail, sizeof detail))) {
        awscred_why(why, whycap, "IMDS GET %s: %s", url, detail);
        goto done;
    }
    if (resp.status != 200) {
        awscred_why(why, whycap, "IMDS GET %s: HTTP %ld%s", url, resp.status,
                    resp.status == 404 ? " (no IAM role attached to the instance)" : "");
        rc = resp.status == 404 ? SS_EAUTH : SS_EHTTP;
        goto done;
    }
    {
        const char *p = resp.body.data;
        size_t n = strcspn(p, "\r\n"); /* one role per line; an instance has at most one */
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        bool ok = n > 0 && n <= MAX_ROLE_NAME;
        for (size_t i = 0; ok && i < n; i++) /* IAM role names: [\w+=,.@-] */
            ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                 (p[i] >= '0' && p[i] <= '9') || strchr("_+=,.@-", p[i]);
        if (!ok) {
            awscred_why(why, whycap, "IMDS returned a malformed role name");
            rc = SS_EPARSE;
            goto done;
        }
        memcpy(role, p, n);
        role[n] = '\0';
    }
    ss_buf_free_secret(&resp.body);

    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)eplen, ep, role);
    if ((rc = awscred_http(cfg, &req, &resp, detail, sizeof detail))) {
        awscred_why(why, whycap, "IMDS GET %s: %s", url, detail);
        goto done;
    }
    const char *secrets[] = {token, NULL};
    awscred_redact(resp.body.data, resp.body.len, secrets);
    if (resp.status != 200) {
        awscred_why(why, whycap, "IMDS GET %s: HTTP %ld", url, resp.status);
        rc = SS_EHTTP;
        goto done;
    }
    if ((rc = awscred_parse_creds_json(resp.body.data, resp.body.len, out, detail, sizeof detail)))
        awscred_why(why, whycap, "IMDS GET %s: %s", url, detail);
done: /* success and failure share the cleanup */
    if (rc == SS_ENOMEM)
        awscred_why(why, whycap, "out of memory");
    ss_free_secret(token);
    ss_free_secret(token_hdr);
    ss_buf_free_secret(&resp.body);
    return rc;
}

/* ---- 5. shared credentials and config files ---------------------------- */

struct profile_files {
    struct awscred_ini *cred, *conf;
    char cred_path[MAX_PATH_LEN], conf_path[MAX_PATH_LEN];
};

/* A property of a profile: the credentials file wins over the config file. */
static const char *prop(const struct profile_files *f, const char *profile, const char *key)
{
    const char *v = awscred_ini_get(f->cred, profile, key);
    return v ? v : awscred_ini_get(f->conf, profile, key);
}

static const char *home_dir(const struct awscred_cfg *cfg, char *buf, size_t cap)
{
    if (cfg->home_dir)
        return cfg->home_dir;
    const char *h = awscred_env(cfg, "HOME");
    if (h)
        return h;
    struct passwd pw, *res = NULL;
    if (getpwuid_r(getuid(), &pw, buf, cap, &res) == 0 && res && res->pw_dir)
        return res->pw_dir;
    return NULL;
}

/* The file's path from its variable ("~/" expanded, as the SDKs do) or ~/.aws/<name>. */
static int file_path(const struct awscred_cfg *cfg, const char *var, const char *name, const char *home,
                     char *out, size_t cap)
{
    const char *v = awscred_env(cfg, var);
    int n;
    if (v && strncmp(v, "~/", 2) == 0 && home)
        n = snprintf(out, cap, "%s/%s", home, v + 2);
    else if (v)
        n = snprintf(out, cap, "%s", v);
    else if (home)
        n = snprintf(out, cap, "%s/.aws/%s", home, name);
    else
        n = snprintf(out, cap, "%s", "");
    return n < 0 || (size_t)n >= cap ? SS_ELIMIT : 0;
}

static int load_one(const char *path, bool config_file, struct awscred_ini **out, char *why, size_t whycap)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (!path[0])
        return 0;
    int rc = awscred_read_file(path, AWSCRED_MAX_SHARED_FILE, &text, &len);
    if (rc == SS_ENOTFOUND)
        return 0; /* a missing file is an empty one */
    if (rc) {
        awscred_why(why, whycap, "%s %s", path, rc == SS_ELIMIT ? "is too large" : "cannot be read");
        return rc;
    }
    rc = awscred_ini_parse(text, len, config_file, out);
    ss_free_secret(text);
    if (rc)
        awscred_why(why, whycap, "%s: %s", path, ss_strerror(rc));
    return rc;
}

static int resolve_profile(const struct awscred_cfg *cfg, const struct profile_files *f, const char *name,
                           const char **visited, int depth, bool top, struct awscred_value *out, char *why,
                           size_t whycap);

static int profile_static(const struct profile_files *f, const char *name, bool top,
                          struct awscred_value *out, char *why, size_t whycap)
{
    const char *id = prop(f, name, "aws_access_key_id");
    const char *secret = prop(f, name, "aws_secret_access_key");
    if (id && secret)
        return copy_static(id, secret, prop(f, name, "aws_session_token"), out, why, whycap);
    if (id || secret) {
        awscred_why(why, whycap, "profile %s has %s without %s", name,
                    id ? "aws_access_key_id" : "aws_secret_access_key",
                    id ? "aws_secret_access_key" : "aws_access_key_id");
        return SS_ECONFIG;
    }
    if (prop(f, name, "credential_process")) {
        awscred_why(why, whycap, "profile %s: credential_process is not supported", name);
        return SS_ECONFIG;
    }
    if (prop(f, name, "sso_session") || prop(f, name, "sso_start_url")) {
        awscred_why(why, whycap, "profile %s: IAM Identity Center (SSO) profiles are not supported", name);
        return SS_ECONFIG;
    }
    if (top)
        return SS_ENOTFOUND; /* e.g. a [default] with only a region: not a credential source */
    awscred_why(why, whycap, "source profile %s has no credentials", name);
    return SS_ECONFIG;
}

static int credential_source(const struct awscred_cfg *cfg, const char *name, const char *cs,
                             struct awscred_value *out, char *why, size_t whycap)
{
    enum awscred_provider p;
    if (strcmp(cs, "Environment") == 0)
        p = AWSCRED_PROVIDER_ENV;
    else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
        p = AWSCRED_PROVIDER_IMDS;
    else if (strcmp(cs, "EcsContainer") == 0)
        p = AWSCRED_PROVIDER_CONTAINER;
    else {
        awscred_why(why, whycap,
                    "profile %s: unknown credential_source (Environment, "
                    "Ec2InstanceMetadata or EcsContainer)",
                    name);
        return SS_ECONFIG;
    }
    int rc = awscred_provider_resolve(p, cfg, out, why, whycap);
    if (rc == SS_ENOTFOUND) {
        awscred_why(why, whycap, "profile %s: credential_source %s is not configured", name, cs);
        rc = SS_ECONFIG;
    }
    return rc;
}

static int resolve_profile(const struct awscred_cfg *cfg, const struct profile_files *f, const char *name,
                           const char **visited, int depth, bool top, struct awscred_value *out, char *why,
                           size_t whycap)
{
    memset(out, 0, sizeof *out);
    if (depth >= AWSCRED_MAX_PROFILE_DEPTH) {
        awscred_why(why, whycap, "source_profile chain longer than %d", AWSCRED_MAX_PROFILE_DEPTH);
        return SS_ECONFIG;
    }
    if (!top && !awscred_ini_has_profile(f->cred, name) && !awscred_ini_has_profile(f->conf, name)) {
        awscred_why(why, whycap, "source profile %s does not exist", name);
        return SS_ECONFIG;
    }
    visited[depth] = name;
    const char *role_arn = prop(f, name, "role_arn");
    if (!role_arn)
        return profile_static(f, name, top, out, why, whycap);
    if (strlen(role_arn) > AWSCRED_MAX_ARN) {
        awscred_why(why, whycap, "profile %s: role_arn too long", name);
        return SS_ECONFIG;
    }
    if (prop(f, name, "mfa_serial")) {
        awscred_why(why, whycap, "profile %s: mfa_serial needs an interactive code: not supported", name);
        return SS_ECONFIG;
    }
    const char *src = prop(f, name, "source_profile");
    const char *cs = prop(f, name, "credential_source");
    const char *wit = prop(f, name, "web_identity_token_file");
    const char *session = prop(f, name, "role_session_name");
    const char *region = awscred_ini_get(f->conf, name, "region");
    if (wit)
        return web_identity(cfg, region, wit, role_arn, session, out, why, whycap);
    if (src && cs) {
        awscred_why(why, whycap, "profile %s has both source_profile and credential_source", name);
        return SS_ECONFIG;
    }
    if (!src && !cs) {
        awscred_why(why, whycap,
                    "profile %s: role_arn needs source_profile, credential_source "
                    "or web_identity_token_file",
                    name);
        return SS_ECONFIG;
    }
    struct awscred_value source;
    int rc;
    if (cs) {
        rc = credential_source(cfg, name, cs, &source, why, whycap);
    } else if (strcmp(src, name) == 0) {
        /* a profile that sources itself uses its own static keys (botocore) */
        rc = profile_static(f, name, false, &source, why, whycap);
    } else {
        for (int i = 0; i <= depth; i++)
            if (strcmp(visited[i], src) == 0) {
                awscred_why(why, whycap, "source_profile loop through profile %s", src);
                return SS_ECONFIG;
            }
        rc = resolve_profile(cfg, f, src, visited, depth + 1, false, &source, why, whycap);
    }
    if (rc)
        return rc;
    char name_buf[48];
    rc = awscred_sts_assume_role(
        cfg, region, &source, role_arn, awscred_session_name(cfg, session, name_buf, sizeof name_buf),
        prop(f, name, "external_id"), prop(f, name, "duration_seconds"), out, why, whycap);
    awscred_value_clear(&source);
    return rc;
}

static int provider_profile(const struct awscred_cfg *cfg, struct awscred_value *out, char *why,
                            size_t whycap)
{
    const char *name = cfg->profile ? cfg->profile : awscred_env(cfg, "AWS_PROFILE");
    bool explicit = name != NULL;
    if (!name)
        name = "default";
    char pwbuf[1024];
    const char *home = home_dir(cfg, pwbuf, sizeof pwbuf);
    struct profile_files *f = calloc(1, sizeof *f);
    const char *visited[AWSCRED_MAX_PROFILE_DEPTH];
    int rc;
    if (!f) {
        awscred_why(why, whycap, "out of memory");
        return SS_ENOMEM;
    }
    if (file_path(cfg, "AWS_SHARED_CREDENTIALS_FILE", "credentials", home, f->cred_path, MAX_PATH_LEN) ||
        file_path(cfg, "AWS_CONFIG_FILE", "config", home, f->conf_path, MAX_PATH_LEN)) {
        awscred_why(why, whycap, "shared file path too long");
        rc = SS_ECONFIG;
        goto done;
    }
    if ((rc = load_one(f->cred_path, false, &f->cred, why, whycap)) ||
        (rc = load_one(f->conf_path, true, &f->conf, why, whycap)))
        goto done;
    if (!awscred_ini_has_profile(f->cred, name) && !awscred_ini_has_profile(f->conf, name)) {
        if (explicit) {
            awscred_why(why, whycap, "profile %s not found in %s or %s", name,
                        f->cred_path[0] ? f->cred_path : "(no credentials file)",
                        f->conf_path[0] ? f->conf_path : "(no config file)");
            rc = SS_ECONFIG;
        } else {
            rc = SS_ENOTFOUND;
        }
        goto done;
    }
    rc = resolve_profile(cfg, f, name, visited, 0, true, out, why, whycap);
done:
    awscred_ini_free(f->cred);
    awscred_ini_free(f->conf);
    free(f);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

int awscred_provider_resolve(enum awscred_provider p, const struct awscred_cfg *cfg,
                             struct awscred_value *out, char *why, size_t whycap)
{
    memset(out, 0, sizeof *out);
    if (why && whycap)
        why[0] = '\0';
    switch (p) {
    case AWSCRED_PROVIDER_STATIC: return provider_static(cfg, out, why, whycap);
    case AWSCRED_PROVIDER_ENV: return provider_env(cfg, out, why, whycap);
    case AWSCRED_PROVIDER_WEB_IDENTITY: return provider_web_identity(cfg, out, why, whycap);
    case AWSCRED_PROVIDER_CONTAINER: return provider_container(cfg, out, why, whycap);
    case AWSCRED_PROVIDER_PROFILE: return provider_profile(cfg, out, why, whycap);
    case AWSCRED_PROVIDER_IMDS: return provider_imds(cfg, out, why, whycap);
    default: return SS_EINVAL;
    }
}
