/* httpserver.c: the web endpoint of `run` and `scaler`, on libmicrohttpd.
 *
 * /metrics  every registered renderer plus process metrics, Prometheus text 0.0.4
 * /healthz  200 while the process runs (liveness)
 * /readyz   200 once the config is loaded and the engine runs, 503 before (readiness)
 * /-/reload POST: reload the config, /-/quit POST: stop; both only with
 *           --web.enable-lifecycle, as in Prometheus (403 naming the flag otherwise)
 * Prometheus' own /-/healthy and /-/ready are served too, so existing probes work.
 *
 * --web.config.file takes the exporter toolkit's file: TLS (webtls.c), basic auth with
 * bcrypt hashes (webauth.c) and extra response headers. Like the toolkit, the file is
 * consulted for every connection and request: its state (and that of the certificate,
 * key and client CA files it names) is compared by stat, and a change builds a new
 * "generation" that new connections and requests use, so certificates rotate without
 * a restart. A file that does not load keeps the previous generation (logged once
 * per change, counted). Whether the endpoint speaks HTTPS at all is fixed at start.
 *
 * One thread per connection (libmicrohttpd's thread-per-connection mode), so that a
 * slow client, a TLS handshake that never completes or a bcrypt check never delays a
 * probe. The number of connections, their idle time and the size of a request are
 * bounded (collector.h).
 *
 * libmicrohttpd's timeout is an idle timeout: a client that dribbles its request one
 * byte a second (slowloris) is never idle, and enough of them hold every connection
 * slot, so that probes are refused. A watchdog thread therefore tracks every
 * connection that is waiting for a request (TLS handshake, request head, or idle
 * keep-alive) and shuts down the socket of one that has waited longer than the read
 * timeout in total; and when the connections reach the limit it sheds the ones that
 * have waited longest, so a new connection (a probe) finds a free slot. Connections
 * whose request is being served are not shed for the limit, but they too have the
 * read timeout, from their request head to the end of their reply: a client that
 * reads a reply a byte a second (or never) is not idle either, and would hold its
 * slot for as long as it liked. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include <gnutls/abstract.h>

#include "web_int.h"

/* What the current web config is made of: its parsed file and TLS credentials.
 * Connections and requests hold a reference while they use it. */
struct web_gen {
    atomic_uint refs;
    struct cfg_web *cfg; /* NULL without --web.config.file */
    struct web_tls *tls; /* NULL unless serving HTTPS */
};

/* A file's identity and version as stat sees them; a Kubernetes secret update swaps
 * a symlink, which changes the inode. */
struct file_sig {
    int err; /* errno of stat, 0 when it worked */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
};
enum { SIG_CONFIG, SIG_CERT, SIG_KEY, SIG_CA, NSIGS };

enum { REJ_UNAUTHORIZED, REJ_LIFECYCLE, REJ_TOO_LARGE, REJ_AUTH_BUSY, NREJ };
static const char *const rej_names[NREJ] = {"unauthorized", "lifecycle_disabled", "too_large", "auth_busy"};

/* One open connection, as the watchdog sees it (its socket context). */
struct web_conn {
    struct web_gen *gen; /* the credentials its TLS session uses */
    int fd;
    int64_t waiting_since_ms; /* accepted, or its last request completed */
    int64_t busy_since_ms;    /* its request head arrived */
    uint64_t seq;             /* order of acceptance: breaks ties of waiting_since_ms */
    bool busy;                /* a request head is in and its reply is not done */
    bool shed;                /* its socket was shut down by the watchdog */
    struct web_conn *prev, *next;
};

enum { SHED_SLOW, SHED_FULL, SHED_REPLY, NSHED };
static const char *const shed_names[NSHED] = {"request_timeout", "connection_limit", "reply_timeout"};

struct collector_http {
    struct MHD_Daemon *d;
    struct collector_http_opts o;
    char *web_config_file; /* owned copy of o.web_config_file */
    bool https;            /* fixed at start */
    atomic_bool ready;
    double start_time;
    struct web_auth_cache *auth;

    pthread_mutex_t mu; /* gen, sigs, failed_sigs, have_failed, tls_warned */
    struct web_gen *gen;
    struct file_sig sigs[NSIGS];        /* what gen was built from */
    struct file_sig failed_sigs[NSIGS]; /* what the last failed attempt saw */
    bool have_failed, tls_warned;

    atomic_ulong reloads_ok, reloads_failed;
    atomic_bool last_reload_ok;
    atomic_ulong rejected[NREJ];

    pthread_mutex_t conn_mu; /* conns, nconns, stopping */
    pthread_cond_t conn_cv;
    struct web_conn *conns; /* every open connection */
    size_t nconns;          /* those of conns not shed */
    uint64_t next_seq;
    bool stopping, watchdog_started;
    pthread_t watchdog;
    atomic_ulong shed[NSHED];
};

/* Per request: the generation it is judged by, and its body so far. */
struct web_req {
    struct web_gen *gen;
    size_t body_bytes;
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

/* ---- generations ----------------------------------------------------------- */

static void gen_release(struct web_gen *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    web_tls_free(g->tls);
    cfg_web_free(g->cfg);
    free(g);
}

static void file_sig_of(const char *path, struct file_sig *s)
{
    memset(s, 0, sizeof *s);
    if (!path)
        return;
    struct stat st;
    if (stat(path, &st) != 0) {
        s->err = errno ? errno : EIO;
        return;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtim = st.st_mtim;
    s->ctim = st.st_ctim;
}

static bool sigs_equal(const struct file_sig *a, const struct file_sig *b)
{
    for (int i = 0; i < NSIGS; i++) {
        if (a[i].err != b[i].err || a[i].dev != b[i].dev || a[i].ino != b[i].ino || a[i].size != b[i].size ||
            a[i].mtim.tv_sec != b[i].mtim.tv_sec || a[i].mtim.tv_nsec != b[i].mtim.tv_nsec ||
            a[i].ctim.tv_sec != b[i].ctim.tv_sec || a[i].ctim.tv_nsec != b[i].ctim.tv_nsec)
            return false;
    }
    return true;
}

static void sigs_of(const char *config, const struct cfg_web *w, struct file_sig *out)
{
    file_sig_of(config, &out[SIG_CONFIG]);
    file_sig_of(w && w->tls ? w->cert_file : NULL, &out[SIG_CERT]);
    file_sig_of(w && w->tls ? w->key_file : NULL, &out[SIG_KEY]);
    file_sig_of(w && w->tls ? w->client_ca_file : NULL, &out[SIG_CA]);
}

/* Load the web config and build what it describes. *sigs gets the state of the
 * files read, taken before reading them, so a change during the build is seen
 * next time. */
static int gen_build(struct collector_http *h, struct web_gen **out, struct file_sig *sigs, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct web_gen *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    atomic_init(&g->refs, 1);
    memset(sigs, 0, NSIGS * sizeof *sigs);
    if (!h->web_config_file) {
        *out = g;
        return 0;
    }
    struct file_sig config_sig;
    file_sig_of(h->web_config_file, &config_sig);
    int rc = cfg_web_load_file(h->web_config_file, &g->cfg, err, errlen);
    if (rc)
        goto fail;
    sigs_of(h->web_config_file, g->cfg, sigs);
    sigs[SIG_CONFIG] = config_sig;
    if (h->https && !g->cfg->tls) {
        snprintf(err, errlen,
                 "%s: tls_server_config has no cert_file: serving HTTPS needs one (restart "
                 "to serve plain HTTP)",
                 h->web_config_file);
        rc = SS_ECONFIG;
        goto fail;
    }
    if (h->https) {
        char terr[512];
        if ((rc = web_tls_new(g->cfg, &g->tls, terr, sizeof terr)) != 0) {
            snprintf(err, errlen, "%s: %s", h->web_config_file, terr);
            goto fail;
        }
    }
    *out = g;
    return 0;
fail:
    gen_release(g);
    return rc;
}

/* The current generation, rebuilt first when a file changed; the caller releases
 * it. Never NULL once started. */
static struct web_gen *gen_acquire(struct collector_http *h)
{
    pthread_mutex_lock(&h->mu);
    if (h->web_config_file) {
        struct file_sig now[NSIGS];
        sigs_of(h->web_config_file, h->gen->cfg, now);
        if (!sigs_equal(now, h->sigs) && !(h->have_failed && sigs_equal(now, h->failed_sigs))) {
            char err[1024] = "";
            struct web_gen *g = NULL;
            struct file_sig built[NSIGS];
            if (gen_build(h, &g, built, err, sizeof err) == 0) {
                gen_release(h->gen);
                h->gen = g;
                memcpy(h->sigs, built, sizeof built);
                h->have_failed = false;
                atomic_fetch_add(&h->reloads_ok, 1);
                atomic_store(&h->last_reload_ok, true);
                ss_info("http", "web config %s reloaded (%zu basic auth users%s)", h->web_config_file,
                        g->cfg->nusers, h->https ? ", TLS certificate and client CAs re-read" : "");
                if (!h->https && g->cfg->tls && !h->tls_warned) {
                    ss_warn("http", "%s now has tls_server_config: restart to serve HTTPS",
                            h->web_config_file);
                    h->tls_warned = true;
                }
            } else {
                memcpy(h->failed_sigs, now, sizeof now);
                h->have_failed = true;
                atomic_fetch_add(&h->reloads_failed, 1);
                atomic_store(&h->last_reload_ok, false);
                ss_error("http", "web config not reloaded, keeping the previous one: %s", err);
            }
        }
    }
    struct web_gen *g = h->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&h->mu);
    return g;
}

static int render_web_metrics(void *ud, struct ss_buf *b)
{
    struct collector_http *h = ud;
    int rc = 0;
    if (h->web_config_file)
        rc = ss_buf_printf(b,
                           "# HELP scrapeship_web_config_last_reload_successful Whether the last web config "
                           "reload succeeded.\n"
                           "# TYPE scrapeship_web_config_last_reload_successful gauge\n"
                           "scrapeship_web_config_last_reload_successful %d\n"
                           "# HELP scrapeship_web_config_reloads_total Web config reloads (after a file "
                           "changed) by result.\n"
                           "# TYPE scrapeship_web_config_reloads_total counter\n"
                           "scrapeship_web_config_reloads_total{result=\"success\"} %lu\n"
                           "scrapeship_web_config_reloads_total{result=\"failure\"} %lu\n",
                           atomic_load(&h->last_reload_ok) ? 1 : 0, atomic_load(&h->reloads_ok),
                           atomic_load(&h->reloads_failed));
    if (!rc)
        rc = ss_buf_printf(b,
                           "# HELP scrapeship_web_requests_rejected_total Requests the web endpoint refused, "
                           "by reason.\n"
                           "# TYPE scrapeship_web_requests_rejected_total counter\n");
    for (int i = 0; i < NREJ && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_web_requests_rejected_total{reason=\"%s\"} %lu\n", rej_names[i],
                           atomic_load(&h->rejected[i]));
    if (!rc)
        rc = ss_buf_printf(b,
                           "# HELP scrapeship_web_connections_shed_total Connections the web endpoint closed "
                           "while they waited for a request or for their reply to be read, by reason.\n"
                           "# TYPE scrapeship_web_connections_shed_total counter\n");
    for (int i = 0; i < NSHED && !rc; i++)
        rc = ss_buf_printf(b, "scrapeship_web_connections_shed_total{reason=\"%s\"} %lu\n", shed_names[i],
                           atomic_load(&h->shed[i]));
    return rc;
}

/* ---- requests ---------------------------------------------------------------- */

#define TEXT_PLAIN "text/plain; charset=utf-8"

static enum MHD_Result reply_hdrs(struct MHD_Connection *c, const struct web_gen *g, unsigned status,
                                  const char *ctype, const char *body, size_t len, bool copy,
                                  const char *www_auth)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    /* http_server_config.headers go on every response, as in the toolkit */
    for (size_t i = 0; g && g->cfg && i < g->cfg->nheaders; i++)
        MHD_add_response_header(r, g->cfg->headers[i].key, g->cfg->headers[i].value);
    if (www_auth)
        MHD_add_response_header(r, "WWW-Authenticate", www_auth);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define REPLY(c, g, status, text)                                                                            \
    reply_hdrs((c), (g), (status), TEXT_PLAIN, (text), sizeof(text) - 1, false, NULL)

static bool is_probe(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 || strcmp(url, "/-/healthy") == 0 ||
           strcmp(url, "/-/ready") == 0;
}

static enum web_auth_result authorized(struct collector_http *h, struct MHD_Connection *c,
                                       const struct web_gen *g, const char *url)
{
    if (!g->cfg || !g->cfg->nusers)
        return WEB_AUTH_OK;
    if (is_probe(url) && !h->o.probes_need_auth)
        return WEB_AUTH_OK;
    const char *hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char user[WEB_AUTH_MAX_USER + 1], pass[WEB_AUTH_MAX_PASSWORD + 1];
    enum web_auth_result res = WEB_AUTH_DENIED;
    if (web_basic_auth_parse(hdr, user, pass) == 0)
        res = web_auth_verify(h->auth, g->cfg, user, pass);
    ss_wipe(pass, sizeof pass);
    return res;
}

/* The first call for a request, with its headers: limits and auth are decided
 * before any body is read. Returns true when it queued a reply. */
static bool screen(struct collector_http *h, struct MHD_Connection *c, struct web_req *r, const char *url,
                   enum MHD_Result *ret)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > COLLECTOR_HTTP_MAX_BODY_BYTES) {
        atomic_fetch_add(&h->rejected[REJ_TOO_LARGE], 1);
        *ret = REPLY(c, r->gen, 413, "request body too large\n");
        return true;
    }
    enum web_auth_result auth = authorized(h, c, r->gen, url);
    if (auth == WEB_AUTH_BUSY) {
        /* too many password checks queued: try again shortly (a cached good
         * password never gets here) */
        atomic_fetch_add(&h->rejected[REJ_AUTH_BUSY], 1);
        *ret = reply_hdrs(c, r->gen, 429, TEXT_PLAIN, "Too many password checks at once, retry\n", 40, false,
                          NULL);
        return true;
    }
    if (auth != WEB_AUTH_OK) {
        atomic_fetch_add(&h->rejected[REJ_UNAUTHORIZED], 1);
        *ret = reply_hdrs(c, r->gen, 401, TEXT_PLAIN, "Unauthorized\n", 13, false, "Basic");
        return true;
    }
    return false;
}

static enum MHD_Result serve(struct collector_http *h, struct MHD_Connection *c, const struct web_gen *g,
                             const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/metrics") == 0 && get) {
        struct ss_buf b;
        ss_buf_init(&b, 64 * 1024 * 1024);
        int rc = ss_metrics_render(&b);
        if (!rc)
            rc = render_process(&b, h->start_time);
        enum MHD_Result ret;
        if (rc)
            ret = REPLY(c, g, 500, "error rendering metrics\n");
        else
            ret = reply_hdrs(c, g, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                             b.len, true, NULL);
        ss_buf_free(&b);
        return ret;
    }
    if ((strcmp(url, "/healthz") == 0 || strcmp(url, "/-/healthy") == 0) && get)
        return REPLY(c, g, 200, "OK\n");
    if ((strcmp(url, "/readyz") == 0 || strcmp(url, "/-/ready") == 0) && get) {
        if (atomic_load(&h->ready))
            return REPLY(c, g, 200, "OK\n");
        return REPLY(c, g, 503, "not ready\n");
    }
    bool reload = strcmp(url, "/-/reload") == 0 && h->o.on_reload;
    bool quit = strcmp(url, "/-/quit") == 0 && h->o.on_quit;
    if (reload || quit) {
        if (!h->o.enable_lifecycle) {
            atomic_fetch_add(&h->rejected[REJ_LIFECYCLE], 1);
            return REPLY(c, g, 403,
                         "Lifecycle API is not enabled: start scrapeship with --web.enable-lifecycle "
                         "to use /-/reload and /-/quit (SIGHUP reloads without it)\n");
        }
        if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
            return REPLY(c, g, 405, "use POST\n");
        if (reload) {
            h->o.on_reload(h->o.ud);
            return REPLY(c, g, 200, "reload requested\n");
        }
        h->o.on_quit(h->o.ud);
        return REPLY(c, g, 200, "Requesting termination... Goodbye!\n");
    }
    if (strcmp(url, "/") == 0 && get)
        return REPLY(c, g, 200, "scrapeship: see /metrics, /healthz, /readyz\n");
    return REPLY(c, g, 404, "not found\n");
}

static void conn_set_busy(struct collector_http *h, struct MHD_Connection *c, bool busy);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    struct collector_http *h = cls;
    struct web_req *r = *con_cls;
    (void)version;
    (void)upload;
    if (!r) {
        /* First call: only the headers are known. */
        conn_set_busy(h, c, true);
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->gen = gen_acquire(h);
        *con_cls = r;
        enum MHD_Result ret;
        if (screen(h, c, r, url, &ret))
            return ret;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Bodies are not used; a chunked one that grows past the cap ends the connection. */
        r->body_bytes += *upload_size;
        *upload_size = 0;
        if (r->body_bytes > COLLECTOR_HTTP_MAX_BODY_BYTES) {
            atomic_fetch_add(&h->rejected[REJ_TOO_LARGE], 1);
            return MHD_NO;
        }
        return MHD_YES;
    }
    return serve(h, c, r->gen, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    conn_set_busy(cls, c, false);
    struct web_req *r = *con_cls;
    if (!r)
        return;
    gen_release(r->gen);
    free(r);
    *con_cls = NULL;
}

/* A new connection, before its TLS handshake: it takes the current generation's
 * credentials and keeps them (a reference) until it closes, and joins the watchdog's
 * list. libmicrohttpd reports the close before it closes the socket, so the watchdog
 * never shuts down a descriptor that was reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct collector_http *h = cls;
    struct web_conn *wc = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!wc)
            return;
        pthread_mutex_lock(&h->conn_mu);
        if (wc->prev)
            wc->prev->next = wc->next;
        else
            h->conns = wc->next;
        if (wc->next)
            wc->next->prev = wc->prev;
        if (!wc->shed)
            h->nconns--;
        pthread_mutex_unlock(&h->conn_mu);
        gen_release(wc->gen);
        free(wc);
        *socket_context = NULL;
        return;
    }
    struct web_gen *g = gen_acquire(h);
    wc = calloc(1, sizeof *wc);
    if (!wc) {
        /* Nowhere to keep its credentials: its TLS handshake fails (cert_refused). */
        ss_error("http", "out of memory accepting a connection");
        gen_release(g);
        *socket_context = NULL;
        return;
    }
    wc->gen = g;
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    wc->fd = fi ? fi->connect_fd : -1;
    wc->waiting_since_ms = ss_mono_ms();
    pthread_mutex_lock(&h->conn_mu);
    wc->seq = h->next_seq++;
    bool first = !h->conns; /* the watchdog may be waiting without a deadline */
    wc->next = h->conns;
    if (h->conns)
        h->conns->prev = wc;
    h->conns = wc;
    if (++h->nconns >= h->o.max_connections || first)
        pthread_cond_signal(&h->conn_cv); /* full: shed now, not at the next tick */
    pthread_mutex_unlock(&h->conn_mu);
    *socket_context = wc;
    if (!h->https)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    /* Without our credentials the daemon's own fail every handshake (cert_refused). */
    if (!ci || !ci->tls_session || web_tls_apply(g->tls, ci->tls_session) != 0)
        ss_error("http", "cannot set up TLS for a new connection");
}

/* A request head arrived (busy) or its reply is done (waiting again). */
static void conn_set_busy(struct collector_http *h, struct MHD_Connection *c, bool busy)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct web_conn *wc = ci ? ci->socket_context : NULL;
    if (!wc)
        return;
    pthread_mutex_lock(&h->conn_mu);
    wc->busy = busy;
    if (busy)
        wc->busy_since_ms = ss_mono_ms();
    else
        wc->waiting_since_ms = ss_mono_ms();
    pthread_mutex_unlock(&h->conn_mu);
}

static void conn_shed(struct collector_http *h, struct web_conn *wc, int why)
{
    wc->shed = true;
    h->nconns--;
    if (wc->fd >= 0)
        shutdown(wc->fd, SHUT_RDWR); /* the connection's thread sees EOF and closes it */
    atomic_fetch_add(&h->shed[why], 1);
}

static int conn_cmp_waiting(const void *a, const void *b)
{
    const struct web_conn *x = *(struct web_conn *const *)a, *y = *(struct web_conn *const *)b;
    if (x->waiting_since_ms != y->waiting_since_ms)
        return x->waiting_since_ms < y->waiting_since_ms ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Shut down connections that have waited for a request, or for their reply to be
 * read, longer than the read timeout, and when the connections reach the limit, the
 * longest waiting ones until `headroom` slots are free again. It sleeps until the
 * earliest deadline, every WATCHDOG_MS while the server is full, and without a
 * timeout while there is no connection (a first connection wakes it): an idle
 * sidecar's web server costs no wake-ups. */
#define WATCHDOG_MS 100
static void *watchdog_main(void *arg)
{
    struct collector_http *h = arg;
    const int64_t limit_ms = (int64_t)h->o.read_timeout_s * 1000;
    const size_t cap = h->o.max_connections;
    const size_t headroom = cap / 32 ? cap / 32 : 1;
    pthread_mutex_lock(&h->conn_mu);
    while (!h->stopping) {
        int64_t now = ss_mono_ms(), wait_ms = -1; /* -1: no deadline */
        for (struct web_conn *wc = h->conns; wc; wc = wc->next) {
            if (wc->shed)
                continue;
            int64_t d = (wc->busy ? wc->busy_since_ms : wc->waiting_since_ms) + limit_ms - now;
            if (wait_ms < 0 || d < wait_ms)
                wait_ms = d < 0 ? 0 : d;
        }
        if (h->nconns >= cap && (wait_ms < 0 || wait_ms > WATCHDOG_MS))
            wait_ms = WATCHDOG_MS;
        if (wait_ms < 0) {
            pthread_cond_wait(&h->conn_cv, &h->conn_mu);
        } else if (wait_ms > 0) {
            struct timespec ts = ss_mono_deadline_ms(wait_ms);
            pthread_cond_timedwait(&h->conn_cv, &h->conn_mu, &ts);
        }
        if (h->stopping)
            break;
        now = ss_mono_ms();
        for (struct web_conn *wc = h->conns; wc; wc = wc->next)
            if (!wc->shed && now - (wc->busy ? wc->busy_since_ms : wc->waiting_since_ms) >= limit_ms)
                conn_shed(h, wc, wc->busy ? SHED_REPLY : SHED_SLOW);
        if (h->nconns < cap)
            continue;
        /* the longest waiting first */
        size_t n = 0;
        struct web_conn **v = malloc(h->nconns * sizeof *v);
        for (struct web_conn *wc = h->conns; wc && v; wc = wc->next)
            if (!wc->shed && !wc->busy)
                v[n++] = wc;
        if (v)
            qsort(v, n, sizeof *v, conn_cmp_waiting);
        for (size_t i = 0; i < n && h->nconns + headroom > cap; i++)
            conn_shed(h, v[i], SHED_FULL);
        free(v);
    }
    pthread_mutex_unlock(&h->conn_mu);
    return NULL;
}

/* libmicrohttpd's messages (a refused connection at the limit, a failed TLS
 * handshake) as our log lines, at most one per 10 s so that a flood of bad clients
 * cannot flood the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static _Atomic int64_t last_ms;
    (void)cls;
    int64_t now = ss_mono_ms(), prev = atomic_load(&last_ms);
    if (prev && now - prev < 10000)
        return;
    if (!atomic_compare_exchange_strong(&last_ms, &prev, now))
        return;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ss_warn("http", "%s (further messages within 10s are not logged)", msg);
}

/* The daemon's own credentials: never used by a session that web_tls_apply set up. */
static int cert_refused(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                        unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)s;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    (void)pcert;
    (void)pkey;
    *pcert_length = 0;
    return -1;
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

int collector_web_flag(const char *cmd, int opt, const char *arg, struct collector_http_opts *o)
{
    switch (opt) {
    case COLLECTOR_OPT_WEB_CONFIG: o->web_config_file = arg[0] ? arg : NULL; return 1;
    case COLLECTOR_OPT_WEB_LIFECYCLE: o->enable_lifecycle = true; return 1;
    case COLLECTOR_OPT_WEB_PROBES:
        if (strcmp(arg, "true") == 0) {
            o->probes_need_auth = false;
        } else if (strcmp(arg, "false") == 0) {
            o->probes_need_auth = true;
        } else {
            fprintf(stderr, "scrapeship %s: --web.unauthenticated-probes wants true or false, not \"%s\"\n",
                    cmd, arg);
            return SS_EINVAL;
        }
        return 1;
    case COLLECTOR_OPT_WEB_MAX_CONNECTIONS: {
        char *end;
        unsigned long n = strtoul(arg, &end, 10);
        if (*end || !arg[0] || n < 1 || n > 65536) {
            fprintf(stderr, "scrapeship %s: --web.max-connections wants 1..65536, not \"%s\"\n", cmd, arg);
            return SS_EINVAL;
        }
        o->max_connections = (unsigned)n;
        return 1;
    }
    case COLLECTOR_OPT_WEB_READ_TIMEOUT: {
        int64_t ms;
        if (ss_parse_duration_ms(arg, &ms) != 0 || ms < 1000 || ms > 24LL * 3600 * 1000) {
            fprintf(stderr, "scrapeship %s: --web.read-timeout wants a duration from 1s to 24h, not \"%s\"\n",
                    cmd, arg);
            return SS_EINVAL;
        }
        o->read_timeout_s = (unsigned)(ms / 1000);
        return 1;
    }
    default: return 0;
    }
}

int collector_http_start(const struct collector_http_opts *o, struct collector_http **out)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t salen;
    char err[1024] = "";
    if (parse_addr(o->listen, &sa, &salen)) {
        ss_error("http", "invalid listen address \"%s\" (want host:port, :port or [v6]:port)", o->listen);
        return SS_EINVAL;
    }
    struct collector_http *h = calloc(1, sizeof *h);
    if (!h)
        return SS_ENOMEM;
    int rc = SS_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->conn_mu, NULL);
    ss_cond_init_mono(&h->conn_cv);
    h->o = *o;
    atomic_store(&h->last_reload_ok, true);
    if (!h->o.max_connections)
        h->o.max_connections = COLLECTOR_HTTP_MAX_CONNECTIONS;
    if (!h->o.read_timeout_s)
        h->o.read_timeout_s = 30;
    h->start_time = (double)ss_now_ms() / 1000.0;
    if (o->web_config_file && !(h->web_config_file = strdup(o->web_config_file)))
        goto fail;
    /* Basic auth comes only from a web config file; without one, OpenSSL's random
     * generator is not started for a cache key nobody needs (about 0.7 MB of libcrypto
     * pages in a sidecar). */
    if (h->web_config_file && web_auth_cache_new(&h->auth) != 0)
        goto fail;
    if (h->web_config_file) {
        /* Whether to speak HTTPS is decided once, from the file at start. */
        struct cfg_web *probe = NULL;
        if ((rc = cfg_web_load_file(h->web_config_file, &probe, err, sizeof err)) != 0) {
            ss_error("http", "--web.config.file: %s", err);
            goto fail;
        }
        h->https = probe->tls;
        cfg_web_free(probe);
    }
    if ((rc = gen_build(h, &h->gen, h->sigs, err, sizeof err)) != 0) {
        ss_error("http", "--web.config.file: %s", err);
        goto fail;
    }
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (h->https)
        flags |= MHD_USE_TLS;
        /* Connection threads need little stack; sanitizer builds keep the default. */
#if defined(__SANITIZE_ADDRESS__)
    size_t stack = 0;
#else
    size_t stack = 512 * 1024;
#endif
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, h->o.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, h->o.read_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)COLLECTOR_HTTP_MAX_HEAD_BYTES, MHD_OPTION_THREAD_STACK_SIZE, stack,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        h->https ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, cert_refused, MHD_OPTION_END);
    if (!h->d) {
        ss_error("http", "cannot listen on %s (address in use or not permitted)", o->listen);
        rc = SS_EIO;
        goto fail;
    }
    if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
        ss_error("http", "cannot start the web connection watchdog");
        MHD_stop_daemon(h->d);
        rc = SS_EIO;
        goto fail;
    }
    h->watchdog_started = true;
    ss_metrics_register(render_web_metrics, h);
    ss_info("http", "serving /metrics /healthz /readyz on %s (%s%s%s, lifecycle API %s)", o->listen,
            h->https ? "HTTPS" : "HTTP", h->gen->cfg && h->gen->cfg->nusers ? ", basic auth" : "",
            h->gen->cfg && h->gen->cfg->nusers && !h->o.probes_need_auth ? " except probes" : "",
            !o->on_reload         ? "not available"
            : o->enable_lifecycle ? "enabled"
                                  : "disabled");
    *out = h;
    return 0;
fail:
    gen_release(h->gen);
    web_auth_cache_free(h->auth);
    free(h->web_config_file);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->conn_mu);
    pthread_cond_destroy(&h->conn_cv);
    free(h);
    return rc;
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
    ss_metrics_unregister(render_web_metrics, h);
    if (h->watchdog_started) {
        pthread_mutex_lock(&h->conn_mu);
        h->stopping = true;
        pthread_cond_signal(&h->conn_cv);
        pthread_mutex_unlock(&h->conn_mu);
        pthread_join(h->watchdog, NULL);
    }
    MHD_stop_daemon(h->d); /* joins every connection thread: no generation is in use after it */
    gen_release(h->gen);
    web_auth_cache_free(h->auth);
    free(h->web_config_file);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->conn_mu);
    pthread_cond_destroy(&h->conn_cv);
    free(h);
}
