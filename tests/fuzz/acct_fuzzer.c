/*
 * acct_fuzzer.c - the PowerMTA accounting stream (acct_csv.h over the CSV reader) and the
 * record -> event mapping (acct.h).
 *
 * The first input byte sets the feed size (1..256 bytes per bp_acct_reader_feed(), so that
 * records, quotes and CRLF pairs are cut at every place a pipe read can cut them); the rest is
 * the stream.  After each feed the reader is drained, as the acct command drains it; at the
 * end it is drained with at_eof.  Every record becomes an event and a key, with the shipped
 * rules, so that the mapping code sees whatever the reader lets through: the complaint model
 * (header_NAME and arf_NAME columns, configured per-recipient headers, VERP by prefix or by
 * pattern - chosen by bits of the first byte), the time forms and the keyed check.
 */
#include <string.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/limits.h"
#include "fuzz_common.h"

static bp_rules *rules;
static bp_policy policy;
static bp_regex *verp_pattern; /* the per-message form of the guide, as [verp] pattern */

static void quiet(void *user, const char *message)
{
    (void)user;
    (void)message;
}

static void drain(bp_acct_reader *r, int at_eof, bp_arena *arena, const bp_acct_options *opts)
{
    for (;;) {
        bp_csv_record raw;
        bp_acct_record rec;
        bp_csv_outcome outcome = BP_CSV_NEED_MORE;
        if (bp_acct_reader_next(r, at_eof, &raw, &rec, &outcome) != BP_OK || outcome == BP_CSV_NEED_MORE)
            return;
        if (outcome == BP_CSV_MALFORMED && raw.error == NULL)
            abort(); /* a skipped record always says why */
        if (outcome != BP_CSV_RECORD)
            continue;
        if (raw.n_fields > BP_MAX_ACCT_FIELDS || raw.raw_len > BP_MAX_ACCT_LINE_BYTES)
            abort(); /* the documented bounds */
        bp_acct_result result;
        int keyed = bp_acct_record_keyed(opts, &rec);
        if (bp_acct_record_event(opts, &rec, arena, &result) == BP_OK) {
            if (keyed && result.disposition == BP_ACCT_IGNORED)
                abort(); /* a record we ignore is never looked up as a stored unit */
            if (result.disposition == BP_ACCT_EVENT && result.event.recipient != NULL &&
                strlen(result.event.recipient) > BP_MAX_ADDRESS_BYTES)
                abort();
        }
        (void)bp_acct_parse_time(rec.time_logged);
        (void)bp_acct_record_key(&rec, arena);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (rules == NULL) {
        bp_policy_default(&policy);
        if (bp_rules_new(&rules) != BP_OK || bp_rules_load_builtin(rules, quiet, NULL, NULL) != BP_OK)
            abort();
        verp_pattern = bp_verp_pattern_compile(
            "^customer\\d+-campaign\\d+-uniq\\d+-(?<local>.+)=(?<domain>[^=@]+)@bounces\\.example\\.com$", NULL, 0);
        if (verp_pattern == NULL)
            abort();
    }
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    bp_acct_reader *reader = NULL;
    bp_arena *arena = bp_arena_new();
    if (arena == NULL || bp_acct_reader_new(&reader) != BP_OK)
        goto out;
    static const char *const rcpt_headers[] = {"X-Rcpt", "X-Recipient", NULL};
    bp_verp_options by_prefix = {"bounces", NULL, 0, NULL};
    bp_verp_options by_pattern = {NULL, NULL, 0, verp_pattern};
    bp_acct_options opts = {.rules = rules,
                            .policy = &policy,
                            .source = "fuzz",
                            .transient = (step & 1) != 0,
                            .verp = (step & 2)   ? &by_prefix
                                    : (step & 4) ? &by_pattern
                                                 : NULL,
                            .rcpt_headers = (step & 8) ? rcpt_headers : NULL};
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (bp_acct_reader_feed(reader, (const char *)data + off, n) != BP_OK)
            goto out;
        drain(reader, 0, arena, &opts);
    }
    drain(reader, 1, arena, &opts);
out:
    bp_acct_reader_free(reader);
    bp_arena_free(arena);
    return 0;
}
