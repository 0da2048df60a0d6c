/* monitors.c: monitor_discovery for `run`: the watched ServiceMonitors and
 * PodMonitors become scrape jobs.
 *
 * promop_watch keeps the objects. A builder thread of our own turns them into a
 * generation of job sets: it translates each monitor on its own (promop_translate,
 * which GETs the Secrets a monitor names), loads the result with the ordinary config
 * loader (so a generated job is checked exactly like a hand-written one) and builds
 * its jobs. None of that runs on the scrape thread: a slow or unreachable API server
 * delays new monitors, never a scrape. When a generation differs from the running
 * one the builder calls on_ready, and the scrape thread installs it
 * (collector_monitors_rebuild: a swap and an array copy).
 *
 * The builder runs after a burst of watch events (coalesced for COALESCE_MS): then
 * only the new, changed and failing monitors are translated, the others keep their
 * sets without a request to the API server. It also runs on its own: every
 * refresh_interval (default 1m) it translates every monitor again, so that a rotated
 * or newly created Secret takes effect without a change to the monitor (the operator
 * watches Secrets; we re-read them), and every RETRY_MS while a monitor fails, so a
 * monitor whose Secret did not exist yet, or whose Secret GET failed, is picked up
 * when it can be.
 *
 * A monitor that fails anywhere is logged with its name (once per distinct error) and
 * counted. If it had jobs before, they keep running on their last good config (as
 * Prometheus keeps its config when a reload fails): a Secret GET that times out must
 * not stop a working scrape. A monitor that never built is left out until it builds.
 * The generated jobs' kubernetes_sd_configs use the API server access of
 * monitor_discovery.
 *
 * A monitor whose generated config (secrets included) is the same as in the
 * previous generation keeps its job set: config, jobs and their running kube_sd
 * discoverers. One changed monitor re-creates only its own jobs; re-creating all of
 * them re-listed every monitor's Endpoints, Services and Pods from the API server
 * on every change (3 LISTs and 3 WATCHes per monitor). */
#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "collector.h"
#include "kube.h"
#include "promop.h"

#define COALESCE_MS   300   /* a burst of watch events makes one generation */
#define RETRY_MS      10000 /* while a monitor fails (at most refresh_interval) */
#define BUILD_STOPPED 1     /* build_generation: asked to stop */

struct monitor_job_set {
    char *name;               /* "ServiceMonitor ns/name" */
    unsigned char digest[32]; /* SHA-256 of the generated config: unchanged -> reused */
    struct cfg *cfg;
    struct collector_jobs jobs;
    unsigned char odigest[32]; /* SHA-256 of the monitor object it was built from */
    bool service_monitor;
    uint64_t gen; /* the newest generation holding this set (under mu); 0: not yet published */
};

/* One generation: pointers, because an unchanged set is shared by consecutive ones. */
struct generation {
    struct monitor_job_set **v;
    size_t n, bad;
    uint64_t num;
};

/* A monitor's last failure, so that the same error is logged once, not every retry. */
struct monitor_failure {
    char *name;
    unsigned char edigest[32];
};

struct collector_monitors {
    struct kube_config *kube;
    struct promop_watch *watch;
    struct cfg_monitor_discovery own;       /* a copy: the object may outlive its config */
    struct stat kubeconfig_st;              /* of own.kubeconfig_file at start */
    char shard[24];
    int64_t interval_ms, timeout_ms;
    void (*on_ready)(void *ud);
    void *ud;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    bool dirty;   /* a watch event since the builder last looked (mu) */
    bool pending; /* `built` waits for collector_monitors_rebuild (mu) */
    /* cur: the generation handed to the engine (or about to be); built: a newer one
     * waiting to be installed; old: the previous one, until the engine lets go. The
     * builder reads cur (never writes it) and builds only while nothing is pending;
     * the scrape thread moves cur and built only when something is. */
    struct generation cur, built, old;
    uint64_t next_num;
    struct scrape_job *all; /* base jobs + generated, handed to the engine */
    struct scrape_job *old_all;
    struct monitor_failure *fails; /* the builder's own */
    size_t nfails;
    _Atomic uint64_t invalid_total, builds;
    atomic_size_t valid_sm, valid_pm, invalid_now, njobs;
};

static void set_free(struct monitor_job_set *s)
{
    if (!s)
        return;
    collector_jobs_free(&s->jobs);
    cfg_free(s->cfg);
    free(s->name);
    free(s);
}

/* Free the sets of g that no newer generation holds (`keep_newer`), and g itself. */
static void generation_free(struct generation *g, bool keep_newer)
{
    for (size_t i = 0; i < g->n; i++)
        if (!keep_newer || g->v[i]->gen == g->num)
            set_free(g->v[i]);
    free(g->v);
    *g = (struct generation){0};
}

static void fails_free(struct monitor_failure *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].name);
    free(f);
}

static int render(void *ud, struct ss_buf *out)
{
    struct collector_monitors *m = ud;
    struct promop_watch_stats st = {0};
    promop_watch_get_stats(m->watch, &st);
    return ss_buf_printf(
        out,
        "# HELP scrapeship_monitor_discovery_monitors Monitors turned into scrape jobs, by kind.\n"
        "# TYPE scrapeship_monitor_discovery_monitors gauge\n"
        "scrapeship_monitor_discovery_monitors{kind=\"ServiceMonitor\"} %zu\n"
        "scrapeship_monitor_discovery_monitors{kind=\"PodMonitor\"} %zu\n"
        "# HELP scrapeship_monitor_discovery_invalid_monitors Monitors left out now because they failed to "
        "translate or load.\n"
        "# TYPE scrapeship_monitor_discovery_invalid_monitors gauge\n"
        "scrapeship_monitor_discovery_invalid_monitors %zu\n"
        "# HELP scrapeship_monitor_discovery_invalid_total Monitor translations that failed.\n"
        "# TYPE scrapeship_monitor_discovery_invalid_total counter\n"
        "scrapeship_monitor_discovery_invalid_total %llu\n"
        "# HELP scrapeship_monitor_discovery_jobs Scrape jobs generated from monitors.\n"
        "# TYPE scrapeship_monitor_discovery_jobs gauge\n"
        "scrapeship_monitor_discovery_jobs %zu\n"
        "# HELP scrapeship_monitor_discovery_requests_total LIST and WATCH requests for monitors.\n"
        "# TYPE scrapeship_monitor_discovery_requests_total counter\n"
        "scrapeship_monitor_discovery_requests_total{kind=\"list\"} %llu\n"
        "scrapeship_monitor_discovery_requests_total{kind=\"watch\"} %llu\n"
        "# HELP scrapeship_monitor_discovery_failures_total Monitor requests that failed.\n"
        "# TYPE scrapeship_monitor_discovery_failures_total counter\n"
        "scrapeship_monitor_discovery_failures_total %llu\n"
        "# HELP scrapeship_monitor_discovery_forbidden_total Monitor requests answered 403 (missing RBAC).\n"
        "# TYPE scrapeship_monitor_discovery_forbidden_total counter\n"
        "scrapeship_monitor_discovery_forbidden_total %llu\n"
        "# HELP scrapeship_monitor_discovery_relists_total 410 Gone answers that forced a relist.\n"
        "# TYPE scrapeship_monitor_discovery_relists_total counter\n"
        "scrapeship_monitor_discovery_relists_total %llu\n"
        "# HELP scrapeship_monitor_discovery_events_total Watch events received.\n"
        "# TYPE scrapeship_monitor_discovery_events_total counter\n"
        "scrapeship_monitor_discovery_events_total %llu\n",
        atomic_load(&m->valid_sm), atomic_load(&m->valid_pm), atomic_load(&m->invalid_now),
        (unsigned long long)atomic_load(&m->invalid_total), atomic_load(&m->njobs),
        (unsigned long long)st.lists, (unsigned long long)st.watches, (unsigned long long)st.failures,
        (unsigned long long)st.forbidden, (unsigned long long)st.gone, (unsigned long long)st.events);
}

static void *builder_main(void *ud);

/* From a watcher thread: a monitor was added, changed or deleted. */
static void watch_changed(void *ud)
{
    struct collector_monitors *m = ud;
    pthread_mutex_lock(&m->mu);
    m->dirty = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

bool collector_monitors_same(const struct collector_monitors *m, const struct cfg *c)
{
    const struct cfg_monitor_discovery *a = &m->own;
    if (!cfg_monitors_equal(a, &c->monitors) || m->interval_ms != c->global.scrape_interval_ms ||
        m->timeout_ms != c->global.scrape_timeout_ms)
        return false;
    struct stat st;
    if (a->kubeconfig_file && /* its credentials may have changed: connect again */
        (stat(a->kubeconfig_file, &st) != 0 || st.st_size != m->kubeconfig_st.st_size ||
         st.st_mtim.tv_sec != m->kubeconfig_st.st_mtim.tv_sec ||
         st.st_mtim.tv_nsec != m->kubeconfig_st.st_mtim.tv_nsec))
        return false;
    return true;
}

int collector_monitors_start(const struct cfg *c, void (*on_ready)(void *ud), void *ud,
                             struct collector_monitors **out, char *err, size_t errlen)
{
    struct collector_monitors *m = calloc(1, sizeof *m);
    int rc = m ? 0 : SS_ENOMEM;
    *out = NULL;
    if (rc)
        return rc;
    if ((rc = cfg_monitors_copy(&m->own, &c->monitors))) {
        free(m);
        return rc;
    }
    const struct cfg_monitor_discovery *mc = &m->own;
    if (mc->kubeconfig_file && stat(mc->kubeconfig_file, &m->kubeconfig_st) != 0)
        memset(&m->kubeconfig_st, 0, sizeof m->kubeconfig_st);
    m->on_ready = on_ready;
    m->ud = ud;
    m->interval_ms = c->global.scrape_interval_ms;
    m->timeout_ms = c->global.scrape_timeout_ms;
    pthread_mutex_init(&m->mu, NULL);
    ss_cond_init_mono(&m->cv);
    snprintf(m->shard, sizeof m->shard, "%llu", (unsigned long long)mc->shard);
    if (mc->api_server) {
        struct httpc_config h = {.follow_redirects = true};
        rc = kube_config_from_url(mc->api_server, &h, &m->kube, err, errlen);
    } else if (mc->kubeconfig_file)
        rc = kube_config_from_kubeconfig(mc->kubeconfig_file, NULL, &m->kube, err, errlen);
    else
        rc = kube_config_in_cluster(getenv("SCRAPESHIP_KUBE_SA_DIR"), &m->kube, err, errlen);
    if (rc)
        goto fail;
    struct promop_watch_config wc = {.kube = m->kube,
                                     .service_monitors = mc->service_monitors,
                                     .pod_monitors = mc->pod_monitors,
                                     .label_selector = mc->label_selector,
                                     .namespaces = (const char *const *)mc->namespaces,
                                     .nnamespaces = mc->nnamespaces};
    if ((rc = promop_watch_start(&wc, watch_changed, m, &m->watch, err, errlen)))
        goto fail;
    if (pthread_create(&m->thr, NULL, builder_main, m) != 0) {
        promop_watch_stop(m->watch);
        snprintf(err, errlen, "cannot start the monitor builder thread");
        rc = SS_ENOMEM;
        goto fail;
    }
    m->thr_started = true;
    ss_metrics_register(render, m);
    *out = m;
    return 0;
fail:
    kube_config_free(m->kube);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    cfg_monitors_free(&m->own);
    free(m);
    return rc;
}

void collector_monitors_halt(struct collector_monitors *m)
{
    if (!m || !m->thr_started)
        return;
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->stop, true);
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thr, NULL);
    m->thr_started = false;
}

void collector_monitors_stop(struct collector_monitors *m)
{
    if (!m)
        return;
    ss_metrics_unregister(render, m);
    collector_monitors_halt(m); /* first the builder: it reads the watch's objects */
    promop_watch_stop(m->watch);
    /* the engine no longer holds any of them: each set once, in its newest generation */
    generation_free(&m->old, true);
    generation_free(&m->cur, true);
    generation_free(&m->built, false);
    free(m->all);
    free(m->old_all);
    fails_free(m->fails, m->nfails);
    kube_config_free(m->kube);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    cfg_monitors_free(&m->own);
    free(m);
}

bool collector_monitors_built(struct collector_monitors *m)
{
    return atomic_load(&m->builds) > 0;
}

/* Give every generated kubernetes_sd config our API server access. */
static int add_access(const struct cfg_monitor_discovery *mc, json_t *cfgs)
{
    size_t i, j;
    json_t *c, *sd;
    json_array_foreach(cfgs, i, c)
    {
        json_array_foreach(json_object_get(c, "kubernetes_sd_configs"), j, sd)
        {
            if (mc->api_server && json_object_set_new(sd, "api_server", json_string(mc->api_server)))
                return SS_ENOMEM;
            if (!mc->api_server && mc->kubeconfig_file &&
                json_object_set_new(sd, "kubeconfig_file", json_string(mc->kubeconfig_file)))
                return SS_ENOMEM;
        }
    }
    return 0;
}

static void fmt_ms(char *buf, size_t cap, int64_t ms)
{
    snprintf(buf, cap, "%lldms", (long long)ms);
}

/* The set of the current generation named `name` (with this digest, if digest),
 * or NULL. hint: its likely index (the objects come sorted, so mostly the same
 * position). */
static struct monitor_job_set *find_set(struct collector_monitors *m, const char *name,
                                        const unsigned char *digest, size_t hint)
{
    for (size_t k = 0; k < m->cur.n; k++) {
        struct monitor_job_set *o = m->cur.v[(hint + k) % m->cur.n];
        if (!strcmp(o->name, name))
            return digest && memcmp(o->digest, digest, sizeof o->digest) ? NULL : o;
    }
    return NULL;
}

/* SHA-256 of a string: 0, or SS_ENOMEM. */
static int digest_of(const char *text, unsigned char d[32])
{
    unsigned int dl = 0;
    return text && EVP_Digest(text, strlen(text), d, &dl, EVP_sha256(), NULL) && dl == 32 ? 0 : SS_ENOMEM;
}

/* promop_kube_secret_until, given up when the builder is asked to stop (a slow API server
 * must not hold up a shutdown or a reload). */
static int get_secret(void *ud, const char *ns, const char *name, const char *key, char **value, char *err,
                      size_t errlen)
{
    struct collector_monitors *m = ud;
    return promop_kube_secret_until(m->kube, &m->stop, ns, name, key, value, err, errlen);
}

/* One monitor -> its config and jobs in *out, a new set named `name`, or the current
 * generation's set when its generated config is the same (*reused). Errors (naming
 * the monitor) in err. */
static int build_one(struct collector_monitors *m, json_t *obj, const char *name, size_t hint,
                     struct monitor_job_set **out, bool *reused, char *err, size_t errlen)
{
    *out = NULL;
    *reused = false;
    struct monitor_job_set *set = calloc(1, sizeof *set);
    if (!set || !(set->name = strdup(name))) {
        free(set);
        return SS_ENOMEM;
    }
    const struct cfg_monitor_discovery *mc = &m->own;
    struct promop_opts o = {.shards = (uint32_t)mc->shards,
                            .shard = m->shard,
                            .node_name = mc->node_name,
                            .get_secret = mc->read_secrets ? get_secret : NULL,
                            .secret_ud = m};
    json_t *cfgs = NULL, *doc = NULL;
    char *text = NULL, iv[32], to[32], e[768];
    int rc = promop_translate(obj, &o, &cfgs, err, errlen);
    if (rc)
        goto fail;
    fmt_ms(iv, sizeof iv, m->interval_ms);
    fmt_ms(to, sizeof to, m->timeout_ms);
    if ((rc = add_access(mc, cfgs)))
        goto fail;
    doc = json_pack("{s:{s:s,s:s},s:O}", "global", "scrape_interval", iv, "scrape_timeout", to,
                    "scrape_configs", cfgs);
    text = doc ? json_dumps(doc, JSON_PRESERVE_ORDER) : NULL;
    if (!text) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if ((rc = digest_of(text, set->digest)))
        goto fail;
    struct monitor_job_set *same = find_set(m, set->name, set->digest, hint);
    if (same) { /* unchanged: keep its jobs and running discoverers */
        set_free(set);
        set = same;
        *reused = true;
        goto fail; /* rc == 0: only the cleanup */
    }
    rc = cfg_load_string(text, strlen(text), set->name, &set->cfg, e, sizeof e);
    if (!rc)
        rc = collector_jobs_build(set->cfg, &set->jobs, e, sizeof e);
    if (rc)
        snprintf(err, errlen, "%s", e); /* the loader's message starts with set->name */
fail:
    if (text) {
        ss_wipe(text, strlen(text));
        free(text);
    }
    if (doc)
        promop_json_wipe(doc);
    json_decref(doc);
    if (cfgs)
        promop_json_wipe(cfgs);
    json_decref(cfgs);
    if (rc)
        set_free(set);
    else
        *out = set;
    return rc;
}

/* Log a monitor's failure unless it is the one logged last time (the builder
 * retries every RETRY_MS). Records it in fails[*nf]. */
static void note_failure(struct collector_monitors *m, const char *name, const char *msg, bool kept,
                         struct monitor_failure *fails, size_t *nf)
{
    unsigned char d[32];
    if (digest_of(msg, d))
        memset(d, 0, sizeof d);
    bool seen = false;
    for (size_t i = 0; i < m->nfails && !seen; i++)
        seen = !strcmp(m->fails[i].name, name) && !memcmp(m->fails[i].edigest, d, sizeof d);
    if (!seen)
        ss_error("promop", "%s %s: %s", name, kept ? "keeps its previous jobs" : "left out", msg);
    if (fails && (fails[*nf].name = strdup(name))) {
        memcpy(fails[*nf].edigest, d, sizeof d);
        (*nf)++;
    }
}

static bool failed_last_time(const struct collector_monitors *m, const char *name)
{
    for (size_t i = 0; i < m->nfails; i++)
        if (!strcmp(m->fails[i].name, name))
            return true;
    return false;
}

static int object_digest(json_t *o, unsigned char *d)
{
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    int rc = digest_of(text, d);
    free(text);
    return rc;
}

/* Build a generation from the objects the watch holds now (builder thread, mu not
 * held). With `full`, every monitor is translated again (its Secrets read again);
 * otherwise a monitor whose object is unchanged since it last built keeps its set
 * without a request, and only new, changed and failing ones are translated. *changed:
 * it differs from cur. Stops early (BUILD_STOPPED) when asked to. */
static int build_generation(struct collector_monitors *m, bool full, struct generation *g, bool *changed)
{
    *g = (struct generation){0};
    *changed = false;
    json_t *objs = promop_watch_objects(m->watch);
    size_t n = objs ? json_array_size(objs) : 0, nf = 0;
    g->v = objs ? calloc(n ? n : 1, sizeof *g->v) : NULL;
    struct monitor_failure *fails = calloc(n ? n : 1, sizeof *fails);
    if (!g->v || !fails) {
        free(g->v);
        g->v = NULL;
        free(fails);
        json_decref(objs);
        return SS_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&m->stop)) {
            rc = BUILD_STOPPED;
            break;
        }
        json_t *o = json_array_get(objs, i), *meta = json_object_get(o, "metadata");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        char name[600], err[1024] = "";
        snprintf(name, sizeof name, "%s %s/%s", kind ? kind : "?",
                 json_string_value(json_object_get(meta, "namespace")) ?: "?",
                 json_string_value(json_object_get(meta, "name")) ?: "?");
        struct monitor_job_set *s = NULL;
        bool reused = false;
        unsigned char od[32];
        int brc = object_digest(o, od);
        if (!brc && !full && (s = find_set(m, name, NULL, i)) && !memcmp(s->odigest, od, sizeof od) &&
            !failed_last_time(m, name)) {
            g->v[g->n++] = s; /* unchanged since it built: no translation, no Secret GET */
            continue;
        }
        s = NULL;
        if (!brc)
            brc = build_one(m, o, name, i, &s, &reused, err, sizeof err);
        if (!brc) /* also on reuse: a change that translated the same (only builder reads it) */
            memcpy(s->odigest, od, sizeof od);
        if (brc && atomic_load(&m->stop)) {
            rc = BUILD_STOPPED; /* a Secret GET given up: not the monitor's fault */
            break;
        }
        if (brc) {
            g->bad++;
            atomic_fetch_add(&m->invalid_total, 1);
            /* it had jobs: they keep running on their last good config */
            s = find_set(m, name, NULL, i);
            note_failure(m, name, err[0] ? err : ss_strerror(brc), s != NULL, fails, &nf);
            if (!s)
                continue;
            reused = true;
        }
        if (!reused) { /* a new set: the scrape thread may read the sets it shares */
            *changed = true;
            s->service_monitor = kind && kind[0] == 'S';
        }
        g->v[g->n++] = s;
    }
    json_decref(objs);
    if (!rc && g->n != m->cur.n)
        *changed = true; /* a monitor was deleted (each set is in a generation once) */
    if (rc) {            /* only the sets built here are ours to free */
        for (size_t i = 0; i < g->n; i++)
            if (!g->v[i]->gen)
                set_free(g->v[i]);
        free(g->v);
        *g = (struct generation){0};
        fails_free(fails, nf);
        return rc;
    }
    fails_free(m->fails, m->nfails);
    m->fails = fails;
    m->nfails = nf;
    return 0;
}

static void *builder_main(void *ud)
{
    struct collector_monitors *m = ud;
    /* next_full == 0: the first generation is not built yet; next_retry == 0: nothing failed */
    int64_t started = ss_mono_ms(), next_full = 0, next_retry = 0, offered = 0;
    pthread_mutex_lock(&m->mu);
    while (!atomic_load(&m->stop)) {
        int64_t now = ss_mono_ms(), wait = 1000;
        if (!m->pending) {
            if (!next_full) { /* the first, once every watcher has listed (or after 5 s) */
                wait = promop_watch_synced(m->watch) || now - started >= 5000 ? 0 : 50;
            } else if (m->dirty) {
                wait = 0;
            } else {
                int64_t due = next_retry && next_retry < next_full ? next_retry : next_full;
                wait = due - now;
            }
        }
        if (m->pending) { /* not installed a second after it was offered: offer it again */
            if (now - offered >= 1000) {
                offered = now;
                pthread_mutex_unlock(&m->mu);
                m->on_ready(m->ud);
                pthread_mutex_lock(&m->mu);
                continue;
            }
            struct timespec ts = ss_mono_deadline_ms(offered + 1000 - now);
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            continue;
        }
        if (wait > 0) {
            struct timespec ts = ss_mono_deadline_ms(wait);
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            continue;
        }
        if (m->dirty && next_full) { /* coalesce a burst of watch events */
            struct timespec ts = ss_mono_deadline_ms(COALESCE_MS);
            while (!atomic_load(&m->stop) && pthread_cond_timedwait(&m->cv, &m->mu, &ts) == 0)
                ;
        }
        m->dirty = false;
        bool full = !next_full || ss_mono_ms() >= next_full;
        pthread_mutex_unlock(&m->mu);
        struct generation g;
        bool changed = false;
        int rc = build_generation(m, full, &g, &changed);
        pthread_mutex_lock(&m->mu);
        if (rc == BUILD_STOPPED)
            break;
        int64_t every = m->own.refresh_interval_ms, done = ss_mono_ms();
        if (full || !next_full)
            next_full = done + every;
        next_retry = rc || g.bad ? done + (every > RETRY_MS ? RETRY_MS : every) : 0;
        if (rc) {
            ss_error("promop", "cannot build the monitors' jobs: %s; retrying", ss_strerror(rc));
            continue;
        }
        atomic_store(&m->invalid_now, g.bad);
        atomic_fetch_add(&m->builds, 1);
        if (!changed) { /* the same sets in the same order: nothing to hand over */
            free(g.v);
            continue;
        }
        g.num = ++m->next_num;
        for (size_t i = 0; i < g.n; i++)
            g.v[i]->gen = g.num;
        m->built = g;
        m->pending = true;
        offered = ss_mono_ms();
        pthread_mutex_unlock(&m->mu);
        m->on_ready(m->ud);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* The previous generation and job array, once the engine holds the current (mu held). */
static void release_old_locked(struct collector_monitors *m)
{
    generation_free(&m->old, true);
    free(m->old_all);
    m->old_all = NULL;
}

int collector_monitors_rebuild(struct collector_monitors *m, const struct collector_jobs *base,
                               const struct scrape_job **jobs, size_t *njobs)
{
    pthread_mutex_lock(&m->mu);
    release_old_locked(m); /* a generation the caller never released */
    bool installed = m->pending;
    const struct generation *g = installed ? &m->built : &m->cur;
    size_t total = base->njobs, nsm = 0, npm = 0;
    for (size_t i = 0; i < g->n; i++)
        total += g->v[i]->jobs.njobs;
    struct scrape_job *all = calloc(total ? total : 1, sizeof *all);
    if (!all) { /* nothing changed here: the builder offers the generation again */
        pthread_mutex_unlock(&m->mu);
        return SS_ENOMEM;
    }
    if (installed) {
        m->old = m->cur;
        m->cur = m->built;
        m->built = (struct generation){0};
        m->pending = false;
        pthread_cond_signal(&m->cv); /* the builder may build again */
    }
    size_t k = 0;
    for (size_t i = 0; i < base->njobs; i++)
        all[k++] = base->jobs[i];
    for (size_t i = 0; i < m->cur.n; i++) {
        const struct monitor_job_set *s = m->cur.v[i];
        for (size_t j = 0; j < s->jobs.njobs; j++)
            all[k++] = s->jobs.jobs[j];
        if (s->service_monitor)
            nsm++;
        else
            npm++;
    }
    /* The engine still holds the previous array (and the previous generation's jobs)
     * until the caller's scrape_manager_set_jobs: collector_monitors_release_old frees
     * them after that call. */
    m->old_all = m->all;
    m->all = all;
    size_t bad = atomic_load(&m->invalid_now);
    pthread_mutex_unlock(&m->mu);
    atomic_store(&m->valid_sm, nsm);
    atomic_store(&m->valid_pm, npm);
    atomic_store(&m->njobs, k - base->njobs);
    *jobs = all;
    *njobs = k;
    if (installed)
        ss_info("promop", "%zu ServiceMonitors and %zu PodMonitors -> %zu jobs (%zu monitors failing)", nsm,
                npm, k - base->njobs, bad);
    return 0;
}

void collector_monitors_release_old(struct collector_monitors *m)
{
    pthread_mutex_lock(&m->mu);
    release_old_locked(m);
    pthread_mutex_unlock(&m->mu);
}
