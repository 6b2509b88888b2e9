/*
 * process.h - the core: a message is finished here, the same way for every front end.
 *
 *   bp_pipeline       what every message of a run is processed with - rules, policy, VERP and
 *                     report options, the quarantine - made once by the front end from its
 *                     configuration and used for the whole run;
 *   bp_envelope       what comes with one message: its source name, the envelope recipient
 *                     (maybe VERP) and the envelope id the MTA handed over;
 *   bp_process_message()  bytes -> MIME -> report -> events, with the message's own Date
 *                     and Message-ID (read by the report stage) and its fingerprint;
 *   bp_finish_decide()    record it, or quarantine it (nothing was recognised);
 *   bp_finish_record()    a processed message as one store unit (pipe, replay);
 *   bp_finish_acct()      an accounting record as one store unit, or a delivery reset (acct);
 *   bp_finish_message()   pipe mode's whole ending: the decision, the quarantine, one
 *                     transaction.
 * Sources produce bytes, the core produces events and keeps them; the front ends (src/cli/)
 * parse options, print, and choose transactions and exit codes.
 *
 * Ownership: a bp_pipeline borrows everything it points to (the rules, the option strings),
 * which must outlive it.  Everything in a bp_process_result lives in the arena passed in.
 */
#ifndef BOUNCEPIPE_PROCESS_H
#define BOUNCEPIPE_PROCESS_H

#include <stddef.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/address.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/report.h"
#include "bouncepipe/report_events.h"
#include "bouncepipe/report_signals.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/store.h"
#include "bouncepipe/webhook.h"

/** What a run processes every message with. */
typedef struct bp_pipeline {
    bp_rules *rules;                     /**< may be NULL: codes only */
    bp_policy policy;                    /**< category -> action (bp_policy_default() for defaults) */
    const bp_verp_options *verp;         /**< NULL for defaults */
    const bp_report_options *report;     /**< NULL for defaults */
    const char *quarantine_dir;          /**< where unrecognised messages are kept (pipe mode), or
                                              NULL: they are recorded as unrecognised only */
    const bp_webhook_endpoint *webhooks; /**< the configured webhook endpoints: recording writes an
                                              outbox row for each event each of them wants
                                              (docs/webhooks.md); NULL for none */
    size_t n_webhooks;                   /**< entries of webhooks */
    const bp_signal_options *signals;    /**< where events' signal fields are found; NULL for defaults */
    const char *signal_host;             /**< the accounting watermark's host (signals.h); NULL: this
                                              machine's name */
} bp_pipeline;

/** Set @p p to the defaults: no rules (codes only), the default policy, default VERP and report
 *  options, no quarantine, no webhook. */
void bp_pipeline_init(bp_pipeline *p);

/** What comes with one message. */
typedef struct bp_envelope {
    const char *source; /**< name for the events: a path, PATH#N, "-" */
    const char *rcpt;   /**< envelope recipient, the bounce address (maybe VERP), or NULL */
    const char *envid;  /**< envelope id the MTA handed over, or NULL */
} bp_envelope;

/** bp_process_message() flags. */
enum {
    BP_PROCESS_EXPLAIN = 1 << 0,        /**< fill bp_process_result.explains */
    BP_PROCESS_NO_FINGERPRINT = 1 << 1, /**< leave the idempotency key NULL (a dry run stores
                                             nothing; the SHA-256 is 12 % of its time) */
};

typedef struct bp_process_result {
    bp_mime_message mime;
    bp_report report;
    bp_event *events;
    size_t n_events;         /**< at least 1 (an "unrecognized" event when nothing was found) */
    bp_explain *explains;    /**< parallel to events with BP_PROCESS_EXPLAIN, else NULL */
    const char *fingerprint; /**< hex SHA-256 of Message-ID and body: the idempotency key (NULL
                                  with BP_PROCESS_NO_FINGERPRINT) */
    const char *message_id;  /**< the message's own Message-ID, or NULL */
    long long date;          /**< the message's own Date in Unix seconds (GMime's parser), 0 when
                                  absent or unreadable: the evidence time of its events */
    int mime_failed;         /**< GMime found no message: events is one unrecognized event */
    bp_effort effort;        /**< the message's effort budget: what it cost, and whether it ran
                                  out (the rest of the message was then unrecognised text) */
} bp_process_result;

/**
 * Process one message.
 * @param flags BP_PROCESS_* bits
 * @return BP_OK (also for unparseable input: see mime_failed); BP_ERR_NOMEM.
 */
bp_status bp_process_message(const bp_pipeline *p, const bp_envelope *env, unsigned flags, const char *bytes,
                             size_t len, bp_arena *arena, bp_process_result *out);

/**
 * Fingerprint of a message: SHA-256 over its Message-ID and its body with line ends
 * normalised, so that headers added on the way (Received, Delivered-To) and CRLF/LF
 * differences do not change it.  @return an arena hex string, or NULL when out of memory.
 */
const char *bp_message_fingerprint(bp_arena *arena, const char *bytes, size_t len);

/** @return non-zero when no event of @p res was recognised (every one is "unrecognized"). */
int bp_process_unrecognized(const bp_process_result *res);

/** What becomes of a processed message. */
typedef enum bp_keep {
    BP_KEEP_RECORD = 0, /**< record its events */
    BP_KEEP_QUARANTINE, /**< nothing was recognised: keep the message itself in the quarantine
                             (then record it as unrecognised, so that a retry finds it) */
} bp_keep;

/** @return BP_KEEP_QUARANTINE when nothing in @p res was recognised and @p p has a
 *  quarantine, else BP_KEEP_RECORD. */
bp_keep bp_finish_decide(const bp_pipeline *p, const bp_process_result *res);

/**
 * Record a processed message, in the transaction open on @p store, as one unit keyed by its
 * fingerprint and dated by its own Date, with an outbox row for each event each of @p p's
 * webhook endpoints wants (bp_webhook_wants(), keyed by bp_webhook_event_key()).
 * @return bp_store_record()'s status; @p rr says what happened.
 */
bp_status bp_finish_record(const bp_pipeline *p, bp_store *store, const bp_process_result *res, bp_record_result *rr);

/** What bp_finish_acct() did. */
typedef enum bp_acct_kept {
    BP_ACCT_KEPT_NEW = 0,   /**< a new event in the ledger */
    BP_ACCT_KEPT_DUPLICATE, /**< recorded before: nothing changed */
    BP_ACCT_KEPT_DELIVERY,  /**< a delivery reset the recipient's soft-bounce count (and was counted) */
    BP_ACCT_KEPT_DEFERRAL,  /**< a deferral was counted (signals.h) */
} bp_acct_kept;

/**
 * Record an accounting result, in the transaction open on @p store: an event as one unit keyed
 * by the record's key, dated by its timeLogged, PowerMTA's bounceCat kept beside, with the
 * outbox rows @p p's webhook endpoints want (as bp_finish_record()); a delivery as a
 * soft-bounce reset (or, with @p record_deliveries, as an event too) and, unless it is
 * recorded as an event, a delivery counted for its sending IP, VMTA, stream and receiver; a
 * deferral counted the same way (bp_store_signal_acct(): behind the host's watermark, so a
 * record read again counts nothing).
 * @return the store's status.
 */
bp_status bp_finish_acct(const bp_pipeline *p, bp_store *store, const bp_acct_result *res, int record_deliveries,
                         bp_acct_kept *kept);

/** Where bp_finish_message() stopped. */
typedef enum bp_finish_step {
    BP_FINISH_SEEN = 0,   /**< asking the store whether the message was kept before */
    BP_FINISH_QUARANTINE, /**< writing the quarantine */
    BP_FINISH_RECORD,     /**< the transaction that records it */
} bp_finish_step;

/** What became of a message bp_finish_message() finished. */
typedef enum bp_finish_outcome {
    BP_FINISHED_RECORDED = 0, /**< its events are new in the store */
    BP_FINISHED_DUPLICATE,    /**< recorded before: nothing changed */
    BP_FINISHED_UPGRADED,     /**< recorded before as unrecognised, recognised now */
    BP_FINISHED_QUARANTINED,  /**< nothing recognised: in the quarantine, recorded as such */
    BP_FINISHED_KEPT_BEFORE,  /**< nothing recognised, and kept before: nothing to do */
} bp_finish_outcome;

typedef struct bp_finish_result {
    bp_finish_outcome outcome;
    unsigned suppressed; /**< addresses newly suppressed */
    bp_finish_step step; /**< on failure: the step that failed */
    int error_number;    /**< on a quarantine failure: errno */
} bp_finish_result;

/**
 * Finish one message as pipe mode does: when bp_finish_decide() says quarantine, ask the store
 * whether the message was kept before (then nothing is left to do) and write it to the
 * quarantine; then record it in one transaction (rolled back on failure).  Nothing is
 * half-done: a failure leaves the store as it was (a quarantine file already written stays,
 * and a retry finds it there).
 * @return BP_OK; on failure the status, with @p out->step saying where.
 */
bp_status bp_finish_message(const bp_pipeline *p, bp_store *store, const bp_process_result *res, const char *bytes,
                            size_t len, bp_finish_result *out);

/** Settings for mapping accounting records with the pipeline's rules, policy and VERP. */
void bp_pipeline_acct_options(const bp_pipeline *p, const char *source, int transient, bp_acct_options *out);

#endif
