/*
 * quarantine.c - the quarantine Maildir writer (contract in quarantine.h).
 *
 * bp_quarantine_write(): make DIR, DIR/tmp, DIR/new, DIR/cur (0750 & ~umask); write
 * tmp/UNIQUE.PID (O_EXCL, 0640 & ~umask), fsync, close; link to new/UNIQUE (EEXIST means the
 * same message is already kept); unlink the tmp name; fsync new/ so the link is on disk.
 * Every failure removes the tmp file, so a failed call leaves nothing behind in new/ and at
 * most nothing in tmp/.  Follows OpenSMTPD's mail.maildir.c.
 *
 * Ownership: paths are built in fixed buffers (PATH_MAX); nothing is kept between calls.
 */
#include "bouncepipe/quarantine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0750; an existing directory is fine. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int valid_unique(const char *u)
{
    if (u == NULL || u[0] == '\0' || u[0] == '.' || strlen(u) > 200)
        return 0;
    for (const char *p = u; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

bp_status bp_quarantine_write(const char *dir, const char *unique, const char *data, size_t len, int *existed)
{
    char tmp_dir[PATH_MAX], new_dir[PATH_MAX], cur_dir[PATH_MAX], tmp_path[PATH_MAX], new_path[PATH_MAX];
    int fd = -1, saved;
    if (existed != NULL)
        *existed = 0;
    if (!valid_unique(unique))
        return BP_ERR_USAGE;
    if (snprintf(tmp_dir, sizeof(tmp_dir), "%s/tmp", dir) >= (int)sizeof(tmp_dir) ||
        snprintf(new_dir, sizeof(new_dir), "%s/new", dir) >= (int)sizeof(new_dir) ||
        snprintf(cur_dir, sizeof(cur_dir), "%s/cur", dir) >= (int)sizeof(cur_dir) ||
        snprintf(tmp_path, sizeof(tmp_path), "%s/%s.%ld", tmp_dir, unique, (long)getpid()) >= (int)sizeof(tmp_path) ||
        snprintf(new_path, sizeof(new_path), "%s/%s", new_dir, unique) >= (int)sizeof(new_path)) {
        errno = ENAMETOOLONG;
        return BP_ERR_IO;
    }
    if (make_dirs(dir) != 0 || make_dirs(tmp_dir) != 0 || make_dirs(new_dir) != 0 || make_dirs(cur_dir) != 0)
        return BP_ERR_IO;
    if (access(new_path, F_OK) == 0) {
        if (existed != NULL)
            *existed = 1;
        return BP_OK;
    }
    unlink(tmp_path); /* a leftover of a killed run with our pid: ours to replace */
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return BP_ERR_IO;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (link(tmp_path, new_path) != 0) {
        if (errno != EEXIST)
            goto fail;
        if (existed != NULL)
            *existed = 1; /* another process kept the same message meanwhile */
    }
    unlink(tmp_path);
    if (fsync_dir(new_dir) != 0)
        return BP_ERR_IO;
    return BP_OK;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp_path);
    errno = saved;
    return BP_ERR_IO;
}
