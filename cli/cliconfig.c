/* cliconfig.c — settings from the environment and the config file, merged
 * under the command line (see cliconfig.h). */
#include "cliconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"

#define LINE_MAX_LEN 8192
#define CONFIG_MAX_BYTES (1024 * 1024)

void cliconfig_init(struct cliconfig *c)
{
  memset(c, 0, sizeof(*c));
  c->json = -1;
}

void cliconfig_clear(struct cliconfig *c)
{
  free(c->host);
  free(c->username);
  crypto_free_secret(c->password);
  free(c->cafile);
  free(c->cert);
  free(c->key);
  free(c->client_id);
  free(c->key_id);
  crypto_free_secret(c->key_secret);
  free(c->key_file);
  free(c->topic_root);
  cliconfig_init(c);
}

bool cliconfig_is_secret(const char *name)
{
  return strcmp(name, "password") == 0 || strcmp(name, "key-secret") == 0;
}

/* "~/x" → "$HOME/x", for paths written in the config file. */
static char *expand_path(const char *v)
{
  const char *home = getenv("HOME");
  if (v[0] == '~' && v[1] == '/' && home && *home) {
    size_t n = strlen(home) + strlen(v);
    char *p = malloc(n);
    if (p)
      snprintf(p, n, "%s%s", home, v + 1);
    return p;
  }
  return strdup(v);
}

static int replace_str(char **slot, char *v, bool secret)
{
  if (!v)
    return -1;
  if (secret)
    crypto_free_secret(*slot);
  else
    free(*slot);
  *slot = v;
  return 0;
}

static int parse_port(const char *v, int *out)
{
  char *end;
  long n;
  if (!isdigit((unsigned char)v[0]))
    return -1;
  errno = 0;
  n = strtol(v, &end, 10);
  if (errno || *end || n < 1 || n > 65535)
    return -1;
  *out = (int)n;
  return 0;
}

static int parse_timeout(const char *v, double *out)
{
  char *end;
  double d;
  if (!(isdigit((unsigned char)v[0]) || v[0] == '.'))
    return -1;
  errno = 0;
  d = strtod(v, &end);
  if (errno || *end || !isfinite(d) || d <= 0 || d > CLICONFIG_MAX_TIMEOUT)
    return -1;
  *out = d;
  return 0;
}

static int parse_bool(const char *v, int *out)
{
  static const char *yes[] = {"1", "true", "yes", "on"};
  static const char *no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(v, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(v, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

/* The topic root is a prefix for publishing and subscribing alike: no
 * wildcards, not empty, no empty levels at its ends. */
static int check_root(const char *v)
{
  size_t n = strlen(v);
  if (n == 0 || n > 512 || strpbrk(v, "+#") || v[0] == '/' || v[n - 1] == '/')
    return -1;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return -1;
  return 0;
}

int cliconfig_set(struct cliconfig *c, const char *name, const char *value,
                  enum cliconfig_origin origin, char *err, size_t errsz)
{
  if (strcmp(name, "json") == 0) {
    if (!value) {
      c->json = 1;
      return 0;
    }
    if (parse_bool(value, &c->json) < 0) {
      snprintf(err, errsz, "must be true or false");
      return -1;
    }
    return 0;
  }
  if (!value) {
    snprintf(err, errsz, "needs a value");
    return -1;
  }
  if (strcmp(name, "port") == 0) {
    if (parse_port(value, &c->port) < 0) {
      snprintf(err, errsz, "must be a number from 1 to 65535");
      return -1;
    }
    return 0;
  }
  if (strcmp(name, "timeout") == 0) {
    if (parse_timeout(value, &c->timeout) < 0) {
      snprintf(err, errsz, "must be a number of seconds above 0 and at most %g",
               CLICONFIG_MAX_TIMEOUT);
      return -1;
    }
    return 0;
  }
  if (strcmp(name, "topic-root") == 0) {
    if (check_root(value) < 0) {
      snprintf(err, errsz,
               "must be a non-empty topic without wildcards or a leading or trailing "
               "'/'");
      return -1;
    }
    if (replace_str(&c->topic_root, strdup(value), false) < 0) {
      snprintf(err, errsz, "out of memory");
      return -1;
    }
    return 0;
  }

  struct {
    const char *name;
    char **slot;
    bool path;
  } strs[] = {
      {"host", &c->host, false},
      {"username", &c->username, false},
      {"password", &c->password, false},
      {"cafile", &c->cafile, true},
      {"cert", &c->cert, true},
      {"key", &c->key, true},
      {"id", &c->client_id, false},
      {"key-id", &c->key_id, false},
      {"key-secret", &c->key_secret, false},
      {"key-file", &c->key_file, true},
  };
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (strcmp(name, strs[i].name) != 0)
      continue;
    if (*value == '\0') {
      snprintf(err, errsz, "must not be empty");
      return -1;
    }
    bool secret = cliconfig_is_secret(name);
    char *v = (strs[i].path && origin == CLICONFIG_FILE) ? expand_path(value) : strdup(value);
    if (replace_str(strs[i].slot, v, secret) < 0) {
      snprintf(err, errsz, "out of memory");
      return -1;
    }
    /* One source names the key secret one way or the other, never both. */
    if (strcmp(name, "key-secret") == 0 && c->key_file) {
      free(c->key_file);
      c->key_file = NULL;
    } else if (strcmp(name, "key-file") == 0 && c->key_secret) {
      crypto_free_secret(c->key_secret);
      c->key_secret = NULL;
    }
    return 0;
  }
  return 1;
}

static const char *const env_settings[] = {
    "host",    "port", "username",   "password", "cafile",     "cert",
    "key",     "id",   "key-id",     "key-file", "key-secret", /* an explicit secret beats a file */
    "timeout", "json", "topic-root",
};

int cliconfig_from_env(struct cliconfig *c, char *err, size_t errsz)
{
  for (size_t i = 0; i < sizeof(env_settings) / sizeof(env_settings[0]); i++) {
    char var[64] = "HGCTL_";
    size_t n = strlen(var);
    for (const char *p = env_settings[i]; *p && n < sizeof(var) - 1; p++)
      var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    var[n] = '\0';
    const char *v = getenv(var);
    if (!v || !*v)
      continue;
    char e[256];
    if (cliconfig_set(c, env_settings[i], v, CLICONFIG_ENV, e, sizeof(e)) != 0) {
      snprintf(err, errsz, "%s %s", var, e);
      return -1;
    }
  }
  return 0;
}

char *cliconfig_path(bool *named)
{
  const char *explicit = getenv("HGCTL_CONFIG");
  *named = explicit && *explicit;
  if (explicit)
    return *explicit ? strdup(explicit) : NULL;
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *base = NULL, *tail = NULL;
  if (xdg && xdg[0] == '/') {
    base = xdg;
    tail = "/hgctl/config";
  } else {
    base = getenv("HOME");
    tail = "/.config/hgctl/config";
    if (!base || !*base)
      return NULL;
  }
  size_t n = strlen(base) + strlen(tail) + 1;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s%s", base, tail);
  return p;
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

/* Values may be quoted to keep leading or trailing blanks or a '#'. */
static char *unquote(char *v)
{
  size_t n = strlen(v);
  if (n >= 2 && ((v[0] == '"' && v[n - 1] == '"') || (v[0] == '\'' && v[n - 1] == '\''))) {
    v[n - 1] = '\0';
    return v + 1;
  }
  return v;
}

int cliconfig_from_file(struct cliconfig *c, const char *path, bool named, char *err,
                        size_t errsz)
{
  int rc = -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  bool has_secret = false;
  struct stat st;
  /* A FIFO or a device (/dev/zero) would hang or never end: only a
   * regular file is a config file. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  FILE *f = NULL;
  if (fd < 0) {
    if ((errno == ENOENT || errno == ENOTDIR) && !named)
      return 0; /* the default file may be missing; one named by HGCTL_CONFIG may not */
    snprintf(err, errsz, "cannot read config file %s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errsz, "config file %s is not a regular file", path);
    close(fd);
    return -1;
  }
  if (st.st_size > CONFIG_MAX_BYTES) {
    snprintf(err, errsz, "config file %s is larger than %d bytes", path, CONFIG_MAX_BYTES);
    close(fd);
    return -1;
  }
  if (!(f = fdopen(fd, "r"))) {
    snprintf(err, errsz, "cannot read config file %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  for (unsigned lineno = 1; (got = getline(&line, &cap, f)) >= 0; lineno++) {
    size_t len = (size_t)got;
    if (len >= LINE_MAX_LEN) {
      snprintf(err, errsz, "config file %s line %u: line too long", path, lineno);
      goto out;
    }
    if (memchr(line, '\0', len)) {
      snprintf(err, errsz, "config file %s line %u: NUL byte", path, lineno);
      goto out;
    }
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
      continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(err, errsz, "config file %s line %u: expected 'key = value'", path, lineno);
      goto out;
    }
    *eq = '\0';
    char *name = trim(s);
    char *value = unquote(trim(eq + 1));
    if (*value == '\0') {
      /* "key =" leaves the setting to the defaults, like a commented line. */
      continue;
    }
    char e[256];
    int r = cliconfig_set(c, name, value, CLICONFIG_FILE, e, sizeof(e));
    if (r == 1) {
      /* Echo the key only when it looks like one: a stray secret pasted on
       * its own line must not end up in a terminal scrollback. */
      bool plain =
          strlen(name) <= 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz-") == strlen(name);
      snprintf(err, errsz, "config file %s line %u: unknown setting%s%s%s", path, lineno,
               plain ? " '" : "", plain ? name : "", plain ? "'" : "");
      goto out;
    }
    if (r < 0) {
      snprintf(err, errsz, "config file %s line %u: %s %s", path, lineno, name, e);
      goto out;
    }
    if (cliconfig_is_secret(name))
      has_secret = true;
  }
  if (ferror(f)) {
    snprintf(err, errsz, "cannot read config file %s: %s", path, strerror(errno));
    goto out;
  }
  if (has_secret) {
    if (st.st_mode & 077)
      fprintf(stderr,
              "hgctl: warning: %s holds a secret and is readable by others (chmod 600 it)\n", path);
  }
  rc = 0;
out:
  if (line) {
    crypto_wipe(line, cap);
    free(line);
  }
  fclose(f);
  return rc;
}

static void take_str(char **dst, char **src)
{
  if (!*dst && *src) {
    *dst = *src;
    *src = NULL;
  }
}

void cliconfig_merge(struct cliconfig *dst, struct cliconfig *src)
{
  take_str(&dst->host, &src->host);
  if (!dst->port)
    dst->port = src->port;
  take_str(&dst->username, &src->username);
  take_str(&dst->password, &src->password);
  take_str(&dst->cafile, &src->cafile);
  take_str(&dst->cert, &src->cert);
  take_str(&dst->key, &src->key);
  take_str(&dst->client_id, &src->client_id);
  take_str(&dst->key_id, &src->key_id);
  if (!dst->key_secret && !dst->key_file) {
    take_str(&dst->key_secret, &src->key_secret);
    take_str(&dst->key_file, &src->key_file);
  }
  if (dst->timeout <= 0)
    dst->timeout = src->timeout;
  if (dst->json < 0)
    dst->json = src->json;
  take_str(&dst->topic_root, &src->topic_root);
}

bool cliconfig_tls(const struct cliconfig *c)
{
  return c->cafile || c->cert;
}

int cliconfig_finish(struct cliconfig *c, bool need_key, char *err, size_t errsz)
{
  if (!c->host && !(c->host = strdup(CLICONFIG_DEFAULT_HOST)))
    goto oom;
  if (!c->port)
    c->port = cliconfig_tls(c) ? CLICONFIG_DEFAULT_TLS_PORT : CLICONFIG_DEFAULT_PORT;
  if (c->timeout <= 0)
    c->timeout = CLICONFIG_DEFAULT_TIMEOUT;
  if (c->json < 0)
    c->json = 0;
  if (!c->topic_root && !(c->topic_root = strdup(CLICONFIG_DEFAULT_ROOT)))
    goto oom;
  if (c->key && !c->cert) {
    snprintf(err, errsz, "--key (TLS private key) needs --cert");
    return -1;
  }
  /* Named here, not as Paho's "TLS handshake failed: system lib" later. */
  const struct {
    const char *opt, *path;
  } files[] = {{"--cafile", c->cafile}, {"--cert", c->cert}, {"--key", c->key}};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (files[i].path && access(files[i].path, R_OK) != 0) {
      snprintf(err, errsz, "%s %s: %s", files[i].opt, files[i].path, strerror(errno));
      return -1;
    }
  }
  if (c->password && !c->username) {
    snprintf(err, errsz, "--password needs --username");
    return -1;
  }
  if (!need_key)
    return 0;
  if (!c->key_id) {
    snprintf(err, errsz,
             "no signing key: give --key-id (or HGCTL_KEY_ID, or key-id in the config file)");
    return -1;
  }
  if (!c->key_secret && c->key_file) {
    c->key_secret = cliconfig_read_secret(c->key_file, c->timeout, err, errsz);
    if (!c->key_secret)
      return -1;
  }
  if (!c->key_secret) {
    snprintf(err, errsz,
             "no key secret for key '%s': give --key-secret or --key-file (or "
             "HGCTL_KEY_SECRET, or key-secret/key-file in the config file)",
             c->key_id);
    return -1;
  }
  return 0;
oom:
  snprintf(err, errsz, "out of memory");
  return -1;
}

char *cliconfig_read_secret(const char *path, double timeout, char *err, size_t errsz)
{
  /* O_NONBLOCK: opening a FIFO for reading blocks until a writer comes. */
  int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  const char *shown = fd == STDIN_FILENO ? "standard input" : path;
  int64_t deadline = clock_mono_ms() + (int64_t)ceil(timeout * 1000.0);
  char *buf = NULL;
  size_t len = 0;
  if (fd < 0) {
    snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  buf = malloc(CLICONFIG_SECRET_MAX + 2);
  if (!buf) {
    snprintf(err, errsz, "out of memory");
    goto fail;
  }
  for (;;) {
    if (fd != STDIN_FILENO) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      int64_t left = deadline - clock_mono_ms();
      int pr = left > 0 ? poll(&p, 1, left > 60000 ? 60000 : (int)left) : 0;
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr == 0 && clock_mono_ms() < deadline)
        continue;
      if (pr == 0) {
        snprintf(err, errsz, "%s gave nothing to read within %g s", shown, timeout);
        goto fail;
      }
    }
    ssize_t n = read(fd, buf + len, CLICONFIG_SECRET_MAX + 1 - len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0) {
      snprintf(err, errsz, "cannot read %s: %s", shown, strerror(errno));
      goto fail;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len > CLICONFIG_SECRET_MAX) {
      snprintf(err, errsz, "%s is too large for a secret (at most %d bytes)", shown,
               CLICONFIG_SECRET_MAX);
      goto fail;
    }
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  buf[len] = '\0';
  if (len == 0) {
    snprintf(err, errsz, "%s holds no secret (it is empty)", shown);
    goto fail;
  }
  if (memchr(buf, '\0', len)) {
    snprintf(err, errsz, "%s holds a NUL byte; a secret must be text", shown);
    goto fail;
  }
  if (fd != STDIN_FILENO)
    close(fd);
  return buf;
fail:
  if (buf) {
    crypto_wipe(buf, CLICONFIG_SECRET_MAX + 2);
    free(buf);
  }
  if (fd != STDIN_FILENO)
    close(fd);
  return NULL;
}
