/* runner.c: the scaler's poll loop (prefix scaler_runner_).
 *
 * Every ScaledObject is polled at its pollingInterval, all on the calling thread:
 * query each trigger (scaler_query, SigV4 or bearer/basic/custom header as
 * configured), read the target's scale subresource and its KEDA annotations, ask
 * scaler_decide, and PATCH the scale when the answer differs (unless dry-run).
 * Between polls the loop also wakes for the object's HPA sync when one is due
 * (the HPA's own period, 15 s by default: scaler_state_next_sync_ms), and then
 * queries, reads and decides the same way with hpa_only set. Polls and syncs are
 * scheduled on fixed beats from the start, and a decision's clock is the beat it
 * was scheduled for, so a sync that falls on a poll is made in that poll.
 * Each poll logs exactly one line per object saying what was seen, what was
 * decided, by which rule, and what was done, so an operator can follow the loop
 * from the log alone.
 *
 * Failures never end the loop: a failed query is a trigger error for the decision
 * engine (fallback handles it the KEDA way); a failed Kubernetes call (409, 5xx,
 * network) is logged and simply happens again at the next poll, which re-reads the
 * current replicas first, so nothing is applied twice.
 *
 * Self-metrics are kept under one mutex that the /metrics thread also takes; the
 * network calls are made without it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awssign.h"
#include "scaler.h"
#include "sstext.h"

#define QUERY_DEFAULT_TIMEOUT_MS 3000 /* KEDA_HTTP_DEFAULT_TIMEOUT */
#define KEDA_ANNOTATIONS         "autoscaling.keda.sh/"
#define MAX_WAIT_MS              1000 /* the loop re-checks its clock at least this often */

struct trigger_rt {
    /* owned copies of struct scaler_runner_auth's strings */
    struct aws_signer *signer;
    char *bearer_token_file, *basic_user, *basic_password_file;
    char *custom_auth_header, *custom_auth_value_file, *ca_file;
    /* metrics, under runner.mu */
    bool has_value;
    double value;
    bool active;
};

struct object_rt {
    const struct scaler_object *so;
    struct scaler_state *st;
    const char *ns; /* effective namespace of the target */
    struct trigger_rt *trig;
    int64_t next_due_ms;
    /* an HPA-only wake-up that could not decide (the scale could not be read)
     * leaves its sync to the next poll instead of spinning on it */
    int64_t sync_skipped_ms;
    bool annotations_warned;
    /* metrics, under runner.mu */
    bool polled, has_current;
    int32_t current, desired;
    bool active, fallback, paused;
    uint64_t polls, query_errors, kube_errors, scaled, scale_failed, dry_run;
};

struct scaler_runner {
    const struct scaler_config *cfg;
    struct kube_client *kube;
    bool dry_run;
    int64_t sync_period_ms;
    char *default_ns;
    struct object_rt *objs;
    size_t n;
    struct ss_buf body; /* query answers, reused */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

bool scaler_runner_trigger_sigv4(const struct scaler_config *cfg, const struct scaler_object *so,
                                 const struct scaler_trigger *t, const char **region, const char **role_arn)
{
    *region = t->aws_region;
    *role_arn = NULL;
    bool aws = t->aws_region != NULL;
    if (t->auth_ref_name) {
        const struct scaler_trigger_auth *ta = scaler_config_find_auth(cfg, so->ns, t->auth_ref_name);
        const char *p = ta ? ta->pod_identity_provider : NULL;
        /* aws-eks and aws-kiam are KEDA's removed aliases; the loader warns about them */
        if (p && (strcmp(p, "aws") == 0 || strcmp(p, "aws-eks") == 0 || strcmp(p, "aws-kiam") == 0)) {
            aws = true;
            *role_arn = ta->role_arn;
        }
    }
    return aws;
}

int scaler_runner_new(const struct scaler_config *cfg, struct kube_client *kube,
                      const struct scaler_runner_options *o, struct scaler_runner **out)
{
    *out = NULL;
    if (!cfg || !kube)
        return SS_EINVAL;
    struct scaler_runner *r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    ss_cond_init_mono(&r->cv);
    ss_buf_init(&r->body, SCALER_MAX_RESULT_BYTES);
    r->cfg = cfg;
    r->kube = kube;
    r->dry_run = o && o->dry_run;
    r->sync_period_ms =
        o && o->hpa_sync_period_ms > 0 ? o->hpa_sync_period_ms : SCALER_DEFAULT_SYNC_PERIOD_MS;
    int rc = SS_ENOMEM;
    if (o && o->default_ns && !(r->default_ns = strdup(o->default_ns)))
        goto fail;
    r->n = cfg->n_objects;
    if (r->n && !(r->objs = calloc(r->n, sizeof *r->objs)))
        goto fail;
    int64_t now = ss_mono_ms();
    for (size_t i = 0; i < r->n; i++) {
        struct object_rt *ob = &r->objs[i];
        ob->so = &cfg->objects[i];
        /* no metadata.namespace reads as "default": place it as kubectl apply would */
        ob->ns = (r->default_ns && strcmp(ob->so->ns, "default") == 0) ? r->default_ns : ob->so->ns;
        if (ob->so->n_triggers && !(ob->trig = calloc(ob->so->n_triggers, sizeof *ob->trig)))
            goto fail;
        /* the ScaledObject exists before its first poll, which may fall in the same
         * millisecond: initialCooldownPeriod 0 must already be over then */
        rc = scaler_state_new(ob->so, now - 1, &ob->st);
        if (rc)
            goto fail;
        /* KEDA resumes from status.lastActiveTime after a restart; without it, the
         * start is the last activity known, so a restart never scales a workload that
         * went quiet a moment ago to zero before cooldownPeriod (as seeding the HPA
         * history keeps it from scaling down before the stabilization window). A
         * longer initialCooldownPeriod still holds in full. */
        int64_t extra_s = (int64_t)ob->so->initial_cooldown_period_s - ob->so->cooldown_period_s;
        scaler_state_set_last_active(ob->st, now + (extra_s > 0 ? extra_s * 1000 : 0));
        rc = SS_ENOMEM;
        ob->next_due_ms = now;
    }
    *out = r;
    return 0;
fail:
    scaler_runner_free(r);
    return rc;
}

static void free_auth(struct trigger_rt *t)
{
    free(t->bearer_token_file);
    free(t->basic_user);
    free(t->basic_password_file);
    free(t->custom_auth_header);
    free(t->custom_auth_value_file);
    free(t->ca_file);
    t->bearer_token_file = t->basic_user = t->basic_password_file = NULL;
    t->custom_auth_header = t->custom_auth_value_file = t->ca_file = NULL;
    t->signer = NULL;
}

static bool dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

int scaler_runner_set_auth(struct scaler_runner *r, size_t object, size_t trigger,
                           const struct scaler_runner_auth *a)
{
    if (object >= r->n || trigger >= r->objs[object].so->n_triggers || !a)
        return SS_EINVAL;
    struct trigger_rt *t = &r->objs[object].trig[trigger];
    free_auth(t);
    t->signer = a->signer;
    if (!dup_opt(&t->bearer_token_file, a->bearer_token_file) || !dup_opt(&t->basic_user, a->basic_user) ||
        !dup_opt(&t->basic_password_file, a->basic_password_file) ||
        !dup_opt(&t->custom_auth_header, a->custom_auth_header) ||
        !dup_opt(&t->custom_auth_value_file, a->custom_auth_value_file) ||
        !dup_opt(&t->ca_file, a->ca_file)) {
        free_auth(t);
        return SS_ENOMEM;
    }
    return 0;
}

void scaler_runner_free(struct scaler_runner *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        struct object_rt *ob = &r->objs[i];
        for (size_t k = 0; ob->trig && k < ob->so->n_triggers; k++)
            free_auth(&ob->trig[k]);
        free(ob->trig);
        scaler_state_free(ob->st);
    }
    free(r->objs);
    free(r->default_ns);
    ss_buf_free(&r->body);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- one poll ---------------------------------------------------------- */

/* Query one trigger. The result's error text lives in errbuf. */
static void query_trigger(struct scaler_runner *r, const struct scaler_trigger *t, const struct trigger_rt *a,
                          struct scaler_trigger_result *res, char *errbuf, size_t errlen)
{
    struct httpc_header headers[SCALER_MAX_KV + 1];
    struct ss_kv params[SCALER_MAX_KV + 1];
    size_t nh = 0, np = 0;
    for (size_t i = 0; i < t->n_custom_headers && nh < SCALER_MAX_KV; i++)
        headers[nh++] = (struct httpc_header){t->custom_headers[i].key, t->custom_headers[i].value};
    for (size_t i = 0; i < t->n_query_parameters && np < SCALER_MAX_KV; i++)
        params[np++] = (struct ss_kv){t->query_parameters[i].key, t->query_parameters[i].value};
    if (t->prom_namespace) /* KEDA: namespace=... for Thanos/Prometheus tenancy proxies */
        params[np++] = (struct ss_kv){"namespace", t->prom_namespace};

    char *custom = NULL;
    res->ok = false;
    res->error = errbuf;
    errbuf[0] = '\0';
    /* secrets are read for each query: mounted secrets and tokens rotate (the bearer
     * and password files by the HTTP floor, the custom value here) */
    if (a->custom_auth_header) {
        if (!a->custom_auth_value_file || !(custom = ss_read_secret_file(a->custom_auth_value_file)) ||
            !custom[0]) {
            snprintf(errbuf, errlen, "cannot read the custom auth value file %s",
                     a->custom_auth_value_file ? a->custom_auth_value_file : "(none)");
            goto done;
        }
        headers[nh++] = (struct httpc_header){a->custom_auth_header, custom};
    }
    struct scaler_query_req q = {
        .server = t->server_address,
        .query = t->query,
        .params = params,
        .nparams = np,
        .http =
            {
                .headers = headers,
                .nheaders = nh,
                .authorization_credentials_file = a->bearer_token_file,
                .basic_auth_username = a->basic_user,
                .basic_auth_password_file = a->basic_user ? a->basic_password_file : NULL,
                .tls_ca_file = a->ca_file,
                .tls_insecure_skip_verify = t->unsafe_ssl,
            },
        .timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : QUERY_DEFAULT_TIMEOUT_MS,
        .signer = a->signer,
    };
    long status = 0;
    char qerr[512] = "";
    ss_buf_reset(&r->body);
    int rc = scaler_query(&q, &status, &r->body, qerr, sizeof qerr);
    if (rc) {
        snprintf(errbuf, errlen, "%s", qerr[0] ? qerr : ss_strerror(rc));
        goto done;
    }
    if (status == 403 && a->signer)
        aws_signer_credentials_expired(a->signer); /* refresh once; the next poll retries */
    double v = 0;
    rc = scaler_promresult_parse((int)status, r->body.data ? r->body.data : "", r->body.len,
                                 t->ignore_null_values, &v, qerr, sizeof qerr);
    if (rc) {
        snprintf(errbuf, errlen, "%s", qerr);
        goto done;
    }
    res->ok = true;
    res->value = v;
    res->error = NULL;
done:
    ss_free_secret(custom);
}

static const char *trigger_label(const struct scaler_trigger *t, size_t i, char *buf, size_t cap)
{
    if (t->name)
        return t->name;
    snprintf(buf, cap, "%zu", i);
    return buf;
}

/* One poll (or, with hpa_only, one HPA sync between polls) at the clock `now`. */
static int poll_object(struct scaler_runner *r, size_t idx, int64_t now, bool hpa_only)
{
    struct object_rt *ob = &r->objs[idx];
    const struct scaler_object *so = ob->so;
    struct scaler_trigger_result res[SCALER_MAX_TRIGGERS];
    char errs[SCALER_MAX_TRIGGERS][384];
    size_t nt = so->n_triggers < SCALER_MAX_TRIGGERS ? so->n_triggers : SCALER_MAX_TRIGGERS;
    size_t nerr = 0;
    for (size_t i = 0; i < nt; i++) {
        query_trigger(r, &so->triggers[i], &ob->trig[i], &res[i], errs[i], sizeof errs[i]);
        nerr += !res[i].ok;
    }

    /* what was seen, for the log line: "value=12.5" or "value[name]=12.5 ..." */
    struct ss_buf line;
    ss_buf_init(&line, 8192);
    ss_buf_printf(&line, "scaledobject=%s/%s target=%s/%s", ob->ns, so->name, so->target_kind,
                  so->target_name);
    for (size_t i = 0; i < nt; i++) {
        char num[40], lb[24];
        if (res[i].ok)
            ss_format_double(num, sizeof num, res[i].value);
        else
            snprintf(num, sizeof num, "error");
        if (nt == 1)
            ss_buf_printf(&line, " value=%s", num);
        else
            ss_buf_printf(&line, " value[%s]=%s", trigger_label(&so->triggers[i], i, lb, sizeof lb), num);
    }
    if (hpa_only)
        ss_buf_printf(&line, " step=hpa-sync");

    struct kube_target kt = {ob->ns, so->target_api_version, so->target_kind, so->target_name};
    struct kube_scale sc;
    struct kube_error ke;
    int rc = kube_get_scale(r->kube, &kt, &sc, &ke);
    if (rc) {
        ss_buf_printf(&line,
                      " active=? current=? desired=? rule=error action=none | cannot read the scale: %s",
                      ke.message);
        for (size_t i = 0; i < nt; i++)
            if (!res[i].ok) {
                char lb[24];
                ss_buf_printf(&line, "; trigger %s: %s", trigger_label(&so->triggers[i], i, lb, sizeof lb),
                              res[i].error);
            }
        if (ke.retryable)
            ss_warn("scaler", "%s", line.data ? line.data : "");
        else
            ss_error("scaler", "%s", line.data ? line.data : "");
        pthread_mutex_lock(&r->mu);
        ob->polls++;
        ob->kube_errors++;
        ob->query_errors += nerr;
        for (size_t i = 0; i < nt; i++)
            if (res[i].ok) {
                ob->trig[i].has_value = true;
                ob->trig[i].value = res[i].value;
                ob->trig[i].active = res[i].value > so->triggers[i].activation_threshold;
            }
        pthread_mutex_unlock(&r->mu);
        ss_buf_free(&line);
        return rc;
    }

    /* Annotations are optional: without RBAC for the workload itself the scaler
     * still works, only the pause annotations are not seen. Warn once. */
    struct kube_workload wl;
    struct kube_error we;
    bool have_wl = kube_get_workload(r->kube, &kt, KEDA_ANNOTATIONS, &wl, &we) == 0;
    if (!have_wl && !ob->annotations_warned) {
        ss_warn("scaler",
                "scaledobject=%s/%s: cannot read %s annotations, pause annotations are not seen: %s", ob->ns,
                so->name, so->target_kind, we.message);
        ob->annotations_warned = true;
    } else if (have_wl) {
        ob->annotations_warned = false;
    }

    /* only KEDA's keys: scaler_decide reads nothing else */
    struct scaler_annotation ann[sizeof wl.annotations / sizeof wl.annotations[0]];
    for (size_t i = 0; have_wl && i < wl.n_annotations; i++)
        ann[i] = (struct scaler_annotation){wl.annotations[i].key, wl.annotations[i].value};
    struct scaler_input in = {
        .now_ms = now,
        .current_replicas = sc.spec_replicas,
        .ready_replicas = have_wl ? wl.ready_replicas : -1,
        .results = res,
        .n_results = nt,
        .annotations = have_wl && wl.n_annotations ? ann : NULL,
        .n_annotations = have_wl ? wl.n_annotations : 0,
        .hpa_sync_period_ms = r->sync_period_ms,
        .hpa_only = hpa_only,
    };
    struct scaler_decision d;
    rc = scaler_decide(so, ob->st, &in, &d);
    if (rc) {
        ss_error("scaler", "%s | cannot decide: %s", line.data ? line.data : "", ss_strerror(rc));
        ss_buf_free(&line);
        return rc;
    }

    char action[64];
    enum { ACT_NONE, ACT_DRY, ACT_OK, ACT_FAIL } act = ACT_NONE;
    struct kube_error pe = {0};
    if (d.replicas != sc.spec_replicas) {
        if (r->dry_run) {
            act = ACT_DRY;
            snprintf(action, sizeof action, "dry-run(%d->%d)", (int)sc.spec_replicas, (int)d.replicas);
        } else if (kube_patch_scale(r->kube, &kt, d.replicas, NULL, &pe) == 0) {
            act = ACT_OK;
            snprintf(action, sizeof action, "scaled(%d->%d)", (int)sc.spec_replicas, (int)d.replicas);
        } else {
            act = ACT_FAIL;
            snprintf(action, sizeof action, "scale-failed(%d->%d)", (int)sc.spec_replicas, (int)d.replicas);
        }
    } else {
        snprintf(action, sizeof action, "none");
    }
    /* A failed query says nothing about activity: "unknown", not "false". */
    ss_buf_printf(&line, " active=%s current=%d desired=%d rule=%s action=%s | %s",
                  d.active  ? "true"
                  : d.error ? "unknown"
                            : "false",
                  (int)sc.spec_replicas, (int)d.replicas, scaler_rule_name(d.rule), action, d.explanation);
    for (size_t i = 0; i < nt; i++)
        if (!res[i].ok) { /* each error once, here; the explanation only names the trigger */
            char lb[24];
            ss_buf_printf(&line, "; trigger %s: %s", trigger_label(&so->triggers[i], i, lb, sizeof lb),
                          res[i].error);
        }
    if (act == ACT_FAIL)
        ss_buf_printf(&line, "; %s", pe.message);
    if (act == ACT_FAIL && !pe.retryable)
        ss_error("scaler", "%s", line.data ? line.data : "");
    else if (act == ACT_FAIL || nerr)
        ss_warn("scaler", "%s", line.data ? line.data : "");
    else
        ss_info("scaler", "%s", line.data ? line.data : "");
    ss_buf_free(&line);

    pthread_mutex_lock(&r->mu);
    ob->polls++;
    ob->polled = true;
    ob->has_current = true;
    ob->current = act == ACT_OK ? d.replicas : sc.spec_replicas;
    ob->desired = d.replicas;
    ob->active = d.active;
    ob->fallback = d.rule == SCALER_RULE_FALLBACK;
    ob->paused = d.rule == SCALER_RULE_PAUSED;
    ob->query_errors += nerr;
    ob->scaled += act == ACT_OK;
    ob->scale_failed += act == ACT_FAIL;
    ob->dry_run += act == ACT_DRY;
    ob->kube_errors += act == ACT_FAIL;
    for (size_t i = 0; i < nt; i++)
        if (res[i].ok) {
            ob->trig[i].has_value = true;
            ob->trig[i].value = res[i].value;
            ob->trig[i].active = res[i].value > so->triggers[i].activation_threshold;
        }
    pthread_mutex_unlock(&r->mu);
    return act == ACT_FAIL ? SS_EHTTP : nerr ? SS_EIO : 0;
}

int scaler_runner_poll(struct scaler_runner *r, size_t idx)
{
    if (idx >= r->n)
        return SS_EINVAL;
    return poll_object(r, idx, ss_mono_ms(), false);
}

/* The object's next wake-up: its poll, or its HPA sync when that comes first. */
static int64_t next_wake(const struct object_rt *ob, bool *hpa_only)
{
    int64_t sync = scaler_state_next_sync_ms(ob->st);
    *hpa_only = sync != INT64_MIN && sync < ob->next_due_ms && sync > ob->sync_skipped_ms;
    return *hpa_only ? sync : ob->next_due_ms;
}

/* ---- the loop ---------------------------------------------------------- */

int scaler_runner_run(struct scaler_runner *r)
{
    pthread_mutex_lock(&r->mu);
    int64_t start = ss_mono_ms();
    for (size_t i = 0; i < r->n; i++) {
        r->objs[i].next_due_ms = start;
        r->objs[i].sync_skipped_ms = INT64_MIN;
    }
    while (!r->stop && r->n) {
        size_t next = 0;
        bool hpa_only = false;
        int64_t due = next_wake(&r->objs[0], &hpa_only);
        for (size_t i = 1; i < r->n; i++) {
            bool h;
            int64_t w = next_wake(&r->objs[i], &h);
            if (w < due) {
                due = w;
                next = i;
                hpa_only = h;
            }
        }
        int64_t now = ss_mono_ms();
        if (due > now) {
            int64_t wait = due - now < MAX_WAIT_MS ? due - now : MAX_WAIT_MS;
            struct timespec ts = ss_mono_deadline_ms(wait);
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        /* the decision's clock is the beat it was due on, unless the loop is late
         * by more than a beat's worth of jitter */
        int64_t at = now - due < MAX_WAIT_MS ? due : now;
        poll_object(r, next, at, hpa_only); /* failures are logged and counted inside */
        pthread_mutex_lock(&r->mu);
        if (hpa_only) {
            if (scaler_state_next_sync_ms(r->objs[next].st) <= due)
                r->objs[next].sync_skipped_ms = due;
            continue; /* otherwise the state moved its next sync on */
        }
        /* pollingInterval counts from the start of a poll; after a stall, do not
         * fire a burst of catch-up polls */
        struct object_rt *ob = &r->objs[next];
        int64_t interval = (int64_t)(ob->so->polling_interval_s > 0 ? ob->so->polling_interval_s : 30) * 1000;
        ob->next_due_ms = due + interval;
        if (ob->next_due_ms <= ss_mono_ms())
            ob->next_due_ms = ss_mono_ms() + interval;
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void scaler_runner_stop(struct scaler_runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- self-metrics ------------------------------------------------------ */

static int put_object_labels(struct ss_buf *b, const struct object_rt *ob)
{
    int rc = ss_buf_append_str(b, "{namespace=\"");
    rc = rc ? rc : ss_escape_label_value(b, ob->ns, strlen(ob->ns));
    rc = rc ? rc : ss_buf_append_str(b, "\",scaledobject=\"");
    rc = rc ? rc : ss_escape_label_value(b, ob->so->name, strlen(ob->so->name));
    return rc ? rc : ss_buf_append_str(b, "\"");
}

enum obj_metric { M_CURRENT, M_DESIRED, M_ACTIVE, M_FALLBACK, M_PAUSED, M_POLLS, M_QERR, M_KERR };

static const struct {
    const char *name, *type, *help;
} obj_metrics[] = {
    [M_CURRENT] = {"scrapeship_scaler_current_replicas", "gauge",
                   "The target's replicas (scale spec.replicas) after the last poll."},
    [M_DESIRED] = {"scrapeship_scaler_desired_replicas", "gauge", "Replicas the last decision asked for."},
    [M_ACTIVE] = {"scrapeship_scaler_active", "gauge",
                  "1 when some trigger is above its activationThreshold."},
    [M_FALLBACK] = {"scrapeship_scaler_fallback_active", "gauge",
                    "1 when the last decision used fallback replicas."},
    [M_PAUSED] = {"scrapeship_scaler_paused", "gauge", "1 when a pause annotation decided the last poll."},
    [M_POLLS] = {"scrapeship_scaler_polls_total", "counter", "Polls of each ScaledObject."},
    [M_QERR] = {"scrapeship_scaler_query_errors_total", "counter", "Failed trigger queries."},
    [M_KERR] = {"scrapeship_scaler_kube_errors_total", "counter",
                "Failed Kubernetes API calls (read or scale)."},
};

static double obj_value(const struct object_rt *ob, enum obj_metric m)
{
    switch (m) {
    case M_CURRENT: return ob->current;
    case M_DESIRED: return ob->desired;
    case M_ACTIVE: return ob->active;
    case M_FALLBACK: return ob->fallback;
    case M_PAUSED: return ob->paused;
    case M_POLLS: return (double)ob->polls;
    case M_QERR: return (double)ob->query_errors;
    case M_KERR: return (double)ob->kube_errors;
    }
    return 0;
}

int scaler_runner_render_metrics(void *ud, struct ss_buf *out)
{
    struct scaler_runner *r = ud;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t m = 0; m < sizeof obj_metrics / sizeof obj_metrics[0] && !rc; m++) {
        rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", obj_metrics[m].name, obj_metrics[m].help,
                           obj_metrics[m].name, obj_metrics[m].type);
        for (size_t i = 0; i < r->n && !rc; i++) {
            const struct object_rt *ob = &r->objs[i];
            bool gauge_needs_poll = m <= M_PAUSED;
            if (gauge_needs_poll && !ob->polled)
                continue; /* no value yet: absent rather than a made-up 0 */
            char num[40];
            ss_format_double(num, sizeof num, obj_value(ob, (enum obj_metric)m));
            rc = ss_buf_append_str(out, obj_metrics[m].name);
            rc = rc ? rc : put_object_labels(out, ob);
            rc = rc ? rc : ss_buf_printf(out, "} %s\n", num);
        }
    }
    static const char *const metric_name[] = {"scrapeship_scaler_metric_value",
                                              "scrapeship_scaler_trigger_active"};
    static const char *const metric_help[] = {
        "Last successful value of each trigger's query.",
        "1 when the trigger's last value was above its activationThreshold."};
    for (size_t m = 0; m < 2 && !rc; m++) {
        rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", metric_name[m], metric_help[m],
                           metric_name[m]);
        for (size_t i = 0; i < r->n && !rc; i++) {
            const struct object_rt *ob = &r->objs[i];
            for (size_t k = 0; k < ob->so->n_triggers && !rc; k++) {
                if (!ob->trig[k].has_value)
                    continue;
                char num[40], lb[24];
                ss_format_double(num, sizeof num, m == 0 ? ob->trig[k].value : ob->trig[k].active);
                const char *trigger = trigger_label(&ob->so->triggers[k], k, lb, sizeof lb);
                rc = ss_buf_append_str(out, metric_name[m]);
                rc = rc ? rc : put_object_labels(out, ob);
                rc = rc ? rc : ss_buf_append_str(out, ",trigger=\"");
                rc = rc ? rc : ss_escape_label_value(out, trigger, strlen(trigger));
                rc = rc ? rc : ss_buf_printf(out, "\"} %s\n", num);
            }
        }
    }
    if (!rc)
        rc =
            ss_buf_append_str(out, "# HELP scrapeship_scaler_scale_actions_total Replica changes by result.\n"
                                   "# TYPE scrapeship_scaler_scale_actions_total counter\n");
    for (size_t i = 0; i < r->n && !rc; i++) {
        const struct object_rt *ob = &r->objs[i];
        const char *res[] = {"success", "failure", "dry_run"};
        uint64_t v[] = {ob->scaled, ob->scale_failed, ob->dry_run};
        for (size_t k = 0; k < 3 && !rc; k++) {
            rc = ss_buf_append_str(out, "scrapeship_scaler_scale_actions_total");
            rc = rc ? rc : put_object_labels(out, ob);
            rc = rc ? rc : ss_buf_printf(out, ",result=\"%s\"} %llu\n", res[k], (unsigned long long)v[k]);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}
