/* fuzz_store.c — the webhook store loader: the input is the whole
 * webhooks.jsonl of a state directory; store_open must either load it or
 * refuse it with a message, never crash. A loaded store then takes a put and
 * a delete (the append path over a table built from hostile records). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "log.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  log_set_level(LOG_LVL_ERROR);
  fuzz_tmpdir("webhooks.jsonl");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char agent[] = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
  struct store *s = NULL;
  struct webhook w = {0}, got;
  char err[1024] = "";
  bool existed;

  fuzz_tmpdir("webhooks.jsonl");
  fuzz_write(data, size);
  if (store_open(fuzz_dir, &s, err, sizeof err) != 0) {
    if (!err[0])
      abort();
    return 0;
  }
  size_t n = store_count(s);
  if (store_get(s, agent, &got) > 0)
    webhook_clear(&got);
  memcpy(w.agent_id, agent, sizeof agent);
  w.url = strdup("https://example.com/hook");
  w.secret = strdup("whsec_fuzz");
  w.secret_header = strdup(WEBHOOK_DEFAULT_HEADER);
  w.is_active = true;
  if (w.url && w.secret && w.secret_header && store_put(s, &w, err, sizeof err) == 0) {
    if (store_get(s, agent, &got) != 1)
      abort();
    webhook_clear(&got);
    if (store_delete(s, agent, &existed, err, sizeof err) != 0 || !existed)
      abort();
    if (store_count(s) > n)
      abort();
  }
  webhook_clear(&w);
  store_close(s);
  return 0;
}
