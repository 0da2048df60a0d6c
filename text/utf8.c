/* utf8.c: UTF-8 decoding, encoding and validation, exactly as Go's unicode/utf8.
 *
 * Prometheus is written in Go, and what it accepts as a label value, a HELP text or a
 * file_sd label is what utf8.ValidString accepts; relabeling regexes see invalid bytes
 * as U+FFFD one byte at a time, as utf8.DecodeRune reports them. The second-byte
 * ranges below are the table in the Unicode standard (§3.9, Table 3-7): they rule out
 * overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and values above
 * U+10FFFF (F4 90..BF) without computing the code point. */
#include "sstext.h"

size_t ss_utf8_decode(const char *s, size_t len, int32_t *rune)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    if (c < 0x80) {
        *rune = c;
        return 1;
    }
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    size_t w;
    int32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        w = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        w = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        w = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *rune = -1; /* continuation byte, C0/C1 (always overlong) or F5..FF */
        return 1;
    }
    if (len < w || p[1] < lo || p[1] > hi) {
        *rune = -1;
        return 1;
    }
    v = (v << 6) | (p[1] & 0x3F);
    for (size_t i = 2; i < w; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *rune = -1;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    *rune = v;
    return w;
}

bool ss_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int32_t r;
        size_t w = ss_utf8_decode(s + i, len - i, &r);
        if (r < 0)
            return false;
        i += w;
    }
    return true;
}

size_t ss_utf8_encode(char out[4], uint32_t rune)
{
    if (rune < 0x80) {
        out[0] = (char)rune;
        return 1;
    }
    if (rune < 0x800) {
        out[0] = (char)(0xC0 | (rune >> 6));
        out[1] = (char)(0x80 | (rune & 0x3F));
        return 2;
    }
    if (rune < 0x10000) {
        out[0] = (char)(0xE0 | (rune >> 12));
        out[1] = (char)(0x80 | ((rune >> 6) & 0x3F));
        out[2] = (char)(0x80 | (rune & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (rune >> 18));
    out[1] = (char)(0x80 | ((rune >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((rune >> 6) & 0x3F));
    out[3] = (char)(0x80 | (rune & 0x3F));
    return 4;
}
