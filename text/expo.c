/* expo.c: names and label values as the Prometheus text exposition format has them.
 *
 * Legacy name rules (prometheus/common model: label names [a-zA-Z_][a-zA-Z0-9_]*,
 * metric names the same plus ':') and the format's three escapes in a label value
 * (\\, \", \n). Everything that prints a series or a self-metric line writes label
 * values through here, so a quote in a job name or a remote's URL cannot break a
 * line. */
#include <string.h>

#include "text_int.h"

static bool name_valid(const char *s, size_t len, bool colons)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

bool ss_http_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool ss_http_token_valid(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ss_http_tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool ss_label_name_valid(const char *s, size_t len)
{
    return name_valid(s, len, false);
}

bool ss_metric_name_valid(const char *s, size_t len)
{
    return name_valid(s, len, true);
}

/* Runs without an escape are appended whole: values rarely hold any. */
static int escape_value(struct ss_buf *out, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '"': esc = "\\\""; break;
        case '\n': esc = "\\n"; break;
        default: continue;
        }
        int rc = ss_buf_append(out, s + run, i - run);
        if (!rc)
            rc = ss_buf_append(out, esc, 2);
        if (rc)
            return rc;
        run = i + 1;
    }
    return ss_buf_append(out, s + run, len - run);
}

int ss_escape_label_value(struct ss_buf *out, const char *s, size_t len)
{
    size_t len0 = out->len;
    return text__rollback(out, len0, escape_value(out, s, len));
}

int ss_render_series(struct ss_buf *out, const struct ss_label *labels, size_t n)
{
    size_t len0 = out->len;
    struct ss_str name = {"", 0};
    for (size_t i = 0; i < n; i++)
        if (ss_str_eq_cstr(labels[i].name, "__name__"))
            name = labels[i].value;
    int rc = ss_buf_append(out, name.p, name.len);
    bool first = true;
    for (size_t i = 0; i < n && !rc; i++) {
        if (ss_str_eq_cstr(labels[i].name, "__name__"))
            continue;
        rc = ss_buf_append(out, first ? "{" : ",", 1);
        first = false;
        if (!rc)
            rc = ss_buf_append(out, labels[i].name.p, labels[i].name.len);
        if (!rc)
            rc = ss_buf_append(out, "=\"", 2);
        if (!rc)
            rc = escape_value(out, labels[i].value.p, labels[i].value.len);
        if (!rc)
            rc = ss_buf_append(out, "\"", 1);
    }
    if (!rc && !first)
        rc = ss_buf_append(out, "}", 1);
    return text__rollback(out, len0, rc);
}
