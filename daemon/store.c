/* store.c — the webhook rows: an open-addressing hash table in memory over
 * the journal <dir>/webhooks.jsonl (see journal.h and docs/STORAGE.md). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "journal.h"
#include "log.h"
#include "uuid.h"

#define STORE_FILE "webhooks.jsonl"
/* Compact when the file holds more than 2 × live + this many records: the
 * rewrite then costs no more than the appends since the last one. */
#define STORE_COMPACT_SLACK 1024

struct slot {
  uint64_t h; /* 0 = empty (hashes are forced non-zero) */
  struct webhook *w;
};

struct store {
  pthread_mutex_t mu;
  struct journal *j;
  struct slot *slots;
  size_t cap; /* power of two */
  size_t count;
  size_t compact_after; /* no compaction before the file has this many records */
};

static void seterr(char *err, size_t errsz, const char *msg, const char *detail)
{
  if(err && errsz)
    snprintf(err, errsz, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

/* FNV-1a; Genie ids are random UUIDs, so nothing stronger is needed. */
static uint64_t hash_id(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for(; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h ? h : 1;
}

static size_t find(const struct store *s, const char *id, uint64_t h)
{
  size_t mask = s->cap - 1;
  for(size_t i = h & mask;; i = (i + 1) & mask) {
    if(s->slots[i].h == 0)
      return SIZE_MAX;
    if(s->slots[i].h == h && strcmp(s->slots[i].w->agent_id, id) == 0)
      return i;
  }
}

static void place(struct slot *slots, size_t cap, uint64_t h, struct webhook *w)
{
  size_t mask = cap - 1, i = h & mask;
  while(slots[i].h != 0)
    i = (i + 1) & mask;
  slots[i].h = h;
  slots[i].w = w;
}

/* Make room for one more row (load factor at most 0.7). */
static int reserve_one(struct store *s)
{
  if((s->count + 1) * 10 <= s->cap * 7)
    return 0;
  size_t ncap = s->cap * 2;
  struct slot *ns = calloc(ncap, sizeof(*ns));
  if(!ns)
    return -1;
  for(size_t i = 0; i < s->cap; i++)
    if(s->slots[i].h)
      place(ns, ncap, s->slots[i].h, s->slots[i].w);
  free(s->slots);
  s->slots = ns;
  s->cap = ncap;
  return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to pile up. */
static void remove_at(struct store *s, size_t i)
{
  size_t mask = s->cap - 1, j = i;
  webhook_clear(s->slots[i].w);
  free(s->slots[i].w);
  s->slots[i].h = 0;
  s->slots[i].w = NULL;
  for(;;) {
    j = (j + 1) & mask;
    if(s->slots[j].h == 0)
      break;
    size_t home = s->slots[j].h & mask;
    /* Move j back into the hole i unless its home lies cyclically in (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if(stays)
      continue;
    s->slots[i] = s->slots[j];
    s->slots[j].h = 0;
    s->slots[j].w = NULL;
    i = j;
  }
  s->count--;
}

/* Take ownership of *w (moved, heap row). Replaces an existing row. */
static int set_row(struct store *s, struct webhook *w)
{
  uint64_t h = hash_id(w->agent_id);
  size_t i = find(s, w->agent_id, h);
  if(i != SIZE_MAX) {
    webhook_clear(s->slots[i].w);
    free(s->slots[i].w);
    s->slots[i].w = w;
    return 0;
  }
  if(reserve_one(s) != 0)
    return -1;
  place(s->slots, s->cap, h, w);
  s->count++;
  return 0;
}

static char *put_line(const struct webhook *w)
{
  cJSON *rec = cJSON_CreateObject();
  cJSON *row = webhook_to_json(w, true);
  char *line = NULL;

  if(!rec || !row || !cJSON_AddStringToObject(rec, "op", "put")) {
    cJSON_Delete(row);
    goto out;
  }
  cJSON_AddItemToObject(rec, "row", row);
  line = cJSON_PrintUnformatted(rec);
out:
  cJSON_Delete(rec);
  return line;
}

/* put lines carry the secret in clear: wipe them before freeing. */
static void free_line(char *line)
{
  if(!line)
    return;
  crypto_wipe(line, strlen(line)); /* memset before free may be optimised away */
  free(line);
}

static int load_rec(void *ctx, const cJSON *rec, uint64_t off, size_t len, char *err, size_t errsz)
{
  struct store *s = ctx;
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(rec, "op");
  (void)off;
  (void)len;

  if(!cJSON_IsString(op)) {
    snprintf(err, errsz, "no \"op\"");
    return -1;
  }
  if(strcmp(op->valuestring, "put") == 0) {
    const cJSON *row = cJSON_GetObjectItemCaseSensitive(rec, "row");
    struct webhook *w = calloc(1, sizeof(*w));
    char why[200] = "";
    if(!w) {
      snprintf(err, errsz, "out of memory");
      return -1;
    }
    if(!cJSON_IsObject(row) || webhook_from_json(row, w, why, sizeof(why)) != 0) {
      snprintf(err, errsz, "bad \"row\"%s%s", why[0] ? ": " : "", why);
      free(w);
      return -1;
    }
    if(!uuid_valid(w->agent_id)) {
      snprintf(err, errsz, "bad agent_id in \"row\"");
      webhook_clear(w);
      free(w);
      return -1;
    }
    char lower[UUID_STR_LEN + 1];
    uuid_lower(w->agent_id, lower);
    memcpy(w->agent_id, lower, sizeof(lower));
    if(set_row(s, w) != 0) {
      snprintf(err, errsz, "out of memory");
      webhook_clear(w);
      free(w);
      return -1;
    }
    return 0;
  }
  if(strcmp(op->valuestring, "del") == 0) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "agent_id");
    char key[UUID_STR_LEN + 1];
    if(!cJSON_IsString(id) || !uuid_valid(id->valuestring)) {
      snprintf(err, errsz, "bad \"agent_id\"");
      return -1;
    }
    uuid_lower(id->valuestring, key);
    size_t i = find(s, key, hash_id(key));
    if(i != SIZE_MAX)
      remove_at(s, i);
    return 0;
  }
  snprintf(err, errsz, "unknown op \"%.40s\" (written by a newer hgd?)", op->valuestring);
  return -1;
}

/* Rewrite the file as one "put" per live row. Failure is not an error of
 * the caller's operation (that record is already durable): log it and try
 * again after a while. */
static void compact(struct store *s)
{
  struct journal_rewrite *rw = NULL;
  char err[512];
  size_t before = journal_records(s->j);
  int64_t t0 = clock_mono_ms();

  if(journal_rewrite_begin(s->j, &rw, err, sizeof(err)) != 0)
    goto fail;
  for(size_t i = 0; i < s->cap; i++) {
    if(!s->slots[i].h)
      continue;
    char *line = put_line(s->slots[i].w);
    if(!line) {
      snprintf(err, sizeof(err), "out of memory");
      journal_rewrite_abort(rw);
      goto fail;
    }
    int rc = journal_rewrite_add(rw, line, strlen(line), NULL, err, sizeof(err));
    free_line(line);
    if(rc != 0) {
      journal_rewrite_abort(rw);
      goto fail;
    }
  }
  if(journal_rewrite_commit(rw, err, sizeof(err)) != 0)
    goto fail;
  s->compact_after = 0;
  log_event(LOG_LVL_INFO, "store.compact", "file=%s records_before=%zu records=%zu ms=%lld",
            journal_path(s->j), before, journal_records(s->j), (long long)(clock_mono_ms() - t0));
  return;
fail:
  s->compact_after = before + STORE_COMPACT_SLACK + s->count / 4;
  log_event(LOG_LVL_WARN, "store.compact_failed", "file=%s error=\"%s\"", journal_path(s->j), err);
}

static void maybe_compact(struct store *s)
{
  size_t records = journal_records(s->j);
  if(records > 2 * s->count + STORE_COMPACT_SLACK && records >= s->compact_after)
    compact(s);
}

int store_open(const char *dir, struct store **out, char *err, size_t errsz)
{
  struct store *s = calloc(1, sizeof(*s));

  *out = NULL;
  if(!s) {
    seterr(err, errsz, "out of memory", NULL);
    return -1;
  }
  pthread_mutex_init(&s->mu, NULL);
  s->cap = 64;
  s->slots = calloc(s->cap, sizeof(*s->slots));
  if(!s->slots) {
    seterr(err, errsz, "out of memory", NULL);
    goto fail;
  }
  if(journal_open(dir, STORE_FILE, &s->j, err, errsz) != 0)
    goto fail;
  if(journal_load(s->j, load_rec, s, err, errsz) != 0)
    goto fail;
  log_event(LOG_LVL_INFO, "store.open", "file=%s rows=%zu records=%zu", journal_path(s->j),
            s->count, journal_records(s->j));
  maybe_compact(s);
  *out = s;
  return 0;
fail:
  store_close(s);
  return -1;
}

void store_close(struct store *s)
{
  if(!s)
    return;
  for(size_t i = 0; s->slots && i < s->cap; i++) {
    if(s->slots[i].h) {
      webhook_clear(s->slots[i].w);
      free(s->slots[i].w);
    }
  }
  free(s->slots);
  journal_close(s->j);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int store_get(struct store *s, const char *agent_id, struct webhook *out)
{
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  size_t i = find(s, agent_id, hash_id(agent_id));
  if(i != SIZE_MAX)
    rc = webhook_copy(out, s->slots[i].w) == 0 ? 1 : -1;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int store_put(struct store *s, struct webhook *w, char *err, size_t errsz)
{
  struct webhook *row = NULL;
  char *line = NULL;
  int rc = -1;

  pthread_mutex_lock(&s->mu);
  uint64_t h = hash_id(w->agent_id);
  size_t i = find(s, w->agent_id, h);
  int64_t now = clock_now_ms();
  if(i != SIZE_MAX) {
    memcpy(w->id, s->slots[i].w->id, sizeof(w->id));
    w->created_ms = s->slots[i].w->created_ms;
  } else {
    if(uuid_v4(w->id) != 0) {
      seterr(err, errsz, "cannot make a row id", "random number generator failed");
      goto out;
    }
    w->created_ms = now;
  }
  w->updated_ms = now;

  /* Everything that can fail in memory happens before the write, so that
   * after a durable write nothing can fail and memory matches the file. */
  row = calloc(1, sizeof(*row));
  if(!row || webhook_copy(row, w) != 0 || (i == SIZE_MAX && reserve_one(s) != 0) ||
     !(line = put_line(w))) {
    seterr(err, errsz, "out of memory", NULL);
    goto out;
  }
  if(journal_append(s->j, line, strlen(line), true, NULL, err, errsz) != 0)
    goto out;
  if(i != SIZE_MAX) {
    webhook_clear(s->slots[i].w);
    free(s->slots[i].w);
    s->slots[i].w = row;
  } else {
    place(s->slots, s->cap, h, row);
    s->count++;
  }
  row = NULL;
  rc = 0;
  maybe_compact(s);
out:
  pthread_mutex_unlock(&s->mu);
  free_line(line);
  if(row) {
    webhook_clear(row);
    free(row);
  }
  return rc;
}

int store_delete(struct store *s, const char *agent_id, bool *existed, char *err, size_t errsz)
{
  int rc = -1;
  char *line = NULL;
  cJSON *rec = NULL;

  *existed = false;
  pthread_mutex_lock(&s->mu);
  size_t i = find(s, agent_id, hash_id(agent_id));
  if(i == SIZE_MAX) {
    rc = 0;
    goto out;
  }
  rec = cJSON_CreateObject();
  if(!rec || !cJSON_AddStringToObject(rec, "op", "del") ||
     !cJSON_AddStringToObject(rec, "agent_id", s->slots[i].w->agent_id) ||
     !(line = cJSON_PrintUnformatted(rec))) {
    seterr(err, errsz, "out of memory", NULL);
    goto out;
  }
  if(journal_append(s->j, line, strlen(line), true, NULL, err, errsz) != 0)
    goto out;
  remove_at(s, i);
  *existed = true;
  rc = 0;
  maybe_compact(s);
out:
  pthread_mutex_unlock(&s->mu);
  cJSON_Delete(rec);
  free(line);
  return rc;
}

size_t store_count(struct store *s)
{
  pthread_mutex_lock(&s->mu);
  size_t n = s->count;
  pthread_mutex_unlock(&s->mu);
  return n;
}
