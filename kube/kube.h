/* kube.h: the Kubernetes API client (prefix kube_), on the httpclient floor.
 *
 * Used by kubernetes_sd (scrape/kube_sd.c: LIST+WATCH of pods, services, endpoints)
 * and by the scaler (scaler/runner.c: the scale subresource). Four parts:
 *   1. configuration: where the API server is and how to authenticate, from
 *      kubeconfig files, the in-cluster service account, or an api_server URL with a
 *      Prometheus http_config. A kube_config carries an httpc_config, so TLS, tokens
 *      and their re-reading are the HTTP floor's (token files: every request);
 *   2. requests on a libcurl handle the caller drives (kube_easy_setup), for callers
 *      that run their own multi loop;
 *   3. LIST and WATCH: the request URLs, LIST pages, and the framing of a watch
 *      stream (newline-delimited JSON events) with a bound on one event;
 *   4. a synchronous client for single calls, with a transport seam for tests: the
 *      scale subresource, a workload's replicas and annotations, and error messages
 *      an operator can act on (a 403 names the RBAC rule to add).
 * Secrets (tokens, passwords, client keys) are wiped before they are freed.
 */
#ifndef SS_KUBE_H
#define SS_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "httpclient.h"
#include "ss.h"

#define KUBE_SA_DIR           "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_MAX_CONFIG_BYTES (4u << 20) /* one kubeconfig file */
#define KUBE_MAX_BODY_BYTES   (4u << 20) /* one answer of the synchronous client */

/* ======================================================================== */
/* 1. Configuration (kube/config.c)                                         */
/* ======================================================================== */

/* Every string is owned by the struct; kube_config_free frees it, wiping secrets. */
struct kube_config {
    char *server;  /* "https://host:port" or "http://...", no trailing '/' */
    char *ns;      /* the context's namespace, or the pod's in cluster; NULL if none */
    char *context; /* kubeconfig context used, "in-cluster" or "api_server" */
    /* TLS and credentials (owned, httpc_config_dup). A kubeconfig's token lands in
     * authorization_credentials, its tokenFile (which wins, as in client-go) or the
     * service-account token in authorization_credentials_file, *-data fields in the
     * tls_*_pem bytes (they win over the files, as in client-go). */
    struct httpc_config *http;
};

/* Read kubeconfig files. `paths` is a KUBECONFIG-style list separated by ':'; as
 * kubectl merges them, the first file that sets a value wins and missing files are
 * skipped. `context` NULL uses current-context, else the only context there is.
 * Relative file paths are resolved against the directory of the file holding them.
 * The user must exist and a client certificate needs its key. Exec and
 * auth-provider plugins are not run: a user with one and no other credential is
 * SS_ECONFIG. YAML errors are SS_EPARSE with file:line:column. */
int kube_config_from_kubeconfig(const char *paths, const char *context, struct kube_config **out, char *err,
                                size_t errlen);
/* In-cluster (rest.InClusterConfig): https://$KUBERNETES_SERVICE_HOST:$..._PORT, the
 * service-account token file (must be readable now; then re-read for every
 * request), ca.crt (system CAs when absent) and namespace files from sa_dir (NULL =
 * KUBE_SA_DIR). SS_ENOTFOUND when the environment variables are not set. */
int kube_config_in_cluster(const char *sa_dir, struct kube_config **out, char *err, size_t errlen);
/* An explicit API server (kubernetes_sd's api_server) with an http_config (copied). */
int kube_config_from_url(const char *api_server, const struct httpc_config *http, struct kube_config **out,
                         char *err, size_t errlen);
/* The order controller-runtime (KEDA) uses: an explicit kubeconfig path, else
 * $KUBECONFIG, else in cluster, else ~/.kube/config. */
int kube_config_load(const char *kubeconfig, const char *context, const char *sa_dir,
                     struct kube_config **out, char *err, size_t errlen);
void kube_config_free(struct kube_config *c);

/* ======================================================================== */
/* 2. Requests on a caller's handle (kube/client.c)                         */
/* ======================================================================== */

/* Prepare e (already reset by the caller if it was used) for a GET of url under c:
 * httpc_setup (TLS, proxy, redirects, the Authorization line with the token file
 * read now), "Accept: application/json" and a user agent. The lines are appended to
 * *headers: add your own, set CURLOPT_HTTPHEADER, free with httpc_headers_free after
 * the transfer. Errors as httpc_setup's, with a message in err. */
int kube_easy_setup(const struct kube_config *c, CURL *e, const char *url, struct curl_slist **headers,
                    char *err, size_t errlen);

/* The Status message of an error answer (apimachinery metav1.Status), made safe for
 * one log line; for a body that is not JSON (a proxy's page) its printable start.
 * Empty when there is nothing to show. */
void kube_status_message(const char *body, size_t len, char *buf, size_t cap);

/* ======================================================================== */
/* 3. LIST and WATCH (kube/watch.c)                                         */
/* ======================================================================== */

/* One LIST page or WATCH of a resource: core/v1, or of an API group. */
struct kube_watch_query {
    const char *resource;      /* plural: "pods", "services", "endpoints" */
    const char *group_version; /* NULL: core (/api/v1); "monitoring.coreos.com/v1": /apis/... */
    const char *ns;            /* NULL: all namespaces */
    const char *label_selector, *field_selector; /* NULL or "": none */
    bool watch;                                  /* false: LIST */
    uint32_t limit;                              /* LIST page size; 0 = 500 */
    const char *continue_token;                  /* LIST: the next page, NULL for the first */
    const char *resource_version;                /* WATCH: from here (the LIST's or the last event's) */
    int64_t timeout_s;                           /* WATCH: timeoutSeconds, the server ends the watch then */
};

/* Append the request URL to url: server/api/v1 (or /apis/GROUP/VERSION)[/namespaces/NS]/RESOURCE?..., every
 * value percent-encoded. A WATCH asks for bookmarks. */
int kube_watch_url(const struct kube_config *c, const struct kube_watch_query *q, struct ss_buf *url);

/* A decoded LIST answer; everything points into *doc (json_decref it). */
struct kube_list_page {
    json_t *items;                /* array of objects */
    const char *continue_token;   /* "" on the last page */
    const char *resource_version; /* where a WATCH resumes */
};
/* SS_EPARSE (message in err) when body is not a List. Objects with NUL bytes in a
 * string are accepted: one odd annotation must not hide a whole list. */
int kube_list_page_decode(const char *body, size_t len, json_t **doc, struct kube_list_page *out, char *err,
                          size_t errlen);

enum kube_event_type {
    KUBE_EVENT_ADDED = 0,
    KUBE_EVENT_MODIFIED,
    KUBE_EVENT_DELETED,
    KUBE_EVENT_BOOKMARK,
    KUBE_EVENT_ERROR,
    KUBE_EVENT_UNKNOWN, /* a type this client does not know: skip it, as client-go does */
};

/* One watch event; everything points into the decoded document. */
struct kube_watch_event {
    enum kube_event_type type;
    const char *type_name;        /* as sent */
    json_t *object;               /* the object, or the Status of an ERROR event */
    const char *resource_version; /* object.metadata.resourceVersion, "" if none */
    long code;                    /* ERROR: the Status code (410: the history is gone) */
    const char *message;          /* ERROR: the Status message, "" if none */
};
/* Decode one event line. *doc owns everything in *ev (json_decref it). SS_EPARSE
 * with a message when the line is not JSON or has no type or object. */
int kube_watch_event_decode(const char *line, size_t len, json_t **doc, struct kube_watch_event *ev,
                            char *err, size_t errlen);

/* A watch stream cut into event lines. The bytes of an unfinished line are kept,
 * up to max_event_bytes. */
struct kube_watch_stream {
    struct ss_buf buf;
    size_t scanned; /* bytes of buf already searched for '\n' */
};
void kube_watch_stream_init(struct kube_watch_stream *s, size_t max_event_bytes);
void kube_watch_stream_reset(struct kube_watch_stream *s); /* new stream, keeps the memory */
void kube_watch_stream_free(struct kube_watch_stream *s);
/* Append n bytes and call on_line once per complete line, without the '\n' and
 * trailing '\r' or spaces; empty lines are skipped. A non-zero return from on_line
 * stops there (the rest is dropped) and is returned. SS_ELIMIT when one line
 * exceeds max_event_bytes. */
int kube_watch_stream_feed(struct kube_watch_stream *s, const char *p, size_t n,
                           int (*on_line)(void *ud, const char *line, size_t len), void *ud);

/* ======================================================================== */
/* 4. The synchronous client (kube/client.c)                                */
/* ======================================================================== */

/* The workload a scale call is about (a ScaledObject's scaleTargetRef). */
struct kube_target {
    const char *ns;
    const char *api_version; /* "apps/v1" */
    const char *kind;        /* "Deployment", "StatefulSet" */
    const char *name;
};

enum kube_op {
    KUBE_OP_GET_SCALE = 0, /* GET .../NAME/scale */
    KUBE_OP_PATCH_SCALE,   /* PATCH .../NAME/scale */
    KUBE_OP_GET_WORKLOAD,  /* GET .../NAME (annotations, ready replicas) */
};

/* What went wrong with one API call, ready to log. */
struct kube_error {
    long status;    /* HTTP status; 0 when there was no answer */
    bool retryable; /* 401 (the token is read again), 409, 429, 5xx, network, token file */
    char message[640];
};

/* Map a non-2xx answer to an ss_err and a message: 401 and 403 are SS_EAUTH (403
 * names the RBAC rule that is missing), 404 SS_ENOTFOUND, everything else SS_EHTTP.
 * The Kubernetes Status message in body, if any, is quoted. Returns the ss_err. */
int kube_error_from_status(long status, const char *body, size_t len, const struct kube_target *t,
                           enum kube_op op, struct kube_error *out);
/* The RBAC rule an operation needs, e.g. `apiGroups ["apps"], resources
 * ["deployments/scale"], verbs ["get","patch"] in namespace NS`. */
void kube_rbac_rule(const struct kube_target *t, enum kube_op op, char *buf, size_t cap);

/* One HTTP exchange. The default transport is libcurl (httpc_setup); tests install
 * a script. The header lines are complete (Authorization included). */
struct kube_http_request {
    const char *method;
    const char *url;
    const struct curl_slist *headers; /* "Name: value" lines; Authorization holds a secret */
    const char *body;
    size_t body_len;
};
typedef int (*kube_transport_fn)(void *ud, const struct kube_http_request *req, long *status,
                                 struct ss_buf *resp, char *err, size_t errlen);

struct kube_client;
/* cfg is borrowed and must outlive the client. One handle, kept between calls so
 * its connection is reused. */
int kube_client_new(const struct kube_config *cfg, struct kube_client **out);
void kube_client_set_transport(struct kube_client *c, kube_transport_fn fn, void *ud);
void kube_client_set_timeout(struct kube_client *c, int64_t timeout_ms); /* default 10 s */
void kube_client_free(struct kube_client *c);

/* The scale subresource (autoscaling/v1 Scale). */
struct kube_scale {
    int32_t spec_replicas;
    int32_t status_replicas;
};

struct kube_annotation {
    const char *key;
    const char *value;
};

/* What a caller reads from the workload object itself. */
struct kube_workload {
    int32_t spec_replicas;
    int32_t ready_replicas; /* status.readyReplicas; 0 when absent */
    /* the annotations whose key starts with the prefix asked for; more than fit are
     * dropped with a warning */
    struct kube_annotation annotations[8];
    size_t n_annotations;
    char strings[2048]; /* backing store of the annotation keys and values */
};

int kube_get_scale(struct kube_client *c, const struct kube_target *t, struct kube_scale *out,
                   struct kube_error *err);
/* PATCH {"spec":{"replicas":N}} as application/merge-patch+json; *out (may be NULL)
 * receives the Scale the server answered with. */
int kube_patch_scale(struct kube_client *c, const struct kube_target *t, int32_t replicas,
                     struct kube_scale *out, struct kube_error *err);
/* annotation_prefix: which annotations to keep (e.g. "autoscaling.keda.sh/"). */
int kube_get_workload(struct kube_client *c, const struct kube_target *t, const char *annotation_prefix,
                      struct kube_workload *out, struct kube_error *err);

#endif
