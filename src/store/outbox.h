/*
 * outbox.h - what store.c asks of outbox.c while it records a unit (internal to src/store/).
 *
 * The outbox's public functions are in store.h ("the webhook outbox"); these two run inside
 * the transaction bp_store_record() has open, so that a unit's outbox rows are committed with
 * its ledger rows or not at all.
 */
#ifndef BOUNCEPIPE_STORE_OUTBOX_H
#define BOUNCEPIPE_STORE_OUTBOX_H

#include <stddef.h>

#include "bouncepipe/store.h"

/**
 * Write the @p n_outbox rows @p outbox asks for: the row of want w goes with the
 * ledger row of the event w->event_index, found in @p index (the index in the unit's events of
 * each of the @p n_rows events written, ascending) and @p ledger_ids (their ledger rows); a
 * want whose event was not written is left out.  A row whose endpoint already has the key is
 * left as it is.
 * @param now the transaction's time: created_at of new rows
 * @return BP_OK; BP_ERR_USAGE (a want without endpoint or key); the backend's status.
 */
bp_status bp_store_outbox_write(bp_store *s, const bp_store_outbox_want *outbox, size_t n_outbox, const size_t *index,
                                const long long *ledger_ids, size_t n_rows, long long now);

/** Delete the outbox rows of unit @p fingerprint's placeholder (an unrecognised unit being
 *  recorded properly now: the placeholder row goes, and rows that pointed at it with it). */
bp_status bp_store_outbox_drop_placeholder(bp_store *s, const char *fingerprint);

#endif
