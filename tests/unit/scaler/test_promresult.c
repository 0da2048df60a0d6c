/* test_promresult.c: reading Prometheus /api/v1/query answers the way KEDA's
 * prometheus scaler does. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scaler.h"

#define VEC(v)                                                                                               \
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":["     \
    "1700000000.123," v "]}]}}"

struct pcase {
    int status;
    const char *body;
    bool ignore_null;
    int rc;          /* expected return */
    double value;    /* when rc == 0 */
    const char *msg; /* substring of the error when rc != 0 */
};

static const struct pcase cases[] = {
    /* one element */
    {200, VEC("\"12\""), true, 0, 12, NULL},
    {200, VEC("\"0.275\""), true, 0, 0.275, NULL},
    {200, VEC("\"-3.5e2\""), true, 0, -350, NULL},
    {200, VEC("\"1e-400\""), true, 0, 0, NULL}, /* underflow is not an error in Go */
    {200, VEC("\"0x1p-2\""), true, 0, 0.25, NULL},
    {200, VEC("\"+5\""), true, 0, 5, NULL},
    {200, VEC("\".5\""), true, 0, 0.5, NULL},
    {200, VEC("\"5.\""), true, 0, 5, NULL},
    /* NaN / Inf */
    {200, VEC("\"NaN\""), true, 0, 0, NULL},
    {200, VEC("\"NaN\""), false, SS_EINVAL, 0, "prometheus query returns NaN"},
    {200, VEC("\"+Inf\""), true, 0, 0, NULL},
    {200, VEC("\"+Inf\""), false, SS_EINVAL, 0, "prometheus query returns +Inf"},
    {200, VEC("\"-Inf\""), false, SS_EINVAL, 0, "returns -Inf"},
    {200, VEC("\"infinity\""), false, SS_EINVAL, 0, "returns +Inf"},
    {200, VEC("\"1e400\""), true, SS_EINVAL, 0, "value out of range"},
    /* bad numbers */
    {200, VEC("\"12abc\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("\" 12\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("\"\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("\"+NaN\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("\"0x10\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("\"1_000\""), true, SS_EPARSE, 0, "invalid syntax"},
    {200, VEC("12"), true, SS_EPARSE, 0, "not a string"},
    {200, VEC("null"), true, SS_EPARSE, 0, "is null"},
    /* empty and multiple */
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", true, 0, 0, NULL},
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", false, SS_EINVAL, 0,
     "target may be lost, the result is empty"},
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
     "{\"metric\":{\"a\":\"1\"},\"value\":[1,\"1\"]},{\"metric\":{\"a\":\"2\"},\"value\":[1,\"2\"]}]}}",
     true, SS_EINVAL, 0, "multiple elements"},
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[]}]}"
     "}",
     true, 0, 0, NULL},
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[]}]}"
     "}",
     false, SS_EINVAL, 0, "the value list is empty"},
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1]}]}"
     "}",
     true, SS_EPARSE, 0, "didn't return enough values"},
    /* native histogram sample: no "value", so an empty value list as in KEDA */
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"histogram\":["
     "1,{}]}]}}",
     true, 0, 0, NULL},
    /* scalar */
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1700000000,\"100\"]}}",
     true, 0, 100, NULL},
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1700000000,\"NaN\"]}}",
     false, SS_EINVAL, 0, "NaN"},
    /* other result types and shapes */
    {200,
     "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[1,"
     "\"1\"]]}]}}",
     true, SS_EINVAL, 0, "resultType \"matrix\""},
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"x\"]}}", true,
     SS_EINVAL, 0, "resultType \"string\""},
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}", true, SS_EPARSE, 0,
     "not a list"},
    {200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[1]}}", true, SS_EPARSE, 0,
     "not an object"},
    {200, "{\"status\":\"success\"}", true, SS_EPARSE, 0, "no data"},
    /* status */
    {200, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error at char 4\"}", true,
     SS_EINVAL, 0, "status is \"error\": bad_data: parse error at char 4"},
    {200, "{\"data\":{\"resultType\":\"vector\",\"result\":[]}}", true, SS_EINVAL, 0, "status is \"\""},
    /* HTTP */
    {400, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:5: parse error\"}", true, SS_EHTTP,
     0, "prometheus query api returned error. status: 400: 1:5: parse error"},
    {503, "Service Unavailable", true, SS_EHTTP, 0, "status: 503"},
    {302, "", true, SS_EHTTP, 0, "status: 302"},
    {204, "", true, SS_EPARSE, 0, "invalid JSON"},
    {299, VEC("\"7\""), true, 0, 7, NULL},
    /* not JSON */
    {200, "<html>", true, SS_EPARSE, 0, "invalid JSON"},
    {200, "[1,2]", true, SS_EPARSE, 0, "not a JSON object"},
    {200, VEC("\"1\"") "trailing", true, SS_EPARSE, 0, "invalid JSON"},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct pcase *c = &cases[i];
        double v = -12345;
        char err[512];
        int rc =
            scaler_promresult_parse(c->status, c->body, strlen(c->body), c->ignore_null, &v, err, sizeof err);
        bool ok = rc == c->rc;
        if (ok && rc == 0)
            ok = v == c->value;
        if (ok && rc != 0)
            ok = strstr(err, c->msg) != NULL;
        if (!ok)
            fprintf(stderr, "case %zu: %d %s (ignore=%d): rc=%d v=%g err=%s\n", i, c->status, c->body,
                    c->ignore_null, rc, v, err);
        assert_true(ok);
    }
}

static void test_limits_and_args(void **state)
{
    (void)state;
    double v;
    char err[256];
    assert_int_equal(scaler_promresult_parse(200, "{}", 2, true, NULL, err, sizeof err), SS_EINVAL);
    assert_int_equal(scaler_promresult_parse(200, NULL, 5, true, &v, err, sizeof err), SS_EINVAL);
    assert_int_equal(scaler_promresult_parse(200, NULL, 0, true, &v, err, sizeof err), SS_EPARSE);
    size_t big = SCALER_MAX_RESULT_BYTES + 1;
    char *b = malloc(big);
    memset(b, ' ', big);
    assert_int_equal(scaler_promresult_parse(200, b, big, true, &v, err, sizeof err), SS_ELIMIT);
    free(b);
    /* no error buffer is fine */
    assert_int_equal(scaler_promresult_parse(500, "x", 1, true, &v, NULL, 0), SS_EHTTP);
    /* a NUL inside the body is not JSON */
    static const char nul[] = "{\"status\":\"succ\0ess\"}";
    assert_int_not_equal(scaler_promresult_parse(200, nul, sizeof nul - 1, true, &v, err, sizeof err), 0);
}

/* Real Prometheus output for `vector(100)` and `scalar(vector(3))`. */
static void test_prometheus_samples(void **state)
{
    (void)state;
    static const char vec[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                              "[{\"metric\":{},\"value\":[1712345678.901,\"100\"]}]}}";
    static const char sc[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                             "[1712345678.901,\"3\"]},\"warnings\":[\"ignored\"]}";
    double v = 0;
    char err[256];
    assert_int_equal(scaler_promresult_parse(200, vec, sizeof vec - 1, false, &v, err, sizeof err), 0);
    assert_true(v == 100);
    assert_int_equal(scaler_promresult_parse(200, sc, sizeof sc - 1, false, &v, err, sizeof err), 0);
    assert_true(v == 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_limits_and_args),
        cmocka_unit_test(test_prometheus_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
