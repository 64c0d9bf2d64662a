/* intake.c — escalations from call nodes into the durable outbox. */
#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "jsonutil.h"
#include "log.h"
#include "notify.h"
#include "uuid.h"

#define TOPIC_MAX 512

void intake_publish_event(struct hgd *app, const char *agent_id, const cJSON *ev)
{
  char topic[TOPIC_MAX];
  char *text = jsonutil_print(ev);

  if(!text)
    return;
  hgd_topic(app, topic, sizeof(topic), "delivery/%s", agent_id);
  /* QoS 0: events are high-volume; QoS 1 would outrun the broker's
   * Receive Maximum and stall Paho's queue (ARCHITECTURE.md, fact 7). */
  session_publish(app->session, topic, text, strlen(text), 0, false, NULL, 0);
  free(text);
}

static void reject(struct hgd *app, const char *agent, const char *event_id, const char *why)
{
  atomic_fetch_add(&app->counters.rejected, 1);
  char qwhy[600];
  log_event(LOG_LVL_WARN, "escalation.rejected", "agent=%s eventId=%s reason=%s",
            agent ? agent : "-", event_id && event_id[0] ? event_id : "-",
            log_value(why, qwhy, sizeof(qwhy)));
  if(!agent)
    return;
  cJSON *ev = cJSON_CreateObject();
  if(!ev)
    return;
  jsonutil_add_string_or_null(ev, "eventId", event_id && event_id[0] ? event_id : NULL);
  cJSON_AddStringToObject(ev, "state", "rejected");
  cJSON_AddNumberToObject(ev, "attempt", 0);
  cJSON_AddStringToObject(ev, "error", why);
  intake_publish_event(app, agent, ev);
  cJSON_Delete(ev);
}

static void skipped(struct hgd *app, const char *agent, const char *event_id)
{
  cJSON *ev = cJSON_CreateObject();

  atomic_fetch_add(&app->counters.skipped, 1);
  log_event(LOG_LVL_INFO, "escalation.skipped", "agent=%s eventId=%s reason=no_active_webhook",
            agent, event_id);
  if(!ev)
    return;
  cJSON_AddStringToObject(ev, "eventId", event_id);
  cJSON_AddStringToObject(ev, "state", "skipped");
  cJSON_AddNumberToObject(ev, "attempt", 0);
  cJSON_AddStringToObject(ev, "error", "no active webhook");
  intake_publish_event(app, agent, ev);
  cJSON_Delete(ev);
}

/* Append until it is durable. While the outbox is full or the disk says no,
 * wait here: the receive thread stops reading, the broker keeps the rest,
 * and nothing is acknowledged that is not on disk. */
static void append_durably(struct hgd *app, struct outbox_entry *e)
{
  char err[256];
  bool paused = false;

  for(;;) {
    err[0] = '\0';
    int rc = outbox_append(app->outbox, e, err, sizeof(err));
    if(rc == 0)
      break;
    if(!paused) {
      log_event(LOG_LVL_ERROR, "intake.paused", "reason=\"%s\" eventId=%s",
                rc == OUTBOX_FULL ? "outbox full" : err, e->event_id);
      paused = true;
      /* A restart on a full disk lands here before the SUBACK (the broker
       * hands over the held message at once), and hgd would never say it
       * is up: under Type=notify systemd would kill and restart it in a
       * loop while the disk stays full. It is up, and holding back. */
      if(!atomic_exchange(&app->ready_logged, true)) {
        log_event(LOG_LVL_INFO, "ready", "instance=%s broker=%s intake=paused", app->cfg.instance,
                  app->cfg.broker);
        notify_ready("intake paused: an escalation waits for room in the state directory");
      }
    }
    if(atomic_load(&app->stopping)) {
      /* Returning would acknowledge a message that is not durable; exit
       * instead and let the broker redeliver it to the next hgd. */
      log_event(LOG_LVL_ERROR, "intake.abandoned",
                "eventId=%s reason=\"stopping while the outbox refuses writes; the broker keeps "
                "the message\"",
                e->event_id);
      _exit(0);
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if(paused)
    log_event(LOG_LVL_INFO, "intake.resumed", "eventId=%s", e->event_id);
}

/* The eventId of an escalation that has none, derived from its signed
 * message rather than drawn at random: when a crash loses hgd's PUBACK, the
 * broker hands the same message to the next hgd, and that duplicate must
 * carry the same eventId (PROTOCOL.md section 4) so that receivers can drop
 * it. hg-sig is an HMAC over topic, hg-ts, the random hg-nonce and the
 * payload, so distinct messages get distinct ids; it is hashed once more so
 * that the id reveals nothing of the signature. Formatted as a UUID v4. */
static int derive_event_id(const char *key, const char *sig, char out[UUID_STR_LEN + 1])
{
  static const char label[] = "hgd eventId v1";
  static const char digits[] = "0123456789abcdef";
  const struct crypto_part parts[3] = {{key, strlen(key)}, {"\n", 1}, {sig, strlen(sig)}};
  uint8_t h[CRYPTO_SHA256_LEN];
  size_t o = 0;

  if(crypto_hmac_sha256_parts(label, sizeof(label) - 1, parts, 3, h) != 0)
    return -1;
  h[6] = (uint8_t)((h[6] & 0x0f) | 0x40); /* version 4 */
  h[8] = (uint8_t)((h[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  for(size_t i = 0; i < 16; i++) {
    if(i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = digits[h[i] >> 4];
    out[o++] = digits[h[i] & 0x0f];
  }
  out[o] = '\0';
  return 0;
}

void intake_escalation(struct hgd *app, const struct session_msg *m, const char *agent_part)
{
  struct outbox_entry e = {0};
  struct webhook w = {0};
  char why[200], err[256];
  char agent[UUID_STR_LEN + 1];

  if(!uuid_valid(agent_part)) {
    reject(app, NULL, NULL, "agentId in the topic is not a UUID");
    return;
  }
  uuid_lower(agent_part, agent);
  if(keyring_verify(app->keys, &m->props, m->topic, m->payload, m->len, clock_now_ms() / 1000,
                    why, sizeof(why)) ||
     keyring_permits(app->keys, m->props.key, "escalate", agent, why, sizeof(why))) {
    snprintf(err, sizeof(err), "unauthorized: %s", why);
    reject(app, agent, NULL, err);
    return;
  }
  if(escalation_parse(m->payload, m->len, (size_t)app->cfg.max_payload, &e.esc, err,
                      sizeof(err))) {
    reject(app, agent, NULL, err);
    return;
  }
  memcpy(e.agent_id, agent, sizeof(agent));
  if(e.esc.event_id[0])
    memcpy(e.event_id, e.esc.event_id, sizeof(e.event_id));
  else if(derive_event_id(m->props.key, m->props.sig, e.event_id)) {
    reject(app, agent, NULL, "internal error: cannot make an eventId");
    goto out;
  }
  e.accepted_ms = clock_now_ms();
  atomic_fetch_add(&app->counters.accepted, 1);

  int found = store_get(app->store, agent, &w);
  if(found == 0 || (found > 0 && !w.is_active)) {
    skipped(app, agent, e.event_id);
    goto out;
  }
  pthread_mutex_lock(&app->handoff);
  append_durably(app, &e);
  log_event(LOG_LVL_DEBUG, "escalation.accepted", "agent=%s eventId=%s seq=%llu", agent,
            e.event_id, (unsigned long long)e.seq);
  /* After shutdown began the engine is gone: the entry waits in the outbox
   * for the next start. */
  if(!atomic_load(&app->stopping) && delivery_submit(app->delivery, &e))
    log_event(LOG_LVL_ERROR, "escalation.submit_failed", "agent=%s eventId=%s reason=oom", agent,
              e.event_id);
  pthread_mutex_unlock(&app->handoff);
out:
  webhook_clear(&w);
  escalation_clear(&e.esc);
}
