/* webhook.h — the webhook row of PROTOCOL.md section 3 and its validation.
 *
 * A row is one Genie's only webhook. The secret is held here in clear (the
 * store file is 0600) and never printed by webhook_to_json unless asked for
 * the on-disk form. */
#ifndef HG_WEBHOOK_H
#define HG_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "uuid.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_SECRET_MAX 1024
#define WEBHOOK_HEADER_MAX 64
#define WEBHOOK_FIELDS_MAX 64
#define WEBHOOK_FIELD_KEY_MAX 64
#define WEBHOOK_HINT_MAX 1024
#define WEBHOOK_DEFAULT_HEADER "X-HelpGenie-Signature"
#define WEBHOOK_MASK "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"

struct webhook_field {
  char *key;
  char *hint; /* NULL when none */
  bool sign;  /* useForSignature */
};

struct webhook {
  char id[UUID_STR_LEN + 1];
  char agent_id[UUID_STR_LEN + 1]; /* lowercase */
  char *url;
  char *secret;        /* NULL when unsigned */
  char *secret_header; /* never NULL once valid */
  struct webhook_field *fields;
  size_t nfields;
  bool is_active;
  int64_t created_ms;
  int64_t updated_ms;
};

/* Validate the parameters of an upsert request (the whole payload object,
 * "agentId" included) and fill *out with a new row (id, timestamps left zero
 * for the caller to set). Unknown parameters are refused. On failure returns
 * -1, *out is left empty, and err names the parameter, e.g.
 * "url must be an https URL". allow_http admits http:// URLs. */
int webhook_from_request(const cJSON *params, bool allow_http, struct webhook *out, char *err,
                         size_t errsz);

/* Validators usable on their own (return 0 or -1 with err set). A URL must
 * also be ASCII (non-ASCII percent-encoded), its host a name of
 * [A-Za-z0-9._-], an IPv4 address or a bracketed IPv6 literal, its port (if
 * any) 1..65535. */
int webhook_check_url(const char *url, bool allow_http, char *err, size_t errsz);
int webhook_check_header(const char *name, char *err, size_t errsz);

/* JSON of the row. with_secret: the on-disk form (secret in clear);
 * otherwise the wire form (secret masked as eight U+2022, or null). */
cJSON *webhook_to_json(const struct webhook *w, bool with_secret);

/* Read back the on-disk form. Returns 0 or -1 with err set. Refuses the wire
 * form (a masked secret). http:// URLs are admitted here: whether to deliver
 * to one is decided at delivery time. Unknown members are ignored. */
int webhook_from_json(const cJSON *j, struct webhook *out, char *err, size_t errsz);

/* Deep copy. Returns 0 or -1 (out of memory). */
int webhook_copy(struct webhook *dst, const struct webhook *src);

/* Release what the row owns, wiping the secret; the struct is zeroed. */
void webhook_clear(struct webhook *w);

/* The retained fields document of section 5: {"fields":[{"key","hint"}…]}. */
cJSON *webhook_fields_json(const struct webhook *w);

#endif
