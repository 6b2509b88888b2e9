/*
 * test_acct.c - the PowerMTA accounting stream (acct_csv.h: the CSV reader as PowerMTA writes,
 * values by column name) and the record -> event mapping (acct.h).
 *
 * Streams are built like PowerMTA writes them: a header naming the record-fields, CRLF line
 * ends, quoted dsnDiag values with commas, doubled quotes and line breaks, the header again
 * after a reload (with other columns), and streams cut mid-record.  Every stream is read twice,
 * once in one piece and once a byte at a time, and both readings must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/process.h"
#include "test_support.h"

/* What one stream gave, flattened for comparison: one line per outcome. */
typedef struct reading {
    char text[16384];
    size_t len;
    unsigned headers, records, malformed;
} reading;

static void add(reading *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(reading *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rd->text + rd->len, sizeof(rd->text) - rd->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(rd->text) - rd->len);
    rd->len += (size_t)n;
}

/* Drain the reader; records are written as "R<line>:" and their rcpt and dsnDiag by name. */
static void drain(bp_acct_reader *r, int at_eof, reading *rd)
{
    for (;;) {
        bp_csv_record raw;
        bp_acct_record rec;
        bp_csv_outcome o;
        assert_int_equal(bp_acct_reader_next(r, at_eof, &raw, &rec, &o), BP_OK);
        if (o == BP_CSV_NEED_MORE)
            return;
        if (o == BP_CSV_HEADER) {
            rd->headers++;
            add(rd, "H%lu:%zu\n", raw.line, raw.n_fields);
        } else if (o == BP_CSV_MALFORMED) {
            rd->malformed++;
            add(rd, "M%lu:%s\n", raw.line, raw.error);
        } else {
            rd->records++;
            assert_int_equal(rec.line, raw.line);
            add(rd, "R%lu:%s|%s|%s\n", rec.line, rec.type ? rec.type : "", rec.rcpt ? rec.rcpt : "-",
                rec.dsn_diag ? rec.dsn_diag : "-");
        }
    }
}

/* Read @p csv fed @p step bytes at a time (0: all at once). */
static void read_stream(const char *csv, size_t len, size_t step, reading *rd)
{
    bp_acct_reader *r = NULL;
    memset(rd, 0, sizeof(*rd));
    assert_int_equal(bp_acct_reader_new(&r), BP_OK);
    if (step == 0)
        step = len;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(bp_acct_reader_feed(r, csv + off, n), BP_OK);
        drain(r, 0, rd);
    }
    drain(r, 1, rd);
    bp_acct_reader_free(r);
}

/* Read a stream whole and byte by byte; both must agree; return the whole reading. */
static void read_both(const char *csv, reading *rd)
{
    reading bytewise;
    read_stream(csv, strlen(csv), 0, rd);
    read_stream(csv, strlen(csv), 1, &bytewise);
    if (strcmp(rd->text, bytewise.text) != 0)
        fail_msg("one piece and byte-at-a-time readings differ:\n--- whole\n%s--- bytewise\n%s", rd->text,
                 bytewise.text);
}

static void expect(const char *label, const reading *rd, const char *want)
{
    if (strcmp(rd->text, want) != 0)
        fail_msg("%s:\ngot:\n%swant:\n%s", label, rd->text, want);
}

/* A PowerMTA 5 default-ish layout, CRLF, dsnDiag quoted with a comma and doubled quotes. */
static const char layout_a[] =
    "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
    "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool\r\n"
    "d,2026-11-20 10:15:03+0000,2026-11-20 10:15:01+0000,bounces-42@bounces.example.com,ok@example.org,,relayed,"
    "2.0.0 (success),smtp;250 2.0.0 Ok: queued as 4F1C2,mx.example.org (192.0.2.30),,smtp,app1.example.com,"
    "smtp,192.0.2.10,192.0.2.30,\"PIPELINING,SIZE,STARTTLS\",2048,vmta1,job-7,,example.org/vmta1,pool1\r\n"
    "b,2026-11-20 10:15:04+0000,2026-11-20 10:15:01+0000,bounces-42@bounces.example.com,jdoe@example.net,,"
    "failed,5.1.1 (bad destination mailbox address),\"smtp;550 5.1.1 <jdoe@example.net>: Recipient address "
    "rejected: User unknown, \"\"jdoe\"\"\",mx.example.net (192.0.2.25),bad-mailbox,smtp,app1.example.com,smtp,"
    "192.0.2.10,192.0.2.25,,2048,vmta1,job-7,env-1,example.net/vmta1,pool1\r\n";

/* Streams and what the reader makes of them (each read whole and byte by byte, which must
 * agree): H<line>:<fields> a header, R<line>:type|rcpt|dsnDiag a record, M<line>:why a line
 * skipped. */
static void test_readings(void **state)
{
    (void)state;
    static const struct {
        const char *label, *csv, *want;
    } cases[] = {
        {"layout a", layout_a,
         "H1:23\n"
         "R2:d|ok@example.org|smtp;250 2.0.0 Ok: queued as 4F1C2\n"
         "R3:b|jdoe@example.net|smtp;550 5.1.1 <jdoe@example.net>: Recipient address rejected: User unknown, "
         "\"jdoe\"\n"},
        /* a reload with other record-fields: the second header replaces the first, mid-stream, LF ends */
        {"reload",
         "type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,bounceCat\n"
         "b,1763633704,bounces@bounces.example.com,a@example.net,5.1.1,smtp;550 no such user,bad-mailbox\n"
         "type,rcpt,dsnDiag,timeLogged,jobId\n"
         "b,b@example.net,smtp;552 mailbox full,1763633705,job-9\n"
         "type,rcpt,dsnDiag,timeLogged,jobId\n"
         "d,c@example.net,,1763633706,job-9\n",
         "H1:7\nR2:b|a@example.net|smtp;550 no such user\nH3:5\nR4:b|b@example.net|smtp;552 mailbox full\nH5:5\n"
         "R6:d|c@example.net|-\n"},
        /* quoted fields holding line breaks (CRLF and LF) count their lines; a trailing comma is
         * an empty last field; a quote inside an unquoted field is an ordinary byte */
        {"quoted newlines",
         "type,rcpt,dsnDiag,jobId\r\n"
         "b,x@example.jp,\"smtp;550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550-5.1.1 Please try double-checking, \"\"then\"\" retry.\r\n"
         "550 5.1.1 https://support.example.com/mail/?p=NoSuchUser\",\r\n"
         "b,y@example.jp,smtp;550 say \"hi\",job-2\r\n",
         "H1:4\n"
         "R2:b|x@example.jp|smtp;550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550-5.1.1 Please try double-checking, \"then\" retry.\r\n"
         "550 5.1.1 https://support.example.com/mail/?p=NoSuchUser\n"
         "R5:b|y@example.jp|smtp;550 say \"hi\"\n"},
        /* cuts: an unterminated last record; a record cut inside a quote by PowerMTA's restart
         * header; a record cut outside quotes and glued to the next line (wrong field count) */
        {"cut at end", "type,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 gone\r\nb,b@exam",
         "H1:3\nR2:b|a@example.net|smtp;550 gone\nM3:record cut by the end of the input (no line end)\n"},
        {"cut in quote, header follows",
         "type,rcpt,dsnDiag\r\n"
         "b,a@example.net,\"smtp;550 user unk\n"
         "type,rcpt,dsnDiag,jobId\r\n"
         "b,c@example.net,\"smtp;550 5.1.1, unknown\",job-3\r\n",
         "H1:3\nM2:record cut mid-field by a new header\nH3:4\nR4:b|c@example.net|smtp;550 5.1.1, unknown\n"},
        {"glued lines", "type,rcpt,dsnDiag\r\nb,a@examb,d@example.net,smtp;550 gone\r\nb,e@example.net,smtp;550 x\r\n",
         "H1:3\nM2:field count differs from the header's\nR3:b|e@example.net|smtp;550 x\n"},
        {"before header, blank line",
         "b,a@example.net,smtp;550 x\r\n\r\ntype,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 x\r\n",
         "M1:record before any header line\nH3:3\nR4:b|a@example.net|smtp;550 x\n"},
        {"UTF-8 BOM before the header", "\xEF\xBB\xBFtype,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 x\r\n",
         "H1:3\nR2:b|a@example.net|smtp;550 x\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reading rd;
        read_both(cases[i].csv, &rd);
        expect(cases[i].label, &rd, cases[i].want);
    }
}

static void test_malformed_lines(void **state)
{
    (void)state;
    reading rd;
    static const char nul_csv[] = "type,rcpt,dsnDiag\nb,a@exa\0mple.net,x\nb,b@example.net,y\n";
    read_stream(nul_csv, sizeof(nul_csv) - 1, 0, &rd);
    expect("NUL byte", &rd, "H1:3\nM2:NUL byte in record\nR3:b|b@example.net|y\n");

    /* more fields than the limit */
    size_t n = 2 * (BP_MAX_ACCT_FIELDS + 1) + 64;
    char *many = malloc(n);
    assert_non_null(many);
    size_t len = (size_t)snprintf(many, n, "type,rcpt\n");
    for (unsigned i = 0; i <= BP_MAX_ACCT_FIELDS; i++)
        many[len++] = i == BP_MAX_ACCT_FIELDS ? '\n' : ',';
    len += (size_t)snprintf(many + len, n - len, "b,z@example.net\n");
    read_stream(many, len, 0, &rd);
    expect("too many fields", &rd, "H1:2\nM2:more fields than BP_MAX_ACCT_FIELDS\nR3:b|z@example.net|-\n");
    free(many);
}

/* A record over BP_MAX_ACCT_LINE_BYTES is skipped and the reader finds the next line, whether
 * the long record arrives in one piece or in small reads, quoted or not. */
static void test_long_record(void **state)
{
    (void)state;
    for (int quoted = 0; quoted <= 1; quoted++) {
        size_t big = BP_MAX_ACCT_LINE_BYTES + 100;
        char *csv = malloc(big + 200);
        assert_non_null(csv);
        size_t len = (size_t)sprintf(csv, "type,rcpt,dsnDiag\nb,a@example.net,%s", quoted ? "\"" : "");
        memset(csv + len, 'x', big);
        len += big;
        len += (size_t)sprintf(csv + len, "%s\nb,b@example.net,ok\n", quoted ? "\"" : "");
        reading whole, pieces;
        read_stream(csv, len, 0, &whole);
        read_stream(csv, len, 4096, &pieces);
        expect("long record whole", &whole,
               "H1:3\nM2:record longer than BP_MAX_ACCT_LINE_BYTES\nR3:b|b@example.net|ok\n");
        expect("long record pieces", &pieces,
               "H1:3\nM2:record longer than BP_MAX_ACCT_LINE_BYTES\nR3:b|b@example.net|ok\n");
        free(csv);
    }
}

/* ---- records to events ---------------------------------------------------------------- */

typedef struct fixture {
    bp_arena *arena;
    bp_rules *rules;
    bp_policy policy;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return 1;
    f->arena = bp_arena_new();
    bp_policy_default(&f->policy);
    if (f->arena == NULL || bp_rules_new(&f->rules) != BP_OK ||
        bp_rules_load_builtin(f->rules, NULL, NULL, NULL) != BP_OK)
        return 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    bp_rules_free(f->rules);
    bp_arena_free(f->arena);
    free(f);
    return 0;
}

/* Map every data record of @p csv with @p o; results in @p out (at most @p max). */
static size_t map_stream_opts(fixture *f, const char *csv, const bp_acct_options *o, bp_acct_result *out, size_t max)
{
    bp_acct_reader *r = NULL;
    assert_int_equal(bp_acct_reader_new(&r), BP_OK);
    assert_int_equal(bp_acct_reader_feed(r, csv, strlen(csv)), BP_OK);
    size_t n = 0;
    for (;;) {
        bp_csv_record raw;
        bp_acct_record rec;
        bp_csv_outcome oc;
        assert_int_equal(bp_acct_reader_next(r, 1, &raw, &rec, &oc), BP_OK);
        if (oc == BP_CSV_NEED_MORE)
            break;
        if (oc != BP_CSV_RECORD)
            continue;
        assert_true(n < max);
        assert_int_equal(bp_acct_record_event(o, &rec, f->arena, &out[n]), BP_OK);
        n++;
    }
    bp_acct_reader_free(r);
    return n;
}

static size_t map_stream_verp(fixture *f, const char *csv, int transient, const bp_verp_options *verp,
                              bp_acct_result *out, size_t max)
{
    bp_acct_options o = {f->rules, &f->policy, verp, "acct.csv", transient, NULL, NULL, NULL};
    return map_stream_opts(f, csv, &o, out, max);
}

static size_t map_stream(fixture *f, const char *csv, int transient, bp_acct_result *out, size_t max)
{
    return map_stream_verp(f, csv, transient, NULL, out, max);
}

static void test_bounce_events(void **state)
{
    fixture *f = *state;
    bp_acct_result res[8];
    size_t n = map_stream(f, layout_a, 0, res, 8);
    assert_int_equal(n, 2);
    assert_int_equal(res[0].disposition, BP_ACCT_DELIVERY);
    bp_test_check_str("delivery rcpt", res[0].event.recipient, "ok@example.org");
    assert_int_equal(res[1].disposition, BP_ACCT_EVENT);
    const bp_event *e = &res[1].event;
    assert_int_equal(e->type, BP_EVENT_BOUNCE);
    bp_test_check_str("rcpt", e->recipient, "jdoe@example.net");
    bp_test_check_str("status", e->status, "5.1.1");
    bp_test_check_str("smtp", e->smtp_code, "550");
    bp_test_check_str("category", e->category, "bad-mailbox");
    bp_test_check_str("pmta category", res[1].pmta_category, "bad-mailbox");
    bp_test_check_str("remote mta", e->remote_mta, "mx.example.net");
    bp_test_check_str("job", e->job_id, "job-7");
    bp_test_check_str("envid", e->envid, "env-1");
    bp_test_check_str("source", e->source, "acct.csv#3");
    assert_int_equal(e->action, BP_ACT_SUPPRESS);
    assert_true(e->final);
    assert_int_equal(res[1].time_logged_unix, 1795169704LL); /* 2026-11-20 10:15:04 UTC */
    assert_non_null(res[1].key);
    bp_test_check_str("fingerprint is the key", e->fingerprint, res[1].key);
}

/* Our rules decide, not PowerMTA's bounceCat: a block-list rejection dressed as 5.1.1 is
 * spam-related and ignored even when PowerMTA called it bad-mailbox; a 4.x.x bounce (expired)
 * is not final; rb and rs records; t a deferral only counted unless asked. */
static void test_classification(void **state)
{
    fixture *f = *state;
    const char *csv =
        "type,timeLogged,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat\r\n"
        "b,1763633704,a@example.net,failed,5.1.1 (bad destination mailbox address),"
        "\"smtp;550 5.1.1 Service unavailable; client [192.0.2.10] blocked using zen.spamhaus.org\","
        "mx.example.net (192.0.2.25),bad-mailbox\r\n"
        "b,1763633705,b@example.net,failed,4.4.7 (delivery time expired),"
        "smtp;452 4.2.2 Mailbox full,mx.example.net,quota-issues\r\n"
        "rb,1763633706,c@example.net,failed,5.2.1,smtp;550 5.2.1 The email account that you tried to reach is "
        "disabled,mx.example.net,inactive-mailbox\r\n"
        "rs,1763633707,d@example.net,delayed,4.4.1,smtp;421 4.4.1 connection timed out,mx.example.net,\r\n"
        "rs,1763633708,e@example.net,delivered,2.0.0,smtp;250 ok,mx.example.net,\r\n"
        "t,1763633709,f@example.net,delayed,4.2.2,smtp;452 4.2.2 mailbox full,mx.example.net,quota-issues\r\n"
        "zz,1763633710,g@example.net,,,,,\r\n"
        "b,1763633711,,failed,5.1.1,smtp;550 no such user,mx.example.net,bad-mailbox\r\n";
    bp_acct_result res[16];
    size_t n = map_stream(f, csv, 0, res, 16);
    assert_int_equal(n, 8);

    bp_test_check_str("blocklist category", res[0].event.category, "spam-related");
    bp_test_check_str("blocklist name", res[0].event.blocklist, "spamhaus-zen");
    bp_test_check_str("pmta kept", res[0].pmta_category, "bad-mailbox");
    assert_int_equal(res[0].event.action, BP_ACT_IGNORE);

    bp_test_check_str("expired status", res[1].event.status, "4.4.7");
    assert_false(res[1].event.final);
    assert_int_not_equal(res[1].event.action, BP_ACT_SUPPRESS);

    assert_int_equal(res[2].event.type, BP_EVENT_BOUNCE);
    bp_test_check_str("rb category", res[2].event.category, "inactive-mailbox");
    assert_int_equal(res[2].event.action, BP_ACT_SUPPRESS);

    assert_int_equal(res[3].event.type, BP_EVENT_DELAY);
    assert_int_equal(res[3].disposition, BP_ACCT_EVENT);
    assert_int_equal(res[4].disposition, BP_ACCT_DELIVERY);

    assert_int_equal(res[5].disposition, BP_ACCT_DEFERRAL); /* counted, never recorded */
    assert_int_equal(res[5].event.type, BP_EVENT_DELAY);
    assert_int_equal(res[6].disposition, BP_ACCT_IGNORED);
    assert_true(res[6].unknown_type);
    assert_int_equal(res[7].disposition, BP_ACCT_NO_RECIPIENT);

    n = map_stream(f, csv, 1, res, 16);
    assert_int_equal(res[5].disposition, BP_ACCT_EVENT);
    assert_int_equal(res[5].event.type, BP_EVENT_DELAY);
    bp_test_check_str("transient category", res[5].event.category, "quota-issues");
}

static void test_complaints(void **state)
{
    fixture *f = *state;
    const char *csv = "type,timeLogged,orig,rcpt,feedbackType,userAgent,dlvSourceIp,header_X-HmXmrOriginalRecipient\r\n"
                      "f,2026-11-20 11:00:00-0500,bounces@bounces.example.com,reader@example.com,abuse,"
                      "\"Yahoo!-Mail-Feedback/2.0\",192.0.2.10,\r\n"
                      "f,2026-11-20 11:00:01-0500,bounces@bounces.example.com,,abuse,Hotmail FBL,,"
                      "jmrp.user@example.org\r\n"
                      "f,2026-11-20 11:00:02-0500,bounces-verp.user=example.jp@bounces.example.com,,Not-Spam,,,\r\n"
                      "f,2026-11-20 11:00:03-0500,bounces@bounces.example.com,x@example.com,weird-type,,,\r\n"
                      "f,2026-11-20 11:00:04-0500,bounces@bounces.example.com,,abuse,,,\r\n";
    bp_acct_result res[8];
    size_t n = map_stream(f, csv, 0, res, 8);
    assert_int_equal(n, 5);
    assert_int_equal(res[0].event.type, BP_EVENT_COMPLAINT);
    bp_test_check_str("arf rcpt", res[0].event.recipient, "reader@example.com");
    bp_test_check_str("ft", res[0].event.feedback_type, "abuse");
    bp_test_check_str("source ip", res[0].event.source_ip, "192.0.2.10");
    assert_int_equal(res[0].event.action, BP_ACT_SUPPRESS);
    assert_int_equal(res[0].time_logged_unix, 1795190400LL); /* 11:00:00-0500 = 16:00:00 UTC */

    bp_test_check_str("jmrp rcpt", res[1].event.recipient, "jmrp.user@example.org");
    bp_test_check_str("jmrp from", res[1].event.recipient_from, "x-hmxmroriginalrecipient");

    bp_test_check_str("verp rcpt", res[2].event.recipient, "verp.user@example.jp");
    bp_test_check_str("verp from", res[2].event.recipient_from, "verp");
    bp_test_check_str("not-spam lower-cased", res[2].event.feedback_type, "not-spam");
    assert_int_equal(res[2].event.action, BP_ACT_IGNORE);

    bp_test_check_str("unknown type is other", res[3].event.feedback_type, "other");
    /* a complaint that names nobody is still a complaint, as by mail: evidence without a
     * recipient */
    assert_int_equal(res[4].disposition, BP_ACCT_EVENT);
    bp_test_check_str("nobody", res[4].event.recipient, NULL);

    /* with [verp] prefix = bounces, a rcpt that is our own VERP address is decoded; an
     * ordinary rcpt is kept as it is */
    const char *verp_csv = "type,timeLogged,orig,rcpt,feedbackType\r\n"
                           "f,1795169704,news@example.com,bounces-pat=example.net@bounces.example.com,abuse\r\n"
                           "f,1795169705,news@example.com,plain-user=x@example.org,abuse\r\n";
    bp_verp_options vo = {"bounces", NULL, 0, NULL};
    const char *want[] = {"pat@example.net", "plain-user=x@example.org"};
    const char *want_from[] = {"verp", "original-rcpt-to"};
    bp_acct_result verp_res[2];
    assert_int_equal(map_stream_verp(f, verp_csv, 0, &vo, verp_res, 2), 2);
    for (size_t k = 0; k < 2; k++) {
        bp_test_check_str("verp rcpt", verp_res[k].event.recipient, want[k]);
        bp_test_check_str("verp rcpt from", verp_res[k].event.recipient_from, want_from[k]);
    }
}

/* Issue 14 defect 4: f records as PowerMTA writes them by default.  Redacted recipients are
 * nobody, not people; header_Return-Path carries the VERP address; arf_* columns and the
 * configured rcpt_headers (header_NAME) are recipient sources; dkim and spf are auth-failure
 * and ignored; the job is header_X-job. */
static void test_complaint_sources(void **state)
{
    fixture *f = *state;
    const char *csv =
        "type,timeLogged,orig,rcpt,feedbackType,format,userAgent,reportingMta,header_From,header_Return-Path,"
        "header_X-job,header_X-Rcpt,header_To,arf_Original-Rcpt-To,arf_Source-IP\r\n"
        /* 1: redacted rcpt, the VERP Return-Path names the recipient */
        "f,1795169704,,redacted@example.com,abuse,arf,AOL SComp,dns;aol.example,news@example.com,"
        "<bounces-pat=example.net@bounces.example.com>,job-42,,,,\r\n"
        /* 2: xxxxxxxx rcpt and nothing else: a complaint about nobody */
        "f,1795169705,,xxxxxxxx@example.com,abuse,arf,,,news@example.com,<news@example.com>,job-42,,,,\r\n"
        /* 3: dkim: auth-failure, ignored */
        "f,1795169706,,sam@example.org,dkim,arf,,,,,job-42,,,,\r\n"
        /* 4: spf likewise */
        "f,1795169707,,sam@example.org,SPF,arf,,,,,,,,,\r\n"
        /* 5: rcpt empty, the ARF field as a column */
        "f,1795169708,,,abuse,arf,,,,,,,,lee@example.org,192.0.2.7\r\n"
        /* 6: rcpt empty, the operator's per-recipient header of the original */
        "f,1795169709,,,abuse,arf,,,,,,kim@example.org,\"a@example.org, b@example.org\",,\r\n"
        /* 7: only a single To: */
        "f,1795169710,,,abuse,arf,,,,,,,<Jo.Doe@Example.ORG>,,\r\n";
    static const char *const rcpt_headers[] = {"X-Rcpt", NULL};
    static const struct {
        const char *recipient, *from, *feedback_type, *job;
        bp_action action;
    } want[] = {
        {"pat@example.net", "verp", "abuse", "job-42", BP_ACT_SUPPRESS},
        {NULL, NULL, "abuse", "job-42", BP_ACT_SUPPRESS},
        {"sam@example.org", "original-rcpt-to", "auth-failure", "job-42", BP_ACT_IGNORE},
        {"sam@example.org", "original-rcpt-to", "auth-failure", NULL, BP_ACT_IGNORE},
        {"lee@example.org", "original-rcpt-to", "abuse", NULL, BP_ACT_SUPPRESS},
        {"kim@example.org", "header", "abuse", NULL, BP_ACT_SUPPRESS},
        {"Jo.Doe@example.org", "header", "abuse", NULL, BP_ACT_SUPPRESS},
    };
    bp_acct_options o = {f->rules, &f->policy, NULL, "acct.csv", 0, rcpt_headers, NULL, NULL};
    bp_acct_result all[8];
    size_t n = map_stream_opts(f, csv, &o, all, 8);
    for (size_t i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++) {
        const bp_acct_result res = all[i];
        char label[64];
        snprintf(label, sizeof(label), "record %zu", i + 1);
        assert_int_equal(res.disposition, BP_ACCT_EVENT);
        bp_test_check_str(label, res.event.recipient, want[i].recipient);
        bp_test_check_str(label, res.event.recipient_from, want[i].from);
        bp_test_check_str(label, res.event.feedback_type, want[i].feedback_type);
        bp_test_check_str(label, res.event.job_id, want[i].job);
        if (res.event.action != want[i].action)
            fail_msg("%s: action %d, want %d", label, res.event.action, want[i].action);
        if (i == 4)
            bp_test_check_str("arf source ip", res.event.source_ip, "192.0.2.7");
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
}

/* Issue 14 defect 6: timeLogged in the three forms the guide documents; anything else is
 * -1 (the caller warns with the line), never "now". */
static void test_time_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long want;
    } rows[] = {
        {"1795169704", 1795169704LL},
        {"1795169704.250", 1795169704LL},
        {"2026-11-20 10:15:04+0000", 1795169704LL},
        {"2026-11-20 05:15:04-0500", 1795169704LL},
        {"2026-11-20T10:15:04Z", 1795169704LL},
        {"2026-11-20 12:15:04+02:00", 1795169704LL},
        {"2026-11-20 10:15:04", 1795169704LL},
        {"11/20/2026 10:15:04+0000", 1795169704LL},
        {"11/20/2026 05:15:04-0500", 1795169704LL},
        {"11/20/2026 11:15:04+01:00", 1795169704LL},
        {"1/2/2027 00:00:00+0000", 1798848000LL},
        {"20/11/2026 10:15:04+0000", -1}, /* no 20th month */
        {"2026-11-20 10:15:04 +0000", 1795169704LL},
        {"2026-11-20 10:15:04+0000 junk", -1},
        {"2026-11-20", -1},
        {"yesterday", -1},
        {"Fri, 20 Nov 2026 10:15:04 +0000", -1},
        {"", -1},
        {NULL, -1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long long got = bp_acct_parse_time(rows[i].text);
        if (got != rows[i].want)
            fail_msg("timeLogged \"%s\": got %lld, want %lld", rows[i].text != NULL ? rows[i].text : "(null)", got,
                     rows[i].want);
    }
}

/* ---- one complaint model: the same complaint by mail and as an f record --------------- */

/* An ARF report as a receiver sends it: Feedback-Type, Original-Rcpt-To (or none), Source-IP,
 * and the original with its Return-Path, X-Job and the headers named in @p orig_headers. */
static char *arf_message(bp_arena *arena, const char *type, const char *rcpt_to, const char *orig_headers)
{
    return bp_arena_printf(
        arena,
        "From: fbl@isp.example.net\r\n"
        "To: fbl@fbl.example.com\r\n"
        "Subject: complaint\r\n"
        "Date: Fri, 20 Nov 2026 16:00:00 +0000\r\n"
        "Message-ID: <c-%s@isp.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n"
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: %s\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n%s%s%s"
        "Source-IP: 192.0.2.10\r\n\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        "%sFrom: news@example.com\r\nSubject: news\r\nMessage-ID: <orig@example.com>\r\n\r\nhello\r\n"
        "--b--\r\n",
        type, type, rcpt_to != NULL ? "Original-Rcpt-To: " : "", rcpt_to != NULL ? rcpt_to : "",
        rcpt_to != NULL ? "\r\n" : "", orig_headers);
}

/* The same complaint both ways must give the same event: Issue 14 defect 4 found the two
 * paths apart on redacted recipients, Return-Path, rcpt_headers, dkim/spf and the job. */
static void test_complaint_model_shared(void **state)
{
    fixture *f = *state;
    static const char *const rcpt_headers[] = {"X-Rcpt", NULL};
    static const struct {
        const char *label, *type, *rcpt_to, *orig_headers; /* the mail */
        const char *record;                                /* the same as an f record */
        const char *want_recipient;
    } rows[] = {
        {"redacted, VERP Return-Path", "abuse", "redacted@aol.example.net",
         "Return-Path: <bounces-ayumi=aol.example.net@bounces.example.com>\r\nX-Job: news-7\r\nTo: "
         "redacted@aol.example.net\r\n",
         "f,1795190400,,redacted@aol.example.net,abuse,192.0.2.10,<bounces-ayumi=aol.example.net@bounces.example.com>,"
         "news-7,,,redacted@aol.example.net",
         "ayumi@aol.example.net"},
        {"xxxxxxxx and nothing else", "abuse", "xxxxxxxx@isp.example.net",
         "Return-Path: <news@example.com>\r\nX-Job: news-7\r\n",
         "f,1795190400,,xxxxxxxx@isp.example.net,abuse,192.0.2.10,<news@example.com>,news-7,,,", NULL},
        {"dkim is auth-failure", "dkim", "sam@isp.example.net", "X-Job: news-8\r\n",
         "f,1795190400,,sam@isp.example.net,dkim,192.0.2.10,,news-8,,,", "sam@isp.example.net"},
        {"spf is auth-failure", "spf", "sam@isp.example.net", "",
         "f,1795190400,,sam@isp.example.net,spf,192.0.2.10,,,,,", "sam@isp.example.net"},
        {"hotmail's header", "abuse", NULL, "X-HmXmrOriginalRecipient: <hm.user@hotmail.example>\r\n",
         "f,1795190400,,,abuse,192.0.2.10,,,hm.user@hotmail.example,,", "hm.user@hotmail.example"},
        {"configured rcpt header", "abuse", NULL, "X-Rcpt: kim@isp.example.net\r\nTo: a@x.example, b@x.example\r\n",
         "f,1795190400,,,abuse,192.0.2.10,,,,kim@isp.example.net,\"a@x.example, b@x.example\"", "kim@isp.example.net"},
        {"Return-Path only", "abuse", NULL, "Return-Path: <bounces-Lee=Example.ORG@bounces.example.com>\r\n",
         "f,1795190400,,,abuse,192.0.2.10,<bounces-Lee=Example.ORG@bounces.example.com>,,,,", "Lee@example.org"},
        {"opt-out spelt unsubscribe", "unsubscribe", "mika@isp.example.net", "",
         "f,1795190400,,mika@isp.example.net,Unsubscribe,192.0.2.10,,,,,", "mika@isp.example.net"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        /* by mail, as pipe reads it */
        bp_pipeline p;
        bp_pipeline_init(&p);
        p.rules = f->rules;
        bp_report_options ropts = {rcpt_headers, NULL};
        p.report = &ropts;
        char *msg = arf_message(f->arena, rows[i].type, rows[i].rcpt_to, rows[i].orig_headers);
        bp_envelope env = {"-", "fbl@fbl.example.com", NULL};
        bp_process_result pr;
        assert_int_equal(bp_process_message(&p, &env, 0, msg, strlen(msg), f->arena, &pr), BP_OK);
        assert_int_equal(pr.n_events, 1);
        const bp_event *m = &pr.events[0];

        /* as the accounting record of the same complaint */
        char *csv =
            bp_arena_printf(f->arena,
                            "type,timeLogged,orig,rcpt,feedbackType,dlvSourceIp,header_Return-Path,header_X-job,"
                            "header_X-HmXmrOriginalRecipient,header_X-Rcpt,header_To\r\n%s\r\n",
                            rows[i].record);
        bp_acct_options o;
        bp_pipeline_acct_options(&p, "acct.csv", 0, &o);
        bp_acct_result ar;
        assert_int_equal(map_stream_opts(f, csv, &o, &ar, 1), 1);
        const bp_event *a = &ar.event;

        char label[160];
        snprintf(label, sizeof(label), "%s: mail and accounting record", rows[i].label);
        assert_int_equal(m->type, BP_EVENT_COMPLAINT);
        assert_int_equal(a->type, BP_EVENT_COMPLAINT);
        assert_int_equal(ar.disposition, BP_ACCT_EVENT);
        bp_test_check_str(label, m->recipient, rows[i].want_recipient);
        bp_test_check_str(label, a->recipient, m->recipient);
        bp_test_check_str(label, a->recipient_from, m->recipient_from);
        bp_test_check_str(label, a->feedback_type, m->feedback_type);
        bp_test_check_str(label, a->job_id, m->job_id);
        bp_test_check_str(label, a->source_ip, m->source_ip);
        if (a->action != m->action)
            fail_msg("%s: action %s by record, %s by mail", label, bp_action_name(a->action),
                     bp_action_name(m->action));
    }
}

/* What developer "identity"'s store pairs the two reports of one failure by (issue 14 defect
 * 1): the b record and PowerMTA's own DSN of the same failure must carry the same recipient,
 * status, envelope id and job id, and evidence times minutes apart. */
static void test_channels_carry_the_pairing_fields(void **state)
{
    fixture *f = *state;
    const char *csv = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,envId\r\n"
                      "b,2026-11-20 10:15:04+0000,bounces-Jane.Roe=outlook.example@bounces.example.com,"
                      "Jane.Roe@outlook.example,failed,5.1.1 (bad destination mailbox address),"
                      "smtp;550 5.1.1 mailbox unavailable,mx.outlook.example (192.0.2.41),bad-mailbox,news-1120,"
                      "env-0002\r\n";
    const char *mail = "From: mailer-daemon@mta1.example.com\r\n"
                       "To: bounces-jane.roe=outlook.example@bounces.example.com\r\n"
                       "Subject: Delivery report\r\n"
                       "Date: Fri, 20 Nov 2026 10:15:34 +0000\r\n"
                       "Message-ID: <dsn-1@mta1.example.com>\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"p\"\r\n"
                       "\r\n--p\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n"
                       "--p\r\nContent-Type: message/delivery-status\r\n\r\n"
                       "Reporting-MTA: dns; mta1.example.com\r\nOriginal-Envelope-Id: env-0002\r\n\r\n"
                       "Final-Recipient: rfc822; Jane.Roe@outlook.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                       "Remote-MTA: dns; mx.outlook.example\r\n"
                       "Diagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n"
                       "--p\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                       "Return-Path: <bounces-Jane.Roe=outlook.example@bounces.example.com>\r\n"
                       "From: news@example.com\r\nTo: Jane.Roe@outlook.example\r\nX-Job: news-1120\r\n"
                       "\r\n--p--\r\n";
    bp_acct_result ar;
    assert_int_equal(map_stream(f, csv, 0, &ar, 1), 1);
    bp_pipeline p;
    bp_pipeline_init(&p);
    p.rules = f->rules;
    bp_envelope env = {"-", "bounces-jane.roe=outlook.example@bounces.example.com", NULL};
    bp_process_result pr;
    assert_int_equal(bp_process_message(&p, &env, 0, mail, strlen(mail), f->arena, &pr), BP_OK);
    assert_int_equal(pr.n_events, 1);
    const bp_event *a = &ar.event, *m = &pr.events[0];
    assert_int_equal(a->type, BP_EVENT_BOUNCE);
    assert_int_equal(m->type, BP_EVENT_BOUNCE);
    bp_test_check_str("recipient", a->recipient, m->recipient);
    bp_test_check_str("status", a->status, m->status);
    bp_test_check_str("envid", a->envid, "env-0002");
    bp_test_check_str("envid alike", a->envid, m->envid);
    bp_test_check_str("job", a->job_id, "news-1120");
    bp_test_check_str("job alike", a->job_id, m->job_id);
    bp_test_check_str("category alike", a->category, m->category);
    long long apart = ar.time_logged_unix - pr.date;
    if (ar.time_logged_unix <= 0 || pr.date <= 0 || apart < -600 || apart > 600)
        fail_msg("evidence times %lld (record) and %lld (DSN) are not minutes apart", ar.time_logged_unix, pr.date);
}

/* The key follows the values by name: another column order, extra columns and CRLF give the
 * same key; another diagnostic or time gives another. */
static void test_keys(void **state)
{
    fixture *f = *state;
    const char *a = "type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,jobId\r\n"
                    "b,1763633704,bounces@bounces.example.com,a@example.net,5.1.1,\"smtp;550 no, such user\",j1\r\n"
                    "b,1763633704,bounces@bounces.example.com,a@example.net,5.1.1,smtp;550 other,j1\r\n"
                    "b,1763633705,bounces@bounces.example.com,a@example.net,5.1.1,\"smtp;550 no, such user\",j1\r\n";
    const char *b = "type,jobId,vmta,dsnDiag,rcpt,dsnStatus,orig,timeLogged,bounceCat\n"
                    "b,j1,vmta2,\"smtp;550 no, such user\",a@example.net,5.1.1,bounces@bounces.example.com,"
                    "1763633704,bad-mailbox\n";
    bp_acct_result ra[4], rb[2];
    assert_int_equal(map_stream(f, a, 0, ra, 4), 3);
    assert_int_equal(map_stream(f, b, 0, rb, 2), 1);
    bp_test_check_str("same record, other layout", rb[0].key, ra[0].key);
    assert_string_not_equal(ra[0].key, ra[1].key);
    assert_string_not_equal(ra[0].key, ra[2].key);
    assert_int_equal(strncmp(ra[0].key, "acct:", 5), 0);
    assert_int_equal(strlen(ra[0].key), 5 + 64);

    /* without timeLogged the raw bytes decide: CRLF and LF copies still agree */
    bp_acct_result rc[1], rd[1];
    assert_int_equal(map_stream(f, "type,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 x\r\n", 0, rc, 1), 1);
    assert_int_equal(map_stream(f, "type,rcpt,dsnDiag\nb,a@example.net,smtp;550 x\n", 0, rd, 1), 1);
    bp_test_check_str("raw key crlf/lf", rc[0].key, rd[0].key);
}

/* Register test @p f with an arena, the default policy and the built-in rules (setup / teardown). */
#define ACCT_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

BP_TEST_MAIN(cmocka_unit_test(test_readings), cmocka_unit_test(test_malformed_lines),
             cmocka_unit_test(test_long_record), ACCT_TEST(test_bounce_events), ACCT_TEST(test_classification),
             ACCT_TEST(test_complaints), ACCT_TEST(test_complaint_sources), ACCT_TEST(test_complaint_model_shared),
             cmocka_unit_test(test_time_forms), ACCT_TEST(test_channels_carry_the_pairing_fields), ACCT_TEST(test_keys))
