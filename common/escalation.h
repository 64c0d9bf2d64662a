/* escalation.h — the escalation message of PROTOCOL.md section 5. */
#ifndef HG_ESCALATION_H
#define HG_ESCALATION_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "uuid.h"

#define ESCALATION_MAX_BYTES (64 * 1024)

/* The validated message. Strings are NULL when absent; fields is a cJSON
 * object (owned) or NULL. */
struct escalation {
  char event_id[UUID_STR_LEN + 1]; /* "" when the call node gave none */
  char *caller_number;
  char *call_sid;
  char *reason;
  char *summary;
  char *agent_session_id;
  cJSON *fields;
};

/* Parse and validate a raw payload (len bytes, need not be NUL-terminated).
 * Refuses a non-object, a wrong type, an eventId that is not a UUID, a
 * repeated named property, invalid JSON (jsonutil_parse limits) and an
 * oversize payload (over maxlen; 0 means ESCALATION_MAX_BYTES). A JSON null
 * counts as absent. Unknown top-level properties are ignored (forward
 * compatibility for call nodes). eventId is stored lowercase. Returns 0, or
 * -1 with err (and *out empty). */
int escalation_parse(const void *buf, size_t len, size_t maxlen, struct escalation *out,
                     char *err, size_t errsz);

/* JSON form (only present members), as kept in the outbox. */
cJSON *escalation_to_json(const struct escalation *e);

/* Read back the form above (trusted input). Returns 0 or -1. */
int escalation_from_json(const cJSON *j, struct escalation *out);

void escalation_clear(struct escalation *e);

#endif
