/* webauth.c: HTTP basic auth for the web endpoint, as the exporter toolkit does it.
 *
 * basic_auth_users maps a user to a bcrypt hash; the password of a request is checked
 * with libxcrypt's crypt_rn (the system's bcrypt, never a hand-written one) and
 * compared in constant time. Results are cached under an HMAC-SHA256 of user, hash and
 * password with a key drawn at start, so the cache never holds a password and a
 * changed hash misses it. Passwords are wiped once checked. */
#include <crypt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ss.h"
#include "web_int.h"

#define CACHE_ENTRIES 128
/* Successes get their own part of the cache, so that a flood of wrong passwords
 * (each one new) cannot push a scraper's good credentials out and make it pay a
 * bcrypt, behind the flood, on its next scrape. */
#define CACHE_OK_ENTRIES 32

/* A bcrypt hash (cost 10, as the toolkit's) of a password nobody uses: unknown users
 * are checked against it so they take as long as known ones. */
static const char dummy_hash[] = "$2b$10$Hxe9rAlQKxlVLdx40ib3PO3lUFpXIx9yQldBx/E6FIP46cwPs35du";

struct cache_entry {
    unsigned char key[32];
    bool used, ok;
};

struct web_auth_cache {
    pthread_mutex_t mu;       /* the entries */
    pthread_mutex_t crypt_mu; /* one bcrypt at a time */
    unsigned char hmac_key[32];
    struct cache_entry e[CACHE_ENTRIES]; /* [0, CACHE_OK_ENTRIES): successes; the rest: failures */
    size_t next_ok, next_fail;           /* rings: the slot replaced next in each part */
    unsigned long computed;
    unsigned waiting; /* requests computing or waiting to compute a bcrypt (under mu) */
};

int web_auth_cache_new(struct web_auth_cache **out)
{
    *out = NULL;
    struct web_auth_cache *c = calloc(1, sizeof *c);
    if (!c)
        return SS_ENOMEM;
    if (RAND_bytes(c->hmac_key, sizeof c->hmac_key) != 1) {
        free(c);
        return SS_EIO;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->crypt_mu, NULL);
    *out = c;
    return 0;
}

void web_auth_cache_free(struct web_auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->crypt_mu);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

void web_auth_cache_stats(struct web_auth_cache *c, size_t *entries, unsigned long *computed)
{
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        n += c->e[i].used;
    *entries = n;
    *computed = c->computed;
    pthread_mutex_unlock(&c->mu);
}

int web_basic_auth_parse(const char *header, char user[WEB_AUTH_MAX_USER + 1],
                         char pass[WEB_AUTH_MAX_PASSWORD + 1])
{
    user[0] = pass[0] = '\0';
    if (!header || strncasecmp(header, "Basic ", 6) != 0)
        return SS_EAUTH;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64);
    while (len && b64[len - 1] == ' ')
        len--;
    /* base64 of user ':' password, at most this long */
    enum { MAX_B64 = (WEB_AUTH_MAX_USER + 1 + WEB_AUTH_MAX_PASSWORD + 2) / 3 * 4 };
    if (!len || len % 4 || len > MAX_B64)
        return SS_EAUTH;
    for (size_t i = 0; i < len; i++) {
        char ch = b64[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '+' || ch == '/' ||
                  (ch == '=' && i >= len - 2 && (i == len - 1 || b64[len - 1] == '='));
        if (!ok)
            return SS_EAUTH;
    }
    unsigned char dec[MAX_B64 / 4 * 3 + 1];
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)len);
    int rc = SS_EAUTH;
    if (n < 0)
        goto out;
    /* EVP_DecodeBlock counts the bytes the padding stands for */
    n -= (b64[len - 1] == '=') + (b64[len - 2] == '=');
    const unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (!colon || memchr(dec, '\0', (size_t)n))
        goto out;
    size_t ul = (size_t)(colon - dec), pl = (size_t)n - ul - 1;
    if (ul > WEB_AUTH_MAX_USER || pl > WEB_AUTH_MAX_PASSWORD)
        goto out;
    memcpy(user, dec, ul);
    user[ul] = '\0';
    memcpy(pass, colon + 1, pl);
    pass[pl] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(dec, sizeof dec);
    return rc;
}

/* The cache key: HMAC-SHA256(key, user \0 hash \0 password). All-zero when it
 * cannot be computed (then nothing is cached). */
static void cache_key(const struct web_auth_cache *c, const char *user, const char *hash, const char *pass,
                      unsigned char out[32])
{
    unsigned char msg[WEB_AUTH_MAX_USER + 1 + 128 + 1 + WEB_AUTH_MAX_PASSWORD];
    size_t ul = strlen(user), hl = strlen(hash), pl = strlen(pass);
    unsigned int outlen = 32;
    memset(out, 0, 32);
    if (ul > WEB_AUTH_MAX_USER || hl > 128 || pl > WEB_AUTH_MAX_PASSWORD)
        return;
    memcpy(msg, user, ul + 1);
    memcpy(msg + ul + 1, hash, hl + 1);
    memcpy(msg + ul + 1 + hl + 1, pass, pl);
    if (!HMAC(EVP_sha256(), c->hmac_key, (int)sizeof c->hmac_key, msg, ul + hl + 2 + pl, out, &outlen) ||
        outlen != 32)
        memset(out, 0, 32);
    OPENSSL_cleanse(msg, sizeof msg);
}

static bool bcrypt_matches(const char *hash, const char *pass)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    bool ok = false;
    const char *r = crypt_rn(pass, hash, cd, (int)sizeof *cd);
    size_t hl = strlen(hash);
    if (r && r[0] != '*' && strlen(r) == hl)
        ok = CRYPTO_memcmp(r, hash, hl) == 0;
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}

enum web_auth_result web_auth_verify(struct web_auth_cache *c, const struct cfg_web *w, const char *user,
                                     const char *pass)
{
    if (!c)
        return WEB_AUTH_DENIED; /* no web config file, so no users */
    const char *hash = cfg_web_user_hash(w, user);
    bool known = hash != NULL;
    if (!known)
        hash = dummy_hash;
    unsigned char key[32];
    cache_key(c, user, hash, pass, key);
    bool zero = true;
    for (size_t i = 0; i < 32; i++)
        zero &= key[i] == 0;

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < CACHE_ENTRIES && !zero; i++) {
        if (c->e[i].used && CRYPTO_memcmp(c->e[i].key, key, 32) == 0) {
            bool ok = c->e[i].ok;
            pthread_mutex_unlock(&c->mu);
            OPENSSL_cleanse(key, sizeof key);
            return ok && known ? WEB_AUTH_OK : WEB_AUTH_DENIED;
        }
    }
    /* bcrypt runs one at a time; a request that would queue behind too many others
     * is turned away, so that a flood of new passwords cannot hold every connection
     * (and the probes' slots) waiting for the mutex. */
    if (c->waiting >= WEB_AUTH_MAX_WAITING) {
        pthread_mutex_unlock(&c->mu);
        OPENSSL_cleanse(key, sizeof key);
        return WEB_AUTH_BUSY;
    }
    c->waiting++;
    pthread_mutex_unlock(&c->mu);

    pthread_mutex_lock(&c->crypt_mu);
    bool ok = bcrypt_matches(hash, pass) && known;
    pthread_mutex_unlock(&c->crypt_mu);

    pthread_mutex_lock(&c->mu);
    c->waiting--;
    c->computed++;
    if (!zero) {
        struct cache_entry *e;
        if (ok) {
            e = &c->e[c->next_ok];
            c->next_ok = (c->next_ok + 1) % CACHE_OK_ENTRIES;
        } else {
            e = &c->e[CACHE_OK_ENTRIES + c->next_fail];
            c->next_fail = (c->next_fail + 1) % (CACHE_ENTRIES - CACHE_OK_ENTRIES);
        }
        memcpy(e->key, key, 32);
        e->used = true;
        e->ok = ok;
    }
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(key, sizeof key);
    return ok ? WEB_AUTH_OK : WEB_AUTH_DENIED;
}

bool web_auth_check(struct web_auth_cache *c, const struct cfg_web *w, const char *user, const char *pass)
{
    return web_auth_verify(c, w, user, pass) == WEB_AUTH_OK;
}
