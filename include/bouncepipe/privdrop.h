/*
 * privdrop.h - give up root for good, as Postfix's pipe(8) does for its user= attribute.
 *
 * PowerMTA runs as root unless told otherwise (run-as-root), and so do the pipes and the
 * accounting program it starts; an operator's shell often is root too.  A file bouncepipe
 * creates as root in the store's directory (the database, its -wal and -shm, a quarantined
 * message) is one the MTA's own user can no longer write, and every later report is deferred.
 * So a command started as root becomes an unprivileged user before it opens or creates
 * anything: supplementary groups, then the group, then the user, each checked, and checked
 * again afterwards (root cannot be regained).  Who to become is the caller's choice (the CLI:
 * [process] user, else the owner of the store's directory).
 *
 * Ownership: nothing is allocated; error texts go into the caller's buffer.
 */
#ifndef BOUNCEPIPE_PRIVDROP_H
#define BOUNCEPIPE_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "bouncepipe/status.h"

/** Who to become. */
typedef struct bp_privdrop_target {
    uid_t uid;
    gid_t gid;       /**< the primary group */
    char name[64];   /**< the user's name (for initgroups), "" when it has no passwd entry */
    char home[256];  /**< its home directory ($HOME is set to it), "" when unknown */
    const char *how; /**< where the choice came from, for messages ("[process] user", ...) */
} bp_privdrop_target;

/**
 * Fill @p t from a user name or number (the passwd entry: uid, primary group, home).
 * @return BP_OK; BP_ERR_NOT_FOUND when there is no such user (@p err says so).
 */
bp_status bp_privdrop_user(const char *user, bp_privdrop_target *t, char *err, size_t err_size);

/**
 * Fill @p t from the owner of @p path (a directory): its uid, and the primary group and home of
 * its passwd entry, or the directory's group when the uid has none.
 * @return BP_OK; BP_ERR_IO when @p path cannot be looked at (@p err says why).
 */
bp_status bp_privdrop_owner(const char *path, bp_privdrop_target *t, char *err, size_t err_size);

/**
 * Become @p t for good: supplementary groups (initgroups() of its name, else only its group),
 * setresgid(), setresuid(); then check that real, effective and saved ids are all @p t's and
 * that root cannot be regained.  $HOME becomes its home when known.  Does nothing when the
 * process is not root.  @p t->uid must not be 0.
 * @return BP_OK; BP_ERR_USAGE for a target of uid 0; BP_ERR_IO when a step failed (@p err says
 *         which; the process must then not go on).
 */
bp_status bp_privdrop(const bp_privdrop_target *t, char *err, size_t err_size);

#endif
