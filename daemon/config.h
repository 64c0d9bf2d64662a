/* config.h — hgd's settings: defaults, then the config file, then flags.
 *
 * Every setting has one name, used as the long flag (--state-dir) and as the
 * config-file key with '-' spelled '_' (state_dir = /var/lib/hgd). The file
 * is `key = value` lines, '#' starts a comment, unknown keys are errors that
 * name the line. */
#ifndef HG_CONFIG_H
#define HG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_DEFAULT_FILE "/etc/hgd/hgd.conf"

struct config {
  char *config_file; /* the file read, or NULL */
  char *broker;
  char *username;
  char *password;
  char *cafile;
  char *cert;
  char *key;
  char *state_dir;
  char *keys;
  char *instance;
  char *topic_root;
  bool allow_http;
  char **allow_net;
  size_t nallow_net;
  char *webhook_cafile;
  double *retry_schedule;
  size_t nretry_schedule;
  double status_interval;
  enum log_level log_level;
  double session_expiry;  /* seconds */
  double max_payload;     /* bytes of a request or escalation */
  double outbox_limit;    /* pending escalations before intake pauses */
  double connect_timeout; /* webhook connect timeout, seconds */
  double request_timeout; /* whole webhook request, seconds */
  bool check_config;
  bool version;
  bool help;
};

/* Fill cfg from defaults, the file named by -c (or the default file when it
 * exists) and argv. Returns 0, or -1 after printing line-numbered messages to
 * stderr. */
int config_load(struct config *cfg, int argc, char **argv);

void config_free(struct config *cfg);

void config_usage(FILE *out);

#endif
