/* sigv4.h: AWS Signature Version 4 request signing (header form, "AWS4-HMAC-SHA256").
 *
 * The signer turns one HTTP request (method, URL as sent on the wire, headers, body or
 * its precomputed SHA-256) plus credentials, region, service and a caller-supplied clock
 * into the headers to add: Authorization, X-Amz-Date, and when relevant
 * X-Amz-Security-Token, X-Amz-Content-Sha256 and Host. It keeps no global state, so it
 * is safe to call from any thread; the optional derived-key cache belongs to the caller.
 * Remote write uses service "aps" (Amazon Managed Prometheus), but nothing here is
 * specific to it. Presigned (query-string) signing and SigV4a are not implemented.
 */
#ifndef SIGV4_H
#define SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on the inputs. Going over one fails with SS_ELIMIT. */
#define SIGV4_MAX_URL          16384 /* bytes in the URL */
#define SIGV4_MAX_HEADERS      256   /* headers passed in */
#define SIGV4_MAX_HEADER_NAME  256   /* bytes in one header name */
#define SIGV4_MAX_HEADER_VALUE 16384 /* bytes in one header value */
#define SIGV4_MAX_SCOPE_PART   64    /* bytes in region or service */
#define SIGV4_MAX_ACCESS_KEY   128   /* bytes in the access key id */
#define SIGV4_MAX_SECRET       256   /* bytes in the secret access key */
#define SIGV4_MAX_TOKEN        16384 /* bytes in the session token */

/* Borrowed for the duration of the call. session_token is NULL when there is none. */
struct sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
};

struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method; /* used as given: "POST" */
    /* scheme://[userinfo@]host[:port][/path][?query][#fragment], exactly as it goes on
     * the wire (already percent-encoded; raw bytes that need encoding are encoded). */
    const char *url;
    const struct sigv4_header *headers; /* may repeat a name; order kept per name */
    size_t nheaders;
    const void *body; /* NULL when body_len is 0 */
    size_t body_len;
    /* Optional: 64 lowercase hex digits of SHA-256(body), or a literal such as
     * "UNSIGNED-PAYLOAD". When set, body is not read: hash the body once with
     * sigv4_payload_hash and pass the result on every retry. */
    const char *payload_sha256_hex;
};

/* A caller-owned cache of the derived signing key for one (credentials, date, region,
 * service). The key changes once a day, so a sender that signs many requests can keep
 * one of these and skip four HMACs per request. Zero-initialise it; not thread-safe;
 * wipe it with sigv4_key_cache_clear when done. */
struct sigv4_key_cache {
    bool valid;
    char date[9]; /* YYYYMMDD */
    char region[SIGV4_MAX_SCOPE_PART + 1];
    char service[SIGV4_MAX_SCOPE_PART + 1];
    unsigned char cred_fingerprint[32]; /* SHA-256 over key id and secret, never the secret */
    unsigned char key[32];
};

void sigv4_key_cache_clear(struct sigv4_key_cache *cache);

/* Zero values give the behaviour every service but S3 wants. */
struct sigv4_params {
    const char *region;  /* "us-east-1" */
    const char *service; /* "aps" */
    int64_t now_unix;    /* the clock: seconds since the epoch, UTC */
    /* Add and sign X-Amz-Content-Sha256 (S3 requires it; other services accept it). */
    bool add_content_sha256_header;
    /* S3 only: keep "." / ".." / empty path segments as they are. */
    bool skip_path_normalization;
    /* S3 only: encode the path once (keep existing %XX escapes) instead of twice. */
    bool single_encode_path;
    /* Some services want X-Amz-Security-Token sent but not signed. */
    bool omit_session_token_from_signature;
    struct sigv4_key_cache *key_cache; /* optional, see above */
};

/* Heap strings owned by the result; free with sigv4_result_free. The caller sets each
 * non-NULL header on the request, replacing any header of the same name. */
struct sigv4_result {
    char *authorization;        /* Authorization */
    char *x_amz_date;           /* X-Amz-Date: YYYYMMDDTHHMMSSZ */
    char *x_amz_security_token; /* X-Amz-Security-Token, NULL without a session token */
    char *x_amz_content_sha256; /* X-Amz-Content-Sha256, NULL unless asked for */
    char *host;                 /* Host that was signed, NULL if the caller passed Host */
    char *canonical_request;    /* for tests and debug logs */
    char *string_to_sign;       /* for tests and debug logs */
};

/* Sign a request. On success fills *out (the caller frees it with sigv4_result_free);
 * on failure returns SS_EINVAL (malformed input), SS_ELIMIT or SS_ENOMEM and leaves *out
 * zeroed.
 *
 * Header rules: names are case-insensitive; every header passed is signed except
 * Authorization, User-Agent, Expect and X-Amzn-Trace-Id, which clients and proxies rewrite.
 * The signer owns X-Amz-Date, X-Amz-Security-Token (when the credentials carry a token)
 * and X-Amz-Content-Sha256 (when asked to add it): copies passed in are ignored and
 * replaced by the values in *out. Without a Host header, Host is derived from the URL
 * (lowercase, port only when not the scheme's default) and returned in out->host. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *creds,
               const struct sigv4_params *params, struct sigv4_result *out);

/* Frees and wipes every string; leaves *res zeroed. NULL is a no-op. */
void sigv4_result_free(struct sigv4_result *res);

/* SHA-256 of a payload as 64 lowercase hex digits plus NUL. */
int sigv4_payload_hash(const void *body, size_t len, char out_hex[65]);

#endif
