/*
 * test_printer.c - the event printer (src/emit/printer.c): JSON string escaping of quotes,
 * backslashes and control bytes, every contract field present in contract order (null when
 * unknown), the text format, and CSV quoting with formula neutralisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/emit.h"
#include "test_support.h"

/* Run @p escape on @p input; "LABEL: WHAT: got X, want Y" unless it writes @p want. */
static void check_escape(const char *label, const char *what, bp_status (*escape)(bp_strbuf *, const char *),
                         const char *input, const char *want)
{
    bp_strbuf sb = {0};
    assert_int_equal(escape(&sb, input), BP_OK);
    bp_test_check_field(label, what, sb.data != NULL ? sb.data : "", want);
    bp_strbuf_free(&sb);
}

/* Each input through both escapers: the JSON string (quoted, escaped, null for NULL) and the
 * CSV cell (RFC 4180 quoting, formula neutralisation, controls masked). */
static void test_escapers(void **state)
{
    (void)state;
    static const struct {
        const char *label, *input, *json, *csv;
    } rows[] = {
        {"plain", "user@example.com", "\"user@example.com\"", "user@example.com"},
        {"null", NULL, "null", ""},
        {"empty", "", "\"\"", ""},
        {"quote", "say \"hi\"", "\"say \\\"hi\\\"\"", "\"say \"\"hi\"\"\""},
        {"backslash", "a\\b", "\"a\\\\b\"", "a\\b"},
        {"newline and CR", "l1\nl2\r", "\"l1\\nl2\\r\"", "\"l1\nl2\r\""},
        {"newline", "l1\nl2", "\"l1\\nl2\"", "\"l1\nl2\""},
        {"tab", "a\tb", "\"a\\tb\"", "a\tb"},
        {"control byte", "bell\x07", "\"bell\\u0007\"", "bell?"},
        {"escape byte", "\x1b[31m", "\"\\u001b[31m\"", "?[31m"},
        {"DEL", "x\x7fy", "\"x\\u007fy\"", "x?y"},
        {"UTF-8 kept", "\xe5\xb1\xb1\xe7\x94\xb0@example.jp", "\"\xe5\xb1\xb1\xe7\x94\xb0@example.jp\"",
         "\xe5\xb1\xb1\xe7\x94\xb0@example.jp"},
        {"slash kept", "a/b", "\"a/b\"", "a/b"},
        {"comma", "a,b", "\"a,b\"", "\"a,b\""},
        {"formula =", "=HYPERLINK(\"http://x\")", "\"=HYPERLINK(\\\"http://x\\\")\"",
         "\"'=HYPERLINK(\"\"http://x\"\")\""},
        {"formula +", "+1", "\"+1\"", "\"'+1\""},
        {"formula -", "-2+3", "\"-2+3\"", "\"'-2+3\""},
        {"formula @", "@SUM(A1)", "\"@SUM(A1)\"", "\"'@SUM(A1)\""},
        {"leading tab", "\tcmd", "\"\\tcmd\"", "\"'\tcmd\""},
        {"leading CR", "\rcmd", "\"\\rcmd\"", "\"'\rcmd\""},
        {"inner = is fine", "a=b", "\"a=b\"", "a=b"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        check_escape(rows[i].label, "json", bp_json_string, rows[i].input, rows[i].json);
        check_escape(rows[i].label, "csv", bp_csv_cell, rows[i].input, rows[i].csv);
    }
}

/* Print the @p n @p events in @p format into a malloc'ed string (the caller frees it). */
static char *print_event(bp_writer_format format, const bp_event *events, size_t n)
{
    bp_test_capture out;
    bp_printer *p = bp_printer_new(bp_test_capture_open(&out), format);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bp_printer_event(p, &events[i]), BP_OK);
    bp_printer_free(p);
    return bp_test_capture_close(&out);
}

static const char *const contract_fields[] = {
    "source",
    "message_id",
    "type",
    "recipient",
    "recipient_from",
    "status",
    "smtp_code",
    "diagnostic",
    "category",
    "feedback_type",
    "action",
    "rule",
    "reporting_mta",
    "remote_mta",
    "arrival_date",
    "source_ip",
    "envid",
    "job_id",
    "original_message_id",
    "blocklist",
    "smtp_command",
    /* 1.4: a DMARC aggregate report's */
    "dmarc_org",
    "dmarc_report_id",
    "dmarc_domain",
    "dmarc_begin",
    "dmarc_end",
    "dmarc_p",
    "dmarc_records",
    "dmarc_messages",
    "dmarc_messages_pass",
    /* 1.5: where the message came from */
    "sending_ip",
    "vmta",
    "stream",
    "receiver",
    "listed",
};

static void test_ndjson_every_field(void **state)
{
    (void)state;
    bp_event e = bp_test_sample_bounce("fixtures/dsn/x.eml");
    e.recipient_from = "final-recipient";
    e.diagnostic = "550 5.1.1 \"jdoe\"\x01 unknown\n";
    e.rule = "gen-user-unknown";
    char *line = print_event(BP_WRITER_JSON, &e, 1);

    /* one line, ending in a newline, no raw control byte anywhere */
    size_t len = strlen(line);
    assert_true(len > 2 && line[0] == '{' && line[len - 2] == '}' && line[len - 1] == '\n');
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)line[i] < 0x20)
            fail_msg("ndjson: raw control byte 0x%02x at %zu", (unsigned char)line[i], i);

    /* every contract field, in order */
    const char *pos = line;
    for (size_t i = 0; i < sizeof(contract_fields) / sizeof(contract_fields[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), "\"%s\":", contract_fields[i]);
        const char *at = strstr(pos, key);
        if (at == NULL)
            fail_msg("ndjson: field %s missing or out of order in %s", contract_fields[i], line);
        pos = at + strlen(key);
    }
    static const char *const want[] = {
        "\"type\":\"bounce\"", "\"action\":\"suppress\"",
        "\"message_id\":null", "\"feedback_type\":null",
        "\"blocklist\":null",  "\"diagnostic\":\"550 5.1.1 \\\"jdoe\\\"\\u0001 unknown\\n\"",
    };
    bp_test_check_contains("ndjson", line, want, sizeof(want) / sizeof(want[0]));
    free(line);
}

/* A dmarc-report event: its report's fields, times in UTC, counts as numbers; the text
 * layout says what the report is. */
static void test_dmarc_event(void **state)
{
    (void)state;
    bp_dmarc_record recs[2] = {{0}, {0}};
    bp_dmarc_report r = {0};
    r.outcome = BP_DMARC_READ;
    r.org_name = "google.com";
    r.report_id = "123\"45";
    r.domain = "example.com";
    r.begin = 1700006400;
    r.end = 1700092799;
    r.p = "none";
    r.records = recs;
    r.n_records = 2;
    r.messages = 2394;
    r.messages_pass = 2391;
    bp_event e = {0};
    e.type = BP_EVENT_DMARC_REPORT;
    e.action = BP_ACT_IGNORE;
    e.rule = "dmarc";
    e.reporting_mta = "google.com";
    e.dmarc = &r;
    char *line = print_event(BP_WRITER_JSON, &e, 1);
    static const char *const want[] = {
        "\"type\":\"dmarc-report\"", "\"recipient\":null", "\"action\":\"ignore\"", "\"rule\":\"dmarc\"",
        "\"dmarc_org\":\"google.com\",\"dmarc_report_id\":\"123\\\"45\",\"dmarc_domain\":\"example.com\","
        "\"dmarc_begin\":\"2023-11-15T00:00:00Z\",\"dmarc_end\":\"2023-11-15T23:59:59Z\",\"dmarc_p\":\"none\","
        "\"dmarc_records\":2,\"dmarc_messages\":2394,\"dmarc_messages_pass\":2391,\"sending_ip\":null,"};
    bp_test_check_contains("ndjson", line, want, sizeof(want) / sizeof(want[0]));
    free(line);
    line = print_event(BP_WRITER_TEXT, &e, 1);
    if (strstr(line, "DMARC example.com from google.com (123\"45): 2023-11-15T00:00:00Z .. 2023-11-15T23:59:59Z, "
                     "p=none, 2 records, 2394 messages, 2391 pass") == NULL)
        fail_msg("text: got %s", line);
    free(line);
    /* the report's text is the sender's: masked in the layout, a line break stays on its line */
    r.org_name = "evil\norg\xe2\x80\xae\x1b[8m";
    line = print_event(BP_WRITER_TEXT, &e, 1);
    if (strstr(line, "DMARC example.com from evil?org??[8m (123\"45): ") == NULL)
        fail_msg("text, masked: got %s", line);
    free(line);
    r.org_name = "google.com";
    /* any other event: the report's fields are null */
    e.dmarc = NULL;
    line = print_event(BP_WRITER_JSON, &e, 1);
    if (strstr(line, "\"dmarc_org\":null") == NULL || strstr(line, "\"dmarc_messages_pass\":null,") == NULL)
        fail_msg("ndjson without a report: got %s", line);
    free(line);
}

static void test_unrecognized_event(void **state)
{
    (void)state;
    bp_event e = {0};
    e.source = "-";
    e.type = BP_EVENT_UNRECOGNIZED;
    e.action = BP_ACT_IGNORE;
    char *line = print_event(BP_WRITER_JSON, &e, 1);
    if (strstr(line, "\"type\":\"unrecognized\"") == NULL || strstr(line, "\"recipient\":null") == NULL ||
        strstr(line, "\"source\":\"-\"") == NULL)
        fail_msg("unrecognized: got %s", line);
    free(line);
}

static void test_csv_rows(void **state)
{
    (void)state;
    bp_event e[2] = {{0}, {0}};
    e[0].source = "a.eml";
    e[0].type = BP_EVENT_COMPLAINT;
    e[0].recipient = "=cmd|' /C calc'!A0";
    e[0].feedback_type = "abuse";
    e[0].action = BP_ACT_SUPPRESS;
    e[1].source = "b.eml";
    e[1].type = BP_EVENT_AUTOREPLY;
    e[1].action = BP_ACT_IGNORE;
    char *csv = print_event(BP_WRITER_CSV, e, 2);
    /* the header once, then one row per event, CRLF-terminated */
    const char *header_end = strstr(csv, "\r\n");
    assert_non_null(header_end);
    if (strncmp(csv, "source,message_id,type,recipient,", 33) != 0)
        fail_msg("csv: header got %.*s", (int)(header_end - csv), csv);
    if (strstr(header_end + 2, "source,message_id") != NULL)
        fail_msg("csv: header repeated in %s", csv);
    if (strstr(csv, "a.eml,,complaint,\"'=cmd|' /C calc'!A0\",") == NULL)
        fail_msg("csv: formula not neutralised in %s", csv);
    if (strstr(csv, "\r\nb.eml,,autoreply,") == NULL)
        fail_msg("csv: second row missing in %s", csv);
    free(csv);
}

static void test_text_format(void **state)
{
    (void)state;
    bp_event e = bp_test_sample_bounce("fixtures/dsn/x.eml");
    e.rule = "gen-user-unknown";
    e.diagnostic = "550 5.1.1 user unknown";
    char *text = print_event(BP_WRITER_TEXT, &e, 1);
    static const char *const want[] = {"suppress",           "bounce",
                                       "jdoe@example.net",   "bad-mailbox",
                                       "[550 5.1.1]",        "rule=gen-user-unknown",
                                       "fixtures/dsn/x.eml", "\"550 5.1.1 user unknown\""};
    bp_test_check_contains("text", text, want, sizeof(want) / sizeof(want[0]));
    free(text);
}

BP_TEST_MAIN(cmocka_unit_test(test_escapers), cmocka_unit_test(test_ndjson_every_field),
             cmocka_unit_test(test_unrecognized_event), cmocka_unit_test(test_csv_rows),
             cmocka_unit_test(test_text_format), cmocka_unit_test(test_dmarc_event))
