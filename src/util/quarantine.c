/*
 * quarantine.c - the quarantine Maildir writer and sweeper (contract in quarantine.h).
 *
 * bp_quarantine_write(): open DIR, making it and its missing parents (0750 & ~umask), then
 * DIR/tmp, DIR/new, DIR/cur inside it; write tmp/UNIQUE.PID (O_EXCL, 0640 & ~umask), fsync,
 * close; link it to new/UNIQUE (EEXIST means the same message is already kept); unlink the
 * tmp name; fsync new/ so the link is on disk.  Every failure removes the tmp file, so a
 * failed call leaves nothing behind in new/ and nothing in tmp/.  Follows OpenSMTPD's
 * mail.maildir.c.
 *
 * Symbolic links: DIR itself, tmp/, new/, cur/, every directory made here and every file are
 * reached only through descriptors of opened directories (mkdirat/openat/linkat/unlinkat)
 * with O_NOFOLLOW, so a link planted at any of them - a dangling one included - is refused
 * (ELOOP), never followed to write somewhere else.  Parents of DIR that exist already are the
 * operator's layout and are followed, as for the store's directory.
 *
 * bp_quarantine_sweep(): what a Maildir reader does (maildir(5): tmp/ files untouched for
 * 36 hours are deleted), plus the retention of new/ and cur/; at most once per interval,
 * told by the mtime of a stamp file in DIR.
 *
 * Ownership: paths are built in fixed buffers (PATH_MAX); nothing is kept between calls.
 */
#include "bouncepipe/quarantine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
/* The stamp of the last sweep, in DIR (a dot-file: no Maildir reader takes it for mail). */
#define SWEEP_STAMP ".bouncepipe-sweep"

/* Close @p fd keeping errno. */
static void close_keep_errno(int fd)
{
    int saved = errno;
    if (fd >= 0)
        close(fd);
    errno = saved;
}

/* openat(@p at, @p name, DIR_FLAGS), with errno ELOOP when a symbolic link is in the way (with
 * O_DIRECTORY, Linux says ENOTDIR for a link to a directory). */
static int open_nofollow(int at, const char *name)
{
    int fd = openat(at, name, DIR_FLAGS);
    if (fd < 0 && errno == ENOTDIR) {
        struct stat sb;
        int is_link = fstatat(at, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);
        errno = is_link ? ELOOP : ENOTDIR;
    }
    return fd;
}

/* Copy @p path into @p buf without trailing '/' ("q/" would follow a link q even with
 * O_NOFOLLOW).  @return 0, or -1 with errno ENAMETOOLONG. */
static int copy_path(char *buf, size_t size, const char *path)
{
    if (snprintf(buf, size, "%s", path) >= (int)size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    return 0;
}

/*
 * Open the directory @p path, making it (0750 & ~umask) and its missing parents.  A parent
 * that exists is opened as the path names it (followed); a directory made here is made with
 * mkdirat() in its opened parent and opened with O_NOFOLLOW, and so is @p path itself when
 * @p nofollow.  @return a descriptor, or -1 with errno (ELOOP: a symbolic link is in the way).
 */
static int open_dir(const char *path, int nofollow)
{
    char buf[PATH_MAX];
    if (copy_path(buf, sizeof(buf), path) != 0)
        return -1;
    int fd = nofollow ? open_nofollow(AT_FDCWD, buf) : open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    char *slash = strrchr(buf, '/');
    const char *name = buf;
    int parent;
    if (slash == NULL) {
        parent = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        *slash = '\0';
        name = slash + 1;
        parent = open_dir(slash == buf ? "/" : buf, 0);
    }
    if (parent < 0)
        return -1;
    fd = -1;
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        errno = ENOENT;
    else if (mkdirat(parent, name, 0750) == 0 || errno == EEXIST)
        fd = open_nofollow(parent, name);
    close_keep_errno(parent);
    return fd;
}

/* Open (making it) the subdirectory @p name of the Maildir @p qfd, never through a link. */
static int open_sub(int qfd, const char *name)
{
    if (mkdirat(qfd, name, 0750) != 0 && errno != EEXIST)
        return -1;
    return open_nofollow(qfd, name);
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

bp_status bp_quarantine_write(const char *dir, const char *unique, const char *data, size_t len, int *existed)
{
    char tmp_name[256];
    int qfd = -1, tmp = -1, new = -1, cur = -1, fd = -1, linked = 0;
    bp_status st = BP_ERR_IO;
    if (existed != NULL)
        *existed = 0;
    if (!valid_unique(unique))
        return BP_ERR_USAGE;
    snprintf(tmp_name, sizeof(tmp_name), "%s.%ld", unique, (long)getpid());
    if ((qfd = open_dir(dir, 1)) < 0 || (tmp = open_sub(qfd, "tmp")) < 0 || (new = open_sub(qfd, "new")) < 0 ||
        (cur = open_sub(qfd, "cur")) < 0)
        goto out;
    struct stat sb;
    if (fstatat(new, unique, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (existed != NULL)
            *existed = 1;
        st = BP_OK;
        goto out;
    }
    unlinkat(tmp, tmp_name, 0); /* a leftover of a killed run with our pid: ours to replace */
    fd = openat(tmp, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        goto out;
    linked = 1; /* from here on the tmp name is ours to remove */
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto out;
    int closed = close(fd);
    fd = -1;
    if (closed != 0)
        goto out;
    if (linkat(tmp, tmp_name, new, unique, 0) != 0) {
        if (errno != EEXIST)
            goto out;
        if (existed != NULL)
            *existed = 1; /* another process kept the same message meanwhile */
    }
    unlinkat(tmp, tmp_name, 0);
    linked = 0;
    if (fsync(new) != 0)
        goto out;
    st = BP_OK;
out:
    close_keep_errno(fd);
    if (linked) {
        int saved = errno;
        unlinkat(tmp, tmp_name, 0);
        errno = saved;
    }
    close_keep_errno(cur);
    close_keep_errno(new);
    close_keep_errno(tmp);
    close_keep_errno(qfd);
    return st;
}

/* Remove the entries of @p dfd last modified before @p cutoff (regular files only when
 * @p files_only), counting them in *@p removed.  @return 0, or -1 with errno. */
static int remove_older(int dfd, time_t cutoff, int files_only, unsigned *removed)
{
    int copy = dup(dfd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (d == NULL) {
        close_keep_errno(copy);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) || (files_only && !S_ISREG(sb.st_mode)) || sb.st_mtime >= cutoff)
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

/* @return non-zero when the stamp says a sweep ran less than @p interval seconds ago; else
 * touch it (this run sweeps). */
static int swept_lately(int qfd, long interval, time_t now)
{
    struct stat sb;
    if (interval > 0 && fstatat(qfd, SWEEP_STAMP, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
        sb.st_mtime <= now && now - sb.st_mtime < interval)
        return 1;
    int fd = openat(qfd, SWEEP_STAMP, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
    return 0;
}

bp_status bp_quarantine_sweep(const char *dir, const bp_quarantine_sweep_options *o, bp_quarantine_swept *out)
{
    int qfd = -1, sub = -1;
    bp_status st = BP_ERR_IO;
    memset(out, 0, sizeof(*out));
    time_t now = time(NULL);
    char path[PATH_MAX];
    qfd = copy_path(path, sizeof(path), dir) == 0 ? open_nofollow(AT_FDCWD, path) : -1;
    if (qfd < 0) {
        st = errno == ENOENT ? BP_OK : BP_ERR_IO; /* nothing kept yet: nothing to sweep */
        goto out;
    }
    if (swept_lately(qfd, o->min_interval_seconds, now)) {
        st = BP_OK;
        goto out;
    }
    out->swept = 1;
    if ((sub = open_nofollow(qfd, "tmp")) >= 0) {
        if (remove_older(sub, now - BP_QUARANTINE_TMP_MAX_AGE, 0, &out->tmp_removed) != 0)
            goto out;
        close(sub);
        sub = -1;
    } else if (errno != ENOENT) {
        goto out;
    }
    static const char *const kept[] = {"new", "cur"};
    for (size_t i = 0; o->retention_days > 0 && i < sizeof(kept) / sizeof(kept[0]); i++) {
        if ((sub = open_nofollow(qfd, kept[i])) < 0) {
            if (errno == ENOENT)
                continue;
            goto out;
        }
        if (remove_older(sub, now - (time_t)o->retention_days * 86400, 1, &out->kept_removed) != 0)
            goto out;
        close(sub);
        sub = -1;
    }
    st = BP_OK;
out:
    close_keep_errno(sub);
    close_keep_errno(qfd);
    return st;
}
