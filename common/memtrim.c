/* memtrim.c: give back the pages start-up needed and steady state does not.
 *
 * Loading scrapeship maps 40 shared libraries (libcurl's Kerberos, LDAP, SSH, RTMP and
 * GnuTLS among them) and runs their constructors: about 8 MB of resident pages before
 * main, most of them code and tables that are never touched again (bench/libfloor.py).
 * They are clean file pages, so dropping them from the process loses nothing: the
 * pages a scrape needs come back on first touch, from the page cache (a minor fault).
 * What stays resident is what running uses (README, Performance: the sidecar's RSS).
 */
#include "ss.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21 /* Linux 5.4 */
#endif

/* One mapping header of /proc/self/smaps: "lo-hi perms offset dev inode   path". The
 * mapping is a candidate when it is private, not writable and backed by a file. */
static bool parse_header(const char *line, uintptr_t *lo, uintptr_t *hi, bool *cand)
{
    unsigned long a, b;
    char perms[8];
    int path = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path) != 3)
        return false;
    *lo = a;
    *hi = b;
    *cand = strlen(perms) == 4 && perms[1] != 'w' && perms[3] == 'p' && path > 0 && line[path] == '/';
    return true;
}

/* Is this the only thread? (/proc/self/status "Threads:") */
static bool single_threaded(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long n = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n == 1;
}

void ss_mem_tune(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);
#endif
}

size_t ss_mem_trim(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    /* Alone, the process can be sure that a mapping it read from smaps is still there
     * when it drops its pages, and MADV_DONTNEED unmaps them whoever else maps them
     * too (libc). With other threads running, one of them could unmap that range and
     * map something else there in between (a dlclose, a file mapped for a moment), and
     * MADV_DONTNEED would wipe it: MADV_PAGEOUT instead, which never discards data
     * (it writes a page of the process' own to swap) but leaves pages that another
     * process maps too. */
    int advice = single_threaded() ? MADV_DONTNEED : MADV_PAGEOUT;
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f)
        return 0;
    char line[4096 + 256]; /* a header holds a path of up to PATH_MAX */
    uintptr_t lo = 0, hi = 0;
    bool cand = false;
    unsigned long rss = 0, own = 0, kb;
    size_t dropped = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] >= 'A' && line[0] <= 'Z') { /* a field of the current mapping */
            if (!cand)
                continue;
            if (sscanf(line, "Rss: %lu kB", &kb) == 1) {
                rss = kb;
            } else if (sscanf(line, "Anonymous: %lu kB", &kb) == 1 ||
                       sscanf(line, "Swap: %lu kB", &kb) == 1) {
                /* a page written since it was mapped (relocations, RELRO) is the
                 * process' own copy, in memory or in swap: such a mapping is left whole */
                own += kb;
            } else if (!strncmp(line, "VmFlags:", 8)) { /* the mapping's last field */
                if (!own && rss > 0 && madvise((void *)lo, hi - lo, advice) == 0)
                    dropped += rss;
                cand = false;
            }
            continue;
        }
        if (!parse_header(line, &lo, &hi, &cand))
            cand = false;
        rss = own = 0;
        if (!strchr(line, '\n')) /* a header longer than the buffer: skip its rest */
            for (int c; (c = fgetc(f)) != EOF && c != '\n';)
                ;
    }
    fclose(f);
    return dropped;
}
