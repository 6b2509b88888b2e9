/*
 * report.h - what a returned message says, before any rule is applied.
 *
 * bp_report_parse() recognises the kind of a parsed message (delivery status notification,
 * feedback report, JMRP, DMARC aggregate report, auto-reply, non-standard text bounce) and extracts its per-message
 * fields and one bp_rcpt_block per recipient it reports on.  Report parsers know nothing of
 * rules, policy or the store.  Recipients come from the report's own fields before anything
 * quoted from the original message.
 *
 * Ownership: every string and array belongs to the arena passed to bp_report_parse().
 */
#ifndef BOUNCEPIPE_REPORT_H
#define BOUNCEPIPE_REPORT_H

#include <stddef.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc_report.h"
#include "bouncepipe/event.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/status.h"

typedef enum bp_report_kind {
    BP_REPORT_NONE = 0,  /**< nothing recognised */
    BP_REPORT_DSN,       /**< RFC 3464 / RFC 6533 delivery status notification */
    BP_REPORT_FEEDBACK,  /**< RFC 5965 ARF / RFC 6591 */
    BP_REPORT_JMRP,      /**< Microsoft JMRP complaint */
    BP_REPORT_AUTOREPLY, /**< RFC 3834 auto-reply, vacation, out of office */
    BP_REPORT_TEXT,      /**< a non-standard bounce recognised from its text */
    BP_REPORT_DMARC,     /**< a DMARC aggregate report (read or refused: see dmarc) */
} bp_report_kind;

/** What a per-recipient block says happened (RFC 3464 Action, or inferred). */
typedef enum bp_rcpt_action {
    BP_ACTION_UNKNOWN = 0,
    BP_ACTION_FAILED,
    BP_ACTION_DELAYED,
    BP_ACTION_DELIVERED,
    BP_ACTION_RELAYED,
    BP_ACTION_EXPANDED,
} bp_rcpt_action;

/** Where a recipient address was found; names match the event contract. */
typedef enum bp_rcpt_source {
    BP_FROM_NONE = 0,
    BP_FROM_FINAL_RECIPIENT,
    BP_FROM_ORIGINAL_RECIPIENT,
    BP_FROM_ORIGINAL_RCPT_TO,
    BP_FROM_X_HMXMR,
    BP_FROM_HEADER,
    BP_FROM_VERP,
    BP_FROM_BODY,
} bp_rcpt_source;

typedef struct bp_rcpt_block {
    const char *recipient; /**< chosen address (see recipient_from), or NULL */
    bp_rcpt_source recipient_from;
    const char *final_recipient;      /**< address part of Final-Recipient */
    const char *final_recipient_type; /**< "rfc822", "utf-8", ... */
    const char *original_recipient;   /**< address part of Original-Recipient */
    bp_rcpt_action action;
    const char *status;          /**< enhanced status code X.Y.Z, validated, or NULL */
    const char *smtp_code;       /**< three digits, or NULL */
    const char *diagnostic;      /**< remote text, cleaned and capped, or NULL */
    const char *diagnostic_type; /**< "smtp", "x-unix", ... */
    const char *remote_mta;
    const char *last_attempt_date;
    unsigned part_index; /**< MIME part the block came from (for explain) */
    const char *field;   /**< name of the field or scanner that gave the recipient */
    /** The recipient is only the returned original's To: (the report names nobody): a
     *  VERP-decoded envelope recipient, which names the one the message was sent to, wins. */
    int recipient_weak;
    /** A category the report itself states for this recipient (an ESP notification's bounce
     *  type): it decides over rules and codes.  NULL: none. */
    const char *stated_category;
    /** What stated it, as the event's rule ("amazonses:Permanent/NoEmail"). */
    const char *stated_by;
    /** The family's default category (a list server's notice, a carrier's prose notice):
     *  used when no rule matched and no specific enhanced status decides.  NULL: none. */
    const char *default_category;
    /** The default does not apply when the recipient's SMTP stage was RCPT (a carrier whose
     *  prose "user unknown" is also its reception filter). */
    int default_unless_rcpt;
    /* what the report says around the codes (reading.c): read for failures and delays */
    bp_smtp_command smtp_command;  /**< the SMTP command the failure answered, or BP_SMTP_NONE */
    const char *smtp_command_said; /**< the report's words that say so (for explain), or NULL */
    const char *reply;             /**< the innermost remote reply when the diagnostic wraps one (an ESP's
                                        summary, "(reason: ...)", a transcript), or NULL: it decides */
    const char *reply_status;      /**< the inner reply's own enhanced status, or NULL */
    const char *reply_code;        /**< the inner reply's own SMTP code, or NULL */
    const char *passages;          /**< every passage of the report's own text about this recipient
                                        (cleaned, capped), or NULL */
    const char *mta_category;      /**< the sending MTA's own verdict (X-PowerMTA-BounceCategory), or NULL */
    int local_delivery;            /**< a local delivery program failed (x-unix, procmail, ...) */
    bp_party party;                /**< whom the reply names in place of the recipient */
    const char *party_named;       /**< the sender address or host name the reply names, or NULL */
} bp_rcpt_block;

typedef struct bp_report {
    bp_report_kind kind;
    const char *family;     /**< parser that recognised it: "dsn", "arf", "qmail", ... */
    const bp_part *message; /**< the report message itself (its headers: Delivered-To, ...) */
    const char *message_id; /**< Message-ID of the report itself */
    const char *subject;    /**< decoded Subject of the report */
    const char *from;       /**< From of the report */
    const char *reporting_mta;
    const char *arrival_date;
    const char *envid; /**< Original-Envelope-Id */
    /* feedback reports */
    const char *feedback_type; /**< lower case: abuse, fraud, ... */
    const char *original_mail_from;
    const char *source_ip;
    const char *reported_domain;
    const char *user_agent;
    /* the original message, when attached or quoted */
    const bp_part *original; /**< its part (message/rfc822 child or rfc822-headers) */
    const char *original_message_id;
    const char *original_to; /**< To: of the original */
    /** An auto-reply's own words (cleaned, capped), for the classifier to tell a reply that
     *  says the address is dead ("not a valid user here") from a holiday notice; or NULL. */
    const char *reply_text;
    /* the explanation text (src/report/explanation.c), decoded, folded and cut once per
     * message by the first parser that reads it (the auto-reply parser, the text-bounce
     * scanner, reading.c) and kept here for the others; NULL until one has read it */
    const char *explanation;                       /**< UTF-8, the whole text */
    const char *explanation_folded;                /**< the same, ASCII letters in lower case */
    const struct bp_byte_pairs *explanation_pairs; /**< the byte pairs of the folded text (text.h) */
    size_t explanation_len;                        /**< up to where the quoted original starts */
    size_t explanation_full_len;                   /**< the whole text */
    unsigned explanation_part;                     /**< its MIME part */
    /* the parties (reading.c): who sent the original, from which host */
    const char *envelope_sender; /**< the original's envelope sender (X-Postfix-Sender, Exim's "A message
                                      sent by", the original's Return-Path), or NULL */
    const char *sending_host;    /**< the host that tried to deliver: its HELO name as the report shows
                                      it (a transcript's EHLO, the Reporting-MTA), or NULL */
    /* recipients */
    bp_rcpt_block *blocks;
    size_t n_blocks;
    size_t cap_blocks;
    size_t n_blocks_dropped; /**< blocks beyond BP_MAX_RECIPIENTS */
    /* DMARC aggregate reports (dmarc.h): about the sender's domain, never a recipient */
    const bp_dmarc_report *dmarc; /**< kind BP_REPORT_DMARC: the report, read or refused */
} bp_report;

/** Options the report stage needs from configuration. */
typedef struct bp_report_options {
    const char *const
        *rcpt_headers;           /**< per-recipient headers of an original (e.g. "X-Rcpt"), NULL-terminated, or NULL */
    const bp_verp_options *verp; /**< our VERP form, or NULL: a complaint's Original-Rcpt-To that is one of
                                      our own bounce addresses is decoded (complaint.h) */
} bp_report_options;

/**
 * Recognise and extract the report in @p msg.
 * @param opts may be NULL for defaults
 * @return BP_OK (also when nothing was recognised: kind BP_REPORT_NONE); BP_ERR_NOMEM.
 */
bp_status bp_report_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);

/**
 * Read what a report says around its codes (reading.c), for every failure and delay block:
 * the SMTP stage, the innermost reply of a wrapper, the report's passages about the
 * recipient, the parties (envelope sender, sending host) and whether the reply names one of
 * them, a local delivery program's failure.  bp_report_parse() calls it once the blocks are
 * made.  @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_report_read(const bp_mime_message *msg, bp_arena *arena, bp_report *r);

/**
 * The SMTP command a text says a reply answered, from the MTAs' own templates (Postfix "(in
 * reply to RCPT TO command)", Exim "SMTP error from remote mail server after RCPT TO:",
 * qmail-remote "does not like recipient", dma "did not like our RCPT TO", ...).
 * @param text @p len bytes, any case, white space folded to single spaces (as bp_clean_text() leaves it)
 * @param at if not NULL, receives the offset and @p end the end of the words that say so
 * @return the first command stated, or BP_SMTP_NONE.
 */
bp_smtp_command bp_stage_find(const char *text, size_t len, size_t *at, size_t *end);

/** Append an empty block to @p r (blocks.c). @return it, or NULL when out of memory or over
 *  the limit. */
bp_rcpt_block *bp_report_add_block(bp_report *r, bp_arena *arena);

/** @return the contract name of @p from ("final-recipient", ...), or NULL for BP_FROM_NONE. */
const char *bp_rcpt_source_name(bp_rcpt_source from);

/** @return the name of @p kind ("dsn", ...). */
const char *bp_report_kind_name(bp_report_kind kind);

/**
 * A family parser.  Each returns BP_OK and leaves out->kind at BP_REPORT_NONE when the message
 * is not of its family; @p opts may be NULL.  bp_report_parse() tries them in the order of
 * its table (report.c): a new family is a row there.
 */
typedef bp_status (*bp_report_family_fn)(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena,
                                         bp_report *out);

bp_status bp_dsn_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);
bp_status bp_arf_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);
bp_status bp_jmrp_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);
bp_status bp_esp_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);
bp_status bp_autoreply_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena,
                             bp_report *out);
/* dmarc.c: recognition here, the XML and archives read by the module it loads (dmarc.h) */
bp_status bp_dmarc_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out);
bp_status bp_textbounce_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena,
                              bp_report *out);

#endif
