/* hgbench.c — the C side of the benchmark harness (bench/run.sh).
 *
 *   hgbench pub   publish N signed escalations at QoS 1, at a fixed rate or
 *                 flat out, with the publish time folded into each eventId
 *   hgbench sub   the broker-alone ceiling: subscribe at QoS 1, acknowledge,
 *                 record the arrival time of every eventId
 *   hgbench rtt   round trip of signed `get` requests from a connected client
 *   hgbench store store load time and upsert cost at 1k/10k/100k rows
 *   hgbench append one durable outbox-sized journal append, without and with
 *                 the zero-filled reserve (side by side, interleaved)
 *
 * eventId layout, so that any receiver's log gives the latency on its own:
 *   TTTTTTTT-SSSS-4SSS-8SSS-UUUUUUUUUUUU
 * T = run tag, S = sequence number (40 bits), U = publish time in µs after
 * the publisher's t0 (printed as t0_us, Unix µs). Receipt lines are
 * "<unix seconds with fraction> <eventId>", as nginx's access log writes. */
#include <MQTTAsync.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "journal.h"
#include "log.h"
#include "reqsig.h"
#include "store.h"
#include "uuid.h"
#include "webhook.h"

static int64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hgbench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* --- options ------------------------------------------------------------ */

struct opts {
  int port;
  long n;
  double rate;
  int inflight;
  const char *agent;
  const char *key_id;
  const char *secret;
  const char *tag;
  const char *out;
  const char *topic;
  const char *id;
  const char *dir;
  const char *sizes;
  int upserts;
  int qos;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
  for(int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
    if(OPT("--port"))
      o->port = atoi(v);
    else if(OPT("--n"))
      o->n = atol(v);
    else if(OPT("--rate"))
      o->rate = atof(v);
    else if(OPT("--inflight"))
      o->inflight = atoi(v);
    else if(OPT("--agent"))
      o->agent = v;
    else if(OPT("--key-id"))
      o->key_id = v;
    else if(OPT("--secret"))
      o->secret = v;
    else if(OPT("--tag"))
      o->tag = v;
    else if(OPT("--out"))
      o->out = v;
    else if(OPT("--topic"))
      o->topic = v;
    else if(OPT("--id"))
      o->id = v;
    else if(OPT("--dir"))
      o->dir = v;
    else if(OPT("--sizes"))
      o->sizes = v;
    else if(OPT("--upserts"))
      o->upserts = atoi(v);
    else if(OPT("--qos"))
      o->qos = atoi(v);
    else
      die("unknown or incomplete option %s", a);
#undef OPT
  }
}

/* --- a small synchronous face on MQTTAsync --------------------------------- */

struct conn {
  MQTTAsync c;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int state; /* 0 pending, 1 ok, -1 failed */
  int recv_max;
  int inflight;
  long acked;
  long failed;
  MQTTAsync_messageArrived *on_msg;
  void *msg_ctx;
};

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
  struct conn *k = ctx;
  pthread_mutex_lock(&k->mu);
  k->recv_max = 65535;
  for(int i = 0; r && i < r->properties.count; i++)
    if(r->properties.array[i].identifier == MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)
      k->recv_max = r->properties.array[i].value.integer2;
  k->state = 1;
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

static void on_fail(void *ctx, MQTTAsync_failureData5 *r)
{
  struct conn *k = ctx;
  pthread_mutex_lock(&k->mu);
  k->state = -1;
  fprintf(stderr, "hgbench: MQTT call failed: code %d %s\n", r ? r->code : 0,
          r && r->message ? r->message : "");
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData5 *r)
{
  (void)r;
  struct conn *k = ctx;
  pthread_mutex_lock(&k->mu);
  k->state = 1;
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

static void on_lost(void *ctx, char *cause)
{
  (void)ctx;
  fprintf(stderr, "hgbench: connection lost: %s\n", cause ? cause : "?");
}

static int wait_state(struct conn *k, int secs)
{
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += secs;
  pthread_mutex_lock(&k->mu);
  while(k->state == 0)
    if(pthread_cond_timedwait(&k->cv, &k->mu, &dl) == ETIMEDOUT)
      break;
  int s = k->state;
  pthread_mutex_unlock(&k->mu);
  return s;
}

/* Paho leaves Nagle on: a request written right after an ACK would wait
 * for the broker's delayed ACK (40 ms). Set TCP_NODELAY on our sockets. */
static void nodelay_all_sockets(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  while(d && (de = readdir(d))) {
    int fd = atoi(de->d_name), type = 0, one = 1;
    socklen_t len = sizeof(type);
    if(fd > 2 && fd != dirfd(d) && !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) &&
       type == SOCK_STREAM)
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if(d)
    closedir(d);
}

static void conn_open(struct conn *k, int port, const char *id, int cleanstart,
                      MQTTAsync_messageArrived *ma, void *ctx)
{
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
  MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
  MQTTProperties props = MQTTProperties_initializer;
  MQTTProperty p = {0};
  char uri[64];

  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->cv, NULL);
  k->on_msg = ma;
  k->msg_ctx = ctx;
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
  co.maxBufferedMessages = 1000000;
  if(MQTTAsync_createWithOptions(&k->c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
     MQTTASYNC_SUCCESS)
    die("cannot create MQTT client");
  MQTTAsync_setCallbacks(k->c, ctx ? ctx : k, on_lost, ma, NULL);
  if(!cleanstart) {
    p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
    p.value.integer4 = 3600;
    MQTTProperties_add(&props, &p);
    cn.connectProperties = &props;
  }
  cn.cleanstart = cleanstart;
  cn.keepAliveInterval = 60;
  cn.onSuccess5 = on_connect_ok;
  cn.onFailure5 = on_fail;
  cn.context = k;
  k->state = 0;
  if(MQTTAsync_connect(k->c, &cn) != MQTTASYNC_SUCCESS || wait_state(k, 10) != 1)
    die("cannot connect to 127.0.0.1:%d", port);
  MQTTProperties_free(&props);
  nodelay_all_sockets();
}

static void conn_subscribe(struct conn *k, const char *topic)
{
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  ro.onSuccess5 = on_sub_ok;
  ro.onFailure5 = on_fail;
  ro.context = k;
  k->state = 0;
  if(MQTTAsync_subscribe(k->c, topic, 1, &ro) != MQTTASYNC_SUCCESS || wait_state(k, 10) != 1)
    die("cannot subscribe to %s", topic);
}

static void conn_close(struct conn *k)
{
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
  d.timeout = 1000;
  MQTTAsync_disconnect(k->c, &d);
  usleep(100000);
  MQTTAsync_destroy(&k->c);
}

static void add_user_prop(MQTTProperties *props, const char *name, const char *value)
{
  MQTTProperty p = {0};
  p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
  p.value.data.data = (char *)name;
  p.value.data.len = (int)strlen(name);
  p.value.value.data = (char *)value;
  p.value.value.len = (int)strlen(value);
  MQTTProperties_add(props, &p);
}

/* Sign topic+payload (PROTOCOL.md section 2) into props. */
static void sign_props(MQTTProperties *props, const char *key_id, const char *secret,
                       const char *topic, const char *payload, size_t len)
{
  char ts[24], nonce[33], sig[CRYPTO_SHA256_HEX_LEN + 1];
  snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
  if(reqsig_nonce(nonce) != 0 || reqsig_sign(secret, topic, ts, nonce, payload, len, sig) != 0)
    die("signing failed");
  add_user_prop(props, "hg-key", key_id);
  add_user_prop(props, "hg-ts", ts);
  add_user_prop(props, "hg-nonce", nonce);
  add_user_prop(props, "hg-sig", sig);
}

/* --- pub ------------------------------------------------------------------ */

static void on_pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
  (void)r;
  struct conn *k = ctx;
  pthread_mutex_lock(&k->mu);
  k->inflight--;
  k->acked++;
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
  (void)r;
  struct conn *k = ctx;
  pthread_mutex_lock(&k->mu);
  k->inflight--;
  k->failed++;
  pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

static int cmd_pub(struct opts *o)
{
  struct conn k = {0};
  char topic[160], payload[1024], clientid[64], eid[UUID_STR_LEN + 1];
  unsigned tag = (unsigned)strtoul(o->tag ? o->tag : "b0b0b0b0", NULL, 16);

  if(!o->agent || !o->key_id || !o->secret || o->n <= 0)
    die("pub needs --agent, --key-id, --secret and --n");
  snprintf(clientid, sizeof(clientid), "hgbench-pub-%d", (int)getpid());
  conn_open(&k, o->port, clientid, 1, NULL, NULL);
  int bound = o->inflight > 0 ? o->inflight : 1000;
  if(bound > k.recv_max)
    bound = k.recv_max; /* never outrun the broker's Receive Maximum */
  snprintf(topic, sizeof(topic), "hg/v1/escalation/%s", o->agent);

  int64_t t0 = now_us();
  int64_t m0 = mono_ns();
  for(long i = 0; i < o->n; i++) {
    if(o->rate > 0) {
      int64_t due = m0 + (int64_t)((double)i * 1e9 / o->rate);
      struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
      while(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    }
    pthread_mutex_lock(&k.mu);
    while(k.inflight >= bound)
      pthread_cond_wait(&k.cv, &k.mu);
    k.inflight++;
    pthread_mutex_unlock(&k.mu);

    int64_t off = now_us() - t0;
    uint64_t seq = (uint64_t)i;
    snprintf(eid, sizeof(eid), "%08x-%04x-4%03x-8%03x-%012llx", tag,
             (unsigned)((seq >> 24) & 0xffff), (unsigned)((seq >> 12) & 0xfff),
             (unsigned)(seq & 0xfff), (unsigned long long)off);
    int len = snprintf(payload, sizeof(payload),
                       "{\"eventId\":\"%s\",\"callerNumber\":\"+15551230000\","
                       "\"callSid\":\"CA%032lx\",\"reason\":\"requested_human\","
                       "\"summary\":\"Caller asks for a human about a disputed invoice\","
                       "\"agentSessionId\":\"sess-%ld\",\"fields\":{\"accountNumber\":\"AC-%ld\"}}",
                       eid, (unsigned long)i, i, 10000 + i);
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = payload;
    msg.payloadlen = len;
    msg.qos = o->qos ? o->qos : 1;
    sign_props(&msg.properties, o->key_id, o->secret, topic, payload, (size_t)len);
    ro.onSuccess5 = on_pub_ok;
    ro.onFailure5 = on_pub_fail;
    ro.context = &k;
    int rc;
    while((rc = MQTTAsync_sendMessage(k.c, topic, &msg, &ro)) == MQTTASYNC_MAX_BUFFERED_MESSAGES)
      usleep(1000);
    MQTTProperties_free(&msg.properties);
    if(rc != MQTTASYNC_SUCCESS)
      die("publish failed: %d", rc);
  }
  int64_t sent_us = now_us() - t0;
  pthread_mutex_lock(&k.mu);
  while(k.inflight > 0) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    if(pthread_cond_timedwait(&k.cv, &k.mu, &dl) == ETIMEDOUT)
      break;
  }
  long acked = k.acked, failed = k.failed;
  pthread_mutex_unlock(&k.mu);
  int64_t acked_us = now_us() - t0;
  printf("{\"t0_us\":%lld,\"published\":%ld,\"acked\":%ld,\"failed\":%ld,\"send_secs\":%.6f,"
         "\"ack_secs\":%.6f,\"inflight_bound\":%d,\"receive_maximum\":%d}\n",
         (long long)t0, o->n, acked, failed, sent_us / 1e6, acked_us / 1e6, bound, k.recv_max);
  fflush(stdout);
  conn_close(&k);
  return acked == o->n ? 0 : 1;
}

/* --- sub (broker ceiling) ---------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static void on_term(int sig)
{
  (void)sig;
  g_stop = 1;
}

struct sub {
  struct conn k;
  pthread_mutex_t mu;
  FILE *out;
};

/* Only acknowledges: notes the arrival time and the eventId, returns 1. */
static int sub_msg(void *ctx, char *topic, int topiclen, MQTTAsync_message *m)
{
  (void)topiclen;
  struct sub *s = ctx;
  int64_t t = now_us();
  const char *p = memmem(m->payload, (size_t)m->payloadlen, "\"eventId\":\"", 11);
  if(p && (const char *)m->payload + m->payloadlen - p >= 11 + UUID_STR_LEN) {
    pthread_mutex_lock(&s->mu);
    fprintf(s->out, "%lld.%06lld %.36s\n", (long long)(t / 1000000), (long long)(t % 1000000),
            p + 11);
    pthread_mutex_unlock(&s->mu);
  }
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static int cmd_sub(struct opts *o)
{
  struct sub s = {0};
  char clientid[64];
  if(!o->out || !(s.out = fopen(o->out, "w")))
    die("sub needs --out FILE");
  pthread_mutex_init(&s.mu, NULL);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  snprintf(clientid, sizeof(clientid), "%s", o->id ? o->id : "hgbench-sub");
  conn_open(&s.k, o->port, clientid, 1, sub_msg, &s);
  conn_subscribe(&s.k, o->topic ? o->topic : "hg/v1/escalation/+");
  printf("ready\n");
  fflush(stdout);
  /* Until SIGTERM (at most an hour); the log is flushed every 50 ms. */
  for(int i = 0; !g_stop && i < 72000; i++) {
    usleep(50000);
    pthread_mutex_lock(&s.mu);
    fflush(s.out);
    pthread_mutex_unlock(&s.mu);
  }
  conn_close(&s.k);
  fclose(s.out);
  return 0;
}

/* --- rtt (get round trip) ------------------------------------------------------ */

struct rtt {
  struct conn k;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long want; /* correlation number awaited */
  int got;
  int ok;
};

static int rtt_msg(void *ctx, char *topic, int topiclen, MQTTAsync_message *m)
{
  (void)topiclen;
  struct rtt *r = ctx;
  long corr = -1;
  for(int i = 0; i < m->properties.count; i++) {
    MQTTProperty *p = &m->properties.array[i];
    if(p->identifier == MQTTPROPERTY_CODE_CORRELATION_DATA && p->value.data.len < 30) {
      char b[32];
      memcpy(b, p->value.data.data, (size_t)p->value.data.len);
      b[p->value.data.len] = '\0';
      corr = atol(b);
    }
  }
  pthread_mutex_lock(&r->mu);
  if(corr == r->want) {
    r->got = 1;
    r->ok = memmem(m->payload, (size_t)m->payloadlen, "\"success\":true", 14) != NULL;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmd_rtt(struct opts *o)
{
  struct rtt r = {0};
  char clientid[64], reply[128], payload[128], corr[32];
  const char *topic = "hg/v1/webhook/get";
  long n = o->n > 0 ? o->n : 1000;
  int64_t *lat = calloc((size_t)n, sizeof(*lat));
  long bad = 0;

  if(!o->agent || !o->key_id || !o->secret || !lat)
    die("rtt needs --agent, --key-id and --secret");
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  snprintf(clientid, sizeof(clientid), "hgbench-rtt-%d", (int)getpid());
  snprintf(reply, sizeof(reply), "hgbench/reply/%d", (int)getpid());
  r.want = -1;
  conn_open(&r.k, o->port, clientid, 1, rtt_msg, &r);
  conn_subscribe(&r.k, reply);
  int len = snprintf(payload, sizeof(payload), "{\"agentId\":\"%s\"}", o->agent);
  for(long i = -20; i < n; i++) { /* 20 warm-up requests */
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTProperty p = {0};
    snprintf(corr, sizeof(corr), "%ld", i + 100);
    msg.payload = payload;
    msg.payloadlen = len;
    msg.qos = 1;
    p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
    p.value.data.data = reply;
    p.value.data.len = (int)strlen(reply);
    MQTTProperties_add(&msg.properties, &p);
    p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
    p.value.data.data = corr;
    p.value.data.len = (int)strlen(corr);
    MQTTProperties_add(&msg.properties, &p);
    sign_props(&msg.properties, o->key_id, o->secret, topic, payload, (size_t)len);
    pthread_mutex_lock(&r.mu);
    r.want = i + 100;
    r.got = 0;
    pthread_mutex_unlock(&r.mu);
    int64_t t = mono_ns();
    if(MQTTAsync_sendMessage(r.k.c, topic, &msg, &ro) != MQTTASYNC_SUCCESS)
      die("publish failed");
    MQTTProperties_free(&msg.properties);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&r.mu);
    while(!r.got)
      if(pthread_cond_timedwait(&r.cv, &r.mu, &dl) == ETIMEDOUT)
        break;
    int got = r.got, ok = r.ok;
    pthread_mutex_unlock(&r.mu);
    if(!got)
      die("no reply within 10 s");
    if(!ok)
      bad++;
    if(i >= 0)
      lat[i] = mono_ns() - t;
  }
  conn_close(&r.k);
  qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
  double sum = 0;
  for(long i = 0; i < n; i++)
    sum += (double)lat[i];
  printf("{\"n\":%ld,\"errors\":%ld,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}"
         "\n",
         n, bad, sum / n / 1e6, lat[n / 2] / 1e6, lat[(n * 99) / 100] / 1e6, lat[n - 1] / 1e6);
  free(lat);
  return 0;
}

/* --- store ------------------------------------------------------------------ */

static void make_row(struct webhook *w, long i)
{
  char agent[UUID_STR_LEN + 1], url[128];
  memset(w, 0, sizeof(*w));
  snprintf(agent, sizeof(agent), "%08lx-0000-4000-8000-%012lx", (unsigned long)i & 0xffffffffUL,
           (unsigned long)i & 0xffffffffffffUL);
  memcpy(w->agent_id, agent, sizeof(agent));
  if(uuid_v4(w->id) != 0)
    die("uuid");
  snprintf(url, sizeof(url), "https://hooks.example.com/genie/%ld", i);
  w->url = strdup(url);
  w->secret = strdup("whsec_0123456789abcdef0123456789abcdef");
  w->secret_header = strdup(WEBHOOK_DEFAULT_HEADER);
  w->is_active = true;
  w->created_ms = w->updated_ms = 1767225600000LL;
}

/* Writes <dir>/webhooks.jsonl with rows 0..rows-1 directly (the same line
 * store_put appends), so that building 100k rows does not take 100k fsyncs. */
static void write_rows(const char *dir, long rows)
{
  char path[600];
  mkdir(dir, 0700);
  snprintf(path, sizeof(path), "%s/webhooks.jsonl", dir);
  FILE *f = fopen(path, "w");
  if(!f)
    die("cannot write %s", path);
  for(long i = 0; i < rows; i++) {
    struct webhook w;
    make_row(&w, i);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "op", "put");
    cJSON_AddItemToObject(rec, "row", webhook_to_json(&w, true));
    char *line = cJSON_PrintUnformatted(rec);
    fprintf(f, "%s\n", line);
    free(line);
    cJSON_Delete(rec);
    webhook_clear(&w);
  }
  fflush(f);
  fsync(fileno(f));
  fclose(f);
  chmod(path, 0600);
}

static int cmd_store(struct opts *o)
{
  const char *sizes = o->sizes ? o->sizes : "1000,10000,100000";
  int m = o->upserts > 0 ? o->upserts : 300;
  char *list = strdup(sizes), *save = NULL;
  int first = 1;

  if(!o->dir)
    die("store needs --dir");
  log_set_level(LOG_LVL_ERROR);
  printf("[");
  for(char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    long rows = atol(tok);
    char dir[512], err[512];
    struct store *s = NULL;
    int64_t *lat = calloc((size_t)m, sizeof(*lat));
    snprintf(dir, sizeof(dir), "%s/store-%ld", o->dir, rows);
    write_rows(dir, rows);
    /* Drop nothing from the page cache: the load figure is CPU (parse and
     * index), which is what hgd pays at every start on a warm machine. */
    int64_t t = mono_ns();
    if(store_open(dir, &s, err, sizeof(err)) != 0)
      die("store_open: %s", err);
    double load_ms = (mono_ns() - t) / 1e6;
    if((long)store_count(s) != rows)
      die("loaded %zu rows, wanted %ld", store_count(s), rows);
    /* Upserts of existing rows, spread over the table. */
    for(int i = 0; i < m; i++) {
      struct webhook w;
      make_row(&w, (long)(((uint64_t)i * 2654435761u) % (uint64_t)rows));
      t = mono_ns();
      if(store_put(s, &w, err, sizeof(err)) != 0)
        die("store_put: %s", err);
      lat[i] = mono_ns() - t;
      webhook_clear(&w);
    }
    qsort(lat, (size_t)m, sizeof(*lat), cmp_i64);
    double sum = 0;
    for(int i = 0; i < m; i++)
      sum += (double)lat[i];
    /* And the in-memory lookup, for scale. */
    t = mono_ns();
    for(int i = 0; i < 10000; i++) {
      struct webhook w = {0};
      char agent[UUID_STR_LEN + 1];
      long k = (long)(((uint64_t)i * 40503u) % (uint64_t)rows);
      snprintf(agent, sizeof(agent), "%08lx-0000-4000-8000-%012lx", (unsigned long)k & 0xffffffffUL,
               (unsigned long)k & 0xffffffffffffUL);
      if(store_get(s, agent, &w) != 1)
        die("store_get missed %s", agent);
      webhook_clear(&w);
    }
    double get_us = (mono_ns() - t) / 1e3 / 10000;
    store_close(s);
    printf("%s{\"rows\":%ld,\"load_ms\":%.2f,\"upserts\":%d,\"upsert_mean_ms\":%.4f,"
           "\"upsert_p50_ms\":%.4f,\"upsert_p99_ms\":%.4f,\"get_us\":%.3f}",
           first ? "" : ",", rows, load_ms, m, sum / m / 1e6, lat[m / 2] / 1e6,
           lat[(m * 99) / 100] / 1e6, get_us);
    fflush(stdout);
    first = 0;
    free(lat);
  }
  printf("]\n");
  free(list);
  return 0;
}

static double thread_cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The cost of one durable outbox-sized append through the journal itself,
 * without and with the zero-filled reserve (journal_reserve), rounds
 * interleaved so that both see the same disk: the fdatasync every accepted
 * escalation waits for on Paho's receive thread (docs/BENCHMARKS.md). */
static int cmd_append(struct opts *o)
{
  long n = o->n > 0 ? o->n : 2000;
  char line[600];
  double wall[2] = {0}, cpu[2] = {0};
  const int rounds = 4;

  if(!o->dir)
    die("append needs --dir");
  log_set_level(LOG_LVL_ERROR);
  memset(line, 'x', sizeof(line));
  memcpy(line, "{\"t\":\"bench\",\"x\":\"", 18);
  memcpy(line + sizeof(line) - 2, "\"}", 2);
  for(int r = 0; r < 2 * rounds; r++) {
    int reserve = r % 2;
    char dir[512], err[512];
    struct journal *j = NULL;
    snprintf(dir, sizeof(dir), "%s/append-%d", o->dir, r);
    if(journal_open(dir, "bench.jsonl", &j, err, sizeof(err)) != 0)
      die("journal_open: %s", err);
    journal_reserve(j, reserve ? 1024 * 1024 : 0);
    int64_t t = mono_ns();
    double c = thread_cpu_s();
    for(long i = 0; i < n; i++)
      if(journal_append(j, line, sizeof(line), true, NULL, err, sizeof(err)) != 0)
        die("journal_append: %s", err);
    wall[reserve] += (mono_ns() - t) / 1e3;
    cpu[reserve] += (thread_cpu_s() - c) * 1e6;
    journal_close(j);
  }
  printf("{\"appends\":%ld,\"bytes\":%zu,\"plain_us\":%.1f,\"plain_cpu_us\":%.1f,"
         "\"reserve_us\":%.1f,\"reserve_cpu_us\":%.1f}\n",
         n * rounds, sizeof(line) + 1, wall[0] / (n * rounds), cpu[0] / (n * rounds),
         wall[1] / (n * rounds), cpu[1] / (n * rounds));
  return 0;
}

int main(int argc, char **argv)
{
  struct opts o = {.port = 1883};
  if(argc < 2)
    die("usage: hgbench pub|sub|rtt|store|append [options]");
  parse_opts(argc, argv, &o);
  if(!strcmp(argv[1], "pub"))
    return cmd_pub(&o);
  if(!strcmp(argv[1], "sub"))
    return cmd_sub(&o);
  if(!strcmp(argv[1], "rtt"))
    return cmd_rtt(&o);
  if(!strcmp(argv[1], "store"))
    return cmd_store(&o);
  if(!strcmp(argv[1], "append"))
    return cmd_append(&o);
  die("unknown command %s", argv[1]);
  return 2;
}
