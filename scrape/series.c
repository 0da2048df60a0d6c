/* series.c: per-target series state: what one scrape produced, packed compactly.
 *
 * A generation holds the series of one scrape as packed records in one buffer
 * (header + label bytes, no pointers), plus an open-addressing table from the 64-bit
 * label hash to the record. A target keeps two generations: the scrape in progress
 * (staging, rolled back on failure as Prometheus rolls back its appender) and the
 * last committed one, which is what staleness needs: a series in the previous
 * generation but not in the current one gets a stale marker.
 *
 * Equal 64-bit hashes are treated as the same series, as Prometheus' scrape cache
 * does; with FNV-1a over sorted labels a collision inside one target is negligible. */
#include <stdlib.h>
#include <string.h>

#include "series.h"

void series_gen_init(struct series_gen *g, size_t max_bytes)
{
    ss_buf_init(&g->recs, max_bytes);
    g->offs = NULL;
    g->n = g->cap = 0;
    g->keys = NULL;
    g->vals = NULL;
    g->tcap = 0;
    g->tn = 0;
    g->rkeys = NULL;
    g->rvals = NULL;
    g->rcap = g->rn = 0;
}

void series_gen_free(struct series_gen *g)
{
    ss_buf_free(&g->recs);
    free(g->offs);
    free(g->keys);
    free(g->vals);
    free(g->rkeys);
    free(g->rvals);
    series_gen_init(g, 0);
}

void series_gen_reset(struct series_gen *g)
{
    ss_buf_reset(&g->recs);
    g->n = 0;
    if (g->tn) {
        memset(g->keys, 0, g->tcap * sizeof g->keys[0]);
        g->tn = 0;
    }
    series_gen_clear_raw(g);
    /* Shrink a table that a one-off huge scrape blew up, so memory follows the
     * steady state rather than the peak. */
    if (g->tcap > 1024 && g->tcap > 8 * g->n_last) {
        free(g->keys);
        free(g->vals);
        g->keys = NULL;
        g->vals = NULL;
        g->tcap = 0;
    }
}

static uint64_t fix_hash(uint64_t h) { return h ? h : 1; }

static int table_grow(struct series_gen *g)
{
    size_t ncap = g->tcap ? g->tcap * 2 : 256;
    uint64_t *nk = calloc(ncap, sizeof *nk);
    uint32_t *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < g->tcap; i++) {
        if (!g->keys[i])
            continue;
        size_t j = g->keys[i] & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = g->keys[i];
        nv[j] = g->vals[i];
    }
    free(g->keys);
    free(g->vals);
    g->keys = nk;
    g->vals = nv;
    g->tcap = ncap;
    return 0;
}

long series_gen_find(const struct series_gen *g, uint64_t hash)
{
    if (!g->tcap)
        return -1;
    hash = fix_hash(hash);
    size_t j = hash & (g->tcap - 1);
    while (g->keys[j]) {
        if (g->keys[j] == hash)
            return (long)g->vals[j];
        j = (j + 1) & (g->tcap - 1);
    }
    return -1;
}

int series_gen_append(struct series_gen *g, const struct ss_label *labels, size_t nlabels,
                      uint64_t hash, double value, int64_t ts, bool tracked, bool index)
{
    if (index && (g->tn + 1) * 2 > g->tcap) {
        int rc = table_grow(g);
        if (rc)
            return rc;
    }
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        uint32_t *no = realloc(g->offs, ncap * sizeof *no);
        if (!no)
            return SS_ENOMEM;
        g->offs = no;
        g->cap = ncap;
    }
    size_t need = sizeof(struct series_rec);
    for (size_t i = 0; i < nlabels; i++)
        need += 6 + labels[i].name.len + labels[i].value.len;
    need = (need + 7) & ~(size_t)7; /* every record header starts 8-byte aligned */
    if (g->recs.len + need > UINT32_MAX)
        return SS_ELIMIT;
    int rc = ss_buf_reserve(&g->recs, need);
    if (rc)
        return rc;
    size_t off = g->recs.len;
    char *p = g->recs.data + off;
    struct series_rec h = {.hash = hash, .value = value, .ts = ts, .len = (uint32_t)need,
                           .nlabels = (uint16_t)nlabels, .tracked = tracked};
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
    g->recs.len += need;
    g->recs.data[g->recs.len] = '\0';
    g->offs[g->n] = (uint32_t)off;
    if (index) {
        uint64_t k = fix_hash(hash);
        size_t j = k & (g->tcap - 1);
        while (g->keys[j])
            j = (j + 1) & (g->tcap - 1);
        g->keys[j] = k;
        g->vals[j] = (uint32_t)g->n;
        g->tn++;
    }
    g->n++;
    g->n_last = g->n;
    return 0;
}

const struct series_rec *series_gen_get(const struct series_gen *g, size_t i,
                                        struct ss_label *labels, size_t cap, size_t *nlabels)
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

/* ---- the scrape cache index ------------------------------------------------- */

static int raw_grow(struct series_gen *g)
{
    size_t ncap = g->rcap ? g->rcap * 2 : 256;
    uint64_t *nk = calloc(ncap, sizeof *nk);
    uint32_t *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < g->rcap; i++) {
        if (!g->rkeys[i])
            continue;
        size_t j = g->rkeys[i] & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = g->rkeys[i];
        nv[j] = g->rvals[i];
    }
    free(g->rkeys);
    free(g->rvals);
    g->rkeys = nk;
    g->rvals = nv;
    g->rcap = ncap;
    return 0;
}

int series_gen_index_raw(struct series_gen *g, uint64_t raw, size_t rec)
{
    if ((g->rn + 1) * 2 > g->rcap && raw_grow(g))
        return SS_ENOMEM;
    raw = fix_hash(raw);
    size_t j = raw & (g->rcap - 1);
    while (g->rkeys[j]) {
        if (g->rkeys[j] == raw)
            return 0; /* first one wins, like the series table */
        j = (j + 1) & (g->rcap - 1);
    }
    g->rkeys[j] = raw;
    g->rvals[j] = (uint32_t)rec;
    g->rn++;
    return 0;
}

long series_gen_find_raw(const struct series_gen *g, uint64_t raw)
{
    if (!g->rcap)
        return -1;
    raw = fix_hash(raw);
    size_t j = raw & (g->rcap - 1);
    while (g->rkeys[j]) {
        if (g->rkeys[j] == raw)
            return (long)g->rvals[j];
        j = (j + 1) & (g->rcap - 1);
    }
    return -1;
}

void series_gen_clear_raw(struct series_gen *g)
{
    if (g->rn) {
        memset(g->rkeys, 0, g->rcap * sizeof g->rkeys[0]);
        g->rn = 0;
    }
    if (g->rcap > 1024 && g->rcap > 8 * g->n_last) {
        free(g->rkeys);
        free(g->rvals);
        g->rkeys = NULL;
        g->rvals = NULL;
        g->rcap = 0;
    }
}

int series_gen_copy(struct series_gen *g, const struct series_gen *from, size_t i, double value, int64_t ts,
                    bool tracked)
{
    const char *src = from->recs.data + from->offs[i];
    struct series_rec h;
    memcpy(&h, src, sizeof h);
    if ((g->tn + 1) * 2 > g->tcap) {
        int rc = table_grow(g);
        if (rc)
            return rc;
    }
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        uint32_t *no = realloc(g->offs, ncap * sizeof *no);
        if (!no)
            return SS_ENOMEM;
        g->offs = no;
        g->cap = ncap;
    }
    if (g->recs.len + h.len > UINT32_MAX)
        return SS_ELIMIT;
    int rc = ss_buf_reserve(&g->recs, h.len);
    if (rc)
        return rc;
    size_t off = g->recs.len;
    memcpy(g->recs.data + off, src, h.len);
    h.value = value;
    h.ts = ts;
    h.tracked = tracked;
    memcpy(g->recs.data + off, &h, sizeof h);
    g->recs.len += h.len;
    g->recs.data[g->recs.len] = '\0';
    g->offs[g->n] = (uint32_t)off;
    uint64_t k = fix_hash(h.hash);
    size_t j = k & (g->tcap - 1);
    while (g->keys[j])
        j = (j + 1) & (g->tcap - 1);
    g->keys[j] = k;
    g->vals[j] = (uint32_t)g->n;
    g->tn++;
    g->n++;
    g->n_last = g->n;
    return 0;
}
