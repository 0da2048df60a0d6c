/* kube_sd.c: Kubernetes service discovery (kubernetes_sd_configs), roles pod,
 * endpoints and endpointslice, the way Prometheus 2.42 discovers them.
 *
 * One thread per discoverer runs a libcurl multi loop with one watcher per (resource,
 * namespace): LIST (paged with limit/continue) into a fresh store, then WATCH from the
 * list's resourceVersion, streaming newline-delimited JSON events that are applied to
 * the store one by one. A watch that ends cleanly or loses its connection is resumed
 * from the last resourceVersion seen; a 410 Gone (as an HTTP status or as an ERROR
 * event, both of which the API server uses) means the history is gone and forces a
 * relist, as client-go's reflector does. Other failures back off exponentially.
 *
 * Stores hold a pruned copy of each object (only what the labels need) as jansson
 * values. They are written by the watch thread and read by the scrape thread, always
 * under the discoverer's lock. poll() runs on the scrape thread: when the stores
 * changed it builds a snapshot of target groups (strings copied into the snapshot's
 * arena), so the engine never sees memory the watch thread may free.
 *
 * The labels follow Prometheus 2.42's discovery/kubernetes pod.go, endpoints.go and
 * endpointslice.go (discovery.k8s.io/v1 only: v1beta1 went with Kubernetes 1.25):
 * one target per container port (address podIP:port), one per container without
 * ports (address podIP), label and annotation names sanitised to [a-zA-Z0-9_] with
 * one "_" per invalid character, "<x>present_" twins set to "true".
 *
 * Where the API server is, how to authenticate, the request URLs and the framing of
 * watch streams are the Kubernetes client's (kube/kube.h); this file is the
 * reflector (LIST, WATCH, relist, backoff) and the discovery logic.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kube.h"
#include "scrape.h"
#include "sstext.h"

#define KUBE_MAX_PAGE_BYTES     (256u << 20) /* one LIST page */
#define KUBE_MAX_LINE_BYTES     (16u << 20)  /* one watch event (etcd objects are <= 1.5 MB) */
#define KUBE_MAX_ERROR_BODY     (64u << 10)  /* body of a non-200 answer, for the log */
#define KUBE_MAX_OBJECTS        500000u      /* per watcher */
#define KUBE_MAX_NAMESPACES     1024u
#define KUBE_CONNECT_TIMEOUT_MS 10000L
#define KUBE_LIST_TIMEOUT_MS    120000L

static const char *const resource_role[] = {"pod", "service", "endpoints", "endpointslice"};
enum kube_resource { RES_PODS = 0, RES_SERVICES, RES_ENDPOINTS, RES_ENDPOINTSLICES };
static const char *const resource_path[] = {"pods", "services", "endpoints", "endpointslices"};
/* NULL: the core group (/api/v1) */
static const char *const resource_group[] = {NULL, NULL, NULL, "discovery.k8s.io/v1"};

/* ======================================================================== */
/* Watchers and stores                                                      */
/* ======================================================================== */

enum kw_state { KW_IDLE = 0, KW_LISTING, KW_WATCHING };

struct kube_watcher {
    struct kube_sd *sd;
    enum kube_resource res;
    char *ns;                                    /* NULL: all namespaces */
    const char *label_selector, *field_selector; /* borrowed from the config */
    enum kw_state state;
    bool need_list;  /* next start is a LIST (else a WATCH from rv) */
    bool first_done; /* the first LIST finished, well or not */
    bool synced;     /* a LIST completed at least once */
    CURL *easy;
    struct curl_slist *headers; /* holds the Authorization header: wiped on free */
    char errbuf[CURL_ERROR_SIZE];
    struct ss_buf body;              /* LIST page or error body */
    struct kube_watch_stream stream; /* a watch: the unfinished event line */
    long status;                     /* HTTP status of the running request, 0 until known */
    json_t *store;                   /* "ns/name" -> pruned object; under sd->lock */
    json_t *pending;                 /* LIST pages collected so far */
    char *continue_token;
    char rv[128];
    bool gone;         /* the stream said 410 */
    bool stream_error; /* an event could not be used; relist */
    int64_t next_ms;
    int64_t started_ms;
    uint64_t stream_events;
    unsigned failures; /* consecutive */
};

struct kube_snapshot {
    struct ss_arena arena;
    struct scrape_target_group *groups;
    size_t n, cap;
};

struct kube_sd {
    struct kube_sd_config cfg;
    char *job;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* first round of LISTs done */
    pthread_t thread;
    bool started;
    bool thread_ok;
    atomic_bool stop;
    CURLM *multi;
    struct kube_config *conn; /* server, TLS and credentials; made by the thread */
    bool conn_ok;
    struct kube_watcher *w; /* under lock once the thread runs */
    size_t nw;
    bool init_done; /* watchers made (or setup failed once): poll stops waiting */
    uint64_t gen;   /* bumped on every store change; under lock */
    uint64_t published_gen;
    int64_t next_build_ms; /* a poll builds targets again no sooner (min_update_interval) */
    /* the scrape loop's wakeup (scrape_discoverer.watch): called under lock when gen
     * moves, so that the loop need not poll on a timer */
    void (*wake)(void *);
    void *wake_arg;
    struct kube_snapshot *snap;
    unsigned rand_state;
    _Atomic uint64_t n_lists, n_watches, n_failures, n_gone, n_added, n_modified, n_deleted;
    _Atomic uint64_t n_objects, n_invalid;
    struct kube_sd *reg_next;
};

/* ---- pruning: keep only what the labels need ------------------------------ */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int set_str(json_t *o, const char *k, const char *v)
{
    return json_object_set_new(o, k, json_string(v ? v : ""));
}

/* labels / annotations: a string-to-string map (other values are skipped). */
static int keep_map(json_t *dst, const char *k, json_t *src)
{
    if (!json_is_object(src))
        return 0;
    json_t *m = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(src, key, v)
    {
        if (json_is_string(v))
            json_object_set(m, key, v);
    }
    return json_object_set_new(dst, k, m);
}

static int prune_meta(json_t *obj, json_t *out)
{
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md) || !json_string_value(json_object_get(md, "name")))
        return SS_EPARSE;
    if (set_str(out, "ns", jstr(md, "namespace")) || set_str(out, "name", jstr(md, "name")) ||
        set_str(out, "uid", jstr(md, "uid")) || keep_map(out, "labels", json_object_get(md, "labels")) ||
        keep_map(out, "annotations", json_object_get(md, "annotations")))
        return SS_ENOMEM;
    /* metav1.GetControllerOf: the first owner reference with controller: true */
    json_t *owners = json_object_get(md, "ownerReferences");
    size_t i;
    json_t *ref;
    json_array_foreach(owners, i, ref)
    {
        if (json_is_true(json_object_get(ref, "controller"))) {
            if (set_str(out, "ckind", jstr(ref, "kind")) || set_str(out, "cname", jstr(ref, "name")))
                return SS_ENOMEM;
            break;
        }
    }
    return 0;
}

static const char *container_id(json_t *statuses, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(statuses, i, s)
    {
        if (strcmp(jstr(s, "name"), name) == 0)
            return jstr(s, "containerID");
    }
    return "";
}

static int prune_containers(json_t *list, json_t *statuses, bool init, json_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        json_t *pc = json_object();
        json_t *ports = json_array();
        if (!pc || !ports || json_array_append_new(out, pc)) {
            json_decref(ports);
            return SS_ENOMEM;
        }
        const char *name = jstr(c, "name");
        if (set_str(pc, "name", name) || set_str(pc, "image", jstr(c, "image")) ||
            set_str(pc, "id", container_id(statuses, name)) ||
            json_object_set_new(pc, "init", json_boolean(init)) || json_object_set_new(pc, "ports", ports))
            return SS_ENOMEM;
        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(c, "ports"), j, p)
        {
            json_t *pp = json_object();
            if (!pp || json_array_append_new(ports, pp) || set_str(pp, "name", jstr(p, "name")) ||
                set_str(pp, "protocol", jstr(p, "protocol")) ||
                json_object_set_new(pp, "port",
                                    json_integer(json_integer_value(json_object_get(p, "containerPort")))))
                return SS_ENOMEM;
        }
    }
    return 0;
}

static int prune_pod(json_t *obj, json_t *out)
{
    json_t *spec = json_object_get(obj, "spec"), *st = json_object_get(obj, "status");
    int rc = prune_meta(obj, out);
    if (rc)
        return rc;
    /* podReady: the Ready condition's status lowercased, "unknown" without one */
    const char *ready = "unknown";
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(st, "conditions"), i, cond)
    {
        if (strcmp(jstr(cond, "type"), "Ready") == 0) {
            ready = jstr(cond, "status");
            break;
        }
    }
    char lower[64];
    size_t rl = strlen(ready);
    if (rl >= sizeof lower)
        rl = sizeof lower - 1;
    for (size_t k = 0; k < rl; k++)
        lower[k] = (ready[k] >= 'A' && ready[k] <= 'Z') ? (char)(ready[k] + 32) : ready[k];
    lower[rl] = '\0';
    json_t *cs = json_array();
    if (!cs || json_object_set_new(out, "containers", cs) || set_str(out, "ready", lower) ||
        set_str(out, "node", jstr(spec, "nodeName")) || set_str(out, "ip", jstr(st, "podIP")) ||
        set_str(out, "hostIP", jstr(st, "hostIP")) || set_str(out, "phase", jstr(st, "phase")))
        return SS_ENOMEM;
    /* Prometheus: containers, then init containers (pod_container_init="true") */
    if ((rc = prune_containers(json_object_get(spec, "containers"), json_object_get(st, "containerStatuses"),
                               false, cs)) ||
        (rc = prune_containers(json_object_get(spec, "initContainers"),
                               json_object_get(st, "initContainerStatuses"), true, cs)))
        return rc;
    return 0;
}

static int prune_endpoints(json_t *obj, json_t *out)
{
    int rc = prune_meta(obj, out);
    if (rc)
        return rc;
    json_t *subsets = json_object_get(obj, "subsets");
    if (json_is_array(subsets) && json_object_set(out, "subsets", subsets))
        return SS_ENOMEM;
    return 0;
}

/* EndpointSlice: metadata, addressType, and the endpoints and ports as sent (every
 * field of them may become a label). Fields of the wrong type are dropped and the
 * object marked "invalid" with the reason, which the caller logs by name and counts;
 * what remains still makes targets (an address that is not a string, a port that is
 * not a number are skipped by the builder). */
static int prune_endpointslice(json_t *obj, json_t *out)
{
    int rc = prune_meta(obj, out);
    if (rc)
        return rc;
    static const char *const lists[] = {"endpoints", "ports"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(obj, lists[i]);
        if (json_is_array(v)) {
            if (json_object_set(out, lists[i], v))
                return SS_ENOMEM;
        } else if (v && !json_is_null(v)) {
            char why[64];
            snprintf(why, sizeof why, "%s is not a list", lists[i]);
            if (set_str(out, "invalid", why))
                return SS_ENOMEM;
        }
    }
    return set_str(out, "addressType", jstr(obj, "addressType")) ? SS_ENOMEM : 0;
}

static json_t *prune(enum kube_resource res, json_t *obj, int *rc)
{
    json_t *out = json_object();
    if (!out) {
        *rc = SS_ENOMEM;
        return NULL;
    }
    *rc = res == RES_PODS             ? prune_pod(obj, out)
          : res == RES_ENDPOINTS      ? prune_endpoints(obj, out)
          : res == RES_ENDPOINTSLICES ? prune_endpointslice(obj, out)
                                      : prune_meta(obj, out);
    if (*rc) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static int object_key(json_t *pruned, char *key, size_t cap)
{
    int n = snprintf(key, cap, "%s/%s", jstr(pruned, "ns"), jstr(pruned, "name"));
    return n > 0 && (size_t)n < cap ? 0 : SS_ELIMIT;
}

/* ======================================================================== */
/* Target groups (the scrape thread, under the lock)                        */
/* ======================================================================== */

struct kv_vec {
    struct ss_kv *v;
    size_t n, cap;
};

struct builder {
    struct kube_snapshot *s;
    struct kv_vec kv;
    int rc;
};

/* strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes one "_"
 * (Go's regexp replaces per rune, so a multi-byte UTF-8 character is one "_"; an
 * invalid byte is one rune of its own). */
static char *label_name(struct builder *b, const char *prefix, const char *name)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    char *o = ss_arena_alloc(&b->s->arena, pl + nl + 1);
    if (!o)
        return NULL;
    memcpy(o, prefix, pl);
    size_t w = pl;
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < nl;) {
        unsigned char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
            o[w++] = (char)c;
            i++;
            continue;
        }
        int32_t r;
        o[w++] = '_';
        i += ss_utf8_decode(name + i, nl - i, &r);
    }
    o[w] = '\0';
    return o;
}

static void kv_add(struct builder *b, const char *name, const char *value)
{
    if (b->rc)
        return;
    if (!name) {
        b->rc = SS_ENOMEM;
        return;
    }
    void *grown = ss_array_grow(b->kv.v, &b->kv.cap, b->kv.n + 1, sizeof *b->kv.v, 64);
    if (!grown) {
        b->rc = SS_ENOMEM;
        return;
    }
    b->kv.v = grown;
    char *v = ss_arena_strndup(&b->s->arena, value ? value : "", value ? strlen(value) : 0);
    if (!v) {
        b->rc = SS_ENOMEM;
        return;
    }
    b->kv.v[b->kv.n++] = (struct ss_kv){name, v};
}

static void kv_add_map(struct builder *b, const char *prefix, const char *present_prefix, json_t *map)
{
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v)
    {
        kv_add(b, label_name(b, prefix, k), json_string_value(v));
        kv_add(b, label_name(b, present_prefix, k), "true");
    }
}

/* One group holding one target: the labels collected so far, address addr. */
static void emit(struct builder *b, const char *addr)
{
    if (b->rc)
        return;
    struct kube_snapshot *s = b->s;
    void *grown = ss_array_grow(s->groups, &s->cap, s->n + 1, sizeof *s->groups, 64);
    if (!grown) {
        b->rc = SS_ENOMEM;
        return;
    }
    s->groups = grown;
    struct ss_kv *labels = ss_arena_alloc(&s->arena, (b->kv.n + 1) * sizeof *labels);
    const char **targets = ss_arena_alloc(&s->arena, sizeof *targets);
    char *a = ss_arena_strndup(&s->arena, addr, strlen(addr));
    if (!labels || !targets || !a) {
        b->rc = SS_ENOMEM;
        return;
    }
    memcpy(labels, b->kv.v, b->kv.n * sizeof *labels);
    targets[0] = a;
    s->groups[s->n++] = (struct scrape_target_group){targets, 1, labels, b->kv.n};
}

/* net.JoinHostPort */
static void join_host_port(char *out, size_t cap, const char *host, long long port)
{
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%lld" : "%s:%lld", host, port);
}

/* podLabels(): the pod's own labels, without the namespace. */
static void pod_labels(struct builder *b, json_t *pod)
{
    kv_add(b, "__meta_kubernetes_pod_name", jstr(pod, "name"));
    kv_add(b, "__meta_kubernetes_pod_ip", jstr(pod, "ip"));
    kv_add(b, "__meta_kubernetes_pod_ready", jstr(pod, "ready"));
    kv_add(b, "__meta_kubernetes_pod_phase", jstr(pod, "phase"));
    kv_add(b, "__meta_kubernetes_pod_node_name", jstr(pod, "node"));
    kv_add(b, "__meta_kubernetes_pod_host_ip", jstr(pod, "hostIP"));
    kv_add(b, "__meta_kubernetes_pod_uid", jstr(pod, "uid"));
    if (*jstr(pod, "ckind"))
        kv_add(b, "__meta_kubernetes_pod_controller_kind", jstr(pod, "ckind"));
    if (*jstr(pod, "cname"))
        kv_add(b, "__meta_kubernetes_pod_controller_name", jstr(pod, "cname"));
    kv_add_map(b, "__meta_kubernetes_pod_label_", "__meta_kubernetes_pod_labelpresent_",
               json_object_get(pod, "labels"));
    kv_add_map(b, "__meta_kubernetes_pod_annotation_", "__meta_kubernetes_pod_annotationpresent_",
               json_object_get(pod, "annotations"));
}

/* pod.go buildPod: nothing until the pod has an IP; then one target per container
 * port and one per container without ports, init containers included. */
static void build_pod(struct builder *b, json_t *pod)
{
    const char *ip = jstr(pod, "ip");
    if (!*ip)
        return;
    b->kv.n = 0;
    kv_add(b, "__meta_kubernetes_namespace", jstr(pod, "ns"));
    pod_labels(b, pod);
    size_t base = b->kv.n;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(pod, "containers"), i, c)
    {
        const char *init = json_is_true(json_object_get(c, "init")) ? "true" : "false";
        json_t *ports = json_object_get(c, "ports");
        if (!json_array_size(ports)) {
            b->kv.n = base;
            kv_add(b, "__meta_kubernetes_pod_container_name", jstr(c, "name"));
            kv_add(b, "__meta_kubernetes_pod_container_id", jstr(c, "id"));
            kv_add(b, "__meta_kubernetes_pod_container_image", jstr(c, "image"));
            kv_add(b, "__meta_kubernetes_pod_container_init", init);
            emit(b, ip);
            continue;
        }
        size_t j;
        json_t *p;
        json_array_foreach(ports, j, p)
        {
            long long port = json_integer_value(json_object_get(p, "port"));
            char num[32], addr[320];
            snprintf(num, sizeof num, "%lld", port);
            join_host_port(addr, sizeof addr, ip, port);
            b->kv.n = base;
            kv_add(b, "__meta_kubernetes_pod_container_name", jstr(c, "name"));
            kv_add(b, "__meta_kubernetes_pod_container_id", jstr(c, "id"));
            kv_add(b, "__meta_kubernetes_pod_container_image", jstr(c, "image"));
            kv_add(b, "__meta_kubernetes_pod_container_port_number", num);
            kv_add(b, "__meta_kubernetes_pod_container_port_name", jstr(p, "name"));
            kv_add(b, "__meta_kubernetes_pod_container_port_protocol", jstr(p, "protocol"));
            kv_add(b, "__meta_kubernetes_pod_container_init", init);
            emit(b, addr);
        }
    }
}

/* The object named ns/name among the watchers of resource res. */
static json_t *lookup(struct kube_sd *k, enum kube_resource res, const char *ns, const char *name)
{
    char key[1024];
    if (snprintf(key, sizeof key, "%s/%s", ns, name) >= (int)sizeof key)
        return NULL;
    for (size_t i = 0; i < k->nw; i++) {
        struct kube_watcher *w = &k->w[i];
        if (w->res == res && (!w->ns || strcmp(w->ns, ns) == 0)) {
            json_t *o = json_object_get(w->store, key);
            if (o)
                return o;
        }
    }
    return NULL;
}

struct seen_pod {
    json_t *pod;
    long long *ports; /* endpoint ports that already made a target */
    size_t n, cap;
};

struct seen_pods {
    struct seen_pod *v;
    size_t n, cap;
};

/* Remember that pod made a target for port (has_port false: a slice port without a
 * number, which covers nothing). */
static void seen_add(struct builder *b, struct seen_pods *seen, json_t *pod, bool has_port, long long port)
{
    struct seen_pod *sp = NULL;
    for (size_t x = 0; x < seen->n; x++)
        if (seen->v[x].pod == pod)
            sp = &seen->v[x];
    if (!sp) {
        void *grown = ss_array_grow(seen->v, &seen->cap, seen->n + 1, sizeof *seen->v, 16);
        if (!grown) {
            b->rc = SS_ENOMEM;
            return;
        }
        seen->v = grown;
        sp = &seen->v[seen->n++];
        memset(sp, 0, sizeof *sp);
        sp->pod = pod;
    }
    if (!has_port)
        return;
    void *grown = ss_array_grow(sp->ports, &sp->cap, sp->n + 1, sizeof *sp->ports, 4);
    if (!grown) {
        b->rc = SS_ENOMEM;
        return;
    }
    sp->ports = grown;
    sp->ports[sp->n++] = port;
}

/* Container ports of the seen pods that no endpoint port covered get targets of
 * their own, with the group labels (the first base labels) and the pod's. */
static void emit_unseen(struct builder *b, size_t base, struct seen_pods *seen)
{
    for (size_t x = 0; x < seen->n; x++) {
        json_t *pod = seen->v[x].pod;
        size_t ci;
        json_t *c;
        json_array_foreach(json_object_get(pod, "containers"), ci, c)
        {
            if (json_is_true(json_object_get(c, "init")))
                continue;
            size_t cpi;
            json_t *cp;
            json_array_foreach(json_object_get(c, "ports"), cpi, cp)
            {
                long long pnum = json_integer_value(json_object_get(cp, "port"));
                bool covered = false;
                for (size_t y = 0; y < seen->v[x].n; y++)
                    covered |= seen->v[x].ports[y] == pnum;
                if (covered)
                    continue;
                char a[320], num[32];
                snprintf(num, sizeof num, "%lld", pnum);
                join_host_port(a, sizeof a, jstr(pod, "ip"), pnum);
                b->kv.n = base;
                kv_add(b, "__meta_kubernetes_pod_container_name", jstr(c, "name"));
                kv_add(b, "__meta_kubernetes_pod_container_image", jstr(c, "image"));
                kv_add(b, "__meta_kubernetes_pod_container_port_name", jstr(cp, "name"));
                kv_add(b, "__meta_kubernetes_pod_container_port_number", num);
                kv_add(b, "__meta_kubernetes_pod_container_port_protocol", jstr(cp, "protocol"));
                pod_labels(b, pod);
                emit(b, a);
            }
        }
    }
    for (size_t x = 0; x < seen->n; x++)
        free(seen->v[x].ports);
    free(seen->v);
    seen->v = NULL;
    seen->n = 0;
}

/* The labels of the first (non-init) container port numbered pnum: both roles take
 * the port's protocol from proto (endpoints.go the endpoint port's, endpointslice.go
 * the container port's). */
static void container_port_labels(struct builder *b, json_t *pod, long long pnum, const char *proto)
{
    size_t ci;
    json_t *c;
    json_array_foreach(json_object_get(pod, "containers"), ci, c)
    {
        if (json_is_true(json_object_get(c, "init")))
            continue;
        size_t cpi;
        json_t *cp;
        json_array_foreach(json_object_get(c, "ports"), cpi, cp)
        {
            if (json_integer_value(json_object_get(cp, "port")) != pnum)
                continue;
            char num[32];
            snprintf(num, sizeof num, "%lld", pnum);
            kv_add(b, "__meta_kubernetes_pod_container_name", jstr(c, "name"));
            kv_add(b, "__meta_kubernetes_pod_container_image", jstr(c, "image"));
            kv_add(b, "__meta_kubernetes_pod_container_port_name", jstr(cp, "name"));
            kv_add(b, "__meta_kubernetes_pod_container_port_number", num);
            kv_add(b, "__meta_kubernetes_pod_container_port_protocol", proto ? proto : jstr(cp, "protocol"));
            return;
        }
    }
}

static void service_labels(struct builder *b, json_t *svc)
{
    kv_add(b, "__meta_kubernetes_service_name", jstr(svc, "name"));
    kv_add_map(b, "__meta_kubernetes_service_label_", "__meta_kubernetes_service_labelpresent_",
               json_object_get(svc, "labels"));
    kv_add_map(b, "__meta_kubernetes_service_annotation_", "__meta_kubernetes_service_annotationpresent_",
               json_object_get(svc, "annotations"));
}

/* A targetRef of kind Pod, resolved in the store (its namespace, else ns). */
static json_t *ref_pod(struct kube_sd *k, json_t *ref, const char *ns)
{
    if (!json_is_object(ref) || strcmp(jstr(ref, "kind"), "Pod") != 0)
        return NULL;
    const char *rns = *jstr(ref, "namespace") ? jstr(ref, "namespace") : ns;
    return lookup(k, RES_PODS, rns, jstr(ref, "name"));
}

/* endpoints.go buildEndpoints: per subset, per port, one target per ready address
 * then per not-ready address; pod-backed addresses get the pod's labels and the
 * matching container's; container ports of those pods that no endpoint port covered
 * get targets of their own. */
static void build_endpoints(struct kube_sd *k, struct builder *b, json_t *eps)
{
    const char *ns = jstr(eps, "ns");
    struct seen_pods seen = {NULL, 0, 0};
    b->kv.n = 0;
    kv_add(b, "__meta_kubernetes_namespace", ns);
    kv_add(b, "__meta_kubernetes_endpoints_name", jstr(eps, "name"));
    json_t *svc = lookup(k, RES_SERVICES, ns, jstr(eps, "name"));
    if (svc)
        service_labels(b, svc);
    kv_add_map(b, "__meta_kubernetes_endpoints_label_", "__meta_kubernetes_endpoints_labelpresent_",
               json_object_get(eps, "labels"));
    size_t base = b->kv.n;

    size_t si;
    json_t *ss;
    json_array_foreach(json_object_get(eps, "subsets"), si, ss)
    {
        size_t pi;
        json_t *port;
        json_array_foreach(json_object_get(ss, "ports"), pi, port)
        {
            long long pnum = json_integer_value(json_object_get(port, "port"));
            for (int ready = 1; ready >= 0; ready--) {
                size_t ai;
                json_t *addr;
                json_array_foreach(json_object_get(ss, ready ? "addresses" : "notReadyAddresses"), ai, addr)
                {
                    char a[320];
                    join_host_port(a, sizeof a, jstr(addr, "ip"), pnum);
                    b->kv.n = base;
                    kv_add(b, "__meta_kubernetes_endpoint_port_name", jstr(port, "name"));
                    kv_add(b, "__meta_kubernetes_endpoint_port_protocol", jstr(port, "protocol"));
                    kv_add(b, "__meta_kubernetes_endpoint_ready", ready ? "true" : "false");
                    json_t *ref = json_object_get(addr, "targetRef");
                    if (json_is_object(ref)) {
                        kv_add(b, "__meta_kubernetes_endpoint_address_target_kind", jstr(ref, "kind"));
                        kv_add(b, "__meta_kubernetes_endpoint_address_target_name", jstr(ref, "name"));
                    }
                    if (json_is_string(json_object_get(addr, "nodeName")))
                        kv_add(b, "__meta_kubernetes_endpoint_node_name", jstr(addr, "nodeName"));
                    if (*jstr(addr, "hostname"))
                        kv_add(b, "__meta_kubernetes_endpoint_hostname", jstr(addr, "hostname"));
                    json_t *pod = ref_pod(k, ref, ns);
                    if (pod) {
                        seen_add(b, &seen, pod, true, pnum);
                        pod_labels(b, pod);
                        /* Prometheus takes the endpoint port's protocol here */
                        container_port_labels(b, pod, pnum, jstr(port, "protocol"));
                    }
                    emit(b, a);
                }
            }
        }
    }
    emit_unseen(b, base, &seen);
}

/* A boolean field of o as a label: absent or null gives no label. */
static void bool_label(struct builder *b, const char *name, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_boolean(v))
        kv_add(b, name, json_is_true(v) ? "true" : "false");
}

/* endpointslice.go buildEndpointSlice (discovery.k8s.io/v1): per endpoint, per port,
 * one target per address (address:port, or the bare address for a port without a
 * number); labels of the slice, of the Service named by its kubernetes.io/service-name
 * label, of the endpoint and port, of the pod behind a Pod targetRef; then the pods'
 * uncovered container ports, as for endpoints. One label Prometheus 2.42 does not have:
 * __meta_kubernetes_endpointslice_endpoint_node_name (Prometheus 2.52 added it), which
 * node-local ServiceMonitors keep on. */
static void build_endpointslice(struct kube_sd *k, struct builder *b, json_t *es)
{
    const char *ns = jstr(es, "ns");
    struct seen_pods seen = {NULL, 0, 0};
    b->kv.n = 0;
    kv_add(b, "__meta_kubernetes_namespace", ns);
    kv_add(b, "__meta_kubernetes_endpointslice_name", jstr(es, "name"));
    kv_add(b, "__meta_kubernetes_endpointslice_address_type", jstr(es, "addressType"));
    const char *svc_name =
        json_string_value(json_object_get(json_object_get(es, "labels"), "kubernetes.io/service-name"));
    json_t *svc = svc_name ? lookup(k, RES_SERVICES, ns, svc_name) : NULL;
    if (svc)
        service_labels(b, svc);
    size_t base = b->kv.n;

    size_t ei;
    json_t *ep;
    json_array_foreach(json_object_get(es, "endpoints"), ei, ep)
    {
        size_t pi;
        json_t *port;
        json_array_foreach(json_object_get(es, "ports"), pi, port)
        {
            json_t *pv = json_object_get(port, "port");
            bool has_port = json_is_integer(pv);
            long long pnum = has_port ? json_integer_value(pv) : 0;
            size_t ai;
            json_t *addr;
            json_array_foreach(json_object_get(ep, "addresses"), ai, addr)
            {
                const char *ip = json_string_value(addr);
                if (!ip)
                    continue;
                char a[320], num[32];
                if (has_port)
                    join_host_port(a, sizeof a, ip, pnum);
                else
                    snprintf(a, sizeof a, "%s", ip);
                b->kv.n = base;
                if (json_is_string(json_object_get(port, "name")))
                    kv_add(b, "__meta_kubernetes_endpointslice_port_name", jstr(port, "name"));
                if (json_is_string(json_object_get(port, "protocol")))
                    kv_add(b, "__meta_kubernetes_endpointslice_port_protocol", jstr(port, "protocol"));
                if (has_port) {
                    snprintf(num, sizeof num, "%lld", pnum);
                    kv_add(b, "__meta_kubernetes_endpointslice_port", num);
                }
                if (json_is_string(json_object_get(port, "appProtocol")))
                    kv_add(b, "__meta_kubernetes_endpointslice_port_app_protocol", jstr(port, "appProtocol"));
                json_t *cond = json_object_get(ep, "conditions");
                bool_label(b, "__meta_kubernetes_endpointslice_endpoint_conditions_ready", cond, "ready");
                bool_label(b, "__meta_kubernetes_endpointslice_endpoint_conditions_serving", cond, "serving");
                bool_label(b, "__meta_kubernetes_endpointslice_endpoint_conditions_terminating", cond,
                           "terminating");
                if (json_is_string(json_object_get(ep, "hostname")))
                    kv_add(b, "__meta_kubernetes_endpointslice_endpoint_hostname", jstr(ep, "hostname"));
                if (json_is_string(json_object_get(ep, "nodeName")))
                    kv_add(b, "__meta_kubernetes_endpointslice_endpoint_node_name", jstr(ep, "nodeName"));
                json_t *ref = json_object_get(ep, "targetRef");
                if (json_is_object(ref)) {
                    kv_add(b, "__meta_kubernetes_endpointslice_address_target_kind", jstr(ref, "kind"));
                    kv_add(b, "__meta_kubernetes_endpointslice_address_target_name", jstr(ref, "name"));
                }
                kv_add_map(b, "__meta_kubernetes_endpointslice_endpoint_topology_",
                           "__meta_kubernetes_endpointslice_endpoint_topology_present_",
                           json_object_get(ep, "deprecatedTopology"));
                json_t *pod = ref_pod(k, ref, ns);
                if (pod) {
                    seen_add(b, &seen, pod, has_port, pnum);
                    pod_labels(b, pod);
                    if (has_port)
                        container_port_labels(b, pod, pnum, NULL);
                }
                emit(b, a);
            }
        }
    }
    emit_unseen(b, base, &seen);
}

static void snapshot_free(struct kube_snapshot *s)
{
    if (!s)
        return;
    ss_arena_free(&s->arena);
    free(s->groups);
    free(s);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Objects of one watcher in key order, so snapshots are deterministic. */
static void build_store(struct kube_sd *k, struct builder *b, struct kube_watcher *w)
{
    size_t n = json_object_size(w->store);
    if (!n)
        return;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        b->rc = SS_ENOMEM;
        return;
    }
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(w->store, key, v)
    {
        if (i < n)
            keys[i++] = key;
    }
    qsort(keys, i, sizeof *keys, key_cmp);
    for (size_t j = 0; j < i && !b->rc; j++) {
        json_t *o = json_object_get(w->store, keys[j]);
        if (w->res == RES_PODS)
            build_pod(b, o);
        else if (w->res == RES_ENDPOINTSLICES)
            build_endpointslice(k, b, o);
        else
            build_endpoints(k, b, o);
    }
    free(keys);
}

/* Under k->lock. */
static struct kube_snapshot *snapshot_build(struct kube_sd *k)
{
    struct kube_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    ss_arena_init(&s->arena, 64 * 1024);
    struct builder b = {s, {NULL, 0, 0}, 0};
    enum kube_resource main_res = k->cfg.role == KUBE_SD_ROLE_POD             ? RES_PODS
                                  : k->cfg.role == KUBE_SD_ROLE_ENDPOINTSLICE ? RES_ENDPOINTSLICES
                                                                              : RES_ENDPOINTS;
    for (size_t i = 0; i < k->nw && !b.rc; i++)
        if (k->w[i].res == main_res)
            build_store(k, &b, &k->w[i]);
    free(b.kv.v);
    if (b.rc) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

/* ======================================================================== */
/* The watch thread                                                         */
/* ======================================================================== */

/* The store changed (under lock): the next poll has news, so wake the loop. */
static void bump(struct kube_sd *k)
{
    k->gen++;
    if (k->wake)
        k->wake(k->wake_arg);
}

static void count_objects(struct kube_sd *k)
{
    uint64_t n = 0;
    for (size_t i = 0; i < k->nw; i++)
        n += json_object_size(k->w[i].store);
    atomic_store(&k->n_objects, n);
}

static int64_t backoff_ms(struct kube_sd *k, unsigned failures)
{
    int64_t cap = k->cfg.max_backoff_ms > 0 ? k->cfg.max_backoff_ms : 30000;
    int64_t d = 500;
    for (unsigned i = 1; i < failures && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

static const char *res_name(const struct kube_watcher *w)
{
    return resource_path[w->res];
}

/* An object the pruner had to cut (see prune_endpointslice): logged by name, counted. */
static void note_invalid(struct kube_watcher *w, json_t *pruned)
{
    const char *why = json_string_value(json_object_get(pruned, "invalid"));
    if (!why)
        return;
    atomic_fetch_add(&w->sd->n_invalid, 1);
    ss_warn("discovery", "kubernetes job=%s %s %s/%s: %s; its other fields are used", w->sd->job, res_name(w),
            jstr(pruned, "ns"), jstr(pruned, "name"), why);
}

/* One ADDED/MODIFIED/DELETED/BOOKMARK/ERROR line of a watch stream. Returns non-zero
 * to end the stream (relist). */
static int handle_event(void *ud, const char *line, size_t len)
{
    struct kube_watcher *w = ud;
    struct kube_sd *k = w->sd;
    json_t *doc;
    struct kube_watch_event ev;
    char derr[200];
    if (kube_watch_event_decode(line, len, &doc, &ev, derr, sizeof derr) != 0) {
        ss_warn("discovery", "kubernetes job=%s %s: undecodable watch event: %s; relisting", k->job,
                res_name(w), derr);
        w->stream_error = true;
        return 1;
    }
    w->stream_events++;
    const char *rv = ev.resource_version;
    switch (ev.type) {
    case KUBE_EVENT_ERROR:
        /* apimachinery Status; 410 Gone: the RV was compacted away */
        if (ev.code == 410) {
            w->gone = true;
        } else {
            ss_warn("discovery", "kubernetes job=%s %s: watch error %ld: %s", k->job, res_name(w), ev.code,
                    ev.message);
            w->stream_error = true;
        }
        json_decref(doc);
        return 1;
    case KUBE_EVENT_BOOKMARK:
        if (*rv && strlen(rv) < sizeof w->rv)
            snprintf(w->rv, sizeof w->rv, "%s", rv);
        json_decref(doc);
        return 0;
    case KUBE_EVENT_UNKNOWN:
        json_decref(doc);
        return 0; /* unknown event types are skipped, as client-go does */
    default: break;
    }
    bool del = ev.type == KUBE_EVENT_DELETED;
    bool add = ev.type == KUBE_EVENT_ADDED;
    int rc = 0;
    json_t *p = prune(w->res, ev.object, &rc);
    char key[1024];
    if (!p || object_key(p, key, sizeof key) != 0) {
        ss_warn("discovery", "kubernetes job=%s %s: unusable object in %s event; relisting", k->job,
                res_name(w), ev.type_name);
        w->stream_error = true;
        json_decref(p);
        json_decref(doc);
        return 1;
    }
    if (!del)
        note_invalid(w, p);
    pthread_mutex_lock(&k->lock);
    if (del) {
        json_object_del(w->store, key);
        json_decref(p);
        atomic_fetch_add(&k->n_deleted, 1);
    } else if (json_object_size(w->store) >= KUBE_MAX_OBJECTS && !json_object_get(w->store, key)) {
        json_decref(p);
        ss_error("discovery", "kubernetes job=%s %s: more than %u objects, ignoring %s", k->job, res_name(w),
                 KUBE_MAX_OBJECTS, key);
    } else {
        json_object_set_new(w->store, key, p);
        atomic_fetch_add(add ? &k->n_added : &k->n_modified, 1);
    }
    bump(k);
    count_objects(k);
    pthread_mutex_unlock(&k->lock);
    if (*rv && strlen(rv) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv);
    w->failures = 0;
    json_decref(doc);
    return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct kube_watcher *w = ud;
    size_t len = size * nmemb;
    if (atomic_load(&w->sd->stop))
        return 0;
    if (!w->status)
        curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->state == KW_LISTING || w->status != 200) {
        if (w->status != 200 && w->body.len + len > KUBE_MAX_ERROR_BODY)
            return len; /* keep the start of an error body only */
        if (ss_buf_append(&w->body, ptr, len) != 0) {
            ss_error("discovery", "kubernetes job=%s %s: LIST page larger than %u bytes", w->sd->job,
                     res_name(w), KUBE_MAX_PAGE_BYTES);
            return 0;
        }
        return len;
    }
    /* a watch stream: one JSON event per line; a gone or broken stream ends here */
    int rc = kube_watch_stream_feed(&w->stream, ptr, len, handle_event, w);
    if (rc == SS_ELIMIT)
        ss_error("discovery", "kubernetes job=%s %s: watch event larger than %u bytes", w->sd->job,
                 res_name(w), KUBE_MAX_LINE_BYTES);
    return rc ? 0 : len;
}

/* Set up and add the next request of w: a LIST page or a WATCH. */
static int watcher_start(struct kube_watcher *w)
{
    struct kube_sd *k = w->sd;
    bool list = w->need_list;
    int64_t timeout_s = k->cfg.watch_timeout_s;
    if (!list && timeout_s <= 0) /* client-go reflector: minWatchTimeout * (1 + rand) */
        timeout_s = 300 + (int64_t)(rand_r(&k->rand_state) % 300);
    struct kube_watch_query q = {
        .resource = resource_path[w->res],
        .group_version = resource_group[w->res],
        .ns = w->ns,
        .label_selector = w->label_selector,
        .field_selector = w->field_selector,
        .watch = !list,
        .limit = k->cfg.list_page_size,
        .continue_token = w->continue_token,
        .resource_version = w->rv,
        .timeout_s = timeout_s,
    };
    struct ss_buf url;
    ss_buf_init(&url, 64 * 1024);
    int rc = kube_watch_url(k->conn, &q, &url);
    if (rc) {
        ss_buf_free(&url);
        return rc;
    }
    if (!w->easy && !(w->easy = curl_easy_init())) {
        ss_buf_free(&url);
        return SS_ENOMEM;
    }
    CURL *e = w->easy;
    curl_easy_reset(e);
    ss_buf_free(&w->body);
    ss_buf_init(&w->body, KUBE_MAX_PAGE_BYTES);
    kube_watch_stream_free(&w->stream);
    kube_watch_stream_init(&w->stream, KUBE_MAX_LINE_BYTES);
    w->status = 0;
    w->gone = w->stream_error = false;
    w->stream_events = 0;
    w->errbuf[0] = '\0';
    char err[300] = "";
    rc = kube_easy_setup(k->conn, e, url.data, &w->headers, err, sizeof err);
    ss_buf_free(&url);
    if (rc) {
        /* e.g. the token file cannot be read: counted, retried with backoff */
        atomic_fetch_add(&k->n_failures, 1);
        ss_warn("discovery", "kubernetes job=%s %s: %s", k->job, res_name(w), err);
        httpc_headers_free(w->headers);
        w->headers = NULL;
        return rc;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, w);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION " (kubernetes_sd)");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, KUBE_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 15L);
    if (list) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, KUBE_LIST_TIMEOUT_MS);
    } else {
        /* the server ends the watch at timeoutSeconds; this only catches a server
         * that vanished without closing the connection */
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 660L);
    }
    if (curl_multi_add_handle(k->multi, e) != CURLM_OK) {
        httpc_headers_free(w->headers);
        w->headers = NULL;
        return SS_EIO;
    }
    w->state = list ? KW_LISTING : KW_WATCHING;
    w->started_ms = ss_mono_ms();
    atomic_fetch_add(list ? &k->n_lists : &k->n_watches, 1);
    ss_debug("discovery", "kubernetes job=%s %s%s%s: %s rv=%s", k->job, res_name(w), w->ns ? " ns=" : "",
             w->ns ? w->ns : "", list ? "LIST" : "WATCH", w->rv);
    return 0;
}

static void first_round(struct kube_watcher *w)
{
    struct kube_sd *k = w->sd;
    pthread_mutex_lock(&k->lock);
    w->first_done = true;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
}

static void fail_retry(struct kube_watcher *w, bool relist, const char *what, CURLcode res)
{
    struct kube_sd *k = w->sd;
    atomic_fetch_add(&k->n_failures, 1);
    w->failures++;
    int64_t d = backoff_ms(k, w->failures);
    w->need_list = relist;
    w->next_ms = ss_mono_ms() + d;
    char msg[300];
    if (w->status && w->status != 200) {
        /* show the apimachinery Status message when there is one */
        char smsg[256];
        kube_status_message(w->body.data, w->body.len, smsg, sizeof smsg);
        snprintf(msg, sizeof msg, "HTTP %ld%s%s", w->status, smsg[0] ? ": " : "", smsg);
    } else {
        snprintf(msg, sizeof msg, "%s", w->errbuf[0] ? w->errbuf : curl_easy_strerror(res));
    }
    ss_warn("discovery", "kubernetes job=%s %s%s%s: %s failed: %s; retrying in %lldms", k->job, res_name(w),
            w->ns ? " ns=" : "", w->ns ? w->ns : "", what, msg, (long long)d);
}

static void list_done(struct kube_watcher *w, CURLcode res)
{
    struct kube_sd *k = w->sd;
    if (res != CURLE_OK || w->status != 200) {
        if (w->status == 410 && w->continue_token) {
            /* the continue token expired: start the LIST over */
            free(w->continue_token);
            w->continue_token = NULL;
            json_decref(w->pending);
            w->pending = NULL;
            atomic_fetch_add(&k->n_gone, 1);
            w->need_list = true;
            w->next_ms = ss_mono_ms();
            return;
        }
        free(w->continue_token);
        w->continue_token = NULL;
        json_decref(w->pending);
        w->pending = NULL;
        fail_retry(w, true, "LIST", res);
        first_round(w);
        return;
    }
    json_t *doc;
    struct kube_list_page page;
    if (kube_list_page_decode(w->body.data, w->body.len, &doc, &page, w->errbuf, sizeof w->errbuf) != 0) {
        w->status = 0;
        free(w->continue_token);
        w->continue_token = NULL;
        json_decref(w->pending);
        w->pending = NULL;
        fail_retry(w, true, "LIST", CURLE_OK);
        first_round(w);
        return;
    }
    if (!w->pending)
        w->pending = json_object();
    size_t i;
    json_t *it;
    int rc = w->pending ? 0 : SS_ENOMEM;
    unsigned over = 0;
    json_array_foreach(page.items, i, it)
    {
        if (rc)
            break;
        json_t *p = prune(w->res, it, &rc);
        char key[1024];
        if (!p) {
            if (rc == SS_EPARSE) {
                rc = 0; /* an item without a name: skip it */
                continue;
            }
            break;
        }
        if (object_key(p, key, sizeof key) != 0 || json_object_size(w->pending) >= KUBE_MAX_OBJECTS) {
            if (json_object_size(w->pending) >= KUBE_MAX_OBJECTS && !over++)
                ss_error("discovery", "kubernetes job=%s %s: more than %u objects, ignoring the rest", k->job,
                         res_name(w), KUBE_MAX_OBJECTS);
            json_decref(p);
            continue;
        }
        note_invalid(w, p);
        json_object_set_new(w->pending, key, p);
    }
    const char *rv = page.resource_version;
    if (!rc && *page.continue_token) {
        char *ct = strdup(page.continue_token);
        free(w->continue_token);
        w->continue_token = ct;
        json_decref(doc);
        doc = NULL;
        if (!ct) {
            rc = SS_ENOMEM;
        } else {
            w->need_list = true;
            w->next_ms = ss_mono_ms();
            return;
        }
    }
    if (rc) {
        json_decref(doc);
        json_decref(w->pending);
        w->pending = NULL;
        snprintf(w->errbuf, sizeof w->errbuf, "%s", ss_strerror(rc));
        w->status = 0;
        fail_retry(w, true, "LIST", CURLE_OK);
        first_round(w);
        return;
    }
    snprintf(w->rv, sizeof w->rv, "%s", strlen(rv) < sizeof w->rv ? rv : "");
    json_decref(doc);
    free(w->continue_token);
    w->continue_token = NULL;
    pthread_mutex_lock(&k->lock);
    json_t *old = w->store;
    w->store = w->pending;
    w->pending = NULL;
    w->synced = true;
    w->first_done = true;
    bump(k);
    count_objects(k);
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
    json_decref(old);
    ss_debug("discovery", "kubernetes job=%s %s: listed %zu objects at rv %s", k->job, res_name(w),
             json_object_size(w->store), w->rv);
    w->failures = 0;
    w->need_list = false;
    w->next_ms = ss_mono_ms();
}

static void watch_done(struct kube_watcher *w, CURLcode res)
{
    struct kube_sd *k = w->sd;
    int64_t lasted = ss_mono_ms() - w->started_ms;
    if (w->gone || w->status == 410) {
        ss_info("discovery", "kubernetes job=%s %s: resourceVersion %s is gone (410); relisting", k->job,
                res_name(w), w->rv);
        atomic_fetch_add(&k->n_gone, 1);
        w->need_list = true;
        w->next_ms = ss_mono_ms();
        return;
    }
    if (w->stream_error) {
        atomic_fetch_add(&k->n_failures, 1);
        w->failures++;
        w->need_list = true;
        w->next_ms = ss_mono_ms() + backoff_ms(k, w->failures);
        return;
    }
    if (w->status == 200 && res == CURLE_OK) {
        /* the server ended the watch (timeoutSeconds): resume from the last RV; a watch
         * that ends at once with nothing in it must not spin */
        w->need_list = false;
        w->next_ms = ss_mono_ms() + (lasted < 1000 && !w->stream_events ? 1000 : 0);
        return;
    }
    if (w->status == 200 || w->status == 0) {
        /* connection dropped mid-stream or never made: resume from the last RV */
        fail_retry(w, false, "WATCH", res);
        if (w->failures == 1 && lasted >= 1000)
            w->next_ms = ss_mono_ms(); /* a long-lived watch broke: reconnect at once */
        return;
    }
    fail_retry(w, true, "WATCH", res);
}

static void drain(struct kube_sd *k)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(k->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct kube_watcher *w = NULL;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&w);
        curl_multi_remove_handle(k->multi, e);
        if (!w)
            continue;
        if (!w->status)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &w->status);
        httpc_headers_free(w->headers);
        w->headers = NULL;
        enum kw_state st = w->state;
        w->state = KW_IDLE;
        if (atomic_load(&k->stop))
            continue;
        if (st == KW_LISTING)
            list_done(w, res);
        else
            watch_done(w, res);
    }
}

static void watcher_clear(struct kube_watcher *w)
{
    if (w->easy)
        curl_easy_cleanup(w->easy);
    httpc_headers_free(w->headers);
    ss_buf_free(&w->body);
    kube_watch_stream_free(&w->stream);
    json_decref(w->store);
    json_decref(w->pending);
    free(w->continue_token);
    free(w->ns);
}

/* Connect settings and watchers; on failure the thread retries later. */
static int setup(struct kube_sd *k, char *err, size_t errlen)
{
    const struct kube_sd_config *cfg = &k->cfg;
    int rc;
    kube_config_free(k->conn);
    k->conn = NULL;
    if (cfg->api_server) {
        rc = kube_config_from_url(cfg->api_server, &cfg->http, &k->conn, err, errlen);
    } else if (cfg->kubeconfig_file) {
        rc = kube_config_from_kubeconfig(cfg->kubeconfig_file, NULL, &k->conn, err, errlen);
    } else {
        rc = kube_config_in_cluster(cfg->service_account_dir, &k->conn, err, errlen);
        if (rc == SS_ENOTFOUND)
            snprintf(err, errlen,
                     "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                     "KUBERNETES_SERVICE_PORT must be defined (or set api_server or kubeconfig_file)");
        if (!rc && cfg->own_namespace && !k->conn->ns) {
            snprintf(err, errlen, "own_namespace: cannot read %.400s/namespace",
                     cfg->service_account_dir ? cfg->service_account_dir : KUBE_SA_DIR);
            rc = SS_EIO;
        }
    }
    if (rc) {
        if (rc == SS_ENOMEM)
            snprintf(err, errlen, "out of memory");
        kube_config_free(k->conn);
        k->conn = NULL;
        return rc;
    }
    /* own_namespace is only allowed in cluster (the config loader says so) */
    const char *own_ns = cfg->own_namespace && !cfg->api_server && !cfg->kubeconfig_file ? k->conn->ns : NULL;
    const char *nss[KUBE_MAX_NAMESPACES + 1];
    size_t nns = 0;
    for (size_t i = 0; i < cfg->nnamespaces && nns < KUBE_MAX_NAMESPACES; i++)
        nns += (nss[nns] = cfg->namespaces[i]) != NULL;
    if (own_ns) {
        bool dup = false;
        for (size_t i = 0; i < nns; i++)
            dup |= strcmp(nss[i], own_ns) == 0;
        if (!dup)
            nss[nns++] = own_ns;
    }
    enum kube_resource res[3];
    size_t nres = 0;
    if (cfg->role == KUBE_SD_ROLE_POD) {
        res[nres++] = RES_PODS;
    } else {
        res[nres++] = cfg->role == KUBE_SD_ROLE_ENDPOINTSLICE ? RES_ENDPOINTSLICES : RES_ENDPOINTS;
        res[nres++] = RES_SERVICES;
        res[nres++] = RES_PODS;
    }
    size_t per = nns ? nns : 1;
    struct kube_watcher *w = calloc(nres * per, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    size_t n = 0;
    for (size_t r = 0; r < nres; r++) {
        for (size_t i = 0; i < per; i++) {
            struct kube_watcher *x = &w[n++];
            x->sd = k;
            x->res = res[r];
            x->need_list = true;
            x->store = json_object();
            ss_buf_init(&x->body, KUBE_MAX_PAGE_BYTES);
            kube_watch_stream_init(&x->stream, KUBE_MAX_LINE_BYTES);
            if (nns && !(x->ns = strdup(nss[i])))
                rc = SS_ENOMEM;
            if (!x->store)
                rc = SS_ENOMEM;
            for (size_t s = 0; s < cfg->nselectors; s++) {
                if (cfg->selectors[s].role && strcmp(cfg->selectors[s].role, resource_role[res[r]]) == 0) {
                    x->label_selector = cfg->selectors[s].label;
                    x->field_selector = cfg->selectors[s].field;
                }
            }
        }
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            watcher_clear(&w[i]);
        free(w);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    pthread_mutex_lock(&k->lock);
    k->w = w;
    k->nw = n;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

static void *kube_thread(void *arg)
{
    struct kube_sd *k = arg;
    int64_t setup_next = 0;
    unsigned setup_failures = 0;
    while (!atomic_load(&k->stop)) {
        int64_t now = ss_mono_ms();
        int64_t wait = 1000;
        if (!k->conn_ok) {
            if (now >= setup_next) {
                char err[512] = "";
                bool ok = setup(k, err, sizeof err) == 0;
                if (ok) {
                    ss_info("discovery", "kubernetes job=%s: watching %s on %s", k->job,
                            k->cfg.role == KUBE_SD_ROLE_POD             ? "pods"
                            : k->cfg.role == KUBE_SD_ROLE_ENDPOINTSLICE ? "endpointslices, services and pods"
                                                                        : "endpoints, services and pods",
                            k->conn->server);
                } else {
                    setup_failures++;
                    int64_t d = backoff_ms(k, setup_failures + 4);
                    atomic_fetch_add(&k->n_failures, 1);
                    ss_error("discovery", "kubernetes job=%s: %s; retrying in %lldms", k->job, err,
                             (long long)d);
                    setup_next = now + d;
                }
                pthread_mutex_lock(&k->lock);
                k->conn_ok = ok;
                k->init_done = true; /* poll stops waiting either way */
                pthread_cond_broadcast(&k->cond);
                pthread_mutex_unlock(&k->lock);
            }
            if (!k->conn_ok) {
                wait = setup_next - now;
                if (wait > 1000)
                    wait = 1000;
                if (wait < 0)
                    wait = 0;
                curl_multi_poll(k->multi, NULL, 0, (int)wait, NULL);
                continue;
            }
        }
        for (size_t i = 0; i < k->nw; i++) {
            struct kube_watcher *w = &k->w[i];
            if (w->state != KW_IDLE)
                continue;
            if (w->next_ms <= now) {
                if (watcher_start(w) != 0) {
                    w->failures++;
                    w->next_ms = now + backoff_ms(k, w->failures);
                    if (!w->first_done)
                        first_round(w);
                }
            }
            if (w->state == KW_IDLE && w->next_ms - now < wait)
                wait = w->next_ms - now;
        }
        int running = 0;
        curl_multi_perform(k->multi, &running);
        drain(k);
        long cto = -1;
        curl_multi_timeout(k->multi, &cto);
        if (cto >= 0 && cto < wait)
            wait = cto;
        for (size_t i = 0; i < k->nw; i++)
            if (k->w[i].state == KW_IDLE && k->w[i].next_ms - ss_mono_ms() < wait)
                wait = k->w[i].next_ms - ss_mono_ms();
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        curl_multi_poll(k->multi, NULL, 0, (int)wait, NULL);
    }
    for (size_t i = 0; i < k->nw; i++)
        if (k->w[i].state != KW_IDLE && k->w[i].easy)
            curl_multi_remove_handle(k->multi, k->w[i].easy);
    return NULL;
}

/* ======================================================================== */
/* Self-metrics: one renderer for every discoverer                          */
/* ======================================================================== */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kube_sd *reg_head;

static int render_metrics(void *ud, struct ss_buf *out)
{
    (void)ud;
    static const struct {
        const char *name, *type, *help;
        size_t off;
        const char *label;
    } fams[] = {
        {"scrapeship_sd_kubernetes_requests_total", "counter",
         "Requests to the Kubernetes API server by kind (list pages, watches).",
         offsetof(struct kube_sd, n_lists), "kind=\"list\""},
        {NULL, NULL, NULL, offsetof(struct kube_sd, n_watches), "kind=\"watch\""},
        {"scrapeship_sd_kubernetes_failures_total", "counter",
         "Kubernetes API requests that failed (transport error or bad status).",
         offsetof(struct kube_sd, n_failures), NULL},
        {"scrapeship_sd_kubernetes_relists_total", "counter",
         "Relists forced by 410 Gone (expired resourceVersion or continue token).",
         offsetof(struct kube_sd, n_gone), NULL},
        {"scrapeship_sd_kubernetes_events_total", "counter", "Watch events applied, by type.",
         offsetof(struct kube_sd, n_added), "event=\"add\""},
        {NULL, NULL, NULL, offsetof(struct kube_sd, n_modified), "event=\"update\""},
        {NULL, NULL, NULL, offsetof(struct kube_sd, n_deleted), "event=\"delete\""},
        {"scrapeship_sd_kubernetes_objects", "gauge", "Kubernetes objects held by discovery.",
         offsetof(struct kube_sd, n_objects), NULL},
        {"scrapeship_sd_kubernetes_invalid_objects_total", "counter",
         "Objects with fields of the wrong type, which discovery left out.",
         offsetof(struct kube_sd, n_invalid), NULL},
    };
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    const char *name = NULL;
    for (size_t f = 0; f < sizeof fams / sizeof fams[0] && !rc; f++) {
        if (fams[f].name) {
            name = fams[f].name;
            rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, fams[f].help, name, fams[f].type);
        }
        for (struct kube_sd *k = reg_head; k && !rc; k = k->reg_next) {
            uint64_t v = atomic_load((_Atomic uint64_t *)((char *)k + fams[f].off));
            rc = ss_buf_printf(out, "%s{scrape_job=\"", name);
            if (!rc)
                rc = ss_escape_label_value(out, k->job, strlen(k->job));
            if (!rc)
                rc = ss_buf_printf(out, "\"%s%s} %llu\n", fams[f].label ? "," : "",
                                   fams[f].label ? fams[f].label : "", (unsigned long long)v);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

/* Discoverers come and go on more than one thread (the scrape thread, monitor
 * discovery's builder): reg_switch keeps "the first registers, the last
 * unregisters" in step with the list. It is not reg_lock, which render_metrics takes
 * under the metrics registry's own lock. */
static pthread_mutex_t reg_switch = PTHREAD_MUTEX_INITIALIZER;

static void registry_add(struct kube_sd *k)
{
    pthread_mutex_lock(&reg_switch);
    pthread_mutex_lock(&reg_lock);
    bool first = !reg_head;
    k->reg_next = reg_head;
    reg_head = k;
    pthread_mutex_unlock(&reg_lock);
    if (first)
        ss_metrics_register(render_metrics, NULL);
    pthread_mutex_unlock(&reg_switch);
}

static void registry_del(struct kube_sd *k)
{
    pthread_mutex_lock(&reg_switch);
    pthread_mutex_lock(&reg_lock);
    for (struct kube_sd **pp = &reg_head; *pp; pp = &(*pp)->reg_next)
        if (*pp == k) {
            *pp = k->reg_next;
            break;
        }
    bool last = !reg_head;
    pthread_mutex_unlock(&reg_lock);
    if (last)
        ss_metrics_unregister(render_metrics, NULL);
    pthread_mutex_unlock(&reg_switch);
}

/* ======================================================================== */
/* Public entry points                                                      */
/* ======================================================================== */

int kube_sd_new(const struct kube_sd_config *cfg, struct kube_sd **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->role != KUBE_SD_ROLE_POD && cfg->role != KUBE_SD_ROLE_ENDPOINTS &&
        cfg->role != KUBE_SD_ROLE_ENDPOINTSLICE) {
        snprintf(err, errlen, "kubernetes_sd: unsupported role");
        return SS_ECONFIG;
    }
    if (cfg->api_server && cfg->kubeconfig_file) {
        snprintf(err, errlen, "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
        return SS_ECONFIG;
    }
    if (cfg->nnamespaces > KUBE_MAX_NAMESPACES) {
        snprintf(err, errlen, "kubernetes_sd: more than %u namespaces", KUBE_MAX_NAMESPACES);
        return SS_ECONFIG;
    }
    struct kube_sd *k = calloc(1, sizeof *k);
    if (!k || !(k->job = strdup(cfg->job ? cfg->job : ""))) {
        free(k);
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    k->cfg = *cfg;
    k->published_gen = UINT64_MAX;
    k->rand_state = (unsigned)(ss_now_ms() ^ (uintptr_t)k);
    pthread_mutex_init(&k->lock, NULL);
    ss_cond_init_mono(&k->cond);
    registry_add(k);
    *out = k;
    return 0;
}

static void start(struct kube_sd *k)
{
    k->started = true;
    if (!(k->multi = curl_multi_init())) {
        ss_error("discovery", "kubernetes job=%s: cannot start (out of memory)", k->job);
        return;
    }
    if (pthread_create(&k->thread, NULL, kube_thread, k) != 0) {
        ss_error("discovery", "kubernetes job=%s: cannot start the watch thread", k->job);
        return;
    }
    k->thread_ok = true;
    /* Wait a little for the first LISTs, so the first scrapes (and `scrape --config`)
     * already see the targets; the watch goes on regardless. */
    int64_t wait = k->cfg.initial_wait_ms > 0 ? k->cfg.initial_wait_ms : 2000;
    struct timespec dl = ss_mono_deadline_ms(wait);
    pthread_mutex_lock(&k->lock);
    for (;;) {
        bool done = k->init_done;
        for (size_t i = 0; done && k->conn_ok && i < k->nw; i++)
            done = k->w[i].first_done;
        if (done || pthread_cond_timedwait(&k->cond, &k->lock, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&k->lock);
}

static bool kube_poll(void *ud, const struct scrape_target_group **groups, size_t *ngroups)
{
    struct kube_sd *k = ud;
    if (!k->started)
        start(k);
    int64_t now = ss_mono_ms();
    int64_t every = k->cfg.min_update_interval_ms > 0 ? k->cfg.min_update_interval_ms : 1000;
    pthread_mutex_lock(&k->lock);
    if (k->gen == k->published_gen || now < k->next_build_ms) {
        pthread_mutex_unlock(&k->lock);
        return false;
    }
    struct kube_snapshot *s = snapshot_build(k);
    if (s)
        k->published_gen = k->gen;
    k->next_build_ms = now + every; /* after a failed build too: no retry in a tight loop */
    pthread_mutex_unlock(&k->lock);
    if (!s) {
        ss_error("discovery", "kubernetes job=%s: out of memory building targets", k->job);
        return false;
    }
    snapshot_free(k->snap);
    k->snap = s;
    *groups = s->groups;
    *ngroups = s->n;
    return true;
}

static void kube_watch(void *ud, void (*wake)(void *), void *arg)
{
    struct kube_sd *k = ud;
    pthread_mutex_lock(&k->lock); /* so that no call to the previous wake is under way after */
    k->wake = wake;
    k->wake_arg = arg;
    pthread_mutex_unlock(&k->lock);
}

/* Not started: now (the first poll starts the watch). Nothing new: never, until bump
 * wakes the loop. Else when min_update_interval lets a poll build targets again. */
static int64_t kube_next_poll(void *ud)
{
    struct kube_sd *k = ud;
    if (!k->started)
        return 0;
    pthread_mutex_lock(&k->lock);
    int64_t at = k->gen == k->published_gen ? INT64_MAX : k->next_build_ms;
    pthread_mutex_unlock(&k->lock);
    return at;
}

void kube_sd_discoverer(struct kube_sd *k, struct scrape_discoverer *out)
{
    out->poll = kube_poll;
    out->ud = k;
    out->watch = kube_watch;
    out->next_poll_ms = kube_next_poll;
}

void kube_sd_get_stats(struct kube_sd *k, struct kube_sd_stats *out)
{
    memset(out, 0, sizeof *out);
    out->lists = atomic_load(&k->n_lists);
    out->watches = atomic_load(&k->n_watches);
    out->failures = atomic_load(&k->n_failures);
    out->gone = atomic_load(&k->n_gone);
    out->events_added = atomic_load(&k->n_added);
    out->events_modified = atomic_load(&k->n_modified);
    out->events_deleted = atomic_load(&k->n_deleted);
    out->objects = atomic_load(&k->n_objects);
    pthread_mutex_lock(&k->lock);
    bool synced = k->nw > 0;
    for (size_t i = 0; i < k->nw; i++)
        synced &= k->w[i].synced;
    out->synced = synced;
    pthread_mutex_unlock(&k->lock);
}

void kube_sd_free(struct kube_sd *k)
{
    if (!k)
        return;
    registry_del(k);
    atomic_store(&k->stop, true);
    if (k->thread_ok) {
        curl_multi_wakeup(k->multi);
        pthread_join(k->thread, NULL);
    }
    for (size_t i = 0; i < k->nw; i++)
        watcher_clear(&k->w[i]);
    free(k->w);
    if (k->multi)
        curl_multi_cleanup(k->multi);
    kube_config_free(k->conn);
    snapshot_free(k->snap);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k->job);
    free(k);
}
