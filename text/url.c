/* url.c: percent-encoding and hex.
 *
 * One encoder for every URL this program builds or signs. The unreserved set is RFC
 * 3986 §2.3, which is also the set SigV4 leaves unencoded ("URI-encode every byte
 * except the unreserved characters"), with upper-case hex digits as both RFC 3986
 * §2.1 and SigV4 require. Go's url.QueryEscape differs only in writing a space as
 * '+', which the flags select. */
#include "text_int.h"

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

int ss_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void ss_hex_encode(char *out, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_lower[b[i] >> 4];
        out[2 * i + 1] = hex_lower[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int ss_hex_decode(void *out, const char *hex, size_t len)
{
    unsigned char *b = out;
    if (len % 2)
        return SS_EINVAL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = ss_hex_digit((unsigned char)hex[2 * i]), lo = ss_hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SS_EINVAL;
        b[i] = (unsigned char)(hi * 16 + lo);
    }
    return 0;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* s[i] starts a %XX escape with two hex digits. */
static bool is_escape(const char *s, size_t len, size_t i)
{
    return s[i] == '%' && i + 2 < len && ss_hex_digit((unsigned char)s[i + 1]) >= 0 &&
           ss_hex_digit((unsigned char)s[i + 2]) >= 0;
}

static int encode(struct ss_buf *out, const char *s, size_t len, unsigned flags)
{
    int rc = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((flags & (SS_PCT_KEEP_ESCAPES | SS_PCT_REENCODE)) && is_escape(s, len, i)) {
            if (flags & SS_PCT_KEEP_ESCAPES) {
                rc = ss_buf_append(out, s + i, 3);
                i += 2;
                continue;
            }
            c = (unsigned char)(ss_hex_digit((unsigned char)s[i + 1]) * 16 +
                                ss_hex_digit((unsigned char)s[i + 2]));
            i += 2;
        }
        if (is_unreserved(c) || (c == '/' && (flags & SS_PCT_KEEP_SLASH))) {
            char k = (char)c;
            rc = ss_buf_append(out, &k, 1);
        } else if (c == ' ' && (flags & SS_PCT_SPACE_PLUS)) {
            rc = ss_buf_append(out, "+", 1);
        } else {
            char e[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            rc = ss_buf_append(out, e, 3);
        }
    }
    return rc;
}

int ss_percent_encode(struct ss_buf *out, const char *s, size_t len, unsigned flags)
{
    size_t len0 = out->len;
    return text__rollback(out, len0, encode(out, s, len, flags));
}
