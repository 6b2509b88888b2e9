/*
 * test_process.c - the core (process.h): a message finished the same way for every front end.
 * The message's own Date read by GMime's parser becomes the evidence time; the envelope
 * reaches the events; "record it or quarantine it" (a pipeline with a quarantine keeps an
 * unrecognised message there once, a retry finds it kept); a recognised message is recorded
 * once and a retry is a duplicate; an accounting result is recorded once, a delivery resets.
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

#include "bouncepipe/process.h"
#include "test_support.h"

typedef bp_test_store_fixture fixture;

static const char dsn_message[] =
    "Return-Path: <>\n"
    "Date: Tue, 10 Mar 2026 10:05:31 +0100 (CET)\n"
    "From: MAILER-DAEMON@mx1.example.net\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "Message-Id: <dsn.1@mx1.example.net>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
    "--B\nContent-Type: text/plain\n\nI could not deliver your message.\n"
    "--B\nContent-Type: message/delivery-status\n\n"
    "Reporting-MTA: dns; mx1.example.net\n\n"
    "Final-Recipient: rfc822; jdoe@example.com\nAction: failed\nStatus: 5.1.1\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown\n"
    "--B--\n";

static const char human_message[] = "From: someone@example.org\nTo: bounces@bounces.example.com\n"
                                    "Subject: re: newsletter\nMessage-Id: <human.1@example.org>\n\n"
                                    "Please call me.\n";

static int setup(void **state)
{
    *state = bp_test_store_fixture_new("process");
    return *state == NULL;
}

static int teardown(void **state)
{
    return bp_test_store_fixture_free(*state);
}

static void process(fixture *f, const char *msg, bp_process_result *res)
{
    bp_envelope env = {"test.eml", "bounces-jdoe=example.com@bounces.example.com", "env-7"};
    assert_int_equal(bp_process_message(&f->pipeline, &env, 0, msg, strlen(msg), f->arena, res), BP_OK);
}

static void test_date_and_envelope(void **state)
{
    fixture *f = *state;
    bp_process_result res;
    process(f, dsn_message, &res);
    assert_int_equal(res.date, 1773133531LL); /* 2026-03-10 09:05:31 UTC */
    bp_test_check_str("message id", res.message_id, "<dsn.1@mx1.example.net>");
    assert_non_null(res.fingerprint);
    assert_int_equal(res.n_events, 1);
    bp_test_check_str("source", res.events[0].source, "test.eml");
    bp_test_check_str("envid", res.events[0].envid, "env-7");
    assert_int_equal(res.events[0].action, BP_ACT_SUPPRESS);
    static const char two_dates[] = "Date: Tue, 10 Mar 2026 10:05:31 +0100\nDate: Wed, 11 Mar 2026 00:00:00 +0000\n"
                                    "From: a@example.org\nMessage-Id: <two@example.org>\n\nhello\n";
    process(f, two_dates, &res); /* the first Date counts */
    assert_int_equal(res.date, 1773133531LL);
    static const char bad_date[] = "Date: someday\nFrom: a@example.org\n\nhello\n";
    process(f, bad_date, &res);
    assert_int_equal(res.date, 0);
    process(f, human_message, &res); /* no Date header */
    assert_int_equal(res.date, 0);
    /* the VERP envelope names the recipient of what nothing recognised */
    bp_test_check_str("verp recipient", res.events[0].recipient, "jdoe@example.com");
    bp_envelope bare = {"-", NULL, NULL};
    assert_int_equal(bp_process_message(&f->pipeline, &bare, BP_PROCESS_NO_FINGERPRINT | BP_PROCESS_EXPLAIN,
                                        dsn_message, strlen(dsn_message), f->arena, &res),
                     BP_OK);
    assert_null(res.fingerprint);
    assert_non_null(res.explains);
}

static void test_decide(void **state)
{
    fixture *f = *state;
    bp_process_result dsn, human;
    process(f, dsn_message, &dsn);
    process(f, human_message, &human);
    assert_int_equal(bp_finish_decide(&f->pipeline, &human), BP_KEEP_RECORD); /* no quarantine: replay */
    f->pipeline.quarantine_dir = f->quarantine;
    assert_int_equal(bp_finish_decide(&f->pipeline, &human), BP_KEEP_QUARANTINE);
    assert_int_equal(bp_finish_decide(&f->pipeline, &dsn), BP_KEEP_RECORD);
}

static void test_finish_message(void **state)
{
    fixture *f = *state;
    f->pipeline.quarantine_dir = f->quarantine;
    bp_process_result res;
    bp_finish_result fin;
    process(f, dsn_message, &res);
    assert_int_equal(bp_finish_message(&f->pipeline, f->store, &res, dsn_message, strlen(dsn_message), &fin), BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_RECORDED);
    assert_int_equal(fin.suppressed, 1);
    assert_int_equal(bp_finish_message(&f->pipeline, f->store, &res, dsn_message, strlen(dsn_message), &fin), BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_DUPLICATE);

    process(f, human_message, &res);
    assert_int_equal(bp_finish_message(&f->pipeline, f->store, &res, human_message, strlen(human_message), &fin),
                     BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_QUARANTINED);
    char path[256];
    snprintf(path, sizeof(path), "%s/new", f->quarantine);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(bp_finish_message(&f->pipeline, f->store, &res, human_message, strlen(human_message), &fin),
                     BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_KEPT_BEFORE);

    /* a quarantine that cannot be written: the step and errno say so, the store is untouched */
    char blocked[160]; /* under a regular file: no directory can be made there, not even by root */
    snprintf(blocked, sizeof(blocked), "%s/store.db/quarantine", f->dir);
    f->pipeline.quarantine_dir = blocked;
    static const char other[] = "From: a@example.org\nMessage-Id: <other@example.org>\n\nhello\n";
    process(f, other, &res);
    assert_int_not_equal(bp_finish_message(&f->pipeline, f->store, &res, other, strlen(other), &fin), BP_OK);
    assert_int_equal(fin.step, BP_FINISH_QUARANTINE);
    assert_int_not_equal(fin.error_number, 0);
    int seen = 1;
    assert_int_equal(bp_store_seen(f->store, res.fingerprint, &seen), BP_OK);
    assert_int_equal(seen, 0);
}

static void test_finish_record(void **state)
{
    fixture *f = *state;
    bp_process_result res;
    process(f, dsn_message, &res);
    bp_record_result rr;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_finish_record(&f->pipeline, f->store, &res, &rr), BP_OK);
    assert_int_equal(rr.outcome, BP_RECORD_NEW);
    assert_int_equal(bp_finish_record(&f->pipeline, f->store, &res, &rr), BP_OK);
    assert_int_equal(rr.outcome, BP_RECORD_DUPLICATE);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
}

static int first_seen(void *user, const bp_suppression *r)
{
    *(long long *)user = r->first_seen;
    return 0;
}

static void test_evidence_time(void **state)
{
    fixture *f = *state;
    bp_process_result res;
    bp_finish_result fin;
    process(f, dsn_message, &res);
    assert_int_equal(bp_finish_message(&f->pipeline, f->store, &res, dsn_message, strlen(dsn_message), &fin), BP_OK);
    long long when = 0;
    assert_int_equal(bp_store_lookup(f->store, "jdoe@example.com", first_seen, &when), BP_OK);
    assert_int_equal(when, 1773133531LL); /* the report's own Date, not the time it was recorded */
}

static void test_finish_acct(void **state)
{
    fixture *f = *state;
    bp_acct_options opts;
    bp_pipeline_acct_options(&f->pipeline, "acct.csv", 0, &opts);
    bp_acct_record rec = {.type = "b",
                          .time_logged = "1795169704",
                          .orig = "bounces@bounces.example.com",
                          .rcpt = "ann@example.net",
                          .dsn_status = "5.1.1 (bad destination mailbox address)",
                          .dsn_diag = "smtp;550 5.1.1 User unknown",
                          .bounce_cat = "bad-mailbox",
                          .keyed_by_values = 1,
                          .line = 2};
    bp_acct_result res;
    assert_int_equal(bp_acct_record_event(&opts, &rec, f->arena, &res), BP_OK);
    bp_acct_kept kept;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_finish_acct(&f->pipeline, f->store, &res, 0, &kept), BP_OK);
    assert_int_equal(kept, BP_ACCT_KEPT_NEW);
    assert_int_equal(bp_finish_acct(&f->pipeline, f->store, &res, 0, &kept), BP_OK);
    assert_int_equal(kept, BP_ACCT_KEPT_DUPLICATE);
    rec.type = "d";
    rec.dsn_status = "2.0.0";
    rec.time_logged = "1795169800";
    assert_int_equal(bp_acct_record_event(&opts, &rec, f->arena, &res), BP_OK);
    assert_int_equal(res.disposition, BP_ACCT_DELIVERY);
    assert_int_equal(bp_finish_acct(&f->pipeline, f->store, &res, 0, &kept), BP_OK);
    assert_int_equal(kept, BP_ACCT_KEPT_DELIVERY);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    long long when = 0;
    assert_int_equal(bp_store_lookup(f->store, "ann@example.net", first_seen, &when), BP_OK);
    assert_int_equal(when, 1795169704LL); /* timeLogged */
}

/* Register test @p f with a store, a quarantine, an arena and a pipeline (setup / teardown). */
#define PROCESS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(PROCESS_TEST(test_date_and_envelope), PROCESS_TEST(test_decide), PROCESS_TEST(test_finish_message),
             PROCESS_TEST(test_finish_record), PROCESS_TEST(test_evidence_time), PROCESS_TEST(test_finish_acct))
