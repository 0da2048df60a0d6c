/* scaler_int.h: declarations shared by the scaler module's files, not public. */
#ifndef SCALER_INT_H
#define SCALER_INT_H

#include <math.h>
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

#endif
