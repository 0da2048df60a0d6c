/* test_relabel.c: table-driven tests for relabel/relabel.c.
 *
 * Three tables: label sets run through rule lists (every action, the edge cases that
 * Prometheus' relabel_test.go exercises, and the RE2-versus-PCRE2 corners of the
 * regex translation), configurations that must be rejected (Config.Validate and bad
 * regexes), and regexes that must compile. Expected hashmod values were computed
 * independently with Python's hashlib (last 8 bytes of MD5, big-endian, mod m).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relabel.h"

#define MAXL 10
#define MAXR 4

struct lbl {
    const char *name;
    const char *value;
};

struct rule_spec {
    const char *action; /* NULL terminates a rule list */
    const char *src[4];
    const char *sep;
    const char *target;
    const char *regex;
    const char *repl;
    uint64_t modulus;
};

struct process_case {
    const char *name;
    struct rule_spec rules[MAXR];
    struct lbl in[MAXL];
    bool keep;
    struct lbl out[MAXL]; /* ignored when dropped */
};

#define R(...)                                                                                               \
    {                                                                                                        \
        __VA_ARGS__                                                                                          \
    }
#define L(n, v)                                                                                              \
    {                                                                                                        \
        n, v                                                                                                 \
    }

static const struct process_case process_cases[] = {
    /* ---- replace ---------------------------------------------------------- */
    {"replace: groups in replacement",
     {{"replace", {"a"}, .regex = "f(.*)", .target = "d", .repl = "ch${1}-ch${1}"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "choo-choo")}},
    {"replace: several sources joined by the separator",
     {{"replace", {"a", "b"}, .regex = "f(.*);(.*)r", .target = "a", .repl = "b${1}${2}m"}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("a", "boobam"), L("b", "bar")}},
    {"replace: custom separator",
     {{"replace", {"a", "b"}, .sep = "--", .regex = "(.*)--(.*)", .target = "c", .repl = "$2+$1"}},
     {L("a", "x"), L("b", "y")},
     true,
     {L("a", "x"), L("b", "y"), L("c", "y+x")}},
    {"replace: no match changes nothing",
     {{"replace", {"a"}, .regex = "f(.*)", .target = "d", .repl = "x"}},
     {L("a", "boo")},
     true,
     {L("a", "boo")}},
    {"replace: regex is anchored (\"o\" does not match \"foo\")",
     {{"replace", {"a"}, .regex = "o", .target = "d", .repl = "hit"}},
     {L("a", "foo")},
     true,
     {L("a", "foo")}},
    {"replace: defaults copy the source value",
     {{"replace", {"a"}, .target = "b"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("b", "foo")}},
    {"replace: missing source label counts as empty",
     {{"replace", {"missing"}, .regex = "(.*)", .target = "d", .repl = "x${1}y"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "xy")}},
    {"replace: missing source with defaults deletes the target",
     {{"replace", {"missing"}, .target = "a"}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("b", "bar")}},
    {"replace: empty expansion deletes the target",
     {{"replace", {"a"}, .regex = "f(.*)", .target = "b", .repl = "$2"}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("a", "foo")}},
    {"replace: overwrites an existing target",
     {{"replace", {"a"}, .regex = "(.*)", .target = "b", .repl = "new-$1"}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("a", "foo"), L("b", "new-foo")}},
    {"replace: named groups",
     {{"replace", {"a"}, .regex = "(?P<first>f)(?P<rest>.*)", .target = "d", .repl = "${rest}_$first"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "oo_f")}},
    {"replace: $1x is the group named 1x, which is empty",
     {{"replace", {"a"}, .regex = "(f)oo", .target = "d", .repl = "$1x"}},
     {L("a", "foo"), L("d", "old")},
     true,
     {L("a", "foo")}},
    {"replace: ${1}x is group 1 then x",
     {{"replace", {"a"}, .regex = "(f)oo", .target = "d", .repl = "${1}x"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "fx")}},
    {"replace: $$ is a dollar, malformed $ stays literal",
     {{"replace", {"a"}, .regex = "(f)oo", .target = "d", .repl = "$$1-${1-$-${1}"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "$1-${1-$-f")}},
    {"replace: unknown group numbers and names expand to nothing",
     {{"replace", {"a"}, .regex = "(f)oo", .target = "d", .repl = "<$9|${nope}|$01|$0>"}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("d", "<|||foo>")}},
    {"replace: templated target label",
     {{"replace", {"a"}, .regex = "some-([^-]+)-([^,]+)", .target = "${1}", .repl = "${2}"}},
     {L("a", "some-name-value")},
     true,
     {L("a", "some-name-value"), L("name", "value")}},
    {"replace: templated target mixing text and groups",
     {{"replace", {"a"}, .regex = "(\\w+)=(\\w+)", .target = "key_${1}_$2", .repl = "1"}},
     {L("a", "x=y")},
     true,
     {L("a", "x=y"), L("key_x_y", "1")}},
    {"replace: invalid target after expansion does nothing",
     {{"replace", {"a"}, .regex = "(.*)", .target = "${1}", .repl = "v"}},
     {L("a", "foo-bar")},
     true,
     {L("a", "foo-bar")}},
    {"replace: target from an unmatched group is empty, so invalid",
     {{"replace", {"a"}, .regex = "(x)|b", .target = "$1", .repl = "v"}},
     {L("a", "b")},
     true,
     {L("a", "b")}},
    {"replace: 2.42 quirk, empty value deletes the target as written, not as expanded",
     {{"replace", {"a"}, .regex = "(a)(.*)", .target = "${1}", .repl = "$2"}},
     {L("a", "a")},
     true,
     {L("a", "a")}},
    {"replace: capture spans invalid UTF-8 bytes like Go",
     {{"replace", {"a"}, .regex = "x(.)(.*)", .target = "b", .repl = "[$1|$2]"}},
     {L("a", "x\xff\xfez")},
     true,
     {L("a", "x\xff\xfez"), L("b", "[\xff|\xfez]")}},
    /* ---- keep / drop ------------------------------------------------------ */
    {"drop: match drops", {{"drop", {"a"}, .regex = ".*o.*"}}, {L("a", "foo")}, false, {{0}}},
    {"drop: no match keeps", {{"drop", {"a"}, .regex = "f(.*)"}}, {L("a", "boo")}, true, {L("a", "boo")}},
    {"drop: anchored, \"a\" does not match \"ba\"",
     {{"drop", {"a"}, .regex = "a"}},
     {L("a", "ba")},
     true,
     {L("a", "ba")}},
    {"keep: match keeps", {{"keep", {"a"}, .regex = "f.*"}}, {L("a", "foo")}, true, {L("a", "foo")}},
    {"keep: no match drops", {{"keep", {"a"}, .regex = "f.*"}}, {L("a", "boo")}, false, {{0}}},
    {"keep: anchored, \"a\" does not match \"ba\"",
     {{"keep", {"a"}, .regex = "a"}},
     {L("a", "ba")},
     false,
     {{0}}},
    {"keep: missing source is the empty string",
     {{"keep", {"nope"}, .regex = ""}},
     {L("a", "x")},
     true,
     {L("a", "x")}},
    {"keep: (?i) flag", {{"keep", {"a"}, .regex = "(?i)foo"}}, {L("a", "FoO")}, true, {L("a", "FoO")}},
    {"keep: $ does not match before a final newline (RE2)",
     {{"keep", {"a"}, .regex = "foo"}},
     {L("a", "foo\n")},
     false,
     {{0}}},
    {"keep: \\s excludes vertical tab (RE2)",
     {{"keep", {"a"}, .regex = "\\s"}},
     {L("a", "\v")},
     false,
     {{0}}},
    {"keep: \\s matches form feed", {{"keep", {"a"}, .regex = "\\s"}}, {L("a", "\f")}, true, {L("a", "\f")}},
    {"keep: [^\\S] is whitespace without \\v",
     {{"keep", {"a"}, .regex = "[^\\S]+"}},
     {L("a", " \t")},
     true,
     {L("a", " \t")}},
    {"keep: \\v is the vertical tab character (RE2)",
     {{"keep", {"a"}, .regex = "\\v"}},
     {L("a", "\v")},
     true,
     {L("a", "\v")}},
    {"keep: octal escape \\101 is A",
     {{"keep", {"a"}, .regex = "\\101"}},
     {L("a", "A")},
     true,
     {L("a", "A")}},
    {"keep: {,2} is literal text in RE2",
     {{"keep", {"a"}, .regex = "a{,2}"}},
     {L("a", "a{,2}")},
     true,
     {L("a", "a{,2}")}},
    {"keep: {01} is literal text in RE2",
     {{"keep", {"a"}, .regex = "a{01}"}},
     {L("a", "a{01}")},
     true,
     {L("a", "a{01}")}},
    {"keep: [[.a.]] is a plain class in RE2",
     {{"keep", {"a"}, .regex = "[[.a.]]"}},
     {L("a", ".]")},
     true,
     {L("a", ".]")}},
    {"keep: \\Q...\\E quotes", {{"keep", {"a"}, .regex = "\\Qa.b\\E"}}, {L("a", "axb")}, false, {{0}}},
    {"keep: POSIX class",
     {{"keep", {"a"}, .regex = "[[:alpha:]]+[[:digit:]]"}},
     {L("a", "abc1")},
     true,
     {L("a", "abc1")}},
    {"keep: Unicode class",
     {{"keep", {"a"}, .regex = "\\p{Greek}+\\pN"}},
     {L("a", "\xce\xb1\xce\xb2"
             "7")},
     true,
     {L("a", "\xce\xb1\xce\xb2"
             "7")}},
    {"keep: . matches an invalid byte as U+FFFD",
     {{"keep", {"a"}, .regex = "a.b"}},
     {L("a", "a\xff"
             "b")},
     true,
     {L("a", "a\xff"
             "b")}},
    {"keep: (?m) lets ^ match after a final newline",
     {{"keep", {"a"}, .regex = "(?m)a\n^"}},
     {L("a", "a\n")},
     true,
     {L("a", "a\n")}},
    {"keep: repeated assertion ^* is legal RE2",
     {{"keep", {"a"}, .regex = "^*ab"}},
     {L("a", "ab")},
     true,
     {L("a", "ab")}},
    {"keep: quantifier after a flag group applies to the atom before it",
     {{"keep", {"a"}, .regex = "xa*(?i)*B"}},
     {L("a", "xaab")},
     true,
     {L("a", "xaab")}},
    {"keep: (?i) folds like Go (k matches the Kelvin sign)",
     {{"keep", {"a"}, .regex = "(?i)k+"}},
     {L("a", "kK\xe2\x84\xaa")},
     true,
     {L("a", "kK\xe2\x84\xaa")}},
    {"keep: . does not match newline", {{"keep", {"a"}, .regex = "a.b"}}, {L("a", "a\nb")}, false, {{0}}},
    {"keep: (?s). matches newline",
     {{"keep", {"a"}, .regex = "(?s)a.b"}},
     {L("a", "a\nb")},
     true,
     {L("a", "a\nb")}},
    {"keep: negated class matches newline (Perl ClassNL)",
     {{"keep", {"a"}, .regex = "a[^x]b"}},
     {L("a", "a\nb")},
     true,
     {L("a", "a\nb")}},
    {"keep: \\x{...} escapes beyond the BMP",
     {{"keep", {"a"}, .regex = "\\x{1F600}\\x41"}},
     {L("a", "\xf0\x9f\x98\x80"
             "A")},
     true,
     {L("a", "\xf0\x9f\x98\x80"
             "A")}},
    {"keep: alternation inside the anchors",
     {{"keep", {"a"}, .regex = "foo|bar"}},
     {L("a", "foobar")},
     false,
     {{0}}},
    /* ---- keepequal / dropequal ------------------------------------------- */
    {"keepequal: equal keeps",
     {{"keepequal", {"a"}, .target = "b"}},
     {L("a", "foo"), L("b", "foo")},
     true,
     {L("a", "foo"), L("b", "foo")}},
    {"keepequal: different drops",
     {{"keepequal", {"a"}, .target = "b"}},
     {L("a", "foo"), L("b", "bar")},
     false,
     {{0}}},
    {"keepequal: joined sources",
     {{"keepequal", {"a", "b"}, .target = "c"}},
     {L("a", "x"), L("b", "y"), L("c", "x;y")},
     true,
     {L("a", "x"), L("b", "y"), L("c", "x;y")}},
    {"keepequal: both missing are equal",
     {{"keepequal", {"m1"}, .target = "m2"}},
     {L("a", "x")},
     true,
     {L("a", "x")}},
    {"dropequal: equal drops",
     {{"dropequal", {"a"}, .target = "b"}},
     {L("a", "foo"), L("b", "foo")},
     false,
     {{0}}},
    {"dropequal: different keeps",
     {{"dropequal", {"a"}, .target = "b"}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("a", "foo"), L("b", "bar")}},
    /* ---- hashmod ---------------------------------------------------------- */
    {"hashmod: foo % 1000",
     {{"hashmod", {"a"}, .target = "h", .modulus = 1000}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("h", "696")}},
    {"hashmod: foo % 7",
     {{"hashmod", {"a"}, .target = "h", .modulus = 7}},
     {L("a", "foo")},
     true,
     {L("a", "foo"), L("h", "2")}},
    {"hashmod: joined sources",
     {{"hashmod", {"a", "b"}, .target = "h", .modulus = 1000}},
     {L("a", "foo"), L("b", "bar")},
     true,
     {L("a", "foo"), L("b", "bar"), L("h", "750")}},
    {"hashmod: empty value, huge modulus",
     {{"hashmod", {"nope"}, .target = "h", .modulus = UINT64_MAX}},
     {L("a", "x")},
     true,
     {L("a", "x"), L("h", "16825458760271544958")}},
    {"hashmod: overwrites the target",
     {{"hashmod", {"a"}, .target = "a", .modulus = 1000}},
     {L("a", "bar")},
     true,
     {L("a", "922")}},
    /* ---- labelmap --------------------------------------------------------- */
    {"labelmap: ${1}_x keeps the original",
     {{"labelmap", .regex = "(b.*)", .repl = "${1}_x"}},
     {L("foo", "1"), L("bar", "2")},
     true,
     {L("bar", "2"), L("bar_x", "2"), L("foo", "1")}},
    {"labelmap: strip a prefix",
     {{"labelmap", .regex = "__meta_my_(.+)", .repl = "$1"}},
     {L("__meta_my_bar", "aaa"), L("__meta_my_baz", "bbb"), L("__meta_other", "ccc")},
     true,
     {L("__meta_my_bar", "aaa"), L("__meta_my_baz", "bbb"), L("__meta_other", "ccc"), L("bar", "aaa"),
      L("baz", "bbb")}},
    {"labelmap: collisions resolve in sorted name order (last wins)",
     {{"labelmap", .regex = "[ab]_(x)", .repl = "$1"}},
     {L("b_x", "2"), L("a_x", "1")},
     true,
     {L("a_x", "1"), L("b_x", "2"), L("x", "2")}},
    {"labelmap: reads the input values, not values it just wrote",
     {{"labelmap", .regex = "(a|b)", .repl = "b"}},
     {L("a", "1"), L("b", "2")},
     true,
     {L("a", "1"), L("b", "2")}},
    {"labelmap: anchored on the name",
     {{"labelmap", .regex = "a", .repl = "z"}},
     {L("ba", "1"), L("a", "2")},
     true,
     {L("a", "2"), L("ba", "1"), L("z", "2")}},
    /* ---- labeldrop / labelkeep ------------------------------------------- */
    {"labeldrop: drops matching names",
     {{"labeldrop", .regex = "b.*"}},
     {L("a", "1"), L("b1", "2"), L("b2", "3")},
     true,
     {L("a", "1")}},
    {"labeldrop: anchored", {{"labeldrop", .regex = "a"}}, {L("a", "1"), L("ba", "2")}, true, {L("ba", "2")}},
    {"labelkeep: keeps matching names",
     {{"labelkeep", .regex = "(a|c)"}},
     {L("a", "1"), L("b", "2"), L("c", "3")},
     true,
     {L("a", "1"), L("c", "3")}},
    {"labelkeep: nothing matches leaves an empty set",
     {{"labelkeep", .regex = "zzz"}},
     {L("a", "1"), L("b", "2")},
     true,
     {{0}}},
    /* ---- lowercase / uppercase ------------------------------------------- */
    {"lowercase: ASCII and Unicode",
     {{"lowercase", {"a"}, .target = "l"}},
     {L("a", "FOO bar \xc3\x84\xc3\x96")},
     true,
     {L("a", "FOO bar \xc3\x84\xc3\x96"), L("l", "foo bar \xc3\xa4\xc3\xb6")}},
    {"uppercase: ASCII and Unicode, sharp s has no simple upper case",
     {{"uppercase", {"a", "b"}, .target = "u"}},
     {L("a", "foo \xc3\x9f"), L("b", "\xc3\xa9")},
     true,
     {L("a", "foo \xc3\x9f"), L("b", "\xc3\xa9"), L("u", "FOO \xc3\x9f;\xc3\x89")}},
    {"lowercase: invalid UTF-8 becomes U+FFFD like strings.ToLower",
     {{"lowercase", {"a"}, .target = "a"}},
     {L("a", "A\xff"
             "B")},
     true,
     {L("a", "a\xef\xbf\xbd"
             "b")}},
    {"lowercase: empty value deletes the target",
     {{"lowercase", {"nope"}, .target = "a"}},
     {L("a", "X"), L("b", "Y")},
     true,
     {L("b", "Y")}},
    /* ---- sequences -------------------------------------------------------- */
    {"sequence: replace, then keep on the new label, then labeldrop",
     {{"replace", {"__address__"}, .regex = "([^:]+):\\d+", .target = "host", .repl = "$1"},
      {"keep", {"host"}, .regex = "web-.*"},
      {"labeldrop", .regex = "__.*"}},
     {L("__address__", "web-1:9100"), L("job", "node")},
     true,
     {L("host", "web-1"), L("job", "node")}},
    {"sequence: a later rule sees an earlier rule's output",
     {{"replace", {"a"}, .target = "b", .repl = "x"},
      {"replace", {"b"}, .regex = "(x)", .target = "c", .repl = "$1$1"},
      {"drop", {"c"}, .regex = "xx"}},
     {L("a", "1")},
     false,
     {{0}}},
    {"sequence: keep drops in the middle",
     {{"keep", {"a"}, .regex = "no"}, {"replace", .target = "z"}},
     {L("a", "1")},
     false,
     {{0}}},
    {"no rules keep everything", {{0}}, {L("a", "1")}, true, {L("a", "1")}},
};

static int compile_spec(const struct rule_spec *sp, struct relabel_rule **out, char *err, size_t errlen)
{
    struct relabel_config cfg;
    memset(&cfg, 0, sizeof cfg);
    size_t n = 0;
    while (n < 4 && sp->src[n])
        n++;
    cfg.source_labels = (char **)sp->src;
    cfg.nsource_labels = n;
    cfg.separator = (char *)sp->sep;
    cfg.target_label = (char *)sp->target;
    cfg.regex = (char *)sp->regex;
    cfg.replacement = (char *)sp->repl;
    cfg.modulus = sp->modulus;
    cfg.has_modulus = sp->modulus != 0;
    int rc = relabel_action_parse(sp->action, &cfg.action);
    if (rc) {
        snprintf(err, errlen, "unknown action %s", sp->action);
        return rc;
    }
    return relabel_compile(&cfg, out, err, errlen);
}

static int cmp_label(const void *a, const void *b)
{
    return ss_str_cmp(((const struct ss_label *)a)->name, ((const struct ss_label *)b)->name);
}

static void run_process_case(const struct process_case *c)
{
    struct relabel_rule *rules[MAXR] = {0};
    size_t nrules = 0;
    char err[512];
    for (; nrules < MAXR && c->rules[nrules].action; nrules++) {
        int rc = compile_spec(&c->rules[nrules], &rules[nrules], err, sizeof err);
        if (rc)
            fail_msg("%s: rule %zu does not compile: %s", c->name, nrules, err);
    }
    struct ss_labels ls;
    ss_labels_init(&ls);
    for (size_t i = 0; i < MAXL && c->in[i].name; i++)
        assert_int_equal(ss_labels_push(&ls, (struct ss_str){c->in[i].name, strlen(c->in[i].name)},
                                        (struct ss_str){c->in[i].value, strlen(c->in[i].value)}),
                         0);
    bool keep = relabel_process(rules, nrules, &ls);
    if (keep != c->keep)
        fail_msg("%s: keep=%d, want %d", c->name, keep, c->keep);
    if (keep) {
        size_t want = 0;
        while (want < MAXL && c->out[want].name)
            want++;
        qsort(ls.v, ls.n, sizeof ls.v[0], cmp_label);
        bool ok = ls.n == want;
        for (size_t i = 0; ok && i < want; i++)
            ok = ss_str_eq_cstr(ls.v[i].name, c->out[i].name) &&
                 ss_str_eq_cstr(ls.v[i].value, c->out[i].value);
        if (!ok) {
            for (size_t i = 0; i < ls.n; i++)
                print_error("  got  %.*s=%.*s\n", (int)ls.v[i].name.len, ls.v[i].name.p,
                            (int)ls.v[i].value.len, ls.v[i].value.p);
            for (size_t i = 0; i < want; i++)
                print_error("  want %s=%s\n", c->out[i].name, c->out[i].value);
            fail_msg("%s: wrong label set", c->name);
        }
    }
    ss_labels_free(&ls);
    for (size_t i = 0; i < nrules; i++)
        relabel_rule_free(rules[i]);
}

static void test_process_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof process_cases / sizeof process_cases[0]; i++)
        run_process_case(&process_cases[i]);
}

/* ---- configurations that must be rejected ---------------------------------- */

struct error_case {
    struct rule_spec rule;
    const char *want; /* substring of the message */
};

static const struct error_case error_cases[] = {
    {{"hashmod", {"a"}, .target = "h"}, "requires non-zero modulus"},
    {{"replace", {"a"}, .target = NULL},
     "relabel configuration for replace action requires 'target_label' value"},
    {{"hashmod", {"a"}, .modulus = 2}, "hashmod action requires 'target_label'"},
    {{"lowercase", {"a"}, .target = NULL}, "lowercase action requires 'target_label'"},
    {{"uppercase", {"a"}, .target = NULL}, "uppercase action requires 'target_label'"},
    {{"keepequal", {"a"}, .target = NULL}, "keepequal action requires 'target_label'"},
    {{"dropequal", {"a"}, .target = NULL}, "dropequal action requires 'target_label'"},
    {{"replace", {"a"}, .target = "1abc"}, "\"1abc\" is invalid 'target_label' for replace action"},
    {{"replace", {"a"}, .target = "a-b"}, "is invalid 'target_label'"},
    {{"replace", {"a"}, .target = "$"}, "is invalid 'target_label'"},
    {{"replace", {"a"}, .target = "${1"}, "is invalid 'target_label'"},
    {{"replace", {"a"}, .target = "a$$"}, "is invalid 'target_label'"},
    {{"lowercase", {"a"}, .target = "a.b"}, "is invalid 'target_label' for lowercase action"},
    {{"keepequal", {"a"}, .target = "-"}, "is invalid 'target_label' for keepequal action"},
    {{"hashmod", {"a"}, .target = "${1}", .modulus = 3}, "is invalid 'target_label' for hashmod"},
    {{"lowercase", {"a"}, .target = "b", .repl = "x"}, "'replacement' can not be set for lowercase"},
    {{"uppercase", {"a"}, .target = "b", .repl = ""}, "'replacement' can not be set for uppercase"},
    {{"keepequal", {"a"}, .target = "b", .repl = "x"}, "'replacement' can not be set for keepequal"},
    {{"labelmap", .repl = "a-b"}, "\"a-b\" is invalid 'replacement' for labelmap action"},
    {{"labelmap", .repl = "$"}, "is invalid 'replacement' for labelmap action"},
    {{"keepequal", {"a"}, .target = "b", .regex = "(.*)"},
     "keepequal action requires only 'source_labels' and `target_label`, and no other fields"},
    {{"dropequal", {"a"}, .target = "b", .sep = ","}, "dropequal action requires only"},
    {{"dropequal", {"a"}, .target = "b", .modulus = 3}, "dropequal action requires only"},
    {{"labeldrop", {"a"}, .regex = "x"}, "labeldrop action requires only 'regex', and no other fields"},
    {{"labeldrop", .regex = "x", .target = "t"}, "labeldrop action requires only 'regex'"},
    {{"labelkeep", .regex = "x", .sep = ","}, "labelkeep action requires only 'regex'"},
    {{"labelkeep", .regex = "x", .repl = "y"}, "labelkeep action requires only 'regex'"},
    {{"labelkeep", .regex = "x", .modulus = 1}, "labelkeep action requires only 'regex'"},
    {{"keep", {"a", "1bad"}, .target = NULL}, "\"1bad\" is not a valid label name"},
    /* bad regexes */
    {{"keep", {"a"}, .regex = "a(b"}, "invalid regex \"a(b\": missing closing parenthesis at offset 3"},
    {{"keep", {"a"}, .regex = "a)b"}, "invalid regex \"a)b\": unmatched closing parenthesis at offset 1"},
    {{"keep", {"a"}, .regex = "(?=x)"}, "invalid or unsupported Perl syntax: `(?=`"},
    {{"keep", {"a"}, .regex = "(?!x)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?<=x)y"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?<n>x)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?>x)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?#comment)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?x)a"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(a)(?P=n)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(?R)"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "(a)\\1"}, "invalid escape sequence: `\\1`"},
    {{"keep", {"a"}, .regex = "\\8"}, "invalid escape sequence"},
    {{"keep", {"a"}, .regex = "\\k<n>"}, "invalid escape sequence"},
    {{"keep", {"a"}, .regex = "\\h"}, "invalid escape sequence"},
    {{"keep", {"a"}, .regex = "\\Z"}, "invalid escape sequence"},
    {{"keep", {"a"}, .regex = "a\\C"}, "invalid escape sequence: `\\C`"},
    {{"keep", {"a"}, .regex = "a**"}, "invalid nested repetition operator: `**`"},
    {{"keep", {"a"}, .regex = "a++"}, "invalid nested repetition operator"},
    {{"keep", {"a"}, .regex = "a{2}{3}"}, "invalid nested repetition operator"},
    {{"keep", {"a"}, .regex = "*a"}, "missing argument to repetition operator: `*`"},
    {{"keep", {"a"}, .regex = "(*ACCEPT)"}, "missing argument to repetition operator"},
    {{"keep", {"a"}, .regex = "a|?"}, "missing argument to repetition operator"},
    {{"keep", {"a"}, .regex = "a{1001}"}, "invalid repeat count"},
    {{"keep", {"a"}, .regex = "a{3,2}"}, "invalid repeat count"},
    {{"keep", {"a"}, .regex = "(a{500}){3}"}, "invalid repeat count"},
    {{"keep", {"a"}, .regex = "[z-a]"}, "invalid character class range: `z-a`"},
    {{"keep", {"a"}, .regex = "[[:foo:]]"}, "invalid character class range"},
    {{"keep", {"a"}, .regex = "\\p{Foo}"}, "invalid character class range"},
    {{"keep", {"a"}, .regex = "\\p{greek}"}, "invalid character class range"},
    {{"keep", {"a"}, .regex = "[abc"}, "missing closing ]"},
    {{"keep", {"a"}, .regex = "a\\"}, "trailing backslash"},
    {{"keep", {"a"}, .regex = "(?P<>a)"}, "invalid named capture"},
    {{"keep", {"a"}, .regex = "(?P<a-b>a)"}, "invalid named capture"},
    {{"keep", {"a"}, .regex = "(?i-)a"}, "invalid or unsupported Perl syntax"},
    {{"keep", {"a"}, .regex = "\xff"}, "invalid UTF-8"},
    {{"keep", {"a"}, .regex = "\\x{110000}"}, "invalid escape sequence"},
};

static void test_error_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct error_case *c = &error_cases[i];
        struct relabel_rule *r = (void *)0x1;
        char err[512] = "";
        int rc = compile_spec(&c->rule, &r, err, sizeof err);
        if (rc != SS_ECONFIG || r != NULL) {
            print_error("case %zu (%s, regex %s): rc=%d, want SS_ECONFIG\n", i, c->rule.action,
                        c->rule.regex ? c->rule.regex : "-", rc);
            failures++;
            if (rc == 0)
                relabel_rule_free(r);
        } else if (!strstr(err, c->want)) {
            print_error("case %zu: message \"%s\" lacks \"%s\"\n", i, err, c->want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- regexes that must compile ---------------------------------------------- */

static const char *const good_regexes[] = {
    "",
    "(.*)",
    "(?i)a",
    "(?P<x>a)",
    "(?P<1>a)",
    "(?P<a>x)(?P<a>y)",
    "a{2,3}?",
    "a{2,}",
    "^*",
    "$+",
    "\\b?",
    "\\pL",
    "\\p{^Greek}",
    "\\PN",
    "[^\\S]",
    "[\\d-z]",
    "[a-]",
    "[]a]",
    "[^]a]",
    "(?i:a|b)c",
    "(?-i)a",
    "(?s).",
    "(?U)a*",
    "(?m)^a$",
    "a{,3}",
    "\\Q(*\\E",
    "\\x41\\x{1F600}",
    "\\0",
    "\\141",
    "[\\x00-\\x{10FFFF}]",
    "\\A\\z",
    "a(?)b",
    "(?i)(?m)(?s)x",
    "((a){10}){100}",
    "\xce\xb1+",
    "[[:^space:]]",
    "\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\",
};

static void test_good_regexes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_regexes / sizeof good_regexes[0]; i++) {
        struct rule_spec sp = {"keep", {"a"}, .regex = good_regexes[i]};
        struct relabel_rule *r = NULL;
        char err[512] = "";
        if (compile_spec(&sp, &r, err, sizeof err))
            fail_msg("regex %zu \"%s\" rejected: %s", i, good_regexes[i], err);
        relabel_rule_free(r);
    }
}

/* $n where group n is named "1" in the pattern still means group number n (Go). */
static void test_numeric_group_name(void **state)
{
    (void)state;
    static const struct process_case c = {
        "replace: (?P<1>) is still group 1, names do not shadow numbers",
        {{"replace", {"a"}, .regex = "(x)(?P<1>y)", .target = "b", .repl = "$1|${1}"}},
        {L("a", "xy")},
        true,
        {L("a", "xy"), L("b", "x|x")}};
    run_process_case(&c);
}

static void test_action_names(void **state)
{
    (void)state;
    static const char *const names[] = {"replace",   "keep",      "drop",     "keepequal",
                                        "dropequal", "hashmod",   "labelmap", "labeldrop",
                                        "labelkeep", "lowercase", "uppercase"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        enum relabel_action a;
        assert_int_equal(relabel_action_parse(names[i], &a), 0);
        assert_string_equal(relabel_action_name(a), names[i]);
    }
    enum relabel_action a = RELABEL_KEEP;
    assert_int_equal(relabel_action_parse("LabelMap", &a), 0);
    assert_int_equal(a, RELABEL_LABELMAP);
    assert_int_equal(relabel_action_parse("KEEPEQUAL", &a), 0);
    assert_int_equal(a, RELABEL_KEEPEQUAL);
    /* strings.ToLower maps the Kelvin sign to 'k', so Prometheus accepts this too. */
    assert_int_equal(relabel_action_parse("\xe2\x84\xaa"
                                          "eep",
                                          &a),
                     0);
    assert_int_equal(a, RELABEL_KEEP);
    assert_int_not_equal(relabel_action_parse("foo", &a), 0);
    assert_int_not_equal(relabel_action_parse("", &a), 0);
    assert_int_not_equal(relabel_action_parse("keep ", &a), 0);
    assert_int_not_equal(relabel_action_parse(NULL, &a), 0);
    assert_string_equal(relabel_action_name((enum relabel_action)99), "unknown");
}

/* has_modulus true with modulus 0 is as invalid as no modulus at all. */
static void test_hashmod_explicit_zero(void **state)
{
    (void)state;
    char *src[] = {"a"};
    struct relabel_config cfg = {.source_labels = src,
                                 .nsource_labels = 1,
                                 .target_label = "h",
                                 .has_modulus = true,
                                 .modulus = 0,
                                 .action = RELABEL_HASHMOD};
    struct relabel_rule *r = NULL;
    char err[256];
    assert_int_equal(relabel_compile(&cfg, &r, err, sizeof err), SS_ECONFIG);
    assert_null(r);
    assert_non_null(strstr(err, "non-zero modulus"));
    /* NULL error buffer is fine, and free(NULL) is a no-op. */
    assert_int_equal(relabel_compile(&cfg, &r, NULL, 0), SS_ECONFIG);
    relabel_rule_free(NULL);
}

/* Rules are reused across many label sets: results must not leak between calls. */
static void test_rule_reuse(void **state)
{
    (void)state;
    struct rule_spec sp = {"replace", {"a"}, .regex = "(\\w+)-(\\w+)", .target = "${2}", .repl = "$1"};
    struct relabel_rule *r = NULL;
    char err[256];
    assert_int_equal(compile_spec(&sp, &r, err, sizeof err), 0);
    struct ss_labels ls;
    ss_labels_init(&ls);
    for (int i = 0; i < 200; i++) {
        char v[32];
        snprintf(v, sizeof v, "v%d-k%d", i, i % 3);
        ss_labels_reset(&ls);
        assert_int_equal(ss_labels_push(&ls, SS_STR("a"), (struct ss_str){v, strlen(v)}), 0);
        assert_true(relabel_process(&r, 1, &ls));
        char k[8], want[16];
        snprintf(k, sizeof k, "k%d", i % 3);
        snprintf(want, sizeof want, "v%d", i);
        const struct ss_str *got = ss_labels_get(&ls, (struct ss_str){k, strlen(k)});
        assert_non_null(got);
        assert_true(ss_str_eq_cstr(*got, want));
        assert_int_equal(ls.n, 2);
    }
    ss_labels_free(&ls);
    relabel_rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_table), cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_good_regexes),  cmocka_unit_test(test_numeric_group_name),
        cmocka_unit_test(test_action_names),  cmocka_unit_test(test_hashmod_explicit_zero),
        cmocka_unit_test(test_rule_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
