/* promop_tool: drives the ServiceMonitor/PodMonitor translator for the Python tests
 * (tests/integration/test_promop_golden.py).
 *
 *   promop_tool translate CASE.json
 *       CASE: {"monitor": {...}, "opts": {"shards": 1, "shard": "$(SHARD)",
 *              "node_name": "...", "default_role": "endpointslice"},
 *              "secrets": {"ns/name/key": "value"}}
 *       prints {"scrape_configs": [...]} (JSON), or the error on stderr, exit 1.
 *   promop_tool targets CONFIG TARGETS.json
 *       CONFIG: a scrapeship (Prometheus) config, YAML or JSON; TARGETS: a list of
 *       discovered targets, each a map of labels with __address__. Prints, per job,
 *       the final target labels of each target (null when relabeling dropped it),
 *       computed by the scrape engine's own target code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "collector.h"
#include "config.h"
#include "promop.h"
#include "scrape_int.h"

static int tool_secret(void *ud, const char *ns, const char *name, const char *key, char **value, char *err,
                       size_t errlen)
{
    char k[512];
    snprintf(k, sizeof k, "%s/%s/%s", ns, name, key);
    const char *v = json_string_value(json_object_get((json_t *)ud, k));
    if (!v) {
        snprintf(err, errlen, "not found");
        return SS_ENOTFOUND;
    }
    *value = strdup(v);
    return *value ? 0 : SS_ENOMEM;
}

static int translate(const char *path)
{
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) {
        fprintf(stderr, "%s: %s\n", path, je.text);
        return 2;
    }
    json_t *o = json_object_get(c, "opts");
    struct promop_opts opts = {
        .shards = (uint32_t)json_integer_value(json_object_get(o, "shards")),
        .shard = json_string_value(json_object_get(o, "shard")),
        .node_name = json_string_value(json_object_get(o, "node_name")),
        .default_role = json_string_value(json_object_get(o, "default_role")),
        .get_secret = tool_secret,
        .secret_ud = json_object_get(c, "secrets"),
    };
    json_t *out = NULL;
    char err[512];
    int rc = promop_translate(json_object_get(c, "monitor"), &opts, &out, err, sizeof err);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        json_decref(c);
        return 1;
    }
    json_t *doc = json_pack("{s:o}", "scrape_configs", out);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(doc);
    json_decref(c);
    return 0;
}

static int targets(const char *cfg_path, const char *tpath)
{
    char err[1024];
    struct cfg *cfg = NULL;
    struct collector_jobs jobs = {0};
    json_error_t je;
    json_t *ts = json_load_file(tpath, 0, &je), *res = json_object();
    int ret = 1;
    if (!ts || !res) {
        fprintf(stderr, "%s: %s\n", tpath, je.text);
        goto done;
    }
    if (cfg_load_file(cfg_path, &cfg, err, sizeof err) || collector_jobs_build(cfg, &jobs, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    for (size_t j = 0; j < jobs.njobs; j++) {
        json_t *list = json_array();
        json_object_set_new(res, jobs.jobs[j].name, list);
        size_t i;
        json_t *t;
        json_array_foreach(ts, i, t)
        {
            size_t n = json_object_size(t), k = 0;
            struct ss_kv *kv = calloc(n + 1, sizeof *kv);
            const char *key;
            json_t *v;
            json_object_foreach(t, key, v) kv[k++] = (struct ss_kv){key, json_string_value(v)};
            struct scrape_target_group g = {.labels = kv, .nlabels = n};
            struct scrape_target_spec spec;
            scrape_target_spec_init(&spec);
            const char *addr = json_string_value(json_object_get(t, "__address__"));
            int rc = scrape_target_populate(&jobs.jobs[j], &g, addr ? addr : "", &spec, err, sizeof err);
            if (rc == 1) {
                json_t *lo = json_object();
                for (size_t l = 0; l < spec.labels.n; l++) {
                    char name[256];
                    snprintf(name, sizeof name, "%.*s", (int)spec.labels.v[l].name.len,
                             spec.labels.v[l].name.p);
                    json_object_set_new(lo, name,
                                        json_stringn(spec.labels.v[l].value.p, spec.labels.v[l].value.len));
                }
                json_array_append_new(list, lo);
            } else {
                json_array_append_new(list, rc == 0 ? json_null() : json_string(err));
            }
            scrape_target_spec_free(&spec);
            free(kv);
        }
    }
    json_dumpf(res, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    putchar('\n');
    ret = 0;
done:
    collector_jobs_free(&jobs);
    cfg_free(cfg);
    json_decref(ts);
    json_decref(res);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "translate"))
        return translate(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "targets"))
        return targets(argv[2], argv[3]);
    fprintf(stderr, "usage: promop_tool translate CASE.json | targets CONFIG TARGETS.json\n");
    return 2;
}
