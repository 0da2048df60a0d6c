/* main.c: the scrapeship binary: dispatch to a subcommand. Only main decides the
 * exit status; every library below returns errors. */
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "awscred.h"
#include "collector.h"
#include "web_int.h"

static void usage(FILE *f)
{
    fprintf(f,
            "scrapeship %s: scrape Prometheus endpoints, ship remote write (SigV4 for AMP)\n\n"
            "usage: scrapeship COMMAND [options]\n\n"
            "commands:\n"
            "  run           scrape continuously and ship (or print with --stdout)\n"
            "  scrape        scrape once and print what would be shipped\n"
            "  check-config  validate a config file and print the effective config\n"
            "  lint          validate one exposition strictly, with promtool's lint warnings\n"
            "  query         run a (SigV4-signed) instant PromQL query\n"
            "  scaler        scale workloads from PromQL like KEDA's prometheus trigger\n"
            "  --version     print the version\n\n"
            "Run `scrapeship COMMAND --help` for a command's options.\n",
            SS_VERSION);
}

/* The open-file soft limit up to the hard one, as every Go program does at start
 * (Prometheus and vmagent among them): each target keeps its connection open between
 * scrapes, and with systemd's default soft limit of 1024 an agent of 1000 targets
 * failed to connect to some and refused /metrics ("Too many open files"). Nothing here
 * uses select(), so descriptors above 1024 are fine. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    ss_mem_tune();
    raise_fd_limit();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("scrapeship %s (%s)\n", SS_VERSION, curl_version());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    /* What the dynamic loader touched to load and relocate 41 libraries (symbol tables,
     * relocations, constructors) is resident now and mostly never used again; drop it
     * before start-up adds its own, so that the process' peak is not the sum of both. */
    ss_mem_trim();
    /* Initialise OpenSSL before libcurl does, without its error strings and config
     * file: that is most of the pages libcrypto touches at start (about 2 MB of RSS in
     * a sidecar that may never open a TLS connection). Nor does it fill the legacy
     * name table of every cipher (0.17 MB): OpenSSL 3's TLS fetches its ciphers from
     * the provider, and the step runs once, so libcurl's own init, which asks for it,
     * skips it. The digest table stays: certificate verification looks digests up
     * there (test_scrape_auth_tls fails without it). */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                         OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS,
                     NULL);
    /* jansson parses credential JSON: make it wipe what it frees (before any thread) */
    awscred_harden_jansson();
    /* GnuTLS is not started when it is loaded (collector/webtls.c); a libcurl built on
     * GnuTLS instead of OpenSSL would need it started before its own init. */
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    if (cv && cv->ssl_version && strstr(cv->ssl_version, "GnuTLS") && web_tls_lib_init() < 0) {
        fprintf(stderr, "scrapeship: cannot initialise GnuTLS for libcurl\n");
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "scrapeship: cannot initialise libcurl\n");
        return 1;
    }
    int rc;
    /* the libraries are loaded and started: their start-up pages can go (common/memtrim.c) */
    ss_mem_trim();
    if (strcmp(cmd, "run") == 0)
        rc = collector_cmd_run(argc - 1, argv + 1);
    else if (strcmp(cmd, "scrape") == 0)
        rc = collector_cmd_scrape(argc - 1, argv + 1);
    else if (strcmp(cmd, "scaler") == 0)
        rc = collector_cmd_scaler(argc - 1, argv + 1);
    else if (strcmp(cmd, "query") == 0)
        rc = collector_cmd_query(argc - 1, argv + 1);
    else if (strcmp(cmd, "lint") == 0)
        rc = collector_cmd_lint(argc - 1, argv + 1);
    else if (strcmp(cmd, "check-config") == 0)
        rc = collector_cmd_check_config(argc - 1, argv + 1);
    else {
        fprintf(stderr, "scrapeship: unknown command \"%s\"\n\n", cmd);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
