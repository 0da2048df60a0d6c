/* fuzz_scaledobject.c: arbitrary bytes into the KEDA manifest loader and the
 * Prometheus query-result reader; every ScaledObject that loads is then driven
 * through a few decisions with values taken from the same bytes, so odd but valid
 * configurations (huge policies, zero windows, idle/min combinations) reach the
 * decision engine too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "scaler.h"

static double pick_value(const uint8_t *data, size_t size, size_t i)
{
    static const double specials[] = {0, 1, -1, 0.275, 1e300, -1e300, 2.002, 100, 1e-9};
    if (size == 0)
        return 0;
    uint8_t b = data[(i * 7) % size];
    if (b < 32)
        return specials[b % (sizeof specials / sizeof specials[0])];
    return (double)b * (double)(data[(i * 13 + 1) % size] + 1) / 16.0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    double v;

    (void)scaler_promresult_parse(200, (const char *)data, size, true, &v, err, sizeof err);
    (void)scaler_promresult_parse(200, (const char *)data, size, false, &v, err, sizeof err);
    (void)scaler_promresult_parse(503, (const char *)data, size, true, &v, err, sizeof err);

    struct scaler_config *cfg = NULL;
    if (scaler_config_load_string((const char *)data, size, "fuzz", &cfg, err, sizeof err) != 0)
        return 0;
    for (size_t o = 0; o < cfg->n_objects && o < 4; o++) {
        const struct scaler_object *so = &cfg->objects[o];
        struct scaler_state *st = NULL;
        if (scaler_state_new(so, 0, &st) != 0)
            continue;
        struct scaler_trigger_result res[SCALER_MAX_TRIGGERS];
        int32_t cur = (int32_t)(size % 7);
        for (int step = 0; step < 12; step++) {
            for (size_t t = 0; t < so->n_triggers; t++) {
                double x = pick_value(data, size, (size_t)step * 31 + t);
                res[t].ok = ((size_t)step + t + size) % 5 != 0;
                res[t].value = x;
                res[t].error = res[t].ok ? NULL : "fuzz";
            }
            struct scaler_annotation ann = {"autoscaling.keda.sh/paused", "false"};
            struct scaler_input in = {
                .now_ms = (int64_t)step * 15000 + (int64_t)(size % 1000) * 1000,
                .current_replicas = cur,
                .ready_replicas = step % 3 == 0 ? -1 : cur / 2,
                .results = res,
                .n_results = so->n_triggers,
                .annotations = &ann,
                .n_annotations = step == 5 ? 1 : 0,
            };
            struct scaler_decision d;
            if (scaler_decide(so, st, &in, &d) != 0)
                break;
            if (d.replicas < 0)
                __builtin_trap(); /* a negative replica count is never a valid answer */
            if (strlen(d.explanation) >= sizeof d.explanation)
                __builtin_trap();
            cur = d.replicas;
        }
        scaler_state_free(st);
    }
    scaler_config_free(cfg);
    return 0;
}
