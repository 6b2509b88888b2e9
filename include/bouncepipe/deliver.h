/*
 * deliver.h - the webhook delivery loop: claim events from an outbox, post them, and record
 * what happened, so that every event reaches every endpoint at least once.
 *
 * Three interfaces meet here:
 *
 *  - bp_outbox: where the events wait.  The store implements it (bp_deliver_store_outbox():
 *    the outbox table, written in the same transaction as the ledger, SQLite and PostgreSQL);
 *    the tests also use an in-memory one.  Its contract, which every implementation must keep,
 *    is written out below and in docs/webhooks.md.
 *  - bp_http_transport: what sends one POST.  bp_http_transport_open() loads the libcurl one
 *    from the module bouncepipe-http.so (so that pipe-mode processes never load libcurl and its
 *    libraries); tests may plug their own.
 *  - the state machine, bp_deliver_once(): one pass over one endpoint.
 *
 * One outbox row is one (event, endpoint) pair.  Its states:
 *
 *     pending --claim--> leased --2xx--> delivered
 *        ^                 |  \--failure, younger than dead_after--> pending (attempts+1,
 *        |                 |                                          due after a back-off)
 *        |                 \--failure, older than dead_after; or 400/422--> dead
 *        \------------------------- retry_dead (operator) ---------------------/
 *
 *  "leased" is pending with a lease: (lease_owner, lease_until).  A row is claimable when it is
 *  pending, due (next_at <= now) and not leased by anyone (lease_until < now): a deliver
 *  process that died mid-batch leaves rows that become claimable again when the lease runs
 *  out, and are sent again (at least once; the idempotency key is unchanged).  A process only
 *  changes rows it still holds: a mark from a process whose lease expired and was taken over
 *  is refused (BP_ERR_NOT_FOUND), so two processes never both own one row.
 *
 * Back-off: after the Nth failure the row is due again after a delay drawn uniformly from
 * [d/2, d] with d = min(backoff_base * 2^(N-1), backoff_max) ("equal jitter"), or after the
 * receiver's Retry-After when that is longer.
 *
 * Ownership: strings in a claimed bp_outbox_row are valid only during the claim callback; the
 * loop copies what it keeps.
 */
#ifndef BOUNCEPIPE_DELIVER_H
#define BOUNCEPIPE_DELIVER_H

#include <signal.h>
#include <stddef.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"
#include "bouncepipe/store.h"
#include "bouncepipe/webhook.h"

/* ---- the outbox ----------------------------------------------------------------------- */

/** A claimed row: its id, what identifies the event, and the event itself (the ledger's). */
typedef struct bp_outbox_row {
    long long id;          /**< outbox row id */
    const char *endpoint;  /**< endpoint name */
    const char *event_key; /**< idempotency key (bp_webhook_event_key()), stored with the row */
    unsigned attempts;     /**< failed attempts so far */
    long long created_at;  /**< when the row was written (the ledger transaction), Unix seconds */
    bp_event event;        /**< the event fields of its ledger row */
} bp_outbox_row;

typedef int (*bp_outbox_row_cb)(void *user, const bp_outbox_row *row);

/** Rows of an endpoint by state (deliver --status). */
typedef struct bp_outbox_counts {
    long long pending;        /**< waiting, due or not, leased or not */
    long long leased;         /**< of those, held by a process now */
    long long delivered;      /**< sent and acknowledged */
    long long dead;           /**< given up on; retry_dead() makes them pending */
    long long oldest_pending; /**< created_at of the oldest pending row, 0 when none */
} bp_outbox_counts;

/**
 * The outbox the loop works on.  Every function returns BP_OK or a store status
 * (BP_ERR_BUSY and BP_ERR_IO are transient); each is one short transaction of its own.
 */
typedef struct bp_outbox {
    void *ctx;
    /**
     * Claim at most @p max rows of @p endpoint that are pending, due (next_at <= @p now) and
     * not leased (lease_until < @p now), oldest first, by setting lease_owner = @p owner and
     * lease_until = @p now + @p lease_seconds, atomically: two callers never claim one row.
     * Then call @p cb once per claimed row (after the claim committed).
     */
    bp_status (*claim)(void *ctx, const char *endpoint, const char *owner, long long now, unsigned lease_seconds,
                       size_t max, bp_outbox_row_cb cb, void *user);
    /** Row @p id was delivered at @p now; the lease ends.  BP_ERR_NOT_FOUND when @p owner no
     *  longer holds it (then nothing changes). */
    bp_status (*delivered)(void *ctx, long long id, const char *owner, long long now);
    /** Attempt failed: attempts + 1, next_at = @p next_at, last_error = @p error, the lease
     *  ends.  BP_ERR_NOT_FOUND when @p owner no longer holds it. */
    bp_status (*retry)(void *ctx, long long id, const char *owner, long long next_at, const char *error);
    /** Give up on row @p id (state dead, last_error = @p error, attempts + 1, the lease ends).
     *  BP_ERR_NOT_FOUND when @p owner no longer holds it. */
    bp_status (*dead)(void *ctx, long long id, const char *owner, long long now, const char *error);
    /** Nothing was sent for row @p id (the pass stopped early): the lease ends, nothing else
     *  changes, so that another pass may take it at once.  BP_ERR_NOT_FOUND when @p owner no
     *  longer holds it. */
    bp_status (*release)(void *ctx, long long id, const char *owner);
    /** Make every dead row of @p endpoint (NULL: of every endpoint) pending again, due at
     *  @p now, attempts 0; @p count receives how many. */
    bp_status (*retry_dead)(void *ctx, const char *endpoint, long long now, long long *count);
    /** Count the rows of @p endpoint by state at @p now. */
    bp_status (*counts)(void *ctx, const char *endpoint, long long now, bp_outbox_counts *out);
} bp_outbox;

/** Add @p count rows in @p state ("pending", "delivered", "dead"; other states are ignored),
 *  @p leased of them leased, the oldest created at @p oldest, to @p c (a store's counts). */
void bp_outbox_counts_add(bp_outbox_counts *c, const char *state, long long count, long long leased, long long oldest);

/** The outbox of @p store (store.h, "the webhook outbox"): @p out's functions call the
 *  store's, each in a transaction of its own.  The store must outlive @p out. */
void bp_deliver_store_outbox(bp_store *store, bp_outbox *out);

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct bp_http_request {
    const char *url;
    const char *const *headers; /**< "Name: value", NULL-terminated */
    const char *body;
    size_t body_len;
    unsigned timeout_ms;         /**< whole request */
    unsigned connect_timeout_ms; /**< connecting (TCP and TLS) */
} bp_http_request;

typedef struct bp_http_response {
    int status;       /**< HTTP status; 0 when none came (refused, timeout, reset, TLS) */
    long retry_after; /**< seconds of a Retry-After header, or -1 */
    char error[256];  /**< what went wrong when status is 0 (or the reason phrase) */
} bp_http_response;

typedef struct bp_http_transport {
    void *ctx;
    /** POST the request; fill @p resp.  @return BP_OK when an answer (any status) came,
     *  BP_ERR_IO when none did (resp->error says why), BP_ERR_NOMEM. */
    bp_status (*post)(void *ctx, const bp_http_request *req, bp_http_response *resp);
    /** Release the transport (may be NULL). */
    void (*close)(void *ctx);
} bp_http_transport;

/**
 * Open the libcurl transport: load bouncepipe-http.so ($BOUNCEPIPE_HTTP_MODULE, beside the
 * executable, then the installed module directory) and start it.  TLS peers are always
 * verified (the system's CA store); redirects are not followed; only http and https.
 * @param error receives a malloc'ed explanation on failure
 * @return BP_OK, BP_ERR_UNSUPPORTED (module missing), BP_ERR_NOMEM.
 */
bp_status bp_http_transport_open(bp_http_transport *out, char **error);
/** Close a transport opened by bp_http_transport_open() (the module stays loaded). */
void bp_http_transport_close(bp_http_transport *t);

/* ---- the loop ------------------------------------------------------------------------- */

/** Settings of the delivery loop (the [deliver] group); bp_deliver_options_default(). */
typedef struct bp_deliver_options {
    unsigned backoff_base_ms; /**< first retry delay (default 30 s) */
    unsigned backoff_max_ms;  /**< longest retry delay (default 1 h) */
    long long dead_after_s;   /**< a row failing when older than this is dead (default 3 days) */
    unsigned lease_margin_s;  /**< lease beyond the batch's worst-case send time (default 30 s) */
    unsigned poll_ms;         /**< `deliver`: pause when nothing was due (default 1 s) */
} bp_deliver_options;

void bp_deliver_options_default(bp_deliver_options *o);

/**
 * Set one key of the [deliver] group from its string: backoff_base, backoff_max, dead_after,
 * lease_margin, poll_interval (durations: a number with ms, s, m, h or d; plain numbers are
 * seconds).
 * @return BP_OK, BP_ERR_CONFIG with a malloc'ed @p error.
 */
bp_status bp_deliver_options_set(bp_deliver_options *o, const char *key, const char *value, char **error);

/** What one pass did. */
typedef struct bp_deliver_result {
    size_t claimed;   /**< rows claimed */
    size_t delivered; /**< acknowledged (2xx) */
    size_t retried;   /**< failed, scheduled again */
    size_t dead;      /**< failed for good */
    size_t lost;      /**< marks refused: the lease had passed to another process */
    size_t requests;  /**< HTTP requests made */
    char last_error[300];
} bp_deliver_result;

/** The loop's clock and randomness, replaceable by tests; NULL members use the real ones. */
typedef struct bp_deliver_env {
    long long (*now)(void *user);             /**< Unix seconds */
    double (*random01)(void *user);           /**< uniform in [0, 1) */
    void (*log)(void *user, const char *msg); /**< one line per failure, for the operator */
    void *user;
    /** When it points at a non-zero value (a signal handler sets it), the pass ends after the
     *  request in flight: that request's rows are marked, the rows not sent yet released. */
    const volatile sig_atomic_t *stop;
} bp_deliver_env;

/**
 * One pass over one endpoint: claim up to 4 batches' worth of due rows as @p owner, send
 * them (one request per batch of ep->batch, listmonk one per row), and mark each row
 * delivered, retried or dead by the rules above.  A transport failure or an unwanted status
 * fails the rows of that request only.  When env->stop is set, the rows not sent yet are
 * released.
 * @param owner a name unique among running deliver processes (host:pid:random)
 * @return BP_OK (whatever the HTTP outcomes; see @p result); the outbox's status when it
 *         failed (rows claimed but not yet marked stay leased and come back after the lease).
 */
bp_status bp_deliver_once(const bp_webhook_endpoint *ep, const bp_deliver_options *opts, const bp_outbox *outbox,
                          const bp_http_transport *http, const char *owner, const bp_deliver_env *env,
                          bp_deliver_result *result);

/**
 * The delay before the next attempt after @p attempts failures (1 = the first), in ms, drawn
 * with @p r in [0, 1) by the back-off rule above.
 */
long long bp_deliver_backoff_ms(const bp_deliver_options *opts, unsigned attempts, double r);

#endif
