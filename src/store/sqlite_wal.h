/*
 * sqlite_wal.h - whose -wal is this? (internal to src/store/, used by sqlite.c)
 *
 * SQLite finds a database's write-ahead log and its index by name: "<path>-wal" and
 * "<path>-shm".  Nothing in either says which database file they belong to, so a file renamed
 * over a store in use (or created where a store was moved away from) is opened with the old
 * file's log, and SQLite reads the old file's pages over the new one's: a malformed store.
 * bouncepipe therefore marks every commit it makes with the file it was made through, in the
 * database header's user_version (the database file's inode) and application_id (the -wal
 * file's inode), and checks a -wal before it uses it (docs/store.md, "Moving, replacing"):
 *
 *  - a -wal whose commits were made by bouncepipe through another database file, into this
 *    very -wal file, belongs to that other file ("foreign"): never read, written or
 *    checkpointed through this one;
 *  - a -wal without frames, or whose commits carry no mark (made by an older bouncepipe), or
 *    a mark of another -wal file (a page 1 copied by `sqlite3 .restore`, a store copied with
 *    its -wal), or a mark of this database file, is this file's.
 *
 * Two files must never use one -wal at the same time: a checkpoint copies every frame of the
 * log into the database file of the connection that runs it, whoever wrote the frame, and
 * marks it copied for everyone.  So every writer, for as long as its connection is open, holds
 * a shared lock on one byte of the -shm chosen by its database file's mark (bp_wal_join(), an
 * open-file-description lock far beyond the bytes SQLite locks), and joins only when no byte
 * of another mark is held: the writers of a moved or replaced file and those of the file now
 * at the path take turns, whatever the order of their opens and the operator's rename.
 *
 * The formats read here are SQLite's documented on-disk formats: the WAL file
 * (https://www.sqlite.org/fileformat2.html#walformat: big-endian 32-byte header, 24-byte frame
 * headers) and the WAL-index header of the -shm file (https://www.sqlite.org/walformat.html:
 * native byte order, two copies of the 48-byte header, then the checkpoint information, and
 * the dead-man-switch lock byte at offset 128 that every connection using it holds shared).
 * SQLite has no interface that answers these questions, and none that reads them.
 *
 * Ownership: nothing is allocated; messages go into the caller's buffer.
 */
#ifndef BOUNCEPIPE_STORE_SQLITE_WAL_H
#define BOUNCEPIPE_STORE_SQLITE_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "bouncepipe/status.h"

/** The mark of a file: its inode number and birth time (nanoseconds since the epoch, 0 where
 *  the file system keeps none) mixed into 31 bits, never 0 (0: no mark).  The birth time tells
 *  a file from an earlier one the file system gave the same inode number: a store deleted with
 *  its -wal, another store's -wal whose mark a copied or restored page 1 still carries. */
int32_t bp_wal_mark(ino_t ino, long long birth_ns);

/** The mark of the file open as @p fd (or, when @p fd is -1, named by @p path, following a
 *  symbolic link as stat() does), with its stat() in @p sb.  @return 0, or -1 (errno set) */
int bp_wal_file_mark(int fd, const char *path, int32_t *mark, struct stat *sb);

/** Reads @p n bytes at @p offset into @p buf; 0 on success. */
typedef int (*bp_wal_read_fn)(void *ctx, unsigned char *buf, size_t n, long long offset);

/** What the start of a -wal file says. */
typedef struct bp_wal_view {
    int frames;             /**< it holds at least one frame of its current generation */
    int marked;             /**< the first commit wrote page 1: @c mark and @c wal_mark are its marks */
    int32_t mark, wal_mark; /**< user_version and application_id of that page 1 */
    unsigned char salts[8]; /**< the generation's salts (header bytes 16..23) */
} bp_wal_view;

/**
 * Inspect a -wal file of @p size bytes read through @p read: does it hold frames, and the
 * marks of its first commit's page 1 when @p want_mark (SQLite writes a commit's pages in page
 * order, so page 1 of a commit comes first among them; the scan stops at the first commit).
 * @return 0, or -1 when a read failed (then @p v says no frames)
 */
int bp_wal_inspect(bp_wal_read_fn read, void *ctx, long long size, int want_mark, bp_wal_view *v);

/**
 * A writer joins the -wal and -shm beside the store at @p location for the database file
 * @p db (its mark @p mark), before SQLite opens them: it opens the -shm (creating it as SQLite
 * would: the database file's mode, and owner when run as root) and takes the shared lock of
 * its mark.  Refused while a writer of another database file holds its own.
 * @param shm_fd receives the descriptor that holds the lock (-1 where open-file-description
 *               locks do not exist); give it to bp_wal_leave() only once SQLite has closed the
 *               store, since closing a descriptor drops the process's record locks on the file
 * @return BP_OK; BP_ERR_IO (75 for pipe mode) when another file's writers use it or the -shm
 *         cannot be opened, with the reason in @p error
 */
bp_status bp_wal_join(const char *location, const struct stat *db, int32_t mark, int *shm_fd, char *error,
                      size_t error_size);

/** Does the -shm path beside @p location still name the -shm @p shm_fd holds (or is there no
 *  lock to check: @p shm_fd is -1)?  SQLite opens the path after bp_wal_join(). */
int bp_wal_joined_current(const char *location, int shm_fd);

/** Let go of the lock of bp_wal_join() (after SQLite closed the store); sets @p *shm_fd to -1. */
void bp_wal_leave(int *shm_fd);

/**
 * Before SQLite opens the store at @p location (a writer, joined: @p shm_fd is
 * bp_wal_join()'s): a -wal beside it that belongs to
 * another file — the store is empty (SQLite would delete the -wal of an empty database), or
 * the -wal's first commit was made through another database file into this -wal — is
 *  - left alone when a connection still uses it (the moved or replaced file's writers, who
 *    copy it into their file as they finish): BP_ERR_IO, 75 for pipe mode;
 *  - emptied when nobody uses it and every frame of it is in the file it belongs to (its
 *    checkpoint is complete), so that this file can go on with a log of its own: BP_OK;
 *  - refused otherwise (it holds commits its file never received): BP_ERR_IO with a message
 *    that says what to do.
 * A -wal that is this file's, or that cannot be judged before SQLite reads it, gives BP_OK
 * (sqlite.c checks again inside each transaction).
 * @param db_empty the database file is empty
 * @param mark     bp_wal_mark() of the database file
 */
bp_status bp_wal_preopen(const char *location, int shm_fd, int db_empty, int32_t mark, char *error, size_t error_size);

/** Is @p wal_mark, found beside a commit's @p mark, the sign of another file's commit made into
 *  the -wal marked @p this_wal by bouncepipe?  (@p mine: this database file's mark.) */
int bp_wal_is_foreign(int32_t mark, int32_t wal_mark, int32_t mine, int32_t this_wal);

#endif
