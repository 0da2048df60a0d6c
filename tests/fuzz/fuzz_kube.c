/* fuzz_kube.c: the Kubernetes client's parsers on arbitrary bytes: a kubeconfig file,
 * Scale / Deployment / Status answers from the API server (through a scripted
 * transport), and a watch stream with its events and LIST pages. No crash, no leak,
 * no unbounded work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube.h"

static char kc_path[64], good_path[64];
static const uint8_t *answer;
static size_t answer_len;
static long answer_status;

static int transport(void *ud, const struct kube_http_request *req, long *status, struct ss_buf *resp,
                     char *err, size_t errlen)
{
    (void)ud, (void)req, (void)err, (void)errlen;
    *status = answer_status;
    return ss_buf_append(resp, answer, answer_len);
}

static int on_line(void *ud, const char *line, size_t len)
{
    (void)ud;
    json_t *doc = NULL;
    struct kube_watch_event ev;
    char err[256];
    if (kube_watch_event_decode(line, len, &doc, &ev, err, sizeof err) == 0)
        json_decref(doc);
    return 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* libFuzzer ends with exit(): the scratch files go with the process */
static void remove_files(void)
{
    unlink(kc_path);
    unlink(good_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kc_path[0]) {
        ss_log_set_level(SS_LOG_ERROR);
        atexit(remove_files);
        snprintf(kc_path, sizeof kc_path, "/tmp/ss-fuzz-kc-%d.yaml", (int)getpid());
        snprintf(good_path, sizeof good_path, "/tmp/ss-fuzz-kcgood-%d.yaml", (int)getpid());
        const char *good = "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                           "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                           "users: [{name: u, user: {token: t}}]\n"
                           "contexts: [{name: c, context: {cluster: k, user: u, namespace: ns}}]\n";
        write_file(good_path, good, strlen(good));
    }
    if (size < 1)
        return 0;
    char err[512];
    if ((data[0] & 0x81) == 0x80) { /* the bytes as a watch stream, then as a LIST page */
        struct kube_watch_stream st;
        kube_watch_stream_init(&st, 4096);
        size_t split = 1 + (size_t)(data[0] >> 1 & 0x3f); /* two chunks: lines cross them */
        if (split > size)
            split = size;
        if (kube_watch_stream_feed(&st, (const char *)data + 1, split - 1, on_line, NULL) == 0)
            kube_watch_stream_feed(&st, (const char *)data + split, size - split, on_line, NULL);
        kube_watch_stream_free(&st);
        json_t *doc = NULL;
        struct kube_list_page pg;
        if (kube_list_page_decode((const char *)data + 1, size - 1, &doc, &pg, err, sizeof err) == 0)
            json_decref(doc);
        return 0;
    }
    if (data[0] & 1) { /* the bytes as a kubeconfig */
        write_file(kc_path, data + 1, size - 1);
        struct kube_config *c = NULL;
        if (kube_config_from_kubeconfig(kc_path, NULL, &c, err, sizeof err) == 0)
            kube_config_free(c);
        return 0;
    }
    /* the bytes as an API answer */
    struct kube_config *c = NULL;
    if (kube_config_from_kubeconfig(good_path, NULL, &c, err, sizeof err) != 0)
        return 0;
    struct kube_client *k = NULL;
    if (kube_client_new(c, &k) == 0) {
        kube_client_set_transport(k, transport, NULL);
        static const long statuses[] = {200, 200, 403, 404, 409, 500};
        answer = data + 1;
        answer_len = size - 1;
        answer_status = statuses[(data[0] >> 1) % 6];
        struct kube_target t = {"ns", "apps/v1", (data[0] & 2) ? "StatefulSet" : "Deployment", "app"};
        struct kube_scale sc;
        struct kube_workload w;
        struct kube_error ke;
        kube_get_scale(k, &t, &sc, &ke);
        kube_get_workload(k, &t, "autoscaling.keda.sh/", &w, &ke);
        kube_patch_scale(k, &t, 3, &sc, &ke);
        kube_client_free(k);
    }
    kube_config_free(c);
    return 0;
}
