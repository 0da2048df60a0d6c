/* target.c: from a discovered address to a scrape target, the way Prometheus 2.42's
 * scrape.PopulateLabels does it.
 *
 * Order matters and follows Prometheus exactly: group labels, then the target's
 * __address__, then defaults (job, __scrape_interval__, __scrape_timeout__,
 * __metrics_path__, __scheme__, __param_<name>) only where not already set, then
 * relabel_configs, then the default port, then `instance` defaulting to the address,
 * and finally every "__"-prefixed label is removed from what the series will carry.
 * The scrape URL, interval and timeout are read back from the relabeled "__" labels,
 * so relabeling can change them per target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relabel.h"
#include "scrape_int.h"
#include "sstext.h"

void scrape_target_spec_init(struct scrape_target_spec *s)
{
    ss_labels_init(&s->labels);
    ss_labels_init(&s->resource);
    ss_buf_init(&s->url, 64 * 1024);
    s->interval_ms = s->timeout_ms = 0;
    s->identity = 0;
}

void scrape_target_spec_free(struct scrape_target_spec *s)
{
    ss_labels_free(&s->labels);
    ss_labels_free(&s->resource);
    ss_buf_free(&s->url);
}

/* The OpenTelemetry prometheus receiver's addKubernetesResource (contrib v0.98.0): the
 * Kubernetes attributes of a target's resource, from its discovered labels (before
 * relabeling), as "k8s.*" attribute names. */
static int k8s_resource(const struct scrape_target_group *g, struct ss_labels *out)
{
    static const char *const map[][2] = {
        {"__meta_kubernetes_pod_name", "k8s.pod.name"},
        {"__meta_kubernetes_pod_uid", "k8s.pod.uid"},
        {"__meta_kubernetes_pod_container_name", "k8s.container.name"},
        {"__meta_kubernetes_namespace", "k8s.namespace.name"},
        /* only one of the node name labels is present */
        {"__meta_kubernetes_pod_node_name", "k8s.node.name"},
        {"__meta_kubernetes_node_name", "k8s.node.name"},
        {"__meta_kubernetes_endpoint_node_name", "k8s.node.name"},
    };
    static const char *const kinds[][2] = {{"ReplicaSet", "k8s.replicaset.name"},
                                           {"DaemonSet", "k8s.daemonset.name"},
                                           {"StatefulSet", "k8s.statefulset.name"},
                                           {"Job", "k8s.job.name"},
                                           {"CronJob", "k8s.cronjob.name"}};
    const char *kind = NULL, *controller = NULL;
    int rc = 0;
    for (size_t i = 0; !rc && i < g->nlabels; i++) {
        const char *k = g->labels[i].key, *v = g->labels[i].value;
        if (strncmp(k, "__meta_kubernetes_", 18) || !v[0])
            continue;
        if (!strcmp(k, "__meta_kubernetes_pod_controller_kind"))
            kind = v;
        else if (!strcmp(k, "__meta_kubernetes_pod_controller_name"))
            controller = v;
        for (size_t j = 0; j < sizeof map / sizeof map[0]; j++)
            if (!strcmp(k, map[j][0]))
                rc = ss_labels_setc(out, (struct ss_str){map[j][1], strlen(map[j][1])},
                                    (struct ss_str){v, strlen(v)});
    }
    for (size_t j = 0; !rc && kind && controller && j < sizeof kinds / sizeof kinds[0]; j++)
        if (!strcmp(kind, kinds[j][0]))
            rc = ss_labels_setc(out, (struct ss_str){kinds[j][1], strlen(kinds[j][1])},
                                (struct ss_str){controller, strlen(controller)});
    if (!rc)
        ss_labels_sort(out);
    return rc;
}

static bool has_port(const char *addr, size_t len)
{
    /* "[::1]:9100", "host:9100" have a port; "[::1]", "host" do not. */
    if (len && addr[0] == '[') {
        const char *close = memchr(addr, ']', len);
        return close && (size_t)(close - addr) + 1 < len && close[1] == ':';
    }
    return memchr(addr, ':', len) != NULL;
}

static int cmp_label_name(const void *a, const void *b)
{
    return ss_str_cmp(((const struct ss_label *)a)->name, ((const struct ss_label *)b)->name);
}

/* Query parameters: the job's params, with each __param_<name> label replacing the
 * first value of <name> (or adding it). Encoded sorted by key like url.Values.Encode. */
static int build_query(const struct scrape_job *job, const struct ss_labels *ls, struct ss_buf *url)
{
    struct ss_label params[128];
    size_t n = 0;
    const struct ss_str prefix = SS_STR("__param_");
    for (size_t i = 0; i < job->nparams && n < 128; i++) {
        struct ss_str k = {job->params[i].key, strlen(job->params[i].key)};
        struct ss_str v = {job->params[i].value, strlen(job->params[i].value)};
        bool replaced = false;
        for (size_t j = 0; j < n; j++)
            if (ss_str_eq(params[j].name, k))
                replaced = true;
        if (!replaced) {
            /* the first value of a key is the one a __param_ label overrides */
            const struct ss_str *lv = NULL;
            for (size_t j = 0; j < ls->n; j++)
                if (ls->v[j].name.len == prefix.len + k.len &&
                    memcmp(ls->v[j].name.p, prefix.p, prefix.len) == 0 &&
                    memcmp(ls->v[j].name.p + prefix.len, k.p, k.len) == 0)
                    lv = &ls->v[j].value;
            if (lv)
                v = *lv;
        }
        params[n++] = (struct ss_label){k, v};
    }
    for (size_t j = 0; j < ls->n && n < 128; j++) {
        const struct ss_label *l = &ls->v[j];
        if (l->name.len <= prefix.len || memcmp(l->name.p, prefix.p, prefix.len) != 0)
            continue;
        struct ss_str k = {l->name.p + prefix.len, l->name.len - prefix.len};
        bool known = false;
        for (size_t i = 0; i < n; i++)
            if (ss_str_eq(params[i].name, k))
                known = true;
        if (!known)
            params[n++] = (struct ss_label){k, l->value};
    }
    if (!n)
        return 0;
    /* stable sort by key keeps repeated keys in config order */
    for (size_t i = 1; i < n; i++) {
        struct ss_label x = params[i];
        size_t j = i;
        while (j > 0 && cmp_label_name(&params[j - 1], &x) > 0) {
            params[j] = params[j - 1];
            j--;
        }
        params[j] = x;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = ss_buf_append(url, i ? "&" : "?", 1);
        if (!rc)
            rc = ss_percent_encode(url, params[i].name.p, params[i].name.len, SS_PCT_SPACE_PLUS);
        if (!rc)
            rc = ss_buf_append(url, "=", 1);
        if (!rc)
            rc = ss_percent_encode(url, params[i].value.p, params[i].value.len, SS_PCT_SPACE_PLUS);
        if (rc)
            return rc;
    }
    return 0;
}

static int set_default(struct ss_labels *ls, const char *name, const char *value)
{
    struct ss_str n = {name, strlen(name)};
    const struct ss_str *cur = ss_labels_get(ls, n);
    if (cur && cur->len)
        return 0;
    return ss_labels_setc(ls, n, (struct ss_str){value, strlen(value)});
}

static int label_cstr(const struct ss_labels *ls, const char *name, char *out, size_t cap)
{
    const struct ss_str *v = ss_labels_get(ls, (struct ss_str){name, strlen(name)});
    if (!v || v->len >= cap) {
        out[0] = '\0';
        return v ? SS_ELIMIT : SS_ENOTFOUND;
    }
    memcpy(out, v->p, v->len);
    out[v->len] = '\0';
    return 0;
}

int scrape_target_populate(const struct scrape_job *job, const struct scrape_target_group *g,
                           const char *addr, struct scrape_target_spec *out, char *err, size_t errlen)
{
    struct ss_labels *ls = &out->labels;
    char tmp[64];
    int rc;
    ss_labels_reset(ls);
    ss_labels_reset(&out->resource);
    ss_buf_reset(&out->url);

    for (size_t i = 0; i < g->nlabels; i++) {
        rc = ss_labels_setc(ls, (struct ss_str){g->labels[i].key, strlen(g->labels[i].key)},
                            (struct ss_str){g->labels[i].value, strlen(g->labels[i].value)});
        if (rc)
            return rc;
    }
    rc = ss_labels_setc(ls, SS_STR("__address__"), (struct ss_str){addr, strlen(addr)});
    if (rc)
        return rc;
    rc = set_default(ls, "job", job->name);
    ss_format_duration_ms(tmp, sizeof tmp, job->interval_ms);
    if (!rc)
        rc = set_default(ls, "__scrape_interval__", tmp);
    ss_format_duration_ms(tmp, sizeof tmp, job->timeout_ms);
    if (!rc)
        rc = set_default(ls, "__scrape_timeout__", tmp);
    if (!rc)
        rc = set_default(ls, "__metrics_path__", job->metrics_path ? job->metrics_path : "/metrics");
    if (!rc)
        rc = set_default(ls, "__scheme__", job->scheme ? job->scheme : "http");
    /* Prometheus sets __param_<name> to the first value unconditionally. */
    for (size_t i = 0; !rc && i < job->nparams; i++) {
        bool first = true;
        for (size_t j = 0; j < i; j++)
            if (strcmp(job->params[j].key, job->params[i].key) == 0)
                first = false;
        if (!first)
            continue;
        char name[256];
        snprintf(name, sizeof name, "__param_%s", job->params[i].key);
        rc = ss_labels_setc(ls, (struct ss_str){name, strlen(name)},
                            (struct ss_str){job->params[i].value, strlen(job->params[i].value)});
    }
    if (rc)
        return rc;

    if ((rc = k8s_resource(g, &out->resource)))
        return rc;

    if (!relabel_process(job->relabel, job->nrelabel, ls))
        return 0;

    char address[1024], scheme[32], path[2048];
    if (label_cstr(ls, "__address__", address, sizeof address) || !address[0]) {
        snprintf(err, errlen, "no address");
        return SS_EINVAL;
    }
    label_cstr(ls, "__scheme__", scheme, sizeof scheme);
    if (!has_port(address, strlen(address))) {
        size_t al = strlen(address);
        if (!scheme[0] || strcmp(scheme, "http") == 0)
            snprintf(address + al, sizeof address - al, ":80");
        else if (strcmp(scheme, "https") == 0)
            snprintf(address + al, sizeof address - al, ":443");
        else {
            snprintf(err, errlen, "invalid scheme: \"%s\"", scheme);
            return SS_EINVAL;
        }
        rc = ss_labels_setc(ls, SS_STR("__address__"), (struct ss_str){address, strlen(address)});
        if (rc)
            return rc;
    }
    if (strchr(address, '/')) {
        snprintf(err, errlen, "%s is not a valid hostname", address);
        return SS_EINVAL;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "invalid scheme: \"%s\"", scheme);
        return SS_EINVAL;
    }

    char ivs[64], tos[64];
    label_cstr(ls, "__scrape_interval__", ivs, sizeof ivs);
    label_cstr(ls, "__scrape_timeout__", tos, sizeof tos);
    if (ss_parse_duration_ms(ivs, &out->interval_ms) || out->interval_ms <= 0) {
        snprintf(err, errlen, "error parsing scrape interval: \"%s\"", ivs);
        return SS_EINVAL;
    }
    if (ss_parse_duration_ms(tos, &out->timeout_ms) || out->timeout_ms <= 0) {
        snprintf(err, errlen, "error parsing scrape timeout: \"%s\"", tos);
        return SS_EINVAL;
    }
    if (out->timeout_ms > out->interval_ms) {
        snprintf(err, errlen, "scrape timeout cannot be greater than scrape interval (\"%s\" > \"%s\")", tos,
                 ivs);
        return SS_EINVAL;
    }

    label_cstr(ls, "__metrics_path__", path, sizeof path);
    rc = ss_buf_printf(&out->url, "%s://%s%s", scheme, address, path[0] == '/' ? "" : "/");
    /* The path is escaped as Go's url.URL escapes a Path, which Prometheus' target URL
     * is: letters, digits, -_.~ and $&+,/:;=@ stay, everything else (a blank, '?', '#',
     * '%', non-ASCII bytes) becomes %XX. A '?' in metrics_path is part of the path
     * there, not a query (params is). */
    for (const unsigned char *c = (const unsigned char *)path; !rc && *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-_.~$&+,/:;=@", *c))
            rc = ss_buf_append(&out->url, (const char *)c, 1);
        else
            rc = ss_buf_printf(&out->url, "%%%02X", *c);
    }
    if (!rc)
        rc = build_query(job, ls, &out->url);
    if (rc)
        return rc;

    const struct ss_str *inst = ss_labels_get(ls, SS_STR("instance"));
    if (!inst || !inst->len) {
        rc = ss_labels_setc(ls, SS_STR("instance"), (struct ss_str){address, strlen(address)});
        if (rc)
            return rc;
    }

    /* Identity covers the URL and the timing as well as the labels: a target whose
     * scrape changes is a new target. Hash before dropping the "__" labels. */
    ss_labels_sort(ls);
    /* As in Prometheus, __meta_* labels are gone before a target is identified: two
     * discovered entries (say two container ports of one pod) that relabel to the same
     * labels and URL are one target, scraped once. */
    uint64_t h = 0x452821E638D01377ULL;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i].name.len >= 7 && memcmp(ls->v[i].name.p, "__meta_", 7) == 0)
            continue;
        h = ss_hash_str(ss_hash_str(h, ls->v[i].name), ls->v[i].value);
    }
    h = ss_hash_str(h, (struct ss_str){out->url.data, out->url.len});
    out->identity = h ^ ((uint64_t)out->interval_ms * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)out->timeout_ms;
    for (const char *j = job->name; *j; j++)
        out->identity = (out->identity ^ (unsigned char)*j) * 1099511628211ULL;

    /* Only labels without the reserved "__" prefix are attached to series. */
    size_t w = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i].name.len >= 2 && ls->v[i].name.p[0] == '_' && ls->v[i].name.p[1] == '_')
            continue;
        if (!ls->v[i].value.len)
            continue;
        ls->v[w++] = ls->v[i];
    }
    ls->n = w;
    /* What its series are: the labels they carry (not __scrape_interval__ and the
     * other "__" labels, gone now) and the URL they come from. */
    uint64_t sh = 0x13198A2E03707344ULL;
    for (size_t i = 0; i < ls->n; i++)
        sh = ss_hash_str(ss_hash_str(sh, ls->v[i].name), ls->v[i].value);
    out->series_identity = ss_hash_str(sh, (struct ss_str){out->url.data, out->url.len});
    return 1;
}
