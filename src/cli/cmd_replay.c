/*
 * cmd_replay.c - bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDR]
 *                [--db PATH] [--config FILE] [--patterns FILE] PATH...
 *
 * Wires message sources to the core, the printer and the store.  An input that cannot be
 * read is reported on stderr with its name and the run goes on; the exit status is 1 when
 * anything failed, 75 when the store failed transiently (busy, disk full: run it again, it is
 * idempotent), 0 otherwise.  On a terminal, runs over many files show progress on stderr.
 *
 * Without --dry-run every message is recorded by the core (bp_finish_record(), the same unit
 * as pipe mode's), REPLAY_BATCH_MESSAGES messages (or REPLAY_BATCH_SECONDS) per transaction,
 * so that a long replay neither holds the write lock for long nor pays a commit per message.
 * A failed batch is rolled back as a whole and the run stops.  Replay quarantines nothing:
 * its inputs are files already (the quarantine is replayed from).  Events are printed when
 * --format is given (always with --dry-run); a summary goes to stderr.
 *
 * replay_parse() reads the command line, replay_run() the sources, replay_report() says what
 * was recorded.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "bouncepipe/store.h"
#include "cli.h"

/* Messages per store transaction, and the longest a transaction stays open. */
#define REPLAY_BATCH_MESSAGES 500
#define REPLAY_BATCH_SECONDS  2

static const bp_cli_command replay_command = {
    "replay",
    BP_OPT_DRY_RUN | BP_OPT_FORMAT | BP_OPT_RCPT | BP_OPT_STORE | BP_OPT_RULES,
    NULL,
    0,
    bp_cli_event_formats,
    1,
    -1,
    "usage: bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDRESS]\n"
    "                         [--db PATH] [--config FILE] [--patterns FILE] [--no-builtin-rules] PATH...\n"
    "PATH is a message file, a directory of them, an mbox, a Maildir, or - for stdin.\n",
    BP_CLI_SETUP_RULES,
};

struct replay_run {
    bp_cli_env *env;
    bp_printer *printer;
    bp_arena *arena;
    bp_store *store;
    bp_cli_batch batch;
    size_t messages, recorded, duplicates, upgraded, suppressed;
    int failures;
    int progress; /* show progress on stderr (a terminal) */
    time_t progress_last;
};

/* Record one processed message in the open batch (opened and committed as needed). */
static bp_status batch_record(struct replay_run *run, const bp_process_result *res)
{
    bp_status st = bp_cli_batch_begin(&run->batch);
    if (st != BP_OK)
        return st;
    bp_record_result rr;
    st = bp_finish_record(&run->env->pipeline, run->store, res, &rr);
    if (st != BP_OK) {
        bp_cli_batch_rollback(&run->batch);
        return st;
    }
    switch (rr.outcome) {
    case BP_RECORD_NEW: run->recorded++; break;
    case BP_RECORD_DUPLICATE: run->duplicates++; break;
    case BP_RECORD_UPGRADED: run->upgraded++; break;
    }
    run->suppressed += rr.suppressed;
    return bp_cli_batch_done(&run->batch);
}

static void show_progress(struct replay_run *run, const bp_source *src, int final)
{
    if (!run->progress)
        return;
    time_t now = time(NULL);
    if (!final && now == run->progress_last)
        return;
    run->progress_last = now;
    size_t done, total;
    bp_source_progress(src, &done, &total);
    fprintf(stderr, "\rreplay: %zu/%zu files, %zu messages%s", done, total, run->messages, final ? "\n" : "");
}

static void source_done(void *user, const bp_source *src)
{
    show_progress(user, src, 1);
}

/* One message of a source.  @return 0 to go on, or the exit status that ends the run. */
static int replay_message(void *user, const bp_source *src, const bp_source_msg *msg)
{
    struct replay_run *run = user;
    bp_cli_env *env = run->env;
    if (msg->truncated)
        bp_cli_error("replay", "%s: message longer than the limit; read its beginning only", msg->name);
    bp_arena_reset(run->arena);
    bp_envelope envelope = {msg->name, env->rcpt, NULL};
    bp_process_result res;
    bp_status st = bp_process_message(&env->pipeline, &envelope, env->dry_run ? BP_PROCESS_NO_FINGERPRINT : 0,
                                      msg->data, msg->len, run->arena, &res);
    if (st != BP_OK) {
        /* BP_ERR_UNSUPPORTED: a DMARC report, and its reader module could not be loaded */
        bp_cli_error("replay", "%s: %s", msg->name,
                     st == BP_ERR_UNSUPPORTED ? bp_dmarc_reader_error() : bp_status_to_string(st));
        run->failures++;
        return 0;
    }
    if (res.mime_failed) {
        bp_cli_error("replay", "%s: not a readable message", msg->name);
        run->failures++;
    }
    if (run->store != NULL) {
        st = batch_record(run, &res);
        if (st != BP_OK) {
            bp_cli_error("replay", "%s: recording failed, the current batch was rolled back: %s: %s", msg->name,
                         bp_status_to_string(st), bp_cli_store_error(env, run->store));
            return bp_cli_exit_status(st, BP_CLI_OPERATOR);
        }
    }
    for (size_t k = 0; run->printer != NULL && k < res.n_events; k++) {
        if (bp_printer_event(run->printer, &res.events[k]) != BP_OK) {
            bp_cli_error("replay", "writing output: %s", bp_status_to_string(BP_ERR_IO));
            return BP_EXIT_FAILURE;
        }
    }
    run->messages++;
    show_progress(run, src, 0);
    return 0;
}

/* Set up, read every source.  @return the exit status. */
static int replay_run(struct replay_run *run, int n_paths, char **paths)
{
    bp_cli_env *env = run->env;
    if (!env->dry_run) {
        int rc = bp_cli_store_ready(env, 0, 0, &run->store);
        if (rc != BP_EXIT_OK)
            return rc;
        run->batch = (bp_cli_batch){run->store, REPLAY_BATCH_MESSAGES, REPLAY_BATCH_SECONDS, 0, 0, 0};
    }
    if (env->dry_run || env->format_given)
        run->printer = bp_printer_new(stdout, bp_cli_event_format(env));
    run->arena = bp_arena_new();
    if (((env->dry_run || env->format_given) && run->printer == NULL) || run->arena == NULL) {
        bp_cli_error("replay", "out of memory");
        return BP_EXIT_SOFTWARE;
    }
    run->progress = isatty(STDERR_FILENO);
    int rc = bp_cli_each_message("replay", n_paths, paths, replay_message, source_done, run, &run->failures);
    if (rc != BP_EXIT_OK || run->store == NULL)
        return rc;
    bp_status st = bp_cli_batch_commit(&run->batch);
    if (st != BP_OK) {
        bp_cli_error("replay", "committing the last batch failed, it was rolled back: %s: %s", bp_status_to_string(st),
                     bp_cli_store_error(env, run->store));
        return bp_cli_exit_status(st, BP_CLI_OPERATOR);
    }
    return BP_EXIT_OK;
}

/* The summary and the output's fate.  @return the exit status. */
static int replay_report(struct replay_run *run, int rc)
{
    if (rc == BP_EXIT_OK && run->store != NULL)
        fprintf(stderr,
                "replay: %zu messages: %zu recorded, %zu already recorded, %zu recognised now; %zu addresses newly "
                "suppressed in %s\n",
                run->messages, run->recorded, run->duplicates, run->upgraded, run->suppressed,
                bp_cli_db_shown(run->env));
    if (rc == BP_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) {
        bp_cli_error("replay", "writing output failed");
        rc = BP_EXIT_FAILURE;
    }
    if (run->failures > 0 && rc == BP_EXIT_OK)
        rc = BP_EXIT_FAILURE;
    return rc;
}

static int replay_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct replay_run *run = user;
    run->env = env;
    int rc = replay_run(run, argc - optind, argv + optind);
    if (rc == BP_EXIT_OK || rc == BP_EXIT_FAILURE)
        rc = replay_report(run, rc);
    bp_cli_batch_rollback(&run->batch);
    bp_store_close(run->store);
    bp_printer_free(run->printer);
    bp_arena_free(run->arena);
    return rc;
}

const bp_cli_entry bp_cli_replay = {&replay_command, NULL, replay_main, sizeof(struct replay_run), NULL};
