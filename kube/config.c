/* config.c: where the Kubernetes API server is and how to authenticate to it.
 *
 * kubeconfig files the way clientcmd reads them (current context, cluster server and
 * CA, user token, tokenFile, client certificate or basic auth, namespace; several
 * files merged first-wins as with KUBECONFIG=a:b), the in-cluster service account,
 * or an explicit api_server with a Prometheus http_config. The result always holds
 * an httpc_config, so requests are set up by the HTTP floor alone.
 *
 * The kubeconfig is read into the YAML floor's tree (yamltree.h) with the rules of
 * libyaml's document loader, which this file used before: only the first document
 * is read, and an anchor may not be defined twice.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "kube.h"
#include "yamltree.h"

#define MAX_KUBECONFIG_FILES 16
#define MAX_PEM_BYTES        (1u << 20)
/* client-go turns the YAML into JSON for encoding/json, which stops at 10000 levels */
#define MAX_YAML_DEPTH 10000

/* ---- small helpers ----------------------------------------------------- */

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

/* RFC 4648 base64 with padding (what kubeconfig's *-data fields hold, Go's
 * StdEncoding); line breaks and spaces are skipped. OpenSSL's decoder does the work. */
static int base64_decode(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in);
    if (n > 4 * (size_t)MAX_PEM_BYTES / 3 + 8)
        return SS_ELIMIT;
    size_t cap = (n / 4 + 1) * 3 + 1;
    unsigned char *buf = malloc(cap);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!buf || !ctx) {
        free(buf);
        EVP_ENCODE_CTX_free(ctx);
        return SS_ENOMEM;
    }
    int l1 = 0, l2 = 0;
    EVP_DecodeInit(ctx);
    bool ok = EVP_DecodeUpdate(ctx, buf, &l1, (const unsigned char *)in, (int)n) >= 0 &&
              EVP_DecodeFinal(ctx, buf + l1, &l2) >= 0;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        ss_wipe(buf, cap);
        free(buf);
        return SS_EPARSE;
    }
    buf[l1 + l2] = '\0';
    *out = (char *)buf;
    *outlen = (size_t)(l1 + l2);
    return 0;
}

static struct kube_config *config_new(const char *server, size_t server_len, const struct httpc_config *http)
{
    struct kube_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    while (server_len > 8 && server[server_len - 1] == '/')
        server_len--;
    if (!(c->server = strndup(server, server_len)) || httpc_config_dup(http, &c->http) != 0) {
        kube_config_free(c);
        return NULL;
    }
    return c;
}

void kube_config_free(struct kube_config *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ns);
    free(c->context);
    httpc_config_free(c->http);
    free(c);
}

/* ---- kubeconfig -------------------------------------------------------- */

struct kfile {
    const char *path;
    char *dir;                   /* for relative paths in this file */
    struct ss_ytree *tree;       /* NULL when the file does not exist */
    const struct ss_ynode *root; /* NULL for a file without a document */
};

/* The rules of yaml_parser_load, which this reader used before the tree: the first
 * document only, the rest unread; no anchor defined twice. Bytes are bounded by
 * KUBE_MAX_CONFIG_BYTES, so the other dimensions need no limit of their own. */
static const struct ss_yaml_opts kubeconfig_yaml = {
    .max_depth = MAX_YAML_DEPTH,
    .max_docs = 1,
    .stop_at_max_docs = true,
    .unique_anchors = true,
};

/* A non-empty scalar's text, else NULL (kubeconfig treats "" as unset). Only the
 * plain spellings null and ~ are null here, as they always have been. */
static const char *scalar(const struct ss_ynode *n)
{
    if (!n || n->kind != SS_YSCALAR || n->len == 0)
        return NULL;
    if (n->plain && (strcmp(n->text, "null") == 0 || strcmp(n->text, "~") == 0))
        return NULL;
    return n->text;
}

static const char *map_str(const struct ss_ynode *map, const char *key)
{
    return scalar(ss_yaml_map_get(map, key));
}

/* YAML 1.1 spellings of true, as Go's yaml decoder reads a kubeconfig bool. */
static bool map_true(const struct ss_ynode *map, const char *key)
{
    const char *s = map_str(map, key);
    return s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0);
}

static const struct ss_ynode *root_seq(const struct kfile *f, const char *list)
{
    const struct ss_ynode *seq = ss_yaml_map_get(f->root, list);
    return seq && seq->kind == SS_YSEQ ? seq : NULL;
}

/* In the list `list` (clusters, users, contexts) of file f, the `inner` mapping of
 * the entry called name. */
static const struct ss_ynode *find_named(const struct kfile *f, const char *list, const char *name,
                                         const char *inner)
{
    const struct ss_ynode *seq = root_seq(f, list);
    for (size_t i = 0; seq && i < seq->nkids; i++) {
        const struct ss_ynode *e = seq->kids[i];
        const char *n = map_str(e, "name");
        if (n && strcmp(n, name) == 0) {
            const struct ss_ynode *m = ss_yaml_map_get(e, inner);
            return m && m->kind == SS_YMAP ? m : NULL;
        }
    }
    return NULL;
}

/* Word a failed parse: libyaml's own text where it has one, as before the tree. */
static void parse_fail(const char *path, const struct ss_yaml_error *e, char *err, size_t errlen)
{
    switch (e->fault) {
    case SS_YAML_NOMEM: break; /* "out of memory", from the caller */
    case SS_YAML_DEPTH:
        snprintf(err, errlen, "kubeconfig %s:%d:%d: nested deeper than %d levels", path, e->line, e->col,
                 MAX_YAML_DEPTH);
        break;
    case SS_YAML_ALIAS_UNKNOWN:
        snprintf(err, errlen, "kubeconfig %s:%d:%d: found undefined alias \"%s\"", path, e->line, e->col,
                 e->name);
        break;
    case SS_YAML_ALIAS_OPEN:
        snprintf(err, errlen, "kubeconfig %s:%d:%d: anchor \"%s\" value contains itself", path, e->line,
                 e->col, e->name);
        break;
    case SS_YAML_ANCHOR_TWICE:
        snprintf(err, errlen, "kubeconfig %s:%d:%d: found duplicate anchor \"%s\"", path, e->line, e->col,
                 e->name);
        break;
    default:
        snprintf(err, errlen, "kubeconfig %s:%d:%d: %s", path, e->line, e->col,
                 e->problem ? e->problem : "invalid YAML");
        break;
    }
}

static int load_kfile(struct kfile *f, char *err, size_t errlen)
{
    struct ss_buf b;
    int rc = read_file(f->path, KUBE_MAX_CONFIG_BYTES, &b);
    if (rc == SS_ENOTFOUND)
        return rc; /* KUBECONFIG may name files that do not exist: skipped */
    if (rc) {
        snprintf(err, errlen, "kubeconfig %s: %s", f->path,
                 rc == SS_ELIMIT ? "larger than 4 MiB" : "cannot read");
        return rc;
    }
    struct ss_yaml_error ye;
    rc = ss_yaml_parse(b.data, b.len, &kubeconfig_yaml, &f->tree, &ye);
    ss_buf_free_secret(&b); /* the tree holds its own copies */
    if (rc) {
        parse_fail(f->path, &ye, err, errlen);
        return rc == SS_ENOMEM ? rc : SS_EPARSE; /* the depth limit too: kube.h */
    }
    f->root = ss_yaml_root(f->tree, 0);
    if (f->root && f->root->kind != SS_YMAP) {
        snprintf(err, errlen, "kubeconfig %s: not a mapping", f->path);
        return SS_EPARSE;
    }
    const char *slash = strrchr(f->path, '/');
    f->dir = slash ? strndup(f->path, (size_t)(slash - f->path) + 1) : strdup("");
    if (!f->dir)
        return SS_ENOMEM;
    return 0;
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

/* Find `list` entry `name` across the merged files: the first file wins. *owner, if
 * owner is not NULL, is the file it was found in. */
static const struct ss_ynode *merged_named(struct kfile *files, size_t nf, const char *list, const char *name,
                                           const char *inner, struct kfile **owner)
{
    for (size_t i = 0; i < nf; i++) {
        if (!files[i].tree)
            continue;
        const struct ss_ynode *m = find_named(&files[i], list, name, inner);
        if (m) {
            if (owner)
                *owner = &files[i];
            return m;
        }
    }
    return NULL;
}

/* Strings made while reading, freed once the httpc_config is copied. */
struct scratch {
    char *path[4]; /* CA, cert, key, token file */
    char *pem[3];  /* CA, cert, key (secret) */
    size_t pem_len[3];
};

static void scratch_free(struct scratch *s)
{
    for (size_t i = 0; i < 4; i++)
        free(s->path[i]);
    for (size_t i = 0; i < 3; i++)
        if (s->pem[i]) {
            ss_wipe(s->pem[i], s->pem_len[i]);
            free(s->pem[i]);
        }
}

/* client-go: the *-data field takes precedence over the file. */
static int data_or_file(const struct kfile *f, const struct ss_ynode *m, const char *data_key,
                        const char *file_key, struct scratch *s, int slot, char *err, size_t errlen)
{
    const char *d = map_str(m, data_key);
    if (d) {
        int rc = base64_decode(d, &s->pem[slot], &s->pem_len[slot]);
        if (rc == SS_EPARSE || rc == SS_ELIMIT)
            snprintf(err, errlen, "kubeconfig %s: %s is not valid base64%s", f->path, data_key,
                     rc == SS_ELIMIT ? " (or larger than 1 MiB)" : "");
        return rc;
    }
    const char *p = map_str(m, file_key);
    if (p && !(s->path[slot] = resolve_path(f, p)))
        return SS_ENOMEM;
    return 0;
}

/* The only context of the merged files, for a kubeconfig without current-context. */
static const char *only_context(struct kfile *files, size_t nf)
{
    const char *name = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        const struct ss_ynode *seq = files[i].tree ? root_seq(&files[i], "contexts") : NULL;
        for (size_t k = 0; seq && k < seq->nkids; k++) {
            const char *nm = map_str(seq->kids[k], "name");
            if (nm && (!name || strcmp(nm, name) != 0)) {
                name = nm;
                n++;
            }
        }
    }
    return n == 1 ? name : NULL;
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
    struct scratch s;
    memset(&s, 0, sizeof s);
    struct httpc_config h = {0};
    size_t nf = 0;
    char *list = strdup(paths);
    struct kube_config *c = NULL;
    int rc = SS_ENOMEM;
    if (!list)
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
        nloaded += files[i].tree != NULL;
    if (!nloaded) {
        snprintf(err, errlen, "kubeconfig %s: no such file", *paths ? paths : "(none)");
        rc = SS_ENOTFOUND;
        goto fail;
    }

    const char *ctx_name = context && *context ? context : NULL;
    for (size_t i = 0; i < nf && !ctx_name; i++)
        ctx_name = map_str(files[i].root, "current-context");
    if (!ctx_name)
        ctx_name = only_context(files, nf);
    rc = SS_ECONFIG;
    if (!ctx_name) {
        snprintf(err, errlen, "kubeconfig %s: no current-context (pass --kube-context)", paths);
        goto fail;
    }
    struct kfile *clf = NULL, *uf = NULL;
    const struct ss_ynode *ctx = merged_named(files, nf, "contexts", ctx_name, "context", NULL);
    if (!ctx) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\" not found", paths, ctx_name);
        goto fail;
    }
    const char *cluster_name = map_str(ctx, "cluster");
    const char *user_name = map_str(ctx, "user");
    const char *ns = map_str(ctx, "namespace");
    const struct ss_ynode *cl =
        cluster_name ? merged_named(files, nf, "clusters", cluster_name, "cluster", &clf) : NULL;
    if (!cl) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\": cluster \"%s\" not found", paths, ctx_name,
                 cluster_name ? cluster_name : "");
        goto fail;
    }
    const char *server = map_str(cl, "server");
    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        snprintf(err, errlen, "kubeconfig %s: cluster \"%s\": server must be an http:// or https:// URL",
                 paths, cluster_name);
        goto fail;
    }
    h.tls_insecure_skip_verify = map_true(cl, "insecure-skip-tls-verify");
    if ((rc = data_or_file(clf, cl, "certificate-authority-data", "certificate-authority", &s, 0, err,
                           errlen)))
        goto fail;

    const struct ss_ynode *u = user_name ? merged_named(files, nf, "users", user_name, "user", &uf) : NULL;
    if (user_name && !u) {
        snprintf(err, errlen, "kubeconfig %s: context \"%s\": user \"%s\" not found", paths, ctx_name,
                 user_name);
        rc = SS_ECONFIG;
        goto fail;
    }
    if (u) {
        const char *tok = map_str(u, "token");
        const char *tokf = map_str(u, "tokenFile");
        const char *user = map_str(u, "username");
        const char *pass = map_str(u, "password");
        if ((rc = data_or_file(uf, u, "client-certificate-data", "client-certificate", &s, 1, err, errlen)) ||
            (rc = data_or_file(uf, u, "client-key-data", "client-key", &s, 2, err, errlen)))
            goto fail;
        rc = SS_ECONFIG;
        bool cert = s.pem[1] || s.path[1], key = s.pem[2] || s.path[2];
        if (cert != key) {
            snprintf(
                err, errlen,
                "kubeconfig %s: user \"%s\": a client certificate needs both the certificate and the key",
                paths, user_name);
            goto fail;
        }
        if ((tok || tokf) && (user || pass)) {
            snprintf(err, errlen,
                     "kubeconfig %s: user \"%s\": more than one authentication method (token and basic auth)",
                     paths, user_name);
            goto fail;
        }
        const struct ss_ynode *exec = ss_yaml_map_get(u, "exec");
        const struct ss_ynode *plugin = exec ? exec : ss_yaml_map_get(u, "auth-provider");
        if (plugin && !tok && !tokf && !user && !cert) {
            snprintf(err, errlen,
                     "kubeconfig %s: user \"%s\" uses an %s plugin, which scrapeship does not run; "
                     "use a token, tokenFile or client certificate",
                     paths, user_name, exec ? "exec" : "auth-provider");
            goto fail;
        }
        rc = SS_ENOMEM;
        if (tokf && !(s.path[3] = resolve_path(uf, tokf)))
            goto fail;
        if (tok || tokf) {
            h.authorization_type = "Bearer";
            /* client-go: a readable tokenFile wins over the static token */
            h.authorization_credentials = tokf ? NULL : tok;
            h.authorization_credentials_file = s.path[3];
        }
        if (user || pass) {
            h.basic_auth_username = user ? user : "";
            h.basic_auth_password = pass;
        }
    }
    h.tls_ca_file = s.path[0];
    h.tls_ca_pem = s.pem[0];
    h.tls_ca_pem_len = s.pem_len[0];
    h.tls_cert_file = s.path[1];
    h.tls_cert_pem = s.pem[1];
    h.tls_cert_pem_len = s.pem_len[1];
    h.tls_key_file = s.path[2];
    h.tls_key_pem = s.pem[2];
    h.tls_key_pem_len = s.pem_len[2];
    rc = SS_ENOMEM;
    if (!(c = config_new(server, strlen(server), &h)) || !(c->context = strdup(ctx_name)) ||
        (ns && !(c->ns = strdup(ns))))
        goto fail;
    rc = 0;
    *out = c;
    c = NULL;
fail:
    if (rc == SS_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    kube_config_free(c);
    scratch_free(&s);
    for (size_t i = 0; i < nf; i++) {
        ss_yaml_free(files[i].tree); /* wipes the scalars: tokens, keys, passwords */
        free(files[i].dir);
    }
    free(list);
    return rc;
}

/* ---- in cluster, explicit server, load order ---------------------------------- */

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
    int rc = SS_ENOMEM;
    struct kube_config *c = NULL;
    size_t n = strlen(host) + strlen(port) + 16, dn = strlen(sa_dir) + 16;
    char *server = malloc(n), *token_file = malloc(dn), *ca_file = malloc(dn), *ns_file = malloc(dn);
    if (!server || !token_file || !ca_file || !ns_file)
        goto fail;
    /* an IPv6 service address needs brackets in a URL */
    snprintf(server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(token_file, dn, "%s/token", sa_dir);
    snprintf(ca_file, dn, "%s/ca.crt", sa_dir);
    snprintf(ns_file, dn, "%s/namespace", sa_dir);
    char *tok = ss_read_secret_file(token_file);
    bool have_token = tok && tok[0];
    ss_free_secret(tok);
    if (!have_token) {
        snprintf(err, errlen, "in cluster: cannot read the service-account token %s", token_file);
        rc = SS_EAUTH;
        goto fail;
    }
    struct stat sb;
    bool have_ca = stat(ca_file, &sb) == 0;
    if (!have_ca)
        ss_warn("kube", "in cluster: no CA bundle at %s; using the system CAs", ca_file);
    struct httpc_config h = {
        .authorization_type = "Bearer",
        .authorization_credentials_file = token_file, /* never cached: bound tokens rotate */
        .tls_ca_file = have_ca ? ca_file : NULL,
    };
    if (!(c = config_new(server, strlen(server), &h)) || !(c->context = strdup("in-cluster")))
        goto fail;
    char *nsv = ss_read_secret_file(ns_file); /* not a secret, but a small trimmed file */
    if (nsv && nsv[0])
        c->ns = nsv;
    else
        free(nsv);
    rc = 0;
    *out = c;
    c = NULL;
fail:
    if (rc == SS_ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    kube_config_free(c);
    free(server);
    free(token_file);
    free(ca_file);
    free(ns_file);
    return rc;
}

int kube_config_from_url(const char *api_server, const struct httpc_config *http, struct kube_config **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    static const struct httpc_config none = {0};
    struct kube_config *c = config_new(api_server, strlen(api_server), http ? http : &none);
    if (!c || !(c->context = strdup("api_server"))) {
        kube_config_free(c);
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    *out = c;
    return 0;
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
