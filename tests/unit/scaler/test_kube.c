/* test_kube.c: the Kubernetes client: kubeconfig reading (contexts, CA and client
 * certificates as data or files, tokens, namespaces, merged files), the in-cluster
 * service account, the load order, the error messages (403 names the RBAC rule), and
 * the requests themselves through a scripted transport (paths, headers, the token
 * re-read on every request, the merge patch, answers that are not Scale objects). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "scaler.h"

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
    assert_string_equal(c->token, "s3cr3t-token");
    assert_null(c->token_file);
    assert_non_null(c->ca_pem);
    assert_int_equal(c->ca_pem_len, 9);
    assert_memory_equal(c->ca_pem, "hello CA\n", 9);
    assert_null(c->ca_file);
    assert_false(c->insecure_skip_verify);
    assert_null(c->cert_pem);
    assert_null(c->cert_file);
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
    assert_string_equal(c->ca_file, want); /* relative to the kubeconfig's directory */
    snprintf(want, sizeof want, "%s/certs/client.pem", tmp);
    assert_string_equal(c->cert_file, want);
    assert_string_equal(c->key_file, "/abs/client.key");
    assert_true(c->insecure_skip_verify);
    assert_null(c->token);
    kube_config_free(c);
}

static void test_kubeconfig_cert_data(void **state)
{
    (void)state;
    write_file("config", KUBECONFIG_MAIN);
    struct kube_config *c = NULL;
    char err[512];
    assert_int_equal(kube_config_from_kubeconfig(path_of("config"), "certdata", &c, err, sizeof err), 0);
    assert_int_equal(c->cert_pem_len, 9);
    assert_memory_equal(c->cert_pem, "cert PEM\n", 9);
    assert_int_equal(c->key_pem_len, 8);
    assert_memory_equal(c->key_pem, "key PEM\n", 8);
    assert_null(c->cert_file); /* data wins over the file, as in client-go */
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
    assert_string_equal(c->token_file, want);
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
    assert_string_equal(c->token, "from-a");
    assert_string_equal(c->ns, "from-b");
    kube_config_free(c);
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
    assert_string_equal(c->token_file, want);
    snprintf(want, sizeof want, "%s/sa/ca.crt", tmp);
    assert_string_equal(c->ca_file, want);
    assert_null(c->token); /* never cached: read for each request */
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
    s->nheaders = req->nheaders < 8 ? req->nheaders : 8;
    for (size_t i = 0; i < s->nheaders; i++)
        snprintf(s->headers[i], sizeof s->headers[i], "%s", req->headers[i]);
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
    struct kube_config cfg = {.server = "http://127.0.0.1:1",
                              .token_file = (char *)path_of("tok"),
                              .token = "static-token-not-used"};
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
    struct kube_config cfg2 = {.server = "https://k:6443", .token = "tok-static"};
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
    struct kube_config cfg3 = {.server = "http://127.0.0.1:1"};
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
    struct kube_config cfg = {.server = "http://127.0.0.1:1", .token = "t"};
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
    assert_int_equal(kube_get_workload(kc, &DEPLOY, &w, &e), 0);
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
    assert_int_equal(kube_get_workload(kc, &DEPLOY, &w, &e), 0);
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
    assert_int_equal(kube_get_workload(kc, &DEPLOY, &w, &e), 0);
    assert_int_equal(w.n_annotations, 8);
    ss_buf_free(&big);

    s.reply = "{\"kind\":\"Status\"}";
    assert_int_equal(kube_get_workload(kc, &DEPLOY, &w, &e), SS_EPARSE);
    s.status = 403;
    assert_int_equal(kube_get_workload(kc, &DEPLOY, &w, &e), SS_EAUTH);
    assert_non_null(strstr(e.message, "resources [\"deployments\"], verbs [\"get\"]"));
    kube_client_free(kc);
}

static void test_read_secret_file(void **state)
{
    (void)state;
    write_file("s1", "abc\r\n\n");
    char *s = kube_read_secret_file(path_of("s1"), 0);
    assert_string_equal(s, "abc");
    ss_free_secret(s);
    write_file("s2", "\n");
    assert_null(kube_read_secret_file(path_of("s2"), 0));
    write_file("s3", "0123456789");
    assert_null(kube_read_secret_file(path_of("s3"), 5));
    assert_null(kube_read_secret_file(path_of("none"), 0));
    assert_null(kube_read_secret_file(NULL, 0));
    struct kube_config *c = (struct kube_config *)0x1;
    char err[128];
    assert_int_equal(kube_config_from_kubeconfig(NULL, NULL, &c, err, sizeof err), SS_EINVAL);
    assert_null(c);
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
        cmocka_unit_test_setup_teardown(test_in_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_order, setup, teardown),
        cmocka_unit_test(test_error_403_rbac),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test(test_workload_annotations),
        cmocka_unit_test_setup_teardown(test_read_secret_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
