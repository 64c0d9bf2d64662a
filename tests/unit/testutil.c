/* testutil.c — see testutil.h. Built as the hgtestutil library with the
 * same HG_TEST_TMP as the tests that link it (tests/CMakeLists.txt). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static char g_dir[512];
static char g_mounted[512]; /* the tmpfs of the ENOSPC test, for its teardown */

int tu_make_tmp_root(void)
{
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", HG_TEST_TMP);
  return system(cmd) == 0 ? 0 : -1;
}

const char *tu_fresh_dir(const char *group, const char *name)
{
  char cmd[4096];
  snprintf(g_dir, sizeof(g_dir), "%s/%s-%d/%s", HG_TEST_TMP, group, (int)getpid(), name);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
  assert_int_equal(system(cmd), 0);
  return g_dir;
}

char *tu_path(const char *dir, const char *file, char *buf, size_t n)
{
  snprintf(buf, n, "%s/%s", dir, file);
  return buf;
}

char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return buf;
}

void spit(const char *path, const char *buf, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
  close(fd);
}

size_t records_len(const char *path)
{
  size_t len;
  char *buf = slurp(path, &len);
  while(len > 0 && buf[len - 1] == '\0')
    len--;
  free(buf);
  return len;
}

size_t count_lines(const char *path)
{
  size_t len, n = 0;
  char *buf = slurp(path, &len);
  for(size_t i = 0; i < len; i++)
    n += buf[i] == '\n';
  free(buf);
  return n;
}

void tu_mount_tmpfs(const char *dir)
{
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
  assert_int_equal(system(cmd), 0);
  if(mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700") != 0) {
    print_message("cannot mount a tmpfs here (%s): ENOSPC test skipped\n", strerror(errno));
    skip();
  }
  snprintf(g_mounted, sizeof(g_mounted), "%s", dir);
}

void tu_fill_fs(const char *filler)
{
  int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  char block[4096];
  memset(block, 'z', sizeof(block));
  while(write(fd, block, sizeof(block)) > 0)
    ;
  while(write(fd, block, 1) > 0)
    ;
  close(fd);
}

int unmount_tmpfs(void **state)
{
  (void)state;
  if(g_mounted[0])
    umount2(g_mounted, MNT_DETACH);
  g_mounted[0] = '\0';
  return 0;
}
