/* scrape_int.h: declarations shared by the scrape module's own files, not public. */
#ifndef SCRAPE_INT_H
#define SCRAPE_INT_H

#include "scrape.h"

/* The result of turning one discovered address into a scrape target, as Prometheus'
 * PopulateLabels does. */
struct scrape_target_spec {
    struct ss_labels labels; /* final target labels: sorted, no "__" names */
    /* The Kubernetes resource attributes the OpenTelemetry prometheus receiver derives
     * from the target's discovered labels (k8s.pod.name, ...), see scrape_report. */
    struct ss_labels resource;
    struct ss_buf url; /* scheme://address/path?params */
    int64_t interval_ms;
    int64_t timeout_ms;
    uint64_t identity; /* hash of everything that makes two targets the same */
    uint64_t series_identity; /* the same without the timing: what its series are */
};

void scrape_target_spec_init(struct scrape_target_spec *s);
void scrape_target_spec_free(struct scrape_target_spec *s);

/* Build the target for address `addr` in group `g` of job `job`. Returns 1 when the
 * target is kept, 0 when relabeling dropped it, or a negative ss_err with a message
 * in err (no address after relabeling, bad scheme, timeout > interval, ...). */
int scrape_target_populate(const struct scrape_job *job, const struct scrape_target_group *g,
                           const char *addr, struct scrape_target_spec *out, char *err, size_t errlen);

/* gunzip.c: gzip bodies. Whole-buffer (libdeflate) into one reused buffer: */
struct scrape_gunzip;
int scrape_gunzip_new(struct scrape_gunzip **out);
void scrape_gunzip_free(struct scrape_gunzip *g); /* NULL: no-op */
/* Decompress every member of in[0..len) into g's buffer, at most max_out bytes. 0:
 * *out (len *out_len) is valid until the next call or scrape_gunzip_release;
 * SS_ELIMIT: the plain body is longer than max_out; SS_EINVAL: not valid gzip (*why
 * says how); SS_ENOMEM. */
int scrape_gunzip_whole(struct scrape_gunzip *g, const void *in, size_t len, size_t max_out, const char **out,
                        size_t *out_len, const char **why);
/* The plain size a gzip body's trailer gives (ISIZE of its last member: the whole
 * size for the usual single member, mod 2^32); 0 when it is too short to be gzip. */
uint32_t scrape_gunzip_isize(const void *in, size_t len);
/* The output is no longer used: a buffer above 16 MiB is given back. */
void scrape_gunzip_release(struct scrape_gunzip *g);

/* Streaming (zlib), for bodies too big for the whole buffer. The sink gets the plain
 * bytes in pieces; a non-zero return stops the feed and is returned. */
typedef int (*scrape_gz_sink)(void *ud, const char *p, size_t n);
struct scrape_gzstream;
int scrape_gzstream_new(struct scrape_gzstream **out);
void scrape_gzstream_free(struct scrape_gzstream *s); /* NULL: no-op */
int scrape_gzstream_feed(struct scrape_gzstream *s, const void *in, size_t len, scrape_gz_sink sink, void *ud,
                         const char **why);
/* SS_EINVAL when the body ended inside a member. */
int scrape_gzstream_finish(struct scrape_gzstream *s, const char **why);

/* engine.c, for tests: the bytes of the compressed-body buffers the manager keeps
 * between scrapes (its spares). */
size_t scrape_manager_gz_spare_bytes(const struct scrape_manager *m);
/* The width of the slots small targets start on, for an interval and the number of
 * targets on slots (engine.c, move_to_slot). */
int64_t scrape_slot_width(int64_t interval_ms, size_t nslotted);
/* Whether n targets use the libcurl connection caches (share objects) rather than the
 * multi handle's one cache, given whether they do now (engine.c, conn_share_of). */
bool scrape_conn_shares_on(bool on, size_t ntargets);

/* Tests: how many dropped-series texts the targets' scrape caches hold. */
size_t scrape_manager_dropped_cached(const struct scrape_manager *m);
#endif
