/*
 * store.c - the semantics of the store, above its backends (see store.h for the rules).
 *
 * bp_store_open()        picks the backend: "postgresql://" / "postgres://" locations are
 *                        reserved for the PostgreSQL backend (BP_ERR_UNSUPPORTED until it is
 *                        built); anything else is an SQLite file path.
 * bp_store_record()      idempotent recording of one unit; re-derives every address it touched.
 * bp_address_key()       (identity.c) an address's identity: every address the store is
 *                        given, in a report or by an operator, is looked up, locked, derived
 *                        and stored under its key; rows keep the spelling they came with, and
 *                        a suppression row shows the address's first (docs/store.md "Identity").
 * pair_report()          a bounce reported by both channels, an accounting record and a DSN,
 *                        is one failure: the report that sorts second is marked (paired_with)
 *                        and folds to nothing (docs/store.md "Two channels").
 * derive()               the one definition of an address's suppression row: a fold over its
 *                        ledger rows in evidence-time order.  Recording, removal, import,
 *                        deliveries and rescore all end in it, so their results agree whatever
 *                        order the evidence came in.  It goes on from the address's saved fold
 *                        state (table derive_state) when that gives exactly the same result,
 *                        so that recording a row does not read the address's whole history
 *                        (see "the fold state kept per address" below).
 * tx_hooks               what this file does around a transaction, run by store_tx.c's
 *                        begin/commit/rollback: every event row bp_store_record() writes is
 *                        counted for signals.c (bp_signal_acc_event()), and the counts are
 *                        written at the commit; the extensions' statements go through
 *                        store_tx.c's bp_store_sql_run() (store_handle.h says why).
 *
 * Ownership: a bp_store owns the backend handle, the signal counts of its transaction and the
 * list of rows its transaction has not derived yet.  derive() copies what it needs out of the
 * backend's rows (they live only during the callback) into memory it frees before returning.
 */
#include "bouncepipe/store.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BP_HAVE_POSTGRES
#include <unistd.h>
#endif
#include <time.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/module.h"
#include "bouncepipe/text.h"
#include "dmarc_sql.h"
#include "fold.h"
#include "identity.h"
#include "outbox.h"
#include "rows.h"
#include "signals_sql.h"
#include "sql.h"
#include "store_backend.h"
#include "store_handle.h"

static void forget_unfolded(bp_store *s, const char *address);

void bp_store_options_default(bp_store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->busy_timeout_ms = 10000;
    o->soft_count = BP_SOFT_COUNT_DEFAULT;
    o->soft_days = BP_SOFT_DAYS_DEFAULT;
    o->soft_window = BP_SOFT_WINDOW_DEFAULT;
}

static int is_postgres(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

int bp_store_is_postgres(const char *location)
{
    return location != NULL && is_postgres(location);
}

#ifdef BP_HAVE_POSTGRES
/*
 * The PostgreSQL backend lives in a module (bouncepipe-postgres.so) loaded on first use, so
 * that libpq is never loaded by a process that writes SQLite.  Looked for in
 * $BOUNCEPIPE_PG_MODULE, beside the executable, then in BP_PG_MODULE_DIR.  The module stays
 * loaded for the life of the process.
 */
static const bp_store_backend *postgres_backend(char **error)
{
    static const bp_store_backend *loaded;
    char why[600];
    if (loaded == NULL)
        loaded = bp_module_symbol("BOUNCEPIPE_PG_MODULE", "bouncepipe-postgres.so", BP_PG_MODULE_DIR,
                                  "bp_store_backend_postgres", NULL, why, sizeof(why));
    if (loaded == NULL && error != NULL) {
        char msg[700];
        snprintf(msg, sizeof(msg), "cannot load the PostgreSQL backend module: %s", why);
        *error = bp_strdup(msg);
    }
    return loaded;
}
#endif

static bp_status derive(bp_store *s, const char *key, int *became_suppressed, size_t *soft_pending,
                        long long *soft_oldest);

static bp_status migration_rederive(void *ctx, void *h, const char *key);

/* What this file does around every transaction (store_handle.h): the rows derive() has not
 * folded yet and the transaction's signal counts are forgotten when one starts or ends, and
 * written into it before its commit. */
static bp_status drop_unfolded_states(bp_store *s);

static void tx_reset(bp_store *s)
{
    forget_unfolded(s, NULL);
    bp_signal_acc_reset(s->signals);
}

static bp_status tx_before_commit(bp_store *s)
{
    bp_status st = drop_unfolded_states(s);
    if (st == BP_OK) /* the transaction's signal counts, in it (signals.c) */
        st = bp_signal_acc_flush(s, s->signals);
    return st;
}

static void tx_committed(bp_store *s)
{
    bp_signal_acc_committed(s->signals);
}

static const bp_store_tx_hooks tx_hooks = {tx_reset, tx_before_commit, tx_committed};

bp_status bp_store_open(const char *location, const bp_store_options *opts, bp_store **out, char **error)
{
    bp_store_options defaults;
    *out = NULL;
    if (opts == NULL) {
        bp_store_options_default(&defaults);
        opts = &defaults;
    }
#ifndef BP_HAVE_POSTGRES
    if (is_postgres(location)) {
        if (error != NULL)
            *error = bp_strdup("the PostgreSQL backend is not built into this program");
        return BP_ERR_UNSUPPORTED;
    }
#endif
    const bp_store_backend *be = &bp_store_backend_sqlite;
#ifdef BP_HAVE_POSTGRES
    if (is_postgres(location) && (be = postgres_backend(error)) == NULL)
        return BP_ERR_UNSUPPORTED; /* an installation problem: pipe mode still answers 75 */
#endif
    bp_store *s = bp_calloc(1, sizeof(*s));
    if (s == NULL)
        return BP_ERR_NOMEM;
    s->be = be;
    s->hooks = &tx_hooks;
    s->opts = *opts;
    if (s->opts.soft_count == 0)
        s->opts.soft_count = 1;
    const bp_store_hooks hooks = {s, bp_address_key, migration_rederive};
    bp_status st = s->be->open(location, &s->opts, &hooks, &s->h);
    if (st != BP_OK) {
        if (s->h != NULL && error != NULL)
            *error = bp_strdup(((const bp_backend_head *)s->h)->error);
        if (s->h != NULL)
            s->be->close(s->h);
        free(s);
        return st;
    }
    *out = s;
    return BP_OK;
}

void bp_store_close(bp_store *s)
{
    if (s == NULL)
        return;
    s->be->close(s->h);
    forget_unfolded(s, NULL);
    free(s->unfolded);
    bp_signal_acc_free(s->signals);
    free(s);
}

const char *bp_store_last_error(const bp_store *s)
{
    if (s->error[0] != '\0')
        return s->error;
    const bp_backend_head *head = s->h;
    return head->error[0] != '\0' ? head->error : "no error";
}

int bp_store_schema_version(const bp_store *s)
{
    return ((const bp_backend_head *)s->h)->version;
}

static bp_status need_tx(bp_store *s)
{
    if (s->in_tx)
        return BP_OK;
    snprintf(s->error, sizeof(s->error), "write outside a transaction");
    return BP_ERR_USAGE;
}

static long long now_seconds(void)
{
    return (long long)time(NULL);
}

/* The domain of an address key (folded like the rest of the key: lower case), a pointer
 * into it; NULL when there is none. */
static const char *domain_of_key(const char *key)
{
    const char *at = key != NULL ? strrchr(key, '@') : NULL;
    return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* The identity key of @p address (identity.h) into *key (malloc'ed; NULL for NULL).
 * @return BP_OK or BP_ERR_NOMEM */
static bp_status key_of(bp_store *s, const char *address, char **key)
{
    *key = NULL;
    if (address == NULL)
        return BP_OK;
    if ((*key = bp_address_key(address)) != NULL)
        return BP_OK;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return BP_ERR_NOMEM;
}

/* The key of an operator's or a delivery's address, into *key (malloc'ed), inside a
 * transaction; the address no longer than an address can be (limits.h).
 * @return BP_OK, BP_ERR_USAGE or BP_ERR_NOMEM */
static bp_status operator_key(bp_store *s, const char *address, char **key)
{
    *key = NULL;
    bp_status st = need_tx(s);
    if (st != BP_OK)
        return st;
    if (address == NULL || strlen(address) > BP_MAX_ADDRESS_BYTES) {
        snprintf(s->error, sizeof(s->error), "not an address (empty, or longer than %u bytes)", BP_MAX_ADDRESS_BYTES);
        return BP_ERR_USAGE;
    }
    return key_of(s, address, key);
}

/* ---- the fold state kept per address (table derive_state) --------------------------------
 *
 * The fold itself (what each row means, soft-bounce escalation, removals) is fold.c.  derive()
 * keeps the state of each address's fold, keyed by the last row folded, so that recording a
 * row folds only the rows after that key instead of the address's whole ledger.
 * The invariant: every committed ledger row of the address that sorts at or before the key
 * and means something to the fold (bp_fact_of() is not BP_FACT_NOTHING) is folded into the
 * state.  Rows are only ever added (ledger_insert), re-classified (bp_store_reclassify) or,
 * for placeholders that fold to nothing, deleted; store.c notes every row it adds or changes
 * in the transaction (s->unfolded) until derive() has folded it:
 *   - a noted row after the key is read back by the incremental query;
 *   - a noted row at or before the key (it arrived out of evidence-time order) is folded
 *     into the state at once when the state was suppressed since before it and stays so
 *     (bp_fold_late());
 *   - anything else (a removal arriving late, a row before the suppression in force, a
 *     re-classified row, no state, a state of another policy or format) folds the address
 *     from its first row and rewrites the state.
 * Every transaction that adds rows derives their addresses before it commits (bp_store_commit
 * drops the state of any it did not), and derivations of one address are serial (SQLite:
 * one writer; PostgreSQL: the address's row lock, taken by state_get before reading), so no
 * other writer's row can be missing from a state it reads. */

static bp_fold_policy fold_policy(const bp_store *s)
{
    bp_fold_policy p = {s->opts.soft_count, s->opts.soft_days, s->opts.soft_window};
    return p;
}

typedef struct state_load {
    const char *policy;
    bp_fold *d;
    int usable;
} state_load;

static int load_state(void *user, const bp_fold_state *st)
{
    state_load *l = user;
    l->usable = bp_fold_load(l->d, st, l->policy);
    return 0;
}

static bp_status save_state(bp_store *s, const char *address, const bp_fold *d)
{
    char policy[64];
    bp_fold_policy fp = fold_policy(s);
    bp_fold_policy_text(&fp, policy, sizeof(policy));
    char *soft = bp_fold_soft_text(d);
    if (soft == NULL)
        return BP_ERR_NOMEM;
    bp_fold_state st = bp_fold_to_state(d, address, policy, soft);
    bp_status bs = bp_rows_state_put(s->be, s->h, &st);
    free(soft);
    return bs;
}

/* Rows this transaction wrote or changed that derive() has not folded yet. */
typedef struct unfolded {
    char *address;
    bp_fact_what what;
    long long t, id;
    int refold; /* an existing row changed: fold the address from its first row */
} unfolded;

/* Note a row written or changed in this transaction (see above). */
static bp_status note_unfolded(bp_store *s, const char *address, bp_fact_what what, long long t, long long id,
                               int refold)
{
    if (address == NULL || (what == BP_FACT_NOTHING && !refold))
        return BP_OK; /* rows that fold to nothing change no state, wherever they sort */
    if (s->n_unfolded == s->cap_unfolded) {
        size_t cap = s->cap_unfolded ? s->cap_unfolded * 2 : 8;
        unfolded *v = bp_realloc(s->unfolded, cap * sizeof(*v));
        if (v == NULL)
            return BP_ERR_NOMEM;
        s->unfolded = v;
        s->cap_unfolded = cap;
    }
    unfolded *u = &s->unfolded[s->n_unfolded];
    if ((u->address = bp_strdup(address)) == NULL)
        return BP_ERR_NOMEM;
    u->what = what;
    u->t = t;
    u->id = id;
    u->refold = refold;
    s->n_unfolded++;
    return BP_OK;
}

/* Forget the noted rows of @p address (NULL: of every address). */
static void forget_unfolded(bp_store *s, const char *address)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->n_unfolded; i++) {
        if (address == NULL || strcmp(s->unfolded[i].address, address) == 0)
            free(s->unfolded[i].address);
        else
            s->unfolded[keep++] = s->unfolded[i];
    }
    s->n_unfolded = keep;
}

/* ---- derive ---------------------------------------------------------------------------- */

typedef struct current_row {
    const bp_suppression *want; /* the row derive() is about to write, or NULL */
    int found;
    int active;
    int same; /* equal to *want */
} current_row;

static int same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int note_current(void *user, const bp_suppression *r)
{
    current_row *c = user;
    const bp_suppression *w = c->want;
    c->found = 1;
    c->active = !r->lifted;
    c->same = w != NULL && same_text(r->domain, w->domain) && same_text(r->reason, w->reason) &&
              same_text(r->source_kind, w->source_kind) && r->first_seen == w->first_seen &&
              r->last_seen == w->last_seen && r->count == w->count && (r->lifted != 0) == (w->lifted != 0) &&
              same_text(r->lift_reason, w->lift_reason) && r->lifted_at == w->lifted_at;
    return 0;
}

typedef struct fold_ctx {
    bp_fold_policy policy;
    bp_fold *d;
    long long first_id; /* the lowest id folded and its spelling (first[0] '\0': none) */
    char first[BP_MAX_ADDRESS_BYTES + 1];
} fold_ctx;

static int fold_row(void *user, const bp_ledger_row *r)
{
    fold_ctx *c = user;
    if (r->event.recipient != NULL && (c->first[0] == '\0' || r->id < c->first_id)) {
        c->first_id = r->id;
        snprintf(c->first, sizeof(c->first), "%s", r->event.recipient);
    }
    return bp_fold_row(&c->policy, c->d, r);
}

/* Re-derive the suppression row of address key @p key from its ledger rows: from its fold
 * state and the rows after it when that is exact, else from its first row (see above).  A
 * suppression row written for the first time shows the address's first spelling.
 * @param became_suppressed if not NULL, set to 1 when it was not suppressed and now is
 * @param soft_pending if not NULL, receives the number of soft events counted at the end
 * @param soft_oldest if not NULL, receives the oldest of them (0 when none) */
static bp_status derive(bp_store *s, const char *key, int *became_suppressed, size_t *soft_pending,
                        long long *soft_oldest)
{
    bp_fold d;
    char policy[64], spelling[BP_MAX_ADDRESS_BYTES + 1];
    memset(&d, 0, sizeof(d));
    fold_ctx ctx = {fold_policy(s), &d, 0, ""};
    bp_fold_policy_text(&ctx.policy, policy, sizeof(policy));
    state_load load = {policy, &d, 0};
    bp_status st = bp_rows_state_get(s->be, s->h, key, load_state, &load);
    if (st == BP_ERR_NOT_FOUND)
        st = BP_OK;
    if (st != BP_OK)
        goto out;
    if (d.nomem) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    /* Can the state absorb this transaction's rows that sort at or before its key? */
    int full = !load.usable, changed = 0;
    for (size_t i = 0; i < s->n_unfolded && !full; i++) {
        const unfolded *u = &s->unfolded[i];
        if (strcmp(u->address, key) != 0 || (!u->refold && bp_fold_key_after(u->t, u->id, d.last_time, d.last_id)))
            continue; /* another address, or read back below */
        full = u->refold || u->what == BP_FACT_REMOVAL || !d.active ||
               !bp_fold_key_after(u->t, u->id, d.active_time, d.active_id);
    }
    if (full) {
        bp_fold_free(&d);
        d.last_time = d.last_id = LLONG_MIN;
    } else {
        for (size_t i = 0; i < s->n_unfolded; i++) {
            const unfolded *u = &s->unfolded[i];
            if (strcmp(u->address, key) != 0 || bp_fold_key_after(u->t, u->id, d.last_time, d.last_id))
                continue;
            bp_fold_late(&d, u->what, u->t);
            changed = 1;
        }
    }
    d.folded = 0;
    st = bp_rows_ledger_fold(s->be, s->h, key, d.last_time, d.last_id, fold_row, &ctx);
    if (st == BP_OK && d.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK)
        goto out;
    changed |= d.folded > 0;
    const char *domain = domain_of_key(key);
    bp_suppression row = bp_fold_suppression(&d, key, domain != NULL ? domain : "");
    row.address_key = key;
    current_row cur = {d.exists ? &row : NULL, 0, 0, 0};
    st = bp_rows_suppression_get(s->be, s->h, key, note_current, &cur);
    if (st == BP_ERR_NOT_FOUND)
        st = BP_OK;
    if (st == BP_OK && d.exists && !cur.found && full && ctx.first[0] != '\0') {
        row.address = ctx.first; /* a new row: the spelling recorded first, of the whole ledger folded */
    } else if (st == BP_OK && d.exists && !cur.found) { /* folded from a state: ask */
        st = bp_rows_first_spelling(s->be, s->h, key, spelling, sizeof(spelling));
        if (st == BP_OK)
            row.address = spelling;
        else if (st == BP_ERR_NOT_FOUND)
            st = BP_OK;
    }
    if (st != BP_OK)
        goto out;
    if (d.exists && !cur.same)
        st = bp_rows_suppression_put(s->be, s->h, &row);
    else if (!d.exists && cur.found)
        st = bp_rows_suppression_delete(s->be, s->h, key);
    if (st == BP_OK && changed && d.last_time != LLONG_MIN)
        st = save_state(s, key, &d);
    if (st != BP_OK)
        goto out;
    forget_unfolded(s, key);
    if (became_suppressed != NULL)
        *became_suppressed = d.active && !(cur.found && cur.active);
    if (soft_pending != NULL)
        *soft_pending = d.n_soft;
    if (soft_oldest != NULL)
        *soft_oldest = d.n_soft > 0 ? d.soft[0] : 0;
out:
    bp_fold_free(&d);
    return st;
}

/* Before a commit: the addresses with rows this transaction wrote but did not derive (only a
 * caller that commits after a failed write leaves any) lose their fold state, so that their
 * next derivation reads every row. */
static bp_status drop_unfolded_states(bp_store *s)
{
    for (size_t i = 0; i < s->n_unfolded; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(s->unfolded[j].address, s->unfolded[i].address) == 0;
        if (dup)
            continue;
        bp_status st = bp_rows_state_delete(s->be, s->h, s->unfolded[i].address);
        if (st != BP_OK)
            return st;
    }
    return BP_OK;
}

/* ---- recording ------------------------------------------------------------------------- */

bp_status bp_store_seen(bp_store *s, const char *fingerprint, int *state)
{
    return s->be->seen(s->h, fingerprint, state);
}

bp_status bp_store_acct_position(bp_store *s, const char *stream, bp_acct_position_cb cb, void *user)
{
    return bp_rows_position_get(s->be, s->h, stream, cb, user);
}

bp_status bp_store_acct_position_put(bp_store *s, const bp_acct_position *pos)
{
    bp_status st = need_tx(s);
    return st == BP_OK ? bp_rows_position_put(s->be, s->h, pos) : st;
}

/* Note ledger row @p r, written with id @p id, for derive(). */
static bp_status note_row(bp_store *s, const bp_ledger_row *r, long long id)
{
    bp_ledger_row noted = *r;
    noted.id = id;
    return note_unfolded(s, r->address_key, bp_fact_of(&noted).what, r->evidence_time, id, 0);
}

/* Insert a ledger row (its address_key filled in) and note it for derive(). */
static bp_status ledger_write(bp_store *s, const bp_ledger_row *r)
{
    long long id = 0;
    bp_status st = s->be->ledger_insert(s->h, r, &id);
    return st == BP_OK ? note_row(s, r, id) : st;
}

/* ---- two channels, one failure (docs/store.md "Two channels") -----------------------------
 * PowerMTA writes an accounting record for a failed delivery and mails its own DSN for it;
 * with VERP the DSN comes back through pipe.  A new bounce row X and an earlier row Y report
 * the same failure when:
 *   - both are event rows of type bounce of the same address (key), one from an accounting
 *     record and one from a message (BP_UNIT_ACCT_PREFIX), with the same action;
 *   - their statuses agree: the same class (2/4/5: the status's, else the SMTP code's, else
 *     final or not), and the same X.Y.Z unless one side has no detail (no status, or X.0.0);
 *   - neither their envelope ids nor their job ids differ (where both carry one);
 *   - their evidence times lie at most BP_PAIR_WINDOW_SECONDS apart;
 *   - Y is not already one of a pair.
 * Of several such Y, the one with more matching ids, then the nearest in time, then the first.
 * Of the pair, the row that sorts first in (evidence_time, id) counts; the other is marked
 * (paired_with = the first's id) and folds to nothing, so the result does not depend on
 * which channel's report arrived first.  Marking an older row changes what it means to the
 * fold: its address is folded again from its first row.  The same action is required so that
 * a report that reads differently (a forged DSN among them: anyone can mail the bounce
 * domain) never cancels evidence; such reports stay two pieces of evidence. */

static int is_acct(const char *fingerprint)
{
    return fingerprint != NULL && strncmp(fingerprint, BP_UNIT_ACCT_PREFIX, sizeof(BP_UNIT_ACCT_PREFIX) - 1) == 0;
}

/* The status class: '2', '4' or '5'. */
static char status_class(const char *status, const char *smtp_code, int final)
{
    if (status != NULL && (status[0] == '2' || status[0] == '4' || status[0] == '5'))
        return status[0];
    if (smtp_code != NULL && (smtp_code[0] == '2' || smtp_code[0] == '4' || smtp_code[0] == '5'))
        return smtp_code[0];
    return final ? '5' : '4';
}

/* Does @p status say more than its class ("X.0.0" and none do not)? */
static int status_detailed(const char *status)
{
    return status != NULL && status[0] != '\0' && strcmp(status + 1, ".0.0") != 0;
}

/* Both present and different. */
static int differ(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) != 0;
}

/* A report of the other channel that may be the same failure (strings borrowed or copied,
 * as their holder says). */
typedef struct pair_candidate {
    long long id, t;
    int final;
    const char *status, *smtp_code, *envid, *job_id;
} pair_candidate;

/* The best of the candidates seen so far: most ids equal, then the nearest in time, then
 * the lowest id (docs/store.md "Two channels, one failure"). */
typedef struct pair_best {
    int found, score;
    long long id, t, dt;
} pair_best;

/* Weigh candidate @p c for new report @p e at time @p t. */
static void consider(pair_best *b, const bp_event *e, long long t, const pair_candidate *c)
{
    if (status_class(e->status, e->smtp_code, e->final) != status_class(c->status, c->smtp_code, c->final))
        return;
    if (status_detailed(e->status) && status_detailed(c->status) && strcmp(e->status, c->status) != 0)
        return;
    if (differ(e->envid, c->envid) || differ(e->job_id, c->job_id))
        return;
    int score = (e->envid != NULL && c->envid != NULL) + (e->job_id != NULL && c->job_id != NULL);
    long long dt = c->t > t ? c->t - t : t - c->t;
    if (b->found && (score < b->score || (score == b->score && (dt > b->dt || (dt == b->dt && c->id > b->id)))))
        return;
    b->found = 1;
    b->score = score;
    b->id = c->id;
    b->t = c->t;
    b->dt = dt;
}

/* The rows pair_report() reads: the candidates among the key's rows from t - window on, in
 * (evidence_time, id) order, up to t + window, at most BP_MAX_PAIR_CANDIDATES (copies). */
typedef struct pair_scan {
    const char *action;
    int acct; /* the new report's channel */
    long long t_to;
    pair_candidate v[BP_MAX_PAIR_CANDIDATES];
    const char *fingerprint[BP_MAX_PAIR_CANDIDATES];
    size_t n;
    bp_arena *arena;
    int nomem;
} pair_scan;

static const char *scan_copy(pair_scan *p, const char *v)
{
    if (v == NULL)
        return NULL;
    if (p->arena == NULL && (p->arena = bp_arena_new()) == NULL) {
        p->nomem = 1;
        return NULL;
    }
    const char *c = bp_arena_strdup(p->arena, v);
    if (c == NULL)
        p->nomem = 1;
    return c;
}

static int scan_row(void *user, const bp_ledger_row *r)
{
    pair_scan *p = user;
    if (r->evidence_time > p->t_to)
        return 1; /* past the window: nothing after it is a candidate */
    const char *action = bp_action_name(r->event.action);
    if (strcmp(r->kind, BP_LEDGER_EVENT) != 0 || r->event.type != BP_EVENT_BOUNCE || r->paired_with != 0 ||
        r->reported_again != 0 || is_acct(r->event.fingerprint) == p->acct || action == NULL ||
        strcmp(action, p->action) != 0)
        return 0;
    pair_candidate *c = &p->v[p->n];
    c->id = r->id;
    c->t = r->evidence_time;
    c->final = r->event.final;
    c->status = scan_copy(p, r->event.status);
    c->smtp_code = scan_copy(p, r->event.smtp_code);
    c->envid = scan_copy(p, r->event.envid);
    c->job_id = scan_copy(p, r->event.job_id);
    p->fingerprint[p->n] = scan_copy(p, r->event.fingerprint);
    p->n++;
    return p->nomem || p->n == BP_MAX_PAIR_CANDIDATES;
}

/* Bounce row @p id of address key @p key, reported by @p e (as stored, its unit's envelope id
 * included) through the channel of @p fingerprint at @p t: pair it with an earlier report of
 * the same failure through the other channel, if there is one.  The candidates are read with
 * the fold's own query (prepared anyway: derive() runs it next), which takes the address's
 * lock first on PostgreSQL, so that a report of the other channel committed meanwhile is seen.
 * @param marked set to 1 when this row is the one marked (it folds to nothing)
 * @param paired set to 1 when it was paired either way (the failure is already in the ledger:
 *        its signal counts and webhook rows are the other report's) */
static bp_status pair_report(bp_store *s, const bp_event *e, const char *key, const char *fingerprint, long long t,
                             long long id, int *marked, int *paired)
{
    *marked = *paired = 0;
    const char *action = bp_action_name(e->action);
    if (e->type != BP_EVENT_BOUNCE || key == NULL || action == NULL)
        return BP_OK;
    pair_scan p;
    memset(&p, 0, sizeof(p));
    p.action = action;
    p.acct = is_acct(fingerprint);
    p.t_to = t + BP_PAIR_WINDOW_SECONDS;
    bp_status st = bp_rows_ledger_fold(s->be, s->h, key, t - BP_PAIR_WINDOW_SECONDS - 1, LLONG_MAX, scan_row, &p);
    if (st == BP_OK && p.nomem)
        st = BP_ERR_NOMEM;
    pair_best best = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < p.n && st == BP_OK; i++) {
        char envid[BP_MAX_STORED_ENVID_BYTES + 1];
        if (e->envid != NULL && p.v[i].envid == NULL && p.fingerprint[i] != NULL) {
            /* its unit's envelope id, kept once in the processed row */
            st = bp_rows_unit_envid(s->be, s->h, p.fingerprint[i], envid, sizeof(envid));
            if (st == BP_OK)
                p.v[i].envid = envid;
            else if (st == BP_ERR_NOT_FOUND)
                st = BP_OK;
        }
        if (st == BP_OK)
            consider(&best, e, t, &p.v[i]);
    }
    bp_arena_free(p.arena);
    if (st != BP_OK || !best.found)
        return st;
    *paired = 1;
    if (bp_fold_key_after(t, id, best.t, best.id)) { /* the earlier report counts: this one is the second */
        *marked = 1;
        return bp_rows_ledger_pair(s->be, s->h, id, best.id);
    }
    st = bp_rows_ledger_pair(s->be, s->h, best.id, id); /* this one sorts first: the other stops counting */
    return st == BP_OK ? note_unfolded(s, key, BP_FACT_NOTHING, 0, best.id, 1) : st;
}

/* The reports of address key @p key already in the ledger, paired as pair_report() would have
 * paired them had they arrived in ledger (id) order: the identity step's migration (schema 5), for stores
 * written before pairing existed.  Everything of the key is read at once (one address's
 * bounces); the candidates of a row are those pair_report() reads, among the rows before it:
 * of the other channel, the same action, within the window, not yet paired, the first
 * BP_MAX_PAIR_CANDIDATES in (evidence_time, id) order.
 * @param changed set to 1 when a row was marked */
typedef struct history_row {
    long long id, t;
    int acct, taken, final;
    char *action, *status, *smtp_code, *envid, *job_id;
} history_row;

typedef struct history {
    history_row *v;
    size_t n, cap;
    int nomem;
} history;

static char *dup_or_null(history *hs, const char *v)
{
    char *c = v != NULL ? bp_strdup(v) : NULL;
    if (v != NULL && c == NULL)
        hs->nomem = 1;
    return c;
}

static int collect_history(void *user, const bp_ledger_row *r)
{
    history *hs = user;
    if (strcmp(r->kind, BP_LEDGER_EVENT) != 0 || r->event.type != BP_EVENT_BOUNCE ||
        bp_action_name(r->event.action) == NULL)
        return 0;
    history_row *v = bp_grow(hs->v, hs->n, &hs->cap, sizeof(*v), 16);
    if (v == NULL) {
        hs->nomem = 1;
        return 1;
    }
    hs->v = v;
    history_row *h = &hs->v[hs->n++];
    memset(h, 0, sizeof(*h));
    h->id = r->id;
    h->t = r->evidence_time;
    h->taken = r->paired_with != 0 || r->reported_again != 0;
    h->acct = is_acct(r->event.fingerprint);
    h->final = r->event.final;
    h->action = dup_or_null(hs, bp_action_name(r->event.action));
    h->status = dup_or_null(hs, r->event.status);
    h->smtp_code = dup_or_null(hs, r->event.smtp_code);
    h->envid = dup_or_null(hs, r->event.envid); /* ledger_for reads the unit's own too */
    h->job_id = dup_or_null(hs, r->event.job_id);
    return hs->nomem;
}

static int cmp_id(const void *a, const void *b)
{
    const history_row *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* (evidence_time, id) order */
static int cmp_key(const void *a, const void *b)
{
    const history_row *x = *(history_row *const *)a, *y = *(history_row *const *)b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bp_status pair_history(bp_store *s, const char *key, int *changed)
{
    history hs = {NULL, 0, 0, 0};
    history_row **cand = NULL;
    *changed = 0;
    bp_status st = bp_rows_ledger_for(s->be, s->h, key, collect_history, &hs);
    if (st == BP_OK && hs.nomem)
        st = BP_ERR_NOMEM;
    if (st == BP_OK && hs.n > 0 && (cand = bp_malloc(hs.n * sizeof(*cand))) == NULL)
        st = BP_ERR_NOMEM;
    if (st == BP_OK)
        bp_sort(hs.v, hs.n, sizeof(*hs.v), cmp_id);
    for (size_t i = 0; i < hs.n && st == BP_OK; i++) {
        history_row *x = &hs.v[i];
        if (x->taken)
            continue;
        size_t n = 0;
        for (size_t j = 0; j < i; j++) {
            history_row *y = &hs.v[j];
            long long dt = y->t > x->t ? y->t - x->t : x->t - y->t;
            if (!y->taken && y->acct != x->acct && strcmp(y->action, x->action) == 0 && dt <= BP_PAIR_WINDOW_SECONDS)
                cand[n++] = y;
        }
        bp_sort(cand, n, sizeof(*cand), cmp_key);
        bp_event e;
        memset(&e, 0, sizeof(e));
        e.status = x->status;
        e.smtp_code = x->smtp_code;
        e.final = x->final;
        e.envid = x->envid;
        e.job_id = x->job_id;
        pair_best best = {0, 0, 0, 0, 0};
        history_row *y = NULL;
        for (size_t k = 0; k < n && k < BP_MAX_PAIR_CANDIDATES; k++) {
            const pair_candidate c = {cand[k]->id,        cand[k]->t,     cand[k]->final, cand[k]->status,
                                      cand[k]->smtp_code, cand[k]->envid, cand[k]->job_id};
            long long before = best.id;
            consider(&best, &e, x->t, &c);
            if (best.id != before)
                y = cand[k];
        }
        if (y == NULL)
            continue;
        if (bp_fold_key_after(x->t, x->id, y->t, y->id))
            st = bp_rows_ledger_pair(s->be, s->h, x->id, y->id);
        else
            st = bp_rows_ledger_pair(s->be, s->h, y->id, x->id);
        x->taken = y->taken = 1;
        *changed = 1;
    }
    for (size_t i = 0; i < hs.n; i++) {
        free(hs.v[i].action);
        free(hs.v[i].status);
        free(hs.v[i].smtp_code);
        free(hs.v[i].envid);
        free(hs.v[i].job_id);
    }
    free(hs.v);
    free(cand);
    return st;
}

/* Schema 4's migration, through the handle it is migrating (before bp_store_open() has it),
 * for an address whose spellings it merged or whose failures both channels reported: its
 * reports paired (pair_history) and its suppression row and fold state derived again. */
static bp_status migration_rederive(void *ctx, void *h, const char *key)
{
    bp_store *s = ctx;
    void *saved = s->h;
    int changed = 0;
    s->h = h;
    bp_status st = pair_history(s, key, &changed);
    if (st == BP_OK && changed)
        st = note_unfolded(s, key, BP_FACT_NOTHING, 0, 0, 1); /* rows changed meaning: fold it all again */
    if (st == BP_OK)
        st = derive(s, key, NULL, NULL, NULL);
    forget_unfolded(s, key);
    s->h = saved;
    return st;
}

/* ---- what a unit stores (limits.h, "What the store keeps") ------------------------------
 * Every field is cut to its cap; the facts all of a unit's rows share go once into its
 * processed row (bp_unit_facts); rows written after the unit's text passed
 * BP_MAX_UNIT_STORE_BYTES keep only what decides and identifies (see limits.h). */

typedef struct unit_text {
    bp_arena *arena; /* copies of cut fields, made on demand, freed with the unit */
    size_t spent;    /* bytes of text this unit wrote */
    int nomem;
} unit_text;

/* @p v cut to at most @p max bytes, at a UTF-8 character boundary (a copy when cut). */
static const char *cut(unit_text *w, const char *v, size_t max)
{
    return bp_arena_cut(&w->arena, v, max, &w->nomem);
}

static size_t text_len(const char *v)
{
    return v != NULL ? strlen(v) : 0;
}

/* Cut every field of @p e to its cap. */
static void cap_event(unit_text *w, bp_event *e)
{
    if (e->recipient != NULL && strlen(e->recipient) > BP_MAX_ADDRESS_BYTES)
        e->recipient = NULL; /* not an address: kept as evidence, touching no address */
    e->message_id = cut(w, e->message_id, BP_MAX_STORED_ID_BYTES);
    e->original_message_id = cut(w, e->original_message_id, BP_MAX_STORED_ID_BYTES);
    e->reporting_mta = cut(w, e->reporting_mta, BP_MAX_STORED_HOST_BYTES);
    e->remote_mta = cut(w, e->remote_mta, BP_MAX_STORED_HOST_BYTES);
    e->envid = cut(w, e->envid, BP_MAX_STORED_ENVID_BYTES);
    e->source = cut(w, e->source, BP_MAX_STORED_SOURCE_BYTES);
    e->diagnostic = cut(w, e->diagnostic, BP_MAX_DIAGNOSTIC_BYTES);
    e->listed = cut(w, e->listed, BP_MAX_STORED_HOST_BYTES);
    const char **tokens[] = {&e->recipient_from, &e->status,       &e->smtp_code, &e->category, &e->feedback_type,
                             &e->rule,           &e->arrival_date, &e->source_ip, &e->job_id,   &e->blocklist,
                             &e->family,         &e->sending_ip,   &e->vmta,      &e->stream,   &e->receiver};
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        *tokens[i] = cut(w, *tokens[i], BP_MAX_STORED_TOKEN_BYTES);
}

/* The value every one of @p n events has in the field at @p offset, or NULL. */
static const char *shared_value(const bp_event *ev, size_t n, size_t offset)
{
    const char *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = *(const char *const *)((const char *)&ev[i] + offset);
        if (v == NULL || (first != NULL && strcmp(v, first) != 0))
            return NULL;
        if (first == NULL)
            first = v;
    }
    return first;
}

/* The fields of bp_unit_facts, in the event. */
static const size_t fact_offsets[] = {
    offsetof(bp_event, message_id),    offsetof(bp_event, source), offsetof(bp_event, original_message_id),
    offsetof(bp_event, reporting_mta), offsetof(bp_event, envid),  offsetof(bp_event, arrival_date)};

static bp_unit_facts facts_of(const bp_event *ev, size_t n)
{
    const char *v[6];
    for (size_t i = 0; i < 6; i++)
        v[i] = shared_value(ev, n, fact_offsets[i]);
    bp_unit_facts f = {v[0], v[1], v[2], v[3], v[4], v[5]};
    return f;
}

static size_t facts_len(const bp_unit_facts *f)
{
    return text_len(f->message_id) + text_len(f->source) + text_len(f->original_message_id) +
           text_len(f->reporting_mta) + text_len(f->envid) + text_len(f->arrival_date);
}

/* An event row of the unit, for address key @p key: the facts its processed row holds are
 * left out (NULL), and past the unit's text budget so is its free text.  Not noted for
 * derive() yet (bp_store_record() pairs it first).
 * @param id receives the row's id
 * @param kept receives the event as stored (its unit's facts included): what pairing compares */
static bp_status insert_event(bp_store *s, unit_text *w, const bp_unit_facts *facts, const bp_event *e, const char *key,
                              long long t, long long now, const bp_store_unit *unit, long long *id,
                              bp_event *kept_event)
{
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = BP_LEDGER_EVENT;
    r.event = *e;
    bp_event *x = &r.event;
    const char *const kept_once[] = {facts->message_id,    facts->source, facts->original_message_id,
                                     facts->reporting_mta, facts->envid,  facts->arrival_date};
    for (size_t i = 0; i < sizeof(fact_offsets) / sizeof(fact_offsets[0]); i++)
        if (kept_once[i] != NULL)
            *(const char **)((char *)x + fact_offsets[i]) = NULL; /* the message's value */
    x->fingerprint = unit->fingerprint;
    r.mta_category = cut(w, unit->mta_category, BP_MAX_STORED_TOKEN_BYTES);
    r.address_key = key;
    r.domain = domain_of_key(key);
    r.evidence_time = t;
    r.recorded_at = now;
    const char **free_text[] = {&x->diagnostic, &x->remote_mta, &x->reporting_mta,       &x->envid,
                                &x->message_id, &x->source,     &x->original_message_id, &x->arrival_date,
                                &x->source_ip,  &x->job_id};
    size_t kept = 0, len = 0;
    for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++)
        kept += text_len(*free_text[i]);
    len = text_len(x->recipient) + text_len(key) + text_len(r.domain) + text_len(x->recipient_from) +
          text_len(x->status) + text_len(x->smtp_code) + text_len(x->category) + text_len(x->feedback_type) +
          text_len(x->rule) + text_len(x->blocklist) + text_len(x->family) + text_len(r.mta_category) +
          text_len(x->sending_ip) + text_len(x->vmta) + text_len(x->stream) + text_len(x->receiver) +
          text_len(x->listed);
    if (w->spent + len + kept > BP_MAX_UNIT_STORE_BYTES) {
        for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++)
            *free_text[i] = NULL; /* the budget is spent: what decides and identifies only */
        kept = 0;
    }
    w->spent += len + kept;
    *kept_event = *e;
    kept_event->envid = facts->envid != NULL ? facts->envid : x->envid;
    kept_event->job_id = x->job_id;
    return s->be->ledger_insert(s->h, &r, id);
}

/* What bp_store_record() keeps of each row it writes. */
typedef struct unit_row {
    char *key;     /* the recipient's identity (malloc'ed), or NULL */
    long long id;  /* the row's id */
    bp_event kept; /* the event as stored */
    int marked;    /* a second report of a failure: folds to nothing */
    int paired;    /* a report of a failure the other channel reported too (either side) */
} unit_row;

bp_status bp_store_record(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                          bp_record_result *result)
{
    return bp_store_record_with_outbox(s, unit, events, n_events, NULL, 0, result);
}

bp_status bp_store_record_with_outbox(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                                      const bp_store_outbox_want *outbox, size_t n_outbox, bp_record_result *result)
{
    bp_record_result dummy;
    unit_text w = {NULL, 0, 0};
    bp_event *ev = NULL;
    unit_row *rows = NULL;
    size_t n_ev = 0, *index = NULL; /* index: each written event's index in @p events */
    long long *ids = NULL;          /* and its ledger row (for the outbox rows) */
    if (result == NULL)
        result = &dummy;
    memset(result, 0, sizeof(*result));
    bp_status st = need_tx(s);
    if (st != BP_OK)
        return st;
    if (unit->fingerprint == NULL) {
        snprintf(s->error, sizeof(s->error), "a unit of evidence needs a fingerprint");
        return BP_ERR_USAGE;
    }
    int state = BP_SEEN_UNKNOWN;
    st = s->be->seen(s->h, unit->fingerprint, &state);
    if (st != BP_OK)
        return st;
    int recognised = 0;
    for (size_t i = 0; i < n_events; i++)
        recognised |= events[i].type != BP_EVENT_UNRECOGNIZED;
    if (state == BP_SEEN_RECORDED || (state == BP_SEEN_UNRECOGNIZED && !recognised)) {
        result->outcome = BP_RECORD_DUPLICATE;
        return BP_OK;
    }
    long long now = now_seconds();
    long long t = unit->evidence_time > 0 && unit->evidence_time <= now ? unit->evidence_time : now;
    if (state == BP_SEEN_UNRECOGNIZED) {
        result->outcome = BP_RECORD_UPGRADED;
        st = bp_store_outbox_drop_placeholder(s, unit->fingerprint); /* its outbox rows go with it */
        if (st == BP_OK)
            st = bp_rows_drop_placeholder(s->be, s->h, unit->fingerprint);
        if (st != BP_OK)
            return st;
    }
    /* the rows to write, capped: the recognised events, or one placeholder */
    size_t cap = n_events > 0 ? n_events : 1;
    ev = bp_malloc(cap * sizeof(*ev));
    rows = bp_calloc(cap, sizeof(*rows));
    if (n_outbox > 0) { /* no webhook, no cost */
        index = bp_malloc(cap * sizeof(*index));
        ids = bp_calloc(cap, sizeof(*ids));
    }
    if (ev == NULL || rows == NULL || (n_outbox > 0 && (index == NULL || ids == NULL))) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    if (!recognised) {
        memset(&ev[0], 0, sizeof(ev[0]));
        if (n_events > 0)
            ev[0] = events[0];
        ev[0].type = BP_EVENT_UNRECOGNIZED;
        ev[0].action = BP_ACT_NONE; /* evidence only: derive() never acts on it */
        if (ev[0].source == NULL)
            ev[0].source = unit->source;
        if (ev[0].message_id == NULL)
            ev[0].message_id = unit->message_id;
        if (index != NULL)
            index[0] = 0;
        n_ev = 1;
    } else {
        for (size_t i = 0; i < n_events; i++)
            if (events[i].type != BP_EVENT_UNRECOGNIZED) {
                if (index != NULL)
                    index[n_ev] = i;
                ev[n_ev++] = events[i];
            }
    }
    for (size_t i = 0; i < n_ev; i++) {
        cap_event(&w, &ev[i]);
        if (st == BP_OK)
            st = key_of(s, ev[i].recipient, &rows[i].key);
    }
    if (st == BP_OK && w.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK)
        goto out;
    bp_unit_facts facts = facts_of(ev, n_ev);
    w.spent = facts_len(&facts);
    for (size_t i = 0; i < n_ev; i++) {
        st = insert_event(s, &w, &facts, &ev[i], rows[i].key, t, now, unit, &rows[i].id, &rows[i].kept);
        if (st == BP_OK && w.nomem)
            st = BP_ERR_NOMEM;
        if (st != BP_OK)
            goto out;
        result->recorded++;
    }
    st =
        bp_rows_mark(s->be, s->h, unit->fingerprint, &facts, recognised ? BP_SEEN_RECORDED : BP_SEEN_UNRECOGNIZED, now);
    if (st != BP_OK)
        goto out;
    /* a DMARC aggregate report's rows, a failure report's domain: with the unit (dmarc_store.c) */
    for (size_t i = 0; i < n_ev && st == BP_OK; i++)
        st = bp_dmarc_store_event(s, unit->fingerprint, &ev[i], t);
    if (st != BP_OK)
        goto out;
    /* Every row written (so that PostgreSQL locks the unit's addresses together), pair each
     * bounce with an earlier report of the failure through the other channel, then note what
     * each row means to the fold. */
    for (size_t i = 0; recognised && i < n_ev && st == BP_OK; i++)
        st = pair_report(s, &rows[i].kept, rows[i].key, unit->fingerprint, t, rows[i].id, &rows[i].marked,
                         &rows[i].paired);
    /* the signal counts, written with the transaction; a failure the other channel reported
     * already was counted with that report */
    for (size_t i = 0; recognised && i < n_ev && st == BP_OK; i++)
        if (!rows[i].paired)
            st = bp_signal_acc_event(&s->signals, &ev[i], t, +1);
    if (st == BP_OK && n_outbox > 0) {
        /* the webhooks' rows, in this transaction (outbox.c); a failure already sent through
         * the other channel is not sent again */
        size_t n_sent = 0;
        for (size_t i = 0; i < n_ev; i++)
            if (!rows[i].paired) {
                index[n_sent] = index[i];
                ids[n_sent++] = rows[i].id;
            }
        st = bp_store_outbox_write(s, outbox, n_outbox, index, ids, n_sent, now);
    }
    if (st != BP_OK || !recognised)
        goto out;
    for (size_t i = 0; i < n_ev && st == BP_OK; i++) {
        bp_ledger_row r;
        memset(&r, 0, sizeof(r));
        r.kind = BP_LEDGER_EVENT;
        r.event = ev[i];
        r.address_key = rows[i].key;
        r.evidence_time = t;
        r.paired_with = rows[i].marked;
        st = note_row(s, &r, rows[i].id);
    }
    /* Re-derive each address once (a report may name one recipient in several events). */
    for (size_t i = 0; i < n_ev && st == BP_OK; i++) {
        const char *k = rows[i].key;
        int dup = k == NULL;
        for (size_t j = 0; j < i && !dup; j++)
            dup = rows[j].key != NULL && strcmp(rows[j].key, k) == 0;
        if (dup)
            continue;
        int became = 0;
        st = derive(s, k, &became, NULL, NULL);
        result->suppressed += (unsigned)became;
    }
out:
    for (size_t i = 0; rows != NULL && i < n_ev; i++)
        free(rows[i].key);
    free(rows);
    free(ev);
    free(index);
    free(ids);
    bp_arena_free(w.arena);
    return st;
}

bp_status bp_store_record_once(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                               bp_record_result *result)
{
    bp_status st = bp_store_begin(s);
    if (st != BP_OK)
        return st;
    st = bp_store_record(s, unit, events, n_events, result);
    if (st == BP_OK)
        st = bp_store_commit(s);
    else
        bp_store_rollback(s);
    return st;
}

bp_status bp_store_record_delivery(bp_store *s, const char *address, long long when)
{
    char *key = NULL;
    bp_status st = operator_key(s, address, &key);
    if (st != BP_OK)
        return st;
    size_t soft_pending = 0;
    long long soft_oldest = 0;
    long long now = now_seconds();
    if (when <= 0 || when > now)
        when = now;
    st = derive(s, key, NULL, &soft_pending, &soft_oldest);
    if (st != BP_OK || soft_pending == 0 || soft_oldest > when)
        goto out; /* nothing counted that this delivery could reset */
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = BP_LEDGER_DELIVERY;
    r.event.type = BP_EVENT_DELIVERED;
    r.event.recipient = address;
    r.address_key = key;
    r.domain = domain_of_key(key);
    r.evidence_time = when;
    r.recorded_at = now;
    st = ledger_write(s, &r);
    if (st == BP_OK)
        st = derive(s, key, NULL, NULL, NULL);
out:
    free(key);
    return st;
}

/* ---- operator commands ---------------------------------------------------------------- */

bp_status bp_store_lookup(bp_store *s, const char *address, bp_suppression_cb cb, void *user)
{
    char *key = NULL;
    bp_status st = key_of(s, address, &key);
    if (st == BP_OK)
        st = key != NULL ? bp_rows_suppression_get(s->be, s->h, key, cb, user) : BP_ERR_NOT_FOUND;
    free(key);
    return st;
}

bp_status bp_store_ledger_for(bp_store *s, const char *address, bp_ledger_cb cb, void *user)
{
    char *key = NULL;
    bp_status st = key_of(s, address, &key);
    if (st == BP_OK && key != NULL)
        st = bp_rows_ledger_for(s->be, s->h, key, cb, user);
    free(key);
    return st;
}

/* An operator's row about @p address (the spelling typed), key @p key. */
static bp_status operator_row(bp_store *s, const char *kind, const char *address, const char *key, const char *note,
                              long long t)
{
    char notebuf[BP_MAX_STORED_NOTE_BYTES + 1];
    if (note != NULL && strlen(note) > BP_MAX_STORED_NOTE_BYTES) {
        size_t n = bp_utf8_cut(note, strlen(note), BP_MAX_STORED_NOTE_BYTES); /* as cut() */
        memcpy(notebuf, note, n);
        notebuf[n] = '\0';
        note = notebuf;
    }
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.event.recipient = address;
    r.address_key = key;
    r.domain = domain_of_key(key);
    r.evidence_time = t;
    r.recorded_at = now_seconds();
    r.note = note;
    return ledger_write(s, &r);
}

bp_status bp_store_remove(bp_store *s, const char *address, const char *reason, long long now)
{
    char *key = NULL;
    bp_status st = operator_key(s, address, &key);
    if (st != BP_OK)
        return st;
    current_row cur = {NULL, 0, 0, 0};
    st = bp_rows_suppression_get(s->be, s->h, key, note_current, &cur);
    if (st == BP_OK && !cur.active)
        st = BP_ERR_NOT_FOUND;
    if (st == BP_OK)
        st = operator_row(s, BP_LEDGER_REMOVAL, address, key, reason, now > 0 ? now : now_seconds());
    if (st == BP_OK)
        st = derive(s, key, NULL, NULL, NULL);
    free(key);
    return st;
}

typedef struct lift_info {
    int found, active;
    long long lifted_at;
} lift_info;

static int note_lift(void *user, const bp_suppression *r)
{
    lift_info *l = user;
    l->found = 1;
    l->active = !r->lifted;
    l->lifted_at = r->lifted ? r->lifted_at : 0;
    return 0;
}

bp_status bp_store_add(bp_store *s, const char *address, const char *reason, const char *kind, long long when,
                       int force, int *changed)
{
    char *key = NULL;
    *changed = 0;
    bp_status st = operator_key(s, address, &key);
    if (st != BP_OK)
        return st;
    lift_info cur = {0, 0, 0};
    st = bp_rows_suppression_get(s->be, s->h, key, note_lift, &cur);
    if (st == BP_ERR_NOT_FOUND)
        st = BP_OK;
    if (st != BP_OK || cur.active)
        goto out;
    long long now = now_seconds();
    if (when <= 0 || when > now)
        when = now;
    if (cur.found && !cur.active) {
        if (!force)
            goto out;              /* an operator removed it: an old list does not bring it back */
        if (when <= cur.lifted_at) /* forced: new evidence, dated now and after the removal */
            when = now > cur.lifted_at ? now : cur.lifted_at + 1;
    }
    const char *ledger_kind = strcmp(kind, BP_KIND_MANUAL) == 0 ? BP_LEDGER_MANUAL : BP_LEDGER_IMPORT;
    st = operator_row(s, ledger_kind, address, key, reason, when);
    int became = 0;
    if (st == BP_OK)
        st = derive(s, key, &became, NULL, NULL);
    if (st == BP_OK)
        *changed = became;
out:
    free(key);
    return st;
}

bp_status bp_store_export(bp_store *s, const bp_store_filter *filter, bp_suppression_cb cb, void *user)
{
    return bp_rows_suppression_list(s->be, s->h, filter, cb, user);
}

const char *bp_stats_dim_name(bp_stats_dim dim)
{
    static const char *const names[BP_STATS_DIM_LAST] = {"type", "category",   "action", "domain",
                                                         "day",  "suppressed", "lifted"};
    return dim < BP_STATS_DIM_LAST ? names[dim] : "unknown";
}

bp_status bp_store_stats(bp_store *s, const bp_store_filter *filter, bp_stats_cb cb, void *user)
{
    return bp_rows_stats(s->be, s->h, filter, cb, user);
}

/* Rows per round trip when the whole ledger is read: bounded memory however large it is. */
#define LEDGER_PAGE_ROWS 5000

typedef struct page_walk {
    bp_ledger_cb cb;
    void *user;
    long long last_id;
    long long n;
    int stopped;
} page_walk;

static int walk_row(void *user, const bp_ledger_row *r)
{
    page_walk *w = user;
    w->last_id = r->id;
    w->n++;
    w->stopped = w->cb(w->user, r) != 0;
    return w->stopped;
}

bp_status bp_store_ledger_events(bp_store *s, bp_ledger_cb cb, void *user)
{
    page_walk w = {cb, user, 0, 0, 0};
    for (;;) {
        w.n = 0;
        bp_status st = bp_rows_ledger_page(s->be, s->h, w.last_id, LEDGER_PAGE_ROWS, 1, walk_row, &w);
        if (st != BP_OK || w.stopped || w.n < LEDGER_PAGE_ROWS)
            return st;
    }
}

bp_status bp_store_ledger_page(bp_store *s, long long after_id, long long limit, bp_ledger_cb cb, void *user)
{
    return bp_rows_ledger_page(s->be, s->h, after_id, limit > 0 ? limit : LEDGER_PAGE_ROWS, 0, cb, user);
}

bp_status bp_store_ledger_units(bp_store *s, long long after_id, long long last_id, bp_ledger_cb cb, void *user)
{
    return bp_rows_ledger_units(s->be, s->h, after_id, last_id, cb, user);
}

bp_status bp_store_reclassify(bp_store *s, long long id, const char *recipient, const char *category, const char *rule,
                              bp_action action, const char *blocklist)
{
    char *key = NULL;
    bp_status st = need_tx(s);
    if (st == BP_OK)
        st = key_of(s, recipient, &key);
    if (st == BP_OK) /* a count moves with its list */
        st = bp_signal_reclassified(s, &s->signals, id, blocklist);
    if (st == BP_OK)
        st = bp_rows_ledger_reclassify(s->be, s->h, id, category, rule, action, blocklist);
    if (st == BP_OK) /* a pair whose reports no longer mean the same is two pieces of evidence */
        st = bp_rows_ledger_unpair(s->be, s->h, id);
    if (st == BP_OK && key != NULL)
        st = note_unfolded(s, key, BP_FACT_NOTHING, 0, id, 1); /* an old row changed: fold it all again */
    if (st == BP_OK && key != NULL)
        st = derive(s, key, NULL, NULL, NULL);
    free(key);
    return st;
}
