/* web_int.h: the pieces of the embedded web endpoint (httpserver.c) that have their
 * own file and unit tests: basic auth against bcrypt hashes (webauth.c) and the TLS
 * credentials built from a web config (webtls.c). Internal to the collector. */
#ifndef SS_WEB_INT_H
#define SS_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <gnutls/gnutls.h>

#include "config.h"

/* ---- basic auth (webauth.c) --------------------------------------------------- */

/* Longest user name and password taken from an Authorization header. */
#define WEB_AUTH_MAX_USER     256
#define WEB_AUTH_MAX_PASSWORD 1024

/* Split an Authorization header value "Basic <base64(user:password)>" into user and
 * password (NUL-terminated; the caller wipes pass). SS_EAUTH when the header is not
 * Basic, not base64, has no ':' or does not fit. */
int web_basic_auth_parse(const char *header, char user[WEB_AUTH_MAX_USER + 1],
                         char pass[WEB_AUTH_MAX_PASSWORD + 1]);

/* Results of bcrypt comparisons, keyed by an HMAC (per-process random key) of user,
 * hash and password, so that a scraper presenting the same credentials every few
 * seconds costs one bcrypt, not one per scrape (the exporter toolkit caches the same
 * way). Bounded: the oldest entry is replaced. Thread-safe. */
struct web_auth_cache;
int web_auth_cache_new(struct web_auth_cache **out);
void web_auth_cache_free(struct web_auth_cache *c);
/* Whether user/pass match w->basic_auth_users. An unknown user costs a bcrypt too
 * (against a fixed hash), so timing does not reveal which users exist. bcrypt runs
 * one at a time, as in the toolkit, so a flood of bad passwords holds one core. */
bool web_auth_check(struct web_auth_cache *c, const struct cfg_web *w, const char *user, const char *pass);
/* The same, telling a refusal from "busy": at most WEB_AUTH_MAX_WAITING requests
 * compute or wait for a bcrypt at once (answers from the cache never wait); one more
 * gets WEB_AUTH_BUSY at once (the endpoint answers 429). A scraper's good
 * credentials stay cached through a flood of wrong ones. */
#define WEB_AUTH_MAX_WAITING 4
enum web_auth_result { WEB_AUTH_OK, WEB_AUTH_DENIED, WEB_AUTH_BUSY };
enum web_auth_result web_auth_verify(struct web_auth_cache *c, const struct cfg_web *w, const char *user,
                                     const char *pass);
/* Entries held and bcrypt computations made, for tests. */
void web_auth_cache_stats(struct web_auth_cache *c, size_t *entries, unsigned long *computed);

/* ---- TLS (webtls.c) ----------------------------------------------------------- */

/* Every PEM file (certificate, key, client CA bundle) is read with this ceiling. */
#define WEB_TLS_MAX_PEM_BYTES (1u << 20)

/* The credentials and priorities one web config produces: certificate and key,
 * the client CA trust list, the client auth policy and the GnuTLS priorities for
 * min/max_version, cipher_suites and curve_preferences. Immutable once built, so
 * sessions of several threads may use it at once; it must outlive them. */
struct web_tls;
/* Start GnuTLS (once; it is not started at load time, see webtls.c). Returns 0 or a
 * GnuTLS error code. web_tls_new calls it. */
int web_tls_lib_init(void);
int web_tls_new(const struct cfg_web *w, struct web_tls **out, char *err, size_t errlen);
void web_tls_free(struct web_tls *t);
/* Set up a server session before its handshake: priorities, credentials, whether a
 * client certificate is requested or required, and its verification. */
int web_tls_apply(const struct web_tls *t, gnutls_session_t s);
/* The GnuTLS priority string built from w (for tests and the startup log). */
int web_tls_priority_string(const struct cfg_web *w, char *out, size_t cap);

#endif
