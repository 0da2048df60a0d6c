/* test_otel.c: OpenTelemetry collector configs (collector/config.c) and the series
 * the OTel collector ships (collector/otel.c).
 *
 * The two public AWS examples (tests/unit/collector/otel/) load, with their
 * placeholders replaced as their READMEs ask, and print exactly their .golden files
 * (the check-config output); bad configs fail with file:line:column; and a table of
 * expositions checks each translation rule against the series that would be shipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "collector.h"
#include "config.h"
#include "scrape.h"
#include "scrape_int.h"
#include "ss.h"

#define OTEL_DIR SS_SOURCE_DIR "/tests/unit/collector/otel"
#define AMP_URL  "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Replace every `from` with `to` in s (fresh string; s is freed). */
static char *subst(char *s, const char *from, const char *to)
{
    char *out = calloc(1, strlen(s) * 2 + 4096), *o = out;
    assert_non_null(out);
    for (const char *p = s; *p;) {
        if (!strncmp(p, from, strlen(from))) {
            o += sprintf(o, "%s", to);
            p += strlen(from);
        } else {
            *o++ = *p++;
        }
    }
    free(s);
    return out;
}

static char *print_all(const struct cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(cfg_print(c, f), 0);
    assert_int_equal(cfg_print_ignored(c, f), 0);
    fclose(f);
    return buf;
}

static void golden(const char *name)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s.yaml", OTEL_DIR, name);
    char *y = slurp(path);
    y = subst(y, "REMOTE_WRITE_URL", AMP_URL);
    y = subst(y, "<YOUR_ENDPOINT>", AMP_URL);
    y = subst(y, "AWSREGION", "eu-west-1");
    y = subst(y, "<YOUR_REGION>", "eu-west-1");
    struct cfg *c = NULL;
    if (cfg_load_string(y, strlen(y), name, &c, err, sizeof err))
        fail_msg("%s: %s", name, err);
    assert_true(c->otel);
    char *got = print_all(c);
    snprintf(path, sizeof path, "%s/%s.golden", OTEL_DIR, name);
    char *want = slurp(path);
    if (strcmp(got, want))
        fail_msg("%s: printed config differs from %s:\n%s", name, path, got);
    /* what is printed is a native config that loads to the same thing */
    struct cfg *c2 = NULL;
    if (cfg_load_string(got, strlen(got), "printed", &c2, err, sizeof err))
        fail_msg("printed %s does not load: %s", name, err);
    char *again = print_all(c2);
    assert_true(!strncmp(again, got, strlen(again)));
    free(again);
    cfg_free(c2);
    free(want);
    free(got);
    free(y);
    cfg_free(c);
}

/* keda-amp-scaling: legacy exporter with aws_auth, $$1 replacements, traces pipeline. */
static void test_keda_amp_scaling(void **state)
{
    (void)state;
    golden("keda_amp_scaling");
    char err[512];
    char *y = subst(slurp(OTEL_DIR "/keda_amp_scaling.yaml"), "REMOTE_WRITE_URL", AMP_URL);
    y = subst(y, "AWSREGION", "eu-west-1");
    struct cfg *c = NULL;
    assert_int_equal(cfg_load_string(y, strlen(y), "k.yaml", &c, err, sizeof err), 0);
    assert_int_equal(c->nscrape_configs, 3);
    assert_int_equal(c->nremote_writes, 1);
    assert_string_equal(c->remote_writes[0].name, "awsprometheusremotewrite");
    assert_true(c->remote_writes[0].sigv4.enabled);
    assert_string_equal(c->remote_writes[0].sigv4.region, "eu-west-1");
    assert_string_equal(c->scrape_configs[0].relabel_configs[3].replacement, "$1:$2"); /* $$1:$$2 */
    assert_string_equal(c->scrape_configs[1].relabel_configs[0].replacement, "${1}:8888");
    assert_int_equal(c->remote_writes[0].queue.batch_send_deadline_ms, 10000); /* batch/metrics */
    assert_string_equal(c->health_check_endpoint, "0.0.0.0:13133");
    assert_int_equal(c->notel_ignored, 8);
    free(y);
    cfg_free(c);
}

/* aws-otel-collector EKS DaemonSet: prometheusremotewrite + sigv4auth + namespace. */
static void test_eks_daemonset(void **state)
{
    (void)state;
    golden("eks_prometheus_daemonset");
}

static void expect_error(const char *yaml, const char *want)
{
    char err[512];
    struct cfg *c = NULL;
    int rc = cfg_load_string(yaml, strlen(yaml), "t.yaml", &c, err, sizeof err);
    if (rc == 0) {
        cfg_free(c);
        fail_msg("expected '%s', loaded fine", want);
    }
    assert_null(c);
    if (strcmp(err, want))
        fail_msg("expected\n  '%s'\ngot\n  '%s'", want, err);
}

#define BASE_RECV                                                                                            \
    "receivers:\n"                                                                                           \
    "  prometheus:\n"                                                                                        \
    "    config:\n"                                                                                          \
    "      scrape_configs:\n"                                                                                \
    "      - job_name: a\n"                                                                                  \
    "        static_configs: [{targets: ['127.0.0.1:1']}]\n"

static void test_errors(void **state)
{
    (void)state;
    /* an unknown exporter key */
    expect_error(BASE_RECV "exporters:\n"
                           "  prometheusremotewrite:\n"
                           "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                           "    flush_interval: 5s\n"
                           "service:\n"
                           "  pipelines:\n"
                           "    metrics: {receivers: [prometheus], exporters: [prometheusremotewrite]}\n",
                 "t.yaml:10:5: unknown field \"flush_interval\" in exporters.prometheusremotewrite");
    /* a pipeline naming an undefined receiver */
    expect_error(
        BASE_RECV "exporters:\n"
                  "  prometheusremotewrite:\n"
                  "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                  "service:\n"
                  "  pipelines:\n"
                  "    metrics:\n"
                  "      receivers: [prometheus, prometheus/app]\n"
                  "      exporters: [prometheusremotewrite]\n",
        "t.yaml:13:31: receiver \"prometheus/app\" in pipeline \"metrics\" is not defined in receivers "
        "in service.pipelines.metrics.receivers");
    /* an authenticator naming an undefined extension */
    expect_error(BASE_RECV "exporters:\n"
                           "  prometheusremotewrite:\n"
                           "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                           "    auth:\n"
                           "      authenticator: sigv4auth/amp\n"
                           "extensions:\n"
                           "  sigv4auth:\n"
                           "    region: eu-west-1\n"
                           "service:\n"
                           "  extensions: [sigv4auth]\n"
                           "  pipelines:\n"
                           "    metrics: {receivers: [prometheus], exporters: [prometheusremotewrite]}\n",
                 "t.yaml:11:22: authenticator \"sigv4auth/amp\" is not defined in extensions in "
                 "exporters.prometheusremotewrite.auth");
    expect_error(BASE_RECV "    target_allocator: {endpoint: http://ta}\n"
                           "exporters: {prometheusremotewrite: {endpoint: 'http://127.0.0.1:9/w'}}\n"
                           "service: {pipelines: {metrics: {receivers: [prometheus], exporters: "
                           "[prometheusremotewrite]}}}\n",
                 "t.yaml:7:5: target_allocator is not supported yet: use kubernetes_sd_configs in config in "
                 "receivers.prometheus");
}

/* ${env:VAR}, ${VAR}, ${env:VAR:-default}, $$ */
static void test_env(void **state)
{
    (void)state;
    setenv("SS_OTEL_EP", "http://127.0.0.1:9/api/v1/write", 1);
    setenv("SS_OTEL_NS", "ns1", 1);
    const char *y = BASE_RECV "        metric_relabel_configs:\n"
                              "        - {source_labels: [a], regex: '(.*)', target_label: b, replacement: "
                              "'$$1-x'}\n"
                              "exporters:\n"
                              "  prometheusremotewrite:\n"
                              "    endpoint: ${env:SS_OTEL_EP}\n"
                              "    namespace: ${SS_OTEL_NS}\n"
                              "    external_labels: {cluster: '${env:SS_OTEL_UNSET:-dflt}', "
                              "u: 'a${env:SS_OTEL_UNSET}b${SS_OTEL_UNSET}'}\n"
                              "service: {pipelines: {metrics: {receivers: [prometheus], exporters: "
                              "[prometheusremotewrite]}}}\n";
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string(y, strlen(y), "t.yaml", &c, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(c->remote_writes[0].url, "http://127.0.0.1:9/api/v1/write");
    assert_string_equal(c->remote_writes[0].otel.namespace, "ns1");
    assert_string_equal(c->remote_writes[0].otel.external_labels[0].value, "dflt");
    /* unset without a default: "", as the collector's envprovider does (not an error) */
    assert_string_equal(c->remote_writes[0].otel.external_labels[1].value, "ab");
    assert_string_equal(c->scrape_configs[0].metric_relabel_configs[0].replacement, "$1-x");
    cfg_free(c);
}

/* Knobs real ADOT configs carry: `compression: none` (confighttp: no HTTP compression,
 * the exporter's own snappy body), tls.insecure: false, two prometheus receivers,
 * batch/metrics, a processor scrapeship does not run. */
static void test_exporter_knobs(void **state)
{
    (void)state;
    const char *y = BASE_RECV "  prometheus/two:\n"
                              "    config:\n"
                              "      scrape_configs:\n"
                              "      - job_name: b\n"
                              "        static_configs: [{targets: ['127.0.0.1:2']}]\n"
                              "processors:\n"
                              "  batch/metrics: {timeout: 60s}\n"
                              "  resourcedetection/eks: {detectors: [env, eks]}\n"
                              "exporters:\n"
                              "  prometheusremotewrite:\n"
                              "    endpoint: https://127.0.0.1:9/api/v1/write\n"
                              "    compression: none\n"
                              "    tls: {insecure: false, insecure_skip_verify: true}\n"
                              "service: {pipelines: {metrics: {receivers: [prometheus, prometheus/two], "
                              "processors: [resourcedetection/eks, batch/metrics], exporters: "
                              "[prometheusremotewrite]}}}\n";
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string(y, strlen(y), "t.yaml", &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c->nscrape_configs, 2);
    cfg_free(c);
    expect_error(BASE_RECV "exporters:\n"
                           "  prometheusremotewrite:\n"
                           "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                           "    compression: gzip\n"
                           "service: {pipelines: {metrics: {receivers: [prometheus], exporters: "
                           "[prometheusremotewrite]}}}\n",
                 "t.yaml:10:18: compression must be snappy or none: remote write 1.0 bodies are "
                 "snappy-compressed in exporters.prometheusremotewrite");
}

/* YAML merge keys, which go-yaml (in Prometheus and the collector) expands. */
static void test_merge_keys(void **state)
{
    (void)state;
    const char *y = "receivers:\n"
                    "  prometheus:\n"
                    "    config:\n"
                    "      scrape_configs:\n"
                    "      - &common\n"
                    "        job_name: a\n"
                    "        scrape_interval: 20s\n"
                    "        static_configs: [{targets: ['127.0.0.1:1']}]\n"
                    "      - <<: *common\n"
                    "        job_name: b\n"
                    "exporters:\n"
                    "  prometheusremotewrite:\n"
                    "    endpoint: http://127.0.0.1:9/api/v1/write\n"
                    "service: {pipelines: {metrics: {receivers: [prometheus], exporters: "
                    "[prometheusremotewrite]}}}\n";
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string(y, strlen(y), "t.yaml", &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(c->nscrape_configs, 2);
    assert_string_equal(c->scrape_configs[1].job_name, "b");
    assert_int_equal(c->scrape_configs[1].scrape_interval_ms, 20000);
    cfg_free(c);
    /* a bad key in the merged mapping is reported where it is written */
    const char *bad = "scrape_configs:\n"
                      "- &c\n"
                      "  job_name: a\n"
                      "  static_configs: [{targets: ['127.0.0.1:1']}]\n"
                      "- {<<: *c, job_name: b, bogus: 1}\n";
    expect_error(bad, "t.yaml:5:25: unknown field \"bogus\" in scrape_configs[1]");
}

/* ---- the translation table ---------------------------------------------------------- */

struct capture {
    char out[8192];
};

static void cap_series(void *ud, const struct scrape_series *s)
{
    struct capture *c = ud;
    char line[1024];
    size_t n = 0;
    const char *name = "";
    size_t nlen = 0;
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].name.len == 8 && !memcmp(s->labels[i].name.p, "__name__", 8)) {
            name = s->labels[i].value.p;
            nlen = s->labels[i].value.len;
        }
    n += (size_t)snprintf(line + n, sizeof line - n, "%.*s{", (int)nlen, name);
    bool first = true;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (s->labels[i].name.len == 8 && !memcmp(s->labels[i].name.p, "__name__", 8))
            continue;
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%.*s=\"%.*s\"", first ? "" : ",",
                              (int)s->labels[i].name.len, s->labels[i].name.p, (int)s->labels[i].value.len,
                              s->labels[i].value.p);
        first = false;
    }
    if (scrape_is_stale_nan(s->value))
        snprintf(line + n, sizeof line - n, "} stale %lld\n", (long long)s->timestamp_ms);
    else
        snprintf(line + n, sizeof line - n, "} %g %lld\n", s->value, (long long)s->timestamp_ms);
    strncat(c->out, line, sizeof c->out - strlen(c->out) - 1);
}

struct feed {
    struct scrape_sink *in;
    const char *job, *instance;
    int64_t ts;
};

static int feed_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct feed *f = ud;
    f->in->metadata(f->in->ud, m, f->job);
    return 0;
}

static int feed_sample(void *ud, const struct scrape_parsed_sample *p)
{
    struct feed *f = ud;
    struct ss_labels ls;
    ss_labels_init(&ls);
    ss_labels_set(&ls, (struct ss_str){"__name__", 8}, p->name);
    for (size_t i = 0; i < p->nlabels; i++)
        ss_labels_set(&ls, p->labels[i].name, p->labels[i].value);
    ss_labels_set(&ls, (struct ss_str){"job", 3}, (struct ss_str){f->job, strlen(f->job)});
    ss_labels_set(&ls, (struct ss_str){"instance", 8}, (struct ss_str){f->instance, strlen(f->instance)});
    ss_labels_sort(&ls);
    double v = p->value;
    struct scrape_series s = {ls.v, ls.n, v, f->ts, ss_labels_hash(&ls), NULL, 0, 0, 0, NULL, NULL, 0};
    f->in->series(f->in->ud, &s);
    ss_labels_free(&ls);
    return 0;
}

struct rule {
    const char *why; /* the rule, as the translator / exporter README states it */
    enum scrape_format format;
    const char *instance;
    struct cfg_otel_series o;
    const char *exposition;
    const char *want;
};

/* A rewrite with options o whose output is captured in cap; *in is its input. */
static struct collector_otel *rewrite_into(const struct cfg_otel_series *o, struct capture *cap,
                                           struct scrape_sink *in)
{
    struct scrape_sink down = {NULL, cap_series, NULL, NULL, cap, NULL};
    struct collector_otel *x = NULL;
    assert_int_equal(collector_otel_new(o, &down, &x), 0);
    collector_otel_sink(x, in);
    return x;
}

static void run_rule(const struct rule *r)
{
    struct capture cap = {.out = ""};
    struct scrape_sink in;
    struct collector_otel *x = rewrite_into(&r->o, &cap, &in);
    struct scrape_report rep = {"j", r->instance, "http://x/metrics", true, NULL, 1000, 0, NULL, 0};
    struct feed f = {&in, "j", r->instance, 1000};
    struct scrape_parser *p = NULL;
    assert_int_equal(scrape_parser_new(&(struct scrape_parser_opts){.format = r->format}, &p), 0);
    scrape_parser_reset(p, r->format);
    struct scrape_parser_cb cb = {.sample = feed_sample, .meta = feed_meta, .ud = &f};
    in.begin(in.ud, &rep);
    assert_int_equal(scrape_parser_feed(p, r->exposition, strlen(r->exposition), &cb), 0);
    assert_int_equal(scrape_parser_finish(p, &cb), 0);
    in.end(in.ud, &rep);
    scrape_parser_free(p);
    collector_otel_free(x);
    if (strcmp(cap.out, r->want))
        fail_msg("rule: %s\nwant:\n%sgot:\n%s", r->why, r->want, cap.out);
}

#define DEF                                                                                                  \
    {                                                                                                        \
        .enabled = true, .add_metric_suffixes = true, .target_info = false                                   \
    }

static void test_rules(void **state)
{
    (void)state;
    static struct cfg_kv ext[] = {{"cluster", "c1"}, {"job", "not-this"}};
    const struct rule rules[] = {
        {"prometheusremotewrite README: counters get _total (BuildCompliantName, add_metric_suffixes)",
         SCRAPE_FORMAT_TEXT, "127.0.0.1:9100", DEF, "# TYPE requests counter\nrequests{code=\"200\"} 5\n",
         "requests_total{code=\"200\",instance=\"127.0.0.1:9100\",job=\"j\"} 5 1000\n"},
        {"normalizeName: a counter already ending in _total keeps exactly one", SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100", DEF, "# TYPE http_total_requests_total counter\nhttp_total_requests_total 1\n",
         "http_requests_total{instance=\"127.0.0.1:9100\",job=\"j\"} 1 1000\n"},
        {"normalizeName: a UNIT already in the name is not appended again; OpenMetrics _created is a "
         "start time for the receiver, not a series",
         SCRAPE_FORMAT_OPENMETRICS, "127.0.0.1:9100", DEF,
         "# TYPE rt_seconds counter\n# UNIT rt_seconds seconds\nrt_seconds_total 3\nrt_seconds_created "
         "1.5e9\n# EOF\n",
         "rt_seconds_total{instance=\"127.0.0.1:9100\",job=\"j\"} 3 1000\n"},
        {"normalizeName: an OpenMetrics UNIT of two words is appended whole (no single name token is it)",
         SCRAPE_FORMAT_OPENMETRICS, "127.0.0.1:9100", DEF,
         "# TYPE power_kilo_watts gauge\n# UNIT power_kilo_watts kilo_watts\npower_kilo_watts 2\n# EOF\n",
         "power_kilo_watts_kilo_watts{instance=\"127.0.0.1:9100\",job=\"j\"} 2 1000\n"},
        {"normalizeName: names are their alphanumeric tokens joined by _", SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100", DEF, "# TYPE cpu:use__now gauge\ncpu:use__now 0.5\n",
         "cpu_use_now{instance=\"127.0.0.1:9100\",job=\"j\"} 0.5 1000\n"},
        {"histograms keep _bucket/_sum/_count after the name", SCRAPE_FORMAT_TEXT, "127.0.0.1:9100", DEF,
         "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\n",
         "lat_bucket{instance=\"127.0.0.1:9100\",job=\"j\",le=\"+Inf\"} 2 1000\n"
         "lat_sum{instance=\"127.0.0.1:9100\",job=\"j\"} 3 1000\n"
         "lat_count{instance=\"127.0.0.1:9100\",job=\"j\"} 2 1000\n"},
        {"prometheusremotewrite README: namespace prefixes every metric name",
         SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100",
         {.enabled = true, .add_metric_suffixes = true, .namespace = "adot"},
         "# TYPE g gauge\ng 1\n",
         "adot_g{instance=\"127.0.0.1:9100\",job=\"j\"} 1 1000\n"},
        {"add_metric_suffixes: false keeps names as scraped",
         SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100",
         {.enabled = true, .add_metric_suffixes = false},
         "# TYPE requests counter\nrequests 5\n",
         "requests{instance=\"127.0.0.1:9100\",job=\"j\"} 5 1000\n"},
        {"NormalizeLabel: a label starting with one _ gets the key prefix", SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100", DEF, "g{_x=\"1\"} 1\n",
         "g{instance=\"127.0.0.1:9100\",job=\"j\",key_x=\"1\"} 1 1000\n"},
        {"createAttributes: names NormalizeLabel makes equal are one label, values joined by ; in the "
         "order of the original names (never a duplicate label name, which a receiver refuses)",
         SCRAPE_FORMAT_TEXT, "127.0.0.1:9100", DEF, "g{_x=\"1\",key_x=\"2\"} 1\n",
         "g{instance=\"127.0.0.1:9100\",job=\"j\",key_x=\"1;2\"} 1 1000\n"},
        {"resource_to_telemetry_conversion: a scraped service_name joins the resource's service.name "
         "(sorted first)",
         SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100",
         {.enabled = true, .add_metric_suffixes = true, .resource_to_telemetry = true},
         "g{service_name=\"svc\",http_scheme=\"h2\"} 1\n",
         "g{http_scheme=\"http;h2\",instance=\"127.0.0.1:9100\",job=\"j\",net_host_port=\"9100\","
         "service_instance_id=\"127.0.0.1:9100\",service_name=\"j;svc\"} 1 1000\n"},
        {"target_info (default on): one per target, value 1, resource attributes; loopback has no "
         "net_host_name",
         SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100",
         {.enabled = true, .add_metric_suffixes = true, .target_info = true},
         "g 1\n",
         "g{instance=\"127.0.0.1:9100\",job=\"j\"} 1 1000\n"
         "target_info{http_scheme=\"http\",instance=\"127.0.0.1:9100\",job=\"j\",net_host_port=\"9100\"} 1 "
         "1000\n"},
        {"resource_to_telemetry_conversion copies the resource attributes onto every series",
         SCRAPE_FORMAT_TEXT,
         "node-1.example:9100",
         {.enabled = true, .add_metric_suffixes = true, .resource_to_telemetry = true},
         "g 1\n",
         "g{http_scheme=\"http\",instance=\"node-1.example:9100\",job=\"j\",net_host_name=\"node-1.example\","
         "net_host_port=\"9100\",service_instance_id=\"node-1.example:9100\",service_name=\"j\"} 1 1000\n"},
        {"external_labels are added unless the series has the label",
         SCRAPE_FORMAT_TEXT,
         "127.0.0.1:9100",
         {.enabled = true, .add_metric_suffixes = true, .external_labels = ext, .nexternal_labels = 2},
         "g 1\n",
         "g{cluster=\"c1\",instance=\"127.0.0.1:9100\",job=\"j\"} 1 1000\n"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        run_rule(&rules[i]);
}

/* normalizeName's unit rules, on names an exposition cannot carry (OpenMetrics
 * requires the unit as the name's suffix already). */
static void test_unit_names(void **state)
{
    (void)state;
    struct cfg_otel_series o = {.enabled = true, .add_metric_suffixes = true};
    char out[128];
    collector_otel_name(&o, "rt", 2, SCRAPE_TYPE_COUNTER, "s", out, sizeof out);
    assert_string_equal(out, "rt_seconds_total"); /* UCUM "s" -> seconds, then _total */
    collector_otel_name(&o, "mem", 3, SCRAPE_TYPE_GAUGE, "By", out, sizeof out);
    assert_string_equal(out, "mem_bytes");
    collector_otel_name(&o, "cpu", 3, SCRAPE_TYPE_GAUGE, "1", out, sizeof out);
    assert_string_equal(out, "cpu_ratio"); /* unit 1 on a gauge */
    collector_otel_name(&o, "q", 1, SCRAPE_TYPE_GAUGE, "{requests}", out, sizeof out);
    assert_string_equal(out, "q"); /* annotations in braces are not units */
    collector_otel_name(&o, "9lives", 6, SCRAPE_TYPE_GAUGE, NULL, out, sizeof out);
    assert_string_equal(out, "_9lives");
    /* CleanUpString(unit) is one token: appended unless a name token equals all of it */
    collector_otel_name(&o, "power_kilo_watts", 16, SCRAPE_TYPE_GAUGE, "kilo_watts", out, sizeof out);
    assert_string_equal(out, "power_kilo_watts_kilo_watts");
    collector_otel_name(&o, "disk_TBy", 8, SCRAPE_TYPE_GAUGE, "TBy", out, sizeof out);
    assert_string_equal(out, "disk_TBy_terabytes");
    collector_otel_name(&o, "disk_TiBy", 9, SCRAPE_TYPE_GAUGE, "TiBy", out, sizeof out);
    assert_string_equal(out, "disk_TiBy_tibibytes"); /* contrib's unitMap spelling */
}

/* Stale markers: a StaleNaN in is a StaleNaN out, under the new name. */
static void test_stale(void **state)
{
    (void)state;
    struct capture cap = {.out = ""};
    struct cfg_otel_series o = {.enabled = true, .add_metric_suffixes = true, .target_info = true};
    struct scrape_sink in;
    struct collector_otel *x = rewrite_into(&o, &cap, &in);
    struct scrape_parsed_meta m = {SCRAPE_META_TYPE, {"c", 1}, {"", 0}, SCRAPE_TYPE_COUNTER, 1};
    in.metadata(in.ud, &m, "j");
    struct ss_label l[] = {
        {{"__name__", 8}, {"c", 1}}, {{"instance", 8}, {"h:1", 3}}, {{"job", 3}, {"j", 1}}};
    struct scrape_series s = {l, 3, scrape_stale_nan(), 2000, 1, NULL, 0, 0, 0, NULL, NULL, 0};
    struct scrape_report rep = {"j", "h:1", "https://h:1/metrics", false, "x", 2000, 0, NULL, 0};
    in.begin(in.ud, &rep);
    in.series(in.ud, &s);
    in.end(in.ud, &rep);
    collector_otel_free(x);
    assert_string_equal(cap.out,
                        "c_total{instance=\"h:1\",job=\"j\"} stale 2000\n"
                        "target_info{http_scheme=\"https\",instance=\"h:1\",job=\"j\",net_host_name=\"h\","
                        "net_host_port=\"1\"} 1 2000\n");
}

/* A series with more labels than the rewrite takes is not shipped, and it is counted
 * (scrapeship_otel_series_dropped_total): never dropped silently. The others pass. */
static void test_too_many_labels_counted(void **state)
{
    (void)state;
    struct capture cap = {.out = ""};
    struct cfg_otel_series o = {.enabled = true, .add_metric_suffixes = true};
    struct scrape_sink in;
    struct collector_otel *x = rewrite_into(&o, &cap, &in);
    enum { N = 300 };
    static struct ss_label l[N];
    static char names[N][8];
    l[0] = (struct ss_label){{"__name__", 8}, {"g", 1}};
    for (int i = 1; i < N; i++) {
        snprintf(names[i], sizeof names[i], "l%03d", i);
        l[i] = (struct ss_label){{names[i], 4}, {"v", 1}};
    }
    struct scrape_report rep = {"j", "h:1", "http://h:1/metrics", true, NULL, 2000, 0, NULL, 0};
    in.begin(in.ud, &rep);
    in.series(in.ud, &(struct scrape_series){
                         .labels = l, .nlabels = N, .value = 1, .timestamp_ms = 2000, .hash = 1});
    in.series(in.ud, &(struct scrape_series){
                         .labels = l, .nlabels = N, .value = 2, .timestamp_ms = 2000, .hash = 1});
    /* __name__ and l001 only */
    in.series(in.ud, &(struct scrape_series){
                         .labels = l, .nlabels = 2, .value = 3, .timestamp_ms = 2000, .hash = 2});
    in.end(in.ud, &rep);
    assert_int_equal(collector_otel_dropped(x), 2);
    assert_null(strstr(cap.out, "l299"));
    assert_non_null(strstr(cap.out, "g{l001=\"v\"} 3"));
    collector_otel_free(x);
    assert_int_equal(collector_otel_dropped(NULL), 0);
}

/* The TYPE/UNIT table is bounded (65 536 job/family pairs): what does not fit is
 * counted (its families ship as gauges), never silently forgotten. */
static void test_metadata_table_full_counted(void **state)
{
    (void)state;
    struct capture cap = {.out = ""};
    struct cfg_otel_series o = {.enabled = true, .add_metric_suffixes = true};
    struct scrape_sink in;
    struct collector_otel *x = rewrite_into(&o, &cap, &in);
    char fam[32];
    for (unsigned i = 0; i < (1u << 16) + 3; i++) {
        int n = snprintf(fam, sizeof fam, "f%u", i);
        struct scrape_parsed_meta m = {
            .kind = SCRAPE_META_TYPE, .family = {fam, (size_t)n}, .type = SCRAPE_TYPE_COUNTER};
        in.metadata(in.ud, &m, "j");
    }
    assert_int_equal(collector_otel_metadata_dropped(x), 3);
    collector_otel_free(x);
    assert_int_equal(collector_otel_metadata_dropped(NULL), 0);
}

/* addKubernetesResource: a target found by kubernetes_sd_configs carries its pod's
 * k8s.* attributes (from the discovered labels, before relabeling) on target_info and,
 * with resource_to_telemetry_conversion, on every series. */
static void test_k8s_resource(void **state)
{
    (void)state;
    /* the target: __meta_* labels of a pod of a ReplicaSet, dropped by relabeling */
    static const struct ss_kv gl[] = {
        {"__meta_kubernetes_namespace", "shop"},
        {"__meta_kubernetes_pod_name", "web-7d9c-x2"},
        {"__meta_kubernetes_pod_uid", "uid-1"},
        {"__meta_kubernetes_pod_container_name", "app"},
        {"__meta_kubernetes_pod_node_name", "ip-10-0-0-1"},
        {"__meta_kubernetes_pod_controller_kind", "ReplicaSet"},
        {"__meta_kubernetes_pod_controller_name", "web-7d9c"},
        {"__meta_kubernetes_pod_label_app", "web"},
    };
    static const char *const addr[] = {"10.0.0.7:8080"};
    struct scrape_target_group g = {addr, 1, gl, sizeof gl / sizeof gl[0]};
    struct scrape_job job = {.name = "pods", .interval_ms = 15000, .timeout_ms = 10000};
    struct scrape_target_spec spec;
    scrape_target_spec_init(&spec);
    char err[256];
    assert_int_equal(scrape_target_populate(&job, &g, addr[0], &spec, err, sizeof err), 1);
    assert_int_equal(spec.resource.n, 6);

    struct capture cap = {.out = ""};
    struct cfg_otel_series o = {
        .enabled = true, .add_metric_suffixes = true, .target_info = true, .resource_to_telemetry = true};
    struct scrape_sink in;
    struct collector_otel *x = rewrite_into(&o, &cap, &in);
    struct ss_label l[] = {
        {{"__name__", 8}, {"g", 1}}, {{"instance", 8}, {"10.0.0.7:8080", 13}}, {{"job", 3}, {"pods", 4}}};
    struct scrape_series s = {l, 3, 1, 2000, 1, NULL, 0, 0, 0, NULL, NULL, 0};
    struct scrape_report rep = {.job = "pods",
                                .instance = "10.0.0.7:8080",
                                .url = "http://10.0.0.7:8080/metrics",
                                .up = true,
                                .start_ms = 2000,
                                .resource = spec.resource.v,
                                .nresource = spec.resource.n};
    in.begin(in.ud, &rep);
    in.series(in.ud, &s);
    in.end(in.ud, &rep);
    collector_otel_free(x);
    scrape_target_spec_free(&spec);
    assert_string_equal(
        cap.out,
        "g{http_scheme=\"http\",instance=\"10.0.0.7:8080\",job=\"pods\",k8s_container_name=\"app\","
        "k8s_namespace_name=\"shop\",k8s_node_name=\"ip-10-0-0-1\",k8s_pod_name=\"web-7d9c-x2\","
        "k8s_pod_uid=\"uid-1\",k8s_replicaset_name=\"web-7d9c\",net_host_name=\"10.0.0.7\","
        "net_host_port=\"8080\",service_instance_id=\"10.0.0.7:8080\",service_name=\"pods\"} 1 2000\n"
        "target_info{http_scheme=\"http\",instance=\"10.0.0.7:8080\",job=\"pods\",k8s_container_name=\"app\","
        "k8s_namespace_name=\"shop\",k8s_node_name=\"ip-10-0-0-1\",k8s_pod_name=\"web-7d9c-x2\","
        "k8s_pod_uid=\"uid-1\",k8s_replicaset_name=\"web-7d9c\",net_host_name=\"10.0.0.7\","
        "net_host_port=\"8080\"} 1 2000\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keda_amp_scaling),
        cmocka_unit_test(test_eks_daemonset),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_merge_keys),
        cmocka_unit_test(test_exporter_knobs),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_unit_names),
        cmocka_unit_test(test_k8s_resource),
        cmocka_unit_test(test_too_many_labels_counted),
        cmocka_unit_test(test_metadata_table_full_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
