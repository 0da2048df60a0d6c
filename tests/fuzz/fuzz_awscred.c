/* fuzz_awscred.c: libFuzzer target for the credential chain's parsers: the shared
 * credentials/config INI files, STS XML replies, container/IMDS credential JSON,
 * ISO 8601 instants and the container full-URI host rule.
 *
 * Byte 0 picks the parser (modulo 7), the rest is its input. Besides "no crash, no
 * leak" (ASan/UBSan/LSan) it checks each parser's contract: a success yields
 * non-empty credentials within the AWSCRED_MAX_* limits and visible ASCII (they go
 * into HTTP headers), a failure leaves the output empty and an error string that is
 * NUL-terminated and short.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awscred.h"
#include "awscred_int.h"
#include "ss.h"

static void check_string(const char *s, size_t max, bool may_be_null)
{
    if (!s) {
        if (!may_be_null)
            abort();
        return;
    }
    if (awscred_check_cred_string(s, max) != 0)
        abort();
}

static void check_value(int rc, const struct awscred_value *v, const char *why)
{
    if (strlen(why) >= AWSCRED_ERR_MAX)
        abort();
    if (rc == 0) {
        check_string(v->access_key_id, AWSCRED_MAX_KEY_ID, false);
        check_string(v->secret_access_key, AWSCRED_MAX_SECRET, false);
        check_string(v->session_token, AWSCRED_MAX_TOKEN, true);
    } else if (v->access_key_id || v->secret_access_key || v->session_token) {
        abort(); /* failure must leave nothing behind */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned which = data[0] % 7;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char why[AWSCRED_ERR_MAX] = "";
    struct awscred_value v;

    switch (which) {
    case 0:
    case 1: {
        struct awscred_ini *ini = NULL;
        int rc = awscred_ini_parse(in, n, which == 1, &ini);
        if (rc == 0) {
            static const char *const profiles[] = {"default", "a", "profile", "x y", ""};
            static const char *const keys[] = {"aws_access_key_id", "role_arn", "source_profile", "", "A"};
            for (size_t p = 0; p < 5; p++)
                for (size_t k = 0; k < 5; k++) {
                    const char *val = awscred_ini_get(ini, profiles[p], keys[k]);
                    if (val && !awscred_ini_has_profile(ini, profiles[p]))
                        abort(); /* a value implies its profile was declared */
                    if (val && memchr(val, '\n', strlen(val)))
                        abort(); /* values are single lines */
                }
        } else if (ini) {
            abort();
        }
        awscred_ini_free(ini);
        break;
    }
    case 2:
    case 3: {
        int rc = awscred_parse_sts_xml(in, n, which == 2 ? "AssumeRole" : "AssumeRoleWithWebIdentity", &v,
                                       why, sizeof why);
        check_value(rc, &v, why);
        if (rc == 0 && !v.session_token)
            abort(); /* STS always returns a session token */
        awscred_value_clear(&v);
        break;
    }
    case 4: {
        int rc = awscred_parse_creds_json(in, n, &v, why, sizeof why);
        check_value(rc, &v, why);
        awscred_value_clear(&v);
        break;
    }
    case 5: {
        int64_t ms = 0;
        if (awscred_parse_time(in, n, &ms) == 0 && n < 10)
            abort(); /* nothing shorter than a date can be an instant */
        break;
    }
    default: {
        char *s = malloc(n + 1);
        if (!s)
            abort();
        memcpy(s, in, n);
        s[n] = '\0';
        (void)awscred_container_url_allowed(s);
        free(s);
        break;
    }
    }
    return 0;
}
