/* fuzz_config_otel.c: arbitrary bytes into the OpenTelemetry collector config path.
 *
 * An input that has no top-level receivers/exporters/service key of its own is loaded
 * behind an "exporters: {}" line, so the loader always takes the OTel path however the
 * bytes start; one that has such a key (the seeds in tests/fuzz/seeds/fuzz_config_otel/,
 * which scripts/test.sh starts from) loads as it is, since a second "exporters" key
 * would be refused as a duplicate before the OTel mapping ever ran. Must never crash,
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

/* A line starting with "receivers:", "exporters:" or "service:". */
static int has_otel_key(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"receivers:", "exporters:", "service:"};
    for (size_t i = 0; i < size; i++) {
        if (i > 0 && data[i - 1] != '\n')
            continue;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t n = strlen(keys[k]);
            if (size - i >= n && memcmp(data + i, keys[k], n) == 0)
                return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head[] = "exporters: {}\n";
    if (size > (1u << 20))
        return 0;
    size_t hlen = has_otel_key(data, size) ? 0 : sizeof head - 1;
    char *in = malloc(hlen + size + 1);
    if (!in)
        return 0;
    memcpy(in, head, hlen);
    memcpy(in + hlen, data, size);
    char err[512];
    struct cfg *c = NULL;
    if (cfg_load_string(in, hlen + size, "fuzz.yaml", &c, err, sizeof err) != 0) {
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
