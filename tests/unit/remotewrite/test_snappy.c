/* test_snappy.c: snappy block format against the corpus in $SS_CORPORA_DIR/snappy.
 *
 * What the corpus gives (see its SOURCE.md): a golden pair from golang/snappy that
 * must decode exactly; google/snappy's three corrupt blocks that must be rejected;
 * 33 decode vectors (valid and corrupt) from golang/snappy's tests; and the canonical
 * literal/copy tag bytes, which we turn into decode vectors here. Snappy output is
 * not unique, and the compressor is our own (remotewrite/snappy.c), so it is checked
 * against the library: the library decodes its output back to the input, on the
 * corpus and on random and remote-write-shaped data, and that output is at most 1%
 * larger than the library's. Also checked: the
 * max_out bound refuses a block before anything is allocated, every truncation of a
 * valid block is refused, and flipped bytes never crash the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remotewrite.h"

#define N(a)       (sizeof(a) / sizeof((a)[0]))
#define SNAPPY_DIR SS_CORPORA_DIR "/snappy"

/* Read a whole corpus file (at most 4 MiB: the largest is 152 KB). */
static void read_corpus(const char *rel, struct ss_buf *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SNAPPY_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    ss_buf_init(out, 4u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(ss_buf_append(out, chunk, n), 0);
    assert_false(ferror(f));
    fclose(f);
}

static void roundtrip(const void *data, size_t n)
{
    struct ss_buf c, d;
    ss_buf_init(&c, 0);
    ss_buf_init(&d, 0);
    assert_int_equal(rw_snappy_compress(data, n, &c), 0);
    assert_true(c.len <= 32 + n + n / 6); /* the format's worst case */
    assert_int_equal(rw_snappy_decompress(c.data, c.len, n, &d), 0);
    assert_int_equal(d.len, n);
    if (n)
        assert_memory_equal(d.data, data, n);
    ss_buf_free(&c);
    ss_buf_free(&d);
}

static void test_golden_pair(void **state)
{
    (void)state;
    struct ss_buf txt, raw, out;
    read_corpus("golang-snappy/testdata/Isaac.Newton-Opticks.txt", &txt);
    read_corpus("golang-snappy/testdata/Isaac.Newton-Opticks.txt.rawsnappy", &raw);
    ss_buf_init(&out, 0);
    assert_int_equal(rw_snappy_decompress(raw.data, raw.len, 1u << 20, &out), 0);
    assert_int_equal(out.len, txt.len);
    assert_memory_equal(out.data, txt.data, txt.len);

    /* Every proper prefix of a valid block is refused: the content falls short of the
     * declared length, or an element is cut. */
    for (size_t len = 0; len < raw.len; len++) {
        ss_buf_reset(&out);
        int rc = rw_snappy_decompress(raw.data, len, 1u << 20, &out);
        assert_int_equal(rc, SS_EPARSE);
        assert_int_equal(out.len, 0);
    }
    roundtrip(txt.data, txt.len);
    ss_buf_free(&txt);
    ss_buf_free(&raw);
    ss_buf_free(&out);
}

static void test_google_testdata_roundtrip(void **state)
{
    (void)state;
    static const char *files[] = {"google-snappy/testdata/alice29.txt", "google-snappy/testdata/html",
                                  "google-snappy/testdata/geo.protodata"};
    for (size_t i = 0; i < N(files); i++) {
        struct ss_buf in;
        read_corpus(files[i], &in);
        roundtrip(in.data, in.len);
        /* Text compresses; a compressor that only emitted literals would fail this. */
        struct ss_buf c;
        ss_buf_init(&c, 0);
        assert_int_equal(rw_snappy_compress(in.data, in.len, &c), 0);
        assert_true(c.len < in.len * 3 / 4);
        /* and about as well as the library: within 1% of its output */
        size_t wlen = snappy_max_compressed_length(in.len);
        char *want = malloc(wlen);
        assert_non_null(want);
        assert_int_equal(snappy_compress(in.data, in.len, want, &wlen), SNAPPY_OK);
        print_message("%s: %zu -> %zu bytes (library %zu)\n", files[i], in.len, c.len, wlen);
        assert_true(c.len <= wlen + wlen / 100);
        free(want);
        ss_buf_free(&c);
        ss_buf_free(&in);
    }
}

static void test_baddata_rejected(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "google-snappy/testdata/baddata%d.snappy", i);
        struct ss_buf bad, out;
        read_corpus(rel, &bad);
        ss_buf_init(&out, 0);
        assert_int_equal(ss_buf_append(&out, "keep", 4), 0);
        assert_int_equal(rw_snappy_decompress(bad.data, bad.len, 1u << 20, &out), SS_EPARSE);
        assert_int_equal(out.len, 4);
        assert_string_equal(out.data, "keep");
        ss_buf_free(&bad);
        ss_buf_free(&out);
    }
}

static size_t unhex(const char *hex, struct ss_buf *out)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        assert_int_equal(sscanf(hex + i, "%2x", &v), 1);
        uint8_t b = (uint8_t)v;
        assert_int_equal(ss_buf_append(out, &b, 1), 0);
    }
    return n / 2;
}

static json_t *load_json(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SNAPPY_DIR, rel);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) {
        print_error("%s:%d: %s\n", path, err.line, err.text);
        fail();
    }
    return root;
}

static void test_golang_decode_vectors(void **state)
{
    (void)state;
    json_t *root = load_json("golang-snappy/block_decode_vectors.json");
    json_t *vecs = json_object_get(root, "decode");
    assert_true(json_is_array(vecs));
    size_t nok = 0, ncorrupt = 0;
    for (size_t i = 0; i < json_array_size(vecs); i++) {
        json_t *v = json_array_get(vecs, i);
        const char *desc = json_string_value(json_object_get(v, "desc"));
        const char *expect = json_string_value(json_object_get(v, "expect"));
        struct ss_buf in, want, out;
        ss_buf_init(&in, 0);
        ss_buf_init(&want, 0);
        ss_buf_init(&out, 0);
        unhex(json_string_value(json_object_get(v, "input_hex")), &in);
        int rc = rw_snappy_decompress(in.data, in.len, 1u << 20, &out);
        if (strcmp(expect, "ok") == 0) {
            unhex(json_string_value(json_object_get(v, "output_hex")), &want);
            if (rc != 0)
                print_error("vector %zu (%s): rc %d\n", i, desc, rc);
            assert_int_equal(rc, 0);
            assert_int_equal(out.len, want.len);
            if (want.len)
                assert_memory_equal(out.data, want.data, want.len);
            nok++;
        } else {
            assert_string_equal(expect, "corrupt");
            if (rc != SS_EPARSE)
                print_error("vector %zu (%s): rc %d\n", i, desc, rc);
            assert_int_equal(rc, SS_EPARSE);
            assert_int_equal(out.len, 0);
            ncorrupt++;
        }
        ss_buf_free(&in);
        ss_buf_free(&want);
        ss_buf_free(&out);
    }
    assert_int_equal(nok + ncorrupt, 33);
    json_decref(root);
}

static void put_varint(struct ss_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    assert_int_equal(ss_buf_append(b, tmp, n), 0);
}

/* The canonical tag bytes, used as decode vectors: a literal of N bytes must come
 * back as those bytes; literal + copy(offset, length) must repeat the pattern. */
static void test_golang_emit_vectors_decode(void **state)
{
    (void)state;
    json_t *root = load_json("golang-snappy/golang_encoder_emit_vectors.json");
    json_t *lits = json_object_get(root, "emit_literal");
    json_t *copies = json_object_get(root, "emit_copy");
    assert_true(json_array_size(lits) > 0);
    assert_true(json_array_size(copies) > 0);

    uint8_t *payload = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (uint8_t)(i * 131 + (i >> 8));

    for (size_t i = 0; i < json_array_size(lits); i++) {
        json_t *v = json_array_get(lits, i);
        size_t len = (size_t)json_integer_value(json_object_get(v, "literal_length"));
        struct ss_buf block, out;
        ss_buf_init(&block, 0);
        ss_buf_init(&out, 0);
        put_varint(&block, len);
        unhex(json_string_value(json_object_get(v, "tag_bytes_hex")), &block);
        assert_int_equal(ss_buf_append(&block, payload, len), 0);
        assert_int_equal(rw_snappy_decompress(block.data, block.len, 0, &out), 0);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, payload, len);
        ss_buf_free(&block);
        ss_buf_free(&out);
    }

    for (size_t i = 0; i < json_array_size(copies); i++) {
        json_t *v = json_array_get(copies, i);
        size_t off = (size_t)json_integer_value(json_object_get(v, "offset"));
        size_t len = (size_t)json_integer_value(json_object_get(v, "length"));
        struct ss_buf block, out;
        ss_buf_init(&block, 0);
        ss_buf_init(&out, 0);
        put_varint(&block, off + len);
        /* A literal of `off` bytes first, so the copy has something to refer to. */
        uint8_t lit[3];
        size_t nlit;
        if (off <= 60) {
            lit[0] = (uint8_t)((off - 1) << 2), nlit = 1;
        } else if (off <= 256) {
            lit[0] = 60 << 2, lit[1] = (uint8_t)(off - 1), nlit = 2;
        } else {
            lit[0] = 61 << 2, lit[1] = (uint8_t)(off - 1), lit[2] = (uint8_t)((off - 1) >> 8), nlit = 3;
        }
        assert_int_equal(ss_buf_append(&block, lit, nlit), 0);
        assert_int_equal(ss_buf_append(&block, payload, off), 0);
        unhex(json_string_value(json_object_get(v, "bytes_hex")), &block);
        assert_int_equal(rw_snappy_decompress(block.data, block.len, 0, &out), 0);
        assert_int_equal(out.len, off + len);
        assert_memory_equal(out.data, payload, off);
        for (size_t k = 0; k < len; k++)
            assert_int_equal((uint8_t)out.data[off + k], (uint8_t)out.data[k]);
        ss_buf_free(&block);
        ss_buf_free(&out);
    }
    free(payload);
    json_decref(root);
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static void test_random_roundtrip(void **state)
{
    (void)state;
    /* Sizes around snappy's 64 KiB block and its 15-byte input margin. */
    static const size_t sizes[] = {0, 1, 2, 14, 15, 16, 100, 4096, 65535, 65536, 65537, 200000, 1u << 20};
    uint8_t *data = malloc(1u << 20);
    for (size_t i = 0; i < N(sizes); i++) {
        for (int kind = 0; kind < 3; kind++) {
            for (size_t j = 0; j < sizes[i]; j++) {
                uint64_t r = rnd();
                /* kind 0: incompressible; 1: small alphabet; 2: long runs. */
                data[j] = kind == 0   ? (uint8_t)r
                          : kind == 1 ? (uint8_t)('a' + r % 4)
                                      : (uint8_t)((j / 1000) & 0xff);
            }
            roundtrip(data, sizes[i]);
        }
    }
    free(data);
}

/* Decode `c` with the library itself (not through rw_snappy_decompress) and check
 * it gives data[0..n) back. */
static void library_decodes(const char *c, size_t clen, const uint8_t *data, size_t n)
{
    size_t ulen = 0;
    assert_int_equal(snappy_validate_compressed_buffer(c, clen), SNAPPY_OK);
    assert_int_equal(snappy_uncompressed_length(c, clen, &ulen), SNAPPY_OK);
    assert_int_equal(ulen, n);
    char *u = malloc(n ? n : 1);
    assert_non_null(u);
    assert_int_equal(snappy_uncompress(c, clen, u, &ulen), SNAPPY_OK);
    assert_int_equal(ulen, n);
    if (n)
        assert_memory_equal(u, data, n);
    free(u);
}

/* Fill data[0..n) with one of the shapes the tests compress. */
static void fill(uint8_t *data, size_t n, int kind)
{
    uint8_t chunk[3000]; /* kind 3 repeats it with changes: copies from 2-3 KB back */
    for (size_t j = 0; j < sizeof chunk; j++)
        chunk[j] = (uint8_t)rnd();
    for (size_t j = 0; j < n; j++) {
        uint64_t r = rnd();
        /* 0: incompressible; 1: remote-write-like records; 2: small alphabet;
         * 3: a 3 KB chunk again and again, a byte changed every 1-90 bytes (matches
         * of every length 1..90 at offsets over 2048); 4: long runs */
        data[j] = kind == 0   ? (uint8_t)r
                  : kind == 1 ? (uint8_t)("__name__http_requests_total{job=\"api\",le=\"0.5\"}"[j % 45] ^
                                          (j % 97 == 0 ? (uint8_t)r : 0))
                  : kind == 2 ? (uint8_t)('a' + r % 4)
                  : kind == 3 ? (uint8_t)(chunk[j % sizeof chunk] ^ (r % 45 == 0))
                              : (uint8_t)((j / 1000) & 0xff);
    }
}

/* rw_snappy_compress works one 64 KiB block at a time with its own compressor. At
 * every size around the block edges, for every shape above, and after bytes already
 * in out: the library decodes it back to the input, it is the length varint followed
 * by each 64 KiB block compressed alone (no copy reaches across blocks), and it is at
 * most 1% (and 16 bytes) larger than the library's own output for the same input. */
static void test_blocks_against_library(void **state)
{
    (void)state;
    static const size_t sizes[] = {
        0,     1,      15,     16,     17,     100,        65535,           65536,
        65537, 131071, 131072, 131073, 200000, 3 * 65536u, 3 * 65536u + 17, (1u << 20) + 5};
    size_t max = (1u << 20) + 5;
    uint8_t *data = malloc(max);
    char *want = malloc(snappy_max_compressed_length(max));
    assert_non_null(data);
    assert_non_null(want);
    for (size_t i = 0; i < N(sizes); i++) {
        for (int kind = 0; kind < 5; kind++) {
            size_t n = sizes[i];
            fill(data, n, kind);
            size_t wlen = snappy_max_compressed_length(n);
            assert_int_equal(snappy_compress((const char *)data, n, want, &wlen), SNAPPY_OK);
            struct ss_buf whole;
            ss_buf_init(&whole, 0);
            for (int pre = 0; pre < 2; pre++) {
                struct ss_buf c;
                ss_buf_init(&c, 0);
                if (pre)
                    assert_int_equal(ss_buf_append(&c, "HD", 2), 0);
                assert_int_equal(rw_snappy_compress(data, n, &c), 0);
                size_t got = c.len - (size_t)pre * 2;
                assert_true(got <= 32 + n + n / 6); /* the format's worst case */
                if (got > wlen + wlen / 100 + 16)
                    print_message("n %zu kind %d: %zu vs %zu\n", n, kind, got, wlen);
                assert_true(got <= wlen + wlen / 100 + 16);
                library_decodes(c.data + pre * 2, got, data, n);
                if (pre) {
                    assert_memory_equal(c.data, "HD", 2);
                    assert_int_equal(got, whole.len);
                    assert_memory_equal(c.data + 2, whole.data, got);
                } else {
                    assert_int_equal(ss_buf_append(&whole, c.data, c.len), 0);
                }
                ss_buf_free(&c);
            }
            /* block by block: varint(n), then each block's elements as compressing it alone gives */
            struct ss_buf cat, one;
            ss_buf_init(&cat, 0);
            ss_buf_init(&one, 0);
            put_varint(&cat, n);
            for (size_t off = 0; off < n || off == 0; off += 65536) {
                size_t len = n - off < 65536 ? n - off : 65536;
                ss_buf_reset(&one);
                assert_int_equal(rw_snappy_compress(data + off, len, &one), 0);
                size_t vl = 1;
                while ((uint8_t)one.data[vl - 1] & 0x80)
                    vl++;
                assert_int_equal(ss_buf_append(&cat, one.data + vl, one.len - vl), 0);
                if (n == 0)
                    break;
            }
            assert_int_equal(cat.len, whole.len);
            assert_memory_equal(cat.data, whole.data, whole.len);
            ss_buf_free(&cat);
            ss_buf_free(&one);
            ss_buf_free(&whole);
        }
    }
    /* A bound that the output passes part-way: refused, and out is as it was. */
    struct ss_buf small;
    ss_buf_init(&small, 70000);
    assert_int_equal(ss_buf_append(&small, "x", 1), 0);
    for (size_t j = 0; j < 200000; j++)
        data[j] = (uint8_t)rnd();
    assert_int_equal(rw_snappy_compress(data, 200000, &small), SS_ELIMIT);
    assert_int_equal(small.len, 1);
    assert_string_equal(small.data, "x");
    ss_buf_free(&small);
    free(data);
    free(want);
}

/* Every match length from 4 to 200 at offsets from 1 to 65535, each followed by a
 * byte that breaks it: the copy forms (1-byte offset under 12 bytes and 2048 back,
 * 2-byte offset up to 64 bytes, a long match split into several) all decode with the
 * library, and the output is no larger than the library's plus 1%. */
static void test_copy_forms(void **state)
{
    (void)state;
    static const size_t offsets[] = {1, 2, 7, 100, 2047, 2048, 2049, 5000, 30000, 65000};
    size_t max = 65536u * 3;
    uint8_t *data = malloc(max);
    char *want = malloc(snappy_max_compressed_length(max));
    assert_non_null(data);
    assert_non_null(want);
    for (size_t o = 0; o < N(offsets); o++) {
        size_t off = offsets[o], n = 0;
        for (size_t j = 0; j < off && n < max; j++)
            data[n++] = (uint8_t)rnd();
        for (size_t len = 4; len <= 200 && n + len + 1 < max; len++) {
            for (size_t k = 0; k < len; k++, n++)
                data[n] = data[n - off];
            data[n] = (uint8_t)(data[n - off] + 1); /* the match ends here */
            n++;
        }
        struct ss_buf c;
        ss_buf_init(&c, 0);
        assert_int_equal(rw_snappy_compress(data, n, &c), 0);
        library_decodes(c.data, c.len, data, n);
        size_t wlen = snappy_max_compressed_length(n);
        assert_int_equal(snappy_compress((const char *)data, n, want, &wlen), SNAPPY_OK);
        if (c.len > wlen + wlen / 100 + 16)
            print_message("off %zu: %zu vs %zu\n", off, c.len, wlen);
        assert_true(c.len <= wlen + wlen / 100 + 16);
        ss_buf_free(&c);
    }
    free(data);
    free(want);
}

/* rw_snappy_compress_parts: the block of the concatenation, byte for byte what
 * rw_snappy_compress gives for it in one piece, however the input is cut into parts
 * (empty ones, one byte, parts crossing and ending on the 64 KiB block edges), with or
 * without a scratch buffer where no block spans parts; and the library decodes it. */
static void test_parts_match_whole(void **state)
{
    (void)state;
    static const char pattern[] = "job=\"api\",instance=\"10.0.0.1:9100\",le=\"0.25\"}";
    size_t max = 5 * 65536u + 333;
    uint8_t *data = malloc(max);
    assert_non_null(data);
    for (size_t j = 0; j < max; j++)
        data[j] = (uint8_t)(pattern[j % (sizeof pattern - 1)] ^ (rnd() % 50 == 0));
    static const size_t totals[] = {0, 1, 1000, 65536, 65537, 3 * 65536u, 5 * 65536u + 333};
    static struct ss_str parts[4096]; /* small parts of 1..200 bytes cover all 5 blocks */
    struct ss_buf scratch, c, want;
    ss_buf_init(&scratch, 0);
    for (size_t t = 0; t < N(totals); t++) {
        size_t n = totals[t];
        ss_buf_init(&want, 0);
        assert_int_equal(rw_snappy_compress(data, n, &want), 0);
        library_decodes(want.data, want.len, data, n);
        for (int cut = 0; cut < 6; cut++) {
            size_t np = 0, off = 0;
            while (off < n && np < N(parts) - 2) {
                size_t len = cut == 0   ? n - off                               /* one part */
                             : cut == 1 ? 65536                                 /* on the block edges */
                             : cut == 2 ? 1 + rnd() % 200                       /* small */
                             : cut == 3 ? 12288 + rnd() % 700                   /* queue segments */
                             : cut == 4 ? (np % 3 == 0 ? 0 : 1 + rnd() % 40000) /* with empty ones */
                                        : 65535 + rnd() % 3;                    /* next to the edges */
                if (len > n - off)
                    len = n - off;
                parts[np++] = (struct ss_str){(const char *)data + off, len};
                off += len;
            }
            if (off < n)
                parts[np++] = (struct ss_str){(const char *)data + off, n - off};
            parts[np++] = (struct ss_str){NULL, 0}; /* an empty part at the end */
            ss_buf_init(&c, 0);
            assert_int_equal(ss_buf_append(&c, "H", 1), 0);
            assert_int_equal(rw_snappy_compress_parts(parts, np, &scratch, &c), 0);
            assert_int_equal(c.len, want.len + 1);
            assert_memory_equal(c.data + 1, want.data, want.len);
            ss_buf_free(&c);
        }
        ss_buf_free(&want);
    }
    /* no scratch: fine while no block spans parts, refused (nothing appended) when one does */
    struct ss_str two[2] = {{(const char *)data, 65536}, {(const char *)data + 65536, 65536}};
    ss_buf_init(&c, 0);
    assert_int_equal(rw_snappy_compress_parts(two, 2, NULL, &c), 0);
    two[0].len = 100;
    two[1].p = (const char *)data + 100;
    size_t len0 = c.len;
    assert_int_equal(rw_snappy_compress_parts(two, 2, NULL, &c), SS_EINVAL);
    assert_int_equal(c.len, len0);
    ss_buf_free(&c);
    ss_buf_free(&scratch);
    free(data);
}

static void test_max_out_bound(void **state)
{
    (void)state;
    char data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 7);
    struct ss_buf c, out;
    ss_buf_init(&c, 0);
    assert_int_equal(rw_snappy_compress(data, sizeof data, &c), 0);

    /* One byte over max_out: refused, and nothing was allocated. */
    ss_buf_init(&out, 0);
    assert_int_equal(rw_snappy_decompress(c.data, c.len, sizeof data - 1, &out), SS_ELIMIT);
    assert_null(out.data);
    assert_int_equal(out.cap, 0);
    assert_int_equal(rw_snappy_decompress(c.data, c.len, sizeof data, &out), 0);
    assert_int_equal(out.len, sizeof data);
    ss_buf_free(&out);

    /* The buffer's own maximum applies too (max_out 0 = no separate bound). */
    ss_buf_init(&out, sizeof data - 1);
    assert_int_equal(rw_snappy_decompress(c.data, c.len, 0, &out), SS_ELIMIT);
    assert_null(out.data);
    ss_buf_free(&out);

    /* A 9-byte block that claims 4 GiB - 1 of output: refused on the header alone. */
    static const uint8_t liar[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 'a', 'b', 'c'};
    ss_buf_init(&out, 0);
    assert_int_equal(rw_snappy_decompress(liar, sizeof liar, 64u << 20, &out), SS_ELIMIT);
    assert_null(out.data);
    /* Claims more than 32 bits can hold: corrupt, whatever max_out says. */
    static const uint8_t too_long[] = {0x80, 0x80, 0x80, 0x80, 0x10, 0x00};
    assert_int_equal(rw_snappy_decompress(too_long, sizeof too_long, 0, &out), SS_EPARSE);
    assert_null(out.data);
    ss_buf_free(&out);
    ss_buf_free(&c);
}

static void test_append_and_edges(void **state)
{
    (void)state;
    struct ss_buf c, d;
    ss_buf_init(&c, 0);
    ss_buf_init(&d, 0);
    /* Empty input compresses to the one-byte block "length 0". */
    assert_int_equal(rw_snappy_compress("", 0, &c), 0);
    assert_int_equal(c.len, 1);
    assert_int_equal(c.data[0], 0);
    assert_int_equal(rw_snappy_decompress(c.data, c.len, 0, &d), 0);
    assert_int_equal(d.len, 0);
    /* No input at all is not a block. */
    assert_int_equal(rw_snappy_decompress("", 0, 0, &d), SS_EPARSE);

    /* Both directions append. */
    ss_buf_reset(&c);
    assert_int_equal(ss_buf_append(&c, "HDR", 3), 0);
    assert_int_equal(rw_snappy_compress("hello hello hello hello", 23, &c), 0);
    assert_memory_equal(c.data, "HDR", 3);
    ss_buf_reset(&d);
    assert_int_equal(ss_buf_append(&d, "pre:", 4), 0);
    assert_int_equal(rw_snappy_decompress(c.data + 3, c.len - 3, 0, &d), 0);
    assert_string_equal(d.data, "pre:hello hello hello hello");

    /* out->max below the worst case but above the real output still works. */
    char zeros[100000] = {0};
    size_t worst = 32 + sizeof zeros + sizeof zeros / 6;
    struct ss_buf small;
    ss_buf_init(&small, 10000);
    assert_true(small.max < worst);
    assert_int_equal(rw_snappy_compress(zeros, sizeof zeros, &small), 0);
    assert_true(small.len < 10000);
    ss_buf_reset(&d);
    assert_int_equal(rw_snappy_decompress(small.data, small.len, sizeof zeros, &d), 0);
    assert_int_equal(d.len, sizeof zeros);
    ss_buf_free(&small);
    /* ... and when the real output does not fit, nothing is appended. */
    ss_buf_init(&small, 20);
    assert_int_equal(ss_buf_append(&small, "x", 1), 0);
    assert_int_equal(rw_snappy_compress(zeros, sizeof zeros, &small), SS_ELIMIT);
    assert_int_equal(small.len, 1);
    ss_buf_free(&small);

    assert_int_equal(rw_snappy_compress(NULL, 5, &c), SS_EINVAL);
    assert_int_equal(rw_snappy_decompress(NULL, 5, 0, &d), SS_EINVAL);
    ss_buf_free(&c);
    ss_buf_free(&d);
}

/* Every single-byte corruption of a small valid block: decoded or refused, never a
 * crash or an over-long result (ASan builds make this meaningful). */
static void test_byte_flips(void **state)
{
    (void)state;
    const char *text = "remote write remote write remote write: snappy block format, "
                       "labels and samples, labels and samples";
    struct ss_buf c, d;
    ss_buf_init(&c, 0);
    ss_buf_init(&d, 0);
    assert_int_equal(rw_snappy_compress(text, strlen(text), &c), 0);
    size_t nrefused = 0;
    for (size_t i = 0; i < c.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            c.data[i] = (char)(c.data[i] ^ (1 << bit));
            ss_buf_reset(&d);
            int rc = rw_snappy_decompress(c.data, c.len, 4096, &d);
            assert_true(rc == 0 || rc == SS_EPARSE || rc == SS_ELIMIT);
            if (rc == 0) {
                assert_true(d.len <= 4096);
            } else {
                nrefused++;
                assert_int_equal(d.len, 0);
            }
            c.data[i] = (char)(c.data[i] ^ (1 << bit));
        }
    }
    assert_true(nrefused > 0);
    ss_buf_free(&c);
    ss_buf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_pair),
        cmocka_unit_test(test_google_testdata_roundtrip),
        cmocka_unit_test(test_baddata_rejected),
        cmocka_unit_test(test_golang_decode_vectors),
        cmocka_unit_test(test_golang_emit_vectors_decode),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_blocks_against_library),
        cmocka_unit_test(test_copy_forms),
        cmocka_unit_test(test_parts_match_whole),
        cmocka_unit_test(test_max_out_bound),
        cmocka_unit_test(test_append_and_edges),
        cmocka_unit_test(test_byte_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
