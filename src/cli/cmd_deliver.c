/*
 * cmd_deliver.c - bouncepipe deliver [--once] [--verbose] [--db LOCATION] [--config FILE]
 *                 bouncepipe deliver --status [--format text|json]
 *                 bouncepipe deliver --retry-dead [ENDPOINT]
 *
 * Drains the store's webhook outbox (docs/webhooks.md): the rows recording wrote for the
 * configured [webhook NAME] endpoints are posted by the delivery loop (deliver.h), signed,
 * retried with back-off, dead after [deliver] dead_after.
 *
 *   (default)     a service: round after round over every configured endpoint
 *                 (bp_deliver_once()), at once again while there was work, else after
 *                 [deliver] poll_interval; SIGTERM or SIGINT ends it cleanly - the request in
 *                 flight is answered and marked, the rows not sent yet are released - with
 *                 exit 0.  Store failures (busy, unreachable) are logged and retried with
 *                 growing pauses (up to 30 s); a failure that retrying cannot cure ends it.
 *   --once        a timer's job: rounds until nothing is due, then exit (75 when the store
 *                 failed: run it again).
 *   --status      the outbox's rows per endpoint and state, the oldest pending one, and
 *                 endpoints that have rows but are no longer configured.
 *   --retry-dead  make the dead rows of ENDPOINT (of every endpoint without one) pending again.
 *
 * The owner of the leases is HOST:PID:RANDOM, unique among deliver processes on every host.
 * The libcurl transport is loaded here only (bp_http_transport_open()), never by pipe.
 * Failures of single requests are logged on standard error ("bouncepipe: deliver: webhook
 * NAME: ..."); --verbose also prints a line per pass that did something, and every run that
 * ends prints a summary on standard output.
 *
 * Exit status: 0; 1 the store failed for good or output failed; 64 usage; 75 the store is busy
 * or unreachable (--once, --status, --retry-dead); 78 configuration (no endpoint configured,
 * the HTTP module missing).
 *
 * Ownership: main-like; everything is released before returning.
 */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/deliver.h"
#include "bouncepipe/writer.h"
#include "cli.h"

/* Longest pause between rounds while the store keeps failing. */
#define STORE_RETRY_MAX_MS 30000u

static const char *const deliver_formats[] = {"text", "json", NULL};
static const struct option deliver_options[] = {{"once", no_argument, NULL, 'O'},
                                                {"status", no_argument, NULL, 'S'},
                                                {"retry-dead", no_argument, NULL, 'R'},
                                                {"verbose", no_argument, NULL, 'v'},
                                                {NULL, 0, NULL, 0}};
static const bp_cli_command deliver_command = {
    "deliver",
    BP_OPT_STORE | BP_OPT_FORMAT,
    deliver_options,
    1,
    deliver_formats,
    0,
    1,
    "usage: bouncepipe deliver [--once] [--verbose] [--db LOCATION] [--config FILE]\n"
    "       bouncepipe deliver --status [--format text|json] [--db LOCATION] [--config FILE]\n"
    "       bouncepipe deliver --retry-dead [ENDPOINT] [--db LOCATION] [--config FILE]\n"
    "Posts the events the store's outbox holds to the configured [webhook NAME] endpoints;\n"
    "without --once it runs until SIGTERM.\n",
    BP_CLI_SETUP_CONFIG,
};

struct deliver_args {
    int once, status, retry_dead, verbose;
};

static int deliver_option(void *user, int opt, const char *arg)
{
    struct deliver_args *a = user;
    (void)arg;
    switch (opt) {
    case 'O': a->once = 1; return 0;
    case 'S': a->status = 1; return 0;
    case 'R': a->retry_dead = 1; return 0;
    case 'v': a->verbose = 1; return 0;
    default: return BP_EXIT_USAGE;
    }
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGTERM and SIGINT end the service after the request in flight; no SA_RESTART, so that a
 * pause between rounds ends at once. */
static void catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void pause_ms(unsigned ms)
{
    if (!stop_requested)
        bp_sleep_ms(ms); /* a signal ends it early (EINTR) */
}

static void log_failure(void *user, const char *msg)
{
    (void)user;
    bp_cli_error("deliver", "%s", msg);
}

/* ---- the service and --once -------------------------------------------------------------- */

typedef struct totals {
    size_t passes, claimed, delivered, retried, dead, lost, requests;
} totals;

static void add_result(totals *t, const bp_deliver_result *r)
{
    t->passes++;
    t->claimed += r->claimed;
    t->delivered += r->delivered;
    t->retried += r->retried;
    t->dead += r->dead;
    t->lost += r->lost;
    t->requests += r->requests;
}

/* HOST:PID:RANDOM - unique among the deliver processes of every host sharing a store. */
static void make_owner(char *out, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "%.100s:%ld:%08x", host, (long)getpid(), (unsigned)g_random_int());
}

static int run_loop(bp_cli_env *env, bp_store *store, const struct deliver_args *args)
{
    const bp_config *cfg = &env->config;
    bp_http_transport http;
    bp_outbox outbox;
    char owner[160], *err = NULL;
    totals t;
    int rc = BP_EXIT_OK;
    unsigned store_pause = 0;
    memset(&t, 0, sizeof(t));
    if (cfg->n_webhooks == 0) {
        bp_cli_error("deliver", "no [webhook NAME] endpoint in the configuration (%s)",
                     cfg->file != NULL ? cfg->file : "no configuration file");
        return BP_EXIT_CONFIG;
    }
    bp_status st = bp_http_transport_open(&http, &err);
    if (st != BP_OK) {
        bp_cli_error("deliver", "%s", err != NULL ? err : bp_status_to_string(st));
        free(err);
        return bp_cli_exit_status(st, BP_CLI_OPERATOR);
    }
    bp_deliver_store_outbox(store, &outbox);
    make_owner(owner, sizeof(owner));
    bp_deliver_env denv = {NULL, NULL, log_failure, NULL, &stop_requested};
    if (args->verbose)
        fprintf(stderr, "bouncepipe: deliver: %zu endpoint(s), owner %s%s\n", cfg->n_webhooks, owner,
                args->once ? ", until nothing is due" : "");
    while (!stop_requested) {
        size_t claimed = 0;
        bp_status failed = BP_OK;
        for (size_t e = 0; e < cfg->n_webhooks && !stop_requested; e++) {
            const bp_webhook_endpoint *ep = &cfg->webhooks[e];
            bp_deliver_result r;
            st = bp_deliver_once(ep, &cfg->deliver, &outbox, &http, owner, &denv, &r);
            add_result(&t, &r);
            claimed += r.claimed;
            if (st != BP_OK) {
                bp_cli_error("deliver", "webhook %s: the store: %s: %s", ep->name, bp_status_to_string(st),
                             bp_cli_store_error(env, store));
                failed = st;
                if (!bp_status_is_transient(st))
                    break;
                continue;
            }
            if (args->verbose && r.claimed > 0) {
                printf("deliver: %s: %zu claimed, %zu delivered, %zu retried, %zu dead, %zu lost, %zu request(s)\n",
                       ep->name, r.claimed, r.delivered, r.retried, r.dead, r.lost, r.requests);
                fflush(stdout);
            }
        }
        if (failed != BP_OK && !bp_status_is_transient(failed)) {
            rc = bp_cli_exit_status(failed, BP_CLI_OPERATOR);
            break;
        }
        if (args->once && (claimed == 0 || failed != BP_OK)) {
            if (failed != BP_OK)
                rc = bp_cli_exit_status(failed, BP_CLI_OPERATOR);
            break;
        }
        if (failed != BP_OK) { /* the store is busy or away: wait longer each time */
            store_pause = store_pause == 0 ? cfg->deliver.poll_ms : store_pause * 2;
            if (store_pause > STORE_RETRY_MAX_MS)
                store_pause = STORE_RETRY_MAX_MS;
            pause_ms(store_pause);
            continue;
        }
        store_pause = 0;
        if (claimed == 0)
            pause_ms(cfg->deliver.poll_ms);
    }
    bp_http_transport_close(&http);
    printf("deliver: %zu delivered, %zu retried, %zu dead, %zu lost to other processes, %zu request(s)%s\n",
           t.delivered, t.retried, t.dead, t.lost, t.requests, stop_requested ? " (stopped)" : "");
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == BP_EXIT_OK)
        rc = BP_EXIT_FAILURE;
    return rc;
}

/* ---- --status ---------------------------------------------------------------------------- */

typedef struct status_row {
    char *endpoint;
    int configured;
    bp_outbox_counts c;
} status_row;

typedef struct status_list {
    status_row *v;
    size_t n, cap;
    int nomem;
} status_list;

static status_row *find_row(status_list *l, const char *endpoint)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].endpoint, endpoint) == 0)
            return &l->v[i];
    status_row *r = bp_array_push(&l->v, &l->n, &l->cap, sizeof(*r), 16);
    if (r != NULL && (r->endpoint = bp_strdup(endpoint)) == NULL) {
        l->n--;
        r = NULL;
    }
    return r;
}

static int on_count(void *user, const char *endpoint, const char *state, long long count, long long leased,
                    long long oldest)
{
    status_list *l = user;
    status_row *r = endpoint != NULL ? find_row(l, endpoint) : NULL;
    if (r == NULL) {
        l->nomem = endpoint != NULL;
        return l->nomem;
    }
    bp_outbox_counts_add(&r->c, state, count, leased, oldest);
    return 0;
}

static void write_status(bp_writer *w, const status_list *l, long long now)
{
    int json = bp_writer_get_format(w) == BP_WRITER_JSON;
    if (json) {
        bp_writer_begin_map(w);
        bp_writer_key(w, "endpoints");
        bp_writer_begin_list(w);
    }
    for (size_t i = 0; i < l->n; i++) {
        const status_row *r = &l->v[i];
        char when[32];
        bp_cli_format_time(r->c.oldest_pending, when, sizeof(when));
        if (json) {
            if (i > 0)
                bp_writer_separator(w); /* between the items of the list */
            bp_writer_begin_map(w);
            bp_writer_entry_string(w, "endpoint", r->endpoint);
            bp_writer_entry_boolean(w, "configured", r->configured);
            bp_writer_entry_integer(w, "pending", r->c.pending);
            bp_writer_entry_integer(w, "leased", r->c.leased);
            bp_writer_entry_integer(w, "delivered", r->c.delivered);
            bp_writer_entry_integer(w, "dead", r->c.dead);
            bp_writer_key(w, "oldest_pending");
            if (r->c.oldest_pending > 0)
                bp_writer_string(w, when);
            else
                bp_writer_null(w);
            bp_writer_end(w);
            continue;
        }
        char line[512];
        int n = snprintf(line, sizeof(line), "%-24s %9lld pending (%lld leased) %9lld delivered %7lld dead",
                         r->endpoint, r->c.pending, r->c.leased, r->c.delivered, r->c.dead);
        if (r->c.oldest_pending > 0 && n > 0 && (size_t)n < sizeof(line))
            snprintf(line + n, sizeof(line) - (size_t)n, "  oldest pending %s (%llds ago)", when,
                     now - r->c.oldest_pending);
        bp_writer_string(w, line);
        if (!r->configured)
            bp_writer_string(w, " (not configured: its rows wait)");
        bp_writer_separator(w);
    }
    if (json) {
        bp_writer_end(w);
        bp_writer_end(w);
        bp_writer_separator(w);
    }
}

static int run_status(bp_cli_env *env, bp_store *store)
{
    status_list l = {NULL, 0, 0, 0};
    int rc = BP_EXIT_OK;
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < env->config.n_webhooks; i++) {
        status_row *r = find_row(&l, env->config.webhooks[i].name);
        if (r == NULL) {
            l.nomem = 1;
            break;
        }
        r->configured = 1;
    }
    bp_status st = l.nomem || store == NULL ? BP_OK : bp_store_outbox_counts(store, NULL, now, on_count, &l);
    if (st == BP_OK && l.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK) {
        bp_cli_error("deliver", "counting the outbox: %s: %s", bp_status_to_string(st), bp_cli_store_error(env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    bp_writer *w = bp_writer_new(stdout, env->format == 1 ? BP_WRITER_JSON : BP_WRITER_TEXT);
    if (w == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    write_status(w, &l, now);
    if (bp_writer_flush(w) != BP_OK || fflush(stdout) != 0 || ferror(stdout))
        rc = BP_EXIT_FAILURE;
    bp_writer_free(w);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].endpoint);
    free(l.v);
    return rc;
}

/* ---- --retry-dead ------------------------------------------------------------------------ */

static int run_retry_dead(bp_cli_env *env, bp_store *store, const char *endpoint)
{
    long long count = 0;
    int known = endpoint == NULL;
    for (size_t i = 0; !known && i < env->config.n_webhooks; i++)
        known = strcmp(env->config.webhooks[i].name, endpoint) == 0;
    bp_status st = bp_store_outbox_retry_dead(store, endpoint, (long long)time(NULL), &count);
    if (st != BP_OK) {
        bp_cli_error("deliver", "retrying dead rows: %s: %s", bp_status_to_string(st), bp_cli_store_error(env, store));
        return bp_cli_exit_status(st, BP_CLI_OPERATOR);
    }
    printf("deliver: %lld dead row(s)%s%s pending again\n", count, endpoint != NULL ? " of " : "",
           endpoint != NULL ? endpoint : "");
    if (!known)
        bp_cli_error("deliver", "%s is not a configured endpoint: its rows wait until one is named so", endpoint);
    return fflush(stdout) != 0 || ferror(stdout) ? BP_EXIT_FAILURE : BP_EXIT_OK;
}

static int deliver_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct deliver_args *args = user;
    bp_store *store = NULL;
    int rc = BP_EXIT_OK;
    const char *operand = optind < argc ? argv[optind] : NULL;
    if (args->status + args->retry_dead + args->once > 1 || (operand != NULL && !args->retry_dead) ||
        (env->format_given && !args->status)) {
        bp_cli_usage(&deliver_command, stderr);
        rc = BP_EXIT_USAGE;
        goto out;
    }
    /* --status reads (an absent store has nothing in its outbox); the others write */
    rc = bp_cli_store_ready(env, args->status, args->status, &store);
    if (rc != BP_EXIT_OK)
        goto out;
    if (args->status)
        rc = run_status(env, store);
    else if (args->retry_dead)
        rc = run_retry_dead(env, store, operand);
    else {
        catch_stop();
        rc = run_loop(env, store, args);
    }
out:
    bp_store_close(store);
    return rc;
}

const bp_cli_entry bp_cli_deliver = {&deliver_command, deliver_option, deliver_main, sizeof(struct deliver_args), NULL};
