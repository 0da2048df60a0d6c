/* wire.c: the Prometheus remote-write 1.0 protobuf body, encoded by hand and decoded
 * with protobuf-c.
 *
 * The encoder is on the hot path: every scraped sample goes through it. It appends one
 * WriteRequest record per call straight into an ss_buf, in two passes over the labels:
 * the first computes exact sizes (protobuf prefixes every sub-message with its length,
 * so sizes must be known before writing), the second writes tags, varints and string
 * bytes with no intermediate message objects and no allocation beyond growing the
 * buffer once. Its output is byte-identical to protobuf-c's pack of the same message
 * (tests/unit/remotewrite/test_wire.c checks this), which means proto3 default values
 * are left out exactly as protobuf-c and Go's prompb leave them out.
 *
 * The decoder is for tests and disk-queue replay, where speed matters less than being
 * an independent implementation: it uses the code protoc-c generates from remote.proto
 * and lays the result out as flat, borrowed ss_label/rw_sample arrays.
 */
#include <stdlib.h>
#include <string.h>

#include "remote.pb-c.h"
#include "remote_int.h"
#include "remotewrite.h"
#include "sstext.h"

/* Protobuf wire types (encoding guide, "Message Structure"). */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };
#define TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/* Field tags used by the encoder; numbers from remote.proto. */
#define TAG_WRITEREQ_TIMESERIES TAG(1, WT_LEN)
#define TAG_WRITEREQ_METADATA   TAG(3, WT_LEN)
#define TAG_SERIES_LABEL        TAG(1, WT_LEN)
#define TAG_SERIES_SAMPLE       TAG(2, WT_LEN)
#define TAG_LABEL_NAME          TAG(1, WT_LEN)
#define TAG_LABEL_VALUE         TAG(2, WT_LEN)
#define TAG_SAMPLE_VALUE        TAG(1, WT_I64)
#define TAG_SAMPLE_TIMESTAMP    TAG(2, WT_VARINT)
#define TAG_META_TYPE           TAG(1, WT_VARINT)
#define TAG_META_FAMILY         TAG(2, WT_LEN)
#define TAG_META_HELP           TAG(4, WT_LEN)
#define TAG_META_UNIT           TAG(5, WT_LEN)

double rw_stale_nan(void)
{
    uint64_t bits = RW_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

bool rw_is_stale_nan(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == RW_STALE_NAN_BITS;
}

/* ---- sizes --------------------------------------------------------------- */

/* Bytes of the base-128 varint of v: 1 for 0..127, up to 10 for values with bit 63
 * set (negative int64 timestamps are sign-extended to 64 bits, as protobuf requires). */
static inline size_t varint_size(uint64_t v)
{
    return (size_t)((63 - __builtin_clzll(v | 1)) / 7 + 1);
}

/* A length-delimited field (tag, length, bytes), or nothing when empty: proto3 does
 * not write a string equal to its default "". */
static inline uint64_t string_field_size(size_t len)
{
    return len ? 1 + varint_size(len) + (uint64_t)len : 0;
}

static inline uint64_t label_body_size(const struct ss_label *l)
{
    return string_field_size(l->name.len) + string_field_size(l->value.len);
}

/* proto3 leaves out a double equal to 0 and an int64 equal to 0. "Equal to 0" is a
 * value comparison in protobuf-c and in Go's generated code, so -0.0 is left out too
 * and reads back as +0.0. NaN compares unequal to everything, so every NaN (including
 * the stale marker) is written with its exact bits. */
static inline bool double_is_default(double v)
{
    return v == 0.0;
}

static inline uint64_t sample_body_size(double value, int64_t ts)
{
    return (double_is_default(value) ? 0 : 1 + 8) + (ts == 0 ? 0 : 1 + varint_size((uint64_t)ts));
}

static inline uint64_t record_size(uint64_t body)
{
    return 1 + varint_size(body) + body;
}

/* Exact size of the TimeSeries body, or UINT64_MAX when any part would exceed the
 * record limit. Each string is checked before it is added, so the running sum stays far
 * from overflow even with hostile lengths. */
static uint64_t series_body_size(const struct ss_label *labels, size_t nlabels, const double *values,
                                 const int64_t *ts, size_t nsamples)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (labels[i].name.len > RW_MAX_RECORD_BYTES || labels[i].value.len > RW_MAX_RECORD_BYTES)
            return UINT64_MAX;
        total += record_size(label_body_size(&labels[i]));
        if (total > RW_MAX_RECORD_BYTES)
            return UINT64_MAX;
    }
    for (size_t i = 0; i < nsamples; i++) {
        total += record_size(sample_body_size(values[i], ts[i]));
        if (total > RW_MAX_RECORD_BYTES)
            return UINT64_MAX;
    }
    return total;
}

/* ---- writing ------------------------------------------------------------- */

static inline uint8_t *put_string_field(uint8_t *p, uint8_t tag, const char *s, size_t len)
{
    if (!len)
        return p;
    *p++ = tag;
    p = rw_put_varint(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* A double is a fixed64 field: the IEEE-754 bits, little-endian. */
static inline uint8_t *put_fixed64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &bits, 8);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(bits >> (8 * i));
#endif
    return p + 8;
}

/* Make room for exactly `total` more bytes and return where they go. */
static int reserve_record(struct ss_buf *out, uint64_t total, uint8_t **where)
{
    if (total > SIZE_MAX - 1)
        return SS_ELIMIT;
    int rc = ss_buf_reserve(out, (size_t)total);
    if (rc)
        return rc;
    *where = (uint8_t *)out->data + out->len;
    return 0;
}

static void commit_record(struct ss_buf *out, uint64_t total)
{
    out->len += (size_t)total;
    out->data[out->len] = '\0'; /* ss_buf keeps its data NUL-terminated */
}

/* The TimeSeries.samples fields. */
static uint8_t *put_samples(uint8_t *p, const double *values, const int64_t *timestamps_ms, size_t nsamples)
{
    for (size_t i = 0; i < nsamples; i++) {
        *p++ = TAG_SERIES_SAMPLE;
        p = rw_put_varint(p, sample_body_size(values[i], timestamps_ms[i]));
        if (!double_is_default(values[i])) {
            *p++ = TAG_SAMPLE_VALUE;
            p = put_fixed64(p, values[i]);
        }
        if (timestamps_ms[i] != 0) {
            *p++ = TAG_SAMPLE_TIMESTAMP;
            p = rw_put_varint(p, (uint64_t)timestamps_ms[i]);
        }
    }
    return p;
}

size_t rw_encoded_series_size(const struct ss_label *labels, size_t nlabels, const double *values,
                              const int64_t *timestamps_ms, size_t nsamples)
{
    uint64_t body = series_body_size(labels, nlabels, values, timestamps_ms, nsamples);
    if (body == UINT64_MAX)
        return 0;
    return (size_t)record_size(body);
}

int rw_encode_series_multi(struct ss_buf *out, const struct ss_label *labels, size_t nlabels,
                           const double *values, const int64_t *timestamps_ms, size_t nsamples)
{
    if (!out || (nlabels && !labels) || (nsamples && (!values || !timestamps_ms)))
        return SS_EINVAL;
    uint64_t body = series_body_size(labels, nlabels, values, timestamps_ms, nsamples);
    if (body == UINT64_MAX)
        return SS_ELIMIT;
    uint64_t total = record_size(body);
    uint8_t *p;
    int rc = reserve_record(out, total, &p);
    if (rc)
        return rc;

    *p++ = TAG_WRITEREQ_TIMESERIES;
    p = rw_put_varint(p, body);
    p = ss_labels_wire_write(p, labels, nlabels); /* TAG_SERIES_LABEL fields */
    put_samples(p, values, timestamps_ms, nsamples);
    commit_record(out, total);
    return 0;
}

/* A label's bytes, a few dozen: fixed-size moves that overlap at the end, inline,
 * instead of a libc call per label (which cost what copying the labels once less
 * saved); nothing is read or written outside [s, s + n) and [d, d + n). */
static inline void copy_piece(uint8_t *d, const char *s, size_t n)
{
    if (n >= 16) {
        for (size_t i = 0; i + 16 < n; i += 16)
            memcpy(d + i, s + i, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)s[i];
    }
}

int rw_encode_series_wire_parts(struct ss_buf *out, const struct ss_str *parts, size_t nparts,
                                size_t wire_len, double value, int64_t timestamp_ms)
{
    if (!out || (nparts && !parts))
        return SS_EINVAL;
    if (wire_len > RW_MAX_RECORD_BYTES)
        return SS_ELIMIT;
    uint64_t body = wire_len + record_size(sample_body_size(value, timestamp_ms));
    if (body > RW_MAX_RECORD_BYTES)
        return SS_ELIMIT;
    uint64_t total = record_size(body);
    uint8_t *p;
    int rc = reserve_record(out, total, &p);
    if (rc)
        return rc;
    *p++ = TAG_WRITEREQ_TIMESERIES;
    p = rw_put_varint(p, body);
    size_t left = wire_len;
    bool bad = false;
    for (size_t i = 0; i < nparts && !bad; i++) {
        bad = parts[i].len > left || (parts[i].len && !parts[i].p);
        if (!bad) {
            copy_piece(p, parts[i].p, parts[i].len);
            p += parts[i].len;
            left -= parts[i].len;
        }
    }
    if (bad || left) { /* not what wire_len says: nothing appended (not committed) */
        out->data[out->len] = '\0';
        return SS_EINVAL;
    }
    put_samples(p, &value, &timestamp_ms, 1);
    commit_record(out, total);
    return 0;
}

int rw_encode_series_wire(struct ss_buf *out, const void *wire_labels, size_t wire_len, double value,
                          int64_t timestamp_ms)
{
    struct ss_str one = {wire_labels, wire_len};
    return rw_encode_series_wire_parts(out, &one, 1, wire_len, value, timestamp_ms);
}

int rw_encode_series(struct ss_buf *out, const struct ss_label *labels, size_t nlabels, double value,
                     int64_t timestamp_ms)
{
    return rw_encode_series_multi(out, labels, nlabels, &value, &timestamp_ms, 1);
}

/* scrape_metric_type -> MetricMetadata.MetricType. Spelled out rather than cast so a
 * reordering of either enum cannot silently change what goes on the wire. */
static int metric_type_to_wire(enum scrape_metric_type t, uint32_t *out)
{
    switch (t) {
    case SCRAPE_TYPE_UNKNOWN: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN; return 0;
    case SCRAPE_TYPE_COUNTER: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER; return 0;
    case SCRAPE_TYPE_GAUGE: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE; return 0;
    case SCRAPE_TYPE_HISTOGRAM: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM; return 0;
    case SCRAPE_TYPE_GAUGEHISTOGRAM:
        *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM;
        return 0;
    case SCRAPE_TYPE_SUMMARY: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY; return 0;
    case SCRAPE_TYPE_INFO: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO; return 0;
    case SCRAPE_TYPE_STATESET: *out = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET; return 0;
    }
    return SS_EINVAL;
}

static enum scrape_metric_type metric_type_from_wire(int32_t w)
{
    switch (w) {
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER: return SCRAPE_TYPE_COUNTER;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE: return SCRAPE_TYPE_GAUGE;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM: return SCRAPE_TYPE_HISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM: return SCRAPE_TYPE_GAUGEHISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY: return SCRAPE_TYPE_SUMMARY;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO: return SCRAPE_TYPE_INFO;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET: return SCRAPE_TYPE_STATESET;
    default: return SCRAPE_TYPE_UNKNOWN;
    }
}

int rw_encode_metadata(struct ss_buf *out, enum scrape_metric_type type, struct ss_str family,
                       struct ss_str help, struct ss_str unit)
{
    uint32_t wire_type;
    if (!out || metric_type_to_wire(type, &wire_type))
        return SS_EINVAL;
    if (family.len > RW_MAX_RECORD_BYTES || help.len > RW_MAX_RECORD_BYTES || unit.len > RW_MAX_RECORD_BYTES)
        return SS_ELIMIT;
    uint64_t body = (wire_type ? 1 + varint_size(wire_type) : 0) + string_field_size(family.len) +
                    string_field_size(help.len) + string_field_size(unit.len);
    if (body > RW_MAX_RECORD_BYTES)
        return SS_ELIMIT;
    uint64_t total = record_size(body);
    uint8_t *p;
    int rc = reserve_record(out, total, &p);
    if (rc)
        return rc;

    *p++ = TAG_WRITEREQ_METADATA;
    p = rw_put_varint(p, body);
    if (wire_type) {
        *p++ = TAG_META_TYPE;
        p = rw_put_varint(p, wire_type);
    }
    p = put_string_field(p, TAG_META_FAMILY, family.p, family.len);
    p = put_string_field(p, TAG_META_HELP, help.p, help.len);
    p = put_string_field(p, TAG_META_UNIT, unit.p, unit.len);
    commit_record(out, total);
    return 0;
}

/* ---- validation ---------------------------------------------------------- */

int rw_validate_labels(const struct ss_label *labels, size_t nlabels, unsigned flags, const char **why)
{
    const char *reason = NULL;
    bool have_name = false;
    if (!labels || nlabels == 0) {
        reason = "empty label set";
        goto fail;
    }
    for (size_t i = 0; i < nlabels; i++) {
        const struct ss_label *l = &labels[i];
        if (l->name.len == 0) {
            reason = "empty label name";
            goto fail;
        }
        if (l->value.len == 0) {
            reason = "empty label value";
            goto fail;
        }
        if (i > 0) {
            int c = ss_str_cmp(labels[i - 1].name, l->name);
            if (c == 0) {
                reason = "duplicate label name";
                goto fail;
            }
            if (c > 0) {
                reason = "label names not sorted";
                goto fail;
            }
        }
        if (!ss_utf8_valid(l->name.p, l->name.len)) {
            reason = "label name is not valid UTF-8";
            goto fail;
        }
        if (!ss_utf8_valid(l->value.p, l->value.len)) {
            reason = "label value is not valid UTF-8";
            goto fail;
        }
        bool is_metric_name = ss_str_eq_cstr(l->name, "__name__");
        if (is_metric_name)
            have_name = true;
        if (flags & RW_VALIDATE_LEGACY_NAMES) {
            if (!ss_label_name_valid(l->name.p, l->name.len)) {
                reason = "invalid label name";
                goto fail;
            }
            if (is_metric_name && !ss_metric_name_valid(l->value.p, l->value.len)) {
                reason = "invalid metric name";
                goto fail;
            }
        }
    }
    if (!have_name) {
        reason = "no __name__ label";
        goto fail;
    }
    return 0;
fail:
    if (why)
        *why = reason;
    return SS_EINVAL;
}

/* ---- decoding ------------------------------------------------------------ */

/* The unpacked protobuf-c message plus flat views into it. All view arrays are sized
 * from counts in the message, so memory stays proportional to the input. */
struct rw_write_request {
    Prometheus__WriteRequest *msg;
    struct ss_label *labels; /* series labels, then exemplar labels */
    struct rw_sample *samples;
    struct rw_exemplar *exemplars;
    struct rw_series *series;
    size_t nseries;
    struct rw_metadata *metadata;
    size_t nmetadata;
};

static struct ss_str pb_str(const char *s)
{
    return (struct ss_str){s ? s : "", s ? strlen(s) : 0};
}

static struct ss_label *fill_labels(struct ss_label *dst, Prometheus__Label **src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i].name = pb_str(src[i]->name);
        dst[i].value = pb_str(src[i]->value);
    }
    return dst + n;
}

/* calloc(0) may return NULL; the views never index an empty array, so ask for 1. */
static void *calloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

int rw_decode_write_request(const void *buf, size_t n, struct rw_write_request **out)
{
    struct rw_write_request *req = NULL;
    int rc = SS_ENOMEM;
    if (!out || (n && !buf))
        return SS_EINVAL;
    *out = NULL;

    req = calloc(1, sizeof *req);
    if (!req)
        goto fail;
    req->msg = prometheus__write_request__unpack(NULL, n, (const uint8_t *)buf);
    if (!req->msg) {
        /* protobuf-c does not tell malformed input from allocation failure; malformed
         * input is by far the likelier cause. */
        rc = SS_EPARSE;
        goto fail;
    }
    const Prometheus__WriteRequest *m = req->msg;

    size_t nlabels = 0, nsamples = 0, nexemplars = 0;
    for (size_t i = 0; i < m->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = m->timeseries[i];
        nlabels += ts->n_labels;
        nsamples += ts->n_samples;
        nexemplars += ts->n_exemplars;
        for (size_t j = 0; j < ts->n_exemplars; j++)
            nlabels += ts->exemplars[j]->n_labels;
    }
    req->labels = calloc_n(nlabels, sizeof *req->labels);
    req->samples = calloc_n(nsamples, sizeof *req->samples);
    req->exemplars = calloc_n(nexemplars, sizeof *req->exemplars);
    req->series = calloc_n(m->n_timeseries, sizeof *req->series);
    req->metadata = calloc_n(m->n_metadata, sizeof *req->metadata);
    if (!req->labels || !req->samples || !req->exemplars || !req->series || !req->metadata)
        goto fail;

    struct ss_label *lp = req->labels;
    struct rw_sample *sp = req->samples;
    struct rw_exemplar *ep = req->exemplars;
    for (size_t i = 0; i < m->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = m->timeseries[i];
        struct rw_series *s = &req->series[i];
        s->labels = lp;
        s->nlabels = ts->n_labels;
        lp = fill_labels(lp, ts->labels, ts->n_labels);
        s->samples = sp;
        s->nsamples = ts->n_samples;
        for (size_t j = 0; j < ts->n_samples; j++, sp++) {
            sp->value = ts->samples[j]->value;
            sp->timestamp_ms = ts->samples[j]->timestamp;
        }
        s->exemplars = ep;
        s->nexemplars = ts->n_exemplars;
        for (size_t j = 0; j < ts->n_exemplars; j++, ep++) {
            const Prometheus__Exemplar *e = ts->exemplars[j];
            ep->labels = lp;
            ep->nlabels = e->n_labels;
            lp = fill_labels(lp, e->labels, e->n_labels);
            ep->value = e->value;
            ep->timestamp_ms = e->timestamp;
        }
    }
    req->nseries = m->n_timeseries;

    for (size_t i = 0; i < m->n_metadata; i++) {
        const Prometheus__MetricMetadata *md = m->metadata[i];
        struct rw_metadata *d = &req->metadata[i];
        d->wire_type = (int32_t)md->type;
        d->type = metric_type_from_wire(d->wire_type);
        d->family = pb_str(md->metric_family_name);
        d->help = pb_str(md->help);
        d->unit = pb_str(md->unit);
    }
    req->nmetadata = m->n_metadata;

    *out = req;
    return 0;
fail:
    rw_write_request_free(req);
    return rc;
}

size_t rw_write_request_nseries(const struct rw_write_request *req)
{
    return req ? req->nseries : 0;
}

int rw_write_request_series(const struct rw_write_request *req, size_t i, struct rw_series *out)
{
    if (!req || !out)
        return SS_EINVAL;
    if (i >= req->nseries)
        return SS_ENOTFOUND;
    *out = req->series[i];
    return 0;
}

size_t rw_write_request_nmetadata(const struct rw_write_request *req)
{
    return req ? req->nmetadata : 0;
}

int rw_write_request_metadata(const struct rw_write_request *req, size_t i, struct rw_metadata *out)
{
    if (!req || !out)
        return SS_EINVAL;
    if (i >= req->nmetadata)
        return SS_ENOTFOUND;
    *out = req->metadata[i];
    return 0;
}

void rw_write_request_free(struct rw_write_request *req)
{
    if (!req)
        return;
    if (req->msg)
        prometheus__write_request__free_unpacked(req->msg, NULL);
    free(req->labels);
    free(req->samples);
    free(req->exemplars);
    free(req->series);
    free(req->metadata);
    free(req);
}
