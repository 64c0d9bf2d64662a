/* outbox.h — the durable queue of accepted escalations.
 *
 * On disk: <dir>/outbox.jsonl, an append-only journal of lines
 *   {"t":"add","seq":N,"agent_id":…,"event_id":…,"accepted_ms":…,"esc":{…}}
 *   {"t":"try","seq":N,"attempt":A,"next_ms":T}   after an attempt that will be retried
 *   {"t":"done","seq":N}                          delivered, failed or skipped
 *   {"t":"seq","seq":N}   first line of a compacted file: seqs up to N were used
 * A compacted "add" carries its latest "attempt" and "next_ms" folded in.
 * "add" is written and fdatasync'ed before outbox_append returns: that is
 * the moment an escalation is accepted. "try" and "done" are written
 * without waiting for fsync (losing one only repeats a delivery, which
 * at-least-once allows). The file is compacted (live "add" records, with
 * their latest "try" folded in, to a temp file, fsync, rename, fsync dir)
 * when finished records dominate, so its size tracks pending work.
 * A torn last line is dropped with a log line; other corruption stops the
 * open with file name and byte offset. Thread-safe. */
#ifndef HG_OUTBOX_H
#define HG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "escalation.h"
#include "uuid.h"

struct outbox_entry {
  uint64_t seq;
  char agent_id[UUID_STR_LEN + 1];
  char event_id[UUID_STR_LEN + 1];
  int64_t accepted_ms;
  int attempts;    /* attempts already made (0 for a new entry) */
  int64_t next_ms; /* epoch ms of the next attempt, 0 = now */
  struct escalation esc;
};

struct outbox;

#define OUTBOX_FULL (-2)

/* Open (creating if missing) and load pending entries. limit is the most
 * pending entries accepted (0 = no limit). Returns 0 or -1 with err. */
int outbox_open(const char *dir, size_t limit, struct outbox **out, char *err, size_t errsz);
void outbox_close(struct outbox *o);

/* Durably append an accepted escalation. Returns 0 and sets e->seq,
 * OUTBOX_FULL when the limit is reached, or -1 with err on an I/O error
 * (e.g. ENOSPC), in which case nothing was added (a partial write is cut
 * back). The entry is copied; the caller keeps ownership of e. */
int outbox_append(struct outbox *o, struct outbox_entry *e, char *err, size_t errsz);

/* Record an attempt that will be retried. Returns 0, or -1 when seq is not
 * pending or the line could not be written (logged; memory is updated
 * anyway: at worst a restart repeats an attempt). */
int outbox_attempt(struct outbox *o, uint64_t seq, int attempts, int64_t next_ms);

/* Record the end of a delivery; the entry stops being pending. Returns 0, or
 * -1 when seq is not pending or the line could not be written (logged; the
 * entry stops being pending anyway: at worst a restart delivers it again). */
int outbox_done(struct outbox *o, uint64_t seq);

size_t outbox_pending(struct outbox *o);

/* Call fn for each pending entry, in seq order (used once at start). The
 * entry is only valid during the call; fn copies what it keeps. No lock is
 * held while fn runs (it may call outbox_done etc.). Stops at the first
 * non-zero return of fn and returns it; -1 when an entry cannot be read. */
int outbox_foreach(struct outbox *o, int (*fn)(void *ctx, const struct outbox_entry *e), void *ctx);

/* Deep copy / release of an entry's owned parts. */
int outbox_entry_copy(struct outbox_entry *dst, const struct outbox_entry *src);
void outbox_entry_clear(struct outbox_entry *e);

#endif
