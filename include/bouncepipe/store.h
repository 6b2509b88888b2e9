/*
 * store.h - the suppression store: a ledger of every piece of evidence, the suppression
 * list derived from it, and the fingerprints of what was already processed.
 *
 * The interface is backend-neutral: bp_store_open() picks a backend from the location
 * (a file path is SQLite; "postgresql://..." is reserved for the PostgreSQL backend) and the
 * semantics below live in store.c, above the backends, so that every backend behaves alike:
 *
 *  - Idempotency.  Evidence arrives in units (one message, one accounting record) keyed by a
 *    fingerprint.  A unit whose fingerprint was recorded before changes nothing, except a unit
 *    that was quarantined (unrecognised) and is now recognised: its placeholder ledger row is
 *    replaced by the new events ("upgraded").
 *  - Identity.  An address is the same address in any case (local part and domain; Unicode
 *    case folding for UTF-8): every function taking an address finds it in any spelling, and
 *    the suppression list shows the spelling the store recorded first (docs/store.md).
 *  - Two channels.  A delivery failure reported twice, by an accounting record and by a DSN
 *    (same address, status, envelope id or job, evidence times minutes apart, the same
 *    action), is one piece of evidence: both reports stay in the ledger, the second is marked
 *    as the same failure (bp_ledger_row.paired_with) and does not count again.
 *  - Derivation.  The suppression row of an address is a function of its ledger rows taken in
 *    evidence-time order (ties by insertion): a "suppress" event suppresses; "soft" events
 *    suppress once N of them fall on at least D distinct UTC days within W days (a delivery,
 *    a removal or a suppression empties the count); a removal lifts the suppression, and only
 *    evidence dated after it suppresses again, so replaying old mail never resurrects an
 *    address.  Imports and manual additions are evidence of the operator.  Recording evidence
 *    re-derives the address, so the order evidence arrives in does not matter.
 *  - Transactions.  Writes happen between bp_store_begin() and bp_store_commit(); begin waits
 *    for the write lock at most busy_timeout_ms (with randomised back-off, so many writers
 *    take turns) and then fails with BP_ERR_BUSY.  A failed write leaves the transaction
 *    open: the caller calls bp_store_rollback(), and nothing of it is kept.  Many units may
 *    share one transaction (replay, the accounting reader batch them).
 *  - Time is Unix seconds (UTC).  "Evidence time" is when the evidence was made (a report's
 *    Date, an accounting record's time), "recorded" when the store learned of it.
 *
 * Ownership: a bp_store owns its connection.  Rows handed to callbacks (bp_ledger_row,
 * bp_suppression) and every string in them are valid only during the callback; copy what you
 * keep.  Callbacks return 0 to go on, non-zero to stop the iteration early (not an error).
 */
#ifndef BOUNCEPIPE_STORE_H
#define BOUNCEPIPE_STORE_H

#include <stddef.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"

typedef struct bp_store bp_store;

/** Soft-bounce escalation defaults: an address is suppressed after BP_SOFT_COUNT_DEFAULT soft
 *  events on at least BP_SOFT_DAYS_DEFAULT distinct UTC days within BP_SOFT_WINDOW_DEFAULT
 *  days (DESIGN.md; bp_policy_default() and bp_store_options_default() both use these). */
#define BP_SOFT_COUNT_DEFAULT  5
#define BP_SOFT_DAYS_DEFAULT   3
#define BP_SOFT_WINDOW_DEFAULT 30

/** Opening options; bp_store_options_default() fills in the defaults. */
typedef struct bp_store_options {
    unsigned busy_timeout_ms; /**< longest wait for the write lock (default 10000) */
    unsigned soft_count;      /**< N soft events ... (default BP_SOFT_COUNT_DEFAULT) */
    unsigned soft_days;       /**< ... on at least D distinct days (default BP_SOFT_DAYS_DEFAULT) */
    unsigned soft_window;     /**< ... within W days (default BP_SOFT_WINDOW_DEFAULT) */
    int read_only;            /**< open for reading; never creates the database */
} bp_store_options;

/** Fill @p o with the defaults (the thresholds of bp_policy_default()). */
void bp_store_options_default(bp_store_options *o);

/** @return non-zero when @p location names a PostgreSQL store ("postgresql://", "postgres://");
 *  anything else is an SQLite file. */
int bp_store_is_postgres(const char *location);

/**
 * Open (and create or migrate to the current schema, unless read-only) the store at
 * @p location: a file path for SQLite (created 0640, narrowed by a stricter umask).
 * @param error receives a malloc'ed explanation on failure (may be NULL); the caller frees it
 * @return BP_OK; BP_ERR_BUSY (locked past the timeout), BP_ERR_IO (cannot create or write),
 *         BP_ERR_STORE (not a bouncepipe database, or newer than this program),
 *         BP_ERR_NOT_FOUND (read-only and absent), BP_ERR_UNSUPPORTED (backend not built),
 *         BP_ERR_NOMEM.
 */
bp_status bp_store_open(const char *location, const bp_store_options *opts, bp_store **out, char **error);

/** Close; a transaction still open is rolled back.  NULL allowed. */
void bp_store_close(bp_store *s);

/** @return a description of the last backend error (static or owned by @p s), never NULL. */
const char *bp_store_last_error(const bp_store *s);

/* Store schema versions (docs/store.md "Migrations").  A step's constant is the version it
 * brings a store to; each backend (sqlite.c, postgres.c) holds the step's SQL and code at
 * index constant - 1 of its migrations[], so renumbering a step is changing its constant
 * here (and docs/store.md).  BP_STORE_SCHEMA_VERSION is the latest step: the version this
 * program writes and reads. */
#define BP_STORE_SCHEMA_ACCT_POSITION 4 /**< acct --follow keeps its position in the store */
#define BP_STORE_SCHEMA_IDENTITY      5 /**< identity is the case folding; a failure on two channels is one */
#define BP_STORE_SCHEMA_OUTBOX        6 /**< the webhook outbox (docs/webhooks.md) */
#define BP_STORE_SCHEMA_DMARC         7 /**< DMARC aggregate reports and failure-report domains (dmarc_sql.h) */
#define BP_STORE_SCHEMA_SIGNALS       8 /**< events' signal fields, signal counts, alerts (docs/signals.md) */
#define BP_STORE_SCHEMA_VERSION       BP_STORE_SCHEMA_SIGNALS

/** @return the schema version the open database is at. */
int bp_store_schema_version(const bp_store *s);

/** Start a write transaction. @return BP_OK, BP_ERR_BUSY, BP_ERR_IO, BP_ERR_STORE. */
bp_status bp_store_begin(bp_store *s);
/** Commit. @return BP_OK, BP_ERR_IO (disk full, read-only), BP_ERR_STORE; on failure roll back. */
bp_status bp_store_commit(bp_store *s);
/** Roll the open transaction back (no-op without one). */
void bp_store_rollback(bp_store *s);

/** A unit whose fingerprint begins with this is an accounting record (bp_acct_record_key()):
 *  the accounting channel.  Every other unit is a message: the mail channel. */
#define BP_UNIT_ACCT_PREFIX "acct:"

/**
 * One outbox row to write with a unit's events (docs/webhooks.md): the event it carries, the
 * webhook endpoint it goes to and the event's idempotency key.  The recording side (the core)
 * decides which endpoints want which events and computes the keys; the store only writes the
 * rows, in the transaction of the ledger rows.  A row whose event the store does not write
 * (an unrecognised event beside recognised ones; any but the first of a unit that is all
 * unrecognised, kept as one placeholder) is not written either.
 */
typedef struct bp_store_outbox_want {
    size_t event_index;    /**< index into the unit's events */
    const char *endpoint;  /**< the endpoint's name ([webhook NAME]) */
    const char *event_key; /**< the event's idempotency key (bp_webhook_event_key()) */
    /* what migrate carries over from another store; all zero for a new row */
    int dead;               /**< written dead instead of pending */
    unsigned attempts;      /**< failed attempts so far */
    long long created_at;   /**< 0: now */
    long long next_at;      /**< when it is due; 0: created_at */
    const char *last_error; /**< or NULL */
} bp_store_outbox_want;

/** One unit of evidence: a message, or one accounting record. */
typedef struct bp_store_unit {
    const char *fingerprint;  /**< idempotency key (required); BP_UNIT_ACCT_PREFIX: accounting */
    const char *message_id;   /**< or NULL */
    const char *source;       /**< where it came from, or NULL */
    long long evidence_time;  /**< when the evidence was made; 0 = now */
    const char *mta_category; /**< the MTA's own category (PowerMTA bounceCat), kept beside ours; or NULL */
} bp_store_unit;

typedef enum bp_record_outcome {
    BP_RECORD_NEW = 0,   /**< first time: events recorded */
    BP_RECORD_DUPLICATE, /**< seen before: nothing changed */
    BP_RECORD_UPGRADED,  /**< was quarantined, now recognised: events recorded */
} bp_record_outcome;

/** What recording did, for logs. */
typedef struct bp_record_result {
    bp_record_outcome outcome;
    unsigned suppressed; /**< addresses that became suppressed */
    unsigned recorded;   /**< ledger rows written */
} bp_record_result;

/**
 * Record a unit and its events (in a transaction).  A unit whose events are all of type
 * unrecognized is stored as one placeholder row and remembered as unrecognised, so that a
 * later run with better rules may record it properly; events without a recipient are kept
 * as evidence but touch no address.  Each event's action is taken as given (the policy already decided it).
 * @return BP_OK; BP_ERR_USAGE outside a transaction or without a fingerprint; backend errors.
 */
bp_status bp_store_record(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                          bp_record_result *result);

/**
 * bp_store_record(), and with the unit's events, when it is new or upgraded, the outbox rows
 * @p outbox asks for (n_outbox of them; see bp_store_outbox_want), in the same transaction: a
 * duplicate unit writes none.
 */
bp_status bp_store_record_with_outbox(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                                      const bp_store_outbox_want *outbox, size_t n_outbox, bp_record_result *result);

/**
 * Look a fingerprint up (read only, no transaction needed).
 * @param state receives 0 unknown, 1 recorded, 2 recorded as unrecognised (a later run may retry it)
 */
bp_status bp_store_seen(bp_store *s, const char *fingerprint, int *state);

/**
 * A delivery to @p address at @p when: empties its soft-bounce count.  Writes a ledger row
 * only when there was something to reset, so that millions of deliveries cost no space.
 * (In a transaction.)
 */
bp_status bp_store_record_delivery(bp_store *s, const char *address, long long when);

/** begin + record + commit, rolled back on any failure.  For one-message callers (pipe). */
bp_status bp_store_record_once(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                               bp_record_result *result);

/* ---- where `acct --follow` stopped ------------------------------------------------ */

/** The position of a followed accounting stream (table acct_position, schema 4): the file being
 *  read and the offset just past the last record committed with it, so that a restart resumes
 *  there.  Written in the transaction of the records it follows. */
typedef struct bp_acct_position {
    const char *stream;   /**< the followed path, as given to --follow */
    const char *file;     /**< the file being read */
    long long inode;      /**< its inode: another file of the same name starts at 0 */
    long long offset;     /**< bytes of @p file whose records are committed */
    long long updated_at; /**< when it was written, Unix seconds */
} bp_acct_position;

typedef int (*bp_acct_position_cb)(void *user, const bp_acct_position *pos);

/** The position of @p stream (no transaction needed): @p cb called once, or BP_ERR_NOT_FOUND. */
bp_status bp_store_acct_position(bp_store *s, const char *stream, bp_acct_position_cb cb, void *user);

/** Record the position of pos->stream (in a transaction). */
bp_status bp_store_acct_position_put(bp_store *s, const bp_acct_position *pos);

/* ---- operator commands ------------------------------------------------------------- */

/** Source kinds of a suppression (the evidence that made it). */
#define BP_KIND_BOUNCE         "bounce"
#define BP_KIND_COMPLAINT      "complaint"
#define BP_KIND_SOFT_THRESHOLD "soft-threshold"
#define BP_KIND_IMPORT         "import"
#define BP_KIND_MANUAL         "manual"

/** A row of the suppression list. */
typedef struct bp_suppression {
    const char *address;
    const char *domain;      /**< lower case */
    const char *reason;      /**< category or feedback type, or the operator's text */
    const char *source_kind; /**< BP_KIND_* */
    long long first_seen;    /**< evidence time of the first suppressing evidence */
    long long last_seen;     /**< evidence time of the latest */
    long long count;         /**< suppressing evidence rows so far */
    int lifted;              /**< removed by an operator; not suppressed now */
    const char *lift_reason;
    long long lifted_at;
    const char *address_key; /**< the address's identity (its case folding): one row per key */
} bp_suppression;

/** Ledger row kinds. */
#define BP_LEDGER_EVENT    "event"    /**< an event of a report or accounting record */
#define BP_LEDGER_REMOVAL  "removal"  /**< an operator lifted the suppression */
#define BP_LEDGER_IMPORT   "import"   /**< an imported suppression */
#define BP_LEDGER_MANUAL   "manual"   /**< an operator-added suppression */
#define BP_LEDGER_DELIVERY "delivery" /**< a delivery that reset a soft-bounce count */

/** A ledger row: the event fields plus the row's own. */
typedef struct bp_ledger_row {
    long long id;
    const char *kind;   /**< BP_LEDGER_* */
    bp_event event;     /**< event fields (strings NULL when unknown); event.final too */
    const char *domain; /**< recipient domain, lower case (filled in by the store) */
    long long evidence_time;
    long long recorded_at;
    const char *note;         /**< removal/import reason */
    const char *mta_category; /**< the MTA's own category, when the evidence came with one */
    const char *address_key;  /**< the recipient's identity (filled in by the store) */
    long long paired_with;    /**< a second report of the failure of ledger row paired_with, made
                                   through the other channel: evidence that does not count
                                   again (0: none) */
    long long reported_again; /**< this row counts a failure that ledger row reported_again
                                   reported again through the other channel (0: none) */
} bp_ledger_row;

typedef int (*bp_suppression_cb)(void *user, const bp_suppression *row);
typedef int (*bp_ledger_cb)(void *user, const bp_ledger_row *row);

/** Filters of export and stats; zero / NULL fields do not filter. */
typedef struct bp_store_filter {
    long long since;      /**< evidence (suppressions: last_seen) at or after */
    const char *type;     /**< suppressions: source kind; ledger: event type */
    const char *category; /**< reason (category or feedback type) */
    const char *domain;   /**< recipient domain, exact, lower case */
    int include_lifted;   /**< suppressions: also lifted rows */
} bp_store_filter;

/** The suppression row of @p address (in any spelling; the row shows the one recorded first).
 *  @return BP_OK (cb called once), BP_ERR_NOT_FOUND. */
bp_status bp_store_lookup(bp_store *s, const char *address, bp_suppression_cb cb, void *user);

/** Every ledger row about @p address, in any spelling, in evidence-time order. */
bp_status bp_store_ledger_for(bp_store *s, const char *address, bp_ledger_cb cb, void *user);

/**
 * Lift the suppression of @p address (in a transaction); the removal stays in the ledger.
 * @return BP_OK; BP_ERR_NOT_FOUND when it is not suppressed now.
 */
bp_status bp_store_remove(bp_store *s, const char *address, const char *reason, long long now);

/**
 * Add @p address to the list as an operator's evidence (in a transaction).
 * @param kind BP_KIND_IMPORT or BP_KIND_MANUAL
 * @param when evidence time (0 = now)
 * @param force also suppress an address an operator removed (otherwise it is left alone)
 * @param changed receives 1 when the list changed, 0 when already suppressed or left alone
 */
bp_status bp_store_add(bp_store *s, const char *address, const char *reason, const char *kind, long long when,
                       int force, int *changed);

/** Suppression rows matching @p filter, in address order. */
bp_status bp_store_export(bp_store *s, const bp_store_filter *filter, bp_suppression_cb cb, void *user);

/** Stats dimensions. */
typedef enum bp_stats_dim {
    BP_STATS_TYPE = 0,   /**< event type */
    BP_STATS_CATEGORY,   /**< category, or "complaint:" feedback type */
    BP_STATS_ACTION,     /**< action */
    BP_STATS_DOMAIN,     /**< recipient domain */
    BP_STATS_DAY,        /**< UTC day YYYY-MM-DD of the evidence */
    BP_STATS_SUPPRESSED, /**< active suppressions by source kind */
    BP_STATS_LIFTED,     /**< lifted suppressions by source kind */
    BP_STATS_DIM_LAST
} bp_stats_dim;

/** @return the name of @p dim ("type", ...). */
const char *bp_stats_dim_name(bp_stats_dim dim);

typedef int (*bp_stats_cb)(void *user, bp_stats_dim dim, const char *key, long long count);

/** Counts of event ledger rows (filter.since only) by every dimension, largest first; a second
 *  report of a failure (paired_with) is not counted again. */
bp_status bp_store_stats(bp_store *s, const bp_store_filter *filter, bp_stats_cb cb, void *user);

/** Every event ledger row in id order (rescore); read a page at a time. */
bp_status bp_store_ledger_events(bp_store *s, bp_ledger_cb cb, void *user);

/**
 * At most @p limit ledger rows of every kind whose ids follow @p after_id, in id order (0: from
 * the first; limit 0: a default page).  A caller walks the whole ledger in bounded memory by
 * passing the last id it was given (migrate).
 */
bp_status bp_store_ledger_page(bp_store *s, long long after_id, long long limit, bp_ledger_cb cb, void *user);

/**
 * The event rows of every unit whose first event row has an id in (@p after_id, @p last_id]:
 * unit after unit in the order of their first rows, each unit's rows in id order, those with
 * ids past @p last_id included.  With bp_store_ledger_page() it reads a page of the ledger and
 * the units it begins in two queries (migrate).
 */
bp_status bp_store_ledger_units(bp_store *s, long long after_id, long long last_id, bp_ledger_cb cb, void *user);

/**
 * Change the classification of ledger row @p id (rescore --apply; in a transaction), and
 * re-derive its address.  Fields are copied.
 */
bp_status bp_store_reclassify(bp_store *s, long long id, const char *recipient, const char *category, const char *rule,
                              bp_action action, const char *blocklist);

/* ---- the report's grouped counts (docs/report.md) ---------------------------------- */

/** What bp_store_group_counts() counts. */
typedef enum bp_group_dim {
    BP_GROUP_DAY_TYPE = 0,     /**< event rows by UTC day of evidence (key1 "YYYY-MM-DD") and type (key2) */
    BP_GROUP_DOMAIN_CATEGORY,  /**< by receiving domain (key1) and category, "complaint:" feedback type,
                                    or else type (key2); rows without a domain are not counted */
    BP_GROUP_RULE,             /**< by the rule that decided the category (key1; rows with one) */
    BP_GROUP_BLOCKLIST,        /**< by the named blocklist (key1; rows with one) */
    BP_GROUP_NEW_SUPPRESSIONS, /**< suppression rows, lifted ones too, by UTC day of their first evidence
                                    (key1), those from before filter.since as key1 NULL */
    BP_GROUP_DIM_LAST
} bp_group_dim;

/** One count: @p key2 is NULL for the one-key dimensions. @return non-zero to stop. */
typedef int (*bp_group_cb)(void *user, const char *key1, const char *key2, long long count);

/**
 * Grouped counts of @p dim, counted by the database (no row is read into the program): event
 * rows with evidence at or after filter.since (only that field of the filter is used).
 * @return BP_OK or the backend's status.
 */
bp_status bp_store_group_counts(bp_store *s, bp_group_dim dim, const bp_store_filter *filter, bp_group_cb cb,
                                void *user);

/* ---- the webhook outbox (docs/webhooks.md) -------------------------------------------
 * One row per (event, endpoint), written with the event (bp_store_unit.outbox) and drained by
 * `deliver` through src/deliver/'s bp_outbox, whose contract these functions keep: a row is
 * claimable when pending, due (next_at <= now) and not leased (lease_until < now); a claim is
 * atomic (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the writer's lock); a mark changes a row
 * only while the caller holds its lease.  Each of these runs its own short transaction: call
 * them outside one. */

/** An outbox row. */
typedef struct bp_store_outbox_entry {
    long long id;
    long long ledger_id; /**< the ledger row of its event */
    const char *endpoint;
    const char *event_key;
    const char *state; /**< "pending", "delivered" or "dead" */
    unsigned attempts; /**< failed attempts */
    long long created_at, next_at, lease_until, delivered_at;
    const char *lease_owner; /**< or NULL */
    const char *last_error;  /**< or NULL */
} bp_store_outbox_entry;

/** A claimed row and its event's ledger row. @return non-zero to stop (the rest stay leased). */
typedef int (*bp_store_outbox_cb)(void *user, const bp_store_outbox_entry *row, const bp_ledger_row *event);

/**
 * Lease at most @p max rows of @p endpoint that are pending, due and not leased, oldest first,
 * to @p owner until @p now + @p lease_seconds; after the claim committed, hand each to @p cb.
 */
bp_status bp_store_outbox_claim(bp_store *s, const char *endpoint, const char *owner, long long now,
                                unsigned lease_seconds, size_t max, bp_store_outbox_cb cb, void *user);

/** How bp_store_outbox_mark() changes a row. */
typedef enum bp_outbox_mark {
    BP_OUTBOX_DELIVERED = 0, /**< delivered at @p when */
    BP_OUTBOX_RETRY,         /**< attempts + 1, due again at @p when, last_error */
    BP_OUTBOX_DEAD,          /**< attempts + 1, dead, last_error */
    BP_OUTBOX_RELEASE,       /**< nothing sent: the lease ends, nothing else changes */
} bp_outbox_mark;

/**
 * Mark row @p id, which @p owner must hold; the lease ends.
 * @return BP_OK; BP_ERR_NOT_FOUND when @p owner does not hold it (then nothing changed).
 */
bp_status bp_store_outbox_mark(bp_store *s, long long id, const char *owner, bp_outbox_mark how, long long when,
                               const char *error);

/** Make every dead row of @p endpoint (NULL: of every endpoint) pending and due at @p now,
 *  attempts 0; @p count receives how many. */
bp_status bp_store_outbox_retry_dead(bp_store *s, const char *endpoint, long long now, long long *count);

/** Rows of one endpoint in one state: @p leased of them held at @p now, @p oldest their
 *  earliest created_at. @return non-zero to stop. */
typedef int (*bp_store_outbox_count_cb)(void *user, const char *endpoint, const char *state, long long count,
                                        long long leased, long long oldest);

/** Count the rows of @p endpoint (NULL: of every endpoint, by endpoint) by state at @p now. */
bp_status bp_store_outbox_counts(bp_store *s, const char *endpoint, long long now, bp_store_outbox_count_cb cb,
                                 void *user);

typedef int (*bp_store_outbox_entry_cb)(void *user, const bp_store_outbox_entry *row);

/** The outbox rows of the ledger rows with ids in (@p after_ledger_id, @p last_ledger_id], in
 *  ledger order (migrate carries them with their units; tests look at them). */
bp_status bp_store_outbox_list(bp_store *s, long long after_ledger_id, long long last_ledger_id,
                               bp_store_outbox_entry_cb cb, void *user);

#endif
