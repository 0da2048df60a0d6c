/* config.c: load and validate the scrapeship configuration.
 *
 * Loading runs in two passes. First the YAML tree (yaml/yamltree.h) parses the
 * file, with limits on depth, scalar size and node count enforced while parsing, and
 * every node keeps its line:column. Then a schema-driven decoder walks the tree into
 * struct cfg, expanding ${VAR} / ${VAR:-default} in scalar values, applying
 * Prometheus 2.42's defaults and checks, and rejecting unknown or duplicate keys. The
 * first problem found is reported as "file:line:column: message in path" and the
 * partial config is freed. Secrets are copied exactly once into exact-size buffers and
 * wiped wherever they are freed; the tree wipes its own copies. Printing a loaded
 * config is in config_print.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "ss.h"
#include "sstext.h"
#include "yamltree.h"

/* ======================================================================== */
/* Loader state and error reporting                                         */
/* ======================================================================== */

struct loader {
    const char *source;
    char *err;
    size_t errlen;
    char path[512];
    size_t pathlen;
    uint64_t visits;
    uint64_t decoded_bytes;
    bool raw;  /* values are taken verbatim: no ${VAR} expansion (the web config) */
    bool rule; /* inside relabel rules: only set variables expand (expand_pass) */
    bool otel; /* an OpenTelemetry collector config: ${env:VAR} is expanded too */
};

/* ---- error reporting ----------------------------------------------------- */

static int vfail_pos(struct loader *ld, int line, int col, int code, const char *fmt, va_list ap)
{
    if (!ld->err || !ld->errlen)
        return code;
    size_t used = ss_yaml_vformat_pos(ld->err, ld->errlen, ld->source, line, col, fmt, ap);
    if (ld->pathlen && used < ld->errlen)
        snprintf(ld->err + used, ld->errlen - used, " in %s", ld->path);
    return code;
}

__attribute__((format(printf, 5, 6))) static void fail_pos_msg(struct loader *ld, int line, int col, int code,
                                                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(ld, line, col, code, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void fail_at_msg(struct loader *ld, const struct ss_ynode *n,
                                                              int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_pos(ld, n ? n->line : 1, n ? n->col : 1, code, fmt, ap);
    va_end(ap);
}

/* Write the message and evaluate to code. Macros, so that the (constant, non-zero)
 * code is visibly the result: static analysers do not follow variadic calls. */
#define fail_pos(ld, line, col, code, ...) (fail_pos_msg((ld), (line), (col), (code), __VA_ARGS__), (code))
#define fail_at(ld, n, code, ...)          (fail_at_msg((ld), (n), (code), __VA_ARGS__), (code))

static int fail_oom(struct loader *ld)
{
    if (ld->err && ld->errlen)
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->source);
    return SS_ENOMEM;
}

/* A short, printable excerpt of user text for messages: at most 40 bytes, cut on a
 * UTF-8 boundary, with quotes, backslashes and control bytes shown as '?'. Never
 * used on secret fields. */
#define SNIP_CAP 48
static const char *snip(const char *s, size_t len, char buf[SNIP_CAP])
{
    size_t n = len > 40 ? 40 : len;
    if (n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (n < len) {
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

/* ---- the path shown after "in" ------------------------------------------- */

__attribute__((format(printf, 2, 3))) static size_t path_push(struct loader *ld, const char *fmt, ...)
{
    size_t mark = ld->pathlen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ld->path + mark, sizeof ld->path - mark, fmt, ap);
    va_end(ap);
    size_t add = n > 0 ? (size_t)n : 0;
    if (mark + add >= sizeof ld->path)
        add = sizeof ld->path - 1 - mark;
    ld->pathlen = mark + add;
    return mark;
}

static size_t path_field(struct loader *ld, const char *name)
{
    return ld->pathlen ? path_push(ld, ".%s", name) : path_push(ld, "%s", name);
}

static size_t path_index(struct loader *ld, size_t i)
{
    return path_push(ld, "[%zu]", i);
}

static void path_pop(struct loader *ld, size_t mark)
{
    ld->pathlen = mark;
    ld->path[mark] = '\0';
}

/* ---- the YAML tree ------------------------------------------------------- */

/* The tree's limits are the loader's: one document, and every dimension bounded
 * (config_int.h). Anchors of a collection are defined where it starts, so an
 * alias inside it to itself is reported as such. */
static const struct ss_yaml_opts tree_opts = {
    .max_depth = CFG_MAX_DEPTH,
    .max_refs = CFG_MAX_NODES,
    .max_anchors = CFG_MAX_ANCHORS,
    .max_scalar_bytes = CFG_MAX_SCALAR_BYTES,
    .max_docs = 1,
    .merge_keys = true, /* go-yaml's, in Prometheus and collector configs alike */
};

/* Word a failed parse as this loader always has. */
static int tree_fail(struct loader *ld, const struct ss_yaml_error *e)
{
    char sb[SNIP_CAP];
    const char *problem = e->problem ? e->problem : "invalid YAML";
    switch (e->fault) {
    case SS_YAML_NOMEM: return fail_oom(ld);
    case SS_YAML_READER:
        return fail_pos(ld, e->line, e->col, SS_EPARSE, "YAML error: %s",
                        e->problem ? e->problem : "cannot read input");
    case SS_YAML_DOCS:
        return fail_pos(ld, e->line, e->col, SS_ECONFIG,
                        "only one YAML document is allowed in a config file");
    case SS_YAML_SCALAR:
        return fail_pos(ld, e->line, e->col, SS_ELIMIT, "scalar longer than %u bytes", CFG_MAX_SCALAR_BYTES);
    case SS_YAML_DEPTH:
        return fail_pos(ld, e->line, e->col, SS_ELIMIT, "nesting deeper than %d levels", CFG_MAX_DEPTH);
    case SS_YAML_ANCHORS:
        return fail_pos(ld, e->line, e->col, SS_ELIMIT, "too many YAML anchors (limit %u)", CFG_MAX_ANCHORS);
    case SS_YAML_REFS:
        return fail_pos(ld, e->line, e->col, SS_ELIMIT, "too many YAML nodes (limit %u)", CFG_MAX_NODES);
    case SS_YAML_ALIAS_UNKNOWN:
        return fail_pos(ld, e->line, e->col, SS_ECONFIG, "unknown anchor \"%s\"",
                        snip(e->name, strlen(e->name), sb));
    case SS_YAML_ALIAS_OPEN:
        return fail_pos(ld, e->line, e->col, SS_ECONFIG, "anchor \"%s\" value contains itself",
                        snip(e->name, strlen(e->name), sb));
    case SS_YAML_SYNTAX:
        if (e->context)
            return fail_pos(ld, e->line, e->col, SS_EPARSE, "YAML syntax error: %s %s (line %d)", problem,
                            e->context, e->context_line);
        return fail_pos(ld, e->line, e->col, SS_EPARSE, "YAML syntax error: %s", problem);
    default: /* limits tree_opts does not set */
        return fail_pos(ld, e->line, e->col, SS_ELIMIT, "YAML input over a limit");
    }
}

/* ======================================================================== */
/* Scalars: ${VAR} expansion and typed values                               */
/* ======================================================================== */

/* Null as the loader reads it: absent, !!null, or a plain null spelling. Go's
 * zero value, so a null field is an unset one. */
static bool present(const struct ss_ynode *n)
{
    return !ss_yaml_is_null(n);
}

static const char *kind_name(const struct ss_ynode *n)
{
    return n->kind == SS_YSCALAR && ss_yaml_is_null(n) ? "null" : ss_yaml_kind_name(n->kind);
}

static int visit(struct loader *ld, const struct ss_ynode *n, size_t count)
{
    ld->visits += count;
    if (ld->visits > CFG_MAX_VISITS)
        return fail_at(ld, n, SS_ELIMIT, "config expands to more than %u nodes (YAML aliases?)",
                       CFG_MAX_VISITS);
    return 0;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* One pass of ${VAR} expansion over s. With dst == NULL only measures. Returns 0, or
 * -1 with *missing set to the unset variable, or -2 when the result would exceed
 * CFG_MAX_SCALAR_BYTES. Rules: "$$" is "$"; ${NAME} must be set; ${NAME:-default}
 * uses default when NAME is unset or empty; any other "$" (e.g. relabel's "$1" or
 * "${1}") is literal text. rule: a relabel rule's value in a Prometheus config, where
 * "$" belongs to the regex replacement: "$$" stays "$$" and ${NAME} of an unset NAME
 * stays as written (a named group); only a set variable (the sharding deployment's
 * ${SHARDS} and ${SHARD}) or a default is expanded. */
static int expand_pass(const char *s, size_t len, char *dst, size_t *outlen, struct ss_str *missing,
                       bool otel, bool rule)
{
    size_t o = 0, i = 0;
#define EMIT(p, n)                                                                                           \
    do {                                                                                                     \
        if ((n) > CFG_MAX_SCALAR_BYTES - o)                                                                  \
            return -2;                                                                                       \
        if (dst)                                                                                             \
            memcpy(dst + o, (p), (n));                                                                       \
        o += (n);                                                                                            \
    } while (0)
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        if (!dollar) {
            EMIT(s + i, len - i);
            break;
        }
        size_t d = (size_t)(dollar - s);
        EMIT(s + i, d - i);
        i = d;
        if (i + 1 < len && s[i + 1] == '$') {
            EMIT("$$", rule ? 2 : 1);
            i += 2;
            continue;
        }
        /* The collector's confmap also reads ${env:NAME} and ${env:NAME:-default}. */
        size_t env = otel && i + 6 < len && !memcmp(s + i + 2, "env:", 4) ? 4 : 0;
        if (i + 2 + env < len && s[i + 1] == '{' && is_name_start(s[i + 2 + env])) {
            size_t ns = i + 2 + env, ne = ns;
            while (ne < len && is_name_char(s[ne]))
                ne++;
            char name[256];
            const char *close = NULL, *def = NULL;
            if (ne < len && s[ne] == '}') {
                close = s + ne;
            } else if (ne + 1 < len && s[ne] == ':' && s[ne + 1] == '-') {
                def = s + ne + 2;
                close = memchr(def, '}', len - (ne + 2));
            }
            if (close && ne - ns < sizeof name) {
                memcpy(name, s + ns, ne - ns);
                name[ne - ns] = '\0';
                const char *val = getenv(name);
                if (def) {
                    if (val && *val)
                        EMIT(val, strlen(val));
                    else
                        EMIT(def, (size_t)(close - def));
                } else if (val) {
                    EMIT(val, strlen(val));
                } else if (otel) {
                    /* the collector's envprovider (v0.98.0) expands an unset variable to
                     * "" with a warning, so a config that works there loads here */
                } else if (rule) {
                    EMIT(s + i, (size_t)(close - (s + i)) + 1);
                } else {
                    missing->p = s + ns;
                    missing->len = ne - ns;
                    return -1;
                }
                i = (size_t)(close - s) + 1;
                continue;
            }
        }
        EMIT("$", 1);
        i++;
    }
#undef EMIT
    *outlen = o;
    return 0;
}

/* Count bytes copied out of the tree: aliases can repeat a subtree many times. */
static int account(struct loader *ld, const struct ss_ynode *n, size_t len)
{
    ld->decoded_bytes += len;
    if (ld->decoded_bytes > CFG_MAX_DECODED_BYTES)
        return fail_at(ld, n, SS_ELIMIT, "config expands to more than %u bytes (YAML aliases?)",
                       CFG_MAX_DECODED_BYTES);
    return 0;
}

/* The expanded text of scalar n in a fresh exact-size allocation (so secrets are
 * never left behind by realloc). want describes the expected type for messages. */
static int scalar_text(struct loader *ld, const struct ss_ynode *n, const char *want, char **out)
{
    *out = NULL;
    if (n->kind != SS_YSCALAR)
        return fail_at(ld, n, SS_ECONFIG, "expected %s, got %s", want, kind_name(n));
    int rc = visit(ld, n, 1);
    if (rc)
        return rc;
    struct ss_str missing = {NULL, 0};
    size_t len = n->len;
    bool rule = ld->rule && !ld->otel;
    int r = ld->raw ? 0 : expand_pass(n->text, n->len, NULL, &len, &missing, ld->otel, rule);
    if (r == -1) {
        char sb[SNIP_CAP];
        return fail_at(ld, n, SS_ECONFIG, "environment variable \"%s\" is not set",
                       snip(missing.p, missing.len, sb));
    }
    if (r == -2)
        return fail_at(ld, n, SS_ELIMIT, "value longer than %u bytes after expansion", CFG_MAX_SCALAR_BYTES);
    if ((rc = account(ld, n, len)) != 0)
        return rc;
    char *s = malloc(len + 1);
    if (!s)
        return fail_oom(ld);
    /* The environment cannot change between the passes unless another thread calls
     * setenv, which is already undefined behaviour alongside getenv. */
    size_t len2 = len;
    if (ld->raw)
        memcpy(s, n->text, len);
    else if (expand_pass(n->text, n->len, s, &len2, &missing, ld->otel, rule) != 0 || len2 != len) {
        free(s);
        return fail_at(ld, n, SS_ECONFIG, "environment changed while loading");
    }
    s[len] = '\0';
    if (memchr(s, '\0', len)) {
        ss_free_secret(s);
        return fail_at(ld, n, SS_ECONFIG, "value contains a NUL character");
    }
    if (!ss_utf8_valid(s, len)) {
        ss_wipe(s, len);
        free(s);
        return fail_at(ld, n, SS_ECONFIG, "value is not valid UTF-8");
    }
    *out = s;
    return 0;
}

static int opt_str_impl(struct loader *ld, const struct ss_ynode *n, const char *field, char **dst,
                        bool keep_empty)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    int rc = scalar_text(ld, n, "a string", &s);
    if (!rc && s) {
        if (*s || keep_empty) {
            *dst = s;
        } else {
            free(s);
        }
    }
    path_pop(ld, mark);
    return rc;
}

/* An optional string; "" counts as unset, as in Prometheus (Go zero values). */
static int opt_str(struct loader *ld, const struct ss_ynode *n, const char *field, char **dst)
{
    return opt_str_impl(ld, n, field, dst, false);
}

/* An optional string where "" is a meaningful value (relabel separator, regex...). */
static int opt_str_keep(struct loader *ld, const struct ss_ynode *n, const char *field, char **dst)
{
    return opt_str_impl(ld, n, field, dst, true);
}

static int opt_dur(struct loader *ld, const struct ss_ynode *n, const char *field, int64_t *dst)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    const char *want = "a duration like \"15s\"";
    int rc = scalar_text(ld, n, want, &s);
    if (!rc && ss_parse_duration_ms(s, dst) != 0) {
        char sb[SNIP_CAP];
        rc = fail_at(ld, n, SS_ECONFIG, "expected %s, got \"%s\"", want, snip(s, strlen(s), sb));
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

static int opt_size(struct loader *ld, const struct ss_ynode *n, const char *field, uint64_t *dst)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    const char *want = "a size like \"10MB\"";
    int rc = scalar_text(ld, n, want, &s);
    if (!rc && ss_parse_size(s, dst) != 0) {
        char sb[SNIP_CAP];
        rc = fail_at(ld, n, SS_ECONFIG, "expected %s, got \"%s\"", want, snip(s, strlen(s), sb));
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

static int opt_bool(struct loader *ld, const struct ss_ynode *n, const char *field, bool *dst)
{
    /* YAML 1.1 booleans, as go-yaml v2 (used by Prometheus 2.42) resolves them. */
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    const char *want = "true or false";
    int rc = scalar_text(ld, n, want, &s);
    if (!rc) {
        bool found = false;
        for (size_t i = 0; i < sizeof yes / sizeof yes[0] && !found; i++) {
            if (!strcmp(s, yes[i])) {
                *dst = true;
                found = true;
            } else if (!strcmp(s, no[i])) {
                *dst = false;
                found = true;
            }
        }
        if (!found) {
            char sb[SNIP_CAP];
            rc = fail_at(ld, n, SS_ECONFIG, "expected %s, got \"%s\"", want, snip(s, strlen(s), sb));
        }
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int opt_u64(struct loader *ld, const struct ss_ynode *n, const char *field, uint64_t *dst, bool *set)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    const char *want = "a non-negative integer";
    int rc = scalar_text(ld, n, want, &s);
    if (!rc) {
        if (parse_u64(s, dst)) {
            if (set)
                *set = true;
        } else {
            char sb[SNIP_CAP];
            rc = fail_at(ld, n, SS_ECONFIG, "expected %s, got \"%s\"", want, snip(s, strlen(s), sb));
        }
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

static int opt_i64(struct loader *ld, const struct ss_ynode *n, const char *field, int64_t *dst)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    char *s = NULL;
    const char *want = "an integer";
    int rc = scalar_text(ld, n, want, &s);
    if (!rc) {
        bool neg = s[0] == '-';
        uint64_t u;
        if (parse_u64(s + neg, &u) && u <= (uint64_t)INT64_MAX) {
            *dst = neg ? -(int64_t)u : (int64_t)u;
        } else {
            char sb[SNIP_CAP];
            rc = fail_at(ld, n, SS_ECONFIG, "expected %s, got \"%s\"", want, snip(s, strlen(s), sb));
        }
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

/* ======================================================================== */
/* Mappings                                                                 */
/* ======================================================================== */

static int fail_unknown(struct loader *ld, const struct ss_ynode *k)
{
    char sb[SNIP_CAP];
    if (ld->pathlen)
        return fail_at(ld, k, SS_ECONFIG, "unknown field \"%s\"", snip(k->text, k->len, sb));
    return fail_at(ld, k, SS_ECONFIG, "unknown field \"%s\" at the top level", snip(k->text, k->len, sb));
}

/* Match a mapping's keys against a struct's field names: vals[i]/keys[i] get the
 * value and key nodes of field i (NULL when absent). Unknown and duplicate keys are
 * errors, as with Prometheus' strict unmarshalling. A null map is an empty one. */
static int take_fields(struct loader *ld, const struct ss_ynode *map, const char *const *names, size_t nnames,
                       const struct ss_ynode **vals, const struct ss_ynode **keys)
{
    for (size_t i = 0; i < nnames; i++)
        vals[i] = keys[i] = NULL;
    if (!present(map))
        return 0;
    if (map->kind != SS_YMAP)
        return fail_at(ld, map, SS_ECONFIG, "expected a mapping, got %s", kind_name(map));
    int rc = visit(ld, map, map->nkids / 2 + 1);
    if (rc)
        return rc;
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct ss_ynode *k = map->kids[i];
        if (k->kind != SS_YSCALAR)
            return fail_at(ld, k, SS_ECONFIG, "mapping keys must be strings, got %s", kind_name(k));
        size_t f = 0; /* keys are matched verbatim: ${VAR} expansion applies to values only */
        while (f < nnames && !ss_yaml_scalar_is(k, names[f]))
            f++;
        if (f == nnames)
            return fail_unknown(ld, k);
        if (keys[f])
            return fail_at(ld, k, SS_ECONFIG, "duplicate key \"%s\"", names[f]);
        keys[f] = k;
        vals[f] = map->kids[i + 1];
    }
    return 0;
}

struct keyref {
    const struct ss_ynode *key;
    size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
    int c = memcmp(x->key->text, y->key->text, n);
    if (!c)
        c = x->key->len < y->key->len ? -1 : x->key->len > y->key->len;
    if (!c)
        c = x->idx < y->idx ? -1 : x->idx > y->idx;
    return c;
}

/* For free-form maps (labels, headers, params): all keys scalar, none repeated. Sorts
 * instead of comparing pairs so a huge map cannot make this quadratic; reports the
 * first repeat in document order. */
static int check_free_map(struct loader *ld, const struct ss_ynode *map)
{
    if (map->kind != SS_YMAP)
        return fail_at(ld, map, SS_ECONFIG, "expected a mapping, got %s", kind_name(map));
    size_t n = map->nkids / 2;
    int rc = visit(ld, map, n + 1);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const struct ss_ynode *k = map->kids[2 * i];
        if (k->kind != SS_YSCALAR)
            return fail_at(ld, k, SS_ECONFIG, "mapping keys must be strings, got %s", kind_name(k));
        if (memchr(k->text, '\0', k->len))
            return fail_at(ld, k, SS_ECONFIG, "key contains a NUL character");
    }
    if (n < 2)
        return 0;
    struct keyref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return fail_oom(ld);
    for (size_t i = 0; i < n; i++) {
        refs[i].key = map->kids[2 * i];
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof *refs, keyref_cmp);
    const struct keyref *dup = NULL;
    for (size_t i = 1; i < n; i++) {
        if (refs[i].key->len == refs[i - 1].key->len &&
            memcmp(refs[i].key->text, refs[i - 1].key->text, refs[i].key->len) == 0 &&
            (!dup || refs[i].idx < dup->idx))
            dup = &refs[i];
    }
    if (dup) {
        char sb[SNIP_CAP];
        rc = fail_at(ld, dup->key, SS_ECONFIG, "duplicate key \"%s\"",
                     snip(dup->key->text, dup->key->len, sb));
    }
    free(refs);
    return rc;
}

/* ---- names and addresses -------------------------------------------------- */

/* Checks the parts of a URL the HTTP clients rely on: scheme://[userinfo@]host[:port]
 * with a known scheme, a host, a numeric port, and no whitespace or control bytes
 * anywhere. Writes the reason to *why. */
static bool url_valid(const char *u, const char *const *schemes, const char **why)
{
    for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            *why = "contains whitespace or control characters";
            return false;
        }
    }
    const char *sep = strstr(u, "://");
    if (!sep || sep == u) {
        *why = "missing scheme (want e.g. \"https://host/path\")";
        return false;
    }
    bool known = false;
    for (size_t i = 0; schemes[i] && !known; i++)
        known = strlen(schemes[i]) == (size_t)(sep - u) && strncasecmp(u, schemes[i], (size_t)(sep - u)) == 0;
    if (!known) {
        *why = "unsupported scheme";
        return false;
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    const char *host = at ? at + 1 : auth;
    size_t hlen = alen - (size_t)(host - auth);
    const char *port = NULL;
    if (hlen && host[0] == '[') {
        const char *rb = memchr(host, ']', hlen);
        if (!rb || rb == host + 1) {
            *why = "bad IPv6 host";
            return false;
        }
        if ((size_t)(rb + 1 - host) < hlen) {
            if (rb[1] != ':') {
                *why = "bad host";
                return false;
            }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        if (colon) {
            if (colon == host) {
                *why = "missing host";
                return false;
            }
            port = colon + 1;
        }
    }
    if (!hlen) {
        *why = "missing host";
        return false;
    }
    if (port) {
        size_t plen = (size_t)(host + hlen - port);
        unsigned long v = 0;
        if (!plen || plen > 5) {
            *why = "bad port";
            return false;
        }
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9') {
                *why = "bad port";
                return false;
            }
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v > 65535) {
            *why = "bad port";
            return false;
        }
    }
    return true;
}

/* Prometheus' CheckTargetAddress rejects "/" (a URL is not a target); we also reject
 * empty targets, whitespace, and ports that are not numbers. */
static int check_target(struct loader *ld, const struct ss_ynode *n, const char *t)
{
    char sb[SNIP_CAP];
    size_t len = strlen(t);
    if (!len)
        return fail_at(ld, n, SS_ECONFIG, "empty target");
    if (strchr(t, '/'))
        return fail_at(ld, n, SS_ECONFIG, "\"%s\" is not a valid hostname", snip(t, len, sb));
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || t[i] == 0x7f)
            return fail_at(ld, n, SS_ECONFIG, "target \"%s\" contains whitespace", snip(t, len, sb));
    const char *port = NULL;
    if (t[0] == '[') {
        const char *rb = strchr(t, ']');
        if (rb && rb[1] == ':')
            port = rb + 2;
        else if (!rb || rb[1])
            return fail_at(ld, n, SS_ECONFIG, "target \"%s\" has a bad IPv6 address", snip(t, len, sb));
    } else {
        const char *colon = strchr(t, ':');
        if (colon && !strchr(colon + 1, ':')) /* more colons: a bare IPv6 address */
            port = colon + 1;
        if (colon == t)
            return fail_at(ld, n, SS_ECONFIG, "target \"%s\" has no host", snip(t, len, sb));
    }
    if (port) {
        uint64_t v;
        if (!*port || strlen(port) > 5 || !parse_u64(port, &v) || port[0] == '+' || v > 65535)
            return fail_at(ld, n, SS_ECONFIG, "target \"%s\" has a bad port", snip(t, len, sb));
    }
    return 0;
}

/* file_sd_config's pattern: ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
static bool file_sd_name_valid(const char *s)
{
    static const char *const exts[] = {".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"};
    const char *star = strchr(s, '*');
    if (star && strchr(star, '/'))
        return false;
    size_t len = strlen(s);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t el = strlen(exts[i]);
        if (len >= el && strcmp(s + len - el, exts[i]) == 0)
            return true;
    }
    return false;
}

/* ======================================================================== */
/* Decoders, one per Prometheus config struct                               */
/* ======================================================================== */

/* A list of strings (null = empty). */
static int dec_str_list(struct loader *ld, const struct ss_ynode *n, const char *field, char ***out,
                        size_t *nout)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = 0;
    if (n->kind != SS_YSEQ) {
        rc = fail_at(ld, n, SS_ECONFIG, "expected a list of strings, got %s", kind_name(n));
        goto out;
    }
    if ((rc = visit(ld, n, n->nkids + 1)) != 0 || !n->nkids)
        goto out;
    *out = calloc(n->nkids, sizeof **out);
    if (!*out) {
        rc = fail_oom(ld);
        goto out;
    }
    *nout = n->nkids;
    for (size_t i = 0; i < n->nkids && !rc; i++) {
        size_t m = path_index(ld, i);
        if (!present(n->kids[i]))
            rc = fail_at(ld, n->kids[i], SS_ECONFIG, "expected a string, got null");
        else
            rc = scalar_text(ld, n->kids[i], "a string", &(*out)[i]);
        path_pop(ld, m);
    }
out:
    path_pop(ld, mark);
    return rc;
}

enum kv_kind { KV_LABELS, KV_HEADERS };

/* labels / external_labels / headers: a map of string to string. Keys are taken
 * verbatim; values are expanded and null means "". */
static int dec_kv_map(struct loader *ld, const struct ss_ynode *n, const char *field, enum kv_kind kind,
                      struct cfg_kv **out, size_t *nout)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = check_free_map(ld, n);
    size_t count = n->nkids / 2;
    if (rc || !count)
        goto out;
    *out = calloc(count, sizeof **out);
    if (!*out) {
        rc = fail_oom(ld);
        goto out;
    }
    *nout = count;
    for (size_t i = 0; i < count && !rc; i++) {
        const struct ss_ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        char sb[SNIP_CAP];
        if (kind == KV_LABELS && !ss_label_name_valid(k->text, k->len)) {
            rc = fail_at(ld, k, SS_ECONFIG, "\"%s\" is not a valid label name", snip(k->text, k->len, sb));
            break;
        }
        if (kind == KV_HEADERS && !ss_http_token_valid(k->text, k->len)) {
            rc = fail_at(ld, k, SS_ECONFIG, "\"%s\" is not a valid HTTP header name",
                         snip(k->text, k->len, sb));
            break;
        }
        if ((rc = account(ld, k, k->len)) != 0)
            break;
        (*out)[i].key = strdup(k->text);
        if (!(*out)[i].key) {
            rc = fail_oom(ld);
            break;
        }
        if (present(v))
            rc = scalar_text(ld, v, "a string", &(*out)[i].value);
        else if (!((*out)[i].value = strdup("")))
            rc = fail_oom(ld);
        if (!rc && kind == KV_HEADERS && strpbrk((*out)[i].value, "\r\n"))
            rc = fail_at(ld, v, SS_ECONFIG, "value of header \"%s\" contains a line break",
                         snip(k->text, k->len, sb));
    }
out:
    path_pop(ld, mark);
    return rc;
}

/* params: {name: [value, ...]} (url.Values). */
static int dec_params(struct loader *ld, const struct ss_ynode *n, struct cfg_scrape *sc)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "params");
    int rc = check_free_map(ld, n);
    size_t count = n->nkids / 2;
    if (rc || !count)
        goto out;
    sc->params = calloc(count, sizeof *sc->params);
    if (!sc->params) {
        rc = fail_oom(ld);
        goto out;
    }
    sc->nparams = count;
    for (size_t i = 0; i < count && !rc; i++) {
        const struct ss_ynode *k = n->kids[2 * i];
        struct cfg_param *p = &sc->params[i];
        if ((rc = account(ld, k, k->len)) != 0)
            break;
        if (!(p->name = strdup(k->text))) {
            rc = fail_oom(ld);
            break;
        }
        /* The key is the field name for the path, so messages name the parameter. An
         * empty or null list is allowed: the parameter is then not sent. */
        rc = dec_str_list(ld, n->kids[2 * i + 1], p->name, &p->values, &p->nvalues);
    }
out:
    path_pop(ld, mark);
    return rc;
}

/* ---- HTTP client config (prometheus/common HTTPClientConfig) -------------- */

#define HTTP_FIELD_NAMES                                                                                     \
    "basic_auth", "authorization", "bearer_token", "bearer_token_file", "tls_config", "proxy_url",           \
        "follow_redirects", "enable_http2"
enum {
    H_BASIC_AUTH,
    H_AUTHORIZATION,
    H_BEARER_TOKEN,
    H_BEARER_TOKEN_FILE,
    H_TLS,
    H_PROXY_URL,
    H_FOLLOW_REDIRECTS,
    H_ENABLE_HTTP2,
    H_N
};

static int dec_tls(struct loader *ld, const struct ss_ynode *n, struct cfg_tls *t)
{
    static const char *const names[] = {
        "ca_file",     "cert_file",  "key_file", "server_name", "insecure_skip_verify",
        "min_version", "max_version"};
    enum { T_CA, T_CERT, T_KEY, T_SERVER, T_INSECURE, T_MINVER, T_MAXVER, T_N };
    const struct ss_ynode *v[T_N], *k[T_N];
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "tls_config");
    int rc = take_fields(ld, n, names, T_N, v, k);
    if (!rc)
        rc = opt_str(ld, v[T_CA], "ca_file", &t->ca_file);
    if (!rc)
        rc = opt_str(ld, v[T_CERT], "cert_file", &t->cert_file);
    if (!rc)
        rc = opt_str(ld, v[T_KEY], "key_file", &t->key_file);
    if (!rc)
        rc = opt_str(ld, v[T_SERVER], "server_name", &t->server_name);
    if (!rc)
        rc = opt_bool(ld, v[T_INSECURE], "insecure_skip_verify", &t->insecure_skip_verify);
    if (!rc)
        rc = opt_str(ld, v[T_MINVER], "min_version", &t->min_version);
    if (!rc)
        rc = opt_str(ld, v[T_MAXVER], "max_version", &t->max_version);
    /* prometheus/common's TLSVersions: TLS10 .. TLS13 (the TLS library may still refuse
     * the old ones at its security level: the handshake then fails, logged) */
    int vmin = 0, vmax = 0;
    for (int f = 0; f < 2 && !rc; f++) {
        const char *s = f ? t->max_version : t->min_version;
        if (!s)
            continue;
        int ver = !strcmp(s, "TLS10")   ? 10
                  : !strcmp(s, "TLS11") ? 11
                  : !strcmp(s, "TLS12") ? 12
                  : !strcmp(s, "TLS13") ? 13
                                        : 0;
        if (!ver) {
            char sb[SNIP_CAP];
            rc = fail_at(ld, v[f ? T_MAXVER : T_MINVER], SS_ECONFIG, "unknown TLS version: %s",
                         snip(s, strlen(s), sb));
        }
        *(f ? &vmax : &vmin) = ver;
    }
    if (!rc && vmin && vmax && vmin > vmax)
        rc = fail_at(ld, v[T_MINVER], SS_ECONFIG,
                     "tls_config.max_version must be greater than or equal to "
                     "tls_config.min_version if both are specified");
    /* prometheus/common TLSConfig.Validate: a client cert needs its key and back. */
    if (!rc && t->cert_file && !t->key_file)
        rc = fail_at(ld, k[T_CERT], SS_ECONFIG, "cert_file is set but key_file is not");
    if (!rc && t->key_file && !t->cert_file)
        rc = fail_at(ld, k[T_KEY], SS_ECONFIG, "key_file is set but cert_file is not");
    path_pop(ld, mark);
    return rc;
}

static int dec_basic_auth(struct loader *ld, const struct ss_ynode *n, struct cfg_http_client *h)
{
    static const char *const names[] = {"username", "password", "password_file"};
    const struct ss_ynode *v[3], *k[3];
    size_t mark = path_field(ld, "basic_auth");
    int rc = take_fields(ld, n, names, 3, v, k);
    if (!rc)
        rc = opt_str(ld, v[0], "username", &h->basic_auth_username);
    if (!rc)
        rc = opt_str(ld, v[1], "password", &h->basic_auth_password);
    if (!rc)
        rc = opt_str(ld, v[2], "password_file", &h->basic_auth_password_file);
    if (!rc && h->basic_auth_password && h->basic_auth_password_file)
        rc = fail_at(ld, k[2], SS_ECONFIG,
                     "at most one of basic_auth password & password_file must be configured");
    h->has_basic_auth = true;
    path_pop(ld, mark);
    return rc;
}

static int dec_authorization(struct loader *ld, const struct ss_ynode *n, struct cfg_http_client *h)
{
    static const char *const names[] = {"type", "credentials", "credentials_file"};
    const struct ss_ynode *v[3], *k[3];
    char *type = NULL;
    size_t mark = path_field(ld, "authorization");
    int rc = take_fields(ld, n, names, 3, v, k);
    if (!rc)
        rc = opt_str(ld, v[0], "type", &type);
    if (!rc)
        rc = opt_str(ld, v[1], "credentials", &h->authorization_credentials);
    if (!rc)
        rc = opt_str(ld, v[2], "credentials_file", &h->authorization_credentials_file);
    if (!rc && h->authorization_credentials && h->authorization_credentials_file)
        rc = fail_at(ld, k[2], SS_ECONFIG,
                     "at most one of authorization credentials & credentials_file must be "
                     "configured");
    if (!rc) {
        /* HTTPClientConfig.Validate trims the type and defaults it to Bearer. */
        const char *t = type ? type : "";
        while (*t == ' ' || *t == '\t')
            t++;
        size_t tl = strlen(t);
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
            tl--;
        if (!tl) {
            t = "Bearer";
            tl = 6;
        }
        if (tl == 5 && strncasecmp(t, "basic", 5) == 0)
            rc = fail_at(ld, v[0], SS_ECONFIG,
                         "authorization type cannot be set to \"basic\", use \"basic_auth\" "
                         "instead");
        else if (!(h->authorization_type = strndup(t, tl)))
            rc = fail_oom(ld);
    }
    free(type);
    path_pop(ld, mark);
    return rc;
}

/* v/k are the HTTP_FIELD_NAMES slots of the owner's field table. The checks follow
 * prometheus/common HTTPClientConfig.Validate; bearer_token(_file) then move into
 * authorization, as Prometheus does. */
static int dec_http(struct loader *ld, const struct ss_ynode *const *v, const struct ss_ynode *const *k,
                    struct cfg_http_client *h)
{
    static const char *const proxy_schemes[] = {"http", "https", "socks5", "socks5h", NULL};
    char *bearer = NULL, *bearer_file = NULL;
    int rc = 0;

    h->follow_redirects = true;
    h->enable_http2 = true;
    if (present(v[H_BASIC_AUTH]) && (rc = dec_basic_auth(ld, v[H_BASIC_AUTH], h)) != 0)
        goto fail;
    if (present(v[H_AUTHORIZATION]) && (rc = dec_authorization(ld, v[H_AUTHORIZATION], h)) != 0)
        goto fail;
    if (h->has_basic_auth && h->authorization_type) {
        rc = fail_at(ld, k[H_AUTHORIZATION], SS_ECONFIG,
                     "at most one of basic_auth & authorization must be configured");
        goto fail;
    }
    if ((rc = opt_str(ld, v[H_BEARER_TOKEN], "bearer_token", &bearer)) != 0 ||
        (rc = opt_str(ld, v[H_BEARER_TOKEN_FILE], "bearer_token_file", &bearer_file)) != 0)
        goto fail;
    if (bearer && bearer_file) {
        rc = fail_at(ld, k[H_BEARER_TOKEN_FILE], SS_ECONFIG,
                     "at most one of bearer_token & bearer_token_file must be configured");
        goto fail;
    }
    if (bearer || bearer_file) {
        const struct ss_ynode *at = bearer ? k[H_BEARER_TOKEN] : k[H_BEARER_TOKEN_FILE];
        if (h->has_basic_auth) {
            rc = fail_at(ld, at, SS_ECONFIG,
                         "at most one of basic_auth, bearer_token & bearer_token_file must be "
                         "configured");
            goto fail;
        }
        if (h->authorization_type) {
            rc = fail_at(ld, at, SS_ECONFIG,
                         "authorization is not compatible with bearer_token & "
                         "bearer_token_file");
            goto fail;
        }
        if (!(h->authorization_type = strdup("Bearer"))) {
            rc = fail_oom(ld);
            goto fail;
        }
        h->authorization_credentials = bearer;
        h->authorization_credentials_file = bearer_file;
        bearer = bearer_file = NULL;
    }
    if ((rc = dec_tls(ld, v[H_TLS], &h->tls)) != 0 ||
        (rc = opt_str(ld, v[H_PROXY_URL], "proxy_url", &h->proxy_url)) != 0)
        goto fail;
    if (h->proxy_url) {
        const char *why = NULL;
        if (!url_valid(h->proxy_url, proxy_schemes, &why)) {
            size_t m = path_field(ld, "proxy_url");
            rc = fail_at(ld, v[H_PROXY_URL], SS_ECONFIG, "invalid proxy_url: %s", why);
            path_pop(ld, m);
            goto fail;
        }
    }
    if ((rc = opt_bool(ld, v[H_FOLLOW_REDIRECTS], "follow_redirects", &h->follow_redirects)) ||
        (rc = opt_bool(ld, v[H_ENABLE_HTTP2], "enable_http2", &h->enable_http2)))
        goto fail;
    return 0;
fail:
    ss_free_secret(bearer);
    free(bearer_file);
    return rc;
}

/* ---- relabel_config ------------------------------------------------------ */

static int dec_relabel(struct loader *ld, const struct ss_ynode *n, struct relabel_config *rc_out)
{
    static const char *const names[] = {"source_labels", "separator",   "target_label", "regex",
                                        "modulus",       "replacement", "action"};
    enum { R_SRC, R_SEP, R_TARGET, R_REGEX, R_MOD, R_REPL, R_ACTION, R_N };
    const struct ss_ynode *v[R_N], *k[R_N];
    char *action = NULL;
    int rc = take_fields(ld, n, names, R_N, v, k);
    if (!rc)
        rc = dec_str_list(ld, v[R_SRC], "source_labels", &rc_out->source_labels, &rc_out->nsource_labels);
    for (size_t i = 0; !rc && i < rc_out->nsource_labels; i++) {
        const char *s = rc_out->source_labels[i];
        if (!ss_label_name_valid(s, strlen(s))) {
            char sb[SNIP_CAP];
            size_t m = path_field(ld, "source_labels");
            rc = fail_at(ld, v[R_SRC]->kids[i], SS_ECONFIG, "\"%s\" is not a valid label name",
                         snip(s, strlen(s), sb));
            path_pop(ld, m);
        }
    }
    if (!rc)
        rc = opt_str_keep(ld, v[R_SEP], "separator", &rc_out->separator);
    if (!rc)
        rc = opt_str(ld, v[R_TARGET], "target_label", &rc_out->target_label);
    if (!rc)
        rc = opt_str_keep(ld, v[R_REGEX], "regex", &rc_out->regex);
    if (!rc)
        rc = opt_u64(ld, v[R_MOD], "modulus", &rc_out->modulus, &rc_out->has_modulus);
    if (!rc)
        rc = opt_str_keep(ld, v[R_REPL], "replacement", &rc_out->replacement);
    if (!rc)
        rc = opt_str(ld, v[R_ACTION], "action", &action);
    if (!rc && action && relabel_action_parse(action, &rc_out->action) != 0) {
        char sb[SNIP_CAP];
        size_t m = path_field(ld, "action");
        rc = fail_at(ld, v[R_ACTION], SS_ECONFIG, "unknown relabel action \"%s\"",
                     snip(action, strlen(action), sb));
        path_pop(ld, m);
    }
    free(action);
    if (rc)
        return rc;
    if (!action)
        rc_out->action = RELABEL_REPLACE;
    /* Checked as written: keepequal and dropequal refuse a regex that is there, even
     * the default one, and take one that is not. */
    char msg[256] = "";
    struct relabel_rule *rule = NULL;
    int crc = relabel_compile(rc_out, &rule, msg, sizeof msg);
    if (crc != 0) {
        relabel_rule_free(rule);
        if (crc == SS_ENOMEM)
            return fail_oom(ld);
        return fail_at(ld, n, SS_ECONFIG, "%s", msg[0] ? msg : "invalid relabel config");
    }
    relabel_rule_free(rule);
    /* Then Prometheus' DefaultRelabelConfig is filled in, so the printed config is
     * explicit, except the regex of keepequal and dropequal (compiled again later). */
    bool is_equal = rc_out->action == RELABEL_KEEPEQUAL || rc_out->action == RELABEL_DROPEQUAL;
    if ((!rc_out->separator && !(rc_out->separator = strdup(";"))) ||
        (!is_equal && !rc_out->regex && !(rc_out->regex = strdup("(.*)"))) ||
        (!rc_out->replacement && !(rc_out->replacement = strdup("$1"))))
        return fail_oom(ld);
    return 0;
}

static int dec_relabel_list(struct loader *ld, const struct ss_ynode *n, const char *field,
                            struct relabel_config **out, size_t *nout)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = 0;
    if (n->kind != SS_YSEQ) {
        rc = fail_at(ld, n, SS_ECONFIG, "expected a list of relabel configs, got %s", kind_name(n));
        goto out;
    }
    if ((rc = visit(ld, n, n->nkids + 1)) != 0 || !n->nkids)
        goto out;
    *out = calloc(n->nkids, sizeof **out);
    if (!*out) {
        rc = fail_oom(ld);
        goto out;
    }
    *nout = n->nkids;
    /* A rule's `$` belongs to it: `${name}` and `$$` in a replacement are the regex's
     * (named group, literal `$`), as in Prometheus; only a variable that is set is
     * expanded (expand_pass' rule mode). An OpenTelemetry collector config is expanded
     * whole, as the collector does (there a rule writes `$$1`). */
    bool rule = ld->rule;
    ld->rule = true;
    for (size_t i = 0; i < n->nkids && !rc; i++) {
        size_t m = path_index(ld, i);
        if (!present(n->kids[i]))
            rc = fail_at(ld, n->kids[i], SS_ECONFIG, "empty or null relabeling rule");
        else
            rc = dec_relabel(ld, n->kids[i], &(*out)[i]);
        path_pop(ld, m);
    }
    ld->rule = rule;
out:
    path_pop(ld, mark);
    return rc;
}

/* ---- scrape_config -------------------------------------------------------- */

static int dec_static(struct loader *ld, const struct ss_ynode *n, struct cfg_static_config *sc)
{
    static const char *const names[] = {"targets", "labels"};
    const struct ss_ynode *v[2], *k[2];
    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null static config");
    int rc = take_fields(ld, n, names, 2, v, k);
    if (!rc)
        rc = dec_str_list(ld, v[0], "targets", &sc->targets, &sc->ntargets);
    for (size_t i = 0; !rc && i < sc->ntargets; i++) {
        size_t m = path_push(ld, ".targets[%zu]", i);
        rc = check_target(ld, v[0]->kids[i], sc->targets[i]);
        path_pop(ld, m);
    }
    if (!rc)
        rc = dec_kv_map(ld, v[1], "labels", KV_LABELS, &sc->labels, &sc->nlabels);
    return rc;
}

static int dec_file_sd(struct loader *ld, const struct ss_ynode *n, struct cfg_file_sd *fs)
{
    static const char *const names[] = {"files", "refresh_interval"};
    const struct ss_ynode *v[2], *k[2];
    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null file_sd config");
    fs->refresh_interval_ms = 5 * 60 * 1000;
    int rc = take_fields(ld, n, names, 2, v, k);
    if (!rc)
        rc = dec_str_list(ld, v[0], "files", &fs->files, &fs->nfiles);
    if (!rc && !fs->nfiles)
        rc = fail_at(ld, n, SS_ECONFIG, "file service discovery config must contain at least one path name");
    for (size_t i = 0; !rc && i < fs->nfiles; i++) {
        if (!file_sd_name_valid(fs->files[i])) {
            char sb[SNIP_CAP];
            size_t m = path_push(ld, ".files[%zu]", i);
            rc = fail_at(ld, v[0]->kids[i], SS_ECONFIG, "path name \"%s\" is not valid for file discovery",
                         snip(fs->files[i], strlen(fs->files[i]), sb));
            path_pop(ld, m);
        }
    }
    if (!rc)
        rc = opt_dur(ld, v[1], "refresh_interval", &fs->refresh_interval_ms);
    if (!rc && fs->refresh_interval_ms <= 0)
        rc = fail_at(ld, v[1], SS_ECONFIG, "refresh_interval must be greater than 0");
    return rc;
}

/* A list of mappings decoded by fn into an array of elsize-byte structs. */
static int dec_list(struct loader *ld, const struct ss_ynode *n, const char *field, size_t elsize, void **out,
                    size_t *nout, int (*fn)(struct loader *, const struct ss_ynode *, void *))
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = 0;
    if (n->kind != SS_YSEQ) {
        rc = fail_at(ld, n, SS_ECONFIG, "expected a list, got %s", kind_name(n));
        goto out;
    }
    if ((rc = visit(ld, n, n->nkids + 1)) != 0 || !n->nkids)
        goto out;
    *out = calloc(n->nkids, elsize);
    if (!*out) {
        rc = fail_oom(ld);
        goto out;
    }
    *nout = n->nkids;
    for (size_t i = 0; i < n->nkids && !rc; i++) {
        size_t m = path_index(ld, i);
        rc = fn(ld, n->kids[i], (char *)*out + i * elsize);
        path_pop(ld, m);
    }
out:
    path_pop(ld, mark);
    return rc;
}

static int dec_static_cb(struct loader *ld, const struct ss_ynode *n, void *p)
{
    return dec_static(ld, n, p);
}

static int dec_file_sd_cb(struct loader *ld, const struct ss_ynode *n, void *p)
{
    return dec_file_sd(ld, n, p);
}

/* ---- kubernetes_sd_config ------------------------------------------------ */

/* k8s.io/apimachinery validation.IsQualifiedName's name part and IsValidLabelValue:
 * at most 63 characters, alphanumeric at both ends, [-_.] allowed inside. */
static bool kube_name_ok(const char *s, size_t len, bool allow_empty)
{
    if (!len)
        return allow_empty;
    if (len > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return false;
    return true;
}

/* A label key: [prefix/]name, the prefix a DNS-1123 subdomain of at most 253 bytes. */
static bool kube_key_ok(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    if (!slash)
        return kube_name_ok(s, len, false);
    size_t pl = (size_t)(slash - s);
    if (!pl || pl > 253)
        return false;
    for (size_t i = 0; i < pl; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[pl - 1]))
        return false;
    return kube_name_ok(slash + 1, len - pl - 1, false);
}

static void trim_span(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* labels.Parse: comma-separated requirements "k", "!k", "k=v", "k==v", "k!=v",
 * "k in (v1,v2)", "k notin (v1,v2)", "k>1", "k<1". On error writes why. */
static bool kube_label_selector_ok(const char *sel, const char **why)
{
    size_t n = strlen(sel), i = 0;
    while (i < n) {
        /* one requirement: up to a comma outside parentheses */
        size_t start = i;
        int depth = 0;
        while (i < n && (sel[i] != ',' || depth)) {
            if (sel[i] == '(')
                depth++;
            else if (sel[i] == ')' && --depth < 0)
                break;
            i++;
        }
        if (depth) {
            *why = "unbalanced parentheses";
            return false;
        }
        const char *t = sel + start;
        size_t tl = i - start;
        i++; /* skip the comma */
        trim_span(&t, &tl);
        if (!tl) {
            *why = "empty requirement";
            return false;
        }
        if (t[0] == '!') {
            t++;
            tl--;
            trim_span(&t, &tl);
            if (!kube_key_ok(t, tl)) {
                *why = "invalid label key";
                return false;
            }
            continue;
        }
        size_t k = 0;
        while (k < tl && !isspace((unsigned char)t[k]) && !strchr("=!<>(", t[k]))
            k++;
        if (!kube_key_ok(t, k)) {
            *why = "invalid label key";
            return false;
        }
        const char *r = t + k;
        size_t rl = tl - k;
        trim_span(&r, &rl);
        if (!rl)
            continue; /* exists */
        size_t op = 0;
        bool set = false, numeric = false;
        if (rl >= 2 && (!strncmp(r, "==", 2) || !strncmp(r, "!=", 2)))
            op = 2;
        else if (r[0] == '=')
            op = 1;
        else if (r[0] == '<' || r[0] == '>')
            op = 1, numeric = true;
        else if (rl > 5 && !strncmp(r, "notin", 5) && (isspace((unsigned char)r[5]) || r[5] == '('))
            op = 5, set = true;
        else if (rl > 2 && !strncmp(r, "in", 2) && (isspace((unsigned char)r[2]) || r[2] == '('))
            op = 2, set = true;
        if (!op) {
            *why = "expected an operator (=, ==, !=, in, notin, <, >)";
            return false;
        }
        const char *v = r + op;
        size_t vl = rl - op;
        trim_span(&v, &vl);
        if (set) {
            if (vl < 2 || v[0] != '(' || v[vl - 1] != ')') {
                *why = "in and notin need a parenthesised list of values";
                return false;
            }
            v++;
            vl -= 2;
            size_t j = 0, nvals = 0;
            while (j <= vl) {
                size_t e = j;
                while (e < vl && v[e] != ',')
                    e++;
                const char *x = v + j;
                size_t xl = e - j;
                trim_span(&x, &xl);
                if (!kube_name_ok(x, xl, true)) {
                    *why = "invalid label value";
                    return false;
                }
                nvals += xl > 0;
                j = e + 1;
            }
            if (!nvals) {
                *why = "for 'in', 'notin' operators, values set can't be empty";
                return false;
            }
        } else if (numeric) {
            size_t j = vl && (v[0] == '-' || v[0] == '+') ? 1 : 0;
            if (j == vl) {
                *why = "for 'Gt', 'Lt' operators, the value must be an integer";
                return false;
            }
            for (; j < vl; j++)
                if (!isdigit((unsigned char)v[j])) {
                    *why = "for 'Gt', 'Lt' operators, the value must be an integer";
                    return false;
                }
        } else if (!kube_name_ok(v, vl, true)) {
            *why = "invalid label value";
            return false;
        }
    }
    return true;
}

/* fields.ParseSelector: comma-separated "key=value", "key==value", "key!=value"
 * terms; "\" escapes one of \ , = ! in values. */
static bool kube_field_selector_ok(const char *sel, const char **why)
{
    size_t n = strlen(sel), i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && sel[i] != ',') {
            if (sel[i] == '\\') {
                if (i + 1 >= n || !strchr("\\,=!", sel[i + 1])) {
                    *why = "invalid escape sequence";
                    return false;
                }
                i++;
            }
            i++;
        }
        const char *t = sel + start;
        size_t tl = i - start;
        i++;
        trim_span(&t, &tl);
        const char *eq = memchr(t, '=', tl);
        if (!tl || !eq || eq == t || (eq == t + 1 && t[0] == '!')) {
            *why = "want key=value, key==value or key!=value";
            return false;
        }
    }
    return true;
}

static bool kube_role_known(const char *r)
{
    static const char *const roles[] = {"pod", "service", "endpoints", "endpointslice", "node", "ingress"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r, roles[i]))
            return true;
    return false;
}

static int dec_kube_role(struct loader *ld, const struct ss_ynode *n, const char *field, char **dst)
{
    int rc = opt_str_keep(ld, n, field, dst);
    if (!rc && *dst && !kube_role_known(*dst)) {
        char sb[SNIP_CAP];
        size_t m = path_field(ld, field);
        rc = fail_at(ld, n, SS_ECONFIG, "unknown Kubernetes SD role \"%s\"", snip(*dst, strlen(*dst), sb));
        path_pop(ld, m);
    }
    return rc;
}

static int dec_kube_selector(struct loader *ld, const struct ss_ynode *n, void *p)
{
    static const char *const names[] = {"role", "label", "field"};
    struct cfg_kube_selector *s = p;
    const struct ss_ynode *v[3], *k[3];
    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null selector");
    int rc = take_fields(ld, n, names, 3, v, k);
    if (!rc)
        rc = dec_kube_role(ld, v[0], "role", &s->role);
    if (!rc)
        rc = opt_str(ld, v[1], "label", &s->label);
    if (!rc)
        rc = opt_str(ld, v[2], "field", &s->field);
    const char *why = NULL;
    char sb[SNIP_CAP];
    if (!rc && s->label && !kube_label_selector_ok(s->label, &why)) {
        size_t m = path_field(ld, "label");
        rc = fail_at(ld, v[1], SS_ECONFIG, "invalid label selector \"%s\": %s",
                     snip(s->label, strlen(s->label), sb), why);
        path_pop(ld, m);
    }
    if (!rc && s->field && !kube_field_selector_ok(s->field, &why)) {
        size_t m = path_field(ld, "field");
        rc = fail_at(ld, v[2], SS_ECONFIG, "invalid field selector \"%s\": %s",
                     snip(s->field, strlen(s->field), sb), why);
        path_pop(ld, m);
    }
    return rc;
}

/* Prometheus compares the HTTP client config with its default (reflect.DeepEqual). */
static bool http_is_default(const struct cfg_http_client *h)
{
    return !h->has_basic_auth && !h->authorization_type && !h->tls.ca_file && !h->tls.cert_file &&
           !h->tls.key_file && !h->tls.server_name && !h->tls.insecure_skip_verify && !h->tls.min_version &&
           !h->tls.max_version && !h->proxy_url && h->follow_redirects && h->enable_http2;
}

static int dec_kube_sd(struct loader *ld, const struct ss_ynode *n, struct cfg_kube_sd *ks)
{
    static const char *const names[] = {HTTP_FIELD_NAMES, "role",      "api_server",     "kubeconfig_file",
                                        "namespaces",     "selectors", "attach_metadata"};
    enum { K_ROLE = H_N, K_API, K_KUBECONFIG, K_NS, K_SELECTORS, K_ATTACH, K_N };
    _Static_assert(sizeof names / sizeof names[0] == K_N, "field table");
    static const char *const url_schemes[] = {"http", "https", NULL};
    const struct ss_ynode *v[K_N], *k[K_N];
    int rc;

    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null kubernetes_sd config");
    ks->line = n->line;
    if ((rc = take_fields(ld, n, names, K_N, v, k)) ||
        (rc = dec_kube_role(ld, v[K_ROLE], "role", &ks->role)) ||
        (rc = opt_str(ld, v[K_API], "api_server", &ks->api_server)) ||
        (rc = opt_str(ld, v[K_KUBECONFIG], "kubeconfig_file", &ks->kubeconfig_file)))
        return rc;
    if (ks->api_server) {
        const char *why = NULL;
        if (!url_valid(ks->api_server, url_schemes, &why)) {
            size_t m = path_field(ld, "api_server");
            rc = fail_at(ld, v[K_API], SS_ECONFIG, "invalid api_server: %s", why);
            path_pop(ld, m);
            return rc;
        }
    }
    if (present(v[K_NS])) {
        static const char *const nsnames[] = {"names", "own_namespace"};
        const struct ss_ynode *nv[2], *nk[2];
        size_t m = path_field(ld, "namespaces");
        rc = take_fields(ld, v[K_NS], nsnames, 2, nv, nk);
        if (!rc)
            rc = dec_str_list(ld, nv[0], "names", &ks->namespaces, &ks->nnamespaces);
        for (size_t i = 0; !rc && i < ks->nnamespaces; i++) {
            /* namespaces are DNS-1123 labels; the name goes into a URL path */
            const char *s = ks->namespaces[i];
            bool ok = *s && strlen(s) <= 63;
            for (const char *c = s; *c && ok; c++)
                ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-';
            if (!ok) {
                char sb[SNIP_CAP];
                size_t mm = path_push(ld, ".names[%zu]", i);
                rc = fail_at(ld, nv[0]->kids[i], SS_ECONFIG, "\"%s\" is not a valid namespace name",
                             snip(s, strlen(s), sb));
                path_pop(ld, mm);
            }
        }
        if (!rc)
            rc = opt_bool(ld, nv[1], "own_namespace", &ks->own_namespace);
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (present(v[K_ATTACH])) {
        static const char *const anames[] = {"node"};
        const struct ss_ynode *av[1], *ak[1];
        bool node = false;
        size_t m = path_field(ld, "attach_metadata");
        rc = take_fields(ld, v[K_ATTACH], anames, 1, av, ak);
        if (!rc)
            rc = opt_bool(ld, av[0], "node", &node);
        if (!rc && node)
            rc = fail_at(ld, av[0], SS_ECONFIG, "attach_metadata.node is not supported by scrapeship");
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if ((rc = dec_list(ld, v[K_SELECTORS], "selectors", sizeof *ks->selectors, (void **)&ks->selectors,
                       &ks->nselectors, dec_kube_selector)) ||
        (rc = dec_http(ld, v, k, &ks->http)))
        return rc;

    /* kubernetes.SDConfig.UnmarshalYAML, in its order */
    if (!ks->role)
        return fail_at(ld, n, SS_ECONFIG,
                       "role missing (one of: pod, service, endpoints, endpointslice, node, "
                       "ingress)");
    if (strcmp(ks->role, "pod") != 0 && strcmp(ks->role, "endpoints") != 0 &&
        strcmp(ks->role, "endpointslice") != 0) {
        char sb[SNIP_CAP];
        size_t m = path_field(ld, "role");
        rc = fail_at(ld, v[K_ROLE], SS_ECONFIG,
                     "role \"%s\" is not supported by scrapeship (supported: pod, endpoints, endpointslice)",
                     snip(ks->role, strlen(ks->role), sb));
        path_pop(ld, m);
        return rc;
    }
    bool custom_http = !http_is_default(&ks->http);
    if (ks->api_server && ks->kubeconfig_file)
        return fail_at(ld, k[K_KUBECONFIG], SS_ECONFIG,
                       "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
    if (ks->kubeconfig_file && custom_http)
        return fail_at(ld, k[K_KUBECONFIG], SS_ECONFIG,
                       "cannot use a custom HTTP client configuration together with "
                       "'kubeconfig_file'");
    if (!ks->api_server && custom_http)
        return fail_at(ld, n, SS_ECONFIG,
                       "to use custom HTTP client configuration please provide the 'api_server' "
                       "URL explicitly");
    if (ks->api_server && ks->own_namespace)
        return fail_at(ld, k[K_NS], SS_ECONFIG,
                       "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously");
    if (ks->kubeconfig_file && ks->own_namespace)
        return fail_at(ld, k[K_NS], SS_ECONFIG,
                       "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' "
                       "simultaneously");
    bool pod_role = strcmp(ks->role, "pod") == 0;
    /* Prometheus 2.42 kubernetes.go allowedSelectors: the role's own kind, service, pod */
    const char *own = pod_role ? "pod" : ks->role;
    for (size_t i = 0; i < ks->nselectors; i++) {
        const char *r = ks->selectors[i].role ? ks->selectors[i].role : "";
        const struct ss_ynode *at = v[K_SELECTORS]->kids[i];
        size_t m = path_push(ld, ".selectors[%zu]", i);
        for (size_t j = 0; j < i && !rc; j++)
            if (!strcmp(r, ks->selectors[j].role ? ks->selectors[j].role : ""))
                rc = fail_at(ld, at, SS_ECONFIG, "duplicated selector role: %s", r);
        bool allowed =
            pod_role ? !strcmp(r, "pod") : (!strcmp(r, "pod") || !strcmp(r, "service") || !strcmp(r, own));
        if (!rc && !allowed)
            rc = fail_at(ld, at, SS_ECONFIG, "%s role supports only %s selectors", ks->role,
                         pod_role ? "pod"
                                  : (strcmp(own, "endpoints") ? "pod, service, endpointslice"
                                                              : "pod, service, endpoints"));
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    return 0;
}

static int dec_kube_sd_cb(struct loader *ld, const struct ss_ynode *n, void *p)
{
    return dec_kube_sd(ld, n, p);
}

static int dec_scrape(struct loader *ld, const struct ss_ynode *n, struct cfg_scrape *sc,
                      const struct cfg_global *g, const struct ss_ynode **job_node)
{
    static const char *const names[] = {HTTP_FIELD_NAMES,
                                        "job_name",
                                        "honor_labels",
                                        "honor_timestamps",
                                        "params",
                                        "scrape_interval",
                                        "scrape_timeout",
                                        "metrics_path",
                                        "scheme",
                                        "static_configs",
                                        "file_sd_configs",
                                        "relabel_configs",
                                        "metric_relabel_configs",
                                        "sample_limit",
                                        "target_limit",
                                        "label_limit",
                                        "label_name_length_limit",
                                        "label_value_length_limit",
                                        "body_size_limit",
                                        "kubernetes_sd_configs",
                                        "strict_parsing"};
    enum {
        S_JOB = H_N,
        S_HONOR_LABELS,
        S_HONOR_TS,
        S_PARAMS,
        S_INTERVAL,
        S_TIMEOUT,
        S_PATH,
        S_SCHEME,
        S_STATIC,
        S_FILE_SD,
        S_RELABEL,
        S_METRIC_RELABEL,
        S_SAMPLE_LIMIT,
        S_TARGET_LIMIT,
        S_LABEL_LIMIT,
        S_NAME_LEN,
        S_VALUE_LEN,
        S_BODY_SIZE,
        S_KUBE_SD,
        S_STRICT,
        S_N
    };
    _Static_assert(sizeof names / sizeof names[0] == S_N, "field table");
    const struct ss_ynode *v[S_N], *k[S_N];
    int rc;

    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null scrape config section");
    sc->line = n->line;
    sc->honor_timestamps = true;
    if ((rc = take_fields(ld, n, names, S_N, v, k)) != 0)
        return rc;
    if ((rc = opt_str(ld, v[S_JOB], "job_name", &sc->job_name)) != 0)
        return rc;
    if (!sc->job_name)
        return fail_at(ld, present(v[S_JOB]) ? v[S_JOB] : n, SS_ECONFIG, "job_name is required");
    *job_node = v[S_JOB];
    if ((rc = opt_bool(ld, v[S_HONOR_LABELS], "honor_labels", &sc->honor_labels)) ||
        (rc = opt_bool(ld, v[S_HONOR_TS], "honor_timestamps", &sc->honor_timestamps)) ||
        (rc = opt_bool(ld, v[S_STRICT], "strict_parsing", &sc->strict_parsing)) ||
        (rc = dec_params(ld, v[S_PARAMS], sc)) ||
        (rc = opt_dur(ld, v[S_INTERVAL], "scrape_interval", &sc->scrape_interval_ms)) ||
        (rc = opt_dur(ld, v[S_TIMEOUT], "scrape_timeout", &sc->scrape_timeout_ms)) ||
        (rc = opt_str(ld, v[S_PATH], "metrics_path", &sc->metrics_path)) ||
        (rc = opt_str(ld, v[S_SCHEME], "scheme", &sc->scheme)))
        return rc;
    if (sc->scheme && strcmp(sc->scheme, "http") != 0 && strcmp(sc->scheme, "https") != 0) {
        char sb[SNIP_CAP];
        size_t m = path_field(ld, "scheme");
        rc = fail_at(ld, v[S_SCHEME], SS_ECONFIG, "unsupported scheme \"%s\" (want http or https)",
                     snip(sc->scheme, strlen(sc->scheme), sb));
        path_pop(ld, m);
        return rc;
    }
    if ((!sc->metrics_path && !(sc->metrics_path = strdup("/metrics"))) ||
        (!sc->scheme && !(sc->scheme = strdup("http"))))
        return fail_oom(ld);
    if ((rc = dec_http(ld, v, k, &sc->http)) ||
        (rc = dec_list(ld, v[S_STATIC], "static_configs", sizeof *sc->static_configs,
                       (void **)&sc->static_configs, &sc->nstatic_configs, dec_static_cb)) ||
        (rc = dec_list(ld, v[S_FILE_SD], "file_sd_configs", sizeof *sc->file_sd_configs,
                       (void **)&sc->file_sd_configs, &sc->nfile_sd_configs, dec_file_sd_cb)) ||
        (rc = dec_list(ld, v[S_KUBE_SD], "kubernetes_sd_configs", sizeof *sc->kubernetes_sd_configs,
                       (void **)&sc->kubernetes_sd_configs, &sc->nkubernetes_sd_configs, dec_kube_sd_cb)) ||
        (rc = dec_relabel_list(ld, v[S_RELABEL], "relabel_configs", &sc->relabel_configs,
                               &sc->nrelabel_configs)) ||
        (rc = dec_relabel_list(ld, v[S_METRIC_RELABEL], "metric_relabel_configs", &sc->metric_relabel_configs,
                               &sc->nmetric_relabel_configs)) ||
        (rc = opt_u64(ld, v[S_SAMPLE_LIMIT], "sample_limit", &sc->sample_limit, NULL)) ||
        (rc = opt_u64(ld, v[S_TARGET_LIMIT], "target_limit", &sc->target_limit, NULL)) ||
        (rc = opt_u64(ld, v[S_LABEL_LIMIT], "label_limit", &sc->label_limit, NULL)) ||
        (rc = opt_u64(ld, v[S_NAME_LEN], "label_name_length_limit", &sc->label_name_length_limit, NULL)) ||
        (rc = opt_u64(ld, v[S_VALUE_LEN], "label_value_length_limit", &sc->label_value_length_limit, NULL)) ||
        (rc = opt_size(ld, v[S_BODY_SIZE], "body_size_limit", &sc->body_size_limit)))
        return rc;

    /* ScrapeConfig.Validate: 0 means "inherit"; an explicit timeout may not exceed the
     * interval, an inherited one is capped at it. */
    if (sc->scrape_interval_ms == 0)
        sc->scrape_interval_ms = g->scrape_interval_ms;
    if (sc->scrape_timeout_ms > sc->scrape_interval_ms) {
        char a[32], b[32];
        ss_format_duration_ms(a, sizeof a, sc->scrape_timeout_ms);
        ss_format_duration_ms(b, sizeof b, sc->scrape_interval_ms);
        size_t m = path_field(ld, "scrape_timeout");
        rc = fail_at(ld, v[S_TIMEOUT], SS_ECONFIG, "scrape_timeout (%s) is greater than scrape_interval (%s)",
                     a, b);
        path_pop(ld, m);
        return rc;
    }
    if (sc->scrape_timeout_ms == 0)
        sc->scrape_timeout_ms =
            g->scrape_timeout_ms > sc->scrape_interval_ms ? sc->scrape_interval_ms : g->scrape_timeout_ms;
    return 0;
}

/* ---- remote_write --------------------------------------------------------- */

static int dec_queue(struct loader *ld, const struct ss_ynode *n, struct cfg_queue *q)
{
    static const char *const names[] = {
        "capacity",    "min_shards",  "max_shards",        "max_samples_per_send", "batch_send_deadline",
        "min_backoff", "max_backoff", "retry_on_http_429", "sample_age_limit",     "max_memory_bytes"};
    enum { Q_CAP, Q_MIN, Q_MAX, Q_MSPS, Q_DEADLINE, Q_MINB, Q_MAXB, Q_429, Q_AGE, Q_MEM, Q_N };
    const struct ss_ynode *v[Q_N], *k[Q_N];
    q->capacity = 10000;
    q->min_shards = 1;
    q->max_shards = 50;
    q->max_samples_per_send = 2000;
    q->batch_send_deadline_ms = 5000;
    q->min_backoff_ms = 30;
    q->max_backoff_ms = 5000;
    q->retry_on_http_429 = true;
    q->sample_age_limit_ms = 0;
    q->max_memory_bytes = 64ULL << 20;
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "queue_config");
    int rc = take_fields(ld, n, names, Q_N, v, k);
    if (rc || (rc = opt_i64(ld, v[Q_CAP], "capacity", &q->capacity)) ||
        (rc = opt_i64(ld, v[Q_MIN], "min_shards", &q->min_shards)) ||
        (rc = opt_i64(ld, v[Q_MAX], "max_shards", &q->max_shards)) ||
        (rc = opt_i64(ld, v[Q_MSPS], "max_samples_per_send", &q->max_samples_per_send)) ||
        (rc = opt_dur(ld, v[Q_DEADLINE], "batch_send_deadline", &q->batch_send_deadline_ms)) ||
        (rc = opt_dur(ld, v[Q_MINB], "min_backoff", &q->min_backoff_ms)) ||
        (rc = opt_dur(ld, v[Q_MAXB], "max_backoff", &q->max_backoff_ms)) ||
        (rc = opt_bool(ld, v[Q_429], "retry_on_http_429", &q->retry_on_http_429)) ||
        (rc = opt_dur(ld, v[Q_AGE], "sample_age_limit", &q->sample_age_limit_ms)) ||
        (rc = opt_size(ld, v[Q_MEM], "max_memory_bytes", &q->max_memory_bytes)))
        goto out;
        /* Point at the offending value when it was written, else at queue_config. */
#define QNODE(i) (v[i] ? v[i] : n)
    if (q->capacity < 1)
        rc = fail_at(ld, QNODE(Q_CAP), SS_ECONFIG, "capacity must be at least 1");
    else if (q->min_shards < 1)
        rc = fail_at(ld, QNODE(Q_MIN), SS_ECONFIG, "min_shards must be at least 1");
    else if (q->max_shards < q->min_shards)
        rc =
            fail_at(ld, QNODE(Q_MAX), SS_ECONFIG, "max_shards (%lld) must not be less than min_shards (%lld)",
                    (long long)q->max_shards, (long long)q->min_shards);
    else if (q->max_samples_per_send < 1)
        rc = fail_at(ld, QNODE(Q_MSPS), SS_ECONFIG, "max_samples_per_send must be at least 1");
    else if (q->batch_send_deadline_ms <= 0)
        rc = fail_at(ld, QNODE(Q_DEADLINE), SS_ECONFIG, "batch_send_deadline must be greater than 0");
    else if (q->min_backoff_ms <= 0)
        rc = fail_at(ld, QNODE(Q_MINB), SS_ECONFIG, "min_backoff must be greater than 0");
    else if (q->max_backoff_ms < q->min_backoff_ms)
        rc = fail_at(ld, QNODE(Q_MAXB), SS_ECONFIG, "max_backoff must not be less than min_backoff");
    else if (q->max_memory_bytes < (1ULL << 16))
        rc = fail_at(ld, QNODE(Q_MEM), SS_ECONFIG, "max_memory_bytes must be at least 64KiB");
#undef QNODE
out:
    path_pop(ld, mark);
    return rc;
}

static int dec_metadata(struct loader *ld, const struct ss_ynode *n, struct cfg_metadata *md)
{
    static const char *const names[] = {"send", "send_interval", "max_samples_per_send"};
    const struct ss_ynode *v[3], *k[3];
    md->send = true;
    md->send_interval_ms = 60000;
    md->max_samples_per_send = 2000;
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "metadata_config");
    int rc = take_fields(ld, n, names, 3, v, k);
    if (!rc)
        rc = opt_bool(ld, v[0], "send", &md->send);
    if (!rc)
        rc = opt_dur(ld, v[1], "send_interval", &md->send_interval_ms);
    if (!rc)
        rc = opt_i64(ld, v[2], "max_samples_per_send", &md->max_samples_per_send);
    if (!rc && md->send_interval_ms <= 0)
        rc = fail_at(ld, v[1] ? v[1] : n, SS_ECONFIG, "send_interval must be greater than 0");
    if (!rc && md->max_samples_per_send < 1)
        rc = fail_at(ld, v[2] ? v[2] : n, SS_ECONFIG, "max_samples_per_send must be at least 1");
    path_pop(ld, mark);
    return rc;
}

static int dec_sigv4(struct loader *ld, const struct ss_ynode *n, struct cfg_sigv4 *s)
{
    static const char *const names[] = {"region",      "access_key", "secret_key",   "profile",   "role_arn",
                                        "external_id", "service",    "session_name", "sts_region"};
    enum { G_REGION, G_AK, G_SK, G_PROFILE, G_ROLE, G_EXTID, G_SERVICE, G_SESSION, G_STS, G_N };
    const struct ss_ynode *v[G_N], *k[G_N];
    size_t mark = path_field(ld, "sigv4");
    /* The key's presence turns SigV4 on: `sigv4: {}` means "region and credentials from
     * the environment", which is a complete configuration. */
    s->enabled = true;
    int rc = take_fields(ld, n, names, G_N, v, k);
    if (rc || (rc = opt_str(ld, v[G_REGION], "region", &s->region)) ||
        (rc = opt_str(ld, v[G_AK], "access_key", &s->access_key)) ||
        (rc = opt_str(ld, v[G_SK], "secret_key", &s->secret_key)) ||
        (rc = opt_str(ld, v[G_PROFILE], "profile", &s->profile)) ||
        (rc = opt_str(ld, v[G_ROLE], "role_arn", &s->role_arn)) ||
        (rc = opt_str(ld, v[G_EXTID], "external_id", &s->external_id)) ||
        (rc = opt_str(ld, v[G_SERVICE], "service", &s->service)) ||
        (rc = opt_str(ld, v[G_SESSION], "session_name", &s->session_name)) ||
        (rc = opt_str(ld, v[G_STS], "sts_region", &s->sts_region)))
        goto out;
    if (!s->access_key != !s->secret_key) {
        rc = fail_at(ld, s->access_key ? k[G_AK] : k[G_SK], SS_ECONFIG,
                     "must provide a AWS SigV4 Access key and Secret Key if credentials are "
                     "specified in the SigV4 config");
        goto out;
    }
    if (s->external_id && !s->role_arn) {
        rc = fail_at(ld, k[G_EXTID], SS_ECONFIG, "external_id requires role_arn");
        goto out;
    }
    if ((s->session_name || s->sts_region) && !s->role_arn) {
        rc = fail_at(ld, s->session_name ? k[G_SESSION] : k[G_STS], SS_ECONFIG, "%s requires role_arn",
                     s->session_name ? "session_name" : "sts_region");
        goto out;
    }
    if (!s->service && !(s->service = strdup("aps")))
        rc = fail_oom(ld);
out:
    path_pop(ld, mark);
    return rc;
}

/* Prometheus' reservedHeaders, plus X-Amz-* under SigV4 (they are signed by us). */
static int check_headers(struct loader *ld, const struct ss_ynode *n, bool sigv4)
{
    static const char *const reserved[] = {"Content-Encoding", "Content-Type", "User-Agent",
                                           "X-Prometheus-Remote-Write-Version", "Host"};
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "headers");
    int rc = 0;
    for (size_t i = 0; i + 1 < n->nkids && !rc; i += 2) {
        const struct ss_ynode *k = n->kids[i];
        char sb[SNIP_CAP];
        if (!strcasecmp(k->text, "Authorization")) {
            rc = fail_at(ld, k, SS_ECONFIG,
                         "authorization header must be changed via the basic_auth, "
                         "authorization, or sigv4 parameter");
            break;
        }
        for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
            if (!strcasecmp(k->text, reserved[r]))
                rc = fail_at(ld, k, SS_ECONFIG, "%s is a reserved header. It must not be changed",
                             snip(k->text, k->len, sb));
        if (!rc && sigv4 && !strncasecmp(k->text, "X-Amz-", 6))
            rc = fail_at(ld, k, SS_ECONFIG, "%s is a reserved header when sigv4 is configured",
                         snip(k->text, k->len, sb));
    }
    path_pop(ld, mark);
    return rc;
}

static void otel_series_defaults(struct cfg_otel_series *o)
{
    o->enabled = true;
    o->add_metric_suffixes = true;
    o->target_info = true;
    o->resource_to_telemetry = false;
}

/* A native remote_write's otel_translation: ship what the OTel collector would. */
static int dec_otel_translation(struct loader *ld, const struct ss_ynode *n, struct cfg_otel_series *o)
{
    static const char *const names[] = {"namespace", "add_metric_suffixes", "target_info",
                                        "resource_to_telemetry_conversion", "external_labels"};
    const struct ss_ynode *v[5], *k[5];
    size_t mark = path_field(ld, "otel_translation");
    otel_series_defaults(o);
    int rc = take_fields(ld, n, names, 5, v, k);
    if (!rc)
        rc = opt_str(ld, v[0], "namespace", &o->namespace);
    if (!rc)
        rc = opt_bool(ld, v[1], "add_metric_suffixes", &o->add_metric_suffixes);
    if (!rc)
        rc = opt_bool(ld, v[2], "target_info", &o->target_info);
    if (!rc)
        rc = opt_bool(ld, v[3], "resource_to_telemetry_conversion", &o->resource_to_telemetry);
    if (!rc)
        rc = dec_kv_map(ld, v[4], "external_labels", KV_LABELS, &o->external_labels, &o->nexternal_labels);
    path_pop(ld, mark);
    return rc;
}

static int dec_remote_write(struct loader *ld, const struct ss_ynode *n, struct cfg_remote_write *rw)
{
    static const char *const names[] = {HTTP_FIELD_NAMES,
                                        "url",
                                        "name",
                                        "remote_timeout",
                                        "headers",
                                        "write_relabel_configs",
                                        "send_exemplars",
                                        "queue_config",
                                        "metadata_config",
                                        "sigv4",
                                        "otel_translation"};
    enum {
        W_URL = H_N,
        W_NAME,
        W_TIMEOUT,
        W_HEADERS,
        W_RELABEL,
        W_EXEMPLARS,
        W_QUEUE,
        W_METADATA,
        W_SIGV4,
        W_OTEL,
        W_N
    };
    _Static_assert(sizeof names / sizeof names[0] == W_N, "field table");
    static const char *const url_schemes[] = {"http", "https", NULL};
    const struct ss_ynode *v[W_N], *k[W_N];
    int rc;

    if (!present(n))
        return fail_at(ld, n, SS_ECONFIG, "empty or null remote write config section");
    rw->line = n->line;
    rw->remote_timeout_ms = 30000;
    if ((rc = take_fields(ld, n, names, W_N, v, k)) || (rc = opt_str(ld, v[W_URL], "url", &rw->url)))
        return rc;
    if (!rw->url)
        return fail_at(ld, present(v[W_URL]) ? v[W_URL] : n, SS_ECONFIG, "url for remote_write is empty");
    const char *why = NULL;
    if (!url_valid(rw->url, url_schemes, &why)) {
        size_t m = path_field(ld, "url");
        /* The URL is not echoed: it may carry a password. */
        rc = fail_at(ld, v[W_URL], SS_ECONFIG, "invalid url: %s", why);
        path_pop(ld, m);
        return rc;
    }
    if ((rc = opt_str(ld, v[W_NAME], "name", &rw->name)))
        return rc;
    if (!rw->name && !(rw->name = strdup("")))
        return fail_oom(ld);
    if ((rc = opt_dur(ld, v[W_TIMEOUT], "remote_timeout", &rw->remote_timeout_ms)))
        return rc;
    if (rw->remote_timeout_ms <= 0)
        return fail_at(ld, v[W_TIMEOUT], SS_ECONFIG, "remote_timeout must be greater than 0");
    if ((rc = dec_kv_map(ld, v[W_HEADERS], "headers", KV_HEADERS, &rw->headers, &rw->nheaders)) ||
        (rc = dec_relabel_list(ld, v[W_RELABEL], "write_relabel_configs", &rw->write_relabel_configs,
                               &rw->nwrite_relabel_configs)) ||
        (rc = opt_bool(ld, v[W_EXEMPLARS], "send_exemplars", &rw->send_exemplars)) ||
        (rc = dec_http(ld, v, k, &rw->http)) || (rc = dec_queue(ld, v[W_QUEUE], &rw->queue)) ||
        (rc = dec_metadata(ld, v[W_METADATA], &rw->metadata)))
        return rc;
    if (k[W_SIGV4]) {
        if ((rc = dec_sigv4(ld, v[W_SIGV4], &rw->sigv4)))
            return rc;
        if (rw->http.has_basic_auth || rw->http.authorization_type)
            return fail_at(ld, k[W_SIGV4], SS_ECONFIG,
                           "at most one of basic_auth, authorization & sigv4 must be "
                           "configured");
    }
    if (k[W_OTEL] && (rc = dec_otel_translation(ld, v[W_OTEL], &rw->otel)))
        return rc;
    return check_headers(ld, v[W_HEADERS], rw->sigv4.enabled);
}

/* ---- global, storage, and the top level ---------------------------------- */

static int dec_global(struct loader *ld, const struct ss_ynode *n, struct cfg_global *g)
{
    static const char *const names[] = {"scrape_interval", "scrape_timeout", "evaluation_interval",
                                        "external_labels"};
    const struct ss_ynode *v[4], *k[4];
    int64_t eval = 0; /* accepted for Prometheus compatibility; we evaluate no rules */
    size_t mark = path_field(ld, "global");
    int rc = take_fields(ld, n, names, 4, v, k);
    if (rc || (rc = opt_dur(ld, v[0], "scrape_interval", &g->scrape_interval_ms)) ||
        (rc = opt_dur(ld, v[1], "scrape_timeout", &g->scrape_timeout_ms)) ||
        (rc = opt_dur(ld, v[2], "evaluation_interval", &eval)) ||
        (rc = dec_kv_map(ld, v[3], "external_labels", KV_LABELS, &g->external_labels, &g->nexternal_labels)))
        goto out;
    /* GlobalConfig.UnmarshalYAML: 0 means default; an explicit timeout may not exceed
     * the interval; the default timeout is capped at it. */
    if (g->scrape_interval_ms == 0)
        g->scrape_interval_ms = 60000;
    if (g->scrape_timeout_ms > g->scrape_interval_ms) {
        char a[32], b[32];
        ss_format_duration_ms(a, sizeof a, g->scrape_timeout_ms);
        ss_format_duration_ms(b, sizeof b, g->scrape_interval_ms);
        size_t m = path_field(ld, "scrape_timeout");
        rc = fail_at(ld, v[1], SS_ECONFIG, "global scrape_timeout (%s) is greater than scrape_interval (%s)",
                     a, b);
        path_pop(ld, m);
        goto out;
    }
    if (g->scrape_timeout_ms == 0)
        g->scrape_timeout_ms = 10000 > g->scrape_interval_ms ? g->scrape_interval_ms : 10000;
out:
    path_pop(ld, mark);
    return rc;
}

struct nameref {
    const char *s;
    const struct ss_ynode *at;
    size_t idx;
};

static int nameref_cmp(const void *a, const void *b)
{
    const struct nameref *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (!c)
        c = x->idx < y->idx ? -1 : x->idx > y->idx;
    return c;
}

/* Sort-based uniqueness check; reports the first repeat in document order. */
static int check_unique(struct loader *ld, struct nameref *refs, size_t n, const char *section,
                        const char *what)
{
    if (n < 2)
        return 0;
    qsort(refs, n, sizeof *refs, nameref_cmp);
    const struct nameref *dup = NULL;
    for (size_t i = 1; i < n; i++)
        if (!strcmp(refs[i].s, refs[i - 1].s) && (!dup || refs[i].idx < dup->idx))
            dup = &refs[i];
    if (!dup)
        return 0;
    char sb[SNIP_CAP];
    size_t m = path_push(ld, "%s[%zu]", section, dup->idx);
    int rc = fail_at(ld, dup->at, SS_ECONFIG, "found multiple %s with name \"%s\"", what,
                     snip(dup->s, strlen(dup->s), sb));
    path_pop(ld, m);
    return rc;
}

static int dec_scrape_configs(struct loader *ld, const struct ss_ynode *n, struct cfg *c)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "scrape_configs");
    struct nameref *refs = NULL;
    int rc = 0;
    if (n->kind != SS_YSEQ) {
        rc = fail_at(ld, n, SS_ECONFIG, "expected a list, got %s", kind_name(n));
        goto out;
    }
    if ((rc = visit(ld, n, n->nkids + 1)) || !n->nkids)
        goto out;
    c->scrape_configs = calloc(n->nkids, sizeof *c->scrape_configs);
    refs = calloc(n->nkids, sizeof *refs);
    if (!c->scrape_configs || !refs) {
        rc = fail_oom(ld);
        goto out;
    }
    c->nscrape_configs = n->nkids;
    for (size_t i = 0; i < n->nkids && !rc; i++) {
        size_t m = path_index(ld, i);
        rc = dec_scrape(ld, n->kids[i], &c->scrape_configs[i], &c->global, &refs[i].at);
        refs[i].s = c->scrape_configs[i].job_name;
        refs[i].idx = i;
        path_pop(ld, m);
    }
    path_pop(ld, mark);
    if (!rc)
        rc = check_unique(ld, refs, n->nkids, "scrape_configs", "scrape configs");
out:
    path_pop(ld, mark);
    free(refs);
    return rc;
}

static int dec_remote_writes(struct loader *ld, const struct ss_ynode *n, struct cfg *c)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "remote_write");
    struct nameref *refs = NULL;
    size_t nrefs = 0;
    int rc = 0;
    if (n->kind != SS_YSEQ) {
        rc = fail_at(ld, n, SS_ECONFIG, "expected a list, got %s", kind_name(n));
        goto out;
    }
    if ((rc = visit(ld, n, n->nkids + 1)) || !n->nkids)
        goto out;
    c->remote_writes = calloc(n->nkids, sizeof *c->remote_writes);
    refs = calloc(n->nkids, sizeof *refs);
    if (!c->remote_writes || !refs) {
        rc = fail_oom(ld);
        goto out;
    }
    c->nremote_writes = n->nkids;
    for (size_t i = 0; i < n->nkids && !rc; i++) {
        size_t m = path_index(ld, i);
        struct cfg_remote_write *rw = &c->remote_writes[i];
        rc = dec_remote_write(ld, n->kids[i], rw);
        /* Only non-empty names must be unique, as in Prometheus. */
        if (!rc && rw->name[0]) {
            refs[nrefs].at = ss_yaml_map_get(n->kids[i], "name");
            refs[nrefs].s = rw->name;
            refs[nrefs].idx = i;
            nrefs++;
        }
        path_pop(ld, m);
    }
    path_pop(ld, mark);
    if (!rc)
        rc = check_unique(ld, refs, nrefs, "remote_write", "remote write configs");
out:
    path_pop(ld, mark);
    free(refs);
    return rc;
}

/* storage: the disk queue for durable delivery. Each remote_write entry gets its own
 * directory under path; the bounds apply to each. */
static int dec_storage(struct loader *ld, const struct ss_ynode *n, struct cfg *c)
{
    static const char *const names[] = {"path", "max_disk_bytes", "max_age", "fsync_interval"};
    const struct ss_ynode *v[4], *k[4];
    size_t mark = path_field(ld, "storage");
    c->storage_max_disk_bytes = 1ULL << 30;
    c->storage_fsync_interval_ms = 1000;
    int rc = take_fields(ld, n, names, 4, v, k);
    if (!rc)
        rc = opt_str(ld, v[0], "path", &c->storage_path);
    if (!rc)
        rc = opt_size(ld, v[1], "max_disk_bytes", &c->storage_max_disk_bytes);
    if (!rc)
        rc = opt_dur(ld, v[2], "max_age", &c->storage_max_age_ms);
    if (!rc)
        rc = opt_dur(ld, v[3], "fsync_interval", &c->storage_fsync_interval_ms);
    path_pop(ld, mark);
    return rc;
}

/* monitor_discovery: ServiceMonitors and PodMonitors (README "Prometheus Operator
 * monitors"). */
static int dec_monitors(struct loader *ld, const struct ss_ynode *n, struct cfg_monitor_discovery *m)
{
    static const char *const names[] = {"service_monitors", "pod_monitors", "label_selector",  "namespaces",
                                        "node_name",        "shards",       "shard",           "api_server",
                                        "kubeconfig_file",  "read_secrets", "refresh_interval"};
    enum { N = sizeof names / sizeof names[0] };
    const struct ss_ynode *v[N], *k[N];
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "monitor_discovery");
    m->enabled = m->service_monitors = m->pod_monitors = m->read_secrets = true;
    m->refresh_interval_ms = 60 * 1000;
    m->line = n->line;
    bool set;
    int rc = take_fields(ld, n, names, N, v, k);
    rc = rc ?: opt_bool(ld, v[0], "service_monitors", &m->service_monitors);
    rc = rc ?: opt_bool(ld, v[1], "pod_monitors", &m->pod_monitors);
    rc = rc ?: opt_str(ld, v[2], "label_selector", &m->label_selector);
    rc = rc ?: dec_str_list(ld, v[3], "namespaces", &m->namespaces, &m->nnamespaces);
    rc = rc ?: opt_str(ld, v[4], "node_name", &m->node_name);
    rc = rc ?: opt_u64(ld, v[5], "shards", &m->shards, &set);
    rc = rc ?: opt_u64(ld, v[6], "shard", &m->shard, &set);
    rc = rc ?: opt_str(ld, v[7], "api_server", &m->api_server);
    rc = rc ?: opt_str(ld, v[8], "kubeconfig_file", &m->kubeconfig_file);
    rc = rc ?: opt_bool(ld, v[9], "read_secrets", &m->read_secrets);
    rc = rc ?: opt_dur(ld, v[10], "refresh_interval", &m->refresh_interval_ms);
    if (!rc && m->refresh_interval_ms < 1000)
        rc = fail_at(ld, v[10], SS_ECONFIG, "refresh_interval must be at least 1s");
    for (size_t i = 0; !rc && i < m->nnamespaces; i++) {
        const char *s = m->namespaces[i];
        bool ok = *s && strlen(s) <= 63;
        for (const char *c = s; *c && ok; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-';
        if (!ok)
            rc = fail_at(ld, v[3], SS_ECONFIG, "\"%s\" is not a valid namespace name", s);
    }
    if (!rc && m->shards && m->shard >= m->shards)
        rc = fail_at(ld, v[6] ? v[6] : n, SS_ECONFIG, "shard must be below shards (%llu)",
                     (unsigned long long)m->shards);
    if (!rc && m->shards > 1000000)
        rc = fail_at(ld, v[5], SS_ECONFIG, "shards must be at most 1000000");
    if (!rc && m->node_name && !*m->node_name)
        rc = fail_at(ld, v[4], SS_ECONFIG, "node_name is empty (is $NODE_NAME set?)");
    path_pop(ld, mark);
    return rc;
}

static int dec_root(struct loader *ld, const struct ss_ynode *root, struct cfg *c)
{
    static const char *const names[] = {"global", "scrape_configs", "remote_write", "storage",
                                        "monitor_discovery"};
    const struct ss_ynode *v[5], *k[5];
    int rc = take_fields(ld, root, names, 5, v, k);
    if (rc)
        return rc;
    /* global first: jobs inherit from it wherever it appears in the file. */
    if ((rc = dec_global(ld, v[0], &c->global)) || (rc = dec_scrape_configs(ld, v[1], c)) ||
        (rc = dec_remote_writes(ld, v[2], c)) || (rc = dec_storage(ld, v[3], c)) ||
        (rc = dec_monitors(ld, v[4], &c->monitors)))
        return rc;
    return 0;
}

static void free_strv(char **v, size_t n);
static void free_kv(struct cfg_kv *kv, size_t n);
static void cfg_free_scrapes(struct cfg_scrape *v, size_t n);

/* ======================================================================== */
/* OpenTelemetry collector configs (ADOT)                                   */
/* ======================================================================== */

/* An OTel collector config (top-level receivers / exporters / service) maps onto
 * the native config: the metrics pipelines' prometheus receivers give the scrape
 * jobs, their prometheusremotewrite (or legacy awsprometheusremotewrite) exporters
 * the remote_write entries, sigv4auth the signing, batch and memory_limiter the
 * queue. Components that do not run here (otlp, awsxray, traces pipelines, ...) are
 * accepted and listed in c->otel_ignored, so one startup warning and check-config can
 * say so. Defaults are those of opentelemetry-collector-contrib v0.98.0 (ADOT v0.39).
 * Values expand ${env:VAR}, ${VAR}, ${env:VAR:-default} and "$$" as the collector's
 * confmap does; inside the prometheus receiver that is why relabel replacements
 * read "$$1". */

#define OTEL_MAX_COMPONENTS 256 /* per section; real configs have a handful */

/* The component's type: "prometheus" of "prometheus/app". */
static bool otel_type_is(const struct ss_ynode *id, const char *type)
{
    size_t n = strlen(type);
    return id->kind == SS_YSCALAR && id->len >= n && !memcmp(id->text, type, n) &&
           (id->len == n || id->text[n] == '/');
}

static int otel_note(struct loader *ld, struct cfg *c, const char *fmt, const char *id, size_t idlen)
{
    if (c->notel_ignored >= OTEL_MAX_COMPONENTS * 4)
        return 0;
    char **v = realloc(c->otel_ignored, (c->notel_ignored + 1) * sizeof *v);
    if (!v)
        return fail_oom(ld);
    c->otel_ignored = v;
    char sb[SNIP_CAP], line[256];
    snprintf(line, sizeof line, fmt, snip(id, idlen, sb));
    if (!(v[c->notel_ignored] = strdup(line)))
        return fail_oom(ld);
    c->notel_ignored++;
    return 0;
}

/* A section (receivers, exporters, ...) must be a mapping of ids to settings. */
static int otel_section(struct loader *ld, const struct ss_ynode *n, const char *name)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, name);
    int rc = check_free_map(ld, n);
    if (!rc && n->nkids / 2 > OTEL_MAX_COMPONENTS)
        rc = fail_at(ld, n, SS_ELIMIT, "more than %d components", OTEL_MAX_COMPONENTS);
    path_pop(ld, mark);
    return rc;
}

/* The value of component id in section sec, or NULL (key node in *key). */
static const struct ss_ynode *otel_find(const struct ss_ynode *sec, const char *id, size_t len,
                                        const struct ss_ynode **key)
{
    for (size_t i = 0; present(sec) && sec->kind == SS_YMAP && i + 1 < sec->nkids; i += 2)
        if (sec->kids[i]->len == len && !memcmp(sec->kids[i]->text, id, len)) {
            if (key)
                *key = sec->kids[i];
            return sec->kids[i + 1];
        }
    return NULL;
}

static bool otel_defined(const struct ss_ynode *sec, const struct ss_ynode *id)
{
    const struct ss_ynode *k = NULL;
    otel_find(sec, id->text, id->len, &k);
    return k != NULL;
}

/* Pointers to the used ids (scalar nodes), deduplicated by text. */
struct otel_ids {
    const struct ss_ynode *v[OTEL_MAX_COMPONENTS];
    size_t n;
};

static void otel_ids_add(struct otel_ids *s, const struct ss_ynode *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i]->len == id->len && !memcmp(s->v[i]->text, id->text, id->len))
            return;
    if (s->n < OTEL_MAX_COMPONENTS)
        s->v[s->n++] = id;
}

static bool otel_ids_has(const struct otel_ids *s, const char *id, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i]->len == len && !memcmp(s->v[i]->text, id, len))
            return true;
    return false;
}

/* ---- receivers.prometheus ---------------------------------------------------- */

static int otel_receiver(struct loader *ld, const struct ss_ynode *id, const struct ss_ynode *n,
                         struct cfg *c, const struct ss_ynode **ext_at)
{
    static const char *const names[] = {"config",
                                        "target_allocator",
                                        "trim_metric_suffixes",
                                        "use_start_time_metric",
                                        "start_time_metric_regex",
                                        "report_extra_scrape_metrics"};
    enum { R_CONFIG, R_TA, R_TRIM, R_START, R_START_RE, R_EXTRA, R_N };
    static const char *const pnames[] = {"global", "scrape_configs"};
    const struct ss_ynode *v[R_N], *k[R_N], *pv[2], *pk[2];
    struct cfg tmp;
    bool b = false;
    char *re = NULL;
    memset(&tmp, 0, sizeof tmp);
    size_t mark = path_push(ld, "receivers.%.*s", (int)(id->len > 100 ? 100 : id->len), id->text);
    int rc = take_fields(ld, n, names, R_N, v, k);
    if (rc)
        goto out;
    if (k[R_TA]) {
        rc = fail_at(ld, k[R_TA], SS_ECONFIG,
                     "target_allocator is not supported yet: use kubernetes_sd_configs in config");
        goto out;
    }
    /* Accepted: they shape start timestamps and OTel metric names that the
     * exporter turns back into the same series; remote write 1.0 carries neither. */
    if ((rc = opt_bool(ld, v[R_TRIM], "trim_metric_suffixes", &b)) ||
        (rc = opt_bool(ld, v[R_START], "use_start_time_metric", &b)) ||
        (rc = opt_str(ld, v[R_START_RE], "start_time_metric_regex", &re)) ||
        (rc = opt_bool(ld, v[R_EXTRA], "report_extra_scrape_metrics", &b)))
        goto out;
    if (!present(v[R_CONFIG])) {
        rc = fail_at(ld, k[R_CONFIG] ? k[R_CONFIG] : n, SS_ECONFIG, "prometheus receiver needs a config");
        goto out;
    }
    size_t m2 = path_field(ld, "config");
    rc = take_fields(ld, v[R_CONFIG], pnames, 2, pv, pk);
    if (!rc)
        rc = dec_global(ld, pv[0], &tmp.global);
    if (!rc)
        rc = dec_scrape_configs(ld, pv[1], &tmp);
    path_pop(ld, m2);
    if (rc)
        goto out;
    if (tmp.global.nexternal_labels) {
        if (*ext_at) {
            rc = fail_at(ld, pv[0], SS_ECONFIG,
                         "external_labels in more than one prometheus receiver are not supported");
            goto out;
        }
        *ext_at = pv[0];
        c->global.external_labels = tmp.global.external_labels;
        c->global.nexternal_labels = tmp.global.nexternal_labels;
        tmp.global.external_labels = NULL;
        tmp.global.nexternal_labels = 0;
    }
    if (!c->nscrape_configs)
        c->global = (struct cfg_global){tmp.global.scrape_interval_ms, tmp.global.scrape_timeout_ms,
                                        c->global.external_labels, c->global.nexternal_labels};
    if (tmp.nscrape_configs) {
        struct cfg_scrape *all =
            realloc(c->scrape_configs, (c->nscrape_configs + tmp.nscrape_configs) * sizeof *all);
        if (!all) {
            rc = fail_oom(ld);
            goto out;
        }
        memcpy(all + c->nscrape_configs, tmp.scrape_configs, tmp.nscrape_configs * sizeof *all);
        c->scrape_configs = all;
        c->nscrape_configs += tmp.nscrape_configs;
        free(tmp.scrape_configs);
        tmp.scrape_configs = NULL;
        tmp.nscrape_configs = 0;
    }
out:
    free(re);
    free_kv(tmp.global.external_labels, tmp.global.nexternal_labels);
    cfg_free_scrapes(tmp.scrape_configs, tmp.nscrape_configs);
    path_pop(ld, mark);
    return rc;
}

/* ---- extensions.sigv4auth ------------------------------------------------------ */

static int otel_sigv4auth(struct loader *ld, const struct ss_ynode *n, struct cfg_sigv4 *s)
{
    static const char *const names[] = {"region", "service", "assume_role"};
    static const char *const anames[] = {"arn", "sts_region", "session_name"};
    const struct ss_ynode *v[3], *k[3], *av[3], *ak[3];
    s->enabled = true;
    int rc = take_fields(ld, n, names, 3, v, k);
    if (rc || (rc = opt_str(ld, v[0], "region", &s->region)) ||
        (rc = opt_str(ld, v[1], "service", &s->service)))
        return rc;
    if (present(v[2])) {
        size_t m = path_field(ld, "assume_role");
        rc = take_fields(ld, v[2], anames, 3, av, ak);
        if (!rc)
            rc = opt_str(ld, av[0], "arn", &s->role_arn);
        if (!rc)
            rc = opt_str(ld, av[1], "sts_region", &s->sts_region);
        if (!rc)
            rc = opt_str(ld, av[2], "session_name", &s->session_name);
        if (!rc && (s->sts_region || s->session_name) && !s->role_arn)
            rc = fail_at(ld, v[2], SS_ECONFIG, "assume_role needs an arn");
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (!s->service && !(s->service = strdup("aps")))
        return fail_oom(ld);
    return 0;
}

/* ---- exporters ----------------------------------------------------------------- */

static int otel_tls(struct loader *ld, const struct ss_ynode *n, struct cfg_tls *t, bool *insecure)
{
    static const char *const names[] = {
        "insecure",       "insecure_skip_verify", "ca_file",     "cert_file",
        "key_file",       "server_name_override", "min_version", "max_version",
        "reload_interval"};
    const struct ss_ynode *v[9], *k[9];
    char *maxv = NULL;
    int64_t reload = 0;
    size_t mark = path_field(ld, "tls");
    int rc = take_fields(ld, n, names, 9, v, k);
    if (rc || (rc = opt_bool(ld, v[0], "insecure", insecure)) ||
        (rc = opt_bool(ld, v[1], "insecure_skip_verify", &t->insecure_skip_verify)) ||
        (rc = opt_str(ld, v[2], "ca_file", &t->ca_file)) ||
        (rc = opt_str(ld, v[3], "cert_file", &t->cert_file)) ||
        (rc = opt_str(ld, v[4], "key_file", &t->key_file)) ||
        (rc = opt_str(ld, v[5], "server_name_override", &t->server_name)) ||
        (rc = opt_str(ld, v[6], "min_version", &t->min_version)) ||
        (rc = opt_str(ld, v[7], "max_version", &maxv)) ||
        (rc = opt_dur(ld, v[8], "reload_interval", &reload)))
        goto out;
    if (t->min_version) { /* "1.2" / "1.3" -> the native spelling */
        const char *nat = !strcmp(t->min_version, "1.3")   ? "TLS13"
                          : !strcmp(t->min_version, "1.2") ? "TLS12"
                                                           : NULL;
        if (!nat) {
            rc = fail_at(ld, v[6], SS_ECONFIG, "min_version must be \"1.2\" or \"1.3\"");
            goto out;
        }
        free(t->min_version);
        if (!(t->min_version = strdup(nat)))
            rc = fail_oom(ld);
    }
    if (!t->cert_file != !t->key_file)
        rc = fail_at(ld, n, SS_ECONFIG, "cert_file and key_file must be set together");
out:
    free(maxv);
    path_pop(ld, mark);
    return rc;
}

/* retry_on_failure, remote_write_queue, wal: the exporter's delivery settings. */
static int otel_delivery(struct loader *ld, const struct ss_ynode *const *v, int i_retry, int i_queue,
                         int i_wal, struct cfg_remote_write *rw, struct cfg *c,
                         const struct ss_ynode **wal_at)
{
    static const char *const rnames[] = {"enabled",          "initial_interval", "max_interval",
                                         "max_elapsed_time", "multiplier",       "randomization_factor"};
    static const char *const qnames[] = {"enabled", "queue_size", "num_consumers"};
    static const char *const wnames[] = {"directory", "buffer_size", "truncate_frequency"};
    const struct ss_ynode *rv[6], *rk[6], *qv[3], *qk[3], *wv[3], *wk[3];
    bool on = true;
    char *num = NULL;
    int64_t i64 = 0;
    int rc = 0;
    /* contrib v0.98 defaults: 50ms .. 30s backoff for 5m; 10000 queued, 5 consumers */
    rw->queue.min_backoff_ms = 50;
    rw->queue.max_backoff_ms = 30000;
    rw->queue.sample_age_limit_ms = 300000;
    rw->queue.max_shards = 5;
    if (present(v[i_retry])) {
        size_t m = path_field(ld, "retry_on_failure");
        rc = take_fields(ld, v[i_retry], rnames, 6, rv, rk);
        if (!rc)
            rc = opt_bool(ld, rv[0], "enabled", &on);
        if (!rc)
            rc = opt_dur(ld, rv[1], "initial_interval", &rw->queue.min_backoff_ms);
        if (!rc)
            rc = opt_dur(ld, rv[2], "max_interval", &rw->queue.max_backoff_ms);
        if (!rc)
            rc = opt_dur(ld, rv[3], "max_elapsed_time", &rw->queue.sample_age_limit_ms);
        if (!rc)
            rc = opt_str(ld, rv[4], "multiplier", &num);
        free(num);
        num = NULL;
        if (!rc)
            rc = opt_str(ld, rv[5], "randomization_factor", &num);
        free(num);
        num = NULL;
        if (!rc && (rw->queue.min_backoff_ms <= 0 || rw->queue.max_backoff_ms < rw->queue.min_backoff_ms))
            rc = fail_at(ld, v[i_retry], SS_ECONFIG, "need 0 < initial_interval <= max_interval");
        path_pop(ld, m);
        if (rc)
            return rc;
        if (!on) /* no retries: a failed send is dropped at once */
            rw->queue.sample_age_limit_ms = 1;
    }
    if (present(v[i_queue])) {
        size_t m = path_field(ld, "remote_write_queue");
        rc = take_fields(ld, v[i_queue], qnames, 3, qv, qk);
        if (!rc)
            rc = opt_bool(ld, qv[0], "enabled", &on);
        if (!rc)
            rc = opt_i64(ld, qv[1], "queue_size", &rw->queue.capacity);
        if (!rc)
            rc = opt_i64(ld, qv[2], "num_consumers", &rw->queue.max_shards);
        if (!rc && rw->queue.capacity < 1)
            rc = fail_at(ld, qv[1], SS_ECONFIG, "queue_size must be at least 1");
        if (!rc && rw->queue.max_shards < 1)
            rc = fail_at(ld, qv[2], SS_ECONFIG, "num_consumers must be at least 1");
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (present(v[i_wal])) {
        char *dir = NULL;
        size_t m = path_field(ld, "wal");
        rc = take_fields(ld, v[i_wal], wnames, 3, wv, wk);
        if (!rc)
            rc = opt_str(ld, wv[0], "directory", &dir);
        if (!rc)
            rc = opt_i64(ld, wv[1], "buffer_size", &i64);
        if (!rc)
            rc = opt_dur(ld, wv[2], "truncate_frequency", &i64);
        if (!rc && !dir)
            rc = fail_at(ld, v[i_wal], SS_ECONFIG, "wal needs a directory");
        if (!rc && c->storage_path && strcmp(c->storage_path, dir))
            rc = fail_at(ld, wv[0], SS_ECONFIG,
                         "a second wal directory (the first is at line %d): one disk queue directory serves "
                         "every exporter",
                         (*wal_at)->line);
        if (!rc && !c->storage_path) {
            c->storage_path = dir;
            dir = NULL;
            *wal_at = wv[0];
        }
        free(dir);
        path_pop(ld, m);
    }
    return rc;
}

static int otel_exporter(struct loader *ld, const struct ss_ynode *id, const struct ss_ynode *n,
                         const struct ss_ynode *extensions, const struct otel_ids *enabled_ext, struct cfg *c,
                         struct cfg_remote_write *rw, const struct ss_ynode **wal_at)
{
    static const char *const names[] = {"endpoint",
                                        "auth",
                                        "headers",
                                        "timeout",
                                        "tls",
                                        "compression",
                                        "namespace",
                                        "external_labels",
                                        "resource_to_telemetry_conversion",
                                        "target_info",
                                        "add_metric_suffixes",
                                        "send_metadata",
                                        "remote_write_queue",
                                        "retry_on_failure",
                                        "wal",
                                        "aws_auth",
                                        "max_batch_size_bytes",
                                        "export_created_metric",
                                        "proxy_url",
                                        "read_buffer_size",
                                        "write_buffer_size",
                                        "max_idle_conns",
                                        "idle_conn_timeout",
                                        "disable_keep_alives",
                                        "max_batch_request_parallelism"};
    enum {
        X_ENDPOINT,
        X_AUTH,
        X_HEADERS,
        X_TIMEOUT,
        X_TLS,
        X_COMPRESSION,
        X_NAMESPACE,
        X_EXTLABELS,
        X_RES2TEL,
        X_TARGET_INFO,
        X_SUFFIXES,
        X_METADATA,
        X_QUEUE,
        X_RETRY,
        X_WAL,
        X_AWS_AUTH,
        X_BATCH_BYTES,
        X_CREATED,
        X_PROXY,
        X_RBUF,
        X_WBUF,
        X_IDLE,
        X_IDLE_TO,
        X_NO_KEEPALIVE,
        X_PARALLEL,
        X_N
    };
    _Static_assert(sizeof names / sizeof names[0] == X_N, "field table");
    static const char *const url_schemes[] = {"http", "https", NULL};
    const struct ss_ynode *v[X_N], *k[X_N];
    bool legacy = otel_type_is(id, "awsprometheusremotewrite"), insecure = false, b = false;
    char *str = NULL;
    int64_t i64 = 0;
    int rc;

    rw->line = id->line;
    rw->remote_timeout_ms = 5000;
    rw->http.follow_redirects = true;
    rw->http.enable_http2 = true;
    otel_series_defaults(&rw->otel);
    /* the native defaults, then the exporter's */
    if ((rc = dec_queue(ld, NULL, &rw->queue)) || (rc = dec_metadata(ld, NULL, &rw->metadata)))
        return rc;
    rw->metadata.send = false;
    if (!(rw->name = strndup(id->text, id->len)))
        return fail_oom(ld);
    if ((rc = take_fields(ld, n, names, X_N, v, k)))
        return rc;
    if (k[X_AWS_AUTH] && !legacy)
        return fail_unknown(ld, k[X_AWS_AUTH]);
    if ((rc = opt_str(ld, v[X_ENDPOINT], "endpoint", &rw->url)))
        return rc;
    if (!rw->url)
        return fail_at(ld, present(v[X_ENDPOINT]) ? v[X_ENDPOINT] : (present(n) ? n : id), SS_ECONFIG,
                       "endpoint is required");
    const char *why = NULL;
    if (!url_valid(rw->url, url_schemes, &why)) {
        size_t m = path_field(ld, "endpoint");
        rc = fail_at(ld, v[X_ENDPOINT], SS_ECONFIG, "invalid endpoint: %s", why);
        path_pop(ld, m);
        return rc;
    }
    if ((rc = dec_kv_map(ld, v[X_HEADERS], "headers", KV_HEADERS, &rw->headers, &rw->nheaders)) ||
        (rc = opt_dur(ld, v[X_TIMEOUT], "timeout", &rw->remote_timeout_ms)))
        return rc;
    if (rw->remote_timeout_ms <= 0)
        return fail_at(ld, v[X_TIMEOUT], SS_ECONFIG, "timeout must be greater than 0");
    if (present(v[X_TLS]) && (rc = otel_tls(ld, v[X_TLS], &rw->http.tls, &insecure)))
        return rc;
    if (insecure && !strncmp(rw->url, "https:", 6))
        return fail_at(ld, v[X_TLS], SS_ECONFIG, "tls.insecure with an https endpoint");
    if ((rc = opt_str(ld, v[X_COMPRESSION], "compression", &str)))
        return rc;
    /* confighttp's "none" and "" add no HTTP compression: the exporter's own snappy
     * body, as here. */
    if (str && strcmp(str, "snappy") && strcmp(str, "none") && str[0]) {
        free(str);
        return fail_at(ld, v[X_COMPRESSION], SS_ECONFIG,
                       "compression must be snappy or none: remote write 1.0 bodies are snappy-compressed");
    }
    free(str);
    str = NULL;
    if ((rc = opt_str(ld, v[X_NAMESPACE], "namespace", &rw->otel.namespace)))
        return rc;
    if (rw->otel.namespace && !ss_label_name_valid(rw->otel.namespace, strlen(rw->otel.namespace)))
        return fail_at(ld, v[X_NAMESPACE], SS_ECONFIG, "namespace must be a valid metric name prefix");
    if ((rc = dec_kv_map(ld, v[X_EXTLABELS], "external_labels", KV_LABELS, &rw->otel.external_labels,
                         &rw->otel.nexternal_labels)))
        return rc;
    static const char *const en[] = {"enabled"};
    const struct ss_ynode *ev[1], *ek[1];
    if (present(v[X_RES2TEL])) {
        size_t m = path_field(ld, "resource_to_telemetry_conversion");
        rc = take_fields(ld, v[X_RES2TEL], en, 1, ev, ek);
        if (!rc)
            rc = opt_bool(ld, ev[0], "enabled", &rw->otel.resource_to_telemetry);
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (present(v[X_TARGET_INFO])) {
        size_t m = path_field(ld, "target_info");
        rc = take_fields(ld, v[X_TARGET_INFO], en, 1, ev, ek);
        if (!rc)
            rc = opt_bool(ld, ev[0], "enabled", &rw->otel.target_info);
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (present(v[X_CREATED])) {
        size_t m = path_field(ld, "export_created_metric");
        rc = take_fields(ld, v[X_CREATED], en, 1, ev, ek);
        if (!rc)
            rc = opt_bool(ld, ev[0], "enabled", &b);
        if (!rc && b)
            rc = fail_at(ld, ev[0], SS_ECONFIG, "export_created_metric is not supported yet");
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if ((rc = opt_bool(ld, v[X_SUFFIXES], "add_metric_suffixes", &rw->otel.add_metric_suffixes)) ||
        (rc = opt_bool(ld, v[X_METADATA], "send_metadata", &rw->metadata.send)) ||
        (rc = otel_delivery(ld, v, X_RETRY, X_QUEUE, X_WAL, rw, c, wal_at)) ||
        (rc = opt_size(ld, v[X_BATCH_BYTES], "max_batch_size_bytes", (uint64_t *)&i64)) ||
        (rc = opt_str(ld, v[X_PROXY], "proxy_url", &rw->http.proxy_url)) ||
        (rc = opt_size(ld, v[X_RBUF], "read_buffer_size", (uint64_t *)&i64)) ||
        (rc = opt_size(ld, v[X_WBUF], "write_buffer_size", (uint64_t *)&i64)) ||
        (rc = opt_i64(ld, v[X_IDLE], "max_idle_conns", &i64)) ||
        (rc = opt_dur(ld, v[X_IDLE_TO], "idle_conn_timeout", &i64)) ||
        (rc = opt_bool(ld, v[X_NO_KEEPALIVE], "disable_keep_alives", &b)) ||
        (rc = opt_i64(ld, v[X_PARALLEL], "max_batch_request_parallelism", &i64)))
        return rc;
    if (legacy && present(v[X_AWS_AUTH])) {
        static const char *const anames[] = {"region", "service", "role_arn"};
        const struct ss_ynode *av[3], *ak[3];
        size_t m = path_field(ld, "aws_auth");
        rw->sigv4.enabled = true;
        rc = take_fields(ld, v[X_AWS_AUTH], anames, 3, av, ak);
        if (!rc)
            rc = opt_str(ld, av[0], "region", &rw->sigv4.region);
        if (!rc)
            rc = opt_str(ld, av[1], "service", &rw->sigv4.service);
        if (!rc)
            rc = opt_str(ld, av[2], "role_arn", &rw->sigv4.role_arn);
        if (!rc && !rw->sigv4.service && !(rw->sigv4.service = strdup("aps")))
            rc = fail_oom(ld);
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (present(v[X_AUTH])) {
        static const char *const anames[] = {"authenticator"};
        const struct ss_ynode *av[1], *ak[1];
        size_t m = path_field(ld, "auth");
        char sb[SNIP_CAP];
        rc = take_fields(ld, v[X_AUTH], anames, 1, av, ak);
        if (!rc && (!present(av[0]) || av[0]->kind != SS_YSCALAR))
            rc = fail_at(ld, av[0] ? av[0] : v[X_AUTH], SS_ECONFIG, "auth needs an authenticator");
        const struct ss_ynode *ext = NULL, *ekey = NULL;
        if (!rc)
            ext = otel_find(extensions, av[0]->text, av[0]->len, &ekey);
        if (!rc && !ekey)
            rc = fail_at(ld, av[0], SS_ECONFIG, "authenticator \"%s\" is not defined in extensions",
                         snip(av[0]->text, av[0]->len, sb));
        else if (!rc && !otel_ids_has(enabled_ext, av[0]->text, av[0]->len))
            rc = fail_at(ld, av[0], SS_ECONFIG, "authenticator \"%s\" is not enabled in service.extensions",
                         snip(av[0]->text, av[0]->len, sb));
        else if (!rc && !otel_type_is(ekey, "sigv4auth"))
            rc = fail_at(ld, av[0], SS_ECONFIG,
                         "authenticator \"%s\" is not supported: only sigv4auth authenticates remote write",
                         snip(av[0]->text, av[0]->len, sb));
        path_pop(ld, m);
        if (rc)
            return rc;
        if (rw->sigv4.enabled)
            return fail_at(ld, v[X_AUTH], SS_ECONFIG, "auth and aws_auth are both set");
        size_t m2 = path_push(ld, "extensions.%.*s", (int)(ekey->len > 100 ? 100 : ekey->len), ekey->text);
        rc = otel_sigv4auth(ld, ext, &rw->sigv4);
        path_pop(ld, m2);
        if (rc)
            return rc;
    }
    return check_headers(ld, v[X_HEADERS], rw->sigv4.enabled);
}

/* ---- processors ---------------------------------------------------------------- */

static int otel_processors(struct loader *ld, const struct ss_ynode *procs, const struct otel_ids *used,
                           struct cfg *c)
{
    int rc = 0;
    for (size_t i = 0; i < used->n && !rc; i++) {
        const struct ss_ynode *id = used->v[i], *n = otel_find(procs, id->text, id->len, NULL);
        size_t mark = path_push(ld, "processors.%.*s", (int)(id->len > 100 ? 100 : id->len), id->text);
        if (otel_type_is(id, "batch")) {
            static const char *const names[] = {"timeout", "send_batch_size", "send_batch_max_size",
                                                "metadata_keys", "metadata_cardinality_limit"};
            const struct ss_ynode *v[5], *k[5];
            int64_t timeout = 200, size = 8192, max = 0, lim = 0; /* the processor's defaults */
            rc = take_fields(ld, n, names, 5, v, k);
            if (!rc)
                rc = opt_dur(ld, v[0], "timeout", &timeout);
            if (!rc)
                rc = opt_i64(ld, v[1], "send_batch_size", &size);
            if (!rc)
                rc = opt_i64(ld, v[2], "send_batch_max_size", &max);
            if (!rc)
                rc = opt_i64(ld, v[4], "metadata_cardinality_limit", &lim);
            if (!rc && present(v[3]))
                rc = fail_at(ld, v[3], SS_ECONFIG, "metadata_keys is not supported");
            if (!rc && (timeout <= 0 || size < 1 || max < 0))
                rc = fail_at(ld, n, SS_ECONFIG, "batch needs timeout > 0 and send_batch_size >= 1");
            if (!rc && max && max < size)
                size = max;
            /* batch -> each remote's send batching: samples per request and the wait */
            for (size_t r = 0; !rc && r < c->nremote_writes; r++) {
                c->remote_writes[r].queue.batch_send_deadline_ms = timeout;
                c->remote_writes[r].queue.max_samples_per_send = size;
            }
        } else if (otel_type_is(id, "memory_limiter")) {
            static const char *const names[] = {"check_interval", "limit_mib", "spike_limit_mib",
                                                "limit_percentage", "spike_limit_percentage"};
            const struct ss_ynode *v[5], *k[5];
            int64_t check = 0, lim = 0, spike = -1, pct = 0, spct = 0;
            rc = take_fields(ld, n, names, 5, v, k);
            if (!rc)
                rc = opt_dur(ld, v[0], "check_interval", &check);
            if (!rc)
                rc = opt_i64(ld, v[1], "limit_mib", &lim);
            if (!rc)
                rc = opt_i64(ld, v[2], "spike_limit_mib", &spike);
            if (!rc)
                rc = opt_i64(ld, v[3], "limit_percentage", &pct);
            if (!rc)
                rc = opt_i64(ld, v[4], "spike_limit_percentage", &spct);
            if (!rc && lim <= 0 && pct <= 0)
                rc = fail_at(ld, n, SS_ECONFIG, "memory_limiter needs limit_mib or limit_percentage");
            if (!rc && lim > 0) {
                /* The limiter refuses data above limit - spike (spike default: 20%); here
                 * that is the queues' memory bound, shared by the remotes. */
                if (spike < 0)
                    spike = lim / 5;
                int64_t soft = lim - spike;
                if (soft < 1 || spike >= lim)
                    rc = fail_at(ld, v[2] ? v[2] : n, SS_ECONFIG, "spike_limit_mib must be below limit_mib");
                uint64_t per = c->nremote_writes ? ((uint64_t)soft << 20) / c->nremote_writes : 0;
                if (per < (1ULL << 16))
                    per = 1ULL << 16;
                for (size_t r = 0; !rc && r < c->nremote_writes; r++)
                    c->remote_writes[r].queue.max_memory_bytes = per;
            } else if (!rc) {
                rc = otel_note(ld, c,
                               "processor %s: limit_percentage needs a cgroup limit; the queue keeps its "
                               "default memory bound",
                               id->text, id->len);
            }
        } else {
            rc = otel_note(ld, c, "processor %s: not implemented; metrics pass through unchanged", id->text,
                           id->len);
        }
        path_pop(ld, mark);
    }
    return rc;
}

/* ---- extensions ---------------------------------------------------------------- */

static int otel_extensions(struct loader *ld, const struct ss_ynode *exts, const struct otel_ids *enabled,
                           struct cfg *c)
{
    int rc = 0;
    for (size_t i = 0; i < enabled->n && !rc; i++) {
        const struct ss_ynode *id = enabled->v[i], *n = otel_find(exts, id->text, id->len, NULL);
        size_t mark = path_push(ld, "extensions.%.*s", (int)(id->len > 100 ? 100 : id->len), id->text);
        if (otel_type_is(id, "health_check")) {
            static const char *const names[] = {"endpoint", "path", "check_collector_pipeline", "tls",
                                                "response_body"};
            const struct ss_ynode *v[5], *k[5];
            char *ep = NULL, *path = NULL;
            rc = take_fields(ld, n, names, 5, v, k);
            if (!rc)
                rc = opt_str(ld, v[0], "endpoint", &ep);
            if (!rc)
                rc = opt_str(ld, v[1], "path", &path);
            if (!rc && path && strcmp(path, "/"))
                rc = fail_at(ld, v[1], SS_ECONFIG, "health_check path must be \"/\"");
            if (!rc && (present(v[3]) || present(v[2]) || present(v[4])))
                rc = fail_at(ld,
                             present(v[3])   ? v[3]
                             : present(v[2]) ? v[2]
                                             : v[4],
                             SS_ECONFIG, "health_check: only endpoint and path are supported");
            if (!rc && c->health_check_endpoint)
                rc = fail_at(ld, id, SS_ECONFIG, "more than one health_check extension");
            if (!rc) {
                c->health_check_endpoint = ep ? ep : strdup("0.0.0.0:13133");
                ep = NULL;
                if (!c->health_check_endpoint)
                    rc = fail_oom(ld);
            }
            free(ep);
            free(path);
        } else if (otel_type_is(id, "sigv4auth")) {
            struct cfg_sigv4 s; /* checked here; each exporter decodes its own copy */
            memset(&s, 0, sizeof s);
            rc = otel_sigv4auth(ld, n, &s);
            free(s.region);
            free(s.service);
            free(s.role_arn);
            free(s.sts_region);
            free(s.session_name);
        } else if (otel_type_is(id, "pprof") || otel_type_is(id, "zpages")) {
            rc = otel_note(ld, c, "extension %s: accepted, not served", id->text, id->len);
        } else {
            rc = otel_note(ld, c, "extension %s: not implemented", id->text, id->len);
        }
        path_pop(ld, mark);
    }
    return rc;
}

/* ---- service and the top level ------------------------------------------------------ */

/* A pipeline's receivers/processors/exporters list: every id defined in sec. */
static int otel_pipeline_list(struct loader *ld, const struct ss_ynode *list, const char *field,
                              const struct ss_ynode *sec, const char *what, const struct ss_ynode *pid)
{
    if (!present(list))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = 0;
    if (list->kind != SS_YSEQ)
        rc = fail_at(ld, list, SS_ECONFIG, "expected a list, got %s", kind_name(list));
    for (size_t i = 0; !rc && i < list->nkids; i++) {
        const struct ss_ynode *id = list->kids[i];
        char sb[SNIP_CAP], sb2[SNIP_CAP];
        if (id->kind != SS_YSCALAR || !id->len)
            rc = fail_at(ld, id, SS_ECONFIG, "expected a component id");
        else if (!otel_defined(sec, id))
            rc = fail_at(ld, id, SS_ECONFIG, "%s \"%s\" in pipeline \"%s\" is not defined in %ss", what,
                         snip(id->text, id->len, sb), snip(pid->text, pid->len, sb2), what);
    }
    path_pop(ld, mark);
    return rc;
}

static int otel_service(struct loader *ld, const struct ss_ynode *svc, const struct ss_ynode *const *sec,
                        struct cfg *c, struct otel_ids *recv, struct otel_ids *exp, struct otel_ids *proc,
                        struct otel_ids *ext)
{
    enum { S_RECV, S_PROC, S_EXP, S_EXT, S_CONN };
    static const char *const names[] = {"extensions", "pipelines", "telemetry"};
    static const char *const pnames[] = {"receivers", "processors", "exporters"};
    const struct ss_ynode *v[3], *k[3];
    size_t mark = path_field(ld, "service");
    int rc = take_fields(ld, svc, names, 3, v, k);
    if (rc)
        goto out;
    if (!present(svc) || !present(v[1])) {
        rc = fail_at(ld, present(svc) ? svc : k[1], SS_ECONFIG, "service.pipelines is required");
        goto out;
    }
    if (present(v[0])) {
        size_t m = path_field(ld, "extensions");
        if (v[0]->kind != SS_YSEQ)
            rc = fail_at(ld, v[0], SS_ECONFIG, "expected a list, got %s", kind_name(v[0]));
        for (size_t i = 0; !rc && i < v[0]->nkids; i++) {
            const struct ss_ynode *id = v[0]->kids[i];
            char sb[SNIP_CAP];
            if (id->kind != SS_YSCALAR || !otel_defined(sec[S_EXT], id))
                rc = fail_at(ld, id, SS_ECONFIG, "extension \"%s\" is not defined in extensions",
                             id->kind == SS_YSCALAR ? snip(id->text, id->len, sb) : "?");
            else
                otel_ids_add(ext, id);
        }
        path_pop(ld, m);
        if (rc)
            goto out;
    }
    const struct ss_ynode *pl = v[1];
    size_t m = path_field(ld, "pipelines");
    rc = check_free_map(ld, pl);
    /* Each prometheus receiver must go to the same exporters everywhere: the scrape
     * jobs all ship to every remote here. */
    const struct ss_ynode *route_at = NULL;
    struct otel_ids route = {.n = 0};
    for (size_t i = 0; !rc && i + 1 < pl->nkids; i += 2) {
        const struct ss_ynode *pid = pl->kids[i], *p = pl->kids[i + 1];
        const struct ss_ynode *pv[3], *pk[3];
        size_t m2 = path_push(ld, ".%.*s", (int)(pid->len > 100 ? 100 : pid->len), pid->text);
        rc = take_fields(ld, p, pnames, 3, pv, pk);
        if (!rc)
            rc = otel_pipeline_list(ld, pv[0], "receivers", sec[S_RECV], "receiver", pid);
        if (!rc)
            rc = otel_pipeline_list(ld, pv[1], "processors", sec[S_PROC], "processor", pid);
        if (!rc)
            rc = otel_pipeline_list(ld, pv[2], "exporters", sec[S_EXP], "exporter", pid);
        if (!rc && (!present(pv[0]) || !pv[0]->nkids || !present(pv[2]) || !pv[2]->nkids))
            rc = fail_at(ld, p, SS_ECONFIG, "a pipeline needs at least one receiver and one exporter");
        path_pop(ld, m2);
        if (rc)
            break;
        if (!otel_type_is(pid, "metrics")) {
            rc = otel_note(ld, c, "pipeline %s: only metrics pipelines run", pid->text, pid->len);
            continue;
        }
        struct otel_ids mine = {.n = 0}, prom = {.n = 0};
        for (size_t j = 0; j < pv[0]->nkids; j++) {
            if (otel_type_is(pv[0]->kids[j], "prometheus"))
                otel_ids_add(&prom, pv[0]->kids[j]);
        }
        for (size_t j = 0; j < pv[2]->nkids; j++)
            if (otel_type_is(pv[2]->kids[j], "prometheusremotewrite") ||
                otel_type_is(pv[2]->kids[j], "awsprometheusremotewrite"))
                otel_ids_add(&mine, pv[2]->kids[j]);
        if (!prom.n || !mine.n)
            continue; /* nothing of it runs; its parts are noted below */
        bool same = !route_at || route.n == mine.n;
        for (size_t j = 0; route_at && same && j < mine.n; j++)
            same = otel_ids_has(&route, mine.v[j]->text, mine.v[j]->len);
        if (!same) {
            rc = fail_at(ld, pv[2], SS_ECONFIG,
                         "metrics pipelines send prometheus receivers to different exporters (see line %d): "
                         "not supported, every scrape job ships to every exporter",
                         route_at->line);
            break;
        }
        if (!route_at) {
            route = mine;
            route_at = pv[2];
        }
        for (size_t j = 0; j < prom.n; j++)
            otel_ids_add(recv, prom.v[j]);
        for (size_t j = 0; j < mine.n; j++)
            otel_ids_add(exp, mine.v[j]);
        for (size_t j = 0; present(pv[1]) && j < pv[1]->nkids; j++)
            otel_ids_add(proc, pv[1]->kids[j]);
    }
    path_pop(ld, m);
out:
    path_pop(ld, mark);
    return rc;
}

static int dec_otel_root(struct loader *ld, const struct ss_ynode *root, struct cfg *c)
{
    static const char *const names[] = {"receivers",  "processors", "exporters", "extensions",
                                        "connectors", "service",    "scrapeship"};
    enum { S_RECV, S_PROC, S_EXP, S_EXT, S_CONN, S_SVC, S_OURS, S_N };
    const struct ss_ynode *v[S_N], *k[S_N];
    struct otel_ids recv = {.n = 0}, exp = {.n = 0}, proc = {.n = 0}, ext = {.n = 0};
    const struct ss_ynode *ext_at = NULL, *wal_at = NULL;
    bool compat_prometheus = false;
    int rc;

    ld->otel = true;
    c->otel = true;
    c->global.scrape_interval_ms = 60000;
    c->global.scrape_timeout_ms = 10000;
    if ((rc = take_fields(ld, root, names, S_N, v, k)))
        return rc;
    for (int i = 0; i < S_N - 2; i++)
        if ((rc = otel_section(ld, v[i], names[i])))
            return rc;
    if (present(v[S_OURS])) { /* scrapeship: {compat: otel|prometheus} */
        static const char *const onames[] = {"compat"};
        const struct ss_ynode *ov[1], *ok[1];
        char *compat = NULL;
        size_t m = path_field(ld, "scrapeship");
        rc = take_fields(ld, v[S_OURS], onames, 1, ov, ok);
        if (!rc)
            rc = opt_str(ld, ov[0], "compat", &compat);
        if (!rc && compat && strcmp(compat, "otel") && strcmp(compat, "prometheus"))
            rc = fail_at(ld, ov[0], SS_ECONFIG, "compat must be \"otel\" or \"prometheus\"");
        compat_prometheus = compat && !strcmp(compat, "prometheus");
        free(compat);
        path_pop(ld, m);
        if (rc)
            return rc;
    }
    if (!k[S_SVC])
        return fail_at(ld, root, SS_ECONFIG, "an OpenTelemetry collector config needs service.pipelines");
    if ((rc = otel_service(ld, v[S_SVC], v, c, &recv, &exp, &proc, &ext)))
        return rc;
    /* receivers: the prometheus ones in metrics pipelines run; the others are noted */
    for (size_t i = 0; present(v[S_RECV]) && i + 1 < v[S_RECV]->nkids && !rc; i += 2) {
        const struct ss_ynode *id = v[S_RECV]->kids[i];
        if (otel_ids_has(&recv, id->text, id->len))
            rc = otel_receiver(ld, id, v[S_RECV]->kids[i + 1], c, &ext_at);
        else if (otel_type_is(id, "prometheus"))
            rc = otel_note(ld, c, "receiver %s: in no metrics pipeline with a remote-write exporter",
                           id->text, id->len);
        else
            rc = otel_note(ld, c, "receiver %s: not implemented", id->text, id->len);
    }
    if (rc)
        return rc;
    /* job names are unique across receivers, as within one */
    struct nameref *refs = calloc(c->nscrape_configs + 1, sizeof *refs);
    if (!refs)
        return fail_oom(ld);
    for (size_t i = 0; i < c->nscrape_configs; i++)
        refs[i] = (struct nameref){c->scrape_configs[i].job_name, NULL, i};
    size_t m = path_field(ld, "receivers");
    rc = check_unique(ld, refs, c->nscrape_configs, "scrape_configs", "scrape configs");
    path_pop(ld, m);
    free(refs);
    if (rc)
        return rc;
    if (exp.n) {
        c->remote_writes = calloc(exp.n, sizeof *c->remote_writes);
        if (!c->remote_writes)
            return fail_oom(ld);
    }
    for (size_t i = 0; present(v[S_EXP]) && i + 1 < v[S_EXP]->nkids && !rc; i += 2) {
        const struct ss_ynode *id = v[S_EXP]->kids[i];
        if (otel_ids_has(&exp, id->text, id->len)) {
            size_t m2 = path_push(ld, "exporters.%.*s", (int)(id->len > 100 ? 100 : id->len), id->text);
            struct cfg_remote_write *rw = &c->remote_writes[c->nremote_writes++];
            rc = otel_exporter(ld, id, v[S_EXP]->kids[i + 1], v[S_EXT], &ext, c, rw, &wal_at);
            if (!rc && compat_prometheus)
                rw->otel.enabled = false;
            path_pop(ld, m2);
        } else {
            rc = otel_note(ld, c, "exporter %s: not implemented", id->text, id->len);
        }
    }
    if (!rc)
        rc = otel_processors(ld, v[S_PROC], &proc, c);
    if (!rc)
        rc = otel_extensions(ld, v[S_EXT], &ext, c);
    if (!rc && c->storage_path) {
        c->storage_max_disk_bytes = 1ULL << 30;
        c->storage_fsync_interval_ms = 1000;
    }
    return rc;
}

/* The top-level keys that only an OpenTelemetry collector config has. */
static bool is_otel_config(const struct ss_ynode *root)
{
    return root && root->kind == SS_YMAP &&
           (ss_yaml_map_get(root, "receivers") || ss_yaml_map_get(root, "exporters") ||
            ss_yaml_map_get(root, "service"));
}

/* ======================================================================== */
/* Public entry points                                                      */
/* ======================================================================== */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void free_kv(struct cfg_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free(kv[i].key);
        /* Header values are often API keys. */
        ss_free_secret(kv[i].value);
    }
    free(kv);
}

static void free_relabel(struct relabel_config *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free_strv(r[i].source_labels, r[i].nsource_labels);
        free(r[i].separator);
        free(r[i].target_label);
        free(r[i].regex);
        free(r[i].replacement);
    }
    free(r);
}

static void free_http(struct cfg_http_client *h)
{
    free(h->basic_auth_username);
    ss_free_secret(h->basic_auth_password);
    free(h->basic_auth_password_file);
    free(h->authorization_type);
    ss_free_secret(h->authorization_credentials);
    free(h->authorization_credentials_file);
    free(h->tls.ca_file);
    free(h->tls.cert_file);
    free(h->tls.key_file);
    free(h->tls.server_name);
    free(h->tls.min_version);
    free(h->tls.max_version);
    ss_free_secret(h->proxy_url); /* may carry user:password@ */
}

static void cfg_free_scrapes(struct cfg_scrape *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        struct cfg_scrape *sc = &v[i];
        free(sc->job_name);
        free(sc->metrics_path);
        free(sc->scheme);
        for (size_t p = 0; sc->params && p < sc->nparams; p++) {
            free(sc->params[p].name);
            free_strv(sc->params[p].values, sc->params[p].nvalues);
        }
        free(sc->params);
        for (size_t s = 0; sc->static_configs && s < sc->nstatic_configs; s++) {
            free_strv(sc->static_configs[s].targets, sc->static_configs[s].ntargets);
            free_kv(sc->static_configs[s].labels, sc->static_configs[s].nlabels);
        }
        free(sc->static_configs);
        for (size_t f = 0; sc->file_sd_configs && f < sc->nfile_sd_configs; f++)
            free_strv(sc->file_sd_configs[f].files, sc->file_sd_configs[f].nfiles);
        free(sc->file_sd_configs);
        for (size_t k = 0; sc->kubernetes_sd_configs && k < sc->nkubernetes_sd_configs; k++) {
            struct cfg_kube_sd *ks = &sc->kubernetes_sd_configs[k];
            free(ks->role);
            free(ks->api_server);
            free(ks->kubeconfig_file);
            free_strv(ks->namespaces, ks->nnamespaces);
            for (size_t s = 0; ks->selectors && s < ks->nselectors; s++) {
                free(ks->selectors[s].role);
                free(ks->selectors[s].label);
                free(ks->selectors[s].field);
            }
            free(ks->selectors);
            free_http(&ks->http);
        }
        free(sc->kubernetes_sd_configs);
        free_http(&sc->http);
        free_relabel(sc->relabel_configs, sc->nrelabel_configs);
        free_relabel(sc->metric_relabel_configs, sc->nmetric_relabel_configs);
    }
    free(v);
}

void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    free(c->source);
    free_kv(c->global.external_labels, c->global.nexternal_labels);
    cfg_free_scrapes(c->scrape_configs, c->nscrape_configs);
    for (size_t i = 0; c->remote_writes && i < c->nremote_writes; i++) {
        struct cfg_remote_write *rw = &c->remote_writes[i];
        ss_free_secret(rw->url);
        free(rw->name);
        free_kv(rw->headers, rw->nheaders);
        free_relabel(rw->write_relabel_configs, rw->nwrite_relabel_configs);
        free_http(&rw->http);
        free(rw->sigv4.region);
        ss_free_secret(rw->sigv4.access_key);
        ss_free_secret(rw->sigv4.secret_key);
        free(rw->sigv4.profile);
        free(rw->sigv4.role_arn);
        free(rw->sigv4.external_id);
        free(rw->sigv4.service);
        free(rw->sigv4.session_name);
        free(rw->sigv4.sts_region);
        free(rw->otel.namespace);
        free_kv(rw->otel.external_labels, rw->otel.nexternal_labels);
    }
    free(c->remote_writes);
    free(c->storage_path);
    free(c->health_check_endpoint);
    free_strv(c->otel_ignored, c->notel_ignored);
    cfg_monitors_free(&c->monitors);
    free(c);
}

void cfg_monitors_free(struct cfg_monitor_discovery *d)
{
    free(d->label_selector);
    free_strv(d->namespaces, d->nnamespaces);
    free(d->node_name);
    free(d->api_server);
    free(d->kubeconfig_file);
    memset(d, 0, sizeof *d);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? SS_ENOMEM : 0;
}

int cfg_monitors_copy(struct cfg_monitor_discovery *d, const struct cfg_monitor_discovery *s)
{
    *d = *s;
    d->label_selector = d->node_name = d->api_server = d->kubeconfig_file = NULL;
    d->namespaces = NULL;
    d->nnamespaces = 0;
    int rc = dup_opt(&d->label_selector, s->label_selector) ?: dup_opt(&d->node_name, s->node_name) ?:
             dup_opt(&d->api_server, s->api_server) ?: dup_opt(&d->kubeconfig_file, s->kubeconfig_file);
    if (!rc && s->nnamespaces && !(d->namespaces = calloc(s->nnamespaces, sizeof *d->namespaces)))
        rc = SS_ENOMEM;
    for (size_t i = 0; !rc && i < s->nnamespaces; i++, d->nnamespaces++)
        rc = dup_opt(&d->namespaces[i], s->namespaces[i]);
    if (rc)
        cfg_monitors_free(d);
    return rc;
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

bool cfg_monitors_equal(const struct cfg_monitor_discovery *a, const struct cfg_monitor_discovery *b)
{
    if (a->enabled != b->enabled || a->service_monitors != b->service_monitors ||
        a->pod_monitors != b->pod_monitors || a->shards != b->shards || a->shard != b->shard ||
        a->read_secrets != b->read_secrets || a->refresh_interval_ms != b->refresh_interval_ms ||
        a->nnamespaces != b->nnamespaces || !str_same(a->label_selector, b->label_selector) ||
        !str_same(a->node_name, b->node_name) || !str_same(a->api_server, b->api_server) ||
        !str_same(a->kubeconfig_file, b->kubeconfig_file))
        return false;
    for (size_t i = 0; i < a->nnamespaces; i++)
        if (!str_same(a->namespaces[i], b->namespaces[i]))
            return false;
    return true;
}

int cfg_load_string(const char *yaml, size_t len, const char *source_name, struct cfg **out, char *err,
                    size_t errlen)
{
    struct loader ld;
    struct ss_ytree *tree = NULL;
    struct ss_yaml_error yerr;
    const struct ss_ynode *root;
    struct cfg *c = NULL;
    int rc;

    memset(&ld, 0, sizeof ld);
    ld.source = source_name ? source_name : "<string>";
    if (!yaml) {
        yaml = "";
        len = 0;
    }
    ld.err = err;
    ld.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return SS_EINVAL;
    *out = NULL;
    if (len > CFG_MAX_FILE_BYTES) {
        if (err && errlen)
            snprintf(err, errlen, "%s: config is larger than %u bytes", ld.source, CFG_MAX_FILE_BYTES);
        return SS_ELIMIT;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->source = strdup(ld.source))) {
        rc = fail_oom(&ld);
        goto fail;
    }
    if (ss_yaml_parse(yaml, len, &tree_opts, &tree, &yerr) != 0) {
        rc = tree_fail(&ld, &yerr);
        goto fail;
    }
    root = ss_yaml_root(tree, 0); /* NULL for an empty file */
    if (root && root->kind != SS_YMAP && present(root)) {
        rc = fail_at(&ld, root, SS_ECONFIG, "expected a mapping at the top level, got %s", kind_name(root));
        goto fail;
    }
    if ((rc = is_otel_config(root) ? dec_otel_root(&ld, root, c) : dec_root(&ld, root, c)) != 0)
        goto fail;
    ss_yaml_free(tree);
    *out = c;
    return 0;
fail:
    ss_yaml_free(tree);
    cfg_free(c);
    return rc;
}

/* Read a whole config file, at most CFG_MAX_FILE_BYTES. The caller wipes and frees
 * *bufp (configs hold secrets). */
static int read_config_file(const char *path, char **bufp, size_t *lenp, char *err, size_t errlen)
{
    *bufp = NULL;
    *lenp = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return SS_EIO;
    }
    /* Read at most one byte past the limit, so pipes and growing files are bounded. */
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    for (;;) {
        if (!buf)
            break;
        if (len == cap) {
            if (cap > CFG_MAX_FILE_BYTES)
                break;
            size_t ncap = cap * 2 > (size_t)CFG_MAX_FILE_BYTES + 1 ? (size_t)CFG_MAX_FILE_BYTES + 1 : cap * 2;
            /* Grow by copying, not realloc, so no unwiped copy of a secret is freed. */
            char *nb = malloc(ncap);
            if (nb)
                memcpy(nb, buf, len);
            ss_wipe(buf, len);
            free(buf);
            buf = nb;
            cap = ncap;
            continue;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (!buf) {
        rc = SS_ENOMEM;
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
    } else if (ferror(f)) {
        rc = SS_EIO;
        if (err && errlen)
            snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    } else if (len > CFG_MAX_FILE_BYTES) {
        rc = SS_ELIMIT;
        if (err && errlen)
            snprintf(err, errlen, "%s: config file is larger than %u bytes", path, CFG_MAX_FILE_BYTES);
    }
    fclose(f);
    if (rc && buf) {
        ss_wipe(buf, len);
        free(buf);
        buf = NULL;
    }
    *bufp = buf;
    *lenp = len;
    return rc;
}

int cfg_load_file(const char *path, struct cfg **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !path)
        return SS_EINVAL;
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_config_file(path, &buf, &len, err, errlen);
    if (!rc)
        rc = cfg_load_string(buf, len, path, out, err, errlen);
    if (buf) {
        ss_wipe(buf, len);
        free(buf);
    }
    return rc;
}

const char *cfg_embedded_default(void)
{
    return "# scrapeship embedded default: scrape our own self-metrics endpoint.\n"
           "global:\n"
           "  scrape_interval: 5s\n"
           "scrape_configs:\n"
           "  - job_name: scrapeship\n"
           "    static_configs:\n"
           "      - targets: [\"127.0.0.1:9464\"]\n";
}

/* ======================================================================== */
/* The web config file (exporter toolkit format)                            */
/* ======================================================================== */

/* Go's tls.CipherSuites() as of Go 1.19 (Prometheus 2.42), with the GnuTLS priority
 * items of each TLS 1.2 suite. TLS 1.3 suites are accepted and, as in Go, not
 * configurable. */
static const struct cfg_web_cipher_suite web_suites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AES-128-GCM", "AEAD"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AES-256-GCM", "AEAD"},
    {"TLS_AES_128_GCM_SHA256", NULL, NULL, NULL},
    {"TLS_AES_256_GCM_SHA384", NULL, NULL, NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, NULL, NULL},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
};

static const struct {
    const char *name, *group;
} web_curves[] = {{"CurveP256", "GROUP-SECP256R1"},
                  {"CurveP384", "GROUP-SECP384R1"},
                  {"CurveP521", "GROUP-SECP521R1"},
                  {"X25519", "GROUP-X25519"}};

/* The index of `name` in a table of `count` entries `stride` bytes apart whose name
 * pointers start at `first`; an unknown name fails at its node ("unknown cipher: X",
 * as exporter-toolkit says). */
static long web_name_index(struct loader *ld, const struct ss_ynode *at, const char *what, const char *name,
                           const char *const *first, size_t count, size_t stride)
{
    for (size_t j = 0; j < count; j++)
        if (!strcmp(name, *(const char *const *)((const char *)first + j * stride)))
            return (long)j;
    char sb[SNIP_CAP];
    return fail_at(ld, at, SS_ECONFIG, "unknown %s: %s", what, snip(name, strlen(name), sb));
}

/* exporter-toolkit handler.go extraHTTPHeaders: the headers that may be set, and the
 * values allowed where they are an enumeration. */
static const struct {
    const char *name;
    const char *values[3];
} web_headers[] = {{"Strict-Transport-Security", {NULL}},
                   {"X-Content-Type-Options", {"nosniff", NULL}},
                   {"X-Frame-Options", {"deny", "sameorigin", NULL}},
                   {"X-XSS-Protection", {NULL}},
                   {"Content-Security-Policy", {NULL}}};

/* A bcrypt hash as Go's bcrypt.Cost accepts it and libxcrypt verifies it:
 * $2a$/$2b$/$2y$, a two-digit cost 4..31, 53 characters of salt and digest. */
static bool bcrypt_hash_valid(const char *h)
{
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$' ||
        !isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]) || h[6] != '$')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (size_t i = 7; i < 60; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '/')
            return false;
    return true;
}

static int web_tls_version(struct loader *ld, const struct ss_ynode *n, const char *field, unsigned *dst)
{
    static const char *const names[] = {"TLS10", "TLS11", "TLS12", "TLS13"};
    char *s = NULL;
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, field);
    int rc = scalar_text(ld, n, "a TLS version", &s);
    if (!rc) {
        size_t i = 0;
        while (i < 4 && strcmp(s, names[i]) != 0)
            i++;
        if (i < 4) {
            *dst = CFG_WEB_TLS10 + (unsigned)i;
        } else {
            char sb[SNIP_CAP];
            rc = fail_at(ld, n, SS_ECONFIG, "unknown TLS version \"%s\" (want TLS10, TLS11, TLS12 or TLS13)",
                         snip(s, strlen(s), sb));
        }
    }
    free(s);
    path_pop(ld, mark);
    return rc;
}

/* A relative path is relative to the web config file, as in the toolkit. */
static int web_path(struct loader *ld, const struct ss_ynode *n, const char *field, char **dst)
{
    char *s = NULL;
    int rc = opt_str(ld, n, field, &s);
    if (rc || !s || s[0] == '/') {
        *dst = s;
        return rc;
    }
    const char *slash = strrchr(ld->source, '/');
    if (!slash) {
        *dst = s;
        return 0;
    }
    size_t dl = (size_t)(slash - ld->source), sl = strlen(s);
    char *p = malloc(dl + 1 + sl + 1);
    if (!p) {
        free(s);
        return fail_oom(ld);
    }
    memcpy(p, ld->source, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, s, sl + 1);
    free(s);
    *dst = p;
    return 0;
}

static int dec_web_tls(struct loader *ld, const struct ss_ynode *n, struct cfg_web *w)
{
    static const char *const names[] = {"cert_file",      "key_file",      "client_auth_type",
                                        "client_ca_file", "cipher_suites", "curve_preferences",
                                        "min_version",    "max_version",   "prefer_server_cipher_suites"};
    enum { W_CERT, W_KEY, W_AUTH, W_CA, W_SUITES, W_CURVES, W_MIN, W_MAX, W_PREFER, W_N };
    const struct ss_ynode *v[W_N], *k[W_N];
    char *auth = NULL, **list = NULL;
    size_t nlist = 0;
    size_t mark = path_field(ld, "tls_server_config");
    int rc = take_fields(ld, n, names, W_N, v, k);
    if (!rc)
        rc = web_path(ld, v[W_CERT], "cert_file", &w->cert_file);
    if (!rc)
        rc = web_path(ld, v[W_KEY], "key_file", &w->key_file);
    if (!rc)
        rc = opt_str(ld, v[W_AUTH], "client_auth_type", &auth);
    if (!rc)
        rc = web_path(ld, v[W_CA], "client_ca_file", &w->client_ca_file);
    if (!rc)
        rc = web_tls_version(ld, v[W_MIN], "min_version", &w->min_version);
    if (!rc)
        rc = web_tls_version(ld, v[W_MAX], "max_version", &w->max_version);
    if (!rc)
        rc = opt_bool(ld, v[W_PREFER], "prefer_server_cipher_suites", &w->prefer_server_cipher_suites);
    if (!rc && auth) {
        static const struct {
            const char *name;
            enum cfg_web_client_auth mode;
        } modes[] = {{"NoClientCert", CFG_WEB_NO_CLIENT_CERT},
                     {"RequestClientCert", CFG_WEB_REQUEST_CLIENT_CERT},
                     {"RequireAnyClientCert", CFG_WEB_REQUIRE_ANY_CLIENT_CERT},
                     {"RequireClientCert", CFG_WEB_REQUIRE_ANY_CLIENT_CERT}, /* the toolkit's old name */
                     {"VerifyClientCertIfGiven", CFG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN},
                     {"RequireAndVerifyClientCert", CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT}};
        size_t i = 0;
        while (i < sizeof modes / sizeof modes[0] && strcmp(auth, modes[i].name) != 0)
            i++;
        if (i < sizeof modes / sizeof modes[0]) {
            w->client_auth = modes[i].mode;
        } else {
            char sb[SNIP_CAP];
            rc = fail_at(ld, v[W_AUTH], SS_ECONFIG,
                         "invalid client_auth_type \"%s\" (want NoClientCert, RequestClientCert, "
                         "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
                         snip(auth, strlen(auth), sb));
        }
    }
    if (!rc)
        rc = dec_str_list(ld, v[W_SUITES], "cipher_suites", &list, &nlist);
    if (!rc && nlist && !(w->cipher_suites = calloc(nlist, sizeof *w->cipher_suites)))
        rc = fail_oom(ld);
    for (size_t i = 0; i < nlist && !rc; i++) {
        long j = web_name_index(ld, v[W_SUITES]->kids[i], "cipher", list[i], &web_suites[0].name,
                                sizeof web_suites / sizeof web_suites[0], sizeof web_suites[0]);
        if (j < 0)
            rc = (int)j;
        else
            w->cipher_suites[w->ncipher_suites++] = &web_suites[j];
    }
    free_strv(list, nlist);
    list = NULL;
    nlist = 0;
    if (!rc)
        rc = dec_str_list(ld, v[W_CURVES], "curve_preferences", &list, &nlist);
    if (!rc && nlist && !(w->curves = calloc(nlist, sizeof *w->curves)))
        rc = fail_oom(ld);
    for (size_t i = 0; i < nlist && !rc; i++) {
        long j = web_name_index(ld, v[W_CURVES]->kids[i], "curve", list[i], &web_curves[0].name,
                                sizeof web_curves / sizeof web_curves[0], sizeof web_curves[0]);
        if (j < 0)
            rc = (int)j;
        else
            w->curves[w->ncurves++] = web_curves[j].group;
    }
    free_strv(list, nlist);
    /* exporter-toolkit ConfigToTLSConfig: any TLS field enables TLS, which then needs
     * a certificate and its key. */
    bool enabled = w->cert_file || w->key_file || w->client_ca_file || auth;
    if (!rc && enabled && !w->cert_file)
        rc = fail_at(ld, n, SS_ECONFIG, "missing cert_file");
    if (!rc && enabled && !w->key_file)
        rc = fail_at(ld, n, SS_ECONFIG, "missing key_file");
    if (!rc && w->client_ca_file && w->client_auth == CFG_WEB_NO_CLIENT_CERT)
        rc =
            fail_at(ld, k[W_CA], SS_ECONFIG, "client CA's have been configured without a Client Auth Policy");
    if (!rc && !w->client_ca_file &&
        (w->client_auth == CFG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
         w->client_auth == CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT))
        rc = fail_at(ld, v[W_AUTH], SS_ECONFIG, "client_auth_type %s needs client_ca_file to verify against",
                     auth);
    if (!rc && w->min_version > w->max_version)
        rc = fail_at(ld, v[W_MIN], SS_ECONFIG, "min_version is above max_version");
    w->tls = enabled;
    free(auth);
    path_pop(ld, mark);
    return rc;
}

static int dec_web_http(struct loader *ld, const struct ss_ynode *n, struct cfg_web *w)
{
    static const char *const names[] = {"http2", "headers"};
    const struct ss_ynode *v[2], *k[2];
    size_t mark = path_field(ld, "http_server_config");
    int rc = take_fields(ld, n, names, 2, v, k);
    if (!rc)
        rc = opt_bool(ld, v[0], "http2", &w->http2);
    if (!rc)
        rc = dec_kv_map(ld, v[1], "headers", KV_HEADERS, &w->headers, &w->nheaders);
    for (size_t i = 0; i < w->nheaders && !rc; i++) {
        const struct cfg_kv *h = &w->headers[i];
        const struct ss_ynode *kn = v[1]->kids[2 * i];
        size_t j = 0;
        char sb[SNIP_CAP];
        while (j < sizeof web_headers / sizeof web_headers[0] && strcmp(h->key, web_headers[j].name) != 0)
            j++;
        if (j == sizeof web_headers / sizeof web_headers[0]) {
            rc = fail_at(ld, kn, SS_ECONFIG, "HTTP header \"%s\" can not be configured",
                         snip(h->key, strlen(h->key), sb));
            break;
        }
        if (!web_headers[j].values[0])
            continue;
        bool ok = false;
        for (size_t m = 0; web_headers[j].values[m] && !ok; m++)
            ok = strcmp(h->value, web_headers[j].values[m]) == 0;
        if (!ok)
            rc = fail_at(ld, v[1]->kids[2 * i + 1], SS_ECONFIG, "invalid value for %s: \"%s\"", h->key,
                         snip(h->value, strlen(h->value), sb));
    }
    path_pop(ld, mark);
    return rc;
}

static int web_user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cfg_web_user *)a)->name, ((const struct cfg_web_user *)b)->name);
}

static int dec_web_users(struct loader *ld, const struct ss_ynode *n, struct cfg_web *w)
{
    if (!present(n))
        return 0;
    size_t mark = path_field(ld, "basic_auth_users");
    int rc = check_free_map(ld, n);
    size_t count = n->nkids / 2;
    if (rc || !count)
        goto out;
    if (!(w->users = calloc(count, sizeof *w->users))) {
        rc = fail_oom(ld);
        goto out;
    }
    for (size_t i = 0; i < count && !rc; i++) {
        const struct ss_ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        struct cfg_web_user *u = &w->users[w->nusers];
        if ((rc = scalar_text(ld, k, "a user name", &u->name)) != 0)
            break;
        w->nusers++;
        size_t m = path_field(ld, u->name);
        if (!present(v))
            rc = fail_at(ld, v, SS_ECONFIG, "the password hash is empty");
        else if (!(rc = scalar_text(ld, v, "a bcrypt hash", &u->hash)) && !bcrypt_hash_valid(u->hash))
            /* the hash itself is not shown: it is a secret */
            rc = fail_at(ld, v, SS_ECONFIG,
                         "not a bcrypt hash (want $2y$, $2b$ or $2a$, cost 04..31, 60 "
                         "characters)");
        path_pop(ld, m);
    }
    if (!rc)
        qsort(w->users, w->nusers, sizeof *w->users, web_user_cmp);
out:
    path_pop(ld, mark);
    return rc;
}

void cfg_web_free(struct cfg_web *w)
{
    if (!w)
        return;
    free(w->source);
    free(w->cert_file);
    free(w->key_file);
    free(w->client_ca_file);
    free(w->cipher_suites);
    free(w->curves);
    free_kv(w->headers, w->nheaders);
    for (size_t i = 0; i < w->nusers; i++) {
        free(w->users[i].name);
        ss_free_secret(w->users[i].hash);
    }
    free(w->users);
    free(w);
}

const char *cfg_web_user_hash(const struct cfg_web *w, const char *name)
{
    if (!w || !name)
        return NULL;
    struct cfg_web_user key = {.name = (char *)name};
    const struct cfg_web_user *u = bsearch(&key, w->users, w->nusers, sizeof *w->users, web_user_cmp);
    return u ? u->hash : NULL;
}

int cfg_web_load_string(const char *yaml, size_t len, const char *source_name, struct cfg_web **out,
                        char *err, size_t errlen)
{
    static const char *const names[] = {"tls_server_config", "http_server_config", "basic_auth_users"};
    const struct ss_ynode *v[3], *k[3];
    struct loader ld;
    struct ss_ytree *tree = NULL;
    struct ss_yaml_error yerr;
    struct cfg_web *w = NULL;
    int rc;

    memset(&ld, 0, sizeof ld);
    ld.source = source_name ? source_name : "<string>";
    ld.raw = true;
    ld.err = err;
    ld.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return SS_EINVAL;
    *out = NULL;
    if (!yaml) {
        yaml = "";
        len = 0;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        if (err && errlen)
            snprintf(err, errlen, "%s: web config is larger than %u bytes", ld.source, CFG_MAX_FILE_BYTES);
        return SS_ELIMIT;
    }
    w = calloc(1, sizeof *w);
    if (!w || !(w->source = strdup(ld.source))) {
        rc = fail_oom(&ld);
        goto fail;
    }
    w->min_version = CFG_WEB_TLS10 + 2;
    w->max_version = CFG_WEB_TLS13;
    w->prefer_server_cipher_suites = true;
    w->http2 = true;
    if (ss_yaml_parse(yaml, len, &tree_opts, &tree, &yerr) != 0) {
        rc = tree_fail(&ld, &yerr);
        goto fail;
    }
    const struct ss_ynode *root = ss_yaml_root(tree, 0);
    if (root && root->kind != SS_YMAP && present(root)) {
        rc = fail_at(&ld, root, SS_ECONFIG, "expected a mapping at the top level, got %s", kind_name(root));
        goto fail;
    }
    if ((rc = take_fields(&ld, root, names, 3, v, k)) != 0)
        goto fail;
    if (present(v[0]) && (rc = dec_web_tls(&ld, v[0], w)) != 0)
        goto fail;
    if (present(v[1]) && (rc = dec_web_http(&ld, v[1], w)) != 0)
        goto fail;
    if ((rc = dec_web_users(&ld, v[2], w)) != 0)
        goto fail;
    ss_yaml_free(tree);
    *out = w;
    return 0;
fail:
    ss_yaml_free(tree);
    cfg_web_free(w);
    return rc;
}

int cfg_web_load_file(const char *path, struct cfg_web **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !path)
        return SS_EINVAL;
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = read_config_file(path, &buf, &len, err, errlen);
    if (!rc)
        rc = cfg_web_load_string(buf, len, path, out, err, errlen);
    if (buf) {
        ss_wipe(buf, len);
        free(buf);
    }
    return rc;
}
