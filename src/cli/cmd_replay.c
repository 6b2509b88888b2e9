/*
 * cmd_replay.c - bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDR]
 *                [--db PATH] [--config FILE] [--patterns FILE] PATH...
 *
 * Wires message sources to the pipeline, the printer and the store.  An input that cannot be
 * read is reported on stderr with its name and the run goes on; the exit status is 1 when
 * anything failed, 75 when the store failed transiently (busy, disk full: run it again, it is
 * idempotent), 0 otherwise.  On a terminal, runs over many files show progress on stderr.
 *
 * Without --dry-run every message is recorded through bp_cli_record(), the same path as pipe
 * mode, REPLAY_BATCH_MESSAGES messages (or REPLAY_BATCH_SECONDS) per transaction, so that a
 * long replay neither holds the write lock for long nor pays a commit per message.  A failed
 * batch is rolled back as a whole and the run stops.  Events are printed when --format is
 * given (always with --dry-run); a summary goes to stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "bouncepipe/store.h"
#include "cli.h"

/* Messages per store transaction, and the longest a transaction stays open. */
#define REPLAY_BATCH_MESSAGES 500
#define REPLAY_BATCH_SECONDS  2

struct replay_store {
    bp_store *store;
    int in_tx;
    size_t pending;
    time_t tx_started;
    size_t recorded, duplicates, upgraded, suppressed;
};

/* Commit the open batch. */
static bp_status batch_commit(struct replay_store *rs)
{
    if (!rs->in_tx)
        return BP_OK;
    rs->in_tx = 0;
    rs->pending = 0;
    return bp_store_commit(rs->store);
}

/* Record one processed message, opening and committing batches as needed. */
static bp_status batch_record(struct replay_store *rs, const bp_process_result *res, const char *source)
{
    bp_status st = BP_OK;
    if (!rs->in_tx) {
        st = bp_store_begin(rs->store);
        if (st != BP_OK)
            return st;
        rs->in_tx = 1;
        rs->tx_started = time(NULL);
    }
    bp_record_result rr;
    st = bp_cli_record(rs->store, res, source, &rr);
    if (st != BP_OK) {
        bp_store_rollback(rs->store);
        rs->in_tx = 0;
        return st;
    }
    switch (rr.outcome) {
    case BP_RECORD_NEW: rs->recorded++; break;
    case BP_RECORD_DUPLICATE: rs->duplicates++; break;
    case BP_RECORD_UPGRADED: rs->upgraded++; break;
    }
    rs->suppressed += rr.suppressed;
    if (++rs->pending >= REPLAY_BATCH_MESSAGES || time(NULL) - rs->tx_started >= REPLAY_BATCH_SECONDS)
        st = batch_commit(rs);
    return st;
}

static void replay_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDRESS]\n"
                 "                         [--db PATH] [--config FILE] [--patterns FILE] [--no-builtin-rules] PATH...\n"
                 "PATH is a message file, a directory of them, an mbox, a Maildir, or - for stdin.\n");
}

struct progress {
    int enabled;
    time_t last;
};

static void show_progress(struct progress *pg, const bp_source *src, size_t messages, int final)
{
    if (!pg->enabled)
        return;
    time_t now = time(NULL);
    if (!final && now == pg->last)
        return;
    pg->last = now;
    size_t done, total;
    bp_source_progress(src, &done, &total);
    fprintf(stderr, "\rreplay: %zu/%zu files, %zu messages%s", done, total, messages, final ? "\n" : "");
}

int cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {{"dry-run", no_argument, NULL, 'n'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"rcpt", required_argument, NULL, 'r'},
                                             {"patterns", required_argument, NULL, 'p'},
                                             {"no-builtin-rules", no_argument, NULL, 'B'},
                                             {"db", required_argument, NULL, 'd'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bp_cli_env env = {0};
    bp_format format = BP_FORMAT_NDJSON;
    const char *rcpt = NULL;
    int dry_run = 0, opt, failures = 0, rc = BP_EXIT_OK, format_given = 0;
    bp_printer *printer = NULL;
    bp_arena *arena = NULL;
    struct replay_store rs;
    memset(&rs, 0, sizeof(rs));

    optind = 1;
    while ((opt = getopt_long(argc, argv, "nf:r:p:Bd:c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': dry_run = 1; break;
        case 'f':
            if (bp_format_parse(optarg, &format) != BP_OK) {
                bp_cli_error("replay", "unknown format '%s'", optarg);
                return BP_EXIT_USAGE;
            }
            format_given = 1;
            break;
        case 'r': rcpt = optarg; break;
        case 'd': env.db = optarg; break;
        case 'c': env.config_file = optarg; break;
        case 'p': env.patterns_file = optarg; break;
        case 'B': env.no_builtin = 1; break;
        case 'h': replay_usage(stdout); return BP_EXIT_OK;
        default: replay_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        replay_usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (bp_cli_env_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    if (!dry_run) {
        bp_status st = bp_cli_store_open(&env, "replay", 0, &rs.store);
        if (st != BP_OK) {
            rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
            goto out;
        }
    }
    if (dry_run || format_given)
        printer = bp_printer_new(stdout, format);
    arena = bp_arena_new();
    if (((dry_run || format_given) && printer == NULL) || arena == NULL) {
        bp_cli_error("replay", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    struct progress pg = {isatty(STDERR_FILENO), 0};
    size_t messages = 0;
    for (int i = optind; i < argc; i++) {
        bp_source *src = NULL;
        bp_status st = bp_source_open(argv[i], &src);
        if (st != BP_OK) {
            bp_cli_error("replay", "%s: %s", argv[i], bp_status_to_string(st));
            failures++;
            continue;
        }
        for (;;) {
            bp_source_msg msg;
            int done = 0;
            st = bp_source_next(src, &msg, &done);
            if (done)
                break;
            if (st != BP_OK) {
                bp_cli_error("replay", "%s: %s", msg.name != NULL ? msg.name : argv[i], bp_status_to_string(st));
                failures++;
                if (st == BP_ERR_NOMEM)
                    break;
                continue;
            }
            if (msg.truncated)
                bp_cli_error("replay", "%s: message longer than the limit; read its beginning only", msg.name);
            bp_arena_reset(arena);
            bp_classify_ctx ctx;
            bp_cli_classify_ctx(&env, rcpt, NULL, msg.name, &ctx);
            ctx.skip_fingerprint = dry_run;
            bp_process_result res;
            st = bp_process_message(&ctx, &env.config.report, msg.data, msg.len, arena, &res);
            if (st != BP_OK) {
                bp_cli_error("replay", "%s: %s", msg.name, bp_status_to_string(st));
                failures++;
                continue;
            }
            if (res.mime_failed) {
                bp_cli_error("replay", "%s: not a readable message", msg.name);
                failures++;
            }
            if (rs.store != NULL) {
                st = batch_record(&rs, &res, msg.name);
                if (st != BP_OK) {
                    bp_cli_error("replay", "%s: recording failed, the current batch was rolled back: %s: %s", msg.name,
                                 bp_status_to_string(st), bp_cli_store_error(&env, rs.store));
                    rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
                    bp_source_close(src);
                    goto out;
                }
            }
            for (size_t k = 0; printer != NULL && k < res.n_events; k++) {
                if (bp_printer_event(printer, &res.events[k]) != BP_OK) {
                    bp_cli_error("replay", "writing output: %s", bp_status_to_string(BP_ERR_IO));
                    rc = BP_EXIT_FAILURE;
                    bp_source_close(src);
                    goto out;
                }
            }
            messages++;
            show_progress(&pg, src, messages, 0);
        }
        show_progress(&pg, src, messages, 1);
        bp_source_close(src);
    }
    if (rs.store != NULL) {
        bp_status st = batch_commit(&rs);
        if (st != BP_OK) {
            bp_cli_error("replay", "committing the last batch failed, it was rolled back: %s: %s",
                         bp_status_to_string(st), bp_cli_store_error(&env, rs.store));
            rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
            goto out;
        }
        fprintf(stderr,
                "replay: %zu messages: %zu recorded, %zu already recorded, %zu recognised now; %zu addresses newly "
                "suppressed in %s\n",
                messages, rs.recorded, rs.duplicates, rs.upgraded, rs.suppressed, bp_cli_db_shown(&env));
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("replay", "writing output failed");
        rc = BP_EXIT_FAILURE;
    }
    if (failures > 0 && rc == BP_EXIT_OK)
        rc = BP_EXIT_FAILURE;
out:
    if (rs.in_tx)
        bp_store_rollback(rs.store);
    bp_store_close(rs.store);
    bp_printer_free(printer);
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}
