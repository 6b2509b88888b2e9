/*
 * cmd_acct.c - bouncepipe acct [--dry-run] [--format ndjson|text|csv] [--db PATH]
 *              [--config FILE] [--batch N] [--transient] [--record-deliveries] [--patterns FILE]
 *              [--no-builtin-rules] [--quiet] [FILE...]
 *
 * Reads PowerMTA accounting CSV - standard input when no FILE is named, as
 * <acct-file |/usr/bin/bouncepipe acct> streams it, or accounting files on disk to load
 * history - and records what each record means: bounces and complaints as ledger events,
 * deliveries as soft-bounce resets (see acct.h and acct_events.c for the mapping).
 *
 * Durability: records are committed in batches of --batch (default 100 on stdin, 1000 from
 * files, which can be re-read), whenever the oldest uncommitted record is a second old, and
 * on every idle second of the stream (stdin is polled with a one-second timeout), so a crash
 * loses at most one batch - which the file copy PowerMTA writes beside the pipe still holds.
 * Every record is a store unit keyed by bp_acct_record_key(), so re-reading a file copy
 * after a restart counts nothing twice.
 *
 * When the database is busy or unwritable (transient), the batch is rolled back and kept,
 * the input is not read any further (the pipe fills and PowerMTA waits) and the commit is
 * retried every second until it succeeds or the process is told to stop (SIGTERM/SIGINT:
 * one last attempt, then exit 75 when records remain uncommitted).  A database that refuses
 * for good (BP_ERR_STORE: corrupt, not ours) is not retried: acct stops and exits 1, and the
 * records of the batch are in the file copy PowerMTA writes beside the pipe.
 *
 * Malformed lines, records without a recipient and unknown record types are counted,
 * reported on stderr (the first few with their line) and in the summary at the end; they are
 * never fatal.  Reading stdin with stderr not a terminal (under PowerMTA, whose handling of a
 * pipe's stderr we cannot count on), the summary, database waits and failures also go to
 * syslog (facility mail), as pipe mode's do.
 *
 * Exit status: 0; 1 when an input could not be read or the store refused for good;
 * 64 usage; 75 records left uncommitted while the database was unavailable; 78
 * configuration (bp_cli_exit_status()).
 *
 * Ownership: the run owns the reader, printer, store and the batch arena; results of a
 * batch live in the batch arena until their commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "bouncepipe/store.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

/* Diagnostics per kind printed with their line before only the summary counts them. */
#define ACCT_REPORT_FIRST 20
/* Records per commit unless --batch: a live stream commits small batches (a crash loses at
 * most one, and a second's worth at most anyway); a file being loaded is re-readable, so
 * larger batches spare fsyncs (about 3x faster on history loads). */
#define ACCT_BATCH_LIVE 100
#define ACCT_BATCH_FILE 1000
/* Bytes read from the input at a time. */
#define ACCT_READ_CHUNK 65536

static volatile sig_atomic_t stop_requested;

/* Under PowerMTA, standard error may go nowhere: the live stream also logs to syslog (mail). */
static int log_to_syslog;

/* A message that matters to the operator: on stderr, and to syslog for the live stream. */
static void acct_note(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void acct_note(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "bouncepipe: acct: %s\n", line);
    if (log_to_syslog)
        syslog(priority, "acct: %s", line);
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct counts {
    unsigned long records, headers, events, deliveries, deferrals, ignored, unknown_type, no_recipient, malformed;
    unsigned long recorded_new, duplicates, delivery_resets, committed_batches;
};

struct acct_run {
    bp_cli_env env;
    bp_acct_options opts;
    bp_printer *printer; /* --dry-run in text or csv */
    bp_writer *ndjson;   /* --dry-run in ndjson: the printer's fields and ours */
    int transient, quiet, record_deliveries;
    size_t batch_option; /* --batch, or 0: ACCT_BATCH_LIVE for stdin, ACCT_BATCH_FILE for files */
    size_t batch_max;    /* the one in force for the current stream */
    bp_store *store;
    bp_arena *batch_arena;
    bp_acct_result *pending;
    size_t n_pending, cap_pending;
    time_t oldest_pending;
    struct counts n;
    int failed; /* an input or the store failed for good */
};

static const char *const acct_formats[] = {"ndjson", "text", "csv", "json", NULL};
static const struct option acct_options[] = {{"batch", required_argument, NULL, 'b'},
                                             {"transient", no_argument, NULL, 't'},
                                             {"record-deliveries", no_argument, NULL, 'D'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {NULL, 0, NULL, 0}};
static const bp_cli_command acct_command = {
    "acct",
    BP_OPT_DRY_RUN | BP_OPT_FORMAT | BP_OPT_STORE | BP_OPT_RULES,
    acct_options,
    "b:tDq",
    acct_formats,
    0,
    -1,
    "usage: bouncepipe acct [--dry-run] [--format ndjson|text|csv] [--db PATH] [--config FILE]\n"
    "                       [--batch N] [--transient] [--record-deliveries] [--patterns FILE]\n"
    "                       [--no-builtin-rules] [--quiet] [FILE...]\n"
    "Reads PowerMTA accounting CSV from the FILEs, or from standard input when none is named.\n",
    BP_CLI_SETUP_RULES,
};

/* NDJSON: the event's contract fields, then the accounting fields ("further fields may
 * follow"), one map of the structured writer. */
static bp_status print_ndjson(struct acct_run *run, const bp_acct_result *res)
{
    bp_writer *w = run->ndjson;
    bp_writer_begin_map(w);
    bp_event_write_fields(w, &res->event);
    bp_writer_key(w, "record_type");
    bp_writer_string(w, res->record_type);
    bp_writer_key(w, "time_logged");
    bp_writer_string(w, res->time_logged);
    bp_writer_key(w, "pmta_category");
    bp_writer_string(w, res->pmta_category);
    bp_writer_key(w, "key");
    bp_writer_string(w, res->key);
    bp_writer_end(w);
    return bp_writer_separator(w);
}

static bp_status print_result(struct acct_run *run, const bp_acct_result *res)
{
    if (run->ndjson != NULL)
        return print_ndjson(run, res);
    return bp_printer_event(run->printer, &res->event);
}

/* Write the pending batch in one transaction.  On a transient failure the batch is kept. */
static bp_status commit_batch(struct acct_run *run)
{
    if (run->n_pending == 0 || run->store == NULL)
        return BP_OK;
    struct counts before = run->n;
    bp_status st = bp_store_begin(run->store);
    for (size_t i = 0; st == BP_OK && i < run->n_pending; i++) {
        bp_acct_kept kept;
        st = bp_finish_acct(run->store, &run->pending[i], run->record_deliveries, &kept);
        if (st != BP_OK)
            break;
        switch (kept) {
        case BP_ACCT_KEPT_NEW: run->n.recorded_new++; break;
        case BP_ACCT_KEPT_DUPLICATE: run->n.duplicates++; break;
        case BP_ACCT_KEPT_DELIVERY: run->n.delivery_resets++; break;
        case BP_ACCT_KEPT_DEFERRAL: break; /* counted for signals only */
        }
    }
    if (st == BP_OK)
        st = bp_store_commit(run->store);
    if (st != BP_OK) {
        bp_store_rollback(run->store);
        run->n.recorded_new = before.recorded_new;
        run->n.duplicates = before.duplicates;
        run->n.delivery_resets = before.delivery_resets;
        return st;
    }
    run->n.committed_batches++;
    run->n_pending = 0;
    bp_arena_reset(run->batch_arena);
    return BP_OK;
}

/* Commit, retrying a transient failure every second until it works or we are told to stop. */
static bp_status commit_until_done(struct acct_run *run)
{
    time_t last_report = 0;
    for (;;) {
        bp_status st = commit_batch(run);
        if (st == BP_OK || !bp_status_is_transient(st))
            return st;
        time_t now = time(NULL);
        if (now - last_report >= 60) {
            acct_note(LOG_WARNING, "database unavailable (%s: %s); holding %zu records and retrying every second",
                      bp_status_to_string(st), bp_cli_store_error(&run->env, run->store), run->n_pending);
            last_report = now;
        }
        if (stop_requested)
            return st;
        sleep(1);
    }
}

static bp_status add_pending(struct acct_run *run, const bp_acct_result *res)
{
    if (run->n_pending == run->cap_pending) {
        size_t cap = run->cap_pending > 0 ? run->cap_pending * 2 : 64;
        bp_acct_result *np = realloc(run->pending, cap * sizeof(*np));
        if (np == NULL)
            return BP_ERR_NOMEM;
        run->pending = np;
        run->cap_pending = cap;
    }
    if (run->n_pending == 0)
        run->oldest_pending = time(NULL);
    run->pending[run->n_pending++] = *res;
    return BP_OK;
}

static void report_line(unsigned long count, const char *name, unsigned long line, const char *what)
{
    if (count <= ACCT_REPORT_FIRST)
        fprintf(stderr, "bouncepipe: acct: %s:%lu: %s%s\n", name, line, what,
                count == ACCT_REPORT_FIRST ? " (further ones only counted)" : "");
}

/* Take every complete record out of the reader. */
static bp_status drain(struct acct_run *run, bp_acct_reader *reader, const char *name, int at_eof)
{
    for (;;) {
        bp_csv_record raw;
        bp_acct_record rec;
        bp_csv_outcome outcome;
        bp_status st = bp_acct_reader_next(reader, at_eof, &raw, &rec, &outcome);
        if (st != BP_OK)
            return st;
        switch (outcome) {
        case BP_CSV_NEED_MORE: return BP_OK;
        case BP_CSV_HEADER: run->n.headers++; continue;
        case BP_CSV_MALFORMED:
            run->n.malformed++;
            if (!run->quiet)
                report_line(run->n.malformed, name, raw.line, raw.error);
            continue;
        case BP_CSV_RECORD: break;
        }
        run->n.records++;
        bp_acct_result res;
        st = bp_acct_record_event(&run->opts, &rec, run->batch_arena, &res);
        if (st != BP_OK)
            return st;
        switch (res.disposition) {
        case BP_ACCT_IGNORED:
            if (res.unknown_type) {
                run->n.unknown_type++;
                if (!run->quiet)
                    report_line(run->n.unknown_type, name, rec.line, "unknown record type, ignored");
            } else {
                run->n.ignored++;
            }
            continue;
        case BP_ACCT_NO_RECIPIENT:
            run->n.no_recipient++;
            if (!run->quiet)
                report_line(run->n.no_recipient, name, rec.line, "record without a usable recipient, skipped");
            continue;
        case BP_ACCT_DELIVERY: run->n.deliveries++; break;
        case BP_ACCT_EVENT: run->n.events++; break;
        case BP_ACCT_DEFERRAL:
            run->n.deferrals++;
            if (run->env.dry_run)
                continue; /* counted in the store only: no event to print */
            break;
        }
        if (run->env.dry_run) {
            if (print_result(run, &res) != BP_OK)
                return BP_ERR_IO;
            continue;
        }
        st = add_pending(run, &res);
        if (st != BP_OK)
            return st;
        if (run->n_pending >= run->batch_max || time(NULL) - run->oldest_pending >= 1) {
            st = commit_until_done(run);
            if (st != BP_OK)
                return st;
        }
    }
}

/* Read one stream to its end.  @p live: poll with a one-second timeout, committing when idle. */
static bp_status read_stream(struct acct_run *run, int fd, const char *name, int live)
{
    bp_acct_reader *reader = NULL;
    char *chunk = malloc(ACCT_READ_CHUNK);
    bp_status st = bp_acct_reader_new(&reader);
    if (chunk == NULL && st == BP_OK)
        st = BP_ERR_NOMEM;
    run->batch_max = run->batch_option > 0 ? run->batch_option : live ? ACCT_BATCH_LIVE : ACCT_BATCH_FILE;
    bp_pipeline_acct_options(&run->env.pipeline, name, run->transient, &run->opts);
    while (st == BP_OK && !stop_requested) {
        if (live) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int ready = poll(&pfd, 1, 1000);
            if (ready < 0 && errno != EINTR) {
                st = BP_ERR_IO;
                break;
            }
            if (ready <= 0) { /* an idle second: make what we have durable */
                st = commit_until_done(run);
                continue;
            }
        }
        ssize_t got = read(fd, chunk, ACCT_READ_CHUNK);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            acct_note(LOG_ERR, "%s: read failed: %s", name, strerror(errno));
            run->failed = 1;
            break;
        }
        if (got == 0) {
            st = drain(run, reader, name, 1);
            break;
        }
        st = bp_acct_reader_feed(reader, chunk, (size_t)got);
        if (st == BP_OK)
            st = drain(run, reader, name, 0);
    }
    if (st == BP_OK && stop_requested)
        st = drain(run, reader, name, 1); /* what is complete still counts */
    if (st == BP_OK)
        st = commit_until_done(run);
    bp_acct_reader_free(reader);
    free(chunk);
    return st;
}

static void summary(const struct acct_run *run)
{
    if (run->quiet && run->n.malformed == 0 && run->n.no_recipient == 0 && run->n.unknown_type == 0)
        return;
    char stored[200] = "";
    if (!run->env.dry_run)
        snprintf(stored, sizeof(stored), "; stored %lu new, %lu already seen, %lu deliveries applied in %lu commits",
                 run->n.recorded_new, run->n.duplicates, run->n.delivery_resets, run->n.committed_batches);
    acct_note(LOG_INFO,
              "%lu records (%lu headers): %lu events, %lu deliveries, %lu deferrals, %lu ignored, %lu unknown type, "
              "%lu without recipient, %lu malformed lines%s",
              run->n.records, run->n.headers, run->n.events, run->n.deliveries, run->n.deferrals, run->n.ignored,
              run->n.unknown_type, run->n.no_recipient, run->n.malformed, stored);
}

static int acct_option(void *user, int opt, const char *arg)
{
    struct acct_run *run = user;
    long v = 0;
    switch (opt) {
    case 'b':
        if (bp_cli_parse_count(arg, 1, 100000, &v) != 0) {
            bp_cli_error("acct", "--batch wants a number from 1 to 100000");
            return BP_EXIT_USAGE;
        }
        run->batch_option = (size_t)v;
        return 0;
    case 't': run->transient = 1; return 0;
    case 'D': run->record_deliveries = 1; return 0;
    case 'q': run->quiet = 1; return 0;
    default: return BP_EXIT_USAGE;
    }
}

/* Set up (the configuration and rules are bp_cli_start()'s): the batch arena, the printer or
 * the store.  @return
 * BP_EXIT_OK to go on, or the exit status. */
static int acct_setup(struct acct_run *run)
{
    bp_cli_env *env = &run->env;
    run->batch_arena = bp_arena_new();
    if (run->batch_arena == NULL) {
        bp_cli_error("acct", "out of memory");
        return BP_EXIT_SOFTWARE;
    }
    if (!env->dry_run)
        return bp_cli_store_ready(env, 0, 0, &run->store);
    bp_format format = BP_FORMAT_NDJSON;
    bp_format_parse(acct_formats[env->format], &format);
    if (format == BP_FORMAT_NDJSON)
        run->ndjson = bp_writer_new(stdout, BP_WRITER_JSON);
    else
        run->printer = bp_printer_new(stdout, format);
    if (run->ndjson == NULL && run->printer == NULL) {
        bp_cli_error("acct", "out of memory");
        return BP_EXIT_SOFTWARE;
    }
    return BP_EXIT_OK;
}

/* Read standard input (live) or the FILEs.  @return the status that ended the run. */
static bp_status acct_read(struct acct_run *run, int n_files, char **files)
{
    bp_status st = BP_OK;
    if (n_files == 0) {
        log_to_syslog = !isatty(STDERR_FILENO);
        if (log_to_syslog)
            openlog("bouncepipe", LOG_PID, LOG_MAIL);
        return read_stream(run, STDIN_FILENO, "-", 1);
    }
    for (int i = 0; i < n_files && st == BP_OK && !stop_requested; i++) {
        int fd = strcmp(files[i], "-") == 0 ? STDIN_FILENO : open(files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            bp_cli_error("acct", "%s: %s", files[i], strerror(errno));
            run->failed = 1;
            continue;
        }
        st = read_stream(run, fd, files[i], fd == STDIN_FILENO);
        if (fd != STDIN_FILENO)
            close(fd);
    }
    return st;
}

/* What the run comes to: messages, the exit status, the summary. */
static int acct_report(struct acct_run *run, bp_status st)
{
    int rc = BP_EXIT_OK;
    if (st != BP_OK) {
        acct_note(LOG_ERR, "%s%s%s", bp_status_to_string(st), run->store != NULL ? ": " : "",
                  bp_cli_store_error(&run->env, run->store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
    }
    if (run->n_pending > 0) {
        acct_note(LOG_ERR, "%zu records were not committed; re-read the accounting file to load them", run->n_pending);
        if (rc == BP_EXIT_OK)
            rc = BP_EXIT_TEMPFAIL; /* stopped while the database was unavailable */
    }
    if ((run->ndjson != NULL && bp_writer_flush(run->ndjson) != BP_OK) || fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("acct", "writing output failed");
        if (rc == BP_EXIT_OK)
            rc = BP_EXIT_FAILURE;
    }
    if (run->failed && rc == BP_EXIT_OK)
        rc = BP_EXIT_FAILURE;
    summary(run);
    return rc;
}

int cmd_acct(int argc, char **argv)
{
    struct acct_run run;
    memset(&run, 0, sizeof(run));
    int rc = bp_cli_start(&acct_command, &run.env, argc, argv, acct_option, &run);
    if (rc != -1)
        return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: poll() and read() return so we can finish */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = acct_setup(&run);
    if (rc == BP_EXIT_OK)
        rc = acct_report(&run, acct_read(&run, argc - optind, argv + optind));
    if (log_to_syslog)
        closelog();
    free(run.pending);
    bp_store_close(run.store);
    bp_printer_free(run.printer);
    bp_writer_free(run.ndjson);
    bp_arena_free(run.batch_arena);
    bp_cli_env_cleanup(&run.env);
    return rc;
}
