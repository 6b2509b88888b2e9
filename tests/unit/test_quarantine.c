/*
 * test_quarantine.c - the quarantine Maildir writer: the file lands in new/ whole, tmp/ is
 * left empty, modes are 0750/0640 narrowed by a stricter umask, the same message is kept
 * once, bad names are refused, a failed write (file size limit, like a full disk) leaves
 * nothing behind, a symbolic link in place of the quarantine or of a directory in it is
 * refused, and the sweep removes old tmp/ leftovers and, with a retention, old messages.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/quarantine.h"
#include "test_support.h"

static char base[64];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/bp-test-quarantine-XXXXXX");
    return mkdtemp(base) == NULL;
}

static int teardown(void **state)
{
    (void)state;
    return bp_test_rmtree(base) != 0;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The files in the Maildir folder @p sub (tmp, new, cur) of @p dir. */
static int files_in(const char *dir, const char *sub)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    return count_files(path);
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 0777;
}

static void test_write_and_modes(void **state)
{
    (void)state;
    static const struct {
        mode_t umask;
        mode_t dir, file;
    } rows[] = {{022, 0750, 0640}, {077, 0700, 0600}, {027, 0750, 0640}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char dir[128], path[192];
        snprintf(dir, sizeof(dir), "%s/q%zu/sub", base, i);
        mode_t old = umask(rows[i].umask);
        int existed = -1;
        const char msg[] = "From: x@example.org\n\nhello\n";
        bp_status st = bp_quarantine_write(dir, "abc123", msg, sizeof(msg) - 1, &existed);
        umask(old);
        assert_int_equal(st, BP_OK);
        assert_int_equal(existed, 0);
        snprintf(path, sizeof(path), "%s/new/abc123", dir);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char buf[64] = "";
        size_t got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        assert_int_equal(got, sizeof(msg) - 1);
        assert_memory_equal(buf, msg, got);
        if (mode_of(path) != rows[i].file)
            fail_msg("umask %03o: file mode %03o, want %03o", rows[i].umask, mode_of(path), rows[i].file);
        assert_int_equal(mode_of(dir), rows[i].dir);
        assert_int_equal(files_in(dir, "tmp"), 0);
        snprintf(path, sizeof(path), "%s/tmp", dir);
        assert_int_equal(mode_of(path), rows[i].dir);
        assert_int_equal(files_in(dir, "cur"), 0);
    }
}

static void test_same_message_once(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/q", base);
    int existed = -1;
    assert_int_equal(bp_quarantine_write(dir, "fp1", "one", 3, &existed), BP_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(bp_quarantine_write(dir, "fp1", "one", 3, &existed), BP_OK);
    assert_int_equal(existed, 1);
    assert_int_equal(bp_quarantine_write(dir, "fp2", "two", 3, &existed), BP_OK);
    assert_int_equal(files_in(dir, "new"), 2);
}

static void test_refusals(void **state)
{
    (void)state;
    char dir[128], file[128];
    snprintf(dir, sizeof(dir), "%s/q", base);
    static const char *const bad[] = {"", "../escape", "a/b", ".hidden", "with space", "colon:2,S"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (bp_quarantine_write(dir, bad[i], "x", 1, NULL) != BP_ERR_USAGE)
            fail_msg("name '%s' was accepted", bad[i]);
    /* a directory that cannot be made (its parent is a file) */
    snprintf(file, sizeof(file), "%s/plainfile", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/plainfile/q", base);
    assert_int_equal(bp_quarantine_write(dir, "fp", "x", 1, NULL), BP_ERR_IO);
}

static void test_write_failure_leaves_nothing(void **state)
{
    (void)state;
    char dir[128], path[160];
    snprintf(dir, sizeof(dir), "%s/full", base);
    /* create the Maildir first, then limit file size: the write fails like a full disk */
    assert_int_equal(bp_quarantine_write(dir, "small", "x", 1, NULL), BP_OK);
    struct rlimit old, tiny = {16, 16};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    tiny.rlim_max = old.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    char big[4096];
    memset(big, 'a', sizeof(big));
    bp_status st = bp_quarantine_write(dir, "big", big, sizeof(big), NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st, BP_ERR_IO);
    snprintf(path, sizeof(path), "%s/new/big", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(files_in(dir, "tmp"), 0);
    assert_int_equal(files_in(dir, "new"), 1);
}

/* Issue 19 item 5: a symbolic link where the quarantine, its subdirectories or a directory made
 * for it would be is refused (ELOOP), never followed to write somewhere else - dangling or not. */
static void test_symlinks_refused(void **state)
{
    (void)state;
    char target[128], dir[160], link_path[224], path[224];
    snprintf(target, sizeof(target), "%s/elsewhere", base);
    assert_int_equal(mkdir(target, 0700), 0);
    static const struct {
        const char *label, *link, *dir; /* the link (relative to base) and the quarantine */
        int dangling;
    } rows[] = {
        {"the quarantine itself", "q1", "q1", 0},
        {"the quarantine itself, dangling", "q2", "q2", 1},
        {"the quarantine itself, with a trailing slash", "q3", "q3/", 0},
        {"a directory it would make", "q4", "q4/sub/q", 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(link_path, sizeof(link_path), "%s/%s", base, rows[i].link);
        snprintf(path, sizeof(path), "%s/%s", target, rows[i].dangling ? "missing" : ".");
        assert_int_equal(symlink(path, link_path), 0);
        snprintf(dir, sizeof(dir), "%s/%s", base, rows[i].dir);
        errno = 0;
        bp_status st = bp_quarantine_write(dir, "fp", "x", 1, NULL);
        if (st != BP_ERR_IO || errno != ELOOP)
            fail_msg("%s: got %s (%s), want BP_ERR_IO and ELOOP", rows[i].label, bp_status_to_string(st),
                     strerror(errno));
    }
    assert_int_equal(count_files(target), 0); /* nothing was made or written through a link */

    /* tmp/ and new/ planted as links in a real quarantine */
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(dir, sizeof(dir), "%s/s%zu", base, i);
        assert_int_equal(mkdir(dir, 0750), 0);
        snprintf(link_path, sizeof(link_path), "%s/%s", dir, subs[i]);
        assert_int_equal(symlink(target, link_path), 0);
        errno = 0;
        if (bp_quarantine_write(dir, "fp", "x", 1, NULL) != BP_ERR_IO || errno != ELOOP)
            fail_msg("%s/ as a link: not refused (%s)", subs[i], strerror(errno));
    }
    assert_int_equal(count_files(target), 0);

    /* a parent that exists as a link is the operator's layout: followed */
    snprintf(link_path, sizeof(link_path), "%s/parent", base);
    assert_int_equal(symlink(target, link_path), 0);
    snprintf(dir, sizeof(dir), "%s/parent/q", base);
    assert_int_equal(bp_quarantine_write(dir, "fp", "x", 1, NULL), BP_OK);
    snprintf(path, sizeof(path), "%s/q/new/fp", target);
    assert_int_equal(access(path, F_OK), 0);
}

/* Set the modification time of @p path @p age seconds into the past. */
static void age(const char *path, long age_seconds)
{
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_seconds;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);
}

static void put_file(const char *dir, const char *sub, const char *name, long age_seconds)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    age(path, age_seconds);
}

/* Issue 19 item 6: what a SIGKILL left in tmp/ goes after 36 hours (a live delivery's file is
 * young and stays); with a retention, kept messages past it go; the stamp spaces sweeps. */
static void test_sweep(void **state)
{
    (void)state;
    char dir[128], path[192];
    snprintf(dir, sizeof(dir), "%s/q", base);
    assert_int_equal(bp_quarantine_write(dir, "fresh", "x", 1, NULL), BP_OK);
    put_file(dir, "tmp", "killed.1234", BP_QUARANTINE_TMP_MAX_AGE + 60);
    put_file(dir, "tmp", "live.5678", 60);
    put_file(dir, "new", "old-new", 40L * 86400);
    put_file(dir, "cur", "old-cur:2,S", 40L * 86400);
    put_file(dir, "cur", "recent:2,S", 10L * 86400);

    bp_quarantine_sweep_options keep_all = {0, 0};
    bp_quarantine_swept done;
    assert_int_equal(bp_quarantine_sweep(dir, &keep_all, &done), BP_OK);
    assert_int_equal(done.swept, 1);
    assert_int_equal(done.tmp_removed, 1);
    assert_int_equal(done.kept_removed, 0);
    assert_int_equal(files_in(dir, "tmp"), 1); /* the live one */
    snprintf(path, sizeof(path), "%s/tmp/live.5678", dir);
    assert_int_equal(access(path, F_OK), 0);

    /* retention 30 days, but a sweep ran a moment ago: nothing until the interval passed */
    bp_quarantine_sweep_options month = {30, BP_QUARANTINE_SWEEP_INTERVAL};
    assert_int_equal(bp_quarantine_sweep(dir, &month, &done), BP_OK);
    assert_int_equal(done.swept, 0);
    snprintf(path, sizeof(path), "%s/.bouncepipe-sweep", dir);
    age(path, BP_QUARANTINE_SWEEP_INTERVAL + 1);
    assert_int_equal(bp_quarantine_sweep(dir, &month, &done), BP_OK);
    assert_int_equal(done.swept, 1);
    assert_int_equal(done.kept_removed, 2);
    assert_int_equal(files_in(dir, "new"), 1); /* "fresh" */
    assert_int_equal(files_in(dir, "cur"), 1); /* "recent" */

    /* nothing to sweep yet is no error; a link in place of the quarantine is not followed */
    snprintf(path, sizeof(path), "%s/none", base);
    assert_int_equal(bp_quarantine_sweep(path, &keep_all, &done), BP_OK);
    assert_int_equal(done.swept, 0);
    snprintf(path, sizeof(path), "%s/qlink", base);
    assert_int_equal(symlink(dir, path), 0);
    assert_int_equal(bp_quarantine_sweep(path, &keep_all, &done), BP_ERR_IO);
}

/* Register test @p f with a temporary directory for the quarantines (setup / teardown). */
#define QUARANTINE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(QUARANTINE_TEST(test_write_and_modes), QUARANTINE_TEST(test_same_message_once),
             QUARANTINE_TEST(test_refusals), QUARANTINE_TEST(test_write_failure_leaves_nothing),
             QUARANTINE_TEST(test_symlinks_refused), QUARANTINE_TEST(test_sweep))
