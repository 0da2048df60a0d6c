/* cmd_scrape.c: `scrapeship scrape` and `scrapeship check-config`.
 *
 * scrape: scrape once and print every sample as it would be shipped. Targets come
 * from URLs on the command line (one job, --job, default "scrape"; each URL's scheme,
 * path and query become __scheme__, __metrics_path__ and __param_* labels, exactly as
 * if relabeling had set them) or from every job of --config. Exit status 0 when every
 * target was up, 1 when any failed, 2 on usage or config errors. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

static void scrape_usage(FILE *f)
{
    fprintf(f, "usage: scrapeship scrape [--config FILE] [--format text|json] [--job NAME]\n"
               "                         [--timeout DURATION] [--honor-labels] [--strict] [URL...]\n"
               "--strict: fail a scrape on what `scrapeship lint` calls an error\n");
}

/* One static group per URL; all strings owned by the url_groups arena. */
struct url_groups {
    struct ss_arena arena;
    struct scrape_target_group *groups;
    size_t n;
};

static int add_url(struct url_groups *u, const char *url, char *err, size_t errlen)
{
    CURLU *h = curl_url();
    if (!h)
        return SS_ENOMEM;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = SS_EINVAL;
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "invalid URL \"%s\"", url);
        goto fail;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "invalid URL \"%s\": scheme must be http or https", url);
        goto fail;
    }
    curl_url_get(h, CURLUPART_PORT, &port, 0);
    curl_url_get(h, CURLUPART_PATH, &path, 0);
    curl_url_get(h, CURLUPART_QUERY, &query, 0);

    size_t nlabels = 2;
    for (const char *q = query; q && *q; q++)
        nlabels += *q == '&';
    nlabels += query && *query;
    struct ss_kv *labels = ss_arena_alloc(&u->arena, nlabels * sizeof *labels);
    const char **targets = ss_arena_alloc(&u->arena, sizeof *targets);
    char addr[600];
    snprintf(addr, sizeof addr, "%s%s%s", host, port ? ":" : "", port ? port : "");
    char *a = ss_arena_strndup(&u->arena, addr, strlen(addr));
    char *s = ss_arena_strndup(&u->arena, scheme, strlen(scheme));
    const char *pth = path ? path : "/metrics";
    if (strcmp(pth, "/") == 0 && !strstr(url + strlen(scheme) + 3, "/"))
        pth = "/metrics";
    char *p = ss_arena_strndup(&u->arena, pth, strlen(pth));
    if (!labels || !targets || !a || !s || !p) {
        rc = SS_ENOMEM;
        goto fail;
    }
    targets[0] = a;
    size_t nl = 0;
    labels[nl++] = (struct ss_kv){"__scheme__", s};
    labels[nl++] = (struct ss_kv){"__metrics_path__", p};
    if (query && *query) {
        char *qcopy = ss_arena_strndup(&u->arena, query, strlen(query));
        char *save = NULL;
        for (char *kv = strtok_r(qcopy, "&", &save); kv && nl < nlabels; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (eq)
                *eq = '\0';
            int klen = 0, vlen = 0;
            char *k = curl_easy_unescape(NULL, kv, 0, &klen);
            char *v = curl_easy_unescape(NULL, eq ? eq + 1 : "", 0, &vlen);
            char name[512];
            snprintf(name, sizeof name, "__param_%s", k ? k : "");
            labels[nl++] = (struct ss_kv){ss_arena_strndup(&u->arena, name, strlen(name)),
                                          ss_arena_strndup(&u->arena, v ? v : "", v ? (size_t)vlen : 0)};
            curl_free(k);
            curl_free(v);
        }
    }
    struct scrape_target_group *ng = realloc(u->groups, (u->n + 1) * sizeof *ng);
    if (!ng) {
        rc = SS_ENOMEM;
        goto fail;
    }
    u->groups = ng;
    u->groups[u->n++] = (struct scrape_target_group){targets, 1, labels, nl};
    rc = 0;
fail:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(h);
    return rc;
}

int collector_cmd_scrape(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"format", required_argument, 0, 'f'},
        {"job", required_argument, 0, 'j'},    {"timeout", required_argument, 0, 't'},
        {"honor-labels", no_argument, 0, 'H'}, {"strict", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *config = NULL, *job_name = "scrape", *timeout = "10s";
    enum collector_output_format fmt = COLLECTOR_OUTPUT_TEXT;
    bool honor = false, strict = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:f:j:t:HSh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                fmt = COLLECTOR_OUTPUT_JSON;
            else if (strcmp(optarg, "text") == 0)
                fmt = COLLECTOR_OUTPUT_TEXT;
            else {
                fprintf(stderr, "scrapeship scrape: unknown format \"%s\" (text or json)\n", optarg);
                return 2;
            }
            break;
        case 'j': job_name = optarg; break;
        case 't': timeout = optarg; break;
        case 'H': honor = true; break;
        case 'S': strict = true; break;
        case 'h': scrape_usage(stdout); return 0;
        default: scrape_usage(stderr); return 2;
        }
    }
    if (!config && optind >= argc) {
        scrape_usage(stderr);
        return 2;
    }

    int ret = 2;
    char err[1024] = "";
    struct cfg *cfgp = NULL;
    struct collector_jobs jobs = {0};
    struct url_groups urls = {0};
    struct scrape_job url_job = {0};
    struct collector_stdout *out = NULL;
    struct scrape_manager *m = NULL;
    struct collector_otel *otel = NULL;
    ss_arena_init(&urls.arena, 4096);

    const struct scrape_job *jobv;
    size_t njobs;
    const struct ss_kv *ext = NULL;
    size_t next = 0;
    if (config) {
        if (cfg_load_file(config, &cfgp, err, sizeof err) != 0 ||
            collector_jobs_build(cfgp, &jobs, err, sizeof err) != 0) {
            fprintf(stderr, "scrapeship scrape: %s\n", err);
            goto done;
        }
        for (size_t i = 0; strict && i < jobs.njobs; i++)
            jobs.jobs[i].strict_parsing = true;
        jobv = jobs.jobs;
        njobs = jobs.njobs;
        ext = jobs.external_labels;
        next = jobs.nexternal_labels;
    } else {
        for (int i = optind; i < argc; i++)
            if (add_url(&urls, argv[i], err, sizeof err) != 0) {
                fprintf(stderr, "scrapeship scrape: %s\n", err);
                goto done;
            }
        int64_t to;
        if (ss_parse_duration_ms(timeout, &to) || to <= 0) {
            fprintf(stderr, "scrapeship scrape: invalid --timeout \"%s\"\n", timeout);
            goto done;
        }
        url_job.name = job_name;
        url_job.interval_ms = to > 60000 ? to : 60000;
        url_job.timeout_ms = to;
        url_job.metrics_path = "/metrics";
        url_job.scheme = "http";
        url_job.honor_labels = honor;
        url_job.honor_timestamps = true;
        url_job.strict_parsing = strict;
        url_job.http.follow_redirects = true;
        url_job.static_groups = urls.groups;
        url_job.nstatic_groups = urls.n;
        jobv = &url_job;
        njobs = 1;
    }
    struct scrape_sink sink;
    if (collector_stdout_new(stdout, fmt, &out) != 0)
        goto done;
    collector_stdout_sink(out, &sink);
    /* an OpenTelemetry collector config prints what its first exporter would ship */
    if (cfgp && cfgp->nremote_writes && cfgp->remote_writes[0].otel.enabled) {
        struct scrape_sink direct = sink;
        if (collector_otel_new(&cfgp->remote_writes[0].otel, &direct, &otel) != 0)
            goto done;
        collector_otel_sink(otel, &sink);
    }
    if (scrape_manager_new(&(struct scrape_manager_opts){.external_labels = ext, .nexternal_labels = next},
                           &sink, &m) != 0 ||
        scrape_manager_set_jobs(m, jobv, njobs) != 0)
        goto done;
    int failed = scrape_manager_scrape_once(m);
    ret = failed ? 1 : 0;
done:
    scrape_manager_free(m);
    collector_otel_free(otel);
    collector_stdout_free(out);
    collector_jobs_free(&jobs);
    cfg_free(cfgp);
    free(urls.groups);
    ss_arena_free(&urls.arena);
    return ret;
}

/* check-config FILE...: Prometheus configs; --web.config.file FILE checks a web
 * config (exporter toolkit format) instead, without reading the files it names. */
int collector_cmd_check_config(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: scrapeship check-config FILE [FILE...] [--web.config.file WEBFILE]\n");
        return argc < 2 ? 2 : 0;
    }
    int ret = 0, nconfigs = 0;
    for (int i = 1; i < argc; i++)
        nconfigs += strncmp(argv[i], "--web.config.file", 17) != 0 &&
                    (i == 1 || strcmp(argv[i - 1], "--web.config.file") != 0);
    for (int i = 1; i < argc; i++) {
        char err[1024] = "";
        const char *web = NULL;
        if (strcmp(argv[i], "--web.config.file") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "scrapeship check-config: --web.config.file needs a file\n");
                return 2;
            }
            web = argv[++i];
        } else if (strncmp(argv[i], "--web.config.file=", 18) == 0) {
            web = argv[i] + 18;
        }
        if (web) {
            struct cfg_web *w = NULL;
            if (cfg_web_load_file(web, &w, err, sizeof err) != 0) {
                fprintf(stderr, "%s\nFAILED: %s is not a valid web config\n", err, web);
                ret = 1;
            } else {
                fprintf(stderr, "SUCCESS: %s is a valid web config (%s, %zu basic auth users)\n", web,
                        w->tls ? "TLS" : "no TLS", w->nusers);
            }
            cfg_web_free(w);
            continue;
        }
        struct cfg *c = NULL;
        struct collector_jobs jobs = {0};
        if (cfg_load_file(argv[i], &c, err, sizeof err) != 0 ||
            collector_jobs_build(c, &jobs, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            fprintf(stderr, "FAILED: %s is not valid\n", argv[i]);
            ret = 1;
        } else {
            if (nconfigs == 1) {
                cfg_print(c, stdout);
                cfg_print_ignored(c, stdout);
            }
            fprintf(stderr, "SUCCESS: %s is valid\n", argv[i]);
        }
        collector_jobs_free(&jobs);
        cfg_free(c);
    }
    return ret;
}
