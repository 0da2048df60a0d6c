/* parse.c: the streaming exposition parser for Prometheus text 0.0.4 and OpenMetrics 1.0.
 *
 * scrape_parser_feed() takes the body in chunks of any size. Complete lines are parsed
 * in place in the caller's buffer; only an unfinished trailing line is copied, into a
 * buffer bounded by max_line_len. Each sample goes to the callback as slices. Label
 * values and quoted names that hold escapes are unescaped into a scratch buffer that
 * is reserved once per line (unescaping never grows a string), so slices handed out
 * for one line never move and the steady state allocates nothing.
 *
 * Two levels of checking:
 *  - lenient (opts.strict = false, the scrape path) accepts what Prometheus 2.42's
 *    scrape parsers (model/textparse PromParser and OpenMetricsParser) accept, token
 *    rule for token rule, so we never fail a scrape that Prometheus would ingest.
 *    That includes its lexer's corners: a raw newline inside a quoted 0.0.4 label
 *    value, and a NUL where a 0.0.4 line starts ending the body. Repeated label names
 *    are refused because 2.42 fails such a scrape when it appends the sample. One
 *    deliberate difference: 2.42 fails an OpenMetrics scrape that puts an exemplar on
 *    a series not named *_total or *_bucket; later versions accept it, the textparse
 *    corpus expects it, and exemplars are dropped here anyway, so we accept it;
 *  - strict follows prometheus/common's expfmt.TextParser for text, and adds for
 *    OpenMetrics the family-level rules the OpenMetrics conformance suite checks
 *    (name clashes, grouping, histogram/counter value rules, exemplar placement and
 *    size, ...). Strict mode keeps per-body sets of names and groups in an arena; it is
 *    meant for validation and tests, not for the hot path.
 *
 * The `family` of a sample: in lenient mode it is the family named by the closest
 * preceding metadata (HELP/TYPE/UNIT) line when the sample's name is that name plus a
 * suffix the family's type allows, else the sample's own name with type unknown.
 * Strict OpenMetrics is the same except that such an unrelated sample starts a family
 * of its own (the reference parser's model); strict text follows prometheus/common,
 * which finds families by name anywhere in the body.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "scrape.h"
#include "sstext.h"

#define PARSER_DEFAULT_MAX_LINE ((size_t)1 << 20)
/* Internal: unwinds a line that ends inside a quoted string (with p->more set, which
 * only the lexer sets, so a callback's return value can never be mistaken for it). */
#define PARSE_MORE SS_EPARSE
/* OpenMetrics 1.0 §Exemplars: "The combined length of the label names and values of an
 * Exemplar's LabelSet MUST NOT exceed 128 UTF-8 character code points." */
#define OM_EXEMPLAR_MAX_RUNES 128
#define ERRMSG_MAX            256

/* ======================================================================== */
/* string sets for strict mode                                              */
/* ======================================================================== */

struct strset_ent {
    const char *s; /* NULL = empty slot */
    size_t len;
    uint64_t hash;
    void *val;
};

/* Open addressing, linear probing; keys live in the owner's arena. */
struct strset {
    struct strset_ent *v;
    size_t cap; /* power of two or 0 */
    size_t n;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct strset_ent *strset_get(const struct strset *t, const char *s, size_t n)
{
    if (!t->cap)
        return NULL;
    uint64_t h = hash_bytes(s, n);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        struct strset_ent *e = &t->v[i];
        if (!e->s)
            return NULL;
        if (e->hash == h && e->len == n && memcmp(e->s, s, n) == 0)
            return e;
    }
}

static int strset_grow(struct strset *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    struct strset_ent *nv = calloc(ncap, sizeof *nv);
    if (!nv)
        return SS_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        struct strset_ent *e = &t->v[i];
        if (!e->s)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (nv[j].s)
            j = (j + 1) & (ncap - 1);
        nv[j] = *e;
    }
    free(t->v);
    t->v = nv;
    t->cap = ncap;
    return 0;
}

/* Insert a copy of s (must not be present). */
static int strset_put(struct strset *t, struct ss_arena *a, const char *s, size_t n, void *val,
                      struct strset_ent **out)
{
    if ((t->n + 1) * 2 > t->cap) {
        int rc = strset_grow(t);
        if (rc)
            return rc;
    }
    char *copy = ss_arena_strndup(a, s, n);
    if (!copy)
        return SS_ENOMEM;
    uint64_t h = hash_bytes(s, n);
    size_t i = h & (t->cap - 1);
    while (t->v[i].s)
        i = (i + 1) & (t->cap - 1);
    t->v[i] = (struct strset_ent){copy, n, h, val};
    t->n++;
    if (out)
        *out = &t->v[i];
    return 0;
}

static void strset_clear(struct strset *t)
{
    if (t->v && t->n)
        memset(t->v, 0, t->cap * sizeof *t->v);
    t->n = 0;
}

static void strset_free(struct strset *t)
{
    free(t->v);
    t->v = NULL;
    t->cap = t->n = 0;
}

/* ======================================================================== */
/* parser state                                                             */
/* ======================================================================== */

/* Strict OpenMetrics: the family being read, as the conformance suite's reference
 * parser (prometheus_client's openmetrics parser) models it. */
struct om_family {
    bool active;
    struct ss_buf name;
    enum scrape_metric_type type;
    bool has_type, has_help, has_unit;
    struct ss_buf unit;
    size_t nsamples;
    /* grouping: the previous sample's group and timestamp */
    bool have_group;
    struct ss_buf group;
    bool group_has_ts;
    double group_ts;
    /* histogram/gaugehistogram checks for the current group and timestamp */
    bool h_active;
    bool h_has_bucket, h_has_count, h_neg_bucket, h_sum, h_gsum, h_neg_gsum;
    double h_bucket, h_value, h_count;
};

struct om_strict {
    struct ss_arena arena;
    struct strset names;  /* sample names claimed by finished families */
    struct strset groups; /* groups seen in the current family */
    struct om_family f;
    struct ss_buf key; /* group key being built */
};

/* Strict text: prometheus/common keeps a map of families by name. */
struct text_family {
    const char *name;
    size_t len;
    enum scrape_metric_type type;
    bool has_type; /* set by TYPE, or implicitly (untyped) by the first sample */
    bool has_help;
};

struct text_strict {
    struct ss_arena arena;
    struct strset fams;
};

struct label_vec {
    struct ss_label *v;
    size_t n, cap;
};

#define LENIENT_MEMO_MAX 96

struct scrape_parser {
    struct scrape_parser_opts opts; /* opts.format is the current body's format */
    size_t max_line;
    struct ss_buf partial; /* unfinished trailing line of earlier chunks */
    struct ss_buf scratch; /* unescaped strings of the current line */
    size_t scratch_used;
    struct ss_buf numbuf; /* NUL-terminated copy of a number for strtod */
    struct label_vec labels;
    struct label_vec elabels; /* exemplar labels */
    uint32_t *idx;            /* sort order for strict group keys */
    size_t idx_cap;
    /* lenient family tracking: the last metadata line's family */
    struct ss_buf fam;
    enum scrape_metric_type famtype;
    bool fam_set;
    /* the last sample name lenient_family looked at and whether it fit the family:
     * samples of one metric come one after another, and matching the suffixes again
     * for each was 3% of a scrape (memo_len 0: nothing remembered) */
    uint8_t memo_len;
    bool memo_fits;
    char memo_name[LENIENT_MEMO_MAX];
    uint32_t line;
    uint32_t pending_nl; /* newlines inside the quoted strings of the current line */
    bool more;           /* the current line goes on after its newline */
    bool final_line;     /* parsing the unterminated last line at finish */
    bool stopped;        /* text: a NUL where PromParser's lexer sees end of input */
    bool eof;            /* OpenMetrics: "# EOF" seen */
    int failed;          /* sticky error */
    char errmsg[ERRMSG_MAX];
    size_t errmsg_off;      /* where the message starts after "line N: " */
    const char *line_start; /* the current line, for error columns */
    size_t line_len;
    const char *errpos;       /* where the problem is, when the code that failed knew it */
    uint32_t errline, errcol; /* where the last error is (1-based) */
    struct om_strict *oms;
    struct text_strict *ts;
};

/* ======================================================================== */
/* errors                                                                   */
/* ======================================================================== */

/* Quote at most 40 bytes of s for an error message, Go %q style. */
static void quote_token(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    bool cut = n > 40;
    if (cut)
        n = 40;
    if (cap < 8)
        return;
    dst[o++] = '"';
    for (size_t i = 0; i < n && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c == '\t') {
            dst[o++] = '\\';
            dst[o++] = 't';
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    if (cut && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

static int fail(struct scrape_parser *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct scrape_parser *p, int err, const char *fmt, ...)
{
    int n = snprintf(p->errmsg, sizeof p->errmsg, "line %u: ", p->line);
    if (n < 0 || (size_t)n >= sizeof p->errmsg)
        n = 0;
    p->errmsg_off = (size_t)n;
    p->errline = p->line;
    p->errcol = 1;
    if (p->errpos && p->line_start && p->errpos >= p->line_start && p->errpos <= p->line_start + p->line_len)
        p->errcol = (uint32_t)(p->errpos - p->line_start) + 1;
    p->errpos = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg + n, sizeof p->errmsg - (size_t)n, fmt, ap);
    va_end(ap);
    p->failed = err;
    return err;
}

#define perr(p, ...) fail((p), SS_EPARSE, __VA_ARGS__)
/* The same, naming the column of pos in the current line. */
#define perr_at(p, pos, ...) ((p)->errpos = (pos), fail((p), SS_EPARSE, __VA_ARGS__))

/* Error naming the token at c (up to the next blank or the end of the line). */
static int perr_tok(struct scrape_parser *p, const char *what, const char *c, const char *e)
{
    char q[200];
    p->errpos = c;
    if (c >= e)
        return perr(p, "%s, got end of line", what);
    /* OpenMetrics tokens end at a space only (a tab is part of a bad token). */
    const bool om = p->opts.format == SCRAPE_FORMAT_OPENMETRICS;
    const char *t = c + 1;
    while (t < e && *t != ' ' && (om || *t != '\t'))
        t++;
    quote_token(q, sizeof q, c, (size_t)(t - c));
    return perr(p, "%s, got %s", what, q);
}

/* ======================================================================== */
/* lexical helpers                                                          */
/* ======================================================================== */

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}
static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static inline bool is_alpha_(char c)
{
    char l = (char)(c | 0x20);
    return (l >= 'a' && l <= 'z') || c == '_';
}
/* Metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*. */
static inline bool is_mname_start(char c)
{
    return is_alpha_(c) || c == ':';
}
static inline bool is_mname_char(char c)
{
    return is_alpha_(c) || is_digit(c) || c == ':';
}
static inline bool is_lname_start(char c)
{
    return is_alpha_(c);
}
static inline bool is_lname_char(char c)
{
    return is_alpha_(c) || is_digit(c);
}

static inline const char *skip_ws(const char *c, const char *e)
{
    while (c < e && is_ws(*c))
        c++;
    return c;
}

static inline bool str_is(struct ss_str s, const char *lit, size_t n)
{
    return s.len == n && memcmp(s.p, lit, n) == 0;
}
#define STR_IS(s, lit) str_is((s), (lit), sizeof(lit) - 1)

/* Code points in valid UTF-8 (continuation bytes do not start one). */
static size_t utf8_runes(const char *s, size_t n)
{
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += ((unsigned char)s[i] & 0xC0) != 0x80;
    return r;
}

/* Find the closing quote of a quoted string that starts just after the opening quote.
 * A backslash escapes any byte (the lexers' `\\.`). Reports whether the string holds
 * escapes or non-ASCII bytes, so the common case skips unescaping and UTF-8 checks. */
static const char *scan_quoted(const char *c, const char *e, bool *has_bs, bool *has_high)
{
    bool bs = false, hi = false;
    while (c < e) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '"') {
            *has_bs = bs;
            *has_high = hi;
            return c;
        }
        if (ch == '\\') {
            bs = true;
            if (c + 1 >= e) {
                /* A backslash before the newline: the lexers refuse `\` + newline. */
                *has_bs = true;
                return NULL;
            }
            hi |= (unsigned char)c[1] >= 0x80;
            c += 2;
            continue;
        }
        hi |= ch >= 0x80;
        c++;
    }
    *has_bs = false;
    return NULL;
}

/* An unterminated quoted string in a label set. PromParser's lexer lets a quoted
 * string run over a raw newline ([^\\"] includes \n), so in lenient text the line goes
 * on to the next newline; everywhere else it is an error. */
static int unterminated(struct scrape_parser *p, bool dangling_bs, const char *what)
{
    if (p->opts.format == SCRAPE_FORMAT_TEXT && !p->opts.strict && !p->final_line && !dangling_bs) {
        p->more = true;
        return PARSE_MORE;
    }
    return perr(p, "unterminated %s", what);
}

enum esc_rules {
    ESC_LENIENT,   /* \\ \" \n decoded; other escapes kept as written (Prometheus) */
    ESC_STRICT,    /* other escapes are an error (prometheus/common) */
    ESC_HELP_TEXT, /* 0.0.4 HELP in Prometheus: only \\ and \n decoded */
};

/* Unescape into dst (room for n bytes). Returns the length, or -1 on a bad escape. */
static long unescape(const char *s, size_t n, char *dst, enum esc_rules rules)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) {
            dst[o++] = c;
            continue;
        }
        char x = s[i + 1];
        if (x == '\\') {
            dst[o++] = '\\';
        } else if (x == 'n') {
            dst[o++] = '\n';
        } else if (x == '"' && rules != ESC_HELP_TEXT) {
            dst[o++] = '"';
        } else if (rules == ESC_STRICT) {
            return -1;
        } else {
            dst[o++] = '\\';
            dst[o++] = x;
        }
        i++;
    }
    return (long)o;
}

/* Room in the per-line scratch buffer (reserved to the line length at line start). */
static char *scratch_take(struct scrape_parser *p, size_t n)
{
    char *d = p->scratch.data + p->scratch_used;
    p->scratch_used += n;
    return d;
}

/* The contents of a quoted string [q0, q1): checked for UTF-8, unescaped if needed. */
static int quoted_string(struct scrape_parser *p, const char *q0, const char *q1, bool has_bs, bool has_high,
                         enum esc_rules rules, const char *what, struct ss_str *out)
{
    size_t n = (size_t)(q1 - q0);
    if (has_high && !ss_utf8_valid(q0, n)) {
        char q[200];
        quote_token(q, sizeof q, q0, n);
        return perr(p, "invalid UTF-8 in %s %s", what, q);
    }
    if (!has_bs) {
        *out = (struct ss_str){q0, n};
        return 0;
    }
    char *d = scratch_take(p, n);
    long m = unescape(q0, n, d, rules);
    if (m < 0) {
        char q[200];
        quote_token(q, sizeof q, q0, n);
        return perr(p, "invalid escape sequence in %s %s", what, q);
    }
    *out = (struct ss_str){d, (size_t)m};
    return 0;
}

/* ======================================================================== */
/* numbers                                                                  */
/* ======================================================================== */

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Case-insensitive compare against a lower-case ASCII literal. */
static bool ci_eq(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (c != lower[i])
            return false;
    }
    return true;
}

/* Parse a float as Go's strconv.ParseFloat does, without the forms Prometheus'
 * parseFloat refuses ('p', 'P', '_': hex floats and digit separators; Go has no hex
 * float without a 'p' exponent). Accepted: [+-]digits[.digits][e[+-]digits],
 * [+-]inf, [+-]infinity, nan (case-insensitive). Overflow fails like Go's ErrRange;
 * underflow rounds to zero as Go does. */
/* Are q[0..8) all ASCII digits? Then *v is their value: the digits checked and
 * combined a word at a time (pairs, then quads, then the eight), little-endian. */
static inline bool eight_digits(const char *q, uint64_t *v)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    (void)q, (void)v;
    return false; /* the byte loop reads them */
#endif
    uint64_t x;
    memcpy(&x, q, 8);
    /* every byte 0x30..0x39: high nibble 3, and adding 6 does not carry out of it */
    if (((x & 0xF0F0F0F0F0F0F0F0u) | (((x + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) !=
        0x3333333333333333u)
        return false;
    x = ((x & 0x0F0F0F0F0F0F0F0Fu) * 2561) >> 8;
    x = ((x & 0x00FF00FF00FF00FFu) * 6553601) >> 16;
    *v = ((x & 0x0000FFFF0000FFFFu) * 42949672960001u) >> 32;
    return true;
}

static bool parse_float(struct scrape_parser *p, const char *s, size_t n, double *out)
{
    if (n == 0)
        return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i < n && ((s[i] | 0x20) == 'i' || (s[i] | 0x20) == 'n')) {
        size_t m = n - i;
        if ((m == 3 && ci_eq(s + i, "inf", 3)) || (m == 8 && ci_eq(s + i, "infinity", 8))) {
            *out = neg ? -INFINITY : INFINITY;
            return true;
        }
        if (i == 0 && m == 3 && ci_eq(s, "nan", 3)) {
            /* Go's strconv.ParseFloat returns math.NaN(), bits 0x7FF8000000000001:
             * ship the same bits Prometheus would (never the stale-marker NaN). */
            uint64_t bits = 0x7FF8000000000001ULL;
            memcpy(out, &bits, sizeof *out);
            return true;
        }
        return false;
    }
    /* The common case first, in a tight loop: [digits][.digits] with at most 19
     * digits, a value below 2^53 and at most 22 decimals (Clinger's fast path below,
     * with leading zeros simply adding nothing): 0.2 of the parser's instructions per
     * sample were spent on the general loop's bookkeeping. */
    {
        const char *q = s + i, *e = s + n;
        uint64_t m = 0;
        int nd = 0, frac = 0;
        /* counters are long runs of digits: 8 at a time while they last */
        for (uint64_t v8; e - q >= 8 && nd <= 11 && eight_digits(q, &v8); q += 8, nd += 8)
            m = m * 100000000u + v8;
        while (q < e && is_digit(*q) && nd < 19) {
            m = m * 10 + (uint64_t)(*q++ - '0');
            nd++;
        }
        if (q < e && *q == '.') {
            const char *f = ++q;
            while (q < e && is_digit(*q) && nd < 19) {
                m = m * 10 + (uint64_t)(*q++ - '0');
                nd++;
            }
            frac = (int)(q - f);
        }
        if (q == e && nd > 0 && m < ((uint64_t)1 << 53) && frac <= 22) {
            double v = frac ? (double)m / pow10_exact[frac] : (double)m;
            *out = neg ? -v : v;
            return true;
        }
    }
    uint64_t mant = 0;
    int ndig = 0, dexp = 0;
    bool sawdig = false, sawdot = false, exact = true;
    for (; i < n; i++) {
        char c = s[i];
        if (is_digit(c)) {
            sawdig = true;
            if (mant == 0 && c == '0') {
                if (sawdot)
                    dexp--;
                continue;
            }
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(c - '0');
                ndig++;
                if (sawdot)
                    dexp--;
            } else {
                if (c != '0')
                    exact = false;
                if (!sawdot)
                    dexp++;
            }
            continue;
        }
        if (c == '.' && !sawdot) {
            sawdot = true;
            continue;
        }
        break;
    }
    if (!sawdig)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= n || !is_digit(s[i]))
            return false;
        int e = 0;
        for (; i < n && is_digit(s[i]); i++)
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        dexp += eneg ? -e : e;
    }
    if (i != n)
        return false;
    /* Clinger's fast path: a mantissa below 2^53 and 10^k with k <= 22 are exact
     * doubles, so one multiplication or division rounds correctly. */
    if (exact && mant < ((uint64_t)1 << 53) && dexp >= -22 && dexp <= 22) {
        double v = (double)mant;
        v = dexp < 0 ? v / pow10_exact[-dexp] : v * pow10_exact[dexp];
        *out = neg ? -v : v;
        return true;
    }
    /* Slow path: strtod in the "C" locale (the process never calls setlocale). */
    char stack[64];
    char *z = stack;
    if (n >= sizeof stack) {
        ss_buf_reset(&p->numbuf);
        if (ss_buf_append(&p->numbuf, s, n))
            return false;
        z = p->numbuf.data;
    } else {
        memcpy(stack, s, n);
        stack[n] = '\0';
    }
    char *end;
    errno = 0;
    double v = strtod(z, &end);
    if (end != z + n)
        return false;
    if (errno == ERANGE && isinf(v))
        return false;
    *out = v;
    return true;
}

/* strconv.ParseInt(s, 10, 64); the sign is allowed only where the caller says. */
static bool parse_int64(const char *s, size_t n, bool allow_sign, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && allow_sign && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i >= n)
        return false;
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* OpenMetrics timestamps are seconds; Prometheus 2.42 stores int64(ts*1000). Go's
 * out-of-range float-to-int conversion yields INT64_MIN on amd64; C leaves it
 * undefined, so clamp to that. */
static int64_t om_seconds_to_ms(double sec)
{
    double ms = sec * 1000.0;
    if (!(ms > -9223372036854775808.0 && ms < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)ms;
}

/* ======================================================================== */
/* types and suffixes                                                       */
/* ======================================================================== */

const char *scrape_metric_type_name(enum scrape_metric_type t)
{
    switch (t) {
    case SCRAPE_TYPE_UNKNOWN: return "unknown";
    case SCRAPE_TYPE_COUNTER: return "counter";
    case SCRAPE_TYPE_GAUGE: return "gauge";
    case SCRAPE_TYPE_HISTOGRAM: return "histogram";
    case SCRAPE_TYPE_GAUGEHISTOGRAM: return "gaugehistogram";
    case SCRAPE_TYPE_SUMMARY: return "summary";
    case SCRAPE_TYPE_INFO: return "info";
    case SCRAPE_TYPE_STATESET: return "stateset";
    }
    return "unknown";
}

enum scrape_format scrape_format_from_content_type(const char *ct)
{
    /* Prometheus 2.42 textparse.New: mime.ParseMediaType, then an exact media type
     * match; the type is case-insensitive and parameters do not matter. */
    static const char om[] = "application/openmetrics-text";
    if (!ct)
        return SCRAPE_FORMAT_TEXT;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = 0;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
        n++;
    if (n == sizeof om - 1 && strncasecmp(ct, om, n) == 0)
        return SCRAPE_FORMAT_OPENMETRICS;
    return SCRAPE_FORMAT_TEXT;
}

static const char *const sfx_plain[] = {"", NULL};
static const char *const sfx_text_summary[] = {"", "_sum", "_count", NULL};
static const char *const sfx_text_hist[] = {"", "_bucket", "_sum", "_count", NULL};
static const char *const sfx_text_ghist[] = {"", "_bucket", "_sum", "_count", "_gsum", "_gcount", NULL};
/* OpenMetrics 1.0 §Metric types, as the reference parser lists them (strict). */
static const char *const sfx_om_counter[] = {"_total", "_created", NULL};
static const char *const sfx_om_summary[] = {"", "_sum", "_count", "_created", NULL};
static const char *const sfx_om_hist[] = {"_count", "_sum", "_bucket", "_created", NULL};
static const char *const sfx_om_ghist[] = {"_gcount", "_gsum", "_bucket", NULL};
static const char *const sfx_om_info[] = {"_info", NULL};

static const char *const *suffixes(enum scrape_format f, enum scrape_metric_type t)
{
    if (f == SCRAPE_FORMAT_TEXT) {
        switch (t) {
        case SCRAPE_TYPE_SUMMARY: return sfx_text_summary;
        case SCRAPE_TYPE_HISTOGRAM: return sfx_text_hist;
        case SCRAPE_TYPE_GAUGEHISTOGRAM: return sfx_text_ghist;
        default: return sfx_plain;
        }
    }
    switch (t) {
    case SCRAPE_TYPE_COUNTER: return sfx_om_counter;
    case SCRAPE_TYPE_SUMMARY: return sfx_om_summary;
    case SCRAPE_TYPE_HISTOGRAM: return sfx_om_hist;
    case SCRAPE_TYPE_GAUGEHISTOGRAM: return sfx_om_ghist;
    case SCRAPE_TYPE_INFO: return sfx_om_info;
    default: return sfx_plain;
    }
}

/* Is name = fam + one of the suffixes? Returns the suffix or NULL. */
static const char *match_suffix(struct ss_str name, const char *fam, size_t flen, const char *const *sfx,
                                bool bare_ok)
{
    if (name.len < flen || memcmp(name.p, fam, flen) != 0)
        return NULL;
    const char *rest = name.p + flen;
    size_t rlen = name.len - flen;
    if (rlen == 0 && bare_ok)
        return "";
    for (; *sfx; sfx++) {
        size_t sl = strlen(*sfx);
        if (sl == rlen && memcmp(rest, *sfx, sl) == 0)
            return *sfx;
    }
    return NULL;
}

/* ======================================================================== */
/* labels                                                                   */
/* ======================================================================== */

static int label_push(struct label_vec *lv, struct ss_str name, struct ss_str value)
{
    if (lv->n == lv->cap) {
        size_t ncap = lv->cap ? lv->cap * 2 : 32;
        struct ss_label *nv = realloc(lv->v, ncap * sizeof *nv);
        if (!nv)
            return SS_ENOMEM;
        lv->v = nv;
        lv->cap = ncap;
    }
    lv->v[lv->n].name = name;
    lv->v[lv->n].value = value;
    lv->n++;
    return 0;
}

static const struct ss_str *label_get(const struct label_vec *lv, const char *name, size_t n)
{
    for (size_t i = 0; i < lv->n; i++)
        if (lv->v[i].name.len == n && memcmp(lv->v[i].name.p, name, n) == 0)
            return &lv->v[i].value;
    return NULL;
}

/* A repeated label name is looked for as each label is read while a set has fewer
 * than DUP_SCAN_MAX labels; a bigger set is sorted by name once at its end, so that a
 * line of 60k labels costs a sort, not 1.8e9 comparisons (3 s of the scrape loop,
 * stalling every other target). */
#define DUP_SCAN_MAX 32

static int name_cmp(const void *a, const void *b)
{
    const struct ss_str *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

/* 1 and *dup set when a name is in lv more than once, 0 when none is, SS_ENOMEM. */
static int repeated_name(const struct label_vec *lv, struct ss_str *dup)
{
    struct ss_str *names = malloc(lv->n * sizeof *names);
    if (!names)
        return SS_ENOMEM;
    for (size_t i = 0; i < lv->n; i++)
        names[i] = lv->v[i].name;
    qsort(names, lv->n, sizeof *names, name_cmp);
    int found = 0;
    for (size_t i = 1; i < lv->n && !found; i++)
        if (!name_cmp(&names[i - 1], &names[i])) {
            *dup = names[i];
            found = 1;
        }
    free(names);
    return found;
}

/* Parse a label set; *pc points just after '{' and ends just after '}'.
 * Token rules: text allows blanks around every token and (lenient) no comma between
 * labels, as PromParser does; OpenMetrics allows no blanks and needs a comma or '}'
 * after each value. With utf8_names a quoted string followed by ',' or '}' is the
 * metric name (not in exemplars). */
static int parse_labels(struct scrape_parser *p, const char **pc, const char *e, bool exemplar,
                        struct ss_str *name)
{
    const bool om = p->opts.format == SCRAPE_FORMAT_OPENMETRICS;
    const bool strict = p->opts.strict;
    const enum esc_rules rules = (strict && !om) ? ESC_STRICT : ESC_LENIENT;
    struct label_vec *lv = exemplar ? &p->elabels : &p->labels;
    const char *c = *pc;
    bool after_comma = false;
    int rc;

    for (;;) {
        if (!om)
            c = skip_ws(c, e);
        if (c >= e)
            return perr(p, "expected label name or '}', got end of line");
        if (*c == '}') {
            /* OpenMetrics: Prometheus 2.42 wants a label name after a comma (later
             * versions free a trailing comma); 0.0.4 allows it. */
            if (after_comma && om)
                return perr(p, "expected label name after ',', got '}'");
            c++;
            break;
        }
        after_comma = false;
        struct ss_str lname;
        if (*c == '"' && p->opts.utf8_names) {
            bool bs, hi;
            const char *q = scan_quoted(c + 1, e, &bs, &hi);
            if (!q)
                return unterminated(p, bs, "quoted name");
            if ((rc = quoted_string(p, c + 1, q, bs, hi, rules, "quoted name", &lname)))
                return rc;
            c = q + 1;
            const char *d = om ? c : skip_ws(c, e);
            if (d < e && (*d == ',' || *d == '}')) {
                if (exemplar)
                    return perr(p, "expected label name in exemplar, got a bare quoted string");
                if (name->p)
                    return perr(p, "metric name set twice");
                if (lname.len == 0)
                    return perr(p, "empty metric name");
                *name = lname;
                c = d;
                if (*c == ',') {
                    c++;
                    after_comma = true;
                }
                continue;
            }
            if (lname.len == 0)
                return perr(p, "empty label name");
        } else if (is_lname_start(*c)) {
            const char *b = c;
            while (c < e && is_lname_char(*c))
                c++;
            lname = (struct ss_str){b, (size_t)(c - b)};
        } else {
            return perr_tok(p, "expected label name", c, e);
        }
        if (!om)
            c = skip_ws(c, e);
        if (c >= e || *c != '=')
            return perr_tok(p, "expected '=' after label name", c, e);
        c++;
        if (!om)
            c = skip_ws(c, e);
        if (c >= e || *c != '"')
            return perr_tok(p, "expected '\"' at start of label value", c, e);
        bool bs, hi;
        const char *q = scan_quoted(c + 1, e, &bs, &hi);
        if (!q)
            return unterminated(p, bs, "label value");
        struct ss_str val;
        if ((rc = quoted_string(p, c + 1, q, bs, hi, rules, "label value", &val)))
            return rc;
        c = q + 1;
        /* Prometheus 2.42 parses a repeated label name (or __name__) but then fails
         * the whole scrape when appending ("label name is not unique"), so both are
         * refused here; the callback never sees __name__. Exemplar labels are only
         * checked in strict mode (Prometheus drops a bad exemplar, not the scrape). */
        if (!exemplar && STR_IS(lname, "__name__"))
            return perr(p, "label name \"__name__\" is reserved");
        if ((strict || !exemplar) && lv->n < DUP_SCAN_MAX && label_get(lv, lname.p, lname.len)) {
            char qn[200];
            quote_token(qn, sizeof qn, lname.p, lname.len);
            return perr(p, "label name %s is not unique", qn);
        }
        if ((rc = label_push(lv, lname, val)))
            return fail(p, rc, "out of memory");
        if (!om)
            c = skip_ws(c, e);
        if (c < e && *c == ',') {
            c++;
            after_comma = true;
            continue;
        }
        if (c < e && *c == '}') {
            c++;
            break;
        }
        if (om || strict)
            return perr_tok(p, "expected ',' or '}' after label value", c, e);
        /* Prometheus text: the comma between labels is optional. */
    }
    if ((strict || !exemplar) && lv->n > DUP_SCAN_MAX) {
        struct ss_str dup;
        int r = repeated_name(lv, &dup);
        if (r < 0)
            return fail(p, r, "out of memory");
        if (r) {
            char qn[200];
            quote_token(qn, sizeof qn, dup.p, dup.len);
            return perr(p, "label name %s is not unique", qn);
        }
    }
    *pc = c;
    return 0;
}

/* A metric name in a metadata line: legacy characters, or quoted with utf8_names. */
static int meta_name(struct scrape_parser *p, const char **pc, const char *e, struct ss_str *out)
{
    const char *c = *pc;
    *out = (struct ss_str){NULL, 0};
    if (c < e && is_mname_start(*c)) {
        const char *b = c;
        while (c < e && is_mname_char(*c))
            c++;
        *out = (struct ss_str){b, (size_t)(c - b)};
    } else if (c < e && *c == '"' && p->opts.utf8_names) {
        bool bs, hi;
        const char *q = scan_quoted(c + 1, e, &bs, &hi);
        if (!q)
            return perr(p, "unterminated quoted metric name");
        enum esc_rules rules =
            (p->opts.strict && p->opts.format == SCRAPE_FORMAT_TEXT) ? ESC_STRICT : ESC_LENIENT;
        int rc = quoted_string(p, c + 1, q, bs, hi, rules, "metric name", out);
        if (rc)
            return rc;
        if (out->len == 0)
            return perr(p, "empty metric name");
        c = q + 1;
    }
    *pc = c;
    return 0;
}

/* ======================================================================== */
/* callbacks and lenient family tracking                                    */
/* ======================================================================== */

static int cb_result(struct scrape_parser *p, int rc)
{
    if (rc) {
        snprintf(p->errmsg, sizeof p->errmsg, "line %u: stopped by callback (%d: %s)", p->line, rc,
                 ss_strerror(rc));
        p->failed = rc;
    }
    return rc;
}

static int emit_meta(struct scrape_parser *p, const struct scrape_parser_cb *cb, enum scrape_meta_kind kind,
                     struct ss_str family, struct ss_str text, enum scrape_metric_type type)
{
    if (!cb || !cb->meta)
        return 0;
    struct scrape_parsed_meta m = {
        .kind = kind, .family = family, .text = text, .type = type, .line = p->line};
    return cb_result(p, cb->meta(cb->ud, &m));
}

static int set_lenient_family(struct scrape_parser *p, struct ss_str name, bool is_type,
                              enum scrape_metric_type t)
{
    bool same = p->fam_set && p->fam.len == name.len && memcmp(p->fam.data, name.p, name.len) == 0;
    if (!same) {
        ss_buf_reset(&p->fam);
        if (ss_buf_append(&p->fam, name.p, name.len))
            return fail(p, SS_ENOMEM, "out of memory");
        p->fam_set = true;
        p->famtype = SCRAPE_TYPE_UNKNOWN;
    }
    if (is_type)
        p->famtype = t;
    p->memo_len = 0; /* the family or its type may have changed */
    return 0;
}

/* Lenient family of a sample: the metadata family when the name fits it. */
static void lenient_family(struct scrape_parser *p, struct ss_str name, struct ss_str *fam,
                           enum scrape_metric_type *type)
{
    bool fits;
    if (p->memo_len && p->memo_len == name.len && memcmp(p->memo_name, name.p, name.len) == 0) {
        fits = p->memo_fits;
    } else {
        fits = p->fam_set &&
               match_suffix(name, p->fam.data, p->fam.len, suffixes(p->opts.format, p->famtype), true);
        p->memo_len = 0;
        if (name.len && name.len <= LENIENT_MEMO_MAX) {
            memcpy(p->memo_name, name.p, name.len);
            p->memo_len = (uint8_t)name.len;
            p->memo_fits = fits;
        }
    }
    if (fits) {
        *fam = (struct ss_str){p->fam.data, p->fam.len};
        *type = p->famtype;
        return;
    }
    *fam = name;
    *type = SCRAPE_TYPE_UNKNOWN;
}

struct sample_ctx {
    struct ss_str name;
    struct ss_str series; /* the line up to the value */
    double value;
    bool has_ts;
    int64_t ts_ms;
    double ts_sec; /* OpenMetrics: the timestamp as written, for strict ordering */
    bool has_exemplar;
};

/* What a callback gets for a sample, without its labels (emit_sample adds them). */
static struct scrape_parsed_sample parsed_sample(const struct scrape_parser *p, const struct sample_ctx *sc,
                                                 struct ss_str family, enum scrape_metric_type type)
{
    return (struct scrape_parsed_sample){
        .name = sc->name,
        .series = sc->series,
        .value = sc->value,
        .has_timestamp = sc->has_ts,
        .timestamp_ms = sc->ts_ms,
        .type = type,
        .family = family,
        .line = p->line,
    };
}

static int emit_sample(struct scrape_parser *p, const struct scrape_parser_cb *cb,
                       const struct sample_ctx *sc, struct ss_str family, enum scrape_metric_type type)
{
    if (!cb || !cb->sample)
        return 0;
    struct scrape_parsed_sample s = parsed_sample(p, sc, family, type);
    s.labels = p->labels.v;
    s.nlabels = p->labels.n;
    return cb_result(p, cb->sample(cb->ud, &s));
}

/* ======================================================================== */
/* strict OpenMetrics: family rules                                         */
/* ======================================================================== */

static bool is_integral(double v)
{
    return ss_is_integral(v);
}

/* A label value used as a number by a family rule (le, quantile): a float, with
 * infinities spelled +Inf / -Inf (the reference parser's canonical-number check). */
static bool om_label_number(struct scrape_parser *p, struct ss_str s, double *out)
{
    if (!parse_float(p, s.p, s.len, out) || isnan(*out))
        return false;
    if (isinf(*out))
        return STR_IS(s, "+Inf") || STR_IS(s, "-Inf");
    return true;
}

/* Build the group key: the sorted label set without the label that distinguishes the
 * samples of one group (le, quantile, the stateset label). Length-prefixed, so any
 * bytes in names are fine. */
static int om_group_key(struct scrape_parser *p, const char *skip, size_t skiplen, bool none)
{
    struct ss_buf *k = &p->oms->key;
    ss_buf_reset(k);
    if (none)
        return 0;
    size_t n = p->labels.n;
    if (n > p->idx_cap) {
        uint32_t *ni = realloc(p->idx, n * sizeof *ni);
        if (!ni)
            return SS_ENOMEM;
        p->idx = ni;
        p->idx_cap = n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ss_label *l = &p->labels.v[i];
        if (skip && l->name.len == skiplen && memcmp(l->name.p, skip, skiplen) == 0)
            continue;
        /* insertion sort by name: label sets are small */
        size_t j = m++;
        while (j > 0 && ss_str_cmp(p->labels.v[p->idx[j - 1]].name, l->name) > 0) {
            p->idx[j] = p->idx[j - 1];
            j--;
        }
        p->idx[j] = (uint32_t)i;
    }
    for (size_t i = 0; i < m; i++) {
        const struct ss_label *l = &p->labels.v[p->idx[i]];
        uint32_t ln[2] = {(uint32_t)l->name.len, (uint32_t)l->value.len};
        int rc;
        if ((rc = ss_buf_append(k, ln, sizeof ln)) || (rc = ss_buf_append(k, l->name.p, l->name.len)) ||
            (rc = ss_buf_append(k, l->value.p, l->value.len)))
            return rc;
    }
    return 0;
}

static int om_hist_checks(struct scrape_parser *p)
{
    struct om_family *f = &p->oms->f;
    const char *nm = f->name.data;
    if (!f->h_has_bucket || !isinf(f->h_bucket) || f->h_bucket < 0)
        return perr(p, "histogram %s: +Inf bucket missing", nm);
    if (f->h_has_count && f->h_value != f->h_count)
        return perr(p, "histogram %s: count does not match the +Inf bucket", nm);
    if (f->h_sum && !f->h_has_count)
        return perr(p, "histogram %s: _count must be present if _sum is present", nm);
    if (f->h_gsum && !f->h_has_count)
        return perr(p, "histogram %s: _gcount must be present if _gsum is present", nm);
    if (!(f->h_sum || f->h_gsum) && f->h_has_count)
        return perr(p, "histogram %s: _sum/_gsum must be present if _count is present", nm);
    if (f->h_neg_bucket && f->h_sum)
        return perr(p, "histogram %s: cannot have _sum with negative buckets", nm);
    if (!f->h_neg_bucket && f->h_neg_gsum)
        return perr(p, "histogram %s: cannot have negative _gsum with non-negative buckets", nm);
    return 0;
}

/* The end of a family: claim its sample names and run the whole-family checks. */
static int om_family_end(struct scrape_parser *p)
{
    struct om_strict *st = p->oms;
    struct om_family *f = &st->f;
    if (!f->active)
        return 0;
    f->active = false;
    enum scrape_metric_type t = f->has_type ? f->type : SCRAPE_TYPE_UNKNOWN;
    const char *const *sfx = suffixes(SCRAPE_FORMAT_OPENMETRICS, t);
    char q[200];
    for (int pass = 0; pass < 2; pass++) {
        for (const char *const *s = pass ? sfx : sfx_plain; *s; s++) {
            if (pass && !**s)
                continue; /* "" was claimed in the first pass */
            ss_buf_reset(&st->key);
            int rc;
            if ((rc = ss_buf_append(&st->key, f->name.data, f->name.len)) ||
                (rc = ss_buf_append_str(&st->key, *s)))
                return fail(p, rc, "out of memory");
            if (strset_get(&st->names, st->key.data, st->key.len)) {
                quote_token(q, sizeof q, st->key.data, st->key.len);
                return perr(p, "clashing name %s", q);
            }
            if ((rc = strset_put(&st->names, &st->arena, st->key.data, st->key.len, NULL, NULL)))
                return fail(p, rc, "out of memory");
        }
    }
    if (f->unit.len && (t == SCRAPE_TYPE_INFO || t == SCRAPE_TYPE_STATESET))
        return perr(p, "units are not allowed for %s %s", scrape_metric_type_name(t), f->name.data);
    if (f->h_active) {
        f->h_active = false;
        return om_hist_checks(p);
    }
    return 0;
}

static int om_family_start(struct scrape_parser *p, struct ss_str name)
{
    struct om_strict *st = p->oms;
    struct om_family *f = &st->f;
    int rc = om_family_end(p);
    if (rc)
        return rc;
    ss_buf_reset(&f->name);
    ss_buf_reset(&f->unit);
    ss_buf_reset(&f->group);
    if ((rc = ss_buf_append(&f->name, name.p, name.len)))
        return fail(p, rc, "out of memory");
    f->active = true;
    f->type = SCRAPE_TYPE_UNKNOWN;
    f->has_type = f->has_help = f->has_unit = false;
    f->nsamples = 0;
    f->have_group = false;
    f->h_active = false;
    strset_clear(&st->groups);
    return 0;
}

static bool om_same_name(const struct om_family *f, struct ss_str name)
{
    return f->active && f->name.len == name.len && memcmp(f->name.data, name.p, name.len) == 0;
}

static int om_strict_meta(struct scrape_parser *p, enum scrape_meta_kind kind, struct ss_str name,
                          enum scrape_metric_type t, struct ss_str text)
{
    struct om_family *f = &p->oms->f;
    int rc;
    if (om_same_name(f, name)) {
        if (f->nsamples)
            return perr(p, "metadata for %.*s after its samples", (int)name.len, name.p);
    } else if ((rc = om_family_start(p, name))) {
        return rc;
    }
    switch (kind) {
    case SCRAPE_META_HELP:
        if (f->has_help)
            return perr(p, "more than one HELP for %s", f->name.data);
        f->has_help = true;
        break;
    case SCRAPE_META_TYPE:
        if (f->has_type)
            return perr(p, "more than one TYPE for %s", f->name.data);
        f->has_type = true;
        f->type = t;
        break;
    case SCRAPE_META_UNIT:
        if (f->has_unit)
            return perr(p, "more than one UNIT for %s", f->name.data);
        f->has_unit = true;
        if ((rc = ss_buf_append(&f->unit, text.p, text.len)))
            return fail(p, rc, "out of memory");
        break;
    }
    return 0;
}

static int om_strict_sample(struct scrape_parser *p, const struct sample_ctx *sc)
{
    struct om_strict *st = p->oms;
    struct om_family *f = &st->f;
    int rc;
    enum scrape_metric_type t = f->has_type ? f->type : SCRAPE_TYPE_UNKNOWN;
    const char *suffix = f->active ? match_suffix(sc->name, f->name.data, f->name.len,
                                                  suffixes(SCRAPE_FORMAT_OPENMETRICS, t), false)
                                   : NULL;
    if (!suffix) {
        /* A name the current family does not allow starts a new family of type unknown. */
        if ((rc = om_family_start(p, sc->name)))
            return rc;
        t = SCRAPE_TYPE_UNKNOWN;
        suffix = "";
    }
    const bool hist = t == SCRAPE_TYPE_HISTOGRAM || t == SCRAPE_TYPE_GAUGEHISTOGRAM;
    const bool bucket = hist && strcmp(suffix, "_bucket") == 0;
    const bool quantile_sample = t == SCRAPE_TYPE_SUMMARY && !*suffix;
    const double v = sc->value;
    const char *nm = f->name.data;
    double le = 0;

    if (t == SCRAPE_TYPE_STATESET && !label_get(&p->labels, f->name.data, f->name.len))
        return perr(p, "stateset %s: sample without its state label", nm);
    if (bucket) {
        const struct ss_str *ls = label_get(&p->labels, "le", 2);
        if (!ls || !om_label_number(p, *ls, &le))
            return perr(p, "histogram %s: missing or invalid le label", nm);
        if (!is_integral(v))
            return perr(p, "histogram %s: bucket value must be an integer", nm);
    }
    if ((strcmp(suffix, "_count") == 0 || strcmp(suffix, "_gcount") == 0) && !is_integral(v))
        return perr(p, "%s: count value must be an integer", nm);
    if (quantile_sample) {
        const struct ss_str *qs = label_get(&p->labels, "quantile", 8);
        double q;
        if (!qs || !om_label_number(p, *qs, &q) || q < 0 || q > 1)
            return perr(p, "summary %s: missing or invalid quantile label", nm);
    }

    /* Grouping: each group's samples are contiguous; within a group timestamps are all
     * present or all absent and never go backwards (info is exempt). */
    if (t == SCRAPE_TYPE_INFO)
        rc = om_group_key(p, NULL, 0, true);
    else if (quantile_sample)
        rc = om_group_key(p, "quantile", 8, false);
    else if (t == SCRAPE_TYPE_STATESET)
        rc = om_group_key(p, f->name.data, f->name.len, false);
    else if (bucket)
        rc = om_group_key(p, "le", 2, false);
    else
        rc = om_group_key(p, NULL, 0, false);
    if (rc)
        return fail(p, rc, "out of memory");
    const bool same_group = f->have_group && f->group.len == st->key.len &&
                            (st->key.len == 0 || memcmp(f->group.data, st->key.data, st->key.len) == 0);
    bool same_ts = false;
    if (same_group) {
        if (sc->has_ts != f->group_has_ts)
            return perr(p, "%s: mix of timestamp presence within a group", nm);
        if (sc->has_ts && f->group_ts > sc->ts_sec && t != SCRAPE_TYPE_INFO)
            return perr(p, "%s: timestamps went backwards within a group", nm);
        same_ts = !sc->has_ts || f->group_ts == sc->ts_sec;
    } else {
        if (strset_get(&st->groups, st->key.data, st->key.len))
            return perr(p, "%s: invalid metric grouping (group seen before)", nm);
        if ((rc = strset_put(&st->groups, &st->arena, st->key.data, st->key.len, NULL, NULL)))
            return fail(p, rc, "out of memory");
        ss_buf_reset(&f->group);
        if ((rc = ss_buf_append(&f->group, st->key.data, st->key.len)))
            return fail(p, rc, "out of memory");
    }
    f->have_group = true;
    f->group_has_ts = sc->has_ts;
    f->group_ts = sc->ts_sec;

    /* Value rules. */
    if (t == SCRAPE_TYPE_STATESET && v != 0 && v != 1)
        return perr(p, "stateset %s: values must be 0 or 1", nm);
    if (t == SCRAPE_TYPE_INFO && v != 1)
        return perr(p, "info %s: value must be 1", nm);
    if (quantile_sample && v < 0)
        return perr(p, "summary %s: quantile values cannot be negative", nm);
    static const char *const counterlike[] = {"_total", "_sum", "_count", "_bucket", "_gcount", "_gsum"};
    for (size_t i = 0; i < sizeof counterlike / sizeof *counterlike; i++) {
        if (strcmp(suffix, counterlike[i]) != 0)
            continue;
        if (isnan(v))
            return perr(p, "%s: counter-like samples cannot be NaN", nm);
        if (v < 0 && i != 5) /* a negative _gsum is allowed */
            return perr(p, "%s: counter-like samples cannot be negative", nm);
    }
    if (sc->has_exemplar) {
        bool ok = (hist && sc->name.len >= 7 && memcmp(sc->name.p + sc->name.len - 7, "_bucket", 7) == 0) ||
                  (t == SCRAPE_TYPE_COUNTER && sc->name.len >= 6 &&
                   memcmp(sc->name.p + sc->name.len - 6, "_total", 6) == 0);
        if (!ok)
            return perr(p, "%s: only histogram buckets and counter totals can have exemplars", nm);
    }

    /* Histogram rules, per group and timestamp. */
    if (hist) {
        if (!f->h_active || !same_group || !same_ts) {
            if (f->h_active && (rc = om_hist_checks(p)))
                return rc;
            f->h_active = true;
            f->h_has_bucket = f->h_has_count = f->h_neg_bucket = false;
            f->h_sum = f->h_gsum = f->h_neg_gsum = false;
            f->h_value = 0;
        }
        if (bucket) {
            if (le < 0)
                f->h_neg_bucket = true;
            if (f->h_has_bucket && le <= f->h_bucket)
                return perr(p, "histogram %s: buckets out of order", nm);
            if (v < f->h_value)
                return perr(p, "histogram %s: bucket values out of order", nm);
            f->h_has_bucket = true;
            f->h_bucket = le;
            f->h_value = v;
        } else if (strcmp(suffix, "_count") == 0 || strcmp(suffix, "_gcount") == 0) {
            f->h_has_count = true;
            f->h_count = v;
        } else if (strcmp(suffix, "_sum") == 0) {
            f->h_sum = true;
        } else if (strcmp(suffix, "_gsum") == 0) {
            f->h_gsum = true;
            if (v < 0)
                f->h_neg_gsum = true;
        }
    }
    f->nsamples++;
    return 0;
}

/* ======================================================================== */
/* OpenMetrics lines                                                        */
/* ======================================================================== */

static bool om_exemplar_start(const char *c, const char *e)
{
    return e - c >= 4 && c[0] == ' ' && c[1] == '#' && c[2] == ' ' && c[3] == '{';
}

/* " # {" has been consumed; parse labels, value and optional timestamp to the end. */
static int om_exemplar(struct scrape_parser *p, const char *c, const char *e)
{
    struct ss_str none = {NULL, 0};
    p->elabels.n = 0;
    int rc = parse_labels(p, &c, e, true, &none);
    if (rc)
        return rc;
    if (c >= e || *c != ' ' || c + 1 >= e || c[1] == ' ')
        return perr_tok(p, "expected value after exemplar labels", c, e);
    c++;
    const char *v0 = c;
    while (c < e && *c != ' ')
        c++;
    double v;
    if (!parse_float(p, v0, (size_t)(c - v0), &v))
        return perr_tok(p, "invalid exemplar value", v0, e);
    if (c < e) {
        c++;
        if (c >= e || *c == ' ')
            return perr(p, "expected exemplar timestamp after blank");
        const char *t0 = c;
        while (c < e && *c != ' ')
            c++;
        double ts;
        if (!parse_float(p, t0, (size_t)(c - t0), &ts))
            return perr_tok(p, "invalid exemplar timestamp", t0, e);
        if (isnan(ts) || isinf(ts))
            return perr_tok(p, "invalid exemplar timestamp", t0, e);
        if (c < e)
            return perr_tok(p, "expected end of line after exemplar timestamp", c, e);
    }
    if (p->opts.strict) {
        size_t runes = 0;
        for (size_t i = 0; i < p->elabels.n; i++)
            runes += utf8_runes(p->elabels.v[i].name.p, p->elabels.v[i].name.len) +
                     utf8_runes(p->elabels.v[i].value.p, p->elabels.v[i].value.len);
        if (runes > OM_EXEMPLAR_MAX_RUNES)
            return perr(p, "exemplar labels are longer than %d characters", OM_EXEMPLAR_MAX_RUNES);
    }
    return 0;
}

static int om_meta_line(struct scrape_parser *p, const char *s, const char *e,
                        const struct scrape_parser_cb *cb)
{
    size_t n = (size_t)(e - s);
    int rc;
    if (n == 5 && memcmp(s, "# EOF", 5) == 0) {
        p->eof = true;
        if (p->opts.strict)
            return om_family_end(p);
        return 0;
    }
    if (n < 2 || s[1] != ' ')
        return perr_tok(p, "expected a valid start token", s, e);
    const char *c = s + 2;
    enum scrape_meta_kind kind;
    const char *kw;
    if (e - c >= 4 && memcmp(c, "HELP", 4) == 0)
        kind = SCRAPE_META_HELP, kw = "HELP";
    else if (e - c >= 4 && memcmp(c, "TYPE", 4) == 0)
        kind = SCRAPE_META_TYPE, kw = "TYPE";
    else if (e - c >= 4 && memcmp(c, "UNIT", 4) == 0)
        kind = SCRAPE_META_UNIT, kw = "UNIT";
    else
        return perr_tok(p, "expected HELP, TYPE, UNIT or EOF after '# '", c, e);
    c += 4;
    if (c >= e || *c != ' ')
        return perr_tok(p,
                        kind == SCRAPE_META_HELP   ? "expected ' ' after HELP"
                        : kind == SCRAPE_META_TYPE ? "expected ' ' after TYPE"
                                                   : "expected ' ' after UNIT",
                        c, e);
    c++;
    struct ss_str name;
    if ((rc = meta_name(p, &c, e, &name)))
        return rc;
    if (!name.p)
        return perr_tok(p,
                        kind == SCRAPE_META_HELP   ? "expected metric name after HELP"
                        : kind == SCRAPE_META_TYPE ? "expected metric name after TYPE"
                                                   : "expected metric name after UNIT",
                        c, e);
    /* OpenMetrics: exactly one space, then the rest of the line. */
    if (c >= e || *c != ' ')
        return perr(p, "expected text in %s", kw);
    c++;
    struct ss_str text = {c, (size_t)(e - c)};
    enum scrape_metric_type t = SCRAPE_TYPE_UNKNOWN;
    switch (kind) {
    case SCRAPE_META_TYPE: {
        static const struct {
            const char *s;
            enum scrape_metric_type t;
        } types[] = {{"counter", SCRAPE_TYPE_COUNTER},     {"gauge", SCRAPE_TYPE_GAUGE},
                     {"histogram", SCRAPE_TYPE_HISTOGRAM}, {"gaugehistogram", SCRAPE_TYPE_GAUGEHISTOGRAM},
                     {"summary", SCRAPE_TYPE_SUMMARY},     {"info", SCRAPE_TYPE_INFO},
                     {"stateset", SCRAPE_TYPE_STATESET},   {"unknown", SCRAPE_TYPE_UNKNOWN}};
        size_t i;
        for (i = 0; i < sizeof types / sizeof *types; i++)
            if (text.len == strlen(types[i].s) && memcmp(text.p, types[i].s, text.len) == 0)
                break;
        if (i == sizeof types / sizeof *types) {
            char q[200];
            quote_token(q, sizeof q, text.p, text.len);
            return perr(p, "invalid metric type %s", q);
        }
        t = types[i].t;
        text = (struct ss_str){text.p, 0};
        break;
    }
    case SCRAPE_META_HELP:
        if (!ss_utf8_valid(text.p, text.len))
            return perr(p, "help text is not valid UTF-8");
        if (memchr(text.p, '\\', text.len)) {
            char *d = scratch_take(p, text.len);
            text = (struct ss_str){d, (size_t)unescape(text.p, text.len, d, ESC_LENIENT)};
        }
        break;
    case SCRAPE_META_UNIT:
        /* OpenMetrics 1.0 §Unit: a non-empty unit must be a suffix of the name. */
        if (text.len &&
            !(name.len > text.len && memcmp(name.p + name.len - text.len, text.p, text.len) == 0 &&
              name.p[name.len - text.len - 1] == '_')) {
            char qu[100], qn[100];
            quote_token(qu, sizeof qu, text.p, text.len);
            quote_token(qn, sizeof qn, name.p, name.len);
            return perr(p, "unit %s not a suffix of metric %s", qu, qn);
        }
        break;
    }
    if (p->opts.strict) {
        if ((rc = om_strict_meta(p, kind, name, t, text)))
            return rc;
    } else if ((rc = set_lenient_family(p, name, kind == SCRAPE_META_TYPE, t))) {
        return rc;
    }
    return emit_meta(p, cb, kind, name, text, t);
}

static int om_sample_line(struct scrape_parser *p, const char *s, const char *e,
                          const struct scrape_parser_cb *cb)
{
    const char *c = s;
    struct sample_ctx sc = {0};
    int rc;
    if (is_mname_start(*c)) {
        while (c < e && is_mname_char(*c))
            c++;
        sc.name = (struct ss_str){s, (size_t)(c - s)};
    } else if (!(*c == '{' && p->opts.utf8_names)) {
        return perr_tok(p, "expected a valid start token", c, e);
    }
    if (c < e && *c == '{') {
        c++;
        if ((rc = parse_labels(p, &c, e, false, &sc.name)))
            return rc;
    }
    if (!sc.name.p)
        return perr(p, "metric name not set");
    if (c >= e || *c != ' ' || c + 1 >= e || c[1] == ' ')
        return perr_tok(p, "expected value after metric", c, e);
    c++;
    const char *v0 = c;
    sc.series = (struct ss_str){s, (size_t)(v0 - s)};
    while (c < e && *c != ' ')
        c++;
    if (!parse_float(p, v0, (size_t)(c - v0), &sc.value))
        return perr_tok(p, "invalid value", v0, e);
    /* Exemplars are parsed and dropped. Lenient mode accepts them on any series
     * (Prometheus 2.42 only on *_total and *_bucket; see the file comment). */
    if (c < e) {
        if (om_exemplar_start(c, e)) {
            sc.has_exemplar = true;
            if ((rc = om_exemplar(p, c + 4, e)))
                return rc;
        } else {
            c++;
            if (c >= e || *c == ' ')
                return perr(p, "expected timestamp or exemplar after value");
            const char *t0 = c;
            while (c < e && *c != ' ')
                c++;
            if (!parse_float(p, t0, (size_t)(c - t0), &sc.ts_sec))
                return perr_tok(p, "invalid timestamp", t0, e);
            if (isnan(sc.ts_sec) || isinf(sc.ts_sec))
                return perr_tok(p, "invalid timestamp", t0, e);
            sc.has_ts = true;
            sc.ts_ms = om_seconds_to_ms(sc.ts_sec);
            if (c < e) {
                if (!om_exemplar_start(c, e))
                    return perr_tok(p, "expected next entry after timestamp", c, e);
                sc.has_exemplar = true;
                if ((rc = om_exemplar(p, c + 4, e)))
                    return rc;
            }
        }
    }
    struct ss_str family;
    enum scrape_metric_type type;
    if (p->opts.strict) {
        if ((rc = om_strict_sample(p, &sc)))
            return rc;
        const struct om_family *f = &p->oms->f;
        family = (struct ss_str){f->name.data, f->name.len};
        type = f->has_type ? f->type : SCRAPE_TYPE_UNKNOWN;
    } else {
        lenient_family(p, sc.name, &family, &type);
    }
    return emit_sample(p, cb, &sc, family, type);
}

static int om_sample_lazy(struct scrape_parser *p, const char *s, const char *e,
                          const struct scrape_parser_cb *cb);

static int om_line(struct scrape_parser *p, const char *s, size_t n, const struct scrape_parser_cb *cb)
{
    if (p->eof) {
        if (cb && cb->error)
            p->stopped = true; /* validation: reported once, the rest is not parsed */
        return perr(p, "unexpected data after # EOF");
    }
    if (n == 0)
        return perr(p, "blank line (OpenMetrics has none)");
    if (s[0] == '#')
        return om_meta_line(p, s, s + n, cb);
    if (p->opts.lazy_labels && !p->opts.strict) {
        int lrc = om_sample_lazy(p, s, s + n, cb);
        if (lrc != SCRAPE_WANT_LABELS)
            return lrc;
        p->scratch_used = 0; /* an exemplar's strings: the full parse makes them again */
        p->elabels.n = 0;
    }
    return om_sample_line(p, s, s + n, cb);
}

/* ======================================================================== */
/* text 0.0.4 lines                                                         */
/* ======================================================================== */

/* Strict text: prometheus/common finds a family by exact name, then as the _sum or
 * _count of a summary, then as the _sum, _count or _bucket of a (gauge) histogram,
 * else creates it (TextParser.setOrCreateCurrentMF). */
enum tf_role { TF_PLAIN, TF_SUM, TF_COUNT };

static struct text_family *tf_find(struct text_strict *ts, const char *s, size_t n)
{
    struct strset_ent *e = strset_get(&ts->fams, s, n);
    return e ? e->val : NULL;
}

static bool has_suffix(struct ss_str s, const char *sfx, size_t n)
{
    return s.len > n && memcmp(s.p + s.len - n, sfx, n) == 0;
}

static int tf_resolve(struct scrape_parser *p, struct ss_str name, struct text_family **out,
                      enum tf_role *role)
{
    struct text_strict *ts = p->ts;
    *role = TF_PLAIN;
    struct text_family *f = tf_find(ts, name.p, name.len);
    if (f) {
        *out = f;
        return 0;
    }
    size_t cut = 0;
    enum tf_role r = TF_PLAIN;
    if (has_suffix(name, "_sum", 4))
        cut = 4, r = TF_SUM;
    else if (has_suffix(name, "_count", 6))
        cut = 6, r = TF_COUNT;
    if (cut) {
        f = tf_find(ts, name.p, name.len - cut);
        if (f && f->type == SCRAPE_TYPE_SUMMARY && f->has_type) {
            *out = f;
            *role = r;
            return 0;
        }
    } else if (has_suffix(name, "_bucket", 7)) {
        cut = 7;
    }
    if (cut) {
        f = tf_find(ts, name.p, name.len - cut);
        if (f && f->has_type && (f->type == SCRAPE_TYPE_HISTOGRAM || f->type == SCRAPE_TYPE_GAUGEHISTOGRAM)) {
            *out = f;
            *role = r;
            return 0;
        }
    }
    f = ss_arena_alloc(&ts->arena, sizeof *f);
    if (!f)
        return fail(p, SS_ENOMEM, "out of memory");
    *f = (struct text_family){0};
    struct strset_ent *ent;
    int rc = strset_put(&ts->fams, &ts->arena, name.p, name.len, f, &ent);
    if (rc)
        return fail(p, rc, "out of memory");
    f->name = ent->s;
    f->len = name.len;
    *out = f;
    return 0;
}

/* A 0.0.4 comment in lenient mode, token for token as Prometheus' promlex: "#" then
 * blanks then HELP or TYPE then blanks is metadata; anything else is a comment. The
 * text is the rest of the line after the name, minus the one byte after the name. */
static int text_comment_lenient(struct scrape_parser *p, const char *c, const char *e,
                                const struct scrape_parser_cb *cb)
{
    /* promlex's consumeComment returns end of input at a NUL in a "#x" comment, and
     * at a NUL right after "#" and blanks; Prometheus then keeps what it has. */
    if (c >= e || !is_ws(*c)) {
        if (c < e && memchr(c, '\0', (size_t)(e - c)))
            p->stopped = true;
        return 0;
    }
    c = skip_ws(c, e);
    if (c < e && *c == '\0') {
        p->stopped = true;
        return 0;
    }
    enum scrape_meta_kind kind;
    if (e - c >= 4 && memcmp(c, "HELP", 4) == 0)
        kind = SCRAPE_META_HELP;
    else if (e - c >= 4 && memcmp(c, "TYPE", 4) == 0)
        kind = SCRAPE_META_TYPE;
    else
        return 0;
    c += 4;
    if (c >= e || !is_ws(*c))
        return 0;
    c = skip_ws(c, e);
    struct ss_str name;
    int rc = meta_name(p, &c, e, &name);
    if (rc)
        return rc;
    if (!name.p)
        return perr_tok(p,
                        kind == SCRAPE_META_HELP ? "expected metric name after HELP"
                                                 : "expected metric name after TYPE",
                        c, e);
    /* Blanks alone lex as whitespace, not text: the text is then empty. */
    struct ss_str text = {c, 0};
    if (skip_ws(c, e) < e)
        text = (struct ss_str){c + 1, (size_t)(e - c - 1)};
    enum scrape_metric_type t = SCRAPE_TYPE_UNKNOWN;
    if (kind == SCRAPE_META_TYPE) {
        if (STR_IS(text, "counter"))
            t = SCRAPE_TYPE_COUNTER;
        else if (STR_IS(text, "gauge"))
            t = SCRAPE_TYPE_GAUGE;
        else if (STR_IS(text, "histogram"))
            t = SCRAPE_TYPE_HISTOGRAM;
        else if (STR_IS(text, "summary"))
            t = SCRAPE_TYPE_SUMMARY;
        else if (STR_IS(text, "untyped"))
            t = SCRAPE_TYPE_UNKNOWN;
        else {
            char q[200];
            quote_token(q, sizeof q, text.p, text.len);
            return perr(p, "invalid metric type %s", q);
        }
        text.len = 0;
    } else {
        if (!ss_utf8_valid(text.p, text.len))
            return perr(p, "help text is not valid UTF-8");
        if (memchr(text.p, '\\', text.len)) {
            char *d = scratch_take(p, text.len);
            text = (struct ss_str){d, (size_t)unescape(text.p, text.len, d, ESC_HELP_TEXT)};
        }
    }
    if ((rc = set_lenient_family(p, name, kind == SCRAPE_META_TYPE, t)))
        return rc;
    return emit_meta(p, cb, kind, name, text, t);
}

/* A 0.0.4 comment in strict mode, as prometheus/common's TextParser.startComment:
 * the keyword is the first blank-delimited token; a HELP or TYPE line that stops
 * early is not an error and sets nothing. */
static int text_comment_strict(struct scrape_parser *p, const char *c, const char *e,
                               const struct scrape_parser_cb *cb)
{
    c = skip_ws(c, e);
    const char *k = c;
    while (c < e && !is_ws(*c))
        c++;
    if (c >= e)
        return 0;
    struct ss_str kw = {k, (size_t)(c - k)};
    enum scrape_meta_kind kind;
    if (STR_IS(kw, "HELP"))
        kind = SCRAPE_META_HELP;
    else if (STR_IS(kw, "TYPE"))
        kind = SCRAPE_META_TYPE;
    else
        return 0;
    c = skip_ws(c, e);
    struct ss_str name;
    int rc = meta_name(p, &c, e, &name);
    if (rc)
        return rc;
    if (c >= e)
        return 0;
    if (!name.p || !is_ws(*c))
        return perr(p, "invalid metric name in comment");
    struct text_family *f;
    enum tf_role role;
    if ((rc = tf_resolve(p, name, &f, &role)))
        return rc;
    c = skip_ws(c, e);
    if (c >= e)
        return 0;
    struct ss_str fam = {f->name, f->len};
    struct ss_str text = {c, (size_t)(e - c)};
    if (kind == SCRAPE_META_HELP) {
        if (f->has_help)
            return perr(p, "second HELP line for metric name %s", f->name);
        if (!ss_utf8_valid(text.p, text.len))
            return perr(p, "help text is not valid UTF-8");
        if (memchr(text.p, '\\', text.len)) {
            char *d = scratch_take(p, text.len);
            long m = unescape(text.p, text.len, d, ESC_STRICT);
            if (m < 0)
                return perr(p, "invalid escape sequence in HELP");
            text = (struct ss_str){d, (size_t)m};
        }
        f->has_help = true;
        return emit_meta(p, cb, kind, fam, text, SCRAPE_TYPE_UNKNOWN);
    }
    if (f->has_type)
        return perr(p, "second TYPE line for metric name %s, or TYPE reported after samples", f->name);
    /* dto.MetricType_value[strings.ToUpper(...)], plus the gaugehistogram spelling. */
    static const struct {
        const char *s;
        enum scrape_metric_type t;
    } types[] = {{"counter", SCRAPE_TYPE_COUNTER},
                 {"gauge", SCRAPE_TYPE_GAUGE},
                 {"summary", SCRAPE_TYPE_SUMMARY},
                 {"untyped", SCRAPE_TYPE_UNKNOWN},
                 {"histogram", SCRAPE_TYPE_HISTOGRAM},
                 {"gauge_histogram", SCRAPE_TYPE_GAUGEHISTOGRAM},
                 {"gaugehistogram", SCRAPE_TYPE_GAUGEHISTOGRAM}};
    size_t i;
    for (i = 0; i < sizeof types / sizeof *types; i++)
        if (text.len == strlen(types[i].s) && ci_eq(text.p, types[i].s, text.len))
            break;
    if (i == sizeof types / sizeof *types) {
        char q[200];
        quote_token(q, sizeof q, text.p, text.len);
        return perr(p, "unknown metric type %s", q);
    }
    f->has_type = true;
    f->type = types[i].t;
    return emit_meta(p, cb, kind, fam, (struct ss_str){text.p, 0}, f->type);
}

/* The end of a metric name's characters from c: the first byte that is not one
 * [a-zA-Z0-9_:]. 16 bytes at a time where SSE2 is (every x86-64), as the byte loop
 * was a fifth of the lazy scan; is_mname_char's answer either way. */
static const char *skip_mname_chars(const char *c, const char *e)
{
#ifdef __SSE2__
    const __m128i a0 = _mm_set1_epi8('a' - 1), z1 = _mm_set1_epi8('z' + 1), d0 = _mm_set1_epi8('0' - 1),
                  d1 = _mm_set1_epi8('9' + 1), us = _mm_set1_epi8('_'), co = _mm_set1_epi8(':'),
                  lo = _mm_set1_epi8(0x20);
    while (e - c >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)c);
        __m128i l = _mm_or_si128(x, lo); /* bytes >= 0x80 are negative: never a letter or digit */
        __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(l, a0), _mm_cmplt_epi8(l, z1));
        ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmplt_epi8(x, d1)));
        ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(x, us), _mm_cmpeq_epi8(x, co)));
        unsigned bad = ~(unsigned)_mm_movemask_epi8(ok) & 0xFFFFu;
        if (bad)
            return c + __builtin_ctz(bad);
        c += 16;
    }
#endif
    while (c < e && is_mname_char(*c))
        c++;
    return c;
}

/* The closing brace of a label set whose '{' is just before c: the first '}' outside
 * a quoted string, or NULL. With SSE2, 16 bytes at a time while they hold no
 * backslash: the quoted bytes are the prefix XOR of the quote mask (flipped when a
 * string is open at the block's start), and the first '}' outside them ends the set.
 * From a block with a backslash on, byte by byte (escapes are rare in label values). */
static const char *scan_label_set(const char *c, const char *e)
{
    bool quoted = false;
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\'), vr = _mm_set1_epi8('}');
    while (e - c >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)c);
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(x, vb)))
            break;
        unsigned in = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq));
        in ^= in << 1;
        in ^= in << 2;
        in ^= in << 4;
        in ^= in << 8; /* bit i: an odd number of quotes in bytes 0..i */
        if (quoted)
            in = ~in;
        in &= 0xFFFFu;
        unsigned close = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vr)) & ~in;
        if (close)
            return c + __builtin_ctz(close);
        quoted = in >> 15;
        c += 16;
    }
#endif
    for (; c < e; c++) {
        if (quoted) {
            if (*c == '\\') {
                if (++c == e)
                    break;
            } else if (*c == '"') {
                quoted = false;
            }
        } else if (*c == '"') {
            quoted = true;
        } else if (*c == '}') {
            return c;
        }
    }
    return NULL;
}

/* A sample whose labels were skipped (text_sample_lazy, om_sample_lazy), handed to the
 * sink, which takes it if it knows the series text, or asks for the labels. */
static int lazy_pass(struct scrape_parser *p, const struct scrape_parser_cb *cb, const struct sample_ctx *sc)
{
    if (!cb || !cb->sample)
        return SCRAPE_WANT_LABELS; /* nobody to ask: validate in full */
    struct ss_str family;
    enum scrape_metric_type type;
    lenient_family(p, sc->name, &family, &type);
    struct scrape_parsed_sample ps = parsed_sample(p, sc, family, type);
    ps.labels_skipped = true;
    int rc = cb->sample(cb->ud, &ps);
    return rc == SCRAPE_WANT_LABELS ? rc : cb_result(p, rc);
}

/* What both lazy scans start with: a name and its label set, the labels not parsed;
 * returns just past the '}', or NULL (the line is parsed in full). blanks: text allows
 * them between the name and the '{'. */
static const char *lazy_series(const char *s, const char *e, bool blanks, struct sample_ctx *sc)
{
    if (!is_mname_start(*s))
        return NULL;
    const char *c = skip_mname_chars(s, e);
    sc->name = (struct ss_str){s, (size_t)(c - s)};
    if (blanks)
        c = skip_ws(c, e);
    if (c == e || *c != '{' || !(c = scan_label_set(c + 1, e)))
        return NULL;
    return c + 1;
}

/* lazy_labels: the sample of a line name{...} value [timestamp] with its labels
 * skipped, as text_sample_line would pass it. Returns 0 when the sink took it,
 * SCRAPE_WANT_LABELS when the line must be parsed in full (also when it does not have
 * that shape), or the callback's error. A sink can only know a series text that once
 * parsed in full, and a label set ends at the first '}' outside quotes, so parsing it
 * would end where this scan does: skipping it changes nothing. */
static int text_sample_lazy(struct scrape_parser *p, const char *s, const char *e,
                            const struct scrape_parser_cb *cb)
{
    struct sample_ctx sc = {0};
    const char *c = lazy_series(s, e, true, &sc);
    if (!c)
        return SCRAPE_WANT_LABELS;
    c = skip_ws(c, e);
    const char *v0 = c;
    sc.series = (struct ss_str){s, (size_t)(v0 - s)};
    while (c < e && !is_ws(*c) && *c != '{')
        c++;
    if (c == v0 || !parse_float(p, v0, (size_t)(c - v0), &sc.value))
        return SCRAPE_WANT_LABELS; /* the full parse says what is wrong */
    c = skip_ws(c, e);
    if (c < e) {
        const char *t0 = c;
        while (c < e && is_digit(*c))
            c++;
        if (!parse_int64(t0, (size_t)(c - t0), false, &sc.ts_ms) || skip_ws(c, e) != e)
            return SCRAPE_WANT_LABELS;
        sc.has_ts = true;
    }
    return lazy_pass(p, cb, &sc);
}

/* The OpenMetrics form of text_sample_lazy: name{...} value [timestamp] [exemplar],
 * single spaces, the timestamp in seconds. A line of another shape is parsed in full:
 * om_sample_line says what is wrong with it. */
static int om_sample_lazy(struct scrape_parser *p, const char *s, const char *e,
                          const struct scrape_parser_cb *cb)
{
    struct sample_ctx sc = {0};
    const char *c = lazy_series(s, e, false, &sc);
    if (!c || e - c < 2 || c[0] != ' ' || c[1] == ' ')
        return SCRAPE_WANT_LABELS;
    const char *v0 = ++c;
    sc.series = (struct ss_str){s, (size_t)(v0 - s)};
    while (c < e && *c != ' ')
        c++;
    if (!parse_float(p, v0, (size_t)(c - v0), &sc.value))
        return SCRAPE_WANT_LABELS;
    if (c < e && !om_exemplar_start(c, e)) {
        if (e - c < 2 || c[1] == ' ')
            return SCRAPE_WANT_LABELS;
        const char *t0 = ++c;
        while (c < e && *c != ' ')
            c++;
        if ((c < e && !om_exemplar_start(c, e)) || !parse_float(p, t0, (size_t)(c - t0), &sc.ts_sec) ||
            isnan(sc.ts_sec) || isinf(sc.ts_sec))
            return SCRAPE_WANT_LABELS;
        sc.has_ts = true;
        sc.ts_ms = om_seconds_to_ms(sc.ts_sec);
    }
    /* An exemplar is checked in full (its labels, value and timestamp), as the full
     * parse checks it; a bad one sends the line the long way, which reports it (or the
     * series' own error, when the text is unknown and has one), with nothing of this
     * attempt left behind. */
    if (c < e && om_exemplar(p, c + 4, e)) {
        p->failed = 0;
        p->errmsg[0] = '\0';
        p->errpos = NULL;
        return SCRAPE_WANT_LABELS;
    }
    return lazy_pass(p, cb, &sc);
}

static int text_sample_line(struct scrape_parser *p, const char *s, const char *e,
                            const struct scrape_parser_cb *cb)
{
    const bool strict = p->opts.strict;
    if (p->opts.lazy_labels && !strict) {
        int lrc = text_sample_lazy(p, s, e, cb);
        if (lrc != SCRAPE_WANT_LABELS)
            return lrc;
    }
    const char *c = s;
    struct sample_ctx sc = {0};
    int rc;
    if (is_mname_start(*c)) {
        while (c < e && is_mname_char(*c))
            c++;
        sc.name = (struct ss_str){s, (size_t)(c - s)};
        c = skip_ws(c, e);
    } else if (!(*c == '{' && p->opts.utf8_names)) {
        return perr_tok(p, "invalid metric name", c, e);
    }
    if (c < e && *c == '{') {
        c++;
        if ((rc = parse_labels(p, &c, e, false, &sc.name)))
            return rc;
        c = skip_ws(c, e);
    }
    if (!sc.name.p)
        return perr(p, "metric name not set");
    /* PromParser's value token is [^{ \t\n]+; common's runs to the next blank. */
    const char *v0 = c;
    sc.series = (struct ss_str){s, (size_t)(v0 - s)};
    while (c < e && !is_ws(*c) && (strict || *c != '{'))
        c++;
    if (c == v0)
        return perr_tok(p, "expected value after metric", c, e);
    if (!parse_float(p, v0, (size_t)(c - v0), &sc.value))
        return perr_tok(p, "expected float as value", v0, e);
    /* common's TextParser: a blank after the value starts a timestamp, which must
     * follow (startTimestamp), and nothing, not even a blank, may follow it. */
    const bool blank_after_value = c < e;
    c = skip_ws(c, e);
    if (strict && blank_after_value && c == e)
        return perr_tok(p, "expected integer as timestamp", c, e);
    if (c < e) {
        /* Timestamps are integer milliseconds. PromParser lexes [0-9]+; common uses
         * strconv.ParseInt, which also takes a sign. */
        const char *t0 = c;
        if (strict) {
            while (c < e && !is_ws(*c))
                c++;
        } else {
            while (c < e && is_digit(*c))
                c++;
        }
        if (!parse_int64(t0, (size_t)(c - t0), strict, &sc.ts_ms))
            return perr_tok(p, "expected integer as timestamp", t0, e);
        sc.has_ts = true;
        if (!strict)
            c = skip_ws(c, e);
        if (c < e)
            return perr_tok(p, "spurious string after timestamp", c, e);
    }

    struct ss_str family;
    enum scrape_metric_type type;
    if (!strict) {
        lenient_family(p, sc.name, &family, &type);
        return emit_sample(p, cb, &sc, family, type);
    }

    struct text_family *f;
    enum tf_role role;
    if ((rc = tf_resolve(p, sc.name, &f, &role)))
        return rc;
    if (!f->has_type) {
        f->has_type = true;
        f->type = SCRAPE_TYPE_UNKNOWN;
    }
    if (f->type == SCRAPE_TYPE_SUMMARY) {
        for (size_t i = 0; i < p->labels.n; i++) {
            double q;
            if (STR_IS(p->labels.v[i].name, "quantile") &&
                !parse_float(p, p->labels.v[i].value.p, p->labels.v[i].value.len, &q))
                return perr(p, "expected float as value for 'quantile' label");
        }
    }
    if (f->type == SCRAPE_TYPE_HISTOGRAM || f->type == SCRAPE_TYPE_GAUGEHISTOGRAM) {
        double le = NAN;
        for (size_t i = 0; i < p->labels.n; i++) {
            if (STR_IS(p->labels.v[i].name, "le") &&
                !parse_float(p, p->labels.v[i].value.p, p->labels.v[i].value.len, &le))
                return perr(p, "expected float as value for 'le' label");
        }
        if (role == TF_COUNT && sc.value < 0)
            return perr(p, "negative count for histogram %s", f->name);
        if (role == TF_PLAIN && !isnan(le) && sc.value < 0)
            return perr(p, "negative bucket population for histogram %s", f->name);
    }
    family = (struct ss_str){f->name, f->len};
    return emit_sample(p, cb, &sc, family, f->type);
}

static int text_line(struct scrape_parser *p, const char *s, size_t n, const struct scrape_parser_cb *cb)
{
    const char *e = s + n;
    const char *c = skip_ws(s, e);
    if (c == e)
        return 0;
    if (*c == '\0' && !p->opts.strict) {
        /* promlex: a NUL where a line starts is end of input. */
        p->stopped = true;
        return 0;
    }
    if (*c == '#')
        return p->opts.strict ? text_comment_strict(p, c + 1, e, cb) : text_comment_lenient(p, c + 1, e, cb);
    return text_sample_line(p, c, e, cb);
}

/* ======================================================================== */
/* driver                                                                   */
/* ======================================================================== */

/* Validation mode (cb->error set): hand the problem over and clear it, so parsing
 * goes on. The error's line is reported as the line it started on. */
static int report_error(struct scrape_parser *p, const struct scrape_parser_cb *cb)
{
    if (p->failed != SS_EPARSE)
        return p->failed;
    struct scrape_parse_error e = {p->errline, p->errcol, p->errmsg + p->errmsg_off};
    int rc = cb->error(cb->ud, &e);
    p->failed = rc;
    if (!rc)
        p->errmsg[0] = '\0';
    return rc;
}

static int parse_line_once(struct scrape_parser *p, const char *s, size_t n,
                           const struct scrape_parser_cb *cb)
{
    if (n > p->max_line) {
        /* Validation goes on at the next line: the line is whole here, in place. */
        if (cb && cb->error)
            return perr(p, "line longer than %zu bytes", p->max_line);
        return fail(p, SS_ELIMIT, "line longer than %zu bytes", p->max_line);
    }
    /* Unescaped strings of one line never outgrow the line, so reserving its length
     * once keeps every slice handed out for it in place. */
    if (p->scratch.cap < n + 1 && ss_buf_reserve(&p->scratch, n + 1))
        return fail(p, SS_ENOMEM, "out of memory");
    p->scratch_used = 0;
    p->labels.n = 0;
    p->elabels.n = 0;
    p->line_start = s;
    p->line_len = n;
    if (p->opts.format == SCRAPE_FORMAT_OPENMETRICS)
        return om_line(p, s, n, cb);
    return text_line(p, s, n, cb);
}

/* Parse one line (s, n excludes the newline). *more: the newline is inside a quoted
 * string, so the line goes on; nothing was emitted for it yet. Line numbers count
 * physical lines; a sample reports its first. */
static int parse_line(struct scrape_parser *p, const char *s, size_t n, const struct scrape_parser_cb *cb,
                      bool *more)
{
    p->line++;
    p->more = false;
    int rc = parse_line_once(p, s, n, cb);
    *more = p->more;
    if (p->more) {
        p->more = false;
        p->line--;
        p->pending_nl++;
        return 0;
    }
    p->line += p->pending_nl;
    p->pending_nl = 0;
    if (rc == SS_EPARSE && cb && cb->error)
        return report_error(p, cb);
    return rc;
}

static void strict_reset(struct scrape_parser *p)
{
    if (p->oms) {
        ss_arena_reset(&p->oms->arena);
        strset_clear(&p->oms->names);
        strset_clear(&p->oms->groups);
        p->oms->f.active = false;
        p->oms->f.h_active = false;
    }
    if (p->ts) {
        ss_arena_reset(&p->ts->arena);
        strset_clear(&p->ts->fams);
    }
}

static void om_strict_free(struct om_strict *st)
{
    if (!st)
        return;
    ss_arena_free(&st->arena);
    strset_free(&st->names);
    strset_free(&st->groups);
    ss_buf_free(&st->f.name);
    ss_buf_free(&st->f.unit);
    ss_buf_free(&st->f.group);
    ss_buf_free(&st->key);
    free(st);
}

static void text_strict_free(struct text_strict *ts)
{
    if (!ts)
        return;
    ss_arena_free(&ts->arena);
    strset_free(&ts->fams);
    free(ts);
}

/* Strict state is allocated lazily, for the format in use. */
static int strict_prepare(struct scrape_parser *p)
{
    if (!p->opts.strict)
        return 0;
    if (p->opts.format == SCRAPE_FORMAT_OPENMETRICS && !p->oms) {
        struct om_strict *st = calloc(1, sizeof *st);
        if (!st)
            return SS_ENOMEM;
        ss_arena_init(&st->arena, 16384);
        ss_buf_init(&st->f.name, 0);
        ss_buf_init(&st->f.unit, 0);
        ss_buf_init(&st->f.group, 0);
        ss_buf_init(&st->key, 0);
        p->oms = st;
        /* The key buffer always has storage, so an empty key is never a NULL pointer. */
        if (ss_buf_reserve(&st->key, 256))
            return SS_ENOMEM;
    }
    if (p->opts.format == SCRAPE_FORMAT_TEXT && !p->ts) {
        struct text_strict *ts = calloc(1, sizeof *ts);
        if (!ts)
            return SS_ENOMEM;
        ss_arena_init(&ts->arena, 16384);
        p->ts = ts;
    }
    return 0;
}

int scrape_parser_new(const struct scrape_parser_opts *opts, struct scrape_parser **out)
{
    if (!out)
        return SS_EINVAL;
    *out = NULL;
    struct scrape_parser *p = calloc(1, sizeof *p);
    if (!p)
        return SS_ENOMEM;
    if (opts)
        p->opts = *opts;
    p->max_line = p->opts.max_line_len ? p->opts.max_line_len : PARSER_DEFAULT_MAX_LINE;
    ss_buf_init(&p->partial, 0);
    ss_buf_init(&p->scratch, 0);
    ss_buf_init(&p->numbuf, 0);
    ss_buf_init(&p->fam, 0);
    int rc = strict_prepare(p);
    if (rc) {
        scrape_parser_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void scrape_parser_reset(struct scrape_parser *p, enum scrape_format format)
{
    if (!p)
        return;
    p->opts.format = format;
    ss_buf_reset(&p->partial);
    ss_buf_reset(&p->fam);
    p->fam_set = false;
    p->famtype = SCRAPE_TYPE_UNKNOWN;
    p->memo_len = 0;
    p->line = 0;
    p->pending_nl = 0;
    p->final_line = false;
    p->stopped = false;
    p->eof = false;
    p->failed = 0;
    p->errmsg[0] = '\0';
    strict_reset(p);
    if (strict_prepare(p)) {
        /* Reported by the next feed/finish. */
        p->failed = SS_ENOMEM;
        snprintf(p->errmsg, sizeof p->errmsg, "line 0: out of memory");
    }
}

/* OpenMetrics: nothing may follow # EOF. In validation mode it is reported once and
 * the rest of the body is ignored. */
static int data_after_eof(struct scrape_parser *p, const struct scrape_parser_cb *cb)
{
    p->line++;
    int rc = perr(p, "unexpected data after # EOF");
    if (cb && cb->error) {
        rc = report_error(p, cb);
        p->stopped = true;
    }
    return rc;
}

int scrape_parser_feed(struct scrape_parser *p, const char *buf, size_t len,
                       const struct scrape_parser_cb *cb)
{
    if (!p)
        return SS_EINVAL;
    if (p->failed)
        return p->failed;
    if (len == 0 || p->stopped)
        return 0;
    if (!buf)
        return SS_EINVAL;
    if (p->eof)
        return data_after_eof(p, cb);
    const char *s = buf, *end = buf + len;
    int rc;

    /* First finish the line that earlier chunks left unfinished. */
    while (p->partial.len) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t take = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (p->partial.len + take > p->max_line) {
            p->line++;
            return fail(p, SS_ELIMIT, "line longer than %zu bytes", p->max_line);
        }
        if ((rc = ss_buf_append(&p->partial, s, take)))
            return fail(p, rc, "out of memory");
        if (!nl)
            return 0;
        s = nl + 1;
        bool more;
        rc = parse_line(p, p->partial.data, p->partial.len, cb, &more);
        if (more) {
            /* The newline is inside a quoted string: keep it and read on. */
            if ((rc = ss_buf_append(&p->partial, "\n", 1)))
                return fail(p, rc, "out of memory");
            continue;
        }
        ss_buf_reset(&p->partial);
        if (rc)
            return rc;
        if (p->stopped)
            return 0;
        if (p->eof && s < end)
            return data_after_eof(p, cb);
    }
    /* Then every complete line in place. */
    const char *ls = s, *from = s;
    while (from < end) {
        const char *nl = memchr(from, '\n', (size_t)(end - from));
        if (!nl)
            break;
        bool more;
        rc = parse_line(p, ls, (size_t)(nl - ls), cb, &more);
        from = nl + 1;
        if (more)
            continue;
        if (rc)
            return rc;
        if (p->stopped)
            return 0;
        ls = from;
        if (p->eof && ls < end)
            return data_after_eof(p, cb);
    }
    /* Keep the unfinished tail. */
    if (ls < end) {
        size_t rest = (size_t)(end - ls);
        if (rest > p->max_line) {
            p->line++;
            return fail(p, SS_ELIMIT, "line longer than %zu bytes", p->max_line);
        }
        if ((rc = ss_buf_append(&p->partial, ls, rest)))
            return fail(p, rc, "out of memory");
    }
    return 0;
}

int scrape_parser_finish(struct scrape_parser *p, const struct scrape_parser_cb *cb)
{
    if (!p)
        return SS_EINVAL;
    if (p->failed)
        return p->failed;
    if (p->stopped)
        return 0;
    int rc;
    p->final_line = true;
    if (p->partial.len) {
        if (p->opts.format == SCRAPE_FORMAT_TEXT && p->opts.strict) {
            /* prometheus/common: the last line must end in a newline. It reads the
             * line first, so report an error inside it before the missing newline;
             * the line's sample is not emitted. PromParser appends a newline, so
             * lenient mode parses the line as is. */
            const char *e = p->partial.data + p->partial.len;
            if (skip_ws(p->partial.data, e) == e)
                return 0; /* end of input while skipping a line's leading blanks is fine */
            bool more;
            /* validation still hears of the line's problems, not of its sample */
            struct scrape_parser_cb errs = {NULL, NULL, cb ? cb->ud : NULL, cb ? cb->error : NULL};
            if ((rc = parse_line(p, p->partial.data, p->partial.len, &errs, &more)))
                return rc;
            ss_buf_reset(&p->partial);
            p->line_start = NULL;
            rc = perr(p, "unexpected end of input stream (no newline at end of body)");
            return cb && cb->error ? report_error(p, cb) : rc;
        }
        bool more;
        rc = parse_line(p, p->partial.data, p->partial.len, cb, &more);
        ss_buf_reset(&p->partial);
        if (rc)
            return rc;
    }
    p->final_line = false;
    if (p->opts.format == SCRAPE_FORMAT_OPENMETRICS && !p->eof && !p->stopped) {
        p->line_start = NULL;
        if (!p->line)
            p->line = 1; /* an empty body: the # EOF line is missing at line 1 */
        rc = perr(p, "data does not end with # EOF");
        return cb && cb->error ? report_error(p, cb) : rc;
    }
    /* A second finish without reset must not parse anything again. */
    return 0;
}

const char *scrape_parser_error(const struct scrape_parser *p)
{
    if (!p)
        return "no parser";
    return p->errmsg;
}

void scrape_parser_free(struct scrape_parser *p)
{
    if (!p)
        return;
    ss_buf_free(&p->partial);
    ss_buf_free(&p->scratch);
    ss_buf_free(&p->numbuf);
    ss_buf_free(&p->fam);
    free(p->labels.v);
    free(p->elabels.v);
    free(p->idx);
    om_strict_free(p->oms);
    text_strict_free(p->ts);
    free(p);
}
