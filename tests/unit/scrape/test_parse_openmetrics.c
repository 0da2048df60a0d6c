/* test_parse_openmetrics.c: the OpenMetrics conformance suite against the parser.
 *
 * The suite (SS_CORPORA_DIR/openmetrics/parsers/<case>/{metrics,test.json}) only says
 * whether each input must be accepted. Every case runs in strict OpenMetrics mode
 * three ways: the whole body in one chunk, in 7-byte chunks, and byte by byte; all
 * three must agree with "shouldParse". Valid cases must also pass the lenient
 * (Prometheus 2.42) mode, since Prometheus ingests valid OpenMetrics. Inputs hold
 * NUL bytes and lack final newlines, so they are read as binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

#ifndef SS_CORPORA_DIR
#define SS_CORPORA_DIR "/work/shared/corpora"
#endif
#define OM_DIR SS_CORPORA_DIR "/openmetrics/parsers"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return b;
}

static int count_sample(void *ud, const struct scrape_parsed_sample *s)
{
    (void)s;
    (*(size_t *)ud)++;
    return 0;
}

/* Parse body in chunks of `chunk` bytes (0 = one chunk). Returns 0 or the error. */
static int parse_body(const char *body, size_t len, size_t chunk, bool strict, char *err, size_t errlen)
{
    struct scrape_parser_opts o = {.format = SCRAPE_FORMAT_OPENMETRICS, .strict = strict};
    struct scrape_parser *p;
    assert_int_equal(scrape_parser_new(&o, &p), 0);
    size_t nsamples = 0;
    struct scrape_parser_cb cb = {.sample = count_sample, .ud = &nsamples};
    int rc = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && !rc; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = scrape_parser_feed(p, body + off, n, &cb);
    }
    if (!rc)
        rc = scrape_parser_finish(p, &cb);
    if (err)
        snprintf(err, errlen, "%s", scrape_parser_error(p));
    scrape_parser_free(p);
    return rc;
}

static void test_conformance_suite(void **state)
{
    (void)state;
    size_t idxlen = 0;
    char *index = read_file(SS_CORPORA_DIR "/openmetrics/INDEX.tsv", &idxlen);
    assert_non_null(index);
    index = realloc(index, idxlen + 1);
    index[idxlen] = '\0';

    int total = 0, valid = 0, invalid = 0, agree = 0, lenient_ok = 0;
    int false_accept = 0, false_reject = 0;
    char *save = NULL;
    for (char *line = strtok_r(index, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[256];
        if (sscanf(line, "%255[^\t]", name) != 1 || strcmp(name, "test") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, OM_DIR "/%s/test.json", name);
        json_error_t jerr;
        json_t *tj = json_load_file(path, 0, &jerr);
        assert_non_null(tj);
        json_t *sp = json_object_get(tj, "shouldParse");
        assert_true(json_is_boolean(sp));
        bool should = json_is_true(sp);
        json_decref(tj);

        snprintf(path, sizeof path, OM_DIR "/%s/metrics", name);
        size_t len = 0;
        char *body = read_file(path, &len);
        assert_non_null(body);

        char err[300] = "";
        int rc1 = parse_body(body, len, 0, true, err, sizeof err);
        int rc7 = parse_body(body, len, 7, true, NULL, 0);
        int rc_1 = parse_body(body, len, 1, true, NULL, 0);
        bool ok1 = rc1 == 0;
        /* Chunking must never change the outcome. */
        if ((rc7 == 0) != ok1 || (rc_1 == 0) != ok1)
            fail_msg("%s: chunked parse disagrees with one-chunk parse", name);
        if (ok1 && !should) {
            false_accept++;
            print_message("FALSE ACCEPT %s\n", name);
        } else if (!ok1 && should) {
            false_reject++;
            print_message("FALSE REJECT %s: %s\n", name, err);
        } else {
            agree++;
        }
        if (!ok1)
            assert_int_equal(rc1, SS_EPARSE);
        if (should) {
            valid++;
            char lerr[300];
            if (parse_body(body, len, 0, false, lerr, sizeof lerr) == 0)
                lenient_ok++;
            else
                print_message("LENIENT REJECTS VALID %s: %s\n", name, lerr);
        } else {
            invalid++;
        }
        total++;
        free(body);
    }
    free(index);
    print_message("openmetrics conformance: %d cases (%d valid, %d invalid): %d agree, "
                  "%d false accepts, %d false rejects; lenient accepts %d/%d valid\n",
                  total, valid, invalid, agree, false_accept, false_reject, lenient_ok, valid);
    assert_int_equal(total, 211);
    assert_int_equal(agree, total);
    assert_int_equal(lenient_ok, valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
