/* test_kube.c: the Kubernetes client (kube/): kubeconfig reading (contexts, CA and
 * client certificates as data or files, tokens, namespaces, merged files, and the
 * YAML itself: anchors, documents, error positions, nesting, empty and oversized
 * files), the in-cluster service account, an explicit api_server, the load order,
 * the error messages (403 names the RBAC rule), the requests themselves through a
 * scripted transport (paths, headers, the token re-read on every request, the merge
 * patch, answers that are not Scale objects), LIST/WATCH URLs, LIST pages, and the
 * watch stream's framing and event decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "kube.h"

/* ---- fixtures ---------------------------------------------------------- */

static char tmp[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *path_of(const char *name)
{
    static char p[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tmp, name);
    return p[i];
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/ss-test-kube-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* "hello CA\n" and friends, base64 */
#define CA_B64   "aGVsbG8gQ0EK" /* hello CA\n */
#define CERT_B64 "Y2VydCBQRU0K" /* cert PEM\n */
#define KEY_B64  "a2V5IFBFTQo=" /* key PEM\n */

static const char *const KUBECONFIG_MAIN =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: dev-cluster\n"
    "  cluster:\n"
    "    server: https://10.0.0.1:6443/\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "- name: prod-cluster\n"
    "  cluster:\n"
    "    server: http://127.0.0.1:8001\n"
    "    certificate-authority: certs/ca.pem\n"
    "    insecure-skip-tls-verify: true\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}\n"
    "- name: prod\n"
    "  context: {cluster: prod-cluster, user: cert-files}\n"
    "- name: certdata\n"
    "  context: {cluster: dev-cluster, user: cert-data}\n"
    "- name: exec\n"
    "  context: {cluster: dev-cluster, user: eks}\n"
    "- name: nocluster\n"
    "  context: {cluster: missing, user: dev-user}\n"
    "- name: tokfile\n"
    "  context: {cluster: dev-cluster, user: tokfile}\n"
    "- name: halfcert\n"
    "  context: {cluster: dev-cluster, user: halfcert}\n"
    "- name: badb64\n"
    "  context: {cluster: dev-cluster, user: badb64}\n"
    "users:\n"
    "- name: dev-user\n"
    "  user: {token: s3cr3t-token}\n"
    "- name: cert-files\n"
    "  user: {client-certificate: certs/client.pem, client-key: /abs/client.key}\n"
    "- name: cert-data\n"
    "  user:\n"
    "    client-certificate-data: " CERT_B64 "\n"
    "    client-key-data: " KEY_B64 "\n"
    "    client-certificate: ignored.pem\n"
    "- name: eks\n"
    "  user:\n"
    "    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}\n"
    "- name: tokfile\n"
    "  user: {tokenFile: token.txt, token: static-loses}\n"
    "- name: halfcert\n"
    "  user: {client-certificate: c.pem}\n"
    "- name: badb64\n"
    "  user: {client-key-data: '!!not base64!!'}\n";

/* ---- kubeconfig -------------------------------------------------------- */

static void test_kubeconfig_current_context(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(path_of("config"), NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->context, "dev");
    assert_string_equal(c->server, "https://10.0.0.1:6443"); /* trailing '/' dropped */
    assert_string_equal(c->ns, "team-a");
    assert_string_equal(c->http->authorization_credentials, "s3cr3t-token");
    assert_null(c->http->authorization_credentials_file);
    assert_non_null(c->http->tls_ca_pem);
    assert_int_equal(c->http->tls_ca_pem_len, 9);
    assert_memory_equal(c->http->tls_ca_pem, "hello CA\n", 9);
    assert_null(c->http->tls_ca_file);
    assert_false(c->http->tls_insecure_skip_verify);
    assert_null(c->http->tls_cert_pem);
    assert_null(c->http->tls_cert_file);
    kube_config_free(c);
}

static void test_kubeconfig_files_relative(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(path_of("config"), "prod", &c, err, sizeof err), 0);
    assert_string_equal(c->server, "http://127.0.0.1:8001");
    assert_null(c->ns); /* the context has none */
    char want[600];
    snprintf(want, sizeof want, "%s/certs/ca.pem", tmp);
    assert_string_equal(c->http->tls_ca_file, want); /* relative to the kubeconfig's directory */
    snprintf(want, sizeof want, "%s/certs/client.pem", tmp);
    assert_string_equal(c->http->tls_cert_file, want);
    assert_string_equal(c->http->tls_key_file, "/abs/client.key");
    assert_true(c->http->tls_insecure_skip_verify);
    assert_null(c->http->authorization_credentials);
    kube_config_free(c);
}

static void test_kubeconfig_cert_data(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(path_of("config"), "certdata", &c, err, sizeof err), 0);
    assert_int_equal(c->http->tls_cert_pem_len, 9);
    assert_memory_equal(c->http->tls_cert_pem, "cert PEM\n", 9);
    assert_int_equal(c->http->tls_key_pem_len, 8);
    assert_memory_equal(c->http->tls_key_pem, "key PEM\n", 8);
    assert_null(c->http->tls_cert_file); /* data wins over the file, as in client-go */
    assert_null(c->ns);
    kube_config_free(c);
}

static void test_kubeconfig_token_file(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(path_of("config"), "tokfile", &c, err, sizeof err), 0);
    char want[600];
    snprintf(want, sizeof want, "%s/token.txt", tmp);
    assert_string_equal(c->http->authorization_credentials_file, want);
    kube_config_free(c);
}

static void expect_kubeconfig_error(const char *paths, const char *ctx, int rc, const char *msg)
{
    struct kube_config *c = (struct kube_config *)0x1;
    char err[512] = "";
    assert_int_equal(kube_config_from_kubeconfig(paths, ctx, &c, err, sizeof err), rc);
    assert_null(c);
    if (!strstr(err, msg))
        fail_msg("error \"%s\" does not contain \"%s\"", err, msg);
}

static void test_kubeconfig_errors(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    const char *p = path_of("config");
    expect_kubeconfig_error(p, "nope", SS_ECONFIG, "context \"nope\" not found");
    expect_kubeconfig_error(p, "nocluster", SS_ECONFIG, "cluster \"missing\" not found");
    expect_kubeconfig_error(p, "exec", SS_ECONFIG, "exec plugin");
    expect_kubeconfig_error(p, "halfcert", SS_ECONFIG, "both the certificate and the key");
    expect_kubeconfig_error(p, "badb64", SS_EPARSE, "client-key-data is not valid base64");
    expect_kubeconfig_error(path_of("absent"), NULL, SS_ENOTFOUND, "no such file");
    write_file("nocurrent", "apiVersion: v1\nkind: Config\nclusters: []\n");
    expect_kubeconfig_error(path_of("nocurrent"), NULL, SS_ECONFIG, "no current-context");
    write_file("badyaml", "clusters: [\n");
    expect_kubeconfig_error(path_of("badyaml"), NULL, SS_EPARSE, "badyaml:");
    write_file("badserver", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
                            "clusters: [{name: c, cluster: {server: 'ftp://x'}}]\n");
    expect_kubeconfig_error(path_of("badserver"), NULL, SS_ECONFIG, "http:// or https://");
    write_file("nouser", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                         "clusters: [{name: c, cluster: {server: 'https://k'}}]\n");
    expect_kubeconfig_error(path_of("nouser"), NULL, SS_ECONFIG, "user \"u\" not found");
}

/* KUBECONFIG=a:b: the first file that sets a value wins; missing files are skipped. */
static void test_kubeconfig_merge(void **state)
{
    (void)state;
    write_file("a", "apiVersion: v1\nkind: Config\n"
                    "clusters: [{name: c, cluster: {server: 'https://first:6443'}}]\n"
                    "users: [{name: u, user: {token: from-a}}]\n");
    write_file("b", "apiVersion: v1\nkind: Config\ncurrent-context: ctx\n"
                    "contexts: [{name: ctx, context: {cluster: c, user: u, namespace: from-b}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://second:6443'}}]\n"
                    "users: [{name: u, user: {token: from-b}}]\n");
    char paths[1600];
    snprintf(paths, sizeof paths, "%s:%s:%s", path_of("missing"), path_of("a"), path_of("b"));
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(paths, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->context, "ctx");
    assert_string_equal(c->server, "https://first:6443");
    assert_string_equal(c->http->authorization_credentials, "from-a");
    assert_string_equal(c->ns, "from-b");
    kube_config_free(c);
}

/* The YAML of a kubeconfig: anchors and aliases, the first document only (as
 * kubectl), where an error is, nesting, an empty file, and the size limit. */
static const char *const KUBECONFIG_SMALL =
    "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
    "clusters: [{name: c, cluster: {server: 'https://k'}}]\n";

static void test_kubeconfig_yaml(void **state)
{
    (void)state;
    struct kube_config *c = NULL;
    char err[512];
    write_file("anchors", "current-context: b\n"
                          "clusters: [{name: &cn c, cluster: &cl {server: 'https://k:6443'}}]\n"
                          "users: [{name: &un u, user: {token: &tok t0k}}]\n"
                          "contexts:\n"
                          "- name: a\n"
                          "  context: &ctx {cluster: *cn, user: *un, namespace: ns}\n"
                          "- name: b\n"
                          "  context: *ctx\n"
                          "extra: [*cl, *tok]\n");
    assert_int_equal(kube_config_from_kubeconfig(path_of("anchors"), NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->context, "b");
    assert_string_equal(c->server, "https://k:6443");
    assert_string_equal(c->ns, "ns");
    assert_string_equal(c->http->authorization_credentials, "t0k");
    kube_config_free(c);

    /* A broken second document is never read. */
    char two[512];
    snprintf(two, sizeof two, "%s---\n]: [\n", KUBECONFIG_SMALL);
    write_file("twodocs", two);
    assert_int_equal(kube_config_from_kubeconfig(path_of("twodocs"), NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://k");
    kube_config_free(c);

    write_file("undefined", "current-context: x\ncontexts: [{name: x, context: {cluster: *c}}]\n");
    expect_kubeconfig_error(path_of("undefined"), NULL, SS_EPARSE,
                            "undefined:2:41: found undefined alias \"c\"");
    write_file("twice", "a: &x 1\nb: &x 2\n");
    expect_kubeconfig_error(path_of("twice"), NULL, SS_EPARSE, "twice:2:4: found duplicate anchor \"x\"");
    write_file("self", "a: &x [*x]\n"); /* a cycle: Go's yaml refuses it too */
    expect_kubeconfig_error(path_of("self"), NULL, SS_EPARSE, "self:1:8: anchor \"x\" value contains itself");
    write_file("syntax", "clusters: [\n");
    expect_kubeconfig_error(path_of("syntax"), NULL, SS_EPARSE,
                            "syntax:2:1: did not find expected node content");
    write_file("utf8", "a: b\nc: \xff\n");
    expect_kubeconfig_error(path_of("utf8"), NULL, SS_EPARSE, "utf8:2:4: invalid leading UTF-8 octet");

    /* Nesting: 10000 levels, as client-go's JSON decoder allows, and no more. */
    size_t deep_cap = strlen(KUBECONFIG_SMALL) + 2 * 10000 + 16;
    char *deep = malloc(deep_cap);
    assert_non_null(deep);
    for (int levels = 10000; levels <= 10001; levels++) {
        size_t n = (size_t)snprintf(deep, deep_cap, "%sx: ", KUBECONFIG_SMALL);
        for (int i = 1; i < levels; i++) /* the root mapping is the first level */
            deep[n++] = '[';
        for (int i = 1; i < levels; i++)
            deep[n++] = ']';
        deep[n] = '\0';
        write_file("deep", deep);
        if (levels == 10000) {
            assert_int_equal(kube_config_from_kubeconfig(path_of("deep"), NULL, &c, err, sizeof err), 0);
            kube_config_free(c);
        } else {
            expect_kubeconfig_error(path_of("deep"), NULL, SS_EPARSE,
                                    "deep:4:10003: nested deeper than 10000");
        }
    }
    free(deep);

    /* An empty file holds nothing, but is no error in a merge. */
    write_file("empty", "");
    expect_kubeconfig_error(path_of("empty"), NULL, SS_ECONFIG, "no current-context");
    write_file("config", KUBECONFIG_SMALL);
    char paths[1100];
    snprintf(paths, sizeof paths, "%s:%s", path_of("empty"), path_of("config"));
    assert_int_equal(kube_config_from_kubeconfig(paths, NULL, &c, err, sizeof err), 0);
    kube_config_free(c);

    /* KUBE_MAX_CONFIG_BYTES is read whole; one byte more is refused unread. */
    size_t pad = KUBE_MAX_CONFIG_BYTES - strlen(KUBECONFIG_SMALL);
    char *big = malloc(KUBE_MAX_CONFIG_BYTES + 1);
    assert_non_null(big);
    memcpy(big, KUBECONFIG_SMALL, strlen(KUBECONFIG_SMALL));
    memset(big + strlen(KUBECONFIG_SMALL), '#', pad - 1);
    big[KUBE_MAX_CONFIG_BYTES - 1] = '\n';
    big[KUBE_MAX_CONFIG_BYTES] = '\0';
    write_file("big", big);
    free(big);
    assert_int_equal(kube_config_from_kubeconfig(path_of("big"), NULL, &c, err, sizeof err), 0);
    kube_config_free(c);
    assert_int_equal(truncate(path_of("big"), KUBE_MAX_CONFIG_BYTES + 1), 0);
    expect_kubeconfig_error(path_of("big"), NULL, SS_ELIMIT, "big: larger than 4 MiB");
}

/* ---- in cluster -------------------------------------------------------- */

static void make_sa_dir(const char *ns)
{
    char p[512];
    snprintf(p, sizeof p, "%s/sa", tmp);
    mkdir(p, 0700);
    write_file("sa/token", "projected-token-1\n");
    write_file("sa/ca.crt", "CA\n");
    if (ns)
        write_file("sa/namespace", ns);
}

static void test_in_cluster(void **state)
{
    (void)state;
    make_sa_dir("apps\n");
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_in_cluster(path_of("sa"), &c, err, sizeof err), SS_ENOTFOUND);
    assert_null(c);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube_config_in_cluster(path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://10.96.0.1:443");
    assert_string_equal(c->context, "in-cluster");
    assert_string_equal(c->ns, "apps");
    char want[600];
    snprintf(want, sizeof want, "%s/sa/token", tmp);
    assert_string_equal(c->http->authorization_credentials_file, want);
    snprintf(want, sizeof want, "%s/sa/ca.crt", tmp);
    assert_string_equal(c->http->tls_ca_file, want);
    assert_null(c->http->authorization_credentials); /* never cached: read for each request */
    kube_config_free(c);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(kube_config_in_cluster(path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://[fd00::1]:443");
    kube_config_free(c);

    setenv("KUBERNETES_SERVICE_PORT", "443x", 1);
    assert_int_equal(kube_config_in_cluster(path_of("sa"), &c, err, sizeof err), SS_ECONFIG);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);

    unlink(path_of("sa/token"));
    assert_int_equal(kube_config_in_cluster(path_of("sa"), &c, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "service-account token"));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* controller-runtime's order: explicit path, KUBECONFIG, in cluster, ~/.kube/config. */
static void test_load_order(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    write_file("other", "current-context: o\ncontexts: [{name: o, context: {cluster: c}}]\n"
                        "clusters: [{name: c, cluster: {server: 'https://other'}}]\n");
    make_sa_dir(NULL);
    char home[600];
    snprintf(home, sizeof home, "%s/home", tmp);
    mkdir(home, 0700);
    char kd[700];
    snprintf(kd, sizeof kd, "%s/.kube", home);
    mkdir(kd, 0700);
    write_file("home/.kube/config", "current-context: h\ncontexts: [{name: h, context: {cluster: c}}]\n"
                                    "clusters: [{name: c, cluster: {server: 'https://home'}}]\n");
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("KUBECONFIG", path_of("other"), 1);

    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_load(path_of("config"), NULL, path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://10.0.0.1:6443");
    kube_config_free(c);
    assert_int_equal(kube_config_load(NULL, NULL, path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://other");
    kube_config_free(c);
    unsetenv("KUBECONFIG");
    assert_int_equal(kube_config_load(NULL, NULL, path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://10.96.0.1:443");
    assert_null(c->ns); /* no namespace file */
    kube_config_free(c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kube_config_load(NULL, NULL, path_of("sa"), &c, err, sizeof err), 0);
    assert_string_equal(c->server, "https://home");
    kube_config_free(c);
    unlink(path_of("home/.kube/config"));
    assert_int_equal(kube_config_load(NULL, NULL, path_of("sa"), &c, err, sizeof err), SS_ENOTFOUND);
    assert_non_null(strstr(err, "no Kubernetes configuration"));

    unsetenv("KUBERNETES_SERVICE_PORT");
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);
}

/* ---- errors ------------------------------------------------------------ */

static const struct kube_target DEPLOY = {"prod", "apps/v1", "Deployment", "web"};
static const struct kube_target STS = {"db", "apps/v1", "StatefulSet", "pg"};

static void test_error_403_rbac(void **state)
{
    (void)state;
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"deployments.apps "
        "\\\"web\\\" is forbidden: User \\\"system:serviceaccount:prod:scaler\\\" cannot patch resource "
        "\\\"deployments/scale\\\" in API group \\\"apps\\\" in the namespace "
        "\\\"prod\\\"\",\"reason\":\"Forbidden\","
        "\"code\":403}";
    struct kube_error e;
    assert_int_equal(kube_error_from_status(403, body, strlen(body), &DEPLOY, KUBE_OP_PATCH_SCALE, &e),
                     SS_EAUTH);
    assert_int_equal(e.status, 403);
    assert_false(e.retryable);
    assert_non_null(strstr(e.message, "PATCH deployments/web/scale in namespace prod: HTTP 403 forbidden"));
    assert_non_null(strstr(e.message, "cannot patch resource 'deployments/scale'"));
    assert_non_null(strstr(e.message, "needs: apiGroups [\"apps\"], resources [\"deployments/scale\"], "
                                      "verbs [\"get\",\"patch\"] in namespace prod"));

    assert_int_equal(kube_error_from_status(403, "", 0, &STS, KUBE_OP_GET_SCALE, &e), SS_EAUTH);
    assert_non_null(strstr(e.message, "GET statefulsets/pg/scale in namespace db"));
    assert_non_null(strstr(e.message, "needs: apiGroups [\"apps\"], resources [\"statefulsets/scale\"], "
                                      "verbs [\"get\",\"patch\"] in namespace db"));

    assert_int_equal(kube_error_from_status(403, NULL, 0, &DEPLOY, KUBE_OP_GET_WORKLOAD, &e), SS_EAUTH);
    assert_non_null(strstr(e.message,
                           "needs: apiGroups [\"apps\"], resources [\"deployments\"], verbs [\"get\"] "
                           "in namespace prod"));
    char rule[300];
    kube_rbac_rule(&DEPLOY, KUBE_OP_GET_SCALE, rule, sizeof rule);
    assert_string_equal(rule,
                        "apiGroups [\"apps\"], resources [\"deployments/scale\"], verbs [\"get\",\"patch\"] "
                        "in namespace prod");
}

static void test_error_mapping(void **state)
{
    (void)state;
    static const struct {
        long status;
        int rc;
        bool retry;
        const char *msg;
    } cases[] = {
        {401, SS_EAUTH, true, "HTTP 401 unauthorized"},
        {404, SS_ENOTFOUND, false, "HTTP 404 not found"},
        {409, SS_EHTTP, true, "HTTP 409 conflict"},
        {422, SS_EHTTP, false, "HTTP 422 rejected as invalid"},
        {429, SS_EHTTP, true, "HTTP 429 throttled"},
        {500, SS_EHTTP, true, "HTTP 500 server error; retried next poll"},
        {503, SS_EHTTP, true, "HTTP 503 server error"},
        {302, SS_EHTTP, false, "HTTP 302 unexpected answer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kube_error e;
        int rc = kube_error_from_status(cases[i].status, NULL, 0, &DEPLOY, KUBE_OP_GET_SCALE, &e);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(e.retryable, cases[i].retry);
        if (!strstr(e.message, cases[i].msg))
            fail_msg("%ld: \"%s\" lacks \"%s\"", cases[i].status, e.message, cases[i].msg);
        assert_null(strstr(e.message, "needs:"));
    }
    /* a non-JSON body (a proxy's page) is quoted, made printable */
    struct kube_error e;
    const char *html = "<html>\"bad\ngateway\"</html>";
    kube_error_from_status(502, html, strlen(html), &DEPLOY, KUBE_OP_GET_SCALE, &e);
    assert_non_null(strstr(e.message, "(<html> bad gateway </html>)"));
}

/* ---- requests through a scripted transport ------------------------------ */

struct script {
    int calls;
    char method[16];
    char url[512];
    char headers[8][256];
    size_t nheaders;
    char body[256];
    long status;       /* to answer */
    const char *reply; /* to answer */
    int fail_rc;       /* transport error to return */
};

static int scripted(void *ud, const struct kube_http_request *req, long *status, struct ss_buf *resp,
                    char *err, size_t errlen)
{
    struct script *s = ud;
    s->calls++;
    snprintf(s->method, sizeof s->method, "%s", req->method);
    snprintf(s->url, sizeof s->url, "%s", req->url);
    s->nheaders = 0;
    for (const struct curl_slist *h = req->headers; h && s->nheaders < 8; h = h->next)
        snprintf(s->headers[s->nheaders++], sizeof s->headers[0], "%s", h->data);
    snprintf(s->body, sizeof s->body, "%.*s", (int)req->body_len, req->body ? req->body : "");
    if (s->fail_rc) {
        snprintf(err, errlen, "Failed to connect to 127.0.0.1 port 1: Connection refused");
        return s->fail_rc;
    }
    *status = s->status;
    return ss_buf_append_str(resp, s->reply);
}

static bool has_header(const struct script *s, const char *h)
{
    for (size_t i = 0; i < s->nheaders; i++)
        if (strcmp(s->headers[i], h) == 0)
            return true;
    return false;
}

static const char *const SCALE_REPLY =
    "{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/"
    "v1\",\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\"},"
    "\"spec\":{\"replicas\":3},\"status\":{\"replicas\":2,\"selector\":\"app=web\"}}";

static void test_requests(void **state)
{
    (void)state;
    write_file("tok", "token-one\n");
    struct httpc_config http = {.authorization_credentials_file = path_of("tok"),
                                .authorization_credentials = "static-token-not-used"};
    struct kube_config cfg = {.server = "http://127.0.0.1:1", .http = &http};
    struct kube_client *kc = NULL;
    assert_int_equal(kube_client_new(&cfg, &kc), 0);
    struct script s = {.status = 200, .reply = SCALE_REPLY};
    kube_client_set_transport(kc, scripted, &s);

    struct kube_scale sc;
    struct kube_error e;
    assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), 0);
    assert_string_equal(s.method, "GET");
    assert_string_equal(s.url, "http://127.0.0.1:1/apis/apps/v1/namespaces/prod/deployments/web/scale");
    assert_true(has_header(&s, "Authorization: Bearer token-one"));
    assert_true(has_header(&s, "Accept: application/json"));
    assert_int_equal(sc.spec_replicas, 3);
    assert_int_equal(sc.status_replicas, 2);

    /* the token file is read again for every request: it rotates */
    write_file("tok", "token-two");
    s.reply = "{\"kind\":\"Scale\",\"spec\":{\"replicas\":5},\"status\":{\"replicas\":3}}";
    assert_int_equal(kube_patch_scale(kc, &STS, 5, &sc, &e), 0);
    assert_string_equal(s.method, "PATCH");
    assert_string_equal(s.url, "http://127.0.0.1:1/apis/apps/v1/namespaces/db/statefulsets/pg/scale");
    assert_true(has_header(&s, "Authorization: Bearer token-two"));
    assert_true(has_header(&s, "Content-Type: application/merge-patch+json"));
    assert_string_equal(s.body, "{\"spec\":{\"replicas\":5}}");
    assert_int_equal(sc.spec_replicas, 5);

    /* scale to zero: an omitted replicas field is 0 (omitempty) */
    s.reply = "{\"kind\":\"Scale\",\"spec\":{},\"status\":{\"replicas\":1}}";
    assert_int_equal(kube_patch_scale(kc, &DEPLOY, 0, &sc, &e), 0);
    assert_string_equal(s.body, "{\"spec\":{\"replicas\":0}}");
    assert_int_equal(sc.spec_replicas, 0);
    assert_int_equal(kube_patch_scale(kc, &DEPLOY, -1, &sc, &e), SS_EINVAL);

    /* a 403 answer through the client */
    s.status = 403;
    s.reply = "{\"kind\":\"Status\",\"message\":\"forbidden\",\"code\":403}";
    int calls = s.calls;
    assert_int_equal(kube_patch_scale(kc, &DEPLOY, 2, NULL, &e), SS_EAUTH);
    assert_int_equal(s.calls, calls + 1);
    assert_non_null(strstr(e.message, "needs: apiGroups [\"apps\"], resources [\"deployments/scale\"]"));

    /* 409 and 5xx: retried next poll */
    s.status = 409;
    s.reply = "{\"kind\":\"Status\",\"reason\":\"Conflict\"}";
    assert_int_equal(kube_patch_scale(kc, &DEPLOY, 2, NULL, &e), SS_EHTTP);
    assert_true(e.retryable);

    /* answers that are not Scale objects */
    s.status = 200;
    const char *bad[] = {"not json",
                         "[]",
                         "{\"kind\":\"Deployment\"}",
                         "{\"kind\":\"Scale\",\"spec\":{\"replicas\":-1}}",
                         "{\"kind\":\"Scale\",\"spec\":{\"replicas\":\"3\"}}",
                         "{\"kind\":\"Scale\",\"spec\":{\"replicas\":4294967296}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.reply = bad[i];
        assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), SS_EPARSE);
        assert_non_null(strstr(e.message, "not a Scale object"));
    }

    /* network failure */
    s.fail_rc = SS_EIO;
    assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), SS_EIO);
    assert_true(e.retryable);
    assert_non_null(strstr(e.message, "Connection refused"));
    s.fail_rc = 0;

    /* names that could smuggle a path are refused before any request */
    static const struct kube_target evil[] = {
        {"prod", "apps/v1", "Deployment", "../../secrets"},
        {"Prod", "apps/v1", "Deployment", "web"},
        {"prod", "apps/v1?x=1", "Deployment", "web"},
        {"prod", "apps/v1", "Deploy/ment", "web"},
        {"", "apps/v1", "Deployment", "web"},
        {"prod", "apps/v1", "Deployment", "web%2f"},
    };
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        calls = s.calls;
        assert_int_equal(kube_get_scale(kc, &evil[i], &sc, &e), SS_EINVAL);
        assert_int_equal(s.calls, calls);
    }

    /* a token with a line break would forge headers: refused before any request */
    write_file("tok", "token-three\r\nX-Evil: 1\n");
    calls = s.calls;
    assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), SS_EAUTH);
    assert_int_equal(s.calls, calls);
    assert_non_null(strstr(e.message, "control characters"));

    /* the token file disappeared: an auth error, not a request without a token */
    unlink(path_of("tok"));
    calls = s.calls;
    assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), SS_EAUTH);
    assert_int_equal(s.calls, calls);
    kube_client_free(kc);

    /* a static token; the core group is /api/v1 */
    struct httpc_config http2 = {.authorization_credentials = "tok-static"};
    struct kube_config cfg2 = {.server = "https://k:6443", .http = &http2};
    assert_int_equal(kube_client_new(&cfg2, &kc), 0);
    kube_client_set_transport(kc, scripted, &s);
    s.status = 200;
    s.reply = SCALE_REPLY;
    struct kube_target rc_target = {"default", "v1", "ReplicationController", "old"};
    assert_int_equal(kube_get_scale(kc, &rc_target, &sc, &e), 0);
    assert_string_equal(s.url, "https://k:6443/api/v1/namespaces/default/replicationcontrollers/old/scale");
    assert_true(has_header(&s, "Authorization: Bearer tok-static"));
    kube_client_free(kc);

    /* no credentials: no Authorization header */
    struct httpc_config http3 = {0};
    struct kube_config cfg3 = {.server = "http://127.0.0.1:1", .http = &http3};
    assert_int_equal(kube_client_new(&cfg3, &kc), 0);
    kube_client_set_transport(kc, scripted, &s);
    assert_int_equal(kube_get_scale(kc, &DEPLOY, &sc, &e), 0);
    for (size_t i = 0; i < s.nheaders; i++)
        assert_null(strstr(s.headers[i], "Authorization"));
    kube_client_free(kc);
    kube_client_free(NULL);
    kube_config_free(NULL);
}

static void test_workload_annotations(void **state)
{
    (void)state;
    struct httpc_config http = {.authorization_credentials = "t"};
    struct kube_config cfg = {.server = "http://127.0.0.1:1", .http = &http};
    struct kube_client *kc = NULL;
    assert_int_equal(kube_client_new(&cfg, &kc), 0);
    struct script s = {.status = 200,
                       .reply = "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"annotations\":{"
                                "\"deployment.kubernetes.io/revision\":\"3\","
                                "\"autoscaling.keda.sh/paused-replicas\":\"2\","
                                "\"autoscaling.keda.sh/paused\":\"true\"}},"
                                "\"spec\":{\"replicas\":4},\"status\":{\"replicas\":4,\"readyReplicas\":3}}"};
    kube_client_set_transport(kc, scripted, &s);
    struct kube_workload w;
    struct kube_error e;
    assert_int_equal(kube_get_workload(kc, &DEPLOY, "autoscaling.keda.sh/", &w, &e), 0);
    assert_string_equal(s.url, "http://127.0.0.1:1/apis/apps/v1/namespaces/prod/deployments/web");
    assert_string_equal(s.method, "GET");
    assert_int_equal(w.spec_replicas, 4);
    assert_int_equal(w.ready_replicas, 3);
    assert_int_equal(w.n_annotations, 2); /* only KEDA's keys */
    assert_string_equal(w.annotations[0].key, "autoscaling.keda.sh/paused-replicas");
    assert_string_equal(w.annotations[0].value, "2");
    assert_string_equal(w.annotations[1].key, "autoscaling.keda.sh/paused");
    assert_string_equal(w.annotations[1].value, "true");

    /* no annotations, no status */
    s.reply = "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":1}}";
    assert_int_equal(kube_get_workload(kc, &DEPLOY, "autoscaling.keda.sh/", &w, &e), 0);
    assert_int_equal(w.n_annotations, 0);
    assert_int_equal(w.ready_replicas, 0);

    /* more KEDA annotations than the fixed store holds: the extra ones are dropped */
    struct ss_buf big;
    ss_buf_init(&big, 0);
    ss_buf_append_str(&big, "{\"metadata\":{\"annotations\":{");
    for (int i = 0; i < 20; i++)
        ss_buf_printf(&big, "%s\"autoscaling.keda.sh/k%d\":\"v\"", i ? "," : "", i);
    ss_buf_append_str(&big, "}},\"spec\":{\"replicas\":1}}");
    s.reply = big.data;
    assert_int_equal(kube_get_workload(kc, &DEPLOY, "autoscaling.keda.sh/", &w, &e), 0);
    assert_int_equal(w.n_annotations, 8);
    ss_buf_free(&big);

    s.reply = "{\"kind\":\"Status\"}";
    assert_int_equal(kube_get_workload(kc, &DEPLOY, "autoscaling.keda.sh/", &w, &e), SS_EPARSE);
    s.status = 403;
    assert_int_equal(kube_get_workload(kc, &DEPLOY, "autoscaling.keda.sh/", &w, &e), SS_EAUTH);
    assert_non_null(strstr(e.message, "resources [\"deployments\"], verbs [\"get\"]"));
    kube_client_free(kc);
}

static void test_kubeconfig_null_path(void **state)
{
    (void)state;
    struct kube_config *c = (struct kube_config *)0x1;
    char err[128];
    assert_int_equal(kube_config_from_kubeconfig(NULL, NULL, &c, err, sizeof err), SS_EINVAL);
    assert_null(c);
}

/* What kubernetes_sd relies on: no current-context but exactly one context, an
 * exec plugin next to a token (the token is used), one auth method only. */
static void test_kubeconfig_sd_cases(void **state)
{
    (void)state;
    struct kube_config *c = NULL;
    char err[512];
    write_file(
        "one",
        "contexts: [{name: only, context: {cluster: c, user: u}}]\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9/', insecure-skip-tls-verify: True}}]\n"
        "users: [{name: u, user: {token: t0k, exec: {command: aws}}}]\n");
    assert_int_equal(kube_config_from_kubeconfig(path_of("one"), NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->context, "only");
    assert_string_equal(c->server, "http://127.0.0.1:9");
    assert_string_equal(c->http->authorization_credentials, "t0k");
    assert_string_equal(c->http->authorization_type, "Bearer");
    assert_true(c->http->tls_insecure_skip_verify);
    assert_false(c->http->follow_redirects);
    assert_null(c->http->proxy_url);
    kube_config_free(c);

    write_file("basic", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                        "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                        "users: [{name: u, user: {username: admin, password: pw}}]\n");
    assert_int_equal(kube_config_from_kubeconfig(path_of("basic"), NULL, &c, err, sizeof err), 0);
    assert_string_equal(c->http->basic_auth_username, "admin");
    assert_string_equal(c->http->basic_auth_password, "pw");
    assert_null(c->http->authorization_credentials);
    kube_config_free(c);

    write_file("both", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
                       "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                       "users: [{name: u, user: {token: t, username: admin}}]\n");
    expect_kubeconfig_error(path_of("both"), NULL, SS_ECONFIG, "more than one authentication method");
    write_file("list", "[not, a, mapping]\n");
    expect_kubeconfig_error(path_of("list"), NULL, SS_EPARSE, "not a mapping");
    write_file("padless",
               "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority-data: YQ}}]\n");
    expect_kubeconfig_error(path_of("padless"), NULL, SS_EPARSE,
                            "certificate-authority-data is not valid base64");
    /* base64 split over lines, as some tools write it */
    write_file("lines", "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
                        "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority-data: "
                        "\"aGVs\\nbG8gQ0EK\"}}]\n");
    assert_int_equal(kube_config_from_kubeconfig(path_of("lines"), NULL, &c, err, sizeof err), 0);
    assert_int_equal(c->http->tls_ca_pem_len, 9);
    assert_memory_equal(c->http->tls_ca_pem, "hello CA\n", 9);
    kube_config_free(c);
}

/* kubernetes_sd's api_server: the http_config is copied, the server trimmed. */
static void test_config_from_url(void **state)
{
    (void)state;
    char user[] = "u", file[] = "/run/pw";
    struct httpc_header hd[] = {{"X-A", "1"}};
    struct httpc_config h = {.basic_auth_username = user,
                             .basic_auth_password_file = file,
                             .tls_min_version = "TLS13",
                             .proxy_url = "http://proxy:3128",
                             .follow_redirects = true,
                             .headers = hd,
                             .nheaders = 1};
    struct kube_config *c = NULL;
    char err[128];
    assert_int_equal(kube_config_from_url("https://api.example:6443//", &h, &c, err, sizeof err), 0);
    user[0] = 'x'; /* a copy: the caller's strings may go */
    file[1] = 'x';
    assert_string_equal(c->server, "https://api.example:6443");
    assert_string_equal(c->context, "api_server");
    assert_null(c->ns);
    assert_string_equal(c->http->basic_auth_username, "u");
    assert_string_equal(c->http->basic_auth_password_file, "/run/pw");
    assert_string_equal(c->http->tls_min_version, "TLS13");
    assert_string_equal(c->http->proxy_url, "http://proxy:3128");
    assert_true(c->http->follow_redirects);
    assert_int_equal(c->http->nheaders, 1);
    assert_string_equal(c->http->headers[0].name, "X-A");
    kube_config_free(c);
}

/* ---- LIST and WATCH ------------------------------------------------------ */

static void test_watch_url(void **state)
{
    (void)state;
    struct httpc_config h = {0};
    struct kube_config cfg = {.server = "https://k:6443", .http = &h};
    struct ss_buf u;
    ss_buf_init(&u, 4096);
    struct kube_watch_query q = {.resource = "pods"};
    assert_int_equal(kube_watch_url(&cfg, &q, &u), 0);
    assert_string_equal(u.data, "https://k:6443/api/v1/pods?limit=500");
    ss_buf_reset(&u);
    q = (struct kube_watch_query){.resource = "endpoints",
                                  .ns = "team a",
                                  .limit = 50,
                                  .continue_token = "c/+=",
                                  .label_selector = "app in (a,b)",
                                  .field_selector = ""};
    assert_int_equal(kube_watch_url(&cfg, &q, &u), 0);
    assert_string_equal(u.data,
                        "https://k:6443/api/v1/namespaces/team%20a/endpoints?limit=50&continue=c%2F%2B%3D"
                        "&labelSelector=app%20in%20%28a%2Cb%29");
    ss_buf_reset(&u);
    q = (struct kube_watch_query){.resource = "pods",
                                  .watch = true,
                                  .resource_version = "123",
                                  .timeout_s = 417,
                                  .field_selector = "spec.nodeName=n1"};
    assert_int_equal(kube_watch_url(&cfg, &q, &u), 0);
    assert_string_equal(u.data,
                        "https://k:6443/api/v1/pods?allowWatchBookmarks=true&timeoutSeconds=417&watch=true"
                        "&resourceVersion=123&fieldSelector=spec.nodeName%3Dn1");
    ss_buf_free(&u);
}

static void test_list_page(void **state)
{
    (void)state;
    const char *body =
        "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"77\",\"continue\":\"next\"},"
        "\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}";
    json_t *doc = NULL;
    struct kube_list_page pg;
    char err[128];
    assert_int_equal(kube_list_page_decode(body, strlen(body), &doc, &pg, err, sizeof err), 0);
    assert_int_equal(json_array_size(pg.items), 2);
    assert_string_equal(pg.resource_version, "77");
    assert_string_equal(pg.continue_token, "next");
    json_decref(doc);
    body = "{\"items\":[]}";
    assert_int_equal(kube_list_page_decode(body, strlen(body), &doc, &pg, err, sizeof err), 0);
    assert_string_equal(pg.continue_token, "");
    assert_string_equal(pg.resource_version, "");
    json_decref(doc);
    body = "{\"kind\":\"Status\"}";
    assert_int_equal(kube_list_page_decode(body, strlen(body), &doc, &pg, err, sizeof err), SS_EPARSE);
    assert_null(doc);
    assert_non_null(strstr(err, "no items"));
    assert_int_equal(kube_list_page_decode("{", 1, &doc, &pg, err, sizeof err), SS_EPARSE);
    assert_int_equal(kube_list_page_decode(NULL, 0, &doc, &pg, err, sizeof err), SS_EPARSE);
}

static void test_watch_event_decode(void **state)
{
    (void)state;
    json_t *doc;
    struct kube_watch_event ev;
    char err[128];
    const char *l =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"9\"}}}";
    assert_int_equal(kube_watch_event_decode(l, strlen(l), &doc, &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, KUBE_EVENT_MODIFIED);
    assert_string_equal(ev.type_name, "MODIFIED");
    assert_string_equal(ev.resource_version, "9");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev.object, "metadata"), "name")),
                        "a");
    json_decref(doc);
    l = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"message\":\"too old resource "
        "version\"}}";
    assert_int_equal(kube_watch_event_decode(l, strlen(l), &doc, &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, KUBE_EVENT_ERROR);
    assert_int_equal(ev.code, 410);
    assert_string_equal(ev.message, "too old resource version");
    json_decref(doc);
    l = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}";
    assert_int_equal(kube_watch_event_decode(l, strlen(l), &doc, &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, KUBE_EVENT_BOOKMARK);
    assert_string_equal(ev.resource_version, "12");
    json_decref(doc);
    l = "{\"type\":\"SOMETHING\",\"object\":{}}";
    assert_int_equal(kube_watch_event_decode(l, strlen(l), &doc, &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, KUBE_EVENT_UNKNOWN);
    assert_string_equal(ev.resource_version, "");
    json_decref(doc);
    static const char *const bad[] = {"{\"type\":\"ADDED\"}", "{\"object\":{}}",
                                      "{\"type\":\"ADDED\",\"object\":1}", "not json",
                                      "{\"type\":\"\",\"object\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kube_watch_event_decode(bad[i], strlen(bad[i]), &doc, &ev, err, sizeof err),
                         SS_EPARSE);
        assert_null(doc);
    }
}

struct lines {
    char got[8][64];
    int n;
    int stop_at; /* 1-based line to stop at, 0 = never */
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct lines *l = ud;
    if (l->n < 8)
        snprintf(l->got[l->n], sizeof l->got[0], "%.*s", (int)len, line);
    l->n++;
    return l->stop_at && l->n == l->stop_at ? 42 : 0;
}

/* Lines split anywhere across chunks, CRLF, blank lines, the bound on one event,
 * and a callback that ends the stream. */
static void test_watch_stream(void **state)
{
    (void)state;
    struct kube_watch_stream st;
    kube_watch_stream_init(&st, 16);
    struct lines l = {0};
    const char *data = "one\r\n\ntwo  \nthr";
    for (const char *p = data; *p; p++) /* one byte at a time */
        assert_int_equal(kube_watch_stream_feed(&st, p, 1, on_line, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.got[0], "one");
    assert_string_equal(l.got[1], "two");
    assert_int_equal(kube_watch_stream_feed(&st, "ee\nfour\nfi", 10, on_line, &l), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.got[2], "three");
    assert_string_equal(l.got[3], "four");
    assert_int_equal(kube_watch_stream_feed(&st, "", 0, on_line, &l), 0);
    /* "fi" + 15 more bytes without a newline: over the bound of 16 */
    assert_int_equal(kube_watch_stream_feed(&st, "vvvvvvvvvvvvvvv", 15, on_line, &l), SS_ELIMIT);
    kube_watch_stream_reset(&st);
    l = (struct lines){.stop_at = 2};
    assert_int_equal(kube_watch_stream_feed(&st, "a\nb\nc\n", 6, on_line, &l), 42);
    assert_int_equal(l.n, 2); /* c never delivered */
    kube_watch_stream_free(&st);
    kube_watch_stream_free(&st); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kubeconfig_current_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_files_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_cert_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_yaml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_order, setup, teardown),
        cmocka_unit_test(test_error_403_rbac),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test(test_workload_annotations),
        cmocka_unit_test(test_kubeconfig_null_path),
        cmocka_unit_test_setup_teardown(test_kubeconfig_sd_cases, setup, teardown),
        cmocka_unit_test(test_config_from_url),
        cmocka_unit_test(test_watch_url),
        cmocka_unit_test(test_list_page),
        cmocka_unit_test(test_watch_event_decode),
        cmocka_unit_test(test_watch_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
