/* test_wire.c: the hand-written remote-write encoder against protobuf-c.
 *
 * The oracle is protobuf-c's generated packer for remote.proto: for every label set,
 * value and timestamp below, the bytes rw_encode_series appends must equal
 * prometheus__write_request__pack of the same message, and decoding them must give
 * back the same labels and the same value bits. The cases aim at the places a hand
 * encoder goes wrong: varint length boundaries (127/128, 16383/16384, 2097151/2097152),
 * proto3 default omission (0, -0.0, ts 0, empty strings), NaN payloads (the stale
 * marker 0x7ff0000000000002), negative timestamps (10-byte varints), and the size
 * prediction used for batching. A seeded random sweep covers the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote.pb-c.h"
#include "remotewrite.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* proto3 omits a double equal to 0, so -0.0 reads back as +0.0. */
static uint64_t expect_bits_after_roundtrip(double v)
{
    return v == 0.0 ? 0 : dbits(v);
}

/* A series as the tests describe it. Label strings must be NUL-terminated because
 * protobuf-c's string fields are C strings. */
struct tseries {
    struct ss_label *labels;
    size_t nlabels;
    double *values;
    int64_t *ts;
    size_t nsamples;
};

/* Build the protobuf-c message for the series and pack it. The message borrows every
 * string; only the pointer arrays are allocated. */
static uint8_t *pb_pack_series(const struct tseries *s, size_t ns, size_t *len)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *tsv = calloc(ns ? ns : 1, sizeof *tsv);
    Prometheus__TimeSeries **tsp = calloc(ns ? ns : 1, sizeof *tsp);
    assert_non_null(tsv);
    assert_non_null(tsp);
    for (size_t i = 0; i < ns; i++) {
        Prometheus__TimeSeries init = PROMETHEUS__TIME_SERIES__INIT;
        tsv[i] = init;
        tsp[i] = &tsv[i];
        tsv[i].n_labels = s[i].nlabels;
        tsv[i].labels = calloc(s[i].nlabels ? s[i].nlabels : 1, sizeof(Prometheus__Label *));
        for (size_t j = 0; j < s[i].nlabels; j++) {
            Prometheus__Label *l = malloc(sizeof *l);
            Prometheus__Label linit = PROMETHEUS__LABEL__INIT;
            *l = linit;
            l->name = (char *)s[i].labels[j].name.p;
            l->value = (char *)s[i].labels[j].value.p;
            tsv[i].labels[j] = l;
        }
        tsv[i].n_samples = s[i].nsamples;
        tsv[i].samples = calloc(s[i].nsamples ? s[i].nsamples : 1, sizeof(Prometheus__Sample *));
        for (size_t j = 0; j < s[i].nsamples; j++) {
            Prometheus__Sample *sm = malloc(sizeof *sm);
            Prometheus__Sample sinit = PROMETHEUS__SAMPLE__INIT;
            *sm = sinit;
            sm->value = s[i].values[j];
            sm->timestamp = s[i].ts[j];
            tsv[i].samples[j] = sm;
        }
    }
    wr.n_timeseries = ns;
    wr.timeseries = tsp;
    *len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(prometheus__write_request__pack(&wr, buf), *len);
    for (size_t i = 0; i < ns; i++) {
        for (size_t j = 0; j < tsv[i].n_labels; j++)
            free(tsv[i].labels[j]);
        for (size_t j = 0; j < tsv[i].n_samples; j++)
            free(tsv[i].samples[j]);
        free(tsv[i].labels);
        free(tsv[i].samples);
    }
    free(tsv);
    free(tsp);
    return buf;
}

static void assert_same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen || memcmp(a, b, alen) != 0) {
        size_t i = 0;
        while (i < alen && i < blen && ((const uint8_t *)a)[i] == ((const uint8_t *)b)[i])
            i++;
        print_error("encodings differ: %zu vs %zu bytes, first difference at %zu\n", alen, blen, i);
        fail();
    }
}

/* Labels as encoded (proto3 writes "" as absent, which reads back as ""). */
static void assert_labels_equal(const struct ss_label *got, size_t ngot, const struct ss_label *want,
                                size_t nwant)
{
    assert_int_equal(ngot, nwant);
    for (size_t i = 0; i < nwant; i++) {
        assert_true(ss_str_eq(got[i].name, want[i].name));
        assert_true(ss_str_eq(got[i].value, want[i].value));
    }
}

/* Encode the series with rw_encode_series(_multi), check size prediction, compare with
 * protobuf-c, decode and compare. */
static void check_series(const struct tseries *s, size_t ns)
{
    struct ss_buf buf;
    ss_buf_init(&buf, 0);
    for (size_t i = 0; i < ns; i++) {
        size_t before = buf.len;
        size_t predicted =
            rw_encoded_series_size(s[i].labels, s[i].nlabels, s[i].values, s[i].ts, s[i].nsamples);
        if (s[i].nsamples == 1)
            assert_int_equal(rw_encode_series(&buf, s[i].labels, s[i].nlabels, s[i].values[0], s[i].ts[0]),
                             0);
        else
            assert_int_equal(
                rw_encode_series_multi(&buf, s[i].labels, s[i].nlabels, s[i].values, s[i].ts, s[i].nsamples),
                0);
        assert_int_equal(buf.len - before, predicted);
        assert_int_equal(buf.data[buf.len], '\0');
    }

    /* the same records from the labels' wire bytes in pieces, one per label, as the
     * scrape module hands them over (rw_encode_series_wire_parts) */
    struct ss_buf again, lw;
    ss_buf_init(&again, 0);
    ss_buf_init(&lw, 0);
    for (size_t i = 0; i < ns; i++) {
        if (s[i].nsamples != 1) {
            assert_int_equal(rw_encode_series_multi(&again, s[i].labels, s[i].nlabels, s[i].values, s[i].ts,
                                                    s[i].nsamples),
                             0);
            continue;
        }
        struct ss_str *parts = calloc(s[i].nlabels + 1, sizeof *parts);
        size_t *ends = calloc(s[i].nlabels + 1, sizeof *ends);
        assert_non_null(parts);
        assert_non_null(ends);
        ss_buf_reset(&lw);
        assert_int_equal(ss_buf_reserve(&lw, ss_labels_wire_size(s[i].labels, s[i].nlabels)), 0);
        for (size_t k = 0; k < s[i].nlabels; k++) {
            uint8_t *end = ss_labels_wire_write((uint8_t *)lw.data + lw.len, &s[i].labels[k], 1);
            lw.len = (size_t)(end - (uint8_t *)lw.data);
            ends[k] = lw.len;
        }
        for (size_t k = 0; k < s[i].nlabels; k++)
            parts[k] = (struct ss_str){lw.data + (k ? ends[k - 1] : 0), ends[k] - (k ? ends[k - 1] : 0)};
        size_t before = again.len;
        if (lw.len) { /* pieces that do not add up: refused, nothing appended */
            assert_int_equal(rw_encode_series_wire_parts(&again, parts, s[i].nlabels, lw.len - 1,
                                                         s[i].values[0], s[i].ts[0]),
                             SS_EINVAL);
            assert_int_equal(rw_encode_series_wire_parts(&again, parts, s[i].nlabels, lw.len + 1,
                                                         s[i].values[0], s[i].ts[0]),
                             SS_EINVAL);
            assert_int_equal(again.len, before);
            assert_int_equal(again.data ? again.data[again.len] : 0, 0);
        }
        assert_int_equal(
            rw_encode_series_wire_parts(&again, parts, s[i].nlabels, lw.len, s[i].values[0], s[i].ts[0]), 0);
        free(parts);
        free(ends);
    }
    assert_same_bytes(again.data, again.len, buf.data, buf.len);
    ss_buf_free(&again);
    ss_buf_free(&lw);

    size_t pblen;
    uint8_t *pb = pb_pack_series(s, ns, &pblen);
    assert_same_bytes(buf.data, buf.len, pb, pblen);
    free(pb);

    struct rw_write_request *req = NULL;
    assert_int_equal(rw_decode_write_request(buf.data, buf.len, &req), 0);
    assert_int_equal(rw_write_request_nseries(req), ns);
    assert_int_equal(rw_write_request_nmetadata(req), 0);
    for (size_t i = 0; i < ns; i++) {
        struct rw_series got;
        assert_int_equal(rw_write_request_series(req, i, &got), 0);
        assert_labels_equal(got.labels, got.nlabels, s[i].labels, s[i].nlabels);
        assert_int_equal(got.nsamples, s[i].nsamples);
        assert_int_equal(got.nexemplars, 0);
        for (size_t j = 0; j < s[i].nsamples; j++) {
            assert_int_equal(dbits(got.samples[j].value), expect_bits_after_roundtrip(s[i].values[j]));
            assert_int_equal(got.samples[j].timestamp_ms, s[i].ts[j]);
        }
    }
    struct rw_series past;
    assert_int_equal(rw_write_request_series(req, ns, &past), SS_ENOTFOUND);
    rw_write_request_free(req);
    ss_buf_free(&buf);
}

static struct ss_label L(const char *n, const char *v) {
    return (struct ss_label){{n, strlen(n)}, {v, strlen(v)}};
}

/* A string of `len` copies of c, NUL-terminated. */
static char *
repeat(char c, size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, c, len);
    s[len] = '\0';
    return s;
}

/* rw_encode_series_wire_parts' copy, piece by piece: every length from 0 to 48 (the
 * fixed-size moves change at 4, 8 and 16), each piece in a buffer of exactly its size
 * so that the sanitizers catch a read past it; the record equals the one from the
 * bytes in one piece. Pieces that are not what they claim are refused with nothing
 * appended. */
static void test_wire_parts_lengths(void **state)
{
    (void)state;
    struct ss_buf a, b;
    ss_buf_init(&a, 0);
    ss_buf_init(&b, 0);
    char whole[3 * 48];
    for (size_t n = 0; n <= 48; n++) {
        struct ss_str parts[3];
        char *own[3];
        size_t len = 0;
        for (int p = 0; p < 3; p++) { /* n, n / 2 + 1 and 1 bytes: ends of every kind */
            size_t k = p == 0 ? n : p == 1 ? n / 2 + 1 : 1;
            own[p] = malloc(k ? k : 1);
            assert_non_null(own[p]);
            for (size_t x = 0; x < k; x++)
                own[p][x] = whole[len + x] = (char)('a' + (len + x) % 26);
            parts[p] = (struct ss_str){own[p], k};
            len += k;
        }
        ss_buf_reset(&a);
        ss_buf_reset(&b);
        assert_int_equal(rw_encode_series_wire_parts(&a, parts, 3, len, 1.5, 1000), 0);
        assert_int_equal(rw_encode_series_wire(&b, whole, len, 1.5, 1000), 0);
        assert_same_bytes(a.data, a.len, b.data, b.len);
        for (int p = 0; p < 3; p++)
            free(own[p]);
    }
    /* claims that do not hold: nothing appended, still NUL-terminated */
    size_t before = a.len;
    struct ss_str bad = {NULL, 3};
    assert_int_equal(rw_encode_series_wire_parts(&a, &bad, 1, 3, 1, 1), SS_EINVAL);
    assert_int_equal(rw_encode_series_wire_parts(&a, NULL, 0, 5, 1, 1), SS_EINVAL);
    assert_int_equal(rw_encode_series_wire(&a, NULL, 4, 1, 1), SS_EINVAL);
    assert_int_equal(a.len, before);
    assert_int_equal(a.data[a.len], '\0');
    /* no labels at all is a record (as rw_encode_series with none) */
    ss_buf_reset(&b);
    assert_int_equal(rw_encode_series_wire_parts(&a, NULL, 0, 0, 1, 1), 0);
    assert_int_equal(rw_encode_series(&b, NULL, 0, 1, 1), 0);
    assert_same_bytes(a.data + before, a.len - before, b.data, b.len);
    ss_buf_free(&a);
    ss_buf_free(&b);
}

/* ---- byte identity ------------------------------------------------------- */

static const uint64_t value_bits[] = {
    0x0000000000000000, /* 0: omitted */
    0x8000000000000000, /* -0.0: omitted too (value comparison) */
    0x3ff0000000000000, /* 1 */
    0x3ff8000000000000, /* 1.5 */
    0xbff8000000000000, /* -1.5 */
    0x7ff0000000000002, /* stale marker */
    0x7ff8000000000001, /* Prometheus' normal NaN */
    0x7ff8000000000000, /* C's NAN */
    0xfff8000000000000, /* negative quiet NaN */
    0x7ff0000000000001, /* signalling NaN */
    0x7ff0000000000000, /* +Inf */
    0xfff0000000000000, /* -Inf */
    0x0000000000000001, /* smallest denormal */
    0x7fefffffffffffff, /* DBL_MAX */
    0x41dfffffffc00000, /* 2^31 - 1 */
};

static const int64_t timestamps[] = {
    0,
    1,
    -1,
    127,
    128,
    16383,
    16384,
    2097151,
    2097152,
    1700000000000,
    1700000000123,
    INT64_MAX,
    INT64_MIN,
    -1700000000000,
    (int64_t)1 << 35,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_values_and_timestamps(void **state)
{
    (void)state;
    struct ss_label labels[] = {L("__name__", "up"), L("instance", "localhost:9090"), L("job", "prometheus")};
    struct tseries s[N(value_bits) * N(timestamps)];
    double vals[N(value_bits) * N(timestamps)];
    int64_t tss[N(value_bits) * N(timestamps)];
    size_t k = 0;
    for (size_t i = 0; i < N(value_bits); i++)
        for (size_t j = 0; j < N(timestamps); j++, k++) {
            vals[k] = bitsd(value_bits[i]);
            tss[k] = timestamps[j];
            s[k] = (struct tseries){labels, N(labels), &vals[k], &tss[k], 1};
        }
    check_series(s, k);
    /* Each one alone, too: a single record is a valid WriteRequest by itself. */
    for (size_t i = 0; i < k; i++)
        check_series(&s[i], 1);
}

static void test_stale_marker_bits(void **state)
{
    (void)state;
    double stale = rw_stale_nan();
    assert_int_equal(dbits(stale), RW_STALE_NAN_BITS);
    assert_true(rw_is_stale_nan(stale));
    assert_false(rw_is_stale_nan(NAN));
    assert_false(rw_is_stale_nan(bitsd(0x7ff8000000000001)));
    assert_false(rw_is_stale_nan(0.0));

    /* The eight value bytes on the wire are the stale bits, little-endian. */
    struct ss_label labels[] = {L("__name__", "x")};
    struct ss_buf buf;
    ss_buf_init(&buf, 0);
    assert_int_equal(rw_encode_series(&buf, labels, 1, stale, 0), 0);
    static const uint8_t want[] = {0x0a, 0x1a, 0x0a, 0x0d, 0x0a, 0x08, '_',  '_',  'n',  'a',
                                   'm',  'e',  '_',  '_',  0x12, 0x01, 'x',  0x12, 0x09, 0x09,
                                   0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x7f};
    assert_same_bytes(buf.data, buf.len, want, sizeof want);
    ss_buf_free(&buf);
}

static void test_label_shapes(void **state)
{
    (void)state;
    char *v127 = repeat('a', 127), *v128 = repeat('b', 128), *v16383 = repeat('c', 16383);
    char *v16384 = repeat('d', 16384), *v200k = repeat('e', 200000), *n300 = repeat('n', 300);
    /* Label bodies cross varint boundaries: name field + value field sizes add up. */
    char *v121 = repeat('f', 121), *v122 = repeat('g', 122);

    struct ss_label set_plain[] = {L("__name__", "http_requests_total"), L("code", "200"),
                                   L("method", "GET")};
    struct ss_label set_empty_value[] = {L("__name__", "m"), L("a", "")};
    struct ss_label set_empty_name[] = {L("", "v"), L("__name__", "m")};
    struct ss_label set_both_empty[] = {L("", "")};
    struct ss_label set_unicode[] = {L("__name__", "temperature"), L("city", "Zürich"),
                                     L("note", "日本語 ✓ 🚀"), L("quote", "a\"b\\c\nd")};
    struct ss_label set_long[] = {L("__name__", "long"), L("a127", v127),     L("b128", v128),
                                  L("c16383", v16383),   L("d16384", v16384), L("e200k", v200k),
                                  L(n300, "x")};
    struct ss_label set_boundary[] = {L("__name__", "b"), L("x", v121), L("y", v122)};
    struct ss_label many[200];
    char names[200][8];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "l%03d", i);
        many[i] = L(names[i], names[i]);
    }

    double one = 1;
    int64_t ts = 1700000000000;
    struct tseries s[] = {
        {set_plain, N(set_plain), &one, &ts, 1},
        {set_empty_value, N(set_empty_value), &one, &ts, 1},
        {set_empty_name, N(set_empty_name), &one, &ts, 1},
        {set_both_empty, N(set_both_empty), &one, &ts, 1},
        {NULL, 0, &one, &ts, 1}, /* no labels at all */
        {set_unicode, N(set_unicode), &one, &ts, 1},
        {set_long, N(set_long), &one, &ts, 1},
        {set_boundary, N(set_boundary), &one, &ts, 1},
        {many, N(many), &one, &ts, 1},
    };
    check_series(s, N(s));
    for (size_t i = 0; i < N(s); i++)
        check_series(&s[i], 1);

    /* The record for set_long has a 3-byte TimeSeries length and 3-byte label lengths. */
    size_t sz = rw_encoded_series_size(set_long, N(set_long), &one, &ts, 1);
    assert_true(sz > 200000 + 16384 + 16383);

    free(v127), free(v128), free(v16383), free(v16384), free(v200k), free(n300);
    free(v121), free(v122);
}

static void test_multi_sample(void **state)
{
    (void)state;
    struct ss_label labels[] = {L("__name__", "rate"), L("job", "a")};
    double vals[N(value_bits)];
    int64_t tss[N(value_bits)];
    for (size_t i = 0; i < N(value_bits); i++) {
        vals[i] = bitsd(value_bits[i]);
        tss[i] = 1700000000000 + (int64_t)i * 15000;
    }
    struct tseries s[] = {
        {labels, N(labels), vals, tss, N(vals)},
        {labels, N(labels), vals, tss, 0}, /* a series with no samples */
        {labels, N(labels), vals, tss, 2},
    };
    check_series(s, N(s));
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static char *random_string(size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(1 + rnd() % 255); /* any byte but NUL: protobuf-c strings are C strings */
    s[len] = '\0';
    return s;
}

static size_t random_len(void)
{
    switch (rnd() % 8) {
    case 0: return 0;
    case 1: return 120 + rnd() % 20;
    case 2: return rnd() % 3 ? 1 + rnd() % 30 : 16380 + rnd() % 8;
    default: return 1 + rnd() % 30;
    }
}

static double random_value(void)
{
    switch (rnd() % 6) {
    case 0: return bitsd(value_bits[rnd() % N(value_bits)]);
    case 1: return (double)(int64_t)rnd();
    case 2: return bitsd(0x7ff0000000000000 | (rnd() & 0x000fffffffffffff) | 1); /* any NaN */
    default: return bitsd(rnd());
    }
}

static void test_random_sweep(void **state)
{
    (void)state;
    enum { NSERIES = 600 };
    struct tseries s[NSERIES];
    char **strings = calloc(NSERIES * 64 * 2, sizeof *strings);
    size_t nstrings = 0;
    for (size_t i = 0; i < NSERIES; i++) {
        size_t nl = rnd() % 12, nsm = 1 + (rnd() % 4 == 0 ? rnd() % 5 : 0);
        s[i].labels = calloc(nl ? nl : 1, sizeof *s[i].labels);
        for (size_t j = 0; j < nl; j++) {
            char *n = strings[nstrings++] = random_string(random_len());
            char *v = strings[nstrings++] = random_string(random_len());
            s[i].labels[j] = L(n, v);
        }
        s[i].nlabels = nl;
        s[i].values = calloc(nsm, sizeof *s[i].values);
        s[i].ts = calloc(nsm, sizeof *s[i].ts);
        for (size_t j = 0; j < nsm; j++) {
            s[i].values[j] = random_value();
            s[i].ts[j] = rnd() % 3 ? (int64_t)(rnd() >> (rnd() % 64)) : (int64_t)rnd();
        }
        s[i].nsamples = nsm;
    }
    check_series(s, NSERIES);
    for (size_t i = 0; i < NSERIES; i++) {
        free(s[i].labels);
        free(s[i].values);
        free(s[i].ts);
    }
    for (size_t i = 0; i < nstrings; i++)
        free(strings[i]);
    free(strings);
}

/* ---- metadata ------------------------------------------------------------ */

static void test_metadata(void **state)
{
    (void)state;
    static const struct {
        enum scrape_metric_type t;
        Prometheus__MetricMetadata__MetricType w;
    } types[] = {
        {SCRAPE_TYPE_UNKNOWN, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN},
        {SCRAPE_TYPE_COUNTER, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER},
        {SCRAPE_TYPE_GAUGE, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE},
        {SCRAPE_TYPE_HISTOGRAM, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM},
        {SCRAPE_TYPE_GAUGEHISTOGRAM, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM},
        {SCRAPE_TYPE_SUMMARY, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY},
        {SCRAPE_TYPE_INFO, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO},
        {SCRAPE_TYPE_STATESET, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET},
    };
    /* The numbers Prometheus uses (prompb MetricMetadata_MetricType). */
    for (size_t i = 0; i < N(types); i++)
        assert_int_equal((int)types[i].w, (int)i);

    char *long_help = repeat('h', 20000);
    const char *families[] = {"", "http_requests", "node_cpu_seconds"};
    const char *helps[] = {"", "Total requests.", "Ünïcødé help ✓", long_help};
    const char *units[] = {"", "seconds", "bytes"};

    enum { MAXMD = 8 * 3 * 4 * 3 };
    Prometheus__MetricMetadata md[MAXMD];
    Prometheus__MetricMetadata *mdp[MAXMD];
    struct ss_buf buf;
    ss_buf_init(&buf, 0);
    size_t k = 0;
    for (size_t a = 0; a < N(types); a++)
        for (size_t b = 0; b < N(families); b++)
            for (size_t c = 0; c < N(helps); c++)
                for (size_t d = 0; d < N(units); d++, k++) {
                    Prometheus__MetricMetadata init = PROMETHEUS__METRIC_METADATA__INIT;
                    md[k] = init;
                    md[k].type = types[a].w;
                    md[k].metric_family_name = (char *)families[b];
                    md[k].help = (char *)helps[c];
                    md[k].unit = (char *)units[d];
                    mdp[k] = &md[k];
                    assert_int_equal(rw_encode_metadata(&buf, types[a].t,
                                                        (struct ss_str){families[b], strlen(families[b])},
                                                        (struct ss_str){helps[c], strlen(helps[c])},
                                                        (struct ss_str){units[d], strlen(units[d])}),
                                     0);
                }
    assert_int_equal(k, MAXMD);
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_metadata = k;
    wr.metadata = mdp;
    size_t pblen = prometheus__write_request__get_packed_size(&wr);
    uint8_t *pb = malloc(pblen);
    prometheus__write_request__pack(&wr, pb);
    assert_same_bytes(buf.data, buf.len, pb, pblen);
    free(pb);

    struct rw_write_request *req = NULL;
    assert_int_equal(rw_decode_write_request(buf.data, buf.len, &req), 0);
    assert_int_equal(rw_write_request_nseries(req), 0);
    assert_int_equal(rw_write_request_nmetadata(req), k);
    for (size_t i = 0; i < k; i++) {
        struct rw_metadata m;
        assert_int_equal(rw_write_request_metadata(req, i, &m), 0);
        assert_int_equal(m.wire_type, (int32_t)md[i].type);
        assert_int_equal(m.type, types[i / (N(families) * N(helps) * N(units))].t);
        assert_true(ss_str_eq_cstr(m.family, md[i].metric_family_name));
        assert_true(ss_str_eq_cstr(m.help, md[i].help));
        assert_true(ss_str_eq_cstr(m.unit, md[i].unit));
    }
    struct rw_metadata past;
    assert_int_equal(rw_write_request_metadata(req, k, &past), SS_ENOTFOUND);
    rw_write_request_free(req);

    /* An enum value outside scrape_metric_type is refused and appends nothing. */
    size_t before = buf.len;
    assert_int_equal(
        rw_encode_metadata(&buf, (enum scrape_metric_type)99, SS_STR("x"), SS_STR(""), SS_STR("")),
        SS_EINVAL);
    assert_int_equal(buf.len, before);
    ss_buf_free(&buf);
    free(long_help);
}

/* Series and metadata records may be interleaved in one body. */
static void test_mixed_records(void **state)
{
    (void)state;
    struct ss_label labels[] = {L("__name__", "up"), L("job", "x")};
    struct ss_buf buf;
    ss_buf_init(&buf, 0);
    assert_int_equal(rw_encode_metadata(&buf, SCRAPE_TYPE_GAUGE, SS_STR("up"), SS_STR("Up."), SS_STR("")), 0);
    assert_int_equal(rw_encode_series(&buf, labels, 2, 1.0, 1000), 0);
    assert_int_equal(rw_encode_metadata(&buf, SCRAPE_TYPE_INFO, SS_STR("build"), SS_STR(""), SS_STR("")), 0);
    assert_int_equal(rw_encode_series(&buf, labels, 2, 0.0, 2000), 0);
    struct rw_write_request *req = NULL;
    assert_int_equal(rw_decode_write_request(buf.data, buf.len, &req), 0);
    assert_int_equal(rw_write_request_nseries(req), 2);
    assert_int_equal(rw_write_request_nmetadata(req), 2);
    struct rw_metadata m;
    assert_int_equal(rw_write_request_metadata(req, 1, &m), 0);
    assert_int_equal(m.type, SCRAPE_TYPE_INFO);
    assert_int_equal(m.wire_type, 6);
    struct rw_series s;
    assert_int_equal(rw_write_request_series(req, 1, &s), 0);
    assert_int_equal(s.samples[0].timestamp_ms, 2000);
    rw_write_request_free(req);
    ss_buf_free(&buf);
}

/* ---- limits and errors --------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    struct ss_label labels[] = {L("__name__", "up"), L("job", "prometheus")};
    size_t need = rw_encoded_series_size(labels, 2, (double[]){1}, (int64_t[]){1}, 1);

    /* A buffer one byte short refuses the record and keeps what it had. */
    struct ss_buf buf;
    ss_buf_init(&buf, need + 3 - 1);
    assert_int_equal(ss_buf_append(&buf, "abc", 3), 0);
    assert_int_equal(rw_encode_series(&buf, labels, 2, 1, 1), SS_ELIMIT);
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.data, "abc", 4);
    ss_buf_free(&buf);
    ss_buf_init(&buf, need + 3);
    assert_int_equal(ss_buf_append(&buf, "abc", 3), 0);
    assert_int_equal(rw_encode_series(&buf, labels, 2, 1, 1), 0);
    assert_int_equal(buf.len, need + 3);
    assert_int_equal(rw_encode_metadata(&buf, SCRAPE_TYPE_GAUGE, SS_STR("up"), SS_STR(""), SS_STR("")),
                     SS_ELIMIT);
    assert_int_equal(buf.len, need + 3);
    ss_buf_free(&buf);

    /* A label longer than protobuf's 2 GiB message limit: refused by size arithmetic
     * alone (the bytes are never read). */
    struct ss_label huge[] = {{{"__name__", 8}, {"x", (size_t)INT32_MAX + 1}}};
    assert_int_equal(rw_encoded_series_size(huge, 1, (double[]){1}, (int64_t[]){1}, 1), 0);
    ss_buf_init(&buf, 0);
    assert_int_equal(rw_encode_series(&buf, huge, 1, 1, 1), SS_ELIMIT);
    struct ss_label big[] = {{{"a", 1}, {"x", (size_t)INT32_MAX / 2}},
                             {{"b", 1}, {"x", (size_t)INT32_MAX / 2}}};
    assert_int_equal(rw_encode_series(&buf, big, 2, 1, 1), SS_ELIMIT);
    assert_int_equal(
        rw_encode_metadata(&buf, SCRAPE_TYPE_GAUGE, (struct ss_str){"x", SIZE_MAX}, SS_STR(""), SS_STR("")),
        SS_ELIMIT);
    assert_int_equal(buf.len, 0);

    /* Bad arguments. */
    assert_int_equal(rw_encode_series(NULL, labels, 2, 1, 1), SS_EINVAL);
    assert_int_equal(rw_encode_series(&buf, NULL, 2, 1, 1), SS_EINVAL);
    assert_int_equal(rw_encode_series_multi(&buf, labels, 2, NULL, NULL, 1), SS_EINVAL);
    ss_buf_free(&buf);
}

static void test_decode_errors(void **state)
{
    (void)state;
    struct rw_write_request *req = (void *)1;
    /* The empty message is valid: no series. */
    assert_int_equal(rw_decode_write_request("", 0, &req), 0);
    assert_int_equal(rw_write_request_nseries(req), 0);
    rw_write_request_free(req);

    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x0a", 1},                 /* tag without length */
        {"\x0a\x05\x0a\x03", 4},     /* length past the end */
        {"\x0a\x02\x0a\x05", 4},     /* inner length past the outer end */
        {"\x0b", 1},                 /* wire type 3 (start group) */
        {"\x0f", 1},                 /* wire type 7 */
        {"\x0a\x80", 2},             /* truncated varint */
        {"\x0a\x02\x12\x03", 4},     /* sample length past the record */
        {"\x0a\x03\x12\x01\x09", 5}, /* double with no bytes */
        {"\x00\x00", 2},             /* field number 0 */
    };
    for (size_t i = 0; i < N(bad); i++) {
        req = (void *)1;
        assert_int_equal(rw_decode_write_request(bad[i].bytes, bad[i].len, &req), SS_EPARSE);
        assert_null(req);
    }
    assert_int_equal(rw_decode_write_request(NULL, 3, &req), SS_EINVAL);
    assert_int_equal(rw_decode_write_request("", 0, NULL), SS_EINVAL);
    rw_write_request_free(NULL);
    assert_int_equal(rw_write_request_nseries(NULL), 0);
}

/* Fields this schema leaves out (native histograms, TimeSeries field 4; a future
 * WriteRequest field) are skipped, as protobuf requires. */
static void test_decode_unknown_fields(void **state)
{
    (void)state;
    struct ss_label labels[] = {L("__name__", "h")};
    struct ss_buf buf;
    ss_buf_init(&buf, 0);
    assert_int_equal(rw_encode_series(&buf, labels, 1, 2.5, 42), 0);
    /* Patch in a TimeSeries field 4 (histogram) record of 3 bytes: 0x22 0x03 a b c. */
    struct ss_buf patched;
    ss_buf_init(&patched, 0);
    uint8_t hdr[2] = {0x0a, (uint8_t)((uint8_t)buf.data[1] + 5)};
    assert_int_equal(ss_buf_append(&patched, hdr, 2), 0);
    assert_int_equal(ss_buf_append(&patched, buf.data + 2, buf.len - 2), 0);
    assert_int_equal(ss_buf_append(&patched,
                                   "\x22\x03"
                                   "abc",
                                   5),
                     0);
    assert_int_equal(ss_buf_append(&patched, "\x50\x07", 2), 0); /* WriteRequest field 10 */
    struct rw_write_request *req = NULL;
    assert_int_equal(rw_decode_write_request(patched.data, patched.len, &req), 0);
    struct rw_series s;
    assert_int_equal(rw_write_request_series(req, 0, &s), 0);
    assert_int_equal(s.nsamples, 1);
    assert_true(s.samples[0].value == 2.5);
    assert_int_equal(s.samples[0].timestamp_ms, 42);
    rw_write_request_free(req);
    ss_buf_free(&patched);
    ss_buf_free(&buf);
}

/* Exemplars are not encoded by rw_encode_series, but the decoder must show them. */
static void test_decode_exemplars(void **state)
{
    (void)state;
    Prometheus__Label l1 = PROMETHEUS__LABEL__INIT, l2 = PROMETHEUS__LABEL__INIT,
                      e1 = PROMETHEUS__LABEL__INIT;
    l1.name = "__name__", l1.value = "req_bucket";
    l2.name = "le", l2.value = "0.5";
    e1.name = "trace_id", e1.value = "abc123";
    Prometheus__Label *ls[] = {&l1, &l2}, *es[] = {&e1};
    Prometheus__Sample sm = PROMETHEUS__SAMPLE__INIT;
    sm.value = 3, sm.timestamp = 1000;
    Prometheus__Sample *sms[] = {&sm};
    Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, ex2 = PROMETHEUS__EXEMPLAR__INIT;
    ex.n_labels = 1, ex.labels = es, ex.value = 0.42, ex.timestamp = 999;
    ex2.value = rw_stale_nan();
    Prometheus__Exemplar *exs[] = {&ex, &ex2};
    Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
    ts.n_labels = 2, ts.labels = ls, ts.n_samples = 1, ts.samples = sms;
    ts.n_exemplars = 2, ts.exemplars = exs;
    Prometheus__TimeSeries *tsp[] = {&ts, &ts};
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_timeseries = 2, wr.timeseries = tsp;
    uint8_t pb[256];
    size_t n = prometheus__write_request__get_packed_size(&wr);
    assert_true(n <= sizeof pb);
    prometheus__write_request__pack(&wr, pb);

    struct rw_write_request *req = NULL;
    assert_int_equal(rw_decode_write_request(pb, n, &req), 0);
    for (size_t i = 0; i < 2; i++) {
        struct rw_series s;
        assert_int_equal(rw_write_request_series(req, i, &s), 0);
        assert_int_equal(s.nlabels, 2);
        assert_true(ss_str_eq_cstr(s.labels[1].value, "0.5"));
        assert_int_equal(s.nexemplars, 2);
        assert_int_equal(s.exemplars[0].nlabels, 1);
        assert_true(ss_str_eq_cstr(s.exemplars[0].labels[0].name, "trace_id"));
        assert_true(ss_str_eq_cstr(s.exemplars[0].labels[0].value, "abc123"));
        assert_true(s.exemplars[0].value == 0.42);
        assert_int_equal(s.exemplars[0].timestamp_ms, 999);
        assert_int_equal(s.exemplars[1].nlabels, 0);
        assert_true(rw_is_stale_nan(s.exemplars[1].value));
    }
    rw_write_request_free(req);
}

/* ---- validation ---------------------------------------------------------- */

static void test_validate(void **state)
{
    (void)state;
    const char *why = NULL;
    struct ss_label good[] = {L("__name__", "up"), L("instance", "a:1"), L("job", "j")};
    assert_int_equal(rw_validate_labels(good, 3, 0, &why), 0);
    assert_int_equal(rw_validate_labels(good, 3, RW_VALIDATE_LEGACY_NAMES, &why), 0);
    struct ss_label utf8ok[] = {L("__name__", "ü.metric"), L("ñame", "日本 🚀")};
    assert_int_equal(rw_validate_labels(utf8ok, 2, 0, &why), 0);
    assert_int_equal(rw_validate_labels(utf8ok, 2, RW_VALIDATE_LEGACY_NAMES, &why), SS_EINVAL);
    assert_string_equal(why, "invalid metric name");
    struct ss_label colon[] = {L("__name__", "job:rate5m"), L("a:b", "x")};
    assert_int_equal(rw_validate_labels(colon, 1, RW_VALIDATE_LEGACY_NAMES, &why), 0);
    assert_int_equal(rw_validate_labels(colon, 2, RW_VALIDATE_LEGACY_NAMES, &why), SS_EINVAL);
    assert_string_equal(why, "invalid label name");
    struct ss_label digit[] = {L("0a", "x"), L("__name__", "m")};
    assert_int_equal(rw_validate_labels(digit, 2, RW_VALIDATE_LEGACY_NAMES, &why), SS_EINVAL);
    struct ss_label digit_metric[] = {L("__name__", "1m")};
    assert_int_equal(rw_validate_labels(digit_metric, 1, RW_VALIDATE_LEGACY_NAMES, &why), SS_EINVAL);

    static const struct {
        struct ss_label l[3];
        size_t n;
        const char *why;
    } bad[] = {
        {{{{NULL, 0}, {NULL, 0}}}, 0, "empty label set"},
        {{{{"__name__", 8}, {"up", 2}}, {{"", 0}, {"x", 1}}}, 2, "empty label name"},
        {{{{"__name__", 8}, {"up", 2}}, {{"job", 3}, {"", 0}}}, 2, "empty label value"},
        {{{{"job", 3}, {"a", 1}}, {{"__name__", 8}, {"up", 2}}}, 2, "label names not sorted"},
        {{{{"__name__", 8}, {"up", 2}}, {{"a", 1}, {"1", 1}}, {{"a", 1}, {"2", 1}}},
         3,
         "duplicate label name"},
        {{{{"instance", 8}, {"x", 1}}, {{"job", 3}, {"a", 1}}}, 2, "no __name__ label"},
        {{{{"__name__", 8}, {"\xc0\x80", 2}}}, 1, "label value is not valid UTF-8"},
        {{{{"__name__", 8}, {"\xed\xa0\x80", 3}}}, 1, "label value is not valid UTF-8"},
        {{{{"__name__", 8}, {"\xf4\x90\x80\x80", 4}}}, 1, "label value is not valid UTF-8"},
        {{{{"__name__", 8}, {"\xe2\x82", 2}}}, 1, "label value is not valid UTF-8"},
        {{{{"__name__", 8}, {"\xff", 1}}}, 1, "label value is not valid UTF-8"},
        {{{{"__name__", 8}, {"m", 1}}, {{"\x80", 1}, {"v", 1}}}, 2, "label name is not valid UTF-8"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        why = NULL;
        assert_int_equal(rw_validate_labels(bad[i].n ? bad[i].l : NULL, bad[i].n, 0, &why), SS_EINVAL);
        assert_string_equal(why, bad[i].why);
    }
    /* Byte order, not locale order: "Z" (0x5a) sorts before "_" (0x5f) and "a". */
    struct ss_label bytes_order[] = {L("Zeta", "1"), L("__name__", "m"), L("alpha", "2")};
    assert_int_equal(rw_validate_labels(bytes_order, 3, 0, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_timestamps),
        cmocka_unit_test(test_stale_marker_bits),
        cmocka_unit_test(test_label_shapes),
        cmocka_unit_test(test_wire_parts_lengths),
        cmocka_unit_test(test_multi_sample),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_mixed_records),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_unknown_fields),
        cmocka_unit_test(test_decode_exemplars),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
