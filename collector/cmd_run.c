/* cmd_run.c: `scrapeship run`, the long-running collector.
 *
 * Threads: this one runs the scrape engine; libmicrohttpd has its own for /metrics;
 * a signal thread turns SIGTERM/SIGINT into a clean stop and SIGHUP (and POST
 * /-/reload) into a config reload. All signals are blocked everywhere else, so no
 * library thread ever receives them.
 *
 * A reload that fails (bad file) keeps the running config, logs why and counts it
 * in scrapeship_config_last_reload_successful / _reloads_failed_total. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"

struct run_state {
    struct scrape_manager *m;
    atomic_bool exit_requested;
    atomic_bool reload_requested;
    int64_t deadline_ms; /* --run-for: 0 = none (monotonic) */
    sigset_t sigs;
    _Atomic uint64_t reloads_ok, reloads_failed;
    atomic_bool last_reload_ok;
    double last_reload_time;
};

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: scrapeship run [--config FILE] [--stdout] [--format text|json]\n"
            "                      [--web.listen-address ADDR] [--log.level debug|info|warn|error]\n"
            "                      [--log.format logfmt|json] [--run-for DURATION]\n"
            "Without --config, runs the embedded default (scrapes its own /metrics).\n");
}

static void request_reload(void *ud)
{
    struct run_state *st = ud;
    atomic_store(&st->reload_requested, true);
    scrape_manager_stop(st->m);
}

static void *signal_thread(void *ud)
{
    struct run_state *st = ud;
    while (!atomic_load(&st->exit_requested)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&st->sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            ss_info("main", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            atomic_store(&st->exit_requested, true);
            scrape_manager_stop(st->m);
        } else if (sig == SIGHUP) {
            ss_info("main", "received SIGHUP, reloading configuration");
            request_reload(st);
        }
        if (st->deadline_ms && ss_mono_ms() >= st->deadline_ms) {
            atomic_store(&st->exit_requested, true);
            scrape_manager_stop(st->m);
        }
    }
    return NULL;
}

static int render_run_metrics(void *ud, struct ss_buf *out)
{
    struct run_state *st = ud;
    return ss_buf_printf(out,
                         "# HELP scrapeship_config_last_reload_successful Whether the last configuration reload succeeded.\n"
                         "# TYPE scrapeship_config_last_reload_successful gauge\n"
                         "scrapeship_config_last_reload_successful %d\n"
                         "# HELP scrapeship_config_reloads_total Configuration reloads by result.\n"
                         "# TYPE scrapeship_config_reloads_total counter\n"
                         "scrapeship_config_reloads_total{result=\"success\"} %llu\n"
                         "scrapeship_config_reloads_total{result=\"failure\"} %llu\n",
                         atomic_load(&st->last_reload_ok) ? 1 : 0,
                         (unsigned long long)atomic_load(&st->reloads_ok),
                         (unsigned long long)atomic_load(&st->reloads_failed));
}

/* Load and compile a config. On failure nothing is changed. */
static int load_config(const char *path, struct cfg **cfgp, struct collector_jobs *jobs)
{
    char err[1024] = "";
    struct cfg *c = NULL;
    int rc = path ? cfg_load_file(path, &c, err, sizeof err)
                  : cfg_load_string(cfg_embedded_default(), strlen(cfg_embedded_default()),
                                    "<embedded>", &c, err, sizeof err);
    if (!rc)
        rc = collector_jobs_build(c, jobs, err, sizeof err);
    if (rc) {
        ss_error("config", "cannot load configuration: %s", err);
        cfg_free(c);
        return rc;
    }
    *cfgp = c;
    return 0;
}

int collector_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"config.file", required_argument, 0, 'c'},
        {"stdout", no_argument, 0, 's'},
        {"format", required_argument, 0, 'f'},
        {"web.listen-address", required_argument, 0, 'l'},
        {"log.level", required_argument, 0, 'L'},
        {"log.format", required_argument, 0, 'F'},
        {"run-for", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *config = NULL, *listen = COLLECTOR_DEFAULT_LISTEN;
    bool to_stdout = false;
    enum collector_output_format fmt = COLLECTOR_OUTPUT_TEXT;
    int64_t run_for = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:sf:l:L:F:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': to_stdout = true; break;
        case 'f': fmt = strcmp(optarg, "json") == 0 ? COLLECTOR_OUTPUT_JSON : COLLECTOR_OUTPUT_TEXT; break;
        case 'l': listen = optarg; break;
        case 'L':
            if (strcmp(optarg, "debug") == 0) ss_log_set_level(SS_LOG_DEBUG);
            else if (strcmp(optarg, "info") == 0) ss_log_set_level(SS_LOG_INFO);
            else if (strcmp(optarg, "warn") == 0) ss_log_set_level(SS_LOG_WARN);
            else if (strcmp(optarg, "error") == 0) ss_log_set_level(SS_LOG_ERROR);
            else { fprintf(stderr, "scrapeship run: unknown log level \"%s\"\n", optarg); return 2; }
            break;
        case 'F': ss_log_set_json(strcmp(optarg, "json") == 0); break;
        case 'r':
            if (ss_parse_duration_ms(optarg, &run_for)) {
                fprintf(stderr, "scrapeship run: invalid --run-for \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h': run_usage(stdout); return 0;
        default: run_usage(stderr); return 2;
        }
    }

    struct run_state st = {0};
    atomic_store(&st.last_reload_ok, true);
    sigemptyset(&st.sigs);
    sigaddset(&st.sigs, SIGTERM);
    sigaddset(&st.sigs, SIGINT);
    sigaddset(&st.sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &st.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1;
    struct cfg *cfgp = NULL;
    struct collector_jobs jobs = {0};
    struct collector_stdout *out = NULL;
    struct collector_http *http = NULL;
    pthread_t sigthr;
    bool sig_started = false;

    if (load_config(config, &cfgp, &jobs) != 0)
        return 1;
    if (!to_stdout) {
        ss_error("main", "remote_write shipping is not built yet: run with --stdout to print samples");
        goto done;
    }
    struct scrape_sink sink;
    if (collector_stdout_new(stdout, fmt, jobs.external_labels, jobs.nexternal_labels, &out) != 0)
        goto done;
    collector_stdout_sink(out, &sink);
    if (scrape_manager_new(NULL, &sink, &st.m) != 0)
        goto done;
    ss_metrics_register((ss_metrics_render_fn)scrape_manager_render_metrics, st.m);
    ss_metrics_register(render_run_metrics, &st);
    if (collector_http_start(listen, request_reload, &st, &http) != 0)
        goto done;
    if (scrape_manager_set_jobs(st.m, jobs.jobs, jobs.njobs) != 0)
        goto done;
    ss_info("main", "scrapeship %s started: %zu jobs from %s", SS_VERSION, jobs.njobs,
            config ? config : "the embedded default");
    if (run_for)
        st.deadline_ms = ss_mono_ms() + run_for;
    if (pthread_create(&sigthr, NULL, signal_thread, &st) != 0)
        goto done;
    sig_started = true;
    collector_http_set_ready(http, true);

    while (!atomic_load(&st.exit_requested)) {
        scrape_manager_run(st.m);
        if (atomic_exchange(&st.reload_requested, false) && !atomic_load(&st.exit_requested)) {
            struct cfg *nc = NULL;
            struct collector_jobs nj = {0};
            if (load_config(config, &nc, &nj) != 0) {
                atomic_fetch_add(&st.reloads_failed, 1);
                atomic_store(&st.last_reload_ok, false);
                continue;
            }
            scrape_manager_set_jobs(st.m, nj.jobs, nj.njobs);
            collector_stdout_set_external(out, nj.external_labels, nj.nexternal_labels);
            collector_jobs_free(&jobs);
            cfg_free(cfgp);
            jobs = nj;
            cfgp = nc;
            atomic_fetch_add(&st.reloads_ok, 1);
            atomic_store(&st.last_reload_ok, true);
            ss_info("main", "configuration reloaded: %zu jobs", jobs.njobs);
        }
    }
    ret = 0;
done:
    atomic_store(&st.exit_requested, true);
    if (sig_started)
        pthread_join(sigthr, NULL);
    collector_http_stop(http);
    ss_metrics_unregister(render_run_metrics, &st);
    ss_metrics_unregister((ss_metrics_render_fn)scrape_manager_render_metrics, st.m);
    scrape_manager_free(st.m);
    collector_stdout_free(out);
    collector_jobs_free(&jobs);
    cfg_free(cfgp);
    if (ret == 0)
        ss_info("main", "stopped");
    return ret;
}
