/*
 * cmd_rescore.c - bouncepipe rescore [--apply] [--db PATH] [--config FILE] [--patterns FILE]
 *                 [--no-builtin-rules]
 *
 * After the rules or the policy changed: re-classify every bounce and delay of the ledger
 * from its stored evidence (diagnostic, status, SMTP code, MTA) exactly as the pipeline does
 * (rules first, then the codes), re-decide every event's action with the current policy, and
 * print each row whose category, rule or action would change.  With --apply the changes are
 * written (in batches of RESCORE_BATCH rows) and each address touched is re-derived; an
 * address whose suppression changed is printed.  Removals stay in force.  Unrecognised
 * messages are not in the ledger's evidence: replay the quarantine for those.
 * Exit status: 0; 1 store failure; 64 usage; 75 store busy (with --apply: the current batch
 * rolled back; run it again); 78 configuration.
 *
 * Ownership: changes are collected in an arena (strings copied out of the ledger rows) and
 * freed on return.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "cli.h"

#define RESCORE_BATCH 1000

struct change {
    long long id;
    char *recipient, *category, *rule, *blocklist;
    bp_action action;
};

struct rescore_run {
    bp_cli_env *env;
    bp_arena *arena;
    struct change *v;
    size_t n, cap;
    size_t examined, action_changes;
    int nomem;
    int apply; /* --apply */
};

static const struct option rescore_options[] = {{"apply", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
static const bp_cli_command rescore_command = {
    "rescore",
    BP_OPT_STORE | BP_OPT_RULES,
    rescore_options,
    0,
    NULL,
    0,
    0,
    "usage: bouncepipe rescore [--apply] [--db PATH] [--config FILE] [--patterns FILE] [--no-builtin-rules]\n",
    BP_CLI_SETUP_RULES,
};

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int examine(void *user, const bp_ledger_row *r)
{
    struct rescore_run *run = user;
    const bp_event *e = &r->event;
    const char *category = e->category, *rule = e->rule, *blocklist = e->blocklist;
    if (e->type == BP_EVENT_UNRECOGNIZED)
        return 0;
    run->examined++;
    if (e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) {
        const char *mta = e->remote_mta != NULL ? e->remote_mta : e->reporting_mta;
        category = bp_classify_text(run->env->pipeline.rules, run->arena, e->diagnostic, e->status, e->smtp_code, mta,
                                    &rule, &blocklist);
    }
    bp_action action =
        bp_policy_decide(&run->env->pipeline.policy, e->type, category, e->feedback_type, e->final, NULL);
    if (same(category, e->category) && same(rule, e->rule) && action == e->action)
        return 0;
    const char *old_action = bp_action_name(e->action), *new_action = bp_action_name(action);
    bp_strbuf line = {0}, shown = {0}; /* what the store holds, masked (text.h) */
    bp_strbuf_printf(&line, "%lld %s: %s %s -> %s %s%s%s", r->id,
                     e->recipient != NULL ? e->recipient : "(no recipient)", old_action != NULL ? old_action : "-",
                     e->category != NULL ? e->category : "-", new_action != NULL ? new_action : "-",
                     category != NULL ? category : "-", rule != NULL ? " rule=" : "", rule != NULL ? rule : "");
    if (line.data != NULL && bp_text_mask_append(&shown, line.data, line.len, 0) == BP_OK && shown.data != NULL)
        printf("%s\n", shown.data);
    bp_strbuf_free(&line);
    bp_strbuf_free(&shown);
    if (action != e->action)
        run->action_changes++;
    struct change *c = bp_array_push(&run->v, &run->n, &run->cap, sizeof(*c), 64);
    if (c == NULL) {
        run->nomem = 1;
        return 1;
    }
    c->id = r->id;
    c->recipient = bp_arena_strdup(run->arena, e->recipient);
    c->category = bp_arena_strdup(run->arena, category);
    c->rule = bp_arena_strdup(run->arena, rule);
    c->blocklist = bp_arena_strdup(run->arena, blocklist);
    c->action = action;
    if ((e->recipient != NULL && c->recipient == NULL) || (category != NULL && c->category == NULL)) {
        run->nomem = 1;
        return 1;
    }
    return 0;
}

struct state {
    int found, active;
};

static int note_state(void *user, const bp_suppression *r)
{
    struct state *s = user;
    s->found = 1;
    s->active = !r->lifted;
    return 0;
}

static bp_status suppressed(bp_store *store, const char *address, int *active)
{
    struct state s = {0, 0};
    bp_status st = bp_store_lookup(store, address, note_state, &s);
    *active = s.found && s.active;
    return st == BP_ERR_NOT_FOUND ? BP_OK : st;
}

static int rescore_option(void *user, int opt, const char *arg)
{
    (void)arg;
    if (opt != 'a')
        return BP_EXIT_USAGE;
    ((struct rescore_run *)user)->apply = 1;
    return 0;
}

/* Write the changes collected by examine(), RESCORE_BATCH rows per transaction, re-deriving
 * each address touched.  @return the store's status; @p flips counts the addresses whose
 * suppression changed. */
static bp_status apply_changes(struct rescore_run *run, bp_store *store, size_t *flips)
{
    bp_status st = BP_OK;
    bp_cli_batch batch = {store, RESCORE_BATCH, 0, 0, 0, 0};
    for (size_t i = 0; st == BP_OK && i < run->n; i++) {
        const struct change *c = &run->v[i];
        st = bp_cli_batch_begin(&batch);
        int before = 0, after = 0;
        if (st == BP_OK && c->recipient != NULL)
            st = suppressed(store, c->recipient, &before);
        if (st == BP_OK)
            st = bp_store_reclassify(store, c->id, c->recipient, c->category, c->rule, c->action, c->blocklist);
        if (st == BP_OK && c->recipient != NULL)
            st = suppressed(store, c->recipient, &after);
        if (st == BP_OK && before != after) {
            printf("%s: %s\n", bp_text_mask(run->arena, c->recipient, BP_MAX_ADDRESS_BYTES),
                   after ? "now suppressed" : "no longer suppressed");
            (*flips)++;
        }
        if (st == BP_OK)
            st = bp_cli_batch_done(&batch);
    }
    if (st == BP_OK)
        st = bp_cli_batch_commit(&batch);
    bp_cli_batch_rollback(&batch);
    return st;
}

static int rescore_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct rescore_run *run = user;
    bp_store *store = NULL;
    size_t flips = 0;
    int rc = BP_EXIT_OK;
    run->env = env;
    run->arena = bp_arena_new();
    if (run->arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    rc = bp_cli_store_ready(env, !run->apply, 0, &store);
    if (rc != BP_EXIT_OK)
        goto out;
    bp_status st = bp_store_ledger_events(store, examine, run);
    if (st == BP_OK && run->nomem)
        st = BP_ERR_NOMEM;
    if (st == BP_OK && run->apply)
        st = apply_changes(run, store, &flips);
    if (st != BP_OK) {
        bp_cli_error("rescore", "%s: %s%s", bp_status_to_string(st), bp_cli_store_error(env, store),
                     run->apply ? " (the current batch was rolled back)" : "");
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (run->apply)
        fprintf(stderr, "rescore: %zu events examined, %zu changed (%zu actions); %zu addresses changed suppression\n",
                run->examined, run->n, run->action_changes, flips);
    else
        fprintf(stderr, "rescore: %zu events examined, %zu would change (%zu actions); run with --apply to write\n",
                run->examined, run->n, run->action_changes);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = BP_EXIT_FAILURE;
out:
    free(run->v);
    bp_arena_free(run->arena);
    bp_store_close(store);
    return rc;
}

const bp_cli_entry bp_cli_rescore = {&rescore_command, rescore_option, rescore_main, sizeof(struct rescore_run), NULL};
