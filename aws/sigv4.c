/* sigv4.c: AWS Signature Version 4 signer (header form) on OpenSSL SHA-256 and HMAC.
 *
 * Follows "Create a signed AWS API request" (AWS IAM User Guide, Signature Version 4):
 * canonical request -> string to sign -> derived key -> signature, checked byte for byte
 * against the AWS test suites (the classic .req/.creq/.sts/.authz suite and the
 * aws-c-auth context.json suite) and against botocore on random requests.
 *
 * Why not libcurl's CURLOPT_AWS_SIGV4 (libcurl 7.88 here):
 *  - it reads the wall clock itself, so the fixed-time AWS vectors cannot be replayed
 *    and tests cannot pin the date; we take the clock as a parameter;
 *  - it decides on its own which headers to sign (content-type, host, the date header,
 *    and in some versions x-amz-*), has no notion of session tokens or of the
 *    "sign the token or not" choice some services need;
 *  - its path/query canonicalisation has changed between releases (query sorting and
 *    encoding fixes landed in 8.x), so an exact match with the suites would depend on
 *    the distribution's libcurl;
 *  - it hashes the body on every transfer and re-derives the key every time, while we
 *    sign an already snappy-compressed body once (hash passed in on retries) and reuse
 *    the derived key for the whole UTC day;
 *  - it cannot show us the canonical request, which is what tests and debug logs need.
 * So we write our own; it is about as long as the option's glue would be.
 *
 * Canonicalisation choices, where the spec leaves room, follow botocore and the suites:
 *  - path: the URL path as sent, dot segments and empty segments removed (trailing slash
 *    kept only if the input had one), then percent-encoded again ("double encoding":
 *    %3A becomes %253A); S3 mode keeps the path as is and encodes it once;
 *  - query: split on '&' (empty pieces dropped), at the first '=' (a key without '='
 *    gets an empty value), each side percent-decoded then encoded with only unreserved
 *    characters left bare ('+' is a literal plus, not a space), sorted by key then value;
 *  - headers: names lowercased, values trimmed with inner runs of whitespace (including
 *    folded line breaks, and inside quotes, as the suite's get-header-value-trim wants)
 *    collapsed to one space, repeated names joined with ',' in the order given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"
#include "ss.h"
#include "sstext.h"

#define SIGV4_ALGORITHM        "AWS4-HMAC-SHA256"
#define SIGV4_MAX_METHOD       64
#define SIGV4_MAX_PAYLOAD_HASH 128

/* ---- small helpers ---------------------------------------------------- */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* The whitespace SigV4's Trimall removes: spaces, tabs and the line breaks of folded
 * (obs-fold) header lines. */
static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return SS_ENOMEM;
    return 0;
}

static int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[32])
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len) || len != 32)
        return SS_ENOMEM;
    return 0;
}

int sigv4_payload_hash(const void *body, size_t len, char out_hex[65])
{
    unsigned char md[32];
    if (!out_hex || (!body && len))
        return SS_EINVAL;
    int rc = sha256(len ? body : "", len, md);
    if (rc)
        return rc;
    ss_hex_encode(out_hex, md, sizeof md);
    return 0;
}

/* ---- input validation ------------------------------------------------- */

/* Length of s, or SS_ELIMIT past max, or SS_EINVAL when missing/empty. */
static int bounded_len(const char *s, size_t max, bool allow_empty, size_t *out)
{
    if (!s)
        return SS_EINVAL;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return SS_ELIMIT;
    if (n == 0 && !allow_empty)
        return SS_EINVAL;
    *out = n;
    return 0;
}

/* Region and service go into the credential scope "date/region/service/aws4_request"
 * and the Authorization header, so no separators or spaces. */
static int check_scope_part(const char *s)
{
    size_t n;
    int rc = bounded_len(s, SIGV4_MAX_SCOPE_PART, false, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return SS_EINVAL;
    }
    return 0;
}

/* Visible ASCII only, minus the characters in `forbid`: for values we hand back as
 * header values (no CR/LF injection) or embed in the Authorization header. */
static int check_visible(const char *s, size_t max, const char *forbid)
{
    size_t n;
    int rc = bounded_len(s, max, false, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || strchr(forbid, c))
            return SS_EINVAL;
    }
    return 0;
}

/* ---- URL -------------------------------------------------------------- */

struct url_parts {
    struct ss_str scheme, host, path, query;
    bool has_port;
    unsigned port;
};

static int url_split(const char *url, size_t len, struct url_parts *u)
{
    memset(u, 0, sizeof *u);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c < 0x20 || c == 0x7f) /* control bytes never belong in a request line */
            return SS_EINVAL;
    }
    /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    size_t i = 0;
    while (i < len &&
           ((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z') ||
            (i > 0 && ((url[i] >= '0' && url[i] <= '9') || url[i] == '+' || url[i] == '-' || url[i] == '.'))))
        i++;
    if (i == 0 || i + 3 > len || memcmp(url + i, "://", 3) != 0)
        return SS_EINVAL;
    u->scheme = (struct ss_str){url, i};
    size_t a = i + 3, e = a;
    while (e < len && url[e] != '/' && url[e] != '?' && url[e] != '#')
        e++;
    /* userinfo is never part of Host */
    for (size_t k = e; k > a; k--)
        if (url[k - 1] == '@') {
            a = k;
            break;
        }
    size_t host_end;
    if (a < e && url[a] == '[') { /* IPv6 literal, brackets kept as in Host */
        const char *rb = memchr(url + a, ']', e - a);
        if (!rb)
            return SS_EINVAL;
        host_end = (size_t)(rb - url) + 1;
        if (host_end < e && url[host_end] != ':')
            return SS_EINVAL;
    } else {
        host_end = a;
        while (host_end < e && url[host_end] != ':')
            host_end++;
    }
    if (host_end == a)
        return SS_EINVAL;
    for (size_t k = a; k < host_end; k++)
        if (url[k] == ' ')
            return SS_EINVAL;
    u->host = (struct ss_str){url + a, host_end - a};
    if (host_end < e) { /* ":port", possibly empty */
        unsigned long port = 0;
        size_t ndig = 0;
        for (size_t k = host_end + 1; k < e; k++) {
            if (url[k] < '0' || url[k] > '9' || ++ndig > 5)
                return SS_EINVAL;
            port = port * 10 + (unsigned long)(url[k] - '0');
        }
        if (port > 65535)
            return SS_EINVAL;
        u->has_port = ndig > 0;
        u->port = (unsigned)port;
    }
    size_t p = e;
    while (p < len && url[p] != '?' && url[p] != '#')
        p++;
    u->path = (struct ss_str){url + e, p - e};
    if (p < len && url[p] == '?') {
        size_t q = p + 1;
        while (q < len && url[q] != '#')
            q++;
        u->query = (struct ss_str){url + p + 1, q - p - 1};
    }
    return 0;
}

static bool scheme_is(struct ss_str s, const char *name)
{
    size_t n = strlen(name);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)s.p[i]) != (unsigned char)name[i])
            return false;
    return true;
}

/* Host as an HTTP client sends it: lowercase, ":port" only when it is not the scheme's
 * default (RFC 9110 §7.2), which is also what botocore signs. */
static int url_host_header(const struct url_parts *u, char **out)
{
    char *h = malloc(u->host.len + 8);
    if (!h)
        return SS_ENOMEM;
    for (size_t i = 0; i < u->host.len; i++)
        h[i] = (char)ascii_lower((unsigned char)u->host.p[i]);
    size_t n = u->host.len;
    unsigned def = scheme_is(u->scheme, "http") ? 80 : scheme_is(u->scheme, "https") ? 443 : 0;
    if (u->has_port && u->port != def)
        n += (size_t)snprintf(h + n, 8, ":%u", u->port);
    h[n] = '\0';
    *out = h;
    return 0;
}

/* ---- canonical URI and query ------------------------------------------ */

/* Canonical URI. Normalisation removes empty and "." segments and resolves ".." (the
 * suite's normalize-path cases; never above the root), keeping a trailing slash only if
 * the input ended with one. */
static int canonical_uri(struct ss_buf *b, struct ss_str path, const struct sigv4_params *pp)
{
    /* Unreserved bytes stay, everything else is %XX; S3 signs the path as sent
     * (single encoding), so its existing escapes stay too. */
    unsigned flags = pp->single_encode_path ? SS_PCT_KEEP_ESCAPES : 0;
    if (path.len == 0)
        return ss_buf_append(b, "/", 1);
    if (pp->skip_path_normalization)
        return ss_percent_encode(b, path.p, path.len, flags | SS_PCT_KEEP_SLASH);

    size_t nslash = 0;
    for (size_t i = 0; i < path.len; i++)
        nslash += path.p[i] == '/';
    struct ss_str *seg = malloc((nslash + 1) * sizeof *seg);
    if (!seg)
        return SS_ENOMEM;
    size_t nseg = 0, start = 0;
    for (size_t i = 0; i <= path.len; i++) {
        if (i < path.len && path.p[i] != '/')
            continue;
        struct ss_str s = {path.p + start, i - start};
        start = i + 1;
        if (s.len == 0 || (s.len == 1 && s.p[0] == '.'))
            continue;
        if (s.len == 2 && s.p[0] == '.' && s.p[1] == '.') {
            if (nseg)
                nseg--;
            continue;
        }
        seg[nseg++] = s;
    }
    int rc = 0;
    for (size_t k = 0; k < nseg && rc == 0; k++) {
        rc = ss_buf_append(b, "/", 1);
        if (rc == 0)
            rc = ss_percent_encode(b, seg[k].p, seg[k].len, flags);
    }
    if (rc == 0 && (nseg == 0 || path.p[path.len - 1] == '/'))
        rc = ss_buf_append(b, "/", 1);
    free(seg);
    return rc;
}

struct query_pair {
    const char *k, *v;
    size_t klen, vlen;
    size_t koff, voff; /* where k and v start in the scratch, which may move while filled */
};

static int pair_cmp(const void *a, const void *b)
{
    const struct query_pair *x = a, *y = b;
    int c = ss_str_cmp((struct ss_str){x->k, x->klen}, (struct ss_str){y->k, y->klen});
    if (c)
        return c;
    return ss_str_cmp((struct ss_str){x->v, x->vlen}, (struct ss_str){y->v, y->vlen});
}

/* Each name and value is decoded (%XX; an invalid escape stays literal) and encoded
 * again strictly, so differently escaped queries sign the same. */
static int canonical_query(struct ss_buf *b, struct ss_str q)
{
    if (q.len == 0)
        return 0;
    size_t npairs = 1;
    for (size_t i = 0; i < q.len; i++)
        npairs += q.p[i] == '&';
    struct ss_buf scratch;
    ss_buf_init(&scratch, 0);
    struct query_pair *pairs = calloc(npairs, sizeof *pairs);
    int rc = pairs ? ss_buf_reserve(&scratch, 3 * q.len) : SS_ENOMEM; /* 3 bytes per input byte at most */
    if (rc)
        goto fail;
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= q.len && rc == 0; i++) {
        if (i < q.len && q.p[i] != '&')
            continue;
        const char *s = q.p + start;
        size_t slen = i - start;
        start = i + 1;
        if (slen == 0)
            continue; /* "a=1&&b=2": empty pieces carry no parameter */
        const char *eq = memchr(s, '=', slen);
        size_t klen = eq ? (size_t)(eq - s) : slen;
        struct query_pair *pr = &pairs[n++];
        pr->koff = scratch.len;
        rc = ss_percent_encode(&scratch, s, klen, SS_PCT_REENCODE);
        pr->klen = scratch.len - pr->koff;
        pr->voff = scratch.len;
        if (rc == 0 && eq)
            rc = ss_percent_encode(&scratch, eq + 1, slen - klen - 1, SS_PCT_REENCODE);
        pr->vlen = scratch.len - pr->voff;
    }
    if (rc)
        goto fail;
    for (size_t k = 0; k < n; k++) {
        pairs[k].k = scratch.data + pairs[k].koff;
        pairs[k].v = scratch.data + pairs[k].voff;
    }
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    for (size_t k = 0; k < n && rc == 0; k++) {
        if (k)
            rc = ss_buf_append(b, "&", 1);
        if (rc == 0)
            rc = ss_buf_append(b, pairs[k].k, pairs[k].klen);
        if (rc == 0)
            rc = ss_buf_append(b, "=", 1);
        if (rc == 0)
            rc = ss_buf_append(b, pairs[k].v, pairs[k].vlen);
    }
fail:
    free(pairs);
    ss_buf_free(&scratch);
    return rc;
}

/* ---- canonical headers ------------------------------------------------ */

struct hdr {
    const char *name, *value;
    size_t name_len, value_len;
    size_t order; /* input position: repeated names keep their order */
};

static int name_cmp(const struct hdr *x, const struct hdr *y)
{
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = ascii_lower((unsigned char)x->name[i]);
        unsigned char c = ascii_lower((unsigned char)y->name[i]);
        if (a != c)
            return a < c ? -1 : 1;
    }
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len ? 1 : 0;
}

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = name_cmp(x, y);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order ? 1 : 0;
}

static bool name_is(const char *name, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)name[i]) != (unsigned char)lower[i])
            return false;
    return true;
}

/* Trimall (SigV4 canonical headers): drop leading and trailing whitespace and turn each
 * inner run into one space. */
static int append_trimall(struct ss_buf *b, const char *v, size_t n)
{
    bool pending = false, wrote = false;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (is_ws((unsigned char)v[i])) {
            pending = wrote;
            continue;
        }
        if (pending)
            rc = ss_buf_append(b, " ", 1);
        if (rc == 0)
            rc = ss_buf_append(b, &v[i], 1);
        pending = false;
        wrote = true;
    }
    return rc;
}

static int append_lower(struct ss_buf *b, const char *p, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char c = (char)ascii_lower((unsigned char)p[i]);
        rc = ss_buf_append(b, &c, 1);
    }
    return rc;
}

/* Canonical header block ("name:v1,v2\n" per name, sorted) into b, and the
 * SignedHeaders list ("a;b;c") into sh. */
static int canonical_headers(struct ss_buf *b, struct ss_buf *sh, struct hdr *h, size_t n)
{
    qsort(h, n, sizeof *h, hdr_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i + 1;
        while (j < n && name_cmp(&h[i], &h[j]) == 0)
            j++;
        if (i)
            rc = ss_buf_append(sh, ";", 1);
        if (rc == 0)
            rc = append_lower(sh, h[i].name, h[i].name_len);
        if (rc == 0)
            rc = append_lower(b, h[i].name, h[i].name_len);
        if (rc == 0)
            rc = ss_buf_append(b, ":", 1);
        for (size_t k = i; k < j && rc == 0; k++) {
            if (k > i)
                rc = ss_buf_append(b, ",", 1);
            if (rc == 0)
                rc = append_trimall(b, h[k].value, h[k].value_len);
        }
        if (rc == 0)
            rc = ss_buf_append(b, "\n", 1);
        i = j;
    }
    return rc;
}

/* ---- key derivation --------------------------------------------------- */

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int derive_key(const char *secret, size_t secret_len, const char *date, const char *region,
                      const char *service, unsigned char out[32])
{
    unsigned char ksecret[4 + SIGV4_MAX_SECRET];
    unsigned char k1[32], k2[32], k3[32];
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, secret_len);
    int rc = hmac_sha256(ksecret, 4 + secret_len, date, strlen(date), k1);
    if (rc == 0)
        rc = hmac_sha256(k1, 32, region, strlen(region), k2);
    if (rc == 0)
        rc = hmac_sha256(k2, 32, service, strlen(service), k3);
    if (rc == 0)
        rc = hmac_sha256(k3, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(ksecret, sizeof ksecret);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    OPENSSL_cleanse(k3, sizeof k3);
    return rc;
}

/* Identifies the credentials in the cache without keeping the secret. */
static int cred_fingerprint(const struct sigv4_credentials *c, size_t secret_len, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, c->access_key_id, strlen(c->access_key_id) + 1) == 1 &&
             EVP_DigestUpdate(ctx, c->secret_access_key, secret_len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx); /* cleanses its state */
    return ok ? 0 : SS_ENOMEM;
}

static int signing_key(const struct sigv4_credentials *c, size_t secret_len, const char *date,
                       const struct sigv4_params *pp, unsigned char out[32])
{
    struct sigv4_key_cache *kc = pp->key_cache;
    if (!kc)
        return derive_key(c->secret_access_key, secret_len, date, pp->region, pp->service, out);
    unsigned char fp[32];
    int rc = cred_fingerprint(c, secret_len, fp);
    if (rc)
        return rc;
    if (kc->valid && strcmp(kc->date, date) == 0 && strcmp(kc->region, pp->region) == 0 &&
        strcmp(kc->service, pp->service) == 0 && CRYPTO_memcmp(kc->cred_fingerprint, fp, 32) == 0) {
        memcpy(out, kc->key, 32);
        return 0;
    }
    sigv4_key_cache_clear(kc);
    rc = derive_key(c->secret_access_key, secret_len, date, pp->region, pp->service, out);
    if (rc)
        return rc;
    memcpy(kc->key, out, 32);
    memcpy(kc->cred_fingerprint, fp, 32);
    memcpy(kc->date, date, 9);
    snprintf(kc->region, sizeof kc->region, "%s", pp->region);
    snprintf(kc->service, sizeof kc->service, "%s", pp->service);
    kc->valid = true;
    return 0;
}

void sigv4_key_cache_clear(struct sigv4_key_cache *cache)
{
    if (cache)
        OPENSSL_cleanse(cache, sizeof *cache);
}

/* ---- signing ---------------------------------------------------------- */

void sigv4_result_free(struct sigv4_result *res)
{
    if (!res)
        return;
    /* The token is a credential and the canonical request may contain it. */
    ss_free_secret(res->x_amz_security_token);
    ss_free_secret(res->canonical_request);
    free(res->authorization);
    free(res->x_amz_date);
    free(res->x_amz_content_sha256);
    free(res->host);
    free(res->string_to_sign);
    memset(res, 0, sizeof *res);
}

static int format_amz_date(int64_t now, char out[17])
{
    /* Year 0000-9999 only: the format has four digits. */
    if (now < 0 || now > INT64_C(253402300799))
        return SS_EINVAL;
    time_t t = (time_t)now;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return SS_EINVAL;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *creds,
               const struct sigv4_params *pp, struct sigv4_result *out)
{
    struct ss_buf creq, signed_hdrs, auth;
    struct hdr *hdrs = NULL;
    struct url_parts u;
    unsigned char key[32], md[32];
    char amz_date[17], payload_hex[SIGV4_MAX_PAYLOAD_HASH + 1], sig_hex[65], sts[512];
    size_t url_len, method_len, secret_len, tok_len = 0;
    int rc;

    ss_buf_init(&creq, 0);
    ss_buf_init(&signed_hdrs, 0);
    ss_buf_init(&auth, 0);
    if (!out)
        return SS_EINVAL;
    memset(out, 0, sizeof *out);
    rc = SS_EINVAL;
    if (!req || !creds || !pp)
        goto fail;

    /* -- validate everything before doing any work */
    if ((rc = bounded_len(req->method, SIGV4_MAX_METHOD, false, &method_len)))
        goto fail;
    for (size_t i = 0; i < method_len; i++)
        if (!ss_http_tchar((unsigned char)req->method[i])) {
            rc = SS_EINVAL;
            goto fail;
        }
    if ((rc = bounded_len(req->url, SIGV4_MAX_URL, false, &url_len)) ||
        (rc = url_split(req->url, url_len, &u)))
        goto fail;
    if ((rc = check_scope_part(pp->region)) || (rc = check_scope_part(pp->service)))
        goto fail;
    if ((rc = check_visible(creds->access_key_id, SIGV4_MAX_ACCESS_KEY, "/,;=")) ||
        (rc = bounded_len(creds->secret_access_key, SIGV4_MAX_SECRET, false, &secret_len)))
        goto fail;
    if (creds->session_token) {
        if ((rc = check_visible(creds->session_token, SIGV4_MAX_TOKEN, "")))
            goto fail;
        tok_len = strlen(creds->session_token);
    }
    rc = SS_EINVAL;
    if (req->body_len && !req->body)
        goto fail;
    if (req->nheaders > SIGV4_MAX_HEADERS) {
        rc = SS_ELIMIT;
        goto fail;
    }
    if (req->nheaders && !req->headers)
        goto fail;
    if ((rc = format_amz_date(pp->now_unix, amz_date)))
        goto fail;
    if (req->payload_sha256_hex) {
        if ((rc = check_visible(req->payload_sha256_hex, SIGV4_MAX_PAYLOAD_HASH, "")))
            goto fail;
        memcpy(payload_hex, req->payload_sha256_hex, strlen(req->payload_sha256_hex) + 1);
    } else if ((rc = sigv4_payload_hash(req->body, req->body_len, payload_hex))) {
        goto fail;
    }

    /* -- headers to sign: the caller's, minus the ones we own or never sign */
    rc = SS_ENOMEM;
    hdrs = calloc(req->nheaders + 4, sizeof *hdrs);
    if (!hdrs)
        goto fail;
    size_t nh = 0, hdr_bytes = 0;
    bool have_host = false;
    bool add_token = tok_len && !pp->omit_session_token_from_signature;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sigv4_header *h = &req->headers[i];
        size_t nl, vl;
        if ((rc = bounded_len(h->name, SIGV4_MAX_HEADER_NAME, false, &nl)) ||
            (rc = bounded_len(h->value, SIGV4_MAX_HEADER_VALUE, true, &vl)))
            goto fail;
        for (size_t k = 0; k < nl; k++)
            if (!ss_http_tchar((unsigned char)h->name[k])) {
                rc = SS_EINVAL;
                goto fail;
            }
        /* Unsigned by convention (botocore, the Go SDK): clients and proxies add or
         * rewrite these after signing. */
        if (name_is(h->name, nl, "authorization") || name_is(h->name, nl, "user-agent") ||
            name_is(h->name, nl, "expect") || name_is(h->name, nl, "x-amzn-trace-id"))
            continue;
        /* Ours: the caller's copies would be stale (a retry) or conflicting. */
        if (name_is(h->name, nl, "x-amz-date") || (tok_len && name_is(h->name, nl, "x-amz-security-token")) ||
            (pp->add_content_sha256_header && name_is(h->name, nl, "x-amz-content-sha256")))
            continue;
        if (name_is(h->name, nl, "host"))
            have_host = true;
        hdrs[nh++] = (struct hdr){h->name, h->value, nl, vl, i};
        hdr_bytes += 2 * nl + vl + 3;
    }
    if (!have_host) {
        if ((rc = url_host_header(&u, &out->host)))
            goto fail;
        hdrs[nh] = (struct hdr){"host", out->host, 4, strlen(out->host), SIZE_MAX - 3};
        hdr_bytes += 2 * 4 + hdrs[nh++].value_len + 3;
    }
    hdrs[nh++] = (struct hdr){"x-amz-date", amz_date, 10, 16, SIZE_MAX - 2};
    hdr_bytes += 2 * 10 + 16 + 3;
    if (add_token) {
        hdrs[nh++] = (struct hdr){"x-amz-security-token", creds->session_token, 20, tok_len, SIZE_MAX - 1};
        hdr_bytes += 2 * 20 + tok_len + 3;
    }
    if (pp->add_content_sha256_header) {
        hdrs[nh++] = (struct hdr){"x-amz-content-sha256", payload_hex, 20, strlen(payload_hex), SIZE_MAX};
        hdr_bytes += 2 * 20 + strlen(payload_hex) + 3;
    }

    /* -- canonical request. Reserve its exact upper bound once so the buffer never
     * moves: it may hold the session token, and a realloc would leave an unwiped copy. */
    size_t bound = method_len + 1 + (3 * u.path.len + 2) + 1 + (4 * u.query.len + 1) + 1 + hdr_bytes + 1 +
                   SIGV4_MAX_PAYLOAD_HASH + 16;
    ss_buf_init(&creq, bound);
    ss_buf_init(&signed_hdrs, hdr_bytes + 1);
    if ((rc = ss_buf_reserve(&creq, bound)) || (rc = ss_buf_reserve(&signed_hdrs, hdr_bytes)))
        goto fail;
    if ((rc = ss_buf_append(&creq, req->method, method_len)) || (rc = ss_buf_append(&creq, "\n", 1)) ||
        (rc = canonical_uri(&creq, u.path, pp)) || (rc = ss_buf_append(&creq, "\n", 1)) ||
        (rc = canonical_query(&creq, u.query)) || (rc = ss_buf_append(&creq, "\n", 1)) ||
        (rc = canonical_headers(&creq, &signed_hdrs, hdrs, nh)) || (rc = ss_buf_append(&creq, "\n", 1)) ||
        (rc = ss_buf_append(&creq, signed_hdrs.data, signed_hdrs.len)) ||
        (rc = ss_buf_append(&creq, "\n", 1)) || (rc = ss_buf_append_str(&creq, payload_hex)))
        goto fail;

    /* -- string to sign and signature */
    char scope[9 + 2 * SIGV4_MAX_SCOPE_PART + 16];
    char hash_hex[65];
    snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", amz_date, pp->region, pp->service);
    if ((rc = sha256(creq.data, creq.len, md)))
        goto fail;
    ss_hex_encode(hash_hex, md, 32);
    snprintf(sts, sizeof sts, SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash_hex);
    char date8[9];
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    if ((rc = signing_key(creds, secret_len, date8, pp, key)) ||
        (rc = hmac_sha256(key, 32, sts, strlen(sts), md)))
        goto fail;
    ss_hex_encode(sig_hex, md, 32);

    if ((rc = ss_buf_printf(&auth, SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=", creds->access_key_id,
                            scope)) ||
        (rc = ss_buf_append(&auth, signed_hdrs.data, signed_hdrs.len)) ||
        (rc = ss_buf_printf(&auth, ", Signature=%s", sig_hex)))
        goto fail;

    rc = SS_ENOMEM;
    out->authorization = auth.data;
    ss_buf_init(&auth, 0);
    out->canonical_request = creq.data;
    ss_buf_init(&creq, 0);
    if (!(out->x_amz_date = dup_str(amz_date)) || !(out->string_to_sign = dup_str(sts)))
        goto fail;
    if (tok_len && !(out->x_amz_security_token = dup_str(creds->session_token)))
        goto fail;
    if (pp->add_content_sha256_header && !(out->x_amz_content_sha256 = dup_str(payload_hex)))
        goto fail;
    rc = 0;

fail:
    OPENSSL_cleanse(key, sizeof key);
    free(hdrs);
    ss_buf_free_secret(&creq);
    ss_buf_free(&signed_hdrs);
    ss_buf_free(&auth);
    if (rc)
        sigv4_result_free(out);
    return rc;
}
