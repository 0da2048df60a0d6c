/* webtls.c: GnuTLS credentials for the web endpoint, one set per web config.
 *
 * libmicrohttpd creates one credentials object per daemon at start. To rotate
 * certificates without a restart, and to apply client_auth_type and the version and
 * cipher limits of the current web config, httpserver.c hands each new connection's
 * session to web_tls_apply before its handshake: the session then uses this file's
 * credentials and priorities instead of the daemon's (gnutls_credentials_set replaces
 * them). A set is immutable once built and reference-counted by its owner, so a
 * rotation never changes what a running handshake uses.
 *
 * Client certificates are verified in the handshake, as Go's crypto/tls does: a
 * session verify function checks the chain against client_ca_file and the
 * clientAuth extended key usage, and a failure aborts the handshake. */
/* RTLD_NEXT needs _GNU_SOURCE, which the build defines */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/x509.h>

#include "ss.h"
#include "web_int.h"

/* ---- GnuTLS starts only when the web endpoint serves TLS ----------------------------
 *
 * GnuTLS initialises itself when it is loaded (its constructor), and libmicrohttpd's
 * constructor calls gnutls_global_init() again, whether or not TLS is ever used: about
 * 0.8 MB of RSS in every process (random generator, ASN.1 trees, system priority file,
 * bench/sidecar_rss.py), though only a web config with tls_server_config needs it.
 * GNUTLS_SKIP_GLOBAL_INIT is GnuTLS' documented way to skip the constructor's
 * initialisation; the definition of gnutls_global_init below, which the dynamic
 * linker finds in the executable before GnuTLS' own, turns libmicrohttpd's call into
 * a no-op. web_tls_lib_init runs GnuTLS' real one (reference-counted, so
 * libmicrohttpd's gnutls_global_deinit at exit stays balanced) before the first use. */
GNUTLS_SKIP_GLOBAL_INIT

int gnutls_global_init(void)
{
    return 0;
}

static int lib_init_rc;

static void lib_init_once(void)
{
    int (*real)(void) = NULL;
    void *sym = dlsym(RTLD_NEXT, "gnutls_global_init");
    memcpy(&real, &sym, sizeof real);
    lib_init_rc = real ? real() : GNUTLS_E_INTERNAL_ERROR;
}

int web_tls_lib_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lib_init_once);
    return lib_init_rc;
}

struct web_tls {
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    enum cfg_web_client_auth client_auth;
};

/* A whole PEM file, at most WEB_TLS_MAX_PEM_BYTES. The caller wipes and frees
 * d->data (a key file is a secret). */
static int read_pem(const char *what, const char *path, gnutls_datum_t *d, char *err, size_t errlen)
{
    d->data = NULL;
    d->size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
        return SS_EIO;
    }
    unsigned char *buf = malloc(WEB_TLS_MAX_PEM_BYTES + 1);
    size_t len = buf ? fread(buf, 1, WEB_TLS_MAX_PEM_BYTES + 1, f) : 0;
    int rc = 0;
    if (!buf) {
        snprintf(err, errlen, "out of memory reading %s", what);
        rc = SS_ENOMEM;
    } else if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
        rc = SS_EIO;
    } else if (len > WEB_TLS_MAX_PEM_BYTES) {
        snprintf(err, errlen, "%s %s is larger than %u bytes", what, path, WEB_TLS_MAX_PEM_BYTES);
        rc = SS_ELIMIT;
    }
    fclose(f);
    if (rc) {
        if (buf)
            ss_wipe(buf, len);
        free(buf);
        return rc;
    }
    d->data = buf;
    d->size = (unsigned)len;
    return 0;
}

static void free_pem(gnutls_datum_t *d)
{
    if (d->data) {
        ss_wipe(d->data, d->size);
        free(d->data);
    }
    d->data = NULL;
    d->size = 0;
}

/* Append ":item" unless it is already there (kx, ciphers and MACs repeat across
 * suites). */
static int prio_add(char *out, size_t cap, size_t *len, const char *sign, const char *item)
{
    char tok[64];
    snprintf(tok, sizeof tok, ":%s%s", sign, item);
    size_t tl = strlen(tok);
    for (const char *p = out; (p = strstr(p, tok)) != NULL; p += tl)
        if (p[tl] == ':' || p[tl] == '\0')
            return 0;
    if (*len + tl >= cap)
        return SS_ELIMIT;
    memcpy(out + *len, tok, tl + 1);
    *len += tl;
    return 0;
}

int web_tls_priority_string(const struct cfg_web *w, char *out, size_t cap)
{
    static const char *const vers[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2", "VERS-TLS1.3"};
    size_t len = 0;
    int rc = 0;
    if (cap < 8)
        return SS_ELIMIT;
    strcpy(out, "NORMAL");
    len = 6;
    rc = prio_add(out, cap, &len, "-", "VERS-ALL");
    for (unsigned v = w->min_version; v <= w->max_version && !rc; v++)
        rc = prio_add(out, cap, &len, "+", vers[v - CFG_WEB_TLS10]);
    /* cipher_suites name TLS 1.2 suites; GnuTLS priorities are a product of key
     * exchanges, ciphers and MACs, so the parts of the listed suites are allowed. */
    bool any12 = false;
    for (size_t i = 0; i < w->ncipher_suites; i++)
        any12 |= w->cipher_suites[i]->kx != NULL;
    if (any12 && !rc) {
        rc = prio_add(out, cap, &len, "-", "KX-ALL");
        for (size_t i = 0; i < w->ncipher_suites && !rc; i++)
            if (w->cipher_suites[i]->kx)
                rc = prio_add(out, cap, &len, "+", w->cipher_suites[i]->kx);
        if (!rc)
            rc = prio_add(out, cap, &len, "-", "CIPHER-ALL");
        for (size_t i = 0; i < w->ncipher_suites && !rc; i++)
            if (w->cipher_suites[i]->cipher)
                rc = prio_add(out, cap, &len, "+", w->cipher_suites[i]->cipher);
        if (!rc)
            rc = prio_add(out, cap, &len, "-", "MAC-ALL");
        for (size_t i = 0; i < w->ncipher_suites && !rc; i++)
            if (w->cipher_suites[i]->mac)
                rc = prio_add(out, cap, &len, "+", w->cipher_suites[i]->mac);
    }
    if (w->ncurves && !rc) {
        rc = prio_add(out, cap, &len, "-", "GROUP-ALL");
        for (size_t i = 0; i < w->ncurves && !rc; i++)
            rc = prio_add(out, cap, &len, "+", w->curves[i]);
    }
    if (w->prefer_server_cipher_suites && !rc)
        rc = prio_add(out, cap, &len, "", "%SERVER_PRECEDENCE");
    return rc;
}

int web_tls_new(const struct cfg_web *w, struct web_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    gnutls_datum_t cert = {0}, key = {0}, ca = {0};
    char prio[512];
    const char *errpos = NULL;
    int g, rc = SS_ENOMEM;
    struct web_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    t->client_auth = w->client_auth;
    if ((g = web_tls_lib_init()) < 0) {
        snprintf(err, errlen, "GnuTLS cannot start: %s", gnutls_strerror(g));
        rc = SS_EIO;
        goto fail;
    }
    if (gnutls_certificate_allocate_credentials(&t->cred) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((rc = read_pem("cert_file", w->cert_file, &cert, err, errlen)) != 0 ||
        (rc = read_pem("key_file", w->key_file, &key, err, errlen)) != 0)
        goto fail;
    /* Also checks that the key belongs to the certificate. */
    g = gnutls_certificate_set_x509_key_mem2(t->cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0) {
        /* GnuTLS' message names the problem, never the key's bytes */
        snprintf(err, errlen, "cannot use cert_file %s with key_file %s: %s", w->cert_file, w->key_file,
                 gnutls_strerror(g));
        rc = SS_ECONFIG;
        goto fail;
    }
    if (w->client_ca_file) {
        if ((rc = read_pem("client_ca_file", w->client_ca_file, &ca, err, errlen)) != 0)
            goto fail;
        g = gnutls_certificate_set_x509_trust_mem(t->cred, &ca, GNUTLS_X509_FMT_PEM);
        if (g <= 0) {
            snprintf(err, errlen, "client_ca_file %s holds no usable certificate%s%s", w->client_ca_file,
                     g < 0 ? ": " : "", g < 0 ? gnutls_strerror(g) : "");
            rc = SS_ECONFIG;
            goto fail;
        }
    }
    if (web_tls_priority_string(w, prio, sizeof prio) != 0) {
        snprintf(err, errlen, "TLS settings do not fit a priority string");
        rc = SS_ELIMIT;
        goto fail;
    }
    g = gnutls_priority_init(&t->prio, prio, &errpos);
    if (g < 0) {
        snprintf(err, errlen, "GnuTLS does not accept the TLS settings (%s at \"%.40s\")", gnutls_strerror(g),
                 errpos ? errpos : "");
        rc = SS_ECONFIG;
        goto fail;
    }
    free_pem(&cert);
    free_pem(&key);
    free_pem(&ca);
    *out = t;
    return 0;
fail:
    free_pem(&cert);
    free_pem(&key);
    free_pem(&ca);
    web_tls_free(t);
    return rc;
}

void web_tls_free(struct web_tls *t)
{
    if (!t)
        return;
    if (t->prio)
        gnutls_priority_deinit(t->prio);
    if (t->cred)
        gnutls_certificate_free_credentials(t->cred);
    free(t);
}

/* Runs in the handshake once the client's Certificate message is in. Whether one is
 * required is GnuTLS' own check (GNUTLS_CERT_REQUIRE); this verifies one that was
 * sent against the session's trust list (client_ca_file), for client use. */
static int verify_client(gnutls_session_t s)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || !n)
        return 0;
    unsigned status = 0;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
    if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0)
        return -1;
    return 0;
}

int web_tls_apply(const struct web_tls *t, gnutls_session_t s)
{
    if (gnutls_priority_set(s, t->prio) < 0 || gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred) < 0)
        return SS_EIO;
    gnutls_certificate_request_t req = GNUTLS_CERT_IGNORE;
    switch (t->client_auth) {
    case CFG_WEB_NO_CLIENT_CERT: req = GNUTLS_CERT_IGNORE; break;
    case CFG_WEB_REQUEST_CLIENT_CERT:
    case CFG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN: req = GNUTLS_CERT_REQUEST; break;
    case CFG_WEB_REQUIRE_ANY_CLIENT_CERT:
    case CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT: req = GNUTLS_CERT_REQUIRE; break;
    }
    gnutls_certificate_server_set_request(s, req);
    if (t->client_auth == CFG_WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
        t->client_auth == CFG_WEB_REQUIRE_AND_VERIFY_CLIENT_CERT)
        gnutls_session_set_verify_function(s, verify_client);
    return 0;
}
