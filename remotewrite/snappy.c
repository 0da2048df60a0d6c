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
#include <stdlib.h>

#include "remotewrite.h"

int rw_snappy_compress(const void *in, size_t n, struct ss_buf *out)
{
    char *tmp = NULL;
    int rc;
    if (!out || (n && !in))
        return SS_EINVAL;
    /* The format stores the uncompressed length as a 32-bit varint. */
    if (n > UINT32_MAX)
        return SS_ELIMIT;

    size_t bound = snappy_max_compressed_length(n);
    size_t clen = bound;
    rc = ss_buf_reserve(out, bound);
    if (rc == 0) {
        if (snappy_compress(in, n, out->data + out->len, &clen) != SNAPPY_OK)
            return SS_EINVAL; /* only possible if the bound were wrong */
        out->len += clen;
        out->data[out->len] = '\0';
        return 0;
    }
    if (rc != SS_ELIMIT)
        return rc;
    /* out->max leaves less room than the worst case, but the real output may still
     * fit: compress aside, then let ss_buf_append enforce the maximum. */
    tmp = malloc(bound);
    if (!tmp)
        return SS_ENOMEM;
    if (snappy_compress(in, n, tmp, &clen) != SNAPPY_OK) {
        rc = SS_EINVAL;
        goto fail;
    }
    rc = ss_buf_append(out, tmp, clen);
fail:
    free(tmp);
    return rc;
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
