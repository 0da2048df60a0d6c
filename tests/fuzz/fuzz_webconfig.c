/* fuzz_webconfig.c: arbitrary bytes into cfg_web_load_string (--web.config.file).
 *
 * Must never crash, leak or overrun. A failure always explains itself and leaves
 * *out NULL; a loaded config is internally consistent: TLS settings have their
 * certificate and key, users are sorted and findable, every hash is a bcrypt hash,
 * and the GnuTLS priority string it produces fits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "web_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct cfg_web *w = NULL;
    if (cfg_web_load_string((const char *)data, size, "/fuzz/web.yml", &w, err, sizeof err) != 0) {
        if (w || !err[0])
            abort();
        return 0;
    }
    if (w->tls && (!w->cert_file || !w->key_file))
        abort();
    if (w->min_version > w->max_version)
        abort();
    for (size_t i = 0; i < w->nusers; i++) {
        if (i && strcmp(w->users[i - 1].name, w->users[i].name) >= 0)
            abort();
        if (cfg_web_user_hash(w, w->users[i].name) != w->users[i].hash || strlen(w->users[i].hash) != 60)
            abort();
    }
    char prio[512];
    if (web_tls_priority_string(w, prio, sizeof prio) != 0)
        abort();
    cfg_web_free(w);
    return 0;
}
