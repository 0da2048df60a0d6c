/* test_awscred.c: the AWS credential chain without a network.
 *
 * The chain's hooks are pointed at an in-process fake: an environment table, a clock
 * the test moves, and an HTTP function that plays STS, IMDSv2 and the container
 * endpoint (scripted failures, call counters, the last request's headers and body).
 * Covered: each provider, the order of the chain (every earlier provider wins when
 * present), the shared-file INI rules and profile resolution, the STS XML and
 * credential JSON parsers with their error replies, the ISO 8601 parser, refresh
 * scheduling math, the background refresher on an injected clock (refresh before
 * expiry, retries while the old credentials stay valid, expiry, forced refresh), the
 * getter's copy semantics and the self-metrics.
 * Secrets: every secret the fake hands out or the test configures is recorded; every
 * error string is checked against them, and stderr (all logs, at debug level) is
 * captured to a file and checked at the end.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "awscred.h"
#include "awscred_int.h"
#include "ss.h"

#define T0_MS       INT64_C(1767323045000) /* 2026-01-02T03:04:05Z */
#define MAX_SECRETS 512
#define MAX_ENV     48

/* ---- secrets registry -------------------------------------------------- */

static char *secret_list[MAX_SECRETS];
static size_t nsecrets;

static void add_secret(const char *s)
{
    if (nsecrets < MAX_SECRETS)
        secret_list[nsecrets++] = strdup(s);
}

static void assert_no_secret_in(const char *text, size_t len, const char *what)
{
    for (size_t i = 0; i < nsecrets; i++)
        if (memmem(text, len, secret_list[i], strlen(secret_list[i]))) {
            print_error("secret #%zu found in %s\n", i, what);
            fail();
        }
}

static void assert_no_secret(const char *s)
{
    assert_no_secret_in(s, strlen(s), "an error string");
}

/* ---- the fake world ---------------------------------------------------- */

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int64_t now_ms;
    const char *env[MAX_ENV][2];
    size_t nenv;
    int lifetime_s;
    long sts_status;     /* 0: normal; else reply with this status and an ErrorResponse */
    bool sts_echo_token; /* the error echoes the web identity token */
    long imds_put_status;
    bool imds_down; /* transport error on every IMDS request */
    long container_status;
    const char *expect_container_auth;
    unsigned serial;
    int n_sts_web, n_sts_role, n_imds_put, n_imds_get, n_imds_get_no_token, n_container, n_http;
    char last_sts_body[8192];
    char last_sts_headers[8192];
    char last_container_auth[512];
    char last_imds_put_ttl[64];
} F;

static char tmp_root[256];
static const char *web_token = "eyJraWQiOiJ0ZXN0In0.web-identity-token.c2lnbmF0dXJl";
static const char *container_token = "container-auth-token-0123456789";

static void fake_reset(void)
{
    pthread_mutex_lock(&fake_lock);
    memset(&F, 0, sizeof F);
    F.now_ms = T0_MS;
    F.lifetime_s = 3600;
    pthread_mutex_unlock(&fake_lock);
}

static void env_set(const char *k, const char *v)
{
    pthread_mutex_lock(&fake_lock);
    for (size_t i = 0; i < F.nenv; i++)
        if (strcmp(F.env[i][0], k) == 0) {
            F.env[i][1] = v;
            pthread_mutex_unlock(&fake_lock);
            return;
        }
    assert_true(F.nenv < MAX_ENV);
    F.env[F.nenv][0] = k;
    F.env[F.nenv][1] = v;
    F.nenv++;
    pthread_mutex_unlock(&fake_lock);
}

static const char *fake_getenv(void *ud, const char *name)
{
    (void)ud;
    const char *v = NULL;
    pthread_mutex_lock(&fake_lock);
    for (size_t i = 0; i < F.nenv; i++)
        if (strcmp(F.env[i][0], name) == 0)
            v = F.env[i][1];
    pthread_mutex_unlock(&fake_lock);
    return v;
}

static int64_t fake_now(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&fake_lock);
    int64_t t = F.now_ms;
    pthread_mutex_unlock(&fake_lock);
    return t;
}

static void clock_set(int64_t ms)
{
    pthread_mutex_lock(&fake_lock);
    F.now_ms = ms;
    pthread_mutex_unlock(&fake_lock);
}

static void iso(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *header(const struct awscred_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return req->headers[i] + n + 2;
    return NULL;
}

/* New temporary credentials, recorded as secrets. Called with fake_lock held. */
static void mint(char *id, char *secret, char *token, char *exp)
{
    unsigned s = ++F.serial;
    sprintf(id, "ASIAFAKE%012u", s);
    sprintf(secret, "fakeSecret/%u+AbCdEfGhIjKlMnOpQrStUv", s);
    sprintf(token, "FQoGZXIvYXdzFakeSessionToken%u/+xyzxyzxyzxyz==", s);
    iso(F.now_ms + (int64_t)F.lifetime_s * 1000, exp);
    add_secret(secret);
    add_secret(token);
}

static int reply(struct awscred_http_response *resp, long status, const char *body)
{
    resp->status = status;
    return ss_buf_append_str(&resp->body, body);
}

static int fake_http(void *ud, const struct awscred_http_request *req, struct awscred_http_response *resp,
                     char *why, size_t whycap)
{
    (void)ud;
    char id[64], secret[128], token[256], exp[32], buf[4096];
    int rc = 0;
    pthread_mutex_lock(&fake_lock);
    F.n_http++;
    const char *url = req->url;
    if (strstr(url, "/latest/")) {
        if (F.imds_down) {
            snprintf(why, whycap, "Failed to connect");
            rc = SS_EIO;
        } else if (strstr(url, "/latest/api/token")) {
            F.n_imds_put++;
            const char *ttl = header(req, "X-aws-ec2-metadata-token-ttl-seconds");
            snprintf(F.last_imds_put_ttl, sizeof F.last_imds_put_ttl, "%s", ttl ? ttl : "");
            if (strcmp(req->method, "PUT") != 0 || !ttl)
                rc = reply(resp, 400, "");
            else if (F.imds_put_status)
                rc = reply(resp, F.imds_put_status, "");
            else
                rc = reply(resp, 200, "AQAEAimds-session-token-XYZ==");
        } else {
            const char *tok = header(req, "X-aws-ec2-metadata-token");
            if (!tok || strcmp(tok, "AQAEAimds-session-token-XYZ==") != 0) {
                F.n_imds_get_no_token++;
                rc = reply(resp, 401, "");
            } else if (strstr(url, "security-credentials/node-role")) {
                F.n_imds_get++;
                mint(id, secret, token, exp);
                snprintf(buf, sizeof buf,
                         "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-02T03:00:00Z\",\n"
                         "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"%s\",\n  \"SecretAccessKey\" : "
                         "\"%s\",\n"
                         "  \"Token\" : \"%s\",\n  \"Expiration\" : \"%s\"\n}",
                         id, secret, token, exp);
                rc = reply(resp, 200, buf);
            } else if (strstr(url, "security-credentials/")) {
                F.n_imds_get++;
                rc = reply(resp, 200, "node-role\n");
            } else {
                rc = reply(resp, 404, "");
            }
        }
    } else if (strstr(url, "/container/") || strstr(url, "169.254.170.2")) {
        F.n_container++;
        const char *auth = header(req, "Authorization");
        snprintf(F.last_container_auth, sizeof F.last_container_auth, "%s", auth ? auth : "");
        if (F.container_status) {
            rc = reply(resp, F.container_status, "{\"code\":\"AccessDenied\",\"message\":\"bad token\"}");
        } else if (F.expect_container_auth && (!auth || strcmp(auth, F.expect_container_auth) != 0)) {
            rc = reply(resp, 401, "{\"code\":\"AccessDenied\",\"message\":\"bad token\"}");
        } else {
            mint(id, secret, token, exp);
            snprintf(buf, sizeof buf,
                     "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\",\"Token\":\"%s\","
                     "\"AccountId\":\"123456789012\",\"Expiration\":\"%s\"}",
                     id, secret, token, exp);
            rc = reply(resp, 200, buf);
        }
    } else if (strstr(url, "sts")) {
        snprintf(F.last_sts_body, sizeof F.last_sts_body, "%.*s", (int)req->body_len,
                 req->body ? (const char *)req->body : "");
        F.last_sts_headers[0] = '\0';
        for (size_t i = 0; i < req->nheaders; i++) {
            strncat(F.last_sts_headers, req->headers[i],
                    sizeof F.last_sts_headers - strlen(F.last_sts_headers) - 2);
            strcat(F.last_sts_headers, "\n");
        }
        bool web = strstr(F.last_sts_body, "Action=AssumeRoleWithWebIdentity") != NULL;
        const char *action = web ? "AssumeRoleWithWebIdentity" : "AssumeRole";
        if (web)
            F.n_sts_web++;
        else
            F.n_sts_role++;
        if (F.sts_status) {
            snprintf(buf, sizeof buf,
                     "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                     "<Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized %s</Message>"
                     "</Error><RequestId>r-1</RequestId></ErrorResponse>",
                     F.sts_echo_token ? web_token : "");
            rc = reply(resp, F.sts_status, buf);
        } else {
            mint(id, secret, token, exp);
            snprintf(
                buf, sizeof buf,
                "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                "  <%sResult>\n    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"
                "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n"
                "    <Credentials>\n      <AccessKeyId>%s</AccessKeyId>\n"
                "      <SecretAccessKey>%s</SecretAccessKey>\n      <SessionToken>%s</SessionToken>\n"
                "      <Expiration>%s</Expiration>\n    </Credentials>\n  </%sResult>\n"
                "  <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>\n</%sResponse>\n",
                action, action, id, secret, token, exp, action, action);
            rc = reply(resp, 200, buf);
        }
    } else {
        snprintf(why, whycap, "no route");
        rc = SS_EIO;
    }
    pthread_mutex_unlock(&fake_lock);
    return rc;
}

static struct awscred_options base_opts(void)
{
    struct awscred_options o = {
        .name = "t",
        .getenv_fn = fake_getenv,
        .now_ms_fn = fake_now,
        .http_fn = fake_http,
        .sts_endpoint = "http://sts.test/",
        .home_dir = tmp_root, /* empty: no ~/.aws */
    };
    return o;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *path_in_tmp(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", tmp_root, name);
    return buf;
}

/* Resolve once with options; returns rc and fills *cr and err. */
static int resolve_with(const struct awscred_options *o, struct awscred_creds *cr, char *err, size_t errcap)
{
    struct awscred_chain *c = NULL;
    int rc = awscred_chain_new(o, &c);
    if (rc)
        return rc;
    awscred_creds_init(cr);
    rc = awscred_resolve(c);
    if (rc == 0)
        assert_int_equal(awscred_get(c, cr), 0);
    awscred_last_error(c, err, errcap);
    assert_no_secret(err);
    awscred_chain_free(c);
    return rc;
}

static struct awscred_creds creds_buf;
static char err[AWSCRED_ERR_MAX];

/* ---- time -------------------------------------------------------------- */

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
#define OK(s, want)                                                                                          \
    do {                                                                                                     \
        assert_int_equal(awscred_parse_time(s, strlen(s), &ms), 0);                                          \
        assert_int_equal(ms, (want));                                                                        \
    } while (0)
#define BAD(s) assert_int_equal(awscred_parse_time(s, strlen(s), &ms), SS_EPARSE)
    OK("2026-01-02T03:04:05Z", T0_MS);
    OK("2026-01-02T03:04:05.250Z", T0_MS + 250);
    OK("2026-01-02T03:04:05.123456789Z", T0_MS + 123);
    OK("2026-01-02t03:04:05z", T0_MS);
    OK("2026-01-02T05:04:05+02:00", T0_MS);
    OK("2026-01-02T01:34:05-0130", T0_MS);
    OK("1970-01-01T00:00:00Z", 0);
    OK("2024-02-29T00:00:00Z", INT64_C(1709164800000));
    OK("2000-03-01T00:00:00Z", INT64_C(951868800000));
    BAD("2023-02-29T00:00:00Z");
    BAD("2026-13-01T00:00:00Z");
    BAD("2026-01-02T03:04:05"); /* no zone */
    BAD("2026-01-02T24:00:00Z");
    BAD("2026-01-02T03:04:05.Z");
    BAD("2026-01-02T03:04:05Zjunk");
    BAD("2026-1-02T03:04:05Z");
    BAD("");
    BAD("1767323045");
#undef OK
#undef BAD
}

/* ---- STS XML ----------------------------------------------------------- */

static const char *STS_WEB_OK =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    "
    "<SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>\n"
    "    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
    "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
    "      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
    "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
    "    <Provider>www.amazon.com</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata>\n"
    "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
    "  </ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

static int parse_xml(const char *doc, const char *action, struct awscred_value *v)
{
    int rc = awscred_parse_sts_xml(doc, strlen(doc), action, v, err, sizeof err);
    assert_no_secret(err);
    return rc;
}

static void test_sts_xml(void **state)
{
    (void)state;
    struct awscred_value v;
    assert_int_equal(parse_xml(STS_WEB_OK, "AssumeRoleWithWebIdentity", &v), 0);
    assert_string_equal(v.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert_string_equal(v.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    assert_string_equal(v.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
    assert_int_equal(v.expiration_ms, INT64_C(1414191623000));
    awscred_value_clear(&v);
    assert_null(v.secret_access_key);

    /* the same reply is not an AssumeRole reply */
    assert_int_equal(parse_xml(STS_WEB_OK, "AssumeRole", &v), SS_EPARSE);
    assert_null(v.access_key_id);

    /* prefixes, attributes, comments, CDATA, entities and character references */
    const char *fancy = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<sts:AssumeRoleResponse xmlns:sts=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                        "<!-- <AssumeRoleResult><Credentials><AccessKeyId>WRONG</AccessKeyId> -->"
                        "<sts:AssumeRoleResult a='x>y'><sts:Credentials>"
                        "<sts:AccessKeyId> ASIA&#x41;B </sts:AccessKeyId>"
                        "<sts:SecretAccessKey><![CDATA[se<cr>et]]>&amp;&#43;</sts:SecretAccessKey>"
                        "<sts:SessionToken>tok&lt;&gt;&quot;&apos;</sts:SessionToken>"
                        "<sts:Expiration>2026-01-02T03:04:05.000Z</sts:Expiration>"
                        "</sts:Credentials></sts:AssumeRoleResult></sts:AssumeRoleResponse>";
    assert_int_equal(parse_xml(fancy, "AssumeRole", &v), 0);
    assert_string_equal(v.access_key_id, "ASIAAB");
    assert_string_equal(v.secret_access_key, "se<cr>et&+");
    assert_string_equal(v.session_token, "tok<>\"'");
    assert_int_equal(v.expiration_ms, T0_MS);
    awscred_value_clear(&v);

    /* error replies carry code and message, sanitised */
    const char *deny =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
        "    <Message>User: arn:aws:iam::123456789012:user/x is not authorized\n\tto perform: "
        "sts:AssumeRole</Message>\n  </Error>\n  <RequestId>abc</RequestId>\n</ErrorResponse>\n";
    assert_int_equal(parse_xml(deny, "AssumeRole", &v), SS_EAUTH);
    assert_non_null(strstr(err, "AccessDenied: User: arn:aws:iam::123456789012:user/x is not authorized"));
    assert_null(strchr(err, '\n'));
    const char *expired = "<ErrorResponse><Error><Code>ExpiredTokenException</Code>"
                          "<Message>Token expired: current date/time 1 must be before 0</Message>"
                          "</Error></ErrorResponse>";
    assert_int_equal(parse_xml(expired, "AssumeRoleWithWebIdentity", &v), SS_EAUTH);
    assert_non_null(strstr(err, "ExpiredTokenException"));

    /* broken documents; none may quote the secrets they carry */
    add_secret("SecretNeverInErrors1234");
    add_secret("TokenNeverInErrors5678");
    const char *bad[] = {
        "",
        "not xml at all",
        "<!DOCTYPE x [<!ENTITY e \"SecretNeverInErrors1234\">]><AssumeRoleResult/>",
        "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
        "<SecretAccessKey>SecretNeverInErrors1234</SecretAccessKey><SessionToken>TokenNeverInErrors5678"
        "</SessionToken><Expiration>tomorrow</Expiration></Credentials></AssumeRoleResult>",
        "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
        "<SecretAccessKey>SecretNeverInErrors1234</SecretAccessKey><SessionToken>TokenNeverInErrors5678"
        "</SessionToken></Credentials></AssumeRoleResult>", /* no Expiration */
        "<AssumeRoleResult><Credentials><AccessKeyId>A<b/></AccessKeyId></Credentials></AssumeRoleResult>",
        "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>", /* unterminated */
        "<AssumeRoleResult><Credentials><AccessKeyId>A&bogus;</AccessKeyId></Credentials></AssumeRoleResult>",
        "<AssumeRoleResult><Credentials><AccessKeyId>A&#0;</AccessKeyId></Credentials></AssumeRoleResult>",
        "<AssumeRoleResult><Credentials><AccessKeyId>A "
        "B</AccessKeyId><SecretAccessKey>SecretNeverInErrors1234"
        "</SecretAccessKey><SessionToken>TokenNeverInErrors5678</SessionToken>"
        "<Expiration>2026-01-02T03:04:05Z</Expiration></Credentials></AssumeRoleResult>", /* space */
        "<AssumeRoleResult><!-- unterminated",
        "<AssumeRoleResult>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_xml(bad[i], "AssumeRole", &v);
        if (rc != SS_EPARSE)
            print_error("case %zu: rc %d\n", i, rc);
        assert_int_equal(rc, SS_EPARSE);
        assert_null(v.secret_access_key);
    }

    /* limits: a session token past AWSCRED_MAX_TOKEN */
    struct ss_buf big;
    ss_buf_init(&big, 0);
    assert_int_equal(ss_buf_append_str(&big, "<AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
                                             "<SecretAccessKey>S</SecretAccessKey><SessionToken>"),
                     0);
    for (int i = 0; i < AWSCRED_MAX_TOKEN + 1; i++)
        assert_int_equal(ss_buf_append(&big, "t", 1), 0);
    assert_int_equal(ss_buf_append_str(&big, "</SessionToken><Expiration>2026-01-02T03:04:05Z</Expiration>"
                                             "</Credentials></AssumeRoleResult>"),
                     0);
    assert_int_equal(awscred_parse_sts_xml(big.data, big.len, "AssumeRole", &v, err, sizeof err), SS_ELIMIT);
    ss_buf_free(&big);
}

/* ---- credential JSON --------------------------------------------------- */

static int parse_json(const char *doc, struct awscred_value *v)
{
    int rc = awscred_parse_creds_json(doc, strlen(doc), v, err, sizeof err);
    assert_no_secret(err);
    return rc;
}

static void test_creds_json(void **state)
{
    (void)state;
    struct awscred_value v;
    const char *imds = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2012-04-26T16:39:16Z\",\n"
                       "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
                       "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
                       "  \"Token\" : \"token\",\n  \"Expiration\" : \"2017-05-17T15:09:54Z\"\n}";
    assert_int_equal(parse_json(imds, &v), 0);
    assert_string_equal(v.access_key_id, "ASIAIOSFODNN7EXAMPLE");
    assert_string_equal(v.session_token, "token");
    assert_int_equal(v.expiration_ms, INT64_C(1495033794000));
    awscred_value_clear(&v);

    const char *ecs =
        "{\"AccessKeyId\":\"ASIAECS\",\"Expiration\":\"2026-01-02T03:04:05Z\","
        "\"RoleArn\":\"arn:aws:iam::1:role/x\",\"SecretAccessKey\":\"s\\/ecret\",\"Token\":\"t\"}";
    assert_int_equal(parse_json(ecs, &v), 0);
    assert_string_equal(v.secret_access_key, "s/ecret");
    assert_int_equal(v.expiration_ms, T0_MS);
    awscred_value_clear(&v);

    /* no Token and no Expiration: static-like credentials */
    assert_int_equal(parse_json("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", &v), 0);
    assert_null(v.session_token);
    assert_int_equal(v.expiration_ms, 0);
    awscred_value_clear(&v);

    assert_int_equal(parse_json("{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no role\","
                                "\"LastUpdated\":\"2012-04-26T16:39:16Z\"}",
                                &v),
                     SS_EAUTH);
    assert_string_equal(err, "AssumeRoleUnauthorizedAccess: no role");
    assert_int_equal(parse_json("{\"code\":\"InvalidTokenError\",\"message\":\"bad\"}", &v), SS_EAUTH);
    assert_string_equal(err, "InvalidTokenError: bad");

    add_secret("JsonSecretNeverInErrors");
    const char *bad[] = {
        "",
        "[]",
        "{\"AccessKeyId\":\"A\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"JsonSecretNeverInErrors\",\"Expiration\":\"soon\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"JsonSecretNeverInErrors\",\"Expiration\":5}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":JsonSecretNeverInErrors}", /* jansson would quote it */
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"JsonSecretNeverInErrors\",\"AccessKeyId\":\"B\"}",
        "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"JsonSecretNeverInErrors\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"Json\\nSecret\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_json(bad[i], &v);
        if (rc != SS_EPARSE)
            print_error("case %zu: rc %d (%s)\n", i, rc, err);
        assert_int_equal(rc, SS_EPARSE);
        assert_null(v.access_key_id);
    }
    char big[1024];
    snprintf(big, sizeof big, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"%0*d\"}", AWSCRED_MAX_SECRET + 1,
             7);
    assert_int_equal(parse_json(big, &v), SS_ELIMIT);
}

/* ---- INI --------------------------------------------------------------- */

static void test_ini(void **state)
{
    (void)state;
    struct awscred_ini *ini;
    const char *cred = "\xef\xbb\xbf# a comment\n"
                       "; another comment\n"
                       "[default]\r\n"
                       "aws_access_key_id = AKIADEFAULT\r\n"
                       "aws_secret_access_key=def#not-a-comment ; a comment\n"
                       "\n"
                       "  [ spaced ]   # comment after the section\n"
                       "AWS_Access_Key_Id\t=\tAKIASPACED   \n"
                       "aws_secret_access_key = spaced-secret\t# trailing comment\n"
                       "[profile x]\n"
                       "aws_access_key_id = literal-profile-x\n"
                       "[dup]\n"
                       "region = us-east-1\n"
                       "region = eu-west-1\n"
                       "[dup]\n"
                       "output = json\n"
                       "[bad section\n"
                       "aws_access_key_id = ignored\n"
                       "[]\n"
                       "aws_access_key_id = ignored-too\n"
                       "[two words]\n"
                       "aws_access_key_id = ignored-three\n"
                       "[empty]\n"
                       "line without equals\n"
                       "= no key\n";
    assert_int_equal(awscred_ini_parse(cred, strlen(cred), false, &ini), 0);
    assert_string_equal(awscred_ini_get(ini, "default", "aws_access_key_id"), "AKIADEFAULT");
    assert_string_equal(awscred_ini_get(ini, "default", "aws_secret_access_key"), "def#not-a-comment");
    assert_string_equal(awscred_ini_get(ini, "spaced", "aws_access_key_id"), "AKIASPACED");
    assert_string_equal(awscred_ini_get(ini, "spaced", "AWS_SECRET_ACCESS_KEY"), "spaced-secret");
    /* in the credentials file "[profile x]" is a profile literally named "profile x"... */
    assert_null(awscred_ini_get(ini, "x", "aws_access_key_id"));
    /* ...but it has a space, which profile names cannot have: skipped */
    assert_false(awscred_ini_has_profile(ini, "profile x"));
    assert_string_equal(awscred_ini_get(ini, "dup", "region"), "eu-west-1");
    assert_string_equal(awscred_ini_get(ini, "dup", "output"), "json");
    assert_false(awscred_ini_has_profile(ini, "bad section"));
    assert_false(awscred_ini_has_profile(ini, "two words"));
    assert_true(awscred_ini_has_profile(ini, "empty"));
    assert_null(awscred_ini_get(ini, "empty", ""));
    assert_null(awscred_ini_get(ini, "nope", "region"));
    awscred_ini_free(ini);

    const char *conf = "[default]\n"
                       "region = us-west-2\n"
                       "[profile app]\n"
                       "role_arn = arn:aws:iam::123456789012:role/app\n"
                       "s3 =\n"
                       "  max_concurrent_requests = 20\n"
                       "  role_arn = not-a-top-level-key\n"
                       "source_profile = base\n"
                       "[profile   padded  ]\n"
                       "region = ap-south-1\n"
                       "[plain]\n"
                       "region = ignored-in-config\n"
                       "[sso-session corp]\n"
                       "sso_region = us-east-1\n"
                       "[services dev]\n"
                       "sts =\n"
                       "  endpoint_url = http://localhost\n"
                       "[profile]\n"
                       "region = nameless\n";
    assert_int_equal(awscred_ini_parse(conf, strlen(conf), true, &ini), 0);
    assert_string_equal(awscred_ini_get(ini, "default", "region"), "us-west-2");
    assert_string_equal(awscred_ini_get(ini, "app", "role_arn"), "arn:aws:iam::123456789012:role/app");
    assert_string_equal(awscred_ini_get(ini, "app", "s3"), "");
    assert_null(awscred_ini_get(ini, "app", "max_concurrent_requests"));
    assert_string_equal(awscred_ini_get(ini, "app", "source_profile"), "base");
    assert_string_equal(awscred_ini_get(ini, "padded", "region"), "ap-south-1");
    assert_false(awscred_ini_has_profile(ini, "plain"));
    assert_false(awscred_ini_has_profile(ini, "corp"));
    assert_false(awscred_ini_has_profile(ini, "sso-session corp"));
    assert_false(awscred_ini_has_profile(ini, "dev"));
    assert_false(awscred_ini_has_profile(ini, "profile"));
    awscred_ini_free(ini);

    /* limits */
    assert_int_equal(awscred_ini_parse("", 0, true, &ini), 0);
    assert_false(awscred_ini_has_profile(ini, "default"));
    awscred_ini_free(ini);
    assert_int_equal(awscred_ini_parse("x", AWSCRED_MAX_SHARED_FILE + 1, true, &ini), SS_ELIMIT);
    awscred_ini_free(NULL);
}

/* ---- providers --------------------------------------------------------- */

static void test_static_and_env(void **state)
{
    (void)state;
    fake_reset();
    add_secret("StaticSecretValue/+123");
    add_secret("EnvSecretValue/+456");
    add_secret("EnvSessionToken789");
    struct awscred_options o = base_opts();
    o.access_key_id = "AKIASTATIC";
    o.secret_access_key = "StaticSecretValue/+123";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_STATIC);
    assert_string_equal(creds_buf.access_key_id, "AKIASTATIC");
    assert_false(creds_buf.has_session_token);
    struct sigv4_credentials sv;
    awscred_creds_sigv4(&creds_buf, &sv);
    assert_null(sv.session_token);
    assert_string_equal(sv.secret_access_key, "StaticSecretValue/+123");

    o = base_opts();
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", "EnvSecretValue/+456");
    env_set("AWS_SESSION_TOKEN", "EnvSessionToken789");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_ENV);
    assert_string_equal(creds_buf.access_key_id, "AKIAENV");
    assert_string_equal(creds_buf.session_token, "EnvSessionToken789");
    assert_int_equal(creds_buf.expiration_ms, 0);

    /* a pasted token with its newline: named, not quoted */
    add_secret("EnvSessionTokenWithNewline");
    env_set("AWS_SESSION_TOKEN", "EnvSessionTokenWithNewline\n");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "environment: AWS_* variables: session token is empty or has characters"));
    env_set("AWS_SESSION_TOKEN", "EnvSessionToken789");

    /* half-configured environment: an error naming the variable, not its value */
    env_set("AWS_ACCESS_KEY_ID", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "environment: AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"));
    env_set("AWS_ACCESS_KEY_ID", "");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG); /* empty = unset */

    /* option validation */
    struct awscred_chain *c = NULL;
    o = base_opts();
    o.access_key_id = "AKIA";
    assert_int_equal(awscred_chain_new(&o, &c), SS_ECONFIG);
    o = base_opts();
    o.external_id = "ext";
    assert_int_equal(awscred_chain_new(&o, &c), SS_ECONFIG);
    assert_null(c);
    awscred_chain_free(NULL);
}

static void test_web_identity(void **state)
{
    (void)state;
    fake_reset();
    add_secret(web_token);
    char tok[512], session_buf[64];
    path_in_tmp("web-token", tok, sizeof tok);
    char content[256];
    snprintf(content, sizeof content, "%s\n", web_token);
    write_file(tok, content);
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", tok);
    env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
    env_set("AWS_ROLE_SESSION_NAME", "pod-session");
    struct awscred_options o = base_opts();
    o.region = "eu-central-1";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_WEB_IDENTITY);
    assert_int_equal(creds_buf.expiration_ms, T0_MS + 3600 * 1000);
    assert_true(creds_buf.has_session_token);
    assert_int_equal(F.n_sts_web, 1);
    assert_non_null(strstr(F.last_sts_body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"));
    assert_non_null(strstr(F.last_sts_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Firsa"));
    assert_non_null(strstr(F.last_sts_body, "RoleSessionName=pod-session"));
    /* the token file's trailing newline is not part of the token */
    assert_non_null(
        strstr(F.last_sts_body, "WebIdentityToken=eyJraWQiOiJ0ZXN0In0.web-identity-token.c2lnbmF0dXJl"));
    assert_null(strstr(F.last_sts_body, "%0A"));
    assert_null(strstr(F.last_sts_headers, "Authorization")); /* unsigned */
    assert_non_null(strstr(F.last_sts_headers, "Content-Type: application/x-www-form-urlencoded"));

    /* no session name configured: a generated one */
    env_set("AWS_ROLE_SESSION_NAME", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    snprintf(session_buf, sizeof session_buf, "RoleSessionName=scrapeship-%lld", (long long)T0_MS);
    assert_non_null(strstr(F.last_sts_body, session_buf));

    /* STS refuses, and echoes the token back: the error must not carry it */
    F.sts_status = 400;
    F.sts_echo_token = true;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "web_identity: STS AssumeRoleWithWebIdentity: HTTP 400 AccessDenied"));
    F.sts_status = 0;

    /* misconfiguration */
    env_set("AWS_ROLE_ARN", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "AWS_ROLE_ARN"));
    env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
    char missing[512];
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", path_in_tmp("no-such-token", missing, sizeof missing));
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "does not exist"));
    char empty[512];
    write_file(path_in_tmp("empty-token", empty, sizeof empty), "\n");
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", empty);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);

    /* a bad region cannot be spliced into the endpoint URL */
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", tok);
    o.region = "us-east-1.evil.example/";
    o.sts_endpoint = NULL;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
}

static void test_container(void **state)
{
    (void)state;
    static const char *allowed[] = {
        "http://127.0.0.1/creds",
        "http://127.1.2.3:8080/x",
        "http://localhost:51679/creds",
        "http://[::1]/x",
        "http://169.254.170.2/v2/credentials/abc",
        "http://169.254.170.23/v1/credentials",
        "http://[fd00:ec2::23]/v1/credentials",
        "https://creds.example.com/x",
        "HTTP://127.0.0.1/x",
    };
    static const char *refused[] = {
        "http://example.com/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://[fd00:ec2::24]/",
        "http://[::2]/",
        "ftp://127.0.0.1/x",
        "not a url",
        "http://169.254.170.3/",
        "file:///etc/passwd",
        "http://127.0.0.1.example.com/",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!awscred_container_url_allowed(allowed[i])) {
            print_error("refused %s\n", allowed[i]);
            fail();
        }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (awscred_container_url_allowed(refused[i])) {
            print_error("allowed %s\n", refused[i]);
            fail();
        }

    fake_reset();
    add_secret(container_token);
    char tf[512], content[128];
    path_in_tmp("container-token", tf, sizeof tf);
    snprintf(content, sizeof content, "%s\n", container_token);
    write_file(tf, content);
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/container/creds");
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-the-file-is-set");
    F.expect_container_auth = container_token;
    struct awscred_options o = base_opts();
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_CONTAINER);
    assert_string_equal(F.last_container_auth, container_token);

    /* the relative URI wins over the full one, against the (overridable) ECS host */
    env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/uuid");
    o.container_endpoint = "http://127.0.0.1:9/container";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/no-slash");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", NULL);

    /* a token the agent refuses */
    F.expect_container_auth = "something-else";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_non_null(
        strstr(err, "container: GET http://127.0.0.1:9/container/creds: HTTP 401 AccessDenied: bad token"));
    F.expect_container_auth = NULL;
    F.container_status = 500;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EHTTP);
    F.container_status = 0;

    /* variable token, with a line break: refused before any request */
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "abc\r\nX-Injected: 1");
    int before = F.n_container;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_int_equal(F.n_container, before);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0); /* no token: no header */
    assert_string_equal(F.last_container_auth, "");

    /* a host the SDKs refuse: no request at all */
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds");
    before = F.n_http;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_int_equal(F.n_http, before);
    assert_non_null(strstr(err, "must be https"));
}

static void test_imds(void **state)
{
    (void)state;
    fake_reset();
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/");
    add_secret("AQAEAimds-session-token-XYZ==");
    struct awscred_options o = base_opts();
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_IMDS);
    assert_int_equal(F.n_imds_put, 1);
    assert_string_equal(F.last_imds_put_ttl, "21600");
    assert_int_equal(F.n_imds_get, 2);
    assert_int_equal(F.n_imds_get_no_token, 0);

    /* token PUT refused (a hop limit, a proxy): fail, and never try IMDSv1 */
    F.imds_put_status = 403;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EHTTP);
    assert_non_null(strstr(err, "IMDSv1 is never used"));
    assert_int_equal(F.n_imds_get, 2);
    assert_int_equal(F.n_imds_get_no_token, 0);
    F.imds_put_status = 0;
    F.imds_down = true;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EIO);
    assert_int_equal(F.n_imds_get_no_token, 0);
    F.imds_down = false;

    /* disabled: not configured, so the chain finds nothing */
    env_set("AWS_EC2_METADATA_DISABLED", "TRUE");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "no AWS credentials found"));
    env_set("AWS_EC2_METADATA_DISABLED", "false");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);

    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "file:///etc/passwd");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
}

static void write_profiles(const char *cred, const char *conf)
{
    static char cred_path[512], conf_path[512]; /* the fake environment borrows them */
    if (cred) {
        write_file(path_in_tmp("credentials", cred_path, sizeof cred_path), cred);
        env_set("AWS_SHARED_CREDENTIALS_FILE", cred_path);
    }
    if (conf) {
        write_file(path_in_tmp("config", conf_path, sizeof conf_path), conf);
        env_set("AWS_CONFIG_FILE", conf_path);
    }
}

static void test_shared_profiles(void **state)
{
    (void)state;
    fake_reset();
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    add_secret("BaseSecret/+abc");
    add_secret("ConfSecretLoses");
    add_secret("SelfSecret123");
    write_profiles("# credentials file\n"
                   "[default]\n"
                   "aws_access_key_id = AKIADEFAULTCRED\n"
                   "aws_secret_access_key = BaseSecret/+abc\n"
                   "[base]\n"
                   "aws_access_key_id = AKIABASE\n"
                   "aws_secret_access_key = BaseSecret/+abc\n"
                   "[self]\n"
                   "aws_access_key_id = AKIASELF\n"
                   "aws_secret_access_key = SelfSecret123\n",
                   "[default]\n"
                   "aws_access_key_id = AKIADEFAULTCONF\n"
                   "aws_secret_access_key = ConfSecretLoses\n"
                   "[profile conf-only]\n"
                   "aws_access_key_id = AKIACONFONLY\n"
                   "aws_secret_access_key = ConfSecretLoses\n"
                   "[conf-no-prefix]\n"
                   "aws_access_key_id = AKIANOPREFIX\n"
                   "aws_secret_access_key = ConfSecretLoses\n"
                   "[profile app]\n"
                   "role_arn = arn:aws:iam::123456789012:role/app ; the role\n"
                   "source_profile = base\n"
                   "role_session_name = app-session\n"
                   "external_id = app-ext\n"
                   "region = ap-northeast-1\n"
                   "[profile chained]\n"
                   "role_arn = arn:aws:iam::123456789012:role/chained\n"
                   "source_profile = app\n"
                   "[profile self]\n"
                   "role_arn = arn:aws:iam::123456789012:role/self\n"
                   "source_profile = self\n"
                   "[profile loop-a]\n"
                   "role_arn = arn:aws:iam::123456789012:role/a\n"
                   "source_profile = loop-b\n"
                   "[profile loop-b]\n"
                   "role_arn = arn:aws:iam::123456789012:role/b\n"
                   "source_profile = loop-a\n"
                   "[profile envsrc]\n"
                   "role_arn = arn:aws:iam::123456789012:role/envsrc\n"
                   "credential_source = Environment\n"
                   "[profile both]\n"
                   "role_arn = arn:aws:iam::123456789012:role/both\n"
                   "source_profile = base\n"
                   "credential_source = Environment\n"
                   "[profile mfa]\n"
                   "role_arn = arn:aws:iam::123456789012:role/mfa\n"
                   "source_profile = base\n"
                   "mfa_serial = arn:aws:iam::123456789012:mfa/me\n"
                   "[profile dangling]\n"
                   "role_arn = arn:aws:iam::123456789012:role/dangling\n"
                   "source_profile = nowhere\n"
                   "[profile half]\n"
                   "aws_access_key_id = AKIAHALF\n"
                   "[profile proc]\n"
                   "credential_process = /bin/echo\n"
                   "[profile regiononly]\n"
                   "region = us-east-2\n");
    struct awscred_options o = base_opts();

    /* default profile: the credentials file wins over the config file */
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_PROFILE);
    assert_string_equal(creds_buf.access_key_id, "AKIADEFAULTCRED");

    /* "[profile x]" in the config file; "[x]" there is not a profile */
    o.profile = "conf-only";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_string_equal(creds_buf.access_key_id, "AKIACONFONLY");
    o.profile = "conf-no-prefix";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "profile conf-no-prefix not found"));

    /* AWS_PROFILE selects, the option overrides it */
    o.profile = NULL;
    env_set("AWS_PROFILE", "base");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_string_equal(creds_buf.access_key_id, "AKIABASE");

    /* role_arn + source_profile: AssumeRole signed with the source profile's keys */
    env_set("AWS_PROFILE", "app");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_PROFILE);
    assert_int_equal(F.n_sts_role, 1);
    assert_non_null(strstr(F.last_sts_body, "Action=AssumeRole&Version=2011-06-15"));
    assert_non_null(strstr(F.last_sts_body, "RoleSessionName=app-session"));
    assert_non_null(strstr(F.last_sts_body, "ExternalId=app-ext"));
    assert_non_null(strstr(
        F.last_sts_headers,
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIABASE/20260102/ap-northeast-1/sts/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature="));
    assert_non_null(strstr(F.last_sts_headers, "X-Amz-Date: 20260102T030405Z"));
    assert_null(strstr(F.last_sts_headers, "X-Amz-Security-Token"));

    /* the caller's region beats the profile's */
    o.region = "us-west-2";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_non_null(strstr(F.last_sts_headers, "/us-west-2/sts/aws4_request"));
    o.region = NULL;

    /* a chain of two roles: the second call is signed with the first's session */
    env_set("AWS_PROFILE", "chained");
    F.n_sts_role = 0;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(F.n_sts_role, 2);
    assert_non_null(strstr(F.last_sts_headers, "Credential=ASIAFAKE"));
    assert_non_null(
        strstr(F.last_sts_headers, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
    assert_non_null(strstr(F.last_sts_headers, "X-Amz-Security-Token: FQoGZXIvYXdzFakeSessionToken"));

    /* a profile that sources itself uses its own keys */
    env_set("AWS_PROFILE", "self");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_non_null(strstr(F.last_sts_headers, "Credential=AKIASELF/"));

    /* credential_source */
    env_set("AWS_PROFILE", "envsrc");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
    assert_non_null(strstr(err, "credential_source Environment is not configured"));
    env_set("AWS_ACCESS_KEY_ID", "AKIAFROMENV");
    env_set("AWS_SECRET_ACCESS_KEY", "BaseSecret/+abc");
    /* ...but with the environment set, the environment provider comes first */
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_ENV);
    env_set("AWS_ACCESS_KEY_ID", NULL);
    env_set("AWS_SECRET_ACCESS_KEY", NULL);

    /* errors */
    static const struct {
        const char *profile, *want;
    } bad[] = {
        {"loop-a", "source_profile loop"},
        {"both", "both source_profile and credential_source"},
        {"mfa", "mfa_serial"},
        {"dangling", "source profile nowhere does not exist"},
        {"half", "aws_access_key_id without aws_secret_access_key"},
        {"proc", "credential_process is not supported"},
        {"missing", "profile missing not found"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        env_set("AWS_PROFILE", bad[i].profile);
        assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_ECONFIG);
        if (!strstr(err, bad[i].want)) {
            print_error("profile %s: %s\n", bad[i].profile, err);
            fail();
        }
    }
    /* a profile with no credential settings is not a source: the chain moves on */
    env_set("AWS_PROFILE", "regiononly");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "no AWS credentials found"));

    /* missing files are empty files */
    env_set("AWS_PROFILE", NULL);
    char p1[512], p2[512];
    env_set("AWS_SHARED_CREDENTIALS_FILE", path_in_tmp("nope-credentials", p1, sizeof p1));
    env_set("AWS_CONFIG_FILE", path_in_tmp("nope-config", p2, sizeof p2));
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    /* home directory default: <home>/.aws/credentials */
    env_set("AWS_SHARED_CREDENTIALS_FILE", NULL);
    env_set("AWS_CONFIG_FILE", NULL);
    char aws_dir[512], home_cred[600];
    path_in_tmp("home/.aws", aws_dir, sizeof aws_dir);
    char home[512];
    path_in_tmp("home", home, sizeof home);
    mkdir(home, 0700);
    mkdir(aws_dir, 0700);
    snprintf(home_cred, sizeof home_cred, "%s/credentials", aws_dir);
    write_file(home_cred, "[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=BaseSecret/+abc\n");
    o.home_dir = home;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_string_equal(creds_buf.access_key_id, "AKIAHOME");
}

/* Every provider configured at once; removing them from the top, each time the
 * first one still present must win. */
static void test_chain_order(void **state)
{
    (void)state;
    fake_reset();
    char tok[512], tf[512], content[256];
    snprintf(content, sizeof content, "%s", web_token);
    write_file(path_in_tmp("order-web", tok, sizeof tok), content);
    write_file(path_in_tmp("order-ctok", tf, sizeof tf), container_token);
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", "EnvSecretValue/+456");
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", tok);
    env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/container/creds");
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf);
    write_profiles("[default]\naws_access_key_id=AKIAPROFILE\naws_secret_access_key=BaseSecret/+abc\n", "");
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
    struct awscred_options o = base_opts();
    o.access_key_id = "AKIASTATIC";
    o.secret_access_key = "StaticSecretValue/+123";

    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_STATIC);
    assert_int_equal(F.n_http, 0);
    o.access_key_id = o.secret_access_key = NULL;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_ENV);
    assert_int_equal(F.n_http, 0);
    env_set("AWS_ACCESS_KEY_ID", NULL);
    env_set("AWS_SECRET_ACCESS_KEY", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_WEB_IDENTITY);
    assert_int_equal(F.n_container + F.n_imds_put, 0);
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_CONTAINER);
    assert_int_equal(F.n_imds_put, 0);
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_PROFILE);
    assert_int_equal(F.n_imds_put, 0);
    env_set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_IMDS);

    /* a configured provider that fails stops the chain: no fall-through to IMDS */
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/container/creds");
    F.container_status = 403;
    int puts = F.n_imds_put;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_int_equal(F.n_imds_put, puts);
    assert_non_null(strstr(err, "container:"));
    F.container_status = 0;

    /* a config-level role on top of what the chain found */
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", "EnvSecretValue/+456");
    o.role_arn = "arn:aws:iam::123456789012:role/amp-writer";
    o.external_id = "ext-42";
    o.role_session_name = "collector";
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), 0);
    assert_int_equal(creds_buf.provider, AWSCRED_PROVIDER_ENV);
    assert_true(creds_buf.assumed_role);
    assert_non_null(strstr(creds_buf.access_key_id, "ASIAFAKE"));
    assert_non_null(strstr(F.last_sts_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Famp-writer"));
    assert_non_null(strstr(F.last_sts_body, "RoleSessionName=collector&ExternalId=ext-42"));
    assert_non_null(strstr(F.last_sts_headers, "Credential=AKIAENV/20260102/us-east-1/sts/aws4_request"));
    F.sts_status = 403;
    assert_int_equal(resolve_with(&o, &creds_buf, err, sizeof err), SS_EAUTH);
    assert_non_null(strstr(err, "assume_role on top of environment"));
    F.sts_status = 0;
}

/* ---- scheduling -------------------------------------------------------- */

static void test_schedule_math(void **state)
{
    (void)state;
    const int64_t now = T0_MS, min = 60 * 1000;
    assert_int_equal(awscred_refresh_at_ms(now, 0), INT64_MAX);
    assert_int_equal(awscred_refresh_at_ms(now, now + 60 * min), now + 55 * min);
    assert_int_equal(awscred_refresh_at_ms(now, now + 15 * min), now + 10 * min);
    assert_int_equal(awscred_refresh_at_ms(now, now + 10 * min), now + 5 * min);
    assert_int_equal(awscred_refresh_at_ms(now, now + 8 * min), now + 4 * min); /* half is shorter */
    assert_int_equal(awscred_refresh_at_ms(now, now + 20000), now + 10000);
    assert_int_equal(awscred_refresh_at_ms(now, now + 1500), now + 1000); /* floor */
    assert_int_equal(awscred_refresh_at_ms(now, now), now);               /* expired */
    assert_int_equal(awscred_refresh_at_ms(now, now - 1000), now);

    assert_int_equal(awscred_retry_delay_ms(1, now, 0), 1000);
    assert_int_equal(awscred_retry_delay_ms(2, now, 0), 2000);
    assert_int_equal(awscred_retry_delay_ms(5, now, 0), 16000);
    assert_int_equal(awscred_retry_delay_ms(9, now, 0), 256000);
    assert_int_equal(awscred_retry_delay_ms(10, now, 0), 300000);
    assert_int_equal(awscred_retry_delay_ms(1000, now, 0), 300000);
    /* while the old credentials are valid, retries fit in their remaining lifetime */
    assert_int_equal(awscred_retry_delay_ms(10, now, now + 60000), 30000);
    assert_int_equal(awscred_retry_delay_ms(3, now, now + 60000), 4000);
    assert_int_equal(awscred_retry_delay_ms(10, now, now + 1000), 1000); /* floor */
    assert_int_equal(awscred_retry_delay_ms(10, now, now - 5000), 300000);
}

/* Poll (real time, bounded) until the chain reaches generation `gen`. */
static bool wait_generation(struct awscred_chain *c, struct awscred_creds *cr, uint64_t gen)
{
    for (int i = 0; i < 300; i++) {
        if (awscred_get(c, cr) == 0 && cr->generation >= gen)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int sts_calls(void)
{
    pthread_mutex_lock(&fake_lock);
    int n = F.n_sts_web;
    pthread_mutex_unlock(&fake_lock);
    return n;
}

static void set_sts_status(long s)
{
    pthread_mutex_lock(&fake_lock);
    F.sts_status = s;
    pthread_mutex_unlock(&fake_lock);
}

static void test_refresher(void **state)
{
    (void)state;
    fake_reset();
    char tok[512];
    write_file(path_in_tmp("refresh-web", tok, sizeof tok), web_token);
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", tok);
    env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
    F.lifetime_s = 900; /* 15 min: refresh at 10 min */
    struct awscred_options o = base_opts();
    o.max_sleep_ms = 5; /* notice the test's clock moves quickly */
    o.register_metrics = true;
    struct awscred_chain *c = NULL;
    struct awscred_creds *cr = &creds_buf;
    awscred_creds_init(cr);
    assert_int_equal(awscred_chain_new(&o, &c), 0);
    assert_int_equal(awscred_get(c, cr), SS_EAUTH); /* nothing yet */
    assert_int_equal(awscred_start(c), 0);
    assert_int_equal(awscred_start(c), 0); /* idempotent */
    assert_int_equal(awscred_wait_ready(c, 5000), 0);
    assert_int_equal(awscred_get(c, cr), 0);
    assert_int_equal(cr->generation, 1);
    char first_key[AWSCRED_MAX_KEY_ID + 1];
    strcpy(first_key, cr->access_key_id);
    int64_t exp1 = cr->expiration_ms;
    assert_int_equal(exp1, T0_MS + 900 * 1000);

    /* the getter copies only when the generation changed */
    cr->access_key_id[0] = 'X';
    assert_int_equal(awscred_get(c, cr), 0);
    assert_int_equal(cr->access_key_id[0], 'X');
    cr->generation = 0;
    assert_int_equal(awscred_get(c, cr), 0);
    assert_string_equal(cr->access_key_id, first_key);

    /* before the refresh point nothing happens */
    clock_set(T0_MS + 9 * 60 * 1000);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(sts_calls(), 1);
    /* at expiration - 5 min, a new generation, well before the old one expires */
    clock_set(T0_MS + 10 * 60 * 1000);
    assert_true(wait_generation(c, cr, 2));
    assert_string_not_equal(cr->access_key_id, first_key);
    assert_int_equal(cr->expiration_ms, T0_MS + 10 * 60 * 1000 + 900 * 1000);
    int64_t exp2 = cr->expiration_ms;

    /* STS down at the next refresh point: the current credentials stay in use */
    set_sts_status(500);
    clock_set(exp2 - 5 * 60 * 1000);
    for (int i = 0; i < 300 && sts_calls() < 3; i++)
        nanosleep(&ts, NULL);
    assert_true(sts_calls() >= 3);
    nanosleep(&ts, NULL); /* let the attempt record its failure */
    assert_int_equal(awscred_get(c, cr), 0);
    assert_int_equal(cr->generation, 2);
    awscred_last_error(c, err, sizeof err);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_no_secret(err);
    /* retries follow the backoff on the injected clock: nothing until 1 s later */
    int calls = sts_calls();
    nanosleep(&ts, NULL);
    assert_int_equal(sts_calls(), calls);
    clock_set(exp2 - 5 * 60 * 1000 + 1000);
    for (int i = 0; i < 300 && sts_calls() == calls; i++)
        nanosleep(&ts, NULL);
    assert_int_equal(sts_calls(), calls + 1);
    assert_int_equal(awscred_get(c, cr), 0);

    /* past expiration with STS still down: the getter refuses expired credentials */
    clock_set(exp2);
    assert_int_equal(awscred_get(c, cr), SS_EAUTH);
    /* STS back: the next retry (backoff is at most 5 min) restores them */
    set_sts_status(0);
    clock_set(exp2 + 5 * 60 * 1000);
    assert_true(wait_generation(c, cr, 3));

    /* render metrics while it runs */
    struct ss_buf m;
    ss_buf_init(&m, 1 << 20);
    assert_int_equal(ss_metrics_render(&m), 0);
    assert_non_null(
        strstr(m.data, "scrapeship_aws_credentials_refreshes_total{remote=\"t\",result=\"success\"} 3\n"));
    assert_non_null(
        strstr(m.data, "scrapeship_aws_credentials_refreshes_total{remote=\"t\",result=\"failure\"}"));
    assert_non_null(strstr(m.data, "scrapeship_aws_credentials_expiry_timestamp_seconds{remote=\"t\"} 1"));
    assert_non_null(strstr(m.data,
                           "scrapeship_aws_credentials_provider_info{remote=\"t\",provider=\"web_identity\","
                           "assume_role=\"false\"} 1\n"));
    assert_no_secret_in(m.data, m.len, "metrics");
    ss_buf_free(&m);

    /* forced refresh: one new generation; a second caller holding the same
     * generation gets 0 at once and causes no STS call; forcing again right away
     * is throttled */
    uint64_t g = cr->generation;
    calls = sts_calls();
    assert_int_equal(awscred_force_refresh(c, g, 5000), 0);
    assert_int_equal(sts_calls(), calls + 1);
    assert_int_equal(awscred_force_refresh(c, g, 5000), 0);
    assert_int_equal(sts_calls(), calls + 1);
    assert_int_equal(awscred_get(c, cr), 0);
    assert_int_equal(cr->generation, g + 1);
    assert_int_equal(awscred_force_refresh(c, g + 1, 5000), SS_EAUTH);
    assert_int_equal(sts_calls(), calls + 1);

    awscred_chain_free(c);
    ss_buf_init(&m, 1 << 20);
    assert_int_equal(ss_metrics_render(&m), 0);
    assert_true(m.data == NULL || strstr(m.data, "scrapeship_aws_credentials") == NULL);
    ss_buf_free(&m);
    awscred_creds_wipe(cr);
    assert_int_equal(cr->secret_access_key[0], 0);
}

/* Without a refresher, force_refresh resolves on the calling thread; two chains
 * render each family's HELP once. */
static void test_force_without_thread_and_metrics(void **state)
{
    (void)state;
    fake_reset();
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
    struct awscred_options o = base_opts();
    o.register_metrics = true;
    o.name = "a\"b";
    struct awscred_chain *a = NULL, *b = NULL;
    assert_int_equal(awscred_chain_new(&o, &a), 0);
    o.name = "second";
    assert_int_equal(awscred_chain_new(&o, &b), 0);
    assert_int_equal(awscred_resolve(a), 0);
    assert_int_equal(awscred_force_refresh(a, 0, 1000), 0);
    assert_int_equal(F.n_imds_put, 2);
    struct ss_buf m;
    ss_buf_init(&m, 1 << 20);
    assert_int_equal(ss_metrics_render(&m), 0);
    const char *help = "# HELP scrapeship_aws_credentials_refreshes_total";
    const char *first = strstr(m.data, help);
    assert_non_null(first);
    assert_null(strstr(first + 1, help));
    assert_non_null(strstr(m.data, "remote=\"a\\\"b\",result=\"success\"} 2\n"));
    assert_non_null(strstr(m.data, "remote=\"second\",result=\"success\"} 0\n"));
    assert_non_null(strstr(m.data, "provider_info{remote=\"a\\\"b\",provider=\"imds\""));
    assert_null(strstr(m.data, "provider_info{remote=\"second\""));
    ss_buf_free(&m);
    awscred_chain_free(a);
    awscred_chain_free(b);
}

static void test_mask(void **state)
{
    (void)state;
    char m[9];
    awscred_mask_key_id("AKIAIOSFODNN7EXAMPLE", m);
    assert_string_equal(m, "AKIA****");
    awscred_mask_key_id("AB", m);
    assert_string_equal(m, "AB****");
    awscred_mask_key_id(NULL, m);
    assert_string_equal(m, "****");
    char buf[] = "xx SECRETVALUE yy SECRETVALUE";
    const char *s[] = {"SECRETVALUE", "abc", NULL};
    awscred_redact(buf, strlen(buf), s);
    assert_string_equal(buf, "xx *********** yy ***********");
}

/* ---- setup: temp dir, stderr captured for the secrets check ----------- */

static int saved_stderr = -1;
static char log_path[300];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ss-awscred-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    snprintf(log_path, sizeof log_path, "%s/stderr.log", tmp_root);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
    ss_log_set_level(SS_LOG_DEBUG);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char *text = NULL;
    size_t len = 0;
    int rc = awscred_read_file(log_path, 16u << 20, &text, &len);
    int bad = 0;
    size_t lines = 0;
    for (size_t i = 0; rc == 0 && i < len; i++)
        lines += text[i] == '\n';
    for (size_t i = 0; rc == 0 && i < nsecrets; i++)
        if (memmem(text, len, secret_list[i], strlen(secret_list[i]))) {
            fprintf(stderr, "SECRET LEAKED INTO LOGS: secret #%zu\n", i);
            bad = 1;
        }
    /* access key ids only masked */
    if (rc == 0 && (memmem(text, len, "AKIABASE", 8) || memmem(text, len, "ASIAFAKE0", 9))) {
        fprintf(stderr, "unmasked access key id in logs\n");
        bad = 1;
    }
    /* cmocka's own failure messages went to the captured stderr too: show them */
    for (size_t i = 0; rc == 0 && i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) + 1 : len;
        if (e - i < 3 || memcmp(text + i, "ts=", 3) != 0)
            fwrite(text + i, 1, e - i, stderr);
        i = e;
    }
    fprintf(stderr, "awscred: %zu log lines checked against %zu secrets: %s\n", lines, nsecrets,
            bad ? "LEAK" : "clean");
    if (!getenv("SS_KEEP_TMP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp_root);
    }
    free(text);
    for (size_t i = 0; i < nsecrets; i++)
        free(secret_list[i]);
    return rc || bad ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),   cmocka_unit_test(test_sts_xml),
        cmocka_unit_test(test_creds_json),   cmocka_unit_test(test_ini),
        cmocka_unit_test(test_mask),         cmocka_unit_test(test_static_and_env),
        cmocka_unit_test(test_web_identity), cmocka_unit_test(test_container),
        cmocka_unit_test(test_imds),         cmocka_unit_test(test_shared_profiles),
        cmocka_unit_test(test_chain_order),  cmocka_unit_test(test_schedule_math),
        cmocka_unit_test(test_refresher),    cmocka_unit_test(test_force_without_thread_and_metrics),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
