/*
 * config.c - read the configuration file (see config.h for the file, keys and precedence).
 *
 * The configuration is read at the top, here in the CLI, and handed down as typed values:
 * the store location and timeout, VERP options, report options, rule files, and the policy
 * (its [policy] settings go to bp_policy_load(), which owns their meaning).  Nothing below
 * the CLI sees the file or GLib's key-file type.
 *
 * bp_config_load(): choose the file, parse it with GLib's GKeyFile, check every key of the
 * groups we own, hand [policy] to policy.c, each [webhook NAME] group to webhook.c and
 * [deliver] to deliver.c (read_webhooks(): they check their keys and values), then the
 * environment ($BOUNCEPIPE_DB).  Every error names the file and the key.
 * bp_config_default_quarantine(): the quarantine beside the store, once the store's location
 * is known (--db comes after the file).
 * bp_config_free(): release everything.
 * bp_cidr_parse(), bp_cidr_contains(): the networks of [dmarc] own_networks.
 *
 * Ownership: strings in bp_config are g_malloc'ed copies (g_free / g_strfreev release them);
 * error messages handed to the caller are malloc'ed (free()).
 */
#include "config.h"

#include <arpa/inet.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/secret.h"
#include "bouncepipe/store.h"

/* The keys of each group we own; anything else in these groups is a mistake. */
static const struct {
    const char *group;
    const char *const keys[6];
} known[] = {
    {"store", {"database", "busy_timeout_ms", NULL}},
    {"quarantine", {"directory", "retention_days", NULL}},
    {"verp", {"prefix", "separators", "domain_separator", "pattern", NULL}},
    {"report", {"rcpt_headers", NULL}},
    {"rules", {"files", "builtin", NULL}},
    {"dmarc", {"own_networks", NULL}},
    {"process", {"user", NULL}},
};

static bp_status check_keys(GKeyFile *kf, const char *file, char **error)
{
    for (size_t g = 0; g < sizeof(known) / sizeof(known[0]); g++) {
        gsize n = 0;
        gchar **keys = g_key_file_get_keys(kf, known[g].group, &n, NULL);
        for (gsize i = 0; keys != NULL && i < n; i++) {
            int ok = 0;
            for (size_t k = 0; known[g].keys[k] != NULL && !ok; k++)
                ok = strcmp(keys[i], known[g].keys[k]) == 0;
            if (!ok) {
                *error = bp_strdup_printf("%s: [%s] %s: unknown key", file, known[g].group, keys[i]);
                g_strfreev(keys);
                return BP_ERR_CONFIG;
            }
        }
        g_strfreev(keys);
    }
    return BP_OK;
}

/* A string value, or NULL when absent; an empty value counts as absent. */
static char *get_string(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);
    if (v != NULL && v[0] == '\0') {
        g_free(v);
        v = NULL;
    }
    return v;
}

static char **get_list(GKeyFile *kf, const char *group, const char *key)
{
    gsize n = 0;
    char **v = g_key_file_get_string_list(kf, group, key, &n, NULL);
    if (v != NULL && n == 0) {
        g_strfreev(v);
        v = NULL;
    }
    return v;
}

/* The keys and string values of @p group (the caller g_strfreev()s both; *n their count). */
static bp_status read_group(const bp_config *cfg, GKeyFile *kf, const char *group, gchar ***keys, gchar ***values,
                            gsize *n, char **error)
{
    *n = 0;
    *keys = g_key_file_get_keys(kf, group, n, NULL);
    if (*keys == NULL)
        *n = 0;
    *values = g_new0(gchar *, *n + 1);
    for (gsize i = 0; i < *n; i++) {
        (*values)[i] = g_key_file_get_string(kf, group, (*keys)[i], NULL);
        if ((*values)[i] == NULL) {
            *error = bp_strdup_printf("%s: [%s] %s: value cannot be read", cfg->file, group, (*keys)[i]);
            return BP_ERR_CONFIG;
        }
    }
    return BP_OK;
}

/* Hand a group's @p n settings to the module that checks them; @p why its message (the
 * caller frees it). */
typedef bp_status (*settings_load)(bp_config *cfg, const bp_policy_setting *settings, size_t n, char **why);

/* [policy]: typed settings for policy.c (it checks them). */
static bp_status load_policy(bp_config *cfg, const bp_policy_setting *settings, size_t n, char **why)
{
    return bp_policy_load(&cfg->policy, settings, n, why);
}

/* [signals]: settings for alerts.c (it checks them). */
static bp_status load_signals(bp_config *cfg, const bp_signals_setting *settings, size_t n, char **why)
{
    return bp_signals_config_load(&cfg->signals, settings, n, why);
}

/* A group of settings that a lower module checks ([policy], [signals]): read, handed over
 * by @p load, its complaint worded with the file's name. */
static bp_status read_settings(bp_config *cfg, GKeyFile *kf, const char *group, settings_load load, char **error)
{
    gsize n = 0;
    gchar **keys = NULL, **values = NULL;
    char *why = NULL;
    bp_status st = read_group(cfg, kf, group, &keys, &values, &n, error);
    bp_policy_setting *settings = g_new0(bp_policy_setting, n + 1);
    for (gsize i = 0; st == BP_OK && i < n; i++)
        settings[i] = (bp_policy_setting){keys[i], values[i]};
    if (st == BP_OK)
        st = load(cfg, settings, n, &why);
    if (st == BP_ERR_CONFIG && *error == NULL)
        *error = why != NULL ? bp_strdup_printf("%s: %s", cfg->file, why)
                             : bp_strdup_printf("%s: [%s]: invalid", cfg->file, group);
    free(why);
    g_free(settings);
    g_strfreev(values);
    g_strfreev(keys);
    return st;
}

/* [verp] pattern: a preset (built with the prefix and domain separator read already) or a
 * PCRE2 pattern with the named groups local and domain, compiled once here. */
static bp_status read_verp_pattern(bp_config *cfg, GKeyFile *kf, char **error)
{
    /* the value as written: a pattern's backslashes are not key-file escapes */
    char *form = g_key_file_get_value(kf, "verp", "pattern", NULL);
    if (form != NULL && form[0] == '\0') {
        g_free(form);
        form = NULL;
    }
    if (form == NULL)
        return BP_OK;
    bp_status st = BP_OK;
    bp_arena *arena = bp_arena_new();
    char *text = arena != NULL ? bp_verp_pattern_text(arena, form, cfg->verp_prefix, cfg->verp.domain_separator) : NULL;
    char why[300] = "out of memory";
    cfg->verp_pattern = text != NULL ? bp_verp_pattern_compile(text, why, sizeof(why)) : NULL;
    if (cfg->verp_pattern == NULL) {
        *error = bp_strdup_printf("%s: [verp] pattern: %s", cfg->file, why);
        st = text == NULL ? BP_ERR_NOMEM : BP_ERR_CONFIG;
    }
    bp_arena_free(arena);
    g_free(form);
    return st;
}

/* One [webhook NAME] group: its keys set in file order, then checked (webhook.h). */
static bp_status read_endpoint(bp_webhook_endpoint *ep, GKeyFile *kf, const char *group, char **why)
{
    gsize n = 0;
    bp_status st = bp_webhook_endpoint_init(ep, group + strlen("webhook "), why);
    gchar **keys = st == BP_OK ? g_key_file_get_keys(kf, group, &n, NULL) : NULL;
    for (gsize i = 0; keys != NULL && i < n && st == BP_OK; i++) {
        char *v = g_key_file_get_string(kf, group, keys[i], NULL); /* GKeyFile's unescaped string */
        if (v == NULL) {
            *why = bp_strdup_printf("[%s] %s: value cannot be read", group, keys[i]);
            st = BP_ERR_CONFIG;
        } else {
            st = bp_webhook_endpoint_set(ep, keys[i], v, why);
        }
        g_free(v);
    }
    g_strfreev(keys);
    if (st == BP_OK)
        st = bp_webhook_endpoint_check(ep, why);
    return st;
}

/* The [webhook NAME] groups, in file order, and the [deliver] group. */
static bp_status read_webhooks(bp_config *cfg, GKeyFile *kf, char **error)
{
    char *why = NULL;
    bp_status st = BP_OK;
    gchar **groups = g_key_file_get_groups(kf, NULL);
    for (size_t g = 0; groups[g] != NULL && st == BP_OK; g++) {
        if (strcmp(groups[g], "webhook") == 0) {
            why = bp_strdup_printf("[webhook]: name the endpoint: [webhook NAME]");
            st = BP_ERR_CONFIG;
            break;
        }
        if (strncmp(groups[g], "webhook ", 8) != 0)
            continue;
        if (cfg->n_webhooks >= BP_WEBHOOK_MAX_ENDPOINTS) {
            why = bp_strdup_printf("[%s]: more than %u webhook endpoints", groups[g], BP_WEBHOOK_MAX_ENDPOINTS);
            st = BP_ERR_CONFIG;
            break;
        }
        bp_webhook_endpoint *v = bp_realloc(cfg->webhooks, (cfg->n_webhooks + 1) * sizeof(*v));
        if (v == NULL) {
            st = BP_ERR_NOMEM;
            break;
        }
        cfg->webhooks = v;
        st = read_endpoint(&v[cfg->n_webhooks], kf, groups[g], &why);
        if (st != BP_OK) {
            bp_webhook_endpoint_free(&v[cfg->n_webhooks]);
            break;
        }
        cfg->n_webhooks++;
    }
    g_strfreev(groups);
    gsize n = 0;
    gchar **keys = st == BP_OK ? g_key_file_get_keys(kf, "deliver", &n, NULL) : NULL;
    for (gsize i = 0; keys != NULL && i < n && st == BP_OK; i++) {
        char *v = g_key_file_get_string(kf, "deliver", keys[i], NULL);
        st = bp_deliver_options_set(&cfg->deliver, keys[i], v != NULL ? v : "", &why);
        g_free(v);
    }
    g_strfreev(keys);
    if (st == BP_ERR_CONFIG)
        *error = bp_strdup_printf("%s: %s", cfg->file, why != NULL ? why : "[webhook]: invalid");
    free(why);
    return st;
}

/* A whole number from 0 to @p max at [@p group] @p key, into @p out when the key is there.
 * @return 0, or -1 when it is not such a number (the caller words it). */
static int read_whole(GKeyFile *kf, const char *group, const char *key, gint64 max, unsigned *out)
{
    if (!g_key_file_has_key(kf, group, key, NULL))
        return 0;
    GError *gerr = NULL;
    gint64 v = g_key_file_get_int64(kf, group, key, &gerr);
    if (gerr != NULL || v < 0 || v > max) {
        g_clear_error(&gerr);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static bp_status read_file(bp_config *cfg, GKeyFile *kf, char **error)
{
    const char *file = cfg->file;
    GError *gerr = NULL;
    bp_status st = check_keys(kf, file, error);
    if (st != BP_OK)
        return st;
    char *db = get_string(kf, "store", "database");
    if (db != NULL) {
        g_free(cfg->db);
        cfg->db = db;
        struct stat sb;
        if (bp_secret_present(db) && stat(file, &sb) == 0) {
            cfg->file_mode = (unsigned)(sb.st_mode & 07777);
            cfg->secret_exposed = (sb.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0;
        }
    }
    if (read_whole(kf, "store", "busy_timeout_ms", 3600000, &cfg->busy_timeout_ms) != 0) {
        *error = bp_strdup_printf("%s: [store] busy_timeout_ms: want milliseconds from 0 to 3600000", file);
        return BP_ERR_CONFIG;
    }
    char *q = get_string(kf, "quarantine", "directory");
    if (q != NULL) {
        g_free(cfg->quarantine_dir);
        cfg->quarantine_dir = q;
    }
    if (read_whole(kf, "quarantine", "retention_days", 36500, &cfg->quarantine_retention_days) != 0) {
        *error =
            bp_strdup_printf("%s: [quarantine] retention_days: want days from 0 (keep every message) to 36500", file);
        return BP_ERR_CONFIG;
    }
    cfg->verp_prefix = get_string(kf, "verp", "prefix");
    cfg->verp_separators = get_string(kf, "verp", "separators");
    char *dsep = get_string(kf, "verp", "domain_separator");
    if (dsep != NULL) {
        int bad = strlen(dsep) != 1 || dsep[0] == '@';
        cfg->verp.domain_separator = dsep[0];
        g_free(dsep);
        if (bad) {
            *error = bp_strdup_printf("%s: [verp] domain_separator: want one character other than @", file);
            return BP_ERR_CONFIG;
        }
    }
    st = read_verp_pattern(cfg, kf, error);
    if (st != BP_OK)
        return st;
    cfg->process_user = get_string(kf, "process", "user");
    cfg->rcpt_headers = get_list(kf, "report", "rcpt_headers");
    cfg->pattern_files = get_list(kf, "rules", "files");
    if (g_key_file_has_key(kf, "rules", "builtin", NULL)) {
        gboolean b = g_key_file_get_boolean(kf, "rules", "builtin", &gerr);
        if (gerr != NULL) {
            *error = bp_strdup_printf("%s: [rules] builtin: want true or false", file);
            g_clear_error(&gerr);
            return BP_ERR_CONFIG;
        }
        cfg->builtin_rules = b ? 1 : 0;
    }
    char **nets = get_list(kf, "dmarc", "own_networks");
    for (size_t i = 0; nets != NULL && nets[i] != NULL; i++) {
        bp_cidr net;
        if (bp_cidr_parse(g_strstrip(nets[i]), &net) != 0) {
            *error = bp_strdup_printf(
                "%s: [dmarc] own_networks: '%s' is not a network (want 192.0.2.0/24 or 2001:db8::/32)", file, nets[i]);
            g_strfreev(nets);
            return BP_ERR_CONFIG;
        }
        cfg->own_networks = g_renew(bp_cidr, cfg->own_networks, cfg->n_own_networks + 1);
        cfg->own_networks[cfg->n_own_networks++] = net;
    }
    g_strfreev(nets);
    st = read_webhooks(cfg, kf, error);
    if (st == BP_OK)
        st = read_settings(cfg, kf, "policy", load_policy, error);
    return st == BP_OK ? read_settings(cfg, kf, "signals", load_signals, error) : st;
}

int bp_cidr_parse(const char *text, bp_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (len == 0 || len >= sizeof(addr))
        return -1;
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(out, 0, sizeof(*out));
    out->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET6 ? 128 : 32;
    if (inet_pton(out->family, addr, out->addr) != 1)
        return -1;
    out->bits = max;
    if (slash != NULL) {
        char *end = NULL;
        unsigned long bits = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || bits > max)
            return -1;
        out->bits = (unsigned)bits;
    }
    for (unsigned b = out->bits; b < max; b++) /* the host bits: cleared */
        out->addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
    return 0;
}

int bp_cidr_contains(const bp_cidr *net, const char *ip)
{
    unsigned char a[16];
    int family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
    if (family != net->family || inet_pton(family, ip, a) != 1)
        return 0;
    for (unsigned b = 0; b < net->bits; b++) {
        unsigned char m = (unsigned char)(0x80u >> (b % 8));
        if ((a[b / 8] & m) != (net->addr[b / 8] & m))
            return 0;
    }
    return 1;
}

bp_status bp_config_load(bp_config *cfg, const char *explicit_file, char **error)
{
    bp_status st = BP_OK;
    GKeyFile *kf = NULL;
    GError *gerr = NULL;
    *error = NULL;
    memset(cfg, 0, sizeof(*cfg));
    cfg->db = g_strdup(BP_CONFIG_DEFAULT_DB);
    cfg->busy_timeout_ms = 10000;
    cfg->builtin_rules = 1;
    bp_policy_default(&cfg->policy);
    bp_signals_config_default(&cfg->signals);
    bp_deliver_options_default(&cfg->deliver);

    const char *file = explicit_file;
    if (file == NULL) {
        const char *env = getenv("BOUNCEPIPE_CONFIG");
        if (env != NULL && env[0] != '\0')
            file = env;
    }
    int required = file != NULL;
    if (file == NULL && access(BP_CONFIG_DEFAULT_FILE, F_OK) == 0)
        file = BP_CONFIG_DEFAULT_FILE;
    if (file != NULL) {
        cfg->file = g_strdup(file);
        kf = g_key_file_new();
        if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &gerr)) {
            if (required || !g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                *error = bp_strdup_printf("%s: %s", file, gerr->message);
                st = BP_ERR_CONFIG;
                goto out;
            }
        } else {
            st = read_file(cfg, kf, error);
            if (st != BP_OK)
                goto out;
        }
    }
    const char *env_db = getenv("BOUNCEPIPE_DB");
    if (env_db != NULL && env_db[0] != '\0') {
        g_free(cfg->db);
        cfg->db = g_strdup(env_db);
    }
    cfg->verp.prefix = cfg->verp_prefix;
    cfg->verp.separators = cfg->verp_separators;
    cfg->verp.pattern = cfg->verp_pattern;
    cfg->report.rcpt_headers = (const char *const *)cfg->rcpt_headers;
    cfg->report.verp = &cfg->verp;
out:
    g_clear_error(&gerr);
    if (kf != NULL)
        g_key_file_free(kf);
    if (st != BP_OK) {
        if (*error == NULL)
            *error = bp_strdup_printf("configuration: %s", bp_status_to_string(st));
        bp_config_free(cfg);
    }
    return st;
}

void bp_config_default_quarantine(bp_config *cfg, const char *db)
{
    if (cfg->quarantine_dir != NULL || db == NULL || bp_store_is_postgres(db))
        return;
    char *dir = g_path_get_dirname(db); /* "." for a bare file name */
    cfg->quarantine_dir = g_build_filename(dir, "quarantine", NULL);
    g_free(dir);
}

void bp_config_free(bp_config *cfg)
{
    if (cfg == NULL)
        return;
    g_free(cfg->file);
    g_free(cfg->db);
    g_free(cfg->quarantine_dir);
    g_free(cfg->verp_prefix);
    g_free(cfg->verp_separators);
    bp_regex_free(cfg->verp_pattern);
    g_free(cfg->process_user);
    g_strfreev(cfg->rcpt_headers);
    g_strfreev(cfg->pattern_files);
    g_free(cfg->own_networks);
    bp_signals_config_free(&cfg->signals);
    for (size_t i = 0; i < cfg->n_webhooks; i++)
        bp_webhook_endpoint_free(&cfg->webhooks[i]); /* zeroes the secrets */
    free(cfg->webhooks);
    memset(cfg, 0, sizeof(*cfg));
}
