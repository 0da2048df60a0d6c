/* fuzz_diskq.c: the disk queue's record reader on arbitrary segment bytes.
 *
 * The input becomes the one segment of a queue directory (optionally with a
 * checkpoint from its first bytes); opening the queue (which scans and cuts torn
 * tails), reading every record and acknowledging it must never crash, leak or loop. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remotewrite.h"

static char dir[64];

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Empty the scratch directory: segments and checkpoint of the last run. */
static bool empty_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[400];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return true;
}

/* libFuzzer ends with exit(): the scratch directory goes with the process */
static void remove_dir(void)
{
    if (empty_dir())
        rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ss-fuzz-diskq-%d", (int)getpid());
        ss_log_set_level(SS_LOG_ERROR);
        atexit(remove_dir);
    }
    mkdir(dir, 0700);
    if (!empty_dir())
        return 0;
    if (size > 1 && data[0] & 1) { /* a checkpoint "1 <offset>" from the second byte */
        char cp[64];
        int n = snprintf(cp, sizeof cp, "1 %u\n", (unsigned)data[1] * 7);
        write_file("checkpoint", (const uint8_t *)cp, (size_t)n);
    }
    write_file("00000000000000000001.seg", data, size);
    struct rw_diskq_opts o = {.dir = dir, .name = "fuzz", .max_bytes = 1 << 20, .fsync_interval_ms = 1000000};
    struct rw_diskq *q = NULL;
    if (rw_diskq_open(&o, &q) != 0)
        return 0;
    struct ss_buf b;
    ss_buf_init(&b, 0);
    int64_t a, z;
    uint32_t s;
    for (int i = 0; i < 10000 && rw_diskq_next(q, &b, &a, &z, &s) == 0; i++)
        rw_diskq_ack(q);
    /* and the queue still takes and returns a record afterwards */
    if (rw_diskq_append(q, "payload", 7, 1, 2, 3) == 0 && rw_diskq_next(q, &b, &a, &z, &s) == 0)
        rw_diskq_ack(q);
    ss_buf_free(&b);
    rw_diskq_close(q);
    return 0;
}
