/*
 * sqlite_wal.c - whose -wal is this? (the contract is in sqlite_wal.h)
 *
 * bp_wal_mark()       a file's mark: its inode number mixed into 31 bits, never 0.
 * bp_wal_inspect()    reads the -wal header and its first commit: frames? which marks?
 * bp_wal_preopen()    a writer's look at the -wal and -shm beside a store before SQLite
 *                     opens them: a -wal of another file is refused while it is in use, and
 *                     emptied once nobody uses it and its checkpoint is complete.
 * bp_wal_is_foreign() the rule itself.
 *
 * The -shm is only ever read, and only while this process holds the dead-man-switch byte
 * exclusively — the lock SQLite's first connection takes to rebuild the WAL index, so no
 * connection can be using it or start to.  The -wal is emptied (ftruncate) only then, and
 * only when the WAL index says every frame was copied into the database it belongs to.
 *
 * Ownership: descriptors opened here are closed here (before SQLite opens the store, so no
 * lock of SQLite's is dropped with them).
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
#define SHM_DMS_BYTE     128 /* the dead-man switch: held shared by every connection using it */

int32_t bp_wal_mark(ino_t ino)
{
    unsigned long long x = (unsigned long long)ino * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 29;
    int32_t m = (int32_t)(x & 0x7fffffffU);
    return m != 0 ? m : 1;
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

bp_status bp_wal_preopen(const char *location, int db_empty, int32_t mark, char *error, size_t error_size)
{
    char wal_path[4200], shm_path[4200];
    int wal = -1, shm = -1;
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
    if (fstat(wal, &sb) != 0 || bp_wal_inspect(fd_read, &wal, (long long)sb.st_size, 1, &v) != 0 || !v.frames)
        goto out;
    if (!db_empty && !(v.marked && bp_wal_is_foreign(v.mark, v.wal_mark, mark, bp_wal_mark(sb.st_ino))))
        goto out;
    /* The -wal belongs to another file: the one moved away from here, or replaced by this one. */
    shm = open(shm_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SHM_DMS_BYTE, .l_len = 1};
    if (shm >= 0 && fcntl(shm, F_SETLK, &lk) != 0) {
        snprintf(error, error_size,
                 "%s belongs to another file (%s was moved or replaced while in use) and that file's writers still "
                 "use it: not opened until they have finished",
                 wal_path, location);
        bs = BP_ERR_IO;
        goto out;
    }
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
    if (shm >= 0)
        close(shm); /* releases the dead-man switch */
    if (wal >= 0)
        close(wal);
    return bs;
}
