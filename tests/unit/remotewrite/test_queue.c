/* test_queue.c: a remote's queue, shards and resharding against a receiver in the test
 * process.
 *
 * A libmicrohttpd server on 127.0.0.1 plays the remote-write receiver: it snappy-
 * decodes and protobuf-decodes every body (the module's own decoder, checked against
 * protobuf-c and python3-protobuf elsewhere) and records which scrape of which series
 * arrived, in what order. It can stall (503) and add latency. The scrape side is
 * driven directly through rw_remote_begin/append/commit, one "scrape" at a time, with
 * series {__name__="m", i="<k>"} and timestamp = scrape number.
 *
 * Covers issue #10: a commit far larger than a shard's capacity is delivered whole;
 * the memory bound drops exactly the oldest samples and counts each one; shards grow
 * from a cold start before any request has completed; shards never grow while the
 * receiver fails; per-series order holds throughout, also when the disk queue fails
 * while it holds a backlog; series that differ only in a short label arrive next to
 * each other. */
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "remotewrite.h"

#define MAX_SERIES  100000
#define MAX_SCRAPES 64

/* ---- the receiver ------------------------------------------------------------------ */

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    unsigned status;   /* answer with this (204 accepts) */
    unsigned delay_ms; /* before answering */
    uint8_t got[MAX_SERIES][MAX_SCRAPES];
    int64_t last_ts[MAX_SERIES];
    uint32_t req_of[MAX_SERIES], pos_of[MAX_SERIES]; /* where a series last arrived */
    uint64_t samples, duplicates, out_of_order, requests, bad;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct upload {
    struct ss_buf body;
};

static void record(const void *comp, size_t n)
{
    struct ss_buf raw;
    ss_buf_init(&raw, 0);
    struct rw_write_request *req = NULL;
    if (rw_snappy_decompress(comp, n, 256u << 20, &raw) || rw_decode_write_request(raw.data, raw.len, &req)) {
        rx.bad++;
        ss_buf_free(&raw);
        return;
    }
    for (size_t i = 0; i < rw_write_request_nseries(req); i++) {
        struct rw_series s;
        rw_write_request_series(req, i, &s);
        long k = -1;
        for (size_t j = 0; j < s.nlabels; j++)
            if (ss_str_eq_cstr(s.labels[j].name, "i"))
                k = strtol(s.labels[j].value.p, NULL, 10);
        if (k < 0 || k >= MAX_SERIES) {
            rx.bad++;
            continue;
        }
        for (size_t j = 0; j < s.nsamples; j++) {
            int64_t ts = s.samples[j].timestamp_ms;
            if (ts < 0 || ts >= MAX_SCRAPES) {
                rx.bad++;
                continue;
            }
            if (rx.got[k][ts])
                rx.duplicates++;
            rx.got[k][ts] = 1;
            if (ts <= rx.last_ts[k])
                rx.out_of_order++;
            rx.last_ts[k] = ts;
            rx.req_of[k] = (uint32_t)rx.requests;
            rx.pos_of[k] = (uint32_t)i;
            rx.samples++;
        }
    }
    rw_write_request_free(req);
    ss_buf_free(&raw);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ptr)
{
    (void)cls, (void)url, (void)method, (void)version;
    struct upload *u = *ptr;
    if (!u) {
        u = calloc(1, sizeof *u);
        ss_buf_init(&u->body, 0);
        *ptr = u;
        return MHD_YES;
    }
    if (*upload_size) {
        ss_buf_append(&u->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&rx.mu);
    unsigned delay = rx.delay_ms, status = rx.status;
    pthread_mutex_unlock(&rx.mu);
    if (delay)
        usleep(delay * 1000u);
    pthread_mutex_lock(&rx.mu);
    rx.requests++;
    if (status >= 200 && status < 300)
        record(u->body.data, u->body.len);
    pthread_mutex_unlock(&rx.mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void done(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode tc)
{
    (void)cls, (void)c, (void)tc;
    struct upload *u = *ptr;
    if (u) {
        ss_buf_free(&u->body);
        free(u);
        *ptr = NULL;
    }
}

static void rx_set(unsigned status, unsigned delay_ms)
{
    pthread_mutex_lock(&rx.mu);
    rx.status = status;
    rx.delay_ms = delay_ms;
    pthread_mutex_unlock(&rx.mu);
}

static int rx_start(void **state)
{
    (void)state;
    memset(rx.got, 0, sizeof rx.got);
    for (size_t k = 0; k < MAX_SERIES; k++)
        rx.last_ts[k] = -1;
    rx.samples = rx.duplicates = rx.out_of_order = rx.requests = rx.bad = 0;
    rx_set(204, 0);
    rx.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                            handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
    if (!rx.d)
        return -1;
    rx.port = MHD_get_daemon_info(rx.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static int rx_stop(void **state)
{
    (void)state;
    MHD_stop_daemon(rx.d);
    rx.d = NULL;
    return 0;
}

/* ---- the scrape side ------------------------------------------------------------------ */

static char names[MAX_SERIES][8];

static void scrape(struct rw_remote *r, int nseries, int ts)
{
    rw_remote_begin(r);
    for (int k = 0; k < nseries; k++) {
        struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
        struct scrape_series s = {l, 2,    (double)k, ts, (uint64_t)k * 0x9E3779B97F4A7C15ULL, NULL, 0, 0,
                                  0, NULL, NULL,      0};
        rw_remote_append(r, &s);
    }
    rw_remote_commit(r);
}

/* A value from the remote's self-metrics: the first line starting with `prefix`. */
static double metric(struct rw_remote *r, const char *prefix)
{
    struct ss_buf b;
    ss_buf_init(&b, 0);
    rw_remotes_render_metrics(&r, 1, &b);
    ss_buf_append(&b, "", 1);
    double v = -1;
    for (char *line = b.data; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, prefix, strlen(prefix))) {
            v = strtod(strchr(line, ' ') + 1, NULL);
            break;
        }
    ss_buf_free(&b);
    return v;
}

static double dropped(struct rw_remote *r, const char *reason)
{
    char p[256];
    snprintf(p, sizeof p,
             "scrapeship_remote_samples_dropped_total{remote_name=\"t\",url=\"http://127.0.0.1:%d/w\","
             "reason=\"%s\"}",
             rx.port, reason);
    return metric(r, p);
}

static double shards(struct rw_remote *r)
{
    return metric(r, "scrapeship_remote_shards{");
}

static uint64_t rx_samples(void)
{
    pthread_mutex_lock(&rx.mu);
    uint64_t n = rx.samples;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wait_samples(uint64_t want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (rx_samples() >= want)
            return true;
        sleep_ms(20);
    }
    return rx_samples() >= want;
}

static struct rw_remote *new_remote(const struct rw_queue_config *q)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/w", rx.port);
    struct rw_config c = {.name = "t", .url = url, .remote_timeout_ms = 10000, .queue = *q};
    struct rw_remote *r = NULL;
    assert_int_equal(rw_remote_new(&c, &r), 0);
    return r;
}

static const struct rw_queue_config defaults = {.capacity = 10000,
                                                .min_shards = 1,
                                                .max_shards = 50,
                                                .max_samples_per_send = 2000,
                                                .batch_send_deadline_ms = 5000,
                                                .min_backoff_ms = 30,
                                                .max_backoff_ms = 5000,
                                                .retry_on_http_429 = true,
                                                .max_memory_bytes = 64u << 20};

static void finish(struct rw_remote *r)
{
    uint64_t unsent = 1;
    rw_remote_shutdown(r, ss_mono_ms() + 10000, &unsent);
    assert_int_equal(unsent, 0);
    rw_remote_free(r);
}

/* Shut r down (everything delivered) and check the receiver got exactly `want`
 * samples, each once and in order. */
static void finish_exactly(struct rw_remote *r, uint64_t want)
{
    finish(r);
    assert_int_equal(rx.samples, want);
    assert_int_equal(rx.duplicates, 0);
    assert_int_equal(rx.out_of_order, 0);
}

/* ---- tests ------------------------------------------------------------------------- */

/* 100k series in one scrape, ten times a shard's capacity: every sample arrives. */
static void test_large_commit_delivered(void **state)
{
    (void)state;
    struct rw_remote *r = new_remote(&defaults);
    for (int ts = 0; ts < 3; ts++)
        scrape(r, MAX_SERIES, ts);
    assert_true(wait_samples(3u * MAX_SERIES, 60000));
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish_exactly(r, 3u * MAX_SERIES);
    assert_int_equal(rx.bad, 0);
}

/* The end of a scrape commits every stage that took records since the last commit
 * (and only those): stages flushed full in the middle of a scrape that took more
 * after, and the stages of 40 metric names (many queues) that took a few records
 * each. samples_in counts what commits moved, so after each commit it equals all
 * appended; and every sample arrives once, in order. */
static void test_commit_reaches_every_stage(void **state)
{
    (void)state;
    struct rw_remote *r = new_remote(&defaults);
    static char mnames[40][8];
    uint64_t total = 0;
    for (int round = 0; round < 3; round++) {
        rw_remote_begin(r);
        int n = round == 1 ? 3 : 6000; /* 6000 records of one name: 4 queues, each flushed */
        for (int k = 0; k < n; k++) {
            struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
            struct scrape_series s = {l, 2, (double)k, round, (uint64_t)k, NULL, 0, 0, 0, NULL, NULL, 0};
            rw_remote_append(r, &s);
        }
        for (int k = 0; k < 40 * (round + 1); k++) { /* one to three records of 40 names */
            snprintf(mnames[k % 40], sizeof mnames[0], "n%d", k % 40);
            struct ss_label l[2] = {{{"__name__", 8}, {mnames[k % 40], strlen(mnames[k % 40])}},
                                    {{"i", 1}, {names[10000 + k], strlen(names[10000 + k])}}};
            struct scrape_series s = {l, 2, (double)k, round, (uint64_t)k, NULL, 0, 0, 0, NULL, NULL, 0};
            rw_remote_append(r, &s);
        }
        rw_remote_commit(r);
        total += (uint64_t)n + 40u * (uint64_t)(round + 1);
        assert_int_equal((uint64_t)metric(r, "scrapeship_remote_samples_in_total{"), total);
    }
    assert_true(wait_samples(total, 30000));
    finish_exactly(r, total);
}

/* A scrape of 100k series streams: its records reach the receiver in full batches
 * while it is still being appended (staging holds a few KiB per queue, not the
 * scrape), and the end of the scrape sends the rest. */
static void test_big_scrape_streams(void **state)
{
    (void)state;
    struct rw_remote *r = new_remote(&defaults);
    rw_remote_begin(r);
    for (int k = 0; k < MAX_SERIES; k++) {
        struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
        struct scrape_series s = {l, 2,    (double)k, 0, (uint64_t)k * 0x9E3779B97F4A7C15ULL, NULL, 0, 0,
                                  0, NULL, NULL,      0};
        rw_remote_append(r, &s);
    }
    assert_true(wait_samples(MAX_SERIES / 2, 60000)); /* before the commit */
    assert_true(rx_samples() < MAX_SERIES);           /* the staged tails wait for it */
    rw_remote_commit(r);
    assert_true(wait_samples(MAX_SERIES, 60000));
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish_exactly(r, MAX_SERIES);
    assert_int_equal(rx.bad, 0);
}

/* The stages of many queues are committed once they hold STAGE_TOTAL_BYTES (64 KiB)
 * between them, before the scrape ends, though none of them is full: 400 metric
 * names (every queue) of 25 records each leave a few KiB in each stage, about 300 KB
 * in all. Most of the scrape is counted in (committed) before its end, and every
 * sample arrives once and in order. */
static void test_stage_tails_committed(void **state)
{
    (void)state;
    struct rw_remote *r = new_remote(&defaults);
    static char mnames[400][8];
    rw_remote_begin(r);
    int k = 0;
    for (int m = 0; m < 400; m++) {
        snprintf(mnames[m], sizeof mnames[m], "n%d", m);
        for (int j = 0; j < 25; j++, k++) {
            struct ss_label l[2] = {{{"__name__", 8}, {mnames[m], strlen(mnames[m])}},
                                    {{"i", 1}, {names[k], strlen(names[k])}}};
            struct scrape_series s = {l, 2, (double)k, 0, (uint64_t)m, NULL, 0, 0, 0, NULL, NULL, 0};
            rw_remote_append(r, &s);
        }
    }
    double in = metric(r, "scrapeship_remote_samples_in_total{");
    assert_true(in >= k * 0.75); /* at most 64 KiB of records (over 1000) still staged */
    assert_true(in < k);
    rw_remote_commit(r);
    assert_int_equal((uint64_t)metric(r, "scrapeship_remote_samples_in_total{"), (uint64_t)k);
    assert_true(wait_samples((uint64_t)k, 30000));
    finish_exactly(r, (uint64_t)k);
}

/* The three forms a series can come in (labels only, wire_labels in one piece, and
 * wire_parts: a piece per label, as the scrape module hands over its table's bytes)
 * encode alike: three scrapes of the same series, one in each form, all arrive, decode,
 * and in order. Each piece lives in a buffer of its own size, so that a copy reading
 * past one is caught by the sanitizers. */
static void test_wire_forms_deliver_alike(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct rw_remote *r = new_remote(&defaults);
    for (int ts = 0; ts < 3; ts++) {
        rw_remote_begin(r);
        for (int k = 0; k < N; k++) {
            struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
            struct scrape_series s = {l, 2,    (double)k, ts, (uint64_t)k * 0x9E3779B97F4A7C15ULL, NULL, 0, 0,
                                      0, NULL, NULL,      0};
            uint8_t whole[64];
            struct ss_str parts[2];
            char *piece[2] = {NULL, NULL};
            size_t len = ss_labels_wire_size(l, 2);
            assert_true(len <= sizeof whole);
            ss_labels_wire_write(whole, l, 2);
            if (ts == 1) {
                s.wire_labels = whole;
                s.wire_labels_len = len;
            } else if (ts == 2) {
                size_t first = ss_labels_wire_size(l, 1);
                for (int p = 0; p < 2; p++) {
                    size_t n = p ? len - first : first;
                    piece[p] = malloc(n);
                    assert_non_null(piece[p]);
                    memcpy(piece[p], whole + (p ? first : 0), n);
                    parts[p] = (struct ss_str){piece[p], n};
                }
                s.wire_parts = parts;
                s.nwire_parts = 2;
                s.wire_labels_len = len;
            }
            rw_remote_append(r, &s);
            free(piece[0]);
            free(piece[1]);
        }
        rw_remote_commit(r);
    }
    assert_true(wait_samples(3 * N, 60000));
    for (int k = 0; k < N; k++)
        assert_true(rx.got[k][0] && rx.got[k][1] && rx.got[k][2]);
    assert_int_equal(rx.out_of_order, 0);
    assert_int_equal(dropped(r, "encode"), 0);
    finish_exactly(r, 3 * N);
    assert_int_equal(rx.bad, 0);
}

/* Pacing. max_memory_bytes 1 MiB (pacing mark 512 KiB) and a receiver that takes
 * 20 ms a request: 100k series (about 3 MB of records) in one scrape would pass the
 * bound and drop the oldest. Asking for room every 2048 series, as the scrape engine
 * does, the queue never holds more than the mark when the wait returns, and nothing
 * is dropped. */
static void test_pacing_keeps_big_scrape_under_bound(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_memory_bytes = 1u << 20;
    rx_set(204, 20);
    struct rw_remote *r = new_remote(&q);
    double mark = metric(r, "scrapeship_remote_queue_pace_bytes{");
    assert_true(mark == (double)(512u << 10));
    rw_remote_begin(r);
    for (int k = 0; k < MAX_SERIES; k++) {
        if (k && k % 2048 == 0) {
            assert_true(rw_remote_wait_room(r, ss_mono_ms() + 30000));
            assert_true(metric(r, "scrapeship_remote_queue_bytes{") <= mark);
        }
        struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
        struct scrape_series s = {l, 2,    (double)k, 0, (uint64_t)k * 0x9E3779B97F4A7C15ULL, NULL, 0, 0,
                                  0, NULL, NULL,      0};
        rw_remote_append(r, &s);
    }
    rw_remote_commit(r);
    assert_true(metric(r, "scrapeship_remote_pace_waits_total{") > 0);
    assert_true(metric(r, "scrapeship_remote_pace_wait_seconds_total{") > 0);
    assert_int_equal(metric(r, "scrapeship_remote_pace_timeouts_total{"), 0);
    assert_true(wait_samples(MAX_SERIES, 60000));
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish_exactly(r, MAX_SERIES);
    assert_int_equal(rx.bad, 0);
}

/* Pacing with many senders: with 8 shards the pacing mark is a batch for each, and a
 * scrape of 500 families spread over all 50 queues still leaves some sender short of a
 * whole batch of its own. While the scrape thread waits for room the senders take what
 * they have: every wait ends with room, none times out, and everything arrives. The
 * receiver takes 400 ms a request (8 senders: 40k samples/s), so that the scrape
 * outruns the senders and waits, whatever the machine's speed: with an instant
 * receiver the senders sometimes kept up and the test saw no wait, and with 200 ms a
 * request (80k samples/s) too, once, under ASan on a slow VM. Slower still (1 s), the
 * remote reshards past 8 and the mark is no longer 8 batches. */
static void test_pacing_many_senders(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.min_shards = 8;
    q.batch_send_deadline_ms = 60000; /* no sender sends a part batch but for the waits */
    rx_set(204, 400);
    struct rw_remote *r = new_remote(&q);
    char fam[16], pod[232];
    memset(pod, 'p', sizeof pod - 1);
    pod[sizeof pod - 1] = '\0';
    enum { N = 60000 };
    rw_remote_begin(r);
    for (int k = 0; k < N; k++) {
        if (k && k % 2048 == 0) {
            assert_true(rw_remote_wait_room(r, ss_mono_ms() + 20000));
            /* the mark of 8 senders: a batch each (4 MB) */
            double mark = metric(r, "scrapeship_remote_queue_pace_bytes{");
            assert_true(mark == 8.0 * 2000 * 256);
            assert_true(metric(r, "scrapeship_remote_queue_bytes{") <= mark);
        }
        snprintf(fam, sizeof fam, "fam%03d", k % 500);
        memcpy(pod, names[k], strlen(names[k]));
        struct ss_label l[3] = {{{"__name__", 8}, {fam, strlen(fam)}},
                                {{"i", 1}, {names[k], strlen(names[k])}},
                                {{"pod", 3}, {pod, sizeof pod - 1}}};
        struct scrape_series s = {l, 3,    (double)k, 0, (uint64_t)k * 0x9E3779B97F4A7C15ULL, NULL, 0, 0,
                                  0, NULL, NULL,      0};
        rw_remote_append(r, &s);
    }
    rw_remote_commit(r);
    assert_true(metric(r, "scrapeship_remote_pace_waits_total{") > 0);
    assert_int_equal(metric(r, "scrapeship_remote_pace_timeouts_total{"), 0);
    /* the last part batches wait for the shutdown's flush, not the 60 s deadline */

    finish_exactly(r, N);
    assert_int_equal(rx.bad, 0);
}

/* No waiting where it cannot help: a receiver that failed lately makes the wait return
 * at once (the bound applies as before); a slow one makes it give up at the deadline,
 * counted. */
static void test_pacing_gives_up(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_memory_bytes = 1u << 20;
    q.min_backoff_ms = q.max_backoff_ms = 50;
    rx_set(500, 0);
    struct rw_remote *r = new_remote(&q);
    scrape(r, 20000, 0); /* about 0.7 MB queued, over the 512 KiB mark */
    for (int t = 0; t < 5000 && metric(r, "scrapeship_remote_samples_retried_total{") <= 0; t += 10)
        sleep_ms(10);
    int64_t t0 = ss_mono_ms();
    assert_true(rw_remote_wait_room(r, t0 + 5000));
    assert_true(ss_mono_ms() - t0 < 1000);
    assert_int_equal(metric(r, "scrapeship_remote_pace_waits_total{"), 0);
    rx_set(204, 0);
    assert_true(wait_samples(20000, 30000));
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish(r);

    rx_set(204, 2000); /* every request takes 2 s */
    q.max_shards = 1;  /* no resharding that could drain the queue under the mark */
    r = new_remote(&q);
    scrape(r, 20000, 1);
    t0 = ss_mono_ms();
    assert_false(rw_remote_wait_room(r, t0 + 300));
    int64_t took = ss_mono_ms() - t0;
    assert_true(took >= 290 && took < 2000);
    assert_int_equal(metric(r, "scrapeship_remote_pace_timeouts_total{"), 1);
    rx_set(204, 0);
    finish(r);
}

/* sample_age_limit: a batch whose newest sample is past the limit is dropped before
 * it is sent, the first time too (it waited in the queue), and counted as too_old; a
 * fresh batch the receiver rejects with 400 is counted as http_4xx, whatever the limit. */
static void test_sample_age_limit_reasons(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.sample_age_limit_ms = 2000;
    q.batch_send_deadline_ms = 50;
    struct rw_remote *r = new_remote(&q);
    rx_set(204, 0);
    scrape(r, 100, 5); /* timestamps 5 ms after the epoch: long past the limit */
    for (int t = 0; t < 5000 && dropped(r, "too_old") < 100; t += 20)
        sleep_ms(20);
    assert_int_equal((int)dropped(r, "too_old"), 100);
    pthread_mutex_lock(&rx.mu);
    assert_int_equal(rx.requests, 0);
    pthread_mutex_unlock(&rx.mu);
    rx_set(400, 0);
    rw_remote_begin(r);
    int64_t now = ss_now_ms();
    for (int k = 0; k < 100; k++) {
        struct ss_label l[2] = {{{"__name__", 8}, {"m", 1}}, {{"i", 1}, {names[k], strlen(names[k])}}};
        struct scrape_series s = {l, 2, (double)k, now, (uint64_t)k, NULL, 0, 0, 0, NULL, NULL, 0};
        rw_remote_append(r, &s);
    }
    rw_remote_commit(r);
    for (int t = 0; t < 5000 && dropped(r, "http_4xx") < 100; t += 20)
        sleep_ms(20);
    assert_int_equal((int)dropped(r, "http_4xx"), 100);
    assert_int_equal((int)dropped(r, "too_old"), 100);
    rx_set(204, 0);
    finish(r);
}

/* Every queue_full drop reaches the log, also those the 10 s log window held back
 * when the process stops within it: the counts logged add up to the counter. */
static void test_drop_log_complete_at_shutdown(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_memory_bytes = 32u << 10;
    q.max_backoff_ms = 100;
    struct rw_remote *r = new_remote(&q);
    rx_set(503, 0);
    fflush(stderr);
    int saved = dup(2);
    FILE *logf = tmpfile();
    assert_non_null(logf);
    dup2(fileno(logf), 2);
    for (int ts = 0; ts < 6; ts++) /* drops at every scrape, all within one log window */
        scrape(r, 1000, ts);
    double drops = dropped(r, "queue_full");
    uint64_t unsent = 0;
    rw_remote_shutdown(r, ss_mono_ms() + 300, &unsent);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rw_remote_free(r);
    rx_set(204, 0);
    rewind(logf);
    char line[2048];
    uint64_t logged = 0;
    while (fgets(line, sizeof line, logf)) {
        const char *at = strstr(line, "dropped the oldest ");
        if (at)
            logged += strtoull(at + strlen("dropped the oldest "), NULL, 10);
    }
    fclose(logf);
    assert_true(drops > 0);
    assert_int_equal(logged, (uint64_t)drops);
}

/* The receiver stalls behind a 64 KiB bound: the oldest queued samples are dropped,
 * each one counted; what was in flight and the newest data are delivered. */
static void test_bound_drops_oldest_exactly(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_memory_bytes = 64u << 10;
    q.max_backoff_ms = 100;
    q.max_samples_per_send = 500;
    struct rw_remote *r = new_remote(&q);
    const int nseries = 1000, nscrapes = 40; /* ~25 bytes a sample: about 25 KiB a scrape */
    rx_set(503, 0);
    for (int ts = 0; ts < nscrapes; ts++) {
        scrape(r, nseries, ts);
        assert_true(metric(r, "scrapeship_remote_queue_bytes{") <= (double)q.max_memory_bytes);
        sleep_ms(20);
    }
    double drops = dropped(r, "queue_full");
    assert_true(drops > 0);
    rx_set(204, 0);
    for (int t = 0; t < 15000 && metric(r, "scrapeship_remote_queue_samples{") > 0; t += 50)
        sleep_ms(50);
    sleep_ms(500); /* batches taken before the queue emptied */
    drops = dropped(r, "queue_full");
    finish(r);
    assert_int_equal(rx.duplicates, 0);
    assert_int_equal(rx.out_of_order, 0);
    assert_int_equal((uint64_t)drops, (uint64_t)nseries * nscrapes - rx.samples);
    /* Per series: what is missing is one run of old scrapes, never the newest. */
    for (int k = 0; k < nseries; k++) {
        assert_int_equal(rx.got[k][nscrapes - 1], 1);
        int runs = 0;
        for (int ts = 0; ts < nscrapes; ts++)
            if (!rx.got[k][ts] && (ts == 0 || rx.got[k][ts - 1]))
                runs++;
        assert_true(runs <= 1);
    }
    /* What the bound kept is the newest data: about max_memory_bytes of it (records
     * are ~40 bytes here) beyond what was in flight when the receiver stalled. */
    uint64_t kept_newest = 0;
    for (int k = 0; k < nseries; k++)
        for (int ts = nscrapes - 1; ts >= 0 && rx.got[k][ts]; ts--)
            kept_newest++;
    print_message("dropped %.0f, received %llu, newest kept %llu\n", drops, (unsigned long long)rx.samples,
                  (unsigned long long)kept_newest);
    assert_true(kept_newest >= (q.max_memory_bytes / 64));
}

/* Scrapes of 10 000 series every 100 ms (100k samples/s) from timestamp *ts on, for
 * up to `ms` (60 timestamps at most): how many ms after the first the shards grew past
 * one (-1: not within `ms`). */
static int offer_burst(struct rw_remote *r, int *ts, int64_t ms)
{
    int64_t t0 = ss_mono_ms();
    int grew_at = -1;
    while (*ts < 60 && ss_mono_ms() - t0 < ms) {
        scrape(r, 10000, (*ts)++);
        if (grew_at < 0 && shards(r) > 1)
            grew_at = (int)(ss_mono_ms() - t0);
        sleep_ms(100);
    }
    return grew_at;
}

/* A slow receiver (30 ms a request) and 100k samples/s offered from the first second:
 * one shard can carry at most ~17k/s, so shards must grow before much is measured. */
static void test_cold_start_reshards(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_samples_per_send = 500;
    rx_set(204, 30);
    struct rw_remote *r = new_remote(&q);
    int ts = 0;
    int grew_at = offer_burst(r, &ts, 12000);
    print_message("shards > 1 after %d ms; %.0f shards at the end\n", grew_at, shards(r));
    assert_true(grew_at >= 0 && grew_at <= 8000);
    rx_set(204, 0);
    assert_true(wait_samples((uint64_t)ts * 10000, 60000));
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish_exactly(r, (uint64_t)ts * 10000);
}

/* After a quiet spell the manager decides only every 10 s (remote.c, LIGHT_TICK_MS);
 * a burst past the queue capacity wakes it: shards grow as soon as after a cold start. */
static void test_burst_after_quiet_reshards(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_samples_per_send = 500;
    rx_set(204, 30);
    struct rw_remote *r = new_remote(&q);
    scrape(r, 100, 0); /* a trickle, then quiet: the rate history fills (10 ticks) */
    sleep_ms(11500);
    assert_int_equal(shards(r), 1);
    int ts = 1;
    int grew_at = offer_burst(r, &ts, 8000);
    print_message("shards > 1 %d ms after the burst began; %.0f shards at the end\n", grew_at, shards(r));
    assert_true(grew_at >= 0 && grew_at <= 5000);
    rx_set(204, 0);
    assert_true(wait_samples(100 + (uint64_t)(ts - 1) * 10000, 60000));
    finish(r);
}

/* A failing receiver never gets more shards. */
static void test_no_growth_while_failing(void **state)
{
    (void)state;
    struct rw_queue_config q = defaults;
    q.max_backoff_ms = 200;
    rx_set(503, 0);
    struct rw_remote *r = new_remote(&q);
    for (int ts = 0; ts < 30; ts++) {
        scrape(r, 10000, ts);
        sleep_ms(200);
        assert_int_equal(shards(r), 1);
        assert_int_equal(metric(r, "scrapeship_remote_shards_desired{"), 1);
    }
    rx_set(204, 0);
    assert_true(wait_samples(30u * 10000, 60000));
    finish(r);
    assert_int_equal(rx.out_of_order, 0);
}

/* With a disk queue the memory bound means "spill", not "drop": a receiver that fails
 * (answers 503 at once: the senders retry their batches) or hangs (answers 503 after
 * `hang_ms`: the senders' requests stay in flight) behind a 128 KiB bound loses nothing,
 * and everything arrives once and in order. The series are one metric family, so they
 * share a few queues, which the senders' batches keep busy: spilling must not wait for
 * those batches (sender.c: a retrying sender spills at once when spill mode starts, and
 * a hanging request is aborted to spill). */
/* A remote with a disk queue in a new directory `dir` (a mkdtemp template), short
 * backoffs and batches of 500. */
static struct rw_remote *new_disk_remote(char *dir, uint64_t max_memory_bytes)
{
    assert_non_null(mkdtemp(dir));
    struct rw_queue_config q = defaults;
    if (max_memory_bytes)
        q.max_memory_bytes = max_memory_bytes;
    q.max_backoff_ms = 100;
    q.max_samples_per_send = 500;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/w", rx.port);
    struct rw_config c = {.name = "t",
                          .url = url,
                          .remote_timeout_ms = 10000,
                          .queue = q,
                          .storage_dir = dir,
                          .fsync_interval_ms = 1000 /* the config's default */};
    struct rw_remote *r = NULL;
    assert_int_equal(rw_remote_new(&c, &r), 0);
    return r;
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void bound_spills_with_disk(unsigned hang_ms, int scrape_gap_ms)
{
    char dir[] = "/tmp/ss-test-queue-XXXXXX";
    struct rw_remote *r = new_disk_remote(dir, 128u << 10);
    const int nseries = 1000, nscrapes = 40;
    rx_set(503, hang_ms);
    for (int ts = 0; ts < nscrapes; ts++) {
        scrape(r, nseries, ts);
        sleep_ms(scrape_gap_ms);
    }
    assert_true(metric(r, "scrapeship_remote_samples_spilled_total{") > 0);
    pthread_mutex_lock(&rx.mu);
    uint64_t requests_before = rx.requests;
    pthread_mutex_unlock(&rx.mu);
    rx_set(204, 0);
    bool all = wait_samples((uint64_t)nseries * nscrapes, 60000);
    /* the backlog is replayed several disk records per request (spill.c), not one per
     * round trip */
    pthread_mutex_lock(&rx.mu);
    uint64_t requests = rx.requests - requests_before;
    pthread_mutex_unlock(&rx.mu);
    double records = metric(r, "scrapeship_remote_disk_records_replayed_total{");
    print_message("replayed %.0f disk records in %llu requests\n", records, (unsigned long long)requests);
    if (records >= 16 && records < 2.0 * (double)requests)
        fail_msg("%.0f disk records replayed in %llu requests", records, (unsigned long long)requests);
    if (!all || dropped(r, "queue_full") > 0)
        print_message("received %llu of %d; queued %.0f, spilled %.0f, replayed %.0f, disk samples %.0f, "
                      "dropped %.0f\n",
                      (unsigned long long)rx_samples(), nseries * nscrapes,
                      metric(r, "scrapeship_remote_queue_samples{"),
                      metric(r, "scrapeship_remote_samples_spilled_total{"),
                      metric(r, "scrapeship_remote_samples_replayed_total{"),
                      metric(r, "scrapeship_remote_disk_samples{"), dropped(r, "queue_full"));
    assert_int_equal(dropped(r, "queue_full"), 0);
    assert_true(all);
    finish_exactly(r, (uint64_t)nseries * nscrapes);
    remove_dir(dir);
}

static void test_bound_spills_failing_receiver(void **state)
{
    (void)state;
    bound_spills_with_disk(0, 20);
}

static void test_bound_spills_hanging_receiver(void **state)
{
    (void)state;
    bound_spills_with_disk(4000, 75); /* 3 s of scrapes: 3x the spill abort delay */
}

/* The disk fails while it holds a backlog: appends are refused (RLIMIT_FSIZE: EFBIG,
 * as a full filesystem refuses them with ENOSPC) but the backlog can still be read.
 * The senders keep their fresh batches in memory until the replayer has delivered the
 * backlog: sent at once they would overtake older samples of the same series on disk,
 * which a Prometheus receiver rejects as out of order. Everything arrives, once, in
 * order. */
static void test_disk_failure_keeps_order(void **state)
{
    (void)state;
    char dir[] = "/tmp/ss-test-queue-XXXXXX";
    struct rw_remote *r = new_disk_remote(dir, 0);
    const int nseries = 1000, nscrapes = 32;
    rx_set(503, 0);
    int ts = 0;
    for (; ts < nscrapes / 2; ts++) { /* the receiver fails: the batches go to disk */
        scrape(r, nseries, ts);
        sleep_ms(100);
    }
    for (int t = 0; t < 5000 && metric(r, "scrapeship_remote_samples_spilled_total{") < nseries; t += 20)
        sleep_ms(20);
    assert_true(metric(r, "scrapeship_remote_samples_spilled_total{") >= nseries);
    /* now the disk refuses every append */
    struct rlimit old, tiny;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    tiny = old;
    tiny.rlim_cur = 64; /* the checkpoint file still fits */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    for (; ts < nscrapes; ts++) {
        scrape(r, nseries, ts);
        sleep_ms(100);
    }
    for (int t = 0; t < 5000 && metric(r, "scrapeship_remote_disk_write_errors_total{") < 1; t += 20)
        sleep_ms(20);
    double errors = metric(r, "scrapeship_remote_disk_write_errors_total{");
    rx_set(204, 50); /* the backlog takes several round trips: a fresh batch has time to overtake it */
    bool all = wait_samples((uint64_t)nseries * nscrapes, 60000);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    print_message("disk write errors %.0f; received %llu of %d, out of order %llu; replayed %.0f\n", errors,
                  (unsigned long long)rx_samples(), nseries * nscrapes, (unsigned long long)rx.out_of_order,
                  metric(r, "scrapeship_remote_samples_replayed_total{"));
    assert_true(errors >= 1);
    assert_true(all);
    assert_int_equal(dropped(r, "queue_full"), 0);
    finish_exactly(r, (uint64_t)nseries * nscrapes);
    remove_dir(dir);
}

/* The kubelet's cAdvisor: a pod's cgroups (its own, its pause container's, its
 * containers') stand next to each other in each family, and differ in their longest
 * values (`id`, the cgroup path, and `name`, the container ID): the pod label keeps
 * them in one queue, and the pods still spread over the family's queues. */
static void test_pod_siblings_stay_together(void **state)
{
    (void)state;
    enum { NPODS = 100, NCG = 3 };
    struct rw_remote *r = new_remote(&defaults);
    uint8_t hints[NPODS][NCG] = {{0}};
    bool seen[5] = {false};
    rw_remote_begin(r);
    for (int p = 0; p < NPODS; p++)
        for (int c = 0; c < NCG; c++) {
            char pod[64], id[256], name[80];
            int pl = snprintf(pod, sizeof pod, "web-frontend-5d8f7c9b6-%05d", p);
            int il =
                snprintf(id, sizeof id,
                         "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%08x_1a2b_3c4d_5e6f_"
                         "%012x.slice%s%060x%04x%s",
                         p * 7919, p, c ? "/cri-containerd-" : "", p, c, c ? ".scope" : "");
            int nl = c ? snprintf(name, sizeof name, "%060x%04x", p, c) : 0;
            const char *k = names[p * NCG + c]; /* the receiver's series number */
            struct ss_label l[6] = {{{"__name__", 8}, {"container_cpu_usage_seconds_total", 33}},
                                    {{"i", 1}, {k, strlen(k)}},
                                    {{"id", 2}, {id, (size_t)il}},
                                    {{"name", 4}, {name, (size_t)nl}},
                                    {{"namespace", 9}, {"web", 3}},
                                    {{"pod", 3}, {pod, (size_t)pl}}};
            struct scrape_series s = {.labels = l,
                                      .nlabels = nl ? 6 : 5,
                                      .value = 1.0,
                                      .timestamp_ms = 1,
                                      .hash = (uint64_t)(p * NCG + c) * 0x9E3779B97F4A7C15ULL,
                                      .hint_out = &hints[p][c]};
            if (!nl) /* the pod's own cgroup has no name */
                l[3] = l[4], l[4] = l[5];
            rw_remote_append(r, &s);
        }
    rw_remote_commit(r);
    for (int p = 0; p < NPODS; p++) {
        assert_in_range(hints[p][0], 1, 4);
        seen[hints[p][0]] = true;
        for (int c = 1; c < NCG; c++)
            assert_int_equal(hints[p][c], hints[p][0]);
    }
    assert_true(seen[1] + seen[2] + seen[3] + seen[4] >= 3);
    assert_true(wait_samples((uint64_t)NPODS * NCG, 60000));
    finish(r);
    assert_int_equal(rx.samples, (uint64_t)NPODS * NCG);
}

/* Series that differ only in short labels (a histogram's buckets: i, le) and share a
 * long one (pod) arrive one after another, as exposed, so that snappy finds their
 * shared bytes; chosen by each series' own hash, their queues scattered them. */
static void test_siblings_stay_together(void **state)
{
    (void)state;
    enum { NHIST = 500, NB = 12 };
    struct rw_remote *r = new_remote(&defaults);
    static uint8_t hints[NHIST * NB];
    memset(hints, 0, sizeof hints);
    static const char *const les[NB] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                        "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
    for (int ts = 0; ts < 2; ts++) {
        rw_remote_begin(r);
        for (int h = 0; h < NHIST; h++) {
            char pod[64];
            int pl = snprintf(pod, sizeof pod, "checkout-api-5d8f7c9b6-%05d-0a1b2c3d4e5f", h);
            for (int b = 0; b < NB; b++) {
                const char *k = names[h * NB + b];
                struct ss_label l[4] = {{{"__name__", 8}, {"h_bucket", 8}},
                                        {{"i", 1}, {k, strlen(k)}},
                                        {{"le", 2}, {les[b], strlen(les[b])}},
                                        {{"pod", 3}, {pod, (size_t)pl}}};
                struct scrape_series s = {.labels = l,
                                          .nlabels = 4,
                                          .value = 1.0,
                                          .timestamp_ms = ts,
                                          .hash = (uint64_t)(h * NB + b) * 0x9E3779B97F4A7C15ULL};
                /* the first scrape asks for the queue's hint, the second passes it back
                 * (as the scrape module does): both must take the same queues */
                if (ts == 0)
                    s.hint_out = &hints[h * NB + b];
                else
                    s.hint = hints[h * NB + b];
                rw_remote_append(r, &s);
            }
        }
        rw_remote_commit(r);
    }
    for (int h = 0; h < NHIST; h++) /* a spread + 1, the same for a histogram's buckets */
        for (int b = 0; b < NB; b++) {
            assert_in_range(hints[h * NB + b], 1, 4);
            assert_int_equal(hints[h * NB + b], hints[h * NB]);
        }
    assert_true(wait_samples(2u * NHIST * NB, 60000));
    finish(r);
    assert_int_equal(rx.samples, 2u * NHIST * NB);
    assert_int_equal(rx.out_of_order, 0);
    /* A request boundary may cut a histogram (a batch ends at max_samples_per_send,
     * or takes a queue's records while the scrape is still appending), at most once
     * per queue a request takes from: the series of one family go to 4 queues. */
    uint64_t cuts = 0;
    for (int h = 0; h < NHIST; h++)
        for (int b = 1; b < NB; b++) {
            int k = h * NB + b;
            if (rx.req_of[k] == rx.req_of[k - 1])
                assert_int_equal(rx.pos_of[k], rx.pos_of[k - 1] + 1);
            else
                cuts++;
        }
    assert_true(cuts <= 4 * rx.requests);
}

/* Names and URLs are label values in the self-metrics: escaped, never raw. */
static void test_metrics_escape_labels(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/w?q=\"x\"", rx.port);
    struct rw_config c = {.name = "a\"b\\c", .url = url, .queue = defaults};
    struct rw_remote *r = NULL;
    assert_int_equal(rw_remote_new(&c, &r), 0);
    struct ss_buf b;
    ss_buf_init(&b, 0);
    assert_int_equal(rw_remotes_render_metrics(&r, 1, &b), 0);
    ss_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "remote_name=\"a\\\"b\\\\c\",url=\"http://127.0.0.1:"));
    assert_non_null(strstr(b.data, "/w?q=\\\"x\\\"\"}"));
    ss_buf_free(&b);
    finish(r);
}

int main(void)
{
    for (int k = 0; k < MAX_SERIES; k++)
        snprintf(names[k], sizeof names[k], "%d", k);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_reaches_every_stage, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_large_commit_delivered, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_big_scrape_streams, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_stage_tails_committed, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_wire_forms_deliver_alike, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_pacing_keeps_big_scrape_under_bound, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_pacing_many_senders, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_pacing_gives_up, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_bound_drops_oldest_exactly, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_drop_log_complete_at_shutdown, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_sample_age_limit_reasons, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_cold_start_reshards, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_burst_after_quiet_reshards, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_no_growth_while_failing, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_bound_spills_failing_receiver, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_bound_spills_hanging_receiver, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_disk_failure_keeps_order, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_siblings_stay_together, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_pod_siblings_stay_together, rx_start, rx_stop),
        cmocka_unit_test_setup_teardown(test_metrics_escape_labels, rx_start, rx_stop),
    };
    if (getenv("TEST_FILTER")) /* one test by name (a glob), when working on it */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
