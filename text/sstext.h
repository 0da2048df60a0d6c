/* sstext.h: text helpers every stage shares, on the floor just above common/.
 *
 * UTF-8 as Go checks it, Prometheus label and metric names, the exposition format's
 * label-value escaping, percent-encoding for URLs and SigV4, and hex. One copy of
 * each, so the scraper, remote write, the scaler and the collector cannot drift
 * apart. Pure functions of their arguments: no state, no locks, no allocation except
 * through the ss_buf the caller passes (whose maximum bounds the output). */
#ifndef SSTEXT_H
#define SSTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss.h"

/* ---- UTF-8 ------------------------------------------------------------- */

/* Well-formed UTF-8 as Unicode defines it and Go's utf8.Valid checks: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence. NUL bytes are valid. */
bool ss_utf8_valid(const char *s, size_t len);

/* Decode one rune exactly as Go's utf8.DecodeRune does. Returns the width (1..4)
 * and sets *rune; an invalid or truncated sequence gives width 1 and *rune = -1, so
 * each bad byte counts as one U+FFFD. len must be > 0. */
size_t ss_utf8_decode(const char *s, size_t len, int32_t *rune);

/* Encode rune (at most U+10FFFF, not a surrogate) into out; returns 1..4. */
size_t ss_utf8_encode(char out[4], uint32_t rune);

/* ---- names ------------------------------------------------------------- */

/* model.LabelName.IsValid in its legacy form: [a-zA-Z_][a-zA-Z0-9_]*. */
bool ss_label_name_valid(const char *s, size_t len);

/* RFC 9110 §5.6.2 tchar: what an HTTP header name or method may contain. */
bool ss_http_tchar(unsigned char c);
/* A non-empty RFC 9110 token (a valid header name). */
bool ss_http_token_valid(const char *s, size_t len);

/* model.IsValidLegacyMetricName: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool ss_metric_name_valid(const char *s, size_t len);

/* ---- exposition text --------------------------------------------------- */

/* Append a label value as the text format quotes it: backslash, double quote and
 * newline become \\ \" \n; every other byte is copied. The caller writes the quotes.
 * On failure (SS_ENOMEM, SS_ELIMIT) out is left as it was. */
int ss_escape_label_value(struct ss_buf *out, const char *s, size_t len);

/* Append a series as an exposition line starts: `name{a="1",b="2"}`. The name is the
 * value of the __name__ label; the other labels follow in the order given, values
 * escaped; no braces when there are none. On failure out is left as it was. */
int ss_render_series(struct ss_buf *out, const struct ss_label *labels, size_t n);

/* ---- URLs and hex ------------------------------------------------------ */

/* ss_percent_encode keeps RFC 3986 §2.3 unreserved bytes (A-Z a-z 0-9 - _ . ~) and
 * writes every other byte as %XX, upper-case: what SigV4 canonicalisation, the AWS
 * query protocol and Kubernetes API URLs want. Flags change that: */
enum ss_pct_flags {
    SS_PCT_SPACE_PLUS = 1u << 0,   /* ' ' as '+': Go's url.QueryEscape */
    SS_PCT_KEEP_SLASH = 1u << 1,   /* '/' kept: a whole URL path */
    SS_PCT_KEEP_ESCAPES = 1u << 2, /* a valid %XX is copied as written (S3 single encoding) */
    SS_PCT_REENCODE = 1u << 3,     /* a valid %XX is decoded, then encoded like any byte */
};
/* On failure out is left as it was. */
int ss_percent_encode(struct ss_buf *out, const char *s, size_t len, unsigned flags);

/* The value of a hex digit (either case), or -1. */
int ss_hex_digit(int c);

/* Lower-case hex of p[0..n) into out, which holds 2n + 1 bytes (NUL-terminated). */
void ss_hex_encode(char *out, const void *p, size_t n);

/* Decode len hex digits (either case) into out, which holds len / 2 bytes.
 * SS_EINVAL for an odd length or a non-hex character. */
int ss_hex_decode(void *out, const char *hex, size_t len);

#endif
