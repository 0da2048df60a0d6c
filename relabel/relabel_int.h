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
#include "sstext.h"

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

/* A Go \\w character: [0-9A-Za-z_]. */
static inline bool is_word(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

#endif
