/* relabel.c: Prometheus relabel_config rules, compiled once and applied to label sets.
 *
 * The behaviour follows Prometheus 2.42 model/relabel to the letter: the same defaults,
 * the same relabel.Config.Validate checks and messages, and the same per-action
 * semantics (including quirks, which are called out where they occur). Regexes are
 * Go RE2 syntax; we translate them into an equivalent PCRE2 pattern with a whitelisting
 * translator, so that anything RE2 would reject (backreferences, lookaround, atomic
 * groups, possessive quantifiers, verbs, ...) is rejected here too, and the few places
 * where the two dialects give the same syntax a different meaning (\s, \v, octal
 * escapes, `{,n}`, POSIX collating elements, ...) keep the RE2 meaning.
 *
 * Threading: a compiled rule owns its scratch buffers and PCRE2 match data, so that
 * processing allocates nothing in steady state. One rule must therefore not be used
 * by two threads at once; give each scrape loop its own compiled rules.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include <openssl/evp.h>
#include <pcre2.h>

#include "scrape.h"

#define COMPONENT "relabel"

/* Longest concatenated source value, expansion result or lower/upper-cased value we
 * handle. Longer values make the rule a no-op for that label set (logged). */
#define RELABEL_MAX_VALUE ((size_t)4 << 20)
/* Longest regex (as written) and translated pattern. */
#define RELABEL_MAX_REGEX   ((size_t)64 << 10)
#define RELABEL_MAX_PATTERN ((size_t)1 << 20)
/* RE2 limits: repeat counts and nesting depth (Go regexp/syntax). */
#define RE2_MAX_REPEAT 1000
#define RE2_MAX_DEPTH  1000

/* ======================================================================== */
/* Action names                                                             */
/* ======================================================================== */

static const char *const action_names[] = {
    [SCRAPE_RELABEL_REPLACE] = "replace",     [SCRAPE_RELABEL_KEEP] = "keep",
    [SCRAPE_RELABEL_DROP] = "drop",           [SCRAPE_RELABEL_KEEPEQUAL] = "keepequal",
    [SCRAPE_RELABEL_DROPEQUAL] = "dropequal", [SCRAPE_RELABEL_HASHMOD] = "hashmod",
    [SCRAPE_RELABEL_LABELMAP] = "labelmap",   [SCRAPE_RELABEL_LABELDROP] = "labeldrop",
    [SCRAPE_RELABEL_LABELKEEP] = "labelkeep", [SCRAPE_RELABEL_LOWERCASE] = "lowercase",
    [SCRAPE_RELABEL_UPPERCASE] = "uppercase",
};
#define NACTIONS (sizeof action_names / sizeof action_names[0])

/* ======================================================================== */
/* UTF-8 and Unicode helpers                                                */
/* ======================================================================== */

/* Decode one rune exactly as Go's utf8.DecodeRune does: returns the width and sets *r,
 * or returns 1 with *r = -1 for an invalid byte (overlong forms, surrogates and values
 * above U+10FFFF are invalid; each bad byte counts as one U+FFFD). n must be > 0. */
static size_t utf8_decode(const unsigned char *s, size_t n, int32_t *r)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    unsigned char lo = 0x80, hi = 0xBF;
    size_t w;
    int32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        w = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        w = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        w = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *r = -1;
        return 1;
    }
    if (n < w || s[1] < lo || s[1] > hi) {
        *r = -1;
        return 1;
    }
    v = (v << 6) | (s[1] & 0x3F);
    for (size_t i = 2; i < w; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            *r = -1;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *r = v;
    return w;
}

static size_t utf8_encode(char *out, uint32_t r)
{
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xC0 | (r >> 6));
        out[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xE0 | (r >> 12));
        out[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        out[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int32_t r;
        size_t w = utf8_decode(p + i, n - i, &r);
        if (r < 0)
            return false;
        i += w;
    }
    return true;
}

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
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int32_t r;
        size_t w = utf8_decode(p + i, n - i, &r);
        char enc[4];
        size_t elen = utf8_encode(enc, r < 0 ? 0xFFFD : (uint32_t)rune_case(r, upper));
        if ((rc = ss_buf_append(out, enc, elen)))
            return rc;
        i += w;
    }
    return 0;
}

/* Prometheus 2.42 model.LabelName.IsValid: ^[a-zA-Z_][a-zA-Z0-9_]*$ */
static bool label_name_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok =
            c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool is_word(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
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
/* RE2 -> PCRE2 translation                                                 */
/* ======================================================================== */

/* One open group (or the top level) while translating. The weights follow Go's
 * repeatIsValid: the largest product of nested {n,m} counts must stay <= 1000. */
struct tr_frame {
    bool has_atom;      /* something a quantifier may apply to */
    bool atom_repeated; /* the last atom already carries a quantifier */
    size_t atom_start;  /* output offset where the last atom begins */
    uint32_t atom_w;    /* repeat weight of the last atom */
    uint32_t done_w;    /* max weight of earlier atoms in this group */
};

struct tr {
    const char *re;
    size_t len;
    struct ss_buf out; /* translated pattern */
    uint32_t *map;     /* map[i]: regex offset that produced out byte i */
    size_t mapcap;
    struct ss_buf pending; /* flag settings deferred past a following quantifier */
    size_t pending_off;
    struct tr_frame *stack;
    size_t depth;
    bool last_repeat;       /* previous token was a quantifier (RE2 forbids stacking) */
    size_t last_repeat_off; /* where that quantifier began, for messages */
    uint32_t ncap;
    char **names; /* names[i] for capture group i (1-based), NULL if unnamed */
    size_t names_cap;
    char *msg;
    size_t msglen;
    size_t err_off;
};

static int tr_fail(struct tr *t, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tr_fail(struct tr *t, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, t->msglen, fmt, ap);
    va_end(ap);
    t->err_off = off;
    return SS_ECONFIG;
}

static int tr_map_reserve(struct tr *t, size_t need)
{
    if (need <= t->mapcap)
        return 0;
    size_t ncap = t->mapcap ? t->mapcap : 256;
    while (ncap < need)
        ncap *= 2;
    uint32_t *m = realloc(t->map, ncap * sizeof *m);
    if (!m)
        return SS_ENOMEM;
    t->map = m;
    t->mapcap = ncap;
    return 0;
}

static int tr_emit(struct tr *t, const char *s, size_t n, size_t src_off)
{
    int rc = tr_map_reserve(t, t->out.len + n);
    if (rc)
        return rc;
    size_t at = t->out.len;
    if ((rc = ss_buf_append(&t->out, s, n))) {
        if (rc == SS_ELIMIT)
            return tr_fail(t, src_off, "expression too large");
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        t->map[at + i] = (uint32_t)src_off;
    return 0;
}

static int tr_emit_str(struct tr *t, const char *s, size_t src_off)
{
    return tr_emit(t, s, strlen(s), src_off);
}

/* A literal rune: ASCII letters and digits as themselves, everything else as \x{..}
 * so that no character can take a PCRE2-only meaning. */
static int tr_emit_rune(struct tr *t, int32_t r, size_t src_off)
{
    if (r >= 0xD800 && r <= 0xDFFF)
        return tr_fail(t, src_off, "surrogate code point U+%04" PRIX32 " is not supported", (uint32_t)r);
    char buf[16];
    if ((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
        buf[0] = (char)r;
        return tr_emit(t, buf, 1, src_off);
    }
    int n = snprintf(buf, sizeof buf, "\\x{%" PRIx32 "}", (uint32_t)r);
    return tr_emit(t, buf, (size_t)n, src_off);
}

static int tr_flush_pending(struct tr *t)
{
    if (!t->pending.len)
        return 0;
    int rc = tr_emit(t, t->pending.data, t->pending.len, t->pending_off);
    ss_buf_reset(&t->pending);
    return rc;
}

/* A new atom starts at the current output offset (call before emitting it). */
static int tr_atom_begin(struct tr *t)
{
    int rc = tr_flush_pending(t);
    if (rc)
        return rc;
    struct tr_frame *f = &t->stack[t->depth];
    if (f->has_atom && f->atom_w > f->done_w)
        f->done_w = f->atom_w;
    f->has_atom = true;
    f->atom_repeated = false;
    f->atom_start = t->out.len;
    f->atom_w = 1;
    t->last_repeat = false;
    return 0;
}

/* Wrap the last atom in (?: ) so a second quantifier applies to the repeated atom,
 * as Go does for `a*(?i)*`. */
static int tr_wrap_atom(struct tr *t)
{
    struct tr_frame *f = &t->stack[t->depth];
    size_t at = f->atom_start, tail = t->out.len - at;
    uint32_t src = t->map[at];
    int rc = tr_map_reserve(t, t->out.len + 3);
    if (rc)
        return rc;
    if ((rc = ss_buf_reserve(&t->out, 3)))
        return rc == SS_ELIMIT ? tr_fail(t, src, "expression too large") : rc;
    memmove(t->out.data + at + 3, t->out.data + at, tail);
    memmove(t->map + at + 3, t->map + at, tail * sizeof *t->map);
    memcpy(t->out.data + at, "(?:", 3);
    t->map[at] = t->map[at + 1] = t->map[at + 2] = src;
    t->out.len += 3;
    t->out.data[t->out.len] = '\0';
    return tr_emit(t, ")", 1, src);
}

/* Apply a quantifier (already parsed) spanning re[off, end). min/max as in Go's
 * OpRepeat; is_brace is true for {n,m}. */
static int tr_quantifier(struct tr *t, size_t off, size_t end, int min, int max, bool is_brace,
                         const char *text)
{
    struct tr_frame *f = &t->stack[t->depth];
    int len = (int)(end - off);
    if (t->last_repeat)
        return tr_fail(t, t->last_repeat_off, "invalid nested repetition operator: `%.*s`",
                       (int)(end - t->last_repeat_off), t->re + t->last_repeat_off);
    if (!f->has_atom)
        return tr_fail(t, off, "missing argument to repetition operator: `%.*s`", len, t->re + off);
    int rc;
    if (f->atom_repeated && (rc = tr_wrap_atom(t)))
        return rc;
    if (is_brace) {
        /* Go's repeatIsValid: the product of nested counts may not exceed 1000. */
        uint32_t m = (uint32_t)(max >= 0 ? max : min);
        uint32_t w = m == 0 ? 0 : m * f->atom_w;
        if ((min >= 2 || max >= 2) && m != 0 && (f->atom_w > RE2_MAX_REPEAT || w > RE2_MAX_REPEAT))
            return tr_fail(t, off, "invalid repeat count: `%.*s`", len, t->re + off);
        f->atom_w = w > RE2_MAX_REPEAT ? RE2_MAX_REPEAT + 1 : w;
    }
    if ((rc = tr_emit_str(t, text, off)))
        return rc;
    f->atom_repeated = true;
    t->last_repeat = true;
    t->last_repeat_off = off;
    return tr_flush_pending(t);
}

/* Go parseInt for repeat counts: no leading zeros; -1 when >= 1e8. */
static bool re2_parse_int(const char *s, size_t n, size_t *i, int *out)
{
    size_t j = *i;
    if (j >= n || s[j] < '0' || s[j] > '9')
        return false;
    if (j + 1 < n && s[j] == '0' && s[j + 1] >= '0' && s[j + 1] <= '9')
        return false;
    int v = 0;
    while (j < n && s[j] >= '0' && s[j] <= '9') {
        if (v >= 0) {
            if (v >= 100000000)
                v = -1;
            else
                v = v * 10 + (s[j] - '0');
        }
        j++;
    }
    *i = j;
    *out = v;
    return true;
}

/* Go parseRepeat: {n}, {n,}, {n,m}. Returns false when the text is not a repeat (then
 * `{` is a literal). */
static bool re2_parse_repeat(const char *s, size_t n, size_t *i, int *min, int *max)
{
    size_t j = *i + 1;
    if (!re2_parse_int(s, n, &j, min))
        return false;
    if (j >= n)
        return false;
    if (s[j] != ',') {
        *max = *min;
    } else {
        j++;
        if (j >= n)
            return false;
        if (s[j] == '}') {
            *max = -1;
        } else {
            if (!re2_parse_int(s, n, &j, max))
                return false;
            if (*max < 0)
                *min = -1;
        }
    }
    if (j >= n || s[j] != '}')
        return false;
    *i = j + 1;
    return true;
}

static int hex_val(char h)
{
    return (h >= '0' && h <= '9')   ? h - '0'
           : (h >= 'a' && h <= 'f') ? h - 'a' + 10
           : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                    : -1;
}

/* Go regexp/syntax parseEscape: one escaped literal rune. *i points at the '\'. */
static int re2_parse_escape(struct tr *t, size_t *i, int32_t *out)
{
    const char *s = t->re;
    size_t n = t->len, start = *i, j = *i + 1;
    if (j >= n)
        return tr_fail(t, start, "trailing backslash at end of expression");
    int32_t c;
    size_t w = utf8_decode((const unsigned char *)s + j, n - j, &c);
    if (c < 0)
        return tr_fail(t, j, "invalid UTF-8");
    j += w;
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        /* A single non-zero digit would be a backreference: not supported. */
        if (j >= n || s[j] < '0' || s[j] > '7')
            break;
        /* fallthrough */
    case '0': {
        int32_t r = c - '0';
        for (int k = 1; k < 3 && j < n && s[j] >= '0' && s[j] <= '7'; k++)
            r = r * 8 + (s[j++] - '0');
        *i = j;
        *out = r;
        return 0;
    }
    case 'x': {
        if (j >= n)
            break;
        if (s[j] == '{') {
            j++;
            int32_t r = 0;
            int nhex = 0;
            for (;;) {
                if (j >= n)
                    goto bad;
                char h = s[j++];
                if (h == '}')
                    break;
                int v = hex_val(h);
                if (v < 0)
                    goto bad;
                r = r * 16 + v;
                if (r > 0x10FFFF)
                    goto bad;
                nhex++;
            }
            if (nhex == 0)
                goto bad;
            *i = j;
            *out = r;
            return 0;
        }
        int v[2];
        for (int k = 0; k < 2; k++) {
            if (j + (size_t)k >= n)
                goto bad;
            v[k] = hex_val(s[j + (size_t)k]);
            if (v[k] < 0)
                goto bad;
        }
        *i = j + 2;
        *out = v[0] * 16 + v[1];
        return 0;
    }
    case 'a':
        *out = '\a';
        *i = j;
        return 0;
    case 'f':
        *out = '\f';
        *i = j;
        return 0;
    case 'n':
        *out = '\n';
        *i = j;
        return 0;
    case 'r':
        *out = '\r';
        *i = j;
        return 0;
    case 't':
        *out = '\t';
        *i = j;
        return 0;
    case 'v':
        *out = '\v';
        *i = j;
        return 0;
    default:
        /* Escaped ASCII punctuation is always itself. */
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            *i = j;
            *out = c;
            return 0;
        }
        break;
    }
bad:
    if (j > n)
        j = n;
    return tr_fail(t, start, "invalid escape sequence: `%.*s`", (int)(j - start), s + start);
}

/* Go's unicode.Categories (plus "Any") and unicode.Scripts as of Go 1.20 (Unicode 13).
 * PCRE2 knows more names (and matches them loosely), so we check against Go's list. */
static const char *const go_unicode_names[] = {
    "Any",
    "C",
    "Cc",
    "Cf",
    "Co",
    "Cs",
    "L",
    "Ll",
    "Lm",
    "Lo",
    "Lt",
    "Lu",
    "M",
    "Mc",
    "Me",
    "Mn",
    "N",
    "Nd",
    "Nl",
    "No",
    "P",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Pi",
    "Po",
    "Ps",
    "S",
    "Sc",
    "Sk",
    "Sm",
    "So",
    "Z",
    "Zl",
    "Zp",
    "Zs",
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Ugaritic",
    "Vai",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
};

/* \pX, \p{Name}, \p{^Name}, \PX, ... at t->re[*i] == '\\'. Emits \p{Name} or \P{Name}. */
static int tr_unicode_class(struct tr *t, size_t *i)
{
    const char *s = t->re;
    size_t n = t->len, start = *i, j = *i + 2;
    bool neg = s[*i + 1] == 'P';
    const char *name;
    size_t nlen;
    if (j < n && s[j] == '{') {
        const char *close = memchr(s + j, '}', n - j);
        if (!close)
            return tr_fail(t, start, "invalid character class range: `%.*s`", (int)(n - start), s + start);
        name = s + j + 1;
        nlen = (size_t)(close - name);
        j = (size_t)(close - s) + 1;
    } else {
        int32_t r;
        size_t w = j < n ? utf8_decode((const unsigned char *)s + j, n - j, &r) : 0;
        name = s + j;
        nlen = w;
        j += w;
    }
    if (nlen && name[0] == '^') {
        neg = !neg;
        name++;
        nlen--;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof go_unicode_names / sizeof go_unicode_names[0] && !known; k++)
        known = strlen(go_unicode_names[k]) == nlen && memcmp(go_unicode_names[k], name, nlen) == 0;
    if (!known)
        return tr_fail(t, start, "invalid character class range: `%.*s`", (int)(j - start), s + start);
    char buf[64];
    int len = snprintf(buf, sizeof buf, "\\%c{%.*s}", neg ? 'P' : 'p', (int)nlen, name);
    *i = j;
    return tr_emit(t, buf, (size_t)len, start);
}

/* \d \D \w \W \s \S. RE2's \s is [\t\n\f\r ] (no \v, unlike PCRE2). */
static bool tr_perl_class(struct tr *t, size_t *i, bool in_class, int *rc)
{
    size_t start = *i;
    if (start + 1 >= t->len || t->re[start] != '\\')
        return false;
    const char *rep;
    switch (t->re[start + 1]) {
    case 'd': rep = "\\d"; break;
    case 'D': rep = "\\D"; break;
    case 'w': rep = "\\w"; break;
    case 'W': rep = "\\W"; break;
    case 's': rep = in_class ? "\\t\\n\\f\\r\\x{20}" : "[\\t\\n\\f\\r\\x{20}]"; break;
    case 'S':
        rep = in_class ? "\\x{0}-\\x{8}\\x{b}\\x{e}-\\x{1f}\\x{21}-\\x{10ffff}" : "[^\\t\\n\\f\\r\\x{20}]";
        break;
    default: return false;
    }
    *i = start + 2;
    *rc = tr_emit_str(t, rep, start);
    return true;
}

static const char *const posix_classes[] = {
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
    "lower", "print", "punct", "space", "upper", "word",  "xdigit",
};

/* A class character: an escape or a plain rune. */
static int tr_class_char(struct tr *t, size_t *i, int32_t *out)
{
    if (*i >= t->len)
        return tr_fail(t, t->len, "missing closing ]");
    if (t->re[*i] == '\\')
        return re2_parse_escape(t, i, out);
    size_t w = utf8_decode((const unsigned char *)t->re + *i, t->len - *i, out);
    if (*out < 0)
        return tr_fail(t, *i, "invalid UTF-8");
    *i += w;
    return 0;
}

/* [...] following Go's parseClass. t->re[*i] == '['. */
static int tr_class(struct tr *t, size_t *i)
{
    const char *s = t->re;
    size_t n = t->len, start = *i, j = *i + 1;
    int rc;
    if ((rc = tr_atom_begin(t)))
        return rc;
    bool neg = j < n && s[j] == '^';
    if (neg)
        j++;
    if ((rc = tr_emit_str(t, neg ? "[^" : "[", start)))
        return rc;
    bool first = true;
    while (j >= n || s[j] != ']' || first) {
        if (j >= n)
            return tr_fail(t, start, "missing closing ]: `%.*s`", (int)(n - start), s + start);
        first = false;
        size_t el = j;
        if (n - j > 2 && s[j] == '[' && s[j + 1] == ':') {
            const char *end = NULL;
            for (size_t k = j + 2; k + 1 < n; k++)
                if (s[k] == ':' && s[k + 1] == ']') {
                    end = s + k;
                    break;
                }
            if (end) {
                const char *name = s + j + 2;
                size_t nlen = (size_t)(end - name);
                bool cneg = nlen && name[0] == '^';
                if (cneg) {
                    name++;
                    nlen--;
                }
                bool known = false;
                for (size_t k = 0; k < sizeof posix_classes / sizeof posix_classes[0]; k++)
                    if (strlen(posix_classes[k]) == nlen && !memcmp(posix_classes[k], name, nlen))
                        known = true;
                size_t cend = (size_t)(end - s) + 2;
                if (!known)
                    return tr_fail(t, el, "invalid character class range: `%.*s`", (int)(cend - el), s + el);
                char buf[32];
                int bl = snprintf(buf, sizeof buf, "[:%s%.*s:]", cneg ? "^" : "", (int)nlen, name);
                if ((rc = tr_emit(t, buf, (size_t)bl, el)))
                    return rc;
                j = cend;
                continue;
            }
        }
        if (j + 1 < n && s[j] == '\\' && (s[j + 1] == 'p' || s[j + 1] == 'P')) {
            if ((rc = tr_unicode_class(t, &j)))
                return rc;
            continue;
        }
        if (tr_perl_class(t, &j, true, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        int32_t lo, hi;
        if ((rc = tr_class_char(t, &j, &lo)))
            return rc;
        hi = lo;
        /* [a-] means a or '-': a range needs something other than ']' after '-'. */
        if (n - j >= 2 && s[j] == '-' && s[j + 1] != ']') {
            j++;
            if ((rc = tr_class_char(t, &j, &hi)))
                return rc;
            if (hi < lo)
                return tr_fail(t, el, "invalid character class range: `%.*s`", (int)(j - el), s + el);
        }
        if ((rc = tr_emit_rune(t, lo, el)))
            return rc;
        if (hi != lo) {
            if ((rc = tr_emit_str(t, "-", el)) || (rc = tr_emit_rune(t, hi, el)))
                return rc;
        }
    }
    *i = j + 1;
    return tr_emit_str(t, "]", j);
}

enum perl_group { GROUP_NONCAPTURE, GROUP_NAMED, GROUP_FLAGS_ONLY };

/* (?flags), (?flags:...), (?P<name>...) at t->re[*i] == '(' with '?' next, following
 * Go's parsePerlFlags. Sets *kind; for GROUP_NAMED, gname and gnlen point into the regex.
 * Everything else after "(?" (lookaround, atomic groups, comments, recursion, ...) is
 * rejected, as RE2 rejects it. */
static int tr_perl_group(struct tr *t, size_t *i, enum perl_group *kind, const char **gname, size_t *gnlen)
{
    const char *s = t->re;
    size_t n = t->len, start = *i, j = *i + 2;
    int rc;
    if (n - start > 4 && s[j] == 'P' && s[j + 1] == '<') {
        const char *gt = memchr(s + j + 2, '>', n - j - 2);
        if (!gt)
            return tr_fail(t, start, "invalid named capture: `%.*s`", (int)(n - start), s + start);
        const char *name = s + j + 2;
        size_t nlen = (size_t)(gt - name), end = (size_t)(gt - s) + 1;
        bool ok = nlen > 0;
        for (size_t k = 0; k < nlen && ok; k++)
            ok = is_word(name[k]);
        if (!ok)
            return tr_fail(t, start, "invalid named capture: `%.*s`", (int)(end - start), s + start);
        *i = end;
        *kind = GROUP_NAMED;
        *gname = name;
        *gnlen = nlen;
        return 0;
    }
    /* Flags: i, m, s, U, one optional '-' followed by at least one flag, then ':' or ')'. */
    char on[8] = "", off[8] = "";
    size_t non = 0, noff = 0;
    bool neg = false, saw = false;
    while (j < n) {
        char c = s[j++];
        switch (c) {
        case 'i':
        case 'm':
        case 's':
        case 'U': {
            char *set = neg ? off : on;
            size_t *cnt = neg ? &noff : &non;
            if (!memchr(set, c, *cnt) && *cnt < 4)
                set[(*cnt)++] = c;
            saw = true;
            continue;
        }
        case '-':
            if (neg)
                goto bad;
            neg = true;
            saw = false;
            continue;
        case ':':
        case ')': {
            if (neg && !saw)
                goto bad;
            /* PCRE2 applies "(?i-i)" left to right like Go does: the last one wins. */
            char buf[32];
            int bl =
                snprintf(buf, sizeof buf, "(?%.*s%s%.*s%c", (int)non, on, noff ? "-" : "", (int)noff, off, c);
            *i = j;
            if (c == ':') {
                *kind = GROUP_NONCAPTURE;
                if ((rc = tr_atom_begin(t)))
                    return rc;
                return tr_emit(t, buf, (size_t)bl, start);
            }
            *kind = GROUP_FLAGS_ONLY;
            /* Deferred until the next token: if that is a quantifier it applies to the
             * atom before the flags (Go), which PCRE2 would refuse after "(?i)". */
            if (non || noff) {
                if (!t->pending.len)
                    t->pending_off = start;
                if ((rc = ss_buf_append(&t->pending, buf, (size_t)bl)))
                    return rc == SS_ELIMIT ? tr_fail(t, start, "expression too large") : rc;
            }
            t->last_repeat = false;
            return 0;
        }
        default: goto bad;
        }
    }
bad:
    return tr_fail(t, start, "invalid or unsupported Perl syntax: `%.*s`", (int)(j - start), s + start);
}

static int tr_add_name(struct tr *t, uint32_t group, const char *name, size_t nlen)
{
    if (group >= t->names_cap) {
        size_t ncap = t->names_cap ? t->names_cap * 2 : 8;
        while (ncap <= group)
            ncap *= 2;
        char **nn = realloc(t->names, ncap * sizeof *nn);
        if (!nn)
            return SS_ENOMEM;
        memset(nn + t->names_cap, 0, (ncap - t->names_cap) * sizeof *nn);
        t->names = nn;
        t->names_cap = ncap;
    }
    if (name) {
        t->names[group] = strndup(name, nlen);
        if (!t->names[group])
            return SS_ENOMEM;
    }
    return 0;
}

static int tr_open(struct tr *t, size_t off)
{
    if (t->depth + 1 >= RE2_MAX_DEPTH)
        return tr_fail(t, off, "expression nests too deeply");
    t->depth++;
    struct tr_frame *f = &t->stack[t->depth];
    memset(f, 0, sizeof *f);
    f->done_w = 1;
    t->last_repeat = false;
    return 0;
}

/* Translate t->re into t->out. Returns 0 or SS_ECONFIG with t->msg set. */
static int translate(struct tr *t)
{
    const char *s = t->re;
    size_t n = t->len, i = 0;
    int rc;
    t->stack[0].done_w = 1;
    while (i < n) {
        char c = s[i];
        switch (c) {
        case '(': {
            if (i + 1 < n && s[i + 1] == '?') {
                size_t start = i;
                enum perl_group kind = GROUP_NONCAPTURE; /* set on success; gcc -O3 cannot tell */
                const char *gname = NULL;
                size_t gnlen = 0;
                if ((rc = tr_perl_group(t, &i, &kind, &gname, &gnlen)))
                    return rc;
                if (kind == GROUP_FLAGS_ONLY)
                    break;
                if (kind == GROUP_NAMED) {
                    if ((rc = tr_atom_begin(t)) || (rc = tr_emit_str(t, "(", start)))
                        return rc;
                    t->ncap++;
                    if ((rc = tr_add_name(t, t->ncap, gname, gnlen)))
                        return rc;
                }
                if ((rc = tr_open(t, start)))
                    return rc;
                break;
            }
            if ((rc = tr_atom_begin(t)) || (rc = tr_emit_str(t, "(", i)))
                return rc;
            t->ncap++;
            if ((rc = tr_add_name(t, t->ncap, NULL, 0)) || (rc = tr_open(t, i)))
                return rc;
            i++;
            break;
        }
        case ')': {
            if (t->depth == 0)
                return tr_fail(t, i, "unmatched closing parenthesis");
            if ((rc = tr_flush_pending(t)))
                return rc;
            struct tr_frame *f = &t->stack[t->depth];
            uint32_t w = f->done_w;
            if (f->has_atom && f->atom_w > w)
                w = f->atom_w;
            t->depth--;
            if ((rc = tr_emit_str(t, ")", i)))
                return rc;
            struct tr_frame *p = &t->stack[t->depth];
            p->atom_w = w; /* atom_start was set when the group opened */
            p->atom_repeated = false;
            t->last_repeat = false;
            i++;
            break;
        }
        case '|': {
            if ((rc = tr_flush_pending(t)) || (rc = tr_emit_str(t, "|", i)))
                return rc;
            struct tr_frame *f = &t->stack[t->depth];
            if (f->has_atom && f->atom_w > f->done_w)
                f->done_w = f->atom_w;
            f->has_atom = false;
            f->atom_repeated = false;
            t->last_repeat = false;
            i++;
            break;
        }
        case '*':
        case '+':
        case '?': {
            size_t start = i++;
            char q[3] = {c, 0, 0};
            if (i < n && s[i] == '?') {
                q[1] = '?';
                i++;
            }
            if ((rc = tr_quantifier(t, start, i, c == '+' ? 1 : 0, c == '?' ? 1 : -1, false, q)))
                return rc;
            break;
        }
        case '{': {
            size_t start = i, j = i;
            int min = 0, max = 0;
            if (!re2_parse_repeat(s, n, &j, &min, &max)) {
                /* Not a repeat: a literal '{' (RE2), never PCRE2's {,n}. */
                if ((rc = tr_atom_begin(t)) || (rc = tr_emit_rune(t, '{', i)))
                    return rc;
                i++;
                break;
            }
            if (min < 0 || min > RE2_MAX_REPEAT || max > RE2_MAX_REPEAT || (max >= 0 && min > max))
                return tr_fail(t, start, "invalid repeat count: `%.*s`", (int)(j - start), s + start);
            bool lazy = j < n && s[j] == '?';
            if (lazy)
                j++;
            char q[32];
            if (max < 0)
                snprintf(q, sizeof q, "{%d,}%s", min, lazy ? "?" : "");
            else if (max == min)
                snprintf(q, sizeof q, "{%d}%s", min, lazy ? "?" : "");
            else
                snprintf(q, sizeof q, "{%d,%d}%s", min, max, lazy ? "?" : "");
            i = j;
            if ((rc = tr_quantifier(t, start, j, min, max, true, q)))
                return rc;
            break;
        }
        case '^':
        case '$':
        case '.': {
            /* Assertions are wrapped so that RE2's legal `^*` stays legal in PCRE2. */
            const char *rep = c == '^' ? "(?:^)" : c == '$' ? "(?:$)" : ".";
            if ((rc = tr_atom_begin(t)) || (rc = tr_emit_str(t, rep, i)))
                return rc;
            i++;
            break;
        }
        case '[':
            if ((rc = tr_class(t, &i)))
                return rc;
            break;
        case '\\': {
            if (i + 1 >= n)
                return tr_fail(t, i, "trailing backslash at end of expression");
            char e = s[i + 1];
            const char *rep = NULL;
            switch (e) {
            case 'A': rep = "(?:\\A)"; break;
            case 'z': rep = "(?:\\z)"; break;
            case 'b': rep = "(?:\\b)"; break;
            case 'B': rep = "(?:\\B)"; break;
            case 'C': return tr_fail(t, i, "invalid escape sequence: `\\C`");
            default: break;
            }
            if (rep) {
                if ((rc = tr_atom_begin(t)) || (rc = tr_emit_str(t, rep, i)))
                    return rc;
                i += 2;
                break;
            }
            if (e == 'Q') {
                /* \Q...\E: everything up to \E (or the end) is literal. */
                size_t j = i + 2, end = n, next = n;
                for (size_t k = j; k + 1 < n; k++)
                    if (s[k] == '\\' && s[k + 1] == 'E') {
                        end = k;
                        next = k + 2;
                        break;
                    }
                while (j < end) {
                    int32_t r;
                    size_t w = utf8_decode((const unsigned char *)s + j, end - j, &r);
                    if (r < 0)
                        return tr_fail(t, j, "invalid UTF-8");
                    if ((rc = tr_atom_begin(t)) || (rc = tr_emit_rune(t, r, j)))
                        return rc;
                    j += w;
                }
                t->last_repeat = false;
                i = next;
                break;
            }
            if (e == 'p' || e == 'P') {
                if ((rc = tr_atom_begin(t)) || (rc = tr_unicode_class(t, &i)))
                    return rc;
                break;
            }
            if (e == 'd' || e == 'D' || e == 'w' || e == 'W' || e == 's' || e == 'S') {
                if ((rc = tr_atom_begin(t)))
                    return rc;
                tr_perl_class(t, &i, false, &rc);
                if (rc)
                    return rc;
                break;
            }
            int32_t r;
            size_t start = i;
            if ((rc = re2_parse_escape(t, &i, &r)) || (rc = tr_atom_begin(t)) ||
                (rc = tr_emit_rune(t, r, start)))
                return rc;
            break;
        }
        default: {
            int32_t r;
            size_t w = utf8_decode((const unsigned char *)s + i, n - i, &r);
            if (r < 0)
                return tr_fail(t, i, "invalid UTF-8");
            if ((rc = tr_atom_begin(t)) || (rc = tr_emit_rune(t, r, i)))
                return rc;
            i += w;
            break;
        }
        }
    }
    if (t->depth > 0)
        return tr_fail(t, n, "missing closing parenthesis");
    return tr_flush_pending(t);
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
            size_t w = utf8_decode((const unsigned char *)s + j, n - j, &r);
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

struct scrape_relabel_rule {
    enum scrape_relabel_action action;
    struct ss_str *source; /* source label names (owned strings) */
    size_t nsource;
    char *separator;
    size_t seplen;
    char *target; /* target_label as written ("" when unset) */
    size_t targetlen;
    struct tmpl target_tmpl; /* replace */
    struct tmpl repl_tmpl;   /* replace, labelmap */
    uint64_t modulus;

    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t ngroups; /* capture groups, not counting group 0 */
    char **names;     /* names[1..ngroups], NULL if unnamed */
    size_t *spans;    /* 2*(ngroups+1) offsets into the subject, SIZE_MAX unset */

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

int scrape_relabel_action_parse(const char *s, enum scrape_relabel_action *out)
{
    if (!s || !out)
        return SS_EINVAL;
    /* Prometheus lower-cases with strings.ToLower before comparing. */
    char buf[32];
    size_t n = strlen(s), o = 0, i = 0;
    while (i < n) {
        int32_t r;
        size_t w = utf8_decode((const unsigned char *)s + i, n - i, &r);
        r = r < 0 ? 0xFFFD : rune_case(r, false);
        if (r >= 0x80 || o + 1 >= sizeof buf)
            return SS_ECONFIG;
        buf[o++] = (char)r;
        i += w;
    }
    buf[o] = '\0';
    for (size_t k = 0; k < NACTIONS; k++)
        if (strcmp(buf, action_names[k]) == 0) {
            *out = (enum scrape_relabel_action)k;
            return 0;
        }
    return SS_ECONFIG;
}

const char *scrape_relabel_action_name(enum scrape_relabel_action a)
{
    return (unsigned)a < NACTIONS ? action_names[a] : "unknown";
}

void scrape_relabel_rule_free(struct scrape_relabel_rule *r)
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
    pcre2_code_free(r->re);
    if (r->names)
        for (uint32_t i = 0; i <= r->ngroups; i++)
            free(r->names[i]);
    free(r->names);
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

/* Translate and compile the regex ("(.*)" when unset), anchored as Prometheus'
 * NewRegexp does with "^(?:" + s + ")$". */
static int compile_regex(struct scrape_relabel_rule *r, const char *regex, char *err, size_t errlen)
{
    char qre[160], msg[256];
    struct tr t = {0};
    pcre2_compile_context *cctx = NULL;
    int rc;

    t.re = regex;
    t.len = strlen(regex);
    t.msg = msg;
    t.msglen = sizeof msg;
    msg[0] = '\0';
    ss_buf_init(&t.out, RELABEL_MAX_PATTERN);
    ss_buf_init(&t.pending, 4096);
    go_quote(qre, sizeof qre, regex);

    if (t.len > RELABEL_MAX_REGEX) {
        set_err(err, errlen, "invalid regex %s: longer than %zu bytes", qre, RELABEL_MAX_REGEX);
        rc = SS_ECONFIG;
        goto fail;
    }
    t.stack = calloc(RE2_MAX_DEPTH + 1, sizeof *t.stack);
    if (!t.stack) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if ((rc = tr_add_name(&t, 0, NULL, 0)) || (rc = tr_emit_str(&t, "^(?:", 0)))
        goto fail;
    if ((rc = translate(&t))) {
        if (rc == SS_ECONFIG)
            set_err(err, errlen, "invalid regex %s: %s at offset %zu", qre, msg, t.err_off);
        goto fail;
    }
    if ((rc = tr_emit_str(&t, ")$", t.len)))
        goto fail;

    cctx = pcre2_compile_context_create(NULL);
    if (!cctx) {
        rc = SS_ENOMEM;
        goto fail;
    }
    /* RE2's '.' and (?m) line anchors know only '\n'. */
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    int ecode;
    PCRE2_SIZE eoff;
    /* DOLLAR_ENDONLY: RE2's '$' (without m) is end of text, not "before a final \n".
     * ALT_CIRCUMFLEX: RE2's (?m)^ also matches after a trailing '\n'. */
    r->re = pcre2_compile((PCRE2_SPTR)t.out.data, t.out.len,
                          PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_CIRCUMFLEX | PCRE2_NEVER_BACKSLASH_C,
                          &ecode, &eoff, cctx);
    if (!r->re) {
        PCRE2_UCHAR pmsg[256];
        pcre2_get_error_message(ecode, pmsg, sizeof pmsg);
        size_t off = eoff < t.out.len ? t.map[eoff] : t.len;
        set_err(err, errlen, "invalid regex %s: %s at offset %zu", qre, (const char *)pmsg, off);
        rc = SS_ECONFIG;
        goto fail;
    }
    uint32_t ncap = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    if (ncap != t.ncap) {
        set_err(err, errlen, "invalid regex %s: internal error: group count mismatch", qre);
        rc = SS_ECONFIG;
        goto fail;
    }
    /* JIT when the platform has it; the interpreter gives the same answers. */
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
    r->spans = calloc(2 * ((size_t)ncap + 1), sizeof *r->spans);
    if (!r->md || !r->spans) {
        rc = SS_ENOMEM;
        goto fail;
    }
    r->ngroups = ncap;
    if ((rc = tr_add_name(&t, ncap, NULL, 0)))
        goto fail;
    r->names = t.names;
    t.names = NULL;
    rc = 0;
fail:
    if (t.names)
        for (size_t i = 0; i < t.names_cap; i++)
            free(t.names[i]);
    free(t.names);
    free(t.map);
    free(t.stack);
    ss_buf_free(&t.out);
    ss_buf_free(&t.pending);
    pcre2_compile_context_free(cctx);
    return rc;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

int scrape_relabel_compile(const struct scrape_relabel_config *cfg, struct scrape_relabel_rule **out,
                           char *err, size_t errlen)
{
    struct scrape_relabel_rule *r = NULL;
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
    enum scrape_relabel_action act = cfg->action;
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
        if (!label_name_valid(ln, strlen(ln))) {
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
    bool is_target = act == SCRAPE_RELABEL_REPLACE || act == SCRAPE_RELABEL_LOWERCASE ||
                     act == SCRAPE_RELABEL_UPPERCASE || act == SCRAPE_RELABEL_KEEPEQUAL ||
                     act == SCRAPE_RELABEL_DROPEQUAL;
    bool is_equal = act == SCRAPE_RELABEL_KEEPEQUAL || act == SCRAPE_RELABEL_DROPEQUAL;

    /* relabel.Config.Validate (Prometheus 2.42), in its order, with its messages. */
    rc = SS_ECONFIG;
    if (act == SCRAPE_RELABEL_HASHMOD && cfg->modulus == 0) {
        /* has_modulus does not matter: an explicit 0 is as invalid as a missing one. */
        set_err(err, errlen, "relabel configuration for hashmod requires non-zero modulus");
        goto fail;
    }
    if ((is_target || act == SCRAPE_RELABEL_HASHMOD) && target[0] == '\0') {
        set_err(err, errlen, "relabel configuration for %s action requires 'target_label' value", an);
        goto fail;
    }
    if (is_target && !relabel_target_valid(target)) {
        go_quote(q, sizeof q, target);
        set_err(err, errlen, "%s is invalid 'target_label' for %s action", q, an);
        goto fail;
    }
    if ((act == SCRAPE_RELABEL_LOWERCASE || act == SCRAPE_RELABEL_UPPERCASE || is_equal) &&
        strcmp(repl, "$1") != 0) {
        set_err(err, errlen, "'replacement' can not be set for %s action", an);
        goto fail;
    }
    if (act == SCRAPE_RELABEL_LABELMAP && !relabel_target_valid(repl)) {
        go_quote(q, sizeof q, repl);
        set_err(err, errlen, "%s is invalid 'replacement' for %s action", q, an);
        goto fail;
    }
    if (act == SCRAPE_RELABEL_HASHMOD && !label_name_valid(target, strlen(target))) {
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
    if ((act == SCRAPE_RELABEL_LABELDROP || act == SCRAPE_RELABEL_LABELKEEP) &&
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
    if (act == SCRAPE_RELABEL_REPLACE && (rc = tmpl_parse(&r->target_tmpl, target)))
        goto fail;
    if ((act == SCRAPE_RELABEL_REPLACE || act == SCRAPE_RELABEL_LABELMAP) &&
        (rc = tmpl_parse(&r->repl_tmpl, repl)))
        goto fail;
    if (act == SCRAPE_RELABEL_HASHMOD) {
        r->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
        r->md5ctx = EVP_MD_CTX_new();
        if (!r->md5 || !r->md5ctx) {
            set_err(err, errlen, "hashmod: MD5 is not available from OpenSSL");
            rc = SS_ECONFIG;
            goto fail;
        }
    }
    if (act == SCRAPE_RELABEL_LOWERCASE || act == SCRAPE_RELABEL_UPPERCASE)
        (void)get_utf8_locale();
    *out = r;
    return 0;
fail:
    scrape_relabel_rule_free(r);
    return rc;
}

/* ======================================================================== */
/* Processing                                                               */
/* ======================================================================== */

static void rule_log(struct scrape_relabel_rule *r, int rc)
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
static int rule_match(struct scrape_relabel_rule *r, const char *s, size_t len)
{
    const char *subj = s ? s : "";
    size_t slen = len;
    bool mapped = false;
    if (!utf8_valid(subj, len)) {
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
        const unsigned char *p = (const unsigned char *)subj;
        size_t i = 0;
        while (i < len) {
            int32_t rr;
            size_t w = utf8_decode(p + i, len - i, &rr);
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
    int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, slen, 0, PCRE2_NO_UTF_CHECK, r->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(r->re, (PCRE2_SPTR)subj, slen, 0, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, r->md, NULL);
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
    for (uint32_t g = 0; g <= r->ngroups; g++) {
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
static int expand(struct scrape_relabel_rule *r, const struct tmpl *t, const char *src, struct ss_buf *out)
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
            for (uint32_t k = 1; k <= r->ngroups; k++)
                if (r->names[k] && strlen(r->names[k]) == pc->len &&
                    memcmp(r->names[k], t->src + pc->off, pc->len) == 0 && r->spans[2 * k] != SIZE_MAX) {
                    g = k;
                    break;
                }
            break;
        }
        if (g >= 0 && (uint64_t)g <= r->ngroups && r->spans[2 * g] != SIZE_MAX)
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

static int apply_labelmap(struct scrape_relabel_rule *r, struct ss_labels *ls)
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

static int apply_labelfilter(struct scrape_relabel_rule *r, struct ss_labels *ls, bool keep_matching)
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

static int apply(struct scrape_relabel_rule *r, struct ss_labels *ls, int *verdict)
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
    case SCRAPE_RELABEL_DROP:
    case SCRAPE_RELABEL_KEEP:
        if ((m = rule_match(r, val, vlen)) < 0)
            return m;
        if ((m == 1) == (r->action == SCRAPE_RELABEL_DROP))
            *verdict = APPLY_DROP;
        return 0;
    case SCRAPE_RELABEL_DROPEQUAL:
    case SCRAPE_RELABEL_KEEPEQUAL: {
        const struct ss_str *tv = ss_labels_get(ls, target);
        struct ss_str have = tv ? *tv : (struct ss_str){"", 0};
        bool eq = ss_str_eq(have, (struct ss_str){val, vlen});
        if (eq == (r->action == SCRAPE_RELABEL_DROPEQUAL))
            *verdict = APPLY_DROP;
        return 0;
    }
    case SCRAPE_RELABEL_REPLACE: {
        if ((m = rule_match(r, val, vlen)) <= 0)
            return m; /* no match: no replacement */
        if ((rc = expand(r, &r->target_tmpl, val, &r->out_target)))
            return rc;
        /* 2.42 deletes the target label *as written* (not the expansion) both when
         * the expanded name is invalid and when the value is empty. */
        if (!label_name_valid(r->out_target.data, r->out_target.len)) {
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
    case SCRAPE_RELABEL_LOWERCASE:
    case SCRAPE_RELABEL_UPPERCASE:
        if ((rc = go_case_map(&r->out_value, val, vlen, r->action == SCRAPE_RELABEL_UPPERCASE)))
            return rc;
        return ss_labels_setc(ls, target,
                              (struct ss_str){r->out_value.data ? r->out_value.data : "", r->out_value.len});
    case SCRAPE_RELABEL_HASHMOD: {
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
    case SCRAPE_RELABEL_LABELMAP: return apply_labelmap(r, ls);
    case SCRAPE_RELABEL_LABELDROP: return apply_labelfilter(r, ls, false);
    case SCRAPE_RELABEL_LABELKEEP: return apply_labelfilter(r, ls, true);
    }
    return 0;
}

bool scrape_relabel_process(struct scrape_relabel_rule *const *rules, size_t nrules, struct ss_labels *ls)
{
    for (size_t i = 0; i < nrules; i++) {
        struct scrape_relabel_rule *r = rules[i];
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
