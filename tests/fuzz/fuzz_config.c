/* fuzz_config.c: arbitrary bytes into cfg_load_string.
 *
 * Must never crash, leak (ASan's leak checker runs at exit) or overrun. When the input
 * loads, cfg_print's output must load again and print identically: the printer
 * escapes everything the loader interprets (quotes, control characters, "$"), so a
 * failure here is a real round-trip bug, not noise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static char *print_cfg(const struct cfg *c, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    if (cfg_print(c, f) != 0) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int env_ready;
    if (!env_ready) {
        /* Give ${VAR} expansion something to find. */
        setenv("SS_FUZZ_VAR", "fuzz-value", 1);
        env_ready = 1;
    }
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string((const char *)data, size, "fuzz.yml", &c, err, sizeof err) != 0) {
        if (c || !err[0])
            abort(); /* failures leave *out NULL and always explain themselves */
        return 0;
    }
    size_t len1 = 0, len2 = 0;
    char *out1 = print_cfg(c, &len1);
    /* Aliases can legitimately print far more than the input; only re-load what fits
     * comfortably under the loader's limits. */
    if (out1 && len1 < (1u << 20)) {
        struct cfg *c2 = NULL;
        if (cfg_load_string(out1, len1, "printed.yml", &c2, err, sizeof err) != 0) {
            fprintf(stderr, "printed config does not load: %s\n%s\n", err, out1);
            abort();
        }
        char *out2 = print_cfg(c2, &len2);
        if (!out2 || len1 != len2 || memcmp(out1, out2, len1) != 0) {
            fprintf(stderr, "print is not a fixed point:\n%s\n---\n%s\n", out1, out2 ? out2 : "(null)");
            abort();
        }
        free(out2);
        cfg_free(c2);
    }
    free(out1);
    cfg_free(c);
    return 0;
}
