/*
 * acct_fuzzer.c - the PowerMTA accounting CSV reader and the record -> event mapping.
 *
 * The first input byte sets the feed size (1..256 bytes per bp_acct_reader_feed(), so that
 * records, quotes and CRLF pairs are cut at every place a pipe read can cut them); the rest is
 * the stream.  After each feed the reader is drained, as the acct command drains it; at the
 * end it is drained with at_eof.  Every record becomes an event and a key, with the shipped
 * rules, so that the mapping code sees whatever the reader lets through.
 */
#include "bouncepipe/acct.h"
#include "bouncepipe/limits.h"
#include "fuzz_common.h"

static bp_rules *rules;
static bp_policy policy;

static void quiet(void *user, const char *message)
{
    (void)user;
    (void)message;
}

static void drain(bp_acct_reader *r, int at_eof, bp_acct_columns *cols, bp_arena *arena, const bp_acct_options *opts)
{
    for (;;) {
        bp_acct_record rec;
        bp_acct_outcome outcome = BP_ACCT_NEED_MORE;
        if (bp_acct_reader_next(r, at_eof, &rec, &outcome) != BP_OK || outcome == BP_ACCT_NEED_MORE)
            return;
        if (outcome == BP_ACCT_MALFORMED && rec.error == NULL)
            abort(); /* a skipped record always says why */
        if (outcome != BP_ACCT_RECORD)
            continue;
        if (rec.n_fields > BP_MAX_ACCT_FIELDS || rec.raw_len > BP_MAX_ACCT_LINE_BYTES)
            abort(); /* the documented bounds */
        bp_acct_result result;
        (void)bp_acct_record_event(opts, r, cols, &rec, arena, &result);
        (void)bp_acct_record_key(r, cols, &rec, arena);
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
    bp_acct_columns cols;
    memset(&cols, 0, sizeof(cols));
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (bp_acct_reader_feed(reader, (const char *)data + off, n) != BP_OK)
            goto out;
        drain(reader, 0, &cols, arena, &opts);
    }
    drain(reader, 1, &cols, arena, &opts);
out:
    bp_acct_reader_free(reader);
    bp_arena_free(arena);
    return 0;
}
