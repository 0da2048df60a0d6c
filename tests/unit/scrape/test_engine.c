/* test_engine.c: the scrape engine against a real HTTP server in the test process.
 *
 * A libmicrohttpd server on 127.0.0.1 serves whatever body/status the test sets; the
 * engine scrapes it with scrape_manager_scrape_once and a capturing sink records every
 * emitted series. Covers: label merging (job/instance/target labels, exported_*,
 * honor_labels), every limit (sample_limit, label_limit, label_name_length_limit,
 * label_value_length_limit, body_size_limit: each fails the whole scrape as Prometheus
 * does), staleness (a series disappears, the target goes down, the target is
 * removed, explicit timestamps are not tracked), synthetic series and gzip (parsed as
 * the plain body is, multi-member, corrupt and truncated bodies, gzip bombs against
 * body_size_limit, bodies past the whole-buffer maximum), scrape_series_added, a reload
 * whose relabeling changes the labels behind the same exposed text, and the wire
 * bytes handed to the sink (checked against the labels for every series). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "relabel.h"
#include "scrape.h"
#include "scrape_int.h"

/* ---- the test server ---------------------------------------------------------- */

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    char body[1 << 16];
    unsigned status;
    char content_type[128];
    char last_accept[512];
    char last_x_test[64]; /* the X-Test request header, "" when absent */
    unsigned requests;
    bool gzip;
    unsigned char *raw; /* served as is, with Content-Encoding raw_encoding, when set */
    size_t raw_len;
    char raw_encoding[32];
    bool echo; /* serve echo{p="<query p>",x="<X-Test>",a=,to=} 1: which target asked, and how */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ptr)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size, (void)ptr;
    pthread_mutex_lock(&srv.mu);
    const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    snprintf(srv.last_accept, sizeof srv.last_accept, "%s", acc ? acc : "");
    const char *xt = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
    snprintf(srv.last_x_test, sizeof srv.last_x_test, "%s", xt ? xt : "");
    srv.requests++;
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    struct MHD_Response *r;
    bool gz = srv.gzip && ae && strstr(ae, "gzip");
    if (srv.echo) {
        const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "p");
        const char *au = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *to =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Prometheus-Scrape-Timeout-Seconds");
        char *b = malloc(512);
        int n = b ? snprintf(b, 512, "echo{p=\"%s\",x=\"%s\",a=\"%s\",to=\"%s\"} 1\n", p ? p : "",
                             srv.last_x_test, au ? au : "", to ? to : "")
                  : 0;
        r = MHD_create_response_from_buffer(n > 0 ? (size_t)n : 0, b, MHD_RESPMEM_MUST_FREE);
    } else if (srv.raw) {
        r = MHD_create_response_from_buffer(srv.raw_len, srv.raw, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "Content-Encoding", srv.raw_encoding);
    } else if (gz) {
        uLongf clen = compressBound(strlen(srv.body)) + 32;
        unsigned char *out = malloc(clen);
        z_stream z = {0};
        deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
        z.next_in = (unsigned char *)srv.body;
        z.avail_in = (uInt)strlen(srv.body);
        z.next_out = out;
        z.avail_out = (uInt)clen;
        deflate(&z, Z_FINISH);
        size_t n = z.total_out;
        deflateEnd(&z);
        r = MHD_create_response_from_buffer(n, out, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    } else {
        r = MHD_create_response_from_buffer(strlen(srv.body), srv.body, MHD_RESPMEM_MUST_COPY);
    }
    MHD_add_response_header(r, "Content-Type", srv.content_type);
    enum MHD_Result ret = MHD_queue_response(c, srv.status, r);
    MHD_destroy_response(r);
    pthread_mutex_unlock(&srv.mu);
    return ret;
}

static void serve(unsigned status, const char *ctype, const char *body)
{
    pthread_mutex_lock(&srv.mu);
    srv.status = status;
    snprintf(srv.content_type, sizeof srv.content_type, "%s", ctype);
    snprintf(srv.body, sizeof srv.body, "%s", body);
    pthread_mutex_unlock(&srv.mu);
}

/* in[0..n) as one gzip member, malloc'd. */
static unsigned char *gzip_member(const char *in, size_t n, int level, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* Serve these bytes verbatim with this Content-Encoding (takes `raw`); NULL: back to
 * srv.body. */
static void serve_raw(unsigned char *raw, size_t n, const char *encoding)
{
    pthread_mutex_lock(&srv.mu);
    free(srv.raw);
    srv.raw = raw;
    srv.raw_len = n;
    snprintf(srv.raw_encoding, sizeof srv.raw_encoding, "%s", encoding ? encoding : "");
    pthread_mutex_unlock(&srv.mu);
}

/* ---- the capturing sink --------------------------------------------------------- */

struct rec {
    char text[1024]; /* name{a="b",...} */
    double value;
    int64_t ts;
    bool stale;
};

static struct {
    struct rec v[4096];
    size_t n;
    int scrapes;
    bool last_up;
    char last_error[512];
    char last_url[512];
    size_t with_wire;    /* series that came with wire bytes */
    size_t with_parts;   /* ... of them in the table's pieces (wire_parts) */
    size_t with_group;   /* series that came with their group (ss_labels_group_hash) */
    size_t with_hint;    /* series that came with the hint this sink asked to keep */
    size_t hint_asked;   /* series for which the sink could ask to keep one */
    int64_t starts[256]; /* start_ms of each scrape, in order */
    size_t nstarts;
} cap;

/* The hint this sink keeps with a series: derived from its labels alone. */
static uint8_t hint_of(const char *text)
{
    uint32_t h = 2166136261u;
    for (const char *p = text; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return (uint8_t)(1 + h % SCRAPE_HINT_MAX);
}

static void on_begin(void *ud, const struct scrape_report *r)
{
    (void)ud;
    cap.scrapes++;
    if (cap.nstarts < sizeof cap.starts / sizeof cap.starts[0])
        cap.starts[cap.nstarts++] = r->start_ms;
    cap.last_up = r->up;
    snprintf(cap.last_error, sizeof cap.last_error, "%s", r->error ? r->error : "");
    snprintf(cap.last_url, sizeof cap.last_url, "%s", r->url ? r->url : "");
}

static void on_series(void *ud, const struct scrape_series *s)
{
    (void)ud;
    /* the wire bytes, when given (whole or in pieces), are exactly these labels */
    assert_false(s->wire_labels && s->wire_parts);
    char joined[8192];
    const char *wire = s->wire_labels;
    if (s->wire_parts) {
        size_t at = 0;
        assert_int_equal(s->nwire_parts, s->nlabels); /* one piece per label */
        for (size_t i = 0; i < s->nwire_parts; i++) {
            assert_true(at + s->wire_parts[i].len <= sizeof joined);
            memcpy(joined + at, s->wire_parts[i].p, s->wire_parts[i].len);
            at += s->wire_parts[i].len;
        }
        assert_int_equal(at, s->wire_labels_len);
        wire = joined;
        cap.with_parts++;
    }
    if (wire) {
        struct ss_label w[64];
        long n = ss_labels_wire_read(wire, s->wire_labels_len, w, NULL, 64);
        assert_int_equal(n, s->nlabels);
        for (size_t i = 0; i < s->nlabels; i++) {
            assert_true(ss_str_eq(w[i].name, s->labels[i].name));
            assert_true(ss_str_eq(w[i].value, s->labels[i].value));
        }
        cap.with_wire++;
    }
    if (s->group) { /* the group, when given, is the one of these labels */
        assert_true(s->group == ss_labels_group_hash(s->labels, s->nlabels));
        cap.with_group++;
    }
    if (cap.n == sizeof cap.v / sizeof cap.v[0])
        return;
    struct rec *r = &cap.v[cap.n++];
    size_t pos = 0;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq_cstr(s->labels[i].name, "__name__"))
            pos += (size_t)snprintf(r->text + pos, sizeof r->text - pos, "%.*s", (int)s->labels[i].value.len,
                                    s->labels[i].value.p);
    pos += (size_t)snprintf(r->text + pos, sizeof r->text - pos, "{");
    bool first = true;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (ss_str_eq_cstr(s->labels[i].name, "__name__"))
            continue;
        pos += (size_t)snprintf(r->text + pos, sizeof r->text - pos, "%s%.*s=\"%.*s\"", first ? "" : ",",
                                (int)s->labels[i].name.len, s->labels[i].name.p, (int)s->labels[i].value.len,
                                s->labels[i].value.p);
        first = false;
    }
    snprintf(r->text + pos, sizeof r->text - pos, "}");
    if (s->hint) { /* what this sink asked to keep with this very series */
        assert_int_equal(s->hint, hint_of(r->text));
        cap.with_hint++;
    }
    if (s->hint_out) {
        *s->hint_out = hint_of(r->text);
        cap.hint_asked++;
    }
    r->value = s->value;
    r->ts = s->timestamp_ms;
    r->stale = scrape_is_stale_nan(s->value);
}

static void reset_capture(void)
{
    cap.n = 0;
    cap.with_wire = 0;
    cap.with_parts = 0;
    cap.with_group = 0;
    cap.with_hint = 0;
    cap.hint_asked = 0;
}

static const struct rec *find(const char *text)
{
    for (size_t i = 0; i < cap.n; i++)
        if (strcmp(cap.v[i].text, text) == 0)
            return &cap.v[i];
    return NULL;
}

static size_t count_stale(void)
{
    size_t n = 0;
    for (size_t i = 0; i < cap.n; i++)
        n += cap.v[i].stale;
    return n;
}

static void dump(void)
{
    for (size_t i = 0; i < cap.n; i++)
        fprintf(stderr, "  %s %g %lld%s\n", cap.v[i].text, cap.v[i].value, (long long)cap.v[i].ts,
                cap.v[i].stale ? " STALE" : "");
}

/* ---- fixtures -------------------------------------------------------------------- */

static char addr[64];
static const char *targets[1] = {addr};
static struct ss_kv group_labels[] = {{"team", "a"}};
static struct scrape_target_group group = {targets, 1, group_labels, 1};

static struct scrape_job base_job(void)
{
    struct scrape_job j = {0};
    j.name = "test";
    j.interval_ms = 60000;
    j.timeout_ms = 5000;
    j.metrics_path = "/metrics";
    j.scheme = "http";
    j.honor_timestamps = true;
    j.http.follow_redirects = true;
    j.static_groups = &group;
    j.nstatic_groups = 1;
    return j;
}

/* A manager of one job that hands its series to `sink`. */
static struct scrape_manager *manager_with(const struct scrape_job *job, const struct scrape_sink *sink)
{
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(NULL, sink, &m), 0);
    assert_int_equal(scrape_manager_set_jobs(m, job, 1), 0);
    return m;
}

static struct scrape_manager *manager(const struct scrape_job *job)
{
    struct scrape_sink sink = {.begin = on_begin, .series = on_series, .ud = NULL};
    return manager_with(job, &sink);
}

static int setup(void **state)
{
    (void)state;
    srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL, MHD_OPTION_END);
    if (!srv.d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    srv.port = info->port;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(srv.d);
    free(srv.raw);
    return 0;
}

#define TEXT "text/plain; version=0.0.4"

/* ---- tests -------------------------------------------------------------------------- */

static void test_labels_and_synthetic(void **state)
{
    (void)state;
    char inst[512];
    serve(200, TEXT,
          "# TYPE a counter\na_total{x=\"1\"} 5\n"
          "clash{job=\"exp\",instance=\"i\",team=\"t\"} 1\n"
          "empty{a=\"\",b=\"x\"} 2\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(inst, sizeof inst, "a_total{instance=\"%s\",job=\"test\",team=\"a\",x=\"1\"}", addr);
    const struct rec *r = find(inst);
    if (!r)
        dump();
    assert_non_null(r);
    assert_true(r->value == 5);
    snprintf(inst, sizeof inst,
             "clash{exported_instance=\"i\",exported_job=\"exp\",exported_team=\"t\",instance=\"%s\",job="
             "\"test\",team=\"a\"}",
             addr);
    assert_non_null(find(inst));
    snprintf(inst, sizeof inst, "empty{b=\"x\",instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(inst)); /* empty label value dropped */
    snprintf(inst, sizeof inst, "up{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(inst));
    assert_true(find(inst)->value == 1);
    snprintf(inst, sizeof inst, "scrape_samples_scraped{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(inst)->value == 3);
    snprintf(inst, sizeof inst, "scrape_series_added{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(inst)->value == 3);
    /* The Accept header negotiates OpenMetrics first, as Prometheus does. */
    assert_non_null(strstr(srv.last_accept, "application/openmetrics-text;version=1.0.0"));
    assert_non_null(strstr(srv.last_accept, "text/plain;version=0.0.4;q=0.5"));
    /* second scrape: nothing new */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(inst, sizeof inst, "scrape_series_added{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(inst)->value == 0);
    scrape_manager_free(m);
}

static void test_honor_labels(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "clash{job=\"exp\",team=\"t\"} 1\n");
    struct scrape_job j = base_job();
    j.honor_labels = true;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "clash{instance=\"%s\",job=\"exp\",team=\"t\"}", addr);
    assert_non_null(find(t));
    scrape_manager_free(m);
}

/* A limit exceeded fails the whole scrape: up=0, no samples, stale markers for what
 * the previous scrape had. */
static void expect_limit_failure(struct scrape_job *j, const char *body, const char *msg)
{
    char t[256];
    serve(200, TEXT, "ok_metric 1\n");
    struct scrape_manager *m = manager(j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    serve(200, TEXT, body);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_false(cap.last_up);
    if (!strstr(cap.last_error, msg))
        fprintf(stderr, "error was: %s\n", cap.last_error);
    assert_non_null(strstr(cap.last_error, msg));
    snprintf(t, sizeof t, "up{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->value == 0);
    snprintf(t, sizeof t, "ok_metric{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    const struct rec *r = find(t);
    assert_non_null(r);
    assert_true(r->stale);             /* rolled back: the old series goes stale */
    for (size_t i = 0; i < cap.n; i++) /* nothing from the failed body */
        assert_null(strstr(cap.v[i].text, "big"));
    scrape_manager_free(m);
}

static void test_sample_limit(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    j.sample_limit = 2;
    expect_limit_failure(&j, "big 1\nbig2 2\nbig3 3\n", "sample limit exceeded");
}

static void test_label_limit(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    j.label_limit = 5; /* __name__ + job + instance + team + 2 = 6 */
    expect_limit_failure(&j, "big{a=\"1\",b=\"2\"} 1\n",
                         "label_limit exceeded (metric: big, number of labels: 6");
}

static void test_label_name_length_limit(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    j.label_name_length_limit = 10;
    expect_limit_failure(&j, "big{a_very_long_label_name=\"1\"} 1\n",
                         "label_name_length_limit exceeded (label name: a_very_long_label_name, length: 22");
}

static void test_label_value_length_limit(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    j.label_value_length_limit = 16; /* the instance label "127.0.0.1:NNNNN" fits */
    expect_limit_failure(&j, "big{a=\"a value longer than sixteen\"} 1\n",
                         "label_value_length_limit exceeded (label name: a, value length: 27");
}

static void test_body_size_limit(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    j.body_size_limit = 64;
    expect_limit_failure(&j, "big 1\nbig_padding_padding_padding_padding_padding_padding_padding 2\n",
                         "body size limit exceeded");
    /* a body of exactly the limit fails too (Prometheus: n >= limit); a byte less passes */
    const char *body = "big 1\nbig_padding 2\n";
    j.body_size_limit = strlen(body);
    expect_limit_failure(&j, body, "body size limit exceeded");
    serve(200, TEXT, body);
    j.body_size_limit = strlen(body) + 1;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(cap.last_up);
    scrape_manager_free(m);
}

static void test_parse_error_fails_scrape(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    expect_limit_failure(&j, "big 1\nthis is not a sample\n", "line 2");
}

static void test_limits_not_hit(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\nb 2\n");
    struct scrape_job j = base_job();
    j.sample_limit = 2;
    j.label_limit = 4;
    j.body_size_limit = 1024;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(cap.last_up);
    scrape_manager_free(m);
}

static void test_stale_series_disappears(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "keep 1\ngo 2\nexplicit 3 1000\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(count_stale(), 0);
    /* the sink may ask to keep a hint with each series of the table (not with the
     * synthetic ones), and gets it back with the series' next samples */
    assert_int_equal(cap.hint_asked, 3);
    assert_int_equal(cap.with_hint, 0);
    serve(200, TEXT, "keep 1\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(count_stale(), 1);  /* "go"; never "explicit" (explicit timestamp) */
    assert_int_equal(cap.with_hint, 2);  /* keep, and go's stale marker */
    assert_int_equal(cap.hint_asked, 1); /* keep again; not the marker of a series going away */
    snprintf(t, sizeof t, "go{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    const struct rec *r = find(t);
    assert_non_null(r);
    assert_true(r->stale);
    snprintf(t, sizeof t, "keep{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_false(find(t)->stale);
    assert_int_equal(find(t)->ts, r->ts); /* marker at this scrape's timestamp */
    /* third scrape: the marker is not repeated */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(count_stale(), 0);
    scrape_manager_free(m);
}

static void test_stale_target_down(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "a 1\nb 2\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    serve(503, TEXT, "unavailable\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_non_null(strstr(cap.last_error, "HTTP status 503"));
    assert_int_equal(count_stale(), 2);
    snprintf(t, sizeof t, "up{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->value == 0);
    /* down again: no more markers; back up: series return */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_int_equal(count_stale(), 0);
    serve(200, TEXT, "a 1\nb 2\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "scrape_series_added{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->value == 2);
    scrape_manager_free(m);
}

static void test_stale_connection_refused(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    /* point the job at a port nothing listens on: a different target, so the old one
     * is removed (stale markers for its series and its synthetic series) */
    static char dead[64] = "127.0.0.1:1";
    static const char *dead_targets[1] = {dead};
    static struct scrape_target_group dg = {dead_targets, 1, NULL, 0};
    j.static_groups = &dg;
    reset_capture();
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    assert_int_equal(count_stale(), 6); /* a + up + 4 scrape_* series */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_false(cap.last_up);
    assert_non_null(find("up{instance=\"127.0.0.1:1\",job=\"test\"}"));
    scrape_manager_free(m);
}

static void test_openmetrics_and_gzip(void **state)
{
    (void)state;
    char t[256];
    serve(200, "application/openmetrics-text; version=1.0.0; charset=utf-8",
          "# TYPE c counter\nc_total 3 # {tid=\"x\"} 1\nc_created 1.5e9\n# EOF\n");
    pthread_mutex_lock(&srv.mu);
    srv.gzip = true;
    pthread_mutex_unlock(&srv.mu);
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "c_total{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(t));
    snprintf(t, sizeof t, "c_created{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(t));
    pthread_mutex_lock(&srv.mu);
    srv.gzip = false;
    pthread_mutex_unlock(&srv.mu);
    scrape_manager_free(m);
}

/* The scrape cache knows a series text only as parsed in full, in one format: when a
 * target's format changes, what it knew is forgotten. `a{ x="1"}` is a text series
 * and not an OpenMetrics one; known from the text body, the OpenMetrics body's lazy
 * scan would have taken it. */
static void test_format_change_forgets_texts(void **state)
{
    (void)state;
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    for (int round = 0; round < 2; round++) {
        serve(200, TEXT, "a{ x=\"1\"} 1\n");
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        serve(200, "application/openmetrics-text; version=1.0.0; charset=utf-8", "a{ x=\"1\"} 1\n# EOF\n");
        assert_int_equal(scrape_manager_scrape_once(m), 1);
    }
    serve(200, "application/openmetrics-text; version=1.0.0; charset=utf-8", "a{x=\"1\"} 2\n# EOF\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    char t[256];
    snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\",team=\"a\",x=\"1\"}", addr);
    assert_non_null(find(t));
    assert_true(find(t)->value == 2);
    scrape_manager_free(m);
}

/* metric_relabel_configs: drop every series named drop_*. */
static struct relabel_rule *drop_rule(void)
{
    char *src[] = {"__name__"};
    struct relabel_config rc = {
        .source_labels = src, .nsource_labels = 1, .regex = "drop_.*", .action = RELABEL_DROP};
    struct relabel_rule *rule = NULL;
    char err[256];
    assert_int_equal(relabel_compile(&rc, &rule, err, sizeof err), 0);
    return rule;
}

static void test_metric_relabel_drop(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "keep_me 1\ndrop_me 2\n");
    struct relabel_rule *rule = drop_rule();
    struct scrape_job j = base_job();
    j.metric_relabel = &rule;
    j.nmetric_relabel = 1;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "keep_me{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(t));
    snprintf(t, sizeof t, "drop_me{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_null(find(t));
    snprintf(t, sizeof t, "scrape_samples_post_metric_relabeling{instance=\"%s\",job=\"test\",team=\"a\"}",
             addr);
    assert_true(find(t)->value == 1);
    scrape_manager_free(m);
    relabel_rule_free(rule);
}

/* A rule that leaves a series without a name, or with an invalid metric name, fails
 * the scrape as in Prometheus 2.42 ("missing metric name"), instead of dropping the
 * series with up=1; one that removes every label drops it. */
static void test_metric_relabel_bad_name_fails(void **state)
{
    (void)state;
    static const struct {
        const char *target, *replacement, *regex;
        enum relabel_action action;
        const char *want; /* NULL: scraped, the series dropped */
    } cases[] = {
        {"__name__", "", "(.*)", RELABEL_REPLACE, "missing metric name"},
        {"__name__", "1bad-name", "(.*)", RELABEL_REPLACE, "invalid metric name"},
        {NULL, "$1", "__name__", RELABEL_LABELDROP, "missing metric name"},
        {NULL, "$1", ".*", RELABEL_LABELDROP, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *src[] = {"__name__"};
        struct relabel_config rc = {.source_labels = src,
                                    .nsource_labels = cases[c].action == RELABEL_LABELDROP ? 0 : 1,
                                    .regex = (char *)cases[c].regex,
                                    .target_label = (char *)cases[c].target,
                                    .replacement = (char *)cases[c].replacement,
                                    .action = cases[c].action};
        struct relabel_rule *rule = NULL;
        char err[256];
        assert_int_equal(relabel_compile(&rc, &rule, err, sizeof err), 0);
        serve(200, TEXT, "m 1\n");
        struct scrape_job j = base_job();
        j.metric_relabel = &rule;
        j.nmetric_relabel = 1;
        struct scrape_manager *m = manager(&j);
        reset_capture();
        int rcs = scrape_manager_scrape_once(m);
        if (cases[c].want) {
            assert_int_equal(rcs, 1);
            assert_false(cap.last_up);
            if (!strstr(cap.last_error, cases[c].want))
                fail_msg("case %zu: %s", c, cap.last_error);
        } else {
            assert_int_equal(rcs, 0);
            assert_true(cap.last_up);
        }
        scrape_manager_free(m);
        relabel_rule_free(rule);
    }
}

/* Series metric relabeling dropped are remembered by their text (as Prometheus'
 * scrape cache does) and dropped again without relabeling: they stay dropped scrape
 * after scrape, still count as scraped, and come back as soon as a reload changes the
 * rules; one that leaves the exposition and comes back is dropped again. A target
 * whose format changes forgets them: known from a text body, `a{ x="1"}` would have
 * let the OpenMetrics body through. */
static double synthetic(const char *name);

static void test_dropped_series_remembered(void **state)
{
    (void)state;
    char t[256], u[256];
    struct relabel_rule *rule = drop_rule();
    struct scrape_job j = base_job();
    j.metric_relabel = &rule;
    j.nmetric_relabel = 1;
    struct scrape_manager *m = manager(&j);
    snprintf(t, sizeof t, "drop_me{instance=\"%s\",job=\"test\",team=\"a\",x=\"1\"}", addr);
    snprintf(u, sizeof u, "keep_me{instance=\"%s\",job=\"test\",team=\"a\",x=\"1\"}", addr);
    const char *bodies[] = {"keep_me{x=\"1\"} 1\ndrop_me{x=\"1\"} 2\ndrop_me{x=\"2\"} 3\n",
                            "keep_me{x=\"1\"} 1\ndrop_me{x=\"2\"} 3\n",
                            "keep_me{x=\"1\"} 1\ndrop_me{x=\"1\"} 2\ndrop_me{x=\"2\"} 3\n"};
    const double scraped[] = {3, 2, 3};
    for (int round = 0; round < 6; round++) {
        serve(200, TEXT, bodies[round % 3]);
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_non_null(find(u));
        assert_null(find(t));
        assert_true(synthetic("scrape_samples_scraped") == scraped[round % 3]);
        assert_true(synthetic("scrape_samples_post_metric_relabeling") == 1);
    }
    /* a reload without the rule: the dropped series are shipped at once */
    j.nmetric_relabel = 0;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_non_null(find(t));
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 3);
    /* and with it again, dropped again: only its stale marker goes out */
    j.nmetric_relabel = 1;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(scrape_is_stale_nan(find(t)->value));
    assert_non_null(find(u));
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_null(find(t));

    /* a target that fails every scrape (sample_limit) while its dropped series change
     * keeps no more dropped texts than one body has */
    j.sample_limit = 1;
    static char body[4096];
    for (int round = 0; round < 10; round++) {
        size_t n = 0;
        for (int k = 0; k < 20; k++)
            n += (size_t)snprintf(body + n, sizeof body - n, "drop_r{round=\"%d\",k=\"%d\"} 1\n", round, k);
        n += (size_t)snprintf(body + n, sizeof body - n, "keep_me{x=\"1\"} 1\nkeep_me{x=\"2\"} 1\n");
        serve(200, TEXT, body);
        if (round == 0)
            assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
        assert_int_equal(scrape_manager_scrape_once(m), 1);
        assert_true(scrape_manager_dropped_cached(m) > 0 && scrape_manager_dropped_cached(m) <= 20);
    }
    j.sample_limit = 0;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);

    /* a format change forgets the dropped texts */
    for (int round = 0; round < 2; round++) {
        serve(200, TEXT, "drop_a{ x=\"1\"} 1\nkeep_me 2\n");
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        serve(200, "application/openmetrics-text; version=1.0.0; charset=utf-8",
              "drop_a{ x=\"1\"} 1\n# EOF\n");
        assert_int_equal(scrape_manager_scrape_once(m), 1);
    }
    scrape_manager_free(m);
    relabel_rule_free(rule);
}

/* Metadata names the target's job label, the value its series carry, not the scrape
 * job's name: the OTel rewrite looks types up by a series' job label, and with a
 * relabeled job (every Kubernetes or monitor job that sets `job`) the two differ. */
static char meta_job[64];
static unsigned meta_types;
static void on_meta_capture(void *ud, const struct scrape_parsed_meta *m, const char *job)
{
    (void)ud;
    if (m->kind == SCRAPE_META_TYPE) {
        snprintf(meta_job, sizeof meta_job, "%s", job);
        meta_types++;
    }
}

static void test_metadata_names_job_label(void **state)
{
    (void)state;
    serve(200, TEXT, "# TYPE reqs counter\nreqs_total 5\n");
    char *src[] = {"team"};
    struct relabel_config rc = {.source_labels = src,
                                .nsource_labels = 1,
                                .target_label = "job",
                                .replacement = "svc-$1",
                                .action = RELABEL_REPLACE};
    struct relabel_rule *rule = NULL;
    char err[256];
    assert_int_equal(relabel_compile(&rc, &rule, err, sizeof err), 0);
    struct scrape_job j = base_job();
    j.relabel = &rule;
    j.nrelabel = 1;
    struct scrape_sink sink = {.begin = on_begin, .series = on_series, .metadata = on_meta_capture};
    struct scrape_manager *m = manager_with(&j, &sink);
    reset_capture();
    meta_job[0] = '\0';
    meta_types = 0;
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    char t[256];
    snprintf(t, sizeof t, "reqs_total{instance=\"%s\",job=\"svc-a\",team=\"a\"}", addr);
    assert_non_null(find(t));
    assert_int_equal(meta_types, 1);
    assert_string_equal(meta_job, "svc-a");
    scrape_manager_free(m);
    relabel_rule_free(rule);
}

static double synthetic(const char *name)
{
    char t[256];
    snprintf(t, sizeof t, "%s{instance=\"%s\",job=\"test\",team=\"a\"}", name, addr);
    const struct rec *r = find(t);
    assert_non_null(r);
    return r->value;
}

/* The easy handle keeps its options between scrapes (no reset per scrape): every
 * scrape still sends the job's headers, and a reload that changes them is applied at
 * the next scrape. */
static void test_easy_options_kept_and_reloaded(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    struct scrape_job j = base_job();
    struct httpc_header h1 = {"X-Test", "one"}, h2 = {"X-Test", "two"};
    j.http.headers = &h1;
    j.http.nheaders = 1;
    struct scrape_manager *m = manager(&j);
    unsigned before = srv.requests;
    for (int i = 0; i < 3; i++) {
        srv.last_x_test[0] = '\0';
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_string_equal(srv.last_x_test, "one");
        assert_true(strstr(srv.last_accept, "text/plain") != NULL);
    }
    assert_int_equal(srv.requests - before, 3);
    j.http.headers = &h2;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_string_equal(srv.last_x_test, "two");
    j.http.nheaders = 0;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_string_equal(srv.last_x_test, "");
    scrape_manager_free(m);
}

/* calloc, failing once on demand: linked with -Wl,--wrap=calloc (tests/CMakeLists.txt),
 * so that the engine's own calls come here; libraries keep the real one. */
static int calloc_fail_at, calloc_calls;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    if (calloc_fail_at && ++calloc_calls == calloc_fail_at)
        return NULL;
    return __real_calloc(n, size);
}

/* A job whose strings and target group are on the heap, freed (and overwritten
 * first) by job_owned_free, so that what the engine still reads of it shows. */
static struct scrape_job job_owned(const char *name)
{
    struct scrape_job j = base_job();
    j.name = strdup(name);
    j.metrics_path = strdup("/metrics");
    struct scrape_target_group *g = malloc(sizeof *g);
    assert_non_null(j.name);
    assert_non_null(j.metrics_path);
    assert_non_null(g);
    *g = group;
    j.static_groups = g;
    return j;
}

static void job_owned_free(struct scrape_job *j)
{
    memset((char *)j->name, 'x', strlen(j->name));
    memset((char *)j->metrics_path, 'x', strlen(j->metrics_path));
    memset((void *)j->static_groups, 0xa5, sizeof *j->static_groups);
    free((char *)j->name);
    free((char *)j->metrics_path);
    free((void *)j->static_groups);
}

static bool scraped_job(const char *job)
{
    char want[64];
    snprintf(want, sizeof want, "job=\"%s\"", job);
    for (size_t i = 0; i < cap.n; i++)
        if (!strncmp(cap.v[i].text, "a{", 2) && strstr(cap.v[i].text, want))
            return true;
    return false;
}

/* A job set that runs out of memory partway (each calloc of set_jobs fails in turn)
 * still leaves the engine holding nothing of the previous set, which the caller frees
 * next: the job that left is gone, the job that stays is scraped with the new set's
 * config, and a new job with no memory is left out and reported (SS_ENOMEM). Before,
 * set_jobs returned at the first failure with the rest of the jobs on the old set. */
static void test_set_jobs_out_of_memory(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    bool failed_some = false;
    int k;
    for (k = 1; k <= 200; k++) {
        struct scrape_job old[2] = {job_owned("keep"), job_owned("gone")};
        struct scrape_job next[3] = {job_owned("keep"), job_owned("new1"), job_owned("new2")};
        struct scrape_manager *m = NULL;
        struct scrape_sink sink = {.begin = on_begin, .series = on_series, .ud = NULL};
        assert_int_equal(scrape_manager_new(NULL, &sink, &m), 0);
        assert_int_equal(scrape_manager_set_jobs(m, old, 2), 0);
        calloc_calls = 0;
        calloc_fail_at = k;
        int rc = scrape_manager_set_jobs(m, next, 3);
        bool hit = calloc_calls >= k;
        calloc_fail_at = 0;
        job_owned_free(&old[0]);
        job_owned_free(&old[1]);
        failed_some |= rc == SS_ENOMEM;
        assert_true(rc == 0 || rc == SS_ENOMEM);
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_false(scraped_job("gone"));
        assert_true(scraped_job("keep"));
        if (!rc && !hit) {
            assert_true(scraped_job("new1"));
            assert_true(scraped_job("new2"));
        }
        if (rc) /* one new job is left out */
            assert_true(scraped_job("new1") != scraped_job("new2"));
        scrape_manager_free(m);
        for (int i = 0; i < 3; i++)
            job_owned_free(&next[i]);
        if (!hit)
            break; /* every calloc of the job set has failed once */
    }
    assert_true(k < 200);
    assert_true(failed_some);
}

/* scrape_series_added counts series the previous scrape did not have. */
static void test_series_added(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\nb{x=\"1\"} 2\nb{x=\"2\"} 3\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(synthetic("scrape_series_added") == 3);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(synthetic("scrape_series_added") == 0);
    assert_int_equal(cap.with_wire, 3); /* the scraped series; not the synthetic ones */
    assert_int_equal(cap.with_parts, 3); /* no external labels: the table's pieces */
    assert_int_equal(cap.with_group, 3);
    serve(200, TEXT, "a 1\nb{x=\"2\"} 3\nc 4\na 5\n"); /* one new, one gone, one duplicate */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(synthetic("scrape_series_added") == 1);
    assert_true(synthetic("scrape_samples_scraped") == 4);
    /* Prometheus 2.42 counts the duplicate as appended too */
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 4);
    assert_int_equal(count_stale(), 1);
    char t[256];
    snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->value == 1); /* the first sample of a duplicated series wins */
    scrape_manager_free(m);
}

/* A scrape that fails inside the body reports the samples parsed (and kept after
 * metric relabeling) before the error, as Prometheus 2.42 does; so does a label limit;
 * one that fails before the body (HTTP status) reports none. Series added: 0, as
 * Prometheus reports at every failed scrape but the first of a run
 * (test_prometheus_parity_edges compares it). */
static void test_failed_scrape_counts(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\nb 2\ndrop_me 3\nc{ 4\nd 5\n");
    struct scrape_job j = base_job();
    struct relabel_rule *drop = NULL;
    char *src[] = {"__name__"};
    struct relabel_config rc = {
        .source_labels = src, .nsource_labels = 1, .regex = "drop_me", .action = RELABEL_DROP};
    char err[256];
    assert_int_equal(relabel_compile(&rc, &drop, err, sizeof err), 0);
    j.metric_relabel = &drop;
    j.nmetric_relabel = 1;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_true(synthetic("up") == 0);
    assert_true(synthetic("scrape_samples_scraped") == 3);
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 2);
    assert_true(synthetic("scrape_series_added") == 0);
    /* OpenMetrics without # EOF: every sample parsed, then the error */
    serve(200, "application/openmetrics-text; version=1.0.0", "a 1\nb 2\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_true(synthetic("scrape_samples_scraped") == 2);
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 2);
    serve(500, TEXT, "a 1\n");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_true(synthetic("scrape_samples_scraped") == 0);
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 0);
    assert_true(synthetic("scrape_series_added") == 0);
    scrape_manager_free(m);
    /* label_limit (instance, job, team and __name__ are 4): scraped 3, kept 2 */
    j.metric_relabel = NULL;
    j.nmetric_relabel = 0;
    j.label_limit = 4;
    serve(200, TEXT, "a 1\nb 2\nm{x=\"1\"} 3\nc 4\n");
    m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_true(synthetic("scrape_samples_scraped") == 3);
    assert_true(synthetic("scrape_samples_post_metric_relabeling") == 2);
    scrape_manager_free(m);
    relabel_rule_free(drop);
}

/* A reload that changes metric relabeling: the same exposed text now yields other
 * labels. The scrape cache must not hand out the old ones: the new series is added,
 * the old one gets a stale marker. */
/* Series the scrape cache knows by their text's hash alone stay apart: a grid of 100
 * series whose texts differ in two bytes 8 apart (a hash that let those cancel merged
 * 18 of them, and shipped one's sample under another's labels), scraped twice. */
static void test_cache_keeps_grid_apart(void **state)
{
    (void)state;
    char body[8192], t[256];
    size_t n = 0;
    for (int a = 0; a < 10; a++)
        for (int x = 0; x < 10; x++)
            n += (size_t)snprintf(body + n, sizeof body - n, "app_requests_total{a=\"%d\",xyz=\"%d\"} %d\n",
                                  a, x, a * 10 + x);
    serve(200, TEXT, body);
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    for (int round = 0; round < 2; round++) { /* the second from the cache */
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        for (int a = 0; a < 10; a++)
            for (int x = 0; x < 10; x++) {
                snprintf(t, sizeof t,
                         "app_requests_total{a=\"%d\",instance=\"%s\",job=\"test\",team=\"a\",xyz=\"%d\"}", a,
                         addr, x);
                const struct rec *r = find(t);
                assert_non_null(r);
                assert_true(r->value == a * 10 + x);
            }
        assert_true(synthetic("scrape_samples_post_metric_relabeling") == 100);
    }
    scrape_manager_free(m);
}

/* A reload that changes only a job's timing (interval, timeout) leaves no stale
 * markers: the target is new, its series are the same and carry on, as Prometheus
 * keeps them at a reload; a changed path (a new URL: other series) still does. */
static void test_reload_timing_keeps_series(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "m{k=\"v\"} 1\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    j.interval_ms = 30000;
    j.timeout_ms = 3000;
    reset_capture();
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    assert_int_equal(cap.n, 0); /* no marker, no report */
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "m{instance=\"%s\",job=\"test\",k=\"v\",team=\"a\"}", addr);
    assert_non_null(find(t));
    assert_false(find(t)->stale);
    assert_int_equal(count_stale(), 0);
    assert_true(synthetic("scrape_series_added") == 1); /* a new target: as Prometheus' new loop */
    j.metrics_path = "/other";
    reset_capture();
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    assert_non_null(find(t));
    assert_true(find(t)->stale);
    /* a removed target's markers are counted with the others */
    struct ss_buf out;
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    assert_non_null(strstr(out.data, "scrapeship_scrape_stale_markers_total{scrape_job=\"test\"} 1\n"));
    ss_buf_free(&out);
    scrape_manager_free(m);
}

static void test_reload_relabel_changes_labels(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "m{k=\"v\"} 1\n");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    for (int i = 0; i < 2; i++) { /* the second scrape runs from the cache */
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
    }
    char *src[] = {"k"};
    struct relabel_config rc = {.source_labels = src,
                                .nsource_labels = 1,
                                .target_label = "k2",
                                .replacement = "new-$1",
                                .action = RELABEL_REPLACE};
    struct relabel_rule *rule = NULL;
    char err[256];
    assert_int_equal(relabel_compile(&rc, &rule, err, sizeof err), 0);
    j.metric_relabel = &rule;
    j.nmetric_relabel = 1;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    snprintf(t, sizeof t, "m{instance=\"%s\",job=\"test\",k=\"v\",k2=\"new-v\",team=\"a\"}", addr);
    assert_non_null(find(t));
    assert_false(find(t)->stale);
    snprintf(t, sizeof t, "m{instance=\"%s\",job=\"test\",k=\"v\",team=\"a\"}", addr);
    assert_non_null(find(t));
    assert_true(find(t)->stale);
    assert_true(synthetic("scrape_series_added") == 1);
    /* and back: the rule is removed again */
    j.metric_relabel = NULL;
    j.nmetric_relabel = 0;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_false(find(t)->stale);
    assert_int_equal(count_stale(), 1);
    scrape_manager_free(m);
    relabel_rule_free(rule);
}

/* External labels are merged into the labels and into the wire bytes (the on_series
 * check), the series' own label winning on a clash. */
static void test_external_labels_wire(void **state)
{
    (void)state;
    char t[256];
    serve(200, TEXT, "m{zone=\"own\"} 1\nn 2\n");
    struct scrape_job j = base_job();
    struct ss_kv ext[] = {{"a_first", "1"}, {"zone", "ext"}, {"zz", "last"}};
    struct scrape_manager_opts o = {.external_labels = ext, .nexternal_labels = 3};
    struct scrape_sink sink = {.begin = on_begin, .series = on_series, .ud = NULL};
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(&o, &sink, &m), 0);
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    cap.with_wire = cap.with_parts = 0;
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.with_wire, 2);
    assert_int_equal(cap.with_parts, 0); /* merged with the external labels: one piece */
    assert_int_equal(cap.with_group, 2);
    snprintf(t, sizeof t, "m{a_first=\"1\",instance=\"%s\",job=\"test\",team=\"a\",zone=\"own\",zz=\"last\"}",
             addr);
    assert_non_null(find(t));
    snprintf(t, sizeof t, "n{a_first=\"1\",instance=\"%s\",job=\"test\",team=\"a\",zone=\"ext\",zz=\"last\"}",
             addr);
    assert_non_null(find(t));
    /* The sinks' hints were derived from the labels with the external ones merged in
     * (the capturing sink's from the series text, and it checks every hint it gets
     * back against the text): the same set keeps them, a changed set forgets them. */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.with_hint, 2);
    assert_int_equal(scrape_manager_set_external_labels(m, ext, 3), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.with_hint, 2);
    struct ss_kv ext2[] = {{"a_first", "1"}, {"zone", "ext"}, {"zz", "a-much-longer-value-than-before"}};
    assert_int_equal(scrape_manager_set_external_labels(m, ext2, 3), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.with_hint, 0);
    assert_int_equal(cap.hint_asked, 2);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.with_hint, 2);
    scrape_manager_free(m);
}

/* Two discovered entries that differ only in __meta_* labels are one target, as in
 * Prometheus (e.g. two container ports of one pod relabeled to one address). */
static void test_duplicate_targets_scraped_once(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    static struct ss_kv l1[] = {{"__meta_port_name", "http"}};
    static struct ss_kv l2[] = {{"__meta_port_name", "metrics"}};
    static struct scrape_target_group groups[2];
    groups[0] = (struct scrape_target_group){targets, 1, l1, 1};
    groups[1] = (struct scrape_target_group){targets, 1, l2, 1};
    struct scrape_job j = base_job();
    j.static_groups = groups;
    j.nstatic_groups = 2;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    cap.scrapes = 0;
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(cap.scrapes, 1);
    scrape_manager_free(m);
}

/* Targets keep their label pairs in the manager's one dictionary: three targets of
 * the same body share most pairs; a target that leaves gives back only its own
 * references (its stale markers carry its own labels), and the others' series, and
 * the target coming back, read back with their own labels. */
static void test_targets_share_pairs(void **state)
{
    (void)state;
    serve(200, TEXT, "a{x=\"1\"} 1\nb{x=\"2\"} 2\n");
    static struct ss_kv labels[3][1] = {{{"shard", "0"}}, {{"shard", "1"}}, {{"shard", "2"}}};
    static struct scrape_target_group groups[3], two[2];
    for (int k = 0; k < 3; k++)
        groups[k] = (struct scrape_target_group){targets, 1, labels[k], 1};
    two[0] = groups[0];
    two[1] = groups[2];
    struct scrape_job j = base_job();
    j.static_groups = groups;
    j.nstatic_groups = 3;
    struct scrape_manager *m = manager(&j);
    char t[256];
    for (int step = 0; step < 3; step++) {
        /* step 1: shard 1 left before this scrape; step 2: it is back */
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        for (int k = 0; k < 3; k++) {
            snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\",shard=\"%d\",x=\"1\"}", addr, k);
            const struct rec *a = find(t);
            snprintf(t, sizeof t, "b{instance=\"%s\",job=\"test\",shard=\"%d\",x=\"2\"}", addr, k);
            const struct rec *b = find(t);
            if (step == 1 && k == 1) {
                assert_null(a);
                assert_null(b);
                continue;
            }
            if (!a || !b || a->value != 1 || b->value != 2 || a->stale || b->stale) {
                dump();
                fail_msg("step %d: shard %d's series are not as exposed", step, k);
            }
        }
        assert_int_equal(count_stale(), 0);
        if (step == 0) { /* shard 1 leaves: stale markers with its labels */
            j.static_groups = two;
            j.nstatic_groups = 2;
            reset_capture();
            assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
            assert_int_equal(count_stale(), 2 + 5); /* and its five synthetic series */
            snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\",shard=\"1\",x=\"1\"}", addr);
            assert_non_null(find(t));
            assert_true(find(t)->stale);
        } else if (step == 1) {
            j.static_groups = groups;
            j.nstatic_groups = 3;
            assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
        }
    }
    scrape_manager_free(m);
}

/* More targets than keep a libcurl handle each (EASY_OWN_TARGETS, 256): the handles
 * pass from target to target between scrapes, and each scrape still goes out with its
 * own target's URL, timeout and job options and lands in its own target (the server
 * echoes the query parameter, the X-Test header and the timeout header back as
 * labels). A handle given back keeps its options for the next target of its job and
 * timeout (easy_take), so a reload that changes a job's header must reach every one. */
static void test_many_targets_share_handles(void **state)
{
    (void)state;
    enum { PER_JOB = 150, JOBS = 2 };
    static struct scrape_target_group groups[JOBS][PER_JOB];
    static struct ss_kv labels[JOBS][PER_JOB][3];
    static char shard[JOBS][PER_JOB][16];
    struct scrape_job jobs[JOBS];
    struct httpc_header h = {"X-Test", "a"};
    for (int k = 0; k < JOBS; k++) {
        for (int i = 0; i < PER_JOB; i++) {
            snprintf(shard[k][i], sizeof shard[k][i], "%d", k * PER_JOB + i);
            labels[k][i][0] = (struct ss_kv){"__param_p", shard[k][i]};
            labels[k][i][1] = (struct ss_kv){"shard", shard[k][i]};
            labels[k][i][2] = (struct ss_kv){"__scrape_timeout__", i % 3 ? "2s" : "3s"};
            groups[k][i] = (struct scrape_target_group){targets, 1, labels[k][i], 3};
        }
        jobs[k] = base_job();
        jobs[k].name = k ? "plain" : "headed";
        jobs[k].static_groups = groups[k];
        jobs[k].nstatic_groups = PER_JOB;
    }
    jobs[0].http.headers = &h;
    jobs[0].http.nheaders = 1;
    pthread_mutex_lock(&srv.mu);
    srv.echo = true;
    srv.status = 200;
    snprintf(srv.content_type, sizeof srv.content_type, "%s", TEXT);
    pthread_mutex_unlock(&srv.mu);
    struct scrape_sink sink = {.begin = on_begin, .series = on_series};
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(NULL, &sink, &m), 0);
    assert_int_equal(scrape_manager_set_jobs(m, jobs, JOBS), 0);
    for (int round = 0; round < 5; round++) {
        if (round == 3) { /* the header changes: every handle of the job must send the new one */
            h.value = "b";
            assert_int_equal(scrape_manager_set_jobs(m, jobs, JOBS), 0);
        }
        reset_capture();
        cap.scrapes = 0;
        unsigned before = srv.requests;
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_int_equal(cap.scrapes, JOBS * PER_JOB);
        assert_int_equal(srv.requests - before, JOBS * PER_JOB);

        size_t echoes = 0, up = 0;
        for (size_t r = 0; r < cap.n; r++) {
            up += strncmp(cap.v[r].text, "up{", 3) == 0 && cap.v[r].value == 1;
            /* the reload's round also marks the series of the old header stale */
            if (strncmp(cap.v[r].text, "echo{", 5) != 0 || scrape_is_stale_nan(cap.v[r].value))
                continue;
            echoes++;
            int p = -1, s = -2;
            char x[8] = "", to[8] = "";
            const char *t = cap.v[r].text;
            const char *pp = strstr(t, "p=\""), *sp = strstr(t, "shard=\""), *xp = strstr(t, "x=\""),
                       *tp = strstr(t, "to=\"");
            assert_non_null(pp);
            assert_non_null(sp);
            assert_non_null(tp);
            p = atoi(pp + 3);
            s = atoi(sp + 7);
            if (xp)
                snprintf(x, sizeof x, "%.1s", xp + 3);
            snprintf(to, sizeof to, "%.1s", tp + 4);
            const char *want_x = s >= PER_JOB ? "" : round < 3 ? "a" : "b";
            if (p != s || strcmp(x, want_x) != 0 || strcmp(to, (s % PER_JOB) % 3 ? "2" : "3") != 0) {
                dump();
                fail_msg("round %d: %s landed in the wrong target or went out with the wrong options", round,
                         t);
            }
        }
        assert_int_equal(echoes, JOBS * PER_JOB);
        assert_int_equal(up, JOBS * PER_JOB);
    }
    scrape_manager_free(m);
    pthread_mutex_lock(&srv.mu);
    srv.echo = false;
    pthread_mutex_unlock(&srv.mu);
}

/* Out of descriptors: a scrape whose socket() fails says why (libcurl alone says
 * "Couldn't connect to server"), the others go on, and all are up again once there is
 * room. */
static unsigned emfile_reports, emfile_down;
static void on_begin_emfile(void *ud, const struct scrape_report *r)
{
    (void)ud;
    if (!r->up)
        emfile_down++;
    if (r->error && strstr(r->error, "Couldn't connect to server (socket: Too many open files)"))
        emfile_reports++;
}

/* The lowest limit under which exactly `room` descriptors are free: the limit bounds
 * descriptor numbers, not their count, and the open ones need not be the lowest. */
static rlim_t limit_with_room(unsigned room)
{
    static char open_below[4096];
    memset(open_below, 0, sizeof open_below);
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != self && atoi(e->d_name) < (int)sizeof open_below)
            open_below[atoi(e->d_name)] = 1;
    closedir(d);
    unsigned free_n = 0;
    rlim_t lim = 0;
    while (free_n < room && lim < sizeof open_below)
        free_n += !open_below[lim++];
    return lim;
}

/* A server in a child process, whose descriptors the test's tight limit does not
 * touch (an in-process server would need a descriptor per accepted connection out of
 * the same few), and whose delays do not hold up the test's own server: every request
 * on a connection is answered with "a 1", delay_ms after it came. Stops when killed,
 * or after 60 s. Only system calls in the child. */
static pid_t fork_server_with(int *port, int delay_ms, const char *answer)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 128), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *resp = answer;
        static struct pollfd fds[256];
        static char buf[8192];
        nfds_t n = 1;
        fds[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        alarm(60);
        for (;;) {
            if (poll(fds, n, 1000) < 0)
                continue;
            if (fds[0].revents & POLLIN) {
                int c = accept(ls, NULL, NULL);
                if (c >= 0 && n < 256)
                    fds[n++] = (struct pollfd){.fd = c, .events = POLLIN};
                else if (c >= 0)
                    close(c);
            }
            for (nfds_t i = 1; i < n; i++) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t r = read(fds[i].fd, buf, sizeof buf);
                if (r <= 0) {
                    close(fds[i].fd);
                    fds[i--] = fds[--n];
                    continue;
                }
                for (ssize_t k = 3; k < r; k++) /* one answer per request head */
                    if (buf[k - 3] == '\r' && buf[k - 2] == '\n' && buf[k - 1] == '\r' && buf[k] == '\n') {
                        struct timespec d = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
                        nanosleep(&d, NULL);
                        (void)!write(fds[i].fd, resp, strlen(resp));
                    }
            }
        }
    }
    close(ls);
    return pid;
}

/* A forked server (system calls only) answering every request with `a 1`. */
static pid_t fork_server(int *port, int delay_ms)
{
    return fork_server_with(port, delay_ms,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                            "Content-Length: 4\r\n\r\na 1\n");
}

/* An empty Content-Encoding header is no encoding (libcurl 7.88 hands its value over
 * as a lone CR): the body is parsed, as Prometheus does. */
/* The metrics path is escaped as Go's url.URL escapes a Path (Prometheus' target
 * URL): a blank, '?' and '%' become %XX, $&+,/:;=@ and -_.~ stay, and params are the
 * query. */
static void test_metrics_path_escaped(void **state)
{
    (void)state;
    serve(200, TEXT, "m 1\n");
    struct scrape_job j = base_job();
    j.metrics_path = "/p/sub path?x=1&y=a%20b;c@d";
    struct scrape_manager *m = manager(&j);
    reset_capture();
    (void)scrape_manager_scrape_once(m);
    char want[256];
    snprintf(want, sizeof want, "http://%s/p/sub%%20path%%3Fx=1&y=a%%2520b;c@d", addr);
    assert_string_equal(cap.last_url, want);
    scrape_manager_free(m);
}

static uint64_t failures(struct scrape_manager *m, const char *reason);

/* target_limit: a job with more targets than its limit fails every scrape at once
 * (up=0, reason target_limit, no request), as Prometheus' scrape pool does, and
 * scrapes again once a reload lifts the limit. */
static void test_target_limit(void **state)
{
    (void)state;
    static char second[64];
    static const char *two[2] = {addr, second};
    snprintf(second, sizeof second, "localhost:%s", strchr(addr, ':') + 1);
    struct scrape_target_group g = {two, 2, NULL, 0};
    serve(200, TEXT, "m 1\n");
    struct scrape_job j = base_job();
    j.static_groups = &g;
    j.nstatic_groups = 1;
    j.target_limit = 1;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 2);
    assert_false(cap.last_up);
    assert_non_null(strstr(cap.last_error, "target_limit exceeded (number of targets: 2, limit: 1)"));
    assert_int_equal(failures(m, "target_limit"), 2);
    char t[256];
    snprintf(t, sizeof t, "m{instance=\"%s\",job=\"test\"}", addr);
    assert_null(find(t)); /* nothing was scraped */
    j.target_limit = 2;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_non_null(find(t));
    scrape_manager_free(m);
}

static void test_empty_content_encoding(void **state)
{
    (void)state;
    int port = 0;
    pid_t child = fork_server_with(&port, 0,
                                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                   "Content-Encoding:\r\nContent-Length: 4\r\n\r\na 1\n");
    static char child_addr[64];
    static const char *child_targets[1] = {child_addr};
    snprintf(child_addr, sizeof child_addr, "127.0.0.1:%d", port);
    struct scrape_target_group g = {child_targets, 1, NULL, 0};
    struct scrape_job j = base_job();
    j.static_groups = &g;
    j.nstatic_groups = 1;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    int rc = scrape_manager_scrape_once(m);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (rc != 0)
        fail_msg("%s", cap.last_error);
    assert_true(cap.last_up);
    char t[256];
    snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\"}", child_addr);
    assert_non_null(find(t));
    scrape_manager_free(m);
}

static void test_socket_error_named(void **state)
{
    (void)state;
    enum { N = 40 };
    static struct scrape_target_group groups[N];
    static struct ss_kv labels[N][1];
    static char ps[N][16], child_addr[32];
    static const char *child_targets[1] = {child_addr};
    int port;
    pid_t child = fork_server(&port, 0);
    snprintf(child_addr, sizeof child_addr, "127.0.0.1:%d", port);
    for (int i = 0; i < N; i++) {
        snprintf(ps[i], sizeof ps[i], "%d", i);
        labels[i][0] = (struct ss_kv){"__param_p", ps[i]};
        groups[i] = (struct scrape_target_group){child_targets, 1, labels[i], 1};
    }
    struct scrape_job j = base_job();
    j.timeout_ms = 1000;
    j.static_groups = groups;
    j.nstatic_groups = N;
    serve(200, TEXT, "a 1\n");
    struct scrape_sink sink = {.begin = on_begin_emfile, .series = on_series};
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(NULL, &sink, &m), 0);
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    struct rlimit old, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    tight = old;
    tight.rlim_cur = limit_with_room(8); /* room for a few of the N connections */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    emfile_reports = emfile_down = 0;
    scrape_manager_scrape_once(m);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(emfile_reports > 0);
    assert_true(emfile_down < N); /* the scrapes that had a socket went on */
    emfile_reports = emfile_down = 0;
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(emfile_down, 0);
    assert_int_equal(emfile_reports, 0);
    scrape_manager_free(m);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

/* A discovered target that cannot be scraped (here its timeout is longer than its
 * interval) is logged and counted, and the job's other targets are scraped. */
static void test_target_sync_failed_counted(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    static const char *bad_targets[1] = {"127.0.0.1:1"};
    static struct ss_kv bad_labels[1] = {{"__scrape_timeout__", "5m"}};
    struct scrape_target_group groups[2] = {{targets, 1, NULL, 0}, {bad_targets, 1, bad_labels, 1}};
    struct scrape_job j = base_job();
    j.static_groups = groups;
    j.nstatic_groups = 2;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    char t[256];
    snprintf(t, sizeof t, "a{instance=\"%s\",job=\"test\"}", addr);
    assert_non_null(find(t));
    struct ss_buf out;
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    assert_non_null(strstr(out.data, "scrapeship_target_sync_failed_total{scrape_job=\"test\"} 1\n"));
    assert_non_null(strstr(out.data, "scrapeship_targets{scrape_job=\"test\"} 1\n"));
    ss_buf_free(&out);
    scrape_manager_free(m);
}

/* job_name may hold any character: the self-metrics escape it as a label value, so a
 * quote in a job name cannot break the /metrics exposition. */
static void test_self_metrics_escape_job(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    struct scrape_job j = base_job();
    j.name = "we\"ird\\job";
    struct scrape_manager *m = manager(&j);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    struct ss_buf out;
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    assert_non_null(strstr(out.data, "scrapeship_scrapes_total{scrape_job=\"we\\\"ird\\\\job\"} 1\n"));
    assert_non_null(
        strstr(out.data,
               "scrapeship_scrape_failures_total{scrape_job=\"we\\\"ird\\\\job\",reason=\"timeout\"} 0\n"));
    assert_non_null(
        strstr(out.data, "scrapeship_scrape_duration_seconds_count{scrape_job=\"we\\\"ird\\\\job\"} 1\n"));
    assert_null(strstr(out.data, "job=\"we\"ird"));
    ss_buf_free(&out);
    scrape_manager_free(m);
}

/* ---- schedule ----------------------------------------------------------------------- */

static void *run_manager(void *m)
{
    scrape_manager_run(m);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t loop_wakeups(struct scrape_manager *m)
{
    struct ss_buf out;
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    const char *p = strstr(out.data, "\nscrapeship_scrape_loop_wakeups_total ");
    assert_non_null(p);
    uint64_t n = strtoull(p + strlen("\nscrapeship_scrape_loop_wakeups_total "), NULL, 10);
    ss_buf_free(&out);
    return n;
}

/* Between scrapes the loop sleeps until the next slot: no wakeup a second (on a
 * sidecar those were half of its CPU), and a stop still ends it at once. */
static void test_idle_loop_sleeps(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    struct scrape_job j = base_job(); /* every 60 s: the window below rarely holds a scrape */
    struct scrape_manager *m = manager(&j);
    cap.nstarts = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_manager, m), 0);
    usleep(300 * 1000);
    uint64_t turns = 0;
    bool quiet = false;
    for (int attempt = 0; attempt < 3 && !quiet; attempt++) {
        size_t starts = cap.nstarts;
        uint64_t before = loop_wakeups(m);
        usleep(3200 * 1000);
        turns = loop_wakeups(m) - before;
        quiet = cap.nstarts == starts; /* else a scrape fell in the window: again */
    }
    assert_true(quiet);
    int64_t t0 = ss_mono_ms();
    scrape_manager_stop(m);
    pthread_join(th, NULL);
    int64_t stop_ms = ss_mono_ms() - t0;
    scrape_manager_free(m);
    if (turns > 0 || stop_ms > 500)
        fail_msg("%llu loop wakeups in 3.2 s without a scrape; stop took %lld ms", (unsigned long long)turns,
                 (long long)stop_ms);
}

/* A discoverer that says when it has news (scrape_discoverer.watch), as Kubernetes
 * SD does; or, with watch NULL, one that can only be polled. */
struct news_sd {
    pthread_mutex_t mu;
    void (*wake)(void *);
    void *arg;
    int watches, unwatches;
    bool news;
    _Atomic int polls;
    struct scrape_target_group group;
};

static bool news_poll(void *ud, const struct scrape_target_group **g, size_t *n)
{
    struct news_sd *f = ud;
    atomic_fetch_add(&f->polls, 1);
    pthread_mutex_lock(&f->mu);
    bool r = f->news;
    if (r) {
        *g = &f->group;
        *n = 1;
        f->news = false;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static void news_watch(void *ud, void (*wake)(void *), void *arg)
{
    struct news_sd *f = ud;
    pthread_mutex_lock(&f->mu);
    f->wake = wake;
    f->arg = arg;
    if (wake)
        f->watches++;
    else
        f->unwatches++;
    pthread_mutex_unlock(&f->mu);
}

static int64_t news_next(void *ud)
{
    struct news_sd *f = ud;
    pthread_mutex_lock(&f->mu);
    int64_t at = f->news ? 0 : INT64_MAX;
    pthread_mutex_unlock(&f->mu);
    return at;
}

/* Another thread's discovery finds the test server. */
static void news_publish(struct news_sd *f)
{
    static const char *tl[1];
    tl[0] = addr;
    pthread_mutex_lock(&f->mu);
    f->group = (struct scrape_target_group){tl, 1, NULL, 0};
    f->news = true;
    if (f->wake)
        f->wake(f->arg);
    pthread_mutex_unlock(&f->mu);
}

static uint64_t metric_value(struct scrape_manager *m, const char *prefix)
{
    struct ss_buf out;
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    const char *p = strstr(out.data, prefix);
    uint64_t n = p ? strtoull(p + strlen(prefix), NULL, 10) : 0;
    ss_buf_free(&out);
    return n;
}

/* A job fed by a discoverer that watches: the loop sleeps (no turn in 3.2 s, no poll
 * on a timer) and wakes at once when the discoverer has news (the target is in the
 * job within 500 ms); it stops watching when the manager goes. A discoverer that
 * cannot watch is polled every second. */
static void test_discovery_wakes_loop(void **state)
{
    (void)state;
    serve(200, TEXT, "a 1\n");
    for (int watching = 1; watching >= 0; watching--) {
        struct news_sd f = {.mu = PTHREAD_MUTEX_INITIALIZER};
        struct scrape_discoverer d = {.poll = news_poll, .ud = &f};
        if (watching) {
            d.watch = news_watch;
            d.next_poll_ms = news_next;
        }
        struct scrape_job j = base_job();
        j.static_groups = NULL;
        j.nstatic_groups = 0;
        j.discoverers = &d;
        j.ndiscoverers = 1;
        struct scrape_manager *m = manager(&j);
        assert_int_equal(f.watches, watching);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, run_manager, m), 0);
        usleep(300 * 1000);
        uint64_t before = loop_wakeups(m);
        int polls = atomic_load(&f.polls);
        usleep(3200 * 1000);
        uint64_t turns = loop_wakeups(m) - before;
        polls = atomic_load(&f.polls) - polls;
        if (watching && (turns > 0 || polls > 0))
            fail_msg("%llu loop wakeups, %d polls in 3.2 s with a watching discoverer",
                     (unsigned long long)turns, polls);
        if (!watching && polls < 2)
            fail_msg("%d polls in 3.2 s of a discoverer that cannot watch", polls);
        assert_int_equal(metric_value(m, "scrapeship_targets{scrape_job=\"test\"} "), 0);
        int64_t t0 = ss_mono_ms();
        news_publish(&f);
        while (metric_value(m, "scrapeship_targets{scrape_job=\"test\"} ") == 0 && ss_mono_ms() - t0 < 3000)
            usleep(5 * 1000);
        int64_t took = ss_mono_ms() - t0;
        scrape_manager_stop(m);
        pthread_join(th, NULL);
        scrape_manager_free(m);
        assert_true(took < 3000);
        if (watching && took > 500)
            fail_msg("the target joined %lld ms after the discoverer's news", (long long)took);
        assert_int_equal(f.unwatches, watching);
        assert_null(f.wake);
    }
}

/* A job of n targets (at most 40), all the test server, told apart by a label n=<i>. */
static struct scrape_job many_targets_job(int n)
{
    enum { MAX = 40 };
    static const char *tl[1];
    static struct ss_kv labels[MAX][1];
    static char vals[MAX][12];
    static struct scrape_target_group groups[MAX];
    assert_true(n <= MAX);
    tl[0] = addr;
    for (int i = 0; i < n; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        labels[i][0] = (struct ss_kv){"n", vals[i]};
        groups[i] = (struct scrape_target_group){tl, 1, labels[i], 1};
    }
    struct scrape_job j = base_job();
    j.static_groups = groups;
    j.nstatic_groups = (size_t)n;
    return j;
}

/* 40 targets every second serve `first`, then from `switch_ms` on `then`, until
 * `total_ms`: the median of how late after the wall clock's `slot` ms boundaries the
 * scrapes that started `count_from_ms` or later started (0 to slot-1 ms; *n of them).
 * On slots most start within a ms or two of a boundary, and a late start (a busy
 * machine starting 40 transfers in one wakeup) moves the median little; spread to the
 * millisecond, the median is about slot/2. */
static int64_t scrapes_on_slots(const char *first, const char *then, int switch_ms, int total_ms,
                                int count_from_ms, int64_t slot, size_t *n)
{
    serve(200, TEXT, first);
    enum { N = 40 };
    struct scrape_job j = many_targets_job(N);
    j.interval_ms = 1000;
    j.timeout_ms = 900;
    struct scrape_manager *m = manager(&j);
    reset_capture();
    cap.nstarts = 0;
    pthread_t th;
    int64_t t0 = ss_now_ms();
    assert_int_equal(pthread_create(&th, NULL, run_manager, m), 0);
    if (then) {
        usleep((useconds_t)switch_ms * 1000);
        serve(200, TEXT, then);
        usleep((useconds_t)(total_ms - switch_ms) * 1000);
    } else {
        usleep((useconds_t)total_ms * 1000);
    }
    scrape_manager_stop(m);
    pthread_join(th, NULL);
    scrape_manager_free(m);
    static int64_t late[sizeof cap.starts / sizeof cap.starts[0]];
    *n = 0;
    for (size_t i = 0; i < cap.nstarts; i++) {
        if (cap.starts[i] < t0 + count_from_ms)
            continue;
        /* the wall clock's and the monotonic clock's milliseconds may tick apart:
         * a start 1-2 ms before its slot is on it too */
        late[(*n)++] = (cap.starts[i] + 2) % slot;
    }
    assert_true(*n >= N);
    qsort(late, *n, sizeof late[0], cmp_i64);
    return late[*n / 2];
}

/* n lines "bI 1": a target of n series. */
static const char *series_body(int n)
{
    static char body[60000];
    size_t pos = 0;
    for (int i = 0; i < n && pos < sizeof body; i++)
        pos += (size_t)snprintf(body + pos, sizeof body - pos, "b%d 1\n", i);
    return body;
}

/* A small target moves to its slot (25 ms, a fortieth of shorter intervals) after its
 * first scrape, so the small targets of a slot start in one wakeup; spread to the
 * millisecond, 60% of the starts would fall within 12 ms of a slot by chance. */
static void test_small_targets_start_on_slots(void **state)
{
    (void)state;
    size_t n;
    /* 40 targets every second: slots of 100 ms, about ten targets each (slot_width) */
    int64_t late = scrapes_on_slots("a 1\n", NULL, 0, 2600, 1000, 100, &n);
    if (late > 6) /* a loaded machine may start some late */
        fail_msg("%zu scrapes started a median %lld ms after a 100 ms slot", n, (long long)late);
}

/* Past 256 targets, connections go to 16 libcurl caches instead of one (libcurl 7.88
 * walks the whole cache at every curl_multi_remove_handle); back to one below 192. */
static void test_conn_shares_on(void **state)
{
    (void)state;
    assert_false(scrape_conn_shares_on(false, 0));
    assert_false(scrape_conn_shares_on(false, 256));
    assert_true(scrape_conn_shares_on(false, 257));
    assert_true(scrape_conn_shares_on(true, 257));
    assert_true(scrape_conn_shares_on(true, 192));
    assert_false(scrape_conn_shares_on(true, 191));
    assert_false(scrape_conn_shares_on(false, 200));
}

/* The slot width: about ten targets a slot (SLOT_TARGETS), 25, 50 or 100 ms, never
 * more than a tenth of the interval; intervals under 1 s keep a fortieth. */
static void test_slot_width(void **state)
{
    (void)state;
    assert_int_equal(scrape_slot_width(1000, 0), 100);
    assert_int_equal(scrape_slot_width(1000, 1), 100);
    assert_int_equal(scrape_slot_width(1000, 100), 100); /* 10 a slot */
    assert_int_equal(scrape_slot_width(1000, 101), 50);
    assert_int_equal(scrape_slot_width(1000, 200), 50);
    assert_int_equal(scrape_slot_width(1000, 201), 25);
    assert_int_equal(scrape_slot_width(1000, 1000), 25); /* no narrower than 25 ms */
    assert_int_equal(scrape_slot_width(15000, 1000), 100);
    assert_int_equal(scrape_slot_width(15000, 3000), 50);
    assert_int_equal(scrape_slot_width(500, 1), 500 / 40);
    assert_int_equal(scrape_slot_width(100, 1), 2);
    assert_int_equal(scrape_slot_width(10, 1), 0);
    assert_int_equal(scrape_slot_width(400, 0), 400 / 40);
}

/* Small scrapes that finish in one pass of the loop are paced between them: before
 * a scrape's series go, once 2048 or more went since the last check, the sink is
 * asked for room, first with no time to wait (a check), and only when it has none,
 * again with a pacing window. 30 targets of 100 series finishing together: 3000 series
 * in all, so one check after about 2048 and none before; with no room, a wait with a
 * deadline in the future. Every series arrives either way. */
static struct {
    size_t series, calls;
    size_t at[8];
    int64_t deadline[8], asked[8];
    bool room;
} between;

static void between_series(void *ud, const struct scrape_series *s)
{
    (void)ud;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq_cstr(s->labels[i].name, "__name__") && s->labels[i].value.len > 1 &&
            s->labels[i].value.p[0] == 'b' && s->labels[i].value.p[1] >= '0' &&
            s->labels[i].value.p[1] <= '9')
            between.series++;
}

static bool between_wait(void *ud, int64_t deadline_mono_ms)
{
    (void)ud;
    if (between.calls < 8) {
        between.at[between.calls] = between.series;
        between.deadline[between.calls] = deadline_mono_ms;
        between.asked[between.calls] = ss_mono_ms();
    }
    between.calls++;
    return between.room;
}

static const char *series_body(int n);

static void between_scrape(bool room)
{
    serve(200, TEXT, series_body(100));
    enum { N = 30 };
    struct scrape_job j = many_targets_job(N);
    struct scrape_sink sink = {.series = between_series, .wait_room = between_wait};
    struct scrape_manager *m = manager_with(&j, &sink);
    memset(&between, 0, sizeof between);
    between.room = room;
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(between.series, N * 100);
    scrape_manager_free(m);
    serve(200, TEXT, "");
}

static void test_small_scrapes_paced_between(void **state)
{
    (void)state;
    between_scrape(true);
    assert_int_equal(between.calls, 1); /* one check, at 2048 or more, room: no wait */
    assert_true(between.at[0] >= 2048 && between.at[0] < 2048 + 100);
    assert_true(between.deadline[0] <= between.asked[0]); /* a check: no time to wait */

    between_scrape(false);
    assert_int_equal(between.calls, 2); /* the check, then the wait */
    assert_true(between.at[0] >= 2048 && between.at[0] < 2048 + 100);
    assert_int_equal(between.at[1], between.at[0]);
    assert_true(between.deadline[0] <= between.asked[0]);
    assert_true(between.deadline[1] > between.asked[1]); /* a window */
}

/* A small scrape's duration is its transfer's, not the time the loop then waited for
 * the sink's room before handing its series over (pace_between): 30 targets of 100
 * series served at once, a sink that has no room and waits 400 ms for it. Every
 * scrape_duration_seconds stays well under the wait, also a slow target's (250 ms)
 * that is still in flight while the loop waits (curl is not driven in a wait, so its
 * end is only seen after it: the waits are left out). */
static struct {
    int waits;
    double max_duration;
} slowsink;

static bool slowsink_wait(void *ud, int64_t deadline_mono_ms)
{
    (void)ud;
    if (deadline_mono_ms <= ss_mono_ms())
        return false; /* the check: no room */
    slowsink.waits++;
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    return true;
}

static void slowsink_series(void *ud, const struct scrape_series *s)
{
    (void)ud;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq_cstr(s->labels[i].name, "__name__") &&
            ss_str_eq_cstr(s->labels[i].value, "scrape_duration_seconds") && s->value > slowsink.max_duration)
            slowsink.max_duration = s->value;
}

static void test_paced_between_duration(void **state)
{
    (void)state;
    serve(200, TEXT, series_body(100));
    struct scrape_job j = many_targets_job(30);
    static char slow_addr[32];
    static const char *slow_targets[1] = {slow_addr};
    int port;
    pid_t child = fork_server(&port, 250);
    snprintf(slow_addr, sizeof slow_addr, "127.0.0.1:%d", port);
    static struct scrape_target_group groups[31];
    memcpy(groups, j.static_groups, 30 * sizeof groups[0]);
    groups[30] = (struct scrape_target_group){slow_targets, 1, NULL, 0};
    j.static_groups = groups;
    j.nstatic_groups = 31;
    struct scrape_sink sink = {.series = slowsink_series, .wait_room = slowsink_wait};
    struct scrape_manager *m = manager_with(&j, &sink);
    memset(&slowsink, 0, sizeof slowsink);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    scrape_manager_free(m);
    serve(200, TEXT, "");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(slowsink.waits >= 1);
    if (slowsink.max_duration >= 0.3)
        fail_msg("a scrape_duration_seconds of %.3f s includes the 400 ms pacing wait",
                 slowsink.max_duration);
}

/* A target of more than 2000 series keeps its phase to the millisecond: two of them
 * finishing together would queue twice the samples at once. */
static void test_big_targets_keep_their_phase(void **state)
{
    (void)state;
    size_t n;
    int64_t late = scrapes_on_slots(series_body(2100), NULL, 0, 2600, 1000, 25, &n);
    if (late <= 6)
        fail_msg("%zu scrapes of big targets started a median %lld ms after a 25 ms slot", n,
                 (long long)late);
}

/* ...and a small one that grows past 4000 series goes back to its phase. */
static void test_grown_targets_leave_their_slot(void **state)
{
    (void)state;
    static char small[8];
    snprintf(small, sizeof small, "a 1\n");
    size_t n;
    int64_t late = scrapes_on_slots(small, series_body(4100), 1300, 3700, 2400, 25, &n);
    if (late <= 6)
        fail_msg("%zu scrapes of grown targets started a median %lld ms after a 25 ms slot", n,
                 (long long)late);
}

/* ---- gzip --------------------------------------------------------------------------- */

/* A body of n samples across several 16 KiB chunks, with HELP/TYPE lines. */
static void build_body(char *out, size_t size, int n)
{
    size_t pos = (size_t)snprintf(out, size, "# HELP req Requests.\n# TYPE req counter\n");
    for (int i = 0; i < n && pos < size; i++)
        pos += (size_t)snprintf(out + pos, size - pos,
                                "req_total{path=\"/api/v1/item/%d\",code=\"%d\"} %d.5\n", i, 200 + i % 5, i);
}

static int cmp_rec(const void *a, const void *b)
{
    return strcmp(((const struct rec *)a)->text, ((const struct rec *)b)->text);
}

/* Captured series minus the scrape_duration_seconds one, sorted: comparable. */
static size_t snapshot(struct rec *out)
{
    size_t k = 0;
    for (size_t i = 0; i < cap.n; i++)
        if (!strstr(cap.v[i].text, "scrape_duration_seconds"))
            out[k++] = cap.v[i];
    qsort(out, k, sizeof out[0], cmp_rec);
    return k;
}

static uint64_t failures(struct scrape_manager *m, const char *reason)
{
    struct ss_buf out;
    char key[128];
    ss_buf_init(&out, 0);
    assert_int_equal(scrape_manager_render_metrics(m, &out), 0);
    snprintf(key, sizeof key, "scrapeship_scrape_failures_total{scrape_job=\"test\",reason=\"%s\"} ", reason);
    const char *p = strstr(out.data, key);
    assert_non_null(p);
    uint64_t v = strtoull(p + strlen(key), NULL, 10);
    ss_buf_free(&out);
    return v;
}

/* Parsers come from the manager's spares with each scrape (parser_take): a reload that
 * turns strict_parsing on or off takes effect at the next scrape, both ways, and a
 * spare made for the other setting is not used. */
static void test_strict_parsing_follows_reload(void **state)
{
    (void)state;
    serve(200, TEXT, "# HELP a first\n# HELP a second\na 1\n"); /* two HELP lines: expfmt refuses */
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    for (int round = 0; round < 2; round++) {
        j.strict_parsing = false;
        assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_true(cap.last_up);
        j.strict_parsing = true;
        assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 1);
        assert_false(cap.last_up);
        assert_int_equal(failures(m, "parse"), (uint64_t)round + 1);
    }
    scrape_manager_free(m);
}

static struct rec plain_recs[2048], gz_recs[2048];

static void test_gzip_same_as_plain(void **state)
{
    (void)state;
    static char body[60000];
    build_body(body, sizeof body, 900);
    serve(200, TEXT, body);
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    size_t np = snapshot(plain_recs);
    assert_true(np > 900);
    scrape_manager_free(m);

    size_t n = 0;
    unsigned char *gz = gzip_member(body, strlen(body), 6, &n);
    serve_raw(gz, n, "gzip");
    m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    size_t ng = snapshot(gz_recs);
    assert_int_equal(ng, np);
    for (size_t i = 0; i < np; i++) {
        assert_string_equal(gz_recs[i].text, plain_recs[i].text);
        assert_true(gz_recs[i].value == plain_recs[i].value);
    }
    /* and again on the same manager: the reused buffer, the scrape cache */
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(snapshot(gz_recs), np);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* Live series of the capture, sorted, without the figures that differ between a fresh
 * manager and one that scraped other bodies before (duration, series added). */
static size_t snapshot_live(struct rec *out)
{
    size_t k = 0;
    for (size_t i = 0; i < cap.n; i++)
        if (!cap.v[i].stale && !strstr(cap.v[i].text, "scrape_duration_seconds") &&
            !strstr(cap.v[i].text, "scrape_series_added"))
            out[k++] = cap.v[i];
    qsort(out, k, sizeof out[0], cmp_rec);
    return k;
}

static struct rec small_recs[2048], big_recs[2048];

/* No target keeps a compressed-body buffer between scrapes: each body takes one of the
 * manager's spares and gives it back. Bodies that grow and shrink from scrape to scrape
 * (a spare too small, one too big, none yet) still arrive whole, and parse as plain. */
static void test_gzip_spares_follow_bodies(void **state)
{
    (void)state;
    static char small[8000], big[60000];
    build_body(small, sizeof small, 60);
    build_body(big, sizeof big, 900);
    struct scrape_job j = base_job();
    size_t nsmall, nbig;
    struct scrape_manager *m = manager(&j);
    serve(200, TEXT, small);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    nsmall = snapshot_live(small_recs);
    scrape_manager_free(m);
    m = manager(&j);
    serve(200, TEXT, big);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    nbig = snapshot_live(big_recs);
    scrape_manager_free(m);
    assert_true(nsmall > 60 && nbig > 900);

    m = manager(&j);
    const char *order = "sbbssbsbbs"; /* s: small, b: big (level 1: about twice the bytes) */
    for (const char *o = order; *o; o++) {
        const char *body = *o == 's' ? small : big;
        size_t n = 0;
        unsigned char *gz = gzip_member(body, strlen(body), *o == 's' ? 9 : 1, &n);
        serve_raw(gz, n, "gzip");
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        size_t got = snapshot_live(gz_recs);
        const struct rec *want = *o == 's' ? small_recs : big_recs;
        assert_int_equal(got, *o == 's' ? nsmall : nbig);
        for (size_t i = 0; i < got; i++) {
            assert_string_equal(gz_recs[i].text, want[i].text);
            assert_true(gz_recs[i].value == want[i].value);
        }
    }
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

static size_t big_seen;

static void count_big(void *ud, const struct scrape_series *s)
{
    (void)ud;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq_cstr(s->labels[i].name, "__name__") && ss_str_eq_cstr(s->labels[i].value, "big") &&
            !scrape_is_stale_nan(s->value))
            big_seen++;
}

/* A gzip body whose compressed bytes pass 512 KiB streams from there on (and from its
 * first byte next time): the buffer that collected its start is freed, not kept as a
 * spare that nothing of that size will use (one huge target kept an idle 1 MiB), and
 * collecting a body never grows a buffer past that point. A small body afterwards
 * keeps a spare of its own size. */
static void test_gzip_stream_keeps_no_spare(void **state)
{
    (void)state;
    /* random hex label values: about 2 plain bytes to 1 compressed */
    const size_t nseries = 40000;
    size_t size = nseries * 64 + 256, pos = 0, n = 0;
    char *body = malloc(size);
    assert_non_null(body);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < nseries; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        pos += (size_t)snprintf(body + pos, size - pos, "big{id=\"%016llx%016llx\"} %zu\n",
                                (unsigned long long)x, (unsigned long long)(x * 31), i);
    }
    unsigned char *gz = gzip_member(body, pos, 6, &n);
    free(body);
    assert_true(n > 600 * 1024);
    serve_raw(gz, n, "gzip");
    struct scrape_job j = base_job();
    struct scrape_sink sink = {.series = count_big};
    struct scrape_manager *m = manager_with(&j, &sink);
    for (int round = 0; round < 2; round++) { /* collected then streamed; streamed at once */
        big_seen = 0;
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_int_equal(big_seen, nseries);
        assert_int_equal(scrape_manager_gz_spare_bytes(m), 0);
    }
    static char small[8000];
    build_body(small, sizeof small, 60);
    gz = gzip_member(small, strlen(small), 6, &n);
    serve_raw(gz, n, "gzip");
    assert_int_equal(scrape_manager_scrape_once(m), 0); /* streamed: it was big last time */
    assert_int_equal(scrape_manager_gz_spare_bytes(m), 0);
    assert_int_equal(scrape_manager_scrape_once(m), 0); /* collected whole, its buffer kept */
    size_t kept = scrape_manager_gz_spare_bytes(m);
    assert_true(kept > n && kept <= 4 * n);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* Pacing: a scrape of more than 2048 series hands them to the sink in parts and asks
 * the sink for room between parts (scrape_sink.wait_room), with one deadline for the
 * whole scrape: a quarter of the interval, for a target alone at most 10 s. Every series still
 * arrives, once and in exposition order. A scrape of 2048 series or fewer never asks.
 * Once the sink says the deadline passed, the rest of that scrape goes without asking. */
/* Serve a gzip body of n series (build_body). */
static void serve_gzip_series(int nseries)
{
    size_t size = (size_t)nseries * 64 + 256, n = 0;
    char *body = malloc(size);
    assert_non_null(body);
    build_body(body, size, nseries);
    unsigned char *gz = gzip_member(body, strlen(body), 6, &n);
    free(body);
    serve_raw(gz, n, "gzip");
}

static struct {
    size_t n, stale, bad_order, calls, at[16];
    int64_t deadline[16], asked_ms[16];
    bool refuse; /* answer false (deadline passed) from the second call on */
} pace;

static void pace_series(void *ud, const struct scrape_series *s)
{
    (void)ud;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq_cstr(s->labels[i].name, "__name__") &&
            ss_str_eq_cstr(s->labels[i].value, "req_total")) {
            if (scrape_is_stale_nan(s->value)) {
                pace.stale++;
                continue;
            }
            pace.bad_order += s->value != (double)pace.n + 0.5; /* build_body: series i has value i.5 */
            pace.n++;
        }
}

static bool pace_wait(void *ud, int64_t deadline_mono_ms)
{
    (void)ud;
    if (pace.calls < 16) {
        pace.at[pace.calls] = pace.n + pace.stale;
        pace.deadline[pace.calls] = deadline_mono_ms;
        pace.asked_ms[pace.calls] = ss_mono_ms();
    }
    pace.calls++;
    return !(pace.refuse && pace.calls >= 2);
}

static void pace_scrape(int nseries, int64_t interval_ms, bool refuse)
{
    serve_gzip_series(nseries);
    struct scrape_job j = base_job();
    j.interval_ms = interval_ms;
    j.timeout_ms = interval_ms < j.timeout_ms ? interval_ms : j.timeout_ms;
    struct scrape_sink sink = {.series = pace_series, .wait_room = pace_wait};
    struct scrape_manager *m = manager_with(&j, &sink);
    memset(&pace, 0, sizeof pace);
    pace.refuse = refuse;
    int64_t t0 = ss_mono_ms();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    int64_t t1 = ss_mono_ms();
    assert_int_equal(pace.n, nseries);
    assert_int_equal(pace.bad_order, 0);
    /* the only target: nothing else in flight or due, so a quarter of the interval, at
     * most 10 s (pace_window) */
    int64_t budget = interval_ms / 4 < 10000 ? interval_ms / 4 : 10000;
    for (size_t c = 0; c < pace.calls && c < 16; c++) {
        assert_int_equal(pace.at[c], (c + 1) * 2048);      /* between parts of 2048 */
        assert_true(pace.deadline[c] == pace.deadline[0]); /* one deadline per scrape */
        assert_true(pace.deadline[c] >= t0 + budget && pace.deadline[c] <= t1 + budget);
    }
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

static void test_big_scrape_paced(void **state)
{
    (void)state;
    pace_scrape(2048, 60000, false);
    assert_int_equal(pace.calls, 0);
    pace_scrape(2049, 60000, false);
    assert_int_equal(pace.calls, 1);
    pace_scrape(7000, 60000, false); /* parts end at 2048, 4096, 6144 */
    assert_int_equal(pace.calls, 3);
    pace_scrape(7000, 2000, false); /* a quarter of a 2 s interval: 500 ms */
    assert_int_equal(pace.calls, 3);
    pace_scrape(7000, 60000, true); /* told "too late" at the second part: no third call */
    assert_int_equal(pace.calls, 2);
}

/* Stale markers are paced as samples are: after a good scrape of 7000 series, a failed
 * scrape and then the removal of the target each hand over markers in parts of 2048. */
static void test_stale_markers_paced(void **state)
{
    (void)state;
    serve_gzip_series(7000);
    struct scrape_job j = base_job();
    struct scrape_sink sink = {.series = pace_series, .wait_room = pace_wait};
    struct scrape_manager *m = manager_with(&j, &sink);
    memset(&pace, 0, sizeof pace);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_int_equal(pace.n, 7000);
    assert_int_equal(pace.calls, 3);
    serve_raw(NULL, 0, NULL);
    serve(500, TEXT, "");
    memset(&pace, 0, sizeof pace);
    assert_int_equal(scrape_manager_scrape_once(m), 1); /* failed: every series goes stale */
    assert_int_equal(pace.stale, 7000);
    assert_int_equal(pace.calls, 3);
    assert_int_equal(pace.at[0], 2048);
    assert_int_equal(pace.at[2], 6144);

    /* scraped again, then the target is removed: its markers are paced too */
    serve(200, TEXT, "");
    serve_gzip_series(7000);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    memset(&pace, 0, sizeof pace);
    assert_int_equal(scrape_manager_set_jobs(m, NULL, 0), 0);
    assert_int_equal(pace.stale, 7000);
    assert_int_equal(pace.calls, 3);
    serve_raw(NULL, 0, NULL);
    serve(200, TEXT, "");
    scrape_manager_free(m);
}

/* Two big targets that finish together share one pacing window: against a sink that
 * never has room (each wait lasts until its deadline), the scrape loop is held for one
 * window (a quarter of the 2 s interval), not one per target, and every series of
 * both arrives. A target alone may wait longer than 1 s. */
static size_t window_series;
static int64_t window_waited_ms;

static void window_series_cb(void *ud, const struct scrape_series *s)
{
    (void)ud, (void)s;
    window_series++;
}

static bool window_wait(void *ud, int64_t deadline_mono_ms)
{
    (void)ud;
    int64_t now = ss_mono_ms();
    if (deadline_mono_ms > now) {
        struct timespec ts = {(deadline_mono_ms - now) / 1000, ((deadline_mono_ms - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        window_waited_ms += deadline_mono_ms - now;
    }
    return false;
}

/* A manager of job j over group g with the window sink, its counters reset. */
static struct scrape_manager *window_manager(struct scrape_job *j, struct scrape_target_group *g)
{
    static const struct scrape_sink sink = {.series = window_series_cb, .wait_room = window_wait};
    j->static_groups = g;
    struct scrape_manager *m = manager_with(j, &sink);
    window_series = 0;
    window_waited_ms = 0;
    return m;
}

static void test_pacing_window_shared(void **state)
{
    (void)state;
    serve_gzip_series(5000);
    char other[64];
    snprintf(other, sizeof other, "localhost:%d", srv.port);
    const char *two[2] = {addr, other};
    struct scrape_target_group g = {two, 2, group_labels, 1};
    struct scrape_job j = base_job();
    j.interval_ms = 2000;
    j.timeout_ms = 2000;
    struct scrape_manager *m = window_manager(&j, &g);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(window_series >= 2 * 5000);
    assert_true(window_waited_ms > 0 && window_waited_ms <= 500);
    scrape_manager_free(m);

    /* One target alone, every 8 s: nothing else is in flight or due, so its window is a
     * quarter of its interval (2 s), not 1 s. */
    g.ntargets = 1;
    j.interval_ms = 8000;
    m = window_manager(&j, &g);
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    assert_true(window_waited_ms > 1500 && window_waited_ms <= 2000);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* A big scrape's pacing never holds a scrape in flight past its timeout: the curl
 * transfers stand still while the scrape loop waits. A silent target (a listening
 * socket that never answers) is in flight with an 800 ms timeout while a big one
 * finishes: the window would be 1 s (another scrape in flight), but the wait ends
 * 100 ms before the silent scrape's timeout, about 700 ms after both started. */
static void test_pacing_capped_by_scrape_in_flight(void **state)
{
    (void)state;
    serve_gzip_series(5000);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 8), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    char silent[64];
    snprintf(silent, sizeof silent, "127.0.0.1:%d", ntohs(sa.sin_port));
    const char *two[2] = {addr, silent};
    struct scrape_target_group g = {two, 2, group_labels, 1};
    struct scrape_job j = base_job();
    j.interval_ms = 8000; /* a quarter is 2 s: the 1 s limit and the cap decide */
    j.timeout_ms = 800;
    struct scrape_manager *m = window_manager(&j, &g);
    int64_t t0 = ss_mono_ms();
    assert_int_equal(scrape_manager_scrape_once(m), 1); /* the silent one timed out */
    assert_true(window_series >= 5000);
    assert_true(window_waited_ms > 0 && window_waited_ms <= 700);
    assert_true(ss_mono_ms() - t0 < 2000);
    scrape_manager_free(m);
    close(ls);
    serve_raw(NULL, 0, NULL);
}

/* RFC 1952 §2.2: a body may be several members back to back (`cat a.gz b.gz`, which
 * nginx's gzip_static serves as is); Go's gzip.Reader reads them all, so do we. */
static void test_gzip_multi_member(void **state)
{
    (void)state;
    static char body[60000];
    build_body(body, sizeof body, 900);
    size_t len = strlen(body), half = len / 2;
    while (body[half - 1] != '\n')
        half++;
    size_t n1 = 0, n2 = 0;
    unsigned char *a = gzip_member(body, half, 6, &n1), *b = gzip_member(body + half, len - half, 1, &n2);
    unsigned char *both = malloc(n1 + n2);
    assert_non_null(both);
    memcpy(both, a, n1);
    memcpy(both + n1, b, n2);
    free(a);
    free(b);
    serve_raw(both, n1 + n2, "gzip");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    char t[256];
    snprintf(t, sizeof t, "scrape_samples_scraped{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->value == 900);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

static void expect_gzip_failure(unsigned char *raw, size_t n, const char *encoding, const char *msg,
                                const char *reason)
{
    struct scrape_job j = base_job();
    serve_raw(NULL, 0, NULL);
    serve(200, TEXT, "ok_metric 1\n");
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    serve_raw(raw, n, encoding);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_false(cap.last_up);
    if (!strstr(cap.last_error, msg))
        fprintf(stderr, "error was: %s\n", cap.last_error);
    assert_non_null(strstr(cap.last_error, msg));
    assert_int_equal(failures(m, reason), 1);
    char t[256];
    snprintf(t, sizeof t, "ok_metric{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_true(find(t)->stale);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* An empty Content-Encoding header is no encoding (libcurl 7.88 hands its value over
 * as a lone CR): the body is parsed, as Prometheus does. */
static void test_gzip_corrupt_and_truncated(void **state)
{
    (void)state;
    static char body[60000];
    char msg[128];
    snprintf(msg, sizeof msg, "invalid gzip body from http://%s/metrics: ", addr);
    build_body(body, sizeof body, 900);
    size_t n = 0;
    unsigned char *gz = gzip_member(body, strlen(body), 6, &n);
    expect_gzip_failure(gz, n - 10, "gzip", msg, "parse"); /* truncated trailer */
    gz = gzip_member(body, strlen(body), 6, &n);
    expect_gzip_failure(gz, n / 2, "gzip", msg, "parse"); /* truncated in the data */
    gz = gzip_member(body, strlen(body), 6, &n);
    for (size_t i = n / 3; i < n / 3 + 16; i++)
        gz[i] ^= 0x5a;
    expect_gzip_failure(gz, n, "gzip", msg, "parse"); /* corrupt */
    gz = gzip_member(body, strlen(body), 6, &n);
    unsigned char *junk = realloc(gz, n + 4);
    assert_non_null(junk);
    memcpy(junk + n, "junk", 4);
    expect_gzip_failure(junk, n + 4, "gzip", msg, "parse"); /* garbage after the member */
    unsigned char *plain = (unsigned char *)strdup("not gzip at all, but labelled so\n");
    expect_gzip_failure(plain, strlen((char *)plain), "gzip", msg, "parse");
    unsigned char *br = (unsigned char *)strdup("a 1\n");
    expect_gzip_failure(br, 4, "br", "unsupported Content-Encoding \"br\"", "other");
}

/* 32 MiB of zeros is 32 KiB of gzip: with body_size_limit 1 MiB it must fail as an
 * over-limit plain body does, and the engine never holds more than the limit. */
static void test_gzip_bomb_body_size_limit(void **state)
{
    (void)state;
    size_t big = 32u << 20, n = 0;
    char *zeros = calloc(1, big);
    assert_non_null(zeros);
    unsigned char *gz = gzip_member(zeros, big, 9, &n);
    free(zeros);
    assert_true(n < 64u << 10);
    struct scrape_job j = base_job();
    j.body_size_limit = 1u << 20;
    serve_raw(NULL, 0, NULL);
    serve(200, TEXT, "ok_metric 1\n");
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    serve_raw(gz, n, "gzip");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_non_null(strstr(cap.last_error, "body size limit exceeded (limit: 1048576 bytes)"));
    assert_int_equal(failures(m, "body_size_limit"), 1);
    /* a limit on the compressed size too: incompressible data past it fails early */
    j.body_size_limit = 64;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    static char body[60000];
    build_body(body, sizeof body, 900);
    gz = gzip_member(body, strlen(body), 0, &n); /* stored blocks: bigger than the body */
    serve_raw(gz, n, "gzip");
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_non_null(strstr(cap.last_error, "body size limit exceeded (limit: 64 bytes)"));
    assert_int_equal(failures(m, "body_size_limit"), 2);
    /* a byte under the limit passes */
    gz = gzip_member(body, strlen(body), 6, &n);
    serve_raw(gz, n, "gzip");
    j.body_size_limit = strlen(body) + 1;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    gz = gzip_member(body, strlen(body), 6, &n);
    serve_raw(gz, n, "gzip");
    j.body_size_limit = strlen(body); /* exactly at the limit fails, as in Prometheus (n >= limit) */
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_non_null(strstr(cap.last_error, "body size limit exceeded"));
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* Past the whole-buffer maximum (64 MiB plain) a body with no limit, or a larger one,
 * is inflated as it streams: it still parses, and a limit still holds. */
static void test_gzip_beyond_whole_buffer(void **state)
{
    (void)state;
    const char *pad = "# a comment line, sixty-four bytes long, to pad the body......\n";
    size_t line = strlen(pad), lines = (70u << 20) / line, big = lines * line + 64;
    char *body = malloc(big + 1);
    assert_non_null(body);
    size_t pos = (size_t)snprintf(body, big, "first 1\n");
    for (size_t i = 0; i < lines; i++, pos += line)
        memcpy(body + pos, pad, line);
    pos += (size_t)snprintf(body + pos, big + 1 - pos, "last 2\n");
    size_t n = 0;
    unsigned char *gz = gzip_member(body, pos, 1, &n);
    free(body);
    serve_raw(gz, n, "gzip");
    struct scrape_job j = base_job();
    struct scrape_manager *m = manager(&j);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 0);
    char t[256];
    snprintf(t, sizeof t, "last{instance=\"%s\",job=\"test\",team=\"a\"}", addr);
    assert_non_null(find(t));
    j.body_size_limit = 66u << 20;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    reset_capture();
    assert_int_equal(scrape_manager_scrape_once(m), 1);
    assert_non_null(strstr(cap.last_error, "body size limit exceeded (limit: 69206016 bytes)"));
    assert_int_equal(failures(m, "body_size_limit"), 1);
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
}

/* Big gzip bodies stream instead of being inflated into one buffer: one whose
 * compressed bytes pass GZ_STREAM_AT (512 KiB) switches while it arrives, one that
 * compresses better but whose gzip trailer says more than GZ_WHOLE_PREFER (2 MiB plain)
 * streams from the trailer's word, and the target's next body streams from its first
 * byte. Every series arrives, every time, as from the plain body. */
static void check_big_body(size_t lines, const char *pad, bool big_compressed)
{
    size_t size = lines * (80 + strlen(pad)) + 64, pos = 0;
    char *body = malloc(size);
    assert_non_null(body);
    for (size_t i = 0; i < lines; i++)
        pos += (size_t)snprintf(body + pos, size - pos,
                                "req_total{path=\"/api/v1/item/%07zu\",code=\"%zu\",pad=\"%s\"} %zu\n", i,
                                200 + i % 5, pad, i);
    assert_true(pos > (2u << 20));
    struct scrape_job j = base_job();
    size_t counts[2];
    for (int gz = 0; gz < 2; gz++) {
        size_t n = 0;
        unsigned char *raw = gz ? gzip_member(body, pos, 1, &n) : malloc(pos);
        assert_non_null(raw);
        if (!gz)
            memcpy(raw, body, n = pos);
        else if (big_compressed)
            assert_true(n > (512u << 10));
        else
            assert_true(n < (512u << 10));
        serve_raw(raw, n, gz ? "gzip" : NULL); /* the server owns it */
        struct scrape_manager *m = manager(&j);
        for (int again = 0; again < 2; again++) { /* the second streams from its first byte */
            reset_capture();
            cap.with_wire = 0;
            assert_int_equal(scrape_manager_scrape_once(m), 0);
            assert_true(cap.last_up);
            if (again)
                assert_int_equal(cap.with_wire, counts[gz]);
            counts[gz] = cap.with_wire;
        }
        scrape_manager_free(m);
    }
    assert_int_equal(counts[0], lines);
    assert_int_equal(counts[1], lines);
    serve_raw(NULL, 0, NULL);
    free(body);
}

static void test_gzip_big_body_streams(void **state)
{
    (void)state;
    check_big_body(140000, "abcdefgh", true);
    check_big_body(12000,
                   "a label value repeated on every line, so that the body compresses"
                   " very well: the gzip trailer decides alone, long before 512 KiB",
                   false);
}

/* A body that compresses only ~2x (random ids) passes GZ_STREAM_AT compressed while its
 * plain size is under GZ_WHOLE_PREFER: it switches to streaming while it arrives, and
 * the next scrape streams from its first byte. body_size_limit holds on both, with its
 * own reason, and at exactly the limit every series arrives, both times. */
static void test_gzip_switch_keeps_limit(void **state)
{
    (void)state;
    size_t lines = 60000, size = lines * 64 + 64, pos = 0;
    char *body = malloc(size);
    assert_non_null(body);
    uint64_t x = 12345;
    for (size_t i = 0; i < lines; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        pos += (size_t)snprintf(body + pos, size - pos, "m{id=\"%016llx\"} %zu\n", (unsigned long long)x, i);
    }
    size_t n = 0;
    unsigned char *gz = gzip_member(body, pos, 1, &n);
    assert_true(n > (512u << 10) && pos <= (2u << 20));
    struct scrape_job j = base_job();
    j.body_size_limit = pos; /* compressed is under the early check, plain is at it: over */
    serve_raw(gz, n, "gzip");
    struct scrape_manager *m = manager(&j);
    for (int again = 0; again < 2; again++) {
        reset_capture();
        assert_int_equal(scrape_manager_scrape_once(m), 1);
        assert_non_null(strstr(cap.last_error, "body size limit exceeded"));
    }
    j.body_size_limit = pos + 1;
    assert_int_equal(scrape_manager_set_jobs(m, &j, 1), 0);
    for (int again = 0; again < 2; again++) {
        reset_capture();
        cap.with_wire = 0;
        assert_int_equal(scrape_manager_scrape_once(m), 0);
        assert_true(cap.last_up);
        assert_int_equal(cap.with_wire, lines);
    }
    serve_raw(NULL, 0, NULL);
    scrape_manager_free(m);
    free(body);
}

/* ---- libcurl handles passing between targets (easy_take, easy_give) ------------ */

#define RV_MAX 1024
static struct {
    pthread_mutex_t mu;
    unsigned bad;
    char first_bad[1024];
    unsigned reports, echoes;
    /* the last reload (wall ms): a scrape that started by then, still in flight across
     * a stop and a reload, went out with the options of before */
    int64_t reload_ms;
    char err[RV_MAX][256]; /* last error per shard */
    int up[RV_MAX];
    char want_x[RV_MAX][8], want_a[RV_MAX][64], want_to[RV_MAX][8];
} rv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int rv_shard_of_url(const char *url)
{
    const char *q = url ? strstr(url, "p=") : NULL;
    return q ? atoi(q + 2) : -1;
}

static void rv_bad(const char *fmt, const char *a, int b)
{
    if (!rv.bad++)
        snprintf(rv.first_bad, sizeof rv.first_bad, fmt, a, b);
}

static void rv_begin(void *ud, const struct scrape_report *r)
{
    (void)ud;
    pthread_mutex_lock(&rv.mu);
    rv.reports++;
    int s = rv_shard_of_url(r->url);
    if (s < 0 || s >= RV_MAX)
        rv_bad("report url %s (%d)", r->url, s);
    else {
        snprintf(rv.err[s], sizeof rv.err[s], "%s", r->error ? r->error : "");
        rv.up[s] = r->up;
        if (!r->up && !r->error)
            rv_bad("down without error %s %d", r->url, s);
    }
    pthread_mutex_unlock(&rv.mu);
}

static void rv_series(void *ud, const struct scrape_series *s)
{
    (void)ud;
    char name[64] = "", p[32] = "", shard[32] = "", x[64] = "", a[128] = "", to[32] = "";
    for (size_t i = 0; i < s->nlabels; i++) {
        struct ss_str n = s->labels[i].name, v = s->labels[i].value;
        char *dst = ss_str_eq_cstr(n, "__name__") ? name
                    : ss_str_eq_cstr(n, "p")      ? p
                    : ss_str_eq_cstr(n, "shard")  ? shard
                    : ss_str_eq_cstr(n, "x")      ? x
                    : ss_str_eq_cstr(n, "a")      ? a
                    : ss_str_eq_cstr(n, "to")     ? to
                                                  : NULL;
        if (dst)
            snprintf(dst, dst == a ? sizeof a : dst == name ? sizeof name : 32, "%.*s", (int)v.len, v.p);
    }
    if (strcmp(name, "echo") != 0 || scrape_is_stale_nan(s->value))
        return;
    pthread_mutex_lock(&rv.mu);
    rv.echoes++;
    int ps = atoi(p), ss = atoi(shard);
    if (ps != ss || ps < 0 || ps >= RV_MAX)
        rv_bad("echo of p=%s in shard %d", p, ss);
    else if (s->timestamp_ms > rv.reload_ms &&
             (strcmp(x, rv.want_x[ss]) || strcmp(a, rv.want_a[ss]) || strcmp(to, rv.want_to[ss]))) {
        char t[400];
        snprintf(t, sizeof t, "x=%s a=%s to=%s want x=%s a=%s to=%s", x, a, to, rv.want_x[ss], rv.want_a[ss],
                 rv.want_to[ss]);
        rv_bad("%s shard %d", t, ss);
    }
    pthread_mutex_unlock(&rv.mu);
}

enum { RV_HEADED, RV_AUTH, RV_REFUSED, RV_AUTHBAD, RV_NJOBS };
static struct scrape_target_group rv_groups[RV_NJOBS][RV_MAX];
static struct ss_kv rv_labels[RV_MAX][3];
static char rv_vals[RV_MAX][16];
static const char *rv_refused[1] = {"127.0.0.1:1"};
static char rv_pwfile[64];

/* jobs with counts[k] targets each, shards numbered globally from base[k] */
static void rv_jobs(struct scrape_job *jobs, const int *counts, const int *base, const char *xval,
                    struct httpc_header *h)
{
    static const char *names[] = {"headed", "auth", "refused", "authbad"};
    static const char *tl[1];
    tl[0] = addr;
    for (int k = 0; k < RV_NJOBS; k++) {
        for (int i = 0; i < counts[k]; i++) {
            int s = base[k] + i;
            snprintf(rv_vals[s], sizeof rv_vals[s], "%d", s);
            rv_labels[s][0] = (struct ss_kv){"__param_p", rv_vals[s]};
            rv_labels[s][1] = (struct ss_kv){"shard", rv_vals[s]};
            /* two timeouts in each job: a handle passes only between targets of one */
            rv_labels[s][2] = (struct ss_kv){"__scrape_timeout__", s % 3 ? "900ms" : "800ms"};
            rv_groups[k][i] =
                (struct scrape_target_group){k == RV_REFUSED ? rv_refused : tl, 1, rv_labels[s], 3};
            snprintf(rv.want_to[s], sizeof rv.want_to[s], "%s", s % 3 ? "0.9" : "0.8");
            snprintf(rv.want_x[s], sizeof rv.want_x[s], "%s", k == RV_HEADED ? xval : "");
            snprintf(rv.want_a[s], sizeof rv.want_a[s], "%s", k == RV_AUTH ? "Basic dTpzZWNyZXQ=" : "");
        }
        jobs[k] = base_job();
        jobs[k].name = names[k];
        jobs[k].interval_ms = 1000;
        jobs[k].timeout_ms = 900;
        jobs[k].static_groups = rv_groups[k];
        jobs[k].nstatic_groups = (size_t)counts[k];
    }
    h->name = "X-Test";
    h->value = xval;
    jobs[RV_HEADED].http.headers = h;
    jobs[RV_HEADED].http.nheaders = 1;
    jobs[RV_AUTH].http.basic_auth_username = "u";
    jobs[RV_AUTH].http.basic_auth_password_file = rv_pwfile;
    jobs[RV_AUTHBAD].http.basic_auth_username = "u";
    jobs[RV_AUTHBAD].http.basic_auth_password_file = "/nonexistent/pw";
}

static void rv_check_errors(const int *counts, const int *base)
{
    for (int i = 0; i < counts[RV_REFUSED]; i++) {
        int s = base[RV_REFUSED] + i;
        if (rv.up[s] || !strstr(rv.err[s], "onnect"))
            rv_bad("refused error \"%s\" shard %d", rv.err[s], s);
    }
    for (int i = 0; i < counts[RV_AUTHBAD]; i++) {
        int s = base[RV_AUTHBAD] + i;
        if (rv.up[s] || !strstr(rv.err[s], "unable to read basic auth password file"))
            rv_bad("authbad error \"%s\" shard %d", rv.err[s], s);
    }
    for (int k = 0; k < RV_NJOBS; k += (k == RV_AUTH ? 3 : 1))
        for (int i = 0; k == RV_HEADED || k == RV_AUTH ? i < counts[k] : 0; i++) {
            int s = base[k] + i;
            if (!rv.up[s] || rv.err[s][0])
                rv_bad("up target failed: \"%s\" shard %d", rv.err[s], s);
        }
}

static void rv_setup_pw(void)
{
    snprintf(rv_pwfile, sizeof rv_pwfile, "/tmp/rv_pw_%d", (int)getpid());
    FILE *f = fopen(rv_pwfile, "w");
    assert_non_null(f);
    fputs("secret\n", f);
    fclose(f);
    pthread_mutex_lock(&srv.mu);
    srv.echo = true;
    srv.status = 200;
    snprintf(srv.content_type, sizeof srv.content_type, "%s", TEXT);
    pthread_mutex_unlock(&srv.mu);
}

/* first shard of each job */
static const int rv_base[RV_NJOBS] = {0, 300, 600, 800};

/* A manager whose sink checks every echo and report (rv_begin, rv_series). */
static struct scrape_manager *rv_manager(void)
{
    rv_setup_pw();
    rv.bad = 0;
    rv.reload_ms = 0;
    struct scrape_sink sink = {.begin = rv_begin, .series = rv_series};
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(NULL, &sink, &m), 0);
    return m;
}

/* scrape_once rounds with reloads crossing EASY_OWN_TARGETS both ways */
static void test_pool_across_reloads(void **state)
{
    (void)state;
    struct scrape_manager *m = rv_manager();
    struct scrape_job jobs[RV_NJOBS];
    struct httpc_header h;
    const int *base = rv_base;
    const int plans[][RV_NJOBS] = {
        {150, 100, 30, 10}, /* 290 */
        {100, 100, 30, 30}, /* 260: 50 headed removed, 20 authbad added */
        {60, 80, 20, 10},   /* 170: below, handles from the pool kept */
        {200, 150, 40, 10}, /* 400 */
        {10, 5, 2, 1},      {200, 130, 60, 20},
    };
    const char *xs[] = {"a", "a", "b", "c", "d", "e"};
    for (size_t r = 0; r < sizeof plans / sizeof plans[0]; r++) {
        rv_jobs(jobs, plans[r], base, xs[r], &h);
        assert_int_equal(scrape_manager_set_jobs(m, jobs, RV_NJOBS), 0);
        for (int round = 0; round < 2; round++) {
            memset(rv.up, 0, sizeof rv.up);
            memset(rv.err, 0, sizeof rv.err);
            rv.echoes = 0;
            scrape_manager_scrape_once(m);
            rv_check_errors(plans[r], base);
            if (rv.echoes != (unsigned)(plans[r][0] + plans[r][1]))
                rv_bad("echoes %s %d", "", (int)rv.echoes);
            if (rv.bad)
                fail_msg("plan %zu round %d: %u bad, first: %s", r, round, rv.bad, rv.first_bad);
        }
    }
    scrape_manager_free(m);
    unlink(rv_pwfile);
}

/* the scrape loop itself (scrapes spread, handles passing while others are in flight),
 * stopped, reloaded, run again */
static void test_pool_in_the_loop(void **state)
{
    (void)state;
    struct scrape_manager *m = rv_manager();
    struct scrape_job jobs[RV_NJOBS];
    struct httpc_header h;
    const int *base = rv_base;
    const int plans[][RV_NJOBS] = {{150, 100, 30, 10}, {100, 60, 30, 30}, {200, 130, 60, 20}};
    const char *xs[] = {"a", "b", "c"};
    for (size_t r = 0; r < sizeof plans / sizeof plans[0]; r++) {
        pthread_mutex_lock(&rv.mu);
        rv.reload_ms = ss_now_ms();
        rv_jobs(jobs, plans[r], base, xs[r], &h);
        pthread_mutex_unlock(&rv.mu);
        assert_int_equal(scrape_manager_set_jobs(m, jobs, RV_NJOBS), 0);
        pthread_t th;
        rv.reports = rv.echoes = 0;
        assert_int_equal(pthread_create(&th, NULL, run_manager, m), 0);
        usleep(2600 * 1000);
        scrape_manager_stop(m);
        pthread_join(th, NULL);
        fprintf(stderr, "run plan %zu: %u reports, %u echoes\n", r, rv.reports, rv.echoes);
        if (rv.bad)
            fail_msg("run plan %zu: %u bad, first: %s", r, rv.bad, rv.first_bad);
    }
    scrape_manager_mark_all_stale(m);
    scrape_manager_free(m);
    unlink(rv_pwfile);
    pthread_mutex_lock(&srv.mu);
    srv.echo = false;
    pthread_mutex_unlock(&srv.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_and_synthetic),
        cmocka_unit_test(test_idle_loop_sleeps),
        cmocka_unit_test(test_set_jobs_out_of_memory),
        cmocka_unit_test(test_discovery_wakes_loop),
        cmocka_unit_test(test_gzip_big_body_streams),
        cmocka_unit_test(test_honor_labels),
        cmocka_unit_test(test_sample_limit),
        cmocka_unit_test(test_label_limit),
        cmocka_unit_test(test_label_name_length_limit),
        cmocka_unit_test(test_label_value_length_limit),
        cmocka_unit_test(test_body_size_limit),
        cmocka_unit_test(test_empty_content_encoding),
        cmocka_unit_test(test_target_limit),
        cmocka_unit_test(test_metrics_path_escaped),
        cmocka_unit_test(test_parse_error_fails_scrape),
        cmocka_unit_test(test_limits_not_hit),
        cmocka_unit_test(test_stale_series_disappears),
        cmocka_unit_test(test_stale_target_down),
        cmocka_unit_test(test_stale_connection_refused),
        cmocka_unit_test(test_openmetrics_and_gzip),
        cmocka_unit_test(test_format_change_forgets_texts),
        cmocka_unit_test(test_metric_relabel_drop),
        cmocka_unit_test(test_metric_relabel_bad_name_fails),
        cmocka_unit_test(test_dropped_series_remembered),
        cmocka_unit_test(test_metadata_names_job_label),
        cmocka_unit_test(test_duplicate_targets_scraped_once),
        cmocka_unit_test(test_targets_share_pairs),
        cmocka_unit_test(test_many_targets_share_handles),
        cmocka_unit_test(test_socket_error_named),
        cmocka_unit_test(test_series_added),
        cmocka_unit_test(test_easy_options_kept_and_reloaded),
        cmocka_unit_test(test_failed_scrape_counts),
        cmocka_unit_test(test_reload_relabel_changes_labels),
        cmocka_unit_test(test_reload_timing_keeps_series),
        cmocka_unit_test(test_cache_keeps_grid_apart),
        cmocka_unit_test(test_external_labels_wire),
        cmocka_unit_test(test_self_metrics_escape_job),
        cmocka_unit_test(test_target_sync_failed_counted),
        cmocka_unit_test(test_small_targets_start_on_slots),
        cmocka_unit_test(test_slot_width),
        cmocka_unit_test(test_conn_shares_on),
        cmocka_unit_test(test_small_scrapes_paced_between),
        cmocka_unit_test(test_paced_between_duration),
        cmocka_unit_test(test_big_targets_keep_their_phase),
        cmocka_unit_test(test_grown_targets_leave_their_slot),
        cmocka_unit_test(test_gzip_same_as_plain),
        cmocka_unit_test(test_gzip_spares_follow_bodies),
        cmocka_unit_test(test_gzip_stream_keeps_no_spare),
        cmocka_unit_test(test_big_scrape_paced),
        cmocka_unit_test(test_pacing_window_shared),
        cmocka_unit_test(test_pacing_capped_by_scrape_in_flight),
        cmocka_unit_test(test_stale_markers_paced),
        cmocka_unit_test(test_gzip_multi_member),
        cmocka_unit_test(test_gzip_corrupt_and_truncated),
        cmocka_unit_test(test_gzip_bomb_body_size_limit),
        cmocka_unit_test(test_strict_parsing_follows_reload),
        cmocka_unit_test(test_gzip_beyond_whole_buffer),
        cmocka_unit_test(test_gzip_switch_keeps_limit),
        cmocka_unit_test(test_pool_across_reloads),
        cmocka_unit_test(test_pool_in_the_loop),
    };
    if (getenv("TEST_FILTER")) /* one test by name (a glob), when working on it */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
