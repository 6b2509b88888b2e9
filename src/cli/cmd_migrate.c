/*
 * cmd_migrate.c - bouncepipe migrate [--config FILE] [--batch N] --from LOCATION --to LOCATION
 *
 * Copies a store into another, typically an SQLite file into PostgreSQL when a single host
 * becomes a fleet (--from /var/lib/bouncepipe/bouncepipe.db --to postgresql://db.example.com/
 * bounces), but any backend to any backend works the same way, back again included.
 *
 * The copy goes through the store's own operations, not around them, so the target applies
 * its own idempotency and derivation:
 *   - every unit of evidence (the source's event rows grouped by fingerprint) is recorded
 *     with bp_store_record(): a fingerprint the target already knows is not recorded again, one
 *     it knows as unrecognised is upgraded; so several hosts' stores can be merged into one
 *     and the same message seen by two of them counts once;
 *   - operator rows (removals, imports, manual additions) and delivery resets are replayed
 *     with bp_store_remove() / bp_store_add() / bp_store_record_delivery(), unless the target
 *     already holds a row of the same kind, address, evidence time and note;
 *   - everything is replayed in the source's ledger order, so that each operator decision
 *     meets the state it met the first time, and the target derives the suppression list;
 *   - the webhook outbox goes with its units: a unit's pending and dead outbox rows are written
 *     with it (bp_store_record_with_outbox()), keys, attempts, times and last errors kept, so
 *     that what was not delivered yet is delivered from the target with the same keys
 *     (delivered rows stay behind).
 * Then the DMARC tables (dmarc_store.h): every stored aggregate report, whole, with
 * bp_store_dmarc_put() (a report the target holds already, by organisation and report id,
 * is left alone), and the failure-report notes, --batch at a time, a transaction each.
 * Then what of the signal tables no ledger row gives back (signals.h bp_store_signal_copy():
 * the accounting counts, watermarks and alert states), merged by the larger value; the
 * ledger's counts the target made itself while recording the units.
 * Re-running the same migration therefore changes nothing, and a run cut short (75, a
 * crash) is finished by running it again.  The target's recorded_at is the time of the
 * copy (evidence times are kept).
 *
 * The source is opened read-only and read a page at a time, in two queries: --batch ledger
 * rows (default 500) in id order (bp_store_ledger_page()), and the rows of every unit whose
 * first row is on the page (bp_store_ledger_units(): rows of units begun on an earlier page
 * were copied with that page); the page's units and operator rows are written in one
 * transaction.  Memory is one page and its units, whatever the size of the store; the
 * source is asked two questions per page, not one per unit (a PostgreSQL source answered
 * 100,000 units four times slower than the whole ledger read at once).  A page that PostgreSQL aborts (deadlock with a
 * live writer, lock wait past busy_timeout_ms) is rolled back and run again with random back-off, up to
 * MIGRATE_ATTEMPTS times.
 *
 * Exit status: 0 copied (or nothing left to copy); 1 the source could not be read or a row
 * was refused; 64 usage; 75 a store is unreachable or busy (what was committed stays: run
 * it again); 78 configuration.
 *
 * Ownership: the strings of a page live in an arena reset after the page; the row and step
 * arrays are malloc'ed, reused from page to page and freed on return.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/dmarc_store.h"
#include "bouncepipe/secret.h"
#include "bouncepipe/signals.h"
#include "cli.h"

#define MIGRATE_DEFAULT_BATCH 500
#define MIGRATE_MAX_BATCH     100000
#define MIGRATE_ATTEMPTS      20

static const struct option migrate_options[] = {{"from", required_argument, NULL, 'f'},
                                                {"to", required_argument, NULL, 't'},
                                                {"batch", required_argument, NULL, 'b'},
                                                {NULL, 0, NULL, 0}};
static const bp_cli_command migrate_command = {
    "migrate",
    BP_OPT_CONFIG,
    migrate_options,
    0,
    NULL,
    0,
    0,
    "usage: bouncepipe migrate [--config FILE] [--batch N] --from LOCATION --to LOCATION\n"
    "  LOCATION is an SQLite file or a postgresql:// URL; credentials come from libpq's\n"
    "  environment (PGPASSFILE, ~/.pgpass, PGSERVICE), not from the command line\n",
    BP_CLI_SETUP_NONE,
};

struct migrate_args {
    const char *from, *to;
    long batch;
};

static int migrate_option(void *user, int opt, const char *arg)
{
    struct migrate_args *a = user;
    switch (opt) {
    case 'f': a->from = arg; return 0;
    case 't': a->to = arg; return 0;
    case 'b': return bp_cli_count_option("migrate", "--batch", arg, 1, MIGRATE_MAX_BATCH, &a->batch);
    default: return BP_EXIT_USAGE;
    }
}

/* One source ledger row, copied out of the callback. */
typedef struct item {
    long long id;
    const char *kind;
    bp_event event;
    long long evidence_time;
    const char *note;
    const char *mta_category;
} item;

typedef struct item_list {
    item *v;
    size_t n, cap;
    bp_arena *arena;
    int nomem;
} item_list;

static const char *copy_str(item_list *l, const char *s)
{
    if (s == NULL)
        return NULL;
    char *c = bp_arena_strdup(l->arena, s);
    if (c == NULL)
        l->nomem = 1;
    return c;
}

static int push_row(item_list *l, const bp_ledger_row *r)
{
    item *it = bp_array_push(&l->v, &l->n, &l->cap, sizeof(*it), 1024);
    const bp_event *e = &r->event;
    if (it == NULL) {
        l->nomem = 1;
        return 1;
    }
    it->id = r->id;
    it->kind = copy_str(l, r->kind);
    it->evidence_time = r->evidence_time;
    it->note = copy_str(l, r->note);
    it->mta_category = copy_str(l, r->mta_category);
    it->event = *e;
    it->event.dmarc = NULL; /* a ledger row has no report attached */
    const char **strs[BP_EVENT_N_STRINGS];
    bp_event_strings(&it->event, strs);
    for (size_t i = 0; i < BP_EVENT_N_STRINGS; i++)
        *strs[i] = copy_str(l, *strs[i]);
    return l->nomem;
}

static int collect_row(void *user, const bp_ledger_row *r)
{
    return push_row(user, r);
}

/* The source's outbox rows of a page's units that still wait (pending, dead), by ledger id. */
typedef struct waiting {
    bp_store_outbox_want *v; /* event_index holds the source's ledger id until the unit is written */
    size_t n, cap;
    bp_arena *arena;
    int nomem;
} waiting;

static int collect_waiting(void *user, const bp_store_outbox_entry *o)
{
    waiting *w = user;
    if (o->state == NULL || strcmp(o->state, "delivered") == 0)
        return 0;
    bp_store_outbox_want *x = bp_array_push(&w->v, &w->n, &w->cap, sizeof(*x), 256);
    if (x == NULL) {
        w->nomem = 1;
        return 1;
    }
    x->event_index = (size_t)o->ledger_id;
    x->endpoint = bp_arena_strdup(w->arena, o->endpoint);
    x->event_key = bp_arena_strdup(w->arena, o->event_key);
    x->last_error = o->last_error != NULL ? bp_arena_strdup(w->arena, o->last_error) : NULL;
    x->dead = strcmp(o->state, "dead") == 0;
    x->attempts = o->attempts;
    x->created_at = o->created_at;
    x->next_at = o->next_at;
    if (x->endpoint == NULL || x->event_key == NULL || (o->last_error != NULL && x->last_error == NULL))
        w->nomem = 1;
    return w->nomem;
}

/* A step of the replay: a unit (rows [first, first + n) of the page's unit rows) or one
 * operator/delivery row (row first of the page). */
typedef struct step {
    int is_unit;
    size_t first, n;
} step;

typedef struct step_list {
    step *v;
    size_t n, cap;
} step_list;

static int push_step(step_list *l, step sp)
{
    step *slot = bp_array_push(&l->v, &l->n, &l->cap, sizeof(*slot), 256);
    if (slot == NULL)
        return -1;
    *slot = sp;
    return 0;
}

typedef struct counts {
    unsigned long units_new, units_dup, units_upgraded;
    unsigned long ops_copied, ops_present, ops_not_applicable;
    unsigned long suppressed;
    unsigned long outbox; /* webhook outbox rows carried */
} counts;

/* Is there a row like @p want in the target already? */
typedef struct same_row {
    const item *want;
    int found;
} same_row;

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int find_same(void *user, const bp_ledger_row *r)
{
    same_row *s = user;
    if (strcmp(r->kind, s->want->kind) == 0 && r->evidence_time == s->want->evidence_time &&
        same_text(r->note, s->want->note)) {
        s->found = 1;
        return 1;
    }
    return 0;
}

static bp_status replay_operator_row(bp_store *to, const item *it, counts *c)
{
    const char *address = it->event.recipient;
    same_row same = {it, 0};
    bp_status st = bp_store_ledger_for(to, address, find_same, &same);
    if (st != BP_OK)
        return st;
    if (same.found) {
        c->ops_present++;
        return BP_OK;
    }
    int changed = 0;
    if (strcmp(it->kind, BP_LEDGER_REMOVAL) == 0) {
        st = bp_store_remove(to, address, it->note, it->evidence_time);
        if (st == BP_ERR_NOT_FOUND) {
            c->ops_not_applicable++; /* not suppressed at that point in the target */
            return BP_OK;
        }
        changed = st == BP_OK;
    } else if (strcmp(it->kind, BP_LEDGER_IMPORT) == 0 || strcmp(it->kind, BP_LEDGER_MANUAL) == 0) {
        /* force: in the source this row was written, so the operator meant it at that point */
        const char *kind = strcmp(it->kind, BP_LEDGER_IMPORT) == 0 ? BP_KIND_IMPORT : BP_KIND_MANUAL;
        st = bp_store_add(to, address, it->note, kind, it->evidence_time, 1, &changed);
        if (st == BP_OK && !changed) {
            c->ops_not_applicable++; /* suppressed already at that point in the target */
            return BP_OK;
        }
        if (st == BP_OK)
            c->suppressed++;
        changed = st == BP_OK;
    } else if (strcmp(it->kind, BP_LEDGER_DELIVERY) == 0) {
        st = bp_store_record_delivery(to, address, it->evidence_time);
        changed = st == BP_OK;
    } else {
        return BP_OK; /* a kind this program does not know: nothing to replay */
    }
    if (changed)
        c->ops_copied++;
    return st;
}

/* The unit's waiting outbox rows (@p wait: in ledger order) as wants of its events. */
static bp_status unit_outbox(const waiting *wait, const item *events, size_t n, bp_store_outbox_want **out,
                             size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = wait->n, id = (size_t)events[i].id;
        while (lo < hi) { /* the first of its rows: they are in ledger order */
            size_t mid = lo + (hi - lo) / 2;
            if (wait->v[mid].event_index < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = lo; k < wait->n && wait->v[k].event_index == id; k++) {
            bp_store_outbox_want *v = bp_realloc(*out, (*n_out + 1) * sizeof(*v));
            if (v == NULL) {
                free(*out);
                *out = NULL;
                return BP_ERR_NOMEM;
            }
            *out = v;
            v[*n_out] = wait->v[k];
            v[(*n_out)++].event_index = i;
        }
    }
    return BP_OK;
}

static bp_status replay_unit(bp_store *to, const item *events, size_t n, bp_event *scratch, const waiting *wait,
                             counts *c)
{
    const item *first = &events[0];
    for (size_t i = 0; i < n; i++)
        scratch[i] = events[i].event;
    bp_store_unit unit = {first->event.fingerprint, first->event.message_id, first->event.source, first->evidence_time,
                          first->mta_category};
    bp_record_result rr;
    bp_store_outbox_want *outbox = NULL;
    size_t n_outbox = 0;
    bp_status st = wait->n > 0 ? unit_outbox(wait, events, n, &outbox, &n_outbox) : BP_OK;
    if (st == BP_OK)
        st = bp_store_record_with_outbox(to, &unit, scratch, n, outbox, n_outbox, &rr);
    free(outbox);
    if (st != BP_OK)
        return st;
    c->outbox += rr.outcome != BP_RECORD_DUPLICATE ? n_outbox : 0;
    switch (rr.outcome) {
    case BP_RECORD_NEW: c->units_new++; break;
    case BP_RECORD_DUPLICATE: c->units_dup++; break;
    case BP_RECORD_UPGRADED: c->units_upgraded++; break;
    }
    c->suppressed += rr.suppressed;
    return BP_OK;
}

/* ---- the DMARC tables ---- */

typedef struct dmarc_copy {
    bp_store *to;
    long long last_id;
    char last_fp[128];
    size_t n, reports_new, reports_present, failures;
    bp_status st;
} dmarc_copy;

static int copy_report(void *user, long long id, const char *fingerprint, const bp_dmarc_report *r)
{
    dmarc_copy *c = user;
    int stored = 0;
    c->last_id = id;
    c->n++;
    c->st = bp_store_dmarc_put(c->to, fingerprint, r, &stored);
    if (stored)
        c->reports_new++;
    else
        c->reports_present++;
    return c->st != BP_OK;
}

static int copy_failure(void *user, const char *fingerprint, const char *domain, long long when)
{
    dmarc_copy *c = user;
    snprintf(c->last_fp, sizeof(c->last_fp), "%s", fingerprint != NULL ? fingerprint : "");
    c->n++;
    c->st = bp_store_dmarc_failure_put(c->to, fingerprint, domain, when);
    c->failures += c->st == BP_OK;
    return c->st != BP_OK;
}

/* Copy the DMARC tables, a page a transaction.  @return the failing status (*from_source:
 * reading failed), or BP_OK. */
static bp_status copy_dmarc(bp_store *src, bp_store *to, long batch, bp_arena *arena, dmarc_copy *c, int *from_source)
{
    *from_source = 0;
    for (int table = 0; table < 2; table++) {
        for (;;) {
            bp_arena_reset(arena);
            c->n = 0;
            c->st = BP_OK;
            bp_status st = bp_store_begin(to);
            if (st != BP_OK)
                return st;
            st = table == 0 ? bp_store_dmarc_reports(src, c->last_id, batch, arena, copy_report, c)
                            : bp_store_dmarc_failures(src, c->last_fp, batch, copy_failure, c);
            *from_source = st != BP_OK;
            if (st == BP_OK)
                st = c->st;
            st = bp_cli_end_tx(to, st);
            if (st != BP_OK)
                return st;
            if (c->n < (size_t)batch)
                break;
        }
    }
    return BP_OK;
}

static int migrate_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct migrate_args *args = user;
    char shown_loc[1024], shown[1024]; /* locations and store errors fit to print (secret.h) */
    bp_store *src = NULL, *to = NULL;
    item_list rows = {0}, units = {0};
    waiting wait = {0};
    step_list steps = {0};
    bp_event *scratch = NULL;
    size_t cap_scratch = 0, read = 0;
    bp_arena *arena = NULL;
    counts total;
    unsigned long skipped_rows = 0, transactions = 0, retries = 0;
    memset(&total, 0, sizeof(total));
    int rc = BP_EXIT_OK;
    const char *from = args->from, *to_location = args->to;
    long batch = args->batch;
    if (from == NULL || to_location == NULL) {
        bp_cli_usage(&migrate_command, stderr);
        return BP_EXIT_USAGE;
    }
    if (strcmp(from, to_location) == 0) {
        bp_cli_error("migrate", "--from and --to name the same store");
        return BP_EXIT_USAGE;
    }
    if (bp_cli_config_setup(env) != BP_OK)
        return BP_EXIT_CONFIG;
    arena = bp_cli_arena_new("migrate");
    if (arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    rows.arena = units.arena = wait.arena = arena;
    unsigned backoff_seed = bp_backoff_seed();

    /* the source (read-only) and the target */
    env->db = from;
    bp_status st = bp_cli_store_open(env, 1, &src);
    if (st != BP_OK) {
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    env->db = to_location;
    st = bp_cli_store_open(env, 0, &to);
    if (st != BP_OK) {
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }

    /* page after page of the source's ledger, in id order */
    for (long long after = 0;;) {
        bp_arena_reset(arena);
        rows.n = units.n = steps.n = wait.n = 0;
        st = bp_store_ledger_page(src, after, batch, collect_row, &rows);
        if (st == BP_OK && rows.nomem)
            st = BP_ERR_NOMEM;
        if (st != BP_OK)
            goto read_failed;
        if (rows.n == 0)
            break;
        /* the units this page begins, in one query (their rows past the page too), and the
         * page's operator and delivery rows, merged in ledger order: a unit stands at its
         * first row; rows of units begun on an earlier page were recorded with them */
        st = bp_store_ledger_units(src, after, rows.v[rows.n - 1].id, collect_row, &units);
        if (st == BP_OK && units.nomem)
            st = BP_ERR_NOMEM;
        if (st != BP_OK)
            goto read_failed;
        if (units.n > 0) { /* the outbox rows of those units that still wait */
            long long lo = LLONG_MAX, hi = LLONG_MIN;
            for (size_t i = 0; i < units.n; i++) {
                lo = units.v[i].id < lo ? units.v[i].id : lo;
                hi = units.v[i].id > hi ? units.v[i].id : hi;
            }
            st = bp_store_outbox_list(src, lo - 1, hi, collect_waiting, &wait);
            if (st == BP_OK && wait.nomem)
                st = BP_ERR_NOMEM;
            if (st != BP_OK)
                goto read_failed;
        }
        after = rows.v[rows.n - 1].id;
        size_t u = 0;
        for (size_t i = 0; i <= rows.n; i++) {
            const item *it = i < rows.n ? &rows.v[i] : NULL;
            if (it != NULL && strcmp(it->kind, BP_LEDGER_EVENT) == 0) {
                if (it->event.fingerprint == NULL)
                    skipped_rows++; /* the store never writes one; not a unit we could key */
                continue;
            }
            long long before = it != NULL ? it->id : LLONG_MAX; /* the units that begin before it */
            while (u < units.n && units.v[u].id < before) {
                size_t first = u;
                while (u < units.n && strcmp(units.v[u].event.fingerprint, units.v[first].event.fingerprint) == 0)
                    u++;
                if (push_step(&steps, (step){1, first, u - first}) != 0)
                    goto nomem;
                read += u - first;
            }
            if (it != NULL) {
                if (push_step(&steps, (step){0, i, 1}) != 0)
                    goto nomem;
                read++;
            }
        }
        for (size_t i = 0; i < steps.n; i++)
            if (steps.v[i].is_unit && steps.v[i].n > cap_scratch) {
                bp_event *v = bp_realloc(scratch, steps.v[i].n * sizeof(*v));
                if (v == NULL)
                    goto nomem;
                scratch = v;
                cap_scratch = steps.v[i].n;
            }

        /* write the page's steps in one transaction, retried when PostgreSQL aborts it */
        counts c;
        for (unsigned attempt = 0;; attempt++) {
            memset(&c, 0, sizeof(c));
            st = bp_store_begin(to);
            for (size_t i = 0; st == BP_OK && i < steps.n; i++) {
                const step *sp = &steps.v[i];
                st = sp->is_unit ? replay_unit(to, &units.v[sp->first], sp->n, scratch, &wait, &c)
                                 : replay_operator_row(to, &rows.v[sp->first], &c);
            }
            st = bp_cli_end_tx(to, st);
            if (st != BP_ERR_BUSY || attempt + 1 >= MIGRATE_ATTEMPTS)
                break;
            retries++;
            bp_sleep_ms(bp_backoff_ms(&backoff_seed, attempt, 10, 5000));
        }
        if (st != BP_OK) {
            bp_cli_error("migrate", "writing %s: %s: %s (%lu transactions committed; run it again to go on)",
                         bp_secret_mask(to_location, shown_loc, sizeof(shown_loc)), bp_status_to_string(st),
                         bp_secret_scrub(bp_store_last_error(to), to_location, shown, sizeof(shown)), transactions);
            rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
            goto out;
        }
        transactions++;
        total.units_new += c.units_new;
        total.units_dup += c.units_dup;
        total.units_upgraded += c.units_upgraded;
        total.ops_copied += c.ops_copied;
        total.ops_present += c.ops_present;
        total.ops_not_applicable += c.ops_not_applicable;
        total.suppressed += c.suppressed;
        total.outbox += c.outbox;
    }
    dmarc_copy dc;
    memset(&dc, 0, sizeof(dc));
    dc.to = to;
    int from_source = 0;
    st = copy_dmarc(src, to, batch, arena, &dc, &from_source);
    if (st != BP_OK && from_source)
        goto read_failed;
    long long signal_rows = 0;
    if (st == BP_OK)
        st = bp_store_signal_copy(src, to, &signal_rows, &from_source);
    if (st != BP_OK && from_source)
        goto read_failed;
    if (st != BP_OK) {
        bp_cli_error("migrate", "writing %s: DMARC reports or signal rows: %s: %s (run it again to go on)",
                     bp_secret_mask(to_location, shown_loc, sizeof(shown_loc)), bp_status_to_string(st),
                     bp_secret_scrub(bp_store_last_error(to), to_location, shown, sizeof(shown)));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    printf("migrate: %zu ledger rows read; units: %lu new, %lu already there, %lu upgraded; operator and "
           "delivery rows: %lu copied, %lu already there, %lu not applicable; %lu addresses became suppressed; "
           "%lu webhook outbox rows carried; %lu transactions, %lu retried; DMARC reports: %zu new, %zu already there; "
           "%zu failure reports; %lld signal rows merged\n",
           read, total.units_new, total.units_dup, total.units_upgraded, total.ops_copied, total.ops_present,
           total.ops_not_applicable, total.suppressed, total.outbox, transactions, retries, dc.reports_new,
           dc.reports_present, dc.failures, signal_rows);
    if (skipped_rows > 0) {
        bp_cli_error("migrate", "%lu event rows without a fingerprint were not copied", skipped_rows);
        rc = BP_EXIT_FAILURE;
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = BP_EXIT_FAILURE;
out:
    bp_store_close(src);
    bp_store_close(to);
    free(rows.v);
    free(units.v);
    free(wait.v);
    free(steps.v);
    free(scratch);
    bp_arena_free(arena);
    return rc;
read_failed:
    bp_cli_error("migrate", "reading %s: %s: %s", bp_secret_mask(from, shown_loc, sizeof(shown_loc)),
                 bp_status_to_string(st), bp_secret_scrub(bp_store_last_error(src), from, shown, sizeof(shown)));
    rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
    goto out;
nomem:
    bp_cli_error("migrate", "out of memory");
    rc = BP_EXIT_SOFTWARE;
    goto out;
}

static const struct migrate_args migrate_defaults = {NULL, NULL, MIGRATE_DEFAULT_BATCH};

const bp_cli_entry bp_cli_migrate = {&migrate_command, migrate_option, migrate_main, sizeof(struct migrate_args),
                                     &migrate_defaults};
