/* reload.c — SIGHUP handling (reload.h). Runs on the main thread, which is
 * the only reader of status_interval; log_level is atomic in log.c. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static bool str_differs(const char *a, const char *b)
{
  if(!a || !b)
    return a != b;
  return strcmp(a, b) != 0;
}

/* Append name to the comma-separated list in out when the setting changed. */
static void note(char *out, size_t outsz, bool changed, const char *name)
{
  size_t n = strlen(out);
  if(changed && n + strlen(name) + 2 < outsz)
    snprintf(out + n, outsz - n, "%s%s", n ? "," : "", name);
}

static bool lists_differ(char *const *a, size_t na, char *const *b, size_t nb)
{
  if(na != nb)
    return true;
  for(size_t i = 0; i < na; i++)
    if(strcmp(a[i], b[i]))
      return true;
  return false;
}

static bool schedules_differ(const double *a, size_t na, const double *b, size_t nb)
{
  return na != nb || (na && memcmp(a, b, na * sizeof(*a)) != 0);
}

/* The restart-only settings that differ between old and new. */
static void restart_only_changes(const struct config *o, const struct config *n, char *out,
                                 size_t outsz)
{
  out[0] = '\0';
  note(out, outsz, str_differs(o->broker, n->broker), "broker");
  note(out, outsz, str_differs(o->username, n->username), "username");
  note(out, outsz, str_differs(o->password, n->password), "password");
  note(out, outsz, str_differs(o->cafile, n->cafile), "cafile");
  note(out, outsz, str_differs(o->cert, n->cert), "cert");
  note(out, outsz, str_differs(o->key, n->key), "key");
  note(out, outsz, str_differs(o->state_dir, n->state_dir), "state_dir");
  note(out, outsz, str_differs(o->keys, n->keys), "keys");
  note(out, outsz, str_differs(o->instance, n->instance), "instance");
  note(out, outsz, str_differs(o->topic_root, n->topic_root), "topic_root");
  note(out, outsz, o->allow_http != n->allow_http, "allow_http");
  note(out, outsz, lists_differ(o->allow_net, o->nallow_net, n->allow_net, n->nallow_net),
       "allow_net");
  note(out, outsz, str_differs(o->webhook_cafile, n->webhook_cafile), "webhook_cafile");
  note(out, outsz,
       schedules_differ(o->retry_schedule, o->nretry_schedule, n->retry_schedule,
                        n->nretry_schedule),
       "retry_schedule");
  note(out, outsz, o->session_expiry != n->session_expiry, "session_expiry");
  note(out, outsz, o->max_payload != n->max_payload, "max_payload");
  note(out, outsz, o->outbox_limit != n->outbox_limit, "outbox_limit");
  note(out, outsz, o->connect_timeout != n->connect_timeout, "connect_timeout");
  note(out, outsz, o->request_timeout != n->request_timeout, "request_timeout");
}

static const char *level_name(enum log_level l)
{
  static const char *const names[] = {"error", "warn", "info", "debug"};
  return (unsigned)l < 4 ? names[l] : "?";
}

static int reload_config(struct hgd *app, int argc, char **argv)
{
  struct config fresh;
  char changed[512];

  /* config_load prints its line-numbered reasons to stderr (the journal). */
  if(config_load(&fresh, argc, argv)) {
    config_free(&fresh);
    log_event(LOG_LVL_ERROR, "config.reload_failed", "file=%s kept=old",
              app->cfg.config_file ? app->cfg.config_file : CONFIG_DEFAULT_FILE);
    return -1;
  }
  restart_only_changes(&app->cfg, &fresh, changed, sizeof(changed));
  if(changed[0])
    log_event(LOG_LVL_WARN, "config.restart_needed", "keys=%s", changed);
  if(fresh.log_level != app->cfg.log_level) {
    app->cfg.log_level = fresh.log_level;
    log_set_level(fresh.log_level);
  }
  app->cfg.status_interval = fresh.status_interval;
  log_event(LOG_LVL_INFO, "config.reloaded", "file=%s log_level=%s status_interval=%g",
            fresh.config_file ? fresh.config_file : "none", level_name(app->cfg.log_level),
            app->cfg.status_interval);
  config_free(&fresh);
  return 0;
}

int reload_all(struct hgd *app, int argc, char **argv)
{
  char err[512] = "";
  int rc = 0;

  if(keyring_reload(app->keys, err, sizeof(err))) {
    char q[600];
    log_event(LOG_LVL_ERROR, "keys.reload_failed", "reason=%s kept=old",
              log_value(err, q, sizeof(q)));
    rc = -1;
  } else {
    log_event(LOG_LVL_INFO, "keys.reloaded", "keys=%zu", keyring_count(app->keys));
  }
  if(reload_config(app, argc, argv))
    rc = -1;
  return rc;
}
