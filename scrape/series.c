/* series.c: per-target series state: what one scrape produced, packed compactly.
 *
 * A generation holds the series of one scrape as packed records in one buffer
 * (header + label bytes, no pointers), plus an open-addressing table from the 64-bit
 * label hash to the record. A target keeps two generations: the scrape in progress
 * (staging, rolled back on failure as Prometheus rolls back its appender) and the
 * last committed one, which is what staleness needs: a series in the previous
 * generation but not in the current one gets a stale marker. A second table maps the
 * series as exposed to its record: the scrape cache.
 *
 * Equal 64-bit hashes are treated as the same series, as Prometheus' scrape cache
 * does; with a well-mixed hash over sorted labels a collision inside one target is
 * negligible. */
#include <stdlib.h>
#include <string.h>

#include "series.h"

/* ---- u64map ---------------------------------------------------------------------- */

static uint64_t fix_key(uint64_t k)
{
    return k ? k : 1;
}

static int map_grow(struct u64map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    uint64_t *nk = calloc(ncap, sizeof *nk);
    uint32_t *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = m->keys[i] & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

/* Insert key -> val unless the key is there already (the first one wins). */
static int map_put(struct u64map *m, uint64_t key, uint32_t val)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m))
        return SS_ENOMEM;
    key = fix_key(key);
    size_t j = key & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == key)
            return 0;
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->n++;
    return 0;
}

static long map_get(const struct u64map *m, uint64_t key)
{
    if (!m->cap)
        return -1;
    key = fix_key(key);
    size_t j = key & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == key)
            return (long)m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

/* Empty the map; give back a table a one-off huge scrape blew up, so memory follows
 * the steady state (`live` entries) rather than the peak. */
static void map_clear(struct u64map *m, size_t live)
{
    if (m->n) {
        memset(m->keys, 0, m->cap * sizeof m->keys[0]);
        m->n = 0;
    }
    if (m->cap > 1024 && m->cap > 8 * live) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        m->cap = 0;
    }
}

static void map_free(struct u64map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- generations ------------------------------------------------------------------- */

void series_gen_init(struct series_gen *g, size_t max_bytes)
{
    memset(g, 0, sizeof *g);
    ss_buf_init(&g->recs, max_bytes);
}

void series_gen_free(struct series_gen *g)
{
    ss_buf_free(&g->recs);
    free(g->offs);
    map_free(&g->by_hash);
    map_free(&g->by_raw);
    series_gen_init(g, 0);
}

void series_gen_reset(struct series_gen *g)
{
    ss_buf_reset(&g->recs);
    g->n = 0;
    map_clear(&g->by_hash, g->n_last);
    map_clear(&g->by_raw, g->n_last);
}

long series_gen_find(const struct series_gen *g, uint64_t hash)
{
    return map_get(&g->by_hash, hash);
}

int series_gen_index_raw(struct series_gen *g, uint64_t raw, size_t rec)
{
    return map_put(&g->by_raw, raw, (uint32_t)rec);
}

long series_gen_find_raw(const struct series_gen *g, uint64_t raw)
{
    return map_get(&g->by_raw, raw);
}

void series_gen_clear_raw(struct series_gen *g)
{
    map_clear(&g->by_raw, g->n_last);
}

/* Room for one more record of `need` bytes; returns its offset through *off. */
static int reserve_record(struct series_gen *g, size_t need, size_t *off)
{
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        uint32_t *no = realloc(g->offs, ncap * sizeof *no);
        if (!no)
            return SS_ENOMEM;
        g->offs = no;
        g->cap = ncap;
    }
    if (g->recs.len + need > UINT32_MAX)
        return SS_ELIMIT;
    int rc = ss_buf_reserve(&g->recs, need);
    if (rc)
        return rc;
    *off = g->recs.len;
    return 0;
}

/* The record at `off` (need bytes) is written: account for it and index it. */
static int commit_record(struct series_gen *g, size_t off, size_t need, uint64_t hash, bool index)
{
    if (index && map_put(&g->by_hash, hash, (uint32_t)g->n))
        return SS_ENOMEM;
    g->recs.len += need;
    g->recs.data[g->recs.len] = '\0';
    g->offs[g->n++] = (uint32_t)off;
    g->n_last = g->n;
    return 0;
}

int series_gen_append(struct series_gen *g, const struct ss_label *labels, size_t nlabels, uint64_t hash,
                      double value, int64_t ts, bool tracked, bool index)
{
    size_t need = sizeof(struct series_rec);
    for (size_t i = 0; i < nlabels; i++)
        need += 6 + labels[i].name.len + labels[i].value.len;
    need = (need + 7) & ~(size_t)7; /* every record header starts 8-byte aligned */
    size_t off;
    int rc = reserve_record(g, need, &off);
    if (rc)
        return rc;
    char *p = g->recs.data + off;
    struct series_rec h = {.hash = hash,
                           .value = value,
                           .ts = ts,
                           .len = (uint32_t)need,
                           .nlabels = (uint16_t)nlabels,
                           .tracked = tracked};
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (size_t i = 0; i < nlabels; i++) {
        uint16_t nl = (uint16_t)labels[i].name.len;
        uint32_t vl = (uint32_t)labels[i].value.len;
        memcpy(p, &nl, 2);
        memcpy(p + 2, &vl, 4);
        memcpy(p + 6, labels[i].name.p, nl);
        memcpy(p + 6 + nl, labels[i].value.p, vl);
        p += 6 + nl + vl;
    }
    return commit_record(g, off, need, hash, index);
}

int series_gen_copy(struct series_gen *g, const struct series_gen *from, size_t i, double value, int64_t ts,
                    bool tracked)
{
    const char *src = from->recs.data + from->offs[i];
    struct series_rec h;
    memcpy(&h, src, sizeof h);
    size_t off;
    int rc = reserve_record(g, h.len, &off);
    if (rc)
        return rc;
    memcpy(g->recs.data + off, src, h.len);
    h.value = value;
    h.ts = ts;
    h.tracked = tracked;
    memcpy(g->recs.data + off, &h, sizeof h);
    return commit_record(g, off, h.len, h.hash, true);
}

const struct series_rec *series_gen_get(const struct series_gen *g, size_t i, struct ss_label *labels,
                                        size_t cap, size_t *nlabels)
{
    const char *p = g->recs.data + g->offs[i];
    const struct series_rec *h = (const struct series_rec *)(const void *)p;
    p += sizeof *h;
    size_t n = 0;
    for (size_t k = 0; k < h->nlabels; k++) {
        uint16_t nl;
        uint32_t vl;
        memcpy(&nl, p, 2);
        memcpy(&vl, p + 2, 4);
        if (n < cap) {
            labels[n].name = (struct ss_str){p + 6, nl};
            labels[n].value = (struct ss_str){p + 6 + nl, vl};
            n++;
        }
        p += 6 + nl + vl;
    }
    *nlabels = n;
    return h;
}
