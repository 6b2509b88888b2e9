/*
 * store.c - the semantics of the store, above its backends (see store.h for the rules).
 *
 * bp_store_open()        picks the backend: "postgresql://" / "postgres://" locations are
 *                        reserved for the PostgreSQL backend (BP_ERR_UNSUPPORTED until it is
 *                        built); anything else is an SQLite file path.
 * bp_store_record()      idempotent recording of one unit; re-derives every address it touched.
 * derive()               the one definition of an address's suppression row: a fold over its
 *                        ledger rows in evidence-time order.  Recording, removal, import,
 *                        deliveries and rescore all end in it, so their results agree whatever
 *                        order the evidence came in.  It goes on from the address's saved fold
 *                        state (table derive_state) when that gives exactly the same result,
 *                        so that recording a row does not read the address's whole history
 *                        (see "the fold state kept per address" below).
 * bp_store_sql_run()     the statements of the store's extensions (the signal tables of
 *                        signals.c); every event row bp_store_record() writes is counted there
 *                        (bp_signal_acc_event()), and the counts are written at the commit.
 *
 * Ownership: a bp_store owns the backend handle, the signal counts of its transaction and the
 * list of rows its transaction has not derived yet.  derive() copies what it needs out of the backend's rows (they live
 * only during the callback) into memory it frees before returning.
 */
#include "bouncepipe/store.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BP_HAVE_POSTGRES
#include <dlfcn.h>
#include <unistd.h>
#endif
#include <time.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "fold.h"
#include "signals_sql.h"
#include "sql.h"
#include "store_backend.h"

struct unfolded;

struct bp_store {
    const bp_store_backend *be;
    void *h;
    bp_store_options opts;
    int in_tx;
    struct unfolded *unfolded; /* rows of this transaction derive() has not folded yet */
    size_t n_unfolded, cap_unfolded;
    bp_signal_acc *signals; /* signal counts of this transaction, written at its commit (signals.c) */
    char error[256];
};

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
    char exe_dir[4096], path[4200];
    const char *candidates[3];
    size_t n = 0;
    if (loaded != NULL)
        return loaded;
    const char *env = getenv("BOUNCEPIPE_PG_MODULE");
    if (env != NULL && *env != '\0')
        candidates[n++] = env;
    ssize_t len = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
    if (len > 0) {
        exe_dir[len] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/bouncepipe-postgres.so", exe_dir);
            candidates[n++] = path;
        }
    }
    candidates[n++] = BP_PG_MODULE_DIR "/bouncepipe-postgres.so";
    const char *why = "not found";
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            why = dlerror();
            continue;
        }
        const bp_store_backend *be = dlsym(h, "bp_store_backend_postgres");
        if (be != NULL) {
            loaded = be;
            return be;
        }
        why = "the module has no bp_store_backend_postgres";
        dlclose(h);
    }
    if (error != NULL) {
        char msg[600];
        snprintf(msg, sizeof(msg), "cannot load the PostgreSQL backend module: %s", why != NULL ? why : "unknown");
        *error = strdup(msg);
    }
    return NULL;
}
#endif

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
            *error = strdup("the PostgreSQL backend is not built into this program");
        return BP_ERR_UNSUPPORTED;
    }
#endif
    const bp_store_backend *be = &bp_store_backend_sqlite;
#ifdef BP_HAVE_POSTGRES
    if (is_postgres(location) && (be = postgres_backend(error)) == NULL)
        return BP_ERR_UNSUPPORTED; /* an installation problem: pipe mode still answers 75 */
#endif
    bp_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return BP_ERR_NOMEM;
    s->be = be;
    s->opts = *opts;
    if (s->opts.soft_count == 0)
        s->opts.soft_count = 1;
    bp_status st = s->be->open(location, &s->opts, &s->h, error);
    if (st != BP_OK) {
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
    return s->be->last_error(s->h);
}

int bp_store_schema_version(const bp_store *s)
{
    return s->be->schema_version(s->h);
}

bp_status bp_store_begin(bp_store *s)
{
    s->error[0] = '\0';
    forget_unfolded(s, NULL);
    bp_signal_acc_reset(s->signals);
    bp_status st = s->be->begin(s->h);
    if (st == BP_OK)
        s->in_tx = 1;
    return st;
}

static bp_status drop_unfolded_states(bp_store *s);

bp_status bp_store_commit(bp_store *s)
{
    bp_status st = drop_unfolded_states(s);
    if (st == BP_OK) /* the transaction's signal counts, in it (signals.c) */
        st = bp_signal_acc_flush(s, s->signals);
    if (st == BP_OK)
        st = s->be->commit(s->h);
    else
        s->be->rollback(s->h);
    forget_unfolded(s, NULL);
    bp_signal_acc_reset(s->signals);
    s->in_tx = 0;
    return st;
}

void bp_store_rollback(bp_store *s)
{
    s->be->rollback(s->h);
    forget_unfolded(s, NULL);
    bp_signal_acc_reset(s->signals);
    s->in_tx = 0;
}

bp_status bp_store_sql_run(bp_store *s, const bp_sql_stmt *stmt, const bp_sql_value *v, size_t n, bp_sql_row_fn each,
                           void *user, long long *changes)
{
    return s->be->run(s->h, stmt, v, n, each, user, changes);
}

int bp_store_sql_in_tx(const bp_store *s)
{
    return s->in_tx;
}

bp_signal_acc **bp_store_signal_acc(bp_store *s)
{
    return &s->signals;
}

static bp_status need_tx(bp_store *s)
{
    if (s->in_tx)
        return BP_OK;
    snprintf(s->error, sizeof(s->error), "write outside a transaction");
    return BP_ERR_USAGE;
}

/* An operator's or a delivery's address: no longer than an address can be (limits.h). */
static bp_status check_address(bp_store *s, const char *address)
{
    if (address != NULL && strlen(address) <= BP_MAX_ADDRESS_BYTES)
        return BP_OK;
    snprintf(s->error, sizeof(s->error), "not an address (empty, or longer than %u bytes)", BP_MAX_ADDRESS_BYTES);
    return BP_ERR_USAGE;
}

static long long now_seconds(void)
{
    return (long long)time(NULL);
}

/* Domain of an address, lower-cased into @p buf; NULL when there is none. */
static const char *domain_of(const char *address, char *buf, size_t size)
{
    const char *at = address != NULL ? strrchr(address, '@') : NULL;
    if (at == NULL || at[1] == '\0')
        return NULL;
    size_t i = 0;
    for (const char *p = at + 1; *p != '\0' && i + 1 < size; p++)
        buf[i++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
    buf[i] = '\0';
    return buf;
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
    bp_status bs = s->be->state_put(s->h, &st);
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
        unfolded *v = realloc(s->unfolded, cap * sizeof(*v));
        if (v == NULL)
            return BP_ERR_NOMEM;
        s->unfolded = v;
        s->cap_unfolded = cap;
    }
    unfolded *u = &s->unfolded[s->n_unfolded];
    if ((u->address = strdup(address)) == NULL)
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
} fold_ctx;

static int fold_row(void *user, const bp_ledger_row *r)
{
    fold_ctx *c = user;
    return bp_fold_row(&c->policy, c->d, r);
}

/* Re-derive the suppression row of @p address from its ledger rows: from its fold state and
 * the rows after it when that is exact, else from its first row (see above).
 * @param became_suppressed if not NULL, set to 1 when it was not suppressed and now is
 * @param soft_pending if not NULL, receives the number of soft events counted at the end
 * @param soft_oldest if not NULL, receives the oldest of them (0 when none) */
static bp_status derive(bp_store *s, const char *address, int *became_suppressed, size_t *soft_pending,
                        long long *soft_oldest)
{
    bp_fold d;
    char policy[64], dombuf[320];
    memset(&d, 0, sizeof(d));
    fold_ctx ctx = {fold_policy(s), &d};
    bp_fold_policy_text(&ctx.policy, policy, sizeof(policy));
    state_load load = {policy, &d, 0};
    bp_status st = s->be->state_get(s->h, address, load_state, &load);
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
        if (strcmp(u->address, address) != 0 || (!u->refold && bp_fold_key_after(u->t, u->id, d.last_time, d.last_id)))
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
            if (strcmp(u->address, address) != 0 || bp_fold_key_after(u->t, u->id, d.last_time, d.last_id))
                continue;
            bp_fold_late(&d, u->what, u->t);
            changed = 1;
        }
    }
    d.folded = 0;
    st = s->be->ledger_fold(s->h, address, d.last_time, d.last_id, fold_row, &ctx);
    if (st == BP_OK && d.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK)
        goto out;
    changed |= d.folded > 0;
    const char *domain = domain_of(address, dombuf, sizeof(dombuf));
    bp_suppression row = bp_fold_suppression(&d, address, domain != NULL ? domain : "");
    current_row cur = {d.exists ? &row : NULL, 0, 0, 0};
    st = s->be->suppression_get(s->h, address, note_current, &cur);
    if (st == BP_ERR_NOT_FOUND)
        st = BP_OK;
    if (st != BP_OK)
        goto out;
    if (d.exists && !cur.same)
        st = s->be->suppression_put(s->h, &row);
    else if (!d.exists && cur.found)
        st = s->be->suppression_delete(s->h, address);
    if (st == BP_OK && changed && d.last_time != LLONG_MIN)
        st = save_state(s, address, &d);
    if (st != BP_OK)
        goto out;
    forget_unfolded(s, address);
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
        bp_status st = s->be->state_delete(s->h, s->unfolded[i].address);
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

/* Insert a ledger row and note it for derive(). */
static bp_status ledger_write(bp_store *s, const bp_ledger_row *r)
{
    long long id = 0;
    bp_status st = s->be->ledger_insert(s->h, r, &id);
    if (st != BP_OK)
        return st;
    bp_ledger_row noted = *r;
    noted.id = id;
    return note_unfolded(s, r->event.recipient, bp_fact_of(&noted).what, r->evidence_time, id, 0);
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
    if (v == NULL || strlen(v) <= max)
        return v;
    size_t n = max;
    while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
        n--; /* v[n] continues a character: keep none of it */
    if (w->arena == NULL && (w->arena = bp_arena_new()) == NULL) {
        w->nomem = 1;
        return NULL;
    }
    const char *c = bp_arena_strndup(w->arena, v, n);
    if (c == NULL)
        w->nomem = 1;
    return c;
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

/* An event row of the unit: the facts its processed row holds are left out (NULL), and
 * past the unit's text budget so is its free text. */
static bp_status insert_event(bp_store *s, unit_text *w, const bp_unit_facts *facts, const bp_event *e, long long t,
                              long long now, const bp_store_unit *unit)
{
    char dombuf[320];
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
    r.domain = domain_of(x->recipient, dombuf, sizeof(dombuf));
    r.evidence_time = t;
    r.recorded_at = now;
    const char **free_text[] = {&x->diagnostic, &x->remote_mta, &x->reporting_mta,       &x->envid,
                                &x->message_id, &x->source,     &x->original_message_id, &x->arrival_date,
                                &x->source_ip,  &x->job_id};
    size_t kept = 0, len = 0;
    for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++)
        kept += text_len(*free_text[i]);
    len = text_len(x->recipient) + text_len(r.domain) + text_len(x->recipient_from) + text_len(x->status) +
          text_len(x->smtp_code) + text_len(x->category) + text_len(x->feedback_type) + text_len(x->rule) +
          text_len(x->blocklist) + text_len(x->family) + text_len(r.mta_category) + text_len(x->sending_ip) +
          text_len(x->vmta) + text_len(x->stream) + text_len(x->receiver) + text_len(x->listed);
    if (w->spent + len + kept > BP_MAX_UNIT_STORE_BYTES) {
        for (size_t i = 0; i < sizeof(free_text) / sizeof(free_text[0]); i++)
            *free_text[i] = NULL; /* the budget is spent: what decides and identifies only */
        kept = 0;
    }
    w->spent += len + kept;
    return ledger_write(s, &r);
}

bp_status bp_store_record(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                          bp_record_result *result)
{
    bp_record_result dummy;
    unit_text w = {NULL, 0, 0};
    bp_event *ev = NULL;
    size_t n_ev = 0;
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
        st = s->be->drop_placeholder(s->h, unit->fingerprint);
        if (st != BP_OK)
            return st;
    }
    /* the rows to write, capped: the recognised events, or one placeholder */
    ev = malloc((n_events > 0 ? n_events : 1) * sizeof(*ev));
    if (ev == NULL) {
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
        n_ev = 1;
    } else {
        for (size_t i = 0; i < n_events; i++)
            if (events[i].type != BP_EVENT_UNRECOGNIZED)
                ev[n_ev++] = events[i];
    }
    for (size_t i = 0; i < n_ev; i++)
        cap_event(&w, &ev[i]);
    if (w.nomem) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    bp_unit_facts facts = facts_of(ev, n_ev);
    w.spent = facts_len(&facts);
    for (size_t i = 0; i < n_ev; i++) {
        st = insert_event(s, &w, &facts, &ev[i], t, now, unit);
        if (st == BP_OK && w.nomem)
            st = BP_ERR_NOMEM;
        if (st == BP_OK && recognised) /* its signal counts, written with the transaction */
            st = bp_signal_acc_event(&s->signals, &ev[i], t, +1);
        if (st != BP_OK)
            goto out;
        result->recorded++;
    }
    st = s->be->mark(s->h, unit->fingerprint, &facts, recognised ? BP_SEEN_RECORDED : BP_SEEN_UNRECOGNIZED, now);
    if (st != BP_OK || !recognised)
        goto out;
    /* Re-derive each address once (a report may name one recipient in several events). */
    for (size_t i = 0; i < n_ev; i++) {
        const char *a = ev[i].recipient;
        if (a == NULL)
            continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = ev[j].recipient != NULL && strcmp(ev[j].recipient, a) == 0;
        if (dup)
            continue;
        int became = 0;
        st = derive(s, a, &became, NULL, NULL);
        if (st != BP_OK)
            goto out;
        result->suppressed += (unsigned)became;
    }
out:
    free(ev);
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
    bp_status st = need_tx(s);
    if (st == BP_OK)
        st = check_address(s, address);
    if (st != BP_OK)
        return st;
    size_t soft_pending = 0;
    long long soft_oldest = 0;
    long long now = now_seconds();
    if (when <= 0 || when > now)
        when = now;
    st = derive(s, address, NULL, &soft_pending, &soft_oldest);
    if (st != BP_OK || soft_pending == 0 || soft_oldest > when)
        return st; /* nothing counted that this delivery could reset */
    char dombuf[320];
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = BP_LEDGER_DELIVERY;
    r.event.type = BP_EVENT_DELIVERED;
    r.event.recipient = address;
    r.domain = domain_of(address, dombuf, sizeof(dombuf));
    r.evidence_time = when;
    r.recorded_at = now;
    st = ledger_write(s, &r);
    return st == BP_OK ? derive(s, address, NULL, NULL, NULL) : st;
}

/* ---- operator commands ---------------------------------------------------------------- */

bp_status bp_store_lookup(bp_store *s, const char *address, bp_suppression_cb cb, void *user)
{
    return s->be->suppression_get(s->h, address, cb, user);
}

bp_status bp_store_ledger_for(bp_store *s, const char *address, bp_ledger_cb cb, void *user)
{
    return s->be->ledger_for(s->h, address, cb, user);
}

static bp_status operator_row(bp_store *s, const char *kind, const char *address, const char *note, long long t)
{
    char dombuf[320], notebuf[BP_MAX_STORED_NOTE_BYTES + 1];
    if (note != NULL && strlen(note) > BP_MAX_STORED_NOTE_BYTES) {
        size_t n = BP_MAX_STORED_NOTE_BYTES;
        while (n > 0 && ((unsigned char)note[n] & 0xc0) == 0x80)
            n--; /* at a character boundary, as cut() */
        memcpy(notebuf, note, n);
        notebuf[n] = '\0';
        note = notebuf;
    }
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.event.recipient = address;
    r.domain = domain_of(address, dombuf, sizeof(dombuf));
    r.evidence_time = t;
    r.recorded_at = now_seconds();
    r.note = note;
    return ledger_write(s, &r);
}

bp_status bp_store_remove(bp_store *s, const char *address, const char *reason, long long now)
{
    bp_status st = need_tx(s);
    if (st == BP_OK)
        st = check_address(s, address);
    if (st != BP_OK)
        return st;
    current_row cur = {NULL, 0, 0, 0};
    st = s->be->suppression_get(s->h, address, note_current, &cur);
    if (st != BP_OK)
        return st;
    if (!cur.active)
        return BP_ERR_NOT_FOUND;
    st = operator_row(s, BP_LEDGER_REMOVAL, address, reason, now > 0 ? now : now_seconds());
    return st == BP_OK ? derive(s, address, NULL, NULL, NULL) : st;
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
    *changed = 0;
    bp_status st = need_tx(s);
    if (st == BP_OK)
        st = check_address(s, address);
    if (st != BP_OK)
        return st;
    lift_info cur = {0, 0, 0};
    st = s->be->suppression_get(s->h, address, note_lift, &cur);
    if (st != BP_OK && st != BP_ERR_NOT_FOUND)
        return st;
    if (cur.active)
        return BP_OK;
    long long now = now_seconds();
    if (when <= 0 || when > now)
        when = now;
    if (cur.found && !cur.active) {
        if (!force)
            return BP_OK;          /* an operator removed it: an old list does not bring it back */
        if (when <= cur.lifted_at) /* forced: new evidence, dated now and after the removal */
            when = now > cur.lifted_at ? now : cur.lifted_at + 1;
    }
    const char *ledger_kind = strcmp(kind, BP_KIND_MANUAL) == 0 ? BP_LEDGER_MANUAL : BP_LEDGER_IMPORT;
    st = operator_row(s, ledger_kind, address, reason, when);
    int became = 0;
    if (st == BP_OK)
        st = derive(s, address, &became, NULL, NULL);
    if (st == BP_OK)
        *changed = became;
    return st;
}

bp_status bp_store_export(bp_store *s, const bp_store_filter *filter, bp_suppression_cb cb, void *user)
{
    bp_store_filter none;
    if (filter == NULL) {
        memset(&none, 0, sizeof(none));
        filter = &none;
    }
    return s->be->suppression_list(s->h, filter, cb, user);
}

const char *bp_stats_dim_name(bp_stats_dim dim)
{
    static const char *const names[BP_STATS_DIM_LAST] = {"type", "category",   "action", "domain",
                                                         "day",  "suppressed", "lifted"};
    return dim < BP_STATS_DIM_LAST ? names[dim] : "unknown";
}

bp_status bp_store_stats(bp_store *s, const bp_store_filter *filter, bp_stats_cb cb, void *user)
{
    bp_store_filter none;
    if (filter == NULL) {
        memset(&none, 0, sizeof(none));
        filter = &none;
    }
    return s->be->stats(s->h, filter, cb, user);
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
        bp_status st = s->be->ledger_page(s->h, w.last_id, LEDGER_PAGE_ROWS, 1, walk_row, &w);
        if (st != BP_OK || w.stopped || w.n < LEDGER_PAGE_ROWS)
            return st;
    }
}

bp_status bp_store_ledger_page(bp_store *s, long long after_id, long long limit, bp_ledger_cb cb, void *user)
{
    return s->be->ledger_page(s->h, after_id, limit > 0 ? limit : LEDGER_PAGE_ROWS, 0, cb, user);
}

bp_status bp_store_ledger_units(bp_store *s, long long after_id, long long last_id, bp_ledger_cb cb, void *user)
{
    return s->be->ledger_units(s->h, after_id, last_id, cb, user);
}

bp_status bp_store_reclassify(bp_store *s, long long id, const char *recipient, const char *category, const char *rule,
                              bp_action action, const char *blocklist)
{
    bp_status st = need_tx(s);
    if (st != BP_OK)
        return st;
    st = bp_signal_reclassified(s, &s->signals, id, blocklist); /* a count moves with its list */
    if (st == BP_OK)
        st = s->be->ledger_reclassify(s->h, id, category, rule, action, blocklist);
    if (st == BP_OK && recipient != NULL)
        st = note_unfolded(s, recipient, BP_FACT_NOTHING, 0, id, 1); /* an old row changed: fold it all again */
    if (st == BP_OK && recipient != NULL)
        st = derive(s, recipient, NULL, NULL, NULL);
    return st;
}
