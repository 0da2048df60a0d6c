/* test_decide.c: replays the decision tables in tests/unit/scaler/cases (*.json).
 *
 * Each file holds {"cases": [...]}; a case is
 *   {"name": ..., "source": where the expectation comes from,
 *    "spec": ScaledObject spec (triggers without "type" are prometheus trigger
 *            metadata shorthand: serverAddress and query are filled in, and
 *            "metricType"/"name" are lifted to the trigger)  |  "manifest": YAML text,
 *    "created_s": when the ScaledObject appeared (default 0),
 *    "recommendations": [] — the HPA already runs with an empty history, as
 *            Kubernetes' tests write recommendations: []timestampedRecommendation{};
 *            absent means nil: the HPA is new and its first sync is seeded with the
 *            current replicas (TestScaleDownStabilizeInitialSize),
 *    "sync_period_s": the HPA sync period passed in (default 0: every step syncs),
 *    "steps": [{"now_s", "current" (default: the previous step's answer),
 *               "ready", "value" | "error" | "values": [number | {"error": msg}]
 *               | "prom": {"status", "json" | "body"} (run through promresult),
 *               "annotations": {...},
 *               "expect": replicas, "rule": name, "active": bool}]}
 * The manifest goes through the real loader: YAML is a superset of JSON, so the
 * spec is serialised with jansson and parsed as YAML.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "scaler.h"
#include "scaler_int.h"

#define CASES_DIR SS_SOURCE_DIR "/tests/unit/scaler/cases"

static int n_cases, n_steps, n_failures;

static void __attribute__((format(printf, 1, 2))) failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    n_failures++;
}

/* Expand the trigger shorthand into a full prometheus trigger. */
static json_t *expand_trigger(json_t *t)
{
    if (json_object_get(t, "type"))
        return json_incref(t);
    json_t *md = json_object();
    json_object_set_new(md, "serverAddress", json_string("http://127.0.0.1:9090"));
    json_object_set_new(md, "query", json_string("sum(rate(http_requests_total[2m]))"));
    json_t *out = json_object();
    json_object_set_new(out, "type", json_string("prometheus"));
    const char *k;
    json_t *v;
    json_object_foreach(t, k, v)
    {
        if (strcmp(k, "metricType") == 0 || strcmp(k, "name") == 0)
            json_object_set(out, k, v);
        else
            json_object_set(md, k, v);
    }
    json_object_set_new(out, "metadata", md);
    return out;
}

static char *manifest_for(json_t *c)
{
    json_t *m = json_object_get(c, "manifest");
    if (json_is_string(m))
        return strdup(json_string_value(m));
    json_t *spec = json_deep_copy(json_object_get(c, "spec"));
    if (!json_object_get(spec, "scaleTargetRef")) {
        json_t *tr = json_object();
        json_object_set_new(tr, "name", json_string("app"));
        json_object_set_new(spec, "scaleTargetRef", tr);
    }
    json_t *trig = json_object_get(spec, "triggers");
    json_t *full = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(trig, i, t) json_array_append_new(full, expand_trigger(t));
    json_object_set_new(spec, "triggers", full);
    json_t *doc = json_object();
    json_object_set_new(doc, "apiVersion", json_string("keda.sh/v1alpha1"));
    json_object_set_new(doc, "kind", json_string("ScaledObject"));
    json_t *md = json_object();
    json_object_set_new(md, "name", json_string("case"));
    json_object_set_new(doc, "metadata", md);
    json_object_set_new(doc, "spec", spec);
    char *s = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    return s;
}

/* Fill one trigger result from a JSON number, {"error": ...}, or a prom body. */
static void result_from(const struct scaler_trigger *t, json_t *v, json_t *prom,
                        struct scaler_trigger_result *r, char *errbuf, size_t errcap)
{
    memset(r, 0, sizeof *r);
    if (prom) {
        json_t *j = json_object_get(prom, "json");
        char *body = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY)
                       : strdup(json_string_value(json_object_get(prom, "body")));
        int status = (int)json_integer_value(json_object_get(prom, "status"));
        double d = 0;
        int rc = scaler_promresult_parse(status ? status : 200, body, strlen(body), t->ignore_null_values, &d,
                                         errbuf, errcap);
        free(body);
        r->ok = rc == 0;
        r->value = d;
        r->error = rc ? errbuf : NULL;
        return;
    }
    if (json_is_number(v)) {
        r->ok = true;
        r->value = json_number_value(v);
        return;
    }
    json_t *e = json_object_get(v, "error");
    r->ok = false;
    r->error = json_is_string(e) ? json_string_value(e) : "error";
}

static void run_case(const char *file, json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    char err[2048];
    struct scaler_config *cfg = NULL;
    char *text = manifest_for(c);
    n_cases++;
    if (!name)
        name = "(unnamed)";
    int rc = scaler_config_load_string(text, strlen(text), name, &cfg, err, sizeof err);
    free(text);
    if (rc != 0) {
        failf("%s: %s: manifest rejected: %s", file, name, err);
        return;
    }
    if (cfg->n_objects != 1) {
        failf("%s: %s: expected one ScaledObject, got %zu", file, name, cfg->n_objects);
        scaler_config_free(cfg);
        return;
    }
    const struct scaler_object *so = &cfg->objects[0];
    struct scaler_state *st = NULL;
    int64_t created = (int64_t)(json_number_value(json_object_get(c, "created_s")) * 1000.0);
    assert_int_equal(scaler_state_new(so, created, &st), 0);
    if (json_is_array(json_object_get(c, "recommendations")))
        scaler__state_hpa_running(st);
    int64_t sync_ms = (int64_t)(json_number_value(json_object_get(c, "sync_period_s")) * 1000.0);

    json_t *steps = json_object_get(c, "steps");
    size_t si;
    json_t *s;
    int32_t prev = -1;
    json_array_foreach(steps, si, s)
    {
        n_steps++;
        struct scaler_trigger_result res[SCALER_MAX_TRIGGERS];
        char errbufs[SCALER_MAX_TRIGGERS][256];
        struct scaler_annotation ann[16];
        size_t n_ann = 0;
        json_t *cur = json_object_get(s, "current");
        struct scaler_input in = {
            .now_ms = (int64_t)(json_number_value(json_object_get(s, "now_s")) * 1000.0),
            .current_replicas = cur ? (int32_t)json_integer_value(cur) : prev,
            .ready_replicas =
                json_object_get(s, "ready") ? (int32_t)json_integer_value(json_object_get(s, "ready")) : -1,
            .results = res,
            .n_results = so->n_triggers,
            .hpa_sync_period_ms = sync_ms,
            .hpa_only = json_is_true(json_object_get(s, "hpa_only")),
        };
        if (in.current_replicas < 0) {
            failf("%s: %s step %zu: no current replicas", file, name, si);
            break;
        }
        json_t *values = json_object_get(s, "values");
        for (size_t i = 0; i < so->n_triggers; i++) {
            json_t *v = values                        ? json_array_get(values, i)
                        : json_object_get(s, "value") ? json_object_get(s, "value")
                                                      : NULL;
            json_t *prom = values ? NULL : json_object_get(s, "prom");
            if (!values && json_object_get(s, "error")) {
                v = json_pack("{s:O}", "error", json_object_get(s, "error"));
                result_from(&so->triggers[i], v, NULL, &res[i], errbufs[i], sizeof errbufs[i]);
                /* keep the message alive: it points into v */
                snprintf(errbufs[i], sizeof errbufs[i], "%s", res[i].error);
                res[i].error = errbufs[i];
                json_decref(v);
                continue;
            }
            if (!v && !prom) {
                failf("%s: %s step %zu: no value for trigger %zu", file, name, si, i);
                v = json_real(0);
                result_from(&so->triggers[i], v, NULL, &res[i], errbufs[i], sizeof errbufs[i]);
                json_decref(v);
                continue;
            }
            result_from(&so->triggers[i], v, prom, &res[i], errbufs[i], sizeof errbufs[i]);
        }
        const char *k;
        json_t *av;
        json_object_foreach(json_object_get(s, "annotations"), k, av)
        {
            if (n_ann < 16)
                ann[n_ann++] = (struct scaler_annotation){k, json_string_value(av)};
        }
        in.annotations = ann;
        in.n_annotations = n_ann;

        struct scaler_decision d;
        rc = scaler_decide(so, st, &in, &d);
        if (rc != 0) {
            failf("%s: %s step %zu: scaler_decide returned %d", file, name, si, rc);
            break;
        }
        json_t *expect = json_object_get(s, "expect");
        const char *rule = json_string_value(json_object_get(s, "rule"));
        json_t *active = json_object_get(s, "active");
        bool bad = false;
        if (json_is_integer(expect) && d.replicas != (int32_t)json_integer_value(expect))
            bad = true;
        if (rule && strcmp(rule, scaler_rule_name(d.rule)) != 0)
            bad = true;
        if (active && json_is_true(active) != d.active)
            bad = true;
        if (bad)
            failf("%s: %s step %zu (t=%gs, current %d): want %lld/%s%s, got %d/%s active=%d\n    %s", file,
                  name, si, in.now_ms / 1000.0, (int)in.current_replicas,
                  (long long)json_integer_value(expect), rule ? rule : "*",
                  active ? (json_is_true(active) ? " active" : " inactive") : "", (int)d.replicas,
                  scaler_rule_name(d.rule), d.active, d.explanation);
        if (getenv("SCALER_TEST_VERBOSE"))
            fprintf(stderr, "%s step %zu: %d %s | %s\n", name, si, (int)d.replicas, scaler_rule_name(d.rule),
                    d.explanation);
        assert_true(strlen(d.explanation) > 0);
        prev = d.replicas;
    }
    scaler_state_free(st);
    scaler_config_free(cfg);
}

static void test_tables(void **state)
{
    (void)state;
    DIR *dir = opendir(CASES_DIR);
    assert_non_null(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CASES_DIR, de->d_name);
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        if (!root) {
            failf("%s: %s (line %d)", de->d_name, jerr.text, jerr.line);
            continue;
        }
        files++;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(root, "cases"), i, c) run_case(de->d_name, c);
        json_decref(root);
    }
    closedir(dir);
    fprintf(stderr, "decision tables: %d files, %d cases, %d steps, %d failures\n", files, n_cases, n_steps,
            n_failures);
    assert_true(files >= 5);
    assert_true(n_steps >= 80);
    assert_int_equal(n_failures, 0);
}

static struct scaler_config *load(const char *yaml)
{
    struct scaler_config *cfg = NULL;
    char err[1024];
    int rc = scaler_config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    return cfg;
}

static const char *const one_trigger =
    "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\n"
    "spec:\n  scaleTargetRef: {name: app}\n  triggers:\n  - type: prometheus\n"
    "    metadata: {serverAddress: 'http://127.0.0.1:9090', query: q, threshold: '10'}\n";

static void test_bad_arguments(void **state)
{
    (void)state;
    struct scaler_config *cfg = load(one_trigger);
    const struct scaler_object *so = &cfg->objects[0];
    struct scaler_state *st = NULL;
    assert_int_equal(scaler_state_new(so, 0, &st), 0);
    struct scaler_trigger_result r = {.ok = true, .value = 5};
    struct scaler_decision d;
    struct scaler_input in = {.now_ms = 0, .current_replicas = 1, .results = &r, .n_results = 2};
    assert_int_equal(scaler_decide(so, st, &in, &d), SS_EINVAL); /* wrong count */
    in.n_results = 1;
    in.current_replicas = -1;
    assert_int_equal(scaler_decide(so, st, &in, &d), SS_EINVAL);
    in.current_replicas = 1;
    assert_int_equal(scaler_decide(NULL, st, &in, &d), SS_EINVAL);
    assert_int_equal(scaler_decide(so, st, &in, &d), 0);
    scaler_state_free(st);
    scaler_state_free(NULL);
    scaler_config_free(cfg);
}

static void test_rule_names(void **state)
{
    (void)state;
    for (int r = SCALER_RULE_METRIC; r <= SCALER_RULE_HPA_WAIT; r++) {
        enum scaler_rule back;
        assert_int_equal(scaler_rule_from_name(scaler_rule_name((enum scaler_rule)r), &back), 0);
        assert_int_equal((int)back, r);
    }
    enum scaler_rule x;
    assert_int_equal(scaler_rule_from_name("nope", &x), SS_ENOTFOUND);
    assert_string_equal(scaler_rule_name((enum scaler_rule)99), "unknown");
}

/* The history arrays are bounded: a caller polling every millisecond for far
 * longer than any window must not grow memory without limit. */
static void test_history_bounded(void **state)
{
    (void)state;
    const char *yaml =
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\n"
        "spec:\n  scaleTargetRef: {name: app}\n  advanced:\n    horizontalPodAutoscalerConfig:\n"
        "      behavior: {scaleDown: {stabilizationWindowSeconds: 3600}}\n  triggers:\n"
        "  - type: prometheus\n"
        "    metadata: {serverAddress: 'http://127.0.0.1:9090', query: q, threshold: '10'}\n";
    struct scaler_config *cfg = load(yaml);
    const struct scaler_object *so = &cfg->objects[0];
    struct scaler_state *st = NULL;
    assert_int_equal(scaler_state_new(so, 0, &st), 0);
    int32_t cur = 50;
    for (int i = 0; i < 5000; i++) {
        struct scaler_trigger_result r = {.ok = true, .value = (i % 7) * 100.0 + 1};
        struct scaler_input in = {.now_ms = 1000 + i, .current_replicas = cur, .results = &r, .n_results = 1};
        struct scaler_decision d;
        assert_int_equal(scaler_decide(so, st, &in, &d), 0);
        assert_true(d.replicas >= 1 && d.replicas <= 100);
        cur = d.replicas;
    }
    scaler_state_free(st);
    scaler_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_rule_names),
        cmocka_unit_test(test_history_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
