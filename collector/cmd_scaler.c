/* cmd_scaler.c: `scrapeship scaler`: scale Deployments and StatefulSets from PromQL
 * the way KEDA's prometheus trigger does, from ScaledObject manifests on disk.
 *
 * Threads: this one runs the poll loop (scaler/runner.c); libmicrohttpd serves
 * /metrics, /healthz and /readyz; the AWS credential refreshers run in their own;
 * a signal thread turns SIGTERM/SIGINT into a stop after the poll in progress.
 * Signals are blocked everywhere else, so no library thread receives them.
 *
 * Query credentials: SigV4 (service aps) for triggers with awsRegion or an
 * authenticationRef to a TriggerAuthentication with podIdentity.provider aws, from
 * the same credential chain remote write uses (one chain per region and role).
 * KEDA reads bearer/basic/custom credentials from Kubernetes secrets, which
 * scrapeship does not; they come from files named on the command line instead
 * (mount the secret as a volume), and only triggers whose authModes ask for them
 * get them.
 *
 * Exit status: 0 after a clean stop (or a successful --once), 1 on a runtime or
 * configuration failure, 2 on usage errors. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awssign.h"
#include "collector.h"
#include "scaler.h"

#define MAX_SIGNERS 64

struct scaler_cmd {
    struct scaler_runner *runner;
    atomic_bool done;
    sigset_t sigs;
};

struct cmd_auth_files {
    const char *bearer_token_file, *basic_user, *basic_password_file;
    const char *custom_header, *custom_value_file, *ca_file;
};

struct signer_slot {
    char key[512]; /* region \n role */
    struct aws_signer *signer;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: scrapeship scaler --config FILE [--dry-run] [--once] [--hpa-sync-period DURATION]\n"
               "                         [--kubeconfig PATH] [--kube-context NAME] [--kube-sa-dir DIR]\n"
               "                         [--namespace NS] [--web.listen-address ADDR|none]\n"
               "                         [--web.config.file FILE] [--web.unauthenticated-probes true|false]\n"
               "                         [--web.max-connections N] [--web.read-timeout DURATION]\n"
               "                         [--log.level debug|info|warn|error] [--log.format logfmt|json]\n"
               "                         [--auth.bearer-token-file F] [--auth.basic-user U]\n"
               "                         [--auth.basic-password-file F] [--auth.custom-header NAME]\n"
               "                         [--auth.custom-value-file F] [--auth.ca-file F]\n"
               "FILE holds KEDA ScaledObject and TriggerAuthentication manifests (keda.sh/v1alpha1).\n"
               "--dry-run decides and logs but never patches; --once polls every object once and exits.\n"
               "--hpa-sync-period (default 15s) is how often the HPA step runs, as the HPA controller's\n"
               "--horizontal-pod-autoscaler-sync-period; activation still follows pollingInterval.\n"
               "Kubernetes: --kubeconfig, else $KUBECONFIG, else in cluster, else ~/.kube/config.\n");
}

static void *signal_thread(void *ud)
{
    struct scaler_cmd *st = ud;
    while (!atomic_load(&st->done)) {
        /* no periodic wakeup: the end wakes this thread with a signal (pthread_kill) */
        int sig = sigwaitinfo(&st->sigs, NULL);
        if (atomic_load(&st->done))
            break;
        if (sig == SIGTERM || sig == SIGINT) {
            ss_info("main", "received %s, stopping after the poll in progress",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            scaler_runner_stop(st->runner);
        }
    }
    return NULL;
}

static bool has_mode(const char *modes, const char *mode)
{
    size_t ml = strlen(mode);
    for (const char *p = modes; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > p && te[-1] == ' ')
            te--;
        if ((size_t)(te - p) == ml && strncmp(p, mode, ml) == 0)
            return true;
        p = e;
    }
    return false;
}

/* KEDA's prometheus authModes are basic, bearer, tls and custom. */
static int check_modes(const struct scaler_object *so, size_t ti, const char *modes)
{
    for (const char *p = modes; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > p && te[-1] == ' ')
            te--;
        size_t n = (size_t)(te - p);
        if (n && !((n == 5 && strncmp(p, "basic", 5) == 0) || (n == 6 && strncmp(p, "bearer", 6) == 0) ||
                   (n == 3 && strncmp(p, "tls", 3) == 0) || (n == 6 && strncmp(p, "custom", 6) == 0))) {
            ss_error("main",
                     "ScaledObject %s/%s trigger %zu: unknown authMode \"%.*s\" (basic, bearer, tls, custom)",
                     so->ns, so->name, ti, (int)n, p);
            return SS_ECONFIG;
        }
        p = e;
    }
    return 0;
}

static struct aws_signer *signer_for(struct signer_slot *slots, size_t *nslots, const char *region,
                                     const char *role, const char *url)
{
    char key[512];
    snprintf(key, sizeof key, "%s\n%s\n", region ? region : "", role ? role : "");
    if (!region) { /* the URL decides: key on it so two AMP regions get two signers */
        size_t l = strlen(key);
        snprintf(key + l, sizeof key - l, "%s", url);
    }
    for (size_t i = 0; i < *nslots; i++)
        if (strcmp(slots[i].key, key) == 0)
            return slots[i].signer;
    if (*nslots == MAX_SIGNERS) {
        ss_error("main", "more than %d distinct AWS region/role pairs", MAX_SIGNERS);
        return NULL;
    }
    struct cfg_sigv4 s = {
        .enabled = true, .region = (char *)region, .role_arn = (char *)role, .service = "aps"};
    char err[1024] = "";
    struct signer_slot *slot = &slots[*nslots];
    if (collector_aws_signer_new(&s, url, "scaler", &slot->signer, err, sizeof err) != 0) {
        ss_error("main", "%s", err);
        return NULL;
    }
    snprintf(slot->key, sizeof slot->key, "%s", key);
    (*nslots)++;
    return slot->signer;
}

/* Work out every trigger's query credentials; fail on what cannot work. */
static int setup_auth(const struct scaler_config *cfg, struct scaler_runner *r,
                      const struct cmd_auth_files *f, struct signer_slot *slots, size_t *nslots)
{
    for (size_t i = 0; i < cfg->n_objects; i++) {
        const struct scaler_object *so = &cfg->objects[i];
        for (size_t k = 0; k < so->n_triggers; k++) {
            const struct scaler_trigger *t = &so->triggers[k];
            struct scaler_runner_auth a = {0};
            if (t->auth_ref_name && !scaler_config_find_auth(cfg, so->ns, t->auth_ref_name)) {
                ss_error("main",
                         "ScaledObject %s/%s trigger %zu: TriggerAuthentication %s/%s is not in the config",
                         so->ns, so->name, k, so->ns, t->auth_ref_name);
                return SS_ECONFIG;
            }
            const char *region, *role;
            if (scaler_runner_trigger_sigv4(cfg, so, t, &region, &role)) {
                if (!(a.signer = signer_for(slots, nslots, region, role, t->server_address)))
                    return SS_ECONFIG;
                ss_info("main",
                        "ScaledObject %s/%s trigger %zu: queries signed with SigV4 (aps, region %s%s%s)",
                        so->ns, so->name, k, region ? region : "from the URL or AWS_REGION",
                        role ? ", role " : "", role ? role : "");
            }
            if (check_modes(so, k, t->auth_modes))
                return SS_ECONFIG;
            if (has_mode(t->auth_modes, "bearer")) {
                if (!f->bearer_token_file) {
                    ss_error(
                        "main",
                        "ScaledObject %s/%s trigger %zu: authModes bearer needs --auth.bearer-token-file "
                        "(scrapeship does not read Kubernetes secrets)",
                        so->ns, so->name, k);
                    return SS_ECONFIG;
                }
                a.bearer_token_file = f->bearer_token_file;
            }
            if (has_mode(t->auth_modes, "basic")) {
                if (!f->basic_user) {
                    ss_error("main",
                             "ScaledObject %s/%s trigger %zu: authModes basic needs --auth.basic-user "
                             "(and --auth.basic-password-file)",
                             so->ns, so->name, k);
                    return SS_ECONFIG;
                }
                a.basic_user = f->basic_user;
                a.basic_password_file = f->basic_password_file;
            }
            if (has_mode(t->auth_modes, "custom")) {
                if (!f->custom_header || !f->custom_value_file) {
                    ss_error("main",
                             "ScaledObject %s/%s trigger %zu: authModes custom needs --auth.custom-header "
                             "and --auth.custom-value-file",
                             so->ns, so->name, k);
                    return SS_ECONFIG;
                }
                a.custom_auth_header = f->custom_header;
                a.custom_auth_value_file = f->custom_value_file;
            }
            if (has_mode(t->auth_modes, "tls")) {
                if (!f->ca_file)
                    ss_warn("main",
                            "ScaledObject %s/%s trigger %zu: authModes tls: client certificates are not "
                            "supported; only --auth.ca-file is used",
                            so->ns, so->name, k);
                a.ca_file = f->ca_file;
            }
            int rc = scaler_runner_set_auth(r, i, k, &a);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int set_log_level(const char *s)
{
    if (strcmp(s, "debug") == 0)
        ss_log_set_level(SS_LOG_DEBUG);
    else if (strcmp(s, "info") == 0)
        ss_log_set_level(SS_LOG_INFO);
    else if (strcmp(s, "warn") == 0)
        ss_log_set_level(SS_LOG_WARN);
    else if (strcmp(s, "error") == 0)
        ss_log_set_level(SS_LOG_ERROR);
    else
        return SS_EINVAL;
    return 0;
}

int collector_cmd_scaler(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"once", no_argument, 0, '1'},
                                         {"kubeconfig", required_argument, 0, 'k'},
                                         {"kube-context", required_argument, 0, 'K'},
                                         {"kube-sa-dir", required_argument, 0, 'S'},
                                         {"namespace", required_argument, 0, 'N'},
                                         {"web.listen-address", required_argument, 0, 'l'},
                                         {"log.level", required_argument, 0, 'L'},
                                         {"log.format", required_argument, 0, 'F'},
                                         {"auth.bearer-token-file", required_argument, 0, 'b'},
                                         {"auth.basic-user", required_argument, 0, 'u'},
                                         {"auth.basic-password-file", required_argument, 0, 'p'},
                                         {"auth.custom-header", required_argument, 0, 'H'},
                                         {"auth.custom-value-file", required_argument, 0, 'V'},
                                         {"auth.ca-file", required_argument, 0, 'C'},
                                         {"hpa-sync-period", required_argument, 0, 's'},
                                         COLLECTOR_WEB_LONG_OPTIONS,
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *kubeconfig = NULL, *kube_ctx = NULL, *sa_dir = NULL, *ns = NULL;
    const char *listen = ":9465";
    struct collector_http_opts web = {0};
    bool dry_run = false, once = false;
    int64_t sync_period_ms = SCALER_DEFAULT_SYNC_PERIOD_MS;
    struct cmd_auth_files af = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:n1k:K:S:N:l:L:F:b:u:p:H:V:C:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'n': dry_run = true; break;
        case '1': once = true; break;
        case 'k': kubeconfig = optarg; break;
        case 'K': kube_ctx = optarg; break;
        case 'S': sa_dir = optarg; break;
        case 'N': ns = optarg; break;
        case 'l': listen = optarg; break;
        case 'L':
            if (set_log_level(optarg)) {
                fprintf(stderr, "scrapeship scaler: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'F': ss_log_set_json(strcmp(optarg, "json") == 0); break;
        case 'b': af.bearer_token_file = optarg; break;
        case 'u': af.basic_user = optarg; break;
        case 'p': af.basic_password_file = optarg; break;
        case 'H': af.custom_header = optarg; break;
        case 'V': af.custom_value_file = optarg; break;
        case 'C': af.ca_file = optarg; break;
        case 's':
            if (ss_parse_duration_ms(optarg, &sync_period_ms) != 0 || sync_period_ms < 100 ||
                sync_period_ms > 3600000) {
                fprintf(stderr,
                        "scrapeship scaler: --hpa-sync-period \"%s\" must be a duration from 100ms to 1h\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: {
            int w = collector_web_flag("scaler", c, optarg, &web);
            if (w < 0)
                return 2;
            if (w == 0) {
                usage(stderr);
                return 2;
            }
        }
        }
    }
    if (!config || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct scaler_cmd st = {0};
    sigemptyset(&st.sigs);
    sigaddset(&st.sigs, SIGTERM);
    sigaddset(&st.sigs, SIGINT);
    /* block before any thread starts (credential refreshers, HTTP server) */
    pthread_sigmask(SIG_BLOCK, &st.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1;
    struct scaler_config *cfg = NULL;
    struct kube_config *kc = NULL;
    struct kube_client *kube = NULL;
    struct collector_http *http = NULL;
    struct signer_slot *slots = calloc(MAX_SIGNERS, sizeof *slots);
    size_t nslots = 0;
    pthread_t sigthr;
    bool sig_started = false, metrics_registered = false;
    char err[2048] = "";
    if (!slots)
        goto done;

    if (scaler_config_load_file(config, &cfg, err, sizeof err) != 0) {
        ss_error("config", "cannot load %s:\n%s", config, err);
        goto done;
    }
    for (size_t i = 0; i < cfg->n_warnings; i++)
        ss_warn("config", "%s", cfg->warnings[i]);
    if (!cfg->n_objects) {
        ss_error("config", "%s holds no ScaledObject", config);
        goto done;
    }
    if (kube_config_load(kubeconfig, kube_ctx, sa_dir, &kc, err, sizeof err) != 0) {
        ss_error("kube", "%s", err);
        goto done;
    }
    const char *default_ns = ns ? ns : kc->ns;
    ss_info("kube", "API server %s (context %s, default namespace %s)", kc->server, kc->context,
            default_ns ? default_ns : "default");
    if (kube_client_new(kc, &kube) != 0)
        goto done;
    struct scaler_runner_options ro = {
        .dry_run = dry_run, .default_ns = default_ns, .hpa_sync_period_ms = sync_period_ms};
    if (scaler_runner_new(cfg, kube, &ro, &st.runner) != 0) {
        ss_error("main", "cannot start the scaler (out of memory)");
        goto done;
    }
    if (setup_auth(cfg, st.runner, &af, slots, &nslots) != 0)
        goto done;

    if (strcmp(listen, "none") != 0 && listen[0]) {
        web.listen = listen;
        if (collector_http_start(&web, &http) != 0)
            goto done;
    }
    if (ss_metrics_register(scaler_runner_render_metrics, st.runner) == 0)
        metrics_registered = true;
    collector_http_set_ready(http, true);
    for (size_t i = 0; i < cfg->n_objects; i++) {
        const struct scaler_object *so = &cfg->objects[i];
        char sync[32];
        ss_format_duration_ms(sync, sizeof sync,
                              so->hpa_sync_period_ms > 0 ? so->hpa_sync_period_ms : sync_period_ms);
        ss_info("scaler",
                "scaledobject=%s/%s target=%s/%s polling every %ds, HPA sync every %s, replicas %d..%d, "
                "cooldown %ds%s%s%s",
                so->ns, so->name, so->target_kind, so->target_name, (int)so->polling_interval_s, sync,
                (int)so->min_replicas, (int)so->max_replicas, (int)so->cooldown_period_s,
                so->has_modifiers ? ", scalingModifiers formula " : "",
                so->has_modifiers ? so->modifiers.formula : "",
                dry_run ? " (dry run: nothing is patched)" : "");
    }

    if (once) {
        int failed = 0;
        for (size_t i = 0; i < cfg->n_objects; i++)
            failed += scaler_runner_poll(st.runner, i) != 0;
        ret = failed ? 1 : 0;
        goto done;
    }
    if (pthread_create(&sigthr, NULL, signal_thread, &st) != 0)
        goto done;
    sig_started = true;
    ss_mem_trim(); /* started: the config and client set-up pages can go */
    scaler_runner_run(st.runner);
    ret = 0;
done:
    atomic_store(&st.done, true);
    if (sig_started) {
        pthread_kill(sigthr, SIGTERM); /* blocked everywhere: it waits for it (signal_thread) */
        pthread_join(sigthr, NULL);
    }
    collector_http_set_ready(http, false);
    collector_http_stop(http);
    if (metrics_registered)
        ss_metrics_unregister(scaler_runner_render_metrics, st.runner);
    scaler_runner_free(st.runner);
    for (size_t i = 0; i < nslots; i++)
        aws_signer_free(slots[i].signer);
    free(slots);
    kube_client_free(kube);
    kube_config_free(kc);
    scaler_config_free(cfg);
    if (ret == 0 && !once)
        ss_info("main", "stopped");
    return ret;
}
