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
 *                        order the evidence came in.
 *
 * Ownership: a bp_store owns the backend handle.  derive() copies what it needs out of the
 * backend's rows (they live only during the callback) into memory it frees before returning.
 */
#include "bouncepipe/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef BP_HAVE_POSTGRES
#include <dlfcn.h>
#include <unistd.h>
#endif
#include <time.h>

#include "store_backend.h"

#define SECONDS_PER_DAY 86400LL

struct bp_store {
    const bp_store_backend *be;
    void *h;
    bp_store_options opts;
    int in_tx;
    char error[256];
};

void bp_store_options_default(bp_store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->busy_timeout_ms = 10000;
    o->soft_count = 5;
    o->soft_days = 3;
    o->soft_window = 30;
}

static int is_postgres(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
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
    bp_status st = s->be->begin(s->h);
    if (st == BP_OK)
        s->in_tx = 1;
    return st;
}

bp_status bp_store_commit(bp_store *s)
{
    bp_status st = s->be->commit(s->h);
    s->in_tx = 0;
    return st;
}

void bp_store_rollback(bp_store *s)
{
    s->be->rollback(s->h);
    s->in_tx = 0;
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

/* ---- derivation ------------------------------------------------------------------------ */

/* What derive() needs of one ledger row. */
typedef struct fact {
    enum { F_SUPPRESS, F_SOFT, F_RESET, F_REMOVAL, F_NOTHING } what;
    const char *kind; /* BP_KIND_* for F_SUPPRESS (static) */
    char *reason;     /* malloc'ed */
    long long t;
} fact;

typedef struct facts {
    fact *v;
    size_t n, cap;
    int nomem;
} facts;

static int collect_fact(void *user, const bp_ledger_row *r)
{
    facts *fs = user;
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 16;
        fact *v = realloc(fs->v, cap * sizeof(*v));
        if (v == NULL) {
            fs->nomem = 1;
            return 1;
        }
        fs->v = v;
        fs->cap = cap;
    }
    fact f = {F_NOTHING, NULL, NULL, r->evidence_time};
    const char *reason = NULL;
    if (strcmp(r->kind, BP_LEDGER_REMOVAL) == 0) {
        f.what = F_REMOVAL;
        reason = r->note;
    } else if (strcmp(r->kind, BP_LEDGER_DELIVERY) == 0) {
        f.what = F_RESET;
    } else if (strcmp(r->kind, BP_LEDGER_IMPORT) == 0 || strcmp(r->kind, BP_LEDGER_MANUAL) == 0) {
        f.what = F_SUPPRESS;
        f.kind = strcmp(r->kind, BP_LEDGER_IMPORT) == 0 ? BP_KIND_IMPORT : BP_KIND_MANUAL;
        reason = r->note != NULL ? r->note : f.kind;
    } else if (r->event.type == BP_EVENT_DELIVERED) {
        f.what = F_RESET;
    } else if (r->event.action == BP_ACT_SUPPRESS) {
        f.what = F_SUPPRESS;
        f.kind = r->event.type == BP_EVENT_COMPLAINT ? BP_KIND_COMPLAINT : BP_KIND_BOUNCE;
        reason = r->event.type == BP_EVENT_COMPLAINT ? r->event.feedback_type : r->event.category;
        if (reason == NULL)
            reason = r->event.type == BP_EVENT_COMPLAINT ? "complaint" : "other";
    } else if (r->event.action == BP_ACT_SOFT) {
        f.what = F_SOFT;
        reason = r->event.category != NULL ? r->event.category : "other";
    }
    if (reason != NULL && (f.reason = strdup(reason)) == NULL) {
        fs->nomem = 1;
        return 1;
    }
    fs->v[fs->n++] = f;
    return 0;
}

static void facts_free(facts *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        free(fs->v[i].reason);
    free(fs->v);
}

/* The derived state of one address. */
typedef struct derived {
    int exists; /* ever suppressed (a row should exist) */
    int active;
    const char *reason; /* points into facts */
    const char *kind;
    long long first, last, count;
    int lifted;
    const char *lift_reason;
    long long lifted_at;
    size_t soft_pending; /* soft events counted at the end (not yet reset) */
    long long soft_oldest;
} derived;

static int distinct_days(const long long *t, size_t n)
{
    int days = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = t[j] / SECONDS_PER_DAY == t[i] / SECONDS_PER_DAY;
        days += !seen;
    }
    return days;
}

static void suppress(derived *d, const fact *f, const char *kind)
{
    if (!d->active) {
        d->active = 1;
        if (!d->exists) {
            d->exists = 1;
            d->first = f->t;
        }
        d->lifted = 0;
        d->reason = f->reason;
        d->kind = kind;
    }
    d->count++;
    if (f->t > d->last)
        d->last = f->t;
}

/* Fold the facts (in evidence-time order) into @p d. */
static bp_status fold(const bp_store_options *o, const facts *fs, derived *d)
{
    long long *soft = NULL; /* times of the soft events counted now, oldest first */
    size_t n_soft = 0;
    memset(d, 0, sizeof(*d));
    if (fs->n > 0 && (soft = malloc(fs->n * sizeof(*soft))) == NULL)
        return BP_ERR_NOMEM;
    for (size_t i = 0; i < fs->n; i++) {
        const fact *f = &fs->v[i];
        switch (f->what) {
        case F_NOTHING: break;
        case F_RESET: n_soft = 0; break;
        case F_REMOVAL:
            if (d->exists) {
                d->active = 0;
                d->lifted = 1;
                d->lift_reason = f->reason;
                d->lifted_at = f->t;
            }
            n_soft = 0;
            break;
        case F_SUPPRESS:
            if (d->lifted && f->t <= d->lifted_at)
                break; /* not newer than the removal: old evidence, already judged */
            suppress(d, f, f->kind);
            n_soft = 0;
            break;
        case F_SOFT: {
            if (d->active || (d->lifted && f->t <= d->lifted_at))
                break;
            long long window_start = f->t - (long long)o->soft_window * SECONDS_PER_DAY;
            size_t keep = 0;
            for (size_t j = 0; j < n_soft; j++)
                if (soft[j] > window_start)
                    soft[keep++] = soft[j];
            n_soft = keep;
            soft[n_soft++] = f->t;
            if (n_soft >= o->soft_count && distinct_days(soft, n_soft) >= (int)o->soft_days) {
                suppress(d, f, BP_KIND_SOFT_THRESHOLD);
                n_soft = 0;
            }
            break;
        }
        }
    }
    d->soft_pending = n_soft;
    d->soft_oldest = n_soft > 0 ? soft[0] : 0;
    free(soft);
    return BP_OK;
}

typedef struct current_row {
    int found;
    int active;
} current_row;

static int note_current(void *user, const bp_suppression *r)
{
    current_row *c = user;
    c->found = 1;
    c->active = !r->lifted;
    return 0;
}

/* Re-derive the suppression row of @p address from its ledger rows.
 * @param became_suppressed if not NULL, set to 1 when it was not suppressed and now is */
static bp_status derive(bp_store *s, const char *address, int *became_suppressed, derived *out_pending)
{
    facts fs = {0};
    derived d;
    current_row cur = {0, 0};
    char dombuf[320];
    bp_status st = s->be->ledger_for(s->h, address, collect_fact, &fs);
    if (st == BP_OK && fs.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK)
        goto out;
    st = fold(&s->opts, &fs, &d);
    if (st != BP_OK)
        goto out;
    st = s->be->suppression_get(s->h, address, note_current, &cur);
    if (st == BP_ERR_NOT_FOUND)
        st = BP_OK;
    if (st != BP_OK)
        goto out;
    if (d.exists) {
        const char *domain = domain_of(address, dombuf, sizeof(dombuf));
        bp_suppression row = {address,       domain != NULL ? domain : "",
                              d.reason,      d.kind,
                              d.first,       d.last,
                              d.count,       d.lifted,
                              d.lift_reason, d.lifted_at};
        st = s->be->suppression_put(s->h, &row);
    } else if (cur.found) {
        st = s->be->suppression_delete(s->h, address);
    }
    if (st == BP_OK && became_suppressed != NULL)
        *became_suppressed = d.active && !(cur.found && cur.active);
    if (out_pending != NULL) {
        *out_pending = d;
        out_pending->reason = out_pending->lift_reason = NULL; /* they point into fs, freed below */
    }
out:
    facts_free(&fs);
    return st;
}

/* ---- recording ------------------------------------------------------------------------- */

bp_status bp_store_seen(bp_store *s, const char *fingerprint, int *state)
{
    return s->be->seen(s->h, fingerprint, state);
}

static bp_status insert_event(bp_store *s, const bp_event *e, long long t, long long now, const bp_store_unit *unit)
{
    char dombuf[320];
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = BP_LEDGER_EVENT;
    r.event = *e;
    r.event.fingerprint = unit->fingerprint;
    r.mta_category = unit->mta_category;
    r.domain = domain_of(e->recipient, dombuf, sizeof(dombuf));
    r.evidence_time = t;
    r.recorded_at = now;
    return s->be->ledger_insert(s->h, &r);
}

bp_status bp_store_record(bp_store *s, const bp_store_unit *unit, const bp_event *events, size_t n_events,
                          bp_record_result *result)
{
    bp_record_result dummy;
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
    if (!recognised) {
        bp_event placeholder;
        memset(&placeholder, 0, sizeof(placeholder));
        if (n_events > 0)
            placeholder = events[0];
        placeholder.type = BP_EVENT_UNRECOGNIZED;
        placeholder.action = BP_ACT_NONE; /* evidence only: derive() never acts on it */
        if (placeholder.source == NULL)
            placeholder.source = unit->source;
        if (placeholder.message_id == NULL)
            placeholder.message_id = unit->message_id;
        st = insert_event(s, &placeholder, t, now, unit);
        if (st == BP_OK)
            result->recorded++;
        return st == BP_OK ? s->be->mark(s->h, unit, BP_SEEN_UNRECOGNIZED, now) : st;
    }
    for (size_t i = 0; i < n_events; i++) {
        if (events[i].type == BP_EVENT_UNRECOGNIZED)
            continue;
        st = insert_event(s, &events[i], t, now, unit);
        if (st != BP_OK)
            return st;
        result->recorded++;
    }
    st = s->be->mark(s->h, unit, BP_SEEN_RECORDED, now);
    if (st != BP_OK)
        return st;
    /* Re-derive each address once (a report may name one recipient in several events). */
    for (size_t i = 0; i < n_events; i++) {
        const char *a = events[i].recipient;
        if (a == NULL || events[i].type == BP_EVENT_UNRECOGNIZED)
            continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = events[j].recipient != NULL && events[j].type != BP_EVENT_UNRECOGNIZED &&
                  strcmp(events[j].recipient, a) == 0;
        if (dup)
            continue;
        int became = 0;
        st = derive(s, a, &became, NULL);
        if (st != BP_OK)
            return st;
        result->suppressed += (unsigned)became;
    }
    return BP_OK;
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
    if (st != BP_OK)
        return st;
    derived d;
    long long now = now_seconds();
    if (when <= 0 || when > now)
        when = now;
    st = derive(s, address, NULL, &d);
    if (st != BP_OK || d.soft_pending == 0 || d.soft_oldest > when)
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
    st = s->be->ledger_insert(s->h, &r);
    return st == BP_OK ? derive(s, address, NULL, NULL) : st;
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
    char dombuf[320];
    bp_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.event.recipient = address;
    r.domain = domain_of(address, dombuf, sizeof(dombuf));
    r.evidence_time = t;
    r.recorded_at = now_seconds();
    r.note = note;
    return s->be->ledger_insert(s->h, &r);
}

bp_status bp_store_remove(bp_store *s, const char *address, const char *reason, long long now)
{
    bp_status st = need_tx(s);
    if (st != BP_OK)
        return st;
    current_row cur = {0, 0};
    st = s->be->suppression_get(s->h, address, note_current, &cur);
    if (st != BP_OK)
        return st;
    if (!cur.active)
        return BP_ERR_NOT_FOUND;
    st = operator_row(s, BP_LEDGER_REMOVAL, address, reason, now > 0 ? now : now_seconds());
    return st == BP_OK ? derive(s, address, NULL, NULL) : st;
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
        st = derive(s, address, &became, NULL);
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

bp_status bp_store_ledger_events(bp_store *s, bp_ledger_cb cb, void *user)
{
    return s->be->ledger_events(s->h, cb, user);
}

bp_status bp_store_reclassify(bp_store *s, long long id, const char *recipient, const char *category, const char *rule,
                              bp_action action, const char *blocklist)
{
    bp_status st = need_tx(s);
    if (st != BP_OK)
        return st;
    st = s->be->ledger_reclassify(s->h, id, category, rule, action, blocklist);
    if (st == BP_OK && recipient != NULL)
        st = derive(s, recipient, NULL, NULL);
    return st;
}
