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
    uint64_t v = 0;
    memcpy(&v, p, n);
    return mix64(h, v ^ ((uint64_t)s.len << 56) ^ 0xA5A5A5A5ULL);
}

uint64_t ss_hash_str(uint64_t h, struct ss_str s)
{
    return hash_str(h, s);
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
