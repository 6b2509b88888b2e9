/*
 * message_fuzzer.c - the whole message path: bytes -> bp_process_message() (GMime adapter,
 * every report family, the shipped rules, policy) -> the NDJSON and CSV printers.
 *
 * Set-up (rules, policy, printers writing to /dev/null) is done once and kept for the life
 * of the process, as the replay command keeps it across messages.  Each input gets a fresh
 * arena, freed before returning, so that a leak in the pipeline shows as a leak here.
 */
#include <stdio.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "fuzz_common.h"

static bp_rules *rules;
static bp_policy policy;
static bp_printer *ndjson, *csv;
static FILE *sink;

static void quiet(void *user, const char *message)
{
    (void)user;
    (void)message;
}

static int setup(void)
{
    if (rules != NULL)
        return 0;
    bp_policy_default(&policy);
    if (bp_rules_new(&rules) != BP_OK || bp_rules_load_builtin(rules, quiet, NULL, NULL) != BP_OK)
        abort(); /* the shipped rules must load */
    sink = fopen("/dev/null", "w");
    if (sink == NULL)
        abort();
    ndjson = bp_printer_new(sink, BP_WRITER_JSON);
    csv = bp_printer_new(sink, BP_WRITER_CSV);
    if (ndjson == NULL || csv == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    bp_arena *arena = bp_arena_new();
    if (arena == NULL)
        return 0;
    /* A VERP envelope recipient, as PowerMTA passes it with --rcpt, and explanations on, so
     * that the VERP and explain paths run for every input too. */
    static const char *const rcpt_headers[] = {"X-Rcpt", NULL};
    bp_report_options ropts = {.rcpt_headers = rcpt_headers};
    bp_pipeline pipeline = {.rules = rules, .policy = policy, .report = &ropts};
    bp_envelope envelope = {"fuzz", "bounces-jdoe=example.com@bounces.example.org", NULL};
    bp_process_result result;
    bp_status st =
        bp_process_message(&pipeline, &envelope, BP_PROCESS_EXPLAIN, (const char *)data, size, arena, &result);
    if (st == BP_OK) {
        if (result.n_events == 0)
            abort(); /* contract: at least one event, "unrecognized" when nothing was found */
        for (size_t i = 0; i < result.n_events; i++) {
            bp_printer_event(ndjson, &result.events[i]);
            bp_printer_event(csv, &result.events[i]);
        }
    }
    bp_arena_free(arena);
    return 0;
}
