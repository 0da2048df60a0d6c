/* decide.c: the replica decision for one ScaledObject poll.
 *
 * A KEDA-managed workload is scaled by two controllers at once, and this file runs
 * both, in the order their effects win:
 *
 *   1. KEDA's pause annotations (the HPA is deleted while paused, so its history
 *      is dropped too).
 *   2. KEDA's scale executor (pkg/scaling/executor/scale_scaledobjects.go,
 *      RequestScale): activation from 0 or idle, deactivation to idle/min after
 *      cooldownPeriod (or initialCooldownPeriod when never active), raising the
 *      target to minReplicaCount. When it changes the replicas, that is the answer.
 *   3. The Kubernetes HPA controller (pkg/controller/podautoscaler, as of 1.33) on
 *      the external metrics KEDA serves: per-trigger proposals (replica_calculator.go,
 *      GetExternalPerPodMetricReplicas for AverageValue and GetExternalMetricReplicas
 *      for Value, tolerance checked as Tolerances.isWithin), the largest proposal,
 *      then either the legacy normalization (no behavior: scale-up limit
 *      max(2*current, 4), 300 s scale-down stabilization) or the behavior one
 *      (stabilization windows, scaling policies against scale events).
 *
 * KEDA serves the HPA milli-quantities: int64(value*1000) and int64(threshold*1000).
 * Activation compares the raw float (value > activationThreshold).
 *
 * Fallback (pkg/fallback/fallback.go): each failed query of a trigger increments
 * its failure count and a success resets it. Only when the count is greater than
 * failureThreshold, i.e. on failure number failureThreshold+1, does KEDA answer
 * the HPA with a made-up metric worth fallback.replicas (threshold*replicas for
 * AverageValue, threshold*replicas/ready for Value). The HPA then processes it
 * like any metric, so tolerance, stabilization and policies still apply. Counts
 * only move when the HPA asks, which it does not at 0 replicas: fallback cannot
 * wake a workload scaled to zero (KEDA documents this).
 *
 * Two clocks, as in a cluster: every call is a KEDA poll (pollingInterval drives
 * activation, deactivation and the cooldown), and the HPA step runs only when its
 * sync is due (--horizontal-pod-autoscaler-sync-period, 15 s by default; the
 * caller passes the period, a ScaledObject annotation can override it). The
 * caller may also call between polls for an HPA sync alone (hpa_only).
 *
 * A new HPA's history is seeded with the current replica count at its first sync
 * (horizontal.go recordInitialRecommendation, TestScaleDownStabilizeInitialSize),
 * so a restarted scaler holds scale-down for the whole stabilization window
 * instead of cutting the workload to the metric's answer at once. The seed is
 * dropped with the rest of the history when the HPA is deleted (pausing).
 *
 * KEDA's paused-scale-in / paused-scale-out annotations (controllers/keda/hpa.go,
 * executor/scale_scaledobjects.go) set the HPA's scaleDown / scaleUp selectPolicy
 * to Disabled (which turns on the behavior algorithm, with Kubernetes' defaults
 * for what is not given) and stop KEDA's own scale to / from zero or idle.
 *
 * scalingModifiers (pkg/scaling/modifiers): the HPA gets one composite metric,
 * the formula over the triggers' milli-truncated values, against
 * scalingModifiers.target with its metricType; activation is composite >
 * activationTarget and is false whenever a trigger failed. Fallback replaces the
 * composite metric with threshold x replicas computed from the modifiers' target.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"
#include "scaler_int.h"

#define HISTORY_MAX                1024   /* recommendations / scale events kept per ScaledObject */
#define LEGACY_DOWNSCALE_WINDOW_MS 300000 /* --horizontal-pod-autoscaler-downscale-stabilization */
#define TOLERANCE                  0.1    /* --horizontal-pod-autoscaler-tolerance */

struct timed_rec {
    int64_t ts_ms;
    int32_t replicas;
};

struct scale_event {
    int64_t ts_ms;
    int32_t change;
    bool outdated;
};

struct scaler_state {
    int64_t created_ms;
    bool hpa_exists;      /* the HPA has synced at least once since it was (re)created */
    int64_t next_sync_ms; /* when its next sync is due */
    bool has_last_active;
    int64_t last_active_ms;
    size_t n_triggers;
    int32_t *failures; /* consecutive failed queries per trigger */
    struct timed_rec *recs;
    size_t n_recs, cap_recs;
    struct scale_event *up, *down;
    size_t n_up, cap_up, n_down, cap_down;
};

static const char *const rule_names[] = {
    [SCALER_RULE_METRIC] = "metric",
    [SCALER_RULE_TOLERANCE] = "tolerance",
    [SCALER_RULE_STABILIZATION] = "stabilization",
    [SCALER_RULE_POLICY_LIMIT] = "policy-limit",
    [SCALER_RULE_CLAMP_MIN] = "clamp-min",
    [SCALER_RULE_CLAMP_MAX] = "clamp-max",
    [SCALER_RULE_ACTIVATION] = "activation",
    [SCALER_RULE_DEACTIVATION] = "deactivation",
    [SCALER_RULE_COOLDOWN] = "cooldown",
    [SCALER_RULE_FALLBACK] = "fallback",
    [SCALER_RULE_PAUSED] = "paused",
    [SCALER_RULE_ERROR] = "error",
    [SCALER_RULE_INACTIVE] = "inactive",
    [SCALER_RULE_HPA_WAIT] = "hpa-wait",
};

const char *scaler_rule_name(enum scaler_rule rule)
{
    if ((unsigned)rule < sizeof rule_names / sizeof rule_names[0] && rule_names[rule])
        return rule_names[rule];
    return "unknown";
}

int scaler_rule_from_name(const char *name, enum scaler_rule *out)
{
    if (!name || !out)
        return SS_EINVAL;
    for (size_t i = 0; i < sizeof rule_names / sizeof rule_names[0]; i++)
        if (rule_names[i] && strcmp(rule_names[i], name) == 0) {
            *out = (enum scaler_rule)i;
            return 0;
        }
    return SS_ENOTFOUND;
}

/* ---- state ------------------------------------------------------------- */

int scaler_state_new(const struct scaler_object *so, int64_t created_ms, struct scaler_state **out)
{
    if (!so || !out)
        return SS_EINVAL;
    *out = NULL;
    struct scaler_state *st = calloc(1, sizeof *st);
    if (!st)
        return SS_ENOMEM;
    st->created_ms = created_ms;
    st->n_triggers = so->n_triggers;
    st->failures = calloc(so->n_triggers ? so->n_triggers : 1, sizeof *st->failures);
    if (!st->failures) {
        free(st);
        return SS_ENOMEM;
    }
    *out = st;
    return 0;
}

int64_t scaler_state_next_sync_ms(const struct scaler_state *st)
{
    return st && st->hpa_exists ? st->next_sync_ms : INT64_MIN;
}

void scaler_state_set_last_active(struct scaler_state *st, int64_t ms)
{
    if (!st)
        return;
    st->has_last_active = true;
    st->last_active_ms = ms;
}

void scaler__state_hpa_running(struct scaler_state *st)
{
    st->hpa_exists = true;
    st->next_sync_ms = INT64_MIN;
    st->n_recs = 0;
}

void scaler_state_free(struct scaler_state *st)
{
    if (!st)
        return;
    free(st->failures);
    free(st->recs);
    free(st->up);
    free(st->down);
    free(st);
}

/* The HPA controller forgets an HPA's recommendations and events when the HPA is
 * deleted, which KEDA does while a ScaledObject is paused. */
static void hpa_forget(struct scaler_state *st)
{
    st->n_recs = st->n_up = st->n_down = 0;
    st->hpa_exists = false;
}

/* A slot for one more entry, growing up to HISTORY_MAX; NULL when the array is
 * full or memory is short, and the caller then overwrites its oldest entry. */
static void *history_slot(void **arr, size_t *n, size_t *cap, size_t elem)
{
    if (*n == *cap) {
        if (*cap >= HISTORY_MAX)
            return NULL;
        size_t ncap = *cap ? *cap * 2 : 16;
        if (ncap > HISTORY_MAX)
            ncap = HISTORY_MAX;
        void *p = realloc(*arr, ncap * elem);
        if (!p)
            return NULL;
        *arr = p;
        *cap = ncap;
    }
    return (char *)*arr + (*n)++ * elem;
}

static void record_recommendation(struct scaler_state *st, bool found_old, size_t old_idx, int64_t now,
                                  int32_t replicas)
{
    struct timed_rec r = {now, replicas};
    if (found_old) {
        st->recs[old_idx] = r;
        return;
    }
    struct timed_rec *slot = history_slot((void **)&st->recs, &st->n_recs, &st->cap_recs, sizeof *st->recs);
    if (!slot && st->n_recs) {
        size_t oldest = 0;
        for (size_t i = 1; i < st->n_recs; i++)
            if (st->recs[i].ts_ms < st->recs[oldest].ts_ms)
                oldest = i;
        slot = &st->recs[oldest];
    }
    if (slot)
        *slot = r;
}

/* ---- small helpers ----------------------------------------------------- */

static int32_t clamp_i32(double x)
{
    if (x >= 2147483647.0)
        return INT32_MAX;
    if (x <= -2147483648.0)
        return INT32_MIN;
    return (int32_t)x;
}

static int32_t clamp_i64(int64_t x)
{
    return x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : (int32_t)x;
}

static bool within_tolerance(double ratio)
{
    /* Kubernetes >= 1.33 Tolerances.isWithin: an inclusive band, so 0.275/0.25
     * (1.1000000000000000888 in binary) is inside; the older
     * math.Abs(1.0-ratio) <= tolerance check put it outside. */
    return (1.0 - TOLERANCE) <= ratio && ratio <= (1.0 + TOLERANCE);
}

static const char *annotation(const struct scaler_object *so, const struct scaler_input *in, const char *key)
{
    for (size_t i = 0; i < in->n_annotations; i++)
        if (in->annotations[i].key && strcmp(in->annotations[i].key, key) == 0)
            return in->annotations[i].value ? in->annotations[i].value : "";
    for (size_t i = 0; i < so->n_annotations; i++)
        if (strcmp(so->annotations[i].key, key) == 0)
            return so->annotations[i].value;
    return NULL;
}

/* strconv.ParseBool */
static bool go_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
    for (size_t i = 0; t[i]; i++)
        if (strcmp(s, t[i]) == 0)
            return (*out = true), true;
    for (size_t i = 0; f[i]; i++)
        if (strcmp(s, f[i]) == 0)
            return (*out = false), true;
    return false;
}

/* strconv.ParseInt(s, 10, 32) */
static bool go_parse_int32(const char *s, int32_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p)
        return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > 2147483648LL)
            return false;
    }
    v = neg ? -v : v;
    if (v > INT32_MAX || v < INT32_MIN)
        return false;
    *out = (int32_t)v;
    return true;
}

struct explain {
    char *buf;
    size_t cap, len;
};

static void __attribute__((format(printf, 2, 3))) say(struct explain *e, const char *fmt, ...)
{
    if (e->len + 1 >= e->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        e->len = e->len + (size_t)n < e->cap ? e->len + (size_t)n : e->cap - 1;
}

static void trigger_label(const struct scaler_object *so, size_t i, char *buf, size_t cap)
{
    if (so->triggers[i].name)
        snprintf(buf, cap, "trigger %.40s", so->triggers[i].name);
    else
        snprintf(buf, cap, "trigger #%zu", i);
}

/* The HPA as KEDA last wrote it: the manifest's behavior, with the pause-scale
 * annotations applied (controllers/keda/hpa.go newHPAForScaledObject). */
struct hpa_spec {
    bool has_behavior;
    struct scaler_rules up, down;
    bool pause_in, pause_out;
};

/* ---- HPA: one metric ---------------------------------------------------- */

struct proposal {
    bool valid;
    bool fallback;
    bool tolerance; /* held at current by the tolerance band */
    int32_t replicas;
    double ratio;
    int64_t usage_milli, target_milli;
    const char *error;
};

/* replica_calculator.go for one external metric, given in milli units. */
static void propose(const struct scaler_trigger *t, int32_t cur, int32_t ready, int64_t usage,
                    struct proposal *p)
{
    int64_t target = scaler__milli(t->threshold);
    if (target < 1)
        target = 1; /* the loader refuses such thresholds; stay safe anyway */
    p->valid = true;
    p->usage_milli = usage;
    p->target_milli = target;
    if (t->metric_type == SCALER_METRIC_AVERAGE_VALUE) {
        /* GetExternalPerPodMetricReplicas */
        p->ratio = (double)usage / ((double)target * (double)cur);
        if (within_tolerance(p->ratio)) {
            p->tolerance = true;
            p->replicas = cur;
        } else {
            p->replicas = clamp_i32(ceil((double)usage / (double)target));
        }
    } else {
        /* GetExternalMetricReplicas -> getUsageRatioReplicaCount, currentReplicas != 0 */
        p->ratio = (double)usage / (double)target;
        if (within_tolerance(p->ratio)) {
            p->tolerance = true;
            p->replicas = cur;
        } else {
            p->replicas = clamp_i32(ceil(p->ratio * (double)ready));
        }
    }
}

/* doFallback: the metric KEDA makes up so that the HPA lands on the fallback count.
 * `t` is the metric's trigger, or the composite one under scalingModifiers. */
static bool fallback_metric(const struct scaler_object *so, const struct scaler_trigger *t, int32_t cur,
                            int32_t ready, int64_t *usage)
{
    double reps;
    switch (so->fallback_behavior) {
    case SCALER_FALLBACK_CURRENT_REPLICAS: reps = cur; break;
    case SCALER_FALLBACK_CURRENT_REPLICAS_IF_HIGHER:
        reps = cur > so->fallback_replicas ? cur : so->fallback_replicas;
        break;
    case SCALER_FALLBACK_CURRENT_REPLICAS_IF_LOWER:
        reps = cur < so->fallback_replicas ? cur : so->fallback_replicas;
        break;
    case SCALER_FALLBACK_STATIC:
    default: reps = so->fallback_replicas; break;
    }
    if (t->metric_type == SCALER_METRIC_VALUE) {
        if (ready <= 0)
            return false; /* KEDA: "status.readyReplicas is 0 in scaleTargetRef" */
        reps /= ready;
    }
    /* Target.AverageValue.AsApproximateFloat64() of the milli-quantity target (the
     * modifiers' target is parsed as a float instead) */
    double norm = so->has_modifiers ? so->modifiers.target : (double)scaler__milli(t->threshold) / 1000.0;
    double m = norm * 1000.0 * reps; /* int64(normalisationValue*1000*replicas) */
    *usage = isnan(m)                      ? 0
             : m >= 9223372036854775807.0  ? INT64_MAX
             : m <= -9223372036854775808.0 ? INT64_MIN
                                           : (int64_t)m;
    return true;
}

/* ---- HPA: normalization ------------------------------------------------- */

/* horizontal.go stabilizeRecommendation (no behavior): the highest recommendation
 * of the last 5 minutes, samples exactly at the cutoff still counting. */
static int32_t stabilize_legacy(struct scaler_state *st, int64_t now, int32_t desired)
{
    int32_t best = desired;
    bool found_old = false;
    size_t old_idx = 0;
    int64_t cutoff = now - LEGACY_DOWNSCALE_WINDOW_MS;
    for (size_t i = 0; i < st->n_recs; i++) {
        if (st->recs[i].ts_ms < cutoff) {
            found_old = true;
            old_idx = i;
        } else if (st->recs[i].replicas > best) {
            best = st->recs[i].replicas;
        }
    }
    record_recommendation(st, found_old, old_idx, now, desired);
    return best;
}

/* horizontal.go stabilizeRecommendationWithBehaviors: scale-up may not exceed the
 * lowest recommendation of its window, scale-down may not go below the highest
 * of its window; samples exactly at a cutoff no longer count. */
static int32_t stabilize_behavior(const struct hpa_spec *hs, struct scaler_state *st, int64_t now,
                                  int32_t cur, int32_t desired)
{
    int32_t up = desired, down = desired;
    int64_t up_cut = now - (int64_t)hs->up.stabilization_window_seconds * 1000;
    int64_t down_cut = now - (int64_t)hs->down.stabilization_window_seconds * 1000;
    bool found_old = false;
    size_t old_idx = 0;
    for (size_t i = 0; i < st->n_recs; i++) {
        const struct timed_rec *r = &st->recs[i];
        if (r->ts_ms > up_cut && r->replicas < up)
            up = r->replicas;
        if (r->ts_ms > down_cut && r->replicas > down)
            down = r->replicas;
        if (r->ts_ms < up_cut && r->ts_ms < down_cut) {
            found_old = true;
            old_idx = i;
        }
    }
    int32_t rec = cur;
    if (rec < up)
        rec = up;
    if (rec > down)
        rec = down;
    record_recommendation(st, found_old, old_idx, now, desired);
    return rec;
}

static int32_t change_in_period(const struct scale_event *ev, size_t n, int64_t now, int32_t period_s)
{
    int64_t cutoff = now - (int64_t)period_s * 1000, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].ts_ms > cutoff)
            sum += ev[i].change;
    return clamp_i64(sum);
}

/* calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors.
 * Each policy is measured from the replica count at the start of its period.
 * Sums are done in 64 bits and clamped, where Go's int32 would wrap. */
static int32_t policy_limit(const struct scaler_rules *r, const struct scaler_state *st, int64_t now,
                            int32_t cur, bool up)
{
    if (r->select_policy == SCALER_SELECT_DISABLED)
        return cur;
    bool pick_max = (r->select_policy == SCALER_SELECT_MAX) == up;
    int64_t result = pick_max ? INT32_MIN : INT32_MAX;
    for (size_t i = 0; i < r->n_policies; i++) {
        const struct scaler_policy *p = &r->policies[i];
        int64_t added = change_in_period(st->up, st->n_up, now, p->period_seconds);
        int64_t deleted = change_in_period(st->down, st->n_down, now, p->period_seconds);
        int64_t start = (int64_t)cur - added + deleted;
        int64_t proposed;
        if (p->type == SCALER_POLICY_PODS)
            proposed = up ? start + p->value : start - p->value;
        else if (up) /* rounded up, or a small workload could never grow */
            proposed = clamp_i32(ceil((double)start * (1.0 + (double)p->value / 100.0)));
        else
            proposed = clamp_i32((double)start * (1.0 - (double)p->value / 100.0));
        if (pick_max ? proposed > result : proposed < result)
            result = proposed;
    }
    return clamp_i64(result);
}

/* horizontal.go storeScaleEvent: only kept when the HPA has a behavior. */
static void store_scale_event(const struct hpa_spec *hs, struct scaler_state *st, int64_t now, int32_t prev,
                              int32_t next)
{
    if (!hs->has_behavior || prev == next)
        return;
    bool up = next > prev;
    const struct scaler_rules *r = up ? &hs->up : &hs->down;
    struct scale_event **arr = up ? &st->up : &st->down;
    size_t *n = up ? &st->n_up : &st->n_down;
    size_t *cap = up ? &st->cap_up : &st->cap_down;
    int32_t longest = 0;
    for (size_t i = 0; i < r->n_policies; i++)
        if (r->policies[i].period_seconds > longest)
            longest = r->policies[i].period_seconds;
    int64_t cutoff = now - (int64_t)longest * 1000;
    bool found = false;
    size_t idx = 0;
    for (size_t i = 0; i < *n; i++) {
        if ((*arr)[i].ts_ms < cutoff)
            (*arr)[i].outdated = true;
        if ((*arr)[i].outdated) {
            found = true;
            idx = i;
        }
    }
    int64_t change = up ? (int64_t)next - prev : (int64_t)prev - next;
    struct scale_event ev = {now, clamp_i64(change), false};
    if (found) {
        (*arr)[idx] = ev;
        return;
    }
    struct scale_event *slot = history_slot((void **)arr, n, cap, sizeof **arr);
    if (!slot && *n) {
        size_t oldest = 0;
        for (size_t i = 1; i < *n; i++)
            if ((*arr)[i].ts_ms < (*arr)[oldest].ts_ms)
                oldest = i;
        slot = &(*arr)[oldest];
    }
    if (slot)
        *slot = ev;
}

/* ---- the decision ------------------------------------------------------ */

static void finish(struct scaler_decision *out, int32_t cur, int32_t replicas, enum scaler_rule rule)
{
    out->replicas = replicas;
    out->changed = replicas != cur;
    out->rule = rule;
}

/* The one metric KEDA gives the HPA under scalingModifiers (hpa.go
 * getScaledObjectMetricSpecs: the composite metric, target and type from the
 * modifiers). */
static void composite_trigger(const struct scaler_object *so, struct scaler_trigger *t)
{
    memset(t, 0, sizeof *t);
    t->name = "composite-metric";
    t->metric_type = so->modifiers.metric_type;
    t->threshold = so->modifiers.target;
}

/* calculateScalingModifiersFormula: each trigger's value as its metric carries
 * it (a milli-quantity, read back with AsApproximateFloat64). */
static double composite_value(const struct scaler_object *so, const struct scaler_input *in)
{
    double v[SCALER_MAX_TRIGGERS];
    for (size_t i = 0; i < so->n_triggers; i++)
        v[i] = in->results[i].ok ? (double)scaler__milli(in->results[i].value) / 1000.0 : 0;
    return scaler__formula_eval(so->modifiers.program, v);
}

/* The HPA's sync bookkeeping: recordInitialRecommendation on the first sync of a
 * (re)created HPA, then the next sync one period later. */
static void hpa_tick(struct scaler_state *st, int64_t now, int64_t period, int32_t cur)
{
    if (!st->hpa_exists) {
        st->n_recs = 0;
        record_recommendation(st, false, 0, now, cur);
        st->hpa_exists = true;
        st->next_sync_ms = now + (period > 0 ? period : 0);
        return;
    }
    if (period <= 0) {
        st->next_sync_ms = now;
        return;
    }
    st->next_sync_ms += period; /* keep the HPA's own beat, not the caller's jitter */
    if (st->next_sync_ms <= now)
        st->next_sync_ms = now + period;
}

static void hpa(const struct scaler_object *so, const struct hpa_spec *hs, struct scaler_state *st,
                const struct scaler_input *in, bool cooling, struct scaler_decision *out, struct explain *ex)
{
    int64_t now = in->now_ms;
    int32_t cur = in->current_replicas;
    int32_t ready = in->ready_replicas >= 0 ? in->ready_replicas : cur;
    int32_t hpa_min = so->min_replicas > 0 ? so->min_replicas : 1; /* GetHPAMinReplicas */
    int32_t hpa_max = so->max_replicas;
    out->hpa_synced = true;

    /* reconcileAutoscaler: out-of-range replicas are corrected without consulting
     * the metrics (and without recording a recommendation). */
    if (cur > hpa_max || cur < hpa_min) {
        int32_t to = cur > hpa_max ? hpa_max : hpa_min;
        say(ex, "HPA: current %d is %s %s %d: set to %d", (int)cur, cur > hpa_max ? "above" : "below",
            cur > hpa_max ? "maxReplicaCount" : "HPA minimum", (int)to, (int)to);
        store_scale_event(hs, st, now, cur, to);
        finish(out, cur, to, cur > hpa_max ? SCALER_RULE_CLAMP_MAX : SCALER_RULE_CLAMP_MIN);
        return;
    }

    /* computeReplicasForMetrics. KEDA counts a trigger's failures whenever the HPA
     * asks for its metric (fallback.GetMetricsWithFallback). */
    size_t nt = so->n_triggers, first_failed = nt, n_failed = 0;
    bool fallback_on = false;
    for (size_t i = 0; i < nt; i++) {
        if (in->results[i].ok) {
            st->failures[i] = 0;
            continue;
        }
        if (st->failures[i] < INT32_MAX)
            st->failures[i]++;
        if (n_failed++ == 0)
            first_failed = i;
        if (so->has_fallback && st->failures[i] > so->fallback_failure_threshold)
            fallback_on = true;
    }
    bool modifiers_fallback_ok = !so->has_modifiers || so->modifiers.target == floor(so->modifiers.target);

    struct scaler_trigger composite;
    const struct scaler_trigger *metric_trigger[SCALER_MAX_TRIGGERS];
    struct proposal props[SCALER_MAX_TRIGGERS];
    size_t n = so->has_modifiers ? 1 : nt, invalid = 0, first_invalid = 0;
    if (so->has_modifiers) {
        composite_trigger(so, &composite);
        metric_trigger[0] = &composite;
    } else {
        for (size_t i = 0; i < nt; i++)
            metric_trigger[i] = &so->triggers[i];
    }
    int32_t replicas = 0;
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct scaler_trigger *t = metric_trigger[i];
        struct proposal *p = &props[i];
        memset(p, 0, sizeof *p);
        /* the trigger whose failure matters for this metric */
        size_t src = so->has_modifiers ? first_failed : i;
        bool failed = src < nt && !in->results[src].ok;
        if (!failed) {
            double v = so->has_modifiers ? composite_value(so, in) : in->results[i].value;
            propose(t, cur, ready, scaler__milli(v), p);
        } else {
            p->error = in->results[src].error ? in->results[src].error : "query failed";
            int64_t usage;
            bool over = so->has_modifiers
                            ? fallback_on
                            : so->has_fallback && st->failures[i] > so->fallback_failure_threshold;
            if (over && modifiers_fallback_ok && fallback_metric(so, t, cur, ready, &usage)) {
                propose(t, cur, ready, usage, p);
                p->fallback = true;
            }
        }
        if (!p->valid) {
            if (invalid++ == 0)
                first_invalid = i;
            continue;
        }
        /* the controller's comparison, kept verbatim: a 0 proposal is replaced */
        if (replicas == 0 || p->replicas > replicas) {
            replicas = p->replicas;
            best = (int)i;
        }
    }
    char label[64];
    if (n == 0) { /* only a hand-built object can have no trigger */
        say(ex, "no triggers: keep %d", (int)cur);
        finish(out, cur, cur, SCALER_RULE_ERROR);
        return;
    }
    if (invalid >= n || (invalid > 0 && replicas < cur)) {
        size_t src = so->has_modifiers ? first_failed : first_invalid;
        trigger_label(so, src, label, sizeof label);
        say(ex, "%s failed", label);
        if (so->has_fallback)
            say(ex, " (failure %d, fallback after more than %d%s)", (int)st->failures[src],
                (int)so->fallback_failure_threshold,
                st->failures[src] > so->fallback_failure_threshold ? ": fallback unusable" : "");
        if (so->has_modifiers)
            say(ex, "; no composite metric");
        say(ex,
            invalid >= n ? "; no metric for the HPA: keep %d"
                         : "; the other metrics would scale down: keep %d",
            (int)cur);
        finish(out, cur, cur, SCALER_RULE_ERROR);
        return;
    }

    const struct proposal *bp = &props[best];
    if (so->has_modifiers)
        snprintf(label, sizeof label, "composite-metric");
    else
        trigger_label(so, (size_t)best, label, sizeof label);
    enum scaler_rule rule = bp->fallback    ? SCALER_RULE_FALLBACK
                            : bp->tolerance ? SCALER_RULE_TOLERANCE
                                            : SCALER_RULE_METRIC;
    if (bp->fallback) {
        size_t src = so->has_modifiers ? first_failed : (size_t)best;
        char fl[64];
        trigger_label(so, src, fl, sizeof fl);
        say(ex, "%s failed %d times (> failureThreshold %d): fallback metric; ", fl, (int)st->failures[src],
            (int)so->fallback_failure_threshold);
    }
    if (metric_trigger[best]->metric_type == SCALER_METRIC_AVERAGE_VALUE)
        say(ex, "%s AverageValue %lldm / (%lldm x %d) = %.4g", label, (long long)bp->usage_milli,
            (long long)bp->target_milli, (int)cur, bp->ratio);
    else
        say(ex, "%s Value %lldm / %lldm = %.4g", label, (long long)bp->usage_milli,
            (long long)bp->target_milli, bp->ratio);
    if (bp->tolerance)
        say(ex, " within tolerance [0.9, 1.1]: %d", (int)bp->replicas);
    else
        say(ex, " -> %d", (int)bp->replicas);
    if (invalid)
        say(ex, " (%zu trigger(s) failed)", invalid);

    int32_t desired = replicas > 0 ? replicas : 0; /* desiredReplicas starts at 0 */
    out->metric_replicas = desired;

    int32_t stabilized, final;
    enum scaler_rule limit_rule = SCALER_RULE_METRIC;
    bool paused_limit = false;
    if (!hs->has_behavior) {
        /* normalizeDesiredReplicas + convertDesiredReplicasWithRules */
        stabilized = stabilize_legacy(st, now, desired);
        int64_t up_limit = 2 * (int64_t)cur > 4 ? 2 * (int64_t)cur : 4; /* calculateScaleUpLimit */
        int32_t max_allowed = hpa_max;
        limit_rule = SCALER_RULE_CLAMP_MAX;
        if (hpa_max > up_limit) {
            max_allowed = clamp_i64(up_limit);
            limit_rule = SCALER_RULE_POLICY_LIMIT;
        }
        final = stabilized;
        if (stabilized < hpa_min) {
            final = hpa_min;
            limit_rule = SCALER_RULE_CLAMP_MIN;
        } else if (stabilized > max_allowed) {
            final = max_allowed;
        }
        if (stabilized != desired)
            say(ex, "; 300s scale-down stabilization holds %d", (int)stabilized);
        if (final != stabilized)
            say(ex,
                limit_rule == SCALER_RULE_POLICY_LIMIT ? "; scale-up limit max(2x%d, 4) = %d"
                : limit_rule == SCALER_RULE_CLAMP_MAX  ? "; current %d, clamped to maxReplicaCount %d"
                                                       : "; current %d, clamped to the HPA minimum %d",
                (int)cur, (int) final);
    } else {
        /* normalizeDesiredReplicasWithBehaviors */
        stabilized = stabilize_behavior(hs, st, now, cur, desired);
        final = stabilized;
        if (stabilized > cur) {
            int32_t lim = policy_limit(&hs->up, st, now, cur, true);
            if (lim < cur)
                lim = cur;
            int32_t max_allowed = hpa_max;
            limit_rule = SCALER_RULE_CLAMP_MAX;
            if (max_allowed > lim) {
                max_allowed = lim;
                limit_rule = SCALER_RULE_POLICY_LIMIT;
                paused_limit = hs->pause_out;
            }
            if (stabilized > max_allowed)
                final = max_allowed;
        } else if (stabilized < cur) {
            int32_t lim = policy_limit(&hs->down, st, now, cur, false);
            if (lim > cur)
                lim = cur;
            int32_t min_allowed = hpa_min;
            limit_rule = SCALER_RULE_CLAMP_MIN;
            if (min_allowed < lim) {
                min_allowed = lim;
                limit_rule = SCALER_RULE_POLICY_LIMIT;
                paused_limit = hs->pause_in;
            }
            if (stabilized < min_allowed)
                final = min_allowed;
        }
        if (stabilized != desired)
            say(ex, "; %s stabilization window (%ds) gives %d", desired >= cur ? "scale-up" : "scale-down",
                (int)(desired >= cur ? hs->up.stabilization_window_seconds
                                     : hs->down.stabilization_window_seconds),
                (int)stabilized);
        if (final != stabilized) {
            if (paused_limit)
                say(ex, "; %s: keep %d",
                    hs->pause_in ? "autoscaling.keda.sh/paused-scale-in disables scale-down"
                                 : "autoscaling.keda.sh/paused-scale-out disables scale-up",
                    (int) final);
            else if (limit_rule == SCALER_RULE_POLICY_LIMIT &&
                     (stabilized > cur ? hs->up : hs->down).select_policy == SCALER_SELECT_DISABLED)
                say(ex, "; selectPolicy Disabled: keep %d", (int) final);
            else
                say(ex,
                    limit_rule == SCALER_RULE_POLICY_LIMIT ? "; scaling policies allow %d"
                    : limit_rule == SCALER_RULE_CLAMP_MAX  ? "; clamped to maxReplicaCount %d"
                                                           : "; clamped to the HPA minimum %d",
                    (int) final);
        }
    }
    /* Name the rule that decided. A clamp to min/max only bounds how far the
     * metric's own move goes (cur is within range here), so it is mentioned in the
     * explanation but never named as the rule. */
    enum scaler_rule decider = stabilized != desired ? SCALER_RULE_STABILIZATION : rule;
    if (final != stabilized && limit_rule == SCALER_RULE_POLICY_LIMIT)
        rule = paused_limit ? SCALER_RULE_PAUSED : SCALER_RULE_POLICY_LIMIT;
    else
        rule = decider;
    if (final == cur && cooling) {
        rule = SCALER_RULE_COOLDOWN;
        say(ex, "; no trigger active, %s not over yet",
            st->has_last_active ? "cooldownPeriod" : "initialCooldownPeriod");
    }
    say(ex, " => %d", (int) final);
    store_scale_event(hs, st, now, cur, final);
    finish(out, cur, final, rule);
}

/* getBoolAnnotation: absent is false, a value that is not a bool is true. */
static bool bool_annotation(const struct scaler_object *so, const struct scaler_input *in, const char *key)
{
    const char *v = annotation(so, in, key);
    bool b = true;
    if (!v)
        return false;
    if (!go_parse_bool(v, &b))
        return true;
    return b;
}

int scaler_decide(const struct scaler_object *so, struct scaler_state *st, const struct scaler_input *in,
                  struct scaler_decision *out)
{
    if (!so || !st || !in || !out)
        return SS_EINVAL;
    if (in->n_results != so->n_triggers || (so->n_triggers && !in->results) ||
        st->n_triggers != so->n_triggers || so->n_triggers > SCALER_MAX_TRIGGERS ||
        in->current_replicas < 0 || (in->n_annotations && !in->annotations) ||
        (so->has_modifiers && !so->modifiers.program))
        return SS_EINVAL;

    memset(out, 0, sizeof *out);
    out->metric_replicas = -1;
    out->fallback_counting = so->has_fallback;
    struct explain ex = {out->explanation, sizeof out->explanation, 0};
    int64_t now = in->now_ms;
    int32_t cur = in->current_replicas;

    bool active = false, any_err = false;
    for (size_t i = 0; i < so->n_triggers; i++) {
        if (!in->results[i].ok)
            any_err = true;
        else if (in->results[i].value > so->triggers[i].activation_threshold)
            active = true; /* strictly greater, as the prometheus scaler does */
    }
    double composite = 0;
    if (so->has_modifiers) {
        /* getScaledObjectState: with a formula, activity is re-evaluated on the
         * composite value, and any trigger error makes the object inactive */
        active = false;
        if (!any_err) {
            composite = (double)scaler__milli(composite_value(so, in)) / 1000.0;
            active = composite > so->modifiers.activation_target;
        }
    }
    out->active = active;
    out->error = any_err;

    /* Pause annotations win over everything: KEDA removes the HPA and stops its
     * loop (paused-replicas first scales the target to that count). */
    const char *pr = annotation(so, in, "autoscaling.keda.sh/paused-replicas");
    if (pr) {
        int32_t n;
        hpa_forget(st);
        if (!go_parse_int32(pr, &n) || n < 0) {
            say(&ex, "invalid autoscaling.keda.sh/paused-replicas \"%.32s\": keep %d", pr, (int)cur);
            finish(out, cur, cur, SCALER_RULE_ERROR);
        } else {
            say(&ex, "paused by autoscaling.keda.sh/paused-replicas: %d", (int)n);
            finish(out, cur, n, SCALER_RULE_PAUSED);
        }
        return 0;
    }
    const char *pz = annotation(so, in, "autoscaling.keda.sh/paused");
    bool paused = false;
    if (pz && (!go_parse_bool(pz, &paused) || paused)) {
        /* NeedToBePausedByAnnotation: a value that is not a bool also pauses */
        hpa_forget(st);
        say(&ex, "paused by autoscaling.keda.sh/paused=\"%.32s\": keep %d", pz, (int)cur);
        finish(out, cur, cur, SCALER_RULE_PAUSED);
        return 0;
    }

    struct hpa_spec hs = {
        .pause_in = bool_annotation(so, in, "autoscaling.keda.sh/paused-scale-in"),
        .pause_out = bool_annotation(so, in, "autoscaling.keda.sh/paused-scale-out"),
        .up = so->scale_up,
        .down = so->scale_down,
    };
    hs.has_behavior = so->has_behavior || hs.pause_in || hs.pause_out;
    if (hs.pause_in)
        hs.down.select_policy = SCALER_SELECT_DISABLED;
    if (hs.pause_out)
        hs.up.select_policy = SCALER_SELECT_DISABLED;

    int64_t period = so->hpa_sync_period_ms > 0 ? so->hpa_sync_period_ms : in->hpa_sync_period_ms;
    bool hpa_due = period <= 0 || !st->hpa_exists || now >= st->next_sync_ms;

    if (so->has_modifiers && !any_err)
        say(&ex, "composite %.6g %s activationTarget %.6g; ", composite,
            active ? ">" : "<=", so->modifiers.activation_target);

    /* KEDA's scale executor, at every pollingInterval */
    int32_t min = so->min_replicas;
    bool cooling = false, blocked_in = false;
    if (in->hpa_only) {
        /* an HPA sync between two polls: KEDA does nothing now */
    } else if (active) {
        if ((so->has_idle_replicas && cur < min) || cur == 0) {
            /* scaleFromZeroOrIdle */
            if (hs.pause_out) {
                say(&ex,
                    "a trigger is active, but autoscaling.keda.sh/paused-scale-out blocks activation: keep "
                    "%d",
                    (int)cur);
                if (hpa_due)
                    hpa_tick(st, now, period, cur);
                finish(out, cur, cur, SCALER_RULE_PAUSED);
                return 0;
            }
            int32_t to = min > 0 ? min : 1;
            st->has_last_active = true;
            st->last_active_ms = now;
            say(&ex, "a trigger is active at %d replicas: activate to %s%d", (int)cur,
                min > 0 ? "minReplicaCount " : "", (int)to);
            finish(out, cur, to, SCALER_RULE_ACTIVATION);
            return 0;
        }
        if (!any_err) {
            st->has_last_active = true;
            st->last_active_ms = now;
        }
    } else if (any_err && so->has_fallback && so->fallback_replicas != 0) {
        /* left to the HPA so the fallback can act (KEDA issue 4249) */
    } else if (any_err && !so->has_fallback) {
        /* nothing: an error never scales to zero */
    } else if ((so->has_idle_replicas && cur > so->idle_replicas) || (cur > 0 && min == 0)) {
        /* scaleToZeroOrIdle; time.Before is strict, so the boundary still waits */
        bool elapsed = st->has_last_active
                           ? st->last_active_ms + (int64_t)so->cooldown_period_s * 1000 < now
                           : st->created_ms + (int64_t)so->initial_cooldown_period_s * 1000 < now;
        int32_t to = so->has_idle_replicas ? so->idle_replicas : min;
        if (hs.pause_in) {
            /* scaleToZeroOrIdle returns at once; the HPA carries on */
            blocked_in = true;
            say(&ex, "no trigger active; autoscaling.keda.sh/paused-scale-in blocks the scale to %d; ",
                (int)to);
        } else if (elapsed) {
            say(&ex, "no trigger active; %s elapsed: scale to %s %d",
                st->has_last_active ? "cooldownPeriod" : "initialCooldownPeriod",
                so->has_idle_replicas ? "idleReplicaCount" : "minReplicaCount", (int)to);
            finish(out, cur, to, SCALER_RULE_DEACTIVATION);
            return 0;
        } else {
            cooling = true;
        }
    } else if (!so->has_idle_replicas && cur < min) {
        say(&ex, "no trigger active and %d is below minReplicaCount: set %d", (int)cur, (int)min);
        finish(out, cur, min, SCALER_RULE_CLAMP_MIN);
        return 0;
    }

    /* The HPA does nothing for a target at 0 replicas ("ScalingDisabled"), but it
     * exists and syncs, so its history is seeded. */
    if (cur == 0) {
        if (hpa_due)
            hpa_tick(st, now, period, cur);
        if (any_err)
            say(&ex, "a trigger failed and the target is at 0 (the HPA is disabled at 0): keep 0");
        else
            say(&ex, "no trigger active: stay at 0");
        finish(out, cur, 0, any_err ? SCALER_RULE_ERROR : SCALER_RULE_INACTIVE);
        return 0;
    }
    if (!hpa_due) {
        int64_t wait = st->next_sync_ms - now;
        say(&ex, "%s; the HPA syncs in %lld.%llds: keep %d",
            cooling  ? "no trigger active, cooling down"
            : active ? "active"
                     : "no trigger active",
            (long long)(wait / 1000), (long long)(wait % 1000 / 100), (int)cur);
        finish(out, cur, cur, cooling ? SCALER_RULE_COOLDOWN : SCALER_RULE_HPA_WAIT);
        return 0;
    }
    hpa_tick(st, now, period, cur);
    hpa(so, &hs, st, in, cooling, out, &ex);
    if (blocked_in && out->replicas == cur)
        out->rule = SCALER_RULE_PAUSED; /* the pause kept the workload up, not the metric */
    return 0;
}
