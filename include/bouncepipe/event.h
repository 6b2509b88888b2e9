/*
 * event.h - one decision about one recipient: the unit every sink (printer, store) consumes.
 *
 * Fields follow the event contract of docs/output-schema.md one for one; NULL means
 * "unknown" and is printed as JSON null.  The model lives on the ground floor (src/util/
 * event.c): classify makes events, store, emit and the PostgreSQL module read them.  Strings belong to the arena of the
 * message the event came from (or to the caller that built it); an event never owns memory.
 */
#ifndef BOUNCEPIPE_EVENT_H
#define BOUNCEPIPE_EVENT_H

#include <stddef.h>

#include "bouncepipe/dmarc_report.h"

typedef enum bp_event_type {
    BP_EVENT_UNRECOGNIZED = 0,
    BP_EVENT_BOUNCE,
    BP_EVENT_DELAY,
    BP_EVENT_COMPLAINT,
    BP_EVENT_AUTOREPLY,
    BP_EVENT_DELIVERED,
    BP_EVENT_DMARC_REPORT, /**< a DMARC aggregate report: about the sender's domain, no recipient */
} bp_event_type;

typedef enum bp_action {
    BP_ACT_NONE = 0, /**< no action (unrecognized) */
    BP_ACT_SUPPRESS,
    BP_ACT_SOFT,
    BP_ACT_IGNORE,
} bp_action;

/** The SMTP command a failure answered (RFC 5321 section 4.1.1): where in the session the
 *  receiving server said no.  The contract's smtp_command field spells it with
 *  bp_smtp_command_name(). */
typedef enum bp_smtp_command {
    BP_SMTP_NONE = 0, /**< the report does not say */
    BP_SMTP_CONNECT,  /**< the connection or the greeting (before any command) */
    BP_SMTP_EHLO,     /**< EHLO or HELO (and STARTTLS, AUTH: the session set-up) */
    BP_SMTP_MAIL,     /**< MAIL FROM: the envelope sender */
    BP_SMTP_RCPT,     /**< RCPT TO: the recipient */
    BP_SMTP_DATA,     /**< DATA or the end of the data: the message */
} bp_smtp_command;

/** Whom a failure's reply is about, when the report shows it is not the recipient (the
 *  report stage reads the parties; classify never turns such a reply into a verdict on the
 *  recipient). */
typedef enum bp_party {
    BP_PARTY_RECIPIENT = 0, /**< nothing says otherwise */
    BP_PARTY_SENDER,        /**< the reply names the envelope sender (or its domain), not the recipient */
    BP_PARTY_SENDING_HOST,  /**< the reply names the sending host (its HELO name), not the recipient */
} bp_party;

typedef struct bp_event {   /* a string field added here goes into bp_event_strings() too */
    const char *source;     /**< file path, PATH#N, "-" */
    const char *message_id; /**< Message-ID of the report */
    bp_event_type type;
    const char *recipient;
    const char *recipient_from; /**< contract name, e.g. "final-recipient" */
    const char *status;         /**< X.Y.Z */
    const char *smtp_code;      /**< "550" */
    const char *diagnostic;
    const char *category;      /**< bounce/delay category */
    const char *feedback_type; /**< complaint type */
    bp_action action;
    const char *rule; /**< id of the deciding rule */
    /* further fields */
    const char *reporting_mta;
    const char *remote_mta;
    const char *arrival_date;
    const char *source_ip;
    const char *envid;
    const char *job_id;
    const char *original_message_id;
    const char *blocklist;        /**< the block list or receiver's reputation system the text names */
    const char *smtp_command;     /**< the SMTP command the failure answered: CONNECT, EHLO, MAIL, RCPT,
                                       DATA, or NULL when the report does not say */
    const bp_dmarc_report *dmarc; /**< type dmarc-report: the report (its dmarc_* fields; the store
                                       keeps it whole), else NULL */
    /* where the message came from (docs/signals.md): our side of the failure or complaint */
    const char *sending_ip; /**< our IP address the message left from */
    const char *vmta;       /**< the PowerMTA virtual MTA it left through */
    const char *stream;     /**< its traffic stream (X-Traffic-Type: transactional, marketing, ...) */
    const char *receiver;   /**< the receiving organisation (gmail, microsoft, ...: receivers.h) */
    const char *listed;     /**< the IP address or domain the receiver's text says it refused or lists */
    /* not printed in the contract; used by sinks and explain */
    const char *family;          /**< report family that produced the event */
    const char *fingerprint;     /**< digest of the message, for idempotency */
    int final;                   /**< 1 when the failure is permanent (5.x.x or Action failed) */
    const char *reported_domain; /**< feedback reports: Reported-Domain (RFC 6591: a DMARC
                                      failure report's domain, linked by the DMARC view) */
    /** Where sending_ip, vmta, stream and receiver came from, for explain: "SOURCE:DETAIL" as
     *  signal_fields.h spells it ("accounting:dlvSourceIp", "header:X-Traffic-Type",
     *  "remote-mta:mx.example.net", ...), NULL when the field is unknown. */
    const char *sending_ip_from;
    const char *vmta_from;
    const char *stream_from;
    const char *receiver_from;
} bp_event;

/** The number of string fields of a bp_event (bp_event_strings()). */
#define BP_EVENT_N_STRINGS 31

/**
 * The addresses of @p e's string fields, all BP_EVENT_N_STRINGS of them, into @p out: for a
 * caller that keeps an event beyond the life of the strings it points to (it copies each).
 * A string field added to bp_event goes into this list too (event.c).
 */
void bp_event_strings(bp_event *e, const char **out[BP_EVENT_N_STRINGS]);

/** @return "CONNECT", "EHLO", "MAIL", "RCPT" or "DATA"; NULL for BP_SMTP_NONE. */
const char *bp_smtp_command_name(bp_smtp_command command);
/** @return the command named @p name (case-insensitive; HELO is EHLO), or BP_SMTP_NONE. */
bp_smtp_command bp_smtp_command_from_name(const char *name, size_t len);

/** @return contract name of @p type ("bounce", ...). */
const char *bp_event_type_name(bp_event_type type);
/** @return contract name of @p action ("suppress", ...), or NULL for BP_ACT_NONE. */
const char *bp_action_name(bp_action action);
/** @return the action named @p name, or BP_ACT_NONE when unknown. */
bp_action bp_action_from_name(const char *name);
/** @return the event type named @p name, or -1 when unknown. */
int bp_event_type_from_name(const char *name);

#endif
