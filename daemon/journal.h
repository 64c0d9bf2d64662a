/* journal.h — the append-only JSON-lines file under the store and the outbox.
 *
 * One record per line: compact JSON text and '\n'. A record exists only once
 * its '\n' is on disk; bytes after the last '\n' are a torn append from a
 * crash and are cut off at load (with a log line). Any other line that does
 * not parse stops the load, and the file is then left exactly as it is.
 *
 * Appends are one pwrite() of the whole line at the end of the records; if
 * it fails or is short (ENOSPC, EIO) the file is cut back to its previous
 * length, so no partial record stays between two good ones. "Durable"
 * appends are followed by fdatasync. Zero bytes at the end of the file are
 * free room (journal_reserve), not records.
 *
 * Compaction writes a new file <path>.tmp (0600), fsyncs it, renames it over
 * the journal and fsyncs the directory: a crash leaves the old or the new
 * file, never a mix. A stale <path>.tmp found at open is removed.
 *
 * The journal holds an exclusive flock on its file, so a second process on
 * the same state directory fails at open instead of interleaving records.
 * Not thread-safe: the owner (store, outbox) serialises calls. */
#ifndef HG_JOURNAL_H
#define HG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct journal;
struct journal_rewrite;

/* Called for each complete record at load, in file order. rec is the parsed
 * line (a JSON object); off and len locate the line's text in the file
 * (without its '\n'). Return 0, or -1 with a short reason in err: the load
 * then fails, naming the file and offset. */
typedef int (*journal_record_fn)(void *ctx, const cJSON *rec, uint64_t off, size_t len, char *err,
                                 size_t errsz);

/* Create dir (0700, parents too) if missing, open or create dir/name (0600)
 * and lock it. Does not read it: call journal_load next. Returns 0 or -1. */
int journal_open(const char *dir, const char *name, struct journal **out, char *err, size_t errsz);
void journal_close(struct journal *j);

/* Read every record through fn. A torn last line is dropped and the file cut
 * to the last '\n' (only once every complete line has been accepted). On
 * failure err holds a message for the operator (file, byte offset, how to
 * recover) and the file is untouched. Returns 0 or -1. */
int journal_load(struct journal *j, journal_record_fn fn, void *ctx, char *err, size_t errsz);

/* Keep bytes of zero-filled, synced room after the records (0, the
 * default: none). An append that lands in that room changes neither the
 * file's size nor its extents, so its fdatasync is a data flush without a
 * filesystem journal commit: about half the latency and the CPU of an
 * append that grows the file (docs/BENCHMARKS.md). The file then ends in
 * zero bytes, which journal_load reads as free room; the outbox uses it. */
void journal_reserve(struct journal *j, size_t bytes);

/* Append one record: line is compact JSON text of len bytes without '\n'.
 * durable: fdatasync before returning. *off (may be NULL) receives the
 * offset of the line. Returns 0, or -1 with err (strerror text); then the
 * file is back to its previous length. */
int journal_append(struct journal *j, const char *line, size_t len, bool durable, uint64_t *off,
                   char *err, size_t errsz);

/* A durable append without holding the caller's lock across the flush
 * (the delivery engine appends its "try"/"done" records under the same
 * lock, and must not wait out an fdatasync). Under the lock: journal_append
 * with durable = false, then journal_sync_handle, which returns a duplicate
 * of the file's descriptor (or -1 with err). Outside it: journal_sync,
 * which fdatasyncs and closes that descriptor (0, or -1 with err). A
 * compaction in between is harmless: it fsyncs the new file, our record
 * included, before it renames it into place. */
int journal_sync_handle(struct journal *j, char *err, size_t errsz);
int journal_sync(int fd, const char *what, char *err, size_t errsz);

/* Cut the record at off (len bytes, as appended) back off the file if it
 * is still the last one. Returns 0, or -1 if other records followed it. */
int journal_unappend(struct journal *j, uint64_t off, size_t len);

/* Read len bytes at off (a line located by load, append or rewrite). */
int journal_read(struct journal *j, uint64_t off, size_t len, char *buf, char *err, size_t errsz);

/* Records in the file (complete lines loaded, appended or rewritten). */
size_t journal_records(const struct journal *j);
/* Bytes of complete records (the reserve not counted). */
uint64_t journal_size(const struct journal *j);
const char *journal_path(const struct journal *j);

/* Compaction: begin a new file, add each live record, then commit (fsync,
 * rename over the journal, fsync the directory; later appends go to the new
 * file) or abort (the tmp file is removed; the journal is unchanged). commit
 * and abort free rw, commit also on failure; once commit returns 0 the new
 * file is the journal (if the directory fsync failed, the next durable
 * append retries it and fails until it works). *off (may be NULL) receives the
 * record's offset in the new file. */
int journal_rewrite_begin(struct journal *j, struct journal_rewrite **out, char *err, size_t errsz);
int journal_rewrite_add(struct journal_rewrite *rw, const char *line, size_t len, uint64_t *off,
                        char *err, size_t errsz);
int journal_rewrite_commit(struct journal_rewrite *rw, char *err, size_t errsz);
void journal_rewrite_abort(struct journal_rewrite *rw);

/* Helpers for record readers: an integral JSON number in [min, max]. */
bool journal_get_i64(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out);

#endif
