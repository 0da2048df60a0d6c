/* query.c: the Prometheus HTTP API client: an instant query, optionally SigV4-signed.
 *
 * GET {server}/api/v1/query?query=<q>&time=<RFC 3339> as KEDA's prometheus scaler
 * sends it (or POST with a form body). Every query character but the unreserved ones
 * is percent-encoded (%20 for a space, never '+') so the URL the signer canonicalises
 * is exactly the URL sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "awssign.h"
#include "scaler.h"
#include "sstext.h"

#define MAX_BODY (16u << 20)

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct ss_buf *b = ud;
    return ss_buf_append(b, p, size * n) ? 0 : size * n;
}

struct hdrs {
    struct curl_slist *list;
    bool oom;
};

static int add_header(void *ctx, const char *line)
{
    struct hdrs *h = ctx;
    struct curl_slist *n = curl_slist_append(h->list, line);
    if (!n) {
        h->oom = true;
        return SS_ENOMEM;
    }
    h->list = n;
    return 0;
}

int scaler_query(const struct scaler_query_req *q, long *status, struct ss_buf *body, char *err,
                 size_t errlen)
{
    *status = 0;
    struct ss_buf url, form;
    ss_buf_init(&url, 64 * 1024);
    ss_buf_init(&form, 64 * 1024);
    struct hdrs h = {0};
    CURL *e = NULL;
    int rc = SS_ENOMEM;
    size_t sl = strlen(q->server);
    while (sl && q->server[sl - 1] == '/')
        sl--;
    int64_t at = q->time_ms ? q->time_ms : ss_now_ms();
    time_t t = (time_t)(at / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[48], secs[32];
    strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when, sizeof when, "%s.%03dZ", secs, (int)(at % 1000)); /* RFC 3339 with ms */

    struct ss_buf *params = q->post ? &form : &url;
    if (ss_buf_append(&url, q->server, sl) || ss_buf_append_str(&url, "/api/v1/query"))
        goto fail;
    if (!q->post && ss_buf_append(&url, "?", 1))
        goto fail;
    if (ss_buf_append_str(params, "query=") || ss_percent_encode(params, q->query, strlen(q->query), 0) ||
        ss_buf_append_str(params, "&time=") || ss_percent_encode(params, when, strlen(when), 0))
        goto fail;
    for (size_t i = 0; i < q->nparams; i++)
        if (ss_buf_append(params, "&", 1) ||
            ss_percent_encode(params, q->params[i].key, strlen(q->params[i].key), 0) ||
            ss_buf_append(params, "=", 1) ||
            ss_percent_encode(params, q->params[i].value, strlen(q->params[i].value), 0))
            goto fail;

    e = curl_easy_init();
    if (!e)
        goto fail;
    ss_buf_reset(body);
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q->timeout_ms > 0 ? q->timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, q->insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, q->insecure_skip_verify ? 0L : 2L);
    if (q->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, q->ca_file);
    if (q->basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, q->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, q->basic_pass ? q->basic_pass : "");
    }
    if (q->post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form.data);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form.len);
        add_header(&h, "Content-Type: application/x-www-form-urlencoded");
    }
    add_header(&h, "Accept: application/json");
    for (size_t i = 0; i < q->nheaders; i++) {
        char line[4096];
        snprintf(line, sizeof line, "%s: %s", q->headers[i].key, q->headers[i].value);
        add_header(&h, line);
    }
    if (q->bearer_token) {
        size_t n = strlen(q->bearer_token) + 32;
        char *line = malloc(n);
        if (line) {
            snprintf(line, n, "Authorization: Bearer %s", q->bearer_token);
            add_header(&h, line);
            ss_free_secret(line);
        }
    }
    if (q->signer) {
        rc = aws_signer_sign(q->signer, q->post ? "POST" : "GET", url.data, q->post ? form.data : NULL,
                             q->post ? form.len : 0, add_header, &h);
        if (rc) {
            snprintf(err, errlen, "signing the query failed: %s", ss_strerror(rc));
            goto fail;
        }
    }
    if (h.oom) {
        rc = SS_ENOMEM;
        goto fail;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h.list);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cr = curl_easy_perform(e);
    if (cr != CURLE_OK) {
        snprintf(err, errlen, "query to %.*s failed: %s", (int)sl, q->server,
                 errbuf[0] ? errbuf : curl_easy_strerror(cr));
        rc = SS_EIO;
        goto fail;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    rc = 0;
fail:
    if (rc == SS_ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    curl_slist_free_all(h.list);
    if (e)
        curl_easy_cleanup(e);
    ss_buf_free(&url);
    ss_buf_free(&form);
    return rc;
}
