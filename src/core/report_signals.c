/*
 * report_signals.c - a report's events get their signal fields (report_signals.h).
 *
 * For each event, best first: the headers of the returned original the report carries (the
 * configured VMTA and stream headers, signal_fields.h), a feedback report's Source-IP for a
 * complaint (RFC 5965 section 3.2: the IP the complained-of message came from - ours), then
 * the diagnostic text and the receiver (bp_signal_finish()).  Accounting records get theirs
 * from their columns where they are made (acct_events.c).
 *
 * Ownership: values are arena copies.
 */
#include "bouncepipe/report_signals.h"

/* bp_signal_lookup_fn over the returned original's headers. */
static const char *original_header(const void *ctx, const char *name)
{
    return bp_part_header((const bp_part *)ctx, name);
}

bp_status bp_report_signals(const bp_signal_options *o, bp_rules *rules, const bp_report *report, bp_event *events,
                            size_t n, bp_arena *arena)
{
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        bp_event *e = &events[i];
        if (e->type == BP_EVENT_UNRECOGNIZED)
            continue;
        if (report->original != NULL)
            st = bp_signal_from_source(e, o, BP_SIGNAL_HEADERS, original_header, report->original, arena);
        if (st == BP_OK && e->type == BP_EVENT_COMPLAINT && report->source_ip != NULL)
            st = bp_signal_take_ip(e, report->source_ip, "feedback-report:Source-IP", arena);
        if (st == BP_OK)
            st = bp_signal_finish(e, rules, arena);
    }
    return st;
}
