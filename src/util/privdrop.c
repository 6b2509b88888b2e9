/*
 * privdrop.c - becoming an unprivileged user for good (privdrop.h).
 *
 * bp_privdrop_user(), bp_privdrop_owner(): who (getpwnam/getpwuid, stat).
 * bp_privdrop(): initgroups (or setgroups to the one group of a uid without a passwd entry),
 * setresgid, setresuid, each checked; then getresuid/getresgid must show the target in all
 * three slots and setuid(0) must fail, as OpenSSH and Postfix check after dropping.
 *
 * Ownership: nothing is allocated here.
 */
#include "bouncepipe/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy what the passwd entry @p pw says into @p t. */
static void from_passwd(const struct passwd *pw, bp_privdrop_target *t)
{
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    snprintf(t->name, sizeof(t->name), "%s", pw->pw_name);
    snprintf(t->home, sizeof(t->home), "%s", pw->pw_dir != NULL ? pw->pw_dir : "");
}

bp_status bp_privdrop_user(const char *user, bp_privdrop_target *t, char *err, size_t err_size)
{
    memset(t, 0, sizeof(*t));
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        char *end = NULL;
        unsigned long n = strtoul(user, &end, 10);
        if (end != user && *end == '\0')
            pw = getpwuid((uid_t)n);
    }
    if (pw == NULL) {
        snprintf(err, err_size, "no user \"%s\"", user);
        return BP_ERR_NOT_FOUND;
    }
    from_passwd(pw, t);
    return BP_OK;
}

bp_status bp_privdrop_owner(const char *path, bp_privdrop_target *t, char *err, size_t err_size)
{
    memset(t, 0, sizeof(*t));
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return BP_ERR_IO;
    }
    const struct passwd *pw = getpwuid(sb.st_uid);
    if (pw != NULL) {
        from_passwd(pw, t);
    } else {
        t->uid = sb.st_uid;
        t->gid = sb.st_gid;
    }
    return BP_OK;
}

bp_status bp_privdrop(const bp_privdrop_target *t, char *err, size_t err_size)
{
    if (geteuid() != 0)
        return BP_OK;
    if (t->uid == 0) {
        snprintf(err, err_size, "the user to become is root");
        return BP_ERR_USAGE;
    }
    const char *step = NULL;
    if (t->name[0] != '\0' ? initgroups(t->name, t->gid) != 0 : setgroups(1, &t->gid) != 0)
        step = "setting the supplementary groups";
    else if (setresgid(t->gid, t->gid, t->gid) != 0)
        step = "setresgid";
    else if (setresuid(t->uid, t->uid, t->uid) != 0)
        step = "setresuid";
    if (step != NULL) {
        snprintf(err, err_size, "%s to uid %lu gid %lu: %s", step, (unsigned long)t->uid, (unsigned long)t->gid,
                 strerror(errno));
        return BP_ERR_IO;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != t->uid || eu != t->uid ||
        su != t->uid || rg != t->gid || eg != t->gid || sg != t->gid) {
        snprintf(err, err_size, "the ids are not uid %lu gid %lu after the change", (unsigned long)t->uid,
                 (unsigned long)t->gid);
        return BP_ERR_IO;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, err_size, "root could be regained after becoming uid %lu", (unsigned long)t->uid);
        return BP_ERR_IO;
    }
    if (t->home[0] != '\0')
        setenv("HOME", t->home, 1); /* libpq finds the user's own ~/.pgpass */
    return BP_OK;
}
