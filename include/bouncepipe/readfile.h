/*
 * readfile.h - read a whole stream or file into memory, bounded.
 *
 * Ownership: *data is malloc'ed, NUL-terminated, and the caller's to free().
 */
#ifndef BOUNCEPIPE_READFILE_H
#define BOUNCEPIPE_READFILE_H

#include <stddef.h>
#include <stdio.h>

#include "bouncepipe/status.h"

/** Read all of @p f, at most @p max bytes (*truncated set when there was more; the rest is
 *  read and dropped so that the writer of a pipe is not killed by SIGPIPE).
 *  @return BP_OK, BP_ERR_IO, BP_ERR_NOMEM. */
bp_status bp_read_stream(FILE *f, size_t max, char **data, size_t *len, int *truncated);

/** bp_read_stream() on the file at @p path.
 *  @return also BP_ERR_NOT_FOUND when it does not exist, BP_ERR_IO when it cannot be opened. */
bp_status bp_read_file(const char *path, size_t max, char **data, size_t *len, int *truncated);

#endif
