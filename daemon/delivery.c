/* delivery.c — the delivery engine (see delivery.h).
 *
 * One thread owns one curl_multi handle and everything below the "engine
 * state" line of struct delivery; other threads only touch the submission
 * lists, the flags and the counters, under d->mu, and wake the thread with
 * curl_multi_wakeup. No lock is held across a curl call or a hook call.
 *
 * A delivery job moves between:
 *   submitted (locked list) -> heap (waiting for due_mono) or ready
 *   ready -> in flight (curl) -> done | heap (retry)
 *   ready -> parked on its host (per-host limit) -> unblocked -> in flight
 * Jobs over the total in-flight limit stay in `ready`. An attempt still
 * unanswered after DELIVERY_SLOW_MS stops counting against that limit (up
 * to DELIVERY_MAX_OPEN in all): receivers that hang, a few ports of one
 * tarpit say, would otherwise hold every slot for the whole request
 * timeout, and every other Genie's delivery would wait behind them. The per-host limit
 * is ours rather than curl's CURLMOPT_MAX_HOST_CONNECTIONS queue because a
 * transfer waiting in curl's queue already runs down its CURLOPT_TIMEOUT
 * (curl issues #437, #4486): an easy handle is only added when it can
 * connect at once. */
#include "delivery.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "clock.h"
#include "crypto.h"
#include "escalation.h"
#include "jsonutil.h"
#include "log.h"
#include "payload.h"
#include "retry.h"
#include "uuid.h"

#ifndef HG_VERSION
#define HG_VERSION "0"
#endif

#define EASY_POOL_MAX 16
#define IDLE_POLL_MS 60000

enum job_kind { JOB_DELIVERY, JOB_TEST, JOB_RETIRE };

struct host;

/* A test reply shows DELIVERY_TEST_BODY_MAX bytes of the body; three more
 * are kept so that the excerpt can tell a character the limit splits (and
 * drop it) from one the body itself cut short. */
#define RESP_KEEP (DELIVERY_TEST_BODY_MAX + 3)

struct job {
  struct job *next;
  struct job *fprev, *fnext; /* the in-flight list */
  enum job_kind kind;
  struct delivery *d;

  struct outbox_entry e; /* JOB_DELIVERY; JOB_RETIRE: agent_id only */
  const char *retired;   /* JOB_DELIVERY in flight when its webhook went: why; JOB_RETIRE: why */
  struct webhook w;      /* JOB_TEST: the row given; JOB_DELIVERY: current row during an attempt */
  void (*done)(void *arg, cJSON *data); /* JOB_TEST */
  void *arg;
  int64_t due_mono; /* heap key */

  /* One attempt. */
  struct host *host; /* in flight on it, parked on it, or holding its slot */
  int attempt;
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  cJSON *payload; /* JOB_TEST: the object sent, handed to done() */
  char sig[CRYPTO_SHA256_HEX_LEN + 1];
  bool is_signed;
  char *resp; /* JOB_TEST: the first RESP_KEEP bytes */
  size_t resplen;
  size_t received;
  bool resp_cut;
  bool head_done; /* the blank line that ends the response's headers came */
  long retry_after; /* -1 when the final response had none */
  int opened;       /* sockets the egress guard let through */
  bool slow;        /* in flight for DELIVERY_SLOW_MS: out of the pool */
  char refusal[128];
  char errbuf[CURL_ERROR_SIZE];
  int64_t t0;
};

struct jlist {
  struct job *head, *tail;
  size_t n;
};

struct host {
  char *key;
  int inflight;
  int refs; /* unparked jobs holding a slot, not yet started */
  struct jlist parked;
};

struct delivery {
  struct delivery_config cfg;
  double *schedule;
  char *cafile;
  struct delivery_hooks hooks;
  struct outbox *ob;
  CURLM *multi;
  pthread_t thread;

  pthread_mutex_t mu;
  struct jlist submitted; /* deliveries and tests, in order */
  bool kick;              /* set with every wakeup: perform may swallow one */
  bool stopping;
  long grace_ms;
  struct delivery_counters counters;

  /* Engine state: engine thread only. */
  struct job **heap;
  size_t nheap, capheap;
  struct jlist ready, unblocked, tests;
  struct host **hosts;
  size_t nhosts, caphosts;
  struct job *flight, *flight_tail; /* every job with an easy handle, newest first */
  int inflight;                      /* deliveries */
  int slow;                          /* of which slow */
  int tests_inflight;
  CURL *pool[EASY_POOL_MAX];
  size_t npool;
};

static void complete_attempt(struct delivery *d, struct job *j, CURLcode rc, bool in_multi);

/* ---- small helpers ---------------------------------------------------- */

static void jl_push(struct jlist *l, struct job *j)
{
  j->next = NULL;
  if (l->tail)
    l->tail->next = j;
  else
    l->head = j;
  l->tail = j;
  l->n++;
}

static struct job *jl_pop(struct jlist *l)
{
  struct job *j = l->head;
  if (!j)
    return NULL;
  l->head = j->next;
  if (!l->head)
    l->tail = NULL;
  l->n--;
  j->next = NULL;
  return j;
}

static uint32_t rnd32(void)
{
  uint32_t r;
  if (crypto_random(&r, sizeof(r)) != 0)
    r = UINT32_MAX / 2; /* no jitter rather than no retry */
  return r;
}

/* A log-safe rendering of s: no quotes, backslashes or control bytes. */
static void log_safe(const char *s, char *out, size_t outsz)
{
  size_t o = 0;
  for (; s && *s && o + 1 < outsz; s++) {
    unsigned char c = (unsigned char)*s;
    out[o++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '_' : (char)c;
  }
  out[o] = '\0';
}

char *delivery_text_excerpt(const char *buf, size_t len, size_t max)
{
  const unsigned char *p = (const unsigned char *)buf;
  size_t n = len < max ? len : max;
  bool cut = len > max;
  char *out = malloc(n * 3 + 1);
  size_t i = 0, o = 0;

  if (!out)
    return NULL;
  while (i < n) {
    unsigned c = p[i];
    size_t need;
    unsigned cp, min;

    if (c >= 0x01 && c < 0x80) {
      out[o++] = (char)c;
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      goto bad;
    }
    if (i + need >= n) {
      /* The sequence does not fit: when the limit split it, drop it. */
      bool cont = cut;
      for (size_t k = i + 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
          cont = false;
      if (cont)
        break;
      goto bad;
    }
    {
      bool ok = true;
      for (size_t k = 1; k <= need; k++) {
        if ((p[i + k] & 0xc0) != 0x80) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (p[i + k] & 0x3f);
      }
      if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        goto bad;
      memcpy(out + o, p + i, need + 1);
      o += need + 1;
      i += need + 1;
      continue;
    }
  bad:
    memcpy(out + o, "\xef\xbf\xbd", 3);
    o += 3;
    i++;
  }
  out[o] = '\0';
  return out;
}

int delivery_host_key(const char *url, char *out, size_t outsz)
{
  const char *sep = strstr(url, "://");
  const char *end;
  size_t n;

  if (sep) {
    end = sep + 3;
    while (*end && *end != '/' && *end != '?' && *end != '#')
      end++;
  } else {
    end = url + strlen(url);
  }
  n = (size_t)(end - url);
  if (n + 1 > outsz)
    return -1;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)tolower((unsigned char)url[i]);
  out[n] = '\0';
  return 0;
}

/* ---- timer heap ------------------------------------------------------- */

static int heap_push(struct delivery *d, struct job *j)
{
  size_t i;
  if (d->nheap == d->capheap) {
    size_t ncap = d->capheap ? d->capheap * 2 : 64;
    struct job **nh = realloc(d->heap, ncap * sizeof(*nh));
    if (!nh)
      return -1;
    d->heap = nh;
    d->capheap = ncap;
  }
  i = d->nheap++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (d->heap[parent]->due_mono <= j->due_mono)
      break;
    d->heap[i] = d->heap[parent];
    i = parent;
  }
  d->heap[i] = j;
  return 0;
}

static struct job *heap_pop(struct delivery *d)
{
  struct job *top, *last;
  size_t i = 0;

  if (d->nheap == 0)
    return NULL;
  top = d->heap[0];
  last = d->heap[--d->nheap];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= d->nheap)
      break;
    if (c + 1 < d->nheap && d->heap[c + 1]->due_mono < d->heap[c]->due_mono)
      c++;
    if (last->due_mono <= d->heap[c]->due_mono)
      break;
    d->heap[i] = d->heap[c];
    i = c;
  }
  if (d->nheap)
    d->heap[i] = last;
  return top;
}

/* ---- hosts (per-host in-flight limit) ---------------------------------- */

static struct host *host_get(struct delivery *d, const char *key)
{
  struct host *h;
  for (size_t i = 0; i < d->nhosts; i++)
    if (strcmp(d->hosts[i]->key, key) == 0)
      return d->hosts[i];
  if (d->nhosts == d->caphosts) {
    size_t ncap = d->caphosts ? d->caphosts * 2 : 16;
    struct host **nh = realloc(d->hosts, ncap * sizeof(*nh));
    if (!nh)
      return NULL;
    d->hosts = nh;
    d->caphosts = ncap;
  }
  h = calloc(1, sizeof(*h));
  if (!h || !(h->key = strdup(key))) {
    free(h);
    return NULL;
  }
  d->hosts[d->nhosts++] = h;
  return h;
}

static void host_maybe_free(struct delivery *d, struct host *h)
{
  if (h->inflight > 0 || h->parked.n > 0 || h->refs > 0)
    return;
  for (size_t i = 0; i < d->nhosts; i++) {
    if (d->hosts[i] == h) {
      d->hosts[i] = d->hosts[--d->nhosts];
      break;
    }
  }
  free(h->key);
  free(h);
}

/* Hands a free slot of h to its longest-parked job. That job holds the
 * slot (a reference to h) until start_delivery either uses it or passes
 * it on, so that a parked queue never waits on a host with nothing in
 * flight. */
static void host_unpark(struct delivery *d, struct host *h)
{
  struct job *j;

  if (h->inflight >= DELIVERY_MAX_PER_HOST)
    return; /* a later release will do it */
  if ((j = jl_pop(&h->parked))) {
    h->refs++;
    j->host = h;
    jl_push(&d->unblocked, j);
  }
}

static void host_release(struct delivery *d, struct host *h)
{
  h->inflight--;
  host_unpark(d, h);
  host_maybe_free(d, h);
}

/* ---- job lifetime ----------------------------------------------------- */

static void attempt_reset(struct delivery *d, struct job *j)
{
  if (j->easy) {
    if (d->npool < EASY_POOL_MAX) {
      curl_easy_reset(j->easy);
      d->pool[d->npool++] = j->easy;
    } else {
      curl_easy_cleanup(j->easy);
    }
    j->easy = NULL;
  }
  curl_slist_free_all(j->headers);
  j->headers = NULL;
  free(j->body);
  j->body = NULL;
  free(j->resp);
  j->resp = NULL;
  j->resplen = j->received = 0;
  j->resp_cut = false;
  j->head_done = false;
  j->retry_after = -1;
  j->opened = 0;
  j->refusal[0] = '\0';
  j->errbuf[0] = '\0';
  crypto_wipe(j->sig, sizeof(j->sig));
  if (j->kind == JOB_DELIVERY)
    webhook_clear(&j->w);
}

static void job_free(struct delivery *d, struct job *j)
{
  if (!j)
    return;
  attempt_reset(d, j);
  cJSON_Delete(j->payload);
  webhook_clear(&j->w);
  if (j->kind == JOB_DELIVERY)
    outbox_entry_clear(&j->e);
  free(j);
}

/* ---- curl callbacks --------------------------------------------------- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
  struct job *j = clientp;
  const struct sockaddr *sa = &a->addr;

  if (purpose != CURLSOCKTYPE_IPCXN)
    return CURL_SOCKET_BAD;
  if (!egress_permits(j->d->cfg.egress, sa)) {
    if (!j->refusal[0]) {
      char ip[INET6_ADDRSTRLEN] = "?";
      const char *cls = egress_blocked_class(sa);
      if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
      else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
      snprintf(j->refusal, sizeof(j->refusal), "egress policy refused %s (%s)", ip,
               cls ? cls : "not allowed");
    }
    return CURL_SOCKET_BAD;
  }
  j->opened++;
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  struct job *j = userdata;
  size_t n = size * nmemb;
  size_t room = DELIVERY_RESPONSE_MAX - j->received;
  size_t take = n < room ? n : room;

  if (j->kind == JOB_TEST && j->resplen < RESP_KEEP) {
    size_t keep = RESP_KEEP - j->resplen;
    if (keep > take)
      keep = take;
    if (!j->resp)
      j->resp = malloc(RESP_KEEP);
    if (j->resp) {
      memcpy(j->resp + j->resplen, ptr, keep);
      j->resplen += keep;
    }
  }
  j->received += take;
  if (take < n) {
    j->resp_cut = true;
    return 0; /* over the limit: abort the transfer, keep what was read */
  }
  return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
  struct job *j = userdata;
  size_t n = size * nitems;
  static const char name[] = "retry-after:";

  if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    j->retry_after = -1; /* a new response (after a 1xx) starts over */
    j->head_done = false;
  } else if ((n == 2 && buf[0] == '\r' && buf[1] == '\n') || (n == 1 && buf[0] == '\n')) {
    /* curl takes a connection closed inside the headers as their end and
     * reports success: only this line says they were all there. */
    j->head_done = true;
  } else if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
    char v[64];
    size_t vl = n - (sizeof(name) - 1);
    long secs;
    if (vl < sizeof(v)) {
      memcpy(v, buf + sizeof(name) - 1, vl);
      v[vl] = '\0';
      if (retry_after_parse(v, clock_now_ms() / 1000, &secs) == 0)
        j->retry_after = secs;
    }
  }
  return n;
}

/* ---- building one attempt ---------------------------------------------- */

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
  char buf[1024];
  struct curl_slist *n;
  if (snprintf(buf, sizeof(buf), "%s: %s", name, value) >= (int)sizeof(buf))
    return -1;
  n = curl_slist_append(*l, buf);
  if (!n)
    return -1;
  *l = n;
  return 0;
}

/* Body, signatures and headers for j->w and the escalation e. Keeps the
 * body object in j->payload when keep_obj. Returns 0 or -1 (OOM). */
static int build_request(struct job *j, const struct escalation *e, const char *event_id,
                         const char *event_type, int64_t accepted_ms, bool keep_obj)
{
  struct payload_meta m = {event_id, event_type, accepted_ms};
  cJSON *obj = payload_build(&j->w, e, &m);
  char num[32];
  int rc = -1;

  if (!obj)
    return -1;
  j->body = jsonutil_print(obj);
  if (!j->body)
    goto out;
  j->is_signed = j->w.secret != NULL;
  if (j->is_signed && payload_signature(&j->w, obj, j->body, j->sig) != 0)
    goto out;

  if (add_header(&j->headers, "Content-Type", "application/json") ||
      add_header(&j->headers, "X-HelpGenie-Event-Id", event_id))
    goto out;
  snprintf(num, sizeof(num), "%d", j->attempt);
  if (add_header(&j->headers, "X-HelpGenie-Attempt", num))
    goto out;
  if (j->is_signed) {
    char sw[PAYLOAD_STDWH_SIG_MAX];
    snprintf(num, sizeof(num), "%lld", (long long)(clock_now_ms() / 1000));
    if (payload_stdwh_signature(j->w.secret, event_id, num, j->body, strlen(j->body), sw) != 0)
      goto out;
    if (add_header(&j->headers, j->w.secret_header ? j->w.secret_header : WEBHOOK_DEFAULT_HEADER,
                   j->sig) ||
        add_header(&j->headers, "webhook-id", event_id) ||
        add_header(&j->headers, "webhook-timestamp", num) ||
        add_header(&j->headers, "webhook-signature", sw))
      goto out;
  }
  /* No "Expect: 100-continue" round trip; no Accept noise. */
  {
    struct curl_slist *n = curl_slist_append(j->headers, "Expect:");
    if (!n)
      goto out;
    j->headers = n;
  }
  rc = 0;
out:
  if (rc == 0 && keep_obj)
    j->payload = obj;
  else
    cJSON_Delete(obj);
  return rc;
}

static int setup_easy(struct delivery *d, struct job *j)
{
  CURL *h = d->npool ? d->pool[--d->npool] : curl_easy_init();
  CURLcode c = CURLE_OK;

  if (!h)
    return -1;
  j->easy = h;
  j->retry_after = -1;
#define SET(opt, val)                                                                              \
  do {                                                                                             \
    if (c == CURLE_OK)                                                                             \
      c = curl_easy_setopt(h, opt, val);                                                           \
  } while (0)
  SET(CURLOPT_PRIVATE, (void *)j);
  SET(CURLOPT_URL, j->w.url);
  SET(CURLOPT_PROTOCOLS_STR, d->cfg.allow_http ? "http,https" : "https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  SET(CURLOPT_PIPEWAIT, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, d->cfg.connect_timeout_ms > 0 ? d->cfg.connect_timeout_ms : 5000L);
  SET(CURLOPT_TIMEOUT_MS, d->cfg.total_timeout_ms > 0 ? d->cfg.total_timeout_ms : 15000L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (d->cafile)
    SET(CURLOPT_CAINFO, d->cafile);
  /* A proxy would connect on our behalf, past the egress guard. */
  SET(CURLOPT_PROXY, "");
  SET(CURLOPT_NOPROXY, "*");
  SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
  SET(CURLOPT_OPENSOCKETDATA, (void *)j);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)j);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)j);
  SET(CURLOPT_ERRORBUFFER, j->errbuf);
  SET(CURLOPT_USERAGENT, "hgd/" HG_VERSION);
  SET(CURLOPT_HTTPHEADER, j->headers);
  SET(CURLOPT_POST, 1L);
  SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(j->body));
  SET(CURLOPT_POSTFIELDS, j->body);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
#undef SET
  if (c != CURLE_OK)
    return -1;
  j->t0 = clock_mono_ms();
  if (curl_multi_add_handle(d->multi, h) != CURLM_OK)
    return -1;
  j->fprev = NULL;
  j->fnext = d->flight;
  if (d->flight)
    d->flight->fprev = j;
  else
    d->flight_tail = j;
  d->flight = j;
  j->slow = false;
  return 0;
}

static void flight_unlink(struct delivery *d, struct job *j)
{
  if (j->fprev)
    j->fprev->fnext = j->fnext;
  else if (d->flight == j)
    d->flight = j->fnext;
  if (j->fnext)
    j->fnext->fprev = j->fprev;
  else if (d->flight_tail == j)
    d->flight_tail = j->fprev;
  j->fprev = j->fnext = NULL;
  if (j->slow)
    d->slow--;
  j->slow = false;
}

/* Marks the deliveries in flight for DELIVERY_SLOW_MS as slow, oldest
 * first. Returns the ms until the next one turns slow, or -1 if none. */
static int64_t mark_slow(struct delivery *d, int64_t now)
{
  for (struct job *j = d->flight_tail; j; j = j->fprev) {
    if (now - j->t0 < DELIVERY_SLOW_MS)
      return j->t0 + DELIVERY_SLOW_MS - now;
    if (j->kind == JOB_DELIVERY && !j->slow) {
      j->slow = true;
      d->slow++;
    }
  }
  return -1;
}

static bool pool_has_room(const struct delivery *d)
{
  return d->inflight - d->slow < DELIVERY_MAX_INFLIGHT && d->inflight < DELIVERY_MAX_OPEN;
}

/* ---- events ------------------------------------------------------------ */

static void count(struct delivery *d, const char *state, bool final)
{
  pthread_mutex_lock(&d->mu);
  if (strcmp(state, "delivered") == 0)
    d->counters.delivered++;
  else if (strcmp(state, "retrying") == 0)
    d->counters.retrying++;
  else if (strcmp(state, "failed") == 0)
    d->counters.failed++;
  else if (strcmp(state, "skipped") == 0)
    d->counters.skipped++;
  if (final && d->counters.pending > 0)
    d->counters.pending--;
  pthread_mutex_unlock(&d->mu);
}

static void emit(struct delivery *d, const struct job *j, const char *state, int attempt,
                 long status, const char *err, int64_t next_ms, int64_t latency_ms)
{
  cJSON *ev;
  char iso[CLOCK_ISO_LEN + 1];

  if (!d->hooks.event)
    return;
  ev = cJSON_CreateObject();
  if (!ev)
    return;
  cJSON_AddStringToObject(ev, "eventId", j->e.event_id);
  cJSON_AddStringToObject(ev, "state", state);
  cJSON_AddNumberToObject(ev, "attempt", attempt);
  if (status > 0)
    cJSON_AddNumberToObject(ev, "status", (double)status);
  if (err)
    cJSON_AddStringToObject(ev, "error", err);
  if (next_ms > 0) {
    clock_iso8601(next_ms, iso);
    cJSON_AddStringToObject(ev, "next_attempt_at", iso);
  }
  if (latency_ms >= 0)
    cJSON_AddNumberToObject(ev, "latency_ms", (double)latency_ms);
  d->hooks.event(d->hooks.ctx, j->e.agent_id, ev);
  cJSON_Delete(ev);
}

static void finish_skipped(struct delivery *d, struct job *j, const char *why)
{
  if (d->ob)
    outbox_done(d->ob, j->e.seq);
  count(d, "skipped", true);
  log_event(LOG_LVL_INFO, "delivery.skipped", "agent=%s eventId=%s attempt=%d reason=\"%s\"",
            j->e.agent_id, j->e.event_id, j->e.attempts, why);
  emit(d, j, "skipped", j->e.attempts, 0, why, 0, -1);
  job_free(d, j);
}

/* ---- test action -------------------------------------------------------- */

static void test_reply(struct delivery *d, struct job *j, long status, const char *err)
{
  cJSON *data = cJSON_CreateObject();
  cJSON *res;
  void (*done)(void *, cJSON *) = j->done;
  void *arg = j->arg;

  if (data) {
    if (j->payload) {
      cJSON_AddItemToObject(data, "payload", j->payload);
      j->payload = NULL;
    } else {
      cJSON_AddNullToObject(data, "payload");
    }
    jsonutil_add_string_or_null(data, "signature", j->is_signed ? j->sig : NULL);
    cJSON_AddStringToObject(data, "signatureHeader",
                            j->w.secret_header ? j->w.secret_header : WEBHOOK_DEFAULT_HEADER);
    cJSON_AddBoolToObject(data, "signed", j->w.secret != NULL);
    res = cJSON_AddObjectToObject(data, "result");
    if (res && err) {
      cJSON_AddStringToObject(res, "error", err);
    } else if (res) {
      char *txt = delivery_text_excerpt(j->resp ? j->resp : "", j->resplen,
                                        DELIVERY_TEST_BODY_MAX);
      cJSON_AddNumberToObject(res, "status", (double)status);
      cJSON_AddStringToObject(res, "body", txt ? txt : "");
      free(txt);
    }
  }
  job_free(d, j);
  if (done)
    done(arg, data);
  else
    cJSON_Delete(data);
}

/* Builds the test request. On failure replies at once and returns -1. */
static int test_prepare(struct delivery *d, struct job *j)
{
  struct escalation esc;
  char eid[UUID_STR_LEN + 1];
  int rc;

  memset(&esc, 0, sizeof(esc));
  j->attempt = 1;
  if (uuid_v4(eid) != 0 || payload_test_escalation(&j->w, &esc) != 0) {
    escalation_clear(&esc);
    test_reply(d, j, 0, "internal error: out of memory");
    return -1;
  }
  snprintf(j->e.event_id, sizeof(j->e.event_id), "%s", eid);
  memcpy(j->e.agent_id, j->w.agent_id, sizeof(j->e.agent_id));
  rc = build_request(j, &esc, eid, "escalation.test", clock_now_ms(), true);
  escalation_clear(&esc);
  if (rc != 0) {
    test_reply(d, j, 0, "internal error: could not build the payload");
    return -1;
  }
  return 0;
}

static void start_test(struct delivery *d, struct job *j)
{
  if (test_prepare(d, j) != 0)
    return;
  if (setup_easy(d, j) != 0) {
    test_reply(d, j, 0, "internal error: could not start the request");
    return;
  }
  d->tests_inflight++;
}

/* ---- attempts ---------------------------------------------------------- */

/* Starts an attempt of delivery j: returns after it is in flight, parked,
 * rescheduled or finished. */
static void start_delivery(struct delivery *d, struct job *j)
{
  char key[WEBHOOK_URL_MAX + 16];
  struct host *from = j->host; /* set when j was unparked: it holds a slot of from */
  struct host *h;
  int r;

  j->host = NULL;
  if (from)
    from->refs--;
  webhook_clear(&j->w);
  r = d->hooks.lookup ? d->hooks.lookup(d->hooks.ctx, j->e.agent_id, &j->w) : 0;
  if (r < 0) {
    /* The store could not answer (out of memory): try again shortly,
     * without spending an attempt. */
    log_event(LOG_LVL_WARN, "delivery.lookup_failed", "agent=%s eventId=%s", j->e.agent_id,
              j->e.event_id);
    webhook_clear(&j->w);
    j->due_mono = clock_mono_ms() + 1000;
    if (heap_push(d, j) != 0)
      job_free(d, j); /* stays pending in the outbox */
    goto pass;
  }
  if (r == 0 || !j->w.is_active) {
    finish_skipped(d, j, r == 0 ? "no webhook" : "webhook inactive");
    goto pass;
  }
  if (delivery_host_key(j->w.url ? j->w.url : "", key, sizeof(key)) != 0)
    snprintf(key, sizeof(key), "?");
  h = host_get(d, key);
  if (h && h->inflight >= DELIVERY_MAX_PER_HOST) {
    webhook_clear(&j->w); /* looked up again when its turn comes */
    j->host = h;
    jl_push(&h->parked, j);
    goto pass;
  }
  if (h == from)
    from = NULL; /* the slot is used */
  j->attempt = j->e.attempts + 1;
  j->host = h;
  if (h)
    h->inflight++;
  d->inflight++;
  if (build_request(j, &j->e.esc, j->e.event_id, "escalation", j->e.accepted_ms, false) != 0 ||
      setup_easy(d, j) != 0) {
    /* Like an attempt without an answer: retried on the schedule. */
    j->t0 = clock_mono_ms();
    j->opened = 1;
    complete_attempt(d, j, CURLE_OUT_OF_MEMORY, false);
  }
pass:
  if (from) {
    host_unpark(d, from);
    host_maybe_free(d, from);
  }
}

static bool curl_permanent(CURLcode rc)
{
  /* The URL itself is unusable: retrying cannot help. */
  return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
}

/* The end of an attempt: classify, record, report, reschedule or free. */
static void complete_attempt(struct delivery *d, struct job *j, CURLcode rc, bool in_multi)
{
  long status = 0;
  int64_t latency = clock_mono_ms() - j->t0;
  int64_t next_ms = 0, delay = -1;
  char err[CURL_ERROR_SIZE + 64] = "";
  char logerr[sizeof(err) + 16] = "";
  char lognext[CLOCK_ISO_LEN + 24] = "";
  enum retry_verdict v;
  const char *state;
  int attempt = j->attempt;

  if (j->easy) {
    if (in_multi) {
      curl_multi_remove_handle(d->multi, j->easy);
      flight_unlink(d, j);
    }
    if (curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
      status = 0;
  }
  if (status < 200)
    status = 0; /* an interim 1xx is no answer */
  if (status > 0 &&
      (!j->head_done || (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && j->resp_cut)))) {
    /* A status line, then no complete response: headers that never end,
     * a timeout or a reset in the body. The receiver may never have taken
     * the escalation in, so this is a network error (retried), not its
     * status; only the body cut at our own limit still counts. */
    const char *why = rc != CURLE_OK ? (j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc))
                                     : "connection closed inside the response headers";
    snprintf(err, sizeof(err), "%s (after HTTP %ld)", why, status);
    status = 0;
    v = RETRY_AGAIN;
  } else if (status > 0) {
    /* The receiver answered: its status decides, even when the body was
     * cut at the limit. */
    v = retry_classify_status(status);
  } else if (j->opened == 0 && j->refusal[0]) {
    snprintf(err, sizeof(err), "%s", j->refusal);
    v = RETRY_FAIL; /* policy, not a transient fault: do not hammer it */
  } else {
    if (rc == CURLE_OK)
      snprintf(err, sizeof(err), "no HTTP status in the response");
    else
      snprintf(err, sizeof(err), "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
    v = curl_permanent(rc) ? RETRY_FAIL : RETRY_AGAIN;
  }

  if (j->kind == JOB_TEST) {
    d->tests_inflight--;
    if (err[0]) {
      char safe[sizeof(err)];
      log_safe(err, safe, sizeof(safe));
      snprintf(logerr, sizeof(logerr), " error=\"%s\"", safe);
    }
    log_event(LOG_LVL_INFO, "delivery.test", "agent=%s eventId=%s status=%ld latency_ms=%lld%s",
              j->e.agent_id, j->e.event_id, status, (long long)latency, logerr);
    test_reply(d, j, status, status > 0 ? NULL : err);
    return;
  }

  if (j->host)
    host_release(d, j->host);
  j->host = NULL;
  d->inflight--;
  j->e.attempts = attempt;

  if (v == RETRY_AGAIN) {
    /* Retry-After is honoured on any retried answer that carries it
     * (429 and 503 in practice), in place of the scheduled step. */
    delay = retry_next_delay_ms(d->schedule, d->cfg.nschedule, attempt,
                                status > 0 ? j->retry_after : -1, rnd32());
  }
  if (v == RETRY_DELIVERED) {
    state = "delivered";
  } else if (v == RETRY_AGAIN && j->retired) {
    state = "skipped"; /* its webhook went while this attempt was out */
    snprintf(err + strlen(err), sizeof(err) - strlen(err), "%s%s", err[0] ? "; " : "",
             j->retired);
  } else if (v == RETRY_AGAIN && delay >= 0) {
    state = "retrying";
    next_ms = clock_now_ms() + delay;
    j->e.next_ms = next_ms;
    j->due_mono = clock_mono_ms() + delay;
  } else {
    state = "failed";
  }

  if (d->ob) {
    if (next_ms)
      outbox_attempt(d->ob, j->e.seq, attempt, next_ms);
    else
      outbox_done(d->ob, j->e.seq);
  }
  attempt_reset(d, j); /* wipes the row and its secret */

  if (err[0]) {
    char safe[sizeof(err)];
    log_safe(err, safe, sizeof(safe));
    snprintf(logerr, sizeof(logerr), " error=\"%s\"", safe);
  }
  if (next_ms) {
    char iso[CLOCK_ISO_LEN + 1];
    clock_iso8601(next_ms, iso);
    snprintf(lognext, sizeof(lognext), " next_attempt_at=%s", iso);
  }
  log_event(v == RETRY_DELIVERED ? LOG_LVL_INFO : LOG_LVL_WARN, "delivery.attempt",
            "agent=%s eventId=%s seq=%llu attempt=%d status=%ld latency_ms=%lld state=%s%s%s",
            j->e.agent_id, j->e.event_id, (unsigned long long)j->e.seq, attempt, status,
            (long long)latency, state, logerr, lognext);
  count(d, state, next_ms == 0);
  emit(d, j, state, attempt, status, err[0] ? err : NULL, next_ms, latency);

  if (next_ms) {
    if (heap_push(d, j) != 0) {
      log_event(LOG_LVL_ERROR, "delivery.oom", "agent=%s eventId=%s outcome=left_pending",
                j->e.agent_id, j->e.event_id);
      job_free(d, j);
    }
  } else {
    job_free(d, j);
  }
}

/* ---- retiring a Genie's deliveries ------------------------------------- */

static bool retires(const struct job *j, const char *agent)
{
  return j->kind == JOB_DELIVERY && strcmp(j->e.agent_id, agent) == 0;
}

/* Take the jobs of agent out of l; those holding a slot of their host (the
 * unblocked list) give it back first. */
static void retire_list(struct delivery *d, struct jlist *l, const char *agent, const char *why)
{
  struct jlist keep = {0};
  struct job *j;

  while ((j = jl_pop(l))) {
    if (!retires(j, agent)) {
      jl_push(&keep, j);
      continue;
    }
    struct host *h = j->host;
    j->host = NULL;
    if (h && l == &d->unblocked) {
      h->refs--;
      host_unpark(d, h);
      host_maybe_free(d, h);
    }
    finish_skipped(d, j, why);
  }
  *l = keep;
}

/* The webhook of agent was deleted or made inactive: every delivery of it
 * not in flight ends as skipped now (PROTOCOL.md section 4), not when its
 * next attempt comes due, hours later, and perhaps after a new webhook was
 * made for the Genie, whose receiver must not get the old escalations. One
 * in flight ends as skipped instead of being retried. */
static void retire(struct delivery *d, const char *agent, const char *why)
{
  struct jlist due = {0};
  struct job *j;

  while ((j = heap_pop(d)))
    jl_push(&due, j);
  while ((j = jl_pop(&due))) {
    if (retires(j, agent))
      finish_skipped(d, j, why);
    else if (heap_push(d, j) != 0)
      job_free(d, j); /* stays pending in the outbox */
  }
  retire_list(d, &d->ready, agent, why);
  retire_list(d, &d->unblocked, agent, why);
  for (size_t i = d->nhosts; i-- > 0;) {
    struct host *h = d->hosts[i];
    retire_list(d, &h->parked, agent, why);
    host_maybe_free(d, h);
  }
  for (j = d->flight; j; j = j->fnext)
    if (retires(j, agent))
      j->retired = why;
}

/* ---- the engine thread ------------------------------------------------- */

static void start_ready(struct delivery *d)
{
  struct job *j;
  int64_t now = clock_mono_ms();

  while (d->nheap && d->heap[0]->due_mono <= now)
    jl_push(&d->ready, heap_pop(d));
  while (d->tests_inflight < DELIVERY_MAX_TESTS && (j = jl_pop(&d->tests)))
    start_test(d, j);
  mark_slow(d, now);
  while (pool_has_room(d)) {
    j = jl_pop(&d->unblocked);
    if (!j)
      j = jl_pop(&d->ready);
    if (!j)
      break;
    start_delivery(d, j);
  }
}

static void dispatch(struct delivery *d, struct job *list, bool draining)
{
  int64_t now = clock_mono_ms();

  while (list) {
    struct job *j = list;
    list = j->next;
    j->next = NULL;
    if (j->kind == JOB_RETIRE) {
      if (!draining)
        retire(d, j->e.agent_id, j->retired);
      free(j);
    } else if (j->kind == JOB_TEST) {
      if (draining) {
        if (test_prepare(d, j) == 0)
          test_reply(d, j, 0, "hgd is shutting down");
      } else {
        jl_push(&d->tests, j);
      }
    } else if (draining) {
      job_free(d, j); /* stays pending in the outbox */
    } else if (j->due_mono <= now) {
      jl_push(&d->ready, j);
    } else if (heap_push(d, j) != 0) {
      job_free(d, j);
    }
  }
}

/* Drop everything not in flight: deliveries stay pending in the outbox,
 * waiting tests are answered. */
static void drop_waiting(struct delivery *d)
{
  struct job *j;

  while ((j = heap_pop(d)))
    job_free(d, j);
  while ((j = jl_pop(&d->ready)))
    job_free(d, j);
  while ((j = jl_pop(&d->unblocked)))
    job_free(d, j);
  for (size_t i = 0; i < d->nhosts; i++)
    while ((j = jl_pop(&d->hosts[i]->parked)))
      job_free(d, j);
  while ((j = jl_pop(&d->tests)))
    if (test_prepare(d, j) == 0)
      test_reply(d, j, 0, "hgd is shutting down");
}

static void *engine_main(void *arg)
{
  struct delivery *d = arg;
  bool draining = false;
  int64_t deadline = 0;

  for (;;) {
    struct job *list;
    bool stopping, kick;
    int running = 0, done = 0;
    int64_t now;
    long timeout;
    CURLMsg *m;
    int left;

    pthread_mutex_lock(&d->mu);
    list = d->submitted.head;
    d->submitted.head = d->submitted.tail = NULL;
    d->submitted.n = 0;
    d->kick = false;
    stopping = d->stopping;
    pthread_mutex_unlock(&d->mu);

    if (stopping && !draining) {
      draining = true;
      deadline = clock_mono_ms() + (d->grace_ms > 0 ? d->grace_ms : 0);
      drop_waiting(d);
      log_event(LOG_LVL_INFO, "delivery.stopping", "in_flight=%d grace_ms=%ld",
                d->inflight + d->tests_inflight, d->grace_ms);
    }
    dispatch(d, list, draining);
    if (!draining)
      start_ready(d);

    curl_multi_perform(d->multi, &running);
    while ((m = curl_multi_info_read(d->multi, &left))) {
      struct job *j = NULL;
      CURL *h = m->easy_handle;
      CURLcode rc = m->data.result;
      if (m->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&j);
      if (j) {
        complete_attempt(d, j, rc, true);
        done++;
      }
    }

    now = clock_mono_ms();
    if (draining) {
      drop_waiting(d); /* retries scheduled while draining */
      if (!d->flight || now >= deadline)
        break;
    }
    if (done)
      continue; /* slots were freed: fill them before sleeping */

    if (draining) {
      timeout = (long)(deadline - now);
    } else if (d->nheap) {
      int64_t w = d->heap[0]->due_mono - now;
      timeout = w < 0 ? 0 : w > IDLE_POLL_MS ? IDLE_POLL_MS : (long)w;
    } else {
      timeout = IDLE_POLL_MS;
    }
    if (!draining && (d->ready.n || d->unblocked.n)) {
      /* Queued behind a full pool: wake when an attempt turns slow. */
      int64_t ws = mark_slow(d, now);
      if (ws >= 0 && ws < timeout)
        timeout = (long)ws;
    }
    pthread_mutex_lock(&d->mu);
    kick = d->kick;
    pthread_mutex_unlock(&d->mu);
    if (kick)
      timeout = 0;
    curl_multi_poll(d->multi, NULL, 0, (int)timeout, NULL);
  }

  /* Past the grace period: abandon what is still in flight. */
  while (d->flight) {
    struct job *j = d->flight;
    curl_multi_remove_handle(d->multi, j->easy);
    flight_unlink(d, j);
    if (j->kind == JOB_TEST) {
      d->tests_inflight--;
      test_reply(d, j, 0, "hgd is shutting down");
    } else {
      log_event(LOG_LVL_INFO, "delivery.abandoned",
                "agent=%s eventId=%s attempt=%d outcome=left_pending", j->e.agent_id,
                j->e.event_id, j->attempt);
      /* The receiver may have had this attempt: the next hgd makes the
       * next one, so that no attempt number reaches it twice. */
      if (d->ob)
        outbox_attempt(d->ob, j->e.seq, j->attempt, clock_now_ms());
      if (j->host)
        host_release(d, j->host);
      j->host = NULL;
      d->inflight--;
      job_free(d, j);
    }
  }
  drop_waiting(d);
  return NULL;
}

/* ---- API ---------------------------------------------------------------- */

static void delivery_free(struct delivery *d)
{
  if (!d)
    return;
  for (size_t i = 0; i < d->npool; i++)
    curl_easy_cleanup(d->pool[i]);
  for (size_t i = 0; i < d->nhosts; i++) {
    free(d->hosts[i]->key);
    free(d->hosts[i]);
  }
  free(d->hosts);
  free(d->heap);
  if (d->multi)
    curl_multi_cleanup(d->multi);
  pthread_mutex_destroy(&d->mu);
  free(d->schedule);
  free(d->cafile);
  free(d);
}

int delivery_start(const struct delivery_config *cfg, const struct delivery_hooks *hooks,
                   struct outbox *ob, struct delivery **out)
{
  struct delivery *d;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -1;
  d = calloc(1, sizeof(*d));
  if (!d) {
    curl_global_cleanup();
    return -1;
  }
  pthread_mutex_init(&d->mu, NULL);
  d->cfg = *cfg;
  d->hooks = *hooks;
  d->ob = ob;
  if (cfg->nschedule) {
    d->schedule = malloc(cfg->nschedule * sizeof(double));
    if (!d->schedule)
      goto fail;
    memcpy(d->schedule, cfg->schedule, cfg->nschedule * sizeof(double));
  }
  d->cfg.schedule = d->schedule;
  if (cfg->cafile && !(d->cafile = strdup(cfg->cafile)))
    goto fail;
  d->cfg.cafile = d->cafile;
  d->multi = curl_multi_init();
  if (!d->multi)
    goto fail;
  curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)DELIVERY_MAX_PER_HOST);
  curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS,
                    (long)(DELIVERY_MAX_INFLIGHT + DELIVERY_MAX_TESTS));
  curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (pthread_create(&d->thread, NULL, engine_main, d) != 0)
    goto fail;
  *out = d;
  return 0;
fail:
  delivery_free(d);
  curl_global_cleanup();
  return -1;
}

void delivery_stop(struct delivery *d, long grace_ms)
{
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->stopping = true;
  d->grace_ms = grace_ms;
  d->kick = true;
  pthread_mutex_unlock(&d->mu);
  curl_multi_wakeup(d->multi);
  pthread_join(d->thread, NULL);
  delivery_free(d);
  curl_global_cleanup();
}

static int enqueue(struct delivery *d, struct job *j, bool counts)
{
  bool refused;

  pthread_mutex_lock(&d->mu);
  refused = d->stopping;
  if (!refused) {
    jl_push(&d->submitted, j);
    d->kick = true;
    if (counts)
      d->counters.pending++;
  }
  pthread_mutex_unlock(&d->mu);
  if (refused)
    return -1;
  curl_multi_wakeup(d->multi);
  return 0;
}

int delivery_submit(struct delivery *d, const struct outbox_entry *e)
{
  struct job *j = calloc(1, sizeof(*j));
  int64_t wait;

  if (!j)
    return -1;
  j->kind = JOB_DELIVERY;
  j->d = d;
  j->retry_after = -1;
  if (outbox_entry_copy(&j->e, e) != 0) {
    free(j);
    return -1;
  }
  wait = e->next_ms > 0 ? e->next_ms - clock_now_ms() : 0;
  j->due_mono = clock_mono_ms() + (wait > 0 ? wait : 0);
  if (enqueue(d, j, true) != 0) {
    /* Stopping: the entry stays pending in the outbox for the next start. */
    outbox_entry_clear(&j->e);
    free(j);
  }
  return 0;
}

int delivery_retire(struct delivery *d, const char *agent_id, const char *why)
{
  struct job *j = calloc(1, sizeof(*j));

  if (!j)
    return -1;
  j->kind = JOB_RETIRE;
  j->d = d;
  j->retired = why;
  snprintf(j->e.agent_id, sizeof(j->e.agent_id), "%s", agent_id);
  if (enqueue(d, j, false) != 0) {
    free(j);
    return -1;
  }
  return 0;
}

int delivery_test(struct delivery *d, const struct webhook *w,
                  void (*done)(void *arg, cJSON *data), void *arg)
{
  struct job *j = calloc(1, sizeof(*j));

  if (!j)
    return -1;
  j->kind = JOB_TEST;
  j->d = d;
  j->retry_after = -1;
  j->done = done;
  j->arg = arg;
  if (webhook_copy(&j->w, w) != 0) {
    free(j);
    return -1;
  }
  if (enqueue(d, j, false) != 0) {
    webhook_clear(&j->w);
    free(j);
    return -1;
  }
  return 0;
}

void delivery_counters(struct delivery *d, struct delivery_counters *out)
{
  pthread_mutex_lock(&d->mu);
  *out = d->counters;
  pthread_mutex_unlock(&d->mu);
}
