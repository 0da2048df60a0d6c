/* remote.c: one remote_write endpoint: shards, sender threads, retries, resharding.
 *
 * Flow. The scrape thread encodes each series once per remote (external labels,
 * write relabeling, then the streaming encoder) into a per-shard staging buffer; at
 * the end of the scrape it moves each staging buffer into its shard's queue under the
 * shard's lock. A shard's sender thread takes up to max_samples_per_send records once
 * that many are queued or batch_send_deadline has passed, compresses them with
 * snappy, signs and POSTs them, and retries that same batch until it is accepted or
 * must be dropped. One request in flight per shard and a fixed series->shard mapping
 * keep every series in timestamp order.
 *
 * Retries (remote-write 1.0 §Retries & Backoff): 5xx, 429 (unless
 * retry_on_http_429 is false), 408 and network errors are retried with exponential
 * backoff and full jitter, honouring Retry-After; other 4xx are never retried: the
 * batch is dropped, counted by status and the receiver's message logged (truncated).
 *
 * Nothing here blocks the scrape thread on the network: when a shard's queue is full
 * the new samples are dropped and counted (reason "queue_full"); the disk queue will
 * take them instead.
 *
 * Resharding follows Prometheus' calculateDesiredShards idea: shards needed = time
 * per sample x samples arriving per second, with a 30% dead band, recomputed every
 * 10 s, and never while a shard is backing off. A new shard set starts sending only
 * after the old set has delivered everything it held, so order is kept across the
 * switch.
 *
 * Durable delivery (storage_dir set). A remote enters spill mode when a batch has
 * failed for SPILL_AFTER_MS or a shard queue is over capacity: from then on every
 * shard writes what it holds, including the batch it was retrying, to the remote's
 * disk queue instead of sending it, and a replayer thread sends the disk records in
 * order. When the disk queue is empty the remote leaves spill mode and the shards
 * send from memory again. Spilling and leaving spill mode happen under one lock, and
 * each shard writes its own data in order, so every series keeps timestamp order at
 * the receiver (a Prometheus receiver rejects out-of-order samples): the backlog is
 * always delivered before fresher samples of the same series. In normal operation
 * nothing is written to disk. At shutdown, what cannot be delivered before the
 * deadline is written to disk and replayed at the next start. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "remotewrite.h"

#define RESHARD_EVERY_MS 10000
#define SPILL_AFTER_MS   1000
#define MAX_ERROR_BODY   1024
#define MAX_LABELS       600
#define NSTATUS          600

enum drop_reason {
    DROP_QUEUE_FULL,
    DROP_HTTP_4XX,
    DROP_TOO_OLD,
    DROP_SHUTDOWN,
    DROP_ENCODE,
    DROP_DISK_ERROR,
    DROP_NREASONS
};
static const char *const drop_reason_names[DROP_NREASONS] = {"queue_full", "http_4xx", "too_old",
                                                             "shutdown",   "encode",   "disk_error"};

static const double send_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof send_buckets / sizeof send_buckets[0])

struct chunk_mark { /* one committed scrape's records in a shard queue */
    size_t end;     /* offset in q just past the chunk */
    int64_t max_ts;
    int64_t enq_mono;
};

struct shard_set;

struct shard {
    struct rw_remote *r;
    struct shard_set *set;
    int idx;
    pthread_t thr;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ss_buf q; /* encoded TimeSeries records */
    size_t head;     /* consumed prefix of q */
    uint64_t q_samples;
    struct chunk_mark *marks;
    size_t nmarks, marks_cap, marks_head;
    bool backing_off;
    /* sender-thread only */
    CURL *easy;
    struct ss_buf body, comp, resp;
};

struct shard_set {
    struct shard_set *prev; /* older set still draining; we wait for it */
    int n;
    struct shard *v;
    atomic_int live;      /* sender threads still running */
    atomic_bool draining; /* no new data: send what is left, then exit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct rw_remote {
    struct rw_config cfg; /* strings point into `owned` */
    struct ss_arena owned;
    char name[128];
    char user_agent[128];
    struct ss_label *ext; /* sorted external labels */
    size_t next;

    pthread_mutex_t sets_mu; /* guards active/old sets for the manager and metrics */
    struct shard_set *active;
    atomic_int desired_shards;

    /* scrape-thread staging, per shard of the active set */
    struct ss_buf *stage;
    uint64_t *stage_samples;
    int64_t *stage_max_ts;
    int nstage;
    struct ss_labels work;

    atomic_bool stopping;  /* shutdown: flush everything now */
    atomic_bool hard_stop; /* shutdown deadline passed */
    int64_t deadline_mono;

    pthread_t mgr;
    bool mgr_started;
    pthread_mutex_t mgr_mu;
    pthread_cond_t mgr_cv;

    pthread_mutex_t meta_mu;
    struct meta_entry *meta;
    size_t nmeta, meta_cap;

    /* metrics */
    _Atomic uint64_t samples_in, samples_sent, samples_failed, samples_retried, bytes_sent;
    _Atomic uint64_t meta_sent, meta_failed;
    _Atomic uint64_t dropped[DROP_NREASONS];
    _Atomic uint64_t requests[NSTATUS]; /* by HTTP status; [0] = network error */
    _Atomic uint64_t send_busy_us;      /* time spent in requests */
    _Atomic int64_t highest_ts_in, highest_ts_sent;
    _Atomic uint64_t hist[NBUCKETS + 1];
    _Atomic uint64_t hist_sum_us;
    _Atomic int64_t last_failure_mono;
    _Atomic uint64_t queue_samples; /* pending in all shards */

    /* durable delivery */
    struct rw_diskq *dq;
    pthread_mutex_t spill_mu; /* orders spill-mode changes against disk appends */
    atomic_bool spill;
    atomic_bool disk_broken;
    pthread_t replayer;
    bool replayer_started;
    _Atomic uint64_t spilled_samples, replayed_samples;
};

struct meta_entry {
    char *family, *help, *unit;
    enum scrape_metric_type type;
};

static void atomic_max(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static uint64_t rand_u64(void)
{
    static _Thread_local uint64_t s;
    if (!s)
        s = (uint64_t)ss_mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)&s;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* ---- shard sets ------------------------------------------------------------ */

static void *shard_main(void *arg);

static void shard_set_free(struct shard_set *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++) {
        struct shard *s = &set->v[i];
        if (s->started)
            pthread_join(s->thr, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        ss_buf_free(&s->q);
        free(s->marks);
    }
    pthread_mutex_destroy(&set->mu);
    pthread_cond_destroy(&set->cv);
    free(set->v);
    free(set);
}

static struct shard_set *shard_set_new(struct rw_remote *r, int n, struct shard_set *prev)
{
    struct shard_set *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->v = calloc((size_t)n, sizeof *set->v);
    if (!set->v) {
        free(set);
        return NULL;
    }
    set->n = n;
    set->prev = prev;
    pthread_mutex_init(&set->mu, NULL);
    pthread_cond_init(&set->cv, NULL);
    for (int i = 0; i < n; i++) {
        struct shard *s = &set->v[i];
        s->r = r;
        s->set = set;
        s->idx = i;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        ss_buf_init(&s->q, 0);
    }
    atomic_store(&set->live, n);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&set->v[i].thr, NULL, shard_main, &set->v[i]) == 0)
            set->v[i].started = true;
        else
            atomic_fetch_sub(&set->live, 1);
    }
    return set;
}

static void shard_wake(struct shard *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void set_wake_all(struct shard_set *set)
{
    for (; set; set = set->prev) {
        for (int i = 0; i < set->n; i++)
            shard_wake(&set->v[i]);
        pthread_mutex_lock(&set->mu);
        pthread_cond_broadcast(&set->cv);
        pthread_mutex_unlock(&set->mu);
    }
}

/* ---- HTTP ------------------------------------------------------------------ */

static size_t on_resp(char *p, size_t size, size_t n, void *ud)
{
    struct ss_buf *b = ud;
    size_t len = size * n;
    if (b->len < MAX_ERROR_BODY)
        ss_buf_append(b, p, len < MAX_ERROR_BODY - b->len ? len : MAX_ERROR_BODY - b->len);
    return len;
}

struct hdr_ctx {
    struct curl_slist *list;
    bool oom;
};

static int add_header(void *ctx, const char *line)
{
    struct hdr_ctx *h = ctx;
    struct curl_slist *n = curl_slist_append(h->list, line);
    if (!n) {
        h->oom = true;
        return SS_ENOMEM;
    }
    h->list = n;
    return 0;
}

static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct rw_remote *r = ud;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&r->hard_stop) ? 1 : 0; /* abort a request after the deadline */
}

/* Retry-After: delta-seconds or an HTTP date. Returns ms, or -1. */
static int64_t retry_after_ms(CURL *e)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return -1;
    const char *v = h->value;
    char *end;
    long secs = strtol(v, &end, 10);
    if (end != v && *end == '\0' && secs >= 0)
        return (int64_t)secs * 1000;
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    int64_t delta = ((int64_t)when * 1000) - ss_now_ms();
    return delta > 0 ? delta : 0;
}

/* Send one compressed body. Returns the HTTP status, or 0 for a network error. */
static long post(struct rw_remote *r, CURL *e, const struct ss_buf *comp, struct ss_buf *resp, int attempt,
                 int64_t *retry_after, char *neterr, size_t neterrlen)
{
    const struct rw_config *c = &r->cfg;
    struct hdr_ctx h = {0};
    char line[256];
    add_header(&h, "Content-Encoding: snappy");
    add_header(&h, "Content-Type: application/x-protobuf");
    add_header(&h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    if (attempt > 0) {
        snprintf(line, sizeof line, "Retry-Attempt: %d", attempt);
        add_header(&h, line);
    }
    for (size_t i = 0; i < c->nheaders; i++) {
        size_t n = strlen(c->headers[i].key) + strlen(c->headers[i].value) + 3;
        char *hl = malloc(n);
        if (hl) {
            snprintf(hl, n, "%s: %s", c->headers[i].key, c->headers[i].value);
            add_header(&h, hl);
            free(hl);
        }
    }
    char *auth = NULL;
    if (c->http.authorization_credentials) {
        size_t n = strlen(c->http.authorization_credentials) + 64;
        auth = malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: %s %s",
                     c->http.authorization_type ? c->http.authorization_type : "Bearer",
                     c->http.authorization_credentials);
            add_header(&h, auth);
            ss_free_secret(auth);
        }
    }
    if (c->signer.sign) {
        int rc = c->signer.sign(c->signer.ud, "POST", c->url, comp->data, comp->len, add_header, &h);
        if (rc) {
            curl_slist_free_all(h.list);
            snprintf(neterr, neterrlen, "signing failed: %s", ss_strerror(rc));
            return 0;
        }
    }
    if (h.oom) {
        curl_slist_free_all(h.list);
        snprintf(neterr, neterrlen, "out of memory");
        return 0;
    }
    ss_buf_reset(resp);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, comp->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)comp->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h.list);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_resp);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = ss_mono_seconds();
    CURLcode res = curl_easy_perform(e);
    double dt = ss_mono_seconds() - t0;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h.list);
    atomic_fetch_add(&r->send_busy_us, (uint64_t)(dt * 1e6));
    atomic_fetch_add(&r->hist_sum_us, (uint64_t)(dt * 1e6));
    size_t b = 0;
    while (b < NBUCKETS && dt > send_buckets[b])
        b++;
    atomic_fetch_add(&r->hist[b], 1);
    if (res != CURLE_OK) {
        snprintf(neterr, neterrlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(res));
        atomic_fetch_add(&r->requests[0], 1);
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status > 0 && status < NSTATUS)
        atomic_fetch_add(&r->requests[status], 1);
    *retry_after = retry_after_ms(e);
    return status;
}

static CURL *new_easy(struct rw_remote *r)
{
    const struct rw_config *c = &r->cfg;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, r->user_agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->remote_timeout_ms > 0 ? c->remote_timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->http.tls_insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->http.tls_insecure_skip_verify ? 0L : 2L);
    if (c->http.tls_ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->http.tls_ca_file);
    if (c->http.tls_cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->http.tls_cert_file);
    if (c->http.tls_key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->http.tls_key_file);
    curl_easy_setopt(e, CURLOPT_PROXY, c->http.proxy_url ? c->http.proxy_url : "");
    if (c->http.basic_auth_username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->http.basic_auth_username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->http.basic_auth_password ? c->http.basic_auth_password : "");
    }
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
    return e;
}

/* Print the first bytes of a receiver's error body on one line. */
static void printable(const struct ss_buf *b, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 1 < cap && i < 256; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    out[n] = '\0';
}

enum send_result { SEND_OK, SEND_DROPPED, SEND_ABORTED, SEND_SPILL };

static bool retryable(struct rw_remote *r, long status)
{
    return status == 0 || status >= 500 || status == 408 || (status == 429 && r->cfg.queue.retry_on_http_429);
}

/* Sleep up to ms, waking early on hard stop. */
static void backoff_sleep(struct rw_remote *r, pthread_mutex_t *mu, pthread_cond_t *cv, int64_t ms)
{
    int64_t until = ss_mono_ms() + ms;
    pthread_mutex_lock(mu);
    while (!atomic_load(&r->hard_stop)) {
        int64_t left = until - ss_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = left < 200 ? left : 200;
        ts.tv_sec += step / 1000;
        ts.tv_nsec += (step % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(cv, mu, &ts);
    }
    pthread_mutex_unlock(mu);
}

/* Deliver one body (compressed in `comp`) with retries. `what` names it in logs. */
/* may_spill: a shard's batch, which goes to the disk queue instead of being retried
 * once the remote is in spill mode or the batch has failed for SPILL_AFTER_MS. */
static enum send_result send_with_retry(struct rw_remote *r, CURL *e, struct ss_buf *comp,
                                        struct ss_buf *resp, uint64_t samples, int64_t max_ts,
                                        bool *backing_off, pthread_mutex_t *mu, pthread_cond_t *cv,
                                        const char *what, bool may_spill)
{
    int64_t first_failure = 0;
    const struct rw_queue_config *q = &r->cfg.queue;
    int64_t backoff = q->min_backoff_ms > 0 ? q->min_backoff_ms : 30;
    int64_t max_backoff = q->max_backoff_ms > 0 ? q->max_backoff_ms : 5000;
    bool expired_retry_done = false;
    for (int attempt = 0;; attempt++) {
        if (atomic_load(&r->hard_stop))
            return SEND_ABORTED;
        if (q->sample_age_limit_ms > 0 && max_ts > 0 && attempt > 0 &&
            ss_now_ms() - max_ts > q->sample_age_limit_ms) {
            ss_warn("remotewrite", "remote=%s dropping %s of %llu samples older than sample_age_limit",
                    r->name, what, (unsigned long long)samples);
            return SEND_DROPPED;
        }
        int64_t ra = -1;
        char neterr[CURL_ERROR_SIZE + 64] = "";
        long status = post(r, e, comp, resp, attempt, &ra, neterr, sizeof neterr);
        if (status >= 200 && status < 300) {
            *backing_off = false;
            return SEND_OK;
        }
        char body[300];
        printable(resp, body, sizeof body);
        /* AMP answers 403 with an expired-token message when temporary credentials
         * lapsed: refresh them once and retry once. */
        if (status == 403 && !expired_retry_done && r->cfg.signer.credentials_expired &&
            (strstr(body, "xpired") || strstr(body, "ExpiredToken"))) {
            expired_retry_done = true;
            r->cfg.signer.credentials_expired(r->cfg.signer.ud);
            continue;
        }
        if (!retryable(r, status)) {
            ss_error("remotewrite",
                     "remote=%s url=%s %s rejected with HTTP %ld, dropping %llu samples "
                     "(not retried: remote-write 1.0 never retries 4xx other than 429/408): %s",
                     r->name, r->cfg.url, what, status, (unsigned long long)samples, body);
            *backing_off = false;
            return SEND_DROPPED;
        }
        atomic_store(&r->last_failure_mono, ss_mono_ms());
        *backing_off = true;
        if (!first_failure)
            first_failure = ss_mono_ms();
        if (may_spill && r->dq && !atomic_load(&r->disk_broken) &&
            (atomic_load(&r->spill) || ss_mono_ms() - first_failure >= SPILL_AFTER_MS)) {
            if (status)
                ss_warn("remotewrite", "remote=%s url=%s %s failing (HTTP %ld %s): spilling to disk", r->name,
                        r->cfg.url, what, status, body);
            else
                ss_warn("remotewrite", "remote=%s url=%s %s failing (network error: %s): spilling to disk",
                        r->name, r->cfg.url, what, neterr);
            return SEND_SPILL;
        }
        atomic_fetch_add(&r->samples_retried, samples);
        int64_t sleep_ms = (int64_t)(rand_u64() % (uint64_t)(backoff + 1)); /* full jitter */
        if (ra >= 0 && ra > sleep_ms)
            sleep_ms = ra;
        if ((attempt == 0 || attempt % 10 == 0) && status)
            ss_warn("remotewrite", "remote=%s url=%s %s failed (HTTP %ld %s), retrying in %lldms", r->name,
                    r->cfg.url, what, status, body, (long long)sleep_ms);
        else if (attempt == 0 || attempt % 10 == 0)
            ss_warn("remotewrite", "remote=%s url=%s %s failed (network error: %s), retrying in %lldms",
                    r->name, r->cfg.url, what, neterr, (long long)sleep_ms);
        backoff_sleep(r, mu, cv, sleep_ms);
        backoff = backoff * 2 > max_backoff ? max_backoff : backoff * 2;
    }
}

/* ---- disk spill and replay -------------------------------------------------------- */

/* Append one compressed batch to the disk queue and enter spill mode, atomically with
 * respect to the replayer leaving it. Returns 0, or SS_EIO when the disk failed. */
static int spill_batch(struct rw_remote *r, const struct ss_buf *comp, uint64_t samples, int64_t max_ts)
{
    pthread_mutex_lock(&r->spill_mu);
    int rc = rw_diskq_append(r->dq, comp->data, comp->len, max_ts, max_ts, (uint32_t)samples);
    if (rc == 0) {
        if (!atomic_exchange(&r->spill, true))
            ss_warn("remotewrite", "remote=%s spilling to disk until the receiver catches up", r->name);
        atomic_fetch_add(&r->spilled_samples, samples);
    } else if (rc == SS_ELIMIT) {
        atomic_fetch_add(&r->dropped[DROP_DISK_ERROR], samples);
        rc = 0; /* a batch larger than the whole disk budget: counted, not retried */
    } else {
        atomic_store(&r->disk_broken, true);
    }
    pthread_mutex_unlock(&r->spill_mu);
    return rc;
}

/* Sends the disk queue's records in order; leaves spill mode when it is empty. */
static void *replayer_main(void *arg)
{
    struct rw_remote *r = arg;
    CURL *e = new_easy(r);
    struct ss_buf body, resp;
    ss_buf_init(&body, 0);
    ss_buf_init(&resp, MAX_ERROR_BODY + 1);
    int64_t last_sync = ss_mono_ms(), last_broken_check = ss_mono_ms();
    int64_t fsync_every = r->cfg.fsync_interval_ms > 0 ? r->cfg.fsync_interval_ms : 1000;
    bool bo = false;
    while (!atomic_load(&r->hard_stop)) {
        int64_t now = ss_mono_ms();
        if (now - last_sync >= fsync_every) {
            rw_diskq_sync(r->dq);
            last_sync = now;
        }
        if (atomic_load(&r->disk_broken) && now - last_broken_check > 30000) {
            last_broken_check = now; /* try the disk again now and then */
            atomic_store(&r->disk_broken, false);
        }
        int64_t first, last;
        uint32_t n;
        if (rw_diskq_next(r->dq, &body, &first, &last, &n) != 0) {
            pthread_mutex_lock(&r->spill_mu);
            if (atomic_load(&r->spill) && rw_diskq_empty(r->dq)) {
                atomic_store(&r->spill, false);
                ss_info("remotewrite", "remote=%s disk backlog delivered: sending from memory again",
                        r->name);
            }
            pthread_mutex_unlock(&r->spill_mu);
            backoff_sleep(r, &r->mgr_mu, &r->mgr_cv, 100);
            continue;
        }
        enum send_result res = send_with_retry(r, e, &body, &resp, n, last, &bo, &r->mgr_mu, &r->mgr_cv,
                                               "replayed batch", false);
        if (res == SEND_OK) {
            rw_diskq_ack(r->dq);
            atomic_fetch_add(&r->samples_sent, n);
            atomic_fetch_add(&r->replayed_samples, n);
            atomic_fetch_add(&r->bytes_sent, body.len);
            atomic_max(&r->highest_ts_sent, last);
        } else if (res == SEND_DROPPED) {
            rw_diskq_ack(r->dq);
            atomic_fetch_add(&r->samples_failed, n);
            atomic_fetch_add(&r->dropped[DROP_HTTP_4XX], n);
        } else {
            rw_diskq_rewind(r->dq);
            break;
        }
    }
    rw_diskq_sync(r->dq);
    if (e)
        curl_easy_cleanup(e);
    ss_buf_free(&body);
    ss_buf_free(&resp);
    return NULL;
}

/* ---- sender thread ------------------------------------------------------------- */

static size_t record_len(const char *p, size_t avail)
{
    /* tag byte 0x0a, varint length, payload */
    if (avail < 2)
        return 0;
    uint64_t len = 0;
    size_t i = 1;
    for (int shift = 0; i < avail && shift < 64; shift += 7, i++) {
        len |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80)) {
            i++;
            return i + len <= avail ? i + len : 0;
        }
    }
    return 0;
}

static void *shard_main(void *arg)
{
    struct shard *s = arg;
    struct rw_remote *r = s->r;
    struct shard_set *set = s->set;
    /* Order across a reshard: wait until the previous set has drained. */
    if (set->prev) {
        struct shard_set *p = set->prev;
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->live) > 0 && !atomic_load(&r->hard_stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        pthread_mutex_unlock(&p->mu);
    }
    s->easy = new_easy(r);
    ss_buf_init(&s->body, 0);
    ss_buf_init(&s->comp, 0);
    ss_buf_init(&s->resp, MAX_ERROR_BODY + 1);
    const int64_t max_n = r->cfg.queue.max_samples_per_send > 0 ? r->cfg.queue.max_samples_per_send : 2000;
    const int64_t deadline =
        r->cfg.queue.batch_send_deadline_ms > 0 ? r->cfg.queue.batch_send_deadline_ms : 5000;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        for (;;) {
            bool flushing = atomic_load(&r->stopping) || atomic_load(&set->draining) ||
                            (r->dq && atomic_load(&r->spill)); /* spilling: to disk at once */
            if (atomic_load(&r->hard_stop))
                break;
            if (s->q_samples >= (uint64_t)max_n)
                break;
            if (s->q_samples && (flushing || ss_mono_ms() - s->marks[s->marks_head].enq_mono >= deadline))
                break;
            if (!s->q_samples && flushing)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait = s->q_samples ? deadline - (ss_mono_ms() - s->marks[s->marks_head].enq_mono) : 1000;
            if (wait < 1)
                wait = 1;
            if (wait > 1000)
                wait = 1000;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        if ((atomic_load(&r->hard_stop) && !r->dq) || !s->q_samples) {
            pthread_mutex_unlock(&s->mu);
            if (!atomic_load(&r->hard_stop) && !atomic_load(&r->stopping) && !atomic_load(&set->draining))
                continue; /* spill mode woke us with nothing to do */
            break;        /* hard stop, or flushing with nothing left */
        }
        /* Take up to max_n records from the head. */
        ss_buf_reset(&s->body);
        size_t off = s->head, taken = 0;
        while (taken < (size_t)max_n && off < s->q.len) {
            size_t rl = record_len(s->q.data + off, s->q.len - off);
            if (!rl)
                break;
            off += rl;
            taken++;
        }
        int rc = ss_buf_append(&s->body, s->q.data + s->head, off - s->head);
        int64_t max_ts = 0;
        while (s->marks_head < s->nmarks && s->marks[s->marks_head].end <= off) {
            if (s->marks[s->marks_head].max_ts > max_ts)
                max_ts = s->marks[s->marks_head].max_ts;
            s->marks_head++;
        }
        if (s->marks_head < s->nmarks && s->marks[s->marks_head].max_ts > max_ts)
            max_ts = s->marks[s->marks_head].max_ts; /* partially taken chunk */
        s->head = off;
        s->q_samples -= taken;
        atomic_fetch_sub(&r->queue_samples, taken);
        if (s->head == s->q.len) { /* empty: reuse from the start */
            ss_buf_reset(&s->q);
            s->head = 0;
            s->nmarks = s->marks_head = 0;
        } else if (s->head > (1u << 20) && s->head > s->q.len / 2) {
            memmove(s->q.data, s->q.data + s->head, s->q.len - s->head);
            for (size_t i = s->marks_head; i < s->nmarks; i++)
                s->marks[i - s->marks_head].end = s->marks[i].end - s->head;
            s->nmarks -= s->marks_head;
            s->marks_head = 0;
            s->q.len -= s->head;
            s->head = 0;
        }
        pthread_mutex_unlock(&s->mu);

        ss_buf_reset(&s->comp); /* rw_snappy_compress appends */
        if (rc || rw_snappy_compress(s->body.data, s->body.len, &s->comp)) {
            atomic_fetch_add(&r->dropped[DROP_ENCODE], taken);
            continue;
        }
        enum send_result res = SEND_SPILL;
        if (!r->dq || !atomic_load(&r->spill) || atomic_load(&r->disk_broken))
            res = send_with_retry(r, s->easy, &s->comp, &s->resp, taken, max_ts, &s->backing_off, &s->mu,
                                  &s->cv, "batch", true);
        if (r->dq && (res == SEND_SPILL || res == SEND_ABORTED)) {
            if (spill_batch(r, &s->comp, taken, max_ts) == 0)
                continue;
            /* the disk failed: keep the batch in memory and keep trying to send it */
            res = send_with_retry(r, s->easy, &s->comp, &s->resp, taken, max_ts, &s->backing_off, &s->mu,
                                  &s->cv, "batch", false);
        }
        if (res == SEND_OK) {
            atomic_fetch_add(&r->samples_sent, taken);
            atomic_fetch_add(&r->bytes_sent, s->comp.len);
            atomic_max(&r->highest_ts_sent, max_ts);
        } else if (res == SEND_DROPPED) {
            atomic_fetch_add(&r->samples_failed, taken);
            atomic_fetch_add(&r->dropped[max_ts && r->cfg.queue.sample_age_limit_ms > 0 &&
                                                 ss_now_ms() - max_ts > r->cfg.queue.sample_age_limit_ms
                                             ? DROP_TOO_OLD
                                             : DROP_HTTP_4XX],
                             taken);
        } else {
            /* aborted at the shutdown deadline: still unsent, and counted (as dropped
             * for "shutdown") by rw_remote_shutdown with the rest of the queue */
            atomic_fetch_add(&r->queue_samples, taken);
        }
    }
    /* After the shutdown deadline, with a disk queue, whatever is still queued goes to
     * disk for the next start; without one it is reported by shutdown. */
    if (r->dq) {
        const int64_t max_n2 =
            r->cfg.queue.max_samples_per_send > 0 ? r->cfg.queue.max_samples_per_send : 2000;
        pthread_mutex_lock(&s->mu);
        while (s->q_samples) {
            size_t off = s->head, taken = 0;
            while (taken < (size_t)max_n2 && off < s->q.len) {
                size_t rl = record_len(s->q.data + off, s->q.len - off);
                if (!rl)
                    break;
                off += rl;
                taken++;
            }
            if (!taken)
                break;
            ss_buf_reset(&s->comp);
            int64_t mts = s->marks_head < s->nmarks ? s->marks[s->nmarks - 1].max_ts : 0;
            if (rw_snappy_compress(s->q.data + s->head, off - s->head, &s->comp) != 0 ||
                spill_batch(r, &s->comp, taken, mts) != 0)
                break;
            s->head = off;
            s->q_samples -= taken;
            atomic_fetch_sub(&r->queue_samples, taken);
        }
        pthread_mutex_unlock(&s->mu);
    }
    curl_easy_cleanup(s->easy);
    s->easy = NULL;
    ss_buf_free(&s->body);
    ss_buf_free(&s->comp);
    ss_buf_free(&s->resp);
    pthread_mutex_lock(&set->mu);
    atomic_fetch_sub(&set->live, 1);
    pthread_cond_broadcast(&set->cv);
    pthread_mutex_unlock(&set->mu);
    return NULL;
}

/* ---- metadata ------------------------------------------------------------------ */

void rw_remote_metadata(struct rw_remote *r, const struct scrape_parsed_meta *m)
{
    if (!r->cfg.metadata.send || !m->family.len)
        return;
    pthread_mutex_lock(&r->meta_mu);
    struct meta_entry *e = NULL;
    for (size_t i = 0; i < r->nmeta; i++)
        if (ss_str_eq_cstr(m->family, r->meta[i].family)) {
            e = &r->meta[i];
            break;
        }
    if (!e && r->nmeta < 100000) {
        if (r->nmeta == r->meta_cap) {
            size_t nc = r->meta_cap ? r->meta_cap * 2 : 64;
            struct meta_entry *nm = realloc(r->meta, nc * sizeof *nm);
            if (!nm) {
                pthread_mutex_unlock(&r->meta_mu);
                return;
            }
            r->meta = nm;
            r->meta_cap = nc;
        }
        e = &r->meta[r->nmeta++];
        memset(e, 0, sizeof *e);
        e->family = strndup(m->family.p, m->family.len);
    }
    if (e) {
        if (m->kind == SCRAPE_META_TYPE)
            e->type = m->type;
        else if (m->kind == SCRAPE_META_HELP && (!e->help || !ss_str_eq_cstr(m->text, e->help))) {
            free(e->help);
            e->help = strndup(m->text.p, m->text.len);
        } else if (m->kind == SCRAPE_META_UNIT && (!e->unit || !ss_str_eq_cstr(m->text, e->unit))) {
            free(e->unit);
            e->unit = strndup(m->text.p, m->text.len);
        }
    }
    pthread_mutex_unlock(&r->meta_mu);
}

static void send_metadata(struct rw_remote *r, CURL *e, struct ss_buf *body, struct ss_buf *comp,
                          struct ss_buf *resp)
{
    size_t max_n =
        r->cfg.metadata.max_samples_per_send > 0 ? (size_t)r->cfg.metadata.max_samples_per_send : 2000;
    size_t start = 0;
    for (;;) {
        ss_buf_reset(body);
        size_t n = 0;
        pthread_mutex_lock(&r->meta_mu);
        size_t total = r->nmeta;
        for (size_t i = start; i < total && n < max_n; i++, n++) {
            struct meta_entry *m = &r->meta[i];
            rw_encode_metadata(body, m->type, (struct ss_str){m->family, strlen(m->family)},
                               (struct ss_str){m->help ? m->help : "", m->help ? strlen(m->help) : 0},
                               (struct ss_str){m->unit ? m->unit : "", m->unit ? strlen(m->unit) : 0});
        }
        pthread_mutex_unlock(&r->meta_mu);
        if (!n)
            return;
        start += n;
        ss_buf_reset(comp);
        if (rw_snappy_compress(body->data, body->len, comp))
            return;
        bool bo = false;
        enum send_result res =
            send_with_retry(r, e, comp, resp, n, 0, &bo, &r->mgr_mu, &r->mgr_cv, "metadata", false);
        if (res == SEND_OK)
            atomic_fetch_add(&r->meta_sent, n);
        else
            atomic_fetch_add(&r->meta_failed, n);
        if (res == SEND_ABORTED || start >= total)
            return;
    }
}

/* ---- manager thread: resharding and metadata ------------------------------------ */

static void *manager_main(void *arg)
{
    struct rw_remote *r = arg;
    CURL *e = NULL;
    struct ss_buf body, comp, resp;
    ss_buf_init(&body, 0);
    ss_buf_init(&comp, 0);
    ss_buf_init(&resp, MAX_ERROR_BODY + 1);
    int64_t next_reshard = ss_mono_ms() + RESHARD_EVERY_MS;
    int64_t meta_every = r->cfg.metadata.send_interval_ms > 0 ? r->cfg.metadata.send_interval_ms : 60000;
    int64_t next_meta = ss_mono_ms() + 5000; /* first metadata soon after start */
    uint64_t last_in = 0, last_out = 0, last_busy = 0;
    double ewma_in = 0;
    while (!atomic_load(&r->stopping)) {
        pthread_mutex_lock(&r->mgr_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&r->mgr_cv, &r->mgr_mu, &ts);
        pthread_mutex_unlock(&r->mgr_mu);
        if (atomic_load(&r->stopping))
            break;
        int64_t now = ss_mono_ms();

        /* free shard sets that have fully drained (never the active one) */
        pthread_mutex_lock(&r->sets_mu);
        for (struct shard_set *s = r->active; s; s = s->prev)
            if (s->prev && atomic_load(&s->prev->live) == 0) {
                struct shard_set *old = s->prev;
                s->prev = old->prev;
                pthread_mutex_unlock(&r->sets_mu);
                shard_set_free(old);
                pthread_mutex_lock(&r->sets_mu);
                break;
            }
        pthread_mutex_unlock(&r->sets_mu);

        if (now >= next_reshard) {
            double secs = (double)(now - next_reshard + RESHARD_EVERY_MS) / 1000.0;
            next_reshard = now + RESHARD_EVERY_MS;
            uint64_t in = atomic_load(&r->samples_in),
                     out = atomic_load(&r->samples_sent) + atomic_load(&r->samples_failed);
            uint64_t busy = atomic_load(&r->send_busy_us);
            double in_rate = (double)(in - last_in) / secs;
            double out_rate = (double)(out - last_out) / secs;
            double busy_s = (double)(busy - last_busy) / 1e6;
            last_in = in, last_out = out, last_busy = busy;
            ewma_in = ewma_in == 0 ? in_rate : 0.2 * in_rate + 0.8 * ewma_in;
            int cur = atomic_load(&r->desired_shards);
            /* never while backing off: more shards would only add load to a failing remote */
            bool recent_failure = now - atomic_load(&r->last_failure_mono) < 2 * RESHARD_EVERY_MS ||
                                  atomic_load(&r->spill); /* a new series->shard map must not
                                                             overtake the disk backlog */
            if (out_rate > 0 && !recent_failure) {
                double time_per_sample = busy_s / (out_rate * secs);
                double pending = (double)atomic_load(&r->queue_samples);
                double desired = time_per_sample * (ewma_in + 0.05 * pending);
                int want = (int)ceil(desired);
                if (want < r->cfg.queue.min_shards)
                    want = (int)r->cfg.queue.min_shards;
                if (want > r->cfg.queue.max_shards)
                    want = (int)r->cfg.queue.max_shards;
                if (want != cur && (want > cur * 1.3 || want < cur * 0.7)) {
                    ss_info("remotewrite", "remote=%s resharding %d -> %d", r->name, cur, want);
                    atomic_store(&r->desired_shards, want);
                }
            }
        }
        if (r->cfg.metadata.send && now >= next_meta) {
            next_meta = now + meta_every;
            if (!e)
                e = new_easy(r);
            if (e)
                send_metadata(r, e, &body, &comp, &resp);
        }
    }
    if (e)
        curl_easy_cleanup(e);
    ss_buf_free(&body);
    ss_buf_free(&comp);
    ss_buf_free(&resp);
    return NULL;
}

/* ---- scrape-thread side ------------------------------------------------------------ */

static int stage_resize(struct rw_remote *r, int n)
{
    for (int i = 0; i < r->nstage; i++)
        ss_buf_free(&r->stage[i]);
    free(r->stage);
    free(r->stage_samples);
    free(r->stage_max_ts);
    r->stage = calloc((size_t)n, sizeof *r->stage);
    r->stage_samples = calloc((size_t)n, sizeof *r->stage_samples);
    r->stage_max_ts = calloc((size_t)n, sizeof *r->stage_max_ts);
    r->nstage = n;
    if (!r->stage || !r->stage_samples || !r->stage_max_ts)
        return SS_ENOMEM;
    for (int i = 0; i < n; i++)
        ss_buf_init(&r->stage[i], 0);
    return 0;
}

void rw_remote_begin(struct rw_remote *r)
{
    int want = atomic_load(&r->desired_shards);
    if (!r->active || want == r->active->n || atomic_load(&r->stopping))
        return;
    /* Switch shard sets between scrapes: the old set drains and exits, the new one
     * waits for it before sending (see shard_main). */
    struct shard_set *old = r->active;
    struct shard_set *nset = shard_set_new(r, want, old);
    if (!nset)
        return;
    int rc = stage_resize(r, want);
    if (rc) { /* keep going with whatever we have: drop the new set */
        atomic_store(&r->desired_shards, old->n);
        stage_resize(r, old->n);
        atomic_store(&nset->draining, true);
        nset->prev = NULL;
        set_wake_all(nset);
        shard_set_free(nset);
        return;
    }
    pthread_mutex_lock(&r->sets_mu);
    r->active = nset;
    pthread_mutex_unlock(&r->sets_mu);
    atomic_store(&old->draining, true);
    for (int i = 0; i < old->n; i++)
        shard_wake(&old->v[i]);
}

void rw_remote_append(struct rw_remote *r, const struct scrape_series *s)
{
    struct ss_label merged[MAX_LABELS];
    long n = ss_labels_merge_sorted(s->labels, s->nlabels, r->ext, r->next, merged, MAX_LABELS);
    if (n < 0) {
        atomic_fetch_add(&r->dropped[DROP_ENCODE], 1);
        return;
    }
    const struct ss_label *labels = merged;
    uint64_t hash = s->hash;
    if (r->cfg.nwrite_relabel) {
        struct ss_labels *w = &r->work;
        ss_labels_reset(w);
        for (long i = 0; i < n; i++)
            ss_labels_push(w, merged[i].name, merged[i].value);
        if (!scrape_relabel_process(r->cfg.write_relabel, r->cfg.nwrite_relabel, w))
            return;
        size_t k = 0;
        for (size_t i = 0; i < w->n; i++)
            if (w->v[i].value.len)
                w->v[k++] = w->v[i];
        w->n = k;
        if (!w->n)
            return;
        ss_labels_sort(w);
        labels = w->v;
        n = (long)w->n;
        hash = ss_labels_hash(w);
    }
    int shard = (int)(hash % (uint64_t)r->nstage);
    if (rw_encode_series(&r->stage[shard], labels, (size_t)n, s->value, s->timestamp_ms)) {
        atomic_fetch_add(&r->dropped[DROP_ENCODE], 1);
        return;
    }
    r->stage_samples[shard]++;
    if (s->timestamp_ms > r->stage_max_ts[shard])
        r->stage_max_ts[shard] = s->timestamp_ms;
    atomic_fetch_add(&r->samples_in, 1);
}

void rw_remote_commit(struct rw_remote *r)
{
    struct shard_set *set = r->active;
    if (!set)
        return;
    int64_t cap = r->cfg.queue.capacity > 0 ? r->cfg.queue.capacity : 10000;
    int64_t now = ss_mono_ms();
    for (int i = 0; i < r->nstage && i < set->n; i++) {
        if (!r->stage_samples[i])
            continue;
        struct shard *s = &set->v[i];
        pthread_mutex_lock(&s->mu);
        /* With a disk queue, a full queue means "spill", not "drop": the shard moves it
         * to disk; only far past capacity (the disk cannot keep up) is anything dropped. */
        uint64_t limit = (uint64_t)cap;
        if (r->dq && !atomic_load(&r->disk_broken)) {
            limit = (uint64_t)cap * 4;
            if (s->q_samples + r->stage_samples[i] > (uint64_t)cap && !atomic_load(&r->spill)) {
                pthread_mutex_lock(&r->spill_mu);
                if (!atomic_exchange(&r->spill, true))
                    ss_warn("remotewrite", "remote=%s queue over capacity: spilling to disk", r->name);
                pthread_mutex_unlock(&r->spill_mu);
            }
        }
        bool full = s->q_samples + r->stage_samples[i] > limit;
        int rc = 0;
        if (!full) {
            if (s->nmarks == s->marks_cap) {
                size_t nc = s->marks_cap ? s->marks_cap * 2 : 64;
                struct chunk_mark *nm = realloc(s->marks, nc * sizeof *nm);
                if (!nm)
                    rc = SS_ENOMEM;
                else {
                    s->marks = nm;
                    s->marks_cap = nc;
                }
            }
            if (!rc)
                rc = ss_buf_append(&s->q, r->stage[i].data, r->stage[i].len);
            if (!rc) {
                s->marks[s->nmarks++] = (struct chunk_mark){s->q.len, r->stage_max_ts[i], now};
                s->q_samples += r->stage_samples[i];
                atomic_fetch_add(&r->queue_samples, r->stage_samples[i]);
                pthread_cond_broadcast(&s->cv);
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (full || rc) {
            uint64_t before = atomic_fetch_add(&r->dropped[DROP_QUEUE_FULL], r->stage_samples[i]);
            if (before == 0 || (before / 10000) != ((before + r->stage_samples[i]) / 10000))
                ss_error("remotewrite",
                         "remote=%s shard %d queue full (capacity %lld samples): dropped %llu "
                         "samples (total dropped for queue_full: %llu)",
                         r->name, i, (long long)cap, (unsigned long long)r->stage_samples[i],
                         (unsigned long long)(before + r->stage_samples[i]));
        } else {
            atomic_max(&r->highest_ts_in, r->stage_max_ts[i]);
        }
        ss_buf_reset(&r->stage[i]);
        r->stage_samples[i] = 0;
        r->stage_max_ts[i] = 0;
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static const char *dup_str(struct ss_arena *a, const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = ss_arena_strndup(a, s, strlen(s));
    if (!d)
        *oom = true;
    return d;
}

static const struct scrape_kv *dup_kv(struct ss_arena *a, const struct scrape_kv *kv, size_t n, bool *oom)
{
    struct scrape_kv *d = ss_arena_alloc(a, (n + 1) * sizeof *d);
    if (!d) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (struct scrape_kv){dup_str(a, kv[i].key, oom), dup_str(a, kv[i].value, oom)};
    return d;
}

/* The remote keeps its own copy of every string, so it can outlive the config it was
 * built from (a reload keeps unchanged remotes and their queues). Secrets in the copy
 * are wiped on free. */
static int copy_config(struct rw_remote *r, const struct rw_config *c)
{
    bool oom = false;
    struct ss_arena *a = &r->owned;
    struct rw_config *d = &r->cfg;
    d->name = dup_str(a, c->name, &oom);
    d->url = dup_str(a, c->url, &oom);
    d->user_agent = dup_str(a, c->user_agent, &oom);
    d->headers = dup_kv(a, c->headers, c->nheaders, &oom);
    d->storage_dir = dup_str(a, c->storage_dir, &oom);
    d->external_labels = dup_kv(a, c->external_labels, c->nexternal_labels, &oom);
    struct scrape_http_config *h = &d->http;
    h->basic_auth_username = dup_str(a, c->http.basic_auth_username, &oom);
    h->basic_auth_password = dup_str(a, c->http.basic_auth_password, &oom);
    h->basic_auth_password_file = dup_str(a, c->http.basic_auth_password_file, &oom);
    h->authorization_type = dup_str(a, c->http.authorization_type, &oom);
    h->authorization_credentials = dup_str(a, c->http.authorization_credentials, &oom);
    h->authorization_credentials_file = dup_str(a, c->http.authorization_credentials_file, &oom);
    h->tls_ca_file = dup_str(a, c->http.tls_ca_file, &oom);
    h->tls_cert_file = dup_str(a, c->http.tls_cert_file, &oom);
    h->tls_key_file = dup_str(a, c->http.tls_key_file, &oom);
    h->tls_server_name = dup_str(a, c->http.tls_server_name, &oom);
    h->tls_min_version = dup_str(a, c->http.tls_min_version, &oom);
    h->proxy_url = dup_str(a, c->http.proxy_url, &oom);
    if (!d->url)
        return SS_EINVAL;
    return oom ? SS_ENOMEM : 0;
}

int rw_remote_new(const struct rw_config *cfg, struct rw_remote **out)
{
    *out = NULL;
    struct rw_remote *r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    r->cfg = *cfg;
    ss_arena_init(&r->owned, 4096);
    if (copy_config(r, cfg))
        goto fail;
    cfg = &r->cfg;
    if (r->cfg.queue.min_shards < 1)
        r->cfg.queue.min_shards = 1;
    if (r->cfg.queue.max_shards < r->cfg.queue.min_shards)
        r->cfg.queue.max_shards = r->cfg.queue.min_shards;
    if (cfg->name && cfg->name[0])
        snprintf(r->name, sizeof r->name, "%s", cfg->name);
    else {
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = cfg->url; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        snprintf(r->name, sizeof r->name, "%06llx", (unsigned long long)(h & 0xffffff));
    }
    snprintf(r->user_agent, sizeof r->user_agent, "%s",
             cfg->user_agent ? cfg->user_agent : "scrapeship/" SS_VERSION);
    pthread_mutex_init(&r->sets_mu, NULL);
    pthread_mutex_init(&r->mgr_mu, NULL);
    pthread_cond_init(&r->mgr_cv, NULL);
    pthread_mutex_init(&r->meta_mu, NULL);
    ss_labels_init(&r->work);
    r->ext = calloc(cfg->nexternal_labels + 1, sizeof *r->ext);
    if (!r->ext)
        goto fail;
    for (size_t i = 0; i < cfg->nexternal_labels; i++)
        r->ext[i] = (struct ss_label){{cfg->external_labels[i].key, strlen(cfg->external_labels[i].key)},
                                      {cfg->external_labels[i].value, strlen(cfg->external_labels[i].value)}};
    r->next = cfg->nexternal_labels;
    for (size_t i = 1; i < r->next; i++) { /* sort by name */
        struct ss_label x = r->ext[i];
        size_t j = i;
        while (j > 0 && ss_str_cmp(r->ext[j - 1].name, x.name) > 0) {
            r->ext[j] = r->ext[j - 1];
            j--;
        }
        r->ext[j] = x;
    }
    pthread_mutex_init(&r->spill_mu, NULL);
    if (cfg->storage_dir) {
        struct rw_diskq_opts o = {.dir = cfg->storage_dir,
                                  .name = r->name,
                                  .max_bytes = cfg->max_disk_bytes,
                                  .max_age_ms = cfg->max_disk_age_ms,
                                  .fsync_interval_ms = cfg->fsync_interval_ms};
        if (rw_diskq_open(&o, &r->dq) != 0) {
            ss_error("remotewrite", "remote=%s disk queue unavailable in %s: keeping data in memory only",
                     r->name, cfg->storage_dir);
            r->dq = NULL;
        } else if (!rw_diskq_empty(r->dq)) {
            struct rw_diskq_stats st;
            rw_diskq_get_stats(r->dq, &st);
            ss_info("remotewrite", "remote=%s replaying %llu samples (%llu bytes) from %s before new data",
                    r->name, (unsigned long long)st.samples, (unsigned long long)st.bytes, cfg->storage_dir);
            atomic_store(&r->spill, true);
        }
    }
    int n = (int)r->cfg.queue.min_shards;
    atomic_store(&r->desired_shards, n);
    if (stage_resize(r, n))
        goto fail;
    r->active = shard_set_new(r, n, NULL);
    if (!r->active)
        goto fail;
    if (pthread_create(&r->mgr, NULL, manager_main, r) == 0)
        r->mgr_started = true;
    if (r->dq && pthread_create(&r->replayer, NULL, replayer_main, r) == 0)
        r->replayer_started = true;
    ss_info("remotewrite", "remote=%s url=%s started with %d shards (max %lld)", r->name, cfg->url, n,
            (long long)r->cfg.queue.max_shards);
    *out = r;
    return 0;
fail:
    rw_remote_free(r);
    return SS_ENOMEM;
}

static uint64_t pending_samples(struct rw_remote *r)
{
    return atomic_load(&r->queue_samples);
}

void rw_remote_begin_shutdown(struct rw_remote *r)
{
    if (!r || atomic_load(&r->stopping))
        return;
    rw_remote_commit(r); /* anything staged */
    atomic_store(&r->stopping, true);
    pthread_mutex_lock(&r->mgr_mu);
    pthread_cond_broadcast(&r->mgr_cv);
    pthread_mutex_unlock(&r->mgr_mu);
    set_wake_all(r->active);
}

void rw_remote_shutdown(struct rw_remote *r, int64_t deadline_mono_ms, uint64_t *unsent)
{
    if (!r) {
        if (unsent)
            *unsent = 0;
        return;
    }
    rw_remote_begin_shutdown(r);
    r->deadline_mono = deadline_mono_ms;
    /* Let the senders flush until the deadline, then abort what is in flight. */
    while (ss_mono_ms() < deadline_mono_ms) {
        int live = 0;
        pthread_mutex_lock(&r->sets_mu);
        for (struct shard_set *s = r->active; s; s = s->prev)
            live += atomic_load(&s->live);
        pthread_mutex_unlock(&r->sets_mu);
        if (!live)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&r->hard_stop, true);
    set_wake_all(r->active);
    pthread_mutex_lock(&r->mgr_mu);
    pthread_cond_broadcast(&r->mgr_cv);
    pthread_mutex_unlock(&r->mgr_mu);
    if (r->mgr_started) {
        pthread_join(r->mgr, NULL);
        r->mgr_started = false;
    }
    if (r->replayer_started) {
        pthread_join(r->replayer, NULL);
        r->replayer_started = false;
    }
    for (struct shard_set *s = r->active; s; s = s->prev)
        for (int i = 0; i < s->n; i++)
            if (s->v[i].started) {
                pthread_join(s->v[i].thr, NULL);
                s->v[i].started = false;
            }
    uint64_t left = pending_samples(r);
    if (r->dq) {
        struct rw_diskq_stats st;
        rw_diskq_get_stats(r->dq, &st);
        if (st.samples)
            ss_info("remotewrite", "remote=%s %llu samples kept on disk in %s for the next start", r->name,
                    (unsigned long long)st.samples, r->cfg.storage_dir);
    }
    if (left) {
        atomic_fetch_add(&r->dropped[DROP_SHUTDOWN], left);
        ss_error("remotewrite", "remote=%s shutdown deadline passed with %llu samples unsent", r->name,
                 (unsigned long long)left);
    }
    if (unsent)
        *unsent = left;
}

const char *rw_remote_name(const struct rw_remote *r)
{
    return r->name;
}

void rw_remote_free(struct rw_remote *r)
{
    if (!r)
        return;
    if (!atomic_load(&r->hard_stop))
        rw_remote_shutdown(r, ss_mono_ms(), NULL);
    struct shard_set *s = r->active;
    while (s) {
        struct shard_set *p = s->prev;
        shard_set_free(s);
        s = p;
    }
    for (int i = 0; i < r->nstage; i++)
        ss_buf_free(&r->stage[i]);
    free(r->stage);
    free(r->stage_samples);
    free(r->stage_max_ts);
    for (size_t i = 0; i < r->nmeta; i++) {
        free(r->meta[i].family);
        free(r->meta[i].help);
        free(r->meta[i].unit);
    }
    free(r->meta);
    free(r->ext);
    ss_labels_free(&r->work);
    rw_diskq_close(r->dq);
    pthread_mutex_destroy(&r->spill_mu);
    if (r->cfg.http.basic_auth_password)
        ss_wipe((char *)r->cfg.http.basic_auth_password, strlen(r->cfg.http.basic_auth_password));
    if (r->cfg.http.authorization_credentials)
        ss_wipe((char *)r->cfg.http.authorization_credentials, strlen(r->cfg.http.authorization_credentials));
    ss_arena_free(&r->owned);
    pthread_mutex_destroy(&r->sets_mu);
    pthread_mutex_destroy(&r->mgr_mu);
    pthread_cond_destroy(&r->mgr_cv);
    pthread_mutex_destroy(&r->meta_mu);
    free(r);
}

/* ---- self-metrics ---------------------------------------------------------------------- */

/* Metric names follow Prometheus' prometheus_remote_storage_* meanings, prefixed
 * scrapeship_remote_. Families are rendered once for all remotes so that each
 * family's lines stay together, as the exposition format wants. */
static uint64_t g_in(struct rw_remote *r)
{
    return atomic_load(&r->samples_in);
}
static uint64_t g_sent(struct rw_remote *r)
{
    return atomic_load(&r->samples_sent);
}
static uint64_t g_failed(struct rw_remote *r)
{
    return atomic_load(&r->samples_failed);
}
static uint64_t g_retried(struct rw_remote *r)
{
    return atomic_load(&r->samples_retried);
}
static uint64_t g_bytes(struct rw_remote *r)
{
    return atomic_load(&r->bytes_sent);
}
static uint64_t g_meta(struct rw_remote *r)
{
    return atomic_load(&r->meta_sent);
}
static uint64_t g_meta_failed(struct rw_remote *r)
{
    return atomic_load(&r->meta_failed);
}
static uint64_t g_queue(struct rw_remote *r)
{
    return atomic_load(&r->queue_samples);
}
static uint64_t g_desired(struct rw_remote *r)
{
    return (uint64_t)atomic_load(&r->desired_shards);
}
static uint64_t g_min(struct rw_remote *r)
{
    return (uint64_t)r->cfg.queue.min_shards;
}
static uint64_t g_max(struct rw_remote *r)
{
    return (uint64_t)r->cfg.queue.max_shards;
}
static uint64_t g_shards(struct rw_remote *r)
{
    pthread_mutex_lock(&r->sets_mu);
    uint64_t n = r->active ? (uint64_t)r->active->n : 0;
    pthread_mutex_unlock(&r->sets_mu);
    return n;
}
static uint64_t g_capacity(struct rw_remote *r)
{
    return (uint64_t)r->cfg.queue.capacity * g_shards(r);
}
static struct rw_diskq_stats dstats(struct rw_remote *r)
{
    struct rw_diskq_stats st = {0};
    if (r->dq)
        rw_diskq_get_stats(r->dq, &st);
    return st;
}
static uint64_t g_disk_bytes(struct rw_remote *r)
{
    return dstats(r).bytes;
}
static uint64_t g_disk_samples(struct rw_remote *r)
{
    return dstats(r).samples;
}
static uint64_t g_disk_replayed(struct rw_remote *r)
{
    return dstats(r).replayed_records;
}
static uint64_t g_disk_corrupt(struct rw_remote *r)
{
    return dstats(r).corrupt_records;
}
static uint64_t g_disk_werr(struct rw_remote *r)
{
    return dstats(r).write_errors;
}
static uint64_t g_disk_space(struct rw_remote *r)
{
    return dstats(r).dropped_space_samples;
}
static uint64_t g_disk_age(struct rw_remote *r)
{
    return dstats(r).dropped_age_samples;
}
static uint64_t g_spilling(struct rw_remote *r)
{
    return atomic_load(&r->spill) ? 1 : 0;
}
static uint64_t g_spilled(struct rw_remote *r)
{
    return atomic_load(&r->spilled_samples);
}
static uint64_t g_replayed(struct rw_remote *r)
{
    return atomic_load(&r->replayed_samples);
}

int rw_remotes_render_metrics(struct rw_remote *const *rs, size_t n, struct ss_buf *b)
{
    static const struct {
        const char *name, *type, *help;
        uint64_t (*get)(struct rw_remote *);
    } fam[] = {
        {"scrapeship_remote_samples_in_total", "counter", "Samples handed to the remote's queue.", g_in},
        {"scrapeship_remote_samples_total", "counter", "Samples delivered (2xx).", g_sent},
        {"scrapeship_remote_samples_failed_total", "counter",
         "Samples in batches the receiver rejected or that were given up.", g_failed},
        {"scrapeship_remote_samples_retried_total", "counter", "Samples resent after a retryable failure.",
         g_retried},
        {"scrapeship_remote_bytes_total", "counter", "Compressed request bytes delivered.", g_bytes},
        {"scrapeship_remote_metadata_total", "counter", "Metadata entries delivered.", g_meta},
        {"scrapeship_remote_metadata_failed_total", "counter", "Metadata entries not delivered.",
         g_meta_failed},
        {"scrapeship_remote_shards", "gauge", "Shards sending now.", g_shards},
        {"scrapeship_remote_shards_desired", "gauge", "Shards the throughput calls for.", g_desired},
        {"scrapeship_remote_shards_min", "gauge", "min_shards.", g_min},
        {"scrapeship_remote_shards_max", "gauge", "max_shards.", g_max},
        {"scrapeship_remote_queue_samples", "gauge", "Samples queued, not yet delivered.", g_queue},
        {"scrapeship_remote_queue_capacity_samples", "gauge", "Samples the queues can hold.", g_capacity},
        {"scrapeship_remote_spilling", "gauge", "1 while new data goes to the disk queue behind a backlog.",
         g_spilling},
        {"scrapeship_remote_samples_spilled_total", "counter", "Samples written to the disk queue.",
         g_spilled},
        {"scrapeship_remote_samples_replayed_total", "counter", "Samples delivered from the disk queue.",
         g_replayed},
        {"scrapeship_remote_disk_bytes", "gauge", "Bytes in the disk queue.", g_disk_bytes},
        {"scrapeship_remote_disk_samples", "gauge", "Unsent samples in the disk queue.", g_disk_samples},
        {"scrapeship_remote_disk_records_replayed_total", "counter", "Disk records delivered or given up.",
         g_disk_replayed},
        {"scrapeship_remote_disk_corrupt_records_total", "counter", "Damaged disk records skipped.",
         g_disk_corrupt},
        {"scrapeship_remote_disk_write_errors_total", "counter", "Failed writes to the disk queue.",
         g_disk_werr},
        {"scrapeship_remote_disk_dropped_space_samples_total", "counter",
         "Unsent samples dropped to stay under max_disk_bytes.", g_disk_space},
        {"scrapeship_remote_disk_dropped_age_samples_total", "counter",
         "Unsent samples dropped for being older than max_age.", g_disk_age},
    };
#define L "{remote_name=\"%s\",url=\"%s\"}"
    int rc = 0;
    for (size_t f = 0; f < sizeof fam / sizeof fam[0] && !rc; f++) {
        rc = ss_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                           fam[f].type);
        for (size_t i = 0; i < n && !rc; i++)
            rc = ss_buf_printf(b, "%s" L " %llu\n", fam[f].name, rs[i]->name, rs[i]->cfg.url,
                               (unsigned long long)fam[f].get(rs[i]));
    }
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_highest_timestamp_in_seconds Newest sample timestamp queued.\n"
               "# TYPE scrapeship_remote_highest_timestamp_in_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_remote_highest_timestamp_in_seconds" L " %.3f\n", rs[i]->name,
                           rs[i]->cfg.url, (double)atomic_load(&rs[i]->highest_ts_in) / 1000.0);
    if (!rc)
        rc = ss_buf_printf(b, "# HELP scrapeship_remote_disk_oldest_sample_age_seconds Age of the oldest "
                              "unsent sample on disk (0 when empty).\n"
                              "# TYPE scrapeship_remote_disk_oldest_sample_age_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++) {
        struct rw_diskq_stats st = dstats(rs[i]);
        double age = st.samples && st.oldest_ts ? (double)(ss_now_ms() - st.oldest_ts) / 1000.0 : 0;
        rc = ss_buf_printf(b, "scrapeship_remote_disk_oldest_sample_age_seconds" L " %.3f\n", rs[i]->name,
                           rs[i]->cfg.url, age);
    }
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_highest_sent_timestamp_seconds Newest sample timestamp delivered.\n"
               "# TYPE scrapeship_remote_highest_sent_timestamp_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_remote_highest_sent_timestamp_seconds" L " %.3f\n", rs[i]->name,
                           rs[i]->cfg.url, (double)atomic_load(&rs[i]->highest_ts_sent) / 1000.0);
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_samples_dropped_total Samples never delivered, by reason.\n"
               "# TYPE scrapeship_remote_samples_dropped_total counter\n");
    for (size_t i = 0; i < n && !rc; i++)
        for (int d = 0; d < DROP_NREASONS && !rc; d++)
            rc = ss_buf_printf(
                b,
                "scrapeship_remote_samples_dropped_total{remote_name=\"%s\",url=\"%s\",reason=\"%s\"} %llu\n",
                rs[i]->name, rs[i]->cfg.url, drop_reason_names[d],
                (unsigned long long)atomic_load(&rs[i]->dropped[d]));
    if (!rc)
        rc = ss_buf_printf(
            b,
            "# HELP scrapeship_remote_requests_total Requests by HTTP status (network_error: no response).\n"
            "# TYPE scrapeship_remote_requests_total counter\n");
    for (size_t i = 0; i < n && !rc; i++)
        for (int s = 0; s < NSTATUS && !rc; s++) {
            uint64_t v = atomic_load(&rs[i]->requests[s]);
            if (!v && s != 200 && s != 0)
                continue;
            char code[32];
            if (s)
                snprintf(code, sizeof code, "%d", s);
            else
                snprintf(code, sizeof code, "network_error");
            rc = ss_buf_printf(
                b, "scrapeship_remote_requests_total{remote_name=\"%s\",url=\"%s\",code=\"%s\"} %llu\n",
                rs[i]->name, rs[i]->cfg.url, code, (unsigned long long)v);
        }
    if (!rc)
        rc = ss_buf_printf(b,
                           "# HELP scrapeship_remote_sent_batch_duration_seconds Duration of send requests.\n"
                           "# TYPE scrapeship_remote_sent_batch_duration_seconds histogram\n");
    for (size_t i = 0; i < n && !rc; i++) {
        struct rw_remote *r = rs[i];
        uint64_t cum = 0;
        for (size_t k = 0; k < NBUCKETS && !rc; k++) {
            cum += atomic_load(&r->hist[k]);
            rc = ss_buf_printf(b,
                               "scrapeship_remote_sent_batch_duration_seconds_bucket{remote_name=\"%s\",url="
                               "\"%s\",le=\"%g\"} %llu\n",
                               r->name, r->cfg.url, send_buckets[k], (unsigned long long)cum);
        }
        cum += atomic_load(&r->hist[NBUCKETS]);
        if (!rc)
            rc = ss_buf_printf(b,
                               "scrapeship_remote_sent_batch_duration_seconds_bucket{remote_name=\"%s\",url="
                               "\"%s\",le=\"+Inf\"} %llu\n"
                               "scrapeship_remote_sent_batch_duration_seconds_sum" L " %.6f\n"
                               "scrapeship_remote_sent_batch_duration_seconds_count" L " %llu\n",
                               r->name, r->cfg.url, (unsigned long long)cum, r->name, r->cfg.url,
                               (double)atomic_load(&r->hist_sum_us) / 1e6, r->name, r->cfg.url,
                               (unsigned long long)cum);
    }
#undef L
    return rc;
}
