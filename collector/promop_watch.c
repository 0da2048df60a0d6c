/* promop_watch.c: LIST+WATCH of ServiceMonitors and PodMonitors (monitoring.coreos.com/v1).
 *
 * One thread per (kind, namespace), each with a blocking libcurl handle: LIST (in
 * pages) to learn the objects and a resourceVersion, then WATCH from there, applying
 * ADDED / MODIFIED / DELETED events, until the server ends the watch (re-watch from
 * the last version) or answers 410 Gone (relist), as client-go's reflector does.
 * Failures back off exponentially up to max_backoff_ms. A 403 is logged once per
 * watcher with the RBAC rule to add and counted; the rest of the collector does not
 * wait for it. The collector reads a snapshot of the objects with
 * promop_watch_objects when on_change fired.
 *
 * The secret reader (promop_kube_secret_until) GETs one Secret for the translator. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "kube.h"
#include "promop.h"
#include "sstext.h"

#define PW_MAX_LIST_BYTES  (32u << 20) /* one LIST page */
#define PW_MAX_EVENT_BYTES (4u << 20)  /* one watch event */
#define PW_MAX_OBJECTS     10000u      /* monitors held in all */

struct pw_watcher {
    struct promop_watch *w;
    const char *resource, *kind, *ns;
    pthread_t thr;
    bool started, synced, forbidden_logged;
    char rv[128];
    bool relist; /* set by an ERROR 410 event */
};

struct promop_watch {
    struct promop_watch_config cfg;
    char *label_selector;
    struct pw_watcher *ws;
    size_t nws;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    json_t *objects; /* "kind/ns/name" -> object */
    struct promop_watch_stats st;
    void (*on_change)(void *ud);
    void *ud;
};

static void changed(struct promop_watch *w)
{
    if (w->on_change)
        w->on_change(w->ud);
}

static void key_of(const struct pw_watcher *pw, json_t *obj, char *key, size_t cap)
{
    json_t *m = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(m, "namespace"));
    const char *name = json_string_value(json_object_get(m, "name"));
    snprintf(key, cap, "%s/%s/%s", pw->kind, ns ? ns : "", name ? name : "");
}

/* Sleep up to ms, or until stopped. */
static void nap(struct promop_watch *w, int64_t ms)
{
    struct timespec ts = ss_mono_deadline_ms(ms);
    pthread_mutex_lock(&w->lock);
    if (!atomic_load(&w->stop))
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    pthread_mutex_unlock(&w->lock);
}

static int xfer_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&((struct promop_watch *)ud)->stop) ? 1 : 0;
}

static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
    return ss_buf_append((struct ss_buf *)ud, p, size * n) ? 0 : size * n;
}

/* One GET into body (bounded). Returns the HTTP status, or 0 on a transport error. */
static long get(struct promop_watch *w, CURL *e, const char *url, struct ss_buf *body,
                size_t (*cb)(char *, size_t, size_t, void *), void *cbud, long timeout_s, char *err,
                size_t errlen)
{
    struct curl_slist *h = NULL;
    long status = 0;
    curl_easy_reset(e);
    if (kube_easy_setup(w->cfg.kube, e, url, &h, err, errlen)) {
        httpc_headers_free(h);
        return 0;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb ? cb : body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, cb ? cbud : (void *)body);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xfer_cb);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    CURLcode res = curl_easy_perform(e);
    if (res == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(res));
    httpc_headers_free(h);
    return status;
}

static void bump(struct promop_watch *w, uint64_t *field)
{
    pthread_mutex_lock(&w->lock);
    (*field)++;
    pthread_mutex_unlock(&w->lock);
}

static void report_status(struct pw_watcher *pw, long status, const struct ss_buf *body, const char *what)
{
    struct promop_watch *w = pw->w;
    char msg[320];
    kube_status_message(body->data, body->len, msg, sizeof msg);
    bump(w, &w->st.failures);
    if (status == 403) {
        bump(w, &w->st.forbidden);
        if (!pw->forbidden_logged)
            ss_error(
                "promop",
                "cannot %s %s.monitoring.coreos.com%s%s: 403 Forbidden (%s); the service account needs a "
                "(Cluster)Role rule {apiGroups: [monitoring.coreos.com], resources: [%s], verbs: [list, "
                "watch]}; other jobs keep running, retrying",
                what, pw->resource, pw->ns ? " in namespace " : "", pw->ns ? pw->ns : "", msg, pw->resource);
        pw->forbidden_logged = true;
        return;
    }
    ss_warn("promop", "%s %s%s%s: HTTP %ld %s", what, pw->resource, pw->ns ? " in namespace " : "",
            pw->ns ? pw->ns : "", status, msg);
}

/* LIST every page; on success the watcher's objects are replaced. */
static int do_list(struct pw_watcher *pw, CURL *e)
{
    struct promop_watch *w = pw->w;
    json_t *fresh = json_object();
    struct ss_buf url, body;
    char cont[1024] = "", err[256] = "";
    int rc = fresh ? 0 : SS_ENOMEM;
    ss_buf_init(&url, 1u << 16);
    ss_buf_init(&body, PW_MAX_LIST_BYTES);
    do {
        struct kube_watch_query q = {.resource = pw->resource,
                                     .group_version = "monitoring.coreos.com/v1",
                                     .ns = pw->ns,
                                     .label_selector = w->label_selector,
                                     .continue_token = cont[0] ? cont : NULL};
        ss_buf_reset(&url);
        ss_buf_reset(&body);
        if ((rc = kube_watch_url(w->cfg.kube, &q, &url)) || (rc = ss_buf_append(&url, "", 1)))
            break;
        bump(w, &w->st.lists);
        long status = get(w, e, url.data, &body, NULL, NULL, 60, err, sizeof err);
        if (status != 200) {
            if (status)
                report_status(pw, status, &body, "list");
            else if (!atomic_load(&w->stop)) {
                bump(w, &w->st.failures);
                ss_warn("promop", "list %s: %s", pw->resource, err);
            }
            rc = SS_EIO;
            break;
        }
        json_t *doc = NULL;
        struct kube_list_page page;
        if ((rc = kube_list_page_decode(body.data, body.len, &doc, &page, err, sizeof err))) {
            bump(w, &w->st.failures);
            ss_warn("promop", "list %s: %s", pw->resource, err);
            break;
        }
        size_t i;
        json_t *it;
        json_array_foreach(page.items, i, it)
        {
            char key[700];
            if (json_object_size(fresh) >= PW_MAX_OBJECTS)
                break;
            json_object_set_new(it, "kind", json_string(pw->kind)); /* list items carry no kind */
            key_of(pw, it, key, sizeof key);
            json_object_set_new(fresh, key, json_deep_copy(it));
        }
        snprintf(cont, sizeof cont, "%s", page.continue_token ? page.continue_token : "");
        snprintf(pw->rv, sizeof pw->rv, "%s", page.resource_version ? page.resource_version : "");
        json_decref(doc);
    } while (cont[0] && !atomic_load(&w->stop));
    if (!rc) {
        const char *k;
        void *tmp;
        json_t *v;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s/%s/", pw->kind, pw->ns ? pw->ns : "");
        pthread_mutex_lock(&w->lock);
        json_object_foreach_safe(w->objects, tmp, k, v)
        {
            if (!strncmp(k, prefix, strlen(prefix)) || (!pw->ns && !strncmp(k, pw->kind, strlen(pw->kind))))
                json_object_del(w->objects, k);
        }
        json_object_update(w->objects, fresh);
        w->st.objects = json_object_size(w->objects);
        pthread_mutex_unlock(&w->lock);
        changed(w);
    }
    json_decref(fresh);
    ss_buf_free(&url);
    ss_buf_free(&body);
    return rc;
}

struct watch_ctx {
    struct pw_watcher *pw;
    struct kube_watch_stream s;
    bool failed;
};

static int on_event(void *ud, const char *line, size_t len)
{
    struct watch_ctx *x = ud;
    struct pw_watcher *pw = x->pw;
    struct promop_watch *w = pw->w;
    json_t *doc = NULL;
    struct kube_watch_event ev;
    char err[256], key[700];
    if (kube_watch_event_decode(line, len, &doc, &ev, err, sizeof err)) {
        ss_warn("promop", "watch %s: %s", pw->resource, err);
        return SS_EPARSE;
    }
    bump(w, &w->st.events);
    int rc = 0;
    switch (ev.type) {
    case KUBE_EVENT_ADDED:
    case KUBE_EVENT_MODIFIED:
    case KUBE_EVENT_DELETED:
        json_object_set_new(ev.object, "kind", json_string(pw->kind));
        key_of(pw, ev.object, key, sizeof key);
        pthread_mutex_lock(&w->lock);
        if (ev.type == KUBE_EVENT_DELETED)
            json_object_del(w->objects, key);
        else if (json_object_size(w->objects) < PW_MAX_OBJECTS || json_object_get(w->objects, key))
            json_object_set_new(w->objects, key, json_deep_copy(ev.object));
        w->st.objects = json_object_size(w->objects);
        pthread_mutex_unlock(&w->lock);
        if (ev.resource_version[0])
            snprintf(pw->rv, sizeof pw->rv, "%s", ev.resource_version);
        changed(w);
        break;
    case KUBE_EVENT_BOOKMARK:
        if (ev.resource_version[0])
            snprintf(pw->rv, sizeof pw->rv, "%s", ev.resource_version);
        break;
    case KUBE_EVENT_ERROR:
        if (ev.code == 410) {
            bump(w, &w->st.gone);
            pw->relist = true;
        } else
            ss_warn("promop", "watch %s: error event %ld %s", pw->resource, ev.code, ev.message);
        rc = SS_EIO;
        break;
    default: break;
    }
    json_decref(doc);
    return rc;
}

static size_t watch_cb(char *p, size_t size, size_t n, void *ud)
{
    struct watch_ctx *x = ud;
    int rc = kube_watch_stream_feed(&x->s, p, size * n, on_event, x);
    if (rc) {
        x->failed = true;
        return 0;
    }
    return size * n;
}

/* WATCH from pw->rv until the server ends it. 0: re-watch; else relist. */
static int do_watch(struct pw_watcher *pw, CURL *e)
{
    struct promop_watch *w = pw->w;
    struct ss_buf url, body;
    struct watch_ctx x = {.pw = pw};
    char err[256] = "";
    int64_t to = w->cfg.watch_timeout_s ? w->cfg.watch_timeout_s : 300;
    struct kube_watch_query q = {.resource = pw->resource,
                                 .group_version = "monitoring.coreos.com/v1",
                                 .ns = pw->ns,
                                 .label_selector = w->label_selector,
                                 .watch = true,
                                 .resource_version = pw->rv,
                                 .timeout_s = to};
    ss_buf_init(&url, 1u << 16);
    ss_buf_init(&body, 1u << 16);
    kube_watch_stream_init(&x.s, PW_MAX_EVENT_BYTES);
    int rc = kube_watch_url(w->cfg.kube, &q, &url);
    if (!rc)
        rc = ss_buf_append(&url, "", 1);
    if (!rc) {
        bump(w, &w->st.watches);
        pw->relist = false;
        long status = get(w, e, url.data, &body, watch_cb, &x, (long)to + 30, err, sizeof err);
        if (pw->relist)
            rc = SS_EIO;
        else if (status == 410) {
            bump(w, &w->st.gone);
            rc = SS_EIO;
        } else if (status != 200 || x.failed) {
            if (status && status != 200)
                report_status(pw, status, &body, "watch");
            else if (!atomic_load(&w->stop))
                bump(w, &w->st.failures);
            rc = SS_EIO;
        }
    }
    kube_watch_stream_free(&x.s);
    ss_buf_free(&url);
    ss_buf_free(&body);
    return rc;
}

static void *pw_thread(void *arg)
{
    struct pw_watcher *pw = arg;
    struct promop_watch *w = pw->w;
    CURL *e = curl_easy_init();
    unsigned failures = 0;
    int64_t cap = w->cfg.max_backoff_ms ? w->cfg.max_backoff_ms : 30000;
    while (e && !atomic_load(&w->stop)) {
        if (do_list(pw, e)) {
            pthread_mutex_lock(&w->lock);
            pw->synced = true; /* a failed first LIST must not hold the collector */
            pthread_mutex_unlock(&w->lock);
            int64_t d = 500LL << (failures < 8 ? failures : 8);
            failures++;
            nap(w, d < cap ? d : cap);
            continue;
        }
        pthread_mutex_lock(&w->lock);
        pw->synced = true;
        pthread_mutex_unlock(&w->lock);
        if (pw->forbidden_logged) {
            ss_info("promop", "listing %s works again", pw->resource);
            pw->forbidden_logged = false;
        }
        failures = 0;
        while (!atomic_load(&w->stop) && do_watch(pw, e) == 0)
            ;
        if (!atomic_load(&w->stop))
            nap(w, 200); /* relist: a short pause so a flapping server is not hammered */
    }
    curl_easy_cleanup(e);
    return NULL;
}

int promop_watch_start(const struct promop_watch_config *cfg, void (*on_change)(void *ud), void *ud,
                       struct promop_watch **out, char *err, size_t errlen)
{
    struct promop_watch *w = calloc(1, sizeof *w);
    size_t nns = cfg->nnamespaces ? cfg->nnamespaces : 1;
    *out = NULL;
    if (!w)
        return SS_ENOMEM;
    w->cfg = *cfg;
    w->on_change = on_change;
    w->ud = ud;
    pthread_mutex_init(&w->lock, NULL);
    ss_cond_init_mono(&w->wake);
    w->objects = json_object();
    w->label_selector = cfg->label_selector ? strdup(cfg->label_selector) : NULL;
    w->ws = calloc(2 * nns, sizeof *w->ws);
    if (!w->objects || !w->ws || (cfg->label_selector && !w->label_selector)) {
        promop_watch_stop(w);
        return SS_ENOMEM;
    }
    for (int k = 0; k < 2; k++) {
        if (k == 0 ? !cfg->service_monitors : !cfg->pod_monitors)
            continue;
        for (size_t i = 0; i < nns; i++) {
            struct pw_watcher *pw = &w->ws[w->nws++];
            pw->w = w;
            pw->resource = k == 0 ? "servicemonitors" : "podmonitors";
            pw->kind = k == 0 ? "ServiceMonitor" : "PodMonitor";
            pw->ns = cfg->nnamespaces ? cfg->namespaces[i] : NULL;
        }
    }
    for (size_t i = 0; i < w->nws; i++) {
        if (pthread_create(&w->ws[i].thr, NULL, pw_thread, &w->ws[i]) != 0) {
            snprintf(err, errlen, "cannot start the monitor watch thread");
            promop_watch_stop(w);
            return SS_ENOMEM;
        }
        w->ws[i].started = true;
    }
    *out = w;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *promop_watch_objects(struct promop_watch *w)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&w->lock);
    size_t n = json_object_size(w->objects), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!arr || !keys) {
        pthread_mutex_unlock(&w->lock);
        free(keys);
        json_decref(arr);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(w->objects, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_key);
    for (i = 0; i < n; i++)
        json_array_append_new(arr, json_deep_copy(json_object_get(w->objects, keys[i])));
    pthread_mutex_unlock(&w->lock);
    free(keys);
    return arr;
}

bool promop_watch_synced(struct promop_watch *w)
{
    bool all = true;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->nws; i++)
        all = all && w->ws[i].synced;
    pthread_mutex_unlock(&w->lock);
    return all;
}

void promop_watch_get_stats(struct promop_watch *w, struct promop_watch_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->st;
    pthread_mutex_unlock(&w->lock);
}

void promop_watch_stop(struct promop_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stop, true);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->nws; i++)
        if (w->ws[i].started)
            pthread_join(w->ws[i].thr, NULL);
    json_decref(w->objects);
    free(w->ws);
    free(w->label_selector);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* ---- Secrets ------------------------------------------------------------- */

static int stop_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load((const atomic_bool *)ud) ? 1 : 0;
}

int promop_kube_secret_until(const struct kube_config *kc, const atomic_bool *stop, const char *ns,
                             const char *name, const char *key, char **value, char *err, size_t errlen)
{
    struct ss_buf url, body;
    struct curl_slist *h = NULL;
    CURL *e = curl_easy_init();
    int rc = e ? 0 : SS_ENOMEM;
    long status = 0;
    json_t *doc = NULL;
    *value = NULL;
    ss_buf_init(&url, 1u << 12);
    ss_buf_init(&body, 1u << 20); /* Secrets are at most 1 MiB */
    if (!rc &&
        ((rc = ss_buf_printf(&url, "%s/api/v1/namespaces/", kc->server)) ||
         (rc = ss_percent_encode(&url, ns, strlen(ns), 0)) || (rc = ss_buf_append_str(&url, "/secrets/")) ||
         (rc = ss_percent_encode(&url, name, strlen(name), 0)) || (rc = ss_buf_append(&url, "", 1))))
        goto fail;
    if (!rc && (rc = kube_easy_setup(kc, e, url.data, &h, err, errlen)))
        goto fail;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    if (stop) {
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, stop_cb);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)stop);
    }
    CURLcode res = curl_easy_perform(e);
    if (res != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(res));
        rc = SS_EIO;
        goto fail;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status == 403) {
        snprintf(
            err, errlen,
            "403 Forbidden: the service account needs a Role rule {apiGroups: [\"\"], resources: [secrets], "
            "verbs: [get]} in namespace %s",
            ns);
        rc = SS_ECONFIG;
        goto fail;
    }
    if (status != 200) {
        char msg[256];
        kube_status_message(body.data, body.len, msg, sizeof msg);
        snprintf(err, errlen, "HTTP %ld %s", status, msg);
        rc = status == 404 ? SS_ENOTFOUND : SS_EIO;
        goto fail;
    }
    doc = json_loadb(body.data, body.len, 0, NULL);
    const char *b64 = json_string_value(json_object_get(json_object_get(doc, "data"), key));
    if (!b64) {
        snprintf(err, errlen, "no key %s in the secret", key);
        rc = SS_ENOTFOUND;
        goto fail;
    }
    size_t bl = strlen(b64);
    unsigned char *v = malloc(bl / 4 * 3 + 4);
    int n = v ? EVP_DecodeBlock(v, (const unsigned char *)b64, (int)bl) : -1;
    if (n < 0 || bl % 4) {
        free(v);
        snprintf(err, errlen, "key %s is not base64", key);
        rc = SS_EPARSE;
        goto fail;
    }
    while (bl && b64[bl - 1] == '=' && n > 0) /* EVP_DecodeBlock counts the padding */
        bl--, n--;
    v[n] = 0;
    *value = (char *)v;
fail:
    if (doc)
        promop_json_wipe(doc);
    json_decref(doc);
    ss_buf_free(&url);
    ss_buf_free_secret(&body);
    httpc_headers_free(h);
    if (e)
        curl_easy_cleanup(e);
    return rc;
}
