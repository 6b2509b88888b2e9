/*
 * outbox_fake.c - the in-memory outbox (outbox_fake.h): every rule of deliver.h's outbox
 * contract, written as plainly as possible so that a test failing here points at the loop.
 */
#include "outbox_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/webhook.h"

long long outbox_fake_add(outbox_fake *f, const char *endpoint, const char *recipient, bp_event_type type,
                          bp_action action, long long now)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        fake_row *v = realloc(f->rows, cap * sizeof(*v));
        if (v == NULL)
            abort();
        f->rows = v;
        f->cap = cap;
    }
    fake_row *r = &f->rows[f->n];
    memset(r, 0, sizeof(*r));
    r->id = (long long)f->n + 1;
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
    snprintf(r->strings[0], sizeof(r->strings[0]), "%s", recipient);
    snprintf(r->strings[1], sizeof(r->strings[1]), "fp-%lld", r->id);
    snprintf(r->strings[2], sizeof(r->strings[2]), "550 5.1.1 <%s>: user unknown", recipient);
    snprintf(r->strings[3], sizeof(r->strings[3]), "<report-%lld@mx.example.net>", r->id);
    r->event.type = type;
    r->event.action = action;
    r->event.recipient = r->strings[0];
    r->event.fingerprint = r->strings[1];
    r->event.diagnostic = r->strings[2];
    r->event.message_id = r->strings[3];
    r->event.status = type == BP_EVENT_COMPLAINT ? NULL : "5.1.1";
    r->event.category = type == BP_EVENT_COMPLAINT ? NULL : "bad-mailbox";
    r->event.feedback_type = type == BP_EVENT_COMPLAINT ? "abuse" : NULL;
    r->event.source = "-";
    bp_webhook_event_key(r->strings[1], 0, &r->event, r->key);
    r->created_at = now;
    r->next_at = now;
    f->n++;
    return r->id;
}

fake_row *outbox_fake_row(outbox_fake *f, long long id)
{
    return id >= 1 && (size_t)id <= f->n ? &f->rows[id - 1] : NULL;
}

void outbox_fake_free(outbox_fake *f)
{
    free(f->rows);
    memset(f, 0, sizeof(*f));
}

static bp_status fake_claim(void *ctx, const char *endpoint, const char *owner, long long now, unsigned lease_seconds,
                            size_t max, bp_outbox_row_cb cb, void *user)
{
    outbox_fake *f = ctx;
    long long claimed[1024];
    size_t n = 0;
    f->claims++;
    if (f->fail_claim) {
        f->fail_claim = 0;
        return BP_ERR_BUSY;
    }
    /* oldest first: rows are kept in id order, which is creation order */
    for (size_t i = 0; i < f->n && n < max && n < 1024; i++) {
        fake_row *r = &f->rows[i];
        if (strcmp(r->endpoint, endpoint) != 0 || r->state != FAKE_PENDING || r->next_at > now || r->lease_until >= now)
            continue;
        r->lease_until = now + lease_seconds;
        snprintf(r->lease_owner, sizeof(r->lease_owner), "%s", owner);
        claimed[n++] = r->id;
    }
    /* "after the claim committed": the callback sees copies' worth of data only */
    for (size_t i = 0; i < n; i++) {
        fake_row *r = outbox_fake_row(f, claimed[i]);
        bp_outbox_row row = {r->id, r->endpoint, r->key, r->attempts, r->created_at, r->event};
        if (cb(user, &row) != 0)
            break;
    }
    return BP_OK;
}

/* The row, when @p owner holds its lease. */
static fake_row *held(outbox_fake *f, long long id, const char *owner)
{
    fake_row *r = outbox_fake_row(f, id);
    if (r == NULL || r->state != FAKE_PENDING || strcmp(r->lease_owner, owner) != 0)
        return NULL;
    return r;
}

static void release(fake_row *r)
{
    r->lease_owner[0] = '\0';
    r->lease_until = 0;
}

static bp_status fake_delivered(void *ctx, long long id, const char *owner, long long now)
{
    fake_row *r = held(ctx, id, owner);
    if (r == NULL)
        return BP_ERR_NOT_FOUND;
    r->state = FAKE_DELIVERED;
    r->delivered_at = now;
    release(r);
    return BP_OK;
}

/* A failed attempt on a held row: counted, its error kept, the lease released; it goes back
 * to the queue at @p next_at, or to the dead rows when @p dead. */
static bp_status failed_attempt(void *ctx, long long id, const char *owner, int dead, long long next_at,
                                const char *error)
{
    fake_row *r = held(ctx, id, owner);
    if (r == NULL)
        return BP_ERR_NOT_FOUND;
    r->attempts++;
    if (dead)
        r->state = FAKE_DEAD;
    else
        r->next_at = next_at;
    snprintf(r->last_error, sizeof(r->last_error), "%s", error != NULL ? error : "");
    release(r);
    return BP_OK;
}

static bp_status fake_retry(void *ctx, long long id, const char *owner, long long next_at, const char *error)
{
    return failed_attempt(ctx, id, owner, 0, next_at, error);
}

static bp_status fake_dead(void *ctx, long long id, const char *owner, long long now, const char *error)
{
    (void)now;
    return failed_attempt(ctx, id, owner, 1, 0, error);
}

static bp_status fake_release(void *ctx, long long id, const char *owner)
{
    fake_row *r = held(ctx, id, owner);
    if (r == NULL)
        return BP_ERR_NOT_FOUND;
    release(r);
    return BP_OK;
}

static bp_status fake_retry_dead(void *ctx, const char *endpoint, long long now, long long *count)
{
    outbox_fake *f = ctx;
    *count = 0;
    for (size_t i = 0; i < f->n; i++) {
        fake_row *r = &f->rows[i];
        if (r->state != FAKE_DEAD || (endpoint != NULL && strcmp(endpoint, r->endpoint) != 0))
            continue;
        r->state = FAKE_PENDING;
        r->attempts = 0;
        r->next_at = now;
        (*count)++;
    }
    return BP_OK;
}

static bp_status fake_counts(void *ctx, const char *endpoint, long long now, bp_outbox_counts *out)
{
    outbox_fake *f = ctx;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < f->n; i++) {
        fake_row *r = &f->rows[i];
        if (strcmp(endpoint, r->endpoint) != 0)
            continue;
        if (r->state == FAKE_DELIVERED) {
            out->delivered++;
        } else if (r->state == FAKE_DEAD) {
            out->dead++;
        } else {
            out->pending++;
            if (r->lease_until >= now)
                out->leased++;
            if (out->oldest_pending == 0 || r->created_at < out->oldest_pending)
                out->oldest_pending = r->created_at;
        }
    }
    return BP_OK;
}

void outbox_fake_ops(outbox_fake *f, bp_outbox *out)
{
    out->ctx = f;
    out->claim = fake_claim;
    out->delivered = fake_delivered;
    out->retry = fake_retry;
    out->dead = fake_dead;
    out->release = fake_release;
    out->retry_dead = fake_retry_dead;
    out->counts = fake_counts;
}
