/* series.h: packed per-scrape series generations (internal to the scrape module). */
#ifndef SCRAPE_SERIES_STATE_H
#define SCRAPE_SERIES_STATE_H

#include "ss.h"

/* Record header; label bytes follow: per label u16 name_len, u32 value_len, name,
 * value (read those with memcpy). Records are padded to 8 bytes, so every header is
 * aligned and can be read in place. */
struct series_rec {
    uint64_t hash;
    double value;
    int64_t ts;
    uint32_t len; /* whole record */
    uint16_t nlabels;
    uint8_t tracked; /* takes part in staleness (no explicit timestamp) */
    uint8_t pad;
};

/* Open addressing from a 64-bit key (never 0 inside) to a record index. */
struct u64map {
    uint64_t *keys; /* 0 = empty slot */
    uint32_t *vals;
    size_t cap, n;
};

struct series_gen {
    struct ss_buf recs;
    uint32_t *offs;
    size_t n, cap;
    size_t n_last;
    struct u64map by_hash; /* final label hash -> record (live samples) */
    /* the scrape cache: hash of the series as exposed (before labelling and
     * relabeling) -> record, so an unchanged series skips the label pipeline */
    struct u64map by_raw;
};

void series_gen_init(struct series_gen *g, size_t max_bytes);
void series_gen_reset(struct series_gen *g);
void series_gen_free(struct series_gen *g);
/* Append a record; `index` puts it in the hash table (live samples only). */
int series_gen_append(struct series_gen *g, const struct ss_label *labels, size_t nlabels, uint64_t hash,
                      double value, int64_t ts, bool tracked, bool index);
long series_gen_find(const struct series_gen *g, uint64_t hash);
/* The scrape cache index: raw key -> record. */
int series_gen_index_raw(struct series_gen *g, uint64_t raw, size_t rec);
long series_gen_find_raw(const struct series_gen *g, uint64_t raw);
void series_gen_clear_raw(struct series_gen *g);
/* Append a copy of record i of `from` with a new value and timestamp. */
int series_gen_copy(struct series_gen *g, const struct series_gen *from, size_t i, double value, int64_t ts,
                    bool tracked);
/* Unpack record i: labels point into the generation's buffer. */
const struct series_rec *series_gen_get(const struct series_gen *g, size_t i, struct ss_label *labels,
                                        size_t cap, size_t *nlabels);

#endif
