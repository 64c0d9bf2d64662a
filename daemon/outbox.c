/* outbox.c — pending escalations over the journal <dir>/outbox.jsonl (see
 * journal.h and docs/STORAGE.md).
 *
 * Memory holds, per pending entry, only where its "add" line sits in the
 * file and its latest attempt count: about 40 bytes. The escalation itself
 * is read back from the file by outbox_foreach (once, at start) and by
 * compaction. Entries are kept in an array sorted by seq (appends come in
 * seq order), found by binary search; finished ones leave a hole that is
 * squeezed out when holes outnumber live entries. */
#include "outbox.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "journal.h"
#include "log.h"
#include "uuid.h"

#define OUTBOX_FILE "outbox.jsonl"
/* Compact when the file has more than this many records and more than
 * twice as many as pending entries. */
#define OUTBOX_COMPACT_MIN 4096
#define OUTBOX_RESERVE (1024 * 1024) /* room zero-filled ahead: ~1,700 escalations */
#define SEQ_MAX 9007199254740991LL /* 2^53 - 1: exact in a JSON number */

struct pend {
  uint64_t seq;
  uint64_t off;     /* of the "add" line in the current file */
  uint32_t len;     /* its length; 0 = finished (a hole) */
  int32_t attempts; /* latest known, folded in at compaction */
  int64_t next_ms;
  bool stale; /* attempts/next_ms differ from what the add line says */
};

struct outbox {
  pthread_mutex_t mu;
  struct journal *j;
  size_t limit;
  struct pend *v;
  size_t n, cap; /* slots used (holes included) and allocated */
  size_t live;
  uint64_t last_seq; /* highest seq ever seen or given */
  size_t compact_after;
  int64_t warn_after_ms;   /* next outbox.write_failed line, at the earliest */
  unsigned long unwarned;  /* failures not logged since the last line */
};

#define WARN_EVERY_MS 10000

/* A try/done record that could not be written: logged, at most once per
 * WARN_EVERY_MS with the count of the others. On a full disk every retry
 * fails this way, and one line per failure flooded the journal. */
static void write_failed(struct outbox *o, uint64_t seq, const char *record, const char *err)
{
  int64_t now = clock_mono_ms();
  if(now < o->warn_after_ms) {
    o->unwarned++;
    return;
  }
  log_event(LOG_LVL_WARN, "outbox.write_failed",
            "seq=%" PRIu64 " record=%s error=\"%s\" suppressed=%lu", seq, record, err, o->unwarned);
  o->unwarned = 0;
  o->warn_after_ms = now + WARN_EVERY_MS;
}

static void seterr(char *err, size_t errsz, const char *msg)
{
  if(err && errsz)
    snprintf(err, errsz, "%s", msg);
}

static size_t find(const struct outbox *o, uint64_t seq)
{
  size_t lo = 0, hi = o->n;
  while(lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if(o->v[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  if(lo < o->n && o->v[lo].seq == seq && o->v[lo].len != 0)
    return lo;
  return SIZE_MAX;
}

static int reserve_one(struct outbox *o)
{
  if(o->n < o->cap)
    return 0;
  size_t ncap = o->cap ? o->cap * 2 : 256;
  struct pend *nv = realloc(o->v, ncap * sizeof(*nv));
  if(!nv)
    return -1;
  o->v = nv;
  o->cap = ncap;
  return 0;
}

static void squeeze(struct outbox *o)
{
  size_t k = 0;
  for(size_t i = 0; i < o->n; i++)
    if(o->v[i].len != 0)
      o->v[k++] = o->v[i];
  o->n = k;
}

static void finish(struct outbox *o, size_t i)
{
  o->v[i].len = 0;
  o->live--;
  size_t holes = o->n - o->live;
  if(holes > 1024 && holes > o->live)
    squeeze(o);
}

/* Read an "add" record into e (esc owned by e). Returns 0 or -1 with why. */
static int parse_add(const cJSON *rec, struct outbox_entry *e, char *why, size_t whysz)
{
  const cJSON *agent = cJSON_GetObjectItemCaseSensitive(rec, "agent_id");
  const cJSON *event = cJSON_GetObjectItemCaseSensitive(rec, "event_id");
  const cJSON *esc = cJSON_GetObjectItemCaseSensitive(rec, "esc");
  int64_t seq, v;

  memset(e, 0, sizeof(*e));
  if(!journal_get_i64(rec, "seq", 1, SEQ_MAX, &seq)) {
    snprintf(why, whysz, "bad \"seq\"");
    return -1;
  }
  e->seq = (uint64_t)seq;
  /* Both end up in topics, headers and log lines: only the UUIDs hgd
   * writes, never a wildcard, a line break or a header of a hand edit. */
  if(!cJSON_IsString(agent) || !uuid_valid(agent->valuestring)) {
    snprintf(why, whysz, "bad \"agent_id\" (not a UUID)");
    return -1;
  }
  uuid_lower(agent->valuestring, e->agent_id);
  if(!cJSON_IsString(event) || !uuid_valid(event->valuestring)) {
    snprintf(why, whysz, "bad \"event_id\" (not a UUID)");
    return -1;
  }
  uuid_lower(event->valuestring, e->event_id);
  if(!journal_get_i64(rec, "accepted_ms", INT64_MIN, INT64_MAX, &e->accepted_ms)) {
    snprintf(why, whysz, "bad \"accepted_ms\"");
    return -1;
  }
  if(cJSON_GetObjectItemCaseSensitive(rec, "attempt")) {
    if(!journal_get_i64(rec, "attempt", 0, INT32_MAX, &v)) {
      snprintf(why, whysz, "bad \"attempt\"");
      return -1;
    }
    e->attempts = (int)v;
  }
  if(cJSON_GetObjectItemCaseSensitive(rec, "next_ms") &&
     !journal_get_i64(rec, "next_ms", INT64_MIN, INT64_MAX, &e->next_ms)) {
    snprintf(why, whysz, "bad \"next_ms\"");
    return -1;
  }
  if(!cJSON_IsObject(esc) || escalation_from_json(esc, &e->esc) != 0) {
    escalation_clear(&e->esc);
    snprintf(why, whysz, "bad \"esc\"");
    return -1;
  }
  return 0;
}

static int load_rec(void *ctx, const cJSON *rec, uint64_t off, size_t len, char *err, size_t errsz)
{
  struct outbox *o = ctx;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "t");
  int64_t seq, v;

  if(!cJSON_IsString(t)) {
    snprintf(err, errsz, "no \"t\"");
    return -1;
  }
  if(strcmp(t->valuestring, "add") == 0) {
    struct outbox_entry e;
    if(parse_add(rec, &e, err, errsz) != 0)
      return -1;
    struct pend p = {.seq = e.seq,
                     .off = off,
                     .len = (uint32_t)len,
                     .attempts = e.attempts,
                     .next_ms = e.next_ms};
    outbox_entry_clear(&e); /* checked; foreach reads it again when needed */
    if(o->n > 0 && p.seq <= o->v[o->n - 1].seq) {
      snprintf(err, errsz, "seq %" PRIu64 " repeated or out of order", p.seq);
      return -1;
    }
    if(len == 0 || len > UINT32_MAX || reserve_one(o) != 0) {
      snprintf(err, errsz, len ? "record too large or out of memory" : "empty record");
      return -1;
    }
    o->v[o->n++] = p;
    o->live++;
    if(p.seq > o->last_seq)
      o->last_seq = p.seq;
    return 0;
  }
  if(!journal_get_i64(rec, "seq", strcmp(t->valuestring, "seq") == 0 ? 0 : 1, SEQ_MAX, &seq)) {
    snprintf(err, errsz, "bad \"seq\"");
    return -1;
  }
  if((uint64_t)seq > o->last_seq)
    o->last_seq = (uint64_t)seq;
  if(strcmp(t->valuestring, "seq") == 0)
    return 0;
  if(strcmp(t->valuestring, "try") == 0) {
    int64_t next;
    if(!journal_get_i64(rec, "attempt", 0, INT32_MAX, &v) ||
       !journal_get_i64(rec, "next_ms", INT64_MIN, INT64_MAX, &next)) {
      snprintf(err, errsz, "bad \"attempt\" or \"next_ms\"");
      return -1;
    }
    size_t i = find(o, (uint64_t)seq);
    if(i != SIZE_MAX) {
      o->v[i].attempts = (int32_t)v;
      o->v[i].next_ms = next;
      o->v[i].stale = true;
    }
    return 0;
  }
  if(strcmp(t->valuestring, "done") == 0) {
    size_t i = find(o, (uint64_t)seq);
    if(i != SIZE_MAX)
      finish(o, i);
    return 0;
  }
  snprintf(err, errsz, "unknown record type \"%.40s\" (written by a newer hgd?)", t->valuestring);
  return -1;
}

/* The add line of v[i] with the latest attempts folded in (malloc'd). */
static char *current_line(struct outbox *o, size_t i, size_t *len, char *err, size_t errsz)
{
  const struct pend *p = &o->v[i];
  char *buf = malloc((size_t)p->len + 1);
  cJSON *rec = NULL;
  char *out = NULL;

  if(!buf) {
    seterr(err, errsz, "out of memory");
    return NULL;
  }
  if(journal_read(o->j, p->off, p->len, buf, err, errsz) != 0)
    goto fail;
  buf[p->len] = '\0';
  if(!p->stale) {
    *len = p->len;
    return buf;
  }
  rec = cJSON_ParseWithLength(buf, p->len);
  if(!rec) {
    snprintf(err, errsz, "%s: record of seq %" PRIu64 " at offset %" PRIu64 " no longer parses",
             journal_path(o->j), p->seq, p->off);
    goto fail;
  }
  cJSON_DeleteItemFromObjectCaseSensitive(rec, "attempt");
  cJSON_DeleteItemFromObjectCaseSensitive(rec, "next_ms");
  if(!cJSON_AddNumberToObject(rec, "attempt", p->attempts) ||
     !cJSON_AddNumberToObject(rec, "next_ms", (double)p->next_ms) ||
     !(out = cJSON_PrintUnformatted(rec))) {
    seterr(err, errsz, "out of memory");
    goto fail;
  }
  cJSON_Delete(rec);
  free(buf);
  *len = strlen(out);
  return out;
fail:
  cJSON_Delete(rec);
  free(buf);
  return NULL;
}

/* Rewrite the file as a "seq" record (so numbering survives even when
 * nothing is pending) and one "add" per pending entry, in seq order. */
static void compact(struct outbox *o)
{
  struct journal_rewrite *rw = NULL;
  struct pend *nv = NULL;
  char err[512];
  char head[64];
  size_t before = journal_records(o->j), k = 0;
  int64_t t0 = clock_mono_ms();

  nv = malloc((o->live ? o->live : 1) * sizeof(*nv));
  if(!nv) {
    seterr(err, sizeof(err), "out of memory");
    goto fail;
  }
  if(journal_rewrite_begin(o->j, &rw, err, sizeof(err)) != 0)
    goto fail;
  int hl = snprintf(head, sizeof(head), "{\"t\":\"seq\",\"seq\":%" PRIu64 "}", o->last_seq);
  if(journal_rewrite_add(rw, head, (size_t)hl, NULL, err, sizeof(err)) != 0)
    goto fail_rw;
  for(size_t i = 0; i < o->n; i++) {
    size_t len;
    uint64_t off;
    if(o->v[i].len == 0)
      continue;
    char *line = current_line(o, i, &len, err, sizeof(err));
    if(!line)
      goto fail_rw;
    int rc = len > UINT32_MAX ? -1 : journal_rewrite_add(rw, line, len, &off, err, sizeof(err));
    free(line);
    if(rc != 0)
      goto fail_rw;
    nv[k] = o->v[i];
    nv[k].off = off;
    nv[k].len = (uint32_t)len;
    nv[k].stale = false;
    k++;
  }
  if(journal_rewrite_commit(rw, err, sizeof(err)) != 0)
    goto fail;
  free(o->v);
  o->v = nv;
  o->n = o->cap = k;
  if(o->cap == 0) {
    free(o->v);
    o->v = NULL;
  }
  o->compact_after = 0;
  log_event(LOG_LVL_INFO, "outbox.compact", "file=%s records_before=%zu records=%zu ms=%lld",
            journal_path(o->j), before, journal_records(o->j), (long long)(clock_mono_ms() - t0));
  return;
fail_rw:
  journal_rewrite_abort(rw);
fail:
  free(nv);
  o->compact_after = before + OUTBOX_COMPACT_MIN + o->live / 4;
  log_event(LOG_LVL_WARN, "outbox.compact_failed", "file=%s error=\"%s\"", journal_path(o->j), err);
}

static void maybe_compact(struct outbox *o)
{
  size_t records = journal_records(o->j);
  if(records > OUTBOX_COMPACT_MIN && records > 2 * o->live && records >= o->compact_after)
    compact(o);
}

int outbox_open(const char *dir, size_t limit, struct outbox **out, char *err, size_t errsz)
{
  struct outbox *o = calloc(1, sizeof(*o));

  *out = NULL;
  if(!o) {
    seterr(err, errsz, "out of memory");
    return -1;
  }
  pthread_mutex_init(&o->mu, NULL);
  o->limit = limit;
  if(journal_open(dir, OUTBOX_FILE, &o->j, err, errsz) != 0)
    goto fail;
  /* Every accepted escalation waits out one fdatasync on Paho's single
   * receive thread, so its cost bounds intake: append into synced room. */
  journal_reserve(o->j, OUTBOX_RESERVE);
  if(journal_load(o->j, load_rec, o, err, errsz) != 0)
    goto fail;
  squeeze(o);
  log_event(LOG_LVL_INFO, "outbox.open", "file=%s pending=%zu records=%zu last_seq=%" PRIu64,
            journal_path(o->j), o->live, journal_records(o->j), o->last_seq);
  maybe_compact(o);
  *out = o;
  return 0;
fail:
  outbox_close(o);
  return -1;
}

void outbox_close(struct outbox *o)
{
  if(!o)
    return;
  journal_close(o->j);
  free(o->v);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

/* An appended record whose flush failed was never accepted: take it back
 * out of memory, and off the file while it is still the last record. If
 * the engine appended after it, it stays in the file and a restart
 * delivers it (a duplicate at worst: the caller appends it again).
 * Returns -1 for the caller to pass on. */
static int unaccept(struct outbox *o, uint64_t seq)
{
  pthread_mutex_lock(&o->mu);
  size_t i = find(o, seq);
  if(i != SIZE_MAX) {
    /* Where it is now: a compaction may have moved it. */
    if(i == o->n - 1 && journal_unappend(o->j, o->v[i].off, o->v[i].len) == 0) {
      o->n--;
      o->live--;
    } else {
      finish(o, i);
    }
  }
  pthread_mutex_unlock(&o->mu);
  return -1;
}

int outbox_append(struct outbox *o, struct outbox_entry *e, char *err, size_t errsz)
{
  cJSON *rec = NULL, *esc = NULL;
  char *line = NULL;
  uint64_t off;
  size_t len = 0;
  int rc = -1, sync_fd = -1;

  pthread_mutex_lock(&o->mu);
  if(o->limit > 0 && o->live >= o->limit) {
    seterr(err, errsz, "outbox full");
    rc = OUTBOX_FULL;
    goto out;
  }
  if(o->last_seq >= (uint64_t)SEQ_MAX) {
    seterr(err, errsz, "outbox sequence numbers exhausted");
    goto out;
  }
  uint64_t seq = o->last_seq + 1;
  rec = cJSON_CreateObject();
  esc = escalation_to_json(&e->esc);
  if(!rec || !esc || !cJSON_AddStringToObject(rec, "t", "add") ||
     !cJSON_AddNumberToObject(rec, "seq", (double)seq) ||
     !cJSON_AddStringToObject(rec, "agent_id", e->agent_id) ||
     !cJSON_AddStringToObject(rec, "event_id", e->event_id) ||
     !cJSON_AddNumberToObject(rec, "accepted_ms", (double)e->accepted_ms) ||
     (e->attempts && !cJSON_AddNumberToObject(rec, "attempt", e->attempts)) ||
     (e->next_ms && !cJSON_AddNumberToObject(rec, "next_ms", (double)e->next_ms))) {
    seterr(err, errsz, "out of memory");
    goto out;
  }
  cJSON_AddItemToObject(rec, "esc", esc);
  esc = NULL;
  line = cJSON_PrintUnformatted(rec);
  if(!line || reserve_one(o) != 0) {
    seterr(err, errsz, "out of memory");
    goto out;
  }
  len = strlen(line);
  if(len > UINT32_MAX) {
    seterr(err, errsz, "escalation too large");
    goto out;
  }
  if(journal_append(o->j, line, len, false, &off, err, errsz) != 0)
    goto out;
  if((sync_fd = journal_sync_handle(o->j, err, errsz)) < 0) {
    journal_unappend(o->j, off, len);
    goto out;
  }
  o->v[o->n++] = (struct pend){
      .seq = seq, .off = off, .len = (uint32_t)len, .attempts = e->attempts, .next_ms = e->next_ms};
  o->live++;
  o->last_seq = seq;
  rc = 0;
  maybe_compact(o);
out:
  pthread_mutex_unlock(&o->mu);
  cJSON_Delete(rec);
  cJSON_Delete(esc);
  free(line);
  /* The flush, outside the lock (journal.h): the engine keeps finishing
   * deliveries meanwhile. Only the receive thread appends, so there is no
   * second appender to wait for. */
  if(rc == 0 && journal_sync(sync_fd, journal_path(o->j), err, errsz) != 0)
    rc = unaccept(o, seq);
  if(rc == 0)
    e->seq = seq;
  return rc;
}

int outbox_attempt(struct outbox *o, uint64_t seq, int attempts, int64_t next_ms)
{
  char line[128], err[256];
  int rc = -1;

  pthread_mutex_lock(&o->mu);
  size_t i = find(o, seq);
  if(i == SIZE_MAX)
    goto out;
  int len = snprintf(line, sizeof(line),
                     "{\"t\":\"try\",\"seq\":%" PRIu64 ",\"attempt\":%d,\"next_ms\":%" PRId64 "}",
                     seq, attempts, next_ms);
  rc = journal_append(o->j, line, (size_t)len, false, NULL, err, sizeof(err));
  if(rc != 0)
    write_failed(o, seq, "try", err);
  /* Memory follows the delivery engine even if the line was lost: the
   * worst case is a repeated attempt after a restart. */
  o->v[i].attempts = attempts;
  o->v[i].next_ms = next_ms;
  o->v[i].stale = true;
  maybe_compact(o);
out:
  pthread_mutex_unlock(&o->mu);
  return rc;
}

int outbox_done(struct outbox *o, uint64_t seq)
{
  char line[64], err[256];
  int rc = -1;

  pthread_mutex_lock(&o->mu);
  size_t i = find(o, seq);
  if(i == SIZE_MAX)
    goto out;
  int len = snprintf(line, sizeof(line), "{\"t\":\"done\",\"seq\":%" PRIu64 "}", seq);
  rc = journal_append(o->j, line, (size_t)len, false, NULL, err, sizeof(err));
  if(rc != 0)
    write_failed(o, seq, "done", err);
  /* Finished either way; without the line a restart delivers it again. */
  finish(o, i);
  maybe_compact(o);
out:
  pthread_mutex_unlock(&o->mu);
  return rc;
}

size_t outbox_pending(struct outbox *o)
{
  pthread_mutex_lock(&o->mu);
  size_t n = o->live;
  pthread_mutex_unlock(&o->mu);
  return n;
}

/* Not under the lock while fn runs, so fn may call outbox_done and friends. */
int outbox_foreach(struct outbox *o, int (*fn)(void *ctx, const struct outbox_entry *e), void *ctx)
{
  uint64_t *seqs = NULL;
  size_t nseq = 0;
  int rc = 0;

  pthread_mutex_lock(&o->mu);
  seqs = malloc((o->live ? o->live : 1) * sizeof(*seqs));
  if(seqs)
    for(size_t i = 0; i < o->n; i++)
      if(o->v[i].len != 0)
        seqs[nseq++] = o->v[i].seq;
  pthread_mutex_unlock(&o->mu);
  if(!seqs)
    return -1;

  for(size_t k = 0; k < nseq && rc == 0; k++) {
    struct outbox_entry e;
    char err[512];
    char *line = NULL;
    size_t len = 0;
    cJSON *rec = NULL;
    struct pend p = {0};

    pthread_mutex_lock(&o->mu);
    size_t i = find(o, seqs[k]);
    if(i != SIZE_MAX) {
      p = o->v[i];
      line = malloc((size_t)p.len + 1);
      if(!line || journal_read(o->j, p.off, p.len, line, err, sizeof(err)) != 0) {
        if(!line)
          seterr(err, sizeof(err), "out of memory");
        rc = -1;
      }
      len = p.len;
    }
    pthread_mutex_unlock(&o->mu);
    if(i == SIZE_MAX) /* finished meanwhile */
      continue;
    if(rc == 0 && !(rec = cJSON_ParseWithLength(line, len))) {
      snprintf(err, sizeof(err), "record of seq %" PRIu64 " no longer parses", seqs[k]);
      rc = -1;
    }
    if(rc == 0 && parse_add(rec, &e, err, sizeof(err)) != 0)
      rc = -1;
    if(rc == 0) {
      e.attempts = p.attempts;
      e.next_ms = p.next_ms;
      rc = fn(ctx, &e);
      outbox_entry_clear(&e);
    } else {
      log_event(LOG_LVL_ERROR, "outbox.read_failed", "file=%s seq=%" PRIu64 " error=\"%s\"",
                journal_path(o->j), seqs[k], err);
    }
    cJSON_Delete(rec);
    free(line);
  }
  free(seqs);
  return rc;
}

static int dup_str(char **dst, const char *src)
{
  *dst = NULL;
  if(!src)
    return 0;
  *dst = strdup(src);
  return *dst ? 0 : -1;
}

int outbox_entry_copy(struct outbox_entry *dst, const struct outbox_entry *src)
{
  const struct escalation *s = &src->esc;
  struct escalation *d = &dst->esc;

  *dst = *src;
  memset(d, 0, sizeof(*d));
  memcpy(d->event_id, s->event_id, sizeof(d->event_id));
  if(dup_str(&d->caller_number, s->caller_number) || dup_str(&d->call_sid, s->call_sid) ||
     dup_str(&d->reason, s->reason) || dup_str(&d->summary, s->summary) ||
     dup_str(&d->agent_session_id, s->agent_session_id) ||
     (s->fields && !(d->fields = cJSON_Duplicate(s->fields, 1)))) {
    outbox_entry_clear(dst);
    return -1;
  }
  return 0;
}

void outbox_entry_clear(struct outbox_entry *e)
{
  if(!e)
    return;
  escalation_clear(&e->esc);
  memset(e, 0, sizeof(*e));
}
