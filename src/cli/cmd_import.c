/*
 * cmd_import.c - bouncepipe import [--db PATH] [--config FILE] [--reason TEXT]
 *                [--kind import|manual] [--force] FILE|-
 *
 * Adds an existing suppression list.  The file is either one address per line ('#' starts a
 * comment) or CSV with a header line naming an address column (address, email, e-mail,
 * email_address, recipient; case-insensitive) and optionally a reason column (reason,
 * category); CSV is recognised by a first line with one of those names.  Lines are cut by
 * the one CSV reader (csv.h: one record a line, RFC 4180 quoting within it, a byte-order mark
 * dropped, blank lines skipped); a plain list is read from each record's raw bytes.  The
 * address (the line, or the address cell) must be exactly one valid address
 * (bp_address_parse(): white space and angle brackets around it allowed); anything else - a
 * line of free text, a Latin-1 address that is not UTF-8 - is reported with its line number
 * and why, and skipped, never rewritten into what it holds.  A reason is cleaned like remote
 * text (bp_clean_text()).  Each address is operator evidence of kind "import" (or "manual")
 * dated now.  Addresses an
 * operator removed are left alone unless --force; addresses already suppressed are
 * unchanged, so importing twice changes nothing.  A line that holds no address, or that the
 * reader refuses (too long, a NUL byte), is reported with its line number and skipped.
 * Commits every IMPORT_BATCH addresses.
 * Exit status: 0; 1 when lines were skipped or the store refused for good; 64 usage; 75 store
 * busy or unwritable (the current batch rolled back: run it again); 78 configuration.
 *
 * import_parse() reads the command line, import_run() the file, import_report() the summary.
 *
 * Ownership: the reader owns the bytes of the line being read; addresses are normalised into
 * an arena reset every line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bouncepipe/address.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/csv.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "cli.h"

#define IMPORT_BATCH 1000
/* Bytes read from the file at a time. */
#define IMPORT_READ_CHUNK 65536

static const struct option import_options[] = {{"reason", required_argument, NULL, 'r'},
                                               {"kind", required_argument, NULL, 'k'},
                                               {"force", no_argument, NULL, 'F'},
                                               {NULL, 0, NULL, 0}};
static const bp_cli_command import_command = {
    "import",
    BP_OPT_STORE,
    import_options,
    0,
    NULL,
    1,
    1,
    "usage: bouncepipe import [--db PATH] [--config FILE] [--reason TEXT] [--kind import|manual]\n"
    "                         [--force] FILE|-\n",
    BP_CLI_SETUP_NONE,
};

struct import_run {
    bp_cli_env *env;
    const char *reason, *kind, *path;
    int force;
    bp_store *store;
    bp_arena *arena;
    bp_cli_batch batch;
    size_t added, unchanged, skipped;
    int csv, addr_col, reason_col; /* the first line named the columns */
    unsigned long lineno;          /* of the last line read */
    int done;                      /* the file was read and committed: summarise */
};

static int import_option(void *user, int opt, const char *arg)
{
    struct import_run *run = user;
    switch (opt) {
    case 'r': run->reason = arg; return 0;
    case 'k':
        if (strcmp(arg, BP_KIND_IMPORT) != 0 && strcmp(arg, BP_KIND_MANUAL) != 0) {
            bp_cli_error("import", "--kind is import or manual");
            return BP_EXIT_USAGE;
        }
        run->kind = strcmp(arg, BP_KIND_IMPORT) == 0 ? BP_KIND_IMPORT : BP_KIND_MANUAL;
        return 0;
    case 'F': run->force = 1; return 0;
    default: return BP_EXIT_USAGE;
    }
}

static int is_name(const char *s, const char *const *names)
{
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t i = 0; names[i] != NULL; i++)
        if (strncasecmp(s, names[i], strlen(names[i])) == 0) {
            const char *rest = s + strlen(names[i]);
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest == '\0')
                return 1;
        }
    return 0;
}

/* The first line: a CSV header if it names an address column.  @return non-zero if it was. */
static int take_header(struct import_run *run, const bp_csv_record *rec)
{
    static const char *const address_names[] = {"address", "email", "e-mail", "email_address", "recipient", NULL};
    static const char *const reason_names[] = {"reason", "category", NULL};
    run->reason_col = -1;
    for (size_t i = 0; i < rec->n_fields; i++) {
        if (is_name(rec->fields[i], address_names)) {
            run->csv = 1;
            run->addr_col = (int)i;
        } else if (is_name(rec->fields[i], reason_names)) {
            run->reason_col = (int)i;
        }
    }
    if (!run->csv)
        run->reason_col = -1;
    return run->csv;
}

static void skip_line(struct import_run *run, unsigned long line, const char *why)
{
    fprintf(stderr, "bouncepipe: import: %s:%lu: %s, skipped\n", run->path, line, why);
    run->skipped++;
}

/* One record of the file.  @return the store's status. */
static bp_status import_record(struct import_run *run, const bp_csv_record *rec)
{
    bp_arena_reset(run->arena);
    if (rec->line == 1 && take_header(run, rec))
        return BP_OK;
    const char *text = NULL, *row_reason = run->reason;
    char *line = NULL;
    if (run->csv) {
        if ((size_t)run->addr_col >= rec->n_fields) {
            skip_line(run, rec->line, "no address column");
            return BP_OK;
        }
        text = rec->fields[run->addr_col];
        const char *r = bp_csv_value(rec, run->reason_col);
        if (r != NULL)
            row_reason = r;
    } else {
        line = bp_arena_strndup(run->arena, rec->raw, rec->raw_len); /* a plain list: the line itself */
        if (line == NULL)
            return BP_ERR_NOMEM;
        text = line;
        while (*text == ' ' || *text == '\t')
            text++;
        if (*text == '\0' || *text == '#')
            return BP_OK;
    }
    const char *why = NULL;
    const char *address = bp_address_parse(run->arena, text, &why);
    if (address == NULL) {
        const char *what = bp_arena_printf(run->arena, "no address: %s", why);
        skip_line(run, rec->line, what != NULL ? what : "no address");
        return BP_OK;
    }
    if (row_reason != NULL)
        row_reason = bp_clean_text(run->arena, row_reason, strlen(row_reason), BP_MAX_STORED_NOTE_BYTES);
    bp_status st = bp_cli_batch_begin(&run->batch);
    if (st != BP_OK)
        return st;
    int changed = 0;
    st = bp_store_add(run->store, address, row_reason, run->kind, 0, run->force, &changed);
    if (st != BP_OK)
        return st;
    if (changed)
        run->added++;
    else
        run->unchanged++;
    return bp_cli_batch_done(&run->batch);
}

/* Take every complete record out of the reader.  @return the store's status. */
static bp_status drain(struct import_run *run, bp_csv_reader *reader, int at_eof)
{
    for (;;) {
        bp_csv_record rec;
        bp_csv_outcome outcome;
        bp_status st = bp_csv_reader_next(reader, at_eof, &rec, &outcome);
        if (st != BP_OK || outcome == BP_CSV_NEED_MORE)
            return st;
        run->lineno = rec.line;
        if (outcome == BP_CSV_MALFORMED) {
            skip_line(run, rec.line, rec.error);
            continue;
        }
        st = import_record(run, &rec);
        if (st != BP_OK)
            return st;
    }
}

/* Read the file to its end.  @return the store's status; *read_failed when reading failed. */
static bp_status import_file(struct import_run *run, int fd, int *read_failed)
{
    static const bp_csv_options one_record_a_line = {NULL, 0};
    bp_csv_reader *reader = NULL;
    char *chunk = bp_malloc(IMPORT_READ_CHUNK);
    bp_status st = bp_csv_reader_new(&one_record_a_line, &reader);
    if (st == BP_OK && chunk == NULL)
        st = BP_ERR_NOMEM;
    while (st == BP_OK) {
        ssize_t got = read(fd, chunk, IMPORT_READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            *read_failed = 1;
        if (got <= 0) {
            st = drain(run, reader, 1);
            break;
        }
        st = bp_csv_reader_feed(reader, chunk, (size_t)got);
        if (st == BP_OK)
            st = drain(run, reader, 0);
    }
    if (st == BP_OK)
        st = bp_cli_batch_commit(&run->batch);
    bp_csv_reader_free(reader);
    free(chunk);
    return st;
}

/* Set up, read, commit.  @return the exit status. */
static int import_run(struct import_run *run)
{
    bp_cli_env *env = run->env;
    int fd = strcmp(run->path, "-") == 0 ? STDIN_FILENO : open(run->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bp_cli_error("import", "%s: %s", run->path, strerror(errno));
        return BP_EXIT_FAILURE;
    }
    int rc = BP_EXIT_OK, read_failed = 0;
    run->arena = bp_arena_new();
    if (run->arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
    } else if (bp_cli_config_setup(env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
    } else {
        bp_status st = bp_cli_store_open(env, 0, &run->store);
        run->batch = (bp_cli_batch){run->store, IMPORT_BATCH, 0, 0, 0, 0};
        if (st == BP_OK)
            st = import_file(run, fd, &read_failed);
        run->done = st == BP_OK;
        if (st != BP_OK && run->store != NULL) {
            bp_cli_batch_rollback(&run->batch);
            bp_cli_error("import", "%s:%lu: %s: %s; the current batch was rolled back", run->path, run->lineno,
                         bp_status_to_string(st), bp_cli_store_error(env, run->store));
        }
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        if (rc == BP_EXIT_OK && read_failed) {
            bp_cli_error("import", "%s: read error", run->path);
            rc = BP_EXIT_FAILURE;
        }
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

static int import_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    (void)argc;
    struct import_run *run = user;
    run->env = env;
    run->path = argv[optind];
    int rc = import_run(run);
    if (run->done) {
        fprintf(stderr, "import: %zu added, %zu already suppressed or removed by an operator, %zu lines skipped\n",
                run->added, run->unchanged, run->skipped);
        if (rc == BP_EXIT_OK && run->skipped > 0)
            rc = BP_EXIT_FAILURE;
    }
    bp_cli_batch_rollback(&run->batch);
    bp_store_close(run->store);
    bp_arena_free(run->arena);
    return rc;
}

static const struct import_run import_defaults = {.kind = BP_KIND_IMPORT};

const bp_cli_entry bp_cli_import = {&import_command, import_option, import_main, sizeof(struct import_run),
                                    &import_defaults};
