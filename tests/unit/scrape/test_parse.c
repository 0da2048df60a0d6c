/* test_parse.c: focused cases for the exposition parser (scrape/parse.c).
 *
 * What the corpora do not pin down: any split of the body into chunks gives the same
 * result (every split point, and every pair of split points for small bodies); the
 * line-length limit, in place and across chunks; escapes; integer and float-seconds
 * timestamps; NaN and infinities; number forms Go accepts or refuses; content-type
 * detection; reset and reuse; callbacks stopping the parse; the family/type given to
 * each sample; and PromParser's lexer corners (raw newlines inside quoted label
 * values, a NUL where a line starts). A synthetic body checks the per-sample cost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scrape.h"

/* ---- recording parser output as text ------------------------------------ */

struct out {
    char *s;
    size_t len, cap;
    int stop_after; /* sample callback returns SS_ELIMIT after this many (0 = never) */
    int nsamples;
};

static void out_put(struct out *o, const char *p, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->s = realloc(o->s, o->cap);
    }
    memcpy(o->s + o->len, p, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void out_printf(struct out *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    out_put(o, tmp, (size_t)n);
}

static void out_str(struct out *o, struct ss_str s)
{
    out_put(o, s.p, s.len);
}

/* Shortest C "%g" text that reads back to v (the test's own format, so it does not
 * depend on how common/ formats numbers). */
static void fmt_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int rec_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct out *o = ud;
    out_put(o, "S ", 2);
    out_str(o, s->name);
    out_put(o, "{", 1);
    for (size_t i = 0; i < s->nlabels; i++) {
        out_str(o, s->labels[i].name);
        out_put(o, "=[", 2);
        out_str(o, s->labels[i].value);
        out_put(o, "]", 1);
    }
    char v[40];
    fmt_double(v, sizeof v, s->value);
    out_printf(o, "} %s", v);
    if (s->has_timestamp)
        out_printf(o, " @%lld", (long long)s->timestamp_ms);
    out_put(o, " fam=", 5);
    out_str(o, s->family);
    out_printf(o, " %s L%u\n", scrape_metric_type_name(s->type), s->line);
    o->nsamples++;
    if (o->stop_after && o->nsamples >= o->stop_after)
        return SS_ELIMIT;
    return 0;
}

static int rec_meta(void *ud, const struct scrape_parsed_meta *m)
{
    struct out *o = ud;
    static const char *kinds[] = {"HELP", "TYPE", "UNIT"};
    out_printf(o, "M %s ", kinds[m->kind]);
    out_str(o, m->family);
    out_put(o, " [", 2);
    out_str(o, m->text);
    out_printf(o, "] %s L%u\n", m->kind == SCRAPE_META_TYPE ? scrape_metric_type_name(m->type) : "-",
               m->line);
    return 0;
}

struct mode {
    enum scrape_format fmt;
    bool strict, utf8;
    size_t max_line;
};

#define TEXT_LENIENT ((struct mode){SCRAPE_FORMAT_TEXT, false, false, 0})
#define TEXT_STRICT  ((struct mode){SCRAPE_FORMAT_TEXT, true, false, 0})
#define OM_LENIENT   ((struct mode){SCRAPE_FORMAT_OPENMETRICS, false, false, 0})
#define OM_STRICT    ((struct mode){SCRAPE_FORMAT_OPENMETRICS, true, false, 0})

/* Parse body split at the given offsets (sorted, may be empty). Output and error text
 * go to o; returns the status. */
static int run_split(struct mode m, const char *body, size_t len, const size_t *cuts, size_t ncuts,
                     struct out *o)
{
    struct scrape_parser_opts opts = {
        .format = m.fmt, .strict = m.strict, .utf8_names = m.utf8, .max_line_len = m.max_line};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    struct scrape_parser_cb cb = {.sample = rec_sample, .meta = rec_meta, .ud = o};
    int rc = 0;
    size_t off = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t stop = i < ncuts ? cuts[i] : len;
        /* A fresh copy per chunk: the parser must not keep pointers into old chunks. */
        char *chunk = malloc(stop - off + 1);
        memcpy(chunk, body + off, stop - off);
        rc = scrape_parser_feed(p, chunk, stop - off, &cb);
        memset(chunk, 'X', stop - off);
        free(chunk);
        off = stop;
    }
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    if (rc)
        out_printf(o, "ERR %d %s\n", rc, scrape_parser_error(p));
    scrape_parser_free(p);
    return rc;
}

static int run(struct mode m, const char *body, struct out *o)
{
    return run_split(m, body, strlen(body), NULL, 0, o);
}

static void out_free(struct out *o)
{
    free(o->s);
    memset(o, 0, sizeof *o);
}

/* Parse and compare the recorded output with want. */
static void expect(struct mode m, const char *body, const char *want)
{
    struct out o = {0};
    run(m, body, &o);
    if (strcmp(o.s ? o.s : "", want) != 0)
        fail_msg("body:\n%s\ngot:\n%s\nwant:\n%s", body, o.s ? o.s : "", want);
    out_free(&o);
}

/* Parse and require an error whose message contains `needle`. */
static void expect_err(struct mode m, const char *body, int err, const char *needle)
{
    struct out o = {0};
    int rc = run(m, body, &o);
    if (rc != err || !strstr(o.s ? o.s : "", needle))
        fail_msg("body:\n%s\ngot rc %d:\n%s\nwant %d containing \"%s\"", body, rc, o.s ? o.s : "", err,
                 needle);
    out_free(&o);
}

/* ---- chunk boundaries ----------------------------------------------------- */

static void check_all_splits(struct mode m, const char *body, size_t len)
{
    struct out ref = {0};
    run_split(m, body, len, NULL, 0, &ref);
    for (size_t i = 0; i <= len; i++) {
        struct out o = {0};
        run_split(m, body, len, &i, 1, &o);
        if (strcmp(o.s, ref.s) != 0)
            fail_msg("split at %zu differs:\n%s\nvs one chunk:\n%s", i, o.s, ref.s);
        out_free(&o);
    }
    /* Every pair of split points, for bodies small enough. */
    if (len <= 160) {
        for (size_t i = 0; i <= len; i++) {
            for (size_t j = i; j <= len; j++) {
                size_t cuts[2] = {i, j};
                struct out o = {0};
                run_split(m, body, len, cuts, 2, &o);
                if (strcmp(o.s, ref.s) != 0)
                    fail_msg("split at %zu,%zu differs:\n%s\nvs:\n%s", i, j, o.s, ref.s);
                out_free(&o);
            }
        }
    }
    /* Byte by byte. */
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    struct out o = {0};
    run_split(m, body, len, cuts, len ? len - 1 : 0, &o);
    assert_string_equal(o.s, ref.s);
    out_free(&o);
    free(cuts);
    out_free(&ref);
}

static void test_every_split_point(void **state)
{
    (void)state;
    static const char text[] = "# HELP http_requests_total Requests, with \\\\ and \\n escapes.\n"
                               "# TYPE http_requests_total counter\n"
                               "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                               "http_requests_total{path=\"/caf\xc3\xa9\",q=\"a\\\"b\\\\c\\nd\"} 3\n"
                               "\n"
                               "  # a comment\n"
                               "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
                               "no_newline_at_end -Inf";
    check_all_splits(TEXT_LENIENT, text, sizeof text - 1);
    check_all_splits(TEXT_STRICT, text, sizeof text - 1); /* fails at the end, always */

    static const char om[] = "# TYPE foo counter\n"
                             "# HELP foo Caf\xc3\xa9 \\\"help\\\"\n"
                             "foo_total{a=\"\xe2\x82\xac\"} 17.0 1520879607.789 # {id=\"x\"} 5\n"
                             "foo_created 1520872607.123\n"
                             "# EOF";
    check_all_splits(OM_LENIENT, om, sizeof om - 1);
    check_all_splits(OM_STRICT, om, sizeof om - 1);

    /* A quoted label value running over a raw newline (lenient text). */
    static const char multi[] = "a{x=\"line1\nline2\",y=\"z\"} 1\nb 2\n";
    check_all_splits(TEXT_LENIENT, multi, sizeof multi - 1);

    /* Bodies holding NUL bytes. */
    static const char nul[] = "a{b=\"\0x\"} 1\n# HELP m h\0elp\n";
    check_all_splits(TEXT_LENIENT, nul, sizeof nul - 1);
    static const char omnul[] = "a{b=\"\0\"} 1\n# EOF\n";
    check_all_splits(OM_LENIENT, omnul, sizeof omnul - 1);
}

/* ---- line limit ------------------------------------------------------------ */

static void test_line_limit(void **state)
{
    (void)state;
    struct mode m = TEXT_LENIENT;
    m.max_line = 32;
    /* 32 bytes before the newline: accepted; 33: refused. */
    const char *at_limit = "a{b=\"xxxxxxxxxxxxxxxxxxxxxxx\"} 1\n";
    const char *over = "a{b=\"xxxxxxxxxxxxxxxxxxxxxxxx\"} 1\n";
    assert_int_equal(strlen(at_limit), 33);
    struct out o = {0};
    assert_int_equal(run(m, at_limit, &o), 0);
    assert_int_equal(o.nsamples, 1);
    out_free(&o);
    expect_err(m, over, SS_ELIMIT, "line 1: line longer than 32 bytes");

    /* The same line fed in pieces is refused before it is complete, and the limit
     * holds for an unterminated last line. */
    const char *longline = "b 1\nc{d=\"0123456789012345678901234567890123456789\"} 1\n";
    size_t cuts[3] = {6, 20, 40};
    assert_int_equal(run_split(m, longline, strlen(longline), cuts, 3, &o), SS_ELIMIT);
    assert_non_null(strstr(o.s, "line 2: line longer than 32 bytes"));
    out_free(&o);
    expect_err(m, "b 1\nc 012345678901234567890123456789012345", SS_ELIMIT, "line 2");

    /* The default is 1 MiB. */
    size_t big = (1u << 20) + 10;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "a 1", 3);
    body[big - 1] = '\n';
    body[big] = '\0';
    assert_int_equal(run(TEXT_LENIENT, body, &o), SS_ELIMIT);
    out_free(&o);
    body[(1u << 20)] = '\n'; /* exactly 1 MiB before the newline */
    assert_int_equal(run_split(TEXT_LENIENT, body, (1u << 20) + 1, NULL, 0, &o), 0);
    assert_int_equal(o.nsamples, 1);
    out_free(&o);
    free(body);
}

/* ---- escapes ----------------------------------------------------------------- */

static void test_escapes(void **state)
{
    (void)state;
    /* Label values: \\ \" \n decoded in every mode. */
    expect(TEXT_LENIENT, "a{b=\"x\\\\y\\\"z\\nw\"} 1\n", "S a{b=[x\\y\"z\nw]} 1 fam=a unknown L1\n");
    expect(OM_STRICT, "a{b=\"x\\\\y\\\"z\\nw\"} 1\n# EOF\n", "S a{b=[x\\y\"z\nw]} 1 fam=a unknown L1\n");
    /* Other escapes: kept as written by Prometheus and by the OpenMetrics reference
     * parser; prometheus/common refuses them. */
    expect(TEXT_LENIENT, "a{b=\"\\t\\x\"} 1\n", "S a{b=[\\t\\x]} 1 fam=a unknown L1\n");
    expect(OM_STRICT, "a{b=\"\\z\"} 1\n# EOF\n", "S a{b=[\\z]} 1 fam=a unknown L1\n");
    expect_err(TEXT_STRICT, "a{b=\"\\t\"} 1\n", SS_EPARSE, "invalid escape sequence");
    /* A backslash before the closing quote escapes it. */
    expect_err(TEXT_LENIENT, "a{b=\"\\\"} 1\n", SS_EPARSE, "unterminated label value");
    /* HELP: 0.0.4 decodes \\ and \n (Prometheus leaves \" alone); OpenMetrics also \". */
    expect(TEXT_LENIENT, "# HELP a x\\\\y\\nz\\\"\n", "M HELP a [x\\y\nz\\\"] - L1\n");
    expect(OM_LENIENT, "# HELP a x\\\\y\\nz\\\"\n# EOF\n", "M HELP a [x\\y\nz\"] - L1\n");
    /* Invalid UTF-8 in a label value or HELP is refused everywhere. */
    expect_err(TEXT_LENIENT, "a{b=\"\xff\"} 1\n", SS_EPARSE, "invalid UTF-8");
    expect_err(OM_LENIENT, "a{b=\"\xc0\x80\"} 1\n# EOF\n", SS_EPARSE, "invalid UTF-8");
    expect_err(TEXT_LENIENT, "# HELP a \xed\xa0\x80\n", SS_EPARSE, "not valid UTF-8");
    /* Quoted names (UTF-8 extension) are unescaped too. */
    struct mode u = TEXT_LENIENT;
    u.utf8 = true;
    expect(u, "{\"a.b\\\"c\",\"l.1\"=\"v\"} 1\n", "S a.b\"c{l.1=[v]} 1 fam=a.b\"c unknown L1\n");
    expect_err(TEXT_LENIENT, "{\"a.b\"} 1\n", SS_EPARSE, "invalid metric name");
}

/* ---- timestamps -------------------------------------------------------------- */

static void test_timestamps(void **state)
{
    (void)state;
    /* 0.0.4: integer milliseconds. */
    expect(TEXT_LENIENT, "a 1 1395066363000\n", "S a{} 1 @1395066363000 fam=a unknown L1\n");
    expect(TEXT_LENIENT, "a 1 9223372036854775807\n", "S a{} 1 @9223372036854775807 fam=a unknown L1\n");
    expect_err(TEXT_LENIENT, "a 1 9223372036854775808\n", SS_EPARSE, "timestamp");
    expect_err(TEXT_LENIENT, "a 1 1.5\n", SS_EPARSE, "spurious");
    /* PromParser lexes [0-9]+; prometheus/common takes a sign. */
    expect_err(TEXT_LENIENT, "a 1 -2\n", SS_EPARSE, "timestamp");
    expect(TEXT_STRICT, "a 1 -2\n", "S a{} 1 @-2 fam=a unknown L1\n");
    /* A blank after the value starts a timestamp in prometheus/common (promtool: "expected
     * integer as timestamp, got \"\""), and nothing may follow one; PromParser takes both. */
    expect_err(TEXT_STRICT, "a 1 \n", SS_EPARSE, "expected integer as timestamp");
    expect_err(TEXT_STRICT, "a{b=\"c\"} 1\t\n", SS_EPARSE, "expected integer as timestamp");
    expect_err(TEXT_STRICT, "a 1 2 \n", SS_EPARSE, "spurious string after timestamp");
    expect(TEXT_STRICT, "a 1  2\n", "S a{} 1 @2 fam=a unknown L1\n");
    expect(TEXT_LENIENT, "a 1 \nb 1 2 \n", "S a{} 1 fam=a unknown L1\nS b{} 1 @2 fam=b unknown L2\n");
    /* OpenMetrics: float seconds, int64(ts*1000) as Prometheus 2.42. */
    expect(OM_LENIENT, "a 1 1520879607.789\nb 1 1.5\nc 1 -1.5\nd 1 1.5e3\ne 1 0.0009\nf 1 1e300\n# EOF\n",
           "S a{} 1 @1520879607789 fam=a unknown L1\n"
           "S b{} 1 @1500 fam=b unknown L2\n"
           "S c{} 1 @-1500 fam=c unknown L3\n"
           "S d{} 1 @1500000 fam=d unknown L4\n"
           "S e{} 1 @0 fam=e unknown L5\n"
           "S f{} 1 @-9223372036854775808 fam=f unknown L6\n");
    expect_err(OM_LENIENT, "a 1 NaN\n# EOF\n", SS_EPARSE, "invalid timestamp");
    expect_err(OM_LENIENT, "a 1 +Inf\n# EOF\n", SS_EPARSE, "invalid timestamp");
    expect_err(OM_LENIENT, "a 1 1 # {x=\"y\"} 1 Inf\n# EOF\n", SS_EPARSE, "exemplar timestamp");
}

/* ---- values -------------------------------------------------------------------- */

static void test_values(void **state)
{
    (void)state;
    expect(TEXT_LENIENT,
           "a NaN\nb +Inf\nc -Inf\nd inf\ne Infinity\nf nan\ng -0\nh 08\ni .5\nj 5.\n"
           "k 1e-400\nl 1E+3\nm 7.424100000000001e-05\nn 123456789012345678901234567890\n"
           "o 4.9e-324\np 1.7976931348623157e308\n",
           "S a{} NaN fam=a unknown L1\n"
           "S b{} +Inf fam=b unknown L2\n"
           "S c{} -Inf fam=c unknown L3\n"
           "S d{} +Inf fam=d unknown L4\n"
           "S e{} +Inf fam=e unknown L5\n"
           "S f{} NaN fam=f unknown L6\n"
           "S g{} -0 fam=g unknown L7\n"
           "S h{} 8 fam=h unknown L8\n"
           "S i{} 0.5 fam=i unknown L9\n"
           "S j{} 5 fam=j unknown L10\n"
           "S k{} 0 fam=k unknown L11\n"
           "S l{} 1e+03 fam=l unknown L12\n"
           "S m{} 7.424100000000001e-05 fam=m unknown L13\n"
           "S n{} 1.2345678901234568e+29 fam=n unknown L14\n"
           "S o{} 5e-324 fam=o unknown L15\n"
           "S p{} 1.7976931348623157e+308 fam=p unknown L16\n");
    /* Go's ParseFloat refuses these (or Prometheus' parseFloat does). */
    static const char *const bad[] = {"+nan", "-NaN",  "0x1p3",   "0x10",  "1_000", "1e", "1e+", ".",    "-",
                                      "+",    "1.2.3", "infinit", "1e400", "--1",   "1f", "0b1", "\"1\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char body[64];
        snprintf(body, sizeof body, "a %s\n", bad[i]);
        expect_err(TEXT_LENIENT, body, SS_EPARSE, "value");
        snprintf(body, sizeof body, "a %s\n# EOF\n", bad[i]);
        expect_err(OM_LENIENT, body, SS_EPARSE, "value");
    }
    /* Parsed values round-trip exactly on a range of magnitudes. */
    srand(42);
    for (int i = 0; i < 2000; i++) {
        double v = ldexp((double)rand() / RAND_MAX - 0.5, rand() % 200 - 100);
        char body[80], want[160], num[40];
        snprintf(body, sizeof body, "a %.17g\n", v);
        fmt_double(num, sizeof num, v);
        snprintf(want, sizeof want, "S a{} %s fam=a unknown L1\n", num);
        expect(TEXT_LENIENT, body, want);
    }
}

/* Plain decimals ([digits][.digits], the values most expositions hold) take a fast
 * path of their own: it must give strtod's double, bit for bit, on every length of
 * integer and fraction part, with leading and trailing zeros, and around 2^53 and 19
 * digits, where it hands over to the general path. */
static int keep_value(void *ud, const struct scrape_parsed_sample *s)
{
    *(double *)ud = s->value;
    return 0;
}

/* The line "a NUM": the parser's result code, and the value it parsed into *got. */
static int parse_value(const char *num, double *got)
{
    char body[96];
    snprintf(body, sizeof body, "a %s\n", num);
    struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_TEXT};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    struct scrape_parser_cb cb = {.sample = keep_value, .ud = got};
    int rc = scrape_parser_feed(p, body, strlen(body), &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    scrape_parser_free(p);
    return rc;
}

static void check_decimal(const char *num)
{
    double got = -12345.0;
    int rc = parse_value(num, &got);
    char *end;
    double want = strtod(num, &end);
    if (rc || memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%s: rc %d, parsed %.17g, strtod %.17g", num, rc, got, want);
}

/* A token that is no number, as a sample's value: the line fails. */
static void check_not_decimal(const char *num)
{
    double got = 0;
    if (!parse_value(num, &got))
        fail_msg("%s: parsed as %.17g", num, got);
}

static void test_decimals_match_strtod(void **state)
{
    (void)state;
    /* runs of 8 digits are read a word at a time: the bytes next to '0' and '9'
     * (0x2F, 0x3A), the same with the high bit set, at every place of a word */
    static const char *const bad[] = {"1234567/",
                                      "/2345678",
                                      "1234:678",
                                      "12345678:",
                                      "123456789/12345678",
                                      "12345678\xb0",
                                      "\xb9"
                                      "1234567",
                                      "1234\xba"
                                      "678",
                                      "12345678123456781:3"};
    char edge[32];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check_not_decimal(bad[i]);
    for (int at = 0; at < 8; at++)
        for (int c = 0; c < 6; c++) {
            static const unsigned char odd[] = {0x2F, 0x3A, 0xAF, 0xB0, 0xB9, 0xBA};
            snprintf(edge, sizeof edge, "1876543210123456"); /* < 2^53: the fast path */
            edge[at] = (char)odd[c];
            check_not_decimal(edge);
            edge[8 + at] = '0';
            check_not_decimal(edge);
        }
    check_decimal("12345678");
    check_decimal("99999999");
    check_decimal("00000000");
    check_decimal("1234567812345678");
    check_decimal("12345678123456781");
    check_decimal("123456781234567812");
    check_decimal("1234567812345678.25");
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "+0",
                                        "00000",
                                        "0.0",
                                        "1.",
                                        ".5",
                                        "-.5",
                                        "+7",
                                        "9007199254740991",
                                        "9007199254740992",
                                        "9007199254740993",
                                        "9007199254740991.5",
                                        "900719925474099.15",
                                        "1234567890123456789",
                                        "12345678901234567890",
                                        "99999999999999999999",
                                        "0.1",
                                        "0.30000000000000004",
                                        "-123.456",
                                        "0.0000000000000000000001",
                                        "0.00000000000000000000001",
                                        "1234567.1234567890123",
                                        "12907031.849581",
                                        "0000000000000000000012.5",
                                        "18446744073709551615",
                                        "18446744073709551616"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        check_decimal(fixed[i]);
    uint64_t x = 0x2545F4914F6CDD1DULL;
#define RND(n) ((x = x * 6364136223846793005ULL + 1442695040888963407ULL), (size_t)((x >> 33) % (n)))
    for (int iter = 0; iter < 20000; iter++) {
        char num[64];
        size_t n = 0;
        if (RND(4) == 0)
            num[n++] = RND(2) ? '-' : '+';
        size_t zeros = RND(3) ? 0 : RND(4), ndig = RND(22), nfrac = RND(3) ? RND(23) : 0;
        bool dot = nfrac || RND(8) == 0;
        if (!ndig && !nfrac && !zeros)
            ndig = 1;
        for (size_t k = 0; k < zeros; k++)
            num[n++] = '0';
        for (size_t k = 0; k < ndig; k++)
            num[n++] = (char)('0' + RND(10));
        if (dot)
            num[n++] = '.';
        for (size_t k = 0; k < nfrac; k++)
            num[n++] = (char)('0' + (RND(3) ? RND(10) : 0));
        num[n] = '\0';
        check_decimal(num);
    }
#undef RND
}

/* ---- content type --------------------------------------------------------------- */

static void test_content_type(void **state)
{
    (void)state;
    assert_int_equal(scrape_format_from_content_type(NULL), SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type(""), SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type("text/plain; version=0.0.4; charset=utf-8"),
                     SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type("application/openmetrics-text"),
                     SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(
        scrape_format_from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(scrape_format_from_content_type(" Application/OpenMetrics-Text;version=0.0.1"),
                     SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(scrape_format_from_content_type("application/openmetrics-textx"), SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type("application/vnd.google.protobuf"), SCRAPE_FORMAT_TEXT);
    assert_string_equal(scrape_metric_type_name(SCRAPE_TYPE_GAUGEHISTOGRAM), "gaugehistogram");
    assert_string_equal(scrape_metric_type_name(SCRAPE_TYPE_UNKNOWN), "unknown");
}

/* ---- reset, reuse, callbacks ----------------------------------------------------- */

static int return_one(void *ud, const struct scrape_parsed_sample *s)
{
    (void)ud;
    (void)s;
    return 1;
}

static void test_reset_and_reuse(void **state)
{
    (void)state;
    struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_OPENMETRICS, .strict = true};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    struct out o = {0};
    struct scrape_parser_cb cb = {.sample = rec_sample, .meta = rec_meta, .ud = &o};

    /* An error is sticky until reset. */
    const char *bad = "# TYPE a counter\na_total -1\n";
    assert_int_equal(scrape_parser_feed(p, bad, strlen(bad), &cb), SS_EPARSE);
    assert_non_null(strstr(scrape_parser_error(p), "line 2:"));
    assert_int_equal(scrape_parser_feed(p, "b 1\n", 4, &cb), SS_EPARSE);
    assert_int_equal(scrape_parser_finish(p, &cb), SS_EPARSE);

    /* Reset: names from the last body do not clash with this one. */
    for (int round = 0; round < 3; round++) {
        scrape_parser_reset(p, SCRAPE_FORMAT_OPENMETRICS);
        assert_string_equal(scrape_parser_error(p), "");
        const char *good = "# TYPE a counter\na_total 1\n# EOF\n";
        assert_int_equal(scrape_parser_feed(p, good, 10, &cb), 0);
        assert_int_equal(scrape_parser_feed(p, good + 10, strlen(good) - 10, &cb), 0);
        assert_int_equal(scrape_parser_finish(p, &cb), 0);
        assert_int_equal(scrape_parser_finish(p, &cb), 0); /* idempotent */
        /* Anything after # EOF is an error, even a newline. */
        assert_int_equal(scrape_parser_feed(p, "\n", 1, &cb), SS_EPARSE);
    }
    /* Switch format on reset; strict text wants a final newline. */
    scrape_parser_reset(p, SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_parser_feed(p, "x 1\ny 2", 7, &cb), 0);
    assert_int_equal(scrape_parser_feed(p, NULL, 0, &cb), 0);
    assert_int_equal(scrape_parser_finish(p, &cb), SS_EPARSE); /* strict: no final newline */
    scrape_parser_free(p);
    out_free(&o);

    opts = (struct scrape_parser_opts){.format = SCRAPE_FORMAT_TEXT};
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    cb.ud = &o;
    assert_int_equal(scrape_parser_feed(p, "x 1\ny 2", 7, &cb), 0);
    assert_int_equal(scrape_parser_finish(p, &cb), 0);
    assert_string_equal(o.s, "S x{} 1 fam=x unknown L1\nS y{} 2 fam=y unknown L2\n");
    scrape_parser_free(p);
    out_free(&o);

    /* A callback's non-zero return stops the parse and is returned as is. */
    o.stop_after = 2;
    assert_int_equal(run(TEXT_LENIENT, "a 1\nb 2\nc 3\n", &o), SS_ELIMIT);
    assert_int_equal(o.nsamples, 2);
    assert_non_null(strstr(o.s, "stopped by callback"));
    out_free(&o);

    /* Any non-zero value stops it, even a positive one, also in the middle of a
     * 0.0.4 line that runs over a newline inside a quoted value. */
    o.stop_after = 1;
    assert_int_equal(run(TEXT_LENIENT, "a{x=\"1\n2\"} 1\nb 2\n", &o), SS_ELIMIT);
    assert_int_equal(o.nsamples, 1);
    out_free(&o);
    struct scrape_parser_opts lo = {.format = SCRAPE_FORMAT_TEXT};
    assert_int_equal(scrape_parser_new(&lo, &p), 0);
    struct scrape_parser_cb one = {.sample = return_one};
    assert_int_equal(scrape_parser_feed(p, "a 1\nb{x=\"\n\"} 2\n", 16, &one), 1);
    assert_int_equal(scrape_parser_feed(p, "c 3\n", 4, &one), 1);
    assert_int_equal(scrape_parser_finish(p, &one), 1);
    scrape_parser_free(p);

    /* NULL callbacks and NULL parser are fine. */
    assert_int_equal(scrape_parser_new(NULL, &p), 0);
    assert_int_equal(scrape_parser_feed(p, "a 1\n", 4, NULL), 0);
    assert_int_equal(scrape_parser_finish(p, NULL), 0);
    scrape_parser_free(p);
    scrape_parser_free(NULL);
    scrape_parser_reset(NULL, SCRAPE_FORMAT_TEXT);
}

/* ---- families and types ---------------------------------------------------------- */

static void test_families(void **state)
{
    (void)state;
    expect(TEXT_LENIENT,
           "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nh_total 1\n"
           "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 1\nother 1\ns_sum 3\n",
           "M TYPE h [] histogram L1\n"
           "S h_bucket{le=[1]} 1 fam=h histogram L2\n"
           "S h_sum{} 2 fam=h histogram L3\n"
           "S h_count{} 1 fam=h histogram L4\n"
           "S h_total{} 1 fam=h_total unknown L5\n"
           "M TYPE s [] summary L6\n"
           "S s{quantile=[0.5]} 1 fam=s summary L7\n"
           "S s_count{} 1 fam=s summary L8\n"
           "S other{} 1 fam=other unknown L9\n"
           "S s_sum{} 3 fam=s summary L10\n");
    expect(OM_LENIENT,
           "# TYPE c_seconds counter\n# UNIT c_seconds seconds\nc_seconds_total 1\n"
           "c_seconds_created 2\nc_seconds 3\n"
           "# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\n"
           "g_gcount 1\ng_gsum 1\n# EOF\n",
           "M TYPE c_seconds [] counter L1\n"
           "M UNIT c_seconds [seconds] - L2\n"
           "S c_seconds_total{} 1 fam=c_seconds counter L3\n"
           "S c_seconds_created{} 2 fam=c_seconds counter L4\n"
           "S c_seconds{} 3 fam=c_seconds counter L5\n"
           "M TYPE i [] info L6\n"
           "S i_info{v=[1]} 1 fam=i info L7\n"
           "M TYPE g [] gaugehistogram L8\n"
           "S g_bucket{le=[+Inf]} 1 fam=g gaugehistogram L9\n"
           "S g_gcount{} 1 fam=g gaugehistogram L10\n"
           "S g_gsum{} 1 fam=g gaugehistogram L11\n");
    /* The family of the last sample name is remembered; a TYPE line in between, even
     * for the same family, makes it look again. */
    expect(TEXT_LENIENT,
           "# TYPE y histogram\ny_bucket{le=\"1\"} 1\ny_bucket{le=\"2\"} 2\n# TYPE y summary\n"
           "y_bucket{le=\"3\"} 3\ny_sum 4\n",
           "M TYPE y [] histogram L1\n"
           "S y_bucket{le=[1]} 1 fam=y histogram L2\n"
           "S y_bucket{le=[2]} 2 fam=y histogram L3\n"
           "M TYPE y [] summary L4\n"
           "S y_bucket{le=[3]} 3 fam=y_bucket unknown L5\n"
           "S y_sum{} 4 fam=y summary L6\n");
    /* A metadata line for another name switches the family. */
    expect(OM_LENIENT, "# TYPE c counter\n# UNIT c_s s\nc_total 1\n# EOF\n",
           "M TYPE c [] counter L1\nM UNIT c_s [s] - L2\nS c_total{} 1 fam=c_total unknown L3\n");
    /* Strict text finds families by name anywhere in the body (prometheus/common). */
    expect(TEXT_STRICT, "# TYPE s summary\n# TYPE t gauge\ns_count 1\nt 2\ns_sum 3\n",
           "M TYPE s [] summary L1\n"
           "M TYPE t [] gauge L2\n"
           "S s_count{} 1 fam=s summary L3\n"
           "S t{} 2 fam=t gauge L4\n"
           "S s_sum{} 3 fam=s summary L5\n");
}

/* ---- lexer corners ----------------------------------------------------------------- */

static void test_prometheus_lexer_corners(void **state)
{
    (void)state;
    /* A raw newline inside a quoted label value: PromParser takes it; the line goes on
     * to the next newline. Line numbers count physical lines. */
    expect(TEXT_LENIENT, "a{x=\"1\n2\"} 1\nb 2\n",
           "S a{x=[1\n2]} 1 fam=a unknown L1\nS b{} 2 fam=b unknown L3\n");
    expect_err(TEXT_STRICT, "a{x=\"1\n2\"} 1\n", SS_EPARSE, "unterminated label value");
    expect_err(OM_LENIENT, "a{x=\"1\n2\"} 1\n# EOF\n", SS_EPARSE, "unterminated label value");
    /* ... but not a backslash before the newline, nor a quote still open at the end. */
    expect_err(TEXT_LENIENT, "a{x=\"1\\\n2\"} 1\n", SS_EPARSE, "unterminated");
    expect_err(TEXT_LENIENT, "a{x=\"1\n2} 1\n", SS_EPARSE, "unterminated");
    /* A NUL where a line starts ends the body for PromParser; the rest is ignored. */
    struct out o = {0};
    assert_int_equal(run_split(TEXT_LENIENT, "a 1\n\0junk{\nb 2\n", 15, NULL, 0, &o), 0);
    assert_string_equal(o.s, "S a{} 1 fam=a unknown L1\n");
    out_free(&o);
    assert_int_equal(run_split(TEXT_STRICT, "a 1\n\0junk{\nb 2\n", 15, NULL, 0, &o), SS_EPARSE);
    out_free(&o);
    /* Commas between labels are optional and blanks are free in 0.0.4 (lenient). */
    expect(TEXT_LENIENT, "a { x = \"1\" y=\"2\" , } 3\n", "S a{x=[1]y=[2]} 3 fam=a unknown L1\n");
    expect_err(TEXT_STRICT, "a { x = \"1\" y=\"2\" } 3\n", SS_EPARSE, "after label value");
    expect_err(OM_LENIENT, "a{x=\"1\", y=\"2\"} 3\n# EOF\n", SS_EPARSE, "label name");
    /* HELP/TYPE spelling: "#HELP" is a comment; the text loses one byte after the name. */
    expect(TEXT_LENIENT, "#HELP a x\n# HELP\ta\tdoc\n# HELP b   \n# TYPE c\tcounter\n",
           "M HELP a [doc] - L2\nM HELP b [] - L3\nM TYPE c [] counter L4\n");
    expect_err(TEXT_LENIENT, "# TYPE c  counter\n", SS_EPARSE, "invalid metric type");
    expect_err(TEXT_LENIENT, "# TYPE c gaugehistogram\n", SS_EPARSE, "invalid metric type");
    /* The label set never carries __name__. */
    expect_err(TEXT_LENIENT, "a{__name__=\"b\"} 1\n", SS_EPARSE, "reserved");
    /* Prometheus 2.42 fails the scrape on a repeated label name (at append time). */
    expect_err(TEXT_LENIENT, "a{x=\"1\",y=\"2\",x=\"3\"} 1\n", SS_EPARSE, "not unique");
    expect_err(OM_LENIENT, "a{x=\"1\",x=\"1\"} 1\n# EOF\n", SS_EPARSE, "not unique");
    /* Big label sets are checked once sorted: a repeat anywhere among 3000 labels is
     * found (first and last, both in the middle), and none is found where there is none. */
    enum { BIG = 3000 };
    char *big = malloc(BIG * 16 + 64);
    assert_non_null(big);
    for (int dup = 0; dup < 3; dup++) {
        size_t n = (size_t)sprintf(big, "a{");
        for (int i = 0; i < BIG; i++) {
            int name = dup == 0 && i == BIG - 1 ? 0 : dup == 1 && i == 2000 ? 1000 : i;
            n += (size_t)sprintf(big + n, "l%d=\"v\",", name);
        }
        sprintf(big + n, "} 1\n");
        if (dup < 2) {
            expect_err(TEXT_LENIENT, big, SS_EPARSE,
                       dup == 0 ? "label name \"l0\" is not unique" : "label name \"l1000\" is not unique");
        } else {
            struct out ob = {0};
            assert_int_equal(run(TEXT_LENIENT, big, &ob), 0);
            out_free(&ob);
        }
    }
    free(big);
    /* OpenMetrics in 2.42: a label name must follow a comma; 0.0.4 frees it. */
    expect_err(OM_LENIENT, "a{x=\"1\",} 1\n# EOF\n", SS_EPARSE, "after ','");
    expect_err(OM_LENIENT, "a_total 1 # {x=\"1\",} 1\n# EOF\n", SS_EPARSE, "after ','");
    expect(TEXT_LENIENT, "a{x=\"1\",} 1\n", "S a{x=[1]} 1 fam=a unknown L1\n");
    /* Exemplars are dropped; lenient mode takes them on any series (2.42 only on
     * *_total and *_bucket), strict mode only where OpenMetrics allows them. */
    expect(OM_LENIENT, "# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n",
           "M TYPE a [] gauge L1\nS a{} 1 fam=a gauge L2\n");
    expect_err(OM_STRICT, "# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n", SS_EPARSE, "exemplars");
    /* CR is not a line ending. */
    expect_err(TEXT_LENIENT, "a 1\r\n", SS_EPARSE, "value");
}

/* ---- lazy labels ------------------------------------------------------------------- */

/* A sink with a scrape cache of series texts: it learns the texts of samples passed
 * with labels and takes samples without labels only for texts it knows. Every sample
 * is recorded by its series text, so full and lazy passes must record the same. */
struct lazy_sink {
    struct out o;
    char known[32][64];
    int nknown, skipped, asked;
    bool learn;
};

static int lazy_sample(void *ud, const struct scrape_parsed_sample *s)
{
    struct lazy_sink *k = ud;
    bool known = false;
    for (int i = 0; i < k->nknown && !known; i++)
        known = strlen(k->known[i]) == s->series.len && !memcmp(k->known[i], s->series.p, s->series.len);
    if (s->labels_skipped) {
        assert_int_equal(s->nlabels, 0);
        if (!known) {
            k->asked++;
            return SCRAPE_WANT_LABELS;
        }
        k->skipped++;
    } else if (k->learn && !known) {
        assert_true(s->series.len < 64 && k->nknown < 32);
        memcpy(k->known[k->nknown], s->series.p, s->series.len);
        k->known[k->nknown++][s->series.len] = '\0';
    }
    char v[40];
    fmt_double(v, sizeof v, s->value);
    out_put(&k->o, "S [", 3);
    out_str(&k->o, s->series);
    out_printf(&k->o, "] %s", v);
    if (s->has_timestamp)
        out_printf(&k->o, " @%lld", (long long)s->timestamp_ms);
    out_put(&k->o, " fam=", 5);
    out_str(&k->o, s->family);
    out_printf(&k->o, " %s L%u\n", scrape_metric_type_name(s->type), s->line);
    return 0;
}

static int lazy_run_fmt(enum scrape_format fmt, const char *body, bool lazy, struct lazy_sink *k)
{
    struct scrape_parser_opts opts = {.format = fmt, .lazy_labels = lazy};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    struct scrape_parser_cb cb = {.sample = lazy_sample, .ud = k};
    int rc = scrape_parser_feed(p, body, strlen(body), &cb);
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    if (rc)
        out_printf(&k->o, "ERR %d %s\n", rc, scrape_parser_error(p));
    scrape_parser_free(p);
    return rc;
}

static int lazy_run(const char *body, bool lazy, struct lazy_sink *k)
{
    return lazy_run_fmt(SCRAPE_FORMAT_TEXT, body, lazy, k);
}

/* lazy_labels: a known series text is passed without its labels, an unknown one is
 * passed again with them, and either way the sink sees what a full parse gives:
 * braces and escaped quotes inside values, raw newlines in values, blanks, timestamps,
 * lines without labels. Lines a full parse refuses still fail. */
static void test_lazy_labels(void **state)
{
    (void)state;
    const char *body = "# TYPE h histogram\n"
                       "h_bucket{le=\"0.5\",x=\"a}b\"} 1\n"
                       "h_bucket{le=\"+Inf\",x=\"q\\\"}\"} 2 1000\n"
                       "m{a=\"1\n2\"} 3\n"
                       "n 4\n"
                       "o { x = \"1\" y=\"2\" , }  5 \n"
                       "p{x=\"1\\\\\"} 6\n"
                       "q{} 7\n";
    struct lazy_sink full = {.learn = true};
    assert_int_equal(lazy_run(body, false, &full), 0);
    assert_int_equal(full.nknown, 7);
    /* nothing known yet: every sample is asked for and passed again */
    struct lazy_sink cold = {.learn = true};
    assert_int_equal(lazy_run(body, true, &cold), 0);
    assert_string_equal(cold.o.s, full.o.s);
    assert_int_equal(cold.skipped, 0);
    assert_true(cold.asked >= 5);
    /* everything known: no labels parsed for the lines with a label set */
    struct lazy_sink warm = {.learn = false, .nknown = full.nknown};
    memcpy(warm.known, full.known, sizeof full.known);
    assert_int_equal(lazy_run(body, true, &warm), 0);
    assert_string_equal(warm.o.s, full.o.s);
    assert_int_equal(warm.skipped, 6); /* all but "n 4" */
    assert_int_equal(warm.asked, 0);
    out_free(&full.o);
    out_free(&cold.o);
    out_free(&warm.o);

    /* errors stay errors */
    const char *bad[] = {"a{x=\"1\",x=\"2\"} 1\n", "a{x=\"1\"} x\n", "a{x=\"1\"} 1 2 3\n", "a{x=\"1\"\n",
                         "a{__name__=\"b\"} 1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lazy_sink a = {.learn = true}, b = {.learn = true};
        assert_int_equal(lazy_run(bad[i], false, &a), SS_EPARSE);
        assert_int_equal(lazy_run(bad[i], true, &b), SS_EPARSE);
        assert_string_equal(a.o.s, b.o.s);
        out_free(&a.o);
        out_free(&b.o);
    }
}

/* lazy_labels in OpenMetrics: the same as in text, with the format's own rules: one
 * blank between the parts, timestamps in seconds, and a line with an exemplar always
 * parsed in full (the exemplar is checked). A line a full parse refuses fails the
 * same way even when its series text is known. */
static void test_lazy_labels_openmetrics(void **state)
{
    (void)state;
    const enum scrape_format om = SCRAPE_FORMAT_OPENMETRICS;
    const char *body = "# TYPE h histogram\n"
                       "h_bucket{le=\"0.5\",x=\"a}b\"} 1\n"
                       "h_bucket{le=\"+Inf\",x=\"q\\\"}\"} 2 1.5\n"
                       "h_count 2\n"
                       "# TYPE c counter\n"
                       "c_total{a=\"1\"} 3 # {trace_id=\"x\"} 1 1.25\n"
                       "c_total{a=\"2\"} 4 2.5 # {trace_id=\"y\"} 1\n"
                       "p{x=\"1\\\\\"} 6 1e3\n"
                       "# EOF\n";
    struct lazy_sink full = {.learn = true};
    assert_int_equal(lazy_run_fmt(om, body, false, &full), 0);
    assert_int_equal(full.nknown, 6);
    assert_non_null(strstr(full.o.s, "] 2 @1500 ")); /* seconds to ms */
    assert_non_null(strstr(full.o.s, "] 6 @1000000 "));
    struct lazy_sink cold = {.learn = true};
    assert_int_equal(lazy_run_fmt(om, body, true, &cold), 0);
    assert_string_equal(cold.o.s, full.o.s);
    assert_int_equal(cold.skipped, 0);
    struct lazy_sink warm = {.learn = false, .nknown = full.nknown};
    memcpy(warm.known, full.known, sizeof full.known);
    assert_int_equal(lazy_run_fmt(om, body, true, &warm), 0);
    assert_string_equal(warm.o.s, full.o.s);
    assert_int_equal(warm.skipped, 5); /* all but h_count (no labels) */
    assert_int_equal(warm.asked, 0);
    out_free(&full.o);
    out_free(&cold.o);
    out_free(&warm.o);

    /* errors stay errors, with the series text known: the good line teaches it */
    const char *bad[] = {"a{x=\"1\"}  1\n# EOF\n",
                         "a{x=\"1\"} 1 \n# EOF\n",
                         "a{x=\"1\"} 1 2 3\n# EOF\n",
                         "a{x=\"1\"} 1 NaN\n# EOF\n",
                         "a{x=\"1\"} 1 # {t=\"1\"} x\n# EOF\n",
                         "a{x=\"1\"} x\n# EOF\n",
                         "a{x=\"1\"} 1\n",
                         "a{x=\"1\"} 1 # {t=\"1\"} 1 2 3\n# EOF\n",
                         "a{x=\"1\"} 1 1.5 # {t=\"1\" 1\n# EOF\n",
                         "a{x=\"1\"} 1 1.5 # {t=\"1\"}\n# EOF\n",
                         "a{x=\"1\",x=\"2\"} 1 # {t=\"1\"} x\n# EOF\n",
                         "a{x=\"1\"} 1 # {t=\"1\"} 1\na{x=\"1\"} 2 1 # {t=\"1\"} 1 nan\n# EOF\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lazy_sink a = {.learn = true}, b = {.learn = false};
        assert_int_equal(lazy_run_fmt(om, "a{x=\"1\"} 1\n# EOF\n", false, &a), 0);
        b.nknown = a.nknown;
        memcpy(b.known, a.known, sizeof a.known);
        out_free(&a.o);
        a = (struct lazy_sink){.learn = true};
        int ra = lazy_run_fmt(om, bad[i], false, &a), rb = lazy_run_fmt(om, bad[i], true, &b);
        if (ra != SS_EPARSE || rb != SS_EPARSE || strcmp(a.o.s, b.o.s) != 0)
            fail_msg("%s: full %d lazy %d\nfull: %s\nlazy: %s", bad[i], ra, rb, a.o.s, b.o.s);
        out_free(&a.o);
        out_free(&b.o);
    }
}

/* The lazy scan reads 16 bytes at a time (SSE2) where it can: random lines, with
 * quotes, escapes, braces and blanks in label values at every offset across block
 * boundaries, and names of every length (some with a byte no name may hold), must
 * give what the full parse gives, sample for sample and error for error. */
static int accept_all(void *ud, const struct scrape_parsed_sample *s)
{
    struct lazy_sink *k = ud;
    k->skipped += s->labels_skipped;
    k->asked++; /* here: samples passed */
    out_put(&k->o, "S [", 3);
    out_str(&k->o, s->series);
    out_put(&k->o, "] ", 2);
    out_str(&k->o, s->name);
    out_printf(&k->o, " %g\n", s->value);
    return 0;
}

static void test_lazy_scan_random(void **state)
{
    (void)state;
    static const char val_chars[] = "ab}{\",= \\\"}}";
    static const char name_chars[] = "abcXYZ_:09-.\x80";
    uint64_t x = 0x9E3779B97F4A7C15ULL;
#define RND(n) ((x = x * 6364136223846793005ULL + 1442695040888963407ULL), (size_t)((x >> 33) % (n)))
    int lazy_lines = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char line[512];
        size_t n = 0;
        line[n++] = 'm';
        for (size_t k = RND(40); k > 0; k--) /* 1 in 12 draws is not a name byte */
            line[n++] = RND(12) ? name_chars[RND(sizeof name_chars - 4)] : name_chars[9 + RND(3)];
        line[n++] = '{';
        for (size_t l = RND(5); l > 0; l--) {
            n += (size_t)snprintf(line + n, sizeof line - n, "l%zu=\"", l);
            for (size_t k = RND(30); k > 0; k--) {
                char ch = val_chars[RND(sizeof val_chars - 1)];
                if (ch == '"' || ch == '\\')
                    line[n++] = '\\';
                line[n++] = ch;
            }
            line[n++] = '"';
            line[n++] = ',';
        }
        n += (size_t)snprintf(line + n, sizeof line - n, "} %zu\n", RND(100));
        line[n] = '\0';
        struct scrape_parser_cb cb = {.sample = accept_all};
        struct lazy_sink full = {0}, lazy = {0};
        for (int pass = 0; pass < 2; pass++) {
            struct lazy_sink *k = pass ? &lazy : &full;
            struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_TEXT, .lazy_labels = pass == 1};
            struct scrape_parser *p;
            assert_int_equal(scrape_parser_new(&opts, &p), 0);
            cb.ud = k;
            int rc = scrape_parser_feed(p, line, n, &cb);
            if (!rc)
                rc = scrape_parser_finish(p, &cb);
            out_printf(&k->o, "rc %d\n", rc);
            scrape_parser_free(p);
        }
        if (strcmp(full.o.s, lazy.o.s) != 0)
            fail_msg("line %s\nfull: %s\nlazy: %s", line, full.o.s, lazy.o.s);
        /* A wrong end of the label set only sends the line the long way (what follows
         * is then no value), so the output alone would not tell: every sample must
         * have been passed without its labels. */
        if (lazy.skipped != full.asked)
            fail_msg("line %s: the lazy scan missed its end", line);
        lazy_lines += lazy.skipped;
        out_free(&full.o);
        out_free(&lazy.o);
    }
#undef RND
    assert_true(lazy_lines > 1000); /* the lazy path was taken, not only the full one */
}

/* ---- cost per sample ------------------------------------------------------------------ */

static int count_only(void *ud, const struct scrape_parsed_sample *s)
{
    (void)s;
    (*(size_t *)ud)++;
    return 0;
}

static void test_throughput(void **state)
{
    (void)state;
    /* 200k samples shaped like node-exporter output. */
    const size_t n = 200000;
    size_t cap = n * 120, len = 0;
    char *body = malloc(cap);
    len += (size_t)snprintf(body + len, cap - len,
                            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
                            "# TYPE node_cpu_seconds_total counter\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "node_cpu_seconds_total{cpu=\"%zu\",mode=\"idle\"} %zu.%02zu\n", i, i * 7,
                                i % 100);
    struct scrape_parser_opts opts = {.format = SCRAPE_FORMAT_TEXT};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&opts, &p), 0);
    size_t count = 0;
    struct scrape_parser_cb cb = {.sample = count_only, .ud = &count};
    double best = 1e9;
    for (int round = 0; round < 3; round++) {
        scrape_parser_reset(p, SCRAPE_FORMAT_TEXT);
        count = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t off = 0; off < len; off += 16384) /* network-sized chunks */
            assert_int_equal(scrape_parser_feed(p, body + off, len - off < 16384 ? len - off : 16384, &cb),
                             0);
        assert_int_equal(scrape_parser_finish(p, &cb), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
        if (ns < best)
            best = ns;
        assert_int_equal(count, n);
    }
    print_message("parser throughput: %.0f ns per sample (best of 3, %zu samples, %.1f MB)\n", best, n,
                  (double)len / 1e6);
    /* Generous bound so sanitizer and debug builds pass; the target is < 500 ns. */
    assert_true(best < 20000);
    scrape_parser_free(p);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_decimals_match_strtod),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_reset_and_reuse),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_prometheus_lexer_corners),
        cmocka_unit_test(test_lazy_labels),
        cmocka_unit_test(test_lazy_labels_openmetrics),
        cmocka_unit_test(test_lazy_scan_random),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
