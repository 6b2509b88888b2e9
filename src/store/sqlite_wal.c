/*
 * sqlite_wal.c - whose -wal is this? (the contract is in sqlite_wal.h)
 *
 * bp_wal_mark()       a file's mark: its inode number and birth time mixed into 31 bits,
 *                     never 0; bp_wal_file_mark() reads them (statx).
 * bp_wal_inspect()    reads the -wal header and its first commit: frames? which marks?
 * bp_wal_preopen()    a writer's look at the -wal and -shm beside a store before SQLite
 *                     opens them: a -wal of another file is refused while it is in use, and
 *                     emptied once nobody uses it and its checkpoint is complete.
 * bp_wal_is_foreign() the rule itself.
 * bp_wal_join()       a writer's lock in the -shm for its database file, held for as long as
 *                     its connection is open: one file's writers at a time.
 * bp_wal_joined_current(), bp_wal_leave()  is the lock still on the -shm at the path; drop it.
 *
 * The locks of bp_wal_join() are open-file-description locks (F_OFD_SETLK, Linux): unlike
 * the record locks SQLite takes, they are not dropped when another descriptor of the file is
 * closed, and they conflict with SQLite's record locks, so the dead-man-switch probe below
 * sees SQLite's connections in this process too.  One byte per mark, from JOIN_BASE on (4 GiB
 * into the file: SQLite locks bytes 120..128, and a lock beyond the end of a file is a lock
 * like any other).  Where they do not exist the writers' turns are not enforced (a moved or
 * replaced store then relies on the marks alone).
 *
 * The -shm is only ever read, and only while this process holds the dead-man-switch byte
 * exclusively — the lock SQLite's first connection takes to rebuild the WAL index, so no
 * connection can be using it or start to.  The -wal is emptied (ftruncate) only then, and
 * only when the WAL index says every frame was copied into the database it belongs to.
 *
 * Ownership: bp_wal_join()'s descriptor is the caller's until bp_wal_leave(), which must come
 * after SQLite closed the store (closing any descriptor of the -shm drops the process's record
 * locks on it, SQLite's included); the others opened here are closed here, before SQLite
 * opens the store.
 */
#include "sqlite_wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_HEADER       32         /* -wal header bytes */
#define WAL_FRAME_HEADER 24         /* bytes before each frame's page */
#define WAL_MAGIC        0x377f0682 /* the low bit says the checksums' byte order */
#define PAGE1_MARKS      60         /* user_version; application_id follows 8 bytes later */
#define SHM_HEADER       136        /* two copies of the WAL-index header, then checkpoint info */
#define SHM_HEADER_COPY  48
#define SHM_VERSION      3007000
#define SHM_DMS_BYTE     128              /* the dead-man switch: held shared by every connection using it */
#define JOIN_BASE        ((off_t)1 << 32) /* bp_wal_join()'s byte of mark m: JOIN_BASE + m */
#define JOIN_SPAN        ((off_t)1 << 31) /* marks are 31 bits */

int32_t bp_wal_mark(ino_t ino, long long birth_ns)
{
    unsigned long long x =
        (unsigned long long)ino * 0x9E3779B97F4A7C15ULL ^ (unsigned long long)birth_ns * 0xD6E8FEB86659FD93ULL;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 29;
    int32_t m = (int32_t)(x & 0x7fffffffU);
    return m != 0 ? m : 1;
}

int bp_wal_file_mark(int fd, const char *path, int32_t *mark, struct stat *sb)
{
    long long birth_ns = 0;
    if ((fd >= 0 ? fstat(fd, sb) : stat(path, sb)) != 0)
        return -1;
#ifdef STATX_BTIME
    struct statx sx;
    if ((fd >= 0 ? statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx)
                 : statx(AT_FDCWD, path, 0, STATX_INO | STATX_BTIME, &sx)) == 0 &&
        (sx.stx_mask & STATX_BTIME) != 0 && sx.stx_ino == (unsigned long long)sb->st_ino)
        birth_ns = (long long)sx.stx_btime.tv_sec * 1000000000LL + sx.stx_btime.tv_nsec;
#endif
    *mark = bp_wal_mark(sb->st_ino, birth_ns);
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int bp_wal_inspect(bp_wal_read_fn read, void *ctx, long long size, int want_mark, bp_wal_view *v)
{
    unsigned char h[WAL_HEADER], f[WAL_FRAME_HEADER], marks[12];
    memset(v, 0, sizeof(*v));
    if (size < WAL_HEADER + WAL_FRAME_HEADER)
        return 0;
    if (read(ctx, h, sizeof(h), 0) != 0)
        return -1;
    uint32_t page_size = be32(h + 8);
    if ((be32(h) & ~1U) != WAL_MAGIC || page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0)
        return 0;
    memcpy(v->salts, h + 16, sizeof(v->salts));
    long long step = WAL_FRAME_HEADER + (long long)page_size;
    for (long long at = WAL_HEADER; at + step <= size; at += step) {
        if (read(ctx, f, sizeof(f), at) != 0) {
            memset(v, 0, sizeof(*v));
            return -1;
        }
        if (memcmp(f + 8, h + 16, 8) != 0) /* a frame of an earlier generation: the log ends */
            break;
        v->frames = 1;
        if (!want_mark)
            break;
        if (be32(f) == 1) {
            if (read(ctx, marks, sizeof(marks), at + WAL_FRAME_HEADER + PAGE1_MARKS) != 0) {
                memset(v, 0, sizeof(*v));
                return -1;
            }
            v->marked = 1;
            v->mark = (int32_t)be32(marks);
            v->wal_mark = (int32_t)be32(marks + 8);
            break;
        }
        if (be32(f + 4) != 0) /* the first commit ended without page 1 */
            break;
    }
    return 0;
}

int bp_wal_is_foreign(int32_t mark, int32_t wal_mark, int32_t mine, int32_t this_wal)
{
    return mark != 0 && mark != mine && wal_mark == this_wal;
}

static int fd_read(void *ctx, unsigned char *buf, size_t n, long long offset)
{
    ssize_t got = pread(*(int *)ctx, buf, n, (off_t)offset);
    return got == (ssize_t)n ? 0 : -1;
}

/* The -shm's WAL-index header, read under the dead-man-switch lock: does it describe the
 * generation with @p salts, and is its checkpoint complete (every frame in the database)? */
static int checkpoint_complete(int shm, const unsigned char *salts, uint32_t *frames, uint32_t *copied)
{
    unsigned char h[SHM_HEADER];
    uint32_t version = 0;
    *frames = *copied = 0;
    if (pread(shm, h, sizeof(h), 0) != (ssize_t)sizeof(h))
        return 0;
    memcpy(&version, h, sizeof(version));
    memcpy(frames, h + 16, sizeof(*frames));
    memcpy(copied, h + 2 * SHM_HEADER_COPY, sizeof(*copied));
    return version == SHM_VERSION && h[12] == 1 && memcmp(h, h + SHM_HEADER_COPY, SHM_HEADER_COPY) == 0 &&
           memcmp(h + 32, salts, 8) == 0 && *copied == *frames;
}

static int shm_name(char *buf, size_t size, const char *location)
{
    return (size_t)snprintf(buf, size, "%s-shm", location) < size;
}

bp_status bp_wal_join(const char *location, const struct stat *db, int32_t mark, int *shm_fd, char *error,
                      size_t error_size)
{
    *shm_fd = -1;
#ifdef F_OFD_SETLK
    char shm_path[4200];
    bp_status bs = BP_OK;
    struct stat sb;
    mode_t mode = db->st_mode & 0777;
    if (!shm_name(shm_path, sizeof(shm_path), location))
        return BP_OK; /* SQLite refuses such a name itself */
    int fd = open(shm_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(error, error_size, "%s: %s", shm_path, strerror(errno));
        bs = BP_ERR_IO;
        goto out;
    }
    if (sb.st_size == 0) { /* as SQLite creates it: the database file's mode, and owner under root */
        if ((sb.st_mode & 0777) != mode)
            (void)fchmod(fd, mode);
        if (geteuid() == 0 && (sb.st_uid != db->st_uid || sb.st_gid != db->st_gid))
            (void)!fchown(fd, db->st_uid, db->st_gid);
    }
    struct flock mine = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = JOIN_BASE + mark, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &mine) != 0) {
        snprintf(error, error_size, "%s: locking: %s", shm_path, strerror(errno));
        bs = BP_ERR_IO;
        goto out;
    }
    /* Mine first, then the others': of two files' writers joining at once, the later look sees
     * the earlier lock (both may see each other, and both wait). */
    const off_t from[2] = {JOIN_BASE, JOIN_BASE + mark + 1}, len[2] = {mark, JOIN_SPAN - mark - 1};
    for (int i = 0; i < 2; i++) {
        struct flock other = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = from[i], .l_len = len[i]};
        if (len[i] > 0 && fcntl(fd, F_OFD_GETLK, &other) == 0 && other.l_type != F_UNLCK) {
            snprintf(error, error_size,
                     "%s is in use through another file (%s was moved or replaced while in use) and that file's "
                     "writers still use it: not opened until they have finished",
                     shm_path, location);
            bs = BP_ERR_IO;
            goto out;
        }
    }
out:
    if (bs == BP_OK)
        *shm_fd = fd;
    else if (fd >= 0)
        close(fd); /* before SQLite opened it: no lock of SQLite's to drop */
    return bs;
#else
    (void)location, (void)db, (void)mark, (void)error, (void)error_size;
    return BP_OK;
#endif
}

int bp_wal_joined_current(const char *location, int shm_fd)
{
    char shm_path[4200];
    struct stat held, named;
    if (shm_fd < 0)
        return 1;
    return shm_name(shm_path, sizeof(shm_path), location) && fstat(shm_fd, &held) == 0 &&
           lstat(shm_path, &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

void bp_wal_leave(int *shm_fd)
{
    if (*shm_fd >= 0)
        close(*shm_fd); /* drops the lock of bp_wal_join() */
    *shm_fd = -1;
}

/* Take (@p take) or drop the dead-man-switch byte exclusively: through @p joined, the join
 * descriptor (an open-file-description lock, so that SQLite's locks in this process count as
 * users too), or else through @p own with a record lock. */
static int dms_lock(int joined, int own, int take)
{
    struct flock lk = {.l_type = take ? F_WRLCK : F_UNLCK, .l_whence = SEEK_SET, .l_start = SHM_DMS_BYTE, .l_len = 1};
#ifdef F_OFD_SETLK
    if (joined >= 0)
        return fcntl(joined, F_OFD_SETLK, &lk);
#else
    (void)joined;
#endif
    return fcntl(own, F_SETLK, &lk);
}

bp_status bp_wal_preopen(const char *location, int shm_fd, int db_empty, int32_t mark, char *error, size_t error_size)
{
    char wal_path[4200], shm_path[4200];
    int wal = -1, shm = -1, dms = 0;
    bp_status bs = BP_OK;
    struct stat sb;
    bp_wal_view v;
    if ((size_t)snprintf(wal_path, sizeof(wal_path), "%s-wal", location) >= sizeof(wal_path) ||
        (size_t)snprintf(shm_path, sizeof(shm_path), "%s-shm", location) >= sizeof(shm_path))
        return BP_OK; /* SQLite refuses such a name itself */
    wal = open(wal_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (wal < 0) {
        if (errno == ENOENT || !db_empty)
            goto out; /* no -wal; or one SQLite will judge with us inside the transaction */
        snprintf(error, error_size, "%s: empty, and %s cannot be examined: %s", location, wal_path, strerror(errno));
        bs = BP_ERR_IO;
        goto out;
    }
    int32_t wal_mark = 0;
    if (bp_wal_file_mark(wal, NULL, &wal_mark, &sb) != 0 ||
        bp_wal_inspect(fd_read, &wal, (long long)sb.st_size, 1, &v) != 0 || !v.frames)
        goto out;
    if (!db_empty && !(v.marked && bp_wal_is_foreign(v.mark, v.wal_mark, mark, wal_mark)))
        goto out;
    /* The -wal belongs to another file: the one moved away from here, or replaced by this one. */
    shm = shm_fd >= 0 ? shm_fd : open(shm_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (shm >= 0 && dms_lock(shm_fd, shm, 1) != 0) {
        snprintf(error, error_size,
                 "%s belongs to another file (%s was moved or replaced while in use) and that file's writers still "
                 "use it: not opened until they have finished",
                 wal_path, location);
        bs = BP_ERR_IO;
        goto out;
    }
    dms = shm >= 0;
    uint32_t frames = 0, copied = 0;
    if (shm < 0 || !checkpoint_complete(shm, v.salts, &frames, &copied)) {
        snprintf(error, error_size,
                 "%s belongs to another file (%s was moved or replaced while in use) and holds commits that may not "
                 "have reached it (WAL index %s: %u of %u frames copied): not opened; see docs/store.md, \"Moving, "
                 "replacing\"",
                 wal_path, location, shm < 0 ? "missing" : "incomplete or stale", copied, frames);
        bs = BP_ERR_IO;
        goto out;
    }
    /* Nobody uses it (we hold the dead-man switch) and every frame is in its file: empty it, so
     * that this file starts a log of its own.  SQLite rebuilds the index at the next open. */
    if (ftruncate(wal, 0) != 0 || fsync(wal) != 0) {
        snprintf(error, error_size, "%s: emptying another file's log: %s", wal_path, strerror(errno));
        bs = BP_ERR_IO;
    }
out:
    if (dms)
        dms_lock(shm_fd, shm, 0);
    if (shm >= 0 && shm != shm_fd)
        close(shm); /* not joined: SQLite has not opened it in this process */
    if (wal >= 0)
        close(wal);
    return bs;
}
