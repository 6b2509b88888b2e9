/*
 * cli.h - what the subcommands (one cmd_<name>.c each) share: the one main (bp_cli_main()),
 * the exit-code helper, the one table of common options and the parser that reads them,
 * helpers for an option's number or date, setting up the configuration, the rules and the
 * pipeline, opening the store and ending its transactions, writing the output, and the words
 * for people.
 *
 * The core library knows nothing of the command line; everything argv-related is here.  Each
 * command is a bp_cli_entry: its options are read (bp_cli_parse()) and set up, it runs, and
 * it reports; a message is finished in the core (process.h), not here.
 */
#ifndef BOUNCEPIPE_CLI_H
#define BOUNCEPIPE_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/classify.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/process.h"
#include "bouncepipe/rules.h"
#include "bouncepipe/source.h"
#include "bouncepipe/status.h"
#include "bouncepipe/store.h"
#include "bouncepipe/writer.h"
#include "config.h"

/* Exit codes (sysexits.h values, named here so that pipe mode's contract is visible). */
#define BP_EXIT_OK       0
#define BP_EXIT_FAILURE  1  /* some inputs failed; the run went on */
#define BP_EXIT_USAGE    64 /* EX_USAGE */
#define BP_EXIT_DATAERR  65 /* EX_DATAERR */
#define BP_EXIT_SOFTWARE 70 /* EX_SOFTWARE */
#define BP_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: the MTA keeps the message and retries */
#define BP_EXIT_CONFIG   78 /* EX_CONFIG */

/** Who reads a command's exit status: what a failure means to them. */
typedef enum bp_cli_audience {
    BP_CLI_OPERATOR = 0, /**< an operator or a script: run it again (75) only when that can help */
    BP_CLI_MTA,          /**< the MTA of pipe mode: every failure defers (75), nothing may be lost */
} bp_cli_audience;

/**
 * The one place a failure becomes an exit status.  For the MTA: BP_EXIT_OK for BP_OK, else
 * BP_EXIT_TEMPFAIL.  For an operator: BP_EXIT_TEMPFAIL when bp_status_is_transient() (busy,
 * disk full, out of memory: run it again), BP_EXIT_CONFIG for BP_ERR_CONFIG and
 * BP_ERR_UNSUPPORTED, BP_EXIT_USAGE for BP_ERR_USAGE, and BP_EXIT_FAILURE for the rest - a
 * corrupt or foreign store (BP_ERR_STORE) is a failure to look into, not a reason to retry.
 */
int bp_cli_exit_status(bp_status st, bp_cli_audience who);

/** The options the subcommands share; a command's bp_cli_command.common says which it takes. */
enum {
    BP_OPT_DB = 1u << 0,         /**< --db LOCATION */
    BP_OPT_CONFIG = 1u << 1,     /**< --config FILE */
    BP_OPT_PATTERNS = 1u << 2,   /**< --patterns FILE: operator rules, tried before the shipped ones */
    BP_OPT_NO_BUILTIN = 1u << 3, /**< --no-builtin-rules */
    BP_OPT_FORMAT = 1u << 4,     /**< --format NAME, one of bp_cli_command.formats */
    BP_OPT_RCPT = 1u << 5,       /**< --rcpt ADDRESS: the envelope recipient */
    BP_OPT_DRY_RUN = 1u << 6,    /**< --dry-run */
    BP_OPT_SINCE = 1u << 7,      /**< --since DATE */
    BP_OPT_RULES = BP_OPT_PATTERNS | BP_OPT_NO_BUILTIN,
    BP_OPT_STORE = BP_OPT_DB | BP_OPT_CONFIG,
};

/** What bp_cli_start() sets up once the command line is read. */
typedef enum bp_cli_setup {
    BP_CLI_SETUP_NONE = 0, /**< nothing: the command does it (it checks operands first) */
    BP_CLI_SETUP_CONFIG,   /**< the configuration (bp_cli_config_setup()) */
    BP_CLI_SETUP_RULES,    /**< configuration, rules and pipeline (bp_cli_env_setup()) */
} bp_cli_setup;

/** A subcommand's command line. */
typedef struct bp_cli_command {
    const char *name;
    unsigned common;            /**< BP_OPT_* bits */
    const struct option *own;   /**< the command's own long options ({0}-terminated), or NULL */
    int long_only;              /**< 1: its own options have no one-letter form; 0: each has its
                                     val as one, as the common ones do (the parser makes the letters) */
    const char *const *formats; /**< what --format accepts (NULL-terminated; the first is the
                                     default), or NULL */
    int min_operands;           /**< operands after the options, at least */
    int max_operands;           /**< at most; -1 for any number */
    const char *usage;          /**< printed for --help and, on stderr, after a usage error */
    bp_cli_setup setup;         /**< what bp_cli_start() sets up */
} bp_cli_command;

/** The common options' values, and what set-up made of them. */
typedef struct bp_cli_env {
    const char *cmd; /**< the command's name, for messages */
    /* common options (bp_cli_parse()) */
    const char *db;            /**< --db, or NULL (then $BOUNCEPIPE_DB, the config, ./bouncepipe.db) */
    const char *config_file;   /**< --config, or NULL (then $BOUNCEPIPE_CONFIG, /etc/bouncepipe/...) */
    const char *patterns_file; /**< --patterns */
    int no_builtin;            /**< --no-builtin-rules */
    int format;                /**< --format: index into the command's formats (0: the default) */
    int format_given;          /**< --format was given */
    const char *rcpt;          /**< --rcpt */
    int dry_run;               /**< --dry-run */
    long long since;           /**< --since, Unix seconds (0 when not given) */
    /* set-up (bp_cli_config_setup(), bp_cli_env_setup()) */
    int refuse_exposed; /**< a config file exposing a password is an error, not a warning (pipe) */
    bp_config config;
    int config_loaded;
    bp_rules *rules;
    unsigned rule_errors;   /**< rules skipped as invalid in --patterns and [rules] files (each
                                 warned about on stderr): pipe mode defers, others go on */
    bp_pipeline pipeline;   /**< rules, policy, VERP and report options of the configuration */
    int privileges;         /**< started as root: 0 not looked at yet, 1 dropped (or never root),
                                 2 stayed root (the store's directory is root's: nobody else to be) */
    char shown_db[1024];    /**< bp_cli_db_shown()'s text */
    char shown_error[1024]; /**< bp_cli_store_error()'s text */
} bp_cli_env;

/** A command's handler of its own options: @return 0, or an exit status (after saying why). */
typedef int (*bp_cli_own_option)(void *user, int opt, const char *arg);

/**
 * Read the command line of @p cmd: the common options it takes into @p env, its own through
 * @p own (may be NULL when it has none).  --help prints the usage on standard output.
 * @return -1 to go on (optind is the first operand), or the exit status to return at once:
 *         BP_EXIT_OK after --help, BP_EXIT_USAGE (after saying why) for a bad command line.
 */
int bp_cli_parse(const bp_cli_command *cmd, bp_cli_env *env, int argc, char **argv, bp_cli_own_option own, void *user);

/**
 * bp_cli_parse(), then the set-up @p cmd asks for.
 * @return -1 to go on, or the exit status to return at once (as bp_cli_parse(); BP_EXIT_CONFIG
 *         when set-up failed, with @p env cleaned up).
 */
int bp_cli_start(const bp_cli_command *cmd, bp_cli_env *env, int argc, char **argv, bp_cli_own_option own, void *user);

/** A command's run, once its command line is read and set up: the operands are
 *  @p argv[optind] to @p argv[argc - 1].  It releases what it made, not @p env.
 *  @return the exit status. */
typedef int (*bp_cli_run_fn)(bp_cli_env *env, void *user, int argc, char **argv);

/** A subcommand that bp_cli_main() runs (main.c's table lists them). */
typedef struct bp_cli_entry {
    const bp_cli_command *command;
    bp_cli_own_option option; /**< the handler of its own options, or NULL */
    bp_cli_run_fn run;
    size_t state_size;    /**< the command's state, handed to @p option and @p run as user */
    const void *defaults; /**< its values before the options (state_size bytes), or NULL: zero */
} bp_cli_entry;

/**
 * A subcommand's main: its state made (zeroed, or a copy of the defaults), bp_cli_start() on
 * a zeroed environment, then the command's run, then bp_cli_env_cleanup() and the state
 * freed.  So every command reads, sets up and cleans up the same way, and releases only
 * what its run made.
 * @return bp_cli_start()'s status when it ends the command (--help, a usage error, a failed
 *         set-up), BP_EXIT_SOFTWARE when out of memory, else the run's.
 */
int bp_cli_main(const bp_cli_entry *entry, int argc, char **argv);

/** Called for each message bp_cli_each_message() reads: @return 0 to go on, else an exit
 *  status that stops the run. */
typedef int (*bp_cli_message_fn)(void *user, const bp_source *src, const bp_source_msg *msg);

/**
 * Read every message of @p paths (message files, directories, mboxes, Maildirs, "-" for
 * stdin).  An input or a member that cannot be read is reported on stderr ("bouncepipe: CMD:
 * NAME: why"), counted in @p *failures, and the run goes on.
 * @param done called after each source (may be NULL)
 * @return 0, or the first non-zero value @p fn returned.
 */
int bp_cli_each_message(const char *cmd, int n, char **paths, bp_cli_message_fn fn,
                        void (*done)(void *user, const bp_source *src), void *user, int *failures);

/** Print the usage of @p cmd on @p out. */
void bp_cli_usage(const bp_cli_command *cmd, FILE *out);

/**
 * Read the configuration only (commands that need no rules).  bp_cli_env_setup() calls it.
 * @return BP_OK or BP_ERR_CONFIG / BP_ERR_NOMEM (reported on stderr).
 */
bp_status bp_cli_config_setup(bp_cli_env *env);

/**
 * The configuration, then the rules (--patterns, the config's [rules] files, then the shipped
 * database unless --no-builtin-rules or [rules] builtin = false), then the pipeline.
 * @return BP_OK, or the status of the failure (already reported on stderr).
 */
bp_status bp_cli_env_setup(bp_cli_env *env);
/** Release what set-up made. */
void bp_cli_env_cleanup(bp_cli_env *env);

/** @return the store location: --db, $BOUNCEPIPE_DB, the config file, ./bouncepipe.db. */
const char *bp_cli_db(const bp_cli_env *env);
/** The database location fit to print (bp_secret_mask(): every password becomes "***").
 *  @return text in @p env, valid until the next call. */
const char *bp_cli_db_shown(bp_cli_env *env);
/** The last error of @p store fit to print (bp_secret_scrub() with the location).
 *  @return text in @p env, valid until the next call; "" when @p store is NULL. */
const char *bp_cli_store_error(bp_cli_env *env, const bp_store *store);

/** bp_arena_new() for a command: @return the arena, or NULL after "bouncepipe: CMD: out of
 *  memory". */
bp_arena *bp_cli_arena_new(const char *cmd);

/** A store operation failed: "bouncepipe: CMD: STATUS: the store's error" (fit to print).
 *  @return the operator's exit status for @p st (bp_cli_exit_status()). */
int bp_cli_store_failed(bp_cli_env *env, const bp_store *store, bp_status st);

/**
 * The end of a command that made its output in @p sb: when @p st (the status of making it)
 * is BP_OK, write @p sb (NULL: nothing, it went out already) with bp_cli_write_file_mode()
 * to @p path (NULL or "-": standard output).
 * @return BP_EXIT_OK, or BP_EXIT_FAILURE after "bouncepipe: CMD: writing PATH failed: why".
 */
int bp_cli_output(const bp_cli_env *env, bp_status st, const bp_strbuf *sb, const char *path, int mode);

/**
 * Started as root, become an unprivileged user before anything is opened or created (privdrop.h):
 * [process] user, else the owner of the store's directory (for a postgresql:// store, of the
 * quarantine directory).  When that directory is root's, or not there (nothing can be created
 * in it), there is nobody else to become: the command stays root (env->privileges 2; pipe
 * refuses to run then).  bp_cli_store_open() calls it, so every command that opens the store
 * drops first; it does nothing when not root, or again.
 * @return BP_OK; BP_ERR_CONFIG when [process] user names nobody or becoming the user failed
 *         (reported on stderr).
 */
bp_status bp_cli_become_user(bp_cli_env *env);

/**
 * Open the store with the configured policy thresholds and busy timeout, after
 * bp_cli_become_user(); errors are reported on stderr as "bouncepipe: CMD: ...".
 * @return bp_store_open()'s status, or bp_cli_become_user()'s failure.
 */
bp_status bp_cli_store_open(bp_cli_env *env, int read_only, bp_store **out);

/**
 * bp_cli_store_open() for a command: @return BP_EXIT_OK, or the exit status of the failure
 * (bp_cli_exit_status()).  With @p absent_ok, a store that does not exist yet is no failure
 * (read-only commands: an empty list, zero counts): @p *out stays NULL.
 */
int bp_cli_store_ready(bp_cli_env *env, int read_only, int absent_ok, bp_store **out);

/** End the open transaction of @p store: committed when @p st (the status of its writes) is
 *  BP_OK, else rolled back; nothing when @p store is NULL (it never opened).
 *  @return the commit's status, or @p st. */
bp_status bp_cli_end_tx(bp_store *store, bp_status st);

/** A write transaction that spans many units (replay, import, rescore): begun with the first,
 *  committed after @p max units or once it is @p seconds old (0: no age limit). */
typedef struct bp_cli_batch {
    bp_store *store;
    size_t max;
    long seconds;
    int in_tx;
    size_t pending;
    long long started;
} bp_cli_batch;

/** Begin the batch's transaction unless one is open.  @return bp_store_begin()'s status. */
bp_status bp_cli_batch_begin(bp_cli_batch *b);
/** One unit is written: commit when the batch is full or old.  @return the commit's status. */
bp_status bp_cli_batch_done(bp_cli_batch *b);
/** Commit the open transaction (no-op without one). */
bp_status bp_cli_batch_commit(bp_cli_batch *b);
/** Roll the open transaction back (no-op without one). */
void bp_cli_batch_rollback(bp_cli_batch *b);

/** Parse a date "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[Z]" (UTC) or Unix seconds; -1 if invalid. */
long long bp_cli_parse_time(const char *s);
/** An option's date (bp_cli_parse_time()) of @p min or later: @return 0 and sets @p out, or
 *  BP_EXIT_USAGE after "bouncepipe: CMD: OPTION: want YYYY-MM-DD, ...". */
int bp_cli_time_option(const char *cmd, const char *option, const char *arg, long long min, long long *out);
/** Format Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" into @p buf (at least 32 bytes). @return buf. */
char *bp_cli_format_time(long long t, char *buf, size_t size);
/** Format Unix seconds as "YYYY-MM-DD" (UTC) into @p buf.  @return buf. */
char *bp_cli_format_date(long long t, char *buf, size_t size);
/** Parse a whole number from @p min to @p max.  @return 0 and sets @p out, or -1. */
int bp_cli_parse_count(const char *s, long min, long max, long *out);
/** An option's whole-number value (bp_cli_parse_count()): @return 0 and sets @p out, or
 *  BP_EXIT_USAGE after "bouncepipe: CMD: OPTION: want a number from MIN to MAX". */
int bp_cli_count_option(const char *cmd, const char *option, const char *arg, long min, long max, long *out);

/** --format of the commands that print events (replay, acct): the names, the first the default
 *  ("json" is NDJSON too), NULL-terminated. */
extern const char *const bp_cli_event_formats[];
/** What the chosen one of bp_cli_event_formats is for the printer (emit.h). */
bp_writer_format bp_cli_event_format(const bp_cli_env *env);

/** A string entry of a map: its key, and its value (NULL: null). */
typedef struct bp_cli_field {
    const char *key, *value;
} bp_cli_field;

/** Write the @p n string entries @p f, in order, into the map open in @p w (lookup's rows and
 *  signals' alerts list theirs so). */
void bp_cli_write_fields(bp_writer *w, const bp_cli_field *f, size_t n);

/** Write a suppression's reason, source kind, first and last evidence, count and lift as
 *  entries of the map open in @p w (export and lookup describe their rows with it). */
void bp_cli_write_suppression(bp_writer *w, const bp_suppression *r);

/** Append @p s (NULL: nothing) as a Prometheus label value: backslash, double quote and
 *  newline escaped (stats and dmarc mask their text first: valid UTF-8, no control). */
void bp_cli_prometheus_label(bp_strbuf *sb, const char *s);

/**
 * Write @p sb to standard output (@p path NULL or "-"), or to @p path atomically: a fresh file
 * beside it (mkstemp: never follows a planted symlink, two runs at once each get their own),
 * with the permission bits @p mode, or 0666 narrowed by the umask (what a shell's redirection
 * makes) when @p mode is -1, fsynced and renamed over it, so that no reader ever sees half a
 * file (stats, signals and dmarc --output, report --html).
 * @return 0, or -1 with errno set.
 */
int bp_cli_write_file_mode(const bp_strbuf *sb, const char *path, int mode);

/** Print "bouncepipe: CMD: message" on stderr. */
void bp_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Where bp_cli_log() writes. */
#define BP_CLI_LOG_STDERR 1u
#define BP_CLI_LOG_SYSLOG 2u
/** A message of @p cmd to standard error ("bouncepipe: CMD: ...") and/or syslog ("CMD: ...",
 *  at @p priority), as @p where says (BP_CLI_LOG_*): acct's notes, pipe's failures. */
void bp_cli_log(const char *cmd, int priority, unsigned where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Words for people: why the policy chose an action (explain, patterns test). */
const char *bp_cli_policy_words(bp_policy_step step);

/** explain's lines for an event's signal fields and where each was found (cmd_signals.c):
 *  nothing when the event has none. */
void bp_cli_explain_signals(FILE *out, const bp_event *e);

/* The subcommands bp_cli_main() runs, one in each cmd_<name>.c. */
extern const bp_cli_entry bp_cli_replay, bp_cli_lookup, bp_cli_remove, bp_cli_import, bp_cli_export, bp_cli_stats,
    bp_cli_rescore, bp_cli_acct, bp_cli_migrate, bp_cli_explain, bp_cli_report, bp_cli_dmarc, bp_cli_signals,
    bp_cli_deliver;
/* The two with a command line of their own: pipe (exits 0 or 75 whatever it is given) and
 * patterns (sub-subcommands). */
int cmd_pipe(int argc, char **argv);
int cmd_patterns(int argc, char **argv);

#endif
