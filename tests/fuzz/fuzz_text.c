/* fuzz_text.c: libFuzzer target for the text floor (text/sstext.h).
 *
 * The whole input is the string under test; byte 0 also picks percent-encoding flags.
 * Besides "no crash, no leak", it checks properties that tie the functions together:
 * ss_utf8_valid agrees with decoding rune by rune, valid input re-encodes to itself,
 * escaped label values read back to the input, percent-encoding decodes back to the
 * input and is a fixed point of SS_PCT_REENCODE, and hex round-trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ss.h"
#include "sstext.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void utf8_props(const char *s, size_t n)
{
    bool all_ok = true;
    size_t i = 0;
    while (i < n) {
        int32_t r;
        size_t w = ss_utf8_decode(s + i, n - i, &r);
        check(w >= 1 && w <= 4 && w <= n - i);
        if (r < 0) {
            check(w == 1);
            all_ok = false;
        } else {
            char e[4];
            check(ss_utf8_encode(e, (uint32_t)r) == w && memcmp(e, s + i, w) == 0);
        }
        i += w;
    }
    check(ss_utf8_valid(s, n) == all_ok);
}

static void escape_props(const char *s, size_t n)
{
    struct ss_buf b;
    ss_buf_init(&b, 0);
    check(ss_escape_label_value(&b, s, n) == 0);
    char *back = malloc(n + 1);
    check(back != NULL);
    size_t o = 0;
    for (size_t i = 0; i < b.len; i++) {
        char c = b.data[i];
        check(c != '"' && c != '\n');
        if (c == '\\') {
            check(i + 1 < b.len);
            char x = b.data[++i];
            check(x == '\\' || x == '"' || x == 'n');
            c = x == 'n' ? '\n' : x;
        }
        check(o < n + 1);
        back[o++] = c;
    }
    check(o == n && (n == 0 || memcmp(back, s, n) == 0));
    free(back);
    ss_buf_free(&b);
}

static void percent_props(const char *s, size_t n, unsigned flags)
{
    struct ss_buf b, again;
    ss_buf_init(&b, 0);
    ss_buf_init(&again, 0);
    check(ss_percent_encode(&b, s, n, flags) == 0);
    if (!(flags & (SS_PCT_KEEP_ESCAPES | SS_PCT_REENCODE | SS_PCT_KEEP_SLASH))) {
        /* every byte encoded: decoding gives the input back */
        size_t o = 0;
        for (size_t i = 0; i < b.len; i++, o++) {
            char c = b.data[i];
            if (c == '%') {
                check(i + 2 < b.len);
                int hi = ss_hex_digit((unsigned char)b.data[i + 1]),
                    lo = ss_hex_digit((unsigned char)b.data[i + 2]);
                check(hi >= 0 && lo >= 0);
                c = (char)(hi * 16 + lo);
                i += 2;
            } else if (c == '+') {
                check(flags & SS_PCT_SPACE_PLUS);
                c = ' ';
            }
            check(o < n && c == s[o]);
        }
        check(o == n);
        if (!(flags & SS_PCT_SPACE_PLUS)) {
            check(ss_percent_encode(&again, b.data, b.len, SS_PCT_REENCODE) == 0);
            check(again.len == b.len && (b.len == 0 || memcmp(again.data, b.data, b.len) == 0));
        }
    }
    ss_buf_free(&b);
    ss_buf_free(&again);
}

static void hex_props(const char *s, size_t n)
{
    char *hex = malloc(2 * n + 1);
    unsigned char *back = malloc(n + 1);
    check(hex && back);
    ss_hex_encode(hex, s, n);
    check(strlen(hex) == 2 * n);
    check(ss_hex_decode(back, hex, 2 * n) == 0 && (n == 0 || memcmp(back, s, n) == 0));
    if (n % 2 == 0 && ss_hex_decode(back, s, n) == 0) {
        ss_hex_encode(hex, back, n / 2);
        for (size_t i = 0; i < n; i++)
            check(hex[i] == s[i] || hex[i] == (s[i] | 0x20));
    }
    free(hex);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    utf8_props(s, size);
    escape_props(s, size);
    percent_props(s, size, size ? data[0] & 0xF : 0);
    hex_props(s, size);
    if (ss_label_name_valid(s, size))
        check(ss_metric_name_valid(s, size));

    /* a label set: NUL-separated name, value pairs */
    struct ss_label ls[16];
    size_t nl = 0, start = 0, field = 0;
    struct ss_str f[2];
    for (size_t i = 0; i <= size && nl < 16; i++) {
        if (i < size && data[i] != '\0')
            continue;
        f[field++] = (struct ss_str){s + start, i - start};
        start = i + 1;
        if (field == 2) {
            ls[nl++] = (struct ss_label){f[0], f[1]};
            field = 0;
        }
    }
    struct ss_buf b;
    ss_buf_init(&b, 64);
    int rc = ss_render_series(&b, ls, nl);
    check(rc == 0 || (rc == SS_ELIMIT && b.len == 0));
    ss_buf_free(&b);
    return 0;
}
