/* cliconfig.h — hgctl's settings and where they come from.
 *
 * A setting has the same name everywhere: the long option without dashes is
 * the config file key ("key-id = ops") and, upper-cased with '-' as '_'
 * behind "HGCTL_", the environment variable (HGCTL_KEY_ID). Each source
 * fills its own struct cliconfig; cliconfig_merge() lays them over each other
 * (command line over environment over file) and cliconfig_finish() applies
 * defaults and checks what a command needs. */
#ifndef HGCTL_CLICONFIG_H
#define HGCTL_CLICONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CLICONFIG_DEFAULT_HOST "localhost"
#define CLICONFIG_DEFAULT_PORT 1883
#define CLICONFIG_DEFAULT_TLS_PORT 8883
#define CLICONFIG_DEFAULT_TIMEOUT 10.0
#define CLICONFIG_MAX_TIMEOUT 86400.0
#define CLICONFIG_DEFAULT_ROOT "hg/v1"
#define CLICONFIG_SECRET_MAX 4096 /* the most read from a secret file */

/* Every string is malloc'd and owned; NULL (or 0, or -1 for json) means
 * "not set by this source". */
struct cliconfig {
  char *host;
  int port; /* 0 = unset */
  char *username;
  char *password;
  char *cafile;
  char *cert;
  char *key; /* TLS private key file */
  char *client_id;
  char *key_id;
  char *key_secret; /* key_secret and key_file are one setting: the   */
  char *key_file;   /* source that names either decides both          */
  double timeout;   /* seconds; 0 = unset */
  int json;         /* -1 unset, else 0 or 1 */
  char *topic_root;
};

/* Which source a setting came from, for messages that name it. */
enum cliconfig_origin { CLICONFIG_ARGV, CLICONFIG_ENV, CLICONFIG_FILE };

void cliconfig_init(struct cliconfig *c);

/* Release everything, wiping the secrets. */
void cliconfig_clear(struct cliconfig *c);

/* Set the setting `name` (a long option name without dashes) from text.
 * value is NULL only for the "json" flag on the command line. Returns 0,
 * 1 when name is not a setting, or -1 with err set for a bad value: a
 * phrase like "must not be empty" that the caller puts behind the name as the
 * user wrote it (--port, HGCTL_PORT, port). err never holds the value. */
int cliconfig_set(struct cliconfig *c, const char *name, const char *value,
                  enum cliconfig_origin origin, char *err, size_t errsz);

/* True when name is a setting whose value is a secret (never echoed). */
bool cliconfig_is_secret(const char *name);

/* Fill c from the HGCTL_* environment; empty variables count as unset.
 * Returns 0, or -1 with err set. */
int cliconfig_from_env(struct cliconfig *c, char *err, size_t errsz);

/* The config file path: $HGCTL_CONFIG if set (empty: no file), else
 * $XDG_CONFIG_HOME/hgctl/config, else ~/.config/hgctl/config. Returns a
 * malloc'd path, or NULL when there is none to read; *named tells whether
 * HGCTL_CONFIG named it. */
char *cliconfig_path(bool *named);

/* Read `key = value` lines from path ('#' comments, blank lines). A file that
 * does not exist is no error, unless it was named (HGCTL_CONFIG). Returns 0, or -1 with err set naming the file
 * and line (never a value). Warns on stderr when a file that others may read
 * holds a secret. */
int cliconfig_from_file(struct cliconfig *c, const char *path, bool named, char *err,
                        size_t errsz);

/* For each setting that dst lacks, take it (moved) from src. */
void cliconfig_merge(struct cliconfig *dst, struct cliconfig *src);

/* Apply defaults (host, port by TLS, timeout, root) and check combinations.
 * need_key: the command signs (load key_file into key_secret, and require a
 * key id and secret). Returns 0, or -1 with err set. */
int cliconfig_finish(struct cliconfig *c, bool need_key, char *err, size_t errsz);

/* True when hgctl should speak TLS (a CA file or a client certificate). */
bool cliconfig_tls(const struct cliconfig *c);

/* Read a secret from a file ("-" is standard input), at most
 * CLICONFIG_SECRET_MAX bytes, trailing CR/LF stripped, not empty. A path that
 * gives nothing to read within timeout seconds (a FIFO nobody writes) is an
 * error, so that --timeout bounds the run. Returns a malloc'd string (free
 * with crypto_free_secret), or NULL with err set. */
char *cliconfig_read_secret(const char *path, double timeout, char *err, size_t errsz);

#endif
