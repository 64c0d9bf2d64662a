/* test_wipe.c — secret material is wiped before its memory is freed.
 *
 * This program replaces free() for the whole process (libcjson and libc
 * included): while a check is armed, every block handed to free() is
 * scanned for the test secrets, and a block that still holds one is a
 * failure. Each test drives one path that handles secrets: request parsing
 * (jsonutil_parse, cJSON trees), the webhook row, the store (append, load,
 * compaction buffers), the keys file, signatures.
 *
 * Without ASan the program defines free() itself (on glibc's __libc_free);
 * under ASan, which owns free(), it installs the sanitizer's free hook,
 * called before a block is released. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "jsonutil.h"
#include "keyring.h"
#include "log.h"
#include "payload.h"
#include "reqsig.h"
#include "store.h"
#include "webhook.h"

#if defined(__SANITIZE_ADDRESS__)
#define HG_NO_FREE_OVERRIDE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HG_NO_FREE_OVERRIDE 1
#endif
#endif

#define WH_SECRET "whsec_WIPE_TEST_5b1f0e9c2d"
#define KEY_SECRET "hgk_WIPE_TEST_a8c4e2f17d3b"
#define AGENT "3fa85f64-5717-4562-b3fc-2c963f66afa6"

static volatile int armed;
static volatile int leaks;
static char leak_where[256];

static bool holds(const unsigned char *p, size_t n, const char *s)
{
  size_t sl = strlen(s);
  for (size_t i = 0; i + sl <= n; i++)
    if (p[i] == (unsigned char)s[0] && memcmp(p + i, s, sl) == 0)
      return true;
  return false;
}

static void check_block(const void *p, size_t n)
{
  if (holds(p, n, WH_SECRET) || holds(p, n, KEY_SECRET)) {
    if (!leaks++)
      snprintf(leak_where, sizeof leak_where, "%zu-byte block: %.200s", n, (const char *)p);
  }
}

#ifndef HG_NO_FREE_OVERRIDE
extern void __libc_free(void *p);

void free(void *p)
{
  if (p && armed)
    check_block(p, malloc_usable_size(p));
  __libc_free(p);
}

static void install_check(void) {}
#else
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static void on_malloc(const volatile void *p, size_t n)
{
  (void)p;
  (void)n;
}

static void on_free(const volatile void *p)
{
  if (p && armed)
    check_block((const void *)p, __sanitizer_get_allocated_size(p));
}

static void install_check(void)
{
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#endif

static void arm(void)
{
  leaks = 0;
  leak_where[0] = '\0';
  armed = 1;
}

static void disarm_and_check(const char *what)
{
  armed = 0;
  if (leaks)
    fail_msg("%s: %d freed block(s) still held a secret; first: %s", what, leaks, leak_where);
}

static int setup(void **state)
{
  (void)state;
  log_set_level(LOG_LVL_ERROR);
  return 0;
}

static const char request[] = "{\"agentId\":\"" AGENT "\",\"url\":\"https://hooks.example.com/x\","
                              "\"secret\":\"" WH_SECRET "\",\"secret_header\":\"X-Sig\","
                              "\"custom_fields\":[{\"key\":\"reason\",\"useForSignature\":true}]}";

static void test_request_parse(void **state)
{
  char err[256];
  struct webhook w;
  cJSON *params;

  (void)state;
  arm();
  params = jsonutil_parse(request, strlen(request), 65536, err, sizeof err);
  assert_non_null(params);
  assert_int_equal(webhook_from_request(params, false, &w, err, sizeof err), 0);
  cJSON_Delete(params);
  webhook_clear(&w);
  disarm_and_check("jsonutil_parse + webhook_from_request");
}

static void test_row_forms(void **state)
{
  char err[256];
  struct webhook w, copy, back;
  cJSON *params, *disk, *wire;
  char *text;

  (void)state;
  params = jsonutil_parse(request, strlen(request), 65536, err, sizeof err);
  assert_int_equal(webhook_from_request(params, false, &w, err, sizeof err), 0);
  cJSON_Delete(params);
  arm();
  memcpy(w.id, AGENT, sizeof w.id);
  assert_int_equal(webhook_copy(&copy, &w), 0);
  disk = webhook_to_json(&copy, true);
  wire = webhook_to_json(&copy, false);
  text = jsonutil_print(disk);
  assert_non_null(text);
  assert_int_equal(webhook_from_json(disk, &back, err, sizeof err), 0);
  crypto_free_secret(text);
  cJSON_Delete(disk);
  cJSON_Delete(wire);
  webhook_clear(&back);
  webhook_clear(&copy);
  webhook_clear(&w);
  disarm_and_check("webhook_copy / to_json / from_json / clear");
}

static void test_signatures(void **state)
{
  char err[256], hex[CRYPTO_SHA256_HEX_LEN + 1], sw[PAYLOAD_STDWH_SIG_MAX];
  struct webhook w;
  struct escalation e = {0};
  struct payload_meta m = {"0b6e1f0c-3f5e-4a43-9d55-9f0f6b1de2a4", "escalation", 0};
  cJSON *params = jsonutil_parse(request, strlen(request), 65536, err, sizeof err), *body;
  char *text;

  (void)state;
  assert_int_equal(webhook_from_request(params, false, &w, err, sizeof err), 0);
  cJSON_Delete(params);
  arm();
  body = payload_build(&w, &e, &m);
  text = jsonutil_print(body);
  assert_int_equal(payload_signature(&w, body, text, hex), 0);
  assert_int_equal(payload_stdwh_signature(w.secret, m.event_id, "1", text, strlen(text), sw), 0);
  free(text);
  cJSON_Delete(body);
  webhook_clear(&w);
  disarm_and_check("payload signatures");
}

static void tmpdir(char *out, size_t outsz, const char *name)
{
  char cmd[1200]; /* two copies of out (up to 512) and the command */
  snprintf(out, outsz, "%s/wipe-%d/%s", HG_TEST_TMP, (int)getpid(), name);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
  assert_int_equal(system(cmd), 0);
}

static void test_store(void **state)
{
  char dir[512], err[512];
  struct store *s;
  struct webhook w, got;
  cJSON *params;
  bool existed;

  (void)state;
  tmpdir(dir, sizeof dir, "store");
  params = jsonutil_parse(request, strlen(request), 65536, err, sizeof err);
  assert_int_equal(webhook_from_request(params, false, &w, err, sizeof err), 0);
  cJSON_Delete(params);

  arm();
  assert_int_equal(store_open(dir, &s, err, sizeof err), 0);
  assert_int_equal(store_put(s, &w, err, sizeof err), 0);
  assert_int_equal(store_get(s, AGENT, &got), 1);
  webhook_clear(&got);
  store_close(s);
  disarm_and_check("store_open / store_put / store_get / store_close");

  /* Load a file full of secrets, and compact it (many puts, one row). */
  arm();
  assert_int_equal(store_open(dir, &s, err, sizeof err), 0);
  for (int i = 0; i < 1100; i++)
    assert_int_equal(store_put(s, &w, err, sizeof err), 0);
  assert_int_equal(store_delete(s, AGENT, &existed, err, sizeof err), 0);
  store_close(s);
  assert_int_equal(store_open(dir, &s, err, sizeof err), 0);
  store_close(s);
  disarm_and_check("store load and compaction");
  webhook_clear(&w);
}

static void test_keys_file(void **state)
{
  static const char keys[] =
      "{\"keys\":[{\"id\":\"ops\",\"secret\":\"" KEY_SECRET "\",\"agents\":[\"*\"],"
      "\"actions\":[\"get\",\"escalate\"]}]}";
  char dir[512], path[600], err[512], why[128], sig[CRYPTO_SHA256_HEX_LEN + 1];
  struct keyring *k;
  int fd;

  (void)state;
  tmpdir(dir, sizeof dir, "keys");
  snprintf(path, sizeof path, "%s/keys.json", dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, keys, strlen(keys)), (ssize_t)strlen(keys));
  close(fd);

  arm();
  assert_int_equal(keyring_open(path, &k, err, sizeof err), 0);
  assert_int_equal(keyring_reload(k, err, sizeof err), 0);
  reqsig_sign(KEY_SECRET, "t", "1", "00112233445566778899aabbccddeeff", "{}", 2, sig);
  struct keyring_props p = {.key = "ops", .ts = "1", .nonce = "00112233445566778899aabbccddeeff", .sig = sig};
  assert_int_equal(keyring_verify(k, &p, "t", "{}", 2, 1, why, sizeof why), 0);
  keyring_free(k);
  disarm_and_check("keyring_open / reload / verify / free");
}

static void test_free_secret(void **state)
{
  char *s = strdup(WH_SECRET);

  (void)state;
  arm();
  crypto_free_secret(s);
  disarm_and_check("crypto_free_secret");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_free_secret, setup),
      cmocka_unit_test_setup(test_request_parse, setup),
      cmocka_unit_test_setup(test_row_forms, setup),
      cmocka_unit_test_setup(test_signatures, setup),
      cmocka_unit_test_setup(test_store, setup),
      cmocka_unit_test_setup(test_keys_file, setup),
  };
  install_check();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
