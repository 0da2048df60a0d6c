/* jobs.c: translate the loaded config into the scrape engine's job descriptions.
 *
 * The scrape module does not know the config format (it sits upstream of the
 * collector), so this file maps struct cfg_scrape onto struct scrape_job, compiling
 * the relabel rules once. Strings are borrowed from the config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

struct collector_job_extra {
    struct relabel_rule **relabel;
    size_t nrelabel;
    struct relabel_rule **metric_relabel;
    size_t nmetric_relabel;
    struct ss_kv *params;
    struct scrape_target_group *groups;
    struct ss_kv **group_labels;
    size_t ngroups;
    const char **sd_files;
    struct kube_sd **kube; /* one per kubernetes_sd_configs entry */
    struct kube_sd_selector **kube_selectors;
    struct scrape_discoverer *discoverers;
    size_t nkube;
};

static int compile_rules(const struct relabel_config *cfg, size_t n, struct relabel_rule ***out,
                         const char *job, const char *what, char *err, size_t errlen)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return SS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char e[256];
        int rc = relabel_compile(&cfg[i], &(*out)[i], e, sizeof e);
        if (rc) {
            snprintf(err, errlen, "job %s: %s[%zu]: %s", job, what, i, e);
            return rc;
        }
    }
    return 0;
}

static void free_rules(struct relabel_rule **r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        relabel_rule_free(r[i]);
    free(r);
}

void collector_jobs_free(struct collector_jobs *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->extra && i < j->njobs; i++) {
        struct collector_job_extra *x = &j->extra[i];
        free_rules(x->relabel, x->nrelabel);
        free_rules(x->metric_relabel, x->nmetric_relabel);
        free(x->params);
        for (size_t g = 0; g < x->ngroups; g++)
            free(x->group_labels[g]);
        free(x->group_labels);
        free(x->groups);
        free(x->sd_files);
        /* the discoverers' threads stop here, before the strings they borrow go */
        for (size_t k = 0; k < x->nkube; k++) {
            kube_sd_free(x->kube[k]);
            free(x->kube_selectors[k]);
        }
        free(x->kube);
        free(x->kube_selectors);
        free(x->discoverers);
    }
    free(j->extra);
    free(j->jobs);
    free(j->external_labels);
    memset(j, 0, sizeof *j);
}

void collector_http_config(const struct cfg_http_client *c, struct httpc_config *h)
{
    memset(h, 0, sizeof *h);
    h->basic_auth_username =
        c->has_basic_auth ? (c->basic_auth_username ? c->basic_auth_username : "") : NULL;
    h->basic_auth_password = c->basic_auth_password;
    h->basic_auth_password_file = c->basic_auth_password_file;
    h->authorization_type = c->authorization_type;
    h->authorization_credentials = c->authorization_credentials;
    h->authorization_credentials_file = c->authorization_credentials_file;
    h->tls_ca_file = c->tls.ca_file;
    h->tls_cert_file = c->tls.cert_file;
    h->tls_key_file = c->tls.key_file;
    h->tls_server_name = c->tls.server_name;
    h->tls_insecure_skip_verify = c->tls.insecure_skip_verify;
    h->tls_min_version = c->tls.min_version;
    h->tls_max_version = c->tls.max_version;
    h->proxy_url = c->proxy_url;
    h->follow_redirects = c->follow_redirects;
}

/* kubernetes_sd_configs -> one kube_sd discoverer each. Nothing connects yet: the
 * watch starts on the engine's first poll, so check-config stays offline. */
static int map_kube(const struct cfg_scrape *s, struct collector_job_extra *x, struct scrape_job *j,
                    char *err, size_t errlen)
{
    size_t n = s->nkubernetes_sd_configs;
    if (!n)
        return 0;
    x->kube = calloc(n, sizeof *x->kube);
    x->kube_selectors = calloc(n, sizeof *x->kube_selectors);
    x->discoverers = calloc(n, sizeof *x->discoverers);
    if (!x->kube || !x->kube_selectors || !x->discoverers)
        return SS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_kube_sd *ks = &s->kubernetes_sd_configs[i];
        struct kube_sd_selector *sel = calloc(ks->nselectors + 1, sizeof *sel);
        if (!sel)
            return SS_ENOMEM;
        x->kube_selectors[i] = sel;
        x->nkube = i + 1;
        for (size_t k = 0; k < ks->nselectors; k++)
            sel[k] = (struct kube_sd_selector){ks->selectors[k].role, ks->selectors[k].label,
                                               ks->selectors[k].field};
        struct kube_sd_config kc = {
            .job = s->job_name,
            .role = strcmp(ks->role, "endpoints") == 0       ? KUBE_SD_ROLE_ENDPOINTS
                    : strcmp(ks->role, "endpointslice") == 0 ? KUBE_SD_ROLE_ENDPOINTSLICE
                                                             : KUBE_SD_ROLE_POD,
            .api_server = ks->api_server,
            .kubeconfig_file = ks->kubeconfig_file,
            .namespaces = (const char *const *)ks->namespaces,
            .nnamespaces = ks->nnamespaces,
            .own_namespace = ks->own_namespace,
            .selectors = sel,
            .nselectors = ks->nselectors,
            /* for running outside a pod against a copied service account */
            .service_account_dir = getenv("SCRAPESHIP_KUBE_SA_DIR"),
        };
        collector_http_config(&ks->http, &kc.http);
        char e[256] = "";
        int rc = kube_sd_new(&kc, &x->kube[i], e, sizeof e);
        if (rc) {
            snprintf(err, errlen, "job %s: kubernetes_sd_configs[%zu]: %s", s->job_name, i, e);
            return rc;
        }
        kube_sd_discoverer(x->kube[i], &x->discoverers[i]);
    }
    j->discoverers = x->discoverers;
    j->ndiscoverers = n;
    return 0;
}

int collector_jobs_build(const struct cfg *c, struct collector_jobs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = SS_ENOMEM;
    size_t n = c->nscrape_configs;
    out->jobs = calloc(n ? n : 1, sizeof *out->jobs);
    out->extra = calloc(n ? n : 1, sizeof *out->extra);
    out->external_labels = calloc(c->global.nexternal_labels + 1, sizeof *out->external_labels);
    if (!out->jobs || !out->extra || !out->external_labels)
        goto fail;
    out->njobs = n;
    for (size_t i = 0; i < c->global.nexternal_labels; i++)
        out->external_labels[i] =
            (struct ss_kv){c->global.external_labels[i].key, c->global.external_labels[i].value};
    out->nexternal_labels = c->global.nexternal_labels;

    for (size_t i = 0; i < n; i++) {
        const struct cfg_scrape *s = &c->scrape_configs[i];
        struct scrape_job *j = &out->jobs[i];
        struct collector_job_extra *x = &out->extra[i];
        j->name = s->job_name;
        j->interval_ms = s->scrape_interval_ms;
        j->timeout_ms = s->scrape_timeout_ms;
        j->metrics_path = s->metrics_path;
        j->scheme = s->scheme;
        j->honor_labels = s->honor_labels;
        j->honor_timestamps = s->honor_timestamps;
        j->strict_parsing = s->strict_parsing;
        collector_http_config(&s->http, &j->http);
        if (s->http.tls.server_name)
            ss_warn("config",
                    "job %s: tls_config.server_name is not supported yet and is ignored: "
                    "the certificate is verified against the target's host",
                    s->job_name);
        j->sample_limit = s->sample_limit;
        j->target_limit = s->target_limit;
        j->label_limit = s->label_limit;
        j->label_name_length_limit = s->label_name_length_limit;
        j->label_value_length_limit = s->label_value_length_limit;
        j->body_size_limit = s->body_size_limit;

        size_t np = 0;
        for (size_t p = 0; p < s->nparams; p++)
            np += s->params[p].nvalues;
        x->params = calloc(np + 1, sizeof *x->params);
        if (!x->params)
            goto fail;
        for (size_t p = 0; p < s->nparams; p++)
            for (size_t v = 0; v < s->params[p].nvalues; v++)
                x->params[j->nparams++] = (struct ss_kv){s->params[p].name, s->params[p].values[v]};
        j->params = x->params;

        rc = compile_rules(s->relabel_configs, s->nrelabel_configs, &x->relabel, s->job_name,
                           "relabel_configs", err, errlen);
        x->nrelabel = s->nrelabel_configs;
        if (rc)
            goto fail;
        rc = compile_rules(s->metric_relabel_configs, s->nmetric_relabel_configs, &x->metric_relabel,
                           s->job_name, "metric_relabel_configs", err, errlen);
        x->nmetric_relabel = s->nmetric_relabel_configs;
        if (rc)
            goto fail;
        rc = SS_ENOMEM;
        j->relabel = x->relabel;
        j->nrelabel = x->nrelabel;
        j->metric_relabel = x->metric_relabel;
        j->nmetric_relabel = x->nmetric_relabel;

        x->ngroups = s->nstatic_configs;
        x->groups = calloc(x->ngroups + 1, sizeof *x->groups);
        x->group_labels = calloc(x->ngroups + 1, sizeof *x->group_labels);
        if (!x->groups || !x->group_labels)
            goto fail;
        for (size_t g = 0; g < s->nstatic_configs; g++) {
            const struct cfg_static_config *sc = &s->static_configs[g];
            x->group_labels[g] = calloc(sc->nlabels + 1, sizeof *x->group_labels[g]);
            if (!x->group_labels[g])
                goto fail;
            for (size_t l = 0; l < sc->nlabels; l++)
                x->group_labels[g][l] = (struct ss_kv){sc->labels[l].key, sc->labels[l].value};
            x->groups[g] = (struct scrape_target_group){(const char *const *)sc->targets, sc->ntargets,
                                                        x->group_labels[g], sc->nlabels};
        }
        j->static_groups = x->groups;
        j->nstatic_groups = x->ngroups;

        size_t nf = 0;
        for (size_t f = 0; f < s->nfile_sd_configs; f++)
            nf += s->file_sd_configs[f].nfiles;
        x->sd_files = calloc(nf + 1, sizeof *x->sd_files);
        if (!x->sd_files)
            goto fail;
        for (size_t f = 0; f < s->nfile_sd_configs; f++) {
            for (size_t k = 0; k < s->file_sd_configs[f].nfiles; k++)
                x->sd_files[j->nfile_sd_files++] = s->file_sd_configs[f].files[k];
            if (!j->file_sd_refresh_ms || s->file_sd_configs[f].refresh_interval_ms < j->file_sd_refresh_ms)
                j->file_sd_refresh_ms = s->file_sd_configs[f].refresh_interval_ms;
        }
        j->file_sd_files = x->sd_files;
        if ((rc = map_kube(s, x, j, err, errlen)) != 0)
            goto fail;
        rc = SS_ENOMEM;
    }
    return 0;
fail:
    if (rc == SS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    collector_jobs_free(out);
    return rc;
}
