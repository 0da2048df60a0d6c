/* test_web.c: the web endpoint's pieces: the web config loader (config.c, exporter
 * toolkit format), basic auth parsing and bcrypt checks with their cache (webauth.c),
 * and the TLS credentials and GnuTLS priorities (webtls.c).
 *
 * bcrypt hashes are made here with libxcrypt (crypt_gensalt_rn + crypt_rn, cost 4);
 * certificates with the openssl CLI in a temp directory.
 */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "ss.h"
#include "web_int.h"

static char *make_hash(const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt));
    const char *h = crypt_rn(password, salt, &cd, sizeof cd);
    assert_non_null(h);
    return strdup(h);
}

static struct cfg_web *load(const char *yaml, const char *source, char *err, size_t errlen, int *rc)
{
    struct cfg_web *w = NULL;
    *rc = cfg_web_load_string(yaml, strlen(yaml), source, &w, err, errlen);
    if (*rc)
        assert_null(w);
    return w;
}

static void expect_error(const char *yaml, const char *want)
{
    char err[512];
    int rc;
    struct cfg_web *w = load(yaml, "web.yml", err, sizeof err, &rc);
    if (rc == 0) {
        cfg_web_free(w);
        fail_msg("expected error containing '%s', loaded fine:\n%s", want, yaml);
    }
    if (!strstr(err, want))
        fail_msg("expected error containing '%s', got '%s'", want, err);
}

static char *full_config(void)
{
    char *ha = make_hash("alice-pw"), *hb = make_hash("bob-pw");
    char *y = NULL;
    assert_true(asprintf(&y,
                         "tls_server_config:\n"
                         "  cert_file: certs/tls.crt\n"
                         "  key_file: /abs/tls.key\n"
                         "  client_auth_type: RequireAndVerifyClientCert\n"
                         "  client_ca_file: ca.pem\n"
                         "  min_version: TLS13\n"
                         "  max_version: TLS13\n"
                         "  prefer_server_cipher_suites: false\n"
                         "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
                         "  curve_preferences: [X25519, CurveP256]\n"
                         "http_server_config:\n"
                         "  http2: false\n"
                         "  headers:\n"
                         "    X-Frame-Options: deny\n"
                         "    Strict-Transport-Security: max-age=31536000\n"
                         "basic_auth_users:\n"
                         "  zed: '%s'\n"
                         "  alice: '%s'\n",
                         hb, ha) > 0);
    free(ha);
    free(hb);
    return y;
}

static void test_load_full(void **state)
{
    (void)state;
    char err[512];
    int rc;
    char *y = full_config();
    struct cfg_web *w = load(y, "/etc/ss/web.yml", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_true(w->tls);
    assert_string_equal(w->cert_file, "/etc/ss/certs/tls.crt"); /* relative to the file */
    assert_string_equal(w->key_file, "/abs/tls.key");
    assert_string_equal(w->client_ca_file, "/etc/ss/ca.pem");
    assert_int_equal(w->client_auth, CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT);
    assert_int_equal(w->min_version, CFG_WEB_TLS13);
    assert_int_equal(w->max_version, CFG_WEB_TLS13);
    assert_false(w->prefer_server_cipher_suites);
    assert_false(w->http2);
    assert_int_equal(w->ncipher_suites, 2);
    assert_string_equal(w->cipher_suites[0]->kx, "ECDHE-RSA");
    assert_null(w->cipher_suites[1]->kx);
    assert_int_equal(w->ncurves, 2);
    assert_string_equal(w->curves[0], "GROUP-X25519");
    assert_int_equal(w->nheaders, 2);
    assert_int_equal(w->nusers, 2);
    assert_string_equal(w->users[0].name, "alice"); /* sorted */
    assert_non_null(cfg_web_user_hash(w, "zed"));
    assert_null(cfg_web_user_hash(w, "nobody"));

    char prio[512];
    assert_int_equal(web_tls_priority_string(w, prio, sizeof prio), 0);
    assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM:"
                              "-MAC-ALL:+AEAD:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1");
    gnutls_priority_t p;
    assert_int_equal(web_tls_lib_init(), 0);
    assert_true(gnutls_priority_init(&p, prio, NULL) >= 0);
    gnutls_priority_deinit(p);
    cfg_web_free(w);
    free(y);
}

static void test_defaults(void **state)
{
    (void)state;
    char err[512];
    int rc;
    /* empty file: plain HTTP, no auth; relative source: paths stay relative */
    struct cfg_web *w = load("", "web.yml", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_false(w->tls);
    assert_int_equal(w->nusers, 0);
    assert_int_equal(w->min_version, 0x0303);
    assert_int_equal(w->max_version, CFG_WEB_TLS13);
    assert_true(w->prefer_server_cipher_suites);
    assert_true(w->http2);
    char prio[512];
    assert_int_equal(web_tls_priority_string(w, prio, sizeof prio), 0);
    assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:%SERVER_PRECEDENCE");
    cfg_web_free(w);
    w = load("tls_server_config: {cert_file: a.crt, key_file: a.key}\n", "web.yml", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_true(w->tls);
    assert_string_equal(w->cert_file, "a.crt");
    assert_int_equal(w->client_auth, CFG_WEB_NO_CLIENT_CERT);
    cfg_web_free(w);
    /* no ${VAR} expansion in the toolkit's format */
    setenv("SS_WEB_TEST_VAR", "expanded", 1);
    w = load("tls_server_config: {cert_file: '${SS_WEB_TEST_VAR}.crt', key_file: k}\n", "web.yml", err,
             sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(w->cert_file, "${SS_WEB_TEST_VAR}.crt");
    cfg_web_free(w);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("tls_server_config: {cert_file: a, key_file: b, nope: 1}\n",
                 "web.yml:1:48: unknown field \"nope\"");
    expect_error("basic_auth: {}\n", "unknown field \"basic_auth\" at the top level");
    expect_error("tls_server_config: {cert_file: a}\n", "missing key_file");
    expect_error("tls_server_config: {client_auth_type: RequireAndVerifyClientCert}\n", "missing cert_file");
    expect_error("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Maybe}\n",
                 "invalid client_auth_type \"Maybe\"");
    expect_error("tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}\n",
                 "client CA's have been configured without a Client Auth Policy");
    expect_error(
        "tls_server_config: {cert_file: a, key_file: b, client_auth_type: VerifyClientCertIfGiven}\n",
        "needs client_ca_file");
    expect_error("tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}\n",
                 "unknown TLS version");
    expect_error("tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}\n",
                 "min_version is above max_version");
    expect_error(
        "tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]}\n",
        "unknown cipher: TLS_RSA_WITH_RC4_128_SHA");
    expect_error("tls_server_config: {cert_file: a, key_file: b, curve_preferences: [CurveP999]}\n",
                 "unknown curve: CurveP999");
    expect_error("http_server_config: {headers: {X-Powered-By: me}}\n",
                 "HTTP header \"X-Powered-By\" can not be");
    expect_error("http_server_config: {headers: {X-Frame-Options: allow}}\n",
                 "invalid value for X-Frame-Options");
    expect_error("http_server_config: {headers: {X-XSS-Protection: \"1\\nX: y\"}}\n", "line break");
    expect_error("basic_auth_users: {a: '$2b$04$tooshort'}\n", "not a bcrypt hash");
    expect_error("basic_auth_users: {a: }\n", "the password hash is empty");
    expect_error("basic_auth_users: {a: x, a: y}\n", "duplicate key \"a\"");
    /* a wrong hash is a secret: never echoed */
    char err[512];
    int rc;
    struct cfg_web *w =
        load("basic_auth_users: {a: 'hunter2-not-a-hash'}\n", "web.yml", err, sizeof err, &rc);
    assert_int_not_equal(rc, 0);
    assert_null(strstr(err, "hunter2"));
    cfg_web_free(w);
}

/* Every prefix of a full config loads or fails with a message, and frees all it
 * allocated (ASan's leak checker runs this too). */
static void test_every_prefix(void **state)
{
    (void)state;
    char *y = full_config();
    size_t n = strlen(y);
    for (size_t i = 0; i <= n; i++) {
        char err[512];
        struct cfg_web *w = NULL;
        int rc = cfg_web_load_string(y, i, "web.yml", &w, err, sizeof err);
        if (rc)
            assert_true(err[0] != '\0' && w == NULL);
        cfg_web_free(w);
    }
    free(y);
}

static void test_basic_auth_parse(void **state)
{
    (void)state;
    char user[WEB_AUTH_MAX_USER + 1], pass[WEB_AUTH_MAX_PASSWORD + 1];
    assert_int_equal(web_basic_auth_parse("Basic YWxpY2U6czNjcjp0", user, pass), 0); /* alice:s3cr:t */
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "s3cr:t");
    assert_int_equal(web_basic_auth_parse("basic YTo=", user, pass), 0); /* a: (empty password) */
    assert_string_equal(user, "a");
    assert_string_equal(pass, "");
    assert_int_equal(web_basic_auth_parse("Basic YWxpY2U=", user, pass), SS_EAUTH); /* no ':' */
    assert_int_equal(web_basic_auth_parse("Bearer abc", user, pass), SS_EAUTH);
    assert_int_equal(web_basic_auth_parse("Basic !!!!", user, pass), SS_EAUTH);
    assert_int_equal(web_basic_auth_parse("Basic YW=x", user, pass), SS_EAUTH);
    assert_int_equal(web_basic_auth_parse("Basic ", user, pass), SS_EAUTH);
    assert_int_equal(web_basic_auth_parse(NULL, user, pass), SS_EAUTH);
    /* over the caps */
    size_t big = (WEB_AUTH_MAX_USER + WEB_AUTH_MAX_PASSWORD + 8) / 3 * 4;
    char *h = malloc(big + 7);
    memcpy(h, "Basic ", 6);
    memset(h + 6, 'A', big);
    h[6 + big] = '\0';
    assert_int_equal(web_basic_auth_parse(h, user, pass), SS_EAUTH);
    free(h);
}

static void test_auth_check_and_cache(void **state)
{
    (void)state;
    char *hash = make_hash("right");
    char *y = NULL;
    assert_true(asprintf(&y, "basic_auth_users: {alice: '%s'}\n", hash) > 0);
    char err[512];
    int rc;
    struct cfg_web *w = load(y, "web.yml", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    struct web_auth_cache *c = NULL;
    assert_int_equal(web_auth_cache_new(&c), 0);
    size_t entries;
    unsigned long computed;
    assert_true(web_auth_check(c, w, "alice", "right"));
    assert_false(web_auth_check(c, w, "alice", "wrong"));
    assert_false(web_auth_check(c, w, "mallory", "right"));
    assert_false(web_auth_check(c, w, "alice", ""));
    web_auth_cache_stats(c, &entries, &computed);
    assert_int_equal(computed, 4);
    assert_int_equal(entries, 4);
    /* repeats are answered from the cache, successes and failures alike */
    assert_true(web_auth_check(c, w, "alice", "right"));
    assert_false(web_auth_check(c, w, "alice", "wrong"));
    assert_false(web_auth_check(c, w, "mallory", "right"));
    web_auth_cache_stats(c, &entries, &computed);
    assert_int_equal(computed, 4);
    /* bounded: many distinct passwords never grow it past its size */
    for (int i = 0; i < 200; i++) {
        char pw[32];
        snprintf(pw, sizeof pw, "guess-%d", i);
        assert_false(web_auth_check(c, w, "alice", pw)); /* cost 4: fast */
    }
    web_auth_cache_stats(c, &entries, &computed);
    assert_true(entries <= 128);
    /* ...and never push a good password out: a scraper whose credentials were
     * checked once is not sent behind a flood of wrong guesses to a new bcrypt */
    unsigned long before = computed;
    assert_true(web_auth_check(c, w, "alice", "right"));
    assert_int_equal(web_auth_verify(c, w, "alice", "right"), WEB_AUTH_OK);
    assert_int_equal(web_auth_verify(c, w, "alice", "guess-199"), WEB_AUTH_DENIED);
    web_auth_cache_stats(c, &entries, &computed);
    assert_int_equal(computed, before);
    web_auth_cache_free(c);
    cfg_web_free(w);
    free(y);
    free(hash);
}

/* ---- TLS credentials from files ------------------------------------------------ */

static char tmpdir_path[256];

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int make_certs(void **state)
{
    (void)state;
    snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/ss-test-web-XXXXXX");
    if (!mkdtemp(tmpdir_path))
        return -1;
    const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    if (sh("cd %s && openssl req -x509 %s -keyout a.key -out a.crt -days 1 -subj /CN=a >/dev/null 2>&1 && "
           "openssl req -x509 %s -keyout b.key -out b.crt -days 1 -subj /CN=b >/dev/null 2>&1",
           tmpdir_path, key, key) != 0)
        return -1;
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    sh("rm -rf %s", tmpdir_path);
    return 0;
}

static struct cfg_web *tls_config(const char *cert, const char *keyf, const char *ca)
{
    char y[1024], src[512], err[512];
    int rc;
    snprintf(src, sizeof src, "%s/web.yml", tmpdir_path);
    snprintf(y, sizeof y, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n%s%s%s", cert, keyf,
             ca ? "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " : "", ca ? ca : "",
             ca ? "\n" : "");
    struct cfg_web *w = load(y, src, err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    return w;
}

static void test_tls_credentials(void **state)
{
    (void)state;
    char err[512];
    struct web_tls *t = NULL;
    struct cfg_web *w = tls_config("a.crt", "a.key", "b.crt");
    assert_int_equal(web_tls_new(w, &t, err, sizeof err), 0);
    gnutls_session_t s;
    assert_int_equal(gnutls_init(&s, GNUTLS_SERVER), 0);
    assert_int_equal(web_tls_apply(t, s), 0);
    gnutls_deinit(s);
    web_tls_free(t);
    cfg_web_free(w);

    w = tls_config("a.crt", "b.key", NULL); /* key of another certificate */
    assert_int_not_equal(web_tls_new(w, &t, err, sizeof err), 0);
    assert_null(t);
    assert_non_null(strstr(err, "cannot use cert_file"));
    cfg_web_free(w);

    w = tls_config("missing.crt", "a.key", NULL);
    assert_int_equal(web_tls_new(w, &t, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "cannot open cert_file"));
    cfg_web_free(w);

    w = tls_config("a.crt", "a.key", "web.yml"); /* not PEM */
    sh("echo 'not a certificate' > %s/web.yml", tmpdir_path);
    assert_int_not_equal(web_tls_new(w, &t, err, sizeof err), 0);
    assert_non_null(strstr(err, "client_ca_file"));
    cfg_web_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_basic_auth_parse),
        cmocka_unit_test(test_auth_check_and_cache),
        cmocka_unit_test_setup_teardown(test_tls_credentials, make_certs, remove_certs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
