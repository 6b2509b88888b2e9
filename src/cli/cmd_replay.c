/*
 * cmd_replay.c - bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDR]
 *                [--patterns FILE] PATH...
 *
 * Wires message sources to the pipeline and the printer.  An input that cannot be read is
 * reported on stderr with its name and the run goes on; the exit status is 1 when anything
 * failed, 0 otherwise.  On a terminal, runs over many files show progress on stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/process.h"
#include "bouncepipe/source.h"
#include "cli.h"

static void replay_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe replay [--dry-run] [--format ndjson|text|csv] [--rcpt ADDRESS]\n"
                 "                         [--patterns FILE] [--no-builtin-rules] PATH...\n"
                 "PATH is a message file, a directory of them, an mbox, a Maildir, or - for stdin.\n");
}

struct progress {
    int enabled;
    time_t last;
};

static void show_progress(struct progress *pg, const bp_source *src, size_t messages, int final)
{
    if (!pg->enabled)
        return;
    time_t now = time(NULL);
    if (!final && now == pg->last)
        return;
    pg->last = now;
    size_t done, total;
    bp_source_progress(src, &done, &total);
    fprintf(stderr, "\rreplay: %zu/%zu files, %zu messages%s", done, total, messages, final ? "\n" : "");
}

int cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {{"dry-run", no_argument, NULL, 'n'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"rcpt", required_argument, NULL, 'r'},
                                             {"patterns", required_argument, NULL, 'p'},
                                             {"no-builtin-rules", no_argument, NULL, 'B'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bp_cli_env env = {0};
    bp_format format = BP_FORMAT_NDJSON;
    const char *rcpt = NULL;
    int dry_run = 0, opt, failures = 0, rc = BP_EXIT_OK;
    bp_printer *printer = NULL;
    bp_arena *arena = NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "nf:r:p:Bh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': dry_run = 1; break;
        case 'f':
            if (bp_format_parse(optarg, &format) != BP_OK) {
                bp_cli_error("replay", "unknown format '%s'", optarg);
                return BP_EXIT_USAGE;
            }
            break;
        case 'r': rcpt = optarg; break;
        case 'p': env.patterns_file = optarg; break;
        case 'B': env.no_builtin = 1; break;
        case 'h': replay_usage(stdout); return BP_EXIT_OK;
        default: replay_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        replay_usage(stderr);
        return BP_EXIT_USAGE;
    }
    if (!dry_run) {
        bp_cli_error("replay", "the store is not built yet: use --dry-run");
        return BP_EXIT_USAGE;
    }
    if (bp_cli_env_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    printer = bp_printer_new(stdout, format);
    arena = bp_arena_new();
    if (printer == NULL || arena == NULL) {
        bp_cli_error("replay", "out of memory");
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    struct progress pg = {isatty(STDERR_FILENO), 0};
    size_t messages = 0;
    for (int i = optind; i < argc; i++) {
        bp_source *src = NULL;
        bp_status st = bp_source_open(argv[i], &src);
        if (st != BP_OK) {
            bp_cli_error("replay", "%s: %s", argv[i], bp_status_to_string(st));
            failures++;
            continue;
        }
        for (;;) {
            bp_source_msg msg;
            int done = 0;
            st = bp_source_next(src, &msg, &done);
            if (done)
                break;
            if (st != BP_OK) {
                bp_cli_error("replay", "%s: %s", msg.name != NULL ? msg.name : argv[i], bp_status_to_string(st));
                failures++;
                if (st == BP_ERR_NOMEM)
                    break;
                continue;
            }
            if (msg.truncated)
                bp_cli_error("replay", "%s: message longer than the limit; read its beginning only", msg.name);
            bp_arena_reset(arena);
            bp_classify_ctx ctx = {env.rules, &env.policy, rcpt, NULL, NULL, msg.name, 0};
            bp_process_result res;
            st = bp_process_message(&ctx, NULL, msg.data, msg.len, arena, &res);
            if (st != BP_OK) {
                bp_cli_error("replay", "%s: %s", msg.name, bp_status_to_string(st));
                failures++;
                continue;
            }
            if (res.mime_failed) {
                bp_cli_error("replay", "%s: not a readable message", msg.name);
                failures++;
            }
            for (size_t k = 0; k < res.n_events; k++) {
                if (bp_printer_event(printer, &res.events[k]) != BP_OK) {
                    bp_cli_error("replay", "writing output: %s", bp_status_to_string(BP_ERR_IO));
                    rc = BP_EXIT_FAILURE;
                    bp_source_close(src);
                    goto out;
                }
            }
            messages++;
            show_progress(&pg, src, messages, 0);
        }
        show_progress(&pg, src, messages, 1);
        bp_source_close(src);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        bp_cli_error("replay", "writing output failed");
        rc = BP_EXIT_FAILURE;
    }
    if (failures > 0 && rc == BP_EXIT_OK)
        rc = BP_EXIT_FAILURE;
out:
    bp_printer_free(printer);
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}
