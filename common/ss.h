/* ss.h: shared infrastructure for every scrapeship module.
 *
 * Error codes, logging, bounded byte buffers, a chunked arena whose strings never
 * move, label sets, and Prometheus duration/size syntax. Everything here is small,
 * has no dependencies beyond libc, and is safe to call from any thread unless a
 * function says otherwise. Names are prefixed `ss_`.
 */
#ifndef SS_H
#define SS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------ */

/* Functions return 0 or a negative ss_err. The numbers are stable: they appear in
 * logs and tests. */
enum ss_err {
    SS_OK = 0,
    SS_ENOMEM = -1,    /* allocation failed */
    SS_EINVAL = -2,    /* bad argument or bad input */
    SS_EPARSE = -3,    /* malformed exposition, YAML, JSON, ... */
    SS_ELIMIT = -4,    /* a configured or built-in limit was exceeded */
    SS_EIO = -5,       /* file or socket I/O failed */
    SS_ETIMEDOUT = -6, /* deadline passed */
    SS_EHTTP = -7,     /* HTTP status not acceptable */
    SS_ECONFIG = -8,   /* configuration is invalid */
    SS_ENOTFOUND = -9, /* lookup found nothing */
    SS_EAUTH = -10,    /* credentials missing, expired or rejected */
};

const char *ss_strerror(int err);

/* ---- logging ----------------------------------------------------------- */

enum ss_log_level { SS_LOG_DEBUG = 0, SS_LOG_INFO, SS_LOG_WARN, SS_LOG_ERROR };

/* Logs go to stderr as logfmt (`ts=... level=... msg="..."`), one line per call.
 * Never pass secrets: the logger cannot know what is one. */
void ss_log_set_level(enum ss_log_level level);
void ss_log_set_json(bool json);
bool ss_log_enabled(enum ss_log_level level);
void ss_log(enum ss_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ss_debug(comp, ...)                                                                                  \
    do {                                                                                                     \
        if (ss_log_enabled(SS_LOG_DEBUG))                                                                    \
            ss_log(SS_LOG_DEBUG, comp, __VA_ARGS__);                                                         \
    } while (0)
#define ss_info(comp, ...)  ss_log(SS_LOG_INFO, comp, __VA_ARGS__)
#define ss_warn(comp, ...)  ss_log(SS_LOG_WARN, comp, __VA_ARGS__)
#define ss_error(comp, ...) ss_log(SS_LOG_ERROR, comp, __VA_ARGS__)

/* ---- strings and buffers ----------------------------------------------- */

/* A borrowed, not necessarily NUL-terminated slice. */
struct ss_str {
    const char *p;
    size_t len;
};

#define SS_STR(lit) ((struct ss_str){(lit), sizeof(lit) - 1})
bool ss_str_eq(struct ss_str a, struct ss_str b);
bool ss_str_eq_cstr(struct ss_str a, const char *b);
int ss_str_cmp(struct ss_str a, struct ss_str b);

/* A borrowed key and value, both NUL-terminated: a header, a URL parameter, a label
 * as written in a config. */
struct ss_kv {
    const char *key;
    const char *value;
};

/* A growable byte buffer with a hard maximum (`max`, 0 = unlimited). Appending past
 * the maximum fails with SS_ELIMIT and leaves the buffer as it was. The data is kept
 * NUL-terminated for convenience; `len` excludes the NUL. */
struct ss_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void ss_buf_init(struct ss_buf *b, size_t max);
int ss_buf_reserve(struct ss_buf *b, size_t extra);
int ss_buf_append(struct ss_buf *b, const void *p, size_t n);
int ss_buf_append_str(struct ss_buf *b, const char *s);
int ss_buf_printf(struct ss_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_buf_reset(struct ss_buf *b); /* len = 0, keeps the memory */
void ss_buf_free(struct ss_buf *b);  /* frees; the struct may be reused after ss_buf_init */
/* Like ss_buf_free, but wipes the bytes first: for buffers that held secrets. */
void ss_buf_free_secret(struct ss_buf *b);

/* Room for `need` elements of `elem` bytes in the array v of *cap elements: doubles
 * (from `first`) until it fits. Returns the array (moved or not), or NULL when out of
 * memory (v and *cap unchanged). */
void *ss_array_grow(void *v, size_t *cap, size_t need, size_t elem, size_t first);

/* Wipe memory that held a secret (not optimised away). */
void ss_wipe(void *p, size_t n);
/* Wipe and free a NUL-terminated secret string; NULL is a no-op. */
void ss_free_secret(char *s);

/* Read a secret file (password_file, credentials_file, token files): whole file,
 * surrounding whitespace trimmed (Go's strings.TrimSpace, as Prometheus and client-go
 * trim them), at most 64 KiB. The caller frees with ss_free_secret. NULL when
 * unreadable or too big. Read it again on every use: such files rotate. */
char *ss_read_secret_file(const char *path);

/* Format a double the way Go's strconv.FormatFloat(v, 'g', -1, 64) does in
 * Prometheus' text output: shortest round-trip form, "NaN", "+Inf", "-Inf".
 * Returns the length written (buf must hold at least 32 bytes). */
int ss_format_double(char *buf, size_t cap, double v);
/* The same value as Prometheus' HTTP API prints it: 'f' form (0.00001), 'e' form only
 * when |v| < 1e-6 or |v| >= 1e21; "-0" for negative zero. */
int ss_format_double_api(char *buf, size_t cap, double v);

/* ---- arena ------------------------------------------------------------- */

/* A chunked bump allocator. Pointers it returns stay valid until ss_arena_reset or
 * ss_arena_free; growing never moves earlier allocations. Reset keeps the first
 * chunk, so steady-state use allocates nothing. */
struct ss_arena_chunk;
struct ss_arena {
    struct ss_arena_chunk *head;
    size_t chunk_size;
    size_t used_total;
};

void ss_arena_init(struct ss_arena *a, size_t chunk_size);
void *ss_arena_alloc(struct ss_arena *a, size_t n);                  /* 8-byte aligned, NULL on OOM */
char *ss_arena_strndup(struct ss_arena *a, const char *p, size_t n); /* NUL-terminated */
void ss_arena_reset(struct ss_arena *a);
void ss_arena_free(struct ss_arena *a);

/* ---- labels ------------------------------------------------------------ */

/* A label. name and value point into memory owned elsewhere (an arena, the scrape
 * body, the config); both are NUL-terminated where the owner says so, and the
 * lengths are always authoritative. */
struct ss_label {
    struct ss_str name;
    struct ss_str value;
};

/* A mutable label set with its own arena for strings it creates.
 * Invariant after ss_labels_sort: sorted by name, names unique. */
struct ss_labels {
    struct ss_label *v;
    size_t n;
    size_t cap;
    struct ss_arena arena;
};

void ss_labels_init(struct ss_labels *ls);
void ss_labels_reset(struct ss_labels *ls); /* empties, keeps memory */
void ss_labels_free(struct ss_labels *ls);
/* Copy the strings into one block of their size and trim the array to the labels it
 * holds: for a set kept long (a target's labels), not the chunk and the array that
 * building it left. Slices into the old memory become invalid. Returns 0, or
 * SS_ENOMEM with the set unchanged. */
int ss_labels_compact(struct ss_labels *ls);
/* Append without checking for duplicates (the caller knows). Strings are borrowed. */
int ss_labels_push(struct ss_labels *ls, struct ss_str name, struct ss_str value);
/* Set name=value, replacing an existing value. An empty value deletes the label,
 * as Prometheus' labels.Builder does. Strings are borrowed: use ss_labels_setc to
 * copy them into the set's arena. */
int ss_labels_set(struct ss_labels *ls, struct ss_str name, struct ss_str value);
int ss_labels_setc(struct ss_labels *ls, struct ss_str name, struct ss_str value);
const struct ss_str *ss_labels_get(const struct ss_labels *ls, struct ss_str name);
void ss_labels_del(struct ss_labels *ls, struct ss_str name);
void ss_labels_sort(struct ss_labels *ls);                              /* insertion sort: sets are small */
int ss_labels_copy(struct ss_labels *dst, const struct ss_labels *src); /* deep copy */
/* 64-bit hash of a sorted label set (names and values, with separators). */
uint64_t ss_labels_hash(const struct ss_labels *ls);
/* The series' group for remote write's queues: ss_hash_str over the values of
 * __name__, instance and job (those present, in that order) of labels sorted by name. */
uint64_t ss_labels_group_hash(const struct ss_label *v, size_t n);
/* The same mixing for building other keys: h = ss_hash_str(h, s) for each part. */
uint64_t ss_hash_str(uint64_t h, struct ss_str s);
/* A hash of one long text (a series as exposed), faster than ss_hash_str on it and
 * not equal to it. */
uint64_t ss_hash_text(uint64_t h, struct ss_str s);

/* Labels as remote write puts them on the wire: each one a prometheus.Label message
 * in field 1 of a TimeSeries (tag 0x0a, length, then the name as field 1 and the value
 * as field 2, each left out when empty, as proto3 does). The scrape module stores its
 * series in this form and remote write copies the bytes into requests, so the format
 * lives here, below both. ss_labels_wire_size is the exact byte count;
 * ss_labels_wire_write writes that many bytes at p and returns the end. */
size_t ss_labels_wire_size(const struct ss_label *l, size_t n);
uint8_t *ss_labels_wire_write(uint8_t *p, const struct ss_label *l, size_t n);
/* Decode such bytes into out[0..cap): the labels point into p. ends (optional, cap
 * entries) gets the offset just past each label's field. Returns the number of
 * labels, or -1 when the bytes are malformed or hold more than cap labels. */
long ss_labels_wire_read(const void *p, size_t len, struct ss_label *out, uint32_t *ends, size_t cap);

/* Merge two label arrays, each sorted by name, into out (sorted). On a name present
 * in both, `a` wins: this is how external labels are added to a series (Prometheus
 * adds an external label only where the series does not have it). Returns the count,
 * or -1 when cap is too small. */
long ss_labels_merge_sorted(const struct ss_label *a, size_t na, const struct ss_label *b, size_t nb,
                            struct ss_label *out, size_t cap);

/* ---- self-metrics registry --------------------------------------------- */

/* Modules register a function that appends their metrics in Prometheus text format;
 * the HTTP server calls every one for /metrics. Renderers run on the server's thread
 * and must be thread-safe (read atomics or take their own lock). */
typedef int (*ss_metrics_render_fn)(void *ud, struct ss_buf *out);
int ss_metrics_register(ss_metrics_render_fn fn, void *ud);
void ss_metrics_unregister(ss_metrics_render_fn fn, void *ud);
int ss_metrics_render(struct ss_buf *out);

/* ---- units ------------------------------------------------------------- */

/* Prometheus duration syntax: "1h30m", "15s", "500ms", "2d", "1w", "1y", "0".
 * Result in milliseconds. */
int ss_parse_duration_ms(const char *s, int64_t *out_ms);
/* Format as Prometheus does: "1m30s", "15s", "500ms", "0s". buf >= 32 bytes. */
int ss_format_duration_ms(char *buf, size_t cap, int64_t ms);
/* Prometheus size syntax (units.Base2Bytes): "512", "10MB", "1GiB", "64KB", "0".
 * KB/MB/GB/TB are powers of 1024, as in Prometheus. */
int ss_parse_size(const char *s, uint64_t *out);
/* True when v is finite and has no fractional part, as v == floor(v) but without
 * libm (the scrape and remote-write paths need none of it). */
bool ss_is_integral(double v);

/* ---- memory ------------------------------------------------------------ */

/* Give back to the kernel the pages that starting needed and running does not: free
 * heap (malloc_trim), and the resident pages of read-only file mappings (the code and
 * constants of the binary and of every shared library), which a later touch maps back
 * from the page cache. Only private, non-writable file mappings that hold no page of
 * their own, in memory or in swap (smaps "Anonymous" and "Swap" 0 kB), are dropped, so
 * no byte the process wrote is ever lost. While the process is single-threaded the
 * pages are unmapped (MADV_DONTNEED); once other threads run, which could replace a
 * mapping between the smaps walk and the call, they are paged out (MADV_PAGEOUT,
 * which never discards data). Call it when start-up or a reload is over; it costs a
 * walk of /proc/self/smaps and, later, one minor fault per page that is used again.
 * Returns the KiB dropped from file mappings (what smaps counted resident just before). */
size_t ss_mem_trim(void);
/* Fix malloc's thresholds (glibc; first thing in main): blocks of 1 MiB and more are
 * mapped on their own and unmapped when freed, and free heap past 2 MiB at its top
 * goes back. glibc otherwise raises both after the first big block is freed (up to
 * 32 MB and 64 MB), and the big buffers of one huge scrape (kube-state-metrics: the
 * sample list, the series table's arrays) were then carved from the heap and kept.
 * Not lower: snappy allocates 172 KiB of working memory per call, and mapping it for
 * every 64 KiB block cost 20% more CPU per sample. */
void ss_mem_tune(void);

/* ---- time -------------------------------------------------------------- */

int64_t ss_now_ms(void);      /* wall clock, ms since the epoch */
int64_t ss_mono_ms(void);     /* monotonic clock, ms */
double ss_mono_seconds(void); /* monotonic clock, seconds with sub-ms precision */
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines
 * (ss_mono_deadline_ms), so that a step of the wall clock neither stretches nor cuts
 * a wait: every condition variable with a timed wait is made with it. */
int ss_cond_init_mono(pthread_cond_t *cv);
/* now + ms (negative: now) on CLOCK_MONOTONIC: the deadline for pthread_cond_timedwait
 * on an ss_cond_init_mono condition variable */
struct timespec ss_mono_deadline_ms(int64_t ms);

#endif
