/* promresult.c: turns the answer to Prometheus' GET /api/v1/query into the one
 * number a prometheus trigger scales on.
 *
 * It follows KEDA's prometheus scaler (ExecutePromQuery): a non-2xx status is an
 * error; an empty vector is 0 when ignoreNullValues (the default) and an error
 * otherwise; more than one element is an error; an element whose value list is
 * empty counts as empty; the value string is parsed with Go's strconv.ParseFloat
 * rules, and NaN or +/-Inf become 0 when ignoreNullValues, else an error.
 *
 * Where KEDA's decoding is looser than the Prometheus HTTP API, this file is
 * stricter and says so: "status" must be "success" (KEDA ignores it), "scalar"
 * results are accepted (KEDA's struct cannot decode them), "matrix" and "string"
 * results are errors (KEDA reads a matrix element as an empty value list), and a
 * null or non-string sample value is an error (KEDA yields -1 or panics).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

static int __attribute__((format(printf, 4, 5)))
fail_with(int rc, char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool ieq_prefix(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    if (n != w)
        return false;
    for (size_t i = 0; i < w; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Go's strconv.ParseFloat(s, 64) syntax: optional sign; "inf"/"infinity"
 * (any case, signed or not) or "nan" (any case, unsigned); decimal mantissa with
 * optional exponent; or a 0x hex mantissa with a mandatory p exponent.
 * Underscores (allowed by Go only after a base prefix) are not accepted.
 * Returns 0, or SS_EPARSE for bad syntax and SS_ELIMIT when out of range. */
static int parse_go_float(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false, sign = false;
    if (n > 1000)
        return SS_EPARSE;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        sign = true;
        i++;
    }
    if (ieq_prefix(s + i, n - i, "inf") || ieq_prefix(s + i, n - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (!sign && ieq_prefix(s, n, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t digits = 0;
    if (i + 1 < n && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        while (i < n && is_hex(s[i]))
            i++, digits++;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && is_hex(s[i]))
                i++, digits++;
        }
        if (!digits || i >= n || (s[i] != 'p' && s[i] != 'P'))
            return SS_EPARSE;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return SS_EPARSE;
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++, digits++;
        }
        if (!digits)
            return SS_EPARSE;
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            size_t e = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == e)
                return SS_EPARSE;
        }
    }
    if (i != n)
        return SS_EPARSE;

    char tmp[1001];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* glibc's strtod rounds correctly, as Go does, for decimal and hex input.
     * It honours LC_NUMERIC; scrapeship never calls setlocale, so it is "C". */
    errno = 0;
    double v = strtod(tmp, NULL);
    if (isinf(v))
        return SS_ELIMIT; /* Go: ±Inf with ErrRange; underflow to 0 is not an error */
    *out = v;
    return 0;
}

/* The [timestamp, "value"] pair of a vector element or a scalar result. */
static int sample_value(const json_t *pair, bool ignore_null, double *out, char *err, size_t errcap)
{
    size_t n = json_is_array(pair) ? json_array_size(pair) : 0;
    if (n == 0) {
        if (ignore_null) {
            *out = 0;
            return 0;
        }
        return fail_with(SS_EINVAL, err, errcap,
                         "prometheus metrics 'prometheus' target may be lost, the value list is empty");
    }
    if (n < 2)
        return fail_with(SS_EPARSE, err, errcap, "prometheus query didn't return enough values");
    const json_t *v = json_array_get(pair, 1);
    if (!json_is_string(v))
        return fail_with(SS_EPARSE, err, errcap, "prometheus sample value is %s",
                         json_is_null(v) ? "null" : "not a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    double d;
    int rc = parse_go_float(s, len, &d);
    if (rc == SS_ELIMIT)
        return fail_with(SS_EINVAL, err, errcap, "strconv.ParseFloat: parsing \"%.64s\": value out of range",
                         s);
    if (rc != 0)
        return fail_with(SS_EPARSE, err, errcap, "strconv.ParseFloat: parsing \"%.64s\": invalid syntax", s);
    if (isnan(d) || isinf(d)) {
        if (ignore_null) {
            *out = 0;
            return 0;
        }
        return fail_with(SS_EINVAL, err, errcap, "prometheus query returns %s",
                         isnan(d) ? "NaN"
                         : d > 0  ? "+Inf"
                                  : "-Inf");
    }
    *out = d;
    return 0;
}

int scaler_promresult_parse(int http_status, const char *body, size_t len, bool ignore_null_values,
                            double *out, char *err, size_t errcap)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    if (err && errcap)
        err[0] = '\0';
    if (!out || (!body && len))
        return SS_EINVAL;
    if (len > SCALER_MAX_RESULT_BYTES)
        return fail_with(SS_ELIMIT, err, errcap, "prometheus response is %zu bytes (limit %u)", len,
                         SCALER_MAX_RESULT_BYTES);

    if (http_status < 200 || http_status > 299) {
        /* Prometheus puts the reason in the JSON body; show it when there is one. */
        const char *why = NULL;
        root = body ? json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &jerr) : NULL;
        if (root && json_is_string(json_object_get(root, "error")))
            why = json_string_value(json_object_get(root, "error"));
        rc = fail_with(SS_EHTTP, err, errcap, "prometheus query api returned error. status: %d%s%.200s",
                       http_status, why ? ": " : "", why ? why : "");
        goto done;
    }

    root = json_loadb(body ? body : "", len, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root) {
        rc = fail_with(SS_EPARSE, err, errcap, "invalid JSON from prometheus: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = fail_with(SS_EPARSE, err, errcap, "prometheus response is not a JSON object");
        goto done;
    }
    const json_t *status = json_object_get(root, "status");
    if (!json_is_string(status) || strcmp(json_string_value(status), "success") != 0) {
        const json_t *et = json_object_get(root, "errorType");
        const json_t *e = json_object_get(root, "error");
        rc = fail_with(SS_EINVAL, err, errcap, "prometheus query status is \"%.32s\"%s%.64s%s%.200s",
                       json_is_string(status) ? json_string_value(status) : "",
                       json_is_string(et) ? ": " : "", json_is_string(et) ? json_string_value(et) : "",
                       json_is_string(e) ? ": " : "", json_is_string(e) ? json_string_value(e) : "");
        goto done;
    }
    const json_t *data = json_object_get(root, "data");
    if (!json_is_object(data)) {
        rc = fail_with(SS_EPARSE, err, errcap, "prometheus response has no data object");
        goto done;
    }
    const json_t *rt = json_object_get(data, "resultType");
    const json_t *result = json_object_get(data, "result");
    const char *type = json_is_string(rt) ? json_string_value(rt) : "";

    if (strcmp(type, "scalar") == 0) {
        rc = sample_value(result, ignore_null_values, out, err, errcap);
        goto done;
    }
    if (strcmp(type, "vector") != 0) {
        rc = fail_with(
            SS_EINVAL, err, errcap,
            "prometheus query returned resultType \"%.32s\"; the query must return a vector or scalar", type);
        goto done;
    }
    if (!json_is_array(result)) {
        rc = fail_with(SS_EPARSE, err, errcap, "prometheus vector result is not a list");
        goto done;
    }
    size_t n = json_array_size(result);
    if (n == 0) {
        if (ignore_null_values) {
            *out = 0;
            rc = 0;
        } else {
            rc = fail_with(SS_EINVAL, err, errcap,
                           "prometheus metrics 'prometheus' target may be lost, the result is empty");
        }
        goto done;
    }
    if (n > 1) {
        rc = fail_with(SS_EINVAL, err, errcap,
                       "prometheus query returned multiple elements (%zu); it must return at most one", n);
        goto done;
    }
    const json_t *el = json_array_get(result, 0);
    if (!json_is_object(el)) {
        rc = fail_with(SS_EPARSE, err, errcap, "prometheus vector element is not an object");
        goto done;
    }
    /* A native-histogram sample has "histogram" instead of "value": like KEDA,
     * that is an empty value list. */
    rc = sample_value(json_object_get(el, "value"), ignore_null_values, out, err, errcap);

done:
    json_decref(root);
    return rc;
}
