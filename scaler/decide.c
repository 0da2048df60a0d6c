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
 * One call models one KEDA poll and one HPA sync at the same instant.
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

/* doFallback: the metric KEDA makes up so that the HPA lands on the fallback count. */
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
    /* Target.AverageValue.AsApproximateFloat64() of the milli-quantity target */
    double norm = (double)scaler__milli(t->threshold) / 1000.0;
    *usage = scaler__milli(norm * reps);
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
static int32_t stabilize_behavior(const struct scaler_object *so, struct scaler_state *st, int64_t now,
                                  int32_t cur, int32_t desired)
{
    int32_t up = desired, down = desired;
    int64_t up_cut = now - (int64_t)so->scale_up.stabilization_window_seconds * 1000;
    int64_t down_cut = now - (int64_t)so->scale_down.stabilization_window_seconds * 1000;
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
static void store_scale_event(const struct scaler_object *so, struct scaler_state *st, int64_t now,
                              int32_t prev, int32_t next)
{
    if (!so->has_behavior || prev == next)
        return;
    bool up = next > prev;
    const struct scaler_rules *r = up ? &so->scale_up : &so->scale_down;
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

static void hpa(const struct scaler_object *so, struct scaler_state *st, const struct scaler_input *in,
                bool cooling, struct scaler_decision *out, struct explain *ex)
{
    int64_t now = in->now_ms;
    int32_t cur = in->current_replicas;
    int32_t ready = in->ready_replicas >= 0 ? in->ready_replicas : cur;
    int32_t hpa_min = so->min_replicas > 0 ? so->min_replicas : 1; /* GetHPAMinReplicas */
    int32_t hpa_max = so->max_replicas;

    /* reconcileAutoscaler: out-of-range replicas are corrected without consulting
     * the metrics (and without recording a recommendation). */
    if (cur > hpa_max || cur < hpa_min) {
        int32_t to = cur > hpa_max ? hpa_max : hpa_min;
        say(ex, "HPA: current %d is %s %s %d: set to %d", (int)cur, cur > hpa_max ? "above" : "below",
            cur > hpa_max ? "maxReplicaCount" : "HPA minimum", (int)to, (int)to);
        store_scale_event(so, st, now, cur, to);
        finish(out, cur, to, cur > hpa_max ? SCALER_RULE_CLAMP_MAX : SCALER_RULE_CLAMP_MIN);
        return;
    }

    /* computeReplicasForMetrics */
    struct proposal props[SCALER_MAX_TRIGGERS];
    size_t n = so->n_triggers, invalid = 0, first_invalid = 0;
    int32_t replicas = 0;
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct scaler_trigger *t = &so->triggers[i];
        const struct scaler_trigger_result *r = &in->results[i];
        struct proposal *p = &props[i];
        memset(p, 0, sizeof *p);
        if (r->ok) {
            st->failures[i] = 0;
            propose(t, cur, ready, scaler__milli(r->value), p);
        } else {
            if (st->failures[i] < INT32_MAX)
                st->failures[i]++;
            p->error = r->error ? r->error : "query failed";
            int64_t usage;
            if (so->has_fallback && st->failures[i] > so->fallback_failure_threshold &&
                fallback_metric(so, t, cur, ready, &usage)) {
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
        trigger_label(so, first_invalid, label, sizeof label);
        say(ex, "%s failed (%.80s, failure %d%s)", label, props[first_invalid].error,
            (int)st->failures[first_invalid],
            so->has_fallback ? (st->failures[first_invalid] > so->fallback_failure_threshold
                                    ? ", fallback unusable"
                                    : ", fallback after failureThreshold")
                             : "");
        say(ex,
            invalid >= n ? "; no metric for the HPA: keep %d"
                         : "; the other metrics would scale down: keep %d",
            (int)cur);
        finish(out, cur, cur, SCALER_RULE_ERROR);
        return;
    }

    const struct proposal *bp = &props[best];
    trigger_label(so, (size_t)best, label, sizeof label);
    enum scaler_rule rule = bp->fallback    ? SCALER_RULE_FALLBACK
                            : bp->tolerance ? SCALER_RULE_TOLERANCE
                                            : SCALER_RULE_METRIC;
    if (bp->fallback)
        say(ex, "%s failed %d times (> failureThreshold %d): fallback metric; ", label,
            (int)st->failures[best], (int)so->fallback_failure_threshold);
    if (so->triggers[best].metric_type == SCALER_METRIC_AVERAGE_VALUE)
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
    if (!so->has_behavior) {
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
                : limit_rule == SCALER_RULE_CLAMP_MAX  ? "; current %d, maxReplicaCount %d"
                                                       : "; current %d, HPA minimum %d",
                (int)cur, (int) final);
    } else {
        /* normalizeDesiredReplicasWithBehaviors */
        stabilized = stabilize_behavior(so, st, now, cur, desired);
        final = stabilized;
        if (stabilized > cur) {
            int32_t lim = policy_limit(&so->scale_up, st, now, cur, true);
            if (lim < cur)
                lim = cur;
            int32_t max_allowed = hpa_max;
            limit_rule = SCALER_RULE_CLAMP_MAX;
            if (max_allowed > lim) {
                max_allowed = lim;
                limit_rule = SCALER_RULE_POLICY_LIMIT;
            }
            if (stabilized > max_allowed)
                final = max_allowed;
        } else if (stabilized < cur) {
            int32_t lim = policy_limit(&so->scale_down, st, now, cur, false);
            if (lim > cur)
                lim = cur;
            int32_t min_allowed = hpa_min;
            limit_rule = SCALER_RULE_CLAMP_MIN;
            if (min_allowed < lim) {
                min_allowed = lim;
                limit_rule = SCALER_RULE_POLICY_LIMIT;
            }
            if (stabilized < min_allowed)
                final = min_allowed;
        }
        if (stabilized != desired)
            say(ex, "; %s stabilization window (%ds) gives %d", desired >= cur ? "scale-up" : "scale-down",
                (int)(desired >= cur ? so->scale_up.stabilization_window_seconds
                                     : so->scale_down.stabilization_window_seconds),
                (int)stabilized);
        if (final != stabilized)
            say(ex,
                limit_rule == SCALER_RULE_POLICY_LIMIT ? "; scaling policies allow %d"
                : limit_rule == SCALER_RULE_CLAMP_MAX  ? "; maxReplicaCount %d"
                                                       : "; HPA minimum %d",
                (int) final);
    }
    if (final != stabilized)
        rule = limit_rule;
    else if (stabilized != desired)
        rule = SCALER_RULE_STABILIZATION;
    if (final == cur && cooling) {
        rule = SCALER_RULE_COOLDOWN;
        say(ex, "; no trigger active, %s not over yet",
            st->has_last_active ? "cooldownPeriod" : "initialCooldownPeriod");
    }
    say(ex, " => %d", (int) final);
    store_scale_event(so, st, now, cur, final);
    finish(out, cur, final, rule);
}

int scaler_decide(const struct scaler_object *so, struct scaler_state *st, const struct scaler_input *in,
                  struct scaler_decision *out)
{
    if (!so || !st || !in || !out)
        return SS_EINVAL;
    if (in->n_results != so->n_triggers || (so->n_triggers && !in->results) ||
        st->n_triggers != so->n_triggers || so->n_triggers > SCALER_MAX_TRIGGERS ||
        in->current_replicas < 0 || (in->n_annotations && !in->annotations))
        return SS_EINVAL;

    memset(out, 0, sizeof *out);
    out->metric_replicas = -1;
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

    /* KEDA's scale executor */
    int32_t min = so->min_replicas;
    bool cooling = false;
    if (active) {
        if ((so->has_idle_replicas && cur < min) || cur == 0) {
            /* scaleFromZeroOrIdle */
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
        if (elapsed) {
            int32_t to = so->has_idle_replicas ? so->idle_replicas : min;
            say(&ex, "no trigger active; %s elapsed: scale to %s %d",
                st->has_last_active ? "cooldownPeriod" : "initialCooldownPeriod",
                so->has_idle_replicas ? "idleReplicaCount" : "minReplicaCount", (int)to);
            finish(out, cur, to, SCALER_RULE_DEACTIVATION);
            return 0;
        }
        cooling = true;
    } else if (!so->has_idle_replicas && cur < min) {
        say(&ex, "no trigger active and %d is below minReplicaCount: set %d", (int)cur, (int)min);
        finish(out, cur, min, SCALER_RULE_CLAMP_MIN);
        return 0;
    }

    /* The HPA does nothing for a target at 0 replicas ("ScalingDisabled"). */
    if (cur == 0) {
        if (any_err)
            say(&ex, "a trigger failed and the target is at 0 (the HPA is disabled at 0): keep 0");
        else
            say(&ex, "no trigger active: stay at 0");
        finish(out, cur, 0, any_err ? SCALER_RULE_ERROR : SCALER_RULE_INACTIVE);
        return 0;
    }
    hpa(so, st, in, cooling, out, &ex);
    return 0;
}
