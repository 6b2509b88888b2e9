/*
 * quarantine.h - keep messages nothing was recognised in, in a Maildir, so that they can be
 * replayed once the rules improve (bouncepipe replay DIR).
 *
 * Delivery is the Maildir way, made durable: write to tmp/, fsync the file, link it into new/
 * (link, not rename, so an existing file is never replaced), remove the tmp/ name, fsync new/.
 * After BP_OK the message survives a crash or power loss.  Directories are created 0750 and
 * files 0640, narrowed by the umask when it is stricter.
 *
 * The file in new/ is named after the message's fingerprint, so the same message delivered
 * twice is kept once.
 */
#ifndef BOUNCEPIPE_QUARANTINE_H
#define BOUNCEPIPE_QUARANTINE_H

#include <stddef.h>

#include "bouncepipe/status.h"

/**
 * Store @p len bytes of a message in the Maildir @p dir (created with tmp/, new/, cur/ when
 * missing).
 * @param unique the file name in new/: letters, digits, '.', '-' and '_' only (a fingerprint)
 * @param existed if not NULL, set to 1 when new/@p unique was already there (nothing written)
 * @return BP_OK; BP_ERR_USAGE for a bad @p unique; BP_ERR_IO when a directory cannot be made
 *         or the file cannot be written and synced (disk full: transient), with errno set.
 */
bp_status bp_quarantine_write(const char *dir, const char *unique, const char *data, size_t len, int *existed);

#endif
