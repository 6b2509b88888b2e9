/*
 * cmd_remove.c - bouncepipe remove [--db PATH] [--config FILE] --reason TEXT ADDRESS...
 *
 * Lifts the suppression of each ADDRESS; the removal, its reason and time stay in the
 * ledger.  Each ADDRESS must be exactly one address (bp_address_parse()): text that only
 * holds one ("foo' OR 1=1 --@evil.example") is a usage error, and nothing is removed.  Only evidence dated after the
 * removal suppresses the address again, so replaying old mail does not bring it back.  All addresses are removed in one
 * transaction. Exit status: 0 every address was lifted; 1 some were not suppressed (the others were lifted); 64 usage;
 * 75 store busy or unwritable (nothing changed); 78 configuration.
 *
 * Ownership: addresses are normalised into an arena freed on return.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "cli.h"

static const struct option remove_options[] = {{"reason", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
static const bp_cli_command remove_command = {
    "remove",
    BP_OPT_STORE,
    remove_options,
    0,
    NULL,
    0,
    -1,
    "usage: bouncepipe remove [--db PATH] [--config FILE] --reason TEXT ADDRESS...\n",
    BP_CLI_SETUP_NONE,
};

static int remove_option(void *user, int opt, const char *arg)
{
    if (opt != 'r')
        return BP_EXIT_USAGE;
    *(const char **)user = arg;
    return 0;
}

static int remove_main(bp_cli_env *env, void *user, int argc, char **argv)
{
    const char *reason = *(const char **)user;
    bp_store *store = NULL;
    bp_arena *arena = NULL;
    int not_suppressed = 0;
    bp_strbuf lifted = {0};
    int rc = BP_EXIT_OK;
    if (optind >= argc || reason == NULL || reason[0] == '\0') {
        if (reason == NULL || reason[0] == '\0')
            bp_cli_error("remove", "--reason is required: it stays in the ledger beside the removal");
        bp_cli_usage(&remove_command, stderr);
        return BP_EXIT_USAGE;
    }
    arena = bp_cli_arena_new("remove");
    if (arena == NULL)
        return BP_EXIT_SOFTWARE;
    for (int i = optind; i < argc; i++) {
        const char *why = NULL;
        if (bp_address_parse(arena, argv[i], &why) == NULL) {
            bp_cli_error("remove", "'%s' is not an e-mail address: %s; nothing was changed",
                         bp_text_mask(arena, argv[i], 1024), why);
            rc = BP_EXIT_USAGE;
            goto out;
        }
    }
    if (bp_cli_config_setup(env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    bp_status st = bp_cli_store_open(env, 0, &store);
    if (st == BP_OK)
        st = bp_store_begin(store);
    long long now = (long long)time(NULL);
    const char *note = bp_clean_text(arena, reason, strlen(reason), BP_MAX_STORED_NOTE_BYTES); /* stored, echoed */
    if (note == NULL)
        note = "-";
    for (int i = optind; st == BP_OK && i < argc; i++) {
        const char *why = NULL;
        const char *address = bp_address_parse(arena, argv[i], &why);
        st = bp_store_remove(store, address, note, now);
        if (st == BP_ERR_NOT_FOUND) {
            fprintf(stderr, "bouncepipe: remove: %s is not suppressed; nothing to lift\n", address);
            not_suppressed++;
            st = BP_OK;
        } else if (st == BP_OK) {
            bp_strbuf_printf(&lifted, "%s: lifted (%s)\n", address, note); /* printed once committed */
        }
    }
    st = bp_cli_end_tx(store, st);
    if (st != BP_OK) {
        if (store != NULL)
            bp_cli_error("remove", "nothing was changed: %s: %s", bp_status_to_string(st),
                         bp_cli_store_error(env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    if (lifted.data != NULL)
        fputs(lifted.data, stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = BP_EXIT_FAILURE;
    else
        rc = not_suppressed > 0 ? BP_EXIT_FAILURE : BP_EXIT_OK;
out:
    bp_strbuf_free(&lifted);
    bp_store_close(store);
    bp_arena_free(arena);
    return rc;
}

const bp_cli_entry bp_cli_remove = {&remove_command, remove_option, remove_main, sizeof(const char *), NULL};
