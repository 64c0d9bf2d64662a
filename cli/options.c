/* options.c — hgctl's command line (options.h) and its help texts.
 *
 * The grammar is `hgctl [global options] <command> [arguments and options]`.
 * Global options may also follow the command (`hgctl webhook get ID --json`);
 * where a command has an option of the same name (`keygen --id`), the
 * command's own wins after the command word. */
#include "options.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hgctl.h"
#include "jsonutil.h"
#include "render.h"

enum opt_id {
  /* global */
  O_HELP = 1,
  O_VERSION,
  O_SETTING, /* any cliconfig setting: the long name is the setting name */
  /* webhook set */
  O_URL,
  O_SECRET,
  O_SECRET_FILE,
  O_SECRET_HEADER,
  O_FIELD_HINT,
  O_SIGN_FIELD,
  O_INACTIVE,
  /* escalate */
  O_REASON,
  O_SUMMARY,
  O_CALLER,
  O_CALL_SID,
  O_SESSION,
  O_EVENT_ID,
  O_FIELD_VALUE,
  O_FIELD_JSON,
  /* status */
  O_WATCH,
  /* keygen */
  O_KEYGEN_ID,
  O_AGENT,
  O_ACTION
};

struct opt_spec {
  const char *name; /* long name without dashes */
  char short_name;  /* 0: none */
  bool has_arg;
  enum opt_id id;
  enum options_cmd cmd; /* OPTIONS_CMD_NONE: global */
  bool secret;          /* value is never echoed and is blanked in argv */
};

static const struct opt_spec specs[] = {
    /* Command options come first: after the command word they win. */
    {"url", 0, true, O_URL, OPTIONS_CMD_WEBHOOK_SET, false},
    {"secret", 0, true, O_SECRET, OPTIONS_CMD_WEBHOOK_SET, true},
    {"secret-file", 0, true, O_SECRET_FILE, OPTIONS_CMD_WEBHOOK_SET, false},
    {"secret-header", 0, true, O_SECRET_HEADER, OPTIONS_CMD_WEBHOOK_SET, false},
    {"field", 0, true, O_FIELD_HINT, OPTIONS_CMD_WEBHOOK_SET, false},
    {"sign-field", 0, true, O_SIGN_FIELD, OPTIONS_CMD_WEBHOOK_SET, false},
    {"inactive", 0, false, O_INACTIVE, OPTIONS_CMD_WEBHOOK_SET, false},
    {"reason", 0, true, O_REASON, OPTIONS_CMD_ESCALATE, false},
    {"summary", 0, true, O_SUMMARY, OPTIONS_CMD_ESCALATE, false},
    {"caller", 0, true, O_CALLER, OPTIONS_CMD_ESCALATE, false},
    {"call-sid", 0, true, O_CALL_SID, OPTIONS_CMD_ESCALATE, false},
    {"session", 0, true, O_SESSION, OPTIONS_CMD_ESCALATE, false},
    {"event-id", 0, true, O_EVENT_ID, OPTIONS_CMD_ESCALATE, false},
    {"field", 0, true, O_FIELD_VALUE, OPTIONS_CMD_ESCALATE, false},
    {"field-json", 0, true, O_FIELD_JSON, OPTIONS_CMD_ESCALATE, false},
    {"watch", 0, false, O_WATCH, OPTIONS_CMD_STATUS, false},
    {"id", 0, true, O_KEYGEN_ID, OPTIONS_CMD_KEYGEN, false},
    {"agent", 0, true, O_AGENT, OPTIONS_CMD_KEYGEN, false},
    {"action", 0, true, O_ACTION, OPTIONS_CMD_KEYGEN, false},
    /* Global options, mosquitto_pub's letters where they overlap. */
    {"help", 0, false, O_HELP, OPTIONS_CMD_NONE, false},
    {"version", 0, false, O_VERSION, OPTIONS_CMD_NONE, false},
    {"host", 'h', true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"port", 'p', true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"username", 'u', true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"password", 'P', true, O_SETTING, OPTIONS_CMD_NONE, true},
    {"cafile", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"cert", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"key", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"id", 'i', true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"key-id", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"key-secret", 0, true, O_SETTING, OPTIONS_CMD_NONE, true},
    {"key-file", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"timeout", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
    {"json", 0, false, O_SETTING, OPTIONS_CMD_NONE, false},
    {"topic-root", 0, true, O_SETTING, OPTIONS_CMD_NONE, false},
};

static const char *const keygen_actions[] = {"get", "upsert", "delete", "test", "escalate"};

static const struct {
  const char *word;
  enum options_cmd cmd;
} webhook_subs[] = {
    {"get", OPTIONS_CMD_WEBHOOK_GET},
    {"set", OPTIONS_CMD_WEBHOOK_SET},
    {"delete", OPTIONS_CMD_WEBHOOK_DELETE},
    {"test", OPTIONS_CMD_WEBHOOK_TEST},
};

/* The words of the command, for messages and the help hint. */
static const char *cmd_name(enum options_cmd cmd)
{
  switch (cmd) {
  case OPTIONS_CMD_WEBHOOK:
    return "webhook";
  case OPTIONS_CMD_WEBHOOK_GET:
    return "webhook get";
  case OPTIONS_CMD_WEBHOOK_SET:
    return "webhook set";
  case OPTIONS_CMD_WEBHOOK_DELETE:
    return "webhook delete";
  case OPTIONS_CMD_WEBHOOK_TEST:
    return "webhook test";
  case OPTIONS_CMD_ESCALATE:
    return "escalate";
  case OPTIONS_CMD_STATUS:
    return "status";
  case OPTIONS_CMD_KEYGEN:
    return "keygen";
  default:
    return NULL;
  }
}

bool options_cmd_signs(enum options_cmd cmd)
{
  return cmd == OPTIONS_CMD_WEBHOOK_GET || cmd == OPTIONS_CMD_WEBHOOK_SET ||
         cmd == OPTIONS_CMD_WEBHOOK_DELETE || cmd == OPTIONS_CMD_WEBHOOK_TEST ||
         cmd == OPTIONS_CMD_ESCALATE;
}

bool options_cmd_connects(enum options_cmd cmd)
{
  return options_cmd_signs(cmd) || cmd == OPTIONS_CMD_STATUS;
}

static bool takes_agent(enum options_cmd cmd)
{
  return options_cmd_signs(cmd);
}

/* A word safe to repeat in a message: a command or option name, never a
 * value that might be a secret typed in the wrong place. */
static bool echoable(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 32)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || s[i] == '-'))
      return false;
  return true;
}

static void wipe_arg(char *s)
{
  /* ps reads the argument strings from our memory: overwrite them. */
  for (; *s; s++)
    *s = 'x';
}

static const struct opt_spec *find_long(const char *name, size_t len, enum options_cmd cmd)
{
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
    const struct opt_spec *s = &specs[i];
    if (s->cmd != OPTIONS_CMD_NONE && s->cmd != cmd)
      continue;
    if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
      return s;
  }
  return NULL;
}

static const struct opt_spec *find_short(char c)
{
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
    if (specs[i].short_name == c && specs[i].cmd == OPTIONS_CMD_NONE)
      return &specs[i];
  return NULL;
}

static int add_field(struct options *o, const char *arg, bool sign, bool json, bool need_value,
                     const char *optname)
{
  const char *hint = cmd_name(o->cmd);
  const char *eq = strchr(arg, '=');
  size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
  struct options_field *nf;
  if (klen == 0)
    return render_usage(hint, "--%s needs a KEY before '='", optname);
  if (need_value && !eq)
    return render_usage(hint, "--%s takes KEY=VALUE", optname);
  for (size_t i = 0; i < o->nfields && o->cmd == OPTIONS_CMD_ESCALATE; i++)
    if (strlen(o->fields[i].key) == klen && strncmp(o->fields[i].key, arg, klen) == 0)
      return render_usage(hint, "field '%.*s' is given twice", (int)klen, arg);
  nf = realloc(o->fields, (o->nfields + 1) * sizeof(*nf));
  if (!nf)
    goto oom;
  o->fields = nf;
  nf = &o->fields[o->nfields];
  memset(nf, 0, sizeof(*nf));
  nf->key = strndup(arg, klen);
  nf->value = eq ? strdup(eq + 1) : NULL;
  nf->sign = sign;
  nf->json = json;
  o->nfields++;
  if (!nf->key || (eq && !nf->value))
    goto oom;
  if (json) {
    char err[128];
    cJSON *v = jsonutil_parse(nf->value, strlen(nf->value), 65536, err, sizeof(err));
    if (!v)
      return render_usage(hint, "--field-json %s: the value is not JSON (%s)", nf->key, err);
    cJSON_Delete(v);
  }
  return HGCTL_OK;
oom:
  render_error(HGCTL_CODE_INTERNAL, "out of memory");
  return HGCTL_EUSAGE;
}

static int add_str(char ***arr, size_t *n, const char *v)
{
  char **na = realloc(*arr, (*n + 1) * sizeof(*na));
  if (!na)
    return -1;
  *arr = na;
  if (!(na[*n] = strdup(v)))
    return -1;
  (*n)++;
  return 0;
}

static int set_once(char **slot, const char *v, const char *optname, enum options_cmd cmd)
{
  if (*slot)
    return render_usage(cmd_name(cmd), "--%s is given twice", optname);
  if (!(*slot = strdup(v))) {
    render_error(HGCTL_CODE_INTERNAL, "out of memory");
    return HGCTL_EUSAGE;
  }
  return HGCTL_OK;
}

/* Apply one option with its value (NULL for a flag). */
static int apply(struct options *o, const struct opt_spec *s, const char *v)
{
  const char *hint = cmd_name(o->cmd);
  char err[256];
  switch (s->id) {
  case O_HELP:
    o->help_topic = o->cmd;
    o->cmd = OPTIONS_CMD_HELP;
    return HGCTL_OK;
  case O_VERSION:
    o->cmd = OPTIONS_CMD_VERSION;
    return HGCTL_OK;
  case O_SETTING: {
    int r = cliconfig_set(&o->cfg, s->name, v, CLICONFIG_ARGV, err, sizeof(err));
    if (r != 0)
      return render_usage(hint, "--%s %s", s->name, err);
    return HGCTL_OK;
  }
  case O_URL:
    return set_once(&o->url, v, s->name, o->cmd);
  case O_SECRET:
    if (*v == '\0')
      return render_usage(hint, "--secret must not be empty (omit it for unsigned deliveries)");
    if (o->secret)
      return render_usage(hint, "--secret is given twice");
    if (!(o->secret = strdup(v))) {
      render_error(HGCTL_CODE_INTERNAL, "out of memory");
      return HGCTL_EUSAGE;
    }
    return HGCTL_OK;
  case O_SECRET_FILE:
    return set_once(&o->secret_file, v, s->name, o->cmd);
  case O_SECRET_HEADER:
    return set_once(&o->secret_header, v, s->name, o->cmd);
  case O_FIELD_HINT:
    return add_field(o, v, false, false, false, s->name);
  case O_SIGN_FIELD:
    return add_field(o, v, true, false, false, s->name);
  case O_INACTIVE:
    o->inactive = true;
    return HGCTL_OK;
  case O_REASON:
    return set_once(&o->reason, v, s->name, o->cmd);
  case O_SUMMARY:
    return set_once(&o->summary, v, s->name, o->cmd);
  case O_CALLER:
    return set_once(&o->caller, v, s->name, o->cmd);
  case O_CALL_SID:
    return set_once(&o->call_sid, v, s->name, o->cmd);
  case O_SESSION:
    return set_once(&o->session, v, s->name, o->cmd);
  case O_EVENT_ID:
    if (!uuid_valid(v))
      return render_usage(hint, "--event-id must be a UUID (8-4-4-4-12 hex digits)");
    uuid_lower(v, o->event_id);
    return HGCTL_OK;
  case O_FIELD_VALUE:
    return add_field(o, v, false, false, true, s->name);
  case O_FIELD_JSON:
    return add_field(o, v, false, true, true, s->name);
  case O_WATCH:
    o->watch = true;
    return HGCTL_OK;
  case O_KEYGEN_ID:
    if (*v == '\0' || strlen(v) > 128)
      return render_usage(hint, "--id must be 1 to 128 characters");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
      if (*p < 0x20 || *p == 0x7f)
        return render_usage(hint, "--id must not hold control characters");
    return set_once(&o->keygen_id, v, s->name, o->cmd);
  case O_AGENT: {
    char low[UUID_STR_LEN + 1];
    if (strcmp(v, "*") != 0 && !uuid_valid(v))
      return render_usage(hint, "--agent must be a Genie UUID or '*'");
    if (strcmp(v, "*") != 0)
      uuid_lower(v, low);
    if (add_str(&o->agents, &o->nagents, strcmp(v, "*") == 0 ? "*" : low) < 0) {
      render_error(HGCTL_CODE_INTERNAL, "out of memory");
      return HGCTL_EUSAGE;
    }
    return HGCTL_OK;
  }
  case O_ACTION: {
    bool known = false;
    for (size_t i = 0; i < sizeof(keygen_actions) / sizeof(keygen_actions[0]); i++)
      known = known || strcmp(v, keygen_actions[i]) == 0;
    if (!known)
      return render_usage(hint, "--action must be one of get, upsert, delete, test, escalate");
    if (add_str(&o->actions, &o->nactions, v) < 0) {
      render_error(HGCTL_CODE_INTERNAL, "out of memory");
      return HGCTL_EUSAGE;
    }
    return HGCTL_OK;
  }
  }
  return HGCTL_OK;
}

/* One option word at argv[*i]; may consume argv[*i + 1] as its value. */
static int parse_option(struct options *o, int argc, char **argv, int *i)
{
  char *a = argv[*i];
  const char *hint = cmd_name(o->cmd);
  const struct opt_spec *s;
  char *value = NULL;
  char shown[40];

  if (a[1] == '-') {
    const char *name = a + 2;
    char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    s = find_long(name, len, o->cmd);
    snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 30 ? len : 30), name);
    if (!s)
      return render_usage(hint, "unknown option %s", shown);
    if (eq) {
      if (!s->has_arg)
        return render_usage(hint, "%s takes no value", shown);
      value = eq + 1;
    }
  } else {
    s = find_short(a[1]);
    snprintf(shown, sizeof(shown), "-%c", isprint((unsigned char)a[1]) ? a[1] : '?');
    if (!s) {
      if (a[1] == '?')
        return render_usage(NULL, "-? is not an option; help is --help");
      return render_usage(hint, "unknown option %s", shown);
    }
    if (a[2] != '\0') {
      if (!s->has_arg)
        return render_usage(hint, "%s takes no value", shown);
      value = a + 2; /* -p1883, as mosquitto_pub does not, but getopt does */
    }
  }
  if (s->has_arg && !value) {
    if (*i + 1 >= argc) {
      if (s->short_name == 'h')
        return render_usage(NULL, "-h needs a host name (help is --help)");
      return render_usage(hint, "%s needs a value", shown);
    }
    value = argv[++*i];
  }
  int rc = apply(o, s, value);
  if (s->secret && value)
    wipe_arg(value);
  return rc;
}

/* A word that is not an option: the command, the webhook subcommand, the
 * agentId, or (after `help`) a help topic. */
static int parse_word(struct options *o, const char *w, bool *help_cmd, bool *have_agent)
{
  const char *hint = cmd_name(o->cmd);
  if (*help_cmd) {
    /* `hgctl help webhook set`: walk the topic like a command. */
    if (o->help_topic == OPTIONS_CMD_NONE) {
      if (strcmp(w, "webhook") == 0)
        o->help_topic = OPTIONS_CMD_WEBHOOK;
      else if (strcmp(w, "escalate") == 0)
        o->help_topic = OPTIONS_CMD_ESCALATE;
      else if (strcmp(w, "status") == 0)
        o->help_topic = OPTIONS_CMD_STATUS;
      else if (strcmp(w, "keygen") == 0)
        o->help_topic = OPTIONS_CMD_KEYGEN;
      else
        return render_usage(NULL, "no help on that: the commands are webhook, escalate, status, "
                                  "keygen");
      return HGCTL_OK;
    }
    if (o->help_topic == OPTIONS_CMD_WEBHOOK)
      for (size_t k = 0; k < sizeof(webhook_subs) / sizeof(webhook_subs[0]); k++)
        if (strcmp(w, webhook_subs[k].word) == 0) {
          o->help_topic = webhook_subs[k].cmd;
          return HGCTL_OK;
        }
    return render_usage(NULL, "no help on that");
  }
  switch (o->cmd) {
  case OPTIONS_CMD_NONE:
    if (strcmp(w, "webhook") == 0)
      o->cmd = OPTIONS_CMD_WEBHOOK;
    else if (strcmp(w, "escalate") == 0)
      o->cmd = OPTIONS_CMD_ESCALATE;
    else if (strcmp(w, "status") == 0)
      o->cmd = OPTIONS_CMD_STATUS;
    else if (strcmp(w, "keygen") == 0)
      o->cmd = OPTIONS_CMD_KEYGEN;
    else if (strcmp(w, "help") == 0)
      *help_cmd = true;
    else if (echoable(w))
      return render_usage(NULL, "unknown command '%s'", w);
    else
      return render_usage(NULL, "unknown command");
    return HGCTL_OK;
  case OPTIONS_CMD_WEBHOOK:
    for (size_t k = 0; k < sizeof(webhook_subs) / sizeof(webhook_subs[0]); k++)
      if (strcmp(w, webhook_subs[k].word) == 0) {
        o->cmd = webhook_subs[k].cmd;
        return HGCTL_OK;
      }
    if (echoable(w))
      return render_usage("webhook", "unknown webhook command '%s' (get, set, delete, test)", w);
    return render_usage("webhook", "unknown webhook command (get, set, delete, test)");
  default:
    break;
  }
  if (takes_agent(o->cmd) && !*have_agent) {
    /* The agentId is not echoed: a misplaced secret could stand here. */
    if (!uuid_valid(w))
      return render_usage(hint, "agentId must be a UUID (8-4-4-4-12 hex digits)");
    uuid_lower(w, o->agent_id);
    *have_agent = true;
    return HGCTL_OK;
  }
  return render_usage(hint, "too many arguments for '%s'", hint);
}

static int check_complete(struct options *o, bool have_agent)
{
  const char *hint = cmd_name(o->cmd);
  switch (o->cmd) {
  case OPTIONS_CMD_NONE:
    return render_usage(NULL, "no command given");
  case OPTIONS_CMD_WEBHOOK:
    return render_usage("webhook", "webhook needs a command: get, set, delete or test");
  default:
    break;
  }
  if (takes_agent(o->cmd) && !have_agent)
    return render_usage(hint, "%s needs an agentId (the Genie's UUID)", hint);
  if (o->cmd == OPTIONS_CMD_WEBHOOK_SET) {
    if (!o->url)
      return render_usage(hint, "webhook set needs --url");
    if (o->secret && o->secret_file)
      return render_usage(hint, "give --secret or --secret-file, not both");
  }
  return HGCTL_OK;
}

int options_parse(int argc, char **argv, struct options *o)
{
  bool options_done = false, help_cmd = false, have_agent = false;
  int rc = HGCTL_OK;

  memset(o, 0, sizeof(*o));
  cliconfig_init(&o->cfg);
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!options_done && strcmp(a, "--") == 0) {
      options_done = true;
      continue;
    }
    if (!options_done && a[0] == '-' && a[1] != '\0')
      rc = parse_option(o, argc, argv, &i);
    else
      rc = parse_word(o, a, &help_cmd, &have_agent);
    if (rc != HGCTL_OK)
      return rc;
    /* --help and --version end the parse: what follows need not be valid. */
    if (o->cmd == OPTIONS_CMD_HELP || o->cmd == OPTIONS_CMD_VERSION)
      return HGCTL_OK;
  }
  if (help_cmd) {
    o->cmd = OPTIONS_CMD_HELP;
    return HGCTL_OK;
  }
  return check_complete(o, have_agent);
}

void options_clear(struct options *o)
{
  cliconfig_clear(&o->cfg);
  free(o->url);
  crypto_free_secret(o->secret);
  free(o->secret_file);
  free(o->secret_header);
  for (size_t i = 0; i < o->nfields; i++) {
    free(o->fields[i].key);
    free(o->fields[i].value);
  }
  free(o->fields);
  free(o->reason);
  free(o->summary);
  free(o->caller);
  free(o->call_sid);
  free(o->session);
  free(o->keygen_id);
  for (size_t i = 0; i < o->nagents; i++)
    free(o->agents[i]);
  free(o->agents);
  for (size_t i = 0; i < o->nactions; i++)
    free(o->actions[i]);
  free(o->actions);
  memset(o, 0, sizeof(*o));
}

static const char help_global[] =
    "Global options (before or after the command):\n"
    "  -h, --host HOST        broker host (default localhost)\n"
    "  -p, --port PORT        broker port (default 1883, 8883 with --cafile or --cert)\n"
    "  -u, --username USER    broker user name\n"
    "  -P, --password PASS    broker password\n"
    "      --cafile FILE      CA certificates (PEM); turns on TLS\n"
    "      --cert FILE        client certificate (PEM); turns on TLS\n"
    "      --key FILE         client private key (PEM)\n"
    "  -i, --id ID            MQTT client id (default: hgctl-<random>)\n"
    "      --key-id ID        hgd signing key id\n"
    "      --key-secret S     hgd signing key secret (prefer --key-file)\n"
    "      --key-file FILE    file holding the key secret ('-': standard input)\n"
    "      --timeout SECONDS  give up after this long (default 10; webhook test 30)\n"
    "      --json             print JSON even on a terminal\n"
    "      --topic-root ROOT  topic prefix (default hg/v1)\n"
    "      --help, --version\n"
    "\n"
    "Settings also come from HGCTL_<NAME> environment variables (HGCTL_HOST,\n"
    "HGCTL_PORT, HGCTL_KEY_ID, HGCTL_KEY_SECRET, ...) and from `name = value`\n"
    "lines in $XDG_CONFIG_HOME/hgctl/config (else ~/.config/hgctl/config);\n"
    "the command line wins over the environment, which wins over the file.\n";

static const char help_overview[] =
    "Usage: hgctl [global options] <command> [arguments]\n"
    "\n"
    "Manage hgd, the escalation-webhook daemon, over MQTT.\n"
    "\n"
    "Commands:\n"
    "  webhook get <agentId>       show a Genie's webhook\n"
    "  webhook set <agentId> ...   create or replace a Genie's webhook\n"
    "  webhook delete <agentId>    delete a Genie's webhook\n"
    "  webhook test <agentId>      send a test delivery now\n"
    "  escalate <agentId> ...      publish a signed escalation\n"
    "  status [--watch]            show the status of hgd instances\n"
    "  keygen [--id ID]            print a new key entry for hgd's keys.json\n"
    "  help [command]              show help ('hgctl <command> --help' too)\n"
    "\n"
    "Exit status: 0 success, 1 hgd answered an error, 2 usage error,\n"
    "3 broker unreachable or refused, or no reply in time.\n"
    "\n";

static const char help_webhook[] =
    "Usage: hgctl [global options] webhook get|set|delete|test <agentId> [options]\n"
    "\n"
    "  get <agentId>      print the Genie's webhook (\"no webhook\" when none)\n"
    "  set <agentId>      create or replace it; see 'hgctl webhook set --help'\n"
    "  delete <agentId>   delete it (succeeds when there was none)\n"
    "  test <agentId>     make hgd POST a test escalation to it now and show\n"
    "                     what was sent and what the receiver answered\n"
    "\n";

static const char help_webhook_one[] = "Usage: hgctl [global options] webhook %s <agentId>\n"
                                       "\n"
                                       "%s\n"
                                       "\n";

static const char help_webhook_set[] =
    "Usage: hgctl [global options] webhook set <agentId> --url URL\n"
    "         [--secret S | --secret-file F] [--secret-header H]\n"
    "         [--field KEY[=HINT]]... [--sign-field KEY[=HINT]]... [--inactive]\n"
    "\n"
    "Create the Genie's webhook, or replace its whole configuration: what is\n"
    "not given takes its default (no secret, default header, no custom fields,\n"
    "active), so repeat the secret when you change only the URL.\n"
    "\n"
    "  --url URL             https:// endpoint that receives escalations\n"
    "  --secret S            HMAC secret for signing deliveries (visible in ps;\n"
    "                        prefer --secret-file)\n"
    "  --secret-file F       read the secret from F ('-': standard input);\n"
    "                        trailing newlines are stripped\n"
    "  --secret-header H     header for the signature (default X-HelpGenie-Signature)\n"
    "  --field KEY[=HINT]    a custom field for the body, with a hint for the\n"
    "                        call node\n"
    "  --sign-field KEY[=HINT]\n"
    "                        the same, and sign its value instead of the body\n"
    "  --inactive            store the webhook switched off\n"
    "Custom fields keep their command-line order.\n"
    "\n";

static const char help_escalate[] =
    "Usage: hgctl [global options] escalate <agentId> [--reason R] [--summary S]\n"
    "         [--caller N] [--call-sid SID] [--session ID] [--event-id UUID]\n"
    "         [--field KEY=VALUE]... [--field-json KEY=JSON]...\n"
    "\n"
    "Publish a signed escalation for the Genie, as a call node would, and print\n"
    "its eventId (the one given, or a new UUID) to track the delivery on\n"
    "<root>/delivery/<agentId>. hgctl waits only for the broker to take it.\n"
    "\n"
    "  --reason R          reason\n"
    "  --summary S         summary\n"
    "  --caller N          callerNumber\n"
    "  --call-sid SID      callSid\n"
    "  --session ID        agentSessionId\n"
    "  --event-id UUID     eventId (default: a new UUID v4)\n"
    "  --field KEY=VALUE   fields.KEY as a string\n"
    "  --field-json KEY=JSON\n"
    "                      fields.KEY as any JSON value\n"
    "\n";

static const char help_status[] =
    "Usage: hgctl [global options] status [--watch]\n"
    "\n"
    "Print the retained status of every hgd instance (<root>/status/+) received\n"
    "within about a second. With --watch, keep printing each status document as\n"
    "it is published until interrupted (one JSON document per line with --json).\n"
    "\n";

static const char help_keygen[] =
    "Usage: hgctl keygen [--id ID] [--agent UUID|*]... [--action ACTION]...\n"
    "\n"
    "Print a new key entry for hgd's keys file, with a random secret:\n"
    "  {\"id\":\"ID\",\"secret\":\"hgk_...\",\"agents\":[\"*\"],\n"
    "   \"actions\":[\"get\",\"upsert\",\"delete\",\"test\",\"escalate\"]}\n"
    "\n"
    "  --id ID           key id (default: key-<random>)\n"
    "  --agent UUID|*    Genies the key may act on (default: *)\n"
    "  --action ACTION   get, upsert, delete, test or escalate (default: all)\n"
    "Needs no broker.\n";

void options_help(FILE *f, enum options_cmd topic)
{
  switch (topic) {
  case OPTIONS_CMD_WEBHOOK:
    fputs(help_webhook, f);
    break;
  case OPTIONS_CMD_WEBHOOK_GET:
    fprintf(f, help_webhook_one, "get",
            "Print the Genie's webhook; \"no webhook\" (JSON null) when it has none.");
    break;
  case OPTIONS_CMD_WEBHOOK_DELETE:
    fprintf(f, help_webhook_one, "delete",
            "Delete the Genie's webhook. Succeeds also when there was none.");
    break;
  case OPTIONS_CMD_WEBHOOK_TEST:
    fprintf(f, help_webhook_one, "test",
            "Make hgd POST a test escalation (eventType escalation.test) to the\n"
            "webhook now, and print the payload, the signature and the receiver's\n"
            "answer. hgd answers NOT_FOUND when there is no active webhook.");
    break;
  case OPTIONS_CMD_WEBHOOK_SET:
    fputs(help_webhook_set, f);
    break;
  case OPTIONS_CMD_ESCALATE:
    fputs(help_escalate, f);
    break;
  case OPTIONS_CMD_STATUS:
    fputs(help_status, f);
    break;
  case OPTIONS_CMD_KEYGEN:
    fputs(help_keygen, f);
    return;
  default:
    fputs(help_overview, f);
    break;
  }
  fputs(help_global, f);
}
