/* session.c — the Paho MQTTAsync wrapper. */
#include "session.h"

#include <MQTTAsync.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define QUICK_LOSS_MS 10000 /* lost this soon after connecting: a quick loss */
#define QUICK_LOSSES 3       /* in a row: say so */

struct session {
  MQTTAsync client;
  struct session_handlers h;
  char *uri;
  char *will_topic;
  char *will_json;
  char **topics;
  int ntopics;
  const struct config *cfg;
  atomic_bool connected;
  atomic_bool connecting; /* a connect call is outstanding */
  atomic_bool ever_connected;
  _Atomic int64_t connected_at_ms; /* of the latest connect */
  atomic_int quick_losses;         /* losses in a row soon after connecting */
  int64_t next_try_ms;
  MQTTProperties connect_props;
  atomic_bool disconnected; /* set by the disconnect callback */

  /* Publishes go through a queue to a thread of their own. While the
   * message callback waits for disk space (intake back-pressure), Paho
   * holds its lock and a QoS 1 send blocks until the callback returns:
   * main (signals, status) and the delivery engine must not wait there. */
  pthread_t sender;
  bool sender_running;
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  struct outmsg *qhead, *qtail;
  size_t qlen;
  size_t qurgent; /* queued messages that are not lazy */
  int64_t qlazy_since_ms; /* when the oldest lazy message was queued */
  bool qbusy, qstop, qfull_logged, qflushing;
  size_t qmax; /* QUEUE_MAX, or HGD_PUBLISH_QUEUE_MAX for the tests */
};

/* Publishes wait in hgd's queue, not Paho's, while the broker is away:
 * Paho's buffer drops its oldest message without a word when full (a
 * reply or the status as readily as an event), ours refuses the newest
 * and logs mqtt.publish_dropped (hostile testing: 20,000 of 120,000
 * delivery events vanished without a log line). */
#define QUEUE_MAX 100000

/* Delivery events (QoS 0, no correlation, not retained) are "lazy": the
 * sender waits up to LINGER_MS, or for LINGER_BATCH of them, and sends
 * them together. One escalation a delivery event meant two thread wake-ups
 * each (ours, then Paho's send thread), and on the VM a wake-up costs more
 * than the publish (docs/BENCHMARKS.md). Replies, status and retained
 * documents go at once, and take the lazy ones queued before them along. */
#define LINGER_MS 2
#define LINGER_BATCH 64

struct outmsg {
  struct outmsg *next;
  char *topic;
  char *payload;
  size_t len;
  int qos;
  bool retained;
  bool lazy;
  char *corr; /* NULL: none */
  size_t corrlen;
};

static char *dup_bytes(const void *p, size_t n)
{
  char *s = malloc(n + 1);
  if(s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

/* Paho takes mqtt:// and mqtts:// only in newer releases: map them. */
static char *paho_uri(const char *uri)
{
  const char *rest = NULL, *scheme = NULL;
  if(!strncmp(uri, "mqtt://", 7))
    scheme = "tcp://", rest = uri + 7;
  else if(!strncmp(uri, "mqtts://", 8))
    scheme = "ssl://", rest = uri + 8;
  if(!scheme)
    return strdup(uri);
  size_t n = strlen(scheme) + strlen(rest) + 1;
  char *s = malloc(n);
  if(s)
    snprintf(s, n, "%s%s", scheme, rest);
  return s;
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *resp)
{
  struct session *s = ctx;
  for(int i = 0; resp && i < resp->alt.sub.reasonCodeCount; i++) {
    if(resp->alt.sub.reasonCodes[i] > 2) {
      log_event(LOG_LVL_ERROR, "mqtt.subscribe_refused", "topic=%s reason=%d", s->topics[i],
                (int)resp->alt.sub.reasonCodes[i]);
    }
  }
  if(resp && resp->reasonCode > 2 && resp->alt.sub.reasonCodeCount == 0)
    log_event(LOG_LVL_ERROR, "mqtt.subscribe_refused", "reason=%d", (int)resp->reasonCode);
  if(s->h.ready)
    s->h.ready(s->h.ctx);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
  (void)ctx;
  log_event(LOG_LVL_ERROR, "mqtt.subscribe_failed", "code=%d reason=%d",
            resp ? resp->code : 0, resp ? (int)resp->reasonCode : 0);
}

/* Paho does not set TCP_NODELAY and offers no handle on its socket. Without
 * it a reply written right after the PUBACK of its request waits for the
 * broker's delayed ACK (Nagle): about 40 ms per request. So, on each connect,
 * set it on every TCP socket of the process; curl's sockets have it already,
 * and the option is harmless on any other stream socket. */
static void nodelay_all_sockets(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;

  if(!d)
    return;
  while((de = readdir(d))) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    int type = 0, one = 1;
    socklen_t len = sizeof(type);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if(*end || fd < 0 || fd == dirfd(d))
      continue;
    if(getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_STREAM)
      continue;
    if(getsockname((int)fd, (struct sockaddr *)&ss, &sslen) ||
       (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
      continue;
    setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  closedir(d);
}

/* Runs after every successful connect, first or automatic: subscribe here,
 * since a reconnect does not re-run the connect's onSuccess. */
static void on_connected(void *ctx, char *cause)
{
  struct session *s = ctx;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  int *qos = calloc((size_t)s->ntopics, sizeof(int));

  (void)cause;
  atomic_store(&s->connected, true);
  pthread_mutex_lock(&s->qmu); /* the sender may wait for this */
  pthread_cond_broadcast(&s->qcv);
  pthread_mutex_unlock(&s->qmu);
  atomic_store(&s->connecting, false);
  atomic_store(&s->connected_at_ms, clock_mono_ms());
  atomic_store(&s->ever_connected, true);
  nodelay_all_sockets();
  log_event(LOG_LVL_INFO, "mqtt.connected", "broker=%s", s->cfg->broker);
  if(!qos)
    return;
  for(int i = 0; i < s->ntopics; i++)
    qos[i] = 1;
  ro.onSuccess5 = on_subscribed;
  ro.onFailure5 = on_subscribe_failed;
  ro.context = s;
  int rc = MQTTAsync_subscribeMany(s->client, s->ntopics, s->topics, qos, &ro);
  if(rc != MQTTASYNC_SUCCESS)
    log_event(LOG_LVL_ERROR, "mqtt.subscribe_failed", "code=%d", rc);
  free(qos);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
  struct session *s = ctx;
  atomic_store(&s->connecting, false);
  char qmsg[300];
  const char *msg = resp && resp->message ? resp->message : "connection refused or unreachable";
  /* Paho says no more than this when the handshake or its host name check
   * fails (a certificate verify failure also logs mqtt.tls_error). */
  const char *hint = !strncmp(s->uri, "ssl://", 6) && strstr(msg, "TLS")
                         ? " hint=\"TLS handshake or certificate check failed: is cafile the CA "
                           "of the broker's certificate, does that certificate name the host in "
                           "the broker URI, does the broker require a client certificate "
                           "(cert, key)?\""
                         : "";
  /* A refused CONNACK comes as its reason code (134 bad user name or
   * password, 135 not authorized, …): name it. */
  char why[96] = "";
  if(resp && resp->code >= 0x80 && resp->code <= 0xff) {
    const char *rc = MQTTReasonCode_toString((enum MQTTReasonCodes)resp->code);
    if(rc)
      snprintf(why, sizeof(why), " refused=\"%s\"", rc);
  }
  log_event(LOG_LVL_ERROR, "mqtt.connect_failed", "broker=%s code=%d reason=%d message=%s%s%s",
            s->cfg->broker, resp ? resp->code : 0, resp ? (int)resp->reasonCode : 0,
            log_value(msg, qmsg, sizeof(qmsg)), why, hint);
}

/* OpenSSL's own reasons ("certificate verify failed", "unknown ca", …):
 * Paho's connect failure only says "TCP/TLS connect failure". */
static int on_ssl_error(const char *str, size_t len, void *ctx)
{
  struct session *s = ctx;
  char detail[512], qd[600];
  while(len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
    len--;
  snprintf(detail, sizeof(detail), "%.*s", (int)(len < sizeof(detail) ? len : sizeof(detail) - 1),
           str);
  log_event(LOG_LVL_ERROR, "mqtt.tls_error", "broker=%s detail=%s", s->cfg->broker,
            log_value(detail, qd, sizeof(qd)));
  return 0;
}

static void on_connection_lost(void *ctx, char *cause)
{
  struct session *s = ctx;
  atomic_store(&s->connected, false);
  char qcause[300];
  log_event(LOG_LVL_WARN, "mqtt.connection_lost", "cause=%s",
            log_value(cause ? cause : "unknown", qcause, sizeof(qcause)));
  /* mosquitto closes the older of two connections with one client id
   * without saying why: a connection lost again and again within seconds
   * of being made is most likely a second hgd with the same --instance. */
  if(clock_mono_ms() - atomic_load(&s->connected_at_ms) > QUICK_LOSS_MS)
    atomic_store(&s->quick_losses, 0);
  else if(atomic_fetch_add(&s->quick_losses, 1) + 1 == QUICK_LOSSES)
    log_event(LOG_LVL_ERROR, "mqtt.flapping",
              "instance=%s losses=%d hint=\"the broker keeps closing the connection soon after "
              "it is made: is a second hgd running with the same --instance (client id)? give "
              "each its own\"",
              s->cfg->instance, QUICK_LOSSES);
}

/* The broker's DISCONNECT says why, which connection_lost does not: above
 * all "session taken over", another client with hgd's client id, that is
 * a second hgd with the same --instance (both then knock each other off
 * the broker, over and over). */
static void on_broker_disconnect(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
  struct session *s = ctx;
  (void)props;
  if(reason == MQTTREASONCODE_SESSION_TAKEN_OVER)
    log_event(LOG_LVL_ERROR, "mqtt.session_taken_over",
              "instance=%s hint=\"another client connected with this client id: is a second hgd "
              "running with the same --instance? give each its own\"",
              s->cfg->instance);
  else
    log_event(LOG_LVL_WARN, "mqtt.broker_disconnect", "reason=\"%s\"",
              MQTTReasonCode_toString(reason));
}

static void copy_props(const MQTTProperties *props, struct session_msg *m, char **owned, int *nowned)
{
  for(int i = 0; i < props->count; i++) {
    const MQTTProperty *p = &props->array[i];
    if(p->identifier == MQTTPROPERTY_CODE_RESPONSE_TOPIC && !m->response_topic) {
      owned[*nowned] = dup_bytes(p->value.data.data, (size_t)p->value.data.len);
      m->response_topic = owned[(*nowned)++];
    } else if(p->identifier == MQTTPROPERTY_CODE_CORRELATION_DATA && !m->corr) {
      m->corr = p->value.data.data;
      m->corrlen = (size_t)p->value.data.len;
    } else if(p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY && *nowned < 8) {
      const char **slot = NULL;
      size_t n = (size_t)p->value.data.len;
      const char *name = p->value.data.data;
      if(n == 6 && !memcmp(name, "hg-key", 6))
        slot = &m->props.key;
      else if(n == 5 && !memcmp(name, "hg-ts", 5))
        slot = &m->props.ts;
      else if(n == 8 && !memcmp(name, "hg-nonce", 8))
        slot = &m->props.nonce;
      else if(n == 6 && !memcmp(name, "hg-sig", 6))
        slot = &m->props.sig;
      /* A repeated property is ambiguous (which copy did an ACL plugin or a
       * proxy look at?): flag the message, keyring_verify refuses it.
       * Embedded NULs make a value malformed (cut short). */
      if(slot && *slot) {
        m->props.repeated = true;
      } else if(slot) {
        owned[*nowned] = dup_bytes(p->value.value.data, (size_t)p->value.value.len);
        if(owned[*nowned] && strlen(owned[*nowned]) != (size_t)p->value.value.len)
          owned[*nowned][0] = '\0';
        *slot = owned[(*nowned)++];
      }
    }
  }
}

/* Always returns 1: the message is ours once the handler returns. Returning
 * 0 would make Paho acknowledge it from memory and redeliver it later. */
static int on_message(void *ctx, char *topic, int topiclen, MQTTAsync_message *msg)
{
  struct session *s = ctx;
  struct session_msg m = {0};
  char *owned[9] = {0};
  int nowned = 0;
  char *t = topiclen > 0 ? dup_bytes(topic, (size_t)topiclen) : strdup(topic);

  if(t && msg->retained) {
    /* Sent from the broker's retained store because hgd (re)subscribed, not
     * published now: requests and escalations are never retained
     * (PROTOCOL.md section 1), and acting on one would replay it after every
     * restart while its hg-ts is in the window (a deleted webhook came back).
     * A live publish reaches hgd with the retain flag cleared. */
    char qt[200];
    log_event(LOG_LVL_WARN, "mqtt.retained_ignored", "topic=%s", log_value(t, qt, sizeof(qt)));
  } else if(t) {
    m.topic = t;
    m.payload = msg->payload;
    m.len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    copy_props(&msg->properties, &m, owned, &nowned);
    s->h.message(s->h.ctx, &m);
  } else {
    log_event(LOG_LVL_ERROR, "mqtt.oom", "what=topic");
  }
  for(int i = 0; i < nowned; i++)
    free(owned[i]);
  free(t);
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  return 1;
}

static void *sender_main(void *arg);

/* QUEUE_MAX, or less for the tests (HGD_PUBLISH_QUEUE_MAX, docs/TESTING.md). */
static size_t queue_max(void)
{
  const char *t = getenv("HGD_PUBLISH_QUEUE_MAX");
  long v = t ? strtol(t, NULL, 10) : 0;
  return v > 0 && v < QUEUE_MAX ? (size_t)v : QUEUE_MAX;
}

int session_create(const struct config *cfg, const char *will_topic, const char *will_json,
                   const char *const *topics, size_t ntopics, const struct session_handlers *h,
                   struct session **out, char *err, size_t errsz)
{
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
  struct session *s = calloc(1, sizeof(*s));
  char clientid[160];
  int rc;

  if(!s)
    goto oom;
  s->cfg = cfg;
  s->h = *h;
  s->qmax = queue_max();
  s->uri = paho_uri(cfg->broker);
  s->will_topic = strdup(will_topic);
  s->will_json = strdup(will_json);
  s->topics = calloc(ntopics, sizeof(char *));
  if(!s->uri || !s->will_topic || !s->will_json || !s->topics)
    goto oom;
  for(size_t i = 0; i < ntopics; i++)
    if(!(s->topics[s->ntopics++] = strdup(topics[i])))
      goto oom;
  /* Replies and events published while the broker is away wait here. */
  co.sendWhileDisconnected = 1;
  co.maxBufferedMessages = 100000;
  co.deleteOldestMessages = 1;
  snprintf(clientid, sizeof(clientid), "hgd-%s", cfg->instance);
  rc = MQTTAsync_createWithOptions(&s->client, s->uri, clientid, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                   &co);
  if(rc != MQTTASYNC_SUCCESS) {
    snprintf(err, errsz, "cannot create MQTT client for %s (Paho code %d)", cfg->broker, rc);
    goto fail;
  }
  MQTTAsync_setCallbacks(s->client, s, on_connection_lost, on_message, NULL);
  MQTTAsync_setConnected(s->client, s, on_connected);
  MQTTAsync_setDisconnected(s->client, s, on_broker_disconnect);
  {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, &ca);
    pthread_condattr_destroy(&ca);
  }
  if(pthread_create(&s->sender, NULL, sender_main, s) != 0) {
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->qmu);
    snprintf(err, errsz, "cannot start the MQTT publish thread");
    goto fail;
  }
  s->sender_running = true;
  *out = s;
  return 0;
oom:
  snprintf(err, errsz, "out of memory");
fail:
  session_close(s);
  return -1;
}

static int connect_now(struct session *s)
{
  MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
  MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  MQTTProperty p = {0};
  int rc;

  MQTTProperties_free(&s->connect_props);
  p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
  p.value.integer4 = (unsigned)s->cfg->session_expiry;
  MQTTProperties_add(&s->connect_props, &p);
  co.connectProperties = &s->connect_props;
  co.cleanstart = 0;
  co.keepAliveInterval = 30;
  co.connectTimeout = 10;
  co.automaticReconnect = 1;
  co.minRetryInterval = 1;
  co.maxRetryInterval = 16;
  co.username = s->cfg->username;
  co.password = s->cfg->password;
  will.topicName = s->will_topic;
  will.message = NULL;
  will.payload.data = s->will_json;
  will.payload.len = (int)strlen(s->will_json);
  will.retained = 1;
  will.qos = 1;
  co.will = &will;
  if(!strncmp(s->uri, "ssl://", 6)) {
    ssl.trustStore = s->cfg->cafile;
    ssl.keyStore = s->cfg->cert;
    ssl.privateKey = s->cfg->key;
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1; /* host name check: off by default in Paho */
    ssl.ssl_error_cb = on_ssl_error;
    ssl.ssl_error_context = s;
    co.ssl = &ssl;
  }
  co.onFailure5 = on_connect_failed;
  co.context = s;
  atomic_store(&s->connecting, true);
  rc = MQTTAsync_connect(s->client, &co);
  if(rc != MQTTASYNC_SUCCESS) {
    atomic_store(&s->connecting, false);
    log_event(LOG_LVL_ERROR, "mqtt.connect_failed", "broker=%s code=%d", s->cfg->broker, rc);
    return -1;
  }
  return 0;
}

int session_start(struct session *s)
{
  s->next_try_ms = clock_mono_ms() + 2000;
  return connect_now(s);
}

void session_tick(struct session *s)
{
  /* Paho's automatic reconnect takes over only after a first success. */
  if(atomic_load(&s->ever_connected) || atomic_load(&s->connecting))
    return;
  if(clock_mono_ms() < s->next_try_ms)
    return;
  s->next_try_ms = clock_mono_ms() + 2000;
  connect_now(s);
}

bool session_is_connected(struct session *s) { return atomic_load(&s->connected); }

static void outmsg_free(struct outmsg *m)
{
  if(!m)
    return;
  free(m->topic);
  free(m->payload);
  free(m->corr);
  free(m);
}

static void send_now(struct session *s, const struct outmsg *m)
{
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  MQTTProperty p = {0};
  int rc;

  msg.payload = m->payload;
  msg.payloadlen = (int)m->len;
  msg.qos = m->qos;
  msg.retained = m->retained;
  if(m->corr) {
    p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
    p.value.data.data = m->corr;
    p.value.data.len = (int)m->corrlen;
    MQTTProperties_add(&msg.properties, &p);
  }
  rc = MQTTAsync_sendMessage(s->client, m->topic, &msg, &ro);
  MQTTProperties_free(&msg.properties);
  if(rc != MQTTASYNC_SUCCESS)
    log_event(LOG_LVL_WARN, "mqtt.publish_failed", "topic=%s code=%d", m->topic, rc);
}

/* Until LINGER_MS after the oldest lazy message, unless something urgent,
 * a full batch, a flush or the stop comes first. s->qmu held. */
static void linger(struct session *s)
{
  int64_t until_ms = s->qlazy_since_ms + LINGER_MS;
  struct timespec until = clock_mono_timespec(until_ms);

  while(s->qhead && !s->qurgent && s->qlen < LINGER_BATCH && !s->qflushing && !s->qstop &&
        clock_mono_ms() < until_ms)
    if(pthread_cond_timedwait(&s->qcv, &s->qmu, &until) != 0)
      break;
}

static void *sender_main(void *arg)
{
  struct session *s = arg;

  pthread_mutex_lock(&s->qmu);
  for(;;) {
    /* While the broker is away, keep them here (see QUEUE_MAX). */
    while((!s->qhead || !atomic_load(&s->connected)) && !s->qstop)
      pthread_cond_wait(&s->qcv, &s->qmu);
    if(s->qstop)
      break;
    linger(s);
    /* Take up to a batch, in order; the rest stays counted in qlen. */
    struct outmsg *batch = NULL, **tail = &batch;
    for(size_t n = 0; s->qhead && n < LINGER_BATCH; n++) {
      struct outmsg *m = s->qhead;
      s->qhead = m->next;
      m->next = NULL;
      *tail = m;
      tail = &m->next;
      s->qlen--;
      if(!m->lazy)
        s->qurgent--;
    }
    if(!s->qhead)
      s->qtail = NULL;
    s->qbusy = true;
    pthread_mutex_unlock(&s->qmu);
    while(batch) {
      struct outmsg *m = batch;
      batch = m->next;
      send_now(s, m);
      outmsg_free(m);
    }
    pthread_mutex_lock(&s->qmu);
    s->qbusy = false;
    pthread_cond_broadcast(&s->qcv); /* session_flush may wait for this */
  }
  pthread_mutex_unlock(&s->qmu);
  return NULL;
}

/* Copies the message and queues it for the sender thread: never blocks. */
int session_publish(struct session *s, const char *topic, const void *payload, size_t len, int qos,
                    bool retained, const void *corr, size_t corrlen)
{
  struct outmsg *m = calloc(1, sizeof(*m));

  if(!m || !(m->topic = strdup(topic)) || !(m->payload = dup_bytes(payload, len)) ||
     (corr && !(m->corr = dup_bytes(corr, corrlen)))) {
    outmsg_free(m);
    log_event(LOG_LVL_WARN, "mqtt.publish_failed", "topic=%s reason=oom", topic);
    return -1;
  }
  m->len = len;
  m->qos = qos;
  m->retained = retained;
  m->lazy = qos == 0 && !retained && !corr;
  m->corrlen = corrlen;
  pthread_mutex_lock(&s->qmu);
  if(s->qlen >= s->qmax) {
    bool first = !s->qfull_logged;
    s->qfull_logged = true;
    pthread_mutex_unlock(&s->qmu);
    if(first)
      log_event(LOG_LVL_WARN, "mqtt.publish_dropped", "topic=%s reason=\"%d messages queued\"",
                topic, (int)s->qmax);
    outmsg_free(m);
    return -1;
  }
  s->qfull_logged = false;
  if(s->qtail)
    s->qtail->next = m;
  else
    s->qhead = m;
  s->qtail = m;
  s->qlen++;
  if(!m->lazy)
    s->qurgent++;
  else if(s->qlen == 1)
    s->qlazy_since_ms = clock_mono_ms();
  /* A lazy message wakes the sender only to start its linger (into an
   * empty queue) or to end it (a full batch). */
  if(!m->lazy || s->qlen == 1 || s->qlen >= LINGER_BATCH)
    pthread_cond_broadcast(&s->qcv);
  pthread_mutex_unlock(&s->qmu);
  return 0;
}

void session_flush(struct session *s, long timeout_ms)
{
  MQTTAsync_token *tokens = NULL;
  int64_t deadline = clock_mono_ms() + timeout_ms;
  struct timespec until = clock_mono_timespec(deadline);

  /* First our queue, then Paho's in-flight messages. */
  pthread_mutex_lock(&s->qmu);
  s->qflushing = true; /* no lingering now */
  pthread_cond_broadcast(&s->qcv);
  while((s->qhead || s->qbusy) && pthread_cond_timedwait(&s->qcv, &s->qmu, &until) == 0)
    ;
  s->qflushing = false;
  pthread_mutex_unlock(&s->qmu);

  if(MQTTAsync_getPendingTokens(s->client, &tokens) != MQTTASYNC_SUCCESS || !tokens)
    return;
  for(int i = 0; tokens[i] != -1; i++) {
    int64_t left = deadline - clock_mono_ms();
    if(left <= 0)
      break;
    MQTTAsync_waitForCompletion(s->client, tokens[i], (unsigned long)left);
  }
  MQTTAsync_free(tokens);
}

static void on_disconnected(void *ctx, MQTTAsync_successData5 *resp)
{
  struct session *s = ctx;
  (void)resp;
  atomic_store(&s->disconnected, true);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData5 *resp)
{
  struct session *s = ctx;
  (void)resp;
  atomic_store(&s->disconnected, true);
}

void session_close(struct session *s)
{
  if(!s)
    return;
  if(s->sender_running) {
    /* What is still queued after session_flush is dropped. */
    pthread_mutex_lock(&s->qmu);
    s->qstop = true;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->sender, NULL);
    while(s->qhead) {
      struct outmsg *m = s->qhead;
      s->qhead = m->next;
      outmsg_free(m);
    }
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->qmu);
  }
  if(s->client) {
    if(MQTTAsync_isConnected(s->client)) {
      MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
      d.timeout = 2000;
      d.onSuccess5 = on_disconnected;
      d.onFailure5 = on_disconnect_failed;
      d.context = s;
      d.reasonCode = MQTTREASONCODE_NORMAL_DISCONNECTION; /* no will */
      if(MQTTAsync_disconnect(s->client, &d) == MQTTASYNC_SUCCESS) {
        for(int i = 0; i < 300 && !atomic_load(&s->disconnected); i++)
          usleep(10000);
      }
    }
    MQTTAsync_destroy(&s->client);
  }
  MQTTProperties_free(&s->connect_props);
  for(int i = 0; i < s->ntopics; i++)
    free(s->topics[i]);
  free(s->topics);
  free(s->uri);
  free(s->will_topic);
  free(s->will_json);
  free(s);
}
