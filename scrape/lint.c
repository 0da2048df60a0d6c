/* lint.c: `scrapeship lint`'s checks: one exposition validated strictly, plus the
 * warnings of `promtool check metrics` (client_golang's promlint, as Prometheus 2.42
 * ships it).
 *
 * Errors come from the strict parser in validation mode (scrape_parser_cb.error): it
 * reports every bad line and goes on, so one run lists every problem. Warnings are
 * per metric family, as promlint's are, and point at the family's first line. They
 * follow promlint's rules and messages word for word:
 *   no help text; counter metrics should have "_total" suffix (and non-counters should
 *   not); use base unit "X" instead of "Y"; non-histogram (and non-summary) metrics
 *   should not have "_bucket" / "_count" / "_sum" suffix, or "le" / "quantile" labels;
 *   metric name should not include type 'T'; metric names should not contain ':';
 *   metric and label names should be written in 'snake_case' not 'camelCase'; metric
 *   names should not contain abbreviated units.
 * One more, which promlint cannot see because it reads families by name: a family
 * whose name is another family's sample name (a gauge foo_count beside a summary foo)
 * is reported as a name reused with another type.
 *
 * OpenMetrics counters are linted by their sample name (foo_total), the name a
 * 0.0.4 exposition of the same family would carry.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

#define LINT_MAX_PROBLEMS 10000

struct lint_family {
    const char *name; /* as promlint sees it (OpenMetrics counters: with _total) */
    const char *family;
    enum scrape_metric_type type;
    bool help, samples;
    uint32_t line;
    bool camel_label, le_label, quantile_label;
};

struct scrape_lint {
    struct ss_arena arena;
    struct scrape_lint_problem *v;
    size_t n, cap, nerrors;
    bool truncated;
    struct lint_family *fam;
    size_t nfam, famcap;
    uint32_t *slots; /* open addressing: family index + 1; 0 = empty */
    size_t nslots;
    enum scrape_format format;
    int oom;
};

static int add_problem(struct scrape_lint *l, uint32_t line, uint32_t col, bool warning, const char *metric,
                       const char *msg)
{
    if (l->n >= LINT_MAX_PROBLEMS) {
        l->truncated = true;
        return 0;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        struct scrape_lint_problem *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return SS_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    char *m = ss_arena_strndup(&l->arena, msg, strlen(msg));
    char *f = ss_arena_strndup(&l->arena, metric ? metric : "", metric ? strlen(metric) : 0);
    if (!m || !f)
        return SS_ENOMEM;
    l->v[l->n++] = (struct scrape_lint_problem){line, col, warning, f, m};
    l->nerrors += !warning;
    return 0;
}

static int on_error(void *ud, const struct scrape_parse_error *e)
{
    struct scrape_lint *l = ud;
    return add_problem(l, e->line, e->column, false, NULL, e->message);
}

/* ---- families ------------------------------------------------------------ */

static uint64_t name_hash(struct ss_str s)
{
    return ss_hash_str(0x9E3779B97F4A7C15ULL, s);
}

static struct lint_family *fam_find(const struct scrape_lint *l, struct ss_str name)
{
    if (!l->nslots)
        return NULL;
    for (size_t i = name_hash(name) & (l->nslots - 1);; i = (i + 1) & (l->nslots - 1)) {
        uint32_t s = l->slots[i];
        if (!s)
            return NULL;
        struct lint_family *f = &l->fam[s - 1];
        if (strlen(f->family) == name.len && memcmp(f->family, name.p, name.len) == 0)
            return f;
    }
}

static int fam_rehash(struct scrape_lint *l, size_t nslots)
{
    uint32_t *ns = calloc(nslots, sizeof *ns);
    if (!ns)
        return SS_ENOMEM;
    for (size_t k = 0; k < l->nfam; k++) {
        struct ss_str n = {l->fam[k].family, strlen(l->fam[k].family)};
        size_t i = name_hash(n) & (nslots - 1);
        while (ns[i])
            i = (i + 1) & (nslots - 1);
        ns[i] = (uint32_t)k + 1;
    }
    free(l->slots);
    l->slots = ns;
    l->nslots = nslots;
    return 0;
}

/* The family named `name`, created at `line` when new. */
static struct lint_family *fam_get(struct scrape_lint *l, struct ss_str name, uint32_t line)
{
    struct lint_family *f = fam_find(l, name);
    if (f)
        return f;
    if ((l->nfam + 1) * 2 > l->nslots && fam_rehash(l, l->nslots ? l->nslots * 2 : 64))
        return NULL;
    if (l->nfam == l->famcap) {
        size_t nc = l->famcap ? l->famcap * 2 : 32;
        struct lint_family *nf = realloc(l->fam, nc * sizeof *nf);
        if (!nf)
            return NULL;
        l->fam = nf;
        l->famcap = nc;
    }
    char *s = ss_arena_strndup(&l->arena, name.p, name.len);
    if (!s)
        return NULL;
    f = &l->fam[l->nfam++];
    *f = (struct lint_family){.name = s, .family = s, .line = line};
    size_t i = name_hash(name) & (l->nslots - 1);
    while (l->slots[i])
        i = (i + 1) & (l->nslots - 1);
    l->slots[i] = (uint32_t)l->nfam;
    return f;
}

static bool has_camel(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z' && s[i + 1] >= 'A' && s[i + 1] <= 'Z')
            return true;
    return false;
}

static int on_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct scrape_lint *l = ud;
    struct lint_family *f = fam_get(l, m->family, m->line);
    if (!f)
        return l->oom = SS_ENOMEM;
    if (m->kind == SCRAPE_META_HELP)
        f->help = f->help || m->text.len > 0;
    else if (m->kind == SCRAPE_META_TYPE)
        f->type = m->type;
    return 0;
}

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct scrape_lint *l = ud;
    struct lint_family *f = fam_get(l, s->family, s->line);
    if (!f)
        return l->oom = SS_ENOMEM;
    f->type = s->type;
    f->samples = true;
    bool bucket = s->name.len >= 7 && memcmp(s->name.p + s->name.len - 7, "_bucket", 7) == 0;
    bool plain = s->name.len == s->family.len;
    for (size_t i = 0; i < s->nlabels; i++) {
        struct ss_str n = s->labels[i].name;
        f->camel_label |= has_camel(n.p, n.len);
        /* the parser of promtool takes le off a histogram's buckets and quantile off a
         * summary's quantile samples; anywhere else they stay labels */
        if (n.len == 2 && memcmp(n.p, "le", 2) == 0 && !(f->type == SCRAPE_TYPE_HISTOGRAM && bucket))
            f->le_label = true;
        if (n.len == 8 && memcmp(n.p, "quantile", 8) == 0 && !(f->type == SCRAPE_TYPE_SUMMARY && plain))
            f->quantile_label = true;
    }
    return 0;
}

/* ---- promlint's rules --------------------------------------------------- */

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && memcmp(s + n - m, sfx, m) == 0;
}

/* strings.Contains(n, "_"+w+"_") || strings.HasSuffix(n, "_"+w) */
static bool has_word(const char *n, const char *w)
{
    char mid[64], end[64];
    snprintf(mid, sizeof mid, "_%s_", w);
    snprintf(end, sizeof end, "_%s", w);
    return strstr(n, mid) || ends_with(n, end);
}

/* promlint's units (client_golang 1.14): each unit with the base unit it should be,
 * and the prefixes it tries on each (its list, "mibi" and all). */
static const char *const units[][2] = {
    {"amperes", "amperes"}, {"bytes", "bytes"},     {"celsius", "celsius"}, {"grams", "grams"},
    {"joules", "joules"},   {"kelvin", "kelvin"},   {"meters", "meters"},   {"metres", "metres"},
    {"seconds", "seconds"}, {"volts", "volts"},     {"minutes", "seconds"}, {"hours", "seconds"},
    {"days", "seconds"},    {"weeks", "seconds"},   {"kelvins", "kelvin"},  {"fahrenheit", "celsius"},
    {"rankine", "celsius"}, {"inches", "meters"},   {"yards", "meters"},    {"miles", "meters"},
    {"bits", "bytes"},      {"calories", "joules"}, {"pounds", "grams"},    {"ounces", "grams"},
};
static const char *const unit_prefixes[] = {"pico",  "nano", "micro", "milli", "centi", "deci", "deca",
                                            "hecto", "kilo", "kibi",  "mega",  "mibi",  "giga", "gibi",
                                            "tera",  "tebi", "peta",  "pebi",  "",      NULL};
static const char *const unit_abbreviations[] = {"s",  "ms", "us", "ns", "sec", "b", "kb", "mb",
                                                 "gb", "tb", "pb", "m",  "h",   "d", NULL};

/* promlint's metricUnits and lintMetricUnits: a "_"-separated word that is a unit,
 * with or without a prefix, other than a base unit as it is (milliseconds, minutes,
 * kilobits). promlint looks the units up in a Go map, so with two unit words
 * (w_kelvin_milliamperes) its answer depends on the map's random order; this takes
 * the first word that warns every time, a warning promtool gives when it gives one. */
static bool metric_units(const char *name, char *unit, size_t ucap, const char **base)
{
    const char *w = name;
    for (;;) {
        const char *e = strchr(w, '_');
        size_t wl = e ? (size_t)(e - w) : strlen(w);
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t ul = strlen(units[u][0]);
            for (int p = 0; unit_prefixes[p]; p++) {
                size_t pl = strlen(unit_prefixes[p]);
                if (wl == pl + ul && memcmp(w, unit_prefixes[p], pl) == 0 &&
                    memcmp(w + pl, units[u][0], ul) == 0 && (pl || strcmp(units[u][0], units[u][1]))) {
                    snprintf(unit, ucap, "%.*s", (int)wl, w);
                    *base = units[u][1];
                    return true;
                }
            }
        }
        if (!e)
            return false;
        w = e + 1;
    }
}

static int lint_family(struct scrape_lint *l, const struct lint_family *f)
{
    const char *n = f->name;
    char msg[256];
    int rc = 0;
#define WARN(text) (rc = rc ? rc : add_problem(l, f->line, 1, true, n, (text)))
    if (!f->help)
        WARN("no help text");
    char unit[64];
    const char *base;
    if (metric_units(n, unit, sizeof unit, &base)) {
        snprintf(msg, sizeof msg, "use base unit \"%s\" instead of \"%s\"", base, unit);
        WARN(msg);
    }
    bool counter = f->type == SCRAPE_TYPE_COUNTER;
    if (counter && !ends_with(n, "_total"))
        WARN("counter metrics should have \"_total\" suffix");
    if (!counter && ends_with(n, "_total"))
        WARN("non-counter metrics should not have \"_total\" suffix");
    if (f->type != SCRAPE_TYPE_UNKNOWN) {
        bool hist = f->type == SCRAPE_TYPE_HISTOGRAM || f->type == SCRAPE_TYPE_GAUGEHISTOGRAM;
        bool summ = f->type == SCRAPE_TYPE_SUMMARY;
        if (!hist && ends_with(n, "_bucket"))
            WARN("non-histogram metrics should not have \"_bucket\" suffix");
        if (!hist && !summ && ends_with(n, "_count"))
            WARN("non-histogram and non-summary metrics should not have \"_count\" suffix");
        if (!hist && !summ && ends_with(n, "_sum"))
            WARN("non-histogram and non-summary metrics should not have \"_sum\" suffix");
        if (!hist && f->le_label)
            WARN("non-histogram metrics should not have \"le\" label");
        if (!summ && f->quantile_label)
            WARN("non-summary metrics should not have \"quantile\" label");
        char lower[256];
        size_t k = 0;
        for (; n[k] && k < sizeof lower - 1; k++)
            lower[k] = (char)tolower((unsigned char)n[k]);
        lower[k] = '\0';
        const char *tn =
            f->type == SCRAPE_TYPE_GAUGEHISTOGRAM ? "gaugehistogram" : scrape_metric_type_name(f->type);
        if (has_word(lower, tn)) {
            snprintf(msg, sizeof msg, "metric name should not include type '%s'", tn);
            WARN(msg);
        }
    }
    if (strchr(n, ':'))
        WARN("metric names should not contain ':'");
    if (has_camel(n, strlen(n)))
        WARN("metric names should be written in 'snake_case' not 'camelCase'");
    if (f->camel_label)
        WARN("label names should be written in 'snake_case' not 'camelCase'");
    char lower[256];
    size_t k = 0;
    for (; n[k] && k < sizeof lower - 1; k++)
        lower[k] = (char)tolower((unsigned char)n[k]);
    lower[k] = '\0';
    for (int a = 0; unit_abbreviations[a]; a++)
        if (has_word(lower, unit_abbreviations[a])) {
            WARN("metric names should not contain abbreviated units");
            break;
        }
    /* a name that is another family's sample name */
    static const struct {
        const char *sfx;
        enum scrape_metric_type t;
    } owned[] = {{"_bucket", SCRAPE_TYPE_HISTOGRAM}, {"_count", SCRAPE_TYPE_HISTOGRAM},
                 {"_sum", SCRAPE_TYPE_HISTOGRAM},    {"_count", SCRAPE_TYPE_SUMMARY},
                 {"_sum", SCRAPE_TYPE_SUMMARY},      {"_total", SCRAPE_TYPE_COUNTER}};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        size_t fl = strlen(f->family), sl = strlen(owned[i].sfx);
        if (!ends_with(f->family, owned[i].sfx) || f->type == owned[i].t)
            continue;
        const struct lint_family *o = fam_find(l, (struct ss_str){f->family, fl - sl});
        if (o && o->type == owned[i].t) {
            snprintf(msg, sizeof msg, "metric name reused with another type: %s is a series of %s %s",
                     f->family, scrape_metric_type_name(o->type), o->family);
            WARN(msg);
            break;
        }
    }
#undef WARN
    return rc;
}

static int cmp_problem(const void *a, const void *b)
{
    const struct scrape_lint_problem *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->warning != y->warning)
        return x->warning ? 1 : -1; /* errors first */
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    int c = strcmp(x->metric, y->metric);
    return c ? c : strcmp(x->message, y->message);
}

int scrape_lint_run(enum scrape_format format, const char *body, size_t len, bool warnings,
                    struct scrape_lint **out)
{
    *out = NULL;
    struct scrape_lint *l = calloc(1, sizeof *l);
    if (!l)
        return SS_ENOMEM;
    ss_arena_init(&l->arena, 16384);
    l->format = format;
    struct scrape_parser *p = NULL;
    int rc = scrape_parser_new(&(struct scrape_parser_opts){.format = format, .strict = true}, &p);
    if (rc)
        goto fail;
    struct scrape_parser_cb cb = {on_sample, on_meta, l, on_error};
    rc = scrape_parser_feed(p, body, len, &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    if (rc == SS_ELIMIT) { /* a line too long: the body cannot be read on */
        rc = add_problem(l, 0, 1, false, NULL, scrape_parser_error(p));
        /* scrape_parser_error names the line; take it from there */
        const char *m = scrape_parser_error(p);
        if (!rc && strncmp(m, "line ", 5) == 0)
            l->v[l->n - 1].line = (uint32_t)strtoul(m + 5, NULL, 10);
    }
    if (rc)
        goto fail;
    for (size_t i = 0; warnings && i < l->nfam; i++) {
        struct lint_family *f = &l->fam[i];
        if (format == SCRAPE_FORMAT_TEXT && !f->samples)
            continue; /* prometheus/common drops a family without samples */
        if (format == SCRAPE_FORMAT_OPENMETRICS && f->type == SCRAPE_TYPE_COUNTER) {
            size_t fl = strlen(f->family);
            char *n = ss_arena_alloc(&l->arena, fl + 7);
            if (!n) {
                rc = SS_ENOMEM;
                goto fail;
            }
            memcpy(n, f->family, fl);
            memcpy(n + fl, "_total", 7);
            f->name = n;
        }
        if ((rc = lint_family(l, f)))
            goto fail;
    }
    if (l->v)
        qsort(l->v, l->n, sizeof *l->v, cmp_problem);
    scrape_parser_free(p);
    *out = l;
    return 0;
fail:
    scrape_parser_free(p);
    scrape_lint_free(l);
    return rc;
}

size_t scrape_lint_count(const struct scrape_lint *l)
{
    return l ? l->n : 0;
}

size_t scrape_lint_errors(const struct scrape_lint *l)
{
    return l ? l->nerrors : 0;
}

bool scrape_lint_truncated(const struct scrape_lint *l)
{
    return l && l->truncated;
}

const struct scrape_lint_problem *scrape_lint_get(const struct scrape_lint *l, size_t i)
{
    return l && i < l->n ? &l->v[i] : NULL;
}

void scrape_lint_free(struct scrape_lint *l)
{
    if (!l)
        return;
    ss_arena_free(&l->arena);
    free(l->v);
    free(l->fam);
    free(l->slots);
    free(l);
}
