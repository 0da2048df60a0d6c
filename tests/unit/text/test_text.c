/* test_text.c: the text floor: UTF-8, names, exposition escaping, percent-encoding, hex.
 *
 * UTF-8 is checked three ways: hand-picked edge cases (overlongs, surrogates, values
 * above U+10FFFF, truncation, stray continuation bytes), every code point through
 * encode/decode, and every 1-, 2- and 3-byte string plus a sample of 4-byte strings
 * against a reference that computes the code point and applies the Unicode rules
 * directly. Escaping and percent-encoding are round-tripped through small reference
 * decoders written here; percent-encoding is also checked byte by byte against the
 * RFC 3986 unreserved set that SigV4 uses. Links only ss_text (and common below it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ss.h"
#include "sstext.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- UTF-8 --------------------------------------------------------------- */

static void test_utf8_edges(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        bool valid;
        const char *what;
    } cases[] = {
        {S(""), true, "empty"},
        {S("plain ascii"), true, "ascii"},
        {S("a\0b"), true, "NUL is a valid character"},
        {S("\x7f"), true, "U+007F"},
        {S("\xc2\x80"), true, "U+0080, smallest 2-byte"},
        {S("\xdf\xbf"), true, "U+07FF, largest 2-byte"},
        {S("\xe0\xa0\x80"), true, "U+0800, smallest 3-byte"},
        {S("\xed\x9f\xbf"), true, "U+D7FF, below the surrogates"},
        {S("\xee\x80\x80"), true, "U+E000, above the surrogates"},
        {S("\xef\xbf\xbd"), true, "U+FFFD"},
        {S("\xef\xbf\xbf"), true, "U+FFFF"},
        {S("\xf0\x90\x80\x80"), true, "U+10000, smallest 4-byte"},
        {S("\xf4\x8f\xbf\xbf"), true, "U+10FFFF, the last code point"},
        {S("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), true, "mixed widths"},
        /* overlong forms */
        {S("\xc0\x80"), false, "overlong NUL"},
        {S("\xc0\xaf"), false, "overlong '/'"},
        {S("\xc1\xbf"), false, "overlong U+007F"},
        {S("\xe0\x80\x80"), false, "overlong 3-byte NUL"},
        {S("\xe0\x9f\xbf"), false, "overlong U+07FF"},
        {S("\xf0\x80\x80\x80"), false, "overlong 4-byte NUL"},
        {S("\xf0\x8f\xbf\xbf"), false, "overlong U+FFFF"},
        /* surrogates */
        {S("\xed\xa0\x80"), false, "U+D800"},
        {S("\xed\xbf\xbf"), false, "U+DFFF"},
        {S("\xed\xa0\xbd\xed\xb8\x80"), false, "CESU-8 surrogate pair"},
        /* beyond U+10FFFF */
        {S("\xf4\x90\x80\x80"), false, "U+110000"},
        {S("\xf5\x80\x80\x80"), false, "lead F5"},
        {S("\xf7\xbf\xbf\xbf"), false, "U+1FFFFF"},
        {S("\xf8\x88\x80\x80\x80"), false, "5-byte form"},
        {S("\xfc\x84\x80\x80\x80\x80"), false, "6-byte form"},
        {S("\xfe"), false, "FE"},
        {S("\xff"), false, "FF"},
        /* truncated and stray bytes */
        {S("\xc2"), false, "2-byte cut after 1"},
        {S("\xe2\x82"), false, "3-byte cut after 2"},
        {S("\xf0\x9f\x98"), false, "4-byte cut after 3"},
        {S("\xe2\x82x"), false, "3-byte interrupted by ASCII"},
        {S("\xf0\x9f\x98\x80\xf0\x9f"), false, "valid, then cut"},
        {S("\x80"), false, "lone continuation"},
        {S("\xbf"), false, "lone continuation BF"},
        {S("a\x80"), false, "continuation after ASCII"},
        {S("\xc3\xa9\xa9"), false, "one continuation too many"},
        {S("\xc3\xc3\xa9"), false, "lead byte where a continuation belongs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (ss_utf8_valid(cases[i].s, cases[i].len) != cases[i].valid)
            fail_msg("ss_utf8_valid: %s: want %s", cases[i].what, cases[i].valid ? "valid" : "invalid");
    }
    /* the length is authoritative: a sequence cut by len is invalid even if bytes follow */
    assert_false(ss_utf8_valid("\xc3\xa9", 1));
    assert_true(ss_utf8_valid("\xc3\xa9", 2));
}

static void test_utf8_decode(void **state)
{
    (void)state;
    int32_t r;
    assert_int_equal(ss_utf8_decode("A", 1, &r), 1);
    assert_int_equal(r, 'A');
    assert_int_equal(ss_utf8_decode("\0", 1, &r), 1);
    assert_int_equal(r, 0);
    assert_int_equal(ss_utf8_decode(S("\xc3\xa9"), &r), 2);
    assert_int_equal(r, 0xE9);
    assert_int_equal(ss_utf8_decode(S("\xe2\x82\xac"), &r), 3);
    assert_int_equal(r, 0x20AC);
    assert_int_equal(ss_utf8_decode(S("\xf0\x9f\x98\x80"), &r), 4);
    assert_int_equal(r, 0x1F600);
    assert_int_equal(ss_utf8_decode(S("\xf4\x8f\xbf\xbf"), &r), 4);
    assert_int_equal(r, 0x10FFFF);
    /* as Go's utf8.DecodeRune: every bad sequence is one byte of RuneError */
    static const char *const bad[] = {"\x80",         "\xc0\x80",         "\xe0\x80\x80",
                                      "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80",
                                      "\xff",         "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = 0;
        assert_int_equal(ss_utf8_decode(bad[i], strlen(bad[i]), &r), 1);
        assert_int_equal(r, -1);
    }
    /* len cuts a sequence short */
    assert_int_equal(ss_utf8_decode("\xe2\x82\xac", 2, &r), 1);
    assert_int_equal(r, -1);
    /* "\xe2\x82" then 'x': the 'x' is not swallowed */
    assert_int_equal(ss_utf8_decode(S("\xe2\x82x"), &r), 1);
    assert_int_equal(r, -1);
}

/* Every code point: encode, decode back, and validity matches "not a surrogate". */
static void test_utf8_every_code_point(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        char b[4];
        size_t n = ss_utf8_encode(b, cp);
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n != want)
            fail_msg("U+%04X: encoded in %zu bytes, want %zu", cp, n, want);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (ss_utf8_valid(b, n) == surrogate)
            fail_msg("U+%04X: validity wrong", cp);
        int32_t r;
        size_t w = ss_utf8_decode(b, n, &r);
        if (surrogate ? (w != 1 || r != -1) : (w != n || r != (int32_t)cp))
            fail_msg("U+%04X: decoded as %d (width %zu)", cp, r, w);
    }
}

/* A reference validator written from the standard's definition rather than from its
 * table: the lead byte gives the length, the bit pattern gives the code point, and the
 * code point must be in range for that length, not a surrogate, not above U+10FFFF. */
static bool ref_valid(const unsigned char *s, size_t n)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t need = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
        if (need == 0 || need > n - i)
            return false;
        uint32_t cp = need == 1 ? c : c & (0x7Fu >> need);
        for (size_t k = 1; k < need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need;
    }
    return true;
}

static void check_against_ref(const unsigned char *b, size_t n)
{
    bool want = ref_valid(b, n);
    if (ss_utf8_valid((const char *)b, n) != want)
        fail_msg("%02x %02x %02x %02x (len %zu): want %s", b[0], n > 1 ? b[1] : 0, n > 2 ? b[2] : 0,
                 n > 3 ? b[3] : 0, n, want ? "valid" : "invalid");
}

static void test_utf8_exhaustive(void **state)
{
    (void)state;
    unsigned char b[4];
    for (unsigned x = 0; x < 0x100; x++) {
        b[0] = (unsigned char)x;
        check_against_ref(b, 1);
        for (unsigned y = 0; y < 0x100; y++) {
            b[1] = (unsigned char)y;
            check_against_ref(b, 2);
        }
    }
    /* all 3-byte strings that do not start with ASCII (after an ASCII byte the rest is
     * a 2-byte string, covered above) */
    for (unsigned x = 0xC0; x < 0x100; x++)
        for (unsigned y = 0; y < 0x100; y++)
            for (unsigned z = 0; z < 0x100; z++) {
                b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = (unsigned char)z;
                check_against_ref(b, 3);
            }
    /* 4-byte strings: every lead and second byte, interesting later bytes */
    static const unsigned char tail[] = {0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (unsigned x = 0xF0; x < 0x100; x++)
        for (unsigned y = 0; y < 0x100; y++)
            for (size_t i = 0; i < sizeof tail; i++)
                for (size_t j = 0; j < sizeof tail; j++) {
                    b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = tail[i], b[3] = tail[j];
                    check_against_ref(b, 4);
                }
}

/* ---- names --------------------------------------------------------------- */

/* RFC 9110 §5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+"
 * / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static void test_http_token(void **state)
{
    (void)state;
    const char *tchar_punct = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c && strchr(tchar_punct, c));
        if (ss_http_tchar((unsigned char)c) != want)
            fail_msg("byte 0x%02x: tchar %d, want %d", c, !want, want);
    }
    assert_true(ss_http_token_valid(S("X-Scope-OrgID")));
    assert_true(ss_http_token_valid(S("a!#$%&'*+-.^_`|~9")));
    assert_false(ss_http_token_valid(S("")));
    assert_false(ss_http_token_valid(S("X Header")));
    assert_false(ss_http_token_valid(S("X:Header")));
    assert_false(ss_http_token_valid(S("X\r\nInjected")));
    assert_false(ss_http_token_valid("ab\0c", 4)); /* the length is authoritative */
    assert_true(ss_http_token_valid("ab\0c", 2));
}

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "_", "__name__", "A_b9", "job", "_0", "Z"};
    static const char *const bad[] = {"",   "1a",       "9",         "a-b", "a.b", "a b", "a:b",
                                      ":a", "\xc3\xa9", "a\xc3\xa9", "{a}", "a\"", "a="};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(ss_label_name_valid(good[i], strlen(good[i])));
        assert_true(ss_metric_name_valid(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ss_label_name_valid(bad[i], strlen(bad[i])))
            fail_msg("label name \"%s\" accepted", bad[i]);
    /* metric names also take ':' anywhere, digits after the first character */
    assert_true(ss_metric_name_valid(S(":a")));
    assert_true(ss_metric_name_valid(S("a:b:c")));
    assert_true(ss_metric_name_valid(S("node_cpu_seconds_total")));
    assert_true(ss_metric_name_valid(S("a1:")));
    assert_false(ss_metric_name_valid(S("")));
    assert_false(ss_metric_name_valid(S("1a")));
    assert_false(ss_metric_name_valid(S("a-b")));
    assert_false(ss_metric_name_valid(S("a.b")));
    /* the length is authoritative: an embedded NUL is a bad character */
    assert_false(ss_label_name_valid("a\0b", 3));
    assert_true(ss_label_name_valid("ab\0", 2));
    /* every single byte: exactly [a-zA-Z_] starts a label name, [a-zA-Z_:] a metric name */
    for (int c = 0; c < 256; c++) {
        char s[2] = {(char)c, 'x'}, t[2] = {'x', (char)c};
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        assert_int_equal(ss_label_name_valid(s, 2), alpha);
        assert_int_equal(ss_metric_name_valid(s, 2), alpha || c == ':');
        assert_int_equal(ss_label_name_valid(t, 2), alpha || digit);
        assert_int_equal(ss_metric_name_valid(t, 2), alpha || digit || c == ':');
    }
}

/* ---- exposition escaping --------------------------------------------------- */

/* The text format's strict reading of a label value: \\ \" \n, nothing else. */
static bool ref_unescape(const char *s, size_t n, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\n')
            return false; /* must have been escaped */
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        if (++i >= n)
            return false;
        switch (s[i]) {
        case '\\': out[o++] = '\\'; break;
        case '"': out[o++] = '"'; break;
        case 'n': out[o++] = '\n'; break;
        default: return false;
        }
    }
    *outlen = o;
    return true;
}

static void test_escape_label_value(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 0);
    assert_int_equal(ss_escape_label_value(&b, S("a\\b\"c\nd")), 0);
    assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
    ss_buf_reset(&b);
    /* only those three: tabs, CR, other controls and UTF-8 pass through */
    assert_int_equal(ss_escape_label_value(&b, S("t\tr\r\x01 \xc3\xa9")), 0);
    assert_string_equal(b.data, "t\tr\r\x01 \xc3\xa9");
    ss_buf_reset(&b);
    assert_int_equal(ss_escape_label_value(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(ss_escape_label_value(&b, S("\\\\\n\n\"")), 0);
    assert_string_equal(b.data, "\\\\\\\\\\n\\n\\\"");
    ss_buf_free(&b);
}

static void test_escape_round_trip(void **state)
{
    (void)state;
    static const char alphabet[] = {'a',  'Z', '0',    ' ',    '\\',   '"', '\n',
                                    '\t', 'n', '\x80', '\xc3', '\xa9', '\0'};
    struct ss_buf b;
    ss_buf_init(&b, 0);
    unsigned seed = 12345;
    char in[64], out[64];
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof in;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alphabet[(seed >> 16) % sizeof alphabet];
        }
        ss_buf_reset(&b);
        assert_int_equal(ss_escape_label_value(&b, in, n), 0);
        size_t m = 0;
        if (!ref_unescape(b.data, b.len, out, &m))
            fail_msg("escaped value does not read back (iteration %d)", iter);
        assert_int_equal(m, n);
        assert_memory_equal(out, in, n);
    }
    ss_buf_free(&b);
}

static void test_escape_limit(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 10);
    assert_int_equal(ss_buf_append_str(&b, "x{l=\""), 0);
    /* 6 bytes escape to 9: over the maximum, and the buffer is left as it was */
    assert_int_equal(ss_escape_label_value(&b, S("ab\"\"\"c")), SS_ELIMIT);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "x{l=\"");
    assert_int_equal(ss_escape_label_value(&b, S("a\"")), 0);
    assert_string_equal(b.data, "x{l=\"a\\\"");
    ss_buf_free(&b);
}

static void test_render_series(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 0);
    struct ss_label ls[] = {
        {SS_STR("__name__"), SS_STR("up")},
        {SS_STR("instance"), SS_STR("h:9100")},
        {SS_STR("job"), SS_STR("a\"b\\c\nd")},
    };
    assert_int_equal(ss_render_series(&b, ls, 3), 0);
    assert_string_equal(b.data, "up{instance=\"h:9100\",job=\"a\\\"b\\\\c\\nd\"}");
    /* __name__ anywhere in the set; the rest keep their order */
    struct ss_label mid[] = {
        {SS_STR("b"), SS_STR("2")},
        {SS_STR("__name__"), SS_STR("m")},
        {SS_STR("a"), SS_STR("")},
    };
    ss_buf_reset(&b);
    assert_int_equal(ss_render_series(&b, mid, 3), 0);
    assert_string_equal(b.data, "m{b=\"2\",a=\"\"}");
    /* no other labels: no braces */
    ss_buf_reset(&b);
    assert_int_equal(ss_render_series(&b, ls, 1), 0);
    assert_string_equal(b.data, "up");
    /* no name: labels only */
    ss_buf_reset(&b);
    assert_int_equal(ss_render_series(&b, ls + 1, 1), 0);
    assert_string_equal(b.data, "{instance=\"h:9100\"}");
    /* appends after what is there; a failure leaves it */
    ss_buf_free(&b);
    ss_buf_init(&b, 32);
    assert_int_equal(ss_buf_append_str(&b, "# "), 0);
    assert_int_equal(ss_render_series(&b, ls, 3), SS_ELIMIT);
    assert_string_equal(b.data, "# ");
    assert_int_equal(ss_render_series(&b, ls, 2), 0);
    assert_string_equal(b.data, "# up{instance=\"h:9100\"}");
    ss_buf_free(&b);
}

/* ---- percent-encoding and hex ---------------------------------------------- */

static const char *pct(struct ss_buf *b, const char *s, size_t n, unsigned flags)
{
    ss_buf_reset(b);
    assert_int_equal(ss_percent_encode(b, s, n, flags), 0);
    return b->data ? b->data : "";
}

static bool rfc3986_unreserved(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void test_percent_every_byte(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 0);
    for (int c = 0; c < 256; c++) {
        char in = (char)c, want[4];
        if (rfc3986_unreserved(c))
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "%%%02X", c); /* upper-case hex: SigV4 and RFC 3986 §2.1 */
        assert_string_equal(pct(&b, &in, 1, 0), want);
    }
    ss_buf_free(&b);
}

static void test_percent_flags(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 0);
    /* SigV4 / RFC 3986: space is %20, never '+'; '+', '/', '=', '&', '*' encoded */
    assert_string_equal(pct(&b, S("a b+c/d=e&f*g~h"), 0), "a%20b%2Bc%2Fd%3De%26f%2Ag~h");
    assert_string_equal(pct(&b, S("\xc3\xa9\x00"), 0), "%C3%A9%00");
    assert_string_equal(pct(&b, S(""), 0), "");
    /* Go's url.QueryEscape */
    assert_string_equal(pct(&b, S("a b+c"), SS_PCT_SPACE_PLUS), "a+b%2Bc");
    /* a whole path */
    assert_string_equal(pct(&b, S("/a b/c"), SS_PCT_KEEP_SLASH), "/a%20b/c");
    /* S3 single encoding: valid escapes stay as written, a bare '%' does not */
    assert_string_equal(pct(&b, S("a%2fb%2F%zz%4"), SS_PCT_KEEP_ESCAPES), "a%2fb%2F%25zz%254");
    /* SigV4 canonical query: decode, then encode strictly */
    assert_string_equal(pct(&b, S("%41%2f%7E%20+%zz%"), SS_PCT_REENCODE), "A%2F~%20%2B%25zz%25");
    /* without a flag '%' is just a byte */
    assert_string_equal(pct(&b, S("%41"), 0), "%2541");
    ss_buf_free(&b);
}

/* Decoding what the encoder wrote gives the input back, for every flag set that
 * encodes every byte (REENCODE is the identity after one pass). */
static void test_percent_round_trip(void **state)
{
    (void)state;
    struct ss_buf b, again;
    ss_buf_init(&b, 0);
    ss_buf_init(&again, 0);
    unsigned seed = 777;
    char in[48], out[48];
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof in;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)(seed >> 16);
        }
        unsigned flags = iter & 1 ? SS_PCT_SPACE_PLUS : 0;
        const char *e = pct(&b, in, n, flags);
        size_t o = 0;
        for (size_t i = 0; e[i]; i++) {
            if (e[i] == '%') {
                int hi = ss_hex_digit((unsigned char)e[i + 1]), lo = ss_hex_digit((unsigned char)e[i + 2]);
                assert_true(hi >= 0 && lo >= 0);
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
            } else {
                out[o++] = e[i] == '+' && flags ? ' ' : e[i];
            }
        }
        assert_int_equal(o, n);
        assert_memory_equal(out, in, n);
        if (!flags) {
            ss_buf_reset(&again);
            assert_int_equal(ss_percent_encode(&again, b.data, b.len, SS_PCT_REENCODE), 0);
            assert_int_equal(again.len, b.len);
            assert_memory_equal(again.data, b.data, b.len);
        }
    }
    ss_buf_free(&b);
    ss_buf_free(&again);
}

static void test_percent_limit(void **state)
{
    (void)state;
    struct ss_buf b;
    ss_buf_init(&b, 8);
    assert_int_equal(ss_buf_append_str(&b, "q="), 0);
    assert_int_equal(ss_percent_encode(&b, S("ab cd"), 0), SS_ELIMIT); /* 7 bytes: 9 in all */
    assert_string_equal(b.data, "q=");
    assert_int_equal(ss_percent_encode(&b, S("a c"), 0), 0);
    assert_string_equal(b.data, "q=a%20c");
    ss_buf_free(&b);
}

static void test_hex(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        assert_int_equal(ss_hex_digit(c), want);
    }
    assert_int_equal(ss_hex_digit(-1), -1);
    static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof bytes + 1];
    ss_hex_encode(hex, bytes, sizeof bytes);
    assert_string_equal(hex, "00017f80abff");
    ss_hex_encode(hex, bytes, 0);
    assert_string_equal(hex, "");
    unsigned char back[sizeof bytes];
    assert_int_equal(ss_hex_decode(back, hex, 0), 0);
    assert_int_equal(ss_hex_decode(back, S("00017F80aBfF")), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    assert_int_equal(ss_hex_decode(back, S("abc")), SS_EINVAL);
    assert_int_equal(ss_hex_decode(back, S("0g")), SS_EINVAL);
    assert_int_equal(ss_hex_decode(back, S(" 0")), SS_EINVAL);
    /* SHA-256 of "" as SigV4 prints it */
    static const unsigned char empty_sha[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    char sha_hex[65];
    ss_hex_encode(sha_hex, empty_sha, sizeof empty_sha);
    assert_string_equal(sha_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_edges),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_utf8_every_code_point),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_http_token),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_escape_label_value),
        cmocka_unit_test(test_escape_round_trip),
        cmocka_unit_test(test_escape_limit),
        cmocka_unit_test(test_render_series),
        cmocka_unit_test(test_percent_every_byte),
        cmocka_unit_test(test_percent_flags),
        cmocka_unit_test(test_percent_round_trip),
        cmocka_unit_test(test_percent_limit),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
