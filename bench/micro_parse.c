/* micro_parse.c: exposition-parser throughput, in ns and bytes per sample.
 *
 * Parses one or more exposition bodies again and again through the public push API
 * (scrape_parser_reset / _feed / _finish), feeding 16 KiB chunks because that is the
 * largest piece libcurl hands a write callback (CURL_MAX_WRITE_SIZE), so line
 * reassembly across chunk edges is part of what is measured, as on the scrape path.
 * The parser runs lenient (opts.strict = false), as the scrape engine runs it.
 *
 * usage: micro_parse [--format text|openmetrics] [--seconds S] [--runs R]
 *                    [--iterations K] [FILE...]
 * Without FILE it parses the Prometheus textparse corpus alltypes.237mfs.prom.txt.
 * Each run repeats the body until S seconds (default 0.3) have passed, at most 10^7
 * times; the best and median of R runs (default 5) are printed, the best being the
 * figure least disturbed by other work on the machine. --iterations K runs exactly K
 * passes and prints the count only: for `valgrind --tool=callgrind
 * --toggle-collect=parse_pass`, which then counts instructions inside the parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scrape.h"
#include "ss.h"

#ifndef SS_CORPORA_DIR
#define SS_CORPORA_DIR "/work/shared/corpora"
#endif

#define DEFAULT_BODY       "/promtext/prometheus-textparse/testdata/alltypes.237mfs.prom.txt"
#define CHUNK              16384u
#define MAX_BODY_BYTES     (256u << 20) /* a bench input, but still bounded */
#define MAX_PASSES_PER_RUN 10000000L
#define MAX_RUNS           100

struct counts {
    unsigned long samples;
    unsigned long labels;
    double value_sum; /* consumed so the compiler cannot drop the parse */
};

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct counts *c = ud;
    c->samples++;
    c->labels += s->nlabels;
    c->value_sum += s->value;
    return 0;
}

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
        fprintf(stderr, "micro_parse: %s: %s\n", path, strerror(errno));
        return SS_EIO;
    }
    int rc = 0;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        rc = ss_buf_append(out, tmp, n);
        if (rc)
            break;
    }
    if (!rc && ferror(f))
        rc = SS_EIO;
    fclose(f);
    if (rc)
        fprintf(stderr, "micro_parse: %s: %s\n", path, ss_strerror(rc));
    return rc;
}

/* One full body, as one scrape would parse it. Not inlined so callgrind's
 * --toggle-collect can select exactly this. */
__attribute__((noinline)) int parse_pass(struct scrape_parser *p, enum scrape_format fmt, const char *body,
                                         size_t len, const struct scrape_parser_cb *cb)
{
    scrape_parser_reset(p, fmt);
    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        int rc = scrape_parser_feed(p, body + off, n, cb);
        if (rc)
            return rc;
    }
    return scrape_parser_finish(p, cb);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_file(const char *path, enum scrape_format fmt, double seconds, int runs, long iterations)
{
    struct ss_buf body;
    struct scrape_parser *p = NULL;
    double ns[MAX_RUNS];
    int rc;

    ss_buf_init(&body, MAX_BODY_BYTES);
    if ((rc = read_file(path, &body)))
        goto fail;
    struct scrape_parser_opts opts = {.format = fmt, .strict = false};
    if ((rc = scrape_parser_new(&opts, &p)))
        goto fail;

    /* One checked pass first: counts samples and proves the body parses. */
    struct counts c = {0};
    struct scrape_parser_cb cb = {.sample = on_sample, .ud = &c};
    if ((rc = parse_pass(p, fmt, body.data, body.len, &cb))) {
        fprintf(stderr, "micro_parse: %s: %s\n", path, scrape_parser_error(p));
        goto fail;
    }
    const unsigned long per_pass = c.samples;
    if (per_pass == 0) {
        fprintf(stderr, "micro_parse: %s: no samples\n", path);
        rc = SS_EINVAL;
        goto fail;
    }
    const unsigned long labels_per_pass = c.labels;

    if (iterations > 0) {
        for (long i = 0; i < iterations; i++)
            if ((rc = parse_pass(p, fmt, body.data, body.len, &cb)))
                goto fail;
        printf("parse %s: %ld passes, %lu samples per pass\n", path, iterations, per_pass);
        goto fail; /* rc == 0: the common exit */
    }

    for (int r = 0; r < runs; r++) {
        long passes = 0;
        double t0 = now_s(), t1 = t0;
        while (t1 - t0 < seconds && passes < MAX_PASSES_PER_RUN) {
            if ((rc = parse_pass(p, fmt, body.data, body.len, &cb)))
                goto fail;
            passes++;
            t1 = now_s();
        }
        ns[r] = (t1 - t0) * 1e9 / ((double)passes * (double)per_pass);
    }
    qsort(ns, (size_t)runs, sizeof ns[0], cmp_double);
    const char *slash = strrchr(path, '/');
    printf("parse  %-36s %6lu samples %5.1f labels/sample %6.1f B/sample  "
           "best %6.1f ns/sample  median %6.1f  (%.0f MB/s)\n",
           slash ? slash + 1 : path, per_pass, (double)labels_per_pass / (double)per_pass,
           (double)body.len / (double)per_pass, ns[0], ns[runs / 2],
           (double)body.len / (double)per_pass / ns[0] * 1e3);
    if (c.value_sum == 42.4242)
        printf("(unlikely)\n");

fail:
    scrape_parser_free(p);
    ss_buf_free(&body);
    return rc;
}

int main(int argc, char **argv)
{
    enum scrape_format fmt = SCRAPE_FORMAT_TEXT;
    double seconds = 0.3;
    int runs = 5;
    long iterations = 0;
    int i = 1;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (!v) {
            fprintf(stderr, "micro_parse: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--format") == 0)
            fmt = strcmp(v, "openmetrics") == 0 ? SCRAPE_FORMAT_OPENMETRICS : SCRAPE_FORMAT_TEXT;
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--iterations") == 0)
            iterations = atol(v);
        else {
            fprintf(stderr, "micro_parse: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (runs < 1 || runs > MAX_RUNS || !(seconds > 0 && seconds <= 60) || iterations < 0 ||
        iterations > MAX_PASSES_PER_RUN) {
        fprintf(stderr, "micro_parse: --runs 1..%d, --seconds (0,60], --iterations 0..%ld\n", MAX_RUNS,
                MAX_PASSES_PER_RUN);
        return 2;
    }

    int rc = 0;
    if (i >= argc) {
        const char *dir = getenv("SS_CORPORA_DIR");
        char path[4096];
        snprintf(path, sizeof path, "%s%s", dir && *dir ? dir : SS_CORPORA_DIR, DEFAULT_BODY);
        rc = bench_file(path, fmt, seconds, runs, iterations);
    }
    for (; i < argc && !rc; i++)
        rc = bench_file(argv[i], fmt, seconds, runs, iterations);
    return rc ? 1 : 0;
}
