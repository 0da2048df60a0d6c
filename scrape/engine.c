/* engine.c: the scrape engine. One thread drives libcurl's multi interface for every
 * target; bodies are parsed as they arrive; each sample is labelled, relabeled,
 * checked against the limits and packed into the target's staging generation.
 *
 * A scrape commits only when it succeeds, as Prometheus commits its appender: a
 * parse error, a limit, a timeout or a bad status rolls the staging area back and
 * only `up=0`, the other synthetic series and stale markers for the previous
 * scrape's series are emitted. Series that vanish between two successful scrapes get
 * stale markers (not those with explicit timestamps, as in Prometheus).
 *
 * Scheduling: each target is scraped at its interval with a stable offset derived
 * from its identity hash, aligned to the wall clock, so a restart keeps the phase and
 * many targets spread over the interval instead of firing together.
 *
 * Bodies: plain bodies are parsed as they arrive. A gzip body (Content-Encoding:
 * gzip; libcurl's decoding is off) is collected compressed and inflated once it is
 * complete, with libdeflate into the manager's one output buffer (gunzip.c), which
 * is ~3x cheaper than libcurl's streaming zlib; big bodies (GZ_STREAM_AT compressed,
 * GZ_WHOLE_PREFER plain) are inflated as they stream, with zlib. body_size_limit
 * bounds the plain size either way. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "relabel.h"
#include "scrape_int.h"
#include "series.h"
#include "sstext.h"

#define ACCEPT_HEADER                                                                                        \
    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"                       \
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

/* The label bytes of one target's series may not grow past this, whatever the limits
 * say: a body that expands to more series than this is failed, counted and logged. */
#define SERIES_MAX_BYTES (512u * 1024 * 1024)
#define MAX_LABELS       512
/* A gzip body is inflated whole when its plain size fits here (and body_size_limit);
 * a bigger one, possible only without a limit or with a larger one, is inflated as it
 * streams, so no body makes the engine allocate more than this for it. */
#define GZ_WHOLE_MAX (64u * 1024 * 1024)
/* ...but a body known to be bigger than this streams anyway (finish_gzip), and the
 * next body of that target streams from its first byte. A body whose compressed bytes
 * pass GZ_STREAM_AT streams from there on, before its size is known: exposition text
 * compresses 5-10x, so it would pass GZ_WHOLE_PREFER anyway, and the first scrape of
 * kube-state-metrics' 3 MB of compressed body is not held whole either (it was 4 MB
 * on top of the series table being built). libdeflate saves ~40 ns a sample over
 * zlib; a 2 MB plain body is ~20k series, and holding a 50k-series target's 4.6 MB of
 * plain text (the manager's inflate buffer is kept, gunzip.c) cost more than the
 * 2 ms a scrape it saves. */
#define GZ_WHOLE_PREFER (2u * 1024 * 1024)
#define GZ_STREAM_AT    (GZ_WHOLE_PREFER / 4)
/* Compressed-body buffers. No target keeps one between scrapes: when a scrape ends
 * its buffer goes back to the manager's few spares (at most GZ_STREAM_AT + 1 bytes:
 * collecting stops there, feed_gzip), and the next
 * gzip body takes a spare. So they follow the scrapes in flight, not the number of
 * targets (10 KiB per 1k series gzipped: 100 targets kept 1.6 MB of 16 KiB buffers
 * between scrapes, 100 targets of 10k series would keep 10 MB), and a steady scrape
 * allocates none. */
#define GZ_SPARES     4
/* After a scrape of this many series (samples and stale markers), the heap is trimmed
 * (malloc_trim) at the loop's next turn, at most once per TRIM_MIN_GAP_MS. */
#define TRIM_AFTER_SERIES 50000u
#define TRIM_MIN_GAP_MS   1000
#define TRIM_EVERY_MS     60000
/* The loop sleeps until its next deadline: a scrape slot, libcurl's timer, a trim, a
 * file SD check; a socket event or scrape_manager_stop (a stop, a reload) wakes it
 * earlier. It polled every second before, and on a sidecar those idle wakeups were
 * half of its CPU (README, Performance). A discoverer that can say when it has news
 * (scrape_discoverer.watch: Kubernetes SD) wakes the loop itself; one that cannot is
 * polled every DISCOVERY_POLL_MS. IDLE_WAIT_MS only bounds a sleep nothing else
 * bounds. */
#define DISCOVERY_POLL_MS 1000
#define IDLE_WAIT_MS      60000
/* How often a transfer to an IP address lets libcurl prune its DNS cache (start_scrape):
 * also the age at which entries go. */
#define DNS_PRUNE_MS 60000L
/* Parsers kept between scrapes (parser_take): about the scrapes in flight at once. */
#define PARSER_SPARES 8
/* libcurl handles (easy_take). Up to EASY_OWN_TARGETS targets, each keeps its own
 * between scrapes, with its options set once; with more, a target takes one for each
 * scrape and gives it back after, and the manager keeps up to EASY_SPARES idle: a
 * handle is 5.4 KB, 5.4 MB of the heap at 1000 targets, most of whose handles sat
 * idle (a scrape of a small target takes a few ms of its interval). The connection
 * stays in the multi handle's cache either way. A spare keeps its options and header
 * lines and goes first to a target of the same job, timeout and kind of host, which
 * sets only its URL and its own pointers: setting everything again for each scrape
 * (curl_easy_reset, the header list) was 5.9% of the CPU at 1000 targets of 100
 * series; reusing them saves 3.4% of it (bench/ab.py, 4 rounds, each one lower). */
#define EASY_OWN_TARGETS 256
#define EASY_SPARES      32
/* Connection caches: past EASY_OWN_TARGETS targets, CONN_SHARES libcurl share objects,
 * a target's chosen by its identity (conn_share_of). libcurl 7.88's
 * curl_multi_remove_handle walks every connection of the handle's cache after a
 * transfer that kept its connection (looking for connect-only ones to close), so with
 * the multi handle's one cache each scrape walked every target's connection:
 * O(targets) per scrape, 4.3% of the CPU at 1000 targets of 100 series. With the
 * caches split the walk covers a sixteenth; a connection stays with its target,
 * whichever handle the target takes, because the cache follows the target. A share
 * costs about 12 KB (its cache keeps a handle of its own), so up to EASY_OWN_TARGETS
 * targets keep the one cache, and they go back to it below three quarters of that
 * (conn_shares_on); at each switch every target's connection moves once. */
#define CONN_SHARES 16
/* A failed scrape's message (target_fail). */
#define TARGET_ERR_LEN 512

/* Small targets start on slots: the small targets of one slot start in one wakeup of
 * the scrape loop. Spread to the millisecond, 100 targets every second woke it 100
 * times a second to start one scrape each, and each wakeup (two context switches, the
 * poll set, the timer) cost more CPU than parsing a 1k-series body: 225 us per scrape
 * of a 10-series target, 75 us when all shared a slot. But the scrapes of a slot run
 * and finish together: their handles, buffers and queued samples are live at once.
 * 100 targets x 1k every 1 s, measured side by side (README, Performance): 25 ms slots
 * 0.609 us/sample, 50 ms 0.566 (+0.7 MB peak RSS), 100 ms 0.535 (+1.5 MB, the queue
 * twice as deep; +0.4 MB with the hand-over paced, pace_between); 1000 x 100: 100 ms
 * -9% CPU but +2 MB (100 scrapes in flight at once, each with its libcurl handle and
 * buffers). So the width follows the number of targets on slots (slot_width): about
 * SLOT_TARGETS a slot, 25, 50 or 100 ms, at most a tenth of the interval (a fortieth
 * of intervals under 1 s, as before). A target moves to its slot after a good scrape of
 * at most SLOT_MAX_SERIES series, and back to its phase to the millisecond after one of
 * more than twice that (an exporter that grew after start-up; between the two it stays
 * where it is); two 10k-series targets that met in a slot cost +1.5 MB. Its scrapes
 * stay one interval apart, its phase and slot are stable across restarts, and a move,
 * or a new width when targets come or go, shortens or lengthens one interval by less
 * than a slot. */
#define PHASE_SLOT_MS   25
#define SLOT_WIDEST_MS  100
#define SLOT_TARGETS    10
#define SLOT_MAX_SERIES 2000

/* Pacing: a scrape hands its series to the sink in parts of PACE_STEP and lets the
 * sink wait for room between parts (scrape_sink.wait_room), within a window of a
 * quarter of its interval, at most PACE_MAX_MS while other scrapes are due or in
 * flight, and never past their scrape timeouts (pace_window). One kube-state-metrics target
 * (100k series) queued all its records at once: 25 MB more RSS for every scrape, where
 * the remote write shards need only a few batches queued to stay busy. The wait stops
 * the scrape loop (other targets' scrapes start late by at most one window and the time
 * to hand over the rest); when the sink drains more slowly than that, the rest goes at
 * once, as before. */
#define PACE_STEP         2048
#define PACE_MAX_MS       1000
#define PACE_ALONE_MAX_MS 10000

enum fail_reason {
    FAIL_CONNECT,
    FAIL_TIMEOUT,
    FAIL_HTTP_STATUS,
    FAIL_PARSE,
    FAIL_BODY_SIZE,
    FAIL_SAMPLE_LIMIT,
    FAIL_LABEL_LIMIT,
    FAIL_OTHER,
    FAIL_TARGET_LIMIT,
    FAIL_NREASONS
};

static const char *const fail_reason_names[FAIL_NREASONS] = {
    "connect",      "timeout",     "http_status", "parse",       "body_size_limit",
    "sample_limit", "label_limit", "other",       "target_limit"};

/* Per-job state that outlives reloads (counters keep counting). */
struct job_state {
    struct job_state *next;
    char *name;
    struct scrape_job cfg; /* borrowed strings: from the current config */
    bool present;          /* still in the current job set */
    bool present_before;   /* in the job set before the running set_jobs */
    struct scrape_sd_groups *sd;
    /* latest groups of each dynamic discoverer (valid until its next poll) */
    const struct scrape_target_group **dyn_groups;
    size_t *dyn_ngroups;
    size_t ndyn;
    uint64_t sd_fingerprint;
    int64_t sd_next_check_ms;
    _Atomic uint64_t scrapes, samples_scraped, samples_post, stale_markers, duplicates;
    _Atomic uint64_t failures[FAIL_NREASONS];
    _Atomic uint64_t duration_us_sum;
    _Atomic uint64_t ntargets, sd_errors;
    _Atomic uint64_t sync_failed; /* discovered targets that could not be made (sync_group) */
    /* target_limit: the job has more targets than it allows; each of its scrapes fails
     * at once, without a request, until a sync brings it under (as Prometheus' forced
     * error of the scrape pool) */
    uint64_t over_limit;                    /* its target count, 0 when within the limit */
    _Atomic uint64_t target_limit_exceeded; /* syncs that found it over */
};

struct target {
    struct target *next;
    struct scrape_manager *m;
    struct job_state *job;
    struct scrape_target_spec spec;
    const char *instance;
    const char *job_label; /* the target's job label (its series'), for metadata */
    bool present;          /* seen in the latest set_jobs */

    CURL *easy;
    struct curl_slist *headers; /* may hold Authorization: wiped on free */
    bool easy_ready;            /* easy holds the options of the current job config */
    bool easy_light;            /* easy is a spare set up for a target like this one (easy_take) */
    bool host_numeric;          /* the URL's host is an IP address (worked out once, in target_new) */
    int sock_errno;             /* this scrape's socket() failure (open_socket), 0 if none */
    char *errbuf;               /* CURL_ERROR_SIZE bytes, with the handle (easy_take) */
    bool on_slot;      /* starts on its slot, not its phase (move_to_slot) */
    int64_t slot_past; /* on a slot: how far before its phase it starts (place_on_slot) */
    bool in_flight;
    int64_t next_ms; /* monotonic */

    /* the scrape in progress */
    struct scrape_parser *parser;
    bool body_started;
    bool gzip;                   /* Content-Encoding: gzip, decoded by us */
    enum scrape_format format;   /* of the last body: the scrape cache's texts are of it */
    struct drop_set dropped;     /* texts of the series metric relabeling dropped */
    struct ss_buf gz;            /* the compressed body so far (whole-buffer path) */
    uint32_t gz_last;            /* the last gzip body's compressed bytes: which spare to take */
    bool gz_big;                 /* the last gzip body passed GZ_WHOLE_PREFER or GZ_STREAM_AT */
    uint64_t gz_in;              /* this body's compressed bytes so far */
    struct {
        int64_t deadline; /* of this hand-over's waits (pace_window), 0 until the first */
        uint32_t n;       /* series handed over so far */
        bool off;         /* no (more) waiting in this hand-over */
    } pace;
    struct scrape_gzstream *gzs; /* set once the body streams through zlib instead */
    uint64_t body_bytes;         /* plain bytes, the body_size_limit measure */
    enum fail_reason fail;
    bool failed;
    bool parse_error;   /* failed inside the body: the counts parsed so far are reported */
    bool append_error;  /* the same for a series relabeling left without a valid name */
    bool parser_strict; /* the parser was made for strict_parsing (a reload may change it) */
    char *err;          /* the failure's message (TARGET_ERR_LEN), allocated at the first failure */
    int64_t start_ms;       /* wall clock, the samples' default timestamp */
    int64_t start_ms_stale; /* timestamp of the stale markers being emitted */
    double start_mono;
    double paced_at_start; /* m->paced_s when the scrape started */
    uint64_t samples_scraped, samples_post, series_added;

    struct series_table series; /* every series once; see series.h */
    /* The group (ss_labels_group_hash) of the series emitted last, by the addresses of
     * its __name__, instance and job values in the series table's dictionary: label
     * pairs are stored once, so the same addresses are the same values. Used only while
     * a scrape's samples are emitted (on), when no table on the manager's dictionary
     * adds or moves pairs (one target is emitted at a time, on the scrape thread);
     * series come family by family, so most reuse it instead of hashing three values. */
    struct {
        bool on, valid;
        const char *p[3];
        size_t len[3];
        uint64_t group;
    } gmemo;
};

/* An idle libcurl handle (easy_take), with what its options were set for: a target
 * of the same job, timeout and kind of host in the same epoch (no reload or switch of
 * connection caches since) takes it with its options and header lines as they are. */
struct easy_spare {
    CURL *easy;
    char *errbuf;
    struct curl_slist *headers; /* its CURLOPT_HTTPHEADER; may hold Authorization */
    const struct job_state *job;
    uint64_t epoch;
    int64_t timeout_ms;
    bool host_numeric; /* its last target set CURLOPT_DNS_CACHE_TIMEOUT (start_scrape) */
    bool ready;        /* the options were set (setup_easy) */
};

struct scrape_manager {
    struct scrape_sink sink;
    char user_agent[128];
    CURLM *multi;
    struct job_state *jobs;
    struct target *targets;
    pthread_mutex_t lock; /* guards jobs/targets lists against the metrics reader */
    atomic_bool stop;
    int running_scrapes;
    struct ss_labels ext;              /* external labels, sorted (copies) */
    struct ss_buf ext_wire;            /* the same in wire form */
    uint32_t ext_ends[64];             /* end of each one's bytes in ext_wire */
    struct ss_buf merged_wire;         /* a series' wire labels with the external ones merged in */
    /* One target's work at a time, on the scrape thread (a sample's labels while it is
     * labelled, a series' wire labels while it is added or emitted; no emit runs inside
     * parsing): the manager's, not each target's (1000 targets kept 1 MB of them). */
    struct ss_labels work;
    struct ss_buf wire;
    /* Every target's label pairs, once (series_table_share): targets of a job, and of
     * many jobs, expose the same names and values, and 1000 targets of 100 series
     * each kept ~95 of their own (4 MB between them) where 1 100 distinct ones do. */
    struct series_dict dict;
    struct scrape_parser *parser_spare[PARSER_SPARES]; /* parser_take */
    bool parser_spare_strict[PARSER_SPARES];
    int nparser_spare;
    struct easy_spare easy_spare[EASY_SPARES]; /* easy_take */
    uint64_t easy_epoch;                       /* bumped when spares' options go stale (easy_spare.epoch) */
    CURLSH *conn_share[CONN_SHARES]; /* conn_share_of; made at first use */
    bool shares_on;                  /* targets use them (conn_shares_on) */
    bool fd_warned;                  /* check_fd_room */
    int neasy_spare;
    size_t ntargets;                   /* in the list (heap_rebuild) */
    struct scrape_gunzip *gunzip;      /* one output buffer for every target's gzip body */
    struct ss_buf gz_spare[GZ_SPARES]; /* compressed-body buffers between scrapes */
    int64_t last_trim_ms;
    _Atomic uint64_t loop_turns;   /* scrapeship_scrape_loop_wakeups_total */
    int64_t dns_pruned_ms;         /* the last transfer that let libcurl prune its DNS cache */
    bool trim_due;                 /* a big scrape ended (TRIM_AFTER_SERIES) */
    int64_t pace_until, pace_used; /* the pacing window and the ms waited in it (pace_window) */
    double paced_s;                /* every pacing wait so far, in seconds (scrape durations) */
    uint64_t handed;               /* series handed over since the last pace_between */
    size_t nslotted;               /* targets on slots (slot_width) */
    /* The targets not in flight, a binary min-heap by next_ms: the loop wakes for every
     * socket event and starts one target at a time, and walking the whole list each
     * time (two cache misses per target) was the scheduler's main cost. A target
     * leaves the heap while it is in flight and comes back when it finishes. Rebuilt
     * from the list when the targets change; without memory for it (heap_ok false)
     * the list is walked as before. */
    struct target **heap;
    size_t nheap, heap_cap;
    bool heap_ok;
};

static void heap_push(struct scrape_manager *m, struct target *t);
static void move_to_slot(struct target *t, bool on);
static void place_on_slot(struct target *t);
static void heap_rebuild(struct scrape_manager *m);

double scrape_stale_nan(void)
{
    uint64_t bits = SCRAPE_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

bool scrape_is_stale_nan(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == SCRAPE_STALE_NAN_BITS;
}

/* ---- emitting --------------------------------------------------------- */

static void emit(struct target *t, const struct ss_label *labels, size_t n, double v, int64_t ts,
                 uint64_t hash)
{
    const struct ss_labels *ext = &t->m->ext;
    struct ss_label merged[MAX_LABELS + 8 + 64];
    if (ext->n) {
        long k = ss_labels_merge_sorted(labels, n, ext->v, ext->n, merged, sizeof merged / sizeof merged[0]);
        if (k >= 0) { /* cannot fail: series are capped well below the array */
            labels = merged;
            n = (size_t)k;
        }
    }
    struct scrape_series s = {labels, n, v, ts, series_hash32(hash), NULL, 0, 0, 0, NULL, NULL, 0};
    t->m->sink.series(t->m->sink.ud, &s);
}

/* A series of the table, with its wire bytes for the sink. External labels are merged
 * in by name as ss_labels_merge_sorted does (the series' own label wins), copying each
 * label's wire bytes from the entry or from the pre-encoded external labels. */
/* Remember the group of the series just emitted, by its three values' addresses. */
static uint64_t gmemo_set(struct target *t, const char *const gp[3], const size_t gl[3], uint64_t group)
{
    t->gmemo.valid = true;
    memcpy(t->gmemo.p, gp, sizeof t->gmemo.p);
    memcpy(t->gmemo.len, gl, sizeof t->gmemo.len);
    t->gmemo.group = group;
    return group;
}

/* keep: the entry itself, which keeps the hint the sinks ask for (NULL: the entry is
 * going away). */
static void emit_entry(struct target *t, const struct series_entry *e, double v, int64_t ts,
                       struct series_entry *keep)
{
    struct scrape_manager *m = t->m;
    struct ss_label labels[MAX_LABELS + 8];
    uint32_t ends[MAX_LABELS + 8];
    struct ss_str parts[MAX_LABELS + 8];
    /* Without external labels the sink gets the table's pieces of wire bytes, which it
     * copies anyway: putting them together here first was a second copy of every
     * series' labels. With them, the merge below needs the bytes in one place. */
    size_t wlen = 0;
    long n = m->ext.n ? series_table_labels_split(&t->series, e, &m->wire, labels, ends, MAX_LABELS + 8)
                      : series_table_labels_parts(&t->series, e, labels, parts, MAX_LABELS + 8, &wlen);
    if (n < 0)
        return; /* out of memory: the series is lost for this scrape */
    uint8_t hint = series_hint(e), hint_new = hint;
    bool in_parts = !m->ext.n;
    struct scrape_series s = {labels,
                              (size_t)n,
                              v,
                              ts,
                              e->hash,
                              NULL,
                              wlen,
                              0,
                              hint,
                              keep ? &hint_new : NULL,
                              in_parts ? parts : NULL,
                              in_parts ? (size_t)n : 0};
    bool memo_hit = false;
    const char *gp[3] = {NULL, NULL, NULL};
    size_t gl[3] = {0, 0, 0};
    if (t->gmemo.on) {
        for (long i = 0; i < n; i++) {
            struct ss_str k = labels[i].name;
            if (k.len && (unsigned char)k.p[0] > 'j')
                break; /* sorted by name */
            int g = k.len == 8 && !memcmp(k.p, "__name__", 8)   ? 0
                    : k.len == 8 && !memcmp(k.p, "instance", 8) ? 1
                    : k.len == 3 && !memcmp(k.p, "job", 3)      ? 2
                                                                : -1;
            if (g >= 0)
                gp[g] = labels[i].value.p, gl[g] = labels[i].value.len;
        }
        memo_hit =
            t->gmemo.valid && !memcmp(gp, t->gmemo.p, sizeof gp) && !memcmp(gl, t->gmemo.len, sizeof gl);
        if (memo_hit)
            s.group = t->gmemo.group;
    }
    struct ss_label merged[MAX_LABELS + 8 + 64];
    if (m->ext.n) {
        const char *wire = m->wire.data; /* labels_split's */
        const struct ss_label *x = m->ext.v;
        size_t nx = m->ext.n, i = 0, j = 0, k = 0;
        ss_buf_reset(&m->merged_wire);
        bool with_wire = ss_buf_reserve(&m->merged_wire, m->wire.len + m->ext_wire.len) == 0;
        char *p = m->merged_wire.data;
        while (i < (size_t)n || j < nx) {
            int c = i == (size_t)n ? 1 : j == nx ? -1 : ss_str_cmp(labels[i].name, x[j].name);
            size_t from, to;
            const char *src;
            if (c <= 0) {
                src = wire, from = i ? ends[i - 1] : 0, to = ends[i];
                merged[k++] = labels[i++];
                j += c == 0;
            } else {
                src = m->ext_wire.data, from = j ? m->ext_ends[j - 1] : 0, to = m->ext_ends[j];
                merged[k++] = x[j++];
            }
            if (with_wire) {
                memcpy(p, src + from, to - from);
                p += to - from;
            }
        }
        s.labels = merged;
        s.nlabels = k;
        s.wire_labels = with_wire ? m->merged_wire.data : NULL;
        s.wire_labels_len = with_wire ? (size_t)(p - m->merged_wire.data) : 0;
    }
    if (t->gmemo.on && !memo_hit) /* the external labels are the same for every series */
        s.group = gmemo_set(t, gp, gl, ss_labels_group_hash(s.labels, s.nlabels));
    m->sink.series(m->sink.ud, &s);
    if (keep && hint_new != hint && hint_new <= SCRAPE_HINT_MAX)
        series_set_hint(keep, hint_new);
}

/* series_table_sweep's callback: a stale marker for a series that went away. */
static void pace_step(struct target *t);

static void emit_stale(void *ud, const struct series_table *st, const struct series_entry *e)
{
    struct target *t = ud;
    (void)st;
    pace_step(t); /* a failed or removed big target's markers are paced as its samples */
    emit_entry(t, e, scrape_stale_nan(), t->start_ms_stale, NULL);
}

static const char *const report_names[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                           "scrape_samples_post_metric_relabeling", "scrape_series_added"};

/* The synthetic series: target labels plus __name__, sorted. A stale run marks all
 * five stale (target removed). */
static void emit_report(struct target *t, bool up, double duration, int64_t ts, bool stale)
{
    double values[5] = {up ? 1 : 0, duration, (double)t->samples_scraped, (double)t->samples_post,
                        (double)t->series_added};
    struct ss_labels *w = &t->m->work;
    for (int i = 0; i < 5; i++) {
        ss_labels_reset(w);
        ss_labels_push(w, SS_STR("__name__"), (struct ss_str){report_names[i], strlen(report_names[i])});
        for (size_t k = 0; k < t->spec.labels.n; k++)
            ss_labels_set(w, t->spec.labels.v[k].name, t->spec.labels.v[k].value);
        ss_labels_sort(w);
        emit(t, w->v, w->n, stale ? scrape_stale_nan() : values[i], ts, ss_labels_hash(w));
    }
}

/* ---- per-sample pipeline ---------------------------------------------- */

static int target_fail(struct target *t, enum fail_reason why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message of t's failure. */
static const char *target_err(const struct target *t)
{
    return t->err ? t->err : "out of memory";
}

static int target_fail(struct target *t, enum fail_reason why, const char *fmt, ...)
{
    if (t->failed)
        return SS_EINVAL;
    t->failed = true;
    t->fail = why;
    if (!t->err)
        t->err = malloc(TARGET_ERR_LEN);
    if (t->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->err, TARGET_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return why == FAIL_SAMPLE_LIMIT || why == FAIL_LABEL_LIMIT || why == FAIL_BODY_SIZE ? SS_ELIMIT
                                                                                        : SS_EINVAL;
}

static bool exposed_has(const struct scrape_parsed_sample *s, struct ss_str name)
{
    if (ss_str_eq_cstr(name, "__name__"))
        return true;
    for (size_t i = 0; i < s->nlabels; i++)
        if (ss_str_eq(s->labels[i].name, name))
            return true;
    return false;
}

/* honor_labels: false: target labels win and clashing exposed labels are kept as
 * exported_<name> (prefix repeated until free), shortest names first, as Prometheus'
 * resolveConflictingExposedLabels. */
static int merge_target_labels(struct target *t, const struct scrape_parsed_sample *s)
{
    struct ss_labels *w = &t->m->work;
    const struct ss_labels *tl = &t->spec.labels;
    if (t->job->cfg.honor_labels) {
        for (size_t i = 0; i < tl->n; i++)
            if (!ss_labels_get(w, tl->v[i].name)) {
                int rc = ss_labels_set(w, tl->v[i].name, tl->v[i].value);
                if (rc)
                    return rc;
            }
        return 0;
    }
    struct ss_label conflicts[32];
    size_t nc = 0;
    for (size_t i = 0; i < tl->n; i++) {
        const struct ss_str *ex = ss_labels_get(w, tl->v[i].name);
        if (ex && ex->len && nc < 32)
            conflicts[nc++] = (struct ss_label){tl->v[i].name, *ex};
        int rc = ss_labels_set(w, tl->v[i].name, tl->v[i].value);
        if (rc)
            return rc;
    }
    if (!nc)
        return 0;
    for (size_t i = 1; i < nc; i++) { /* stable sort by name length */
        struct ss_label x = conflicts[i];
        size_t j = i;
        while (j > 0 && conflicts[j - 1].name.len > x.name.len) {
            conflicts[j] = conflicts[j - 1];
            j--;
        }
        conflicts[j] = x;
    }
    for (size_t i = 0; i < nc; i++) {
        char name[1024];
        size_t len = conflicts[i].name.len < 900 ? conflicts[i].name.len : 900;
        memcpy(name, conflicts[i].name.p, len);
        for (;;) {
            if (len + 9 >= sizeof name)
                break;
            memmove(name + 9, name, len);
            memcpy(name, "exported_", 9);
            len += 9;
            struct ss_str n = {name, len};
            bool taken = exposed_has(s, n);
            for (size_t k = 0; !taken && k < tl->n; k++)
                taken = ss_str_eq(tl->v[k].name, n);
            for (size_t k = 0; !taken && k < i; k++)
                taken = ss_str_eq(conflicts[k].name, n);
            if (!taken)
                break;
        }
        char *owned = ss_arena_strndup(&w->arena, name, len);
        if (!owned)
            return SS_ENOMEM;
        conflicts[i].name = (struct ss_str){owned, len};
    }
    for (size_t i = 0; i < nc; i++) {
        int rc = ss_labels_set(w, conflicts[i].name, conflicts[i].value);
        if (rc)
            return rc;
    }
    return 0;
}

/* The scrape cache key: the series exactly as exposed: its text as written when the
 * parser gives it (one pass over contiguous bytes), else name and labels in order. */
static uint64_t raw_key(const struct scrape_parsed_sample *s)
{
    if (s->series.len) {
        uint64_t h = ss_hash_text(0xB7E151628AED2A6BULL, s->series);
        return h ? h : 1;
    }
    uint64_t h = ss_hash_str(0x6A09E667F3BCC908ULL, s->name);
    for (size_t i = 0; i < s->nlabels; i++)
        h = ss_hash_str(ss_hash_str(h, s->labels[i].name), s->labels[i].value);
    return h ? h : 1;
}

/* The sample of a series in the table: seen once more. Duplicates within one scrape
 * keep the first sample, as Prometheus does, and count the rest. A duplicate still
 * counts in scrape_samples_post_metric_relabeling and against sample_limit: 2.42
 * appends it (the limit appender counts every append) and counts it as added. */
static int see_sample(struct target *t, const struct scrape_parsed_sample *s, size_t i)
{
    const struct scrape_job *job = &t->job->cfg;
    t->samples_post++;
    if (job->sample_limit && t->samples_post > job->sample_limit)
        return target_fail(t, FAIL_SAMPLE_LIMIT, "sample limit exceeded (limit: %llu)",
                           (unsigned long long)job->sample_limit);
    if (series_table_seen(&t->series, i)) {
        atomic_fetch_add(&t->job->duplicates, 1);
        return 0;
    }
    bool explicit_ts = s->has_timestamp && job->honor_timestamps;
    if (series_table_see(&t->series, i, s->value, explicit_ts ? s->timestamp_ms : t->start_ms, !explicit_ts))
        return target_fail(t, FAIL_OTHER, "out of memory");
    return 0;
}

static int on_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct target *t = ud;
    const struct scrape_job *job = &t->job->cfg;
    struct ss_labels *w = &t->m->work;
    int rc;

    /* Scrape-cache hit: this exact series was seen before and its final labels are in
     * the table, so labelling, relabeling, sorting and hashing are skipped (as
     * Prometheus' scrape cache does), and with lazy_labels the parser has not even
     * parsed the labels. The cache is emptied when the job's settings change (reload).
     * A miss on a sample without labels asks for them: the parser passes it again. */
    uint64_t rk = raw_key(s);
    long ci = series_table_find_raw_next(&t->series, rk);
    if (ci < 0 && drop_set_has(&t->dropped, rk)) { /* dropped by metric relabeling before */
        t->samples_scraped++;
        return 0;
    }
    if (ci < 0 && s->labels_skipped)
        return SCRAPE_WANT_LABELS;
    t->samples_scraped++;
    if (ci >= 0)
        return see_sample(t, s, (size_t)ci);
    ss_labels_reset(w);
    rc = ss_labels_push(w, SS_STR("__name__"), s->name);
    for (size_t i = 0; !rc && i < s->nlabels; i++)
        rc = ss_labels_push(w, s->labels[i].name, s->labels[i].value);
    if (!rc)
        rc = merge_target_labels(t, s);
    if (rc)
        return target_fail(t, FAIL_OTHER, "out of memory");
    /* Dropped (by a rule, or left with no label at all): the same text is dropped
     * again next time without relabeling (a set that cannot grow only costs that). */
    if (job->nmetric_relabel && !relabel_process(job->metric_relabel, job->nmetric_relabel, w)) {
        (void)drop_set_add(&t->dropped, rk);
        return 0;
    }

    /* Empty label values never reach storage (Prometheus drops them at append). */
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].value.len)
            w->v[k++] = w->v[i];
    w->n = k;
    if (!w->n) {
        (void)drop_set_add(&t->dropped, rk);
        return 0;
    }
    /* Rules that leave a series without a name, or with a name or label name that is
     * not valid, fail the scrape, as in Prometheus 2.42 (not a silent drop). The parser
     * lets only valid names through, so only rules can. */
    const struct ss_str *mname = ss_labels_get(w, SS_STR("__name__"));
    if (job->nmetric_relabel) {
        const struct ss_str *nm = mname;
        t->append_error = !nm; /* before target_fail: the counts so far are reported */
        if (!nm)
            return target_fail(t, FAIL_OTHER,
                               "missing metric name (__name__ label) after metric_relabel_configs");
        bool valid = ss_metric_name_valid(nm->p, nm->len);
        for (size_t i = 0; valid && i < w->n; i++)
            valid = ss_label_name_valid(w->v[i].name.p, w->v[i].name.len) &&
                    ss_utf8_valid(w->v[i].value.p, w->v[i].value.len);
        t->append_error = !valid;
        if (!valid)
            return target_fail(
                t, FAIL_OTHER,
                "invalid metric name or label names after metric_relabel_configs (metric: %.*s)",
                (int)(nm->len < 50 ? nm->len : 50), nm->p);
    }

    /* Slices are not NUL-terminated: always print them with a length. */
    if (job->label_limit && w->n > job->label_limit)
        return target_fail(
            t, FAIL_LABEL_LIMIT, "label_limit exceeded (metric: %.*s, number of labels: %zu, limit: %llu)",
            (int)(mname->len < 50 ? mname->len : 50), mname->p, w->n, (unsigned long long)job->label_limit);
    if (w->n > MAX_LABELS)
        return target_fail(t, FAIL_LABEL_LIMIT, "series with %zu labels (maximum %d)", w->n, MAX_LABELS);
    for (size_t i = 0; i < w->n; i++) {
        if (job->label_name_length_limit && w->v[i].name.len > job->label_name_length_limit)
            return target_fail(
                t, FAIL_LABEL_LIMIT,
                "label_name_length_limit exceeded (label name: %.*s, length: %zu, limit: %llu)",
                (int)(w->v[i].name.len < 50 ? w->v[i].name.len : 50), w->v[i].name.p, w->v[i].name.len,
                (unsigned long long)job->label_name_length_limit);
        if (job->label_value_length_limit && w->v[i].value.len > job->label_value_length_limit)
            return target_fail(
                t, FAIL_LABEL_LIMIT,
                "label_value_length_limit exceeded (label name: %.*s, value length: %zu, limit: %llu)",
                (int)(w->v[i].name.len < 50 ? w->v[i].name.len : 50), w->v[i].name.p, w->v[i].value.len,
                (unsigned long long)job->label_value_length_limit);
        if (w->v[i].name.len > UINT16_MAX)
            return target_fail(t, FAIL_LABEL_LIMIT, "label name longer than 65535 bytes");
    }
    ss_labels_sort(w);
    uint64_t h = ss_labels_hash(w);
    struct ss_buf *wire = &t->m->wire;
    ss_buf_reset(wire);
    size_t wlen = ss_labels_wire_size(w->v, w->n);
    if (ss_buf_reserve(wire, wlen))
        return target_fail(t, FAIL_OTHER, "out of memory");
    ss_labels_wire_write((uint8_t *)wire->data, w->v, w->n);
    long i = series_table_find(&t->series, h, wire->data, wlen);
    if (i < 0) {
        if (job->sample_limit && t->samples_post >= job->sample_limit)
            return target_fail(t, FAIL_SAMPLE_LIMIT, "sample limit exceeded (limit: %llu)",
                               (unsigned long long)job->sample_limit);
        const struct series_dict *d = t->series.d;
        uint64_t refused = d->refused;
        i = series_table_add(&t->series, h, wire->data, wlen, w->n);
        if (i == SS_ELIMIT && d->refused != refused) /* the limit shared by every target */
            return target_fail(t, FAIL_OTHER,
                               "label pairs of all targets at their limit (%u pairs, %zu bytes) after %llu "
                               "series of this target",
                               d->plive, d->bytes.len - d->garbage, (unsigned long long)t->samples_post);
        if (i == SS_ELIMIT)
            return target_fail(t, FAIL_BODY_SIZE, "series table full after %llu series",
                               (unsigned long long)t->samples_post);
        if (i < 0)
            return target_fail(t, FAIL_OTHER, "out of memory after %llu series",
                               (unsigned long long)t->samples_post);
        t->series_added++;
    }
    series_table_link_raw(&t->series, (size_t)i, rk);
    return see_sample(t, s, (size_t)i);
}

static int on_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct target *t = ud;
    if (t->m->sink.metadata)
        t->m->sink.metadata(t->m->sink.ud, m, t->job_label);
    return 0;
}

/* ---- HTTP -------------------------------------------------------------- */

/* Plain body bytes, from the wire or from the gzip decoder: counted against
 * body_size_limit and parsed. Non-zero when the scrape failed. */
static int feed_plain(void *ud, const char *p, size_t n)
{
    struct target *t = ud;
    t->body_bytes += n;
    uint64_t limit = t->job->cfg.body_size_limit;
    if (limit && t->body_bytes >= limit) /* Prometheus fails a body of exactly the limit too */
        return target_fail(t, FAIL_BODY_SIZE, "body size limit exceeded (limit: %llu bytes)",
                           (unsigned long long)limit);
    struct scrape_parser_cb cb = {on_sample, on_meta, t, NULL};
    int rc = scrape_parser_feed(t->parser, p, n, &cb);
    if (rc && !t->failed) {
        t->parse_error = rc != SS_ELIMIT;
        target_fail(t, rc == SS_ELIMIT ? FAIL_BODY_SIZE : FAIL_PARSE, "%s", scrape_parser_error(t->parser));
    }
    return t->failed ? SS_EINVAL : 0;
}

/* The most plain bytes a gzip body may inflate to in one buffer. */
static uint64_t gz_whole_max(const struct target *t)
{
    uint64_t limit = t->job->cfg.body_size_limit;
    return limit && limit < GZ_WHOLE_MAX ? limit : GZ_WHOLE_MAX;
}

static int gz_fail_corrupt(struct target *t, const char *why)
{
    return target_fail(t, FAIL_PARSE, "invalid gzip body from %s: %s", t->spec.url.data, why);
}

static int gz_stream(struct target *t, const char *p, size_t n)
{
    const char *why = NULL;
    int rc = scrape_gzstream_feed(t->gzs, p, n, feed_plain, t, &why);
    if (rc && !t->failed)
        gz_fail_corrupt(t, why ? why : ss_strerror(rc));
    return rc;
}

static void gz_buf_release(struct target *t, bool spare_it);

/* Switch this body to streaming zlib: what was collected is inflated first. */
static int gz_start_stream(struct target *t)
{
    if (scrape_gzstream_new(&t->gzs))
        return target_fail(t, FAIL_OTHER, "out of memory");
    int rc = t->gz.len ? gz_stream(t, t->gz.data, t->gz.len) : 0;
    /* not kept as a spare: this target streams from its first byte from now on
     * (gz_big), and a spare of this size sat idle beside one huge target (1 MiB) */
    gz_buf_release(t, false);
    return rc;
}

/* A gzip body starts: take the smallest spare that holds `need` bytes (the target's
 * last compressed body, or this first chunk), else the biggest spare. A body that
 * outgrows it grows it (ss_buf_append). Spares are empty (gz_reset). */
static void gz_take_spare(struct target *t, size_t need)
{
    struct ss_buf *fit = NULL, *big = NULL;
    for (int i = 0; i < GZ_SPARES; i++) {
        struct ss_buf *sp = &t->m->gz_spare[i];
        if (sp->cap >= need && (!fit || sp->cap < fit->cap))
            fit = sp;
        if (sp->cap && (!big || sp->cap > big->cap))
            big = sp;
    }
    struct ss_buf *pick = fit ? fit : big;
    if (!pick)
        return;
    t->gz = *pick; /* t->gz had no buffer */
    ss_buf_init(pick, 0);
}

/* Compressed bytes: collected until the body is complete. A body whose compressed
 * size already passes body_size_limit (plus deflate's worst-case framing) fails as a
 * plain one would; past GZ_STREAM_AT it streams instead. */
static int feed_gzip(struct target *t, const char *p, size_t n)
{
    t->gz_in += n;
    if (t->gzs)
        return gz_stream(t, p, n);
    if (t->gz_big && !t->gz.len) { /* as big as last time: inflate as it arrives, keep none */
        int rc = gz_start_stream(t);
        return rc ? rc : gz_stream(t, p, n);
    }
    uint64_t limit = t->job->cfg.body_size_limit;
    if (gz_whole_max(t) == limit && t->gz.len + n > limit + limit / 1024 + 4096)
        return target_fail(t, FAIL_BODY_SIZE, "body size limit exceeded (limit: %llu bytes)",
                           (unsigned long long)limit);
    if (t->gz.len + n > GZ_STREAM_AT) {
        int rc = gz_start_stream(t);
        return rc ? rc : gz_stream(t, p, n);
    }
    if (!t->gz.cap)
        gz_take_spare(t, n > t->gz_last ? n : t->gz_last);
    t->gz.max = GZ_STREAM_AT; /* checked above: its growth stops there, not at the next power of two */
    if (ss_buf_append(&t->gz, p, n))
        return target_fail(t, FAIL_OTHER, "out of memory");
    return 0;
}

/* The gzip body is complete: inflate and parse it (before scrape_parser_finish). */
static void finish_gzip(struct target *t)
{
    const char *why = NULL;
    if (t->gzs) {
        if (scrape_gzstream_finish(t->gzs, &why))
            gz_fail_corrupt(t, why);
        return;
    }
    if (!t->gz.len)
        return; /* empty body: an empty scrape, as with curl's decoding */
    /* The plain size from the gzip trailer (ISIZE, exact for the usual single member):
     * a body above GZ_WHOLE_PREFER streams, so that one huge target (kube-state-metrics:
     * 17.5 MB plain for 100k series) does not hold its whole plain body in memory for
     * the ~40 ns/sample libdeflate saves. */
    if (scrape_gunzip_isize(t->gz.data, t->gz.len) > GZ_WHOLE_PREFER) {
        if (!gz_start_stream(t) && scrape_gzstream_finish(t->gzs, &why))
            gz_fail_corrupt(t, why);
        return;
    }
    struct scrape_gunzip *g = t->m->gunzip;
    uint64_t whole = gz_whole_max(t);
    const char *out = NULL;
    size_t out_len = 0;
    int rc = scrape_gunzip_whole(g, t->gz.data, t->gz.len, (size_t)whole, &out, &out_len, &why);
    if (rc == 0)
        feed_plain(t, out, out_len);
    else if (rc == SS_ELIMIT && whole == t->job->cfg.body_size_limit)
        target_fail(t, FAIL_BODY_SIZE, "body size limit exceeded (limit: %llu bytes)",
                    (unsigned long long)whole);
    else if (rc == SS_ELIMIT) { /* bigger than one buffer, and allowed: stream it */
        if (!gz_start_stream(t) && scrape_gzstream_finish(t->gzs, &why))
            gz_fail_corrupt(t, why);
    } else if (rc == SS_EINVAL)
        gz_fail_corrupt(t, why);
    else
        target_fail(t, FAIL_OTHER, "out of memory inflating the gzip body");
    scrape_gunzip_release(g);
}

/* Content-Encoding of the final response: 1 gzip, 0 none or identity, -1 other. */
static int content_encoding(struct target *t, char *val, size_t vlen)
{
    struct curl_header *h = NULL;
    val[0] = '\0';
    if (curl_easy_header(t->easy, "Content-Encoding", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h->value)
        return 0;
    const char *v = h->value;
    size_t len = strlen(v);
    /* libcurl 7.88 leaves the line's CR in an empty header's value */
    while (len && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
        v++, len--;
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    snprintf(val, vlen, "%.*s", (int)len, v);
    if (!len || (len == 8 && strncasecmp(v, "identity", 8) == 0))
        return 0;
    if ((len == 4 && strncasecmp(v, "gzip", 4) == 0) || (len == 6 && strncasecmp(v, "x-gzip", 6) == 0))
        return 1;
    return -1;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct target *t = ud;
    size_t n = size * nmemb;
    if (t->failed)
        return 0;
    if (!t->body_started) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
            target_fail(t, FAIL_HTTP_STATUS, "server returned HTTP status %ld", status);
            return 0;
        }
        char enc[64];
        int ce = content_encoding(t, enc, sizeof enc);
        if (ce < 0) { /* we asked for gzip only */
            target_fail(t, FAIL_OTHER, "unsupported Content-Encoding \"%s\" from %s", enc, t->spec.url.data);
            return 0;
        }
        t->gzip = ce == 1;
        char *ct = NULL;
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
        enum scrape_format fmt = scrape_format_from_content_type(ct);
        if (fmt != t->format) { /* the scrape cache knows texts parsed in the other format */
            series_table_clear_raw(&t->series);
            drop_set_clear(&t->dropped);
            t->format = fmt;
        }
        scrape_parser_reset(t->parser, fmt);
        t->body_started = true;
    }
    int rc = t->gzip ? feed_gzip(t, p, n) : feed_plain(t, p, n);
    return rc || t->failed ? 0 : n;
}

/* Whether the URL's host is an IP address, not a name to resolve. */
static bool host_is_numeric(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool numeric = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        unsigned char a[16];
        size_t n = strlen(host);
        if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
            host[n - 1] = '\0';
            numeric = inet_pton(AF_INET6, host + 1, a) == 1;
        } else {
            numeric = inet_pton(AF_INET, host, a) == 1;
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return numeric;
}

/* Whether spare s was set up for a target like t: only t's own options need setting. */
static bool spare_fits(const struct scrape_manager *m, const struct easy_spare *s, const struct target *t)
{
    return s->ready && s->job == t->job && s->epoch == m->easy_epoch && s->timeout_ms == t->spec.timeout_ms &&
           s->host_numeric == t->host_numeric;
}

/* A libcurl handle for t's scrape: its own, kept from the last one, or one of the
 * manager's spares (one set up for a target like t, whose options stay, else the last
 * one given back, whose options are set again), or a new one. Returns 0 or
 * SS_ENOMEM. */
static int easy_take(struct target *t)
{
    struct scrape_manager *m = t->m;
    if (t->easy)
        return 0;
    t->easy_ready = false;
    t->easy_light = false;
    if (m->neasy_spare) {
        int k = m->neasy_spare - 1;
        for (int i = k; i >= 0 && !t->easy_light; i--)
            if (spare_fits(m, &m->easy_spare[i], t)) {
                k = i;
                t->easy_light = true;
            }
        struct easy_spare s = m->easy_spare[k];
        m->easy_spare[k] = m->easy_spare[--m->neasy_spare];
        t->easy = s.easy;
        t->errbuf = s.errbuf;
        t->headers = s.headers;
        return 0;
    }
    /* its error buffer goes with it: 1000 targets kept 256 KB of them */
    t->easy = curl_easy_init();
    t->errbuf = malloc(CURL_ERROR_SIZE);
    if (t->easy && t->errbuf)
        return 0;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    free(t->errbuf);
    t->easy = NULL;
    t->errbuf = NULL;
    return SS_ENOMEM;
}

static void easy_spare_free(struct easy_spare *s)
{
    curl_easy_cleanup(s->easy);
    free(s->errbuf);
    httpc_headers_free(s->headers);
}

/* After t's scrape: with more than EASY_OWN_TARGETS targets, its handle goes back to
 * the spares with its options and header lines (or to libcurl when they are full). */
static void easy_give(struct target *t)
{
    struct scrape_manager *m = t->m;
    if (!t->easy || t->in_flight || m->ntargets <= EASY_OWN_TARGETS)
        return;
    struct easy_spare s = {.easy = t->easy,
                           .errbuf = t->errbuf,
                           .headers = t->headers,
                           .job = t->job,
                           .epoch = m->easy_epoch,
                           .timeout_ms = t->spec.timeout_ms,
                           .host_numeric = t->host_numeric,
                           .ready = t->easy_ready};
    if (m->neasy_spare < EASY_SPARES)
        m->easy_spare[m->neasy_spare++] = s;
    else
        easy_spare_free(&s);
    t->easy = NULL;
    t->errbuf = NULL;
    t->headers = NULL;
    t->easy_ready = false;
}

/* t's connection cache (CONN_SHARES), made at first use; NULL: the multi handle's own
 * (few targets, or libcurl could not make a share). */
static CURLSH *conn_share_of(const struct target *t)
{
    struct scrape_manager *m = t->m;
    if (!m->shares_on)
        return NULL;
    size_t k = (size_t)(t->spec.identity % CONN_SHARES);
    if (!m->conn_share[k]) {
        CURLSH *sh = curl_share_init();
        if (sh && curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
            curl_share_cleanup(sh);
            sh = NULL;
        }
        m->conn_share[k] = sh;
    }
    return m->conn_share[k];
}

/* libcurl's socket(), keeping its error for the target's message (fail_transfer). */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    struct target *t = clientp;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s == CURL_SOCKET_BAD)
        t->sock_errno = errno;
    return s;
}

/* What is t's own on a handle set up for its job and timeout: its URL, its pointers
 * and its connection cache. */
static void set_own_options(struct target *t)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->spec.url.data);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    CURLSH *sh = conn_share_of(t);
    if (sh)
        curl_easy_setopt(e, CURLOPT_SHARE, sh);
}

/* The engine's own lines (Accept, the timeout), then the job's http_config: its
 * options and header lines, with password and credentials files read now. */
static int setup_easy(struct target *t)
{
    CURL *e = t->easy;
    /* The options stay on the handle between scrapes: set them again only after a
     * reload, or for every scrape when a password or credentials file must be read
     * again (curl_easy_reset and the options were 2% of the 100x1k profile). */
    const struct httpc_config *hc = &t->job->cfg.http;
    bool files = hc->basic_auth_password_file || hc->authorization_credentials_file;
    if (t->easy_ready && !files)
        return 0;
    bool light = t->easy_light && !files;
    t->easy_light = false;
    if (light) { /* a spare set up for a target like t (easy_take): only what is t's own */
        set_own_options(t);
        t->easy_ready = true;
        return 0;
    }
    t->easy_ready = false;
    curl_easy_reset(e);
    httpc_headers_free(t->headers);
    t->headers = NULL;
    char tmo[96], err[300] = "";
    snprintf(tmo, sizeof tmo, "X-Prometheus-Scrape-Timeout-Seconds: %g", (double)t->spec.timeout_ms / 1000.0);
    int rc = httpc_add_header(&t->headers, ACCEPT_HEADER);
    if (!rc)
        rc = httpc_add_header(&t->headers, tmo);
    if (!rc)
        rc = httpc_setup(e, &t->job->cfg.http, &t->headers, err, sizeof err);
    if (rc)
        return target_fail(t, FAIL_OTHER, "%s", err[0] ? err : ss_strerror(rc));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->spec.timeout_ms);
    /* Ask for gzip but decode it ourselves (feed_gzip): whole-buffer libdeflate. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, t->m->user_agent);
    set_own_options(t);
    t->easy_ready = true;
    return 0;
}

/* ---- scrape lifecycle --------------------------------------------------- */

/* A parser is needed only while a body is parsed: a scrape takes one of the manager's
 * spares made with its job's strictness (or a new one) and gives it back when the body
 * is parsed, so parsers follow the scrapes in flight, not the targets (2.4 KB each with
 * their buffers: 1000 targets kept 2.4 MB). */
static int parser_take(struct target *t)
{
    struct scrape_manager *m = t->m;
    bool strict = t->job->cfg.strict_parsing;
    for (int i = m->nparser_spare - 1; i >= 0; i--) {
        if (m->parser_spare_strict[i] != strict)
            continue;
        t->parser = m->parser_spare[i];
        t->parser_strict = strict;
        m->nparser_spare--;
        m->parser_spare[i] = m->parser_spare[m->nparser_spare];
        m->parser_spare_strict[i] = m->parser_spare_strict[m->nparser_spare];
        return 0;
    }
    struct scrape_parser_opts po = {.format = SCRAPE_FORMAT_TEXT, .strict = strict, .lazy_labels = true};
    int rc = scrape_parser_new(&po, &t->parser);
    if (rc == 0)
        t->parser_strict = strict;
    return rc;
}

static void parser_give(struct target *t)
{
    struct scrape_manager *m = t->m;
    if (!t->parser)
        return;
    int k = -1;
    if (m->nparser_spare < PARSER_SPARES) {
        k = m->nparser_spare++;
    } else { /* full: replace one of the other strictness (left by a reload), if any */
        for (int i = 0; k < 0 && i < PARSER_SPARES; i++)
            if (m->parser_spare_strict[i] != t->parser_strict)
                k = i;
        if (k >= 0)
            scrape_parser_free(m->parser_spare[k]);
    }
    if (k < 0) {
        scrape_parser_free(t->parser);
    } else {
        m->parser_spare[k] = t->parser;
        m->parser_spare_strict[k] = t->parser_strict;
    }
    t->parser = NULL;
}

static void start_scrape(struct target *t)
{
    t->failed = false;
    t->parse_error = false;
    t->append_error = false;
    if (t->err)
        t->err[0] = '\0';
    t->body_started = false;
    t->sock_errno = 0;
    t->gzip = false;
    t->body_bytes = 0;
    t->gz_in = 0;
    t->samples_scraped = t->samples_post = t->series_added = 0;
    series_table_begin(&t->series);
    t->start_ms = ss_now_ms();
    t->start_mono = ss_mono_seconds();
    t->paced_at_start = t->m->paced_s;
    if (t->job->over_limit) {
        target_fail(t, FAIL_TARGET_LIMIT, "target_limit exceeded (number of targets: %llu, limit: %llu)",
                    (unsigned long long)t->job->over_limit, (unsigned long long)t->job->cfg.target_limit);
        t->in_flight = false;
        return;
    }
    if ((!t->parser && parser_take(t)) || easy_take(t))
        target_fail(t, FAIL_OTHER, "out of memory");
    else
        t->errbuf[0] = '\0';
    if (!t->failed && setup_easy(t) == 0) {
        /* libcurl walks its whole DNS cache (an entry per host:port the multi handle
         * has seen) at the end of every transfer, to prune names older than the
         * transfer's DNS_CACHE_TIMEOUT (multi_done): with 1000 targets that walk was
         * about a tenth of the CPU. An address (a pod IP from discovery) needs no
         * resolving and never goes stale, so its transfers skip the walk (-1), but for
         * one transfer a minute, which prunes the entries of targets gone since; names
         * keep libcurl's default and prune as before. */
        if (t->host_numeric) {
            int64_t now = ss_mono_ms();
            bool prune = now - t->m->dns_pruned_ms >= DNS_PRUNE_MS;
            if (prune)
                t->m->dns_pruned_ms = now;
            curl_easy_setopt(t->easy, CURLOPT_DNS_CACHE_TIMEOUT, prune ? DNS_PRUNE_MS / 1000 : -1L);
        }
        if (curl_multi_add_handle(t->m->multi, t->easy) == CURLM_OK) {
            t->in_flight = true;
            t->m->running_scrapes++;
            return;
        }
        target_fail(t, FAIL_OTHER, "cannot start request");
    }
    /* could not even start: report as a failed scrape right away */
    t->in_flight = false;
}

static void log_failure(struct target *t)
{
    ss_warn("scrape", "scrape failed job=%s instance=%s url=%s reason=%s: %s", t->job->name, t->instance,
            t->spec.url.data, fail_reason_names[t->fail], target_err(t));
}

/* The scrape is over: drop the zlib stream; give the compressed buffer to the spares
 * (or back to malloc). */
static void gz_reset(struct target *t)
{
    scrape_gzstream_free(t->gzs);
    t->gzs = NULL;
    gz_buf_release(t, true);
}

/* The compressed-body buffer goes back: at the end of the scrape to the spares
 * (spare_it), when the body switched to streaming (gz_start_stream) to malloc. */
static void gz_buf_release(struct target *t, bool spare_it)
{
    if (t->gz.len)
        t->gz_last = t->gz.len < UINT32_MAX ? (uint32_t)t->gz.len : UINT32_MAX;
    ss_buf_reset(&t->gz);
    if (!t->gz.cap)
        return;
    struct ss_buf *spare = NULL;
    for (int i = 0; spare_it && i < GZ_SPARES; i++) {
        struct ss_buf *sp = &t->m->gz_spare[i];
        if (!spare || sp->cap < spare->cap)
            spare = sp; /* the smallest (an empty slot first) */
    }
    if (spare && spare->cap < t->gz.cap) {
        struct ss_buf old = *spare;
        *spare = t->gz;
        ss_buf_free(&old);
    } else {
        ss_buf_free(&t->gz);
    }
    ss_buf_init(&t->gz, 0);
}

size_t scrape_manager_gz_spare_bytes(const struct scrape_manager *m)
{
    size_t n = 0;
    for (int i = 0; i < GZ_SPARES; i++)
        n += m->gz_spare[i].cap;
    return n;
}

/* How long t may pace: a quarter of its interval, at most PACE_MAX_MS, or, while no
 * other scrape is in flight (curl is not driven during a wait), until the next one is
 * due, at most PACE_ALONE_MAX_MS: one kube-state-metrics target of 100k series behind a
 * receiver 50 ms away needs about 2.5 s on one shard, and a scraper that has nothing
 * else to do meanwhile loses nothing by waiting. */
static int64_t pace_budget(const struct target *t, int64_t now)
{
    const struct scrape_manager *m = t->m;
    int64_t quarter = t->spec.interval_ms / 4;
    int64_t budget = quarter < PACE_MAX_MS ? quarter : PACE_MAX_MS;
    if (!m->running_scrapes && m->heap_ok) { /* t itself is not in the heap now */
        int64_t idle = m->nheap ? m->heap[0]->next_ms - now : INT64_MAX;
        int64_t alone = quarter < PACE_ALONE_MAX_MS ? quarter : PACE_ALONE_MAX_MS;
        if (idle > budget)
            budget = idle < alone ? idle : alone;
    }
    return budget;
}

/* The deadline of t's pacing waits, or 0: none now. The scrape loop waits in windows:
 * a big scrape opens one unless a window in which the loop waited is open, or closed
 * less than the time waited in it (at most PACE_MAX_MS) ago; so the loop waits at most
 * about half of any stretch of time, big targets finishing together wait out one
 * window, not one each, and a window nobody waited in costs nothing. Within it, t
 * waits no longer than its own budget, nor past the scrape timeout of any scrape in
 * flight (less 100 ms: their transfers stand still meanwhile). */
static int64_t pace_window(struct target *t)
{
    struct scrape_manager *m = t->m;
    int64_t now = ss_mono_ms();
    int64_t budget = pace_budget(t, now);
    int64_t cool = m->pace_used < PACE_MAX_MS ? m->pace_used : PACE_MAX_MS;
    if (!m->pace_used || now >= m->pace_until + cool) {
        m->pace_until = now + budget;
        m->pace_used = 0;
    }
    int64_t deadline = m->pace_until < now + budget ? m->pace_until : now + budget;
    for (const struct target *o = m->targets; o && m->running_scrapes; o = o->next)
        if (o->in_flight) {
            int64_t ends = (int64_t)(o->start_mono * 1000.0) + o->spec.timeout_ms - 100;
            if (ends < deadline)
                deadline = ends;
        }
    return now < deadline ? deadline : 0;
}

/* Before each series (or stale marker) t hands over: every PACE_STEP of them, let the
 * sink wait for room, within t's window (opened at the first such step). */
static void pace_step(struct target *t)
{
    const struct scrape_sink *sink = &t->m->sink;
    if (!sink->wait_room || t->pace.off || t->pace.n++ == 0 || t->pace.n % PACE_STEP != 1)
        return;
    if (!t->pace.deadline && !(t->pace.deadline = pace_window(t))) {
        t->pace.off = true;
        return;
    }
    int64_t w0 = ss_mono_ms();
    t->pace.off = atomic_load(&t->m->stop) || !sink->wait_room(sink->ud, t->pace.deadline);
    int64_t waited = ss_mono_ms() - w0;
    t->m->pace_used += waited;
    t->m->paced_s += waited / 1000.0;
}

/* Between the scrapes that finish together (the small targets of a slot): every
 * PACE_STEP series that small scrapes handed over (across passes of the loop), let the
 * sink wait for room before t's go, as a big scrape does between its parts
 * (pace_step), in the same windows, and not once the loop is told to stop. t's
 * duration was taken before (drain_completed): the wait is not part of its scrape. A
 * slot of ten 1k-series targets queued 1.6 MB at once, 0.8 MB with 25 ms slots;
 * paced, 1.4 MB. */
static void pace_between(struct target *t)
{
    struct scrape_manager *m = t->m;
    if (!m->sink.wait_room || m->handed < PACE_STEP || atomic_load(&m->stop))
        return;
    m->handed = 0;
    int64_t w0 = ss_mono_ms();
    if (m->sink.wait_room(m->sink.ud, w0)) /* room: no window (pace_window walks the targets) */
        return;
    int64_t deadline = pace_window(t);
    if (!deadline)
        return;
    (void)m->sink.wait_room(m->sink.ud, deadline);
    int64_t waited = ss_mono_ms() - w0;
    m->pace_used += waited;
    m->paced_s += waited / 1000.0;
}

/* A transfer that failed before an answer: libcurl's message, and the system's error
 * when the socket could not be made, which libcurl's words hide (a socket() refused for
 * the open-file limit reads "Couldn't connect to server"). */
static void fail_transfer(struct target *t, CURLcode res)
{
    const char *msg = t->errbuf[0] ? t->errbuf : curl_easy_strerror(res);
    if (t->sock_errno)
        target_fail(t, FAIL_CONNECT, "%s (socket: %s)", msg, strerror(t->sock_errno));
    else
        target_fail(t, FAIL_CONNECT, "%s", msg);
}

/* done: when the transfer was seen to end (ss_mono_seconds), before any pacing wait;
 * paced: m->paced_s then */
static void finish_scrape(struct target *t, CURLcode res, double done, double paced)
{
    /* Not the loop's own pacing waits while the transfer was in flight (libcurl is not
     * driven in them, so its end is only seen after them): the target's time is what
     * the duration says. `done` was read before this pass' waits, `paced` with it. */
    double duration = done - t->start_mono - (paced - t->paced_at_start);
    if (duration < 0)
        duration = 0;
    if (!t->failed) {
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (res == CURLE_OPERATION_TIMEDOUT)
            target_fail(t, FAIL_TIMEOUT, "context deadline exceeded (scrape_timeout %lldms)",
                        (long long)t->spec.timeout_ms);
        else if (res != CURLE_OK)
            fail_transfer(t, res);
        else if (status != 200)
            target_fail(t, FAIL_HTTP_STATUS, "server returned HTTP status %ld", status);
        else {
            struct scrape_parser_cb cb = {on_sample, on_meta, t, NULL};
            if (!t->body_started) /* empty body: still a valid (empty) scrape */
                scrape_parser_reset(t->parser, SCRAPE_FORMAT_TEXT);
            if (t->gzip)
                finish_gzip(t);
            int rc = t->failed ? 0 : scrape_parser_finish(t->parser, &cb);
            if (rc && !t->failed) {
                t->parse_error = true;
                target_fail(t, FAIL_PARSE, "%s", scrape_parser_error(t->parser));
            }
        }
    }
    parser_give(t);
    easy_give(t);
    if (t->gzip) /* a big body streams from its first byte next time (feed_gzip) */
        t->gz_big = t->body_bytes > GZ_WHOLE_PREFER || t->gz_in > GZ_STREAM_AT;
    gz_reset(t);
    struct job_state *js = t->job;
    atomic_fetch_add(&js->scrapes, 1);
    atomic_fetch_add(&js->duration_us_sum, (uint64_t)(duration * 1e6));

    struct scrape_report rep = {
        js->name,    t->instance, t->spec.url.data,   !t->failed,        t->failed ? target_err(t) : NULL,
        t->start_ms, duration,    t->spec.resource.v, t->spec.resource.n};
    const struct scrape_sink *sink = &t->m->sink;
    memset(&t->pace, 0, sizeof t->pace);
    if (sink->begin)
        sink->begin(sink->ud, &rep);
    if (t->failed) {
        log_failure(t);
        atomic_fetch_add(&js->failures[t->fail], 1);
        /* Prometheus 2.42 reports the samples it parsed and kept before an error inside
         * the body: a bad line halfway, an OpenMetrics body without # EOF, a label
         * limit, a name that relabeling broke, sample_limit (where it also reads the
         * rest, to count it: here the count stops there). A scrape that failed before
         * parsing (connect, status, size, gzip) parsed none. Series added: 0, as its
         * scrape cache keeps what a failed scrape added, so only the first of a run of
         * failures (not matched here) reports more. */
        if (!t->parse_error && !t->append_error && t->fail != FAIL_SAMPLE_LIMIT &&
            t->fail != FAIL_LABEL_LIMIT)
            t->samples_scraped = t->samples_post = 0;
        t->series_added = 0;
    } else {
        atomic_fetch_add(&js->samples_scraped, t->samples_scraped);
        atomic_fetch_add(&js->samples_post, t->samples_post);
        series_table_settle(&t->series);
        const struct series_table *st = &t->series;
        t->gmemo.on = true;
        t->gmemo.valid = false;
        struct series_cursor c = {0};
        for (uint32_t k = 0; k < st->norder; k++) {
            pace_step(t);
            double v;
            int64_t ts;
            uint32_t i = series_table_sample(st, &c, &v, &ts);
            emit_entry(t, &st->e[i], v, ts, &st->e[i]);
        }
        t->gmemo.on = false;
    }
    /* next_ms may move: the target is not in the heap while its scrape finishes */
    if (!t->failed) {
        uint32_t n = t->series.norder;
        if (t->on_slot ? n > 2 * SLOT_MAX_SERIES : n <= SLOT_MAX_SERIES)
            move_to_slot(t, !t->on_slot);
        else if (t->on_slot) /* targets came or went: the width may have changed */
            place_on_slot(t);
    }
    /* stale markers: series of the last committed scrape (staleness-tracked ones)
     * missing now, or all of them when this scrape failed */
    t->start_ms_stale = t->start_ms;
    size_t handled = t->series.norder;
    size_t stale = series_table_sweep(&t->series, !t->failed, emit_stale, t);
    /* also after a failure inside the body (sample_limit, a parse error): what it did
     * not reach is only relabeled again, and a target that fails every scrape keeps
     * no more dropped texts than one body holds */
    if (t->body_started)
        drop_set_sweep(&t->dropped);
    atomic_fetch_add(&js->stale_markers, stale);
    if (handled + stale >= TRIM_AFTER_SERIES)
        t->m->trim_due = true;
    emit_report(t, !t->failed, duration, t->start_ms, false);
    if (sink->end)
        sink->end(sink->ud, &rep);
}

/* Target removed or manager shutting down: everything it had goes stale. */
static void target_mark_stale(struct target *t)
{
    int64_t now = ss_now_ms();
    struct scrape_report rep = {
        t->job->name,       t->instance,       t->spec.url.data, false, "target removed", now, 0,
        t->spec.resource.v, t->spec.resource.n};
    const struct scrape_sink *sink = &t->m->sink;
    if (sink->begin)
        sink->begin(sink->ud, &rep);
    t->start_ms_stale = now;
    memset(&t->pace, 0, sizeof t->pace);
    series_table_begin(&t->series); /* nothing is seen in this generation */
    atomic_fetch_add(&t->job->stale_markers, series_table_sweep(&t->series, false, emit_stale, t));
    if (t->start_ms) /* only if it was ever scraped */
        emit_report(t, false, 0, now, true);
    if (sink->end)
        sink->end(sink->ud, &rep);
}

static void target_free(struct target *t)
{
    if (!t)
        return;
    if (t->on_slot)
        t->m->nslotted--;
    if (t->in_flight)
        curl_multi_remove_handle(t->m->multi, t->easy);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    free(t->errbuf);
    httpc_headers_free(t->headers);
    scrape_parser_free(t->parser);
    scrape_gzstream_free(t->gzs);
    ss_buf_free(&t->gz);
    scrape_target_spec_free(&t->spec);
    series_table_free(&t->series);
    drop_set_clear(&t->dropped);
    free(t->err);
    free(t);
}

/* The target's stable phase within its interval (from its identity hash). */
static int64_t phase_of(const struct target *t)
{
    return (int64_t)(t->spec.identity % (uint64_t)t->spec.interval_ms);
}

static int64_t first_offset_ms(const struct target *t)
{
    /* Stable phase within the interval, aligned to the wall clock. */
    int64_t iv = t->spec.interval_ms;
    int64_t phase = phase_of(t);
    int64_t now = ss_now_ms();
    return ((phase - now % iv) % iv + iv) % iv;
}

int64_t scrape_slot_width(int64_t interval_ms, size_t nslotted)
{
    if (interval_ms / 40 < PHASE_SLOT_MS)
        return interval_ms / 40;
    int64_t w = PHASE_SLOT_MS;
    while (w * 2 <= SLOT_WIDEST_MS && w * 2 <= interval_ms / 10 &&
           (uint64_t)(w * 2) * nslotted <= (uint64_t)interval_ms * SLOT_TARGETS)
        w *= 2;
    return w;
}

/* t on its slot at the width for the targets on slots now: from its next scrape on
 * (next_ms moves by the change). */
static void place_on_slot(struct target *t)
{
    int64_t w = scrape_slot_width(t->spec.interval_ms, t->m->nslotted);
    int64_t past = w > 1 ? phase_of(t) % w : 0;
    t->next_ms += t->slot_past - past;
    t->slot_past = past;
}

/* From the next scrape on, t starts on its slot (on) or on its phase. */
static void move_to_slot(struct target *t, bool on)
{
    t->on_slot = on;
    if (on) {
        t->m->nslotted++;
        place_on_slot(t);
    } else {
        t->m->nslotted--;
        t->next_ms += t->slot_past;
        t->slot_past = 0;
    }
}

static struct target *target_new(struct scrape_manager *m, struct job_state *js,
                                 struct scrape_target_spec *spec)
{
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->m = m;
    t->job = js;
    t->spec = *spec; /* takes the spec's memory */
    scrape_target_spec_init(spec);
    /* kept for the target's life: without the slack of building them (1 KB a target) */
    (void)ss_labels_compact(&t->spec.labels);
    (void)ss_labels_compact(&t->spec.resource);
    if (t->spec.url.cap > t->spec.url.len + 1) { /* built in a 256-byte buffer */
        char *u = realloc(t->spec.url.data, t->spec.url.len + 1);
        if (u) {
            t->spec.url.data = u;
            t->spec.url.cap = t->spec.url.len + 1;
        }
    }
    /* the URL is the target's for life (it is part of its identity): once, not per
     * scrape (host_is_numeric was 1% of the 1000x100 profile) */
    t->host_numeric = host_is_numeric(t->spec.url.data);
    const struct ss_str *inst = ss_labels_get(&t->spec.labels, SS_STR("instance"));
    t->instance = inst ? inst->p : "";
    const struct ss_str *jl = ss_labels_get(&t->spec.labels, SS_STR("job"));
    t->job_label = jl ? jl->p : ""; /* relabeled away: its series have no job either */
    ss_buf_init(&t->gz, 0); /* bounded by feed_gzip, which knows the job's limit */
    series_table_init(&t->series, SERIES_MAX_BYTES);
    series_table_share(&t->series, &t->m->dict);
    /* the parser and the libcurl handle come with the first scrape (parser_take,
     * easy_take) */
    t->next_ms = ss_mono_ms() + first_offset_ms(t);
    return t;
}

/* ---- jobs and targets ---------------------------------------------------- */

static struct job_state *job_find(struct scrape_manager *m, const char *name)
{
    for (struct job_state *j = m->jobs; j; j = j->next)
        if (strcmp(j->name, name) == 0)
            return j;
    return NULL;
}

/* The target of this job with this identity, present (already seen in this sync)
 * or not. */
static struct target *target_find(struct scrape_manager *m, struct job_state *js, uint64_t identity)
{
    for (struct target *t = m->targets; t; t = t->next)
        if (t->job == js && t->spec.identity == identity)
            return t;
    return NULL;
}

static void sync_group(struct scrape_manager *m, struct job_state *js, const struct scrape_target_group *g,
                       struct scrape_target_spec *spec)
{
    for (size_t k = 0; k < g->ntargets; k++) {
        char err[256] = "";
        int rc = scrape_target_populate(&js->cfg, g, g->targets[k], spec, err, sizeof err);
        if (rc < 0) {
            atomic_fetch_add(&js->sync_failed, 1);
            ss_error("scrape", "dropping target job=%s address=%s: %s", js->name, g->targets[k],
                     err[0] ? err : ss_strerror(rc));
            continue;
        }
        if (rc == 0)
            continue; /* dropped by relabeling */
        struct target *t = target_find(m, js, spec->identity);
        if (t) { /* kept from before, or a duplicate within this sync: scraped once */
            t->present = true;
            continue;
        }
        t = target_new(m, js, spec);
        if (!t) {
            atomic_fetch_add(&js->sync_failed, 1);
            ss_error("scrape", "out of memory adding target job=%s address=%s", js->name, g->targets[k]);
            continue;
        }
        t->present = true;
        pthread_mutex_lock(&m->lock);
        t->next = m->targets;
        m->targets = t;
        pthread_mutex_unlock(&m->lock);
    }
}

bool scrape_conn_shares_on(bool on, size_t ntargets)
{
    return on ? ntargets >= EASY_OWN_TARGETS * 3 / 4 : ntargets > EASY_OWN_TARGETS;
}

/* Whether the targets use the connection caches, for n targets; a switch sets every
 * target's options again at its next scrape (setup_easy), its cache with them. */
static void set_conn_shares(struct scrape_manager *m, size_t n)
{
    bool on = scrape_conn_shares_on(m->shares_on, n);
    if (on == m->shares_on)
        return;
    m->shares_on = on;
    m->easy_epoch++;
    for (struct target *t = m->targets; t; t = t->next)
        t->easy_ready = false;
}

/* Every target keeps a connection open between scrapes, and the senders, the web
 * server and files need a few descriptors more: warn once when the targets come near
 * the open-file limit (collector main raises it to the hard limit at start), as their
 * scrapes will fail to connect, and again after they were back under it. */
#define FD_RESERVE 64
static void check_fd_room(struct scrape_manager *m)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    bool short_of = m->ntargets + FD_RESERVE > rl.rlim_cur;
    if (short_of && !m->fd_warned)
        ss_warn("scrape",
                "%zu targets keep a connection open each, and the open-file limit is %llu: some scrapes will "
                "fail "
                "to connect (Too many open files); raise the limit (ulimit -n, systemd's LimitNOFILE, the "
                "container runtime's nofile)",
                m->ntargets, (unsigned long long)rl.rlim_cur);
    m->fd_warned = short_of;
}

/* Recompute every target from the jobs' groups; keep the ones that did not change. */
static void sync_targets(struct scrape_manager *m)
{
    for (struct target *t = m->targets; t; t = t->next)
        t->present = false;
    struct scrape_target_spec spec;
    scrape_target_spec_init(&spec);
    for (struct job_state *js = m->jobs; js; js = js->next) {
        if (!js->present)
            continue;
        for (size_t i = 0; i < js->cfg.nstatic_groups; i++)
            sync_group(m, js, &js->cfg.static_groups[i], &spec);
        size_t ng = js->sd ? scrape_sd_groups_count(js->sd) : 0;
        for (size_t i = 0; i < ng; i++)
            sync_group(m, js, scrape_sd_groups_get(js->sd, i), &spec);
        for (size_t d = 0; d < js->ndyn; d++)
            for (size_t i = 0; i < js->dyn_ngroups[d]; i++)
                sync_group(m, js, &js->dyn_groups[d][i], &spec);
    }
    scrape_target_spec_free(&spec);
    struct target **pp = &m->targets;
    while (*pp) {
        struct target *t = *pp;
        if (t->present) {
            pp = &t->next;
            continue;
        }
        if (t->in_flight) {
            curl_multi_remove_handle(m->multi, t->easy);
            t->in_flight = false;
            m->running_scrapes--;
        }
        /* A target whose scrape settings changed (interval, timeout) is a new target
         * with the same series: as Prometheus at a reload, the old one leaves no stale
         * markers, so its series carry on without a gap. */
        struct target *same = NULL;
        for (struct target *o = m->targets; o && !same; o = o->next)
            if (o->present && o->job == t->job && o->spec.series_identity == t->spec.series_identity)
                same = o;
        if (same) {
            ss_info("scrape", "target settings changed job=%s instance=%s", t->job->name, t->instance);
        } else {
            ss_info("scrape", "target removed job=%s instance=%s", t->job->name, t->instance);
            target_mark_stale(t);
        }
        pthread_mutex_lock(&m->lock);
        *pp = t->next;
        pthread_mutex_unlock(&m->lock);
        target_free(t);
    }
    heap_rebuild(m);
    for (struct job_state *js = m->jobs; js; js = js->next)
        atomic_store(&js->ntargets, 0);
    for (struct target *t = m->targets; t; t = t->next)
        atomic_fetch_add(&t->job->ntargets, 1);
    for (struct job_state *js = m->jobs; js; js = js->next) {
        uint64_t n = atomic_load(&js->ntargets), lim = js->cfg.target_limit;
        uint64_t over = js->present && lim && n > lim ? n : 0;
        if (over) {
            atomic_fetch_add(&js->target_limit_exceeded, 1);
            if (!js->over_limit)
                ss_error("scrape",
                         "job %s: target_limit exceeded (number of targets: %llu, limit: %llu): every scrape "
                         "of the job fails until it has no more targets than the limit",
                         js->name, (unsigned long long)n, (unsigned long long)lim);
        } else if (js->over_limit) {
            ss_info("scrape", "job %s: within target_limit again (%llu targets)", js->name,
                    (unsigned long long)n);
        }
        js->over_limit = over;
    }
    set_conn_shares(m, m->ntargets); /* counted by heap_rebuild */
    check_fd_room(m);
}

static void sd_wake(void *arg)
{
    struct scrape_manager *m = arg;
    curl_multi_wakeup(m->multi);
}

/* Start (on) or stop watching the discoverers of the job's config (see
 * scrape_discoverer.watch); they are valid until the caller's next job set. */
static void watch_discoverers(struct scrape_manager *m, const struct job_state *js, bool on)
{
    for (size_t d = 0; d < js->cfg.ndiscoverers; d++) {
        const struct scrape_discoverer *ds = &js->cfg.discoverers[d];
        if (ds->watch && ds->next_poll_ms) /* one alone is ignored (scrape.h) */
            ds->watch(ds->ud, on ? sd_wake : NULL, on ? m : NULL);
    }
}

/* Poll the job's dynamic discoverers; true when any changed. */
static bool poll_discoverers(struct job_state *js)
{
    if (!js->present || !js->cfg.ndiscoverers)
        return false;
    if (js->ndyn != js->cfg.ndiscoverers) {
        free(js->dyn_groups);
        free(js->dyn_ngroups);
        js->dyn_groups = calloc(js->cfg.ndiscoverers, sizeof *js->dyn_groups);
        js->dyn_ngroups = calloc(js->cfg.ndiscoverers, sizeof *js->dyn_ngroups);
        js->ndyn = js->dyn_groups && js->dyn_ngroups ? js->cfg.ndiscoverers : 0;
    }
    bool changed = false;
    for (size_t d = 0; d < js->ndyn; d++) {
        const struct scrape_discoverer *ds = &js->cfg.discoverers[d];
        const struct scrape_target_group *g = NULL;
        size_t n = 0;
        if (ds->poll(ds->ud, &g, &n)) {
            js->dyn_groups[d] = g;
            js->dyn_ngroups[d] = n;
            changed = true;
        }
    }
    return changed;
}

static bool refresh_file_sd(struct scrape_manager *m, struct job_state *js, bool force)
{
    if (!js->present || !js->cfg.nfile_sd_files)
        return false;
    int64_t now = ss_mono_ms();
    if (!force && now < js->sd_next_check_ms)
        return false;
    /* Re-check cheaply (mtime/size) at least every 5 s; re-read on change or at the
     * configured refresh interval, as Prometheus' file SD does with inotify + refresh. */
    int64_t every = js->cfg.file_sd_refresh_ms > 0 && js->cfg.file_sd_refresh_ms < 5000
                        ? js->cfg.file_sd_refresh_ms
                        : 5000;
    js->sd_next_check_ms = now + every;
    uint64_t fp = 0;
    scrape_file_sd_fingerprint(js->cfg.file_sd_files, js->cfg.nfile_sd_files, &fp);
    if (!force && fp == js->sd_fingerprint)
        return false;
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 0;
    if (scrape_file_sd_load(js->cfg.file_sd_files, js->cfg.nfile_sd_files, &g, &nerr) != 0) {
        atomic_fetch_add(&js->sd_errors, 1);
        return false;
    }
    atomic_fetch_add(&js->sd_errors, nerr);
    (void)m;
    scrape_sd_groups_free(js->sd);
    js->sd = g;
    js->sd_fingerprint = fp;
    return true;
}

int scrape_manager_set_jobs(struct scrape_manager *m, const struct scrape_job *jobs, size_t njobs)
{
    int rc = 0;
    for (struct job_state *js = m->jobs; js; js = js->next) {
        js->present_before = js->present;
        js->present = false;
    }
    for (size_t i = 0; i < njobs; i++) {
        struct job_state *js = job_find(m, jobs[i].name);
        if (!js) {
            js = calloc(1, sizeof *js);
            if (!js || !(js->name = strdup(jobs[i].name))) {
                /* Left out, not a return: every other job must still move to this set,
                 * since the caller frees the previous one after this call. */
                free(js);
                ss_error("scrape", "job %s: out of memory, not scraped until the next configuration change",
                         jobs[i].name);
                rc = SS_ENOMEM;
                continue;
            }
            pthread_mutex_lock(&m->lock);
            js->next = m->jobs;
            m->jobs = js;
            pthread_mutex_unlock(&m->lock);
        }
        /* The same discoverers as before (a job kept across the change, e.g. an
         * unchanged monitor's): their groups stay, since a discoverer only reports
         * what changed since its last poll. Comparing the pointers is safe: the
         * previous generation is freed only after this call. */
        bool same_sd = js->present_before && js->cfg.discoverers == jobs[i].discoverers &&
                       js->cfg.ndiscoverers == jobs[i].ndiscoverers;
        if (js->present_before && !same_sd)
            watch_discoverers(m, js, false);
        js->cfg = jobs[i];
        js->cfg.name = js->name;
        js->present = true;
        js->sd_fingerprint = 0;
        refresh_file_sd(m, js, true);
        if (!same_sd) {
            js->ndyn = 0; /* new discoverers: forget the old ones' groups */
            watch_discoverers(m, js, true);
        }
        poll_discoverers(js);
    }
    for (struct job_state *js = m->jobs; js; js = js->next)
        if (!js->present) {
            if (js->present_before)
                watch_discoverers(m, js, false);
            scrape_sd_groups_free(js->sd);
            js->sd = NULL;
            js->ndyn = 0;
            memset(&js->cfg, 0, sizeof js->cfg);
            js->cfg.name = js->name;
        }
    sync_targets(m);
    m->easy_epoch++; /* the spares' options too (easy_take) */
    /* the job's rules or limits may have changed: cached label results are void */
    for (struct target *t = m->targets; t; t = t->next) {
        series_table_clear_raw(&t->series);
        drop_set_clear(&t->dropped);
        t->easy_ready = false; /* its job's http_config may have changed too */
    }
    return rc;
}

/* ---- the loop ----------------------------------------------------------- */

static void drain_completed(struct scrape_manager *m)
{
    CURLMsg *msg;
    int left;
    /* every transfer read here ended before this pass (curl is not driven in it) */
    double done = ss_mono_seconds(), paced = m->paced_s;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct target *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode res = msg->data.result;
        curl_multi_remove_handle(m->multi, msg->easy_handle);
        if (!t)
            continue;
        t->in_flight = false;
        m->running_scrapes--;
        pace_between(t);
        finish_scrape(t, res, done, paced);
        if (t->samples_post <= PACE_STEP) /* a bigger one paces itself (pace_step) */
            m->handed += t->samples_post;
        heap_push(m, t);
    }
}

/* ---- the schedule: a min-heap of the targets not in flight ---------------------- */

static void heap_up(struct scrape_manager *m, size_t i)
{
    struct target *t = m->heap[i];
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (m->heap[up]->next_ms <= t->next_ms)
            break;
        m->heap[i] = m->heap[up];
        i = up;
    }
    m->heap[i] = t;
}

static void heap_down(struct scrape_manager *m, size_t i)
{
    struct target *t = m->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->nheap)
            break;
        if (c + 1 < m->nheap && m->heap[c + 1]->next_ms < m->heap[c]->next_ms)
            c++;
        if (t->next_ms <= m->heap[c]->next_ms)
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    m->heap[i] = t;
}

/* A target that finished its scrape (or could not start one) waits for its slot. */
static void heap_push(struct scrape_manager *m, struct target *t)
{
    if (!m->heap_ok || m->nheap == m->heap_cap) /* cannot happen: room for every target */
        return;
    m->heap[m->nheap++] = t;
    heap_up(m, m->nheap - 1);
}

/* Every target not in flight, after the list changed. */
static void heap_rebuild(struct scrape_manager *m)
{
    size_t n = 0;
    for (struct target *t = m->targets; t; t = t->next)
        n++;
    m->ntargets = n;
    if (n > m->heap_cap) {
        struct target **h = realloc(m->heap, n * sizeof *h);
        if (!h) {
            m->heap_ok = false;
            return;
        }
        m->heap = h;
        m->heap_cap = n;
    }
    m->heap_ok = true;
    m->nheap = 0;
    for (struct target *t = m->targets; t; t = t->next)
        if (!t->in_flight)
            heap_push(m, t);
}

/* Start t's scrape (it is due, or all are); skip missed slots (e.g. after a long
 * stall) instead of bursting. */
static void start_one(struct target *t, int64_t now)
{
    start_scrape(t);
    if (!t->in_flight)
        finish_scrape(t, CURLE_FAILED_INIT, ss_mono_seconds(), t->m->paced_s);
    while (t->next_ms <= now)
        t->next_ms += t->spec.interval_ms;
}

/* Start what is due (all: every target not in flight); next_slot tells what is next. */
static void start_due(struct scrape_manager *m, int64_t now, bool all)
{
    if (m->heap_ok && !all) {
        while (m->nheap && m->heap[0]->next_ms <= now) {
            struct target *t = m->heap[0];
            m->heap[0] = m->heap[--m->nheap];
            if (m->nheap)
                heap_down(m, 0);
            start_one(t, now);
            if (!t->in_flight)
                heap_push(m, t);
        }
        return;
    }
    for (struct target *t = m->targets; t; t = t->next)
        if (!t->in_flight && (all || t->next_ms <= now))
            start_one(t, now);
    if (all)
        heap_rebuild(m);
}

/* The earliest slot of a target not in flight (INT64_MAX: none). */
static int64_t next_slot(const struct scrape_manager *m)
{
    if (m->heap_ok)
        return m->nheap ? m->heap[0]->next_ms : INT64_MAX;
    int64_t next = INT64_MAX;
    for (const struct target *t = m->targets; t; t = t->next)
        if (!t->in_flight && t->next_ms < next)
            next = t->next_ms;
    return next;
}

/* How long the loop may sleep (see IDLE_WAIT_MS): taken after drain_completed, whose
 * targets are back in the schedule with their next slots. */
static int loop_wait_ms(const struct scrape_manager *m)
{
    int64_t now = ss_mono_ms();
    int64_t until = next_slot(m);
#ifdef __GLIBC__ /* the loop trims only there */
    int64_t trim = m->last_trim_ms + (m->trim_due ? TRIM_MIN_GAP_MS : TRIM_EVERY_MS);
    if (trim < until)
        until = trim;
#endif
    for (const struct job_state *js = m->jobs; js; js = js->next) {
        if (!js->present)
            continue;
        for (size_t d = 0; d < js->cfg.ndiscoverers; d++) {
            const struct scrape_discoverer *ds = &js->cfg.discoverers[d];
            int64_t at = ds->watch && ds->next_poll_ms ? ds->next_poll_ms(ds->ud) : now + DISCOVERY_POLL_MS;
            if (at < until)
                until = at;
        }
        if (js->cfg.nfile_sd_files && js->sd_next_check_ms < until)
            until = js->sd_next_check_ms;
    }
    long curl_to = -1;
    curl_multi_timeout(m->multi, &curl_to);
    int64_t wait = until == INT64_MAX ? IDLE_WAIT_MS : until - now;
    if (curl_to >= 0 && curl_to < wait)
        wait = curl_to;
    return wait < 0 ? 0 : wait > IDLE_WAIT_MS ? IDLE_WAIT_MS : (int)wait;
}

int scrape_manager_run(struct scrape_manager *m)
{
    while (!atomic_load(&m->stop)) {
        atomic_fetch_add_explicit(&m->loop_turns, 1, memory_order_relaxed);
        int64_t now = ss_mono_ms();
        bool changed = false;
        for (struct job_state *js = m->jobs; js; js = js->next) {
            changed |= refresh_file_sd(m, js, false);
            changed |= poll_discoverers(js);
        }
        if (changed)
            sync_targets(m);
#ifdef __GLIBC__
        /* Give freed pages inside the heap back to the kernel: targets that come and go
         * free their series state in the middle of the main arena, which glibc only
         * returns from the top on its own, so RSS crept up under churn while the live
         * heap stayed flat. The same after a big scrape: its sample arrays and queue
         * segments are freed in the middle of the heap, and kube-state-metrics' 100k
         * series kept 3 MB of them resident until the next minute's trim. */
        if (changed || now - m->last_trim_ms >= TRIM_EVERY_MS ||
            (m->trim_due && now - m->last_trim_ms >= TRIM_MIN_GAP_MS)) {
            malloc_trim(0);
            m->last_trim_ms = now;
            m->trim_due = false;
        }
#endif
        start_due(m, now, false);
        int running = 0;
        curl_multi_perform(m->multi, &running);
        drain_completed(m);
        curl_multi_poll(m->multi, NULL, 0, loop_wait_ms(m), NULL);
    }
    atomic_store(&m->stop, false); /* a later run() (after a reload) starts fresh */
    return 0;
}

int scrape_manager_scrape_once(struct scrape_manager *m)
{
    int64_t now = ss_mono_ms();
    start_due(m, now, true);
    while (m->running_scrapes > 0 && !atomic_load(&m->stop)) {
        int running = 0;
        curl_multi_perform(m->multi, &running);
        drain_completed(m);
        if (m->running_scrapes > 0)
            curl_multi_poll(m->multi, NULL, 0, 200, NULL);
    }
    int failed = 0;
    for (struct target *t = m->targets; t; t = t->next)
        failed += t->failed;
    return failed;
}

void scrape_manager_set_sink(struct scrape_manager *m, const struct scrape_sink *sink)
{
    m->sink = *sink;
}

void scrape_manager_stop(struct scrape_manager *m)
{
    atomic_store(&m->stop, true);
    curl_multi_wakeup(m->multi);
}

size_t scrape_manager_dropped_cached(const struct scrape_manager *m)
{
    size_t n = 0;
    for (const struct target *t = m->targets; t; t = t->next)
        n += t->dropped.n;
    return n;
}

void scrape_manager_mark_all_stale(struct scrape_manager *m)
{
    for (struct target *t = m->targets; t; t = t->next)
        target_mark_stale(t);
}

int scrape_manager_new(const struct scrape_manager_opts *opts, const struct scrape_sink *sink,
                       struct scrape_manager **out)
{
    *out = NULL;
    struct scrape_manager *m = calloc(1, sizeof *m);
    if (!m)
        return SS_ENOMEM;
    m->sink = *sink;
    snprintf(m->user_agent, sizeof m->user_agent, "%s",
             opts && opts->user_agent ? opts->user_agent : "scrapeship/" SS_VERSION);
    pthread_mutex_init(&m->lock, NULL);
    ss_labels_init(&m->ext);
    ss_buf_init(&m->ext_wire, 0);
    ss_buf_init(&m->merged_wire, 0);
    ss_labels_init(&m->work);
    ss_buf_init(&m->wire, 0);
    series_dict_init(&m->dict, SERIES_MAX_BYTES);
    if (opts && scrape_manager_set_external_labels(m, opts->external_labels, opts->nexternal_labels)) {
        scrape_manager_free(m);
        return SS_ENOMEM;
    }
    m->multi = curl_multi_init();
    if (!m->multi || scrape_gunzip_new(&m->gunzip)) {
        scrape_manager_free(m);
        return SS_ENOMEM;
    }
    /* Keep one connection per target alive between scrapes. */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, 10000L);
    *out = m;
    return 0;
}

int scrape_manager_set_external_labels(struct scrape_manager *m, const struct ss_kv *ext, size_t n)
{
    if (n > 64)
        return SS_ELIMIT;
    bool same = n == m->ext.n;
    for (size_t i = 0; same && i < n; i++)
        same =
            ss_str_eq_cstr(m->ext.v[i].name, ext[i].key) && ss_str_eq_cstr(m->ext.v[i].value, ext[i].value);
    if (!same) /* the sinks' hints were derived from the labels with the old ones merged in */
        for (struct target *t = m->targets; t; t = t->next)
            series_table_clear_raw(&t->series);
    ss_labels_reset(&m->ext);
    for (size_t i = 0; i < n; i++) {
        int rc = ss_labels_setc(&m->ext, (struct ss_str){ext[i].key, strlen(ext[i].key)},
                                (struct ss_str){ext[i].value, strlen(ext[i].value)});
        if (rc)
            return rc;
    }
    ss_labels_sort(&m->ext);
    ss_buf_reset(&m->ext_wire);
    int rc = ss_buf_reserve(&m->ext_wire, ss_labels_wire_size(m->ext.v, m->ext.n));
    if (rc) {
        ss_labels_reset(&m->ext);
        return rc;
    }
    for (size_t i = 0; i < m->ext.n; i++) {
        uint8_t *end = ss_labels_wire_write((uint8_t *)m->ext_wire.data + m->ext_wire.len, &m->ext.v[i], 1);
        m->ext_wire.len = (size_t)(end - (uint8_t *)m->ext_wire.data);
        m->ext_ends[i] = (uint32_t)m->ext_wire.len;
    }
    return 0;
}

void scrape_manager_free(struct scrape_manager *m)
{
    if (!m)
        return;
    ss_labels_free(&m->ext);
    ss_buf_free(&m->ext_wire);
    ss_buf_free(&m->merged_wire);
    ss_labels_free(&m->work);
    ss_buf_free(&m->wire);
    while (m->nparser_spare)
        scrape_parser_free(m->parser_spare[--m->nparser_spare]);
    while (m->neasy_spare)
        easy_spare_free(&m->easy_spare[--m->neasy_spare]);
    free(m->heap);
    struct target *t = m->targets;
    while (t) {
        struct target *n = t->next;
        target_free(t);
        t = n;
    }
    struct job_state *j = m->jobs;
    while (j) {
        struct job_state *n = j->next;
        if (j->present)
            watch_discoverers(m, j, false);
        scrape_sd_groups_free(j->sd);
        free(j->dyn_groups);
        free(j->dyn_ngroups);
        free(j->name);
        free(j);
        j = n;
    }
    if (m->multi)
        curl_multi_cleanup(m->multi);
    for (int i = 0; i < CONN_SHARES; i++) /* no handle uses them now: closes their connections */
        if (m->conn_share[i])
            curl_share_cleanup(m->conn_share[i]);
    scrape_gunzip_free(m->gunzip);
    for (int i = 0; i < GZ_SPARES; i++)
        ss_buf_free(&m->gz_spare[i]);
    series_dict_free(&m->dict); /* after the targets' tables */
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- self-metrics --------------------------------------------------------- */

/* j->name as a label value, escaped into tmp: job_name may hold any character. */
static const char *job_label(struct ss_buf *tmp, const struct job_state *j, int *rc)
{
    ss_buf_reset(tmp);
    *rc = ss_escape_label_value(tmp, j->name, strlen(j->name));
    return tmp->data ? tmp->data : "";
}

int scrape_manager_render_metrics(struct scrape_manager *m, struct ss_buf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per_job[] = {
        {"scrapeship_scrapes_total", "counter", "Scrapes attempted.", offsetof(struct job_state, scrapes)},
        {"scrapeship_scrape_samples_scraped_total", "counter", "Samples parsed from scrape bodies.",
         offsetof(struct job_state, samples_scraped)},
        {"scrapeship_scrape_samples_post_relabel_total", "counter", "Samples kept after metric relabeling.",
         offsetof(struct job_state, samples_post)},
        {"scrapeship_scrape_stale_markers_total", "counter", "Staleness markers emitted.",
         offsetof(struct job_state, stale_markers)},
        {"scrapeship_scrape_duplicate_samples_total", "counter",
         "Samples dropped because their series appeared twice in one scrape.",
         offsetof(struct job_state, duplicates)},
        {"scrapeship_targets", "gauge", "Active scrape targets.", offsetof(struct job_state, ntargets)},
        {"scrapeship_sd_file_read_errors_total", "counter", "file_sd files that failed to load.",
         offsetof(struct job_state, sd_errors)},
        {"scrapeship_target_scrape_pool_exceeded_target_limit_total", "counter",
         "Syncs that found the job with more targets than its target_limit (its scrapes then fail).",
         offsetof(struct job_state, target_limit_exceeded)},
        {"scrapeship_target_sync_failed_total", "counter",
         "Discovered targets that could not be scraped (a bad address, scheme, interval or timeout after "
         "relabeling, or no memory), at each sync; the log names each.",
         offsetof(struct job_state, sync_failed)},
    };
    int rc = 0;
    struct ss_buf job;
    ss_buf_init(&job, 0);
    pthread_mutex_lock(&m->lock);
    for (size_t k = 0; k < sizeof per_job / sizeof per_job[0] && !rc; k++) {
        rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", per_job[k].name, per_job[k].help,
                           per_job[k].name, per_job[k].type);
        for (struct job_state *j = m->jobs; j && !rc; j = j->next) {
            const _Atomic uint64_t *v =
                (const _Atomic uint64_t *)(const void *)((const char *)j + per_job[k].off);
            const char *jl = job_label(&job, j, &rc);
            rc = rc ? rc
                    : ss_buf_printf(out, "%s{scrape_job=\"%s\"} %llu\n", per_job[k].name, jl,
                                    (unsigned long long)atomic_load(v));
        }
    }
    if (!rc)
        rc = ss_buf_printf(out, "# HELP scrapeship_scrape_failures_total Failed scrapes by reason.\n"
                                "# TYPE scrapeship_scrape_failures_total counter\n");
    for (struct job_state *j = m->jobs; j && !rc; j = j->next) {
        const char *jl = job_label(&job, j, &rc);
        for (int r = 0; r < FAIL_NREASONS && !rc; r++)
            rc =
                ss_buf_printf(out, "scrapeship_scrape_failures_total{scrape_job=\"%s\",reason=\"%s\"} %llu\n",
                              jl, fail_reason_names[r], (unsigned long long)atomic_load(&j->failures[r]));
    }
    if (!rc)
        rc = ss_buf_printf(out, "# HELP scrapeship_scrape_duration_seconds Scrape durations.\n"
                                "# TYPE scrapeship_scrape_duration_seconds summary\n");
    for (struct job_state *j = m->jobs; j && !rc; j = j->next) {
        const char *jl = job_label(&job, j, &rc);
        rc = rc ? rc
                : ss_buf_printf(out,
                                "scrapeship_scrape_duration_seconds_sum{scrape_job=\"%s\"} %.6f\n"
                                "scrapeship_scrape_duration_seconds_count{scrape_job=\"%s\"} %llu\n",
                                jl, (double)atomic_load(&j->duration_us_sum) / 1e6, jl,
                                (unsigned long long)atomic_load(&j->scrapes));
    }
    if (!rc)
        rc = ss_buf_printf(out,
                           "# HELP scrapeship_scrape_loop_wakeups_total Turns of the scrape loop: socket "
                           "events, timers, scrape starts.\n"
                           "# TYPE scrapeship_scrape_loop_wakeups_total counter\n"
                           "scrapeship_scrape_loop_wakeups_total %llu\n",
                           (unsigned long long)atomic_load(&m->loop_turns));
    pthread_mutex_unlock(&m->lock);
    ss_buf_free(&job);
    return rc;
}
