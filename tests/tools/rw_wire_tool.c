/* rw_wire_tool.c: a driver for the remote-write wire code, used by the Python oracle
 * test (tests/integration/test_wire_python.py), which checks our bytes with the
 * official schema and python3-protobuf/python3-snappy.
 *
 *   rw_wire_tool [encode] [--raw] < lines.jsonl > body
 *       Each input line is one JSON object:
 *         {"labels": {"__name__": "up", ...}, "value": V, "ts": 1700000000000}
 *         {"labels": {...}, "samples": [[V, ts], ...]}         (one multi-sample record)
 *         {"metadata": {"type": "counter", "family": "f", "help": "h", "unit": "u"}}
 *       V is a JSON number or a string: "NaN", "StaleNaN", "+Inf", "-Inf", a decimal,
 *       or "0x" + 16 hex digits giving the exact IEEE-754 bits. Labels are sorted by
 *       name here, as the scrape pipeline does before calling rw_encode_series.
 *       Writes snappy_block(WriteRequest) to stdout (--raw: the bare WriteRequest).
 *
 *   rw_wire_tool decode [--raw] < body > lines.jsonl
 *       The reverse: one JSON line per series,
 *         {"labels": [[name, value], ...], "samples": [["<16 hex bits>", ts], ...]}
 *       and one per metadata entry, {"metadata": {"type": 4, "family": ..., ...}}.
 *
 * Exit status 0 on success, 1 on bad input (message on stderr), 2 on usage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remotewrite.h"

#define MAX_LINE (16u << 20)  /* one JSON line */
#define MAX_BODY (256u << 20) /* encoded or decoded WriteRequest */

static int parse_value(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return SS_EINVAL;
    if (strcmp(s, "StaleNaN") == 0) {
        *out = rw_stale_nan();
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && strlen(s) == 18) {
        uint64_t bits = strtoull(s + 2, &end, 16);
        if (*end || errno)
            return SS_EINVAL;
        memcpy(out, &bits, sizeof *out);
        return 0;
    }
    *out = strtod(s, &end);
    return (*s && !*end) ? 0 : SS_EINVAL;
}

static int parse_ts(json_t *v, int64_t *out)
{
    if (!json_is_integer(v))
        return SS_EINVAL;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int metric_type_parse(const char *s, enum scrape_metric_type *out)
{
    static const char *names[] = {"unknown",        "counter", "gauge", "histogram",
                                  "gaugehistogram", "summary", "info",  "stateset"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum scrape_metric_type)i;
            return 0;
        }
    return SS_EINVAL;
}

static struct ss_str json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v && json_is_string(v) ? (struct ss_str){json_string_value(v), json_string_length(v)}
                                  : (struct ss_str){"", 0};
}

static int encode_line(const char *line, size_t len, struct ss_buf *body, struct ss_labels *ls)
{
    json_error_t jerr;
    double *values = NULL;
    int64_t *tss = NULL;
    int rc = SS_EPARSE;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        fprintf(stderr, "bad JSON: %s\n", root ? "not an object" : jerr.text);
        goto fail;
    }

    json_t *md = json_object_get(root, "metadata");
    if (md) {
        enum scrape_metric_type t = SCRAPE_TYPE_UNKNOWN;
        json_t *tv = json_object_get(md, "type");
        if (tv && (!json_is_string(tv) || metric_type_parse(json_string_value(tv), &t))) {
            fprintf(stderr, "bad metadata type\n");
            goto fail;
        }
        rc = rw_encode_metadata(body, t, json_str(md, "family"), json_str(md, "help"), json_str(md, "unit"));
        goto fail;
    }

    json_t *labels = json_object_get(root, "labels");
    if (!json_is_object(labels)) {
        fprintf(stderr, "missing labels object\n");
        goto fail;
    }
    ss_labels_reset(ls);
    const char *key;
    json_t *val;
    json_object_foreach(labels, key, val)
    {
        if (!json_is_string(val)) {
            fprintf(stderr, "label %s: value is not a string\n", key);
            goto fail;
        }
        rc = ss_labels_push(ls, (struct ss_str){key, strlen(key)},
                            (struct ss_str){json_string_value(val), json_string_length(val)});
        if (rc)
            goto fail;
    }
    ss_labels_sort(ls);
    rc = SS_EPARSE;

    json_t *samples = json_object_get(root, "samples");
    if (samples) {
        size_t n = json_array_size(samples);
        values = calloc(n ? n : 1, sizeof *values);
        tss = calloc(n ? n : 1, sizeof *tss);
        if (!values || !tss) {
            rc = SS_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *pair = json_array_get(samples, i);
            if (json_array_size(pair) != 2 || parse_value(json_array_get(pair, 0), &values[i]) ||
                parse_ts(json_array_get(pair, 1), &tss[i])) {
                fprintf(stderr, "bad sample %zu\n", i);
                goto fail;
            }
        }
        rc = rw_encode_series_multi(body, ls->v, ls->n, values, tss, n);
        goto fail;
    }

    double value;
    int64_t ts = 0;
    json_t *tsv = json_object_get(root, "ts");
    if (parse_value(json_object_get(root, "value"), &value) || (tsv && parse_ts(tsv, &ts))) {
        fprintf(stderr, "bad value or ts\n");
        goto fail;
    }
    rc = rw_encode_series(body, ls->v, ls->n, value, ts);
fail:
    free(values);
    free(tss);
    json_decref(root);
    return rc;
}

static int write_all(const void *p, size_t n)
{
    return fwrite(p, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : SS_EIO;
}

static int run_encode(bool raw)
{
    struct ss_buf body, out;
    struct ss_labels ls;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    unsigned long lineno = 0;
    ss_buf_init(&body, MAX_BODY);
    ss_buf_init(&out, 0);
    ss_labels_init(&ls);
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if ((size_t)n > MAX_LINE) {
            fprintf(stderr, "line %lu: longer than %u bytes\n", lineno, MAX_LINE);
            rc = SS_ELIMIT;
            goto fail;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        rc = encode_line(line, (size_t)n, &body, &ls);
        if (rc) {
            fprintf(stderr, "line %lu: %s\n", lineno, ss_strerror(rc));
            goto fail;
        }
    }
    if (raw) {
        rc = write_all(body.data ? body.data : "", body.len);
    } else {
        rc = rw_snappy_compress(body.data ? body.data : "", body.len, &out);
        if (rc == 0)
            rc = write_all(out.data, out.len);
    }
fail:
    free(line);
    ss_labels_free(&ls);
    ss_buf_free(&body);
    ss_buf_free(&out);
    return rc;
}

static json_t *labels_json(const struct ss_label *l, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        /* NULL for strings that are not UTF-8: JSON cannot carry them. */
        json_t *pair = json_pack("[s#s#]", l[i].name.p, l[i].name.len, l[i].value.p, l[i].value.len);
        if (!pair || json_array_append_new(arr, pair)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static json_t *value_json(double v)
{
    uint64_t bits;
    char hex[17];
    memcpy(&bits, &v, sizeof bits);
    snprintf(hex, sizeof hex, "%016" PRIx64, bits);
    return json_string(hex);
}

static int print_json(json_t *obj)
{
    if (!obj)
        return SS_EPARSE; /* a string was not UTF-8 */
    int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) == 0 && fputc('\n', stdout) != EOF
                 ? 0
                 : SS_EIO;
    json_decref(obj);
    return rc;
}

static int run_decode(bool raw)
{
    struct ss_buf in, body;
    struct rw_write_request *req = NULL;
    char chunk[65536];
    size_t n;
    int rc;
    ss_buf_init(&in, MAX_BODY);
    ss_buf_init(&body, 0);
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if ((rc = ss_buf_append(&in, chunk, n)))
            goto fail;
    if (raw)
        rc = ss_buf_append(&body, in.data ? in.data : "", in.len);
    else
        rc = rw_snappy_decompress(in.data ? in.data : "", in.len, MAX_BODY, &body);
    if (rc)
        goto fail;
    rc = rw_decode_write_request(body.data ? body.data : "", body.len, &req);
    if (rc)
        goto fail;
    for (size_t i = 0; i < rw_write_request_nseries(req) && rc == 0; i++) {
        struct rw_series s;
        rw_write_request_series(req, i, &s);
        json_t *samples = json_array();
        for (size_t j = 0; j < s.nsamples; j++)
            json_array_append_new(samples, json_pack("[oI]", value_json(s.samples[j].value),
                                                     (json_int_t)s.samples[j].timestamp_ms));
        rc = print_json(
            json_pack("{s:o,s:o}", "labels", labels_json(s.labels, s.nlabels), "samples", samples));
    }
    for (size_t i = 0; i < rw_write_request_nmetadata(req) && rc == 0; i++) {
        struct rw_metadata m;
        rw_write_request_metadata(req, i, &m);
        rc = print_json(json_pack("{s:{s:i,s:s#,s:s#,s:s#}}", "metadata", "type", (int)m.wire_type, "family",
                                  m.family.p, m.family.len, "help", m.help.p, m.help.len, "unit", m.unit.p,
                                  m.unit.len));
    }
    if (rc == 0 && fflush(stdout) != 0)
        rc = SS_EIO;
fail:
    if (rc)
        fprintf(stderr, "decode: %s\n", ss_strerror(rc));
    rw_write_request_free(req);
    ss_buf_free(&in);
    ss_buf_free(&body);
    return rc;
}

int main(int argc, char **argv)
{
    bool decode = false, raw = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "encode") == 0)
            decode = false;
        else if (strcmp(argv[i], "decode") == 0)
            decode = true;
        else if (strcmp(argv[i], "--raw") == 0)
            raw = true;
        else {
            fprintf(stderr, "usage: %s [encode|decode] [--raw]\n", argv[0]);
            return 2;
        }
    }
    return (decode ? run_decode(raw) : run_encode(raw)) ? 1 : 0;
}
