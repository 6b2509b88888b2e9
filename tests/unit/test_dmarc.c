/*
 * test_dmarc.c - DMARC aggregate reports (src/report/dmarc*.c): every receiver shape and
 * packing of fixtures/dmarc/ read through bp_mime_parse() + bp_dmarc_read_message() against its
 * <name>.expected dump and a table of the fields that matter; the DMARCbis fields; alignment;
 * each hostile fixture refused with its reason in bounded memory (a child process each, its
 * peak RSS measured); the limits of limits.h crossed by inputs built here; the MIME adapter's
 * report attachments (mime.c).  Stage 2: the module the core loads (and a missing one: no
 * reader, BP_ERR_UNSUPPORTED), the one event a report makes (dmarc-report, or an unrecognized
 * dmarc-refused one that is quarantined, never a recipient), the store (once per organisation
 * and report id, whatever message brings it; read back whole; the detail budget and the count
 * cap; the failure-report link), and [dmarc] own_networks.
 *
 * BP_DMARC_UPDATE=1 rewrites the .expected files instead of comparing (read each one against
 * its message before committing it); BP_DMARC_VERBOSE=1 prints each hostile fixture's peak
 * RSS growth.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zip.h>
#include <zlib.h>

#include "../fuzz/dmarc_check.h"
#include "bouncepipe/dmarc.h"
#include "bouncepipe/dmarc_store.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/process.h"
#include "bouncepipe/text.h"
#include "config.h"
#include "test_support.h"
#include "test_util.h"

#define FIXTURES BP_SOURCE_DIR "/fixtures/dmarc/"

/* ---- helpers ---- */

/* The whole fixture at @p path (test_util.h's reader; the caller frees it); fails the test when
 * it cannot be read. */
static char *read_file(const char *path, size_t *len)
{
    char *bytes = bp_test_read_file(path, len);
    if (bytes == NULL)
        fail_msg("cannot read %s", path);
    return bytes;
}

static bp_status parse_message(bp_arena *arena, const char *bytes, size_t len, bp_dmarc_report *r)
{
    bp_mime_message m;
    bp_status st = bp_mime_parse(bytes, len, arena, &m);
    if (st != BP_OK)
        return st;
    return bp_dmarc_read_message(&m, &bp_dmarc_reader_module, arena, r);
}

static void parse_fixture(bp_arena *arena, const char *name, bp_dmarc_report *r)
{
    char path[512];
    snprintf(path, sizeof(path), FIXTURES "%s.eml", name);
    size_t len = 0;
    char *bytes = read_file(path, &len);
    bp_status st = parse_message(arena, bytes, len, r);
    free(bytes);
    if (st != BP_OK)
        fail_msg("%s: parse: %s", name, bp_status_to_string(st));
}

static const char *str(const char *s)
{
    return s != NULL ? s : "-";
}

/* A deterministic dump of everything bp_dmarc_read_message() read: the .expected format. */
static void dump(const bp_dmarc_report *r, bp_strbuf *sb)
{
    bp_strbuf_printf(sb, "outcome: %s\n", bp_dmarc_outcome_name(r->outcome));
    if (r->outcome == BP_DMARC_NOT_REPORT)
        return;
    if (r->outcome == BP_DMARC_REFUSED)
        bp_strbuf_printf(sb, "refusal: %s\nreason: %s\n", bp_status_to_string(r->refusal), str(r->reason));
    bp_strbuf_printf(sb, "attachment: %s %s (%zu bytes, %zu bytes of XML)\n", str(r->filename),
                     bp_dmarc_packing_name(r->packing), r->packed_bytes, r->xml_bytes);
    bp_strbuf_printf(sb, "subject: domain=%s submitter=%s report_id=%s\n", str(r->subject_domain),
                     str(r->subject_submitter), str(r->subject_report_id));
    bp_strbuf_printf(sb, "file name: receiver=%s domain=%s\n", str(r->name_receiver), str(r->name_domain));
    if (r->outcome != BP_DMARC_READ)
        return;
    bp_strbuf_printf(sb, "namespace: %s\nversion: %s\n", str(r->xml_namespace), str(r->version));
    bp_strbuf_printf(sb, "org_name: %s\nemail: %s\nextra_contact_info: %s\nreport_id: %s\ngenerator: %s\n",
                     str(r->org_name), str(r->email), str(r->extra_contact_info), str(r->report_id), str(r->generator));
    bp_strbuf_printf(sb, "date_range: %lld %lld\n", (long long)r->begin, (long long)r->end);
    for (size_t i = 0; i < r->n_errors; i++)
        bp_strbuf_printf(sb, "error: %s\n", r->errors[i]);
    bp_strbuf_printf(sb,
                     "policy: domain=%s adkim=%s aspf=%s p=%s sp=%s np=%s pct=%d fo=%s testing=%s "
                     "discovery_method=%s\n",
                     str(r->domain), str(r->adkim), str(r->aspf), str(r->p), str(r->sp), str(r->np), r->pct, str(r->fo),
                     str(r->testing), str(r->discovery_method));
    bp_strbuf_printf(sb, "messages: %llu, passing DMARC %llu\n", (unsigned long long)r->messages,
                     (unsigned long long)r->messages_pass);
    for (size_t i = 0; i < r->n_records; i++) {
        const bp_dmarc_record *c = &r->records[i];
        bp_strbuf_printf(sb, "record %zu: source_ip=%s count=%llu disposition=%s dkim=%s spf=%s\n", i + 1, c->source_ip,
                         (unsigned long long)c->count, str(c->disposition), str(c->dkim), str(c->spf));
        bp_strbuf_printf(sb, "  aligned: dkim=%s spf=%s dmarc=%s\n", c->dkim_aligned ? "yes" : "no",
                         c->spf_aligned ? "yes" : "no", c->dmarc_pass ? "pass" : "fail");
        for (size_t j = 0; j < c->n_reasons; j++)
            bp_strbuf_printf(sb, "  reason: type=%s comment=%s\n", str(c->reasons[j].type), str(c->reasons[j].comment));
        bp_strbuf_printf(sb, "  identifiers: header_from=%s envelope_from=%s envelope_to=%s\n", str(c->header_from),
                         c->envelope_from == NULL ? "-"
                         : *c->envelope_from      ? c->envelope_from
                                                  : "(empty)",
                         str(c->envelope_to));
        for (size_t j = 0; j < c->n_dkim; j++)
            bp_strbuf_printf(sb, "  dkim: domain=%s selector=%s result=%s human_result=%s\n",
                             str(c->dkim_results[j].domain), str(c->dkim_results[j].selector),
                             str(c->dkim_results[j].result), str(c->dkim_results[j].human_result));
        for (size_t j = 0; j < c->n_spf; j++)
            bp_strbuf_printf(sb, "  spf: domain=%s scope=%s result=%s human_result=%s\n", str(c->spf_results[j].domain),
                             str(c->spf_results[j].scope), str(c->spf_results[j].result),
                             str(c->spf_results[j].human_result));
    }
}

/* Every fixture of fixtures/dmarc/ (make_fixtures.py writes them). */
static const char *const fixtures[] = {
    "google",
    "outlook",
    "yahoo",
    "mailru",
    "fastmail",
    "comcast",
    "small-text-xml",
    "small-application-xml",
    "small-octet-stream",
    "subject-only",
    "sniffed",
    "utf16",
    "not-report",
    "xxe",
    "xxe-parameter",
    "billion-laughs",
    "gzip-bomb",
    "zip-bomb",
    "zip-many-entries",
    "nested-zip-gzip",
    "nested-gzip-zip",
    "truncated-gzip",
    "zip-encrypted",
    "not-well-formed",
    "wrong-root",
    "no-report-id",
    "bad-source-ip",
    "bad-count",
    "long-fields",
};

/* ---- the fixtures against their .expected dumps ---- */

static void test_fixtures_expected(void **state)
{
    int update = getenv("BP_DMARC_UPDATE") != NULL;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        bp_arena_reset(*state);
        bp_dmarc_report r;
        parse_fixture(*state, fixtures[i], &r);
        bp_strbuf got = {0};
        dump(&r, &got);
        char path[512];
        snprintf(path, sizeof(path), FIXTURES "%s.expected", fixtures[i]);
        if (update) {
            FILE *f = fopen(path, "w");
            assert_non_null(f);
            fputs(got.data, f);
            fclose(f);
        } else {
            size_t len = 0;
            char *want = read_file(path, &len);
            if (strcmp(got.data, want) != 0)
                fail_msg("%s: got\n%s\nwant\n%s", fixtures[i], got.data, want);
            free(want);
        }
        bp_strbuf_free(&got);
    }
}

/* ---- each receiver shape and packing: the fields that matter ---- */

static void test_receivers(void **state)
{
    static const struct {
        const char *label, *file;
        bp_dmarc_packing packing;
        const char *org_name, *report_id, *domain, *p, *name_receiver, *subject_submitter;
        size_t n_records;
        uint64_t messages, messages_pass;
        const char *last_ip;
    } rows[] = {
        {"Google: the message is the zip", "google", BP_DMARC_PACK_ZIP, "google.com", "13911254391876523341",
         "example.com", "none", "google.com", "google.com", 4, 2394, 2391, "203.0.113.66"},
        {"Microsoft: gzip, one-line base64", "outlook", BP_DMARC_PACK_GZIP, "Enterprise Outlook",
         "6f3b2a1c9d8e4f7a8b0c1d2e3f4a5b6c", "example.com", "none", "protection.outlook.com", "protection.outlook.com",
         4, 2394, 2391, "203.0.113.66"},
        {"Yahoo: one-line XML", "yahoo", BP_DMARC_PACK_GZIP, "Yahoo", "1700092800.847362", "example.com", "none",
         "yahoo.com", "yahoo.com", 4, 3563, 3554, "203.0.113.66"},
        {"Mail.ru: application/x-gzip", "mailru", BP_DMARC_PACK_GZIP, "Mail.Ru", "9180323514553427421", "example.com",
         "quarantine", "mail.ru", "mail.ru", 4, 1180, 1159, "203.0.113.66"},
        {"Fastmail: DMARCbis", "fastmail", BP_DMARC_PACK_GZIP, "Fastmail Pty Ltd", "fm-20231115-example.com-0001",
         "example.com", "reject", "fastmail.com", "fastmail.com", 2, 412, 410, "2001:db8::25"},
        {"Comcast: x-zip-compressed, CRLF", "comcast", BP_DMARC_PACK_ZIP, "comcast.net",
         "comcast.net:1700092800:example.com", "example.com", "none", "comcast.net", "comcast.net", 4, 179, 178,
         "203.0.113.66"},
        {"text/xml in ISO-8859-1, quoted-printable", "small-text-xml", BP_DMARC_PACK_XML,
         "Gemeindewerke M\xc3\xbcllheim", "gwm-2023-11-15", "example.com", "none", "gw-muellheim.example.de",
         "gw-muellheim.example.de", 1, 5, 5, "198.51.100.7"},
        {"application/xml, name with unique id", "small-application-xml", BP_DMARC_PACK_XML, "mx.example.org", "4f2a9c",
         "example.com", "none", "mx.example.org", NULL, 1, 2, 2, "2001:db8::25"},
        {"octet-stream *.xml.gz, found by name", "small-octet-stream", BP_DMARC_PACK_GZIP,
         "OpenDMARC at mx2.example.org", "mx2.example.org-1700092800", "example.com", "none", "mx2.example.org", NULL,
         1, 44, 44, "192.0.2.10"},
        {"found by Subject", "subject-only", BP_DMARC_PACK_GZIP, "Subject Only at mx3.example.org", "subject-only-1",
         "example.com", "none", NULL, "mx3.example.org", 1, 44, 44, "192.0.2.10"},
        {"found by root element", "sniffed", BP_DMARC_PACK_XML, "Sniffed at mx4.example.org", "sniffed-1",
         "example.com", "none", NULL, NULL, 1, 44, 44, "192.0.2.10"},
        {"UTF-16 with BOM", "utf16", BP_DMARC_PACK_XML, "\xe6\x97\xa5\xe6\x9c\xac\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab",
         "jp-0001", "example.com", "none", "mail.example.jp", "mail.example.jp", 1, 8, 8, "192.0.2.11"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        bp_dmarc_report r;
        parse_fixture(*state, rows[i].file, &r);
        const char *label = rows[i].label;
        if (r.outcome != BP_DMARC_READ)
            fail_msg("%s: outcome got %s, want read (%s)", label, bp_dmarc_outcome_name(r.outcome), str(r.reason));
        bp_test_check_field(label, "packing", bp_dmarc_packing_name(r.packing), bp_dmarc_packing_name(rows[i].packing));
        bp_test_check_field(label, "org_name", r.org_name, rows[i].org_name);
        bp_test_check_field(label, "report_id", r.report_id, rows[i].report_id);
        bp_test_check_field(label, "domain", r.domain, rows[i].domain);
        bp_test_check_field(label, "p", r.p, rows[i].p);
        bp_test_check_field(label, "name_receiver", r.name_receiver, rows[i].name_receiver);
        bp_test_check_field(label, "subject_submitter", r.subject_submitter, rows[i].subject_submitter);
        if (r.n_records != rows[i].n_records)
            fail_msg("%s: records: got %zu, want %zu", label, r.n_records, rows[i].n_records);
        if (r.messages != rows[i].messages || r.messages_pass != rows[i].messages_pass)
            fail_msg("%s: messages: got %llu (%llu pass), want %llu (%llu pass)", label, (unsigned long long)r.messages,
                     (unsigned long long)r.messages_pass, (unsigned long long)rows[i].messages,
                     (unsigned long long)rows[i].messages_pass);
        bp_test_check_field(label, "last source_ip", r.records[r.n_records - 1].source_ip, rows[i].last_ip);
    }
}

/* Alignment as RFC 7489 defines it, per record of the Google fixture (our IPs passing, one of
 * ours failing DKIM but aligned by SPF, a spoofer failing both). */
static void test_alignment(void **state)
{
    static const struct {
        const char *ip;
        int dkim_aligned, spf_aligned, dmarc_pass;
        const char *auth_dkim; /* first auth_results dkim result, or NULL */
    } want[] = {
        {"192.0.2.10", 1, 1, 1, "pass"},
        {"192.0.2.11", 1, 1, 1, "pass"},
        {"192.0.2.12", 0, 1, 1, "fail"},
        {"203.0.113.66", 0, 0, 0, NULL},
    };
    bp_dmarc_report r;
    parse_fixture(*state, "google", &r);
    assert_int_equal(r.outcome, BP_DMARC_READ);
    assert_int_equal(r.n_records, 4);
    for (size_t i = 0; i < 4; i++) {
        const bp_dmarc_record *c = &r.records[i];
        bp_test_check_field(want[i].ip, "source_ip", c->source_ip, want[i].ip);
        if (c->dkim_aligned != want[i].dkim_aligned || c->spf_aligned != want[i].spf_aligned ||
            c->dmarc_pass != want[i].dmarc_pass)
            fail_msg("%s: aligned got dkim=%d spf=%d dmarc=%d, want %d %d %d", want[i].ip, c->dkim_aligned,
                     c->spf_aligned, c->dmarc_pass, want[i].dkim_aligned, want[i].spf_aligned, want[i].dmarc_pass);
        bp_test_check_field(want[i].ip, "auth dkim", c->n_dkim > 0 ? c->dkim_results[0].result : NULL,
                            want[i].auth_dkim);
    }
}

/* The DMARCbis schema's fields, the namespaced root, and extensions skipped. */
static void test_dmarcbis(void **state)
{
    bp_dmarc_report r;
    parse_fixture(*state, "fastmail", &r);
    assert_int_equal(r.outcome, BP_DMARC_READ);
    static const struct {
        const char *what, *want;
    } rows[] = {
        {"namespace", "urn:ietf:params:xml:ns:dmarc-2.0"},
        {"version", "1.0"},
        {"generator", "Fastmail DMARC reporter 2.1"},
        {"np", "reject"},
        {"testing", "n"},
        {"discovery_method", "treewalk"},
        {"adkim", "s"},
        {"sp", "quarantine"},
        {"fo", "1"},
        {"error", "DMARC record for example.com has an unknown tag: xyz"},
        {"disposition 1", "pass"},
        {"reason 1", "policy_test_mode"},
        {"reason 2 comment", "np applied"},
        {"envelope_from 2", ""},
        {"dkim 2 of record 1", "esp.example.net"},
        {"spf scope of record 2", "helo"},
        {"human_result", "body hash did not verify"},
    };
    const char *got[] = {
        r.xml_namespace,
        r.version,
        r.generator,
        r.np,
        r.testing,
        r.discovery_method,
        r.adkim,
        r.sp,
        r.fo,
        r.n_errors == 1 ? r.errors[0] : NULL,
        r.records[0].disposition,
        r.records[1].n_reasons == 2 ? r.records[1].reasons[0].type : NULL,
        r.records[1].n_reasons == 2 ? r.records[1].reasons[1].comment : NULL,
        r.records[1].envelope_from,
        r.records[0].n_dkim == 2 ? r.records[0].dkim_results[1].domain : NULL,
        r.records[1].n_spf == 1 ? r.records[1].spf_results[0].scope : NULL,
        r.records[1].n_dkim == 1 ? r.records[1].dkim_results[0].human_result : NULL,
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        bp_test_check_field("fastmail", rows[i].what, got[i], rows[i].want);
    assert_int_equal(r.pct, -1); /* DMARCbis has no pct */
    /* the extension in the record (ext:arc-results/ext:domain) did not become an auth result */
    assert_int_equal(r.records[0].n_dkim + r.records[0].n_spf, 3);
}

/* ---- hostile input: refused with its reason, in bounded memory ---- */

/* Resident set size of this process now, in KiB. */
static long rss_now_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct child_result {
    bp_dmarc_outcome outcome;
    bp_status refusal;
    long growth_kib;
    char reason[400];
};

/* Parse fixture @name in a child process: its outcome, reason and peak RSS growth. */
static void parse_in_child(const char *name, struct child_result *res)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        struct child_result out;
        memset(&out, 0, sizeof(out));
        long before = rss_now_kib();
        bp_arena *arena = bp_arena_new();
        bp_dmarc_report r;
        char path[512];
        snprintf(path, sizeof(path), FIXTURES "%s.eml", name);
        size_t len = 0;
        char *bytes = read_file(path, &len);
        if (parse_message(arena, bytes, len, &r) != BP_OK)
            _exit(2);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        out.outcome = r.outcome;
        out.refusal = r.refusal;
        out.growth_kib = ru.ru_maxrss - before;
        snprintf(out.reason, sizeof(out.reason), "%s", str(r.reason));
        if (write(fd[1], &out, sizeof(out)) != (ssize_t)sizeof(out))
            _exit(3);
        _exit(0);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], res, sizeof(*res));
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof(*res))
        fail_msg("%s: the child parsing it did not finish cleanly (status %d)", name, status);
}

/* What a hostile fixture may cost above the process it runs in: the XML is streamed, so a
 * bomb costs a 64 KiB buffer and the parser's state.  Measured (BP_DMARC_VERBOSE=1): 2-2.6 MiB
 * in the plain build, 2.2-4.4 MiB under ASan+UBSan; a bomb held whole would be 50-100 MiB. */
#define HOSTILE_GROWTH_KIB (16L * 1024L)

static void test_hostile_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        bp_status refusal;
        const char *reason; /* a part of the reason */
    } rows[] = {
        {"xxe", BP_ERR_PARSE, "document type declaration"},
        {"xxe-parameter", BP_ERR_PARSE, "document type declaration"},
        {"billion-laughs", BP_ERR_PARSE, "document type declaration"},
        {"gzip-bomb", BP_ERR_LIMIT, "gzip: compression ratio over 300:1"},
        {"zip-bomb", BP_ERR_LIMIT, "zip: compression ratio over 300:1"},
        {"zip-many-entries", BP_ERR_LIMIT, "zip: 100 entries, more than 16 (BP_MAX_DMARC_ZIP_ENTRIES)"},
        {"nested-zip-gzip", BP_ERR_LIMIT, "nested archive: the zip holds a gzip"},
        {"nested-gzip-zip", BP_ERR_LIMIT, "nested archive: the gzip holds a zip"},
        {"truncated-gzip", BP_ERR_PARSE, "gzip: the data ends before the end of the stream"},
        {"zip-encrypted", BP_ERR_PARSE, "zip: the report file is encrypted"},
        {"not-well-formed", BP_ERR_PARSE,
         "the XML is not well-formed: line 19: Opening and ending tag mismatch: count line 19 and cnt"},
        {"wrong-root", BP_ERR_PARSE, "the XML's root element is <html>, not <feedback>"},
        {"no-report-id", BP_ERR_PARSE, "report_metadata has no report_id"},
        {"bad-source-ip", BP_ERR_PARSE, "record 1: source_ip \"192.0.2.300\" is not an IP address"},
        {"bad-count", BP_ERR_PARSE, "record 1: count \"-1\" is not a number"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct child_result res;
        parse_in_child(rows[i].file, &res);
        if (res.outcome != BP_DMARC_REFUSED)
            fail_msg("%s: outcome got %s, want refused", rows[i].file, bp_dmarc_outcome_name(res.outcome));
        if (res.refusal != rows[i].refusal)
            fail_msg("%s: refusal got %s, want %s", rows[i].file, bp_status_to_string(res.refusal),
                     bp_status_to_string(rows[i].refusal));
        if (strstr(res.reason, rows[i].reason) == NULL)
            fail_msg("%s: reason got \"%s\", want it to contain \"%s\"", rows[i].file, res.reason, rows[i].reason);
        if (getenv("BP_DMARC_VERBOSE") != NULL)
            print_message("%s: peak RSS growth %ld KiB\n", rows[i].file, res.growth_kib);
        if (res.growth_kib > HOSTILE_GROWTH_KIB)
            fail_msg("%s: peak RSS grew %ld KiB, want at most %ld", rows[i].file, res.growth_kib, HOSTILE_GROWTH_KIB);
    }
}

/* The promises of dmarc.h (fuzz/dmarc_check.h, shared with the fuzzer). */
static void check_report_clean(const char *label, const bp_dmarc_report *r)
{
    const char *broken = bp_dmarc_check_report(r);
    if (broken != NULL)
        fail_msg("%s: %s", label, broken);
}

/* Over-long fields are cut, control characters masked, and the report still read. */
static void test_fields_masked_and_capped(void **state)
{
    bp_dmarc_report r;
    parse_fixture(*state, "long-fields", &r);
    assert_int_equal(r.outcome, BP_DMARC_READ);
    check_report_clean("long-fields", &r);
    assert_non_null(r.org_name);
    assert_true(strncmp(r.org_name, "Hostile \xc3\xa9", 10) == 0);
    /* 512 bytes of "é" and a space: cut on a character boundary */
    assert_true(strlen(r.org_name) <= BP_MAX_DMARC_FIELD_BYTES && strlen(r.org_name) >= BP_MAX_DMARC_FIELD_BYTES - 1);
    bp_test_check_field("long-fields", "email", r.email, "h@hostile example.net x?y");
    bp_test_check_field("long-fields", "header_from", r.records[0].header_from, "exa?mple.com");
    /* every fixture, read or refused */
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        bp_arena_reset(*state);
        bp_dmarc_report each;
        parse_fixture(*state, fixtures[i], &each);
        check_report_clean(fixtures[i], &each);
    }
}

/* Messages that are no DMARC report: nothing read, nothing refused. */
static void test_not_reports(void **state)
{
    static const char *const files[] = {
        FIXTURES "not-report.eml",
        BP_SOURCE_DIR "/fixtures/dsn/postfix-user-unknown.eml",
        BP_SOURCE_DIR "/fixtures/arf/auth-failure-dkim.eml",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        bp_arena_reset(*state);
        size_t len = 0;
        char *bytes = read_file(files[i], &len);
        bp_dmarc_report r;
        assert_int_equal(parse_message(*state, bytes, len, &r), BP_OK);
        free(bytes);
        if (r.outcome != BP_DMARC_NOT_REPORT)
            fail_msg("%s: outcome got %s, want not-report", files[i], bp_dmarc_outcome_name(r.outcome));
        assert_int_equal(r.packing, BP_DMARC_PACK_NONE); /* nothing was even opened */
    }
    /* a report's Subject over nothing to read (a reply to a report, say) */
    static const char reply[] = "From: someone@example.org\nSubject: Re: Report Domain: example.com Submitter: "
                                "google.com Report-ID: 1\nMIME-Version: 1.0\nContent-Type: text/plain\n\nWhy?\n";
    bp_dmarc_report r;
    assert_int_equal(parse_message(*state, reply, sizeof(reply) - 1, &r), BP_OK);
    assert_int_equal(r.outcome, BP_DMARC_NOT_REPORT);
    assert_null(r.subject_domain);
}

/* ---- inputs built here: the limits, and the packings' corners ---- */

/* gzip @len bytes (one member), into @out (malloc'ed; caller frees). */
static char *gzip_bytes(const char *data, size_t len, size_t *out_len, int level)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* A zip of one entry @name holding @data (libzip, in memory), malloc'ed; caller frees. */
static char *zip_bytes(const char *name, const char *data, size_t len, size_t *out_len)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    assert_non_null(src);
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    assert_non_null(za);
    zip_source_t *file = zip_source_buffer(za, data, len, 0);
    assert_non_null(file);
    assert_true(zip_file_add(za, name, file, ZIP_FL_ENC_UTF_8) >= 0);
    assert_int_equal(zip_close(za), 0);
    assert_int_equal(zip_source_open(src), 0);
    assert_int_equal(zip_source_seek(src, 0, SEEK_END), 0);
    zip_int64_t size = zip_source_tell(src);
    assert_int_equal(zip_source_seek(src, 0, SEEK_SET), 0);
    char *out = malloc((size_t)size);
    assert_non_null(out);
    assert_int_equal(zip_source_read(src, out, (zip_uint64_t)size), size);
    zip_source_close(src);
    zip_source_free(src);
    *out_len = (size_t)size;
    return out;
}

/* A report of @n_records records, @n_auth auth results and @n_errors errors per report. */
static char *build_report(size_t n_records, size_t n_auth, size_t n_errors, size_t *len)
{
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "<?xml version=\"1.0\"?>\n<feedback><report_metadata><org_name>Builder</org_name>"
                        "<email>b@example.net</email><report_id>built-1</report_id>"
                        "<date_range><begin>1700006400</begin><end>1700092799</end></date_range>");
    for (size_t i = 0; i < n_errors; i++)
        bp_strbuf_printf(&sb, "<error>error %zu</error>", i);
    bp_strbuf_puts(&sb, "</report_metadata><policy_published><domain>example.com</domain><p>none</p>"
                        "</policy_published>\n");
    for (size_t i = 0; i < n_records; i++) {
        bp_strbuf_printf(&sb,
                         "<record><row><source_ip>10.%zu.%zu.%zu</source_ip><count>%zu</count><policy_evaluated>"
                         "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
                         "<identifiers><header_from>example.com</header_from></identifiers><auth_results>",
                         (i >> 16) & 255, (i >> 8) & 255, i & 255, i % 7 + 1);
        for (size_t j = 0; j < n_auth; j++)
            bp_strbuf_printf(&sb,
                             "<dkim><domain>d%zu.example.com</domain><selector>s</selector><result>pass</result>"
                             "</dkim>",
                             j);
        bp_strbuf_puts(&sb, "<spf><domain>example.com</domain><result>fail</result></spf></auth_results></record>\n");
    }
    bp_strbuf_puts(&sb, "</feedback>\n");
    *len = sb.len;
    return sb.data;
}

static void read_bytes(bp_arena *arena, const char *bytes, size_t len, bp_dmarc_report *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(bp_dmarc_read_attachment(bytes, len, 0, arena, r), BP_OK);
}

static void test_limits(void **state)
{
    struct {
        const char *label;
        size_t records, auth, errors;
        int pack; /* 0 xml, 1 gzip, 2 zip */
        bp_dmarc_outcome outcome;
        const char *reason;
    } rows[] = {
        {"records at the limit", BP_MAX_DMARC_RECORDS, 1, 0, 1, BP_DMARC_READ, NULL},
        {"records over the limit", BP_MAX_DMARC_RECORDS + 1, 1, 0, 1, BP_DMARC_REFUSED,
         "more than 50000 records (BP_MAX_DMARC_RECORDS)"},
        {"auth results at the limit", 2, BP_MAX_DMARC_AUTH_RESULTS - 1, 0, 0, BP_DMARC_READ, NULL},
        {"auth results over the limit", 2, BP_MAX_DMARC_AUTH_RESULTS, 0, 2, BP_DMARC_REFUSED,
         "record 1: more than 128 DKIM and SPF results (BP_MAX_DMARC_AUTH_RESULTS)"},
        {"errors at the limit", 1, 1, BP_MAX_DMARC_LIST_ITEMS, 0, BP_DMARC_READ, NULL},
        {"errors over the limit", 1, 1, BP_MAX_DMARC_LIST_ITEMS + 1, 0, BP_DMARC_REFUSED,
         "more than 32 errors in report_metadata (BP_MAX_DMARC_LIST_ITEMS)"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        size_t len = 0, packed_len = 0;
        char *xml = build_report(rows[i].records, rows[i].auth, rows[i].errors, &len);
        char *packed = rows[i].pack == 1   ? gzip_bytes(xml, len, &packed_len, 6)
                       : rows[i].pack == 2 ? zip_bytes("r.xml", xml, len, &packed_len)
                                           : NULL;
        bp_dmarc_report r;
        read_bytes(*state, packed != NULL ? packed : xml, packed != NULL ? packed_len : len, &r);
        if (r.outcome != rows[i].outcome)
            fail_msg("%s: outcome got %s (%s), want %s", rows[i].label, bp_dmarc_outcome_name(r.outcome), str(r.reason),
                     bp_dmarc_outcome_name(rows[i].outcome));
        bp_test_check_field(rows[i].label, "reason", r.reason, rows[i].reason);
        if (r.outcome == BP_DMARC_READ && r.n_records != rows[i].records)
            fail_msg("%s: records got %zu, want %zu", rows[i].label, r.n_records, rows[i].records);
        free(xml);
        free(packed);
    }
}

/* XML over BP_MAX_DMARC_XML_BYTES: plain, and a zip that says so before it is opened. */
static void test_xml_bytes_limit(void **state)
{
    size_t len = (size_t)BP_MAX_DMARC_XML_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, "<feedback>", 10);
    bp_dmarc_report r;
    read_bytes(*state, big, len, &r);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    bp_test_check_field("plain", "reason", r.reason, "more than 67108864 bytes of XML (BP_MAX_DMARC_XML_BYTES)");
    size_t zlen = 0;
    char *z = zip_bytes("big.xml", big, len, &zlen);
    read_bytes(*state, z, zlen, &r);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    bp_test_check_field("zip", "reason", r.reason,
                        "zip: the report file says it holds 67108865 bytes, more than 67108864 "
                        "(BP_MAX_DMARC_XML_BYTES)");
    free(z);
    free(big);
}

/* A zip bomb whose directory lies about the size: stopped by the ratio while it is read. */
static void test_zip_lying_sizes(void **state)
{
    size_t len = 10u * 1024u * 1024u, zlen = 0;
    char *xml = malloc(len);
    assert_non_null(xml);
    memset(xml, ' ', len);
    memcpy(xml, "<feedback>", 10);
    char *z = zip_bytes("r.xml", xml, len, &zlen);
    free(xml);
    /* uncompressed size: local header offset 22, central directory entry offset 24 */
    unsigned char *u = (unsigned char *)z;
    assert_memory_equal(u, "PK\x03\x04", 4);
    unsigned char *cd = memmem(u, zlen, "PK\x01\x02", 4);
    assert_non_null(cd);
    static const unsigned char small[4] = {0xe8, 0x03, 0, 0}; /* 1000 */
    memcpy(u + 22, small, 4);
    memcpy(cd + 24, small, 4);
    bp_dmarc_report r;
    read_bytes(*state, z, zlen, &r);
    free(z);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    if (strncmp(r.reason, "zip: compression ratio over 300:1", 33) != 0)
        fail_msg("reason got \"%s\"", r.reason);
    /* read no further than the ratio allows for the entry's compressed bytes, and a chunk */
    if (r.xml_bytes > (size_t)BP_MAX_DMARC_RATIO * zlen + 65536u)
        fail_msg("read %zu bytes of a %zu-byte zip", r.xml_bytes, zlen);
}

/* An attachment over BP_MAX_ATTACHMENT_BYTES is cut by the MIME adapter and refused here. */
static void test_attachment_limit(void **state)
{
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "From: r@example.net\nSubject: Report Domain: example.com Submitter: example.net\n"
                        "MIME-Version: 1.0\nContent-Type: application/gzip; name=\"big.xml.gz\"\n"
                        "Content-Transfer-Encoding: base64\n\n");
    /* 4 MiB + 3 bytes of 0x1f 0x8b ... in base64: "H4sI" repeated decodes to 1f 8b 08 */
    for (size_t i = 0; i < BP_MAX_ATTACHMENT_BYTES / 3 + 2; i++)
        bp_strbuf_puts(&sb, i % 19 == 18 ? "H4sI\n" : "H4sI");
    bp_dmarc_report r;
    assert_int_equal(parse_message(*state, sb.data, sb.len, &r), BP_OK);
    bp_strbuf_free(&sb);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    bp_test_check_field("attachment", "reason", r.reason,
                        "the attachment is larger than 4194304 bytes (BP_MAX_ATTACHMENT_BYTES)");
}

/* gzip and XML corners: several members, trailing garbage, junk after </feedback>, entities. */
static void test_packing_corners(void **state)
{
    size_t len = 0;
    char *xml = build_report(3, 1, 0, &len);
    size_t half = strstr(xml, "<record>") - xml;
    size_t a_len = 0, b_len = 0;
    char *a = gzip_bytes(xml, half, &a_len, 9);
    char *b = gzip_bytes(xml + half, len - half, &b_len, 1);
    bp_strbuf sb = {0};
    bp_strbuf_append(&sb, a, a_len);
    bp_strbuf_append(&sb, b, b_len);
    bp_dmarc_report r;
    read_bytes(*state, sb.data, sb.len, &r);
    if (r.outcome != BP_DMARC_READ || r.n_records != 3)
        fail_msg("two gzip members: got %s (%s) with %zu records", bp_dmarc_outcome_name(r.outcome), str(r.reason),
                 r.n_records);
    bp_strbuf_puts(&sb, "\r\ntrailing garbage\r\n");
    read_bytes(*state, sb.data, sb.len, &r);
    if (r.outcome != BP_DMARC_READ || r.n_records != 3)
        fail_msg("gzip trailing garbage: got %s (%s)", bp_dmarc_outcome_name(r.outcome), str(r.reason));
    bp_strbuf_free(&sb);
    free(a);
    free(b);

    static const struct {
        const char *label, *before;
        int with_report; /* the report built above between before and after */
        const char *after;
        bp_dmarc_outcome outcome;
        const char *reason; /* how the reason starts (libxml2's own words follow) */
    } rows[] = {
        {"junk after the end tag", "", 1, "\n\x01junk<", BP_DMARC_READ, NULL},
        {"white space before the declaration", "\r\n  ", 1, "", BP_DMARC_READ, NULL},
        {"undeclared entity after the end tag", "", 1, "<x>&secret;</x>", BP_DMARC_READ, NULL},
        {"empty", " \n", 0, "", BP_DMARC_REFUSED, "the attachment is empty"},
        {"ends early", "<feedback><report_metadata>", 0, "", BP_DMARC_REFUSED, "the XML is not well-formed: line 1: "},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_arena_reset(*state);
        char *doc = bp_arena_printf(*state, "%s%s%s", rows[i].before, rows[i].with_report ? xml : "", rows[i].after);
        read_bytes(*state, doc, strlen(doc), &r);
        if (r.outcome != rows[i].outcome)
            fail_msg("%s: got %s (%s)", rows[i].label, bp_dmarc_outcome_name(r.outcome), str(r.reason));
        if ((rows[i].reason == NULL) != (r.reason == NULL) ||
            (r.reason != NULL && strncmp(r.reason, rows[i].reason, strlen(rows[i].reason)) != 0))
            fail_msg("%s: reason got \"%s\", want it to start \"%s\"", rows[i].label, str(r.reason),
                     str(rows[i].reason));
    }
    /* an entity reference inside the report, with no DTD to declare it */
    char *doc = bp_arena_printf(*state, "%s", xml);
    char *org = strstr(doc, "Builder");
    memcpy(org, "&lol9;;", 7);
    read_bytes(*state, doc, strlen(doc), &r);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    assert_non_null(strstr(r.reason, "Entity 'lol9' not defined"));
    free(xml);
}

/* No file is ever read: an external entity naming a file whose contents we know. */
static void test_xxe_reads_nothing(void **state)
{
    char path[] = "/tmp/bp-dmarc-secret.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char secret[] = "TOP-SECRET-7d41";
    assert_int_equal(write(fd, secret, sizeof(secret) - 1), (ssize_t)sizeof(secret) - 1);
    close(fd);
    size_t len = 0;
    char *xml = build_report(1, 1, 0, &len);
    const char *body = strstr(xml, "<feedback>");
    char *doc = bp_arena_printf(
        *state, "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY x SYSTEM \"file://%s\">]>\n%s", path, body);
    char *org = strstr(doc, "Builder");
    memcpy(org, "&x;    ", 7);
    bp_dmarc_report r;
    read_bytes(*state, doc, strlen(doc), &r);
    unlink(path);
    free(xml);
    assert_int_equal(r.outcome, BP_DMARC_REFUSED);
    assert_null(r.org_name);
    assert_null(strstr(r.reason, secret));
}

/* ---- the MIME adapter's report attachments (mime.c) ---- */

static void test_mime_report_attachments(void **state)
{
    static const char msg[] =
        "From: a@example.net\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: application/zip; name=\"r.zip\"\nContent-Transfer-Encoding: base64\n\n"
        "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\n"
        "--b\nContent-Type: application/octet-stream; name=\"photo.jpg\"\n"
        "Content-Transfer-Encoding: base64\n\n/9j/4AAQ\n"
        "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
        "filename=\"x!example.com!1!2.XML.GZ\"\nContent-Transfer-Encoding: base64\n\nH4sI\n"
        "--b\nContent-Type: message/rfc822\n\n"
        "From: b@example.org\nMIME-Version: 1.0\nContent-Type: application/gzip; name=\"in.gz\"\n"
        "Content-Transfer-Encoding: base64\n\nH4sI\n"
        "--b--\n";
    static const struct {
        const char *label, *type, *subtype, *filename;
        size_t body_len; /* (size_t)-1: not decoded */
    } want[] = {
        {"zip at the top", "application", "zip", "r.zip", 22},
        {"a photo", "application", "octet-stream", "photo.jpg", (size_t)-1},
        {"octet-stream named like a report", "application", "octet-stream", "x!example.com!1!2.XML.GZ", 3},
        {"gzip in an attached message", "application", "gzip", "in.gz", (size_t)-1},
    };
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(msg, sizeof(msg) - 1, *state, &m), BP_OK);
    size_t k = 0;
    for (const bp_part *p = m.root; p != NULL; p = bp_part_walk_next(m.root, p)) {
        if (strcmp(p->type, "application") != 0)
            continue;
        assert_true(k < sizeof(want) / sizeof(want[0]));
        bp_test_check_field(want[k].label, "subtype", p->subtype, want[k].subtype);
        bp_test_check_field(want[k].label, "filename", p->filename, want[k].filename);
        size_t got = p->body != NULL ? p->body_len : (size_t)-1;
        if (got != want[k].body_len)
            fail_msg("%s: body length got %zd, want %zd", want[k].label, (ssize_t)got, (ssize_t)want[k].body_len);
        k++;
    }
    assert_int_equal(k, 4);
    assert_int_equal(m.attachment_bytes, 25);
    /* binary bytes are kept as they are: no line-end conversion */
    static const char crlf[] = "From: a@example.net\nMIME-Version: 1.0\nContent-Type: application/gzip\n"
                               "Content-Transfer-Encoding: base64\n\nH4sNCg0KAA==\n";
    assert_int_equal(bp_mime_parse(crlf, sizeof(crlf) - 1, *state, &m), BP_OK);
    assert_int_equal(m.root->body_len, 7);
    assert_memory_equal(m.root->body, "\x1f\x8b\x0d\x0a\x0d\x0a\x00", 7);
}

/* ---- stage 2: the module, the event, the store ---- */

/* Without a module to load, a report is an installation problem (pipe mode answers 75); a
 * message that is no report never needs one.  In a child, before this process loads it. */
static void test_module_missing(void **state)
{
    (void)state;
    if (access(BP_MODULE_DIR "/bouncepipe-dmarc.so", F_OK) == 0) {
        print_message("skipped: a module is installed in %s\n", BP_MODULE_DIR);
        return;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("BOUNCEPIPE_DMARC_MODULE", "/nonexistent/bouncepipe-dmarc.so", 1);
        bp_arena *arena = bp_arena_new();
        size_t len = 0;
        char *bytes = read_file(FIXTURES "google.eml", &len);
        bp_mime_message m;
        bp_dmarc_report r;
        int ok = arena != NULL && bp_mime_parse(bytes, len, arena, &m) == BP_OK &&
                 bp_dmarc_read_message(&m, NULL, arena, &r) == BP_ERR_UNSUPPORTED &&
                 strstr(bp_dmarc_reader_error(), "bouncepipe-dmarc.so") != NULL;
        free(bytes);
        bytes = read_file(FIXTURES "not-report.eml", &len);
        ok = ok && bp_mime_parse(bytes, len, arena, &m) == BP_OK &&
             bp_dmarc_read_message(&m, NULL, arena, &r) == BP_OK && r.outcome == BP_DMARC_NOT_REPORT;
        free(bytes);
        bp_arena_free(arena);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("a report without the module: want BP_ERR_UNSUPPORTED naming bouncepipe-dmarc.so");
}

static void process_fixture(bp_arena *arena, const bp_pipeline *p, const char *path, const char *rcpt,
                            bp_process_result *res, char **bytes, size_t *len)
{
    *bytes = read_file(path, len);
    bp_envelope env = {path, rcpt, NULL};
    assert_int_equal(bp_process_message(p, &env, 0, *bytes, *len, arena, res), BP_OK);
}

/* One event per report, through the module: never a recipient, even with a VERP bounce address;
 * a refused report is unrecognized, says why, and is quarantined. */
static void test_report_event(void **state)
{
    bp_pipeline p;
    bp_pipeline_init(&p);
    p.quarantine_dir = "/nonexistent-quarantine";
    const char *verp = "bounces-jdoe=example.net@bounces.example.com";
    static const struct {
        const char *fixture;
        bp_event_type type;
        const char *rule, *reporting_mta, *diagnostic_has;
        bp_keep keep;
    } want[] = {
        {"google", BP_EVENT_DMARC_REPORT, "dmarc", "google.com", NULL, BP_KEEP_RECORD},
        {"fastmail", BP_EVENT_DMARC_REPORT, "dmarc", "Fastmail Pty Ltd", NULL, BP_KEEP_RECORD},
        {"xxe", BP_EVENT_UNRECOGNIZED, "dmarc-refused", NULL, "DOCTYPE", BP_KEEP_QUARANTINE},
        {"zip-bomb", BP_EVENT_UNRECOGNIZED, "dmarc-refused", NULL, "BP_MAX_DMARC_RATIO", BP_KEEP_QUARANTINE},
        {"not-report", BP_EVENT_AUTOREPLY, NULL, NULL, NULL, BP_KEEP_RECORD},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[512];
        char *bytes = NULL;
        size_t len = 0;
        bp_process_result res;
        bp_arena_reset(*state);
        snprintf(path, sizeof(path), FIXTURES "%s.eml", want[i].fixture);
        process_fixture(*state, &p, path, verp, &res, &bytes, &len);
        free(bytes);
        assert_int_equal(res.n_events, 1);
        const bp_event *e = &res.events[0];
        if (e->type != want[i].type)
            fail_msg("%s: type got %s, want %s", want[i].fixture, bp_event_type_name(e->type),
                     bp_event_type_name(want[i].type));
        if (want[i].type == BP_EVENT_AUTOREPLY)
            continue;
        bp_test_check_field(want[i].fixture, "recipient", e->recipient, NULL);
        bp_test_check_field(want[i].fixture, "recipient_from", e->recipient_from, NULL);
        bp_test_check_field(want[i].fixture, "rule", e->rule, want[i].rule);
        bp_test_check_field(want[i].fixture, "reporting_mta", e->reporting_mta, want[i].reporting_mta);
        if (e->action != BP_ACT_IGNORE)
            fail_msg("%s: action got %s, want ignore", want[i].fixture, bp_action_name(e->action));
        if (want[i].diagnostic_has != NULL &&
            (e->diagnostic == NULL || strstr(e->diagnostic, want[i].diagnostic_has) == NULL))
            fail_msg("%s: diagnostic got %s, want it to name %s", want[i].fixture, e->diagnostic,
                     want[i].diagnostic_has);
        if ((e->dmarc != NULL) != (want[i].type == BP_EVENT_DMARC_REPORT))
            fail_msg("%s: the event %s the report", want[i].fixture, e->dmarc != NULL ? "carries" : "lacks");
        if (bp_finish_decide(&p, &res) != want[i].keep)
            fail_msg("%s: want it %s", want[i].fixture,
                     want[i].keep == BP_KEEP_QUARANTINE ? "quarantined" : "recorded");
    }
}

/* A temporary directory for a store and a quarantine, removed by the teardown. */
typedef bp_test_store_fixture store_fixture;

static int store_setup(void **state)
{
    *state = bp_test_store_fixture_new("dmarc");
    return *state == NULL;
}

static int store_teardown(void **state)
{
    return bp_test_store_fixture_free(*state);
}

/* Pipe mode's ending for @p bytes; @return its outcome. */
static bp_finish_outcome finish(store_fixture *f, const char *source, const char *bytes, size_t len)
{
    bp_pipeline p;
    bp_pipeline_init(&p);
    p.quarantine_dir = f->quarantine;
    bp_envelope env = {source, NULL, NULL};
    bp_process_result res;
    bp_finish_result fin;
    bp_arena_reset(f->arena);
    assert_int_equal(bp_process_message(&p, &env, 0, bytes, len, f->arena, &res), BP_OK);
    bp_status st = bp_finish_message(&p, f->store, &res, bytes, len, &fin);
    if (st != BP_OK)
        fail_msg("%s: finishing: %s: %s", source, bp_status_to_string(st), bp_store_last_error(f->store));
    return fin.outcome;
}

/* Finish the message in the file @p path twice, as a pipe retry would: @p first, then @p again. */
static void finish_twice(store_fixture *f, const char *path, bp_finish_outcome first, bp_finish_outcome again)
{
    size_t len = 0;
    char *bytes = read_file(path, &len);
    bp_finish_outcome got = finish(f, path, bytes, len);
    if (got != first)
        fail_msg("%s: finished as %d, want %d", path, (int)got, (int)first);
    got = finish(f, path, bytes, len);
    if (got != again)
        fail_msg("%s again: finished as %d, want %d", path, (int)got, (int)again);
    free(bytes);
}

static int count_listed(void *user, const bp_dmarc_listed *row)
{
    (void)row;
    (*(size_t *)user)++;
    return 0;
}

static int count_suppression(void *user, const bp_suppression *row)
{
    (void)row;
    (*(size_t *)user)++;
    return 0;
}

static size_t reports_stored(store_fixture *f)
{
    bp_dmarc_window w = {0, INT64_MAX, NULL};
    size_t n = 0;
    assert_int_equal(bp_store_dmarc_report_list(f->store, &w, count_listed, &n), BP_OK);
    return n;
}

typedef struct ledger_seen {
    size_t rows, refused, dmarc;
    const char *refused_reason_has;
    int reason_found;
} ledger_seen;

static int see_row(void *user, const bp_ledger_row *r)
{
    ledger_seen *l = user;
    l->rows++;
    if (r->event.type == BP_EVENT_DMARC_REPORT)
        l->dmarc++;
    if (r->event.rule != NULL && strcmp(r->event.rule, "dmarc-refused") == 0) {
        l->refused++;
        l->reason_found |= r->event.diagnostic != NULL && strstr(r->event.diagnostic, l->refused_reason_has) != NULL;
    }
    if (r->event.recipient != NULL)
        fail_msg("a DMARC ledger row has the recipient %s", r->event.recipient);
    return 0;
}

/* Stored once per (organisation, report id): the same message again (a pipe retry, a replay), and
 * the same report in another message; a hostile one quarantined with its reason; no recipient
 * touched. */
static void test_store_once(void **state)
{
    store_fixture *f = *state;
    size_t len = 0;
    char *google = read_file(FIXTURES "google.eml", &len);
    assert_int_equal(finish(f, "google", google, len), BP_FINISHED_RECORDED);
    assert_int_equal(reports_stored(f), 1);
    assert_int_equal(finish(f, "google again", google, len), BP_FINISHED_DUPLICATE);
    assert_int_equal(reports_stored(f), 1);
    /* the receiver sends it again in another message: a new unit, the same report */
    char *resent = malloc(len + 32);
    assert_non_null(resent);
    const char *mid = strstr(google, "Message-ID: <");
    assert_non_null(mid);
    size_t at = (size_t)(mid - google) + strlen("Message-ID: <");
    memcpy(resent, google, at);
    memcpy(resent + at, "resent.", 7);
    memcpy(resent + at + 7, google + at, len - at);
    assert_int_equal(finish(f, "google resent", resent, len + 7), BP_FINISHED_RECORDED);
    assert_int_equal(reports_stored(f), 1);
    free(resent);
    free(google);
    finish_twice(f, FIXTURES "xxe.eml", BP_FINISHED_QUARANTINED, BP_FINISHED_KEPT_BEFORE);
    char qdir[160];
    snprintf(qdir, sizeof(qdir), "%s/new", f->quarantine);
    DIR *d = opendir(qdir);
    assert_non_null(d);
    size_t kept = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        kept += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(kept, 1);
    assert_int_equal(reports_stored(f), 1);
    ledger_seen seen = {0, 0, 0, "DOCTYPE", 0};
    assert_int_equal(bp_store_ledger_events(f->store, see_row, &seen), BP_OK);
    assert_int_equal(seen.rows, 3); /* two units of the report, one placeholder */
    assert_int_equal(seen.dmarc, 2);
    assert_int_equal(seen.refused, 1);
    assert_true(seen.reason_found);
    size_t suppressed = 0;
    bp_store_filter all = {0, NULL, NULL, NULL, 1};
    assert_int_equal(bp_store_export(f->store, &all, count_suppression, &suppressed), BP_OK);
    assert_int_equal(suppressed, 0);
}

/* The dump of what the store keeps of a report: everything but where it came from. */
static void dump_stored(const bp_dmarc_report *r, bp_strbuf *sb)
{
    bp_strbuf full = {0};
    dump(r, &full);
    for (const char *line = full.data; line != NULL && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, "attachment:", 11) != 0 && strncmp(line, "subject:", 8) != 0 &&
            strncmp(line, "file name:", 10) != 0)
            bp_strbuf_append(sb, line, n);
        line = nl != NULL ? nl + 1 : NULL;
    }
    bp_strbuf_free(&full);
}

typedef struct readback {
    bp_strbuf dumps;
    size_t n;
} readback;

static int read_back(void *user, long long id, const char *fingerprint, const bp_dmarc_report *r)
{
    readback *b = user;
    (void)id;
    assert_non_null(fingerprint);
    dump_stored(r, &b->dumps);
    b->n++;
    return 0;
}

/* Every report read from the receivers' fixtures comes back from the store as it was read. */
static void test_store_roundtrip(void **state)
{
    store_fixture *f = *state;
    static const char *const read_ones[] = {"google",   "outlook", "yahoo",          "mailru",
                                            "fastmail", "comcast", "small-text-xml", "small-application-xml",
                                            "utf16"};
    bp_strbuf want = {0};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    for (size_t i = 0; i < sizeof(read_ones) / sizeof(read_ones[0]); i++) {
        bp_dmarc_report r;
        bp_arena_reset(f->arena);
        parse_fixture(f->arena, read_ones[i], &r);
        assert_int_equal(r.outcome, BP_DMARC_READ);
        dump_stored(&r, &want);
        int stored = 0;
        assert_int_equal(bp_store_dmarc_put(f->store, read_ones[i], &r, &stored), BP_OK);
        assert_int_equal(stored, 1);
        assert_int_equal(bp_store_dmarc_put(f->store, read_ones[i], &r, &stored), BP_OK);
        assert_int_equal(stored, 0); /* once */
    }
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    readback got = {{0}, 0};
    for (long long after = 0;;) { /* two reports a page: the pages join up */
        size_t before = got.n;
        bp_arena_reset(f->arena);
        assert_int_equal(bp_store_dmarc_reports(f->store, after, 2, f->arena, read_back, &got), BP_OK);
        if (got.n == before)
            break;
        after += (long long)(got.n - before);
    }
    assert_int_equal(got.n, sizeof(read_ones) / sizeof(read_ones[0]));
    if (strcmp(got.dumps.data, want.data) != 0)
        fail_msg("read back:\n%s\nwant\n%s", got.dumps.data, want.data);
    bp_strbuf_free(&got.dumps);
    bp_strbuf_free(&want);
}

static int detail_of(void *user, long long id, const char *fingerprint, const bp_dmarc_report *r)
{
    (void)id;
    (void)fingerprint;
    *(bp_dmarc_report *)user = *r;
    return 0;
}

/* A report whose detail would pass BP_MAX_DMARC_STORE_BYTES keeps every record (the counts) but
 * not the detail of the last ones; a count past BP_MAX_DMARC_STORED_COUNT is stored as the cap. */
static void test_store_budget(void **state)
{
    store_fixture *f = *state;
    enum { RECORDS = 800, RESULTS = 40 };
    char long_text[501], domain[201];
    memset(long_text, 'h', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    memset(domain, 'd', sizeof(domain) - 1);
    domain[sizeof(domain) - 1] = '\0';
    bp_dmarc_report r;
    memset(&r, 0, sizeof(r));
    r.outcome = BP_DMARC_READ;
    r.org_name = "budget.example";
    r.report_id = "b-1";
    r.domain = "example.com";
    r.p = "none";
    r.pct = -1;
    r.begin = 1700000000;
    r.end = 1700086399;
    r.n_records = RECORDS;
    r.records = bp_arena_alloc(f->arena, RECORDS * sizeof(*r.records));
    bp_dmarc_dkim *dkim = bp_arena_alloc(f->arena, RESULTS * sizeof(*dkim));
    assert_true(r.records != NULL && dkim != NULL);
    for (size_t i = 0; i < RESULTS; i++)
        dkim[i] = (bp_dmarc_dkim){domain, "s1", "pass", long_text};
    for (size_t i = 0; i < RECORDS; i++) {
        bp_dmarc_record *rec = &r.records[i];
        rec->source_ip = "192.0.2.1";
        rec->count = i == 0 ? 1000000000000000ull : 1;
        rec->dkim = "pass";
        rec->spf = "pass";
        rec->dkim_aligned = rec->spf_aligned = rec->dmarc_pass = 1;
        rec->header_from = "example.com";
        rec->dkim_results = dkim;
        rec->n_dkim = RESULTS;
    }
    r.messages = r.messages_pass = UINT64_MAX;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_dmarc_put(f->store, "fp", &r, NULL), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    bp_dmarc_report back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(bp_store_dmarc_reports(f->store, 0, 10, f->arena, detail_of, &back), BP_OK);
    assert_int_equal(back.n_records, RECORDS);
    size_t with_detail = 0, bytes = 0;
    for (size_t i = 0; i < back.n_records; i++) {
        with_detail += back.records[i].n_dkim > 0;
        for (size_t j = 0; j < back.records[i].n_dkim; j++)
            bytes +=
                strlen(back.records[i].dkim_results[j].human_result) + strlen(back.records[i].dkim_results[j].domain);
    }
    if (with_detail == 0 || with_detail >= RECORDS)
        fail_msg("records with their detail: got %zu of %d, want some but not all", with_detail, RECORDS);
    assert_true(back.records[0].n_dkim == RESULTS && back.records[RECORDS - 1].n_dkim == 0);
    if (bytes > BP_MAX_DMARC_STORE_BYTES)
        fail_msg("detail stored: %zu bytes, more than BP_MAX_DMARC_STORE_BYTES", bytes);
    assert_int_equal(back.records[0].count, BP_MAX_DMARC_STORED_COUNT);
    assert_int_equal(back.messages, BP_MAX_DMARC_STORED_COUNT);
    bp_dmarc_window w = {0, INT64_MAX, NULL};
    bp_dmarc_listed got;
    memset(&got, 0, sizeof(got));
    size_t n = 0;
    assert_int_equal(bp_store_dmarc_report_list(f->store, &w, count_listed, &n), BP_OK);
    assert_int_equal(n, 1);
    (void)got;
}

static int take_failure_row(void *user, const bp_dmarc_failure *row)
{
    bp_strbuf *sb = user;
    bp_strbuf_printf(sb, "%s %s %s;", row->reported_domain, row->source_ip != NULL ? row->source_ip : "-",
                     row->feedback_type != NULL ? row->feedback_type : "-");
    return 0;
}

/* An ARF auth-failure report (a DMARC failure report) is linked to its Reported-Domain; other
 * complaints are not. */
static void test_failure_link(void **state)
{
    store_fixture *f = *state;
    finish_twice(f, BP_SOURCE_DIR "/fixtures/arf/auth-failure-dkim.eml", BP_FINISHED_RECORDED, BP_FINISHED_DUPLICATE);
    finish_twice(f, BP_SOURCE_DIR "/fixtures/arf/yahoo-abuse.eml", BP_FINISHED_RECORDED, BP_FINISHED_DUPLICATE);
    bp_strbuf got = {0};
    bp_dmarc_window w = {0, INT64_MAX, NULL};
    assert_int_equal(bp_store_dmarc_failure_list(f->store, &w, take_failure_row, &got), BP_OK);
    bp_test_check_str("failure reports", got.data, "example.com 192.0.2.99 auth-failure;");
    bp_strbuf_free(&got);
}

/* [dmarc] own_networks: IPv4 and IPv6 networks, host bits ignored, bad ones refused. */
static void test_own_networks(void **state)
{
    (void)state;
    static const struct {
        const char *net, *ip;
        int parses, inside;
    } rows[] = {
        {"192.0.2.0/24", "192.0.2.13", 1, 1},
        {"192.0.2.0/24", "192.0.3.1", 1, 0},
        {"192.0.2.77/24", "192.0.2.1", 1, 1},
        {"10.0.0.1", "10.0.0.1", 1, 1},
        {"10.0.0.1", "10.0.0.2", 1, 0},
        {"0.0.0.0/0", "203.0.113.66", 1, 1},
        {"2001:db8::/32", "2001:db8::10", 1, 1},
        {"2001:db8::/32", "2001:db9::1", 1, 0},
        {"2001:db8::/32", "192.0.2.1", 1, 0},
        {"192.0.2.0/24", "2001:db8::1", 1, 0},
        {"2001:db8:0:1::/64", "2001:db8:0:1:ffff::1", 1, 1},
        {"192.0.2.0/33", NULL, 0, 0},
        {"::/129", NULL, 0, 0},
        {"192.0.2.0/", NULL, 0, 0},
        {"example.com", NULL, 0, 0},
        {"", NULL, 0, 0},
        {"192.0.2.0/24x", NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_cidr net;
        int parses = bp_cidr_parse(rows[i].net, &net) == 0;
        if (parses != rows[i].parses)
            fail_msg("%s: parses got %d, want %d", rows[i].net, parses, rows[i].parses);
        if (parses && bp_cidr_contains(&net, rows[i].ip) != rows[i].inside)
            fail_msg("%s contains %s: got %d, want %d", rows[i].net, rows[i].ip, !rows[i].inside, rows[i].inside);
    }
}

/* Register test @p f with a fresh store in a temporary directory (store_setup / store_teardown). */
#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BP_ARENA_TEST(test_fixtures_expected),
        BP_ARENA_TEST(test_receivers),
        BP_ARENA_TEST(test_alignment),
        BP_ARENA_TEST(test_dmarcbis),
        BP_ARENA_TEST(test_hostile_fixtures),
        BP_ARENA_TEST(test_fields_masked_and_capped),
        BP_ARENA_TEST(test_not_reports),
        BP_ARENA_TEST(test_limits),
        BP_ARENA_TEST(test_xml_bytes_limit),
        BP_ARENA_TEST(test_zip_lying_sizes),
        BP_ARENA_TEST(test_attachment_limit),
        BP_ARENA_TEST(test_packing_corners),
        BP_ARENA_TEST(test_xxe_reads_nothing),
        BP_ARENA_TEST(test_mime_report_attachments),
        /* first of stage 2: before this process loads the module */
        cmocka_unit_test(test_module_missing),
        BP_ARENA_TEST(test_report_event),
        STORE_TEST(test_store_once),
        STORE_TEST(test_store_roundtrip),
        STORE_TEST(test_store_budget),
        STORE_TEST(test_failure_link),
        cmocka_unit_test(test_own_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
