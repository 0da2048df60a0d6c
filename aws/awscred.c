/* awscred.c: the credential chain object: which provider to ask, the background
 * refresher, the lock-protected current credentials, forced refreshes and the
 * self-metrics.
 *
 * Locks: `resolve_lock` serialises resolution attempts (it is held across network
 * calls, by the refresher thread or by awscred_resolve); `lock` guards the current
 * credentials and the schedule and is only ever held for copies and bookkeeping, so
 * awscred_get never waits on STS or IMDS. Order: resolve_lock, then lock.
 *
 * The chain remembers the provider that worked and asks only it on later refreshes,
 * as the SDKs cache the provider they resolved; if it stops being configured (its
 * variables went away) the next attempt walks the whole chain again.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "awscred_int.h"
#include "sstext.h"

#define ASSUME_ROLE_SLOT     AWSCRED_PROVIDER_COUNT /* warn-once slot for the config role */
#define DEFAULT_MAX_SLEEP_MS 10000

struct awscred_chain {
    struct awscred_cfg cfg;
    int64_t max_sleep_ms;

    pthread_mutex_t resolve_lock;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on every state change */
    pthread_t thread;
    bool thread_running, stop;

    /* under lock: the current credentials */
    struct awscred_value cur;
    bool have;
    uint64_t generation;
    enum awscred_provider cur_provider;
    bool cur_assumed;

    /* under lock: schedule and attempts */
    int64_t next_refresh_ms; /* the injected clock's ms */
    unsigned fail_streak;
    bool expired_warned;
    uint64_t attempts_started, attempts_done;
    bool force_pending;
    uint64_t force_target;   /* the attempt that will serve the pending force */
    uint64_t forced_running; /* a forced attempt in progress, 0 when none */
    bool forced_before;
    int64_t last_force_mono_ms;
    int last_rc;
    char last_error[AWSCRED_ERR_MAX];
    uint64_t refresh_ok, refresh_fail;

    /* under resolve_lock: the resolver's memory */
    enum awscred_provider remembered;
    enum awscred_provider announced;
    char warned[AWSCRED_PROVIDER_COUNT + 1][AWSCRED_ERR_MAX];

    /* under metrics_lock */
    bool in_metrics;
    struct awscred_chain *metrics_next;
};

const char *awscred_provider_name(enum awscred_provider p)
{
    switch (p) {
    case AWSCRED_PROVIDER_STATIC: return "static";
    case AWSCRED_PROVIDER_ENV: return "environment";
    case AWSCRED_PROVIDER_WEB_IDENTITY: return "web_identity";
    case AWSCRED_PROVIDER_CONTAINER: return "container";
    case AWSCRED_PROVIDER_PROFILE: return "shared_profile";
    case AWSCRED_PROVIDER_IMDS: return "imds";
    default: return "none";
    }
}

/* ---- scheduling -------------------------------------------------------- */

int64_t awscred_refresh_at_ms(int64_t now_ms, int64_t expiration_ms)
{
    if (expiration_ms <= 0)
        return INT64_MAX;
    int64_t remaining = expiration_ms - now_ms;
    if (remaining <= 0)
        return now_ms; /* already expired: at once */
    int64_t lead = remaining / 2 < AWSCRED_REFRESH_LEAD_MS ? remaining / 2 : AWSCRED_REFRESH_LEAD_MS;
    int64_t at = expiration_ms - lead;
    /* a 1 s lifetime would otherwise mean a refresh every 500 ms */
    if (at < now_ms + AWSCRED_MIN_DELAY_MS)
        at = now_ms + AWSCRED_MIN_DELAY_MS;
    return at;
}

int64_t awscred_retry_delay_ms(unsigned attempt, int64_t now_ms, int64_t expiration_ms)
{
    int64_t d = AWSCRED_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && d < AWSCRED_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > AWSCRED_BACKOFF_MAX_MS)
        d = AWSCRED_BACKOFF_MAX_MS;
    if (expiration_ms > 0 && expiration_ms > now_ms) {
        int64_t half = (expiration_ms - now_ms) / 2;
        if (d > half)
            d = half;
    }
    return d < AWSCRED_MIN_DELAY_MS ? AWSCRED_MIN_DELAY_MS : d;
}

/* ---- small helpers ----------------------------------------------------- */

static void format_time(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) {
        snprintf(buf, cap, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static struct timespec mono_deadline(int64_t delay_ms)
{
    return ss_mono_deadline_ms(delay_ms);
}

static void cfg_free(struct awscred_cfg *cfg)
{
    free(cfg->name);
    free(cfg->region);
    free(cfg->access_key_id);
    ss_free_secret(cfg->secret_access_key);
    free(cfg->profile);
    free(cfg->role_arn);
    free(cfg->external_id);
    free(cfg->role_session_name);
    free(cfg->sts_endpoint);
    free(cfg->imds_endpoint);
    free(cfg->container_endpoint);
    free(cfg->home_dir);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- self-metrics ------------------------------------------------------ */

/* One renderer for all chains, so each family's HELP and TYPE appear once.
 * metrics_reg_lock serialises (un)registration and is never taken by the renderer,
 * which runs under the registry's lock and takes metrics_lock: no cycle. */
static pthread_mutex_t metrics_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct awscred_chain *metrics_head;
static bool metrics_registered;

static int render_metrics(void *ud, struct ss_buf *out)
{
    (void)ud;
    int rc = 0;
    pthread_mutex_lock(&metrics_lock);
    for (int family = 0; family < 3 && !rc; family++) {
        static const char *const head[] = {
            "# HELP scrapeship_aws_credentials_refreshes_total AWS credential resolutions, by result.\n"
            "# TYPE scrapeship_aws_credentials_refreshes_total counter\n",
            "# HELP scrapeship_aws_credentials_expiry_timestamp_seconds When the current AWS "
            "credentials expire (absent when they do not).\n"
            "# TYPE scrapeship_aws_credentials_expiry_timestamp_seconds gauge\n",
            "# HELP scrapeship_aws_credentials_provider_info The provider of the current AWS credentials.\n"
            "# TYPE scrapeship_aws_credentials_provider_info gauge\n",
        };
        if (metrics_head)
            rc = ss_buf_append_str(out, head[family]);
        for (struct awscred_chain *c = metrics_head; c && !rc; c = c->metrics_next) {
            pthread_mutex_lock(&c->lock);
            uint64_t ok = c->refresh_ok, bad = c->refresh_fail;
            int64_t exp = c->have ? c->cur.expiration_ms : 0;
            bool have = c->have, assumed = c->cur_assumed;
            enum awscred_provider p = c->cur_provider;
            pthread_mutex_unlock(&c->lock);
            if (family == 0) {
                for (int r = 0; r < 2 && !rc; r++) {
                    rc = ss_buf_append_str(out, "scrapeship_aws_credentials_refreshes_total{remote=\"");
                    if (!rc)
                        rc = ss_escape_label_value(out, c->cfg.name, strlen(c->cfg.name));
                    if (!rc)
                        rc = ss_buf_printf(out, "\",result=\"%s\"} %llu\n", r ? "failure" : "success",
                                           (unsigned long long)(r ? bad : ok));
                }
            } else if (family == 1 && exp > 0) {
                char num[32];
                ss_format_double(num, sizeof num, (double)exp / 1000.0);
                rc = ss_buf_append_str(out, "scrapeship_aws_credentials_expiry_timestamp_seconds{remote=\"");
                if (!rc)
                    rc = ss_escape_label_value(out, c->cfg.name, strlen(c->cfg.name));
                if (!rc)
                    rc = ss_buf_printf(out, "\"} %s\n", num);
            } else if (family == 2 && have) {
                rc = ss_buf_append_str(out, "scrapeship_aws_credentials_provider_info{remote=\"");
                if (!rc)
                    rc = ss_escape_label_value(out, c->cfg.name, strlen(c->cfg.name));
                if (!rc)
                    rc = ss_buf_printf(out, "\",provider=\"%s\",assume_role=\"%s\"} 1\n",
                                       awscred_provider_name(p), assumed ? "true" : "false");
            }
        }
    }
    pthread_mutex_unlock(&metrics_lock);
    return rc;
}

static int metrics_add(struct awscred_chain *c)
{
    int rc = 0;
    pthread_mutex_lock(&metrics_reg_lock);
    if (!metrics_registered) {
        if ((rc = ss_metrics_register(render_metrics, NULL)))
            goto done;
        metrics_registered = true;
    }
    pthread_mutex_lock(&metrics_lock);
    c->metrics_next = metrics_head;
    metrics_head = c;
    c->in_metrics = true;
    pthread_mutex_unlock(&metrics_lock);
done:
    pthread_mutex_unlock(&metrics_reg_lock);
    return rc;
}

static void metrics_remove(struct awscred_chain *c)
{
    pthread_mutex_lock(&metrics_reg_lock);
    pthread_mutex_lock(&metrics_lock);
    for (struct awscred_chain **pp = &metrics_head; *pp; pp = &(*pp)->metrics_next)
        if (*pp == c) {
            *pp = c->metrics_next;
            break;
        }
    c->in_metrics = false;
    bool empty = metrics_head == NULL;
    pthread_mutex_unlock(&metrics_lock);
    if (empty && metrics_registered) {
        ss_metrics_unregister(render_metrics, NULL);
        metrics_registered = false;
    }
    pthread_mutex_unlock(&metrics_reg_lock);
}

/* ---- lifecycle --------------------------------------------------------- */

int awscred_chain_new(const struct awscred_options *o, struct awscred_chain **out)
{
    *out = NULL;
    if (!o)
        return SS_EINVAL;
    if (!o->access_key_id != !o->secret_access_key) {
        ss_error(AWSCRED_COMPONENT, "sigv4: access_key and secret_key must be set together");
        return SS_ECONFIG;
    }
    if (o->access_key_id && (awscred_check_cred_string(o->access_key_id, AWSCRED_MAX_KEY_ID) ||
                             awscred_check_cred_string(o->secret_access_key, AWSCRED_MAX_SECRET))) {
        ss_error(AWSCRED_COMPONENT,
                 "sigv4: access_key or secret_key is empty, too long or not visible ASCII");
        return SS_ECONFIG;
    }
    if (o->external_id && !o->role_arn) {
        ss_error(AWSCRED_COMPONENT, "sigv4: external_id needs role_arn");
        return SS_ECONFIG;
    }
    struct awscred_chain *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    int rc = 0;
    struct awscred_cfg *g = &c->cfg;
    g->name = awscred_strdup(o->name ? o->name : "default", &rc);
    g->region = awscred_strdup(o->region, &rc);
    g->access_key_id = awscred_strdup(o->access_key_id, &rc);
    g->secret_access_key = awscred_strdup(o->secret_access_key, &rc);
    g->profile = awscred_strdup(o->profile, &rc);
    g->role_arn = awscred_strdup(o->role_arn, &rc);
    g->external_id = awscred_strdup(o->external_id, &rc);
    g->role_session_name = awscred_strdup(o->role_session_name, &rc);
    g->sts_endpoint = awscred_strdup(o->sts_endpoint, &rc);
    g->imds_endpoint = awscred_strdup(o->imds_endpoint, &rc);
    g->container_endpoint = awscred_strdup(o->container_endpoint, &rc);
    g->home_dir = awscred_strdup(o->home_dir, &rc);
    g->getenv_fn = o->getenv_fn;
    g->now_ms_fn = o->now_ms_fn;
    g->http_fn = o->http_fn;
    g->hook_ud = o->hook_ud;
    g->http_timeout_ms = o->http_timeout_ms;
    c->max_sleep_ms = o->max_sleep_ms > 0 ? o->max_sleep_ms : DEFAULT_MAX_SLEEP_MS;
    if (rc) {
        cfg_free(g);
        free(c);
        return rc;
    }
    ss_cond_init_mono(&c->cond);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->resolve_lock, NULL);
    if (o->register_metrics && (rc = metrics_add(c))) {
        awscred_chain_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void awscred_chain_free(struct awscred_chain *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    bool running = c->thread_running;
    c->stop = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (running) /* bounded: an attempt in flight ends within its HTTP timeouts */
        pthread_join(c->thread, NULL);
    if (c->in_metrics)
        metrics_remove(c);
    awscred_value_clear(&c->cur);
    cfg_free(&c->cfg);
    OPENSSL_cleanse(c->warned, sizeof c->warned);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->resolve_lock);
    free(c);
}

/* ---- resolution -------------------------------------------------------- */

/* Warn once per provider and distinct reason (the refresher retries; the log should
 * not repeat itself every backoff step). Called under resolve_lock. */
static void warn_once(struct awscred_chain *c, int slot, const char *what, const char *why)
{
    if (strcmp(c->warned[slot], why) == 0) {
        ss_debug(AWSCRED_COMPONENT, "remote %s: %s still failing: %s", c->cfg.name, what, why);
        return;
    }
    snprintf(c->warned[slot], sizeof c->warned[slot], "%s", why);
    ss_warn(AWSCRED_COMPONENT, "remote %s: credential provider %s failed: %s", c->cfg.name, what, why);
}

static int try_provider(struct awscred_chain *c, enum awscred_provider p, struct awscred_value *v, char *why,
                        size_t whycap)
{
    char detail[AWSCRED_ERR_MAX];
    int rc = awscred_provider_resolve(p, &c->cfg, v, detail, sizeof detail);
    if (rc == 0) {
        c->warned[p][0] = '\0';
    } else if (rc != SS_ENOTFOUND) {
        if (!detail[0])
            snprintf(detail, sizeof detail, "%s", ss_strerror(rc));
        warn_once(c, (int)p, awscred_provider_name(p), detail);
        awscred_why(why, whycap, "%s: %s", awscred_provider_name(p), detail);
    }
    return rc;
}

/* Run the chain (or the remembered provider), then the config-level role. Called
 * under resolve_lock. */
static int resolve_value(struct awscred_chain *c, struct awscred_value *out, enum awscred_provider *provider,
                         bool *assumed, char *why, size_t whycap)
{
    struct awscred_value v = {0};
    enum awscred_provider found = AWSCRED_PROVIDER_NONE;
    int rc = SS_ENOTFOUND;
    *assumed = false;
    if (c->remembered) {
        rc = try_provider(c, c->remembered, &v, why, whycap);
        if (rc == 0)
            found = c->remembered;
        else if (rc == SS_ENOTFOUND)
            c->remembered = AWSCRED_PROVIDER_NONE; /* deconfigured: walk again */
    }
    for (int p = AWSCRED_PROVIDER_STATIC; !c->remembered && rc == SS_ENOTFOUND && p < AWSCRED_PROVIDER_COUNT;
         p++) {
        rc = try_provider(c, (enum awscred_provider)p, &v, why, whycap);
        if (rc == 0)
            found = (enum awscred_provider)p;
    }
    if (rc == SS_ENOTFOUND) {
        awscred_why(why, whycap,
                    "no AWS credentials found (static keys, AWS_* environment, web "
                    "identity, container, shared profile, instance metadata)");
        warn_once(c, AWSCRED_PROVIDER_NONE, "chain", why);
        return SS_EAUTH;
    }
    if (rc)
        return rc;
    if (c->cfg.role_arn) {
        char detail[AWSCRED_ERR_MAX], name_buf[48];
        struct awscred_value assumed_v;
        rc = awscred_sts_assume_role(&c->cfg, NULL, &v, c->cfg.role_arn,
                                     awscred_session_name(&c->cfg, NULL, name_buf, sizeof name_buf),
                                     c->cfg.external_id, NULL, &assumed_v, detail, sizeof detail);
        awscred_value_clear(&v);
        if (rc) {
            warn_once(c, ASSUME_ROLE_SLOT, "assume_role", detail);
            awscred_why(why, whycap, "assume_role on top of %s: %s", awscred_provider_name(found), detail);
            return rc;
        }
        c->warned[ASSUME_ROLE_SLOT][0] = '\0';
        v = assumed_v;
        *assumed = true;
    }
    c->warned[AWSCRED_PROVIDER_NONE][0] = '\0';
    c->remembered = found;
    *provider = found;
    *out = v;
    return 0;
}

/* One resolution attempt, installing the result. Serialised by resolve_lock. */
static int attempt(struct awscred_chain *c)
{
    pthread_mutex_lock(&c->resolve_lock);
    pthread_mutex_lock(&c->lock);
    uint64_t me = ++c->attempts_started;
    if (c->force_pending) {
        c->force_pending = false;
        c->forced_running = me;
    }
    pthread_mutex_unlock(&c->lock);

    struct awscred_value v = {0};
    enum awscred_provider provider = AWSCRED_PROVIDER_NONE;
    bool assumed = false;
    char why[AWSCRED_ERR_MAX] = "";
    int rc = resolve_value(c, &v, &provider, &assumed, why, sizeof why);
    int64_t now = awscred_now(&c->cfg);

    if (rc == 0) {
        char masked[9], when[32];
        awscred_mask_key_id(v.access_key_id, masked);
        format_time(v.expiration_ms, when, sizeof when);
        if (provider != c->announced) { /* say once which provider we use */
            ss_info(AWSCRED_COMPONENT, "remote %s: using AWS credentials from %s%s (key %s, expires %s)",
                    c->cfg.name, awscred_provider_name(provider), assumed ? " + assume_role" : "", masked,
                    when);
            c->announced = provider;
        } else {
            ss_debug(AWSCRED_COMPONENT, "remote %s: refreshed AWS credentials from %s (key %s, expires %s)",
                     c->cfg.name, awscred_provider_name(provider), masked, when);
        }
    }

    pthread_mutex_lock(&c->lock);
    if (rc == 0) {
        awscred_value_clear(&c->cur); /* wipes the old secret */
        c->cur = v;
        c->have = true;
        c->generation++;
        c->cur_provider = provider;
        c->cur_assumed = assumed;
        c->fail_streak = 0;
        c->expired_warned = false;
        c->last_error[0] = '\0';
        c->refresh_ok++;
        c->next_refresh_ms = awscred_refresh_at_ms(now, v.expiration_ms);
    } else {
        c->fail_streak++;
        c->refresh_fail++;
        snprintf(c->last_error, sizeof c->last_error, "%s", why[0] ? why : ss_strerror(rc));
        c->next_refresh_ms =
            now + awscred_retry_delay_ms(c->fail_streak, now, c->have ? c->cur.expiration_ms : 0);
        if (c->have && c->fail_streak == 1)
            ss_warn(AWSCRED_COMPONENT,
                    "remote %s: credential refresh failed; retrying, current "
                    "credentials stay in use until they expire",
                    c->cfg.name);
        if (c->have && c->cur.expiration_ms > 0 && now >= c->cur.expiration_ms && !c->expired_warned) {
            ss_error(AWSCRED_COMPONENT,
                     "remote %s: AWS credentials have expired and cannot be "
                     "refreshed: %s",
                     c->cfg.name, c->last_error);
            c->expired_warned = true;
        }
    }
    if (c->forced_running == me) {
        c->forced_running = 0;
        c->forced_before = true;
        c->last_force_mono_ms = ss_mono_ms();
    }
    c->last_rc = rc;
    c->attempts_done = me;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&c->resolve_lock);
    return rc;
}

int awscred_resolve(struct awscred_chain *c)
{
    return c ? attempt(c) : SS_EINVAL;
}

static void *refresher(void *arg)
{
    struct awscred_chain *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        int64_t now = awscred_now(&c->cfg);
        if (!c->force_pending && c->attempts_done > 0 && now < c->next_refresh_ms) {
            int64_t wait = c->next_refresh_ms - now;
            /* re-read the clock now and then: the wall clock can jump (suspend, NTP) */
            if (wait > c->max_sleep_ms)
                wait = c->max_sleep_ms;
            struct timespec dl = mono_deadline(wait);
            pthread_cond_timedwait(&c->cond, &c->lock, &dl);
            continue;
        }
        pthread_mutex_unlock(&c->lock);
        attempt(c);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int awscred_start(struct awscred_chain *c)
{
    if (!c)
        return SS_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&c->lock); /* force_refresh reads thread_running under it */
    if (!c->thread_running) {
        if (pthread_create(&c->thread, NULL, refresher, c) != 0) {
            rc = SS_ENOMEM;
        } else {
            pthread_setname_np(c->thread, "awscred");
            c->thread_running = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int awscred_wait_ready(struct awscred_chain *c, int64_t timeout_ms)
{
    struct timespec dl = mono_deadline(timeout_ms);
    pthread_mutex_lock(&c->lock);
    while (c->attempts_done == 0 && !c->stop)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) == ETIMEDOUT)
            break;
    int rc = c->have ? 0 : c->attempts_done ? (c->last_rc ? c->last_rc : SS_EAUTH) : SS_ETIMEDOUT;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int awscred_force_refresh(struct awscred_chain *c, uint64_t seen_generation, int64_t timeout_ms)
{
    if (!c)
        return SS_EINVAL;
    pthread_mutex_lock(&c->lock);
    uint64_t base = seen_generation ? seen_generation : c->generation;
    if (c->generation > base) { /* someone else already refreshed */
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if (!c->thread_running) {
        pthread_mutex_unlock(&c->lock);
        return attempt(c);
    }
    uint64_t target;
    if (c->force_pending) {
        target = c->force_target; /* join the force that is queued */
    } else if (c->forced_running) {
        target = c->forced_running; /* join the force in flight */
    } else if (c->forced_before && ss_mono_ms() - c->last_force_mono_ms < AWSCRED_FORCE_MIN_INTERVAL_MS) {
        pthread_mutex_unlock(&c->lock); /* just refreshed, and still rejected */
        return SS_EAUTH;
    } else {
        c->force_pending = true;
        target = c->force_target = c->attempts_started + 1;
        pthread_cond_broadcast(&c->cond);
    }
    struct timespec dl = mono_deadline(timeout_ms);
    while (c->attempts_done < target && !c->stop)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) == ETIMEDOUT)
            break;
    int rc = c->generation > base         ? 0
             : c->attempts_done >= target ? (c->last_rc ? c->last_rc : SS_EAUTH)
                                          : SS_ETIMEDOUT;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void awscred_last_error(struct awscred_chain *c, char *buf, size_t cap)
{
    if (!cap)
        return;
    pthread_mutex_lock(&c->lock);
    snprintf(buf, cap, "%s", c->last_error);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the getter -------------------------------------------------------- */

void awscred_creds_init(struct awscred_creds *cr)
{
    memset(cr, 0, sizeof *cr);
}

void awscred_creds_wipe(struct awscred_creds *cr)
{
    if (cr)
        OPENSSL_cleanse(cr, sizeof *cr);
}

void awscred_creds_sigv4(const struct awscred_creds *cr, struct sigv4_credentials *out)
{
    out->access_key_id = cr->access_key_id;
    out->secret_access_key = cr->secret_access_key;
    out->session_token = cr->has_session_token ? cr->session_token : NULL;
}

int awscred_get(struct awscred_chain *c, struct awscred_creds *out)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (!c->have) {
        rc = SS_EAUTH;
        goto done;
    }
    if (c->cur.expiration_ms > 0 && awscred_now(&c->cfg) >= c->cur.expiration_ms) {
        rc = SS_EAUTH; /* expired and the refresher has not replaced them */
        goto done;
    }
    if (out->generation == c->generation)
        goto done; /* the caller's copy is current: nothing to copy */
    /* lengths were checked against these buffers when the value was parsed */
    awscred_creds_wipe(out);
    out->generation = c->generation;
    out->expiration_ms = c->cur.expiration_ms;
    out->provider = c->cur_provider;
    out->assumed_role = c->cur_assumed;
    snprintf(out->access_key_id, sizeof out->access_key_id, "%s", c->cur.access_key_id);
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "%s", c->cur.secret_access_key);
    out->has_session_token = c->cur.session_token != NULL;
    if (c->cur.session_token)
        snprintf(out->session_token, sizeof out->session_token, "%s", c->cur.session_token);
done:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---- jansson hardening ------------------------------------------------- */

static void *wiping_malloc(size_t n)
{
    return malloc(n);
}

static void wiping_free(void *p)
{
    if (p) {
        OPENSSL_cleanse(p, malloc_usable_size(p));
        free(p);
    }
}

void awscred_harden_jansson(void)
{
    json_malloc_t m = NULL;
    json_free_t f = NULL;
    json_get_alloc_funcs(&m, &f);
    if ((m == malloc && f == free) || (m == wiping_malloc && f == wiping_free))
        json_set_alloc_funcs(wiping_malloc, wiping_free);
}
