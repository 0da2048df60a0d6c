/* discovery.c: file-based service discovery (Prometheus file_sd_configs).
 *
 * A file_sd file holds a list of target groups, {"targets": [...], "labels": {...}},
 * as JSON or YAML. We expand the configured glob patterns, read each matched file
 * whole (bounded), and validate it the way Prometheus' discovery/file does: strict
 * field names, string targets, legal label names, UTF-8 label values. A bad file is
 * logged and skipped; it never hides the good ones. Each loaded file gets its own
 * arena, so a file that fails half-way is dropped without leaving strings behind.
 * The engine polls scrape_file_sd_fingerprint (stat only, no reads) and calls
 * scrape_file_sd_load again only when the fingerprint moves.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "scrape.h"
#include "sstext.h"
#include "yamltree.h"

#define SD_LOG            "discovery"
#define SD_FILEPATH_LABEL "__meta_filepath"

/* Per-file limits. Bytes and targets are the documented ones; groups and label pairs
 * bound what YAML aliases could otherwise multiply out of a small file. */
#define SD_MAX_FILE_BYTES  ((size_t)16 << 20)
#define SD_MAX_TARGETS     100000
#define SD_MAX_GROUPS      100000
#define SD_MAX_LABEL_PAIRS 1000000
#define SD_READ_CHUNK      ((size_t)64 << 10)
#define SD_MAX_EINTR       100

struct scrape_sd_groups {
    struct scrape_target_group *groups;
    size_t ngroups;
    size_t groups_cap;
    struct ss_arena *arenas; /* one per loaded file: owns its groups' strings and arrays */
    size_t narenas;
    size_t arenas_cap;
};

/* State while one file is parsed. The first error wins; line/col are 1-based, 0 when
 * the format cannot say where. */
struct sd_parse {
    const char *path;
    struct ss_arena *arena;
    struct scrape_sd_groups *out;
    const char *filepath_value; /* path copied into the arena */
    size_t ntargets;
    size_t nlabel_pairs;
    size_t ngroups;
    unsigned long line;
    unsigned long col;
    char err[512];
};

/* ---- helpers ----------------------------------------------------------- */

static int sd_fail(struct sd_parse *ps, int rc, unsigned long line, unsigned long col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int sd_fail(struct sd_parse *ps, int rc, unsigned long line, unsigned long col, const char *fmt, ...)
{
    if (ps->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, sizeof ps->err, fmt, ap);
        va_end(ap);
        ps->line = line;
        ps->col = col;
    }
    return rc;
}

/* Our strings are NUL-terminated, so a value with an embedded NUL (JSON "\u0000" is
 * already refused by jansson; YAML "\0" is not) cannot be represented. */
static bool sd_has_nul(const char *s, size_t len)
{
    return memchr(s, '\0', len) != NULL;
}

/* Count a group's targets and labels against the per-file limits before anything is
 * allocated for it. */
static int sd_reserve(struct sd_parse *ps, size_t ntargets, size_t nlabels, unsigned long line,
                      unsigned long col)
{
    if (ps->ngroups >= SD_MAX_GROUPS)
        return sd_fail(ps, SS_ELIMIT, line, col, "more than %d target groups", SD_MAX_GROUPS);
    if (ntargets > SD_MAX_TARGETS - ps->ntargets)
        return sd_fail(ps, SS_ELIMIT, line, col, "more than %d targets", SD_MAX_TARGETS);
    if (nlabels > SD_MAX_LABEL_PAIRS - ps->nlabel_pairs)
        return sd_fail(ps, SS_ELIMIT, line, col, "more than %d labels in all groups", SD_MAX_LABEL_PAIRS);
    ps->ntargets += ntargets;
    ps->nlabel_pairs += nlabels;
    ps->ngroups++;
    return 0;
}

/* Room for a group's arrays; labels get one spare slot for __meta_filepath. */
static int sd_alloc_group(struct sd_parse *ps, size_t ntargets, size_t nlabels, const char ***targets,
                          struct ss_kv **labels)
{
    *targets = NULL;
    *labels = ss_arena_alloc(ps->arena, (nlabels + 1) * sizeof **labels);
    if (!*labels)
        return SS_ENOMEM;
    if (ntargets) {
        *targets = ss_arena_alloc(ps->arena, ntargets * sizeof **targets);
        if (!*targets)
            return SS_ENOMEM;
    }
    return 0;
}

static int sd_cmp_kv_key(const void *a, const void *b)
{
    return strcmp(((const struct ss_kv *)a)->key, ((const struct ss_kv *)b)->key);
}

/* Finish a group: refuse duplicate label names (YAML strict decoding; JSON has been
 * checked by jansson), set __meta_filepath the way discovery/file does (it overrides
 * a label of that name from the file), and append it to the output. */
static int sd_commit_group(struct sd_parse *ps, size_t gi, const char **targets, size_t ntargets,
                           struct ss_kv *labels, size_t nlabels, unsigned long line, unsigned long col)
{
    if (nlabels > 1) {
        struct ss_kv *sorted = malloc(nlabels * sizeof *sorted);
        if (!sorted)
            return SS_ENOMEM;
        memcpy(sorted, labels, nlabels * sizeof *sorted);
        qsort(sorted, nlabels, sizeof *sorted, sd_cmp_kv_key);
        const char *dup = NULL;
        for (size_t i = 1; i < nlabels && !dup; i++)
            if (strcmp(sorted[i - 1].key, sorted[i].key) == 0)
                dup = sorted[i].key;
        int rc = 0;
        if (dup)
            rc = sd_fail(ps, SS_EPARSE, line, col, "group %zu: duplicate label name \"%s\"", gi, dup);
        free(sorted);
        if (rc)
            return rc;
    }
    size_t i;
    for (i = 0; i < nlabels; i++)
        if (strcmp(labels[i].key, SD_FILEPATH_LABEL) == 0)
            break;
    labels[i].key = SD_FILEPATH_LABEL;
    labels[i].value = ps->filepath_value;
    if (i == nlabels)
        nlabels++;

    struct scrape_sd_groups *g = ps->out;
    if (g->ngroups == g->groups_cap) {
        size_t ncap = g->groups_cap ? g->groups_cap * 2 : 16;
        struct scrape_target_group *n = realloc(g->groups, ncap * sizeof *n);
        if (!n)
            return SS_ENOMEM;
        g->groups = n;
        g->groups_cap = ncap;
    }
    g->groups[g->ngroups++] = (struct scrape_target_group){
        .targets = targets, .ntargets = ntargets, .labels = labels, .nlabels = nlabels};
    return 0;
}

/* ---- JSON -------------------------------------------------------------- */

static bool sd_json_blank(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
            return false;
    return true;
}

static const char *sd_json_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int sd_json_group(struct sd_parse *ps, size_t gi, const json_t *obj)
{
    if (json_is_null(obj))
        return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: null target group", gi);
    if (!json_is_object(obj))
        return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: expected an object, got %s", gi, sd_json_type(obj));

    /* Go's encoding/json matches field names case-insensitively, so "Targets" is the
     * targets field too; anything else is refused (DisallowUnknownFields). */
    const json_t *jt = NULL, *jl = NULL;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        const json_t **slot;
        if (strcasecmp(key, "targets") == 0)
            slot = &jt;
        else if (strcasecmp(key, "labels") == 0)
            slot = &jl;
        else
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: unknown field \"%s\"", gi, key);
        if (*slot)
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: duplicate field \"%s\"", gi, key);
        *slot = val;
    }
    if (jt && !json_is_null(jt) && !json_is_array(jt))
        return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: targets must be a list of strings, got %s", gi,
                       sd_json_type(jt));
    if (jl && !json_is_null(jl) && !json_is_object(jl))
        return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: labels must be an object, got %s", gi,
                       sd_json_type(jl));
    size_t nt = json_is_array(jt) ? json_array_size(jt) : 0;
    size_t nl = json_is_object(jl) ? json_object_size(jl) : 0;
    int rc = sd_reserve(ps, nt, nl, 0, 0);
    if (rc)
        return rc;

    const char **targets;
    struct ss_kv *labels;
    rc = sd_alloc_group(ps, nt, nl, &targets, &labels);
    if (rc)
        return rc;
    for (size_t i = 0; i < nt; i++) {
        const json_t *t = json_array_get(jt, i);
        if (!json_is_string(t))
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: targets[%zu] must be a string, got %s", gi, i,
                           sd_json_type(t));
        const char *s = json_string_value(t);
        size_t len = json_string_length(t);
        if (sd_has_nul(s, len))
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: targets[%zu] contains a NUL byte", gi, i);
        if (!(targets[i] = ss_arena_strndup(ps->arena, s, len)))
            return SS_ENOMEM;
    }
    size_t li = 0;
    json_object_foreach((json_t *)jl, key, val)
    {
        if (li >= nl) /* cannot happen: the size was read above */
            break;
        if (!ss_label_name_valid(key, strlen(key)))
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: invalid label name \"%s\"", gi, key);
        if (!json_is_string(val))
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: label \"%s\" must be a string, got %s", gi, key,
                           sd_json_type(val));
        const char *s = json_string_value(val);
        size_t len = json_string_length(val);
        if (sd_has_nul(s, len) || !ss_utf8_valid(s, len))
            return sd_fail(ps, SS_EPARSE, 0, 0, "group %zu: label \"%s\" has an invalid value", gi, key);
        labels[li].key = ss_arena_strndup(ps->arena, key, strlen(key));
        labels[li].value = ss_arena_strndup(ps->arena, s, len);
        if (!labels[li].key || !labels[li].value)
            return SS_ENOMEM;
        li++;
    }
    return sd_commit_group(ps, gi, targets, nt, labels, li, 0, 0);
}

static int sd_parse_json(struct sd_parse *ps, const char *buf, size_t len)
{
    if (sd_json_blank(buf, len))
        return 0; /* an empty file is an empty list */
    json_error_t jerr;
    /* Duplicate keys are an error, as Prometheus' strict decoding makes them. */
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return SS_ENOMEM;
        return sd_fail(ps, SS_EPARSE, jerr.line > 0 ? (unsigned long)jerr.line : 0,
                       jerr.column > 0 ? (unsigned long)jerr.column : 0, "%s", jerr.text);
    }
    int rc = 0;
    if (json_is_null(root)) {
        rc = 0; /* "null" decodes to an empty list in Go */
    } else if (!json_is_array(root)) {
        rc = sd_fail(ps, SS_EPARSE, 0, 0, "expected a list of target groups, got %s", sd_json_type(root));
    } else {
        size_t n = json_array_size(root);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = sd_json_group(ps, i, json_array_get(root, i));
    }
    json_decref(root);
    return rc;
}

/* ---- YAML -------------------------------------------------------------- */

/* The rules of yaml_parser_load, which this reader used before the YAML tree: like
 * yaml.v2's Unmarshal, only the first document counts and the rest is not read;
 * an anchor defined twice is refused. A valid file nests three levels (list,
 * group, targets or labels), so the depth limit only words some errors sooner;
 * bytes are bounded by SD_MAX_FILE_BYTES and groups, targets and labels by the
 * per-file limits, so nothing else needs one. */
#define SD_MAX_YAML_DEPTH 64

static const struct ss_yaml_opts sd_yaml_opts = {
    .max_depth = SD_MAX_YAML_DEPTH,
    .max_docs = 1,
    .stop_at_max_docs = true,
    .unique_anchors = true,
};

/* Messages use the node's 1-based line:column. */
#define SD_POS(n) (unsigned long)(n)->line, (unsigned long)(n)->col

/* What a node is, for messages. A YAML null (ss_yaml_is_null: a plain ~, null, Null,
 * NULL or nothing, as yaml.v2 resolves them, or an explicit !!null) is "null". */
static const char *sd_yaml_kind(const struct ss_ynode *n)
{
    return ss_yaml_is_null(n) ? "null" : ss_yaml_kind_name(n->kind);
}

/* yaml.v2 decodes any non-null scalar into a string field (targets: [8080] is
 * "8080"), so only collections and nulls are refused here. */
static int sd_yaml_string(struct sd_parse *ps, const struct ss_ynode *n, size_t gi, const char *what,
                          const char **out)
{
    if (n->kind != SS_YSCALAR || ss_yaml_is_null(n))
        return sd_fail(ps, SS_EPARSE, SD_POS(n), "group %zu: %s must be a string, got %s", gi, what,
                       sd_yaml_kind(n));
    if (sd_has_nul(n->text, n->len) || !ss_utf8_valid(n->text, n->len))
        return sd_fail(ps, SS_EPARSE, SD_POS(n), "group %zu: %s has an invalid value", gi, what);
    if (!(*out = ss_arena_strndup(ps->arena, n->text, n->len)))
        return SS_ENOMEM;
    return 0;
}

static int sd_yaml_group(struct sd_parse *ps, size_t gi, const struct ss_ynode *gn)
{
    if (ss_yaml_is_null(gn))
        return sd_fail(ps, SS_EPARSE, SD_POS(gn), "group %zu: null target group", gi);
    if (gn->kind != SS_YMAP)
        return sd_fail(ps, SS_EPARSE, SD_POS(gn), "group %zu: expected a mapping, got %s", gi,
                       sd_yaml_kind(gn));

    /* Strict decoding (yaml.UnmarshalStrict): exact field names, no unknown or repeated
     * fields. Merge keys (<<) are not supported and show up as unknown fields. A
     * collection as a key has the text "". */
    const struct ss_ynode *yt = NULL, *yl = NULL;
    for (size_t i = 0; i + 1 < gn->nkids; i += 2) {
        const struct ss_ynode *k = gn->kids[i], *v = gn->kids[i + 1];
        const struct ss_ynode **slot;
        if (ss_yaml_scalar_is(k, "targets"))
            slot = &yt;
        else if (ss_yaml_scalar_is(k, "labels"))
            slot = &yl;
        else
            return sd_fail(ps, SS_EPARSE, SD_POS(k), "group %zu: unknown field \"%.*s\"", gi,
                           (int)(k->len > 64 ? 64 : k->len), k->text);
        if (*slot)
            return sd_fail(ps, SS_EPARSE, SD_POS(k), "group %zu: duplicate field \"%.*s\"", gi, (int)k->len,
                           k->text);
        *slot = v;
    }
    if (yt && !ss_yaml_is_null(yt) && yt->kind != SS_YSEQ)
        return sd_fail(ps, SS_EPARSE, SD_POS(yt), "group %zu: targets must be a list of strings, got %s", gi,
                       sd_yaml_kind(yt));
    if (yl && !ss_yaml_is_null(yl) && yl->kind != SS_YMAP)
        return sd_fail(ps, SS_EPARSE, SD_POS(yl), "group %zu: labels must be a mapping, got %s", gi,
                       sd_yaml_kind(yl));
    size_t nt = yt && yt->kind == SS_YSEQ ? yt->nkids : 0;
    size_t nl = yl && yl->kind == SS_YMAP ? yl->nkids / 2 : 0;
    int rc = sd_reserve(ps, nt, nl, SD_POS(gn));
    if (rc)
        return rc;

    const char **targets;
    struct ss_kv *labels;
    rc = sd_alloc_group(ps, nt, nl, &targets, &labels);
    if (rc)
        return rc;
    for (size_t i = 0; i < nt; i++) {
        char what[48];
        snprintf(what, sizeof what, "targets[%zu]", i);
        rc = sd_yaml_string(ps, yt->kids[i], gi, what, &targets[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < nl; i++) {
        const struct ss_ynode *k = yl->kids[2 * i], *v = yl->kids[2 * i + 1];
        if (k->kind != SS_YSCALAR || !ss_label_name_valid(k->text, k->len))
            return sd_fail(ps, SS_EPARSE, SD_POS(k), "group %zu: invalid label name \"%.*s\"", gi,
                           (int)(k->len > 64 ? 64 : k->len), k->text);
        if (!(labels[i].key = ss_arena_strndup(ps->arena, k->text, k->len)))
            return SS_ENOMEM;
        char what[96];
        snprintf(what, sizeof what, "label \"%.64s\"", labels[i].key);
        rc = sd_yaml_string(ps, v, gi, what, &labels[i].value);
        if (rc)
            return rc;
    }
    return sd_commit_group(ps, gi, targets, nt, labels, nl, SD_POS(gn));
}

/* A failed parse, in libyaml's words where it has them, as before the tree. */
static int sd_yaml_fail(struct sd_parse *ps, int rc, const struct ss_yaml_error *e)
{
    unsigned long line = (unsigned long)e->line, col = (unsigned long)e->col;
    switch (e->fault) {
    case SS_YAML_NOMEM: return SS_ENOMEM;
    case SS_YAML_DEPTH: return sd_fail(ps, rc, line, col, "nested deeper than %d levels", SD_MAX_YAML_DEPTH);
    case SS_YAML_ALIAS_UNKNOWN: return sd_fail(ps, rc, line, col, "found undefined alias \"%.64s\"", e->name);
    case SS_YAML_ALIAS_OPEN:
        return sd_fail(ps, rc, line, col, "anchor \"%.64s\" value contains itself", e->name);
    case SS_YAML_ANCHOR_TWICE: return sd_fail(ps, rc, line, col, "found duplicate anchor \"%.64s\"", e->name);
    default:
        return sd_fail(ps, rc, line, col, "%s%s%s", e->problem ? e->problem : "malformed YAML",
                       e->context ? " " : "", e->context ? e->context : "");
    }
}

static int sd_parse_yaml(struct sd_parse *ps, const char *buf, size_t len)
{
    struct ss_ytree *tree = NULL;
    struct ss_yaml_error ye;
    int rc = ss_yaml_parse(buf, len, &sd_yaml_opts, &tree, &ye);
    if (rc)
        return sd_yaml_fail(ps, rc, &ye);

    const struct ss_ynode *root = ss_yaml_root(tree, 0);
    if (!root || ss_yaml_is_null(root))
        goto done; /* empty file, comment only, or a bare null: no groups */
    if (root->kind != SS_YSEQ) {
        rc = sd_fail(ps, SS_EPARSE, SD_POS(root), "expected a list of target groups, got %s",
                     sd_yaml_kind(root));
        goto done;
    }
    for (size_t i = 0; i < root->nkids && rc == 0; i++)
        rc = sd_yaml_group(ps, i, root->kids[i]);

done:
    ss_yaml_free(tree);
    return rc;
}

/* ---- files and patterns ------------------------------------------------ */

/* Read a whole regular file, at most SD_MAX_FILE_BYTES. O_NONBLOCK keeps a FIFO that
 * happens to match the pattern from blocking the open. */
static int sd_read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    int fd = -1, rc = 0;
    char *data = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "open: %s", strerror(errno));
        rc = SS_EIO;
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "stat: %s", strerror(errno));
        rc = SS_EIO;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        rc = SS_EIO;
        goto fail;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SD_MAX_FILE_BYTES) {
        snprintf(err, errlen, "file is larger than %zu bytes", SD_MAX_FILE_BYTES);
        rc = SS_ELIMIT;
        goto fail;
    }
    /* The file may grow between fstat and read: read until EOF, but never keep more
     * than the limit. Each pass reads at least one byte or ends the loop. */
    cap = (size_t)st.st_size + 1;
    data = malloc(cap);
    if (!data) {
        rc = SS_ENOMEM;
        goto fail;
    }
    int eintr = 0;
    for (;;) {
        if (len == cap) {
            if (cap > SD_MAX_FILE_BYTES) {
                snprintf(err, errlen, "file is larger than %zu bytes", SD_MAX_FILE_BYTES);
                rc = SS_ELIMIT;
                goto fail;
            }
            size_t ncap = cap + SD_READ_CHUNK;
            if (ncap > SD_MAX_FILE_BYTES + 1)
                ncap = SD_MAX_FILE_BYTES + 1;
            char *n = realloc(data, ncap);
            if (!n) {
                rc = SS_ENOMEM;
                goto fail;
            }
            data = n;
            cap = ncap;
        }
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR && ++eintr < SD_MAX_EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            rc = SS_EIO;
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    *out = data;
    *out_len = len;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}

/* Prometheus accepts ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$: wildcards only
 * in the last path element, and a known extension, so every match has one too. */
static bool sd_pattern_valid(const char *pat)
{
    const char *slash = strrchr(pat, '/');
    if (slash && strcspn(pat, "*?[") < (size_t)(slash - pat))
        return false;
    const char *dot = strrchr(pat, '.');
    if (!dot || (slash && dot < slash))
        return false;
    static const char *const exts[] = {".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcmp(dot, exts[i]) == 0)
            return true;
    return false;
}

enum sd_format { SD_FMT_NONE, SD_FMT_JSON, SD_FMT_YAML };

/* discovery/file picks the decoder from the lower-cased extension. */
static enum sd_format sd_file_format(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash))
        return SD_FMT_NONE;
    if (strcasecmp(dot, ".json") == 0)
        return SD_FMT_JSON;
    if (strcasecmp(dot, ".yml") == 0 || strcasecmp(dot, ".yaml") == 0)
        return SD_FMT_YAML;
    return SD_FMT_NONE;
}

/* Go's filepath.Glob lets * match a leading dot, so GLOB_PERIOD. Unreadable
 * directories are skipped silently there too (no GLOB_ERR). */
static int sd_glob(const char *pat, glob_t *gl)
{
    int r = glob(pat, GLOB_PERIOD, NULL, gl);
    if (r == 0 || r == GLOB_NOMATCH)
        return 0;
    return r == GLOB_NOSPACE ? SS_ENOMEM : SS_EIO;
}

static int sd_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Load one file into g. On a parse or limit error the file's groups and arena are
 * dropped and *failed is set; only SS_ENOMEM is returned. */
static int sd_load_file(struct scrape_sd_groups *g, const char *path, bool *failed)
{
    char *data = NULL;
    size_t len = 0;
    int rc = 0;
    struct sd_parse ps = {.path = path, .out = g};
    size_t groups_before = g->ngroups;
    struct ss_arena arena;

    *failed = false;
    ss_arena_init(&arena, 4096);
    ps.arena = &arena;

    enum sd_format fmt = sd_file_format(path);
    if (fmt == SD_FMT_NONE) {
        rc = sd_fail(&ps, SS_EINVAL, 0, 0, "unsupported file extension");
        goto fail;
    }
    rc = sd_read_file(path, &data, &len, ps.err, sizeof ps.err);
    if (rc)
        goto fail;
    if (!(ps.filepath_value = ss_arena_strndup(&arena, path, strlen(path)))) {
        rc = SS_ENOMEM;
        goto fail;
    }
    rc = fmt == SD_FMT_JSON ? sd_parse_json(&ps, data, len) : sd_parse_yaml(&ps, data, len);
    if (rc)
        goto fail;

    if (g->narenas == g->arenas_cap) {
        size_t ncap = g->arenas_cap ? g->arenas_cap * 2 : 8;
        struct ss_arena *n = realloc(g->arenas, ncap * sizeof *n);
        if (!n) {
            rc = SS_ENOMEM;
            goto fail;
        }
        g->arenas = n;
        g->arenas_cap = ncap;
    }
    g->arenas[g->narenas++] = arena;
    free(data);
    return 0;

fail:
    g->ngroups = groups_before;
    ss_arena_free(&arena);
    free(data);
    if (rc == SS_ENOMEM)
        return rc;
    *failed = true;
    if (ps.line)
        ss_error(SD_LOG, "file_sd: %s:%lu:%lu: %s", path, ps.line, ps.col, ps.err);
    else
        ss_error(SD_LOG, "file_sd: %s: %s", path, ps.err[0] ? ps.err : ss_strerror(rc));
    return 0;
}

/* ---- public API -------------------------------------------------------- */

int scrape_file_sd_load(const char *const *patterns, size_t npatterns, struct scrape_sd_groups **out,
                        size_t *nerrors)
{
    struct scrape_sd_groups *g = NULL;
    char **paths = NULL;
    size_t npaths = 0, paths_cap = 0, errors = 0;
    int rc = 0;

    if (out)
        *out = NULL;
    if (nerrors)
        *nerrors = 0;
    if (!out || (npatterns && !patterns))
        return SS_EINVAL;
    if (!(g = calloc(1, sizeof *g)))
        return SS_ENOMEM;

    /* Collect every match first: a file named by two patterns is loaded once, and
     * groups come out in path order whatever order the patterns were given in. */
    for (size_t i = 0; i < npatterns; i++) {
        const char *pat = patterns[i];
        if (!pat || !sd_pattern_valid(pat)) {
            ss_error(SD_LOG,
                     "file_sd: pattern \"%s\" is not valid for file discovery "
                     "(wildcards only in the last path element; .json, .yml or .yaml)",
                     pat ? pat : "(null)");
            errors++;
            continue;
        }
        glob_t gl;
        int gr = sd_glob(pat, &gl);
        if (gr == SS_ENOMEM) {
            globfree(&gl);
            rc = SS_ENOMEM;
            goto fail;
        }
        if (gr) {
            ss_error(SD_LOG, "file_sd: pattern \"%s\": glob failed", pat);
            errors++;
            globfree(&gl);
            continue;
        }
        for (size_t k = 0; k < gl.gl_pathc; k++) {
            if (npaths == paths_cap) {
                size_t ncap = paths_cap ? paths_cap * 2 : 16;
                char **n = realloc(paths, ncap * sizeof *n);
                if (!n) {
                    globfree(&gl);
                    rc = SS_ENOMEM;
                    goto fail;
                }
                paths = n;
                paths_cap = ncap;
            }
            if (!(paths[npaths] = strdup(gl.gl_pathv[k]))) {
                globfree(&gl);
                rc = SS_ENOMEM;
                goto fail;
            }
            npaths++;
        }
        globfree(&gl);
    }
    if (npaths > 1)
        qsort(paths, npaths, sizeof *paths, sd_cmp_str);

    for (size_t i = 0; i < npaths; i++) {
        if (i > 0 && strcmp(paths[i - 1], paths[i]) == 0)
            continue;
        bool failed;
        rc = sd_load_file(g, paths[i], &failed);
        if (rc)
            goto fail;
        if (failed)
            errors++;
    }

    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    if (nerrors)
        *nerrors = errors;
    *out = g;
    return 0;

fail:
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    scrape_sd_groups_free(g);
    if (nerrors)
        *nerrors = errors;
    return rc;
}

size_t scrape_sd_groups_count(const struct scrape_sd_groups *g)
{
    return g ? g->ngroups : 0;
}

const struct scrape_target_group *scrape_sd_groups_get(const struct scrape_sd_groups *g, size_t i)
{
    if (!g || i >= g->ngroups)
        return NULL;
    return &g->groups[i];
}

void scrape_sd_groups_free(struct scrape_sd_groups *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->narenas; i++)
        ss_arena_free(&g->arenas[i]);
    free(g->arenas);
    free(g->groups);
    free(g);
}

/* FNV-1a, 64 bit: not cryptographic, just a change detector. */
static uint64_t sd_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t sd_fnv_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return sd_fnv(h, b, sizeof b);
}

int scrape_file_sd_fingerprint(const char *const *patterns, size_t npatterns, uint64_t *out)
{
    if (!out || (npatterns && !patterns))
        return SS_EINVAL;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < npatterns; i++) {
        const char *pat = patterns[i];
        if (!pat || !sd_pattern_valid(pat))
            continue; /* load reports it; nothing on disk can change that */
        h = sd_fnv(h, pat, strlen(pat) + 1);
        glob_t gl;
        int gr = sd_glob(pat, &gl);
        if (gr == SS_ENOMEM) {
            globfree(&gl);
            return SS_ENOMEM;
        }
        if (gr) {
            globfree(&gl);
            continue;
        }
        h = sd_fnv_u64(h, gl.gl_pathc);
        for (size_t k = 0; k < gl.gl_pathc; k++) {
            const char *path = gl.gl_pathv[k];
            h = sd_fnv(h, path, strlen(path) + 1);
            /* stat follows symlinks: Kubernetes ConfigMap volumes swap a ..data symlink,
             * and that must show up as a change. Inode and ctime catch a rename over
             * the file that keeps size and mtime. */
            struct stat st;
            if (stat(path, &st) != 0) {
                h = sd_fnv_u64(h, UINT64_MAX);
                continue;
            }
            h = sd_fnv_u64(h, (uint64_t)st.st_dev);
            h = sd_fnv_u64(h, (uint64_t)st.st_ino);
            h = sd_fnv_u64(h, (uint64_t)st.st_size);
            h = sd_fnv_u64(h, (uint64_t)st.st_mtim.tv_sec);
            h = sd_fnv_u64(h, (uint64_t)st.st_mtim.tv_nsec);
            h = sd_fnv_u64(h, (uint64_t)st.st_ctim.tv_sec);
            h = sd_fnv_u64(h, (uint64_t)st.st_ctim.tv_nsec);
        }
        globfree(&gl);
    }
    *out = h;
    return 0;
}
