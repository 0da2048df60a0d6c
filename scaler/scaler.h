/* scaler.h: the scaler module's public surface (prefix scaler_).
 *
 * Three pure pieces, none of which touches the network:
 *   - the KEDA manifest loader: ScaledObject and TriggerAuthentication documents
 *     (keda.sh/v1alpha1) read from YAML as users paste them, validated the way KEDA
 *     validates them, with unknown fields reported as warnings;
 *   - the Prometheus query-result reader: turns the status and body of
 *     GET /api/v1/query into one number the way KEDA's prometheus scaler does;
 *   - the decision engine: KEDA's activation/deactivation logic followed by the
 *     Kubernetes HPA algorithm for external metrics (tolerance, stabilization
 *     windows, scaling policies, min/max), plus KEDA fallback and pause annotations.
 *
 * The engine keeps all history in a caller-owned struct scaler_state and takes the
 * clock as a parameter, so a test can replay a scenario second by second. A call
 * to scaler_decide is a KEDA poll (activation, cooldown: every pollingInterval),
 * and also an HPA sync when one is due (replica maths: every HPA sync period, as
 * the HPA controller's --horizontal-pod-autoscaler-sync-period).
 */
#ifndef SCALER_H
#define SCALER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss.h"

/* ---- configuration ----------------------------------------------------- */

/* Hard limits on what a manifest may hold; going over one is a load error. */
#define SCALER_MAX_INPUT_BYTES (1u << 20) /* one manifest file */
#define SCALER_MAX_TRIGGERS    32         /* per ScaledObject */
#define SCALER_MAX_POLICIES    16         /* per HPA scaling direction */
#define SCALER_MAX_KV          64         /* customHeaders, queryParameters, annotations */

enum scaler_metric_type {
    SCALER_METRIC_AVERAGE_VALUE = 0, /* KEDA's default: target per replica */
    SCALER_METRIC_VALUE,             /* target for the whole workload */
};

enum scaler_policy_type { SCALER_POLICY_PODS = 0, SCALER_POLICY_PERCENT };

enum scaler_select_policy {
    SCALER_SELECT_MAX = 0, /* Kubernetes default: the policy allowing the biggest change */
    SCALER_SELECT_MIN,
    SCALER_SELECT_DISABLED,
};

/* KEDA fallback.behavior */
enum scaler_fallback_behavior {
    SCALER_FALLBACK_STATIC = 0, /* fallback.replicas (default) */
    SCALER_FALLBACK_CURRENT_REPLICAS,
    SCALER_FALLBACK_CURRENT_REPLICAS_IF_HIGHER,
    SCALER_FALLBACK_CURRENT_REPLICAS_IF_LOWER,
};

/* The annotation that gives one ScaledObject its own HPA sync period (a Prometheus
 * duration such as "5s"), on the manifest or on the target workload. */
#define SCALER_SYNC_PERIOD_ANNOTATION "scrapeship.io/hpa-sync-period"
#define SCALER_DEFAULT_SYNC_PERIOD_MS 15000 /* Kubernetes' default sync period */

struct scaler_kv {
    const char *key;
    const char *value;
};

struct scaler_policy {
    enum scaler_policy_type type;
    int32_t value;
    int32_t period_seconds;
};

/* One direction of autoscaling/v2 HorizontalPodAutoscalerBehavior, with the
 * Kubernetes defaults already filled in. */
struct scaler_rules {
    int32_t stabilization_window_seconds;
    enum scaler_select_policy select_policy;
    struct scaler_policy policies[SCALER_MAX_POLICIES];
    size_t n_policies;
};

/* A `type: prometheus` trigger. KEDA metadata values are all strings; these are
 * the parsed forms. Strings are NUL-terminated and owned by the config. */
struct scaler_trigger {
    const char *name; /* optional trigger name, NULL if absent */
    enum scaler_metric_type metric_type;
    const char *server_address;
    const char *query;
    double threshold;
    double activation_threshold;            /* default 0; active iff value > this */
    bool ignore_null_values;                /* default true */
    bool unsafe_ssl;                        /* default false */
    const char *prom_namespace;             /* metadata.namespace (Thanos tenancy), NULL if absent */
    int64_t timeout_ms;                     /* 0 = the HTTP client's default */
    const char *aws_region;                 /* NULL if absent */
    const char *auth_modes;                 /* NULL if absent */
    const char *identity_owner;             /* NULL if absent */
    const struct scaler_kv *custom_headers; /* values may be secrets: wiped on free */
    size_t n_custom_headers;
    const struct scaler_kv *query_parameters;
    size_t n_query_parameters;
    const char *auth_ref_name; /* authenticationRef.name, NULL if absent */
    int line, column;          /* where the trigger starts in the manifest */
};

/* spec.advanced.scalingModifiers: the HPA sees one composite metric, the formula
 * over the named triggers' values, against `target`; activation compares it to
 * activationTarget instead of each trigger's activationThreshold. */
struct scaler_formula; /* compiled formula (scaler/formula.c), owned by the config */
struct scaler_modifiers {
    const char *formula; /* the text, for logs */
    const struct scaler_formula *program;
    double target;            /* > 0 */
    double activation_target; /* default 0: active iff composite > this */
    enum scaler_metric_type metric_type;
};

struct scaler_trigger_auth {
    const char *name;
    const char *ns;
    const char *pod_identity_provider; /* e.g. "aws"; NULL if absent */
    const char *role_arn;              /* NULL if absent */
    const char *identity_owner;        /* NULL if absent */
    int line, column;
};

struct scaler_object {
    const char *name;
    const char *ns; /* "default" when the manifest has none */
    const struct scaler_kv *annotations;
    size_t n_annotations;
    const char *target_api_version; /* default "apps/v1" */
    const char *target_kind;        /* "Deployment" (default) or "StatefulSet" */
    const char *target_name;
    int32_t polling_interval_s;        /* default 30 */
    int32_t cooldown_period_s;         /* default 300 */
    int32_t initial_cooldown_period_s; /* default 0 */
    int32_t min_replicas;              /* default 0 */
    int32_t max_replicas;              /* default 100 */
    bool has_idle_replicas;
    int32_t idle_replicas;
    bool has_fallback;
    int32_t fallback_failure_threshold;
    int32_t fallback_replicas;
    enum scaler_fallback_behavior fallback_behavior;
    /* advanced.horizontalPodAutoscalerConfig.behavior present: the HPA uses the
     * behavior algorithm; absent: the legacy one (scale-up limit, fixed 300 s
     * scale-down stabilization). */
    bool has_behavior;
    struct scaler_rules scale_up;
    struct scaler_rules scale_down;
    bool has_modifiers;
    struct scaler_modifiers modifiers;
    /* metadata.annotations[SCALER_SYNC_PERIOD_ANNOTATION]; 0 when absent (the
     * caller's default applies) */
    int64_t hpa_sync_period_ms;
    const struct scaler_trigger *triggers;
    size_t n_triggers;
    int line, column;
};

struct scaler_config {
    const struct scaler_object *objects;
    size_t n_objects;
    const struct scaler_trigger_auth *auths;
    size_t n_auths;
    /* "source:line:col: message" lines about things that were ignored. */
    const char *const *warnings;
    size_t n_warnings;
};

/* Load every document of a YAML stream. On failure returns a negative ss_err
 * (SS_EPARSE for YAML syntax, SS_ECONFIG for KEDA validation, SS_ELIMIT, SS_EIO,
 * SS_ENOMEM), writes "source:line:col: message" lines (joined by '\n') to err, and
 * leaves *out NULL. `source` names the input in messages (may be NULL). */
int scaler_config_load_string(const char *text, size_t len, const char *source, struct scaler_config **out,
                              char *err, size_t errcap);
int scaler_config_load_file(const char *path, struct scaler_config **out, char *err, size_t errcap);
void scaler_config_free(struct scaler_config *cfg);

/* Lookups by namespace and name; NULL when absent. */
const struct scaler_object *scaler_config_find(const struct scaler_config *cfg, const char *ns,
                                               const char *name);
const struct scaler_trigger_auth *scaler_config_find_auth(const struct scaler_config *cfg, const char *ns,
                                                          const char *name);

/* ---- Prometheus query result ------------------------------------------- */

#define SCALER_MAX_RESULT_BYTES (4u << 20)

/* Read the answer to GET /api/v1/query as KEDA's prometheus scaler does: non-2xx
 * is an error; "status" must be "success"; a vector must hold 0 or 1 element (0 is
 * the value 0 when ignore_null_values, else an error); a scalar is accepted; NaN
 * and +/-Inf become 0 when ignore_null_values, else an error. Returns 0 and sets
 * *out, or SS_EHTTP / SS_EPARSE / SS_EINVAL / SS_ELIMIT with a message in err. */
int scaler_promresult_parse(int http_status, const char *body, size_t len, bool ignore_null_values,
                            double *out, char *err, size_t errcap);

/* ---- decision ---------------------------------------------------------- */

/* Which rule settled the replica count. */
enum scaler_rule {
    SCALER_RULE_METRIC = 0,    /* the HPA's ceil(...) of the metric, unconstrained */
    SCALER_RULE_TOLERANCE,     /* usage ratio within [0.9, 1.1]: keep current */
    SCALER_RULE_STABILIZATION, /* a stabilization window held the recommendation */
    SCALER_RULE_POLICY_LIMIT,  /* scale-up limit or a scaling policy capped the change */
    SCALER_RULE_CLAMP_MIN,     /* raised to the minimum */
    SCALER_RULE_CLAMP_MAX,     /* lowered to maxReplicaCount */
    SCALER_RULE_ACTIVATION,    /* KEDA woke the target from 0 (or idle) */
    SCALER_RULE_DEACTIVATION,  /* KEDA scaled to idle/min after the cooldown */
    SCALER_RULE_COOLDOWN,      /* inactive, but the cooldown has not elapsed */
    SCALER_RULE_FALLBACK,      /* failing trigger replaced by fallback replicas */
    SCALER_RULE_PAUSED,        /* paused / paused-replicas annotation */
    SCALER_RULE_ERROR,         /* no usable metric: nothing changes */
    SCALER_RULE_INACTIVE,      /* at zero or idle and nothing is active */
    SCALER_RULE_HPA_WAIT,      /* a KEDA poll between two HPA syncs: nothing for KEDA to do */
};

const char *scaler_rule_name(enum scaler_rule rule);
/* Inverse of scaler_rule_name; SS_ENOTFOUND for unknown names. */
int scaler_rule_from_name(const char *name, enum scaler_rule *out);

/* The outcome of one trigger's query this poll. */
struct scaler_trigger_result {
    bool ok;
    double value;      /* when ok */
    const char *error; /* when !ok; optional, borrowed */
};

struct scaler_annotation {
    const char *key;
    const char *value;
};

struct scaler_input {
    int64_t now_ms;
    int32_t current_replicas;                    /* the target's spec.replicas */
    int32_t ready_replicas;                      /* for Value metrics; < 0 means "same as current" */
    const struct scaler_trigger_result *results; /* one per trigger, config order */
    size_t n_results;
    /* ScaledObject annotations as seen now (KEDA reads paused/paused-replicas from
     * the ScaledObject). Looked up before the manifest's own metadata.annotations. */
    const struct scaler_annotation *annotations;
    size_t n_annotations;
    /* The HPA sync period (--hpa-sync-period); the sync-period annotation
     * overrides it. 0 makes every call an HPA sync as well (tests, --once). */
    int64_t hpa_sync_period_ms;
    /* A wake-up for the HPA sync alone, between two KEDA polls: KEDA's
     * activation and cooldown are not evaluated. */
    bool hpa_only;
};

struct scaler_decision {
    int32_t replicas;       /* what the target's replicas should be after this poll */
    bool changed;           /* replicas != current */
    bool active;            /* some trigger is active (value > activationThreshold) */
    bool error;             /* some trigger failed this poll: `active` is then only known true
                               when another trigger is active, and logs say "unknown" */
    bool hpa_synced;        /* the HPA step ran in this call */
    bool fallback_counting; /* fallback is configured: failure counts are meaningful */
    enum scaler_rule rule;
    int32_t metric_replicas; /* the HPA's raw proposal, -1 when the HPA did not run */
    char explanation[384];   /* one line, for logs and `explain` output */
};

/* Per-ScaledObject memory: last active time, HPA recommendation history,
 * scale events, consecutive failure counts. created_ms is when the ScaledObject
 * appeared (initialCooldownPeriod counts from it). */
struct scaler_state;
int scaler_state_new(const struct scaler_object *so, int64_t created_ms, struct scaler_state **out);
void scaler_state_free(struct scaler_state *st);
/* Count the object as last active at ms (KEDA's status.lastActiveTime). A scaler
 * that starts cannot read the lastActiveTime KEDA would have kept in the cluster; it
 * passes its start, so a restart waits out cooldownPeriod before scaling a quiet
 * workload to zero or idle instead of doing it on its first poll. */
void scaler_state_set_last_active(struct scaler_state *st, int64_t ms);
/* When the next HPA sync is due (monotonic ms), or INT64_MIN before the first. */
int64_t scaler_state_next_sync_ms(const struct scaler_state *st);

/* Decide one poll. Returns 0 with *out filled, or SS_EINVAL for bad arguments
 * (wrong number of results, negative replicas). Never fails on odd metric values. */
int scaler_decide(const struct scaler_object *so, struct scaler_state *st, const struct scaler_input *in,
                  struct scaler_decision *out);

/* ======================================================================== */
/* Query client (scaler/query.c)                                            */
/* ======================================================================== */

#include "httpclient.h"

struct aws_signer; /* aws/awssign.h */

struct scaler_query_req {
    const char *server;         /* serverAddress: base URL, /api/v1/query is appended */
    const char *query;          /* PromQL */
    int64_t time_ms;            /* evaluation time; 0 = now */
    bool post;                  /* form POST instead of GET */
    const struct ss_kv *params; /* queryParameters */
    size_t nparams;
    /* customHeaders (http.headers), bearer (authorization) or basic auth, the CA,
     * unsafeSsl (tls_insecure_skip_verify); files are read for this query */
    struct httpc_config http;
    int64_t timeout_ms;        /* 0 = 30 s */
    struct aws_signer *signer; /* SigV4 (aws/awssign.h), or NULL */
};

/* Run one instant query. On a response (any status) returns 0 with *status and the
 * body; network failures return SS_EIO with a message in err. */
int scaler_query(const struct scaler_query_req *q, long *status, struct ss_buf *body, char *err,
                 size_t errlen);

/* The Kubernetes client (config, the scale subresource, the workload's annotations)
 * is the kube/ floor's. */
#include "kube.h"

/* ======================================================================== */
/* The poll loop (scaler/runner.c)                                          */
/* ======================================================================== */

/* Credentials for one trigger's queries. Strings are copied; the signer is
 * borrowed and must outlive the runner. Files are re-read for every query. */
struct scaler_runner_auth {
    struct aws_signer *signer;     /* SigV4 (awsRegion / podIdentity aws), or NULL */
    const char *bearer_token_file; /* authModes bearer */
    const char *basic_user;        /* authModes basic */
    const char *basic_password_file;
    const char *custom_auth_header; /* authModes custom: header name */
    const char *custom_auth_value_file;
    const char *ca_file; /* authModes tls: CA bundle for the server */
};

struct scaler_runner_options {
    bool dry_run; /* decide and log, never PATCH */
    /* HPA sync period in ms (--hpa-sync-period); 0 = SCALER_DEFAULT_SYNC_PERIOD_MS */
    int64_t hpa_sync_period_ms;
    /* Namespace for ScaledObjects whose manifest has no metadata.namespace (the
     * loader reads them as "default"), as kubectl apply would place them; NULL
     * keeps "default". */
    const char *default_ns;
};

/* Whether a trigger queries with SigV4 the KEDA way: awsRegion in its metadata,
 * or an authenticationRef to a TriggerAuthentication with podIdentity.provider aws.
 * When it does, *region is awsRegion or NULL (then the AMP URL or AWS_REGION
 * decides) and *role_arn the TriggerAuthentication's roleArn or NULL. */
bool scaler_runner_trigger_sigv4(const struct scaler_config *cfg, const struct scaler_object *so,
                                 const struct scaler_trigger *t, const char **region, const char **role_arn);

struct scaler_runner;
/* cfg and kube are borrowed and must outlive the runner. */
int scaler_runner_new(const struct scaler_config *cfg, struct kube_client *kube,
                      const struct scaler_runner_options *o, struct scaler_runner **out);
int scaler_runner_set_auth(struct scaler_runner *r, size_t object, size_t trigger,
                           const struct scaler_runner_auth *a);
/* Poll one object now: query, read the target, decide, patch, log one line.
 * Returns 0 when every query and API call worked; otherwise the poll still did
 * what it could, and the return says what failed: the Kubernetes call's error,
 * SS_EHTTP for a failed PATCH, SS_EIO for a failed trigger query. */
int scaler_runner_poll(struct scaler_runner *r, size_t object);
/* Poll every object at its pollingInterval until scaler_runner_stop. */
int scaler_runner_run(struct scaler_runner *r);
/* From any thread: make scaler_runner_run return after the poll in progress. */
void scaler_runner_stop(struct scaler_runner *r);
/* ss_metrics renderer; ud is the runner. */
int scaler_runner_render_metrics(void *ud, struct ss_buf *out);
void scaler_runner_free(struct scaler_runner *r);

#endif
