/*
 * cmd_stats.c - bouncepipe stats [--db PATH] [--config FILE] [--format text|json|prometheus]
 *               [--since DATE] [--top N] [--output FILE [--mode MODE]]
 *
 * Counts the ledger's events by type, category (complaints as "complaint:TYPE"), action,
 * receiving domain and UTC day, and the suppression list by source kind (active and lifted).
 * text shows the top N of each (default 10; days: the latest N); json has every count;
 * prometheus is the text exposition format for node_exporter's textfile collector (domains
 * limited to the top N to bound label cardinality; days left to Prometheus itself).
 * --output writes a fresh file beside FILE (FILE.XXXXXX: mkstemp, never through a planted
 * symbolic link), syncs it and renames it over FILE, so the collector never reads half a file
 * (node_exporter reads only *.prom); its mode is 0666 narrowed by the umask, as a shell's
 * redirection would make it, or --mode MODE (octal).  Keys (domains, categories) are masked
 * (text.h) and keys masked alike counted as one.
 * json is written by the structured writer (writer.h); text and prometheus are layouts of
 * their own.
 * Exit status: 0; 1 store or output failure; 64 usage; 75 store busy; 78 configuration.
 *
 * Ownership: counts are copied into a list owned by the run and freed on return.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "cli.h"

struct count {
    char *key;
    long long n;
};

struct stats_run {
    struct count *v[BP_STATS_DIM_LAST];
    size_t n[BP_STATS_DIM_LAST], cap[BP_STATS_DIM_LAST];
    int nomem;
};

static const char *const stats_formats[] = {"text", "json", "prometheus", NULL};
static const struct option stats_options[] = {{"top", required_argument, NULL, 'n'},
                                              {"output", required_argument, NULL, 'o'},
                                              {"mode", required_argument, NULL, 'm'},
                                              {NULL, 0, NULL, 0}};
static const bp_cli_command stats_command = {
    "stats",
    BP_OPT_STORE | BP_OPT_FORMAT | BP_OPT_SINCE,
    stats_options,
    0,
    stats_formats,
    0,
    0,
    "usage: bouncepipe stats [--db PATH] [--config FILE] [--format text|json|prometheus]\n"
    "                        [--since DATE] [--top N] [--output FILE [--mode MODE]]\n",
    BP_CLI_SETUP_CONFIG,
};

struct stats_args {
    long top;
    const char *output;
    int mode; /* --mode, or -1: 0666 narrowed by the umask */
};

static int stats_option(void *user, int opt, const char *arg)
{
    struct stats_args *a = user;
    switch (opt) {
    case 'n': return bp_cli_count_option("stats", "--top", arg, 1, 100000, &a->top);
    case 'o': a->output = arg; return 0;
    case 'm': {
        char *end = NULL;
        long m = strtol(arg, &end, 8);
        if (end == arg || *end != '\0' || m < 0 || m > 0777) {
            bp_cli_error("stats", "--mode: want permission bits in octal, e.g. 0644");
            return BP_EXIT_USAGE;
        }
        a->mode = (int)m;
        return 0;
    }
    default: return BP_EXIT_USAGE;
    }
}

static int collect(void *user, bp_stats_dim dim, const char *key, long long count)
{
    struct stats_run *run = user;
    /* Keys are data (a domain, a category a rule file named): masked once here for every
     * format (text.h).  Two keys masked alike are one: Prometheus refuses a label set twice. */
    bp_strbuf masked = {0};
    if (bp_text_mask_append(&masked, key, strlen(key), 0) != BP_OK) {
        bp_strbuf_free(&masked);
        run->nomem = 1;
        return 1;
    }
    const char *shown = masked.data != NULL ? masked.data : "";
    if (strcmp(shown, key) != 0 || strchr(key, '?') != NULL)
        for (size_t i = 0; i < run->n[dim]; i++)
            if (strcmp(run->v[dim][i].key, shown) == 0) {
                run->v[dim][i].n += count;
                bp_strbuf_free(&masked);
                return 0;
            }
    key = shown;
    struct count *c = bp_array_push(&run->v[dim], &run->n[dim], &run->cap[dim], sizeof(*c), 16);
    if (c != NULL && (c->key = bp_strdup(key)) == NULL) /* owned by the run: freed at the end of cmd_stats() */
        run->n[dim]--;
    bp_strbuf_free(&masked);
    if (c == NULL || c->key == NULL) {
        run->nomem = 1;
        return 1;
    }
    c->n = count;
    return 0;
}

static void format_prometheus(bp_strbuf *sb, const struct stats_run *run, size_t top)
{
    static const struct {
        bp_stats_dim dim;
        const char *metric, *label, *type, *help;
    } metrics[] = {
        {BP_STATS_TYPE, "bouncepipe_events_total", "type", "counter", "Events in the ledger, by event type."},
        {BP_STATS_CATEGORY, "bouncepipe_events_by_category_total", "category", "counter",
         "Events in the ledger, by category (complaints: complaint:TYPE)."},
        {BP_STATS_ACTION, "bouncepipe_events_by_action_total", "action", "counter",
         "Events in the ledger, by the action the policy took."},
        {BP_STATS_DOMAIN, "bouncepipe_events_by_domain_total", "domain", "counter",
         "Events in the ledger for the busiest receiving domains."},
        {BP_STATS_SUPPRESSED, "bouncepipe_suppressions", "source_kind", "gauge",
         "Addresses suppressed now, by the kind of evidence."},
        {BP_STATS_LIFTED, "bouncepipe_suppressions_lifted", "source_kind", "gauge",
         "Suppressions an operator lifted, by the kind of evidence."},
    };
    for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        bp_stats_dim d = metrics[m].dim;
        bp_strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].metric, metrics[m].help, metrics[m].metric,
                         metrics[m].type);
        size_t limit = d == BP_STATS_DOMAIN ? top : run->n[d];
        for (size_t i = 0; i < run->n[d] && i < limit; i++) {
            bp_strbuf_printf(sb, "%s{%s=\"", metrics[m].metric, metrics[m].label);
            bp_cli_prometheus_label(sb, run->v[d][i].key);
            bp_strbuf_printf(sb, "\"} %lld\n", run->v[d][i].n);
        }
    }
}

/* Every count, as one JSON object of objects (the structured writer, into @p sb). */
static bp_status format_json(bp_strbuf *sb, const struct stats_run *run)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len); /* owned: closed below, buf freed */
    if (mem == NULL)
        return BP_ERR_NOMEM;
    bp_writer *w = bp_writer_new(mem, BP_WRITER_JSON);
    bp_status st = w != NULL ? BP_OK : BP_ERR_NOMEM;
    if (st == BP_OK) {
        bp_writer_begin_map(w);
        for (int d = 0; d < BP_STATS_DIM_LAST; d++) {
            bp_writer_key(w, bp_stats_dim_name((bp_stats_dim)d));
            bp_writer_begin_map(w);
            for (size_t i = 0; i < run->n[d]; i++) {
                bp_writer_entry_integer(w, run->v[d][i].key, run->v[d][i].n);
            }
            bp_writer_end(w);
        }
        bp_writer_end(w);
        bp_writer_separator(w);
        st = bp_writer_flush(w);
    }
    bp_writer_free(w);
    if (fclose(mem) != 0 && st == BP_OK)
        st = BP_ERR_NOMEM;
    if (st == BP_OK)
        st = bp_strbuf_append(sb, buf, len);
    free(buf);
    return st;
}

static void format_text(bp_strbuf *sb, const struct stats_run *run, size_t top)
{
    static const char *const titles[BP_STATS_DIM_LAST] = {
        "events by type", "events by category", "events by action",     "events by receiving domain",
        "events by day",  "suppressed now",     "lifted by an operator"};
    for (int d = 0; d < BP_STATS_DIM_LAST; d++) {
        long long total = 0;
        for (size_t i = 0; i < run->n[d]; i++)
            total += run->v[d][i].n;
        bp_strbuf_printf(sb, "%s%s (%lld):\n", d ? "\n" : "", titles[d], total);
        if (run->n[d] == 0)
            bp_strbuf_puts(sb, "  (none)\n");
        size_t start = d == BP_STATS_DAY && run->n[d] > top ? run->n[d] - top : 0;
        size_t end = d == BP_STATS_DAY ? run->n[d] : (run->n[d] < top ? run->n[d] : top);
        for (size_t i = start; i < end; i++)
            bp_strbuf_printf(sb, "  %10lld  %s\n", run->v[d][i].n, run->v[d][i].key);
        if (d != BP_STATS_DAY && run->n[d] > top)
            bp_strbuf_printf(sb, "  (and %zu more)\n", run->n[d] - top);
    }
}

static int stats_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    struct stats_args *args = user;
    bp_store_filter filter;
    struct stats_run run;
    bp_strbuf sb = {0};
    bp_store *store = NULL;
    memset(&filter, 0, sizeof(filter));
    memset(&run, 0, sizeof(run));
    int rc = BP_EXIT_OK;
    filter.since = env->since;
    if (args->mode >= 0 && args->output == NULL) {
        bp_cli_error("stats", "--mode is the mode of --output FILE: give both");
        rc = BP_EXIT_USAGE;
        goto out;
    }
    rc = bp_cli_store_ready(env, 1, 1, &store); /* no store yet: all counts are zero */
    if (rc != BP_EXIT_OK)
        goto out;
    bp_status st = BP_OK;
    if (store != NULL)
        st = bp_store_stats(store, &filter, collect, &run);
    if (st == BP_OK && run.nomem)
        st = BP_ERR_NOMEM;
    if (st != BP_OK) {
        rc = bp_cli_store_failed(env, store, st);
        goto out;
    }
    switch (env->format) {
    case 1: st = format_json(&sb, &run); break;
    case 2: format_prometheus(&sb, &run, args->top); break;
    default: format_text(&sb, &run, args->top); break;
    }
    rc = bp_cli_output(env, st, &sb, args->output, args->mode);
out:
    for (int d = 0; d < BP_STATS_DIM_LAST; d++) {
        for (size_t i = 0; i < run.n[d]; i++)
            free(run.v[d][i].key);
        free(run.v[d]);
    }
    bp_strbuf_free(&sb);
    bp_store_close(store);
    return rc;
}

static const struct stats_args stats_defaults = {10, NULL, -1};

const bp_cli_entry bp_cli_stats = {&stats_command, stats_option, stats_main, sizeof(struct stats_args),
                                   &stats_defaults};
