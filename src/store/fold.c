/*
 * fold.c - the derivation fold of one address (see fold.h for the rules and ownership).
 *
 * bp_fact_of()        what a ledger row means: suppress, count as soft, reset, remove, nothing.
 * bp_fold_fact()      one step of the fold; rows come in (evidence_time, id) order.
 * bp_fold_late()      a row that came late into a fold suppressed since before it.
 * bp_fold_load()/bp_fold_to_state(), bp_fold_soft_text()/bp_fold_soft_parse()
 *                     the fold saved as a derive_state row and read back, exactly.
 *
 * Nothing here touches a database or the clock: store.c decides which rows to fold and from
 * which state (docs/store.md, "The fold state"), and tests/unit/test_fold.c checks the rules on
 * tables of rows.
 */
#include "fold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

/* The state's format: a state saved in another format is folded again. */
#define FOLD_FORMAT 1

bp_fact bp_fact_of(const bp_ledger_row *r)
{
    bp_fact f = {BP_FACT_NOTHING, NULL, NULL, r->evidence_time, r->id};
    if (r->paired_with > 0)
        return f; /* a second report of a failure another row counts (docs/store.md "Two channels") */
    if (strcmp(r->kind, BP_LEDGER_REMOVAL) == 0) {
        f.what = BP_FACT_REMOVAL;
        f.reason = r->note;
    } else if (strcmp(r->kind, BP_LEDGER_DELIVERY) == 0) {
        f.what = BP_FACT_RESET;
    } else if (strcmp(r->kind, BP_LEDGER_IMPORT) == 0 || strcmp(r->kind, BP_LEDGER_MANUAL) == 0) {
        f.what = BP_FACT_SUPPRESS;
        f.kind = strcmp(r->kind, BP_LEDGER_IMPORT) == 0 ? BP_KIND_IMPORT : BP_KIND_MANUAL;
        f.reason = r->note != NULL ? r->note : f.kind;
    } else if (r->event.type == BP_EVENT_DELIVERED) {
        f.what = BP_FACT_RESET;
    } else if (r->event.action == BP_ACT_SUPPRESS) {
        f.what = BP_FACT_SUPPRESS;
        f.kind = r->event.type == BP_EVENT_COMPLAINT ? BP_KIND_COMPLAINT : BP_KIND_BOUNCE;
        f.reason = r->event.type == BP_EVENT_COMPLAINT ? r->event.feedback_type : r->event.category;
        if (f.reason == NULL)
            f.reason = r->event.type == BP_EVENT_COMPLAINT ? "complaint" : "other";
    } else if (r->event.action == BP_ACT_SOFT) {
        f.what = BP_FACT_SOFT;
        f.reason = r->event.category != NULL ? r->event.category : "other";
    }
    return f;
}

int bp_fold_key_after(long long t1, long long id1, long long t2, long long id2)
{
    return t1 > t2 || (t1 == t2 && id1 > id2);
}

void bp_fold_free(bp_fold *d)
{
    free(d->reason);
    free(d->kind);
    free(d->lift_reason);
    free(d->soft);
    memset(d, 0, sizeof(*d));
}

/* Replace the copy in *dst by a copy of @p src (NULL allowed). */
static void set_text(bp_fold *d, char **dst, const char *src)
{
    char *copy = NULL;
    if (src != NULL && (copy = bp_strdup(src)) == NULL) {
        d->nomem = 1;
        return;
    }
    free(*dst);
    *dst = copy;
}

static int distinct_days(const long long *t, size_t n)
{
    int days = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = t[j] / BP_SECONDS_PER_DAY == t[i] / BP_SECONDS_PER_DAY;
        days += !seen;
    }
    return days;
}

/* Room for one more soft time. @return 0, or -1 out of memory (d->nomem set). */
static int soft_room(bp_fold *d)
{
    if (d->n_soft < d->cap_soft)
        return 0;
    size_t cap = d->cap_soft ? d->cap_soft * 2 : 16;
    long long *v = bp_realloc(d->soft, cap * sizeof(*v));
    if (v == NULL) {
        d->nomem = 1;
        return -1;
    }
    d->soft = v;
    d->cap_soft = cap;
    return 0;
}

static void suppress(bp_fold *d, const bp_fact *f, const char *kind)
{
    if (!d->active) {
        d->active = 1;
        if (!d->exists) {
            d->exists = 1;
            d->first = f->t;
        }
        d->lifted = 0;
        set_text(d, &d->reason, f->reason);
        set_text(d, &d->kind, kind);
        d->active_time = f->t;
        d->active_id = f->id;
    }
    d->count++;
    if (f->t > d->last)
        d->last = f->t;
}

void bp_fold_fact(const bp_fold_policy *o, bp_fold *d, const bp_fact *f)
{
    switch (f->what) {
    case BP_FACT_NOTHING: break;
    case BP_FACT_RESET: d->n_soft = 0; break;
    case BP_FACT_REMOVAL:
        if (d->exists) {
            d->active = 0;
            d->lifted = 1;
            set_text(d, &d->lift_reason, f->reason);
            d->lifted_at = f->t;
        }
        d->n_soft = 0;
        break;
    case BP_FACT_SUPPRESS:
        if (d->lifted && f->t <= d->lifted_at)
            break; /* not newer than the removal: old evidence, already judged */
        suppress(d, f, f->kind);
        d->n_soft = 0;
        break;
    case BP_FACT_SOFT: {
        if (d->active || (d->lifted && f->t <= d->lifted_at))
            break;
        long long window_start = f->t - (long long)o->soft_window * BP_SECONDS_PER_DAY;
        size_t keep = 0;
        for (size_t j = 0; j < d->n_soft; j++)
            if (d->soft[j] > window_start)
                d->soft[keep++] = d->soft[j];
        d->n_soft = keep;
        if (soft_room(d) != 0)
            return;
        d->soft[d->n_soft++] = f->t;
        unsigned need = o->soft_count > 0 ? o->soft_count : 1;
        if (d->n_soft >= need && distinct_days(d->soft, d->n_soft) >= (int)o->soft_days) {
            suppress(d, f, BP_KIND_SOFT_THRESHOLD);
            d->n_soft = 0;
        }
        break;
    }
    }
}

int bp_fold_row(const bp_fold_policy *o, bp_fold *d, const bp_ledger_row *r)
{
    bp_fact f = bp_fact_of(r);
    bp_fold_fact(o, d, &f);
    d->last_time = r->evidence_time;
    d->last_id = r->id;
    d->folded++;
    return d->nomem;
}

void bp_fold_late(bp_fold *d, bp_fact_what what, long long t)
{
    if (what != BP_FACT_SUPPRESS)
        return; /* within a suppression in force soft events and resets change nothing */
    d->count++;
    if (t > d->last)
        d->last = t;
}

bp_suppression bp_fold_suppression(const bp_fold *d, const char *address, const char *domain)
{
    bp_suppression row = {address,  domain,    d->reason,      d->kind,      d->first, d->last,
                          d->count, d->lifted, d->lift_reason, d->lifted_at, address};
    return row;
}

void bp_fold_policy_text(const bp_fold_policy *o, char *buf, size_t size)
{
    snprintf(buf, size, "%d:%u:%u:%u", FOLD_FORMAT, o->soft_count, o->soft_days, o->soft_window);
}

char *bp_fold_soft_text(const bp_fold *d)
{
    size_t size = d->n_soft * 21 + 1;
    char *out = bp_malloc(size);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->n_soft; i++) {
        long long v = i == 0 ? d->soft[0] : d->soft[i] - d->soft[i - 1];
        len += (size_t)snprintf(out + len, size - len, i == 0 ? "%lld" : " %lld", v);
    }
    return out;
}

int bp_fold_soft_parse(bp_fold *d, const char *text)
{
    const char *p = text != NULL ? text : "";
    d->n_soft = 0;
    while (*p != '\0') {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end != ' ' && *end != '\0') || (d->n_soft > 0 && v < 0))
            return -1;
        if (soft_room(d) != 0)
            return -1;
        d->soft[d->n_soft] = d->n_soft == 0 ? v : d->soft[d->n_soft - 1] + v;
        d->n_soft++;
        p = *end == ' ' ? end + 1 : end;
    }
    return 0;
}

int bp_fold_load(bp_fold *d, const bp_fold_state *st, const char *policy)
{
    if (st->policy == NULL || strcmp(st->policy, policy) != 0)
        return 0; /* folded under another policy or format: fold again */
    d->exists = st->suppressed != 0;
    d->lifted = d->exists && st->lifted != 0;
    d->active = d->exists && !d->lifted;
    set_text(d, &d->reason, st->reason);
    set_text(d, &d->kind, st->source_kind);
    set_text(d, &d->lift_reason, st->lift_reason);
    d->first = st->first_seen;
    d->last = st->last_seen;
    d->count = st->count;
    d->lifted_at = st->lifted_at;
    d->active_time = st->active_time;
    d->active_id = st->active_id;
    d->last_time = st->last_time;
    d->last_id = st->last_id;
    return !d->nomem && bp_fold_soft_parse(d, st->soft) == 0 && (!d->exists || d->kind != NULL);
}

bp_fold_state bp_fold_to_state(const bp_fold *d, const char *address, const char *policy, const char *soft)
{
    bp_fold_state st = {address,      d->last_time,   d->last_id,   policy,   d->exists, d->reason,
                        d->kind,      d->first,       d->last,      d->count, d->lifted, d->lift_reason,
                        d->lifted_at, d->active_time, d->active_id, soft};
    return st;
}
