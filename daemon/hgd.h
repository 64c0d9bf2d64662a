/* hgd.h — the daemon's parts, owned by main and handed to each module.
 *
 * Not a global: main builds one and passes it as the Paho and delivery
 * callback context. */
#ifndef HG_HGD_H
#define HG_HGD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "delivery.h"
#include "egress.h"
#include "keyring.h"
#include "outbox.h"
#include "session.h"
#include "store.h"

struct hgd_counters {
  atomic_uint_fast64_t accepted;
  atomic_uint_fast64_t rejected;
  atomic_uint_fast64_t skipped; /* ended at intake: no active webhook */
};

struct hgd {
  struct config cfg;
  struct keyring *keys;
  struct store *store;
  struct outbox *outbox;
  struct egress *egress;
  struct delivery *delivery;
  struct session *session;
  struct hgd_counters counters;
  int64_t started_ms;
  atomic_bool stopping;
  /* Held by intake and the test action while they hand work to the
   * delivery engine, so shutdown can stop the engine without a race. */
  pthread_mutex_t handoff;
  atomic_bool ready_logged;
};

/* "<root>/<suffix>" into out (sized by the caller). */
void hgd_topic(const struct hgd *app, char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
