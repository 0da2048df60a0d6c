/* series.h: the series table of one target (internal to the scrape module).
 *
 * Every series the target exposes is stored once: its final labels (after target
 * labels and metric relabeling, sorted, before external labels), their hash, and the
 * generation (scrape) that last saw it; the samples of the scrape in progress are in a
 * list of their own.
 * The labels are interned: each distinct label pair is stored once in a dictionary
 * (series_dict: the table's own, or one that every target of a scrape manager
 * shares) in the remote-write wire form (one field of ss_labels_wire_write's output)
 * and counted by the series holding it, and a series is the list of its pair ids
 * (varints, a few bytes each), so series_table_labels rebuilds its wire bytes with
 * one copy per label. Two indexes point at entries: the final label hash (identity)
 * and the scrape cache, the hash of the series as exposed (raw text: name and labels
 * in exposition order), so an unchanged series is found with one lookup (mostly not
 * even that: series_table_find_raw_next) and no labelling at all.
 *
 * A scrape: series_table_begin opens a generation; every sample finds or adds its
 * entry and marks it seen (series_table_see, which also lists it with its sample in
 * `order`, the exposition order, for emitting). At the end series_table_sweep goes over the entries
 * once: on success those seen are kept (and take part in staleness when they had no
 * explicit timestamp) and the others get a stale marker and are removed; on failure
 * everything committed before gets a stale marker and the table empties, as
 * Prometheus' scrape loop does. So there is no second generation, and
 * scrape_series_added is the number of entries added in the scrape. */
#ifndef SCRAPE_SERIES_STATE_H
#define SCRAPE_SERIES_STATE_H

#include <math.h>
#include <string.h>

#include "ss.h"

#define SERIES_TRACKED      1u /* this scrape's sample has no explicit timestamp */
#define SERIES_LIVE_TRACKED 2u /* committed without explicit timestamp: staleness applies */
#define SERIES_FREE         4u /* slot on the free list */
/* The upper bits of flags keep the sinks' hint (scrape_series.hint, 0..31). */
#define SERIES_HINT_SHIFT 3
#define SERIES_FLAG_BITS  7u

/* 20 bytes. The labels are not here: `off`/`idlen` name the series' pair ids
 * (varints) in the table's `ids`; each id is a label pair stored once per target, and
 * their lengths add up to the labels' wire length. Nor is the sample: a scrape's
 * samples are in the order arrays until they are emitted.
 * The identity hash is kept folded to 32 bits (series_hash32): it only filters the
 * label comparison and picks the remote's queue, so 32 bits do. The scrape-cache key
 * is two halves (series_raw), so that the entry needs no 8-byte alignment. `seen`
 * holds the low byte of the generation: every sweep visits every entry, so an entry's
 * `seen` is at most one generation old and the byte cannot be mistaken. */
struct series_entry {
    uint32_t raw_lo, raw_hi; /* the scrape-cache key that points here; 0 = none */
    uint32_t hash;           /* final labels (series_hash32 of ss_labels_hash), before external labels */
    uint32_t off;            /* pair ids in the table's `ids`; free slot: next free + 1 */
    uint16_t idlen;          /* bytes of the pair ids */
    uint8_t flags;
    uint8_t seen; /* low byte of the generation that last saw it (never 0 then) */
};

static inline uint64_t series_raw(const struct series_entry *e)
{
    return (uint64_t)e->raw_hi << 32 | e->raw_lo;
}

static inline void series_set_raw(struct series_entry *e, uint64_t raw)
{
    e->raw_lo = (uint32_t)raw;
    e->raw_hi = (uint32_t)(raw >> 32);
}

static inline uint8_t series_hint(const struct series_entry *e)
{
    return (uint8_t)(e->flags >> SERIES_HINT_SHIFT);
}

static inline void series_set_hint(struct series_entry *e, uint8_t hint)
{
    e->flags = (uint8_t)((e->flags & SERIES_FLAG_BITS) | (hint << SERIES_HINT_SHIFT));
}

/* The series identity hash as the table keeps it, and as every series the scrape
 * module emits carries it (scrape_series.hash), so one series always keeps one hash. */
static inline uint32_t series_hash32(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

/* The samples of a scrape are kept in exposition order as one byte string, read back
 * in turn (series_table_sample). A sample is a tag byte; then its entry's index as a
 * varint, unless it is the previous sample's index + 1 (a target exposes its series
 * in the same order every scrape, so this is the rule); then its value: a zigzag
 * varint when it is an integer of magnitude at most 2^53 (not -0), which is exact,
 * else its 8 bytes as they are (NaN payloads, stale markers included). A timestamp is
 * kept only when it is not the scrape's first one (`ts0`: the scrape's time unless the
 * first sample had its own), in an array of its own. A kube-state-metrics sample (a
 * 0 or 1, the next series) takes 2 bytes; it took 12 as two arrays, 1.2 MB in flight
 * for 100k series. */
#define SAMPLE_NEXT     1u /* index = previous + 1 */
#define SAMPLE_OWN_TS   2u
#define SAMPLE_INT      4u  /* value: zigzag varint */
#define SAMPLE_MAX_SIZE 16u /* tag, index (<= 4 bytes below 2^24), value (<= 8) */

/* Where series_table_sample is in a scrape's samples (the first: {0}). */
struct series_cursor {
    size_t pos;
    uint32_t tsk, prev;
};

/* One label (name and value) in wire form: one TimeSeries.labels field, as
 * ss_labels_wire_write writes it, shared by every series that has it. */
struct series_pair {
    uint32_t off, len; /* its bytes in the dictionary's `bytes`; free slot: off = next free + 1 */
    uint32_t refs;     /* series holding it; 0 = free */
    uint32_t hash;
};

/* The label pairs of one table, or of many: a manager's targets share one
 * (series_table_share), since the targets of a job, and of many jobs, expose the same
 * metric names and label values (1000 pods of 100 series hold about 1 100 distinct
 * pairs between them, and each of their tables kept its own ~95 of them: 4 KB a
 * target). A shared dictionary is used on one thread (the scrape thread's), and a
 * pointer into its bytes stays valid until the next add, sweep, reset or free of any
 * table on it. Its pair ids are what the tables' `ids` hold. */
struct series_dict {
    struct series_pair *p;
    uint32_t pn, pcap, plive, pfree_head; /* as a table's n, cap, live, free_head */
    struct ss_buf bytes;                  /* label pair bytes; bounded by its max */
    size_t garbage;                       /* bytes of removed pairs still in `bytes` */
    uint32_t *by_pair;                    /* pair hash -> index (see the table's maps) */
    size_t pmcap;
    uint32_t (*pair_hash)(const void *p, size_t len); /* NULL: the default; tests force collisions */
    uint64_t refused; /* pairs refused for its limits (max bytes, SLOT_IDX_MAX pairs) */
};

/* A dictionary for series_table_share (free it after every table on it). */
void series_dict_init(struct series_dict *d, size_t max_bytes);
void series_dict_free(struct series_dict *d);

struct series_table {
    struct series_entry *e;
    uint32_t n, cap;    /* slots used (free ones included), allocated */
    uint32_t live;      /* entries not free */
    uint32_t free_head; /* index + 1 of the first free slot; 0 = none */
    struct ss_buf ids;  /* every entry's pair ids (in *d); bounded by its max */
    size_t ids_garbage; /* bytes of removed entries still in `ids` */
    struct series_dict *d; /* its pairs: &own, or a shared dictionary */
    struct series_dict own;
    /* open addressing, linear probing; slots hold index + 1 (0 = empty) and a tag.
     * by_hash is needed only for series the scrape cache does not know, so a big
     * table frees it before its samples are emitted (series_table_settle, hash_off),
     * and the next series_table_find or series_table_add builds it again. */
    uint32_t *by_hash, *by_raw;
    size_t mcap;   /* slots in each map (about 2/3 full) */
    bool hash_off; /* by_hash freed on purpose (not indexed) */
    bool hash_missed; /* a series missed the scrape cache in this scrape (series_table_find) */
    bool began_empty; /* this scrape began with the table empty (its misses do not count) */
    /* this generation's samples, in exposition order (see SAMPLE_NEXT); freed by the
     * sweep, so only scrapes in progress hold them (sized from the last scrape's) */
    uint8_t *order;
    size_t olen, ocap, last_olen;
    int64_t *order_ts, ts0;
    uint32_t norder, oprev, nts;
    size_t tscap;
    uint32_t gen;
    uint32_t max_len;       /* the longest labels in wire form ever added (out's room in labels_split) */
    uint32_t hash_drop_min; /* 0: SERIES_HASH_DROP_MIN; tests lower it */
};

/* A table with a dictionary of its own (label bytes bounded by max_bytes, and its
 * pair ids too). */
void series_table_init(struct series_table *t, size_t max_bytes);
/* The table keeps its pairs in d from now on (before its first add; d outlives it). */
void series_table_share(struct series_table *t, struct series_dict *d);
/* Give back every series and the table's memory (and its pairs' references). */
void series_table_free(struct series_table *t);
/* Forget every series (keeps nothing: memory follows the next scrape). */
void series_table_reset(struct series_table *t);
/* A new scrape (generation) starts. */
void series_table_begin(struct series_table *t);

/* The entry the scrape cache maps `raw` to, or -1. */
long series_table_find_raw(const struct series_table *t, uint64_t raw);
/* The entry with these final labels (wire form, as ss_labels_wire_write) and hash,
 * or -1 (also when the identity index cannot be built again: no memory). Equal hashes
 * with different labels are different series: the labels are compared (as pair
 * ids). */
long series_table_find(struct series_table *t, uint64_t hash, const void *wire, size_t len);
/* Add a series not in the table (series_table_find said -1 just before; not seen
 * yet: call series_table_see). Returns its index, SS_ELIMIT when the label bytes would
 * pass max_bytes, or SS_ENOMEM (also when that find could not build the identity map
 * again, so its -1 proved nothing). */
long series_table_add(struct series_table *t, uint64_t hash, const void *wire, size_t len, size_t nlabels);
/* Point the scrape cache key `raw` at entry i, unless the entry already has a key or
 * the key is taken (then that series keeps taking the long way). */
int series_table_link_raw(struct series_table *t, size_t i, uint64_t raw);
/* Empty the scrape cache and forget the sinks' hints (the job's relabeling or limits,
 * or the labels added after them, changed: both were derived from labels). */
void series_table_clear_raw(struct series_table *t);

/* The scrape's series are all in (before its samples are emitted): a table of
 * SERIES_HASH_DROP_MIN series or more frees its identity map (rebuilt, O(series),
 * by the first series the scrape cache misses), and so does one
 * of SERIES_HASH_IDLE_MIN or more when no series missed the scrape cache in this
 * scrape, or the scrape began with the table empty (one that keeps missing, a
 * churning label or a series exposed in two forms, keeps its map instead of building
 * it every scrape; a first scrape's misses say nothing, and 1000 targets holding their
 * maps through their second scrape set the process' peak); one that grew in this scrape
 * gives its growth room back, so that the emission (queues filling) does not come on
 * top of them. Below SERIES_HASH_IDLE_MIN the map is the smallest one (MIN_SLOTS)
 * anyway. 1000 targets of 100 series kept 0.7 MB of identity maps that only a new
 * series reads. */
#define SERIES_HASH_DROP_MIN 4096
#define SERIES_HASH_IDLE_MIN 32
void series_table_settle(struct series_table *t);

int series_table_grow_order(struct series_table *t);
int series_table_grow_ts(struct series_table *t);

/* Entry i was seen in this scrape already. */
static inline bool series_table_seen(const struct series_table *t, size_t i)
{
    return t->e[i].seen == (uint8_t)t->gen;
}

/* series_table_find_raw, but the entry after the last one seen in this scrape is
 * tried first: a target exposes its series in the same order every scrape, so that
 * one is mostly the answer, and it is read in order where the map's slot is a cache
 * miss. An entry holds a key only while the map points the key at it (keys are unique
 * and never 0), so the answer is the map's. */
static inline long series_table_find_raw_next(const struct series_table *t, uint64_t raw)
{
    uint32_t next = t->oprev + 1u;
    if (raw && next < t->n && series_raw(&t->e[next]) == raw)
        return (long)next;
    return series_table_find_raw(t, raw);
}

/* Varints (7 bits a byte, low first) of a scrape's samples (pair ids: series.c). */
static inline uint8_t *series_put_varint(uint8_t *q, uint64_t v)
{
    while (v >= 0x80) {
        *q++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *q++ = (uint8_t)v;
    return q;
}

static inline uint64_t series_get_varint(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *p = q;
    return v;
}

/* Entry i was seen in this scrape with this sample. The caller checks first that
 * it was not seen already (series_table_seen: a duplicate). Returns 0 or SS_ENOMEM. */
static inline int series_table_see(struct series_table *t, size_t i, double value, int64_t ts, bool tracked)
{
    if (t->ocap - t->olen < SAMPLE_MAX_SIZE && series_table_grow_order(t))
        return SS_ENOMEM;
    uint8_t *p = t->order + t->olen, *q = p + 1, tag = 0;
    if (!t->norder) {
        t->ts0 = ts;
        t->nts = 0;
        t->oprev = UINT32_MAX; /* the cursor's rule for the first sample, whoever reset norder */
    } else if (ts != t->ts0) {
        if (t->nts == t->tscap && series_table_grow_ts(t))
            return SS_ENOMEM;
        t->order_ts[t->nts++] = ts;
        tag |= SAMPLE_OWN_TS;
    }
    if ((uint32_t)i == t->oprev + 1u)
        tag |= SAMPLE_NEXT;
    else
        q = series_put_varint(q, i);
    t->oprev = (uint32_t)i;
    /* NaN fails the range check, and the cast is defined only within it */
    int64_t iv = value >= -0x1p53 && value <= 0x1p53 ? (int64_t)value : 0;
    if ((double)iv == value && (iv || !signbit(value))) {
        tag |= SAMPLE_INT;
        q = series_put_varint(q, (uint64_t)iv << 1 ^ (uint64_t)(iv >> 63));
    } else {
        memcpy(q, &value, sizeof value);
        q += sizeof value;
    }
    *p = tag;
    t->olen = (size_t)(q - t->order);
    t->norder++;
    struct series_entry *e = &t->e[i];
    e->seen = (uint8_t)t->gen;
    e->flags = (uint8_t)((e->flags & ~SERIES_TRACKED) | (tracked ? SERIES_TRACKED : 0));
    return 0;
}

/* The next sample of this scrape (c: {0} for the first; call once per sample, norder
 * times): its entry's index, with its value and timestamp. */
static inline uint32_t series_table_sample(const struct series_table *t, struct series_cursor *c,
                                           double *value, int64_t *ts)
{
    const uint8_t *p = t->order + c->pos;
    uint8_t tag = *p++;
    uint32_t i = tag & SAMPLE_NEXT ? (c->pos ? c->prev + 1u : 0u) : (uint32_t)series_get_varint(&p);
    c->prev = i;
    if (tag & SAMPLE_INT) {
        uint64_t z = series_get_varint(&p);
        *value = (double)(int64_t)(z >> 1 ^ (0 - (z & 1)));
    } else {
        memcpy(value, p, sizeof *value);
        p += sizeof *value;
    }
    *ts = tag & SAMPLE_OWN_TS ? t->order_ts[c->tsk++] : t->ts0;
    c->pos = (size_t)(p - t->order);
    return i;
}

/* The entry's labels in wire form (as series_table_add was given them) into out,
 * replacing what it held. Returns 0 or SS_ENOMEM/SS_ELIMIT. */
int series_table_labels(const struct series_table *t, const struct series_entry *e, struct ss_buf *out);
/* The same, and the labels themselves into labels[0..cap) (pointing into the table's
 * dictionary: valid until the next add, sweep, reset or free of any table on it),
 * with the end of each one's bytes in out into ends[] (as ss_labels_wire_read gives
 * them). Returns the number of labels, or SS_ELIMIT (more than cap) or SS_ENOMEM. */
long series_table_labels_split(const struct series_table *t, const struct series_entry *e, struct ss_buf *out,
                               struct ss_label *labels, uint32_t *ends, size_t cap);
/* The same labels, and their wire bytes as they lie in the table, one piece per label
 * in parts[0..cap) (nothing copied: what labels_split puts together, for a sink that
 * copies the pieces where it keeps them anyway), *len the bytes of all. Valid as
 * labels are. Returns the number of labels, or SS_ELIMIT (more than cap). */
long series_table_labels_parts(const struct series_table *t, const struct series_entry *e,
                               struct ss_label *labels, struct ss_str *parts, size_t cap, size_t *len);

/* End of a scrape. ok: keep what this generation saw, and remove the rest; not ok:
 * remove everything. Each removed entry that took part in staleness is passed to
 * stale first. Returns the number of stale markers. */
typedef void (*series_stale_fn)(void *ud, const struct series_table *t, const struct series_entry *e);
size_t series_table_sweep(struct series_table *t, bool ok, series_stale_fn stale, void *ud);

/* The scrape cache's other half: the series texts (raw keys) whose series metric
 * relabeling dropped, so that an unchanged dropped series costs one lookup and no
 * labelling or relabeling next time, as Prometheus' scrape cache keeps its dropped
 * series. A key not seen in a scrape that read a body goes at that scrape's end
 * (drop_set_sweep), so the set follows what the target exposes. 12 bytes a slot, at
 * most 3/4 full. */
struct drop_set {
    uint64_t *keys; /* 0: empty slot */
    uint8_t *seen;  /* low byte of the generation that last saw the key */
    uint32_t cap, n;
    uint8_t gen; /* never 0 */
};

/* A key's first slot in a table of cap slots (a power of two); linear probing after it. */
static inline uint32_t drop_slot(uint64_t raw, uint32_t cap)
{
    return (uint32_t)(raw ^ raw >> 32) & (cap - 1);
}

/* Whether raw is in the set; marks it seen in this generation. */
static inline bool drop_set_has(struct drop_set *s, uint64_t raw)
{
    if (!s->n)
        return false;
    for (uint32_t i = drop_slot(raw, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->keys[i] == raw) {
            s->seen[i] = s->gen;
            return true;
        }
        if (!s->keys[i])
            return false;
    }
}

/* Add raw (not 0, not in the set), seen now. SS_ENOMEM leaves the set as it was: the
 * series is only relabeled again next time. */
int drop_set_add(struct drop_set *s, uint64_t raw);
/* End of a scrape that read a body: keys it did not see go. */
void drop_set_sweep(struct drop_set *s);
/* Forget every key (the rules changed); keeps nothing allocated. */
void drop_set_clear(struct drop_set *s);

#endif
