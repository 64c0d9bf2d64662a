/* status.h — the retained instance document of PROTOCOL.md section 7. */
#ifndef HG_STATUS_H
#define HG_STATUS_H

#include <stdbool.h>

#include "hgd.h"

/* The full document when online, or the offline form: with "timestamp" for
 * a clean stop (clean=true), without it for the will. Caller frees. */
char *status_json(struct hgd *app, bool online, bool clean);

/* Publish the online document (retained, QoS 1). */
void status_publish(struct hgd *app);

#endif
