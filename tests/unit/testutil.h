/* testutil.h — file helpers shared by the unit tests of the on-disk
 * journals (test_outbox.c, test_store.c). They lived as identical copies in
 * each; one copy here keeps the two tests reading, writing and breaking
 * their files the same way. Failures are cmocka assertions, so these may be
 * called only from inside a running test (or a setup/teardown). */
#ifndef HG_TESTUTIL_H
#define HG_TESTUTIL_H

#include <stddef.h>

/* Makes HG_TEST_TMP (the build's scratch folder) if it is not there; call
 * first in main(). 0 on success, -1 when it cannot be made. */
int tu_make_tmp_root(void);

/* A fresh, empty directory path HG_TEST_TMP/<group>-<pid>/<name>, whatever
 * was there removed and the directory itself not created (the code under
 * test must create it). Points to a static buffer, valid until the next
 * call. */
const char *tu_fresh_dir(const char *group, const char *name);

/* dir/file into buf (n bytes); returns buf. */
char *tu_path(const char *dir, const char *file, char *buf, size_t n);

/* The whole file at path, NUL-terminated, its length in *len (free() it). */
char *slurp(const char *path, size_t *len);
/* Replaces the file at path with len bytes of buf (mode 0600). */
void spit(const char *path, const char *buf, size_t len);
/* The length of the records in the file at path: its size less the zero
 * bytes at its end (a journal's reserve, journal_reserve). */
size_t records_len(const char *path);
/* How many '\n' the file at path holds. */
size_t count_lines(const char *path);

/* For the ENOSPC tests: makes dir and mounts a 64 KiB tmpfs on it, or skips
 * the test (cmocka skip()) where mounting is not allowed (not root, no
 * CAP_SYS_ADMIN). The mount is remembered for unmount_tmpfs. */
void tu_mount_tmpfs(const char *dir);
/* Fills the file system to the last byte by writing the file filler (the
 * test unlinks it to free the space again). */
void tu_fill_fs(const char *filler);
/* Teardown of an ENOSPC test (cmocka_unit_test_teardown): lazily unmounts
 * the tmpfs tu_mount_tmpfs mounted, if any, so a failed test leaves none. */
int unmount_tmpfs(void **state);

#endif
