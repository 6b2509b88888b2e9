/*
 * test_limits.c - the limits of include/bouncepipe/limits.h hold end to end: a source never
 * keeps more than one message of at most BP_MAX_MESSAGE_BYTES however long its lines, a
 * report over BP_MAX_RECIPIENTS keeps that many and counts the rest, and a message over a
 * structure limit still yields its events.  (The MIME limits themselves: test_mime.c; the
 * PCRE2 limits: test_rules.c; hostile whole messages: tests/system/broken_run.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "bouncepipe/text.h"
#include "test_support.h"

struct fixture {
    char dir[64];
    char path[128];
    bp_arena *arena;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (bp_test_tmpdir(f->dir, sizeof(f->dir), "limits", f->path, sizeof(f->path), "input") != 0)
        return -1;
    f->arena = bp_arena_new();
    *state = f;
    return f->arena == NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int failed = bp_test_rmtree(f->dir);
    bp_arena_free(f->arena);
    free(f);
    return failed;
}

static void put_repeat(FILE *fp, char c, size_t n)
{
    char chunk[4096];
    memset(chunk, c, sizeof(chunk));
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        assert_int_equal(fwrite(chunk, 1, k, fp), k);
        n -= k;
    }
}

/* The next message of @p src, which must have one more. */
static bp_source_msg next_message(bp_source *src)
{
    bp_source_msg msg;
    int done = 0;
    assert_int_equal(bp_source_next(src, &msg, &done), BP_OK);
    assert_false(done);
    return msg;
}

/* An mbox whose lines are far longer than the source's read chunk, with a message over
 * BP_MAX_MESSAGE_BYTES in the middle: every message comes out, the long one cut at the limit
 * and flagged, and the one after it whole. */
static void test_mbox_long_lines_and_huge_message(void **state)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fputs("From MAILER-DAEMON Sun Nov 22 01:00:00 2026\nSubject: one\nX-Long: ", fp);
    put_repeat(fp, 'a', 300000);
    fputs("\n\nbody one\n\nFrom MAILER-DAEMON ", fp);
    put_repeat(fp, 'e', 200000); /* a separator line longer than a chunk */
    fputs("\nSubject: two\n\n", fp);
    put_repeat(fp, 'b', (size_t)BP_MAX_MESSAGE_BYTES + 100000); /* one line, over the limit */
    fputs("\n\nFrom MAILER-DAEMON Sun Nov 22 01:00:02 2026\nSubject: three\n\n>From the start\nend\n", fp);
    assert_int_equal(fclose(fp), 0);

    bp_source *src = NULL;
    assert_int_equal(bp_source_open(f->path, &src), BP_OK);
    bp_source_msg msg = next_message(src);
    assert_false(msg.truncated);
    assert_true(msg.len > 300000 && msg.len < 301000);
    assert_non_null(strstr(msg.data, "body one"));
    assert_string_equal(strrchr(msg.name, '#'), "#1");

    msg = next_message(src);
    assert_true(msg.truncated);
    assert_true(msg.len <= BP_MAX_MESSAGE_BYTES);
    assert_memory_equal(msg.data, "Subject: two\n", 13); /* the separator's tail is not message text */

    msg = next_message(src);
    assert_false(msg.truncated);
    assert_string_equal(msg.data, "Subject: three\n\nFrom the start\nend\n");
    assert_string_equal(strrchr(msg.name, '#'), "#3");

    int done = 0;
    assert_int_equal(bp_source_next(src, &msg, &done), BP_OK);
    assert_true(done);
    bp_source_close(src);
}

/* A plain file of one line with no newline, over the limit: read to the limit, flagged. */
static void test_plain_file_without_newline(void **state)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fputs("Subject: x\n\n", fp);
    put_repeat(fp, 'c', (size_t)BP_MAX_MESSAGE_BYTES);
    assert_int_equal(fclose(fp), 0);
    bp_source *src = NULL;
    assert_int_equal(bp_source_open(f->path, &src), BP_OK);
    bp_source_msg msg = next_message(src);
    assert_true(msg.truncated);
    assert_true(msg.len <= BP_MAX_MESSAGE_BYTES);
    assert_true(msg.len > BP_MAX_MESSAGE_BYTES - 65536);
    bp_source_close(src);
}

/* Read @p msg (@p len bytes) as pipe mode would, with a fresh pipeline, into @p res. */
static void process(struct fixture *f, const char *msg, size_t len, bp_process_result *res)
{
    bp_pipeline p;
    bp_pipeline_init(&p);
    assert_int_equal(bp_process_message(&p, NULL, 0, msg, len, f->arena, res), BP_OK);
}

/* A report with more recipient groups than BP_MAX_RECIPIENTS: exactly that many events,
 * the rest counted as dropped, nothing lost silently. */
static void test_recipient_limit(void **state)
{
    struct fixture *f = *state;
    size_t extra = 500, n = BP_MAX_RECIPIENTS + extra;
    bp_strbuf msg = {0};
    assert_int_equal(bp_strbuf_puts(&msg, "From: MAILER-DAEMON@mx.example.net\nMIME-Version: 1.0\n"
                                          "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                                          "--B\nContent-Type: message/delivery-status\n\n"
                                          "Reporting-MTA: dns; mx.example.net\n"),
                     BP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bp_strbuf_printf(&msg,
                                          "\nFinal-Recipient: rfc822; user%zu@example.com\nAction: failed\n"
                                          "Status: 5.1.1\n",
                                          i),
                         BP_OK);
    assert_int_equal(bp_strbuf_puts(&msg, "--B--\n"), BP_OK);

    bp_process_result res;
    process(f, msg.data, msg.len, &res);
    assert_int_equal(res.report.kind, BP_REPORT_DSN);
    assert_int_equal(res.n_events, BP_MAX_RECIPIENTS);
    assert_int_equal(res.report.n_blocks_dropped, extra);
    assert_string_equal(res.events[0].recipient, "user0@example.com");
    bp_strbuf_free(&msg);
}

/* The same for a plain-text bounce: its recipient list grows as addresses are found, and
 * stops at BP_MAX_RECIPIENTS in the order of the text. */
static void test_text_bounce_recipient_limit(void **state)
{
    struct fixture *f = *state;
    size_t n = BP_MAX_RECIPIENTS + 50;
    bp_strbuf msg = {0};
    assert_int_equal(bp_strbuf_puts(&msg, "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
                                          "To: bounces@sender.example\nSubject: Undelivered Mail Returned to Sender\n\n"
                                          "This message could not be delivered to the following recipients:\n\n"),
                     BP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bp_strbuf_printf(&msg, "user%zu@example.com: mailbox unavailable\n", i), BP_OK);

    bp_process_result res;
    process(f, msg.data, msg.len, &res);
    assert_int_equal(res.report.kind, BP_REPORT_TEXT);
    assert_int_equal(res.n_events, BP_MAX_RECIPIENTS);
    assert_string_equal(res.events[0].recipient, "user0@example.com");
    char last[64];
    snprintf(last, sizeof(last), "user%u@example.com", BP_MAX_RECIPIENTS - 1);
    assert_string_equal(res.events[BP_MAX_RECIPIENTS - 1].recipient, last);
    bp_strbuf_free(&msg);
}

/* A message cut by a structure limit still yields what came before the cut. */
static void test_cut_message_still_yields_events(void **state)
{
    struct fixture *f = *state;
    static const char head[] = "From: MAILER-DAEMON@mx.example.net\nMIME-Version: 1.0\n"
                               "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                               "--B\nContent-Type: message/delivery-status\n\n"
                               "Reporting-MTA: dns; mx.example.net\n\n"
                               "Final-Recipient: rfc822; alice@example.com\nAction: failed\nStatus: 5.1.1\n"
                               "--B\nContent-Type: text/plain\n\n";
    size_t cap = sizeof(head) + (BP_MAX_MIME_DASH_LINES + 10) * 4, len = sizeof(head) - 1;
    char *msg = malloc(cap);
    assert_non_null(msg);
    memcpy(msg, head, len);
    for (size_t i = 0; i < BP_MAX_MIME_DASH_LINES + 10; i++, len += 4)
        memcpy(msg + len, "--\n\n", 4);
    bp_process_result res;
    process(f, msg, len, &res);
    assert_true(res.mime.input_cut);
    assert_int_equal(res.n_events, 1);
    assert_string_equal(res.events[0].recipient, "alice@example.com");
    free(msg);
}

/* Register test @p f with a temporary directory and an arena (setup / teardown). */
#define LIMITS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(LIMITS_TEST(test_mbox_long_lines_and_huge_message), LIMITS_TEST(test_plain_file_without_newline),
             LIMITS_TEST(test_text_bounce_recipient_limit), LIMITS_TEST(test_recipient_limit),
             LIMITS_TEST(test_cut_message_still_yields_events))
