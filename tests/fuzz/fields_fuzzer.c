/*
 * fields_fuzzer.c - the field-group grammar and the two report parsers built on it.
 *
 * The first input byte picks the target, the rest is the text:
 *   0: bp_fields_parse() directly, then a lookup in every group;
 *   1: the text as the message/delivery-status part of a synthetic multipart/report,
 *      through bp_mime_parse() and bp_dsn_parse();
 *   2: the text as the message/feedback-report part of a synthetic ARF report, through
 *      bp_mime_parse() and bp_arf_parse().
 * The synthetic messages are otherwise well-formed, so the fuzzer spends its effort on the
 * field parsers rather than on getting through MIME.
 */
#include <stdio.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/fields.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"
#include "fuzz_common.h"

static const char dsn_head[] = "From: MAILER-DAEMON@mx.example.net\r\n"
                               "To: bounces@example.com\r\n"
                               "Subject: Undelivered Mail Returned to Sender\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                               " boundary=\"=_fuzz_boundary_7f3a\"\r\n"
                               "\r\n"
                               "--=_fuzz_boundary_7f3a\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "Delivery failed.\r\n"
                               "--=_fuzz_boundary_7f3a\r\n"
                               "Content-Type: message/delivery-status\r\n"
                               "\r\n";
static const char arf_head[] = "From: abuse@fbl.example.net\r\n"
                               "To: fbl@example.com\r\n"
                               "Subject: complaint\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: multipart/report; report-type=feedback-report;\r\n"
                               " boundary=\"=_fuzz_boundary_7f3a\"\r\n"
                               "\r\n"
                               "--=_fuzz_boundary_7f3a\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "This is an email abuse report.\r\n"
                               "--=_fuzz_boundary_7f3a\r\n"
                               "Content-Type: message/feedback-report\r\n"
                               "\r\n";
static const char tail[] = "\r\n--=_fuzz_boundary_7f3a\r\n"
                           "Content-Type: message/rfc822\r\n"
                           "\r\n"
                           "From: news@example.com\r\n"
                           "To: jdoe@example.org\r\n"
                           "Message-ID: <fuzz.1@example.com>\r\n"
                           "Subject: hello\r\n"
                           "\r\n"
                           "body\r\n"
                           "--=_fuzz_boundary_7f3a--\r\n";

static void run_report(int arf, const uint8_t *text, size_t size, bp_arena *arena)
{
    const char *head = arf ? arf_head : dsn_head;
    size_t head_len = strlen(head), tail_len = sizeof(tail) - 1;
    char *msg = malloc(head_len + size + tail_len);
    if (msg == NULL)
        return;
    memcpy(msg, head, head_len);
    if (size > 0)
        memcpy(msg + head_len, text, size);
    memcpy(msg + head_len + size, tail, tail_len);
    bp_mime_message mime;
    if (bp_mime_parse(msg, head_len + size + tail_len, arena, &mime) == BP_OK) {
        bp_report report;
        memset(&report, 0, sizeof(report));
        if (arf)
            bp_arf_parse(&mime, NULL, arena, &report);
        else
            bp_dsn_parse(&mime, NULL, arena, &report);
        if (report.n_blocks > BP_MAX_RECIPIENTS)
            abort(); /* the recipient limit is a promise */
    }
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode = fuzz_take_mode(&data, &size, 3);
    if (mode < 0)
        return 0;
    bp_arena *arena = bp_arena_new();
    if (arena == NULL)
        return 0;
    if (mode == 0) {
        bp_field_group *groups = NULL;
        size_t n = 0, dropped = 0;
        if (bp_fields_parse((const char *)data, size, 64, arena, &groups, &n, &dropped) == BP_OK) {
            if (n > 64)
                abort();
            for (size_t i = 0; i < n; i++) {
                if (groups[i].n > BP_MAX_HEADERS_PER_PART)
                    abort();
                (void)bp_fields_get(&groups[i], "Final-Recipient");
            }
        }
    } else {
        run_report(mode == 2, data, size, arena);
    }
    bp_arena_free(arena);
    return 0;
}
