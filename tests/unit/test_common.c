/* test_common.c — libhgcommon: the signing vectors, validation rules,
 * primitives and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "escalation.h"
#include "jsonutil.h"
#include "payload.h"
#include "reqsig.h"
#include "uuid.h"
#include "webhook.h"

#define AGENT "3fa85f64-5717-4562-b3fc-2c963f66afa6"

/* ---- helpers ---------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static cJSON *load_vectors(void)
{
  size_t len;
  char *text = read_file(HG_VECTORS, &len);
  char err[128];
  cJSON *v = jsonutil_parse(text, len, 1 << 20, err, sizeof err);

  if (!v)
    fail_msg("vectors: %s", err);
  free(text);
  return v;
}

static cJSON *parse(const char *s)
{
  char err[128];
  cJSON *j = jsonutil_parse(s, strlen(s), 1 << 20, err, sizeof err);

  if (!j)
    fail_msg("parse %s: %s", s, err);
  return j;
}

static const char *vstr(const cJSON *o, const char *key)
{
  const cJSON *v = jsonutil_get(o, key);

  if (!cJSON_IsString(v))
    fail_msg("vector member %s missing", key);
  return v->valuestring;
}

/* Upsert validation of a JSON text; returns rc, keeps the error. */
static int upsert(const char *json, bool allow_http, struct webhook *w, char *err, size_t errsz)
{
  cJSON *p = parse(json);
  int rc;

  err[0] = '\0';
  rc = webhook_from_request(p, allow_http, w, err, errsz);
  cJSON_Delete(p);
  return rc;
}

/* Expect a refusal whose message contains want. */
static void upsert_bad(const char *json, bool allow_http, const char *want)
{
  struct webhook w;
  char err[256];

  if (upsert(json, allow_http, &w, err, sizeof err) == 0)
    fail_msg("accepted: %s", json);
  if (!strstr(err, want))
    fail_msg("%s: error \"%s\" lacks \"%s\"", json, err, want);
  assert_null(w.url);
  assert_null(w.secret);
  assert_null(w.fields);
}

static void upsert_ok(const char *json, bool allow_http)
{
  struct webhook w;
  char err[256];

  if (upsert(json, allow_http, &w, err, sizeof err) != 0)
    fail_msg("refused: %s: %s", json, err);
  webhook_clear(&w);
}

static char *repeat(char c, size_t n)
{
  char *s = malloc(n + 1);

  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* ---- the signing vectors ---------------------------------------------- */

static const char *const default_names[] = {"callerNumber", "callSid", "reason", "summary",
                                            "agentSessionId"};

static bool is_default_name(const char *k)
{
  if (!strcmp(k, "eventId") || !strcmp(k, "eventType") || !strcmp(k, "timestamp"))
    return true;
  for (size_t i = 0; i < sizeof default_names / sizeof default_names[0]; i++)
    if (!strcmp(k, default_names[i]))
      return true;
  return false;
}

/* One "webhook" vector: the escalation message a call node would publish is
 * derived from the expected body (default-named members go to the named
 * properties, the others into "fields"), run through escalation_parse and
 * payload_build, and every output compared byte for byte. */
static void check_webhook_vector(const cJSON *vec)
{
  const char *name = vstr(vec, "name");
  const char *mode = vstr(vec, "mode");
  cJSON *body = parse(vstr(vec, "body"));
  cJSON *params = cJSON_CreateObject(), *msg = cJSON_CreateObject(), *fields = NULL;
  const cJSON *cf = jsonutil_get(vec, "custom_fields");
  struct payload_meta meta = {.event_type = "escalation", .accepted_ms = 0};
  char eid[UUID_STR_LEN + 1] = "";
  struct webhook w;
  struct escalation e;
  char err[256], sig[CRYPTO_SHA256_HEX_LEN + 1];
  char *text, *got, *signed_msg;
  size_t len;
  cJSON *out;

  cJSON_AddStringToObject(params, "agentId", AGENT);
  cJSON_AddStringToObject(params, "url", "https://hooks.example.com/escalations");
  cJSON_AddStringToObject(params, "secret", vstr(vec, "secret"));
  if (cf)
    cJSON_AddItemToObject(params, "custom_fields", cJSON_Duplicate(cf, 1));
  if (webhook_from_request(params, false, &w, err, sizeof err) != 0)
    fail_msg("%s: webhook refused: %s", name, err);
  cJSON_Delete(params);
  assert_int_equal(w.nfields, cf ? (size_t)cJSON_GetArraySize(cf) : 0);
  if (strcmp(mode, "body") == 0) {
    for (size_t i = 0; i < w.nfields; i++)
      assert_false(w.fields[i].sign);
  } else {
    assert_string_equal(mode, "fields");
  }

  for (const cJSON *m = body->child; m; m = m->next) {
    if (!strcmp(m->string, "eventId")) {
      snprintf(eid, sizeof eid, "%s", m->valuestring);
      cJSON_AddItemToObject(msg, "eventId", cJSON_Duplicate(m, 1));
    } else if (!strcmp(m->string, "eventType")) {
      meta.event_type = m->valuestring;
    } else if (!strcmp(m->string, "timestamp")) {
      assert_int_equal(clock_parse_iso8601(m->valuestring, &meta.accepted_ms), 0);
    } else if (is_default_name(m->string)) {
      cJSON_AddItemToObject(msg, m->string, cJSON_Duplicate(m, 1));
    } else {
      if (!fields)
        fields = cJSON_AddObjectToObject(msg, "fields");
      cJSON_AddItemToObject(fields, m->string, cJSON_Duplicate(m, 1));
    }
  }
  text = jsonutil_print(msg);
  if (escalation_parse(text, strlen(text), 0, &e, err, sizeof err) != 0)
    fail_msg("%s: escalation refused: %s", name, err);
  free(text);
  cJSON_Delete(msg);
  meta.event_id = e.event_id[0] ? e.event_id : eid;

  out = payload_build(&w, &e, &meta);
  assert_non_null(out);
  got = jsonutil_print(out);
  if (strcmp(got, vstr(vec, "body")) != 0)
    fail_msg("%s: body\n got %s\nwant %s", name, got, vstr(vec, "body"));

  signed_msg = payload_signed_message(&w, out, got, &len);
  assert_non_null(signed_msg);
  assert_int_equal(len, strlen(vstr(vec, "signed_message")));
  assert_memory_equal(signed_msg, vstr(vec, "signed_message"), len);

  assert_int_equal(payload_signature(&w, out, got, sig), 0);
  assert_string_equal(sig, vstr(vec, "signature"));
  /* And the signature is HMAC over the vector's own signed message. */
  assert_int_equal(crypto_hmac_sha256_hex(w.secret, strlen(w.secret), vstr(vec, "signed_message"),
                                          strlen(vstr(vec, "signed_message")), sig),
                   0);
  assert_string_equal(sig, vstr(vec, "signature"));

  free(signed_msg);
  free(got);
  cJSON_Delete(out);
  cJSON_Delete(body);
  escalation_clear(&e);
  webhook_clear(&w);
}

static void check_request_vector(const cJSON *vec)
{
  const char *secret = vstr(vec, "key_secret"), *topic = vstr(vec, "topic");
  const char *ts = vstr(vec, "ts"), *nonce = vstr(vec, "nonce");
  const char *payload = vstr(vec, "payload"), *want = vstr(vec, "signature");
  char sig[CRYPTO_SHA256_HEX_LEN + 1], *msg, *bad;
  size_t n;
  long long t;

  assert_true(reqsig_nonce_valid(nonce));
  assert_int_equal(reqsig_parse_ts(ts, &t), 0);
  assert_int_equal(reqsig_sign(secret, topic, ts, nonce, payload, strlen(payload), sig), 0);
  assert_string_equal(sig, want);
  assert_true(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), want));

  /* The message layout of section 2, checked against the vector's. */
  n = 4 + strlen(topic) + 1 + strlen(ts) + 1 + strlen(nonce) + 1 + strlen(payload) + 1;
  msg = malloc(n);
  assert_non_null(msg);
  snprintf(msg, n, "hg1\n%s\n%s\n%s\n%s", topic, ts, nonce, payload);
  assert_string_equal(msg, vstr(vec, "signed_message"));
  assert_int_equal(crypto_hmac_sha256_hex(secret, strlen(secret), msg, strlen(msg), sig), 0);
  assert_string_equal(sig, want);
  free(msg);

  /* Any change is refused. */
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload) - 1, want));
  assert_false(reqsig_verify("other", topic, ts, nonce, payload, strlen(payload), want));
  assert_false(
      reqsig_verify(secret, "hg/v1/webhook/delete", ts, nonce, payload, strlen(payload), want));
  assert_false(reqsig_verify(secret, topic, "1796320801", nonce, payload, strlen(payload), want));
  assert_false(
      reqsig_verify(secret, topic, ts, "0000000000000000", payload, strlen(payload), want));
  bad = strdup(want);
  bad[0] = bad[0] == '0' ? '1' : '0';
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), bad));
  /* Uppercase hex is not the lowercase signature. */
  for (size_t i = 0; i < 64; i++)
    bad[i] = (char)(want[i] >= 'a' ? want[i] - 32 : want[i]);
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), bad));
  /* Truncated, extended, empty, absent. */
  memcpy(bad, want, 64);
  bad[63] = '\0';
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), bad));
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), ""));
  assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), NULL));
  {
    char longer[80];
    snprintf(longer, sizeof longer, "%s0", want);
    assert_false(reqsig_verify(secret, topic, ts, nonce, payload, strlen(payload), longer));
  }
  free(bad);

  /* An escalation vector's payload is a valid escalation message. */
  if (strncmp(topic, "hg/v1/escalation/", 17) == 0) {
    struct escalation e;
    char err[128];
    assert_int_equal(escalation_parse(payload, strlen(payload), 0, &e, err, sizeof err), 0);
    assert_non_null(e.call_sid);
    escalation_clear(&e);
  }
}

static void check_stdwh_vector(const cJSON *vec)
{
  const char *secret = vstr(vec, "secret"), *id = vstr(vec, "webhook-id");
  const char *ts = vstr(vec, "webhook-timestamp"), *body = vstr(vec, "body");
  char sig[PAYLOAD_STDWH_SIG_MAX], *msg;
  uint8_t mac[CRYPTO_SHA256_LEN];
  char b64[64];
  size_t n;

  assert_int_equal(payload_stdwh_signature(secret, id, ts, body, strlen(body), sig), 0);
  assert_string_equal(sig, vstr(vec, "webhook-signature"));

  n = strlen(id) + strlen(ts) + strlen(body) + 3;
  msg = malloc(n);
  assert_non_null(msg);
  snprintf(msg, n, "%s.%s.%s", id, ts, body);
  assert_string_equal(msg, vstr(vec, "signed_message"));
  assert_int_equal(crypto_hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac), 0);
  assert_int_equal(crypto_base64_encode(mac, sizeof mac, b64, sizeof b64), 44);
  assert_string_equal(vstr(vec, "webhook-signature") + 3, b64);
  free(msg);
}

static void test_vectors(void **state)
{
  (void)state;
  cJSON *v = load_vectors();
  int seen = 0;

  /* Every section is checked; an unknown one fails the test so that a new
   * kind of vector cannot be skipped silently. */
  for (const cJSON *sec = v->child; sec; sec = sec->next) {
    void (*check)(const cJSON *) = NULL;
    if (!strcmp(sec->string, "_about"))
      continue;
    if (!strcmp(sec->string, "webhook"))
      check = check_webhook_vector;
    else if (!strcmp(sec->string, "request"))
      check = check_request_vector;
    else if (!strcmp(sec->string, "standard_webhooks"))
      check = check_stdwh_vector;
    else
      fail_msg("vectors: unknown section %s", sec->string);
    assert_true(cJSON_IsArray(sec));
    assert_true(cJSON_GetArraySize(sec) > 0);
    for (const cJSON *vec = sec->child; vec; vec = vec->next) {
      check(vec);
      seen++;
    }
  }
  assert_true(seen >= 6);
  cJSON_Delete(v);
}

/* ---- crypto ----------------------------------------------------------- */

static void test_hmac_known_answers(void **state)
{
  (void)state;
  char hex[CRYPTO_SHA256_HEX_LEN + 1];
  uint8_t key[131], mac1[CRYPTO_SHA256_LEN], mac2[CRYPTO_SHA256_LEN];
  const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";

  /* RFC 4231 test cases 1, 2 and 6. */
  memset(key, 0x0b, 20);
  assert_int_equal(crypto_hmac_sha256_hex(key, 20, "Hi There", 8, hex), 0);
  assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  assert_int_equal(crypto_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
  assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  memset(key, 0xaa, sizeof key);
  assert_int_equal(crypto_hmac_sha256_hex(key, sizeof key, big, strlen(big), hex), 0);
  assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  /* Empty key and message. */
  assert_int_equal(crypto_hmac_sha256_hex(NULL, 0, "", 0, hex), 0);
  assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

  /* Parts hash as their concatenation. */
  const struct crypto_part parts[] = {{"what do ", 8}, {"", 0}, {"ya want for nothing?", 20}};
  assert_int_equal(crypto_hmac_sha256_parts("Jefe", 4, parts, 3, mac1), 0);
  assert_int_equal(crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac2), 0);
  assert_memory_equal(mac1, mac2, sizeof mac1);
}

static void test_hex_base64(void **state)
{
  (void)state;
  static const struct {
    const char *in, *out;
  } b64[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
  const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  char hex[2 * sizeof bytes + 1], out[256];
  uint8_t big[120];

  crypto_hex_encode(bytes, sizeof bytes, hex);
  assert_string_equal(hex, "00017f80abff");
  crypto_hex_encode(bytes, 0, hex);
  assert_string_equal(hex, "");

  /* RFC 4648 section 10. */
  for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++) {
    int n = crypto_base64_encode((const uint8_t *)b64[i].in, strlen(b64[i].in), out, sizeof out);
    assert_int_equal(n, (int)strlen(b64[i].out));
    assert_string_equal(out, b64[i].out);
  }
  /* Longer than 64 characters of output: no line breaks. */
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)i;
  assert_int_equal(crypto_base64_encode(big, sizeof big, out, sizeof out), 160);
  assert_null(strchr(out, '\n'));
  assert_string_equal(
      out, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
           "PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3");
  /* Too small a buffer (the NUL needs room too). */
  assert_int_equal(crypto_base64_encode((const uint8_t *)"foo", 3, out, 4), -1);
  assert_int_equal(crypto_base64_encode((const uint8_t *)"foo", 3, out, 5), 4);
}

static void test_equal_and_wipe(void **state)
{
  (void)state;
  char s[] = "secret";

  assert_int_equal(crypto_equal("abc", 3, "abc", 3), 1);
  assert_int_equal(crypto_equal("abc", 3, "abd", 3), 0);
  assert_int_equal(crypto_equal("abc", 3, "bbc", 3), 0);
  assert_int_equal(crypto_equal("abc", 3, "abcd", 4), 0);
  assert_int_equal(crypto_equal("", 0, "", 0), 1);
  assert_int_equal(crypto_equal("a\0b", 3, "a\0c", 3), 0);
  crypto_wipe(s, sizeof s);
  for (size_t i = 0; i < sizeof s; i++)
    assert_int_equal(s[i], 0);
  crypto_free_secret(strdup("gone"));
  crypto_free_secret(NULL);
}

static void *rng_thread(void *arg)
{
  char(*ids)[UUID_STR_LEN + 1] = arg;

  for (int i = 0; i < 50; i++)
    if (uuid_v4(ids[i]) != 0)
      return (void *)1;
  return NULL;
}

static void test_random(void **state)
{
  (void)state;
  uint8_t a[32], b[32], zero[32] = {0};
  static char ids[4][50][UUID_STR_LEN + 1];
  pthread_t t[4];

  assert_int_equal(crypto_random(a, sizeof a), 0);
  assert_int_equal(crypto_random(b, sizeof b), 0);
  assert_memory_not_equal(a, b, sizeof a);
  assert_memory_not_equal(a, zero, sizeof a);
  assert_int_equal(crypto_random(NULL, 0), 0);
  {
    uint8_t *big = malloc(100000);
    assert_int_equal(crypto_random(big, 100000), 0);
    free(big);
  }
  /* One RNG per thread: concurrent use is safe, and freed at thread exit. */
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, rng_thread, ids[i]), 0);
  for (int i = 0; i < 4; i++) {
    void *rc;
    assert_int_equal(pthread_join(t[i], &rc), 0);
    assert_null(rc);
  }
  for (int i = 0; i < 200; i++)
    for (int j = i + 1; j < 200; j++)
      assert_string_not_equal(ids[i / 50][i % 50], ids[j / 50][j % 50]);
}

/* A forked child must not replay the parent's random stream. */
static void test_random_fork(void **state)
{
  (void)state;
  uint8_t mine[16], theirs[16];
  int fds[2], status;
  pid_t pid;

  assert_int_equal(crypto_random(mine, sizeof mine), 0); /* parent's RNG exists */
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uint8_t b[16];
    close(fds[0]);
    if (crypto_random(b, sizeof b) != 0 || write(fds[1], b, sizeof b) != (ssize_t)sizeof b)
      _exit(1);
    _exit(0);
  }
  close(fds[1]);
  assert_int_equal(crypto_random(mine, sizeof mine), 0);
  assert_int_equal(read(fds[0], theirs, sizeof theirs), (ssize_t)sizeof theirs);
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_memory_not_equal(mine, theirs, sizeof mine);
}

/* ---- uuid ------------------------------------------------------------- */

static void test_uuid(void **state)
{
  (void)state;
  char id[UUID_STR_LEN + 1], id2[UUID_STR_LEN + 1], low[UUID_STR_LEN + 1];

  assert_int_equal(uuid_v4(id), 0);
  assert_int_equal(uuid_v4(id2), 0);
  assert_int_equal(strlen(id), UUID_STR_LEN);
  assert_true(uuid_valid(id));
  assert_string_not_equal(id, id2);
  assert_int_equal(id[14], '4');
  assert_non_null(strchr("89ab", id[19]));
  for (size_t i = 0; i < UUID_STR_LEN; i++)
    assert_false(id[i] >= 'A' && id[i] <= 'F');

  assert_true(uuid_valid("3fa85f64-5717-4562-b3fc-2c963f66afa6"));
  assert_true(uuid_valid("3FA85F64-5717-4562-B3FC-2C963F66AFA6"));
  assert_true(uuid_valid("00000000-0000-0000-0000-000000000000")); /* no version check */
  assert_false(uuid_valid(NULL));
  assert_false(uuid_valid(""));
  assert_false(uuid_valid("3fa85f64-5717-4562-b3fc-2c963f66afa"));
  assert_false(uuid_valid("3fa85f64-5717-4562-b3fc-2c963f66afa6a"));
  assert_false(uuid_valid("3fa85f6405717-4562-b3fc-2c963f66afa6"));
  assert_false(uuid_valid("3fa85f64-5717-4562-b3fc-2c963f66afg6"));
  assert_false(uuid_valid("{3fa85f64-5717-4562-b3fc-2c963f66afa}"));
  assert_false(uuid_valid("3fa85f6457174562b3fc2c963f66afa6"));

  uuid_lower("3FA85F64-5717-4562-B3FC-2C963F66AFA6", low);
  assert_string_equal(low, "3fa85f64-5717-4562-b3fc-2c963f66afa6");
}

/* ---- clock ------------------------------------------------------------ */

static void test_clock(void **state)
{
  (void)state;
  static const struct {
    int64_t ms;
    const char *iso;
  } cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1796320800000LL, "2026-12-03T18:00:00.000Z"},
      {1796321109120LL, "2026-12-03T18:05:09.120Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {1709164800001LL, "2024-02-29T00:00:00.001Z"},
      {951782400000LL, "2000-02-29T00:00:00.000Z"},
      {253402300799999LL, "9999-12-31T23:59:59.999Z"},
  };
  char out[CLOCK_ISO_LEN + 1];
  int64_t ms, m1, m2;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clock_iso8601(cases[i].ms, out);
    assert_string_equal(out, cases[i].iso);
    assert_int_equal(clock_parse_iso8601(cases[i].iso, &ms), 0);
    assert_int_equal(ms, cases[i].ms);
  }
  clock_iso8601(INT64_MAX, out);
  assert_string_equal(out, "9999-12-31T23:59:59.999Z");

  assert_int_equal(clock_parse_iso8601("2026-02-29T00:00:00.000Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-13-01T00:00:00.000Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-03T24:00:00.000Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-03T18:00:00Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-03 18:00:00.000Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-03T18:00:00.000Z ", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-03T18:00:00.000+", &ms), -1);
  assert_int_equal(clock_parse_iso8601("2026-12-0xT18:00:00.000Z", &ms), -1);
  assert_int_equal(clock_parse_iso8601(NULL, &ms), -1);

  assert_true(clock_now_ms() > 1577836800000LL); /* after 2020 */
  m1 = clock_mono_ms();
  m2 = clock_mono_ms();
  assert_true(m2 >= m1);
}

/* ---- reqsig ----------------------------------------------------------- */

static void test_reqsig_helpers(void **state)
{
  (void)state;
  char n1[33], n2[33];
  long long ts;

  assert_int_equal(reqsig_nonce(n1), 0);
  assert_int_equal(reqsig_nonce(n2), 0);
  assert_int_equal(strlen(n1), 32);
  assert_true(reqsig_nonce_valid(n1));
  assert_string_not_equal(n1, n2);

  assert_true(reqsig_nonce_valid("0123456789abcdef"));
  assert_false(reqsig_nonce_valid("0123456789abcde"));
  assert_true(
      reqsig_nonce_valid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  assert_false(
      reqsig_nonce_valid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"));
  assert_false(reqsig_nonce_valid("0123456789ABCDEF"));
  assert_false(reqsig_nonce_valid("0123456789abcdeg"));
  assert_false(reqsig_nonce_valid(""));
  assert_false(reqsig_nonce_valid(NULL));

  assert_int_equal(reqsig_parse_ts("1796320800", &ts), 0);
  assert_int_equal(ts, 1796320800LL);
  assert_int_equal(reqsig_parse_ts("0", &ts), 0);
  assert_int_equal(ts, 0);
  assert_int_equal(reqsig_parse_ts("9223372036854775807", &ts), 0);
  assert_true(ts == INT64_MAX);
  assert_int_equal(reqsig_parse_ts("9223372036854775808", &ts), -1);
  assert_int_equal(reqsig_parse_ts("12345678901234567890", &ts), -1);
  assert_int_equal(reqsig_parse_ts("", &ts), -1);
  assert_int_equal(reqsig_parse_ts("-1", &ts), -1);
  assert_int_equal(reqsig_parse_ts("+1", &ts), -1);
  assert_int_equal(reqsig_parse_ts(" 1", &ts), -1);
  assert_int_equal(reqsig_parse_ts("1 ", &ts), -1);
  assert_int_equal(reqsig_parse_ts("1e3", &ts), -1);
  assert_int_equal(reqsig_parse_ts(NULL, &ts), -1);
}

/* ---- jsonutil --------------------------------------------------------- */

static cJSON *jparse(const char *s, size_t len, size_t max, char *err)
{
  return jsonutil_parse(s, len, max, err, 128);
}

static void expect_refused(const char *s, size_t len, size_t max, const char *want)
{
  char err[128] = "";
  cJSON *j = jparse(s, len, max, err);

  if (j) {
    cJSON_Delete(j);
    fail_msg("accepted %.*s", (int)len, s);
  }
  if (want && !strstr(err, want))
    fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static char *nested(int depth, const char *open, const char *close)
{
  size_t ol = strlen(open), cl = strlen(close);
  char *s = malloc((size_t)depth * (ol + cl) + 2);
  size_t o = 0;

  for (int i = 0; i < depth; i++, o += ol)
    memcpy(s + o, open, ol);
  s[o++] = '1';
  for (int i = 0; i < depth; i++, o += cl)
    memcpy(s + o, close, cl);
  s[o] = '\0';
  return s;
}

static void test_jsonutil_limits(void **state)
{
  (void)state;
  char err[128];
  cJSON *j;
  char *s;

  /* Depth: 32 levels pass, 33 do not, whatever the mix of [ and {. */
  s = nested(JSONUTIL_MAX_DEPTH, "[", "]");
  j = jparse(s, strlen(s), 1 << 16, err);
  assert_non_null(j);
  cJSON_Delete(j);
  free(s);
  s = nested(JSONUTIL_MAX_DEPTH + 1, "[", "]");
  expect_refused(s, strlen(s), 1 << 16, "deep");
  free(s);
  s = nested(JSONUTIL_MAX_DEPTH + 1, "{\"a\":", "}");
  expect_refused(s, strlen(s), 1 << 16, "deep");
  free(s);
  s = nested(100000, "[", "]"); /* far past cJSON's own limit: refused cheaply */
  expect_refused(s, strlen(s), 1 << 20, "deep");
  free(s);
  /* Brackets inside strings do not count. */
  {
    char buf[200];
    char *br = repeat('[', 100);
    snprintf(buf, sizeof buf, "{\"a\":\"%s\\\"{\"}", br);
    j = parse(buf);
    assert_int_equal(strlen(jsonutil_get(j, "a")->valuestring), 102);
    free(br);
  }
  cJSON_Delete(j);

  /* Size: at maxlen passes, one over does not. */
  j = jparse("[1,2]", 5, 5, err);
  assert_non_null(j);
  cJSON_Delete(j);
  expect_refused("[1,2]", 5, 4, "large");

  /* Only len bytes are read; no NUL needed. */
  j = jparse("{}garbage", 2, 100, err);
  assert_true(cJSON_IsObject(j));
  cJSON_Delete(j);

  /* Trailing garbage, trailing space. */
  expect_refused("{} x", 4, 100, NULL);
  expect_refused("{}{}", 4, 100, NULL);
  expect_refused("1 2", 3, 100, NULL);
  expect_refused("[1,]", 4, 100, NULL);
  expect_refused("", 0, 100, NULL);
  expect_refused("  ", 2, 100, NULL);
  j = jparse(" {\"a\":1} \n", 10, 100, err);
  assert_non_null(j);
  cJSON_Delete(j);

  /* Invalid UTF-8. */
  expect_refused("\"\xc3\x28\"", 4, 100, "UTF-8");         /* bad continuation */
  expect_refused("\"\xc0\xaf\"", 4, 100, "UTF-8");         /* overlong */
  expect_refused("\"\xe0\x80\xaf\"", 5, 100, "UTF-8");     /* overlong, 3 bytes */
  expect_refused("\"\xed\xa0\x80\"", 5, 100, "UTF-8");     /* surrogate */
  expect_refused("\"\xf4\x90\x80\x80\"", 6, 100, "UTF-8"); /* past U+10FFFF */
  expect_refused("\"\xe2\x82\"", 4, 100, "UTF-8");         /* truncated */
  expect_refused("\"\xff\"", 3, 100, "UTF-8");
  expect_refused("{\"\x80\":1}", 7, 100, "UTF-8"); /* in a key too */
  j = parse("\"\xc3\xa9\xe2\x80\x93\xe2\x98\x8e\xf0\x9f\x98\x80\"");
  assert_string_equal(j->valuestring, "\xc3\xa9\xe2\x80\x93\xe2\x98\x8e\xf0\x9f\x98\x80");
  cJSON_Delete(j);

  /* NULs, raw controls, escapes cJSON would mishandle, odd numbers. */
  expect_refused("{\"a\":\"x\0y\"}", 11, 100, "NUL");
  expect_refused("[1]\0", 4, 100, "NUL");
  expect_refused("\"a\\u0000b\"", 10, 100, "u0000");
  expect_refused("\"a\nb\"", 5, 100, "control");
  expect_refused("\"\\ud800\"", 8, 100, NULL);
  expect_refused("[1e999]", 7, 100, NULL);
  j = parse("\"\\ud83d\\ude00 \\\\u0000\"");
  assert_string_equal(j->valuestring, "\xf0\x9f\x98\x80 \\u0000");
  cJSON_Delete(j);
}

/* A bad string is named by where it is (hostile testing: the message for
 * \u0000 or a lone surrogate did not say which property held it). */
static void test_jsonutil_names_the_bad_string(void **state)
{
  (void)state;
#define REFUSED(lit, want) expect_refused(lit, sizeof(lit) - 1, 1 << 16, want)
  REFUSED("{\"secret\":\"a\\u0000b\"}", "\\u0000 (in \"secret\")");
  REFUSED("{\"agentId\":\"x\",\"url\" : \"\\u0000\"}", "(in \"url\")");
  REFUSED("{\"custom_fields\":[\"k\",\"x\\u0000\"]}", "(in an element of \"custom_fields\")");
  REFUSED("{\"custom_fields\":[\"x\\u0000\"]}", "(in an element of \"custom_fields\")");
  REFUSED("{\"fields\":{\"accountNumber\":\"\\u0000\"}}", "(in \"accountNumber\")");
  REFUSED("{\"a\\u0000\":1}", "(in a property name)");
  REFUSED("{\"a\":1,\"b\\u0000\":2}", "(in a property name)");
  REFUSED("\"\\u0000\"", "contains \\u0000");
  REFUSED("{\"summary\":\"\\ud800\"}", "lone surrogate escape (in \"summary\")");
  REFUSED("{\"summary\":\"\\udc00\"}", "lone surrogate escape (in \"summary\")");
  REFUSED("{\"summary\":\"\\ud83dx\"}", "lone surrogate");
  REFUSED("{\"summary\":\"\\ud83d\\u0041\"}", "lone surrogate");
  REFUSED("{\"summary\":\"\\ud83d\"}", "lone surrogate");
  REFUSED("{\"summary\":\"a\x01\"}", "raw control character (in \"summary\")");
#undef REFUSED
  /* what is fine stays fine: a pair, an escaped backslash before "u0000",
   * upper-case hex, keys with odd characters */
  cJSON *j = parse("{\"s\":\"\\ud83d\\ude00\",\"t\":\"\\\\u0000\",\"u\":\"\\u00E9\","
                   "\"k\\\"ey\":\"\\uD83D\\uDE00\"}");
  assert_string_equal(jsonutil_get(j, "s")->valuestring, "\xf0\x9f\x98\x80");
  assert_string_equal(jsonutil_get(j, "t")->valuestring, "\\u0000");
  assert_string_equal(jsonutil_get(j, "u")->valuestring, "\xc3\xa9");
  cJSON_Delete(j);
}

static void test_jsonutil_helpers(void **state)
{
  (void)state;
  cJSON *o = cJSON_CreateObject();
  char *s;

  assert_true(jsonutil_utf8_valid("", 0));
  assert_true(jsonutil_utf8_valid("abc\xc3\xa9", 5));
  assert_false(jsonutil_utf8_valid("abc\xc3", 4));
  assert_false(jsonutil_utf8_valid("\xf8\x88\x80\x80\x80", 5));
  assert_true(jsonutil_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
  assert_true(jsonutil_utf8_valid("\xee\x80\x80", 3));     /* U+E000 */

  assert_non_null(jsonutil_add_string_or_null(o, "a", "x"));
  assert_non_null(jsonutil_add_string_or_null(o, "b", NULL));
  cJSON_AddNumberToObject(o, "n", 2);
  cJSON_AddNumberToObject(o, "f", 2.5);
  cJSON_AddNumberToObject(o, "big", 3000000000.0);
  s = jsonutil_print(o);
  assert_string_equal(s, "{\"a\":\"x\",\"b\":null,\"n\":2,\"f\":2.5,\"big\":3000000000}");
  free(s);
  assert_non_null(jsonutil_get(o, "a"));
  assert_null(jsonutil_get(o, "A"));
  assert_null(jsonutil_get(NULL, "a"));
  assert_null(jsonutil_print(NULL));
  cJSON_Delete(o);
}

/* ---- webhook ---------------------------------------------------------- */

#define BASE "\"agentId\":\"" AGENT "\",\"url\":\"https://hooks.example.com/x\""

static void test_webhook_request_ok(void **state)
{
  (void)state;
  struct webhook w;
  char err[256];

  assert_int_equal(
      upsert(
          "{\"agentId\":\"3FA85F64-5717-4562-B3FC-2C963F66AFA6\",\"url\":\"https://h.example/x\"}",
          false, &w, err, sizeof err),
      0);
  assert_string_equal(w.agent_id, AGENT);
  assert_string_equal(w.url, "https://h.example/x");
  assert_null(w.secret);
  assert_string_equal(w.secret_header, WEBHOOK_DEFAULT_HEADER);
  assert_int_equal(w.nfields, 0);
  assert_true(w.is_active);
  assert_int_equal(w.created_ms, 0);
  webhook_clear(&w);

  assert_int_equal(upsert("{" BASE
                          ",\"secret\":\"s\",\"secret_header\":\"X-Sig\",\"custom_fields\":"
                          "[\"a\",{\"key\":\"b\",\"hint\":\"h\",\"useForSignature\":true},"
                          "{\"key\":\"c\",\"hint\":null}],\"is_active\":false}",
                          false, &w, err, sizeof err),
                   0);
  assert_string_equal(w.secret, "s");
  assert_string_equal(w.secret_header, "X-Sig");
  assert_int_equal(w.nfields, 3);
  assert_string_equal(w.fields[0].key, "a");
  assert_null(w.fields[0].hint);
  assert_false(w.fields[0].sign);
  assert_string_equal(w.fields[1].key, "b");
  assert_string_equal(w.fields[1].hint, "h");
  assert_true(w.fields[1].sign);
  assert_null(w.fields[2].hint);
  assert_false(w.is_active);
  webhook_clear(&w);
  assert_null(w.url);

  upsert_ok("{" BASE ",\"secret\":null}", false);
  upsert_ok("{" BASE ",\"custom_fields\":[]}", false);
}

static void test_webhook_request_params(void **state)
{
  (void)state;
  upsert_bad("[]", false, "object");
  upsert_bad("{" BASE ",\"foo\":1}", false, "unknown parameter: foo");
  upsert_bad("{" BASE ",\"Url\":1}", false, "unknown parameter: Url");
  upsert_bad("{" BASE ",\"url\":\"https://b.example/\"}", false, "duplicate parameter: url");

  upsert_bad("{\"url\":\"https://h.example/\"}", false, "agentId is required");
  upsert_bad("{\"agentId\":null,\"url\":\"https://h.example/\"}", false, "agentId is required");
  upsert_bad("{\"agentId\":\"nope\",\"url\":\"https://h.example/\"}", false,
             "agentId must be a UUID");
  upsert_bad("{\"agentId\":5,\"url\":\"https://h.example/\"}", false, "agentId");

  upsert_bad("{\"agentId\":\"" AGENT "\"}", false, "url is required");
  upsert_bad("{\"agentId\":\"" AGENT "\",\"url\":7}", false, "url must be a string");

  upsert_bad("{" BASE ",\"secret\":\"\"}", false, "secret");
  upsert_bad("{" BASE ",\"secret\":42}", false, "secret");
  upsert_bad("{" BASE ",\"secret\":true}", false, "secret");

  upsert_bad("{" BASE ",\"is_active\":1}", false, "is_active must be a boolean");
  upsert_bad("{" BASE ",\"is_active\":\"true\"}", false, "is_active");
  upsert_bad("{" BASE ",\"is_active\":null}", false, "is_active");
  upsert_ok("{" BASE ",\"is_active\":true}", false);

  upsert_bad("{" BASE ",\"secret_header\":5}", false, "secret_header");
  upsert_bad("{" BASE ",\"custom_fields\":{}}", false, "custom_fields must be an array");
  upsert_bad("{" BASE ",\"custom_fields\":null}", false, "custom_fields");
}

static void test_webhook_secret_lengths(void **state)
{
  (void)state;
  char *s1024 = repeat('s', WEBHOOK_SECRET_MAX), *s1025 = repeat('s', WEBHOOK_SECRET_MAX + 1);
  char buf[2200];
  struct webhook w;
  char err[256];

  snprintf(buf, sizeof buf, "{" BASE ",\"secret\":\"%s\"}", s1024);
  assert_int_equal(upsert(buf, false, &w, err, sizeof err), 0);
  assert_int_equal(strlen(w.secret), WEBHOOK_SECRET_MAX);
  webhook_clear(&w);
  snprintf(buf, sizeof buf, "{" BASE ",\"secret\":\"%s\"}", s1025);
  upsert_bad(buf, false, "secret must be 1 to 1024 bytes");
  /* Multi-byte characters count in bytes. */
  upsert_ok("{" BASE ",\"secret\":\"\xc3\xa9\"}", false);
  free(s1024);
  free(s1025);
}

static void test_webhook_url(void **state)
{
  (void)state;
  static const char *const good[] = {
      "https://hooks.example.com/escalations",
      "https://hooks.example.com",
      "HTTPS://Hooks.Example.COM/x",
      "https://hooks.example.com:8443/a/b?c=d&e=f",
      "https://127.0.0.1/x",
      "https://[::1]:8443/x",
      "https://[2001:db8::1]/",
      "https://h.example/path@with-at",
      "https://h.example?q=@",
      "https://under_score.example/",
  };
  static const struct {
    const char *url, *want;
  } bad[] = {
      {"http://hooks.example.com/", "url must be an https URL"},
      {"ftp://hooks.example.com/", "url must be an https URL"},
      {"hooks.example.com/x", "url must be an https URL"},
      {"/relative", "url must be an https URL"},
      {"https:hooks.example.com", "url must be an https URL"},
      {"https://", "host"},
      {"https:///path", "host"},
      {"https://:443/", "host"},
      {"https://?q", "host"},
      {"https://user@hooks.example.com/", "user info"},
      {"https://user:pw@hooks.example.com/", "user info"},
      {"https://@hooks.example.com/", "user info"},
      {"https://hooks.example.com/#frag", "fragment"},
      {"https://hooks.example.com#", "fragment"},
      {"https://hooks.example.com/a b", "whitespace"},
      {"https://hooks.example.com/a\tb", "whitespace"},
      {"https://hooks.example.com/a\x7f", "control"},
      {" https://hooks.example.com/", "whitespace"},
      {"https://hooks.example.com/\xc3\xa9", "ASCII"},
      {"https://hooks.example.com:0/", "port"},
      {"https://hooks.example.com:65536/", "port"},
      {"https://hooks.example.com:/", "port"},
      {"https://hooks.example.com:44a/", "port"},
      {"https://hooks.example.com\\@evil.example/", "user info"},
      {"https://ho%6fks.example.com/", "host"},
      {"https://[::1/", "host"},
      {"https://[zz::1]/", "host"},
      {"https://[::1]x/", "host"},
  };
  char err[256];
  char *url;

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (webhook_check_url(good[i], false, err, sizeof err) != 0)
      fail_msg("refused %s: %s", good[i], err);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    if (webhook_check_url(bad[i].url, false, err, sizeof err) == 0)
      fail_msg("accepted %s", bad[i].url);
    if (!strstr(err, bad[i].want) || strncmp(err, "url ", 4) != 0)
      fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].url, err, bad[i].want);
  }
  /* http only with allow_http. */
  assert_int_equal(webhook_check_url("http://127.0.0.1:8080/hook", true, err, sizeof err), 0);
  assert_int_equal(webhook_check_url("https://127.0.0.1:8080/hook", true, err, sizeof err), 0);
  assert_int_equal(webhook_check_url("ftp://127.0.0.1/", true, err, sizeof err), -1);
  assert_int_equal(webhook_check_url(NULL, false, err, sizeof err), -1);
  upsert_bad("{\"agentId\":\"" AGENT "\",\"url\":\"http://h.example/\"}", false,
             "url must be an https URL");
  upsert_ok("{\"agentId\":\"" AGENT "\",\"url\":\"http://h.example/\"}", true);

  /* Length: 2048 bytes pass, 2049 do not. */
  url = repeat('a', WEBHOOK_URL_MAX);
  memcpy(url, "https://h.example/", 18);
  assert_int_equal(webhook_check_url(url, false, err, sizeof err), 0);
  free(url);
  url = repeat('a', WEBHOOK_URL_MAX + 1);
  memcpy(url, "https://h.example/", 18);
  assert_int_equal(webhook_check_url(url, false, err, sizeof err), -1);
  assert_non_null(strstr(err, "2048"));
  free(url);
}

static void test_webhook_header(void **state)
{
  (void)state;
  static const char *const good[] = {
      "X-HelpGenie-Signature", "X-Sig",   "a",     "x!#$%&'*+-.^_`|~9",
      "X-Webhook-Signature",   "Webhook", "Hosts",
  };
  static const char *const reserved[] = {
      "Host",
      "host",
      "Content-Type",
      "content-TYPE",
      "Content-Length",
      "Transfer-Encoding",
      "CONNECTION",
      "User-Agent",
      "X-HelpGenie-Event-Id",
      "x-helpgenie-attempt",
      "webhook-id",
      "Webhook-Signature",
      "WEBHOOK-TIMESTAMP",
      "webhook-",
  };
  static const char *const malformed[] = {"",      "X Sig",        "X-Sig:", "X(Sig)", "X\"Sig",
                                          "X/Sig", "X-S\xc3\xa9g", "X,Sig",  "X-Sig\t"};
  char err[256];
  char *h;

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (webhook_check_header(good[i], err, sizeof err) != 0)
      fail_msg("refused %s: %s", good[i], err);
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    if (webhook_check_header(reserved[i], err, sizeof err) == 0)
      fail_msg("accepted %s", reserved[i]);
    assert_non_null(strstr(err, "secret_header"));
    assert_non_null(strstr(err, "hgd sets"));
  }
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    if (webhook_check_header(malformed[i], err, sizeof err) == 0)
      fail_msg("accepted %s", malformed[i]);
    assert_non_null(strstr(err, "secret_header"));
  }
  h = repeat('h', WEBHOOK_HEADER_MAX);
  assert_int_equal(webhook_check_header(h, err, sizeof err), 0);
  free(h);
  h = repeat('h', WEBHOOK_HEADER_MAX + 1);
  assert_int_equal(webhook_check_header(h, err, sizeof err), -1);
  free(h);
  upsert_bad("{" BASE ",\"secret_header\":\"Content-Type\"}", false, "secret_header");
  upsert_bad("{" BASE ",\"secret_header\":\"\"}", false, "secret_header");
}

static void test_webhook_custom_fields(void **state)
{
  (void)state;
  char buf[8192], *p;
  char *k64 = repeat('k', WEBHOOK_FIELD_KEY_MAX), *k65 = repeat('k', WEBHOOK_FIELD_KEY_MAX + 1);
  char *h1024 = repeat('h', WEBHOOK_HINT_MAX), *h1025 = repeat('h', WEBHOOK_HINT_MAX + 1);

  upsert_bad("{" BASE ",\"custom_fields\":[1]}", false, "custom_fields[0]");
  upsert_bad("{" BASE ",\"custom_fields\":[null]}", false, "custom_fields[0]");
  upsert_bad("{" BASE ",\"custom_fields\":[[\"a\"]]}", false, "custom_fields[0]");
  upsert_bad("{" BASE ",\"custom_fields\":[\"a\",{\"hint\":\"h\"}]}", false,
             "custom_fields[1].key is required");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"extra\":1}]}", false,
             "unknown property: extra");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"key\":\"b\"}]}", false, "duplicate");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":5}]}", false, "custom_fields[0].key");
  upsert_bad("{" BASE ",\"custom_fields\":[\"\"]}", false, "custom_fields[0].key");
  upsert_bad("{" BASE ",\"custom_fields\":[\"a b\"]}", false, "custom_fields[0].key");
  upsert_bad("{" BASE ",\"custom_fields\":[\"a/b\"]}", false, "custom_fields[0].key");
  upsert_bad("{" BASE ",\"custom_fields\":[\"\xc3\xa9\"]}", false, "custom_fields[0].key");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"hint\":3}]}", false,
             "custom_fields[0].hint");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"useForSignature\":\"yes\"}]}", false,
             "custom_fields[0].useForSignature");
  upsert_bad("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"useForSignature\":null}]}", false,
             "useForSignature");
  upsert_bad("{" BASE ",\"custom_fields\":[\"a\",\"b\",{\"key\":\"a\"}]}", false, "duplicate");
  upsert_ok("{" BASE ",\"custom_fields\":[\"a\",\"A\",\"a.b-c_9\"]}", false);
  upsert_ok("{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"useForSignature\":false}]}", false);

  snprintf(buf, sizeof buf, "{" BASE ",\"custom_fields\":[\"%s\"]}", k64);
  upsert_ok(buf, false);
  snprintf(buf, sizeof buf, "{" BASE ",\"custom_fields\":[\"%s\"]}", k65);
  upsert_bad(buf, false, "custom_fields[0].key");
  snprintf(buf, sizeof buf, "{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"hint\":\"%s\"}]}",
           h1024);
  upsert_ok(buf, false);
  snprintf(buf, sizeof buf, "{" BASE ",\"custom_fields\":[{\"key\":\"a\",\"hint\":\"%s\"}]}",
           h1025);
  upsert_bad(buf, false, "custom_fields[0].hint");

  /* 64 items pass, 65 do not. */
  for (int n = WEBHOOK_FIELDS_MAX; n <= WEBHOOK_FIELDS_MAX + 1; n++) {
    p = buf + snprintf(buf, sizeof buf, "{" BASE ",\"custom_fields\":[");
    for (int i = 0; i < n; i++)
      p += sprintf(p, "%s\"f%d\"", i ? "," : "", i);
    strcpy(p, "]}");
    if (n == WEBHOOK_FIELDS_MAX)
      upsert_ok(buf, false);
    else
      upsert_bad(buf, false, "custom_fields must have at most 64 items");
  }
  free(k64);
  free(k65);
  free(h1024);
  free(h1025);
}

static void test_webhook_json_forms(void **state)
{
  (void)state;
  struct webhook w, back, copy;
  char err[256], *s;
  cJSON *j, *f;

  assert_int_equal(upsert("{" BASE ",\"secret\":\"top\",\"custom_fields\":[\"a\",{\"key\":\"b\","
                          "\"hint\":\"Account \xc3\xa9\",\"useForSignature\":true}]}",
                          false, &w, err, sizeof err),
                   0);
  snprintf(w.id, sizeof w.id, "%s", "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
  w.created_ms = 1796320800000LL;
  w.updated_ms = 1796321109120LL;

  j = webhook_to_json(&w, false);
  s = jsonutil_print(j);
  assert_string_equal(
      s,
      "{\"id\":\"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\",\"agent_id\":\"" AGENT "\","
      "\"url\":\"https://hooks.example.com/x\",\"secret\":\"" WEBHOOK_MASK "\","
      "\"secret_header\":\"X-HelpGenie-Signature\",\"custom_fields\":[{\"key\":\"a\","
      "\"hint\":null,\"useForSignature\":false},{\"key\":\"b\",\"hint\":\"Account \xc3\xa9\","
      "\"useForSignature\":true}],\"is_active\":true,\"created_at\":\"2026-12-03T18:00:00.000Z\","
      "\"updated_at\":\"2026-12-03T18:05:09.120Z\"}");
  assert_null(strstr(s, "top"));
  assert_string_equal(WEBHOOK_MASK, "••••••••");
  /* The wire form is not the stored form. */
  assert_int_equal(webhook_from_json(j, &back, err, sizeof err), -1);
  assert_non_null(strstr(err, "secret"));
  free(s);
  cJSON_Delete(j);

  j = webhook_to_json(&w, true);
  assert_string_equal(jsonutil_get(j, "secret")->valuestring, "top");
  assert_int_equal(webhook_from_json(j, &back, err, sizeof err), 0);
  cJSON_Delete(j);
  assert_string_equal(back.id, w.id);
  assert_string_equal(back.agent_id, w.agent_id);
  assert_string_equal(back.url, w.url);
  assert_string_equal(back.secret, "top");
  assert_string_equal(back.secret_header, w.secret_header);
  assert_int_equal(back.nfields, 2);
  assert_string_equal(back.fields[1].hint, "Account \xc3\xa9");
  assert_true(back.fields[1].sign);
  assert_null(back.fields[0].hint);
  assert_int_equal(back.created_ms, w.created_ms);
  assert_int_equal(back.updated_ms, w.updated_ms);
  assert_true(back.is_active);

  assert_int_equal(webhook_copy(&copy, &back), 0);
  webhook_clear(&back);
  assert_string_equal(copy.secret, "top");
  assert_string_equal(copy.fields[1].key, "b");
  j = webhook_fields_json(&copy);
  s = jsonutil_print(j);
  assert_string_equal(s, "{\"fields\":[{\"key\":\"a\",\"hint\":null},{\"key\":\"b\",\"hint\":"
                         "\"Account \xc3\xa9\"}]}");
  free(s);
  cJSON_Delete(j);

  /* No secret: null in both forms. */
  crypto_free_secret(copy.secret);
  copy.secret = NULL;
  j = webhook_to_json(&copy, false);
  assert_true(cJSON_IsNull(jsonutil_get(j, "secret")));
  cJSON_Delete(j);
  j = webhook_to_json(&copy, true);
  assert_true(cJSON_IsNull(jsonutil_get(j, "secret")));
  assert_int_equal(webhook_from_json(j, &back, err, sizeof err), 0);
  assert_null(back.secret);
  webhook_clear(&back);
  /* A damaged stored row is refused with a reason. */
  cJSON_ReplaceItemInObject(j, "created_at", cJSON_CreateString("yesterday"));
  assert_int_equal(webhook_from_json(j, &back, err, sizeof err), -1);
  assert_non_null(strstr(err, "created_at"));
  cJSON_Delete(j);
  f = parse("{\"id\":\"x\"}");
  assert_int_equal(webhook_from_json(f, &back, err, sizeof err), -1);
  cJSON_Delete(f);

  webhook_clear(&copy);
  webhook_clear(&w);
}

/* ---- escalation ------------------------------------------------------- */

static int esc(const char *s, struct escalation *e, char *err)
{
  return escalation_parse(s, strlen(s), 0, e, err, 128);
}

static void test_escalation(void **state)
{
  (void)state;
  struct escalation e, back;
  char err[128], *s;
  cJSON *j;

  assert_int_equal(esc("{\"eventId\":\"7B6F1F0E-3F0A-4C53-9A4E-2D1C8B7E9F10\",\"callerNumber\":"
                       "\"+1555\",\"callSid\":\"CA1\",\"reason\":\"r\",\"summary\":\"s\","
                       "\"agentSessionId\":\"a\",\"fields\":{\"n\":2,\"o\":{\"x\":[1]}},"
                       "\"future\":true}",
                       &e, err),
                   0);
  assert_string_equal(e.event_id, "7b6f1f0e-3f0a-4c53-9a4e-2d1c8b7e9f10");
  assert_string_equal(e.caller_number, "+1555");
  assert_string_equal(e.call_sid, "CA1");
  assert_string_equal(e.reason, "r");
  assert_string_equal(e.summary, "s");
  assert_string_equal(e.agent_session_id, "a");
  assert_true(cJSON_IsObject(e.fields));

  j = escalation_to_json(&e);
  s = jsonutil_print(j);
  assert_string_equal(s, "{\"eventId\":\"7b6f1f0e-3f0a-4c53-9a4e-2d1c8b7e9f10\",\"callerNumber\":"
                         "\"+1555\",\"callSid\":\"CA1\",\"reason\":\"r\",\"summary\":\"s\","
                         "\"agentSessionId\":\"a\",\"fields\":{\"n\":2,\"o\":{\"x\":[1]}}}");
  assert_int_equal(escalation_from_json(j, &back), 0);
  assert_string_equal(back.event_id, e.event_id);
  assert_string_equal(back.summary, "s");
  assert_int_equal(jsonutil_get(back.fields, "n")->valueint, 2);
  escalation_clear(&back);
  free(s);
  cJSON_Delete(j);
  escalation_clear(&e);

  /* Everything optional; null is absent. */
  assert_int_equal(esc("{}", &e, err), 0);
  assert_string_equal(e.event_id, "");
  assert_null(e.reason);
  assert_null(e.fields);
  j = escalation_to_json(&e);
  s = jsonutil_print(j);
  assert_string_equal(s, "{}");
  free(s);
  cJSON_Delete(j);
  escalation_clear(&e);
  assert_int_equal(esc("{\"eventId\":null,\"reason\":null,\"fields\":null}", &e, err), 0);
  escalation_clear(&e);

  /* Refusals. */
  assert_int_equal(esc("[]", &e, err), -1);
  assert_non_null(strstr(err, "object"));
  assert_int_equal(esc("\"x\"", &e, err), -1);
  assert_int_equal(esc("{", &e, err), -1);
  assert_int_equal(esc("{\"eventId\":\"not-a-uuid\"}", &e, err), -1);
  assert_non_null(strstr(err, "eventId"));
  assert_int_equal(esc("{\"eventId\":7}", &e, err), -1);
  assert_int_equal(esc("{\"callerNumber\":15551230000}", &e, err), -1);
  assert_non_null(strstr(err, "callerNumber"));
  assert_int_equal(esc("{\"callSid\":[]}", &e, err), -1);
  assert_non_null(strstr(err, "callSid"));
  assert_int_equal(esc("{\"reason\":true}", &e, err), -1);
  assert_int_equal(esc("{\"summary\":{}}", &e, err), -1);
  assert_int_equal(esc("{\"agentSessionId\":1}", &e, err), -1);
  assert_non_null(strstr(err, "agentSessionId"));
  assert_int_equal(esc("{\"fields\":[]}", &e, err), -1);
  assert_non_null(strstr(err, "fields"));
  assert_int_equal(esc("{\"fields\":\"x\"}", &e, err), -1);
  assert_int_equal(esc("{\"reason\":\"a\",\"reason\":\"b\"}", &e, err), -1);
  assert_int_equal(esc("{\"reason\":\"\xc3\"}", &e, err), -1);
  assert_null(e.reason);
  /* Oversize, by the caller's limit. */
  assert_int_equal(escalation_parse("{\"reason\":\"abc\"}", 16, 15, &e, err, sizeof err), -1);
  assert_non_null(strstr(err, "larger"));
  assert_int_equal(escalation_parse("{\"reason\":\"abc\"}", 16, 16, &e, err, sizeof err), 0);
  escalation_clear(&e);
  {
    size_t n = ESCALATION_MAX_BYTES + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{}", 2);
    big[n] = '\0';
    assert_int_equal(escalation_parse(big, n, 0, &e, err, sizeof err), -1);
    assert_int_equal(escalation_parse(big, n - 1, 0, &e, err, sizeof err), 0);
    escalation_clear(&e);
    free(big);
  }
}

/* ---- payload ---------------------------------------------------------- */

static void test_payload_default_and_custom(void **state)
{
  (void)state;
  struct webhook w;
  struct escalation e;
  struct payload_meta m = {"7b6f1f0e-3f0a-4c53-9a4e-2d1c8b7e9f10", "escalation.test", 0};
  char err[256], *s;
  cJSON *o;

  /* Default fields, absent ones null. */
  assert_int_equal(upsert("{" BASE "}", false, &w, err, sizeof err), 0);
  assert_int_equal(esc("{\"reason\":\"r\"}", &e, err), 0);
  o = payload_build(&w, &e, &m);
  s = jsonutil_print(o);
  assert_string_equal(s, "{\"eventId\":\"7b6f1f0e-3f0a-4c53-9a4e-2d1c8b7e9f10\",\"eventType\":"
                         "\"escalation.test\",\"timestamp\":\"1970-01-01T00:00:00.000Z\","
                         "\"callerNumber\":null,\"callSid\":null,\"reason\":\"r\","
                         "\"summary\":null,\"agentSessionId\":null}");
  free(s);
  cJSON_Delete(o);
  escalation_clear(&e);
  webhook_clear(&w);

  /* Custom: exactly the listed keys in order, any JSON value, null when
   * absent, default names take the default value. */
  assert_int_equal(upsert("{" BASE ",\"secret\":\"k\",\"custom_fields\":[\"obj\",\"timestamp\","
                          "{\"key\":\"n\",\"useForSignature\":true},\"missing\",{\"key\":"
                          "\"reason\",\"useForSignature\":true},{\"key\":\"nul\","
                          "\"useForSignature\":true},{\"key\":\"obj2\",\"useForSignature\":true},"
                          "{\"key\":\"t\",\"useForSignature\":true},{\"key\":\"f\","
                          "\"useForSignature\":true},{\"key\":\"absent\",\"useForSignature\":true},"
                          "{\"key\":\"arr\",\"useForSignature\":true}]}",
                          false, &w, err, sizeof err),
                   0);
  assert_int_equal(esc("{\"reason\":\"a.b\",\"fields\":{\"obj\":{\"x\":1},\"n\":2.0,\"nul\":null,"
                       "\"obj2\":{\"k\":\"v\",\"l\":[1,2.5]},\"t\":true,\"f\":false,"
                       "\"arr\":[\"x\",null],\"reason\":\"ignored\",\"extra\":1}}",
                       &e, err),
                   0);
  m.accepted_ms = 1796320800000LL;
  o = payload_build(&w, &e, &m);
  s = jsonutil_print(o);
  assert_string_equal(s, "{\"obj\":{\"x\":1},\"timestamp\":\"2026-12-03T18:00:00.000Z\",\"n\":2,"
                         "\"missing\":null,\"reason\":\"a.b\",\"nul\":null,\"obj2\":{\"k\":\"v\","
                         "\"l\":[1,2.5]},\"t\":true,\"f\":false,\"absent\":null,"
                         "\"arr\":[\"x\",null]}");
  {
    size_t len;
    char *msg = payload_signed_message(&w, o, s, &len);
    char sig[CRYPTO_SHA256_HEX_LEN + 1], want[CRYPTO_SHA256_HEX_LEN + 1];
    const char *expect = "2.a.b..{\"k\":\"v\",\"l\":[1,2.5]}.true.false..[\"x\",null]";
    assert_string_equal(msg, expect);
    assert_int_equal(len, strlen(expect));
    assert_int_equal(payload_signature(&w, o, s, sig), 0);
    assert_int_equal(crypto_hmac_sha256_hex("k", 1, expect, strlen(expect), want), 0);
    assert_string_equal(sig, want);
    free(msg);
  }
  free(s);
  cJSON_Delete(o);
  escalation_clear(&e);

  /* No secret: no signature. */
  crypto_free_secret(w.secret);
  w.secret = NULL;
  o = payload_build(&w, NULL, &m);
  s = jsonutil_print(o);
  {
    char sig[CRYPTO_SHA256_HEX_LEN + 1];
    assert_int_equal(payload_signature(&w, o, s, sig), -1);
  }
  free(s);
  cJSON_Delete(o);
  webhook_clear(&w);

  /* Signed message of an unflagged webhook is the body itself. */
  assert_int_equal(
      upsert("{" BASE ",\"secret\":\"k\",\"custom_fields\":[\"a\"]}", false, &w, err, sizeof err),
      0);
  {
    size_t len;
    char *msg = payload_signed_message(&w, NULL, "{\"a\":null}", &len);
    assert_string_equal(msg, "{\"a\":null}");
    assert_int_equal(len, 10);
    free(msg);
  }
  webhook_clear(&w);
}

/* Numbers in fields reach the receiver (body and signed message) as the
 * same doubles the call node sent: cJSON alone prints 15 digits whenever
 * they come "close", turning 8999999999999999 into 9e+15 and DBL_MAX into
 * 1.79769313486232e+308 (infinity to a reader). Kept through the outbox's
 * text form too. */
static void test_payload_exact_numbers(void **state)
{
  (void)state;
  struct webhook w;
  struct escalation e, back;
  struct payload_meta m = {"7b6f1f0e-3f0a-4c53-9a4e-2d1c8b7e9f10", "escalation", 0};
  char err[256];
  const char *want = "{\"a\":8999999999999999,\"b\":0.30000000000000004,"
                     "\"c\":1.7976931348623157e+308,\"d\":[1.5,-2,1e+21,0.1],\"e\":{\"x\":123456789012}}";

  assert_int_equal(upsert("{" BASE ",\"secret\":\"k\",\"custom_fields\":[\"a\",\"b\",\"c\",\"d\","
                          "\"e\",{\"key\":\"a\",\"useForSignature\":true}]}",
                          false, &w, err, sizeof err),
                   -1); /* duplicate key: refused, as it should be */
  assert_int_equal(upsert("{" BASE ",\"secret\":\"k\",\"custom_fields\":[{\"key\":\"a\","
                          "\"useForSignature\":true},\"b\",{\"key\":\"c\",\"useForSignature\":true},"
                          "\"d\",\"e\"]}",
                          false, &w, err, sizeof err),
                   0);
  assert_int_equal(esc("{\"fields\":{\"a\":8999999999999999,\"b\":0.30000000000000004,"
                       "\"c\":1.7976931348623157e308,\"d\":[1.5,-2,1e21,0.1],\"e\":{\"x\":123456789012}}}",
                       &e, err),
                   0);
  for (int round = 0; round < 2; round++) {
    cJSON *o = payload_build(&w, &e, &m);
    char *s = jsonutil_print(o);
    assert_string_equal(s, want);
    size_t len;
    char *msg = payload_signed_message(&w, o, s, &len);
    assert_string_equal(msg, "8999999999999999.1.7976931348623157e+308");
    free(msg);
    free(s);
    cJSON_Delete(o);
    /* the outbox's way: to text, parsed again, from_json */
    cJSON *j = escalation_to_json(&e);
    char *text = jsonutil_print(j);
    cJSON_Delete(j);
    j = jsonutil_parse(text, strlen(text), 1 << 20, err, sizeof err);
    assert_non_null(j);
    free(text);
    assert_int_equal(escalation_from_json(j, &back), 0);
    cJSON_Delete(j);
    escalation_clear(&e);
    e = back;
  }
  escalation_clear(&e);
  webhook_clear(&w);
}

static void test_payload_test_escalation(void **state)
{
  (void)state;
  struct webhook w;
  struct escalation e;
  struct payload_meta m = {NULL, "escalation.test", 1796320800000LL};
  char err[256], *s;
  cJSON *o;

  assert_int_equal(upsert("{" BASE ",\"custom_fields\":[\"accountNumber\",\"callSid\"]}", false, &w,
                          err, sizeof err),
                   0);
  assert_int_equal(payload_test_escalation(&w, &e), 0);
  assert_true(uuid_valid(e.event_id));
  assert_non_null(e.call_sid);
  assert_string_equal(jsonutil_get(e.fields, "accountNumber")->valuestring, "test-accountNumber");
  assert_null(jsonutil_get(e.fields, "callSid"));
  o = payload_build(&w, &e, &m);
  s = jsonutil_print(o);
  assert_non_null(strstr(s, "\"accountNumber\":\"test-accountNumber\""));
  assert_string_equal(jsonutil_get(o, "callSid")->valuestring, e.call_sid);
  free(s);
  cJSON_Delete(o);
  /* eventId falls back to the escalation's own. */
  o = payload_build(NULL, &e, &m);
  assert_string_equal(jsonutil_get(o, "eventId")->valuestring, e.event_id);
  assert_string_equal(jsonutil_get(o, "eventType")->valuestring, "escalation.test");
  cJSON_Delete(o);
  escalation_clear(&e);
  webhook_clear(&w);
}

static void test_stdwh_errors(void **state)
{
  (void)state;
  char out[PAYLOAD_STDWH_SIG_MAX];

  assert_int_equal(payload_stdwh_signature(NULL, "id", "1", "{}", 2, out), -1);
  assert_int_equal(payload_stdwh_signature("s", "id", "1", "", 0, out), 0);
  assert_int_equal(strlen(out), 47);
  assert_memory_equal(out, "v1,", 3);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_hmac_known_answers),
      cmocka_unit_test(test_hex_base64),
      cmocka_unit_test(test_equal_and_wipe),
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_random_fork),
      cmocka_unit_test(test_uuid),
      cmocka_unit_test(test_clock),
      cmocka_unit_test(test_reqsig_helpers),
      cmocka_unit_test(test_jsonutil_limits),
      cmocka_unit_test(test_jsonutil_names_the_bad_string),
      cmocka_unit_test(test_jsonutil_helpers),
      cmocka_unit_test(test_webhook_request_ok),
      cmocka_unit_test(test_webhook_request_params),
      cmocka_unit_test(test_webhook_secret_lengths),
      cmocka_unit_test(test_webhook_url),
      cmocka_unit_test(test_webhook_header),
      cmocka_unit_test(test_webhook_custom_fields),
      cmocka_unit_test(test_webhook_json_forms),
      cmocka_unit_test(test_escalation),
      cmocka_unit_test(test_payload_default_and_custom),
      cmocka_unit_test(test_payload_exact_numbers),
      cmocka_unit_test(test_payload_test_escalation),
      cmocka_unit_test(test_stdwh_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
