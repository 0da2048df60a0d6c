/* awssign.c: SigV4 request signing with credentials from the AWS credential chain.
 *
 * The one signer that remote write, `scrapeship query` and the scaler use: it asks the
 * chain for a copy of the current credentials (a locked copy, never network I/O: the
 * chain refreshes them in its own thread), signs the request with sigv4_sign and hands
 * back the headers. The copy is wiped right after signing. A 403 that says the token
 * expired forces one refresh of the generation that was used. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awscred.h"
#include "awssign.h"
#include "sigv4.h"

struct aws_signer {
    char region[64];
    char service[64];
    struct awscred_chain *chain; /* owned */
    _Atomic uint64_t last_generation;
};

static int add_fmt(int (*add_header)(void *ctx, const char *line), void *ctx, const char *name,
                   const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return SS_ENOMEM;
    snprintf(line, n, "%s: %s", name, value);
    int rc = add_header(ctx, line);
    ss_wipe(line, n);
    free(line);
    return rc;
}

int aws_signer_sign(struct aws_signer *s, const char *method, const char *url, const void *body, size_t len,
                    int (*add_header)(void *ctx, const char *line), void *ctx)
{
    struct awscred_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return SS_ENOMEM;
    awscred_creds_init(cr);
    int rc = awscred_get(s->chain, cr);
    if (rc) {
        free(cr);
        return rc;
    }
    atomic_store(&s->last_generation, cr->generation);
    struct sigv4_credentials creds;
    awscred_creds_sigv4(cr, &creds);
    struct sigv4_request req = {.method = method, .url = url, .body = body, .body_len = len};
    struct sigv4_params params = {.region = s->region, .service = s->service, .now_unix = ss_now_ms() / 1000};
    struct sigv4_result res = {0};
    rc = sigv4_sign(&req, &creds, &params, &res);
    awscred_creds_wipe(cr);
    free(cr);
    if (rc)
        return rc;
    rc = add_fmt(add_header, ctx, "Authorization", res.authorization);
    if (!rc)
        rc = add_fmt(add_header, ctx, "X-Amz-Date", res.x_amz_date);
    if (!rc && res.x_amz_security_token)
        rc = add_fmt(add_header, ctx, "X-Amz-Security-Token", res.x_amz_security_token);
    sigv4_result_free(&res);
    return rc;
}

void aws_signer_credentials_expired(struct aws_signer *s)
{
    awscred_force_refresh(s->chain, atomic_load(&s->last_generation), 10000);
}

int aws_signer_new(const char *region, const char *service, struct awscred_chain *chain,
                   struct aws_signer **out)
{
    *out = NULL;
    struct aws_signer *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    snprintf(s->region, sizeof s->region, "%s", region);
    snprintf(s->service, sizeof s->service, "%s", service && *service ? service : "aps");
    s->chain = chain;
    *out = s;
    return 0;
}

void aws_signer_free(struct aws_signer *s)
{
    if (!s)
        return;
    awscred_chain_free(s->chain);
    free(s);
}

int aws_region_from_url(const char *url, char *out, size_t cap)
{
    const char *p = url ? strstr(url, "aps-workspaces.") : NULL;
    if (!p)
        return SS_ENOTFOUND;
    p += strlen("aps-workspaces.");
    const char *e = strstr(p, ".amazonaws.com");
    if (!e || e == p || (size_t)(e - p) >= cap)
        return SS_ENOTFOUND;
    snprintf(out, cap, "%.*s", (int)(e - p), p);
    return 0;
}
