/* promop.c: ServiceMonitor / PodMonitor -> Prometheus scrape configs, as
 * prometheus-operator generates them (pkg/prometheus/promcfg.go). The order of the
 * generated relabel rules, and of the keys in each, follows the operator so that
 * the result compares equal to its golden test files (pkg/prometheus/testdata).
 *
 * What is not translated (documented in README.md): scrape classes, oauth2,
 * proxyUrl, tlsConfig from Secrets/ConfigMaps (file paths only), attachMetadata,
 * scrapeProtocols, native histogram settings, targetLimit and the enforced-namespace labeler:
 * a monitor that uses one of the first four fails with an error naming the field;
 * the others are ignored (they change no label). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promop.h"

struct tr {
    const char *kind; /* "ServiceMonitor" or "PodMonitor" */
    const char *ns, *name;
    const struct promop_opts *o;
    char *err;
    size_t errlen;
};

#define TR_FAIL(t, rc, ...)                                                                                  \
    do {                                                                                                     \
        tr_err((t), __VA_ARGS__);                                                                            \
        return (rc);                                                                                         \
    } while (0)

static void tr_err(struct tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr_err(struct tr *t, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(t->err, t->errlen, "%s %s/%s: %s", t->kind, t->ns ? t->ns : "?", t->name ? t->name : "?", msg);
}

/* ---- small JSON helpers ------------------------------------------------- */

/* A string field, NULL when absent; SS_EPARSE when present with another type. */
static int get_str(struct tr *t, json_t *o, const char *k, const char **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        TR_FAIL(t, SS_EPARSE, "%s must be a string", k);
    *out = json_string_value(v);
    return 0;
}

/* A bool field: -1 absent, 0 false, 1 true. */
static int get_bool(struct tr *t, json_t *o, const char *k, int *out)
{
    json_t *v = json_object_get(o, k);
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        TR_FAIL(t, SS_EPARSE, "%s must be a boolean", k);
    *out = json_is_true(v);
    return 0;
}

static int get_obj(struct tr *t, json_t *o, const char *k, json_t **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        TR_FAIL(t, SS_EPARSE, "%s must be an object", k);
    *out = v;
    return 0;
}

static int get_arr(struct tr *t, json_t *o, const char *k, json_t **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        TR_FAIL(t, SS_EPARSE, "%s must be a list", k);
    if (json_array_size(v) > PROMOP_MAX_RULES)
        TR_FAIL(t, SS_ELIMIT, "%s has more than %d entries", k, PROMOP_MAX_RULES);
    *out = v;
    return 0;
}

/* A list of strings (every element checked). */
static int get_strs(struct tr *t, json_t *o, const char *k, json_t **out)
{
    int rc = get_arr(t, o, k, out);
    if (rc || !*out)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(*out, i, v) if (!json_is_string(v))
        TR_FAIL(t, SS_EPARSE, "%s[%zu] must be a string", k, i);
    return 0;
}

/* Builders: a failed allocation leaves a NULL that json_object_set_new refuses, and
 * the caller's final check catches it (jansson frees the value it was handed). */
static int put(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v) ? SS_ENOMEM : 0;
}

static json_t *strs(const char *a, const char *b)
{
    json_t *l = json_array();
    json_array_append_new(l, json_string(a));
    if (b)
        json_array_append_new(l, json_string(b));
    return l;
}

/* Prometheus' label name rule, as the operator's sanitizeLabelName: [^a-zA-Z0-9_] -> _ */
static char *sanitize(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix), n = strlen(s);
    char *r = malloc(pl + n + 1);
    if (!r)
        return NULL;
    memcpy(r, prefix, pl);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        r[pl + i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
    }
    r[pl + n] = 0;
    return r;
}

/* Append one rule made of alternating keys and json_t values, NULL-terminated. */
static int rule(json_t *rules, ...)
{
    json_t *r = json_object();
    if (!r)
        return SS_ENOMEM;
    va_list ap;
    va_start(ap, rules);
    int rc = 0;
    for (const char *k; (k = va_arg(ap, const char *));) {
        json_t *v = va_arg(ap, json_t *);
        if (!rc && put(r, k, v))
            rc = SS_ENOMEM;
        else if (rc)
            json_decref(v);
    }
    va_end(ap);
    if (rc || json_array_append_new(rules, r))
        return SS_ENOMEM;
    return 0;
}

/* ---- selectors ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The selector's keep/drop rules, as the operator's SelectorMechanismRelabel. meta is
 * "__meta_kubernetes_service_label" or "..._pod_label". */
static int selector_rules(struct tr *t, json_t *sel, const char *role, json_t *rules)
{
    json_t *ml, *me;
    int rc;
    if ((rc = get_obj(t, sel, "matchLabels", &ml)) || (rc = get_arr(t, sel, "matchExpressions", &me)))
        return rc;
    char lp[64], pp[64];
    snprintf(lp, sizeof lp, "__meta_kubernetes_%s_label_", role);
    snprintf(pp, sizeof pp, "__meta_kubernetes_%s_labelpresent_", role);
    if (ml) {
        size_t n = json_object_size(ml), i = 0;
        if (n > PROMOP_MAX_RULES)
            TR_FAIL(t, SS_ELIMIT, "selector.matchLabels has more than %d entries", PROMOP_MAX_RULES);
        const char **keys = calloc(n ? n : 1, sizeof *keys);
        if (!keys)
            return SS_ENOMEM;
        const char *k;
        json_t *v;
        json_object_foreach(ml, k, v)
        {
            if (!json_is_string(v)) {
                free(keys);
                TR_FAIL(t, SS_EPARSE, "selector.matchLabels.%s must be a string", k);
            }
            keys[i++] = k;
        }
        qsort(keys, n, sizeof *keys, cmp_str); /* the operator sorts the keys */
        for (i = 0; i < n && !rc; i++) {
            char *a = sanitize(keys[i], lp), *b = sanitize(keys[i], pp);
            size_t rl = strlen(json_string_value(json_object_get(ml, keys[i]))) + 8;
            char *re = malloc(rl);
            if (a && b && re) {
                snprintf(re, rl, "(%s);true", json_string_value(json_object_get(ml, keys[i])));
                rc = rule(rules, "action", json_string("keep"), "source_labels", strs(a, b), "regex",
                          json_string(re), NULL);
            } else
                rc = SS_ENOMEM;
            free(a);
            free(b);
            free(re);
        }
        free(keys);
        if (rc)
            return rc;
    }
    size_t i;
    json_t *e;
    json_array_foreach(me, i, e)
    {
        const char *key, *op;
        json_t *vals;
        if (!json_is_object(e))
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu] must be an object", i);
        if ((rc = get_str(t, e, "key", &key)) || (rc = get_str(t, e, "operator", &op)) ||
            (rc = get_strs(t, e, "values", &vals)))
            return rc;
        if (!key || !op)
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu] needs key and operator", i);
        char *a = sanitize(key, lp), *b = sanitize(key, pp);
        struct ss_buf re;
        ss_buf_init(&re, 1u << 20);
        if (!a || !b) {
            rc = SS_ENOMEM;
        } else if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
            rc = ss_buf_append_str(&re, "(");
            size_t j;
            json_t *v;
            json_array_foreach(vals, j, v)
            {
                if (!rc && j)
                    rc = ss_buf_append_str(&re, "|");
                if (!rc)
                    rc = ss_buf_append_str(&re, json_string_value(v));
            }
            if (!rc)
                rc = ss_buf_append_str(&re, ");true");
            if (!rc)
                rc = rule(rules, "action", json_string(op[0] == 'I' ? "keep" : "drop"), "source_labels",
                          strs(a, b), "regex", json_stringn(re.data, re.len), NULL);
        } else if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
            rc = rule(rules, "action", json_string(op[0] == 'E' ? "keep" : "drop"), "source_labels",
                      strs(b, NULL), "regex", json_string("true"), NULL);
        } else {
            tr_err(t, "selector.matchExpressions[%zu]: unknown operator \"%s\"", i, op);
            rc = SS_EPARSE;
        }
        free(a);
        free(b);
        ss_buf_free(&re);
        if (rc)
            return rc;
    }
    return 0;
}

/* The checks of metav1.LabelSelectorAsSelector, which the operator runs on every
 * monitor's selector before generating anything (a failing monitor is rejected):
 * string labels, known operators, values for In/NotIn only. Both selector
 * mechanisms rely on it (selector_string reads the fields unchecked). */
static int check_selector(struct tr *t, json_t *sel)
{
    json_t *ml, *me, *vals, *e, *v;
    const char *k, *key, *op;
    size_t i;
    int rc;
    if (!sel)
        return 0;
    if ((rc = get_obj(t, sel, "matchLabels", &ml)) || (rc = get_arr(t, sel, "matchExpressions", &me)))
        return rc;
    json_object_foreach(ml, k, v) if (!json_is_string(v))
        TR_FAIL(t, SS_EPARSE, "selector.matchLabels.%s must be a string", k);
    json_array_foreach(me, i, e)
    {
        if (!json_is_object(e))
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu] must be an object", i);
        if ((rc = get_str(t, e, "key", &key)) || (rc = get_str(t, e, "operator", &op)) ||
            (rc = get_strs(t, e, "values", &vals)))
            return rc;
        if (!key || !*key || !op)
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu] needs key and operator", i);
        bool set_op = !strcmp(op, "In") || !strcmp(op, "NotIn");
        if (!set_op && strcmp(op, "Exists") && strcmp(op, "DoesNotExist"))
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu]: unknown operator \"%s\"", i, op);
        if (set_op && !json_array_size(vals))
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu]: values must be non-empty for %s", i, op);
        if (!set_op && json_array_size(vals))
            TR_FAIL(t, SS_EPARSE, "selector.matchExpressions[%zu]: values must be empty for %s", i, op);
    }
    return 0;
}

/* metav1.LabelSelectorAsSelector(sel).String(): requirements sorted by key, values
 * sorted, "k=v", "k in (a,b)", "k notin (a,b)", "k", "!k", joined by ",". */
struct req {
    const char *key;
    char *text;
};
static int cmp_req(const void *a, const void *b)
{
    return strcmp(((const struct req *)a)->key, ((const struct req *)b)->key);
}

static int selector_string(struct tr *t, json_t *sel, struct ss_buf *out)
{
    json_t *ml = json_object_get(sel, "matchLabels"), *me = json_object_get(sel, "matchExpressions");
    size_t n = json_object_size(ml) + json_array_size(me), nr = 0;
    struct req *r = calloc(n ? n : 1, sizeof *r);
    int rc = r ? 0 : SS_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(ml, k, v)
    {
        if (rc)
            break;
        size_t l = strlen(k) + strlen(json_string_value(v) ? json_string_value(v) : "") + 2;
        if (!(r[nr].text = malloc(l))) {
            rc = SS_ENOMEM;
            break;
        }
        snprintf(r[nr].text, l, "%s=%s", k, json_string_value(v) ? json_string_value(v) : "");
        r[nr++].key = k;
    }
    size_t i;
    json_t *e;
    json_array_foreach(me, i, e)
    {
        if (rc)
            break;
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *op = json_string_value(json_object_get(e, "operator"));
        json_t *vals = json_object_get(e, "values");
        struct ss_buf b;
        ss_buf_init(&b, 1u << 20);
        if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
            rc = (op[0] == 'D' ? ss_buf_append_str(&b, "!") : 0) ?: ss_buf_append_str(&b, key);
        } else {
            size_t nv = json_array_size(vals);
            const char **vs = calloc(nv ? nv : 1, sizeof *vs);
            if (!vs)
                rc = SS_ENOMEM;
            for (size_t j = 0; !rc && j < nv; j++)
                vs[j] = json_string_value(json_array_get(vals, j));
            if (!rc)
                qsort(vs, nv, sizeof *vs, cmp_str);
            rc = rc ?: ss_buf_append_str(&b, key) ?: ss_buf_append_str(&b, op[0] == 'I' ? " in (" : " notin (");
            for (size_t j = 0; !rc && j < nv; j++)
                rc = (j ? ss_buf_append_str(&b, ",") : 0) ?: ss_buf_append_str(&b, vs[j]);
            rc = rc ?: ss_buf_append_str(&b, ")");
            free(vs);
        }
        if (!rc && !(r[nr].text = strndup(b.data ? b.data : "", b.len)))
            rc = SS_ENOMEM;
        if (!rc)
            r[nr++].key = key;
        ss_buf_free(&b);
    }
    if (!rc)
        qsort(r, nr, sizeof *r, cmp_req);
    for (size_t j = 0; j < nr; j++) {
        if (!rc)
            rc = (j ? ss_buf_append_str(out, ",") : 0) ?: ss_buf_append_str(out, r[j].text);
        free(r[j].text);
    }
    free(r);
    (void)t;
    return rc;
}

/* ---- pieces of one scrape config ----------------------------------------- */

static int user_rules(struct tr *t, json_t *list, const char *what, json_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        if (!json_is_object(c))
            TR_FAIL(t, SS_EPARSE, "%s[%zu] must be an object", what, i);
        json_t *r = json_object(), *sl, *v;
        const char *s;
        int rc = r ? 0 : SS_ENOMEM;
        /* generateRelabelConfig: this key order, empty fields left out */
        if (!rc && !(rc = get_strs(t, c, "sourceLabels", &sl)) && json_array_size(sl))
            rc = put(r, "source_labels", json_deep_copy(sl));
        if (!rc && !(rc = get_str(t, c, "separator", &s)) && s)
            rc = put(r, "separator", json_string(s));
        if (!rc && !(rc = get_str(t, c, "targetLabel", &s)) && s && *s)
            rc = put(r, "target_label", json_string(s));
        if (!rc && !(rc = get_str(t, c, "regex", &s)) && s && *s)
            rc = put(r, "regex", json_string(s));
        if (!rc && (v = json_object_get(c, "modulus")) && !json_is_null(v)) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                tr_err(t, "%s[%zu].modulus must be a non-negative integer", what, i), rc = SS_EPARSE;
            else if (json_integer_value(v))
                rc = put(r, "modulus", json_integer(json_integer_value(v)));
        }
        if (!rc && !(rc = get_str(t, c, "replacement", &s)) && s)
            rc = put(r, "replacement", json_string(s));
        if (!rc && !(rc = get_str(t, c, "action", &s)) && s && *s) {
            char *low = strdup(s);
            if (!low)
                rc = SS_ENOMEM;
            for (char *p = low; p && *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            if (!rc)
                rc = put(r, "action", json_string(low));
            free(low);
        }
        if (rc || json_array_append_new(out, r)) {
            if (rc)
                json_decref(r);
            return rc ? rc : SS_ENOMEM;
        }
    }
    return 0;
}

/* A SecretKeySelector {name, key} -> its value, read through the options' reader. */
static int secret(struct tr *t, json_t *ref, const char *what, char **value)
{
    const char *name, *key;
    int rc;
    *value = NULL;
    if (!json_is_object(ref))
        TR_FAIL(t, SS_EPARSE, "%s must be a secret key selector {name, key}", what);
    if ((rc = get_str(t, ref, "name", &name)) || (rc = get_str(t, ref, "key", &key)))
        return rc;
    if (!name || !*name || !key || !*key)
        TR_FAIL(t, SS_EPARSE, "%s needs name and key", what);
    if (!t->o->get_secret)
        TR_FAIL(t, SS_ECONFIG, "%s: reading Secrets is not enabled", what);
    char e[256] = "";
    rc = t->o->get_secret(t->o->secret_ud, t->ns, name, key, value, e, sizeof e);
    if (rc)
        TR_FAIL(t, rc, "%s: secret %s/%s key %s: %s", what, t->ns, name, key, e);
    return 0;
}

/* Put a secret's value under k, wiping our copy. */
static int put_secret(json_t *o, const char *k, char *v)
{
    json_t *s = json_string(v);
    ss_wipe(v, strlen(v));
    free(v);
    return put(o, k, s);
}

static int tls_config(struct tr *t, json_t *tc, bool files_allowed, json_t *cfg)
{
    json_t *out = json_object(), *v;
    int rc = out ? 0 : SS_ENOMEM, b;
    const char *s;
    if (!rc && !(rc = get_bool(t, tc, "insecureSkipVerify", &b)) && b >= 0)
        rc = put(out, "insecure_skip_verify", json_boolean(b));
    /* The operator mounts Secret/ConfigMap material as files of its own; we have none. */
    static const char *const refs[] = {"ca", "cert", "keySecret"};
    for (size_t i = 0; !rc && i < 3; i++)
        if ((v = json_object_get(tc, refs[i])) && json_object_size(v))
            tr_err(t, "tlsConfig.%s from a Secret or ConfigMap is not supported: use caFile/certFile/keyFile",
                   refs[i]),
                rc = SS_ECONFIG;
    if (!rc && !(rc = get_str(t, tc, "serverName", &s)) && s && *s)
        rc = put(out, "server_name", json_string(s));
    if (!rc && !(rc = get_str(t, tc, "minVersion", &s)) && s)
        rc = put(out, "min_version", json_string(s));
    if (!rc && !(rc = get_str(t, tc, "maxVersion", &s)) && s)
        rc = put(out, "max_version", json_string(s));
    static const char *const files[][2] = {
        {"caFile", "ca_file"}, {"certFile", "cert_file"}, {"keyFile", "key_file"}};
    for (size_t i = 0; !rc && i < 3; i++) {
        if ((rc = get_str(t, tc, files[i][0], &s)) || !s || !*s)
            continue;
        if (!files_allowed)
            tr_err(t, "tlsConfig.%s is not part of a PodMonitor's tlsConfig", files[i][0]), rc = SS_EPARSE;
        else
            rc = put(out, files[i][1], json_string(s));
    }
    if (rc) {
        json_decref(out);
        return rc;
    }
    return put(cfg, "tls_config", out);
}

static int basic_auth(struct tr *t, json_t *ba, json_t *cfg)
{
    char *u = NULL, *p = NULL;
    json_t *o;
    int rc = secret(t, json_object_get(ba, "username"), "basicAuth.username", &u);
    if (!rc)
        rc = secret(t, json_object_get(ba, "password"), "basicAuth.password", &p);
    if (rc || !(o = json_object())) {
        if (u)
            ss_wipe(u, strlen(u));
        if (p)
            ss_wipe(p, strlen(p));
        free(u);
        free(p);
        return rc ? rc : SS_ENOMEM;
    }
    rc = put_secret(o, "username", u);
    rc = put_secret(o, "password", p) ?: rc;
    if (rc) {
        promop_json_wipe(o);
        json_decref(o);
        return rc;
    }
    return put(cfg, "basic_auth", o);
}

static int authorization(struct tr *t, json_t *a, bool file_allowed, json_t *cfg)
{
    const char *type, *file;
    json_t *cred = json_object_get(a, "credentials");
    int rc;
    if ((rc = get_str(t, a, "type", &type)) || (rc = get_str(t, a, "credentialsFile", &file)))
        return rc;
    if (file && !file_allowed)
        TR_FAIL(t, SS_EPARSE, "authorization.credentialsFile is not part of a PodMonitor");
    /* strings.TrimSpace(type), "Bearer" when empty */
    while (type && (*type == ' ' || *type == '\t'))
        type++;
    size_t tl = type ? strlen(type) : 0;
    while (tl && (type[tl - 1] == ' ' || type[tl - 1] == '\t'))
        tl--;
    json_t *o = json_object();
    if (!o || put(o, "type", tl ? json_stringn(type, tl) : json_string("Bearer"))) {
        json_decref(o);
        return SS_ENOMEM;
    }
    if (cred && !json_is_null(cred)) {
        char *v;
        if ((rc = secret(t, cred, "authorization.credentials", &v)) ||
            (rc = put_secret(o, "credentials", v))) {
            promop_json_wipe(o);
            json_decref(o);
            return rc;
        }
    }
    if (file && *file && put(o, "credentials_file", json_string(file))) {
        promop_json_wipe(o);
        json_decref(o);
        return SS_ENOMEM;
    }
    return put(cfg, "authorization", o);
}

/* The hashmod rules of appendShardingRelabelingWithLabel (no topology sharding). */
static int sharding_rules(struct tr *t, json_t *rules)
{
    char re[64];
    snprintf(re, sizeof re, "%s;|.+;.+", t->o->shard ? t->o->shard : "0");
    int rc = rule(rules, "source_labels", strs("__address__", "__tmp_hash"), "target_label",
                  json_string("__tmp_hash"), "regex", json_string("(.+);"), "replacement", json_string("$1"),
                  "action", json_string("replace"), NULL);
    rc = rc
             ?: rule(rules, "source_labels", strs("__tmp_hash", NULL), "target_label",
                     json_string("__tmp_hash"), "modulus", json_integer(t->o->shards), "action",
                     json_string("hashmod"), NULL);
    rc = rc
             ?: rule(rules, "source_labels", strs("__tmp_hash", "__tmp_disable_sharding"), "regex",
                     json_string(re), "action", json_string("keep"), NULL);
    return rc;
}

/* kubernetes_sd_configs: role, namespaces, then (node-local) the pod field selector
 * and (RoleSelector mechanism) the label selectors, as generateK8SSDConfig. */
static int sd_config(struct tr *t, json_t *spec, const char *role, bool role_selector, json_t *sel,
                     json_t *cfg)
{
    json_t *sd = json_object(), *nsel, *names = NULL;
    int rc = sd ? 0 : SS_ENOMEM, any = -1;
    if (!rc)
        rc = put(sd, "role", json_string(role));
    if (!rc && !(rc = get_obj(t, spec, "namespaceSelector", &nsel)) && nsel) {
        if (!(rc = get_bool(t, nsel, "any", &any)))
            rc = get_strs(t, nsel, "matchNames", &names);
    }
    if (!rc && any != 1) { /* any: all namespaces; no matchNames: the monitor's own */
        json_t *n = json_object();
        if (!n || put(sd, "namespaces", n) ||
            put(n, "names", json_array_size(names) ? json_deep_copy(names) : strs(t->ns, NULL)))
            rc = SS_ENOMEM;
    }
    json_t *sels = json_array();
    if (!sels)
        rc = SS_ENOMEM;
    if (!rc && t->o->node_name) {
        size_t l = strlen(t->o->node_name) + 16;
        char *f = malloc(l);
        if (!f)
            rc = SS_ENOMEM;
        else {
            snprintf(f, l, "spec.nodeName=%s", f ? t->o->node_name : "");
            rc = rule(sels, "role", json_string("pod"), "field", json_string(f), NULL);
            free(f);
        }
    }
    if (!rc && role_selector) {
        struct ss_buf s;
        ss_buf_init(&s, 1u << 20);
        rc = selector_string(t, sel, &s);
        const char *roles[2] = {role, strcmp(role, "pod") ? "service" : NULL};
        for (size_t i = 0; !rc && i < 2 && roles[i]; i++)
            rc = rule(sels, "role", json_string(roles[i]), "label", json_stringn(s.data ? s.data : "", s.len),
                      NULL);
        ss_buf_free(&s);
    }
    if (!rc && json_array_size(sels))
        rc = put(sd, "selectors", sels);
    else
        json_decref(sels);
    if (rc) {
        json_decref(sd);
        return rc;
    }
    json_t *l = json_array();
    if (!l || json_array_append_new(l, sd)) {
        json_decref(l);
        return SS_ENOMEM;
    }
    return put(cfg, "kubernetes_sd_configs", l);
}

/* interval .. scheme, common to both kinds */
static int basics(struct tr *t, json_t *ep, json_t *cfg)
{
    static const char *const keys[][2] = {
        {"interval", "scrape_interval"}, {"scrapeTimeout", "scrape_timeout"}, {"path", "metrics_path"}};
    const char *s;
    json_t *p;
    int rc = 0;
    for (size_t i = 0; !rc && i < 3; i++)
        if (!(rc = get_str(t, ep, keys[i][0], &s)) && s && *s)
            rc = put(cfg, keys[i][1], json_string(s));
    if (!rc && !(rc = get_obj(t, ep, "params", &p)) && p) {
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v)
        {
            if (!json_is_array(v))
                TR_FAIL(t, SS_EPARSE, "params.%s must be a list of strings", k);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) if (!json_is_string(e))
                TR_FAIL(t, SS_EPARSE, "params.%s must be a list of strings", k);
        }
        rc = put(cfg, "params", json_deep_copy(p));
    }
    if (!rc && !(rc = get_str(t, ep, "scheme", &s)) && s) {
        if (strcmp(s, "http") && strcmp(s, "https") && strcmp(s, "HTTP") && strcmp(s, "HTTPS"))
            TR_FAIL(t, SS_EPARSE, "scheme must be http or https");
        rc = put(cfg, "scheme", json_string(s[0] == 'H' ? (s[4] ? "https" : "http") : s));
    }
    return rc;
}

static int limits(struct tr *t, json_t *spec, json_t *cfg)
{
    static const char *const keys[][2] = {{"sampleLimit", "sample_limit"},
                                          {"targetLimit", "target_limit"},
                                          {"labelLimit", "label_limit"},
                                          {"labelNameLengthLimit", "label_name_length_limit"},
                                          {"labelValueLengthLimit", "label_value_length_limit"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(spec, keys[i][0]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            TR_FAIL(t, SS_EPARSE, "%s must be a non-negative integer", keys[i][0]);
        if (put(cfg, keys[i][1], json_integer(json_integer_value(v))))
            return SS_ENOMEM;
    }
    const char *s;
    int rc = get_str(t, spec, "bodySizeLimit", &s);
    if (!rc && s && *s)
        rc = put(cfg, "body_size_limit", json_string(s));
    return rc;
}

static bool port_int(json_t *v, long long *out)
{
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

/* ---- one endpoint -------------------------------------------------------- */

static int endpoint(struct tr *t, json_t *spec, json_t *ep, size_t idx, bool pm, json_t *out)
{
    json_t *cfg = json_object(), *rules = json_array(), *v, *sel;
    int rc = (cfg && rules) ? 0 : SS_ENOMEM, b;
    const char *s, *port = NULL, *jobl, *mech,
                   *role = pm ? "pod" : (t->o->default_role ? t->o->default_role : "endpoints");
    char buf[512];
    bool slice;
    if (rc)
        goto fail;
    if (!json_is_object(ep)) {
        tr_err(t, "%s[%zu] must be an object", pm ? "podMetricsEndpoints" : "endpoints", idx);
        rc = SS_EPARSE;
        goto fail;
    }
    if ((rc = get_obj(t, spec, "selector", &sel)) || (rc = check_selector(t, sel)) ||
        (rc = get_str(t, spec, "selectorMechanism", &mech)) || (rc = get_str(t, spec, "jobLabel", &jobl)) ||
        (rc = get_str(t, ep, "port", &port)))
        goto fail;
    if (!pm && (rc = get_str(t, spec, "serviceDiscoveryRole", &s)) == 0 && s)
        role = !strcmp(s, "EndpointSlice") ? "endpointslice" : "endpoints";
    if (rc)
        goto fail;
    slice = !strcmp(role, "endpointslice");
    bool role_selector = mech && !strcmp(mech, "RoleSelector");
    if (mech && !role_selector && strcmp(mech, "Relabel")) {
        tr_err(t, "selectorMechanism must be Relabel or RoleSelector");
        rc = SS_EPARSE;
        goto fail;
    }
    for (const char *const *k = (const char *const[]){"oauth2", "proxyUrl", "scrapeClass", NULL}; *k; k++)
        if ((v = json_object_get(*k[0] == 's' ? spec : ep, *k)) && !json_is_null(v)) {
            tr_err(t, "%s is not supported", *k);
            rc = SS_ECONFIG;
            goto fail;
        }

    snprintf(buf, sizeof buf, "%s/%s/%s/%zu", pm ? "podMonitor" : "serviceMonitor", t->ns, t->name, idx);
    if ((rc = put(cfg, "job_name", json_string(buf))))
        goto fail;
    if ((rc = get_bool(t, ep, "honorLabels", &b)) || (rc = put(cfg, "honor_labels", json_boolean(b == 1))))
        goto fail;
    if ((rc = get_bool(t, ep, "honorTimestamps", &b)) ||
        (b >= 0 && (rc = put(cfg, "honor_timestamps", json_boolean(b)))))
        goto fail;
    if ((rc = sd_config(t, spec, role, role_selector, sel, cfg)) || (rc = basics(t, ep, cfg)))
        goto fail;
    static const char *const flags[][2] = {{"followRedirects", "follow_redirects"},
                                           {"enableHttp2", "enable_http2"}};
    for (size_t i = 0; i < 2; i++)
        if ((rc = get_bool(t, ep, flags[i][0], &b)) ||
            (b >= 0 && (rc = put(cfg, flags[i][1], json_boolean(b)))))
            goto fail;
    if ((v = json_object_get(ep, "tlsConfig")) && !json_is_null(v)) {
        if (!json_is_object(v)) {
            tr_err(t, "tlsConfig must be an object");
            rc = SS_EPARSE;
            goto fail;
        }
        if ((rc = tls_config(t, v, !pm, cfg)))
            goto fail;
    }
    if (!pm && (rc = get_str(t, ep, "bearerTokenFile", &s)) == 0 && s && *s)
        rc = put(cfg, "bearer_token_file", json_string(s));
    if (rc)
        goto fail;
    if ((v = json_object_get(ep, "bearerTokenSecret")) && json_is_object(v) &&
        json_string_value(json_object_get(v, "name")) && *json_string_value(json_object_get(v, "name"))) {
        char *tok;
        if ((rc = secret(t, v, "bearerTokenSecret", &tok)) || (rc = put_secret(cfg, "bearer_token", tok)))
            goto fail;
    }
    if ((v = json_object_get(ep, "basicAuth")) && !json_is_null(v) && (rc = basic_auth(t, v, cfg)))
        goto fail;
    if ((v = json_object_get(ep, "authorization")) && !json_is_null(v)) {
        if (!json_is_object(v)) {
            tr_err(t, "authorization must be an object");
            rc = SS_EPARSE;
            goto fail;
        }
        if ((rc = authorization(t, v, !pm, cfg)))
            goto fail;
    }

    /* the generated relabel chain */
    if ((rc = rule(rules, "source_labels", strs("job", NULL), "target_label",
                   json_string("__tmp_prometheus_job_name"), NULL)))
        goto fail;
    int filter_running;
    if ((rc = get_bool(t, ep, "filterRunning", &filter_running)))
        goto fail;
    json_t *running = json_pack("{s:s,s:[s],s:s}", "action", "drop", "source_labels",
                                "__meta_kubernetes_pod_phase", "regex", "(Failed|Succeeded)");
    if (!running) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if (pm && filter_running != 0 && json_array_append(rules, running)) {
        json_decref(running);
        rc = SS_ENOMEM;
        goto fail;
    }
    if (!role_selector && sel && (rc = selector_rules(t, sel, pm ? "pod" : "service", rules)))
        goto fail_running;

    /* port filter */
    json_t *tp = json_object_get(ep, "targetPort"), *pn = json_object_get(ep, "portNumber");
    long long num;
    if (tp && !json_is_null(tp) && !json_is_string(tp) && !json_is_integer(tp)) {
        tr_err(t, "targetPort must be a name or a number");
        rc = SS_EPARSE;
        goto fail_running;
    }
    if (port && *port) {
        snprintf(buf, sizeof buf, "__meta_kubernetes_%s_port_name",
                 pm ? "pod_container" : (slice ? "endpointslice" : "endpoint"));
        rc = rule(rules, "action", json_string("keep"), "source_labels", strs(buf, NULL), "regex",
                  json_string(port), NULL);
    } else if (pm && pn && port_int(pn, &num) && num) {
        rc =
            rule(rules, "action", json_string("keep"), "source_labels",
                 strs("__meta_kubernetes_pod_container_port_number", NULL), "regex", json_integer(num), NULL);
    } else if (json_is_string(tp) && *json_string_value(tp)) {
        rc = rule(rules, "action", json_string("keep"), "source_labels",
                  strs("__meta_kubernetes_pod_container_port_name", NULL), "regex",
                  json_string(json_string_value(tp)), NULL);
    } else if (port_int(tp, &num) && num) {
        rc =
            rule(rules, "action", json_string("keep"), "source_labels",
                 strs("__meta_kubernetes_pod_container_port_number", NULL), "regex", json_integer(num), NULL);
    }
    if (rc)
        goto fail_running;

    /* node-local ServiceMonitors: keep the endpoints of pods on this node */
    if (!pm && t->o->node_name) {
        snprintf(buf, sizeof buf, "__meta_kubernetes_%s_node_name",
                 slice ? "endpointslice_endpoint" : "endpoint");
        if ((rc = rule(rules, "action", json_string("keep"), "source_labels", strs(buf, NULL), "regex",
                       json_string(t->o->node_name), NULL)))
            goto fail_running;
    }

    if (pm) {
        rc = rule(rules, "source_labels", strs("__meta_kubernetes_namespace", NULL), "target_label",
                  json_string("namespace"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_pod_container_name", NULL),
                         "target_label", json_string("container"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_pod_name", NULL), "target_label",
                         json_string("pod"), NULL);
    } else {
        const char *k = slice ? "__meta_kubernetes_endpointslice_address_target_kind"
                              : "__meta_kubernetes_endpoint_address_target_kind";
        const char *n = slice ? "__meta_kubernetes_endpointslice_address_target_name"
                              : "__meta_kubernetes_endpoint_address_target_name";
        rc = rule(rules, "source_labels", strs(k, n), "separator", json_string(";"), "regex",
                  json_string("Node;(.*)"), "replacement", json_string("${1}"), "target_label",
                  json_string("node"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs(k, n), "separator", json_string(";"), "regex",
                         json_string("Pod;(.*)"), "replacement", json_string("${1}"), "target_label",
                         json_string("pod"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_namespace", NULL), "target_label",
                         json_string("namespace"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_service_name", NULL), "target_label",
                         json_string("service"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_pod_name", NULL), "target_label",
                         json_string("pod"), NULL);
        rc = rc
                 ?: rule(rules, "source_labels", strs("__meta_kubernetes_pod_container_name", NULL),
                         "target_label", json_string("container"), NULL);
        if (!rc && filter_running != 0 && json_array_append(rules, running))
            rc = SS_ENOMEM;
    }
    if (rc)
        goto fail_running;

    /* targetLabels (services) and podTargetLabels */
    for (int pass = pm ? 1 : 0; pass < 2 && !rc; pass++) {
        json_t *l;
        const char *field = pass ? "podTargetLabels" : "targetLabels";
        if ((rc = get_strs(t, spec, field, &l)))
            break;
        size_t i;
        json_t *e;
        json_array_foreach(l, i, e)
        {
            char *src = sanitize(json_string_value(e),
                                 pass ? "__meta_kubernetes_pod_label_" : "__meta_kubernetes_service_label_");
            char *dst = sanitize(json_string_value(e), "");
            if (src && dst)
                rc = rule(rules, "source_labels", strs(src, NULL), "target_label", json_string(dst), "regex",
                          json_string("(.+)"), "replacement", json_string("${1}"), NULL);
            else
                rc = SS_ENOMEM;
            free(src);
            free(dst);
            if (rc)
                break;
        }
    }
    if (rc)
        goto fail_running;

    /* job: the service name (ServiceMonitor) or ns/name (PodMonitor), then jobLabel */
    if (pm) {
        snprintf(buf, sizeof buf, "%s/%s", t->ns, t->name);
        rc = rule(rules, "target_label", json_string("job"), "replacement", json_string(buf), NULL);
    } else {
        rc = rule(rules, "source_labels", strs("__meta_kubernetes_service_name", NULL), "target_label",
                  json_string("job"), "replacement", json_string("${1}"), NULL);
    }
    if (!rc && jobl && *jobl) {
        char *src = sanitize(jobl, pm ? "__meta_kubernetes_pod_label_" : "__meta_kubernetes_service_label_");
        rc = src ? rule(rules, "source_labels", strs(src, NULL), "target_label", json_string("job"), "regex",
                        json_string("(.+)"), "replacement", json_string("${1}"), NULL)
                 : SS_ENOMEM;
        free(src);
    }
    if (!rc && port && *port)
        rc = rule(rules, "target_label", json_string("endpoint"), "replacement", json_string(port), NULL);
    else if (!rc && json_is_string(tp) && *json_string_value(tp))
        rc = rule(rules, "target_label", json_string("endpoint"), "replacement",
                  json_string(json_string_value(tp)), NULL);
    else if (!rc && port_int(tp, &num) && num) {
        snprintf(buf, sizeof buf, "%lld", num); /* intstr.String() of a number */
        rc = rule(rules, "target_label", json_string("endpoint"), "replacement", json_string(buf), NULL);
    }
    json_t *ul, *ml;
    if (!rc && !(rc = get_arr(t, ep, "relabelings", &ul)))
        rc = user_rules(t, ul, "relabelings", rules);
    if (!rc && t->o->shards && !t->o->node_name) /* DaemonSet mode does not shard */
        rc = sharding_rules(t, rules);
    if (rc)
        goto fail_running;
    json_decref(running);
    running = NULL;
    if ((rc = put(cfg, "relabel_configs", rules))) {
        rules = NULL;
        goto fail;
    }
    rules = NULL;
    if ((rc = limits(t, spec, cfg)))
        goto fail;
    if ((rc = get_arr(t, ep, "metricRelabelings", &ml)))
        goto fail;
    if (json_array_size(ml)) {
        json_t *m = json_array();
        if (!m || (rc = user_rules(t, ml, "metricRelabelings", m)) ||
            (rc = put(cfg, "metric_relabel_configs", m))) {
            if (!rc) {
                json_decref(m);
                rc = SS_ENOMEM;
            }
            goto fail;
        }
    }
    if (json_array_append_new(out, cfg))
        return SS_ENOMEM;
    return 0;
fail_running:
    json_decref(running);
fail:
    json_decref(rules);
    if (cfg)
        promop_json_wipe(cfg);
    json_decref(cfg);
    return rc;
}

int promop_translate(json_t *obj, const struct promop_opts *opts, json_t **out, char *err, size_t errlen)
{
    static const struct promop_opts none = {0};
    struct tr t = {.kind = "monitor", .o = opts ? opts : &none, .err = err, .errlen = errlen};
    json_t *meta, *spec, *eps = NULL, *res = NULL;
    const char *kind;
    int rc;
    *out = NULL;
    if (errlen)
        err[0] = 0;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "monitor: not a JSON object");
        return SS_EPARSE;
    }
    if ((rc = get_str(&t, obj, "kind", &kind)))
        return rc;
    if (!kind || (strcmp(kind, "ServiceMonitor") && strcmp(kind, "PodMonitor"))) {
        snprintf(err, errlen, "monitor: kind must be ServiceMonitor or PodMonitor");
        return SS_EPARSE;
    }
    t.kind = kind;
    bool pm = kind[0] == 'P';
    if ((rc = get_obj(&t, obj, "metadata", &meta)) || !meta) {
        if (!rc)
            tr_err(&t, "no metadata");
        return rc ? rc : SS_EPARSE;
    }
    if ((rc = get_str(&t, meta, "namespace", &t.ns)) || (rc = get_str(&t, meta, "name", &t.name)))
        return rc;
    if (!t.ns || !*t.ns || !t.name || !*t.name)
        TR_FAIL(&t, SS_EPARSE, "metadata needs name and namespace");
    if (strlen(t.ns) + strlen(t.name) > 300)
        TR_FAIL(&t, SS_ELIMIT, "name and namespace too long");
    if ((rc = get_obj(&t, obj, "spec", &spec)) || !spec) {
        if (!rc)
            tr_err(&t, "no spec");
        return rc ? rc : SS_EPARSE;
    }
    if ((rc = get_arr(&t, spec, pm ? "podMetricsEndpoints" : "endpoints", &eps)))
        return rc;
    if (json_array_size(eps) > PROMOP_MAX_ENDPOINTS)
        TR_FAIL(&t, SS_ELIMIT, "more than %d endpoints", PROMOP_MAX_ENDPOINTS);
    if (!(res = json_array()))
        return SS_ENOMEM;
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep)
    {
        if ((rc = endpoint(&t, spec, ep, i, pm, res))) {
            promop_json_wipe(res);
            json_decref(res);
            return rc;
        }
    }
    *out = res;
    return 0;
}

void promop_json_wipe(json_t *v)
{
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n)
            ss_wipe((void *)json_string_value(v), n); /* jansson owns the bytes; we overwrite in place */
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) promop_json_wipe(e);
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e) promop_json_wipe(e);
    }
}
