/* output.c: the debug sink. Prints every series exactly as it would be shipped: the
 * scrape module's final labels (external labels included), sorted, one line each.
 *
 * Text lines are Prometheus exposition lines with the timestamp in ms. JSON lines
 * carry the value as a string, like Prometheus' HTTP API, so NaN and ±Inf survive;
 * stale markers are flagged with "stale":true (in text they print as NaN).
 *
 * Values print as Prometheus prints them: text as its exposition (/federate, the
 * expfmt writer) does, so -0 prints "0" there; JSON as its HTTP API does, where -0
 * stays "-0" and the 'f' form is used between 1e-6 and 1e21 (0.00001). Both print every NaN payload as "NaN"
 * and the infinities as "+Inf" and
 * "-Inf"; the shipped value keeps its bits either way. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "sstext.h"

struct collector_stdout {
    FILE *out;
    enum collector_output_format fmt;
    struct ss_buf line;
    unsigned long long series;
};

int collector_stdout_new(FILE *out, enum collector_output_format fmt, struct collector_stdout **outp)
{
    struct collector_stdout *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    s->out = out;
    s->fmt = fmt;
    ss_buf_init(&s->line, 0);
    *outp = s;
    return 0;
}

void collector_stdout_free(struct collector_stdout *s)
{
    if (!s)
        return;
    fflush(s->out);
    ss_buf_free(&s->line);
    free(s);
}

static void put_json_string(struct ss_buf *b, struct ss_str v)
{
    ss_buf_append(b, "\"", 1);
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '\\' || c == '"') {
            char e[2] = {'\\', (char)c};
            ss_buf_append(b, e, 2);
        } else if (c < 0x20) {
            ss_buf_printf(b, "\\u%04x", c);
        } else {
            ss_buf_append(b, &v.p[i], 1);
        }
    }
    ss_buf_append(b, "\"", 1);
}

static void on_series(void *ud, const struct scrape_series *sr)
{
    struct collector_stdout *s = ud;
    const struct ss_label *merged = sr->labels;
    long n = (long)sr->nlabels;
    struct ss_buf *b = &s->line;
    ss_buf_reset(b);
    char val[40];
    bool stale = scrape_is_stale_nan(sr->value);
    if (s->fmt == COLLECTOR_OUTPUT_TEXT)
        ss_format_double(val, sizeof val, sr->value);
    else
        ss_format_double_api(val, sizeof val, sr->value);
    if (s->fmt == COLLECTOR_OUTPUT_TEXT) {
        if (sr->value == 0) /* expfmt's writeFloat: f == 0 (true for -0 too) is "0" */
            memcpy(val, "0", 2);
        ss_render_series(b, merged, (size_t)n);
        ss_buf_printf(b, " %s %lld\n", val, (long long)sr->timestamp_ms);
    } else {
        ss_buf_append(b, "{\"labels\":{", 11);
        for (long i = 0; i < n; i++) {
            if (i)
                ss_buf_append(b, ",", 1);
            put_json_string(b, merged[i].name);
            ss_buf_append(b, ":", 1);
            put_json_string(b, merged[i].value);
        }
        ss_buf_printf(b, "},\"value\":\"%s\",\"timestamp\":%lld,\"stale\":%s}\n", val,
                      (long long)sr->timestamp_ms, stale ? "true" : "false");
    }
    fwrite(b->data, 1, b->len, s->out);
    s->series++;
}

static void on_end(void *ud, const struct scrape_report *r)
{
    struct collector_stdout *s = ud;
    (void)r;
    fflush(s->out);
}

void collector_stdout_sink(struct collector_stdout *s, struct scrape_sink *sink)
{
    memset(sink, 0, sizeof *sink);
    sink->series = on_series;
    sink->end = on_end;
    sink->ud = s;
}

static void tee_begin(void *ud, const struct scrape_report *r)
{
    struct collector_tee *t = ud;
    if (t->a.begin)
        t->a.begin(t->a.ud, r);
    if (t->b.begin)
        t->b.begin(t->b.ud, r);
}

static void tee_series(void *ud, const struct scrape_series *s)
{
    struct collector_tee *t = ud;
    t->a.series(t->a.ud, s);
    t->b.series(t->b.ud, s);
}

static void tee_end(void *ud, const struct scrape_report *r)
{
    struct collector_tee *t = ud;
    if (t->a.end)
        t->a.end(t->a.ud, r);
    if (t->b.end)
        t->b.end(t->b.ud, r);
}

/* Pacing is the primary's (the stdout copy is written at once). */
static bool tee_wait_room(void *ud, int64_t deadline_mono_ms)
{
    struct collector_tee *t = ud;
    return t->a.wait_room ? t->a.wait_room(t->a.ud, deadline_mono_ms) : true;
}

static void tee_meta(void *ud, const struct scrape_parsed_meta *m, const char *job)
{
    struct collector_tee *t = ud;
    if (t->a.metadata)
        t->a.metadata(t->a.ud, m, job);
    if (t->b.metadata)
        t->b.metadata(t->b.ud, m, job);
}

void collector_tee_sink(struct collector_tee *t, const struct scrape_sink *primary,
                        struct collector_stdout *s, struct scrape_sink *out)
{
    t->a = *primary;
    collector_stdout_sink(s, &t->b);
    memset(out, 0, sizeof *out);
    out->begin = tee_begin;
    out->series = tee_series;
    out->end = tee_end;
    out->metadata = tee_meta;
    out->wait_room = tee_wait_room;
    out->ud = t;
}
