/* client.c: requests to the Kubernetes API server.
 *
 * kube_easy_setup prepares a libcurl handle a caller drives itself (kubernetes_sd's
 * multi loop of LISTs and WATCHes). The synchronous client does the calls the scaler
 * needs: GET and PATCH of the scale subresource and GET of the workload (replicas,
 * annotations), over one handle that keeps its connection between polls, through a
 * transport that tests replace with a script. The error mapper turns an API answer
 * into a message an operator can act on; a 403 names the RBAC rule to add.
 *
 * Both paths take TLS and credentials from the config's httpc_config: the token file
 * is read again for every request (the kubelet rotates projected tokens about
 * hourly, and an old one is rejected).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"

#define DEFAULT_TIMEOUT_MS 10000
#define USER_AGENT         "scrapeship/" SS_VERSION

/* ---- a caller's handle ----------------------------------------------------- */

int kube_easy_setup(const struct kube_config *c, CURL *e, const char *url, struct curl_slist **headers,
                    char *err, size_t errlen)
{
    int rc = httpc_add_header(headers, "Accept: application/json");
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if ((rc = httpc_setup(e, c->http, headers, err, errlen)) != 0)
        return rc;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    return 0;
}

/* ---- paths and errors -------------------------------------------------- */

/* Kubernetes names (DNS subdomains) and API versions only use these characters, so
 * checking them also keeps a manifest from smuggling anything into the URL path. */
static bool valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static bool valid_target(const struct kube_target *t)
{
    if (!t || !valid_name(t->ns, 63) || !valid_name(t->name, 253) || !t->kind || !t->api_version)
        return false;
    size_t kl = strlen(t->kind);
    if (kl == 0 || kl > 63)
        return false;
    for (size_t i = 0; i < kl; i++)
        if (!isalpha((unsigned char)t->kind[i]))
            return false;
    const char *slash = strchr(t->api_version, '/');
    if (slash) {
        char group[254];
        size_t gl = (size_t)(slash - t->api_version);
        if (gl == 0 || gl >= sizeof group)
            return false;
        memcpy(group, t->api_version, gl);
        group[gl] = '\0';
        return valid_name(group, 253) && valid_name(slash + 1, 63) && !strchr(slash + 1, '.');
    }
    return valid_name(t->api_version, 63) && !strchr(t->api_version, '.');
}

/* "Deployment" -> "deployments": the plural for the kinds a ScaledObject targets. */
static void resource_of(const struct kube_target *t, char *buf, size_t cap)
{
    size_t i = 0;
    for (; t->kind && t->kind[i] && i + 2 < cap; i++)
        buf[i] = (char)tolower((unsigned char)t->kind[i]);
    buf[i++] = 's';
    buf[i] = '\0';
}

static void group_of(const struct kube_target *t, char *buf, size_t cap)
{
    const char *slash = t->api_version ? strchr(t->api_version, '/') : NULL;
    snprintf(buf, cap, "%.*s", slash ? (int)(slash - t->api_version) : 0, slash ? t->api_version : "");
}

void kube_rbac_rule(const struct kube_target *t, enum kube_op op, char *buf, size_t cap)
{
    char group[256], res[80];
    group_of(t, group, sizeof group);
    resource_of(t, res, sizeof res);
    /* The scale rule names both verbs: the scaler needs both, and naming only the
     * one that failed would send the operator round twice. */
    snprintf(buf, cap, "apiGroups [\"%s\"], resources [\"%s%s\"], verbs [%s] in namespace %s", group, res,
             op == KUBE_OP_GET_WORKLOAD ? "" : "/scale",
             op == KUBE_OP_GET_WORKLOAD ? "\"get\"" : "\"get\",\"patch\"", t->ns ? t->ns : "?");
}

static const char *op_method(enum kube_op op)
{
    return op == KUBE_OP_PATCH_SCALE ? "PATCH" : "GET";
}

void kube_status_message(const char *body, size_t len, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!body || !len || len > KUBE_MAX_BODY_BYTES)
        return;
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    const char *m = json_string_value(json_object_get(doc, "message"));
    size_t o = 0;
    if (m) {
        for (; *m && o + 1 < cap && o < 300; m++)
            buf[o++] = (*m >= 0x20 && *m < 0x7f && *m != '"') ? *m : (*m == '"' ? '\'' : ' ');
    } else if (!doc) {
        /* not JSON (a proxy's page): its start is still a clue */
        for (size_t i = 0; i < len && o + 1 < cap && o < 120; i++)
            buf[o++] = (body[i] >= 0x20 && body[i] < 0x7f && body[i] != '"') ? body[i] : ' ';
    }
    buf[o] = '\0';
    json_decref(doc);
}

int kube_error_from_status(long status, const char *body, size_t len, const struct kube_target *t,
                           enum kube_op op, struct kube_error *out)
{
    char res[80], smsg[320], what[400];
    resource_of(t, res, sizeof res);
    kube_status_message(body, len, smsg, sizeof smsg);
    snprintf(what, sizeof what, "%s %s/%s%s in namespace %s", op_method(op), res, t->name ? t->name : "?",
             op == KUBE_OP_GET_WORKLOAD ? "" : "/scale", t->ns ? t->ns : "?");
    out->status = status;
    out->retryable = false;
    int rc = SS_EHTTP;
    const char *why;
    char rule[400] = "";
    switch (status) {
    case 401:
        why = "unauthorized: the API server rejected the credentials (expired token?)";
        out->retryable = true; /* the token file is read again next poll */
        rc = SS_EAUTH;
        break;
    case 403:
        why = "forbidden";
        kube_rbac_rule(t, op, rule, sizeof rule);
        rc = SS_EAUTH;
        break;
    case 404:
        why = op == KUBE_OP_GET_WORKLOAD
                  ? "not found"
                  : "not found (no such workload, or its kind has no scale subresource)";
        rc = SS_ENOTFOUND;
        break;
    case 409:
        why = "conflict: the object changed meanwhile; retried next poll";
        out->retryable = true;
        break;
    case 422: why = "rejected as invalid"; break;
    case 429:
        why = "throttled by the API server; retried next poll";
        out->retryable = true;
        break;
    default:
        if (status >= 500) {
            why = "server error; retried next poll";
            out->retryable = true;
        } else {
            why = "unexpected answer";
        }
    }
    int n = snprintf(out->message, sizeof out->message, "%s: HTTP %ld %s", what, status, why);
    if (smsg[0] && n > 0 && (size_t)n < sizeof out->message)
        n += snprintf(out->message + n, sizeof out->message - (size_t)n, " (%s)", smsg);
    if (rule[0] && n > 0 && (size_t)n < sizeof out->message)
        snprintf(out->message + n, sizeof out->message - (size_t)n, "; needs: %s", rule);
    return rc;
}

/* ---- client ------------------------------------------------------------ */

struct kube_client {
    const struct kube_config *cfg;
    CURL *curl;
    kube_transport_fn transport;
    void *transport_ud;
    int64_t timeout_ms;
    struct ss_buf resp;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return ss_buf_append(ud, p, size * n) ? 0 : size * n;
}

static int curl_transport(void *ud, const struct kube_http_request *req, long *status, struct ss_buf *resp,
                          char *err, size_t errlen)
{
    struct kube_client *c = ud;
    if (!c->curl && !(c->curl = curl_easy_init()))
        return SS_ENOMEM;
    CURL *e = c->curl;
    /* reset drops the previous request's options but keeps the live connection */
    curl_easy_reset(e);
    /* the header lines (Authorization included) are already in req */
    int rc = httpc_setup(e, c->cfg->http, NULL, err, errlen);
    if (rc)
        return rc;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cr = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (cr == CURLE_WRITE_ERROR && resp->max && resp->len + CURL_MAX_WRITE_SIZE >= resp->max) {
        snprintf(err, errlen, "answer larger than %zu bytes", resp->max);
        return SS_ELIMIT;
    }
    if (cr != CURLE_OK) {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cr));
        return cr == CURLE_OPERATION_TIMEDOUT ? SS_ETIMEDOUT : SS_EIO;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int kube_client_new(const struct kube_config *cfg, struct kube_client **out)
{
    *out = NULL;
    if (!cfg || !cfg->server || !cfg->http)
        return SS_EINVAL;
    struct kube_client *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    c->cfg = cfg;
    c->transport = curl_transport;
    c->transport_ud = c;
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    ss_buf_init(&c->resp, KUBE_MAX_BODY_BYTES);
    *out = c;
    return 0;
}

void kube_client_set_transport(struct kube_client *c, kube_transport_fn fn, void *ud)
{
    c->transport = fn ? fn : curl_transport;
    c->transport_ud = fn ? ud : c;
}

void kube_client_set_timeout(struct kube_client *c, int64_t timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

void kube_client_free(struct kube_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    ss_buf_free(&c->resp);
    free(c);
}

/* One API call; on 2xx the body is in c->resp. */
static int request(struct kube_client *c, const struct kube_target *t, enum kube_op op, const char *body,
                   size_t body_len, struct kube_error *err)
{
    memset(err, 0, sizeof *err);
    if (!valid_target(t)) {
        snprintf(err->message, sizeof err->message,
                 "invalid target %s %s/%s: names must be lowercase DNS names", t && t->kind ? t->kind : "?",
                 t && t->ns ? t->ns : "?", t && t->name ? t->name : "?");
        return SS_EINVAL;
    }
    char res[80], path[800];
    resource_of(t, res, sizeof res);
    bool core = !strchr(t->api_version, '/');
    snprintf(path, sizeof path, "%s/%s/%s/namespaces/%s/%s/%s%s", c->cfg->server, core ? "api" : "apis",
             t->api_version, t->ns, res, t->name, op == KUBE_OP_GET_WORKLOAD ? "" : "/scale");

    /* Accept, Content-Type, then the config's lines: Authorization with the token
     * file read now (it rotates). A header the file would forge is refused here. */
    struct curl_slist *hl = NULL;
    char herr[300] = "";
    int rc = httpc_add_header(&hl, "Accept: application/json");
    if (!rc && body)
        rc = httpc_add_header(&hl, "Content-Type: application/merge-patch+json");
    if (!rc)
        rc = httpc_headers(c->cfg->http, &hl, herr, sizeof herr);
    if (rc) {
        httpc_headers_free(hl);
        snprintf(err->message, sizeof err->message, "%s", herr[0] ? herr : ss_strerror(rc));
        err->retryable = rc == SS_EAUTH; /* the file is read again next time */
        return rc;
    }
    struct kube_http_request req = {op_method(op), path, hl, body, body_len};
    long status = 0;
    char terr[512] = "";
    ss_buf_reset(&c->resp);
    rc = c->transport(c->transport_ud, &req, &status, &c->resp, terr, sizeof terr);
    httpc_headers_free(hl);
    if (rc) {
        snprintf(err->message, sizeof err->message, "%s %.300s: %.300s", req.method, path,
                 terr[0] ? terr : ss_strerror(rc));
        err->retryable = rc != SS_ENOMEM;
        return rc;
    }
    if (status < 200 || status > 299)
        return kube_error_from_status(status, c->resp.data, c->resp.len, t, op, err);
    return 0;
}

/* An integer field that must fit a replica count; absent means 0 (omitempty). */
static int replicas_field(json_t *obj, const char *key, int32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return SS_EPARSE;
    *out = (int32_t)json_integer_value(v);
    return 0;
}

static int parse_scale(struct kube_client *c, const struct kube_target *t, struct kube_scale *out,
                       struct kube_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, &je);
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    int rc = SS_EPARSE;
    if (json_is_object(doc) && (!kind || strcmp(kind, "Scale") == 0) &&
        replicas_field(json_object_get(doc, "spec"), "replicas", &out->spec_replicas) == 0 &&
        replicas_field(json_object_get(doc, "status"), "replicas", &out->status_replicas) == 0)
        rc = 0;
    else
        snprintf(err->message, sizeof err->message,
                 "%s/%s/scale in namespace %s: the answer is not a Scale object", t->kind, t->name, t->ns);
    json_decref(doc);
    return rc;
}

int kube_get_scale(struct kube_client *c, const struct kube_target *t, struct kube_scale *out,
                   struct kube_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = request(c, t, KUBE_OP_GET_SCALE, NULL, 0, err);
    return rc ? rc : parse_scale(c, t, out, err);
}

int kube_patch_scale(struct kube_client *c, const struct kube_target *t, int32_t replicas,
                     struct kube_scale *out, struct kube_error *err)
{
    struct kube_scale tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    if (replicas < 0) {
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "refusing to set %d replicas", (int)replicas);
        return SS_EINVAL;
    }
    char body[64];
    int n = snprintf(body, sizeof body, "{\"spec\":{\"replicas\":%d}}", (int)replicas);
    int rc = request(c, t, KUBE_OP_PATCH_SCALE, body, (size_t)n, err);
    return rc ? rc : parse_scale(c, t, out, err);
}

int kube_get_workload(struct kube_client *c, const struct kube_target *t, const char *annotation_prefix,
                      struct kube_workload *out, struct kube_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = request(c, t, KUBE_OP_GET_WORKLOAD, NULL, 0, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *doc = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, &je);
    json_t *meta = json_object_get(doc, "metadata");
    rc = SS_EPARSE;
    if (!json_is_object(doc) || !json_is_object(meta) ||
        replicas_field(json_object_get(doc, "spec"), "replicas", &out->spec_replicas) != 0 ||
        replicas_field(json_object_get(doc, "status"), "readyReplicas", &out->ready_replicas) != 0) {
        snprintf(err->message, sizeof err->message, "%s %s/%s: the answer is not a workload object", t->kind,
                 t->ns, t->name);
        goto done;
    }
    size_t used = 0, dropped = 0;
    const char *prefix = annotation_prefix ? annotation_prefix : "";
    size_t plen = strlen(prefix);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "annotations"), k, v)
    {
        /* only the caller's keys: the store is fixed */
        if (strncmp(k, prefix, plen) != 0 || !json_is_string(v))
            continue;
        size_t kl = strlen(k), vl = json_string_length(v);
        size_t cap = sizeof out->annotations / sizeof out->annotations[0];
        if (out->n_annotations == cap || used + kl + vl + 2 > sizeof out->strings) {
            dropped++;
            continue;
        }
        char *ks = out->strings + used;
        memcpy(ks, k, kl + 1);
        used += kl + 1;
        char *vs = out->strings + used;
        memcpy(vs, json_string_value(v), vl);
        vs[vl] = '\0';
        used += vl + 1;
        out->annotations[out->n_annotations].key = ks;
        out->annotations[out->n_annotations].value = vs;
        out->n_annotations++;
    }
    if (dropped)
        ss_warn("kube", "%s %s/%s: %zu %s annotations ignored (more than %zu, or over %zu bytes)", t->kind,
                t->ns, t->name, dropped, prefix, sizeof out->annotations / sizeof out->annotations[0],
                sizeof out->strings);
    rc = 0;
done:
    json_decref(doc);
    return rc;
}
