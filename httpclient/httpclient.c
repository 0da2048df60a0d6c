/* httpclient.c: a libcurl easy handle and its header lines from an http_config.
 *
 * Authorization always travels as a header line we build (never CURLOPT_USERNAME),
 * so a transport that is not libcurl (a test's script, the Kubernetes client's
 * seam) sees exactly what would be sent, and basic auth is encoded once, here, as
 * Go's Request.SetBasicAuth does. libcurl drops a custom Authorization header when a
 * redirect leaves the original host, as Go's client does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "httpclient.h"

/* Go's http.Client default, which Prometheus keeps: it stops before the 10th redirect
 * ("stopped after 10 redirects": ten requests made), so 9 are followed */
#define MAX_REDIRECTS 9

/* ---- options ---------------------------------------------------------------- */

static int tls_version(const char *name, long *out)
{
    static const struct {
        const char *name;
        long v;
    } map[] = {
        {"TLS10", CURL_SSLVERSION_TLSv1_0},
        {"TLS11", CURL_SSLVERSION_TLSv1_1},
        {"TLS12", CURL_SSLVERSION_TLSv1_2},
        {"TLS13", CURL_SSLVERSION_TLSv1_3},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0) {
            *out = map[i].v;
            return 0;
        }
    return SS_ECONFIG;
}

static void set_blob(CURL *e, CURLoption opt, const char *p, size_t len)
{
    /* copied: the config need not outlive the handle */
    struct curl_blob b = {(void *)p, len, CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &b);
}

int httpc_setup(CURL *e, const struct httpc_config *cfg, struct curl_slist **headers, char *err,
                size_t errlen)
{
    long minver = 0, maxver = 0;
    if (cfg->tls_min_version && tls_version(cfg->tls_min_version, &minver)) {
        snprintf(err, errlen, "unknown tls_config.min_version \"%.32s\" (want TLS10, TLS11, TLS12 or TLS13)",
                 cfg->tls_min_version);
        return SS_ECONFIG;
    }
    if (cfg->tls_max_version && tls_version(cfg->tls_max_version, &maxver)) {
        snprintf(err, errlen, "unknown tls_config.max_version \"%.32s\" (want TLS10, TLS11, TLS12 or TLS13)",
                 cfg->tls_max_version);
        return SS_ECONFIG;
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, cfg->follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* TLS is verified unless the config says insecure_skip_verify. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->tls_insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->tls_insecure_skip_verify ? 0L : 2L);
    if (cfg->tls_ca_pem)
        set_blob(e, CURLOPT_CAINFO_BLOB, cfg->tls_ca_pem, cfg->tls_ca_pem_len);
    else if (cfg->tls_ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->tls_ca_file);
    if (cfg->tls_cert_pem) {
        set_blob(e, CURLOPT_SSLCERT_BLOB, cfg->tls_cert_pem, cfg->tls_cert_pem_len);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (cfg->tls_cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->tls_cert_file);
    }
    if (cfg->tls_key_pem) {
        set_blob(e, CURLOPT_SSLKEY_BLOB, cfg->tls_key_pem, cfg->tls_key_pem_len);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (cfg->tls_key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->tls_key_file);
    }
    /* the lowest version, with the highest in the upper bits (CURL_SSLVERSION_MAX_*:
     * the same numbers shifted by 16) */
    if (cfg->tls_min_version || cfg->tls_max_version)
        curl_easy_setopt(e, CURLOPT_SSLVERSION,
                         (cfg->tls_min_version ? minver : CURL_SSLVERSION_DEFAULT) |
                             (cfg->tls_max_version ? maxver << 16 : 0L));
    /* "" rather than unset: libcurl would otherwise read http_proxy and friends */
    curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url ? cfg->proxy_url : "");
    return headers ? httpc_headers(cfg, headers, err, errlen) : 0;
}

/* ---- header lines -------------------------------------------------------------- */

int httpc_add_header(void *ctx, const char *line)
{
    struct curl_slist **list = ctx;
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n)
        return SS_ENOMEM;
    *list = n;
    return 0;
}

void httpc_headers_free(struct curl_slist *headers)
{
    for (struct curl_slist *p = headers; p; p = p->next)
        if (p->data)
            ss_wipe(p->data, strlen(p->data));
    curl_slist_free_all(headers);
}

/* A line break in a secret or a header value would let it forge header lines. */
static bool has_control(const char *s, bool allow_tab)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
            return true;
    }
    return false;
}

/* RFC 9110 field-name: one or more tchar. */
static bool valid_header_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

/* "prefix" + a + sep + b into a fresh secret line; sep may be NULL. */
static char *join(const char *prefix, const char *a, const char *sep, const char *b)
{
    size_t n = strlen(prefix) + strlen(a) + (sep ? strlen(sep) : 0) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s", prefix, a, sep ? sep : "", b);
    return s;
}

/* The Authorization line of cfg into *line (NULL when cfg has no credentials). */
static int auth_line(const struct httpc_config *cfg, char **line, char *err, size_t errlen)
{
    *line = NULL;
    bool basic = cfg->basic_auth_username != NULL;
    bool authz = cfg->authorization_credentials || cfg->authorization_credentials_file;
    if (basic && authz) {
        snprintf(err, errlen, "at most one of basic_auth and authorization must be configured");
        return SS_ECONFIG;
    }
    if (!basic && !authz)
        return 0;
    const char *file = basic ? cfg->basic_auth_password_file : cfg->authorization_credentials_file;
    char *secret = NULL;
    if (file) {
        if (!(secret = ss_read_secret_file(file))) {
            snprintf(err, errlen, "unable to read %s %.256s",
                     basic ? "basic auth password file" : "authorization credentials file", file);
            return SS_EAUTH;
        }
        if (!basic && !secret[0]) {
            ss_free_secret(secret);
            snprintf(err, errlen, "authorization credentials file %.256s is empty", file);
            return SS_EAUTH;
        }
    } else {
        const char *inline_secret = basic ? cfg->basic_auth_password : cfg->authorization_credentials;
        if (!(secret = strdup(inline_secret ? inline_secret : "")))
            goto oom;
    }
    if (has_control(secret, false) || (basic && has_control(cfg->basic_auth_username, false))) {
        ss_free_secret(secret);
        snprintf(err, errlen, "the %s holds control characters",
                 basic ? "basic auth username or password" : "authorization credentials");
        return SS_EAUTH;
    }
    if (basic) {
        char *plain = join("", cfg->basic_auth_username, ":", secret);
        ss_free_secret(secret);
        secret = NULL;
        if (!plain)
            goto oom;
        size_t n = strlen(plain);
        char *b64 = malloc(4 * ((n + 2) / 3) + 1);
        if (!b64) {
            ss_free_secret(plain);
            goto oom;
        }
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
        ss_free_secret(plain);
        *line = join("Authorization: Basic ", b64, NULL, "");
        ss_free_secret(b64);
    } else {
        const char *type = cfg->authorization_type ? cfg->authorization_type : "Bearer";
        if (has_control(type, false) || !*type) {
            ss_free_secret(secret);
            snprintf(err, errlen, "invalid authorization type");
            return SS_EINVAL;
        }
        *line = join("Authorization: ", type, " ", secret);
        ss_free_secret(secret);
    }
    if (*line)
        return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return SS_ENOMEM;
}

int httpc_headers(const struct httpc_config *cfg, struct curl_slist **headers, char *err, size_t errlen)
{
    struct curl_slist *mine = NULL; /* appended to *headers only when all is well */
    char *line = NULL;
    int rc = 0;
    for (size_t i = 0; i < cfg->nheaders && !rc; i++) {
        const struct httpc_header *h = &cfg->headers[i];
        const char *v = h->value ? h->value : "";
        if (!valid_header_name(h->name) || has_control(v, true)) {
            snprintf(err, errlen, "invalid header \"%.64s\": bad name or a control character in the value",
                     h->name ? h->name : "");
            rc = SS_EINVAL;
            break;
        }
        /* "Name;" is libcurl's way to send an empty value ("Name:" would remove the header) */
        line = *v ? join(h->name, ": ", NULL, v) : join(h->name, ";", NULL, "");
        rc = line ? httpc_add_header(&mine, line) : SS_ENOMEM;
        ss_free_secret(line); /* header values can be secrets (API keys) */
        if (rc == SS_ENOMEM)
            snprintf(err, errlen, "out of memory");
    }
    if (!rc && (rc = auth_line(cfg, &line, err, errlen)) == 0 && line) {
        rc = httpc_add_header(&mine, line);
        ss_free_secret(line);
        if (rc)
            snprintf(err, errlen, "out of memory");
    }
    if (rc) {
        httpc_headers_free(mine);
        return rc;
    }
    if (!*headers) {
        *headers = mine;
    } else {
        struct curl_slist *last = *headers;
        while (last->next)
            last = last->next;
        last->next = mine;
    }
    return 0;
}

/* ---- owned copies ----------------------------------------------------------------- */

/* Copying happens in two passes over the same code: the first (base NULL) only
 * counts bytes, the second copies into one block. */
struct copier {
    char *base;
    size_t used;
};

static const char *copy_bytes(struct copier *c, const char *p, size_t n)
{
    if (!p)
        return NULL;
    size_t at = c->used;
    c->used += n + 1;
    if (!c->base)
        return NULL;
    memcpy(c->base + at, p, n);
    c->base[at + n] = '\0';
    return c->base + at;
}

static const char *copy_str(struct copier *c, const char *s)
{
    return s ? copy_bytes(c, s, strlen(s)) : NULL;
}

static void copy_all(struct copier *c, const struct httpc_config *src, struct httpc_config *dst)
{
    /* the header array first: it needs pointer alignment */
    size_t hsize = src->nheaders * sizeof(struct httpc_header);
    struct httpc_header *hv = c->base ? (struct httpc_header *)(void *)(c->base + c->used) : NULL;
    c->used += hsize;
    for (size_t i = 0; i < src->nheaders; i++) {
        const char *n = copy_str(c, src->headers[i].name);
        const char *v = copy_str(c, src->headers[i].value);
        if (hv)
            hv[i] = (struct httpc_header){n, v};
    }
    dst->headers = src->nheaders ? hv : NULL;
    dst->nheaders = src->nheaders;
    dst->basic_auth_username = copy_str(c, src->basic_auth_username);
    dst->basic_auth_password = copy_str(c, src->basic_auth_password);
    dst->basic_auth_password_file = copy_str(c, src->basic_auth_password_file);
    dst->authorization_type = copy_str(c, src->authorization_type);
    dst->authorization_credentials = copy_str(c, src->authorization_credentials);
    dst->authorization_credentials_file = copy_str(c, src->authorization_credentials_file);
    dst->tls_ca_file = copy_str(c, src->tls_ca_file);
    dst->tls_cert_file = copy_str(c, src->tls_cert_file);
    dst->tls_key_file = copy_str(c, src->tls_key_file);
    dst->tls_ca_pem = copy_bytes(c, src->tls_ca_pem, src->tls_ca_pem_len);
    dst->tls_ca_pem_len = src->tls_ca_pem ? src->tls_ca_pem_len : 0;
    dst->tls_cert_pem = copy_bytes(c, src->tls_cert_pem, src->tls_cert_pem_len);
    dst->tls_cert_pem_len = src->tls_cert_pem ? src->tls_cert_pem_len : 0;
    dst->tls_key_pem = copy_bytes(c, src->tls_key_pem, src->tls_key_pem_len);
    dst->tls_key_pem_len = src->tls_key_pem ? src->tls_key_pem_len : 0;
    dst->tls_server_name = copy_str(c, src->tls_server_name);
    dst->tls_min_version = copy_str(c, src->tls_min_version);
    dst->tls_max_version = copy_str(c, src->tls_max_version);
    dst->tls_insecure_skip_verify = src->tls_insecure_skip_verify;
    dst->proxy_url = copy_str(c, src->proxy_url);
    dst->follow_redirects = src->follow_redirects;
}

/* The block: the struct, then a size_t with the block's length (for the wipe), then
 * the headers and bytes. */
struct owned {
    struct httpc_config cfg;
    size_t size;
};

int httpc_config_dup(const struct httpc_config *cfg, struct httpc_config **out)
{
    *out = NULL;
    struct httpc_config scratch;
    struct copier count = {NULL, 0};
    copy_all(&count, cfg, &scratch);
    size_t size = sizeof(struct owned) + count.used;
    struct owned *o = calloc(1, size);
    if (!o)
        return SS_ENOMEM;
    o->size = size;
    struct copier c = {(char *)(o + 1), 0};
    copy_all(&c, cfg, &o->cfg);
    *out = &o->cfg;
    return 0;
}

void httpc_config_free(struct httpc_config *cfg)
{
    if (!cfg)
        return;
    struct owned *o = (struct owned *)(void *)cfg;
    size_t size = o->size;
    ss_wipe(o, size);
    free(o);
}
