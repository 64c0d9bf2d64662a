/* options.h — hgctl's command line: the command, its arguments, and the
 * global options (which land in a struct cliconfig of their own so that they
 * can be laid over the environment and the config file). */
#ifndef HGCTL_OPTIONS_H
#define HGCTL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cliconfig.h"
#include "uuid.h"

enum options_cmd {
  OPTIONS_CMD_NONE,
  OPTIONS_CMD_HELP, /* --help, or `hgctl help [command]` */
  OPTIONS_CMD_VERSION,
  OPTIONS_CMD_WEBHOOK, /* only as a help topic: `hgctl webhook --help` */
  OPTIONS_CMD_WEBHOOK_GET,
  OPTIONS_CMD_WEBHOOK_SET,
  OPTIONS_CMD_WEBHOOK_DELETE,
  OPTIONS_CMD_WEBHOOK_TEST,
  OPTIONS_CMD_ESCALATE,
  OPTIONS_CMD_STATUS,
  OPTIONS_CMD_KEYGEN
};

/* --field / --sign-field of `webhook set` (value is the hint, NULL when
 * none), or --field / --field-json of `escalate` (value is the text, or JSON
 * text when json). In command-line order. */
struct options_field {
  char *key;
  char *value;
  bool sign;
  bool json;
};

struct options {
  enum options_cmd cmd;
  enum options_cmd help_topic;     /* what OPTIONS_CMD_HELP explains (NONE: all) */
  struct cliconfig cfg;            /* the global options given on the command line */
  char agent_id[UUID_STR_LEN + 1]; /* lowercased */

  /* webhook set */
  char *url;
  char *secret; /* wiped on clear */
  char *secret_file;
  char *secret_header;
  bool inactive;

  /* webhook set and escalate */
  struct options_field *fields;
  size_t nfields;

  /* escalate */
  char *reason;
  char *summary;
  char *caller;
  char *call_sid;
  char *session;
  char event_id[UUID_STR_LEN + 1]; /* "" when not given */

  /* status */
  bool watch;

  /* keygen */
  char *keygen_id;
  char **agents;
  size_t nagents;
  char **actions;
  size_t nactions;
};

/* Parse argv into o. Values of secret options are copied and then blanked
 * in argv, so that ps shows less. Returns HGCTL_OK, or HGCTL_EUSAGE after
 * printing the error and a hint to --help. */
int options_parse(int argc, char **argv, struct options *o);

void options_clear(struct options *o);

/* The help text of a command (OPTIONS_CMD_NONE: the overview). */
void options_help(FILE *f, enum options_cmd topic);

/* True when the command needs a signing key. */
bool options_cmd_signs(enum options_cmd cmd);

/* True when the command talks to the broker. */
bool options_cmd_connects(enum options_cmd cmd);

#endif
