/*
 * deliver_store.c - the bp_outbox of deliver.h over the store's outbox table (store.h, "the
 * webhook outbox"): bp_deliver_store_outbox() fills the vtable with functions that call the
 * store's, each of which runs one short transaction.  The store keeps the contract (atomic
 * claims, marks only by the lease's holder); this file only turns its rows into
 * bp_outbox_row and its mark kinds into the vtable's functions, so that the delivery loop and
 * the store know nothing of each other.  bp_outbox_counts_add(): a state's count into
 * bp_outbox_counts (here and for deliver --status).
 *
 * Ownership: the vtable borrows the store; rows handed to the loop's callback point into the
 * store's result and live until the callback returns.
 */
#include "bouncepipe/deliver.h"

#include <string.h>

typedef struct claim_walk {
    bp_outbox_row_cb cb;
    void *user;
} claim_walk;

static int on_claimed(void *user, const bp_store_outbox_entry *o, const bp_ledger_row *l)
{
    claim_walk *w = user;
    bp_outbox_row row = {o->id, o->endpoint, o->event_key, o->attempts, o->created_at, l->event};
    return w->cb(w->user, &row);
}

static bp_status store_claim(void *ctx, const char *endpoint, const char *owner, long long now, unsigned lease_seconds,
                             size_t max, bp_outbox_row_cb cb, void *user)
{
    claim_walk w = {cb, user};
    return bp_store_outbox_claim(ctx, endpoint, owner, now, lease_seconds, max, on_claimed, &w);
}

static bp_status store_delivered(void *ctx, long long id, const char *owner, long long now)
{
    return bp_store_outbox_mark(ctx, id, owner, BP_OUTBOX_DELIVERED, now, NULL);
}

static bp_status store_retry(void *ctx, long long id, const char *owner, long long next_at, const char *error)
{
    return bp_store_outbox_mark(ctx, id, owner, BP_OUTBOX_RETRY, next_at, error);
}

static bp_status store_dead(void *ctx, long long id, const char *owner, long long now, const char *error)
{
    return bp_store_outbox_mark(ctx, id, owner, BP_OUTBOX_DEAD, now, error);
}

static bp_status store_release(void *ctx, long long id, const char *owner)
{
    return bp_store_outbox_mark(ctx, id, owner, BP_OUTBOX_RELEASE, 0, NULL);
}

static bp_status store_retry_dead(void *ctx, const char *endpoint, long long now, long long *count)
{
    return bp_store_outbox_retry_dead(ctx, endpoint, now, count);
}

void bp_outbox_counts_add(bp_outbox_counts *c, const char *state, long long count, long long leased, long long oldest)
{
    if (state == NULL)
        return;
    if (strcmp(state, "pending") == 0) {
        c->pending += count;
        c->leased += leased;
        if (c->oldest_pending == 0 || oldest < c->oldest_pending)
            c->oldest_pending = oldest;
    } else if (strcmp(state, "delivered") == 0) {
        c->delivered += count;
    } else if (strcmp(state, "dead") == 0) {
        c->dead += count;
    }
}

static int add_count(void *user, const char *endpoint, const char *state, long long count, long long leased,
                     long long oldest)
{
    (void)endpoint;
    bp_outbox_counts_add(user, state, count, leased, oldest);
    return 0;
}

static bp_status store_counts(void *ctx, const char *endpoint, long long now, bp_outbox_counts *out)
{
    bp_outbox_counts zero = {0, 0, 0, 0, 0};
    *out = zero;
    return bp_store_outbox_counts(ctx, endpoint, now, add_count, out);
}

void bp_deliver_store_outbox(bp_store *store, bp_outbox *out)
{
    out->ctx = store;
    out->claim = store_claim;
    out->delivered = store_delivered;
    out->retry = store_retry;
    out->dead = store_dead;
    out->release = store_release;
    out->retry_dead = store_retry_dead;
    out->counts = store_counts;
}
