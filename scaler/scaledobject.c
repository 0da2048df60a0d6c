/* scaledobject.c: reads KEDA manifests (keda.sh/v1alpha1 ScaledObject and
 * TriggerAuthentication) from a YAML stream into struct scaler_config.
 *
 * Parsing happens in two steps. The YAML tree (yaml/yamltree.h) keeps every node's
 * line and column, with a nesting limit, a node limit, and anchors that are only
 * registered once their node is complete, so an alias can never form a cycle. A
 * schema walk then reads the fields KEDA defines, applies
 * KEDA's and Kubernetes' defaults and validation, and records fields it does not
 * know as warnings rather than errors: users paste manifests written for newer
 * KEDA versions, and an ignored field should not stop the collector.
 *
 * Trigger metadata follows KEDA's typed-config rules (pkg/scalers/scalersconfig):
 * every value is a string, surrounding space is trimmed, an empty value counts as
 * absent, numbers and booleans are parsed as JSON literals, maps are "k1=v1,k2=v2".
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"
#include "scaler_int.h"
#include "sstext.h"
#include "yamltree.h"

#define MAX_DEPTH      64      /* YAML nesting; KEDA manifests need about 8 */
#define MAX_NODES      200000  /* nodes per stream */
#define MAX_EVENTS     1000000 /* parser events per stream */
#define MAX_MAP_KEYS   512     /* keys per mapping */
#define MAX_DOCS       1024    /* documents per stream */
#define MAX_ERRORS     32      /* error lines kept for the caller */
#define MAX_WARNINGS   256     /* warning lines kept for the caller */
#define MAX_ERROR_TEXT 8192    /* bytes of joined error lines */

/* ---- loader state ------------------------------------------------------ */

/* The config the caller gets: the public struct first, then what owns it. */
struct config_impl {
    struct scaler_config pub;
    struct ss_arena arena; /* every string and array of the config */
    struct scaler_object *objects;
    struct scaler_trigger_auth *auths;
    char **warnings;
};

struct loader {
    const char *source;
    struct ss_ytree *tree; /* freed after the walk */
    struct config_impl *cfg;
    struct ss_buf errors;
    size_t n_errors;
    size_t n_objects, cap_objects;
    size_t n_auths, cap_auths;
    size_t n_warnings, cap_warnings;
    bool oom;
};

static void vdiag(struct loader *L, bool is_error, int line, int col, const char *fmt, va_list ap)
{
    char msg[512], full[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ss_yaml_format_pos(full, sizeof full, L->source, line, col, "%s", msg);
    if (is_error) {
        L->n_errors++;
        if (L->n_errors > MAX_ERRORS)
            return;
        if (L->errors.len && ss_buf_append(&L->errors, "\n", 1) != 0)
            return;
        (void)ss_buf_append_str(&L->errors, full); /* over the maximum: keep what fits */
        return;
    }
    if (L->n_warnings >= MAX_WARNINGS) {
        L->n_warnings++;
        return;
    }
    if (L->n_warnings == L->cap_warnings) {
        size_t ncap = L->cap_warnings ? 2 * L->cap_warnings : 16;
        char **nw = realloc(L->cfg->warnings, ncap * sizeof *nw);
        if (!nw) {
            L->oom = true;
            return;
        }
        L->cfg->warnings = nw;
        L->cap_warnings = ncap;
    }
    char *copy = ss_arena_strndup(&L->cfg->arena, full, strlen(full));
    if (!copy) {
        L->oom = true;
        return;
    }
    L->cfg->warnings[L->n_warnings++] = copy;
}

static void __attribute__((format(printf, 3, 4)))
err_at(struct loader *L, const struct ss_ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(L, true, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
warn_at(struct loader *L, const struct ss_ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(L, false, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
}

/* ---- the YAML tree ----------------------------------------------------- */

static const struct ss_yaml_opts tree_opts = {
    .max_depth = MAX_DEPTH,
    .max_nodes = MAX_NODES,
    .max_events = MAX_EVENTS,
    .max_docs = MAX_DOCS,
    .anchor_on_close = true, /* an alias inside its own anchor's node is "unknown" */
};

/* Word a failed parse as this reader always has. */
static int tree_fail(struct loader *L, const struct ss_yaml_error *e)
{
    struct ss_ynode at = {.line = e->line, .col = e->col};
    const char *problem = e->problem ? e->problem : "invalid YAML";
    switch (e->fault) {
    case SS_YAML_NOMEM: return SS_ENOMEM;
    case SS_YAML_EVENTS:
        err_at(L, NULL, "YAML stream too large (more than %d events)", MAX_EVENTS);
        return SS_ELIMIT;
    case SS_YAML_DOCS: err_at(L, NULL, "too many YAML documents (limit %d)", MAX_DOCS); return SS_ELIMIT;
    case SS_YAML_NODES:
        err_at(L, NULL, "YAML stream too large (more than %d nodes)", MAX_NODES);
        return SS_ELIMIT;
    case SS_YAML_DEPTH: err_at(L, &at, "YAML nested deeper than %d levels", MAX_DEPTH); return SS_ELIMIT;
    case SS_YAML_ALIAS_UNKNOWN:
    case SS_YAML_ALIAS_OPEN:
        err_at(L, &at, "YAML: unknown or recursive alias *%s", e->name);
        return SS_EPARSE;
    case SS_YAML_READER:
        /* libyaml marks no position for undecodable bytes; this reader has always
         * said 1:1 there (unlike the config loader, which works it out). */
        at.line = at.col = 1;
        err_at(L, &at, "YAML: %s", problem);
        return SS_EPARSE;
    case SS_YAML_SYNTAX:
        if (e->context)
            err_at(L, &at, "YAML: %s %s", e->context, problem);
        else
            err_at(L, &at, "YAML: %s", problem);
        return SS_EPARSE;
    default: break; /* limits tree_opts does not set */
    }
    err_at(L, &at, "YAML: input over a limit");
    return SS_ELIMIT;
}

/* ---- tree access helpers ----------------------------------------------- */

/* Unquoted and without an explicit !!str: a YAML 1.1 reader resolves its type. */
static bool y_plain(const struct ss_ynode *n)
{
    return n->plain && n->tag != SS_YTAG_STR;
}

/* Absent, or a plain null spelling. Unlike the config loader, an explicit !!null
 * tag alone does not make a value null here. */
static bool y_is_null(const struct ss_ynode *n)
{
    return !n || (ss_yaml_plain_null(n) && y_plain(n));
}

/* The value under `key`, or NULL when absent or null. */
static const struct ss_ynode *map_get(const struct ss_ynode *map, const char *key)
{
    const struct ss_ynode *v = ss_yaml_map_get(map, key);
    return y_is_null(v) ? NULL : v;
}

static bool in_list(const struct ss_ynode *key, const char *const *list)
{
    for (; list && *list; list++)
        if (ss_yaml_scalar_is(key, *list))
            return true;
    return false;
}

/* Reject non-string and duplicate keys; warn about keys outside `known`. Keys in
 * `quiet` are known but deliberately unused (status, labels, ...). With both lists
 * NULL every key is acceptable (annotations, trigger metadata). */
static void check_map(struct loader *L, const struct ss_ynode *map, const char *path,
                      const char *const *known, const char *const *quiet)
{
    if (map->nkids / 2 > MAX_MAP_KEYS) {
        err_at(L, map, "%s: too many keys (limit %d)", path, MAX_MAP_KEYS);
        return;
    }
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct ss_ynode *k = map->kids[i];
        if (k->kind != SS_YSCALAR) {
            err_at(L, k, "%s: mapping keys must be strings", path);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i; j += 2) {
            const struct ss_ynode *e = map->kids[j];
            if (e->kind == SS_YSCALAR && e->len == k->len && memcmp(e->text, k->text, k->len) == 0)
                dup = true;
        }
        if (dup) {
            err_at(L, k, "%s: duplicate key \"%s\"", path, k->text);
            continue;
        }
        if (ss_yaml_scalar_is(k, "<<"))
            warn_at(L, k, "%s: YAML merge keys (<<) are not supported; ignored", path);
        else if ((known || quiet) && !in_list(k, known) && !in_list(k, quiet))
            warn_at(L, k, "%s.%s: unknown field, ignored", path, k->text);
    }
}

static const char *dup_str(struct loader *L, const char *p, size_t n)
{
    char *s = ss_arena_strndup(&L->cfg->arena, p, n);
    if (!s)
        L->oom = true;
    return s;
}

/* A string field: NULL when absent; an error when not a scalar or when required. */
static const char *str_field(struct loader *L, const struct ss_ynode *map, const char *key, const char *path,
                             bool required)
{
    const struct ss_ynode *v = map_get(map, key);
    if (!v) {
        if (required)
            err_at(L, map, "%s.%s is required", path, key);
        return NULL;
    }
    if (v->kind != SS_YSCALAR) {
        err_at(L, v, "%s.%s must be a string, not %s", path, key, ss_yaml_kind_name(v->kind));
        return NULL;
    }
    if (required && v->len == 0) {
        err_at(L, v, "%s.%s must not be empty", path, key);
        return NULL;
    }
    return dup_str(L, v->text, v->len);
}

/* Strict decimal int32, as a Kubernetes integer field: "5" yes, "'5'" or "5.0" no. */
static bool parse_int32(const char *s, int32_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 2147483648LL)
            return false;
    }
    if (*p)
        return false;
    if (neg)
        v = -v;
    if (v > INT32_MAX || v < INT32_MIN)
        return false;
    *out = (int32_t)v;
    return true;
}

/* An integer field; returns true when present and valid. */
static bool int_field(struct loader *L, const struct ss_ynode *map, const char *key, const char *path,
                      int32_t min, int32_t max, int32_t *out)
{
    const struct ss_ynode *v = map_get(map, key);
    if (!v)
        return false;
    int32_t x;
    if (v->kind != SS_YSCALAR || !y_plain(v) || !parse_int32(v->text, &x)) {
        err_at(L, v, "%s.%s must be an integer, got %s%s%s", path, key, v->kind == SS_YSCALAR ? "\"" : "",
               v->kind == SS_YSCALAR ? v->text : ss_yaml_kind_name(v->kind),
               v->kind == SS_YSCALAR ? "\"" : "");
        return false;
    }
    if (x < min) {
        err_at(L, v, "%s.%s must be greater than or equal to %d, got %d", path, key, (int)min, (int)x);
        return false;
    }
    if (x > max) {
        err_at(L, v, "%s.%s must be less than or equal to %d, got %d", path, key, (int)max, (int)x);
        return false;
    }
    *out = x;
    return true;
}

/* ---- KEDA typed-config value parsing ------------------------------------ */

static bool is_go_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* strings.TrimSpace (ASCII part): returns a slice of s. */
static struct ss_str trim(const char *s, size_t n)
{
    while (n && is_go_space(*s))
        s++, n--;
    while (n && is_go_space(s[n - 1]))
        n--;
    return (struct ss_str){s, n};
}

/* KEDA parses float64 parameters with encoding/json, so the accepted syntax is a
 * JSON number: no leading '+', no leading zeros, no bare '.', no "NaN"/"Inf". */
static bool parse_json_number(struct ss_str s, double *out)
{
    size_t i = 0;
    if (i < s.len && s.p[i] == '-')
        i++;
    if (i >= s.len)
        return false;
    if (s.p[i] == '0') {
        i++;
    } else if (s.p[i] >= '1' && s.p[i] <= '9') {
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < s.len && s.p[i] == '.') {
        i++;
        size_t d = i;
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < s.len && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.len && (s.p[i] == '+' || s.p[i] == '-'))
            i++;
        size_t d = i;
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i != s.len || s.len > 400)
        return false;
    char tmp[402];
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = '\0';
    /* strtod honours LC_NUMERIC; scrapeship never calls setlocale, so it is "C". */
    errno = 0;
    double v = strtod(tmp, NULL);
    if (!isfinite(v))
        return false; /* json: "cannot unmarshal number ... into float64" */
    *out = v;
    return true;
}

struct kv_list {
    struct scaler_kv *v;
    size_t n;
};

/* KEDA's map syntax: "k1=v1,k2=v2"; every element trimmed, exactly one '='
 * (setConfigValueMap: "expected format key=value"); a repeated key keeps the last
 * value, as a Go map does. */
static int parse_kv_map(struct loader *L, const struct ss_ynode *at, const char *path, const char *param,
                        struct ss_str s, bool headers, struct kv_list *out)
{
    struct scaler_kv *v = ss_arena_alloc(&L->cfg->arena, SCALER_MAX_KV * sizeof *v);
    if (!v) {
        L->oom = true;
        return SS_ENOMEM;
    }
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && s.p[i] != ',')
            continue;
        struct ss_str el = trim(s.p + start, i - start);
        start = i + 1;
        const char *eq = memchr(el.p, '=', el.len);
        if (!eq || memchr(eq + 1, '=', el.len - (size_t)(eq + 1 - el.p))) {
            if (headers) /* header values are often tokens: never echo them */
                err_at(L, at, "%s: unable to set param \"%s\": element %zu is not in the format key=value",
                       path, param, n + 1);
            else
                err_at(
                    L, at,
                    "%s: unable to set param \"%s\" value \"%.*s\": expected format key=value, got \"%.*s\"",
                    path, param, (int)(s.len > 200 ? 200 : s.len), s.p, (int)(el.len > 100 ? 100 : el.len),
                    el.p);
            return SS_ECONFIG;
        }
        struct ss_str key = trim(el.p, (size_t)(eq - el.p));
        struct ss_str val = trim(eq + 1, el.len - (size_t)(eq + 1 - el.p));
        if (headers) {
            /* Not a KEDA check: these become HTTP header lines, so refuse names that
             * are not tokens and values that could split the request. */
            bool ok = key.len > 0;
            for (size_t j = 0; ok && j < key.len; j++)
                ok = ss_http_tchar((unsigned char)key.p[j]);
            for (size_t j = 0; ok && j < val.len; j++)
                ok = val.p[j] != '\r' && val.p[j] != '\n' && val.p[j] != '\0';
            if (!ok) {
                err_at(L, at, "%s: customHeaders element \"%.*s\" is not a valid HTTP header", path,
                       (int)(key.len > 100 ? 100 : key.len), key.p);
                return SS_ECONFIG;
            }
        }
        size_t slot = n;
        for (size_t j = 0; j < n; j++)
            if (strlen(v[j].key) == key.len && memcmp(v[j].key, key.p, key.len) == 0)
                slot = j;
        if (slot == n) {
            if (n == SCALER_MAX_KV) {
                err_at(L, at, "%s: %s has more than %d entries", path, param, SCALER_MAX_KV);
                return SS_ELIMIT;
            }
            v[slot].key = dup_str(L, key.p, key.len);
            n++;
        }
        v[slot].value = dup_str(L, val.p, val.len);
        if (L->oom)
            return SS_ENOMEM;
    }
    out->v = v;
    out->n = n;
    return 0;
}

/* KEDA parses bools with encoding/json: exactly "true" or "false". */
static bool parse_json_bool(struct ss_str s, bool *out)
{
    if (s.len == 4 && memcmp(s.p, "true", 4) == 0)
        return (*out = true), true;
    if (s.len == 5 && memcmp(s.p, "false", 5) == 0)
        return (*out = false), true;
    return false;
}

/* YAML 1.1 (what Kubernetes' YAML decoder speaks) would read this plain scalar as
 * a bool, number or null rather than a string. */
static bool yaml_non_string(const struct ss_ynode *n)
{
    static const char *const words[] = {"true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes",
                                        "YES",  "no",   "No",   "NO",    "on",    "On",    "ON",  "off",
                                        "Off",  "OFF",  "y",    "Y",     "n",     "N",     NULL};
    if (!y_plain(n))
        return false;
    for (size_t i = 0; words[i]; i++)
        if (strcmp(n->text, words[i]) == 0)
            return true;
    double d;
    if (parse_json_number(trim(n->text, n->len), &d))
        return true;
    const char *p = n->text;
    if (*p == '+' || *p == '-')
        p++;
    return *p == '.' && (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".nan") == 0 ||
                         strcmp(p, ".NaN") == 0);
}

/* ---- ScaledObject ------------------------------------------------------ */

static const char *const k_top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
static const char *const k_top_quiet[] = {"status", NULL};
static const char *const k_meta[] = {"name", "namespace", "annotations", NULL};
static const char *const k_meta_quiet[] = {
    "labels",        "uid",        "resourceVersion", "generation",   "creationTimestamp",
    "managedFields", "finalizers", "ownerReferences", "generateName", "deletionTimestamp",
    "selfLink",      NULL};
static const char *const k_spec[] = {"scaleTargetRef",
                                     "pollingInterval",
                                     "cooldownPeriod",
                                     "initialCooldownPeriod",
                                     "idleReplicaCount",
                                     "minReplicaCount",
                                     "maxReplicaCount",
                                     "advanced",
                                     "triggers",
                                     "fallback",
                                     NULL};
static const char *const k_target[] = {"name", "apiVersion", "kind", NULL};
static const char *const k_target_quiet[] = {"envSourceContainerName", NULL};
static const char *const k_fallback[] = {"failureThreshold", "replicas", "behavior", NULL};
static const char *const k_advanced[] = {"horizontalPodAutoscalerConfig", "scalingModifiers", NULL};
static const char *const k_modifiers[] = {"formula", "target", "activationTarget", "metricType", NULL};
static const char *const k_hpacfg[] = {"behavior", NULL};
static const char *const k_hpacfg_quiet[] = {"name", NULL};
static const char *const k_behavior[] = {"scaleUp", "scaleDown", NULL};
static const char *const k_rules[] = {"stabilizationWindowSeconds", "selectPolicy", "policies", NULL};
static const char *const k_policy[] = {"type", "value", "periodSeconds", NULL};
static const char *const k_trigger[] = {"type", "metadata", "name", "metricType", "authenticationRef", NULL};
static const char *const k_trigger_quiet[] = {"useCachedMetrics", NULL};
static const char *const k_authref[] = {"name", "kind", NULL};

/* Kubernetes' defaults (SetDefaults_HorizontalPodAutoscalerBehavior): scale up
 * with no window, the larger of 100 %/15 s and 4 pods/15 s; scale down over the
 * controller's 300 s window, 100 %/15 s. */
static void rules_default(struct scaler_rules *r, bool up)
{
    memset(r, 0, sizeof *r);
    r->select_policy = SCALER_SELECT_MAX;
    if (up) {
        r->stabilization_window_seconds = 0;
        r->policies[0] = (struct scaler_policy){SCALER_POLICY_PODS, 4, 15};
        r->policies[1] = (struct scaler_policy){SCALER_POLICY_PERCENT, 100, 15};
        r->n_policies = 2;
    } else {
        r->stabilization_window_seconds = 300;
        r->policies[0] = (struct scaler_policy){SCALER_POLICY_PERCENT, 100, 15};
        r->n_policies = 1;
    }
}

/* One HPAScalingRules; fields given replace the defaults (copyHPAScalingRules),
 * then Kubernetes' validation applies (validateScalingRules). */
static void parse_rules(struct loader *L, const struct ss_ynode *n, const char *path, struct scaler_rules *r)
{
    if (n->kind != SS_YMAP) {
        err_at(L, n, "%s must be a mapping", path);
        return;
    }
    check_map(L, n, path, k_rules, (const char *const[]){"tolerance", NULL});
    if (map_get(n, "tolerance"))
        warn_at(L, map_get(n, "tolerance"), "%s.tolerance is not supported; the fixed 0.1 tolerance applies",
                path);
    int32_t w;
    if (int_field(L, n, "stabilizationWindowSeconds", path, 0, 3600, &w))
        r->stabilization_window_seconds = w;
    const struct ss_ynode *sp = map_get(n, "selectPolicy");
    if (sp) {
        if (ss_yaml_scalar_is(sp, "Max"))
            r->select_policy = SCALER_SELECT_MAX;
        else if (ss_yaml_scalar_is(sp, "Min"))
            r->select_policy = SCALER_SELECT_MIN;
        else if (ss_yaml_scalar_is(sp, "Disabled"))
            r->select_policy = SCALER_SELECT_DISABLED;
        else
            err_at(L, sp,
                   "%s.selectPolicy: Unsupported value: \"%s\": supported values: \"Disabled\", \"Max\", "
                   "\"Min\"",
                   path, sp->kind == SS_YSCALAR ? sp->text : "");
    }
    const struct ss_ynode *pl = map_get(n, "policies");
    if (!pl)
        return;
    if (pl->kind != SS_YSEQ) {
        err_at(L, pl, "%s.policies must be a list", path);
        return;
    }
    if (pl->nkids == 0) {
        err_at(L, pl, "%s.policies: Required value: must specify at least one Policy", path);
        return;
    }
    if (pl->nkids > SCALER_MAX_POLICIES) {
        err_at(L, pl, "%s.policies: more than %d policies", path, SCALER_MAX_POLICIES);
        return;
    }
    r->n_policies = 0;
    size_t i = 0;
    for (; i < pl->nkids; i++) {
        char ppath[160];
        snprintf(ppath, sizeof ppath, "%s.policies[%zu]", path, i);
        const struct ss_ynode *p = pl->kids[i];
        if (p->kind != SS_YMAP) {
            err_at(L, p, "%s must be a mapping", ppath);
            continue;
        }
        check_map(L, p, ppath, k_policy, NULL);
        struct scaler_policy pol = {SCALER_POLICY_PODS, 0, 0};
        const struct ss_ynode *t = map_get(p, "type");
        if (ss_yaml_scalar_is(t, "Pods"))
            pol.type = SCALER_POLICY_PODS;
        else if (ss_yaml_scalar_is(t, "Percent"))
            pol.type = SCALER_POLICY_PERCENT;
        else
            err_at(L, t ? t : p,
                   "%s.type: Unsupported value: \"%s\": supported values: \"Percent\", \"Pods\"", ppath,
                   t && t->kind == SS_YSCALAR ? t->text : "");
        if (!map_get(p, "value"))
            err_at(L, p, "%s.value: Invalid value: 0: must be greater than zero", ppath);
        else
            int_field(L, p, "value", ppath, 1, INT32_MAX, &pol.value);
        if (!map_get(p, "periodSeconds"))
            err_at(L, p, "%s.periodSeconds: Invalid value: 0: must be greater than zero", ppath);
        else
            int_field(L, p, "periodSeconds", ppath, 1, 1800, &pol.period_seconds);
        r->policies[r->n_policies++] = pol;
    }
}

static void parse_advanced(struct loader *L, const struct ss_ynode *adv, struct scaler_object *so)
{
    if (adv->kind != SS_YMAP) {
        err_at(L, adv, "spec.advanced must be a mapping");
        return;
    }
    check_map(L, adv, "spec.advanced", k_advanced,
              (const char *const[]){"restoreToOriginalReplicaCount", NULL});
    const struct ss_ynode *hc = map_get(adv, "horizontalPodAutoscalerConfig");
    if (!hc)
        return;
    if (hc->kind != SS_YMAP) {
        err_at(L, hc, "spec.advanced.horizontalPodAutoscalerConfig must be a mapping");
        return;
    }
    check_map(L, hc, "spec.advanced.horizontalPodAutoscalerConfig", k_hpacfg, k_hpacfg_quiet);
    const struct ss_ynode *b = map_get(hc, "behavior");
    if (!b)
        return;
    const char *bpath = "spec.advanced.horizontalPodAutoscalerConfig.behavior";
    if (b->kind != SS_YMAP) {
        err_at(L, b, "%s must be a mapping", bpath);
        return;
    }
    check_map(L, b, bpath, k_behavior, NULL);
    /* Any behavior, even {}, switches the HPA to the behavior algorithm. */
    so->has_behavior = true;
    const struct ss_ynode *up = map_get(b, "scaleUp");
    const struct ss_ynode *down = map_get(b, "scaleDown");
    if (up)
        parse_rules(L, up, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp", &so->scale_up);
    if (down)
        parse_rules(L, down, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown",
                    &so->scale_down);
}

/* strconv.ParseFloat of a whole string, finite values only. */
static bool parse_go_float(const char *s, double *out)
{
    if (!s || !*s || strlen(s) > 400)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* spec.advanced.scalingModifiers, after the triggers are known (the formula names
 * them). KEDA's ValidateAndCompileScalingModifiers: a non-empty struct needs a
 * formula and a target > 0; the formula compiles over the named triggers; the
 * metric type is AverageValue (default) or Value. */
static void parse_modifiers(struct loader *L, const struct ss_ynode *sm, struct scaler_object *so)
{
    const char *path = "spec.advanced.scalingModifiers";
    if (sm->kind != SS_YMAP) {
        err_at(L, sm, "%s must be a mapping", path);
        return;
    }
    check_map(L, sm, path, k_modifiers, NULL);
    if (sm->nkids == 0)
        return; /* ScalingModifiers{}: IsUsingModifiers is false */
    struct scaler_modifiers *m = &so->modifiers;
    m->formula = str_field(L, sm, "formula", path, false);
    const char *target = str_field(L, sm, "target", path, false);
    const char *act = str_field(L, sm, "activationTarget", path, false);
    const struct ss_ynode *mt = map_get(sm, "metricType");
    m->metric_type = SCALER_METRIC_AVERAGE_VALUE;
    if (!mt || ss_yaml_scalar_is(mt, "") || ss_yaml_scalar_is(mt, "AverageValue"))
        m->metric_type = SCALER_METRIC_AVERAGE_VALUE;
    else if (ss_yaml_scalar_is(mt, "Value"))
        m->metric_type = SCALER_METRIC_VALUE;
    else
        err_at(L, mt,
               "%s.metricType: \"%s\": the composite metric needs AverageValue or Value (Utilization is "
               "not valid for external metrics)",
               path, mt->kind == SS_YSCALAR ? mt->text : "");
    if (!m->formula || !*m->formula) {
        err_at(L, sm, "error ScalingModifiers.Formula is mandatory");
        return;
    }
    if (!target || !*target) {
        err_at(L, sm, "%s: formula is given but target is empty", path);
        return;
    }
    if (!parse_go_float(target, &m->target) || m->target <= 0) {
        err_at(L, map_get(sm, "target"), "%s.target \"%s\" must be a number greater than 0", path, target);
        return;
    }
    m->activation_target = 0;
    if (act && *act && !parse_go_float(act, &m->activation_target)) {
        err_at(L, map_get(sm, "activationTarget"), "%s.activationTarget \"%s\" is not a number", path, act);
        return;
    }
    const char *names[SCALER_MAX_TRIGGERS];
    for (size_t i = 0; i < so->n_triggers && i < SCALER_MAX_TRIGGERS; i++)
        names[i] = so->triggers[i].name;
    char ferr[384];
    int rc = scaler__formula_compile(m->formula, names, so->n_triggers, &L->cfg->arena, &m->program, ferr,
                                     sizeof ferr);
    if (rc == SS_ENOMEM) {
        L->oom = true;
        return;
    }
    if (rc) {
        err_at(L, map_get(sm, "formula"), "%s.formula: %s", path, ferr);
        return;
    }
    so->has_modifiers = true;
    /* fallback.HasValidFallback: with modifiers the target must parse as an integer */
    if (so->has_fallback &&
        (m->target != floor(m->target) || strchr(target, '.') || strchr(target, 'e') || strchr(target, 'E')))
        warn_at(L, map_get(sm, "target"),
                "spec.fallback is ignored: KEDA uses fallback with scalingModifiers only when target is a "
                "whole number, got \"%s\"",
                target);
}

static void parse_fallback(struct loader *L, const struct ss_ynode *fb, struct scaler_object *so)
{
    if (fb->kind != SS_YMAP) {
        err_at(L, fb, "spec.fallback must be a mapping");
        return;
    }
    check_map(L, fb, "spec.fallback", k_fallback, NULL);
    so->has_fallback = true;
    if (!map_get(fb, "failureThreshold"))
        err_at(L, fb, "spec.fallback.failureThreshold is required");
    if (!map_get(fb, "replicas"))
        err_at(L, fb, "spec.fallback.replicas is required");
    int32_t ft = 0, rep = 0;
    bool have_ft = int_field(L, fb, "failureThreshold", "spec.fallback", INT32_MIN, INT32_MAX, &ft);
    bool have_rep = int_field(L, fb, "replicas", "spec.fallback", INT32_MIN, INT32_MAX, &rep);
    if ((have_ft && ft < 0) || (have_rep && rep < 0))
        err_at(L, fb, "FailureThreshold=%d & Replicas=%d must both be greater than or equal to 0", (int)ft,
               (int)rep);
    so->fallback_failure_threshold = ft;
    so->fallback_replicas = rep;
    so->fallback_behavior = SCALER_FALLBACK_STATIC;
    const struct ss_ynode *b = map_get(fb, "behavior");
    if (b) {
        if (ss_yaml_scalar_is(b, "static"))
            so->fallback_behavior = SCALER_FALLBACK_STATIC;
        else if (ss_yaml_scalar_is(b, "currentReplicas"))
            so->fallback_behavior = SCALER_FALLBACK_CURRENT_REPLICAS;
        else if (ss_yaml_scalar_is(b, "currentReplicasIfHigher"))
            so->fallback_behavior = SCALER_FALLBACK_CURRENT_REPLICAS_IF_HIGHER;
        else if (ss_yaml_scalar_is(b, "currentReplicasIfLower"))
            so->fallback_behavior = SCALER_FALLBACK_CURRENT_REPLICAS_IF_LOWER;
        else
            err_at(L, b,
                   "spec.fallback.behavior: Unsupported value: \"%s\": supported values: \"static\", "
                   "\"currentReplicas\", \"currentReplicasIfHigher\", \"currentReplicasIfLower\"",
                   b->kind == SS_YSCALAR ? b->text : "");
    }
}

/* The metadata value for `key` after TrimSpace; {NULL,0} when absent or empty,
 * which KEDA treats the same. */
static struct ss_str meta_value(const struct ss_ynode *md, const char *key, const struct ss_ynode **at)
{
    const struct ss_ynode *v = map_get(md, key);
    *at = v;
    if (!v || v->kind != SS_YSCALAR)
        return (struct ss_str){NULL, 0};
    struct ss_str s = trim(v->text, v->len);
    return s.len ? s : (struct ss_str){NULL, 0};
}

static const char *const k_prom_meta[] = {
    "serverAddress", "query",         "queryParameters",  "threshold", "activationThreshold",
    "namespace",     "customHeaders", "ignoreNullValues", "unsafeSsl", "awsRegion",
    "timeout",       "authModes",     "identityOwner",    NULL};

static void parse_prometheus_metadata(struct loader *L, const struct ss_ynode *md, const char *path,
                                      struct scaler_trigger *t)
{
    /* Unknown keys and non-string values first: they only warn. */
    for (size_t i = 0; i + 1 < md->nkids; i += 2) {
        const struct ss_ynode *key = md->kids[i], *val = md->kids[i + 1];
        if (key->kind != SS_YSCALAR)
            continue; /* reported by check_map */
        if (val->kind != SS_YSCALAR) {
            err_at(L, val, "%s.%s must be a string, not %s", path, key->text, ss_yaml_kind_name(val->kind));
            continue;
        }
        if (yaml_non_string(val))
            warn_at(L, val, "%s.%s: unquoted %s is not a string; Kubernetes rejects it (quote it)", path,
                    key->text, val->text);
        if (in_list(key, k_prom_meta))
            continue;
        if (ss_yaml_scalar_is(key, "metricName") || ss_yaml_scalar_is(key, "cortexOrgID"))
            warn_at(L, key, "%s.%s was removed in KEDA 2.12; ignored%s", path, key->text,
                    ss_yaml_scalar_is(key, "cortexOrgID") ? " (use customHeaders: X-Scope-OrgID=...)" : "");
        else if (key->len > 7 && strcmp(key->text + key->len - 7, "FromEnv") == 0)
            warn_at(L, key, "%s.%s: values from container environment are not supported; ignored", path,
                    key->text);
        else
            warn_at(L, key, "%s.%s: unknown prometheus metadata, ignored", path, key->text);
    }

    const struct ss_ynode *at;
    struct ss_str s;

    s = meta_value(md, "serverAddress", &at);
    if (!s.p)
        err_at(L, at ? at : md, "%s: missing required parameter \"serverAddress\" in [triggerMetadata]",
               path);
    else
        t->server_address = dup_str(L, s.p, s.len);

    s = meta_value(md, "query", &at);
    if (!s.p)
        err_at(L, at ? at : md, "%s: missing required parameter \"query\" in [triggerMetadata]", path);
    else
        t->query = dup_str(L, s.p, s.len);

    s = meta_value(md, "threshold", &at);
    if (!s.p) {
        err_at(L, at ? at : md, "%s: missing required parameter \"threshold\" in [triggerMetadata]", path);
    } else if (!parse_json_number(s, &t->threshold)) {
        err_at(L, at, "%s: unable to set param \"threshold\" value \"%.*s\": not a number", path,
               (int)(s.len > 100 ? 100 : s.len), s.p);
    } else if (scaler__milli(t->threshold) < 1) {
        /* The HPA target is a milli-quantity and must be positive, so Kubernetes
         * would refuse the HPA KEDA builds from this. */
        err_at(L, at,
               "%s: threshold %.*s must be at least 0.001 (the HPA target is a positive milli-quantity)",
               path, (int)(s.len > 100 ? 100 : s.len), s.p);
    }

    t->activation_threshold = 0;
    s = meta_value(md, "activationThreshold", &at);
    if (s.p && !parse_json_number(s, &t->activation_threshold))
        err_at(L, at, "%s: unable to set param \"activationThreshold\" value \"%.*s\": not a number", path,
               (int)(s.len > 100 ? 100 : s.len), s.p);

    t->ignore_null_values = true;
    s = meta_value(md, "ignoreNullValues", &at);
    if (s.p && !parse_json_bool(s, &t->ignore_null_values))
        err_at(L, at, "%s: unable to set param \"ignoreNullValues\" value \"%.*s\": must be true or false",
               path, (int)(s.len > 100 ? 100 : s.len), s.p);

    t->unsafe_ssl = false;
    s = meta_value(md, "unsafeSsl", &at);
    if (s.p && !parse_json_bool(s, &t->unsafe_ssl))
        err_at(L, at, "%s: unable to set param \"unsafeSsl\" value \"%.*s\": must be true or false", path,
               (int)(s.len > 100 ? 100 : s.len), s.p);

    t->timeout_ms = 0;
    s = meta_value(md, "timeout", &at);
    if (s.p) {
        double d;
        if (!parse_json_number(s, &d) || !ss_is_integral(d) || d > 86400000.0 || d < -86400000.0)
            err_at(L, at,
                   "%s: unable to set param \"timeout\" value \"%.*s\": must be an integer number of "
                   "milliseconds",
                   path, (int)(s.len > 100 ? 100 : s.len), s.p);
        else if (d < 0)
            err_at(L, at, "%s: timeout must be greater than or equal to 0, got %.*s", path,
                   (int)(s.len > 100 ? 100 : s.len), s.p);
        else
            t->timeout_ms = (int64_t)d;
    }

    s = meta_value(md, "customHeaders", &at);
    if (s.p) {
        struct kv_list kv = {0};
        if (parse_kv_map(L, at, path, "customHeaders", s, true, &kv) == 0) {
            t->custom_headers = kv.v;
            t->n_custom_headers = kv.n;
        }
    }
    s = meta_value(md, "queryParameters", &at);
    if (s.p) {
        struct kv_list kv = {0};
        if (parse_kv_map(L, at, path, "queryParameters", s, false, &kv) == 0) {
            t->query_parameters = kv.v;
            t->n_query_parameters = kv.n;
        }
    }

    s = meta_value(md, "namespace", &at);
    if (s.p)
        t->prom_namespace = dup_str(L, s.p, s.len);
    s = meta_value(md, "awsRegion", &at);
    if (s.p)
        t->aws_region = dup_str(L, s.p, s.len);
    s = meta_value(md, "authModes", &at);
    if (s.p)
        t->auth_modes = dup_str(L, s.p, s.len);
    s = meta_value(md, "identityOwner", &at);
    if (s.p)
        t->identity_owner = dup_str(L, s.p, s.len);
}

static void parse_trigger(struct loader *L, const struct ss_ynode *tn, size_t idx, struct scaler_trigger *t)
{
    char path[64];
    snprintf(path, sizeof path, "spec.triggers[%zu]", idx);
    memset(t, 0, sizeof *t);
    t->line = tn->line;
    t->column = tn->col;
    if (tn->kind != SS_YMAP) {
        err_at(L, tn, "%s must be a mapping", path);
        return;
    }
    check_map(L, tn, path, k_trigger, k_trigger_quiet);
    const struct ss_ynode *type = map_get(tn, "type");
    if (!type) {
        err_at(L, tn, "%s.type is required", path);
        return;
    }
    if (!ss_yaml_scalar_is(type, "prometheus")) {
        err_at(L, type,
               "%s: trigger type \"%s\" is not supported: scrapeship implements only the prometheus scaler",
               path, type->kind == SS_YSCALAR ? type->text : ss_yaml_kind_name(type->kind));
        return;
    }
    t->name = str_field(L, tn, "name", path, false);
    const struct ss_ynode *mt = map_get(tn, "metricType");
    if (!mt || ss_yaml_scalar_is(mt, "") || ss_yaml_scalar_is(mt, "AverageValue")) {
        t->metric_type = SCALER_METRIC_AVERAGE_VALUE;
    } else if (ss_yaml_scalar_is(mt, "Value")) {
        t->metric_type = SCALER_METRIC_VALUE;
    } else if (ss_yaml_scalar_is(mt, "Utilization")) {
        err_at(L, mt,
               "%s: 'Utilization' metric type is unsupported for external metrics, allowed values are "
               "'Value' or 'AverageValue'",
               path);
    } else {
        err_at(L, mt,
               "%s.metricType: Unsupported value: \"%s\": supported values: \"AverageValue\", \"Value\"",
               path, mt->kind == SS_YSCALAR ? mt->text : "");
    }
    const struct ss_ynode *ar = map_get(tn, "authenticationRef");
    if (ar) {
        char apath[96];
        snprintf(apath, sizeof apath, "%s.authenticationRef", path);
        if (ar->kind != SS_YMAP) {
            err_at(L, ar, "%s must be a mapping", apath);
        } else {
            check_map(L, ar, apath, k_authref, NULL);
            t->auth_ref_name = str_field(L, ar, "name", apath, true);
            const struct ss_ynode *kind = map_get(ar, "kind");
            if (kind && !ss_yaml_scalar_is(kind, "TriggerAuthentication"))
                warn_at(L, kind, "%s.kind \"%s\" is not supported; looked up as a TriggerAuthentication",
                        apath, kind->kind == SS_YSCALAR ? kind->text : "");
        }
    }
    const struct ss_ynode *md = map_get(tn, "metadata");
    char mpath[96];
    snprintf(mpath, sizeof mpath, "%s.metadata", path);
    if (!md) {
        err_at(L, tn, "%s: missing required parameter \"serverAddress\" in [triggerMetadata]", mpath);
        return;
    }
    if (md->kind != SS_YMAP) {
        err_at(L, md, "%s must be a mapping", mpath);
        return;
    }
    check_map(L, md, mpath, NULL, NULL); /* unknown keys: parse_prometheus_metadata */
    parse_prometheus_metadata(L, md, mpath, t);
}

static int kv_from_map(struct loader *L, const struct ss_ynode *m, const char *path,
                       const struct scaler_kv **out, size_t *n_out)
{
    if (m->kind != SS_YMAP) {
        err_at(L, m, "%s must be a mapping", path);
        return SS_ECONFIG;
    }
    if (m->nkids / 2 > SCALER_MAX_KV) {
        err_at(L, m, "%s has more than %d entries", path, SCALER_MAX_KV);
        return SS_ELIMIT;
    }
    check_map(L, m, path, NULL, NULL);
    struct scaler_kv *v = ss_arena_alloc(&L->cfg->arena, (m->nkids / 2 + 1) * sizeof *v);
    if (!v) {
        L->oom = true;
        return SS_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i + 1 < m->nkids; i += 2) {
        const struct ss_ynode *key = m->kids[i], *val = m->kids[i + 1];
        if (key->kind != SS_YSCALAR)
            continue;
        if (val->kind != SS_YSCALAR) {
            err_at(L, val, "%s.%s must be a string", path, key->text);
            continue;
        }
        v[n].key = dup_str(L, key->text, key->len);
        v[n].value = y_is_null(val) ? dup_str(L, "", 0) : dup_str(L, val->text, val->len);
        n++;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static void parse_metadata(struct loader *L, const struct ss_ynode *root, const char **name, const char **ns,
                           const struct scaler_kv **ann, size_t *n_ann)
{
    const struct ss_ynode *md = map_get(root, "metadata");
    if (!md || md->kind != SS_YMAP) {
        err_at(L, md ? md : root, "metadata.name is required");
        return;
    }
    check_map(L, md, "metadata", k_meta, k_meta_quiet);
    *name = str_field(L, md, "name", "metadata", true);
    *ns = str_field(L, md, "namespace", "metadata", false);
    if (!*ns)
        *ns = dup_str(L, "default", 7);
    const struct ss_ynode *a = map_get(md, "annotations");
    if (a && ann)
        kv_from_map(L, a, "metadata.annotations", ann, n_ann);
}

static struct scaler_object *push_object(struct loader *L)
{
    if (L->n_objects == L->cap_objects) {
        size_t ncap = L->cap_objects ? 2 * L->cap_objects : 4;
        struct scaler_object *no = realloc(L->cfg->objects, ncap * sizeof *no);
        if (!no) {
            L->oom = true;
            return NULL;
        }
        L->cfg->objects = no;
        L->cap_objects = ncap;
    }
    struct scaler_object *so = &L->cfg->objects[L->n_objects++];
    memset(so, 0, sizeof *so);
    return so;
}

static void parse_scaled_object(struct loader *L, const struct ss_ynode *root)
{
    struct scaler_object *so = push_object(L);
    if (!so)
        return;
    so->line = root->line;
    so->column = root->col;
    so->polling_interval_s = 30;
    so->cooldown_period_s = 300;
    so->initial_cooldown_period_s = 0;
    so->min_replicas = 0;
    so->max_replicas = 100;
    rules_default(&so->scale_up, true);
    rules_default(&so->scale_down, false);

    check_map(L, root, "ScaledObject", k_top, k_top_quiet);
    const struct ss_ynode *av = map_get(root, "apiVersion");
    if (!ss_yaml_scalar_is(av, "keda.sh/v1alpha1"))
        err_at(L, av ? av : root, "ScaledObject apiVersion must be keda.sh/v1alpha1, got \"%s\"",
               av && av->kind == SS_YSCALAR ? av->text : "");
    parse_metadata(L, root, &so->name, &so->ns, &so->annotations, &so->n_annotations);
    for (size_t i = 0; i < so->n_annotations; i++) {
        if (strcmp(so->annotations[i].key, SCALER_SYNC_PERIOD_ANNOTATION) != 0)
            continue;
        int64_t ms = 0;
        const struct ss_ynode *md = map_get(root, "metadata");
        if (ss_parse_duration_ms(so->annotations[i].value, &ms) != 0 || ms < 100 || ms > 3600000)
            err_at(L, md ? map_get(md, "annotations") : root,
                   "metadata.annotations[%s]: \"%s\" must be a duration from 100ms to 1h, e.g. \"15s\"",
                   SCALER_SYNC_PERIOD_ANNOTATION, so->annotations[i].value);
        else
            so->hpa_sync_period_ms = ms;
    }

    const struct ss_ynode *spec = map_get(root, "spec");
    if (!spec || spec->kind != SS_YMAP) {
        err_at(L, spec ? spec : root, "ScaledObject spec is required and must be a mapping");
        return;
    }
    check_map(L, spec, "spec", k_spec, NULL);

    const struct ss_ynode *tr = map_get(spec, "scaleTargetRef");
    if (!tr) {
        err_at(L, spec, "ScaledObject.spec.scaleTargetRef is not set");
    } else if (tr->kind != SS_YMAP) {
        err_at(L, tr, "spec.scaleTargetRef must be a mapping");
    } else {
        check_map(L, tr, "spec.scaleTargetRef", k_target, k_target_quiet);
        so->target_name = str_field(L, tr, "name", "spec.scaleTargetRef", true);
        so->target_api_version = str_field(L, tr, "apiVersion", "spec.scaleTargetRef", false);
        so->target_kind = str_field(L, tr, "kind", "spec.scaleTargetRef", false);
        if (so->target_kind && strcmp(so->target_kind, "Deployment") != 0 &&
            strcmp(so->target_kind, "StatefulSet") != 0)
            err_at(L, map_get(tr, "kind"),
                   "spec.scaleTargetRef.kind \"%s\" is not supported (Deployment or StatefulSet)",
                   so->target_kind);
    }
    if (!so->target_api_version)
        so->target_api_version = dup_str(L, "apps/v1", 7);
    if (!so->target_kind)
        so->target_kind = dup_str(L, "Deployment", 10);

    int_field(L, spec, "pollingInterval", "spec", 1, INT32_MAX, &so->polling_interval_s);
    int_field(L, spec, "cooldownPeriod", "spec", 0, INT32_MAX, &so->cooldown_period_s);
    int_field(L, spec, "initialCooldownPeriod", "spec", 0, INT32_MAX, &so->initial_cooldown_period_s);
    bool have_min = int_field(L, spec, "minReplicaCount", "spec", 0, INT32_MAX, &so->min_replicas);
    int_field(L, spec, "maxReplicaCount", "spec", 0, INT32_MAX, &so->max_replicas);
    so->has_idle_replicas = int_field(L, spec, "idleReplicaCount", "spec", 0, INT32_MAX, &so->idle_replicas);

    /* KEDA's CheckReplicaCountBoundsAreValid: with minReplicaCount set, the bound is
     * the HPA minimum (at least 1); without it, 0. */
    int32_t lo = have_min ? (so->min_replicas > 0 ? so->min_replicas : 1) : 0;
    if (lo > so->max_replicas)
        err_at(L, map_get(spec, "maxReplicaCount") ? map_get(spec, "maxReplicaCount") : spec,
               "MinReplicaCount=%d must be less than MaxReplicaCount=%d", (int)lo, (int)so->max_replicas);
    else if (so->max_replicas < 1)
        err_at(L, map_get(spec, "maxReplicaCount"),
               "MaxReplicaCount=%d: the HPA's maxReplicas must be at least its minReplicas (1)",
               (int)so->max_replicas);
    if (so->has_idle_replicas && so->idle_replicas >= lo)
        err_at(L, map_get(spec, "idleReplicaCount"),
               "IdleReplicaCount=%d must be less than MinReplicaCount=%d", (int)so->idle_replicas, (int)lo);

    const struct ss_ynode *fb = map_get(spec, "fallback");
    if (fb)
        parse_fallback(L, fb, so);
    const struct ss_ynode *adv = map_get(spec, "advanced");
    if (adv)
        parse_advanced(L, adv, so);

    const struct ss_ynode *trig = map_get(spec, "triggers");
    if (!trig || (trig->kind == SS_YSEQ && trig->nkids == 0)) {
        err_at(L, trig ? trig : spec, "no triggers defined in the ScaledObject/ScaledJob");
        return;
    }
    if (trig->kind != SS_YSEQ) {
        err_at(L, trig, "spec.triggers must be a list");
        return;
    }
    if (trig->nkids > SCALER_MAX_TRIGGERS) {
        err_at(L, trig, "spec.triggers has %zu entries (limit %d)", trig->nkids, SCALER_MAX_TRIGGERS);
        return;
    }
    struct scaler_trigger *tv = ss_arena_alloc(&L->cfg->arena, trig->nkids * sizeof *tv);
    if (!tv) {
        L->oom = true;
        return;
    }
    size_t i = 0;
    for (; i < trig->nkids; i++) {
        parse_trigger(L, trig->kids[i], i, &tv[i]);
        for (size_t j = 0; j < i && tv[i].name; j++)
            if (tv[j].name && strcmp(tv[j].name, tv[i].name) == 0)
                err_at(L, trig->kids[i],
                       "triggerName \"%s\" is defined multiple times in the ScaledObject/ScaledJob, but it "
                       "must be unique",
                       tv[i].name);
    }
    so->triggers = tv;
    so->n_triggers = trig->nkids;
    const struct ss_ynode *sm = adv && adv->kind == SS_YMAP ? map_get(adv, "scalingModifiers") : NULL;
    if (sm)
        parse_modifiers(L, sm, so);
}

/* ---- TriggerAuthentication --------------------------------------------- */

static void parse_trigger_auth(struct loader *L, const struct ss_ynode *root)
{
    if (L->n_auths == L->cap_auths) {
        size_t ncap = L->cap_auths ? 2 * L->cap_auths : 4;
        struct scaler_trigger_auth *na = realloc(L->cfg->auths, ncap * sizeof *na);
        if (!na) {
            L->oom = true;
            return;
        }
        L->cfg->auths = na;
        L->cap_auths = ncap;
    }
    struct scaler_trigger_auth *ta = &L->cfg->auths[L->n_auths++];
    memset(ta, 0, sizeof *ta);
    ta->line = root->line;
    ta->column = root->col;
    check_map(L, root, "TriggerAuthentication", k_top, k_top_quiet);
    const struct ss_ynode *av = map_get(root, "apiVersion");
    if (!ss_yaml_scalar_is(av, "keda.sh/v1alpha1"))
        err_at(L, av ? av : root, "TriggerAuthentication apiVersion must be keda.sh/v1alpha1, got \"%s\"",
               av && av->kind == SS_YSCALAR ? av->text : "");
    parse_metadata(L, root, &ta->name, &ta->ns, NULL, NULL);
    const struct ss_ynode *spec = map_get(root, "spec");
    if (!spec)
        return;
    if (spec->kind != SS_YMAP) {
        err_at(L, spec, "TriggerAuthentication spec must be a mapping");
        return;
    }
    /* Every other source KEDA knows reads secrets from the cluster; scrapeship
     * authenticates to AWS itself, so those are reported and skipped. */
    static const char *const unsupported[] = {"secretTargetRef",    "env",
                                              "hashiCorpVault",     "azureKeyVault",
                                              "awsSecretManager",   "gcpSecretManager",
                                              "configMapTargetRef", "boundServiceAccountToken",
                                              "awsParameterStore",  NULL};
    check_map(L, spec, "spec", (const char *const[]){"podIdentity", NULL}, unsupported);
    for (size_t i = 0; i + 1 < spec->nkids; i += 2) {
        const struct ss_ynode *k = spec->kids[i];
        if (ss_yaml_scalar_is(k, "secretTargetRef"))
            warn_at(L, k, "spec.secretTargetRef is ignored: scrapeship does not read Kubernetes secrets");
        else if (in_list(k, unsupported))
            warn_at(L, k, "spec.%s is not supported by scrapeship; ignored", k->text);
    }
    const struct ss_ynode *pi = map_get(spec, "podIdentity");
    if (!pi)
        return;
    if (pi->kind != SS_YMAP) {
        err_at(L, pi, "spec.podIdentity must be a mapping");
        return;
    }
    check_map(L, pi, "spec.podIdentity", (const char *const[]){"provider", "roleArn", "identityOwner", NULL},
              (const char *const[]){"identityId", "identityTenantId", "identityAuthorityHost", NULL});
    ta->pod_identity_provider = str_field(L, pi, "provider", "spec.podIdentity", true);
    ta->role_arn = str_field(L, pi, "roleArn", "spec.podIdentity", false);
    ta->identity_owner = str_field(L, pi, "identityOwner", "spec.podIdentity", false);
    const char *p = ta->pod_identity_provider;
    if (p && strcmp(p, "aws") != 0 && strcmp(p, "none") != 0) {
        if (strcmp(p, "aws-eks") == 0 || strcmp(p, "aws-kiam") == 0)
            warn_at(L, map_get(pi, "provider"),
                    "spec.podIdentity.provider \"%s\" was removed from KEDA; treated as \"aws\"", p);
        else
            warn_at(L, map_get(pi, "provider"),
                    "spec.podIdentity.provider \"%s\" is not supported by scrapeship; ignored", p);
    }
    if (ta->identity_owner && strcmp(ta->identity_owner, "keda") != 0 &&
        strcmp(ta->identity_owner, "workload") != 0)
        err_at(L, map_get(pi, "identityOwner"),
               "spec.podIdentity.identityOwner must be \"keda\" or \"workload\", got \"%s\"",
               ta->identity_owner);
}

/* ---- the stream -------------------------------------------------------- */

static void walk_documents(struct loader *L)
{
    for (size_t d = 0; d < ss_yaml_ndocs(L->tree) && !L->oom; d++) {
        const struct ss_ynode *root = ss_yaml_root(L->tree, d);
        if (y_is_null(root))
            continue; /* "---" followed by nothing, or comments only */
        if (root->kind != SS_YMAP) {
            err_at(L, root, "a Kubernetes manifest must be a mapping, not %s", ss_yaml_kind_name(root->kind));
            continue;
        }
        const struct ss_ynode *kind = map_get(root, "kind");
        if (ss_yaml_scalar_is(kind, "ScaledObject"))
            parse_scaled_object(L, root);
        else if (ss_yaml_scalar_is(kind, "TriggerAuthentication"))
            parse_trigger_auth(L, root);
        else if (!kind || kind->kind != SS_YSCALAR)
            warn_at(L, root, "document without a kind skipped");
        else
            warn_at(L, kind, "kind %s skipped (only ScaledObject and TriggerAuthentication are read)",
                    kind->text);
    }
    if (L->oom)
        return;

    /* Names are unique per kind and namespace, as in the API server. */
    struct scaler_object *ov = L->cfg->objects;
    for (size_t i = 0; i < L->n_objects; i++)
        for (size_t j = 0; j < i; j++)
            if (ov[i].name && ov[j].name && ov[i].ns && ov[j].ns && strcmp(ov[i].name, ov[j].name) == 0 &&
                strcmp(ov[i].ns, ov[j].ns) == 0)
                err_at(L, &(struct ss_ynode){.line = ov[i].line, .col = ov[i].column},
                       "ScaledObject %s/%s is defined twice (first at line %d)", ov[i].ns, ov[i].name,
                       ov[j].line);
    struct scaler_trigger_auth *av = L->cfg->auths;
    for (size_t i = 0; i < L->n_auths; i++)
        for (size_t j = 0; j < i; j++)
            if (av[i].name && av[j].name && av[i].ns && av[j].ns && strcmp(av[i].name, av[j].name) == 0 &&
                strcmp(av[i].ns, av[j].ns) == 0)
                err_at(L, &(struct ss_ynode){.line = av[i].line, .col = av[i].column},
                       "TriggerAuthentication %s/%s is defined twice (first at line %d)", av[i].ns,
                       av[i].name, av[j].line);

    /* A missing TriggerAuthentication may live in another file: warn only. */
    for (size_t i = 0; i < L->n_objects; i++)
        for (size_t t = 0; t < ov[i].n_triggers; t++) {
            const struct scaler_trigger *tr = &ov[i].triggers[t];
            if (!tr->auth_ref_name || !ov[i].ns)
                continue;
            bool found = false;
            for (size_t a = 0; a < L->n_auths; a++)
                if (av[a].name && av[a].ns && strcmp(av[a].name, tr->auth_ref_name) == 0 &&
                    strcmp(av[a].ns, ov[i].ns) == 0)
                    found = true;
            if (!found)
                warn_at(L, &(struct ss_ynode){.line = tr->line, .col = tr->column},
                        "spec.triggers[%zu].authenticationRef: TriggerAuthentication %s/%s not found in this "
                        "file",
                        t, ov[i].ns, tr->auth_ref_name);
        }
}

void scaler_config_free(struct scaler_config *cfg)
{
    if (!cfg)
        return;
    struct config_impl *impl = (struct config_impl *)cfg;
    /* customHeaders often carry tokens (Authorization=..., X-Api-Key=...). */
    for (size_t i = 0; i < cfg->n_objects; i++)
        for (size_t t = 0; t < impl->objects[i].n_triggers; t++) {
            const struct scaler_trigger *tr = &impl->objects[i].triggers[t];
            for (size_t h = 0; h < tr->n_custom_headers; h++)
                if (tr->custom_headers[h].value)
                    ss_wipe((char *)tr->custom_headers[h].value, strlen(tr->custom_headers[h].value));
        }
    free(impl->objects);
    free(impl->auths);
    free(impl->warnings);
    ss_arena_free(&impl->arena);
    free(impl);
}

int scaler_config_load_string(const char *text, size_t len, const char *source, struct scaler_config **out,
                              char *err, size_t errcap)
{
    struct loader L;
    int rc = 0;

    if (err && errcap)
        err[0] = '\0';
    if (!out || (!text && len))
        return SS_EINVAL;
    *out = NULL;
    memset(&L, 0, sizeof L);
    L.source = source ? source : "<input>";
    ss_buf_init(&L.errors, MAX_ERROR_TEXT);
    L.cfg = calloc(1, sizeof *L.cfg);
    if (!L.cfg) {
        rc = SS_ENOMEM;
        goto fail;
    }
    ss_arena_init(&L.cfg->arena, 4096);

    if (len > SCALER_MAX_INPUT_BYTES) {
        err_at(&L, NULL, "manifest is %zu bytes (limit %u)", len, SCALER_MAX_INPUT_BYTES);
        rc = SS_ELIMIT;
        goto fail;
    }
    struct ss_yaml_error yerr;
    if (ss_yaml_parse(text ? text : "", len, &tree_opts, &L.tree, &yerr) != 0) {
        rc = tree_fail(&L, &yerr);
        goto fail;
    }
    walk_documents(&L);
    if (L.oom) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if (L.n_errors) {
        if (L.n_errors > MAX_ERRORS) {
            char more[64];
            snprintf(more, sizeof more, "\n... and %zu more errors", L.n_errors - MAX_ERRORS);
            (void)ss_buf_append_str(&L.errors, more);
        }
        rc = SS_ECONFIG;
        goto fail;
    }
    if (L.n_warnings > MAX_WARNINGS) {
        size_t extra = L.n_warnings - MAX_WARNINGS;
        L.n_warnings = MAX_WARNINGS - 1;
        char more[64];
        snprintf(more, sizeof more, "%s: ... and %zu more warnings", L.source, extra + 1);
        L.cfg->warnings[L.n_warnings] = (char *)dup_str(&L, more, strlen(more));
        if (L.oom) {
            rc = SS_ENOMEM;
            goto fail;
        }
        L.n_warnings++;
    }
    L.cfg->pub.objects = L.cfg->objects;
    L.cfg->pub.n_objects = L.n_objects;
    L.cfg->pub.auths = L.cfg->auths;
    L.cfg->pub.n_auths = L.n_auths;
    L.cfg->pub.warnings = (const char *const *)L.cfg->warnings;
    L.cfg->pub.n_warnings = L.n_warnings;
    *out = &L.cfg->pub;
    ss_yaml_free(L.tree);
    ss_buf_free(&L.errors);
    return 0;

fail:
    if (err && errcap) {
        const char *msg = L.errors.len ? L.errors.data : ss_strerror(rc);
        snprintf(err, errcap, "%s", msg);
    }
    if (L.cfg) {
        L.cfg->pub.n_objects = L.n_objects;
        scaler_config_free(&L.cfg->pub);
    }
    ss_yaml_free(L.tree);
    ss_buf_free(&L.errors);
    return rc;
}

int scaler_config_load_file(const char *path, struct scaler_config **out, char *err, size_t errcap)
{
    struct ss_buf b;
    FILE *f = NULL;
    int rc = 0;

    if (err && errcap)
        err[0] = '\0';
    if (!path || !out)
        return SS_EINVAL;
    *out = NULL;
    ss_buf_init(&b, SCALER_MAX_INPUT_BYTES);
    f = fopen(path, "rb");
    if (!f) {
        if (err && errcap)
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
        rc = SS_EIO;
        goto fail;
    }
    char chunk[8192];
    for (;;) { /* ends at EOF, on a read error, or at the size limit */
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n && (rc = ss_buf_append(&b, chunk, n)) != 0) {
            if (err && errcap)
                snprintf(err, errcap, "%s: %s (limit %u bytes)", path, ss_strerror(rc),
                         SCALER_MAX_INPUT_BYTES);
            goto fail;
        }
        if (n < sizeof chunk)
            break;
    }
    if (ferror(f)) {
        if (err && errcap)
            snprintf(err, errcap, "%s: read error", path);
        rc = SS_EIO;
        goto fail;
    }
    rc = scaler_config_load_string(b.data, b.len, path, out, err, errcap);

fail:
    if (f)
        fclose(f);
    ss_buf_free_secret(&b); /* the manifest may hold header tokens */
    return rc;
}

const struct scaler_object *scaler_config_find(const struct scaler_config *cfg, const char *ns,
                                               const char *name)
{
    if (!cfg || !name)
        return NULL;
    if (!ns)
        ns = "default";
    for (size_t i = 0; i < cfg->n_objects; i++)
        if (strcmp(cfg->objects[i].name, name) == 0 && strcmp(cfg->objects[i].ns, ns) == 0)
            return &cfg->objects[i];
    return NULL;
}

const struct scaler_trigger_auth *scaler_config_find_auth(const struct scaler_config *cfg, const char *ns,
                                                          const char *name)
{
    if (!cfg || !name)
        return NULL;
    if (!ns)
        ns = "default";
    for (size_t i = 0; i < cfg->n_auths; i++)
        if (strcmp(cfg->auths[i].name, name) == 0 && strcmp(cfg->auths[i].ns, ns) == 0)
            return &cfg->auths[i];
    return NULL;
}
