/* reload.h — SIGHUP: re-read the keys file and the settings that can change
 * while hgd runs.
 *
 * Live: the keys file (its path is fixed at start), log_level and
 * status_interval. Every other setting needs a restart; a changed one is
 * logged (config.restart_needed) and otherwise ignored. The config file is
 * read again exactly as at start (same -c FILE and flags, flags still win);
 * a file with errors changes nothing. */
#ifndef HG_RELOAD_H
#define HG_RELOAD_H

#include "hgd.h"

/* Returns 0 when both the keys and the config were reloaded, -1 when either
 * was refused (the old one is kept and the reason logged). */
int reload_all(struct hgd *app, int argc, char **argv);

#endif
