/*
 * outbox_fake.h - an in-memory bp_outbox for the tests: the reference of the outbox contract
 * in deliver.h, which the store's implementation (stage 2) must match row for row.
 *
 * Ownership: the fake owns copies of everything added; outbox_fake_free() releases them.
 */
#ifndef BP_TEST_OUTBOX_FAKE_H
#define BP_TEST_OUTBOX_FAKE_H

#include "bouncepipe/deliver.h"

typedef enum fake_state { FAKE_PENDING = 0, FAKE_DELIVERED, FAKE_DEAD } fake_state;

typedef struct fake_row {
    long long id;
    char endpoint[80];
    char key[40];
    fake_state state;
    unsigned attempts;
    long long created_at, next_at, lease_until, delivered_at;
    char lease_owner[80];
    char last_error[300];
    bp_event event; /* strings point into strings[] below */
    char strings[4][200];
} fake_row;

typedef struct outbox_fake {
    fake_row *rows;
    size_t n, cap;
    size_t claims;  /* claim() calls */
    int fail_claim; /* make the next claim() fail with BP_ERR_BUSY */
} outbox_fake;

/** Add a row for @p endpoint: a bounce to @p recipient with @p action, created at @p now. */
long long outbox_fake_add(outbox_fake *f, const char *endpoint, const char *recipient, bp_event_type type,
                          bp_action action, long long now);
/** The bp_outbox view of @p f. */
void outbox_fake_ops(outbox_fake *f, bp_outbox *out);
/** Row by id, or NULL. */
fake_row *outbox_fake_row(outbox_fake *f, long long id);
void outbox_fake_free(outbox_fake *f);

#endif
