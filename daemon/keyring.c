/* keyring.c — keys file, signature check, replay cache. */
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "jsonutil.h"
#include "reqsig.h"

#define KEYS_FILE_MAX (1024 * 1024)
#define NONCE_BUCKETS 65536
/* A nonce must be remembered while its hg-ts can still pass the window:
 * arrival ± window on each side, so twice the window after arrival. */
#define NONCE_KEEP_S (2 * REQSIG_WINDOW_S + 1)

struct key {
  char *id;
  char *secret;
  char **agents; /* lowercase; "*" covers all */
  size_t nagents;
  char **actions;
  size_t nactions;
};

struct keyset {
  struct key *keys;
  size_t nkeys;
};

struct nonce {
  uint64_t hash;
  int64_t arrival;
  struct nonce *next_bucket;
  struct nonce *next_fifo;
};

struct keyring {
  char *path;
  pthread_mutex_t lock; /* guards set and the nonce cache */
  struct keyset *set;
  struct nonce *buckets[NONCE_BUCKETS];
  struct nonce *fifo_head, *fifo_tail;
  uint64_t seed;
};

static void keyset_free(struct keyset *s)
{
  if(!s)
    return;
  for(size_t i = 0; i < s->nkeys; i++) {
    struct key *k = &s->keys[i];
    free(k->id);
    crypto_free_secret(k->secret);
    for(size_t j = 0; j < k->nagents; j++)
      free(k->agents[j]);
    free(k->agents);
    for(size_t j = 0; j < k->nactions; j++)
      free(k->actions[j]);
    free(k->actions);
  }
  free(s->keys);
  free(s);
}

static int string_list(const cJSON *arr, char ***out, size_t *n, bool lower)
{
  size_t count = 0;
  const cJSON *it;

  if(!cJSON_IsArray(arr))
    return -1;
  *out = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(char *));
  if(!*out)
    return -1;
  cJSON_ArrayForEach(it, arr)
  {
    if(!cJSON_IsString(it) || !((*out)[count] = strdup(it->valuestring)))
      return -1;
    if(lower)
      for(char *p = (*out)[count]; *p; p++)
        if(*p >= 'A' && *p <= 'Z')
          *p = (char)(*p - 'A' + 'a');
    *n = ++count;
  }
  return 0;
}

static const char *const known_actions[] = {"get", "upsert", "delete", "test", "escalate"};

/* Read and check the file; returns a new set or NULL with err. */
static struct keyset *keyset_load(const char *path, char *err, size_t errsz)
{
  struct keyset *set = NULL;
  cJSON *root = NULL;
  char *buf = NULL;
  struct stat st;
  int fd = -1;
  ssize_t got = 0;
  char jerr[128];

  /* O_NONBLOCK: a FIFO must not hang the start (SIGTERM is blocked then). */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if(fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errsz, "cannot read keys file %s: %s", path, strerror(errno));
    goto fail;
  }
  if(!S_ISREG(st.st_mode)) {
    snprintf(err, errsz, "keys file %s is not a regular file", path);
    goto fail;
  }
  if(st.st_mode & (S_IRWXG | S_IRWXO)) {
    snprintf(err, errsz,
             "keys file %s is readable by group or others (mode %04o); run: chmod 600 %s", path,
             (unsigned)(st.st_mode & 07777), path);
    goto fail;
  }
  if(st.st_size > KEYS_FILE_MAX) {
    snprintf(err, errsz, "keys file %s is larger than %d bytes", path, KEYS_FILE_MAX);
    goto fail;
  }
  buf = malloc((size_t)st.st_size + 1);
  if(!buf)
    goto oom;
  while(got < st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)(st.st_size - got));
    if(r <= 0) {
      snprintf(err, errsz, "cannot read keys file %s: %s", path, r ? strerror(errno) : "short read");
      goto fail;
    }
    got += r;
  }
  root = jsonutil_parse(buf, (size_t)got, KEYS_FILE_MAX, jerr, sizeof(jerr));
  if(!root) {
    snprintf(err, errsz, "keys file %s is not valid JSON: %s", path, jerr);
    goto fail;
  }
  const cJSON *keys = jsonutil_get(root, "keys");
  if(!cJSON_IsArray(keys)) {
    snprintf(err, errsz, "keys file %s: \"keys\" must be an array", path);
    goto fail;
  }
  set = calloc(1, sizeof(*set));
  if(!set || !(set->keys = calloc((size_t)cJSON_GetArraySize(keys) + 1, sizeof(struct key))))
    goto oom;
  const cJSON *k;
  cJSON_ArrayForEach(k, keys)
  {
    struct key *dst = &set->keys[set->nkeys];
    const cJSON *id = jsonutil_get(k, "id"), *secret = jsonutil_get(k, "secret");
    size_t idx = set->nkeys;
    set->nkeys++;
    if(!cJSON_IsString(id) || !id->valuestring[0] || !cJSON_IsString(secret) ||
       !secret->valuestring[0]) {
      snprintf(err, errsz, "keys file %s: key #%zu needs a non-empty \"id\" and \"secret\"", path,
               idx + 1);
      goto fail;
    }
    for(size_t j = 0; j < idx; j++) {
      if(!strcmp(set->keys[j].id, id->valuestring)) {
        snprintf(err, errsz, "keys file %s: key id \"%s\" appears twice", path, id->valuestring);
        goto fail;
      }
    }
    if(!(dst->id = strdup(id->valuestring)) || !(dst->secret = strdup(secret->valuestring)))
      goto oom;
    if(string_list(jsonutil_get(k, "agents"), &dst->agents, &dst->nagents, true) ||
       string_list(jsonutil_get(k, "actions"), &dst->actions, &dst->nactions, false)) {
      snprintf(err, errsz, "keys file %s: key \"%s\" needs \"agents\" and \"actions\" arrays of strings",
               path, dst->id);
      goto fail;
    }
    for(size_t j = 0; j < dst->nactions; j++) {
      bool known = false;
      for(size_t a = 0; a < sizeof(known_actions) / sizeof(known_actions[0]); a++)
        known |= !strcmp(dst->actions[j], known_actions[a]);
      if(!known) {
        snprintf(err, errsz, "keys file %s: key \"%s\" has unknown action \"%s\"", path, dst->id,
                 dst->actions[j]);
        goto fail;
      }
    }
  }
  goto out;
oom:
  snprintf(err, errsz, "out of memory reading keys file %s", path);
fail:
  keyset_free(set);
  set = NULL;
out:
  if(buf) {
    crypto_wipe(buf, (size_t)got);
    free(buf);
  }
  if(root) {
    /* the parsed secrets live in cJSON's strings too */
    const cJSON *k;
    cJSON_ArrayForEach(k, jsonutil_get(root, "keys"))
    {
      cJSON *s = jsonutil_get(k, "secret");
      if(cJSON_IsString(s))
        crypto_wipe(s->valuestring, strlen(s->valuestring));
    }
    cJSON_Delete(root);
  }
  if(fd >= 0)
    close(fd);
  return set;
}

int keyring_open(const char *path, struct keyring **out, char *err, size_t errsz)
{
  struct keyring *k = calloc(1, sizeof(*k));

  if(!k || !(k->path = strdup(path))) {
    snprintf(err, errsz, "out of memory");
    free(k);
    return -1;
  }
  pthread_mutex_init(&k->lock, NULL);
  if(crypto_random(&k->seed, sizeof(k->seed)) || !(k->set = keyset_load(path, err, errsz))) {
    if(!k->set && !err[0])
      snprintf(err, errsz, "random number generator failed");
    keyring_free(k);
    return -1;
  }
  *out = k;
  return 0;
}

int keyring_reload(struct keyring *k, char *err, size_t errsz)
{
  struct keyset *fresh = keyset_load(k->path, err, errsz), *old;

  if(!fresh)
    return -1;
  pthread_mutex_lock(&k->lock);
  old = k->set;
  k->set = fresh;
  pthread_mutex_unlock(&k->lock);
  keyset_free(old);
  return 0;
}

size_t keyring_count(struct keyring *k)
{
  pthread_mutex_lock(&k->lock);
  size_t n = k->set->nkeys;
  pthread_mutex_unlock(&k->lock);
  return n;
}

void keyring_free(struct keyring *k)
{
  if(!k)
    return;
  for(struct nonce *n = k->fifo_head, *next; n; n = next) {
    next = n->next_fifo;
    free(n);
  }
  keyset_free(k->set);
  pthread_mutex_destroy(&k->lock);
  free(k->path);
  free(k);
}

static const struct key *find_key(const struct keyset *s, const char *id)
{
  for(size_t i = 0; i < s->nkeys; i++)
    if(!strcmp(s->keys[i].id, id))
      return &s->keys[i];
  return NULL;
}

/* 64-bit FNV-1a over seed, key id and nonce: the cache keeps hashes, not
 * strings, so a flood costs 40 bytes a message; the random seed keeps an
 * attacker from choosing colliding nonces. */
static uint64_t nonce_hash(uint64_t seed, const char *key_id, const char *nonce)
{
  uint64_t h = 1469598103934665603ULL ^ seed;
  for(const char *p = key_id; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for(const char *p = nonce; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return h;
}

/* Called with the lock held: forget nonces too old to pass the window. */
static void nonce_expire(struct keyring *k, int64_t now_s)
{
  while(k->fifo_head && k->fifo_head->arrival + NONCE_KEEP_S < now_s) {
    struct nonce *n = k->fifo_head;
    struct nonce **pp = &k->buckets[n->hash % NONCE_BUCKETS];
    while(*pp != n)
      pp = &(*pp)->next_bucket;
    *pp = n->next_bucket;
    k->fifo_head = n->next_fifo;
    if(!k->fifo_head)
      k->fifo_tail = NULL;
    free(n);
  }
}

int keyring_verify(struct keyring *k, const struct keyring_props *p, const char *topic,
                   const void *payload, size_t len, int64_t now_s, char *why, size_t whysz)
{
  long long ts;
  int rc = -1;

  if(!p->key || !p->ts || !p->nonce || !p->sig) {
    snprintf(why, whysz, "missing %s property",
             !p->key ? "hg-key" : !p->ts ? "hg-ts" : !p->nonce ? "hg-nonce" : "hg-sig");
    return -1;
  }
  if(p->repeated) {
    snprintf(why, whysz, "an hg-* property is repeated");
    return -1;
  }
  if(reqsig_parse_ts(p->ts, &ts)) {
    snprintf(why, whysz, "malformed hg-ts");
    return -1;
  }
  if(!reqsig_nonce_valid(p->nonce)) {
    snprintf(why, whysz, "malformed hg-nonce");
    return -1;
  }
  if(strlen(p->sig) != CRYPTO_SHA256_HEX_LEN) {
    snprintf(why, whysz, "malformed hg-sig");
    return -1;
  }
  struct nonce *n = malloc(sizeof(*n));
  if(!n) {
    snprintf(why, whysz, "out of memory");
    return -1;
  }
  pthread_mutex_lock(&k->lock);
  const struct key *key = find_key(k->set, p->key);
  if(!key) {
    snprintf(why, whysz, "unknown key id");
    goto out;
  }
  if(!reqsig_verify(key->secret, topic, p->ts, p->nonce, payload, len, p->sig)) {
    snprintf(why, whysz, "signature does not match");
    goto out;
  }
  if(ts > now_s + REQSIG_WINDOW_S || ts < now_s - REQSIG_WINDOW_S) {
    snprintf(why, whysz, "hg-ts is %lld s from hgd's clock (window %d s)", ts - now_s,
             REQSIG_WINDOW_S);
    goto out;
  }
  nonce_expire(k, now_s);
  n->hash = nonce_hash(k->seed, p->key, p->nonce);
  for(struct nonce *it = k->buckets[n->hash % NONCE_BUCKETS]; it; it = it->next_bucket) {
    if(it->hash == n->hash) {
      snprintf(why, whysz, "nonce replayed");
      goto out;
    }
  }
  n->arrival = now_s;
  n->next_fifo = NULL;
  n->next_bucket = k->buckets[n->hash % NONCE_BUCKETS];
  k->buckets[n->hash % NONCE_BUCKETS] = n;
  if(k->fifo_tail)
    k->fifo_tail->next_fifo = n;
  else
    k->fifo_head = n;
  k->fifo_tail = n;
  n = NULL;
  rc = 0;
out:
  pthread_mutex_unlock(&k->lock);
  free(n);
  return rc;
}

int keyring_permits(struct keyring *k, const char *key_id, const char *action,
                    const char *agent_id, char *why, size_t whysz)
{
  int rc = -1;
  bool action_ok = false, agent_ok = (agent_id == NULL);

  pthread_mutex_lock(&k->lock);
  const struct key *key = find_key(k->set, key_id);
  if(!key) {
    snprintf(why, whysz, "unknown key id");
    goto out;
  }
  for(size_t i = 0; i < key->nactions; i++)
    action_ok |= !strcmp(key->actions[i], action);
  for(size_t i = 0; agent_id && i < key->nagents; i++)
    agent_ok |= !strcmp(key->agents[i], "*") || !strcasecmp(key->agents[i], agent_id);
  if(!action_ok)
    snprintf(why, whysz, "key may not perform %s", action);
  else if(!agent_ok)
    snprintf(why, whysz, "key does not cover this agent");
  else
    rc = 0;
out:
  pthread_mutex_unlock(&k->lock);
  return rc;
}
