/* awscred_parse.c: the parsers of the credential chain, with no I/O: ISO 8601
 * instants, STS XML replies, container/IMDS credential JSON and the shared
 * credentials/config INI files, plus the small string helpers for secrets.
 *
 * STS answers in XML. We need five leaf elements, so instead of an XML library there
 * is a careful extractor: it walks tags, skips comments, processing instructions and
 * CDATA when looking for elements, refuses DOCTYPE (so no entity expansion), decodes
 * the five predefined entities and character references, and matches element names
 * by local name so a namespace prefix does not matter.
 *
 * Every parser bounds what it keeps (AWSCRED_MAX_*), copies secrets only into buffers
 * it wipes on every failure path, and writes errors that never quote a secret.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "awscred_int.h"
#include "sstext.h"

#define MAX_SERVER_MESSAGE 160 /* bytes of a server's error message we repeat */

/* ---- small helpers ----------------------------------------------------- */

void awscred_why(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

void awscred_sanitize(char *dst, size_t cap, const char *src, size_t n)
{
    if (!cap)
        return;
    size_t limit = cap - 1 < MAX_SERVER_MESSAGE ? cap - 1 : MAX_SERVER_MESSAGE;
    size_t o = 0;
    for (size_t i = 0; i < n && o < limit; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = '\0';
}

void awscred_redact(char *buf, size_t len, const char *const *secrets)
{
    if (!buf || !secrets)
        return;
    for (size_t s = 0; secrets[s]; s++) {
        size_t sl = strlen(secrets[s]);
        if (sl < 4 || sl > len) /* a 1-3 byte "secret" would mask random bytes */
            continue;
        char *p = buf;
        size_t left = len;
        while (left >= sl) {
            char *hit = memmem(p, left, secrets[s], sl);
            if (!hit)
                break;
            memset(hit, '*', sl);
            left -= (size_t)(hit + sl - p);
            p = hit + sl;
        }
    }
}

char *awscred_strdup(const char *s, int *rc)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d && rc)
        *rc = SS_ENOMEM;
    return d;
}

int awscred_check_cred_string(const char *s, size_t max)
{
    if (!s || !*s)
        return SS_EINVAL;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= max)
            return SS_ELIMIT;
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c >= 0x7f) /* they go into HTTP headers */
            return SS_EINVAL;
    }
    return 0;
}

void awscred_value_clear(struct awscred_value *v)
{
    if (!v)
        return;
    ss_free_secret(v->access_key_id);
    ss_free_secret(v->secret_access_key);
    ss_free_secret(v->session_token);
    memset(v, 0, sizeof *v);
}

int awscred_value_check(struct awscred_value *v, char *why, size_t whycap)
{
    int rc;
    const char *what = "access key id";
    if ((rc = awscred_check_cred_string(v->access_key_id, AWSCRED_MAX_KEY_ID)))
        goto fail;
    what = "secret access key";
    if ((rc = awscred_check_cred_string(v->secret_access_key, AWSCRED_MAX_SECRET)))
        goto fail;
    what = "session token";
    if (v->session_token && (rc = awscred_check_cred_string(v->session_token, AWSCRED_MAX_TOKEN)))
        goto fail;
    return 0;
fail:
    awscred_why(why, whycap, "%s is %s", what,
                rc == SS_ELIMIT ? "too long" : "empty or has characters outside visible ASCII");
    awscred_value_clear(v);
    return rc == SS_ELIMIT ? SS_ELIMIT : SS_EPARSE;
}

int awscred_value_copy(struct awscred_value *dst, const struct awscred_value *src)
{
    int rc = 0;
    memset(dst, 0, sizeof *dst);
    dst->access_key_id = awscred_strdup(src->access_key_id, &rc);
    dst->secret_access_key = awscred_strdup(src->secret_access_key, &rc);
    dst->session_token = awscred_strdup(src->session_token, &rc);
    dst->expiration_ms = src->expiration_ms;
    if (rc)
        awscred_value_clear(dst);
    return rc;
}

void awscred_mask_key_id(const char *key_id, char out[9])
{
    size_t n = 0;
    for (; key_id && key_id[n] && n < 4; n++) {
        unsigned char c = (unsigned char)key_id[n];
        out[n] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
    }
    memcpy(out + n, "****", 5);
}

/* ---- time -------------------------------------------------------------- */

static int take_digits(const char **p, const char *e, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= e || **p < '0' || **p > '9')
            return SS_EPARSE;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

static bool take_char(const char **p, const char *e, const char *set)
{
    if (*p < e && **p && strchr(set, **p)) {
        (*p)++;
        return true;
    }
    return false;
}

/* Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year eras
 * (146097 days each) from March 1st of year 0, so leap days fall at the end of a year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int awscred_parse_time(const char *s, size_t len, int64_t *out_ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s, *e = s + len;
    int Y, M, D, h, mi, sec, ms = 0;
    if (!s || take_digits(&p, e, 4, &Y) || !take_char(&p, e, "-") || take_digits(&p, e, 2, &M) ||
        !take_char(&p, e, "-") || take_digits(&p, e, 2, &D) || !take_char(&p, e, "Tt ") ||
        take_digits(&p, e, 2, &h) || !take_char(&p, e, ":") || take_digits(&p, e, 2, &mi) ||
        !take_char(&p, e, ":") || take_digits(&p, e, 2, &sec))
        return SS_EPARSE;
    if (M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || sec > 60)
        return SS_EPARSE;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] + (M == 2 && leap))
        return SS_EPARSE;
    if (take_char(&p, e, ".")) {
        int nd = 0;
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return SS_EPARSE;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (take_char(&p, e, "Zz")) {
        /* UTC */
    } else if (p < e && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (take_digits(&p, e, 2, &oh))
            return SS_EPARSE;
        take_char(&p, e, ":");
        if (take_digits(&p, e, 2, &om) || oh > 23 || om > 59)
            return SS_EPARSE;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return SS_EPARSE; /* a time without a zone is ambiguous: AWS always sends one */
    }
    if (p != e)
        return SS_EPARSE;
    int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *out_ms = t * 1000 + ms;
    return 0;
}

/* ---- XML extractor ----------------------------------------------------- */

struct span {
    const char *p, *e;
};

enum xml_kind { XML_OPEN, XML_CLOSE, XML_SKIP };

struct xml_tag {
    enum xml_kind kind;
    struct span name; /* local name (after any prefix) */
    bool self_closing;
    const char *start; /* the '<' */
    const char *end;   /* just past the '>' */
};

static const char *find_str(const char *p, const char *e, const char *needle)
{
    size_t n = strlen(needle);
    if ((size_t)(e - p) < n)
        return NULL;
    return memmem(p, (size_t)(e - p), needle, n);
}

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next markup construct at or after p. Returns 1 with *t filled, 0 when there is
 * none, SS_EPARSE on unterminated markup or a DOCTYPE. */
static int xml_next(const char *p, const char *e, struct xml_tag *t)
{
    const char *lt = memchr(p, '<', (size_t)(e - p));
    if (!lt)
        return 0;
    t->start = lt;
    t->self_closing = false;
    t->name = (struct span){NULL, NULL};
    const char *q = lt + 1, *close;
    if ((size_t)(e - q) >= 3 && memcmp(q, "!--", 3) == 0) {
        if (!(close = find_str(q + 3, e, "-->")))
            return SS_EPARSE;
        t->kind = XML_SKIP, t->end = close + 3;
        return 1;
    }
    if ((size_t)(e - q) >= 8 && memcmp(q, "![CDATA[", 8) == 0) {
        if (!(close = find_str(q + 8, e, "]]>")))
            return SS_EPARSE;
        t->kind = XML_SKIP, t->end = close + 3;
        return 1;
    }
    if (q < e && *q == '?') {
        if (!(close = find_str(q + 1, e, "?>")))
            return SS_EPARSE;
        t->kind = XML_SKIP, t->end = close + 2;
        return 1;
    }
    if (q < e && *q == '!')
        return SS_EPARSE; /* DOCTYPE and friends: STS never sends them */
    t->kind = XML_OPEN;
    if (q < e && *q == '/') {
        t->kind = XML_CLOSE;
        q++;
    }
    const char *ns = q;
    while (q < e && !xml_space(*q) && *q != '>' && *q != '/')
        q++;
    if (q == ns)
        return SS_EPARSE;
    const char *colon = memchr(ns, ':', (size_t)(q - ns));
    t->name = (struct span){colon ? colon + 1 : ns, q};
    /* attributes: skip to the '>' that is not inside quotes */
    char quote = 0;
    for (; q < e; q++) {
        if (quote) {
            if (*q == quote)
                quote = 0;
        } else if (*q == '"' || *q == '\'') {
            quote = *q;
        } else if (*q == '>') {
            break;
        }
    }
    if (q >= e)
        return SS_EPARSE;
    t->self_closing = t->kind == XML_OPEN && q > lt + 1 && q[-1] == '/';
    t->end = q + 1;
    return 1;
}

static bool span_is(struct span s, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(s.e - s.p) == n && memcmp(s.p, name, n) == 0;
}

/* The content of the first element named `name` inside `in` (any depth). Returns 1
 * when found, 0 when not, SS_EPARSE on broken markup. */
static int xml_find(struct span in, const char *name, struct span *content)
{
    const char *p = in.p;
    struct xml_tag t;
    int rc;
    while ((rc = xml_next(p, in.e, &t)) == 1) {
        p = t.end;
        if (t.kind != XML_OPEN || !span_is(t.name, name))
            continue;
        if (t.self_closing) {
            *content = (struct span){t.end, t.end};
            return 1;
        }
        const char *body = t.end;
        int depth = 1;
        while ((rc = xml_next(p, in.e, &t)) == 1) {
            p = t.end;
            if (t.kind == XML_SKIP || !span_is(t.name, name))
                continue;
            if (t.kind == XML_OPEN && !t.self_closing)
                depth++;
            else if (t.kind == XML_CLOSE && --depth == 0) {
                *content = (struct span){body, t.start};
                return 1;
            }
        }
        return rc < 0 ? rc : SS_EPARSE; /* never closed */
    }
    return rc;
}

/* Decode entities of text [p, e) into o; returns bytes written or -1. A decoded
 * reference is never longer than its source text, so o needs (e - p) bytes. */
static long xml_decode_text(const char *p, const char *e, char *o)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t n = 0;
    while (p < e) {
        if (*p != '&') {
            o[n++] = *p++;
            continue;
        }
        p++;
        bool done = false;
        for (size_t i = 0; i < sizeof named / sizeof named[0] && !done; i++) {
            size_t l = strlen(named[i].name);
            if ((size_t)(e - p) >= l && memcmp(p, named[i].name, l) == 0) {
                o[n++] = named[i].c;
                p += l;
                done = true;
            }
        }
        if (done)
            continue;
        if (p >= e || *p != '#')
            return -1;
        p++;
        int base = 10;
        if (p < e && (*p == 'x' || *p == 'X')) {
            base = 16;
            p++;
        }
        unsigned long cp = 0;
        int nd = 0;
        for (; p < e && *p != ';'; p++, nd++) {
            int d = ss_hex_digit((unsigned char)*p);
            if (d < 0 || d >= base)
                return -1;
            if (nd >= 8)
                return -1;
            cp = cp * (unsigned long)base + (unsigned long)d;
        }
        if (p >= e || nd == 0 || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        p++; /* ';' */
        n += ss_utf8_encode(o + n, (uint32_t)cp);
    }
    return (long)n;
}

/* The text of a leaf element: entities decoded, CDATA kept, comments dropped, ends
 * trimmed. Child elements are an error. Heap string, at most max bytes. */
static int xml_leaf(struct span c, size_t max, char **out)
{
    size_t cap = (size_t)(c.e - c.p) + 1;
    char *o = malloc(cap);
    if (!o)
        return SS_ENOMEM;
    size_t n = 0;
    const char *p = c.p;
    int rc = 0;
    struct xml_tag t;
    while (p < c.e) {
        int k = xml_next(p, c.e, &t);
        const char *text_end = k == 1 ? t.start : c.e;
        long d = xml_decode_text(p, text_end, o + n);
        if (k < 0 || d < 0) {
            rc = SS_EPARSE;
            goto fail;
        }
        n += (size_t)d;
        if (k == 0)
            break;
        if (t.kind != XML_SKIP) {
            rc = SS_EPARSE;
            goto fail;
        }
        if ((size_t)(t.end - t.start) >= 12 && memcmp(t.start, "<![CDATA[", 9) == 0) {
            size_t l = (size_t)(t.end - t.start) - 12;
            memcpy(o + n, t.start + 9, l);
            n += l;
        }
        p = t.end;
    }
    size_t a = 0;
    while (a < n && xml_space(o[a]))
        a++;
    while (n > a && xml_space(o[n - 1]))
        n--;
    if (n - a > max) {
        rc = SS_ELIMIT;
        goto fail;
    }
    memmove(o, o + a, n - a);
    memset(o + (n - a), 0, cap - (n - a));
    *out = o;
    return 0;
fail:
    OPENSSL_cleanse(o, cap);
    free(o);
    return rc;
}

/* Find `name` inside `in` and return its leaf text (NULL when absent). */
static int xml_get(struct span in, const char *name, size_t max, char **out)
{
    struct span c = {NULL, NULL};
    *out = NULL;
    int rc = xml_find(in, name, &c);
    if (rc <= 0)
        return rc;
    return xml_leaf(c, max, out);
}

int awscred_parse_sts_xml(const char *body, size_t len, const char *action, struct awscred_value *out,
                          char *why, size_t whycap)
{
    struct span doc = {body, body + len}, result = {NULL, NULL}, creds = {NULL, NULL};
    char tag[96], *code = NULL, *msg = NULL, *exp = NULL;
    struct awscred_value v = {0};
    int rc;
    memset(out, 0, sizeof *out);
    if (why && whycap)
        why[0] = '\0';
    if (!body || !action || strlen(action) > 64)
        return SS_EINVAL;
    snprintf(tag, sizeof tag, "%sResult", action);

    rc = xml_find(doc, tag, &result);
    if (rc == 0) {
        struct span err = {NULL, NULL};
        if ((rc = xml_find(doc, "Error", &err)) == 1) {
            if ((rc = xml_get(err, "Code", 256, &code)) < 0 || (rc = xml_get(err, "Message", 4096, &msg)) < 0)
                goto fail_parse;
            char c[80], m[MAX_SERVER_MESSAGE + 1];
            awscred_sanitize(c, sizeof c, code ? code : "unknown", code ? strlen(code) : 7);
            awscred_sanitize(m, sizeof m, msg ? msg : "", msg ? strlen(msg) : 0);
            awscred_why(why, whycap, "%s%s%s", c, m[0] ? ": " : "", m);
            rc = SS_EAUTH;
            goto fail;
        }
        if (rc == 0)
            awscred_why(why, whycap, "no %s or Error element in the reply", tag);
        rc = SS_EPARSE;
        goto fail_parse;
    }
    if (rc < 0 || (rc = xml_find(result, "Credentials", &creds)) <= 0) {
        if (rc == 0)
            awscred_why(why, whycap, "no Credentials in %s", tag);
        rc = SS_EPARSE;
        goto fail_parse;
    }
    if ((rc = xml_get(creds, "AccessKeyId", AWSCRED_MAX_KEY_ID, &v.access_key_id)) < 0 ||
        (rc = xml_get(creds, "SecretAccessKey", AWSCRED_MAX_SECRET, &v.secret_access_key)) < 0 ||
        (rc = xml_get(creds, "SessionToken", AWSCRED_MAX_TOKEN, &v.session_token)) < 0 ||
        (rc = xml_get(creds, "Expiration", 64, &exp)) < 0)
        goto fail_parse;
    if (!v.access_key_id || !v.secret_access_key || !v.session_token || !exp) {
        awscred_why(why, whycap, "Credentials lack AccessKeyId, SecretAccessKey, SessionToken or Expiration");
        rc = SS_EPARSE;
        goto fail;
    }
    if (awscred_parse_time(exp, strlen(exp), &v.expiration_ms)) {
        awscred_why(why, whycap, "Expiration is not an ISO 8601 time");
        rc = SS_EPARSE;
        goto fail;
    }
    if ((rc = awscred_value_check(&v, why, whycap)))
        goto fail;
    free(exp);
    *out = v;
    return 0;
fail_parse:
    if (rc == SS_ELIMIT)
        awscred_why(why, whycap, "an element of the STS reply is too long");
    else if (rc == SS_EPARSE && why && !why[0])
        awscred_why(why, whycap, "malformed XML in the STS reply");
    if (rc != SS_ENOMEM && rc != SS_ELIMIT)
        rc = SS_EPARSE;
fail:
    ss_free_secret(code);
    ss_free_secret(msg);
    free(exp);
    awscred_value_clear(&v);
    return rc;
}

/* ---- credential JSON --------------------------------------------------- */

/* Wipe every string inside a jansson value before it is freed: jansson owns the
 * memory, but it is ours to clear (json_string_value's buffer is heap, not shared). */
static void json_wipe(json_t *j)
{
    if (json_is_string(j)) {
        OPENSSL_cleanse((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) json_wipe(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) json_wipe(v);
    }
}

static const char *json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *dup_limited(const char *s, size_t max, int *rc)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n > max) {
        *rc = SS_ELIMIT;
        return NULL;
    }
    return awscred_strdup(s, rc);
}

int awscred_parse_creds_json(const char *body, size_t len, struct awscred_value *out, char *why,
                             size_t whycap)
{
    struct awscred_value v = {0};
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (why && whycap)
        why[0] = '\0';
    json_error_t jerr;
    /* jansson's error text quotes input, which may be a secret: report the position only */
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        awscred_why(why, whycap, "malformed JSON at line %d column %d", jerr.line, jerr.column);
        return SS_EPARSE;
    }
    if (!json_is_object(doc)) {
        awscred_why(why, whycap, "credentials document is not a JSON object");
        rc = SS_EPARSE;
        goto fail;
    }
    const char *code = json_str(doc, "Code");
    const char *lcode = json_str(doc, "code");
    if ((code && strcmp(code, "Success") != 0) || (!code && lcode)) {
        const char *m = json_str(doc, "Message");
        if (!m)
            m = json_str(doc, "message");
        const char *c = code ? code : lcode;
        char cs[80], ms[MAX_SERVER_MESSAGE + 1];
        awscred_sanitize(cs, sizeof cs, c, strlen(c));
        awscred_sanitize(ms, sizeof ms, m ? m : "", m ? strlen(m) : 0);
        awscred_why(why, whycap, "%s%s%s", cs, ms[0] ? ": " : "", ms);
        rc = SS_EAUTH;
        goto fail;
    }
    v.access_key_id = dup_limited(json_str(doc, "AccessKeyId"), AWSCRED_MAX_KEY_ID, &rc);
    v.secret_access_key = dup_limited(json_str(doc, "SecretAccessKey"), AWSCRED_MAX_SECRET, &rc);
    v.session_token = dup_limited(json_str(doc, "Token"), AWSCRED_MAX_TOKEN, &rc);
    if (rc) {
        awscred_why(why, whycap, rc == SS_ELIMIT ? "a credential field is too long" : "out of memory");
        goto fail;
    }
    if (!v.access_key_id || !v.secret_access_key) {
        awscred_why(why, whycap, "document lacks AccessKeyId or SecretAccessKey");
        rc = SS_EPARSE;
        goto fail;
    }
    json_t *jexp = json_object_get(doc, "Expiration");
    if (jexp && !json_is_null(jexp)) {
        if (!json_is_string(jexp) ||
            awscred_parse_time(json_string_value(jexp), json_string_length(jexp), &v.expiration_ms)) {
            awscred_why(why, whycap, "Expiration is not an ISO 8601 time");
            rc = SS_EPARSE;
            goto fail;
        }
    }
    if ((rc = awscred_value_check(&v, why, whycap)))
        goto fail;
    json_wipe(doc);
    json_decref(doc);
    *out = v;
    return 0;
fail:
    awscred_value_clear(&v);
    json_wipe(doc);
    json_decref(doc);
    return rc;
}

/* ---- shared INI files -------------------------------------------------- */

struct ini_entry {
    char *profile, *key, *value;
};

struct awscred_ini {
    struct ini_entry *v;
    size_t n, cap;
    /* profile names seen with a section header (a profile may have no keys) */
    char **profiles;
    size_t nprofiles, profiles_cap;
};

static bool ini_space(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, const char **e)
{
    while (*p < *e && (ini_space(**p) || **p == '\r'))
        (*p)++;
    while (*e > *p && (ini_space((*e)[-1]) || (*e)[-1] == '\r'))
        (*e)--;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int ini_add_profile(struct awscred_ini *ini, const char *p, size_t n)
{
    for (size_t i = 0; i < ini->nprofiles; i++)
        if (strlen(ini->profiles[i]) == n && memcmp(ini->profiles[i], p, n) == 0)
            return 0;
    if (ini->nprofiles >= AWSCRED_MAX_INI_ENTRIES)
        return SS_ELIMIT;
    if (ini->nprofiles == ini->profiles_cap) {
        size_t nc = ini->profiles_cap ? ini->profiles_cap * 2 : 8;
        char **np = realloc(ini->profiles, nc * sizeof *np);
        if (!np)
            return SS_ENOMEM;
        ini->profiles = np;
        ini->profiles_cap = nc;
    }
    if (!(ini->profiles[ini->nprofiles] = dupn(p, n)))
        return SS_ENOMEM;
    ini->nprofiles++;
    return 0;
}

static int ini_add(struct awscred_ini *ini, const char *profile, const char *k, size_t kn, const char *val,
                   size_t vn)
{
    if (ini->n >= AWSCRED_MAX_INI_ENTRIES)
        return SS_ELIMIT;
    if (ini->n == ini->cap) {
        size_t nc = ini->cap ? ini->cap * 2 : 16;
        struct ini_entry *nv = realloc(ini->v, nc * sizeof *nv);
        if (!nv)
            return SS_ENOMEM;
        ini->v = nv;
        ini->cap = nc;
    }
    struct ini_entry *en = &ini->v[ini->n];
    en->profile = strdup(profile);
    en->key = dupn(k, kn);
    en->value = dupn(val, vn);
    if (!en->profile || !en->key || !en->value) {
        free(en->profile);
        free(en->key);
        ss_free_secret(en->value);
        return SS_ENOMEM;
    }
    ini->n++;
    return 0;
}

void awscred_ini_free(struct awscred_ini *ini)
{
    if (!ini)
        return;
    for (size_t i = 0; i < ini->n; i++) {
        free(ini->v[i].profile);
        free(ini->v[i].key);
        ss_free_secret(ini->v[i].value); /* aws_secret_access_key, aws_session_token */
    }
    for (size_t i = 0; i < ini->nprofiles; i++)
        free(ini->profiles[i]);
    free(ini->profiles);
    free(ini->v);
    free(ini);
}

/* A section header's profile name, or NULL (section to skip). name is a heap copy. */
static int ini_section(const char *p, const char *e, bool config_file, char **name)
{
    *name = NULL;
    trim(&p, &e);
    if (p >= e)
        return 0; /* "[]": invalid, skip its properties */
    if (config_file) {
        if ((size_t)(e - p) > 7 && memcmp(p, "profile", 7) == 0 && ini_space(p[7])) {
            p += 8;
            trim(&p, &e);
            if (p >= e)
                return 0;
        } else if (!((size_t)(e - p) == 7 && memcmp(p, "default", 7) == 0)) {
            return 0; /* sso-session, services, or a profile without the prefix */
        }
    }
    for (const char *q = p; q < e; q++)
        if (ini_space(*q))
            return 0; /* profile names have no whitespace */
    *name = dupn(p, (size_t)(e - p));
    return *name ? 0 : SS_ENOMEM;
}

int awscred_ini_parse(const char *text, size_t len, bool config_file, struct awscred_ini **out)
{
    struct awscred_ini *ini = calloc(1, sizeof *ini);
    char *section = NULL;
    bool in_property = false;
    int rc = 0;
    *out = NULL;
    if (!ini)
        return SS_ENOMEM;
    if (len > AWSCRED_MAX_SHARED_FILE) {
        rc = SS_ELIMIT;
        goto fail;
    }
    const char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        const char *t = ls, *te = le;
        trim(&t, &te);
        if (t == te || *t == '#' || *t == ';')
            continue;
        if (*t == '[') {
            free(section);
            section = NULL;
            in_property = false;
            /* anything after ']' is a comment; no ']' makes the line invalid */
            const char *rb = memchr(t, ']', (size_t)(te - t));
            if (!rb)
                continue;
            if ((rc = ini_section(t + 1, rb, config_file, &section)))
                goto fail;
            if (section && (rc = ini_add_profile(ini, section, strlen(section))))
                goto fail;
            continue;
        }
        if (ini_space(*ls) && in_property)
            continue; /* continuation / sub-property of the previous key: not needed */
        in_property = false;
        if (!section)
            continue;
        const char *eq = memchr(t, '=', (size_t)(te - t));
        if (!eq)
            continue; /* not a property; the SDKs warn and skip it */
        const char *k = t, *ke = eq, *v = eq + 1, *ve = te;
        trim(&k, &ke);
        if (k == ke)
            continue;
        /* a '#' or ';' preceded by whitespace starts a comment */
        for (const char *q = v; q < ve; q++)
            if ((*q == '#' || *q == ';') && q > v && ini_space(q[-1])) {
                ve = q;
                break;
            }
        trim(&v, &ve);
        if ((rc = ini_add(ini, section, k, (size_t)(ke - k), v, (size_t)(ve - v))))
            goto fail;
        in_property = true;
    }
    free(section);
    *out = ini;
    return 0;
fail:
    free(section);
    awscred_ini_free(ini);
    return rc;
}

const char *awscred_ini_get(const struct awscred_ini *ini, const char *profile, const char *key)
{
    if (!ini || !profile || !key)
        return NULL;
    for (size_t i = ini->n; i-- > 0;) /* later definitions win */
        if (strcmp(ini->v[i].profile, profile) == 0 && strcasecmp(ini->v[i].key, key) == 0)
            return ini->v[i].value;
    return NULL;
}

bool awscred_ini_has_profile(const struct awscred_ini *ini, const char *profile)
{
    if (!ini || !profile)
        return false;
    for (size_t i = 0; i < ini->nprofiles; i++)
        if (strcmp(ini->profiles[i], profile) == 0)
            return true;
    return false;
}
