/*
 * status.h - the one status enum of bouncepipe.
 *
 * Every fallible function of the core library returns a bp_status; BP_OK is 0 so that
 * "if (st != BP_OK)" reads naturally.  bp_status_to_string() never returns NULL.
 * Programming errors (a broken invariant) are not statuses: they go to BP_INTERNAL_ERROR(),
 * which prints where and aborts.
 */
#ifndef BOUNCEPIPE_STATUS_H
#define BOUNCEPIPE_STATUS_H

typedef enum bp_status {
    BP_OK = 0,
    BP_ERR_NOMEM,       /**< out of memory (transient) */
    BP_ERR_IO,          /**< read or write failed (transient: the caller may retry later) */
    BP_ERR_NOT_FOUND,   /**< file, address or record does not exist */
    BP_ERR_PARSE,       /**< input is malformed beyond what we accept */
    BP_ERR_LIMIT,       /**< input exceeds a limit of limits.h */
    BP_ERR_CONFIG,      /**< configuration or rule file is invalid */
    BP_ERR_BUSY,        /**< database locked past its timeout (transient) */
    BP_ERR_STORE,       /**< database error that is not transient */
    BP_ERR_USAGE,       /**< bad command-line usage */
    BP_ERR_UNSUPPORTED, /**< feature not available in this build */
    BP_STATUS_LAST
} bp_status;

/** @return a static, human-readable description of @p status; never NULL. */
const char *bp_status_to_string(bp_status status);

/**
 * @return non-zero when @p status is transient: the same call may succeed later with nothing
 * changed by anyone (BP_ERR_IO, BP_ERR_BUSY, BP_ERR_NOMEM).  A store error (BP_ERR_STORE: the
 * database refused for good, or is not ours) or a configuration error (BP_ERR_CONFIG) is not:
 * only an operator's fix helps, and retrying it in a loop would spin for ever.  Whether a
 * command defers on a failure that is not transient is the command's decision (pipe mode
 * defers on every failure, because nothing may be lost).
 */
int bp_status_is_transient(bp_status status);

/** Report a broken internal invariant and abort; never returns. */
_Noreturn void bp_internal_error(const char *file, int line, const char *what);
#define BP_INTERNAL_ERROR(what) bp_internal_error(__FILE__, __LINE__, (what))

#endif
