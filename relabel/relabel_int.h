/* relabel_int.h: declarations shared by the relabel floor's own files, not public.
 *
 * relabel.c compiles rules and applies them to label sets; re2pcre.c turns a rule's
 * Go RE2 regex into a PCRE2 program that means what RE2 means. */
#ifndef RELABEL_INT_H
#define RELABEL_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pcre2.h>

#include "ss.h"

/* A Go RE2 regex compiled by PCRE2 (re2pcre.c). */
struct relabel_regex {
    pcre2_code *code; /* JIT-compiled when the platform allows */
    uint32_t ngroups; /* capture groups, not counting group 0 */
    char **names;     /* names[0..ngroups]: group names, NULL when unnamed */
};

/* Compile regex (Go RE2 syntax, NUL-terminated) anchored as Prometheus' NewRegexp
 * anchors it, "^(?:" + regex + ")$". Whatever RE2 rejects is rejected, and syntax the
 * two dialects read differently keeps RE2's meaning. Match with PCRE2_NO_UTF_CHECK on
 * valid UTF-8 only. Returns 0 with *out filled (free it with relabel_regex_free),
 * SS_ECONFIG with the reason in msg ("missing closing parenthesis at offset 3"), or
 * SS_ENOMEM; on error *out holds nothing to free. */
int relabel_regex_compile(const char *regex, struct relabel_regex *out, char *msg, size_t msglen);
void relabel_regex_free(struct relabel_regex *re); /* frees what it holds; NULL is a no-op */

/* Decode one rune exactly as Go's utf8.DecodeRune does: returns the width and sets *r,
 * or returns 1 with *r = -1 for an invalid byte (overlong forms, surrogates and values
 * above U+10FFFF are invalid; each bad byte counts as one U+FFFD). n must be > 0. */
static inline size_t utf8_decode(const unsigned char *s, size_t n, int32_t *r)
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

/* A Go \\w character: [0-9A-Za-z_]. */
static inline bool is_word(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

#endif
