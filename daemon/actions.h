/* actions.h — the webhook/<action> requests of PROTOCOL.md section 3. */
#ifndef HG_ACTIONS_H
#define HG_ACTIONS_H

#include "hgd.h"

/* Authenticate, validate and answer one request that arrived on
 * <root>/webhook/<action>. Store writes are durable before the reply. The
 * test action's reply is sent later, from the delivery thread. */
void actions_request(struct hgd *app, const struct session_msg *m, const char *action);

/* Publish the retained <root>/agent/<agentId>/fields document of a row
 * (or the zero-length retained message when row is NULL). */
void actions_publish_fields(struct hgd *app, const char *agent_id, const struct webhook *row);

#endif
