/* fuzz_file_sd.c: libFuzzer target for file-based discovery (scrape/discovery.c).
 *
 * The first input byte picks the parser (even: JSON, odd: YAML); the rest is written
 * to a temp file, made once per process for each extension, and loaded through the
 * public API so globbing, reading, parsing, limits and cleanup all run. Every group
 * that comes back is checked for the invariants callers rely on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrape.h"

static char paths[2][64];

static void remove_files(void)
{
    for (int i = 0; i < 2; i++)
        if (paths[i][0])
            unlink(paths[i]);
}

/* mkstemps names use [A-Za-z0-9] only, so the path is also a valid glob pattern that
 * matches just itself. */
static const char *file_for(int yaml)
{
    if (!paths[yaml][0]) {
        snprintf(paths[yaml], sizeof paths[yaml], "/tmp/fuzz_file_sd_XXXXXX%s", yaml ? ".yml" : ".json");
        int fd = mkstemps(paths[yaml], yaml ? 4 : 5);
        if (fd < 0)
            abort();
        close(fd);
        static int registered;
        if (!registered++)
            atexit(remove_files);
    }
    return paths[yaml];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Every bad input logs an error; the log line is not what is being tested. */
    ss_log_set_level((enum ss_log_level)(SS_LOG_ERROR + 1));

    const char *path = file_for(data[0] & 1);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1)
        abort();
    if (fclose(f) != 0)
        abort();

    struct scrape_sd_groups *g = NULL;
    size_t nerr = 0;
    if (scrape_file_sd_load(&path, 1, &g, &nerr) != 0)
        return 0; /* only SS_ENOMEM can get here */
    if (nerr > 1)
        abort();
    size_t n = scrape_sd_groups_count(g);
    if (nerr && n)
        abort(); /* a failed file contributes nothing */
    for (size_t i = 0; i < n; i++) {
        const struct scrape_target_group *tg = scrape_sd_groups_get(g, i);
        size_t seen_path = 0;
        for (size_t k = 0; k < tg->ntargets; k++)
            if (!tg->targets[k])
                abort();
        for (size_t k = 0; k < tg->nlabels; k++) {
            if (!tg->labels[k].key || !tg->labels[k].value)
                abort();
            if (strcmp(tg->labels[k].key, "__meta_filepath") == 0) {
                seen_path++;
                if (strcmp(tg->labels[k].value, path) != 0)
                    abort();
            }
        }
        if (seen_path != 1)
            abort();
    }
    scrape_sd_groups_free(g);

    uint64_t fp;
    if (scrape_file_sd_fingerprint(&path, 1, &fp) != 0)
        abort();
    return 0;
}
