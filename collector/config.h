/* config.h: the scrapeship configuration, Prometheus-compatible YAML.
 *
 * The loader (config.c) reads YAML with libyaml, expands ${VAR} and ${VAR:-default}
 * from the environment, applies Prometheus' defaults and validates everything up
 * front. Errors name file:line:column. The structures below are plain data owned by
 * struct cfg; cfg_free releases all of it (wiping secrets).
 */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "relabel.h"
#include "scrape.h"

struct cfg_kv {
    char *key;
    char *value;
};

struct cfg_param { /* params: {name: [v1, v2]} */
    char *name;
    char **values;
    size_t nvalues;
};

struct cfg_tls {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
    bool insecure_skip_verify;
    char *min_version; /* "TLS10" .. "TLS13" or NULL */
    char *max_version; /* the same; NULL = the TLS library's newest */
};

/* Prometheus' common HTTP client config. Secrets (password, credentials,
 * bearer_token) are wiped on free and redacted when printed. */
struct cfg_http_client {
    char *basic_auth_username;
    char *basic_auth_password;
    char *basic_auth_password_file;
    bool has_basic_auth;
    char *authorization_type;             /* default "Bearer" when credentials are set */
    char *authorization_credentials;      /* also where bearer_token lands */
    char *authorization_credentials_file; /* also where bearer_token_file lands */
    struct cfg_tls tls;
    char *proxy_url;
    bool follow_redirects; /* default true */
    bool enable_http2;     /* default true */
};

struct cfg_static_config {
    char **targets;
    size_t ntargets;
    struct cfg_kv *labels;
    size_t nlabels;
};

struct cfg_file_sd {
    char **files;
    size_t nfiles;
    int64_t refresh_interval_ms; /* default 5m */
};

/* One kubernetes_sd_configs selectors entry: passed to the API server as is. */
struct cfg_kube_selector {
    char *role;  /* "pod", "service" or "endpoints" */
    char *label; /* labelSelector, NULL = none */
    char *field; /* fieldSelector, NULL = none */
};

/* kubernetes_sd_configs (Prometheus' kubernetes.SDConfig), roles pod and endpoints.
 * Without api_server and kubeconfig_file the in-cluster service account is used. */
struct cfg_kube_sd {
    char *role; /* "pod" or "endpoints" */
    char *api_server;
    char *kubeconfig_file;
    char **namespaces; /* namespaces.names; none = all namespaces */
    size_t nnamespaces;
    bool own_namespace; /* namespaces.own_namespace */
    struct cfg_kube_selector *selectors;
    size_t nselectors;
    struct cfg_http_client http; /* only with api_server, as in Prometheus */
    int line;
};

struct cfg_scrape {
    char *job_name;
    int64_t scrape_interval_ms; /* default: global */
    int64_t scrape_timeout_ms;  /* default: global, capped at the interval */
    char *metrics_path;         /* default "/metrics" */
    char *scheme;               /* default "http" */
    struct cfg_param *params;
    size_t nparams;
    bool honor_labels;     /* default false */
    bool honor_timestamps; /* default true */
    bool strict_parsing;   /* scrapeship's own: fail a scrape on what `lint` calls an error */
    struct cfg_static_config *static_configs;
    size_t nstatic_configs;
    struct cfg_file_sd *file_sd_configs;
    size_t nfile_sd_configs;
    struct cfg_kube_sd *kubernetes_sd_configs;
    size_t nkubernetes_sd_configs;
    struct cfg_http_client http;
    struct relabel_config *relabel_configs;
    size_t nrelabel_configs;
    struct relabel_config *metric_relabel_configs;
    size_t nmetric_relabel_configs;
    uint64_t sample_limit; /* 0 = none */
    uint64_t target_limit; /* 0 = none */
    uint64_t label_limit;
    uint64_t label_name_length_limit;
    uint64_t label_value_length_limit;
    uint64_t body_size_limit; /* bytes, 0 = none */
    int line;                 /* where the job starts in the file, for messages */
};

struct cfg_queue {
    int64_t capacity;               /* 10000 */
    int64_t min_shards;             /* 1 */
    int64_t max_shards;             /* 50 */
    int64_t max_samples_per_send;   /* 2000 */
    int64_t batch_send_deadline_ms; /* 5s */
    int64_t min_backoff_ms;         /* 30ms */
    int64_t max_backoff_ms;         /* 5s */
    bool retry_on_http_429;         /* true (Prometheus: false) */
    int64_t sample_age_limit_ms;    /* 0 = off */
    uint64_t max_memory_bytes;      /* 64MiB: bound on queued, encoded data */
};

struct cfg_metadata {
    bool send;                    /* true */
    int64_t send_interval_ms;     /* 1m */
    int64_t max_samples_per_send; /* 2000 */
};

struct cfg_sigv4 {
    bool enabled;
    char *region;
    char *access_key;
    char *secret_key; /* secret */
    char *profile;
    char *role_arn;
    char *external_id;
    char *service;      /* default "aps" */
    char *session_name; /* role_session_name for role_arn; NULL = awscred's default */
    char *sts_region;   /* region of the STS endpoint for role_arn; NULL = region */
};

/* The series an OpenTelemetry collector ships for the same scrape (README, "Coming
 * from ADOT"): the prometheus receiver and the prometheusremotewrite exporter of
 * opentelemetry-collector-contrib v0.98.0 (ADOT v0.39). Set from an OTel config's
 * exporter, or by `otel_translation:` on a native remote_write entry. */
struct cfg_otel_series {
    bool enabled;
    char *namespace;                /* exporter namespace: "<ns>_" prefix; NULL = none */
    bool add_metric_suffixes;       /* true: _total for counters, unit suffixes */
    bool target_info;               /* true: one target_info per target */
    bool resource_to_telemetry;     /* false: copy resource attributes onto every series */
    struct cfg_kv *external_labels; /* exporter external_labels */
    size_t nexternal_labels;
};

struct cfg_remote_write {
    char *url;
    char *name;
    int64_t remote_timeout_ms; /* 30s */
    struct cfg_kv *headers;
    size_t nheaders;
    struct relabel_config *write_relabel_configs;
    size_t nwrite_relabel_configs;
    bool send_exemplars;
    struct cfg_http_client http;
    struct cfg_queue queue;
    struct cfg_metadata metadata;
    struct cfg_sigv4 sigv4;
    struct cfg_otel_series otel;
    int line;
};

struct cfg_global {
    int64_t scrape_interval_ms; /* 1m */
    int64_t scrape_timeout_ms;  /* 10s */
    struct cfg_kv *external_labels;
    size_t nexternal_labels;
};

/* monitor_discovery: scrape what Prometheus Operator ServiceMonitors and PodMonitors
 * describe (collector/promop.c translates them, promop_watch.c watches them). */
struct cfg_monitor_discovery {
    bool enabled;          /* the section is present */
    bool service_monitors; /* default true */
    bool pod_monitors;     /* default true */
    char *label_selector;  /* on the monitors, Kubernetes selector syntax; NULL = all */
    char **namespaces;     /* where monitors are read; none = all namespaces */
    size_t nnamespaces;
    char *node_name;  /* node-local (DaemonSet): only pods on this node */
    uint64_t shards;  /* hashmod sharding: 0 = none */
    uint64_t shard;   /* this instance's shard, < shards */
    char *api_server; /* NULL: kubeconfig_file, else $KUBECONFIG / in-cluster */
    char *kubeconfig_file;
    bool read_secrets;           /* default true: basicAuth/authorization from Secrets */
    int64_t refresh_interval_ms; /* default 1m: translate again, re-reading Secrets */
    int line;
};

struct cfg {
    char *source; /* file name, or "<embedded>" */
    struct cfg_global global;
    struct cfg_scrape *scrape_configs;
    size_t nscrape_configs;
    struct cfg_remote_write *remote_writes;
    size_t nremote_writes;
    char *storage_path;                /* storage.path: disk queue directory (NULL = memory only) */
    uint64_t storage_max_disk_bytes;   /* per remote_write entry; default 1GiB */
    int64_t storage_max_age_ms;        /* 0 = keep until sent or out of space */
    int64_t storage_fsync_interval_ms; /* default 1s; 0 = fsync every spill */
    /* Only for an OpenTelemetry collector config (receivers/exporters/service): */
    bool otel;                   /* the file was one */
    char *health_check_endpoint; /* extensions.health_check in service.extensions */
    char **otel_ignored;         /* "kind id: why" for each component not run */
    size_t notel_ignored;
    struct cfg_monitor_discovery monitors;
};

/* Load and validate. On failure returns a negative ss_err, *out stays NULL and err
 * holds "file:line:column: message". */
int cfg_load_file(const char *path, struct cfg **out, char *err, size_t errlen);
int cfg_load_string(const char *yaml, size_t len, const char *source_name, struct cfg **out, char *err,
                    size_t errlen);
void cfg_free(struct cfg *c);
/* A monitor_discovery section on its own: a deep copy (0 or SS_ENOMEM), its release,
 * and whether two say the same. */
int cfg_monitors_copy(struct cfg_monitor_discovery *dst, const struct cfg_monitor_discovery *src);
void cfg_monitors_free(struct cfg_monitor_discovery *d);
bool cfg_monitors_equal(const struct cfg_monitor_discovery *a, const struct cfg_monitor_discovery *b);

/* Print the effective config (all defaults filled in) as YAML, secrets shown as
 * "<secret>". An OpenTelemetry collector config prints as the native config it maps
 * to (which loads again to the same config). */
int cfg_print(const struct cfg *c, FILE *out);
/* For an OpenTelemetry collector config: the components it has that do not run, one
 * "# ignored: ..." line each. Nothing for a native config. */
int cfg_print_ignored(const struct cfg *c, FILE *out);

/* ---- the web config file (--web.config.file) ------------------------------
 *
 * The Prometheus exporter toolkit's format (as of Prometheus 2.42, toolkit v0.8):
 *
 *   tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file,
 *                       cipher_suites, curve_preferences, min_version, max_version,
 *                       prefer_server_cipher_suites}
 *   http_server_config: {http2, headers}
 *   basic_auth_users: {user: bcrypt-hash}
 *
 * Unknown keys are errors. Values are taken verbatim (no ${VAR} expansion, as in the
 * toolkit). Relative file paths are resolved against the file's directory. */

enum cfg_web_client_auth {
    CFG_WEB_NO_CLIENT_CERT = 0,
    CFG_WEB_REQUEST_CLIENT_CERT,
    CFG_WEB_REQUIRE_ANY_CLIENT_CERT,
    CFG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN,
    CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
};

/* TLS versions as numbers: 0x0301 (TLS 1.0) .. 0x0304 (TLS 1.3), as on the wire. */
#define CFG_WEB_TLS10 0x0301
#define CFG_WEB_TLS13 0x0304

/* TLS 1.2 cipher suite parts (GnuTLS priority names): a suite is kx + cipher + mac. */
struct cfg_web_cipher_suite {
    const char *name;              /* Go's name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (static) */
    const char *kx, *cipher, *mac; /* GnuTLS priority items; NULL for TLS 1.3 suites */
};

struct cfg_web_user {
    char *name;
    char *hash; /* bcrypt ($2a$, $2b$ or $2y$), wiped on free, never logged */
};

struct cfg_web {
    char *source; /* the file's path, for messages */
    bool tls;     /* tls_server_config has cert_file (then key_file is set too) */
    char *cert_file, *key_file, *client_ca_file; /* resolved against the file's directory */
    enum cfg_web_client_auth client_auth;
    const struct cfg_web_cipher_suite **cipher_suites; /* static entries; NULL = GnuTLS defaults */
    size_t ncipher_suites;
    const char **curves; /* GnuTLS group names (static); NULL = defaults */
    size_t ncurves;
    unsigned min_version, max_version; /* default TLS 1.2 .. TLS 1.3 */
    bool prefer_server_cipher_suites;  /* default true */
    bool http2;                        /* accepted; the server speaks HTTP/1.1 only */
    struct cfg_kv *headers;            /* http_server_config.headers, validated */
    size_t nheaders;
    struct cfg_web_user *users; /* basic_auth_users, sorted by name */
    size_t nusers;
};

/* Load and validate a web config. Errors as for cfg_load_file. */
int cfg_web_load_file(const char *path, struct cfg_web **out, char *err, size_t errlen);
/* source_name also sets the directory relative paths resolve against ("." when it has
 * no slash). */
int cfg_web_load_string(const char *yaml, size_t len, const char *source_name, struct cfg_web **out,
                        char *err, size_t errlen);
void cfg_web_free(struct cfg_web *w);
/* The user's hash, or NULL. */
const char *cfg_web_user_hash(const struct cfg_web *w, const char *name);

/* The embedded default used by `scrapeship run` without --config: scrape our own
 * self-metrics endpoint (listen address substituted) every 5s. */
const char *cfg_embedded_default(void);

#endif
