/* log.c: one-line structured logs on stderr.
 *
 * logfmt by default (`ts=2026-01-02T03:04:05.678Z level=info component=scrape msg="..."`),
 * JSON lines with ss_log_set_json. A line is built in a stack buffer and written with
 * one write(2), so lines from different threads never interleave. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ss.h"

static enum ss_log_level log_level = SS_LOG_INFO;
static bool log_json = false;

void ss_log_set_level(enum ss_log_level level)
{
    log_level = level;
}
void ss_log_set_json(bool json)
{
    log_json = json;
}
bool ss_log_enabled(enum ss_log_level level)
{
    return level >= log_level;
}

static const char *level_name(enum ss_log_level l)
{
    switch (l) {
    case SS_LOG_DEBUG: return "debug";
    case SS_LOG_INFO: return "info";
    case SS_LOG_WARN: return "warn";
    default: return "error";
    }
}

/* Append s to out escaping quotes, backslashes and control bytes. */
static size_t put_escaped(char *out, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c == '\n') {
            out[pos++] = '\\';
            out[pos++] = 'n';
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

void ss_log(enum ss_log_level level, const char *component, const char *fmt, ...)
{
    if (!ss_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);

    char line[4608];
    size_t pos;
    if (log_json)
        pos = (size_t)snprintf(line, sizeof line,
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"", when,
                               level_name(level), component ? component : "main");
    else
        pos = (size_t)snprintf(line, sizeof line, "ts=%s level=%s component=%s msg=\"", when,
                               level_name(level), component ? component : "main");
    pos = put_escaped(line, pos, sizeof line - 4, msg);
    if (log_json)
        line[pos++] = '"', line[pos++] = '}';
    else
        line[pos++] = '"';
    line[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}
