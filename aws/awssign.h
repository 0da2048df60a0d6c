/* awssign.h: SigV4-signed HTTP requests with credentials from the AWS chain.
 *
 * The one signer that remote write, `scrapeship query` and the scaler use: sigv4.h
 * does the arithmetic, awscred.h finds and refreshes the credentials, and this joins
 * them. Signing copies the current credentials (a locked copy, never network I/O),
 * signs, hands back the headers and wipes the copy. Names are prefixed aws_.
 */
#ifndef AWSSIGN_H
#define AWSSIGN_H

#include <stddef.h>

#include "ss.h"

struct awscred_chain; /* awscred.h */
struct aws_signer;

/* region as in "us-east-1"; service NULL or "" = "aps". On success takes ownership of
 * chain (already started by the caller); on error the caller still owns it. */
int aws_signer_new(const char *region, const char *service, struct awscred_chain *chain,
                   struct aws_signer **out);
/* Frees the signer and its chain. NULL is a no-op. */
void aws_signer_free(struct aws_signer *s);

/* Sign one request: method, the URL exactly as sent, and the final body. Calls
 * add_header(ctx, "Name: value") for Authorization, X-Amz-Date and, with temporary
 * credentials, X-Amz-Security-Token. Returns 0, or a negative ss_err: SS_EAUTH when the
 * chain has no valid credentials yet, or what add_header returned. Thread-safe. */
int aws_signer_sign(struct aws_signer *s, const char *method, const char *url, const void *body, size_t len,
                    int (*add_header)(void *ctx, const char *line), void *ctx);

/* The server answered 403 because the credentials expired or were revoked: refresh the
 * generation last used for signing, once, waiting up to 10 s. Later calls within the
 * chain's minimum interval do nothing. */
void aws_signer_credentials_expired(struct aws_signer *s);

/* The region of an Amazon Managed Prometheus URL: "us-east-1" from
 * https://aps-workspaces.us-east-1.amazonaws.com/...; SS_ENOTFOUND for other URLs. */
int aws_region_from_url(const char *url, char *out, size_t cap);

#endif
