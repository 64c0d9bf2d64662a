/* main.c — hgd: wire the parts together, run until SIGTERM/SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions.h"
#include "clock.h"
#include "hgd.h"
#include "intake.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "status.h"

#define TOPIC_MAX 512
#define STOP_GRACE_MS 5000

static void on_message(void *ctx, const struct session_msg *m)
{
  struct hgd *app = ctx;
  size_t rootlen = strlen(app->cfg.topic_root);
  const char *rest;

  if(strncmp(m->topic, app->cfg.topic_root, rootlen) || m->topic[rootlen] != '/')
    return;
  rest = m->topic + rootlen + 1;
  if(!strncmp(rest, "webhook/", 8))
    actions_request(app, m, rest + 8);
  else if(!strncmp(rest, "escalation/", 11))
    intake_escalation(app, m, rest + 11);
}

static void on_ready(void *ctx)
{
  struct hgd *app = ctx;
  char st[256];

  status_publish(app);
  log_event(LOG_LVL_INFO, "ready", "instance=%s broker=%s webhooks=%zu pending=%zu",
            app->cfg.instance, app->cfg.broker, store_count(app->store),
            outbox_pending(app->outbox));
  /* Called after every (re)subscribe: READY=1 once, STATUS= each time. */
  snprintf(st, sizeof(st), "connected to %s, subscribed", app->cfg.broker);
  if(!atomic_exchange(&app->ready_logged, true))
    notify_ready(st);
  else
    notify_status(st);
}

static int lookup_row(void *ctx, const char *agent_id, struct webhook *w)
{
  struct hgd *app = ctx;
  return store_get(app->store, agent_id, w);
}

static void publish_event(void *ctx, const char *agent_id, const cJSON *ev)
{
  intake_publish_event(ctx, agent_id, ev);
}

static int resume_entry(void *ctx, const struct outbox_entry *e)
{
  struct hgd *app = ctx;
  return delivery_submit(app->delivery, e);
}

static int open_parts(struct hgd *app)
{
  char err[1024] = "";
  struct delivery_config dc = {0};
  struct delivery_hooks hooks = {app, lookup_row, publish_event};

  if(keyring_open(app->cfg.keys, &app->keys, err, sizeof(err)))
    goto fail;
  if(egress_create(&app->egress)) {
    snprintf(err, sizeof(err), "out of memory");
    goto fail;
  }
  for(size_t i = 0; i < app->cfg.nallow_net; i++) {
    char why[256] = "";
    if(egress_allow(app->egress, app->cfg.allow_net[i], why, sizeof(why))) {
      snprintf(err, sizeof(err), "allow-net '%s': %s", app->cfg.allow_net[i], why);
      goto fail;
    }
  }
  if(app->cfg.check_config)
    return 0;
  if(store_open(app->cfg.state_dir, &app->store, err, sizeof(err)) ||
     outbox_open(app->cfg.state_dir, (size_t)app->cfg.outbox_limit, &app->outbox, err,
                 sizeof(err)))
    goto fail;
  dc.schedule = app->cfg.retry_schedule;
  dc.nschedule = app->cfg.nretry_schedule;
  dc.connect_timeout_ms = (long)(app->cfg.connect_timeout * 1000);
  dc.total_timeout_ms = (long)(app->cfg.request_timeout * 1000);
  dc.cafile = app->cfg.webhook_cafile;
  dc.egress = app->egress;
  dc.allow_http = app->cfg.allow_http;
  if(delivery_start(&dc, &hooks, app->outbox, &app->delivery)) {
    snprintf(err, sizeof(err), "cannot start the delivery engine");
    goto fail;
  }
  return 0; /* pending deliveries are resumed by open_session */
fail:
  fprintf(stderr, "hgd: %s\n", err);
  return -1;
}

static int open_session(struct hgd *app)
{
  char err[512] = "", will_topic[TOPIC_MAX], t_actions[TOPIC_MAX], t_esc[TOPIC_MAX];
  char *will = status_json(app, false, false);
  const char *topics[2] = {t_actions, t_esc};
  struct session_handlers h = {app, on_message, on_ready};
  int rc = -1;

  hgd_topic(app, will_topic, sizeof(will_topic), "status/%s", app->cfg.instance);
  hgd_topic(app, t_actions, sizeof(t_actions), "webhook/+");
  hgd_topic(app, t_esc, sizeof(t_esc), "escalation/+");
  if(!will || session_create(&app->cfg, will_topic, will, topics, 2, &h, &app->session, err,
                             sizeof(err))) {
    fprintf(stderr, "hgd: %s\n", err[0] ? err : "out of memory");
    goto out;
  }
  /* Resume only once the session exists: a resumed attempt can end at once
   * and publish its delivery event through it. And before it connects, so
   * that an escalation arriving meanwhile is not submitted twice. */
  if(outbox_foreach(app->outbox, resume_entry, app)) {
    fprintf(stderr, "hgd: cannot resume pending deliveries (out of memory)\n");
    goto out;
  }
  session_start(app->session); /* a broker that is down is retried by session_tick */
  rc = 0;
out:
  free(will);
  return rc;
}

/* Wait for signals in main only: every other thread inherits the mask. */
static int run(struct hgd *app, const sigset_t *sigs, int argc, char **argv)
{
  int64_t next_status = clock_mono_ms() + (int64_t)(app->cfg.status_interval * 1000);
  int64_t watchdog_ms = notify_watchdog_interval_ms(), next_ping = 0;

  for(;;) {
    /* The watchdog proves that this loop turns: signals, reconnects and
     * status publishes all run here. */
    if(watchdog_ms && clock_mono_ms() >= next_ping) {
      notify_watchdog();
      next_ping = clock_mono_ms() + watchdog_ms;
    }
    /* Sleep at most 200 ms, and not past the next status publish or
     * watchdog ping, so a short status_interval is kept. */
    int64_t wait_ms = 200, now = clock_mono_ms();
    if(next_status - now < wait_ms)
      wait_ms = next_status - now;
    if(watchdog_ms && next_ping - now < wait_ms)
      wait_ms = next_ping - now;
    if(wait_ms < 1)
      wait_ms = 1;
    struct timespec ts = {0, (long)wait_ms * 1000 * 1000};
    int sig = sigtimedwait(sigs, NULL, &ts);
    if(sig == SIGTERM || sig == SIGINT) {
      notify_stopping();
      log_event(LOG_LVL_INFO, "stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
      return 0;
    }
    if(sig == SIGHUP) {
      double interval = app->cfg.status_interval;
      /* Before the first READY=1, a READY=1 here would tell systemd that
       * hgd serves while it still waits for the broker. */
      bool was_ready = atomic_load(&app->ready_logged);
      if(was_ready)
        notify_reloading();
      reload_all(app, argc, argv);
      if(app->cfg.status_interval != interval)
        next_status = clock_mono_ms() + (int64_t)(app->cfg.status_interval * 1000);
      if(was_ready)
        notify_ready(session_is_connected(app->session) ? "reloaded; connected"
                                                        : "reloaded; broker connection lost");
    }
    session_tick(app->session);
    if(clock_mono_ms() >= next_status) {
      next_status = clock_mono_ms() + (int64_t)(app->cfg.status_interval * 1000);
      if(session_is_connected(app->session))
        status_publish(app); /* queued by session: never blocks on Paho */
    }
  }
}

static void stop(struct hgd *app)
{
  char topic[TOPIC_MAX];

  atomic_store(&app->stopping, true);
  /* Wait out a hand-off in progress; later ones see stopping. */
  pthread_mutex_lock(&app->handoff);
  pthread_mutex_unlock(&app->handoff);
  if(app->delivery) {
    delivery_stop(app->delivery, STOP_GRACE_MS);
    app->delivery = NULL;
  }
  if(app->session) {
    char *offline = status_json(app, false, true);
    hgd_topic(app, topic, sizeof(topic), "status/%s", app->cfg.instance);
    if(offline && session_is_connected(app->session)) {
      session_publish(app->session, topic, offline, strlen(offline), 1, true, NULL, 0);
      session_flush(app->session, 2000);
    }
    free(offline);
    session_close(app->session);
  }
  if(app->outbox)
    outbox_close(app->outbox);
  if(app->store)
    store_close(app->store);
  if(app->egress)
    egress_free(app->egress);
  keyring_free(app->keys);
}

int main(int argc, char **argv)
{
  static struct hgd app; /* zeroed; lives for the whole run */
  sigset_t sigs;
  int rc = 1;

  if(config_load(&app.cfg, argc, argv)) {
    fprintf(stderr, "hgd: invalid configuration (see hgd --help)\n");
    goto out;
  }
  if(app.cfg.help) {
    config_usage(stdout);
    rc = 0;
    goto out;
  }
  if(app.cfg.version) {
    printf("hgd %s\n", HG_VERSION);
    rc = 0;
    goto out;
  }
  log_set_level(app.cfg.log_level);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_mutex_init(&app.handoff, NULL);
  app.started_ms = clock_now_ms();
  if(open_parts(&app))
    goto stop;
  if(app.cfg.check_config) {
    printf("hgd: configuration OK (%s, %zu keys)\n",
           app.cfg.config_file ? app.cfg.config_file : "no config file", keyring_count(app.keys));
    rc = 0;
    goto stop;
  }
  log_event(LOG_LVL_INFO, "starting", "version=%s instance=%s state_dir=%s webhooks=%zu pending=%zu",
            HG_VERSION, app.cfg.instance, app.cfg.state_dir, store_count(app.store),
            outbox_pending(app.outbox));
  {
    char st[300]; /* before the session: its READY must not be overwritten */
    snprintf(st, sizeof(st), "connecting to %s", app.cfg.broker);
    notify_status(st);
  }
  if(open_session(&app))
    goto stop;
  rc = run(&app, &sigs, argc, argv);
stop:
  stop(&app);
  if(rc == 0 && !app.cfg.check_config)
    log_event(LOG_LVL_INFO, "stopped", "%s", "");
out:
  config_free(&app.cfg);
  return rc;
}
