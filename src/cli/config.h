/*
 * config.h - the configuration file (GLib key file, "key = value" in [groups]), read by the
 * CLI and handed down as typed values.
 *
 * Which file: the one named by --config, else $BOUNCEPIPE_CONFIG, else
 * /etc/bouncepipe/bouncepipe.conf when it exists; a new user with none gets the defaults
 * (./bouncepipe.db, ./quarantine/).  A file named explicitly must exist.  The store location
 * is, in order: --db (applied by the caller), $BOUNCEPIPE_DB, [store] database, the default.
 * The quarantine is [quarantine] directory, else the directory "quarantine" beside an SQLite
 * store (bp_config_default_quarantine(): an MTA's child has no meaningful working directory);
 * a PostgreSQL store has no directory to be beside, so it needs the setting (pipe mode defers
 * without it).
 *
 *   [store]      database = PATH      busy_timeout_ms = N
 *   [quarantine] directory = PATH     retention_days = N (0: keep every message)
 *   [verp]       prefix = bounces     separators = -+      domain_separator = =
 *                pattern = powermta|postfix|any|PCRE2 with (?<local>...) and (?<domain>...)
 *   [report]     rcpt_headers = X-Rcpt;X-Recipient
 *   [rules]      files = /etc/bouncepipe/local.rules;...   builtin = true
 *   [policy]     category = suppress|soft|ignore   soft_count = N   (bp_policy_load())
 *   [dmarc]      own_networks = 192.0.2.0/24;2001:db8::/32   (our sending IPs: `bouncepipe dmarc`)
 *   [process]    user = pmta          (who a command started as root becomes: privdrop.h)
 *   [webhook NAME]  url = ...  format = ...  types = ...  (one group per endpoint; webhook.h)
 *   [deliver]    backoff_base = 30s  backoff_max = 1h  dead_after = 3d  ... (deliver.h)
 *   [signals]    stream_headers = X-Traffic-Type   complaint_rate = 0.1   ... (bp_signals_config_load())
 *
 * An unknown key in one of these groups is an error (a typo must not silently change what is
 * suppressed); other groups belong to other parts of the program and are left alone.
 * A [store] database holding a password (secret.h) in a file its group or others may read or
 * write sets secret_exposed: the commands warn, pipe mode refuses to run.
 *
 * Ownership: a bp_config owns every string in it; bp_config_free() releases them.  The
 * bp_verp_options and bp_report_options inside point into the config.
 */
#ifndef BOUNCEPIPE_CLI_CONFIG_H
#define BOUNCEPIPE_CLI_CONFIG_H

#include "bouncepipe/address.h"
#include "bouncepipe/alerts.h"
#include "bouncepipe/deliver.h"
#include "bouncepipe/policy.h"
#include "bouncepipe/report.h"
#include "bouncepipe/status.h"
#include "bouncepipe/webhook.h"

#define BP_CONFIG_DEFAULT_FILE "/etc/bouncepipe/bouncepipe.conf"
#define BP_CONFIG_DEFAULT_DB   "./bouncepipe.db"

/** A network of our own sending IPs ([dmarc] own_networks): an address and a prefix length. */
typedef struct bp_cidr {
    int family;             /**< AF_INET or AF_INET6 */
    unsigned char addr[16]; /**< network address, host bits cleared (4 bytes for AF_INET) */
    unsigned bits;          /**< prefix length */
} bp_cidr;

/**
 * Parse "ADDRESS[/BITS]" (IPv4 or IPv6; no BITS: the one address).
 * @return 0 and fills @p out, or -1 when it is not a network.
 */
int bp_cidr_parse(const char *text, bp_cidr *out);

/** @return non-zero when the IP address text @p ip is inside @p net. */
int bp_cidr_contains(const bp_cidr *net, const char *ip);

typedef struct bp_config {
    char *file;                         /**< the file that was read, or NULL for none */
    char *db;                           /**< store location */
    char *quarantine_dir;               /**< quarantine Maildir; NULL until set or defaulted beside the store */
    unsigned quarantine_retention_days; /**< remove quarantined messages older than this; 0: never */
    unsigned busy_timeout_ms;
    char *verp_prefix;      /**< NULL: any prefix */
    char *verp_separators;  /**< NULL: default */
    bp_regex *verp_pattern; /**< [verp] pattern compiled (a preset made with prefix and
                                 domain_separator), or NULL: prefix and separators decide */
    bp_verp_options verp;   /**< points into the fields above */
    char **rcpt_headers;    /**< NULL-terminated list, or NULL */
    bp_report_options report;
    char **pattern_files;      /**< NULL-terminated list of extra rule files, or NULL */
    int builtin_rules;         /**< load the shipped rule database (default 1) */
    bp_policy policy;          /**< defaults with the [policy] group applied */
    bp_signals_config signals; /**< defaults with the [signals] group applied (alerts.h) */
    char *process_user;        /**< [process] user: who a command started as root becomes, or NULL
                                    (then the owner of the store's directory) */
    bp_cidr *own_networks;     /**< [dmarc] own_networks (g_malloc'ed), or NULL */
    size_t n_own_networks;
    unsigned file_mode;            /**< permission bits of the file read (0 for none) */
    int secret_exposed;            /**< the file holds a database password (secret.h) and its group or others
                                        may read or write it: callers warn, pipe mode refuses */
    bp_webhook_endpoint *webhooks; /**< the [webhook NAME] groups in file order (malloc'ed; each freed with
                                        bp_webhook_endpoint_free()), or NULL */
    size_t n_webhooks;
    bp_deliver_options deliver; /**< the [deliver] group over bp_deliver_options_default() */
} bp_config;

/**
 * Read the configuration (see the top of this file for which file).
 * @param explicit_file --config, or NULL
 * @param error receives a malloc'ed message naming the file and key on failure
 * @return BP_OK; BP_ERR_CONFIG (missing named file, syntax error, bad key or value);
 *         BP_ERR_NOMEM.  On failure @p cfg holds nothing to free.
 */
bp_status bp_config_load(bp_config *cfg, const char *explicit_file, char **error);

/**
 * Default the quarantine beside the store at @p db (the final location, --db included):
 * unless [quarantine] directory set it, it becomes DIRNAME(db)/quarantine for an SQLite store
 * ("./quarantine" for ./bouncepipe.db); a PostgreSQL store leaves it NULL.
 */
void bp_config_default_quarantine(bp_config *cfg, const char *db);

/** Release what bp_config_load() made; the config is zeroed.  NULL allowed. */
void bp_config_free(bp_config *cfg);

#endif
