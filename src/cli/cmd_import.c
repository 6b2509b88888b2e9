/*
 * cmd_import.c - bouncepipe import [--db PATH] [--config FILE] [--reason TEXT]
 *                [--kind import|manual] [--force] FILE|-
 *
 * Adds an existing suppression list.  The file is either one address per line ('#' starts a
 * comment) or CSV with a header line naming an address column (address, email, e-mail,
 * recipient; case-insensitive) and optionally a reason column (reason, category); CSV is
 * recognised by a header line with one of those names.  Each address is operator evidence
 * of kind "import" (or "manual") dated now.  Addresses an operator removed are left alone
 * unless --force; addresses already suppressed are unchanged, so importing twice changes
 * nothing.  A line that holds no address is reported with its line number and skipped.
 * Commits every IMPORT_BATCH addresses.
 * Exit status: 0; 1 when lines were skipped; 64 usage; 75 store busy or unwritable (the
 * current batch rolled back: run it again); 78 configuration.
 *
 * Ownership: lines are read with getline() into one buffer; addresses are normalised into an
 * arena reset every line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "cli.h"

#define IMPORT_BATCH   1000
#define IMPORT_MAX_COL 64

static void import_usage(FILE *out)
{
    fprintf(out, "usage: bouncepipe import [--db PATH] [--config FILE] [--reason TEXT] [--kind import|manual]\n"
                 "                         [--force] FILE|-\n");
}

/* Split one CSV line (RFC 4180 quoting, no line breaks inside quotes) in place.
 * @return the number of fields, at most IMPORT_MAX_COL. */
static size_t csv_split(char *line, char **fields)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    break;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *out++ = *p++;
            }
            while (*p != '\0' && *p != ',')
                p++;
        } else {
            while (*p != '\0' && *p != ',')
                *out++ = *p++;
        }
        char sep = *p;
        *out = '\0';
        if (n < IMPORT_MAX_COL)
            fields[n++] = start;
        if (sep != ',')
            break;
        p++;
    }
    return n;
}

static void chomp(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
}

static int is_name(const char *s, const char *const *names)
{
    while (*s == ' ' || *s == '\t')
        s++;
    for (size_t i = 0; names[i] != NULL; i++)
        if (strncasecmp(s, names[i], strlen(names[i])) == 0) {
            const char *rest = s + strlen(names[i]);
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest == '\0')
                return 1;
        }
    return 0;
}

int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {{"db", required_argument, NULL, 'd'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"reason", required_argument, NULL, 'r'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"force", no_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static const char *const address_names[] = {"address", "email", "e-mail", "email_address", "recipient", NULL};
    static const char *const reason_names[] = {"reason", "category", NULL};
    bp_cli_env env = {0};
    const char *reason = NULL, *kind = BP_KIND_IMPORT;
    int force = 0, opt, rc = BP_EXIT_OK, in_tx = 0;
    bp_store *store = NULL;
    bp_arena *arena = NULL;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0, pending = 0, added = 0, unchanged = 0, skipped = 0;
    unsigned long lineno = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:r:k:Fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': env.db = optarg; break;
        case 'c': env.config_file = optarg; break;
        case 'r': reason = optarg; break;
        case 'k':
            if (strcmp(optarg, BP_KIND_IMPORT) != 0 && strcmp(optarg, BP_KIND_MANUAL) != 0) {
                bp_cli_error("import", "--kind is import or manual");
                return BP_EXIT_USAGE;
            }
            kind = strcmp(optarg, BP_KIND_IMPORT) == 0 ? BP_KIND_IMPORT : BP_KIND_MANUAL;
            break;
        case 'F': force = 1; break;
        case 'h': import_usage(stdout); return BP_EXIT_OK;
        default: import_usage(stderr); return BP_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        import_usage(stderr);
        return BP_EXIT_USAGE;
    }
    const char *path = argv[optind];
    in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        bp_cli_error("import", "%s: %m", path);
        return BP_EXIT_FAILURE;
    }
    arena = bp_arena_new();
    if (arena == NULL) {
        rc = BP_EXIT_SOFTWARE;
        goto out;
    }
    if (bp_cli_config_setup(&env) != BP_OK) {
        rc = BP_EXIT_CONFIG;
        goto out;
    }
    bp_status st = bp_cli_store_open(&env, "import", 0, &store);
    if (st != BP_OK) {
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    int csv = 0, addr_col = 0, reason_col = -1;
    ssize_t got;
    while ((got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        bp_arena_reset(arena);
        if ((size_t)got > BP_MAX_ACCT_LINE_BYTES) {
            fprintf(stderr, "bouncepipe: import: %s:%lu: line too long, skipped\n", path, lineno);
            skipped++;
            continue;
        }
        chomp(line);
        if (lineno == 1 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 BOM, as spreadsheets write it */
            memmove(line, line + 3, strlen(line + 3) + 1);
        char *fields[IMPORT_MAX_COL];
        size_t n = 1;
        fields[0] = line;
        if (lineno == 1) {
            char *copy = bp_arena_strdup(arena, line);
            size_t nh = copy != NULL ? csv_split(copy, fields) : 0;
            for (size_t i = 0; i < nh; i++) {
                if (is_name(fields[i], address_names)) {
                    csv = 1;
                    addr_col = (int)i;
                } else if (is_name(fields[i], reason_names)) {
                    reason_col = (int)i;
                }
            }
            if (csv)
                continue; /* the header */
            reason_col = -1;
        }
        const char *text = line;
        const char *row_reason = reason;
        if (csv) {
            n = csv_split(line, fields);
            if ((size_t)addr_col >= n) {
                fprintf(stderr, "bouncepipe: import: %s:%lu: no address column, skipped\n", path, lineno);
                skipped++;
                continue;
            }
            text = fields[addr_col];
            if (reason_col >= 0 && (size_t)reason_col < n && fields[reason_col][0] != '\0')
                row_reason = fields[reason_col];
        } else {
            while (*text == ' ' || *text == '\t')
                text++;
            if (*text == '\0' || *text == '#')
                continue;
        }
        const char *address = bp_address_normalise(arena, text);
        if (address == NULL) {
            fprintf(stderr, "bouncepipe: import: %s:%lu: no address, skipped\n", path, lineno);
            skipped++;
            continue;
        }
        if (!in_tx) {
            st = bp_store_begin(store);
            if (st != BP_OK)
                break;
            in_tx = 1;
        }
        int changed = 0;
        st = bp_store_add(store, address, row_reason, kind, 0, force, &changed);
        if (st != BP_OK)
            break;
        if (changed)
            added++;
        else
            unchanged++;
        if (++pending >= IMPORT_BATCH) {
            in_tx = 0;
            pending = 0;
            st = bp_store_commit(store);
            if (st != BP_OK)
                break;
        }
    }
    if (st == BP_OK && ferror(in)) {
        bp_cli_error("import", "%s: read error", path);
        rc = BP_EXIT_FAILURE;
    }
    if (st == BP_OK && in_tx) {
        in_tx = 0;
        st = bp_store_commit(store);
    }
    if (st != BP_OK) {
        if (in_tx)
            bp_store_rollback(store);
        in_tx = 0;
        bp_cli_error("import", "%s:%lu: %s: %s; the current batch was rolled back", path, lineno,
                     bp_status_to_string(st), bp_cli_store_error(&env, store));
        rc = bp_cli_exit_status(st, BP_CLI_OPERATOR);
        goto out;
    }
    fprintf(stderr, "import: %zu added, %zu already suppressed or removed by an operator, %zu lines skipped\n", added,
            unchanged, skipped);
    if (rc == BP_EXIT_OK && skipped > 0)
        rc = BP_EXIT_FAILURE;
out:
    if (in_tx)
        bp_store_rollback(store);
    free(line);
    if (in != NULL && in != stdin)
        fclose(in);
    bp_store_close(store);
    bp_arena_free(arena);
    bp_cli_env_cleanup(&env);
    return rc;
}
