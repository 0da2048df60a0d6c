/* remotewrite.h: the public surface of the remotewrite module.
 *
 * Sections, in data-flow order:
 *   1. the wire format: the Prometheus remote-write 1.0 protobuf body, a hand-written
 *      streaming encoder for the hot path, snappy block compression, and a decoder
 *      (protobuf-c) for tests and disk-queue replay;
 *   2. the queue, shards and sender threads of one remote_write endpoint;
 *   3. the disk queue.
 * Requests are signed through the generic struct rw_signer hook; the collector plugs
 * the aws floor's SigV4 signer into it. Names are prefixed rw_.
 */
#ifndef REMOTEWRITE_H
#define REMOTEWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpclient.h"
#include "scrape_series.h"
#include "ss.h"

/* ======================================================================== */
/* 1. Wire format (remotewrite/wire.c, remotewrite/snappy.c)                 */
/* ======================================================================== */

/* The schema is remotewrite/remote.proto (package prometheus). A remote-write body is
 * snappy_block(WriteRequest). A serialized WriteRequest is just a concatenation of
 * records, one per repeated field element, so the encoder appends one record per
 * series (field 1) or per metadata entry (field 3) and any concatenation of records,
 * in any order, is a valid WriteRequest body. The bytes are exactly those protobuf-c
 * (and Go's prompb) produce for the same message: proto3 defaults (0.0 with all bits
 * zero, timestamp 0, empty strings, type UNKNOWN) are omitted. */

/* Stale marker (remote-write 1.0 §Stale Markers): this exact NaN, and no other use. */
#define RW_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)
double rw_stale_nan(void);
bool rw_is_stale_nan(double v); /* compares bits, not values */

/* Largest TimeSeries or MetricMetadata record body the encoder will produce: the
 * 2 GiB message limit protobuf implementations (protobuf-c, Go) enforce. */
#define RW_MAX_RECORD_BYTES ((size_t)INT32_MAX)

/* Append one WriteRequest.timeseries record: labels in the order given, then one
 * sample. The caller must pass labels sorted by name, unique, non-empty (the spec's
 * §Labels); this function does not check, because the scrape pipeline already
 * sorted them and checking on the hot path would cost a compare per label. Use
 * rw_validate_labels in tests or on untrusted input.
 * Appends nothing on error: SS_ELIMIT when out->max or RW_MAX_RECORD_BYTES would be
 * exceeded, SS_ENOMEM. Allocates only by growing out. */
int rw_encode_series(struct ss_buf *out, const struct ss_label *labels, size_t nlabels, double value,
                     int64_t timestamp_ms);

/* As rw_encode_series with nsamples samples in one record (oldest first, as the spec's
 * §Ordering requires; not checked). nsamples may be 0. */
int rw_encode_series_multi(struct ss_buf *out, const struct ss_label *labels, size_t nlabels,
                           const double *values, const int64_t *timestamps_ms, size_t nsamples);

/* As rw_encode_series, with the labels already in wire form (struct scrape_series'
 * wire_labels: ss_labels_wire_write's bytes), which are copied as they are. */
int rw_encode_series_wire(struct ss_buf *out, const void *wire_labels, size_t wire_len, double value,
                          int64_t timestamp_ms);
/* The same with those bytes in pieces (struct scrape_series' wire_parts), wire_len in
 * all; SS_EINVAL, with nothing appended, when the pieces do not add up to wire_len
 * (found while copying: a wire_len over the record limit is SS_ELIMIT first, and the
 * buffer may have grown). */
int rw_encode_series_wire_parts(struct ss_buf *out, const struct ss_str *parts, size_t nparts,
                                size_t wire_len, double value, int64_t timestamp_ms);

/* Exact number of bytes rw_encode_series_multi would append for these arguments,
 * for batching against a request-size budget. Returns 0 when the record would exceed
 * RW_MAX_RECORD_BYTES (a real record is never empty). */
size_t rw_encoded_series_size(const struct ss_label *labels, size_t nlabels, const double *values,
                              const int64_t *timestamps_ms, size_t nsamples);

/* Append one WriteRequest.metadata record. The scrape types map 1:1 onto
 * MetricMetadata.MetricType by name, as Prometheus' prompb.FromMetadataType does
 * (gaugehistogram, info and stateset keep their own values). An unknown enum value
 * returns SS_EINVAL. Appends nothing on error. */
int rw_encode_metadata(struct ss_buf *out, enum scrape_metric_type type, struct ss_str family,
                       struct ss_str help, struct ss_str unit);

/* Label-set checks of remote-write 1.0 §Labels, for tests and untrusted input:
 * at least one label, names and values non-empty, names strictly increasing in byte
 * order (so unique), a __name__ label present, names and values valid UTF-8.
 * With RW_VALIDATE_LEGACY_NAMES also the spec's name regexes: metric name
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*.
 * Returns 0, or SS_EINVAL with a static reason in *why (why may be NULL). */
#define RW_VALIDATE_LEGACY_NAMES 1u
int rw_validate_labels(const struct ss_label *labels, size_t nlabels, unsigned flags, const char **why);

/* Snappy block format (not the framed format: remote-write 1.0 requires block).
 * Both append to out and leave it unchanged on error. */
int rw_snappy_compress(const void *in, size_t n, struct ss_buf *out);
/* The same block for the concatenation of parts[0..nparts), without building it: a
 * 64 KiB block that spans parts is gathered into scratch (NULL: only when none does). */
int rw_snappy_compress_parts(const struct ss_str *parts, size_t nparts, struct ss_buf *scratch,
                             struct ss_buf *out);
/* Rejects, before allocating anything, a block whose declared length exceeds max_out
 * (SS_ELIMIT; max_out 0 = only out->max applies). Corrupt or truncated input, or a
 * block whose content disagrees with its declared length, is SS_EPARSE. */
int rw_snappy_decompress(const void *in, size_t n, size_t max_out, struct ss_buf *out);

/* ---- decoding ---------------------------------------------------------- */

struct rw_sample {
    double value;
    int64_t timestamp_ms;
};

struct rw_exemplar {
    const struct ss_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms;
};

/* One decoded series. Everything points into the rw_write_request that produced it
 * and lives until rw_write_request_free. Labels are as sent (not re-sorted). */
struct rw_series {
    const struct ss_label *labels;
    size_t nlabels;
    const struct rw_sample *samples;
    size_t nsamples;
    const struct rw_exemplar *exemplars;
    size_t nexemplars;
};

struct rw_metadata {
    enum scrape_metric_type type; /* SCRAPE_TYPE_UNKNOWN for values this build does not know */
    int32_t wire_type;            /* the MetricType number as sent */
    struct ss_str family;
    struct ss_str help;
    struct ss_str unit;
};

struct rw_write_request;

/* Decode a serialized (already decompressed) WriteRequest. Unknown fields (native
 * histograms, newer additions) are skipped. Memory use is proportional to n, so bound
 * n first (rw_snappy_decompress's max_out does). Strings are NUL-terminated copies;
 * because protobuf-c's strings are C strings, a name or value containing a NUL byte
 * reads as cut at that byte. Returns SS_EPARSE for malformed protobuf. */
int rw_decode_write_request(const void *buf, size_t n, struct rw_write_request **out);
size_t rw_write_request_nseries(const struct rw_write_request *req);
/* The walker: series i in wire order, for i < nseries; SS_ENOTFOUND past the end. */
int rw_write_request_series(const struct rw_write_request *req, size_t i, struct rw_series *out);
size_t rw_write_request_nmetadata(const struct rw_write_request *req);
int rw_write_request_metadata(const struct rw_write_request *req, size_t i, struct rw_metadata *out);
void rw_write_request_free(struct rw_write_request *req); /* NULL is a no-op */

/* ======================================================================== */
/* 2. Queue, shards and sender (remotewrite/remote.c)                       */
/* ======================================================================== */

/* One remote_write endpoint. The scrape thread appends series between begin and
 * commit (never blocking: it only copies encoded bytes under a short lock); sender
 * threads, one per shard, batch, compress, sign and POST them. A series always maps
 * to the same shard while the shard count stays the same, and a shard sends one
 * request at a time, retried until it succeeds or is dropped, so each series' samples
 * reach the receiver in timestamp order. Changing the shard count starts a new set of
 * shards that only begins sending once the old set has drained. */

struct rw_queue_config {
    /* Samples a shard may buffer before more shards are wanted (a resharding signal,
     * as in Prometheus; never a limit on one scrape). */
    int64_t capacity;
    int64_t min_shards, max_shards;
    int64_t max_samples_per_send;
    int64_t batch_send_deadline_ms;
    int64_t min_backoff_ms, max_backoff_ms;
    bool retry_on_http_429;
    int64_t sample_age_limit_ms; /* 0 = off */
    /* The memory bound: bytes of encoded series records queued in memory, over all
     * shards. Past it the oldest queued records are dropped (reason "queue_full"), or,
     * with a disk queue, spilled to disk. 0 = 64 MiB. */
    uint64_t max_memory_bytes;
};

struct rw_metadata_config {
    bool send;
    int64_t send_interval_ms;
    int64_t max_samples_per_send;
};

/* Request signing (SigV4): called on a sender thread for every attempt with the final
 * compressed body; calls add_header(ctx, "Name: value") for each header to add.
 * Returns 0, or a negative ss_err to fail this attempt (retried with backoff). */
struct rw_signer {
    int (*sign)(void *ud, const char *method, const char *url, const void *body, size_t len,
                int (*add_header)(void *ctx, const char *line), void *ctx);
    /* Optional: the receiver said the credentials expired (403); refresh once. */
    void (*credentials_expired)(void *ud);
    void *ud;
};

struct relabel_rule; /* relabel/relabel.h */

/* rw_remote_new copies every string; the write relabel rules and the signer's ud are
 * borrowed and must outlive the remote. */
struct rw_config {
    const char *name; /* for metrics and logs; default: a hash of the URL */
    const char *url;
    int64_t remote_timeout_ms;
    /* basic auth, authorization, TLS, proxy, redirects and the `headers` lines; its
     * password and credentials files are read for every request, as for scraping */
    struct httpc_config http;
    struct relabel_rule *const *write_relabel;
    size_t nwrite_relabel;
    struct rw_queue_config queue;
    struct rw_metadata_config metadata;
    struct rw_signer signer; /* sign == NULL: unsigned */
    const char *user_agent;  /* default "scrapeship/<version>" */
    /* Durable delivery: with storage_dir set, batches that cannot be sent spill to a
     * disk queue there and are replayed in order (see remote.c). */
    const char *storage_dir;
    uint64_t max_disk_bytes;   /* 0 = unbounded */
    int64_t max_disk_age_ms;   /* 0 = none */
    int64_t fsync_interval_ms; /* 0 = every spill */
};

struct rw_remote;

int rw_remote_new(const struct rw_config *cfg, struct rw_remote **out);
/* rw_remote_new in two steps. create builds the remote without touching its disk queue
 * or starting a thread (freeing it then has no effect outside the process); start opens
 * the disk queue and starts the senders. A reload creates the changed remotes first,
 * stops the ones they replace, and only then starts them: the old and the new remote
 * of one remote_write entry share its storage directory, which one process may use at
 * a time, and the old one's backlog must reach the disk queue before the new one reads
 * it. Data committed before start is queued and sent once started. */
int rw_remote_create(const struct rw_config *cfg, struct rw_remote **out);
int rw_remote_start(struct rw_remote *r);
/* Scrape-thread side. begin/append/commit bracket one scrape's series. */
void rw_remote_begin(struct rw_remote *r);
void rw_remote_append(struct rw_remote *r, const struct scrape_series *s);
void rw_remote_commit(struct rw_remote *r);
/* Pacing, from the scrape thread between parts of one big scrape: while the remote
 * delivers (no recent failure, no spill, not shutting down) and more than its pacing
 * mark is queued (2 batches of max_samples_per_send, within [1 MiB, max_memory_bytes
 * / 2]), commits what is staged and waits for its senders to take records, until
 * deadline (monotonic ms). Returns false only when the deadline passed first. */
bool rw_remote_wait_room(struct rw_remote *r, int64_t deadline_mono_ms);
void rw_remote_metadata(struct rw_remote *r, const struct scrape_parsed_meta *m);
/* Start flushing (stop accepting, send what is queued) without waiting: call it on
 * every remote first, so one dead remote does not eat the others' shutdown time. */
void rw_remote_begin_shutdown(struct rw_remote *r);
/* Flush everything queued, trying until deadline (monotonic ms), then stop every
 * thread. *unsent gets the samples that could not be delivered. */
void rw_remote_shutdown(struct rw_remote *r, int64_t deadline_mono_ms, uint64_t *unsent);
/* Self-metrics of several remotes, each family once (Prometheus text). */
int rw_remotes_render_metrics(struct rw_remote *const *rs, size_t n, struct ss_buf *out);
const char *rw_remote_name(const struct rw_remote *r);
void rw_remote_free(struct rw_remote *r);

/* ======================================================================== */
/* 3. Disk queue (remotewrite/diskq.c)                                       */
/* ======================================================================== */

/* Append-only segments of CRC32C-checked records (one compressed request body each),
 * read in order and acknowledged through a checkpoint. Thread-safe. See diskq.c for
 * the format and the guarantees. */
struct rw_diskq_opts {
    const char *dir;           /* created if missing */
    const char *name;          /* for logs */
    uint64_t max_bytes;        /* 0 = unbounded; oldest data dropped beyond it */
    int64_t max_age_ms;        /* 0 = none; older records dropped when read */
    int64_t fsync_interval_ms; /* 0 = fsync every append */
    uint64_t segment_bytes;    /* 0 = 64 MiB (at most max_bytes / 4) */
};

struct rw_diskq_stats {
    uint64_t bytes;    /* on disk now */
    uint64_t samples;  /* unacknowledged samples */
    int64_t oldest_ts; /* first timestamp of the oldest unacknowledged record */
    uint64_t appended_records, replayed_records, corrupt_records;
    uint64_t dropped_space_samples, dropped_age_samples, write_errors;
    bool broken; /* the last write failed */
};

struct rw_diskq;
uint32_t rw_crc32c(const void *p, size_t n);
int rw_diskq_open(const struct rw_diskq_opts *o, struct rw_diskq **out);
int rw_diskq_append(struct rw_diskq *q, const void *payload, size_t len, int64_t first_ts, int64_t last_ts,
                    uint32_t samples);
/* The next record after the read cursor (skipping and counting damaged ones), into
 * payload. SS_ENOTFOUND when none. Then call rw_diskq_ack (delivered or given up)
 * or rw_diskq_rewind (try again later); both apply to every record handed out since
 * the last of them, so several records can be sent in one request. SS_ELIMIT when
 * records of RW_DISKQ_MAX_PENDING segments are waiting for that. */
#define RW_DISKQ_MAX_PENDING 16
int rw_diskq_next(struct rw_diskq *q, struct ss_buf *payload, int64_t *first_ts, int64_t *last_ts,
                  uint32_t *samples);
int rw_diskq_ack(struct rw_diskq *q);
void rw_diskq_rewind(struct rw_diskq *q);
bool rw_diskq_empty(struct rw_diskq *q);
void rw_diskq_get_stats(struct rw_diskq *q, struct rw_diskq_stats *out);
int rw_diskq_sync(struct rw_diskq *q);
void rw_diskq_close(struct rw_diskq *q);

#endif
