/* arena.c: chunked bump allocator. Earlier allocations never move, so slices into an
 * arena stay valid while it grows; reset keeps the first chunk for reuse. */
#include <stdlib.h>
#include <string.h>

#include "ss.h"

struct ss_arena_chunk {
    struct ss_arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(8) unsigned char mem[];
};

void ss_arena_init(struct ss_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->used_total = 0;
}

void *ss_arena_alloc(struct ss_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct ss_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = a->chunk_size;
        if (cap < n)
            cap = n;
        struct ss_arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

char *ss_arena_strndup(struct ss_arena *a, const char *p, size_t n)
{
    char *s = ss_arena_alloc(a, n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void ss_arena_reset(struct ss_arena *a)
{
    /* Keep only the oldest chunk (the tail): it is the steady-state size. When the
     * arena had to grow, keep the largest chunk instead so the next use fits. */
    struct ss_arena_chunk *keep = NULL, *c = a->head;
    while (c) {
        struct ss_arena_chunk *next = c->next;
        if (!keep || c->cap > keep->cap) {
            if (keep)
                free(keep);
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
    a->used_total = 0;
}

void ss_arena_free(struct ss_arena *a)
{
    struct ss_arena_chunk *c = a->head;
    while (c) {
        struct ss_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_total = 0;
}
