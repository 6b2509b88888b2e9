/*
 * signal_fields.h - where an event's message came from: the fields sending_ip, vmta, stream,
 * receiver and listed (docs/output-schema.md, docs/signals.md), and where each was found.
 *
 * Sources, best first (a field keeps the first valid value it is given):
 *   1. the accounting record: PowerMTA's columns (dlvSourceIp, vmta, and the original's
 *      headers the operator maps into the record: header_X-Traffic-Type), names configurable;
 *   2. the returned original's headers (X-Traffic-Type, X-PowerMTA-VirtualMTA, ...,
 *      configurable), and a feedback report's Source-IP (the IP the complained-of message
 *      left from);
 *   3. the diagnostic text, where the receiver names the client it refused ("Client host
 *      [192.0.2.10] blocked using zen.spamhaus.org"): the named group ip of the rule that
 *      decided the category (patterns/10-blocklists.rules); its group domain, a listed
 *      domain, goes to `listed` only.
 * The receiver is the organisation of the remote MTA, else of the reporting MTA, else of the
 * recipient's domain (receivers.h).
 *
 * Every value comes from a message or a record anyone can forge, so each is checked before
 * it is kept: an IP address must parse (and is kept in its canonical form), a VMTA or stream
 * name is 1 to BP_MAX_SIGNAL_TOKEN_BYTES bytes of letters, digits and . _ - : @ + = /, a
 * listed domain is a host name.  Anything else is left out (the field stays null), so what
 * is stored, printed as a Prometheus label or passed to an alert's command is always tame.
 *
 * Where each field came from is kept beside it (event.h *_from: "SOURCE:DETAIL"), for
 * explain: accounting:COLUMN, header:NAME, feedback-report:Source-IP, text:RULE,
 * remote-mta:HOST, reporting-mta:HOST, recipient-domain:DOMAIN.
 *
 * Ownership: values and provenances are copied into the arena passed in.
 */
#ifndef BOUNCEPIPE_SIGNAL_FIELDS_H
#define BOUNCEPIPE_SIGNAL_FIELDS_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/rules.h"

/** Where the fields are looked for; a NULL list means its default (below). */
typedef struct bp_signal_options {
    const char *const *stream_headers;      /**< the original's headers naming the stream */
    const char *const *vmta_headers;        /**< the original's headers naming the VMTA */
    const char *const *acct_ip_columns;     /**< accounting columns with the sending IP */
    const char *const *acct_vmta_columns;   /**< accounting columns with the VMTA */
    const char *const *acct_stream_columns; /**< accounting columns with the stream */
} bp_signal_options;

/** The defaults of each list (NULL-terminated). */
extern const char *const bp_signal_default_stream_headers[]; /**< X-Traffic-Type */
extern const char *const bp_signal_default_vmta_headers[];   /**< X-PowerMTA-VirtualMTA, X-Virtual-MTA */
extern const char *const bp_signal_default_ip_columns[];     /**< dlvSourceIp */
extern const char *const bp_signal_default_vmta_columns[];   /**< vmta */
extern const char *const bp_signal_default_stream_columns[]; /**< header_X-Traffic-Type */

/** Finds a value by name in a source (a header of the original, a column of a record);
 *  NULL when there is none. */
typedef const char *(*bp_signal_lookup_fn)(const void *ctx, const char *name);

/** Which lists of bp_signal_options a source answers to. */
typedef enum bp_signal_source {
    BP_SIGNAL_ACCOUNTING = 0, /**< acct_*_columns; provenance "accounting:COLUMN" */
    BP_SIGNAL_HEADERS,        /**< stream_headers, vmta_headers; provenance "header:NAME" */
} bp_signal_source;

/**
 * Fill what @p e lacks of sending_ip, vmta and stream from one source, its names tried in the
 * order of the (configured or default) lists.
 * @param o may be NULL: the defaults
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_signal_from_source(bp_event *e, const bp_signal_options *o, bp_signal_source source,
                                bp_signal_lookup_fn lookup, const void *ctx, bp_arena *arena);

/**
 * Take @p value as e's sending_ip, unless it has one or @p value is not an IP address.
 * @param from the provenance ("feedback-report:Source-IP"), copied
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_signal_take_ip(bp_event *e, const char *value, const char *from, bp_arena *arena);

/**
 * From the text: the IP or domain the deciding rule's named groups ip / domain capture in the
 * diagnostic (only for a rule of @p rules, found by e->rule): `listed`, and the sending IP
 * when nothing better gave one.  Then the receiver (remote MTA, reporting MTA, recipient).
 * @param rules may be NULL (codes only): the receiver alone
 * @return BP_OK or BP_ERR_NOMEM.
 */
bp_status bp_signal_finish(bp_event *e, bp_rules *rules, bp_arena *arena);

/** @return non-zero when @p s is a VMTA or stream name as the store keeps them (see above). */
int bp_signal_token_valid(const char *s);

/**
 * The canonical form of the IP address in @p s (surrounding white space, brackets and an
 * "IPv6:" prefix allowed), written into @p out.
 * @return non-zero when @p s is one.
 */
int bp_signal_ip_canonical(const char *s, char *out, size_t size);

#endif
