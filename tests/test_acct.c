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

static void test_layout_by_name(void **state)
{
    (void)state;
    reading rd;
    read_both(layout_a, &rd);
    expect("layout a", &rd,
           "H1:23\n"
           "R2:d|ok@example.org|smtp;250 2.0.0 Ok: queued as 4F1C2\n"
           "R3:b|jdoe@example.net|smtp;550 5.1.1 <jdoe@example.net>: Recipient address rejected: User unknown, "
           "\"jdoe\"\n");
}

/* A reload with other record-fields: the second header replaces the first, mid-stream, LF ends. */
static void test_repeated_header(void **state)
{
    (void)state;
    const char *csv = "type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,bounceCat\n"
                      "b,1763633704,bounces@bounces.example.com,a@example.net,5.1.1,smtp;550 no such user,"
                      "bad-mailbox\n"
                      "type,rcpt,dsnDiag,timeLogged,jobId\n"
                      "b,b@example.net,smtp;552 mailbox full,1763633705,job-9\n"
                      "type,rcpt,dsnDiag,timeLogged,jobId\n"
                      "d,c@example.net,,1763633706,job-9\n";
    reading rd;
    read_both(csv, &rd);
    expect("reload", &rd,
           "H1:7\n"
           "R2:b|a@example.net|smtp;550 no such user\n"
           "H3:5\n"
           "R4:b|b@example.net|smtp;552 mailbox full\n"
           "H5:5\n"
           "R6:d|c@example.net|-\n");
}

/* Quoted fields holding line breaks (CRLF and LF) count their lines; a trailing comma is an
 * empty last field; a quote inside an unquoted field is an ordinary byte. */
static void test_quoted_newlines(void **state)
{
    (void)state;
    const char *csv = "type,rcpt,dsnDiag,jobId\r\n"
                      "b,x@example.jp,\"smtp;550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                      "550-5.1.1 Please try double-checking, \"\"then\"\" retry.\r\n"
                      "550 5.1.1 https://support.example.com/mail/?p=NoSuchUser\",\r\n"
                      "b,y@example.jp,smtp;550 say \"hi\",job-2\r\n";
    reading rd;
    read_both(csv, &rd);
    expect("quoted newlines", &rd,
           "H1:4\n"
           "R2:b|x@example.jp|smtp;550-5.1.1 The email account that you tried to reach does not exist.\r\n"
           "550-5.1.1 Please try double-checking, \"then\" retry.\r\n"
           "550 5.1.1 https://support.example.com/mail/?p=NoSuchUser\n"
           "R5:b|y@example.jp|smtp;550 say \"hi\"\n");
}

/* Cuts: an unterminated last record; a record cut inside a quote by PowerMTA's restart header;
 * a record cut outside quotes and glued to the next line (wrong field count). */
static void test_cut_streams(void **state)
{
    (void)state;
    reading rd;
    read_both("type,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 gone\r\nb,b@exam", &rd);
    expect("cut at end", &rd,
           "H1:3\nR2:b|a@example.net|smtp;550 gone\nM3:record cut by the end of the input (no line end)\n");

    read_both("type,rcpt,dsnDiag\r\n"
              "b,a@example.net,\"smtp;550 user unk\n"
              "type,rcpt,dsnDiag,jobId\r\n"
              "b,c@example.net,\"smtp;550 5.1.1, unknown\",job-3\r\n",
              &rd);
    expect("cut in quote, header follows", &rd,
           "H1:3\nM2:record cut mid-field by a new header\nH3:4\nR4:b|c@example.net|smtp;550 5.1.1, unknown\n");

    read_both("type,rcpt,dsnDiag\r\nb,a@examb,d@example.net,smtp;550 gone\r\nb,e@example.net,smtp;550 x\r\n", &rd);
    expect("glued lines", &rd, "H1:3\nM2:field count differs from the header's\nR3:b|e@example.net|smtp;550 x\n");
}

static void test_malformed_lines(void **state)
{
    (void)state;
    reading rd;
    read_both("b,a@example.net,smtp;550 x\r\n\r\ntype,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 x\r\n", &rd);
    expect("before header, blank line", &rd, "M1:record before any header line\nH3:3\nR4:b|a@example.net|smtp;550 x\n");

    read_both("\xEF\xBB\xBFtype,rcpt,dsnDiag\r\nb,a@example.net,smtp;550 x\r\n", &rd);
    expect("UTF-8 BOM before the header", &rd, "H1:3\nR2:b|a@example.net|smtp;550 x\n");

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

/* Map every data record of @p csv with @p verp options (NULL: defaults); results in @p out
 * (at most @p max). */
static size_t map_stream_verp(fixture *f, const char *csv, int transient, const bp_verp_options *verp,
                              bp_acct_result *out, size_t max)
{
    bp_acct_reader *r = NULL;
    assert_int_equal(bp_acct_reader_new(&r), BP_OK);
    assert_int_equal(bp_acct_reader_feed(r, csv, strlen(csv)), BP_OK);
    bp_acct_options o = {f->rules, &f->policy, verp, "acct.csv", transient, NULL, NULL};
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
        assert_int_equal(bp_acct_record_event(&o, &rec, f->arena, &out[n]), BP_OK);
        n++;
    }
    bp_acct_reader_free(r);
    return n;
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
    const char *csv = "type,timeLogged,orig,rcpt,feedbackType,userAgent,reportedIp,header_X-HmXmrOriginalRecipient\r\n"
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
    assert_int_equal(res[4].disposition, BP_ACCT_NO_RECIPIENT);

    /* with [verp] prefix = bounces, a rcpt that is our own VERP address is decoded; an
     * ordinary rcpt is kept as it is */
    const char *verp_csv = "type,timeLogged,orig,rcpt,feedbackType\r\n"
                           "f,1795169704,news@example.com,bounces-pat=example.net@bounces.example.com,abuse\r\n"
                           "f,1795169705,news@example.com,plain-user=x@example.org,abuse\r\n";
    bp_verp_options vo = {"bounces", NULL, 0};
    const char *want[] = {"pat@example.net", "plain-user=x@example.org"};
    const char *want_from[] = {"verp", "original-rcpt-to"};
    bp_acct_result verp_res[2];
    assert_int_equal(map_stream_verp(f, verp_csv, 0, &vo, verp_res, 2), 2);
    for (size_t k = 0; k < 2; k++) {
        bp_test_check_str("verp rcpt", verp_res[k].event.recipient, want[k]);
        bp_test_check_str("verp rcpt from", verp_res[k].event.recipient_from, want_from[k]);
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_by_name),
        cmocka_unit_test(test_repeated_header),
        cmocka_unit_test(test_quoted_newlines),
        cmocka_unit_test(test_cut_streams),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_long_record),
        cmocka_unit_test_setup_teardown(test_bounce_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complaints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
