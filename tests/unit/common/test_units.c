/* test_units.c: durations, sizes, float formatting, labels and arenas. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ss.h"

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(ss_parse_duration_ms("15s", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(ss_parse_duration_ms("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(ss_parse_duration_ms("1h5m10s250ms", &ms), 0);
    assert_int_equal(ms, 3910250);
    assert_int_equal(ss_parse_duration_ms("2d", &ms), 0);
    assert_int_equal(ms, 2 * 86400000LL);
    assert_int_equal(ss_parse_duration_ms("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_not_equal(ss_parse_duration_ms("30s1m", &ms), 0); /* order */
    assert_int_not_equal(ss_parse_duration_ms("1.5s", &ms), 0);
    assert_int_not_equal(ss_parse_duration_ms("s", &ms), 0);
    assert_int_not_equal(ss_parse_duration_ms("", &ms), 0);
    assert_int_not_equal(ss_parse_duration_ms("10x", &ms), 0);
    assert_int_not_equal(ss_parse_duration_ms("99999999999999999999s", &ms), 0);
    char buf[32];
    ss_format_duration_ms(buf, sizeof buf, 90000);
    assert_string_equal(buf, "1m30s");
    ss_format_duration_ms(buf, sizeof buf, 500);
    assert_string_equal(buf, "500ms");
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t n;
    assert_int_equal(ss_parse_size("10MB", &n), 0);
    assert_int_equal(n, 10ULL << 20);
    assert_int_equal(ss_parse_size("512", &n), 0);
    assert_int_equal(n, 512);
    assert_int_equal(ss_parse_size("1GiB", &n), 0);
    assert_int_equal(n, 1ULL << 30);
    assert_int_not_equal(ss_parse_size("10XB", &n), 0);
    assert_int_not_equal(ss_parse_size("-1", &n), 0);
}

static void test_is_integral(void **state)
{
    (void)state;
    /* the same answers as isfinite(v) && v == floor(v) */
    const double vals[] = {0.0,
                           -0.0,
                           1.0,
                           -1.0,
                           0.5,
                           -0.5,
                           2.5e-300,
                           1e15,
                           1e15 + 0.5,
                           0x1p52 + 0.5,
                           0x1p53,
                           -0x1p53,
                           0x1p53 - 1,
                           1e300,
                           -1e300,
                           86400000.0,
                           86400000.1,
                           INFINITY,
                           -INFINITY,
                           NAN,
                           4503599627370495.5,
                           -9.5e18,
                           9.2233720368547758e18};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        assert_true(ss_is_integral(vals[i]) == (isfinite(vals[i]) && vals[i] == floor(vals[i])));
}

static void test_format_double(void **state)
{
    (void)state;
    char b[32];
    ss_format_double(b, sizeof b, 1.0);
    assert_string_equal(b, "1");
    ss_format_double(b, sizeof b, 0.1);
    assert_string_equal(b, "0.1");
    ss_format_double(b, sizeof b, 1e21);
    assert_string_equal(b, "1e+21");
    ss_format_double(b, sizeof b, NAN);
    assert_string_equal(b, "NaN");
    ss_format_double(b, sizeof b, -INFINITY);
    assert_string_equal(b, "-Inf");
    ss_format_double(b, sizeof b, 1756047.3);
    assert_string_equal(b, "1.7560473e+06");
    /* Prometheus 2.42's API (values checked against it in test_prometheus_parity_edges) */
    static const struct {
        double v;
        const char *s;
    } api[] = {{-0.0, "-0"},
               {0.0, "0"},
               {1e-05, "0.00001"},
               {1e-06, "0.000001"},
               {9.99e-07, "9.99e-07"},
               {1756047.3, "1756047.3"},
               {1.2345678901234567e20, "123456789012345670000"},
               {1e21, "1e+21"},
               {-4.9e-324, "-5e-324"},
               {1.7976931348623157e308, "1.7976931348623157e+308"},
               {-123.456, "-123.456"},
               {0.1, "0.1"},
               {100, "100"}};
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        ss_format_double_api(b, sizeof b, api[i].v);
        assert_string_equal(b, api[i].s);
    }
    /* Go: strconv.FormatFloat(x, 'g', -1, 64) */
    static const struct {
        double v;
        const char *s;
    } go[] = {
        {1000, "1000"},
        {100000, "100000"},
        {1e6, "1e+06"},
        {123456, "123456"},
        {1234567, "1.234567e+06"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {1.5e-5, "1.5e-05"},
        {-2.5, "-2.5"},
        {1e100, "1e+100"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {12, "12"},
        {0, "0"},
        {-1e-7, "-1e-07"},
    };
    for (size_t i = 0; i < sizeof go / sizeof go[0]; i++) {
        ss_format_double(b, sizeof b, go[i].v);
        assert_string_equal(b, go[i].s);
    }
}

/* ss_labels_compact keeps the labels (copied: a borrowed string may go away after it),
 * one block holding just their strings, and the set still takes more. */
static void test_labels_compact(void **state)
{
    (void)state;
    struct ss_labels ls;
    ss_labels_init(&ls);
    char borrowed[16] = "pod-7";
    assert_int_equal(ss_labels_setc(&ls, SS_STR("job"), SS_STR("node")), 0);
    assert_int_equal(ss_labels_push(&ls, SS_STR("pod"), (struct ss_str){borrowed, strlen(borrowed)}), 0);
    assert_int_equal(ss_labels_setc(&ls, SS_STR("zone"), SS_STR("")), 0); /* deleted: not there */
    uint64_t h = ss_labels_hash(&ls);
    assert_int_equal(ss_labels_compact(&ls), 0);
    memset(borrowed, 'x', sizeof borrowed - 1);
    assert_int_equal(ls.n, 2);
    assert_int_equal(ls.cap, 2);
    assert_int_equal(ss_labels_hash(&ls), h);
    assert_true(ss_str_eq_cstr(*ss_labels_get(&ls, SS_STR("pod")), "pod-7"));
    assert_int_equal(ls.arena.used_total, 8 + 8 + 8 + 8); /* "job" "node" "pod" "pod-7", 8-aligned */
    assert_int_equal(ss_labels_setc(&ls, SS_STR("instance"), SS_STR("a:1")), 0);
    assert_int_equal(ls.n, 3);
    assert_true(ss_str_eq_cstr(*ss_labels_get(&ls, SS_STR("job")), "node"));
    ss_labels_free(&ls);
    ss_labels_init(&ls); /* an empty set holds nothing after */
    assert_int_equal(ss_labels_compact(&ls), 0);
    assert_null(ls.v);
    assert_int_equal(ls.cap, 0);
    ss_labels_free(&ls);
}

static void test_labels(void **state)
{
    (void)state;
    struct ss_labels ls;
    ss_labels_init(&ls);
    assert_int_equal(ss_labels_setc(&ls, SS_STR("job"), SS_STR("a")), 0);
    assert_int_equal(ss_labels_setc(&ls, SS_STR("instance"), SS_STR("b")), 0);
    assert_int_equal(ss_labels_setc(&ls, SS_STR("__name__"), SS_STR("up")), 0);
    assert_int_equal(ss_labels_setc(&ls, SS_STR("job"), SS_STR("c")), 0);
    assert_int_equal(ls.n, 3);
    ss_labels_sort(&ls);
    assert_true(ss_str_eq_cstr(ls.v[0].name, "__name__"));
    assert_true(ss_str_eq_cstr(ls.v[2].name, "job"));
    assert_true(ss_str_eq_cstr(ls.v[2].value, "c"));
    assert_int_equal(ss_labels_set(&ls, SS_STR("job"), SS_STR("")), 0); /* empty deletes */
    assert_int_equal(ls.n, 2);
    assert_null(ss_labels_get(&ls, SS_STR("job")));
    uint64_t h1 = ss_labels_hash(&ls);
    struct ss_labels c;
    ss_labels_init(&c);
    assert_int_equal(ss_labels_copy(&c, &ls), 0);
    assert_int_equal(ss_labels_hash(&c), h1);
    ss_labels_free(&c);
    ss_labels_free(&ls);
}

/* Moving bytes between name and value, or between labels, must change the hash. */
static void test_labels_hash_boundaries(void **state)
{
    (void)state;
    struct ss_labels a, b;
    ss_labels_init(&a);
    ss_labels_init(&b);
    ss_labels_push(&a, SS_STR("a"), SS_STR("bc"));
    ss_labels_push(&b, SS_STR("ab"), SS_STR("c"));
    assert_true(ss_labels_hash(&a) != ss_labels_hash(&b));
    ss_labels_reset(&a);
    ss_labels_reset(&b);
    ss_labels_push(&a, SS_STR("x"), SS_STR("12345678"));
    ss_labels_push(&a, SS_STR("y"), SS_STR("1"));
    ss_labels_push(&b, SS_STR("x"), SS_STR("1234567"));
    ss_labels_push(&b, SS_STR("y"), SS_STR("81"));
    assert_true(ss_labels_hash(&a) != ss_labels_hash(&b));
    /* 100k distinct values: no collisions */
    uint64_t *seen = calloc(100000, sizeof *seen);
    char v[32];
    for (int i = 0; i < 100000; i++) {
        ss_labels_reset(&a);
        snprintf(v, sizeof v, "%d", i);
        ss_labels_push(&a, SS_STR("__name__"), SS_STR("metric"));
        ss_labels_push(&a, SS_STR("i"), (struct ss_str){v, strlen(v)});
        seen[i] = ss_labels_hash(&a);
    }
    for (int i = 0; i < 100000; i++)
        for (int k = i + 1; k < i + 64 && k < 100000; k++)
            assert_true(seen[i] != seen[k]);
    free(seen);
    ss_labels_free(&a);
    ss_labels_free(&b);
}

/* ss_hash_str reads a string's last bytes without a byte loop: the value must stay
 * the word-at-a-time hash with the tail copied in (memcpy into a zeroed word), for
 * every length and alignment. */
static uint64_t ref_mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static uint64_t ref_hash_str(uint64_t h, const char *p, size_t len)
{
    size_t n = len;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = ref_mix(h, v);
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)&v)[i] = (unsigned char)p[i];
    return ref_mix(h, v ^ ((uint64_t)len << 56) ^ 0xA5A5A5A5ULL);
}

static void test_hash_str_tail(void **state)
{
    (void)state;
    char buf[96];
    uint64_t x = 0x1234567;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (char)(x >> 56);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 80; len++)
            assert_true(ss_hash_str(42, (struct ss_str){buf + off, len}) == ref_hash_str(42, buf + off, len));
}

/* ss_hash_text: the two-lane hash equals its plain statement for every length and
 * alignment, depends on every byte, and keeps 200k series-like texts that differ in
 * one place (the place moving through both lanes and the tail) apart. */
static uint64_t ref_mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t ref_hash_text(uint64_t h, const char *p, size_t len)
{
    const uint64_t k1 = 0xF9F7FDFBF6FEFAF5ULL, k2 = 0x9E3779B97F4A7C15ULL, k3 = 0xD6E8FEB86659FD93ULL;
    size_t n = len;
    h ^= k2;
    for (; n > 16; p += 16, n -= 16) {
        uint64_t v, w;
        memcpy(&v, p, 8);
        memcpy(&w, p + 8, 8);
        h = ref_mum(v ^ k1, w ^ h);
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            ((unsigned char *)&a)[i] = (unsigned char)p[i];
    }
    h = ref_mum(a ^ k1, b ^ h);
    return ref_mum(h ^ k3 ^ (uint64_t)len, k2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_hash_text(void **state)
{
    (void)state;
    char buf[136];
    uint64_t x = 0x7654321;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (char)(x >> 56);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 128; len++) {
            uint64_t h = ss_hash_text(42, (struct ss_str){buf + off, len});
            assert_true(h == ref_hash_text(42, buf + off, len));
            for (size_t i = 0; i < len; i++) { /* every byte counts */
                buf[off + i] ^= 0x01;
                assert_true(ss_hash_text(42, (struct ss_str){buf + off, len}) != h);
                buf[off + i] ^= 0x01;
            }
        }
    /* Two bytes 8 apart that both change (digits in two labels) never cancel: every
     * pair of a 100x100 grid of texts, at every offset, hashes apart (the word-at-a-
     * time chains merged 18 of 100 series of such a grid). */
    for (int off = 0; off < 24; off++) {
        uint64_t hs[10000];
        char g[64];
        memset(g, 'x', sizeof g);
        for (int i = 0; i < 10000; i++) {
            g[off] = (char)('0' + i / 1000), g[off + 1] = (char)('0' + i / 100 % 10);
            g[off + 8] = (char)('0' + i / 10 % 10), g[off + 9] = (char)('0' + i % 10);
            hs[i] = ss_hash_text(0xB7E151628AED2A6BULL, (struct ss_str){g, 40});
        }
        qsort(hs, 10000, sizeof hs[0], cmp_u64);
        for (int i = 1; i < 10000; i++)
            assert_true(hs[i] != hs[i - 1]);
    }
    enum { N = 200000 };
    uint64_t *seen = calloc(N, sizeof *seen);
    assert_non_null(seen);
    char t[160];
    for (int i = 0; i < N; i++) {
        int pad = i % 40; /* the varying value moves across the words */
        int n = snprintf(t, sizeof t, "http_requests_total{%.*scode=\"%d\",method=\"GET\"}", pad,
                         "path=\"/api/v1/orders/items/x\",zone=\"a\",", i / 40);
        seen[i] = ss_hash_text(0xB7E151628AED2A6BULL, (struct ss_str){t, (size_t)n});
    }
    qsort(seen, N, sizeof *seen, cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(seen[i] != seen[i - 1]);
    free(seen);
}

static void test_buf_limit(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 8);
    assert_int_equal(ss_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(ss_buf_append(&b, "9", 1), SS_ELIMIT);
    assert_int_equal(b.len, 8);
    ss_buf_free(&b);
}

static void test_arena(void **state)
{
    (void)state;
    struct ss_arena a;
    ss_arena_init(&a, 64);
    char *first = ss_arena_strndup(&a, "hello", 5);
    for (int i = 0; i < 100; i++)
        assert_non_null(ss_arena_alloc(&a, 40));
    assert_string_equal(first, "hello"); /* never moves */
    ss_arena_reset(&a);
    assert_non_null(ss_arena_alloc(&a, 1000));
    ss_arena_free(&a);
}

/* A timed wait on an ss_cond_init_mono condition variable ends at the deadline
 * ss_mono_deadline_ms gives: were the clocks of the two different (a CLOCK_REALTIME
 * condition variable and a monotonic deadline, decades in its past), it would end at
 * once, and the other way round it would never end. */
static void test_cond_mono(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    assert_int_equal(ss_cond_init_mono(&cv), SS_OK);
    pthread_mutex_lock(&mu);
    int64_t t0 = ss_mono_ms();
    struct timespec ts = ss_mono_deadline_ms(60);
    int rc;
    do
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    while (rc == 0); /* a spurious wakeup */
    int64_t took = ss_mono_ms() - t0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(took >= 59);
    assert_true(took < 5000);
    ts = ss_mono_deadline_ms(-5); /* negative: now */
    pthread_mutex_lock(&mu);
    assert_int_equal(pthread_cond_timedwait(&cv, &mu, &ts), ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_is_integral),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_labels_compact),
        cmocka_unit_test(test_labels_hash_boundaries),
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_hash_str_tail),
        cmocka_unit_test(test_hash_text),
        cmocka_unit_test(test_cond_mono),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
