/* sigv4_sign.c: drive the SigV4 signer from JSON lines, for oracle tests (botocore).
 *
 * Reads one JSON object per line on stdin:
 *   {"id": any, "method": "POST", "url": "https://h/p?q",
 *    "headers": [["Name", "value"], ...], "body_hex": "00ff..",
 *    "payload_sha256_hex": null, "access_key": "AKID", "secret_key": "...",
 *    "token": null, "region": "us-east-1", "service": "aps", "time": 1440938160,
 *    "add_content_sha256": false, "skip_path_normalization": false,
 *    "single_encode_path": false, "omit_session_token": false}
 * and writes one JSON object per line on stdout with the same "id" and either the
 * signer's output (authorization, x_amz_date, x_amz_security_token,
 * x_amz_content_sha256, host, canonical_request, string_to_sign) or "error".
 * Exits 0 when every line was read, 1 on unreadable input, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sigv4.h"
#include "ss.h"
#include "sstext.h"

#define MAX_LINE (8u << 20) /* one request; bodies are small in tests */

static int hex_decode(const char *hex, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(hex);
    unsigned char *b = malloc(n / 2 + 1);
    if (!b)
        return SS_ENOMEM;
    int rc = ss_hex_decode(b, hex, n);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *out_len = n / 2;
    return 0;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (!v) {
        json_object_set_new(o, k, json_null());
        return;
    }
    json_t *s = json_string(v);
    json_object_set_new(o, k, s ? s : json_string("<not utf-8>"));
}

/* Sign one request object; fills `reply` with results or an "error". */
static void sign_one(json_t *in, json_t *reply)
{
    struct sigv4_header *hdrs = NULL;
    unsigned char *body = NULL;
    size_t body_len = 0, nh = 0;
    const char *err = NULL;
    int rc;

    json_t *jh = json_object_get(in, "headers");
    if (jh && !json_is_array(jh)) {
        err = "headers must be an array";
        goto done;
    }
    nh = jh ? json_array_size(jh) : 0;
    hdrs = calloc(nh + 1, sizeof *hdrs);
    if (!hdrs) {
        err = "out of memory";
        goto done;
    }
    for (size_t i = 0; i < nh; i++) {
        json_t *pair = json_array_get(jh, i);
        hdrs[i].name = json_string_value(json_array_get(pair, 0));
        hdrs[i].value = json_string_value(json_array_get(pair, 1));
        if (!hdrs[i].name || !hdrs[i].value) {
            err = "header must be [name, value]";
            goto done;
        }
    }
    const char *bh = json_string_value(json_object_get(in, "body_hex"));
    if (bh && hex_decode(bh, &body, &body_len) != 0) {
        err = "bad body_hex";
        goto done;
    }
    struct sigv4_request req = {
        .method = json_string_value(json_object_get(in, "method")),
        .url = json_string_value(json_object_get(in, "url")),
        .headers = hdrs,
        .nheaders = nh,
        .body = body,
        .body_len = body_len,
        .payload_sha256_hex = json_string_value(json_object_get(in, "payload_sha256_hex")),
    };
    struct sigv4_credentials creds = {
        .access_key_id = json_string_value(json_object_get(in, "access_key")),
        .secret_access_key = json_string_value(json_object_get(in, "secret_key")),
        .session_token = json_string_value(json_object_get(in, "token")),
    };
    struct sigv4_params params = {
        .region = json_string_value(json_object_get(in, "region")),
        .service = json_string_value(json_object_get(in, "service")),
        .now_unix = (int64_t)json_integer_value(json_object_get(in, "time")),
        .add_content_sha256_header = json_is_true(json_object_get(in, "add_content_sha256")),
        .skip_path_normalization = json_is_true(json_object_get(in, "skip_path_normalization")),
        .single_encode_path = json_is_true(json_object_get(in, "single_encode_path")),
        .omit_session_token_from_signature = json_is_true(json_object_get(in, "omit_session_token")),
    };
    struct sigv4_result res;
    rc = sigv4_sign(&req, &creds, &params, &res);
    if (rc) {
        err = ss_strerror(rc);
        goto done;
    }
    set_str(reply, "authorization", res.authorization);
    set_str(reply, "x_amz_date", res.x_amz_date);
    set_str(reply, "x_amz_security_token", res.x_amz_security_token);
    set_str(reply, "x_amz_content_sha256", res.x_amz_content_sha256);
    set_str(reply, "host", res.host);
    set_str(reply, "canonical_request", res.canonical_request);
    set_str(reply, "string_to_sign", res.string_to_sign);
    sigv4_result_free(&res);

done:
    if (err)
        set_str(reply, "error", err);
    free(hdrs);
    free(body);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: %s < requests.jsonl > results.jsonl\n", argv[0]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if ((size_t)n > MAX_LINE) {
            fprintf(stderr, "sigv4_sign: line longer than %u bytes\n", MAX_LINE);
            status = 1;
            break;
        }
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)n, 0, &jerr);
        json_t *reply = json_object();
        if (!reply) {
            json_decref(in);
            status = 1;
            break;
        }
        if (!in || !json_is_object(in)) {
            set_str(reply, "error", in ? "not an object" : jerr.text);
        } else {
            json_t *id = json_object_get(in, "id");
            json_object_set(reply, "id", id ? id : json_null());
            sign_one(in, reply);
        }
        char *s = json_dumps(reply, JSON_COMPACT);
        if (s) {
            fputs(s, stdout);
            fputc('\n', stdout);
            free(s);
        } else {
            status = 1;
        }
        json_decref(reply);
        json_decref(in);
        if (status)
            break;
    }
    free(line);
    fflush(stdout);
    return status;
}
