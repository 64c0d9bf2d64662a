/* journal.c — see journal.h. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"

#define REWRITE_BUF (256 * 1024)

/* Store lines carry webhook secrets in clear: every buffer that held file
 * text is wiped before it is freed. */
static void wipe_free(void *p, size_t n)
{
  if(p) {
    crypto_wipe(p, n);
    free(p);
  }
}

struct journal {
  int fd;
  char *dir;
  char *path;
  char *tmppath;
  uint64_t size;  /* bytes of complete records */
  uint64_t alloc; /* length of the file: past size, zero bytes (the reserve) */
  size_t reserve; /* bytes to zero-fill ahead of appends; 0 = none */
  uint64_t no_reserve_until; /* a failed fill: plain appends up to here */
  size_t records; /* complete lines in the file */
  bool broken;    /* a failed append could not be cut back yet */
  bool dir_dirty; /* the last rename is not known to be durable */
  char *scratch;  /* line + '\n', so that an append is one write() */
  size_t scratch_cap;
};

struct journal_rewrite {
  struct journal *j;
  int fd;
  char *buf;
  size_t used;
  uint64_t size;
  size_t records;
};

static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
  va_list ap;
  if(!err || errsz == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
}

static char *join(const char *a, const char *sep, const char *b)
{
  size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
  char *s = malloc(la + ls + lb + 1);
  if(!s)
    return NULL;
  memcpy(s, a, la);
  memcpy(s + la, sep, ls);
  memcpy(s + la + ls, b, lb + 1);
  return s;
}

static int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if(fd < 0)
    return -1;
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

/* mkdir -p with mode 0700 for what it creates; each new entry is made
 * durable in its parent, so a fresh state directory survives a crash. */
static int mkdir_p(const char *dir, char *err, size_t errsz)
{
  struct stat st;
  int rc = -1;
  char *parent = NULL;

  if(stat(dir, &st) == 0) {
    if(S_ISDIR(st.st_mode))
      return 0;
    seterr(err, errsz, "%s exists and is not a directory", dir);
    return -1;
  }
  if(errno != ENOENT) {
    seterr(err, errsz, "cannot access %s: %s", dir, strerror(errno));
    return -1;
  }
  parent = strdup(dir);
  if(!parent) {
    seterr(err, errsz, "out of memory");
    return -1;
  }
  size_t n = strlen(parent);
  while(n > 1 && parent[n - 1] == '/')
    parent[--n] = '\0';
  char *slash = strrchr(parent, '/');
  if(slash == parent)
    slash[1] = '\0'; /* "/x" → parent "/" */
  else if(slash)
    *slash = '\0';
  else
    strcpy(parent, ".");
  if(strcmp(parent, dir) != 0 && mkdir_p(parent, err, errsz) != 0)
    goto out;
  if(mkdir(dir, 0700) != 0 && errno != EEXIST) {
    seterr(err, errsz, "cannot create directory %s: %s", dir, strerror(errno));
    goto out;
  }
  if(fsync_dir(parent) != 0) {
    seterr(err, errsz, "cannot fsync directory %s: %s", parent, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  free(parent);
  return rc;
}

int journal_open(const char *dir, const char *name, struct journal **out, char *err, size_t errsz)
{
  struct journal *j = calloc(1, sizeof(*j));
  struct stat st;

  *out = NULL;
  if(!j) {
    seterr(err, errsz, "out of memory");
    return -1;
  }
  j->fd = -1;
  j->dir = strdup(dir);
  j->path = join(dir, "/", name);
  j->tmppath = j->path ? join(j->path, "", ".tmp") : NULL;
  if(!j->dir || !j->path || !j->tmppath) {
    seterr(err, errsz, "out of memory");
    goto fail;
  }
  if(mkdir_p(dir, err, errsz) != 0)
    goto fail;

  /* A tmp file is only ever complete and wanted once renamed; one still
   * here is a compaction cut short by a crash. */
  if(unlink(j->tmppath) == 0)
    log_event(LOG_LVL_WARN, "journal.stale_tmp", "file=%s action=removed", j->tmppath);

  /* No O_APPEND: appends are pwrite()s at the end of the records, which
   * may lie before the end of the file (the reserve); Linux would ignore
   * the offset of a pwrite() on an O_APPEND descriptor. */
  /* O_NOFOLLOW: a link planted in the state directory must not make hgd
   * write, chmod or lock a file elsewhere. */
  j->fd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if(j->fd < 0 && errno == ELOOP) {
    seterr(err, errsz, "%s is a symbolic link: hgd keeps its state files in the state directory "
                       "itself (replace the link with the file)", j->path);
    goto fail;
  }
  if(j->fd < 0 && errno == ENOENT) {
    j->fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if(j->fd >= 0 && fsync_dir(j->dir) != 0) {
      seterr(err, errsz, "cannot fsync directory %s: %s", j->dir, strerror(errno));
      goto fail;
    }
  }
  if(j->fd < 0) {
    seterr(err, errsz, "cannot open %s: %s", j->path, strerror(errno));
    goto fail;
  }
  if(flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
    if(errno == EWOULDBLOCK)
      seterr(err, errsz,
             "%s is locked by another process: is another hgd using this state directory?",
             j->path);
    else
      seterr(err, errsz, "cannot lock %s: %s", j->path, strerror(errno));
    goto fail;
  }
  if(fstat(j->fd, &st) != 0) {
    seterr(err, errsz, "cannot stat %s: %s", j->path, strerror(errno));
    goto fail;
  }
  if(!S_ISREG(st.st_mode)) {
    seterr(err, errsz, "%s is not a regular file", j->path);
    goto fail;
  }
  /* The store holds webhook secrets in clear: a file others may read (an
   * operator's copy, a restore from backup) is tightened, not just noted. */
  if(st.st_mode & 077) {
    if(fchmod(j->fd, 0600) == 0)
      log_event(LOG_LVL_WARN, "journal.mode", "file=%s mode=%04o action=\"chmod 0600\"", j->path,
                (unsigned)(st.st_mode & 07777));
    else
      log_event(LOG_LVL_ERROR, "journal.mode", "file=%s mode=%04o error=\"cannot chmod 0600: %s\"",
                j->path, (unsigned)(st.st_mode & 07777), strerror(errno));
  }
  j->size = j->alloc = (uint64_t)st.st_size;
  *out = j;
  return 0;
fail:
  journal_close(j);
  return -1;
}

void journal_close(struct journal *j)
{
  if(!j)
    return;
  if(j->fd >= 0)
    close(j->fd);
  free(j->dir);
  free(j->path);
  free(j->tmppath);
  wipe_free(j->scratch, j->scratch_cap);
  free(j);
}

static int read_all(int fd, char *buf, size_t len, uint64_t off)
{
  size_t done = 0;
  while(done < len) {
    ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
    if(n < 0) {
      if(errno == EINTR)
        continue;
      return -1;
    }
    if(n == 0) {
      errno = EIO; /* the file shrank under us */
      return -1;
    }
    done += (size_t)n;
  }
  return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
  while(len > 0) {
    ssize_t n = write(fd, buf, len);
    if(n < 0) {
      if(errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

#define RECOVER_HINT                                                                               \
  "hgd never rewrites a file it cannot parse: stop hgd, move the file aside and restore it "       \
  "from a backup, or repair or remove that line by hand"

/* Parse one complete line; NULL with a reason and the error's offset. */
static cJSON *parse_line(const char *line, size_t len, char *why, size_t whysz, size_t *at)
{
  const char *end = NULL;
  const char *nul = memchr(line, '\0', len);

  *at = 0;
  if(len == 0) {
    snprintf(why, whysz, "empty line");
    return NULL;
  }
  if(nul) {
    *at = (size_t)(nul - line);
    snprintf(why, whysz, "NUL byte in record");
    return NULL;
  }
  cJSON *rec = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if(!rec) {
    *at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
    snprintf(why, whysz, "not valid JSON");
    return NULL;
  }
  while(end < line + len && (*end == ' ' || *end == '\t' || *end == '\r'))
    end++;
  if(end != line + len) {
    *at = (size_t)(end - line);
    snprintf(why, whysz, "unexpected bytes after the JSON value");
    cJSON_Delete(rec);
    return NULL;
  }
  if(!cJSON_IsObject(rec)) {
    snprintf(why, whysz, "not a JSON object");
    cJSON_Delete(rec);
    return NULL;
  }
  return rec;
}

/* Where the bytes before the zero bytes at the end of the file stop. Zero
 * bytes there are the reserve (journal_reserve), or what a crash left of a
 * fill: free room, not records, and not read into memory (a file with a
 * huge zero tail, sparse or not, loads in the time of its records). */
static int records_end(int fd, uint64_t size, uint64_t *end)
{
  char chunk[16384];
  uint64_t e = size;
  int rc = 0;

  /* Skip a trailing hole without reading it: the end of the last data. */
  off_t d = lseek(fd, 0, SEEK_DATA);
  if(d < 0 && errno == ENXIO) {
    *end = 0; /* all hole */
    return 0;
  }
  if(d >= 0) {
    uint64_t last = 0;
    while(d >= 0 && (uint64_t)d < size) {
      off_t h = lseek(fd, d, SEEK_HOLE);
      if(h < 0)
        break;
      last = (uint64_t)h;
      d = lseek(fd, h, SEEK_DATA);
    }
    if(last > 0 && last < e)
      e = last;
  }
  while(e > 0) {
    uint64_t at = e > sizeof(chunk) ? e - sizeof(chunk) : 0;
    size_t n = (size_t)(e - at);
    if(read_all(fd, chunk, n, at) != 0) {
      rc = -1;
      break;
    }
    while(n > 0 && chunk[n - 1] == '\0')
      n--;
    e = at + n;
    if(n > 0)
      break;
  }
  crypto_wipe(chunk, sizeof(chunk)); /* store lines: secrets in clear */
  *end = e;
  return rc;
}

int journal_load(struct journal *j, journal_record_fn fn, void *ctx, char *err, size_t errsz)
{
  struct stat st;
  char *buf = NULL;
  size_t size, end, pos = 0, lineno = 0, records = 0;
  uint64_t end64;
  int rc = -1;

  if(fstat(j->fd, &st) != 0) {
    seterr(err, errsz, "cannot stat %s: %s", j->path, strerror(errno));
    return -1;
  }
  size = (size_t)st.st_size;
  if(records_end(j->fd, (uint64_t)st.st_size, &end64) != 0) {
    seterr(err, errsz, "cannot read %s: %s", j->path, strerror(errno));
    return -1;
  }
  end = (size_t)end64;
  buf = malloc(end + 1);
  if(!buf) {
    seterr(err, errsz, "%s: out of memory reading its %zu bytes of records", j->path, end);
    return -1;
  }
  if(read_all(j->fd, buf, end, 0) != 0) {
    seterr(err, errsz, "cannot read %s: %s", j->path, strerror(errno));
    goto out;
  }
  while(pos < end) {
    char *line = buf + pos;
    char *nl = memchr(line, '\n', end - pos);
    char why[256];
    size_t at;

    if(!nl)
      break; /* torn tail, handled below */
    lineno++;
    size_t len = (size_t)(nl - line);
    cJSON *rec = parse_line(line, len, why, sizeof(why), &at);
    if(!rec) {
      seterr(err, errsz,
             "%s: corrupt record at byte offset %zu (line %zu): %s at byte offset %zu. %s", j->path,
             pos, lineno, why, pos + at, RECOVER_HINT);
      goto out;
    }
    why[0] = '\0';
    int frc = fn(ctx, rec, (uint64_t)pos, len, why, sizeof(why));
    cJSON_Delete(rec);
    if(frc != 0) {
      seterr(err, errsz, "%s: invalid record at byte offset %zu (line %zu): %s. %s", j->path, pos,
             lineno, why[0] ? why : "rejected", RECOVER_HINT);
      goto out;
    }
    records++;
    pos = (size_t)(nl - buf) + 1;
  }
  if(pos < end) {
    /* A crash during an append: that record was never acknowledged. Cut
     * it, or the next append would glue onto it and corrupt a good line
     * (the reserve after it goes too; the next append makes a new one). */
    log_event(LOG_LVL_WARN, "journal.torn_tail", "file=%s offset=%zu dropped_bytes=%zu", j->path,
              pos, end - pos);
    if(ftruncate(j->fd, (off_t)pos) != 0 || fdatasync(j->fd) != 0) {
      seterr(err, errsz, "%s: cannot cut the torn last record at byte offset %zu: %s", j->path, pos,
             strerror(errno));
      goto out;
    }
    size = pos;
  }
  j->size = pos;
  j->alloc = size;
  j->records = records;
  rc = 0;
out:
  wipe_free(buf, end + 1);
  return rc;
}

/* Cut the file to its complete records (the reserve goes with the cut). */
static int cut_to_records(struct journal *j)
{
  if(ftruncate(j->fd, (off_t)j->size) != 0)
    return -1;
  j->alloc = j->size;
  return 0;
}

/* Cut a failed append back off. If even that fails, remember it: the next
 * append retries the cut first, so garbage never ends up mid-file. */
static void rollback(struct journal *j)
{
  if(cut_to_records(j) != 0) {
    j->broken = true;
    log_event(LOG_LVL_ERROR, "journal.truncate_failed", "file=%s offset=%" PRIu64 " error=\"%s\"",
              j->path, j->size, strerror(errno));
  }
}

void journal_reserve(struct journal *j, size_t bytes)
{
  j->reserve = bytes;
}

/* Make room for need more bytes after the records: allocate and zero-fill
 * the next reserve bytes of the file and sync that once, so that the
 * appends landing there change no file size or extent and their fdatasync
 * is a plain data flush (no filesystem journal commit). If the disk has no
 * room for a whole reserve, appends go on plainly, extending the file, and
 * the fill is tried again only after another reserve's worth of them. */
static void fill_reserve(struct journal *j, size_t need)
{
  static const char zeros[65536];
  uint64_t to = j->size + need + j->reserve;
  uint64_t at = j->alloc;

  if(j->reserve == 0 || j->size + need <= j->alloc || j->size < j->no_reserve_until)
    return;
  to = (to + 4095) & ~(uint64_t)4095;
  if(fallocate(j->fd, 0, (off_t)at, (off_t)(to - at)) != 0 && errno != EOPNOTSUPP)
    goto fail;
  /* fallocate leaves "unwritten" extents: writing them converts them once,
   * here, instead of in the first fdatasync of every block. */
  while(at < to) {
    size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
    ssize_t w = pwrite(j->fd, zeros, n, (off_t)at);
    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0)
      goto fail;
    at += (uint64_t)w;
  }
  if(fdatasync(j->fd) != 0)
    goto fail;
  j->alloc = to;
  return;
fail:
  log_event(LOG_LVL_DEBUG, "journal.reserve_failed", "file=%s bytes=%zu error=\"%s\"", j->path,
            j->reserve, strerror(errno));
  j->no_reserve_until = j->size + j->reserve;
  if(ftruncate(j->fd, (off_t)j->alloc) != 0)
    rollback(j);
}

int journal_append(struct journal *j, const char *line, size_t len, bool durable, uint64_t *off,
                   char *err, size_t errsz)
{
  ssize_t n;
  int e;

  if(memchr(line, '\n', len)) {
    seterr(err, errsz, "%s: record contains a newline", j->path);
    return -1;
  }
  if(j->broken) {
    if(cut_to_records(j) != 0) {
      seterr(err, errsz, "%s: cannot cut back an earlier failed write: %s", j->path,
             strerror(errno));
      return -1;
    }
    j->broken = false;
  }
  if(durable && j->dir_dirty) {
    if(fsync_dir(j->dir) != 0) {
      seterr(err, errsz, "cannot fsync directory %s: %s", j->dir, strerror(errno));
      return -1;
    }
    j->dir_dirty = false;
  }
  if(j->scratch_cap < len + 1) {
    size_t cap = len + 1 > 4096 ? len + 1 : 4096;
    char *p = malloc(cap); /* not realloc: the old block is wiped first */
    if(!p) {
      seterr(err, errsz, "out of memory");
      return -1;
    }
    wipe_free(j->scratch, j->scratch_cap);
    j->scratch = p;
    j->scratch_cap = cap;
  }
  memcpy(j->scratch, line, len);
  j->scratch[len] = '\n';
  fill_reserve(j, len + 1);

  do
    n = pwrite(j->fd, j->scratch, len + 1, (off_t)j->size);
  while(n < 0 && errno == EINTR);
  if(n != (ssize_t)(len + 1)) {
    if(n < 0) {
      e = errno;
    } else {
      /* A short write does not say why; asking again does (ENOSPC). */
      e = EIO;
      if(pwrite(j->fd, j->scratch + n, len + 1 - (size_t)n, (off_t)(j->size + (uint64_t)n)) < 0)
        e = errno;
    }
    rollback(j);
    seterr(err, errsz, "cannot write %s: %s", j->path, strerror(e));
    return -1;
  }
  if(durable && fdatasync(j->fd) != 0) {
    e = errno;
    rollback(j);
    seterr(err, errsz, "cannot sync %s: %s", j->path, strerror(e));
    return -1;
  }
  if(off)
    *off = j->size;
  j->size += len + 1;
  if(j->alloc < j->size)
    j->alloc = j->size;
  j->records++;
  return 0;
}

int journal_sync_handle(struct journal *j, char *err, size_t errsz)
{
  if(j->dir_dirty) {
    if(fsync_dir(j->dir) != 0) {
      seterr(err, errsz, "cannot fsync directory %s: %s", j->dir, strerror(errno));
      return -1;
    }
    j->dir_dirty = false;
  }
  int fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 0);
  if(fd < 0)
    seterr(err, errsz, "cannot sync %s: %s", j->path, strerror(errno));
  return fd;
}

int journal_sync(int fd, const char *what, char *err, size_t errsz)
{
  int rc = fdatasync(fd);
  if(rc != 0)
    seterr(err, errsz, "cannot sync %s: %s", what, strerror(errno));
  close(fd);
  return rc == 0 ? 0 : -1;
}

int journal_unappend(struct journal *j, uint64_t off, size_t len)
{
  if(j->size != off + len + 1)
    return -1;
  j->size = off;
  j->records--;
  rollback(j);
  return 0;
}

int journal_read(struct journal *j, uint64_t off, size_t len, char *buf, char *err, size_t errsz)
{
  if(off + len > j->size) {
    seterr(err, errsz, "%s: read past the end (offset %" PRIu64 ")", j->path, off);
    return -1;
  }
  if(read_all(j->fd, buf, len, off) != 0) {
    seterr(err, errsz, "cannot read %s: %s", j->path, strerror(errno));
    return -1;
  }
  return 0;
}

size_t journal_records(const struct journal *j)
{
  return j->records;
}

uint64_t journal_size(const struct journal *j)
{
  return j->size;
}

const char *journal_path(const struct journal *j)
{
  return j->path;
}

int journal_rewrite_begin(struct journal *j, struct journal_rewrite **out, char *err, size_t errsz)
{
  struct journal_rewrite *rw = calloc(1, sizeof(*rw));

  *out = NULL;
  if(!rw || !(rw->buf = malloc(REWRITE_BUF))) {
    free(rw);
    seterr(err, errsz, "out of memory");
    return -1;
  }
  rw->j = j;
  /* Written in order from offset 0; after the rename this descriptor is
   * the journal's, which appends with pwrite() (no O_APPEND, see open). */
  rw->fd = open(j->tmppath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if(rw->fd < 0) {
    seterr(err, errsz, "cannot create %s: %s", j->tmppath, strerror(errno));
    wipe_free(rw->buf, REWRITE_BUF);
    free(rw);
    return -1;
  }
  if(flock(rw->fd, LOCK_EX | LOCK_NB) != 0) {
    seterr(err, errsz, "cannot lock %s: %s", j->tmppath, strerror(errno));
    journal_rewrite_abort(rw);
    return -1;
  }
  *out = rw;
  return 0;
}

static int rewrite_flush(struct journal_rewrite *rw)
{
  if(rw->used == 0)
    return 0;
  if(write_all(rw->fd, rw->buf, rw->used) != 0)
    return -1;
  rw->used = 0;
  return 0;
}

int journal_rewrite_add(struct journal_rewrite *rw, const char *line, size_t len, uint64_t *off,
                        char *err, size_t errsz)
{
  if(memchr(line, '\n', len)) {
    seterr(err, errsz, "%s: record contains a newline", rw->j->tmppath);
    return -1;
  }
  if(rw->used + len + 1 > REWRITE_BUF && rewrite_flush(rw) != 0)
    goto ioerr;
  if(len + 1 > REWRITE_BUF) {
    if(write_all(rw->fd, line, len) != 0 || write_all(rw->fd, "\n", 1) != 0)
      goto ioerr;
  } else {
    memcpy(rw->buf + rw->used, line, len);
    rw->buf[rw->used + len] = '\n';
    rw->used += len + 1;
  }
  if(off)
    *off = rw->size;
  rw->size += len + 1;
  rw->records++;
  return 0;
ioerr:
  seterr(err, errsz, "cannot write %s: %s", rw->j->tmppath, strerror(errno));
  return -1;
}

int journal_rewrite_commit(struct journal_rewrite *rw, char *err, size_t errsz)
{
  struct journal *j = rw->j;

  if(rewrite_flush(rw) != 0) {
    seterr(err, errsz, "cannot write %s: %s", j->tmppath, strerror(errno));
    journal_rewrite_abort(rw);
    return -1;
  }
  if(fsync(rw->fd) != 0) {
    seterr(err, errsz, "cannot sync %s: %s", j->tmppath, strerror(errno));
    journal_rewrite_abort(rw);
    return -1;
  }
  if(rename(j->tmppath, j->path) != 0) {
    seterr(err, errsz, "cannot rename %s to %s: %s", j->tmppath, j->path, strerror(errno));
    journal_rewrite_abort(rw);
    return -1;
  }
  /* From here the new file is the journal whatever happens next. */
  close(j->fd);
  j->fd = rw->fd;
  j->size = j->alloc = rw->size;
  j->no_reserve_until = 0;
  j->records = rw->records;
  j->broken = false;
  wipe_free(rw->buf, REWRITE_BUF);
  free(rw);
  if(fsync_dir(j->dir) != 0) {
    /* Until the rename is durable a crash could bring back the old file
     * (complete up to now) without later appends: so the next durable
     * append retries this first and fails if it still cannot. */
    j->dir_dirty = true;
    log_event(LOG_LVL_WARN, "journal.dir_sync_failed", "dir=%s error=\"%s\"", j->dir,
              strerror(errno));
  } else {
    j->dir_dirty = false;
  }
  return 0;
}

void journal_rewrite_abort(struct journal_rewrite *rw)
{
  if(!rw)
    return;
  close(rw->fd);
  unlink(rw->j->tmppath);
  wipe_free(rw->buf, REWRITE_BUF);
  free(rw);
}

bool journal_get_i64(const cJSON *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  if(!cJSON_IsNumber(it))
    return false;
  double d = it->valuedouble;
  /* Beyond 2^53 a double no longer holds every integer. */
  if(!isfinite(d) || d != floor(d) || d < -9007199254740992.0 || d > 9007199254740992.0)
    return false;
  int64_t v = (int64_t)d;
  if(v < min || v > max)
    return false;
  *out = v;
  return true;
}
