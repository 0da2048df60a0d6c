/* test_parse_promtext.c: the Prometheus text corpora (SS_CORPORA_DIR/promtext) against
 * the parser. See NOTES.md there for what each input is and what it must give.
 *
 *  (i)   common-expfmt/cases: prometheus/common's TextParser cases in strict text mode.
 *        Valid cases must give exactly the expected families (name, type, help, number
 *        of metrics: summaries and histograms fold _sum/_count/_bucket/quantile into
 *        one per label set, other types count every sample line); error cases must be
 *        rejected in the modes expected.json says.
 *  (ii)  common-expfmt fuzz seeds and testdata/text (+ text.gz through zlib).
 *  (iii) prometheus-textparse/cases in lenient mode (what Prometheus scrapes): valid
 *        inputs parse, error inputs fail, and for the four main inputs the parsed
 *        entries (HELP/TYPE/UNIT and series with labels, values, timestamps) equal
 *        expected.json's list. Prometheus folds counter/summary/histogram `_created`
 *        lines into the series' start timestamp; we emit them as samples, so they are
 *        skipped before comparing.
 *  (iv)  the benchmark expositions and promtool's metrics-test.prom: sample counts.
 * Every input also runs in 7-byte chunks and must give the same outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "scrape.h"

#ifndef SS_CORPORA_DIR
#define SS_CORPORA_DIR "/work/shared/corpora"
#endif
#define PT SS_CORPORA_DIR "/promtext"

/* ---- reading ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    b = realloc(b, n + 1);
    b[n] = '\0'; /* for strstr; the length stays authoritative */
    *len = n;
    return b;
}

static char *read_gz(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        int r = gzread(g, b + n, (unsigned)(cap - n));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    gzclose(g);
    *len = n;
    return b;
}

/* ---- recording what the parser emits ------------------------------------ */

struct rstr {
    char *p;
    size_t len;
};

struct rlabel {
    struct rstr name, value;
};

struct event {
    bool is_meta;
    enum scrape_meta_kind kind;
    struct rstr name; /* sample name, or the meta's family */
    struct rstr family;
    struct rstr text;
    enum scrape_metric_type type;
    double value;
    bool has_ts;
    int64_t ts;
    struct rlabel *labels;
    size_t nlabels;
};

struct rec {
    struct event *ev;
    size_t n, cap;
};

static struct rstr rdup(struct ss_str s)
{
    struct rstr r = {malloc(s.len + 1), s.len};
    if (s.len)
        memcpy(r.p, s.p, s.len);
    r.p[s.len] = '\0';
    return r;
}

static bool rstr_eq(struct rstr a, const char *p, size_t n)
{
    return a.len == n && memcmp(a.p, p, n) == 0;
}

static struct event *rec_add(struct rec *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
    }
    struct event *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    return e;
}

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct event *e = rec_add(ud);
    e->name = rdup(s->name);
    e->family = rdup(s->family);
    e->type = s->type;
    e->value = s->value;
    e->has_ts = s->has_timestamp;
    e->ts = s->timestamp_ms;
    e->nlabels = s->nlabels;
    e->labels = calloc(s->nlabels + 1, sizeof *e->labels);
    for (size_t i = 0; i < s->nlabels; i++) {
        e->labels[i].name = rdup(s->labels[i].name);
        e->labels[i].value = rdup(s->labels[i].value);
    }
    return 0;
}

static int on_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct event *e = rec_add(ud);
    e->is_meta = true;
    e->kind = m->kind;
    e->name = rdup(m->family);
    e->text = rdup(m->text);
    e->type = m->type;
    return 0;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct event *e = &r->ev[i];
        free(e->name.p);
        free(e->family.p);
        free(e->text.p);
        for (size_t j = 0; j < e->nlabels; j++) {
            free(e->labels[j].name.p);
            free(e->labels[j].value.p);
        }
        free(e->labels);
    }
    free(r->ev);
    memset(r, 0, sizeof *r);
}

static size_t rec_count(const struct rec *r, bool meta, enum scrape_meta_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->ev[i].is_meta == meta && (!meta || r->ev[i].kind == kind))
            n++;
    return n;
}

/* Parse in chunks of `chunk` bytes (0 = one chunk); rec may be NULL. */
static int parse_body(const char *body, size_t len, enum scrape_format fmt, bool strict, bool utf8,
                      size_t chunk, struct rec *rec, char *err, size_t errlen)
{
    struct scrape_parser_opts o = {.format = fmt, .strict = strict, .utf8_names = utf8};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&o, &p), 0);
    struct rec dummy = {0};
    struct scrape_parser_cb cb = {.sample = on_sample, .meta = on_meta, .ud = rec ? rec : &dummy};
    int rc = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && !rc; off += chunk)
        rc = scrape_parser_feed(p, body + off, len - off < chunk ? len - off : chunk, &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    if (err)
        snprintf(err, errlen, "%s", scrape_parser_error(p));
    scrape_parser_free(p);
    rec_free(&dummy);
    return rc;
}

/* One chunk and 7-byte chunks must agree; returns the one-chunk result. */
static int parse_both(const char *body, size_t len, enum scrape_format fmt, bool strict, bool utf8,
                      struct rec *rec, char *err, size_t errlen, const char *what)
{
    int rc = parse_body(body, len, fmt, strict, utf8, 0, rec, err, errlen);
    int rc7 = parse_body(body, len, fmt, strict, utf8, 7, NULL, NULL, 0);
    if ((rc == 0) != (rc7 == 0))
        fail_msg("%s: 7-byte chunks give a different outcome (%d vs %d)", what, rc, rc7);
    return rc;
}

/* ---- families after grouping (prometheus/common's model) ------------------ */

struct fam {
    struct rstr name;
    enum scrape_metric_type type;
    const struct rstr *help;
    struct rstr *series;
    size_t nseries;
};

static struct rstr series_key(const struct event *e)
{
    const char *skip = e->type == SCRAPE_TYPE_SUMMARY ? "quantile"
                       : (e->type == SCRAPE_TYPE_HISTOGRAM || e->type == SCRAPE_TYPE_GAUGEHISTOGRAM) ? "le"
                                                                                                     : NULL;
    size_t n = e->nlabels, m = 0;
    const struct rlabel **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(e->labels[i].name.p, skip) == 0)
            continue;
        size_t j = m++;
        while (j > 0 && strcmp(v[j - 1]->name.p, e->labels[i].name.p) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = &e->labels[i];
    }
    /* length-prefixed name and value of each label: any bytes are fine */
    size_t cap = 1;
    for (size_t i = 0; i < m; i++)
        cap += v[i]->name.len + v[i]->value.len + 2 * sizeof(size_t);
    char *k = malloc(cap);
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        memcpy(k + o, &v[i]->name.len, sizeof(size_t));
        o += sizeof(size_t);
        memcpy(k + o, v[i]->name.p, v[i]->name.len);
        o += v[i]->name.len;
        memcpy(k + o, &v[i]->value.len, sizeof(size_t));
        o += sizeof(size_t);
        memcpy(k + o, v[i]->value.p, v[i]->value.len);
        o += v[i]->value.len;
    }
    k[o] = '\0';
    free(v);
    return (struct rstr){k, o};
}

static size_t build_families(const struct rec *r, struct fam **out)
{
    struct fam *f = NULL;
    size_t nf = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct event *e = &r->ev[i];
        if (e->is_meta)
            continue;
        size_t j;
        for (j = 0; j < nf; j++)
            if (rstr_eq(f[j].name, e->family.p, e->family.len))
                break;
        if (j == nf) {
            f = realloc(f, (nf + 1) * sizeof *f);
            memset(&f[nf], 0, sizeof *f);
            f[nf].name = e->family;
            f[nf].type = e->type;
            nf++;
        }
        assert_int_equal(f[j].type, e->type);
        struct rstr k = series_key(e);
        /* prometheus/common folds only summaries and histograms by label set; every
         * other sample line is a metric of its own, even a repeated one. */
        bool folds = e->type == SCRAPE_TYPE_SUMMARY || e->type == SCRAPE_TYPE_HISTOGRAM ||
                     e->type == SCRAPE_TYPE_GAUGEHISTOGRAM;
        size_t s = f[j].nseries;
        if (folds)
            for (s = 0; s < f[j].nseries; s++)
                if (rstr_eq(f[j].series[s], k.p, k.len))
                    break;
        if (s == f[j].nseries) {
            f[j].series = realloc(f[j].series, (s + 1) * sizeof *f[j].series);
            f[j].series[f[j].nseries++] = k;
        } else {
            free(k.p);
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct event *e = &r->ev[i];
        if (!e->is_meta || e->kind != SCRAPE_META_HELP)
            continue;
        for (size_t j = 0; j < nf; j++)
            if (rstr_eq(f[j].name, e->name.p, e->name.len))
                f[j].help = &e->text;
    }
    *out = f;
    return nf;
}

static void free_families(struct fam *f, size_t nf)
{
    for (size_t i = 0; i < nf; i++) {
        for (size_t s = 0; s < f[i].nseries; s++)
            free(f[i].series[s].p);
        free(f[i].series);
    }
    free(f);
}

static const char *common_type_name(enum scrape_metric_type t)
{
    switch (t) {
    case SCRAPE_TYPE_COUNTER: return "COUNTER";
    case SCRAPE_TYPE_GAUGE: return "GAUGE";
    case SCRAPE_TYPE_SUMMARY: return "SUMMARY";
    case SCRAPE_TYPE_HISTOGRAM: return "HISTOGRAM";
    case SCRAPE_TYPE_GAUGEHISTOGRAM: return "GAUGE_HISTOGRAM";
    default: return "UNTYPED";
    }
}

/* ---- (i) common-expfmt/cases --------------------------------------------- */

static void test_common_cases(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *exp = json_load_file(PT "/common-expfmt/cases/expected.json", JSON_ALLOW_NUL, &jerr);
    assert_non_null(exp);
    int nvalid = 0, nerr = 0, checks = 0;

    json_t *valid = json_object_get(exp, "valid");
    for (size_t i = 0; i < json_array_size(valid); i++) {
        json_t *c = json_array_get(valid, i);
        const char *file = json_string_value(json_object_get(c, "file"));
        char path[512];
        snprintf(path, sizeof path, PT "/common-expfmt/cases/%s", file);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        struct rec r = {0};
        char err[300];
        int rc = parse_both(body, len, SCRAPE_FORMAT_TEXT, true, true, &r, err, sizeof err, file);
        if (rc)
            fail_msg("%s: strict text rejects a valid case: %s", file, err);
        struct fam *f;
        size_t nf = build_families(&r, &f);
        json_t *ef = json_object_get(c, "families");
        if (nf != json_array_size(ef))
            fail_msg("%s: %zu families, expected %zu", file, nf, json_array_size(ef));
        for (size_t k = 0; k < json_array_size(ef); k++) {
            json_t *x = json_array_get(ef, k);
            json_t *jn = json_object_get(x, "name");
            const char *name = json_string_value(jn);
            size_t nlen = json_string_length(jn);
            size_t j;
            for (j = 0; j < nf; j++)
                if (rstr_eq(f[j].name, name, nlen))
                    break;
            if (j == nf)
                fail_msg("%s: family %s missing", file, name);
            assert_string_equal(common_type_name(f[j].type), json_string_value(json_object_get(x, "type")));
            json_t *jh = json_object_get(x, "help");
            if (json_is_null(jh)) {
                if (f[j].help)
                    fail_msg("%s: family %s has help %s, expected none", file, name, f[j].help->p);
            } else {
                assert_non_null(f[j].help);
                assert_true(rstr_eq(*f[j].help, json_string_value(jh), json_string_length(jh)));
            }
            if ((json_int_t)f[j].nseries != json_integer_value(json_object_get(x, "metrics")))
                fail_msg("%s: family %s has %zu series, expected %lld", file, name, f[j].nseries,
                         (long long)json_integer_value(json_object_get(x, "metrics")));
            checks++;
        }
        free_families(f, nf);
        rec_free(&r);
        /* What prometheus/common accepts, Prometheus' scrape parser accepts too, except
         * the common-only gaugehistogram TYPE (parse_15-17) and parse_03's negative
         * timestamp ("decoy -1 -2": promlex lexes timestamps as [0-9]+). */
        bool common_only = strcmp(file, "parse_03.txt") == 0 || strstr(body, "gauge_histogram") ||
                           strstr(body, "gaugehistogram");
        rc = parse_both(body, len, SCRAPE_FORMAT_TEXT, false, true, NULL, err, sizeof err, file);
        if (common_only && rc == 0)
            fail_msg("%s: lenient text accepts what Prometheus refuses", file);
        if (!common_only) {
            if (rc)
                fail_msg("%s: lenient text rejects a valid case: %s", file, err);
        }
        free(body);
        nvalid++;
    }

    json_t *errors = json_object_get(exp, "error");
    for (size_t i = 0; i < json_array_size(errors); i++) {
        json_t *c = json_array_get(errors, i);
        const char *file = json_string_value(json_object_get(c, "file"));
        char path[512];
        snprintf(path, sizeof path, PT "/common-expfmt/cases/%s", file);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        static const struct {
            const char *key;
            bool utf8;
        } modes[] = {{"error_prefix_legacy_validation", false}, {"error_prefix_utf8_validation", true}};
        for (int m = 0; m < 2; m++) {
            const char *prefix = json_string_value(json_object_get(c, modes[m].key));
            bool must_fail = prefix && *prefix;
            char err[300];
            int rc =
                parse_both(body, len, SCRAPE_FORMAT_TEXT, true, modes[m].utf8, NULL, err, sizeof err, file);
            if (must_fail && rc == 0)
                fail_msg("%s (utf8=%d): accepted, expected \"%s\"", file, modes[m].utf8, prefix);
            if (!must_fail && rc != 0)
                fail_msg("%s (utf8=%d): rejected: %s", file, modes[m].utf8, err);
            if (must_fail)
                assert_int_equal(rc, SS_EPARSE);
            checks++;
        }
        free(body);
        nerr++;
    }
    json_decref(exp);
    print_message("common-expfmt cases: %d valid, %d error cases, %d checks passed\n", nvalid, nerr, checks);
    assert_int_equal(nvalid, 18);
    assert_int_equal(nerr, 48);
}

/* ---- (ii) fuzz seeds and testdata/text ----------------------------------- */

static void check_testdata_text(const char *body, size_t len, const char *what)
{
    struct rec r = {0};
    char err[300];
    int rc = parse_both(body, len, SCRAPE_FORMAT_TEXT, true, false, &r, err, sizeof err, what);
    if (rc)
        fail_msg("%s: %s", what, err);
    struct fam *f;
    size_t nf = build_families(&r, &f);
    int counters = 0, gauges = 0, summaries = 0;
    for (size_t i = 0; i < nf; i++) {
        counters += f[i].type == SCRAPE_TYPE_COUNTER;
        gauges += f[i].type == SCRAPE_TYPE_GAUGE;
        summaries += f[i].type == SCRAPE_TYPE_SUMMARY;
        assert_non_null(f[i].help);
    }
    assert_int_equal(nf, 37);
    assert_int_equal(counters, 9);
    assert_int_equal(gauges, 18);
    assert_int_equal(summaries, 10);
    assert_int_equal(rec_count(&r, false, 0), 248);
    free_families(f, nf);
    rec_free(&r);
}

static void test_common_fuzz_corpus_and_testdata(void **state)
{
    (void)state;
    static const char *const valid[] = {"minimal",           "from_test_parse_0", "from_test_parse_1",
                                        "from_test_parse_2", "from_test_parse_3", "from_test_parse_4"};
    /* NOTES.md: minimal is "m{} 0"; seeds 0-4 are parse cases 0-4. */
    static const size_t valid_families[] = {1, 0, 3, 2, 4, 1};
    int ok = 0;
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        char path[512];
        snprintf(path, sizeof path, PT "/common-expfmt/fuzz-corpus/%s", valid[i]);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        struct rec r = {0};
        char err[300];
        int rc = parse_both(body, len, SCRAPE_FORMAT_TEXT, true, false, &r, err, sizeof err, valid[i]);
        if (rc)
            fail_msg("%s: %s", valid[i], err);
        struct fam *f;
        size_t nf = build_families(&r, &f);
        if (nf != valid_families[i])
            fail_msg("%s: %zu families, expected %zu", valid[i], nf, valid_families[i]);
        free_families(f, nf);
        rec_free(&r);
        free(body);
        ok++;
    }
    for (int i = 0; i < 20; i++) {
        char path[512], name[64];
        snprintf(name, sizeof name, "from_test_parse_error_%d", i);
        snprintf(path, sizeof path, PT "/common-expfmt/fuzz-corpus/%s", name);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        int rc = parse_both(body, len, SCRAPE_FORMAT_TEXT, true, false, NULL, NULL, 0, name);
        if (rc == 0)
            fail_msg("%s: accepted in strict mode", name);
        free(body);
        ok++;
    }

    size_t len, glen;
    char *text = read_file(PT "/common-expfmt/testdata/text", &len);
    assert_non_null(text);
    check_testdata_text(text, len, "testdata/text");
    char *gz = read_gz(PT "/common-expfmt/testdata/text.gz", &glen);
    if (gz) {
        assert_int_equal(glen, len);
        assert_memory_equal(gz, text, len);
        check_testdata_text(gz, glen, "testdata/text.gz");
        free(gz);
    }
    /* The same body in lenient mode: every sample line is one sample. */
    struct rec r = {0};
    assert_int_equal(parse_body(text, len, SCRAPE_FORMAT_TEXT, false, false, 0, &r, NULL, 0), 0);
    assert_int_equal(rec_count(&r, false, 0), 248);
    rec_free(&r);
    free(text);
    print_message("common-expfmt fuzz corpus: %d seeds as expected; testdata/text: 37 families, "
                  "248 samples%s\n",
                  ok, gz ? " (also from text.gz)" : "");
}

/* ---- (iii) prometheus-textparse/cases ------------------------------------- */

/* A raw series text from expected.json ("m"), read leniently: the name, then labels
 * in order; a quoted string that is not followed by '=' is the metric name. */
struct series_text {
    char name[512];
    size_t nlen;
    struct {
        char name[256], value[256];
        size_t nlen, vlen;
    } l[16];
    size_t nl;
};

static size_t read_quoted(const char *s, size_t i, size_t n, char *out, size_t *olen)
{
    size_t o = 0;
    i++; /* opening quote */
    while (i < n && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < n) {
            char x = s[i + 1];
            out[o++] = x == 'n' ? '\n' : x;
            i += 2;
            continue;
        }
        out[o++] = s[i++];
    }
    *olen = o;
    return i + 1;
}

static void parse_series_text(const char *s, size_t n, struct series_text *st)
{
    memset(st, 0, sizeof *st);
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
        st->name[st->nlen++] = s[i++];
    while (i < n && s[i] != '{')
        i++;
    if (i >= n)
        return;
    i++;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        if (i >= n || s[i] == '}')
            break;
        char tok[512];
        size_t tlen = 0;
        if (s[i] == '"') {
            i = read_quoted(s, i, n, tok, &tlen);
        } else {
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                tok[tlen++] = s[i++];
        }
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < n && s[i] == '=') {
            i++;
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
            memcpy(st->l[st->nl].name, tok, tlen);
            st->l[st->nl].nlen = tlen;
            i = read_quoted(s, i, n, st->l[st->nl].value, &st->l[st->nl].vlen);
            st->nl++;
        } else {
            memcpy(st->name, tok, tlen);
            st->nlen = tlen;
        }
    }
}

static bool is_folded_created(const struct event *e)
{
    if (e->is_meta || e->family.len + 8 != e->name.len ||
        memcmp(e->name.p + e->family.len, "_created", 8) != 0)
        return false;
    return e->type == SCRAPE_TYPE_COUNTER || e->type == SCRAPE_TYPE_SUMMARY ||
           e->type == SCRAPE_TYPE_HISTOGRAM;
}

static void compare_entries(const char *file, const struct rec *r, json_t *entries)
{
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *x = json_array_get(entries, i);
        const char *kind = json_string_value(json_object_get(x, "kind"));
        if (strcmp(kind, "comment") == 0)
            continue;
        while (k < r->n && is_folded_created(&r->ev[k]))
            k++;
        if (k >= r->n)
            fail_msg("%s: entry %zu (%s) missing", file, i, kind);
        const struct event *e = &r->ev[k++];
        json_t *jm = json_object_get(x, "m");
        const char *m = json_string_value(jm);
        size_t mlen = json_string_length(jm);
        if (strcmp(kind, "series") == 0) {
            if (e->is_meta)
                fail_msg("%s: entry %zu: expected series %s, got metadata", file, i, m);
            struct series_text st;
            parse_series_text(m, mlen, &st);
            if (!rstr_eq(e->name, st.name, st.nlen))
                fail_msg("%s: entry %zu: name %s, expected %.*s", file, i, e->name.p, (int)st.nlen, st.name);
            if (e->nlabels != st.nl)
                fail_msg("%s: entry %zu (%s): %zu labels, expected %zu", file, i, m, e->nlabels, st.nl);
            for (size_t j = 0; j < st.nl; j++) {
                if (!rstr_eq(e->labels[j].name, st.l[j].name, st.l[j].nlen) ||
                    !rstr_eq(e->labels[j].value, st.l[j].value, st.l[j].vlen))
                    fail_msg("%s: entry %zu (%s): label %zu differs", file, i, m, j);
            }
            const char *v = json_string_value(json_object_get(x, "v"));
            double want = strstr(v, "NaN") ? NAN : strtod(v, NULL);
            if (isnan(want) ? !isnan(e->value) : want != e->value)
                fail_msg("%s: entry %zu (%s): value %.17g, expected %s", file, i, m, e->value, v);
            const char *t = json_string_value(json_object_get(x, "t"));
            if (t) {
                long long ts = 0;
                assert_int_equal(sscanf(t, "int64p(%lld)", &ts), 1);
                if (!e->has_ts || e->ts != ts)
                    fail_msg("%s: entry %zu (%s): timestamp %lld, expected %lld", file, i, m,
                             (long long)e->ts, ts);
            } else if (e->has_ts) {
                fail_msg("%s: entry %zu (%s): unexpected timestamp", file, i, m);
            }
            continue;
        }
        if (!e->is_meta)
            fail_msg("%s: entry %zu: expected %s for %s, got series %s", file, i, kind, m, e->name.p);
        if (!rstr_eq(e->name, m, mlen))
            fail_msg("%s: entry %zu: %s for %s, expected %s", file, i, kind, e->name.p, m);
        if (strcmp(kind, "help") == 0) {
            json_t *h = json_object_get(x, "help");
            assert_int_equal(e->kind, SCRAPE_META_HELP);
            if (!rstr_eq(e->text, json_string_value(h), json_string_length(h)))
                fail_msg("%s: entry %zu: help for %s is \"%s\"", file, i, m, e->text.p);
        } else if (strcmp(kind, "type") == 0) {
            const char *typ = json_string_value(json_object_get(x, "typ"));
            assert_int_equal(e->kind, SCRAPE_META_TYPE);
            const char *pfx = "model.MetricType";
            assert_true(strncmp(typ, pfx, strlen(pfx)) == 0);
            if (strcasecmp(typ + strlen(pfx), scrape_metric_type_name(e->type)) != 0)
                fail_msg("%s: entry %zu: type of %s is %s, expected %s", file, i, m,
                         scrape_metric_type_name(e->type), typ);
        } else if (strcmp(kind, "unit") == 0) {
            json_t *u = json_object_get(x, "unit");
            assert_int_equal(e->kind, SCRAPE_META_UNIT);
            assert_true(rstr_eq(e->text, json_string_value(u), json_string_length(u)));
        } else {
            fail_msg("%s: unknown entry kind %s", file, kind);
        }
    }
    while (k < r->n && is_folded_created(&r->ev[k]))
        k++;
    if (k != r->n)
        fail_msg("%s: %zu extra entries", file, r->n - k);
}

static void test_textparse_cases(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *exp = json_load_file(PT "/prometheus-textparse/cases/expected.json", JSON_ALLOW_NUL, &jerr);
    assert_non_null(exp);
    const char *file;
    json_t *c;
    int nvalid = 0, nerror = 0, compared = 0;
    json_object_foreach(exp, file, c)
    {
        char path[512];
        snprintf(path, sizeof path, PT "/prometheus-textparse/cases/%s", file);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        enum scrape_format fmt =
            strncmp(file, "om_", 3) == 0 ? SCRAPE_FORMAT_OPENMETRICS : SCRAPE_FORMAT_TEXT;
        bool should = strcmp(json_string_value(json_object_get(c, "expect")), "valid") == 0;
        bool utf8_only = strstr(file, "utf8") != NULL;
        for (int utf8 = 0; utf8 < 2; utf8++) {
            struct rec r = {0};
            char err[300];
            int rc = parse_both(body, len, fmt, false, utf8, &r, err, sizeof err, file);
            if (should && (utf8 || !utf8_only)) {
                if (rc)
                    fail_msg("%s (utf8=%d): rejected: %s", file, utf8, err);
                json_t *entries = json_object_get(c, "entries");
                if (entries && utf8) {
                    json_t *counts = json_object_get(c, "entry_counts");
                    json_t *n = json_object_get(counts, "series");
                    size_t series = 0;
                    for (size_t i = 0; i < r.n; i++)
                        series += !r.ev[i].is_meta && !is_folded_created(&r.ev[i]);
                    assert_int_equal(series, json_integer_value(n));
                    compare_entries(file, &r, entries);
                    compared++;
                }
            } else if (!should && rc == 0) {
                fail_msg("%s (utf8=%d): accepted, expected error %s", file, utf8,
                         json_string_value(json_object_get(c, "error")));
            }
            rec_free(&r);
        }
        should ? nvalid++ : nerror++;
        free(body);
    }
    json_decref(exp);
    print_message("prometheus textparse cases (lenient): %d valid accepted, %d errors rejected, "
                  "%d main inputs matched entry by entry\n",
                  nvalid, nerror, compared);
    assert_int_equal(nvalid + nerror, 113);
    assert_int_equal(compared, 4);
}

/* ---- (iv) benchmark files ------------------------------------------------ */

static void test_benchmark_files(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        enum scrape_format fmt;
        size_t samples, types, helps;
        bool strict_ok;
    } files[] = {
        {"/prometheus-textparse/testdata/alltypes.237mfs.prom.txt", SCRAPE_FORMAT_TEXT, 1857, 237, 237, true},
        {"/prometheus-textparse/testdata/alltypes.237mfs.nometa.prom.txt", SCRAPE_FORMAT_TEXT, 1857, 0, 0,
         true},
        {"/prometheus-textparse/testdata/alltypes.5mfs.om.txt", SCRAPE_FORMAT_OPENMETRICS, 53, 5, 5, false},
        {"/prometheus-textparse/testdata/1histogram.om.txt", SCRAPE_FORMAT_OPENMETRICS, 42, 1, 1, true},
        {"/prometheus-textparse/testdata-legacy/promtestdata.txt", SCRAPE_FORMAT_TEXT, 410, 59, 59, true},
        {"/prometheus-textparse/testdata-legacy/promtestdata.nometa.txt", SCRAPE_FORMAT_TEXT, 410, 0, 0,
         true},
        {"/prometheus-promtool/metrics-test.prom", SCRAPE_FORMAT_TEXT, 27, 4, 4, true},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512];
        snprintf(path, sizeof path, PT "%s", files[i].path);
        size_t len;
        char *body = read_file(path, &len);
        assert_non_null(body);
        struct rec r = {0};
        char err[300];
        int rc = parse_both(body, len, files[i].fmt, false, false, &r, err, sizeof err, path);
        if (rc)
            fail_msg("%s: %s", path, err);
        assert_int_equal(rec_count(&r, false, 0), files[i].samples);
        assert_int_equal(rec_count(&r, true, SCRAPE_META_TYPE), files[i].types);
        assert_int_equal(rec_count(&r, true, SCRAPE_META_HELP), files[i].helps);
        rec_free(&r);
        rc = parse_both(body, len, files[i].fmt, true, false, &r, err, sizeof err, path);
        if (files[i].strict_ok) {
            if (rc)
                fail_msg("%s: strict: %s", path, err);
            if (strstr(path, "metrics-test.prom")) {
                struct fam *f;
                size_t nf = build_families(&r, &f);
                assert_int_equal(nf, 4);
                free_families(f, nf);
            }
        } else {
            /* Its rpc_durations_histogram_seconds has negative buckets and a negative
             * _sum, which OpenMetrics 1.0 forbids; Prometheus does not check. */
            assert_int_equal(rc, SS_EPARSE);
            assert_non_null(strstr(err, "line 33:"));
        }
        rec_free(&r);
        free(body);
    }
    print_message("benchmark expositions: %zu files with the documented sample counts\n",
                  sizeof files / sizeof *files);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_cases),
        cmocka_unit_test(test_common_fuzz_corpus_and_testdata),
        cmocka_unit_test(test_textparse_cases),
        cmocka_unit_test(test_benchmark_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
