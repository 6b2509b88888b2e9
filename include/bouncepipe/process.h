/*
 * process.h - the whole message path in one call: bytes -> MIME -> report -> events.
 *
 * This is the seam every front end uses (replay, pipe, explain, the fuzzers): sources
 * produce bytes, bp_process_message() produces events, sinks consume them.
 *
 * Ownership: everything in the result lives in the arena passed in.
 */
#ifndef BOUNCEPIPE_PROCESS_H
#define BOUNCEPIPE_PROCESS_H

#include <stddef.h>

#include "bouncepipe/classify.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/report.h"

typedef struct bp_process_result {
    bp_mime_message mime;
    bp_report report;
    bp_event *events;
    size_t n_events;         /**< at least 1 (an "unrecognized" event when nothing was found) */
    bp_explain *explains;    /**< parallel to events when ctx->explain, else NULL */
    const char *fingerprint; /**< hex SHA-256 of Message-ID and body: the idempotency key (NULL
                                  when ctx->skip_fingerprint) */
    int mime_failed;         /**< GMime found no message: events is one unrecognized event */
    bp_effort effort;        /**< the message's effort budget: what it cost, and whether it ran
                                  out (the rest of the message was then unrecognised text) */
} bp_process_result;

/**
 * Process one message.
 * @return BP_OK (also for unparseable input: see mime_failed); BP_ERR_NOMEM.
 */
bp_status bp_process_message(const bp_classify_ctx *ctx, const bp_report_options *ropts, const char *bytes, size_t len,
                             bp_arena *arena, bp_process_result *out);

/**
 * Fingerprint of a message: SHA-256 over its Message-ID and its body with line ends
 * normalised, so that headers added on the way (Received, Delivered-To) and CRLF/LF
 * differences do not change it.  @return an arena hex string, or NULL when out of memory.
 */
const char *bp_message_fingerprint(bp_arena *arena, const char *bytes, size_t len);

#endif
