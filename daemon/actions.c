/* actions.c — get, upsert, delete and test (PROTOCOL.md section 3). */
#include "actions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "uuid.h"

#define TOPIC_MAX 512

static const char *const action_names[] = {"get", "upsert", "delete", "test"};

/* Why a response topic must not get a reply, or NULL. The requester picks
 * it, signed or not (UNAUTHORIZED is a reply too): a wildcard would make the
 * broker drop hgd's connection for a protocol error, again after every
 * reconnect while the reply stays queued; and hgd's own topics carry
 * documents subscribers trust to come from hgd (status, fields, delivery
 * events) or messages hgd acts on. So: no wildcards, no '$' topics, no
 * control characters, nothing under the root but <root>/reply/…. */
#define HG_REPLY_TOPIC_MAX 1024
#define HG_REPLY_TOPIC_LEVELS 32

static const char *reply_topic_problem(const struct hgd *app, const char *t)
{
  size_t n = strlen(t), rl = strlen(app->cfg.topic_root);

  size_t levels = 1;

  /* Brokers drop a client that publishes past their topic limits (mosquitto
   * at 200 levels, EMQX at 128 by default), and Paho then sends the queued
   * reply again after every reconnect: one request would keep hgd off the
   * broker. Far below those limits, far above any real reply topic. */
  if(n > HG_REPLY_TOPIC_MAX)
    return "too long";
  for(const char *p = t; *p; p++)
    levels += *p == '/';
  if(levels > HG_REPLY_TOPIC_LEVELS)
    return "too many topic levels";
  if(strpbrk(t, "+#"))
    return "wildcard";
  if(t[0] == '$')
    return "reserved topic";
  if(!jsonutil_utf8_valid(t, n))
    return "not UTF-8";
  for(const unsigned char *p = (const unsigned char *)t; *p; p++)
    if(*p < 0x20 || *p == 0x7f)
      return "control character";
  if(!strncmp(t, app->cfg.topic_root, rl) && (t[rl] == '/' || t[rl] == '\0') &&
     strncmp(t + rl, "/reply/", 7) != 0)
    return "inside hgd's topics (only <root>/reply/... may be a response topic)";
  return NULL;
}

/* Publish the envelope to the response topic, or only log it when the
 * request had none. Takes ownership of data (NULL means JSON null). */
static void reply_send(struct hgd *app, const char *response_topic, const void *corr,
                       size_t corrlen, cJSON *data, const char *code, const char *message)
{
  cJSON *env = cJSON_CreateObject();
  char *text = NULL;

  if(!env)
    goto out;
  cJSON_AddBoolToObject(env, "success", code == NULL);
  if(code) {
    cJSON *e = cJSON_AddObjectToObject(env, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
  } else {
    cJSON_AddItemToObject(env, "data", data ? data : cJSON_CreateNull());
    data = NULL;
  }
  text = jsonutil_print(env);
  if(!text)
    goto out;
  const char *problem = response_topic && response_topic[0]
                            ? reply_topic_problem(app, response_topic)
                            : NULL;
  if(problem) {
    char qt[200];
    log_event(LOG_LVL_WARN, "request.reply_refused", "reason=\"%s\" topic=%s", problem,
              log_value(response_topic, qt, sizeof(qt)));
  } else if(response_topic && response_topic[0])
    session_publish(app->session, response_topic, text, strlen(text), 1, false, corr, corrlen);
  else
    log_event(LOG_LVL_INFO, "request.reply_unsent", "reason=no_response_topic success=%s%s%s",
              code ? "false" : "true", code ? " code=" : "", code ? code : "");
out:
  free(text);
  cJSON_Delete(env);
  cJSON_Delete(data);
}

static void reply_error(struct hgd *app, const struct session_msg *m, const char *action,
                        const char *code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void reply_error(struct hgd *app, const struct session_msg *m, const char *action,
                        const char *code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  /* action (a topic level) and key (hg-key) come from any publisher. */
  char qaction[300], qkey[300], qmsg[700];
  log_event(LOG_LVL_INFO, "request.error", "action=%s key=%s code=%s message=%s",
            log_value(action, qaction, sizeof(qaction)),
            log_value(m->props.key ? m->props.key : "-", qkey, sizeof(qkey)), code,
            log_value(msg, qmsg, sizeof(qmsg)));
  reply_send(app, m->response_topic, m->corr, m->corrlen, NULL, code, msg);
}

void actions_publish_fields(struct hgd *app, const char *agent_id, const struct webhook *row)
{
  char topic[TOPIC_MAX];
  char *text = NULL;
  cJSON *doc = row ? webhook_fields_json(row) : NULL;

  hgd_topic(app, topic, sizeof(topic), "agent/%s/fields", agent_id);
  if(row && (!doc || !(text = jsonutil_print(doc)))) {
    log_event(LOG_LVL_ERROR, "fields.publish_failed", "agent=%s reason=oom", agent_id);
    goto out;
  }
  session_publish(app->session, topic, text ? text : "", text ? strlen(text) : 0, 1, true, NULL, 0);
out:
  free(text);
  cJSON_Delete(doc);
}

/* Parameters other than agentId are refused for get, delete and test. */
static const char *only_agent_id(const cJSON *params)
{
  const cJSON *it;
  cJSON_ArrayForEach(it, params)
  {
    if(strcmp(it->string, "agentId") != 0)
      return it->string;
  }
  return NULL;
}

struct test_ctx {
  struct hgd *app;
  char *response_topic;
  void *corr;
  size_t corrlen;
};

static void test_done(void *arg, cJSON *data)
{
  struct test_ctx *t = arg;
  reply_send(t->app, t->response_topic, t->corr, t->corrlen, data, NULL, NULL);
  free(t->response_topic);
  free(t->corr);
  free(t);
}

static void do_test(struct hgd *app, const struct session_msg *m, const char *agent)
{
  struct webhook w = {0};
  struct test_ctx *t = NULL;
  int found = store_get(app->store, agent, &w);

  if(found < 0) {
    reply_error(app, m, "test", "INTERNAL_ERROR", "out of memory");
    goto out;
  }
  if(found == 0 || !w.is_active) {
    reply_error(app, m, "test", "NOT_FOUND", "no active webhook for agentId %s", agent);
    goto out;
  }
  t = calloc(1, sizeof(*t));
  if(!t || (m->response_topic && !(t->response_topic = strdup(m->response_topic))) ||
     (m->corrlen && !(t->corr = malloc(m->corrlen)))) {
    reply_error(app, m, "test", "INTERNAL_ERROR", "out of memory");
    goto out;
  }
  t->app = app;
  if(m->corrlen)
    memcpy(t->corr, m->corr, m->corrlen);
  t->corrlen = m->corrlen;
  pthread_mutex_lock(&app->handoff);
  int rc = atomic_load(&app->stopping) ? -1 : delivery_test(app->delivery, &w, test_done, t);
  pthread_mutex_unlock(&app->handoff);
  if(rc) {
    reply_error(app, m, "test", "INTERNAL_ERROR", "hgd is shutting down or out of memory");
    goto out;
  }
  log_event(LOG_LVL_INFO, "request.test", "agent=%s", agent);
  t = NULL; /* the engine owns it now */
out:
  if(t) {
    free(t->response_topic);
    free(t->corr);
    free(t);
  }
  webhook_clear(&w);
}

/* The Genie's webhook is gone or inactive: end its pending deliveries now
 * (delivery_retire). If the engine cannot take it (stopping, OOM) they end
 * when their next attempt finds the row. */
static void retire_deliveries(struct hgd *app, const char *agent, const char *why)
{
  pthread_mutex_lock(&app->handoff);
  if(!atomic_load(&app->stopping) && app->delivery && delivery_retire(app->delivery, agent, why))
    log_event(LOG_LVL_WARN, "delivery.retire_failed", "agent=%s reason=oom", agent);
  pthread_mutex_unlock(&app->handoff);
}

static void do_upsert(struct hgd *app, const struct session_msg *m, const cJSON *params)
{
  struct webhook w = {0};
  char err[512] = "";

  if(webhook_from_request(params, app->cfg.allow_http, &w, err, sizeof(err))) {
    reply_error(app, m, "upsert", "VALIDATION_ERROR", "%s", err);
    goto out;
  }
  if(store_put(app->store, &w, err, sizeof(err))) {
    reply_error(app, m, "upsert", "INTERNAL_ERROR", "the store could not be written: %s", err);
    goto out;
  }
  log_event(LOG_LVL_INFO, "webhook.upserted", "agent=%s id=%s active=%s signed=%s", w.agent_id,
            w.id, w.is_active ? "true" : "false", w.secret ? "true" : "false");
  actions_publish_fields(app, w.agent_id, &w);
  if(!w.is_active)
    retire_deliveries(app, w.agent_id, "webhook inactive");
  reply_send(app, m->response_topic, m->corr, m->corrlen, webhook_to_json(&w, false), NULL, NULL);
out:
  webhook_clear(&w);
}

static void do_delete(struct hgd *app, const struct session_msg *m, const char *agent)
{
  char err[512] = "";
  bool existed = false;
  cJSON *data;

  if(store_delete(app->store, agent, &existed, err, sizeof(err))) {
    reply_error(app, m, "delete", "INTERNAL_ERROR", "the store could not be written: %s", err);
    return;
  }
  log_event(LOG_LVL_INFO, "webhook.deleted", "agent=%s existed=%s", agent,
            existed ? "true" : "false");
  actions_publish_fields(app, agent, NULL);
  if(existed)
    retire_deliveries(app, agent, "webhook deleted");
  data = cJSON_CreateObject();
  cJSON_AddBoolToObject(data, "success", 1);
  reply_send(app, m->response_topic, m->corr, m->corrlen, data, NULL, NULL);
}

static void do_get(struct hgd *app, const struct session_msg *m, const char *agent)
{
  struct webhook w = {0};
  int found = store_get(app->store, agent, &w);

  if(found < 0)
    reply_error(app, m, "get", "INTERNAL_ERROR", "out of memory");
  else
    reply_send(app, m->response_topic, m->corr, m->corrlen,
               found ? webhook_to_json(&w, false) : NULL, NULL, NULL);
  webhook_clear(&w);
}

void actions_request(struct hgd *app, const struct session_msg *m, const char *action)
{
  char why[256] = "", err[256] = "";
  char agent[UUID_STR_LEN + 1];
  cJSON *params = NULL;
  bool known = false;

  if(keyring_verify(app->keys, &m->props, m->topic, m->payload, m->len, clock_now_ms() / 1000,
                    why, sizeof(why))) {
    reply_error(app, m, action, "UNAUTHORIZED", "request not authenticated: %s", why);
    goto out;
  }
  for(size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
    known |= !strcmp(action, action_names[i]);
  if(!known) {
    reply_error(app, m, action, "VALIDATION_ERROR", "unknown action: %s", action);
    goto out;
  }
  if(m->len > (size_t)app->cfg.max_payload) {
    reply_error(app, m, action, "VALIDATION_ERROR", "payload larger than %zu bytes",
                (size_t)app->cfg.max_payload);
    goto out;
  }
  params = jsonutil_parse(m->payload, m->len, (size_t)app->cfg.max_payload, err, sizeof(err));
  if(!params || !cJSON_IsObject(params)) {
    reply_error(app, m, action, "VALIDATION_ERROR", "payload must be a JSON object%s%s",
                params ? "" : ": ", params ? "" : err);
    goto out;
  }
  const cJSON *id = jsonutil_get(params, "agentId");
  if(!id) {
    reply_error(app, m, action, "VALIDATION_ERROR", "agentId is required");
    goto out;
  }
  /* jsonutil_get takes the first of repeated members: a repeated agentId is
   * ambiguous (which one did a proxy or an audit log look at?), so it is
   * refused for every action, as upsert refuses any repeated parameter. */
  for(const cJSON *it = id->next; it; it = it->next) {
    if(it->string && !strcmp(it->string, "agentId")) {
      reply_error(app, m, action, "VALIDATION_ERROR", "duplicate parameter: agentId");
      goto out;
    }
  }
  if(!cJSON_IsString(id) || !uuid_valid(id->valuestring)) {
    reply_error(app, m, action, "VALIDATION_ERROR", "agentId must be a UUID");
    goto out;
  }
  uuid_lower(id->valuestring, agent);
  if(keyring_permits(app->keys, m->props.key, action, agent, why, sizeof(why))) {
    reply_error(app, m, action, "UNAUTHORIZED", "request not permitted: %s", why);
    goto out;
  }
  const char *extra = strcmp(action, "upsert") ? only_agent_id(params) : NULL;
  if(extra) {
    reply_error(app, m, action, "VALIDATION_ERROR", "unknown parameter: %s", extra);
    goto out;
  }
  if(!strcmp(action, "get"))
    do_get(app, m, agent);
  else if(!strcmp(action, "upsert"))
    do_upsert(app, m, params);
  else if(!strcmp(action, "delete"))
    do_delete(app, m, agent);
  else
    do_test(app, m, agent);
out:
  cJSON_Delete(params);
}
