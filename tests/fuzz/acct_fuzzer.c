/*
 * acct_fuzzer.c - the PowerMTA accounting stream (acct_csv.h over the CSV reader) and the
 * record -> event mapping (acct.h).
 *
 * The first input byte sets the feed size (1..256 bytes per bp_acct_reader_feed(), so that
 * records, quotes and CRLF pairs are cut at every place a pipe read can cut them); the rest is
 * the stream.  After each feed the reader is drained, as the acct command drains it; at the
 * end it is drained with at_eof.  Every record becomes an event and a key, with the shipped
 * rules, so that the mapping code sees whatever the reader lets through.
 */
#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/limits.h"
#include "fuzz_common.h"

static bp_rules *rules;
static bp_policy policy;

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
        (void)bp_acct_record_event(opts, &rec, arena, &result);
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
    }
    size_t step = (size_t)data[0] + 1;
    data++;
    size--;
    bp_acct_reader *reader = NULL;
    bp_arena *arena = bp_arena_new();
    if (arena == NULL || bp_acct_reader_new(&reader) != BP_OK)
        goto out;
    bp_acct_options opts = {.rules = rules, .policy = &policy, .source = "fuzz", .transient = (step & 1) != 0};
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
