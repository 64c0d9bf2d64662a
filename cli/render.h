/* render.h — everything hgctl prints: results on stdout (readable on a
 * terminal, compact JSON otherwise) and errors on stderr as
 * "hgctl: CODE: message". Text that came from the network is shown with its
 * control characters escaped, so a webhook receiver cannot drive the
 * operator's terminal. */
#ifndef HGCTL_RENDER_H
#define HGCTL_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "options.h"

struct render {
  FILE *out;
  bool json; /* --json, or stdout is not a terminal */
};

/* json_flag: --json was given (or json = true). */
void render_init(struct render *r, bool json_flag);

/* "hgctl: CODE: message" on stderr. */
void render_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "hgctl: USAGE: message" and a hint line naming `hgctl [topic] --help`
 * (topic NULL: the overview). Returns HGCTL_EUSAGE. */
int render_usage(const char *topic, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reply's data for cmd (NULL means JSON null). Returns an hgctl_rc. */
int render_data(const struct render *r, enum options_cmd cmd, const cJSON *data);

/* One status document as it arrives (status --watch). */
int render_status_doc(const struct render *r, const char *topic, const cJSON *doc);

/* The snapshot of status: docs is an array of documents; filter names the
 * subscription, for the message shown when there are none. */
int render_status(const struct render *r, const cJSON *docs, const char *filter);

/* The escalation that was published. */
int render_escalated(const struct render *r, const char *event_id, const char *topic);

/* A new key entry for keys.json: always one line of JSON on stdout. */
int render_keygen(const struct render *r, const cJSON *entry);

/* Flush stdout and report a failed write. Returns an hgctl_rc. */
int render_finish(const struct render *r);

#endif
