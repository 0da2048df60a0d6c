/* cmd_query.c: `scrapeship query`: one instant PromQL query, printed.
 *
 * Signed with SigV4 (service aps) when the URL is an AMP workspace
 * (aps-workspaces.<region>.amazonaws.com), when --region or --sigv4 is given; the
 * credentials come from the same chain remote write uses. Prints one line per
 * result: `name{labels} value @timestamp`, or the raw JSON with --format json. Exit 0
 * on a successful query, 1 when the query failed, 2 on usage errors. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awssign.h"
#include "collector.h"
#include "scaler.h"
#include "sstext.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: scrapeship query --url URL [--region R] [--sigv4] [--service S] [--time UNIX]\n"
               "                        [--post] [--format text|json] [--header 'Name: value'] QUERY\n"
               "URL is the Prometheus API base, e.g.\n"
               "  https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-.../\n");
}

/* A series as Prometheus prints it: label values escaped (\\, \", \n), so a value
 * with a quote or a newline cannot break the line or pass for another label. */
static void print_labels(json_t *metric)
{
    const char *name = json_string_value(json_object_get(metric, "__name__"));
    struct ss_buf b;
    ss_buf_init(&b, 0);
    const char *k;
    json_t *v;
    bool first = true;
    int rc = ss_buf_printf(&b, "%s{", name ? name : "");
    json_object_foreach(metric, k, v)
    {
        if (rc || strcmp(k, "__name__") == 0)
            continue;
        const char *val = json_string_value(v) ? json_string_value(v) : "";
        rc = ss_buf_printf(&b, "%s%s=\"", first ? "" : ",", k);
        if (!rc)
            rc = ss_escape_label_value(&b, val, strlen(val));
        if (!rc)
            rc = ss_buf_append(&b, "\"", 1);
        first = false;
    }
    if (!rc)
        rc = ss_buf_append(&b, "}", 1);
    if (!rc)
        fwrite(b.data, 1, b.len, stdout);
    ss_buf_free(&b);
}

static void print_point(json_t *pt)
{
    printf(" %s @%.3f\n",
           json_string_value(json_array_get(pt, 1)) ? json_string_value(json_array_get(pt, 1)) : "?",
           json_number_value(json_array_get(pt, 0)));
}

int collector_cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                         {"region", required_argument, 0, 'r'},
                                         {"sigv4", no_argument, 0, 's'},
                                         {"service", required_argument, 0, 'S'},
                                         {"time", required_argument, 0, 't'},
                                         {"post", no_argument, 0, 'p'},
                                         {"format", required_argument, 0, 'f'},
                                         {"header", required_argument, 0, 'H'},
                                         {"timeout", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *url = NULL, *region = NULL, *service = "aps", *fmt = "text";
    bool sigv4 = false, post = false;
    int64_t at_ms = 0, timeout = 30000;
    struct httpc_header headers[16];
    char hbuf[16][512];
    size_t nh = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:r:sS:t:pf:H:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'r':
            region = optarg;
            sigv4 = true;
            break;
        case 's': sigv4 = true; break;
        case 'S': service = optarg; break;
        case 't': at_ms = (int64_t)(strtod(optarg, NULL) * 1000); break;
        case 'p': post = true; break;
        case 'f': fmt = optarg; break;
        case 'T':
            if (ss_parse_duration_ms(optarg, &timeout)) {
                fprintf(stderr, "scrapeship query: invalid --timeout\n");
                return 2;
            }
            break;
        case 'H': {
            const char *colon = strchr(optarg, ':');
            if (!colon || nh == 16) {
                fprintf(stderr, "scrapeship query: --header wants 'Name: value'\n");
                return 2;
            }
            snprintf(hbuf[nh], sizeof hbuf[nh], "%s", optarg);
            hbuf[nh][colon - optarg] = '\0';
            const char *v = hbuf[nh] + (colon - optarg) + 1;
            while (*v == ' ')
                v++;
            headers[nh] = (struct httpc_header){hbuf[nh], v};
            nh++;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!url || optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    char auto_region[64];
    if (!sigv4 && aws_region_from_url(url, auto_region, sizeof auto_region) == 0)
        sigv4 = true;
    struct aws_signer *signer = NULL;
    char err[1024] = "";
    if (sigv4) {
        struct cfg_sigv4 s = {.enabled = true, .region = (char *)region, .service = (char *)service};
        if (collector_aws_signer_new(&s, url, "query", &signer, err, sizeof err)) {
            fprintf(stderr, "scrapeship query: %s\n", err);
            return 1;
        }
    }
    struct scaler_query_req q = {.server = url,
                                 .query = argv[optind],
                                 .time_ms = at_ms,
                                 .post = post,
                                 .http = {.headers = headers, .nheaders = nh},
                                 .timeout_ms = timeout,
                                 .signer = signer};
    struct ss_buf body;
    ss_buf_init(&body, 64u << 20);
    long status = 0;
    int ret = 1;
    if (scaler_query(&q, &status, &body, err, sizeof err) != 0) {
        fprintf(stderr, "scrapeship query: %s\n", err);
        goto done;
    }
    if (status < 200 || status > 299) {
        fprintf(stderr, "scrapeship query: HTTP %ld: %.*s\n", status,
                (int)(body.len < 2000 ? body.len : 2000), body.data ? body.data : "");
        goto done;
    }
    if (strcmp(fmt, "json") == 0) {
        fwrite(body.data, 1, body.len, stdout);
        putchar('\n');
        ret = 0;
        goto done;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(body.data, body.len, 0, &jerr);
    json_t *data = json_object_get(doc, "data");
    const char *rtype = json_string_value(json_object_get(data, "resultType"));
    json_t *result = json_object_get(data, "result");
    if (!doc || !rtype || strcmp(json_string_value(json_object_get(doc, "status")) ?: "", "success") != 0) {
        fprintf(stderr, "scrapeship query: unexpected response: %.*s\n",
                (int)(body.len < 500 ? body.len : 500), body.data ? body.data : "");
        json_decref(doc);
        goto done;
    }
    if (strcmp(rtype, "scalar") == 0 || strcmp(rtype, "string") == 0) {
        printf("%s", rtype);
        print_point(result);
    } else {
        size_t i;
        json_t *el;
        json_array_foreach(result, i, el)
        {
            print_labels(json_object_get(el, "metric"));
            json_t *vals = json_object_get(el, "values");
            if (vals) {
                size_t k;
                json_t *pt;
                printf("\n");
                json_array_foreach(vals, k, pt)
                {
                    printf("  ");
                    print_point(pt);
                }
            } else {
                print_point(json_object_get(el, "value"));
            }
        }
    }
    json_decref(doc);
    ret = 0;
done:
    ss_buf_free(&body);
    aws_signer_free(signer);
    return ret;
}
