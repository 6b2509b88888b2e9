/*
 * cmd_acct.c - bouncepipe acct [--dry-run] [--format ndjson|text|csv] [--db PATH]
 *              [--config FILE] [--batch N] [--transient] [--record-deliveries] [--patterns FILE]
 *              [--no-builtin-rules] [--quiet] [--follow PATH | --catch-up DIR | FILE...]
 *
 * Reads PowerMTA accounting CSV - standard input when no FILE is named, as
 * <acct-file |/usr/bin/bouncepipe acct> streams it, or accounting files on disk to load
 * history - and records what each record means: bounces and complaints as ledger events,
 * deliveries as soft-bounce resets (see acct.h and acct_events.c for the mapping).
 *
 * Sources:
 *   FILE...       files (plain or gzip: zlib reads both), or directories of them (PowerMTA's
 *                 move-to archive: every *.csv and *.csv.gz in name order);
 *   --follow PATH the accounting file PowerMTA writes (the <acct-file> path): the newest of
 *                 PATH and its rotated names STEM-YYYY-MM-DD-NNNN.EXT is read as it grows, and
 *                 when a newer one appears the current one is read to its end and the next
 *                 taken; where it stopped (file, inode, offset) is kept in the store with each
 *                 commit (bp_acct_position), so a restart resumes there;
 *   --catch-up DIR every accounting file in DIR from where the previous catch-up of that file
 *                 stopped (also kept in the store): the records PowerMTA wrote to its file copy
 *                 while it had given up on the pipe (write-timeout, retry-interval).
 * Re-reading is cheap: a record whose key the store already holds is not classified again.
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
 * Malformed lines, records without a recipient, unknown record types and unreadable times
 * are counted, reported on stderr (the first few with their line) and in the summary at the
 * end; they are never fatal.  Reading stdin with stderr not a terminal (under PowerMTA, whose
 * handling of a pipe's stderr we cannot count on), the summary, database waits and failures
 * also go to syslog (facility mail), as pipe mode's do.
 *
 * Exit status: 0; 1 when an input could not be read or the store refused for good;
 * 64 usage; 75 records left uncommitted while the database was unavailable; 78
 * configuration (bp_cli_exit_status()).
 *
 * Ownership: the run owns the reader, printer, store and the batch arena; results of a
 * batch live in the batch arena until their commit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "bouncepipe/signals.h"
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
/* A catch-up re-reads file copies whose records are mostly stored already: what it still
 * writes (delivery resets, the few missing records) is re-readable too, so fewer commits
 * (fsyncs) - 100k records in 0.8 s instead of 1.6 s on the test machine (docs/acct.md). */
#define ACCT_BATCH_CATCH_UP 10000
/* Bytes read from the input at a time. */
#define ACCT_READ_CHUNK 65536

static volatile sig_atomic_t stop_requested;

/* Under PowerMTA, standard error may go nowhere: the live stream also logs to syslog (mail). */
static int log_to_syslog;

/* A message that matters to the operator: on stderr, and to syslog for the live stream. */
#define acct_note(priority, ...)                                                                                       \
    bp_cli_log("acct", priority, BP_CLI_LOG_STDERR | (log_to_syslog ? BP_CLI_LOG_SYSLOG : 0u), __VA_ARGS__)

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct counts {
    unsigned long records, headers, events, deliveries, deferrals, ignored, unknown_type, no_recipient, malformed;
    unsigned long mta_suppressed, bad_time;
    unsigned long skipped, known; /* below a kept position; keys the store holds (not classified) */
    unsigned long recorded_new, duplicates, delivery_resets, committed_batches;
};

/* The position of the file being read (bp_acct_position): kept with each commit when active. */
struct position {
    int active;
    int dirty;         /* moved since it was last written */
    char stream[4700]; /* "follow:" or "catch-up:", a directory and a file name */
    char file[4096];
    long long inode;
    unsigned long long offset;
};

struct acct_run {
    bp_cli_env *env;
    bp_acct_options opts;
    bp_printer *printer; /* --dry-run in text or csv */
    bp_writer *ndjson;   /* --dry-run in ndjson: the printer's fields and ours */
    int transient, quiet, record_deliveries;
    long batch_option; /* --batch, or 0: ACCT_BATCH_LIVE for stdin, ACCT_BATCH_FILE for files */
    size_t batch_max;  /* the one in force for the current stream */
    bp_store *store;
    bp_arena *batch_arena;
    bp_acct_result *pending;
    size_t n_pending, cap_pending;
    time_t oldest_pending;
    struct counts n;
    int failed;                 /* an input or the store failed for good */
    const char *follow_path;    /* --follow */
    const char *catch_up_dir;   /* --catch-up */
    struct position pos;        /* where the current file is read to, kept with each commit */
    unsigned long long skip_to; /* records ending at or before this offset were read before */
};

static const struct option acct_options[] = {{"batch", required_argument, NULL, 'b'},
                                             {"transient", no_argument, NULL, 't'},
                                             {"record-deliveries", no_argument, NULL, 'D'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"follow", required_argument, NULL, 'F'},
                                             {"catch-up", required_argument, NULL, 'C'},
                                             {NULL, 0, NULL, 0}};
static const bp_cli_command acct_command = {
    "acct",
    BP_OPT_DRY_RUN | BP_OPT_FORMAT | BP_OPT_STORE | BP_OPT_RULES,
    acct_options,
    0,
    bp_cli_event_formats,
    0,
    -1,
    "usage: bouncepipe acct [--dry-run] [--format ndjson|text|csv] [--db PATH] [--config FILE]\n"
    "                       [--batch N] [--transient] [--record-deliveries] [--patterns FILE]\n"
    "                       [--no-builtin-rules] [--quiet] [--follow PATH | --catch-up DIR | FILE...]\n"
    "Reads PowerMTA accounting CSV from the FILEs (plain or gzip, or directories of them), from\n"
    "standard input when none is named, from the growing accounting file PATH (--follow), or\n"
    "from the file copies in DIR where the last catch-up stopped (--catch-up).\n",
    BP_CLI_SETUP_RULES,
};

/* NDJSON: the event's contract fields, then the accounting fields ("further fields may
 * follow"), one map of the structured writer. */
static bp_status print_ndjson(struct acct_run *run, const bp_acct_result *res)
{
    bp_writer *w = run->ndjson;
    bp_writer_begin_map(w);
    bp_event_write_fields(w, &res->event);
    bp_writer_entry_string(w, "record_type", res->record_type);
    bp_writer_entry_string(w, "time_logged", res->time_logged);
    bp_writer_entry_string(w, "pmta_category", res->pmta_category);
    bp_writer_entry_string(w, "key", res->key);
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
    int position = run->pos.active && run->pos.dirty;
    if ((run->n_pending == 0 && !position) || run->store == NULL)
        return BP_OK;
    struct counts before = run->n;
    bp_status st = bp_store_begin(run->store);
    if (st == BP_OK && position) {
        /* where the file is read to, in the transaction of the records read up to there */
        bp_acct_position pos = {run->pos.stream, run->pos.file, run->pos.inode, (long long)run->pos.offset,
                                (long long)time(NULL)};
        st = bp_store_acct_position_put(run->store, &pos);
    }
    for (size_t i = 0; st == BP_OK && i < run->n_pending; i++) {
        bp_acct_kept kept;
        st = bp_finish_acct(&run->env->pipeline, run->store, &run->pending[i], run->record_deliveries, &kept);
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
    if (position)
        run->pos.dirty = 0;
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
                      bp_status_to_string(st), bp_cli_store_error(run->env, run->store), run->n_pending);
            last_report = now;
        }
        if (stop_requested)
            return st;
        sleep(1);
    }
}

static bp_status add_pending(struct acct_run *run, const bp_acct_result *res)
{
    bp_acct_result *slot = bp_array_push(&run->pending, &run->n_pending, &run->cap_pending, sizeof(*slot), 64);
    if (slot == NULL)
        return BP_ERR_NOMEM;
    if (run->n_pending == 1)
        run->oldest_pending = time(NULL);
    *slot = *res;
    return BP_OK;
}

static void report_line(unsigned long count, const char *name, unsigned long line, const char *what)
{
    if (count <= ACCT_REPORT_FIRST)
        fprintf(stderr, "bouncepipe: acct: %s:%lu: %s%s\n", name, line, what,
                count == ACCT_REPORT_FIRST ? " (further ones only counted)" : "");
}

/* A record whose key the store holds already: counted as seen, not classified again (the
 * rules are most of the cost of a record; a catch-up re-reads mostly such records). */
static int known(struct acct_run *run, const bp_acct_record *rec)
{
    if (run->store == NULL || run->env->dry_run || !bp_acct_record_keyed(&run->opts, rec))
        return 0;
    const char *key = bp_acct_record_key(rec, run->batch_arena);
    int state = 0;
    if (key == NULL || bp_store_seen(run->store, key, &state) != BP_OK || state != 1)
        return 0;
    run->n.known++;
    run->n.events++;
    run->n.duplicates++;
    if (run->n_pending == 0)
        bp_arena_reset(run->batch_arena); /* the key was all it held */
    return 1;
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
        if (outcome == BP_CSV_NEED_MORE)
            return BP_OK;
        /* what was read before (a kept position) is only parsed, for its headers */
        unsigned long long offset = bp_acct_reader_offset(reader);
        int before = offset <= run->skip_to;
        if (run->pos.active && !before) {
            run->pos.offset = offset;
            run->pos.dirty = 1;
        }
        switch (outcome) {
        case BP_CSV_NEED_MORE: return BP_OK;
        case BP_CSV_HEADER: run->n.headers++; continue;
        case BP_CSV_MALFORMED:
            if (before)
                continue;
            run->n.malformed++;
            if (!run->quiet)
                report_line(run->n.malformed, name, raw.line, raw.error);
            continue;
        case BP_CSV_RECORD: break;
        }
        if (before) {
            run->n.skipped++;
            continue;
        }
        run->n.records++;
        if (known(run, &rec))
            continue;
        bp_acct_result res;
        st = bp_acct_record_event(&run->opts, &rec, run->batch_arena, &res);
        if (st != BP_OK)
            return st;
        switch (res.disposition) {
        case BP_ACCT_IGNORED:
            if (res.mta_suppressed) {
                run->n.mta_suppressed++;
            } else if (res.unknown_type) {
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
            if (run->env->dry_run)
                continue; /* counted in the store only: no event to print */
            break;
        }
        if (res.time_logged != NULL && res.time_logged_unix < 0) {
            /* never silently "now": say which line, and what the record is dated instead */
            run->n.bad_time++;
            if (!run->quiet) {
                char what[160];
                snprintf(what, sizeof(what), "timeLogged \"%.60s\" is in no form PowerMTA writes; dated when read",
                         res.time_logged);
                report_line(run->n.bad_time, name, rec.line, what);
            }
        }
        if (run->env->dry_run) {
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

/* Take @p got bytes of a source and every complete record out of the reader. */
static bp_status take(struct acct_run *run, bp_acct_reader *reader, const char *chunk, size_t got, const char *name)
{
    bp_status st = bp_acct_reader_feed(reader, chunk, got);
    return st == BP_OK ? drain(run, reader, name, 0) : st;
}

/* Options and batch size for the source @p name. */
static void begin_source(struct acct_run *run, const char *name, int live)
{
    run->batch_max = run->batch_option > 0 ? (size_t)run->batch_option
                     : live                ? ACCT_BATCH_LIVE
                     : run->catch_up_dir   ? ACCT_BATCH_CATCH_UP
                                           : ACCT_BATCH_FILE;
    bp_pipeline_acct_options(&run->env->pipeline, name, run->transient, &run->opts);
}

/* The accounting reader and the read buffer one source is read with. */
struct acct_input {
    bp_acct_reader *reader;
    char *chunk; /* ACCT_READ_CHUNK bytes */
};

/* Make @p in's reader and buffer.  @return BP_OK, or an error (then input_close() still). */
static bp_status input_open(struct acct_input *in)
{
    in->reader = NULL;
    in->chunk = bp_malloc(ACCT_READ_CHUNK);
    bp_status st = bp_acct_reader_new(&in->reader);
    if (in->chunk == NULL && st == BP_OK)
        st = BP_ERR_NOMEM;
    return st;
}

static void input_close(struct acct_input *in)
{
    bp_acct_reader_free(in->reader);
    free(in->chunk);
}

/* One read of up to ACCT_READ_CHUNK bytes of @p fd (named @p name) into @p chunk, again when
 * a signal interrupts it unless we were told to stop.  @return the bytes read (0 at the end),
 * or -1: stopped, or the read failed (said, and the run marked failed). */
static ssize_t read_chunk(struct acct_run *run, int fd, char *chunk, const char *name)
{
    ssize_t got;
    while ((got = read(fd, chunk, ACCT_READ_CHUNK)) < 0 && errno == EINTR)
        if (stop_requested)
            return -1;
    if (got < 0) {
        acct_note(LOG_ERR, "%s: read failed: %s", name, strerror(errno));
        run->failed = 1;
    }
    return got;
}

/* Read a live stream (standard input) to its end, polling with a one-second timeout and
 * committing on every idle second. */
static bp_status read_live(struct acct_run *run, int fd, const char *name)
{
    struct acct_input in;
    bp_status st = input_open(&in);
    begin_source(run, name, 1);
    while (st == BP_OK && !stop_requested) {
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
        ssize_t got = read_chunk(run, fd, in.chunk, name);
        if (got < 0)
            break;
        if (got == 0) {
            st = drain(run, in.reader, name, 1);
            break;
        }
        st = take(run, in.reader, in.chunk, (size_t)got, name);
    }
    if (st == BP_OK && stop_requested)
        st = drain(run, in.reader, name, 1); /* what is complete still counts */
    if (st == BP_OK)
        st = commit_until_done(run);
    input_close(&in);
    return st;
}

/* The kept position of @p stream, when it is about the file @p path with @p inode:
 * *offset receives it. */
struct found_position {
    const char *file;
    long long inode;
    unsigned long long offset;
    int found;
    char other[4096]; /* the file a different position is about */
};

static int position_cb(void *user, const bp_acct_position *pos)
{
    struct found_position *fp = user;
    if (fp->file != NULL && strcmp(pos->file, fp->file) == 0 && pos->inode == fp->inode && pos->offset > 0) {
        fp->offset = (unsigned long long)pos->offset;
        fp->found = 1;
    }
    snprintf(fp->other, sizeof(fp->other), "%s", pos->file);
    return 0;
}

/* Start keeping the position of @p path under @p stream (when there is a store), skipping what
 * the kept one says was read.  @return BP_OK or the store's failure. */
static bp_status position_begin(struct acct_run *run, const char *stream, const char *path, long long inode)
{
    run->skip_to = 0;
    run->pos.active = 0;
    if (run->store == NULL || stream == NULL)
        return BP_OK;
    struct found_position fp = {path, inode, 0, 0, ""};
    bp_status st = bp_store_acct_position(run->store, stream, position_cb, &fp);
    if (st != BP_OK && st != BP_ERR_NOT_FOUND)
        return st;
    run->skip_to = fp.found ? fp.offset : 0;
    run->pos.active = 1;
    run->pos.dirty = 0;
    run->pos.inode = inode;
    run->pos.offset = run->skip_to;
    snprintf(run->pos.stream, sizeof(run->pos.stream), "%s", stream);
    snprintf(run->pos.file, sizeof(run->pos.file), "%s", path);
    return BP_OK;
}

/* Read a file (plain or gzip: zlib reads both) to its end; with @p stream, from where its kept
 * position says and keeping it. */
static bp_status read_file(struct acct_run *run, const char *path, const char *stream)
{
    struct stat sb;
    gzFile gz = NULL; /* owned: closed below */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || (gz = gzdopen(fd, "rb")) == NULL) {
        bp_cli_error("acct", "%s: %s", path, strerror(errno != 0 ? errno : ENOMEM));
        if (fd >= 0)
            close(fd);
        run->failed = 1;
        return BP_OK;
    }
    gzbuffer(gz, ACCT_READ_CHUNK);
    struct acct_input in;
    bp_status st = input_open(&in);
    if (st == BP_OK)
        st = position_begin(run, stream, path, (long long)sb.st_ino);
    begin_source(run, path, 0);
    while (st == BP_OK && !stop_requested) {
        int got = gzread(gz, in.chunk, ACCT_READ_CHUNK);
        int zerr = Z_OK;
        const char *why = got <= 0 ? gzerror(gz, &zerr) : NULL;
        if (got < 0 || zerr != Z_OK) { /* a cut gzip file ends with Z_BUF_ERROR */
            acct_note(LOG_ERR, "%s: read failed: %s", path, zerr == Z_ERRNO ? strerror(errno) : why);
            run->failed = 1;
            break;
        }
        if (got == 0) {
            /* a caught-up file may still be written: an unterminated last line is left to the
             * next catch-up (the position stays before it), not reported as cut */
            st = drain(run, in.reader, path, stream == NULL);
            break;
        }
        st = take(run, in.reader, in.chunk, (size_t)got, path);
    }
    if (st == BP_OK)
        st = commit_until_done(run);
    run->pos.active = 0;
    run->skip_to = 0;
    input_close(&in);
    gzclose(gz);
    return st;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Free a list of names. */
static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* An accounting file's name: *.csv, *.csv.gz (PowerMTA's file copies and their archive). */
static int accounting_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' &&
           ((n > 4 && strcasecmp(name + n - 4, ".csv") == 0) || (n > 7 && strcasecmp(name + n - 7, ".csv.gz") == 0));
}

/* The files of @p dir that @p keep accepts, as DIR/NAME, in name order.
 * @return 0, or -1 with errno set (nothing to free then). */
static int list_dir(const char *dir, int (*keep)(const char *name, const void *ctx), const void *ctx, char ***out,
                    size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!keep(de->d_name, ctx))
            continue;
        char *path = NULL;
        struct stat sb;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            rc = -1;
            break;
        }
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        char **slot = bp_array_push(&names, &n, &cap, sizeof(*slot), 16);
        if (slot == NULL) {
            free(path);
            rc = -1;
            break;
        }
        *slot = path;
    }
    closedir(d);
    if (rc != 0) {
        free_names(names, n);
        errno = ENOMEM;
        return -1;
    }
    if (n > 0)
        bp_sort(names, n, sizeof(*names), compare_names);
    *out = names;
    *n_out = n;
    return 0;
}

static int keep_accounting(const char *name, const void *ctx)
{
    (void)ctx;
    return accounting_name(name);
}

/* A directory: every accounting file in it, in name order; with @p catch_up each from where the
 * last catch-up of it stopped. */
static bp_status read_dir(struct acct_run *run, const char *dir, int catch_up)
{
    char **names = NULL;
    size_t n = 0;
    if (list_dir(dir, keep_accounting, NULL, &names, &n) != 0) {
        bp_cli_error("acct", "%s: %s", dir, strerror(errno));
        run->failed = 1;
        return BP_OK;
    }
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK && !stop_requested; i++) {
        char stream[4700];
        snprintf(stream, sizeof(stream), "catch-up:%s", names[i]);
        st = read_file(run, names[i], catch_up ? stream : NULL);
    }
    free_names(names, n);
    return st;
}

/* --follow: the file PowerMTA writes (<acct-file PATH>) and its rotated names
 * STEM-YYYY-MM-DD-NNNN.EXT in the same directory. */
struct rotation {
    char dir[4096];
    char base[512]; /* PATH's file name: "acct.csv" */
    char stem[512]; /* "acct-" */
    char ext[64];   /* ".csv" */
};

static int keep_rotated(const char *name, const void *ctx)
{
    const struct rotation *r = ctx;
    size_t n = strlen(name), sl = strlen(r->stem), el = strlen(r->ext);
    return strcmp(name, r->base) == 0 ||
           (n > sl + el && strncmp(name, r->stem, sl) == 0 && strcmp(name + n - el, r->ext) == 0);
}

/* The rotation's files oldest first: the dated names in name order, then PATH itself. */
static int rotation_files(const struct rotation *r, char ***names, size_t *n)
{
    if (list_dir(r->dir, keep_rotated, r, names, n) != 0)
        return -1;
    char exact[4700];
    snprintf(exact, sizeof(exact), "%s/%s", r->dir, r->base);
    for (size_t i = 0; i + 1 < *n; i++)
        if (strcmp((*names)[i], exact) == 0) { /* PATH itself is the newest: last */
            char *x = (*names)[i];
            memmove(*names + i, *names + i + 1, (*n - i - 1) * sizeof(char *));
            (*names)[*n - 1] = x;
            break;
        }
    return 0;
}

/* The file after @p current in the rotation (current NULL: the newest), copied into @p out.
 * @return non-zero when there is one. */
static int rotation_next(const struct rotation *r, const char *current, char *out, size_t size)
{
    char **names = NULL;
    size_t n = 0;
    int found = 0;
    if (rotation_files(r, &names, &n) != 0)
        return 0;
    if (current == NULL && n > 0) {
        snprintf(out, size, "%s", names[n - 1]);
        found = 1;
    }
    for (size_t i = 0; current != NULL && i < n && !found; i++)
        if (strcmp(names[i], current) == 0 && i + 1 < n) {
            snprintf(out, size, "%s", names[i + 1]);
            found = 1;
        }
    /* the current file is gone from the directory (moved to the archive): the first one
     * that sorts after it */
    int present = 0;
    for (size_t i = 0; current != NULL && i < n; i++)
        present |= strcmp(names[i], current) == 0;
    for (size_t i = 0; current != NULL && !present && i < n && !found; i++)
        if (compare_names(&names[i], &current) > 0) {
            snprintf(out, size, "%s", names[i]);
            found = 1;
        }
    free_names(names, n);
    return found;
}

/* Read the open file @p fd (named @p path) as it grows, until a newer file of the rotation
 * exists and this one is read to its end, or we are told to stop. */
static bp_status follow_file(struct acct_run *run, const struct rotation *rot, int fd, const char *path, char *next,
                             size_t next_size, int *have_next)
{
    struct acct_input in;
    bp_status st = input_open(&in);
    begin_source(run, path, 1);
    time_t last_commit = time(NULL);
    *have_next = 0;
    while (st == BP_OK && !stop_requested) {
        ssize_t got = read_chunk(run, fd, in.chunk, path);
        if (got < 0)
            break;
        if (got > 0) {
            st = take(run, in.reader, in.chunk, (size_t)got, path);
            continue;
        }
        /* at the end of what was written: PowerMTA moves on to a new file only after it has
         * finished this one, so a newer file means this one is complete */
        if (rotation_next(rot, path, next, next_size)) {
            while ((got = read(fd, in.chunk, ACCT_READ_CHUNK)) > 0 && st == BP_OK)
                st = take(run, in.reader, in.chunk, (size_t)got, path);
            if (st == BP_OK)
                st = drain(run, in.reader, path, 1);
            *have_next = 1;
            break;
        }
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (unsigned long long)sb.st_size < bp_acct_reader_offset(in.reader)) {
            acct_note(LOG_WARNING, "%s: the file shrank under us; reading it again from its start", path);
            *have_next = 1;
            snprintf(next, next_size, "%s", path);
            break;
        }
        if (time(NULL) - last_commit >= 1) { /* an idle second: make what we have durable */
            st = commit_until_done(run);
            last_commit = time(NULL);
        }
        bp_sleep_ms(250);
    }
    /* stopped: a record PowerMTA is still writing is not cut; the position stays before it */
    if (st == BP_OK)
        st = commit_until_done(run);
    input_close(&in);
    return st;
}

/* --follow PATH: from the kept position (or the newest file's start), across the rotation. */
static bp_status follow(struct acct_run *run, const char *path)
{
    struct rotation rot;
    memset(&rot, 0, sizeof(rot));
    const char *slash = strrchr(path, '/');
    snprintf(rot.dir, sizeof(rot.dir), "%.*s", slash != NULL ? (int)(slash - path) : 1, slash != NULL ? path : ".");
    if (rot.dir[0] == '\0')
        snprintf(rot.dir, sizeof(rot.dir), "/");
    snprintf(rot.base, sizeof(rot.base), "%s", slash != NULL ? slash + 1 : path);
    const char *dot = strrchr(rot.base, '.');
    snprintf(rot.ext, sizeof(rot.ext), "%s", dot != NULL ? dot : "");
    snprintf(rot.stem, sizeof(rot.stem), "%.*s-", (int)(dot != NULL ? dot - rot.base : (long)strlen(rot.base)),
             rot.base);
    char stream[4700], current[4096] = "", next[4096] = "";
    snprintf(stream, sizeof(stream), "follow:%s/%s", rot.dir, rot.base);

    /* where to start: the kept file (its inode checked when it is opened), else the newest */
    struct found_position kept = {NULL, 0, 0, 0, ""};
    if (run->store != NULL) {
        bp_status st = bp_store_acct_position(run->store, stream, position_cb, &kept);
        if (st != BP_OK && st != BP_ERR_NOT_FOUND)
            return st;
    }
    int resuming = kept.other[0] != '\0';
    if (resuming && access(kept.other, F_OK) == 0) {
        snprintf(current, sizeof(current), "%s", kept.other);
    } else if (resuming && rotation_next(&rot, kept.other, current, sizeof(current))) {
        acct_note(LOG_WARNING,
                  "%s was moved before it was read to its end: going on with %s (acct --catch-up on the move-to "
                  "directory reads what is left)",
                  kept.other, current);
    }
    bp_status st = BP_OK;
    while (st == BP_OK && !stop_requested) {
        if (current[0] == '\0' && !rotation_next(&rot, NULL, current, sizeof(current))) {
            bp_sleep_ms(250); /* no accounting file yet */
            continue;
        }
        struct stat sb;
        int fd = open(current, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &sb) != 0) {
            acct_note(LOG_ERR, "%s: %s", current, strerror(errno));
            if (fd >= 0)
                close(fd);
            run->failed = 1;
            return BP_OK;
        }
        st = position_begin(run, stream, current, (long long)sb.st_ino);
        /* at the position kept with the watermark: the reading that wrote both goes on (its
         * records of the watermark's second are all before it); a catch-up does not, as the
         * live pipe moves the watermark meanwhile (docs/signals.md) */
        if (st == BP_OK && run->skip_to > 0)
            st = bp_store_signal_acct_resume(run->store);
        int have_next = 0;
        if (st == BP_OK)
            st = follow_file(run, &rot, fd, current, next, sizeof(next), &have_next);
        close(fd);
        run->pos.active = 0;
        run->skip_to = 0;
        if (!have_next)
            break;
        snprintf(current, sizeof(current), "%s", next);
    }
    return st;
}

static void summary(const struct acct_run *run)
{
    if (run->quiet && run->n.malformed == 0 && run->n.no_recipient == 0 && run->n.unknown_type == 0 &&
        run->n.bad_time == 0)
        return;
    char stored[200] = "", extra[200] = "";
    if (!run->env->dry_run)
        snprintf(stored, sizeof(stored), "; stored %lu new, %lu already seen, %lu deliveries applied in %lu commits",
                 run->n.recorded_new, run->n.duplicates, run->n.delivery_resets, run->n.committed_batches);
    if (run->n.mta_suppressed > 0)
        snprintf(extra, sizeof(extra), ", %lu refused by PowerMTA's suppression list", run->n.mta_suppressed);
    if (run->n.bad_time > 0)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", %lu unreadable times", run->n.bad_time);
    if (run->n.skipped > 0)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", %lu read before (skipped)", run->n.skipped);
    acct_note(LOG_INFO,
              "%lu records (%lu headers): %lu events, %lu deliveries, %lu deferrals, %lu ignored, %lu unknown type, "
              "%lu without recipient, %lu malformed lines%s%s",
              run->n.records, run->n.headers, run->n.events, run->n.deliveries, run->n.deferrals, run->n.ignored,
              run->n.unknown_type, run->n.no_recipient, run->n.malformed, extra, stored);
}

static int acct_option(void *user, int opt, const char *arg)
{
    struct acct_run *run = user;
    switch (opt) {
    case 'b': return bp_cli_count_option("acct", "--batch", arg, 1, 100000, &run->batch_option);
    case 't': run->transient = 1; return 0;
    case 'D': run->record_deliveries = 1; return 0;
    case 'q': run->quiet = 1; return 0;
    case 'F': run->follow_path = arg; return 0;
    case 'C': run->catch_up_dir = arg; return 0;
    default: return BP_EXIT_USAGE;
    }
}

/* Set up (the configuration and rules are bp_cli_start()'s): the batch arena, the printer or
 * the store.  @return
 * BP_EXIT_OK to go on, or the exit status. */
static int acct_setup(struct acct_run *run)
{
    bp_cli_env *env = run->env;
    run->batch_arena = bp_cli_arena_new("acct");
    if (run->batch_arena == NULL)
        return BP_EXIT_SOFTWARE;
    if (!env->dry_run)
        return bp_cli_store_ready(env, 0, 0, &run->store);
    bp_writer_format format = bp_cli_event_format(env);
    if (format == BP_WRITER_JSON)
        run->ndjson = bp_writer_new(stdout, BP_WRITER_JSON);
    else
        run->printer = bp_printer_new(stdout, format);
    if (run->ndjson == NULL && run->printer == NULL) {
        bp_cli_error("acct", "out of memory");
        return BP_EXIT_SOFTWARE;
    }
    return BP_EXIT_OK;
}

/* Read standard input (live), the FILEs, the followed file or the catch-up directory.
 * @return the status that ended the run. */
static bp_status acct_read(struct acct_run *run, int n_files, char **files)
{
    bp_status st = BP_OK;
    if (run->follow_path != NULL || (n_files == 0 && run->catch_up_dir == NULL)) {
        log_to_syslog = !isatty(STDERR_FILENO); /* a service or PowerMTA's pipe */
        if (log_to_syslog)
            openlog("bouncepipe", LOG_PID, LOG_MAIL);
    }
    if (run->follow_path != NULL)
        return follow(run, run->follow_path);
    if (run->catch_up_dir != NULL)
        return read_dir(run, run->catch_up_dir, 1);
    if (n_files == 0)
        return read_live(run, STDIN_FILENO, "-");
    for (int i = 0; i < n_files && st == BP_OK && !stop_requested; i++) {
        struct stat sb;
        if (strcmp(files[i], "-") == 0)
            st = read_live(run, STDIN_FILENO, "-");
        else if (stat(files[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            st = read_dir(run, files[i], 0);
        else
            st = read_file(run, files[i], NULL);
    }
    return st;
}

/* What the run comes to: messages, the exit status, the summary. */
static int acct_report(struct acct_run *run, bp_status st)
{
    int rc = BP_EXIT_OK;
    if (st != BP_OK) {
        acct_note(LOG_ERR, "%s%s%s", bp_status_to_string(st), run->store != NULL ? ": " : "",
                  bp_cli_store_error(run->env, run->store));
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

static int acct_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct acct_run *run = user;
    run->env = env;
    int rc = BP_EXIT_OK;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: poll() and read() return so we can finish */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((run->follow_path != NULL) + (run->catch_up_dir != NULL) + (argc > optind) > 1) {
        bp_cli_error("acct", "--follow, --catch-up and FILE operands exclude each other");
        bp_cli_usage(&acct_command, stderr);
        return BP_EXIT_USAGE;
    }
    rc = acct_setup(run);
    if (rc == BP_EXIT_OK)
        rc = acct_report(run, acct_read(run, argc - optind, argv + optind));
    if (log_to_syslog)
        closelog();
    free(run->pending);
    bp_store_close(run->store);
    bp_printer_free(run->printer);
    bp_writer_free(run->ndjson);
    bp_arena_free(run->batch_arena);
    return rc;
}

const bp_cli_entry bp_cli_acct = {&acct_command, acct_option, acct_main, sizeof(struct acct_run), NULL};
