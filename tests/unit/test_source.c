/*
 * test_source.c - message sources through the public API (src/source/source.c): an mbox of
 * three messages with mboxrd ">From" escaping, a single-message mbox (named PATH, not
 * PATH#1), a Maildir (new/ before cur/, tmp/ skipped), a directory, directory symbolic link
 * loops read once, a CR-only file and standard input.  Files are written to a fresh mkdtemp() directory and removed
 * afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/source.h"
#include "test_support.h"

struct fixture {
    char dir[64];
    char *paths[16]; /* files and directories to remove, in creation order */
    size_t n_paths;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return 1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/bp_test_source.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return 1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = f->n_paths; i > 0; i--) {
        remove(f->paths[i - 1]);
        free(f->paths[i - 1]);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* @return the full path of @name inside the fixture directory (remembered for teardown). */
static const char *path_of(struct fixture *f, const char *name)
{
    assert_true(f->n_paths < sizeof(f->paths) / sizeof(f->paths[0]));
    size_t n = strlen(f->dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", f->dir, name);
    f->paths[f->n_paths++] = p;
    return p;
}

static const char *write_file(struct fixture *f, const char *name, const char *content)
{
    const char *p = path_of(f, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(content, 1, strlen(content), fp), strlen(content));
    assert_int_equal(fclose(fp), 0);
    return p;
}

static const char *make_dir(struct fixture *f, const char *name)
{
    const char *p = path_of(f, name);
    assert_int_equal(mkdir(p, 0700), 0);
    return p;
}

/* The messages of a source, their names and bodies copied (read_expect(), read_free()). */
struct messages {
    char *names[8], *bodies[8];
    size_t n;
};

/* Read every message of @p path into @p r; fails the test unless there are @p want of them. */
static void read_expect(const char *path, size_t want, struct messages *r)
{
    bp_source *s = NULL;
    assert_int_equal(bp_source_open(path, &s), BP_OK);
    r->n = 0;
    for (;;) {
        bp_source_msg m;
        int done = 0;
        bp_status st = bp_source_next(s, &m, &done);
        if (st != BP_OK)
            fail_msg("%s: bp_source_next got status %d, want BP_OK", path, (int)st);
        if (done)
            break;
        if (r->n == sizeof(r->names) / sizeof(r->names[0]))
            fail_msg("%s: more than %zu messages", path, r->n);
        char *name = strdup(m.name), *body = malloc(m.len + 1);
        assert_non_null(name);
        assert_non_null(body);
        memcpy(body, m.data, m.len);
        body[m.len] = '\0';
        r->names[r->n] = name;
        r->bodies[r->n++] = body;
    }
    bp_source_close(s);
    if (r->n != want)
        fail_msg("%s: got %zu messages, want %zu", path, r->n, want);
}

static void read_free(struct messages *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->bodies[i]);
    }
}

static void check_name(const char *label, const char *got, const char *dir, const char *suffix)
{
    char want[256];
    snprintf(want, sizeof(want), "%s/%s", dir, suffix);
    if (strcmp(got, want) != 0)
        fail_msg("%s: name got %s, want %s", label, got, want);
}

static void check_contains(const char *label, const char *body, const char *needle, int want)
{
    int got = strstr(body, needle) != NULL;
    if (got != want)
        fail_msg("%s: body %s \"%s\", want it %s", label, got ? "contains" : "lacks", needle,
                 want ? "present" : "absent");
}

/* What message @p msg of a source must (want 1) or must not (want 0) contain. */
struct contains {
    const char *label;
    size_t msg;
    const char *needle;
    int want;
};

static void check_bodies(const struct messages *r, const struct contains *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_contains(rows[i].label, r->bodies[rows[i].msg], rows[i].needle, rows[i].want);
}

static void test_mbox_three(void **state)
{
    struct fixture *f = *state;
    const char *p = write_file(f, "three.mbox",
                               "From MAILER-DAEMON  Tue Mar 10 09:40:00 2026\n"
                               "Subject: one\n"
                               "\n"
                               ">From the mail system: failed.\n"
                               "\n"
                               "From news@example.com  Tue Mar 10 09:41:00 2026\n"
                               "Subject: two\n"
                               "\n"
                               ">>From now on write to office@example.org.\n"
                               "From inside a paragraph is no separator\n"
                               "\n"
                               "From MAILER-DAEMON  Tue Mar 10 09:42:00 2026\n"
                               "Subject: three\n"
                               "\n"
                               "last\n");
    struct messages r;
    read_expect(p, 3, &r);
    check_name("mbox #1", r.names[0], f->dir, "three.mbox#1");
    check_name("mbox #2", r.names[1], f->dir, "three.mbox#2");
    check_name("mbox #3", r.names[2], f->dir, "three.mbox#3");
    static const struct contains rows[] = {
        {"mbox #1", 0, "Subject: one", 1},
        {"mbox #1 separator dropped", 0, "From MAILER-DAEMON", 0},
        {"mbox #1 unescaped", 0, "\nFrom the mail system", 1},
        {"mbox #1 no next message", 0, "Subject: two", 0},
        {"mbox #2 one > removed", 1, "\n>From now on", 1},
        {"mbox #2 no double >", 1, ">>From", 0},
        {"mbox #2 unblanked From kept", 1, "From inside a paragraph", 1},
        {"mbox #3", 2, "Subject: three", 1},
        {"mbox #3", 2, "last", 1},
    };
    check_bodies(&r, rows, sizeof(rows) / sizeof(rows[0]));
    read_free(&r);
}

/* Some writers omit the blank line before a separator; a full "From SENDER DAY MON ..." line
 * still separates, a loose "From " line in text still does not. */
static void test_mbox_separator_without_blank_line(void **state)
{
    struct fixture *f = *state;
    const char *p = write_file(f, "tight.mbox",
                               "From MAILER-DAEMON  Thu Jul  2 12:05:05 2020\n"
                               "Subject: one\n"
                               "\n"
                               "body one\n"
                               "From here on it is text\n"
                               "From double-bounce@example.com  Thu Jul  2 12:05:05 2020\n"
                               "Subject: two\n"
                               "\n"
                               "body two\n");
    struct messages r;
    read_expect(p, 2, &r);
    static const struct contains rows[] = {
        {"tight #1 keeps loose From", 0, "From here on it is text", 1},
        {"tight #1 ends before #2", 0, "Subject: two", 0},
        {"tight #2", 1, "Subject: two", 1},
    };
    check_bodies(&r, rows, sizeof(rows) / sizeof(rows[0]));
    read_free(&r);
}

static void test_single_message_mbox(void **state)
{
    struct fixture *f = *state;
    const char *p = write_file(f, "one.mbox", "From MAILER-DAEMON  Tue Mar 10 09:40:00 2026\nSubject: only\n\nbody\n");
    struct messages r;
    read_expect(p, 1, &r);
    check_name("single mbox", r.names[0], f->dir, "one.mbox");
    check_contains("single mbox", r.bodies[0], "Subject: only", 1);
    read_free(&r);
}

static void test_maildir(void **state)
{
    struct fixture *f = *state;
    const char *md = make_dir(f, "Maildir");
    make_dir(f, "Maildir/new");
    make_dir(f, "Maildir/cur");
    make_dir(f, "Maildir/tmp");
    write_file(f, "Maildir/cur/1710000000.M1P1.host:2,S", "Subject: seen\n\nold\n");
    write_file(f, "Maildir/new/1710000001.M2P2.host", "Subject: unseen\n\nnew\n");
    write_file(f, "Maildir/tmp/1710000002.M3P3.host", "Subject: partial\n\nhalf\n");
    struct messages r;
    read_expect(md, 2, &r);
    check_name("maildir new first", r.names[0], f->dir, "Maildir/new/1710000001.M2P2.host");
    check_name("maildir then cur", r.names[1], f->dir, "Maildir/cur/1710000000.M1P1.host:2,S");
    check_contains("maildir new", r.bodies[0], "Subject: unseen", 1);
    check_contains("maildir cur", r.bodies[1], "Subject: seen", 1);
    read_free(&r);
}

static void test_directory_in_name_order(void **state)
{
    struct fixture *f = *state;
    const char *d = make_dir(f, "dir");
    write_file(f, "dir/b.eml", "Subject: b\n\nb\n");
    write_file(f, "dir/a.eml", "Subject: a\n\na\n");
    write_file(f, "dir/.hidden", "Subject: hidden\n\nh\n");
    struct messages r;
    read_expect(d, 2, &r);
    check_name("dir first", r.names[0], f->dir, "dir/a.eml");
    check_name("dir second", r.names[1], f->dir, "dir/b.eml");
    read_free(&r);
}

static void make_link(struct fixture *f, const char *target, const char *name)
{
    assert_int_equal(symlink(target, path_of(f, name)), 0);
}

/* Issue 19 item 5: directory symbolic link loops are read once (a loop of two links made
 * 131,071 copies of one message); a link to a directory read anyway adds nothing; a link to a
 * directory read nowhere else is followed. */
static void test_directory_link_loops(void **state)
{
    struct fixture *f = *state;
    const char *d = make_dir(f, "tree");
    write_file(f, "tree/m.eml", "Subject: m\n\nm\n");
    make_dir(f, "tree/sub");
    write_file(f, "tree/sub/a.eml", "Subject: a\n\na\n");
    make_dir(f, "outside");
    write_file(f, "outside/o.eml", "Subject: o\n\no\n");
    make_link(f, ".", "tree/self");
    make_link(f, "..", "tree/sub/up");
    make_link(f, "sub", "tree/alias");
    make_link(f, "../outside", "tree/there");
    struct messages r;
    read_expect(d, 3, &r);
    check_name("first", r.names[0], f->dir, "tree/alias/a.eml"); /* the first path to reach sub/ */
    check_name("second", r.names[1], f->dir, "tree/m.eml");
    check_name("third", r.names[2], f->dir, "tree/there/o.eml");
    read_free(&r);
}

/* A file with CR line ends only reads as one message whose headers the MIME layer finds. */
static void test_cr_only_file(void **state)
{
    struct fixture *f = *state;
    const char *p = write_file(f, "cr.eml",
                               "From: MAILER-DAEMON@mx.example.net\rSubject: cr only\rMessage-ID: <cr@example.net>\r"
                               "\rbody line\r");
    struct messages r;
    read_expect(p, 1, &r);
    check_name("cr", r.names[0], f->dir, "cr.eml");
    assert_string_equal(r.bodies[0],
                        "From: MAILER-DAEMON@mx.example.net\rSubject: cr only\rMessage-ID: <cr@example.net>\r"
                        "\rbody line\r");
    bp_mime_init();
    bp_arena *arena = bp_arena_new();
    assert_non_null(arena);
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(r.bodies[0], strlen(r.bodies[0]), arena, &m), BP_OK);
    const char *subject = bp_part_header(m.root, "Subject");
    if (subject == NULL || strcmp(subject, "cr only") != 0)
        fail_msg("cr: Subject got %s, want \"cr only\"", subject ? subject : "(null)");
    const char *mid = bp_part_header(m.root, "Message-ID");
    if (mid == NULL || strcmp(mid, "<cr@example.net>") != 0)
        fail_msg("cr: Message-ID got %s, want <cr@example.net>", mid ? mid : "(null)");
    bp_arena_free(arena);
    read_free(&r);
}

static void test_stdin(void **state)
{
    struct fixture *f = *state;
    const char *p = write_file(f, "stdin.eml", "Subject: from stdin\n\nhello\n");
    assert_non_null(freopen(p, "rb", stdin));
    struct messages r;
    read_expect("-", 1, &r);
    assert_string_equal(r.names[0], "-");
    assert_string_equal(r.bodies[0], "Subject: from stdin\n\nhello\n");
    read_free(&r);
}

static void test_missing_path(void **state)
{
    struct fixture *f = *state;
    char p[128];
    snprintf(p, sizeof(p), "%s/does-not-exist", f->dir);
    bp_source *s = NULL;
    assert_int_equal(bp_source_open(p, &s), BP_ERR_NOT_FOUND);
    assert_null(s);
}

/* Register test @p f with a fresh fixture directory as its state. */
#define SOURCE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(SOURCE_TEST(test_mbox_three), SOURCE_TEST(test_single_message_mbox),
             SOURCE_TEST(test_mbox_separator_without_blank_line), SOURCE_TEST(test_maildir),
             SOURCE_TEST(test_directory_in_name_order), SOURCE_TEST(test_directory_link_loops),
             SOURCE_TEST(test_cr_only_file), SOURCE_TEST(test_stdin), SOURCE_TEST(test_missing_path))
