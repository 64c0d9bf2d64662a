/* request.c — MQTT v5 request/reply, signed publish and status watch on
 * Paho's synchronous client (request.h).
 *
 * The synchronous MQTTClient without message callbacks fits a CLI: nothing
 * runs on a thread of its own, MQTTClient_receive() drives the socket, and
 * messages that arrive while we wait for a SUBACK are queued for it. */
#include "request.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>

#include "clock.h"
#include "crypto.h"
#include "hgctl.h"
#include "jsonutil.h"
#include "render.h"
#include "reqsig.h"

#define CORR_LEN 16
#define STATUS_SETTLE_MS 1000
#define STATUS_TAIL_MS 200   /* more quiet wanted when documents still come */
#define RECEIVE_SLICE_MS 250 /* how often a wait looks at the clock and signals */
#define STATUS_DOC_MAX (1024 * 1024)

struct request_conn {
  MQTTClient client;
  const struct cliconfig *cfg;
  int64_t deadline; /* clock_mono_ms() */
  char where[300];  /* "host:port" for messages */
  char tls_error[256];
  /* Our last publish, and the broker's last PUBACK (published callback). */
  int pub_token;
  int ack_token;
  int ack_reason;
  /* From the disconnected callback. */
  int disc_reason;
  bool disc_seen;
};

/* The only mutable global: what a signal handler may touch. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
  stop_signal = sig;
}

static int64_t remaining_ms(const struct request_conn *c)
{
  int64_t r = c->deadline - clock_mono_ms();
  return r > 0 ? r : 0;
}

static const char *reason_text(int rc)
{
  const char *s = MQTTReasonCode_toString((enum MQTTReasonCodes)rc);
  return s ? s : "unknown reason";
}

static void on_published(void *ctx, int token, int packet_type, MQTTProperties *props,
                         enum MQTTReasonCodes reason)
{
  struct request_conn *c = ctx;
  (void)packet_type;
  (void)props;
  c->ack_token = token;
  c->ack_reason = (int)reason;
}

static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
  struct request_conn *c = ctx;
  (void)props;
  c->disc_seen = true;
  c->disc_reason = (int)reason;
}

static int on_tls_error(const char *str, size_t len, void *ctx)
{
  struct request_conn *c = ctx;
  /* OpenSSL's lines end in a newline; keep the last, most specific one. */
  while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
    len--;
  /* "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:":
   * the reason is what an operator can act on. */
  const char *p = str, *end = str + len;
  for (int field = 0; field < 5 && p; field++) {
    p = memchr(p, ':', (size_t)(end - p));
    if (p)
      p++;
  }
  const char *q = p ? memchr(p, ':', (size_t)(end - p)) : NULL;
  if (p && q && q > p)
    snprintf(c->tls_error, sizeof(c->tls_error), "%.*s", (int)(q - p), p);
  else
    snprintf(c->tls_error, sizeof(c->tls_error), "%.*s", (int)len, str);
  return 1;
}

static void lost_connection(const struct request_conn *c, const char *during)
{
  if (c->disc_seen)
    render_error(HGCTL_CODE_BROKER, "%s closed the connection %s: %s", c->where, during,
                 reason_text(c->disc_reason));
  else
    render_error(HGCTL_CODE_BROKER, "lost the connection to %s %s", c->where, during);
}

/* After Paho failed to connect: find out whether TCP itself fails, which
 * Paho does not tell (it says "-1"). Returns 0 when TCP connects. */
static int probe_tcp(const char *host, int port, int timeout_ms, char *why, size_t whysz)
{
  struct addrinfo hints = {0}, *res = NULL, *ai;
  char portstr[8];
  int rc = -1, err = 0;

  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  snprintf(portstr, sizeof(portstr), "%d", port);
  int g = getaddrinfo(host, portstr, &hints, &res);
  if (g != 0) {
    snprintf(why, whysz, "%s", gai_strerror(g));
    return -1;
  }
  for (ai = res; ai && rc != 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      rc = 0;
    } else if (errno == EINPROGRESS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int n = poll(&p, 1, timeout_ms);
      socklen_t len = sizeof(err);
      if (n == 0)
        err = ETIMEDOUT;
      else if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
        rc = 0;
      else if (n < 0)
        err = errno;
    } else {
      err = errno;
    }
    close(fd);
  }
  freeaddrinfo(res);
  if (rc != 0)
    snprintf(why, whysz, "%s", strerror(err ? err : ECONNREFUSED));
  return rc;
}

static int random_hex(char *out, size_t nbytes)
{
  uint8_t buf[32];
  if (nbytes > sizeof(buf) || crypto_random(buf, nbytes) < 0)
    return -1;
  crypto_hex_encode(buf, nbytes, out);
  return 0;
}

int request_connect(const struct cliconfig *cfg, struct request_conn **out)
{
  struct request_conn *c = calloc(1, sizeof(*c));
  MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
  MQTTClient_connectOptions conn = MQTTClient_connectOptions_initializer5;
  MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
  MQTTResponse resp = MQTTResponse_initializer;
  char uri[320], client_id[32];
  const char *id = cfg->client_id;
  bool tls = cliconfig_tls(cfg);
  bool v6 = strchr(cfg->host, ':') && cfg->host[0] != '[';
  int rc = HGCTL_EBROKER;

  *out = NULL;
  if (!c) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    return HGCTL_EBROKER;
  }
  c->cfg = cfg;
  c->deadline = clock_mono_ms() + (int64_t)ceil(cfg->timeout * 1000.0);
  c->pub_token = -1;
  c->ack_token = -1;
  snprintf(c->where, sizeof(c->where), "%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
           cfg->port);
  snprintf(uri, sizeof(uri), "%s://%s", tls ? "ssl" : "tcp", c->where);
  if (!id) {
    memcpy(client_id, "hgctl-", 6);
    if (random_hex(client_id + 6, 8) < 0) {
      render_error(HGCTL_CODE_INTERNAL, "no random numbers for a client id");
      goto out;
    }
    id = client_id;
  }

  create.MQTTVersion = MQTTVERSION_5;
  int r =
      MQTTClient_createWithOptions(&c->client, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
  if (r != MQTTCLIENT_SUCCESS) {
    c->client = NULL;
    render_error(HGCTL_CODE_BROKER, "cannot set up a client for %s: %s", c->where,
                 MQTTClient_strerror(r));
    goto out;
  }
  MQTTClient_setPublished(c->client, c, on_published);
  MQTTClient_setDisconnected(c->client, c, on_disconnected);

  conn.cleanstart = 1;
  conn.keepAliveInterval = 60;
  conn.connectTimeout = (int)((remaining_ms(c) + 999) / 1000);
  if (conn.connectTimeout < 1)
    conn.connectTimeout = 1;
  conn.username = cfg->username;
  conn.password = cfg->password;
  if (tls) {
    ssl.trustStore = cfg->cafile;
    ssl.keyStore = cfg->cert;
    ssl.privateKey = cfg->key;
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1; /* host name check, which Paho skips otherwise */
    ssl.ssl_error_cb = on_tls_error;
    ssl.ssl_error_context = c;
    conn.ssl = &ssl;
  }

  resp = MQTTClient_connect5(c->client, &conn, NULL, NULL);
  if (resp.reasonCode == MQTTREASONCODE_SUCCESS) {
    rc = HGCTL_OK;
  } else if ((int)resp.reasonCode > 0) {
    render_error(HGCTL_CODE_BROKER, "%s refused the connection: %s", c->where,
                 reason_text(resp.reasonCode));
  } else if (remaining_ms(c) == 0) {
    render_error(HGCTL_CODE_BROKER, "cannot connect to %s: no answer within %g s", c->where,
                 cfg->timeout);
  } else {
    char why[256];
    int64_t left = remaining_ms(c);
    if (probe_tcp(cfg->host, cfg->port, (int)(left < 2000 ? left : 2000), why, sizeof(why)) < 0)
      render_error(HGCTL_CODE_BROKER, "cannot connect to %s: %s", c->where, why);
    else if (tls)
      render_error(HGCTL_CODE_BROKER, "cannot connect to %s: TLS handshake failed%s%s", c->where,
                   c->tls_error[0] ? ": " : "",
                   c->tls_error[0] ? c->tls_error
                                   : " (check --cafile, --cert, --key, and that the broker's "
                                     "certificate names this host)");
    else
      render_error(HGCTL_CODE_BROKER,
                   "cannot connect to %s: no MQTT handshake (%s; a TLS port needs --cafile)",
                   c->where, MQTTClient_strerror((int)resp.reasonCode));
  }
out:
  MQTTResponse_free(resp);
  if (rc != HGCTL_OK) {
    request_close(c);
    return rc;
  }
  *out = c;
  return HGCTL_OK;
}

void request_close(struct request_conn *c)
{
  if (!c)
    return;
  if (c->client) {
    if (MQTTClient_isConnected(c->client))
      MQTTClient_disconnect5(c->client, 200, MQTTREASONCODE_NORMAL_DISCONNECTION, NULL);
    MQTTClient_destroy(&c->client);
  }
  free(c);
}

/* MQTTClient_subscribe5 blocks for the SUBACK for Paho's command timeout,
 * which may not be set below 5 s: a broker that never answers would hold
 * hgctl past --timeout. This guard ends hgctl at the deadline instead, with
 * the exit status and message of any other timeout. */
struct sub_guard {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int64_t deadline;
  char msg[400];
};

static void *sub_guard_run(void *arg)
{
  struct sub_guard *g = arg;
  struct timespec ts = clock_mono_timespec(g->deadline);

  pthread_mutex_lock(&g->mu);
  while (!g->done)
    if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) != 0)
      break;
  bool fire = !g->done;
  pthread_mutex_unlock(&g->mu);
  if (fire) {
    ssize_t w = write(STDERR_FILENO, g->msg, strlen(g->msg));
    (void)w;
    _exit(HGCTL_EBROKER);
  }
  return NULL;
}

static int subscribe(struct request_conn *c, const char *filter)
{
  MQTTSubscribe_options opts = MQTTSubscribe_options_initializer;
  struct sub_guard g = {.deadline = c->deadline};
  pthread_condattr_t ca;
  pthread_t guard;
  bool guarded = false;
  int64_t left = remaining_ms(c);

  snprintf(g.msg, sizeof(g.msg), "hgctl: %s: %s did not answer the subscription within %g s\n",
           HGCTL_CODE_TIMEOUT, c->where, c->cfg->timeout);
  pthread_mutex_init(&g.mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g.cv, &ca);
  pthread_condattr_destroy(&ca);
  MQTTClient_setCommandTimeout(c->client, (unsigned long)(left > 5000 ? left : 5000));
  guarded = pthread_create(&guard, NULL, sub_guard_run, &g) == 0;
  MQTTResponse resp = MQTTClient_subscribe5(c->client, filter, 1, &opts, NULL);
  if (guarded) {
    pthread_mutex_lock(&g.mu);
    g.done = true;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(guard, NULL);
  }
  pthread_cond_destroy(&g.cv);
  pthread_mutex_destroy(&g.mu);
  int reason = (int)resp.reasonCode;
  MQTTResponse_free(resp);
  if (reason < 0 && remaining_ms(c) == 0 && MQTTClient_isConnected(c->client)) {
    render_error(HGCTL_CODE_TIMEOUT, "%s did not answer the subscription within %g s", c->where,
                 c->cfg->timeout);
    return HGCTL_EBROKER;
  }
  if (reason < 0) {
    lost_connection(c, "while subscribing");
    return HGCTL_EBROKER;
  }
  if (reason >= 0x80) {
    render_error(HGCTL_CODE_BROKER, "%s refused the subscription to %s: %s", c->where, filter,
                 reason_text(reason));
    return HGCTL_EBROKER;
  }
  return HGCTL_OK;
}

/* Paho copies string and binary values into the property list. */
static int add_prop(MQTTProperties *props, enum MQTTPropertyCodes id, const void *data, size_t len,
                    const char *value)
{
  MQTTProperty p;
  memset(&p, 0, sizeof(p));
  p.identifier = id;
  p.value.data.data = (char *)data;
  p.value.data.len = (int)len;
  if (value) {
    p.value.value.data = (char *)value;
    p.value.value.len = (int)strlen(value);
  }
  return MQTTProperties_add(props, &p) == 0 ? 0 : -1;
}

static int add_u32_prop(MQTTProperties *props, enum MQTTPropertyCodes id, unsigned v)
{
  MQTTProperty p;
  memset(&p, 0, sizeof(p));
  p.identifier = id;
  p.value.integer4 = v;
  return MQTTProperties_add(props, &p) == 0 ? 0 : -1;
}

static int add_user_prop(MQTTProperties *props, const char *name, const char *value)
{
  return add_prop(props, MQTTPROPERTY_CODE_USER_PROPERTY, name, strlen(name), value);
}

/* The four hg-* user properties over topic and payload (section 2). */
static int add_signature(const struct request_conn *c, MQTTProperties *props, const char *topic,
                         const char *payload, size_t len)
{
  char ts[24], nonce[33], sig[CRYPTO_SHA256_HEX_LEN + 1];
  snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
  if (reqsig_nonce(nonce) < 0 ||
      reqsig_sign(c->cfg->key_secret, topic, ts, nonce, payload, len, sig) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "cannot sign the message (crypto failure)");
    return -1;
  }
  if (add_user_prop(props, "hg-key", c->cfg->key_id) < 0 || add_user_prop(props, "hg-ts", ts) < 0 ||
      add_user_prop(props, "hg-nonce", nonce) < 0 || add_user_prop(props, "hg-sig", sig) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    return -1;
  }
  return 0;
}

static int publish(struct request_conn *c, const char *topic, const char *payload, size_t len,
                   MQTTProperties *props)
{
  MQTTClient_deliveryToken token = 0;
  c->pub_token = -1;
  c->ack_token = -1;
  MQTTResponse resp = MQTTClient_publish5(c->client, topic, (int)len, payload, 1, 0, props, &token);
  int reason = (int)resp.reasonCode;
  MQTTResponse_free(resp);
  if (reason < 0) {
    lost_connection(c, "while publishing");
    return HGCTL_EBROKER;
  }
  if (reason >= 0x80) {
    render_error(HGCTL_CODE_BROKER, "cannot publish to %s: %s", topic, reason_text(reason));
    return HGCTL_EBROKER;
  }
  c->pub_token = token;
  return HGCTL_OK;
}

/* The broker's PUBACK, once seen: refused, or nobody subscribed. */
static int check_puback(struct request_conn *c, const char *topic, bool request)
{
  if (c->pub_token < 0 || c->ack_token != c->pub_token)
    return HGCTL_OK;
  int reason = c->ack_reason;
  c->ack_token = -1;
  if (reason == MQTTREASONCODE_NO_MATCHING_SUBSCRIBERS) {
    /* hgd keeps a persistent session: even while it is down its
     * subscription matches. No match means no hgd uses this topic root. */
    if (request)
      render_error(HGCTL_CODE_NO_DAEMON,
                   "no hgd is subscribed to %s (is hgd running with topic root %s?)", topic,
                   c->cfg->topic_root);
    else
      render_error(HGCTL_CODE_NO_DAEMON,
                   "no hgd is subscribed to %s: the broker dropped the escalation (is hgd "
                   "running with topic root %s?)",
                   topic, c->cfg->topic_root);
    return HGCTL_EBROKER;
  }
  if (reason >= 0x80) {
    render_error(HGCTL_CODE_BROKER, "%s refused the publish to %s: %s", c->where, topic,
                 reason_text(reason));
    return HGCTL_EBROKER;
  }
  return HGCTL_OK;
}

static bool corr_matches(MQTTClient_message *m, const uint8_t *corr)
{
  MQTTProperty *p = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
  return p && p->value.data.len == CORR_LEN && memcmp(p->value.data.data, corr, CORR_LEN) == 0;
}

/* An error code from hgd, printed as is only when it looks like one. */
static const char *safe_code(const cJSON *code)
{
  if (!cJSON_IsString(code))
    return "ERROR";
  const char *s = code->valuestring;
  size_t n = strlen(s);
  if (n == 0 || n > 40 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n)
    return "ERROR";
  return s;
}

static int handle_reply(MQTTClient_message *m, cJSON **data)
{
  char err[128];
  cJSON *reply =
      jsonutil_parse(m->payload, (size_t)m->payloadlen, REQUEST_REPLY_MAX, err, sizeof(err));
  int rc = HGCTL_EDAEMON;
  if (!reply) {
    render_error(HGCTL_CODE_BAD_REPLY, "hgd's reply is not JSON: %s", err);
    return HGCTL_EDAEMON;
  }
  const cJSON *success = jsonutil_get(reply, "success");
  if (!cJSON_IsObject(reply) || !cJSON_IsBool(success)) {
    render_error(HGCTL_CODE_BAD_REPLY, "hgd's reply has no boolean \"success\"");
    goto out;
  }
  if (cJSON_IsTrue(success)) {
    cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(reply, "data");
    if (d && cJSON_IsNull(d)) {
      cJSON_Delete(d);
      d = NULL;
    }
    *data = d;
    rc = HGCTL_OK;
    goto out;
  }
  const cJSON *e = jsonutil_get(reply, "error");
  const cJSON *msg = e ? jsonutil_get(e, "message") : NULL;
  render_error(safe_code(e ? jsonutil_get(e, "code") : NULL), "%s",
               cJSON_IsString(msg) ? msg->valuestring : "hgd gave no message");
out:
  cJSON_Delete(reply);
  return rc;
}

int request_call(struct request_conn *c, const char *action, const cJSON *params, cJSON **data)
{
  MQTTProperties props = MQTTProperties_initializer;
  char *payload = NULL, *topic = NULL, *reply_topic = NULL;
  char hex[2 * CORR_LEN + 1];
  uint8_t corr[CORR_LEN];
  size_t root_len = strlen(c->cfg->topic_root);
  int rc = HGCTL_EBROKER;

  *data = NULL;
  topic = malloc(root_len + strlen(action) + 16);
  reply_topic = malloc(root_len + sizeof(hex) + 16);
  payload = jsonutil_print(params);
  if (!topic || !reply_topic || !payload) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    goto out;
  }
  sprintf(topic, "%s/webhook/%s", c->cfg->topic_root, action);
  if (random_hex(hex, CORR_LEN) < 0 || crypto_random(corr, sizeof(corr)) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "no random numbers");
    goto out;
  }
  sprintf(reply_topic, "%s/reply/%s", c->cfg->topic_root, hex);

  /* Subscribed before the request goes out, so no reply can be missed. */
  if ((rc = subscribe(c, reply_topic)) != HGCTL_OK)
    goto out;

  unsigned expiry = (unsigned)ceil(c->cfg->timeout);
  if (expiry < REQUEST_MIN_EXPIRY_S)
    expiry = REQUEST_MIN_EXPIRY_S;
  if (add_prop(&props, MQTTPROPERTY_CODE_RESPONSE_TOPIC, reply_topic, strlen(reply_topic), NULL) <
          0 ||
      add_prop(&props, MQTTPROPERTY_CODE_CORRELATION_DATA, corr, sizeof(corr), NULL) < 0 ||
      add_u32_prop(&props, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL, expiry) < 0) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    rc = HGCTL_EBROKER;
    goto out;
  }
  if (add_signature(c, &props, topic, payload, strlen(payload)) < 0) {
    rc = HGCTL_EBROKER;
    goto out;
  }
  if ((rc = publish(c, topic, payload, strlen(payload), &props)) != HGCTL_OK)
    goto out;

  for (;;) {
    char *t = NULL;
    int tlen = 0;
    MQTTClient_message *m = NULL;
    int64_t left = remaining_ms(c);
    if (left == 0) {
      render_error(HGCTL_CODE_TIMEOUT, "no reply from hgd within %g s", c->cfg->timeout);
      rc = HGCTL_EBROKER;
      goto out;
    }
    int r = MQTTClient_receive(c->client, &t, &tlen, &m,
                               (unsigned long)(left < RECEIVE_SLICE_MS ? left : RECEIVE_SLICE_MS));
    if ((rc = check_puback(c, topic, true)) != HGCTL_OK) {
      if (m)
        MQTTClient_freeMessage(&m);
      MQTTClient_free(t);
      goto out;
    }
    if (m) {
      bool ours = (size_t)tlen == strlen(reply_topic) &&
                  memcmp(t, reply_topic, (size_t)tlen) == 0 && corr_matches(m, corr);
      if (ours)
        rc = handle_reply(m, data);
      MQTTClient_freeMessage(&m);
      MQTTClient_free(t);
      if (ours)
        goto out;
      continue;
    }
    MQTTClient_free(t);
    if (r != MQTTCLIENT_SUCCESS && r != MQTTCLIENT_TOPICNAME_TRUNCATED &&
        !MQTTClient_isConnected(c->client)) {
      lost_connection(c, "while waiting for the reply");
      rc = HGCTL_EBROKER;
      goto out;
    }
  }
out:
  MQTTProperties_free(&props);
  if (payload) {
    /* The upsert payload holds the webhook's secret. */
    crypto_wipe(payload, strlen(payload));
    free(payload);
  }
  free(topic);
  free(reply_topic);
  return rc;
}

int request_publish_signed(struct request_conn *c, const char *topic, const cJSON *payload)
{
  MQTTProperties props = MQTTProperties_initializer;
  char *text = jsonutil_print(payload);
  int rc = HGCTL_EBROKER;

  if (!text) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    goto out;
  }
  if (add_signature(c, &props, topic, text, strlen(text)) < 0)
    goto out;
  if ((rc = publish(c, topic, text, strlen(text), &props)) != HGCTL_OK)
    goto out;
  int64_t left = remaining_ms(c);
  int r =
      MQTTClient_waitForCompletion(c->client, c->pub_token, (unsigned long)(left > 0 ? left : 1));
  if (r != MQTTCLIENT_SUCCESS) {
    if (!MQTTClient_isConnected(c->client))
      lost_connection(c, "before it acknowledged the escalation");
    else
      render_error(HGCTL_CODE_TIMEOUT, "the broker did not acknowledge the escalation within %g s",
                   c->cfg->timeout);
    rc = HGCTL_EBROKER;
    goto out;
  }
  rc = check_puback(c, topic, false);
out:
  MQTTProperties_free(&props);
  free(text);
  return rc;
}

int request_status(struct request_conn *c, const char *filter, bool watch, request_status_cb *cb,
                   void *ctx)
{
  struct sigaction sa, old_int, old_term;
  int rc;
  int64_t settle_end;

  if ((rc = subscribe(c, filter)) != HGCTL_OK)
    return rc;
  if (watch) {
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  settle_end = clock_mono_ms() + STATUS_SETTLE_MS;
  if (settle_end > c->deadline)
    settle_end = c->deadline;

  for (;;) {
    char *t = NULL;
    int tlen = 0;
    MQTTClient_message *m = NULL;
    int64_t now = clock_mono_ms();
    int64_t slice = RECEIVE_SLICE_MS;

    if (watch && stop_signal) {
      rc = HGCTL_OK;
      break;
    }
    if (!watch) {
      if (now >= settle_end) {
        rc = HGCTL_OK;
        break;
      }
      if (settle_end - now < slice)
        slice = settle_end - now;
    }
    int r = MQTTClient_receive(c->client, &t, &tlen, &m, (unsigned long)slice);
    if (m) {
      if (m->payloadlen > 0) {
        char err[128], *topic = strndup(t, (size_t)tlen);
        cJSON *doc =
            jsonutil_parse(m->payload, (size_t)m->payloadlen, STATUS_DOC_MAX, err, sizeof(err));
        if (!topic) {
          render_error(HGCTL_CODE_INTERNAL, "out of memory");
          rc = HGCTL_EDAEMON;
        } else if (!doc) {
          fprintf(stderr, "hgctl: warning: %s: not a JSON document (%s)\n", topic, err);
          rc = HGCTL_OK;
        } else {
          rc = cb(ctx, topic, doc);
        }
        cJSON_Delete(doc);
        free(topic);
        if (rc != HGCTL_OK) {
          MQTTClient_freeMessage(&m);
          MQTTClient_free(t);
          break;
        }
      }
      MQTTClient_freeMessage(&m);
      MQTTClient_free(t);
      /* Documents still arriving: give the rest a moment more. */
      if (!watch && clock_mono_ms() + STATUS_TAIL_MS > settle_end) {
        settle_end = clock_mono_ms() + STATUS_TAIL_MS;
        if (settle_end > c->deadline)
          settle_end = c->deadline;
      }
      continue;
    }
    MQTTClient_free(t);
    if (r != MQTTCLIENT_SUCCESS && !MQTTClient_isConnected(c->client)) {
      if (watch && stop_signal) {
        rc = HGCTL_OK;
        break;
      }
      lost_connection(c, watch ? "while watching status" : "while reading status");
      rc = HGCTL_EBROKER;
      break;
    }
  }
  if (watch) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
  }
  return rc;
}
