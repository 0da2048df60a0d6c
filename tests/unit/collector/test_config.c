/* test_config.c: the configuration loader (collector/config.c).
 *
 * Good fixtures load with the right values and Prometheus defaults; every
 * tests/unit/collector/configs/broken_*.yml fails with the message on its first line
 * ("# expect: file:line:col: message"); ${VAR} expansion; cfg_print round trips and
 * redacts secrets; size, depth and alias limits; and every prefix of the full fixture
 * either loads or fails cleanly (run under ASan to catch leaks on error paths).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "config_int.h"
#include "ss.h"

#define CONFIGS_DIR SS_SOURCE_DIR "/tests/unit/collector/configs"

/* ---- helpers ------------------------------------------------------------- */

static struct cfg *load_ok(const char *name)
{
    char path[1024], err[512];
    struct cfg *c = NULL;
    snprintf(path, sizeof path, "%s/%s", CONFIGS_DIR, name);
    int rc = cfg_load_file(path, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: rc=%d err=%s", name, rc, err);
    assert_non_null(c);
    return c;
}

static struct cfg *load_str(const char *yaml, char *err, size_t errlen, int *rc)
{
    struct cfg *c = NULL;
    *rc = cfg_load_string(yaml, strlen(yaml), "t.yml", &c, err, errlen);
    if (*rc != 0)
        assert_null(c);
    return c;
}

static void expect_error(const char *yaml, const char *want)
{
    char err[512];
    int rc;
    struct cfg *c = load_str(yaml, err, sizeof err, &rc);
    if (rc == 0) {
        cfg_free(c);
        fail_msg("expected error containing '%s', loaded fine:\n%s", want, yaml);
    }
    if (!strstr(err, want))
        fail_msg("expected error containing '%s', got '%s'", want, err);
}

static char *print_to_string(const struct cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(cfg_print(c, f), 0);
    fclose(f);
    return buf;
}

static void assert_kv(const struct cfg_kv *kv, size_t n, const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key)) {
            assert_string_equal(kv[i].value, value);
            return;
        }
    fail_msg("key %s not found", key);
}

/* ---- structural equality, for the round trip ------------------------------ */

static void eq_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_true(a == b);
    else
        assert_string_equal(a, b);
}

/* Secrets print as <secret>, so only their presence survives a round trip. */
static void eq_secret(const char *a, const char *b)
{
    assert_true(!a == !b);
}

static void eq_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        eq_str(a[i], b[i]);
}

static void eq_kv(const struct cfg_kv *a, size_t na, const struct cfg_kv *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        eq_str(a[i].key, b[i].key);
        eq_str(a[i].value, b[i].value);
    }
}

static void eq_http(const struct cfg_http_client *a, const struct cfg_http_client *b)
{
    eq_str(a->basic_auth_username, b->basic_auth_username);
    eq_secret(a->basic_auth_password, b->basic_auth_password);
    eq_str(a->basic_auth_password_file, b->basic_auth_password_file);
    assert_int_equal(a->has_basic_auth, b->has_basic_auth);
    eq_str(a->authorization_type, b->authorization_type);
    eq_secret(a->authorization_credentials, b->authorization_credentials);
    eq_str(a->authorization_credentials_file, b->authorization_credentials_file);
    eq_str(a->tls.ca_file, b->tls.ca_file);
    eq_str(a->tls.cert_file, b->tls.cert_file);
    eq_str(a->tls.key_file, b->tls.key_file);
    eq_str(a->tls.server_name, b->tls.server_name);
    assert_int_equal(a->tls.insecure_skip_verify, b->tls.insecure_skip_verify);
    eq_str(a->tls.min_version, b->tls.min_version);
    eq_secret(a->proxy_url, b->proxy_url); /* its password is redacted */
    assert_int_equal(a->follow_redirects, b->follow_redirects);
    assert_int_equal(a->enable_http2, b->enable_http2);
}

static void eq_relabel(const struct relabel_config *a, size_t na, const struct relabel_config *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        eq_strv(a[i].source_labels, a[i].nsource_labels, b[i].source_labels, b[i].nsource_labels);
        eq_str(a[i].separator, b[i].separator);
        eq_str(a[i].target_label, b[i].target_label);
        eq_str(a[i].regex, b[i].regex);
        assert_int_equal(a[i].has_modulus, b[i].has_modulus);
        assert_int_equal(a[i].modulus, b[i].modulus);
        eq_str(a[i].replacement, b[i].replacement);
        assert_int_equal(a[i].action, b[i].action);
    }
}

static void cfg_assert_equal(const struct cfg *a, const struct cfg *b)
{
    assert_int_equal(a->global.scrape_interval_ms, b->global.scrape_interval_ms);
    assert_int_equal(a->global.scrape_timeout_ms, b->global.scrape_timeout_ms);
    eq_kv(a->global.external_labels, a->global.nexternal_labels, b->global.external_labels,
          b->global.nexternal_labels);
    assert_int_equal(a->nscrape_configs, b->nscrape_configs);
    for (size_t i = 0; i < a->nscrape_configs; i++) {
        const struct cfg_scrape *x = &a->scrape_configs[i], *y = &b->scrape_configs[i];
        eq_str(x->job_name, y->job_name);
        assert_int_equal(x->scrape_interval_ms, y->scrape_interval_ms);
        assert_int_equal(x->scrape_timeout_ms, y->scrape_timeout_ms);
        eq_str(x->metrics_path, y->metrics_path);
        eq_str(x->scheme, y->scheme);
        assert_int_equal(x->nparams, y->nparams);
        for (size_t p = 0; p < x->nparams; p++) {
            eq_str(x->params[p].name, y->params[p].name);
            eq_strv(x->params[p].values, x->params[p].nvalues, y->params[p].values, y->params[p].nvalues);
        }
        assert_int_equal(x->honor_labels, y->honor_labels);
        assert_int_equal(x->honor_timestamps, y->honor_timestamps);
        assert_int_equal(x->nstatic_configs, y->nstatic_configs);
        for (size_t s = 0; s < x->nstatic_configs; s++) {
            eq_strv(x->static_configs[s].targets, x->static_configs[s].ntargets, y->static_configs[s].targets,
                    y->static_configs[s].ntargets);
            eq_kv(x->static_configs[s].labels, x->static_configs[s].nlabels, y->static_configs[s].labels,
                  y->static_configs[s].nlabels);
        }
        assert_int_equal(x->nfile_sd_configs, y->nfile_sd_configs);
        for (size_t f = 0; f < x->nfile_sd_configs; f++) {
            eq_strv(x->file_sd_configs[f].files, x->file_sd_configs[f].nfiles, y->file_sd_configs[f].files,
                    y->file_sd_configs[f].nfiles);
            assert_int_equal(x->file_sd_configs[f].refresh_interval_ms,
                             y->file_sd_configs[f].refresh_interval_ms);
        }
        eq_http(&x->http, &y->http);
        eq_relabel(x->relabel_configs, x->nrelabel_configs, y->relabel_configs, y->nrelabel_configs);
        eq_relabel(x->metric_relabel_configs, x->nmetric_relabel_configs, y->metric_relabel_configs,
                   y->nmetric_relabel_configs);
        assert_int_equal(x->sample_limit, y->sample_limit);
        assert_int_equal(x->label_limit, y->label_limit);
        assert_int_equal(x->label_name_length_limit, y->label_name_length_limit);
        assert_int_equal(x->label_value_length_limit, y->label_value_length_limit);
        assert_int_equal(x->body_size_limit, y->body_size_limit);
    }
    assert_int_equal(a->nremote_writes, b->nremote_writes);
    for (size_t i = 0; i < a->nremote_writes; i++) {
        const struct cfg_remote_write *x = &a->remote_writes[i], *y = &b->remote_writes[i];
        if (strchr(x->url, '@'))
            eq_secret(x->url, y->url);
        else
            eq_str(x->url, y->url);
        eq_str(x->name, y->name);
        assert_int_equal(x->remote_timeout_ms, y->remote_timeout_ms);
        eq_kv(x->headers, x->nheaders, y->headers, y->nheaders);
        eq_relabel(x->write_relabel_configs, x->nwrite_relabel_configs, y->write_relabel_configs,
                   y->nwrite_relabel_configs);
        assert_int_equal(x->send_exemplars, y->send_exemplars);
        eq_http(&x->http, &y->http);
        assert_memory_equal(&x->queue, &y->queue, sizeof x->queue);
        assert_int_equal(x->metadata.send, y->metadata.send);
        assert_int_equal(x->metadata.send_interval_ms, y->metadata.send_interval_ms);
        assert_int_equal(x->metadata.max_samples_per_send, y->metadata.max_samples_per_send);
        assert_int_equal(x->sigv4.enabled, y->sigv4.enabled);
        eq_str(x->sigv4.region, y->sigv4.region);
        eq_secret(x->sigv4.access_key, y->sigv4.access_key);
        eq_secret(x->sigv4.secret_key, y->sigv4.secret_key);
        eq_str(x->sigv4.profile, y->sigv4.profile);
        eq_str(x->sigv4.role_arn, y->sigv4.role_arn);
        eq_str(x->sigv4.external_id, y->sigv4.external_id);
        eq_str(x->sigv4.service, y->sigv4.service);
    }
    eq_str(a->storage_path, b->storage_path);
}

/* ---- good configs --------------------------------------------------------- */

static void test_good_full(void **state)
{
    (void)state;
    struct cfg *c = load_ok("good_full.yml");
    assert_non_null(strstr(c->source, "good_full.yml"));
    assert_int_equal(c->global.scrape_interval_ms, 15000);
    assert_int_equal(c->global.scrape_timeout_ms, 5000);
    assert_int_equal(c->global.nexternal_labels, 2);
    assert_kv(c->global.external_labels, 2, "cluster", "prod-eu");
    assert_kv(c->global.external_labels, 2, "replica", "a");

    assert_int_equal(c->nscrape_configs, 3);
    const struct cfg_scrape *n = &c->scrape_configs[0];
    assert_string_equal(n->job_name, "node");
    assert_int_equal(n->line, 11);
    assert_true(n->honor_labels);
    assert_false(n->honor_timestamps);
    assert_int_equal(n->nparams, 2);
    assert_string_equal(n->params[0].name, "module");
    assert_int_equal(n->params[0].nvalues, 2);
    assert_string_equal(n->params[0].values[1], "cpu");
    assert_string_equal(n->params[1].name, "debug");
    assert_int_equal(n->params[1].nvalues, 0);
    assert_int_equal(n->scrape_interval_ms, 30000);
    assert_int_equal(n->scrape_timeout_ms, 10000);
    assert_string_equal(n->metrics_path, "/probe");
    assert_string_equal(n->scheme, "https");
    assert_true(n->http.has_basic_auth);
    assert_string_equal(n->http.basic_auth_username, "prom");
    assert_string_equal(n->http.basic_auth_password, "s3cr3t-basic-pass");
    assert_null(n->http.authorization_type);
    assert_string_equal(n->http.tls.ca_file, "/etc/ca.pem");
    assert_string_equal(n->http.tls.cert_file, "/etc/client.crt");
    assert_string_equal(n->http.tls.key_file, "/etc/client.key");
    assert_string_equal(n->http.tls.server_name, "node.example");
    assert_true(n->http.tls.insecure_skip_verify);
    assert_string_equal(n->http.tls.min_version, "TLS12");
    assert_string_equal(n->http.proxy_url, "http://proxyuser:pr0xy-pass@127.0.0.1:3128");
    assert_false(n->http.follow_redirects);
    assert_false(n->http.enable_http2);
    assert_int_equal(n->nstatic_configs, 2);
    assert_int_equal(n->static_configs[0].ntargets, 3);
    assert_string_equal(n->static_configs[0].targets[1], "[::1]:9100");
    assert_string_equal(n->static_configs[0].targets[2], "localhost");
    assert_kv(n->static_configs[0].labels, n->static_configs[0].nlabels, "team", "infra $1 $ cost");
    assert_int_equal(n->static_configs[1].ntargets, 0);
    assert_int_equal(n->nfile_sd_configs, 2);
    assert_int_equal(n->file_sd_configs[0].nfiles, 2);
    assert_string_equal(n->file_sd_configs[0].files[0], "/etc/sd/*.json");
    assert_int_equal(n->file_sd_configs[0].refresh_interval_ms, 60000);
    assert_int_equal(n->file_sd_configs[1].refresh_interval_ms, 300000);
    assert_int_equal(n->nrelabel_configs, 3);
    const struct relabel_config *r = n->relabel_configs;
    assert_int_equal(r[0].nsource_labels, 2);
    assert_string_equal(r[0].source_labels[1], "__meta_x");
    assert_string_equal(r[0].separator, "|");
    assert_string_equal(r[0].regex, "(.*):\\d+");
    assert_string_equal(r[0].target_label, "host");
    assert_string_equal(r[0].replacement, "${1}"); /* not an env reference */
    assert_int_equal(r[0].action, RELABEL_REPLACE);
    assert_true(r[1].has_modulus);
    assert_int_equal(r[1].modulus, 4);
    assert_int_equal(r[1].action, RELABEL_HASHMOD);
    assert_string_equal(r[1].separator, ";"); /* defaults filled in */
    assert_string_equal(r[1].regex, "(.*)");
    assert_string_equal(r[1].replacement, "$1");
    assert_false(r[2].has_modulus);
    assert_null(r[2].target_label);
    assert_int_equal(r[2].action, RELABEL_LABELMAP);
    assert_int_equal(n->nmetric_relabel_configs, 1);
    assert_int_equal(n->metric_relabel_configs[0].action, RELABEL_DROP);
    assert_int_equal(n->sample_limit, 50000);
    assert_int_equal(n->label_limit, 64);
    assert_int_equal(n->label_name_length_limit, 128);
    assert_int_equal(n->label_value_length_limit, 2048);
    assert_int_equal(n->body_size_limit, 10ULL << 20);

    const struct cfg_scrape *b = &c->scrape_configs[1];
    assert_string_equal(b->job_name, "bearer");
    assert_int_equal(b->scrape_interval_ms, 15000); /* from global */
    assert_int_equal(b->scrape_timeout_ms, 5000);
    assert_string_equal(b->metrics_path, "/metrics");
    assert_string_equal(b->scheme, "http");
    assert_true(b->honor_timestamps);
    assert_false(b->honor_labels);
    assert_true(b->http.follow_redirects);
    assert_true(b->http.enable_http2);
    assert_false(b->http.has_basic_auth);
    assert_string_equal(b->http.authorization_type, "Bearer"); /* legacy bearer_token */
    assert_string_equal(b->http.authorization_credentials, "tok-legacy-bearer");
    assert_null(b->http.authorization_credentials_file);

    const struct cfg_scrape *a = &c->scrape_configs[2];
    assert_int_equal(a->scrape_interval_ms, 5000);
    assert_int_equal(a->scrape_timeout_ms, 5000);
    assert_string_equal(a->http.authorization_type, "Token");
    assert_null(a->http.authorization_credentials);
    assert_string_equal(a->http.authorization_credentials_file, "/var/run/token");

    assert_int_equal(c->nremote_writes, 3);
    const struct cfg_remote_write *w = &c->remote_writes[0];
    assert_string_equal(w->name, "amp");
    assert_int_equal(w->remote_timeout_ms, 60000);
    assert_int_equal(w->nheaders, 1);
    assert_kv(w->headers, 1, "X-Scope-OrgID", "tenant-1");
    assert_int_equal(w->nwrite_relabel_configs, 1);
    assert_int_equal(w->write_relabel_configs[0].action, RELABEL_KEEP);
    assert_true(w->send_exemplars);
    assert_int_equal(w->queue.capacity, 20000);
    assert_int_equal(w->queue.min_shards, 2);
    assert_int_equal(w->queue.max_shards, 10);
    assert_int_equal(w->queue.max_samples_per_send, 1000);
    assert_int_equal(w->queue.batch_send_deadline_ms, 10000);
    assert_int_equal(w->queue.min_backoff_ms, 50);
    assert_int_equal(w->queue.max_backoff_ms, 10000);
    assert_false(w->queue.retry_on_http_429);
    assert_int_equal(w->queue.sample_age_limit_ms, 3600000);
    assert_false(w->metadata.send);
    assert_int_equal(w->metadata.send_interval_ms, 120000);
    assert_int_equal(w->metadata.max_samples_per_send, 500);
    assert_true(w->sigv4.enabled);
    assert_string_equal(w->sigv4.region, "eu-west-1");
    assert_string_equal(w->sigv4.access_key, "AKIAEXAMPLEKEY12345");
    assert_string_equal(w->sigv4.secret_key, "wJalrXUtnFEMI-sigv4-secret");
    assert_string_equal(w->sigv4.profile, "default");
    assert_string_equal(w->sigv4.role_arn, "arn:aws:iam::123456789012:role/prom");
    assert_string_equal(w->sigv4.external_id, "ext-1");
    assert_string_equal(w->sigv4.service, "aps");
    assert_false(c->remote_writes[1].sigv4.enabled);
    assert_string_equal(c->remote_writes[1].http.authorization_type, "Bearer");
    assert_string_equal(c->remote_writes[1].http.authorization_credentials, "rw-authz-cred");
    assert_string_equal(c->remote_writes[1].name, "");
    assert_true(c->remote_writes[2].sigv4.enabled); /* sigv4: {} */
    assert_null(c->remote_writes[2].sigv4.region);
    assert_string_equal(c->remote_writes[2].sigv4.service, "aps");
    assert_string_equal(c->storage_path, "/var/lib/scrapeship/wal");
    cfg_free(c);
}

static void test_good_minimal_defaults(void **state)
{
    (void)state;
    struct cfg *c = load_ok("good_minimal.yml");
    assert_int_equal(c->global.scrape_interval_ms, 60000);
    assert_int_equal(c->global.scrape_timeout_ms, 10000);
    assert_int_equal(c->global.nexternal_labels, 0);
    assert_int_equal(c->nscrape_configs, 1);
    const struct cfg_scrape *s = &c->scrape_configs[0];
    assert_string_equal(s->job_name, "self");
    assert_int_equal(s->scrape_interval_ms, 60000);
    assert_int_equal(s->scrape_timeout_ms, 10000);
    assert_string_equal(s->metrics_path, "/metrics");
    assert_string_equal(s->scheme, "http");
    assert_true(s->honor_timestamps);
    assert_false(s->honor_labels);
    assert_true(s->http.follow_redirects);
    assert_true(s->http.enable_http2);
    assert_int_equal(s->sample_limit, 0);
    assert_int_equal(s->body_size_limit, 0);
    assert_int_equal(c->nremote_writes, 1);
    const struct cfg_remote_write *w = &c->remote_writes[0];
    assert_string_equal(w->url, "http://127.0.0.1:9090/api/v1/write");
    assert_string_equal(w->name, "");
    assert_int_equal(w->remote_timeout_ms, 30000);
    assert_int_equal(w->queue.capacity, 10000);
    assert_int_equal(w->queue.min_shards, 1);
    assert_int_equal(w->queue.max_shards, 50);
    assert_int_equal(w->queue.max_samples_per_send, 2000);
    assert_int_equal(w->queue.batch_send_deadline_ms, 5000);
    assert_int_equal(w->queue.min_backoff_ms, 30);
    assert_int_equal(w->queue.max_backoff_ms, 5000);
    assert_true(w->queue.retry_on_http_429);
    assert_int_equal(w->queue.sample_age_limit_ms, 0);
    assert_true(w->metadata.send);
    assert_int_equal(w->metadata.send_interval_ms, 60000);
    assert_int_equal(w->metadata.max_samples_per_send, 2000);
    assert_false(w->sigv4.enabled);
    assert_false(w->send_exemplars);
    assert_null(c->storage_path);
    cfg_free(c);

    c = load_ok("good_empty.yml");
    assert_int_equal(c->nscrape_configs, 0);
    assert_int_equal(c->nremote_writes, 0);
    assert_int_equal(c->global.scrape_interval_ms, 60000);
    cfg_free(c);

    int rc;
    char err[256];
    c = load_str("", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    cfg_free(c);
    c = load_str("global:\nscrape_configs: ~\nremote_write:\n", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->nscrape_configs, 0);
    cfg_free(c);
    cfg_free(NULL);
}

static void test_aliases(void **state)
{
    (void)state;
    struct cfg *c = load_ok("good_aliases.yml");
    assert_int_equal(c->nscrape_configs, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct cfg_scrape *s = &c->scrape_configs[i];
        assert_int_equal(s->nstatic_configs, 1);
        assert_string_equal(s->static_configs[0].targets[0], "127.0.0.1:9100");
        assert_kv(s->static_configs[0].labels, 1, "env", "prod");
        assert_int_equal(s->nrelabel_configs, 1);
        assert_string_equal(s->relabel_configs[0].target_label, "node");
    }
    /* Each job owns its own copy. */
    assert_ptr_not_equal(c->scrape_configs[0].static_configs[0].targets[0],
                         c->scrape_configs[1].static_configs[0].targets[0]);
    cfg_free(c);
}

static void test_embedded_default(void **state)
{
    (void)state;
    const char *y = cfg_embedded_default();
    struct cfg *c = NULL;
    char err[256];
    assert_int_equal(cfg_load_string(y, strlen(y), "<embedded>", &c, err, sizeof err), 0);
    assert_string_equal(c->source, "<embedded>");
    assert_int_equal(c->global.scrape_interval_ms, 5000);
    /* The 10s default timeout is capped at the 5s interval, as Prometheus does. */
    assert_int_equal(c->global.scrape_timeout_ms, 5000);
    assert_int_equal(c->nscrape_configs, 1);
    assert_string_equal(c->scrape_configs[0].job_name, "scrapeship");
    assert_int_equal(c->scrape_configs[0].scrape_interval_ms, 5000);
    assert_int_equal(c->scrape_configs[0].nstatic_configs, 1);
    assert_int_equal(c->scrape_configs[0].static_configs[0].ntargets, 1);
    assert_string_equal(c->scrape_configs[0].static_configs[0].targets[0], "127.0.0.1:9464");
    assert_int_equal(c->nremote_writes, 0);
    cfg_free(c);
}

/* ---- broken configs -------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_broken_dir(void **state)
{
    (void)state;
    unsetenv("SCRAPESHIP_TEST_UNSET_VAR");
    DIR *d = opendir(CONFIGS_DIR);
    assert_non_null(d);
    char *names[256] = {0};
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(de->d_name);
        if (!strncmp(de->d_name, "broken_", 7) && len > 4 && !strcmp(de->d_name + len - 4, ".yml"))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        char path[1024], line[512], err[1024];
        snprintf(path, sizeof path, "%s/%s", CONFIGS_DIR, names[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        if (!fgets(line, sizeof line, f) || strncmp(line, "# expect: ", 10) != 0)
            fail_msg("%s: first line must be '# expect: <message>'", names[i]);
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        const char *want = line + 10;
        /* Every expectation pins the position, not just the message. */
        if (strncmp(want, names[i], strlen(names[i])) != 0 || want[strlen(names[i])] != ':')
            fail_msg("%s: expectation must start with '%s:line:col:'", names[i], names[i]);
        struct cfg *c = (struct cfg *)1;
        int rc = cfg_load_file(path, &c, err, sizeof err);
        if (rc == 0) {
            cfg_free(c);
            fail_msg("%s: loaded but should fail with '%s'", names[i], want);
        }
        assert_true(rc < 0);
        assert_null(c);
        if (!strstr(err, want))
            fail_msg("%s:\n  want: %s\n  got:  %s", names[i], want, err);
        print_message("[ ok ] %s\n", names[i]);
        free(names[i]);
    }
    print_message("%zu broken configs rejected with the expected message\n", n);
}

static void test_more_errors(void **state)
{
    (void)state;
    expect_error("global: {scrape_interval: 1m, scrape_interval: 2m}",
                 "t.yml:1:31: duplicate key \"scrape_interval\" in global");
    expect_error("storage: [a]", "t.yml:1:10: expected a mapping, got a list in storage");
    expect_error("global:\n  external_labels:\n    a: 1\n    a: 2\n",
                 "t.yml:4:5: duplicate key \"a\" in global.external_labels");
    expect_error("scrape_configs:\n- job_name: x\n  relabel_configs: [~]\n",
                 "t.yml:3:21: empty or null relabeling rule in scrape_configs[0].relabel_configs[0]");
    expect_error("scrape_configs:\n- job_name: x\n  relabel_configs:\n  - source_labels: [a-b]\n",
                 "t.yml:4:21: \"a-b\" is not a valid label name");
    expect_error("scrape_configs:\n- job_name: x\n  static_configs:\n  - targets: [\"h:99999\"]\n",
                 "t.yml:4:15: target \"h:99999\" has a bad port");
    expect_error("scrape_configs:\n- job_name: x\n  file_sd_configs:\n  - refresh_interval: 1m\n",
                 "must contain at least one path name");
    expect_error("scrape_configs:\n- job_name: x\n  tls_config: {min_version: TLS14}\n",
                 "unknown TLS version: TLS14");
    expect_error("scrape_configs:\n- job_name: x\n  tls_config: {min_version: TLS13, max_version: TLS12}\n",
                 "tls_config.max_version must be greater than or equal to tls_config.min_version");
    expect_error("scrape_configs:\n- job_name: x\n  bearer_token: a\n  bearer_token_file: b\n",
                 "t.yml:4:3: at most one of bearer_token & bearer_token_file");
    expect_error("scrape_configs:\n- job_name: x\n  basic_auth: {username: u}\n"
                 "  authorization: {credentials: c}\n",
                 "t.yml:4:3: at most one of basic_auth & authorization must be configured");
    expect_error("scrape_configs:\n- job_name: x\n  authorization: {credentials: c, "
                 "credentials_file: f}\n",
                 "at most one of authorization credentials & credentials_file");
    expect_error("remote_write:\n- url: http://h/w\n  headers: {Authorization: x}\n",
                 "t.yml:3:13: authorization header must be changed via");
    expect_error("remote_write:\n- url: http://h/w\n  headers: {X-A: \"a\\r\\nb\"}\n",
                 "contains a line break");
    expect_error("remote_write:\n- url: http://h/w\n  sigv4: {external_id: e}\n",
                 "external_id requires role_arn");
    expect_error("remote_write:\n- url: http://h/w\n  bearer_token: t\n  sigv4: {}\n",
                 "t.yml:4:3: at most one of basic_auth, authorization & sigv4");
    expect_error("remote_write:\n- url: http://h/w\n  queue_config: {capacity: 0}\n",
                 "capacity must be at least 1");
    expect_error("remote_write:\n- url: http://h/w\n  queue_config: {min_backoff: 1s, "
                 "max_backoff: 100ms}\n",
                 "max_backoff must not be less than min_backoff");
    expect_error("remote_write:\n- url: http://h/w\n  queue_config: {capacity: lots}\n",
                 "t.yml:3:28: expected an integer, got \"lots\"");
    expect_error("remote_write:\n- url: http://h/w\n  remote_timeout: 0s\n",
                 "remote_timeout must be greater than 0");
    expect_error("remote_write:\n- url: \"http://h:port/w\"\n", "invalid url: bad port");
    expect_error("remote_write:\n- url: \"https:///w\"\n", "invalid url: missing host");
    expect_error("remote_write:\n- url: \"127.0.0.1:9090/w\"\n", "invalid url: missing scheme");
    expect_error("remote_write:\n- url: \"http://h/a b\"\n", "invalid url: contains whitespace");
    expect_error("scrape_configs:\n- job_name: \"\"\n", "t.yml:2:13: job_name is required");
    expect_error("scrape_configs:\n- job_name: x\n  params: {a: b}\n",
                 "expected a list of strings, got a scalar in scrape_configs[0].params.a");
    expect_error("{[a]: b}", "mapping keys must be strings");
    expect_error("\"a\\0\": 1", "t.yml:1:1: unknown field \"a?\" at the top level");
    expect_error("global: {external_labels: {\"a\\0\": 1}}", "key contains a NUL character");
    expect_error("storage: {path: \"a\\0b\"}", "value contains a NUL character in storage.path");
    expect_error("global: {scrape_interval: 1m}\n...\n---\nglobal: {}\n", "only one YAML document");
    expect_error("\tglobal: {}\n", "t.yml:1:1: YAML syntax error");
    /* Invalid UTF-8 is rejected by the YAML reader, with a position. */
    expect_error("storage:\n  path: \"\xff\"\n", "t.yml:2:10: YAML error");

    char err[64];
    struct cfg *c = (struct cfg *)1;
    assert_int_equal(cfg_load_file("/nonexistent/scrapeship.yml", &c, err, sizeof err), SS_EIO);
    assert_null(c);
    assert_non_null(strstr(err, "/nonexistent/scrapeship.yml: cannot open"));
    /* A tiny error buffer truncates but never overflows; NULL is allowed. */
    assert_int_not_equal(cfg_load_string("x: 1", 4, "t", &c, err, 5), 0);
    assert_int_equal(strlen(err), 4);
    assert_int_not_equal(cfg_load_string("x: 1", 4, "t", &c, NULL, 0), 0);
    assert_int_equal(cfg_load_string("x", 1, "t", NULL, NULL, 0), SS_EINVAL);
}

/* ---- values and Prometheus semantics ----------------------------------------- */

static void test_semantics(void **state)
{
    (void)state;
    char err[512];
    int rc;
    /* Global timeout above a job's interval is capped at that interval; an explicit
     * job timeout is kept. */
    struct cfg *c = load_str("global: {scrape_timeout: 20s, scrape_interval: 1m}\n"
                             "scrape_configs:\n"
                             "- {job_name: a, scrape_interval: 5s}\n"
                             "- {job_name: b, scrape_interval: 5s, scrape_timeout: 2s}\n"
                             "- {job_name: c}\n",
                             err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->scrape_configs[0].scrape_timeout_ms, 5000);
    assert_int_equal(c->scrape_configs[1].scrape_timeout_ms, 2000);
    assert_int_equal(c->scrape_configs[2].scrape_interval_ms, 60000);
    assert_int_equal(c->scrape_configs[2].scrape_timeout_ms, 20000);
    cfg_free(c);

    /* YAML 1.1 booleans; authorization type is trimmed; sigv4: (null) enables SigV4;
     * explicit nulls mean "use the default". */
    c = load_str("scrape_configs:\n"
                 "- job_name: a\n"
                 "  honor_labels: yes\n"
                 "  honor_timestamps: off\n"
                 "  metrics_path: ~\n"
                 "  authorization: {type: \"  Custom \", credentials: c}\n"
                 "remote_write:\n"
                 "- url: HTTPS://h.example:443/w?x=1#f\n"
                 "  sigv4:\n"
                 "  name: null\n",
                 err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    assert_true(c->scrape_configs[0].honor_labels);
    assert_false(c->scrape_configs[0].honor_timestamps);
    assert_string_equal(c->scrape_configs[0].metrics_path, "/metrics");
    assert_string_equal(c->scrape_configs[0].http.authorization_type, "Custom");
    assert_true(c->remote_writes[0].sigv4.enabled);
    assert_string_equal(c->remote_writes[0].name, "");
    cfg_free(c);

    /* TLS10 .. TLS13 both ways, as prometheus/common */
    c = load_str("scrape_configs:\n- {job_name: a, tls_config: {min_version: TLS10, max_version: TLS12}}\n",
                 err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(c->scrape_configs[0].http.tls.min_version, "TLS10");
    assert_string_equal(c->scrape_configs[0].http.tls.max_version, "TLS12");
    cfg_free(c);

    /* target_limit, as Prometheus' scrape config has it */
    c = load_str("scrape_configs:\n- {job_name: a, target_limit: 3}\n", err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c->scrape_configs[0].target_limit, 3);
    char *printed = print_to_string(c);
    assert_non_null(strstr(printed, "    target_limit: 3\n"));
    free(printed);
    cfg_free(c);

    /* Names need only be unique when set. */
    c = load_str("remote_write:\n- url: http://a/w\n- url: http://b/w\n", err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    cfg_free(c);
}

static void test_env_expansion(void **state)
{
    (void)state;
    char err[512];
    int rc;
    setenv("SS_TEST_HOST", "127.0.0.1", 1);
    setenv("SS_TEST_PASS", "env-pass-value", 1);
    setenv("SS_TEST_EMPTY", "", 1);
    setenv("SS_TEST_IVL", "20s", 1);
    setenv("SS_TEST_MOD", "3", 1);
    unsetenv("SS_TEST_UNSET");
    struct cfg *c = load_str("global:\n"
                             "  scrape_interval: ${SS_TEST_IVL}\n"
                             "  external_labels:\n"
                             "    a: \"${SS_TEST_UNSET:-fallback}\"\n"
                             "    b: \"${SS_TEST_EMPTY:-empty-default}\"\n"
                             "    c: \"cost $$5 and $1 and ${1} and $ alone and ${not closed\"\n"
                             "    d: \"pre-${SS_TEST_HOST}-post$\"\n"
                             "    e: \"${SS_TEST_EMPTY}|${SS_TEST_UNSET:-}|$${SS_TEST_HOST}\"\n"
                             "scrape_configs:\n"
                             "- job_name: j\n"
                             "  static_configs:\n"
                             "  - targets: [\"${SS_TEST_HOST}:9100\"]\n"
                             "  basic_auth:\n"
                             "    username: u\n"
                             "    password: ${SS_TEST_PASS}\n",
                             err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c->global.scrape_interval_ms, 20000);
    assert_kv(c->global.external_labels, 5, "a", "fallback");
    assert_kv(c->global.external_labels, 5, "b", "empty-default");
    assert_kv(c->global.external_labels, 5, "c", "cost $5 and $1 and ${1} and $ alone and ${not closed");
    assert_kv(c->global.external_labels, 5, "d", "pre-127.0.0.1-post$");
    assert_kv(c->global.external_labels, 5, "e", "||${SS_TEST_HOST}");
    assert_string_equal(c->scrape_configs[0].static_configs[0].targets[0], "127.0.0.1:9100");
    assert_string_equal(c->scrape_configs[0].http.basic_auth_password, "env-pass-value");

    /* The expanded value must survive printing and reloading literally. */
    char *out = print_to_string(c);
    struct cfg *c2 = load_str(out, err, sizeof err, &rc);
    if (rc)
        fail_msg("%s\n%s", err, out);
    cfg_assert_equal(c, c2);
    cfg_free(c2);
    free(out);
    cfg_free(c);

    /* In relabel rules `${name}` of an unset name is a named group and `$$` a literal
     * `$` of the replacement, as in Prometheus; a set variable still expands (the
     * sharding deployment's modulus and regex). SS_TEST_HOST is set, host is not. */
    c = load_str(
        "scrape_configs:\n"
        "- job_name: j\n"
        "  relabel_configs:\n"
        "  - {source_labels: [__address__], regex: '(?P<host>[^:]+):.*', target_label: h,\n"
        "     replacement: '${host}'}\n"
        "  - {target_label: e, replacement: '$$1 ${SS_TEST_HOST}'}\n"
        "  - {source_labels: [__address__], action: hashmod, modulus: '${SS_TEST_MOD}', target_label: s}\n"
        "  metric_relabel_configs:\n"
        "  - {action: keepequal, source_labels: [a], target_label: b}\n"
        "  - {action: dropequal, source_labels: [a], target_label: c}\n"
        "  static_configs:\n"
        "  - targets: [\"${SS_TEST_HOST}:9100\"]\n",
        err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(c->scrape_configs[0].relabel_configs[0].replacement, "${host}");
    assert_string_equal(c->scrape_configs[0].relabel_configs[1].replacement, "$$1 127.0.0.1");
    assert_int_equal(c->scrape_configs[0].relabel_configs[2].modulus, 3);
    assert_string_equal(c->scrape_configs[0].static_configs[0].targets[0], "127.0.0.1:9100");
    assert_int_equal(c->scrape_configs[0].metric_relabel_configs[0].action, RELABEL_KEEPEQUAL);
    assert_int_equal(c->scrape_configs[0].metric_relabel_configs[1].action, RELABEL_DROPEQUAL);
    cfg_free(c);
    /* keepequal and dropequal still refuse any regex written out, as Prometheus */
    expect_error("scrape_configs:\n- job_name: x\n  relabel_configs:\n"
                 "  - {action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}\n",
                 "keepequal action requires only 'source_labels' and `target_label`, and no other fields");

    /* Keys are not expanded; values that expand to bad types are reported. */
    expect_error("global:\n  scrape_interval: ${SS_TEST_HOST}\n",
                 "t.yml:2:20: expected a duration like \"15s\", got \"127.0.0.1\" in "
                 "global.scrape_interval");
    expect_error("global:\n  external_labels:\n    x: ${SS_TEST_UNSET}\n",
                 "t.yml:3:8: environment variable \"SS_TEST_UNSET\" is not set in "
                 "global.external_labels");
    expect_error("${SS_TEST_HOST}: 1\n", "unknown field \"${SS_TEST_HOST}\"");

    /* An expansion may not exceed the scalar limit. */
    char *big = malloc(CFG_MAX_SCALAR_BYTES + 2);
    assert_non_null(big);
    memset(big, 'x', CFG_MAX_SCALAR_BYTES + 1);
    big[CFG_MAX_SCALAR_BYTES + 1] = '\0';
    setenv("SS_TEST_BIG", big, 1);
    free(big);
    expect_error("storage: {path: \"${SS_TEST_BIG}\"}\n", "longer than");
    unsetenv("SS_TEST_BIG");
}

/* ---- printing ---------------------------------------------------------------- */

static const char *const secrets[] = {
    "s3cr3t-basic-pass", "pr0xy-pass",          "tok-legacy-bearer",
    "rw-authz-cred",     "AKIAEXAMPLEKEY12345", "wJalrXUtnFEMI-sigv4-secret",
};

static void roundtrip(const char *name)
{
    char err[512];
    int rc;
    struct cfg *c = load_ok(name);
    char *out1 = print_to_string(c);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strstr(out1, secrets[i]))
            fail_msg("%s: secret %s printed:\n%s", name, secrets[i], out1);
    struct cfg *c2 = load_str(out1, err, sizeof err, &rc);
    if (rc)
        fail_msg("%s: printed config does not load: %s\n%s", name, err, out1);
    cfg_assert_equal(c, c2);
    char *out2 = print_to_string(c2);
    assert_string_equal(out1, out2); /* printing is a fixed point */
    free(out1);
    free(out2);
    cfg_free(c2);
    cfg_free(c);
}

static void test_print_roundtrip(void **state)
{
    (void)state;
    roundtrip("good_full.yml");
    roundtrip("good_minimal.yml");
    roundtrip("good_empty.yml");
    roundtrip("good_aliases.yml");

    struct cfg *c = load_ok("good_full.yml");
    char *out = print_to_string(c);
    /* Defaults are explicit, durations use Prometheus' format, secrets are redacted. */
    assert_non_null(strstr(out, "  scrape_interval: 15s\n"));
    assert_non_null(strstr(out, "    password: \"<secret>\"\n"));
    assert_non_null(strstr(out, "proxy_url: \"http://proxyuser:<secret>@127.0.0.1:3128\""));
    assert_non_null(strstr(out, "    credentials: \"<secret>\"\n"));
    assert_non_null(strstr(out, "    access_key: \"<secret>\"\n"));
    assert_non_null(strstr(out, "    secret_key: \"<secret>\"\n"));
    assert_non_null(strstr(out, "      sample_age_limit: 1h\n"));
    assert_non_null(strstr(out, "      retry_on_http_429: false\n"));
    assert_non_null(strstr(out, "    replacement: \"${1}\"\n")); /* a rule is not expanded */
    assert_non_null(strstr(out, "    replacement: \"$1\"\n"));
    assert_non_null(strstr(out, "\"team\": \"infra $1 $ cost\""));
    free(out);
    cfg_free(c);

    /* Awkward strings survive: quotes, backslashes, control characters, line
     * separators, and non-ASCII text. */
    char err[512];
    int rc;
    c = load_str("global:\n  external_labels:\n"
                 "    q: \"a\\\"b\\\\c\\td\\x01\\u0085\\u2028\\u00e9\\ufeffz\\x7f\"\n"
                 "    dollar: \"$$$${HOME}\"\n",
                 err, sizeof err, &rc);
    if (rc)
        fail_msg("%s", err);
    out = print_to_string(c);
    struct cfg *c2 = load_str(out, err, sizeof err, &rc);
    if (rc)
        fail_msg("%s\n%s", err, out);
    cfg_assert_equal(c, c2);
    assert_kv(c2->global.external_labels, 2, "dollar", "$${HOME}");
    free(out);
    cfg_free(c2);
    cfg_free(c);

    assert_int_equal(cfg_print(NULL, stdout), SS_EINVAL);
}

/* ---- limits and robustness ------------------------------------------------------ */

static void test_limits(void **state)
{
    (void)state;
    char err[512];
    struct cfg *c = (struct cfg *)1;

    /* Over 16 MiB is refused before parsing. */
    size_t big = CFG_MAX_FILE_BYTES + 1;
    char *buf = malloc(big + 1);
    assert_non_null(buf);
    memset(buf, '#', big);
    buf[big] = '\0';
    assert_int_equal(cfg_load_string(buf, big, "big.yml", &c, err, sizeof err), SS_ELIMIT);
    assert_null(c);
    assert_non_null(strstr(err, "big.yml: config is larger than"));
    /* ... and a file that size too. */
    char path[] = "/tmp/ss_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, big, f), big);
    fclose(f);
    assert_int_equal(cfg_load_file(path, &c, err, sizeof err), SS_ELIMIT);
    assert_non_null(strstr(err, "config file is larger than"));
    unlink(path);

    /* A scalar over 1 MiB. */
    size_t slen = CFG_MAX_SCALAR_BYTES + 1;
    memcpy(buf, "storage: {path: ", 16);
    memset(buf + 16, 'p', slen);
    memcpy(buf + 16 + slen, "}\n", 3);
    assert_int_equal(cfg_load_string(buf, strlen(buf), "t.yml", &c, err, sizeof err), SS_ELIMIT);
    assert_non_null(strstr(err, "t.yml:1:17: scalar longer than"));
    /* Exactly 1 MiB is fine. */
    memcpy(buf + 16 + slen - 1, "}\n", 3);
    assert_int_equal(cfg_load_string(buf, strlen(buf), "t.yml", &c, err, sizeof err), 0);
    assert_int_equal(strlen(c->storage_path), CFG_MAX_SCALAR_BYTES);
    cfg_free(c);

    /* Nesting: 64 levels parse (and then fail the schema), 65 do not. */
    for (int depth = 64; depth <= 65; depth++) {
        char nest[256];
        size_t p = 0;
        for (int i = 0; i < depth; i++)
            nest[p++] = '[';
        for (int i = 0; i < depth; i++)
            nest[p++] = ']';
        nest[p] = '\0';
        assert_int_not_equal(cfg_load_string(nest, p, "t.yml", &c, err, sizeof err), 0);
        if (depth == 64)
            assert_non_null(strstr(err, "expected a mapping at the top level"));
        else
            assert_non_null(strstr(err, "t.yml:1:65: nesting deeper than 64 levels"));
    }
    /* Very deep input does not recurse: 100000 brackets fail fast at level 65. */
    memset(buf, '[', 100000);
    assert_int_equal(cfg_load_string(buf, 100000, "t.yml", &c, err, sizeof err), SS_ELIMIT);

    /* Alias expansion ("billion laughs") is bounded: one 100 KB label value shared by
     * 1000 jobs would decode to 100 MB. */
    struct ss_buf y;
    ss_buf_init(&y, 0);
    ss_buf_append_str(&y, "scrape_configs:\n- job_name: j\n  static_configs: &s0\n"
                          "  - labels: {big: \"");
    for (int i = 0; i < 100000; i++)
        ss_buf_append(&y, "v", 1);
    ss_buf_append_str(&y, "\"}\n");
    for (int j = 1; j < 1000; j++)
        ss_buf_printf(&y, "- job_name: j%d\n  static_configs: *s0\n", j);
    assert_int_equal(cfg_load_string(y.data, y.len, "t.yml", &c, err, sizeof err), SS_ELIMIT);
    assert_non_null(strstr(err, "YAML aliases?"));
    ss_buf_free(&y);
    free(buf);

    /* Too many anchors. */
    ss_buf_init(&y, 0);
    ss_buf_append_str(&y, "scrape_configs:\n");
    for (unsigned i = 0; i <= CFG_MAX_ANCHORS; i++)
        ss_buf_printf(&y, "- &a%u {job_name: j%u}\n", i, i);
    assert_int_equal(cfg_load_string(y.data, y.len, "t.yml", &c, err, sizeof err), SS_ELIMIT);
    assert_non_null(strstr(err, "too many YAML anchors"));
    ss_buf_free(&y);
}

/* Every prefix of a large valid config either loads or fails with a message, and
 * never leaks (ASan) or crashes: this walks most error paths mid-structure. */
static void test_every_prefix(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/good_full.yml", CONFIGS_DIR);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[16384];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    assert_true(len > 1000 && len < sizeof text);
    size_t ok = 0, failed = 0;
    for (size_t n = 0; n <= len; n++) {
        struct cfg *c = NULL;
        int rc = cfg_load_string(text, n, "prefix.yml", &c, err, sizeof err);
        if (rc == 0) {
            assert_non_null(c);
            cfg_free(c);
            ok++;
        } else {
            assert_null(c);
            assert_non_null(strstr(err, "prefix.yml"));
            failed++;
        }
    }
    print_message("prefixes: %zu load, %zu fail cleanly\n", ok, failed);
    assert_true(ok > 0 && failed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_full),       cmocka_unit_test(test_good_minimal_defaults),
        cmocka_unit_test(test_aliases),         cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_broken_dir),      cmocka_unit_test(test_more_errors),
        cmocka_unit_test(test_semantics),       cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_print_roundtrip), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
