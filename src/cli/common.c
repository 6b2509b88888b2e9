/*
 * common.c - set-up shared by the subcommands: configuration, rules, policy, the store, and
 * the one way a processed message is recorded.
 *
 * bp_cli_config_setup()  read the configuration once (config.h says which file).
 * bp_cli_env_setup()     configuration, then rules: --patterns, the config's [rules] files,
 *                        then the shipped database (unless --no-builtin-rules or
 *                        [rules] builtin = false); the policy is the config's.
 * bp_cli_store_open()    the store at bp_cli_db() with the policy's soft-bounce thresholds.
 * bp_cli_record()        a message's events as one store unit keyed by its fingerprint, dated
 *                        by its Date header (pipe and replay both call it).
 * bp_cli_message_time()  RFC 5322 Date of the message (obsolete zone names included), 0 when
 *                        absent or unreadable.
 *
 * Ownership: the env owns the rules and the config; errors are printed, never returned as text.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bouncepipe/mime.h"
#include "bouncepipe/secret.h"
#include "cli.h"

void bp_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bouncepipe: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int bp_cli_exit_status(bp_status st, bp_cli_audience who)
{
    if (st == BP_OK)
        return BP_EXIT_OK;
    if (who == BP_CLI_MTA || bp_status_is_transient(st))
        return BP_EXIT_TEMPFAIL;
    switch (st) {
    case BP_ERR_CONFIG:
    case BP_ERR_UNSUPPORTED: return BP_EXIT_CONFIG;
    case BP_ERR_USAGE: return BP_EXIT_USAGE;
    default: return BP_EXIT_FAILURE;
    }
}

bp_status bp_cli_config_setup(bp_cli_env *env)
{
    if (env->config_loaded)
        return BP_OK;
    char *error = NULL;
    bp_status st = bp_config_load(&env->config, env->config_file, &error);
    if (st != BP_OK) {
        bp_cli_error("config", "%s", error != NULL ? error : bp_status_to_string(st));
        free(error);
        return st;
    }
    env->config_loaded = 1;
    env->policy = env->config.policy;
    if (env->config.secret_exposed) {
        bp_cli_error("config",
                     "%s holds a database password and its group or others may read or write it (mode %04o): "
                     "chmod 600 it%s",
                     env->config.file, env->config.file_mode, env->refuse_exposed ? "; refusing to run" : "");
        if (env->refuse_exposed)
            return BP_ERR_CONFIG;
    }
    return BP_OK;
}

bp_status bp_cli_env_setup(bp_cli_env *env)
{
    bp_status st = bp_cli_config_setup(env);
    if (st != BP_OK)
        return st;
    st = bp_rules_new(&env->rules);
    if (st != BP_OK)
        return st;
    if (env->patterns_file != NULL) {
        st = bp_rules_load_file(env->rules, env->patterns_file, NULL, NULL, NULL);
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s: %s", env->patterns_file, bp_status_to_string(st));
            return st;
        }
    }
    for (char **f = env->config.pattern_files; f != NULL && *f != NULL; f++) {
        st = bp_rules_load_file(env->rules, *f, NULL, NULL, NULL);
        if (st != BP_OK) {
            bp_cli_error("patterns", "%s (from %s): %s", *f, env->config.file, bp_status_to_string(st));
            return st == BP_ERR_NOMEM ? st : BP_ERR_CONFIG;
        }
    }
    if (!env->no_builtin && env->config.builtin_rules)
        st = bp_rules_load_builtin(env->rules, NULL, NULL, NULL);
    return st;
}

void bp_cli_env_cleanup(bp_cli_env *env)
{
    bp_rules_free(env->rules);
    env->rules = NULL;
    if (env->config_loaded)
        bp_config_free(&env->config);
    env->config_loaded = 0;
}

const char *bp_cli_db(const bp_cli_env *env)
{
    if (env->db != NULL)
        return env->db;
    if (env->config_loaded && env->config.db != NULL)
        return env->config.db;
    return BP_CONFIG_DEFAULT_DB;
}

const char *bp_cli_db_shown(bp_cli_env *env)
{
    return bp_secret_mask(bp_cli_db(env), env->shown_db, sizeof(env->shown_db));
}

const char *bp_cli_store_error(bp_cli_env *env, const bp_store *store)
{
    if (store == NULL)
        return "";
    return bp_secret_scrub(bp_store_last_error(store), bp_cli_db(env), env->shown_error, sizeof(env->shown_error));
}

bp_status bp_cli_store_open(bp_cli_env *env, const char *cmd, int read_only, bp_store **out)
{
    bp_store_options so;
    char *error = NULL;
    bp_store_options_default(&so);
    so.soft_count = env->policy.soft_count;
    so.soft_days = env->policy.soft_days;
    so.soft_window = env->policy.soft_window;
    if (env->config_loaded)
        so.busy_timeout_ms = env->config.busy_timeout_ms;
    so.read_only = read_only;
    const char *db = bp_cli_db(env);
    bp_status st = bp_store_open(db, &so, out, &error);
    if (st != BP_OK) {
        /* the backend's text may quote the location (libpq echoes a malformed URI) */
        bp_secret_scrub(error != NULL ? error : bp_status_to_string(st), db, env->shown_error,
                        sizeof(env->shown_error));
        if (error != NULL && strstr(error, db) != NULL)
            bp_cli_error(cmd, "%s", env->shown_error); /* the backend already named the database */
        else
            bp_cli_error(cmd, "%s: %s", bp_cli_db_shown(env), env->shown_error);
    }
    free(error);
    return st;
}

void bp_cli_classify_ctx(const bp_cli_env *env, const char *rcpt, const char *envid, const char *source,
                         bp_classify_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->rules = env->rules;
    ctx->policy = &env->policy;
    ctx->envelope_rcpt = rcpt;
    ctx->verp = env->config_loaded ? &env->config.verp : NULL;
    ctx->envid = envid;
    ctx->source = source;
}

/* ---- dates ---------------------------------------------------------------------------- */

static int month_number(const char *m)
{
    static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

/* Offset in seconds east of UTC of a zone: "+0900", "-0500", "GMT", "UT", "EST", ... */
static int zone_offset(const char *z, long *offset)
{
    static const struct {
        const char *name;
        int hours;
    } zones[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4},
                 {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
    if ((z[0] == '+' || z[0] == '-') && isdigit((unsigned char)z[1]) && isdigit((unsigned char)z[2]) &&
        isdigit((unsigned char)z[3]) && isdigit((unsigned char)z[4])) {
        long hh = (z[1] - '0') * 10 + (z[2] - '0'), mm = (z[3] - '0') * 10 + (z[4] - '0');
        *offset = (z[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
        return 0;
    }
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
        if (strncasecmp(z, zones[i].name, strlen(zones[i].name)) == 0) {
            *offset = zones[i].hours * 3600L;
            return 0;
        }
    *offset = 0; /* unknown zone: RFC 5322 says treat as UTC (-0000) */
    return 0;
}

static long long parse_rfc5322_date(const char *s)
{
    int day, year, hh, mm, ss = 0;
    char mon[4] = "", zone[8] = "";
    const char *comma = strchr(s, ',');
    if (comma != NULL)
        s = comma + 1;
    int n = sscanf(s, " %d %3s %d %d:%d:%d %7s", &day, mon, &year, &hh, &mm, &ss, zone);
    if (n < 7) {
        ss = 0;
        n = sscanf(s, " %d %3s %d %d:%d %7s", &day, mon, &year, &hh, &mm, zone);
        if (n < 5)
            return 0;
    }
    int month = month_number(mon);
    if (month < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
        return 0;
    if (year < 50)
        year += 2000;
    else if (year < 1000)
        year += 1900;
    if (year < 1970 || year > 9999)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    long offset = 0;
    zone_offset(zone, &offset);
    long long r = (long long)t - offset;
    return r > 0 ? r : 0;
}

long long bp_cli_message_time(const bp_process_result *res)
{
    if (res->mime_failed || res->mime.root == NULL)
        return 0;
    const char *date = bp_part_header(res->mime.root, "Date");
    return date != NULL ? parse_rfc5322_date(date) : 0;
}

long long bp_cli_parse_time(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end == '\0')
        return v >= 0 ? v : -1;
    int n = sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec);
    if (n != 3 && n != 6)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (long long)timegm(&tm);
}

char *bp_cli_format_time(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%lld", t);
    return buf;
}

/* ---- recording ------------------------------------------------------------------------ */

bp_status bp_cli_record(bp_store *store, const bp_process_result *res, const char *source, bp_record_result *rr)
{
    bp_store_unit unit;
    memset(&unit, 0, sizeof(unit));
    unit.fingerprint = res->fingerprint;
    unit.message_id = res->n_events > 0 ? res->events[0].message_id : NULL;
    unit.source = source;
    unit.evidence_time = bp_cli_message_time(res);
    return bp_store_record(store, &unit, res->events, res->n_events, rr);
}
