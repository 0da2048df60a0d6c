/* scrape.h: the public surface of the scrape module.
 *
 * Two layers, in data-flow order:
 *   1. the exposition parser: a streaming push parser for Prometheus text 0.0.4 and
 *      OpenMetrics 1.0 that hands each sample to a callback as slices;
 *   2. the scrape engine: targets, the libcurl multi loop, label merging, relabeling
 *      (with the relabel floor's compiled rules), limits, synthetic series and
 *      staleness. It hands each finished scrape to a sink.
 * Nothing in this module knows about remote write; sinks live downstream.
 */
#ifndef SCRAPE_H
#define SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpclient.h"
#include "scrape_series.h"
#include "ss.h"

/* ======================================================================== */
/* 1. Exposition parser                                                     */
/* ======================================================================== */

enum scrape_format {
    SCRAPE_FORMAT_TEXT = 0,        /* text/plain; version=0.0.4 */
    SCRAPE_FORMAT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
};

const char *scrape_metric_type_name(enum scrape_metric_type t); /* "counter", ... */

/* One sample as parsed. All slices are valid only during the callback.
 * Label values are unescaped; labels are in exposition order (not sorted) and never
 * include __name__. */
struct scrape_parsed_sample {
    struct ss_str name;
    /* The series as exposed: the line from its start up to the value (name and labels
     * as written, escapes and blanks included); empty when the parser has no such
     * span. Equal text means an equal series, which is what the scrape cache keys on. */
    struct ss_str series;
    const struct ss_label *labels;
    size_t nlabels;
    double value;
    bool has_timestamp;
    int64_t timestamp_ms;         /* OpenMetrics seconds are converted to ms */
    enum scrape_metric_type type; /* type of the family this sample belongs to */
    struct ss_str family;         /* family name (name without _bucket/_total/...) */
    uint32_t line;                /* 1-based line number in the body */
    /* With scrape_parser_opts.lazy_labels: the labels were not parsed yet (nlabels 0,
     * `series` set). The callback returns SCRAPE_WANT_LABELS to have them: the line is
     * then parsed in full and passed again, with labels. */
    bool labels_skipped;
};

/* A sample callback's answer to a sample with labels_skipped: parse its labels. */
#define SCRAPE_WANT_LABELS 1

/* A problem in the body (see scrape_parser_cb.error). */
struct scrape_parse_error {
    uint32_t line;       /* 1-based */
    uint32_t column;     /* 1-based byte column; 1 when the whole line is at fault */
    const char *message; /* without the "line N: " prefix */
};

/* Callbacks. A non-zero return from any stops parsing: feed/finish return it
 * (use a negative ss_err, e.g. SS_ELIMIT for sample_limit). Any may be NULL. */
struct scrape_parser_cb {
    int (*sample)(void *ud, const struct scrape_parsed_sample *s);
    int (*meta)(void *ud, const struct scrape_parsed_meta *m);
    void *ud;
    /* Validation (lint): when set, a problem in the input is reported here and the
     * parser goes on with the next line (the bad line yields nothing), so one pass
     * finds every problem; feed/finish return 0 for such problems. What the grammar
     * cannot go on from still ends the body: data after OpenMetrics' `# EOF` (reported
     * once), a line over max_line_len (returned as SS_ELIMIT). */
    int (*error)(void *ud, const struct scrape_parse_error *e);
};

struct scrape_parser_opts {
    enum scrape_format format;
    size_t max_line_len; /* longest line accepted; 0 = 1 MiB */
    bool utf8_names;     /* accept the quoted UTF-8 name extension ({"a.b"} ...) */
    bool strict;         /* false: accept what Prometheus 2.42 scrapes; true: full
                          * validation (prometheus/common for text, the OpenMetrics
                          * conformance suite for OpenMetrics) */
    bool lazy_labels;    /* not strict: pass a sample with labels_skipped first, so a
                          * sink that knows the series text (a scrape cache) does not
                          * pay for parsing its labels; a sink must forget the texts
                          * it knows when the format changes (the formats' rules
                          * differ, and a text is only known once parsed in full) */
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

/* Lint (scrape/lint.c): one whole exposition validated by the strict parser, every
 * problem reported (it goes on past bad lines), plus `promtool check metrics`' lint
 * warnings per metric family. Problems are sorted by line. */
struct scrape_lint_problem {
    uint32_t line, column; /* 1-based; a warning points at its family's first line */
    bool warning;
    const char *metric; /* the family a warning is about; "" for errors */
    const char *message;
};
struct scrape_lint;
/* warnings: add the lint warnings (else errors only). 0 with *out set (even when the
 * body has problems), or SS_ENOMEM. */
int scrape_lint_run(enum scrape_format format, const char *body, size_t len, bool warnings,
                    struct scrape_lint **out);
size_t scrape_lint_count(const struct scrape_lint *l);
size_t scrape_lint_errors(const struct scrape_lint *l);
/* More than 10000 problems: the rest were not kept. */
bool scrape_lint_truncated(const struct scrape_lint *l);
const struct scrape_lint_problem *scrape_lint_get(const struct scrape_lint *l, size_t i);
void scrape_lint_free(struct scrape_lint *l); /* NULL: no-op */

/* ======================================================================== */
/* 2. Jobs, targets and the scrape engine                                   */
/* ======================================================================== */

/* Everything below borrows its strings from the caller (the loaded config), which
 * must outlive the manager. */

struct relabel_rule; /* relabel/relabel.h */

/* One static_configs entry or one group read from a file_sd file. */
struct scrape_target_group {
    const char *const *targets;
    size_t ntargets;
    const struct ss_kv *labels;
    size_t nlabels;
};

/* A dynamic discovery source (e.g. kubernetes_sd): it runs on its own and the engine
 * polls it from the scrape thread. poll returns true when the groups changed since the
 * previous call and then sets *groups / *ngroups; they stay valid until the next poll
 * call. */
struct scrape_discoverer {
    bool (*poll)(void *ud, const struct scrape_target_group **groups, size_t *ngroups);
    void *ud;
    /* Optional, both or neither (the engine ignores one alone): a discoverer that
     * tells when it has news, so that the scrape loop sleeps instead of polling it
     * every second.
     * watch(ud, wake, arg): call wake(arg), from any thread, whenever a poll may
     * report a change; watch(ud, NULL, NULL) stops that, and no call is under way
     * once it returns. The loop watches while a job holds the discoverer.
     * next_poll_ms(ud): the monotonic ms from which a poll is worth making (0: now;
     * INT64_MAX: not before a wake). */
    void (*watch)(void *ud, void (*wake)(void *), void *arg);
    int64_t (*next_poll_ms)(void *ud);
};

struct scrape_job {
    const char *name;
    int64_t interval_ms;
    int64_t timeout_ms;
    const char *metrics_path;
    const char *scheme;
    const struct ss_kv *params; /* name -> first value (Prometheus sends all; so do we) */
    size_t nparams;
    bool honor_labels;
    bool honor_timestamps;
    bool strict_parsing;                 /* the strict parser (what `lint` calls an error fails the
                                          * scrape); default: Prometheus 2.42's leniency */
    struct httpc_config http;            /* files in it are re-read on every scrape */
    struct relabel_rule *const *relabel; /* compiled; owned by the caller */
    size_t nrelabel;
    struct relabel_rule *const *metric_relabel;
    size_t nmetric_relabel;
    uint64_t sample_limit;
    uint64_t target_limit; /* 0 = none; more targets fail every scrape of the job */
    uint64_t label_limit;
    uint64_t label_name_length_limit;
    uint64_t label_value_length_limit;
    uint64_t body_size_limit;
    const struct scrape_target_group *static_groups;
    size_t nstatic_groups;
    const char *const *file_sd_files; /* glob patterns */
    size_t nfile_sd_files;
    int64_t file_sd_refresh_ms;
    const struct scrape_discoverer *discoverers; /* borrowed; polled every loop */
    size_t ndiscoverers;
};

/* Prometheus' staleness marker: a NaN with a distinct payload. */
#define SCRAPE_STALE_NAN_BITS 0x7ff0000000000002ULL
double scrape_stale_nan(void);
bool scrape_is_stale_nan(double v);

/* What a sink learns about the scrape a batch came from. */
struct scrape_report {
    const char *job;
    const char *instance;
    const char *url;
    bool up;
    const char *error; /* NULL when up */
    int64_t start_ms;
    double duration_s;
    /* The target's Kubernetes resource attributes as the OpenTelemetry prometheus
     * receiver derives them from its discovered labels ("k8s.pod.name" = ..., sorted;
     * none outside Kubernetes discovery). Valid until end. */
    const struct ss_label *resource;
    size_t nresource;
};

/* The sink receives every finished scrape on the scrape thread: begin, then every
 * series (the scraped samples, or none when the scrape failed, then stale markers,
 * then the synthetic series), then end. Samples of one series arrive in timestamp
 * order. Callbacks must not block: queue and return. A scrape_series and its labels
 * are valid only during the call. */
struct scrape_sink {
    void (*begin)(void *ud, const struct scrape_report *r);
    void (*series)(void *ud, const struct scrape_series *s);
    void (*end)(void *ud, const struct scrape_report *r);
    /* Optional: metadata (TYPE/HELP/UNIT) seen in a successful scrape. job: the
     * target's job label, the value its series carry (relabeling may have made it
     * differ from the scrape job's name). */
    void (*metadata)(void *ud, const struct scrape_parsed_meta *m, const char *job);
    void *ud;
    /* Optional pacing, called between parts of one big scrape's series (inside its
     * begin/end): hand what is held on, then block while the sink holds more than it
     * wants and is draining it, until deadline (monotonic ms). Returns false when the
     * deadline passed first: the rest of that scrape then goes without waiting. */
    bool (*wait_room)(void *ud, int64_t deadline_mono_ms);
};

struct scrape_manager_opts {
    /* Added to every emitted series that lacks the label (as Prometheus does for remote
     * write), after relabeling: the one place external labels are applied. */
    const struct ss_kv *external_labels;
    size_t nexternal_labels;
    const char *user_agent; /* default "scrapeship/<version>" */
};

struct scrape_manager;

int scrape_manager_new(const struct scrape_manager_opts *opts, const struct scrape_sink *sink,
                       struct scrape_manager **out);
/* Replace the job set (initial load and reload). Targets that keep the same job and
 * labels keep their series state; removed targets get stale markers for all their
 * series. Call only from the thread that runs the manager, or before it runs. Once it
 * returns, the engine holds nothing of the previous job set, whatever it returns: a
 * new job it has no memory for is left out (logged; SS_ENOMEM) until the next set. */
int scrape_manager_set_jobs(struct scrape_manager *m, const struct scrape_job *jobs, size_t njobs);
/* Replace the external labels (reload; from the thread that runs the manager). */
int scrape_manager_set_external_labels(struct scrape_manager *m, const struct ss_kv *ext, size_t n);
/* Replace the sink (between runs, from the thread that runs the manager). */
void scrape_manager_set_sink(struct scrape_manager *m, const struct scrape_sink *sink);
/* Run the event loop until scrape_manager_stop. Returns 0 on a clean stop. */
int scrape_manager_run(struct scrape_manager *m);
/* Scrape every target once, all at the same time, then return. Returns the number
 * of targets that failed (0 when all were up), or a negative ss_err. */
int scrape_manager_scrape_once(struct scrape_manager *m);
/* Thread-safe and async-signal-tolerant: asks run() to return soon. */
void scrape_manager_stop(struct scrape_manager *m);
/* Emit stale markers for every live series of every target (shutdown of a target set)
 * and forget them. */
void scrape_manager_mark_all_stale(struct scrape_manager *m);
/* Self-metrics in Prometheus text format, appended to out. Thread-safe. */
int scrape_manager_render_metrics(struct scrape_manager *m, struct ss_buf *out);
void scrape_manager_free(struct scrape_manager *m);

/* ======================================================================== */
/* File-based discovery                                                     */
/* ======================================================================== */

struct scrape_sd_groups; /* owns all memory of the groups it holds */

/* Expand each glob pattern (glob(3); patterns as Prometheus allows: only the last
 * path element may contain * ? [ ]), read every matching file (.json, .yml, .yaml;
 * other extensions are an error for that pattern as in Prometheus), and return all
 * target groups. Each group gets the label __meta_filepath=<path>. A file that fails
 * to read or parse is skipped with *nerrors incremented and a logged error naming
 * file and, where possible, line:column (ss_error("discovery", ...)); the other files
 * still load. Limits: a file over 16 MiB, more than 100000 targets per file: error
 * for that file. Returns 0 (even when files failed), or SS_ENOMEM / SS_EINVAL. */
int scrape_file_sd_load(const char *const *patterns, size_t npatterns, struct scrape_sd_groups **out,
                        size_t *nerrors);
size_t scrape_sd_groups_count(const struct scrape_sd_groups *g);
const struct scrape_target_group *scrape_sd_groups_get(const struct scrape_sd_groups *g, size_t i);
/* A fingerprint of the matched files' (path, mtime, size), cheap to compute, so the
 * engine re-reads only when something changed. */
int scrape_file_sd_fingerprint(const char *const *patterns, size_t npatterns, uint64_t *out);
void scrape_sd_groups_free(struct scrape_sd_groups *g);

/* ======================================================================== */
/* Kubernetes discovery                                                     */
/* ======================================================================== */

/* kubernetes_sd_configs (scrape/kube_sd.c): LIST then WATCH the API server from a
 * thread of its own, keep the objects, and hand the engine Prometheus 2.42's target
 * groups through a struct scrape_discoverer. Roles pod and endpoints. One target
 * group per target (the engine's groups carry no per-target labels), labelled exactly
 * as Prometheus labels it: __meta_kubernetes_namespace, __meta_kubernetes_pod_*,
 * __meta_kubernetes_endpoint(s)_*, __meta_kubernetes_service_*.
 *
 * Credentials, in Prometheus' order: api_server with the HTTP client config;
 * kubeconfig_file (current context: server, CA, client certificate, token or
 * tokenFile, basic auth; exec plugins are not supported); else in-cluster
 * (KUBERNETES_SERVICE_HOST/PORT, the service account token re-read on every request
 * because bound tokens rotate, and its ca.crt). */

enum kube_sd_role { KUBE_SD_ROLE_POD = 0, KUBE_SD_ROLE_ENDPOINTS, KUBE_SD_ROLE_ENDPOINTSLICE };

/* role: "pod", "service", "endpoints" or "endpointslice"; label/field: Kubernetes selector syntax,
 * passed to the API server as labelSelector / fieldSelector. */
struct kube_sd_selector {
    const char *role;
    const char *label;
    const char *field;
};

/* Strings are borrowed and must outlive the discoverer (they live in the config). */
struct kube_sd_config {
    const char *job; /* for logs and self-metrics */
    enum kube_sd_role role;
    const char *api_server; /* NULL: kubeconfig_file or in-cluster */
    const char *kubeconfig_file;
    const char *const *namespaces; /* none (and !own_namespace): all namespaces */
    size_t nnamespaces;
    bool own_namespace; /* in-cluster: add the pod's own namespace */
    const struct kube_sd_selector *selectors;
    size_t nselectors;
    struct httpc_config http; /* used with api_server only */
    /* Tunables, 0/NULL = default. */
    const char *service_account_dir; /* "/var/run/secrets/kubernetes.io/serviceaccount" */
    int64_t initial_wait_ms;         /* first poll waits for the first LIST: 2000 */
    int64_t min_update_interval_ms;  /* at most one new snapshot per interval: 1000 */
    int64_t watch_timeout_s;         /* timeoutSeconds of a WATCH: 300..600 random */
    uint32_t list_page_size;         /* LIST limit=: 500 */
    int64_t max_backoff_ms;          /* retry delay cap after failures: 30000 */
};

struct kube_sd;

/* Checks the config and copies what it needs; starts nothing. The watch thread
 * starts on the first poll, so `check-config` never talks to a cluster. On error
 * returns SS_ECONFIG (or SS_ENOMEM) with a message in err. */
int kube_sd_new(const struct kube_sd_config *cfg, struct kube_sd **out, char *err, size_t errlen);
/* The engine-facing side: poll hands over a new snapshot of the groups when the
 * objects changed (at most every min_update_interval_ms). A snapshot stays valid until
 * poll returns the next one or kube_sd_free. Call poll from one thread only. */
void kube_sd_discoverer(struct kube_sd *k, struct scrape_discoverer *out);
/* Stops and joins the thread, frees everything. NULL is a no-op. */
void kube_sd_free(struct kube_sd *k);

/* Counters since kube_sd_new, for tests and logs (also exported on /metrics as
 * scrapeship_sd_kubernetes_*{scrape_job}). */
struct kube_sd_stats {
    uint64_t lists;    /* LIST requests (pages count one each) */
    uint64_t watches;  /* WATCH requests */
    uint64_t failures; /* requests that failed: transport error or bad status */
    uint64_t gone;     /* 410 Gone answers that forced a relist */
    uint64_t events_added, events_modified, events_deleted;
    uint64_t objects; /* objects held now, all watchers together */
    bool synced;      /* every watcher finished its first LIST */
};
void kube_sd_get_stats(struct kube_sd *k, struct kube_sd_stats *out);

#endif
