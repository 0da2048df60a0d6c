/* fuzz_parse.c: libFuzzer target for the exposition parser (scrape/parse.c).
 *
 * Input: byte 0 picks the mode (bit 0 OpenMetrics, bit 1 strict, bit 2 utf8_names,
 * bit 3 a 64-byte line limit); byte 1 picks where the body is cut; the rest is the
 * body, fed in two or three chunks. Each chunk is a fresh heap copy that is freed
 * right after feed(), so a slice kept across chunks is a use-after-free for ASan.
 * Callbacks read every byte of every slice they get. The same body is then parsed in
 * one chunk by the same parser after a reset; the status and a hash of everything
 * the callbacks saw must match (chunking must never change the result).
 *
 * Not strict: the body is parsed once more with lazy_labels, by a sink that knows the
 * series texts the full parse passed (a scrape cache that has seen this body) and
 * asks for the labels of any other. Everything but the labels it skipped must come
 * out the same, error for error: a known text never lets a bad line through.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

struct digest {
    uint64_t h;
    size_t n;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        d->h ^= b[i];
        d->h *= 1099511628211ULL;
    }
    d->n++;
}

static void mix_str(struct digest *d, struct ss_str s)
{
    if (s.len && !s.p)
        __builtin_trap();
    mix(d, &s.len, sizeof s.len);
    mix(d, s.p, s.len);
}

/* A sample's value (any NaN as one), timestamp, type and line. */
static void mix_tail(struct digest *d, const struct scrape_parsed_sample *s)
{
    uint64_t v;
    memcpy(&v, &s->value, sizeof v);
    if (s->value != s->value)
        v = 1; /* any NaN */
    mix(d, &v, sizeof v);
    mix(d, &s->has_timestamp, sizeof s->has_timestamp);
    mix(d, &s->timestamp_ms, sizeof s->timestamp_ms);
    mix(d, &s->type, sizeof s->type);
    mix(d, &s->line, sizeof s->line);
}

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct digest *d = ud;
    mix_str(d, s->name);
    mix_str(d, s->family);
    for (size_t i = 0; i < s->nlabels; i++) {
        if (s->labels[i].name.len == 8 && memcmp(s->labels[i].name.p, "__name__", 8) == 0)
            __builtin_trap(); /* the label set never carries __name__ */
        mix_str(d, s->labels[i].name);
        mix_str(d, s->labels[i].value);
    }
    mix_tail(d, s);
    return 0;
}

static int on_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct digest *d = ud;
    mix(d, &m->kind, sizeof m->kind);
    mix_str(d, m->family);
    mix_str(d, m->text);
    mix(d, &m->type, sizeof m->type);
    mix(d, &m->line, sizeof m->line);
    return 0;
}

static int feed_copy(struct scrape_parser *p, const uint8_t *data, size_t n,
                     const struct scrape_parser_cb *cb);

/* The lazy check: series texts by hash (a 64-bit collision would only make a
 * spurious report), and a digest of every sample without its labels. */
#define KNOWN_SLOTS 4096
struct lazy_check {
    struct digest d;
    uint64_t known[KNOWN_SLOTS];
    size_t nknown;
    int learn;
};

static uint64_t text_hash(struct ss_str s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.p[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static int known_has(const struct lazy_check *k, uint64_t h, size_t *slot)
{
    size_t i = h % KNOWN_SLOTS;
    for (size_t n = 0; n < KNOWN_SLOTS; n++, i = (i + 1) % KNOWN_SLOTS) {
        if (k->known[i] == h)
            return 1;
        if (!k->known[i]) {
            *slot = i;
            return 0;
        }
    }
    *slot = KNOWN_SLOTS;
    return 0;
}

static int on_sample_lazy(void *ud, const struct scrape_parsed_sample *s)
{
    struct lazy_check *k = ud;
    size_t slot;
    uint64_t h = text_hash(s->series);
    int known = known_has(k, h, &slot);
    if (s->labels_skipped) {
        if (!s->series.len || s->nlabels)
            __builtin_trap(); /* a skipped sample has its text and no labels */
        if (!known)
            return SCRAPE_WANT_LABELS;
    } else if (k->learn && !known && slot < KNOWN_SLOTS && k->nknown < KNOWN_SLOTS / 2) {
        k->known[slot] = h;
        k->nknown++;
    }
    struct digest *d = &k->d;
    mix_str(d, s->series);
    mix_str(d, s->name);
    mix_str(d, s->family);
    mix_tail(d, s);
    return 0;
}

static int on_meta_lazy(void *ud, const struct scrape_parsed_meta *m)
{
    return on_meta(&((struct lazy_check *)ud)->d, m);
}

static int parse_whole(const struct scrape_parser_opts *opts, const uint8_t *data, size_t n,
                       struct lazy_check *k)
{
    struct scrape_parser *p;
    if (scrape_parser_new(opts, &p))
        return SS_ENOMEM;
    struct scrape_parser_cb cb = {.sample = on_sample_lazy, .meta = on_meta_lazy, .ud = k};
    int rc = feed_copy(p, data, n, &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    scrape_parser_free(p);
    return rc;
}

static int feed_copy(struct scrape_parser *p, const uint8_t *data, size_t n,
                     const struct scrape_parser_cb *cb)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return SS_ENOMEM;
    memcpy(copy, data, n);
    int rc = scrape_parser_feed(p, copy, n, cb);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0], cut = data[1];
    data += 2;
    size -= 2;

    struct scrape_parser_opts opts = {
        .format = (mode & 1) ? SCRAPE_FORMAT_OPENMETRICS : SCRAPE_FORMAT_TEXT,
        .strict = (mode & 2) != 0,
        .utf8_names = (mode & 4) != 0,
        .max_line_len = (mode & 8) ? 64 : 0,
    };
    struct scrape_parser *p;
    if (scrape_parser_new(&opts, &p))
        return 0;

    /* Two or three chunks, cut where byte 1 says. */
    size_t c1 = size ? (cut * size) / 255 : 0;
    size_t c2 = (mode & 0x10) ? c1 + (size - c1) / 2 : size;
    struct digest chunked = {1469598103934665603ULL, 0};
    struct scrape_parser_cb cb = {.sample = on_sample, .meta = on_meta, .ud = &chunked};
    int rc = feed_copy(p, data, c1, &cb);
    if (!rc)
        rc = feed_copy(p, data + c1, c2 - c1, &cb);
    if (!rc)
        rc = feed_copy(p, data + c2, size - c2, &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    (void)scrape_parser_error(p);

    /* The same body in one chunk, after a reset of the same parser. */
    scrape_parser_reset(p, opts.format);
    struct digest whole = {1469598103934665603ULL, 0};
    cb.ud = &whole;
    int rc2 = feed_copy(p, data, size, &cb);
    if (!rc2)
        rc2 = scrape_parser_finish(p, &cb);
    if (rc != rc2 || chunked.h != whole.h || chunked.n != whole.n)
        __builtin_trap();
    if (rc && scrape_parser_error(p)[0] == '\0')
        __builtin_trap(); /* every error has a message */
    scrape_parser_free(p);

    if (!opts.strict) {
        static struct lazy_check full, lazy;
        memset(&full, 0, sizeof full);
        full.d.h = 1469598103934665603ULL;
        full.learn = 1;
        struct scrape_parser_opts lo = opts;
        int rf = parse_whole(&lo, data, size, &full);
        if (rf == SS_ENOMEM || full.nknown >= KNOWN_SLOTS / 2)
            return 0;
        memcpy(&lazy, &full, sizeof lazy);
        lazy.d = (struct digest){1469598103934665603ULL, 0};
        lazy.learn = 0;
        lo.lazy_labels = true;
        int rl = parse_whole(&lo, data, size, &lazy);
        if (rf != rl || full.d.h != lazy.d.h || full.d.n != lazy.d.n)
            __builtin_trap();
    }
    return 0;
}
