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
    atomic_bool monitors_changed; /* monitor_discovery saw a change */
    int64_t deadline_ms;          /* --run-for: 0 = none (monotonic) */
    sigset_t sigs;
    _Atomic uint64_t reloads_ok, reloads_failed;
    atomic_bool last_reload_ok;
    double last_reload_time;
};

static void run_usage(FILE *f)
{
    fprintf(f, "usage: scrapeship run [--config FILE] [--stdout] [--format text|json]\n"
               "                      [--web.listen-address ADDR] [--log.level debug|info|warn|error]\n"
               "                      [--log.format logfmt|json] [--run-for DURATION]\n"
               "                      [--shutdown-timeout DURATION] [--storage.path DIR] [--tee FILE]\n"
               "                      [--web.enable-lifecycle] [--web.config.file FILE]\n"
               "                      [--web.unauthenticated-probes true|false] [--web.max-connections N]\n"
               "                      [--web.read-timeout DURATION]\n"
               "Without --config, runs the embedded default (scrapes its own /metrics).\n");
}

static void request_reload(void *ud)
{
    struct run_state *st = ud;
    atomic_store(&st->reload_requested, true);
    scrape_manager_stop(st->m);
}

/* monitor_discovery built a new job set (from its builder thread). */
static void monitors_changed(void *ud)
{
    struct run_state *st = ud;
    atomic_store(&st->monitors_changed, true);
    if (st->m)
        scrape_manager_stop(st->m);
}

/* Start monitor_discovery for config c (if it has the section) and wait, at most 10 s,
 * for its first job set (the first LIST of every watcher, then the translation), so
 * that the first job set already has the monitors. Later ones come when built. */
static int monitors_start(struct run_state *st, const struct cfg *c, struct collector_monitors **out)
{
    char err[1024] = "";
    *out = NULL;
    if (!c->monitors.enabled)
        return 0;
    if (collector_monitors_start(c, monitors_changed, st, out, err, sizeof err) != 0) {
        ss_error("config", "monitor_discovery: %s", err);
        return SS_ECONFIG;
    }
    for (int i = 0; i < 200 && !collector_monitors_built(*out) && !atomic_load(&st->exit_requested); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Hand the engine the config's jobs plus those generated from monitors. When only the
 * monitors changed (base_changed false) and their jobs cannot be put together (out of
 * memory), the engine keeps what it runs; after a new config it gets the config's jobs
 * alone rather than jobs of the old config. */
static int set_all_jobs(struct run_state *st, struct collector_monitors *mon,
                        const struct collector_jobs *jobs, bool base_changed)
{
    const struct scrape_job *all = jobs->jobs;
    size_t n = jobs->njobs;
    atomic_store(&st->monitors_changed, false);
    if (mon && collector_monitors_rebuild(mon, jobs, &all, &n) != 0) {
        if (!base_changed)
            return SS_ENOMEM;
        all = jobs->jobs;
        n = jobs->njobs;
    }
    int rc = scrape_manager_set_jobs(st->m, all, n);
    if (mon)
        collector_monitors_release_old(mon);
    return rc;
}

/* POST /-/quit (with --web.enable-lifecycle): as SIGTERM. */
static void request_quit(void *ud)
{
    struct run_state *st = ud;
    ss_info("main", "termination requested over HTTP, shutting down");
    atomic_store(&st->exit_requested, true);
    scrape_manager_stop(st->m);
}

static void *signal_thread(void *ud)
{
    struct run_state *st = ud;
    while (!atomic_load(&st->exit_requested)) {
        /* Wake for a signal or for --run-for's deadline only: the shutdown wakes this
         * thread with a signal of its own (pthread_kill below), and a periodic wakeup
         * was a measurable part of an idle sidecar's CPU (README, Performance). */
        int sig;
        if (st->deadline_ms) {
            int64_t left = st->deadline_ms - ss_mono_ms();
            if (left < 0)
                left = 0;
            struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000};
            sig = sigtimedwait(&st->sigs, NULL, &ts);
        } else {
            sig = sigwaitinfo(&st->sigs, NULL);
        }
        if (atomic_load(&st->exit_requested))
            break; /* the shutdown's own wakeup, or a signal after it began */
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
    return ss_buf_printf(
        out,
        "# HELP scrapeship_config_last_reload_successful Whether the last configuration reload succeeded.\n"
        "# TYPE scrapeship_config_last_reload_successful gauge\n"
        "scrapeship_config_last_reload_successful %d\n"
        "# HELP scrapeship_config_reloads_total Configuration reloads by result.\n"
        "# TYPE scrapeship_config_reloads_total counter\n"
        "scrapeship_config_reloads_total{result=\"success\"} %llu\n"
        "scrapeship_config_reloads_total{result=\"failure\"} %llu\n",
        atomic_load(&st->last_reload_ok) ? 1 : 0, (unsigned long long)atomic_load(&st->reloads_ok),
        (unsigned long long)atomic_load(&st->reloads_failed));
}

/* The embedded default scrapes our own endpoint: point it at the address we listen
 * on ("0.0.0.0:p" and ":p" are reached through loopback). */
static char *embedded_config(const char *listen)
{
    char target[300];
    if (listen[0] == ':')
        snprintf(target, sizeof target, "127.0.0.1%s", listen);
    else if (strncmp(listen, "0.0.0.0:", 8) == 0)
        snprintf(target, sizeof target, "127.0.0.1:%s", listen + 8);
    else if (strncmp(listen, "[::]:", 5) == 0)
        snprintf(target, sizeof target, "[::1]:%s", listen + 5);
    else
        snprintf(target, sizeof target, "%s", listen);
    const char *def = cfg_embedded_default();
    const char *at = strstr(def, "127.0.0.1:9464");
    size_t n = strlen(def) + strlen(target) + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    if (!at)
        snprintf(out, n, "%s", def);
    else
        snprintf(out, n, "%.*s%s%s", (int)(at - def), def, target, at + strlen("127.0.0.1:9464"));
    return out;
}

/* Load and compile a config. On failure nothing is changed. */
static int load_config(const char *path, const char *listen, const char *storage, struct cfg **cfgp,
                       struct collector_jobs *jobs)
{
    char err[1024] = "";
    struct cfg *c = NULL;
    char *emb = path ? NULL : embedded_config(listen);
    int rc = path  ? cfg_load_file(path, &c, err, sizeof err)
             : emb ? cfg_load_string(emb, strlen(emb), "<embedded>", &c, err, sizeof err)
                   : SS_ENOMEM;
    free(emb);
    if (!rc && storage) { /* --storage.path wins over the file's storage.path */
        free(c->storage_path);
        c->storage_path = strdup(storage);
        if (!c->storage_path)
            rc = SS_ENOMEM;
        if (!c->storage_max_disk_bytes)
            c->storage_max_disk_bytes = 1ULL << 30;
        if (!c->storage_fsync_interval_ms)
            c->storage_fsync_interval_ms = 1000;
    }
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
        {"shutdown-timeout", required_argument, 0, 'T'},
        {"tee", required_argument, 0, 't'},
        {"storage.path", required_argument, 0, 'S'},
        {"web.enable-lifecycle", no_argument, 0, COLLECTOR_OPT_WEB_LIFECYCLE},
        COLLECTOR_WEB_LONG_OPTIONS,
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *config = NULL, *listen = COLLECTOR_DEFAULT_LISTEN, *tee_path = NULL;
    struct collector_http_opts web = {0};
    const char *storage = NULL;
    bool to_stdout = false;
    enum collector_output_format fmt = COLLECTOR_OUTPUT_TEXT;
    int64_t run_for = 0, shutdown_timeout = 30000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:sf:l:L:F:r:T:t:S:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': to_stdout = true; break;
        case 'f': fmt = strcmp(optarg, "json") == 0 ? COLLECTOR_OUTPUT_JSON : COLLECTOR_OUTPUT_TEXT; break;
        case 'l': listen = optarg; break;
        case 'L':
            if (strcmp(optarg, "debug") == 0)
                ss_log_set_level(SS_LOG_DEBUG);
            else if (strcmp(optarg, "info") == 0)
                ss_log_set_level(SS_LOG_INFO);
            else if (strcmp(optarg, "warn") == 0)
                ss_log_set_level(SS_LOG_WARN);
            else if (strcmp(optarg, "error") == 0)
                ss_log_set_level(SS_LOG_ERROR);
            else {
                fprintf(stderr, "scrapeship run: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'F': ss_log_set_json(strcmp(optarg, "json") == 0); break;
        case 'r':
            if (ss_parse_duration_ms(optarg, &run_for)) {
                fprintf(stderr, "scrapeship run: invalid --run-for \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'T':
            if (ss_parse_duration_ms(optarg, &shutdown_timeout)) {
                fprintf(stderr, "scrapeship run: invalid --shutdown-timeout \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 't': tee_path = optarg; break;
        case 'S': storage = optarg; break;
        case 'h': run_usage(stdout); return 0;
        default: {
            int w = collector_web_flag("run", c, optarg, &web);
            if (w < 0)
                return 2;
            if (w == 0) {
                run_usage(stderr);
                return 2;
            }
        }
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
    struct collector_shipper *shipper = NULL;
    struct collector_http *health = NULL;
    struct collector_otel *otel_out = NULL;
    FILE *tee_file = NULL;
    struct collector_stdout *tee = NULL;
    struct collector_tee tee_pair = {0};
    pthread_t sigthr;
    bool sig_started = false;
    struct collector_monitors *mon = NULL;

    if (load_config(config, listen, storage, &cfgp, &jobs) != 0)
        return 1;
    if (cfgp->notel_ignored) { /* one warning naming everything that does not run */
        char list[2048] = "";
        for (size_t i = 0; i < cfgp->notel_ignored; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "; " : "",
                     cfgp->otel_ignored[i]);
        ss_warn("config", "OpenTelemetry collector config: ignored: %s", list);
    }
    struct scrape_sink sink;
    if (to_stdout) {
        if (collector_stdout_new(stdout, fmt, &out) != 0)
            goto done;
        collector_stdout_sink(out, &sink);
        /* print what the first exporter would ship */
        if (cfgp->nremote_writes && cfgp->remote_writes[0].otel.enabled) {
            struct scrape_sink direct = sink;
            if (collector_otel_new(&cfgp->remote_writes[0].otel, &direct, &otel_out) != 0)
                goto done;
            collector_otel_sink(otel_out, &sink);
        }
    } else {
        char err[1024] = "";
        if (!cfgp->nremote_writes) {
            ss_error("main", "%s has no remote_write: nothing to ship to (use --stdout to print)",
                     config ? config : "the embedded default");
            goto done;
        }
        if (collector_shipper_new(cfgp, &shipper, err, sizeof err) != 0) {
            ss_error("main", "%s", err);
            goto done;
        }
        collector_shipper_sink(shipper, &sink);
        if (tee_path) {
            /* debugging and tests: also write what is shipped, as JSON lines */
            tee_file = fopen(tee_path, "w");
            if (!tee_file || collector_stdout_new(tee_file, COLLECTOR_OUTPUT_JSON, &tee) != 0) {
                ss_error("main", "cannot write --tee file %s", tee_path);
                goto done;
            }
            collector_tee_sink(&tee_pair, &sink, tee, &sink);
        }
    }
    struct scrape_manager_opts mopts = {.external_labels = jobs.external_labels,
                                        .nexternal_labels = jobs.nexternal_labels};
    if (scrape_manager_new(&mopts, &sink, &st.m) != 0)
        goto done;
    ss_metrics_register((ss_metrics_render_fn)scrape_manager_render_metrics, st.m);
    ss_metrics_register(render_run_metrics, &st);
    ss_metrics_register(collector_shipper_render_metrics, &shipper);
    web.listen = listen;
    web.on_reload = request_reload;
    web.on_quit = request_quit;
    web.ud = &st;
    if (collector_http_start(&web, &http) != 0)
        goto done;
    if (cfgp->health_check_endpoint) {
        /* extensions.health_check: "/" answers 200 once running, as the collector's does */
        struct collector_http_opts ho = {.listen = cfgp->health_check_endpoint};
        if (collector_http_start(&ho, &health) != 0)
            goto done;
    }
    if (monitors_start(&st, cfgp, &mon) != 0)
        goto done;
    if (set_all_jobs(&st, mon, &jobs, true) != 0)
        goto done;
    ss_info("main", "scrapeship %s started: %zu jobs from %s", SS_VERSION, jobs.njobs,
            config ? config : "the embedded default");
    if (run_for)
        st.deadline_ms = ss_mono_ms() + run_for;
    if (pthread_create(&sigthr, NULL, signal_thread, &st) != 0)
        goto done;
    sig_started = true;
    collector_http_set_ready(http, true);
    /* started: config parsing, job setup and the first connections are behind us */
    size_t trimmed = ss_mem_trim();
    ss_debug("main", "gave back %zu KiB of start-up pages", trimmed);

    while (!atomic_load(&st.exit_requested)) {
        /* a job set built (and coalesced) on monitor discovery's builder thread; also
         * after a reload that failed while one was offered */
        if (atomic_load(&st.monitors_changed) && !atomic_load(&st.reload_requested))
            set_all_jobs(&st, mon, &jobs, false);
        scrape_manager_run(st.m);
        if (atomic_exchange(&st.reload_requested, false) && !atomic_load(&st.exit_requested)) {
            struct cfg *nc = NULL;
            struct collector_jobs nj = {0};
            struct collector_monitors *nmon = NULL;
            /* An unchanged monitor_discovery keeps running: its watches, its translated
             * monitors and their discoverers carry over, and nothing waits for a first
             * job set. */
            bool keep_mon = false;
            int lrc = load_config(config, listen, storage, &nc, &nj);
            if (!lrc && mon && collector_monitors_same(mon, nc)) {
                nmon = mon;
                keep_mon = true;
            } else if (!lrc) {
                lrc = monitors_start(&st, nc, &nmon);
            }
            if (lrc != 0) {
                collector_jobs_free(&nj);
                cfg_free(nc);
                atomic_fetch_add(&st.reloads_failed, 1);
                atomic_store(&st.last_reload_ok, false);
                continue;
            }
            if (shipper) {
                char err[1024] = "";
                struct collector_shipper *ns = NULL;
                /* /metrics must not read the shipper while it is being replaced */
                ss_metrics_unregister(collector_shipper_render_metrics, &shipper);
                if (collector_shipper_reload(shipper, nc, &ns, ss_mono_ms() + shutdown_timeout, err,
                                             sizeof err) != 0) {
                    ss_metrics_register(collector_shipper_render_metrics, &shipper);
                    ss_error("config", "reload failed, keeping the running configuration: %s", err);
                    if (!keep_mon)
                        collector_monitors_stop(nmon);
                    collector_jobs_free(&nj);
                    cfg_free(nc);
                    atomic_fetch_add(&st.reloads_failed, 1);
                    atomic_store(&st.last_reload_ok, false);
                    continue;
                }
                shipper = ns;
                ss_metrics_register(collector_shipper_render_metrics, &shipper);
                collector_shipper_sink(shipper, &sink);
                if (tee)
                    collector_tee_sink(&tee_pair, &sink, tee, &sink);
                scrape_manager_set_sink(st.m, &sink);
            }
            set_all_jobs(&st, nmon, &nj, true);
            scrape_manager_set_external_labels(st.m, nj.external_labels, nj.nexternal_labels);
            if (!keep_mon)
                collector_monitors_stop(mon); /* the engine no longer holds its jobs */
            mon = nmon;
            collector_jobs_free(&jobs);
            cfg_free(cfgp);
            jobs = nj;
            cfgp = nc;
            atomic_fetch_add(&st.reloads_ok, 1);
            atomic_store(&st.last_reload_ok, true);
            ss_info("main", "configuration reloaded: %zu jobs", jobs.njobs);
            ss_mem_trim();
        }
    }
    ret = 0;
done:
    atomic_store(&st.exit_requested, true);
    if (sig_started) {
        pthread_kill(sigthr, SIGTERM); /* blocked everywhere: it waits for it (signal_thread) */
        pthread_join(sigthr, NULL);
    }
    collector_http_set_ready(http, false);
    if (shipper) {
        /* Scraping has stopped: deliver what is queued, within --shutdown-timeout. */
        int64_t t0 = ss_mono_ms();
        uint64_t unsent = collector_shipper_shutdown(shipper, t0 + shutdown_timeout);
        if (unsent)
            ss_error("main", "%llu samples could not be delivered before the shutdown deadline (%lldms)",
                     (unsigned long long)unsent, (long long)shutdown_timeout);
        else
            ss_info("main", "all queued samples delivered in %lldms", (long long)(ss_mono_ms() - t0));
    }
    collector_http_stop(http);
    collector_http_stop(health);
    ss_metrics_unregister(collector_shipper_render_metrics, &shipper);
    collector_shipper_free(shipper);
    collector_stdout_free(tee);
    if (tee_file)
        fclose(tee_file);
    ss_metrics_unregister(render_run_metrics, &st);
    ss_metrics_unregister((ss_metrics_render_fn)scrape_manager_render_metrics, st.m);
    collector_monitors_halt(mon); /* its builder stops st.m when a job set is ready */
    scrape_manager_free(st.m);
    collector_otel_free(otel_out);
    collector_monitors_stop(mon);
    collector_stdout_free(out);
    collector_jobs_free(&jobs);
    cfg_free(cfgp);
    if (ret == 0)
        ss_info("main", "stopped");
    return ret;
}
