/* micro_gzip.c: gzip body decompression, streaming zlib vs whole-buffer libdeflate,
 * in ns per sample (issue #12: zlib's inflate was 12% of CPU on gzip targets).
 *
 * For each FILE.gz (a gzip body as nginx's gzip_static or a Go exporter serves it;
 * bench/gen_targets.py writes them), the plain body is decompressed once and parsed
 * once to count its samples, then two ways are timed:
 *   zlib:      what libcurl does for CURLOPT_ACCEPT_ENCODING: inflateInit2 per
 *              transfer, inflate into a 16 KiB buffer (curl's DSIZE) per write
 *              callback, inflateEnd;
 *   libdeflate: libdeflate_gzip_decompress of the whole body into one reused buffer
 *              (what the scrape engine does since #12).
 * Only decompression is timed (the output is checksummed so it is not dropped).
 *
 * usage: micro_gzip [--seconds S] [--runs R] [--iterations K --only zlib|libdeflate]
 *                   FILE.gz...
 * --iterations K runs K passes of one method for callgrind:
 *   valgrind --tool=callgrind --toggle-collect=zlib_pass micro_gzip --iterations 20 --only zlib F.gz
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libdeflate.h>
#include <zlib.h>

#include "scrape.h"
#include "ss.h"

#define CURL_DSIZE         16384u
#define MAX_BODY_BYTES     (256u << 20)
#define MAX_PASSES_PER_RUN 10000000L
#define MAX_RUNS           100

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    (void)s;
    (*(unsigned long *)ud)++;
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
        fprintf(stderr, "micro_gzip: %s: %s\n", path, strerror(errno));
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

/* curl's way: a fresh stream per transfer, 16 KiB out per write callback. Returns the
 * decompressed size, or 0 on error. */
__attribute__((noinline)) size_t zlib_pass(const unsigned char *in, size_t len, unsigned *sum)
{
    unsigned char out[CURL_DSIZE];
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, MAX_WBITS + 32) != Z_OK)
        return 0;
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    size_t total = 0;
    int zr;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        zr = inflate(&z, Z_SYNC_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            total = 0;
            break;
        }
        size_t got = sizeof out - z.avail_out;
        total += got;
        if (got)
            *sum += out[0] + out[got - 1]; /* "hand it to the write callback" */
    } while (zr != Z_STREAM_END);
    inflateEnd(&z);
    return total;
}

__attribute__((noinline)) size_t libdeflate_pass(struct libdeflate_decompressor *d, const unsigned char *in,
                                                 size_t len, unsigned char *out, size_t cap, unsigned *sum)
{
    size_t got = 0;
    if (libdeflate_gzip_decompress(d, in, len, out, cap, &got) != LIBDEFLATE_SUCCESS)
        return 0;
    *sum += out[0] + out[got - 1];
    return got;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_file(const char *path, double seconds, int runs, long iterations, const char *only)
{
    struct ss_buf gz, plain;
    struct scrape_parser *p = NULL;
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    unsigned sum = 0;
    int rc;
    ss_buf_init(&gz, MAX_BODY_BYTES);
    ss_buf_init(&plain, MAX_BODY_BYTES);
    if (!d) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if ((rc = read_file(path, &gz)) || gz.len < 18)
        goto fail;
    /* ISIZE (the last 4 bytes) is the plain size mod 2^32: exact for bench bodies. */
    const unsigned char *g = (const unsigned char *)gz.data;
    size_t isize = (size_t)g[gz.len - 4] | (size_t)g[gz.len - 3] << 8 | (size_t)g[gz.len - 2] << 16 |
                   (size_t)g[gz.len - 1] << 24;
    if (isize == 0 || isize > MAX_BODY_BYTES || (rc = ss_buf_reserve(&plain, isize)))
        goto fail;
    size_t n = libdeflate_pass(d, g, gz.len, (unsigned char *)plain.data, isize, &sum);
    if (n != isize || zlib_pass(g, gz.len, &sum) != isize) {
        fprintf(stderr, "micro_gzip: %s: does not decompress to %zu bytes\n", path, isize);
        rc = SS_EINVAL;
        goto fail;
    }
    plain.len = n;

    unsigned long samples = 0;
    struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_TEXT};
    struct scrape_parser_cb cb = {.sample = on_sample, .ud = &samples};
    if ((rc = scrape_parser_new(&opts, &p)) || (rc = scrape_parser_feed(p, plain.data, plain.len, &cb)) ||
        (rc = scrape_parser_finish(p, &cb)) || samples == 0) {
        fprintf(stderr, "micro_gzip: %s: not a parsable body\n", path);
        rc = rc ? rc : SS_EINVAL;
        goto fail;
    }

    if (iterations > 0) {
        bool z = strcmp(only, "zlib") == 0;
        for (long i = 0; i < iterations; i++)
            if (!(z ? zlib_pass(g, gz.len, &sum)
                    : libdeflate_pass(d, g, gz.len, (unsigned char *)plain.data, isize, &sum))) {
                rc = SS_EINVAL;
                goto fail;
            }
        printf("%s %s: %ld passes, %lu samples per pass (%u)\n", only, path, iterations, samples, sum & 1);
        goto fail;
    }

    double ns[2][MAX_RUNS];
    for (int r = 0; r < runs; r++)
        for (int m = 0; m < 2; m++) {
            long passes = 0;
            double t0 = now_s(), t1 = t0;
            while (t1 - t0 < seconds && passes < MAX_PASSES_PER_RUN) {
                if (m == 0)
                    zlib_pass(g, gz.len, &sum);
                else
                    libdeflate_pass(d, g, gz.len, (unsigned char *)plain.data, isize, &sum);
                passes++;
                t1 = now_s();
            }
            ns[m][r] = (t1 - t0) * 1e9 / ((double)passes * (double)samples);
        }
    const char *slash = strrchr(path, '/');
    for (int m = 0; m < 2; m++) {
        qsort(ns[m], (size_t)runs, sizeof ns[m][0], cmp_double);
        printf("%-10s %-28s %7lu samples %6.1f gz B/sample %6.1f B/sample  best %6.1f ns/sample  "
               "median %6.1f  (%.0f MB/s out)\n",
               m ? "libdeflate" : "zlib", slash ? slash + 1 : path, samples, (double)gz.len / (double)samples,
               (double)plain.len / (double)samples, ns[m][0], ns[m][runs / 2],
               (double)plain.len / (double)samples / ns[m][0] * 1e3);
    }
    if (sum == 42)
        printf("(unlikely)\n");
fail:
    libdeflate_free_decompressor(d);
    scrape_parser_free(p);
    ss_buf_free(&gz);
    ss_buf_free(&plain);
    return rc;
}

int main(int argc, char **argv)
{
    double seconds = 0.3;
    int runs = 5;
    long iterations = 0;
    const char *only = "libdeflate";
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iterations") == 0)
            iterations = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--only") == 0)
            only = argv[i + 1];
        else {
            fprintf(stderr, "micro_gzip: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc || runs < 1 || runs > MAX_RUNS || !(seconds > 0 && seconds <= 60) || iterations < 0 ||
        iterations > MAX_PASSES_PER_RUN) {
        fprintf(stderr, "usage: micro_gzip [--seconds S] [--runs R] [--iterations K --only zlib|libdeflate] "
                        "FILE.gz...\n");
        return 2;
    }
    int rc = 0;
    for (; i < argc && !rc; i++)
        rc = bench_file(argv[i], seconds, runs, iterations, only);
    return rc ? 1 : 0;
}
