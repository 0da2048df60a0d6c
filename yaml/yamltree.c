/* yamltree.c: libyaml events in, a positioned node tree out.
 *
 * One pass over libyaml's event stream with an explicit stack (bounded by
 * max_depth), so nesting never recurses on the C stack. Nodes are kept on one list
 * for freeing; child and document arrays grow by doubling. Anchors live in an
 * open-addressing table, at most half full, that is emptied at every document
 * start. Every limit is checked before the allocation it guards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ss.h"
#include "yamltree.h"

/* A node as the tree owns it: the public part first, then the bookkeeping. */
struct ynode {
    struct ss_ynode pub;
    struct ss_ynode **kids; /* pub.kids is this array */
    size_t capkids;
    bool open; /* collection still being parsed: an alias to it would recurse */
    struct ynode *all_next;
    char text[]; /* scalar bytes and a NUL; pub.text points here */
};

struct yanchor {
    char *name;
    struct ynode *node;
};

struct ss_ytree {
    struct ynode *all; /* every node, for freeing */
    struct ss_ynode **roots;
    size_t ndocs, capdocs;
};

/* State of one parse. */
struct builder {
    const struct ss_yaml_opts *opts;
    const char *input; /* for turning libyaml reader offsets into line:column */
    size_t input_len;
    struct ss_ytree *tree;
    struct ss_yaml_error *err;
    size_t nnodes, nrefs, nevents;
    yaml_mark_t last_end;    /* where the last event ended */
    struct yanchor *anchors; /* capanchors slots, allocated on the first anchor */
    size_t nanchors, capanchors;
};

/* ---- errors --------------------------------------------------------------- */

static int fault(struct builder *b, enum ss_yaml_fault f, int line, int col)
{
    b->err->fault = f;
    b->err->line = line;
    b->err->col = col;
    switch (f) {
    case SS_YAML_NOMEM: return SS_ENOMEM;
    case SS_YAML_DEPTH:
    case SS_YAML_NODES:
    case SS_YAML_REFS:
    case SS_YAML_ANCHORS:
    case SS_YAML_SCALAR:
    case SS_YAML_EVENTS:
    case SS_YAML_DOCS: return SS_ELIMIT;
    default: return SS_EPARSE;
    }
}

static int fault_oom(struct builder *b)
{
    return fault(b, SS_YAML_NOMEM, 0, 0);
}

/* libyaml reports reader (encoding) errors as a byte offset only. */
static void offset_to_pos(const struct builder *b, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    if (off > b->input_len)
        off = b->input_len;
    for (size_t i = 0; i < off; i++) {
        if (b->input[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)b->input[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static int parser_fault(struct builder *b, const yaml_parser_t *p)
{
    int line, col;
    if (p->error == YAML_MEMORY_ERROR)
        return fault_oom(b);
    b->err->problem = p->problem; /* libyaml's messages are string literals */
    if (p->error == YAML_READER_ERROR) {
        offset_to_pos(b, p->problem_offset, &line, &col);
        return fault(b, SS_YAML_READER, line, col);
    }
    b->err->context = p->context;
    b->err->context_line = (int)p->context_mark.line + 1;
    return fault(b, SS_YAML_SYNTAX, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1);
}

static int alias_fault(struct builder *b, enum ss_yaml_fault f, const char *name, int line, int col)
{
    snprintf(b->err->name, sizeof b->err->name, "%s", name);
    return fault(b, f, line, col);
}

/* ---- nodes ---------------------------------------------------------------- */

static int mark_line(const yaml_mark_t *m)
{
    return m->line < 1000000000 ? (int)m->line + 1 : 1000000000;
}

static int mark_col(const yaml_mark_t *m)
{
    return m->column < 1000000000 ? (int)m->column + 1 : 1000000000;
}

static struct ynode *node_new(struct ss_ytree *t, enum ss_ykind kind, int line, int col, size_t textlen)
{
    struct ynode *n = calloc(1, sizeof *n + textlen + 1);
    if (!n)
        return NULL;
    n->pub.kind = kind;
    n->pub.line = line;
    n->pub.col = col;
    n->pub.text = n->text;
    n->pub.len = textlen;
    n->all_next = t->all;
    t->all = n;
    return n;
}

/* Append n to the array *v of *len nodes, doubling its capacity *cap when full. */
static int push(struct builder *b, struct ss_ynode ***v, size_t *len, size_t *cap, struct ss_ynode *n)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct ss_ynode **nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return fault_oom(b);
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*len)++] = n;
    return 0;
}

/* Add n under parent, or make it the root of the current document. */
static int attach(struct builder *b, struct ynode *parent, struct ynode *n, int line, int col)
{
    if (b->opts->max_refs && ++b->nrefs > b->opts->max_refs)
        return fault(b, SS_YAML_REFS, line, col);
    if (!parent) {
        if (b->tree->ndocs) /* libyaml starts a document before any node */
            b->tree->roots[b->tree->ndocs - 1] = &n->pub;
        return 0;
    }
    int rc = push(b, &parent->kids, &parent->pub.nkids, &parent->capkids, &n->pub);
    parent->pub.kids = parent->kids;
    return rc;
}

/* ---- anchors -------------------------------------------------------------- */

/* Frees the table rather than emptying it, so a stream of many small documents
 * after one anchor-heavy one does not sweep the big table each time. */
static void anchors_clear(struct builder *b)
{
    for (size_t i = 0; b->anchors && i < b->capanchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    b->anchors = NULL;
    b->nanchors = b->capanchors = 0;
}

static size_t anchor_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot holding name, or the empty slot where it would go. */
static struct yanchor *anchor_slot(struct yanchor *slots, size_t cap, const char *name)
{
    size_t i = anchor_hash(name) & (cap - 1);
    /* Ends: the table is never more than half full. */
    while (slots[i].name && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static struct ynode *anchor_find(const struct builder *b, const char *name)
{
    if (!b->anchors)
        return NULL;
    struct yanchor *a = anchor_slot(b->anchors, b->capanchors, name);
    return a->name ? a->node : NULL;
}

static int anchors_grow(struct builder *b)
{
    size_t ncap = b->capanchors ? b->capanchors * 2 : 64;
    struct yanchor *na = calloc(ncap, sizeof *na);
    if (!na)
        return fault_oom(b);
    for (size_t i = 0; i < b->capanchors; i++)
        if (b->anchors[i].name)
            *anchor_slot(na, ncap, b->anchors[i].name) = b->anchors[i];
    free(b->anchors);
    b->anchors = na;
    b->capanchors = ncap;
    return 0;
}

static int anchor_set(struct builder *b, const char *name, struct ynode *n)
{
    struct yanchor *a = b->anchors ? anchor_slot(b->anchors, b->capanchors, name) : NULL;
    if (a && a->name) { /* YAML allows redefining an anchor: later aliases see the new one */
        if (b->opts->unique_anchors)
            return alias_fault(b, SS_YAML_ANCHOR_TWICE, name, n->pub.line, n->pub.col);
        a->node = n;
        return 0;
    }
    if (b->opts->max_anchors && b->nanchors >= b->opts->max_anchors)
        return fault(b, SS_YAML_ANCHORS, n->pub.line, n->pub.col);
    if (2 * (b->nanchors + 1) > b->capanchors) {
        int rc = anchors_grow(b);
        if (rc)
            return rc;
    }
    a = anchor_slot(b->anchors, b->capanchors, name);
    if (!(a->name = strdup(name)))
        return fault_oom(b);
    a->node = n;
    b->nanchors++;
    return 0;
}

static int doc_start(struct builder *b, int line, int col)
{
    struct ss_ytree *t = b->tree;
    if (b->opts->max_docs && t->ndocs >= b->opts->max_docs)
        return fault(b, SS_YAML_DOCS, line, col);
    int rc = push(b, &t->roots, &t->ndocs, &t->capdocs, NULL); /* the root comes next */
    anchors_clear(b);                                          /* anchors do not reach across documents */
    return rc;
}

/* ---- the event loop -------------------------------------------------------- */

static enum ss_ytag tag_of(const yaml_char_t *tag)
{
    if (!tag || strcmp((const char *)tag, "!") == 0)
        return SS_YTAG_NONE;
    if (strcmp((const char *)tag, YAML_STR_TAG) == 0)
        return SS_YTAG_STR;
    if (strcmp((const char *)tag, YAML_NULL_TAG) == 0)
        return SS_YTAG_NULL;
    return SS_YTAG_OTHER;
}

/* ---- merge keys ------------------------------------------------------------ */

static bool is_merge_key(const struct ss_ynode *k)
{
    return k->kind == SS_YSCALAR && k->plain && k->tag == SS_YTAG_NONE && k->len == 2 &&
           !memcmp(k->text, "<<", 2);
}

static bool has_key(const struct ss_ynode *const *kids, size_t n, const struct ss_ynode *k)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        if (kids[i]->kind == SS_YSCALAR && k->kind == SS_YSCALAR && kids[i]->len == k->len &&
            !memcmp(kids[i]->text, k->text, k->len))
            return true;
    return false;
}

/* With opts.merge_keys, the YAML 1.1 merge key, as go-yaml (Prometheus) and the
 * collector's confmap read it: `<<: *map` or `<<: [*a, *b]` puts the keys of those mappings into this one,
 * unless it has them already (its own keys win wherever they are written; among the
 * merged mappings the first wins). A `<<` whose value is not mappings stays as a key,
 * for the reader to refuse. Merged pairs share the anchored nodes and count as
 * references (max_refs). */
static int merge_keys(struct builder *b, struct ynode *m)
{
    size_t nk = m->pub.nkids;
    bool any = false;
    for (size_t i = 0; i + 1 < nk; i += 2) {
        const struct ss_ynode *k = m->kids[i], *v = m->kids[i + 1];
        if (!is_merge_key(k))
            continue;
        bool ok = v->kind == SS_YMAP || v->kind == SS_YSEQ;
        for (size_t j = 0; v->kind == SS_YSEQ && j < v->nkids; j++)
            ok = ok && v->kids[j]->kind == SS_YMAP;
        if (!ok)
            return 0;
        any = true;
    }
    if (!any)
        return 0;
    /* own keys first, then each merged mapping's new keys in order */
    struct ss_ynode **out = NULL;
    size_t nout = 0, capout = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i + 1 < nk; i += 2) {
        if (is_merge_key(m->kids[i]))
            continue;
        if (!(rc = push(b, &out, &nout, &capout, m->kids[i])))
            rc = push(b, &out, &nout, &capout, m->kids[i + 1]);
    }
    for (size_t i = 0; !rc && i + 1 < nk; i += 2) {
        const struct ss_ynode *v = m->kids[i + 1];
        if (!is_merge_key(m->kids[i]))
            continue;
        size_t nsrc = v->kind == SS_YMAP ? 1 : v->nkids;
        for (size_t j = 0; !rc && j < nsrc; j++) {
            const struct ss_ynode *src = v->kind == SS_YMAP ? v : v->kids[j];
            for (size_t k = 0; !rc && k + 1 < src->nkids; k += 2) {
                if (is_merge_key(src->kids[k]) ||
                    has_key((const struct ss_ynode *const *)out, nout, src->kids[k]))
                    continue;
                if (b->opts->max_refs && (b->nrefs += 2) > b->opts->max_refs) {
                    rc = fault(b, SS_YAML_REFS, src->kids[k]->line, src->kids[k]->col);
                    break;
                }
                if (!(rc = push(b, &out, &nout, &capout, src->kids[k])))
                    rc = push(b, &out, &nout, &capout, src->kids[k + 1]);
            }
        }
    }
    if (rc) {
        free(out);
        return rc;
    }
    free(m->kids);
    m->kids = out;
    m->capkids = capout;
    m->pub.kids = out;
    m->pub.nkids = nout;
    return 0;
}

struct level {
    struct ynode *node;
    char *anchor; /* with anchor_on_close: defined when the node ends */
};

static int build(struct builder *b, yaml_parser_t *parser, struct level *stack)
{
    const struct ss_yaml_opts *o = b->opts;
    unsigned depth = 0;
    int rc = 0;
    bool done = false;
    yaml_event_t ev;

    /* One event per iteration, and every event consumes input, so this ends. */
    while (!done && !rc) {
        if (o->max_events && ++b->nevents > o->max_events)
            return fault(b, SS_YAML_EVENTS, mark_line(&b->last_end), mark_col(&b->last_end));
        if (!yaml_parser_parse(parser, &ev))
            return parser_fault(b, parser);
        b->last_end = ev.end_mark;
        int line = mark_line(&ev.start_mark), col = mark_col(&ev.start_mark);
        struct ynode *parent = depth ? stack[depth - 1].node : NULL;
        struct ynode *n = NULL;
        const char *anchor = NULL;
        bool opens = ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT;
        bool makes = opens || ev.type == YAML_SCALAR_EVENT;

        if (makes && o->max_nodes && ++b->nnodes > o->max_nodes) {
            rc = fault(b, SS_YAML_NODES, line, col);
        } else if (opens && depth >= o->max_depth) {
            rc = fault(b, SS_YAML_DEPTH, line, col);
        } else if (ev.type == YAML_SCALAR_EVENT) {
            if (o->max_scalar_bytes && ev.data.scalar.length > o->max_scalar_bytes) {
                rc = fault(b, SS_YAML_SCALAR, line, col);
            } else if (!(n = node_new(b->tree, SS_YSCALAR, line, col, ev.data.scalar.length))) {
                rc = fault_oom(b);
            } else {
                memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
                n->pub.plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                n->pub.tag = tag_of(ev.data.scalar.tag);
                anchor = (const char *)ev.data.scalar.anchor;
            }
        } else if (opens) {
            bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
            if (!(n = node_new(b->tree, seq ? SS_YSEQ : SS_YMAP, line, col, 0))) {
                rc = fault_oom(b);
            } else {
                n->pub.tag = tag_of(seq ? ev.data.sequence_start.tag : ev.data.mapping_start.tag);
                anchor = (const char *)(seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor);
            }
        }

        switch (rc ? YAML_NO_EVENT : ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT: rc = doc_start(b, line, col); break;
        case YAML_DOCUMENT_END_EVENT:
            /* yaml_parser_load stops here too: the next document is never scanned */
            done = o->stop_at_max_docs && o->max_docs && b->tree->ndocs >= o->max_docs;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                struct level *l = &stack[--depth];
                l->node->open = false;
                if (ev.type == YAML_MAPPING_END_EVENT && o->merge_keys)
                    rc = merge_keys(b, l->node);
                if (!rc && l->anchor) {
                    rc = anchor_set(b, l->anchor, l->node);
                    free(l->anchor);
                    l->anchor = NULL;
                }
            }
            break;
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            struct ynode *target = anchor_find(b, name);
            if (!target)
                rc = alias_fault(b, SS_YAML_ALIAS_UNKNOWN, name, line, col);
            else if (target->open)
                rc = alias_fault(b, SS_YAML_ALIAS_OPEN, name, line, col);
            else
                rc = attach(b, parent, target, line, col);
            break;
        }
        default: break;
        }

        if (!rc && n) {
            if (anchor && !(opens && o->anchor_on_close))
                rc = anchor_set(b, anchor, n);
            if (!rc)
                rc = attach(b, parent, n, line, col);
            if (!rc && opens) {
                n->open = true;
                stack[depth].node = n;
                stack[depth].anchor = NULL;
                if (anchor && o->anchor_on_close && !(stack[depth].anchor = strdup(anchor)))
                    rc = fault_oom(b);
                depth++;
            }
        }
        yaml_event_delete(&ev);
    }
    return rc;
}

int ss_yaml_parse(const char *text, size_t len, const struct ss_yaml_opts *opts, struct ss_ytree **out,
                  struct ss_yaml_error *err)
{
    struct ss_yaml_error scratch;
    struct builder b = {.opts = opts, .input = text ? text : "", .input_len = text ? len : 0};
    struct level *stack = NULL;
    yaml_parser_t parser;
    int rc;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    b.err = err;
    if (!out || !opts || !opts->max_depth)
        return SS_EINVAL;
    *out = NULL;
    b.tree = calloc(1, sizeof *b.tree);
    stack = calloc(opts->max_depth, sizeof *stack);
    if (!b.tree || !stack) {
        rc = fault_oom(&b);
        goto fail;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = fault_oom(&b);
        goto fail;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)b.input, b.input_len);
    rc = build(&b, &parser, stack);
    yaml_parser_delete(&parser);
    if (rc)
        goto fail;
    *out = b.tree;
    b.tree = NULL;
fail:
    for (unsigned i = 0; stack && i < opts->max_depth; i++)
        free(stack[i].anchor);
    free(stack);
    anchors_clear(&b);
    ss_yaml_free(b.tree);
    return rc;
}

void ss_yaml_free(struct ss_ytree *t)
{
    if (!t)
        return;
    struct ynode *n = t->all;
    while (n) {
        struct ynode *next = n->all_next;
        ss_wipe(n->text, n->pub.len); /* scalars may be passwords or tokens */
        free(n->kids);
        free(n);
        n = next;
    }
    free(t->roots);
    free(t);
}

size_t ss_yaml_ndocs(const struct ss_ytree *t)
{
    return t ? t->ndocs : 0;
}

const struct ss_ynode *ss_yaml_root(const struct ss_ytree *t, size_t i)
{
    return t && i < t->ndocs ? t->roots[i] : NULL;
}

/* ---- reading nodes --------------------------------------------------------- */

bool ss_yaml_scalar_is(const struct ss_ynode *n, const char *s)
{
    size_t len = strlen(s);
    return n && n->kind == SS_YSCALAR && n->len == len && memcmp(n->text, s, len) == 0;
}

const struct ss_ynode *ss_yaml_map_get(const struct ss_ynode *map, const char *key)
{
    if (!map || map->kind != SS_YMAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nkids; i += 2)
        if (ss_yaml_scalar_is(map->kids[i], key))
            return map->kids[i + 1];
    return NULL;
}

bool ss_yaml_plain_null(const struct ss_ynode *n)
{
    if (!n || n->kind != SS_YSCALAR || !n->plain)
        return false;
    /* YAML 1.1 null forms, as go-yaml resolves them. */
    const char *v = n->text;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

bool ss_yaml_is_null(const struct ss_ynode *n)
{
    return !n || (n->kind == SS_YSCALAR && (n->tag == SS_YTAG_NULL || ss_yaml_plain_null(n)));
}

const char *ss_yaml_kind_name(enum ss_ykind kind)
{
    switch (kind) {
    case SS_YMAP: return "a mapping";
    case SS_YSEQ: return "a list";
    default: return "a scalar";
    }
}

/* ---- positions in messages -------------------------------------------------- */

size_t ss_yaml_vformat_pos(char *buf, size_t cap, const char *source, int line, int col, const char *fmt,
                           va_list ap)
{
    if (!buf || !cap)
        return 0;
    int n =
        line >= 1 ? snprintf(buf, cap, "%s:%d:%d: ", source, line, col) : snprintf(buf, cap, "%s: ", source);
    if (n < 0 || (size_t)n >= cap)
        return strlen(buf);
    vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    return strlen(buf);
}

size_t ss_yaml_format_pos(char *buf, size_t cap, const char *source, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = ss_yaml_vformat_pos(buf, cap, source, line, col, fmt, ap);
    va_end(ap);
    return n;
}
