/* fuzz_promop.c: libFuzzer target for the ServiceMonitor/PodMonitor translator, whose
 * input (a monitor from the API server) anyone allowed to create a monitor writes. Every
 * translated config is also fed to the config loader, as `run` does. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "promop.h"

static int secret(void *ud, const char *ns, const char *name, const char *key, char **value, char *err,
                  size_t errlen)
{
    (void)ud;
    (void)ns;
    (void)name;
    if (key[0] == 'x') {
        snprintf(err, errlen, "denied");
        return SS_ECONFIG;
    }
    *value = strdup("value");
    return *value ? 0 : SS_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *obj = json_loadb((const char *)data, size, 0, &je), *out = NULL;
    if (!obj)
        return 0;
    struct promop_opts o = {.shards = 2, .shard = "1", .get_secret = secret};
    if (size & 1)
        o.node_name = "node-a";
    char err[512];
    if (promop_translate(obj, &o, &out, err, sizeof err) == 0) {
        json_t *doc = json_pack("{s:o}", "scrape_configs", out);
        char *text = doc ? json_dumps(doc, JSON_PRESERVE_ORDER) : NULL;
        struct cfg *c = NULL;
        if (text && cfg_load_string(text, strlen(text), "<fuzz>", &c, err, sizeof err) == 0)
            cfg_free(c);
        free(text);
        json_decref(doc);
    }
    json_decref(obj);
    return 0;
}
