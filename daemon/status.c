/* status.c — the retained status document. */
#include "status.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

struct status_pub {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool requested, quit, done;
};

static void *publisher(void *arg)
{
  struct hgd *app = arg;
  struct status_pub *sp = app->status_pub;

  pthread_mutex_lock(&sp->mu);
  for(;;) {
    while(!sp->requested && !sp->quit)
      pthread_cond_wait(&sp->cv, &sp->mu);
    if(sp->quit)
      break;
    sp->requested = false;
    pthread_mutex_unlock(&sp->mu);
    if(session_is_connected(app->session))
      status_publish(app);
    pthread_mutex_lock(&sp->mu);
  }
  sp->done = true;
  pthread_cond_broadcast(&sp->cv);
  pthread_mutex_unlock(&sp->mu);
  return NULL;
}

int status_start(struct hgd *app)
{
  struct status_pub *sp = calloc(1, sizeof(*sp));

  if(!sp)
    return -1;
  pthread_mutex_init(&sp->mu, NULL);
  pthread_cond_init(&sp->cv, NULL);
  app->status_pub = sp;
  if(pthread_create(&sp->thread, NULL, publisher, app) != 0) {
    app->status_pub = NULL;
    pthread_cond_destroy(&sp->cv);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
    return -1;
  }
  return 0;
}

void status_request(struct hgd *app)
{
  struct status_pub *sp = app->status_pub;

  if(!sp)
    return;
  pthread_mutex_lock(&sp->mu);
  sp->requested = true; /* a publish still under way absorbs this one */
  pthread_cond_signal(&sp->cv);
  pthread_mutex_unlock(&sp->mu);
}

void status_stop(struct hgd *app, long timeout_ms)
{
  struct status_pub *sp = app->status_pub;
  struct timespec until;
  bool done;

  if(!sp)
    return;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000L;
  if(until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&sp->mu);
  sp->quit = true;
  pthread_cond_signal(&sp->cv);
  while(!sp->done) {
    if(pthread_cond_timedwait(&sp->cv, &sp->mu, &until) == ETIMEDOUT)
      break;
  }
  done = sp->done;
  pthread_mutex_unlock(&sp->mu);
  app->status_pub = NULL;
  if(done) {
    pthread_join(sp->thread, NULL);
    pthread_cond_destroy(&sp->cv);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
  } else {
    /* Stuck in Paho: it still uses sp, so sp is not freed. */
    pthread_detach(sp->thread);
  }
}
