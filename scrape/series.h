/* series.h: the series table of one target (internal to the scrape module).
 *
 * Every series the target exposes is stored once: its final labels (after target
 * labels and metric relabeling, sorted, before external labels) in the remote-write
 * wire form (ss_labels_wire_write), their hash, and the generation (scrape) that last
 * saw it, plus the value and timestamp of that scrape. Two indexes point at entries:
 * the final label hash (identity) and the scrape cache, the hash of the series as
 * exposed (raw text: name and labels in exposition order), so an unchanged series is
 * found with one lookup and no labelling at all.
 *
 * A scrape: series_table_begin opens a generation; every sample finds or adds its
 * entry and marks it seen (series_table_see, which also lists it in `order`, the
 * exposition order, for emitting). At the end series_table_sweep goes over the entries
 * once: on success those seen are kept (and take part in staleness when they had no
 * explicit timestamp) and the others get a stale marker and are removed; on failure
 * everything committed before gets a stale marker and the table empties, as
 * Prometheus' scrape loop does. So there is no second generation, and
 * scrape_series_added is the number of entries added in the scrape. */
#ifndef SCRAPE_SERIES_STATE_H
#define SCRAPE_SERIES_STATE_H

#include "ss.h"

#define SERIES_TRACKED      1u /* this scrape's sample has no explicit timestamp */
#define SERIES_LIVE_TRACKED 2u /* committed without explicit timestamp: staleness applies */
#define SERIES_FREE         4u /* slot on the free list */

struct series_entry {
    uint64_t hash; /* final labels (ss_labels_hash), before external labels */
    uint64_t raw;  /* the scrape-cache key that points here; 0 = none */
    double value;  /* of the scrape that last saw it */
    int64_t ts;
    uint32_t off, len; /* wire label bytes in the table's `bytes` */
    uint32_t seen;     /* generation that last saw it */
    uint16_t nlabels;
    uint8_t flags;
    uint8_t pad;
};

struct series_table {
    struct series_entry *e;
    uint32_t n, cap;     /* slots used (free ones included), allocated */
    uint32_t live;       /* entries not free */
    uint32_t free_head;  /* index + 1 of the first free slot; 0 = none */
    struct ss_buf bytes; /* label bytes; bounded by its max */
    size_t garbage;      /* bytes of removed entries still in `bytes` */
    /* open addressing, linear probing; slots hold entry index + 1, 0 = empty */
    uint32_t *by_hash, *by_raw;
    size_t mcap;     /* slots in each map (power of two, at least twice `live`) */
    uint32_t *order; /* entries seen in this generation, in exposition order */
    uint32_t norder;
    uint32_t gen;
};

void series_table_init(struct series_table *t, size_t max_bytes);
void series_table_free(struct series_table *t);
/* Forget every series (keeps nothing: memory follows the next scrape). */
void series_table_reset(struct series_table *t);
/* A new scrape (generation) starts. */
void series_table_begin(struct series_table *t);

/* The entry the scrape cache maps `raw` to, or -1. */
long series_table_find_raw(const struct series_table *t, uint64_t raw);
/* The entry with these final labels (wire form) and hash, or -1. Equal hashes with
 * different labels are different series: the bytes are compared. */
long series_table_find(const struct series_table *t, uint64_t hash, const void *wire, size_t len);
/* Add a series not in the table (not seen yet: call series_table_see). Returns its
 * index, SS_ELIMIT when the label bytes would pass max_bytes, or SS_ENOMEM. */
long series_table_add(struct series_table *t, uint64_t hash, const void *wire, size_t len, size_t nlabels);
/* Point the scrape cache key `raw` at entry i, unless the entry already has a key or
 * the key is taken (then that series keeps taking the long way). */
int series_table_link_raw(struct series_table *t, size_t i, uint64_t raw);
/* Empty the scrape cache (the job's relabeling or limits changed). */
void series_table_clear_raw(struct series_table *t);

/* Entry i was seen in this scrape with this sample. The caller checks first that
 * it was not seen already (e->seen == t->gen: a duplicate). */
static inline void series_table_see(struct series_table *t, size_t i, double value, int64_t ts, bool tracked)
{
    struct series_entry *e = &t->e[i];
    e->seen = t->gen;
    e->value = value;
    e->ts = ts;
    e->flags = (uint8_t)((e->flags & ~SERIES_TRACKED) | (tracked ? SERIES_TRACKED : 0));
    t->order[t->norder++] = (uint32_t)i; /* room: order has a slot for every entry */
}

static inline const void *series_entry_labels(const struct series_table *t, const struct series_entry *e)
{
    return t->bytes.data + e->off;
}

/* End of a scrape. ok: keep what this generation saw, and remove the rest; not ok:
 * remove everything. Each removed entry that took part in staleness is passed to
 * stale first. Returns the number of stale markers. */
typedef void (*series_stale_fn)(void *ud, const struct series_table *t, const struct series_entry *e);
size_t series_table_sweep(struct series_table *t, bool ok, series_stale_fn stale, void *ud);

#endif
