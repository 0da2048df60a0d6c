/* remote_metrics.c: a remote's self-metrics in the Prometheus text format.
 *
 * Metric names follow Prometheus' prometheus_remote_storage_* meanings, prefixed
 * scrapeship_remote_; "shards" are sender threads. Families are rendered once for all
 * remotes so that each family's lines stay together, as the exposition format wants. */
#include <stdio.h>

#include "remote_int.h"

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
static uint64_t g_queue_bytes(struct rw_remote *r)
{
    return atomic_load(&r->queue_bytes);
}
static uint64_t g_mem_bound(struct rw_remote *r)
{
    return r->mem_bound;
}
static uint64_t g_pace_bytes(struct rw_remote *r)
{
    return atomic_load(&r->pace_bytes);
}
static uint64_t g_pace_waits(struct rw_remote *r)
{
    return atomic_load(&r->pace_waits);
}
static uint64_t g_pace_timeouts(struct rw_remote *r)
{
    return atomic_load(&r->pace_timeouts);
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
    return (uint64_t)atomic_load(&r->nsenders);
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
        {"scrapeship_remote_queue_capacity_samples", "gauge",
         "capacity x shards: samples the shards buffer before more shards are wanted.", g_capacity},
        {"scrapeship_remote_queue_bytes", "gauge", "Encoded bytes queued in memory, not yet sent.",
         g_queue_bytes},
        {"scrapeship_remote_queue_max_bytes", "gauge",
         "max_memory_bytes: the memory bound on queued data; past it the oldest is dropped or spilled.",
         g_mem_bound},
        {"scrapeship_remote_queue_pace_bytes", "gauge",
         "Queued bytes above which a big scrape waits for the shards before it queues more.", g_pace_bytes},
        {"scrapeship_remote_pace_waits_total", "counter",
         "Times a big scrape waited for the queue to drain to the pacing mark.", g_pace_waits},
        {"scrapeship_remote_pace_timeouts_total", "counter",
         "Waits that ran out of time: the rest of that scrape was queued at once.", g_pace_timeouts},
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
            rc = ss_buf_printf(b, "%s" L " %llu\n", fam[f].name, rs[i]->mname, rs[i]->murl,
                               (unsigned long long)fam[f].get(rs[i]));
    }
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_highest_timestamp_in_seconds Newest sample timestamp queued.\n"
               "# TYPE scrapeship_remote_highest_timestamp_in_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_remote_highest_timestamp_in_seconds" L " %.3f\n", rs[i]->mname,
                           rs[i]->murl, (double)atomic_load(&rs[i]->highest_ts_in) / 1000.0);
    if (!rc)
        rc = ss_buf_printf(b, "# HELP scrapeship_remote_disk_oldest_sample_age_seconds Age of the oldest "
                              "unsent sample on disk (0 when empty).\n"
                              "# TYPE scrapeship_remote_disk_oldest_sample_age_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++) {
        struct rw_diskq_stats st = dstats(rs[i]);
        double age = st.samples && st.oldest_ts ? (double)(ss_now_ms() - st.oldest_ts) / 1000.0 : 0;
        rc = ss_buf_printf(b, "scrapeship_remote_disk_oldest_sample_age_seconds" L " %.3f\n", rs[i]->mname,
                           rs[i]->murl, age);
    }
    if (!rc)
        rc = ss_buf_printf(b, "# HELP scrapeship_remote_pace_wait_seconds_total Time the scrape thread "
                              "waited for room in the queue (pacing).\n"
                              "# TYPE scrapeship_remote_pace_wait_seconds_total counter\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_remote_pace_wait_seconds_total" L " %.6f\n", rs[i]->mname,
                           rs[i]->murl, (double)atomic_load(&rs[i]->pace_wait_us) / 1e6);
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_highest_sent_timestamp_seconds Newest sample timestamp delivered.\n"
               "# TYPE scrapeship_remote_highest_sent_timestamp_seconds gauge\n");
    for (size_t i = 0; i < n && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_remote_highest_sent_timestamp_seconds" L " %.3f\n", rs[i]->mname,
                           rs[i]->murl, (double)atomic_load(&rs[i]->highest_ts_sent) / 1000.0);
    if (!rc)
        rc = ss_buf_printf(
            b, "# HELP scrapeship_remote_samples_dropped_total Samples never delivered, by reason.\n"
               "# TYPE scrapeship_remote_samples_dropped_total counter\n");
    for (size_t i = 0; i < n && !rc; i++)
        for (int d = 0; d < DROP_NREASONS && !rc; d++)
            rc = ss_buf_printf(
                b,
                "scrapeship_remote_samples_dropped_total{remote_name=\"%s\",url=\"%s\",reason=\"%s\"} %llu\n",
                rs[i]->mname, rs[i]->murl, rw_drop_reason_names[d],
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
                rs[i]->mname, rs[i]->murl, code, (unsigned long long)v);
        }
    if (!rc)
        rc = ss_buf_printf(b,
                           "# HELP scrapeship_remote_sent_batch_duration_seconds Duration of send requests.\n"
                           "# TYPE scrapeship_remote_sent_batch_duration_seconds histogram\n");
    for (size_t i = 0; i < n && !rc; i++) {
        struct rw_remote *r = rs[i];
        uint64_t cum = 0;
        for (size_t k = 0; k < RW_NBUCKETS && !rc; k++) {
            cum += atomic_load(&r->hist[k]);
            rc = ss_buf_printf(b,
                               "scrapeship_remote_sent_batch_duration_seconds_bucket{remote_name=\"%s\",url="
                               "\"%s\",le=\"%g\"} %llu\n",
                               r->mname, r->murl, rw_send_buckets[k], (unsigned long long)cum);
        }
        cum += atomic_load(&r->hist[RW_NBUCKETS]);
        if (!rc)
            rc = ss_buf_printf(b,
                               "scrapeship_remote_sent_batch_duration_seconds_bucket{remote_name=\"%s\",url="
                               "\"%s\",le=\"+Inf\"} %llu\n"
                               "scrapeship_remote_sent_batch_duration_seconds_sum" L " %.6f\n"
                               "scrapeship_remote_sent_batch_duration_seconds_count" L " %llu\n",
                               r->mname, r->murl, (unsigned long long)cum, r->mname, r->murl,
                               (double)atomic_load(&r->hist_sum_us) / 1e6, r->mname, r->murl,
                               (unsigned long long)cum);
    }
#undef L
    return rc;
}
