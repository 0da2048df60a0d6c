/* series.c: the series table of one target (see series.h for the model).
 *
 * Entries live in one array (removed ones go on a free list and are reused), their
 * pair ids in one byte buffer, the label pairs in the dictionary's array with their
 * wire bytes in its buffer (one dictionary for many tables: series_dict). The three
 * indexes (final label hash, scrape cache key,
 * label pair) are open-addressing tables of indexes with linear probing, so a slot
 * costs 4 bytes (an index and 8 bits of the key's hash) and the key is read from the
 * entry. Removal shifts the following slots back (no tombstones), so a table under
 * churn does not fill up with dead slots. Arrays grow by half, not by doubling, and
 * the maps, of any size, settle at 2/3 full (slots_fit): at 100k series the headroom
 * is what costs, not the data. The identity map is needed only for series the scrape
 * cache misses: a table frees it before its samples are emitted (a big one always, a
 * smaller one after a scrape without misses) and builds it again at the next miss
 * (series_table_settle). When removed entries
 * have left more garbage in a buffer than there are live bytes, or most of the array
 * is free, the table is compacted in place of growing: memory follows the live
 * series, not the peak.
 *
 * Why pairs: a target's series share most of their labels (job, instance, the metric
 * name, a handful of values per dimension), and the targets of one application share
 * most of theirs, so storing each pair once and each series as ids of 1-3 bytes a
 * label takes a tenth of the full label bytes. A pair lives as long as a series of
 * any table holds it (reference count), so churning label values free theirs.
 *
 * The scrape cache key is a 64-bit hash of the exposed text; two different lines of
 * one target that hash alike would be taken for the same series (about 1 in 10^9 for
 * 100k series in one target). The identity index compares the pair ids, and the pair
 * index the pair bytes, so equal hashes never merge two series or two pairs. */
#include <stdlib.h>
#include <string.h>

#include "series.h"

_Static_assert(sizeof(struct series_entry) == 20, "a series entry is 20 bytes");
_Static_assert(sizeof(struct series_pair) == 16, "a label pair is 16 bytes");

/* The smallest map: a target of 100 series (1000 such targets are 100k series) kept
 * 3 KB of 256-slot maps, more than its entries. */
#define MIN_SLOTS 32u
#define MAX_IDS   1024 /* labels of one series; the engine allows far fewer */

/* A map slot holds the index + 1 of what it points to in its low SLOT_IDX_BITS bits
 * (0: empty) and 8 bits of its key's hash above them, so a probe that meets another
 * key rejects it without reading the entry (a cache miss each, at 100k series). So
 * a target holds at most SLOT_IDX_MAX series and as many label pairs. */
#define SLOT_IDX_BITS 24
#define SLOT_IDX_MASK ((1u << SLOT_IDX_BITS) - 1)
#define SLOT_IDX_MAX  (SLOT_IDX_MASK - 1) /* index + 1 must fit */

static inline uint32_t slot_idx(uint32_t s)
{
    return (s & SLOT_IDX_MASK) - 1;
}

/* Where a key's probe starts in a map of mcap slots (any size: the product's high
 * half scaled into range, not a mask), and its tag. Fibonacci hashing first spreads
 * keys whose low bits repeat. */
static inline size_t slot_home(uint64_t key, size_t mcap, uint32_t *tag)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    *tag = (uint32_t)h & ~SLOT_IDX_MASK; /* bits 24-31: not the ones that pick the start */
    return (size_t)(((h >> 32) * (uint64_t)mcap) >> 32);
}

static inline size_t slot_next(size_t j, size_t mcap)
{
    return ++j == mcap ? 0 : j;
}

enum map_kind { MAP_HASH, MAP_RAW, MAP_PAIR };

/* o: the table, or the dictionary for MAP_PAIR */
static inline uint64_t key_of(const void *o, uint32_t slot, enum map_kind kind)
{
    if (kind == MAP_PAIR)
        return ((const struct series_dict *)o)->p[slot_idx(slot)].hash;
    const struct series_entry *e = &((const struct series_table *)o)->e[slot_idx(slot)];
    return kind == MAP_RAW ? series_raw(e) : e->hash;
}

static void map_insert(uint32_t *slots, size_t mcap, uint64_t key, uint32_t idx)
{
    uint32_t tag;
    size_t j = slot_home(key, mcap, &tag);
    while (slots[j])
        j = slot_next(j, mcap);
    slots[j] = tag | (idx + 1);
}

/* Remove index idx (whose key is `key`) from the map: shift back every following
 * slot of the run that may move into the hole. */
static void map_delete(const void *o, uint32_t *slots, size_t mcap, uint64_t key, uint32_t idx,
                       enum map_kind kind)
{
    uint32_t tag;
    size_t i = slot_home(key, mcap, &tag);
    while (slots[i] != (tag | (idx + 1))) {
        if (!slots[i])
            return; /* not indexed */
        i = slot_next(i, mcap);
    }
    for (;;) {
        slots[i] = 0;
        size_t k = i;
        for (;;) {
            k = slot_next(k, mcap);
            if (!slots[k])
                return;
            size_t home = slot_home(key_of(o, slots[k], kind), mcap, &tag);
            /* the slot at k stays when its home lies cyclically in (i, k] */
            bool stays = i <= k ? (i < home && home <= k) : (i < home || home <= k);
            if (!stays)
                break;
        }
        slots[i] = slots[k];
        i = k;
    }
}

/* Map sizes: a map is rebuilt at twice its keys when an add would fill it past 3/4,
 * and after a scrape (map_loose, slots_fit) at half as much again as its keys when it is less
 * than 8/15 full: 4-byte slots at 2/3 full cost 6 bytes a series per map (a power of
 * two at most 3/4 full cost 5-11). */
static size_t slots_grow(size_t live)
{
    return live < MIN_SLOTS / 2 ? MIN_SLOTS : 2 * live;
}

static size_t slots_fit(size_t live)
{
    size_t m = live + live / 2 + 1;
    return m < MIN_SLOTS ? MIN_SLOTS : m;
}

static bool map_full(size_t live, size_t mcap)
{
    return live * 4 > mcap * 3;
}

static bool map_loose(size_t live, size_t mcap)
{
    return mcap > MIN_SLOTS && mcap * 8 > slots_fit(live) * 10;
}

/* An array of `cap` elements that must hold `need`: half as much again. */
static uint32_t grown(uint32_t cap, uint32_t need)
{
    uint64_t n = cap < 64 ? 64 : (uint64_t)cap + cap / 2;
    while (n < need)
        n += n / 2;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* ss_buf_reserve, but growing by half (and never past max). */
static int buf_reserve(struct ss_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    if (b->max && b->len + extra > b->max)
        return SS_ELIMIT;
    size_t ncap = b->cap < 256 ? 256 : b->cap + b->cap / 2;
    while (ncap < b->len + extra + 1)
        ncap += ncap / 2;
    if (b->max && ncap > b->max + 1)
        ncap = b->max + 1;
    char *n = realloc(b->data, ncap);
    if (!n)
        return SS_ENOMEM;
    b->data = n;
    b->cap = ncap;
    return 0;
}

/* Both series maps at mcap slots, from the live entries (the raw map alone while the
 * identity map is off). */
static int rebuild_maps(struct series_table *t, size_t mcap)
{
    uint32_t *h = t->hash_off ? NULL : calloc(mcap, sizeof *h), *r = calloc(mcap, sizeof *r);
    if ((!h && !t->hash_off) || !r) {
        free(h);
        free(r);
        return SS_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const struct series_entry *e = &t->e[i];
        if (e->flags & SERIES_FREE)
            continue;
        if (h)
            map_insert(h, mcap, e->hash, i);
        if (series_raw(e))
            map_insert(r, mcap, series_raw(e), i);
    }
    free(t->by_hash);
    free(t->by_raw);
    t->by_hash = h;
    t->by_raw = r;
    t->mcap = mcap;
    return 0;
}

static int rebuild_pair_map(struct series_dict *d, size_t pmcap)
{
    uint32_t *m = calloc(pmcap, sizeof *m);
    if (!m)
        return SS_ENOMEM;
    for (uint32_t i = 0; i < d->pn; i++)
        if (d->p[i].refs)
            map_insert(m, pmcap, d->p[i].hash, i);
    free(d->by_pair);
    d->by_pair = m;
    d->pmcap = pmcap;
    return 0;
}

void series_dict_init(struct series_dict *d, size_t max_bytes)
{
    memset(d, 0, sizeof *d);
    ss_buf_init(&d->bytes, max_bytes);
}

void series_dict_free(struct series_dict *d)
{
    free(d->p);
    free(d->by_pair);
    ss_buf_free(&d->bytes);
    memset(d, 0, sizeof *d);
}

void series_table_init(struct series_table *t, size_t max_bytes)
{
    memset(t, 0, sizeof *t);
    series_dict_init(&t->own, max_bytes);
    t->d = &t->own;
    ss_buf_init(&t->ids, max_bytes);
}

void series_table_share(struct series_table *t, struct series_dict *d)
{
    t->d = d;
}

static void free_order(struct series_table *t)
{
    free(t->order);
    free(t->order_ts);
    t->order = NULL;
    t->order_ts = NULL;
    t->olen = t->ocap = t->tscap = 0;
    t->norder = t->nts = 0;
}

static void unref_ids(struct series_dict *d, const uint8_t *q, size_t len);

void series_table_free(struct series_table *t)
{
    if (t->d == &t->own) {
        series_dict_free(&t->own);
    } else if (t->d) { /* a shared dictionary keeps the other tables' pairs */
        for (uint32_t i = 0; i < t->n; i++)
            if (!(t->e[i].flags & SERIES_FREE))
                unref_ids(t->d, (const uint8_t *)t->ids.data + t->e[i].off, t->e[i].idlen);
    }
    free(t->e);
    free(t->by_hash);
    free(t->by_raw);
    free_order(t);
    ss_buf_free(&t->ids);
    memset(t, 0, sizeof *t);
}

void series_table_reset(struct series_table *t)
{
    size_t max = t->ids.max;
    uint32_t gen = t->gen;
    uint32_t (*ph)(const void *, size_t) = t->own.pair_hash;
    uint32_t hdm = t->hash_drop_min;
    struct series_dict *shared = t->d == &t->own ? NULL : t->d;
    series_table_free(t);
    series_table_init(t, max);
    if (shared)
        t->d = shared;
    t->gen = gen;
    t->own.pair_hash = ph;
    t->hash_drop_min = hdm;
}

void series_table_begin(struct series_table *t)
{
    t->gen++;
    if (!(uint8_t)t->gen) /* an entry's `seen` byte 0 means "never seen" */
        t->gen++;
    t->norder = 0;
    t->olen = 0;
    t->oprev = UINT32_MAX; /* the first sample of entry 0 is "the next" */
    t->hash_missed = false;
    t->began_empty = t->live == 0;
}

long series_table_find_raw(const struct series_table *t, uint64_t raw)
{
    if (!t->mcap)
        return -1;
    uint32_t tag;
    for (size_t j = slot_home(raw, t->mcap, &tag);; j = slot_next(j, t->mcap)) {
        uint32_t s = t->by_raw[j];
        if (!s)
            return -1;
        if ((s & ~SLOT_IDX_MASK) == tag && series_raw(&t->e[slot_idx(s)]) == raw)
            return (long)slot_idx(s);
    }
}

/* ---- label pairs ----------------------------------------------------------------- */

static uint32_t pair_hash(const void *p, size_t len)
{
    uint64_t h = ss_hash_str(0x243F6A8885A308D3ULL, (struct ss_str){p, len});
    return (uint32_t)(h ^ (h >> 32));
}

static void compact_pairs(struct series_dict *d);

static long pair_find(const struct series_dict *d, uint32_t h, const void *p, size_t len)
{
    if (!d->pmcap)
        return -1;
    uint32_t tag;
    for (size_t j = slot_home(h, d->pmcap, &tag);; j = slot_next(j, d->pmcap)) {
        uint32_t s = d->by_pair[j];
        if (!s)
            return -1;
        if ((s & ~SLOT_IDX_MASK) != tag)
            continue;
        const struct series_pair *q = &d->p[slot_idx(s)];
        if (q->hash == h && q->len == len && !memcmp(d->bytes.data + q->off, p, len))
            return (long)slot_idx(s);
    }
}

/* One more reference to the pair with these bytes, added if new. Returns its id or a
 * negative ss_err. */
static long pair_ref(struct series_dict *d, uint32_t h, const void *p, size_t len)
{
    long id = pair_find(d, h, p, len);
    if (id >= 0) {
        d->p[id].refs++;
        return id;
    }
    if (len > UINT32_MAX)
        return SS_ELIMIT;
    if (map_full(d->plive + 1, d->pmcap)) {
        int rc = rebuild_pair_map(d, slots_grow(d->plive + 1));
        if (rc)
            return rc;
    }
    if (!d->pfree_head && d->pn > SLOT_IDX_MAX - 1) {
        d->refused++;
        return SS_ELIMIT;
    }
    if (!d->pfree_head && d->pn == d->pcap) {
        if (d->pcap >= UINT32_MAX / 2)
            return SS_ELIMIT;
        uint32_t ncap = grown(d->pcap, d->pcap + 1);
        struct series_pair *np = realloc(d->p, ncap * sizeof *np);
        if (!np)
            return SS_ENOMEM;
        d->p = np;
        d->pcap = ncap;
    }
    int rc = buf_reserve(&d->bytes, len);
    if (rc == SS_ELIMIT && d->garbage) {
        /* at the bound with removed pairs' bytes in it: compact now rather than refuse
         * (the sweeps compact only when the garbage outweighs the live bytes, and a
         * shared dictionary's garbage may come from other targets) */
        compact_pairs(d);
        rc = buf_reserve(&d->bytes, len);
    }
    if (rc == SS_ELIMIT)
        d->refused++;
    if (rc)
        return rc;
    memcpy(d->bytes.data + d->bytes.len, p, len);
    uint32_t off = (uint32_t)d->bytes.len;
    d->bytes.len += len;
    d->bytes.data[d->bytes.len] = '\0';
    uint32_t i;
    if (d->pfree_head) {
        i = d->pfree_head - 1;
        d->pfree_head = d->p[i].off;
    } else {
        i = d->pn++;
    }
    d->p[i] = (struct series_pair){.off = off, .len = (uint32_t)len, .refs = 1, .hash = h};
    d->plive++;
    map_insert(d->by_pair, d->pmcap, h, i);
    return i;
}

static void pair_unref(struct series_dict *d, uint32_t id)
{
    struct series_pair *q = &d->p[id];
    if (--q->refs)
        return;
    map_delete(d, d->by_pair, d->pmcap, q->hash, id, MAP_PAIR);
    d->garbage += q->len;
    q->off = d->pfree_head;
    q->len = 0;
    d->pfree_head = id + 1;
    d->plive--;
}

/* Pair ids: 32-bit varints. series_get_varint (series.h, 64-bit) decodes the same
 * bytes, but in labels_split, once per label emitted, it measured 4-15% more CPU per
 * sample at 100 x 1k: these stay. */
static inline uint8_t *put_id(uint8_t *p, uint32_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline const uint8_t *get_id(const uint8_t *p, uint32_t *v)
{
    uint32_t x = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *p++;
        x |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = x;
    return p;
}

/* One reference fewer to each pair of these ids. */
static void unref_ids(struct series_dict *d, const uint8_t *q, size_t len)
{
    const uint8_t *end = q + len;
    while (q < end) {
        uint32_t id;
        q = get_id(q, &id);
        pair_unref(d, id);
    }
}

/* The length of the TimeSeries.labels field at p (tag, varint length, body), or 0
 * when it is malformed. */
static size_t field_len(const uint8_t *p, size_t avail)
{
    if (avail < 2 || p[0] != 0x0a)
        return 0;
    uint64_t body = 0;
    size_t i = 1;
    for (int shift = 0; i < avail && shift < 35; shift += 7, i++) {
        body |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80))
            return body <= avail - i - 1 ? i + 1 + body : 0;
    }
    return 0;
}

/* Split wire labels into pairs and write their ids to ids[] (varints). Without
 * `t_ref` (t_find only) a pair not in the table ends the search: the series cannot be
 * there either. With it each pair gets a reference, added if new. Returns the id
 * bytes, 0 when a pair is not found, or a negative ss_err; on failure no reference
 * is left behind. */
static long wire_to_ids(const struct series_table *t_find, struct series_table *t_ref, const void *wire,
                        size_t len, uint8_t *ids, size_t idcap)
{
    struct series_dict *d = (t_ref ? t_ref : t_find)->d;
    const uint8_t *w = wire;
    uint8_t *p = ids;
    size_t off = 0, n = 0;
    long rc = 0;
    while (off < len) {
        size_t fl = field_len(w + off, len - off);
        if (!fl || (size_t)(p - ids) + 5 > idcap) {
            rc = fl ? SS_ELIMIT : SS_EINVAL;
            goto fail;
        }
        uint32_t h = d->pair_hash ? d->pair_hash(w + off, fl) : pair_hash(w + off, fl);
        long id = t_ref ? pair_ref(d, h, w + off, fl) : pair_find(d, h, w + off, fl);
        if (id < 0) {
            rc = t_ref ? id : 0;
            goto fail;
        }
        p = put_id(p, (uint32_t)id);
        n++;
        off += fl;
    }
    return p - ids;
fail:
    if (t_ref) /* give back what this series took */
        unref_ids(d, ids, (size_t)(p - ids));
    return rc;
}

/* Bytes a label copy in labels_split may read and write past its end. */
#define COPY_SLACK 16

/* The name and value inside a pair's wire bytes (0x0a L 0x0a NL name 0x12 VL value).
 * Pairs do not keep where they are (16 bytes a pair instead of 32): read here, at
 * once when every length is below 128. */
static inline struct ss_label pair_label(const char *b, uint32_t len)
{
    const uint8_t *u = (const uint8_t *)b;
    if (len >= 6 && !((u[1] | u[3]) & 0x80)) {
        uint32_t nl = u[3];
        if (nl + 6 <= len && u[4 + nl] == 0x12 && nl + 6 + u[5 + nl] == len)
            return (struct ss_label){{b + 4, nl}, {b + 6 + nl, u[5 + nl]}};
    }
    struct ss_label l;
    if (ss_labels_wire_read(b, len, &l, NULL, 1) != 1) /* not possible: the table wrote it */
        l = (struct ss_label){{"", 0}, {"", 0}};
    return l;
}

long series_table_labels_split(const struct series_table *t, const struct series_entry *e, struct ss_buf *out,
                               struct ss_label *labels, uint32_t *ends, size_t cap)
{
    ss_buf_reset(out);
    /* A label is a few dozen bytes: copied 16 at a time, overrunning into the room
     * reserved past the end here and, on the source side, into the pair buffer's own
     * capacity (checked per pair), instead of a libc call per label (1.8% of the
     * 100x1k profile was memmove from here). */
    bool slack = ss_buf_reserve(out, (size_t)t->max_len + COPY_SLACK) == 0;
    int rc = slack ? 0 : ss_buf_reserve(out, t->max_len);
    if (rc)
        return rc;
    const struct series_dict *d = t->d;
    const uint8_t *q = (const uint8_t *)t->ids.data + e->off, *end = q + e->idlen;
    char *p = out->data;
    size_t n = 0;
    while (q < end) {
        uint32_t id;
        q = get_id(q, &id);
        const struct series_pair *pr = &d->p[id];
        const char *b = d->bytes.data + pr->off;
        if (slack && (size_t)pr->off + pr->len + COPY_SLACK <= d->bytes.cap) {
            char *to = p;
            const char *s = b;
            for (size_t left = pr->len;; left -= COPY_SLACK) {
                memcpy(to, s, COPY_SLACK); /* one unaligned 16-byte load and store */
                if (left <= COPY_SLACK)
                    break;
                to += COPY_SLACK;
                s += COPY_SLACK;
            }
        } else {
            memcpy(p, b, pr->len);
        }
        p += pr->len;
        if (labels) {
            if (n == cap)
                return SS_ELIMIT;
            labels[n] = pair_label(b, pr->len);
            if (ends)
                ends[n] = (uint32_t)(p - out->data);
        }
        n++;
    }
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return (long)n;
}

long series_table_labels_parts(const struct series_table *t, const struct series_entry *e,
                               struct ss_label *labels, struct ss_str *parts, size_t cap, size_t *len)
{
    const struct series_dict *d = t->d;
    const uint8_t *q = (const uint8_t *)t->ids.data + e->off, *end = q + e->idlen;
    size_t n = 0, total = 0;
    while (q < end) {
        uint32_t id;
        q = get_id(q, &id);
        if (n == cap)
            return SS_ELIMIT;
        const struct series_pair *pr = &d->p[id];
        const char *b = d->bytes.data + pr->off;
        parts[n] = (struct ss_str){b, pr->len};
        labels[n] = pair_label(b, pr->len);
        total += pr->len;
        n++;
    }
    *len = total;
    return (long)n;
}

int series_table_labels(const struct series_table *t, const struct series_entry *e, struct ss_buf *out)
{
    long n = series_table_labels_split(t, e, out, NULL, NULL, 0);
    return n < 0 ? (int)n : 0;
}

/* ---- series ------------------------------------------------------------------------ */

/* The identity map is back (built from the entries when it was off). */
static int need_hash_map(struct series_table *t)
{
    if (!t->hash_off)
        return 0;
    uint32_t *h = calloc(t->mcap, sizeof *h);
    if (!h)
        return SS_ENOMEM;
    for (uint32_t i = 0; i < t->n; i++)
        if (!(t->e[i].flags & SERIES_FREE))
            map_insert(h, t->mcap, t->e[i].hash, i);
    t->by_hash = h;
    t->hash_off = false;
    return 0;
}

static long find_ids(const struct series_table *t, uint64_t hash, const uint8_t *ids, size_t idlen)
{
    if (!t->mcap)
        return -1;
    uint32_t h32 = series_hash32(hash), tag;
    for (size_t j = slot_home(h32, t->mcap, &tag);; j = slot_next(j, t->mcap)) {
        uint32_t s = t->by_hash[j];
        if (!s)
            return -1;
        if ((s & ~SLOT_IDX_MASK) != tag)
            continue;
        const struct series_entry *e = &t->e[slot_idx(s)];
        if (e->hash == h32 && e->idlen == idlen && !memcmp(t->ids.data + e->off, ids, idlen))
            return (long)slot_idx(s);
    }
}

long series_table_find(struct series_table *t, uint64_t hash, const void *wire, size_t len)
{
    t->hash_missed = true;
    if (need_hash_map(t))
        return -1; /* series_table_add fails the same way */
    uint8_t ids[MAX_IDS * 5];
    long n = wire_to_ids(t, NULL, wire, len, ids, sizeof ids);
    if (n <= 0 && len)
        return -1;
    return find_ids(t, hash, ids, (size_t)n);
}

/* Room for one more entry: a free slot, or a bigger array. */
static int reserve_entry(struct series_table *t)
{
    if (map_full(t->live + 1, t->mcap)) {
        int rc = rebuild_maps(t, slots_grow(t->live + 1));
        if (rc)
            return rc;
    }
    if (t->free_head)
        return 0;
    if (t->n > SLOT_IDX_MAX - 1)
        return SS_ELIMIT;
    if (t->n < t->cap)
        return 0;
    if (t->cap >= UINT32_MAX / 2)
        return SS_ELIMIT;
    uint32_t ncap = grown(t->cap, t->cap + 1);
    struct series_entry *ne = realloc(t->e, ncap * sizeof *ne);
    if (!ne)
        return SS_ENOMEM;
    t->e = ne;
    t->cap = ncap;
    return 0;
}

int series_table_grow_order(struct series_table *t)
{
    size_t ncap = t->ocap ? t->ocap + t->ocap / 2 : t->last_olen + t->last_olen / 16 + 64 * SAMPLE_MAX_SIZE;
    if (ncap < t->olen + SAMPLE_MAX_SIZE)
        ncap = t->olen + SAMPLE_MAX_SIZE;
    uint8_t *no = realloc(t->order, ncap);
    if (!no)
        return SS_ENOMEM;
    t->order = no;
    t->ocap = ncap;
    return 0;
}

int series_table_grow_ts(struct series_table *t)
{
    int64_t *nt = ss_array_grow(t->order_ts, &t->tscap, (size_t)t->nts + 1, sizeof *nt, 64);
    if (!nt)
        return SS_ENOMEM;
    t->order_ts = nt;
    return 0;
}

long series_table_add(struct series_table *t, uint64_t hash, const void *wire, size_t len, size_t nlabels)
{
    uint8_t ids[MAX_IDS * 5];
    if (nlabels > MAX_IDS || len > UINT32_MAX)
        return SS_ELIMIT;
    /* the identity map is built by series_table_find, which the caller asked first: it
     * is still off only when that find could not build it (no memory), and then its
     * -1 did not mean "not in the table" */
    if (t->hash_off)
        return SS_ENOMEM;
    int rc = reserve_entry(t);
    if (rc)
        return rc;
    long idlen = wire_to_ids(NULL, t, wire, len, ids, sizeof ids);
    if (idlen < 0)
        return idlen;
    rc = buf_reserve(&t->ids, (size_t)idlen);
    if (rc) {
        unref_ids(t->d, ids, (size_t)idlen);
        return rc;
    }
    memcpy(t->ids.data + t->ids.len, ids, (size_t)idlen);
    uint32_t off = (uint32_t)t->ids.len;
    t->ids.len += (size_t)idlen;
    uint32_t i;
    if (t->free_head) {
        i = t->free_head - 1;
        t->free_head = t->e[i].off;
    } else {
        i = t->n++;
    }
    t->e[i] = (struct series_entry){.hash = series_hash32(hash), .off = off, .idlen = (uint16_t)idlen};
    if (len > t->max_len)
        t->max_len = (uint32_t)len;
    t->live++;
    map_insert(t->by_hash, t->mcap, t->e[i].hash, i);
    return i;
}

int series_table_link_raw(struct series_table *t, size_t i, uint64_t raw)
{
    if (!raw || series_raw(&t->e[i]) || series_table_find_raw(t, raw) >= 0)
        return 0;
    series_set_raw(&t->e[i], raw);
    map_insert(t->by_raw, t->mcap, raw, (uint32_t)i);
    return 0;
}

void series_table_clear_raw(struct series_table *t)
{
    if (t->mcap)
        memset(t->by_raw, 0, t->mcap * sizeof t->by_raw[0]);
    for (uint32_t i = 0; i < t->n; i++) {
        series_set_raw(&t->e[i], 0);
        series_set_hint(&t->e[i], 0); /* a free slot has none anyway */
    }
}

static void remove_entry(struct series_table *t, uint32_t i)
{
    struct series_entry *e = &t->e[i];
    if (t->by_hash)
        map_delete(t, t->by_hash, t->mcap, e->hash, i, MAP_HASH);
    if (series_raw(e))
        map_delete(t, t->by_raw, t->mcap, series_raw(e), i, MAP_RAW);
    unref_ids(t->d, (const uint8_t *)t->ids.data + e->off, e->idlen);
    t->ids_garbage += e->idlen;
    e->flags = SERIES_FREE;
    series_set_raw(e, 0);
    e->seen = 0;
    e->idlen = 0;
    e->off = t->free_head;
    t->free_head = i + 1;
    t->live--;
}

/* Move the live entries to the front (keeping their order), their ids into a fresh
 * buffer, and rebuild the maps. On allocation failure the table stays as it was:
 * compaction is an optimisation. */
static void compact_entries(struct series_table *t)
{
    uint32_t ncap = grown(0, t->live);
    struct ss_buf nb;
    ss_buf_init(&nb, t->ids.max);
    size_t need = t->ids.len - t->ids_garbage;
    struct series_entry *ne = malloc(ncap * sizeof *ne);
    if (!ne || (need && buf_reserve(&nb, need))) {
        free(ne);
        ss_buf_free(&nb);
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        struct series_entry e = t->e[i];
        if (e.flags & SERIES_FREE)
            continue;
        if (e.idlen)
            memcpy(nb.data + nb.len, t->ids.data + e.off, e.idlen);
        e.off = (uint32_t)nb.len;
        nb.len += e.idlen;
        ne[k++] = e;
    }
    free(t->e);
    ss_buf_free(&t->ids);
    t->e = ne;
    t->ids = nb;
    t->n = k;
    t->cap = ncap;
    t->free_head = 0;
    t->ids_garbage = 0;
    if (rebuild_maps(t, slots_fit(t->live))) { /* keep the old maps' size: rebuild in place */
        if (t->by_hash)
            memset(t->by_hash, 0, t->mcap * sizeof t->by_hash[0]);
        memset(t->by_raw, 0, t->mcap * sizeof t->by_raw[0]);
        for (uint32_t i = 0; i < t->n; i++) {
            if (t->by_hash)
                map_insert(t->by_hash, t->mcap, t->e[i].hash, i);
            if (series_raw(&t->e[i]))
                map_insert(t->by_raw, t->mcap, series_raw(&t->e[i]), i);
        }
    }
}

/* The live pairs' bytes into a fresh buffer (their ids stay: series hold them). */
static void compact_pairs(struct series_dict *d)
{
    struct ss_buf nb;
    ss_buf_init(&nb, d->bytes.max);
    size_t need = d->bytes.len - d->garbage;
    if (need && buf_reserve(&nb, need)) {
        ss_buf_free(&nb);
        return;
    }
    for (uint32_t i = 0; i < d->pn; i++) {
        struct series_pair *q = &d->p[i];
        if (!q->refs)
            continue;
        memcpy(nb.data + nb.len, d->bytes.data + q->off, q->len);
        q->off = (uint32_t)nb.len;
        nb.len += q->len;
    }
    if (nb.data)
        nb.data[nb.len] = '\0';
    ss_buf_free(&d->bytes);
    d->bytes = nb;
    d->garbage = 0;
}

/* v (*cap elements of elem bytes) realloc'd down to want elements when it holds more;
 * unchanged when realloc fails. */
static void *shrink_array(void *v, size_t *cap, size_t want, size_t elem)
{
    if (*cap <= want)
        return v;
    void *n = realloc(v, want * elem);
    if (!n)
        return v;
    *cap = want;
    return n;
}

/* After a scrape: the growth headroom of the entries, pairs, pair ids and pair bytes
 * goes back when the table has no holes, keeping 1/64 for series still to come (1/16
 * kept 0.4 MB at one 100k-series target), and maps grown for the first scrape are
 * rebuilt at their steady size; a target's table is then about its live size, not
 * its size rounded up. realloc may fail to shrink,
 * a map may not be rebuilt: then nothing changes. */
static void shrink_to_fit(struct series_table *t)
{
    if (map_loose(t->live, t->mcap))
        (void)rebuild_maps(t, slots_fit(t->live));
    struct series_dict *d = t->d;
    if (map_loose(d->plive, d->pmcap))
        (void)rebuild_pair_map(d, slots_fit(d->plive));
    /* arrays with no free slot inside, and the byte buffers: 1/64 over their use */
    size_t cap = t->cap;
    if (!t->free_head) {
        t->e = shrink_array(t->e, &cap, t->n + t->n / 64 + 8, sizeof *t->e);
        t->cap = (uint32_t)cap;
    }
    cap = d->pcap;
    if (!d->pfree_head) {
        d->p = shrink_array(d->p, &cap, d->pn + d->pn / 64 + 8, sizeof *d->p);
        d->pcap = (uint32_t)cap;
    }
    struct ss_buf *bufs[2] = {&t->ids, &d->bytes};
    for (int k = 0; k < 2; k++) {
        struct ss_buf *b = bufs[k];
        b->data = shrink_array(b->data, &b->cap, b->len + b->len / 64 + 65, 1);
    }
}

void series_table_settle(struct series_table *t)
{
    bool drop = t->live >= (t->hash_drop_min ? t->hash_drop_min : SERIES_HASH_DROP_MIN) ||
                (t->live >= SERIES_HASH_IDLE_MIN && (!t->hash_missed || t->began_empty));
    if (drop && t->by_hash) {
        free(t->by_hash);
        t->by_hash = NULL;
        t->hash_off = true;
    }
    shrink_to_fit(t);
}

size_t series_table_sweep(struct series_table *t, bool ok, series_stale_fn stale, void *ud)
{
    size_t nstale = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        struct series_entry *e = &t->e[i];
        if (e->flags & SERIES_FREE)
            continue;
        if (ok && e->seen == (uint8_t)t->gen) {
            e->flags = (uint8_t)((e->flags & ~SERIES_FLAG_BITS) |
                                 ((e->flags & SERIES_TRACKED) ? (SERIES_TRACKED | SERIES_LIVE_TRACKED) : 0));
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
    /* the samples are emitted: the next scrape allocates the list again, at once at
     * this scrape's size */
    t->last_olen = t->olen;
    free_order(t);
    bool ids_garbage = t->ids_garbage > 4096 && t->ids_garbage > (t->ids.len - t->ids_garbage);
    bool mostly_free = t->cap > 1024 && t->live < t->cap / 4;
    if (ids_garbage || mostly_free)
        compact_entries(t);
    if (t->d->garbage > 4096 && t->d->garbage > (t->d->bytes.len - t->d->garbage))
        compact_pairs(t->d);
    shrink_to_fit(t);
    return nstale;
}

/* ---- dropped series ----------------------------------------------------------- */

static uint8_t next_gen(uint8_t gen) /* 1..255, never 0 */
{
    return gen >= 255 ? 1 : (uint8_t)(gen + 1);
}

/* s's table again at cap slots: its keys last seen in generation `keep`, or all of
 * them when keep is 0 (each with its seen byte). */
static int drop_set_rebuild(struct drop_set *s, uint32_t cap, uint8_t keep)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint8_t *seen = malloc(cap);
    if (!keys || !seen) {
        free(keys);
        free(seen);
        return SS_ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->cap; i++) {
        if (!s->keys[i] || (keep && s->seen[i] != keep))
            continue;
        uint32_t j = drop_slot(s->keys[i], cap);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = s->keys[i];
        seen[j] = s->seen[i];
        n++;
    }
    free(s->keys);
    free(s->seen);
    s->keys = keys;
    s->seen = seen;
    s->cap = cap;
    s->n = n;
    return 0;
}

int drop_set_add(struct drop_set *s, uint64_t raw)
{
    if (!raw)
        return 0;
    if (!s->gen)
        s->gen = 1;
    if ((uint64_t)(s->n + 1) * 4 > (uint64_t)s->cap * 3) {
        if (s->cap >= (1u << 30))
            return SS_ENOMEM;
        int rc = drop_set_rebuild(s, s->cap ? s->cap * 2 : 64, 0);
        if (rc)
            return rc;
    }
    uint32_t i = drop_slot(raw, s->cap);
    while (s->keys[i] && s->keys[i] != raw)
        i = (i + 1) & (s->cap - 1);
    if (!s->keys[i])
        s->n++;
    s->keys[i] = raw;
    s->seen[i] = s->gen;
    return 0;
}

void drop_set_sweep(struct drop_set *s)
{
    if (!s->n)
        return;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->cap; i++)
        kept += s->keys[i] && s->seen[i] == s->gen;
    if (!kept) {
        drop_set_clear(s);
    } else if (kept < s->n) { /* some went: the table again without them, at most half full */
        uint32_t cap = 64;
        while ((uint64_t)kept * 2 > cap)
            cap *= 2;
        if (drop_set_rebuild(s, cap, s->gen))
            drop_set_clear(s); /* no memory for it: start empty (they are relabeled again) */
    }
    s->gen = next_gen(s->gen);
}

void drop_set_clear(struct drop_set *s)
{
    free(s->keys);
    free(s->seen);
    s->keys = NULL;
    s->seen = NULL;
    s->cap = s->n = 0;
}
