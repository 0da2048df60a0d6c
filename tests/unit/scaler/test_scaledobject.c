/* test_scaledobject.c: the KEDA manifest loader: a realistic multi-document file,
 * defaults, every validation error (with its line:column), unknown fields as
 * warnings, YAML syntax errors, limits, and file loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "scaler.h"

static const char multi_doc[] =
    "# pasted from the cluster\n"
    "apiVersion: keda.sh/v1alpha1\n"
    "kind: TriggerAuthentication\n"
    "metadata:\n"
    "  name: amp-auth\n"
    "  namespace: shop\n"
    "spec:\n"
    "  podIdentity:\n"
    "    provider: aws\n"
    "    roleArn: arn:aws:iam::123456789012:role/keda-amp\n"
    "---\n"
    "apiVersion: keda.sh/v1alpha1\n"
    "kind: ScaledObject\n"
    "metadata:\n"
    "  name: checkout\n"
    "  namespace: shop\n"
    "  labels: {team: payments}\n"
    "  annotations:\n"
    "    autoscaling.keda.sh/paused: \"false\"\n"
    "spec:\n"
    "  scaleTargetRef:\n"
    "    apiVersion: apps/v1\n"
    "    kind: StatefulSet\n"
    "    name: checkout\n"
    "  pollingInterval: 15\n"
    "  cooldownPeriod: 120\n"
    "  initialCooldownPeriod: 60\n"
    "  idleReplicaCount: 0\n"
    "  minReplicaCount: 2\n"
    "  maxReplicaCount: 40\n"
    "  fallback:\n"
    "    failureThreshold: 3\n"
    "    replicas: 6\n"
    "    behavior: currentReplicasIfHigher\n"
    "  advanced:\n"
    "    restoreToOriginalReplicaCount: true\n"
    "    horizontalPodAutoscalerConfig:\n"
    "      name: checkout-hpa\n"
    "      behavior:\n"
    "        scaleDown:\n"
    "          stabilizationWindowSeconds: 60\n"
    "          policies:\n"
    "          - type: Pods\n"
    "            value: 2\n"
    "            periodSeconds: 30\n"
    "        scaleUp:\n"
    "          selectPolicy: Min\n"
    "  triggers:\n"
    "  - type: prometheus\n"
    "    name: rps\n"
    "    metadata:\n"
    "      serverAddress: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\n"
    "      query: sum(rate(http_requests_total{app=\"checkout\"}[2m]))\n"
    "      threshold: '100.5'\n"
    "      activationThreshold: '5.5'\n"
    "      ignoreNullValues: \"false\"\n"
    "      unsafeSsl: \"true\"\n"
    "      timeout: \"2500\"\n"
    "      customHeaders: X-Scope-OrgID=tenant-1, X-Client-Id = cid\n"
    "      queryParameters: dedup=true,partial_response=false\n"
    "      namespace: shop\n"
    "      awsRegion: eu-west-1\n"
    "    authenticationRef:\n"
    "      name: amp-auth\n"
    "  - type: prometheus\n"
    "    metricType: Value\n"
    "    metadata:\n"
    "      serverAddress: http://127.0.0.1:9090\n"
    "      query: sum(queue_depth)\n"
    "      threshold: \"50\"\n"
    "---\n"
    "# a Deployment in the same file is skipped\n"
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata: {name: checkout}\n"
    "---\n";

static void test_multi_doc(void **state)
{
    (void)state;
    struct scaler_config *cfg = NULL;
    char err[1024];
    int rc = scaler_config_load_string(multi_doc, strlen(multi_doc), "shop.yaml", &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg->n_objects, 1);
    assert_int_equal(cfg->n_auths, 1);

    const struct scaler_object *so = scaler_config_find(cfg, "shop", "checkout");
    assert_non_null(so);
    assert_null(scaler_config_find(cfg, NULL, "checkout")); /* "default" namespace */
    assert_string_equal(so->target_kind, "StatefulSet");
    assert_string_equal(so->target_name, "checkout");
    assert_string_equal(so->target_api_version, "apps/v1");
    assert_int_equal(so->polling_interval_s, 15);
    assert_int_equal(so->cooldown_period_s, 120);
    assert_int_equal(so->initial_cooldown_period_s, 60);
    assert_true(so->has_idle_replicas);
    assert_int_equal(so->idle_replicas, 0);
    assert_int_equal(so->min_replicas, 2);
    assert_int_equal(so->max_replicas, 40);
    assert_true(so->has_fallback);
    assert_int_equal(so->fallback_failure_threshold, 3);
    assert_int_equal(so->fallback_replicas, 6);
    assert_int_equal(so->fallback_behavior, SCALER_FALLBACK_CURRENT_REPLICAS_IF_HIGHER);
    assert_int_equal(so->n_annotations, 1);
    assert_string_equal(so->annotations[0].key, "autoscaling.keda.sh/paused");
    assert_string_equal(so->annotations[0].value, "false");

    assert_true(so->has_behavior);
    assert_int_equal(so->scale_down.stabilization_window_seconds, 60);
    assert_int_equal(so->scale_down.n_policies, 1);
    assert_int_equal(so->scale_down.policies[0].type, SCALER_POLICY_PODS);
    assert_int_equal(so->scale_down.policies[0].value, 2);
    assert_int_equal(so->scale_down.policies[0].period_seconds, 30);
    /* scaleUp: only selectPolicy given, the rest are Kubernetes defaults */
    assert_int_equal(so->scale_up.select_policy, SCALER_SELECT_MIN);
    assert_int_equal(so->scale_up.stabilization_window_seconds, 0);
    assert_int_equal(so->scale_up.n_policies, 2);
    assert_int_equal(so->scale_up.policies[0].value, 4);
    assert_int_equal(so->scale_up.policies[1].type, SCALER_POLICY_PERCENT);
    assert_int_equal(so->scale_up.policies[1].value, 100);

    assert_int_equal(so->n_triggers, 2);
    const struct scaler_trigger *t = &so->triggers[0];
    assert_string_equal(t->name, "rps");
    assert_int_equal(t->metric_type, SCALER_METRIC_AVERAGE_VALUE);
    assert_string_equal(t->query, "sum(rate(http_requests_total{app=\"checkout\"}[2m]))");
    assert_true(t->threshold == 100.5);
    assert_true(t->activation_threshold == 5.5);
    assert_false(t->ignore_null_values);
    assert_true(t->unsafe_ssl);
    assert_int_equal(t->timeout_ms, 2500);
    assert_int_equal(t->n_custom_headers, 2);
    assert_string_equal(t->custom_headers[0].key, "X-Scope-OrgID");
    assert_string_equal(t->custom_headers[0].value, "tenant-1");
    assert_string_equal(t->custom_headers[1].key, "X-Client-Id");
    assert_string_equal(t->custom_headers[1].value, "cid");
    assert_int_equal(t->n_query_parameters, 2);
    assert_string_equal(t->query_parameters[1].key, "partial_response");
    assert_string_equal(t->prom_namespace, "shop");
    assert_string_equal(t->aws_region, "eu-west-1");
    assert_string_equal(t->auth_ref_name, "amp-auth");
    assert_int_equal(t->line, 49);
    assert_int_equal(t->column, 5);

    t = &so->triggers[1];
    assert_null(t->name);
    assert_int_equal(t->metric_type, SCALER_METRIC_VALUE);
    assert_true(t->ignore_null_values); /* KEDA default */
    assert_false(t->unsafe_ssl);
    assert_true(t->activation_threshold == 0);
    assert_int_equal(t->timeout_ms, 0);

    const struct scaler_trigger_auth *ta = scaler_config_find_auth(cfg, "shop", "amp-auth");
    assert_non_null(ta);
    assert_string_equal(ta->pod_identity_provider, "aws");
    assert_string_equal(ta->role_arn, "arn:aws:iam::123456789012:role/keda-amp");

    /* the Deployment is reported, nothing else */
    assert_int_equal(cfg->n_warnings, 1);
    assert_non_null(strstr(cfg->warnings[0], "kind Deployment skipped"));
    assert_non_null(strstr(cfg->warnings[0], "shop.yaml:74:7"));
    scaler_config_free(cfg);
}

static const char minimal[] = "apiVersion: keda.sh/v1alpha1\n"
                              "kind: ScaledObject\n"
                              "metadata:\n"
                              "  name: m\n"
                              "spec:\n"
                              "  scaleTargetRef:\n"
                              "    name: app\n"
                              "  triggers:\n"
                              "  - type: prometheus\n"
                              "    metadata:\n"
                              "      serverAddress: http://127.0.0.1:9090\n"
                              "      query: up\n"
                              "      threshold: '3'\n";

static void test_defaults(void **state)
{
    (void)state;
    struct scaler_config *cfg = NULL;
    char err[512];
    assert_int_equal(scaler_config_load_string(minimal, strlen(minimal), NULL, &cfg, err, sizeof err), 0);
    const struct scaler_object *so = &cfg->objects[0];
    assert_string_equal(so->ns, "default");
    assert_string_equal(so->target_kind, "Deployment");
    assert_string_equal(so->target_api_version, "apps/v1");
    assert_int_equal(so->polling_interval_s, 30);
    assert_int_equal(so->cooldown_period_s, 300);
    assert_int_equal(so->initial_cooldown_period_s, 0);
    assert_int_equal(so->min_replicas, 0);
    assert_int_equal(so->max_replicas, 100);
    assert_false(so->has_idle_replicas);
    assert_false(so->has_fallback);
    assert_false(so->has_behavior);
    assert_int_equal(so->scale_down.stabilization_window_seconds, 300);
    assert_int_equal(so->triggers[0].metric_type, SCALER_METRIC_AVERAGE_VALUE);
    assert_int_equal(cfg->n_warnings, 0);
    assert_ptr_equal(scaler_config_find(cfg, "default", "m"), so);
    scaler_config_free(cfg);
    scaler_config_free(NULL);
}

/* Replace the first occurrence of `from` in the minimal manifest by `to`. */
static char *edit(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    assert_non_null(at);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return s;
}

struct bad {
    const char *from, *to; /* edit of the minimal manifest */
    const char *message;   /* substring of the error */
    const char *where;     /* "line:col" expected in the error, or NULL */
};

static const struct bad bad_cases[] = {
    {"      serverAddress: http://127.0.0.1:9090\n", "      serverAddress: ''\n",
     "missing required parameter \"serverAddress\" in [triggerMetadata]", "11:22"},
    {"      serverAddress: http://127.0.0.1:9090\n", "", "missing required parameter \"serverAddress\"",
     "11:7"},
    {"      query: up\n", "      query: '   '\n", "missing required parameter \"query\"", "12:14"},
    {"      threshold: '3'\n", "", "missing required parameter \"threshold\"", NULL},
    {"      threshold: '3'\n", "      threshold: ''\n", "missing required parameter \"threshold\"", "13:18"},
    {"      threshold: '3'\n", "      threshold: 'abc'\n", "unable to set param \"threshold\" value \"abc\"",
     "13:18"},
    {"      threshold: '3'\n", "      threshold: '+3'\n", "unable to set param \"threshold\"", NULL},
    {"      threshold: '3'\n", "      threshold: '.5'\n", "unable to set param \"threshold\"", NULL},
    {"      threshold: '3'\n", "      threshold: 'NaN'\n", "unable to set param \"threshold\"", NULL},
    {"      threshold: '3'\n", "      threshold: '1e999'\n", "unable to set param \"threshold\"", NULL},
    {"      threshold: '3'\n", "      threshold: '0.0001'\n", "must be at least 0.001", NULL},
    {"      threshold: '3'\n", "      threshold: '-2'\n", "must be at least 0.001", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      activationThreshold: x\n",
     "unable to set param \"activationThreshold\" value \"x\"", "14:28"},
    {"      threshold: '3'\n", "      threshold: '3'\n      customHeaders: a=b,c\n",
     "unable to set param \"customHeaders\": element 2 is not in the format key=value", "14:22"},
    {"      threshold: '3'\n", "      threshold: '3'\n      customHeaders: Authorization=Bearer=x\n",
     "\"customHeaders\": element 1 is not", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      queryParameters: a=b=c\n",
     "unable to set param \"queryParameters\" value \"a=b=c\": expected format key=value, got \"a=b=c\"",
     NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      queryParameters: 'a=b,'\n",
     "expected format key=value, got \"\"", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      customHeaders: 'bad header=x'\n",
     "is not a valid HTTP header", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      queryParameters: novalue\n",
     "unable to set param \"queryParameters\"", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      timeout: '-5'\n",
     "timeout must be greater than or equal to 0", "14:16"},
    {"      threshold: '3'\n", "      threshold: '3'\n      timeout: 1.5s\n",
     "unable to set param \"timeout\"", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      ignoreNullValues: 'maybe'\n",
     "unable to set param \"ignoreNullValues\" value \"maybe\"", NULL},
    {"      threshold: '3'\n", "      threshold: '3'\n      unsafeSsl: 'True'\n",
     "unable to set param \"unsafeSsl\"", NULL},
    {"  - type: prometheus\n", "  - type: cpu\n",
     "trigger type \"cpu\" is not supported: scrapeship implements only the prometheus scaler", "9:11"},
    {"  - type: prometheus\n", "  - metricType: Value\n", "spec.triggers[0].type is required", NULL},
    {"  - type: prometheus\n", "  - type: prometheus\n    metricType: Utilization\n",
     "'Utilization' metric type is unsupported", "10:17"},
    {"  - type: prometheus\n", "  - type: prometheus\n    metricType: Sum\n",
     "metricType: Unsupported value: \"Sum\"", NULL},
    {"spec:\n", "spec:\n  minReplicaCount: 5\n  maxReplicaCount: 3\n",
     "MinReplicaCount=5 must be less than MaxReplicaCount=3", "7:20"},
    {"spec:\n", "spec:\n  maxReplicaCount: 0\n", "MaxReplicaCount=0", NULL},
    {"spec:\n", "spec:\n  minReplicaCount: 2\n  idleReplicaCount: 2\n",
     "IdleReplicaCount=2 must be less than MinReplicaCount=2", "7:21"},
    {"spec:\n", "spec:\n  idleReplicaCount: 0\n", "IdleReplicaCount=0 must be less than MinReplicaCount=0",
     NULL},
    {"spec:\n", "spec:\n  minReplicaCount: -1\n", "minReplicaCount must be greater than or equal to 0", NULL},
    {"spec:\n", "spec:\n  minReplicaCount: '2'\n", "minReplicaCount must be an integer", "6:20"},
    {"spec:\n", "spec:\n  cooldownPeriod: 1.5\n", "cooldownPeriod must be an integer", NULL},
    {"spec:\n", "spec:\n  pollingInterval: 0\n", "pollingInterval must be greater than or equal to 1", NULL},
    {"spec:\n", "spec:\n  fallback: {failureThreshold: -1, replicas: 2}\n",
     "FailureThreshold=-1 & Replicas=2 must both be greater than or equal to 0", NULL},
    {"spec:\n", "spec:\n  fallback: {replicas: 2}\n", "spec.fallback.failureThreshold is required", NULL},
    {"spec:\n", "spec:\n  fallback: {failureThreshold: 1, replicas: 2, behavior: sometimes}\n",
     "spec.fallback.behavior: Unsupported value: \"sometimes\"", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleUp: {selectPolicy: Most}}}}\n",
     "selectPolicy: Unsupported value: \"Most\"", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: "
     "3601}}}}\n",
     "stabilizationWindowSeconds must be less than or equal to 3600", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {policies: []}}}}\n",
     "must specify at least one Policy", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {policies: [{type: Pods, "
     "value: 0, periodSeconds: 15}]}}}}\n",
     "value must be greater than or equal to 1", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {policies: [{type: Pods, "
     "value: 1, periodSeconds: 1801}]}}}}\n",
     "periodSeconds must be less than or equal to 1800", NULL},
    {"spec:\n",
     "spec:\n  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleUp: {policies: [{type: Replicas, "
     "value: 1, periodSeconds: 15}]}}}}\n",
     "type: Unsupported value: \"Replicas\"", NULL},
    {"  scaleTargetRef:\n    name: app\n", "", "ScaledObject.spec.scaleTargetRef is not set", "6:3"},
    {"    name: app\n", "    kind: DaemonSet\n    name: app\n",
     "spec.scaleTargetRef.kind \"DaemonSet\" is not supported", "7:11"},
    {"    name: app\n", "    kind: Deployment\n", "spec.scaleTargetRef.name is required", NULL},
    {"  name: m\n", "  namespace: x\n", "metadata.name is required", NULL},
    {"apiVersion: keda.sh/v1alpha1\n", "apiVersion: keda.sh/v1\n",
     "ScaledObject apiVersion must be keda.sh/v1alpha1", "1:13"},
    {"  triggers:\n", "  triggers: []\n  old:\n", "no triggers defined in the ScaledObject/ScaledJob", NULL},
    {"      query: up\n", "      query: up\n      query: down\n", "duplicate key \"query\"", "13:7"},
    {"      query: up\n", "      query: [up]\n", "query must be a string, not a list", NULL},
    {"  - type: prometheus\n",
     "  - type: prometheus\n    name: a\n    metadata: {serverAddress: x, query: q, threshold: '1'}\n  - "
     "type: prometheus\n    name: a\n",
     "triggerName \"a\" is defined multiple times", NULL},
};

static void test_validation_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad *b = &bad_cases[i];
        char *text = edit(minimal, b->from, b->to);
        struct scaler_config *cfg = NULL;
        char err[2048];
        int rc = scaler_config_load_string(text, strlen(text), "so.yaml", &cfg, err, sizeof err);
        bool ok = rc == SS_ECONFIG && cfg == NULL && strstr(err, b->message) != NULL;
        if (ok && b->where) {
            char where[64];
            snprintf(where, sizeof where, "so.yaml:%s: ", b->where);
            ok = strstr(err, where) != NULL;
        }
        if (!ok)
            fprintf(stderr, "case %zu (%s): rc=%d err=\n%s\n--- manifest:\n%s\n", i, b->message, rc, err,
                    text);
        free(text);
        assert_true(ok);
    }
}

static void test_unknown_fields_warn(void **state)
{
    (void)state;
    static const char text[] = "apiVersion: keda.sh/v1alpha1\n"
                               "kind: ScaledObject\n"
                               "metadata:\n"
                               "  name: w\n"
                               "  colour: blue\n"
                               "spec:\n"
                               "  scaleTargetRef: {name: app, envSourceContainerName: c}\n"
                               "  futureField: 1\n"
                               "  triggers:\n"
                               "  - type: prometheus\n"
                               "    useCachedMetrics: true\n"
                               "    metadata:\n"
                               "      serverAddress: http://127.0.0.1:9090\n"
                               "      query: up\n"
                               "      threshold: 3\n"
                               "      metricName: legacy\n"
                               "      serverAddressFromEnv: PROM\n"
                               "      flavour: vanilla\n"
                               "    authenticationRef: {name: missing}\n"
                               "status:\n"
                               "  lastActiveTime: x\n";
    static const char *const expect[] = {
        "w.yaml:5:3: metadata.colour: unknown field, ignored",
        "w.yaml:8:3: spec.futureField: unknown field, ignored",
        "w.yaml:15:18: spec.triggers[0].metadata.threshold: unquoted 3 is not a string",
        "w.yaml:16:7: spec.triggers[0].metadata.metricName was removed in KEDA 2.12",
        "w.yaml:17:7: spec.triggers[0].metadata.serverAddressFromEnv: values from container environment",
        "w.yaml:18:7: spec.triggers[0].metadata.flavour: unknown prometheus metadata",
        "w.yaml:10:5: spec.triggers[0].authenticationRef: TriggerAuthentication default/missing not found",
    };
    struct scaler_config *cfg = NULL;
    char err[1024];
    int rc = scaler_config_load_string(text, sizeof text - 1, "w.yaml", &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        fprintf(stderr, "warning: %s\n", cfg->warnings[i]);
    assert_int_equal(cfg->n_warnings, sizeof expect / sizeof expect[0]);
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        bool found = false;
        for (size_t w = 0; w < cfg->n_warnings; w++)
            if (strstr(cfg->warnings[w], expect[i]))
                found = true;
        if (!found)
            fprintf(stderr, "missing warning: %s\n", expect[i]);
        assert_true(found);
    }
    assert_true(cfg->objects[0].triggers[0].threshold == 3);
    scaler_config_free(cfg);
}

static void test_trigger_auth(void **state)
{
    (void)state;
    static const char text[] = "apiVersion: keda.sh/v1alpha1\n"
                               "kind: TriggerAuthentication\n"
                               "metadata: {name: t}\n"
                               "spec:\n"
                               "  secretTargetRef:\n"
                               "  - {parameter: bearerToken, name: s, key: k}\n"
                               "  hashiCorpVault: {}\n"
                               "  podIdentity: {provider: aws-eks}\n";
    struct scaler_config *cfg = NULL;
    char err[512];
    assert_int_equal(scaler_config_load_string(text, sizeof text - 1, "ta.yaml", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->n_auths, 1);
    assert_string_equal(cfg->auths[0].ns, "default");
    assert_string_equal(cfg->auths[0].pod_identity_provider, "aws-eks");
    assert_null(cfg->auths[0].role_arn);
    assert_int_equal(cfg->n_warnings, 3);
    assert_non_null(strstr(cfg->warnings[0], "ta.yaml:5:3: spec.secretTargetRef is ignored"));
    assert_non_null(strstr(cfg->warnings[1], "spec.hashiCorpVault is not supported"));
    assert_non_null(strstr(cfg->warnings[2], "treated as \"aws\""));
    assert_non_null(scaler_config_find_auth(cfg, "default", "t"));
    assert_null(scaler_config_find_auth(cfg, "other", "t"));
    scaler_config_free(cfg);

    static const char dup[] = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\n"
                              "metadata: {name: t}\n---\n"
                              "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\n"
                              "metadata: {name: t}\n";
    assert_int_equal(scaler_config_load_string(dup, sizeof dup - 1, "d.yaml", &cfg, err, sizeof err),
                     SS_ECONFIG);
    assert_non_null(strstr(err, "d.yaml:5:1: TriggerAuthentication default/t is defined twice"));
}

static void expect_error(const char *text, int want_rc, const char *substr)
{
    struct scaler_config *cfg = NULL;
    char err[1024];
    int rc = scaler_config_load_string(text, strlen(text), "x.yaml", &cfg, err, sizeof err);
    if (rc != want_rc || !strstr(err, substr))
        fprintf(stderr, "want %d '%s', got %d '%s'\n", want_rc, substr, rc, err);
    assert_int_equal(rc, want_rc);
    assert_null(cfg);
    assert_non_null(strstr(err, substr));
}

static void test_yaml_errors_and_limits(void **state)
{
    (void)state;
    expect_error("kind: ScaledObject\nspec: [a\n", SS_EPARSE, "x.yaml:3:1: YAML:");
    expect_error("a: b\n c: d\n", SS_EPARSE, "x.yaml:2:3: YAML:");
    expect_error("kind: ScaledObject\nmetadata: *nope\n", SS_EPARSE, "unknown or recursive alias *nope");
    expect_error("a: &x [1, *x]\n", SS_EPARSE, "unknown or recursive alias *x");
    expect_error("- just\n- a list\n", SS_ECONFIG, "x.yaml:1:1: a Kubernetes manifest must be a mapping");
    expect_error("a: \"\\x00\"\nb: \x01\n", SS_EPARSE, "YAML:");

    /* nesting limit */
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[sizeof deep - 1] = '\0';
    deep[399] = ']';
    char *d = malloc(402);
    memcpy(d, deep, 400);
    d[400] = '\n';
    d[401] = '\0';
    expect_error(d, SS_ELIMIT, "nested deeper than 64 levels");
    free(d);

    /* input size limit */
    size_t big = SCALER_MAX_INPUT_BYTES + 1;
    char *b = malloc(big + 1);
    memset(b, '#', big);
    b[big] = '\0';
    expect_error(b, SS_ELIMIT, "limit");
    free(b);

    /* too many triggers */
    struct {
        char *p;
        size_t n;
    } s = {NULL, 0};
    FILE *f = open_memstream(&s.p, &s.n);
    fprintf(f, "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: m}\n"
               "spec:\n  scaleTargetRef: {name: a}\n  triggers:\n");
    for (int i = 0; i < SCALER_MAX_TRIGGERS + 1; i++)
        fprintf(f, "  - {type: prometheus, metadata: {serverAddress: x, query: q, threshold: '1'}}\n");
    fclose(f);
    expect_error(s.p, SS_ECONFIG, "spec.triggers has 33 entries (limit 32)");
    free(s.p);

    /* aliases work (and are not expanded into copies) */
    static const char alias[] =
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: m}\n"
        "spec:\n  scaleTargetRef: {name: a}\n  triggers:\n"
        "  - &t {type: prometheus, metadata: {serverAddress: x, query: q, threshold: '1'}}\n";
    struct scaler_config *cfg = NULL;
    char err[256];
    assert_int_equal(scaler_config_load_string(alias, sizeof alias - 1, NULL, &cfg, err, sizeof err), 0);
    scaler_config_free(cfg);

    /* empty input and empty documents are fine */
    assert_int_equal(scaler_config_load_string("", 0, NULL, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->n_objects, 0);
    scaler_config_free(cfg);
    assert_int_equal(scaler_config_load_string("---\n---\n# c\n", 12, NULL, &cfg, err, sizeof err), 0);
    scaler_config_free(cfg);

    /* duplicate ScaledObjects */
    char two[2048];
    snprintf(two, sizeof two, "%s---\n%s", minimal, minimal);
    expect_error(two, SS_ECONFIG, "ScaledObject default/m is defined twice (first at line 1)");

    /* bad arguments */
    assert_int_equal(scaler_config_load_string(NULL, 3, NULL, &cfg, err, sizeof err), SS_EINVAL);
    assert_int_equal(scaler_config_load_string("", 0, NULL, NULL, err, sizeof err), SS_EINVAL);
}

static void test_many_errors_are_capped(void **state)
{
    (void)state;
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    for (int i = 0; i < 100; i++)
        fprintf(f, "---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: m%d}\n", i);
    fclose(f);
    struct scaler_config *cfg = NULL;
    char err[16384];
    assert_int_equal(scaler_config_load_string(p, n, "m.yaml", &cfg, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "more errors"));
    free(p);
}

/* customHeaders carry tokens: a malformed list must not put them in the error. */
static void test_no_secret_in_errors(void **state)
{
    (void)state;
    char *text = edit(minimal, "      threshold: '3'\n",
                      "      threshold: '3'\n      customHeaders: Authorization=Bearer s3cr3t,oops\n");
    struct scaler_config *cfg = NULL;
    char err[1024];
    assert_int_equal(scaler_config_load_string(text, strlen(text), "s.yaml", &cfg, err, sizeof err),
                     SS_ECONFIG);
    assert_null(strstr(err, "s3cr3t"));
    assert_null(strstr(err, "oops"));
    free(text);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/scaler_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, multi_doc, strlen(multi_doc)), (ssize_t)strlen(multi_doc));
    close(fd);
    struct scaler_config *cfg = NULL;
    char err[512];
    assert_int_equal(scaler_config_load_file(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg->n_objects, 1);
    assert_non_null(strstr(cfg->warnings[0], path));
    scaler_config_free(cfg);
    unlink(path);
    assert_int_equal(scaler_config_load_file("/nonexistent/so.yaml", &cfg, err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "/nonexistent/so.yaml"));
    assert_null(cfg);
}

/* spec.advanced.scalingModifiers and the sync-period annotation: what loads, and
 * what KEDA's ValidateAndCompileScalingModifiers (and expr.Compile) refuse. */
static char *modifiers_doc(const char *modifiers, const char *annotations)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: m\n%s"
             "spec:\n  scaleTargetRef: {name: app}\n  advanced:\n    scalingModifiers: %s\n  triggers:\n"
             "  - type: prometheus\n    name: queue\n"
             "    metadata: {serverAddress: 'http://127.0.0.1:9090', query: q, threshold: '10'}\n"
             "  - type: prometheus\n    name: lag\n"
             "    metadata: {serverAddress: 'http://127.0.0.1:9090', query: q, threshold: '10'}\n",
             annotations, modifiers);
    return buf;
}

static void test_scaling_modifiers(void **state)
{
    (void)state;
    struct scaler_config *cfg = NULL;
    char err[2048];
    const char *ok = modifiers_doc("{formula: 'queue + lag * 2 > 10 ? max(queue, lag) : -abs(queue) ** 2', "
                                   "target: '5', activationTarget: '1.5', metricType: Value}",
                                   "  annotations: {scrapeship.io/hpa-sync-period: 5s}\n");
    int rc = scaler_config_load_string(ok, strlen(ok), "m.yaml", &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    const struct scaler_object *so = &cfg->objects[0];
    assert_true(so->has_modifiers);
    assert_non_null(so->modifiers.program);
    assert_true(so->modifiers.target == 5.0 && so->modifiers.activation_target == 1.5);
    assert_int_equal(so->modifiers.metric_type, SCALER_METRIC_VALUE);
    assert_int_equal(so->hpa_sync_period_ms, 5000);
    scaler_config_free(cfg);

    static const struct {
        const char *modifiers, *want;
    } bad[] = {
        {"{formula: 'queue + other', target: '5'}", "unknown name other"},
        {"{formula: 'queue + lag'}", "formula is given but target is empty"},
        {"{target: '5'}", "Formula is mandatory"},
        {"{formula: 'queue', target: '0'}", "must be a number greater than 0"},
        {"{formula: 'queue', target: 'x'}", "must be a number greater than 0"},
        {"{formula: 'queue', target: '1', activationTarget: 'y'}", "activationTarget \"y\" is not a number"},
        {"{formula: 'queue > 1', target: '1'}", "gives a bool"},
        {"{formula: 'queue % 2', target: '1'}", "% (integer modulo) is not supported"},
        {"{formula: 'queue ?? 1', target: '1'}", "?? (nil coalescing) is not supported"},
        {"{formula: 'sqrt(queue)', target: '1'}", "function sqrt is not supported"},
        {"{formula: '(queue + lag', target: '1'}", "expected )"},
        {"{formula: 'queue + (lag > 1)', target: '1'}", "invalid operation: + on a bool"},
        {"{formula: 'queue > 1 ? 1 : lag > 2', target: '1'}", "must both be numbers"},
        {"{formula: queue, target: '1', metricType: Utilization}", "needs AverageValue or Value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *doc = modifiers_doc(bad[i].modifiers, "");
        cfg = NULL;
        rc = scaler_config_load_string(doc, strlen(doc), "m.yaml", &cfg, err, sizeof err);
        if (rc == 0 || !strstr(err, bad[i].want))
            fprintf(stderr, "%s: rc %d, err: %s\n", bad[i].modifiers, rc, err);
        assert_int_equal(rc, SS_ECONFIG);
        assert_non_null(strstr(err, bad[i].want));
        assert_null(cfg);
    }
    /* deep nesting is bounded, not a stack overflow */
    char deep[1200] = "{formula: '";
    for (int i = 0; i < 200; i++)
        strcat(deep, "(");
    strcat(deep, "queue'");
    strcat(deep, ", target: '1'}");
    const char *doc = modifiers_doc(deep, "");
    rc = scaler_config_load_string(doc, strlen(doc), "m.yaml", &cfg, err, sizeof err);
    assert_int_equal(rc, SS_ECONFIG);
    assert_non_null(strstr(err, "nested too deeply"));
    doc = modifiers_doc("{formula: queue, target: '1'}",
                        "  annotations: {scrapeship.io/hpa-sync-period: soon}\n");
    rc = scaler_config_load_string(doc, strlen(doc), "m.yaml", &cfg, err, sizeof err);
    assert_int_equal(rc, SS_ECONFIG);
    assert_non_null(strstr(err, "must be a duration"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_doc),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_unknown_fields_warn),
        cmocka_unit_test(test_trigger_auth),
        cmocka_unit_test(test_yaml_errors_and_limits),
        cmocka_unit_test(test_many_errors_are_capped),
        cmocka_unit_test(test_no_secret_in_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_scaling_modifiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
