/* test_httpclient.c: the HTTP client floor (httpclient/) against libmicrohttpd servers
 * on 127.0.0.1, one plain and one TLS (a self-signed certificate made here, TLS 1.2
 * only).
 *
 * Covers: basic auth as the header Go's SetBasicAuth makes, password_file winning
 * and trimmed; bearer credentials from a file re-read on every request (rotation),
 * a custom authorization type, unreadable, empty and header-forging files refused
 * before any request; extra header lines (and the empty value); redirects on and off;
 * the proxy (used when set, the *_proxy environment ignored otherwise); TLS verified
 * by default, the CA as a file or PEM bytes, insecure_skip_verify, min_version
 * TLS13 refused by a TLS 1.2 server and TLS12 accepted, an unknown min_version; and
 * owned copies of a config. */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "httpclient.h"

/* ---- the servers ----------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    int requests;
    char url[512];           /* as the request line had it */
    char authorization[512]; /* "" when absent */
    char x_a[64], x_empty[64];
    bool has_x_empty;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)cls, (void)kind;
    if (strcasecmp(key, "Authorization") == 0)
        snprintf(seen.authorization, sizeof seen.authorization, "%s", value ? value : "");
    else if (strcasecmp(key, "X-A") == 0)
        snprintf(seen.x_a, sizeof seen.x_a, "%s", value ? value : "");
    else if (strcasecmp(key, "X-Empty") == 0) {
        seen.has_x_empty = true;
        snprintf(seen.x_empty, sizeof seen.x_empty, "%s", value ? value : "");
    }
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ptr)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)ptr;
    pthread_mutex_lock(&seen.mu);
    seen.requests++;
    snprintf(seen.url, sizeof seen.url, "%s", url);
    seen.authorization[0] = seen.x_a[0] = seen.x_empty[0] = '\0';
    seen.has_x_empty = false;
    MHD_get_connection_values(c, MHD_HEADER_KIND, copy_header, NULL);
    pthread_mutex_unlock(&seen.mu);
    const char *body = strstr(url, "/redirect") ? "moved" : strstr(url, "/target") ? "target" : "ok";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    unsigned status = MHD_HTTP_OK;
    char next[32];
    int hops;
    if (strstr(url, "/redirect")) {
        MHD_add_response_header(r, "Location", "/target");
        status = MHD_HTTP_FOUND;
    } else if (sscanf(url, "/chain%d", &hops) == 1 && hops > 0) { /* /chainN: N redirects to go */
        snprintf(next, sizeof next, "/chain%d", hops - 1);
        MHD_add_response_header(r, "Location", next);
        status = MHD_HTTP_FOUND;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *start_server(unsigned flags, const struct MHD_OptionItem *opts, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | flags, 0, NULL, NULL, handler, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (d)
        *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

static struct MHD_Daemon *plain;
static int plain_port;
static char tmp[64];

/* ---- helpers ------------------------------------------------------------------------ */

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    struct ss_buf *b = ud;
    ss_buf_append(b, p, size * n);
    return size * n;
}

/* One GET of url under cfg. Returns httpc_setup's error, or 0 with the CURLcode in
 * *res, the status and body. */
static int get(const struct httpc_config *cfg, const char *url, CURLcode *res, long *status, char *body,
               size_t cap)
{
    CURL *e = curl_easy_init();
    assert_non_null(e);
    struct curl_slist *hl = NULL;
    char err[256] = "";
    int rc = httpc_setup(e, cfg, &hl, err, sizeof err);
    if (rc) {
        assert_true(err[0] != '\0');
        assert_null(hl); /* nothing appended on error */
        curl_easy_cleanup(e);
        return rc;
    }
    struct ss_buf b;
    ss_buf_init(&b, 4096);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    *res = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    snprintf(body, cap, "%s", b.data ? b.data : "");
    ss_buf_free(&b);
    httpc_headers_free(hl);
    curl_easy_cleanup(e);
    return 0;
}

static void get_ok(const struct httpc_config *cfg, const char *path, const char *want_body)
{
    char url[256], body[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", plain_port, path);
    CURLcode res;
    long status;
    assert_int_equal(get(cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    assert_int_equal(status, 200);
    assert_string_equal(body, want_body);
}

static const char *write_tmp(const char *name, const char *text)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmp, name);
    FILE *f = fopen(p[i], "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p[i];
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/ss-test-httpc-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    plain = start_server(0, none, &plain_port);
    return plain ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(plain);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- auth ----------------------------------------------------------------------------- */

static void test_basic_auth(void **state)
{
    (void)state;
    struct httpc_config cfg = {.basic_auth_username = "alice", .basic_auth_password = "s3cret"};
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Basic YWxpY2U6czNjcmV0"); /* alice:s3cret */

    /* password_file wins, read with the surrounding whitespace trimmed */
    cfg.basic_auth_password_file = write_tmp("pw", "  from-file \n");
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Basic YWxpY2U6ZnJvbS1maWxl"); /* alice:from-file */

    /* an empty password file is an empty password; username "" is still basic auth */
    cfg = (struct httpc_config){.basic_auth_username = "", .basic_auth_password_file = write_tmp("pw", "")};
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Basic Og=="); /* ":" */

    /* no credentials: no header */
    cfg = (struct httpc_config){0};
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "");
}

/* The credentials file is read for every request: a rotated token is used at once. */
static void test_bearer_file_reread(void **state)
{
    (void)state;
    const char *tok = write_tmp("token", "tok-1\n");
    struct httpc_config cfg = {.authorization_credentials_file = tok,
                               .authorization_credentials = "inline-loses"};
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Bearer tok-1");
    write_tmp("token", "tok-2");
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Bearer tok-2");

    cfg = (struct httpc_config){.authorization_type = "Token", .authorization_credentials = "abc"};
    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.authorization, "Token abc");

    /* refused before any request: unreadable, empty, forging a header line */
    char url[128], body[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", plain_port);
    CURLcode res;
    long status;
    int before = seen.requests;
    cfg = (struct httpc_config){.authorization_credentials_file = "/nonexistent/token"};
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_EAUTH);
    cfg.authorization_credentials_file = write_tmp("empty", "\n");
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_EAUTH);
    cfg.authorization_credentials_file = write_tmp("evil", "tok\r\nX-Evil: 1\n");
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_EAUTH);
    cfg = (struct httpc_config){.basic_auth_username = "u", .basic_auth_password_file = "/nonexistent/pw"};
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_EAUTH);
    assert_int_equal(seen.requests, before);

    /* the messages name the file and never the secret */
    struct curl_slist *hl = NULL;
    char err[256];
    cfg = (struct httpc_config){.authorization_credentials_file = "/nonexistent/token"};
    assert_int_equal(httpc_headers(&cfg, &hl, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "unable to read authorization credentials file /nonexistent/token"));
    cfg.authorization_credentials_file = write_tmp("evil", "sekrit\nX: 1");
    assert_int_equal(httpc_headers(&cfg, &hl, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "control characters"));
    assert_null(strstr(err, "sekrit"));
    cfg = (struct httpc_config){.basic_auth_username = "u", .authorization_credentials = "t"};
    assert_int_equal(httpc_headers(&cfg, &hl, err, sizeof err), SS_ECONFIG);
    assert_null(hl);
}

/* Extra lines come before Authorization, after the caller's; an empty value is sent
 * as such; a bad name or a line break is refused and leaves the list as it was. */
static void test_extra_headers(void **state)
{
    (void)state;
    struct httpc_header h[] = {{"X-A", "1"}, {"X-Empty", ""}};
    struct httpc_config cfg = {.headers = h, .nheaders = 2, .authorization_credentials = "t"};
    struct curl_slist *hl = NULL;
    char err[256];
    assert_int_equal(httpc_add_header(&hl, "Accept: x"), 0);
    assert_int_equal(httpc_headers(&cfg, &hl, err, sizeof err), 0);
    const char *want[] = {"Accept: x", "X-A: 1", "X-Empty;", "Authorization: Bearer t"};
    size_t n = 0;
    for (struct curl_slist *p = hl; p; p = p->next, n++) {
        assert_true(n < 4);
        assert_string_equal(p->data, want[n]);
    }
    assert_int_equal(n, 4);
    httpc_headers_free(hl);
    httpc_headers_free(NULL);

    get_ok(&cfg, "/", "ok");
    assert_string_equal(seen.x_a, "1");
    assert_true(seen.has_x_empty);
    assert_string_equal(seen.x_empty, "");

    struct httpc_header bad[][1] = {
        {{"Bad Name", "v"}}, {{"X-B", "v\r\nX-Evil: 1"}}, {{"", "v"}}, {{"X:Y", "v"}}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hl = NULL;
        httpc_add_header(&hl, "Accept: x");
        cfg = (struct httpc_config){.headers = bad[i], .nheaders = 1};
        assert_int_equal(httpc_headers(&cfg, &hl, err, sizeof err), SS_EINVAL);
        assert_null(hl->next); /* unchanged */
        httpc_headers_free(hl);
    }
}

/* ---- redirects and proxy ---------------------------------------------------------------- */

static void test_redirects(void **state)
{
    (void)state;
    struct httpc_config cfg = {.follow_redirects = true};
    get_ok(&cfg, "/redirect", "target");
    assert_string_equal(seen.url, "/target");

    cfg.follow_redirects = false;
    char url[128], body[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/redirect", plain_port);
    CURLcode res;
    long status;
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    assert_int_equal(status, 302);
    assert_string_equal(body, "moved");
    assert_string_equal(seen.url, "/redirect");

    /* Go's client, which Prometheus keeps, makes at most 10 requests: 9 redirects are
     * followed, the 10th is an error */
    cfg.follow_redirects = true;
    get_ok(&cfg, "/chain9", "ok");
    assert_string_equal(seen.url, "/chain0");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/chain10", plain_port);
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_TOO_MANY_REDIRECTS);
}

/* With proxy_url the request goes to the proxy in absolute form; without it the
 * *_proxy environment is ignored and the request goes straight to the server. */
static void test_proxy(void **state)
{
    (void)state;
    char proxy[64], url[128], body[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", plain_port);
    struct httpc_config cfg = {.proxy_url = proxy};
    CURLcode res;
    long status;
    assert_int_equal(get(&cfg, "http://target.invalid/via-proxy", &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    assert_int_equal(status, 200);
    assert_non_null(strstr(seen.url, "target.invalid/via-proxy"));

    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    cfg.proxy_url = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/direct", plain_port);
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
    assert_int_equal(res, CURLE_OK);
    assert_string_equal(seen.url, "/direct");
}

/* ---- TLS -------------------------------------------------------------------------------- */

static char *cert_pem, *key_pem;

/* A memory BIO's bytes as a C string (they are not NUL-terminated). */
static char *bio_string(BIO *b)
{
    char *p;
    long len = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)len);
    s[len] = '\0';
    return s;
}

/* A self-signed P-256 certificate for IP 127.0.0.1, valid for an hour. */
static void make_cert(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pk);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"scrapeship test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "IP:127.0.0.1"}, {"basicConstraints", "critical,CA:TRUE"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL);
    cert_pem = bio_string(cb);
    key_pem = bio_string(kb);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void test_tls(void **state)
{
    (void)state;
    make_cert();
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    int port = 0;
    struct MHD_Daemon *d = start_server(MHD_USE_TLS, opts, &port);
    assert_non_null(d);
    char url[128], body[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
    CURLcode res;
    long status;

    /* verified by default: an unknown CA fails */
    struct httpc_config cfg = {0};
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_PEER_FAILED_VERIFICATION);

    /* the CA as PEM bytes, then as a file */
    cfg.tls_ca_pem = cert_pem;
    cfg.tls_ca_pem_len = strlen(cert_pem);
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    assert_string_equal(body, "ok");
    cfg = (struct httpc_config){.tls_ca_file = write_tmp("ca.pem", cert_pem)};
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);

    /* min_version: a TLS 1.2-only server refuses a TLS13 minimum, takes TLS12 */
    cfg.tls_min_version = "TLS13";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_not_equal(res, CURLE_OK);
    cfg.tls_min_version = "TLS12";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    cfg.tls_min_version = "TLS14";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_ECONFIG);
    /* max_version: a TLS11 maximum cannot reach it, TLS12 can */
    cfg.tls_min_version = NULL;
    cfg.tls_max_version = "TLS11";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_not_equal(res, CURLE_OK);
    cfg.tls_max_version = "TLS12";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    cfg.tls_max_version = "TLS15";
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), SS_ECONFIG);

    /* insecure_skip_verify */
    cfg = (struct httpc_config){.tls_insecure_skip_verify = true};
    assert_int_equal(get(&cfg, url, &res, &status, body, sizeof body), 0);
    assert_int_equal(res, CURLE_OK);
    assert_int_equal(status, 200);

    MHD_stop_daemon(d);
    free(cert_pem);
    free(key_pem);
}

/* ---- owned copies ----------------------------------------------------------------------- */

static void test_config_dup(void **state)
{
    (void)state;
    char user[] = "u", ca[] = "A\0B"; /* PEM bytes may hold anything */
    struct httpc_header h[] = {{"X-A", "1"}, {"X-B", NULL}};
    struct httpc_config src = {.basic_auth_username = user,
                               .basic_auth_password = "pw",
                               .tls_ca_pem = ca,
                               .tls_ca_pem_len = 3,
                               .tls_min_version = "TLS12",
                               .tls_insecure_skip_verify = true,
                               .proxy_url = "http://p",
                               .follow_redirects = true,
                               .headers = h,
                               .nheaders = 2};
    struct httpc_config *d = NULL;
    assert_int_equal(httpc_config_dup(&src, &d), 0);
    user[0] = 'x';
    assert_string_equal(d->basic_auth_username, "u");
    assert_string_equal(d->basic_auth_password, "pw");
    assert_null(d->basic_auth_password_file);
    assert_null(d->authorization_credentials);
    assert_int_equal(d->tls_ca_pem_len, 3);
    assert_memory_equal(d->tls_ca_pem, "A\0B", 3);
    assert_null(d->tls_cert_pem);
    assert_int_equal(d->tls_cert_pem_len, 0);
    assert_string_equal(d->tls_min_version, "TLS12");
    assert_true(d->tls_insecure_skip_verify);
    assert_string_equal(d->proxy_url, "http://p");
    assert_true(d->follow_redirects);
    assert_int_equal(d->nheaders, 2);
    assert_string_equal(d->headers[0].name, "X-A");
    assert_string_equal(d->headers[0].value, "1");
    assert_null(d->headers[1].value);
    assert_true((const char *)d->headers != (const char *)h);
    httpc_config_free(d);
    httpc_config_free(NULL);

    struct httpc_config empty = {0};
    assert_int_equal(httpc_config_dup(&empty, &d), 0);
    assert_null(d->headers);
    assert_int_equal(d->nheaders, 0);
    httpc_config_free(d);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_auth),    cmocka_unit_test(test_bearer_file_reread),
        cmocka_unit_test(test_extra_headers), cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_proxy),         cmocka_unit_test(test_tls),
        cmocka_unit_test(test_config_dup),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
