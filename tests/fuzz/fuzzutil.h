/* fuzzutil.h — shared by the file-based harnesses: a private temp directory
 * (on /dev/shm when there is one, for speed) and writing the input there. */
#ifndef HG_FUZZUTIL_H
#define HG_FUZZUTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A directory made once per process and removed at exit. */
static char fuzz_dir[256];
static char fuzz_file[300];

static void fuzz_dir_remove(void)
{
  if (fuzz_file[0])
    unlink(fuzz_file);
  if (fuzz_dir[0])
    rmdir(fuzz_dir);
}

static const char *fuzz_tmpdir(const char *file)
{
  if (!fuzz_dir[0]) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (getenv("TMPDIR"))
      base = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/hgfuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
      perror("mkdtemp");
      abort();
    }
    snprintf(fuzz_file, sizeof fuzz_file, "%s/%s", fuzz_dir, file);
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir;
}

/* Replace the file with exactly these bytes, mode 0600. */
static void fuzz_write(const uint8_t *data, size_t size)
{
  int fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  size_t done = 0;

  if (fd < 0) {
    perror(fuzz_file);
    abort();
  }
  fchmod(fd, 0600);
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      perror("write");
      abort();
    }
    done += (size_t)n;
  }
  close(fd);
}

#endif
