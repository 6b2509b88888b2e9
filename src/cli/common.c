/*
 * common.c - set-up shared by the subcommands: configuration, rules, the pipeline, the store,
 * exit codes, dates.
 *
 * bp_cli_exit_status()   the one place a failure becomes an exit status (cli.h says how).
 * bp_cli_config_setup()  read the configuration once (config.h says which file); warn about a
 *                        config file that exposes a database password (pipe mode refuses it).
 * bp_cli_env_setup()     configuration, then rules: --patterns, the config's [rules] files,
 *                        then the shipped database (unless --no-builtin-rules or
 *                        [rules] builtin = false); then the pipeline: those rules, the
 *                        config's policy, VERP and report options.
 * bp_cli_become_user()   started as root: become [process] user, else the owner of the
 *                        store's directory, before anything is opened or created (privdrop.h).
 * bp_cli_store_open()    the store at bp_cli_db() with the policy's soft-bounce thresholds,
 *                        after bp_cli_become_user(); every location and backend message
 *                        printed goes through secret.h; bp_cli_store_ready() the same with the
 *                        command's exit status.
 * bp_cli_batch_*()       one transaction over many units, committed by count or age.
 * bp_cli_each_message()  every message of the PATHs of replay and explain, unreadable inputs
 *                        reported and counted.
 * bp_cli_parse_time(), bp_cli_format_time()  dates on the command line and in output;
 * bp_cli_count_option(), bp_cli_time_option()  an option's number or date, or the one usage
 *                        error that names the option and what it wants.
 *
 * Ownership: the env owns the rules and the config (the pipeline borrows both); errors are
 * printed, never returned as text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/clock.h"
#include "bouncepipe/privdrop.h"
#include "bouncepipe/secret.h"
#include "cli.h"

/* One message of command @p cmd, formatted once (on the stack: it must get out when memory is
 * short), to standard error as "bouncepipe: CMD: ..." and to syslog as "CMD: ...". */
static void cli_vlog(const char *cmd, int priority, unsigned where, const char *fmt, va_list ap)
{
    char line[8192];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (where & BP_CLI_LOG_STDERR)
        fprintf(stderr, "bouncepipe: %s: %s\n", cmd, line);
    if (where & BP_CLI_LOG_SYSLOG)
        syslog(priority, "%s: %s", cmd, line);
}

void bp_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vlog(cmd, LOG_ERR, BP_CLI_LOG_STDERR, fmt, ap);
    va_end(ap);
}

void bp_cli_log(const char *cmd, int priority, unsigned where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vlog(cmd, priority, where, fmt, ap);
    va_end(ap);
}

int bp_cli_exit_status(bp_status st, bp_cli_audience who)
{
    if (st == BP_OK)
        return BP_EXIT_OK;
    if (who == BP_CLI_MTA || bp_status_is_transient(st))
        return BP_EXIT_TEMPFAIL;
    switch (st) {
    case BP_ERR_CONFIG:
    case BP_ERR_UNSUPPORTED: return BP_EXIT_CONFIG;
    case BP_ERR_USAGE: return BP_EXIT_USAGE;
    default: return BP_EXIT_FAILURE;
    }
}

bp_status bp_cli_config_setup(bp_cli_env *env)
{
    if (env->config_loaded)
        return BP_OK;
    char *error = NULL;
    bp_status st = bp_config_load(&env->config, env->config_file, &error);
    if (st != BP_OK) {
        bp_cli_error("config", "%s", error != NULL ? error : bp_status_to_string(st));
        free(error);
        return st;
    }
    env->config_loaded = 1;
    bp_config_default_quarantine(&env->config, bp_cli_db(env));
    if (env->config.secret_exposed) {
        bp_cli_error("config",
                     "%s holds a database password and its group or others may read or write it (mode %04o): "
                     "chmod 600 it%s",
                     env->config.file, env->config.file_mode, env->refuse_exposed ? "; refusing to run" : "");
        if (env->refuse_exposed)
            return BP_ERR_CONFIG;
    }
    return BP_OK;
}

static bp_status load_rules(bp_cli_env *env)
{
    bp_status st = bp_rules_new(&env->rules);
    if (st != BP_OK)
        return st;
    unsigned skipped = 0;
    if (env->patterns_file != NULL) {
        st = bp_rules_load_file(env->rules, env->patterns_file, NULL, NULL, &skipped);
        env->rule_errors += skipped;
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s: %s", env->patterns_file, bp_status_to_string(st));
            return st;
        }
    }
    for (char **f = env->config.pattern_files; f != NULL && *f != NULL; f++) {
        skipped = 0;
        st = bp_rules_load_file(env->rules, *f, NULL, NULL, &skipped);
        env->rule_errors += skipped;
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s (from %s): %s", *f, env->config.file, bp_status_to_string(st));
            return st == BP_ERR_NOMEM ? st : BP_ERR_CONFIG;
        }
    }
    if (!env->no_builtin && env->config.builtin_rules)
        st = bp_rules_load_builtin(env->rules, NULL, NULL, NULL);
    return st;
}

bp_status bp_cli_env_setup(bp_cli_env *env)
{
    bp_status st = bp_cli_config_setup(env);
    if (st == BP_OK)
        st = load_rules(env);
    if (st != BP_OK)
        return st;
    env->pipeline.rules = env->rules;
    env->pipeline.policy = env->config.policy;
    env->pipeline.verp = &env->config.verp;
    env->pipeline.report = &env->config.report;
    env->pipeline.signals = &env->config.signals.fields;
    env->pipeline.signal_host = env->config.signals.host;
    env->pipeline.quarantine_dir = NULL;           /* pipe mode sets it: only it quarantines */
    env->pipeline.webhooks = env->config.webhooks; /* recording writes their outbox rows */
    env->pipeline.n_webhooks = env->config.n_webhooks;
    return BP_OK;
}

void bp_cli_env_cleanup(bp_cli_env *env)
{
    bp_rules_free(env->rules);
    env->rules = NULL;
    if (env->config_loaded)
        bp_config_free(&env->config);
    env->config_loaded = 0;
    memset(&env->pipeline, 0, sizeof(env->pipeline));
}

const char *bp_cli_db(const bp_cli_env *env)
{
    if (env->db != NULL)
        return env->db;
    if (env->config_loaded && env->config.db != NULL)
        return env->config.db;
    return BP_CONFIG_DEFAULT_DB;
}

const char *bp_cli_db_shown(bp_cli_env *env)
{
    return bp_secret_mask(bp_cli_db(env), env->shown_db, sizeof(env->shown_db));
}

const char *bp_cli_store_error(bp_cli_env *env, const bp_store *store)
{
    if (store == NULL)
        return "";
    return bp_secret_scrub(bp_store_last_error(store), bp_cli_db(env), env->shown_error, sizeof(env->shown_error));
}

/* The directory whose owner a command started as root becomes: the SQLite store's, or for a
 * PostgreSQL store the quarantine's (the only files pipe mode then writes here; none set:
 * "", nobody to become). */
static void owner_directory(const bp_cli_env *env, char *dir, size_t size)
{
    const char *db = bp_cli_db(env);
    if (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0)
        db = env->config_loaded && env->config.quarantine_dir != NULL ? env->config.quarantine_dir : "";
    else if (snprintf(dir, size, "%s", db) < (int)size) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, size, ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
        return;
    }
    snprintf(dir, size, "%s", db);
}

bp_status bp_cli_become_user(bp_cli_env *env)
{
    if (env->privileges != 0)
        return BP_OK;
    if (geteuid() != 0) {
        env->privileges = 1;
        return BP_OK;
    }
    bp_privdrop_target t;
    char err[600] = "", dir[4096] = ""; /* err may quote the location: never printed (secret.h) */
    bp_status st;
    if (env->config_loaded && env->config.process_user != NULL) {
        st = bp_privdrop_user(env->config.process_user, &t, err, sizeof(err));
        t.how = "[process] user";
    } else {
        owner_directory(env, dir, sizeof(dir));
        st = bp_privdrop_owner(dir, &t, err, sizeof(err));
        t.how = "the owner of the store's directory";
    }
    if (st != BP_OK && env->config_loaded && env->config.process_user != NULL) {
        bp_cli_error(env->cmd, "started as root: [process] user: %s", err);
        return BP_ERR_CONFIG;
    }
    if (st != BP_OK || t.uid == 0) {
        /* the directory is root's, or not there (nothing can be created in it): there is
         * nobody else to be; the command goes on, and its own open says what is wrong */
        env->privileges = 2;
        return BP_OK;
    }
    st = bp_privdrop(&t, err, sizeof(err));
    if (st != BP_OK) { /* err names ids and steps only */
        bp_cli_error(env->cmd, "started as root, becoming uid %lu (%s) failed: %s", (unsigned long)t.uid, t.how, err);
        return BP_ERR_CONFIG;
    }
    env->privileges = 1;
    return BP_OK;
}

bp_status bp_cli_store_open(bp_cli_env *env, int read_only, bp_store **out)
{
    bp_status st0 = bp_cli_become_user(env);
    if (st0 != BP_OK)
        return st0;
    bp_store_options so;
    char *error = NULL;
    bp_store_options_default(&so);
    if (env->config_loaded) {
        so.soft_count = env->config.policy.soft_count;
        so.soft_days = env->config.policy.soft_days;
        so.soft_window = env->config.policy.soft_window;
        so.busy_timeout_ms = env->config.busy_timeout_ms;
    }
    so.read_only = read_only;
    const char *db = bp_cli_db(env);
    bp_status st = bp_store_open(db, &so, out, &error);
    if (st != BP_OK) {
        /* the backend's text may quote the location (libpq echoes a malformed URI) */
        bp_secret_scrub(error != NULL ? error : bp_status_to_string(st), db, env->shown_error,
                        sizeof(env->shown_error));
        if (error != NULL && strstr(error, db) != NULL)
            bp_cli_error(env->cmd, "%s", env->shown_error); /* the backend already named the database */
        else
            bp_cli_error(env->cmd, "%s: %s", bp_cli_db_shown(env), env->shown_error);
    }
    free(error);
    return st;
}

int bp_cli_store_ready(bp_cli_env *env, int read_only, int absent_ok, bp_store **out)
{
    bp_status st = bp_cli_store_open(env, read_only, out);
    if (st == BP_ERR_NOT_FOUND && absent_ok)
        return BP_EXIT_OK;
    return bp_cli_exit_status(st, BP_CLI_OPERATOR);
}

bp_arena *bp_cli_arena_new(const char *cmd)
{
    bp_arena *arena = bp_arena_new();
    if (arena == NULL)
        bp_cli_error(cmd, "out of memory");
    return arena;
}

int bp_cli_store_failed(bp_cli_env *env, const bp_store *store, bp_status st)
{
    bp_cli_error(env->cmd, "%s: %s", bp_status_to_string(st), bp_cli_store_error(env, store));
    return bp_cli_exit_status(st, BP_CLI_OPERATOR);
}

int bp_cli_output(const bp_cli_env *env, bp_status st, const bp_strbuf *sb, const char *path, int mode)
{
    if (st == BP_OK && (sb == NULL || bp_cli_write_file_mode(sb, path, mode) == 0))
        return BP_EXIT_OK;
    bp_cli_error(env->cmd, "writing %s failed: %m", path != NULL ? path : "standard output");
    return BP_EXIT_FAILURE;
}

bp_status bp_cli_end_tx(bp_store *store, bp_status st)
{
    if (store == NULL) /* nothing was opened: nothing to end */
        return st;
    if (st == BP_OK)
        return bp_store_commit(store);
    bp_store_rollback(store);
    return st;
}

bp_status bp_cli_batch_begin(bp_cli_batch *b)
{
    if (b->in_tx)
        return BP_OK;
    bp_status st = bp_store_begin(b->store);
    if (st == BP_OK) {
        b->in_tx = 1;
        b->pending = 0;
        b->started = (long long)time(NULL);
    }
    return st;
}

bp_status bp_cli_batch_commit(bp_cli_batch *b)
{
    if (!b->in_tx)
        return BP_OK;
    b->in_tx = 0;
    b->pending = 0;
    return bp_store_commit(b->store);
}

bp_status bp_cli_batch_done(bp_cli_batch *b)
{
    if (++b->pending >= b->max || (b->seconds > 0 && (long long)time(NULL) - b->started >= b->seconds))
        return bp_cli_batch_commit(b);
    return BP_OK;
}

void bp_cli_batch_rollback(bp_cli_batch *b)
{
    if (b->in_tx)
        bp_store_rollback(b->store);
    b->in_tx = 0;
    b->pending = 0;
}

/* ---- message sources ---------------------------------------------------------------------- */

int bp_cli_each_message(const char *cmd, int n, char **paths, bp_cli_message_fn fn,
                        void (*done)(void *user, const bp_source *src), void *user, int *failures)
{
    for (int i = 0; i < n; i++) {
        bp_source *src = NULL;
        bp_status st = bp_source_open(paths[i], &src);
        if (st != BP_OK) {
            bp_cli_error(cmd, "%s: %s", paths[i], bp_status_to_string(st));
            (*failures)++;
            continue;
        }
        for (;;) {
            bp_source_msg msg;
            int end = 0;
            st = bp_source_next(src, &msg, &end);
            if (end)
                break;
            if (st != BP_OK) {
                bp_cli_error(cmd, "%s: %s", msg.name != NULL ? msg.name : paths[i], bp_status_to_string(st));
                (*failures)++;
                if (st == BP_ERR_NOMEM)
                    break;
                continue;
            }
            int rc = fn(user, src, &msg);
            if (rc != 0) {
                bp_source_close(src);
                return rc;
            }
        }
        if (done != NULL)
            done(user, src);
        bp_source_close(src);
    }
    return 0;
}

/* ---- dates and numbers -------------------------------------------------------------------- */

long long bp_cli_parse_time(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end == '\0')
        return v >= 0 ? v : -1;
    int n = sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec);
    if (n != 3 && n != 6)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (long long)timegm(&tm);
}

char *bp_cli_format_time(long long t, char *buf, size_t size)
{
    return bp_utc_text(t, BP_UTC_TIME, buf, size);
}

char *bp_cli_format_date(long long t, char *buf, size_t size)
{
    return bp_utc_text(t, BP_UTC_DAY, buf, size);
}

const char *const bp_cli_event_formats[] = {"ndjson", "text", "csv", "json", NULL};

bp_writer_format bp_cli_event_format(const bp_cli_env *env)
{
    static const bp_writer_format formats[] = {BP_WRITER_JSON, BP_WRITER_TEXT, BP_WRITER_CSV, BP_WRITER_JSON};
    _Static_assert(sizeof(formats) / sizeof(formats[0]) ==
                       sizeof(bp_cli_event_formats) / sizeof(bp_cli_event_formats[0]) - 1,
                   "a printer format for every name");
    return formats[env->format];
}

void bp_cli_write_fields(bp_writer *w, const bp_cli_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bp_writer_entry_string(w, f[i].key, f[i].value);
}

void bp_cli_write_suppression(bp_writer *w, const bp_suppression *r)
{
    char first[32], last[32], lifted[32];
    bp_writer_entry_string(w, "reason", r->reason);
    bp_writer_entry_string(w, "source_kind", r->source_kind);
    bp_writer_entry_string(w, "first_seen", bp_cli_format_time(r->first_seen, first, sizeof(first)));
    bp_writer_entry_string(w, "last_seen", bp_cli_format_time(r->last_seen, last, sizeof(last)));
    bp_writer_entry_integer(w, "count", r->count);
    bp_writer_entry_boolean(w, "lifted", r->lifted);
    bp_writer_entry_string(w, "lift_reason", r->lifted ? r->lift_reason : NULL);
    bp_writer_entry_string(w, "lifted_at", r->lifted ? bp_cli_format_time(r->lifted_at, lifted, sizeof(lifted)) : NULL);
}

void bp_cli_prometheus_label(bp_strbuf *sb, const char *s)
{
    for (; s != NULL && *s; s++) {
        if (*s == '\\' || *s == '"')
            bp_strbuf_putc(sb, '\\');
        if (*s == '\n') {
            bp_strbuf_puts(sb, "\\n");
            continue;
        }
        bp_strbuf_putc(sb, *s);
    }
}

int bp_cli_write_file_mode(const bp_strbuf *sb, const char *path, int mode)
{
    const char *data = sb->data != NULL ? sb->data : "";
    if (path == NULL || strcmp(path, "-") == 0) {
        fwrite(data, 1, sb->len, stdout);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
        return -1;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    if (mode < 0) {
        mode_t mask = umask(0); /* read it: there is no other way */
        umask(mask);
        mode = (int)(0666 & ~mask);
    }
    FILE *f = fchmod(fd, (mode_t)mode) == 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    int ok = fwrite(data, 1, sb->len, f) == sb->len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

int bp_cli_parse_count(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bp_cli_time_option(const char *cmd, const char *option, const char *arg, long long min, long long *out)
{
    *out = bp_cli_parse_time(arg);
    if (*out >= min)
        return 0;
    bp_cli_error(cmd, "%s: want YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or Unix seconds", option);
    return BP_EXIT_USAGE;
}

int bp_cli_count_option(const char *cmd, const char *option, const char *arg, long min, long max, long *out)
{
    if (bp_cli_parse_count(arg, min, max, out) == 0)
        return 0;
    bp_cli_error(cmd, "%s: want a number from %ld to %ld", option, min, max);
    return BP_EXIT_USAGE;
}
