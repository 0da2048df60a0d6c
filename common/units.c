/* units.c: Prometheus duration and size syntax, and clocks. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ss.h"

/* model.ParseDuration: units y w d h m s ms, each at most once, largest first. */
int ss_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {
        {"y", 365LL * 24 * 3600 * 1000},
        {"w", 7LL * 24 * 3600 * 1000},
        {"d", 24LL * 3600 * 1000},
        {"h", 3600LL * 1000},
        {"m", 60LL * 1000},
        {"s", 1000},
        {"ms", 1},
    };
    if (!s || !*s)
        return SS_EINVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    int64_t total = 0;
    int last = -1;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return SS_EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return SS_EINVAL;
            n = n * 10 + (*p++ - '0');
        }
        int idx = -1;
        /* "ms" must be tried before "m". */
        if (p[0] == 'm' && p[1] == 's') {
            idx = 6;
            p += 2;
        } else {
            for (int i = 0; i < 6; i++)
                if (*p == units[i].u[0]) {
                    idx = i;
                    p++;
                    break;
                }
        }
        if (idx < 0 || idx <= last)
            return SS_EINVAL;
        last = idx;
        if (n > INT64_MAX / units[idx].ms || total > INT64_MAX - n * units[idx].ms)
            return SS_EINVAL;
        total += n * units[idx].ms;
    }
    *out_ms = total;
    return 0;
}

int ss_format_duration_ms(char *buf, size_t cap, int64_t ms)
{
    if (ms == 0)
        return snprintf(buf, cap, "0s");
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {
        {"y", 365LL * 24 * 3600 * 1000},
        {"w", 7LL * 24 * 3600 * 1000},
        {"d", 24LL * 3600 * 1000},
        {"h", 3600LL * 1000},
        {"m", 60LL * 1000},
        {"s", 1000},
        {"ms", 1},
    };
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && pos < cap; i++) {
        if (ms >= units[i].ms) {
            int64_t n = ms / units[i].ms;
            ms -= n * units[i].ms;
            pos += (size_t)snprintf(buf + pos, cap - pos, "%lld%s", (long long)n, units[i].u);
        }
    }
    return (int)pos;
}

int ss_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return SS_EINVAL;
    uint64_t n = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return SS_EINVAL;
    while (isdigit((unsigned char)*p)) {
        if (n > (UINT64_MAX - 9) / 10)
            return SS_EINVAL;
        n = n * 10 + (uint64_t)(*p++ - '0');
    }
    static const struct {
        const char *u;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1ULL << 10},
        {"KiB", 1ULL << 10},
        {"MB", 1ULL << 20},
        {"MiB", 1ULL << 20},
        {"GB", 1ULL << 30},
        {"GiB", 1ULL << 30},
        {"TB", 1ULL << 40},
        {"TiB", 1ULL << 40},
        {"PB", 1ULL << 50},
        {"PiB", 1ULL << 50},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].u) == 0) {
            if (n && units[i].mult > UINT64_MAX / n)
                return SS_EINVAL;
            *out = n * units[i].mult;
            return 0;
        }
    }
    return SS_EINVAL;
}

int64_t ss_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec ss_mono_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int ss_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    return rc ? SS_ENOMEM : SS_OK;
}

int64_t ss_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double ss_mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool ss_is_integral(double v)
{
    /* NaN fails both comparisons; from 2^53 on every double is an integer, and below
     * it the value fits an int64_t, so the cast truncates exactly. */
    const double two53 = 9007199254740992.0;
    if (!(v > -two53 && v < two53))
        return v == v && v - v == 0; /* not NaN, not infinite */
    return (double)(int64_t)v == v;
}
