/* series.c: the series table of one target (see series.h for the model).
 *
 * Entries live in one array (removed ones go on a free list and are reused), label
 * bytes in one buffer, and both indexes are open-addressing tables of entry numbers
 * with linear probing, so a slot costs 4 bytes and the key is read from the entry.
 * Removal shifts the following slots back (no tombstones), so a table under churn
 * does not fill up with dead slots. When removed entries have left more garbage in
 * the byte buffer than there are live bytes, or most of the array is free, the table
 * is compacted in place of growing: memory follows the live series, not the peak.
 *
 * The scrape cache key is a 64-bit hash of the exposed text; two different lines of
 * one target that hash alike would be taken for the same series (about 1 in 10^9 for
 * 100k series in one target). The identity index compares the label bytes, so equal
 * label hashes never merge two series. */
#include <stdlib.h>
#include <string.h>

#include "series.h"

#define MIN_SLOTS 256u

static inline size_t slot_home(uint64_t key, size_t mcap)
{
    /* Fibonacci hashing: spreads keys whose low bits repeat */
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 29) & (mcap - 1);
}

static inline uint64_t key_of(const struct series_table *t, uint32_t slot, bool raw)
{
    const struct series_entry *e = &t->e[slot - 1];
    return raw ? e->raw : e->hash;
}

static void map_insert(uint32_t *slots, size_t mcap, uint64_t key, uint32_t idx)
{
    size_t j = slot_home(key, mcap);
    while (slots[j])
        j = (j + 1) & (mcap - 1);
    slots[j] = idx + 1;
}

/* Remove entry idx (whose key is `key`) from the map: shift back every following
 * slot of the run that may move into the hole. */
static void map_delete(struct series_table *t, uint32_t *slots, uint64_t key, uint32_t idx, bool raw)
{
    size_t mask = t->mcap - 1, i = slot_home(key, t->mcap);
    while (slots[i] != idx + 1) {
        if (!slots[i])
            return; /* not indexed */
        i = (i + 1) & mask;
    }
    for (;;) {
        slots[i] = 0;
        size_t k = i;
        for (;;) {
            k = (k + 1) & mask;
            if (!slots[k])
                return;
            size_t home = slot_home(key_of(t, slots[k], raw), t->mcap);
            /* the slot at k stays when its home lies cyclically in (i, k] */
            bool stays = i <= k ? (i < home && home <= k) : (i < home || home <= k);
            if (!stays)
                break;
        }
        slots[i] = slots[k];
        i = k;
    }
}

/* Both maps at mcap slots, from the live entries. */
static int rebuild_maps(struct series_table *t, size_t mcap)
{
    uint32_t *h = calloc(mcap, sizeof *h), *r = calloc(mcap, sizeof *r);
    if (!h || !r) {
        free(h);
        free(r);
        return SS_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const struct series_entry *e = &t->e[i];
        if (e->flags & SERIES_FREE)
            continue;
        map_insert(h, mcap, e->hash, i);
        if (e->raw)
            map_insert(r, mcap, e->raw, i);
    }
    free(t->by_hash);
    free(t->by_raw);
    t->by_hash = h;
    t->by_raw = r;
    t->mcap = mcap;
    return 0;
}

static size_t slots_for(size_t live)
{
    size_t m = MIN_SLOTS;
    while (m < 2 * live)
        m *= 2;
    return m;
}

void series_table_init(struct series_table *t, size_t max_bytes)
{
    memset(t, 0, sizeof *t);
    ss_buf_init(&t->bytes, max_bytes);
}

void series_table_free(struct series_table *t)
{
    free(t->e);
    free(t->by_hash);
    free(t->by_raw);
    free(t->order);
    ss_buf_free(&t->bytes);
    memset(t, 0, sizeof *t);
}

void series_table_reset(struct series_table *t)
{
    size_t max = t->bytes.max;
    uint32_t gen = t->gen;
    series_table_free(t);
    series_table_init(t, max);
    t->gen = gen;
}

void series_table_begin(struct series_table *t)
{
    t->gen++;
    if (!t->gen) /* after 2^32 scrapes: 0 means "never seen" */
        t->gen = 1;
    t->norder = 0;
}

long series_table_find_raw(const struct series_table *t, uint64_t raw)
{
    if (!t->mcap)
        return -1;
    size_t mask = t->mcap - 1;
    for (size_t j = slot_home(raw, t->mcap);; j = (j + 1) & mask) {
        uint32_t s = t->by_raw[j];
        if (!s)
            return -1;
        if (t->e[s - 1].raw == raw)
            return (long)s - 1;
    }
}

long series_table_find(const struct series_table *t, uint64_t hash, const void *wire, size_t len)
{
    if (!t->mcap)
        return -1;
    size_t mask = t->mcap - 1;
    for (size_t j = slot_home(hash, t->mcap);; j = (j + 1) & mask) {
        uint32_t s = t->by_hash[j];
        if (!s)
            return -1;
        const struct series_entry *e = &t->e[s - 1];
        if (e->hash == hash && e->len == len && !memcmp(t->bytes.data + e->off, wire, len))
            return (long)s - 1;
    }
}

/* Room for one more entry: a free slot, or a bigger array (order grows with it). */
static int reserve_entry(struct series_table *t)
{
    if ((size_t)(t->live + 1) * 2 > t->mcap) {
        int rc = rebuild_maps(t, slots_for(t->live + 1));
        if (rc)
            return rc;
    }
    if (t->free_head || t->n < t->cap)
        return 0;
    if (t->cap >= UINT32_MAX / 2)
        return SS_ELIMIT;
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    struct series_entry *ne = realloc(t->e, ncap * sizeof *ne);
    if (!ne)
        return SS_ENOMEM;
    t->e = ne;
    uint32_t *no = realloc(t->order, ncap * sizeof *no);
    if (!no)
        return SS_ENOMEM;
    t->order = no;
    t->cap = ncap;
    return 0;
}

long series_table_add(struct series_table *t, uint64_t hash, const void *wire, size_t len, size_t nlabels)
{
    if (nlabels > UINT16_MAX || len > UINT32_MAX)
        return SS_ELIMIT;
    int rc = reserve_entry(t);
    if (!rc)
        rc = ss_buf_append(&t->bytes, wire, len);
    if (rc)
        return rc;
    uint32_t i;
    if (t->free_head) {
        i = t->free_head - 1;
        t->free_head = t->e[i].off;
    } else {
        i = t->n++;
    }
    t->e[i] = (struct series_entry){.hash = hash,
                                    .off = (uint32_t)(t->bytes.len - len),
                                    .len = (uint32_t)len,
                                    .nlabels = (uint16_t)nlabels};
    t->live++;
    map_insert(t->by_hash, t->mcap, hash, i);
    return i;
}

int series_table_link_raw(struct series_table *t, size_t i, uint64_t raw)
{
    if (!raw || t->e[i].raw || series_table_find_raw(t, raw) >= 0)
        return 0;
    t->e[i].raw = raw;
    map_insert(t->by_raw, t->mcap, raw, (uint32_t)i);
    return 0;
}

void series_table_clear_raw(struct series_table *t)
{
    if (t->mcap)
        memset(t->by_raw, 0, t->mcap * sizeof t->by_raw[0]);
    for (uint32_t i = 0; i < t->n; i++)
        t->e[i].raw = 0;
}

static void remove_entry(struct series_table *t, uint32_t i)
{
    struct series_entry *e = &t->e[i];
    map_delete(t, t->by_hash, e->hash, i, false);
    if (e->raw)
        map_delete(t, t->by_raw, e->raw, i, true);
    t->garbage += e->len;
    e->flags = SERIES_FREE;
    e->raw = 0;
    e->seen = 0;
    e->off = t->free_head;
    t->free_head = i + 1;
    t->live--;
}

/* Move the live entries to the front (keeping their order), their label bytes into a
 * fresh buffer, and rebuild the maps. On allocation failure the table stays as it
 * was: compaction is an optimisation. */
static void compact(struct series_table *t)
{
    uint32_t ncap = 64;
    while (ncap < t->live)
        ncap *= 2;
    struct ss_buf nb;
    ss_buf_init(&nb, t->bytes.max);
    size_t need = t->bytes.len - t->garbage;
    struct series_entry *ne = malloc(ncap * sizeof *ne);
    uint32_t *no = malloc(ncap * sizeof *no);
    if (!ne || !no || (need && ss_buf_reserve(&nb, need))) {
        free(ne);
        free(no);
        ss_buf_free(&nb);
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        struct series_entry e = t->e[i];
        if (e.flags & SERIES_FREE)
            continue;
        if (e.len)
            memcpy(nb.data + nb.len, t->bytes.data + e.off, e.len);
        e.off = (uint32_t)nb.len;
        nb.len += e.len;
        ne[k++] = e;
    }
    if (nb.data)
        nb.data[nb.len] = '\0';
    free(t->e);
    free(t->order);
    ss_buf_free(&t->bytes);
    t->e = ne;
    t->order = no;
    t->bytes = nb;
    t->n = k;
    t->cap = ncap;
    t->free_head = 0;
    t->garbage = 0;
    t->norder = 0;
    if (rebuild_maps(t, slots_for(t->live))) { /* keep the old maps' size: rebuild in place */
        memset(t->by_hash, 0, t->mcap * sizeof t->by_hash[0]);
        memset(t->by_raw, 0, t->mcap * sizeof t->by_raw[0]);
        for (uint32_t i = 0; i < t->n; i++) {
            map_insert(t->by_hash, t->mcap, t->e[i].hash, i);
            if (t->e[i].raw)
                map_insert(t->by_raw, t->mcap, t->e[i].raw, i);
        }
    }
}

size_t series_table_sweep(struct series_table *t, bool ok, series_stale_fn stale, void *ud)
{
    size_t nstale = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        struct series_entry *e = &t->e[i];
        if (e->flags & SERIES_FREE)
            continue;
        if (ok && e->seen == t->gen) {
            e->flags = (e->flags & SERIES_TRACKED) ? (SERIES_TRACKED | SERIES_LIVE_TRACKED) : 0;
            continue;
        }
        if ((e->flags & SERIES_LIVE_TRACKED) && stale) {
            stale(ud, t, e);
            nstale++;
        }
        if (ok)
            remove_entry(t, i);
    }
    if (!ok) {
        series_table_reset(t);
        return nstale;
    }
    bool mostly_garbage = t->garbage > 4096 && t->garbage > (t->bytes.len - t->garbage);
    bool mostly_free = t->cap > 1024 && t->live < t->cap / 4;
    if (mostly_garbage || mostly_free)
        compact(t);
    return nstale;
}
