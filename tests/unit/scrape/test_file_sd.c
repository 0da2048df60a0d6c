/* test_file_sd.c: file-based service discovery (scrape/discovery.c).
 *
 * Valid fixtures live in tests/unit/scrape/file_sd/; invalid inputs are written to a
 * mkdtemp directory from the table below, so each case sits next to what it expects.
 * Errors are logged, so the tests capture stderr to check that the log names the file
 * and, where the format allows, line:column.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "scrape.h"

#define FIXTURES SS_SOURCE_DIR "/tests/unit/scrape/file_sd"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ss_file_sd_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Redirect fd 2 into a temp file while a call runs, then hand back what was logged. */
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    capture_file = tmpfile();
    assert_non_null(capture_file);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture_file), 2) >= 0);
}

static void capture_end(char *buf, size_t cap)
{
    assert_true(dup2(saved_stderr, 2) >= 0);
    close(saved_stderr);
    saved_stderr = -1;
    rewind(capture_file);
    size_t n = fread(buf, 1, cap - 1, capture_file);
    buf[n] = '\0';
    /* logfmt escapes quotes in msg; undo that so expectations read naturally. */
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (buf[r] == '\\' && buf[r + 1] == '"')
            r++;
        buf[w++] = buf[r];
    }
    buf[w] = '\0';
    fclose(capture_file);
    capture_file = NULL;
}

static const char *label(const struct scrape_target_group *g, const char *key)
{
    for (size_t i = 0; i < g->nlabels; i++)
        if (strcmp(g->labels[i].key, key) == 0)
            return g->labels[i].value;
    return NULL;
}

static struct scrape_sd_groups *load1(const char *pattern, size_t expect_errors)
{
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 99;
    assert_int_equal(scrape_file_sd_load(&pattern, 1, &g, &nerr), 0);
    assert_non_null(g);
    assert_int_equal(nerr, expect_errors);
    return g;
}

/* ---- valid files ------------------------------------------------------- */

static void test_json_valid(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = load1(FIXTURES "/valid.json", 0);
    assert_int_equal(scrape_sd_groups_count(g), 2);

    const struct scrape_target_group *g0 = scrape_sd_groups_get(g, 0);
    assert_int_equal(g0->ntargets, 2);
    assert_string_equal(g0->targets[0], "10.0.0.1:9100");
    assert_string_equal(g0->targets[1], "10.0.0.2:9100");
    assert_int_equal(g0->nlabels, 3);
    assert_string_equal(label(g0, "env"), "prod");
    assert_string_equal(label(g0, "team"), "infra");
    assert_string_equal(label(g0, "__meta_filepath"), FIXTURES "/valid.json");

    const struct scrape_target_group *g1 = scrape_sd_groups_get(g, 1);
    assert_int_equal(g1->ntargets, 1);
    assert_string_equal(g1->targets[0], "db.example.internal:9187");
    assert_int_equal(g1->nlabels, 4);
    assert_string_equal(label(g1, "service"), "postgres");
    assert_string_equal(label(g1, "note"), "\xc3\xbcn\xc3\xaf"
                                           "c\xc3\xb8"
                                           "d\xc3\xa9 ok");
    assert_null(scrape_sd_groups_get(g, 2));
    scrape_sd_groups_free(g);
}

static void test_yaml_valid(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = load1(FIXTURES "/groups.yml", 0);
    assert_int_equal(scrape_sd_groups_count(g), 3);

    const struct scrape_target_group *g0 = scrape_sd_groups_get(g, 0);
    assert_int_equal(g0->ntargets, 2);
    assert_string_equal(g0->targets[0], "web-1:8080");
    assert_string_equal(g0->targets[1], "web-2:8080");
    assert_int_equal(g0->nlabels, 3);
    assert_string_equal(label(g0, "env"), "staging");
    assert_string_equal(label(g0, "job_tier"), "frontend");

    const struct scrape_target_group *g1 = scrape_sd_groups_get(g, 1);
    assert_int_equal(g1->ntargets, 1);
    assert_string_equal(g1->targets[0], "cache:6379");
    assert_int_equal(g1->nlabels, 1); /* only __meta_filepath */
    assert_string_equal(label(g1, "__meta_filepath"), FIXTURES "/groups.yml");

    const struct scrape_target_group *g2 = scrape_sd_groups_get(g, 2);
    assert_int_equal(g2->ntargets, 0);
    assert_string_equal(label(g2, "only_labels"), "yes");
    scrape_sd_groups_free(g);
}

static void test_yaml_aliases(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = load1(FIXTURES "/aliases.yaml", 0);
    assert_int_equal(scrape_sd_groups_count(g), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct scrape_target_group *tg = scrape_sd_groups_get(g, i);
        assert_string_equal(label(tg, "env"), "prod");
        assert_string_equal(label(tg, "region"), "eu-west-1");
    }
    scrape_sd_groups_free(g);
}

static void test_empty_files(void **state)
{
    (void)state;
    static const char *const files[] = {FIXTURES "/empty_list.json", FIXTURES "/empty.yml",
                                        FIXTURES "/comment_only.yaml", FIXTURES "/null.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct scrape_sd_groups *g = load1(files[i], 0);
        assert_int_equal(scrape_sd_groups_count(g), 0);
        scrape_sd_groups_free(g);
    }
    /* An empty JSON file too (not only "[]"): a file being created is not an error. */
    char p[128];
    tmp_path(p, sizeof p, "blank.json");
    write_file(p, " \n", 2);
    struct scrape_sd_groups *g = load1(p, 0);
    assert_int_equal(scrape_sd_groups_count(g), 0);
    scrape_sd_groups_free(g);
}

static void test_meta_filepath_overrides_file_label(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = load1(FIXTURES "/meta_override.json", 0);
    const struct scrape_target_group *tg = scrape_sd_groups_get(g, 0);
    assert_int_equal(tg->nlabels, 2);
    assert_string_equal(label(tg, "__meta_filepath"), FIXTURES "/meta_override.json");
    assert_string_equal(label(tg, "a"), "b");
    scrape_sd_groups_free(g);
}

/* ---- globbing ---------------------------------------------------------- */

static void test_glob_two_files(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = load1(FIXTURES "/glob/*.json", 0);
    /* a.json has one group, b.json two; c.yml is not matched. Path order. */
    assert_int_equal(scrape_sd_groups_count(g), 3);
    assert_string_equal(scrape_sd_groups_get(g, 0)->targets[0], "a:1");
    assert_string_equal(label(scrape_sd_groups_get(g, 0), "__meta_filepath"), FIXTURES "/glob/a.json");
    assert_string_equal(scrape_sd_groups_get(g, 1)->targets[0], "b:1");
    assert_string_equal(scrape_sd_groups_get(g, 2)->targets[0], "b:2");
    assert_string_equal(label(scrape_sd_groups_get(g, 2), "__meta_filepath"), FIXTURES "/glob/b.json");
    scrape_sd_groups_free(g);
}

static void test_multiple_patterns_dedup(void **state)
{
    (void)state;
    const char *pats[] = {FIXTURES "/glob/*.yml", FIXTURES "/glob/a.json", FIXTURES "/glob/?.json",
                          FIXTURES "/nothing-matches-*.json"};
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 99;
    assert_int_equal(scrape_file_sd_load(pats, 4, &g, &nerr), 0);
    assert_int_equal(nerr, 0);
    /* a.json is named twice but loaded once: a(1) + b(2) + c(1). */
    assert_int_equal(scrape_sd_groups_count(g), 4);
    scrape_sd_groups_free(g);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    const char *pats[] = {FIXTURES "/*/a.json", /* wildcard outside the last element */
                          FIXTURES "/gl?b/a.json", FIXTURES "/glob/*",        FIXTURES "/glob/a.txt",
                          FIXTURES "/glob/a.Json", FIXTURES "/glob/[ab].json"}; /* the last one is fine */
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 0;
    char log[4096];
    capture_begin();
    int rc = scrape_file_sd_load(pats, 6, &g, &nerr);
    capture_end(log, sizeof log);
    assert_int_equal(rc, 0);
    assert_int_equal(nerr, 5);
    assert_int_equal(scrape_sd_groups_count(g), 3);
    assert_non_null(strstr(log, "not valid for file discovery"));
    scrape_sd_groups_free(g);
}

/* ---- broken files ------------------------------------------------------ */

static void test_broken_file_skipped(void **state)
{
    (void)state;
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 0;
    const char *pat = FIXTURES "/mixed/*.json";
    char log[4096];
    capture_begin();
    int rc = scrape_file_sd_load(&pat, 1, &g, &nerr);
    capture_end(log, sizeof log);
    assert_int_equal(rc, 0);
    assert_int_equal(nerr, 1);
    assert_int_equal(scrape_sd_groups_count(g), 1); /* none of broken.json's groups leak */
    assert_string_equal(scrape_sd_groups_get(g, 0)->targets[0], "good:1");
    /* The missing comma is on line 3; jansson reports the column it stopped at. */
    assert_non_null(strstr(log, "component=discovery"));
    assert_non_null(strstr(log, FIXTURES "/mixed/broken.json:3:"));
    scrape_sd_groups_free(g);
}

struct bad_case {
    const char *name; /* file name: the extension picks the parser */
    const char *body;
    const char *expect; /* substring of the logged error */
};

static const struct bad_case bad_cases[] = {
    /* wrong types */
    {"t1.json", "[{\"targets\": [1]}]", "targets[0] must be a string"},
    {"t2.json", "[{\"targets\": \"a:1\"}]", "targets must be a list"},
    {"t3.json", "[{\"targets\": [\"a:1\"], \"labels\": {\"a\": 1}}]", "label \"a\" must be a string"},
    {"t4.json", "[{\"labels\": [\"a\"]}]", "labels must be an object"},
    {"t5.json", "{\"targets\": [\"a:1\"]}", "expected a list of target groups"},
    {"t6.json", "[\"a:1\"]", "group 0: expected an object"},
    {"t7.json", "[{\"targets\": [\"a:1\"]}, null]", "group 1: null target group"},
    {"t8.json", "[{\"targets\": [null]}]", "targets[0] must be a string"},
    {"t1.yml", "- targets: [[a]]\n", ":1:13: group 0: targets[0] must be a string"},
    {"t2.yml", "- targets: a:1\n", "targets must be a list"},
    {"t3.yml", "- labels: {a: [x]}\n", "label \"a\" must be a string"},
    {"t4.yml", "- labels: [a]\n", "labels must be a mapping"},
    {"t5.yml", "targets: [a:1]\n", "expected a list of target groups"},
    {"t6.yml", "- targets: [a:1]\n- ~\n", ":2:3: group 1: null target group"},
    {"t7.yml", "- targets: [~]\n", "must be a string"},
    /* label names */
    {"n1.json", "[{\"labels\": {\"foo-bar\": \"x\"}}]", "invalid label name \"foo-bar\""},
    {"n2.json", "[{\"labels\": {\"1abc\": \"x\"}}]", "invalid label name"},
    {"n3.json", "[{\"labels\": {\"\": \"x\"}}]", "invalid label name"},
    {"n1.yaml",
     "- targets: [a:1]\n  labels:\n    ok: x\n    b\xc3\xa4"
     "d: y\n",
     ":4:5: group 0: invalid label name"},
    {"n2.yaml", "- labels:\n    {[a]: x}\n", "invalid label name"},
    /* label values */
    {"v1.yaml", "- labels: {a: \"x\\0y\"}\n", "invalid value"},
    {"v2.yaml", "- labels: {a: \"\\udc00\"}\n", ":1:"}, /* lone surrogate: libyaml refuses */
    {"v3.json", "[{\"labels\": {\"a\": \"\xff\"}}]", "v3.json:1:19: unable to decode byte 0xff"},
    /* unknown and duplicate keys */
    {"k1.json", "[{\"targets\": [], \"lables\": {}}]", "unknown field \"lables\""},
    {"k2.json", "[{\"targets\": [\"a\"], \"targets\": [\"b\"]}]", "duplicate"},
    {"k3.json", "[{\"targets\": [\"a\"], \"Targets\": [\"b\"]}]", "duplicate field"},
    {"k4.json", "[{\"labels\": {\"a\": \"1\", \"a\": \"2\"}}]", "duplicate"},
    {"k1.yml", "- targets: [a:1]\n  source: x\n", ":2:3: group 0: unknown field \"source\""},
    {"k2.yml", "- targets: [a:1]\n  targets: [b:1]\n", "duplicate field \"targets\""},
    {"k3.yml", "- labels: {a: x, a: y}\n", "duplicate label name \"a\""},
    {"k4.yml", "- Targets: [a:1]\n", "unknown field \"Targets\""}, /* YAML is case-sensitive */
    {"k5.yml", "- <<: {targets: [a:1]}\n", "unknown field \"<<\""},
    /* syntax */
    {"s1.json", "[{\"targets\": [\"a:1\"]}", "s1.json:1:"},
    {"s1.yml", "- targets: [a:1\n- labels: {}\n", "s1.yml:"},
    {"s2.yml", "- targets:\n  - a\n - b\n", "s2.yml:3:"},
    {"s3.yml", "- targets: [a:1]\n  labels: {a: b\n",
     "s3.yml:3:1: did not find expected ',' or '}' while parsing a flow mapping"},
    {"s4.yml", "- targets: [a]\n- targets: [\xff]\n", "s4.yml:2:13: invalid leading UTF-8 octet"},
    /* anchors and aliases */
    {"a1.yml", "- targets: [a]\n  labels: {x: *nope}\n", "a1.yml:2:15: found undefined alias \"nope\""},
    {"a2.yml", "- targets: [a]\n  labels: &l {x: y}\n- labels: &l {z: w}\n",
     "a2.yml:3:11: found duplicate anchor \"l\""},
    {"a3.yml", "- targets: [a]\n  labels: &l {x: *l}\n", "a3.yml:2:18: anchor \"l\" value contains itself"},
};

static void test_bad_contents(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        char p[128];
        tmp_path(p, sizeof p, c->name);
        write_file(p, c->body, strlen(c->body));
        const char *pat = p;
        struct scrape_sd_groups *g = NULL;
        size_t nerr = 0;
        char log[4096];
        capture_begin();
        int rc = scrape_file_sd_load(&pat, 1, &g, &nerr);
        capture_end(log, sizeof log);
        if (rc != 0 || nerr != 1 || scrape_sd_groups_count(g) != 0 || !strstr(log, c->expect) ||
            !strstr(log, c->name)) {
            print_error("case %s: rc=%d nerr=%zu groups=%zu log=%s (expected \"%s\")\n", c->name, rc, nerr,
                        scrape_sd_groups_count(g), log, c->expect);
            failures++;
        }
        scrape_sd_groups_free(g);
        unlink(p);
    }
    assert_int_equal(failures, 0);
}

static void test_yaml_scalars_are_strings(void **state)
{
    (void)state;
    /* yaml.v2 decodes any scalar into a string field, and so do we. */
    char p[128];
    tmp_path(p, sizeof p, "scalars.yaml");
    const char *body = "- targets: [8080, true, 'null']\n  labels: {port: 9090, on: yes, e: ''}\n";
    write_file(p, body, strlen(body));
    struct scrape_sd_groups *g = load1(p, 0);
    const struct scrape_target_group *tg = scrape_sd_groups_get(g, 0);
    assert_int_equal(tg->ntargets, 3);
    assert_string_equal(tg->targets[0], "8080");
    assert_string_equal(tg->targets[1], "true");
    assert_string_equal(tg->targets[2], "null");
    assert_string_equal(label(tg, "port"), "9090");
    assert_string_equal(label(tg, "on"), "yes");
    assert_string_equal(label(tg, "e"), "");
    scrape_sd_groups_free(g);
    unlink(p);
}

static void test_missing_and_unreadable(void **state)
{
    (void)state;
    /* A directory whose name matches the pattern is a file that fails to read. */
    char d[128];
    tmp_path(d, sizeof d, "dir.json");
    assert_int_equal(mkdir(d, 0700), 0);
    char log[4096];
    const char *pat = d;
    struct scrape_sd_groups *g = NULL;
    size_t nerr = 0;
    capture_begin();
    assert_int_equal(scrape_file_sd_load(&pat, 1, &g, &nerr), 0);
    capture_end(log, sizeof log);
    assert_int_equal(nerr, 1);
    assert_non_null(strstr(log, "not a regular file"));
    scrape_sd_groups_free(g);
    rmdir(d);
}

/* ---- limits ------------------------------------------------------------ */

static void write_targets_json(const char *path, size_t ntargets)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("[{\"targets\": [", f);
    for (size_t i = 0; i < ntargets; i++)
        fprintf(f, "%s\"h%zu:1\"", i ? "," : "", i);
    fputs("]}]\n", f);
    assert_int_equal(fclose(f), 0);
}

static void test_limits(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "many.json");
    write_targets_json(p, 100000);
    struct scrape_sd_groups *g = load1(p, 0);
    assert_int_equal(scrape_sd_groups_get(g, 0)->ntargets, 100000);
    scrape_sd_groups_free(g);

    write_targets_json(p, 100001);
    char log[4096];
    capture_begin();
    g = load1(p, 1);
    capture_end(log, sizeof log);
    assert_int_equal(scrape_sd_groups_count(g), 0);
    assert_non_null(strstr(log, "more than 100000 targets"));
    scrape_sd_groups_free(g);

    /* The target count is per file, across groups, and in YAML too. */
    tmp_path(p, sizeof p, "many.yml");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < 2; i++) {
        fputs("- targets:\n", f);
        for (size_t k = 0; k < 50001; k++)
            fprintf(f, "  - h%zu:%zu\n", k, i);
    }
    assert_int_equal(fclose(f), 0);
    capture_begin();
    g = load1(p, 1);
    capture_end(log, sizeof log);
    assert_non_null(strstr(log, "more than 100000 targets"));
    scrape_sd_groups_free(g);

    /* A sparse file one byte over 16 MiB is refused before it is read. */
    tmp_path(p, sizeof p, "huge.json");
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (16 << 20) + 1), 0);
    close(fd);
    capture_begin();
    g = load1(p, 1);
    capture_end(log, sizeof log);
    assert_non_null(strstr(log, "larger than"));
    scrape_sd_groups_free(g);
    unlink(p);
}

/* Load one file that must fail with a log line holding want. */
static void expect_file_error(const char *path, const char *want)
{
    char log[4096];
    capture_begin();
    struct scrape_sd_groups *g = load1(path, 1);
    capture_end(log, sizeof log);
    assert_int_equal(scrape_sd_groups_count(g), 0);
    if (!strstr(log, want))
        fail_msg("log \"%s\" does not contain \"%s\"", log, want);
    scrape_sd_groups_free(g);
}

/* Only the first YAML document is read, as yaml.v2's Unmarshal reads it; nesting
 * and the file size are bounded. */
static void test_yaml_documents_depth_and_size(void **state)
{
    (void)state;
    char p[128];
    tmp_path(p, sizeof p, "docs.yml");
    static const char docs[] = "- targets: [a:1]\n---\n]: [\n";
    write_file(p, docs, sizeof docs - 1);
    struct scrape_sd_groups *g = load1(p, 0);
    assert_int_equal(scrape_sd_groups_count(g), 1);
    assert_string_equal(scrape_sd_groups_get(g, 0)->targets[0], "a:1");
    scrape_sd_groups_free(g);
    write_file(p, "---\n", 4); /* a document with nothing in it: no groups */
    g = load1(p, 0);
    assert_int_equal(scrape_sd_groups_count(g), 0);
    scrape_sd_groups_free(g);

    /* The list, a group and 62 more levels; then 63, one over 64. */
    tmp_path(p, sizeof p, "deep.yml");
    char deep[256];
    for (int extra = 62; extra <= 63; extra++) {
        int n = snprintf(deep, sizeof deep, "- targets: ");
        for (int i = 0; i < extra; i++)
            deep[n++] = '[';
        for (int i = 0; i < extra; i++)
            deep[n++] = ']';
        deep[n++] = '\n';
        write_file(p, deep, (size_t)n);
        expect_file_error(p, extra == 62 ? "deep.yml:1:13: group 0: targets[0] must be a string, got a list"
                                         : "deep.yml:1:74: nested deeper than 64 levels");
    }

    /* 16 MiB is read whole; one byte more is refused before it is read. */
    tmp_path(p, sizeof p, "big.yml");
    size_t max = (size_t)16 << 20;
    char *big = malloc(max);
    assert_non_null(big);
    static const char group[] = "- targets: [a:1]\n";
    memcpy(big, group, sizeof group - 1);
    memset(big + sizeof group - 1, '#', max - sizeof group);
    big[max - 1] = '\n';
    write_file(p, big, max);
    free(big);
    g = load1(p, 0);
    assert_int_equal(scrape_sd_groups_count(g), 1);
    scrape_sd_groups_free(g);
    assert_int_equal(truncate(p, (off_t)max + 1), 0);
    expect_file_error(p, "big.yml: file is larger than 16777216 bytes");
    unlink(p);
}

/* ---- fingerprint ------------------------------------------------------- */

static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_fingerprint(void **state)
{
    (void)state;
    char dir[128], a[160], b[160], pat[160];
    tmp_path(dir, sizeof dir, "fp");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
    snprintf(pat, sizeof pat, "%s/*.json", dir);
    const char *pats[] = {pat};

    uint64_t empty, f1, f2, f3, f4, f5, f6;
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &empty), 0);

    const char *v1 = "[{\"targets\": [\"a:1\"]}]";
    write_file(a, v1, strlen(v1));
    set_mtime(a, 1700000000);
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f1), 0);
    assert_true(f1 != empty);
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f2), 0);
    assert_true(f1 == f2); /* nothing changed: stable */

    set_mtime(a, 1700000100); /* touched */
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f3), 0);
    assert_true(f3 != f1);

    const char *v2 = "[{\"targets\": [\"a:1\", \"a:2\"]}]"; /* rewritten, same mtime */
    write_file(a, v2, strlen(v2));
    set_mtime(a, 1700000100);
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f4), 0);
    assert_true(f4 != f3);

    write_file(b, v1, strlen(v1)); /* a new file matches */
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f5), 0);
    assert_true(f5 != f4);

    assert_int_equal(unlink(b), 0); /* and goes away */
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, &f6), 0);
    assert_true(f6 == f4);

    assert_int_equal(scrape_file_sd_fingerprint(NULL, 0, &f6), 0);
    assert_int_equal(scrape_file_sd_fingerprint(pats, 1, NULL), SS_EINVAL);
    unlink(a);
    rmdir(dir);
}

/* ---- API edges --------------------------------------------------------- */

static void test_api_edges(void **state)
{
    (void)state;
    scrape_sd_groups_free(NULL);
    assert_int_equal(scrape_sd_groups_count(NULL), 0);
    assert_null(scrape_sd_groups_get(NULL, 0));
    size_t nerr = 7;
    assert_int_equal(scrape_file_sd_load(NULL, 1, NULL, &nerr), SS_EINVAL);
    struct scrape_sd_groups *g = NULL;
    assert_int_equal(scrape_file_sd_load(NULL, 0, &g, NULL), 0);
    assert_int_equal(scrape_sd_groups_count(g), 0);
    scrape_sd_groups_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_yaml_valid),
        cmocka_unit_test(test_yaml_aliases),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_meta_filepath_overrides_file_label),
        cmocka_unit_test(test_glob_two_files),
        cmocka_unit_test(test_multiple_patterns_dedup),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_broken_file_skipped),
        cmocka_unit_test(test_bad_contents),
        cmocka_unit_test(test_yaml_scalars_are_strings),
        cmocka_unit_test(test_missing_and_unreadable),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_yaml_documents_depth_and_size),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
