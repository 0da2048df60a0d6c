/* creds.c: where the SigV4 signer gets AWS credentials.
 *
 * This is the seam between remote write and the AWS credential chain: the signer
 * asks for a copy of the current credentials on every request (cheap: a locked copy,
 * never a network call). Sources, in the AWS SDK order: static keys from the config,
 * then the environment. The full chain (web identity, container, shared files, IMDSv2,
 * role assumption, background refresh) plugs in behind the same three functions. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

struct collector_creds {
    pthread_mutex_t mu;
    struct collector_creds_value v;
    char source[32];
};

void collector_creds_value_wipe(struct collector_creds_value *v) { ss_wipe(v, sizeof *v); }

static int copy_field(char *dst, size_t cap, const char *src)
{
    if (!src)
        src = "";
    if (strlen(src) >= cap)
        return SS_ELIMIT;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int collector_creds_new(const struct cfg_sigv4 *cfg, const char *region, struct collector_creds **out,
                        char *err, size_t errlen)
{
    (void)region;
    *out = NULL;
    struct collector_creds *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    const char *id = NULL, *secret = NULL, *token = NULL;
    if (cfg->access_key && cfg->secret_key) {
        id = cfg->access_key;
        secret = cfg->secret_key;
        snprintf(c->source, sizeof c->source, "config");
    } else if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY")) {
        id = getenv("AWS_ACCESS_KEY_ID");
        secret = getenv("AWS_SECRET_ACCESS_KEY");
        token = getenv("AWS_SESSION_TOKEN");
        snprintf(c->source, sizeof c->source, "environment");
    }
    if (!id || !secret) {
        snprintf(err, errlen, "sigv4: no AWS credentials found (static keys in the config, or "
                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
        collector_creds_free(c);
        return SS_EAUTH;
    }
    if (copy_field(c->v.access_key_id, sizeof c->v.access_key_id, id) ||
        copy_field(c->v.secret_access_key, sizeof c->v.secret_access_key, secret) ||
        copy_field(c->v.session_token, sizeof c->v.session_token, token)) {
        snprintf(err, errlen, "sigv4: credentials from %s are too long", c->source);
        collector_creds_free(c);
        return SS_ELIMIT;
    }
    ss_info("awscred", "using AWS credentials from %s (key id %.4s****)", c->source, c->v.access_key_id);
    *out = c;
    return 0;
}

int collector_creds_get(struct collector_creds *c, struct collector_creds_value *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->v;
    pthread_mutex_unlock(&c->mu);
    return out->access_key_id[0] ? 0 : SS_EAUTH;
}

void collector_creds_force_refresh(struct collector_creds *c) { (void)c; }

void collector_creds_free(struct collector_creds *c)
{
    if (!c)
        return;
    collector_creds_value_wipe(&c->v);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

char *collector_read_secret_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct ss_buf b;
    ss_buf_init(&b, 64 * 1024);
    char chunk[1024];
    size_t r;
    int rc = 0;
    while (!rc && (r = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ss_buf_append(&b, chunk, r);
    ss_wipe(chunk, sizeof chunk);
    fclose(f);
    if (rc) {
        ss_buf_free_secret(&b);
        return NULL;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    if (!b.data && ss_buf_append(&b, "", 0))
        return NULL;
    return b.data;
}
