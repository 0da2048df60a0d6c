/* yamltree.h: a YAML node tree that remembers where every node came from.
 *
 * ss_yaml_parse runs libyaml's event parser over a buffer and builds a tree of
 * mappings, sequences and scalars. Every node keeps the 1-based line:column of its
 * first character, so the schema readers above it (the collector config, KEDA
 * manifests) can point at the exact spot of a problem. Parsing is iterative and
 * every dimension has a caller-chosen ceiling (depth, nodes, alias uses, anchors,
 * scalar bytes, events, documents), so a hostile file can neither exhaust the C
 * stack nor grow the tree without bound.
 *
 * An alias is the anchored node itself, shared, never a copy; the tree is acyclic.
 * Merge keys ("<<") are not expanded unless the reader asks (merge_keys): otherwise
 * they are ordinary keys and the reader decides what they mean. Anchors are scoped to their document. Scalars
 * are wiped when the tree is freed, because they may be passwords or tokens.
 *
 * Names: ss_yaml_* functions, struct ss_ynode / ss_ytree. libyaml owns yaml_*.
 */
#ifndef SS_YAMLTREE_H
#define SS_YAMLTREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum ss_ykind { SS_YSCALAR, SS_YSEQ, SS_YMAP };

/* The explicit tag a node was written with, as far as readers care. */
enum ss_ytag {
    SS_YTAG_NONE = 0, /* no tag, or a non-specific "!" */
    SS_YTAG_STR,      /* !!str */
    SS_YTAG_NULL,     /* !!null */
    SS_YTAG_OTHER,    /* any other tag */
};

/* A node. Read-only for readers; owned by its tree. */
struct ss_ynode {
    enum ss_ykind kind;
    int line, col; /* 1-based position of the node's first character */
    /* Scalars: the value, NUL-terminated; len is authoritative (a double-quoted
     * "\0" can put a NUL inside). Empty "" for collections. */
    const char *text;
    size_t len;
    bool plain;       /* scalar written without quotes or | > (YAML plain style) */
    enum ss_ytag tag; /* explicit tag, if any */
    /* Sequences: the items. Mappings: key, value, key, value, ... in document
     * order, repeated keys included (readers decide whether that is an error). */
    struct ss_ynode *const *kids;
    size_t nkids;
};

struct ss_ytree; /* the documents of one stream */

/* Limits and choices for one parse. A zero limit means "no limit", except
 * max_depth, which must be at least 1. */
struct ss_yaml_opts {
    unsigned max_depth;      /* nested mappings and sequences */
    size_t max_nodes;        /* nodes created */
    size_t max_refs;         /* nodes created plus alias uses */
    size_t max_anchors;      /* distinct anchor names in one document */
    size_t max_scalar_bytes; /* bytes of one scalar */
    size_t max_events;       /* libyaml parser events, stream start and end included */
    size_t max_docs;         /* documents in the stream */
    /* By default the anchor of a mapping or sequence is defined where the node
     * starts, so an alias inside the node to itself fails with
     * SS_YAML_ALIAS_OPEN. When set, it is defined where the node ends instead: an
     * alias inside then sees the anchor's previous definition, or none
     * (SS_YAML_ALIAS_UNKNOWN). Scalar anchors are defined at once either way. */
    bool anchor_on_close;
    /* What libyaml's document loader (yaml_parser_load) does, for readers that
     * came from it. With stop_at_max_docs, the stream ends quietly after max_docs
     * documents instead of failing with SS_YAML_DOCS: the rest is not parsed, so
     * an error there goes unseen (yaml.v2's Unmarshal reads only the first
     * document too). With unique_anchors, an anchor defined twice in one document
     * fails with SS_YAML_ANCHOR_TWICE where it is defined again. */
    bool stop_at_max_docs;
    bool unique_anchors;
    /* Expand YAML 1.1 merge keys as go-yaml (v2 and v3) does, for readers of
     * configs Prometheus or the OpenTelemetry collector also read: `<<: *map` or
     * `<<: [*a, *b]` puts those mappings' keys into the mapping unless it has them
     * (its own keys win wherever written; among merged mappings the first wins). A
     * `<<` whose value is not mappings stays an ordinary key. Merged pairs share the
     * anchored nodes and count against max_refs. */
    bool merge_keys;
};

enum ss_yaml_fault {
    SS_YAML_OK = 0,
    SS_YAML_NOMEM,         /* allocation failed */
    SS_YAML_READER,        /* bytes libyaml cannot decode (bad UTF-8, ...): problem */
    SS_YAML_SYNTAX,        /* not YAML: problem, and context/context_line if known */
    SS_YAML_DEPTH,         /* over max_depth */
    SS_YAML_NODES,         /* over max_nodes */
    SS_YAML_REFS,          /* over max_refs */
    SS_YAML_ANCHORS,       /* over max_anchors */
    SS_YAML_SCALAR,        /* over max_scalar_bytes */
    SS_YAML_EVENTS,        /* over max_events; line:col is where the last event ended */
    SS_YAML_DOCS,          /* over max_docs */
    SS_YAML_ALIAS_UNKNOWN, /* alias to an anchor not (yet) defined: name */
    SS_YAML_ALIAS_OPEN,    /* alias to a collection from inside it: name */
    SS_YAML_ANCHOR_TWICE,  /* with unique_anchors, an anchor defined again: name */
};

/* Why a parse failed. The readers word their own messages from this. */
struct ss_yaml_error {
    enum ss_yaml_fault fault;
    int line, col;       /* where, 1-based; 0:0 for SS_YAML_NOMEM */
    const char *problem; /* libyaml's description (static text), or NULL */
    const char *context; /* libyaml's "while parsing ..." (static text), or NULL */
    int context_line;    /* 1-based line the context started on */
    char name[512];      /* the anchor's name (ALIAS_*, ANCHOR_TWICE), cut to fit */
};

/* Parse len bytes of text (need not be NUL-terminated). On success *out is the
 * tree, which the caller frees with ss_yaml_free; it borrows nothing from text.
 * On failure *out is NULL, *err says why, and the result is SS_ENOMEM (NOMEM),
 * SS_ELIMIT (a limit) or SS_EPARSE (anything else). err may be NULL. */
int ss_yaml_parse(const char *text, size_t len, const struct ss_yaml_opts *opts, struct ss_ytree **out,
                  struct ss_yaml_error *err);
void ss_yaml_free(struct ss_ytree *t); /* wipes scalars; NULL is a no-op */

size_t ss_yaml_ndocs(const struct ss_ytree *t);
/* The root of document i; NULL when there is no such document. */
const struct ss_ynode *ss_yaml_root(const struct ss_ytree *t, size_t i);

/* ---- reading nodes ------------------------------------------------------- */

/* n is a scalar whose bytes are exactly s. False for NULL. */
bool ss_yaml_scalar_is(const struct ss_ynode *n, const char *s);
/* The value of the first key that is the scalar `key` (matched verbatim), or NULL
 * when map is NULL, not a mapping, or has no such key. */
const struct ss_ynode *ss_yaml_map_get(const struct ss_ynode *map, const char *key);
/* n is a plain scalar spelled as a YAML 1.1 null: "", "~", "null", "Null" or
 * "NULL". Tags are not looked at. */
bool ss_yaml_plain_null(const struct ss_ynode *n);
/* n is absent (NULL), tagged !!null, or ss_yaml_plain_null. */
bool ss_yaml_is_null(const struct ss_ynode *n);
/* "a mapping", "a list" or "a scalar", for messages. */
const char *ss_yaml_kind_name(enum ss_ykind kind);

/* ---- positions in messages ----------------------------------------------- */

/* Write "source:line:col: message" to buf, or "source: message" when line < 1.
 * When even the position does not fit, buf holds as much of it as fits and no
 * message. Returns strlen(buf). cap 0 writes nothing. */
size_t ss_yaml_format_pos(char *buf, size_t cap, const char *source, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
size_t ss_yaml_vformat_pos(char *buf, size_t cap, const char *source, int line, int col, const char *fmt,
                           va_list ap) __attribute__((format(printf, 6, 0)));

#endif
