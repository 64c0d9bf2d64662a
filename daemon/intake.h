/* intake.h — escalation messages (PROTOCOL.md section 5) into the outbox. */
#ifndef HG_INTAKE_H
#define HG_INTAKE_H

#include "hgd.h"

/* Authenticate and validate one escalation from <root>/escalation/<agent>,
 * make it durable in the outbox and hand it to the delivery engine. Blocks
 * (so the broker keeps the rest) while the outbox is full or the disk
 * refuses writes; returns only when the message is durable or rejected. */
void intake_escalation(struct hgd *app, const struct session_msg *m, const char *agent);

/* Publish a delivery event on <root>/delivery/<agent> (QoS 0). */
void intake_publish_event(struct hgd *app, const char *agent_id, const cJSON *ev);

#endif
