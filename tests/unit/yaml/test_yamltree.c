/* test_yamltree.c: the YAML tree: node kinds and text, positions, anchors and
 * aliases, merge keys, repeated keys, every limit, malformed input, and the
 * file:line:col formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ss.h"
#include "yamltree.h"

static const struct ss_yaml_opts k_opts = {.max_depth = 64};

/* Parse text that must load; returns the root of its only document. */
static const struct ss_ynode *load(const char *text, const struct ss_yaml_opts *opts, struct ss_ytree **t)
{
    struct ss_yaml_error e;
    int rc = ss_yaml_parse(text, strlen(text), opts ? opts : &k_opts, t, &e);
    if (rc != 0)
        fail_msg("parse failed: fault %d at %d:%d (%s)", (int)e.fault, e.line, e.col,
                 e.problem ? e.problem : "");
    assert_non_null(*t);
    return ss_yaml_root(*t, 0);
}

/* Parse text that must load, and free it. */
static void load_ok(const char *text, const struct ss_yaml_opts *opts)
{
    struct ss_ytree *t;
    assert_non_null(load(text, opts, &t));
    ss_yaml_free(t);
}

/* Parse text that must fail with fault at line:col; returns the result code. */
static int load_fail(const char *text, size_t len, const struct ss_yaml_opts *opts, enum ss_yaml_fault fault,
                     int line, int col, struct ss_yaml_error *e)
{
    struct ss_ytree *t = (struct ss_ytree *)1; /* must be reset to NULL */
    int rc = ss_yaml_parse(text, len, opts ? opts : &k_opts, &t, e);
    assert_int_not_equal(rc, 0);
    assert_null(t);
    if (e->fault != fault || e->line != line || e->col != col)
        fail_msg("%s: fault %d at %d:%d, want %d at %d:%d", text, (int)e->fault, e->line, e->col, (int)fault,
                 line, col);
    return rc;
}

static void assert_scalar(const struct ss_ynode *n, const char *text, int line, int col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, SS_YSCALAR);
    assert_int_equal(n->len, strlen(text));
    assert_string_equal(n->text, text);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void test_scalars_maps_seqs(void **state)
{
    (void)state;
    struct ss_ytree *t;
    const struct ss_ynode *root = load("a: 1\n"
                                       "b: [x, 'y', \"z\"]\n"
                                       "c: {d: e}\n"
                                       "f:\n"
                                       "  - |\n"
                                       "    block\n"
                                       "g: \"nul\\0inside\"\n",
                                       NULL, &t);
    assert_int_equal(ss_yaml_ndocs(t), 1);
    assert_null(ss_yaml_root(t, 1));
    assert_int_equal(root->kind, SS_YMAP);
    assert_int_equal(root->nkids, 10); /* key, value, ... */
    assert_string_equal(root->text, "");
    assert_scalar(root->kids[0], "a", 1, 1);
    assert_scalar(root->kids[1], "1", 1, 4);
    assert_true(root->kids[1]->plain);

    const struct ss_ynode *b = ss_yaml_map_get(root, "b");
    assert_non_null(b);
    assert_int_equal(b->kind, SS_YSEQ);
    assert_int_equal(b->nkids, 3);
    assert_scalar(b->kids[0], "x", 2, 5);
    assert_true(b->kids[0]->plain);
    assert_scalar(b->kids[1], "y", 2, 8);
    assert_false(b->kids[1]->plain);
    assert_scalar(b->kids[2], "z", 2, 13);
    assert_false(b->kids[2]->plain);

    const struct ss_ynode *c = ss_yaml_map_get(root, "c");
    assert_int_equal(c->kind, SS_YMAP);
    assert_scalar(ss_yaml_map_get(c, "d"), "e", 3, 8);
    assert_null(ss_yaml_map_get(c, "e")); /* values are not keys */
    assert_null(ss_yaml_map_get(b, "x")); /* not a mapping */
    assert_null(ss_yaml_map_get(NULL, "x"));

    const struct ss_ynode *f = ss_yaml_map_get(root, "f");
    assert_int_equal(f->kind, SS_YSEQ);
    assert_scalar(f->kids[0], "block\n", 5, 5);
    assert_false(f->kids[0]->plain);

    const struct ss_ynode *g = ss_yaml_map_get(root, "g");
    assert_int_equal(g->len, 10); /* "nul" NUL "inside": len is authoritative */
    assert_memory_equal(g->text, "nul\0inside", 11);

    assert_true(ss_yaml_scalar_is(root->kids[0], "a"));
    assert_false(ss_yaml_scalar_is(root->kids[0], "ab"));
    assert_false(ss_yaml_scalar_is(c, ""));
    assert_false(ss_yaml_scalar_is(NULL, "a"));
    assert_string_equal(ss_yaml_kind_name(SS_YMAP), "a mapping");
    assert_string_equal(ss_yaml_kind_name(SS_YSEQ), "a list");
    assert_string_equal(ss_yaml_kind_name(SS_YSCALAR), "a scalar");
    ss_yaml_free(t);
}

static void test_empty_streams(void **state)
{
    (void)state;
    struct ss_ytree *t;
    struct ss_yaml_error e;
    assert_int_equal(ss_yaml_parse(NULL, 0, &k_opts, &t, &e), 0);
    assert_int_equal(ss_yaml_ndocs(t), 0);
    assert_null(ss_yaml_root(t, 0));
    ss_yaml_free(t);
    assert_int_equal(ss_yaml_parse("# comment only\n", 15, &k_opts, &t, &e), 0);
    assert_int_equal(ss_yaml_ndocs(t), 0);
    ss_yaml_free(t);
    /* "---" alone is a document whose root is an empty plain scalar: a null. */
    assert_int_equal(ss_yaml_parse("---\n", 4, &k_opts, &t, &e), 0);
    assert_int_equal(ss_yaml_ndocs(t), 1);
    assert_true(ss_yaml_is_null(ss_yaml_root(t, 0)));
    ss_yaml_free(t);
    ss_yaml_free(NULL);
    assert_int_equal(ss_yaml_ndocs(NULL), 0);
    assert_int_equal(ss_yaml_parse("a", 1, NULL, &t, &e), SS_EINVAL);
    const struct ss_yaml_opts no_depth = {0};
    assert_int_equal(ss_yaml_parse("a", 1, &no_depth, &t, &e), SS_EINVAL);
}

static void test_positions(void **state)
{
    (void)state;
    struct ss_ytree *t;
    /* Columns count characters, not bytes: "é" is one column. */
    const struct ss_ynode *root = load("# comment\n"
                                       "top:\n"
                                       "  é: [1,\n"
                                       "      {k: v}]\n"
                                       "  seq:\n"
                                       "  - x\n"
                                       "  -    y\n",
                                       NULL, &t);
    assert_scalar(root->kids[0], "top", 2, 1);
    const struct ss_ynode *top = root->kids[1];
    assert_int_equal(top->kind, SS_YMAP);
    assert_int_equal(top->line, 3);
    assert_int_equal(top->col, 3);
    assert_scalar(top->kids[0], "é", 3, 3);
    const struct ss_ynode *flow = top->kids[1];
    assert_int_equal(flow->line, 3);
    assert_int_equal(flow->col, 6);
    assert_scalar(flow->kids[0], "1", 3, 7);
    assert_int_equal(flow->kids[1]->line, 4);
    assert_int_equal(flow->kids[1]->col, 7);
    assert_scalar(flow->kids[1]->kids[1], "v", 4, 11);
    const struct ss_ynode *seq = ss_yaml_map_get(top, "seq");
    assert_int_equal(seq->line, 6);
    assert_int_equal(seq->col, 3);
    assert_scalar(seq->kids[0], "x", 6, 5);
    assert_scalar(seq->kids[1], "y", 7, 8);
    ss_yaml_free(t);
}

static void test_nulls_and_tags(void **state)
{
    (void)state;
    struct ss_ytree *t;
    const struct ss_ynode *root = load("a: ~\n"
                                       "b: null\n"
                                       "c: Null\n"
                                       "d: NULL\n"
                                       "e:\n"
                                       "f: \"null\"\n"
                                       "g: nil\n"
                                       "h: !!null x\n"
                                       "i: !!str null\n"
                                       "j: !!int 3\n"
                                       "k: ! 4\n"
                                       "l: !!null {}\n",
                                       NULL, &t);
    static const struct {
        const char *key;
        bool plain_null, is_null;
        enum ss_ytag tag;
    } want[] = {
        {"a", true, true, SS_YTAG_NONE},   {"b", true, true, SS_YTAG_NONE},
        {"c", true, true, SS_YTAG_NONE},   {"d", true, true, SS_YTAG_NONE},
        {"e", true, true, SS_YTAG_NONE},   {"f", false, false, SS_YTAG_NONE},
        {"g", false, false, SS_YTAG_NONE}, {"h", false, true, SS_YTAG_NULL},
        {"i", true, true, SS_YTAG_STR},    {"j", false, false, SS_YTAG_OTHER},
        {"k", false, false, SS_YTAG_NONE}, {"l", false, false, SS_YTAG_NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct ss_ynode *v = ss_yaml_map_get(root, want[i].key);
        assert_non_null(v);
        if (ss_yaml_plain_null(v) != want[i].plain_null || ss_yaml_is_null(v) != want[i].is_null ||
            v->tag != want[i].tag)
            fail_msg("%s: plain_null %d is_null %d tag %d", want[i].key, ss_yaml_plain_null(v),
                     ss_yaml_is_null(v), (int)v->tag);
    }
    assert_true(ss_yaml_is_null(NULL));
    assert_false(ss_yaml_plain_null(NULL));
    ss_yaml_free(t);
}

static void test_anchors_and_aliases(void **state)
{
    (void)state;
    struct ss_ytree *t;
    const struct ss_ynode *root = load("base: &b {x: 1}\n"
                                       "copy: *b\n"
                                       "s: &s text\n"
                                       "list: [*s, *b]\n"
                                       "s2: &s other\n"
                                       "later: *s\n",
                                       NULL, &t);
    const struct ss_ynode *base = ss_yaml_map_get(root, "base");
    /* An alias is the anchored node itself, with the anchor's position. */
    assert_ptr_equal(ss_yaml_map_get(root, "copy"), base);
    const struct ss_ynode *list = ss_yaml_map_get(root, "list");
    assert_scalar(list->kids[0], "text", 3, 4);
    assert_ptr_equal(list->kids[1], base);
    /* A redefined anchor: later aliases see the new node. */
    assert_scalar(ss_yaml_map_get(root, "later"), "other", 5, 5);
    ss_yaml_free(t);

    /* Anchors are scoped to their document. */
    struct ss_yaml_error e;
    static const char two_docs[] = "a: &x 1\n---\nb: *x\n";
    assert_int_equal(load_fail(two_docs, sizeof two_docs - 1, NULL, SS_YAML_ALIAS_UNKNOWN, 3, 4, &e),
                     SS_EPARSE);
    assert_string_equal(e.name, "x");

    static const char unknown[] = "a: *nope\n";
    load_fail(unknown, sizeof unknown - 1, NULL, SS_YAML_ALIAS_UNKNOWN, 1, 4, &e);
    assert_string_equal(e.name, "nope");

    /* By default a collection's anchor is defined where it starts: an alias to it
     * from inside would make a cycle, and is refused. */
    static const char self[] = "a: 1\nloop: &a\n  - x\n  - *a\n";
    assert_int_equal(load_fail(self, sizeof self - 1, NULL, SS_YAML_ALIAS_OPEN, 4, 5, &e), SS_EPARSE);
    assert_string_equal(e.name, "a");

    /* With anchor_on_close it is defined where it ends: inside, the alias sees the
     * previous definition, or none; after, the collection. */
    const struct ss_yaml_opts on_close = {.max_depth = 64, .anchor_on_close = true};
    static const char shadow[] = "a: &a 1\nloop: &a\n  - *a\nafter: *a\n";
    root = load(shadow, &on_close, &t);
    const struct ss_ynode *loop = ss_yaml_map_get(root, "loop");
    assert_scalar(loop->kids[0], "1", 1, 4);
    assert_ptr_equal(ss_yaml_map_get(root, "after"), loop);
    ss_yaml_free(t);
    load_fail(self, sizeof self - 1, &on_close, SS_YAML_ALIAS_UNKNOWN, 4, 5, &e);

    /* Without anchor_on_close, the same input keeps the last definition. */
    root = load("a: &a 1\nm: &a\n  k: &a 2\nafter: *a\n", NULL, &t);
    assert_scalar(ss_yaml_map_get(root, "after"), "2", 3, 6);
    ss_yaml_free(t);

    /* With unique_anchors, as yaml_parser_load, a second definition is refused
     * where it is, collections included; each document starts afresh. */
    const struct ss_yaml_opts unique = {.max_depth = 64, .unique_anchors = true};
    static const char twice[] = "a: &x 1\nb: &x 2\n";
    assert_int_equal(load_fail(twice, sizeof twice - 1, &unique, SS_YAML_ANCHOR_TWICE, 2, 4, &e), SS_EPARSE);
    assert_string_equal(e.name, "x");
    static const char twice_map[] = "a: &x 1\nm: &x\n  k: v\n";
    load_fail(twice_map, sizeof twice_map - 1, &unique, SS_YAML_ANCHOR_TWICE, 2, 4, &e);
    load("a: &x 1\nb: *x\n---\nc: &x 2\n", &unique, &t);
    assert_int_equal(ss_yaml_ndocs(t), 2);
    ss_yaml_free(t);
}

static void test_merge_keys_are_plain_keys(void **state)
{
    (void)state;
    struct ss_ytree *t;
    /* "<<" is not expanded: it is an ordinary key whose value is the aliased map. */
    const struct ss_ynode *root = load("base: &b {x: 1, y: 2}\n"
                                       "m:\n"
                                       "  <<: *b\n"
                                       "  y: 3\n",
                                       NULL, &t);
    const struct ss_ynode *m = ss_yaml_map_get(root, "m");
    assert_int_equal(m->nkids, 4);
    assert_scalar(m->kids[0], "<<", 3, 3);
    assert_ptr_equal(ss_yaml_map_get(m, "<<"), ss_yaml_map_get(root, "base"));
    assert_null(ss_yaml_map_get(m, "x"));
    assert_scalar(ss_yaml_map_get(m, "y"), "3", 4, 6);
    ss_yaml_free(t);
}

/* With merge_keys, go-yaml's expansion: own keys win wherever written, the first of
 * several merged maps wins, a non-map value stays a key, merged pairs count as refs. */
static void test_merge_keys_expanded(void **state)
{
    (void)state;
    struct ss_ytree *t;
    const struct ss_yaml_opts mk = {.max_depth = 64, .merge_keys = true};
    const struct ss_ynode *root = load("a: &a {x: 1, y: 2}\n"
                                       "b: &b {y: 20, z: 30}\n"
                                       "m:\n"
                                       "  y: 3\n"
                                       "  <<: [*a, *b]\n"
                                       "n: {<<: *a, w: 0}\n"
                                       "o: {<<: 5}\n"
                                       "p: {<<: [], q: 1}\n",
                                       &mk, &t);
    const struct ss_ynode *m = ss_yaml_map_get(root, "m");
    assert_int_equal(m->nkids, 6);
    assert_null(ss_yaml_map_get(m, "<<"));
    assert_scalar(ss_yaml_map_get(m, "y"), "3", 4, 6);
    assert_scalar(ss_yaml_map_get(m, "x"), "1", 1, 11);
    assert_scalar(ss_yaml_map_get(m, "z"), "30", 2, 18);
    const struct ss_ynode *n = ss_yaml_map_get(root, "n");
    assert_int_equal(n->nkids, 6);
    assert_scalar(n->kids[0], "w", 6, 13);
    assert_non_null(ss_yaml_map_get(ss_yaml_map_get(root, "o"), "<<"));
    assert_int_equal(ss_yaml_map_get(root, "p")->nkids, 2); /* <<: [] merges nothing */
    ss_yaml_free(t);
    /* a merge that multiplies references is bounded like aliases */
    static const char refs[] = "a: &a {p: 1, q: 2, r: 3}\nb: {<<: *a}\nc: {<<: *a}\n";
    const struct ss_yaml_opts few = {.max_depth = 64, .max_refs = 17}; /* 17 without merging */
    load_ok(refs, &few);
    const struct ss_yaml_opts fewm = {.max_depth = 64, .max_refs = 17, .merge_keys = true};
    struct ss_yaml_error e;
    load_fail(refs, sizeof refs - 1, &fewm, SS_YAML_REFS, 1, 20, &e); /* at r: p and q fit */
}

static void test_duplicate_keys_are_kept(void **state)
{
    (void)state;
    struct ss_ytree *t;
    /* The tree keeps repeated keys in order; readers decide whether that is an
     * error. Lookups find the first. */
    const struct ss_ynode *root = load("k: 1\nk: 2\nj: 3\n", NULL, &t);
    assert_int_equal(root->nkids, 6);
    assert_scalar(root->kids[2], "k", 2, 1);
    assert_scalar(ss_yaml_map_get(root, "k"), "1", 1, 4);
    ss_yaml_free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    struct ss_yaml_error e;
    static const char flow[] = "kind: x\nspec: [a\n";
    assert_int_equal(load_fail(flow, sizeof flow - 1, NULL, SS_YAML_SYNTAX, 3, 1, &e), SS_EPARSE);
    assert_string_equal(e.problem, "did not find expected ',' or ']'");
    assert_string_equal(e.context, "while parsing a flow sequence");
    assert_int_equal(e.context_line, 2);

    static const char indent[] = "a: b\n c: d\n";
    load_fail(indent, sizeof indent - 1, NULL, SS_YAML_SYNTAX, 2, 3, &e);
    assert_non_null(e.problem);

    static const char tab[] = "a:\n\tb: c\n";
    load_fail(tab, sizeof tab - 1, NULL, SS_YAML_SYNTAX, 2, 1, &e);

    /* Undecodable bytes: libyaml gives an offset; the tree turns it into line:col
     * (counting characters, so the "é" is one column). */
    static const char bad_utf8[] = "a: b\nc: é\xff\n";
    assert_int_equal(load_fail(bad_utf8, sizeof bad_utf8 - 1, NULL, SS_YAML_READER, 2, 5, &e), SS_EPARSE);
    assert_string_equal(e.problem, "invalid leading UTF-8 octet");
    assert_null(e.context);

    static const char control[] = "a: \"\\x00\"\nb: \x01\n";
    load_fail(control, sizeof control - 1, NULL, SS_YAML_READER, 2, 4, &e);
}

static void test_limits(void **state)
{
    (void)state;
    struct ss_yaml_error e;
    struct ss_ytree *t;

    const struct ss_yaml_opts depth = {.max_depth = 3};
    load_ok("a: [[1]]\n", &depth); /* map, seq, seq: 3 levels */
    static const char deep[] = "a: [[[1]]]\n";
    assert_int_equal(load_fail(deep, sizeof deep - 1, &depth, SS_YAML_DEPTH, 1, 6, &e), SS_ELIMIT);

    const struct ss_yaml_opts nodes = {.max_depth = 8, .max_nodes = 4};
    load_ok("a: [b]\n", &nodes); /* map, a, seq, b */
    static const char five[] = "a: [b, c]\n";
    assert_int_equal(load_fail(five, sizeof five - 1, &nodes, SS_YAML_NODES, 1, 8, &e), SS_ELIMIT);

    /* Alias uses count as references, not as nodes. */
    const struct ss_yaml_opts refs = {.max_depth = 8, .max_nodes = 5, .max_refs = 6};
    static const char aliases[] = "a: &x [*x]\n";
    load_fail(aliases, sizeof aliases - 1, &refs, SS_YAML_ALIAS_OPEN, 1, 8, &e);
    static const char uses[] = "a: &x b\nc: [*x, *x]\n";
    assert_int_equal(load_fail(uses, sizeof uses - 1, &refs, SS_YAML_REFS, 2, 9, &e), SS_ELIMIT);
    static const char uses_ok[] = "a: &x b\nc: *x\n";
    load_ok(uses_ok, &refs);

    /* Redefining an anchor does not take another slot. */
    const struct ss_yaml_opts anchors = {.max_depth = 8, .max_anchors = 2};
    load_ok("a: &x 1\nb: &y 2\nc: &x 3\n", &anchors);
    static const char three[] = "a: &x 1\nb: &y 2\nc: &z 3\n";
    load_fail(three, sizeof three - 1, &anchors, SS_YAML_ANCHORS, 3, 4, &e);
    /* ... and the count starts again in every document. */
    load("a: &x 1\nb: &y 2\n---\nc: &z 3\n", &anchors, &t);
    assert_int_equal(ss_yaml_ndocs(t), 2);
    ss_yaml_free(t);

    const struct ss_yaml_opts scalar = {.max_depth = 8, .max_scalar_bytes = 3};
    load_ok("abc: xyz\n", &scalar);
    static const char long_scalar[] = "abc: wxyz\n";
    load_fail(long_scalar, sizeof long_scalar - 1, &scalar, SS_YAML_SCALAR, 1, 6, &e);

    /* stream start, document start, scalar, document end, stream end */
    const struct ss_yaml_opts events = {.max_depth = 8, .max_events = 5};
    load_ok("x\n", &events);
    static const char two[] = "[x]\n";
    assert_int_equal(load_fail(two, sizeof two - 1, &events, SS_YAML_EVENTS, 1, 4, &e), SS_ELIMIT);

    const struct ss_yaml_opts docs = {.max_depth = 8, .max_docs = 1};
    static const char multi[] = "a: 1\n---\nb: 2\n";
    load_fail(multi, sizeof multi - 1, &docs, SS_YAML_DOCS, 2, 1, &e);

    /* With stop_at_max_docs the stream ends after the first document, unread:
     * a broken second one goes unseen, a broken first one does not. */
    const struct ss_yaml_opts first = {.max_depth = 8, .max_docs = 1, .stop_at_max_docs = true};
    const struct ss_ynode *root = load("a: 1\n---\n]: [\n", &first, &t);
    assert_int_equal(ss_yaml_ndocs(t), 1);
    assert_scalar(ss_yaml_map_get(root, "a"), "1", 1, 4);
    ss_yaml_free(t);
    load("a: 1\n...\n]]\n", &first, &t);
    assert_int_equal(ss_yaml_ndocs(t), 1);
    ss_yaml_free(t);
    static const char broken_first[] = "a: [1\n---\nb: 2\n";
    load_fail(broken_first, sizeof broken_first - 1, &first, SS_YAML_SYNTAX, 2, 1, &e);
}

static void test_many_anchors_and_docs(void **state)
{
    (void)state;
    /* Enough anchors to grow the table several times, then many documents. */
    struct ss_buf b;
    ss_buf_init(&b, 0);
    assert_int_equal(ss_buf_append_str(&b, "a: ["), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(ss_buf_printf(&b, "&a%d %d, ", i, i), 0);
    assert_int_equal(ss_buf_append_str(&b, "x]\nb: [*a0, *a2999]\n"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ss_buf_printf(&b, "---\nd%d: &k v\nr: *k\n", i), 0);
    struct ss_ytree *t;
    struct ss_yaml_error e;
    assert_int_equal(ss_yaml_parse(b.data, b.len, &k_opts, &t, &e), 0);
    assert_int_equal(ss_yaml_ndocs(t), 101);
    const struct ss_ynode *refs = ss_yaml_map_get(ss_yaml_root(t, 0), "b");
    assert_scalar(refs->kids[0], "0", 1, 5); /* an anchored node starts at its "&" */
    assert_true(ss_yaml_scalar_is(refs->kids[1], "2999"));
    assert_scalar(ss_yaml_map_get(ss_yaml_root(t, 100), "r"), "v", 301, 6);
    ss_yaml_free(t);
    ss_buf_free(&b);
}

static void test_format_pos(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(ss_yaml_format_pos(buf, sizeof buf, "f.yml", 3, 7, "bad %s", "thing"), 20);
    assert_string_equal(buf, "f.yml:3:7: bad thing");
    ss_yaml_format_pos(buf, sizeof buf, "f.yml", 0, 0, "no position");
    assert_string_equal(buf, "f.yml: no position");
    /* Truncated message. */
    assert_int_equal(ss_yaml_format_pos(buf, 16, "f.yml", 3, 7, "bad %s", "thing"), 15);
    assert_string_equal(buf, "f.yml:3:7: bad ");
    /* When the position does not fit, no message follows it. */
    assert_int_equal(ss_yaml_format_pos(buf, 8, "f.yml", 3, 7, "bad"), 7);
    assert_string_equal(buf, "f.yml:3");
    buf[0] = 'x';
    assert_int_equal(ss_yaml_format_pos(buf, 0, "f.yml", 1, 1, "msg"), 0);
    assert_int_equal(buf[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_maps_seqs),
        cmocka_unit_test(test_empty_streams),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_nulls_and_tags),
        cmocka_unit_test(test_anchors_and_aliases),
        cmocka_unit_test(test_merge_keys_are_plain_keys),
        cmocka_unit_test(test_merge_keys_expanded),
        cmocka_unit_test(test_duplicate_keys_are_kept),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_anchors_and_docs),
        cmocka_unit_test(test_format_pos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
