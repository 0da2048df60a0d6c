/* watch.c: LIST and WATCH on the wire: request URLs, LIST pages, and watch streams.
 *
 * A WATCH answer is a chunked stream of JSON objects, one per line
 * ({"type":"ADDED","object":{...}}), for as long as timeoutSeconds lets it run. The
 * stream type below cuts it into lines with a bound on one line, so a server cannot
 * make us buffer without limit; decoding a line gives the event type, the object,
 * its resourceVersion and, for ERROR events, the Status code (410 Gone: the
 * requested history was compacted away, the caller must LIST again). What to do
 * with events (stores, relists, backoff) is the caller's: kubernetes_sd's reflector.
 */
#include <stdio.h>
#include <string.h>

#include "kube.h"
#include "sstext.h"

static int param(struct ss_buf *u, const char *name, const char *value)
{
    int rc = ss_buf_append_str(u, name);
    return rc ? rc : ss_percent_encode(u, value, strlen(value), 0);
}

int kube_watch_url(const struct kube_config *c, const struct kube_watch_query *q, struct ss_buf *u)
{
    int rc = ss_buf_append_str(u, c->server);
    if (!rc)
        rc = q->group_version ? ss_buf_printf(u, "/apis/%s", q->group_version)
                              : ss_buf_append_str(u, "/api/v1");
    if (!rc && q->ns) {
        rc = param(u, "/namespaces/", q->ns);
        if (!rc)
            rc = ss_buf_printf(u, "/%s", q->resource);
    } else if (!rc) {
        rc = ss_buf_printf(u, "/%s", q->resource);
    }
    if (rc)
        return rc;
    if (!q->watch) {
        rc = ss_buf_printf(u, "?limit=%u", q->limit ? q->limit : 500);
        if (!rc && q->continue_token)
            rc = param(u, "&continue=", q->continue_token);
    } else {
        rc = ss_buf_printf(u, "?allowWatchBookmarks=true&timeoutSeconds=%lld&watch=true",
                           (long long)q->timeout_s);
        if (!rc)
            rc = param(u, "&resourceVersion=", q->resource_version ? q->resource_version : "");
    }
    if (!rc && q->label_selector && *q->label_selector)
        rc = param(u, "&labelSelector=", q->label_selector);
    if (!rc && q->field_selector && *q->field_selector)
        rc = param(u, "&fieldSelector=", q->field_selector);
    return rc;
}

static const char *str_or_empty(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int kube_list_page_decode(const char *body, size_t len, json_t **doc, struct kube_list_page *out, char *err,
                          size_t errlen)
{
    json_error_t jerr;
    /* JSON_ALLOW_NUL: one odd annotation must not make the whole list undecodable */
    *doc = json_loadb(body ? body : "", len, JSON_ALLOW_NUL, &jerr);
    json_t *items = json_object_get(*doc, "items");
    if (!*doc || !json_is_array(items)) {
        snprintf(err, errlen, "undecodable LIST answer: %s", *doc ? "no items" : jerr.text);
        json_decref(*doc);
        *doc = NULL;
        return SS_EPARSE;
    }
    json_t *md = json_object_get(*doc, "metadata");
    out->items = items;
    out->continue_token = str_or_empty(md, "continue");
    out->resource_version = str_or_empty(md, "resourceVersion");
    return 0;
}

int kube_watch_event_decode(const char *line, size_t len, json_t **doc, struct kube_watch_event *ev,
                            char *err, size_t errlen)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    memset(ev, 0, sizeof *ev);
    json_error_t jerr;
    *doc = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    const char *type = str_or_empty(*doc, "type");
    json_t *obj = json_object_get(*doc, "object");
    if (!*doc || !*type || !json_is_object(obj)) {
        snprintf(err, errlen, "%s", *doc ? "no type or object" : jerr.text);
        json_decref(*doc);
        *doc = NULL;
        return SS_EPARSE;
    }
    ev->type = KUBE_EVENT_UNKNOWN;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(type, names[i]) == 0)
            ev->type = (enum kube_event_type)i;
    ev->type_name = type;
    ev->object = obj;
    ev->resource_version = str_or_empty(json_object_get(obj, "metadata"), "resourceVersion");
    ev->message = "";
    if (ev->type == KUBE_EVENT_ERROR) { /* the object is an apimachinery Status */
        ev->code = (long)json_integer_value(json_object_get(obj, "code"));
        ev->message = str_or_empty(obj, "message");
    }
    return 0;
}

/* ---- the stream ------------------------------------------------------------------ */

void kube_watch_stream_init(struct kube_watch_stream *s, size_t max_event_bytes)
{
    ss_buf_init(&s->buf, max_event_bytes);
    s->scanned = 0;
}

void kube_watch_stream_reset(struct kube_watch_stream *s)
{
    ss_buf_reset(&s->buf);
    s->scanned = 0;
}

void kube_watch_stream_free(struct kube_watch_stream *s)
{
    ss_buf_free(&s->buf);
    s->scanned = 0;
}

int kube_watch_stream_feed(struct kube_watch_stream *s, const char *p, size_t n,
                           int (*on_line)(void *ud, const char *line, size_t len), void *ud)
{
    int rc = ss_buf_append(&s->buf, p, n);
    if (rc)
        return rc; /* SS_ELIMIT: one event larger than the bound */
    if (!s->buf.data)
        return 0;
    size_t start = 0;
    for (;;) {
        char *nl = memchr(s->buf.data + s->scanned, '\n', s->buf.len - s->scanned);
        if (!nl)
            break;
        size_t end = (size_t)(nl - s->buf.data), len = end - start;
        const char *line = s->buf.data + start;
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        start = end + 1;
        s->scanned = start;
        if (len && (rc = on_line(ud, line, len)) != 0) {
            kube_watch_stream_reset(s);
            return rc;
        }
    }
    if (start) {
        memmove(s->buf.data, s->buf.data + start, s->buf.len - start);
        s->buf.len -= start;
        s->buf.data[s->buf.len] = '\0';
    }
    s->scanned = s->buf.len;
    return 0;
}
