/* collector.h: the collector module's public surface besides the config (config.h):
 * turning a config into scrape jobs, the stdout sink, the self-metrics HTTP server and
 * the subcommands. */
#ifndef SS_COLLECTOR_H
#define SS_COLLECTOR_H

#include <stdio.h>

#include "config.h"
#include "scrape.h"

/* ---- jobs: config -> scrape engine ------------------------------------- */

/* The scrape jobs of a config, with compiled relabel rules. Borrows strings from the
 * config, which must outlive it. */
struct collector_jobs {
    struct scrape_job *jobs;
    size_t njobs;
    struct collector_job_extra *extra; /* per job: owned arrays */
    struct ss_kv *external_labels;
    size_t nexternal_labels;
};

int collector_jobs_build(const struct cfg *c, struct collector_jobs *out, char *err, size_t errlen);
void collector_jobs_free(struct collector_jobs *j);

/* ---- monitor_discovery: ServiceMonitors and PodMonitors -> jobs (monitors.c) ---- */

struct collector_monitors;
/* Connect (api_server, kubeconfig_file or in cluster), start watching as c's
 * monitor_discovery says, and start the builder thread that turns the monitors into
 * jobs. on_ready is called from that thread when a new job set is built: only
 * signal, and call collector_monitors_rebuild on the scrape thread. The section is
 * copied: c need not outlive the result. */
int collector_monitors_start(const struct cfg *c, void (*on_ready)(void *ud), void *ud,
                             struct collector_monitors **out, char *err, size_t errlen);
bool collector_monitors_built(struct collector_monitors *m); /* the first job set is built */
/* c's monitor_discovery (and scrape interval and timeout) is the one m runs, and its
 * kubeconfig file has not changed: a reload can keep m, its watches and its jobs. */
bool collector_monitors_same(const struct collector_monitors *m, const struct cfg *c);
/* Install the newest job set built (if any); *jobs = base's jobs followed by the
 * generated ones (valid until the next rebuild). Nothing slow: the monitors were
 * translated, and their Secrets read, on the builder thread. After
 * scrape_manager_set_jobs(*jobs), call collector_monitors_release_old. */
int collector_monitors_rebuild(struct collector_monitors *m, const struct collector_jobs *base,
                               const struct scrape_job **jobs, size_t *njobs);
void collector_monitors_release_old(struct collector_monitors *m);
/* Stop the builder thread (no more on_ready calls); the jobs stay valid. Before the
 * scrape manager that on_ready stops is freed. NULL: no-op. */
void collector_monitors_halt(struct collector_monitors *m);
void collector_monitors_stop(struct collector_monitors *m); /* NULL: no-op */

/* A config's http_config as the HTTP floor takes it (strings borrowed from c); the
 * same mapping for scrape jobs, kubernetes_sd and remote_write. */
void collector_http_config(const struct cfg_http_client *c, struct httpc_config *out);

/* ---- stdout sink (debug mode) ------------------------------------------- */

enum collector_output_format { COLLECTOR_OUTPUT_TEXT, COLLECTOR_OUTPUT_JSON };

struct collector_stdout;
/* Prints every series as it would be shipped (the scrape engine already added the
 * external labels), labels sorted. Text: `name{a="b"} value timestamp_ms`; JSON
 * lines: {"labels":{...},"value":"1.5","timestamp":123,"stale":false}. */
int collector_stdout_new(FILE *out, enum collector_output_format fmt, struct collector_stdout **outp);
void collector_stdout_sink(struct collector_stdout *s, struct scrape_sink *sink);
void collector_stdout_free(struct collector_stdout *s);

/* Fan one scrape sink out to two: `primary` and the stdout writer `s`. The tee
 * struct holds both and must outlive the manager. *out may alias *primary. */
struct collector_tee {
    struct scrape_sink a, b;
};
void collector_tee_sink(struct collector_tee *t, const struct scrape_sink *primary,
                        struct collector_stdout *s, struct scrape_sink *out);

/* ---- self-metrics HTTP server -------------------------------------------- */

/* The web endpoint of `run` and `scaler` (httpserver.c): /metrics (ss_metrics_render
 * plus process metrics), the probes and, for `run`, the lifecycle endpoints. */
struct collector_http_opts {
    const char *listen;          /* "host:port", ":port" or "[v6]:port" */
    const char *web_config_file; /* --web.config.file; NULL: plain HTTP, no auth */
    bool enable_lifecycle;       /* --web.enable-lifecycle: POST /-/reload, /-/quit; else 403 */
    bool probes_need_auth;       /* false (the default): probes skip basic auth */
    unsigned max_connections;    /* 0: COLLECTOR_HTTP_MAX_CONNECTIONS */
    unsigned read_timeout_s;     /* idle time before a connection is closed; 0: 30 */
    void (*on_reload)(void *ud); /* NULL: the command has no /-/reload */
    void (*on_quit)(void *ud);   /* NULL: the command has no /-/quit */
    void *ud;
};
#define COLLECTOR_HTTP_MAX_CONNECTIONS 512
#define COLLECTOR_HTTP_MAX_BODY_BYTES  (64u << 10) /* request bodies (only /-/reload takes one) */
#define COLLECTOR_HTTP_MAX_HEAD_BYTES  (32u << 10) /* request line and headers */

/* The --web.* flags `run` and `scaler` share, for their getopt_long tables. */
enum {
    COLLECTOR_OPT_WEB_CONFIG = 0x100,
    COLLECTOR_OPT_WEB_LIFECYCLE,
    COLLECTOR_OPT_WEB_PROBES,
    COLLECTOR_OPT_WEB_MAX_CONNECTIONS,
    COLLECTOR_OPT_WEB_READ_TIMEOUT,
};
#define COLLECTOR_WEB_LONG_OPTIONS                                                                           \
    {"web.config.file", required_argument, 0, COLLECTOR_OPT_WEB_CONFIG},                                     \
        {"web.unauthenticated-probes", required_argument, 0, COLLECTOR_OPT_WEB_PROBES},                      \
        {"web.max-connections", required_argument, 0, COLLECTOR_OPT_WEB_MAX_CONNECTIONS},                    \
    {                                                                                                        \
        "web.read-timeout", required_argument, 0, COLLECTOR_OPT_WEB_READ_TIMEOUT                             \
    }
/* Apply one of those flags: 1 when opt was one (arg applied), 0 when it is not one,
 * SS_EINVAL on a bad value (printed to stderr, naming cmd). */
int collector_web_flag(const char *cmd, int opt, const char *arg, struct collector_http_opts *o);

struct collector_http;
/* Start serving. With a web config the file is loaded and checked first (an error
 * stops the start); it is then re-read whenever it or a file it names changes. */
int collector_http_start(const struct collector_http_opts *o, struct collector_http **out);
void collector_http_set_ready(struct collector_http *h, bool ready);
void collector_http_stop(struct collector_http *h);

/* ---- remote write ---------------------------------------------------------- */

struct collector_shipper;
/* One remote per remote_write entry, started. */
int collector_shipper_new(const struct cfg *c, struct collector_shipper **out, char *err, size_t errlen);
/* Build the shipper for a new config, moving over remotes whose config did not change
 * (their queues survive); the others are flushed until flush_deadline_mono and freed.
 * On failure `old` is left intact. On success `old` is consumed. */
int collector_shipper_reload(struct collector_shipper *old, const struct cfg *c,
                             struct collector_shipper **out, int64_t flush_deadline_mono, char *err,
                             size_t errlen);
void collector_shipper_sink(struct collector_shipper *s, struct scrape_sink *sink);
/* ud is a `struct collector_shipper **` so a reload can swap the shipper under it. */
int collector_shipper_render_metrics(void *ud, struct ss_buf *out);
/* Flush until the deadline; returns the samples that could not be sent. */
uint64_t collector_shipper_shutdown(struct collector_shipper *s, int64_t deadline_mono);
void collector_shipper_free(struct collector_shipper *s);

/* ---- OpenTelemetry collector series (otel.c) ---------------------------------- */

/* A sink in front of `down` that rewrites each scrape into the series the OTel
 * collector ships (names, target_info, resource labels, exporter external labels).
 * o's strings are borrowed and must outlive it. */
struct collector_otel;
int collector_otel_new(const struct cfg_otel_series *o, const struct scrape_sink *down,
                       struct collector_otel **out);
void collector_otel_sink(struct collector_otel *x, struct scrape_sink *sink);
void collector_otel_free(struct collector_otel *x);
/* Series the rewrite could not ship (more labels than it takes); any thread. */
uint64_t collector_otel_dropped(const struct collector_otel *x);
/* TYPE/UNIT lines not remembered because the table was full (their families ship as
 * gauges). */
uint64_t collector_otel_metadata_dropped(const struct collector_otel *x);
/* The exporter's metric name for a family (BuildCompliantName); the length written. */
size_t collector_otel_name(const struct cfg_otel_series *o, const char *family, size_t flen,
                           enum scrape_metric_type type, const char *unit, char *out, size_t cap);

/* ---- AWS SigV4 ---------------------------------------------------------------- */

struct aws_signer;
/* Region for a sigv4 block: its own, else the AMP URL's, else AWS_REGION /
 * AWS_DEFAULT_REGION; SS_ECONFIG when none. s may be NULL. */
int collector_sigv4_region(const struct cfg_sigv4 *s, const char *url, char *out, size_t cap);
/* Start a credential chain for the sigv4 block (NULL: defaults) and wrap it in a signer
 * (aws/awssign.h). */
int collector_aws_signer_new(const struct cfg_sigv4 *s, const char *url, const char *name,
                             struct aws_signer **out, char *err, size_t errlen);

/* ---- subcommands ---------------------------------------------------------- */

int collector_cmd_run(int argc, char **argv);
int collector_cmd_scrape(int argc, char **argv);
int collector_cmd_check_config(int argc, char **argv);
int collector_cmd_lint(int argc, char **argv);
int collector_cmd_query(int argc, char **argv);
int collector_cmd_scaler(int argc, char **argv);

#define COLLECTOR_DEFAULT_LISTEN ":9464"

#endif
