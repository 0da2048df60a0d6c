/* otel.c: ship the series an OpenTelemetry collector would ship for the same scrape.
 *
 * An ADOT user's dashboards query what the collector's prometheus receiver and
 * prometheusremotewrite exporter produce, which is not quite what Prometheus stores.
 * This sink sits between the scrape engine and one remote and rewrites each scrape
 * the way opentelemetry-collector-contrib v0.98.0 (ADOT v0.39) does:
 *
 *  1. names: the exporter's BuildCompliantName with add_metric_suffixes (the
 *     pkg.translator.prometheus.NormalizeName gate is beta, so on): the family name is
 *     split into alphanumeric tokens and joined with "_", the UNIT is appended unless
 *     a token already is it, monotonic counters end in exactly one "_total", gauges
 *     with unit "1" in "_ratio"; then the namespace prefix. Histogram and summary
 *     samples keep their _bucket/_sum/_count after the new name;
 *  2. "<family>_created" samples of counters, histograms and summaries are start
 *     times for the receiver, not series: dropped;
 *  3. label names: NormalizeLabel turns "_x" into "key_x"; names it makes equal are
 *     one label with the values joined by ";" (createAttributes);
 *  4. job and instance come back from service.name / service.instance.id, which the
 *     receiver set from the series' own job and instance: unchanged values;
 *  5. target_info: one per (job, instance) per scrape, value 1, at the scrape's
 *     latest timestamp, with the resource attributes the receiver derives from the
 *     target (http_scheme, net_host_port, net_host_name unless loopback, and from
 *     Kubernetes discovery k8s_namespace_name, k8s_pod_name, k8s_pod_uid,
 *     k8s_container_name, k8s_node_name and the pod's controller: k8s_replicaset_name,
 *     k8s_daemonset_name, k8s_statefulset_name, k8s_job_name or k8s_cronjob_name);
 *  6. resource_to_telemetry_conversion: those attributes, plus service_name and
 *     service_instance_id, on every series;
 *  7. the exporter's external_labels, when the series lacks the label;
 *  8. stale markers pass through (the receiver's NoRecordedValue flag becomes a
 *     StaleNaN again); target_info gets none.
 * Types and units come from the TYPE/UNIT lines of the scrapes, remembered per job
 * label (the one the series carry, which relabeling may have set) and family, in a
 * bounded table: a family never typed under its job is a gauge. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "sstext.h"

#define OTEL_META_CAP      (1u << 17) /* slots; at most half are used */
#define OTEL_MAX_RESOURCES 64         /* distinct job/instance pairs in one scrape */
#define OTEL_MAX_LABELS    256
#define OTEL_NAME_MAX      1024

struct meta_entry {
    char *key; /* "job\0family" */
    size_t keylen;
    enum scrape_metric_type type;
    char *unit;
};

struct resource {
    char job[256], instance[256];
    int64_t ts;
};

struct collector_otel {
    struct cfg_otel_series cfg; /* strings borrowed from the config */
    struct scrape_sink down;
    struct meta_entry *meta; /* OTEL_META_CAP slots, lazily */
    size_t nmeta;
    _Atomic uint64_t meta_dropped;    /* TYPE/UNIT lines not remembered: the table was full */
    _Atomic uint64_t too_many_labels; /* series not shipped: more than OTEL_MAX_LABELS */
    struct resource res[OTEL_MAX_RESOURCES];
    size_t nres;
    char scheme[16];
    const struct ss_label *k8s; /* the scrape's resource attributes (scrape_report) */
    size_t nk8s;
    struct ss_labels ls;
};

int collector_otel_new(const struct cfg_otel_series *o, const struct scrape_sink *down,
                       struct collector_otel **out)
{
    *out = NULL;
    struct collector_otel *x = calloc(1, sizeof *x);
    if (!x)
        return SS_ENOMEM;
    x->cfg = *o;
    x->down = *down;
    ss_labels_init(&x->ls);
    *out = x;
    return 0;
}

uint64_t collector_otel_dropped(const struct collector_otel *x)
{
    return x ? atomic_load(&((struct collector_otel *)x)->too_many_labels) : 0;
}

uint64_t collector_otel_metadata_dropped(const struct collector_otel *x)
{
    return x ? atomic_load(&((struct collector_otel *)x)->meta_dropped) : 0;
}

void collector_otel_free(struct collector_otel *x)
{
    if (!x)
        return;
    for (size_t i = 0; x->meta && i < OTEL_META_CAP; i++) {
        free(x->meta[i].key);
        free(x->meta[i].unit);
    }
    free(x->meta);
    ss_labels_free(&x->ls);
    free(x);
}

/* ---- the TYPE/UNIT table --------------------------------------------------------- */

static uint64_t meta_hash(const char *job, struct ss_str fam)
{
    uint64_t h = ss_hash_str(1469598103934665603ULL, (struct ss_str){job, strlen(job)});
    return ss_hash_str(h, fam);
}

static struct meta_entry *meta_find(struct collector_otel *x, const char *job, struct ss_str fam, bool add)
{
    if (!x->meta) {
        if (!add || !(x->meta = calloc(OTEL_META_CAP, sizeof *x->meta)))
            return NULL;
    }
    size_t jl = strlen(job), kl = jl + 1 + fam.len;
    for (size_t i = meta_hash(job, fam) & (OTEL_META_CAP - 1), n = 0; n < OTEL_META_CAP;
         i = (i + 1) & (OTEL_META_CAP - 1), n++) {
        struct meta_entry *e = &x->meta[i];
        if (!e->key) {
            if (!add)
                return NULL;
            if (x->nmeta >= OTEL_META_CAP / 2) {
                if (atomic_fetch_add(&x->meta_dropped, 1) == 0)
                    ss_warn(
                        "otel",
                        "the TYPE/UNIT table is full (%u job/family pairs): family %.*s of job %s and others "
                        "typed from now on are shipped as untyped gauges (counted in "
                        "scrapeship_otel_metadata_dropped_total; this is logged once)",
                        OTEL_META_CAP / 2, (int)fam.len, fam.p, job);
                return NULL;
            }
            if (!(e->key = malloc(kl + 1)))
                return NULL;
            memcpy(e->key, job, jl + 1);
            memcpy(e->key + jl + 1, fam.p, fam.len);
            e->key[kl] = '\0';
            e->keylen = kl;
            x->nmeta++;
            return e;
        }
        if (e->keylen == kl && !memcmp(e->key, job, jl + 1) && !memcmp(e->key + jl + 1, fam.p, fam.len))
            return e;
    }
    return NULL;
}

static void on_meta(void *ud, const struct scrape_parsed_meta *m, const char *job)
{
    struct collector_otel *x = ud;
    if (m->kind == SCRAPE_META_TYPE || m->kind == SCRAPE_META_UNIT) {
        char jobz[256]; /* cut as the lookups of on_series cut it */
        snprintf(jobz, sizeof jobz, "%s", job);
        struct meta_entry *e = meta_find(x, jobz, m->family, true);
        if (e && m->kind == SCRAPE_META_TYPE)
            e->type = m->type;
        if (e && m->kind == SCRAPE_META_UNIT) {
            free(e->unit);
            e->unit = m->text.len ? strndup(m->text.p, m->text.len > 64 ? 64 : m->text.len) : NULL;
        }
    }
    if (x->down.metadata)
        x->down.metadata(x->down.ud, m, job);
}

/* ---- names ------------------------------------------------------------------------- */

static bool ends_with(struct ss_str s, const char *suf)
{
    size_t n = strlen(suf);
    return s.len > n && !memcmp(s.p + s.len - n, suf, n);
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* OTel (UCUM) units as Prometheus words; other units are used as written. */
static const char *unit_word(const char *u)
{
    static const char *const map[][2] = {{"d", "days"},
                                         {"h", "hours"},
                                         {"min", "minutes"},
                                         {"s", "seconds"},
                                         {"ms", "milliseconds"},
                                         {"us", "microseconds"},
                                         {"ns", "nanoseconds"},
                                         {"By", "bytes"},
                                         {"KiBy", "kibibytes"},
                                         {"MiBy", "mebibytes"},
                                         {"GiBy", "gibibytes"},
                                         {"TiBy", "tibibytes"}, /* sic, contrib's spelling */
                                         {"KBy", "kilobytes"},
                                         {"MBy", "megabytes"},
                                         {"GBy", "gigabytes"},
                                         {"TBy", "terabytes"},
                                         {"m", "meters"},
                                         {"V", "volts"},
                                         {"A", "amperes"},
                                         {"J", "joules"},
                                         {"W", "watts"},
                                         {"g", "grams"},
                                         {"Cel", "celsius"},
                                         {"Hz", "hertz"},
                                         {"1", ""},
                                         {"%", "percent"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(u, map[i][0]))
            return map[i][1];
    return u;
}

struct tokens {
    struct ss_str v[64];
    size_t n;
};

static void tok_split(struct tokens *t, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && t->n < 64) {
        while (i < len && !is_alnum(s[i]))
            i++;
        size_t b = i;
        while (i < len && is_alnum(s[i]))
            i++;
        if (i > b)
            t->v[t->n++] = (struct ss_str){s + b, i - b};
    }
}

static bool tok_has(const struct tokens *t, const char *w)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].len == strlen(w) && !memcmp(t->v[i].p, w, t->v[i].len))
            return true;
    return false;
}

static void tok_remove(struct tokens *t, const char *w)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!(t->v[i].len == strlen(w) && !memcmp(t->v[i].p, w, t->v[i].len)))
            t->v[k++] = t->v[i];
    t->n = k;
}

/* BuildCompliantName (rule 1) into out; returns the length. */
size_t collector_otel_name(const struct cfg_otel_series *o, const char *family, size_t flen,
                           enum scrape_metric_type type, const char *unit, char *out, size_t cap)
{
    size_t n = 0;
#define PUT(p, l)                                                                                            \
    do {                                                                                                     \
        size_t l_ = (l);                                                                                     \
        if (n + l_ < cap) {                                                                                  \
            memcpy(out + n, (p), l_);                                                                        \
            n += l_;                                                                                         \
        }                                                                                                    \
    } while (0)
    if (!o->add_metric_suffixes) {
        if (o->namespace) {
            PUT(o->namespace, strlen(o->namespace));
            PUT("_", 1);
        }
        PUT(family, flen);
        out[n] = '\0';
        return n;
    }
    struct tokens t = {.n = 0};
    tok_split(&t, family, flen);
    char ubuf[80], uclean[96];
    if (unit && *unit && !strpbrk(unit, "{}")) {
        const char *slash = strchr(unit, '/');
        snprintf(ubuf, sizeof ubuf, "%.*s", (int)(slash ? (size_t)(slash - unit) : strlen(unit)), unit);
        const char *w = unit_word(ubuf);
        /* CleanUpString: the unit's own alphanumeric runs, joined by "_", appended as
         * one token unless a name token equals it (so a unit "kilo_watts" is always
         * appended: no single token is "kilo_watts") */
        struct tokens ut = {.n = 0};
        tok_split(&ut, w, strlen(w));
        size_t ul = 0;
        for (size_t i = 0; i < ut.n && ul + ut.v[i].len + 1 < sizeof uclean; i++) {
            if (i)
                uclean[ul++] = '_';
            memcpy(uclean + ul, ut.v[i].p, ut.v[i].len);
            ul += ut.v[i].len;
        }
        uclean[ul] = '\0';
        if (ul && !tok_has(&t, uclean) && t.n < 64)
            t.v[t.n++] = (struct ss_str){uclean, ul};
    }
    if (type == SCRAPE_TYPE_COUNTER) {
        tok_remove(&t, "total");
        if (t.n < 64)
            t.v[t.n++] = (struct ss_str){"total", 5};
    }
    if (unit && !strcmp(unit, "1") && type == SCRAPE_TYPE_GAUGE) {
        tok_remove(&t, "ratio");
        if (t.n < 64)
            t.v[t.n++] = (struct ss_str){"ratio", 5};
    }
    if (o->namespace) {
        PUT(o->namespace, strlen(o->namespace));
        if (t.n)
            PUT("_", 1);
    } else if (t.n && t.v[0].p[0] >= '0' && t.v[0].p[0] <= '9') {
        PUT("_", 1);
    }
    for (size_t i = 0; i < t.n; i++) {
        if (i)
            PUT("_", 1);
        PUT(t.v[i].p, t.v[i].len);
    }
    out[n] = '\0';
    return n;
#undef PUT
}

/* The family of a sample name and the suffix after it, from the job's TYPE lines. */
static void classify(struct collector_otel *x, const char *job, struct ss_str name, struct ss_str *family,
                     struct ss_str *suffix, enum scrape_metric_type *type, const char **unit)
{
    static const struct {
        const char *suf;
        unsigned types; /* bit per enum scrape_metric_type */
    } sufs[] = {
        {"_bucket", 1u << SCRAPE_TYPE_HISTOGRAM | 1u << SCRAPE_TYPE_GAUGEHISTOGRAM},
        {"_sum", 1u << SCRAPE_TYPE_HISTOGRAM | 1u << SCRAPE_TYPE_SUMMARY},
        {"_count", 1u << SCRAPE_TYPE_HISTOGRAM | 1u << SCRAPE_TYPE_SUMMARY},
        {"_gsum", 1u << SCRAPE_TYPE_GAUGEHISTOGRAM},
        {"_gcount", 1u << SCRAPE_TYPE_GAUGEHISTOGRAM},
        {"_total", 1u << SCRAPE_TYPE_COUNTER},
        {"_created", 1u << SCRAPE_TYPE_COUNTER | 1u << SCRAPE_TYPE_HISTOGRAM | 1u << SCRAPE_TYPE_SUMMARY},
        {"_info", 1u << SCRAPE_TYPE_INFO},
    };
    *family = name;
    *suffix = (struct ss_str){"", 0};
    *type = SCRAPE_TYPE_UNKNOWN;
    *unit = NULL;
    struct meta_entry *e = meta_find(x, job, name, false);
    if (e && e->type != SCRAPE_TYPE_UNKNOWN) {
        *type = e->type;
        *unit = e->unit;
        return;
    }
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
        if (!ends_with(name, sufs[i].suf))
            continue;
        struct ss_str f = {name.p, name.len - strlen(sufs[i].suf)};
        struct meta_entry *fe = meta_find(x, job, f, false);
        if (fe && (sufs[i].types & (1u << fe->type))) {
            *family = f;
            *suffix = (struct ss_str){name.p + f.len, name.len - f.len};
            *type = fe->type;
            *unit = fe->unit;
            return;
        }
    }
    if (e)
        *unit = e->unit;
}

/* ---- the resource ------------------------------------------------------------------ */

/* net.SplitHostPort on the instance label; host is the whole instance when it has
 * no port. */
static void split_host_port(const char *inst, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(inst, ':');
    port[0] = '\0';
    snprintf(host, hcap, "%s", inst);
    if (!colon)
        return;
    if (inst[0] == '[') {
        const char *close = strchr(inst, ']');
        if (!close || close + 1 != colon)
            return;
        snprintf(host, hcap, "%.*s", (int)(close - inst - 1), inst + 1);
    } else {
        if (memchr(inst, ':', (size_t)(colon - inst)))
            return; /* a bare IPv6 address: no port */
        snprintf(host, hcap, "%.*s", (int)(colon - inst), inst);
    }
    snprintf(port, pcap, "%s", colon + 1);
}

/* isDiscernibleHost: not localhost, not a loopback or unspecified address. */
static bool discernible(const char *h)
{
    return strcmp(h, "localhost") && strncmp(h, "127.", 4) && strcmp(h, "::1") && strcmp(h, "0.0.0.0") &&
           strcmp(h, "::");
}

#define S(lit) ((struct ss_str){(lit), sizeof(lit) - 1})
static struct ss_str str_of(const char *s)
{
    return (struct ss_str){s, strlen(s)};
}

/* createAttributes: label names that NormalizeLabel makes equal ("_x" and "key_x", or
 * "service.name" copied by resource_to_telemetry_conversion and a scraped
 * "service_name") are one label, their values joined with ";" in the order of the
 * original names. Never two labels of one name: a remote-write receiver refuses the
 * request ("label name is not unique"). */
static int put_join(struct ss_labels *ls, struct ss_str name, struct ss_str value)
{
    const struct ss_str *old = ss_labels_get(ls, name);
    if (!old)
        return ss_labels_setc(ls, name, value);
    if (!value.len)
        return 0;
    size_t n = old->len + 1 + value.len;
    char *v = malloc(n);
    if (!v)
        return SS_ENOMEM;
    memcpy(v, old->p, old->len);
    v[old->len] = ';';
    memcpy(v + old->len + 1, value.p, value.len);
    int rc = ss_labels_setc(ls, name, (struct ss_str){v, n});
    free(v);
    return rc;
}

/* The resource attributes as labels (rules 5 and 6). */
static int push_resource(struct collector_otel *x, struct ss_labels *ls, const char *job, const char *inst,
                         bool service)
{
    char host[256], port[64];
    split_host_port(inst, host, sizeof host, port, sizeof port);
    int rc = 0;
    if (discernible(host))
        rc = put_join(ls, S("net_host_name"), str_of(host));
    if (!rc && port[0])
        rc = put_join(ls, S("net_host_port"), str_of(port));
    if (!rc && x->scheme[0])
        rc = put_join(ls, S("http_scheme"), str_of(x->scheme));
    /* addKubernetesResource's k8s.* attributes, named as NormalizeLabel names them */
    for (size_t i = 0; !rc && i < x->nk8s; i++) {
        char key[128];
        size_t kl = x->k8s[i].name.len < sizeof key ? x->k8s[i].name.len : sizeof key - 1;
        for (size_t j = 0; j < kl; j++)
            key[j] = is_alnum(x->k8s[i].name.p[j]) ? x->k8s[i].name.p[j] : '_';
        rc = put_join(ls, (struct ss_str){key, kl}, x->k8s[i].value);
    }
    if (!rc && service && job[0])
        rc = put_join(ls, S("service_name"), str_of(job));
    if (!rc && service && inst[0])
        rc = put_join(ls, S("service_instance_id"), str_of(inst));
    return rc;
}

static void push_external(struct collector_otel *x, struct ss_labels *ls)
{
    for (size_t i = 0; i < x->cfg.nexternal_labels; i++) {
        struct ss_str k = str_of(x->cfg.external_labels[i].key);
        if (!ss_labels_get(ls, k))
            ss_labels_set(ls, k, str_of(x->cfg.external_labels[i].value));
    }
}

static void emit_series(struct collector_otel *x, double v, int64_t ts)
{
    ss_labels_sort(&x->ls);
    struct scrape_series s = {x->ls.v, x->ls.n, v, ts, ss_labels_hash(&x->ls), NULL, 0, 0, 0, NULL, NULL, 0};
    x->down.series(x->down.ud, &s);
}

/* ---- the sink ------------------------------------------------------------------------ */

static void on_begin(void *ud, const struct scrape_report *r)
{
    struct collector_otel *x = ud;
    x->nres = 0;
    x->scheme[0] = '\0';
    x->k8s = r->resource;
    x->nk8s = r->nresource;
    const char *p = r->url ? strstr(r->url, "://") : NULL;
    if (p && (size_t)(p - r->url) < sizeof x->scheme)
        snprintf(x->scheme, sizeof x->scheme, "%.*s", (int)(p - r->url), r->url);
    if (x->down.begin)
        x->down.begin(x->down.ud, r);
}

static void note_resource(struct collector_otel *x, struct ss_str job, struct ss_str inst, int64_t ts)
{
    for (size_t i = 0; i < x->nres; i++)
        if (strlen(x->res[i].job) == job.len && !memcmp(x->res[i].job, job.p, job.len) &&
            strlen(x->res[i].instance) == inst.len && !memcmp(x->res[i].instance, inst.p, inst.len)) {
            if (ts > x->res[i].ts)
                x->res[i].ts = ts;
            return;
        }
    if (x->nres >= OTEL_MAX_RESOURCES || job.len >= 256 || inst.len >= 256)
        return;
    struct resource *r = &x->res[x->nres++];
    snprintf(r->job, sizeof r->job, "%.*s", (int)job.len, job.p);
    snprintf(r->instance, sizeof r->instance, "%.*s", (int)inst.len, inst.p);
    r->ts = ts;
}

static void on_series(void *ud, const struct scrape_series *s)
{
    struct collector_otel *x = ud;
    struct ss_str name = {"", 0}, job = {"", 0}, inst = {"", 0};
    for (size_t i = 0; i < s->nlabels; i++) {
        struct ss_str n = s->labels[i].name;
        if (n.len == 8 && !memcmp(n.p, "__name__", 8))
            name = s->labels[i].value;
        else if (n.len == 3 && !memcmp(n.p, "job", 3))
            job = s->labels[i].value;
        else if (n.len == 8 && !memcmp(n.p, "instance", 8))
            inst = s->labels[i].value;
    }
    char jobz[256], instz[256];
    snprintf(jobz, sizeof jobz, "%.*s", (int)(job.len > 255 ? 255 : job.len), job.p);
    snprintf(instz, sizeof instz, "%.*s", (int)(inst.len > 255 ? 255 : inst.len), inst.p);
    struct ss_str family, suffix;
    enum scrape_metric_type type;
    const char *unit;
    classify(x, jobz, name, &family, &suffix, &type, &unit);
    if (suffix.len == 8 && !memcmp(suffix.p, "_created", 8))
        return;                         /* rule 2 */
    if (s->nlabels > OTEL_MAX_LABELS) { /* counted and logged: never dropped silently */
        if (atomic_fetch_add(&x->too_many_labels, 1) == 0)
            ss_warn("otel",
                    "series %.*s of job %s dropped: %zu labels, more than the %d the OTel rewrite takes "
                    "(counted in scrapeship_otel_series_dropped_total; this is logged once)",
                    (int)name.len, name.p, jobz, s->nlabels, OTEL_MAX_LABELS);
        return;
    }
    note_resource(x, job, inst, s->timestamp_ms);
    char nm[OTEL_NAME_MAX + 16];
    enum scrape_metric_type nt = type == SCRAPE_TYPE_UNKNOWN ? SCRAPE_TYPE_GAUGE : type;
    /* a counter's _total is rebuilt by the name rules; other suffixes follow them */
    size_t nl = collector_otel_name(&x->cfg, family.p, family.len, nt, unit, nm, OTEL_NAME_MAX);
    if (!(nt == SCRAPE_TYPE_COUNTER && x->cfg.add_metric_suffixes && suffix.len == 6)) {
        memcpy(nm + nl, suffix.p, suffix.len);
        nl += suffix.len;
    }
    nm[nl] = '\0';
    ss_labels_reset(&x->ls);
    /* Colliding names join in the order of the original names (put_join): the
     * resource's dotted names sort first, then "_x", then the rest. job and instance
     * are the resource's service.name and service.instance.id: set, never joined. */
    if (x->cfg.resource_to_telemetry)
        push_resource(x, &x->ls, jobz, instz, true);
    char key[OTEL_NAME_MAX];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->nlabels; i++) {
            struct ss_str n = s->labels[i].name;
            bool under = n.len >= 1 && n.p[0] == '_' && !(n.len >= 2 && n.p[1] == '_');
            if ((n.len == 8 && !memcmp(n.p, "__name__", 8)) || under != (pass == 0))
                continue;
            if ((n.len == 3 && !memcmp(n.p, "job", 3)) || (n.len == 8 && !memcmp(n.p, "instance", 8))) {
                ss_labels_setc(&x->ls, n, s->labels[i].value);
            } else if (under && n.len + 3 < sizeof key) {
                memcpy(key, "key", 3); /* rule 3 */
                memcpy(key + 3, n.p, n.len);
                put_join(&x->ls, (struct ss_str){key, n.len + 3}, s->labels[i].value);
            } else if (!under) {
                put_join(&x->ls, n, s->labels[i].value);
            }
        }
    }
    ss_labels_setc(&x->ls, S("__name__"), (struct ss_str){nm, nl});
    push_external(x, &x->ls);
    emit_series(x, s->value, s->timestamp_ms);
}

static void on_end(void *ud, const struct scrape_report *r)
{
    struct collector_otel *x = ud;
    char nm[OTEL_NAME_MAX];
    if (x->cfg.namespace)
        snprintf(nm, sizeof nm, "%s_target_info", x->cfg.namespace);
    else
        snprintf(nm, sizeof nm, "target_info");
    for (size_t i = 0; x->cfg.target_info && i < x->nres; i++) {
        struct resource *res = &x->res[i];
        ss_labels_reset(&x->ls);
        ss_labels_setc(&x->ls, S("__name__"), str_of(nm));
        if (res->job[0])
            ss_labels_setc(&x->ls, S("job"), str_of(res->job));
        if (res->instance[0])
            ss_labels_setc(&x->ls, S("instance"), str_of(res->instance));
        push_resource(x, &x->ls, res->job, res->instance, false);
        push_external(x, &x->ls);
        emit_series(x, 1.0, res->ts);
    }
    x->nres = 0;
    x->k8s = NULL;
    x->nk8s = 0;
    if (x->down.end)
        x->down.end(x->down.ud, r);
}

static bool on_wait_room(void *ud, int64_t deadline_mono_ms)
{
    struct collector_otel *x = ud;
    return x->down.wait_room ? x->down.wait_room(x->down.ud, deadline_mono_ms) : true;
}

void collector_otel_sink(struct collector_otel *x, struct scrape_sink *sink)
{
    memset(sink, 0, sizeof *sink);
    sink->begin = on_begin;
    sink->series = on_series;
    sink->end = on_end;
    sink->metadata = on_meta;
    sink->wait_room = on_wait_room;
    sink->ud = x;
}
