/* re2pcre.c: Go RE2 regexes run by PCRE2, with RE2's meaning.
 *
 * Prometheus' relabel_config regexes are Go RE2 syntax. We translate each into an
 * equivalent PCRE2 pattern with a whitelisting translator, so that anything RE2 would
 * reject (backreferences, lookaround, atomic groups, possessive quantifiers, verbs,
 * ...) is rejected here too, and the few places where the two dialects give the same
 * syntax a different meaning (\s, \v, octal escapes, `{,n}`, POSIX collating elements,
 * ...) keep the RE2 meaning. Error messages and offsets refer to the regex as written:
 * every output byte remembers the regex offset that produced it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relabel_int.h"

/* Longest regex (as written) and translated pattern. */
#define RELABEL_MAX_REGEX   ((size_t)64 << 10)
#define RELABEL_MAX_PATTERN ((size_t)1 << 20)
/* RE2 limits: repeat counts and nesting depth (Go regexp/syntax). */
#define RE2_MAX_REPEAT 1000
#define RE2_MAX_DEPTH  1000

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

/* Go regexp/syntax parseEscape: one escaped literal rune. *i points at the '\'. */
static int re2_parse_escape(struct tr *t, size_t *i, int32_t *out)
{
    const char *s = t->re;
    size_t n = t->len, start = *i, j = *i + 1;
    if (j >= n)
        return tr_fail(t, start, "trailing backslash at end of expression");
    int32_t c;
    size_t w = ss_utf8_decode(s + j, n - j, &c);
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
                int v = ss_hex_digit(h);
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
            v[k] = ss_hex_digit(s[j + (size_t)k]);
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
        size_t w = j < n ? ss_utf8_decode(s + j, n - j, &r) : 0;
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
    size_t w = ss_utf8_decode(t->re + *i, t->len - *i, out);
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
 * Go's parsePerlFlags. Returns the group's kind (>= 0), or a negative ss_err; for
 * GROUP_NAMED, gname and gnlen point into the regex. The kind is the return value, not
 * an out-parameter, so no caller can read a kind that an error path left unset.
 * Everything else after "(?" (lookaround, atomic groups, comments, recursion, ...) is
 * rejected, as RE2 rejects it. */
static int tr_perl_group(struct tr *t, size_t *i, const char **gname, size_t *gnlen)
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
        *gname = name;
        *gnlen = nlen;
        return GROUP_NAMED;
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
                if ((rc = tr_atom_begin(t)) || (rc = tr_emit(t, buf, (size_t)bl, start)))
                    return rc;
                return GROUP_NONCAPTURE;
            }
            /* Deferred until the next token: if that is a quantifier it applies to the
             * atom before the flags (Go), which PCRE2 would refuse after "(?i)". */
            if (non || noff) {
                if (!t->pending.len)
                    t->pending_off = start;
                if ((rc = ss_buf_append(&t->pending, buf, (size_t)bl)))
                    return rc == SS_ELIMIT ? tr_fail(t, start, "expression too large") : rc;
            }
            t->last_repeat = false;
            return GROUP_FLAGS_ONLY;
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
                const char *gname = NULL;
                size_t gnlen = 0;
                int kind = tr_perl_group(t, &i, &gname, &gnlen);
                if (kind < 0)
                    return kind;
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
                    size_t w = ss_utf8_decode(s + j, end - j, &r);
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
            size_t w = ss_utf8_decode(s + i, n - i, &r);
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
/* Compilation                                                              */
/* ======================================================================== */

int relabel_regex_compile(const char *regex, struct relabel_regex *out, char *msg, size_t msglen)
{
    char why[256];
    struct tr t = {0};
    pcre2_compile_context *cctx = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    t.re = regex;
    t.len = strlen(regex);
    t.msg = why;
    t.msglen = sizeof why;
    why[0] = '\0';
    ss_buf_init(&t.out, RELABEL_MAX_PATTERN);
    ss_buf_init(&t.pending, 4096);

    if (t.len > RELABEL_MAX_REGEX) {
        snprintf(msg, msglen, "longer than %zu bytes", RELABEL_MAX_REGEX);
        rc = SS_ECONFIG;
        goto fail;
    }
    t.stack = calloc(RE2_MAX_DEPTH + 1, sizeof *t.stack);
    if (!t.stack) {
        rc = SS_ENOMEM;
        goto fail;
    }
    if ((rc = tr_add_name(&t, 0, NULL, 0)) || (rc = tr_emit_str(&t, "^(?:", 0)) || (rc = translate(&t)) ||
        (rc = tr_emit_str(&t, ")$", t.len))) {
        if (rc == SS_ECONFIG)
            snprintf(msg, msglen, "%s at offset %zu", why, t.err_off);
        goto fail;
    }

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
    out->code =
        pcre2_compile((PCRE2_SPTR)t.out.data, t.out.len,
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_CIRCUMFLEX | PCRE2_NEVER_BACKSLASH_C,
                      &ecode, &eoff, cctx);
    if (!out->code) {
        PCRE2_UCHAR pmsg[256];
        pcre2_get_error_message(ecode, pmsg, sizeof pmsg);
        size_t off = eoff < t.out.len ? t.map[eoff] : t.len;
        snprintf(msg, msglen, "%s at offset %zu", (const char *)pmsg, off);
        rc = SS_ECONFIG;
        goto fail;
    }
    uint32_t ncap = 0;
    pcre2_pattern_info(out->code, PCRE2_INFO_CAPTURECOUNT, &ncap);
    if (ncap != t.ncap) {
        snprintf(msg, msglen, "internal error: group count mismatch");
        rc = SS_ECONFIG;
        goto fail;
    }
    /* JIT when the platform has it; the interpreter gives the same answers. */
    (void)pcre2_jit_compile(out->code, PCRE2_JIT_COMPLETE);
    /* names[] must reach index ncap even when the last groups are unnamed. */
    if ((rc = tr_add_name(&t, ncap, NULL, 0)))
        goto fail;
    out->ngroups = ncap;
    out->names = t.names;
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
    if (rc) {
        pcre2_code_free(out->code);
        out->code = NULL;
    }
    return rc;
}

void relabel_regex_free(struct relabel_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    if (re->names)
        for (uint32_t i = 0; i <= re->ngroups; i++)
            free(re->names[i]);
    free(re->names);
    memset(re, 0, sizeof *re);
}
