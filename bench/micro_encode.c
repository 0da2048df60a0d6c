/* micro_encode.c: remote-write encode and snappy throughput, in ns and bytes per sample.
 *
 * Turns an exposition body into the series scrapeship would ship (labels sorted by
 * name with __name__, job and instance added), then times the two steps every shipped
 * sample goes through on the sender side: rw_encode_series into a batch buffer, and
 * rw_snappy_compress of each full batch. The body is replicated as if R targets of
 * the same application exposed it (only `instance` and the scrape timestamp differ),
 * because that is what a real batch holds; replicating it with identical labels would
 * let snappy find whole repeated series and flatter the wire size.
 *
 * usage: micro_encode [--batch B] [--targets R] [--seconds S] [--runs N]
 *                     [--iterations K] [--idle-ms I] [FILE]
 * B is max_samples_per_send (default 2000, Prometheus' and scrapeship's default).
 * R defaults to enough copies for 16 batches. Each run repeats until S seconds
 * (default 0.3), at most 10^6 passes; best and median of N runs (default 5) are
 * printed. --iterations K runs exactly K passes for callgrind
 * (--toggle-collect=encode_batch / --toggle-collect=compress_batch).
 *
 * --idle-ms I sleeps I ms before each batch (not timed), as a sender does between the
 * batches of a light load. With libsnappy.so, which this program linked until the
 * fourteenth pass of #12, 50 ms made it 1.6-1.8x slower per byte; with our compressor
 * (remotewrite/snappy.c, what rw_snappy_compress is now) the medians are 1.1x at 20 ms
 * and 1.4x at 50 ms. The sender's 1.06 ns/byte in the 100x1k profile was mostly the
 * binary's libsnappy.a, 1.5-1.7x slower than the shared library on the same bytes
 * (README, Performance, fourteenth pass).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remotewrite.h"
#include "scrape.h"
#include "ss.h"

#ifndef SS_CORPORA_DIR
#define SS_CORPORA_DIR "/work/shared/corpora"
#endif

#define DEFAULT_BODY       "/promtext/prometheus-textparse/testdata/alltypes.237mfs.prom.txt"
#define MAX_BODY_BYTES     (256u << 20)
#define MAX_SERIES         4000000u /* series after replication */
#define MAX_LABELS         64u      /* per series in this bench; the corpus has far fewer */
#define MAX_BATCH_BYTES    (64u << 20)
#define MAX_PASSES_PER_RUN 1000000L
#define MAX_RUNS           100
#define BASE_TS_MS         INT64_C(1732281600000)

struct series {
    struct ss_label *labels; /* in the arena */
    size_t nlabels;
    double value;
    int64_t ts_ms;
};

struct corpus {
    struct ss_arena arena;
    struct series *v;
    size_t n, cap;
    /* while building: */
    size_t target;
    char instance[64];
    int err;
};

static long idle_ms; /* --idle-ms */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int read_file(const char *path, struct ss_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "micro_encode: %s: %s\n", path, strerror(errno));
        return SS_EIO;
    }
    int rc = 0;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if ((rc = ss_buf_append(out, tmp, n)))
            break;
    if (!rc && ferror(f))
        rc = SS_EIO;
    fclose(f);
    return rc;
}

static int label_cmp(const void *a, const void *b)
{
    return ss_str_cmp(((const struct ss_label *)a)->name, ((const struct ss_label *)b)->name);
}

static struct ss_str arena_str(struct ss_arena *a, struct ss_str s, int *err)
{
    char *p = ss_arena_strndup(a, s.p, s.len);
    if (!p)
        *err = SS_ENOMEM;
    return (struct ss_str){p ? p : "", p ? s.len : 0};
}

/* Parser callback: one shipped series per sample, copied into the arena. */
static int add_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct corpus *c = ud;
    if (s->nlabels + 3 > MAX_LABELS || c->n >= MAX_SERIES)
        return SS_ELIMIT;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4096;
        struct series *nv = realloc(c->v, ncap * sizeof *nv);
        if (!nv)
            return SS_ENOMEM;
        c->v = nv;
        c->cap = ncap;
    }
    size_t n = 0;
    struct ss_label *ls = ss_arena_alloc(&c->arena, (s->nlabels + 3) * sizeof *ls);
    if (!ls)
        return SS_ENOMEM;
    ls[n++] = (struct ss_label){SS_STR("__name__"), arena_str(&c->arena, s->name, &c->err)};
    for (size_t i = 0; i < s->nlabels; i++) {
        /* The scrape engine renames clashes to exported_*; this corpus has none. */
        if (ss_str_eq_cstr(s->labels[i].name, "job") || ss_str_eq_cstr(s->labels[i].name, "instance"))
            continue;
        ls[n].name = arena_str(&c->arena, s->labels[i].name, &c->err);
        ls[n].value = arena_str(&c->arena, s->labels[i].value, &c->err);
        if (ls[n].value.len) /* Prometheus drops empty-valued labels */
            n++;
    }
    ls[n++] = (struct ss_label){SS_STR("job"), SS_STR("node")};
    ls[n++] = (struct ss_label){
        SS_STR("instance"), arena_str(&c->arena, (struct ss_str){c->instance, strlen(c->instance)}, &c->err)};
    qsort(ls, n, sizeof *ls, label_cmp);
    c->v[c->n++] = (struct series){ls, n, s->value, BASE_TS_MS + (int64_t)c->target * 7};
    return c->err;
}

static int build_corpus(const char *path, size_t batch, size_t targets, struct corpus *c)
{
    struct ss_buf body;
    struct scrape_parser *p = NULL;
    int rc;

    ss_buf_init(&body, MAX_BODY_BYTES);
    if ((rc = read_file(path, &body))) {
        fprintf(stderr, "micro_encode: %s: %s\n", path, ss_strerror(rc));
        goto fail;
    }
    struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_TEXT};
    if ((rc = scrape_parser_new(&opts, &p)))
        goto fail;
    struct scrape_parser_cb cb = {.sample = add_sample, .ud = c};
    const size_t max_targets = targets ? targets : 100000;
    for (size_t t = 0; t < max_targets; t++) {
        c->target = t;
        snprintf(c->instance, sizeof c->instance, "10.1.%zu.%zu:9100", (t / 250) % 256, t % 250 + 2);
        scrape_parser_reset(p, SCRAPE_FORMAT_TEXT);
        if ((rc = scrape_parser_feed(p, body.data, body.len, &cb)) || (rc = scrape_parser_finish(p, &cb))) {
            fprintf(stderr, "micro_encode: %s: %s\n", path,
                    rc == SS_EPARSE ? scrape_parser_error(p) : ss_strerror(rc));
            goto fail;
        }
        /* Default: enough copies that the series fill 16 batches. */
        if (targets == 0 && c->n >= 16 * batch)
            break;
    }
    if (c->n == 0) {
        fprintf(stderr, "micro_encode: %s: no samples\n", path);
        rc = SS_EINVAL;
    }
fail:
    scrape_parser_free(p);
    ss_buf_free(&body);
    return rc;
}

/* Encode series [from, to) into raw (reset first). Not inlined: a callgrind toggle. */
__attribute__((noinline)) int encode_batch(const struct series *v, size_t from, size_t to, struct ss_buf *raw)
{
    ss_buf_reset(raw);
    for (size_t i = from; i < to; i++) {
        int rc = rw_encode_series(raw, v[i].labels, v[i].nlabels, v[i].value, v[i].ts_ms);
        if (rc)
            return rc;
    }
    return 0;
}

__attribute__((noinline)) int compress_batch(const struct ss_buf *raw, struct ss_buf *comp)
{
    ss_buf_reset(comp);
    return rw_snappy_compress(raw->data, raw->len, comp);
}

struct pass_result {
    double encode_s, compress_s;
    size_t raw_bytes, comp_bytes;
};

/* Every series once, in batches of `batch`. */
static int one_pass(const struct corpus *c, size_t batch, struct ss_buf *raw, struct ss_buf *comp,
                    struct pass_result *r)
{
    for (size_t from = 0; from < c->n; from += batch) {
        size_t to = c->n - from < batch ? c->n : from + batch;
        if (idle_ms) {
            struct timespec d = {idle_ms / 1000, (idle_ms % 1000) * 1000000L};
            while (nanosleep(&d, &d) == -1 && errno == EINTR)
                ;
        }
        double t0 = now_s();
        int rc = encode_batch(c->v, from, to, raw);
        double t1 = now_s();
        if (!rc)
            rc = compress_batch(raw, comp);
        double t2 = now_s();
        if (rc)
            return rc;
        r->encode_s += t1 - t0;
        r->compress_s += t2 - t1;
        r->raw_bytes += raw->len;
        r->comp_bytes += comp->len;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t batch = 2000, targets = 0;
    double seconds = 0.3;
    int runs = 5;
    long iterations = 0;
    const char *path = NULL;
    char defpath[4096];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            path = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "micro_encode: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--batch") == 0)
            batch = (size_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--targets") == 0)
            targets = (size_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--iterations") == 0)
            iterations = atol(v);
        else if (strcmp(a, "--idle-ms") == 0)
            idle_ms = atol(v);
        else {
            fprintf(stderr, "micro_encode: unknown option %s\n", a);
            return 2;
        }
    }
    if (batch < 1 || batch > 1000000 || targets > 100000 || runs < 1 || runs > MAX_RUNS ||
        !(seconds > 0 && seconds <= 60) || iterations < 0 || iterations > MAX_PASSES_PER_RUN || idle_ms < 0 ||
        idle_ms > 1000) {
        fprintf(stderr,
                "micro_encode: --batch 1..10^6, --targets 0..10^5, --runs 1..%d, "
                "--seconds (0,60], --iterations 0..%ld, --idle-ms 0..1000\n",
                MAX_RUNS, MAX_PASSES_PER_RUN);
        return 2;
    }
    if (!path) {
        const char *dir = getenv("SS_CORPORA_DIR");
        snprintf(defpath, sizeof defpath, "%s%s", dir && *dir ? dir : SS_CORPORA_DIR, DEFAULT_BODY);
        path = defpath;
    }

    struct corpus c = {0};
    struct ss_buf raw, comp;
    double enc[MAX_RUNS], cmp[MAX_RUNS], tot[MAX_RUNS];
    struct pass_result last = {0};
    int rc;

    ss_arena_init(&c.arena, 1u << 20);
    ss_buf_init(&raw, MAX_BATCH_BYTES);
    ss_buf_init(&comp, MAX_BATCH_BYTES);
    if ((rc = build_corpus(path, batch, targets, &c)))
        goto fail;

    if (iterations > 0) {
        for (long k = 0; k < iterations; k++) {
            struct pass_result r = {0};
            if ((rc = one_pass(&c, batch, &raw, &comp, &r)))
                goto fail;
        }
        printf("encode %s: %ld passes, %zu samples per pass\n", path, iterations, c.n);
        goto fail; /* rc == 0: the common exit */
    }

    for (int k = 0; k < runs; k++) {
        struct pass_result r = {0};
        long passes = 0;
        double t0 = now_s();
        while (now_s() - t0 < seconds && passes < MAX_PASSES_PER_RUN) {
            if ((rc = one_pass(&c, batch, &raw, &comp, &r)))
                goto fail;
            passes++;
        }
        double samples = (double)passes * (double)c.n;
        enc[k] = r.encode_s * 1e9 / samples;
        cmp[k] = r.compress_s * 1e9 / samples;
        tot[k] = enc[k] + cmp[k];
        last = r;
        last.raw_bytes /= (size_t)passes;
        last.comp_bytes /= (size_t)passes;
    }
    qsort(enc, (size_t)runs, sizeof enc[0], cmp_double);
    qsort(cmp, (size_t)runs, sizeof cmp[0], cmp_double);
    qsort(tot, (size_t)runs, sizeof tot[0], cmp_double);
    const char *slash = strrchr(path, '/');
    printf("encode %-36s %7zu samples, batch %zu: raw %5.1f B/sample, snappy %5.1f B/sample\n",
           slash ? slash + 1 : path, c.n, batch, (double)last.raw_bytes / (double)c.n,
           (double)last.comp_bytes / (double)c.n);
    printf("  rw_encode_series     best %6.1f ns/sample  median %6.1f\n", enc[0], enc[runs / 2]);
    printf("  rw_snappy_compress   best %6.1f ns/sample  median %6.1f\n", cmp[0], cmp[runs / 2]);
    printf("  encode+compress      best %6.1f ns/sample  median %6.1f\n", tot[0], tot[runs / 2]);

fail:
    ss_buf_free(&raw);
    ss_buf_free(&comp);
    ss_arena_free(&c.arena);
    free(c.v);
    return rc ? 1 : 0;
}
