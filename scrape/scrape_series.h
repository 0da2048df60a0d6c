/* scrape_series.h: what a scrape hands downstream, and nothing else.
 *
 * The series and metadata types a sink receives (struct scrape_series, struct
 * scrape_parsed_meta) and the metric types they name. It is the one scrape header a
 * sibling stage may include (remotewrite encodes these), so it holds types only: no
 * function, so including it never makes a stage link the scrape module. Depends only
 * on common/ss.h; scrape.h includes it.
 */
#ifndef SCRAPE_SERIES_H
#define SCRAPE_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "ss.h"

enum scrape_metric_type {
    SCRAPE_TYPE_UNKNOWN = 0, /* "untyped" in 0.0.4, "unknown" in OpenMetrics */
    SCRAPE_TYPE_COUNTER,
    SCRAPE_TYPE_GAUGE,
    SCRAPE_TYPE_HISTOGRAM,
    SCRAPE_TYPE_GAUGEHISTOGRAM,
    SCRAPE_TYPE_SUMMARY,
    SCRAPE_TYPE_INFO,
    SCRAPE_TYPE_STATESET,
};

enum scrape_meta_kind { SCRAPE_META_HELP, SCRAPE_META_TYPE, SCRAPE_META_UNIT };

/* One TYPE, HELP or UNIT line as parsed. Slices are valid only during the callback
 * that receives it. */
struct scrape_parsed_meta {
    enum scrape_meta_kind kind;
    struct ss_str family;
    struct ss_str text;           /* HELP text unescaped, UNIT text; empty for TYPE */
    enum scrape_metric_type type; /* for TYPE */
    uint32_t line;
};

/* One sample as it leaves the scrape module: final labels (sorted by name, __name__
 * included, job/instance/target labels merged, metric relabeling applied), value and
 * timestamp. Stale markers carry the StaleNaN bit pattern (scrape_is_stale_nan in
 * scrape.h). */
struct scrape_series {
    const struct ss_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms;
    uint64_t hash; /* stable identity of the series: ss_labels_hash of the labels before
                    * external labels (which every series shares), folded to 32 bits by
                    * the series table; the same for every sample of a series */
    /* Optional (NULL when absent): labels[0..nlabels) already in the remote-write wire
     * form (ss_labels_wire_write: one TimeSeries.labels field per label, in order), in
     * one piece (with external labels merged in). A sink may copy these bytes instead
     * of encoding the labels again. Valid only during the call, like labels.
     * wire_labels_len is their length, or that of wire_parts' pieces together. */
    const void *wire_labels;
    size_t wire_labels_len;
    /* Optional (0 when absent): ss_labels_group_hash(labels, nlabels), which the scrape
     * module often knows without hashing (the series before had the same values). */
    uint64_t group;
    /* Optional: a small value (1..SCRAPE_HINT_MAX; 0 = none yet) that a sink derived
     * from these labels alone and asked the scrape module to keep with the series
     * (remote write: which of a family's queues the series takes), so it need not
     * derive it from the labels again. A sink that wants one stored writes it to
     * *hint_out (NULL: nothing is kept for this series, e.g. the synthetic series);
     * the scrape module stores it after the call and hands it back with the series'
     * next samples. Every sink that uses it must derive the same value from the same
     * labels. */
    uint8_t hint;
    uint8_t *hint_out;
    /* Optional, in place of wire_labels (then NULL): the same bytes in pieces,
     * wire_parts[0..nwire_parts), one per label in order, wire_labels_len bytes in all,
     * where the series table keeps them; a sink copies them into its own buffer without
     * the scrape module putting them together first. Valid only during the call. */
    const struct ss_str *wire_parts;
    size_t nwire_parts;
};

#define SCRAPE_HINT_MAX 31

#endif
