/* test_series.c: the per-target series table (scrape/series.c) on its own.
 *
 * Drives the table as the engine does (begin, find or add, see, sweep) with hashes
 * the test chooses, so collisions can be forced: staleness (a series that went away
 * gets one marker, explicit-timestamp series none, a failed scrape marks everything
 * committed), what counts as added, equal label hashes for different label sets
 * (many in one probe run, removed from its middle), the scrape cache after a reload
 * (the same raw text now meaning other labels), compaction under churn, and maps
 * that settle at their keys' size with keys that share a start and tag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scrape_series.h"
#include "series.h"

/* One series "name{k=v}" in wire form, in buf. */
static size_t wire_of(char *buf, size_t cap, const char *name, const char *v)
{
    struct ss_label l[2] = {{SS_STR("__name__"), {name, strlen(name)}}, {SS_STR("k"), {v, strlen(v)}}};
    size_t n = ss_labels_wire_size(l, 2);
    assert_true(n <= cap);
    ss_labels_wire_write((uint8_t *)buf, l, 2);
    return n;
}

struct staled {
    char names[64][32];
    size_t n;
};

/* The labels of entry e in wire form (series_table_labels into a buffer of the test). */
static struct ss_buf labels_buf;

static const char *labels_of(const struct series_table *t, const struct series_entry *e)
{
    assert_int_equal(series_table_labels(t, e, &labels_buf), 0);
    return labels_buf.data;
}

static void on_stale(void *ud, const struct series_table *t, const struct series_entry *e)
{
    struct staled *s = ud;
    struct ss_label l[4];
    const char *w = labels_of(t, e);
    long n = ss_labels_wire_read(w, labels_buf.len, l, NULL, 4);
    assert_int_equal(n, 2);
    snprintf(s->names[s->n++], 32, "%.*s/%.*s", (int)l[0].value.len, l[0].value.p, (int)l[1].value.len,
             l[1].value.p);
}

/* What the engine does for one sample: the scrape cache first, then the labels.
 * Returns the entry; *added tells whether it is new. */
static long sample(struct series_table *t, uint64_t raw, uint64_t hash, const char *name, const char *v,
                   bool tracked, bool *added)
{
    char w[128];
    *added = false;
    long i = raw ? series_table_find_raw(t, raw) : -1;
    assert_int_equal(series_table_find_raw_next(t, raw), i); /* the shortcut agrees */
    if (i < 0) {
        size_t len = wire_of(w, sizeof w, name, v);
        i = series_table_find(t, hash, w, len);
        if (i < 0) {
            i = series_table_add(t, hash, w, len, 2);
            assert_true(i >= 0);
            *added = true;
        }
        series_table_link_raw(t, (size_t)i, raw);
    }
    if (!series_table_seen(t, (size_t)i))
        series_table_see(t, (size_t)i, 1.0, 1000, tracked);
    return i;
}

static void check_labels(const struct series_table *t, long i, const char *name, const char *v)
{
    struct ss_label l[4];
    const struct series_entry *e = &t->e[i];
    const char *w = labels_of(t, e);
    assert_int_equal(ss_labels_wire_read(w, labels_buf.len, l, NULL, 4), 2);
    assert_true(ss_str_eq_cstr(l[0].value, name));
    assert_true(ss_str_eq_cstr(l[1].value, v));
}

/* The sinks' hint sits in the upper bits of an entry's flags: a sweep keeps it, and
 * it does not disturb staleness (the flag bits under it). */
static void test_hint_kept(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    struct staled st = {0};
    bool added;
    series_table_begin(&t);
    long a = sample(&t, 11, 1, "a", "1", true, &added);
    long b = sample(&t, 12, 2, "b", "1", true, &added);
    assert_int_equal(series_hint(&t.e[a]), 0);
    series_set_hint(&t.e[a], SCRAPE_HINT_MAX);
    series_set_hint(&t.e[b], 3);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 0);
    for (int round = 0; round < 3; round++) { /* kept over scrapes, tracked or not */
        series_table_begin(&t);
        assert_int_equal(sample(&t, 11, 1, "a", "1", round != 1, &added), a);
        assert_int_equal(sample(&t, 12, 2, "b", "1", true, &added), b);
        assert_false(added);
        assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 0);
        assert_int_equal(series_hint(&t.e[a]), SCRAPE_HINT_MAX);
        assert_int_equal(series_hint(&t.e[b]), 3);
    }
    /* b goes away: its stale marker still comes (its entry had the hint) */
    series_table_begin(&t);
    sample(&t, 11, 1, "a", "1", true, &added);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1);
    assert_string_equal(st.names[0], "b/1");
    assert_int_equal(series_hint(&t.e[a]), SCRAPE_HINT_MAX);
    /* a new series in b's slot starts without one */
    series_table_begin(&t);
    sample(&t, 11, 1, "a", "1", true, &added);
    long c = sample(&t, 13, 3, "c", "1", true, &added);
    assert_true(added);
    assert_int_equal(series_hint(&t.e[c]), 0);
    series_table_free(&t);
}

static void test_staleness_and_added(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    struct staled st = {0};
    bool added;
    int nadded = 0;

    series_table_begin(&t);
    nadded += sample(&t, 11, 1, "a", "1", true, &added) >= 0 && added;
    nadded += sample(&t, 12, 2, "b", "1", true, &added) >= 0 && added;
    nadded += sample(&t, 13, 3, "x", "1", false, &added) >= 0 && added; /* explicit timestamp */
    assert_int_equal(nadded, 3);
    assert_int_equal(t.norder, 3);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 0);

    /* b and x go away: one marker, for b only */
    series_table_begin(&t);
    long a = sample(&t, 11, 1, "a", "1", true, &added);
    assert_false(added);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1);
    assert_string_equal(st.names[0], "b/1");
    assert_int_equal(t.live, 1);
    assert_int_equal(series_table_find_raw(&t, 12), -1);
    assert_int_equal(series_table_find_raw(&t, 11), a);

    /* b is back: added again; then the scrape fails: a and b are marked (they were
     * committed), the new c is not, and the table is empty */
    series_table_begin(&t);
    sample(&t, 12, 2, "b", "1", true, &added);
    assert_true(added);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1); /* a went away */
    series_table_begin(&t);
    sample(&t, 12, 2, "b", "1", true, &added);
    assert_false(added);
    sample(&t, 14, 4, "c", "1", true, &added);
    assert_true(added);
    st.n = 0;
    assert_int_equal(series_table_sweep(&t, false, on_stale, &st), 1);
    assert_string_equal(st.names[0], "b/1");
    assert_int_equal(t.live, 0);
    /* after a failure everything is added again */
    series_table_begin(&t);
    sample(&t, 12, 2, "b", "1", true, &added);
    assert_true(added);
    series_table_free(&t);
}

/* `seen` keeps one byte of the generation: over many wraps of that byte a series
 * seen every scrape never goes stale, one seen every other scrape goes stale each
 * time it is missing, and a series is never taken as already seen. */
static void test_generation_byte_wraps(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    struct staled st = {0};
    bool added;
    int stale_b = 0, added_b = 0;
    for (int g = 0; g < 600; g++) {
        series_table_begin(&t);
        long a = sample(&t, 11, 1, "a", "1", true, &added);
        assert_true(a >= 0);
        assert_int_equal(added, g == 0);
        assert_true(series_table_seen(&t, (size_t)a));
        if (g % 2 == 0) {
            long b = series_table_find_raw(&t, 12);
            assert_true(b < 0 || !series_table_seen(&t, (size_t)b));
            sample(&t, 12, 2, "b", "1", true, &added);
            added_b += added;
        }
        st.n = 0;
        size_t n = series_table_sweep(&t, true, on_stale, &st);
        stale_b += (int)n;
        assert_int_equal(n, g % 2); /* b was missing in the odd scrapes */
    }
    assert_int_equal(added_b, 300);
    assert_int_equal(stale_b, 300);
    series_table_free(&t);
}

/* Every series has the same label hash: they stay apart, and removing some from the
 * middle of the probe run leaves the rest findable (backward-shift deletion). */
static void test_forced_hash_collisions(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    struct staled st = {0};
    bool added;
    char v[16];
    const int n = 600; /* the maps grow twice while the run is this long */
    series_table_begin(&t);
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof v, "%d", i);
        sample(&t, 0, 42, "same", v, false, &added); /* no raw key: always by labels */
        assert_true(added);
    }
    assert_int_equal(t.live, n);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 0);
    for (int i = 0; i < n; i++) {
        char w[128];
        snprintf(v, sizeof v, "%d", i);
        size_t len = wire_of(w, sizeof w, "same", v);
        long k = series_table_find(&t, 42, w, len);
        assert_true(k >= 0);
        check_labels(&t, k, "same", v);
    }
    /* keep the odd ones */
    series_table_begin(&t);
    for (int i = 1; i < n; i += 2) {
        snprintf(v, sizeof v, "%d", i);
        sample(&t, 0, 42, "same", v, false, &added);
        assert_false(added);
    }
    series_table_sweep(&t, true, NULL, NULL);
    assert_int_equal(t.live, n / 2);
    for (int i = 0; i < n; i++) {
        char w[128];
        snprintf(v, sizeof v, "%d", i);
        size_t len = wire_of(w, sizeof w, "same", v);
        long k = series_table_find(&t, 42, w, len);
        if (i % 2) {
            assert_true(k >= 0);
            check_labels(&t, k, "same", v);
        } else {
            assert_int_equal(k, -1);
        }
    }
    /* a label hash equal to another series' raw key is no confusion either */
    series_table_begin(&t);
    long k = sample(&t, 42, 7, "other", "x", true, &added);
    assert_true(added);
    assert_int_equal(series_table_find_raw(&t, 42), k);
    series_table_free(&t);
}

/* After a reload the scrape cache is emptied: the same raw text goes through the
 * (new) relabeling again and may now mean another label set. The new set is added,
 * the old one gets its stale marker, and the raw key points at the new entry. */
static void test_relabel_reload_same_raw(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    struct staled st = {0};
    bool added;
    series_table_begin(&t);
    long old = sample(&t, 99, 1, "m", "before", true, &added);
    series_table_sweep(&t, true, on_stale, &st);
    series_table_begin(&t);
    assert_int_equal(sample(&t, 99, 1, "m", "before", true, &added), old); /* cache hit */
    assert_false(added);
    series_table_sweep(&t, true, on_stale, &st);

    series_table_clear_raw(&t); /* reload */
    assert_int_equal(series_table_find_raw(&t, 99), -1);
    series_table_begin(&t);
    long now = sample(&t, 99, 5, "m", "after", true, &added);
    assert_true(added);
    assert_true(now != old);
    assert_int_equal(series_table_find_raw(&t, 99), now);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1);
    assert_string_equal(st.names[0], "m/before");
    check_labels(&t, series_table_find_raw(&t, 99), "m", "after");

    /* and if the reload changed nothing, the old entry is found by its labels and the
     * cache key is linked to it again: nothing added, nothing stale */
    series_table_clear_raw(&t);
    series_table_begin(&t);
    assert_int_equal(sample(&t, 99, 5, "m", "after", true, &added), now);
    assert_false(added);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 0);
    assert_int_equal(st.n, 1);
    assert_int_equal(series_table_find_raw(&t, 99), now);
    series_table_free(&t);
}

/* Churn: a new set of series every scrape. The table compacts instead of growing. */
static void test_churn_compacts(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    bool added;
    char v[16];
    size_t max_bytes_cap = 0, max_cap = 0;
    for (int round = 0; round < 50; round++) {
        series_table_begin(&t);
        for (int i = 0; i < 2000; i++) {
            snprintf(v, sizeof v, "%d", round * 2000 + i);
            uint64_t h = (uint64_t)(round * 2000 + i) * 0x9E3779B97F4A7C15ULL;
            sample(&t, h ^ 0x55, h, "churn", v, true, &added);
            assert_true(added);
        }
        assert_int_equal(series_table_sweep(&t, true, NULL, NULL), 0);
        assert_int_equal(t.live, 2000);
        if (t.d->bytes.cap > max_bytes_cap)
            max_bytes_cap = t.d->bytes.cap;
        if (t.cap > max_cap)
            max_cap = t.cap;
    }
    assert_true(max_cap <= 8192);
    assert_true(max_bytes_cap <= 4 * 2000 * 32);
    /* everything of the last round is there and findable */
    for (int i = 0; i < 2000; i++) {
        uint64_t h = (uint64_t)(49 * 2000 + i) * 0x9E3779B97F4A7C15ULL;
        long k = series_table_find_raw(&t, h ^ 0x55);
        assert_true(k >= 0);
        snprintf(v, sizeof v, "%d", 49 * 2000 + i);
        check_labels(&t, k, "churn", v);
    }
    series_table_free(&t);
}

/* The inverse of the maps' Fibonacci multiplier modulo 2^64 (Newton's iteration), so
 * the test can make keys whose mixed hashes it chooses. */
static uint64_t mix_inverse(void)
{
    const uint64_t phi = 0x9E3779B97F4A7C15ULL;
    uint64_t inv = phi;
    for (int i = 0; i < 6; i++)
        inv *= 2 - phi * inv;
    assert_true(phi * inv == 1);
    return inv;
}

/* The maps are sized by their keys, not to a power of two: grown at twice the keys
 * while a scrape adds, they settle between 8/15 and 3/4 full after it, also after
 * most series went away. Raw keys that share a map's start and tag (only the low 24
 * bits of their mixed hash differ), with the start at the map's end so their run
 * wraps to slot 0, are still told apart, and removing from the middle of the run
 * keeps the rest findable. */
static void test_maps_settle(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    const uint64_t inv = mix_inverse();
    bool added;
    char v[16];
    /* n is just past a growth of the maps (to twice the keys): the first sweep must
     * shrink them */
    const int n = 25300, keep = 10000, twins = 300;
    /* series i: raw key i + 1 mixed, except the first `twins`, whose mixed keys all
     * have the high 40 bits set: the same tag, and their start is the last slot */
    uint64_t raw[25300];
    for (int i = 0; i < n; i++)
        raw[i] = i < twins ? (~0ULL << 24 | (uint64_t)i) * inv : (uint64_t)(i + 1) * 0x2545F4914F6CDD1DULL;
    series_table_begin(&t);
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof v, "%d", i);
        sample(&t, raw[i], (uint64_t)(i / 4), "m", v, true, &added); /* 4 series per label hash */
        assert_true(added);
    }
    series_table_sweep(&t, true, NULL, NULL);
    assert_int_equal(t.live, n);
    assert_true(t.live * 4 <= t.mcap * 3 && t.live * 15 > t.mcap * 8);
    assert_true(t.d->plive * 4 <= t.d->pmcap * 3 && t.d->plive * 15 > t.d->pmcap * 8);
    for (int i = 0; i < n; i++) {
        long k = series_table_find_raw(&t, raw[i]);
        assert_true(k >= 0);
        snprintf(v, sizeof v, "%d", i);
        check_labels(&t, k, "m", v);
    }
    /* most go away, among them every other twin (the middle of their run) */
    series_table_begin(&t);
    for (int i = 0; i < keep; i++)
        if (i >= twins || i % 2)
            sample(&t, raw[i], (uint64_t)(i / 4), "m", "", true, &added);
    series_table_sweep(&t, true, NULL, NULL);
    assert_int_equal(t.live, keep - twins / 2);
    assert_true(t.live * 4 <= t.mcap * 3 && t.live * 15 > t.mcap * 8);
    for (int i = 0; i < n; i++) {
        long k = series_table_find_raw(&t, raw[i]);
        bool kept = i < keep && (i >= twins || i % 2);
        assert_int_equal(k >= 0, kept);
        if (!kept)
            continue;
        snprintf(v, sizeof v, "%d", i);
        check_labels(&t, k, "m", v);
        char w[128];
        size_t len = wire_of(w, sizeof w, "m", v);
        assert_int_equal(series_table_find(&t, (uint64_t)(i / 4), w, len), k);
    }
    series_table_free(&t);
}

/* A scrape's samples come back in exposition order with their values and
 * timestamps: the scrape's own time is kept once, other timestamps one each, also
 * when the first sample has its own. */
static void test_samples_read_back(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    char w[128], v[16];
    const int64_t first_ts[2] = {1000, 777};
    for (int round = 0; round < 2; round++) {
        series_table_begin(&t);
        for (int i = 0; i < 5000; i++) {
            snprintf(v, sizeof v, "%d", i);
            size_t len = wire_of(w, sizeof w, "ts", v);
            long k = series_table_find(&t, (uint64_t)i, w, len);
            if (k < 0)
                k = series_table_add(&t, (uint64_t)i, w, len, 2);
            assert_true(k >= 0);
            int64_t ts = i == 0 ? first_ts[round] : i % 7 == 3 ? 5000 + i : 1000;
            assert_int_equal(series_table_see(&t, (size_t)k, i + 0.25, ts, ts == 1000), 0);
        }
        assert_int_equal(t.norder, 5000);
        struct series_cursor c = {0};
        for (uint32_t k = 0; k < t.norder; k++) {
            double val;
            int64_t ts;
            uint32_t e = series_table_sample(&t, &c, &val, &ts);
            assert_true(val == k + 0.25);
            assert_int_equal(ts, k == 0 ? first_ts[round] : k % 7 == 3 ? 5000 + (int64_t)k : 1000);
            snprintf(v, sizeof v, "%u", k);
            check_labels(&t, (long)e, "ts", v);
        }
        assert_int_equal(c.tsk, t.nts);
        assert_int_equal(c.pos, t.olen);
        series_table_sweep(&t, true, NULL, NULL);
    }
    series_table_free(&t);
}

/* Every value comes back bit for bit, whichever form it was kept in (integers as
 * varints, the rest as 8 bytes): zero and minus zero, the integer limits around 2^53,
 * NaN payloads (the stale marker among them), infinities, subnormals; and every
 * index, in order, backwards, jumping, repeated across a generation. */
static void test_samples_values_exact(void **state)
{
    (void)state;
    uint64_t stale_bits = 0x7ff0000000000002ULL, qnan_bits = 0x7ff8000000000001ULL;
    double stale, qnan;
    memcpy(&stale, &stale_bits, sizeof stale);
    memcpy(&qnan, &qnan_bits, sizeof qnan);
    const double vals[] = {0.0,       -0.0,       1.0,         -1.0,         63.0,
                           64.0,      -64.0,      -65.0,       1733500000.0, 0x1p53,
                           -0x1p53,   0x1p53 + 2, -0x1p53 - 2, 0x1p62,       -0x1p63,
                           0x1p64,    1e300,      0.5,         -2.75,        4.9e-324,
                           -4.9e-324, INFINITY,   -INFINITY,   stale,        qnan,
                           -qnan,     0.1,        123456789.0, -987654321.0, 9007199254740991.0};
    const size_t nv = sizeof vals / sizeof vals[0];
    struct series_table t;
    series_table_init(&t, 0);
    char w[128], v[16];
    long idx[64];
    for (size_t i = 0; i < 64; i++) {
        snprintf(v, sizeof v, "%zu", i);
        size_t len = wire_of(w, sizeof w, "k", v);
        idx[i] = series_table_add(&t, (uint64_t)i, w, len, 2);
        assert_true(idx[i] >= 0);
    }
    /* orders: ascending, descending, a stride, and ascending with gaps */
    for (int round = 0; round < 4; round++) {
        series_table_begin(&t);
        long order[64];
        size_t n = 0;
        for (size_t i = 0; i < 64; i++) {
            size_t k = round == 0 ? i : round == 1 ? 63 - i : round == 2 ? (i * 7) % 64 : i;
            if (round == 3 && i % 5 == 2)
                continue;
            order[n++] = idx[k];
        }
        for (size_t i = 0; i < n; i++)
            assert_int_equal(series_table_see(&t, (size_t)order[i], vals[(i + round) % nv], 1000, true), 0);
        struct series_cursor c = {0};
        for (size_t i = 0; i < n; i++) {
            double val;
            int64_t ts;
            uint32_t e = series_table_sample(&t, &c, &val, &ts);
            assert_int_equal(e, order[i]);
            assert_memory_equal(&val, &vals[(i + round) % nv], sizeof val);
            assert_int_equal(ts, 1000);
        }
        assert_int_equal(c.pos, t.olen);
        series_table_sweep(&t, true, NULL, NULL);
    }
    series_table_free(&t);
}

/* A table of SERIES_HASH_DROP_MIN series or more frees its identity map before its
 * samples are emitted (series_table_settle); entries are removed and compacted
 * without it, and the next lookup by labels builds it again and finds exactly the
 * live series. */
static void test_identity_map_comes_back(void **state)
{
    (void)state;
    const int n = SERIES_HASH_DROP_MIN + 904, keep = 1000;
    struct series_table t;
    series_table_init(&t, 0);
    char w[128], v[16];
    long *idx = calloc((size_t)n, sizeof *idx);
    assert_non_null(idx);
    for (int round = 0; round < 3; round++) {
        series_table_begin(&t);
        int upto = round == 1 ? keep : n; /* round 1: the rest go */
        for (int i = 0; i < upto; i++) {
            uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
            long k = series_table_find_raw(&t, raw);
            if (k < 0) {
                snprintf(v, sizeof v, "%d", i);
                size_t len = wire_of(w, sizeof w, "id", v);
                k = series_table_find(&t, (uint64_t)i * 977, w, len);
                assert_int_equal(k, -1); /* new, or gone in round 1 */
                k = series_table_add(&t, (uint64_t)i * 977, w, len, 2);
                assert_true(k >= 0);
                series_table_link_raw(&t, (size_t)k, raw);
            }
            idx[i] = k;
            assert_int_equal(series_table_see(&t, (size_t)k, i, 1000, true), 0);
        }
        series_table_settle(&t);
        if (t.live >= SERIES_HASH_DROP_MIN)
            assert_true(!t.by_hash && t.hash_off);
        series_table_sweep(&t, true, NULL, NULL);
        assert_int_equal(t.live, upto);
        /* by labels: the live ones at their index, the others not at all */
        for (int i = 0; i < n; i++) {
            snprintf(v, sizeof v, "%d", i);
            size_t len = wire_of(w, sizeof w, "id", v);
            long k = series_table_find(&t, (uint64_t)i * 977, w, len);
            uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
            assert_int_equal(k, series_table_find_raw(&t, raw));
            if (i < upto) {
                assert_true(k >= 0);
                check_labels(&t, k, "id", v);
            } else {
                assert_int_equal(k, -1);
            }
        }
        assert_false(t.hash_off);
        assert_non_null(t.by_hash);
    }
    free(idx);
    series_table_free(&t);
}

static void test_wire_round_trip(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'v', sizeof big);
    struct ss_label l[3] = {
        {SS_STR("__name__"), SS_STR("m")}, {SS_STR("empty"), {"", 0}}, {SS_STR("long"), {big, sizeof big}}};
    uint8_t buf[512];
    size_t n = ss_labels_wire_size(l, 3);
    assert_int_equal(ss_labels_wire_write(buf, l, 3) - buf, n);
    struct ss_label out[3];
    uint32_t ends[3];
    assert_int_equal(ss_labels_wire_read(buf, n, out, ends, 3), 3);
    assert_int_equal(ends[2], n);
    for (int i = 0; i < 3; i++) {
        assert_true(ss_str_eq(out[i].name, l[i].name));
        assert_true(ss_str_eq(out[i].value, l[i].value));
    }
    assert_int_equal(ss_labels_wire_read(buf, n, out, NULL, 2), -1);     /* too many */
    assert_int_equal(ss_labels_wire_read(buf, n - 1, out, NULL, 3), -1); /* truncated */
}

/* Label pairs are stored once and counted: a pair goes when its last series goes. */
static void test_pairs_shared_and_counted(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    bool added;
    series_table_begin(&t);
    long a = sample(&t, 1, 1, "a", "1", true, &added);
    sample(&t, 2, 2, "b", "1", true, &added);
    sample(&t, 3, 3, "b", "2", true, &added);
    assert_int_equal(series_table_sweep(&t, true, NULL, NULL), 0);
    assert_int_equal(t.live, 3);
    assert_int_equal(t.d->plive, 4); /* __name__=a, k=1, __name__=b, k=2 */
    /* pairs present, combination absent: not found */
    char w[128];
    size_t len = wire_of(w, sizeof w, "a", "2");
    assert_int_equal(series_table_find(&t, 4, w, len), -1);
    len = wire_of(w, sizeof w, "a", "1");
    assert_int_equal(series_table_find(&t, 1, w, len), a);
    assert_int_equal(series_table_find(&t, 2, w, len), -1); /* other hash: other series */

    /* b{k=1} goes: k=1 is still a's, __name__=b still b{k=2}'s */
    series_table_begin(&t);
    sample(&t, 1, 1, "a", "1", true, &added);
    sample(&t, 3, 3, "b", "2", true, &added);
    struct staled st = {0};
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1);
    assert_string_equal(st.names[0], "b/1");
    assert_int_equal(t.d->plive, 4);
    /* a goes: __name__=a and k=1 go with it */
    series_table_begin(&t);
    sample(&t, 3, 3, "b", "2", true, &added);
    assert_int_equal(series_table_sweep(&t, true, on_stale, &st), 1);
    assert_string_equal(st.names[1], "a/1");
    assert_int_equal(t.d->plive, 2);
    check_labels(&t, series_table_find_raw(&t, 3), "b", "2");
    /* a new pair reuses a freed slot and the series reads back right */
    series_table_begin(&t);
    long c = sample(&t, 5, 5, "c", "9", true, &added);
    assert_true(added);
    assert_int_equal(t.d->plive, 4);
    assert_true(t.d->pn <= 4);
    check_labels(&t, c, "c", "9");
    check_labels(&t, series_table_find_raw(&t, 3), "b", "2");
    series_table_free(&t);
}

static uint32_t same_pair_hash(const void *p, size_t len)
{
    (void)p;
    (void)len;
    return 7;
}

/* Every pair hashes alike: pairs are told apart by their bytes, and removing pairs
 * from the middle of the one probe run keeps the others findable. */
static void test_pair_hash_collisions(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    t.d->pair_hash = same_pair_hash;
    bool added;
    char v[16];
    for (int round = 0; round < 3; round++) {
        series_table_begin(&t);
        for (int i = 0; i < 100; i++) {
            if (round == 1 && i % 3 == 0)
                continue; /* these go away in round 1, come back in round 2 */
            snprintf(v, sizeof v, "%d", i);
            sample(&t, (uint64_t)i + 1000, (uint64_t)i + 1, "m", v, true, &added);
            assert_int_equal(added, round == 0 || (round == 2 && i % 3 == 0));
        }
        series_table_sweep(&t, true, NULL, NULL);
        assert_int_equal(t.d->plive, round == 1 ? 1 + 66 : 1 + 100);
        for (int i = 0; i < 100; i++) {
            long k = series_table_find_raw(&t, (uint64_t)i + 1000);
            if (round == 1 && i % 3 == 0) {
                assert_int_equal(k, -1);
                continue;
            }
            assert_true(k >= 0);
            snprintf(v, sizeof v, "%d", i);
            check_labels(&t, k, "m", v);
        }
    }
    series_table_free(&t);
}

/* series_table_labels_split gives what decoding the wire bytes gives: long values
 * (two-byte lengths), empty values, labels shared between series; labels_parts the
 * same labels and the same bytes in pieces. */
static void test_labels_split(void **state)
{
    (void)state;
    char big[300], zname[200];
    memset(big, 'v', sizeof big);
    memset(zname, 'z', sizeof zname);
    /* lengths on both sides of 128, where a pair's lengths take two varint bytes: a
     * field of 126 bytes ("mid"), one of 130 with a value below 128 ("edge"), a long
     * value, a long name */
    struct ss_label l[6] = {{SS_STR("__name__"), SS_STR("m")}, {SS_STR("edge"), {big, 122}},
                            {SS_STR("empty"), {"", 0}},        {SS_STR("long"), {big, sizeof big}},
                            {SS_STR("mid"), {big, 119}},       {{zname, sizeof zname}, SS_STR("x")}};
    uint8_t w[1024];
    size_t n = ss_labels_wire_size(l, 6);
    ss_labels_wire_write(w, l, 6);
    struct series_table t;
    series_table_init(&t, 0);
    series_table_begin(&t);
    long a = series_table_add(&t, 1, w, n, 6);
    long b = series_table_add(&t, 2, w, ss_labels_wire_size(l, 2), 2); /* shares two pairs */
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(t.d->plive, 6);
    struct ss_buf out;
    ss_buf_init(&out, 0);
    struct ss_label got[8], want[8];
    uint32_t gends[8], wends[8];
    assert_int_equal(series_table_labels_split(&t, &t.e[a], &out, got, gends, 8), 6);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, w, n);
    assert_int_equal(ss_labels_wire_read(w, n, want, wends, 8), 6);
    for (int i = 0; i < 6; i++) {
        assert_true(ss_str_eq(got[i].name, want[i].name));
        assert_true(ss_str_eq(got[i].value, want[i].value));
        assert_int_equal(gends[i], wends[i]);
    }
    assert_int_equal(series_table_labels_split(&t, &t.e[a], &out, got, gends, 2), SS_ELIMIT);
    assert_int_equal(series_table_labels_split(&t, &t.e[b], &out, got, gends, 8), 2);
    assert_true(ss_str_eq_cstr(got[0].value, "m"));
    /* labels_parts: the same labels, and pieces that are the same bytes, one a label */
    struct ss_str parts[8];
    struct ss_label pgot[8];
    size_t plen = 0;
    assert_int_equal(series_table_labels_parts(&t, &t.e[a], pgot, parts, 8, &plen), 6);
    assert_int_equal(plen, n);
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        assert_true(ss_str_eq(pgot[i].name, want[i].name));
        assert_true(ss_str_eq(pgot[i].value, want[i].value));
        assert_int_equal(at + parts[i].len, wends[i]);
        assert_memory_equal(parts[i].p, w + at, parts[i].len);
        at += parts[i].len;
    }
    assert_int_equal(series_table_labels_parts(&t, &t.e[a], pgot, parts, 5, &plen), SS_ELIMIT);
    assert_int_equal(series_table_labels_parts(&t, &t.e[b], pgot, parts, 8, &plen), 2);
    assert_int_equal(plen, ss_labels_wire_size(l, 2));
    for (int i = 0; i < 2; i++) /* in the table's bytes, not a copy */
        assert_true(parts[i].p >= t.d->bytes.data &&
                    parts[i].p + parts[i].len <= t.d->bytes.data + t.d->bytes.len);
    ss_buf_free(&out);
    series_table_free(&t);
}

/* Randomized (from a review of the eighth pass): a universe of series over shared and
 * unique label values (some over 128 bytes), a random subset each scrape (one in ten
 * fails), so that tables grow and shrink around the smallest map and the buffers are
 * trimmed after sweeps. After every sweep each live series is found by raw key and by
 * labels and reads back byte for byte, stale markers read back the series that went
 * away, and the maps stay at most 3/4 full. Run twice: with the default pair hash and
 * with one that makes nearly every pair collide. */
#define U 400
static uint64_t rs = 88172645463325252ULL;
static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)rs;
}
static bool st_present[U];
static int st_nstale;
static void name_val(int i, char *name, char *v)
{
    snprintf(name, 32, "metric_%d", i % 7);
    if (i % 3 == 0)
        snprintf(v, 64, "shared_value_%d", i % 5);
    else
        snprintf(v, 300, "unique_value_with_some_length_%d_%0*d", i,
                 (int)(i % 11 == 0 ? 150 + i % 100 : i % 40), 0);
}
static void on_stale_check(void *ud, const struct series_table *t, const struct series_entry *e)
{
    (void)ud;
    struct ss_buf out;
    ss_buf_init(&out, 0);
    struct ss_label l[4];
    uint32_t ends[4];
    long n = series_table_labels_split(t, e, &out, l, ends, 4);
    assert_int_equal(n, 3);
    char idv[16];
    snprintf(idv, sizeof idv, "%.*s", (int)l[0].value.len, l[0].value.p); /* id label */
    int i = atoi(idv);
    char name[32], v[300];
    name_val(i, name, v);
    assert_true(ss_str_eq_cstr(l[1].value, name));
    assert_true(ss_str_eq_cstr(l[2].value, v));
    st_nstale++;
    ss_buf_free(&out);
}
static size_t wire3(char *buf, int i)
{
    char name[32], v[300], id[16];
    name_val(i, name, v);
    snprintf(id, sizeof id, "%d", i);
    struct ss_label l[3] = {{SS_STR("__id"), {id, strlen(id)}},
                            {SS_STR("__name__"), {name, strlen(name)}},
                            {SS_STR("k"), {v, strlen(v)}}};
    ss_labels_wire_write((uint8_t *)buf, l, 3);
    return ss_labels_wire_size(l, 3);
}
static uint32_t weak_hash(const void *p, size_t len)
{
    (void)p;
    return (uint32_t)(len % 3);
}
static void test_random_sweeps(void **state)
{
    (void)state;
    for (int collide = 0; collide < 2; collide++) {
        memset(st_present, 0, sizeof st_present);
        struct series_table t;
        series_table_init(&t, 0);
        char w[512];
        if (collide)
            t.d->pair_hash = weak_hash;
        t.hash_drop_min = 8; /* the identity map comes and goes (series_table_settle) */
        for (int round = 0; round < 3000; round++) {
            series_table_begin(&t);
            int mode = rnd() % 4;
            int span = mode == 0 ? 5 : mode == 1 ? 40 : mode == 2 ? 120 : U;
            int base = rnd() % U;
            bool now[U] = {0};
            for (int j = 0; j < span; j++) {
                if (rnd() % 3 == 0)
                    continue;
                int i = (base + j) % U;
                if (now[i])
                    continue;
                now[i] = true;
                uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
                long k = series_table_find_raw(&t, raw);
                assert_int_equal(series_table_find_raw_next(&t, raw), k);
                if (k < 0) {
                    size_t len = wire3(w, i);
                    k = series_table_find(&t, (uint64_t)i * 31, w, len);
                    if (k < 0)
                        k = series_table_add(&t, (uint64_t)i * 31, w, len, 3);
                    assert_true(k >= 0);
                    series_table_link_raw(&t, (size_t)k, raw);
                }
                assert_int_equal(series_table_see(&t, (size_t)k, 1.0, 1000, true), 0);
            }
            bool ok = rnd() % 10 != 0;
            if (ok && rnd() % 2) { /* as the engine does before emitting */
                series_table_settle(&t);
                assert_true(t.live < 8 || (!t.by_hash && t.hash_off));
            }
            int expect_stale = 0;
            for (int i = 0; i < U; i++)
                if (st_present[i] && (!ok || !now[i]))
                    expect_stale++;
            st_nstale = 0;
            size_t ns = series_table_sweep(&t, ok, on_stale_check, NULL);
            assert_int_equal(ns, expect_stale);
            assert_int_equal(st_nstale, expect_stale);
            int live = 0;
            for (int i = 0; i < U; i++) {
                st_present[i] = ok && now[i];
                live += st_present[i];
            }
            assert_int_equal(t.live, live);
            for (int i = 0; i < U; i++) {
                uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
                long k = series_table_find_raw(&t, raw);
                size_t len = wire3(w, i);
                long k2 = series_table_find(&t, (uint64_t)i * 31, w, len);
                assert_int_equal(k >= 0, st_present[i]);
                assert_int_equal(k2, k);
                if (k < 0)
                    continue;
                struct ss_buf out;
                ss_buf_init(&out, 0);
                struct ss_label l[4];
                assert_int_equal(series_table_labels_split(&t, &t.e[k], &out, l, NULL, 4), 3);
                assert_int_equal(out.len, len);
                assert_memory_equal(out.data, w, len);
                ss_buf_free(&out);
            }
            assert_true(t.live * 4 <= t.mcap * 3 || t.mcap == 0);
        }
        series_table_free(&t);
    }
}

/* ---- review: randomized round trips ------------------------------------------- */

/* Tables on one dictionary (series_table_share), as a manager's targets are: the
 * same series in two tables hold their pairs once; a table freed, reset by a failed
 * scrape or swept gives back only its own references; pair bytes compacted in one
 * table's sweep read back right in every table. Random rounds over four tables (a
 * table is freed and made again now and then, as a target leaves and comes back),
 * with and without colliding pair hashes, against a model of what each holds. */
#define NTAB 4
static bool sh_present[NTAB][U];

static void check_table(struct series_table *t, const bool *present)
{
    char w[512];
    struct ss_buf out;
    ss_buf_init(&out, 0);
    int live = 0;
    for (int i = 0; i < U; i++) {
        uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
        long k = series_table_find_raw(t, raw);
        size_t len = wire3(w, i);
        assert_int_equal(series_table_find(t, (uint64_t)i * 31, w, len), k);
        assert_int_equal(k >= 0, present[i]);
        if (k < 0)
            continue;
        live++;
        struct ss_label l[4];
        assert_int_equal(series_table_labels_split(t, &t->e[k], &out, l, NULL, 4), 3);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, w, len);
        struct ss_str parts[4];
        size_t plen = 0, at = 0;
        assert_int_equal(series_table_labels_parts(t, &t->e[k], l, parts, 4, &plen), 3);
        assert_int_equal(plen, len);
        for (int j = 0; j < 3; j++) {
            assert_memory_equal(parts[j].p, w + at, parts[j].len);
            at += parts[j].len;
        }
    }
    assert_int_equal(t->live, live);
    ss_buf_free(&out);
}

static void test_shared_dict(void **state)
{
    (void)state;
    struct series_dict d;
    series_dict_init(&d, 0);
    struct series_table a, b;
    series_table_init(&a, 0);
    series_table_init(&b, 0);
    series_table_share(&a, &d);
    series_table_share(&b, &d);
    bool added;
    series_table_begin(&a);
    series_table_begin(&b);
    sample(&a, 1, 1, "m", "1", true, &added);
    sample(&a, 2, 2, "m", "2", true, &added);
    sample(&b, 1, 1, "m", "1", true, &added); /* the same series in another table */
    sample(&b, 3, 3, "n", "1", true, &added);
    series_table_sweep(&a, true, NULL, NULL);
    series_table_sweep(&b, true, NULL, NULL);
    assert_int_equal(d.plive, 4); /* __name__=m, k=1, k=2, __name__=n */
    assert_int_equal(a.own.plive, 0);
    /* a's m{k=2} goes: k=2 was only a's */
    series_table_begin(&a);
    sample(&a, 1, 1, "m", "1", true, &added);
    struct staled st = {0};
    assert_int_equal(series_table_sweep(&a, true, on_stale, &st), 1);
    assert_string_equal(st.names[0], "m/2");
    assert_int_equal(d.plive, 3);
    /* a failed scrape empties a, and b keeps everything */
    series_table_begin(&a);
    assert_int_equal(series_table_sweep(&a, false, on_stale, &st), 1);
    assert_int_equal(a.live, 0);
    assert_ptr_equal(a.d, &d);
    assert_int_equal(d.plive, 3);
    check_labels(&b, series_table_find_raw(&b, 1), "m", "1");
    check_labels(&b, series_table_find_raw(&b, 3), "n", "1");
    /* a back, then b leaves: a's pairs stay */
    series_table_begin(&a);
    long k = sample(&a, 2, 2, "m", "2", true, &added);
    assert_true(added);
    series_table_sweep(&a, true, NULL, NULL);
    series_table_free(&b);
    assert_int_equal(d.plive, 2); /* __name__=m, k=2 */
    check_labels(&a, k, "m", "2");
    series_table_free(&a);
    assert_int_equal(d.plive, 0);
    series_dict_free(&d);
}

/* A dictionary at its byte bound with removed pairs' bytes in it compacts instead of
 * refusing (before, only a sweep compacted, and only once the garbage outweighed the
 * live bytes: a target churning one value a scrape beside one holding most of a
 * shared dictionary was refused at every scrape); a pair that does not fit even then
 * is refused and counted, takes no reference, and leaves the others as they were. */
static void test_shared_dict_limit(void **state)
{
    (void)state;
    struct series_dict d;
    series_dict_init(&d, 1200);
    struct series_table a, b;
    series_table_init(&a, 0);
    series_table_init(&b, 0);
    series_table_share(&a, &d);
    series_table_share(&b, &d);
    char w[256], v[64];
    bool added;
    series_table_begin(&a);
    for (int i = 0; i < 20; i++) { /* about 700 of the 1200 bytes, live */
        snprintf(v, sizeof v, "held_value_number_%02d_xxxxxxxx", i);
        sample(&a, (uint64_t)i + 1, (uint64_t)i + 1, "held", v, true, &added);
    }
    series_table_sweep(&a, true, NULL, NULL);
    size_t held = d.bytes.len;
    assert_true(held > 600 && held < 800);
    for (int round = 0; round < 60; round++) { /* b churns one new value a scrape */
        series_table_begin(&b);
        snprintf(v, sizeof v, "churning_value_%03d_yyyyyyyyyyyy", round);
        size_t len = wire_of(w, sizeof w, "churn", v);
        assert_int_equal(series_table_find(&b, 1000 + (uint64_t)round, w, len), -1);
        long k = series_table_add(&b, 1000 + (uint64_t)round, w, len, 2);
        assert_true(k >= 0);
        series_table_see(&b, (size_t)k, 1.0, 1000, true);
        series_table_sweep(&b, true, NULL, NULL);
        assert_int_equal(b.live, 1);
        check_labels(&b, k, "churn", v);
    }
    assert_int_equal(d.refused, 0);
    /* more than fits: refused, counted, nothing taken */
    uint32_t plive = d.plive;
    series_table_begin(&b);
    char big[700];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t len = wire_of(w, sizeof w, "churn", "x");
    char wb[800];
    size_t blen = wire_of(wb, sizeof wb, "big", big);
    assert_int_equal(series_table_find(&b, 5, wb, blen), -1);
    assert_int_equal(series_table_add(&b, 5, wb, blen, 2), SS_ELIMIT);
    assert_int_equal(d.refused, 1);
    assert_int_equal(d.plive, plive);
    assert_int_equal(b.live, 1);
    (void)len;
    series_table_sweep(&b, false, NULL, NULL);
    for (int i = 0; i < 20; i++) {
        snprintf(v, sizeof v, "held_value_number_%02d_xxxxxxxx", i);
        check_labels(&a, series_table_find_raw(&a, (uint64_t)i + 1), "held", v);
    }
    series_table_free(&a);
    series_table_free(&b);
    assert_int_equal(d.plive, 0);
    series_dict_free(&d);
}

/* Below SERIES_HASH_DROP_MIN a table frees its identity map only after a scrape in
 * which no series missed the scrape cache, or one that began with the table empty:
 * built by the first scrape and gone after it, back with a new series, and kept by
 * one that keeps missing (the same series in a second form every scrape) instead of
 * being built every scrape. */
static void test_identity_map_idle(void **state)
{
    (void)state;
    struct series_table t;
    series_table_init(&t, 0);
    bool added;
    char v[16];
    for (int round = 0; round < 6; round++) {
        series_table_begin(&t);
        for (int i = 0; i < 100; i++) {
            snprintf(v, sizeof v, "%d", i);
            sample(&t, (uint64_t)i + 1, (uint64_t)i + 1, "m", v, true, &added);
            assert_int_equal(added, round == 0);
        }
        if (round >= 2) { /* new in round 2, then a hit */
            sample(&t, 500, 500, "m", "new", true, &added);
            assert_int_equal(added, round == 2);
        }
        if (round >= 4) { /* m{k="7"} again under another raw key: a miss, found by labels */
            long k = sample(&t, 9999, 8, "m", "7", true, &added);
            assert_false(added);
            assert_int_equal(k, series_table_find_raw(&t, 8));
        }
        series_table_settle(&t);
        bool kept = round == 2 || round >= 4; /* not after the first: it began empty */
        assert_int_equal(t.by_hash != NULL, kept);
        assert_int_equal(t.hash_off, !kept);
        series_table_sweep(&t, true, NULL, NULL);
        assert_int_equal(t.live, round >= 2 ? 101 : 100);
    }
    check_labels(&t, series_table_find_raw(&t, 500), "m", "new");
    series_table_free(&t);
}

static void test_shared_dict_random(void **state)
{
    (void)state;
    for (int collide = 0; collide < 2; collide++) {
        memset(sh_present, 0, sizeof sh_present);
        struct series_dict d;
        series_dict_init(&d, 0);
        if (collide)
            d.pair_hash = weak_hash;
        struct series_table t[NTAB];
        for (int x = 0; x < NTAB; x++) {
            series_table_init(&t[x], 0);
            series_table_share(&t[x], &d);
            t[x].hash_drop_min = 8;
        }
        char w[512];
        for (int round = 0; round < 2000; round++) {
            int x = (int)(rnd() % NTAB);
            if (rnd() % 50 == 0) { /* the target leaves and comes back */
                series_table_free(&t[x]);
                series_table_init(&t[x], 0);
                series_table_share(&t[x], &d);
                t[x].hash_drop_min = 8;
                memset(sh_present[x], 0, sizeof sh_present[x]);
            }
            series_table_begin(&t[x]);
            int span = rnd() % 2 ? 30 : U, base = (int)(rnd() % U);
            bool now[U] = {0};
            for (int j = 0; j < span; j++) {
                int i = (base + j) % U;
                if (rnd() % 3 == 0 || now[i])
                    continue;
                now[i] = true;
                uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
                long k = series_table_find_raw(&t[x], raw);
                assert_int_equal(series_table_find_raw_next(&t[x], raw), k);
                if (k < 0) {
                    size_t len = wire3(w, i);
                    k = series_table_find(&t[x], (uint64_t)i * 31, w, len);
                    if (k < 0)
                        k = series_table_add(&t[x], (uint64_t)i * 31, w, len, 3);
                    assert_true(k >= 0);
                    series_table_link_raw(&t[x], (size_t)k, raw);
                }
                assert_int_equal(series_table_see(&t[x], (size_t)k, 1.0, 1000, true), 0);
            }
            bool ok = rnd() % 8 != 0;
            if (ok)
                series_table_settle(&t[x]);
            int expect_stale = 0;
            for (int i = 0; i < U; i++)
                expect_stale += sh_present[x][i] && (!ok || !now[i]);
            st_nstale = 0;
            assert_int_equal(series_table_sweep(&t[x], ok, on_stale_check, NULL), expect_stale);
            assert_int_equal(st_nstale, expect_stale);
            for (int i = 0; i < U; i++)
                sh_present[x][i] = ok && now[i];
            if (round % 50 == 0 || round > 1990)
                for (int y = 0; y < NTAB; y++)
                    check_table(&t[y], sh_present[y]);
            else
                check_table(&t[x], sh_present[x]);
            /* the dictionary holds the pairs of the series some table holds, no more */
            bool any[U] = {0};
            for (int y = 0; y < NTAB; y++)
                for (int i = 0; i < U; i++)
                    any[i] |= sh_present[y][i];
            uint32_t refs = 0;
            for (uint32_t p = 0; p < d.pn; p++)
                refs += d.p[p].refs;
            uint32_t want = 0;
            for (int y = 0; y < NTAB; y++)
                want += 3 * t[y].live;
            assert_int_equal(refs, want);
            if (d.plive == 0)
                for (int i = 0; i < U; i++)
                    assert_false(any[i]);
        }
        for (int x = 0; x < NTAB; x++)
            series_table_free(&t[x]);
        assert_int_equal(d.plive, 0);
        series_dict_free(&d);
    }
}

static uint64_t rv_state = 0x0123456789ABCDEFULL;
static uint64_t rv64(void)
{
    rv_state ^= rv_state << 13;
    rv_state ^= rv_state >> 7;
    rv_state ^= rv_state << 17;
    return rv_state;
}

static double bits_to_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* A value of one of the shapes that matter to the encoding. */
static double random_value(void)
{
    static const uint64_t edges[] = {
        0x0000000000000000ULL, 0x8000000000000000ULL, /* +0, -0 */
        0x7ff0000000000002ULL, 0xfff0000000000002ULL, /* stale marker, negated */
        0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff0000000000001ULL, 0x7fffffffffffffffULL,
        0xffffffffffffffffULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL, /* NaNs, inf */
        0x0000000000000001ULL, 0x8000000000000001ULL, 0x000fffffffffffffULL, 0x0010000000000000ULL,
        0x4340000000000000ULL, 0xc340000000000000ULL, /* +-2^53 */
        0x433fffffffffffffULL, 0xc33fffffffffffffULL, /* +-(2^53-1) */
        0x4340000000000001ULL, 0xc340000000000001ULL, /* +-(2^53+2) */
        0x43e0000000000000ULL, 0xc3e0000000000000ULL, /* +-2^63 */
        0x43dfffffffffffffULL, 0xc3dfffffffffffffULL, /* just under 2^63 */
        0x43f0000000000000ULL,                        /* 2^64 */
    };
    switch (rv64() % 6) {
    case 0: return bits_to_d(rv64()); /* any pattern */
    case 1: return bits_to_d(edges[rv64() % (sizeof edges / sizeof edges[0])]);
    case 2: { /* an integer of any magnitude up to 2^54 */
        int bitsn = (int)(rv64() % 55);
        int64_t m = bitsn ? (int64_t)(rv64() >> (64 - bitsn)) : 0;
        return rv64() & 1 ? -(double)m : (double)m;
    }
    case 3: return (double)(int64_t)(rv64() % 200) - 100; /* small ints */
    case 4: {                                             /* NaN with a random payload, either sign */
        uint64_t b =
            0x7ff0000000000000ULL | (rv64() & 0x000fffffffffffffULL) | (rv64() & 0x8000000000000000ULL);
        if (!(b & 0x000fffffffffffffULL))
            b |= 1;
        return bits_to_d(b);
    }
    default: /* near an integer */ return (double)(int64_t)(rv64() % 100000) + (rv64() & 1 ? 0.5 : 1e-9);
    }
}

/* Random 64-bit patterns and shapes, random index sequences (runs of the next, jumps
 * both ways, index 0 first or anywhere, indexes needing 1-4 varint bytes) and random
 * own timestamps: every sample comes back exactly, each in at most 13 bytes. The
 * entries are bare (only `seen` and flags are touched by see/sample). */
static void test_review_random_round_trip(void **state)
{
    (void)state;
    const uint32_t N = (1u << 21) + 4096; /* indexes up to 4 varint bytes */
    struct series_table t;
    series_table_init(&t, 0);
    t.e = calloc(N, sizeof *t.e);
    assert_non_null(t.e);
    t.n = t.cap = N;
    uint8_t *used = calloc(N, 1);
    const uint32_t MAXS = 20000;
    uint32_t *idx = malloc(MAXS * sizeof *idx);
    uint64_t *vb = malloc(MAXS * sizeof *vb);
    int64_t *tss = malloc(MAXS * sizeof *tss);
    assert_true(used && idx && vb && tss);
    for (int round = 0; round < 300; round++) {
        series_table_begin(&t);
        memset(used, 0, N);
        uint32_t ns = (uint32_t)(rv64() % (round < 20 ? 5 : MAXS)) + 1;
        uint32_t cur = rv64() % 3 == 0 ? 0 : (uint32_t)(rv64() % N);
        int64_t ts0 = 1000 + (int64_t)(rv64() % 3);
        uint32_t k = 0;
        while (k < ns) {
            uint32_t r = (uint32_t)(rv64() % 16);
            if (r < 10 && cur + 1 < N)
                cur = cur + 1; /* the next */
            else if (r == 10)
                cur = 0;
            else if (r == 11)
                cur = cur > 5 ? cur - (uint32_t)(rv64() % 5) - 1 : cur + 2; /* back a little */
            else if (r == 12)
                cur = (uint32_t)(rv64() % 128);
            else if (r == 13)
                cur = N - 1 - (uint32_t)(rv64() % 64);
            else
                cur = (uint32_t)(rv64() % N);
            if (k == 0 && rv64() % 4 == 0)
                cur = rv64() & 1 ? 0 : 1;
            if (cur >= N || used[cur])
                continue;
            used[cur] = 1;
            double v = random_value();
            int64_t ts = rv64() % 5 == 0 ? (int64_t)rv64() : ts0;
            idx[k] = cur;
            memcpy(&vb[k], &v, sizeof v);
            tss[k] = ts;
            assert_int_equal(series_table_see(&t, cur, v, ts, true), 0);
            assert_true(t.olen <= t.ocap);
            k++;
        }
        assert_int_equal(t.norder, ns);
        struct series_cursor c = {0};
        for (uint32_t j = 0; j < ns; j++) {
            double v;
            int64_t ts;
            size_t before = c.pos;
            uint32_t e = series_table_sample(&t, &c, &v, &ts);
            uint64_t b;
            memcpy(&b, &v, sizeof b);
            if (e != idx[j] || b != vb[j] || ts != tss[j])
                fail_msg("round %d sample %u: index %u/%u value %016llx/%016llx ts %lld/%lld", round, j, e,
                         idx[j], (unsigned long long)b, (unsigned long long)vb[j], (long long)ts,
                         (long long)tss[j]);
            assert_true(c.pos - before <= 13);
        }
        assert_int_equal(c.pos, t.olen);
        assert_int_equal(c.tsk, t.nts);
    }
    free(used);
    free(idx);
    free(vb);
    free(tss);
    series_table_free(&t);
}

/* The engine's order of calls over many scrapes of a churning table whose identity
 * map comes and goes, without lookups by labels in between that would bring the map
 * back (the next scrape starts with it off): scrape-cache hits, misses, adds, reload
 * (clear_raw), settle, then the samples read back with their entries' labels (after
 * settle's shrink), then the sweep; now and then everything is checked by labels. */
static void test_review_settle_churn(void **state)
{
    (void)state;
    enum { UU = 3000 };
    static bool present[UU];
    static long where[UU];
    static uint32_t sidx[UU];
    static uint64_t sval[UU];
    static int sser[UU];
    memset(present, 0, sizeof present);
    struct series_table t;
    series_table_init(&t, 0);
    t.hash_drop_min = 16;
    char w[512], v[16];
    for (int round = 0; round < 400; round++) {
        series_table_begin(&t);
        if (rv64() % 25 == 0)
            series_table_clear_raw(&t);
        int mode = (int)(rv64() % 4);
        int span = mode == 0 ? 10 : mode == 1 ? 300 : mode == 2 ? 1500 : UU;
        int base = (int)(rv64() % UU);
        bool now[UU] = {0};
        uint32_t ns = 0;
        for (int j = 0; j < span; j++) {
            if (rv64() % 7 == 0)
                continue;
            int i = (base + j) % UU;
            if (now[i])
                continue;
            now[i] = true;
            uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
            long k = series_table_find_raw(&t, raw);
            if (k < 0) {
                snprintf(v, sizeof v, "%d", i);
                size_t len = wire_of(w, sizeof w, "c", v);
                k = series_table_find(&t, (uint64_t)i * 31, w, len);
                assert_int_equal(k >= 0, present[i]);
                if (k < 0)
                    k = series_table_add(&t, (uint64_t)i * 31, w, len, 2);
                assert_true(k >= 0);
                series_table_link_raw(&t, (size_t)k, raw);
            } else {
                assert_true(present[i]);
            }
            double val = random_value();
            assert_int_equal(series_table_see(&t, (size_t)k, val, 1000, true), 0);
            sidx[ns] = (uint32_t)k;
            memcpy(&sval[ns], &val, sizeof val);
            sser[ns++] = i;
        }
        bool ok = rv64() % 10 != 0;
        if (ok) {
            series_table_settle(&t);
            if (t.live >= 16)
                assert_true(t.hash_off && !t.by_hash);
            struct series_cursor c = {0};
            for (uint32_t j = 0; j < t.norder; j++) {
                double val;
                int64_t ts;
                uint32_t e = series_table_sample(&t, &c, &val, &ts);
                assert_int_equal(e, sidx[j]);
                assert_memory_equal(&val, &sval[j], sizeof val);
                snprintf(v, sizeof v, "%d", sser[j]);
                check_labels(&t, (long)e, "c", v);
            }
            assert_int_equal(c.pos, t.olen);
        }
        series_table_sweep(&t, ok, NULL, NULL);
        for (int i = 0; i < UU; i++)
            present[i] = ok && now[i];
        if (round % 37 == 36) { /* by labels (brings the map back) */
            for (int i = 0; i < UU; i++) {
                snprintf(v, sizeof v, "%d", i);
                size_t len = wire_of(w, sizeof w, "c", v);
                where[i] = series_table_find(&t, (uint64_t)i * 31, w, len);
                assert_int_equal(where[i] >= 0, present[i]);
                if (where[i] >= 0)
                    check_labels(&t, where[i], "c", v);
            }
        }
    }
    series_table_free(&t);
}

/* The dropped-series set: what was added is found, keys a successful scrape did not
 * see go at its end and the others stay (over hundreds of generations, past the
 * generation byte's wrap), it grows and shrinks with what it holds, and clear empties
 * it. Checked against a plain array of what should be in it. */
static void test_drop_set(void **state)
{
    (void)state;
    struct drop_set ds = {0};
    assert_false(drop_set_has(&ds, 42));
    enum { K = 5000 };
    static uint64_t keys[K];
    static bool in[K];
    uint64_t x = 0x243F6A8885A308D3ULL;
    bool marked_all = false;
    for (int i = 0; i < K; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        keys[i] = x | 1; /* never 0 */
    }
    for (int round = 0; round < 600; round++) {
        /* a scrape: every key in the set is seen with probability 7/8 (all of them in
         * the first rounds), and some new ones are added */
        int lo = round < 300 ? 0 : K / 2, n_add = round < 20 ? 250 : 7;
        for (int i = 0; i < K; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            bool look = in[i] && (round < 5 || (x >> 40) % 8 != 0);
            if (look)
                assert_true(drop_set_has(&ds, keys[i]));
            else if (in[i] && !marked_all)
                in[i] = false; /* not seen: goes at the sweep */
        }
        for (int a = 0; a < n_add; a++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            int i = lo + (int)((x >> 33) % (uint64_t)(K - lo));
            if (!in[i] && !drop_set_has(&ds, keys[i])) {
                assert_int_equal(drop_set_add(&ds, keys[i]), 0);
                in[i] = true;
            } else if (!in[i]) { /* still there from before, seen now */
                in[i] = true;
            }
        }
        drop_set_sweep(&ds);
        uint32_t want = 0;
        for (int i = 0; i < K; i++)
            want += in[i];
        assert_int_equal(ds.n, want);
        assert_true(ds.n == 0 || (uint64_t)ds.n * 4 <= (uint64_t)ds.cap * 3);
        marked_all = round % 50 == 49;
        if (marked_all) /* a look at every key marks those in the set seen in the next scrape */
            for (int i = 0; i < K; i++)
                assert_int_equal(drop_set_has(&ds, keys[i]), in[i]);
    }
    assert_true(ds.cap <= 1024); /* it shrank with what it holds (a few hundred at the end) */
    drop_set_clear(&ds);
    assert_int_equal(ds.n, 0);
    assert_false(drop_set_has(&ds, keys[0]));
    assert_int_equal(drop_set_add(&ds, keys[0]), 0);
    assert_true(drop_set_has(&ds, keys[0]));
    drop_set_clear(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_staleness_and_added),
        cmocka_unit_test(test_hint_kept),
        cmocka_unit_test(test_forced_hash_collisions),
        cmocka_unit_test(test_relabel_reload_same_raw),
        cmocka_unit_test(test_churn_compacts),
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_pairs_shared_and_counted),
        cmocka_unit_test(test_pair_hash_collisions),
        cmocka_unit_test(test_shared_dict),
        cmocka_unit_test(test_shared_dict_random),
        cmocka_unit_test(test_shared_dict_limit),
        cmocka_unit_test(test_identity_map_idle),
        cmocka_unit_test(test_labels_split),
        cmocka_unit_test(test_generation_byte_wraps),
        cmocka_unit_test(test_maps_settle),
        cmocka_unit_test(test_samples_read_back),
        cmocka_unit_test(test_samples_values_exact),
        cmocka_unit_test(test_identity_map_comes_back),
        cmocka_unit_test(test_random_sweeps),
        cmocka_unit_test(test_review_random_round_trip),
        cmocka_unit_test(test_review_settle_churn),
        cmocka_unit_test(test_drop_set),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ss_buf_free(&labels_buf);
    return rc;
}
