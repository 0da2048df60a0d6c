/* scaler_int.h: declarations shared by the scaler module's files, not public. */
#ifndef SCALER_INT_H
#define SCALER_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* KEDA hands the HPA milli-quantities: resource.NewMilliQuantity(int64(x*1000)),
 * both for metric values (GenerateMetricInMili) and for targets
 * (GetMetricTargetMili). The conversion truncates toward zero. Go leaves
 * out-of-range conversions implementation-defined; we saturate instead. */
static inline int64_t scaler__milli(double x)
{
    double m = x * 1000.0;
    if (isnan(m))
        return 0;
    if (m >= 9223372036854775807.0)
        return INT64_MAX;
    if (m <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)m;
}

/* formula.c: compile a scalingModifiers formula over `names` (trigger names in
 * config order; NULL entries cannot be referenced). Nodes live in `arena`.
 * Returns 0, or SS_ECONFIG / SS_ELIMIT with a message in err, or SS_ENOMEM. */
struct ss_arena;
struct scaler_formula;
int scaler__formula_compile(const char *text, const char *const *names, size_t n_names,
                            struct ss_arena *arena, const struct scaler_formula **out, char *err,
                            size_t errcap);
/* values[i] is trigger i's value. Division by zero gives +-Inf or NaN, as in Go. */
double scaler__formula_eval(const struct scaler_formula *f, const double *values);

/* decide.c, for tests that replay Kubernetes' own cases with a non-nil, empty
 * `recommendations` (an HPA that already runs, so its next sync is not seeded):
 * mark the HPA as existing with no history, due to sync now. */
struct scaler_state;
void scaler__state_hpa_running(struct scaler_state *st);

#endif
