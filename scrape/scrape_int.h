/* scrape_int.h: declarations shared by the scrape module's own files, not public. */
#ifndef SCRAPE_INT_H
#define SCRAPE_INT_H

#include "scrape.h"

/* The result of turning one discovered address into a scrape target, as Prometheus'
 * PopulateLabels does. */
struct scrape_target_spec {
    struct ss_labels labels; /* final target labels: sorted, no "__" names */
    struct ss_buf url;       /* scheme://address/path?params */
    int64_t interval_ms;
    int64_t timeout_ms;
    uint64_t identity; /* hash of everything that makes two targets the same */
};

void scrape_target_spec_init(struct scrape_target_spec *s);
void scrape_target_spec_free(struct scrape_target_spec *s);

/* Build the target for address `addr` in group `g` of job `job`. Returns 1 when the
 * target is kept, 0 when relabeling dropped it, or a negative ss_err with a message
 * in err (no address after relabeling, bad scheme, timeout > interval, ...). */
int scrape_target_populate(const struct scrape_job *job, const struct scrape_target_group *g,
                           const char *addr, struct scrape_target_spec *out, char *err, size_t errlen);

#endif
