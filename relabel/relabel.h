/* relabel.h: Prometheus relabel_config rules, the relabel floor's one public header.
 *
 * A rule is compiled once from its YAML form (struct relabel_config) and then applied
 * to label sets: target relabeling and metric relabeling in scrape, write relabeling
 * in remotewrite. Behaviour follows Prometheus 2.42 model/relabel; regexes are Go RE2
 * syntax, run by PCRE2 after a translation that keeps RE2's meaning.
 *
 * A compiled rule owns scratch buffers, so one rule must not be used by two threads at
 * once. Depends only on common/ss.h. Names are prefixed relabel_.
 */
#ifndef RELABEL_H
#define RELABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss.h"

enum relabel_action {
    RELABEL_REPLACE = 0,
    RELABEL_KEEP,
    RELABEL_DROP,
    RELABEL_KEEPEQUAL,
    RELABEL_DROPEQUAL,
    RELABEL_HASHMOD,
    RELABEL_LABELMAP,
    RELABEL_LABELDROP,
    RELABEL_LABELKEEP,
    RELABEL_LOWERCASE,
    RELABEL_UPPERCASE,
};

/* A relabel_config as written in YAML. NULL/0 fields take Prometheus' defaults
 * (regex "(.*)", separator ";", replacement "$1", action replace). Owned by the
 * config; the compiled rule copies what it needs. */
struct relabel_config {
    char **source_labels;
    size_t nsource_labels;
    char *separator;    /* NULL = ";" */
    char *target_label; /* NULL = unset */
    char *regex;        /* NULL = "(.*)" */
    uint64_t modulus;
    bool has_modulus;
    char *replacement; /* NULL = "$1" */
    enum relabel_action action;
};

/* Parse an action name as Prometheus spells it ("replace", "labelmap", ...),
 * case-insensitively. */
int relabel_action_parse(const char *s, enum relabel_action *out);
const char *relabel_action_name(enum relabel_action a);

struct relabel_rule;

/* Compile and validate one rule as Prometheus' relabel.Config.Validate does (regex
 * anchored ^(?:...)$, target_label required for replace/hashmod/lowercase/uppercase,
 * modulus for hashmod, ...). On error returns SS_ECONFIG and writes a message to err. */
int relabel_compile(const struct relabel_config *cfg, struct relabel_rule **out, char *err, size_t errlen);
void relabel_rule_free(struct relabel_rule *r); /* NULL is a no-op */

/* Apply rules in order to ls. Returns true to keep the label set, false when it was
 * dropped. New strings are copied into ls->arena. The set need not be sorted on
 * entry; it is not sorted on exit. */
bool relabel_process(struct relabel_rule *const *rules, size_t nrules, struct ss_labels *ls);

#endif
