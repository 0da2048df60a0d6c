/* spill.c: durable delivery through the disk queue (storage_dir set).
 *
 * A remote enters spill mode when a batch has failed for SPILL_AFTER_MS or the queued
 * data reaches max_memory_bytes: from then on every sender writes what it takes,
 * including the batch it was retrying, to the remote's disk queue instead of sending
 * it, and a replayer thread sends the disk records in order. When the disk queue is
 * empty the remote leaves spill mode and the senders send from memory again. Spilling
 * and leaving spill mode happen under one lock, and a series queue has at most one
 * batch in flight, so every series keeps timestamp order at the receiver (a Prometheus
 * receiver rejects out-of-order samples): the backlog is always delivered before
 * fresher samples of the same series. If the disk stops taking appends while it holds
 * a backlog, the senders hold their batches in memory until the replayer has delivered
 * it (sender.c), for the same reason. In normal operation nothing is written to disk.
 * At shutdown, what cannot be delivered before the deadline is written to disk and
 * replayed at the next start. */
#include <stdlib.h>

#include "remote_int.h"

/* Append one compressed batch to the disk queue and enter spill mode, atomically with
 * respect to the replayer leaving it. Returns 0, or SS_EIO when the disk failed. */
int rw_spill_batch(struct rw_remote *r, const struct ss_buf *comp, uint64_t samples, int64_t max_ts)
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

/* The replayer sends consecutive disk records together, up to REPLAY_MERGE of them (at
 * most REPLAY_MERGE x max_samples_per_send samples, REPLAY_MAX_RAW bytes decoded) in one
 * request: a WriteRequest is a sequence of TimeSeries, so the decoded records
 * concatenated are one valid request, and every series keeps its order inside it. One
 * request per record would cap replay at one batch per round trip, below what a remote
 * with any latency needs to drain a backlog while the fresh data also goes to disk
 * behind it. A merged request the receiver rejects (4xx) is sent again record by record,
 * so only the records it rejects are dropped. */
#define REPLAY_MERGE   8
#define REPLAY_MAX_RAW (16u << 20)

/* Append the records after the first (already in `first`, compressed) to one request
 * in `out` (compressed). Returns the records merged (1 = `first` alone, `out` unused)
 * and adds their samples and timestamps. */
static int replay_merge(struct rw_remote *r, const struct ss_buf *first, struct ss_buf *out,
                        struct ss_buf *raw, struct ss_buf *rec, uint64_t *samples, int64_t *last_ts)
{
    const size_t per_send =
        r->cfg.queue.max_samples_per_send > 0 ? (size_t)r->cfg.queue.max_samples_per_send : 2000;
    int n = 1;
    ss_buf_reset(raw);
    while (n < REPLAY_MERGE && *samples + per_send <= (uint64_t)REPLAY_MERGE * per_send) {
        int64_t f, l;
        uint32_t k;
        ss_buf_reset(rec);
        if (rw_diskq_next(r->dq, rec, &f, &l, &k) != 0)
            break;
        if (n == 1 && rw_snappy_decompress(first->data, first->len, REPLAY_MAX_RAW, raw) != 0)
            goto undo;
        if (rw_snappy_decompress(rec->data, rec->len, REPLAY_MAX_RAW - raw->len, raw) != 0)
            goto undo;
        *samples += k;
        if (l > *last_ts)
            *last_ts = l;
        n++;
        continue;
    undo: /* the record cannot join (too big, or damaged): send what we have, then it alone */
        rw_diskq_rewind(r->dq);
        for (int i = 0; i < n; i++) {
            int64_t f2, l2;
            uint32_t k2;
            ss_buf_reset(rec);
            rw_diskq_next(r->dq, rec, &f2, &l2, &k2);
        }
        break;
    }
    if (n > 1) {
        ss_buf_reset(out);
        if (rw_snappy_compress(raw->data, raw->len, out) != 0)
            return -1;
    }
    return n;
}

/* Sends the disk queue's records in order; leaves spill mode when it is empty. */
void *rw_replayer_main(void *arg)
{
    struct rw_remote *r = arg;
    CURL *e = rw_new_easy(r, NULL);
    struct ss_buf body, resp, merged, raw, rec;
    ss_buf_init(&body, 0);
    ss_buf_init(&resp, MAX_ERROR_BODY + 1);
    ss_buf_init(&merged, 0);
    ss_buf_init(&raw, 0);
    ss_buf_init(&rec, 0);
    int one_by_one = 0; /* records to send alone after a merged request was rejected */
    int64_t last_sync = ss_mono_ms(), last_broken_check = ss_mono_ms();
    int64_t fsync_every = r->cfg.fsync_interval_ms > 0 ? r->cfg.fsync_interval_ms : 1000;
    bool bo = false;
    while (!atomic_load(&r->hard_stop)) {
        int64_t now = ss_mono_ms();
        if (now - last_sync >= fsync_every) {
            rw_diskq_sync(r->dq);
            last_sync = now;
        }
        if (!atomic_load(&r->disk_broken)) {
            last_broken_check = now; /* 30 s from the failure, not from the last retry */
        } else if (now - last_broken_check > 30000) {
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
            rw_backoff_sleep(r, &r->mgr_mu, &r->mgr_cv, 100, false);
            continue;
        }
        uint64_t samples = n;
        int nrec = 1;
        if (one_by_one > 0)
            one_by_one--;
        else
            nrec = replay_merge(r, &body, &merged, &raw, &rec, &samples, &last);
        if (nrec < 0) { /* out of memory merging: send the first record alone */
            rw_diskq_rewind(r->dq);
            one_by_one = 1;
            continue;
        }
        const struct ss_buf *req = nrec > 1 ? &merged : &body;
        enum send_result res = rw_send_with_retry(r, e, (struct ss_buf *)req, &resp, samples, last, &bo,
                                                  &r->mgr_mu, &r->mgr_cv, "replayed batch", false);
        if (res == SEND_DROPPED && nrec > 1) {
            rw_diskq_rewind(r->dq); /* find the records the receiver rejects, one by one */
            one_by_one = nrec;
            continue;
        }
        if (res == SEND_OK) {
            rw_diskq_ack(r->dq);
            atomic_fetch_add(&r->samples_sent, samples);
            atomic_fetch_add(&r->replayed_samples, samples);
            atomic_fetch_add(&r->bytes_sent, req->len);
            rw_atomic_max(&r->highest_ts_sent, last);
        } else if (res == SEND_DROPPED || res == SEND_TOO_OLD) {
            rw_diskq_ack(r->dq);
            atomic_fetch_add(&r->samples_failed, samples);
            atomic_fetch_add(&r->dropped[res == SEND_TOO_OLD ? DROP_TOO_OLD : DROP_HTTP_4XX], samples);
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
    ss_buf_free(&merged);
    ss_buf_free(&raw);
    ss_buf_free(&rec);
    return NULL;
}

void rw_spill_queues(struct rw_remote *r)
{
    if (!r->dq)
        return;
    const size_t max_n =
        r->cfg.queue.max_samples_per_send > 0 ? (size_t)r->cfg.queue.max_samples_per_send : 2000;
    struct ss_buf body, comp;
    ss_buf_init(&body, 0);
    ss_buf_init(&comp, 0);
    pthread_mutex_lock(&r->qmu);
    for (int i = 0; i < r->nqueues; i++) {
        struct rwq *q = &r->queues[i];
        while (q->samples) {
            int64_t ts = 0;
            ss_buf_reset(&body);
            ss_buf_reset(&comp);
            size_t n = rw_queue_take(r, q, max_n, &body, &ts);
            if (!n || rw_snappy_compress(body.data, body.len, &comp) != 0 ||
                rw_spill_batch(r, &comp, n, ts) != 0) {
                if (n) /* not written: still unsent, counted by rw_remote_shutdown */
                    atomic_fetch_add(&r->queue_samples, n);
                goto out;
            }
        }
    }
out:
    pthread_mutex_unlock(&r->qmu);
    ss_buf_free(&body);
    ss_buf_free(&comp);
}
