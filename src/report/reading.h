/*
 * reading.h - the words of a report around its codes (reading.c; not public): the SMTP stage
 * a reply answered, transcripts read as sessions, the innermost reply of a wrapper.  The
 * text-bounce scanner (textbounce.c) uses the transcript reader while it builds its blocks;
 * bp_report_read() (report.h) uses all of them once the blocks are made.
 */
#ifndef BOUNCEPIPE_READING_H
#define BOUNCEPIPE_READING_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/event.h"
#include "bouncepipe/text.h"

/** One reply of an SMTP transcript, as bp_transcript_find() picks it. */
typedef struct bp_transcript_reply {
    size_t start, end;       /**< its "<<< " lines in the text */
    bp_smtp_command command; /**< the command it answered (BP_SMTP_CONNECT: the greeting) */
    int own;                 /**< it answered the recipient's own RCPT TO */
} bp_transcript_reply;

/**
 * Read @p len bytes of @p text as an SMTP transcript (Sendmail's "... while talking to HOST:"
 * sessions of ">>> command" and "<<< reply" lines; Courier's ">>>"/"<<<" lines) and pick the
 * reply that concerns @p rcpt: the failing reply to its own RCPT TO, else the last failing
 * reply of its own session (the session whose commands name it, else whose host is @p host,
 * else whose host lies in the recipient's domain, else the only one) - never a line of the
 * next session.  Pipelined commands are answered in
 * order.
 * @param host the recipient's remote MTA, or NULL
 * @param sessions if not NULL, receives the number of "while talking to" sessions
 * @return non-zero when a reply was picked.
 */
int bp_transcript_find(const char *text, size_t len, const char *rcpt, const char *host, bp_transcript_reply *out,
                       int *sessions);

/** @return the text of reply @p r of @p text without its "<<< " markers, cleaned (arena), or
 *  NULL. */
const char *bp_transcript_reply_text(bp_arena *arena, const char *text, const bp_transcript_reply *r);

/** @return the envelope sender Exim names in a bounce sent to an errors address ("A message
 *  sent by <x> could not be delivered ..."), normalised (arena), or NULL.  @p pairs: the byte
 *  pairs of the text folded to lower case (the report's explanation_pairs), which spare the
 *  search when the words are not there; or NULL. */
const char *bp_report_exim_sender(bp_arena *arena, const char *text, size_t len, const bp_byte_pairs *pairs);

/**
 * The innermost remote reply inside a wrapper: Sendmail's "(reason: REPLY)", an ESP's or
 * Exchange's summary around a quoted reply ("5.1.0 - Unknown address error 550-'REPLY'",
 * "Remote Server returned 'REPLY'", "responded as follows: [REPLY]"), Zoho's "ERROR_CODE :550,
 * ERROR_CODE :REPLY", qmail-send's "... I'm not going to try again; this message has been in
 * the queue too long." after the reply.
 * @param code receives the reply code written just before a quoted reply ("550-'...'"), or
 *        "" (4 bytes)
 * @return non-zero and the reply's span [@p s, @p e) of @p text when a wrapper was found and
 *         its reply has words.
 */
int bp_reply_inner(const char *text, size_t len, size_t *s, size_t *e, char code[4]);

#endif
