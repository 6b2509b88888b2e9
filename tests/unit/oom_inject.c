/*
 * oom_inject.c - out-of-memory injection over the whole way of a message, parse -> classify
 * -> record (SQLite's fault injection, libssh's OOM fuzzer): the Nth allocation fails, for N
 * from 1 up to the number of allocations the way needs, and every run must end cleanly.
 *
 * Counted (and failed) allocations: bouncepipe's own (alloc.h's hook: the arena, every
 * malloc/calloc/realloc/strdup of src/), PCRE2's (the one wrapper, regex.c, hands PCRE2 a
 * general context that allocates through bp_malloc()), SQLite's (sqlite3_config() with
 * SQLITE_CONFIG_MALLOC, here), libxml2's (xmlMemSetup(), here) and zlib's (the DMARC reader
 * gives its z_stream bp_calloc()).  Not counted: GLib and GMime (g_malloc() aborts by design:
 * docs/hardening.md), libzip (no allocator hook), the C library's own (stdio buffers).
 *
 * Each case (a fixture through one scope) first runs without a fault, counting the
 * allocations (K) and keeping the reference: what the store holds afterwards (every row of
 * every table, with the times of recording written NOW), or what the DMARC reader read.
 * Then for every N up to ALL_FIRST and SAMPLES further N drawn with a fixed seed from the
 * rest up to K (every N with BP_OOM_ALL=1), the Nth allocation fails once, and for every
 * PERSIST_EVERY-th of them every allocation from the Nth on fails (cleanup paths that
 * allocate meet a failure too).  A run may then end in one of two ways only:
 *   - BP_ERR_NOMEM (the pipe scope: exit 75), with the store exactly as before the run (for
 *     acct: as after some of the records, each whole), PRAGMA integrity_check ok; then a
 *     retry without the fault must succeed and leave exactly the reference (the MTA
 *     retries: nothing is lost), the quarantine holding the message at most once;
 *   - success with exactly the reference (the failure was absorbed: PCRE2 compiling a rule
 *     that the decode of the build's table could not hand out, a benign SQLite allocation).
 * Anything else - another status, another exit code, a different store, a crash - fails the
 * case; a leak is LeakSanitizer's (the ASan build runs this test too).
 *
 * Scopes:
 *   core   what pipe mode does, at the library's level: bp_process_message() -> bp_store_open()
 *          -> bp_finish_message() (quarantine on), with rules freshly loaded before each run
 *          (the PCRE2 decode, compiles and JIT of the run are counted);
 *   pipe   cmd_pipe() in this process, stdin the fixture: configuration, the shipped rules,
 *          reading, the store, exit status 0 or 75 (as root the process first becomes nobody:
 *          pipe mode refuses root);
 *   acct   accounting CSV records -> bp_acct_record_event() -> bp_finish_acct(), one
 *          transaction per record (the acct command commits several at once; a record is
 *          what must be whole);
 *   dmarc  bp_mime_parse() -> bp_dmarc_parse(): gzip, zip and plain XML reports (nothing is
 *          stored: the report read is compared).
 *
 * Knobs for a closer look: BP_OOM_ALL=1 tries every N; BP_OOM_CASE=TEXT runs the cases whose
 * label holds TEXT; BP_OOM_N=N tries that N only and prints a backtrace where it fails;
 * BP_OOM_VERBOSE=1 keeps the runs' stderr and prints each N.
 */
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <grp.h>
#include <libxml/parser.h>
#include <libxml/xmlmemory.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/acct.h"
#include "bouncepipe/acct_csv.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/process.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/store.h"
#include "bouncepipe/text.h"
#include "cli.h"

/* Every N up to ALL_FIRST is tried; beyond it SAMPLES are drawn (BP_OOM_FIRST and
 * BP_OOM_SAMPLES change both: the ASan build, where every run's process costs a leak check,
 * tries fewer). */
#define ALL_FIRST 300ul
#define SAMPLES   120ul
/* Every PERSIST_EVERY-th N is also tried with every allocation from the Nth on failing. */
#define PERSIST_EVERY 5u
#define SEED          20240611u
#define NOBODY        65534
#define PATH_BYTES    512

/* ASan keeps up to 256 MB of freed memory in quarantine; the test's process, which every run's
 * process is forked from, would then grow to 180 MB and every fork and leak check would pay
 * for it (4 times the time).  A run frees far less than 16 MB, so a use after free within
 * it is still caught.  ASAN_OPTIONS=quarantine_size_mb=N overrides this. */
#if defined(__SANITIZE_ADDRESS__)
#define OOM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OOM_ASAN 1
#endif
#endif
#ifdef OOM_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=16";
}
#endif

/* ---- the fault ------------------------------------------------------------------------- */

static struct {
    int armed;
    int persistent;        /* fail every allocation from the Nth on, not the Nth only */
    unsigned long count;   /* allocations since arming */
    unsigned long fail_at; /* 0: count only */
    unsigned long failed;  /* allocations made to fail */
    int trace;             /* print a backtrace where an allocation fails */
} fault;

static int fault_hook(void *user, size_t size)
{
    (void)user;
    if (!fault.armed)
        return 0;
    fault.count++;
    if (fault.fail_at == 0 || fault.count < fault.fail_at || (fault.count > fault.fail_at && !fault.persistent))
        return 0;
    fault.failed++;
    if (fault.trace) { /* BP_OOM_N: where the failed allocation was made */
        void *frames[32];
        fprintf(stderr, "oom_inject: allocation %lu (%zu bytes) fails here:\n", fault.count, size);
        backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
    }
    return 1;
}

static void arm(unsigned long fail_at, int persistent)
{
    fault.count = fault.failed = 0;
    fault.fail_at = fail_at;
    fault.persistent = persistent;
    fault.armed = 1;
}

static void disarm(void)
{
    fault.armed = 0;
}

/* SQLite's allocator, asked about each allocation first (installed before SQLite starts). */
static sqlite3_mem_methods sqlite_default;

static void *sqlite_malloc(int n)
{
    return bp_alloc_should_fail((size_t)n) ? NULL : sqlite_default.xMalloc(n);
}

static void *sqlite_realloc(void *p, int n)
{
    return bp_alloc_should_fail((size_t)n) ? NULL : sqlite_default.xRealloc(p, n);
}

/* libxml2's allocator (installed before libxml2 starts). */
static void *xml_malloc(size_t n)
{
    return bp_alloc_should_fail(n) ? NULL : malloc(n);
}

static void *xml_realloc(void *p, size_t n)
{
    return bp_alloc_should_fail(n) ? NULL : realloc(p, n);
}

static char *xml_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xml_malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void install_allocators(void)
{
    bp_alloc_set_fault(fault_hook, NULL);
    sqlite3_mem_methods mine;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_default) != SQLITE_OK)
        abort();
    mine = sqlite_default;
    mine.xMalloc = sqlite_malloc;
    mine.xRealloc = sqlite_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mine) != SQLITE_OK)
        abort(); /* SQLite was started before main(): the test would count nothing of it */
    if (xmlMemSetup(free, xml_malloc, xml_realloc, xml_strdup) != 0)
        abort();
}

/* ---- files ----------------------------------------------------------------------------- */

static char workdir[256]; /* where stores, the quarantine and the configuration live */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    bp_strbuf sb = {0};
    char chunk[8192];
    size_t got;
    if (f == NULL)
        return NULL;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (bp_strbuf_append(&sb, chunk, got) != BP_OK)
            abort();
    fclose(f);
    *len = sb.len;
    return sb.data != NULL ? sb.data : strdup("");
}

static void write_all(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        fail_msg("writing %s: %s", path, strerror(errno));
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", workdir, name);
}

/* Remove a store and its -wal and -shm. */
static void remove_store(const char *db)
{
    char p[PATH_BYTES + 8];
    unlink(db);
    snprintf(p, sizeof(p), "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db);
    unlink(p);
}

/* Empty the quarantine Maildir (its tmp/ and new/). */
static void clear_quarantine(void)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/quarantine/%s", workdir, subs[i]);
        DIR *d = opendir(dir);
        if (d == NULL)
            continue;
        const struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char p[1024];
            if (de->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
}

static unsigned quarantined(void)
{
    char dir[512];
    unsigned n = 0;
    snprintf(dir, sizeof(dir), "%s/quarantine/new", workdir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- the store as text ----------------------------------------------------------------- */

/* Append @p v with every number that is a time within two days of now (a message without a
 * Date is dated when it is recorded; the ledger notes when it recorded) written "NOW". */
static void put_masked(bp_strbuf *out, const char *v)
{
    long long now = (long long)time(NULL);
    while (*v != '\0') {
        size_t digits = strspn(v, "0123456789");
        if (digits == 0) {
            bp_strbuf_putc(out, *v++);
            continue;
        }
        long long t = strtoll(v, NULL, 10);
        if (digits == 10 && t > now - 2 * 86400 && t < now + 2 * 86400)
            bp_strbuf_puts(out, "NOW");
        else
            bp_strbuf_append(out, v, digits);
        v += digits;
    }
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One table's rows, each as one line, sorted. */
static void dump_table(sqlite3 *db, const char *table, bp_strbuf *out)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("dump %s: %s", table, sqlite3_errmsg(db));
    char **rows = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bp_strbuf row = {0};
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const unsigned char *v = sqlite3_column_text(st, c);
            bp_strbuf_printf(&row, "%s=", sqlite3_column_name(st, c));
            put_masked(&row, v != NULL ? (const char *)v : "NULL");
            bp_strbuf_putc(&row, '|');
        }
        rows = realloc(rows, (n + 1) * sizeof(*rows));
        if (rows == NULL || row.data == NULL)
            abort();
        rows[n++] = row.data;
    }
    if (rc != SQLITE_DONE)
        fail_msg("dump %s: %s", table, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (n > 1) /* rows is NULL for an empty table */
        qsort(rows, n, sizeof(*rows), cmp_lines);
    bp_strbuf_printf(out, "[%s] %zu rows\n", table, n);
    for (size_t i = 0; i < n; i++) {
        bp_strbuf_printf(out, "%s\n", rows[i]);
        free(rows[i]);
    }
    free(rows);
}

/* Everything the store @p db holds, as text (no fault is armed while it is read), after
 * PRAGMA integrity_check; "(no store)" when the file does not exist. */
static void dump_store(const char *db_path, bp_strbuf *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    bp_strbuf_clear(out);
    if (stat(db_path, &sb) != 0) {
        bp_strbuf_puts(out, "(no store)\n");
        return;
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fail_msg("opening %s: %s", db_path, sqlite3_errmsg(db));
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        fail_msg("integrity_check of %s: %s", db_path, sqlite3_errmsg(db));
    const char *ok = (const char *)sqlite3_column_text(st, 0);
    if (ok == NULL || strcmp(ok, "ok") != 0)
        fail_msg("integrity_check of %s: %s", db_path, ok != NULL ? ok : "(null)");
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1, &st, NULL) !=
        SQLITE_OK)
        fail_msg("listing the tables of %s: %s", db_path, sqlite3_errmsg(db));
    char *tables[64];
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 64)
        tables[n++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        dump_table(db, tables[i], out);
        free(tables[i]);
    }
    sqlite3_close(db);
}

/* ---- the DMARC report as text ---------------------------------------------------------- */

static const char *or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

static void dump_dmarc(const bp_dmarc_report *r, bp_strbuf *out)
{
    bp_strbuf_clear(out);
    bp_strbuf_printf(out, "outcome=%s refusal=%d reason=%s packing=%s xml=%zu\n", bp_dmarc_outcome_name(r->outcome),
                     (int)r->refusal, or_dash(r->reason), bp_dmarc_packing_name(r->packing), r->xml_bytes);
    bp_strbuf_printf(out, "org=%s id=%s domain=%s p=%s range=%lld-%lld messages=%llu pass=%llu errors=%zu\n",
                     or_dash(r->org_name), or_dash(r->report_id), or_dash(r->domain), or_dash(r->p),
                     (long long)r->begin, (long long)r->end, (unsigned long long)r->messages,
                     (unsigned long long)r->messages_pass, r->n_errors);
    for (size_t i = 0; i < r->n_records; i++) {
        const bp_dmarc_record *rec = &r->records[i];
        bp_strbuf_printf(out,
                         "record ip=%s count=%llu disposition=%s dkim=%s spf=%s from=%s reasons=%zu dkims=%zu "
                         "spfs=%zu\n",
                         or_dash(rec->source_ip), (unsigned long long)rec->count, or_dash(rec->disposition),
                         or_dash(rec->dkim), or_dash(rec->spf), or_dash(rec->header_from), rec->n_reasons, rec->n_dkim,
                         rec->n_spf);
        for (size_t k = 0; k < rec->n_dkim; k++)
            bp_strbuf_printf(out, "  dkim %s %s %s\n", or_dash(rec->dkim_results[k].domain),
                             or_dash(rec->dkim_results[k].selector), or_dash(rec->dkim_results[k].result));
    }
}

/* ---- the cases ------------------------------------------------------------------------- */

typedef enum scope { SCOPE_CORE, SCOPE_PIPE, SCOPE_ACCT, SCOPE_DMARC } scope;

typedef struct oom_case {
    const char *label;
    scope scope;
    const char *fixture; /* under the source tree */
    const char *rcpt;    /* the envelope recipient (--rcpt), or NULL */
} oom_case;

/* How a run ended. */
typedef enum ending { ENDED_OK, ENDED_NOMEM, ENDED_OTHER } ending;

/* What one case works with. */
typedef struct oom_run {
    const oom_case *c;
    char *input; /* the fixture's bytes */
    size_t len;
    char db[PATH_BYTES];       /* the store of the run */
    char template[PATH_BYTES]; /* an empty store: each run starts from a copy */
    char input_path[PATH_BYTES];
    char config[PATH_BYTES];
    bp_strbuf dmarc; /* the DMARC scope's result */
    int other;       /* ENDED_OTHER: the status or exit code */
    char why[512];   /* ENDED_OTHER: the store's error, when there is one */
    int max_units;   /* acct: stop after this many transactions (0: none) */
    int units;       /* acct: transactions committed */
} oom_run;

/* A failure of the test's own doing inside a run's process (cmocka's fail_msg() belongs to the
 * test's process): say it and die, which the test reports. */
static void child_abort(const char *what)
{
    fprintf(stderr, "oom_inject: %s\n", what);
    abort();
}

static void quiet(void *user, const char *message)
{
    (void)user;
    (void)message;
}

static int verbose(void)
{
    const char *v = getenv("BP_OOM_VERBOSE");
    return v != NULL && v[0] == '1';
}

static ending status_ending(oom_run *r, bp_status st)
{
    if (st == BP_OK)
        return ENDED_OK;
    if (st == BP_ERR_NOMEM)
        return ENDED_NOMEM;
    r->other = (int)st;
    return ENDED_OTHER;
}

/* What the core and acct scopes work with: the shipped rules in a pipeline (made before the
 * faults are armed), and the arena, the store and its error of one run. */
typedef struct run_state {
    bp_rules *rules;
    bp_pipeline p;
    bp_arena *arena;
    bp_store *store;
    char *error;
} run_state;

/* Load the rules into the pipeline (before the faults are armed). */
static void scope_init(run_state *s)
{
    memset(s, 0, sizeof(*s));
    if (bp_rules_new(&s->rules) != BP_OK || bp_rules_load_builtin(s->rules, quiet, NULL, NULL) != BP_OK)
        child_abort("the shipped rules do not load");
    bp_pipeline_init(&s->p);
    s->p.rules = s->rules;
}

/* Arm the faults (when @p armed) and make the arena; @return BP_OK or BP_ERR_NOMEM. */
static bp_status scope_arm(run_state *s, int armed, unsigned long fail_at, int persistent)
{
    if (armed)
        arm(fail_at, persistent);
    s->arena = bp_arena_new();
    return s->arena != NULL ? BP_OK : BP_ERR_NOMEM;
}

/* Open the run's store (the default options). */
static bp_status scope_open_store(run_state *s, oom_run *r)
{
    bp_store_options so;
    bp_store_options_default(&so);
    return bp_store_open(r->db, &so, &s->store, &s->error);
}

/* Free what @p s holds, disarm, and say how the run with status @p st ended. */
static ending scope_end(run_state *s, oom_run *r, bp_status st)
{
    bp_store_close(s->store);
    free(s->error);
    bp_arena_free(s->arena);
    disarm();
    bp_rules_free(s->rules);
    return status_ending(r, st);
}

/* The core scope: what cmd_pipe() does with the message, at the library's level. */
static ending run_core(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    char qdir[512];
    path_in(qdir, sizeof(qdir), "quarantine");
    bp_envelope env = {"-", r->c->rcpt, NULL};
    bp_process_result res;
    bp_finish_result fin;
    run_state s;
    scope_init(&s);
    s.p.quarantine_dir = qdir;
    bp_status st = scope_arm(&s, armed, fail_at, persistent);
    if (st == BP_OK)
        st = bp_process_message(&s.p, &env, 0, r->input, r->len, s.arena, &res);
    if (st == BP_OK)
        st = scope_open_store(&s, r);
    if (st == BP_OK)
        st = bp_finish_message(&s.p, s.store, &res, r->input, r->len, &fin);
    if (st != BP_OK && st != BP_ERR_NOMEM)
        snprintf(r->why, sizeof(r->why), "%s",
                 s.error != NULL   ? s.error
                 : s.store != NULL ? bp_store_last_error(s.store)
                                   : "");
    return scope_end(&s, r, st);
}

/* The pipe scope: the command itself, in this process. */
static ending run_pipe(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    char *argv[8] = {"pipe", "--config", r->config, "--db", r->db, NULL, NULL, NULL};
    int argc = 5;
    if (r->c->rcpt != NULL) {
        argv[argc++] = "--rcpt";
        argv[argc++] = (char *)r->c->rcpt;
    }
    if (freopen(r->input_path, "rb", stdin) == NULL)
        child_abort(r->input_path);
    int saved_err = -1;
    if (!verbose()) { /* every failure says why on stderr: thousands of lines */
        fflush(stderr);
        saved_err = dup(STDERR_FILENO);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    if (armed)
        arm(fail_at, persistent);
    int rc = cmd_pipe(argc, argv);
    disarm();
    if (saved_err >= 0) {
        fflush(stderr);
        dup2(saved_err, STDERR_FILENO);
        close(saved_err);
    }
    if (rc == 0)
        return ENDED_OK;
    if (rc == 75)
        return ENDED_NOMEM;
    r->other = rc;
    return ENDED_OTHER;
}

/* The acct scope: every record of the CSV, one transaction each. */
static ending run_acct(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    bp_acct_reader *reader = NULL;
    r->units = 0;
    run_state s;
    scope_init(&s);
    bp_acct_options ao;
    bp_pipeline_acct_options(&s.p, "acct.csv", 0, &ao);
    bp_status st = scope_arm(&s, armed, fail_at, persistent);
    if (st == BP_OK)
        st = scope_open_store(&s, r);
    if (st == BP_OK)
        st = bp_acct_reader_new(&reader);
    if (st == BP_OK)
        st = bp_acct_reader_feed(reader, r->input, r->len);
    while (st == BP_OK) {
        bp_csv_record raw;
        bp_acct_record rec;
        bp_csv_outcome outcome;
        bp_acct_result res;
        bp_acct_kept kept;
        st = bp_acct_reader_next(reader, 1, &raw, &rec, &outcome);
        if (st != BP_OK || outcome == BP_CSV_NEED_MORE)
            break;
        if (outcome != BP_CSV_RECORD)
            continue;
        bp_arena_reset(s.arena);
        st = bp_acct_record_event(&ao, &rec, s.arena, &res);
        if (st != BP_OK || res.disposition == BP_ACCT_IGNORED || res.disposition == BP_ACCT_NO_RECIPIENT)
            continue;
        st = bp_store_begin(s.store);
        if (st != BP_OK)
            break;
        st = bp_finish_acct(&s.p, s.store, &res, 0, &kept);
        if (st == BP_OK)
            st = bp_store_commit(s.store);
        else
            bp_store_rollback(s.store);
        if (st == BP_OK && ++r->units == r->max_units)
            break;
    }
    bp_acct_reader_free(reader);
    return scope_end(&s, r, st);
}

/* The DMARC scope: the message parsed, the report read. */
static ending run_dmarc(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    bp_dmarc_report rep;
    if (armed)
        arm(fail_at, persistent);
    bp_status st = BP_ERR_NOMEM;
    bp_arena *arena = bp_arena_new();
    if (arena != NULL) {
        bp_mime_message msg;
        memset(&rep, 0, sizeof(rep));
        st = bp_mime_parse(r->input, r->len, arena, &msg);
        if (st == BP_OK)
            st = bp_dmarc_read_message(&msg, &bp_dmarc_reader_module, arena, &rep);
    }
    disarm();
    if (st == BP_OK)
        dump_dmarc(&rep, &r->dmarc);
    bp_arena_free(arena);
    return status_ending(r, st);
}

static ending run_here(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    switch (r->c->scope) {
    case SCOPE_CORE: return run_core(r, armed, fail_at, persistent);
    case SCOPE_PIPE: return run_pipe(r, armed, fail_at, persistent);
    case SCOPE_ACCT: return run_acct(r, armed, fail_at, persistent);
    case SCOPE_DMARC: return run_dmarc(r, armed, fail_at, persistent);
    }
    return ENDED_OTHER;
}

/* What a run's process tells the test: the ending and the counts, then dmarc_len bytes of the
 * DMARC report read. */
struct run_report {
    int ending, other, units;
    unsigned long count, failed;
    size_t dmarc_len;
    char why[512];
};

static int write_full(int fd, const void *p, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, (const char *)p + done, n - done);
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

static int read_full(int fd, void *p, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t got = read(fd, (char *)p + done, n - done);
        if (got <= 0)
            return -1;
        done += (size_t)got;
    }
    return 0;
}

/* One run, in a process of its own: every run starts from the state a pipe-mode process starts
 * from (no PCRE2 context, no decoded tables, no JSON connection of the ESP reader made by an
 * earlier run: what is made once per process fails in the run that makes it), and a leak of
 * the run is LeakSanitizer's finding at that process's exit. */
static ending run_once(oom_run *r, int armed, unsigned long fail_at, int persistent)
{
    int fd[2];
    if (pipe(fd) != 0)
        fail_msg("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* cmocka turns these into a failed test and runs the next one: in a run's process that
         * would be a second test run, with the fault armed */
        static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
        for (size_t i = 0; i < sizeof(crashes) / sizeof(crashes[0]); i++)
            signal(crashes[i], SIG_DFL);
        close(fd[0]);
        struct run_report rep;
        memset(&rep, 0, sizeof(rep));
        bp_strbuf_clear(&r->dmarc);
        rep.ending = (int)run_here(r, armed, fail_at, persistent);
        rep.other = r->other;
        rep.units = r->units;
        rep.count = fault.count;
        rep.failed = fault.failed;
        rep.dmarc_len = r->dmarc.len;
        snprintf(rep.why, sizeof(rep.why), "%s", r->why);
        if (write_full(fd[1], &rep, sizeof(rep)) != 0 || write_full(fd[1], r->dmarc.data, r->dmarc.len) != 0)
            _exit(3);
        close(fd[1]);
        exit(0); /* not _exit(): LeakSanitizer looks for leaks at exit */
    }
    close(fd[1]);
    struct run_report rep;
    int got = read_full(fd[0], &rep, sizeof(rep));
    bp_strbuf_clear(&r->dmarc);
    if (got == 0 && rep.dmarc_len > 0) {
        char *buf = malloc(rep.dmarc_len);
        got = buf != NULL ? read_full(fd[0], buf, rep.dmarc_len) : -1;
        if (got == 0)
            bp_strbuf_append(&r->dmarc, buf, rep.dmarc_len);
        free(buf);
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const char *what = persistent ? " and on" : "";
    if (WIFSIGNALED(status))
        fail_msg("%s: allocation %lu%s failed: the run died of signal %d (a crash; see above)", r->c->label, fail_at,
                 what, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0 || got != 0)
        fail_msg("%s: allocation %lu%s failed: the run exited %d (LeakSanitizer exits 23: a leak, see above)",
                 r->c->label, fail_at, what, WEXITSTATUS(status));
    fault.count = rep.count;
    fault.failed = rep.failed;
    r->other = rep.other;
    r->units = rep.units;
    snprintf(r->why, sizeof(r->why), "%s", rep.why);
    return (ending)rep.ending;
}

/* Back to the state before a run: an empty store, an empty quarantine. */
static void reset(oom_run *r)
{
    if (r->c->scope == SCOPE_DMARC) {
        bp_strbuf_clear(&r->dmarc);
        return;
    }
    remove_store(r->db);
    size_t len = 0;
    char *bytes = read_all(r->template, &len);
    if (bytes == NULL)
        fail_msg("%s: %s", r->template, strerror(errno));
    write_all(r->db, bytes, len);
    free(bytes);
    clear_quarantine();
}

/* What a run left: the store (or the DMARC report read). */
static void state(oom_run *r, bp_strbuf *out)
{
    if (r->c->scope == SCOPE_DMARC) {
        bp_strbuf_clear(out);
        bp_strbuf_puts(out, r->dmarc.data != NULL ? r->dmarc.data : "");
        return;
    }
    dump_store(r->db, out);
}

/* Where @p got and @p want first differ: the line, and both from the field that differs (a
 * static buffer). */
static const char *first_difference(const char *got, const char *want)
{
    static char buf[2400];
    size_t at = 0, line_start = 0, field = 0, line = 1;
    while (got[at] != '\0' && got[at] == want[at]) {
        if (got[at] == '\n') {
            line_start = field = at + 1;
            line++;
        } else if (got[at] == '|') {
            field = at + 1;
        }
        at++;
    }
    int head = (int)(field - line_start), got_len = (int)strcspn(got + field, "\n"),
        want_len = (int)strcspn(want + field, "\n");
    snprintf(buf, sizeof(buf), "line %zu: %.*s\n  got:  %.*s\n  want: %.*s", line, head > 200 ? 200 : head,
             got + line_start, got_len > 600 ? 600 : got_len, got + field, want_len > 600 ? 600 : want_len,
             want + field);
    return buf;
}

static const char *ending_name(ending e)
{
    return e == ENDED_OK ? "success" : e == ENDED_NOMEM ? "out of memory" : "another failure";
}

/* A count from the environment variable @p name, or @p dflt. */
static unsigned long knob(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? strtoul(v, NULL, 10) : dflt;
}

/* The allocation numbers to fail: 1..first, then samples drawn from the rest and the last. */
static size_t plan(unsigned long k, unsigned long **out)
{
    const char *all = getenv("BP_OOM_ALL"), *one = getenv("BP_OOM_N");
    unsigned long first = knob("BP_OOM_FIRST", ALL_FIRST), samples = knob("BP_OOM_SAMPLES", SAMPLES);
    size_t n = 0;
    unsigned long *v = malloc((first + samples + 2 + (all != NULL ? k : 0)) * sizeof(*v));
    if (v == NULL)
        abort();
    if (one != NULL && one[0] != '\0') { /* one N, with a backtrace where it fails */
        v[n++] = strtoul(one, NULL, 10);
        fault.trace = 1;
        *out = v;
        return n;
    }
    if (all != NULL && all[0] == '1') {
        for (unsigned long i = 1; i <= k; i++)
            v[n++] = i;
        *out = v;
        return n;
    }
    for (unsigned long i = 1; i <= k && i <= first; i++)
        v[n++] = i;
    if (k > first) {
        unsigned long long x = SEED;
        unsigned long span = k - first;
        for (unsigned long i = 0; i < samples && i < span; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull; /* a fixed LCG: the same N every run */
            v[n++] = first + 1 + (unsigned long)((x >> 33) % span);
        }
        v[n++] = k;
    }
    *out = v;
    return n;
}

static void setup_files(oom_run *r)
{
    char src[1024];
    snprintf(src, sizeof(src), "%s/%s", BP_SOURCE_DIR, r->c->fixture);
    r->input = read_all(src, &r->len);
    if (r->input == NULL)
        fail_msg("%s: %s", src, strerror(errno));
    path_in(r->db, sizeof(r->db), "store.db");
    path_in(r->template, sizeof(r->template), "empty.db");
    path_in(r->input_path, sizeof(r->input_path), "message");
    path_in(r->config, sizeof(r->config), "bouncepipe.conf");
    write_all(r->input_path, r->input, r->len);
    if (r->c->scope == SCOPE_DMARC)
        return;
    /* the empty store every run starts from */
    char conf[1024];
    int n = snprintf(conf, sizeof(conf), "[store]\nbusy_timeout_ms = 10000\n[quarantine]\ndirectory = %s/quarantine\n",
                     workdir);
    write_all(r->config, conf, (size_t)n);
    remove_store(r->template);
    bp_store_options so;
    bp_store_options_default(&so);
    bp_store *s = NULL;
    char *error = NULL;
    if (bp_store_open(r->template, &so, &s, &error) != BP_OK)
        fail_msg("creating %s: %s", r->template, error != NULL ? error : "?");
    bp_store_close(s);
}

static void oom_case_run(void **state_)
{
    oom_run r;
    memset(&r, 0, sizeof(r));
    r.c = *state_;
    setup_files(&r);
    bp_strbuf pristine = {0}, reference = {0}, got = {0};

    /* the reference: a run without a fault, counting the allocations */
    reset(&r);
    state(&r, &pristine);
    ending e = run_once(&r, 1, 0, 0);
    unsigned long k = fault.count;
    if (e != ENDED_OK)
        fail_msg("%s: the run without a fault ended in %s (%d)", r.c->label, ending_name(e), r.other);
    state(&r, &reference);
    unsigned q_ref = quarantined();
    if (r.c->scope != SCOPE_DMARC && strcmp(pristine.data, reference.data) == 0)
        fail_msg("%s: the run recorded nothing: the test would prove nothing", r.c->label);
    /* and again: the reference does not depend on the moment */
    reset(&r);
    run_once(&r, 0, 0, 0);
    state(&r, &got);
    if (strcmp(got.data, reference.data) != 0)
        fail_msg("%s: two runs without a fault differ:\n%s\n---\n%s", r.c->label, reference.data, got.data);
    /* acct commits a transaction per record: a failure may leave the first records in, each
     * whole; prefix[j] is the store after the first j (prefix[0] the empty one) */
    int units = r.units;
    bp_strbuf *prefix = calloc((size_t)units + 1, sizeof(*prefix));
    if (prefix == NULL)
        abort();
    bp_strbuf_puts(&prefix[0], pristine.data);
    for (int j = 1; j < units && r.c->scope == SCOPE_ACCT; j++) {
        reset(&r);
        r.max_units = j;
        run_once(&r, 0, 0, 0);
        state(&r, &prefix[j]);
    }
    r.max_units = 0;

    unsigned long *ns = NULL;
    size_t n_plan = plan(k, &ns);
    unsigned long tried = 0, absorbed = 0, nomem = 0, persisted = 0;
    for (size_t i = 0; i < n_plan; i++) {
        for (int persistent = 0; persistent <= (i % PERSIST_EVERY == PERSIST_EVERY - 1); persistent++) {
            unsigned long n = ns[i];
            reset(&r);
            e = run_once(&r, 1, n, persistent);
            unsigned long failed = fault.failed;
            if (verbose())
                fprintf(stderr, "%s: N=%lu%s: %s (%lu allocations, %lu failed)\n", r.c->label, n,
                        persistent ? " on" : "", ending_name(e), fault.count, failed);
            tried++;
            persisted += (unsigned long)persistent;
            if (e == ENDED_OTHER)
                fail_msg("%s: allocation %lu%s failed: the run ended in status/exit %d, not out of memory (%s)",
                         r.c->label, n, persistent ? " and on" : "", r.other, r.why);
            state(&r, &got);
            if (e == ENDED_OK) {
                if (strcmp(got.data, reference.data) != 0)
                    fail_msg("%s: allocation %lu%s failed (%lu failures), the run succeeded, but left another "
                             "result: %s",
                             r.c->label, n, persistent ? " and on" : "", failed,
                             first_difference(got.data, reference.data));
                if (failed > 0)
                    absorbed++;
                if (quarantined() != q_ref)
                    fail_msg("%s: allocation %lu failed: %u messages in the quarantine, want %u", r.c->label, n,
                             quarantined(), q_ref);
                continue;
            }
            if (failed == 0)
                fail_msg("%s: N=%lu: out of memory without a failed allocation", r.c->label, n);
            nomem++;
            if (r.c->scope == SCOPE_DMARC)
                continue;
            int whole = strcmp(got.data, pristine.data) == 0;
            for (int j = 1; j < units && !whole && r.c->scope == SCOPE_ACCT; j++)
                whole = strcmp(got.data, prefix[j].data) == 0;
            if (!whole)
                fail_msg("%s: allocation %lu%s failed: out of memory, but the store changed: %s", r.c->label, n,
                         persistent ? " and on" : "", first_difference(got.data, pristine.data));
            /* the MTA retries: then everything must be there, once */
            e = run_once(&r, 0, 0, 0);
            state(&r, &got);
            if (e != ENDED_OK || strcmp(got.data, reference.data) != 0)
                fail_msg("%s: allocation %lu failed, and the retry ended in %s with:\n%s\n--- want ---\n%s", r.c->label,
                         n, ending_name(e), got.data, reference.data);
            if (quarantined() != q_ref)
                fail_msg("%s: after allocation %lu failed and a retry: %u messages in the quarantine, want %u",
                         r.c->label, n, quarantined(), q_ref);
        }
    }
    printf("%s: %lu allocations; %lu runs (%lu persistent): %lu out of memory, %lu absorbed\n", r.c->label, k, tried,
           persisted, nomem, absorbed);
    free(ns);
    for (int j = 0; j <= units; j++)
        bp_strbuf_free(&prefix[j]);
    free(prefix);
    bp_strbuf_free(&pristine);
    bp_strbuf_free(&reference);
    bp_strbuf_free(&got);
    bp_strbuf_free(&r.dmarc);
    free(r.input);
    if (r.c->scope != SCOPE_DMARC) {
        remove_store(r.db);
        remove_store(r.template);
    }
    clear_quarantine();
}

static const oom_case cases[] = {
    {"core dsn", SCOPE_CORE, "fixtures/dsn/postfix-multi-recipient.eml", NULL},
    {"core arf", SCOPE_CORE, "fixtures/arf/yahoo-abuse.eml", NULL},
    {"core text", SCOPE_CORE, "fixtures/text/gmx-german.eml", "bounces-jdoe=example.com@bounces.example.org"},
    {"core unrecognized", SCOPE_CORE, "fixtures/broken/headers-only.msg", NULL},
    {"pipe dsn", SCOPE_PIPE, "fixtures/dsn/gmail-user-unknown.eml", "bounces-jdoe=example.com@bounces.example.org"},
    {"acct", SCOPE_ACCT, "fixtures/acct/pmta5-default-crlf.csv", NULL},
    {"dmarc gzip", SCOPE_DMARC, "fixtures/dmarc/fastmail.eml", NULL},
    {"dmarc zip", SCOPE_DMARC, "fixtures/dmarc/google.eml", NULL},
    {"dmarc xml", SCOPE_DMARC, "fixtures/dmarc/small-text-xml.eml", NULL},
};

/* As root: become nobody (pipe mode refuses root), keeping a work directory nobody owns. */
static void drop_root(void)
{
    if (geteuid() != 0)
        return;
    if (chown(workdir, NOBODY, NOBODY) != 0 || setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
        fprintf(stderr, "oom_inject: cannot become nobody: %s\n", strerror(errno));
        exit(1);
    }
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0); /* LeakSanitizer reads /proc/self */
}

static void remove_workdir(void)
{
    char p[512];
    clear_quarantine();
    static const char *const names[] = {"quarantine/tmp", "quarantine/new", "quarantine/cur",
                                        "quarantine",     "message",        "bouncepipe.conf"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_in(p, sizeof(p), names[i]);
        if (rmdir(p) != 0)
            unlink(p);
    }
    rmdir(workdir);
}

int main(void)
{
    install_allocators(); /* before SQLite and libxml2 start */
    bp_mime_init();
    /* in memory when there is /dev/shm: every run commits with synchronous=FULL, and what is
     * tested here is memory, not the disk (tests/system/pipe_failures.py tests the disk) */
    const char *tmp = getenv("TMPDIR");
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(workdir, sizeof(workdir), "%s/bp-oom.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(workdir) == NULL) {
        fprintf(stderr, "oom_inject: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    chmod(workdir, 0755);
    drop_root();
    unsetenv("BOUNCEPIPE_CONFIG");
    unsetenv("BOUNCEPIPE_DB");

    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];
    size_t n = 0;
    const char *only = getenv("BP_OOM_CASE");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (only == NULL || strstr(cases[i].label, only) != NULL)
            tests[n++] = (struct CMUnitTest){cases[i].label, oom_case_run, NULL, NULL, (void *)&cases[i]};
    int failed = _cmocka_run_group_tests("oom_inject", tests, n, NULL, NULL);
    remove_workdir();
    return failed;
}
