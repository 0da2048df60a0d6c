/* httpclient.h: the HTTP client setup every stage shares (prefix httpc_).
 *
 * A struct httpc_config is Prometheus' http_config (common/config.HTTPClientConfig):
 * basic auth, authorization, tls_config, proxy_url, follow_redirects, plus extra
 * header lines. Two calls turn it into a libcurl request:
 *   - httpc_setup sets the easy handle's options (TLS, proxy, redirects) and, unless
 *     told not to, appends the header lines;
 *   - httpc_headers appends only the header lines (the extra headers, then
 *     Authorization), for callers whose transport is not libcurl or who keep one
 *     handle and add the lines per request.
 *
 * Secret files: basic_auth.password_file and authorization.credentials_file are read
 * by httpc_headers (so by httpc_setup with a header list) every time it runs, and
 * every caller runs it once per request. That is the one re-read schedule, and it is
 * Prometheus' (its round trippers read the files on every request): a rotated token
 * or password is used from the next request on, without a reload.
 *
 * Everything is borrowed: the config's strings must outlive the call (libcurl copies
 * what it keeps). httpc_config_dup makes an owned copy for configs that must outlive
 * the memory they were built from.
 */
#ifndef SS_HTTPCLIENT_H
#define SS_HTTPCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "ss.h"

/* One extra header line, "name: value". */
struct httpc_header {
    const char *name;
    const char *value;
};

struct httpc_config {
    /* basic_auth: on when username is set (it may be ""). password_file, when set,
     * wins over password. */
    const char *basic_auth_username;
    const char *basic_auth_password;
    const char *basic_auth_password_file;
    /* authorization: on when credentials or credentials_file is set; the file wins.
     * type NULL = "Bearer". At most one of basic auth and authorization. */
    const char *authorization_type;
    const char *authorization_credentials;
    const char *authorization_credentials_file;
    /* tls_config. The *_pem bytes (PEM, not NUL-terminated, e.g. a kubeconfig's
     * *-data fields) win over the matching file. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_pem;
    size_t tls_ca_pem_len;
    const char *tls_cert_pem;
    size_t tls_cert_pem_len;
    const char *tls_key_pem; /* secret */
    size_t tls_key_pem_len;
    /* Not applied: libcurl has no option that sets the SNI and the name to verify
     * apart from the URL's host (CONNECT_TO/RESOLVE tricks would change where we
     * connect). The collector warns when it is set. */
    const char *tls_server_name;
    const char *tls_min_version; /* "TLS10", "TLS11", "TLS12", "TLS13"; NULL = libcurl's default */
    const char *tls_max_version; /* the same; NULL = the newest the TLS library has */
    bool tls_insecure_skip_verify;
    /* NULL: no proxy. The *_proxy environment variables are ignored, as Prometheus
     * ignores them unless proxy_from_environment is set. */
    const char *proxy_url;
    bool follow_redirects; /* at most 10, http and https only */
    const struct httpc_header *headers;
    size_t nheaders;
};

/* Set e's options from cfg: http/https only, no signals, TLS verification on unless
 * tls_insecure_skip_verify, the CA and client certificate, tls_min_version, the
 * proxy and redirects. Options cfg does not set are left alone (timeouts, user
 * agent, the URL: the caller's). When headers is not NULL, httpc_headers(cfg,
 * headers) runs too; the caller then adds its own lines, points CURLOPT_HTTPHEADER
 * at the list and frees it with httpc_headers_free after the transfer.
 * Returns 0; SS_ECONFIG for an unknown tls_min_version; httpc_headers' errors. A
 * message goes to err either way. */
int httpc_setup(CURL *e, const struct httpc_config *cfg, struct curl_slist **headers, char *err,
                size_t errlen);

/* Append cfg's header lines to *headers: the extra headers in order, then
 * Authorization ("Basic <base64 user:password>" or "<type> <credentials>"), reading
 * password_file / credentials_file now (trimmed as ss_read_secret_file does). An
 * empty credentials file is an error (an empty token is never meant); an empty
 * password file is an empty password. Returns 0, SS_EAUTH (a file unreadable or
 * empty, or a secret holding control characters, which would forge header lines),
 * SS_EINVAL (an extra header with a bad name or a control character), SS_ECONFIG
 * (both basic auth and authorization) or SS_ENOMEM, with a message in err; on error
 * *headers is as it was. */
int httpc_headers(const struct httpc_config *cfg, struct curl_slist **headers, char *err, size_t errlen);

/* Append one "Name: value" line. The signature is the add_header callback a request
 * signer takes (struct rw_signer): ctx is a struct curl_slist **. SS_ENOMEM. */
int httpc_add_header(void *ctx, const char *line);

/* Wipe every line (one may hold a secret) and free the list. NULL is a no-op. */
void httpc_headers_free(struct curl_slist *headers);

/* A deep copy of cfg in one allocation that owns every string, PEM and header.
 * httpc_config_free wipes all of it (passwords, tokens, keys) and frees it; NULL is
 * a no-op. */
int httpc_config_dup(const struct httpc_config *cfg, struct httpc_config **out);
void httpc_config_free(struct httpc_config *cfg);

#endif
