/* request.h — hgctl's MQTT v5 side: one connection to the broker, and on it
 * a signed request with its reply (PROTOCOL.md section 3), a signed
 * escalation (section 5), or a watch on the status topics (section 7).
 *
 * Every function prints its own error and returns an hgctl_rc. The whole
 * exchange, connect included, shares one deadline: --timeout seconds from
 * request_connect(). */
#ifndef HGCTL_REQUEST_H
#define HGCTL_REQUEST_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "cliconfig.h"

/* The request's Message Expiry is max(--timeout, this), so that the default
 * is the contract's 30 s and a longer --timeout does not let a request
 * expire while hgctl still waits for it. */
#define REQUEST_MIN_EXPIRY_S 30

#define REQUEST_REPLY_MAX (4 * 1024 * 1024) /* largest reply payload parsed */

struct request_conn;

/* Connect (MQTT v5, clean start) to the broker of cfg. cfg must outlive the
 * connection. */
int request_connect(const struct cliconfig *cfg, struct request_conn **out);

/* Publish the action request and wait for its reply: subscribe to a private
 * reply topic first, then publish params to <root>/webhook/<action> with
 * Response Topic, Correlation Data, Message Expiry and the four signed user
 * properties. On success *data is the reply's data (owned, NULL for a JSON
 * null). A daemon error is printed as "hgctl: CODE: message" and gives
 * HGCTL_EDAEMON. */
int request_call(struct request_conn *c, const char *action, const cJSON *params, cJSON **data);

/* Publish a signed message at QoS 1 (no reply expected) and wait for the
 * broker's acknowledgement. */
int request_publish_signed(struct request_conn *c, const char *topic, const cJSON *payload);

/* Called for each status document: the topic and the parsed document. */
typedef int request_status_cb(void *ctx, const char *topic, const cJSON *doc);

/* Subscribe to filter and hand every non-empty JSON document to cb. Without
 * watch, stop once the retained documents have settled (about a second of
 * quiet, never past the deadline); with watch, run until SIGINT/SIGTERM. */
int request_status(struct request_conn *c, const char *filter, bool watch, request_status_cb *cb,
                   void *ctx);

/* Disconnect and free. NULL is fine. */
void request_close(struct request_conn *c);

#endif
