/*
 * quarantine.h - keep messages nothing was recognised in, in a Maildir, so that they can be
 * replayed once the rules improve (bouncepipe replay DIR).
 *
 * Delivery is the Maildir way, made durable: write to tmp/, fsync the file, link it into new/
 * (link, not rename, so an existing file is never replaced), remove the tmp/ name, fsync new/.
 * After BP_OK the message survives a crash or power loss.  Directories are created 0750 and
 * files 0640, narrowed by the umask when it is stricter.  Nothing is written through a
 * symbolic link: the Maildir directory, its tmp/, new/ and cur/, the directories made for it
 * and its files are refused when one is a link (errno ELOOP); parents of the Maildir that
 * exist are followed.
 *
 * The file in new/ is named after the message's fingerprint, so the same message delivered
 * twice is kept once.
 *
 * Sweeping: a delivery killed between writing tmp/ and linking into new/ (SIGKILL, power loss)
 * leaves its tmp/ file; bp_quarantine_sweep() removes those older than 36 hours, as Maildir
 * readers do, and with a retention set the kept messages older than it.
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

/* A tmp/ file older than this is a delivery that will never finish (maildir(5): 36 hours, by
 * the file's modification time: atime is often not kept). */
#define BP_QUARANTINE_TMP_MAX_AGE (36L * 3600L)
/* Pipe mode sweeps the quarantine at most this often (seconds). */
#define BP_QUARANTINE_SWEEP_INTERVAL 3600L

/** What bp_quarantine_sweep() removes. */
typedef struct bp_quarantine_sweep_options {
    unsigned retention_days;   /**< remove messages in new/ and cur/ older than this; 0: keep all */
    long min_interval_seconds; /**< skip unless the last sweep of this Maildir (its stamp file
                                    .bouncepipe-sweep) is older than this; 0: sweep now */
} bp_quarantine_sweep_options;

/** What a sweep did. */
typedef struct bp_quarantine_swept {
    int swept;             /**< 1 when it ran (not skipped for the interval) */
    unsigned tmp_removed;  /**< tmp/ files of killed deliveries removed */
    unsigned kept_removed; /**< messages past the retention removed */
} bp_quarantine_swept;

/**
 * Sweep the Maildir @p dir: remove tmp/ entries not modified for BP_QUARANTINE_TMP_MAX_AGE
 * and, with @p o->retention_days, regular files of new/ and cur/ not modified for that many
 * days.  A live delivery's tmp/ file is seconds old and never removed.  Nothing is followed
 * through a symbolic link.  A Maildir that does not exist yet is nothing to sweep.
 * @return BP_OK (*@p out says what was done); BP_ERR_IO when a directory cannot be read, with
 *         errno set (what was removed before stays removed).
 */
bp_status bp_quarantine_sweep(const char *dir, const bp_quarantine_sweep_options *o, bp_quarantine_swept *out);

#endif
