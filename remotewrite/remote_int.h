/* remote_int.h: what the files of one remote_write endpoint share. Not a public header.
 *
 *   queue.c          the scrape-thread side: encode into staging, commit into the series
 *                    queues, the memory bound (drop oldest or spill)
 *   sender.c         sender threads: take a batch, compress, sign, POST, retry
 *   spill.c          the disk queue: spilling batches and replaying them in order
 *   remote.c         lifecycle, resharding (the manager thread) and metadata
 *   remote_metrics.c self-metrics
 *
 * The shape. A remote has a fixed number of series queues (max_shards of them); a
 * series always goes to the same queue (queue_of in queue.c, a function of its
 * labels), for the remote's whole life. A variable number of sender threads (the
 * "shards" of Prometheus' vocabulary, 1..max_shards) serve them: sender j serves
 * the queues q with q % nsenders == j and may take records from several of them into
 * one request. A queue with a batch in flight is `busy` and no other sender takes
 * from it until that batch is delivered, dropped or spilled, so each series reaches
 * the receiver in order, and changing the number of senders needs no draining: a new
 * sender starts on its queues at once, backlog included. */
#ifndef REMOTE_INT_H
#define REMOTE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "remotewrite.h"

/* v as a protobuf / snappy varint (little-endian base 128) at p; returns the byte
 * after it. Shared by the encoder (wire.c) and the snappy block preamble (snappy.c). */
static inline uint8_t *rw_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

#define MAX_ERROR_BODY    1024
#define NSTATUS           600
#define SPILL_AFTER_MS    1000
#define DEFAULT_MEM_BOUND (64ULL << 20)
#define FAILING_MS        5000 /* a remote failed this recently: no growth, no pacing */
/* Pacing (rw_remote_wait_room): a big scrape waits while more than PACE_RECORD_B bytes
 * per sample of max(PACE_BATCHES, senders) batches of max_samples_per_send are queued
 * (a batch for each sender, so that each still sends whole ones), within
 * [PACE_MIN_BYTES, max_memory_bytes / 2] (rw_pace_mark). At the defaults one sender
 * waits at PACE_MIN_BYTES: 640 KiB, three batches of 2000 service samples (~100 bytes)
 * or one and a quarter of kube-state-metrics' (~260); while the scrape waits, senders
 * take part batches too, so bigger records only make smaller requests. The mark was 1
 * MiB (two batches of 256-byte records) before: for one 100k-series target that was
 * 0.5-0.8 MB of peak RSS, and no CPU saved (README, Performance). */
#define PACE_BATCHES   1
#define PACE_RECORD_B  256
#define PACE_MIN_BYTES (640ULL << 10)

enum drop_reason {
    DROP_QUEUE_FULL,
    DROP_HTTP_4XX,
    DROP_TOO_OLD,
    DROP_SHUTDOWN,
    DROP_ENCODE,
    DROP_DISK_ERROR,
    DROP_NREASONS
};
extern const char *const rw_drop_reason_names[DROP_NREASONS];

#define RW_NBUCKETS 13
extern const double rw_send_buckets[RW_NBUCKETS];

#define RW_SPARE_SEGMENTS 16

/* One segment of a queue: the records of exactly one commit, in a buffer of its own.
 * A big commit's staging buffer becomes the segment as it is (no copy); a small one is
 * copied into a buffer of its size. Commits are never merged: each keeps its own
 * enq_mono, which the memory bound needs to drop the oldest commit first. */
struct chunk_mark {
    struct ss_buf b;
    uint64_t cum; /* the queue's cum_in just past the segment */
    int64_t max_ts;
    int64_t enq_mono; /* when it was queued */
};

/* One series queue: encoded TimeSeries records, oldest first, in segments. Guarded by
 * r->qmu. */
struct rwq {
    size_t head; /* consumed prefix of marks[marks_head].b */
    uint64_t samples;
    struct chunk_mark *marks;
    size_t nmarks, marks_cap, marks_head;
    /* records ever committed and taken or dropped: a batch takes whole segments by
     * these counts and walks records only in its last segment */
    uint64_t cum_in, cum_out;
    bool busy; /* a batch taken from this queue is in flight */
    int owner; /* while busy: the sender that has it */
};

/* One sender thread slot. `alive` is guarded by r->qmu; `started` by the thread that
 * spawns and joins (the manager, or shutdown once the manager has stopped). */
struct sender {
    struct rw_remote *r;
    int idx;
    pthread_t thr;
    bool started;
    bool alive;
    pthread_cond_t cv; /* with r->qmu */
    /* While it waits for more records (qmu): the samples it needs for a whole batch
     * (1 when it has none: the first arms its batch_send_deadline; 0 = wake it for
     * any), and the samples queued to its queues since it began waiting. */
    uint64_t need, pending;
    /* the batch being sent: start time and size, for the time-per-sample estimate */
    _Atomic int64_t send_start_mono;
    _Atomic uint64_t send_n;
    /* the request's socket, so that the scrape thread can cut a hanging request short
     * when the remote is spilling (rw_kick_sender) */
    pthread_mutex_t sock_mu;
    curl_socket_t sock;
    atomic_bool kick;
};

struct meta_entry {
    char *family, *help, *unit;
    enum scrape_metric_type type;
};

struct rw_remote {
    struct rw_config cfg; /* strings point into `owned`, cfg.http's into `http` */
    struct ss_arena owned;
    struct httpc_config *http; /* owned copy of the http_config */
    char name[128];
    char user_agent[128];
    const char *mname, *murl; /* name and URL escaped for label values (in `owned`) */

    /* queues and senders */
    pthread_mutex_t qmu;
    struct rwq *queues;
    int nqueues;            /* = max_shards */
    struct sender *senders; /* nqueues slots */
    atomic_int nsenders;    /* senders wanted now; written under qmu */
    atomic_int desired_shards;
    uint64_t mem_bound; /* max_memory_bytes */

    /* scrape-thread staging, one buffer per queue, moved to its queue at the end of a
     * scrape or when it reaches STAGE_FLUSH_BYTES (queue.c) */
    struct ss_buf *stage;
    /* segment buffers taken from the queues, kept for the next staging buffers (qmu):
     * a malloc and a cross-thread free per segment cost more than the copy they
     * replaced */
    struct ss_buf spare[RW_SPARE_SEGMENTS];
    int nspare;
    uint64_t *stage_samples;
    int64_t *stage_max_ts;
    /* the queues whose stage took a record since the last commit of all (in the
     * order of their first record), so that the commit at the end of a scrape visits
     * those, not every queue; staged_in marks them */
    int *staged;
    int nstaged;
    uint64_t staged_bytes; /* in the stages, since the last commit of every stage */
    unsigned char *staged_in;
    struct ss_labels work;
    int64_t last_drop_log; /* rate limit of the queue_full log */
    uint64_t drops_unlogged;

    atomic_bool stopping;  /* shutdown: flush everything now */
    atomic_bool hard_stop; /* shutdown deadline passed */
    int64_t deadline_mono;

    bool started; /* rw_remote_start ran: disk queue opened, threads running */
    pthread_t mgr;
    bool mgr_started;
    pthread_mutex_t mgr_mu;
    pthread_cond_t mgr_cv;
    /* the manager sleeps LIGHT_TICK_MS (the load is a small share of one sender): a
     * commit that leaves more than the queue capacity queued wakes it (mgr_mu, mgr_cv) */
    atomic_bool mgr_light;

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
    _Atomic uint64_t hist[RW_NBUCKETS + 1];
    _Atomic uint64_t hist_sum_us;
    _Atomic int64_t last_failure_mono;
    _Atomic uint64_t queue_samples; /* queued in memory, not in flight */
    _Atomic uint64_t queue_bytes;   /* their encoded bytes: what max_memory_bytes bounds */

    /* pacing: the scrape thread waits in rw_remote_wait_room until queue_bytes is at
     * most pace_bytes; senders wake it (room_cv, qmu) as they take records */
    _Atomic uint64_t pace_bytes; /* rw_pace_mark, as of the last wait */
    pthread_cond_t room_cv;      /* on CLOCK_MONOTONIC */
    int room_waiters; /* qmu */
    _Atomic uint64_t pace_waits, pace_wait_us, pace_timeouts;

    /* durable delivery */
    struct rw_diskq *dq;
    pthread_mutex_t spill_mu; /* orders spill-mode changes against disk appends */
    atomic_bool spill;
    atomic_bool disk_broken;
    pthread_t replayer;
    bool replayer_started;
    _Atomic uint64_t spilled_samples, replayed_samples;
};

/* ---- shared helpers ------------------------------------------------------------- */

void rw_atomic_max(_Atomic int64_t *a, int64_t v);
uint64_t rw_pace_mark(const struct rw_remote *r);

/* queue.c */
/* Length of the TimeSeries record at p (tag, varint length, payload), or 0 when it
 * is not complete within avail. */
size_t rw_record_len(const char *p, size_t avail);
/* Free every segment of q (qmu held, or the remote is being freed). */
void rw_queue_clear(struct rwq *q);
/* Log the queue_full drops that the 10 s log window held back (the scrape thread has
 * stopped committing: at shutdown). */
void rw_log_pending_drops(struct rw_remote *r);
/* Free the spare segment buffers (the remote is being freed). */
void rw_spares_free(struct rw_remote *r);
/* Take up to max_n records from the head of q into body (qmu held). Returns the
 * records taken; *max_ts gets their newest timestamp (an estimate: per commit). */
size_t rw_queue_take(struct rw_remote *r, struct rwq *q, size_t max_n, struct ss_buf *body, int64_t *max_ts);
/* A sender's batch taken without copying (rw_queue_take_parts): the queue segments it
 * took whole, moved out of their queues, and a copy of the part of a segment it took
 * (which stays queued), all owned; parts say where its records are, in order. */
struct rw_batch {
    struct ss_buf *seg;
    size_t nseg, segcap;
    struct ss_str *parts;
    size_t nparts, partcap;
    size_t bytes;
};
/* As rw_queue_take, appending to b (qmu held). */
size_t rw_queue_take_parts(struct rw_remote *r, struct rwq *q, size_t max_n, struct rw_batch *b,
                           int64_t *max_ts);
/* The batch's segments go back to the spares or are freed (qmu held); b is empty after. */
void rw_batch_release(struct rw_remote *r, struct rw_batch *b);
void rw_batch_free(struct rw_batch *b); /* after release */
/* Wake the sender that serves queue qi now (qmu held). */
void rw_wake_owner(struct rw_remote *r, int qi);
/* n samples were queued to queue qi: wake its sender if that completes what it waits
 * for (qmu held). */
void rw_queued(struct rw_remote *r, int qi, uint64_t n);
/* After a commit: wake a manager on a light tick when more than the queue capacity is
 * queued (remote.c, LIGHT_TICK_MS). Takes mgr_mu; call without qmu. */
void rw_wake_light_manager(struct rw_remote *r);
/* Wake every sender (takes qmu). */
void rw_wake_senders(struct rw_remote *r);

/* sender.c */
/* SEND_DROPPED: rejected by the receiver (4xx); SEND_TOO_OLD: past sample_age_limit. */
enum send_result { SEND_OK, SEND_DROPPED, SEND_TOO_OLD, SEND_ABORTED, SEND_SPILL };
/* A handle with the remote's TLS, proxy and timeouts; sd: the sender that will use it
 * (its requests are aborted to spill, see sender.c), or NULL. */
CURL *rw_new_easy(struct rw_remote *r, struct sender *sd);
/* Make a sender give up the batch it has in flight now (spill mode, memory over the
 * bound): its request fails at once and the batch goes to disk. */
void rw_kick_sender(struct sender *sd);
void rw_backoff_sleep(struct rw_remote *r, pthread_mutex_t *mu, pthread_cond_t *cv, int64_t ms,
                      bool until_spill);
/* Deliver one compressed body with retries. may_spill: a sender's batch, which goes to
 * the disk queue (SEND_SPILL) instead of being retried once the remote is spilling or
 * the batch has failed for SPILL_AFTER_MS. `what` names it in logs. */
enum send_result rw_send_with_retry(struct rw_remote *r, CURL *e, struct ss_buf *comp, struct ss_buf *resp,
                                    uint64_t samples, int64_t max_ts, bool *backing_off, pthread_mutex_t *mu,
                                    pthread_cond_t *cv, const char *what, bool may_spill);
void *rw_sender_main(void *arg);

/* spill.c */
/* Append one compressed batch to the disk queue and enter spill mode. Returns 0, or
 * SS_EIO when the disk failed (the caller keeps the batch). */
int rw_spill_batch(struct rw_remote *r, const struct ss_buf *comp, uint64_t samples, int64_t max_ts);
/* After the senders stopped: write everything still queued to disk, queue by queue. */
void rw_spill_queues(struct rw_remote *r);
void *rw_replayer_main(void *arg);

#endif
