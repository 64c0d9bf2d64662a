/* hgctl.h — what every hgctl module shares: the exit codes of PROTOCOL.md
 * section 8 and the error codes hgctl itself prints ("hgctl: CODE: message").
 *
 * Every function that can fail returns one of enum hgctl_rc, having already
 * printed its message; main() returns it unchanged as the exit status. */
#ifndef HGCTL_H
#define HGCTL_H

enum hgctl_rc {
  HGCTL_OK = 0,      /* success */
  HGCTL_EDAEMON = 1, /* hgd answered an error (or an unusable reply) */
  HGCTL_EUSAGE = 2,  /* bad command line, environment or config file */
  HGCTL_EBROKER = 3  /* broker unreachable or refused, or no reply in time */
};

/* Error codes of hgctl's own (hgd's codes are printed as hgd sent them). */
#define HGCTL_CODE_USAGE "USAGE"
#define HGCTL_CODE_CONFIG "CONFIG"
#define HGCTL_CODE_BROKER "BROKER"
#define HGCTL_CODE_TIMEOUT "TIMEOUT"
#define HGCTL_TEST_TIMEOUT 30 /* seconds: webhook test's default --timeout */
#define HGCTL_CODE_NO_DAEMON "NO_DAEMON"
#define HGCTL_CODE_BAD_REPLY "BAD_REPLY"
#define HGCTL_CODE_OUTPUT "OUTPUT"
#define HGCTL_CODE_INTERNAL "INTERNAL"

#endif
