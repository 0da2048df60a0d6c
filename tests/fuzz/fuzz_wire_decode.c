/* fuzz_wire_decode.c: arbitrary bytes into the remote-write decoders.
 *
 * Each input is tried as a snappy block (rw_snappy_decompress, output bounded) and,
 * both raw and decompressed, as a WriteRequest (rw_decode_write_request). Whatever
 * decodes is walked and then re-encoded with the hand encoder; decoding that again
 * must give the same labels, sample bits and metadata. This turns the fuzzer into a
 * differential test of encoder against protobuf-c, not just a crash hunt. The input
 * is also compressed with our own compressor and decompressed by the library, which
 * must give it back, within the format's worst-case size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remotewrite.h"

#define MAX_OUT (1u << 20)

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            __builtin_trap();                                                                                \
    } while (0)

/* proto3 cannot carry -0.0 (it equals the default and is omitted): compare as +0.0. */
static uint64_t wire_bits(double v)
{
    uint64_t b;
    if (v == 0.0)
        return 0;
    memcpy(&b, &v, sizeof b);
    return b;
}

static void reencode_and_compare(const struct rw_write_request *req)
{
    struct ss_buf buf;
    struct rw_write_request *again = NULL;
    double *values = NULL;
    int64_t *ts = NULL;
    ss_buf_init(&buf, 0);

    size_t nseries = rw_write_request_nseries(req);
    for (size_t i = 0; i < nseries; i++) {
        struct rw_series s;
        CHECK(rw_write_request_series(req, i, &s) == 0);
        const char *why;
        (void)rw_validate_labels(s.labels, s.nlabels, 0, &why);
        for (size_t j = 0; j < s.nexemplars; j++)
            CHECK(s.exemplars[j].nlabels == 0 || s.exemplars[j].labels != NULL);
        free(values);
        free(ts);
        values = malloc((s.nsamples ? s.nsamples : 1) * sizeof *values);
        ts = malloc((s.nsamples ? s.nsamples : 1) * sizeof *ts);
        CHECK(values && ts);
        for (size_t j = 0; j < s.nsamples; j++) {
            values[j] = s.samples[j].value;
            ts[j] = s.samples[j].timestamp_ms;
        }
        size_t before = buf.len;
        size_t predicted = rw_encoded_series_size(s.labels, s.nlabels, values, ts, s.nsamples);
        CHECK(rw_encode_series_multi(&buf, s.labels, s.nlabels, values, ts, s.nsamples) == 0);
        CHECK(buf.len - before == predicted);
    }
    size_t nmeta = rw_write_request_nmetadata(req);
    size_t nmeta_encoded = 0;
    for (size_t i = 0; i < nmeta; i++) {
        struct rw_metadata m;
        CHECK(rw_write_request_metadata(req, i, &m) == 0);
        /* Only types this build knows map back; unknown wire numbers are skipped. */
        if (m.wire_type != (int32_t)m.type)
            continue;
        CHECK(rw_encode_metadata(&buf, m.type, m.family, m.help, m.unit) == 0);
        nmeta_encoded++;
    }

    CHECK(rw_decode_write_request(buf.data ? buf.data : "", buf.len, &again) == 0);
    CHECK(rw_write_request_nseries(again) == nseries);
    for (size_t i = 0; i < nseries; i++) {
        struct rw_series a, b;
        CHECK(rw_write_request_series(req, i, &a) == 0);
        CHECK(rw_write_request_series(again, i, &b) == 0);
        CHECK(a.nlabels == b.nlabels && a.nsamples == b.nsamples && b.nexemplars == 0);
        for (size_t j = 0; j < a.nlabels; j++)
            CHECK(ss_str_eq(a.labels[j].name, b.labels[j].name) &&
                  ss_str_eq(a.labels[j].value, b.labels[j].value));
        for (size_t j = 0; j < a.nsamples; j++)
            CHECK(wire_bits(a.samples[j].value) == wire_bits(b.samples[j].value) &&
                  a.samples[j].timestamp_ms == b.samples[j].timestamp_ms);
    }
    CHECK(rw_write_request_nmetadata(again) == nmeta_encoded);
    for (size_t i = 0, k = 0; i < nmeta; i++) {
        struct rw_metadata a, b;
        rw_write_request_metadata(req, i, &a);
        if (a.wire_type != (int32_t)a.type)
            continue;
        CHECK(rw_write_request_metadata(again, k++, &b) == 0);
        CHECK(a.type == b.type && ss_str_eq(a.family, b.family) && ss_str_eq(a.help, b.help) &&
              ss_str_eq(a.unit, b.unit));
    }

    rw_write_request_free(again);
    free(values);
    free(ts);
    ss_buf_free(&buf);
}

static void try_decode(const uint8_t *data, size_t size)
{
    struct rw_write_request *req = NULL;
    int rc = rw_decode_write_request(size ? (const void *)data : "", size, &req);
    CHECK(rc == 0 || rc == SS_EPARSE);
    if (rc == 0) {
        reencode_and_compare(req);
        rw_write_request_free(req);
    } else {
        CHECK(req == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ss_buf out, comp;
    ss_buf_init(&out, 0);
    ss_buf_init(&comp, 0);

    int rc = rw_snappy_decompress(size ? (const void *)data : "", size, MAX_OUT, &out);
    CHECK(rc == 0 || rc == SS_EPARSE || rc == SS_ELIMIT);
    if (rc == 0) {
        CHECK(out.len <= MAX_OUT);
        try_decode((const uint8_t *)out.data, out.len);
    } else {
        CHECK(out.len == 0);
    }
    try_decode(data, size);

    ss_buf_reset(&out);
    CHECK(rw_snappy_compress(size ? (const void *)data : "", size, &comp) == 0);
    CHECK(comp.len <= 32 + size + size / 6); /* the format's worst case, which out reserves */
    CHECK(rw_snappy_decompress(comp.data, comp.len, size, &out) == 0);
    CHECK(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0));

    ss_buf_free(&out);
    ss_buf_free(&comp);
    return 0;
}
