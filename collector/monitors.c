/* monitors.c: monitor_discovery for `run`: the watched ServiceMonitors and
 * PodMonitors become scrape jobs.
 *
 * promop_watch keeps the objects; on every change `run` calls
 * collector_monitors_rebuild, which translates each monitor on its own
 * (promop_translate), loads the result with the ordinary config loader (so a
 * generated job is checked exactly like a hand-written one) and builds its jobs. A
 * monitor that fails anywhere is logged with its name and counted, and only it is
 * left out. The generated jobs' kubernetes_sd_configs use the API server access of
 * monitor_discovery. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "kube.h"
#include "promop.h"

struct monitor_job_set {
    char *name; /* "ServiceMonitor ns/name" */
    struct cfg *cfg;
    struct collector_jobs jobs;
};

struct collector_monitors {
    struct kube_config *kube;
    struct promop_watch *watch;
    const struct cfg_monitor_discovery *mc; /* borrowed from the running config */
    char shard[24];
    int64_t interval_ms, timeout_ms;
    struct monitor_job_set *sets;
    size_t nsets;
    struct scrape_job *all; /* base jobs + generated, handed to the engine */
    size_t nall;
    struct monitor_job_set *old_sets; /* the previous generation, until the engine lets go */
    size_t nold_sets;
    struct scrape_job *old_all;
    _Atomic uint64_t invalid_total, rebuilds;
    atomic_size_t valid_sm, valid_pm, invalid_now, njobs;
};

static void sets_free(struct monitor_job_set *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        collector_jobs_free(&s[i].jobs);
        cfg_free(s[i].cfg);
        free(s[i].name);
    }
    free(s);
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

int collector_monitors_start(const struct cfg *c, void (*on_change)(void *ud), void *ud,
                             struct collector_monitors **out, char *err, size_t errlen)
{
    const struct cfg_monitor_discovery *mc = &c->monitors;
    struct collector_monitors *m = calloc(1, sizeof *m);
    int rc = m ? 0 : SS_ENOMEM;
    *out = NULL;
    if (rc)
        return rc;
    m->mc = mc;
    m->interval_ms = c->global.scrape_interval_ms;
    m->timeout_ms = c->global.scrape_timeout_ms;
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
    if ((rc = promop_watch_start(&wc, on_change, ud, &m->watch, err, errlen)))
        goto fail;
    ss_metrics_register(render, m);
    *out = m;
    return 0;
fail:
    kube_config_free(m->kube);
    free(m);
    return rc;
}

void collector_monitors_stop(struct collector_monitors *m)
{
    if (!m)
        return;
    ss_metrics_unregister(render, m);
    promop_watch_stop(m->watch);
    collector_monitors_release_old(m);
    sets_free(m->sets, m->nsets);
    free(m->all);
    kube_config_free(m->kube);
    free(m);
}

bool collector_monitors_synced(struct collector_monitors *m)
{
    return promop_watch_synced(m->watch);
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

/* One monitor -> its config and jobs. Errors (naming the monitor) in err. */
static int build_one(struct collector_monitors *m, json_t *obj, struct monitor_job_set *set, char *err,
                     size_t errlen)
{
    const struct cfg_monitor_discovery *mc = m->mc;
    struct promop_opts o = {.shards = (uint32_t)mc->shards,
                            .shard = m->shard,
                            .node_name = mc->node_name,
                            .get_secret = mc->read_secrets ? promop_kube_secret : NULL,
                            .secret_ud = m->kube};
    json_t *cfgs = NULL, *doc = NULL;
    char *text = NULL, iv[32], to[32], e[768];
    int rc = promop_translate(obj, &o, &cfgs, err, errlen);
    if (rc)
        return rc;
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
    return rc;
}

int collector_monitors_rebuild(struct collector_monitors *m, const struct collector_jobs *base,
                               const struct scrape_job **jobs, size_t *njobs)
{
    json_t *objs = promop_watch_objects(m->watch);
    if (!objs)
        return SS_ENOMEM;
    size_t n = json_array_size(objs), ns = 0, nsm = 0, npm = 0, bad = 0, total = base->njobs;
    struct monitor_job_set *sets = calloc(n ? n : 1, sizeof *sets);
    if (!sets) {
        json_decref(objs);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(objs, i), *meta = json_object_get(o, "metadata");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        char name[600], err[1024] = "";
        snprintf(name, sizeof name, "%s %s/%s", kind ? kind : "?",
                 json_string_value(json_object_get(meta, "namespace")) ?: "?",
                 json_string_value(json_object_get(meta, "name")) ?: "?");
        struct monitor_job_set *s = &sets[ns];
        s->name = strdup(name);
        int rc = s->name ? build_one(m, o, s, err, sizeof err) : SS_ENOMEM;
        if (rc) {
            bad++;
            atomic_fetch_add(&m->invalid_total, 1);
            ss_error("promop", "%s left out: %s", name, err[0] ? err : ss_strerror(rc));
            collector_jobs_free(&s->jobs);
            cfg_free(s->cfg);
            free(s->name);
            memset(s, 0, sizeof *s);
            continue;
        }
        if (kind && kind[0] == 'S')
            nsm++;
        else
            npm++;
        total += s->jobs.njobs;
        ns++;
    }
    json_decref(objs);
    struct scrape_job *all = calloc(total ? total : 1, sizeof *all);
    if (!all) {
        sets_free(sets, ns);
        return SS_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < base->njobs; i++)
        all[k++] = base->jobs[i];
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < sets[i].jobs.njobs; j++)
            all[k++] = sets[i].jobs.jobs[j];
    /* The engine still holds the previous array and the previous sets' jobs until
     * the caller's scrape_manager_set_jobs: they are freed by the next rebuild's
     * swap below only after that call, so keep them in `old`. */
    collector_monitors_release_old(m); /* a generation the caller never released */
    struct monitor_job_set *old = m->sets;
    size_t nold = m->nsets;
    struct scrape_job *old_all = m->all;
    m->sets = sets;
    m->nsets = ns;
    m->all = all;
    m->nall = k;
    atomic_store(&m->valid_sm, nsm);
    atomic_store(&m->valid_pm, npm);
    atomic_store(&m->invalid_now, bad);
    atomic_store(&m->njobs, k - base->njobs);
    atomic_fetch_add(&m->rebuilds, 1);
    m->old_sets = old;
    m->nold_sets = nold;
    m->old_all = old_all;
    *jobs = all;
    *njobs = k;
    ss_info("promop", "%zu ServiceMonitors and %zu PodMonitors -> %zu jobs (%zu monitors left out)", nsm, npm,
            k - base->njobs, bad);
    return 0;
}

void collector_monitors_release_old(struct collector_monitors *m)
{
    sets_free(m->old_sets, m->nold_sets);
    free(m->old_all);
    m->old_sets = NULL;
    m->nold_sets = 0;
    m->old_all = NULL;
}
