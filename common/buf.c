/* buf.c: bounded growable buffers, string slices, secret wiping and float formatting. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ss.h"

bool ss_str_eq(struct ss_str a, struct ss_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool ss_str_eq_cstr(struct ss_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.p, b, n) == 0);
}

int ss_str_cmp(struct ss_str a, struct ss_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

void ss_buf_init(struct ss_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

int ss_buf_reserve(struct ss_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    if (b->max && b->len + extra > b->max)
        return SS_ELIMIT;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    if (b->max && ncap > b->max + 1)
        ncap = b->max + 1;
    char *n = realloc(b->data, ncap);
    if (!n)
        return SS_ENOMEM;
    b->data = n;
    b->cap = ncap;
    return 0;
}

void *ss_array_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return v;
    size_t nc = *cap ? *cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return NULL;
        nc *= 2;
    }
    void *n = realloc(v, nc * elem);
    if (n)
        *cap = nc;
    return n;
}

int ss_buf_append(struct ss_buf *b, const void *p, size_t n)
{
    int rc = ss_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ss_buf_append_str(struct ss_buf *b, const char *s)
{
    return ss_buf_append(b, s, strlen(s));
}

int ss_buf_printf(struct ss_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SS_EINVAL;
    if ((size_t)n < sizeof tmp)
        return ss_buf_append(b, tmp, (size_t)n);
    int rc = ss_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void ss_buf_reset(struct ss_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ss_buf_free(struct ss_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ss_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

void ss_buf_free_secret(struct ss_buf *b)
{
    if (b->data)
        ss_wipe(b->data, b->cap);
    ss_buf_free(b);
}

void ss_free_secret(char *s)
{
    if (!s)
        return;
    ss_wipe(s, strlen(s));
    free(s);
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus uses: the shortest
 * digits that round-trip, in exponent form when the decimal exponent is below -4 or
 * at least 6 (Go's rule for the shortest precision): 1e+06 and 1.5e-05, but 100000
 * and 1000. */
int ss_format_double(char *buf, size_t cap, double v)
{
    if (isnan(v))
        return snprintf(buf, cap, "NaN");
    if (isinf(v))
        return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return snprintf(buf, cap, signbit(v) ? "-0" : "0");
    char e[40];
    int prec = 0;
    for (prec = 0; prec < 17; prec++) { /* prec + 1 significant digits */
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    const char *ep = strchr(e, 'e');
    int exp = ep ? atoi(ep + 1) : 0;
    if (exp < -4 || exp >= 6) {
        /* mantissa as printed, exponent with a sign and at least two digits */
        char mant[32];
        size_t ml = ep ? (size_t)(ep - e) : strlen(e);
        if (ml >= sizeof mant)
            ml = sizeof mant - 1;
        memcpy(mant, e, ml);
        mant[ml] = '\0';
        return snprintf(buf, cap, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    int decimals = prec - exp;
    return snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
}

/* Prometheus' HTTP API (marshalPointJSON in 2.42, encoding/json's rule): Go's
 * strconv.FormatFloat(v, 'f', -1, 64), but 'e' when |v| < 1e-6 or |v| >= 1e21:
 * 0.00001, 100000000000000000000, 1e+21, -5e-324; "-0" keeps its sign. */
int ss_format_double_api(char *buf, size_t cap, double v)
{
    if (isnan(v) || isinf(v) || v == 0)
        return ss_format_double(buf, cap, v);
    char e[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    double a = fabs(v);
    const char *ep = strchr(e, 'e');
    int exp = ep ? atoi(ep + 1) : 0;
    if (a < 1e-6 || a >= 1e21)
        return ss_format_double(buf, cap, v); /* the 'g' form is 'e' at these magnitudes */
    /* the significant digits, without sign and point */
    char dig[24];
    size_t nd = 0;
    for (const char *c = e; c < ep && nd < sizeof dig - 1; c++)
        if (*c >= '0' && *c <= '9')
            dig[nd++] = *c;
    dig[nd] = '\0';
    char out[64];
    size_t o = 0;
    if (v < 0)
        out[o++] = '-';
    if (exp < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            out[o++] = '0';
        memcpy(out + o, dig, nd);
        o += nd;
    } else {
        for (size_t i = 0; i < nd || (int)i <= exp; i++) {
            if ((int)i == exp + 1)
                out[o++] = '.';
            out[o++] = i < nd ? dig[i] : '0';
        }
    }
    out[o] = '\0';
    return snprintf(buf, cap, "%s", out);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char *ss_read_secret_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct ss_buf b;
    ss_buf_init(&b, 64 * 1024);
    char chunk[1024];
    size_t r;
    int rc = 0;
    while (!rc && (r = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ss_buf_append(&b, chunk, r);
    ss_wipe(chunk, sizeof chunk);
    fclose(f);
    if (rc) {
        ss_buf_free_secret(&b);
        return NULL;
    }
    /* Go's strings.TrimSpace, as Prometheus and client-go apply to these files */
    size_t a = 0;
    while (a < b.len && is_space(b.data[a]))
        a++;
    while (b.len > a && is_space(b.data[b.len - 1]))
        b.len--;
    if (a) {
        memmove(b.data, b.data + a, b.len - a);
        ss_wipe(b.data + (b.len - a), a);
        b.len -= a;
    }
    if (b.data)
        b.data[b.len] = '\0';
    if (!b.data && ss_buf_append(&b, "", 0))
        return NULL;
    return b.data;
}
