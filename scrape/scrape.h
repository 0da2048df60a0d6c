/* scrape.h: the public surface of the scrape module.
 *
 * Three layers, in data-flow order:
 *   1. the exposition parser: a streaming push parser for Prometheus text 0.0.4 and
 *      OpenMetrics 1.0 that hands each sample to a callback as slices;
 *   2. relabeling: Prometheus relabel_config rules compiled with PCRE2;
 *   3. the scrape engine: targets, the libcurl multi loop, label merging, limits,
 *      synthetic series and staleness. It hands each finished scrape to a sink.
 * Nothing in this module knows about remote write; sinks live downstream.
 */
#ifndef SCRAPE_H
#define SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss.h"

/* ======================================================================== */
/* 1. Exposition parser                                                     */
/* ======================================================================== */

enum scrape_format {
    SCRAPE_FORMAT_TEXT = 0,        /* text/plain; version=0.0.4 */
    SCRAPE_FORMAT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
};

enum scrape_metric_type {
    SCRAPE_TYPE_UNKNOWN = 0, /* "untyped" in 0.0.4, "unknown" in OpenMetrics */
    SCRAPE_TYPE_COUNTER,
    SCRAPE_TYPE_GAUGE,
    SCRAPE_TYPE_HISTOGRAM,
    SCRAPE_TYPE_GAUGEHISTOGRAM,
    SCRAPE_TYPE_SUMMARY,
    SCRAPE_TYPE_INFO,
    SCRAPE_TYPE_STATESET,
};

const char *scrape_metric_type_name(enum scrape_metric_type t); /* "counter", ... */

/* One sample as parsed. All slices are valid only during the callback.
 * Label values are unescaped; labels are in exposition order (not sorted) and never
 * include __name__. */
struct scrape_parsed_sample {
    struct ss_str name;
    const struct ss_label *labels;
    size_t nlabels;
    double value;
    bool has_timestamp;
    int64_t timestamp_ms;           /* OpenMetrics seconds are converted to ms */
    enum scrape_metric_type type;   /* type of the family this sample belongs to */
    struct ss_str family;           /* family name (name without _bucket/_total/...) */
    uint32_t line;                  /* 1-based line number in the body */
};

enum scrape_meta_kind { SCRAPE_META_HELP, SCRAPE_META_TYPE, SCRAPE_META_UNIT };

struct scrape_parsed_meta {
    enum scrape_meta_kind kind;
    struct ss_str family;
    struct ss_str text;            /* HELP text unescaped, UNIT text; empty for TYPE */
    enum scrape_metric_type type;  /* for TYPE */
    uint32_t line;
};

/* Callbacks. A non-zero return from either stops parsing: feed/finish return it
 * (use a negative ss_err, e.g. SS_ELIMIT for sample_limit). Either may be NULL. */
struct scrape_parser_cb {
    int (*sample)(void *ud, const struct scrape_parsed_sample *s);
    int (*meta)(void *ud, const struct scrape_parsed_meta *m);
    void *ud;
};

struct scrape_parser_opts {
    enum scrape_format format;
    size_t max_line_len;   /* longest line accepted; 0 = 1 MiB */
    bool utf8_names;       /* accept the quoted UTF-8 name extension ({"a.b"} ...) */
};

struct scrape_parser;

int scrape_parser_new(const struct scrape_parser_opts *opts, struct scrape_parser **out);
/* Prepare for a new body in the given format; keeps allocated memory. */
void scrape_parser_reset(struct scrape_parser *p, enum scrape_format format);
/* Feed the next chunk of the body. Chunks may split lines anywhere. Returns 0, or a
 * negative ss_err (SS_EPARSE for bad input) after which the parser must be reset. */
int scrape_parser_feed(struct scrape_parser *p, const char *buf, size_t len,
                       const struct scrape_parser_cb *cb);
/* End of body: flushes a final line and runs end-of-input checks (OpenMetrics
 * `# EOF`, 0.0.4 final newline). */
int scrape_parser_finish(struct scrape_parser *p, const struct scrape_parser_cb *cb);
/* After an error: a message naming the line, e.g. "line 12: invalid metric name". */
const char *scrape_parser_error(const struct scrape_parser *p);
void scrape_parser_free(struct scrape_parser *p);

/* Pick the format from a Content-Type header value (NULL = text). */
enum scrape_format scrape_format_from_content_type(const char *content_type);

/* ======================================================================== */
/* 2. Relabeling                                                            */
/* ======================================================================== */

enum scrape_relabel_action {
    SCRAPE_RELABEL_REPLACE = 0,
    SCRAPE_RELABEL_KEEP,
    SCRAPE_RELABEL_DROP,
    SCRAPE_RELABEL_KEEPEQUAL,
    SCRAPE_RELABEL_DROPEQUAL,
    SCRAPE_RELABEL_HASHMOD,
    SCRAPE_RELABEL_LABELMAP,
    SCRAPE_RELABEL_LABELDROP,
    SCRAPE_RELABEL_LABELKEEP,
    SCRAPE_RELABEL_LOWERCASE,
    SCRAPE_RELABEL_UPPERCASE,
};

/* A relabel_config as written in YAML. NULL/0 fields take Prometheus' defaults
 * (regex "(.*)", separator ";", replacement "$1", action replace). Owned by the
 * config; the compiled rule copies what it needs. */
struct scrape_relabel_config {
    char **source_labels;
    size_t nsource_labels;
    char *separator;     /* NULL = ";" */
    char *target_label;  /* NULL = unset */
    char *regex;         /* NULL = "(.*)" */
    uint64_t modulus;
    bool has_modulus;
    char *replacement;   /* NULL = "$1" */
    enum scrape_relabel_action action;
};

/* Parse an action name as Prometheus spells it ("replace", "labelmap", ...),
 * case-insensitively. */
int scrape_relabel_action_parse(const char *s, enum scrape_relabel_action *out);
const char *scrape_relabel_action_name(enum scrape_relabel_action a);

struct scrape_relabel_rule;

/* Compile and validate one rule as Prometheus' relabel.Config.Validate does (regex
 * anchored ^(?:...)$, target_label required for replace/hashmod/lowercase/uppercase,
 * modulus for hashmod, ...). On error returns SS_ECONFIG and writes a message to err. */
int scrape_relabel_compile(const struct scrape_relabel_config *cfg,
                           struct scrape_relabel_rule **out, char *err, size_t errlen);
void scrape_relabel_rule_free(struct scrape_relabel_rule *r);

/* Apply rules in order to ls. Returns true to keep the label set, false when it was
 * dropped. New strings are copied into ls->arena. The set need not be sorted on
 * entry; it is not sorted on exit. */
bool scrape_relabel_process(struct scrape_relabel_rule *const *rules, size_t nrules,
                            struct ss_labels *ls);

#endif
