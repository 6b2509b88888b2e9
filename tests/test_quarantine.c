/*
 * test_quarantine.c - the quarantine Maildir writer: the file lands in new/ whole, tmp/ is
 * left empty, modes are 0750/0640 narrowed by a stricter umask, the same message is kept
 * once, bad names are refused, and a failed write (file size limit, like a full disk) leaves
 * nothing behind.
 */
#include <dirent.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/quarantine.h"

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
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base); /* our own mkdtemp name, no input in it */
    return system(cmd) != 0;
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
        snprintf(path, sizeof(path), "%s/tmp", dir);
        assert_int_equal(count_files(path), 0);
        assert_int_equal(mode_of(path), rows[i].dir);
        snprintf(path, sizeof(path), "%s/cur", dir);
        assert_int_equal(count_files(path), 0);
    }
}

static void test_same_message_once(void **state)
{
    (void)state;
    char dir[128], path[160];
    snprintf(dir, sizeof(dir), "%s/q", base);
    int existed = -1;
    assert_int_equal(bp_quarantine_write(dir, "fp1", "one", 3, &existed), BP_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(bp_quarantine_write(dir, "fp1", "one", 3, &existed), BP_OK);
    assert_int_equal(existed, 1);
    assert_int_equal(bp_quarantine_write(dir, "fp2", "two", 3, &existed), BP_OK);
    snprintf(path, sizeof(path), "%s/new", dir);
    assert_int_equal(count_files(path), 2);
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
    snprintf(path, sizeof(path), "%s/tmp", dir);
    assert_int_equal(count_files(path), 0);
    snprintf(path, sizeof(path), "%s/new", dir);
    assert_int_equal(count_files(path), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_message_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
