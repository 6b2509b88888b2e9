/*
 * dmarc_parse.c - how fast the DMARC aggregate report reader is, alone.
 *
 * usage: dmarc_parse [--runs N] PATH...
 *
 * Reads every message of every PATH with bouncepipe's own sources (file, directory, mbox,
 * Maildir) into memory once, then, N times (default 5), parses each with bp_mime_parse() and
 * bp_dmarc_read_message() into a reused arena, timing the two stages apart.  Nothing is stored or
 * printed per report.  Prints, for the fastest run, the outcome counts, the total records and
 * messages read, and reports/s for MIME + DMARC and for the DMARC stage (attachment ->
 * decompression -> XML -> records) alone.  Exits 0, or 1 when an input could not be read or
 * a report was refused (the generated month of bench/dmarc_gen.py must read whole).
 *
 * Ownership: the messages are copied into one malloc'ed array each, freed at the end; each
 * parse lives in the arena, reset between messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bouncepipe/dmarc.h"
#include "bouncepipe/mime.h"
#include "each_message.h"

struct msg {
    char *data;
    size_t len;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct loaded {
    struct msg *msgs;
    size_t n, cap;
};

/* Keep a copy of one message (each_message_fn): @return 0, or -1 when memory runs out. */
static int keep(void *user, const char *data, size_t len)
{
    struct loaded *l = user;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        struct msg *bigger = realloc(l->msgs, l->cap * sizeof(*l->msgs));
        if (bigger == NULL)
            return -1;
        l->msgs = bigger;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    l->msgs[l->n++] = (struct msg){copy, len};
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 5, first = 1, failed = 0;
    if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
        runs = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc || runs < 1) {
        fprintf(stderr, "usage: dmarc_parse [--runs N] PATH...\n");
        return 2;
    }
    struct loaded l = {NULL, 0, 0};
    for (int i = first; i < argc; i++)
        if (each_message("dmarc_parse", argv[i], keep, &l) != 0)
            failed = 1;
    struct msg *msgs = l.msgs;
    size_t n = l.n;
    bp_mime_init();
    bp_dmarc_init();
    bp_arena *arena = bp_arena_new();
    if (arena == NULL)
        return 1;
    double best_total = 0, best_dmarc = 0;
    size_t counts[3] = {0, 0, 0}, records = 0;
    unsigned long long messages = 0;
    for (int run = 0; run < runs; run++) {
        double t_mime = 0, t_dmarc = 0;
        memset(counts, 0, sizeof(counts));
        records = 0;
        messages = 0;
        for (size_t i = 0; i < n; i++) {
            bp_arena_reset(arena);
            bp_mime_message m;
            bp_dmarc_report r;
            double t0 = now();
            if (bp_mime_parse(msgs[i].data, msgs[i].len, arena, &m) != BP_OK) {
                counts[BP_DMARC_NOT_REPORT]++;
                continue;
            }
            double t1 = now();
            if (bp_dmarc_read_message(&m, &bp_dmarc_reader_module, arena, &r) != BP_OK) {
                fprintf(stderr, "dmarc_parse: out of memory\n");
                return 1;
            }
            double t2 = now();
            t_mime += t1 - t0;
            t_dmarc += t2 - t1;
            counts[r.outcome]++;
            records += r.n_records;
            messages += r.messages;
            if (r.outcome == BP_DMARC_REFUSED && run == 0)
                fprintf(stderr, "dmarc_parse: message %zu refused: %s\n", i + 1, r.reason);
        }
        if (run == 0 || t_mime + t_dmarc < best_total) {
            best_total = t_mime + t_dmarc;
            best_dmarc = t_dmarc;
        }
    }
    printf("messages %zu: read %zu refused %zu not-report %zu; records %zu, messages reported %llu\n", n,
           counts[BP_DMARC_READ], counts[BP_DMARC_REFUSED], counts[BP_DMARC_NOT_REPORT], records, messages);
    printf("best of %d runs: mime+dmarc %.3f s = %.0f reports/s; dmarc alone %.3f s = %.0f reports/s\n", runs,
           best_total, best_total > 0 ? (double)n / best_total : 0.0, best_dmarc,
           best_dmarc > 0 ? (double)n / best_dmarc : 0.0);
    for (size_t i = 0; i < n; i++)
        free(msgs[i].data);
    free(msgs);
    bp_arena_free(arena);
    return failed || counts[BP_DMARC_REFUSED] > 0;
}
