/* awscred_int.h: declarations shared by the awscred_*.c files, not part of the public
 * surface (awscred.h). The chain (awscred.c) calls the providers
 * (awscred_providers.c), which share the STS client, the HTTP helpers and file reading
 * (awscred_http.c) and the parsers (awscred_parse.c).
 */
#ifndef AWSCRED_INT_H
#define AWSCRED_INT_H

#include "awscred.h"

#define AWSCRED_COMPONENT               "awscred"
#define AWSCRED_DEFAULT_IMDS            "http://169.254.169.254"
#define AWSCRED_DEFAULT_IMDS_V6         "http://[fd00:ec2::254]"
#define AWSCRED_DEFAULT_CONTAINER       "http://169.254.170.2"
#define AWSCRED_STS_TIMEOUT_MS          10000
#define AWSCRED_CONTAINER_TIMEOUT_MS    5000
#define AWSCRED_IMDS_TIMEOUT_MS         2000
#define AWSCRED_IMDS_CONNECT_TIMEOUT_MS 1000
#define AWSCRED_IMDS_TOKEN_TTL          "21600" /* seconds: the 6 h maximum IMDS allows */
#define AWSCRED_MAX_URL                 4096
#define AWSCRED_MAX_ARN                 2048
#define AWSCRED_MAX_SECRETS             4 /* secrets one request can carry, for redaction */

/* The options, copied and owned by the chain. Secret strings are wiped on free. */
struct awscred_cfg {
    char *name, *region, *access_key_id, *secret_access_key, *profile, *role_arn;
    char *external_id, *role_session_name, *sts_endpoint, *imds_endpoint;
    char *container_endpoint, *home_dir;
    const char *(*getenv_fn)(void *ud, const char *name);
    int64_t (*now_ms_fn)(void *ud);
    awscred_http_fn http_fn;
    void *hook_ud;
    int64_t http_timeout_ms;
};

/* Environment variable through the hook; NULL when unset or empty (the SDKs treat an
 * empty variable as unset). */
const char *awscred_env(const struct awscred_cfg *cfg, const char *name);
bool awscred_env_true(const struct awscred_cfg *cfg, const char *name);
int64_t awscred_now(const struct awscred_cfg *cfg);

/* snprintf into why (never NULL in this module). */
void awscred_why(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copy text from a server into why: printable ASCII only, cut to a short length. */
void awscred_sanitize(char *dst, size_t cap, const char *src, size_t n);
/* Overwrite every occurrence of each secret (NULL-terminated list; short or NULL
 * entries skipped) in buf with '*', so server replies that echo what we sent cannot
 * carry a secret into an error string. */
void awscred_redact(char *buf, size_t len, const char *const *secrets);

/* Heap copy; NULL in, NULL out. Sets *rc to SS_ENOMEM on failure. */
char *awscred_strdup(const char *s, int *rc);
/* Validate a credential string: 1..max bytes of visible ASCII (no spaces). */
int awscred_check_cred_string(const char *s, size_t max);
/* Move a parsed value into place after checking it (key id, secret and token
 * lengths and characters). On failure the value is cleared. */
int awscred_value_check(struct awscred_value *v, char *why, size_t whycap);
/* Deep copy (for the chain's current credentials). */
int awscred_value_copy(struct awscred_value *dst, const struct awscred_value *src);

/* Read a whole file into a freshly allocated, NUL-terminated buffer of at most max
 * bytes, without stdio (no library buffer keeps a copy). The caller wipes and frees it
 * with ss_free_secret. SS_ENOTFOUND when it does not exist. */
int awscred_read_file(const char *path, size_t max, char **out, size_t *out_len);

/* One HTTP exchange through the configured hook, with a response buffer of at most
 * AWSCRED_MAX_RESPONSE bytes reserved up front; free it with ss_buf_free_secret. */
int awscred_http(const struct awscred_cfg *cfg, const struct awscred_http_request *req,
                 struct awscred_http_response *resp, char *why, size_t whycap);

/* STS: the region used when the caller has none (the profile's region), then the
 * endpoint. region_hint may be NULL. */
const char *awscred_sts_region(const struct awscred_cfg *cfg, const char *region_hint);

/* AssumeRoleWithWebIdentity: unsigned, the token is the proof. */
int awscred_sts_web_identity(const struct awscred_cfg *cfg, const char *region_hint, const char *role_arn,
                             const char *session_name, const char *token, struct awscred_value *out,
                             char *why, size_t whycap);
/* AssumeRole signed (SigV4, service "sts") with `source`. external_id and
 * duration_seconds may be NULL. */
int awscred_sts_assume_role(const struct awscred_cfg *cfg, const char *region_hint,
                            const struct awscred_value *source, const char *role_arn,
                            const char *session_name, const char *external_id, const char *duration_seconds,
                            struct awscred_value *out, char *why, size_t whycap);
/* "scrapeship-<unix ms>" into buf (>= 40 bytes), unless a name was configured. */
const char *awscred_session_name(const struct awscred_cfg *cfg, const char *configured, char *buf,
                                 size_t cap);

/* One provider. 0 with *out filled; SS_ENOTFOUND when not configured (the chain moves
 * on, nothing is logged); any other error with the reason in why (the chain stops). */
int awscred_provider_resolve(enum awscred_provider p, const struct awscred_cfg *cfg,
                             struct awscred_value *out, char *why, size_t whycap);

/* Exposed for the unit tests: the host rule for AWS_CONTAINER_CREDENTIALS_FULL_URI. */
bool awscred_container_url_allowed(const char *url);

#endif
