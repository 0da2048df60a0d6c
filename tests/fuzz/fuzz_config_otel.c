/* fuzz_config_otel.c: arbitrary bytes into the OpenTelemetry collector config path.
 *
 * The input is loaded behind a "service:" key line, so the loader always takes the
 * OTel path (receivers/exporters/service) however the bytes start. Must never crash,
 * leak or overrun; a config that loads must print a native config that loads again
 * and prints the same (the printer is a fixed point).
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
    static const char head[] = "exporters: {}\n";
    if (size > (1u << 20))
        return 0;
    char *in = malloc(sizeof head + size);
    if (!in)
        return 0;
    memcpy(in, head, sizeof head - 1);
    memcpy(in + sizeof head - 1, data, size);
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string(in, sizeof head - 1 + size, "fuzz.yaml", &c, err, sizeof err) != 0) {
        if (c || !err[0])
            abort();
        free(in);
        return 0;
    }
    size_t len1 = 0, len2 = 0;
    char *out1 = print_cfg(c, &len1);
    if (out1 && len1 < (1u << 20)) {
        struct cfg *c2 = NULL;
        if (cfg_load_string(out1, len1, "printed.yml", &c2, err, sizeof err) != 0) {
            fprintf(stderr, "printed config does not load: %s\n%s\n", err, out1);
            abort();
        }
        char *out2 = print_cfg(c2, &len2);
        if (!out2 || len1 != len2 || memcmp(out1, out2, len1) != 0)
            abort();
        free(out2);
        cfg_free(c2);
    }
    free(out1);
    cfg_free(c);
    free(in);
    return 0;
}
