/* fuzz_lint.c: libFuzzer target for `scrapeship lint` (scrape/lint.c): the strict
 * parser's go-on-after-an-error path and promtool's per-family lint rules.
 *
 * Input: byte 0 picks the format (bit 0 OpenMetrics) and whether warnings are wanted
 * (bit 1); the rest is the exposition. Every problem must point inside the body (a
 * line from 1 to the body's line count + 1, a column from 1), carry a message, and
 * be sorted by line; the error count must be what the list says. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum scrape_format fmt = (data[0] & 1) ? SCRAPE_FORMAT_OPENMETRICS : SCRAPE_FORMAT_TEXT;
    bool warnings = data[0] & 2;
    size_t len = size - 1;
    char *body = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += body[i] == '\n';
    struct scrape_lint *l = NULL;
    if (scrape_lint_run(fmt, body, len, warnings, &l) != 0) {
        free(body);
        return 0;
    }
    size_t n = scrape_lint_count(l), errors = 0;
    uint32_t last_line = 0;
    for (size_t i = 0; i < n; i++) {
        const struct scrape_lint_problem *p = scrape_lint_get(l, i);
        if (!p || !p->message || !p->message[0] || !p->metric || p->line < 1 || p->line > lines + 1 ||
            p->column < 1 || p->line < last_line || (p->warning && !warnings))
            __builtin_trap();
        last_line = p->line;
        errors += !p->warning;
    }
    if (errors != scrape_lint_errors(l))
        __builtin_trap();
    scrape_lint_free(l);
    free(body);
    return 0;
}
