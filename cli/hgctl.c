/* hgctl.c — main: parse, gather settings, dispatch the command.
 *
 * The modules: options.c (command line and help), cliconfig.c (environment
 * and config file), request.c (MQTT), render.c (output). Each command below
 * builds its JSON, hands it to request.c and what comes back to render.c;
 * the exit status is the first failure's enum hgctl_rc. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cliconfig.h"
#include "crypto.h"
#include "hgctl.h"
#include "jsonutil.h"
#include "options.h"
#include "render.h"
#include "request.h"
#include "uuid.h"

#ifndef HG_VERSION
#define HG_VERSION "unknown"
#endif

#define KEYGEN_SECRET_BYTES 16 /* "hgk_" + 32 hex */

static int oom(void)
{
  render_error(HGCTL_CODE_INTERNAL, "out of memory");
  return HGCTL_EDAEMON;
}

/* Command line over environment over file. */
static int gather_settings(struct options *o, struct cliconfig *cfg)
{
  struct cliconfig env, file;
  char err[512];
  char *path = NULL;
  int rc = HGCTL_EUSAGE;

  cliconfig_init(&env);
  cliconfig_init(&file);
  if (cliconfig_from_env(&env, err, sizeof(err)) < 0) {
    render_error(HGCTL_CODE_CONFIG, "%s", err);
    goto out;
  }
  bool named;
  path = cliconfig_path(&named);
  if (path && cliconfig_from_file(&file, path, named, err, sizeof(err)) < 0) {
    render_error(HGCTL_CODE_CONFIG, "%s", err);
    goto out;
  }
  *cfg = o->cfg;
  cliconfig_init(&o->cfg);
  cliconfig_merge(cfg, &env);
  cliconfig_merge(cfg, &file);
  /* hgd answers a test only after the POST: up to 5 s connect + 15 s
   * request (PROTOCOL.md section 4). The default 10 s would report a slow
   * receiver as hgd not answering. */
  if (o->cmd == OPTIONS_CMD_WEBHOOK_TEST && cfg->timeout <= 0)
    cfg->timeout = HGCTL_TEST_TIMEOUT;
  if (cliconfig_finish(cfg, options_cmd_signs(o->cmd), err, sizeof(err)) < 0) {
    render_error(HGCTL_CODE_CONFIG, "%s", err);
    goto out;
  }
  rc = HGCTL_OK;
out:
  free(path);
  cliconfig_clear(&env);
  cliconfig_clear(&file);
  return rc;
}

static cJSON *agent_params(const struct options *o)
{
  cJSON *p = cJSON_CreateObject();
  if (p && !cJSON_AddStringToObject(p, "agentId", o->agent_id)) {
    cJSON_Delete(p);
    return NULL;
  }
  return p;
}

/* The upsert parameters of PROTOCOL.md section 3. *params holds the secret
 * in clear: the caller wipes it. */
static int build_upsert(const struct options *o, double timeout, cJSON **params)
{
  char err[512];
  char *secret = NULL;
  cJSON *p = agent_params(o);
  int rc = HGCTL_EDAEMON;

  *params = NULL;
  if (!p)
    return oom();
  if (!cJSON_AddStringToObject(p, "url", o->url))
    goto oom;
  if (o->secret_file) {
    if (!(secret = cliconfig_read_secret(o->secret_file, timeout, err, sizeof(err)))) {
      rc = render_usage("webhook set", "--secret-file: %s", err);
      goto out;
    }
  } else if (o->secret && !(secret = strdup(o->secret))) {
    goto oom;
  }
  if (secret && !cJSON_AddStringToObject(p, "secret", secret))
    goto oom;
  if (o->secret_header && !cJSON_AddStringToObject(p, "secret_header", o->secret_header))
    goto oom;
  if (o->nfields > 0) {
    cJSON *arr = cJSON_AddArrayToObject(p, "custom_fields");
    if (!arr)
      goto oom;
    for (size_t i = 0; i < o->nfields; i++) {
      cJSON *f = cJSON_CreateObject();
      if (!f || !cJSON_AddItemToArray(arr, f))
        goto oom_item;
      if (!cJSON_AddStringToObject(f, "key", o->fields[i].key) ||
          (o->fields[i].value && !cJSON_AddStringToObject(f, "hint", o->fields[i].value)) ||
          !cJSON_AddBoolToObject(f, "useForSignature", o->fields[i].sign))
        goto oom;
      continue;
    oom_item:
      cJSON_Delete(f);
      goto oom;
    }
  }
  if (o->inactive && !cJSON_AddFalseToObject(p, "is_active"))
    goto oom;
  *params = p;
  p = NULL;
  rc = HGCTL_OK;
  goto out;
oom:
  rc = oom();
out:
  crypto_free_secret(secret);
  cJSON_Delete(p);
  return rc;
}

/* Wipe the secret strings of a request before freeing it. */
static void delete_secret_json(cJSON *j)
{
  cJSON *s = j ? jsonutil_get(j, "secret") : NULL;
  if (cJSON_IsString(s))
    crypto_wipe(s->valuestring, strlen(s->valuestring));
  cJSON_Delete(j);
}

static int cmd_webhook(const struct options *o, const struct cliconfig *cfg, const struct render *r)
{
  static const struct {
    enum options_cmd cmd;
    const char *action;
  } actions[] = {
      {OPTIONS_CMD_WEBHOOK_GET, "get"},
      {OPTIONS_CMD_WEBHOOK_SET, "upsert"},
      {OPTIONS_CMD_WEBHOOK_DELETE, "delete"},
      {OPTIONS_CMD_WEBHOOK_TEST, "test"},
  };
  const char *action = NULL;
  struct request_conn *conn = NULL;
  cJSON *params = NULL, *data = NULL;
  int rc;

  for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
    if (actions[i].cmd == o->cmd)
      action = actions[i].action;
  if (o->cmd == OPTIONS_CMD_WEBHOOK_SET)
    rc = build_upsert(o, cfg->timeout, &params);
  else
    rc = (params = agent_params(o)) ? HGCTL_OK : oom();
  if (rc != HGCTL_OK)
    goto out;
  if ((rc = request_connect(cfg, &conn)) != HGCTL_OK)
    goto out;
  if ((rc = request_call(conn, action, params, &data)) != HGCTL_OK)
    goto out;
  rc = render_data(r, o->cmd, data);
out:
  request_close(conn);
  delete_secret_json(params);
  cJSON_Delete(data);
  return rc;
}

/* The escalation message of PROTOCOL.md section 5; only what was given, and
 * always an eventId so that the delivery can be followed. */
static cJSON *build_escalation(const struct options *o, const char *event_id)
{
  const struct {
    const char *key;
    const char *value;
  } strs[] = {
      {"eventId", event_id}, {"callerNumber", o->caller}, {"callSid", o->call_sid},
      {"reason", o->reason}, {"summary", o->summary},     {"agentSessionId", o->session},
  };
  cJSON *p = cJSON_CreateObject();
  if (!p)
    return NULL;
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    if (strs[i].value && !cJSON_AddStringToObject(p, strs[i].key, strs[i].value))
      goto fail;
  if (o->nfields > 0) {
    cJSON *fields = cJSON_AddObjectToObject(p, "fields");
    if (!fields)
      goto fail;
    for (size_t i = 0; i < o->nfields; i++) {
      const struct options_field *f = &o->fields[i];
      char err[128];
      cJSON *v = f->json ? jsonutil_parse(f->value, strlen(f->value), 65536, err, sizeof(err))
                         : cJSON_CreateString(f->value);
      /* Sent as given, not as cJSON rounds numbers (DESIGN.md). */
      if (!v || jsonutil_exact_numbers(v) != 0) {
        cJSON_Delete(v);
        goto fail;
      }
      if (!cJSON_AddItemToObject(fields, f->key, v)) {
        cJSON_Delete(v);
        goto fail;
      }
    }
  }
  return p;
fail:
  cJSON_Delete(p);
  return NULL;
}

static int cmd_escalate(const struct options *o, const struct cliconfig *cfg,
                        const struct render *r)
{
  char event_id[UUID_STR_LEN + 1];
  struct request_conn *conn = NULL;
  cJSON *payload = NULL;
  char *topic = NULL;
  int rc;

  if (o->event_id[0])
    memcpy(event_id, o->event_id, sizeof(event_id));
  else if (uuid_v4(event_id) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "no random numbers for an eventId");
    return HGCTL_EDAEMON;
  }
  size_t n = strlen(cfg->topic_root) + strlen("/escalation/") + UUID_STR_LEN + 1;
  if (!(topic = malloc(n)) || !(payload = build_escalation(o, event_id))) {
    rc = oom();
    goto out;
  }
  snprintf(topic, n, "%s/escalation/%s", cfg->topic_root, o->agent_id);
  if ((rc = request_connect(cfg, &conn)) != HGCTL_OK)
    goto out;
  if ((rc = request_publish_signed(conn, topic, payload)) != HGCTL_OK)
    goto out;
  rc = render_escalated(r, event_id, topic);
out:
  request_close(conn);
  cJSON_Delete(payload);
  free(topic);
  return rc;
}

struct status_ctx {
  const struct render *r;
  bool watch;
  cJSON *by_topic; /* snapshot: topic → latest document */
};

static int status_doc(void *ctx, const char *topic, const cJSON *doc)
{
  struct status_ctx *s = ctx;
  if (s->watch) {
    int rc = render_status_doc(s->r, topic, doc);
    fflush(s->r->out);
    return rc;
  }
  cJSON *copy = cJSON_Duplicate(doc, 1);
  if (!copy)
    return oom();
  if (jsonutil_get(s->by_topic, topic))
    cJSON_ReplaceItemInObjectCaseSensitive(s->by_topic, topic, copy);
  else if (!cJSON_AddItemToObject(s->by_topic, topic, copy)) {
    cJSON_Delete(copy);
    return oom();
  }
  return HGCTL_OK;
}

static int cmp_member(const void *a, const void *b)
{
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  return strcmp(x->string, y->string);
}

static int cmd_status(const struct options *o, const struct cliconfig *cfg, const struct render *r)
{
  struct status_ctx s = {.r = r, .watch = o->watch, .by_topic = cJSON_CreateObject()};
  struct request_conn *conn = NULL;
  cJSON *docs = cJSON_CreateArray();
  cJSON **sorted = NULL;
  size_t n = strlen(cfg->topic_root) + sizeof("/status/+");
  char *filter = malloc(n);
  int rc;

  if (!s.by_topic || !docs || !filter) {
    rc = oom();
    goto out;
  }
  snprintf(filter, n, "%s/status/+", cfg->topic_root);
  if ((rc = request_connect(cfg, &conn)) != HGCTL_OK)
    goto out;
  if ((rc = request_status(conn, filter, o->watch, status_doc, &s)) != HGCTL_OK || o->watch)
    goto out;

  /* Instances in a stable order, whatever order the broker kept. */
  size_t count = (size_t)cJSON_GetArraySize(s.by_topic), i = 0;
  if (count > 0 && !(sorted = calloc(count, sizeof(*sorted)))) {
    rc = oom();
    goto out;
  }
  for (cJSON *m = s.by_topic->child; m; m = m->next)
    sorted[i++] = m;
  if (count > 0)
    qsort(sorted, count, sizeof(*sorted), cmp_member);
  for (i = 0; i < count; i++) {
    cJSON *copy = cJSON_Duplicate(sorted[i], 1);
    if (!copy || !cJSON_AddItemToArray(docs, copy)) {
      cJSON_Delete(copy);
      rc = oom();
      goto out;
    }
  }
  rc = render_status(r, docs, filter);
out:
  request_close(conn);
  cJSON_Delete(s.by_topic);
  cJSON_Delete(docs);
  free(sorted);
  free(filter);
  return rc;
}

static int cmd_keygen(const struct options *o, const struct render *r)
{
  static const char *const all_actions[] = {"get", "upsert", "delete", "test", "escalate"};
  uint8_t raw[KEYGEN_SECRET_BYTES];
  char secret[4 + 2 * KEYGEN_SECRET_BYTES + 1] = "hgk_";
  char id[4 + 8 + 1] = "key-";
  uint8_t idraw[4];
  cJSON *entry = cJSON_CreateObject(), *agents, *actions;
  int rc = HGCTL_EDAEMON;

  if (crypto_random(raw, sizeof(raw)) < 0 || crypto_random(idraw, sizeof(idraw)) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "no random numbers for a secret");
    goto out;
  }
  crypto_hex_encode(raw, sizeof(raw), secret + 4);
  crypto_hex_encode(idraw, sizeof(idraw), id + 4);
  if (!entry || !cJSON_AddStringToObject(entry, "id", o->keygen_id ? o->keygen_id : id) ||
      !cJSON_AddStringToObject(entry, "secret", secret) ||
      !(agents = cJSON_AddArrayToObject(entry, "agents")) ||
      !(actions = cJSON_AddArrayToObject(entry, "actions"))) {
    rc = oom();
    goto out;
  }
  for (size_t i = 0; i < (o->nagents ? o->nagents : 1); i++)
    if (!cJSON_AddItemToArray(agents, cJSON_CreateString(o->nagents ? o->agents[i] : "*"))) {
      rc = oom();
      goto out;
    }
  for (size_t i = 0; i < (o->nactions ? o->nactions : 5); i++)
    if (!cJSON_AddItemToArray(actions,
                              cJSON_CreateString(o->nactions ? o->actions[i] : all_actions[i]))) {
      rc = oom();
      goto out;
    }
  rc = render_keygen(r, entry);
out:
  delete_secret_json(entry);
  crypto_wipe(raw, sizeof(raw));
  crypto_wipe(secret, sizeof(secret));
  return rc;
}

int main(int argc, char **argv)
{
  struct options o;
  struct cliconfig cfg;
  struct render r;
  int rc;

  /* A reader that goes away (hgctl status --watch | head) ends us by a
   * failed write we report, not by a signal. */
  signal(SIGPIPE, SIG_IGN);
  cliconfig_init(&cfg);
  rc = options_parse(argc, argv, &o);
  if (rc != HGCTL_OK)
    goto out;
  switch (o.cmd) {
  case OPTIONS_CMD_HELP:
    options_help(stdout, o.help_topic);
    goto out;
  case OPTIONS_CMD_VERSION:
    printf("hgctl %s\n", HG_VERSION);
    goto out;
  case OPTIONS_CMD_KEYGEN:
    render_init(&r, true);
    rc = cmd_keygen(&o, &r);
    goto out_flush;
  default:
    break;
  }
  if ((rc = gather_settings(&o, &cfg)) != HGCTL_OK)
    goto out;
  render_init(&r, cfg.json == 1);
  switch (o.cmd) {
  case OPTIONS_CMD_ESCALATE:
    rc = cmd_escalate(&o, &cfg, &r);
    break;
  case OPTIONS_CMD_STATUS:
    rc = cmd_status(&o, &cfg, &r);
    break;
  default:
    rc = cmd_webhook(&o, &cfg, &r);
    break;
  }
out_flush:
  if (rc == HGCTL_OK)
    rc = render_finish(&r);
out:
  options_clear(&o);
  cliconfig_clear(&cfg);
  return rc;
}
