/* snappy.c: snappy block-format compression for remote-write bodies.
 *
 * Remote-write 1.0 requires the snappy *block* format ("The block format MUST be
 * used - the framed format MUST NOT be used"): a varint of the uncompressed length,
 * then literal/copy elements. Both directions append to a bounded ss_buf. Compression
 * is our own (below); decompression wraps the reference library's C API (snappy-c.h)
 * so that a hostile block cannot make us allocate more than the caller allows: the
 * declared length is read and checked before any memory is reserved.
 */
#include <assert.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote_int.h"
#include "remotewrite.h"

/* Compression is done here, one block of at most 64 KiB at a time, each with its own
 * hash table, as the library does: no copy reaches back into an earlier block, so a
 * body's compressed form is the varint of its length followed by each block's
 * elements, and `out` needs room for one block's worst case at a time instead of the
 * whole body's (1 MB for a batch of 2000 kube-state-metrics series). Decompression
 * stays the library's, which checks every element of a block from outside.
 *
 * Why not the library's compressor: Debian's libsnappy.a, which the binary links to
 * keep libstdc++ out of the sidecar's RSS (CMakeLists.txt), compresses remote-write
 * requests at 146-164 ns per 166-byte sample where libsnappy.so takes 96 on the same
 * bytes (README, Performance: the fourteenth pass); snappy was 30% of scrapeship's CPU
 * on 1k-series targets. This compressor takes 84-90 ns on those bytes (97 in place),
 * and its output is checked against the library: the library decodes it back to the input, on the
 * corpus and on random and remote-write-shaped data, and it is at most 1% larger
 * (tests/unit/remotewrite/test_snappy.c, and fuzz_wire_decode round trips). */
#define SNAPPY_BLOCK 65536u

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Multiplicative hashing of 4 input bytes to the top 32 - shift bits of the product.
 * The multiplier is the one snappy's reference compressor uses: with it both find the
 * same matches, and output sizes come out equal to the library's on the corpus and on
 * the tests' periodic inputs, where other good multipliers were up to 10% larger on
 * one shape or another (remote-write requests: within 0.1% with all of them). */
static inline uint32_t hash4(uint32_t v, int shift)
{
    return (v * 0x1e35a7bdu) >> shift;
}

/* How many bytes a[] and b[] have in common, b[] ending at end; a < b. */
static inline size_t common_len(const uint8_t *a, const uint8_t *b, const uint8_t *end)
{
    size_t m = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (b + m + 8 <= end) { /* the first differing byte is the lowest set byte */
        uint64_t x = load64(a + m) ^ load64(b + m);
        if (x)
            return m + ((size_t)__builtin_ctzll(x) >> 3);
        m += 8;
    }
#endif
    while (b + m < end && a[m] == b[m])
        m++;
    return m;
}

/* A literal element (format_description.txt, 2.1): its length less one in the tag's
 * upper six bits below 60, else in the 1-4 bytes that follow. `spare16`: 16 bytes can
 * be read at lit and written at out, so a short literal is one fixed-size copy. */
static inline uint8_t *emit_literal(uint8_t *out, const uint8_t *lit, size_t len, bool spare16)
{
    assert(len >= 1);
    size_t n = len - 1;
    if (n < 60) {
        *out++ = (uint8_t)(n << 2);
        if (spare16 && len <= 16) {
            memcpy(out, lit, 16);
            return out + len;
        }
    } else {
        int k = n < (1u << 8) ? 1 : n < (1u << 16) ? 2 : n < (1u << 24) ? 3 : 4;
        *out++ = (uint8_t)((59 + k) << 2);
        for (int i = 0; i < k; i++)
            *out++ = (uint8_t)(n >> (8 * i));
    }
    memcpy(out, lit, len);
    return out + len;
}

/* A copy of len >= 4 bytes from off (1..65535) bytes back (2.2): 2-byte-offset
 * elements carry up to 64 bytes, so a long match takes several; what is left for the
 * last one is 4..64 bytes, and under 12 bytes with an offset under 2048 it fits the
 * 1-byte-offset form. */
static inline uint8_t *emit_copy2(uint8_t *out, size_t off, size_t len) /* len 1..64 */
{
    out[0] = (uint8_t)(2 | ((len - 1) << 2));
    out[1] = (uint8_t)off;
    out[2] = (uint8_t)(off >> 8);
    return out + 3;
}

static inline uint8_t *emit_copy(uint8_t *out, size_t off, size_t len)
{
    assert(off >= 1 && off <= 65535 && len >= 4);
    for (; len >= 68; len -= 64)
        out = emit_copy2(out, off, 64);
    if (len > 64) { /* 65..67: 60 now leaves 5..7, which a 1- or 2-byte form takes */
        out = emit_copy2(out, off, 60);
        len -= 60;
    }
    if (len < 12 && off < 2048) {
        out[0] = (uint8_t)(1 | ((len - 4) << 2) | ((off >> 8) << 5));
        out[1] = (uint8_t)off;
        return out + 2;
    }
    return emit_copy2(out, off, len);
}

/* The last 15 bytes of a block are never searched: every 4- and 8-byte load below
 * stays inside the input, and the 16-byte literal copies too. */
#define INPUT_MARGIN 15

/* The elements of in[0..n), n <= SNAPPY_BLOCK, written at out, which has room for
 * snappy_max_compressed_length(n) bytes; returns how many were written.
 *
 * Greedy LZ77 over a hash table of the positions of 4-byte sequences. Where nothing
 * matches, the step between probes grows by one byte every 32 misses, so
 * incompressible input is crossed quickly; after a match the positions just before
 * and at its end are hashed and the latter tried at once, as series records repeat
 * long runs (label names, a target's labels) back to back. */
static size_t compress_elements(const uint8_t *in, size_t n, uint8_t *out)
{
    const uint8_t *ip = in, *end = in + n, *next_emit = in;
    uint8_t *op = out;
    if (n >= INPUT_MARGIN + 1) {
        int bits = 8;
        while (bits < 14 && ((size_t)1 << bits) < n)
            bits++;
        const int shift = 32 - bits;
        uint16_t table[1 << 14]; /* offsets from in; 0 also stands for "none" (in[0] is checked) */
        memset(table, 0, sizeof table[0] << bits);
        const uint8_t *limit = end - INPUT_MARGIN;
        uint32_t next_hash = hash4(load32(++ip), shift);
        for (;;) {
            uint32_t skip = 32;
            const uint8_t *next_ip = ip, *cand;
            do {
                ip = next_ip;
                uint32_t h = next_hash, step = skip >> 5;
                skip += step;
                next_ip = ip + step;
                if (next_ip > limit)
                    goto tail;
                next_hash = hash4(load32(next_ip), shift);
                cand = in + table[h];
                table[h] = (uint16_t)(ip - in);
            } while (load32(ip) != load32(cand));
            op = emit_literal(op, next_emit, (size_t)(ip - next_emit), true);
            uint32_t at;
            do {
                size_t len = 4 + common_len(cand + 4, ip + 4, end);
                op = emit_copy(op, (size_t)(ip - cand), len);
                ip += len;
                next_emit = ip;
                if (ip >= limit)
                    goto tail;
                uint64_t v = load64(ip - 1);
                table[hash4((uint32_t)v, shift)] = (uint16_t)(ip - 1 - in);
                uint32_t h = hash4((uint32_t)(v >> 8), shift);
                cand = in + table[h];
                table[h] = (uint16_t)(ip - in);
                at = (uint32_t)(v >> 8);
            } while (at == load32(cand));
            next_hash = hash4(load32(++ip), shift);
        }
    }
tail:
    if (next_emit < end)
        op = emit_literal(op, next_emit, (size_t)(end - next_emit), false);
    return (size_t)(op - out);
}

/* Append the compressed form of in[0..n), n <= SNAPPY_BLOCK, with its length varint
 * (skip_varint: without it). */
static int compress_block(const char *in, size_t n, bool skip_varint, struct ss_buf *out)
{
    size_t bound = snappy_max_compressed_length(n);
    uint8_t v[5];
    size_t vl = skip_varint ? 0 : (size_t)(rw_put_varint(v, n) - v);
    int rc = ss_buf_reserve(out, vl + bound);
    if (rc == 0) {
        uint8_t *at = (uint8_t *)out->data + out->len;
        memcpy(at, v, vl);
        out->len += vl + compress_elements((const uint8_t *)in, n, at + vl);
        out->data[out->len] = '\0';
        return 0;
    }
    if (rc != SS_ELIMIT)
        return rc;
    /* out->max leaves less room than the worst case, but the real output may still
     * fit: compress aside, then let ss_buf_append enforce the maximum. */
    uint8_t *tmp = malloc(vl + bound);
    if (!tmp)
        return SS_ENOMEM;
    memcpy(tmp, v, vl);
    size_t clen = vl + compress_elements((const uint8_t *)in, n, tmp + vl);
    rc = ss_buf_append(out, tmp, clen);
    free(tmp);
    return rc;
}

int rw_snappy_compress_parts(const struct ss_str *parts, size_t nparts, struct ss_buf *scratch,
                             struct ss_buf *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len && !parts[i].p)
            return SS_EINVAL;
        n += parts[i].len;
    }
    if (!out)
        return SS_EINVAL;
    /* The format stores the uncompressed length as a 32-bit varint. */
    if (n > UINT32_MAX)
        return SS_ELIMIT;
    if (n == 0)
        return compress_block("", 0, false, out);
    size_t len0 = out->len, i = 0, at = 0; /* the next byte: parts[i].p[at] */
    int rc = 0;
    if (n > SNAPPY_BLOCK) {
        uint8_t v[5];
        rc = ss_buf_append(out, v, (size_t)(rw_put_varint(v, n) - v));
    }
    for (size_t off = 0; !rc && off < n; off += SNAPPY_BLOCK) {
        size_t len = n - off < SNAPPY_BLOCK ? n - off : SNAPPY_BLOCK;
        while (i < nparts && at == parts[i].len) /* skip what is used up (and empty parts) */
            i++, at = 0;
        const char *block;
        if (parts[i].len - at >= len) { /* within one part: compressed in place */
            block = parts[i].p + at;
            at += len;
        } else { /* across parts: gathered into scratch first */
            if (!scratch) {
                rc = SS_EINVAL;
                break;
            }
            ss_buf_reset(scratch);
            if ((rc = ss_buf_reserve(scratch, len)))
                break;
            for (size_t got = 0; got < len;) {
                while (at == parts[i].len)
                    i++, at = 0;
                size_t take = parts[i].len - at < len - got ? parts[i].len - at : len - got;
                memcpy(scratch->data + got, parts[i].p + at, take);
                got += take;
                at += take;
            }
            block = scratch->data;
        }
        rc = compress_block(block, len, n > SNAPPY_BLOCK, out);
    }
    if (rc && out->data) { /* nothing appended after all */
        out->len = len0;
        out->data[len0] = '\0';
    }
    return rc;
}

int rw_snappy_compress(const void *in, size_t n, struct ss_buf *out)
{
    if (n && !in)
        return SS_EINVAL;
    struct ss_str one = {in, n};
    return rw_snappy_compress_parts(&one, 1, NULL, out);
}

int rw_snappy_decompress(const void *in, size_t n, size_t max_out, struct ss_buf *out)
{
    size_t ulen;
    if (!out || (n && !in))
        return SS_EINVAL;
    /* Reads only the length header: rejects a missing, overlong or >32-bit varint. */
    if (snappy_uncompressed_length(in, n, &ulen) != SNAPPY_OK)
        return SS_EPARSE;
    if (max_out && ulen > max_out)
        return SS_ELIMIT;
    int rc = ss_buf_reserve(out, ulen);
    if (rc)
        return rc;
    size_t got = ulen;
    /* snappy_uncompress checks every element against the input and output bounds and
     * fails unless the output comes to exactly the declared length. */
    if (snappy_uncompress(in, n, out->data + out->len, &got) != SNAPPY_OK || got != ulen) {
        out->data[out->len] = '\0';
        return SS_EPARSE;
    }
    out->len += ulen;
    out->data[out->len] = '\0';
    return 0;
}
