/* relabel.c: Prometheus relabel_config rules, compiled once and applied to label sets.
 *
 * The behaviour follows Prometheus 2.42 model/relabel to the letter: the same defaults,
 * the same relabel.Config.Validate checks and messages, and the same per-action
 * semantics (including quirks, which are called out where they occur). Regexes are
 * Go RE2 syntax, compiled for PCRE2 with RE2's meaning by re2pcre.c.
 *
 * Threading: a compiled rule owns its scratch buffers and PCRE2 match data, so that
 * processing allocates nothing in steady state. One rule must therefore not be used
 * by two threads at once; give each scrape loop its own compiled rules.
 */
#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include <openssl/evp.h>

#include "relabel.h"
#include "relabel_int.h"

#define COMPONENT "relabel"

/* Longest concatenated source value, expansion result or lower/upper-cased value we
 * handle. Longer values make the rule a no-op for that label set (logged). */
#define RELABEL_MAX_VALUE ((size_t)4 << 20)

/* ======================================================================== */
/* Action names                                                             */
/* ======================================================================== */

static const char *const action_names[] = {
    [RELABEL_REPLACE] = "replace",     [RELABEL_KEEP] = "keep",           [RELABEL_DROP] = "drop",
    [RELABEL_KEEPEQUAL] = "keepequal", [RELABEL_DROPEQUAL] = "dropequal", [RELABEL_HASHMOD] = "hashmod",
    [RELABEL_LABELMAP] = "labelmap",   [RELABEL_LABELDROP] = "labeldrop", [RELABEL_LABELKEEP] = "labelkeep",
    [RELABEL_LOWERCASE] = "lowercase", [RELABEL_UPPERCASE] = "uppercase",
};
#define NACTIONS (sizeof action_names / sizeof action_names[0])

/* ======================================================================== */
/* UTF-8 and Unicode helpers                                                */
/* ======================================================================== */

/* Go's unicode tables are approximated by glibc's C.UTF-8 locale (simple case mapping
 * and the alnum class). Created once, never freed; NULL means "ASCII only". */
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void utf8_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8_locale)
        utf8_locale = newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
}

static locale_t get_utf8_locale(void)
{
    pthread_once(&utf8_locale_once, utf8_locale_init);
    return utf8_locale;
}

/* unicode.ToLower / unicode.ToUpper for one rune. */
static int32_t rune_case(int32_t r, bool upper)
{
    if (r < 0x80) {
        if (upper && r >= 'a' && r <= 'z')
            return r - 32;
        if (!upper && r >= 'A' && r <= 'Z')
            return r + 32;
        return r;
    }
    locale_t loc = get_utf8_locale();
    if (!loc)
        return r;
    wint_t m = upper ? towupper_l((wint_t)r, loc) : towlower_l((wint_t)r, loc);
    if (m > 0x10FFFF || (m >= 0xD800 && m <= 0xDFFF))
        return r;
    return (int32_t)m;
}

/* unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' (Go regexp.Expand names). */
static bool rune_is_name_char(int32_t r)
{
    if (r < 0)
        return false;
    if (r < 0x80)
        return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
    locale_t loc = get_utf8_locale();
    return loc && iswalnum_l((wint_t)r, loc);
}

/* strings.ToLower / strings.ToUpper: ASCII input is mapped bytewise; otherwise every
 * rune is mapped and every invalid byte becomes U+FFFD, as strings.Map does. */
static int go_case_map(struct ss_buf *out, const char *s, size_t n, bool upper)
{
    ss_buf_reset(out);
    int rc = ss_buf_reserve(out, n);
    if (rc)
        return rc;
    size_t i = 0;
    while (i < n) {
        int32_t r;
        size_t w = ss_utf8_decode(s + i, n - i, &r);
        char enc[4];
        size_t elen = ss_utf8_encode(enc, r < 0 ? 0xFFFD : (uint32_t)rune_case(r, upper));
        if ((rc = ss_buf_append(out, enc, elen)))
            return rc;
        i += w;
    }
    return 0;
}

/* The language of Prometheus' relabelTarget regex
 * ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ : a leading letter, '_' or $-template,
 * then any mix of word characters and $-templates ($name or ${name}). */
static bool relabel_target_valid(const char *s)
{
    size_t i = 0, n = strlen(s);
    bool first = true;
    if (n == 0)
        return false;
    while (i < n) {
        char c = s[i];
        if (c == '$') {
            i++;
            if (i < n && s[i] == '{') {
                size_t j = i + 1;
                while (j < n && is_word(s[j]))
                    j++;
                if (j == i + 1 || j >= n || s[j] != '}')
                    return false;
                i = j + 1;
            } else {
                size_t j = i;
                while (j < n && is_word(s[j]))
                    j++;
                if (j == i)
                    return false;
                i = j;
            }
        } else if (first ? (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) : is_word(c)) {
            i++;
        } else {
            return false;
        }
        first = false;
    }
    return true;
}

/* Quote roughly as Go's %q does, for error messages. Truncates long strings. */
static void go_quote(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t tl;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tl = 2;
        } else if (c == '\n') {
            memcpy(tmp, "\\n", 2);
            tl = 2;
        } else if (c == '\t') {
            memcpy(tmp, "\\t", 2);
            tl = 2;
        } else if (c < 0x20 || c == 0x7F) {
            tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
        } else {
            tmp[0] = (char)c;
            tl = 1;
        }
        if (o + tl + 5 > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, tmp, tl);
        o += tl;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ======================================================================== */
/* Replacement templates (Go regexp.Expand)                                 */
/* ======================================================================== */

enum piece_kind { PIECE_LIT, PIECE_GROUP, PIECE_NAME };

struct tmpl_piece {
    enum piece_kind kind;
    size_t off, len; /* literal text or group name, in tmpl->src */
    long group;      /* PIECE_GROUP */
};

struct tmpl {
    char *src;
    size_t len;
    struct tmpl_piece *pieces;
    size_t npieces;
};

static int tmpl_push(struct tmpl *t, size_t *cap, enum piece_kind k, size_t off, size_t len, long group)
{
    if (k == PIECE_LIT && t->npieces && t->pieces[t->npieces - 1].kind == PIECE_LIT &&
        t->pieces[t->npieces - 1].off + t->pieces[t->npieces - 1].len == off) {
        t->pieces[t->npieces - 1].len += len;
        return 0;
    }
    if (t->npieces == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct tmpl_piece *np = realloc(t->pieces, ncap * sizeof *np);
        if (!np)
            return SS_ENOMEM;
        t->pieces = np;
        *cap = ncap;
    }
    t->pieces[t->npieces++] = (struct tmpl_piece){k, off, len, group};
    return 0;
}

/* Parse a template the way regexp.Expand walks it: "$$" is '$'; "$name" takes the
 * longest run of letters, digits and '_' ("$1x" is the group named "1x"); "${name}"
 * is braced; an all-digit name without leading zeros is a group number; a malformed
 * reference leaves the '$' as text. */
static int tmpl_parse(struct tmpl *t, const char *src)
{
    size_t cap = 0;
    memset(t, 0, sizeof *t);
    t->len = strlen(src);
    t->src = strdup(src);
    if (!t->src)
        return SS_ENOMEM;
    const char *s = t->src;
    size_t n = t->len, i = 0;
    int rc;
    while (i < n) {
        const char *d = memchr(s + i, '$', n - i);
        if (!d)
            return tmpl_push(t, &cap, PIECE_LIT, i, n - i, 0);
        size_t at = (size_t)(d - s);
        if (at > i && (rc = tmpl_push(t, &cap, PIECE_LIT, i, at - i, 0)))
            return rc;
        i = at + 1;
        if (i < n && s[i] == '$') {
            if ((rc = tmpl_push(t, &cap, PIECE_LIT, i, 1, 0)))
                return rc;
            i++;
            continue;
        }
        bool brace = i < n && s[i] == '{';
        size_t j = brace ? i + 1 : i, name = j;
        while (j < n) {
            int32_t r;
            size_t w = ss_utf8_decode(s + j, n - j, &r);
            if (!rune_is_name_char(r))
                break;
            j += w;
        }
        size_t nlen = j - name;
        if (nlen == 0 || (brace && (j >= n || s[j] != '}'))) {
            /* Malformed: '$' is plain text; go on right after it. */
            if ((rc = tmpl_push(t, &cap, PIECE_LIT, at, 1, 0)))
                return rc;
            continue;
        }
        long num = 0;
        for (size_t k = 0; k < nlen; k++) {
            if (s[name + k] < '0' || s[name + k] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (s[name + k] - '0');
        }
        if (s[name] == '0' && nlen > 1)
            num = -1;
        if (num >= 0)
            rc = tmpl_push(t, &cap, PIECE_GROUP, name, nlen, num);
        else
            rc = tmpl_push(t, &cap, PIECE_NAME, name, nlen, 0);
        if (rc)
            return rc;
        i = brace ? j + 1 : j;
    }
    return 0;
}

static void tmpl_free(struct tmpl *t)
{
    free(t->src);
    free(t->pieces);
    memset(t, 0, sizeof *t);
}

/* ======================================================================== */
/* Compiled rules                                                           */
/* ======================================================================== */

struct relabel_rule {
    enum relabel_action action;
    struct ss_str *source; /* source label names (owned strings) */
    size_t nsource;
    char *separator;
    size_t seplen;
    char *target; /* target_label as written ("" when unset) */
    size_t targetlen;
    struct tmpl target_tmpl; /* replace */
    struct tmpl repl_tmpl;   /* replace, labelmap */
    uint64_t modulus;

    struct relabel_regex regex;
    pcre2_match_data *md;
    size_t *spans; /* 2*(ngroups+1) offsets into the subject, SIZE_MAX unset */

    EVP_MD *md5; /* hashmod */
    EVP_MD_CTX *md5ctx;

    /* Scratch, reused across calls (hence one thread at a time per rule). */
    struct ss_buf val;  /* concatenated source values */
    struct ss_buf subj; /* subject with invalid UTF-8 replaced by U+FFFD */
    uint32_t *omap;     /* subj offset -> original offset */
    size_t omap_cap;
    struct ss_buf out_target;
    struct ss_buf out_value;
    struct ss_label *snap; /* labelmap: snapshot of the input set */
    size_t snap_cap;
    uint64_t errors;      /* match errors and limit hits, for rate-limited logs */
    int last_pcre2_error; /* PCRE2's code for the last failed match, for logs */
};

int relabel_action_parse(const char *s, enum relabel_action *out)
{
    if (!s || !out)
        return SS_EINVAL;
    /* Prometheus lower-cases with strings.ToLower before comparing. */
    char buf[32];
    size_t n = strlen(s), o = 0, i = 0;
    while (i < n) {
        int32_t r;
        size_t w = ss_utf8_decode(s + i, n - i, &r);
        r = r < 0 ? 0xFFFD : rune_case(r, false);
        if (r >= 0x80 || o + 1 >= sizeof buf)
            return SS_ECONFIG;
        buf[o++] = (char)r;
        i += w;
    }
    buf[o] = '\0';
    for (size_t k = 0; k < NACTIONS; k++)
        if (strcmp(buf, action_names[k]) == 0) {
            *out = (enum relabel_action)k;
            return 0;
        }
    return SS_ECONFIG;
}

const char *relabel_action_name(enum relabel_action a)
{
    return (unsigned)a < NACTIONS ? action_names[a] : "unknown";
}

void relabel_rule_free(struct relabel_rule *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nsource; i++)
        free((char *)r->source[i].p);
    free(r->source);
    free(r->separator);
    free(r->target);
    tmpl_free(&r->target_tmpl);
    tmpl_free(&r->repl_tmpl);
    pcre2_match_data_free(r->md);
    relabel_regex_free(&r->regex);
    free(r->spans);
    EVP_MD_CTX_free(r->md5ctx);
    EVP_MD_free(r->md5);
    ss_buf_free(&r->val);
    ss_buf_free(&r->subj);
    free(r->omap);
    ss_buf_free(&r->out_target);
    ss_buf_free(&r->out_value);
    free(r->snap);
    free(r);
}

/* Compile the regex ("(.*)" when unset) with RE2's meaning (re2pcre.c) and allocate
 * the match data the rule reuses. */
static int compile_regex(struct relabel_rule *r, const char *regex, char *err, size_t errlen)
{
    char why[320];
    int rc = relabel_regex_compile(regex, &r->regex, why, sizeof why);
    if (rc) {
        if (rc == SS_ECONFIG) {
            char qre[160];
            go_quote(qre, sizeof qre, regex);
            set_err(err, errlen, "invalid regex %s: %s", qre, why);
        }
        return rc;
    }
    r->md = pcre2_match_data_create_from_pattern(r->regex.code, NULL);
    r->spans = calloc(2 * ((size_t)r->regex.ngroups + 1), sizeof *r->spans);
    if (!r->md || !r->spans)
        return SS_ENOMEM;
    return 0;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

int relabel_compile(const struct relabel_config *cfg, struct relabel_rule **out, char *err, size_t errlen)
{
    struct relabel_rule *r = NULL;
    char q[160];
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!out || !cfg) {
        set_err(err, errlen, "relabel: no configuration");
        return SS_EINVAL;
    }
    *out = NULL;
    if (cfg->nsource_labels && !cfg->source_labels) {
        set_err(err, errlen, "relabel: source_labels count without a list");
        return SS_EINVAL;
    }
    enum relabel_action act = cfg->action;
    if ((unsigned)act >= NACTIONS) {
        set_err(err, errlen, "unknown relabel action %d", (int)act);
        return SS_ECONFIG;
    }
    const char *an = action_names[act];

    r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    r->action = act;
    ss_buf_init(&r->val, RELABEL_MAX_VALUE);
    ss_buf_init(&r->subj, 3 * RELABEL_MAX_VALUE);
    ss_buf_init(&r->out_target, RELABEL_MAX_VALUE);
    ss_buf_init(&r->out_value, RELABEL_MAX_VALUE);

    /* Fields are checked in the order Prometheus' YAML decoding meets them:
     * source_labels names, then the regex, then Config.Validate. */
    if (cfg->nsource_labels) {
        r->source = calloc(cfg->nsource_labels, sizeof *r->source);
        if (!r->source) {
            rc = SS_ENOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < cfg->nsource_labels; i++) {
        const char *ln = cfg->source_labels[i] ? cfg->source_labels[i] : "";
        if (!ss_label_name_valid(ln, strlen(ln))) {
            go_quote(q, sizeof q, ln);
            set_err(err, errlen, "%s is not a valid label name in 'source_labels'", q);
            rc = SS_ECONFIG;
            goto fail;
        }
        char *d = strdup(ln);
        if (!d) {
            rc = SS_ENOMEM;
            goto fail;
        }
        r->source[r->nsource++] = (struct ss_str){d, strlen(d)};
    }
    if ((rc = compile_regex(r, cfg->regex ? cfg->regex : "(.*)", err, errlen)))
        goto fail;

    const char *target = cfg->target_label ? cfg->target_label : "";
    const char *sep = cfg->separator ? cfg->separator : ";";
    const char *repl = cfg->replacement ? cfg->replacement : "$1";
    bool is_target = act == RELABEL_REPLACE || act == RELABEL_LOWERCASE || act == RELABEL_UPPERCASE ||
                     act == RELABEL_KEEPEQUAL || act == RELABEL_DROPEQUAL;
    bool is_equal = act == RELABEL_KEEPEQUAL || act == RELABEL_DROPEQUAL;

    /* relabel.Config.Validate (Prometheus 2.42), in its order, with its messages. */
    rc = SS_ECONFIG;
    if (act == RELABEL_HASHMOD && cfg->modulus == 0) {
        /* has_modulus does not matter: an explicit 0 is as invalid as a missing one. */
        set_err(err, errlen, "relabel configuration for hashmod requires non-zero modulus");
        goto fail;
    }
    if ((is_target || act == RELABEL_HASHMOD) && target[0] == '\0') {
        set_err(err, errlen, "relabel configuration for %s action requires 'target_label' value", an);
        goto fail;
    }
    if (is_target && !relabel_target_valid(target)) {
        go_quote(q, sizeof q, target);
        set_err(err, errlen, "%s is invalid 'target_label' for %s action", q, an);
        goto fail;
    }
    if ((act == RELABEL_LOWERCASE || act == RELABEL_UPPERCASE || is_equal) && strcmp(repl, "$1") != 0) {
        set_err(err, errlen, "'replacement' can not be set for %s action", an);
        goto fail;
    }
    if (act == RELABEL_LABELMAP && !relabel_target_valid(repl)) {
        go_quote(q, sizeof q, repl);
        set_err(err, errlen, "%s is invalid 'replacement' for %s action", q, an);
        goto fail;
    }
    if (act == RELABEL_HASHMOD && !ss_label_name_valid(target, strlen(target))) {
        go_quote(q, sizeof q, target);
        set_err(err, errlen, "%s is invalid 'target_label' for %s action", q, an);
        goto fail;
    }
    /* Prometheus compares the Regexp pointer with the default one here, so any regex
     * written in the config (even "(.*)") is rejected for keepequal/dropequal. */
    if (is_equal && (cfg->regex || cfg->modulus != 0 || strcmp(sep, ";") != 0 || strcmp(repl, "$1") != 0)) {
        set_err(err, errlen,
                "%s action requires only 'source_labels' and `target_label`, and no other fields", an);
        goto fail;
    }
    if ((act == RELABEL_LABELDROP || act == RELABEL_LABELKEEP) &&
        (cfg->nsource_labels > 0 || target[0] != '\0' || cfg->modulus != 0 || strcmp(sep, ";") != 0 ||
         strcmp(repl, "$1") != 0)) {
        set_err(err, errlen, "%s action requires only 'regex', and no other fields", an);
        goto fail;
    }

    rc = SS_ENOMEM;
    r->separator = dup_or(cfg->separator, ";");
    r->target = strdup(target);
    if (!r->separator || !r->target)
        goto fail;
    r->seplen = strlen(r->separator);
    r->targetlen = strlen(r->target);
    r->modulus = cfg->modulus;
    if (act == RELABEL_REPLACE && (rc = tmpl_parse(&r->target_tmpl, target)))
        goto fail;
    if ((act == RELABEL_REPLACE || act == RELABEL_LABELMAP) && (rc = tmpl_parse(&r->repl_tmpl, repl)))
        goto fail;
    if (act == RELABEL_HASHMOD) {
        r->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
        r->md5ctx = EVP_MD_CTX_new();
        if (!r->md5 || !r->md5ctx) {
            set_err(err, errlen, "hashmod: MD5 is not available from OpenSSL");
            rc = SS_ECONFIG;
            goto fail;
        }
    }
    if (act == RELABEL_LOWERCASE || act == RELABEL_UPPERCASE)
        (void)get_utf8_locale();
    *out = r;
    return 0;
fail:
    relabel_rule_free(r);
    return rc;
}

/* ======================================================================== */
/* Processing                                                               */
/* ======================================================================== */

static void rule_log(struct relabel_rule *r, int rc)
{
    /* Log the 1st, 2nd, 4th, 8th, ... occurrence per rule: enough to notice, never a flood. */
    r->errors++;
    if ((r->errors & (r->errors - 1)) != 0)
        return;
    char pmsg[128] = "";
    if (r->last_pcre2_error)
        pcre2_get_error_message(r->last_pcre2_error, (PCRE2_UCHAR *)pmsg, sizeof pmsg);
    ss_warn(COMPONENT, "%s rule skipped for a label set: %s%s%s (%" PRIu64 " times so far)",
            action_names[r->action], ss_strerror(rc), pmsg[0] ? ": " : "", pmsg, r->errors);
    r->last_pcre2_error = 0;
}

/* Match the rule's regex against s. Go matches invalid UTF-8 as U+FFFD per bad byte,
 * while PCRE2 refuses it, so such subjects are rewritten first and the group offsets
 * are mapped back. Returns 1 (match, r->spans set), 0 (no match) or < 0 (error). */
static int rule_match(struct relabel_rule *r, const char *s, size_t len)
{
    const char *subj = s ? s : "";
    size_t slen = len;
    bool mapped = false;
    if (!ss_utf8_valid(subj, len)) {
        ss_buf_reset(&r->subj);
        int rc = ss_buf_reserve(&r->subj, 3 * len); /* bounded by the buffer's maximum */
        if (rc)
            return rc;
        if (3 * len + 1 > r->omap_cap) {
            uint32_t *m = realloc(r->omap, (3 * len + 1) * sizeof *m);
            if (!m)
                return SS_ENOMEM;
            r->omap = m;
            r->omap_cap = 3 * len + 1;
        }
        size_t i = 0;
        while (i < len) {
            int32_t rr;
            size_t w = ss_utf8_decode(subj + i, len - i, &rr);
            size_t at = r->subj.len;
            if (rr < 0) {
                ss_buf_append(&r->subj, "\xEF\xBF\xBD", 3);
                r->omap[at] = r->omap[at + 1] = r->omap[at + 2] = (uint32_t)i;
            } else {
                ss_buf_append(&r->subj, subj + i, w);
                for (size_t k = 0; k < w; k++)
                    r->omap[at + k] = (uint32_t)(i + k);
            }
            i += w;
        }
        r->omap[r->subj.len] = (uint32_t)len;
        subj = r->subj.data;
        slen = r->subj.len;
        mapped = true;
    }
    int rc = pcre2_match(r->regex.code, (PCRE2_SPTR)subj, slen, 0, PCRE2_NO_UTF_CHECK, r->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(r->regex.code, (PCRE2_SPTR)subj, slen, 0, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, r->md,
                         NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        /* Match, depth and heap limits: RE2 has none, PCRE2 backtracks. */
        r->last_pcre2_error = rc;
        return (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
                rc == PCRE2_ERROR_JIT_STACKLIMIT)
                   ? SS_ELIMIT
               : rc == PCRE2_ERROR_NOMEMORY ? SS_ENOMEM
                                            : SS_EINVAL;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    for (uint32_t g = 0; g <= r->regex.ngroups; g++) {
        if ((int)g >= rc || ov[2 * g] == PCRE2_UNSET) {
            r->spans[2 * g] = r->spans[2 * g + 1] = SIZE_MAX;
        } else if (mapped) {
            r->spans[2 * g] = r->omap[ov[2 * g]];
            r->spans[2 * g + 1] = r->omap[ov[2 * g + 1]];
        } else {
            r->spans[2 * g] = ov[2 * g];
            r->spans[2 * g + 1] = ov[2 * g + 1];
        }
    }
    return 1;
}

/* regexp.Expand of tmpl against the last match on src. */
static int expand(struct relabel_rule *r, const struct tmpl *t, const char *src, struct ss_buf *out)
{
    ss_buf_reset(out);
    for (size_t i = 0; i < t->npieces; i++) {
        const struct tmpl_piece *pc = &t->pieces[i];
        long g = -1;
        int rc = 0;
        switch (pc->kind) {
        case PIECE_LIT: rc = ss_buf_append(out, t->src + pc->off, pc->len); break;
        case PIECE_GROUP: g = pc->group; break;
        case PIECE_NAME:
            /* The first group of that name that took part in the match. */
            for (uint32_t k = 1; k <= r->regex.ngroups; k++)
                if (r->regex.names[k] && strlen(r->regex.names[k]) == pc->len &&
                    memcmp(r->regex.names[k], t->src + pc->off, pc->len) == 0 &&
                    r->spans[2 * k] != SIZE_MAX) {
                    g = k;
                    break;
                }
            break;
        }
        if (g >= 0 && (uint64_t)g <= r->regex.ngroups && r->spans[2 * g] != SIZE_MAX)
            rc = ss_buf_append(out, src + r->spans[2 * g], r->spans[2 * g + 1] - r->spans[2 * g]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Sort a label snapshot by name (Go's labels are sorted, and labelmap's result
 * depends on that order when two names map to the same target). Shell sort: no
 * allocation, and label sets are small. */
static void snap_sort(struct ss_label *v, size_t n)
{
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            struct ss_label x = v[i];
            size_t j = i;
            while (j >= gap && ss_str_cmp(v[j - gap].name, x.name) > 0) {
                v[j] = v[j - gap];
                j -= gap;
            }
            v[j] = x;
        }
    }
}

enum { APPLY_DROP = 0, APPLY_KEEP = 1 };

static int apply_labelmap(struct relabel_rule *r, struct ss_labels *ls)
{
    /* Prometheus ranges over the rule's input while setting into a builder, so later
     * labels are seen with their original values: work from a sorted snapshot. */
    size_t n = ls->n;
    if (n > r->snap_cap) {
        struct ss_label *s = realloc(r->snap, n * sizeof *s);
        if (!s)
            return SS_ENOMEM;
        r->snap = s;
        r->snap_cap = n;
    }
    if (n)
        memcpy(r->snap, ls->v, n * sizeof *r->snap);
    snap_sort(r->snap, n);
    for (size_t i = 0; i < n; i++) {
        const struct ss_label *l = &r->snap[i];
        int m = rule_match(r, l->name.p, l->name.len);
        if (m < 0)
            return m;
        if (!m)
            continue;
        int rc = expand(r, &r->repl_tmpl, l->name.p ? l->name.p : "", &r->out_value);
        if (rc)
            return rc;
        /* 2.42 sets whatever name the expansion produced, unchecked. */
        rc = ss_labels_setc(ls, (struct ss_str){r->out_value.data ? r->out_value.data : "", r->out_value.len},
                            l->value);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_labelfilter(struct relabel_rule *r, struct ss_labels *ls, bool keep_matching)
{
    size_t j = 0;
    int err = 0;
    for (size_t i = 0; i < ls->n; i++) {
        int m = err ? 1 : rule_match(r, ls->v[i].name.p, ls->v[i].name.len);
        if (m < 0) {
            /* Keep this and every later label: an error never drops data silently. */
            err = m;
            m = keep_matching ? 1 : 0;
        }
        if ((m == 1) == keep_matching || err)
            ls->v[j++] = ls->v[i];
    }
    ls->n = j;
    return err;
}

static int apply(struct relabel_rule *r, struct ss_labels *ls, int *verdict)
{
    int rc, m;
    *verdict = APPLY_KEEP;

    ss_buf_reset(&r->val);
    for (size_t i = 0; i < r->nsource; i++) {
        if (i && (rc = ss_buf_append(&r->val, r->separator, r->seplen)))
            return rc;
        const struct ss_str *v = ss_labels_get(ls, r->source[i]);
        if (v && v->len && (rc = ss_buf_append(&r->val, v->p, v->len)))
            return rc;
    }
    const char *val = r->val.data ? r->val.data : "";
    size_t vlen = r->val.len;
    struct ss_str target = {r->target, r->targetlen};

    switch (r->action) {
    case RELABEL_DROP:
    case RELABEL_KEEP:
        if ((m = rule_match(r, val, vlen)) < 0)
            return m;
        if ((m == 1) == (r->action == RELABEL_DROP))
            *verdict = APPLY_DROP;
        return 0;
    case RELABEL_DROPEQUAL:
    case RELABEL_KEEPEQUAL: {
        const struct ss_str *tv = ss_labels_get(ls, target);
        struct ss_str have = tv ? *tv : (struct ss_str){"", 0};
        bool eq = ss_str_eq(have, (struct ss_str){val, vlen});
        if (eq == (r->action == RELABEL_DROPEQUAL))
            *verdict = APPLY_DROP;
        return 0;
    }
    case RELABEL_REPLACE: {
        if ((m = rule_match(r, val, vlen)) <= 0)
            return m; /* no match: no replacement */
        if ((rc = expand(r, &r->target_tmpl, val, &r->out_target)))
            return rc;
        /* 2.42 deletes the target label *as written* (not the expansion) both when
         * the expanded name is invalid and when the value is empty. */
        if (!ss_label_name_valid(r->out_target.data, r->out_target.len)) {
            ss_labels_del(ls, target);
            return 0;
        }
        if ((rc = expand(r, &r->repl_tmpl, val, &r->out_value)))
            return rc;
        if (r->out_value.len == 0) {
            ss_labels_del(ls, target);
            return 0;
        }
        return ss_labels_setc(ls, (struct ss_str){r->out_target.data, r->out_target.len},
                              (struct ss_str){r->out_value.data, r->out_value.len});
    }
    case RELABEL_LOWERCASE:
    case RELABEL_UPPERCASE:
        if ((rc = go_case_map(&r->out_value, val, vlen, r->action == RELABEL_UPPERCASE)))
            return rc;
        return ss_labels_setc(ls, target,
                              (struct ss_str){r->out_value.data ? r->out_value.data : "", r->out_value.len});
    case RELABEL_HASHMOD: {
        unsigned char dg[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        if (!EVP_DigestInit_ex(r->md5ctx, r->md5, NULL) || !EVP_DigestUpdate(r->md5ctx, val, vlen) ||
            !EVP_DigestFinal_ex(r->md5ctx, dg, &dlen) || dlen != 16)
            return SS_ENOMEM;
        /* Only the last 8 digest bytes, big-endian, as Prometheus' sum64 does. */
        uint64_t h = 0;
        for (int i = 8; i < 16; i++)
            h = (h << 8) | dg[i];
        char num[24];
        int nl = snprintf(num, sizeof num, "%" PRIu64, h % r->modulus);
        return ss_labels_setc(ls, target, (struct ss_str){num, (size_t)nl});
    }
    case RELABEL_LABELMAP: return apply_labelmap(r, ls);
    case RELABEL_LABELDROP: return apply_labelfilter(r, ls, false);
    case RELABEL_LABELKEEP: return apply_labelfilter(r, ls, true);
    }
    return 0;
}

bool relabel_process(struct relabel_rule *const *rules, size_t nrules, struct ss_labels *ls)
{
    for (size_t i = 0; i < nrules; i++) {
        struct relabel_rule *r = rules[i];
        if (!r)
            continue;
        int verdict;
        int rc = apply(r, ls, &verdict);
        if (rc) {
            /* The rule is skipped; the label set may be partly changed by it (labelmap,
             * labeldrop stop where the error struck). */
            rule_log(r, rc);
            continue;
        }
        if (verdict == APPLY_DROP)
            return false;
    }
    return true;
}
