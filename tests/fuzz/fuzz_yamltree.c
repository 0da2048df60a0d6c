/* fuzz_yamltree.c: arbitrary bytes into the YAML tree, with the config loader's
 * options, the KEDA reader's, the kubeconfig and file_sd readers' (libyaml
 * loader's rules), and tight limits that every input can hit.
 *
 * Must never crash, leak or overrun. A tree that loads must hold its promises:
 * positions are 1-based, mappings have key/value pairs, scalars are NUL-terminated
 * at len, and nesting stays within max_depth. A failure always names a fault. The
 * walk has a budget, because aliases can make a small tree expand exponentially.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ss.h"
#include "yamltree.h"

static void check(const struct ss_ynode *n, unsigned depth, unsigned max_depth, size_t *budget)
{
    if (!n || !*budget)
        return;
    --*budget;
    if (n->line < 1 || n->col < 1 || !n->text || n->text[n->len] != '\0')
        __builtin_trap();
    if (n->kind == SS_YSCALAR) {
        if (n->nkids)
            __builtin_trap();
        (void)ss_yaml_is_null(n);
        return;
    }
    if (depth >= max_depth || n->len || (n->kind == SS_YMAP && n->nkids % 2))
        __builtin_trap();
    if (n->kind == SS_YMAP && n->nkids && ss_yaml_scalar_is(n->kids[0], "k") &&
        ss_yaml_map_get(n, "k") != n->kids[1])
        __builtin_trap(); /* lookups find the first of repeated keys */
    for (size_t i = 0; i < n->nkids; i++)
        check(n->kids[i], depth + 1, max_depth, budget);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ss_yaml_opts opts[] = {
        {.max_depth = 64,
         .max_refs = 1000000,
         .max_anchors = 4096,
         .max_scalar_bytes = 1u << 20,
         .max_docs = 1},
        {.max_depth = 64,
         .max_nodes = 200000,
         .max_events = 1000000,
         .max_docs = 1024,
         .anchor_on_close = true},
        {.max_depth = 64, .max_docs = 1, .stop_at_max_docs = true, .unique_anchors = true},
        {.max_depth = 3,
         .max_nodes = 20,
         .max_refs = 30,
         .max_anchors = 2,
         .max_scalar_bytes = 8,
         .max_events = 40,
         .max_docs = 2},
    };
    for (size_t o = 0; o < sizeof opts / sizeof opts[0]; o++) {
        struct ss_ytree *t = NULL;
        struct ss_yaml_error e;
        int rc = ss_yaml_parse((const char *)data, size, &opts[o], &t, &e);
        if (rc != 0) {
            if (t || e.fault == SS_YAML_OK || (e.fault != SS_YAML_NOMEM && (e.line < 1 || e.col < 1)))
                __builtin_trap();
            char msg[128];
            ss_yaml_format_pos(msg, sizeof msg, "fuzz.yml", e.line, e.col, "%s", e.name);
            continue;
        }
        if (opts[o].max_docs && ss_yaml_ndocs(t) > opts[o].max_docs)
            __builtin_trap();
        size_t budget = 100000;
        for (size_t d = 0; d < ss_yaml_ndocs(t); d++)
            check(ss_yaml_root(t, d), 0, opts[o].max_depth, &budget);
        ss_yaml_free(t);
    }
    return 0;
}
