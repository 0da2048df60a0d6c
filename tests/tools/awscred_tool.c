/* awscred_tool.c: drive the AWS credential chain from the command line, for the
 * integration test against tests/integration/fake_aws.py.
 *
 * Resolves credentials with the chain (the real environment, files and HTTP) and
 * prints one JSON object per line on stdout: provider, access key id, expiration and
 * SHA-256 digests of the secret key and session token, never the secrets themselves.
 *
 *   awscred_tool [--region R] [--profile P] [--role-arn ARN [--external-id ID]]
 *                [--session-name N] [--static-key-id K --static-secret-env VAR]
 *                [--sts-endpoint URL] [--imds-endpoint URL] [--container-endpoint URL]
 *                [--home DIR] [--timeout-ms N] [--log-level debug|info|warn]
 *                [--watch SECONDS [--poll-ms N] [--force-after SECONDS]] [--metrics]
 *
 * One-shot: {"ok": true, "provider": ..., ...} or {"ok": false, "error": ...}, exit 0/1.
 * Watch: starts the background refresher and polls awscred_get every --poll-ms,
 * printing {"event": "generation", ...} for each new generation (with the time it
 * was first seen), {"event": "get_failed", ...} when a get fails, optionally
 * {"event": "forced", ...} after a forced refresh, and a closing
 * {"event": "summary", "gets": n, "failures": n, "generations": n}.
 * The static secret comes from an environment variable so it never shows in argv.
 * Exit status: 0 ok, 1 no credentials or failures while watching, 2 usage.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "awscred.h"
#include "ss.h"

static void sha256_hex(const char *s, char out[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static json_t *describe(const struct awscred_creds *cr)
{
    char sec[65], tok[65];
    sha256_hex(cr->secret_access_key, sec);
    if (cr->has_session_token)
        sha256_hex(cr->session_token, tok);
    json_t *o = json_object();
    json_object_set_new(o, "provider", json_string(awscred_provider_name(cr->provider)));
    json_object_set_new(o, "assumed_role", json_boolean(cr->assumed_role));
    json_object_set_new(o, "access_key_id", json_string(cr->access_key_id));
    json_object_set_new(o, "expiration",
                        cr->expiration_ms ? json_real((double)cr->expiration_ms / 1000.0) : json_null());
    json_object_set_new(o, "secret_sha256", json_string(sec));
    json_object_set_new(o, "session_token_sha256", cr->has_session_token ? json_string(tok) : json_null());
    json_object_set_new(o, "generation", json_integer((json_int_t)cr->generation));
    return o;
}

static void usage(void)
{
    fprintf(stderr, "usage: awscred_tool [--region R] [--profile P] [--role-arn ARN] [--external-id ID]\n"
                    "  [--session-name N] [--static-key-id K --static-secret-env VAR] [--sts-endpoint URL]\n"
                    "  [--imds-endpoint URL] [--container-endpoint URL] [--home DIR] [--timeout-ms N]\n"
                    "  [--log-level L] [--watch S [--poll-ms N] [--force-after S]] [--metrics]\n");
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    struct awscred_options o = {.name = "tool"};
    double watch_s = 0, force_after_s = -1;
    int64_t poll_ms = 200;
    bool metrics = false;
    const char *secret_env = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                                     \
    if (strcmp(a, name) == 0 && v) {                                                                         \
        field = v;                                                                                           \
        i++;                                                                                                 \
        continue;                                                                                            \
    }
        OPT("--region", o.region)
        OPT("--profile", o.profile)
        OPT("--role-arn", o.role_arn)
        OPT("--external-id", o.external_id)
        OPT("--session-name", o.role_session_name)
        OPT("--static-key-id", o.access_key_id)
        OPT("--static-secret-env", secret_env)
        OPT("--sts-endpoint", o.sts_endpoint)
        OPT("--imds-endpoint", o.imds_endpoint)
        OPT("--container-endpoint", o.container_endpoint)
        OPT("--home", o.home_dir)
#undef OPT
        if (strcmp(a, "--timeout-ms") == 0 && v) {
            o.http_timeout_ms = atoll(v);
            i++;
        } else if (strcmp(a, "--watch") == 0 && v) {
            watch_s = atof(v);
            i++;
        } else if (strcmp(a, "--poll-ms") == 0 && v) {
            poll_ms = atoll(v);
            i++;
        } else if (strcmp(a, "--force-after") == 0 && v) {
            force_after_s = atof(v);
            i++;
        } else if (strcmp(a, "--log-level") == 0 && v) {
            ss_log_set_level(strcmp(v, "debug") == 0  ? SS_LOG_DEBUG
                             : strcmp(v, "warn") == 0 ? SS_LOG_WARN
                                                      : SS_LOG_INFO);
            i++;
        } else if (strcmp(a, "--metrics") == 0) {
            metrics = true;
        } else {
            usage();
            return 2;
        }
    }
    if (secret_env)
        o.secret_access_key = getenv(secret_env);
    if (poll_ms < 10)
        poll_ms = 10;
    o.register_metrics = metrics;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    awscred_harden_jansson();
    struct awscred_chain *c = NULL;
    int rc = awscred_chain_new(&o, &c);
    if (rc) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_false());
        json_object_set_new(j, "error", json_string("invalid options"));
        json_object_set_new(j, "code", json_string(ss_strerror(rc)));
        print_json(j);
        curl_global_cleanup();
        return 2;
    }
    struct awscred_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return 1;
    awscred_creds_init(cr);
    int status = 0;
    char err[AWSCRED_ERR_MAX];

    if (watch_s <= 0) {
        rc = awscred_resolve(c);
        if (rc == 0)
            rc = awscred_get(c, cr);
        json_t *j;
        if (rc == 0) {
            j = describe(cr);
            json_object_set_new(j, "ok", json_true());
        } else {
            awscred_last_error(c, err, sizeof err);
            j = json_object();
            json_object_set_new(j, "ok", json_false());
            json_object_set_new(j, "error", json_string(err));
            json_object_set_new(j, "code", json_string(ss_strerror(rc)));
            status = 1;
        }
        print_json(j);
    } else {
        awscred_start(c);
        rc = awscred_wait_ready(c, 15000);
        int64_t start = ss_mono_ms(), end = start + (int64_t)(watch_s * 1000);
        uint64_t gets = 0, failures = 0, generations = 0, seen = 0;
        bool failing = false, forced = force_after_s < 0;
        while (ss_mono_ms() < end) {
            gets++;
            if (awscred_get(c, cr) != 0) {
                failures++;
                if (!failing) {
                    awscred_last_error(c, err, sizeof err);
                    json_t *j = json_object();
                    json_object_set_new(j, "event", json_string("get_failed"));
                    json_object_set_new(j, "observed", json_real((double)ss_now_ms() / 1000.0));
                    json_object_set_new(j, "error", json_string(err));
                    print_json(j);
                }
                failing = true;
            } else {
                failing = false;
                if (cr->generation != seen) {
                    seen = cr->generation;
                    generations++;
                    json_t *j = describe(cr);
                    json_object_set_new(j, "event", json_string("generation"));
                    json_object_set_new(j, "observed", json_real((double)ss_now_ms() / 1000.0));
                    print_json(j);
                }
            }
            if (!forced && ss_mono_ms() - start >= (int64_t)(force_after_s * 1000)) {
                forced = true;
                int64_t t0 = ss_mono_ms();
                int frc = awscred_force_refresh(c, seen, 10000);
                /* a second caller with the same generation must not refresh again */
                int frc2 = awscred_force_refresh(c, seen, 10000);
                json_t *j = json_object();
                json_object_set_new(j, "event", json_string("forced"));
                json_object_set_new(j, "rc", json_integer(frc));
                json_object_set_new(j, "rc_again", json_integer(frc2));
                json_object_set_new(j, "ms", json_integer(ss_mono_ms() - t0));
                print_json(j);
            }
            sleep_ms(poll_ms);
        }
        json_t *j = json_object();
        json_object_set_new(j, "event", json_string("summary"));
        json_object_set_new(j, "ready_rc", json_integer(rc));
        json_object_set_new(j, "gets", json_integer((json_int_t)gets));
        json_object_set_new(j, "failures", json_integer((json_int_t)failures));
        json_object_set_new(j, "generations", json_integer((json_int_t)generations));
        print_json(j);
        status = failures || rc ? 1 : 0;
    }
    if (metrics) {
        struct ss_buf m;
        ss_buf_init(&m, 1 << 20);
        if (ss_metrics_render(&m) == 0) {
            json_t *j = json_object();
            json_object_set_new(j, "event", json_string("metrics"));
            json_object_set_new(j, "text", json_string(m.data ? m.data : ""));
            print_json(j);
        }
        ss_buf_free(&m);
    }
    awscred_creds_wipe(cr);
    free(cr);
    awscred_chain_free(c);
    curl_global_cleanup();
    return status;
}
