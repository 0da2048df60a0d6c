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
    struct scrape_kv *external_labels;
    size_t nexternal_labels;
};

int collector_jobs_build(const struct cfg *c, struct collector_jobs *out, char *err, size_t errlen);
void collector_jobs_free(struct collector_jobs *j);

/* ---- stdout sink (debug mode) ------------------------------------------- */

enum collector_output_format { COLLECTOR_OUTPUT_TEXT, COLLECTOR_OUTPUT_JSON };

struct collector_stdout;
/* Prints every series as it would be shipped: external labels added where the
 * series lacks them, labels sorted. Text: `name{a="b"} value timestamp_ms`; JSON
 * lines: {"labels":{...},"value":"1.5","timestamp":123,"stale":false}. */
int collector_stdout_new(FILE *out, enum collector_output_format fmt, const struct scrape_kv *ext,
                         size_t next, struct collector_stdout **outp);
int collector_stdout_set_external(struct collector_stdout *s, const struct scrape_kv *ext, size_t next);
void collector_stdout_sink(struct collector_stdout *s, struct scrape_sink *sink);
void collector_stdout_free(struct collector_stdout *s);

/* ---- self-metrics HTTP server -------------------------------------------- */

struct collector_http;
/* Serves /metrics (ss_metrics_render plus process metrics), /healthz, /readyz and
 * POST /-/reload (calls on_reload). addr: "host:port", ":port" or "[v6]:port". */
int collector_http_start(const char *addr, void (*on_reload)(void *ud), void *ud,
                         struct collector_http **out);
void collector_http_set_ready(struct collector_http *h, bool ready);
void collector_http_stop(struct collector_http *h);

/* ---- subcommands ---------------------------------------------------------- */

int collector_cmd_run(int argc, char **argv);
int collector_cmd_scrape(int argc, char **argv);
int collector_cmd_check_config(int argc, char **argv);

#define COLLECTOR_DEFAULT_LISTEN ":9464"

#endif
