/* cmd_lint.c: `scrapeship lint [--format text|openmetrics|auto] [--json] URL|FILE|-`.
 *
 * Fetches (with a job's http_config from --config/--job: auth, TLS, proxy) or reads
 * one exposition, at most 64 MiB, and validates it strictly with scrape_lint_run: the
 * full OpenMetrics 1.0 grammar, prometheus/common's rules for text 0.0.4, every
 * problem on its own line as `SOURCE:LINE:COLUMN: error|warning: message`, warnings
 * worded as `promtool check metrics` words them (`NAME message`).
 * The format: --format, else the Content-Type of a URL's answer, else a file name
 * ending in .om or .openmetrics means OpenMetrics, anything else text.
 * --lint none leaves the warnings out (as later promtool's --lint=none does).
 * Exit status (promtool's): 0 clean, 1 errors (or the source could not be read),
 * 3 warnings only, 2 usage or config errors. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "httpclient.h"

#define LINT_MAX_BODY ((size_t)64 << 20)
#define LINT_ACCEPT                                                                                          \
    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"  \
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

static void lint_usage(FILE *f)
{
    fprintf(f,
            "usage: scrapeship lint [--format text|openmetrics|auto] [--json] [--config FILE [--job NAME]]\n"
            "                       [--timeout DURATION] URL|FILE|-\n");
}

struct body {
    struct ss_buf b;
    bool toobig;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct body *bd = ud;
    size_t n = size * nmemb;
    if (bd->b.len + n > LINT_MAX_BODY) {
        bd->toobig = true;
        return 0;
    }
    return ss_buf_append(&bd->b, p, n) ? 0 : n;
}

static int fetch(const char *url, const struct httpc_config *http, int64_t timeout_ms, struct body *bd,
                 char **ctype, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    int rc = SS_ENOMEM;
    if (!e)
        goto fail;
    if ((rc = httpc_add_header(&hdrs, LINT_ACCEPT)))
        goto fail;
    struct httpc_config none = {0};
    if ((rc = httpc_setup(e, http ? http : &none, &hdrs, err, errlen)))
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, bd);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION);
    if (!http)
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    CURLcode res = curl_easy_perform(e);
    rc = SS_EIO;
    if (bd->toobig) {
        snprintf(err, errlen, "body larger than %zu bytes", LINT_MAX_BODY);
        goto fail;
    }
    if (res != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(res));
        goto fail;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "server returned HTTP status %ld", status);
        goto fail;
    }
    char *ct = NULL;
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
    *ctype = ct ? strdup(ct) : NULL;
    rc = 0;
fail:
    httpc_headers_free(hdrs);
    if (e)
        curl_easy_cleanup(e);
    return rc;
}

static int read_file(const char *path, struct body *bd, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return SS_EIO;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (bd->b.len + n > LINT_MAX_BODY) {
            snprintf(err, errlen, "larger than %zu bytes", LINT_MAX_BODY);
            rc = SS_ELIMIT;
            break;
        }
        if ((rc = ss_buf_append(&bd->b, chunk, n)))
            break;
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "read error");
        rc = SS_EIO;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static bool name_is_om(const char *s)
{
    size_t n = strlen(s);
    return (n > 3 && strcmp(s + n - 3, ".om") == 0) || (n > 12 && strcmp(s + n - 12, ".openmetrics") == 0);
}

static void print_text(const char *src, const struct scrape_lint *l)
{
    for (size_t i = 0; i < scrape_lint_count(l); i++) {
        const struct scrape_lint_problem *p = scrape_lint_get(l, i);
        if (p->warning)
            printf("%s:%u:%u: warning: %s %s\n", src, p->line, p->column, p->metric, p->message);
        else
            printf("%s:%u:%u: error: %s\n", src, p->line, p->column, p->message);
    }
    if (scrape_lint_truncated(l))
        printf("%s: error: too many problems, the rest are not shown\n", src);
}

static int print_json(const char *src, enum scrape_format fmt, const struct scrape_lint *l)
{
    json_t *probs = json_array();
    size_t nerr = scrape_lint_errors(l), n = scrape_lint_count(l);
    for (size_t i = 0; probs && i < n; i++) {
        const struct scrape_lint_problem *p = scrape_lint_get(l, i);
        json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s}", "line", (json_int_t)p->line, "column",
                              (json_int_t)p->column, "severity", p->warning ? "warning" : "error", "metric",
                              p->metric, "message", p->message);
        if (!o || json_array_append_new(probs, o)) {
            json_decref(probs);
            return SS_ENOMEM;
        }
    }
    json_t *doc = json_pack("{s:s,s:s,s:I,s:I,s:b,s:o}", "source", src, "format",
                            fmt == SCRAPE_FORMAT_OPENMETRICS ? "openmetrics" : "text", "errors",
                            (json_int_t)nerr, "warnings", (json_int_t)(n - nerr), "truncated",
                            scrape_lint_truncated(l), "problems", probs);
    if (!doc)
        return SS_ENOMEM;
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!s)
        return SS_ENOMEM;
    puts(s);
    free(s);
    return 0;
}

int collector_cmd_lint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"format", required_argument, 0, 'f'},
        {"job", required_argument, 0, 'j'},    {"timeout", required_argument, 0, 't'},
        {"json", no_argument, 0, 'J'},         {"lint", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *config = NULL, *job_name = NULL, *timeout = NULL, *format = "auto";
    bool json = false, warnings = true;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:f:j:t:Jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'f': format = optarg; break;
        case 'j': job_name = optarg; break;
        case 't': timeout = optarg; break;
        case 'J': json = true; break;
        case 'l':
            if (strcmp(optarg, "none") && strcmp(optarg, "all")) {
                lint_usage(stderr);
                return 2;
            }
            warnings = strcmp(optarg, "all") == 0;
            break;
        case 'h': lint_usage(stdout); return 0;
        default: lint_usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 ||
        (strcmp(format, "auto") && strcmp(format, "text") && strcmp(format, "openmetrics"))) {
        lint_usage(stderr);
        return 2;
    }
    const char *src = argv[optind];
    int ret = 2;
    char err[1024] = "";
    struct cfg *cfgp = NULL;
    struct collector_jobs jobs = {0};
    struct body bd = {0};
    char *ctype = NULL;
    struct scrape_lint *l = NULL;
    ss_buf_init(&bd.b, 0);

    const struct httpc_config *http = NULL;
    int64_t timeout_ms = 10000;
    if (config) {
        if (cfg_load_file(config, &cfgp, err, sizeof err) != 0 ||
            collector_jobs_build(cfgp, &jobs, err, sizeof err) != 0) {
            fprintf(stderr, "scrapeship lint: %s\n", err);
            goto done;
        }
        const struct scrape_job *job = NULL;
        for (size_t i = 0; i < jobs.njobs; i++)
            if (job_name ? strcmp(jobs.jobs[i].name, job_name) == 0 : jobs.njobs == 1)
                job = &jobs.jobs[i];
        if (!job) {
            fprintf(stderr, "scrapeship lint: %s\n",
                    job_name ? "no such job in the config"
                             : "the config has several jobs: name one with --job");
            goto done;
        }
        http = &job->http;
        timeout_ms = job->timeout_ms;
    }
    if (timeout && (ss_parse_duration_ms(timeout, &timeout_ms) || timeout_ms <= 0)) {
        fprintf(stderr, "scrapeship lint: invalid --timeout \"%s\"\n", timeout);
        goto done;
    }
    ret = 1;
    int rc = is_url(src) ? fetch(src, http, timeout_ms, &bd, &ctype, err, sizeof err)
                         : read_file(src, &bd, err, sizeof err);
    if (rc) {
        fprintf(stderr, "%s: error: %s\n", strcmp(src, "-") ? src : "<stdin>", err);
        goto done;
    }
    enum scrape_format fmt = strcmp(format, "openmetrics") == 0 ? SCRAPE_FORMAT_OPENMETRICS
                             : strcmp(format, "text") == 0      ? SCRAPE_FORMAT_TEXT
                             : is_url(src)                      ? scrape_format_from_content_type(ctype)
                             : name_is_om(src)                  ? SCRAPE_FORMAT_OPENMETRICS
                                                                : SCRAPE_FORMAT_TEXT;
    if (scrape_lint_run(fmt, bd.b.data ? bd.b.data : "", bd.b.len, warnings, &l) != 0) {
        fprintf(stderr, "scrapeship lint: out of memory\n");
        goto done;
    }
    const char *name = strcmp(src, "-") ? src : "<stdin>";
    if (json) {
        if (print_json(name, fmt, l) != 0) {
            fprintf(stderr, "scrapeship lint: out of memory\n");
            goto done;
        }
    } else {
        print_text(name, l);
    }
    ret = scrape_lint_errors(l) ? 1 : scrape_lint_count(l) ? 3 : 0;
done:
    fflush(stdout);
    scrape_lint_free(l);
    free(ctype);
    ss_buf_free(&bd.b);
    collector_jobs_free(&jobs);
    cfg_free(cfgp);
    return ret;
}
