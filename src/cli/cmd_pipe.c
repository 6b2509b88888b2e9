/*
 * cmd_pipe.c - bouncepipe pipe [--rcpt ADDRESS] [--envid ID] [--db PATH] [--config FILE]
 *              [--patterns FILE] [--no-builtin-rules]
 *
 * The MTA's pipe target: one message on standard input, one process per recipient, many at
 * once.  The exit status is the whole protocol with the MTA, so it is 0 or 75, nothing else:
 *   0   the message is safe: its events are in the store (or were already), or nothing was
 *       recognised in it and it is in the quarantine Maildir, to be replayed later;
 *   75  (EX_TEMPFAIL) the MTA must keep the message and retry: usage or configuration error
 *       (a rule file with an invalid rule, a PostgreSQL store without [quarantine] directory
 *       included), started as root with nobody to become (bp_cli_become_user(): [process]
 *       user, else the owner of the store's directory - PowerMTA runs pipes as root by
 *       default), input unreadable, store busy past its timeout, disk full, database or
 *       quarantine unwritable (or a symbolic link in its place).  Nothing half-written is
 *       left: the core records one transaction per message, the quarantine links a synced
 *       file into new/.
 * Reading is bounded (BP_MAX_MESSAGE_BYTES; the rest is read and dropped, so the MTA never
 * sees a broken pipe).  After a message is quarantined, the quarantine is swept
 * (bp_quarantine_sweep(): old tmp/ leftovers, and messages past [quarantine]
 * retention_days).  SIGXFSZ is ignored so that a file size limit is a write error (EFBIG),
 * not a kill.  Each message logs one line to syslog (mail facility; also stderr on a
 * terminal) with the gist of its events; failures are logged and printed on stderr.
 *
 * The message is processed and finished by the core (bp_process_message(),
 * bp_finish_message(): record it, or quarantine it when nothing was recognised); this file
 * reads the command line and the message (pipe_parse(), pipe_run()) and says what became of
 * it (log_outcome()).
 *
 * Ownership: main-like; everything it allocates is released before it returns.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/dmarc.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/process.h"
#include "bouncepipe/quarantine.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/text.h"
#include "cli.h"

/* Events named in the log line; the rest are counted. */
#define LOG_EVENTS_SHOWN 8

static const struct option pipe_options[] = {{"envid", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0}};
static const bp_cli_command pipe_command = {
    "pipe",
    BP_OPT_RCPT | BP_OPT_STORE | BP_OPT_RULES,
    pipe_options,
    0,
    NULL,
    0,
    -1,
    "usage: bouncepipe pipe [--rcpt ADDRESS] [--envid ID] [--db PATH] [--config FILE]\n"
    "                       [--patterns FILE] [--no-builtin-rules]\n"
    "Reads one message on stdin; exits 0 (accepted) or 75 (temporary failure: retry) only.\n",
    BP_CLI_SETUP_NONE,
};

struct pipe_run {
    bp_cli_env env;
    const char *envid;
    char *data;
    size_t len;
    int truncated;
    bp_arena *arena;
    bp_store *store;
};

/* A failure: to syslog and standard error (the MTA may log the latter; a terminal's user
 * reads syslog).  @p fmt is a literal. */
#define pipe_fail(fmt, ...)                                                                                            \
    bp_cli_log("pipe", LOG_ERR, BP_CLI_LOG_SYSLOG | (isatty(STDERR_FILENO) ? 0u : BP_CLI_LOG_STDERR),                  \
               "temporary failure (exit 75): " fmt, ##__VA_ARGS__)

/* Append @p s masked (text.h: syslog and a terminal get no control), at most @p max bytes of
 * it. */
static void put_safe(bp_strbuf *sb, const char *s, size_t max)
{
    if (s == NULL) {
        bp_strbuf_puts(sb, "-");
        return;
    }
    bp_text_mask_append(sb, s, strnlen(s, max), 0);
}

/* The log line of a finished message. */
static void log_outcome(const bp_process_result *res, const bp_finish_result *fin, int truncated)
{
    static const char *const outcomes[] = {
        [BP_FINISHED_RECORDED] = "recorded",
        [BP_FINISHED_DUPLICATE] = "already recorded",
        [BP_FINISHED_UPGRADED] = "recorded (was unrecognised)",
        [BP_FINISHED_QUARANTINED] = "unrecognised, quarantined",
        [BP_FINISHED_KEPT_BEFORE] = "unrecognised, already kept",
    };
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "message ");
    put_safe(&sb, res->message_id, 200);
    bp_strbuf_printf(&sb, " fp=%.16s: %s", res->fingerprint, outcomes[fin->outcome]);
    if (fin->suppressed > 0)
        bp_strbuf_printf(&sb, ", %u newly suppressed", fin->suppressed);
    if (truncated)
        bp_strbuf_puts(&sb, ", truncated at the size limit");
    bp_strbuf_puts(&sb, ";");
    for (size_t i = 0; i < res->n_events && i < LOG_EVENTS_SHOWN; i++) {
        const bp_event *e = &res->events[i];
        const char *action = bp_action_name(e->action);
        bp_strbuf_printf(&sb, " %s ", bp_event_type_name(e->type));
        put_safe(&sb, e->recipient, 320);
        if (e->category != NULL || e->feedback_type != NULL) {
            bp_strbuf_putc(&sb, ' ');
            put_safe(&sb, e->category != NULL ? e->category : e->feedback_type, 40);
        }
        if (e->status != NULL)
            bp_strbuf_printf(&sb, " %s", e->status);
        if (action != NULL)
            bp_strbuf_printf(&sb, " %s", action);
        bp_strbuf_puts(&sb, i + 1 < res->n_events ? "," : "");
    }
    if (res->n_events > LOG_EVENTS_SHOWN)
        bp_strbuf_printf(&sb, " and %zu more", res->n_events - LOG_EVENTS_SHOWN);
    syslog(LOG_INFO, "%s", sb.data != NULL ? sb.data : "message");
    bp_strbuf_free(&sb);
}

/* After keeping a message: remove what killed deliveries left in tmp/ and, with a retention,
 * old messages (at most once per BP_QUARANTINE_SWEEP_INTERVAL).  The message is safe already:
 * a failure here is logged, not answered with 75. */
static void sweep_quarantine(const bp_cli_env *env)
{
    bp_quarantine_sweep_options o = {env->config.quarantine_retention_days, BP_QUARANTINE_SWEEP_INTERVAL};
    bp_quarantine_swept done;
    if (bp_quarantine_sweep(env->pipeline.quarantine_dir, &o, &done) != BP_OK)
        syslog(LOG_WARNING, "sweeping the quarantine %s: %m", env->pipeline.quarantine_dir);
    else if (done.tmp_removed + done.kept_removed > 0)
        syslog(LOG_INFO, "quarantine %s swept: %u unfinished deliveries, %u messages past %u days removed",
               env->pipeline.quarantine_dir, done.tmp_removed, done.kept_removed, o.retention_days);
}

static int pipe_option(void *user, int opt, const char *arg)
{
    struct pipe_run *run = user;
    if (opt != 'e')
        return BP_EXIT_USAGE;
    run->envid = arg;
    return 0;
}

/* The command line.  @return 0 to go on, else a failure already logged. */
static int pipe_parse(struct pipe_run *run, int argc, char **argv)
{
    int rc = bp_cli_parse(&pipe_command, &run->env, argc, argv, pipe_option, run);
    if (rc == BP_EXIT_OK)
        return -1; /* --help */
    if (rc != -1) {
        pipe_fail("usage error: see bouncepipe pipe --help");
        return 1;
    }
    if (optind < argc) {
        bp_cli_usage(&pipe_command, stderr);
        pipe_fail("unexpected argument '%s'", argv[optind]);
        return 1;
    }
    return 0;
}

/* Read, process and finish the message.  @return BP_EXIT_OK, or BP_EXIT_TEMPFAIL after
 * saying why. */
static int pipe_run(struct pipe_run *run)
{
    bp_cli_env *env = &run->env;
    bp_status st = bp_read_stream(stdin, BP_MAX_MESSAGE_BYTES, &run->data, &run->len, &run->truncated);
    if (st != BP_OK) {
        pipe_fail("reading the message: %s", bp_status_to_string(st));
        return BP_EXIT_TEMPFAIL;
    }
    env->refuse_exposed = 1;
    if (bp_cli_env_setup(env) != BP_OK) {
        pipe_fail("configuration or rules could not be loaded (see above)");
        return BP_EXIT_TEMPFAIL;
    }
    if (env->rule_errors > 0) {
        /* a rule file with errors is a configuration error: classifying without the rules an
         * operator wrote would record wrong decisions for good (bouncepipe(1), EXIT STATUS) */
        pipe_fail("%u invalid rule%s in the rule files (see above): fix them (bouncepipe patterns check FILE)",
                  env->rule_errors, env->rule_errors == 1 ? "" : "s");
        return BP_EXIT_TEMPFAIL;
    }
    /* started as root (PowerMTA's run-as-root): become [process] user or the store directory's
     * owner before anything is opened or created; refuse only when there is nobody to become */
    if (bp_cli_become_user(env) != BP_OK) {
        pipe_fail("started as root and could not become an unprivileged user (see above)");
        return BP_EXIT_TEMPFAIL;
    }
    if (env->privileges == 2) {
        pipe_fail("refusing to run as root: the store's directory belongs to root or is not there; set [process] "
                  "user (the MTA's user, e.g. pmta) or give the directory to that user");
        return BP_EXIT_TEMPFAIL;
    }
    if (env->config.quarantine_dir == NULL) {
        pipe_fail("a PostgreSQL store has no directory to keep the quarantine beside: set [quarantine] directory");
        return BP_EXIT_TEMPFAIL;
    }
    env->pipeline.quarantine_dir = env->config.quarantine_dir;
    run->arena = bp_arena_new();
    if (run->arena == NULL) {
        pipe_fail("out of memory");
        return BP_EXIT_TEMPFAIL;
    }
    bp_envelope envelope = {"-", env->rcpt, run->envid};
    bp_process_result res;
    st = bp_process_message(&env->pipeline, &envelope, 0, run->data, run->len, run->arena, &res);
    if (st != BP_OK) {
        /* BP_ERR_UNSUPPORTED: a DMARC report, and its reader module could not be loaded */
        pipe_fail("processing the message: %s",
                  st == BP_ERR_UNSUPPORTED ? bp_dmarc_reader_error() : bp_status_to_string(st));
        return BP_EXIT_TEMPFAIL;
    }
    if (bp_cli_store_open(env, 0, &run->store) != BP_OK) {
        pipe_fail("the store %s cannot be opened", bp_cli_db_shown(env));
        return BP_EXIT_TEMPFAIL;
    }
    bp_finish_result fin;
    st = bp_finish_message(&env->pipeline, run->store, &res, run->data, run->len, &fin);
    if (st != BP_OK) {
        if (fin.step == BP_FINISH_SEEN)
            pipe_fail("reading the store: %s: %s", bp_status_to_string(st), bp_cli_store_error(env, run->store));
        else if (fin.step == BP_FINISH_QUARANTINE)
            pipe_fail("writing to the quarantine %s: %s", env->pipeline.quarantine_dir,
                      fin.error_number == ELOOP ? "a symbolic link is in the way (the quarantine is never written "
                                                  "through one: name the real directory)"
                                                : strerror(fin.error_number));
        else
            pipe_fail("recording in %s: %s: %s", bp_cli_db_shown(env), bp_status_to_string(st),
                      bp_cli_store_error(env, run->store));
        return BP_EXIT_TEMPFAIL;
    }
    log_outcome(&res, &fin, run->truncated);
    if (fin.outcome == BP_FINISHED_QUARANTINED)
        sweep_quarantine(env);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* nothing is printed on stdout; a failure here still means the MTA should not trust us */
        pipe_fail("writing standard output");
        return BP_EXIT_TEMPFAIL;
    }
    return BP_EXIT_OK;
}

int cmd_pipe(int argc, char **argv)
{
    struct pipe_run run;
    memset(&run, 0, sizeof(run));
    signal(SIGXFSZ, SIG_IGN); /* a file size limit must be a write error we can answer with 75 */
    signal(SIGPIPE, SIG_IGN);
    openlog("bouncepipe", LOG_PID | (isatty(STDERR_FILENO) ? LOG_PERROR : 0), LOG_MAIL);

    int rc = pipe_parse(&run, argc, argv);
    if (rc == 0)
        rc = pipe_run(&run);
    else
        rc = rc < 0 ? BP_EXIT_OK : BP_EXIT_TEMPFAIL;

    bp_store_close(run.store);
    bp_arena_free(run.arena);
    free(run.data);
    bp_cli_env_cleanup(&run.env);
    closelog();
    return rc;
}
