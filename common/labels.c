/* labels.c: small mutable label sets with Prometheus labels.Builder semantics. */
#include <stdlib.h>
#include <string.h>

#include "ss.h"

void ss_labels_init(struct ss_labels *ls)
{
    ls->v = NULL;
    ls->n = ls->cap = 0;
    ss_arena_init(&ls->arena, 1024);
}

void ss_labels_reset(struct ss_labels *ls)
{
    ls->n = 0;
    ss_arena_reset(&ls->arena);
}

void ss_labels_free(struct ss_labels *ls)
{
    free(ls->v);
    ls->v = NULL;
    ls->n = ls->cap = 0;
    ss_arena_free(&ls->arena);
}

int ss_labels_compact(struct ss_labels *ls)
{
    size_t bytes = 0;
    for (size_t i = 0; i < ls->n; i++)
        bytes += ((ls->v[i].name.len + 8) & ~(size_t)7) + ((ls->v[i].value.len + 8) & ~(size_t)7);
    struct ss_arena a;
    ss_arena_init(&a, bytes ? bytes : 8);
    struct ss_label *v = ls->n ? malloc(ls->n * sizeof *v) : NULL;
    if (ls->n && !v)
        return SS_ENOMEM;
    for (size_t i = 0; i < ls->n; i++) {
        const char *name = ss_arena_strndup(&a, ls->v[i].name.p, ls->v[i].name.len);
        const char *value = ss_arena_strndup(&a, ls->v[i].value.p, ls->v[i].value.len);
        if (!name || !value) {
            ss_arena_free(&a);
            free(v);
            return SS_ENOMEM;
        }
        v[i] = (struct ss_label){{name, ls->v[i].name.len}, {value, ls->v[i].value.len}};
    }
    free(ls->v);
    ss_arena_free(&ls->arena);
    ls->v = v;
    ls->cap = ls->n;
    ls->arena = a;
    ls->arena.chunk_size = 1024; /* later additions take chunks of the usual size */
    return 0;
}

int ss_labels_push(struct ss_labels *ls, struct ss_str name, struct ss_str value)
{
    if (ls->n == ls->cap) {
        size_t ncap = ls->cap ? ls->cap * 2 : 16;
        struct ss_label *nv = realloc(ls->v, ncap * sizeof *nv);
        if (!nv)
            return SS_ENOMEM;
        ls->v = nv;
        ls->cap = ncap;
    }
    ls->v[ls->n].name = name;
    ls->v[ls->n].value = value;
    ls->n++;
    return 0;
}

static ssize_t find(const struct ss_labels *ls, struct ss_str name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ss_str_eq(ls->v[i].name, name))
            return (ssize_t)i;
    return -1;
}

const struct ss_str *ss_labels_get(const struct ss_labels *ls, struct ss_str name)
{
    ssize_t i = find(ls, name);
    return i < 0 ? NULL : &ls->v[i].value;
}

void ss_labels_del(struct ss_labels *ls, struct ss_str name)
{
    ssize_t i = find(ls, name);
    if (i < 0)
        return;
    memmove(&ls->v[i], &ls->v[i + 1], (ls->n - (size_t)i - 1) * sizeof ls->v[0]);
    ls->n--;
}

int ss_labels_set(struct ss_labels *ls, struct ss_str name, struct ss_str value)
{
    if (value.len == 0) {
        ss_labels_del(ls, name);
        return 0;
    }
    ssize_t i = find(ls, name);
    if (i >= 0) {
        ls->v[i].value = value;
        return 0;
    }
    return ss_labels_push(ls, name, value);
}

int ss_labels_setc(struct ss_labels *ls, struct ss_str name, struct ss_str value)
{
    if (value.len == 0) {
        ss_labels_del(ls, name);
        return 0;
    }
    char *v = ss_arena_strndup(&ls->arena, value.p, value.len);
    if (!v)
        return SS_ENOMEM;
    ssize_t i = find(ls, name);
    if (i >= 0) {
        ls->v[i].value = (struct ss_str){v, value.len};
        return 0;
    }
    char *n = ss_arena_strndup(&ls->arena, name.p, name.len);
    if (!n)
        return SS_ENOMEM;
    return ss_labels_push(ls, (struct ss_str){n, name.len}, (struct ss_str){v, value.len});
}

void ss_labels_sort(struct ss_labels *ls)
{
    for (size_t i = 1; i < ls->n; i++) {
        struct ss_label x = ls->v[i];
        size_t j = i;
        while (j > 0 && ss_str_cmp(ls->v[j - 1].name, x.name) > 0) {
            ls->v[j] = ls->v[j - 1];
            j--;
        }
        ls->v[j] = x;
    }
}

int ss_labels_copy(struct ss_labels *dst, const struct ss_labels *src)
{
    ss_labels_reset(dst);
    for (size_t i = 0; i < src->n; i++) {
        char *n = ss_arena_strndup(&dst->arena, src->v[i].name.p, src->v[i].name.len);
        char *v = ss_arena_strndup(&dst->arena, src->v[i].value.p, src->v[i].value.len);
        if (!n || !v)
            return SS_ENOMEM;
        int rc = ss_labels_push(dst, (struct ss_str){n, src->v[i].name.len},
                                (struct ss_str){v, src->v[i].value.len});
        if (rc)
            return rc;
    }
    return 0;
}

/* Word-at-a-time multiplicative hash over name, value, name, value ... Each string
 * ends with a block that carries its length, so moving bytes between a name and a
 * value ({a="bc"} vs {ab="c"}) changes the hash. Equal hashes are treated as the same
 * series inside one target, so this must mix well; it is 8x fewer steps than FNV-1a,
 * which was the top symbol in the scrape profile. */
static inline uint64_t mix64(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

/* The last n < 8 bytes at p as one word, as memcpy(&v, p, n) into a zeroed v gives
 * them. memcpy of a variable length became a byte loop through the stack (a store-
 * forwarding stall on every string); on little-endian machines the same word comes
 * from at most three loads: the string's last 8 bytes shifted down when it has 8
 * (len >= 8), else two overlapping 4-byte loads, else single bytes. */
static inline uint64_t tail_word(const char *p, size_t n, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!n)
        return 0;
    if (len >= 8) {
        uint64_t v;
        memcpy(&v, p + n - 8, 8);
        return v >> (8 * (8 - n));
    }
    const unsigned char *u = (const unsigned char *)p;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
    }
    return (uint64_t)u[0] | (uint64_t)u[n / 2] << (8 * (n / 2)) | (uint64_t)u[n - 1] << (8 * (n - 1));
#else
    (void)len;
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
#endif
}

static inline uint64_t hash_str(uint64_t h, struct ss_str s)
{
    const char *p = s.p;
    size_t n = s.len;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix64(h, v);
        p += 8;
        n -= 8;
    }
    return mix64(h, tail_word(p, n, s.len) ^ ((uint64_t)s.len << 56) ^ 0xA5A5A5A5ULL);
}

uint64_t ss_hash_str(uint64_t h, struct ss_str s)
{
    return hash_str(h, s);
}

/* The product of a and b folded to 64 bits (low half ^ high half): every input bit
 * reaches every output bit in one step. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The scrape cache's key of a series' exposed text, compared by this hash alone, so
 * it must keep distinct texts apart: 16 bytes a step through one 64x64->128 bit
 * multiplication, which spreads every bit of both words over the whole state (the
 * earlier word-at-a-time xor-multiply-shift chains let two bytes 8 apart cancel:
 * 18 of 100 series of one grid merged). The first factor's constant has only bytes
 * that valid UTF-8 never holds (F5..FF), so a text word cannot zero it; the last
 * 1..16 bytes are read as two words, overlapping, with the length mixed in. About as
 * fast as the one-lane chain was slow: one multiplication per 16 bytes. */
#define TEXT_K1 0xF9F7FDFBF6FEFAF5ULL
#define TEXT_K2 0x9E3779B97F4A7C15ULL
#define TEXT_K3 0xD6E8FEB86659FD93ULL
uint64_t ss_hash_text(uint64_t h, struct ss_str s)
{
    const char *p = s.p;
    size_t n = s.len;
    h ^= TEXT_K2;
    for (; n > 16; p += 16, n -= 16) {
        uint64_t v, w;
        memcpy(&v, p, 8);
        memcpy(&w, p + 8, 8);
        h = mum(v ^ TEXT_K1, w ^ h);
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else if (n) {
        a = tail_word(p, n, s.len);
    }
    h = mum(a ^ TEXT_K1, b ^ h);
    return mum(h ^ TEXT_K3 ^ (uint64_t)s.len, TEXT_K2);
}

uint64_t ss_labels_hash(const struct ss_labels *ls)
{
    uint64_t h = 0x243F6A8885A308D3ULL;
    for (size_t i = 0; i < ls->n; i++) {
        h = hash_str(h, ls->v[i].name);
        h = hash_str(h, ls->v[i].value);
    }
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 32);
}

uint64_t ss_labels_group_hash(const struct ss_label *v, size_t n)
{
    uint64_t h = 0x6A09E667F3BCC908ULL;
    for (size_t i = 0; i < n; i++) {
        struct ss_str k = v[i].name;
        if (k.len && (unsigned char)k.p[0] > 'j')
            break; /* sorted by name: nothing after "job" is part of the key */
        if ((k.len == 8 && !memcmp(k.p, "__name__", 8)) || (k.len == 8 && !memcmp(k.p, "instance", 8)) ||
            (k.len == 3 && !memcmp(k.p, "job", 3)))
            h = hash_str(h, v[i].value);
    }
    return h;
}

long ss_labels_merge_sorted(const struct ss_label *a, size_t na, const struct ss_label *b, size_t nb,
                            struct ss_label *out, size_t cap)
{
    size_t i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        if (n == cap)
            return -1;
        int c = i == na ? 1 : j == nb ? -1 : ss_str_cmp(a[i].name, b[j].name);
        if (c <= 0) {
            out[n++] = a[i++];
            if (c == 0)
                j++;
        } else {
            out[n++] = b[j++];
        }
    }
    return (long)n;
}

/* ---- the remote-write form of a label set --------------------------------------- */

static inline size_t varint_len(uint64_t v)
{
    return (size_t)((63 - __builtin_clzll(v | 1)) / 7 + 1);
}

static inline size_t string_field_len(size_t len)
{
    return len ? 1 + varint_len(len) + len : 0;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *put_string_field(uint8_t *p, uint8_t tag, struct ss_str s)
{
    if (!s.len)
        return p;
    *p++ = tag;
    p = put_varint(p, s.len);
    memcpy(p, s.p, s.len);
    return p + s.len;
}

size_t ss_labels_wire_size(const struct ss_label *l, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t body = string_field_len(l[i].name.len) + string_field_len(l[i].value.len);
        total += 1 + varint_len(body) + body;
    }
    return total;
}

uint8_t *ss_labels_wire_write(uint8_t *p, const struct ss_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x0a; /* TimeSeries.labels */
        p = put_varint(p, string_field_len(l[i].name.len) + string_field_len(l[i].value.len));
        p = put_string_field(p, 0x0a, l[i].name);  /* Label.name */
        p = put_string_field(p, 0x12, l[i].value); /* Label.value */
    }
    return p;
}

/* A varint of at most 5 bytes (lengths below 2^32); 0 bytes read when malformed. */
static inline size_t get_len(const uint8_t *p, size_t avail, size_t *out)
{
    if (avail && p[0] < 0x80) { /* the usual case: below 128 */
        *out = p[0];
        return 1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < avail && i < 5; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = (size_t)v;
            return i + 1;
        }
    }
    return 0;
}

long ss_labels_wire_read(const void *buf, size_t len, struct ss_label *out, uint32_t *ends, size_t cap)
{
    const uint8_t *p = buf;
    size_t off = 0, n = 0;
    while (off < len) {
        size_t body, k;
        if (n == cap || p[off] != 0x0a || !(k = get_len(p + off + 1, len - off - 1, &body)) ||
            body > len - off - 1 - k)
            return -1;
        size_t at = off + 1 + k, end = at + body;
        out[n] = (struct ss_label){{"", 0}, {"", 0}};
        while (at < end) {
            uint8_t tag = p[at];
            size_t sl;
            if ((tag != 0x0a && tag != 0x12) || !(k = get_len(p + at + 1, end - at - 1, &sl)) ||
                sl > end - at - 1 - k)
                return -1;
            struct ss_str s = {(const char *)p + at + 1 + k, sl};
            if (tag == 0x0a)
                out[n].name = s;
            else
                out[n].value = s;
            at += 1 + k + sl;
        }
        if (ends)
            ends[n] = (uint32_t)end;
        n++;
        off = end;
    }
    return (long)n;
}
