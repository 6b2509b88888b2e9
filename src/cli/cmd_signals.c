/*
 * cmd_signals.c - bouncepipe signals [--since DATE|DURATION] [--now TIME] [--format
 *                 text|json|prometheus] [--top N] [--output FILE] [--db PATH] [--config FILE]
 *                 bouncepipe signals --check [--now TIME] [--format text|json]
 *                 bouncepipe signals --events [--ip IP] [--since ...] [--limit N]
 *                 bouncepipe signals --rebuild
 *
 * Per sending IP, VMTA, stream and receiver over a window (default the configuration's, 24 h):
 * deliveries, deferrals, bounces, hard bounces, rejections and deferrals naming a public block
 * list (blocked) or a receiver's reputation system (reputation) - each name counted - and
 * complaints, with the complaint rate (complaints / deliveries) and the hard-bounce rate
 * (hard / (deliveries + bounces)).  The busiest --top groups (by deliveries + deferrals +
 * bounces) are shown; the rest is summed into one group labelled "other", so a Prometheus
 * scrape has a bounded number of series.  Unknown parts are null (json) or "unknown".
 * All of it comes from the store's hourly counts (signals.h): no ledger scan.
 *
 * --check evaluates the alerts of [signals] (alerts.h) as of --now: each alert that fires is
 * printed (stdout) and its command run - argv, no shell, with a timeout, standard input
 * /dev/null - and the exit status is 1 when one fired (0 when none did), for a timer or cron.
 * --events lists the ledger rows behind a signal: the events naming a list or reputation
 * system, of one IP with --ip.  --rebuild recounts the ledger's part of the counts.
 *
 * Output goes through the structured writer: json by its JSON back end, text and prometheus
 * as lines of our own layout whose values are checked tokens, masked once more here.
 * Exit status: 0; 1 an alert fired, or a store or output failure; 64 usage; 75 store busy;
 * 78 configuration.
 *
 * Ownership: the run owns the groups (freed on return); the store's rows are copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/alerts.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/receivers.h"
#include "bouncepipe/signals.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

extern char **environ;

/* Lines --events prints without --limit. */
#define EVENTS_DEFAULT_LIMIT 1000

static const char *const signals_formats[] = {"text", "json", "prometheus", NULL};
static const struct option signals_options[] = {
    {"since", required_argument, NULL, 'S'}, {"now", required_argument, NULL, 'N'},
    {"top", required_argument, NULL, 'n'},   {"output", required_argument, NULL, 'o'},
    {"check", no_argument, NULL, 'C'},       {"events", no_argument, NULL, 'E'},
    {"ip", required_argument, NULL, 'I'},    {"limit", required_argument, NULL, 'L'},
    {"rebuild", no_argument, NULL, 'R'},     {NULL, 0, NULL, 0}};
static const bp_cli_command signals_command = {
    "signals",
    BP_OPT_STORE | BP_OPT_FORMAT,
    signals_options,
    0,
    signals_formats,
    0,
    0,
    "usage: bouncepipe signals [--since DATE|DURATION] [--now TIME] [--format text|json|prometheus]\n"
    "                          [--top N] [--output FILE] [--db PATH] [--config FILE]\n"
    "       bouncepipe signals --check [--now TIME] [--format text|json] [--db PATH] [--config FILE]\n"
    "       bouncepipe signals --events [--ip IP] [--since DATE|DURATION] [--limit N] [--format text|json]\n"
    "       bouncepipe signals --rebuild [--db PATH] [--config FILE]\n"
    "DURATION: 90m, 24h, 7d (before --now); DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or Unix seconds.\n",
    BP_CLI_SETUP_CONFIG,
};

enum mode { MODE_SUMMARY = 0, MODE_CHECK, MODE_EVENTS, MODE_REBUILD };

struct signals_args {
    enum mode mode;
    const char *since;  /* as given: resolved against --now once it is known */
    long long now;      /* --now, or 0 */
    long top;           /* --top, or 0: the configuration's */
    const char *output; /* --output */
    char ip[64];        /* --ip, canonical; "" for none */
    long limit;
};

static int signals_option(void *user, int opt, const char *arg)
{
    struct signals_args *a = user;
    switch (opt) {
    case 'S': a->since = arg; return 0;
    case 'N': return bp_cli_time_option("signals", "--now", arg, 1, &a->now);
    case 'n': return bp_cli_count_option("signals", "--top", arg, 1, 10000, &a->top);
    case 'o': a->output = arg; return 0;
    case 'C': a->mode = MODE_CHECK; return 0;
    case 'E': a->mode = MODE_EVENTS; return 0;
    case 'R': a->mode = MODE_REBUILD; return 0;
    case 'I':
        if (!bp_signal_ip_canonical(arg, a->ip, sizeof(a->ip))) {
            bp_cli_error("signals", "--ip: not an IP address: %s", arg);
            return BP_EXIT_USAGE;
        }
        return 0;
    case 'L': return bp_cli_count_option("signals", "--limit", arg, 1, 1000000, &a->limit);
    default: return BP_EXIT_USAGE;
    }
}

/* ---- words for explain ---------------------------------------------------------------- */

/* Untrusted text with control bytes shown as '?'. */
static void put_masked(FILE *out, const char *s)
{
    for (; *s != '\0'; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7F ? '?' : *s, out);
}

/* "SOURCE:DETAIL" (signal_fields.h) in words. */
static void put_from(FILE *out, const char *from)
{
    static const struct {
        const char *source, *words;
    } words[] = {
        {"accounting:", "accounting column "},
        {"header:", "the returned original's header "},
        {"feedback-report:", "the feedback report's field "},
        {"text:", "the text, as rule "},
        {"remote-mta:", "the remote MTA "},
        {"reporting-mta:", "the reporting MTA "},
        {"recipient-domain:", "the recipient's domain "},
    };
    if (from == NULL)
        return;
    fputs(" (from ", out);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i].source);
        if (strncmp(from, words[i].source, n) == 0) {
            fputs(words[i].words, out);
            put_masked(out, from + n);
            if (i == 3)
                fputs(" captures it", out);
            fputc(')', out);
            return;
        }
    }
    put_masked(out, from);
    fputc(')', out);
}

void bp_cli_explain_signals(FILE *out, const bp_event *e)
{
    const struct {
        const char *label, *value, *from;
    } f[] = {
        {"sending ip:", e->sending_ip, e->sending_ip_from},
        {"vmta:", e->vmta, e->vmta_from},
        {"stream:", e->stream, e->stream_from},
        {"receiver:", e->receiver, e->receiver_from},
        {"listed:", e->listed, NULL},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].value == NULL)
            continue;
        fprintf(out, "  %-12s ", f[i].label);
        put_masked(out, f[i].value);
        put_from(out, f[i].from);
        fputc('\n', out);
    }
}

/* ---- the summary ---------------------------------------------------------------------- */

struct named {
    char *name;
    long long n;
};

struct group {
    char *part[4]; /* sending IP, VMTA, stream, receiver; NULL: unknown */
    long long delivered, deferred, bounced, hard, complaints;
    long long blocked, reputation; /* events naming a public list, a receiver's reputation system */
    struct named *lists;
    size_t n_lists, cap_lists;
};

struct summary {
    struct group *v;
    size_t n, cap;
    struct group other; /* the groups past --top, summed */
    int has_other;
    int nomem;
};

static int same_part(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *dup_part(const char *s, int *nomem)
{
    if (s == NULL)
        return NULL;
    char *d = bp_strdup(s);
    if (d == NULL)
        *nomem = 1;
    return d;
}

static void add_named(struct group *g, const char *name, long long n, int *nomem)
{
    for (size_t i = 0; i < g->n_lists; i++)
        if (strcmp(g->lists[i].name, name) == 0) {
            g->lists[i].n += n;
            return;
        }
    struct named *l = bp_array_push(&g->lists, &g->n_lists, &g->cap_lists, sizeof(*l), 4);
    if (l == NULL || (l->name = bp_strdup(name)) == NULL) {
        g->n_lists -= l != NULL;
        *nomem = 1;
        return;
    }
    l->n = n;
}

static void add_counts(struct group *g, const bp_signal_row *r, int *nomem)
{
    g->delivered += r->delivered;
    g->deferred += r->deferred;
    g->bounced += r->bounced;
    g->hard += r->hard;
    g->complaints += r->complaints;
    if (r->blocklist != NULL && r->bounced + r->deferred > 0) {
        if (bp_receiver_known(r->blocklist))
            g->reputation += r->bounced + r->deferred;
        else
            g->blocked += r->bounced + r->deferred;
        add_named(g, r->blocklist, r->bounced + r->deferred, nomem);
    }
}

static int collect_row(void *user, const bp_signal_row *r)
{
    struct summary *s = user;
    const char *parts[4] = {r->sending_ip, r->vmta, r->stream, r->receiver};
    struct group *g = s->n > 0 ? &s->v[s->n - 1] : NULL; /* rows come in key order */
    for (int k = 0; k < 4 && g != NULL; k++)
        if (!same_part(g->part[k], parts[k]))
            g = NULL;
    if (g == NULL) {
        g = bp_array_push(&s->v, &s->n, &s->cap, sizeof(*g), 64);
        if (g == NULL) {
            s->nomem = 1;
            return 1;
        }
        for (int k = 0; k < 4; k++)
            g->part[k] = dup_part(parts[k], &s->nomem);
    }
    add_counts(g, r, &s->nomem);
    return s->nomem;
}

static long long attempts(const struct group *g)
{
    return g->delivered + g->deferred + g->bounced;
}

static int cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (attempts(x) != attempts(y))
        return attempts(x) > attempts(y) ? -1 : 1;
    for (int k = 0; k < 4; k++) {
        const char *p = x->part[k] != NULL ? x->part[k] : "", *q = y->part[k] != NULL ? y->part[k] : "";
        int d = strcmp(p, q);
        if (d != 0)
            return d;
    }
    return 0;
}

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void group_free(struct group *g)
{
    for (int k = 0; k < 4; k++)
        free(g->part[k]);
    for (size_t i = 0; i < g->n_lists; i++)
        free(g->lists[i].name);
    free(g->lists);
}

/* Keep the busiest @p top groups; sum the rest into the group "other". */
static void bound(struct summary *s, size_t top)
{
    bp_sort(s->v, s->n, sizeof(*s->v), cmp_group);
    for (size_t i = top; i < s->n; i++) {
        struct group *g = &s->v[i];
        struct group *o = &s->other;
        o->delivered += g->delivered;
        o->deferred += g->deferred;
        o->bounced += g->bounced;
        o->hard += g->hard;
        o->complaints += g->complaints;
        o->blocked += g->blocked;
        o->reputation += g->reputation;
        for (size_t k = 0; k < g->n_lists; k++)
            add_named(o, g->lists[k].name, g->lists[k].n, &s->nomem);
        group_free(g);
        s->has_other = 1;
    }
    if (s->n > top)
        s->n = top;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].n_lists > 1)
            bp_sort(s->v[i].lists, s->v[i].n_lists, sizeof(*s->v[i].lists), cmp_named);
    if (s->other.n_lists > 1)
        bp_sort(s->other.lists, s->other.n_lists, sizeof(*s->other.lists), cmp_named);
}

/* A rate, or NAN when its base is zero. */
static double rate(long long n, long long base)
{
    return base > 0 ? (double)n / (double)base : NAN;
}

/* A part as a label or column: "unknown" when unknown, "other" for the summed group, masked. */
static void label(char *out, size_t size, const struct group *g, int k, int is_other)
{
    const char *v = is_other ? "other" : g->part[k] != NULL ? g->part[k] : "unknown";
    size_t i = 0;
    for (; v[i] != '\0' && i + 1 < size; i++)
        out[i] = (unsigned char)v[i] < 0x21 || v[i] == 0x7F || v[i] == '"' || v[i] == '\\' ? '?' : v[i];
    out[i] = '\0';
}

static void json_number(bp_writer *w, const char *key, double v)
{
    char buf[40];
    bp_writer_key(w, key);
    if (isnan(v)) {
        bp_writer_null(w);
        return;
    }
    snprintf(buf, sizeof(buf), "%.6g", v);
    bp_writer_raw(w, buf, strlen(buf));
}

static void json_group(bp_writer *w, const struct group *g, int is_other)
{
    static const char *const keys[4] = {"sending_ip", "vmta", "stream", "receiver"};
    bp_writer_begin_map(w);
    for (int k = 0; k < 4; k++) {
        bp_writer_entry_string(w, keys[k], is_other ? "other" : g->part[k]);
    }
    const struct {
        const char *key;
        long long v;
    } counts[] = {
        {"delivered", g->delivered}, {"deferred", g->deferred},     {"bounced", g->bounced},      {"hard", g->hard},
        {"blocked", g->blocked},     {"reputation", g->reputation}, {"complaints", g->complaints}};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        bp_writer_entry_integer(w, counts[i].key, counts[i].v);
    }
    json_number(w, "complaint_rate", rate(g->complaints, g->delivered));
    json_number(w, "hard_rate", rate(g->hard, g->delivered + g->bounced));
    bp_writer_key(w, "named");
    bp_writer_begin_map(w);
    for (size_t i = 0; i < g->n_lists; i++) {
        bp_writer_entry_integer(w, g->lists[i].name, g->lists[i].n);
    }
    bp_writer_end(w);
    bp_writer_end(w);
}

static void write_json(bp_writer *w, const struct summary *s, long long from, long long until)
{
    char a[32], b[32];
    bp_writer_begin_map(w);
    bp_writer_entry_string(w, "from", bp_cli_format_time(from, a, sizeof(a)));
    bp_writer_entry_string(w, "until", bp_cli_format_time(until, b, sizeof(b)));
    bp_writer_key(w, "groups");
    bp_writer_begin_list(w);
    for (size_t i = 0; i < s->n; i++) {
        bp_writer_separator(w);
        json_group(w, &s->v[i], 0);
    }
    if (s->has_other) {
        bp_writer_separator(w);
        json_group(w, &s->other, 1);
    }
    bp_writer_end(w);
    bp_writer_end(w);
    bp_writer_separator(w);
}

static void fmt_rate(char *out, size_t size, double v)
{
    if (isnan(v))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.3f", 100.0 * v);
}

static void text_group(bp_writer *w, const struct group *g, int is_other)
{
    char p[4][72], cr[24], hr[24];
    for (int k = 0; k < 4; k++)
        label(p[k], sizeof(p[k]), g, k, is_other);
    fmt_rate(cr, sizeof(cr), rate(g->complaints, g->delivered));
    fmt_rate(hr, sizeof(hr), rate(g->hard, g->delivered + g->bounced));
    bp_writer_rawf(w, "%-15s %-12s %-14s %-10s %10lld %9lld %8lld %7lld %8lld %8lld %9lld %8s %7s", p[0], p[1], p[2],
                   p[3], g->delivered, g->deferred, g->bounced, g->hard, g->blocked, g->reputation, g->complaints, cr,
                   hr);
    for (size_t i = 0; i < g->n_lists; i++) {
        char name[72];
        struct group tmp = {{g->lists[i].name, NULL, NULL, NULL}, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0};
        label(name, sizeof(name), &tmp, 0, 0);
        bp_writer_rawf(w, "%s%s %lld", i == 0 ? "  named: " : ", ", name, g->lists[i].n);
    }
    bp_writer_rawf(w, "\n");
}

static void write_text(bp_writer *w, const struct summary *s, long long from, long long until)
{
    char a[32], b[32];
    bp_writer_rawf(w, "signals from %s until %s: %zu group%s%s\n", bp_cli_format_time(from, a, sizeof(a)),
                   bp_cli_format_time(until, b, sizeof(b)), s->n, s->n == 1 ? "" : "s",
                   s->has_other ? " and the rest as \"other\"" : "");
    bp_writer_rawf(w, "%-15s %-12s %-14s %-10s %10s %9s %8s %7s %8s %8s %9s %8s %7s\n", "sending ip", "vmta", "stream",
                   "receiver", "delivered", "deferred", "bounced", "hard", "blocked", "reput.", "complain", "compl.%",
                   "hard%");
    for (size_t i = 0; i < s->n; i++)
        text_group(w, &s->v[i], 0);
    if (s->has_other)
        text_group(w, &s->other, 1);
    if (s->n == 0 && !s->has_other)
        bp_writer_rawf(w, "(no counts in this window)\n");
}

static void prom_labels(bp_writer *w, const struct group *g, int is_other)
{
    static const char *const names[4] = {"ip", "vmta", "stream", "receiver"};
    for (int k = 0; k < 4; k++) {
        char v[72];
        label(v, sizeof(v), g, k, is_other);
        bp_writer_rawf(w, "%s%s=\"%s\"", k ? "," : "", names[k], v);
    }
}

static void write_prometheus(bp_writer *w, const struct summary *s, long long from, long long until)
{
    static const struct {
        const char *metric, *help;
    } metrics[] = {
        {"delivered", "Deliveries (accounting d records, delivered events)"},
        {"deferred", "Deferrals (accounting t records, delay events)"},
        {"bounced", "Bounces"},
        {"hard", "Final bounces naming no block list: bad addresses"},
        {"blocked", "Rejections and deferrals naming a public block list"},
        {"reputation", "Rejections and deferrals naming a receiver's reputation system"},
        {"complaints", "Complaints"},
        {"complaint_rate", "Complaints per delivery"},
        {"hard_rate", "Hard bounces per delivery or bounce"},
    };
    bp_writer_rawf(w,
                   "# HELP bouncepipe_signal_window_seconds The window the signal gauges count.\n"
                   "# TYPE bouncepipe_signal_window_seconds gauge\nbouncepipe_signal_window_seconds %lld\n",
                   until - from);
    for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        bp_writer_rawf(w, "# HELP bouncepipe_signal_%s %s in the window, by sending IP, VMTA, stream and receiver.\n",
                       metrics[m].metric, metrics[m].help);
        bp_writer_rawf(w, "# TYPE bouncepipe_signal_%s gauge\n", metrics[m].metric);
        for (size_t i = 0; i < s->n + (size_t)s->has_other; i++) {
            int is_other = i == s->n;
            const struct group *g = is_other ? &s->other : &s->v[i];
            const long long counts[] = {g->delivered, g->deferred,   g->bounced,   g->hard,
                                        g->blocked,   g->reputation, g->complaints};
            double v = m < 7                         ? (double)counts[m]
                       : metrics[m].metric[0] == 'c' ? rate(g->complaints, g->delivered)
                                                     : rate(g->hard, g->delivered + g->bounced);
            if (isnan(v))
                continue;
            bp_writer_rawf(w, "bouncepipe_signal_%s{", metrics[m].metric);
            prom_labels(w, g, is_other);
            bp_writer_rawf(w, "} %.6g\n", v);
        }
    }
    bp_writer_rawf(
        w, "# HELP bouncepipe_signal_named Rejections and deferrals naming a list or reputation system, by name.\n"
           "# TYPE bouncepipe_signal_named gauge\n");
    for (size_t i = 0; i < s->n + (size_t)s->has_other; i++) {
        int is_other = i == s->n;
        const struct group *g = is_other ? &s->other : &s->v[i];
        for (size_t k = 0; k < g->n_lists; k++) {
            char name[72];
            struct group tmp = {{g->lists[k].name, NULL, NULL, NULL}, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0};
            label(name, sizeof(name), &tmp, 0, 0);
            bp_writer_rawf(w, "bouncepipe_signal_named{");
            prom_labels(w, g, is_other);
            bp_writer_rawf(w, ",list=\"%s\"} %lld\n", name, g->lists[k].n);
        }
    }
}

static void summary_free(struct summary *s)
{
    for (size_t i = 0; i < s->n; i++)
        group_free(&s->v[i]);
    free(s->v);
    group_free(&s->other);
}

/* ---- alerts ----------------------------------------------------------------------------- */

struct check_run {
    bp_writer *w;
    int json;
    unsigned timeout;
    char when[32];
};

/* Run @p argv (no shell; standard input /dev/null), waiting at most @p timeout seconds.
 * @return its exit status, or -1 when it could not start, -2 on a timeout (it is killed). */
static int run_command(char **argv, unsigned timeout)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = 0;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int status = 0;
    for (unsigned waited_ms = 0;; waited_ms += 50) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        if (got < 0 && errno != EINTR)
            return -1;
        if (waited_ms >= timeout * 1000u) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -2;
        }
        bp_sleep_ms(50);
    }
}

/* The alert in words (text) or as a map (json); then its command. */
static int fire(void *user, const bp_alert *a)
{
    struct check_run *run = user;
    bp_writer *w = run->w;
    char since[32], first[32];
    bp_cli_format_time(a->since, since, sizeof(since));
    bp_cli_format_time(a->first_fired, first, sizeof(first));
    char **argv = NULL;
    const char *why = NULL;
    bp_status st = a->command != NULL ? bp_alert_argv(a, &argv, &why) : BP_ERR_NOT_FOUND;
    int outcome = -1, exit_status = 0;
    if (st == BP_OK) {
        fflush(stdout);
        exit_status = run_command(argv, run->timeout);
        outcome = exit_status == 0 ? 0 : 1;
    } else if (st == BP_ERR_NOMEM) {
        why = "out of memory";
        outcome = 1;
    }
    if (run->json) {
        bp_writer_begin_map(w);
        const bp_cli_field f[] = {{"alert", bp_alert_name(a->kind)},
                                  {"at", run->when},
                                  {"sending_ip", a->sending_ip},
                                  {"vmta", a->vmta},
                                  {"stream", a->stream},
                                  {"receiver", a->receiver},
                                  {"list", a->list},
                                  {"since", since},
                                  {"first_fired", first}};
        bp_cli_write_fields(w, f, sizeof(f) / sizeof(f[0]));
        bp_writer_entry_integer(w, "count", a->count);
        bp_writer_entry_integer(w, "base", a->base);
        json_number(w, "value", a->kind == BP_ALERT_LISTING ? NAN : a->value);
        json_number(w, "threshold", a->kind == BP_ALERT_LISTING ? NAN : a->threshold);
        bp_writer_entry_boolean(w, "retry", a->retry);
        bp_writer_key(w, "command");
        if (argv == NULL) {
            bp_writer_null(w);
        } else {
            bp_writer_begin_list(w);
            for (size_t i = 0; argv[i] != NULL; i++)
                bp_writer_string(w, argv[i]);
            bp_writer_end(w);
        }
        bp_writer_key(w, "command_status");
        if (argv == NULL)
            bp_writer_null(w);
        else
            bp_writer_integer(w, exit_status);
        bp_writer_entry_string(w, "command_not_run", a->command != NULL ? why : NULL);
        bp_writer_end(w);
        bp_writer_separator(w);
    } else {
        char what[512];
        switch (a->kind) {
        case BP_ALERT_LISTING:
            snprintf(what, sizeof(what), "%s (vmta %s) named by %s: %lld rejections or deferrals since %s",
                     a->sending_ip != NULL ? a->sending_ip : "an unknown IP", a->vmta != NULL ? a->vmta : "unknown",
                     a->list, a->count, since);
            break;
        case BP_ALERT_DEFERRAL:
            snprintf(what, sizeof(what),
                     "%s deferred %.2f %% of %lld attempts naming its reputation system or a list in "
                     "the hour from %s (threshold %g %%)",
                     a->receiver, a->value, a->base, since, a->threshold);
            break;
        case BP_ALERT_COMPLAINT:
            snprintf(what, sizeof(what),
                     "stream %s: %lld complaints for %lld deliveries (%.3f %%) since %s (threshold %g %%)", a->stream,
                     a->count, a->base, a->value, since, a->threshold);
            break;
        }
        bp_writer_rawf(w, "ALERT %s at %s: %s%s\n", bp_alert_name(a->kind), run->when, what,
                       a->retry ? " (fired before; its command runs again)" : "");
        if (argv != NULL) {
            bp_writer_rawf(w, "  command:");
            for (size_t i = 0; argv[i] != NULL; i++)
                bp_writer_rawf(w, " %s", argv[i]);
            if (exit_status == -1)
                bp_writer_rawf(w, " -> could not start\n");
            else if (exit_status == -2)
                bp_writer_rawf(w, " -> timed out after %u s, killed\n", run->timeout);
            else
                bp_writer_rawf(w, " -> exit %d\n", exit_status);
        } else if (a->command != NULL) {
            bp_writer_rawf(w, "  command not run: %s\n", why != NULL ? why : "unknown");
        }
    }
    bp_writer_flush(w);
    bp_alert_argv_free(argv);
    return outcome;
}

/* ---- the events behind a signal --------------------------------------------------------- */

struct events_run {
    bp_writer *w;
    int json;
    long long n;
};

static int print_event_row(void *user, const bp_ledger_row *r)
{
    struct events_run *run = user;
    char t[32];
    bp_cli_format_time(r->evidence_time, t, sizeof(t));
    const bp_event *e = &r->event;
    run->n++;
    if (run->json) {
        bp_writer_begin_map(run->w);
        bp_event_write_fields(run->w, e);
        bp_writer_key(run->w, "evidence_time");
        bp_writer_string(run->w, t);
        bp_writer_end(run->w);
        bp_writer_separator(run->w);
        return 0;
    }
    const char *v[] = {t,
                       e->sending_ip != NULL ? e->sending_ip : "-",
                       e->vmta != NULL ? e->vmta : "-",
                       e->stream != NULL ? e->stream : "-",
                       e->receiver != NULL ? e->receiver : "-",
                       bp_event_type_name(e->type),
                       e->blocklist,
                       e->listed != NULL ? e->listed : "-",
                       r->domain != NULL ? r->domain : "-",
                       e->diagnostic != NULL ? e->diagnostic : "-"};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        bp_writer_string(run->w, v[i]); /* the text writer masks them */
    bp_writer_separator(run->w);
    return 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* The window's start: --since as a date, or a duration before @p now. @return -1 when invalid. */
static long long resolve_since(const char *since, long long now, long long window)
{
    if (since == NULL)
        return now - window;
    long long d = bp_signals_parse_duration(since);
    if (d > 0 && strpbrk(since, "smhdw") != NULL)
        return now - d;
    return bp_cli_parse_time(since);
}

static int signals_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct signals_args *args = user;
    struct summary sum;
    bp_strbuf sb = {0};
    bp_store *store = NULL;
    bp_writer *w = NULL;
    memset(&sum, 0, sizeof(sum));
    int rc = BP_EXIT_OK;
    const bp_signals_config *cfg = &env->config.signals;
    long long now = args->now > 0 ? args->now : (long long)time(NULL);
    long long from = resolve_since(args->since, now, cfg->window);
    if (from < 0 || from > now) {
        bp_cli_error("signals", "--since: want a date before --now, or a duration such as 24h or 7d");
        rc = BP_EXIT_USAGE;
        goto out;
    }
    if ((args->mode == MODE_CHECK || args->mode == MODE_EVENTS) && env->format == 2) {
        bp_cli_error("signals", "--check and --events print text or json");
        rc = BP_EXIT_USAGE;
        goto out;
    }
    int json = env->format == 1;
    rc = bp_cli_store_ready(env, args->mode == MODE_SUMMARY || args->mode == MODE_EVENTS, 1, &store);
    if (rc != BP_EXIT_OK)
        goto out;
    /* the summary is written whole (--output: atomically); alerts and events as they come */
    int buffered = args->mode == MODE_SUMMARY || args->mode == MODE_REBUILD;
    w = buffered ? bp_writer_new_buffer(&sb, json ? BP_WRITER_JSON : BP_WRITER_TEXT)
                 : bp_writer_new(stdout, json ? BP_WRITER_JSON : BP_WRITER_TEXT);
    if (w == NULL) {
        bp_cli_error("signals", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    bp_status st = BP_OK;
    switch (args->mode) {
    case MODE_REBUILD: {
        long long keys = 0;
        if (store == NULL)
            break; /* nothing to count */
        st = bp_store_begin(store);
        if (st == BP_OK)
            st = bp_store_signal_rebuild(store, &keys);
        st = bp_cli_end_tx(store, st);
        if (st == BP_OK)
            bp_writer_rawf(w, "recounted the ledger's events into %lld hourly counters\n", keys);
        break;
    }
    case MODE_CHECK: {
        struct check_run run = {w, json, cfg->command_timeout, ""};
        unsigned fired = 0;
        bp_cli_format_time(now, run.when, sizeof(run.when));
        if (store != NULL)
            st = bp_signals_check(store, cfg, now, fire, &run, &fired);
        if (st == BP_OK && fired > 0)
            rc = BP_EXIT_FAILURE; /* for cron and systemd: something to look at */
        break;
    }
    case MODE_EVENTS: {
        struct events_run run = {w, json, 0};
        if (store != NULL)
            st = bp_store_signal_events(store, from, now + 1, args->ip[0] != '\0' ? args->ip : NULL,
                                        args->limit > 0 ? args->limit : EVENTS_DEFAULT_LIMIT, print_event_row, &run);
        break;
    }
    case MODE_SUMMARY:
        if (store != NULL)
            st = bp_store_signal_rows(store, from, now + 1, collect_row, &sum);
        if (st == BP_OK && sum.nomem)
            st = BP_ERR_NOMEM;
        if (st != BP_OK)
            break;
        bound(&sum, args->top > 0 ? (size_t)args->top : cfg->top);
        if (env->format == 1)
            write_json(w, &sum, from, now);
        else if (env->format == 2)
            write_prometheus(w, &sum, from, now);
        else
            write_text(w, &sum, from, now);
        break;
    }
    if (st != BP_OK) {
        rc = bp_cli_store_failed(env, store, st);
        goto out;
    }
    if (bp_cli_output(env, bp_writer_flush(w), buffered ? &sb : NULL, args->output, -1) != BP_EXIT_OK)
        rc = BP_EXIT_FAILURE; /* a check that fired stays a failure */
out:
    bp_writer_free(w);
    summary_free(&sum);
    bp_strbuf_free(&sb);
    bp_store_close(store);
    return rc;
}

const bp_cli_entry bp_cli_signals = {&signals_command, signals_option, signals_main, sizeof(struct signals_args), NULL};
