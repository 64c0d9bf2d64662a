/* config.c — one table of settings serves the flags and the config file. */
#include "config.h"
#include "jsonutil.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { OPT_STRING, OPT_BOOL, OPT_SECONDS, OPT_COUNT, OPT_LIST, OPT_SCHEDULE, OPT_LEVEL };

struct opt {
  const char *name; /* flag name; file key is the same with '_' for '-' */
  enum opt_type type;
  size_t off;
  bool cli_only;
  const char *help;
};

#define O(f) offsetof(struct config, f)
static const struct opt opts[] = {
    {"broker", OPT_STRING, O(broker), false, "URI of the broker (mqtt://, mqtts://, tcp://, ssl://)"},
    {"username", OPT_STRING, O(username), false, "broker user name"},
    {"password", OPT_STRING, O(password), false, "broker password"},
    {"cafile", OPT_STRING, O(cafile), false, "CA bundle for the broker's TLS certificate"},
    {"cert", OPT_STRING, O(cert), false, "client certificate for the broker"},
    {"key", OPT_STRING, O(key), false, "client private key for the broker"},
    {"state-dir", OPT_STRING, O(state_dir), false, "where the store and outbox live"},
    {"keys", OPT_STRING, O(keys), false, "keys file (mode 0600)"},
    {"instance", OPT_STRING, O(instance), false, "instance id (status topic, client id)"},
    {"topic-root", OPT_STRING, O(topic_root), false, "root of every topic"},
    {"allow-http", OPT_BOOL, O(allow_http), false, "accept http:// webhook URLs (tests, demos)"},
    {"allow-net", OPT_LIST, O(allow_net), false, "CIDR the egress guard lets through (repeatable)"},
    {"webhook-cafile", OPT_STRING, O(webhook_cafile), false, "CA bundle for webhook receivers"},
    {"retry-schedule", OPT_SCHEDULE, O(retry_schedule), false, "seconds between attempts: S1,S2,..."},
    {"status-interval", OPT_SECONDS, O(status_interval), false, "seconds between status publishes"},
    {"log-level", OPT_LEVEL, O(log_level), false, "error, warn, info or debug"},
    {"session-expiry", OPT_SECONDS, O(session_expiry), false, "broker session expiry, seconds"},
    {"max-payload", OPT_COUNT, O(max_payload), false, "largest request or escalation, bytes"},
    {"outbox-limit", OPT_COUNT, O(outbox_limit), false, "pending escalations before intake pauses"},
    {"connect-timeout", OPT_SECONDS, O(connect_timeout), false, "webhook connect timeout, seconds"},
    {"request-timeout", OPT_SECONDS, O(request_timeout), false, "whole webhook request, seconds"},
    {"check-config", OPT_BOOL, O(check_config), true, "validate the configuration and exit"},
    {"version", OPT_BOOL, O(version), true, "print the version and exit"},
    {"help", OPT_BOOL, O(help), true, "this text"},
};
#undef O

static const double default_schedule[] = {5, 30, 120, 600, 1800, 3600, 7200, 14400};

void config_usage(FILE *out)
{
  fprintf(out, "usage: hgd [-c FILE] [options]\n\n  -c, --config FILE        config file (default %s)\n",
          CONFIG_DEFAULT_FILE);
  for(size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
    const struct opt *o = &opts[i];
    int w = fprintf(out, "  --%s%s", o->name, o->type == OPT_BOOL ? "" : " VALUE");
    fprintf(out, "%*s%s\n", w < 27 ? 27 - w : 1, "", o->help);
  }
  fputs("\nEvery option but -c, --check-config, --version and --help is also a config-file\n"
        "key, spelled with '_' for '-' (state_dir = /var/lib/hgd).\n",
        out);
}

static int set_string(char **slot, const char *v)
{
  char *s = strdup(v);
  if(!s)
    return -1;
  free(*slot);
  *slot = s;
  return 0;
}

static int parse_bool(const char *v, bool *out)
{
  if(!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
    *out = true;
  else if(!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
    *out = false;
  else
    return -1;
  return 0;
}

static int parse_number(const char *v, double *out)
{
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if(errno || end == v || *end || !isfinite(d) || d < 0)
    return -1;
  *out = d;
  return 0;
}

static int parse_schedule(const char *v, double **out, size_t *n)
{
  double *list = NULL;
  size_t count = 0;
  const char *p = v;
  int rc = -1;

  if(!*v) { /* an empty schedule: one attempt, no retries */
    free(*out);
    *out = NULL;
    *n = 0;
    return 0;
  }
  for(;;) {
    char *end;
    errno = 0;
    double d = strtod(p, &end);
    if(errno || end == p || !isfinite(d) || d < 0 || d > 86400.0 * 7)
      goto out;
    double *grown = realloc(list, (count + 1) * sizeof(*list));
    if(!grown)
      goto out;
    list = grown;
    list[count++] = d;
    if(*end == '\0')
      break;
    if(*end != ',' || count >= 64)
      goto out;
    p = end + 1;
  }
  free(*out);
  *out = list;
  *n = count;
  list = NULL;
  rc = 0;
out:
  free(list);
  return rc;
}

/* Apply one setting; returns 0 or -1 with a reason in err. */
static int apply(struct config *cfg, const struct opt *o, const char *v, char *err, size_t errsz)
{
  void *slot = (char *)cfg + o->off;
  double d;

  switch(o->type) {
  case OPT_STRING:
    if(!*v) {
      snprintf(err, errsz, "%s needs a value", o->name);
      return -1;
    }
    return set_string(slot, v);
  case OPT_BOOL:
    if(parse_bool(v, slot)) {
      snprintf(err, errsz, "%s must be true or false", o->name);
      return -1;
    }
    return 0;
  case OPT_SECONDS:
  case OPT_COUNT:
    if(parse_number(v, &d) || (o->type == OPT_COUNT && (d != floor(d) || d > 1e12))) {
      snprintf(err, errsz, "%s must be a non-negative %s", o->name,
               o->type == OPT_COUNT ? "whole number" : "number of seconds");
      return -1;
    }
    *(double *)slot = d;
    return 0;
  case OPT_LIST: {
    char **grown = realloc(cfg->allow_net, (cfg->nallow_net + 1) * sizeof(char *));
    if(!grown)
      return -1;
    cfg->allow_net = grown;
    if(!(grown[cfg->nallow_net] = strdup(v)))
      return -1;
    cfg->nallow_net++;
    return 0;
  }
  case OPT_SCHEDULE:
    if(parse_schedule(v, &cfg->retry_schedule, &cfg->nretry_schedule)) {
      snprintf(err, errsz, "%s must be seconds separated by commas, e.g. 5,30,120", o->name);
      return -1;
    }
    return 0;
  case OPT_LEVEL:
    if(log_parse_level(v, slot)) {
      snprintf(err, errsz, "%s must be error, warn, info or debug", o->name);
      return -1;
    }
    return 0;
  }
  return -1;
}

static const struct opt *find_opt(const char *name, bool file_key)
{
  for(size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
    const char *a = opts[i].name, *b = name;
    for(; *a && *b; a++, b++) {
      char cb = (file_key && *b == '_') ? '-' : *b;
      if(*a != cb || (file_key && *b == '-'))
        break;
    }
    if(!*a && !*b)
      return file_key && opts[i].cli_only ? NULL : &opts[i];
  }
  return NULL;
}

static char *trim(char *s)
{
  while(*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while(n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

static int load_file(struct config *cfg, const char *path, bool must_exist)
{
  FILE *f = fopen(path, "r");
  char line[4096];
  unsigned lineno = 0;
  int rc = 0;

  if(!f) {
    if(!must_exist && errno == ENOENT)
      return 0;
    fprintf(stderr, "hgd: cannot read config file %s: %s\n", path, strerror(errno));
    return -1;
  }
  set_string(&cfg->config_file, path);
  while(fgets(line, sizeof(line), f)) {
    char err[256];
    lineno++;
    if(!strchr(line, '\n') && !feof(f)) {
      fprintf(stderr, "hgd: %s:%u: line too long\n", path, lineno);
      rc = -1;
      break;
    }
    char *hash = strchr(line, '#');
    if(hash)
      *hash = '\0';
    char *s = trim(line);
    if(!*s)
      continue;
    char *eq = strchr(s, '=');
    if(!eq) {
      fprintf(stderr, "hgd: %s:%u: expected 'key = value'\n", path, lineno);
      rc = -1;
      continue;
    }
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    const struct opt *o = find_opt(key, true);
    if(!o) {
      fprintf(stderr, "hgd: %s:%u: unknown key '%s'\n", path, lineno, key);
      rc = -1;
      continue;
    }
    if(apply(cfg, o, val, err, sizeof(err))) {
      fprintf(stderr, "hgd: %s:%u: %s\n", path, lineno, err);
      rc = -1;
    }
  }
  fclose(f);
  return rc;
}

static int set_defaults(struct config *cfg)
{
  char host[256];

  memset(cfg, 0, sizeof(*cfg));
  if(gethostname(host, sizeof(host)) != 0 || !host[0])
    strcpy(host, "hgd");
  host[sizeof(host) - 1] = '\0';
  cfg->retry_schedule = malloc(sizeof(default_schedule));
  if(!cfg->retry_schedule)
    return -1;
  memcpy(cfg->retry_schedule, default_schedule, sizeof(default_schedule));
  cfg->nretry_schedule = sizeof(default_schedule) / sizeof(default_schedule[0]);
  cfg->status_interval = 10;
  cfg->log_level = LOG_LVL_INFO;
  cfg->session_expiry = 86400;
  cfg->max_payload = 64 * 1024;
  cfg->outbox_limit = 1000000;
  cfg->connect_timeout = 5;
  cfg->request_timeout = 15;
  if(set_string(&cfg->broker, "mqtt://localhost:1883") || set_string(&cfg->state_dir, "/var/lib/hgd") ||
     set_string(&cfg->keys, "/etc/hgd/keys.json") || set_string(&cfg->instance, host) ||
     set_string(&cfg->topic_root, "hg/v1"))
    return -1;
  return 0;
}

static bool topic_text_ok(const char *t)
{
  if(!jsonutil_utf8_valid(t, strlen(t)))
    return false;
  for(const unsigned char *p = (const unsigned char *)t; *p; p++)
    if(*p < 0x20 || *p == 0x7f)
      return false;
  return true;
}

/* Checks that span settings, once everything is read. */
static int check(const struct config *cfg)
{
  int rc = 0;
  const char *b = cfg->broker;

  if(strncmp(b, "mqtt://", 7) && strncmp(b, "mqtts://", 8) && strncmp(b, "tcp://", 6) &&
     strncmp(b, "ssl://", 6)) {
    fprintf(stderr, "hgd: broker must be mqtt://host:port or mqtts://host:port, not '%s'\n", b);
    rc = -1;
  }
  const char *r = cfg->topic_root;
  if(!*r || strpbrk(r, "+#") || r[0] == '/' || r[strlen(r) - 1] == '/') {
    fprintf(stderr, "hgd: topic-root '%s' must be non-empty, without wildcards or outer '/'\n", r);
    rc = -1;
  }
  if(strpbrk(cfg->instance, "+#/") || strlen(cfg->instance) > 128) {
    fprintf(stderr, "hgd: instance '%s' must be at most 128 bytes, without '+', '#' or '/'\n",
            cfg->instance);
    rc = -1;
  }
  /* Both go into topic names (and the instance into the client id): the
   * broker drops a connection whose topics are not UTF-8 or hold control
   * characters, and hgd would retry for ever; a '$' root is the broker's. */
  if(!topic_text_ok(r) || r[0] == '$') {
    fprintf(stderr, "hgd: topic-root must be UTF-8 without control characters and not start "
                    "with '$'\n");
    rc = -1;
  }
  if(!*cfg->instance || !topic_text_ok(cfg->instance)) {
    fprintf(stderr, "hgd: instance must be non-empty UTF-8 without control characters\n");
    rc = -1;
  }
  if(cfg->status_interval < 0.1) {
    fprintf(stderr, "hgd: status-interval must be at least 0.1 s\n");
    rc = -1;
  }
  if(cfg->max_payload < 1024 || cfg->max_payload > 16 * 1024 * 1024) {
    fprintf(stderr, "hgd: max-payload must be between 1024 and 16777216 bytes\n");
    rc = -1;
  }
  if(cfg->connect_timeout <= 0 || cfg->request_timeout <= 0) {
    fprintf(stderr, "hgd: connect-timeout and request-timeout must be positive\n");
    rc = -1;
  }
  /* A mistyped path would otherwise show up only as a TLS failure later. */
  const struct {
    const char *name, *path;
  } files[] = {{"cafile", cfg->cafile},
               {"cert", cfg->cert},
               {"key", cfg->key},
               {"webhook-cafile", cfg->webhook_cafile}};
  for(size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if(files[i].path && access(files[i].path, R_OK) != 0) {
      fprintf(stderr, "hgd: %s %s: %s\n", files[i].name, files[i].path, strerror(errno));
      rc = -1;
    }
  }
  return rc;
}

int config_load(struct config *cfg, int argc, char **argv)
{
  const char *file = NULL;
  int rc = 0;

  if(set_defaults(cfg))
    return -1;
  for(int i = 1; i < argc; i++) {
    if(!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
      if(i + 1 >= argc) {
        fprintf(stderr, "hgd: %s needs a file name\n", argv[i]);
        return -1;
      }
      file = argv[++i];
    }
  }
  if(load_file(cfg, file ? file : CONFIG_DEFAULT_FILE, file != NULL))
    rc = -1;

  for(int i = 1; i < argc; i++) {
    char err[256];
    const char *a = argv[i];
    if(!strcmp(a, "-c") || !strcmp(a, "--config")) {
      i++;
      continue;
    }
    if(!strcmp(a, "-h")) {
      cfg->help = true;
      continue;
    }
    if(strncmp(a, "--", 2)) {
      fprintf(stderr, "hgd: unexpected argument '%s' (see --help)\n", a);
      rc = -1;
      continue;
    }
    char name[64];
    const char *eq = strchr(a + 2, '=');
    size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
    if(n >= sizeof(name)) {
      fprintf(stderr, "hgd: unknown option '%s' (see --help)\n", a);
      rc = -1;
      continue;
    }
    memcpy(name, a + 2, n);
    name[n] = '\0';
    const struct opt *o = find_opt(name, false);
    if(!o) {
      fprintf(stderr, "hgd: unknown option '--%s' (see --help)\n", name);
      rc = -1;
      continue;
    }
    const char *v = eq ? eq + 1 : NULL;
    if(!v && o->type == OPT_BOOL)
      v = "true";
    if(!v) {
      if(i + 1 >= argc) {
        fprintf(stderr, "hgd: --%s needs a value\n", name);
        rc = -1;
        continue;
      }
      v = argv[++i];
    }
    if(apply(cfg, o, v, err, sizeof(err))) {
      fprintf(stderr, "hgd: --%s\n", err);
      rc = -1;
    }
  }
  if(rc == 0 && !cfg->help && !cfg->version)
    rc = check(cfg);
  return rc;
}

void config_free(struct config *cfg)
{
  char **strings[] = {&cfg->config_file, &cfg->broker, &cfg->username, &cfg->password,
                      &cfg->cafile, &cfg->cert, &cfg->key, &cfg->state_dir, &cfg->keys,
                      &cfg->instance, &cfg->topic_root, &cfg->webhook_cafile};
  for(size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
    if(*strings[i] == cfg->password && cfg->password)
      memset(cfg->password, 0, strlen(cfg->password));
    free(*strings[i]);
  }
  for(size_t i = 0; i < cfg->nallow_net; i++)
    free(cfg->allow_net[i]);
  free(cfg->allow_net);
  free(cfg->retry_schedule);
  memset(cfg, 0, sizeof(*cfg));
}
