/* fuzz_relabel.c: libFuzzer target for relabel/relabel.c.
 *
 * Input layout: byte 0 picks the action, byte 1 holds option bits, byte 2 the
 * modulus; the rest is split at NUL bytes into regex, replacement, target label and
 * separator, then name/value pairs for the label set. Compiling must never crash
 * (it may reject), and processing must never crash or leak, whatever the rule and the
 * labels (invalid UTF-8, empty names, duplicates, long values).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "relabel.h"

#define MAX_FIELDS 40

static size_t split(const uint8_t *data, size_t size, struct ss_str *f, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || data[i] == '\0') {
            f[n++] = (struct ss_str){(const char *)data + start, i - start};
            start = i + 1;
        }
    }
    return n;
}

/* NUL-terminated copies; the fields come straight from the fuzz input. */
static char *cstr(struct ss_arena *a, struct ss_str s)
{
    return ss_arena_strndup(a, s.p, s.len);
}

static void run(struct relabel_rule *const *rules, size_t nrules, const struct ss_str *f, size_t nf,
                uint8_t opts)
{
    struct ss_labels ls;
    ss_labels_init(&ls);
    /* Give the sources something to read: a and b exist unless the option says not. */
    if (opts & 0x10) {
        ss_labels_push(&ls, SS_STR("a"), nf > 4 ? f[4] : SS_STR("x"));
        ss_labels_push(&ls, SS_STR("b"), nf > 5 ? f[5] : SS_STR(""));
    }
    for (size_t i = 4; i + 1 < nf; i += 2)
        ss_labels_push(&ls, f[i], f[i + 1]);
    /* Twice: the second run reuses every scratch buffer and sees the first's output. */
    if (relabel_process(rules, nrules, &ls))
        (void)relabel_process(rules, nrules, &ls);
    ss_labels_free(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t act = data[0], opts = data[1], mod = data[2];
    struct ss_str f[MAX_FIELDS];
    size_t nf = split(data + 3, size - 3, f, MAX_FIELDS);

    struct ss_arena a;
    ss_arena_init(&a, 4096);
    char *src[] = {"a", "b", "missing"};
    struct relabel_config cfg = {
        .source_labels = src,
        .nsource_labels = opts & 3,
        .regex = (opts & 0x04) && nf > 0 ? cstr(&a, f[0]) : NULL,
        .replacement = (opts & 0x08) && nf > 1 ? cstr(&a, f[1]) : NULL,
        .target_label = nf > 2 ? cstr(&a, f[2]) : NULL,
        .separator = (opts & 0x20) && nf > 3 ? cstr(&a, f[3]) : NULL,
        .modulus = mod,
        .has_modulus = mod != 0,
        .action = (enum relabel_action)(act % 12), /* 11 is out of range */
    };

    struct relabel_rule *rules[3] = {0};
    size_t nrules = 0;
    char err[256];
    if (relabel_compile(&cfg, &rules[nrules], err, sizeof err) == 0)
        nrules++;
    /* The same regex and replacement as a replace and as a labelmap rule, so that a
     * rejected target label does not keep the regex away from the matcher. */
    cfg.target_label = "t";
    cfg.action = RELABEL_REPLACE;
    if (relabel_compile(&cfg, &rules[nrules], err, sizeof err) == 0)
        nrules++;
    cfg.target_label = NULL;
    cfg.nsource_labels = 0;
    cfg.separator = NULL;
    cfg.modulus = 0;
    cfg.action = RELABEL_LABELMAP;
    if (relabel_compile(&cfg, &rules[nrules], err, sizeof err) == 0)
        nrules++;

    run(rules, nrules, f, nf, opts);

    for (size_t i = 0; i < nrules; i++)
        relabel_rule_free(rules[i]);
    ss_arena_free(&a);
    return 0;
}
