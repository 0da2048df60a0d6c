/* test_sigv4.c: the SigV4 signer against the AWS test suites, plus its edge rules.
 *
 * Replays every case of the classic suite (aws-sig-v4-test-suite: .req -> .creq, .sts,
 * .authz), every header-signing case of the aws-c-auth suite (aws-signing-test-suite/v4:
 * context.json + request.txt -> header-*.txt; the query-* files are presigned URLs, which
 * we do not implement, and v4a is ECDSA) and the smithy-rs double-encoding extras, all
 * compared byte for byte. The .req files are raw HTTP, parsed by a small parser below.
 * The rest checks the rules the suites do not pin down: Host derivation, query and path
 * corner cases, headers the signer owns, the key cache and input validation.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "sigv4.h"
#include "ss.h"

#define CORPUS          SS_CORPORA_DIR "/sigv4"
#define SUITE_SECRET    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME      INT64_C(1440938160) /* 20150830T123600Z */
#define SMITHY_TIME     INT64_C(1620747645) /* 20210511T154045Z */
#define MAX_REQ_HEADERS 64

/* snprintf into a char array, failing the test on truncation. */
#define PATHF(buf, ...) assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* ---- file and raw-request helpers ------------------------------------- */

static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct ss_buf b;
    ss_buf_init(&b, 1 << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (ss_buf_append(&b, tmp, n)) {
            ss_buf_free(&b);
            fclose(f);
            return NULL;
        }
    fclose(f);
    if (!b.data && ss_buf_append(&b, "", 0))
        return NULL;
    if (len_out)
        *len_out = b.len;
    return b.data;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* One raw HTTP/1.1 request as the suites write it: request line, "Name:value" lines
 * (a line starting with SP/HT continues the previous value, kept with its line break),
 * an empty line, then the body. */
struct raw_req {
    char *method, *target;
    struct sigv4_header h[MAX_REQ_HEADERS];
    char *names[MAX_REQ_HEADERS], *values[MAX_REQ_HEADERS];
    size_t nh;
    char *body;
    size_t body_len;
    char *text;
};

static void raw_req_free(struct raw_req *r)
{
    for (size_t i = 0; i < r->nh; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->method);
    free(r->target);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static char *dupn(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static int raw_req_parse(const char *path, struct raw_req *r)
{
    memset(r, 0, sizeof *r);
    size_t len;
    r->text = read_file(path, &len);
    if (!r->text)
        return -1;
    const char *p = r->text, *end = r->text + len;
    const char *eol = memchr(p, '\n', len);
    size_t first_len = eol ? (size_t)(eol - p) : len;
    if (first_len && p[first_len - 1] == '\r')
        first_len--;
    const char *line_end = p + first_len;
    /* The target may hold raw spaces ("/example space/"): method is up to the first
     * space, the protocol after the last. */
    const char *sp1 = memchr(p, ' ', first_len);
    const char *sp2 = line_end;
    while (sp2 > p && sp2[-1] != ' ')
        sp2--;
    if (!sp1 || sp2 - 1 <= sp1)
        return -1;
    r->method = dupn(p, (size_t)(sp1 - p));
    r->target = dupn(sp1 + 1, (size_t)(sp2 - 1 - (sp1 + 1)));
    p = eol ? eol + 1 : end;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        size_t llen = (size_t)(line_end - p);
        if (llen && p[llen - 1] == '\r')
            llen--;
        if (llen == 0) { /* end of headers */
            r->body = (char *)next;
            r->body_len = (size_t)(end - next);
            break;
        }
        if ((p[0] == ' ' || p[0] == '\t') && r->nh) { /* obs-fold continuation */
            char *prev = r->values[r->nh - 1];
            size_t pl = strlen(prev);
            char *nv = malloc(pl + 1 + llen + 1);
            assert_non_null(nv);
            memcpy(nv, prev, pl);
            nv[pl] = '\n';
            memcpy(nv + pl + 1, p, llen);
            nv[pl + 1 + llen] = '\0';
            free(prev);
            r->values[r->nh - 1] = nv;
        } else {
            const char *colon = memchr(p, ':', llen);
            if (!colon || r->nh == MAX_REQ_HEADERS)
                return -1;
            r->names[r->nh] = dupn(p, (size_t)(colon - p));
            r->values[r->nh] = dupn(colon + 1, llen - (size_t)(colon + 1 - p));
            r->nh++;
        }
        p = next;
    }
    for (size_t i = 0; i < r->nh; i++)
        r->h[i] = (struct sigv4_header){r->names[i], r->values[i]};
    return 0;
}

/* Files in the classic suite have no trailing newline; some smithy ones do. */
static void chop_newline(char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        s[n - 1] = '\0';
}

static bool same(const char *what, const char *casename, const char *want, const char *got)
{
    if (got && strcmp(want, got) == 0)
        return true;
    fprintf(stderr, "[%s] %s differs\n--- expected\n%s\n--- got\n%s\n", casename, what, want,
            got ? got : "(null)");
    return false;
}

/* Sign a parsed raw request; the URL is scheme://host + the request target as written. */
static int sign_raw(const struct raw_req *r, const struct sigv4_credentials *c, const struct sigv4_params *p,
                    struct sigv4_result *out)
{
    char url[8192];
    snprintf(url, sizeof url, "https://example.amazonaws.com%s", r->target);
    struct sigv4_request req = {
        .method = r->method,
        .url = url,
        .headers = r->h,
        .nheaders = r->nh,
        .body = r->body_len ? r->body : NULL,
        .body_len = r->body_len,
    };
    return sigv4_sign(&req, c, p, out);
}

/* ---- classic suite ------------------------------------------------------ */

struct tally {
    int run, passed;
};

static void classic_case(const char *dir, const char *name, struct tally *t)
{
    char path[1024];
    struct raw_req r;
    PATHF(path, "%s/%s.req", dir, name);
    t->run++;
    if (raw_req_parse(path, &r) != 0) {
        fprintf(stderr, "[%s] cannot parse %s\n", name, path);
        raw_req_free(&r);
        return;
    }
    char *token = NULL;
    struct sigv4_credentials c = {"AKIDEXAMPLE", SUITE_SECRET, NULL};
    struct sigv4_params p = {.region = "us-east-1", .service = "service", .now_unix = SUITE_TIME};
    /* SOURCE.md: the post-sts-header-* cases take their token from readme-adjacent
     * text; "before" signs it, "after" adds it after signing. */
    if (strncmp(name, "post-sts-header-", 16) == 0) {
        PATHF(path, "%s/../readme.txt", dir);
        char *readme = read_file(path, NULL);
        assert_non_null(readme);
        const char *tok = strstr(readme, "X-Amz-Security-Token:\n\n");
        assert_non_null(tok);
        tok += strlen("X-Amz-Security-Token:\n\n");
        token = dupn(tok, strcspn(tok, "\r\n"));
        free(readme);
        c.session_token = token;
        p.omit_session_token_from_signature = strcmp(name, "post-sts-header-after") == 0;
    } else if (strcmp(name, "get-vanilla-with-session-token") == 0) {
        c.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    }
    struct sigv4_result res;
    int rc = sign_raw(&r, &c, &p, &res);
    bool ok = rc == 0;
    if (!ok)
        fprintf(stderr, "[%s] sigv4_sign failed: %s\n", name, ss_strerror(rc));
    static const char *const ext[] = {"creq", "sts", "authz"};
    for (size_t i = 0; ok && i < 3; i++) {
        PATHF(path, "%s/%s.%s", dir, name, ext[i]);
        char *want = read_file(path, NULL);
        assert_non_null(want);
        const char *got = i == 0 ? res.canonical_request : i == 1 ? res.string_to_sign : res.authorization;
        ok = same(ext[i], name, want, got);
        free(want);
    }
    /* The signed request must show the same Authorization. One explicit exception:
     * botocore's get-vanilla-with-session-token.sreq carries get-vanilla's signature
     * (5fa00fa3...), an upstream copy-paste; its .creq/.sts/.authz agree with each
     * other and with us, so only this cross-check is skipped for it. */
    if (ok && strcmp(name, "get-vanilla-with-session-token") != 0) {
        PATHF(path, "%s/%s.sreq", dir, name);
        char *sreq = read_file(path, NULL);
        assert_non_null(sreq);
        ok = strstr(sreq, res.authorization) != NULL;
        if (!ok)
            fprintf(stderr, "[%s] Authorization not in .sreq\n", name);
        free(sreq);
    }
    t->passed += ok;
    sigv4_result_free(&res);
    free(token);
    raw_req_free(&r);
}

/* Every directory holding <dirname>.req is a case (normalize-path/ and post-sts-token/
 * nest one level deeper). */
static void classic_walk(const char *dir, int depth, struct tally *t)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[128];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 128)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        char sub[1024], req[1200];
        PATHF(sub, "%s/%s", dir, names[i]);
        PATHF(req, "%s/%s.req", sub, names[i]);
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (file_exists(req))
                classic_case(sub, names[i], t);
            else if (depth < 2)
                classic_walk(sub, depth + 1, t);
        }
        free(names[i]);
    }
}

static void test_classic_suite(void **state)
{
    (void)state;
    struct tally t = {0, 0};
    classic_walk(CORPUS "/aws-sig-v4-test-suite", 0, &t);
    printf("sigv4: classic aws-sig-v4-test-suite: %d/%d cases passed (creq, sts, authz)\n", t.passed, t.run);
    assert_int_equal(t.run, 34); /* SOURCE.md: 34 cases */
    assert_int_equal(t.passed, t.run);
}

/* ---- aws-c-auth suite --------------------------------------------------- */

static bool json_flag(json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

/* "Name:value" line present in a signed request (name case-insensitive). */
static bool sreq_has(const char *sreq, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (const char *p = sreq; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t ll = strcspn(p, "\n");
        if (ll == nl + 1 + vl && strncasecmp(p, name, nl) == 0 && p[nl] == ':' &&
            memcmp(p + nl + 1, value, vl) == 0)
            return true;
    }
    return false;
}

static void crt_case(const char *dir, const char *name, struct tally *t)
{
    char path[1024];
    t->run++;
    PATHF(path, "%s/context.json", dir);
    json_error_t jerr;
    json_t *ctx = json_load_file(path, 0, &jerr);
    assert_non_null(ctx);
    json_t *cj = json_object_get(ctx, "credentials");
    struct sigv4_credentials c = {
        json_string_value(json_object_get(cj, "access_key_id")),
        json_string_value(json_object_get(cj, "secret_access_key")),
        json_string_value(json_object_get(cj, "token")),
    };
    struct tm tm = {0};
    const char *ts = json_string_value(json_object_get(ctx, "timestamp"));
    assert_non_null(ts);
    assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm));
    struct sigv4_params p = {
        .region = json_string_value(json_object_get(ctx, "region")),
        .service = json_string_value(json_object_get(ctx, "service")),
        .now_unix = (int64_t)timegm(&tm),
        /* sign_body: add X-Amz-Content-Sha256 and sign it */
        .add_content_sha256_header = json_flag(ctx, "sign_body"),
        .skip_path_normalization = !json_flag(ctx, "normalize"),
        .omit_session_token_from_signature = json_flag(ctx, "omit_session_token"),
    };
    struct raw_req r;
    PATHF(path, "%s/request.txt", dir);
    assert_int_equal(raw_req_parse(path, &r), 0);
    struct sigv4_result res;
    int rc = sign_raw(&r, &c, &p, &res);
    bool ok = rc == 0;
    if (!ok)
        fprintf(stderr, "[%s] sigv4_sign failed: %s\n", name, ss_strerror(rc));
    if (ok) {
        static const char *const files[] = {"header-canonical-request.txt", "header-string-to-sign.txt",
                                            "header-signature.txt"};
        const char *sig = strstr(res.authorization, "Signature=");
        assert_non_null(sig);
        for (size_t i = 0; ok && i < 3; i++) {
            PATHF(path, "%s/%s", dir, files[i]);
            char *want = read_file(path, NULL);
            assert_non_null(want);
            const char *got = i == 0   ? res.canonical_request
                              : i == 1 ? res.string_to_sign
                                       : sig + strlen("Signature=");
            ok = same(files[i], name, want, got);
            free(want);
        }
    }
    if (ok) { /* every header we return appears in the expected signed request */
        PATHF(path, "%s/header-signed-request.txt", dir);
        char *sreq = read_file(path, NULL);
        assert_non_null(sreq);
        ok =
            sreq_has(sreq, "Authorization", res.authorization) &&
            sreq_has(sreq, "X-Amz-Date", res.x_amz_date) &&
            (!res.x_amz_security_token || sreq_has(sreq, "X-Amz-Security-Token", res.x_amz_security_token)) &&
            (!res.x_amz_content_sha256 || sreq_has(sreq, "X-Amz-Content-Sha256", res.x_amz_content_sha256)) &&
            res.host == NULL; /* every request.txt has Host */
        if (!ok)
            fprintf(stderr, "[%s] added headers do not match header-signed-request.txt\n", name);
        free(sreq);
    }
    t->passed += ok;
    sigv4_result_free(&res);
    raw_req_free(&r);
    json_decref(ctx);
}

static void test_crt_suite(void **state)
{
    (void)state;
    const char *root = CORPUS "/aws-signing-test-suite/v4";
    struct tally t = {0, 0};
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[1024], ctx[1100];
        PATHF(dir, "%s/%s", root, e->d_name);
        PATHF(ctx, "%s/context.json", dir);
        if (file_exists(ctx))
            crt_case(dir, e->d_name, &t);
    }
    closedir(d);
    printf("sigv4: aws-signing-test-suite/v4 header signing: %d/%d cases passed "
           "(query-signing variants not applicable)\n",
           t.passed, t.run);
    assert_int_equal(t.run, 38); /* SOURCE.md: 38 cases */
    assert_int_equal(t.passed, t.run);
}

/* ---- smithy-rs extras --------------------------------------------------- */

static void test_smithy_extras(void **state)
{
    (void)state;
    struct sigv4_credentials c = {"AKIDEXAMPLE", SUITE_SECRET, NULL};
    int passed = 0;

    /* double-url-encode: a full case (lambda, us-east-2, 20210511T154045Z). */
    struct raw_req r;
    assert_int_equal(raw_req_parse(CORPUS "/smithy-rs-extra/double-url-encode/request.txt", &r), 0);
    struct sigv4_params p = {.region = "us-east-2", .service = "lambda", .now_unix = SMITHY_TIME};
    struct sigv4_result res;
    assert_int_equal(sign_raw(&r, &c, &p, &res), 0);
    char *creq = read_file(CORPUS "/smithy-rs-extra/double-url-encode/header-canonical-request.txt", NULL);
    char *sts = read_file(CORPUS "/smithy-rs-extra/double-url-encode/header-string-to-sign.txt", NULL);
    char *sreq = read_file(CORPUS "/smithy-rs-extra/double-url-encode/header-signed-request.txt", NULL);
    assert_non_null(creq);
    assert_non_null(sts);
    assert_non_null(sreq);
    chop_newline(sts); /* SOURCE.md: this file alone ends in a newline */
    assert_true(same("canonical request", "double-url-encode", creq, res.canonical_request));
    assert_true(same("string to sign", "double-url-encode", sts, res.string_to_sign));
    assert_non_null(strstr(sreq, res.authorization));
    passed++;
    free(creq);
    free(sts);
    free(sreq);
    sigv4_result_free(&res);
    raw_req_free(&r);

    /* double-encode-path: canonical request only (its signature uses other keys). */
    assert_int_equal(raw_req_parse(CORPUS "/smithy-rs-extra/double-encode-path/request.txt", &r), 0);
    p = (struct sigv4_params){.region = "us-east-1", .service = "service", .now_unix = SMITHY_TIME};
    assert_int_equal(sign_raw(&r, &c, &p, &res), 0);
    creq = read_file(CORPUS "/smithy-rs-extra/double-encode-path/header-canonical-request.txt", NULL);
    assert_non_null(creq);
    assert_true(same("canonical request", "double-encode-path", creq, res.canonical_request));
    passed++;
    free(creq);
    sigv4_result_free(&res);
    raw_req_free(&r);

    /* Skipped on purpose: get-space-normalized/request.smithy-rs-variant.txt. It writes
     * the path pre-encoded ("/example%20space/") yet expects "/example%20space/", i.e.
     * smithy-rs's harness decodes the path first. We sign the URL as it goes on the
     * wire, where a pre-encoded path is encoded again ("%2520", as botocore and the
     * double-url-encode case above do), so that variant does not apply. */
    printf("sigv4: smithy-rs extras: %d/2 cases passed (1 documented skip)\n", passed);
}

/* ---- rules the suites leave open ----------------------------------------- */

static const struct sigv4_credentials test_creds = {"AKIDEXAMPLE", SUITE_SECRET, NULL};

static int sign_simple(const char *method, const char *url, const struct sigv4_header *h, size_t nh,
                       const struct sigv4_params *p, struct sigv4_result *res)
{
    struct sigv4_request req = {.method = method, .url = url, .headers = h, .nheaders = nh};
    return sigv4_sign(&req, &test_creds, p, res);
}

/* Line `n` (0-based) of a canonical request, copied into buf. */
static const char *creq_line(const char *creq, int n, char *buf, size_t cap)
{
    const char *p = creq;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    assert_non_null(p);
    size_t len = strcspn(p, "\n");
    assert_true(len < cap);
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

static void test_host_from_url(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
    } cases[] = {
        {"https://User:pw@EXAMPLE.com:443/x", "example.com"},
        {"http://example.com:80", "example.com"},
        {"HTTPS://example.com:080/", "example.com:80"},
        {"http://127.0.0.1:9090/api/v1/write", "127.0.0.1:9090"},
        {"https://[::1]:9443/api/v1/remote_write", "[::1]:9443"},
        {"https://[::1]/x", "[::1]"},
        {"https://h:/x", "h"},
        {"unix+x://sock.local:1/", "sock.local:1"},
    };
    struct sigv4_params p = {.region = "us-west-2", .service = "aps", .now_unix = SUITE_TIME};
    char line[256], want[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sigv4_result res;
        assert_int_equal(sign_simple("POST", cases[i].url, NULL, 0, &p, &res), 0);
        assert_string_equal(res.host, cases[i].host);
        snprintf(want, sizeof want, "host:%s", cases[i].host);
        assert_string_equal(creq_line(res.canonical_request, 3, line, sizeof line), want);
        sigv4_result_free(&res);
    }
    /* A Host header from the caller wins and nothing is returned for it. */
    struct sigv4_header h[] = {{"HOST", "  Other.Example:8443 "}};
    struct sigv4_result res;
    assert_int_equal(sign_simple("GET", "https://example.com/", h, 1, &p, &res), 0);
    assert_null(res.host);
    assert_string_equal(creq_line(res.canonical_request, 3, line, sizeof line), "host:Other.Example:8443");
    sigv4_result_free(&res);
}

static void test_query_rules(void **state)
{
    (void)state;
    static const struct {
        const char *url, *query;
    } cases[] = {
        /* empty pieces dropped, key without '=' gets "=", '+' literal, bad escape kept
         * literal, lowercase escapes normalised, sorted by key then value */
        {"https://h/?b=2&a&&a=1&c=%2f%2F&d=a+b&e=%zz&=x#frag", "=x&a=&a=1&b=2&c=%2F%2F&d=a%2Bb&e=%25zz"},
        {"https://h/?", ""},
        {"https://h/?&&", ""},
        {"https://h/?k=v=w&k=", "k=&k=v%3Dw"},
        {"https://h/?\xe1\x88\xb4=%E1%88%B4&Z=1&a=1", "%E1%88%B4=%E1%88%B4&Z=1&a=1"},
        {"https://h/?x=a b&x=a%20a", "x=a%20a&x=a%20b"},
        {"https://h/?-._~=-._~", "-._~=-._~"},
    };
    struct sigv4_params p = {.region = "us-east-1", .service = "aps", .now_unix = SUITE_TIME};
    char line[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sigv4_result res;
        assert_int_equal(sign_simple("GET", cases[i].url, NULL, 0, &p, &res), 0);
        assert_string_equal(creq_line(res.canonical_request, 2, line, sizeof line), cases[i].query);
        sigv4_result_free(&res);
    }
}

static void test_path_rules(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        bool s3;
        const char *path;
    } cases[] = {
        {"https://h", false, "/"},
        {"https://h?x=1", false, "/"},
        {"https://h/.", false, "/"},
        {"https://h/a/.", false, "/a"},
        {"https://h/a/b/../", false, "/a/"},
        {"https://h/../../a", false, "/a"},
        {"https://h/a%3Ab/./c//../d/", false, "/a%253Ab/d/"},
        {"https://h/a b/%zz/\xc3\xa9", false, "/a%20b/%25zz/%C3%A9"},
        {"https://h/workspaces/ws-1/api/v1/remote_write", false, "/workspaces/ws-1/api/v1/remote_write"},
        /* S3: no normalisation, existing escapes kept, the rest encoded once */
        {"https://h", true, "/"},
        {"https://h/a%3ab/./c d//%zz", true, "/a%3ab/./c%20d//%25zz"},
    };
    char line[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sigv4_params p = {.region = "us-east-1",
                                 .service = "s3",
                                 .now_unix = SUITE_TIME,
                                 .skip_path_normalization = cases[i].s3,
                                 .single_encode_path = cases[i].s3};
        struct sigv4_result res;
        assert_int_equal(sign_simple("GET", cases[i].url, NULL, 0, &p, &res), 0);
        assert_string_equal(creq_line(res.canonical_request, 1, line, sizeof line), cases[i].path);
        sigv4_result_free(&res);
    }
}

static void test_header_rules(void **state)
{
    (void)state;
    struct sigv4_header h[] = {
        {"X-Multi", "  a \t b\r\n   c  "},  {"Authorization", "stale"},
        {"User-Agent", "scrapeship"},       {"x-multi", ""},
        {"X-Amz-Date", "19990101T000000Z"}, {"X-Amz-Security-Token", "stale-token"},
        {"Content-Encoding", "snappy"},     {"X-MULTI", "\"q   q\""},
        {"Expect", "100-continue"},         {"X-Amzn-Trace-Id", "Root=1"},
    };
    struct sigv4_credentials c = {"AKIDEXAMPLE", SUITE_SECRET, "tok+/="};
    struct sigv4_params p = {
        .region = "us-east-1", .service = "aps", .now_unix = SUITE_TIME, .add_content_sha256_header = true};
    struct sigv4_request req = {.method = "POST",
                                .url = "https://aps.example/api/v1/remote_write",
                                .headers = h,
                                .nheaders = 10,
                                .body = "abc",
                                .body_len = 3};
    struct sigv4_result res;
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), 0);
    const char *want =
        "POST\n/api/v1/remote_write\n\n"
        "content-encoding:snappy\n"
        "host:aps.example\n"
        "x-amz-content-sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:tok+/=\n"
        "x-multi:a b c,,\"q q\"\n\n"
        "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-multi\n"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_string_equal(res.canonical_request, want);
    assert_string_equal(res.x_amz_security_token, "tok+/=");
    assert_string_equal(res.x_amz_date, "20150830T123600Z");
    assert_string_equal(res.x_amz_content_sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(res.host, "aps.example");
    sigv4_result_free(&res);

    /* Token sent but not signed. */
    p.omit_session_token_from_signature = true;
    p.add_content_sha256_header = false;
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), 0);
    assert_null(strstr(res.canonical_request, "tok+/="));
    assert_null(strstr(res.canonical_request, "stale-token"));
    assert_null(res.x_amz_content_sha256);
    assert_string_equal(res.x_amz_security_token, "tok+/=");
    sigv4_result_free(&res);

    /* Without a token in the credentials, a caller's X-Amz-Security-Token is an
     * ordinary header and is signed. */
    c.session_token = NULL;
    p.omit_session_token_from_signature = false;
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), 0);
    assert_non_null(strstr(res.canonical_request, "x-amz-security-token:stale-token\n"));
    assert_null(res.x_amz_security_token);
    sigv4_result_free(&res);
}

static void test_payload_hash(void **state)
{
    (void)state;
    char hex[65];
    assert_int_equal(sigv4_payload_hash(NULL, 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(sigv4_payload_hash(NULL, 1, hex), SS_EINVAL);

    /* Hash once, sign many times: same result as hashing the body each time. */
    static const char body[] = "\xff\x06\x00\x00sNaPpY compressed";
    assert_int_equal(sigv4_payload_hash(body, sizeof body - 1, hex), 0);
    struct sigv4_params p = {.region = "eu-west-1", .service = "aps", .now_unix = 1700000000};
    struct sigv4_request a = {
        .method = "POST", .url = "https://h/w", .body = body, .body_len = sizeof body - 1};
    struct sigv4_request b = {.method = "POST", .url = "https://h/w", .payload_sha256_hex = hex};
    struct sigv4_result ra, rb;
    assert_int_equal(sigv4_sign(&a, &test_creds, &p, &ra), 0);
    assert_int_equal(sigv4_sign(&b, &test_creds, &p, &rb), 0);
    assert_string_equal(ra.authorization, rb.authorization);
    sigv4_result_free(&ra);
    sigv4_result_free(&rb);

    b.payload_sha256_hex = "UNSIGNED-PAYLOAD";
    assert_int_equal(sigv4_sign(&b, &test_creds, &p, &rb), 0);
    size_t n = strlen(rb.canonical_request);
    assert_true(n > 16);
    assert_string_equal(rb.canonical_request + n - 16, "UNSIGNED-PAYLOAD");
    sigv4_result_free(&rb);
}

static void test_key_cache(void **state)
{
    (void)state;
    struct sigv4_key_cache kc;
    memset(&kc, 0, sizeof kc);
    struct sigv4_credentials c2 = {"AKIDOTHER", "another/secret", "t"};
    const struct sigv4_credentials *creds[] = {&test_creds, &test_creds, &c2, &c2, &test_creds};
    const int64_t times[] = {SUITE_TIME, SUITE_TIME + 3600, SUITE_TIME + 7200, SUITE_TIME + 86400,
                             SUITE_TIME + 86400};
    const char *regions[] = {"us-east-1", "us-east-1", "us-east-1", "us-east-1", "eu-west-1"};
    struct sigv4_request req = {.method = "POST", .url = "https://h/api/v1/remote_write"};
    for (size_t i = 0; i < 5; i++) {
        struct sigv4_params p = {.region = regions[i], .service = "aps", .now_unix = times[i]};
        struct sigv4_result plain, cached;
        assert_int_equal(sigv4_sign(&req, creds[i], &p, &plain), 0);
        p.key_cache = &kc;
        assert_int_equal(sigv4_sign(&req, creds[i], &p, &cached), 0);
        assert_string_equal(plain.authorization, cached.authorization);
        assert_true(kc.valid);
        assert_string_equal(kc.region, regions[i]);
        sigv4_result_free(&plain);
        sigv4_result_free(&cached);
    }
    sigv4_key_cache_clear(&kc);
    assert_false(kc.valid);
    sigv4_key_cache_clear(NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct sigv4_params p = {.region = "us-east-1", .service = "aps", .now_unix = SUITE_TIME};
    struct sigv4_result res;
    memset(&res, 0x5a, sizeof res);
    assert_int_equal(sigv4_sign(NULL, &test_creds, &p, &res), SS_EINVAL);
    for (size_t i = 0; i < sizeof res; i++) /* left zeroed */
        assert_int_equal(((unsigned char *)&res)[i], 0);
    assert_int_equal(sigv4_sign(NULL, NULL, NULL, NULL), SS_EINVAL);

    static const char *const bad_urls[] = {"",
                                           "example.com/x",
                                           "://h/",
                                           "1http://h/",
                                           "https://",
                                           "https:///x",
                                           "https://h:99999/",
                                           "https://h:8a/",
                                           "https://[::1/",
                                           "https://[::1]x/",
                                           "https://h/a\nb",
                                           "https://h /",
                                           "https://h/\x7f"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++)
        assert_int_equal(sign_simple("GET", bad_urls[i], NULL, 0, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("GET", NULL, NULL, 0, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("G T", "https://h/", NULL, 0, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("", "https://h/", NULL, 0, &p, &res), SS_EINVAL);

    struct sigv4_header bad_name[] = {{"Bad Name", "v"}};
    struct sigv4_header empty_name[] = {{"", "v"}};
    struct sigv4_header null_value[] = {{"x", NULL}};
    assert_int_equal(sign_simple("GET", "https://h/", bad_name, 1, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("GET", "https://h/", empty_name, 1, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("GET", "https://h/", null_value, 1, &p, &res), SS_EINVAL);
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 1, &p, &res), SS_EINVAL);

    struct sigv4_params q = p;
    q.region = "us/east";
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 0, &q, &res), SS_EINVAL);
    q.region = NULL;
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 0, &q, &res), SS_EINVAL);
    q = p;
    q.service = "";
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 0, &q, &res), SS_EINVAL);
    q = p;
    q.now_unix = -1;
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 0, &q, &res), SS_EINVAL);
    q.now_unix = INT64_C(253402300800); /* year 10000 */
    assert_int_equal(sign_simple("GET", "https://h/", NULL, 0, &q, &res), SS_EINVAL);

    struct sigv4_request req = {.method = "GET", .url = "https://h/"};
    struct sigv4_credentials c = {"AKID", "s", "line\nbreak"};
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), SS_EINVAL);
    c = (struct sigv4_credentials){"AK/ID", "s", NULL};
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), SS_EINVAL);
    c = (struct sigv4_credentials){"AKID", "", NULL};
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), SS_EINVAL);
    c = (struct sigv4_credentials){NULL, "s", NULL};
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), SS_EINVAL);
    req.body_len = 1;
    assert_int_equal(sigv4_sign(&req, &test_creds, &p, &res), SS_EINVAL);
    req.body_len = 0;
    req.payload_sha256_hex = "has space";
    assert_int_equal(sigv4_sign(&req, &test_creds, &p, &res), SS_EINVAL);

    /* Limits: counted as SS_ELIMIT, not a crash. */
    size_t big = SIGV4_MAX_URL + 16;
    char *url = malloc(big + 1);
    assert_non_null(url);
    memcpy(url, "https://h/", 10);
    memset(url + 10, 'a', big - 10);
    url[big] = '\0';
    assert_int_equal(sign_simple("GET", url, NULL, 0, &p, &res), SS_ELIMIT);
    free(url);
    struct sigv4_header *many = calloc(SIGV4_MAX_HEADERS + 1, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i <= SIGV4_MAX_HEADERS; i++)
        many[i] = (struct sigv4_header){"x-a", "b"};
    assert_int_equal(sign_simple("GET", "https://h/", many, SIGV4_MAX_HEADERS + 1, &p, &res), SS_ELIMIT);
    assert_int_equal(sign_simple("GET", "https://h/", many, SIGV4_MAX_HEADERS, &p, &res), 0);
    sigv4_result_free(&res);
    free(many);
    char *secret = malloc(SIGV4_MAX_SECRET + 2);
    assert_non_null(secret);
    memset(secret, 'k', SIGV4_MAX_SECRET + 1);
    secret[SIGV4_MAX_SECRET + 1] = '\0';
    c = (struct sigv4_credentials){"AKID", secret, NULL};
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), SS_ELIMIT);
    secret[SIGV4_MAX_SECRET] = '\0'; /* exactly at the limit is fine */
    req.payload_sha256_hex = NULL;
    assert_int_equal(sigv4_sign(&req, &c, &p, &res), 0);
    sigv4_result_free(&res);
    free(secret);

    sigv4_result_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_suite), cmocka_unit_test(test_crt_suite),
        cmocka_unit_test(test_smithy_extras), cmocka_unit_test(test_host_from_url),
        cmocka_unit_test(test_query_rules),   cmocka_unit_test(test_path_rules),
        cmocka_unit_test(test_header_rules),  cmocka_unit_test(test_payload_hash),
        cmocka_unit_test(test_key_cache),     cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
