/* diskq.c: the on-disk queue of one remote: append-only segments of CRC-checked
 * records, read in order, acknowledged through a checkpoint file.
 *
 * Layout under dir/:
 *   00000000000000000001.seg ...   segments, appended in order
 *   checkpoint                     "<segment> <offset>\n": the first unacknowledged byte
 *
 * A record is one compressed remote-write body, ready to POST again:
 *   u32 magic "SSQ1" | u32 len | u32 crc32c(len bytes) | i64 first_ts | i64 last_ts |
 *   u32 samples | payload (len - 20 bytes)                    (little-endian)
 * The magic lets the reader resynchronise after damage: a record whose header or CRC
 * is wrong is skipped and counted, and reading continues at the next magic that
 * starts a valid record, so one bad byte costs only the record it sits in. A torn
 * record at the end of the newest segment (a crash mid-write) is cut off at open.
 *
 * Bounds: segments rotate at segment_bytes; when a new record would take the queue
 * over max_bytes the oldest segments are deleted (their unsent samples counted as
 * dropped for space), so disk use stays under max_bytes plus one segment. Records
 * older than max_age are dropped at read time. fsync: every fsync_interval (0 = on
 * every append), plus rw_diskq_sync from a timer.
 *
 * A write error (read-only or full filesystem) is returned to the caller, logged once
 * and counted; the caller keeps the data in memory instead. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remotewrite.h"

#define REC_MAGIC  0x31515353u /* "SSQ1" little-endian */
#define HDR_BYTES  12          /* magic, len, crc */
#define META_BYTES 20          /* first_ts, last_ts, samples */
#define MAX_RECORD (256u << 20)

struct segment {
    uint64_t seq;
    uint64_t size;    /* bytes of valid records */
    uint64_t samples; /* samples in records not yet acknowledged */
    int64_t first_ts; /* of the oldest unacknowledged record (approximate) */
};

struct rw_diskq {
    pthread_mutex_t mu;
    char *dir;
    char name[128];
    uint64_t max_bytes, segment_bytes;
    int64_t max_age_ms, fsync_interval_ms;
    struct segment *segs;
    size_t nsegs, capsegs;
    int wfd; /* append fd of the last segment, -1 when none */
    int64_t last_sync_ms;
    bool dirty;
    /* read cursor: next record to hand out, and the acknowledged position */
    size_t rseg; /* index into segs */
    uint64_t roff;
    size_t ack_seg;
    uint64_t ack_off;
    /* records handed out since the last ack or rewind, by segment: their samples leave
     * the segment's count when acknowledged */
    struct pending_seg {
        size_t seg;
        uint32_t samples;
    } pend[RW_DISKQ_MAX_PENDING];
    size_t npend;
    uint64_t pend_records;
    size_t next_seg; /* where the ack position lands after ack */
    uint64_t next_off;
    /* samples handed out from segments max_disk_bytes dropped since: in flight, so
     * counted as dropped only if they come back (rewind), not when delivered (ack) */
    uint64_t orphan_samples;
    bool broken; /* last write failed */
    struct rw_diskq_stats st;
};

/* ---- CRC-32C (Castagnoli) --------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t rw_crc32c(const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *b++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- helpers -------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void seg_path(const struct rw_diskq *q, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%020llu.seg", q->dir, (unsigned long long)seq);
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0750) && errno != EEXIST)
        return -1;
    return 0;
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Validate the record at off in an open segment file of `size` valid bytes. On
 * success fills the meta fields and returns its total size; 0 when no valid record
 * starts there. payload (optional) receives the payload bytes. */
static uint64_t check_record(int fd, uint64_t off, uint64_t size, struct ss_buf *payload, int64_t *first_ts,
                             int64_t *last_ts, uint32_t *samples)
{
    unsigned char h[HDR_BYTES + META_BYTES];
    if (off + sizeof h > size || read_full(fd, h, sizeof h, off))
        return 0;
    uint32_t len = get32(h + 4);
    if (get32(h) != REC_MAGIC || len < META_BYTES || len > MAX_RECORD || off + HDR_BYTES + len > size)
        return 0;
    struct ss_buf local;
    struct ss_buf *b = payload;
    if (!b) {
        ss_buf_init(&local, 0);
        b = &local;
    }
    ss_buf_reset(b);
    uint64_t total = 0;
    if (ss_buf_reserve(b, len) == 0 && read_full(fd, b->data, len, off + HDR_BYTES) == 0 &&
        rw_crc32c(b->data, len) == get32(h + 8)) {
        const unsigned char *m = (const unsigned char *)b->data;
        *first_ts = (int64_t)get64(m);
        *last_ts = (int64_t)get64(m + 8);
        *samples = get32(m + 16);
        memmove(b->data, b->data + META_BYTES, len - META_BYTES);
        b->len = len - META_BYTES;
        b->data[b->len] = '\0';
        total = HDR_BYTES + (uint64_t)len;
    }
    if (!payload)
        ss_buf_free(&local);
    return total;
}

/* Find the next offset >= off where a valid record starts (resync after damage). */
static uint64_t resync(int fd, uint64_t off, uint64_t size)
{
    unsigned char buf[4096];
    while (off + HDR_BYTES + META_BYTES <= size) {
        size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
        if (read_full(fd, buf, n, off))
            return size;
        for (size_t i = 0; i + 4 <= n; i++) {
            if (get32(buf + i) != REC_MAGIC)
                continue;
            int64_t a, b;
            uint32_t s;
            if (check_record(fd, off + i, size, NULL, &a, &b, &s))
                return off + i;
        }
        if (n < 4)
            break;
        off += n - 3;
    }
    return size;
}

/* Scan a segment from `from`: count samples of valid records, find where valid data
 * ends (for the newest segment, the torn tail to cut off). */
static void scan_segment(struct rw_diskq *q, struct segment *s, uint64_t from, bool newest)
{
    char path[4200];
    seg_path(q, s->seq, path, sizeof path);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    struct stat stt;
    fstat(fd, &stt);
    uint64_t size = (uint64_t)stt.st_size, off = from, end_valid = from;
    s->samples = 0;
    s->first_ts = 0;
    while (off < size) {
        int64_t a, b;
        uint32_t n;
        uint64_t len = check_record(fd, off, size, NULL, &a, &b, &n);
        if (!len) {
            uint64_t next = resync(fd, off + 1, size);
            if (next >= size && newest) {
                q->st.corrupt_records++; /* torn tail: cut here, so the reader never sees it */
                break;
            }
            off = next; /* damage in the middle: counted when the reader skips it */
            continue;
        }
        if (!s->first_ts)
            s->first_ts = a;
        s->samples += n;
        off += len;
        end_valid = off;
    }
    close(fd);
    s->size = newest ? end_valid : size;
    if (newest && end_valid < size && truncate(path, (off_t)end_valid) != 0)
        ss_warn("diskq", "queue %s: cannot cut torn tail of %s", q->name, path);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int push_segment(struct rw_diskq *q, uint64_t seq)
{
    if (q->nsegs == q->capsegs) {
        size_t nc = q->capsegs ? q->capsegs * 2 : 16;
        struct segment *ns = realloc(q->segs, nc * sizeof *ns);
        if (!ns)
            return SS_ENOMEM;
        q->segs = ns;
        q->capsegs = nc;
    }
    q->segs[q->nsegs++] = (struct segment){.seq = seq};
    return 0;
}

static int write_checkpoint(struct rw_diskq *q)
{
    char path[4200], tmp[4200], line[64];
    snprintf(path, sizeof path, "%s/checkpoint", q->dir);
    snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", q->dir);
    uint64_t seq = q->ack_seg < q->nsegs ? q->segs[q->ack_seg].seq : 0;
    int n =
        snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)seq, (unsigned long long)q->ack_off);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        return SS_EIO;
    bool ok = write(fd, line, (size_t)n) == n;
    if (ok && q->fsync_interval_ms == 0)
        fsync(fd);
    close(fd);
    if (!ok || rename(tmp, path) != 0)
        return SS_EIO;
    return 0;
}

/* Delete segment i (must not be the write segment unless the queue is being reset). */
static void delete_segment(struct rw_diskq *q, size_t i)
{
    char path[4200];
    seg_path(q, q->segs[i].seq, path, sizeof path);
    unlink(path);
    memmove(&q->segs[i], &q->segs[i + 1], (q->nsegs - i - 1) * sizeof q->segs[0]);
    q->nsegs--;
    if (q->rseg > i)
        q->rseg--;
    if (q->ack_seg > i)
        q->ack_seg--;
    if (q->next_seg > i)
        q->next_seg--;
    size_t k = 0; /* pending records of the deleted segment are forgotten */
    for (size_t j = 0; j < q->npend; j++)
        if (q->pend[j].seg != i)
            q->pend[k++] = (struct pending_seg){q->pend[j].seg - (q->pend[j].seg > i), q->pend[j].samples};
    q->npend = k;
}

/* Delete the oldest segment, moving every cursor that pointed into it to the start
 * of the next one (a record handed out from it is forgotten: its ack is a no-op). */
static void drop_first_segment(struct rw_diskq *q)
{
    bool reading = q->rseg == 0, acking = q->ack_seg == 0;
    bool pend = q->npend && q->next_seg == 0;
    delete_segment(q, 0);
    if (reading) {
        q->rseg = 0;
        q->roff = 0;
    }
    if (acking) {
        q->ack_seg = 0;
        q->ack_off = 0;
    }
    if (pend) { /* the last record handed out was in it: nothing left to acknowledge */
        q->npend = 0;
        q->pend_records = 0;
        q->next_seg = q->ack_seg;
        q->next_off = q->ack_off;
    }
}

/* Fully acknowledged segments go away, except the one being written. */
static void gc_segments(struct rw_diskq *q)
{
    while (q->ack_seg > 0 && q->nsegs > 1)
        delete_segment(q, 0);
    if (q->nsegs > 1 && q->ack_seg == 0 && q->ack_off >= q->segs[0].size)
        drop_first_segment(q);
}

static uint64_t total_bytes(const struct rw_diskq *q)
{
    uint64_t t = 0;
    for (size_t i = 0; i < q->nsegs; i++)
        t += q->segs[i].size;
    return t;
}

static int open_write_segment(struct rw_diskq *q, uint64_t seq)
{
    char path[4200];
    seg_path(q, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (fd < 0)
        return SS_EIO;
    if (q->wfd >= 0)
        close(q->wfd);
    q->wfd = fd;
    sync_dir(q->dir);
    return 0;
}

/* ---- API -------------------------------------------------------------------------- */

int rw_diskq_open(const struct rw_diskq_opts *o, struct rw_diskq **out)
{
    *out = NULL;
    if (!o->dir || !o->dir[0])
        return SS_EINVAL;
    if (mkdirs(o->dir) != 0) {
        ss_error("diskq", "cannot create queue directory %s: %s", o->dir, strerror(errno));
        return SS_EIO;
    }
    struct rw_diskq *q = calloc(1, sizeof *q);
    if (!q || !(q->dir = strdup(o->dir))) {
        free(q);
        return SS_ENOMEM;
    }
    pthread_mutex_init(&q->mu, NULL);
    snprintf(q->name, sizeof q->name, "%s", o->name ? o->name : o->dir);
    q->wfd = -1;
    q->max_bytes = o->max_bytes;
    q->segment_bytes = o->segment_bytes ? o->segment_bytes : 64u << 20;
    if (q->max_bytes && q->segment_bytes > q->max_bytes / 4)
        q->segment_bytes = q->max_bytes / 4 > 4096 ? q->max_bytes / 4 : 4096;
    q->max_age_ms = o->max_age_ms;
    q->fsync_interval_ms = o->fsync_interval_ms;

    /* segments present, sorted */
    DIR *d = opendir(q->dir);
    uint64_t *seqs = NULL;
    size_t nseq = 0, capseq = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            char *end;
            if (l < 5 || strcmp(e->d_name + l - 4, ".seg") != 0)
                continue;
            uint64_t seq = strtoull(e->d_name, &end, 10);
            if (end != e->d_name + l - 4)
                continue;
            if (nseq == capseq) {
                capseq = capseq ? capseq * 2 : 16;
                uint64_t *ns = realloc(seqs, capseq * sizeof *ns);
                if (!ns)
                    break;
                seqs = ns;
            }
            seqs[nseq++] = seq;
        }
        closedir(d);
    }
    if (nseq) /* qsort(NULL, 0) is undefined */
        qsort(seqs, nseq, sizeof *seqs, cmp_u64);
    for (size_t i = 0; i < nseq; i++)
        push_segment(q, seqs[i]);
    free(seqs);

    /* checkpoint: first unacknowledged position */
    char cp[4200];
    snprintf(cp, sizeof cp, "%s/checkpoint", q->dir);
    FILE *f = fopen(cp, "r");
    unsigned long long cseq = 0, coff = 0;
    bool have_cp = f && fscanf(f, "%llu %llu", &cseq, &coff) == 2;
    if (f)
        fclose(f);
    size_t start = 0;
    uint64_t start_off = 0;
    if (have_cp) {
        /* segments before the checkpoint's were acknowledged: remove leftovers */
        while (q->nsegs && q->segs[0].seq < cseq)
            delete_segment(q, 0);
        if (q->nsegs && q->segs[0].seq == cseq)
            start_off = coff;
    }
    for (size_t i = start; i < q->nsegs; i++)
        scan_segment(q, &q->segs[i], i == 0 ? start_off : 0, i + 1 == q->nsegs);
    if (q->nsegs && start_off > q->segs[0].size)
        start_off = q->segs[0].size;
    q->rseg = q->ack_seg = 0;
    q->roff = q->ack_off = start_off;
    gc_segments(q);

    uint64_t next_seq = q->nsegs ? q->segs[q->nsegs - 1].seq : 0;
    if (!q->nsegs || q->segs[q->nsegs - 1].size >= q->segment_bytes) {
        next_seq++;
        if (push_segment(q, next_seq)) {
            rw_diskq_close(q);
            return SS_ENOMEM;
        }
    }
    if (open_write_segment(q, q->segs[q->nsegs - 1].seq) != 0) {
        ss_error("diskq", "queue %s: cannot open segment in %s: %s", q->name, q->dir, strerror(errno));
        rw_diskq_close(q);
        return SS_EIO;
    }
    q->last_sync_ms = ss_mono_ms();
    struct rw_diskq_stats st;
    *out = q;
    rw_diskq_get_stats(q, &st);
    if (st.samples || st.corrupt_records)
        ss_info("diskq",
                "queue %s: %llu samples in %llu bytes on disk to replay%s%llu damaged records skipped",
                q->name, (unsigned long long)st.samples, (unsigned long long)st.bytes,
                st.corrupt_records ? "; " : " (", (unsigned long long)st.corrupt_records);
    return 0;
}

int rw_diskq_append(struct rw_diskq *q, const void *payload, size_t len, int64_t first_ts, int64_t last_ts,
                    uint32_t samples)
{
    uint64_t rec = HDR_BYTES + META_BYTES + (uint64_t)len;
    if (len + META_BYTES > MAX_RECORD || (q->max_bytes && rec > q->max_bytes))
        return SS_ELIMIT;
    unsigned char *buf = malloc(rec);
    if (!buf)
        return SS_ENOMEM;
    put32(buf, REC_MAGIC);
    put32(buf + 4, (uint32_t)(META_BYTES + len));
    put64(buf + 12, (uint64_t)first_ts);
    put64(buf + 20, (uint64_t)last_ts);
    put32(buf + 28, samples);
    memcpy(buf + 32, payload, len);
    put32(buf + 8, rw_crc32c(buf + 12, META_BYTES + len));

    pthread_mutex_lock(&q->mu);
    int rc = 0;
    struct segment *w = &q->segs[q->nsegs - 1];
    if (w->size && w->size + rec > q->segment_bytes) { /* rotate */
        uint64_t seq = w->seq + 1;
        if (q->wfd >= 0)
            fsync(q->wfd);
        rc = push_segment(q, seq);
        if (!rc)
            rc = open_write_segment(q, seq);
        if (rc)
            goto out;
    }
    /* Space bound: drop the oldest data, never the record being written. */
    while (q->max_bytes && total_bytes(q) + rec > q->max_bytes && q->nsegs > 1) {
        struct segment *old = &q->segs[0];
        uint64_t inflight = 0; /* handed out for replay, not yet acknowledged */
        for (size_t j = 0; j < q->npend; j++)
            if (q->pend[j].seg == 0)
                inflight += q->pend[j].samples;
        if (inflight > old->samples)
            inflight = old->samples;
        q->st.dropped_space_samples += old->samples - inflight;
        q->orphan_samples += inflight;
        ss_warn("diskq", "queue %s: max_disk_bytes reached, dropping oldest segment with %llu unsent samples",
                q->name, (unsigned long long)(old->samples - inflight));
        drop_first_segment(q);
    }
    w = &q->segs[q->nsegs - 1];
    ssize_t wr = write(q->wfd, buf, rec);
    if (wr != (ssize_t)rec) {
        int err = errno;
        if (wr > 0 && ftruncate(q->wfd, (off_t)w->size) != 0) { /* undo a short write */
        }
        q->st.write_errors++;
        if (!q->broken)
            ss_error("diskq", "queue %s: cannot write to %s: %s; keeping data in memory", q->name, q->dir,
                     wr < 0 ? strerror(err) : "short write");
        q->broken = true;
        rc = SS_EIO;
        goto out;
    }
    if (q->broken)
        ss_info("diskq", "queue %s: writing to %s again", q->name, q->dir);
    q->broken = false;
    if (!w->first_ts)
        w->first_ts = first_ts;
    w->size += rec;
    w->samples += samples;
    q->dirty = true;
    q->st.appended_records++;
    if (q->fsync_interval_ms == 0 || ss_mono_ms() - q->last_sync_ms >= q->fsync_interval_ms) {
        fsync(q->wfd);
        q->dirty = false;
        q->last_sync_ms = ss_mono_ms();
    }
out:
    pthread_mutex_unlock(&q->mu);
    free(buf);
    return rc;
}

int rw_diskq_next(struct rw_diskq *q, struct ss_buf *payload, int64_t *first_ts, int64_t *last_ts,
                  uint32_t *samples)
{
    pthread_mutex_lock(&q->mu);
    int rc = SS_ENOTFOUND;
    if (q->npend == RW_DISKQ_MAX_PENDING) { /* acknowledge (or rewind) first */
        pthread_mutex_unlock(&q->mu);
        return SS_ELIMIT;
    }
    while (q->rseg < q->nsegs) {
        struct segment *s = &q->segs[q->rseg];
        if (q->roff >= s->size) {
            if (q->rseg + 1 >= q->nsegs)
                break; /* at the write position */
            q->rseg++;
            q->roff = 0;
            continue;
        }
        char path[4200];
        seg_path(q, s->seq, path, sizeof path);
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            q->rseg++;
            q->roff = 0;
            continue;
        }
        uint64_t len = check_record(fd, q->roff, s->size, payload, first_ts, last_ts, samples);
        if (!len) {
            q->st.corrupt_records++;
            uint64_t nxt = resync(fd, q->roff + 1, s->size);
            ss_warn("diskq", "queue %s: damaged record at %s:%llu skipped", q->name, path,
                    (unsigned long long)q->roff);
            close(fd);
            q->roff = nxt;
            /* nothing to deliver: the skipped bytes count as acknowledged */
            if (q->ack_seg == q->rseg) {
                q->ack_off = q->roff;
                write_checkpoint(q);
            }
            continue;
        }
        close(fd);
        if (q->max_age_ms > 0 && *last_ts > 0 && ss_now_ms() - *last_ts > q->max_age_ms) {
            q->st.dropped_age_samples += *samples;
            s->samples -= s->samples >= *samples ? *samples : s->samples;
            q->roff += len;
            if (q->ack_seg == q->rseg) {
                q->ack_off = q->roff;
                write_checkpoint(q);
            }
            continue;
        }
        if (q->npend && q->pend[q->npend - 1].seg == q->rseg)
            q->pend[q->npend - 1].samples += *samples;
        else
            q->pend[q->npend++] = (struct pending_seg){q->rseg, *samples};
        q->pend_records++;
        q->next_seg = q->rseg;
        q->next_off = q->roff + len;
        q->roff += len; /* the next call hands out the record after it */
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int rw_diskq_ack(struct rw_diskq *q)
{
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    q->orphan_samples = 0; /* delivered (or counted by the caller) */
    if (q->npend) {
        for (size_t i = 0; i < q->npend; i++) {
            struct segment *s = &q->segs[q->pend[i].seg];
            s->samples -= s->samples >= q->pend[i].samples ? q->pend[i].samples : s->samples;
        }
        q->ack_seg = q->next_seg;
        q->ack_off = q->next_off;
        q->npend = 0;
        q->st.replayed_records += q->pend_records;
        q->pend_records = 0;
        rc = write_checkpoint(q);
        gc_segments(q);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Hand the last record out again on the next call (delivery failed, e.g. shutdown). */
void rw_diskq_rewind(struct rw_diskq *q)
{
    pthread_mutex_lock(&q->mu);
    q->rseg = q->ack_seg;
    q->roff = q->ack_off;
    q->npend = 0;
    q->pend_records = 0;
    q->st.dropped_space_samples += q->orphan_samples; /* their segment is gone */
    q->orphan_samples = 0;
    pthread_mutex_unlock(&q->mu);
}

bool rw_diskq_empty(struct rw_diskq *q)
{
    pthread_mutex_lock(&q->mu);
    bool empty = true;
    for (size_t i = q->ack_seg; i < q->nsegs && empty; i++)
        empty = i == q->ack_seg ? q->ack_off >= q->segs[i].size : q->segs[i].size == 0;
    pthread_mutex_unlock(&q->mu);
    return empty;
}

void rw_diskq_get_stats(struct rw_diskq *q, struct rw_diskq_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    out->bytes = total_bytes(q);
    out->samples = 0;
    out->oldest_ts = 0;
    for (size_t i = q->ack_seg; i < q->nsegs; i++) {
        out->samples += q->segs[i].samples;
        if (!out->oldest_ts && q->segs[i].samples)
            out->oldest_ts = q->segs[i].first_ts;
    }
    out->broken = q->broken;
    pthread_mutex_unlock(&q->mu);
}

int rw_diskq_sync(struct rw_diskq *q)
{
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (q->dirty && q->wfd >= 0) {
        rc = fsync(q->wfd) == 0 ? 0 : SS_EIO;
        q->dirty = false;
        q->last_sync_ms = ss_mono_ms();
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void rw_diskq_close(struct rw_diskq *q)
{
    if (!q)
        return;
    if (q->wfd >= 0) {
        fsync(q->wfd);
        close(q->wfd);
    }
    /* an empty newest segment is not worth keeping */
    if (q->nsegs && q->segs[q->nsegs - 1].size == 0) {
        char path[4200];
        seg_path(q, q->segs[q->nsegs - 1].seq, path, sizeof path);
        unlink(path);
    }
    pthread_mutex_destroy(&q->mu);
    free(q->segs);
    free(q->dir);
    free(q);
}
