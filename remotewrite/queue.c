/* queue.c: the scrape-thread side of a remote, and its series queues.
 *
 * The scrape thread encodes each series once per remote (external labels, write
 * relabeling, then the streaming encoder) into the staging buffer of its queue
 * (queue_of, a function of its labels); at the end of the scrape rw_remote_commit
 * moves every staging buffer into its queue under one short lock. A staging buffer
 * that reaches
 * STAGE_FLUSH_BYTES during the scrape moves to its queue at once (the scrape module
 * hands over only scrapes that succeeded, so there is nothing to roll back): staging
 * memory is bounded per queue, not by the size of a scrape, and a big scrape is not
 * kept twice (staged and queued). Either way a sender is woken only when its queues
 * hold a whole batch, or hold their first records (which start its
 * batch_send_deadline); otherwise it wakes at the deadline by itself.
 *
 * The size of a scrape never decides its fate: a commit of any size is queued, and the
 * senders split it into batches of max_samples_per_send. What bounds memory is one
 * number per remote, max_memory_bytes, over the encoded records queued in all queues
 * (a batch a sender has taken is in flight and not counted). A commit that would pass
 * the bound first drops the oldest queued records, oldest commit first across queues,
 * because monitoring wants the newest data. With a disk queue the remote instead
 * enters spill mode at the bound: the senders move what is queued to disk, and when
 * they fall behind the scrape thread writes the oldest queued records to disk itself;
 * only if memory still reaches twice the bound (every queue has a batch in flight, or
 * the disk failed) is the oldest data dropped.
 * Every drop is counted (reason "queue_full") and logged. Nothing here waits for the
 * network or for a full queue. */
#include <stdlib.h>
#include <string.h>

#include "relabel.h"
#include "remote_int.h"

size_t rw_record_len(const char *p, size_t avail)
{
    /* tag byte 0x0a, varint length, payload */
    if (avail < 2)
        return 0;
    uint64_t len = 0;
    size_t i = 1;
    for (int shift = 0; i < avail && shift < 64; shift += 7, i++) {
        len |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80)) {
            i++;
            return len <= avail - i ? i + len : 0;
        }
    }
    return 0;
}

/* Staging buffers move to their queue when they reach STAGE_FLUSH_BYTES (so with
 * records of a few hundred bytes they never grow past 16 KiB), and a staging buffer
 * is not kept above STAGE_KEEP_BYTES; a commit per ~60 records costs a lock and no
 * wakeup (see commit_stages). Every stage is committed once the stages hold
 * STAGE_TOTAL_BYTES between them: a big scrape of many metric names (kube-state-
 * metrics) leaves a tail of a few KiB in each of its queues as it goes from name to
 * name, and 50 such tails in 16 KiB buffers were 0.8 MB that neither the pacing mark
 * nor the memory bound saw. With the budget a scrape of 1k service series (about
 * 100 KB) commits twice instead of once, and 100k series cost 0.2-0.7 MB less, for
 * 3.6% more CPU at 300k samples/s and none measurable below (README, seventeenth
 * pass). A commit hands its staging buffer to the queue as a
 * segment, as it is, and the stage takes a spare 16 KiB buffer (one a sender has
 * emptied, or a new one) when its next record comes: no copy into a growing queue
 * buffer, and no realloc of it (those were 3.5% of the 100x1k profile). A commit that
 * fills less than half of its buffer (the end of a scrape) is copied into a segment of
 * its own size instead, so a segment never holds more than twice its bytes, and the
 * buffer goes back to the spares: between scrapes no stage holds one (50 queues had
 * kept 800 KB). Every commit stays a segment of its
 * own, with its own time: the oldest commit across queues is dropped first when the
 * bound is reached. A segment goes back as soon as it is taken, so queue memory
 * follows what is queued: nothing is kept for a queue that empties (under churn, kept
 * queue buffers had crept up to the largest commit each queue ever saw), and at most
 * RW_SPARE_SEGMENTS spares are kept per remote. */
#define STAGE_FLUSH_BYTES (12u << 10)
#define STAGE_START_CAP   (16u << 10) /* ss_buf_reserve's size for STAGE_FLUSH_BYTES + a record */
#define STAGE_KEEP_BYTES  (32u << 10)
#define STAGE_TOTAL_BYTES (64u << 10)

static void commit_stages(struct rw_remote *r, const int *qs, int nq);

/* A taken segment's buffer: kept as a spare when it is a staging buffer's usual size,
 * freed otherwise (qmu held). */
static void spare_put(struct rw_remote *r, struct ss_buf *b)
{
    if (r->nspare < RW_SPARE_SEGMENTS && b->cap == STAGE_START_CAP) {
        ss_buf_reset(b);
        r->spare[r->nspare++] = *b;
        ss_buf_init(b, 0);
    } else {
        ss_buf_free(b);
    }
}

/* A new staging buffer of the usual size (qmu held); empty if there is no memory (it
 * then grows as it fills). */
static void spare_get(struct rw_remote *r, struct ss_buf *b)
{
    if (r->nspare) {
        *b = r->spare[--r->nspare];
        return;
    }
    ss_buf_init(b, 0);
    ss_buf_reserve(b, STAGE_START_CAP - 1);
}

void rw_spares_free(struct rw_remote *r)
{
    while (r->nspare)
        ss_buf_free(&r->spare[--r->nspare]);
}

void rw_queue_clear(struct rwq *q)
{
    for (size_t i = q->marks_head; i < q->nmarks; i++)
        ss_buf_free(&q->marks[i].b);
    free(q->marks);
    q->marks = NULL;
    q->nmarks = q->marks_cap = q->marks_head = 0;
    q->head = 0;
}

/* Move the head past `bytes` bytes holding `n` records, keeping the segments and the
 * remote's counters right (qmu held). */
static void queue_advance(struct rw_remote *r, struct rwq *q, size_t bytes, size_t n)
{
    q->samples -= n;
    q->cum_out += n;
    atomic_fetch_sub(&r->queue_samples, n);
    if (atomic_fetch_sub(&r->queue_bytes, bytes) - bytes <= atomic_load(&r->pace_bytes) && r->room_waiters)
        pthread_cond_broadcast(&r->room_cv);
    while (bytes && q->marks_head < q->nmarks) {
        struct chunk_mark *m = &q->marks[q->marks_head];
        size_t left = m->b.len - q->head;
        if (bytes < left) {
            q->head += bytes;
            break;
        }
        bytes -= left;
        spare_put(r, &m->b); /* taken: its memory goes back now */
        q->marks_head++;
        q->head = 0;
    }
    if (q->marks_head == q->nmarks) {
        q->nmarks = q->marks_head = 0;
        if (q->marks_cap > 64) { /* a backlog of many commits has been delivered */
            free(q->marks);
            q->marks = NULL;
            q->marks_cap = 0;
        }
    } else if (q->marks_head >= 64 && q->marks_head > q->nmarks / 2) {
        memmove(q->marks, q->marks + q->marks_head, (q->nmarks - q->marks_head) * sizeof *q->marks);
        q->nmarks -= q->marks_head;
        q->marks_head = 0;
    }
}

/* What a take of up to max_n records from q covers: whole segments marks_head..*end-1
 * (the first from q->head), then records of segment *end up to *part_end, from *part_off;
 * returns the records, *bytes their bytes. Whole segments by their counts, then records
 * of the next one. */
static size_t take_extent(const struct rwq *q, size_t max_n, size_t *end, size_t *part_off, size_t *part_end,
                          size_t *bytes, int64_t *max_ts)
{
    size_t i = q->marks_head, off = q->head, n = 0, b = 0, pe = 0;
    int64_t ts = 0;
    for (; i < q->nmarks && q->marks[i].cum - q->cum_out <= max_n; i++, off = 0) {
        b += q->marks[i].b.len - off;
        n = (size_t)(q->marks[i].cum - q->cum_out);
        if (q->marks[i].max_ts > ts)
            ts = q->marks[i].max_ts;
    }
    if (n < max_n && i < q->nmarks) {
        const struct ss_buf *sb = &q->marks[i].b;
        pe = off;
        while (n < max_n && pe < sb->len) {
            size_t rl = rw_record_len(sb->data + pe, sb->len - pe);
            if (!rl)
                break;
            pe += rl;
            n++;
        }
        b += pe - off;
        if (pe > off && q->marks[i].max_ts > ts)
            ts = q->marks[i].max_ts;
    }
    *end = i;
    *part_off = off;
    *part_end = pe;
    *bytes = b;
    *max_ts = ts;
    return n;
}

size_t rw_queue_take(struct rw_remote *r, struct rwq *q, size_t max_n, struct ss_buf *body, int64_t *max_ts)
{
    /* measured first, so that the body is grown once and nothing is taken when it
     * cannot be */
    size_t end, part_off, part_end, bytes;
    int64_t ts;
    size_t n = take_extent(q, max_n, &end, &part_off, &part_end, &bytes, &ts);
    if (!n || ss_buf_reserve(body, bytes))
        return 0;
    size_t off = q->head;
    for (size_t i = q->marks_head; i < end; i++, off = 0) {
        memcpy(body->data + body->len, q->marks[i].b.data + off, q->marks[i].b.len - off);
        body->len += q->marks[i].b.len - off;
    }
    if (part_end > part_off) {
        memcpy(body->data + body->len, q->marks[end].b.data + part_off, part_end - part_off);
        body->len += part_end - part_off;
    }
    body->data[body->len] = '\0';
    *max_ts = ts;
    queue_advance(r, q, bytes, n);
    return n;
}

static int batch_room(struct rw_batch *b, size_t more)
{
    struct ss_buf *seg = ss_array_grow(b->seg, &b->segcap, b->nseg + more, sizeof *seg, 32);
    if (!seg)
        return SS_ENOMEM;
    b->seg = seg;
    struct ss_str *parts = ss_array_grow(b->parts, &b->partcap, b->nparts + more, sizeof *parts, 32);
    if (!parts)
        return SS_ENOMEM;
    b->parts = parts;
    return 0;
}

size_t rw_queue_take_parts(struct rw_remote *r, struct rwq *q, size_t max_n, struct rw_batch *b,
                           int64_t *max_ts)
{
    size_t end, part_off, part_end, bytes;
    int64_t ts;
    size_t n = take_extent(q, max_n, &end, &part_off, &part_end, &bytes, &ts);
    if (!n || batch_room(b, end - q->marks_head + 1))
        return 0;
    struct ss_buf tail;
    ss_buf_init(&tail, 0);
    if (part_end > part_off && ss_buf_append(&tail, q->marks[end].b.data + part_off, part_end - part_off)) {
        ss_buf_free(&tail);
        return 0;
    }
    size_t off = q->head;
    for (size_t i = q->marks_head; i < end; i++, off = 0) {
        struct ss_buf *m = &q->marks[i].b;
        b->parts[b->nparts++] = (struct ss_str){m->data + off, m->len - off};
        b->seg[b->nseg++] = *m;
        /* moved: only its length stays, for queue_advance to walk past (it frees nothing) */
        m->data = NULL;
        m->cap = 0;
    }
    if (tail.len) {
        b->seg[b->nseg++] = tail;
        b->parts[b->nparts++] = (struct ss_str){tail.data, tail.len};
    }
    b->bytes += bytes;
    *max_ts = ts;
    queue_advance(r, q, bytes, n);
    return n;
}

void rw_batch_release(struct rw_remote *r, struct rw_batch *b)
{
    for (size_t i = 0; i < b->nseg; i++)
        spare_put(r, &b->seg[i]);
    b->nseg = b->nparts = b->bytes = 0;
}

void rw_batch_free(struct rw_batch *b)
{
    for (size_t i = 0; i < b->nseg; i++)
        ss_buf_free(&b->seg[i]);
    free(b->seg);
    free(b->parts);
    memset(b, 0, sizeof *b);
}

void rw_wake_owner(struct rw_remote *r, int qi)
{
    int n = atomic_load(&r->nsenders);
    if (n > 0)
        pthread_cond_signal(&r->senders[qi % n].cv);
}

void rw_queued(struct rw_remote *r, int qi, uint64_t n)
{
    int ns = atomic_load(&r->nsenders);
    if (ns <= 0)
        return;
    struct sender *sd = &r->senders[qi % ns];
    sd->pending += n;
    if (sd->pending >= sd->need)
        pthread_cond_signal(&sd->cv);
}

void rw_wake_senders(struct rw_remote *r)
{
    pthread_mutex_lock(&r->qmu);
    for (int i = 0; i < r->nqueues; i++)
        pthread_cond_broadcast(&r->senders[i].cv);
    pthread_mutex_unlock(&r->qmu);
}

/* ---- scrape-thread side ------------------------------------------------------------ */

void rw_remote_begin(struct rw_remote *r)
{
    (void)r; /* the queues are fixed; nothing to switch between scrapes */
}

/* The queue of a series. Not its label hash alone: snappy compresses a request well
 * only when neighbouring records look alike (it matches within 64 KiB fragments), so
 * the series of one metric family from one target (same __name__, job and instance)
 * go to QUEUE_SPREAD neighbouring queues, in exposition order, and a request carries
 * long runs of similar records. Which of the QUEUE_SPREAD queues is chosen by the
 * series' longest other label value: the bytes that say which thing a series is
 * about (a pod's uid, a container id, an HTTP handler), shared by the series that
 * stand next to each other in an exposition and differ only in a short label (le,
 * phase, condition, code). Those stay together, one after another in one queue.
 * Chosen by the whole label hash instead, siblings were scattered over the four
 * queues and each request lost their shared bytes: 77.2 wire bytes per sample
 * instead of 63.4 on the bench's kube-state-metrics target, 22.1 instead of 20.5 on
 * 10 x 10k service targets. A `pod` label goes before the longest value: the
 * kubelet's cAdvisor exposes each family cgroup by cgroup, a pod's (its own, its
 * pause container's, its containers') one after another, and their longest values
 * (`id`, the cgroup path, and `name`, the container ID) differ while the pod is
 * theirs: keyed by `id`, requests were 110.6 wire bytes per sample instead of 92.6
 * (Prometheus 92.8) on the bench's cadvisor-10x20k; kube-state-metrics' pod series
 * share their pod as they share their uid (63.3 either way). A family still spreads
 * over several queues, so one huge family is not one queue's work (it stays in one
 * queue only when every series has the same key). Per-series order needs only that a
 * series always maps to the same queue, which holds: the key is a function of the
 * series' labels. */
#define QUEUE_SPREAD 4
static uint32_t spread_of(const struct ss_label *labels, size_t n)
{
    const struct ss_str *longest = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct ss_label *l = &labels[i];
        if (l->name.len == 3 && !memcmp(l->name.p, "pod", 3) && l->value.len) {
            longest = &l->value;
            break;
        }
        if (l->value.len <= (longest ? longest->len : 0))
            continue;
        struct ss_str k = l->name; /* the group's own labels are the same for every sibling */
        if ((k.len == 8 && !memcmp(k.p, "__name__", 8)) || (k.len == 8 && !memcmp(k.p, "instance", 8)) ||
            (k.len == 3 && !memcmp(k.p, "job", 3)))
            continue;
        longest = &l->value;
    }
    return longest ? (uint32_t)(ss_hash_str(0, *longest) % QUEUE_SPREAD) : 0;
}

static int queue_of(const struct rw_remote *r, uint64_t group, uint32_t spread)
{
    /* The group's first queue by multiply-shift rather than a 64-bit division (the
     * hottest instruction of rw_remote_append), then one of the QUEUE_SPREAD after it. */
    uint32_t nq = (uint32_t)r->nqueues;
    uint32_t q = (uint32_t)(((uint64_t)(uint32_t)(group ^ group >> 32) * nq) >> 32) + spread;
    while (q >= nq)
        q -= nq;
    return (int)q;
}

void rw_remote_append(struct rw_remote *r, const struct scrape_series *s)
{
    /* The labels are final (external labels included, sorted): only this remote's
     * write relabeling can change them. */
    const struct ss_label *labels = s->labels;
    size_t n = s->nlabels;
    if (r->cfg.nwrite_relabel) {
        struct ss_labels *w = &r->work;
        ss_labels_reset(w);
        for (size_t i = 0; i < n; i++)
            ss_labels_push(w, labels[i].name, labels[i].value);
        if (!relabel_process(r->cfg.write_relabel, r->cfg.nwrite_relabel, w))
            return;
        size_t k = 0;
        for (size_t i = 0; i < w->n; i++)
            if (w->v[i].value.len)
                w->v[k++] = w->v[i];
        w->n = k;
        if (!w->n)
            return;
        ss_labels_sort(w);
        labels = w->v;
        n = w->n;
    }
    /* the group the scrape module passed is of these labels unless relabeling changed them */
    uint64_t group = s->group && labels == s->labels ? s->group : ss_labels_group_hash(labels, n);
    /* The spread is a function of the labels alone: the scrape module keeps it with
     * the series (hint spread + 1), so a known series skips the scan and the hash. */
    uint32_t spread;
    if (labels == s->labels && s->hint >= 1 && s->hint <= QUEUE_SPREAD) {
        spread = s->hint - 1u;
    } else {
        spread = spread_of(labels, n);
        if (labels == s->labels && s->hint_out)
            *s->hint_out = (uint8_t)(spread + 1);
    }
    int qi = queue_of(r, group, spread);
    if (!r->staged_in[qi]) {
        r->staged_in[qi] = 1;
        r->staged[r->nstaged++] = qi;
    }
    if (!r->stage[qi].cap) { /* a stage holds a buffer only while it has records */
        pthread_mutex_lock(&r->qmu);
        spare_get(r, &r->stage[qi]);
        pthread_mutex_unlock(&r->qmu);
    }
    size_t before = r->stage[qi].len;
    /* the scrape's wire bytes are these labels unless write relabeling changed them */
    int rc = labels != s->labels ? rw_encode_series(&r->stage[qi], labels, n, s->value, s->timestamp_ms)
             : s->wire_labels    ? rw_encode_series_wire(&r->stage[qi], s->wire_labels, s->wire_labels_len,
                                                         s->value, s->timestamp_ms)
             : s->wire_parts     ? rw_encode_series_wire_parts(&r->stage[qi], s->wire_parts, s->nwire_parts,
                                                               s->wire_labels_len, s->value, s->timestamp_ms)
                                 : rw_encode_series(&r->stage[qi], labels, n, s->value, s->timestamp_ms);
    if (rc) {
        atomic_fetch_add(&r->dropped[DROP_ENCODE], 1);
        return;
    }
    r->stage_samples[qi]++;
    if (s->timestamp_ms > r->stage_max_ts[qi])
        r->stage_max_ts[qi] = s->timestamp_ms;
    r->staged_bytes += r->stage[qi].len - before;
    if (r->stage[qi].len >= STAGE_FLUSH_BYTES) {
        r->staged_bytes -= r->stage[qi].len;
        commit_stages(r, &qi, 1); /* stays in `staged`: the end commit finds it empty */
    } else if (r->staged_bytes >= STAGE_TOTAL_BYTES) {
        rw_remote_commit(r);
    }
}

/* The queue whose head commit is the oldest, or NULL when nothing is queued;
 * idle_only: only queues with no batch in flight (qmu held). */
static struct rwq *oldest_queue(struct rw_remote *r, bool idle_only)
{
    struct rwq *oldest = NULL;
    for (int i = 0; i < r->nqueues; i++) {
        struct rwq *q = &r->queues[i];
        if (q->samples && !(idle_only && q->busy) &&
            (!oldest || q->marks[q->marks_head].enq_mono < oldest->marks[oldest->marks_head].enq_mono))
            oldest = q;
    }
    return oldest;
}

/* Drop the oldest queued records, oldest commit first across queues, until `need`
 * more bytes fit under `limit` (qmu held). Returns the samples dropped. */
static uint64_t drop_oldest(struct rw_remote *r, uint64_t need, uint64_t limit)
{
    uint64_t dropped = 0;
    while (atomic_load(&r->queue_bytes) + need > limit) {
        struct rwq *oldest = oldest_queue(r, false);
        if (!oldest)
            break; /* nothing queued: the caller trims the commit itself */
        uint64_t over = atomic_load(&r->queue_bytes) + need - limit;
        const struct ss_buf *b = &oldest->marks[oldest->marks_head].b;
        size_t end = b->len, off = oldest->head, n = 0;
        while (off < end && off - oldest->head < over) {
            size_t rl = rw_record_len(b->data + off, end - off);
            off += rl ? rl : end - off; /* records are whole: rl is never 0 */
            n++;
        }
        queue_advance(r, oldest, off - oldest->head, n);
        dropped += n;
    }
    return dropped;
}

/* With a disk queue, before anything is dropped: the scrape thread itself moves the
 * oldest queued records to disk until `need` more bytes fit under `limit` (qmu held).
 * Only queues with no batch in flight qualify: everything older of such a queue has
 * already been delivered or spilled, so writing its head now keeps its order on disk.
 * Returns 0, or SS_EIO when the disk failed (the records taken are counted). */
static int spill_oldest(struct rw_remote *r, uint64_t need, uint64_t limit)
{
    const size_t max_n =
        r->cfg.queue.max_samples_per_send > 0 ? (size_t)r->cfg.queue.max_samples_per_send : 2000;
    struct ss_buf body, comp;
    ss_buf_init(&body, 0);
    ss_buf_init(&comp, 0);
    int rc = 0;
    while (!rc && atomic_load(&r->queue_bytes) + need > limit) {
        struct rwq *oldest = oldest_queue(r, true);
        if (!oldest)
            break;
        int64_t ts = 0;
        ss_buf_reset(&body);
        ss_buf_reset(&comp);
        size_t n = rw_queue_take(r, oldest, max_n, &body, &ts);
        if (!n)
            break;
        if (rw_snappy_compress(body.data, body.len, &comp) || rw_spill_batch(r, &comp, n, ts)) {
            atomic_fetch_add(&r->dropped[DROP_DISK_ERROR], n);
            ss_error("remotewrite", "remote=%s cannot write to the disk queue: dropped %zu samples", r->name,
                     n);
            rc = SS_EIO;
        }
    }
    ss_buf_free(&body);
    ss_buf_free(&comp);
    return rc;
}

/* Every sender with a batch from a queue that still holds records gives that batch up
 * to the disk queue now (qmu held), so that the queue can be spilled behind it. */
static void kick_busy(struct rw_remote *r)
{
    for (int i = 0; i < r->nqueues; i++)
        if (r->queues[i].busy && r->queues[i].samples)
            rw_kick_sender(&r->senders[r->queues[i].owner]);
}

/* Drop records from the head of a staging buffer until at most `keep` bytes remain
 * (the commit alone is larger than the bound). Returns the samples dropped. */
static uint64_t trim_stage(struct ss_buf *b, size_t keep)
{
    size_t off = 0;
    uint64_t n = 0;
    while (b->len - off > keep) {
        size_t rl = rw_record_len(b->data + off, b->len - off);
        off += rl ? rl : b->len - off;
        n++;
    }
    memmove(b->data, b->data + off, b->len - off);
    b->len -= off;
    if (b->data)
        b->data[b->len] = '\0';
    return n;
}

static void emit_drop_log(struct rw_remote *r, const char *why)
{
    ss_error("remotewrite",
             "remote=%s url=%s %s: dropped the oldest %llu queued samples (reason queue_full, "
             "max_memory_bytes %llu; total dropped for queue_full: %llu)",
             r->name, r->cfg.url, why, (unsigned long long)r->drops_unlogged,
             (unsigned long long)r->mem_bound, (unsigned long long)atomic_load(&r->dropped[DROP_QUEUE_FULL]));
    r->drops_unlogged = 0;
}

void rw_log_pending_drops(struct rw_remote *r)
{
    if (r->drops_unlogged)
        emit_drop_log(r, "since the last report");
}

static void log_drops(struct rw_remote *r, uint64_t n, const char *why)
{
    r->drops_unlogged += n;
    int64_t now = ss_mono_ms();
    if (!r->drops_unlogged || (r->last_drop_log && now - r->last_drop_log < 10000))
        return;
    r->last_drop_log = now;
    emit_drop_log(r, why);
}

/* Every stage into its queue: those that took a record since the last time. */
void rw_remote_commit(struct rw_remote *r)
{
    r->staged_bytes = 0;
    commit_stages(r, r->staged, r->nstaged);
    for (int k = 0; k < r->nstaged; k++)
        r->staged_in[r->staged[k]] = 0;
    r->nstaged = 0;
}

/* Whether waiting for room can help: senders run and deliver. A remote that failed
 * lately, spills to disk or shuts down is not waited for (its bound applies). */
static bool pace_useful(struct rw_remote *r)
{
    return r->started && atomic_load(&r->nsenders) > 0 && !atomic_load(&r->stopping) &&
           !atomic_load(&r->spill) && ss_mono_ms() - atomic_load(&r->last_failure_mono) >= FAILING_MS;
}

bool rw_remote_wait_room(struct rw_remote *r, int64_t deadline_mono_ms)
{
    uint64_t mark = rw_pace_mark(r);
    atomic_store(&r->pace_bytes, mark);
    if (atomic_load(&r->queue_bytes) <= mark || !pace_useful(r))
        return true;
    if (ss_mono_ms() >= deadline_mono_ms)
        return false; /* another remote used the time up: no wait, nothing counted */
    /* what is staged can go while this waits (not before: a commit of every queue's
     * few KiB at every part of every big scrape cost more than it saved) */
    rw_remote_commit(r);
    int64_t t0 = ss_mono_ms();
    bool room = false;
    atomic_fetch_add(&r->pace_waits, 1);
    pthread_mutex_lock(&r->qmu);
    r->room_waiters++;
    for (int i = 0; i < r->nqueues; i++) /* they take part batches while this waits */
        pthread_cond_signal(&r->senders[i].cv);
    for (;;) {
        room = atomic_load(&r->queue_bytes) <= mark;
        int64_t left = deadline_mono_ms - ss_mono_ms();
        if (room || left <= 0 || !pace_useful(r))
            break;
        /* a short slice: pace_useful can turn false without a signal */
        struct timespec ts = ss_mono_deadline_ms(left < 100 ? left : 100);
        pthread_cond_timedwait(&r->room_cv, &r->qmu, &ts);
    }
    r->room_waiters--;
    pthread_mutex_unlock(&r->qmu);
    atomic_fetch_add(&r->pace_wait_us, (uint64_t)(ss_mono_ms() - t0) * 1000u);
    if (!room && pace_useful(r))
        atomic_fetch_add(&r->pace_timeouts, 1);
    return room || !pace_useful(r);
}

/* Move the staging buffers of the nq queues qs into their queues (at the end of a
 * scrape, or one buffer that got full); a sender is woken when its queues hold what it
 * waits for (rw_queued). */
static void commit_stages(struct rw_remote *r, const int *qs, int nq)
{
    uint64_t total = 0, nsamples = 0;
    for (int k = 0; k < nq; k++) {
        total += r->stage[qs[k]].len;
        nsamples += r->stage_samples[qs[k]];
    }
    /* counted here, per commit, not per sample: an atomic add per sample was a tenth
     * of rw_remote_append */
    atomic_fetch_add(&r->samples_in, nsamples);
    if (!nsamples) {
        if (r->drops_unlogged)
            log_drops(r, 0, "receiver too slow or down");
        return;
    }
    /* The memory bound. With a working disk queue, reaching it means "spill"; memory may
     * then grow to twice the bound while the senders move it to disk. */
    uint64_t limit = r->mem_bound;
    const char *why = "receiver too slow or down";
    if (r->dq && !atomic_load(&r->disk_broken)) {
        if (atomic_load(&r->queue_bytes) + total > r->mem_bound && !atomic_load(&r->spill)) {
            pthread_mutex_lock(&r->spill_mu);
            if (!atomic_exchange(&r->spill, true))
                ss_warn("remotewrite", "remote=%s queue reached max_memory_bytes (%llu): spilling to disk",
                        r->name, (unsigned long long)r->mem_bound);
            pthread_mutex_unlock(&r->spill_mu);
            rw_wake_senders(r);
        }
        limit = r->mem_bound * 2;
        why = "disk queue cannot keep up";
    }
    int64_t now = ss_mono_ms();
    uint64_t dropped = 0;
    pthread_mutex_lock(&r->qmu);
    if (r->dq && !atomic_load(&r->disk_broken) && atomic_load(&r->queue_bytes) + total > r->mem_bound) {
        /* the senders are behind: help them; the rest waits behind batches in flight:
         * spill those too (unless the disk has just failed) */
        if (spill_oldest(r, total, r->mem_bound) == 0 && atomic_load(&r->queue_bytes) + total > r->mem_bound)
            kick_busy(r);
    }
    if (atomic_load(&r->queue_bytes) + total > limit)
        dropped += drop_oldest(r, total, limit);
    uint64_t qb = atomic_load(&r->queue_bytes);
    if (qb + total > limit) { /* this commit alone passes the bound: keep its newest part */
        uint64_t room = limit > qb ? limit - qb : 0;
        for (int k = 0; k < nq && total > room; k++) {
            int i = qs[k];
            uint64_t other = total - r->stage[i].len;
            size_t keep = room > other ? (size_t)(room - other) : 0;
            if (r->stage[i].len > keep) {
                size_t before = r->stage[i].len;
                uint64_t n = trim_stage(&r->stage[i], keep);
                r->stage_samples[i] -= n;
                dropped += n;
                total -= before - r->stage[i].len;
            }
        }
    }
    for (int k = 0; k < nq; k++) {
        int i = qs[k];
        if (!r->stage_samples[i]) { /* nothing, or all trimmed: no buffer kept */
            spare_put(r, &r->stage[i]);
            goto next;
        }
        struct rwq *q = &r->queues[i];
        struct ss_buf *st = &r->stage[i];
        size_t bytes = st->len;
        if (q->nmarks == q->marks_cap) {
            size_t nc = q->marks_cap ? q->marks_cap * 2 : 16;
            struct chunk_mark *nm = realloc(q->marks, nc * sizeof *nm);
            if (!nm) { /* out of memory: as good as a full queue */
                dropped += r->stage_samples[i];
                why = "out of memory";
                goto next;
            }
            q->marks = nm;
            q->marks_cap = nc;
        }
        /* Every commit is a segment of its own, so that each keeps its time and the
         * oldest go first when the bound is reached. A big one is the staging buffer
         * itself; one that fills less than half of it (the end of a scrape) is copied
         * into a buffer of its size, so that a segment never holds more than twice
         * its bytes (as a queue buffer growing by doubling did). */
        struct ss_buf seg;
        if (bytes < st->cap / 2) {
            ss_buf_init(&seg, 0);
            seg.data = malloc(bytes + 1);
            if (!seg.data) {
                dropped += r->stage_samples[i];
                why = "out of memory";
                goto next;
            }
            memcpy(seg.data, st->data, bytes);
            seg.data[bytes] = '\0';
            seg.len = bytes;
            seg.cap = bytes + 1;
            spare_put(r, st);
        } else {
            seg = *st;
            ss_buf_init(st, 0);
        }
        q->cum_in += r->stage_samples[i];
        q->marks[q->nmarks++] = (struct chunk_mark){seg, q->cum_in, r->stage_max_ts[i], now};
        q->samples += r->stage_samples[i];
        atomic_fetch_add(&r->queue_samples, r->stage_samples[i]);
        atomic_fetch_add(&r->queue_bytes, bytes);
        rw_atomic_max(&r->highest_ts_in, r->stage_max_ts[i]);
        rw_queued(r, i, r->stage_samples[i]);
    next:
        if (r->stage[i].cap > STAGE_KEEP_BYTES) { /* do not keep a peak */
            ss_buf_free(&r->stage[i]);
            ss_buf_init(&r->stage[i], 0);
        }
        ss_buf_reset(&r->stage[i]);
        r->stage_samples[i] = 0;
        r->stage_max_ts[i] = 0;
    }
    pthread_mutex_unlock(&r->qmu);
    rw_wake_light_manager(r);
    if (dropped) {
        atomic_fetch_add(&r->dropped[DROP_QUEUE_FULL], dropped);
        log_drops(r, dropped, why);
    } else if (r->drops_unlogged) {
        log_drops(r, 0, why);
    }
}
