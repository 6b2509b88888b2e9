/*
 * source.h - where messages come from: a message file, a directory of them (searched
 * recursively, in name order), a Maildir (new/ then cur/), an mbox (mboxo and mboxrd), or
 * standard input ("-").  Each message comes out as bytes with a name for the event source:
 * the file path, PATH#N for the Nth message of an mbox holding more than one, "-" for stdin.
 *
 * Memory is bounded: an mbox is read as a stream, and a message is read to at most
 * BP_MAX_MESSAGE_BYTES (the rest is skipped and the message flagged truncated).
 *
 * Ownership: the bytes and name of a bp_source_msg belong to the source and stay valid until
 * the next bp_source_next() or bp_source_close().
 */
#ifndef BOUNCEPIPE_SOURCE_H
#define BOUNCEPIPE_SOURCE_H

#include <stddef.h>
#include <stdio.h>

#include "bouncepipe/status.h"

typedef struct bp_source bp_source;

typedef struct bp_source_msg {
    const char *data;
    size_t len;
    const char *name;
    int truncated; /**< the message was longer than BP_MAX_MESSAGE_BYTES */
} bp_source_msg;

/**
 * Open @p path ("-" for standard input).
 * @return BP_OK; BP_ERR_NOT_FOUND or BP_ERR_IO when it cannot be opened; BP_ERR_NOMEM.
 */
bp_status bp_source_open(const char *path, bp_source **out);

/**
 * Next message.  @p *done is set non-zero at the end (msg untouched).
 * @return BP_OK; BP_ERR_IO / BP_ERR_NOT_FOUND for a member that could not be read (its name
 *         is in msg->name; the caller reports it and calls again: the source goes on).
 */
bp_status bp_source_next(bp_source *s, bp_source_msg *msg, int *done);

/** @return how many files the source has seen so far and how many it will read in all
 *  (for progress; total is 0 when unknown). */
void bp_source_progress(const bp_source *s, size_t *files_done, size_t *files_total);

/** Close and release; NULL allowed. */
void bp_source_close(bp_source *s);

#endif
