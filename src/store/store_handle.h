/*
 * store_handle.h - a store handle as the files of src/store/ share it (internal).
 *
 * store.c (the semantics) opens and closes it; store_tx.c holds the transaction and statement
 * primitives that store.c and its extensions (signals.c, outbox.c, dmarc_store.c) call.  What
 * store.c does around a transaction (its rows not folded yet, the transaction's signal
 * counts) reaches store_tx.c through @c hooks, so that the extensions, which store.c calls,
 * never call store.c back: the calls between the store's files go one way.
 */
#ifndef BOUNCEPIPE_STORE_HANDLE_H
#define BOUNCEPIPE_STORE_HANDLE_H

#include "bouncepipe/store.h"
#include "store_backend.h"

struct unfolded;
struct bp_signal_acc;

/** store.c's work around a transaction. */
typedef struct bp_store_tx_hooks {
    /** a transaction starts or ends: forget its pending work */
    void (*reset)(bp_store *s);
    /** write the pending work into the transaction; an error rolls it back */
    bp_status (*before_commit)(bp_store *s);
    /** the transaction is durable */
    void (*committed)(bp_store *s);
} bp_store_tx_hooks;

struct bp_store {
    const bp_store_backend *be;
    void *h;
    const bp_store_tx_hooks *hooks;
    bp_store_options opts;
    int in_tx;
    struct unfolded *unfolded; /* rows of this transaction derive() has not folded yet */
    size_t n_unfolded, cap_unfolded;
    struct bp_signal_acc *signals; /* signal counts of this transaction, written at its commit (signals.c) */
    char error[256];
};

#endif
