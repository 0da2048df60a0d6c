/* shipper.c: the remote_write side of `scrapeship run`: one rw_remote per
 * remote_write entry, fed by the scrape engine's sink.
 *
 * The sink fans every finished scrape out to every remote: begin (reshard point),
 * each series, commit. On reload, a remote whose configuration did not change is kept
 * with its queue and shards (no queued sample is dropped); changed or removed remotes
 * are flushed within the shutdown timeout and replaced.
 *
 * That flush runs on a thread of its own (retire_main), not on the scrape thread: a
 * receiver that is down would otherwise stop every scrape for the whole shutdown
 * timeout. The remotes that replace them take the new scrapes into their queues at
 * once but start sending only when the flush is over (on_end looks after each scrape),
 * so a series' older queued samples are never overtaken by fresher ones, and the old
 * and new remote of one entry never use its disk queue at the same time. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awssign.h"
#include "collector.h"
#include "remotewrite.h"

struct shipped_remote {
    struct rw_remote *rw;
    uint64_t fingerprint;
    struct relabel_rule **rules;
    size_t nrules;
    struct httpc_header *headers;
    struct aws_signer *signer;
    struct collector_otel *otel; /* rewrites into the OTel collector's series, or NULL */
    struct scrape_sink otel_in;  /* its input side */
    char *storage_dir;           /* its disk queue's directory, or NULL */
    bool fresh;                  /* built by this reload, not started yet */
};

/* Remotes a reload removed or changed, flushing on the retirer thread. */
struct retiring {
    struct shipped_remote *v;
    int64_t *deadline; /* monotonic ms, per remote */
    size_t n;
    atomic_bool done;
};

struct collector_shipper {
    struct shipped_remote *v;
    size_t n;
    struct retiring *ret; /* a flush in progress (retirer running or not joined), or NULL */
    pthread_t retirer;
};

/* remotewrite's generic signing hooks, served by the aws floor's SigV4 signer. */
static int sign_hook(void *ud, const char *method, const char *url, const void *body, size_t len,
                     int (*add_header)(void *ctx, const char *line), void *ctx)
{
    return aws_signer_sign(ud, method, url, body, len, add_header, ctx);
}

static void credentials_expired_hook(void *ud)
{
    aws_signer_credentials_expired(ud);
}

/* ---- building ------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s)
{
    if (!s)
        s = "\x01";
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

static uint64_t fnv_i(uint64_t h, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return fnv(h, b);
}

/* Everything that shapes what a remote sends and how: equal fingerprints mean the
 * remote can keep running across a reload. */
static uint64_t remote_fingerprint(const struct cfg *c, const struct cfg_remote_write *rw)
{
    uint64_t h = 1469598103934665603ULL;
    h = fnv(h, rw->url);
    h = fnv(h, rw->name);
    h = fnv_i(h, rw->remote_timeout_ms);
    for (size_t i = 0; i < rw->nheaders; i++)
        h = fnv(fnv(h, rw->headers[i].key), rw->headers[i].value);
    for (size_t i = 0; i < rw->nwrite_relabel_configs; i++) {
        const struct relabel_config *r = &rw->write_relabel_configs[i];
        for (size_t k = 0; k < r->nsource_labels; k++)
            h = fnv(h, r->source_labels[k]);
        h = fnv(fnv(fnv(fnv(h, r->separator), r->target_label), r->regex), r->replacement);
        h = fnv_i(fnv_i(h, (int64_t)r->modulus), r->action);
    }
    const struct cfg_http_client *hc = &rw->http;
    h = fnv(fnv(fnv(h, hc->basic_auth_username), hc->basic_auth_password), hc->basic_auth_password_file);
    h = fnv(fnv(fnv(h, hc->authorization_type), hc->authorization_credentials),
            hc->authorization_credentials_file);
    h = fnv(fnv(fnv(fnv(h, hc->tls.ca_file), hc->tls.cert_file), hc->tls.key_file), hc->proxy_url);
    h = fnv(fnv(fnv(h, hc->tls.min_version), hc->tls.max_version), hc->tls.server_name);
    h = fnv_i(fnv_i(h, hc->tls.insecure_skip_verify), hc->follow_redirects);
    const struct cfg_queue *q = &rw->queue;
    h = fnv_i(fnv_i(fnv_i(h, q->capacity), q->min_shards), q->max_shards);
    h = fnv_i(fnv_i(fnv_i(h, q->max_samples_per_send), q->batch_send_deadline_ms), q->min_backoff_ms);
    h = fnv_i(fnv_i(fnv_i(h, q->max_backoff_ms), q->retry_on_http_429), q->sample_age_limit_ms);
    h = fnv_i(h, (int64_t)q->max_memory_bytes);
    h = fnv_i(fnv_i(fnv_i(h, rw->metadata.send), rw->metadata.send_interval_ms),
              rw->metadata.max_samples_per_send);
    const struct cfg_sigv4 *s = &rw->sigv4;
    h = fnv_i(h, s->enabled);
    h = fnv(fnv(fnv(fnv(h, s->region), s->access_key), s->secret_key), s->profile);
    h = fnv(fnv(fnv(h, s->role_arn), s->external_id), s->service);
    h = fnv(fnv(h, s->session_name), s->sts_region);
    const struct cfg_otel_series *o = &rw->otel;
    h = fnv_i(fnv_i(fnv_i(h, o->enabled), o->add_metric_suffixes), o->target_info);
    h = fnv(fnv_i(h, o->resource_to_telemetry), o->namespace);
    for (size_t i = 0; i < o->nexternal_labels; i++)
        h = fnv(fnv(h, o->external_labels[i].key), o->external_labels[i].value);
    h = fnv(h, c->storage_path);
    h = fnv_i(fnv_i(fnv_i(h, (int64_t)c->storage_max_disk_bytes), c->storage_max_age_ms),
              c->storage_fsync_interval_ms);
    return h;
}

static void remote_free(struct shipped_remote *r)
{
    rw_remote_free(r->rw);
    for (size_t i = 0; i < r->nrules; i++)
        relabel_rule_free(r->rules[i]);
    free(r->rules);
    free(r->headers);
    aws_signer_free(r->signer);
    collector_otel_free(r->otel);
    free(r->storage_dir);
    memset(r, 0, sizeof *r);
}

/* One remote as a sink: what the OTel rewriter feeds. */
static void remote_begin(void *ud, const struct scrape_report *r)
{
    (void)r;
    rw_remote_begin(ud);
}

static void remote_series(void *ud, const struct scrape_series *sr)
{
    rw_remote_append(ud, sr);
}

static void remote_end(void *ud, const struct scrape_report *r)
{
    (void)r;
    rw_remote_commit(ud);
}

static void remote_meta(void *ud, const struct scrape_parsed_meta *m, const char *job)
{
    (void)job;
    rw_remote_metadata(ud, m);
}

/* Build one remote; start: also open its disk queue and start its threads (see
 * rw_remote_create). */
static int remote_build(const struct cfg *c, const struct cfg_remote_write *rw, struct shipped_remote *out,
                        bool start, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->fingerprint = remote_fingerprint(c, rw);
    struct rw_config rc = {0};
    rc.name = rw->name;
    rc.url = rw->url;
    rc.remote_timeout_ms = rw->remote_timeout_ms;
    out->headers = calloc(rw->nheaders + 1, sizeof *out->headers);
    out->rules = calloc(rw->nwrite_relabel_configs + 1, sizeof *out->rules);
    if (!out->headers || !out->rules) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < rw->nwrite_relabel_configs; i++) {
        char e[256];
        if (relabel_compile(&rw->write_relabel_configs[i], &out->rules[i], e, sizeof e)) {
            snprintf(err, errlen, "remote_write %s: write_relabel_configs[%zu]: %s", rw->url, i, e);
            goto fail;
        }
        out->nrules++;
    }
    rc.write_relabel = out->rules;
    rc.nwrite_relabel = out->nrules;
    const struct cfg_http_client *hc = &rw->http;
    collector_http_config(hc, &rc.http);
    for (size_t i = 0; i < rw->nheaders; i++)
        out->headers[i] = (struct httpc_header){rw->headers[i].key, rw->headers[i].value};
    rc.http.headers = out->headers;
    rc.http.nheaders = rw->nheaders;
    if (hc->tls.server_name)
        ss_warn("config",
                "remote_write %s: tls_config.server_name is not supported yet and is ignored: "
                "the certificate is verified against the URL's host",
                rw->url);
    rc.queue = (struct rw_queue_config){rw->queue.capacity,
                                        rw->queue.min_shards,
                                        rw->queue.max_shards,
                                        rw->queue.max_samples_per_send,
                                        rw->queue.batch_send_deadline_ms,
                                        rw->queue.min_backoff_ms,
                                        rw->queue.max_backoff_ms,
                                        rw->queue.retry_on_http_429,
                                        rw->queue.sample_age_limit_ms,
                                        rw->queue.max_memory_bytes};
    rc.metadata = (struct rw_metadata_config){rw->metadata.send, rw->metadata.send_interval_ms,
                                              rw->metadata.max_samples_per_send};
    if (rw->sigv4.enabled) {
        if (collector_aws_signer_new(&rw->sigv4, rw->url, rw->name, &out->signer, err, errlen))
            goto fail;
        rc.signer = (struct rw_signer){sign_hook, credentials_expired_hook, out->signer};
    }
    char sdir[4096];
    if (c->storage_path) {
        /* one directory per remote: its name, else a stable hash of its URL */
        char leaf[160];
        if (rw->name && rw->name[0]) {
            size_t k = 0;
            for (const char *p = rw->name; *p && k + 1 < sizeof leaf; p++)
                leaf[k++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.') ? *p : '_';
            leaf[k] = '\0';
        } else {
            snprintf(leaf, sizeof leaf, "url-%016llx",
                     (unsigned long long)fnv(1469598103934665603ULL, rw->url));
        }
        snprintf(sdir, sizeof sdir, "%s/%s", c->storage_path, leaf);
        rc.storage_dir = sdir;
        if (!(out->storage_dir = strdup(sdir))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        rc.max_disk_bytes = c->storage_max_disk_bytes;
        rc.max_disk_age_ms = c->storage_max_age_ms;
        rc.fsync_interval_ms = c->storage_fsync_interval_ms;
    }
    int r = rw_remote_create(&rc, &out->rw);
    if (!r && start)
        r = rw_remote_start(out->rw);
    if (r) {
        snprintf(err, errlen, "remote_write %s: cannot start: %s", rw->url, ss_strerror(r));
        goto fail;
    }
    if (rw->otel.enabled) {
        struct scrape_sink direct = {remote_begin, remote_series, remote_end, remote_meta, out->rw, NULL};
        if (collector_otel_new(&rw->otel, &direct, &out->otel)) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        collector_otel_sink(out->otel, &out->otel_in);
    }
    return 0;
fail:
    remote_free(out);
    return SS_ECONFIG;
}

int collector_shipper_new(const struct cfg *c, struct collector_shipper **out, char *err, size_t errlen)
{
    return collector_shipper_reload(NULL, c, out, 0, err, errlen);
}

/* A remote built by this reload uses the disk queue in dir. */
static bool replaced_on_disk(const struct collector_shipper *s, const char *dir)
{
    for (size_t k = 0; dir && k < s->n; k++)
        if (s->v[k].fresh && s->v[k].storage_dir && !strcmp(s->v[k].storage_dir, dir))
            return true;
    return false;
}

/* The retirer thread: flush the retiring remotes (each against its deadline, all at
 * once since every one began shutting down already), free them, and say so. */
static void *retire_main(void *arg)
{
    struct retiring *ret = arg;
    for (size_t k = 0; k < ret->n; k++) {
        uint64_t unsent = 0;
        rw_remote_shutdown(ret->v[k].rw, ret->deadline[k], &unsent);
        remote_free(&ret->v[k]);
    }
    free(ret->v);
    free(ret->deadline);
    ret->v = NULL;
    ret->deadline = NULL;
    atomic_store(&ret->done, true);
    return NULL;
}

/* Start the remotes this reload built (their queues hold what came since). */
static void start_fresh(struct collector_shipper *s)
{
    for (size_t k = 0; k < s->n; k++) {
        if (s->v[k].fresh && rw_remote_start(s->v[k].rw) != 0)
            ss_error("shipper",
                     "remote %s: cannot start its senders: its data is queued (and dropped at "
                     "max_memory_bytes) until the next reload",
                     rw_remote_name(s->v[k].rw));
        s->v[k].fresh = false;
    }
}

/* Wait for a flush in progress to end (at once when it has: `done`), then start the
 * remotes that waited for it. */
static void finish_retiring(struct collector_shipper *s)
{
    if (!s || !s->ret)
        return;
    pthread_join(s->retirer, NULL);
    free(s->ret);
    s->ret = NULL;
    start_fresh(s);
}

int collector_shipper_reload(struct collector_shipper *old, const struct cfg *c,
                             struct collector_shipper **out, int64_t flush_deadline_mono, char *err,
                             size_t errlen)
{
    *out = NULL;
    finish_retiring(old); /* a reload during the flush of the last one waits for it */
    struct collector_shipper *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    s->v = calloc(c->nremote_writes + 1, sizeof *s->v);
    if (!s->v) {
        free(s);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < c->nremote_writes; i++) {
        uint64_t fp = remote_fingerprint(c, &c->remote_writes[i]);
        bool kept = false;
        for (size_t k = 0; old && k < old->n; k++)
            if (old->v[k].rw && old->v[k].fingerprint == fp) {
                s->v[s->n++] = old->v[k]; /* move: queue and shards survive */
                memset(&old->v[k], 0, sizeof old->v[k]);
                kept = true;
                break;
            }
        if (kept)
            continue;
        if (remote_build(c, &c->remote_writes[i], &s->v[s->n], old == NULL, err, errlen)) {
            /* put moved remotes back so the running shipper stays whole */
            for (size_t k = 0; old && k < s->n; k++)
                for (size_t j = 0; j < old->n; j++)
                    if (!old->v[j].rw && s->v[k].rw) {
                        old->v[j] = s->v[k];
                        s->v[k].rw = NULL;
                        break;
                    }
            for (size_t k = 0; k < s->n; k++)
                if (s->v[k].rw)
                    remote_free(&s->v[k]);
            free(s->v);
            free(s);
            return SS_ECONFIG;
        }
        s->v[s->n++].fresh = old != NULL;
    }
    if (old) {
        /* What was not carried over is flushed and stopped before the remotes that
         * replace it start: a changed remote_write entry keeps its storage directory,
         * which must have one user at a time, and its old backlog must be on disk (or
         * delivered) before the new remote replays the disk queue and sends fresher
         * samples of the same series. When its replacement uses the same disk queue
         * the flush is short: what the receiver has not taken within a second goes to
         * disk and the new remote sends it first. The flush runs on the retirer thread
         * (file comment); without one, here. */
        int64_t now = ss_mono_ms();
        struct retiring *ret = calloc(1, sizeof *ret);
        if (ret && (!(ret->v = calloc(old->n + 1, sizeof *ret->v)) ||
                    !(ret->deadline = calloc(old->n + 1, sizeof *ret->deadline)))) {
            free(ret->v);
            free(ret);
            ret = NULL;
        }
        for (size_t k = 0; k < old->n; k++)
            if (old->v[k].rw) {
                ss_info("shipper", "remote %s removed or changed: flushing", rw_remote_name(old->v[k].rw));
                rw_remote_begin_shutdown(old->v[k].rw);
            }
        for (size_t k = 0; k < old->n; k++)
            if (old->v[k].rw) {
                int64_t deadline = flush_deadline_mono;
                if (replaced_on_disk(s, old->v[k].storage_dir) && deadline > now + 1000)
                    deadline = now + 1000;
                if (ret) {
                    ret->deadline[ret->n] = deadline;
                    ret->v[ret->n++] = old->v[k];
                } else {
                    uint64_t unsent = 0;
                    rw_remote_shutdown(old->v[k].rw, deadline, &unsent);
                    remote_free(&old->v[k]);
                }
            }
        free(old->v);
        free(old);
        if (ret && ret->n && pthread_create(&s->retirer, NULL, retire_main, ret) == 0) {
            s->ret = ret; /* the new remotes start when it is done (start_fresh) */
        } else {
            if (ret) {
                retire_main(ret); /* nothing to flush, or no thread: flush here */
                free(ret);
            }
            start_fresh(s);
        }
    }
    *out = s;
    return 0;
}

static void on_begin(void *ud, const struct scrape_report *r)
{
    struct collector_shipper *s = ud;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].otel)
            s->v[i].otel_in.begin(s->v[i].otel_in.ud, r);
        else
            rw_remote_begin(s->v[i].rw);
}

static void on_series(void *ud, const struct scrape_series *sr)
{
    struct collector_shipper *s = ud;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].otel)
            s->v[i].otel_in.series(s->v[i].otel_in.ud, sr);
        else
            rw_remote_append(s->v[i].rw, sr);
}

static void on_end(void *ud, const struct scrape_report *r)
{
    struct collector_shipper *s = ud;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].otel)
            s->v[i].otel_in.end(s->v[i].otel_in.ud, r);
        else
            rw_remote_commit(s->v[i].rw);
    if (s->ret && atomic_load(&s->ret->done))
        finish_retiring(s); /* the old remotes are flushed: the new ones start sending */
}

static void on_meta(void *ud, const struct scrape_parsed_meta *m, const char *job)
{
    struct collector_shipper *s = ud;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].otel)
            s->v[i].otel_in.metadata(s->v[i].otel_in.ud, m, job);
        else
            rw_remote_metadata(s->v[i].rw, m);
}

/* Pacing: every remote in turn, within the one deadline. */
static bool on_wait_room(void *ud, int64_t deadline_mono_ms)
{
    struct collector_shipper *s = ud;
    bool room = true;
    for (size_t i = 0; i < s->n; i++)
        room &= rw_remote_wait_room(s->v[i].rw, deadline_mono_ms);
    return room;
}

void collector_shipper_sink(struct collector_shipper *s, struct scrape_sink *sink)
{
    memset(sink, 0, sizeof *sink);
    sink->wait_room = on_wait_room;
    sink->begin = on_begin;
    sink->series = on_series;
    sink->end = on_end;
    sink->metadata = on_meta;
    sink->ud = s;
}

int collector_shipper_render_metrics(void *ud, struct ss_buf *out)
{
    struct collector_shipper **sp = ud;
    struct collector_shipper *s = *sp;
    if (!s || !s->n)
        return 0;
    struct rw_remote *rs[64];
    size_t n = 0;
    bool otel = false;
    uint64_t otel_dropped = 0, otel_meta_dropped = 0;
    for (size_t i = 0; i < s->n && n < 64; i++) {
        rs[n++] = s->v[i].rw;
        otel |= s->v[i].otel != NULL;
        otel_dropped += collector_otel_dropped(s->v[i].otel);
        otel_meta_dropped += collector_otel_metadata_dropped(s->v[i].otel);
    }
    int rc = rw_remotes_render_metrics(rs, n, out);
    if (!rc && otel)
        rc = ss_buf_printf(out,
                           "# HELP scrapeship_otel_series_dropped_total Series the OpenTelemetry collector "
                           "rewrite could not ship (more labels than it takes).\n"
                           "# TYPE scrapeship_otel_series_dropped_total counter\n"
                           "scrapeship_otel_series_dropped_total %llu\n"
                           "# HELP scrapeship_otel_metadata_dropped_total TYPE and UNIT lines the "
                           "OpenTelemetry collector rewrite could not remember (its table was full; those "
                           "families ship as gauges).\n"
                           "# TYPE scrapeship_otel_metadata_dropped_total counter\n"
                           "scrapeship_otel_metadata_dropped_total %llu\n",
                           (unsigned long long)otel_dropped, (unsigned long long)otel_meta_dropped);
    return rc;
}

uint64_t collector_shipper_shutdown(struct collector_shipper *s, int64_t deadline_mono)
{
    uint64_t total = 0;
    finish_retiring(s); /* the retiring remotes' flush ends by its deadline, before ours */
    /* all remotes flush at the same time; then wait for each against one deadline */
    for (size_t i = 0; s && i < s->n; i++)
        rw_remote_begin_shutdown(s->v[i].rw);
    for (size_t i = 0; s && i < s->n; i++) {
        uint64_t unsent = 0;
        rw_remote_shutdown(s->v[i].rw, deadline_mono, &unsent);
        total += unsent;
    }
    return total;
}

void collector_shipper_free(struct collector_shipper *s)
{
    if (!s)
        return;
    finish_retiring(s);
    for (size_t i = 0; i < s->n; i++)
        remote_free(&s->v[i]);
    free(s->v);
    free(s);
}
