/* remote.c: one remote_write endpoint: lifecycle, resharding and metadata.
 *
 * The pieces are in remote_int.h's files: queue.c (the scrape-thread side and the
 * memory bound), sender.c (batches, HTTP, retries), spill.c (the disk queue), and
 * remote_metrics.c. This file starts and stops them, runs the manager thread, which
 * reshards and sends metadata, and keeps the metadata table.
 *
 * Resharding follows Prometheus' calculateDesiredShards idea, recomputed every second:
 * senders needed = time per sample x (samples arriving per second + a fifth of the
 * backlog per second) / TARGET_BUSY, at most doubling per step. Senders are kept at
 * most 40% busy because scrapes arrive in bursts (a whole target at once): a sender
 * with headroom drains a burst before the next one. The time per sample is measured
 * from completed requests; before the first one completes it is estimated from the
 * requests in flight and a default, so a remote grows from a cold start. A backlog of
 * more than `capacity` samples per sender for two ticks in a row also asks for more.
 * Growth happens at once (at most every RESHARD_UP_MS) and never while the remote is
 * failing or spilling, and it must pay: the time per sample is wall time, which grows
 * with the sender count when the receiver itself is the bottleneck, so after a growth
 * the next one waits until delivery rose by a tenth (or RESHARD_DOWN_MS passed).
 * Shrinking waits until fewer senders have sufficed for RESHARD_DOWN_MS. Because
 * series keep their queue whatever the sender count (remote_int.h), a change takes
 * effect at once and needs no draining. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote_int.h"
#include "sstext.h"

#define RESHARD_UP_MS   2000
#define RESHARD_DOWN_MS 30000
#define RATE_WINDOW     10   /* ticks of history for rates */
#define DEFAULT_TPS     5e-6 /* seconds per sample before any request completed */
#define CATCHUP_S       5.0  /* drain a backlog within about this many seconds */
#define TARGET_BUSY     0.4  /* wanted share of a sender's time spent in requests */
/* The manager decides every TICK_MS; under a light load (less than LIGHT_SHARDS of a
 * sender wanted, the history full, nothing over capacity) every LIGHT_TICK_MS, as
 * Prometheus' shard updates, and a burst past the queue capacity wakes it at once
 * (rw_wake_light_manager). Rates are per elapsed millisecond, so a long tick only
 * averages over more time. A 1 s tick was a third of an idle sidecar's wakeups. */
#define TICK_MS       1000
#define LIGHT_TICK_MS 10000
#define LIGHT_SHARDS  0.1

const char *const rw_drop_reason_names[DROP_NREASONS] = {"queue_full", "http_4xx", "too_old",
                                                         "shutdown",   "encode",   "disk_error"};
const double rw_send_buckets[RW_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

void rw_atomic_max(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* ---- senders ------------------------------------------------------------------ */

/* Run n senders: start the missing ones; senders at or past n leave by themselves
 * after their batch in flight. Called by the manager, or before it started. */
static void set_senders(struct rw_remote *r, int n)
{
    if (n < 1)
        n = 1;
    if (n > r->nqueues)
        n = r->nqueues;
    pthread_mutex_lock(&r->qmu);
    atomic_store(&r->nsenders, n);
    atomic_store(&r->desired_shards, n);
    for (int i = 0; i < r->nqueues; i++) {
        struct sender *sd = &r->senders[i];
        if (i < n && !sd->alive) {
            if (sd->started) { /* it has left (alive is false): reap it */
                pthread_mutex_unlock(&r->qmu);
                pthread_join(sd->thr, NULL);
                pthread_mutex_lock(&r->qmu);
                sd->started = false;
            }
            if (pthread_create(&sd->thr, NULL, rw_sender_main, sd) == 0) {
                sd->started = true;
                sd->alive = true;
            } else if (i == 0) {
                atomic_store(&r->nsenders, 0);
                break;
            } else {
                atomic_store(&r->nsenders, i);
                atomic_store(&r->desired_shards, i);
                break;
            }
        }
        pthread_cond_broadcast(&sd->cv); /* queues may have changed hands */
    }
    pthread_mutex_unlock(&r->qmu);
}

/* ---- resharding (manager thread) --------------------------------------------- */

struct reshard_state {
    uint64_t last_in, last_out, last_busy;
    uint64_t d_in[RATE_WINDOW], d_out[RATE_WINDOW], d_busy[RATE_WINDOW];
    int64_t d_ms[RATE_WINDOW];
    int ticks;
    int64_t last_tick, last_change, low_since;
    int over_capacity_ticks;
    double tps;           /* seconds of sending per sample, last measured */
    double out_at_change; /* delivery rate (last 3 ticks) when shards last grew */
};

/* The longest-running request in flight gives a lower bound on the time per sample
 * before (or between) completed requests. */
static double inflight_tps(struct rw_remote *r, int64_t now)
{
    double best = 0;
    for (int i = 0; i < r->nqueues; i++) {
        int64_t t0 = atomic_load(&r->senders[i].send_start_mono);
        uint64_t n = atomic_load(&r->senders[i].send_n);
        if (t0 && n && now > t0) {
            double v = (double)(now - t0) / 1000.0 / (double)n;
            if (v > best)
                best = v;
        }
    }
    return best;
}

static uint64_t queue_capacity(const struct rw_remote *r)
{
    return r->cfg.queue.capacity > 0 ? (uint64_t)r->cfg.queue.capacity : 10000;
}

/* One resharding decision (every tick); true when the load is light (LIGHT_SHARDS). */
static bool reshard_tick(struct rw_remote *r, struct reshard_state *st, int64_t now)
{
    uint64_t in = atomic_load(&r->samples_in);
    uint64_t out = atomic_load(&r->samples_sent) + atomic_load(&r->samples_failed);
    uint64_t busy = atomic_load(&r->send_busy_us);
    int k = st->ticks % RATE_WINDOW;
    st->d_in[k] = in - st->last_in;
    st->d_out[k] = out - st->last_out;
    st->d_busy[k] = busy - st->last_busy;
    st->d_ms[k] = now - st->last_tick;
    st->last_in = in, st->last_out = out, st->last_busy = busy, st->last_tick = now;
    st->ticks++;
    uint64_t s_in = 0, s_out = 0, s_busy = 0;
    int64_t s_ms = 0;
    for (int i = 0; i < RATE_WINDOW && i < st->ticks; i++)
        s_in += st->d_in[i], s_out += st->d_out[i], s_busy += st->d_busy[i], s_ms += st->d_ms[i];
    if (s_ms <= 0)
        return false;
    double in_rate = (double)s_in * 1000.0 / (double)s_ms;
    uint64_t o3 = 0;
    int64_t ms3 = 0;
    for (int i = 0; i < 3 && i < st->ticks; i++) {
        int j = ((st->ticks - 1 - i) % RATE_WINDOW + RATE_WINDOW) % RATE_WINDOW;
        o3 += st->d_out[j], ms3 += st->d_ms[j];
    }
    double out_rate = ms3 > 0 ? (double)o3 * 1000.0 / (double)ms3 : 0;
    if (s_out > 0 && s_busy > 0)
        st->tps = (double)s_busy / 1e6 / (double)s_out;
    double tps = st->tps > 0 ? st->tps : DEFAULT_TPS;
    double fl = inflight_tps(r, now);
    if (fl > tps)
        tps = fl;
    double pending = (double)atomic_load(&r->queue_samples);
    double desired = tps * (in_rate + pending / CATCHUP_S) / TARGET_BUSY;
    int cur = atomic_load(&r->desired_shards);
    int want = (int)ceil(desired);
    /* capacity: senders that keep more than `capacity` samples each queued for two
     * ticks are not keeping up, whatever the estimate says */
    uint64_t cap = queue_capacity(r);
    if (pending > (double)cap * (cur > 0 ? cur : 1))
        st->over_capacity_ticks++;
    else
        st->over_capacity_ticks = 0;
    if (st->over_capacity_ticks >= 2 && want <= cur)
        want = cur + (cur + 1) / 2;
    /* at most double per step: the time per sample is measured as wall time, which
     * itself grows with concurrency when the receiver is the bottleneck */
    if (want > 2 * cur)
        want = 2 * cur;
    if (want < r->cfg.queue.min_shards)
        want = (int)r->cfg.queue.min_shards;
    if (want > r->cfg.queue.max_shards)
        want = (int)r->cfg.queue.max_shards;
    /* never while failing: more shards would only add load to a failing remote, and
     * a new series->shard map must not overtake the disk backlog */
    bool failing = now - atomic_load(&r->last_failure_mono) < FAILING_MS || atomic_load(&r->spill);
    if (want < cur) {
        if (!st->low_since)
            st->low_since = now;
    } else {
        st->low_since = 0;
    }
    bool light = st->ticks >= RATE_WINDOW && desired < LIGHT_SHARDS && !st->over_capacity_ticks;
    if (failing || want == cur)
        return light;
    /* Growth must pay: the time per sample is wall time, so when the receiver itself
     * is the bottleneck it grows with the shard count and the estimate would climb to
     * max_shards without delivering more. After a growth, grow again only once
     * delivery rose by a tenth, or after RESHARD_DOWN_MS to probe again. */
    bool paid = st->out_at_change <= 0 || out_rate > st->out_at_change * 1.1 ||
                now - st->last_change >= RESHARD_DOWN_MS;
    if (want > cur && paid && now - st->last_change >= RESHARD_UP_MS) {
        ss_info("remotewrite",
                "remote=%s resharding %d -> %d (%.0f samples/s in, %.0f queued, %.1f us/sample)", r->name,
                cur, want, in_rate, pending, tps * 1e6);
        set_senders(r, want);
        st->last_change = now;
        st->over_capacity_ticks = 0;
        st->out_at_change = out_rate > 0 ? out_rate : 1;
    } else if (want < cur && want < cur * 0.7 && st->low_since && now - st->low_since >= RESHARD_DOWN_MS) {
        ss_info("remotewrite", "remote=%s resharding %d -> %d (%.0f samples/s in, %.1f us/sample)", r->name,
                cur, want, in_rate, tps * 1e6);
        set_senders(r, want);
        st->last_change = now;
        st->low_since = 0;
        st->out_at_change = 0;
    }
    return false; /* a change: watch it closely */
}

void rw_wake_light_manager(struct rw_remote *r)
{
    if (!atomic_load(&r->mgr_light) || atomic_load(&r->queue_samples) <= queue_capacity(r))
        return;
    pthread_mutex_lock(&r->mgr_mu);
    if (atomic_exchange(&r->mgr_light, false))
        pthread_cond_broadcast(&r->mgr_cv);
    pthread_mutex_unlock(&r->mgr_mu);
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
            rw_send_with_retry(r, e, comp, resp, n, 0, &bo, &r->mgr_mu, &r->mgr_cv, "metadata", false);
        if (res == SEND_OK)
            atomic_fetch_add(&r->meta_sent, n);
        else
            atomic_fetch_add(&r->meta_failed, n);
        if (res == SEND_ABORTED || start >= total)
            return;
    }
}

static void *manager_main(void *arg)
{
    struct rw_remote *r = arg;
    CURL *e = NULL;
    struct ss_buf body, comp, resp;
    ss_buf_init(&body, 0);
    ss_buf_init(&comp, 0);
    ss_buf_init(&resp, MAX_ERROR_BODY + 1);
    int64_t meta_every = r->cfg.metadata.send_interval_ms > 0 ? r->cfg.metadata.send_interval_ms : 60000;
    int64_t next_meta = ss_mono_ms() + 5000; /* first metadata soon after start */
    struct reshard_state st = {0};
    st.last_tick = ss_mono_ms();
    st.last_change = st.last_tick;
    bool light = false;
    while (!atomic_load(&r->stopping)) {
        int64_t wait = light ? LIGHT_TICK_MS : TICK_MS;
        if (r->cfg.metadata.send && next_meta - ss_mono_ms() < wait)
            wait = next_meta - ss_mono_ms();
        pthread_mutex_lock(&r->mgr_mu);
        /* set under mgr_mu, which the wait releases: a waker that saw it finds us waiting;
         * one that looked before saw false, and its commit is seen here (both seq_cst) */
        atomic_store(&r->mgr_light, light);
        if (light && atomic_load(&r->queue_samples) > queue_capacity(r)) {
            light = false;
            atomic_store(&r->mgr_light, false);
            if (wait > TICK_MS)
                wait = TICK_MS;
        }
        struct timespec ts = ss_mono_deadline_ms(wait < 1 ? 1 : wait);
        pthread_cond_timedwait(&r->mgr_cv, &r->mgr_mu, &ts);
        /* cleared either way; already cleared: a burst woke us (rw_wake_light_manager) */
        if (light && !atomic_exchange(&r->mgr_light, false))
            light = false;
        pthread_mutex_unlock(&r->mgr_mu);
        if (atomic_load(&r->stopping))
            break;
        int64_t now = ss_mono_ms();

        if (now - st.last_tick >= TICK_MS * 9 / 10)
            light = reshard_tick(r, &st, now);
        if (r->cfg.metadata.send && now >= next_meta) {
            next_meta = now + meta_every;
            if (!e)
                e = rw_new_easy(r, NULL);
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

/* The remote keeps its own copy of every string, so it can outlive the config it was
 * built from (a reload keeps unchanged remotes and their queues). Secrets in the copy
 * (the http_config's) are wiped on free. */
static int copy_config(struct rw_remote *r, const struct rw_config *c)
{
    bool oom = false;
    struct ss_arena *a = &r->owned;
    struct rw_config *d = &r->cfg;
    d->name = dup_str(a, c->name, &oom);
    d->url = dup_str(a, c->url, &oom);
    d->user_agent = dup_str(a, c->user_agent, &oom);
    d->storage_dir = dup_str(a, c->storage_dir, &oom);
    if (httpc_config_dup(&c->http, &r->http) != 0)
        return SS_ENOMEM;
    d->http = *r->http;
    if (!d->url)
        return SS_EINVAL;
    return oom ? SS_ENOMEM : 0;
}

/* s escaped as a label value for the self-metrics, in the arena. */
static const char *escaped(struct ss_arena *a, const char *s)
{
    struct ss_buf b;
    ss_buf_init(&b, 0);
    const char *out = NULL;
    if (ss_escape_label_value(&b, s, strlen(s)) == 0)
        out = ss_arena_strndup(a, b.data ? b.data : "", b.len);
    ss_buf_free(&b);
    return out;
}

uint64_t rw_pace_mark(const struct rw_remote *r)
{
    uint64_t batch =
        r->cfg.queue.max_samples_per_send > 0 ? (uint64_t)r->cfg.queue.max_samples_per_send : 2000;
    uint64_t n = (uint64_t)atomic_load(&r->nsenders);
    uint64_t mark = (n > PACE_BATCHES ? n : PACE_BATCHES) * batch * PACE_RECORD_B;
    if (mark < PACE_MIN_BYTES)
        mark = PACE_MIN_BYTES;
    return mark > r->mem_bound / 2 ? r->mem_bound / 2 : mark;
}

int rw_remote_create(const struct rw_config *cfg, struct rw_remote **out)
{
    *out = NULL;
    struct rw_remote *r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    r->cfg = *cfg;
    pthread_mutex_init(&r->qmu, NULL);
    pthread_mutex_init(&r->mgr_mu, NULL);
    ss_cond_init_mono(&r->mgr_cv);
    ss_cond_init_mono(&r->room_cv);
    pthread_mutex_init(&r->meta_mu, NULL);
    pthread_mutex_init(&r->spill_mu, NULL);
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
    r->mname = escaped(&r->owned, r->name);
    r->murl = escaped(&r->owned, cfg->url);
    if (!r->mname || !r->murl)
        goto fail;
    ss_labels_init(&r->work);
    r->mem_bound = cfg->queue.max_memory_bytes ? cfg->queue.max_memory_bytes : DEFAULT_MEM_BOUND;
    atomic_store(&r->pace_bytes, rw_pace_mark(r));
    /* One series queue per possible sender, fixed for the remote's life. */
    r->nqueues = (int)r->cfg.queue.max_shards;
    r->queues = calloc((size_t)r->nqueues, sizeof *r->queues);
    r->senders = calloc((size_t)r->nqueues, sizeof *r->senders);
    r->stage = calloc((size_t)r->nqueues, sizeof *r->stage);
    r->stage_samples = calloc((size_t)r->nqueues, sizeof *r->stage_samples);
    r->stage_max_ts = calloc((size_t)r->nqueues, sizeof *r->stage_max_ts);
    r->staged = calloc((size_t)r->nqueues, sizeof *r->staged);
    r->staged_in = calloc((size_t)r->nqueues, sizeof *r->staged_in);
    if (!r->queues || !r->senders || !r->stage || !r->stage_samples || !r->stage_max_ts || !r->staged ||
        !r->staged_in) {
        r->nqueues = 0;
        goto fail;
    }
    for (int i = 0; i < r->nqueues; i++) {
        ss_buf_init(&r->stage[i], 0);
        r->senders[i].r = r;
        r->senders[i].idx = i;
        ss_cond_init_mono(&r->senders[i].cv);
        pthread_mutex_init(&r->senders[i].sock_mu, NULL);
        r->senders[i].sock = CURL_SOCKET_BAD;
    }
    *out = r;
    return 0;
fail:
    rw_remote_free(r);
    return SS_ENOMEM;
}

int rw_remote_start(struct rw_remote *r)
{
    if (r->started)
        return 0;
    r->started = true;
    if (r->cfg.storage_dir) {
        struct rw_diskq_opts o = {.dir = r->cfg.storage_dir,
                                  .name = r->name,
                                  .max_bytes = r->cfg.max_disk_bytes,
                                  .max_age_ms = r->cfg.max_disk_age_ms,
                                  .fsync_interval_ms = r->cfg.fsync_interval_ms};
        if (rw_diskq_open(&o, &r->dq) != 0) {
            ss_error("remotewrite", "remote=%s disk queue unavailable in %s: keeping data in memory only",
                     r->name, r->cfg.storage_dir);
            r->dq = NULL;
        } else if (!rw_diskq_empty(r->dq)) {
            struct rw_diskq_stats st;
            rw_diskq_get_stats(r->dq, &st);
            ss_info("remotewrite", "remote=%s replaying %llu samples (%llu bytes) from %s before new data",
                    r->name, (unsigned long long)st.samples, (unsigned long long)st.bytes,
                    r->cfg.storage_dir);
            atomic_store(&r->spill, true);
        }
    }
    int n = (int)r->cfg.queue.min_shards;
    set_senders(r, n);
    if (atomic_load(&r->nsenders) < 1)
        return SS_ENOMEM;
    if (pthread_create(&r->mgr, NULL, manager_main, r) == 0)
        r->mgr_started = true;
    if (r->dq && pthread_create(&r->replayer, NULL, rw_replayer_main, r) == 0)
        r->replayer_started = true;
    ss_info("remotewrite", "remote=%s url=%s started with %d shards (max %lld)", r->name, r->cfg.url, n,
            (long long)r->cfg.queue.max_shards);
    return 0;
}

int rw_remote_new(const struct rw_config *cfg, struct rw_remote **out)
{
    int rc = rw_remote_create(cfg, out);
    if (!rc && (rc = rw_remote_start(*out)) != 0) {
        rw_remote_free(*out);
        *out = NULL;
    }
    return rc;
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
    rw_wake_senders(r);
}

void rw_remote_shutdown(struct rw_remote *r, int64_t deadline_mono_ms, uint64_t *unsent)
{
    if (!r) {
        if (unsent)
            *unsent = 0;
        return;
    }
    rw_remote_begin_shutdown(r);
    rw_log_pending_drops(r); /* nothing commits any more: drops held back by the log window */
    r->deadline_mono = deadline_mono_ms;
    /* Let the senders flush until the deadline, then abort what is in flight. */
    while (ss_mono_ms() < deadline_mono_ms) {
        int live = 0;
        pthread_mutex_lock(&r->qmu);
        for (int i = 0; i < r->nqueues; i++)
            live += r->senders[i].alive;
        pthread_mutex_unlock(&r->qmu);
        if (!live)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&r->hard_stop, true);
    rw_wake_senders(r);
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
    for (int i = 0; i < r->nqueues; i++)
        if (r->senders[i].started) {
            pthread_join(r->senders[i].thr, NULL);
            r->senders[i].started = false;
        }
    /* With a disk queue, whatever is still queued goes to disk for the next start;
     * without one it is counted as dropped at shutdown. */
    if (r->dq) {
        rw_spill_queues(r);
        rw_diskq_sync(r->dq);
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
    for (int i = 0; i < r->nqueues; i++) {
        rw_queue_clear(&r->queues[i]);
        ss_buf_free(&r->stage[i]);
        pthread_cond_destroy(&r->senders[i].cv);
        pthread_mutex_destroy(&r->senders[i].sock_mu);
    }
    rw_spares_free(r);
    free(r->queues);
    free(r->senders);
    free(r->stage);
    free(r->stage_samples);
    free(r->stage_max_ts);
    free(r->staged);
    free(r->staged_in);
    for (size_t i = 0; i < r->nmeta; i++) {
        free(r->meta[i].family);
        free(r->meta[i].help);
        free(r->meta[i].unit);
    }
    free(r->meta);
    ss_labels_free(&r->work);
    rw_diskq_close(r->dq);
    pthread_mutex_destroy(&r->spill_mu);
    httpc_config_free(r->http); /* wipes the secrets */
    ss_arena_free(&r->owned);
    pthread_mutex_destroy(&r->qmu);
    pthread_mutex_destroy(&r->mgr_mu);
    pthread_cond_destroy(&r->mgr_cv);
    pthread_cond_destroy(&r->room_cv);
    pthread_mutex_destroy(&r->meta_mu);
    free(r);
}
