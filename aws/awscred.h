/* awscred.h: the AWS credential chain that feeds the SigV4 signer (remote write to
 * Amazon Managed Prometheus).
 *
 * A chain looks for credentials in the AWS SDK order and stops at the first provider
 * that is configured:
 *   1. static keys from our config (sigv4.access_key / secret_key)
 *   2. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME),
 *      STS AssumeRoleWithWebIdentity (EKS IRSA)
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) (ECS task roles, EKS Pod Identity)
 *   5. shared files: profile (config, AWS_PROFILE, "default") from the credentials and
 *      config files, static keys or role_arn + source_profile / credential_source
 *   6. EC2 instance metadata, IMDSv2 only (never the token-less IMDSv1)
 * A configured role_arn (with optional external_id) is then assumed with STS AssumeRole
 * on top of whatever the chain found.
 *
 * A provider that is not configured (its variables are unset) is skipped. A provider
 * that is configured but fails stops the chain with its reason, as botocore and the Go
 * v2 SDK do: falling through to, say, the node's instance role when a pod's web
 * identity role is briefly unavailable would silently change who we are.
 *
 * Threads: credentials are resolved by a background refresher (awscred_start), well
 * before they expire, never on the send path. awscred_get only copies the current
 * credentials under a short lock into caller-owned buffers, so senders sign without
 * holding any lock. Everything here is safe to call from any thread.
 *
 * Secrets (secret keys, session tokens, web identity and container authorization
 * tokens) never appear in logs, error strings or metrics; they are wiped when replaced
 * or freed. Access key ids are logged only masked ("ASIA****").
 */
#ifndef AWSCRED_H
#define AWSCRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sigv4.h"
#include "ss.h"

/* ---- limits ------------------------------------------------------------ */

#define AWSCRED_MAX_KEY_ID        SIGV4_MAX_ACCESS_KEY /* bytes in an access key id */
#define AWSCRED_MAX_SECRET        SIGV4_MAX_SECRET     /* bytes in a secret access key */
#define AWSCRED_MAX_TOKEN         SIGV4_MAX_TOKEN      /* bytes in a session token */
#define AWSCRED_MAX_RESPONSE      (64u << 10)          /* an STS / IMDS / container reply */
#define AWSCRED_MAX_SHARED_FILE   (1u << 20)           /* ~/.aws/credentials or config */
#define AWSCRED_MAX_TOKEN_FILE    (64u << 10)          /* web identity / container token file */
#define AWSCRED_MAX_INI_ENTRIES   8192                 /* key = value lines kept from one file */
#define AWSCRED_MAX_PROFILE_DEPTH 8                    /* source_profile hops */
#define AWSCRED_ERR_MAX           256                  /* an error reason, with its NUL */

/* ---- providers --------------------------------------------------------- */

enum awscred_provider {
    AWSCRED_PROVIDER_NONE = 0,
    AWSCRED_PROVIDER_STATIC,       /* "static" */
    AWSCRED_PROVIDER_ENV,          /* "environment" */
    AWSCRED_PROVIDER_WEB_IDENTITY, /* "web_identity" */
    AWSCRED_PROVIDER_CONTAINER,    /* "container" */
    AWSCRED_PROVIDER_PROFILE,      /* "shared_profile" */
    AWSCRED_PROVIDER_IMDS,         /* "imds" */
    AWSCRED_PROVIDER_COUNT
};

const char *awscred_provider_name(enum awscred_provider p);

/* ---- injectable HTTP --------------------------------------------------- */

struct awscred_http_request {
    const char *method; /* "GET", "PUT", "POST" */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    const void *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    int64_t timeout_ms;         /* whole request */
    int64_t connect_timeout_ms; /* 0: same as timeout_ms */
    bool no_proxy;              /* link-local and loopback endpoints: never through a proxy */
};

struct awscred_http_response {
    long status;
    /* Initialised by the caller with its maximum and capacity already reserved (so it
     * never reallocates and leaves unwiped copies behind); the hook appends the body. */
    struct ss_buf body;
};

/* Perform one request. Returns 0 when any HTTP response arrived (resp->status says
 * which), SS_ETIMEDOUT, SS_ELIMIT (body over its maximum) or SS_EIO otherwise. `why`
 * receives a short transport error (no secrets). Never follows redirects. */
typedef int (*awscred_http_fn)(void *ud, const struct awscred_http_request *req,
                               struct awscred_http_response *resp, char *why, size_t whycap);

/* The default hook: a blocking libcurl easy transfer. */
int awscred_http_curl(void *ud, const struct awscred_http_request *req, struct awscred_http_response *resp,
                      char *why, size_t whycap);

/* ---- the chain --------------------------------------------------------- */

struct awscred_options {
    const char *name; /* label for logs and metrics (the remote's name); "default" */

    /* From the remote_write sigv4 block. All borrowed for the call only. */
    const char *region;            /* STS region; else AWS_REGION, AWS_DEFAULT_REGION, global */
    const char *access_key_id;     /* static keys: both or neither */
    const char *secret_access_key; /* secret */
    const char *profile;           /* overrides AWS_PROFILE */
    const char *role_arn;          /* assume this role on top of the chain */
    const char *external_id;       /* with role_arn */
    const char *role_session_name; /* default "scrapeship-<unix ms>" */

    /* Endpoint overrides; NULL means the SDK variables, then the AWS defaults. */
    const char *sts_endpoint;       /* AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL */
    const char *imds_endpoint;      /* AWS_EC2_METADATA_SERVICE_ENDPOINT */
    const char *container_endpoint; /* base for the relative URI: http://169.254.170.2 */
    const char *home_dir;           /* for ~/.aws; default $HOME, then the passwd entry */

    /* Injectables for tests. NULL means getenv, ss_now_ms and awscred_http_curl. All
     * three get hook_ud. getenv_fn's result is borrowed only until it is called again. */
    const char *(*getenv_fn)(void *ud, const char *name);
    int64_t (*now_ms_fn)(void *ud); /* wall clock, ms since the epoch */
    awscred_http_fn http_fn;
    void *hook_ud;

    int64_t http_timeout_ms; /* 0: 10 s for STS and containers, 2 s for IMDS */
    int64_t max_sleep_ms;    /* the refresher re-reads the clock at least this often; 10 s */
    bool register_metrics;   /* add this chain to the self-metrics */
};

struct awscred_chain;

/* Copies the options (wiping the copied secret on free). No I/O. Fails with
 * SS_ECONFIG when the options contradict each other (one static key without the
 * other, external_id without role_arn). */
int awscred_chain_new(const struct awscred_options *opts, struct awscred_chain **out);
/* Stops the refresher, unregisters metrics, wipes and frees. NULL is a no-op. */
void awscred_chain_free(struct awscred_chain *c);

/* Resolve now, on the calling thread, and install the result. For startup checks and
 * tools; the refresher does the same in the background. Returns 0 or the failure (the
 * reason is in awscred_last_error). */
int awscred_resolve(struct awscred_chain *c);
/* Start the background refresher. It resolves immediately, then again before each
 * expiration (see awscred_refresh_at_ms), retrying with backoff on failure. */
int awscred_start(struct awscred_chain *c);
/* Wait until the first resolution attempt finished. 0 when credentials are available,
 * else that attempt's error; SS_ETIMEDOUT after timeout_ms. */
int awscred_wait_ready(struct awscred_chain *c, int64_t timeout_ms);

/* A caller-owned copy of the credentials. Reuse it across calls: awscred_get copies
 * only when the generation changed. Wipe with awscred_creds_wipe when done. */
struct awscred_creds {
    uint64_t generation;   /* 0: empty; bumps on every successful resolution */
    int64_t expiration_ms; /* 0: does not expire */
    enum awscred_provider provider;
    bool assumed_role; /* the config-level role_arn was assumed on top */
    bool has_session_token;
    char access_key_id[AWSCRED_MAX_KEY_ID + 1];
    char secret_access_key[AWSCRED_MAX_SECRET + 1];
    char session_token[AWSCRED_MAX_TOKEN + 1];
};

void awscred_creds_init(struct awscred_creds *cr);
void awscred_creds_wipe(struct awscred_creds *cr);
/* Borrowing view for sigv4_sign; valid while *cr is unchanged. */
void awscred_creds_sigv4(const struct awscred_creds *cr, struct sigv4_credentials *out);

/* Copy the current credentials into *out. Takes the chain's lock only for the copy and
 * never does I/O. Returns SS_EAUTH when there are none yet, or when the current ones
 * have expired (the refresher is failing; awscred_last_error says why). */
int awscred_get(struct awscred_chain *c, struct awscred_creds *out);

/* For "403 with an expired-token error: one refresh, one retry". Wakes the refresher
 * and waits up to timeout_ms for a new generation. seen_generation is the generation
 * the caller signed with: if a newer one exists already (another sender forced it),
 * returns 0 at once; concurrent callers share one refresh. Forced refreshes are at most
 * one per AWSCRED_FORCE_MIN_INTERVAL_MS; inside that window it returns SS_EAUTH. Without
 * a running refresher it resolves on the calling thread. */
#define AWSCRED_FORCE_MIN_INTERVAL_MS 10000
int awscred_force_refresh(struct awscred_chain *c, uint64_t seen_generation, int64_t timeout_ms);

/* The last failure's reason (secret-free), "" after a success. */
void awscred_last_error(struct awscred_chain *c, char *buf, size_t cap);

/* Make jansson wipe every block it frees (it keeps lexer copies of the credential
 * JSON it parses). Process-wide: call once from main before other threads use
 * jansson. Does nothing if another module installed its own allocator. */
void awscred_harden_jansson(void);

/* ---- refresh scheduling (pure, for tests) ------------------------------ */

#define AWSCRED_REFRESH_LEAD_MS (5 * 60 * 1000) /* refresh 5 min before expiry ... */
#define AWSCRED_MIN_DELAY_MS    1000            /* ... but never sooner than this */
#define AWSCRED_BACKOFF_BASE_MS 1000
#define AWSCRED_BACKOFF_MAX_MS  (5 * 60 * 1000)

/* When to refresh credentials that expire at expiration_ms: 5 minutes before, or at
 * half the remaining lifetime when that is shorter; not sooner than 1 s from now.
 * INT64_MAX for credentials that do not expire (0). */
int64_t awscred_refresh_at_ms(int64_t now_ms, int64_t expiration_ms);
/* Delay before retry number `attempt` (1 = first retry) after a failure: exponential
 * from 1 s up to 5 min, and while credentials are still valid never more than half of
 * their remaining lifetime, so several retries fit before they expire. */
int64_t awscred_retry_delay_ms(unsigned attempt, int64_t now_ms, int64_t expiration_ms);

/* ---- parsers (exposed for tests and fuzzing) --------------------------- */

/* Credentials as parsed: heap strings owned by the value, wiped by awscred_value_clear.
 * Lengths are within the AWSCRED_MAX_* limits. */
struct awscred_value {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;   /* NULL when none */
    int64_t expiration_ms; /* 0 when none */
};

void awscred_value_clear(struct awscred_value *v);

/* ISO 8601 / RFC 3339 UTC instant as AWS sends it: "2026-01-02T03:04:05Z", optional
 * fraction, "Z" or a +hh:mm offset. */
int awscred_parse_time(const char *s, size_t len, int64_t *out_ms);

/* An STS reply body. `action` is "AssumeRole" or "AssumeRoleWithWebIdentity": the
 * credentials are read from <action>Result/Credentials. An ErrorResponse gives SS_EAUTH
 * with "Code: Message" in why (message sanitised and cut short). Anything else is
 * SS_EPARSE or SS_ELIMIT. */
int awscred_parse_sts_xml(const char *body, size_t len, const char *action, struct awscred_value *out,
                          char *why, size_t whycap);

/* A container-credentials or IMDS credentials JSON document (AccessKeyId,
 * SecretAccessKey, Token, Expiration; IMDS adds Code). A document with an error code
 * (IMDS Code other than "Success", or code/message) gives SS_EAUTH with the code. */
int awscred_parse_creds_json(const char *body, size_t len, struct awscred_value *out, char *why,
                             size_t whycap);

/* A shared credentials or config file, parsed as the AWS SDKs' shared-config rules
 * say: '#' and ';' start comment lines; a '#' or ';' after whitespace ends a value;
 * indented lines continue the previous property (sub-properties, ignored); keys are
 * case-insensitive; later keys and sections override earlier ones. In the config file
 * profiles are "[profile name]" (and "[default]"); other sections ("sso-session",
 * "services") are skipped. In the credentials file they are "[name]". */
struct awscred_ini;
int awscred_ini_parse(const char *text, size_t len, bool config_file, struct awscred_ini **out);
/* NULL when absent. Borrowed from the ini. */
const char *awscred_ini_get(const struct awscred_ini *ini, const char *profile, const char *key);
bool awscred_ini_has_profile(const struct awscred_ini *ini, const char *profile);
void awscred_ini_free(struct awscred_ini *ini); /* wipes the values */

/* "ASIA****": first 4 characters and a fixed mask, for logs. out must hold 9 bytes. */
void awscred_mask_key_id(const char *key_id, char out[9]);

#endif
