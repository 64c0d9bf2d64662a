/* store.h — the durable webhook store: one row per Genie.
 *
 * On disk: <dir>/webhooks.jsonl, an append-only journal of lines
 *   {"op":"put","row":{…on-disk row, secret in clear…}}
 *   {"op":"del","agent_id":"…"}
 * each appended with write + fdatasync before the call returns, compacted
 * (rewrite to a temp file, fsync, rename, fsync the directory) when it holds
 * far more records than live rows. File mode 0600.
 * A torn last line (no trailing newline) is dropped with a log line; any
 * other unparsable line stops the load with the file name and byte offset.
 * Thread-safe (one internal mutex; no I/O is done while callers wait on
 * anything else). */
#ifndef HG_STORE_H
#define HG_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "webhook.h"

struct store;

/* Open (creating dir and file if missing) and load. Returns 0, or -1 with a
 * message for the operator in err (file, offset, how to recover). */
int store_open(const char *dir, struct store **out, char *err, size_t errsz);
void store_close(struct store *s);

/* Deep copy of the row of agent_id (lowercase) into *out.
 * Returns 1 found, 0 none, -1 out of memory. */
int store_get(struct store *s, const char *agent_id, struct webhook *out);

/* Durably insert or replace w->agent_id's row. Sets w->id and w->created_ms
 * (kept from an existing row, else new) and w->updated_ms (now) before
 * writing. Returns 0, or -1 with err (disk full, I/O error): then neither the
 * file's valid content nor the in-memory row changed. */
int store_put(struct store *s, struct webhook *w, char *err, size_t errsz);

/* Durably delete. *existed tells whether there was a row. Returns 0 or -1
 * with err; on -1 nothing changed. */
int store_delete(struct store *s, const char *agent_id, bool *existed, char *err, size_t errsz);

size_t store_count(struct store *s);

#endif
