/* session.h — hgd's one MQTT v5 connection (Paho MQTTAsync).
 *
 * Persistent session (clean start 0 + Session Expiry), retained will on the
 * status topic, automatic reconnect with re-subscription on every connect
 * (Paho does not re-run the connect callback on reconnect), and every
 * message taken inside the arrival callback: the handler makes it durable or
 * answers it before returning, and only then does Paho send the PUBACK. */
#ifndef HG_SESSION_H
#define HG_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "keyring.h"

/* One arrived message, valid during the handler call only. Strings are
 * NUL-terminated copies; absent properties are NULL. */
struct session_msg {
  const char *topic;
  const void *payload;
  size_t len;
  const char *response_topic;
  const void *corr;
  size_t corrlen;
  struct keyring_props props;
};

struct session_handlers {
  void *ctx;
  /* Called on Paho's receive thread; may block (back-pressure) but must
   * return only once the message is durable or answered. */
  void (*message)(void *ctx, const struct session_msg *m);
  /* Called after each (re)connect once subscriptions are in place. */
  void (*ready)(void *ctx);
};

struct session;

/* will_json: the retained offline document. topics: the filters to
 * subscribe at QoS 1. Returns 0 or -1 with err. */
int session_create(const struct config *cfg, const char *will_topic, const char *will_json,
                   const char *const *topics, size_t ntopics, const struct session_handlers *h,
                   struct session **out, char *err, size_t errsz);

/* Start connecting; keeps retrying until connected (then Paho reconnects). */
int session_start(struct session *s);

/* Call periodically: retries a failed first connect. */
void session_tick(struct session *s);

bool session_is_connected(struct session *s);

/* Publish (copied; buffered while disconnected). corr may be NULL. */
int session_publish(struct session *s, const char *topic, const void *payload, size_t len, int qos,
                    bool retained, const void *corr, size_t corrlen);

/* Wait (up to timeout_ms) until every QoS>0 publish is acknowledged. */
void session_flush(struct session *s, long timeout_ms);

/* Disconnect cleanly (no will) and free. */
void session_close(struct session *s);

#endif
