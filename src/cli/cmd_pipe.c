/*
 * cmd_pipe.c - bouncepipe pipe [--rcpt ADDRESS] [--envid ID] [--db PATH] [--config FILE]
 *              [--patterns FILE] [--no-builtin-rules]
 *
 * The MTA's pipe target: one message on standard input, one process per recipient, many at
 * once.  The exit status is the whole protocol with the MTA, so it is 0 or 75, nothing else:
 *   0   the message is safe: its events are in the store (or were already), or nothing was
 *       recognised in it and it is in the quarantine Maildir, to be replayed later;
 *   75  (EX_TEMPFAIL) the MTA must keep the message and retry: usage or configuration error,
 *       running as root, input unreadable, store busy past its timeout, disk full, database
 *       or quarantine unwritable.  Nothing half-written is left: the store writes one
 *       transaction per message, the quarantine links a synced file into new/.
 * Reading is bounded (BP_MAX_MESSAGE_BYTES; the rest is read and dropped, so the MTA never
 * sees a broken pipe).  SIGXFSZ is ignored so that a file size limit is a write error (EFBIG),
 * not a kill.  Each message logs one line to syslog (mail facility; also stderr on a
 * terminal) with the gist of its events; failures are logged and printed on stderr.
 *
 * Ownership: main-like; everything it allocates is released before it returns.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/process.h"
#include "bouncepipe/quarantine.h"
#include "bouncepipe/readfile.h"
#include "bouncepipe/text.h"
#include "cli.h"

/* Events named in the log line; the rest are counted. */
#define LOG_EVENTS_SHOWN 8

static void pipe_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe pipe [--rcpt ADDRESS] [--envid ID] [--db PATH] [--config FILE]\n"
                 "                       [--patterns FILE] [--no-builtin-rules]\n"
                 "Reads one message on stdin; exits 0 (accepted) or 75 (temporary failure: retry) only.\n");
}

/* A failure: to syslog and standard error (the MTA may log the latter). */
static void pipe_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pipe_fail(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    syslog(LOG_ERR, "temporary failure (exit 75): %s", line);
    if (!isatty(STDERR_FILENO))
        fprintf(stderr, "bouncepipe: pipe: temporary failure (exit 75): %s\n", line);
}

/* Append @p s with control bytes shown as '?', at most @p max bytes of it. */
static void put_safe(bp_strbuf *sb, const char *s, size_t max)
{
    if (s == NULL) {
        bp_strbuf_puts(sb, "-");
        return;
    }
    for (size_t i = 0; i < max && s[i] != '\0'; i++)
        bp_strbuf_putc(sb, ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i]);
}

static void log_outcome(const bp_process_result *res, const char *outcome, const bp_record_result *rr, int truncated)
{
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "message ");
    put_safe(&sb, res->n_events > 0 ? res->events[0].message_id : NULL, 200);
    bp_strbuf_printf(&sb, " fp=%.16s: %s", res->fingerprint, outcome);
    if (rr != NULL && rr->suppressed > 0)
        bp_strbuf_printf(&sb, ", %u newly suppressed", rr->suppressed);
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

static int all_unrecognized(const bp_process_result *res)
{
    for (size_t i = 0; i < res->n_events; i++)
        if (res->events[i].type != BP_EVENT_UNRECOGNIZED)
            return 0;
    return 1;
}

int cmd_pipe(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rcpt", required_argument, NULL, 'r'},     {"envid", required_argument, NULL, 'e'},
        {"db", required_argument, NULL, 'd'},       {"config", required_argument, NULL, 'c'},
        {"patterns", required_argument, NULL, 'p'}, {"no-builtin-rules", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    bp_cli_env env = {0};
    const char *rcpt = NULL, *envid = NULL;
    char *data = NULL;
    size_t len = 0;
    int truncated = 0, opt, rc = BP_EXIT_TEMPFAIL;
    bp_arena *arena = NULL;
    bp_store *store = NULL;

    signal(SIGXFSZ, SIG_IGN); /* a file size limit must be a write error we can answer with 75 */
    signal(SIGPIPE, SIG_IGN);
    openlog("bouncepipe", LOG_PID | (isatty(STDERR_FILENO) ? LOG_PERROR : 0), LOG_MAIL);

    optind = 1;
    while ((opt = getopt_long(argc, argv, "r:e:d:c:p:Bh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': rcpt = optarg; break;
        case 'e': envid = optarg; break;
        case 'd': env.db = optarg; break;
        case 'c': env.config_file = optarg; break;
        case 'p': env.patterns_file = optarg; break;
        case 'B': env.no_builtin = 1; break;
        case 'h': pipe_usage(stdout); return BP_EXIT_OK;
        default:
            pipe_usage(stderr);
            pipe_fail("usage error: see bouncepipe pipe --help");
            goto out;
        }
    }
    if (optind < argc) {
        pipe_usage(stderr);
        pipe_fail("unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (geteuid() == 0) {
        pipe_fail("refusing to run as root: run the pipe as the MTA's user (for PowerMTA, pmta)");
        goto out;
    }
    bp_status st = bp_read_stream(stdin, BP_MAX_MESSAGE_BYTES, &data, &len, &truncated);
    if (st != BP_OK) {
        pipe_fail("reading the message: %s", bp_status_to_string(st));
        goto out;
    }
    env.refuse_exposed = 1;
    if (bp_cli_env_setup(&env) != BP_OK) {
        pipe_fail("configuration or rules could not be loaded (see above)");
        goto out;
    }
    arena = bp_arena_new();
    if (arena == NULL) {
        pipe_fail("out of memory");
        goto out;
    }
    bp_classify_ctx ctx;
    bp_cli_classify_ctx(&env, rcpt, envid, "-", &ctx);
    bp_process_result res;
    st = bp_process_message(&ctx, &env.config.report, data, len, arena, &res);
    if (st != BP_OK) {
        pipe_fail("processing the message: %s", bp_status_to_string(st));
        goto out;
    }
    if (bp_cli_store_open(&env, "pipe", 0, &store) != BP_OK) {
        pipe_fail("the store %s cannot be opened", bp_cli_db_shown(&env));
        goto out;
    }
    bp_record_result rr;
    memset(&rr, 0, sizeof(rr));
    if (all_unrecognized(&res)) {
        int seen = 0, existed = 0;
        st = bp_store_seen(store, res.fingerprint, &seen);
        if (st != BP_OK) {
            pipe_fail("reading the store: %s: %s", bp_status_to_string(st), bp_cli_store_error(&env, store));
            goto out;
        }
        if (seen != 0) {
            log_outcome(&res, "unrecognised, already kept", NULL, truncated);
            rc = BP_EXIT_OK;
            goto out;
        }
        st = bp_quarantine_write(env.config.quarantine_dir, res.fingerprint, data, len, &existed);
        if (st != BP_OK) {
            pipe_fail("writing to the quarantine %s: %m", env.config.quarantine_dir);
            goto out;
        }
    }
    st = bp_store_begin(store);
    if (st == BP_OK) {
        st = bp_cli_record(store, &res, "-", &rr);
        if (st == BP_OK)
            st = bp_store_commit(store);
        else
            bp_store_rollback(store);
    }
    if (st != BP_OK) {
        pipe_fail("recording in %s: %s: %s", bp_cli_db_shown(&env), bp_status_to_string(st),
                  bp_cli_store_error(&env, store));
        goto out;
    }
    const char *outcome = rr.outcome == BP_RECORD_DUPLICATE  ? "already recorded"
                          : rr.outcome == BP_RECORD_UPGRADED ? "recorded (was unrecognised)"
                          : all_unrecognized(&res)           ? "unrecognised, quarantined"
                                                             : "recorded";
    log_outcome(&res, outcome, &rr, truncated);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* nothing is printed on stdout; a failure here still means the MTA should not trust us */
        pipe_fail("writing standard output");
        goto out;
    }
    rc = BP_EXIT_OK;
out:
    bp_store_close(store);
    bp_arena_free(arena);
    free(data);
    bp_cli_env_cleanup(&env);
    closelog();
    return rc;
}
