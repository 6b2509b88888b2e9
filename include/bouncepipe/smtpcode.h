/*
 * smtpcode.h - find and validate SMTP reply codes (RFC 5321) and enhanced status codes
 * (RFC 3463, "class.subject.detail") in remote text.
 *
 * Ownership: results are copied into caller buffers of fixed size; nothing is allocated.
 */
#ifndef BOUNCEPIPE_SMTPCODE_H
#define BOUNCEPIPE_SMTPCODE_H

#include <stddef.h>

/** Enough for "5.123.123" and its NUL. */
#define BP_STATUS_BUF 12

/**
 * Read an enhanced status code at the start of @p text (after white space), e.g. "5.1.1" from
 * "5.1.1 (bad destination mailbox)".  Class must be 2, 4 or 5; subject and detail 1-3 digits.
 * @return non-zero and fills @p out when found.
 */
int bp_status_code_parse(const char *text, char out[BP_STATUS_BUF]);

/** Find the first enhanced status code anywhere in @p len bytes of @p text (as a token,
 *  not inside an IP address or a longer number). @return non-zero when found. */
int bp_status_code_find(const char *text, size_t len, char out[BP_STATUS_BUF]);

/** Find the first SMTP reply code ("550", "452-", "554 ") in @p text: three digits, first in
 *  2/4/5, as a token. @return non-zero and fills @p out (4 bytes with NUL) when found. */
int bp_smtp_code_find(const char *text, size_t len, char out[4]);

#endif
