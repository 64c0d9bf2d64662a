/* status.c — the retained status document. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"

#define TOPIC_MAX 512

char *status_json(struct hgd *app, bool online, bool clean)
{
  char started[CLOCK_ISO_LEN + 1], now[CLOCK_ISO_LEN + 1];
  cJSON *doc = cJSON_CreateObject();
  char *text = NULL;

  if(!doc)
    return NULL;
  clock_iso8601(app->started_ms, started);
  clock_iso8601(clock_now_ms(), now);
  cJSON_AddBoolToObject(doc, "online", online);
  cJSON_AddStringToObject(doc, "instance", app->cfg.instance);
  if(online)
    cJSON_AddStringToObject(doc, "version", HG_VERSION);
  cJSON_AddStringToObject(doc, "started_at", started);
  if(online || clean)
    cJSON_AddStringToObject(doc, "timestamp", now);
  if(online) {
    struct delivery_counters dc = {0};
    if(app->delivery)
      delivery_counters(app->delivery, &dc);
    cJSON_AddNumberToObject(doc, "webhooks", (double)store_count(app->store));
    cJSON *esc = cJSON_AddObjectToObject(doc, "escalations");
    cJSON_AddNumberToObject(esc, "accepted", (double)atomic_load(&app->counters.accepted));
    cJSON_AddNumberToObject(esc, "rejected", (double)atomic_load(&app->counters.rejected));
    cJSON *del = cJSON_AddObjectToObject(doc, "deliveries");
    cJSON_AddNumberToObject(del, "delivered", (double)dc.delivered);
    cJSON_AddNumberToObject(del, "retrying", (double)dc.retrying);
    cJSON_AddNumberToObject(del, "failed", (double)dc.failed);
    cJSON_AddNumberToObject(del, "skipped",
                            (double)(dc.skipped + atomic_load(&app->counters.skipped)));
    cJSON_AddNumberToObject(del, "pending", (double)dc.pending);
  }
  text = jsonutil_print(doc);
  cJSON_Delete(doc);
  return text;
}

void status_publish(struct hgd *app)
{
  char topic[TOPIC_MAX];
  char *text = status_json(app, true, false);

  if(!text)
    return;
  hgd_topic(app, topic, sizeof(topic), "status/%s", app->cfg.instance);
  session_publish(app->session, topic, text, strlen(text), 1, true, NULL, 0);
  free(text);
}
