/* fuzz_sigv4.c: libFuzzer target for the SigV4 signer's URL, query, path and header
 * canonicalisation.
 *
 * Input layout: byte 0 = option bits, bytes 1-4 = clock (little-endian seconds), then
 * newline-separated: method, URL, "Name:value" header lines up to an empty line, and
 * the rest is the body. Besides "no crash, no leak" (ASan/UBSan/LSan), it checks that
 * signing with the key cache gives the same Authorization as without, and that a
 * successful result always carries the headers it promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "ss.h"

#define MAX_FUZZ_HEADERS (SIGV4_MAX_HEADERS + 2) /* just past the limit */

static char *cut(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *e = nl ? nl : end;
    size_t n = (size_t)(e - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    uint32_t clock =
        (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    const uint8_t *p = data + 5, *end = data + size;

    char *method = cut(&p, end);
    char *url = cut(&p, end);
    struct sigv4_header hdrs[MAX_FUZZ_HEADERS];
    char *lines[MAX_FUZZ_HEADERS];
    size_t nh = 0;
    while (p < end && nh < MAX_FUZZ_HEADERS) {
        char *line = cut(&p, end);
        if (line[0] == '\0') {
            free(line);
            break;
        }
        char *colon = strchr(line, ':');
        if (colon)
            *colon = '\0';
        lines[nh] = line;
        hdrs[nh] = (struct sigv4_header){line, colon ? colon + 1 : ""};
        nh++;
    }

    struct sigv4_request req = {
        .method = method,
        .url = url,
        .headers = hdrs,
        .nheaders = nh,
        .body = p < end ? p : NULL,
        .body_len = (size_t)(end - p),
        .payload_sha256_hex = (flags & 0x40) ? "UNSIGNED-PAYLOAD" : NULL,
    };
    struct sigv4_credentials creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                      (flags & 0x10) ? "FwoGZXIvYXdzEBQaDFAKE+TOKEN/=" : NULL};
    struct sigv4_params params = {
        .region = "us-west-2",
        .service = "aps",
        .now_unix = (flags & 0x80) ? -(int64_t)clock : (int64_t)clock,
        .add_content_sha256_header = flags & 0x01,
        .skip_path_normalization = flags & 0x02,
        .single_encode_path = flags & 0x04,
        .omit_session_token_from_signature = flags & 0x08,
    };
    struct sigv4_result a, b;
    int rc = sigv4_sign(&req, &creds, &params, &a);
    if (rc == 0) {
        if (!a.authorization || !a.x_amz_date || !a.canonical_request || !a.string_to_sign ||
            (creds.session_token && !a.x_amz_security_token) ||
            (params.add_content_sha256_header && !a.x_amz_content_sha256))
            abort();
        struct sigv4_key_cache kc;
        memset(&kc, 0, sizeof kc);
        params.key_cache = &kc;
        for (int i = 0; i < 2; i++) { /* miss, then hit */
            if (sigv4_sign(&req, &creds, &params, &b) != 0 || strcmp(a.authorization, b.authorization) != 0)
                abort();
            sigv4_result_free(&b);
        }
        sigv4_key_cache_clear(&kc);
    } else if (a.authorization || a.canonical_request || a.host) {
        abort(); /* failure must leave the result empty */
    }
    sigv4_result_free(&a);

    for (size_t i = 0; i < nh; i++)
        free(lines[i]);
    free(method);
    free(url);
    return 0;
}
