/* snappy.c: snappy block-format compression for remote-write bodies.
 *
 * Remote-write 1.0 requires the snappy *block* format ("The block format MUST be
 * used - the framed format MUST NOT be used"): a varint of the uncompressed length,
 * then literal/copy elements. This file wraps the reference library's C API
 * (snappy-c.h) so that both directions append to a bounded ss_buf, and so that a
 * hostile block cannot make us allocate more than the caller allows: the declared
 * length is read and checked before any memory is reserved.
 */
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remotewrite.h"

/* snappy compresses in blocks of 64 KiB (snappy.cc, kBlockSize), each with its own hash
 * table, and no copy reaches back into an earlier block. So a body's compressed form
 * is the varint of its length followed by each block's elements as compressing that
 * block alone gives them: compressed here block by block, the output is the library's
 * byte for byte (tested), while `out` needs room for one block's worst case at a time
 * instead of the whole body's (1 MB for a batch of 2000 kube-state-metrics series). */
#define SNAPPY_BLOCK 65536u

static size_t varint_len(size_t v)
{
    size_t k = 1;
    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

/* Append the compressed form of in[0..n), n <= SNAPPY_BLOCK, with its length varint
 * (skip_varint: without it). */
static int compress_block(const char *in, size_t n, bool skip_varint, struct ss_buf *out)
{
    size_t bound = snappy_max_compressed_length(n), clen = bound, vl = skip_varint ? varint_len(n) : 0;
    int rc = ss_buf_reserve(out, bound);
    if (rc == 0 && out->len >= vl) {
        /* snappy writes the block's varint first: let it land on the last vl bytes
         * already written, then put those back, so the elements land in place */
        char *at = out->data + out->len - vl, keep[8];
        memcpy(keep, at, vl);
        if (snappy_compress(in, n, at, &clen) != SNAPPY_OK)
            return SS_EINVAL; /* only possible if the bound were wrong */
        memcpy(at, keep, vl);
        out->len += clen - vl;
        out->data[out->len] = '\0';
        return 0;
    }
    if (rc && rc != SS_ELIMIT)
        return rc;
    /* out->max leaves less room than the worst case, but the real output may still
     * fit: compress aside, then let ss_buf_append enforce the maximum. */
    char *tmp = malloc(bound);
    if (!tmp)
        return SS_ENOMEM;
    rc =
        snappy_compress(in, n, tmp, &clen) == SNAPPY_OK ? ss_buf_append(out, tmp + vl, clen - vl) : SS_EINVAL;
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
        uint8_t v[8];
        size_t k = 0;
        for (size_t x = n; x >= 0x80; x >>= 7)
            v[k++] = (uint8_t)(x | 0x80);
        v[k] = (uint8_t)(n >> (7 * k));
        rc = ss_buf_append(out, v, k + 1);
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
