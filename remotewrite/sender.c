/* sender.c: sender threads. Each takes a batch from the series queues it serves,
 * snappy-compresses it, signs and POSTs it, and retries that same batch until it is
 * accepted, must be dropped, or goes to the disk queue.
 *
 * Retries (remote-write 1.0 §Retries & Backoff): 5xx, 429 (unless
 * retry_on_http_429 is false), 408 and network errors are retried with exponential
 * backoff and full jitter, honouring Retry-After; other 4xx are never retried: the
 * batch is dropped, counted by status and the receiver's message logged (truncated).
 *
 * Order: sender j serves the queues q with q % nsenders == j, skipping any queue that
 * is `busy` (a batch of it is in flight with another sender, which happens for a
 * moment after the sender count changed). A sender marks every queue it took records
 * from busy until its batch is done, so a queue never has two batches in flight and
 * its series arrive in order (see remote_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "remote_int.h"

/* A sender keeps its compressed-body buffer between batches up to this size (a batch
 * of 2000 service series is about 45 KB compressed, of kube-state-metrics series 100 to
 * 450 KB). */
#define COMP_KEEP_BYTES (256u << 10)
/* A sender with nothing queued sleeps until a record comes (rw_queued), a reshard, a
 * spill or a stop wakes it; this only bounds the sleep should a wakeup ever be missed.
 * It woke every second before: on a sidecar, a measurable share of its CPU. */
#define IDLE_WAIT_MS 30000
/* While spilling, records go to disk a whole batch at a time or after this long at the
 * latest: what kill -9 may lose on top of a scrape (README, What is guaranteed). */
#define SPILL_DELAY_MS 1000

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

/* ---- HTTP ------------------------------------------------------------------ */

static size_t on_resp(char *p, size_t size, size_t n, void *ud)
{
    struct ss_buf *b = ud;
    size_t len = size * n;
    if (b->len < MAX_ERROR_BODY)
        ss_buf_append(b, p, len < MAX_ERROR_BODY - b->len ? len : MAX_ERROR_BODY - b->len);
    return len;
}

/* Abort a request after the shutdown deadline. A sender's request is also aborted when
 * the remote is spilling and either the batch has been in flight for SPILL_AFTER_MS or
 * memory is over max_memory_bytes (the scrape thread could not spill enough because the
 * rest is in queues with a batch in flight): a receiver that hangs must not keep the
 * batch's queues busy for a whole remote_timeout, because a busy queue cannot be
 * spilled (its order on disk would break), and memory would fill to the drop
 * threshold. The batch itself then goes to disk (at least once: the receiver may have
 * taken it). */
static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct rw_remote *r = ud;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&r->hard_stop) ? 1 : 0;
}

static int sender_progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct sender *sd = ud;
    struct rw_remote *r = sd->r;
    (void)a, (void)b, (void)c, (void)d;
    if (atomic_load(&r->hard_stop) || atomic_load(&sd->kick))
        return 1;
    int64_t start = atomic_load(&sd->send_start_mono);
    return r->dq && atomic_load(&r->spill) && !atomic_load(&r->disk_broken) && start &&
           (ss_mono_ms() - start >= SPILL_AFTER_MS || atomic_load(&r->queue_bytes) > r->mem_bound);
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
    struct curl_slist *hl = NULL;
    char line[256];
    int rc = httpc_add_header(&hl, "Content-Encoding: snappy");
    if (!rc)
        rc = httpc_add_header(&hl, "Content-Type: application/x-protobuf");
    if (!rc)
        rc = httpc_add_header(&hl, "X-Prometheus-Remote-Write-Version: 0.1.0");
    if (!rc && attempt > 0) {
        snprintf(line, sizeof line, "Retry-Attempt: %d", attempt);
        rc = httpc_add_header(&hl, line);
    }
    /* the configured headers and Authorization; password and credentials files are
     * read now, for every attempt, as scraping reads them (a failure is retried) */
    if (!rc && (rc = httpc_headers(&c->http, &hl, neterr, neterrlen)) != 0) {
        httpc_headers_free(hl);
        return 0;
    }
    if (!rc && c->signer.sign) {
        rc = c->signer.sign(c->signer.ud, "POST", c->url, comp->data, comp->len, httpc_add_header, &hl);
        if (rc) {
            httpc_headers_free(hl);
            snprintf(neterr, neterrlen, "signing failed: %s", ss_strerror(rc));
            return 0;
        }
    }
    if (rc) {
        httpc_headers_free(hl);
        snprintf(neterr, neterrlen, "out of memory");
        return 0;
    }
    ss_buf_reset(resp);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, comp->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)comp->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_resp);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = ss_mono_seconds();
    CURLcode res = curl_easy_perform(e);
    double dt = ss_mono_seconds() - t0;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    httpc_headers_free(hl);
    atomic_fetch_add(&r->send_busy_us, (uint64_t)(dt * 1e6));
    atomic_fetch_add(&r->hist_sum_us, (uint64_t)(dt * 1e6));
    size_t b = 0;
    while (b < RW_NBUCKETS && dt > rw_send_buckets[b])
        b++;
    atomic_fetch_add(&r->hist[b], 1);
    if (res != CURLE_OK) {
        if (res == CURLE_ABORTED_BY_CALLBACK)
            snprintf(neterr, neterrlen, "request cut short to spill to disk or shut down");
        else
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

/* A sender's sockets are recorded so that rw_kick_sender can shut one down; sock_mu
 * keeps the descriptor from being closed (and reused) while it does. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct sender *sd = ud;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD) {
        pthread_mutex_lock(&sd->sock_mu);
        sd->sock = fd;
        pthread_mutex_unlock(&sd->sock_mu);
    }
    return fd;
}

static int close_socket(void *ud, curl_socket_t fd)
{
    struct sender *sd = ud;
    pthread_mutex_lock(&sd->sock_mu);
    if (sd->sock == fd)
        sd->sock = CURL_SOCKET_BAD;
    int rc = close(fd);
    pthread_mutex_unlock(&sd->sock_mu);
    return rc;
}

void rw_kick_sender(struct sender *sd)
{
    if (atomic_exchange(&sd->kick, true))
        return;
    pthread_mutex_lock(&sd->sock_mu);
    if (sd->sock != CURL_SOCKET_BAD)
        shutdown(sd->sock, SHUT_RDWR); /* the request fails now, not at the next progress call */
    pthread_mutex_unlock(&sd->sock_mu);
}

CURL *rw_new_easy(struct rw_remote *r, struct sender *sd)
{
    const struct rw_config *c = &r->cfg;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    /* TLS, proxy and redirects once per handle; header lines per request (post) */
    char err[300];
    if (httpc_setup(e, &c->http, NULL, err, sizeof err) != 0) {
        ss_error("remotewrite", "remote=%s: %s", r->name, err);
        curl_easy_cleanup(e);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_USERAGENT, r->user_agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->remote_timeout_ms > 0 ? c->remote_timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    if (sd) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, sender_progress_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, sd);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, sd);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, sd);
    } else {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
    }
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

static bool retryable(struct rw_remote *r, long status)
{
    return status == 0 || status >= 500 || status == 408 || (status == 429 && r->cfg.queue.retry_on_http_429);
}

/* Sleep up to ms, waking early on hard stop, and on spill mode when until_spill. */
void rw_backoff_sleep(struct rw_remote *r, pthread_mutex_t *mu, pthread_cond_t *cv, int64_t ms,
                      bool until_spill)
{
    int64_t until = ss_mono_ms() + ms;
    pthread_mutex_lock(mu);
    while (!atomic_load(&r->hard_stop) && !(until_spill && atomic_load(&r->spill))) {
        int64_t left = until - ss_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = ss_mono_deadline_ms(left < 200 ? left : 200);
        pthread_cond_timedwait(cv, mu, &ts);
    }
    pthread_mutex_unlock(mu);
}

enum send_result rw_send_with_retry(struct rw_remote *r, CURL *e, struct ss_buf *comp, struct ss_buf *resp,
                                    uint64_t samples, int64_t max_ts, bool *backing_off, pthread_mutex_t *mu,
                                    pthread_cond_t *cv, const char *what, bool may_spill)
{
    int64_t first_failure = 0;
    const struct rw_queue_config *q = &r->cfg.queue;
    int64_t backoff = q->min_backoff_ms > 0 ? q->min_backoff_ms : 30;
    int64_t max_backoff = q->max_backoff_ms > 0 ? q->max_backoff_ms : 5000;
    bool expired_retry_done = false;
    for (int attempt = 0;; attempt++) {
        if (atomic_load(&r->hard_stop))
            return SEND_ABORTED;
        /* Checked before the first attempt too: a batch that waited in the queue
         * (or on disk) past the limit is not sent. The batch's newest sample decides,
         * so a batch partly past the limit still goes. */
        if (q->sample_age_limit_ms > 0 && max_ts > 0 && ss_now_ms() - max_ts > q->sample_age_limit_ms) {
            ss_warn("remotewrite", "remote=%s dropping %s of %llu samples older than sample_age_limit",
                    r->name, what, (unsigned long long)samples);
            return SEND_TOO_OLD;
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
        /* In spill mode the batch goes to the disk queue, or, when the disk failed,
         * waits behind its backlog (the caller): either way not sent from here again. */
        bool broken = atomic_load(&r->disk_broken);
        if (may_spill && r->dq &&
            (atomic_load(&r->spill) || (!broken && ss_mono_ms() - first_failure >= SPILL_AFTER_MS))) {
            if (!broken && status) /* (a disk write error was logged by the disk queue) */
                ss_warn("remotewrite", "remote=%s url=%s %s failing (HTTP %ld %s): spilling to disk", r->name,
                        r->cfg.url, what, status, body);
            else if (!broken)
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
        rw_backoff_sleep(r, mu, cv, sleep_ms, may_spill && r->dq);
        backoff = backoff * 2 > max_backoff ? max_backoff : backoff * 2;
    }
}

/* ---- sender thread ------------------------------------------------------------- */

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts = ss_mono_deadline_ms(ms);
    pthread_cond_timedwait(cv, mu, &ts);
}

void *rw_sender_main(void *arg)
{
    struct sender *sd = arg;
    struct rw_remote *r = sd->r;
    const int j = sd->idx;
    const size_t max_n =
        r->cfg.queue.max_samples_per_send > 0 ? (size_t)r->cfg.queue.max_samples_per_send : 2000;
    const int64_t deadline =
        r->cfg.queue.batch_send_deadline_ms > 0 ? r->cfg.queue.batch_send_deadline_ms : 5000;
    CURL *e = rw_new_easy(r, sd);
    /* The batch is the queue segments themselves (rw_queue_take_parts), compressed in
     * 64 KiB blocks, through `scratch` only where a block spans segments: a body copy
     * of the whole batch held 0.5-2 MB per sender for good, and copying it under qmu
     * held up the scrape thread. */
    struct rw_batch batch = {0};
    struct ss_buf scratch, comp, resp;
    ss_buf_init(&scratch, 0);
    ss_buf_init(&comp, 0);
    ss_buf_init(&resp, MAX_ERROR_BODY + 1);
    int *taken_q = calloc((size_t)r->nqueues, sizeof *taken_q);
    bool backing_off = false;
    int cursor = j;

    pthread_mutex_lock(&r->qmu);
    for (;;) {
        if (atomic_load(&r->hard_stop) || !taken_q)
            break;
        int n = atomic_load(&r->nsenders);
        if (j >= n)
            break; /* fewer senders wanted: this one goes */
        /* the scrape thread waiting for room (rw_remote_wait_room) takes what is there:
         * a big scrape spread over more queues than the pacing mark holds batches left
         * no sender a whole one, and nothing moved until its wait timed out */
        bool flushing = atomic_load(&r->stopping) || (r->dq && atomic_load(&r->spill)) || r->room_waiters > 0;
        uint64_t avail = 0;
        int64_t oldest = INT64_MAX;
        bool busy_elsewhere = false;
        for (int q = j; q < r->nqueues; q += n) {
            struct rwq *Q = &r->queues[q];
            if (Q->busy) {
                busy_elsewhere = true;
                continue;
            }
            if (!Q->samples)
                continue;
            avail += Q->samples;
            if (Q->marks[Q->marks_head].enq_mono < oldest)
                oldest = Q->marks[Q->marks_head].enq_mono;
        }
        int64_t now = ss_mono_ms();
        if (!avail || (avail < max_n && !flushing && now - oldest < deadline)) {
            if (!avail && atomic_load(&r->stopping) && !busy_elsewhere)
                break; /* shutdown: everything of ours is delivered */
            int64_t wait = avail ? deadline - (now - oldest) : IDLE_WAIT_MS;
            if (r->dq && atomic_load(&r->spill) && wait > SPILL_DELAY_MS)
                wait = SPILL_DELAY_MS;
            /* Woken by the scrape thread only when a whole batch is there (or, with
             * nothing queued, at the first record, which starts the deadline): a wakeup
             * per scrape that found too little cost a context switch each. Spilling,
             * only for a whole batch too, or at the latest after this wait: a wakeup
             * at the first record wrote tiny disk records, and the replayer, which
             * merges up to 8 per request, fell behind the fresh data. */
            sd->need = atomic_load(&r->stopping)         ? 1
                       : r->dq && atomic_load(&r->spill) ? max_n
                       : avail                           ? max_n - avail
                                                         : 1; /* not a room wait's flushing */
            sd->pending = 0;
            timed_wait(&sd->cv, &r->qmu, wait < 1 ? 1 : wait > IDLE_WAIT_MS ? IDLE_WAIT_MS : wait);
            sd->need = 0;
            continue;
        }
        /* Take up to max_n records, from queue to queue, starting where the last batch
         * stopped so that every queue gets its turn. */
        size_t taken = 0;
        int ntq = 0, nq = (r->nqueues - j + n - 1) / n; /* the queues j, j+n, j+2n, ... */
        int64_t max_ts = 0;
        int start = cursor >= j && nq ? ((cursor - j) / n) % nq : 0;
        for (int k = 0; k < nq && taken < max_n; k++) {
            int q = j + ((start + k) % nq) * n;
            struct rwq *Q = &r->queues[q];
            if (Q->busy || !Q->samples)
                continue;
            int64_t ts = 0;
            size_t got = rw_queue_take_parts(r, Q, max_n - taken, &batch, &ts);
            if (!got)
                continue;
            taken += got;
            if (ts > max_ts)
                max_ts = ts;
            Q->busy = true;
            Q->owner = j;
            taken_q[ntq++] = q;
            cursor = q + n;
        }
        atomic_store(&sd->kick, false); /* a kick is for the batch in flight when it came */
        if (!taken) { /* records were there but none could be taken (no memory): no spin */
            timed_wait(&sd->cv, &r->qmu, 100);
            continue;
        }
        pthread_mutex_unlock(&r->qmu);

        enum send_result res = SEND_SPILL;
        ss_buf_reset(&comp); /* rw_snappy_compress_parts appends */
        int crc = rw_snappy_compress_parts(batch.parts, batch.nparts, &scratch, &comp);
        pthread_mutex_lock(&r->qmu);
        rw_batch_release(r, &batch); /* compressed: the segments go back at once */
        pthread_mutex_unlock(&r->qmu);
        if (crc) {
            atomic_fetch_add(&r->dropped[DROP_ENCODE], taken);
            res = SEND_OK;
            taken = 0;
        } else {
            atomic_store(&sd->send_n, taken);
            atomic_store(&sd->send_start_mono, ss_mono_ms());
            if (!r->dq || !atomic_load(&r->spill))
                res = rw_send_with_retry(r, e, &comp, &resp, taken, max_ts, &backing_off, &r->qmu, &sd->cv,
                                         "batch", true);
            atomic_store(&sd->send_start_mono, 0);
            while (r->dq && (res == SEND_SPILL || res == SEND_ABORTED)) {
                bool was_spilling = atomic_load(&r->spill);
                if (!atomic_load(&r->disk_broken) && rw_spill_batch(r, &comp, taken, max_ts) == 0) {
                    res = SEND_SPILL;
                    /* the other senders flush to disk now, not at their batch deadline:
                     * what kill -9 may lose is bounded by SPILL_DELAY_MS */
                    if (!was_spilling && atomic_load(&r->spill))
                        rw_wake_senders(r);
                    break;
                }
                /* The disk failed. While it still holds a backlog (spill mode) the batch
                 * waits here, in memory (its queues stay busy, so nothing of theirs moves
                 * either), until the replayer has delivered the backlog or the disk takes
                 * appends again: sent now, it would overtake older samples of its series
                 * on disk, which the receiver would reject as out of order. Without a
                 * backlog it is sent from memory. */
                if (atomic_load(&r->spill) && !atomic_load(&r->hard_stop)) {
                    rw_backoff_sleep(r, &r->qmu, &sd->cv, 200, false);
                    continue;
                }
                /* a kick (spill this batch now) from before the disk failed is void */
                atomic_store(&sd->kick, false);
                res = rw_send_with_retry(r, e, &comp, &resp, taken, max_ts, &backing_off, &r->qmu, &sd->cv,
                                         "batch", false);
                break;
            }
            if (res == SEND_OK) {
                atomic_fetch_add(&r->samples_sent, taken);
                atomic_fetch_add(&r->bytes_sent, comp.len);
                rw_atomic_max(&r->highest_ts_sent, max_ts);
            } else if (res == SEND_DROPPED || res == SEND_TOO_OLD) {
                atomic_fetch_add(&r->samples_failed, taken);
                atomic_fetch_add(&r->dropped[res == SEND_TOO_OLD ? DROP_TOO_OLD : DROP_HTTP_4XX], taken);
            } else if (res == SEND_ABORTED) {
                /* aborted at the shutdown deadline and not on disk (none, or it failed):
                 * still unsent, counted (as dropped for "shutdown") by rw_remote_shutdown */
                atomic_fetch_add(&r->queue_samples, taken);
            }
        }
        /* A batch of long series (kube-state-metrics' container and image labels: up to
         * 450 KB compressed) doubled the body buffer past what most batches need: give
         * it back now instead of holding it until the next such batch. */
        if (comp.cap > COMP_KEEP_BYTES)
            ss_buf_free(&comp);
        pthread_mutex_lock(&r->qmu);
        n = atomic_load(&r->nsenders);
        for (int k = 0; k < ntq; k++) {
            r->queues[taken_q[k]].busy = false;
            if (n > 0 && taken_q[k] % n != j)
                rw_wake_owner(r, taken_q[k]); /* its new sender may be waiting for it */
        }
    }
    sd->alive = false;
    pthread_mutex_unlock(&r->qmu);
    if (e)
        curl_easy_cleanup(e);
    free(taken_q);
    rw_batch_free(&batch);
    ss_buf_free(&scratch);
    ss_buf_free(&comp);
    ss_buf_free(&resp);
    return NULL;
}
