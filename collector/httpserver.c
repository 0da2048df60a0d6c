/* httpserver.c: the self-metrics endpoint on libmicrohttpd's own thread.
 *
 * /metrics  every registered renderer plus process metrics, Prometheus text 0.0.4
 * /healthz  200 while the process runs (liveness)
 * /readyz   200 once the config is loaded and the engine runs, 503 before (readiness)
 * /-/reload POST: reload the config (as Prometheus' --web.enable-lifecycle endpoint)
 * Prometheus' own /-/healthy and /-/ready are served too, so existing probes work. */
#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collector.h"

struct collector_http {
    struct MHD_Daemon *d;
    void (*on_reload)(void *ud);
    void *ud;
    atomic_bool ready;
    double start_time;
};

static int render_process(struct ss_buf *b, double start_time)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    long rss_kb = 0, vm_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmRSS:", 6) == 0)
                rss_kb = strtol(line + 6, NULL, 10);
            else if (strncmp(line, "VmSize:", 7) == 0)
                vm_kb = strtol(line + 7, NULL, 10);
        }
        fclose(f);
    }
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        while (readdir(d))
            fds++;
        closedir(d);
        fds -= 3; /* ".", ".." and the directory's own fd */
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return ss_buf_printf(
        b,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %ld\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %d\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n"
        "# HELP scrapeship_build_info Build information.\n"
        "# TYPE scrapeship_build_info gauge\nscrapeship_build_info{version=\"%s\"} 1\n",
        cpu, rss_kb * 1024, vm_kb * 1024, fds, (unsigned long long)rl.rlim_cur, start_time, SS_VERSION);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
                             size_t len, bool copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define TEXT_PLAIN "text/plain; charset=utf-8"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    struct collector_http *h = cls;
    (void)version;
    (void)upload;
    /* First call for a request: only headers are known. Ask for the body (ignored). */
    if (*con_cls == NULL) {
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/metrics") == 0 && get) {
        struct ss_buf b;
        ss_buf_init(&b, 64 * 1024 * 1024);
        int rc = ss_metrics_render(&b);
        if (!rc)
            rc = render_process(&b, h->start_time);
        enum MHD_Result ret;
        if (rc)
            ret = reply(c, 500, TEXT_PLAIN, "error rendering metrics\n", 24, false);
        else
            ret =
                reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len, true);
        ss_buf_free(&b);
        return ret;
    }
    if ((strcmp(url, "/healthz") == 0 || strcmp(url, "/-/healthy") == 0) && get)
        return reply(c, 200, TEXT_PLAIN, "OK\n", 3, false);
    if ((strcmp(url, "/readyz") == 0 || strcmp(url, "/-/ready") == 0) && get) {
        if (atomic_load(&h->ready))
            return reply(c, 200, TEXT_PLAIN, "OK\n", 3, false);
        return reply(c, 503, TEXT_PLAIN, "not ready\n", 10, false);
    }
    if (strcmp(url, "/-/reload") == 0) {
        if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
            return reply(c, 405, TEXT_PLAIN, "use POST\n", 9, false);
        if (h->on_reload)
            h->on_reload(h->ud);
        return reply(c, 200, TEXT_PLAIN, "reload requested\n", 17, false);
    }
    if (strcmp(url, "/") == 0 && get) {
        static const char idx[] = "scrapeship: see /metrics, /healthz, /readyz\n";
        return reply(c, 200, TEXT_PLAIN, idx, sizeof idx - 1, false);
    }
    return reply(c, 404, TEXT_PLAIN, "not found\n", 10, false);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return SS_EINVAL;
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return SS_EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return SS_EINVAL;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return SS_EINVAL;
        host[n - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return SS_EINVAL;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (!host[0] || strcmp(host, "0.0.0.0") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return SS_EINVAL;
    *len = sizeof *s4;
    return 0;
}

int collector_http_start(const char *addr, void (*on_reload)(void *ud), void *ud, struct collector_http **out)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (parse_addr(addr, &sa, &salen)) {
        ss_error("http", "invalid listen address \"%s\" (want host:port, :port or [v6]:port)", addr);
        return SS_EINVAL;
    }
    struct collector_http *h = calloc(1, sizeof *h);
    if (!h)
        return SS_ENOMEM;
    h->on_reload = on_reload;
    h->ud = ud;
    h->start_time = (double)ss_now_ms() / 1000.0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_END);
    if (!h->d) {
        ss_error("http", "cannot listen on %s (address in use or not permitted)", addr);
        free(h);
        return SS_EIO;
    }
    ss_info("http", "serving /metrics /healthz /readyz on %s", addr);
    *out = h;
    return 0;
}

void collector_http_set_ready(struct collector_http *h, bool ready)
{
    if (h)
        atomic_store(&h->ready, ready);
}

void collector_http_stop(struct collector_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
