/* test_memtrim.c: ss_mem_trim drops clean file pages and never a page the process wrote. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "ss.h"

#define PAGES 64

/* Rss and Anonymous (KiB) of the mapping that starts at p, from /proc/self/smaps. */
static void smaps_of(const void *p, long *rss, long *anon)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[4352];
    bool in = false;
    *rss = *anon = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo;
        if (!(line[0] >= 'A' && line[0] <= 'Z')) { /* a mapping's header; fields start upper case */
            in = sscanf(line, "%lx-", &lo) == 1 && lo == (uintptr_t)p;
            continue;
        }
        if (in) {
            sscanf(line, "Rss: %ld kB", rss);
            sscanf(line, "Anonymous: %ld kB", anon);
        }
    }
    fclose(f);
    assert_true(*rss >= 0 && *anon >= 0);
}

struct fixture {
    char path[64];
    int fd;
    size_t len, pg;
    unsigned char *want;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->pg = (size_t)sysconf(_SC_PAGESIZE);
    fx->len = fx->pg * PAGES;
    fx->want = malloc(fx->len);
    for (size_t i = 0; i < fx->len; i++)
        fx->want[i] = (unsigned char)(i * 7 + i / 4096);
    snprintf(fx->path, sizeof fx->path, "/tmp/ss-memtrim-XXXXXX");
    fx->fd = mkstemp(fx->path);
    if (fx->fd < 0 || write(fx->fd, fx->want, fx->len) != (ssize_t)fx->len || fsync(fx->fd))
        return -1; /* written back: clean pages, which the kernel may page out */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    close(fx->fd);
    unlink(fx->path);
    free(fx->want);
    free(fx);
    return 0;
}

static unsigned touch(const unsigned char *p, size_t len)
{
    unsigned sum = 0;
    for (size_t i = 0; i < len; i += 512)
        sum += ((const volatile unsigned char *)p)[i];
    return sum;
}

/* A read-only private file mapping (code, constants): its pages go, its bytes stay. */
static void test_clean_pages_dropped(void **state)
{
    struct fixture *fx = *state;
    unsigned char *p = mmap(NULL, fx->len, PROT_READ, MAP_PRIVATE, fx->fd, 0);
    assert_true(p != MAP_FAILED);
    touch(p, fx->len);
    long rss, anon;
    smaps_of(p, &rss, &anon);
    assert_int_equal(rss, (long)(fx->len / 1024));
    assert_int_equal(anon, 0);
    assert_true(ss_mem_trim() >= fx->len / 1024);
    smaps_of(p, &rss, &anon);
    assert_int_equal(rss, 0);
    assert_memory_equal(p, fx->want, fx->len); /* faulted back from the page cache */
    munmap(p, fx->len);
}

/* A mapping the process wrote to and then made read-only (as RELRO after relocation):
 * its pages are the process' own and must survive; so must a writable one's. */
static void check_written_pages_kept(const struct fixture *fx)
{
    size_t pg = fx->pg;
    unsigned char *relro = mmap(NULL, fx->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fx->fd, 0);
    unsigned char *data = mmap(NULL, fx->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fx->fd, 0);
    assert_true(relro != MAP_FAILED && data != MAP_FAILED);
    memset(relro + pg, 0xA5, pg); /* one page relocated */
    assert_int_equal(mprotect(relro, fx->len, PROT_READ), 0);
    touch(relro, fx->len);
    touch(data, fx->len); /* clean but writable: left alone too */
    long rss0, anon0, drss0, danon0;
    smaps_of(relro, &rss0, &anon0);
    smaps_of(data, &drss0, &danon0);
    assert_int_equal(anon0, (long)(pg / 1024));
    ss_mem_trim();
    long rss, anon, drss, danon;
    smaps_of(relro, &rss, &anon);
    smaps_of(data, &drss, &danon);
    assert_int_equal(rss, rss0);
    assert_int_equal(anon, (long)(pg / 1024));
    assert_int_equal(drss, drss0);
    for (size_t i = pg; i < 2 * pg; i++)
        assert_int_equal(relro[i], 0xA5);
    assert_memory_equal(relro, fx->want, pg);
    assert_memory_equal(relro + 2 * pg, fx->want + 2 * pg, fx->len - 2 * pg);
    munmap(relro, fx->len);
    munmap(data, fx->len);
}

static void test_written_pages_kept(void **state)
{
    check_written_pages_kept(*state);
}

static int wake[2];

static void *idle_thread(void *ud)
{
    (void)ud;
    char c;
    while (read(wake[0], &c, 1) < 0)
        ;
    return NULL;
}

/* With other threads running, pages are paged out, never discarded: a clean read-only
 * mapping's bytes and a written one's are all still there afterwards. */
static void test_threads_running(void **state)
{
    struct fixture *fx = *state;
    pthread_t th;
    assert_int_equal(pipe(wake), 0);
    assert_int_equal(pthread_create(&th, NULL, idle_thread, NULL), 0);
    unsigned char *p = mmap(NULL, fx->len, PROT_READ, MAP_PRIVATE, fx->fd, 0);
    assert_true(p != MAP_FAILED);
    touch(p, fx->len);
    ss_mem_trim();
    assert_memory_equal(p, fx->want, fx->len);
    munmap(p, fx->len);
    check_written_pages_kept(fx);
    assert_int_equal(write(wake[1], "x", 1), 1);
    pthread_join(th, NULL);
    close(wake[0]);
    close(wake[1]);
}

/* Free heap goes back too: a freed block in the middle of the heap stops counting. */
static void test_heap_trimmed(void **state)
{
    (void)state;
    enum { N = 64, SZ = 64 * 1024 }; /* below the mmap threshold: in the heap */
    char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SZ);
        assert_non_null(blocks[i]);
        memset(blocks[i], i, SZ);
    }
    char *keep = malloc(SZ); /* above them: the heap's top cannot shrink past it */
    assert_non_null(keep);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res0, res1;
    assert_int_equal(fscanf(f, "%ld %ld", &size, &res0), 2);
    fclose(f);
    ss_mem_trim();
    f = fopen("/proc/self/statm", "r");
    assert_int_equal(fscanf(f, "%ld %ld", &size, &res1), 2);
    fclose(f);
    free(keep);
    /* most of the 4 MiB freed (ASan keeps freed memory in quarantine: no check there) */
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(res0 - res1 >= (long)(N * SZ / 2) / sysconf(_SC_PAGESIZE));
#endif
}

/* ss_mem_tune: once a big block is freed, glibc would raise its mmap threshold to that
 * size and carve the next big blocks from the heap, which keeps them. Tuned, a block
 * of 4 MiB after a freed 8 MiB one is still a mapping of its own (mallinfo2 hblkhd),
 * whose pages go back when it is freed. */
static void test_big_blocks_stay_mapped(void **state)
{
    (void)state;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    ss_mem_tune();
    size_t big_sz = 8u << 20, sz = 4u << 20;
    char *big = malloc(big_sz);
    assert_non_null(big);
    memset(big, 1, big_sz);
    free(big);
    struct mallinfo2 before = mallinfo2();
    char *p = malloc(sz);
    assert_non_null(p);
    struct mallinfo2 after = mallinfo2();
    assert_true(after.hblkhd >= before.hblkhd + sz);
    free(p);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_pages_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_pages_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_running, setup, teardown),
        cmocka_unit_test(test_heap_trimmed),
        cmocka_unit_test(test_big_blocks_stay_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
