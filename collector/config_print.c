/* config_print.c: print a loaded configuration back as YAML (check-config).
 *
 * The output is a complete, normalised config: every default the loader applied is
 * written out, every string is double-quoted and escaped so it loads back to the
 * same bytes (a "$" that the loader would expand is doubled), and secrets are shown
 * as "<secret>", never their value. Loading the output and printing it again gives
 * the same text; tests/fuzz/fuzz_config.c checks that.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "relabel.h"
#include "ss.h"
#include "sstext.h"

struct printer {
    FILE *f;
    bool dash; /* a "- " is owed before the next key: we are starting a list item */
};

static void p_indent(struct printer *p, int ind)
{
    if (p->dash) {
        fprintf(p->f, "%*s- ", ind - 2, "");
        p->dash = false;
    } else {
        fprintf(p->f, "%*s", ind, "");
    }
}

/* Close a list item that printed nothing. */
static void p_item_end(struct printer *p, int ind)
{
    if (p->dash) {
        fprintf(p->f, "%*s- {}\n", ind - 2, "");
        p->dash = false;
    }
}

/* A double-quoted YAML scalar: any byte string round-trips. dollar: also double a "$"
 * that the loader would otherwise read as the start of "$$" or "${...}". */
static void p_quoted(FILE *f, const char *s, bool dollar)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    while (*u) {
        unsigned char c = *u;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            u++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\x%02x", c);
            u++;
        } else if (c == '$') {
            fputc('$', f);
            if (dollar && (u[1] == '$' || u[1] == '{'))
                fputc('$', f);
            u++;
        } else if (c < 0x80) {
            fputc(c, f);
            u++;
        } else {
            /* Values are valid UTF-8 (checked on load). Escape what YAML forbids raw or
             * reads as a line break: C1 controls, NEL, LS, PS, BOM, U+FFFE/U+FFFF. */
            int32_t cp;
            size_t n = ss_utf8_decode((const char *)u, strnlen((const char *)u, 4), &cp);
            if (cp >= 0x80 && cp <= 0x9F)
                fprintf(f, "\\x%02x", (unsigned)cp);
            else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF)
                fprintf(f, "\\u%04x", (unsigned)cp);
            else
                fwrite(u, 1, n, f);
            u += n;
        }
    }
    fputc('"', f);
}

static void p_str_as(struct printer *p, int ind, const char *key, const char *v, bool expanded)
{
    if (!v)
        return;
    p_indent(p, ind);
    fprintf(p->f, "%s: ", key);
    p_quoted(p->f, v, expanded);
    fputc('\n', p->f);
}

static void p_str(struct printer *p, int ind, const char *key, const char *v)
{
    p_str_as(p, ind, key, v, true);
}

static void p_secret(struct printer *p, int ind, const char *key, const char *v)
{
    if (!v)
        return;
    p_indent(p, ind);
    fprintf(p->f, "%s: \"<secret>\"\n", key);
}

/* A URL with any userinfo password replaced by <secret>. */
static void p_url(struct printer *p, int ind, const char *key, const char *url)
{
    if (!url)
        return;
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        p_str(p, ind, key, url);
        return;
    }
    size_t head = (size_t)(colon + 1 - url);
    size_t total = head + strlen("<secret>") + strlen(at) + 1;
    char *red = malloc(total);
    if (!red) {
        p_indent(p, ind);
        fprintf(p->f, "%s: \"<secret>\"\n", key);
        return;
    }
    memcpy(red, url, head);
    snprintf(red + head, total - head, "<secret>%s", at);
    p_str(p, ind, key, red);
    free(red);
}

static void p_dur(struct printer *p, int ind, const char *key, int64_t ms)
{
    char b[64];
    ss_format_duration_ms(b, sizeof b, ms);
    p_indent(p, ind);
    fprintf(p->f, "%s: %s\n", key, b);
}

static void p_bool(struct printer *p, int ind, const char *key, bool v)
{
    p_indent(p, ind);
    fprintf(p->f, "%s: %s\n", key, v ? "true" : "false");
}

static void p_i64(struct printer *p, int ind, const char *key, int64_t v)
{
    p_indent(p, ind);
    fprintf(p->f, "%s: %lld\n", key, (long long)v);
}

static void p_u64(struct printer *p, int ind, const char *key, uint64_t v)
{
    p_indent(p, ind);
    fprintf(p->f, "%s: %llu\n", key, (unsigned long long)v);
}

static void p_strv(struct printer *p, int ind, const char *key, char *const *v, size_t n)
{
    if (!n)
        return;
    p_indent(p, ind);
    fprintf(p->f, "%s:\n", key);
    for (size_t i = 0; i < n; i++) {
        fprintf(p->f, "%*s- ", ind, "");
        p_quoted(p->f, v[i], true);
        fputc('\n', p->f);
    }
}

static void p_kv(struct printer *p, int ind, const char *key, const struct cfg_kv *kv, size_t n)
{
    if (!n)
        return;
    p_indent(p, ind);
    fprintf(p->f, "%s:\n", key);
    for (size_t i = 0; i < n; i++) {
        fprintf(p->f, "%*s", ind + 2, "");
        p_quoted(p->f, kv[i].key, false); /* keys are never expanded */
        fputs(": ", p->f);
        p_quoted(p->f, kv[i].value, true);
        fputc('\n', p->f);
    }
}

static void p_http(struct printer *p, int ind, const struct cfg_http_client *h)
{
    if (h->has_basic_auth) {
        if (!h->basic_auth_username && !h->basic_auth_password && !h->basic_auth_password_file) {
            p_indent(p, ind);
            fputs("basic_auth: {}\n", p->f);
        } else {
            p_indent(p, ind);
            fputs("basic_auth:\n", p->f);
            p_str(p, ind + 2, "username", h->basic_auth_username);
            p_secret(p, ind + 2, "password", h->basic_auth_password);
            p_str(p, ind + 2, "password_file", h->basic_auth_password_file);
        }
    }
    if (h->authorization_type) {
        p_indent(p, ind);
        fputs("authorization:\n", p->f);
        p_str(p, ind + 2, "type", h->authorization_type);
        p_secret(p, ind + 2, "credentials", h->authorization_credentials);
        p_str(p, ind + 2, "credentials_file", h->authorization_credentials_file);
    }
    p_indent(p, ind);
    fputs("tls_config:\n", p->f);
    p_str(p, ind + 2, "ca_file", h->tls.ca_file);
    p_str(p, ind + 2, "cert_file", h->tls.cert_file);
    p_str(p, ind + 2, "key_file", h->tls.key_file);
    p_str(p, ind + 2, "server_name", h->tls.server_name);
    p_bool(p, ind + 2, "insecure_skip_verify", h->tls.insecure_skip_verify);
    p_str(p, ind + 2, "min_version", h->tls.min_version);
    p_str(p, ind + 2, "max_version", h->tls.max_version);
    p_url(p, ind, "proxy_url", h->proxy_url);
    p_bool(p, ind, "follow_redirects", h->follow_redirects);
    p_bool(p, ind, "enable_http2", h->enable_http2);
}

static void p_relabel(struct printer *p, int ind, const char *key, const struct relabel_config *r, size_t n)
{
    if (!n)
        return;
    p_indent(p, ind);
    fprintf(p->f, "%s:\n", key);
    for (size_t i = 0; i < n; i++) {
        p->dash = true;
        p_strv(p, ind + 2, "source_labels", r[i].source_labels, r[i].nsource_labels);
        /* a rule is read as written, without ${VAR} expansion (config.c) */
        p_str_as(p, ind + 2, "separator", r[i].separator, false);
        p_str_as(p, ind + 2, "target_label", r[i].target_label, false);
        p_str_as(p, ind + 2, "regex", r[i].regex, false);
        if (r[i].has_modulus)
            p_u64(p, ind + 2, "modulus", r[i].modulus);
        p_str_as(p, ind + 2, "replacement", r[i].replacement, false);
        p_str(p, ind + 2, "action", relabel_action_name(r[i].action));
        p_item_end(p, ind + 2);
    }
}

static void p_scrape(struct printer *p, const struct cfg_scrape *sc)
{
    const int ind = 4;
    p->dash = true;
    p_str(p, ind, "job_name", sc->job_name);
    p_bool(p, ind, "honor_labels", sc->honor_labels);
    p_bool(p, ind, "honor_timestamps", sc->honor_timestamps);
    if (sc->strict_parsing)
        p_bool(p, ind, "strict_parsing", true);
    if (sc->nparams) {
        p_indent(p, ind);
        fputs("params:\n", p->f);
        for (size_t i = 0; i < sc->nparams; i++) {
            fprintf(p->f, "%*s", ind + 2, "");
            p_quoted(p->f, sc->params[i].name, false);
            if (!sc->params[i].nvalues) {
                fputs(": []\n", p->f);
                continue;
            }
            fputs(":\n", p->f);
            for (size_t j = 0; j < sc->params[i].nvalues; j++) {
                fprintf(p->f, "%*s- ", ind + 4, "");
                p_quoted(p->f, sc->params[i].values[j], true);
                fputc('\n', p->f);
            }
        }
    }
    p_dur(p, ind, "scrape_interval", sc->scrape_interval_ms);
    p_dur(p, ind, "scrape_timeout", sc->scrape_timeout_ms);
    p_str(p, ind, "metrics_path", sc->metrics_path);
    p_str(p, ind, "scheme", sc->scheme);
    p_http(p, ind, &sc->http);
    if (sc->nstatic_configs) {
        p_indent(p, ind);
        fputs("static_configs:\n", p->f);
        for (size_t i = 0; i < sc->nstatic_configs; i++) {
            p->dash = true;
            p_strv(p, ind + 4, "targets", sc->static_configs[i].targets, sc->static_configs[i].ntargets);
            p_kv(p, ind + 4, "labels", sc->static_configs[i].labels, sc->static_configs[i].nlabels);
            p_item_end(p, ind + 4);
        }
    }
    if (sc->nfile_sd_configs) {
        p_indent(p, ind);
        fputs("file_sd_configs:\n", p->f);
        for (size_t i = 0; i < sc->nfile_sd_configs; i++) {
            p->dash = true;
            p_strv(p, ind + 4, "files", sc->file_sd_configs[i].files, sc->file_sd_configs[i].nfiles);
            p_dur(p, ind + 4, "refresh_interval", sc->file_sd_configs[i].refresh_interval_ms);
        }
    }
    if (sc->nkubernetes_sd_configs) {
        p_indent(p, ind);
        fputs("kubernetes_sd_configs:\n", p->f);
        for (size_t i = 0; i < sc->nkubernetes_sd_configs; i++) {
            const struct cfg_kube_sd *ks = &sc->kubernetes_sd_configs[i];
            p->dash = true;
            p_str(p, ind + 4, "role", ks->role);
            p_url(p, ind + 4, "api_server", ks->api_server);
            p_str(p, ind + 4, "kubeconfig_file", ks->kubeconfig_file);
            p_indent(p, ind + 4);
            fputs("namespaces:\n", p->f);
            p_bool(p, ind + 6, "own_namespace", ks->own_namespace);
            p_strv(p, ind + 6, "names", ks->namespaces, ks->nnamespaces);
            if (ks->nselectors) {
                p_indent(p, ind + 4);
                fputs("selectors:\n", p->f);
                for (size_t s = 0; s < ks->nselectors; s++) {
                    p->dash = true;
                    p_str(p, ind + 8, "role", ks->selectors[s].role);
                    p_str(p, ind + 8, "label", ks->selectors[s].label);
                    p_str(p, ind + 8, "field", ks->selectors[s].field);
                    p_item_end(p, ind + 8);
                }
            }
            if (ks->api_server)
                p_http(p, ind + 4, &ks->http);
        }
    }
    p_relabel(p, ind, "relabel_configs", sc->relabel_configs, sc->nrelabel_configs);
    p_relabel(p, ind, "metric_relabel_configs", sc->metric_relabel_configs, sc->nmetric_relabel_configs);
    p_u64(p, ind, "sample_limit", sc->sample_limit);
    p_u64(p, ind, "target_limit", sc->target_limit);
    p_u64(p, ind, "label_limit", sc->label_limit);
    p_u64(p, ind, "label_name_length_limit", sc->label_name_length_limit);
    p_u64(p, ind, "label_value_length_limit", sc->label_value_length_limit);
    p_u64(p, ind, "body_size_limit", sc->body_size_limit);
}

static void p_remote_write(struct printer *p, const struct cfg_remote_write *rw)
{
    const int ind = 4;
    p->dash = true;
    p_url(p, ind, "url", rw->url);
    p_str(p, ind, "name", rw->name);
    p_dur(p, ind, "remote_timeout", rw->remote_timeout_ms);
    p_kv(p, ind, "headers", rw->headers, rw->nheaders);
    p_relabel(p, ind, "write_relabel_configs", rw->write_relabel_configs, rw->nwrite_relabel_configs);
    p_bool(p, ind, "send_exemplars", rw->send_exemplars);
    p_http(p, ind, &rw->http);
    p_indent(p, ind);
    fputs("queue_config:\n", p->f);
    p_i64(p, ind + 2, "capacity", rw->queue.capacity);
    p_i64(p, ind + 2, "min_shards", rw->queue.min_shards);
    p_i64(p, ind + 2, "max_shards", rw->queue.max_shards);
    p_i64(p, ind + 2, "max_samples_per_send", rw->queue.max_samples_per_send);
    p_dur(p, ind + 2, "batch_send_deadline", rw->queue.batch_send_deadline_ms);
    p_dur(p, ind + 2, "min_backoff", rw->queue.min_backoff_ms);
    p_dur(p, ind + 2, "max_backoff", rw->queue.max_backoff_ms);
    p_bool(p, ind + 2, "retry_on_http_429", rw->queue.retry_on_http_429);
    p_dur(p, ind + 2, "sample_age_limit", rw->queue.sample_age_limit_ms);
    p_u64(p, ind + 2, "max_memory_bytes", rw->queue.max_memory_bytes);
    p_indent(p, ind);
    fputs("metadata_config:\n", p->f);
    p_bool(p, ind + 2, "send", rw->metadata.send);
    p_dur(p, ind + 2, "send_interval", rw->metadata.send_interval_ms);
    p_i64(p, ind + 2, "max_samples_per_send", rw->metadata.max_samples_per_send);
    if (rw->sigv4.enabled) {
        p_indent(p, ind);
        fputs("sigv4:\n", p->f);
        p_str(p, ind + 2, "region", rw->sigv4.region);
        p_secret(p, ind + 2, "access_key", rw->sigv4.access_key);
        p_secret(p, ind + 2, "secret_key", rw->sigv4.secret_key);
        p_str(p, ind + 2, "profile", rw->sigv4.profile);
        p_str(p, ind + 2, "role_arn", rw->sigv4.role_arn);
        p_str(p, ind + 2, "external_id", rw->sigv4.external_id);
        p_str(p, ind + 2, "service", rw->sigv4.service);
        p_str(p, ind + 2, "session_name", rw->sigv4.session_name);
        p_str(p, ind + 2, "sts_region", rw->sigv4.sts_region);
    }
    if (rw->otel.enabled) {
        p_indent(p, ind);
        fputs("otel_translation:\n", p->f);
        p_str(p, ind + 2, "namespace", rw->otel.namespace);
        p_bool(p, ind + 2, "add_metric_suffixes", rw->otel.add_metric_suffixes);
        p_bool(p, ind + 2, "target_info", rw->otel.target_info);
        p_bool(p, ind + 2, "resource_to_telemetry_conversion", rw->otel.resource_to_telemetry);
        p_kv(p, ind + 2, "external_labels", rw->otel.external_labels, rw->otel.nexternal_labels);
    }
}

int cfg_print(const struct cfg *c, FILE *out)
{
    if (!c || !out)
        return SS_EINVAL;
    struct printer p = {out, false};
    fputs("global:\n", out);
    p_dur(&p, 2, "scrape_interval", c->global.scrape_interval_ms);
    p_dur(&p, 2, "scrape_timeout", c->global.scrape_timeout_ms);
    p_kv(&p, 2, "external_labels", c->global.external_labels, c->global.nexternal_labels);
    if (c->nscrape_configs) {
        fputs("scrape_configs:\n", out);
        for (size_t i = 0; i < c->nscrape_configs; i++)
            p_scrape(&p, &c->scrape_configs[i]);
    }
    if (c->nremote_writes) {
        fputs("remote_write:\n", out);
        for (size_t i = 0; i < c->nremote_writes; i++)
            p_remote_write(&p, &c->remote_writes[i]);
    }
    if (c->storage_path) {
        fputs("storage:\n", out);
        p_str(&p, 2, "path", c->storage_path);
        p_u64(&p, 2, "max_disk_bytes", c->storage_max_disk_bytes);
        p_dur(&p, 2, "max_age", c->storage_max_age_ms);
        p_dur(&p, 2, "fsync_interval", c->storage_fsync_interval_ms);
    }
    if (c->monitors.enabled) {
        const struct cfg_monitor_discovery *m = &c->monitors;
        fputs("monitor_discovery:\n", out);
        p_bool(&p, 2, "service_monitors", m->service_monitors);
        p_bool(&p, 2, "pod_monitors", m->pod_monitors);
        p_str(&p, 2, "label_selector", m->label_selector);
        p_strv(&p, 2, "namespaces", m->namespaces, m->nnamespaces);
        p_str(&p, 2, "node_name", m->node_name);
        if (m->shards) {
            p_u64(&p, 2, "shards", m->shards);
            p_u64(&p, 2, "shard", m->shard);
        }
        p_str(&p, 2, "api_server", m->api_server);
        p_str(&p, 2, "kubeconfig_file", m->kubeconfig_file);
        p_bool(&p, 2, "read_secrets", m->read_secrets);
        p_dur(&p, 2, "refresh_interval", m->refresh_interval_ms);
    }
    if (fflush(out) != 0 || ferror(out))
        return SS_EIO;
    return 0;
}

int cfg_print_ignored(const struct cfg *c, FILE *out)
{
    if (!c || !out)
        return SS_EINVAL;
    if (c->health_check_endpoint)
        fprintf(out, "# health_check: served on %s\n", c->health_check_endpoint);
    for (size_t i = 0; i < c->notel_ignored; i++)
        fprintf(out, "# ignored: %s\n", c->otel_ignored[i]);
    if (fflush(out) != 0 || ferror(out))
        return SS_EIO;
    return 0;
}
