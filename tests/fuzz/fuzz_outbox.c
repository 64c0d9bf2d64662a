/* fuzz_outbox.c — the outbox loader: the input is the whole outbox.jsonl of
 * a state directory; outbox_open must load it or refuse it with a message.
 * A loaded outbox is walked (every pending entry read back and parsed, as at
 * start-up) and takes an append, an attempt and a done. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "log.h"
#include "outbox.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  log_set_level(LOG_LVL_ERROR);
  fuzz_tmpdir("outbox.jsonl");
  return 0;
}

static int walk(void *ctx, const struct outbox_entry *e)
{
  struct outbox_entry c;
  size_t *n = ctx;

  if (outbox_entry_copy(&c, e) == 0)
    outbox_entry_clear(&c);
  (*n)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct outbox *o = NULL;
  struct outbox_entry e = {0};
  char err[1024] = "";
  size_t walked = 0, pending;

  fuzz_tmpdir("outbox.jsonl");
  fuzz_write(data, size);
  if (outbox_open(fuzz_dir, 0, &o, err, sizeof err) != 0) {
    if (!err[0])
      abort();
    return 0;
  }
  pending = outbox_pending(o);
  if (outbox_foreach(o, walk, &walked) == 0 && walked != pending)
    abort();
  memcpy(e.agent_id, "3fa85f64-5717-4562-b3fc-2c963f66afa6", UUID_STR_LEN + 1);
  memcpy(e.event_id, "0b6e1f0c-3f5e-4a43-9d55-9f0f6b1de2a4", UUID_STR_LEN + 1);
  e.accepted_ms = 1764784800000;
  e.esc.reason = strdup("fuzz");
  if (e.esc.reason && outbox_append(o, &e, err, sizeof err) == 0) {
    if (outbox_pending(o) != pending + 1)
      abort();
    outbox_attempt(o, e.seq, 1, 1764784805000);
    if (outbox_done(o, e.seq) != 0)
      abort();
  }
  escalation_clear(&e.esc);
  outbox_close(o);
  return 0;
}
