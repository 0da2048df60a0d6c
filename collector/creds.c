/* creds.c: from a config's sigv4 block to a running credential chain and signer, and
 * reading secret files.
 *
 * The chain (aws/awscred.c) finds credentials the way the AWS SDKs do and
 * refreshes them in its own thread; the signer (aws/awssign.c) signs each
 * request with a copy. Startup waits briefly for the first credentials so a missing
 * provider is reported at once, but does not fail: scraping continues, sends are
 * retried (or spilled to disk) until credentials appear. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awscred.h"
#include "awssign.h"
#include "collector.h"

int collector_sigv4_region(const struct cfg_sigv4 *s, const char *url, char *out, size_t cap)
{
    if (s && s->region && s->region[0]) {
        snprintf(out, cap, "%s", s->region);
        return 0;
    }
    if (aws_region_from_url(url, out, cap) == 0)
        return 0;
    const char *env = getenv("AWS_REGION");
    if (!env || !*env)
        env = getenv("AWS_DEFAULT_REGION");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    return SS_ECONFIG;
}

int collector_aws_signer_new(const struct cfg_sigv4 *s, const char *url, const char *name,
                             struct aws_signer **out, char *err, size_t errlen)
{
    *out = NULL;
    char region[64];
    if (collector_sigv4_region(s, url, region, sizeof region)) {
        snprintf(err, errlen,
                 "%s: sigv4 needs a region: set sigv4.region, use an "
                 "aps-workspaces.<region>.amazonaws.com URL, or set AWS_REGION",
                 url);
        return SS_ECONFIG;
    }
    struct awscred_options o = {
        .name = name && *name ? name : "default", .region = region, .register_metrics = true};
    if (s) {
        o.access_key_id = s->access_key;
        o.secret_access_key = s->secret_key;
        o.profile = s->profile;
        o.role_arn = s->role_arn;
        o.external_id = s->external_id;
        o.role_session_name = s->session_name;
        if (s->sts_region) /* sigv4auth assume_role.sts_region: STS elsewhere than the workspace */
            o.region = s->sts_region;
    }
    struct awscred_chain *chain = NULL;
    int rc = awscred_chain_new(&o, &chain);
    if (rc) {
        snprintf(err, errlen,
                 "%s: invalid sigv4 settings (static keys need both access_key and "
                 "secret_key; external_id needs role_arn)",
                 url);
        return rc;
    }
    rc = awscred_start(chain);
    if (rc) {
        awscred_chain_free(chain);
        snprintf(err, errlen, "%s: cannot start the AWS credential refresher", url);
        return rc;
    }
    if (awscred_wait_ready(chain, 5000) != 0) {
        char why[512];
        awscred_last_error(chain, why, sizeof why);
        ss_warn("awscred", "remote %s: no AWS credentials yet (%s); sends wait and retry until they appear",
                url, why[0] ? why : "still resolving");
    }
    rc = aws_signer_new(region, s && s->service ? s->service : "aps", chain, out);
    if (rc) {
        awscred_chain_free(chain);
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}
