/* test_promop.c: the ServiceMonitor/PodMonitor translator's edges (the golden cases
 * are in tests/integration/test_promop_golden.py): malformed monitors fail with an
 * error naming the object, secrets land in the config and never in an error, TLS file
 * paths, node-local ServiceMonitors, and every config the translator emits loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "promop.h"

static int fake_secret(void *ud, const char *ns, const char *name, const char *key, char **value, char *err,
                       size_t errlen)
{
    (void)ud;
    if (!strcmp(ns, "shop") && !strcmp(name, "creds")) {
        *value = strdup(!strcmp(key, "user") ? "alice" : "s3cr3t-value");
        return *value ? 0 : SS_ENOMEM;
    }
    snprintf(err, errlen, "forbidden: cannot get secrets in namespace %s", ns);
    return SS_ECONFIG;
}

static int run(const char *json, const struct promop_opts *o, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *obj = json_loads(json, 0, &je);
    assert_non_null(obj);
    int rc = promop_translate(obj, o, out, err, errlen);
    json_decref(obj);
    return rc;
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":3}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":[7]}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"selector\":{"
        "\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"Near\"}]},\"endpoints\":[{\"port\":\"web\"}]}}",
        "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"podMetricsEndpoints\":[{\"port\":\"web\",\"relabelings\":[{\"modulus\":\"x\"}]}]}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":[{\"port\":\"web\",\"scheme\":\"gopher\"}]}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":[{\"port\":\"web\",\"oauth2\":{}}]}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":[{\"port\":\"web\",\"tlsConfig\":{\"ca\":{\"secret\":{\"name\":\"x\",\"key\":\"y\"}}}}"
        "]}}",
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"a\",\"namespace\":\"shop\"},\"spec\":{"
        "\"targetLabels\":[1],\"endpoints\":[{\"port\":\"web\"}]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *out = (json_t *)1;
        char err[512] = "";
        assert_true(run(bad[i], NULL, &out, err, sizeof err) < 0);
        assert_null(out);
        assert_non_null(strstr(err, "ServiceMonitor shop/a:") ? err : strstr(err, "PodMonitor shop/a:"));
    }
    json_t *out;
    char err[512];
    assert_int_equal(run("{\"kind\":\"Pod\"}", NULL, &out, err, sizeof err), SS_EPARSE);
    assert_int_equal(run("[]", NULL, &out, err, sizeof err), SS_EPARSE);
    assert_int_equal(run("{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"a\"},\"spec\":{}}", NULL, &out,
                         err, sizeof err),
                     SS_EPARSE);
}

static void test_secrets_and_tls(void **state)
{
    (void)state;
    struct promop_opts o = {.get_secret = fake_secret};
    const char *sm =
        "{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"app\",\"namespace\":\"shop\"},\"spec\":{"
        "\"endpoints\":[{\"port\":\"web\",\"scheme\":\"https\",\"tlsConfig\":{\"caFile\":\"/etc/ca.pem\","
        "\"serverName\":\"app.shop\",\"insecureSkipVerify\":false},"
        "\"basicAuth\":{\"username\":{\"name\":\"creds\",\"key\":\"user\"},\"password\":{\"name\":\"creds\","
        "\"key\":"
        "\"pass\"}}},"
        "{\"port\":\"admin\",\"params\":{\"module\":[\"a\",\"b\"]},"
        "\"authorization\":{\"type\":\" Token \",\"credentials\":{\"name\":\"creds\",\"key\":\"tok\"}}},"
        "{\"targetPort\":8081,\"bearerTokenFile\":\"/var/run/token\"}]}}";
    json_t *out = NULL;
    char err[512] = "";
    assert_int_equal(run(sm, &o, &out, err, sizeof err), 0);
    assert_int_equal(json_array_size(out), 3);
    json_t *a = json_array_get(out, 0), *b = json_array_get(out, 1), *t3 = json_array_get(out, 2);
    assert_string_equal(json_string_value(json_object_get(a, "job_name")), "serviceMonitor/shop/app/0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "basic_auth"), "password")),
                        "s3cr3t-value");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "tls_config"), "ca_file")),
                        "/etc/ca.pem");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "authorization"), "type")),
                        "Token");
    assert_string_equal(json_string_value(json_object_get(t3, "bearer_token_file")), "/var/run/token");

    /* what the translator emits, the loader takes */
    json_t *doc = json_pack("{s:O}", "scrape_configs", out);
    char *text = json_dumps(doc, JSON_PRESERVE_ORDER);
    struct cfg *c = NULL;
    int lrc = cfg_load_string(text, strlen(text), "<monitors>", &c, err, sizeof err);
    if (lrc)
        print_error("%s\n", err);
    assert_int_equal(lrc, 0);
    assert_int_equal(c->nscrape_configs, 3);
    assert_string_equal(c->scrape_configs[0].http.basic_auth_password, "s3cr3t-value");
    cfg_free(c);
    free(text);
    json_decref(doc);
    promop_json_wipe(out);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "basic_auth"), "password")), "");
    json_decref(out);

    /* a Secret we may not read: the error names the object and the secret, not a value */
    const char *denied =
        "{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"app\",\"namespace\":\"other\"},\"spec\":{"
        "\"podMetricsEndpoints\":[{\"port\":\"web\",\"basicAuth\":{\"username\":{\"name\":\"creds\",\"key\":"
        "\"user\"},\"password\":{\"name\":\"creds\",\"key\":\"pass\"}}}]}}";
    out = NULL;
    assert_int_equal(run(denied, &o, &out, err, sizeof err), SS_ECONFIG);
    assert_null(out);
    assert_non_null(strstr(err, "PodMonitor other/app: basicAuth.username: secret other/creds key user"));
    assert_null(strstr(err, "s3cr3t"));
    /* without a secret reader */
    assert_int_equal(run(denied, NULL, &out, err, sizeof err), SS_ECONFIG);
}

static void test_node_local_service_monitor(void **state)
{
    (void)state;
    struct promop_opts o = {.node_name = "node-a", .shards = 3, .shard = "1"};
    json_t *out = NULL;
    char err[512];
    assert_int_equal(
        run("{\"kind\":\"ServiceMonitor\",\"metadata\":{\"name\":\"app\",\"namespace\":\"shop\"},"
            "\"spec\":{\"namespaceSelector\":{\"any\":true},\"endpoints\":[{\"port\":\"web\"}]}}",
            &o, &out, err, sizeof err),
        0);
    json_t *cfg = json_array_get(out, 0);
    json_t *sd = json_array_get(json_object_get(cfg, "kubernetes_sd_configs"), 0);
    assert_null(json_object_get(sd, "namespaces")); /* any: all namespaces */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(sd, "selectors"), 0), "field")),
        "spec.nodeName=node-a");
    char *s = json_dumps(json_object_get(cfg, "relabel_configs"), 0);
    assert_non_null(strstr(s, "\"__meta_kubernetes_endpoint_node_name\"], \"regex\": \"node-a\""));
    assert_null(strstr(s, "hashmod")); /* node-local does not shard */
    free(s);
    json_decref(out);

    /* sharding alone: the operator's three rules, our shard number */
    struct promop_opts sh = {.shards = 3, .shard = "1"};
    assert_int_equal(run("{\"kind\":\"PodMonitor\",\"metadata\":{\"name\":\"app\",\"namespace\":\"shop\"},"
                         "\"spec\":{\"podMetricsEndpoints\":[{\"port\":\"web\"}]}}",
                         &sh, &out, err, sizeof err),
                     0);
    s = json_dumps(json_object_get(json_array_get(out, 0), "relabel_configs"), 0);
    assert_non_null(strstr(s, "\"modulus\": 3, \"action\": \"hashmod\""));
    assert_non_null(strstr(s, "\"regex\": \"1;|.+;.+\""));
    free(s);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_secrets_and_tls),
        cmocka_unit_test(test_node_local_service_monitor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
