/* delivery.h — the delivery engine: one thread around one curl_multi handle.
 *
 * Accepted escalations (already durable in the outbox) are submitted here;
 * the engine builds and signs the body for the webhook's current row at each
 * attempt, POSTs it, classifies the answer, schedules retries on a timer
 * heap (backoff with ±20 % jitter, Retry-After honoured up to one hour),
 * records progress in the outbox and reports every state change through the
 * hooks. The test action runs here too. */
#ifndef HG_DELIVERY_H
#define HG_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "egress.h"
#include "outbox.h"
#include "webhook.h"

struct delivery_config {
  const double *schedule; /* seconds between attempts, after the first */
  size_t nschedule;
  long connect_timeout_ms; /* 5000 */
  long total_timeout_ms;   /* 15000 */
  const char *cafile;      /* CA bundle for webhook TLS, NULL = system */
  const struct egress *egress;
  bool allow_http;
};

struct delivery_hooks {
  void *ctx;
  /* Current row for agent_id: 1 found (deep copy into *w, the engine clears
   * it), 0 none, -1 error. Called on the engine thread. */
  int (*lookup)(void *ctx, const char *agent_id, struct webhook *w);
  /* A delivery event of PROTOCOL.md section 6, to publish on
   * <root>/delivery/<agent_id>. Called on the engine thread; must not block
   * for long. The engine frees ev after the call. */
  void (*event)(void *ctx, const char *agent_id, const cJSON *ev);
};

struct delivery_counters {
  uint64_t delivered, retrying, failed, skipped, pending;
};

struct delivery;

int delivery_start(const struct delivery_config *cfg, const struct delivery_hooks *hooks,
                   struct outbox *ob, struct delivery **out);

/* Stop: no new attempts; in-flight requests get up to grace_ms to finish,
 * the rest stay pending in the outbox. Joins the thread and frees. */
void delivery_stop(struct delivery *d, long grace_ms);

/* Hand over an entry already durable in the outbox (copied). Wakes the
 * engine. Returns 0 or -1 (OOM). Safe from any thread. */
int delivery_submit(struct delivery *d, const struct outbox_entry *e);

/* The webhook of agent_id (lower case) was deleted or made inactive: its
 * pending deliveries end as skipped now, with error why (a string literal:
 * kept, not copied); one in flight is not retried. Returns 0 or -1 (OOM,
 * stopping: they then end when their next attempt comes due). */
int delivery_retire(struct delivery *d, const char *agent_id, const char *why);

/* The test action: one POST now of the dummy payload for w (copied),
 * eventType "escalation.test", no retries, no outbox. done() is called once
 * on the engine thread with the reply's data object of PROTOCOL.md section 3
 * (ownership passes to done). Returns 0 or -1. */
int delivery_test(struct delivery *d, const struct webhook *w,
                  void (*done)(void *arg, cJSON *data), void *arg);

/* delivered, failed and skipped count final states, retrying counts
 * "retrying" events (attempts that will be followed by another), all since
 * start; pending is the deliveries submitted and not yet final (waiting for
 * their time, queued for a connection slot, or in flight). */
void delivery_counters(struct delivery *d, struct delivery_counters *out);

/* Limits of the engine. */
#define DELIVERY_MAX_INFLIGHT 64  /* deliveries in flight, slow ones aside; the rest queue */
#define DELIVERY_SLOW_MS 2000     /* an attempt unanswered this long leaves the pool above */
#define DELIVERY_MAX_OPEN 1024    /* deliveries in flight, slow ones included */
#define DELIVERY_MAX_PER_HOST 16  /* in flight to one scheme://host:port */
#define DELIVERY_MAX_TESTS 16     /* test POSTs in flight, besides the above */
#define DELIVERY_RESPONSE_MAX (64 * 1024) /* response bytes read, then cut */
#define DELIVERY_TEST_BODY_MAX 4096       /* response bytes in a test reply */

/* Helpers, exposed for the unit tests. */

/* A NUL-terminated, valid UTF-8 copy of the first at most max bytes of buf
 * (len bytes): a sequence cut by the limit is dropped, invalid bytes and
 * NULs become U+FFFD. malloc'd (caller frees), or NULL on OOM. */
char *delivery_text_excerpt(const char *buf, size_t len, size_t max);

/* "scheme://authority" of url, lowercased, into out (the key of the
 * per-host limit). Returns 0, or -1 when out is too small. */
int delivery_host_key(const char *url, char *out, size_t outsz);

#endif
