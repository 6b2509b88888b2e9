/*
 * test_support.h - what the cmocka tests share: a per-test arena as the test state, and
 * string comparisons that print got/want.  Include after <cmocka.h>.
 */
#ifndef BOUNCEPIPE_TEST_SUPPORT_H
#define BOUNCEPIPE_TEST_SUPPORT_H

#include <string.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"

/* A test program's main(): its tests (cmocka_unit_test(...) or a file's own *_TEST(...)
 * entries) run as one group, the exit status the number that failed. */
#define BP_TEST_MAIN(...)                                                                                              \
    int main(void)                                                                                                     \
    {                                                                                                                  \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                                               \
        return cmocka_run_group_tests(tests, NULL, NULL);                                                              \
    }

/* An allocation fault hook (bp_alloc_set_fault()) that fails every allocation. */
static inline int bp_test_fail_all(void *user, size_t size)
{
    (void)user;
    (void)size;
    return 1;
}

/* Setup: a fresh arena as *state (and GMime initialised, for tests that parse). */
static inline int bp_test_arena_setup(void **state)
{
    bp_mime_init();
    *state = bp_arena_new();
    return *state == NULL;
}

static inline int bp_test_arena_teardown(void **state)
{
    bp_arena_free(*state);
    return 0;
}

/* Fail with "LABEL: got X, want Y" unless @p got equals @p want (NULL equals NULL only). */
static inline void bp_test_check_str(const char *label, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", label, got ? got : "(null)", want ? want : "(null)");
}

/* The same for one field of a table row: "LABEL: WHAT: got "X", want "Y"". */
static inline void bp_test_check_field(const char *label, const char *what, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: %s: got \"%s\", want \"%s\"", label, what, got ? got : "(null)", want ? want : "(null)");
}

/* ---- string tables and per-test arenas (the report, classify and scanner tests) ---- */

/* Register test @p f with a fresh arena as its state (bp_test_arena_setup()). */
#define BP_ARENA_TEST(f) cmocka_unit_test_setup_teardown(f, bp_test_arena_setup, bp_test_arena_teardown)

/* One row of a string table: a case name, its input, the string wanted (NULL: none). */
typedef struct bp_test_str_case {
    const char *label, *input, *want;
} bp_test_str_case;

/* What a string table tests: @p input through the function under test, with @p ctx (an
 * arena, or NULL); NULL for "no result". */
typedef const char *(*bp_test_str_fn)(void *ctx, const char *input);

/* Run @p fn over the @p n rows and fail with "LABEL: got X, want Y" at the first wrong one. */
static inline void bp_test_str_cases(const bp_test_str_case *rows, size_t n, bp_test_str_fn fn, void *ctx)
{
    for (size_t i = 0; i < n; i++)
        bp_test_check_str(rows[i].label, fn(ctx, rows[i].input), rows[i].want);
}

#define BP_TEST_STR_CASES(rows, fn, ctx) bp_test_str_cases(rows, sizeof(rows) / sizeof((rows)[0]), fn, ctx)

/* ---- dedupt1: captured output, substring checks, a sample event ---------------------------- */

#include <stdio.h>
#include <stdlib.h>

#include "bouncepipe/event.h"

/* Output written to memory: bp_test_capture_open() gives the stream, bp_test_capture_close()
 * closes it and hands back what was written (NUL-terminated; the caller frees it). */
typedef struct bp_test_capture {
    char *buf;
    size_t len;
    FILE *f;
} bp_test_capture;

static inline FILE *bp_test_capture_open(bp_test_capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    return c->f;
}

static inline char *bp_test_capture_close(bp_test_capture *c)
{
    assert_int_equal(fclose(c->f), 0);
    c->f = NULL;
    return c->buf;
}

/* Fail with "LABEL: got X, want it to contain Y" unless @p got holds each of the @p n strings
 * of @p want. */
static inline void bp_test_check_contains(const char *label, const char *got, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got == NULL || strstr(got, want[i]) == NULL)
            fail_msg("%s: got %s, want it to contain %s", label, got ? got : "(null)", want[i]);
}

/* An event of @p type for @p rcpt with @p category and @p action, final when it suppresses,
 * read from "test"; every other field empty, for the caller to set.  Nothing is copied. */
static inline bp_event bp_test_event(bp_event_type type, const char *rcpt, const char *category, bp_action action)
{
    bp_event e;
    memset(&e, 0, sizeof(e));
    e.type = type;
    e.recipient = rcpt;
    e.category = category;
    e.action = action;
    e.final = action == BP_ACT_SUPPRESS;
    e.source = "test";
    return e;
}

/* A hard bounce of jdoe@example.net (5.1.1, 550, bad-mailbox, suppress) read from @p source;
 * every other field empty, for the caller to set.  The strings are literals. */
static inline bp_event bp_test_sample_bounce(const char *source)
{
    bp_event e = bp_test_event(BP_EVENT_BOUNCE, "jdoe@example.net", "bad-mailbox", BP_ACT_SUPPRESS);
    e.final = 0; /* as the printer and webhook tests built it */
    e.source = source;
    e.status = "5.1.1";
    e.smtp_code = "550";
    return e;
}

/* ---- dedupt1: a store in a temporary directory --------------------------------------------- */

#include <ftw.h>

#include "bouncepipe/process.h"
#include "bouncepipe/store.h"

/* Make the directory /tmp/bp-test-@p name-XXXXXX into @p dir (@p dir_size bytes) and name the
 * file @p file in it into @p path (@p path_size bytes); @return 0, or -1 when it cannot. */
static inline int bp_test_tmpdir(char *dir, size_t dir_size, const char *name, char *path, size_t path_size,
                                 const char *file)
{
    if ((size_t)snprintf(dir, dir_size, "/tmp/bp-test-%s-XXXXXX", name) >= dir_size || mkdtemp(dir) == NULL)
        return -1;
    return (size_t)snprintf(path, path_size, "%s/%s", dir, file) < path_size ? 0 : -1;
}

static inline int bp_test_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove the directory @p dir made by bp_test_tmpdir() and all it holds (the store with its
 * -wal, -shm and -journal files, a quarantine); @return 0, or -1 (also for any other path:
 * only /tmp/bp-test-* is removed). */
static inline int bp_test_rmtree(const char *dir)
{
    static const char ours[] = "/tmp/bp-test-";
    if (strncmp(dir, ours, sizeof(ours) - 1) != 0 || strstr(dir, "/..") != NULL)
        return -1;
    return nftw(dir, bp_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open the store at @p location with @p o (NULL: the defaults); fails the test, with the
 * store's message, when it cannot.  The caller closes it. */
static inline bp_store *bp_test_open_store(const char *location, const bp_store_options *o)
{
    bp_store *s = NULL;
    char *err = NULL;
    bp_status st = bp_store_open(location, o, &s, &err);
    if (st != BP_OK)
        fail_msg("open %s: %s: %s", location, bp_status_to_string(st), err != NULL ? err : "");
    free(err);
    return s;
}

/* What the tests that finish messages work in: a store and a quarantine in a temporary
 * directory, an arena, and a pipeline with the defaults (its quarantine not set). */
typedef struct bp_test_store_fixture {
    char dir[64], db[96], quarantine[96];
    bp_store *store;
    bp_arena *arena;
    bp_pipeline pipeline;
} bp_test_store_fixture;

/* Free @p f, its store closed and its directory removed; @return 0, or -1 when the directory
 * could not be removed.  NULL is a no-op. */
static inline int bp_test_store_fixture_free(bp_test_store_fixture *f)
{
    if (f == NULL)
        return 0;
    bp_store_close(f->store);
    bp_arena_free(f->arena);
    int failed = f->dir[0] != '\0' ? bp_test_rmtree(f->dir) : 0;
    free(f);
    return failed;
}

/* A new fixture in /tmp/bp-test-@p name-XXXXXX (GMime initialised); NULL, said on standard
 * error, when it cannot be made.  Free it with bp_test_store_fixture_free(). */
static inline bp_test_store_fixture *bp_test_store_fixture_new(const char *name)
{
    bp_mime_init();
    bp_test_store_fixture *f = calloc(1, sizeof(*f));
    char *err = NULL;
    if (f == NULL || bp_test_tmpdir(f->dir, sizeof(f->dir), name, f->db, sizeof(f->db), "store.db") != 0 ||
        (f->arena = bp_arena_new()) == NULL || bp_store_open(f->db, NULL, &f->store, &err) != BP_OK) {
        fprintf(stderr, "%s fixture: %s\n", name, err != NULL ? err : "cannot make it");
        free(err);
        bp_test_store_fixture_free(f);
        return NULL;
    }
    snprintf(f->quarantine, sizeof(f->quarantine), "%s/quarantine", f->dir);
    bp_pipeline_init(&f->pipeline);
    return f;
}

#endif
