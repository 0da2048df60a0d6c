/* kube.c: the Kubernetes client the scaler acts through (prefix kube_).
 *
 * Three parts. Configuration finds the API server and credentials the way
 * client-go does: kubeconfig files (current context, cluster server and CA, user
 * token or client certificate, namespace; several files merged first-wins as with
 * KUBECONFIG=a:b) or the in-cluster service account. The error mapper turns an
 * API answer into a message an operator can act on; a 403 names the RBAC rule to
 * add. The client does the three calls the scaler needs: GET and PATCH of the
 * scale subresource and GET of the workload (for pause annotations), over one
 * libcurl handle that keeps its connection between polls.
 *
 * The service-account token is re-read from its file for every request: the
 * kubelet rotates projected tokens (about hourly) and an old one is rejected.
 * Secrets (tokens, passwords, client keys) are wiped before they are freed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>
#include <yaml.h>

#include "scaler.h"

#define MAX_KUBECONFIG_FILES 16
#define MAX_SECRET_BYTES     (64 * 1024)
#define MAX_PEM_BYTES        (1u << 20)
#define DEFAULT_TIMEOUT_MS   10000

/* ---- small helpers ----------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Read a whole file of at most max bytes into a NUL-terminated buffer. */
static int read_file(const char *path, size_t max, struct ss_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? SS_ENOTFOUND : SS_EIO;
    ss_buf_init(out, max);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ss_buf_append(out, chunk, n);
    if (!rc && ferror(f))
        rc = SS_EIO;
    ss_wipe(chunk, sizeof chunk);
    fclose(f);
    if (!rc && !out->data)
        rc = ss_buf_append(out, "", 0); /* an empty file is still a buffer */
    if (rc)
        ss_buf_free_secret(out);
    return rc;
}

char *kube_read_secret_file(const char *path, size_t max)
{
    struct ss_buf b;
    if (!path || read_file(path, max ? max : MAX_SECRET_BYTES, &b) != 0)
        return NULL;
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    if (b.len == 0) {
        ss_buf_free_secret(&b);
        return NULL;
    }
    return b.data;
}

/* RFC 4648 base64 (what kubeconfig's *-data fields hold). Whitespace is skipped,
 * as Go's decoder for these fields tolerates line breaks. */
static int base64_decode(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in);
    if (n > 4 * (size_t)MAX_PEM_BYTES / 3 + 8)
        return SS_ELIMIT;
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return SS_ENOMEM;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=') {
            pad++;
            continue;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        else
            goto bad;
        if (pad)
            goto bad; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2)
        goto bad;
    buf[len] = '\0';
    *out = (char *)buf;
    *outlen = len;
    return 0;
bad:
    ss_wipe(buf, n / 4 * 3 + 4);
    free(buf);
    return SS_EPARSE;
}

/* ---- kubeconfig -------------------------------------------------------- */

struct kfile {
    const char *path;
    char *dir; /* for relative paths in this file */
    yaml_document_t doc;
    bool loaded;
};

static yaml_node_t *ynode(struct kfile *f, int idx)
{
    return idx ? yaml_document_get_node(&f->doc, idx) : NULL;
}

static yaml_node_t *map_get(struct kfile *f, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(f, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return ynode(f, p->value);
    }
    return NULL;
}

/* A non-empty scalar's text, else NULL (kubeconfig treats "" as unset). */
static const char *scalar(yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0)
        return NULL;
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && (strcmp(s, "null") == 0 || strcmp(s, "~") == 0))
        return NULL;
    return s;
}

static const char *map_str(struct kfile *f, yaml_node_t *map, const char *key)
{
    return scalar(map_get(f, map, key));
}

/* In the list `list` (clusters, users, contexts) of file f, the `inner` mapping of
 * the entry called name. */
static yaml_node_t *find_named(struct kfile *f, const char *list, const char *name, const char *inner)
{
    yaml_node_t *root = yaml_document_get_root_node(&f->doc);
    yaml_node_t *seq = map_get(f, root, list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *e = ynode(f, *it);
        const char *n = map_str(f, e, "name");
        if (n && strcmp(n, name) == 0) {
            yaml_node_t *m = map_get(f, e, inner);
            return m && m->type == YAML_MAPPING_NODE ? m : NULL;
        }
    }
    return NULL;
}

static int load_kfile(struct kfile *f, char *err, size_t errlen)
{
    struct ss_buf b;
    int rc = read_file(f->path, KUBE_MAX_CONFIG_BYTES, &b);
    if (rc == SS_ENOTFOUND)
        return rc; /* KUBECONFIG may name files that do not exist: skipped */
    if (rc) {
        snprintf(err, errlen, "kubeconfig %s: %s", f->path,
                 rc == SS_ELIMIT ? "larger than 1 MiB" : "cannot read");
        return rc;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        ss_buf_free_secret(&b);
        return SS_ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)b.data, b.len);
    if (!yaml_parser_load(&p, &f->doc)) {
        snprintf(err, errlen, "kubeconfig %s:%zu:%zu: %s", f->path, p.problem_mark.line + 1,
                 p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML");
        yaml_parser_delete(&p);
        ss_buf_free_secret(&b);
        return SS_EPARSE;
    }
    yaml_parser_delete(&p);
    ss_buf_free_secret(&b); /* the document holds its own copies */
    f->loaded = true;
    const char *slash = strrchr(f->path, '/');
    f->dir = slash ? strndup(f->path, (size_t)(slash - f->path) + 1) : strdup("");
    if (!f->dir)
        return SS_ENOMEM;
    return 0;
}

/* Wipe every scalar of a document before libyaml frees it: tokens, keys, passwords. */
static void wipe_document(yaml_document_t *d)
{
    for (yaml_node_t *n = d->nodes.start; n && n < d->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE)
            ss_wipe(n->data.scalar.value, n->data.scalar.length);
}

/* A file path from a kubeconfig, relative to the file that holds it. */
static char *resolve_path(const struct kfile *f, const char *p)
{
    if (p[0] == '/' || !f->dir[0])
        return strdup(p);
    size_t n = strlen(f->dir) + strlen(p) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", f->dir, p);
    return out;
}

/* Find `list` entry `name` across the merged files: the first file wins. */
static yaml_node_t *merged_named(struct kfile *files, size_t nf, const char *list, const char *name,
                                 const char *inner, struct kfile **owner)
{
    for (size_t i = 0; i < nf; i++) {
        if (!files[i].loaded)
            continue;
        yaml_node_t *m = find_named(&files[i], list, name, inner);
        if (m) {
            *owner = &files[i];
            return m;
        }
    }
    return NULL;
}

static int set_data_or_file(struct kfile *f, yaml_node_t *m, const char *data_key, const char *file_key,
                            char **pem, size_t *pem_len, char **file, char *err, size_t errlen)
{
    const char *d = map_str(f, m, data_key);
    if (d) { /* client-go: data takes precedence over the file */
        int rc = base64_decode(d, pem, pem_len);
        if (rc)
            snprintf(err, errlen, "kubeconfig %s: %s is not valid base64", f->path, data_key);
        return rc;
    }
    const char *p = map_str(f, m, file_key);
    if (p && !(*file = resolve_path(f, p)))
        return SS_ENOMEM;
    return 0;
}

int kube_config_from_kubeconfig(const char *paths, const char *context, struct kube_config **out, char *err,
                                size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    if (!paths) {
        snprintf(err, errlen, "no kubeconfig path");
        return SS_EINVAL;
    }
    struct kfile files[MAX_KUBECONFIG_FILES];
    memset(files, 0, sizeof files);
    size_t nf = 0;
    char *list = xstrdup(paths);
    struct kube_config *c = calloc(1, sizeof *c);
    int rc = SS_ENOMEM;
    if (!list || !c)
        goto fail;
    char *save = NULL;
    for (char *tok = strtok_r(list, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (!*tok)
            continue;
        if (nf == MAX_KUBECONFIG_FILES) {
            snprintf(err, errlen, "KUBECONFIG names more than %d files", MAX_KUBECONFIG_FILES);
            rc = SS_ELIMIT;
            goto fail;
        }
        files[nf].path = tok;
        rc = load_kfile(&files[nf], err, errlen);
        nf++;
        if (rc && rc != SS_ENOTFOUND)
            goto fail;
    }
    size_t nloaded = 0;
    for (size_t i = 0; i < nf; i++)
        nloaded += files[i].loaded;
    if (!nloaded) {
        snprintf(err, errlen, "kubeconfig %s: no such file", paths && *paths ? paths : "(none)");
        rc = SS_ENOTFOUND;
        goto fail;
    }

    const char *ctx_name = context && *context ? context : NULL;
    for (size_t i = 0; i < nf && !ctx_name; i++)
        if (files[i].loaded)
            ctx_name = map_str(&files[i], yaml_document_get_root_node(&files[i].doc), "current-context");
    rc = SS_ECONFIG;
    if (!ctx_name) {
        snprintf(err, errlen, "kubeconfig %s: no current-context (pass --kube-context)", paths);
        goto fail;
    }
    struct kfile *cf = NULL, *clf = NULL, *uf = NULL;
    yaml_node_t *ctx = merged_named(files, nf, "contexts", ctx_name, "context", &cf);
    if (!ctx) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\" not found", paths, ctx_name);
        goto fail;
    }
    const char *cluster_name = map_str(cf, ctx, "cluster");
    const char *user_name = map_str(cf, ctx, "user");
    const char *ns = map_str(cf, ctx, "namespace");
    yaml_node_t *cl =
        cluster_name ? merged_named(files, nf, "clusters", cluster_name, "cluster", &clf) : NULL;
    if (!cl) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\": cluster \"%s\" not found", paths, ctx_name,
                 cluster_name ? cluster_name : "");
        goto fail;
    }
    const char *server = map_str(clf, cl, "server");
    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        snprintf(err, errlen, "kubeconfig %s: cluster \"%s\": server must be an http:// or https:// URL",
                 paths, cluster_name);
        goto fail;
    }
    rc = SS_ENOMEM;
    if (!(c->server = strdup(server)) || !(c->context = strdup(ctx_name)) || (ns && !(c->ns = strdup(ns))))
        goto fail;
    size_t sl = strlen(c->server);
    while (sl > 8 && c->server[sl - 1] == '/')
        c->server[--sl] = '\0';
    const char *insecure = map_str(clf, cl, "insecure-skip-tls-verify");
    c->insecure_skip_verify = insecure && strcmp(insecure, "true") == 0;
    rc = set_data_or_file(clf, cl, "certificate-authority-data", "certificate-authority", &c->ca_pem,
                          &c->ca_pem_len, &c->ca_file, err, errlen);
    if (rc)
        goto fail;

    yaml_node_t *u = user_name ? merged_named(files, nf, "users", user_name, "user", &uf) : NULL;
    if (user_name && !u) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\": user \"%s\" not found", paths, ctx_name,
                 user_name);
        rc = SS_ECONFIG;
        goto fail;
    }
    if (u) {
        if (map_get(uf, u, "exec") || map_get(uf, u, "auth-provider")) {
            snprintf(err, errlen,
                     "kubeconfig %s: user \"%s\" uses an %s plugin, which scrapeship does not run; "
                     "use a token, tokenFile or client certificate",
                     paths, user_name, map_get(uf, u, "exec") ? "exec" : "auth-provider");
            rc = SS_ECONFIG;
            goto fail;
        }
        const char *tok = map_str(uf, u, "token");
        const char *tokf = map_str(uf, u, "tokenFile");
        const char *user = map_str(uf, u, "username");
        const char *pass = map_str(uf, u, "password");
        rc = SS_ENOMEM;
        if ((tok && !(c->token = strdup(tok))) || (tokf && !(c->token_file = resolve_path(uf, tokf))) ||
            (user && !(c->username = strdup(user))) || (pass && !(c->password = strdup(pass))))
            goto fail;
        rc = set_data_or_file(uf, u, "client-certificate-data", "client-certificate", &c->cert_pem,
                              &c->cert_pem_len, &c->cert_file, err, errlen);
        if (!rc)
            rc = set_data_or_file(uf, u, "client-key-data", "client-key", &c->key_pem, &c->key_pem_len,
                                  &c->key_file, err, errlen);
        if (rc)
            goto fail;
        if (!(c->cert_pem || c->cert_file) != !(c->key_pem || c->key_file)) {
            snprintf(err, errlen,
                     "kubeconfig %s: user \"%s\": a client certificate needs both the "
                     "certificate and the key",
                     paths, user_name);
            rc = SS_ECONFIG;
            goto fail;
        }
    }
    rc = 0;
    *out = c;
    c = NULL;
fail:
    if (rc == SS_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        if (files[i].loaded) {
            wipe_document(&files[i].doc);
            yaml_document_delete(&files[i].doc);
        }
        free(files[i].dir);
    }
    free(list);
    kube_config_free(c);
    return rc;
}

int kube_config_in_cluster(const char *sa_dir, struct kube_config **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen,
                 "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
        return SS_ENOTFOUND;
    }
    for (const char *p = port; *p; p++)
        if (!isdigit((unsigned char)*p)) {
            snprintf(err, errlen, "KUBERNETES_SERVICE_PORT \"%.16s\" is not a port", port);
            return SS_ECONFIG;
        }
    if (!sa_dir)
        sa_dir = KUBE_SA_DIR;
    struct kube_config *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    int rc = SS_ENOMEM;
    size_t n = strlen(host) + strlen(port) + 16, dn = strlen(sa_dir) + 16;
    c->server = malloc(n);
    c->token_file = malloc(dn);
    c->ca_file = malloc(dn);
    char *ns_file = malloc(dn);
    c->context = strdup("in-cluster");
    if (!c->server || !c->token_file || !c->ca_file || !ns_file || !c->context)
        goto fail;
    /* an IPv6 service address needs brackets in a URL */
    snprintf(c->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(c->token_file, dn, "%s/token", sa_dir);
    snprintf(c->ca_file, dn, "%s/ca.crt", sa_dir);
    snprintf(ns_file, dn, "%s/namespace", sa_dir);
    char *tok = kube_read_secret_file(c->token_file, MAX_SECRET_BYTES);
    if (!tok) {
        snprintf(err, errlen, "in cluster: cannot read the service-account token %s", c->token_file);
        rc = SS_EAUTH;
        goto fail;
    }
    ss_free_secret(tok);
    struct stat sb;
    if (stat(c->ca_file, &sb) != 0) {
        ss_warn("kube", "in cluster: no CA bundle at %s; using the system CAs", c->ca_file);
        free(c->ca_file);
        c->ca_file = NULL;
    }
    struct ss_buf nsb;
    if (read_file(ns_file, 256, &nsb) == 0) {
        while (nsb.len && isspace((unsigned char)nsb.data[nsb.len - 1]))
            nsb.data[--nsb.len] = '\0';
        if (nsb.len)
            c->ns = nsb.data;
        else
            ss_buf_free(&nsb);
    }
    free(ns_file);
    *out = c;
    return 0;
fail:
    if (rc == SS_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    free(ns_file);
    kube_config_free(c);
    return rc;
}

int kube_config_load(const char *kubeconfig, const char *context, const char *sa_dir,
                     struct kube_config **out, char *err, size_t errlen)
{
    if (kubeconfig && *kubeconfig)
        return kube_config_from_kubeconfig(kubeconfig, context, out, err, errlen);
    const char *env = getenv("KUBECONFIG");
    if (env && *env)
        return kube_config_from_kubeconfig(env, context, out, err, errlen);
    int rc = kube_config_in_cluster(sa_dir, out, err, errlen);
    if (rc != SS_ENOTFOUND)
        return rc;
    const char *home = getenv("HOME");
    if (!home || !*home) {
        snprintf(err, errlen, "no Kubernetes configuration: not in a cluster, no KUBECONFIG and no HOME");
        return SS_ENOTFOUND;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/.kube/config", home);
    rc = kube_config_from_kubeconfig(path, context, out, err, errlen);
    if (rc == SS_ENOTFOUND)
        snprintf(err, errlen, "no Kubernetes configuration: not in a cluster, no KUBECONFIG and no %s", path);
    return rc;
}

void kube_config_free(struct kube_config *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ns);
    free(c->context);
    free(c->ca_file);
    free(c->ca_pem);
    ss_free_secret(c->token);
    free(c->token_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    if (c->key_pem) {
        ss_wipe(c->key_pem, c->key_pem_len);
        free(c->key_pem);
    }
    free(c->username);
    ss_free_secret(c->password);
    free(c);
}

/* ---- paths and errors -------------------------------------------------- */

/* Kubernetes names (DNS subdomains) and API versions only use these characters, so
 * checking them also keeps a manifest from smuggling anything into the URL path. */
static bool valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static bool valid_target(const struct kube_target *t)
{
    if (!t || !valid_name(t->ns, 63) || !valid_name(t->name, 253) || !t->kind || !t->api_version)
        return false;
    size_t kl = strlen(t->kind);
    if (kl == 0 || kl > 63)
        return false;
    for (size_t i = 0; i < kl; i++)
        if (!isalpha((unsigned char)t->kind[i]))
            return false;
    const char *slash = strchr(t->api_version, '/');
    if (slash) {
        char group[254];
        size_t gl = (size_t)(slash - t->api_version);
        if (gl == 0 || gl >= sizeof group)
            return false;
        memcpy(group, t->api_version, gl);
        group[gl] = '\0';
        return valid_name(group, 253) && valid_name(slash + 1, 63) && !strchr(slash + 1, '.');
    }
    return valid_name(t->api_version, 63) && !strchr(t->api_version, '.');
}

/* "Deployment" -> "deployments": the plural for the kinds a ScaledObject targets. */
static void resource_of(const struct kube_target *t, char *buf, size_t cap)
{
    size_t i = 0;
    for (; t->kind && t->kind[i] && i + 2 < cap; i++)
        buf[i] = (char)tolower((unsigned char)t->kind[i]);
    buf[i++] = 's';
    buf[i] = '\0';
}

static void group_of(const struct kube_target *t, char *buf, size_t cap)
{
    const char *slash = t->api_version ? strchr(t->api_version, '/') : NULL;
    snprintf(buf, cap, "%.*s", slash ? (int)(slash - t->api_version) : 0, slash ? t->api_version : "");
}

void kube_rbac_rule(const struct kube_target *t, enum kube_op op, char *buf, size_t cap)
{
    char group[256], res[80];
    group_of(t, group, sizeof group);
    resource_of(t, res, sizeof res);
    /* The scale rule names both verbs: the scaler needs both, and naming only the
     * one that failed would send the operator round twice. */
    snprintf(buf, cap, "apiGroups [\"%s\"], resources [\"%s%s\"], verbs [%s] in namespace %s", group, res,
             op == KUBE_OP_GET_WORKLOAD ? "" : "/scale",
             op == KUBE_OP_GET_WORKLOAD ? "\"get\"" : "\"get\",\"patch\"", t->ns ? t->ns : "?");
}

static const char *op_method(enum kube_op op)
{
    return op == KUBE_OP_PATCH_SCALE ? "PATCH" : "GET";
}

/* The Status message of an error answer, made safe for one log line. */
static void status_message(const char *body, size_t len, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!body || !len || len > KUBE_MAX_BODY_BYTES)
        return;
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    const char *m = json_string_value(json_object_get(doc, "message"));
    size_t o = 0;
    if (m) {
        for (; *m && o + 1 < cap && o < 300; m++)
            buf[o++] = (*m >= 0x20 && *m < 0x7f && *m != '"') ? *m : (*m == '"' ? '\'' : ' ');
    } else if (!doc) {
        /* not JSON (a proxy's page): its start is still a clue */
        for (size_t i = 0; i < len && o + 1 < cap && o < 120; i++)
            buf[o++] = (body[i] >= 0x20 && body[i] < 0x7f && body[i] != '"') ? body[i] : ' ';
    }
    buf[o] = '\0';
    json_decref(doc);
}

int kube_error_from_status(long status, const char *body, size_t len, const struct kube_target *t,
                           enum kube_op op, struct kube_error *out)
{
    char res[80], smsg[320], what[400];
    resource_of(t, res, sizeof res);
    status_message(body, len, smsg, sizeof smsg);
    snprintf(what, sizeof what, "%s %s/%s%s in namespace %s", op_method(op), res, t->name ? t->name : "?",
             op == KUBE_OP_GET_WORKLOAD ? "" : "/scale", t->ns ? t->ns : "?");
    out->status = status;
    out->retryable = false;
    int rc = SS_EHTTP;
    const char *why;
    char rule[400] = "";
    switch (status) {
    case 401:
        why = "unauthorized: the API server rejected the credentials (expired token?)";
        out->retryable = true; /* the token file is read again next poll */
        rc = SS_EAUTH;
        break;
    case 403:
        why = "forbidden";
        kube_rbac_rule(t, op, rule, sizeof rule);
        rc = SS_EAUTH;
        break;
    case 404:
        why = op == KUBE_OP_GET_WORKLOAD
                  ? "not found"
                  : "not found (no such workload, or its kind has no scale subresource)";
        rc = SS_ENOTFOUND;
        break;
    case 409:
        why = "conflict: the object changed meanwhile; retried next poll";
        out->retryable = true;
        break;
    case 422: why = "rejected as invalid"; break;
    case 429:
        why = "throttled by the API server; retried next poll";
        out->retryable = true;
        break;
    default:
        if (status >= 500) {
            why = "server error; retried next poll";
            out->retryable = true;
        } else {
            why = "unexpected answer";
        }
    }
    int n = snprintf(out->message, sizeof out->message, "%s: HTTP %ld %s", what, status, why);
    if (smsg[0] && n > 0 && (size_t)n < sizeof out->message)
        n += snprintf(out->message + n, sizeof out->message - (size_t)n, " (%s)", smsg);
    if (rule[0] && n > 0 && (size_t)n < sizeof out->message)
        snprintf(out->message + n, sizeof out->message - (size_t)n, "; needs: %s", rule);
    return rc;
}

/* ---- client ------------------------------------------------------------ */

struct kube_client {
    const struct kube_config *cfg;
    CURL *curl;
    kube_transport_fn transport;
    void *transport_ud;
    int64_t timeout_ms;
    struct ss_buf resp;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return ss_buf_append(ud, p, size * n) ? 0 : size * n;
}

/* Free a header list that may hold the token: wipe every line first. */
static void free_headers(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            ss_wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static int curl_transport(void *ud, const struct kube_http_request *req, long *status, struct ss_buf *resp,
                          char *err, size_t errlen)
{
    struct kube_client *c = ud;
    const struct kube_config *k = c->cfg;
    if (!c->curl && !(c->curl = curl_easy_init()))
        return SS_ENOMEM;
    CURL *e = c->curl;
    /* reset drops the previous request's options but keeps the live connection */
    curl_easy_reset(e);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hl, req->headers[i]);
        if (!n) {
            free_headers(hl);
            return SS_ENOMEM;
        }
        hl = n;
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "scrapeship/" SS_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, k->insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, k->insecure_skip_verify ? 0L : 2L);
    /* The blobs are not copied: the config outlives the client. */
    if (k->ca_pem) {
        struct curl_blob b = {k->ca_pem, k->ca_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    } else if (k->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, k->ca_file);
    }
    if (k->cert_pem) {
        struct curl_blob b = {k->cert_pem, k->cert_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (k->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, k->cert_file);
    }
    if (k->key_pem) {
        struct curl_blob b = {k->key_pem, k->key_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (k->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, k->key_file);
    }
    if (k->username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, k->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, k->password ? k->password : "");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cr = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    free_headers(hl);
    if (cr == CURLE_WRITE_ERROR && resp->max && resp->len + CURL_MAX_WRITE_SIZE >= resp->max) {
        snprintf(err, errlen, "answer larger than %zu bytes", resp->max);
        return SS_ELIMIT;
    }
    if (cr != CURLE_OK) {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cr));
        return cr == CURLE_OPERATION_TIMEDOUT ? SS_ETIMEDOUT : SS_EIO;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int kube_client_new(const struct kube_config *cfg, struct kube_client **out)
{
    *out = NULL;
    if (!cfg || !cfg->server)
        return SS_EINVAL;
    struct kube_client *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    c->cfg = cfg;
    c->transport = curl_transport;
    c->transport_ud = c;
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    ss_buf_init(&c->resp, KUBE_MAX_BODY_BYTES);
    *out = c;
    return 0;
}

void kube_client_set_transport(struct kube_client *c, kube_transport_fn fn, void *ud)
{
    c->transport = fn ? fn : curl_transport;
    c->transport_ud = fn ? ud : c;
}

void kube_client_set_timeout(struct kube_client *c, int64_t timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

void kube_client_free(struct kube_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    ss_buf_free(&c->resp);
    free(c);
}

/* One API call; on 2xx the body is in c->resp. */
static int request(struct kube_client *c, const struct kube_target *t, enum kube_op op, const char *body,
                   size_t body_len, struct kube_error *err)
{
    memset(err, 0, sizeof *err);
    if (!valid_target(t)) {
        snprintf(err->message, sizeof err->message,
                 "invalid target %s %s/%s: names must be lowercase DNS names", t && t->kind ? t->kind : "?",
                 t && t->ns ? t->ns : "?", t && t->name ? t->name : "?");
        return SS_EINVAL;
    }
    char res[80], path[800];
    resource_of(t, res, sizeof res);
    bool core = !strchr(t->api_version, '/');
    snprintf(path, sizeof path, "%s/%s/%s/namespaces/%s/%s/%s%s", c->cfg->server, core ? "api" : "apis",
             t->api_version, t->ns, res, t->name, op == KUBE_OP_GET_WORKLOAD ? "" : "/scale");

    char *token = NULL;
    if (c->cfg->token_file) {
        /* re-read on every request: projected service-account tokens rotate */
        token = kube_read_secret_file(c->cfg->token_file, MAX_SECRET_BYTES);
        if (!token) {
            snprintf(err->message, sizeof err->message, "cannot read the token file %s", c->cfg->token_file);
            err->retryable = true;
            return SS_EAUTH;
        }
    } else if (c->cfg->token && !(token = strdup(c->cfg->token))) {
        return SS_ENOMEM;
    }
    char *auth = NULL;
    if (token) {
        /* a line break in a token would let a file forge request headers */
        for (const char *q = token; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                ss_free_secret(token);
                snprintf(err->message, sizeof err->message, "the bearer token contains control characters");
                return SS_EAUTH;
            }
        size_t n = strlen(token) + 32;
        auth = malloc(n);
        if (auth)
            snprintf(auth, n, "Authorization: Bearer %s", token);
        ss_free_secret(token);
        if (!auth)
            return SS_ENOMEM;
    }
    const char *headers[3];
    size_t nh = 0;
    headers[nh++] = "Accept: application/json";
    if (body)
        headers[nh++] = "Content-Type: application/merge-patch+json";
    if (auth)
        headers[nh++] = auth;
    struct kube_http_request req = {op_method(op), path, headers, nh, body, body_len};
    long status = 0;
    char terr[512] = "";
    ss_buf_reset(&c->resp);
    int rc = c->transport(c->transport_ud, &req, &status, &c->resp, terr, sizeof terr);
    ss_free_secret(auth);
    if (rc) {
        snprintf(err->message, sizeof err->message, "%s %.300s: %.300s", req.method, path,
                 terr[0] ? terr : ss_strerror(rc));
        err->retryable = rc != SS_ENOMEM;
        return rc;
    }
    if (status < 200 || status > 299)
        return kube_error_from_status(status, c->resp.data, c->resp.len, t, op, err);
    return 0;
}

/* An integer field that must fit a replica count; absent means 0 (omitempty). */
static int replicas_field(json_t *obj, const char *key, int32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return SS_EPARSE;
    *out = (int32_t)json_integer_value(v);
    return 0;
}

static int parse_scale(struct kube_client *c, const struct kube_target *t, struct kube_scale *out,
                       struct kube_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, &je);
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    int rc = SS_EPARSE;
    if (json_is_object(doc) && (!kind || strcmp(kind, "Scale") == 0) &&
        replicas_field(json_object_get(doc, "spec"), "replicas", &out->spec_replicas) == 0 &&
        replicas_field(json_object_get(doc, "status"), "replicas", &out->status_replicas) == 0)
        rc = 0;
    else
        snprintf(err->message, sizeof err->message,
                 "%s/%s/scale in namespace %s: the answer is not a Scale object", t->kind, t->name, t->ns);
    json_decref(doc);
    return rc;
}

int kube_get_scale(struct kube_client *c, const struct kube_target *t, struct kube_scale *out,
                   struct kube_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = request(c, t, KUBE_OP_GET_SCALE, NULL, 0, err);
    return rc ? rc : parse_scale(c, t, out, err);
}

int kube_patch_scale(struct kube_client *c, const struct kube_target *t, int32_t replicas,
                     struct kube_scale *out, struct kube_error *err)
{
    struct kube_scale tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    if (replicas < 0) {
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "refusing to set %d replicas", (int)replicas);
        return SS_EINVAL;
    }
    char body[64];
    int n = snprintf(body, sizeof body, "{\"spec\":{\"replicas\":%d}}", (int)replicas);
    int rc = request(c, t, KUBE_OP_PATCH_SCALE, body, (size_t)n, err);
    return rc ? rc : parse_scale(c, t, out, err);
}

int kube_get_workload(struct kube_client *c, const struct kube_target *t, struct kube_workload *out,
                      struct kube_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = request(c, t, KUBE_OP_GET_WORKLOAD, NULL, 0, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *doc = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, &je);
    json_t *meta = json_object_get(doc, "metadata");
    rc = SS_EPARSE;
    if (!json_is_object(doc) || !json_is_object(meta) ||
        replicas_field(json_object_get(doc, "spec"), "replicas", &out->spec_replicas) != 0 ||
        replicas_field(json_object_get(doc, "status"), "readyReplicas", &out->ready_replicas) != 0) {
        snprintf(err->message, sizeof err->message, "%s %s/%s: the answer is not a workload object", t->kind,
                 t->ns, t->name);
        goto done;
    }
    size_t used = 0, dropped = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "annotations"), k, v)
    {
        /* Only KEDA's keys: scaler_decide reads nothing else, and the store is fixed. */
        if (strncmp(k, "autoscaling.keda.sh/", 20) != 0 || !json_is_string(v))
            continue;
        size_t kl = strlen(k), vl = json_string_length(v);
        size_t cap = sizeof out->annotations / sizeof out->annotations[0];
        if (out->n_annotations == cap || used + kl + vl + 2 > sizeof out->strings) {
            dropped++;
            continue;
        }
        char *ks = out->strings + used;
        memcpy(ks, k, kl + 1);
        used += kl + 1;
        char *vs = out->strings + used;
        memcpy(vs, json_string_value(v), vl);
        vs[vl] = '\0';
        used += vl + 1;
        out->annotations[out->n_annotations].key = ks;
        out->annotations[out->n_annotations].value = vs;
        out->n_annotations++;
    }
    if (dropped)
        ss_warn("kube",
                "%s %s/%s: %zu autoscaling.keda.sh/ annotations ignored (more than %zu, or over %zu bytes)",
                t->kind, t->ns, t->name, dropped, sizeof out->annotations / sizeof out->annotations[0],
                sizeof out->strings);
    rc = 0;
done:
    json_decref(doc);
    return rc;
}
