/* metrics.c: the self-metrics registry: a short list of render callbacks. */
#include <pthread.h>

#include "ss.h"

#define MAX_RENDERERS 32

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    ss_metrics_render_fn fn;
    void *ud;
} renderers[MAX_RENDERERS];
static size_t nrenderers;

int ss_metrics_register(ss_metrics_render_fn fn, void *ud)
{
    int rc = SS_ELIMIT;
    pthread_mutex_lock(&reg_lock);
    if (nrenderers < MAX_RENDERERS) {
        renderers[nrenderers].fn = fn;
        renderers[nrenderers].ud = ud;
        nrenderers++;
        rc = 0;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void ss_metrics_unregister(ss_metrics_render_fn fn, void *ud)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nrenderers; i++)
        if (renderers[i].fn == fn && renderers[i].ud == ud) {
            renderers[i] = renderers[--nrenderers];
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

/* Rendering holds the registry lock, so a module unregistering (and then freeing
 * its state) waits for an in-progress /metrics request to finish with it. */
int ss_metrics_render(struct ss_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nrenderers && !rc; i++)
        rc = renderers[i].fn(renderers[i].ud, out);
    pthread_mutex_unlock(&reg_lock);
    return rc;
}
