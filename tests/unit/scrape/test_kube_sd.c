/* test_kube_sd.c: Kubernetes discovery (scrape/kube_sd.c) against an in-process fake
 * API server.
 *
 * The fake below speaks just enough of kube-apiserver's HTTP: LIST (with limit and
 * continue pages) and WATCH (chunked, newline-delimited JSON events from a
 * resourceVersion) for pods, services and endpoints, cluster-wide or per namespace.
 * The tests change objects, expire history (410 Gone, as an ERROR event or an HTTP
 * status), cut connections, fail requests, rotate the token, and check what poll()
 * hands the engine: Prometheus 2.42's labels, targets following every event, and the
 * request sequence (LIST, WATCH from the right resourceVersion, relist only on 410).
 * Every wait is bounded; every discoverer and server is torn down, so the ASan build
 * catches leaks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "scrape.h"

/* ======================================================================== */
/* The fake API server                                                      */
/* ======================================================================== */

enum { R_PODS, R_SERVICES, R_ENDPOINTS, R_ENDPOINTSLICES, R_N };
static const char *const res_names[R_N] = {"pods", "services", "endpoints", "endpointslices"};
static const char *const res_kinds[R_N] = {"Pod", "Service", "Endpoints", "EndpointSlice"};
/* the path prefix of each resource's group and version */
static const char *const res_prefix[R_N] = {"/api/v1", "/api/v1", "/api/v1", "/apis/discovery.k8s.io/v1"};

#define MAX_EVENTS 512
#define MAX_CONNS  256
#define MAX_LOG    512

struct fevent {
    long rv;
    int res;
    char *line; /* {"type":...,"object":...}\n */
};

struct fake {
    int lfd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    long rv, min_rv;
    json_t *objs[R_N]; /* "ns/name" -> object */
    struct fevent ev[MAX_EVENTS];
    size_t nev;
    pthread_t conn_thr[MAX_CONNS];
    size_t nconn;
    int drop_gen, end_gen;
    bool gone_http;
    int list_fail_status, list_fail_count;
    char token[128]; /* required "Bearer <token>" when set */
    bool garbage_next_watch;
    bool tls_hello_seen;
    char log[MAX_LOG][1024];
    size_t nlog;
};

struct conn_arg {
    struct fake *f;
    int fd;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void send_json(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, strlen(body));
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
}

static void send_chunk(int fd, const char *line)
{
    char head[32];
    int n = snprintf(head, sizeof head, "%zx\r\n", strlen(line));
    send_all(fd, head, (size_t)n);
    send_all(fd, line, strlen(line));
    send_all(fd, "\r\n", 2);
}

static const char *query_get(const char *q, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = q; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t vl = strcspn(v, "&");
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return NULL;
}

static const char *status_json(int code, const char *reason)
{
    static __thread char buf[256];
    snprintf(buf, sizeof buf,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
             "\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
             reason, reason, code);
    return buf;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void do_list(struct fake *f, int fd, int res, const char *ns, const char *q)
{
    char buf[64];
    long limit = query_get(q, "limit", buf, sizeof buf) ? atol(buf) : 0;
    long offset = query_get(q, "continue", buf, sizeof buf) ? atol(buf) : 0;
    pthread_mutex_lock(&f->mu);
    if (f->list_fail_count > 0) {
        f->list_fail_count--;
        int st = f->list_fail_status;
        pthread_mutex_unlock(&f->mu);
        send_json(fd, st, status_json(st, "Failed"));
        return;
    }
    const char *keys[1024];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(f->objs[res], k, v)
    {
        if (n < 1024 && (!ns || !strncmp(k, ns, strlen(ns))) && (!ns || k[strlen(ns)] == '/'))
            keys[n++] = k;
    }
    qsort(keys, n, sizeof *keys, key_cmp);
    json_t *items = json_array();
    size_t end = limit ? (size_t)(offset + limit) : n;
    for (size_t i = (size_t)offset; i < n && i < end; i++) {
        json_t *o = json_deep_copy(json_object_get(f->objs[res], keys[i]));
        json_object_del(o, "kind");
        json_object_del(o, "apiVersion");
        json_array_append_new(items, o);
    }
    char rv[32], cont[32] = "";
    snprintf(rv, sizeof rv, "%ld", f->rv);
    if (end < n)
        snprintf(cont, sizeof cont, "%zu", end);
    json_t *doc = json_pack("{s:s, s:{s:s, s:s}, s:o}", "kind", "List", "metadata", "resourceVersion", rv,
                            "continue", cont, "items", items);
    pthread_mutex_unlock(&f->mu);
    char *body = json_dumps(doc, JSON_COMPACT);
    send_json(fd, 200, body);
    free(body);
    json_decref(doc);
}

static bool event_matches(const struct fevent *e, int res, const char *ns)
{
    if (e->res != res)
        return false;
    if (!ns)
        return true;
    char pat[128];
    snprintf(pat, sizeof pat, "\"namespace\":\"%s\"", ns);
    return strstr(e->line, pat) != NULL;
}

static void do_watch(struct fake *f, int fd, int res, const char *ns, const char *q)
{
    char buf[64];
    long since = query_get(q, "resourceVersion", buf, sizeof buf) ? atol(buf) : 0;
    pthread_mutex_lock(&f->mu);
    if (since < f->min_rv) {
        bool http = f->gone_http;
        pthread_mutex_unlock(&f->mu);
        if (http) {
            send_json(fd, 410, status_json(410, "Expired"));
            return;
        }
        const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
        char line[512];
        snprintf(line, sizeof line, "{\"type\":\"ERROR\",\"object\":%s}\n", status_json(410, "Expired"));
        send_chunk(fd, line);
        send_all(fd, "0\r\n\r\n", 5);
        return;
    }
    int drop = f->drop_gen, endg = f->end_gen;
    bool garbage = f->garbage_next_watch;
    f->garbage_next_watch = false;
    pthread_mutex_unlock(&f->mu);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    if (garbage)
        send_chunk(fd, "this is not JSON\n");
    long sent = since;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        for (size_t i = 0; i < f->nev && f->drop_gen == drop; i++) {
            if (f->ev[i].rv > sent && event_matches(&f->ev[i], res, ns)) {
                /* split every event in two chunks: lines cross chunk boundaries */
                char *l = f->ev[i].line;
                size_t half = strlen(l) / 2;
                char a[8192];
                snprintf(a, sizeof a, "%.*s", (int)half, l);
                send_chunk(fd, a);
                send_chunk(fd, l + half);
            }
        }
        if (f->nev)
            sent = f->ev[f->nev - 1].rv > sent ? f->ev[f->nev - 1].rv : sent;
        if (f->stopping || f->drop_gen != drop) {
            pthread_mutex_unlock(&f->mu);
            shutdown(fd, SHUT_RDWR); /* no final chunk: a cut connection */
            return;
        }
        if (f->end_gen != endg) {
            pthread_mutex_unlock(&f->mu);
            send_all(fd, "0\r\n\r\n", 5); /* a clean end, like timeoutSeconds */
            return;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
}

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct fake *f = ca->f;
    int fd = ca->fd;
    free(ca);
    char req[8192];
    size_t len = 0;
    while (len < sizeof req - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        req[len] = '\0';
        if (len && (unsigned char)req[0] == 0x16) { /* a TLS ClientHello */
            pthread_mutex_lock(&f->mu);
            f->tls_hello_seen = true;
            pthread_mutex_unlock(&f->mu);
            close(fd);
            return NULL;
        }
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    char target[2048] = "";
    if (sscanf(req, "GET %2047s HTTP/1.1", target) != 1) {
        close(fd);
        return NULL;
    }
    const char *auth = strstr(req, "\r\nAuthorization: ");
    char authv[256] = "";
    if (auth) {
        auth += 17;
        size_t al = strcspn(auth, "\r\n");
        snprintf(authv, sizeof authv, "%.*s", (int)al, auth);
    }
    pthread_mutex_lock(&f->mu);
    if (f->nlog < MAX_LOG)
        snprintf(f->log[f->nlog++], sizeof f->log[0], "%.700s auth=%.200s", target, authv);
    char want[160] = "";
    if (f->token[0])
        snprintf(want, sizeof want, "Bearer %s", f->token);
    pthread_mutex_unlock(&f->mu);
    if (want[0] && strcmp(want, authv) != 0) {
        send_json(fd, 401, status_json(401, "Unauthorized"));
        close(fd);
        return NULL;
    }
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    char ns[128] = "", resn[64] = "";
    int res = -1;
    for (int i = 0; i < R_N && res < 0; i++) {
        size_t pl = strlen(res_prefix[i]);
        if (strncmp(target, res_prefix[i], pl) != 0)
            continue;
        if (sscanf(target + pl, "/namespaces/%127[^/]/%63s", ns, resn) == 2 ||
            (ns[0] = '\0', sscanf(target + pl, "/%63s", resn) == 1))
            if (!strcmp(resn, res_names[i]))
                res = i;
    }
    char buf[16];
    if (res < 0)
        send_json(fd, 404, status_json(404, "NotFound"));
    else if (q && query_get(q, "watch", buf, sizeof buf) && !strcmp(buf, "true"))
        do_watch(f, fd, res, ns[0] ? ns : NULL, q);
    else
        do_list(f, fd, res, ns[0] ? ns : NULL, q ? q : "");
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        bool stop = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            return NULL;
        struct pollfd p = {f->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn_arg *ca = malloc(sizeof *ca);
        ca->f = f;
        ca->fd = fd;
        pthread_mutex_lock(&f->mu);
        if (f->nconn < MAX_CONNS && pthread_create(&f->conn_thr[f->nconn], NULL, conn_main, ca) == 0) {
            f->nconn++;
        } else {
            close(fd);
            free(ca);
        }
        pthread_mutex_unlock(&f->mu);
    }
}

static struct fake *fake_start(void)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->rv = 100;
    for (int i = 0; i < R_N; i++)
        f->objs[i] = json_object();
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 64), 0);
    socklen_t al = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->acceptor, NULL, accept_main, f), 0);
    return f;
}

static void fake_stop(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->acceptor, NULL);
    for (size_t i = 0; i < f->nconn; i++)
        pthread_join(f->conn_thr[i], NULL);
    close(f->lfd);
    for (size_t i = 0; i < f->nev; i++)
        free(f->ev[i].line);
    for (int i = 0; i < R_N; i++)
        json_decref(f->objs[i]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void add_event(struct fake *f, int res, const char *type, json_t *obj)
{
    json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    size_t n = strlen(s);
    char *line = malloc(n + 2);
    memcpy(line, s, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    free(s);
    assert_true(f->nev < MAX_EVENTS);
    f->ev[f->nev++] = (struct fevent){f->rv, res, line};
    pthread_cond_broadcast(&f->cv);
}

/* Create or replace (takes obj). */
static void fake_apply(struct fake *f, int res, json_t *obj)
{
    pthread_mutex_lock(&f->mu);
    f->rv++;
    json_t *md = json_object_get(obj, "metadata");
    char rv[32], key[256];
    snprintf(rv, sizeof rv, "%ld", f->rv);
    json_object_set_new(md, "resourceVersion", json_string(rv));
    json_object_set_new(obj, "kind", json_string(res_kinds[res]));
    json_object_set_new(obj, "apiVersion",
                        json_string(res == R_ENDPOINTSLICES ? "discovery.k8s.io/v1" : "v1"));
    snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(md, "namespace")),
             json_string_value(json_object_get(md, "name")));
    bool exists = json_object_get(f->objs[res], key) != NULL;
    add_event(f, res, exists ? "MODIFIED" : "ADDED", obj);
    json_object_set_new(f->objs[res], key, obj);
    pthread_mutex_unlock(&f->mu);
}

static void fake_delete(struct fake *f, int res, const char *ns, const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    pthread_mutex_lock(&f->mu);
    json_t *o = json_object_get(f->objs[res], key);
    assert_non_null(o);
    f->rv++;
    add_event(f, res, "DELETED", o);
    json_object_del(f->objs[res], key);
    pthread_mutex_unlock(&f->mu);
}

/* Forget history and end every watch: clients come back with an expired RV. */
static void fake_compact(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->rv++;
    f->min_rv = f->rv;
    for (size_t i = 0; i < f->nev; i++)
        free(f->ev[i].line);
    f->nev = 0;
    f->end_gen++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fake_drop(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->drop_gen++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Count logged requests whose target contains every needle (NULL-terminated). */
static size_t fake_count(struct fake *f, ...)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nlog; i++) {
        va_list ap;
        va_start(ap, f);
        bool all = true;
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
            all &= strstr(f->log[i], s) != NULL;
        va_end(ap);
        n += all;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Wait (bounded) until at least n logged requests contain needle. */
static bool fake_wait_count(struct fake *f, const char *needle, size_t n)
{
    for (int i = 0; i < 500; i++) {
        if (fake_count(f, needle, NULL) >= n)
            return true;
        usleep(10000);
    }
    return false;
}

static void fake_dump_log(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nlog; i++)
        print_message("  req %zu: %s\n", i, f->log[i]);
    pthread_mutex_unlock(&f->mu);
}

/* ---- objects --------------------------------------------------------------- */

/* A pod with one container "app" exposing port (or no ports when port == 0). */
static json_t *mkpod(const char *ns, const char *name, const char *ip, int port)
{
    json_t *ports = json_array();
    if (port)
        json_array_append_new(
            ports, json_pack("{s:s, s:i, s:s}", "name", "metrics", "containerPort", port, "protocol", "TCP"));
    json_t *pod =
        json_pack("{s:{s:s, s:s, s:s, s:{s:s}}, s:{s:s, s:[{s:s, s:s, s:o}]}, s:{s:s, s:s, s:[{s:s, s:s}], "
                  "s:[{s:s, s:s}]}}",
                  "metadata", "name", name, "namespace", ns, "uid", name, "labels", "app", name, "spec",
                  "nodeName", "node-1", "containers", "name", "app", "image", "img:1", "ports", ports,
                  "status", "phase", "Running", "hostIP", "10.0.0.9", "conditions", "type", "Ready", "status",
                  "True", "containerStatuses", "name", "app", "containerID", "cri://app");
    if (ip)
        json_object_set_new(json_object_get(pod, "status"), "podIP", json_string(ip));
    return pod;
}

/* ======================================================================== */
/* Driving a discoverer                                                     */
/* ======================================================================== */

struct run {
    struct fake *f;
    struct kube_sd *k;
    struct scrape_discoverer d;
    const struct scrape_target_group *g;
    size_t ng;
    char dir[64];
    char kubeconfig[128];
};

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void kubeconfig_write(struct run *r, const char *user_yaml)
{
    char text[2048];
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
             "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:%d/\n"
             "users:\n- name: u\n  user:\n%s"
             "contexts:\n- name: t\n  context: {cluster: c, user: u}\n",
             r->f->port, user_yaml ? user_yaml : "    {}\n");
    write_file(r->kubeconfig, text);
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof *r);
    r->f = fake_start();
    snprintf(r->dir, sizeof r->dir, "/tmp/ss_kube_sd_XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->kubeconfig, sizeof r->kubeconfig, "%s/kubeconfig", r->dir);
    kubeconfig_write(r, NULL);
}

static void base_config(struct run *r, struct kube_sd_config *c)
{
    memset(c, 0, sizeof *c);
    c->job = "kube-test";
    c->role = KUBE_SD_ROLE_POD;
    c->kubeconfig_file = r->kubeconfig;
    c->initial_wait_ms = 3000;
    c->min_update_interval_ms = 1;
    c->max_backoff_ms = 200;
}

static void run_start(struct run *r, const struct kube_sd_config *c)
{
    char err[256] = "";
    assert_int_equal(kube_sd_new(c, &r->k, err, sizeof err), 0);
    kube_sd_discoverer(r->k, &r->d);
}

static void run_free(struct run *r)
{
    kube_sd_free(r->k);
    fake_stop(r->f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    assert_int_equal(system(cmd), 0);
}

static void poll_once(struct run *r)
{
    const struct scrape_target_group *g;
    size_t n;
    if (r->d.poll(r->d.ud, &g, &n)) {
        r->g = g;
        r->ng = n;
    }
}

static const char *label(const struct scrape_target_group *g, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < g->nlabels; i++)
        if (!strcmp(g->labels[i].key, name))
            v = g->labels[i].value; /* the engine applies them in order: last wins */
    return v;
}

static const struct scrape_target_group *find_target(struct run *r, const char *addr)
{
    for (size_t i = 0; i < r->ng; i++)
        if (r->g[i].ntargets == 1 && !strcmp(r->g[i].targets[0], addr))
            return &r->g[i];
    return NULL;
}

static bool has_pod(struct run *r, const char *name)
{
    for (size_t i = 0; i < r->ng; i++) {
        const char *v = label(&r->g[i], "__meta_kubernetes_pod_name");
        if (v && !strcmp(v, name))
            return true;
    }
    return false;
}

/* Poll (as the engine does every loop) until pred holds or 5 s pass. */
static bool wait_for(struct run *r, bool (*pred)(struct run *, const void *), const void *arg)
{
    for (int i = 0; i < 500; i++) {
        poll_once(r);
        if (pred(r, arg))
            return true;
        usleep(10000);
    }
    return false;
}

static bool pred_has(struct run *r, const void *name)
{
    return has_pod(r, name);
}

static bool pred_lacks(struct run *r, const void *name)
{
    return !has_pod(r, name);
}

static bool pred_ngroups(struct run *r, const void *n)
{
    return r->ng == *(const size_t *)n;
}

static bool pred_synced(struct run *r, const void *unused)
{
    (void)unused;
    struct kube_sd_stats st;
    kube_sd_get_stats(r->k, &st);
    return st.synced;
}

/* ======================================================================== */
/* Tests                                                                    */
/* ======================================================================== */

/* Every __meta_kubernetes_pod_* label, as Prometheus 2.42's pod role builds them. */
static void test_pod_labels(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    json_t *pod = json_loads(
        "{\"metadata\":{\"name\":\"web-7d9\",\"namespace\":\"shop\",\"uid\":\"u-1\","
        "\"labels\":{\"app.kubernetes.io/name\":\"web\",\"tier\":\"front\",\"caf\\u00e9-x\":\"1\"},"
        "\"annotations\":{\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9102\"},"
        "\"ownerReferences\":[{\"kind\":\"Node\",\"name\":\"n\"},"
        "{\"kind\":\"ReplicaSet\",\"name\":\"web-7d9x\",\"controller\":true}]},"
        "\"spec\":{\"nodeName\":\"ip-10-0-1-2\",\"containers\":["
        "{\"name\":\"app\",\"image\":\"shop/web:2\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080,"
        "\"protocol\":\"TCP\"},{\"containerPort\":9102,\"protocol\":\"TCP\"}]},"
        "{\"name\":\"proxy\",\"image\":\"envoy:1\"}],"
        "\"initContainers\":[{\"name\":\"migrate\",\"image\":\"shop/migrate:2\"}]},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\",\"hostIP\":\"10.0.1.2\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
        "\"containerStatuses\":[{\"name\":\"app\",\"containerID\":\"containerd://abc\"}],"
        "\"initContainerStatuses\":[{\"name\":\"migrate\",\"containerID\":\"containerd://def\"}]}}",
        0, NULL);
    assert_non_null(pod);
    fake_apply(r.f, R_PODS, pod);
    /* no IP yet: no targets (Prometheus returns an empty group) */
    fake_apply(r.f, R_PODS, mkpod("shop", "pending", NULL, 80));
    fake_apply(r.f, R_PODS, mkpod("shop", "v6", "fd00::5", 9100));
    struct kube_sd_config c;
    base_config(&r, &c);
    run_start(&r, &c);
    poll_once(&r); /* the first poll waits for the LIST */
    assert_int_equal(r.ng, 5);

    const struct scrape_target_group *g = find_target(&r, "10.1.2.3:8080");
    assert_non_null(g);
    static const char *const want[][2] = {
        {"__meta_kubernetes_namespace", "shop"},
        {"__meta_kubernetes_pod_name", "web-7d9"},
        {"__meta_kubernetes_pod_ip", "10.1.2.3"},
        {"__meta_kubernetes_pod_ready", "false"},
        {"__meta_kubernetes_pod_phase", "Running"},
        {"__meta_kubernetes_pod_node_name", "ip-10-0-1-2"},
        {"__meta_kubernetes_pod_host_ip", "10.0.1.2"},
        {"__meta_kubernetes_pod_uid", "u-1"},
        {"__meta_kubernetes_pod_controller_kind", "ReplicaSet"},
        {"__meta_kubernetes_pod_controller_name", "web-7d9x"},
        {"__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"},
        {"__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name", "true"},
        {"__meta_kubernetes_pod_label_tier", "front"},
        {"__meta_kubernetes_pod_labelpresent_tier", "true"},
        {"__meta_kubernetes_pod_label_caf__x", "1"}, /* "é" is one rune: one "_" */
        {"__meta_kubernetes_pod_labelpresent_caf__x", "true"},
        {"__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true"},
        {"__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape", "true"},
        {"__meta_kubernetes_pod_annotation_prometheus_io_port", "9102"},
        {"__meta_kubernetes_pod_annotationpresent_prometheus_io_port", "true"},
        {"__meta_kubernetes_pod_container_name", "app"},
        {"__meta_kubernetes_pod_container_id", "containerd://abc"},
        {"__meta_kubernetes_pod_container_image", "shop/web:2"},
        {"__meta_kubernetes_pod_container_port_name", "http"},
        {"__meta_kubernetes_pod_container_port_number", "8080"},
        {"__meta_kubernetes_pod_container_port_protocol", "TCP"},
        {"__meta_kubernetes_pod_container_init", "false"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = label(g, want[i][0]);
        if (!v || strcmp(v, want[i][1]))
            fail_msg("%s: want \"%s\", got \"%s\"", want[i][0], want[i][1], v ? v : "(absent)");
    }
    assert_int_equal(g->nlabels, sizeof want / sizeof want[0]);

    /* unnamed port: the name label is empty (the engine drops empty labels) */
    g = find_target(&r, "10.1.2.3:9102");
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_pod_container_port_name"), "");
    assert_string_equal(label(g, "__meta_kubernetes_pod_container_port_number"), "9102");

    /* a container without ports: one target at the bare pod IP, no port labels */
    g = find_target(&r, "10.1.2.3");
    assert_non_null(g);
    int found_proxy = 0, found_init = 0;
    for (size_t i = 0; i < r.ng; i++) {
        if (strcmp(r.g[i].targets[0], "10.1.2.3"))
            continue;
        const char *cn = label(&r.g[i], "__meta_kubernetes_pod_container_name");
        assert_null(label(&r.g[i], "__meta_kubernetes_pod_container_port_number"));
        if (!strcmp(cn, "proxy")) {
            found_proxy++;
            assert_string_equal(label(&r.g[i], "__meta_kubernetes_pod_container_init"), "false");
            assert_string_equal(label(&r.g[i], "__meta_kubernetes_pod_container_id"), "");
        } else if (!strcmp(cn, "migrate")) {
            found_init++;
            assert_string_equal(label(&r.g[i], "__meta_kubernetes_pod_container_init"), "true");
            assert_string_equal(label(&r.g[i], "__meta_kubernetes_pod_container_id"), "containerd://def");
            assert_string_equal(label(&r.g[i], "__meta_kubernetes_pod_container_image"), "shop/migrate:2");
        }
    }
    assert_int_equal(found_proxy, 1);
    assert_int_equal(found_init, 1);

    /* IPv6: net.JoinHostPort brackets the address */
    g = find_target(&r, "[fd00::5]:9100");
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_pod_ready"), "true");
    assert_null(label(g, "__meta_kubernetes_pod_controller_kind"));
    assert_false(has_pod(&r, "pending"));
    run_free(&r);
}

/* A discoverer of the pods role on a server that holds pod a (10.0.0.1:8080);
 * min_update_ms 0: base_config's. */
static void run_one_pod(struct run *r, int64_t min_update_ms)
{
    run_init(r);
    fake_apply(r->f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    struct kube_sd_config c;
    base_config(r, &c);
    if (min_update_ms)
        c.min_update_interval_ms = min_update_ms;
    run_start(r, &c);
}

/* LIST, then WATCH from the list's RV; ADDED / MODIFIED / DELETED follow; a pod that
 * gets its IP later appears then. */
static void test_watch_events(void **state)
{
    (void)state;
    struct run r;
    run_one_pod(&r, 0);
    poll_once(&r);
    assert_int_equal(r.ng, 1);
    assert_true(wait_for(&r, pred_synced, NULL));
    assert_int_equal(fake_count(r.f, "/api/v1/pods?limit=500", NULL), 1);

    fake_apply(r.f, R_PODS, mkpod("default", "b", NULL, 8080));
    fake_apply(r.f, R_PODS, mkpod("default", "c", "10.0.0.3", 0));
    assert_true(wait_for(&r, pred_has, "c"));
    assert_false(has_pod(&r, "b"));
    assert_non_null(find_target(&r, "10.0.0.3"));
    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080)); /* got its IP */
    assert_true(wait_for(&r, pred_has, "b"));
    json_t *a2 = mkpod("default", "a", "10.0.0.1", 8080);
    json_object_set_new(json_object_get(json_object_get(a2, "metadata"), "labels"), "version",
                        json_string("2"));
    fake_apply(r.f, R_PODS, a2);
    for (int i = 0; i < 500; i++) {
        poll_once(&r);
        const struct scrape_target_group *g = find_target(&r, "10.0.0.1:8080");
        if (g && label(g, "__meta_kubernetes_pod_label_version"))
            break;
        usleep(10000);
    }
    assert_string_equal(label(find_target(&r, "10.0.0.1:8080"), "__meta_kubernetes_pod_label_version"), "2");
    fake_delete(r.f, R_PODS, "default", "c");
    assert_true(wait_for(&r, pred_lacks, "c"));
    size_t three = 2;
    assert_true(wait_for(&r, pred_ngroups, &three));

    /* no change: poll reports nothing new */
    const struct scrape_target_group *g;
    size_t n;
    assert_false(r.d.poll(r.d.ud, &g, &n));

    struct kube_sd_stats st;
    kube_sd_get_stats(r.k, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.events_added, 2);
    assert_int_equal(st.events_modified, 2);
    assert_int_equal(st.events_deleted, 1);
    assert_int_equal(st.objects, 2);
    assert_int_equal(st.gone, 0);
    /* the watch started from the LIST's resourceVersion */
    assert_true(fake_count(r.f, "watch=true", "resourceVersion=101", NULL) >= 1);
    run_free(&r);
}

static void count_wake(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Waits (without polling) until the discoverer has woken more than `seen` times. */
static bool woken_after(_Atomic int *wakes, int seen)
{
    for (int i = 0; i < 300 && atomic_load(wakes) <= seen; i++)
        usleep(10000);
    return atomic_load(wakes) > seen;
}

/* The scrape loop sleeps while the discoverer has nothing new (scrape_discoverer.watch):
 * an event wakes it, next_poll_ms says when a poll is worth it (min_update_interval
 * after the last build), and after watch(NULL) nothing wakes it. */
static void test_watch_wakes_loop(void **state)
{
    (void)state;
    struct run r;
    run_one_pod(&r, 1500);
    assert_non_null(r.d.watch);
    assert_non_null(r.d.next_poll_ms);
    assert_int_equal(r.d.next_poll_ms(r.d.ud), 0); /* not started: poll now */
    _Atomic int wakes = 0;
    r.d.watch(r.d.ud, count_wake, &wakes);
    poll_once(&r);
    assert_int_equal(r.ng, 1);
    assert_true(wait_for(&r, pred_synced, NULL));
    for (int i = 0; i < 200 && fake_count(r.f, "watch=true", NULL) < 1; i++)
        usleep(10000);
    /* nothing new: not before a wake */
    int64_t t = ss_mono_ms() + 1600;
    while (r.d.next_poll_ms(r.d.ud) != INT64_MAX && ss_mono_ms() < t) {
        poll_once(&r);
        usleep(10000);
    }
    assert_true(r.d.next_poll_ms(r.d.ud) == INT64_MAX);
    int seen = atomic_load(&wakes);

    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080));
    assert_true(woken_after(&wakes, seen));
    int64_t at = r.d.next_poll_ms(r.d.ud);
    assert_true(at != INT64_MAX);
    while (ss_mono_ms() < at) /* a poll before then builds nothing */
        usleep(10000);
    poll_once(&r);
    assert_true(has_pod(&r, "b"));
    assert_true(r.d.next_poll_ms(r.d.ud) == INT64_MAX);
    /* the next change waits min_update_interval after that build */
    seen = atomic_load(&wakes);
    fake_apply(r.f, R_PODS, mkpod("default", "c", "10.0.0.3", 8080));
    assert_true(woken_after(&wakes, seen));
    at = r.d.next_poll_ms(r.d.ud);
    assert_true(at > ss_mono_ms() + 200 && at <= ss_mono_ms() + 1500);

    r.d.watch(r.d.ud, NULL, NULL);
    seen = atomic_load(&wakes);
    fake_apply(r.f, R_PODS, mkpod("default", "d", "10.0.0.4", 8080));
    usleep(300 * 1000);
    assert_true(wait_for(&r, pred_has, "d")); /* the change is there for a poll */
    assert_int_equal(atomic_load(&wakes), seen);
    run_free(&r);
}

/* 410 Gone forces a relist; what changed while the history was lost is caught up. */
static void gone_case(bool http)
{
    struct run r;
    run_init(&r);
    r.f->gone_http = http;
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080));
    struct kube_sd_config c;
    base_config(&r, &c);
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 2);
    assert_true(wait_for(&r, pred_synced, NULL));
    for (int i = 0; i < 200 && fake_count(r.f, "watch=true", NULL) < 1; i++)
        usleep(10000);
    /* The pod is deleted and the history compacted: the DELETED event is lost, only a
     * relist can notice. */
    pthread_mutex_lock(&r.f->mu);
    json_object_del(r.f->objs[R_PODS], "default/b");
    pthread_mutex_unlock(&r.f->mu);
    fake_compact(r.f);
    assert_true(wait_for(&r, pred_lacks, "b"));
    assert_true(has_pod(&r, "a"));
    struct kube_sd_stats st;
    kube_sd_get_stats(r.k, &st);
    assert_true(st.gone >= 1);
    assert_int_equal(st.lists, 2);
    fake_apply(r.f, R_PODS, mkpod("default", "d", "10.0.0.4", 8080));
    assert_true(wait_for(&r, pred_has, "d"));
    if (!http)
        assert_true(fake_count(r.f, "watch=true", NULL) >= 3);
    run_free(&r);
}

static void test_gone_event_relists(void **state)
{
    (void)state;
    gone_case(false);
}

static void test_gone_http_relists(void **state)
{
    (void)state;
    gone_case(true);
}

/* A cut connection is resumed with a WATCH from the last RV, not a relist. */
static void test_dropped_connection_rewatches(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    struct kube_sd_config c;
    base_config(&r, &c);
    run_start(&r, &c);
    poll_once(&r);
    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080)); /* rv 102 */
    assert_true(wait_for(&r, pred_has, "b"));
    fake_drop(r.f);
    assert_true(fake_wait_count(r.f, "watch=true", 2));
    fake_apply(r.f, R_PODS, mkpod("default", "c", "10.0.0.3", 8080));
    assert_true(wait_for(&r, pred_has, "c"));
    struct kube_sd_stats st;
    kube_sd_get_stats(r.k, &st);
    assert_int_equal(st.lists, 1);
    assert_int_equal(st.gone, 0);
    /* the second watch resumed from the RV of the last event seen */
    if (fake_count(r.f, "watch=true", "resourceVersion=102", NULL) < 1) {
        fake_dump_log(r.f);
        fail_msg("no WATCH from resourceVersion=102 after the drop");
    }
    /* a clean end of the stream (timeoutSeconds) is resumed the same way */
    pthread_mutex_lock(&r.f->mu);
    r.f->end_gen++;
    pthread_cond_broadcast(&r.f->cv);
    pthread_mutex_unlock(&r.f->mu);
    assert_true(fake_wait_count(r.f, "watch=true", 3));
    fake_apply(r.f, R_PODS, mkpod("default", "d", "10.0.0.4", 8080));
    assert_true(wait_for(&r, pred_has, "d"));
    kube_sd_get_stats(r.k, &st);
    assert_int_equal(st.lists, 1);
    run_free(&r);
}

/* LIST pages with limit/continue are stitched into one store. */
static void test_list_pages(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    for (int i = 0; i < 7; i++) {
        char name[16], ip[32];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(ip, sizeof ip, "10.0.1.%d", i + 1);
        fake_apply(r.f, R_PODS, mkpod("default", name, ip, 9000));
    }
    struct kube_sd_config c;
    base_config(&r, &c);
    c.list_page_size = 3;
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 7);
    assert_int_equal(fake_count(r.f, "limit=3", NULL), 3);
    assert_int_equal(fake_count(r.f, "limit=3&continue=3", NULL), 1);
    assert_int_equal(fake_count(r.f, "limit=3&continue=6", NULL), 1);
    run_free(&r);
}

/* Namespaces, selectors: one watcher per namespace; selectors go to the server. */
static void test_namespaces_and_selectors(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    fake_apply(r.f, R_PODS, mkpod("a", "pa", "10.0.2.1", 80));
    fake_apply(r.f, R_PODS, mkpod("b", "pb", "10.0.2.2", 80));
    fake_apply(r.f, R_PODS, mkpod("c", "pc", "10.0.2.3", 80));
    struct kube_sd_config c;
    base_config(&r, &c);
    const char *nss[] = {"a", "b"};
    c.namespaces = nss;
    c.nnamespaces = 2;
    struct kube_sd_selector sel[] = {{"pod", "app in (pa, pb),tier!=db", "spec.nodeName=node-1"}};
    c.selectors = sel;
    c.nselectors = 1;
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 2);
    assert_true(has_pod(&r, "pa") && has_pod(&r, "pb") && !has_pod(&r, "pc"));
    assert_int_equal(fake_count(r.f, "/api/v1/namespaces/a/pods?limit=500", NULL), 1);
    assert_int_equal(fake_count(r.f, "/api/v1/namespaces/b/pods?limit=500", NULL), 1);
    assert_int_equal(fake_count(r.f, "limit=500", "labelSelector=app%20in%20%28pa%2C%20pb%29%2Ctier%21%3Ddb",
                                "fieldSelector=spec.nodeName%3Dnode-1", NULL),
                     2);
    for (int i = 0; i < 200 && fake_count(r.f, "watch=true", NULL) < 2; i++)
        usleep(10000);
    assert_int_equal(
        fake_count(r.f, "/api/v1/namespaces/a/pods?", "watch=true", "labelSelector=", "fieldSelector=", NULL),
        1);
    fake_apply(r.f, R_PODS, mkpod("b", "pb2", "10.0.2.4", 80));
    fake_apply(r.f, R_PODS, mkpod("c", "pc2", "10.0.2.5", 80));
    assert_true(wait_for(&r, pred_has, "pb2"));
    usleep(100000);
    poll_once(&r);
    assert_false(has_pod(&r, "pc2"));
    run_free(&r);
}

/* kubeconfig tokenFile: re-read on every request, so a rotated token is used. */
static void test_token_file_rotation(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    char tok[160], user[256];
    snprintf(tok, sizeof tok, "%s/token", r.dir);
    write_file(tok, "tok-1\n");
    snprintf(user, sizeof user, "    tokenFile: token\n"); /* relative to the kubeconfig */
    kubeconfig_write(&r, user);
    snprintf(r.f->token, sizeof r.f->token, "tok-1");
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    struct kube_sd_config c;
    base_config(&r, &c);
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 1);
    assert_true(fake_wait_count(r.f, "watch=true", 1));
    assert_int_equal(fake_count(r.f, "auth=Bearer tok-1", NULL), 2); /* LIST, first WATCH */

    write_file(tok, "tok-2\n");
    pthread_mutex_lock(&r.f->mu);
    snprintf(r.f->token, sizeof r.f->token, "tok-2");
    pthread_mutex_unlock(&r.f->mu);
    fake_drop(r.f);
    assert_true(fake_wait_count(r.f, "auth=Bearer tok-2", 1));
    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080));
    assert_true(wait_for(&r, pred_has, "b"));
    assert_int_equal(fake_count(r.f, "auth=Bearer tok-1", NULL), 2); /* LIST, first WATCH */
    run_free(&r);
}

/* Server errors back off and retry; a broken stream line forces a relist. */
static void test_errors_retry(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    r.f->list_fail_status = 500;
    r.f->list_fail_count = 2;
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    struct kube_sd_config c;
    base_config(&r, &c);
    c.initial_wait_ms = 200;
    run_start(&r, &c);
    poll_once(&r);
    assert_true(wait_for(&r, pred_has, "a"));
    struct kube_sd_stats st;
    kube_sd_get_stats(r.k, &st);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.lists, 3);
    assert_true(wait_for(&r, pred_synced, NULL));

    /* an undecodable event: the stream is dropped and the store rebuilt by a LIST */
    pthread_mutex_lock(&r.f->mu);
    r.f->garbage_next_watch = true;
    r.f->drop_gen++;
    pthread_cond_broadcast(&r.f->cv);
    pthread_mutex_unlock(&r.f->mu);
    for (int i = 0; i < 300; i++) {
        kube_sd_get_stats(r.k, &st);
        if (st.lists >= 4)
            break;
        usleep(10000);
    }
    assert_true(st.lists >= 4);
    fake_apply(r.f, R_PODS, mkpod("default", "b", "10.0.0.2", 8080));
    assert_true(wait_for(&r, pred_has, "b"));

    /* 401: logged, retried, nothing crashes, targets stay */
    pthread_mutex_lock(&r.f->mu);
    snprintf(r.f->token, sizeof r.f->token, "needed");
    pthread_mutex_unlock(&r.f->mu);
    fake_drop(r.f);
    usleep(300000);
    poll_once(&r);
    assert_true(has_pod(&r, "a") && has_pod(&r, "b"));
    run_free(&r);
}

/* Endpoints role: endpoints + service + pod labels, ready and not-ready addresses, and
 * targets for container ports no endpoint port covers. */
static void test_endpoints_role(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    json_t *pod = mkpod("shop", "web-1", "10.2.0.1", 8080);
    json_array_append_new(
        json_object_get(json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0),
                        "ports"),
        json_pack("{s:s, s:i, s:s}", "name", "admin", "containerPort", 9901, "protocol", "TCP"));
    fake_apply(r.f, R_PODS, pod);
    fake_apply(r.f, R_SERVICES,
               json_pack("{s:{s:s, s:s, s:{s:s}, s:{s:s}}}", "metadata", "name", "web", "namespace", "shop",
                         "labels", "app", "web", "annotations", "prometheus.io/scrape", "true"));
    fake_apply(r.f, R_ENDPOINTS,
               json_loads("{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"labels\":{\"app\":"
                          "\"web\"}},\"subsets\":[{\"addresses\":[{\"ip\":\"10.2.0.1\",\"nodeName\":"
                          "\"node-1\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"web-1\",\"namespace\":"
                          "\"shop\"}}],\"notReadyAddresses\":[{\"ip\":\"10.2.0.9\",\"hostname\":\"h9\"}],"
                          "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}]}",
                          0, NULL));
    struct kube_sd_config c;
    base_config(&r, &c);
    c.role = KUBE_SD_ROLE_ENDPOINTS;
    run_start(&r, &c);
    poll_once(&r);
    size_t three = 3;
    assert_true(wait_for(&r, pred_ngroups, &three));
    const struct scrape_target_group *g = find_target(&r, "10.2.0.1:8080");
    assert_non_null(g);
    static const char *const want[][2] = {
        {"__meta_kubernetes_namespace", "shop"},
        {"__meta_kubernetes_endpoints_name", "web"},
        {"__meta_kubernetes_service_name", "web"},
        {"__meta_kubernetes_service_label_app", "web"},
        {"__meta_kubernetes_service_labelpresent_app", "true"},
        {"__meta_kubernetes_service_annotation_prometheus_io_scrape", "true"},
        {"__meta_kubernetes_service_annotationpresent_prometheus_io_scrape", "true"},
        {"__meta_kubernetes_endpoints_label_app", "web"},
        {"__meta_kubernetes_endpoints_labelpresent_app", "true"},
        {"__meta_kubernetes_endpoint_port_name", "http"},
        {"__meta_kubernetes_endpoint_port_protocol", "TCP"},
        {"__meta_kubernetes_endpoint_ready", "true"},
        {"__meta_kubernetes_endpoint_address_target_kind", "Pod"},
        {"__meta_kubernetes_endpoint_address_target_name", "web-1"},
        {"__meta_kubernetes_endpoint_node_name", "node-1"},
        {"__meta_kubernetes_pod_name", "web-1"},
        {"__meta_kubernetes_pod_ip", "10.2.0.1"},
        {"__meta_kubernetes_pod_container_name", "app"},
        {"__meta_kubernetes_pod_container_port_name", "metrics"},
        {"__meta_kubernetes_pod_container_port_number", "8080"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = label(g, want[i][0]);
        if (!v || strcmp(v, want[i][1]))
            fail_msg("%s: want \"%s\", got \"%s\"", want[i][0], want[i][1], v ? v : "(absent)");
    }
    g = find_target(&r, "10.2.0.9:8080");
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_endpoint_ready"), "false");
    assert_string_equal(label(g, "__meta_kubernetes_endpoint_hostname"), "h9");
    assert_null(label(g, "__meta_kubernetes_pod_name"));
    g = find_target(&r, "10.2.0.1:9901"); /* the admin port no endpoint covers */
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_pod_container_port_name"), "admin");
    assert_null(label(g, "__meta_kubernetes_endpoint_port_name"));
    assert_string_equal(label(g, "__meta_kubernetes_service_name"), "web");

    /* the service goes: its labels go with it on the next snapshot */
    fake_delete(r.f, R_SERVICES, "shop", "web");
    for (int i = 0; i < 500; i++) {
        poll_once(&r);
        g = find_target(&r, "10.2.0.1:8080");
        if (g && !label(g, "__meta_kubernetes_service_name"))
            break;
        usleep(10000);
    }
    assert_null(label(find_target(&r, "10.2.0.1:8080"), "__meta_kubernetes_service_name"));
    assert_int_equal(fake_count(r.f, "/api/v1/services?limit=500", NULL), 1);
    assert_int_equal(fake_count(r.f, "/api/v1/endpoints?limit=500", NULL), 1);
    run_free(&r);
}

/* Role endpointslice (discovery.k8s.io/v1): endpointslice.go's labels, the service found
 * through the kubernetes.io/service-name label, the pod behind a targetRef, a port
 * without a number (bare address), and a slice with a malformed field (counted, its
 * other fields used, no crash). */
static void test_endpointslice_role(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    fake_apply(r.f, R_PODS, mkpod("shop", "web-1", "10.2.0.1", 8080));
    fake_apply(r.f, R_SERVICES,
               json_pack("{s:{s:s, s:s, s:{s:s}}}", "metadata", "name", "web", "namespace", "shop", "labels",
                         "app", "web"));
    fake_apply(
        r.f, R_ENDPOINTSLICES,
        json_loads("{\"metadata\":{\"name\":\"web-x1\",\"namespace\":\"shop\",\"labels\":{"
                   "\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":["
                   "{\"addresses\":[\"10.2.0.1\"],\"conditions\":{\"ready\":true,\"terminating\":false},"
                   "\"hostname\":\"h1\",\"nodeName\":\"node-1\",\"deprecatedTopology\":{\"zone/a\":\"z1\"},"
                   "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"web-1\",\"namespace\":\"shop\"}},"
                   "{\"addresses\":[\"10.2.0.9\", 7],\"conditions\":{\"ready\":false}}],"
                   "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\",\"appProtocol\":"
                   "\"http\"},{\"name\":\"any\"}]}",
                   0, NULL));
    fake_apply(r.f, R_ENDPOINTSLICES,
               json_loads("{\"metadata\":{\"name\":\"bad\",\"namespace\":\"shop\"},\"endpoints\":3,"
                          "\"ports\":[]}",
                          0, NULL));
    struct kube_sd_config c;
    base_config(&r, &c);
    c.role = KUBE_SD_ROLE_ENDPOINTSLICE;
    run_start(&r, &c);
    poll_once(&r);
    size_t four = 4; /* 2 addresses x 2 ports; the pod's port 8080 is covered */
    assert_true(wait_for(&r, pred_ngroups, &four));
    const struct scrape_target_group *g = find_target(&r, "10.2.0.1:8080");
    assert_non_null(g);
    static const char *const want[][2] = {
        {"__meta_kubernetes_namespace", "shop"},
        {"__meta_kubernetes_endpointslice_name", "web-x1"},
        {"__meta_kubernetes_endpointslice_address_type", "IPv4"},
        {"__meta_kubernetes_service_name", "web"},
        {"__meta_kubernetes_service_label_app", "web"},
        {"__meta_kubernetes_endpointslice_port_name", "http"},
        {"__meta_kubernetes_endpointslice_port_protocol", "TCP"},
        {"__meta_kubernetes_endpointslice_port", "8080"},
        {"__meta_kubernetes_endpointslice_port_app_protocol", "http"},
        {"__meta_kubernetes_endpointslice_endpoint_conditions_ready", "true"},
        {"__meta_kubernetes_endpointslice_endpoint_conditions_terminating", "false"},
        {"__meta_kubernetes_endpointslice_endpoint_hostname", "h1"},
        {"__meta_kubernetes_endpointslice_endpoint_node_name", "node-1"},
        {"__meta_kubernetes_endpointslice_address_target_kind", "Pod"},
        {"__meta_kubernetes_endpointslice_address_target_name", "web-1"},
        {"__meta_kubernetes_endpointslice_endpoint_topology_zone_a", "z1"},
        {"__meta_kubernetes_endpointslice_endpoint_topology_present_zone_a", "true"},
        {"__meta_kubernetes_pod_name", "web-1"},
        {"__meta_kubernetes_pod_container_name", "app"},
        {"__meta_kubernetes_pod_container_port_number", "8080"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = label(g, want[i][0]);
        if (!v || strcmp(v, want[i][1]))
            fail_msg("%s: want \"%s\", got \"%s\"", want[i][0], want[i][1], v ? v : "(absent)");
    }
    assert_null(label(g, "__meta_kubernetes_endpointslice_endpoint_conditions_serving"));
    g = find_target(&r, "10.2.0.1"); /* the port without a number: the bare address */
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_endpointslice_port_name"), "any");
    assert_null(label(g, "__meta_kubernetes_endpointslice_port"));
    assert_null(label(g, "__meta_kubernetes_pod_container_name"));
    g = find_target(&r, "10.2.0.9:8080");
    assert_non_null(g);
    assert_string_equal(label(g, "__meta_kubernetes_endpointslice_endpoint_conditions_ready"), "false");
    assert_null(label(g, "__meta_kubernetes_pod_name"));
    assert_int_equal(fake_count(r.f, "/apis/discovery.k8s.io/v1/endpointslices?limit=500", NULL), 1);
    run_free(&r);
}

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account directory; the
 * connection is https (the fake sees a TLS ClientHello). Missing env: an error, no
 * crash, and poll does not hang. */
static void test_in_cluster(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    char path[160], port[16];
    snprintf(path, sizeof path, "%s/token", r.dir);
    write_file(path, "sa-token");
    snprintf(path, sizeof path, "%s/ca.crt", r.dir);
    write_file(path, "not a certificate");
    snprintf(path, sizeof path, "%s/namespace", r.dir);
    write_file(path, "monitoring\n");
    snprintf(port, sizeof port, "%d", r.f->port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    struct kube_sd_config c;
    base_config(&r, &c);
    c.kubeconfig_file = NULL;
    c.service_account_dir = r.dir;
    c.own_namespace = true;
    c.initial_wait_ms = 500;
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 0);
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&r.f->mu);
        bool seen = r.f->tls_hello_seen;
        pthread_mutex_unlock(&r.f->mu);
        if (seen)
            break;
        usleep(10000);
    }
    assert_true(r.f->tls_hello_seen);
    kube_sd_free(r.k);

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    int64_t t0 = ss_mono_ms();
    run_start(&r, &c);
    poll_once(&r);
    assert_true(ss_mono_ms() - t0 < 2000);
    assert_int_equal(r.ng, 0);
    struct kube_sd_stats st;
    kube_sd_get_stats(r.k, &st);
    assert_true(st.failures >= 1);
    assert_false(st.synced);
    run_free(&r);
}

/* Broken kubeconfigs: errors, never crashes; exec plugins are refused clearly. */
static void test_kubeconfig_errors(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    static const char *const bad[] = {
        "apiVersion: v1\nkind: Config\ncurrent-context: nope\n",
        "[not, a, mapping]\n",
        "current-context: t\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {exec: {command: aws}}}]\n",
        "current-context: t\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1', "
        "certificate-authority-data: '!!!'}}]\n",
        "key: [unclosed\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(r.kubeconfig, bad[i]);
        struct kube_sd_config c;
        base_config(&r, &c);
        run_start(&r, &c);
        int64_t t0 = ss_mono_ms();
        poll_once(&r);
        assert_true(ss_mono_ms() - t0 < 2000);
        struct kube_sd_stats st;
        kube_sd_get_stats(r.k, &st);
        assert_true(st.failures >= 1);
        assert_int_equal(st.lists, 0);
        kube_sd_free(r.k);
        r.k = NULL;
    }
    /* missing file */
    struct kube_sd_config c;
    base_config(&r, &c);
    c.kubeconfig_file = "/nonexistent/kubeconfig";
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 0);
    run_free(&r);
}

/* Config checks done by kube_sd_new itself; free without ever polling starts nothing. */
static void test_new_checks(void **state)
{
    (void)state;
    struct kube_sd_config c;
    memset(&c, 0, sizeof c);
    c.job = "j";
    c.api_server = "http://127.0.0.1:1";
    c.kubeconfig_file = "/x";
    struct kube_sd *k = NULL;
    char err[256];
    assert_int_equal(kube_sd_new(&c, &k, err, sizeof err), SS_ECONFIG);
    assert_null(k);
    assert_non_null(strstr(err, "simultaneously"));
    c.kubeconfig_file = NULL;
    c.role = (enum kube_sd_role)7;
    assert_int_equal(kube_sd_new(&c, &k, err, sizeof err), SS_ECONFIG);
    c.role = KUBE_SD_ROLE_POD;
    assert_int_equal(kube_sd_new(&c, &k, err, sizeof err), 0);
    kube_sd_free(k);
    kube_sd_free(NULL);
}

/* api_server with the HTTP client config: bearer credentials go to the server. */
static void test_api_server_http_config(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    snprintf(r.f->token, sizeof r.f->token, "s3cret");
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.f->port);
    struct kube_sd_config c;
    base_config(&r, &c);
    c.kubeconfig_file = NULL;
    c.api_server = url;
    c.http.authorization_type = "Bearer";
    c.http.authorization_credentials = "s3cret";
    run_start(&r, &c);
    poll_once(&r);
    assert_int_equal(r.ng, 1);
    assert_int_equal(fake_count(r.f, "/api/v1/pods?limit=500 auth=Bearer s3cret", NULL), 1);
    run_free(&r);
}

/* Self-metrics are registered once for all discoverers and name the job. */
static void test_metrics(void **state)
{
    (void)state;
    struct run r;
    run_init(&r);
    fake_apply(r.f, R_PODS, mkpod("default", "a", "10.0.0.1", 8080));
    struct kube_sd_config c;
    base_config(&r, &c);
    run_start(&r, &c);
    struct kube_sd *k2 = NULL;
    char err[128];
    c.job = "metrics\"job";
    assert_int_equal(kube_sd_new(&c, &k2, err, sizeof err), 0);
    poll_once(&r);
    struct ss_buf b;
    ss_buf_init(&b, 1 << 20);
    assert_int_equal(ss_metrics_render(&b), 0);
    assert_non_null(
        strstr(b.data, "scrapeship_sd_kubernetes_requests_total{scrape_job=\"kube-test\",kind=\"list\"} 1"));
    assert_non_null(strstr(b.data, "scrapeship_sd_kubernetes_objects{scrape_job=\"kube-test\"} 1"));
    assert_non_null(strstr(b.data, "{scrape_job=\"metrics\\\"job\",kind=\"list\"} 0"));
    const char *first = strstr(b.data, "# TYPE scrapeship_sd_kubernetes_objects");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE scrapeship_sd_kubernetes_objects"));
    ss_buf_free(&b);
    kube_sd_free(k2);
    run_free(&r);
    ss_buf_init(&b, 1 << 20);
    assert_int_equal(ss_metrics_render(&b), 0);
    if (b.data && strstr(b.data, "metrics\\\"job"))
        fail_msg("still rendered after the last free:\n%s", b.data);
    ss_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_labels),
        cmocka_unit_test(test_watch_events),
        cmocka_unit_test(test_watch_wakes_loop),
        cmocka_unit_test(test_gone_event_relists),
        cmocka_unit_test(test_gone_http_relists),
        cmocka_unit_test(test_dropped_connection_rewatches),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_namespaces_and_selectors),
        cmocka_unit_test(test_token_file_rotation),
        cmocka_unit_test(test_errors_retry),
        cmocka_unit_test(test_endpoints_role),
        cmocka_unit_test(test_endpointslice_role),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_kubeconfig_errors),
        cmocka_unit_test(test_new_checks),
        cmocka_unit_test(test_api_server_http_config),
        cmocka_unit_test(test_metrics),
    };
    if (getenv("TEST_FILTER")) /* one test by name (a glob), when working on it */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
