/* promop.h: Prometheus Operator ServiceMonitor and PodMonitor (monitoring.coreos.com/v1).
 *
 * Two parts:
 *   1. promop_translate: a pure function from one monitor object (JSON, as the API
 *      server sends it) to the Prometheus scrape configs prometheus-operator generates
 *      for it (pkg/prometheus/promcfg.go: generateServiceMonitorConfig and
 *      generatePodMonitorConfig), as a JSON array in Prometheus' YAML shape, key order
 *      kept. JSON is YAML, so the config loader reads the result as it is;
 *   2. promop_watch (promop_watch.c): LIST+WATCH of both CRDs on a thread, keeping
 *      the objects, for `run` to turn into jobs when they change.
 * The input is untrusted (anyone who may create a monitor writes it): every malformed
 * field is an error naming the object, never a crash.
 */
#ifndef SS_PROMOP_H
#define SS_PROMOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ss.h"

#define PROMOP_MAX_ENDPOINTS 256  /* endpoints per monitor */
#define PROMOP_MAX_RULES     1024 /* relabelings per endpoint, labels per list */

/* Reads key `key` of Secret ns/name into *value (a NUL-terminated copy the caller
 * wipes and frees). Negative ss_err with a message (never the value) in err. */
typedef int (*promop_secret_fn)(void *ud, const char *ns, const char *name, const char *key, char **value,
                                char *err, size_t errlen);

struct promop_opts {
    /* hashmod sharding as the operator appends it: 0 = none (one instance scrapes
     * everything); else `modulus: shards` and keep `shard` (the operator's goldens use
     * "$(SHARD)", substituted by its config reloader; we take the number itself). */
    uint32_t shards;
    const char *shard;
    /* Node-local mode (the operator's DaemonSet mode): a `spec.nodeName=<node>` pod
     * selector, no sharding. For ServiceMonitors (which the operator's DaemonSet
     * mode does not take) a keep on __meta_kubernetes_endpoint_node_name as well. */
    const char *node_name;
    /* The ServiceMonitor role when the monitor names none: "endpoints" (NULL) or
     * "endpointslice" (the operator's serviceDiscoveryRole). */
    const char *default_role;
    promop_secret_fn get_secret; /* NULL: a monitor that references a Secret fails */
    void *secret_ud;
};

/* Translate one ServiceMonitor or PodMonitor (obj.kind decides). On success *out is a
 * new JSON array with one scrape config per endpoint. Secrets referenced by the
 * monitor (basicAuth, authorization, bearerTokenSecret) are read through
 * opts->get_secret and land in *out: wipe it (promop_json_wipe) before json_decref.
 * On failure returns SS_EPARSE / SS_ECONFIG / SS_ELIMIT / SS_ENOMEM, or the secret
 * reader's error, with "ServiceMonitor ns/name: ..." in err. */
int promop_translate(json_t *obj, const struct promop_opts *opts, json_t **out, char *err, size_t errlen);

/* Overwrite every string in v with zeros (secrets from Secrets) before it is freed. */
void promop_json_wipe(json_t *v);

/* ======================================================================== */
/* 2. Watching the CRDs (promop_watch.c)                                    */
/* ======================================================================== */

struct kube_config;

struct promop_watch_config {
    const struct kube_config *kube; /* borrowed for the watcher's life */
    bool service_monitors, pod_monitors;
    const char *label_selector;    /* on the monitors, sent to the API server */
    const char *const *namespaces; /* none: all namespaces */
    size_t nnamespaces;
    int64_t watch_timeout_s; /* 0: 300 */
    int64_t max_backoff_ms;  /* 0: 30000 */
};

struct promop_watch;

/* Starts one thread per (kind, namespace). on_change is called (from a watcher
 * thread) after the set of objects changed; it must only signal. */
int promop_watch_start(const struct promop_watch_config *cfg, void (*on_change)(void *ud), void *ud,
                       struct promop_watch **out, char *err, size_t errlen);
/* A snapshot of every object held now: a new JSON array of monitors, sorted by kind,
 * namespace and name. NULL on ENOMEM. */
json_t *promop_watch_objects(struct promop_watch *w);
/* True once every watcher finished its first LIST (or failed it). */
bool promop_watch_synced(struct promop_watch *w);
struct promop_watch_stats {
    uint64_t lists, watches, failures, forbidden, gone, events;
    uint64_t objects;
};
void promop_watch_get_stats(struct promop_watch *w, struct promop_watch_stats *out);
void promop_watch_stop(struct promop_watch *w); /* joins the threads; NULL is a no-op */

struct kube_config; /* kube.h */
/* GET /api/v1/namespaces/NS/secrets/NAME and the value of its key KEY (a 403 names the
 * RBAC rule to add), given up as soon as *stop is set (at most 10 s either way). */
int promop_kube_secret_until(const struct kube_config *kc, const atomic_bool *stop, const char *ns,
                             const char *name, const char *key, char **value, char *err, size_t errlen);

#endif
