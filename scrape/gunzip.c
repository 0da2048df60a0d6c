/* gunzip.c: gzip scrape bodies, decompressed by the engine rather than by libcurl.
 *
 * Whole-buffer (libdeflate): a body that arrived complete is decompressed in one call
 * into one output buffer that the scrape manager owns and reuses for every target
 * (there is one scrape thread). libdeflate inflates about 3x faster than zlib's
 * streaming inflate on exposition bodies (bench/micro_gzip.c, issue #12). It needs
 * the output size up front: the gzip trailer's ISIZE is the hint, and the buffer
 * doubles up to the caller's maximum, so a gzip bomb costs at most `max_out` bytes and
 * log2(max_out / hint) extra passes, then fails with SS_ELIMIT.
 *
 * Streaming (zlib): big bodies (the engine decides: GZ_STREAM_AT, GZ_WHOLE_PREFER)
 * are inflated in 64 KiB pieces as they arrive, so memory stays bounded whatever the
 * body size.
 *
 * Both decode every member of a multi-member body (RFC 1952 §2.2: "a gzip file
 * consists of a series of members"), as Go's gzip.Reader does for Prometheus;
 * anything after a member that is not another member is an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "scrape_int.h"

/* A bigger output buffer is given back after use instead of kept for the next body
 * (the engine inflates whole only bodies of up to 2 MB plain, engine.c
 * GZ_WHOLE_PREFER; a larger one got here when its gzip trailer understated it). */
#define GUNZIP_KEEP_BYTES (2u << 20)
#define GUNZIP_MIN_BYTES  (64u << 10)
#define GZSTREAM_CHUNK    (64u << 10)

struct scrape_gunzip {
    struct libdeflate_decompressor *d;
    char *out;
    size_t cap;
};

int scrape_gunzip_new(struct scrape_gunzip **out)
{
    *out = NULL;
    struct scrape_gunzip *g = calloc(1, sizeof *g);
    if (!g || !(g->d = libdeflate_alloc_decompressor())) {
        free(g);
        return SS_ENOMEM;
    }
    *out = g;
    return 0;
}

void scrape_gunzip_free(struct scrape_gunzip *g)
{
    if (!g)
        return;
    libdeflate_free_decompressor(g->d);
    free(g->out);
    free(g);
}

static int gunzip_grow(struct scrape_gunzip *g, size_t want)
{
    if (want <= g->cap)
        return 0;
    char *n = realloc(g->out, want);
    if (!n)
        return SS_ENOMEM;
    g->out = n;
    g->cap = want;
    return 0;
}

uint32_t scrape_gunzip_isize(const void *in, size_t len)
{
    if (len < 18) /* 10-byte header + 8-byte trailer */
        return 0;
    const unsigned char *p = (const unsigned char *)in + len - 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int scrape_gunzip_whole(struct scrape_gunzip *g, const void *in, size_t len, size_t max_out, const char **out,
                        size_t *out_len, const char **why)
{
    const unsigned char *p = in;
    size_t done = 0, off = 0;
    *out = NULL;
    *out_len = 0;
    *why = NULL;
    if (len < 18) { /* 10-byte header + 8-byte trailer: shorter is never valid */
        *why = "truncated (shorter than a gzip header and trailer)";
        return SS_EINVAL;
    }
    size_t hint = scrape_gunzip_isize(in, len);
    size_t want = hint < GUNZIP_MIN_BYTES ? GUNZIP_MIN_BYTES : hint;
    if (want > max_out)
        want = max_out;
    int rc = gunzip_grow(g, want);
    if (rc)
        return rc;
    while (off < len) {
        size_t in_used = 0, got = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(g->d, p + off, len - off, g->out + done,
                                                                 g->cap - done, &in_used, &got);
        if (r == LIBDEFLATE_SUCCESS) {
            off += in_used;
            done += got;
            continue;
        }
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE) {
            *why = off ? "corrupt or truncated data after the first member" : "corrupt or truncated data";
            return SS_EINVAL;
        }
        if (g->cap >= max_out) {
            *why = "decompressed body larger than the limit";
            return SS_ELIMIT;
        }
        /* The member did not fit: double (up to max_out) and inflate it again. */
        size_t next = g->cap > max_out / 2 ? max_out : g->cap * 2;
        if ((rc = gunzip_grow(g, next)))
            return rc;
    }
    *out = g->out;
    *out_len = done;
    return 0;
}

void scrape_gunzip_release(struct scrape_gunzip *g)
{
    if (g->cap > GUNZIP_KEEP_BYTES) {
        free(g->out);
        g->out = NULL;
        g->cap = 0;
    }
}

struct scrape_gzstream {
    z_stream z;
    bool member_done; /* the last member ended exactly at the end of the input so far */
};

int scrape_gzstream_new(struct scrape_gzstream **out)
{
    *out = NULL;
    struct scrape_gzstream *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    if (inflateInit2(&s->z, 15 + 16) != Z_OK) { /* 15-bit window, gzip wrapper only */
        free(s);
        return SS_ENOMEM;
    }
    *out = s;
    return 0;
}

void scrape_gzstream_free(struct scrape_gzstream *s)
{
    if (!s)
        return;
    inflateEnd(&s->z);
    free(s);
}

int scrape_gzstream_feed(struct scrape_gzstream *s, const void *in, size_t len, scrape_gz_sink sink, void *ud,
                         const char **why)
{
    char out[GZSTREAM_CHUNK];
    const unsigned char *p = in;
    *why = NULL;
    while (len > 0) {
        if (s->member_done) { /* more input after a member: the next member */
            inflateReset(&s->z);
            s->member_done = false;
        }
        uInt take = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
        s->z.next_in = (unsigned char *)(uintptr_t)p;
        s->z.avail_in = take;
        int zr = Z_OK;
        while (s->z.avail_in > 0 && zr != Z_STREAM_END) {
            s->z.next_out = (unsigned char *)out;
            s->z.avail_out = sizeof out;
            zr = inflate(&s->z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                *why = s->z.msg ? s->z.msg : "corrupt data";
                return SS_EINVAL;
            }
            size_t got = sizeof out - s->z.avail_out;
            if (got) {
                int rc = sink(ud, out, got);
                if (rc)
                    return rc;
            }
            if (zr == Z_BUF_ERROR && got == 0)
                break; /* needs more input */
        }
        size_t used = take - s->z.avail_in;
        p += used;
        len -= used;
        if (zr == Z_STREAM_END)
            s->member_done = true;
        else if (used == 0) { /* cannot happen with a fresh output buffer; never spin */
            *why = "inflate made no progress";
            return SS_EINVAL;
        }
    }
    return 0;
}

int scrape_gzstream_finish(struct scrape_gzstream *s, const char **why)
{
    *why = NULL;
    if (!s->member_done) {
        *why = "truncated data";
        return SS_EINVAL;
    }
    return 0;
}
