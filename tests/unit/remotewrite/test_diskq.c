/* test_diskq.c: the on-disk queue: order, acknowledgement across reopen, damaged
 * records skipped alone, torn tails, the byte bound, max age and write errors. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "remotewrite.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ss-diskq-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct rw_diskq *open_q(uint64_t max_bytes, int64_t max_age)
{
    struct rw_diskq_opts o = {.dir = dir,
                              .name = "test",
                              .max_bytes = max_bytes,
                              .max_age_ms = max_age,
                              .fsync_interval_ms = 1000,
                              .segment_bytes = 4096};
    struct rw_diskq *q = NULL;
    assert_int_equal(rw_diskq_open(&o, &q), 0);
    return q;
}

static void append_n(struct rw_diskq *q, int from, int to, int64_t ts)
{
    for (int i = from; i < to; i++) {
        char p[200];
        int n = snprintf(p, sizeof p, "record-%06d-%0100d", i, i);
        assert_int_equal(rw_diskq_append(q, p, (size_t)n, ts, ts, 10), 0);
    }
}

/* Reads everything, acking each; returns the record numbers seen in order. */
static int read_all(struct rw_diskq *q, int *out, int cap)
{
    struct ss_buf b;
    ss_buf_init(&b, 0);
    int n = 0;
    int64_t a, z;
    uint32_t s;
    while (rw_diskq_next(q, &b, &a, &z, &s) == 0) {
        assert_true(b.len > 14);
        assert_int_equal(s, 10);
        if (n < cap)
            out[n] = atoi(b.data + 7);
        n++;
        assert_int_equal(rw_diskq_ack(q), 0);
    }
    ss_buf_free(&b);
    return n;
}

static void test_order_and_reopen(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 100, 1000);
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_int_equal(st.samples, 1000);
    /* read 40, ack them, read one more without ack: it must come back after reopen */
    struct ss_buf b;
    ss_buf_init(&b, 0);
    int64_t a, z;
    uint32_t s;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
        assert_int_equal(atoi(b.data + 7), i);
        assert_int_equal(rw_diskq_ack(q), 0);
    }
    assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
    ss_buf_free(&b);
    rw_diskq_close(q);
    q = open_q(0, 0);
    rw_diskq_get_stats(q, &st);
    assert_int_equal(st.samples, 600);
    int seen[200];
    int n = read_all(q, seen, 200);
    assert_int_equal(n, 60);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 40 + i);
    assert_true(rw_diskq_empty(q));
    /* fully acknowledged segments were deleted: at most the write segment remains */
    rw_diskq_get_stats(q, &st);
    assert_true(st.bytes <= 4096);
    append_n(q, 100, 105, 1000);
    n = read_all(q, seen, 200);
    assert_int_equal(n, 5);
    assert_int_equal(seen[0], 100);
    rw_diskq_close(q);
}

/* Several records handed out, then one ack (the replayer sends them in one request):
 * all of them are acknowledged, their samples leave the count, and a rewind instead
 * hands the first of them out again. Past RW_DISKQ_MAX_PENDING segments, next asks for
 * an ack first. */
static void test_ack_several(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 10, 1000);
    struct ss_buf b;
    ss_buf_init(&b, 0);
    int64_t a, z;
    uint32_t s;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
    rw_diskq_rewind(q);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
        assert_int_equal(atoi(b.data + 7), i);
    }
    assert_int_equal(rw_diskq_ack(q), 0);
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_int_equal(st.samples, 60);
    assert_int_equal(st.replayed_records, 4);
    rw_diskq_close(q);
    q = open_q(0, 0); /* the checkpoint holds all four */
    int seen[20];
    assert_int_equal(read_all(q, seen, 20), 6);
    assert_int_equal(seen[0], 4);
    /* records of many segments (about 28 per 4 KiB segment) */
    append_n(q, 100, 700, 1000);
    int handed = 0, rc;
    while ((rc = rw_diskq_next(q, &b, &a, &z, &s)) == 0)
        assert_int_equal(atoi(b.data + 7), 100 + handed++);
    assert_int_equal(rc, SS_ELIMIT);
    assert_true(handed > 15 * 20 && handed < 600); /* 16 segments at most */
    assert_int_equal(rw_diskq_ack(q), 0);
    rw_diskq_get_stats(q, &st);
    assert_int_equal(st.samples, (uint64_t)(600 - handed) * 10);
    assert_int_equal(read_all(q, seen, 20), 600 - handed);
    assert_true(rw_diskq_empty(q));
    rw_diskq_close(q);
    ss_buf_free(&b);
}

static void test_rewind(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 3, 1000);
    struct ss_buf b;
    ss_buf_init(&b, 0);
    int64_t a, z;
    uint32_t s;
    assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
    rw_diskq_rewind(q);
    assert_int_equal(rw_diskq_next(q, &b, &a, &z, &s), 0);
    assert_int_equal(atoi(b.data + 7), 0);
    ss_buf_free(&b);
    rw_diskq_close(q);
}

static void corrupt_file_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void first_segment(char *out, size_t cap)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s/*.seg | head -1", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)cap, p));
    out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

static void test_flipped_bytes_lose_one_record(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 20, 1000);
    rw_diskq_close(q);
    char seg[512];
    first_segment(seg, sizeof seg);
    /* every record is 32 + 114 = 146 bytes: damage record 3's payload, record 7's
     * length field and record 11's magic */
    corrupt_file_byte(seg, 3 * 146 + 60);
    corrupt_file_byte(seg, 7 * 146 + 5);
    corrupt_file_byte(seg, 11 * 146 + 1);
    q = open_q(0, 0);
    int seen[64];
    int n = read_all(q, seen, 64);
    assert_int_equal(n, 17);
    for (int i = 0, k = 0; i < 20; i++) {
        if (i == 3 || i == 7 || i == 11)
            continue;
        assert_int_equal(seen[k++], i);
    }
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_true(st.corrupt_records >= 3);
    rw_diskq_close(q);
}

static void test_torn_tail(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 10, 1000);
    rw_diskq_close(q);
    char seg[512];
    first_segment(seg, sizeof seg);
    assert_int_equal(truncate(seg, 9 * 146 + 50), 0); /* the last record is cut */
    q = open_q(0, 0);
    append_n(q, 10, 12, 1000); /* appends continue after the last good record */
    int seen[64];
    int n = read_all(q, seen, 64);
    assert_int_equal(n, 11);
    assert_int_equal(seen[8], 8);
    assert_int_equal(seen[9], 10);
    rw_diskq_close(q);
}

static void test_truncated_middle_segment(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    append_n(q, 0, 60, 1000); /* several 4 KiB segments */
    rw_diskq_close(q);
    char seg[512];
    first_segment(seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    assert_int_equal(truncate(seg, stt.st_size - 70), 0); /* mid-record, not the newest */
    q = open_q(0, 0);
    int seen[128];
    int n = read_all(q, seen, 128);
    assert_int_equal(n, 59); /* only the cut record is lost */
    rw_diskq_close(q);
}

static uint64_t dir_bytes(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "du -sb --apparent-size %s | cut -f1", dir);
    FILE *p = popen(cmd, "r");
    char line[64] = "0";
    if (p) {
        if (!fgets(line, sizeof line, p))
            line[0] = '0';
        pclose(p);
    }
    return strtoull(line, NULL, 10);
}

static void test_max_bytes_drops_oldest(void **state)
{
    (void)state;
    const uint64_t max = 16384; /* segments of 4096 */
    struct rw_diskq *q = open_q(max, 0);
    for (int i = 0; i < 500; i++) {
        append_n(q, i, i + 1, 1000);
        assert_true(dir_bytes() <= max + 4096 + 4096 /* directory entry and checkpoint */);
    }
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_true(st.dropped_space_samples > 0);
    assert_true(st.bytes <= max);
    int seen[600];
    int n = read_all(q, seen, 600);
    assert_true(n > 50 && n < 500);
    assert_int_equal(seen[n - 1], 499); /* newest kept */
    for (int i = 1; i < n; i++)
        assert_int_equal(seen[i], seen[i - 1] + 1);
    assert_int_equal((uint64_t)(500 - n) * 10, st.dropped_space_samples);
    rw_diskq_close(q);
}

/* Records handed out for replay (not yet acknowledged) when max_disk_bytes drops
 * their segment are in flight: delivered (ack), they are not also counted as dropped;
 * come back (rewind), they are, since their segment is gone. Either way every sample
 * is counted once: delivered + dropped + still queued = appended. */
static void test_max_bytes_inflight_counted_once(void **state)
{
    for (int deliver = 0; deliver < 2; deliver++) {
        if (deliver) { /* a fresh directory */
            assert_int_equal(teardown(state), 0);
            assert_int_equal(setup(state), 0);
        }
        struct rw_diskq *q = open_q(16384, 0); /* segments of 4096 */
        append_n(q, 0, 20, 1000);
        struct ss_buf b;
        ss_buf_init(&b, 0);
        int64_t a, z;
        uint32_t smp;
        uint64_t inflight = 0;
        for (int i = 0; i < 5; i++) { /* five records of the oldest segment handed out */
            assert_int_equal(rw_diskq_next(q, &b, &a, &z, &smp), 0);
            inflight += smp;
        }
        append_n(q, 20, 400, 1000); /* the oldest segments go for space meanwhile */
        uint64_t delivered = 0;
        if (deliver) {
            assert_int_equal(rw_diskq_ack(q), 0);
            delivered = inflight;
        } else {
            rw_diskq_rewind(q);
        }
        int seen[600];
        int n = read_all(q, seen, 600);
        struct rw_diskq_stats st;
        rw_diskq_get_stats(q, &st);
        assert_true(st.dropped_space_samples > 0);
        assert_int_equal(delivered + (uint64_t)n * 10 + st.dropped_space_samples, 400u * 10);
        ss_buf_free(&b);
        rw_diskq_close(q);
    }
}

static void test_max_age(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 60000);
    int64_t now = ss_now_ms();
    append_n(q, 0, 5, now - 3600 * 1000); /* an hour old */
    append_n(q, 5, 8, now);
    int seen[16];
    int n = read_all(q, seen, 16);
    assert_int_equal(n, 3);
    assert_int_equal(seen[0], 5);
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_int_equal(st.dropped_age_samples, 50);
    rw_diskq_close(q);
}

static void test_write_error_reported(void **state)
{
    (void)state;
    struct rw_diskq *q = open_q(0, 0);
    /* a file size limit makes write(2) fail like a full disk would (root ignores
     * permissions, so a read-only directory would not) */
    struct rlimit old, lim = {2048, 2048};
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int failures = 0;
    for (int i = 0; i < 60; i++) {
        char p[200];
        int n = snprintf(p, sizeof p, "record-%06d-%0100d", i, i);
        failures += rw_diskq_append(q, p, (size_t)n, 1, 1, 10) != 0;
    }
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(failures > 0);
    struct rw_diskq_stats st;
    rw_diskq_get_stats(q, &st);
    assert_true(st.write_errors > 0);
    assert_true(st.broken);
    /* what was written is still readable and intact */
    int seen[64];
    int n = read_all(q, seen, 64);
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], i);
    rw_diskq_close(q);
}

static void test_crc32c_vector(void **state)
{
    (void)state;
    /* RFC 3720 B.4: CRC-32C of "123456789" */
    assert_int_equal(rw_crc32c("123456789", 9), 0xE3069283u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bytes_lose_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_middle_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_bytes_inflight_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_reported, setup, teardown),
        cmocka_unit_test(test_crc32c_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
