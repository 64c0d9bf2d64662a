/* test_outbox.c — the durable outbox: append/attempt/done, reopen, seq
 * order and continuity, the limit, compaction, a torn tail, corruption,
 * ENOSPC. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "outbox.h"
#include "testutil.h"

#define FILE_NAME "outbox.jsonl"

/* A fresh, empty directory for one test; the path of the file in it. */
#define fresh_dir(name) tu_fresh_dir("outbox", name)
#define file_path(dir, buf, n) tu_path(dir, FILE_NAME, buf, n)

/* An entry for escalation number n; numbers 100 to 139 get a long summary. */
static void make_entry(struct outbox_entry *e, int n)
{
  char json[512];
  char err[256];
  char pad[300];
  size_t padlen = n >= 100 && n < 140 ? 290 : 10;
  memset(pad, 'p', padlen);
  pad[padlen] = '\0';
  int len = snprintf(json, sizeof(json),
                     "{\"callerNumber\":\"+1555%07d\",\"reason\":\"r%d\",\"summary\":\"%s\","
                     "\"fields\":{\"accountNumber\":\"AC-%d\",\"n\":%d,\"nested\":{\"a\":[1,2]}}}",
                     n, n, pad, n, n);
  memset(e, 0, sizeof(*e));
  snprintf(e->agent_id, sizeof(e->agent_id), "%08x-0000-4000-8000-%012x", (unsigned)n % 7, 7u);
  snprintf(e->event_id, sizeof(e->event_id), "%08x-1111-4111-8111-%012x", (unsigned)n, (unsigned)n);
  e->accepted_ms = 1796320800000LL + n;
  assert_int_equal(
      escalation_parse(json, (size_t)len, ESCALATION_MAX_BYTES, &e->esc, err, sizeof(err)), 0);
}

static uint64_t add(struct outbox *o, int n)
{
  struct outbox_entry e;
  char err[256];
  make_entry(&e, n);
  int rc = outbox_append(o, &e, err, sizeof(err));
  if(rc != 0)
    fail_msg("append %d: %d %s", n, rc, err);
  uint64_t seq = e.seq;
  outbox_entry_clear(&e);
  return seq;
}

static char *esc_text(const struct escalation *esc)
{
  cJSON *j = escalation_to_json(esc);
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s;
}

/* foreach collector */
struct seen {
  size_t n;
  uint64_t seq[64];
  int attempts[64];
  int64_t next_ms[64];
  int num[64]; /* escalation number, from event_id */
  bool content_ok;
};

static int collect(void *ctx, const struct outbox_entry *e)
{
  struct seen *s = ctx;
  struct outbox_entry want;
  unsigned num;
  if(s->n >= 64)
    return 0;
  sscanf(e->event_id, "%08x", &num);
  make_entry(&want, (int)num);
  char *a = esc_text(&e->esc), *b = esc_text(&want.esc);
  if(strcmp(a, b) != 0 || strcmp(e->agent_id, want.agent_id) != 0 ||
     e->accepted_ms != want.accepted_ms)
    s->content_ok = false;
  free(a);
  free(b);
  outbox_entry_clear(&want);
  s->seq[s->n] = e->seq;
  s->attempts[s->n] = e->attempts;
  s->next_ms[s->n] = e->next_ms;
  s->num[s->n] = (int)num;
  s->n++;
  return 0;
}

static void test_basic_reopen(void **state)
{
  (void)state;
  char d[512], path[600], err[512];
  struct outbox *o;
  struct stat st;
  snprintf(d, sizeof(d), "%s", fresh_dir("basic/state"));

  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(stat(file_path(d, path, sizeof(path)), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(outbox_pending(o), 0);
  uint64_t s1 = add(o, 1), s2 = add(o, 2), s3 = add(o, 3), s4 = add(o, 4), s5 = add(o, 5);
  assert_true(s1 >= 1 && s2 == s1 + 1 && s3 == s2 + 1 && s4 == s3 + 1 && s5 == s4 + 1);
  assert_int_equal(outbox_pending(o), 5);
  assert_int_equal(outbox_attempt(o, s2, 1, 1000), 0);
  assert_int_equal(outbox_attempt(o, s2, 2, 2000), 0);
  assert_int_equal(outbox_attempt(o, s4, 1, 4000), 0);
  assert_int_equal(outbox_done(o, s3), 0);
  assert_int_equal(outbox_done(o, s3), -1);          /* no longer pending */
  assert_int_equal(outbox_attempt(o, s3, 1, 1), -1); /* idem */
  assert_int_equal(outbox_done(o, 999), -1);
  assert_int_equal(outbox_pending(o), 4);
  outbox_close(o);

  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), 4);
  struct seen seen = {.content_ok = true};
  assert_int_equal(outbox_foreach(o, collect, &seen), 0);
  assert_true(seen.content_ok);
  assert_int_equal(seen.n, 4);
  uint64_t want[] = {s1, s2, s4, s5};
  int wantn[] = {1, 2, 4, 5};
  int wanta[] = {0, 2, 1, 0};
  int64_t wantt[] = {0, 2000, 4000, 0};
  for(size_t i = 0; i < 4; i++) {
    assert_int_equal(seen.seq[i], want[i]);
    assert_int_equal(seen.num[i], wantn[i]);
    assert_int_equal(seen.attempts[i], wanta[i]);
    assert_int_equal(seen.next_ms[i], wantt[i]);
  }
  /* seq continues after the highest seen */
  assert_int_equal(add(o, 6), s5 + 1);
  outbox_close(o);
}

static void test_entry_copy(void **state)
{
  (void)state;
  struct outbox_entry a, b;
  make_entry(&a, 42);
  a.seq = 9;
  a.attempts = 3;
  assert_int_equal(outbox_entry_copy(&b, &a), 0);
  assert_int_equal(b.seq, 9);
  assert_int_equal(b.attempts, 3);
  assert_string_equal(b.event_id, a.event_id);
  assert_ptr_not_equal(b.esc.summary, a.esc.summary);
  assert_ptr_not_equal(b.esc.fields, a.esc.fields);
  char *ta = esc_text(&a.esc), *tb = esc_text(&b.esc);
  assert_string_equal(ta, tb);
  free(ta);
  free(tb);
  outbox_entry_clear(&a);
  assert_null(a.esc.summary);
  outbox_entry_clear(&b);
}

static void test_limit(void **state)
{
  (void)state;
  char d[512], err[512];
  struct outbox *o;
  struct outbox_entry e;
  snprintf(d, sizeof(d), "%s", fresh_dir("limit"));
  assert_int_equal(outbox_open(d, 3, &o, err, sizeof(err)), 0);
  uint64_t s1 = add(o, 1);
  add(o, 2);
  add(o, 3);
  make_entry(&e, 4);
  assert_int_equal(outbox_append(o, &e, err, sizeof(err)), OUTBOX_FULL);
  assert_int_equal(outbox_pending(o), 3);
  assert_int_equal(outbox_done(o, s1), 0);
  assert_int_equal(outbox_append(o, &e, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), 3);
  outbox_entry_clear(&e);
  outbox_close(o);
  /* The limit also holds for entries loaded at open. */
  assert_int_equal(outbox_open(d, 2, &o, err, sizeof(err)), 0);
  make_entry(&e, 5);
  assert_int_equal(outbox_append(o, &e, err, sizeof(err)), OUTBOX_FULL);
  outbox_entry_clear(&e);
  outbox_close(o);
}

static int done_inside(void *ctx, const struct outbox_entry *e)
{
  struct outbox *o = ctx;
  return outbox_done(o, e->seq) == 0 ? 0 : -1;
}

static int stop_at_two(void *ctx, const struct outbox_entry *e)
{
  (void)e;
  int *n = ctx;
  return ++*n == 2 ? 7 : 0;
}

static void test_foreach_reentrant(void **state)
{
  (void)state;
  char d[512], err[512];
  struct outbox *o;
  snprintf(d, sizeof(d), "%s", fresh_dir("foreach"));
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  for(int i = 0; i < 5; i++)
    add(o, i);
  int n = 0;
  assert_int_equal(outbox_foreach(o, stop_at_two, &n), 7);
  assert_int_equal(n, 2);
  assert_int_equal(outbox_foreach(o, done_inside, o), 0);
  assert_int_equal(outbox_pending(o), 0);
  outbox_close(o);
}

static void test_compaction(void **state)
{
  (void)state;
  char d[512], path[600], err[512];
  struct outbox *o;
  snprintf(d, sizeof(d), "%s", fresh_dir("compact"));
  file_path(d, path, sizeof(path));
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);

  /* 3000 accepted, a few kept pending with retries, the rest finished. */
  uint64_t first = 0, last = 0;
  for(int i = 0; i < 3000; i++) {
    uint64_t s = add(o, i);
    if(i == 0)
      first = s;
    last = s;
    if(i % 100 == 7) {
      assert_int_equal(outbox_attempt(o, s, 1, 100 + i), 0);
      assert_int_equal(outbox_attempt(o, s, 2, 200 + i), 0);
    } else if(i % 100 != 50) {
      assert_int_equal(outbox_done(o, s), 0);
    }
  }
  size_t pending = outbox_pending(o);
  assert_int_equal(pending, 60);
  size_t lines = count_lines(path);
  assert_true(lines <= 4097 + 2); /* compacted on the way */
  outbox_close(o);

  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), 60);
  struct seen seen = {.content_ok = true};
  assert_int_equal(outbox_foreach(o, collect, &seen), 0);
  assert_true(seen.content_ok);
  assert_int_equal(seen.n, 60);
  for(size_t i = 0; i < seen.n; i++) {
    int num = seen.num[i];
    assert_int_equal(seen.seq[i], first + (uint64_t)num);
    if(i > 0)
      assert_true(seen.seq[i] > seen.seq[i - 1]);
    if(num % 100 == 7) {
      assert_int_equal(seen.attempts[i], 2);
      assert_int_equal(seen.next_ms[i], 200 + num);
    } else {
      assert_int_equal(num % 100, 50);
      assert_int_equal(seen.attempts[i], 0);
    }
  }

  /* Finish everything: the file shrinks to almost nothing once compacted,
   * and numbering still continues after a restart. */
  for(size_t i = 0; i < seen.n; i++)
    assert_int_equal(outbox_done(o, seen.seq[i]), 0);
  for(int i = 0; i < 4200; i++)
    assert_int_equal(outbox_done(o, add(o, 5000 + i)), 0);
  last += 4200;
  assert_int_equal(outbox_pending(o), 0);
  assert_true(count_lines(path) < 4200);
  outbox_close(o);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), 0);
  assert_int_equal(add(o, 1), last + 1);
  outbox_close(o);

  /* A compaction that leaves nothing pending keeps the numbering. */
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  uint64_t s = 0;
  for(int i = 0; i < 8200; i++) {
    s = add(o, i);
    assert_int_equal(outbox_done(o, s), 0);
  }
  outbox_close(o);
  size_t len;
  char *text = slurp(path, &len);
  assert_non_null(strstr(text, "{\"t\":\"seq\",\"seq\":"));
  free(text);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(add(o, 1), s + 1);
  outbox_close(o);
}

/* A fresh outbox directory for one test (d, and its file in path, 512 and
 * 600 bytes) with entries 1..n added; the outbox stays open. */
static struct outbox *fresh_outbox(const char *name, char *d, char *path, int n)
{
  char err[1024];
  struct outbox *o;
  snprintf(d, 512, "%s", fresh_dir(name));
  file_path(d, path, 600);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  for(int i = 1; i <= n; i++)
    add(o, i);
  return o;
}

static size_t file_size(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (size_t)st.st_size;
}

/* Appends land in zero-filled room made ahead (journal_reserve): the file
 * does not grow with each one (so their fdatasync commits no size change),
 * it grows by a whole reserve when the room runs out, and a reopen reads
 * the zero bytes as room, not as records or a torn tail. */
static void test_reserve(void **state)
{
  (void)state;
  char d[512], path[600], err[1024];
  struct outbox *o = fresh_outbox("reserve", d, path, 1);
  size_t first = file_size(path), rec1 = records_len(path);
  assert_true(first >= rec1 + 512 * 1024);
  for(int i = 2; i <= 200; i++)
    add(o, i);
  assert_int_equal(file_size(path), first);
  assert_true(records_len(path) > 150 * rec1);
  for(int i = 0; i < 100000 && file_size(path) == first; i++)
    add(o, 7);
  assert_true(file_size(path) >= first + 512 * 1024); /* ran out: a new reserve */
  assert_true(records_len(path) > first - 4096);
  size_t recs = records_len(path);
  outbox_close(o);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), count_lines(path));
  assert_int_equal(records_len(path), recs);
  uint64_t next = add(o, 10);
  assert_int_equal(next, count_lines(path));
  outbox_close(o);
  size_t len, end = records_len(path);
  char *text = slurp(path, &len);
  assert_true(end > recs);
  assert_null(memchr(text, '\0', end)); /* appended after the records, not after the room */
  free(text);
}

/* A zero tail is room, and is not read into memory: 8 GiB sparse (a hole)
 * and 24 MiB written (scanned back in chunks) load at once and keep every
 * record; hgd read the whole file before (found by hostile testing: a
 * 100 GiB tail refused a valid file, "out of memory"). */
static void test_huge_zero_tail(void **state)
{
  (void)state;
  char d[512], path[600], err[1024];
  struct rusage ru0, ru1;
  struct outbox *o = fresh_outbox("zerotail", d, path, 3);
  outbox_close(o);
  size_t blen, recs = records_len(path);
  char *base = slurp(path, &blen);
  for(int sparse = 1; sparse >= 0; sparse--) {
    spit(path, base, recs); /* the three records alone, then the tail */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if(sparse) {
      assert_int_equal(ftruncate(fd, (off_t)8 << 30), 0);
    } else {
      static char zeros[1 << 20];
      for(int i = 0; i < 24; i++)
        assert_int_equal(pwrite(fd, zeros, sizeof(zeros), (off_t)(recs + (size_t)i * sizeof(zeros))),
                         (ssize_t)sizeof(zeros));
    }
    close(fd);
    getrusage(RUSAGE_SELF, &ru0);
    assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
    getrusage(RUSAGE_SELF, &ru1);
    assert_int_equal(outbox_pending(o), 3);
    assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 16 * 1024); /* KiB: nowhere near the tail */
    uint64_t seq = add(o, 4);
    assert_int_equal(outbox_done(o, seq), 0);
    outbox_close(o);
    /* the new records follow the old ones, before the room (read only the
     * head of the file: the tail is gigabytes) */
    char head[8192] = {0};
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(pread(fd, head, sizeof(head), 0) > (ssize_t)recs);
    close(fd);
    assert_memory_equal(head, base, recs);
    assert_int_equal(head[recs], '{');
    size_t lines = 0;
    for(size_t i = 0; i < sizeof(head); i++)
      lines += head[i] == '\n';
    assert_int_equal(lines, 5);
  }
  free(base);
  unlink(path); /* not 8 GiB for the next tests to trip over */
}

/* Cut the file at every byte offset: each complete line counts, the torn
 * one does not, nothing crashes. */
#define OPS 8
static void test_torn_tail_every_offset(void **state)
{
  (void)state;
  char d[512], path[600], err[1024];
  struct outbox *o;
  size_t ends[OPS];
  /* after k lines: attempts per entry 1..3, -1 = not pending */
  int expect[OPS + 1][4];
  snprintf(d, sizeof(d), "%s", fresh_dir("torn-src"));
  file_path(d, path, sizeof(path));
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  for(int a = 0; a < 4; a++)
    expect[0][a] = -1;
  for(int k = 0; k < OPS; k++) {
    memcpy(expect[k + 1], expect[k], sizeof(expect[k]));
    switch(k) {
    case 0:
      add(o, 1);
      expect[k + 1][1] = 0;
      break;
    case 1:
      add(o, 2);
      expect[k + 1][2] = 0;
      break;
    case 2:
      assert_int_equal(outbox_attempt(o, 1, 1, 5000), 0);
      expect[k + 1][1] = 1;
      break;
    case 3:
      add(o, 3);
      expect[k + 1][3] = 0;
      break;
    case 4:
      assert_int_equal(outbox_done(o, 2), 0);
      expect[k + 1][2] = -1;
      break;
    case 5:
      assert_int_equal(outbox_attempt(o, 3, 1, 6000), 0);
      expect[k + 1][3] = 1;
      break;
    case 6:
      assert_int_equal(outbox_attempt(o, 1, 2, 7000), 0);
      expect[k + 1][1] = 2;
      break;
    case 7:
      assert_int_equal(outbox_done(o, 3), 0);
      expect[k + 1][3] = -1;
      break;
    }
    ends[k] = records_len(path);
  }
  outbox_close(o);
  size_t full, size;
  char *orig = slurp(path, &size);
  full = records_len(path);
  assert_int_equal(full, ends[OPS - 1]);
  assert_true(size > full); /* the outbox keeps zero-filled room ahead */
  for(size_t i = full; i < size; i++)
    assert_int_equal(orig[i], 0);

  /* Each cut twice: as the file was cut (zero == 0), and with a reserve of
   * zero bytes after the cut (zero == 1: a crash in the middle of an append
   * into the reserve), which must be kept when nothing was torn. */
  char td[600], tpath[700];
  snprintf(td, sizeof(td), "%s/../torn-cut", d);
  for(size_t pass = 0; pass <= 2 * full + 1; pass++) {
    size_t cut = pass / 2;
    bool zero = pass % 2;
    char cmd[4096], *cutbuf = calloc(1, cut + 4096);
    assert_non_null(cutbuf);
    memcpy(cutbuf, orig, cut);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", td, td);
    assert_int_equal(system(cmd), 0);
    file_path(td, tpath, sizeof(tpath));
    spit(tpath, cutbuf, zero ? cut + 4096 : cut);
    free(cutbuf);
    size_t k = 0;
    while(k < OPS && ends[k] <= cut)
      k++;
    if(outbox_open(td, 0, &o, err, sizeof(err)) != 0)
      fail_msg("cut at %zu: open failed: %s", cut, err);
    struct seen seen = {.content_ok = true};
    assert_int_equal(outbox_foreach(o, collect, &seen), 0);
    assert_true(seen.content_ok);
    size_t want = 0;
    for(int a = 1; a <= 3; a++) {
      if(expect[k][a] < 0)
        continue;
      assert_true(want < seen.n);
      assert_int_equal(seen.seq[want], (uint64_t)a);
      assert_int_equal(seen.attempts[want], expect[k][a]);
      want++;
    }
    assert_int_equal(seen.n, want);
    assert_int_equal(outbox_pending(o), want);
    outbox_close(o);
    size_t now;
    char *after = slurp(tpath, &now);
    size_t keep = k ? ends[k - 1] : 0;
    /* torn: cut back to the last record; not torn: the file as it was */
    assert_int_equal(now, keep < cut || !zero ? keep : cut + 4096);
    assert_memory_equal(after, orig, keep);
    for(size_t i = keep; i < now; i++)
      assert_int_equal(after[i], 0);
    free(after);
  }
  free(orig);
}

static void test_corruption_refused(void **state)
{
  (void)state;
  char d[512], path[600], err[1024];
  struct outbox *o = fresh_outbox("corrupt", d, path, 3);
  outbox_close(o);
  size_t len;
  char *orig = slurp(path, &len);
  size_t line2 = (size_t)(strchr(orig, '\n') - orig) + 1;
  const char *bads[] = {"{\"t\":\"add\",\"seq\":", "{\"t\":\"zap\",\"seq\":9}",
                        "{\"t\":\"add\",\"seq\":1,\"agent_id\":\"a\",\"event_id\":\"b\","
                        "\"accepted_ms\":1,\"esc\":{}}", /* repeated seq */
                        "{\"t\":\"try\",\"seq\":2,\"attempt\":\"x\",\"next_ms\":1}", "[1,2]"};
  for(size_t b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
    size_t bl = strlen(bads[b]);
    char *text = malloc(len + bl + 2);
    memcpy(text, orig, line2);
    memcpy(text + line2, bads[b], bl);
    text[line2 + bl] = '\n';
    memcpy(text + line2 + bl + 1, orig + line2, len - line2);
    size_t tl = len + bl + 1;
    spit(path, text, tl);
    o = NULL;
    assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), -1);
    assert_null(o);
    char want[64];
    snprintf(want, sizeof(want), "byte offset %zu ", line2);
    if(!strstr(err, want) || !strstr(err, path) || !strstr(err, "move the file aside"))
      fail_msg("case %zu: unclear message: %s", b, err);
    size_t now;
    char *after = slurp(path, &now);
    assert_int_equal(now, tl);
    assert_memory_equal(after, text, tl);
    free(after);
    free(text);
  }
  spit(path, orig, len);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), 3);
  outbox_close(o);
  free(orig);
}

static void test_enospc(void **state)
{
  (void)state;
  char d[512], path[600], err[512], filler[700];
  struct outbox *o;
  struct outbox_entry e;
  snprintf(d, sizeof(d), "%s", fresh_dir("enospc"));
  tu_mount_tmpfs(d);
  file_path(d, path, sizeof(path));
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  uint64_t s1 = add(o, 1);

  snprintf(filler, sizeof(filler), "%s/filler", d);
  tu_fill_fs(filler);
  size_t before_len;
  char *before = slurp(path, &before_len);

  /* Appends fail until the file's last page is used up, then always. */
  int fails = 0;
  for(int i = 0; i < 40 && fails == 0; i++) {
    make_entry(&e, 100 + i);
    int rc = outbox_append(o, &e, err, sizeof(err));
    outbox_entry_clear(&e);
    if(rc != 0) {
      assert_int_equal(rc, -1);
      assert_non_null(strstr(err, "No space left on device"));
      fails++;
    } else {
      free(before);
      before = slurp(path, &before_len);
    }
  }
  assert_int_equal(fails, 1);
  size_t pending = outbox_pending(o);
  size_t after_len;
  char *after = slurp(path, &after_len);
  assert_int_equal(after_len, before_len);
  assert_memory_equal(after, before, before_len);
  free(after);
  free(before);

  /* try records that cannot be written are logged once per 10 s, not once
   * each (a full disk with retries pending flooded the log) */
  char logpath[800];
  snprintf(logpath, sizeof(logpath), "%s/../enospc-stderr.log", d);
  fflush(stderr);
  int saved = dup(STDERR_FILENO), lf = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(saved >= 0 && lf >= 0);
  dup2(lf, STDERR_FILENO);
  int tfails = 0;
  for(int i = 0; i < 300; i++)
    tfails += outbox_attempt(o, s1, 1, 1000 + i) != 0;
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(lf);
  assert_true(tfails > 100);
  size_t loglen;
  char *logtext = slurp(logpath, &loglen);
  size_t warned = 0;
  for(const char *p = logtext; (p = strstr(p, "event=outbox.write_failed")); p++)
    warned++;
  free(logtext);
  assert_int_equal(warned, 1);

  assert_int_equal(unlink(filler), 0);
  uint64_t s = add(o, 999);
  assert_int_equal(outbox_pending(o), pending + 1);
  assert_int_equal(outbox_done(o, s1), 0);
  outbox_close(o);
  assert_int_equal(outbox_open(d, 0, &o, err, sizeof(err)), 0);
  assert_int_equal(outbox_pending(o), pending);
  struct seen seen = {.content_ok = true};
  assert_int_equal(outbox_foreach(o, collect, &seen), 0);
  assert_true(seen.content_ok);
  assert_int_equal(seen.seq[seen.n - 1], s);
  outbox_close(o);
}

static int mark_pending(void *ctx, const struct outbox_entry *e)
{
  unsigned char *p = ctx;
  if(e->seq < 200000)
    p[e->seq] = 1;
  return 0;
}

/* kill -9 at random moments: every acknowledged append is pending after a
 * restart unless its "done" was acknowledged too; nothing done comes back. */
static void test_kill9(void **state)
{
  (void)state;
  char d[512], err[512];
  snprintf(d, sizeof(d), "%s", fresh_dir("kill9"));
  /* state per seq: 0 unknown, 1 added (acked), 2 done (acked) */
  unsigned char *st = calloc(200000, 1), *pend = calloc(200000, 1);
  assert_non_null(st);
  assert_non_null(pend);
  int64_t maxseq = 0;
  srand((unsigned)getpid());
  for(int round = 0; round < 12; round++) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if(pid == 0) {
      struct outbox *o;
      close(fds[0]);
      if(outbox_open(d, 0, &o, err, sizeof(err)) != 0)
        _exit(3);
      for(int i = 0;; i++) {
        struct outbox_entry e;
        make_entry(&e, i);
        if(outbox_append(o, &e, err, sizeof(err)) != 0)
          _exit(4);
        int64_t msg = (int64_t)e.seq;
        outbox_entry_clear(&e);
        if(write(fds[1], &msg, sizeof(msg)) != sizeof(msg))
          _exit(5);
        outbox_attempt(o, (uint64_t)msg, 1, 1000);
        if(i % 3 != 0) {
          if(outbox_done(o, (uint64_t)msg) != 0)
            _exit(6);
          msg = -msg;
          if(write(fds[1], &msg, sizeof(msg)) != sizeof(msg))
            _exit(5);
        }
      }
    }
    close(fds[1]);
    struct timespec ts = {0, (50 + rand() % 200) * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    int64_t msg, last_added = 0;
    while(read(fds[0], &msg, sizeof(msg)) == sizeof(msg)) {
      assert_true(msg != 0 && msg < 200000 && msg > -200000);
      if(msg > 0) {
        st[msg] = 1;
        last_added = msg;
      } else {
        st[-msg] = 2;
      }
    }
    close(fds[0]);
    if(last_added > maxseq)
      maxseq = last_added;

    struct outbox *o;
    if(outbox_open(d, 0, &o, err, sizeof(err)) != 0)
      fail_msg("round %d: %s", round, err);
    memset(pend, 0, 200000);
    assert_int_equal(outbox_foreach(o, mark_pending, pend), 0);
    for(int64_t q = 1; q <= maxseq + 1 && q < 200000; q++) {
      if(st[q] == 1 && !pend[q] && q != last_added) /* its done may have been in flight */
        fail_msg("round %d: acknowledged seq %lld lost", round, (long long)q);
      if(st[q] == 1 && !pend[q])
        st[q] = 2;
      if(st[q] == 2 && pend[q])
        fail_msg("round %d: finished seq %lld came back", round, (long long)q);
      if(st[q] == 0 && pend[q]) {
        if(q != maxseq + 1) /* the append in flight */
          fail_msg("round %d: unknown seq %lld pending", round, (long long)q);
        st[q] = 1;
        maxseq = q;
      }
    }
    outbox_close(o);
  }
  print_message("12 kill -9 rounds, %lld appends\n", (long long)maxseq);
  free(st);
  free(pend);
}

int main(void)
{
  if(tu_make_tmp_root() != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_reopen),
      cmocka_unit_test(test_entry_copy),
      cmocka_unit_test(test_limit),
      cmocka_unit_test(test_foreach_reentrant),
      cmocka_unit_test(test_compaction),
      cmocka_unit_test(test_reserve),
      cmocka_unit_test(test_huge_zero_tail),
      cmocka_unit_test(test_torn_tail_every_offset),
      cmocka_unit_test(test_corruption_refused),
      cmocka_unit_test_teardown(test_enospc, unmount_tmpfs),
      cmocka_unit_test(test_kill9),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
