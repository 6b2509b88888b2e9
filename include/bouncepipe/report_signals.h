/*
 * report_signals.h - the signal fields of a report's events (signal_fields.h): the core's
 * step after classification, where the report (its returned original, its feedback fields)
 * meets the classify layer's checks.
 *
 * Ownership: values are copied into the arena passed in.
 */
#ifndef BOUNCEPIPE_REPORT_SIGNALS_H
#define BOUNCEPIPE_REPORT_SIGNALS_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/report.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/signal_fields.h"

/**
 * Fill the signal fields of @p n events of @p report: the returned original's headers (VMTA,
 * stream), a feedback report's Source-IP (a complaint's sending IP), then the text and the
 * receiver (bp_signal_finish()).
 * @param o may be NULL: the default header names
 * @param rules may be NULL
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_report_signals(const bp_signal_options *o, bp_rules *rules, const bp_report *report, bp_event *events,
                            size_t n, bp_arena *arena);

#endif
