/* status.h — the retained instance document of PROTOCOL.md section 7. */
#ifndef HG_STATUS_H
#define HG_STATUS_H

#include <stdbool.h>

#include "hgd.h"

/* The full document when online, or the offline form: with "timestamp" for
 * a clean stop (clean=true), without it for the will. Caller frees. */
char *status_json(struct hgd *app, bool online, bool clean);

/* Publish the online document (retained, QoS 1), now, on this thread. */
void status_publish(struct hgd *app);

/* The periodic publish runs on a thread of its own: a Paho call may block
 * for as long as intake holds Paho's receive thread (back-pressure on a
 * full outbox or disk), and the main loop must keep handling signals and
 * pinging the watchdog meanwhile. status_request() only wakes that thread. */
int status_start(struct hgd *app);
void status_request(struct hgd *app);
/* Stop the thread; one stuck in Paho is left behind (detached) after
 * timeout_ms, as the process is about to exit. */
void status_stop(struct hgd *app, long timeout_ms);

#endif
