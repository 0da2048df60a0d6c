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

int scaler_query(const struct scaler_query_req *q, long *status, struct ss_buf *body, char *err,
                 size_t errlen)
{
    *status = 0;
    struct ss_buf url, form;
    ss_buf_init(&url, 64 * 1024);
    ss_buf_init(&form, 64 * 1024);
    struct curl_slist *hl = NULL;
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
    if (q->post && (rc = httpc_add_header(&hl, "Content-Type: application/x-www-form-urlencoded")) != 0)
        goto fail;
    if ((rc = httpc_add_header(&hl, "Accept: application/json")) != 0)
        goto fail;
    /* TLS, proxy, customHeaders and Authorization (token and password files read now) */
    if ((rc = httpc_setup(e, &q->http, &hl, err, errlen)) != 0)
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q->timeout_ms > 0 ? q->timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    if (q->post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form.data);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form.len);
    }
    if (q->signer) {
        rc = aws_signer_sign(q->signer, q->post ? "POST" : "GET", url.data, q->post ? form.data : NULL,
                             q->post ? form.len : 0, httpc_add_header, &hl);
        if (rc) {
            snprintf(err, errlen, "signing the query failed: %s", ss_strerror(rc));
            goto fail;
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
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
    if (e)
        curl_easy_cleanup(e);
    httpc_headers_free(hl);
    ss_buf_free(&url);
    ss_buf_free(&form);
    return rc;
}
