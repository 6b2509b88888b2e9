/*
 * sql.c - the statements and column layout the SQLite and PostgreSQL backends share (see
 * sql.h).  Every statement is in the dialect both accept; postgres.c only turns ?N into $N.
 *
 * Per-message facts (schema 3).  A unit's Message-ID, source, original Message-ID,
 * Reporting-MTA, Envelope-Id and Arrival-Date are kept once, in its "processed" row, when all
 * its event rows agree on them; a ledger row then holds NULL there and reads the message's
 * value through the join below (coalesce), so what a reader sees is what was recorded.
 *
 * The column lists, the bp_sql_*_types arrays and the bp_sql_*_values() and bp_sql_*_row()
 * functions go together: column i of a list is value i.  Changing one means changing all.
 */
#include "sql.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"

/* ledger rows as readers see them: the message's facts filled in from "processed" */
#define LEDGER_COLUMNS                                                                                                 \
    "l.id, l.kind, l.evidence_time, l.recorded_at, l.type, l.action, l.recipient, l.recipient_from, "                  \
    "l.status, l.smtp_code, l.diagnostic, l.category, l.feedback_type, l.rule, l.final, "                              \
    "coalesce(l.reporting_mta, p.reporting_mta), l.remote_mta, coalesce(l.arrival_date, p.arrival_date), "             \
    "l.source_ip, coalesce(l.envid, p.envid), l.job_id, coalesce(l.source, p.source), "                                \
    "coalesce(l.message_id, p.message_id), coalesce(l.original_message_id, p.original_message_id), l.blocklist, "      \
    "l.family, l.note, l.fingerprint, l.domain, l.mta_category, l.sending_ip, l.vmta, l.stream, l.receiver, "          \
    "l.listed, l.address_key, l.paired_with "
#define LEDGER_SELECT "SELECT " LEDGER_COLUMNS "FROM ledger l LEFT JOIN processed p ON p.fingerprint = l.fingerprint "

#define LEDGER_INSERT_COLUMNS                                                                                          \
    "kind, evidence_time, recorded_at, type, action, recipient, recipient_from, status, smtp_code, diagnostic, "       \
    "category, feedback_type, rule, final, reporting_mta, remote_mta, arrival_date, source_ip, envid, job_id, "        \
    "source, message_id, original_message_id, blocklist, family, note, fingerprint, domain, mta_category, "            \
    "sending_ip, vmta, stream, receiver, listed, address_key, paired_with"

#define FOLD_COLUMNS                                                                                                   \
    "id, kind, evidence_time, type, action, category, feedback_type, note, paired_with, recipient, status, "           \
    "smtp_code, final, envid, job_id, fingerprint"

#define STATE_COLUMNS                                                                                                  \
    "address_key, last_time, last_id, policy, suppressed, reason, source_kind, first_seen, last_seen, count, "         \
    "lifted, "                                                                                                         \
    "lift_reason, lifted_at, active_time, active_id, soft"

#define SUPPRESSION_COLUMNS                                                                                            \
    "address, domain, reason, source_kind, first_seen, last_seen, count, lifted, lift_reason, lifted_at, address_key"

/* event rows counted by stats since ?1: a second report of a failure (paired_with > 0) not again */
#define STATS_EVENTS "FROM ledger WHERE kind = 'event' AND coalesce(paired_with, 0) <= 0 AND evidence_time >= ?1 "

_Static_assert(sizeof(BP_UNIT_ACCT_PREFIX) == 6, "BP_SQL_ACCT_ROW compares 5 bytes");

/* an outbox row (sql.h BP_SQL_OUTBOX_N) */
#define OUTBOX_COLUMNS                                                                                                 \
    "o.id, o.ledger_id, o.endpoint, o.event_key, o.state, o.attempts, o.created_at, o.next_at, o.lease_until, "        \
    "o.delivered_at, o.lease_owner, o.last_error "
/* outbox rows that are due and not leased (?1 endpoint, ?3 now), oldest first, at most ?5 */
#define OUTBOX_DUE                                                                                                     \
    "SELECT id FROM outbox WHERE endpoint = ?1 AND state = 'pending' AND next_at <= ?3 AND lease_until < ?3 "          \
    "ORDER BY id LIMIT ?5"
#define OUTBOX_CLAIM(lock)                                                                                             \
    "UPDATE outbox SET lease_owner = ?2, lease_until = ?4 WHERE id IN (" OUTBOX_DUE lock ") RETURNING id"
/* the mark of a row the caller (?2) holds */
#define OUTBOX_HELD " WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'"

const char *const bp_sql[BP_SQL_COUNT] = {
    [BP_SQL_SEEN] = "SELECT state FROM processed WHERE fingerprint = ?1",
    [BP_SQL_MARK] = "INSERT INTO processed (fingerprint, state, message_id, source, original_message_id, "
                    "reporting_mta, envid, arrival_date, first_seen, updated) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) ON CONFLICT (fingerprint) DO UPDATE SET "
                    "state = excluded.state, updated = excluded.updated, message_id = excluded.message_id, "
                    "source = excluded.source, original_message_id = excluded.original_message_id, "
                    "reporting_mta = excluded.reporting_mta, envid = excluded.envid, "
                    "arrival_date = excluded.arrival_date",
    [BP_SQL_DROP_PLACEHOLDER] =
        "DELETE FROM ledger WHERE fingerprint = ?1 AND kind = 'event' AND type = 'unrecognized'",
    [BP_SQL_LEDGER_INSERT] =
        "INSERT INTO ledger (" LEDGER_INSERT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, "
        "?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36)", /* PostgreSQL adds RETURNING id */
    [BP_SQL_LEDGER_FOR] = LEDGER_SELECT "WHERE l.address_key = ?1 ORDER BY l.evidence_time, l.id",
    /* the rows after a key: a range of index ledger_key */
    [BP_SQL_LEDGER_FOLD] =
        "SELECT " FOLD_COLUMNS " FROM ledger WHERE address_key = ?1 AND (evidence_time, id) > (?2, ?3) "
        "ORDER BY evidence_time, id",
    /* the spelling shown: the address's first row, of a range of index ledger_key ("id + 0":
     * not the primary key's order, which PostgreSQL would walk from the ledger's first row) */
    [BP_SQL_FIRST_SPELLING] = "SELECT recipient FROM ledger WHERE address_key = ?1 ORDER BY id + 0 LIMIT 1",
    /* the envelope id a unit's processed row holds (the unit's facts) */
    [BP_SQL_UNIT_ENVID] = "SELECT envid FROM processed WHERE fingerprint = ?1",
    /* ?1 the second report, ?2 the row that counts: paired_with ?2 on the one, -?1 on the other */
    [BP_SQL_LEDGER_PAIR] =
        "UPDATE ledger SET paired_with = CASE WHEN id = ?1 THEN ?2 ELSE -?1 END WHERE id IN (?1, ?2)",
    /* after rescore: a pair whose two rows' actions now differ is two pieces of evidence */
    [BP_SQL_LEDGER_UNPAIR] =
        "UPDATE ledger SET paired_with = NULL WHERE id IN (?1, (SELECT abs(paired_with) FROM ledger WHERE id = ?1)) "
        "AND (SELECT count(DISTINCT coalesce(p.action, '')) FROM ledger p WHERE p.id IN "
        "(?1, (SELECT abs(paired_with) FROM ledger WHERE id = ?1))) > 1",
    /* ?3 = 1: event rows only */
    [BP_SQL_LEDGER_PAGE] = LEDGER_SELECT "WHERE l.id > ?1 AND (CAST(?3 AS INTEGER) = 0 OR l.kind = 'event') "
                                         "ORDER BY l.id LIMIT ?2",
    /* the event rows of the units whose first row has an id in (?1, ?2], unit after unit (by
     * that first id), each in id order: one query for a page of migrate, rows past ?2 too.
     * Only event rows have a fingerprint: no test of l.kind, which led PostgreSQL's generic
     * plan to intersect with the index of every event row (1.3 s a page for 100,000 rows) */
    [BP_SQL_LEDGER_UNITS] = LEDGER_SELECT
    "WHERE l.fingerprint IN (SELECT f.fingerprint FROM ledger f WHERE f.id > ?1 AND f.id <= ?2 AND f.kind = 'event' "
    "AND NOT EXISTS (SELECT 1 FROM ledger e WHERE e.fingerprint = f.fingerprint AND e.id <= ?1)) "
    "ORDER BY min(l.id) OVER (PARTITION BY l.fingerprint), l.id",
    [BP_SQL_LEDGER_RECLASSIFY] =
        "UPDATE ledger SET category = ?2, rule = ?3, action = ?4, blocklist = ?5 WHERE id = ?1",
    [BP_SQL_SUPP_GET] = "SELECT " SUPPRESSION_COLUMNS " FROM suppressions WHERE address_key = ?1",
    /* the address (the spelling shown) is the one the row was inserted with */
    [BP_SQL_SUPP_PUT] = "INSERT INTO suppressions (" SUPPRESSION_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                        "?9, ?10, ?11) ON CONFLICT (address_key) DO UPDATE SET domain = excluded.domain, "
                        "reason = excluded.reason, source_kind = excluded.source_kind, "
                        "first_seen = excluded.first_seen, last_seen = excluded.last_seen, count = excluded.count, "
                        "lifted = excluded.lifted, lift_reason = excluded.lift_reason, lifted_at = excluded.lifted_at",
    [BP_SQL_SUPP_DELETE] = "DELETE FROM suppressions WHERE address_key = ?1",
    [BP_SQL_SUPP_LIST] = "SELECT " SUPPRESSION_COLUMNS " FROM suppressions "
                         "WHERE (CAST(?5 AS INTEGER) <> 0 OR lifted = 0) AND last_seen >= ?1 "
                         "AND (CAST(?2 AS TEXT) IS NULL OR source_kind = ?2) "
                         "AND (CAST(?3 AS TEXT) IS NULL OR reason = ?3) "
                         "AND (CAST(?4 AS TEXT) IS NULL OR domain = ?4) ORDER BY address",
    [BP_SQL_STATS_TYPE] = "SELECT type, count(*) " STATS_EVENTS "GROUP BY 1 ORDER BY 2 DESC, 1",
    [BP_SQL_STATS_CATEGORY] = "SELECT CASE WHEN type = 'complaint' THEN 'complaint:' || coalesce(feedback_type, "
                              "'unknown') ELSE category END AS c, count(*) " STATS_EVENTS
                              "AND (category IS NOT NULL OR type = 'complaint') GROUP BY 1 ORDER BY 2 DESC, 1",
    [BP_SQL_STATS_ACTION] = "SELECT coalesce(action, 'none'), count(*) " STATS_EVENTS "GROUP BY 1 ORDER BY 2 DESC, 1",
    [BP_SQL_STATS_DOMAIN] = "SELECT domain, count(*) " STATS_EVENTS "AND domain IS NOT NULL "
                            "GROUP BY 1 ORDER BY 2 DESC, 1",
    /* the day number; bp_sql_stats_key() writes it as a date */
    [BP_SQL_STATS_DAY] = "SELECT evidence_time / 86400, count(*) " STATS_EVENTS "GROUP BY 1 ORDER BY 1",
    [BP_SQL_STATS_SUPPRESSED] = "SELECT source_kind, count(*) FROM suppressions WHERE lifted = 0 "
                                "GROUP BY 1 ORDER BY 2 DESC, 1",
    [BP_SQL_STATS_LIFTED] = "SELECT source_kind, count(*) FROM suppressions WHERE lifted <> 0 "
                            "GROUP BY 1 ORDER BY 2 DESC, 1",
    [BP_SQL_STATE_GET] = "SELECT " STATE_COLUMNS " FROM derive_state WHERE address_key = ?1",
    [BP_SQL_STATE_PUT] = "INSERT INTO derive_state (" STATE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                         "?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (address_key) DO UPDATE SET "
                         "last_time = excluded.last_time, last_id = excluded.last_id, policy = excluded.policy, "
                         "suppressed = excluded.suppressed, reason = excluded.reason, "
                         "source_kind = excluded.source_kind, first_seen = excluded.first_seen, "
                         "last_seen = excluded.last_seen, count = excluded.count, lifted = excluded.lifted, "
                         "lift_reason = excluded.lift_reason, lifted_at = excluded.lifted_at, "
                         "active_time = excluded.active_time, active_id = excluded.active_id, soft = excluded.soft",
    [BP_SQL_STATE_DELETE] = "DELETE FROM derive_state WHERE address_key = ?1",
    /* schema 5: the keys to merge or pair (sql.h) */
    [BP_SQL_MIGRATE_KEYS] = BP_SQL_MIGRATE_KEYS_TEXT,
    [BP_SQL_POSITION_GET] = "SELECT stream, file, inode, byte_offset, updated_at FROM acct_position WHERE stream = ?1",
    [BP_SQL_POSITION_PUT] = "INSERT INTO acct_position (stream, file, inode, byte_offset, updated_at) VALUES (?1, ?2, "
                            "?3, ?4, ?5) ON CONFLICT (stream) DO UPDATE SET file = excluded.file, inode = "
                            "excluded.inode, byte_offset = excluded.byte_offset, updated_at = excluded.updated_at",
    /* ---- the webhook outbox (outbox.c; docs/webhooks.md) ---- */
    [BP_SQL_OUTBOX_INSERT] =
        "INSERT INTO outbox (ledger_id, endpoint, event_key, state, attempts, created_at, next_at, "
        "last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
        "ON CONFLICT (endpoint, event_key) DO NOTHING",
    /* a quarantined unit recognised later: its placeholder row goes, and with it its outbox rows */
    [BP_SQL_OUTBOX_DROP_PLACEHOLDER] = "DELETE FROM outbox WHERE ledger_id IN (SELECT id FROM ledger WHERE "
                                       "fingerprint = ?1 AND kind = 'event' AND type = 'unrecognized')",
    /* ?1 endpoint, ?2 owner, ?3 now, ?4 lease end, ?5 at most; SQLite's writer holds the database */
    [BP_SQL_OUTBOX_CLAIM] = OUTBOX_CLAIM(""),
    /* the rows a claim leased (ids ?1..?2, owner ?3, lease end ?4) with their ledger rows */
    [BP_SQL_OUTBOX_CLAIMED] =
        "SELECT " OUTBOX_COLUMNS ", " LEDGER_COLUMNS "FROM outbox o JOIN ledger l ON l.id = o.ledger_id "
        "LEFT JOIN processed p ON p.fingerprint = l.fingerprint WHERE o.id >= ?1 AND o.id <= ?2 "
        "AND o.lease_owner = ?3 AND o.lease_until = ?4 AND o.state = 'pending' ORDER BY o.id",
    [BP_SQL_OUTBOX_DELIVERED] = "UPDATE outbox SET state = 'delivered', delivered_at = ?3, lease_owner = NULL, "
                                "lease_until = 0" OUTBOX_HELD,
    [BP_SQL_OUTBOX_RETRY] = "UPDATE outbox SET attempts = attempts + 1, next_at = ?3, last_error = ?4, "
                            "lease_owner = NULL, lease_until = 0" OUTBOX_HELD,
    [BP_SQL_OUTBOX_DEAD] = "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?3, "
                           "lease_owner = NULL, lease_until = 0" OUTBOX_HELD,
    [BP_SQL_OUTBOX_RELEASE] = "UPDATE outbox SET lease_owner = NULL, lease_until = 0" OUTBOX_HELD,
    [BP_SQL_OUTBOX_RETRY_DEAD] = "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?1, lease_owner = NULL, "
                                 "lease_until = 0 WHERE state = 'dead' AND (CAST(?2 AS TEXT) IS NULL OR endpoint = ?2)",
    [BP_SQL_OUTBOX_COUNTS] = "SELECT endpoint, state, count(*), sum(CASE WHEN lease_until >= ?1 THEN 1 ELSE 0 END), "
                             "min(created_at) FROM outbox WHERE (CAST(?2 AS TEXT) IS NULL OR endpoint = ?2) "
                             "GROUP BY endpoint, state ORDER BY endpoint, state",
    /* the rows of the ledger rows in (?1, ?2] (migrate carries them) */
    [BP_SQL_OUTBOX_LIST] = "SELECT " OUTBOX_COLUMNS "FROM outbox o WHERE o.ledger_id > ?1 AND o.ledger_id <= ?2 "
                           "ORDER BY o.ledger_id, o.id",
    /* ---- the report's grouped counts (grouped.c; docs/report.md), event rows since ?1 ---- */
    [BP_SQL_GROUP_DAY_TYPE] =
        "SELECT evidence_time / 86400, type, count(*) " STATS_EVENTS "GROUP BY 1, 2 ORDER BY 1, 2",
    [BP_SQL_GROUP_DOMAIN_CATEGORY] = "SELECT domain, coalesce(category, 'complaint:' || feedback_type, type), "
                                     "count(*) " STATS_EVENTS "AND domain IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
    [BP_SQL_GROUP_RULE] =
        "SELECT rule, NULL, count(*) " STATS_EVENTS "AND rule IS NOT NULL GROUP BY 1 ORDER BY 3 DESC, 1",
    [BP_SQL_GROUP_BLOCKLIST] =
        "SELECT blocklist, NULL, count(*) " STATS_EVENTS "AND blocklist IS NOT NULL GROUP BY 1 ORDER BY 3 DESC, 1",
    /* by the day of the first evidence, lifted ones included; those before ?1 as one NULL day */
    [BP_SQL_GROUP_NEW_SUPPRESSIONS] = "SELECT CASE WHEN first_seen < ?1 THEN NULL ELSE first_seen / 86400 END, NULL, "
                                      "count(*) FROM suppressions GROUP BY 1 ORDER BY 1",
};

/* the event rows that name a list or reputation system in [?1, ?2), of sending IP ?3 (NULL: any),
 * oldest first, at most ?4: the partial index ledger_named (signals_sql.h) */
const bp_sql_stmt bp_sql_ledger_named = {LEDGER_SELECT
                                         "WHERE l.kind = 'event' AND l.blocklist IS NOT NULL AND l.evidence_time >= ?1 "
                                         "AND l.evidence_time < ?2 AND (CAST(?3 AS TEXT) IS NULL OR l.sending_ip = ?3) "
                                         "ORDER BY l.evidence_time, l.id LIMIT ?4",
                                         bp_sql_ledger_types, BP_SQL_LEDGER_N};

const char *const bp_sql_postgres[BP_SQL_COUNT] = {
    /* other processes' claims are skipped, not waited for: several deliver processes on
     * several hosts each take rows nobody holds */
    [BP_SQL_OUTBOX_CLAIM] = OUTBOX_CLAIM(" FOR UPDATE SKIP LOCKED"),
};

const bp_sql_type bp_sql_position_types[BP_SQL_POSITION_N] = {BP_SQL_TEXT, BP_SQL_TEXT, BP_SQL_INT, BP_SQL_INT,
                                                              BP_SQL_INT};

const bp_sql_stats_query bp_sql_stats[BP_STATS_DIM_LAST] = {
    {BP_SQL_STATS_TYPE, BP_STATS_TYPE, 1},     {BP_SQL_STATS_CATEGORY, BP_STATS_CATEGORY, 1},
    {BP_SQL_STATS_ACTION, BP_STATS_ACTION, 1}, {BP_SQL_STATS_DOMAIN, BP_STATS_DOMAIN, 1},
    {BP_SQL_STATS_DAY, BP_STATS_DAY, 1},       {BP_SQL_STATS_SUPPRESSED, BP_STATS_SUPPRESSED, 0},
    {BP_SQL_STATS_LIFTED, BP_STATS_LIFTED, 0},
};

const char *bp_sql_stats_key(bp_stats_dim dim, const char *key, char *buf, size_t size)
{
    if (key == NULL)
        return "unknown";
    if (dim != BP_STATS_DAY)
        return key;
    return bp_utc_format(strtoll(key, NULL, 10) * 86400LL, BP_UTC_DAY, buf, size) ? buf : key;
}

#define T BP_SQL_TEXT
#define I BP_SQL_INT
const bp_sql_type bp_sql_ledger_types[BP_SQL_LEDGER_N] = {I, T, I, I, T, T, T, T, T, T, T, T, T, T, I, T, T, T, T,
                                                          T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, I};
const bp_sql_type bp_sql_fold_types[BP_SQL_FOLD_N] = {I, T, I, T, T, T, T, T, I, T, T, T, I, T, T, T};
const bp_sql_type bp_sql_suppression_types[BP_SQL_SUPPRESSION_N] = {T, T, T, T, I, I, I, I, T, I, T};
const bp_sql_type bp_sql_state_types[BP_SQL_STATE_N] = {T, I, I, T, I, T, T, I, I, I, I, T, I, I, I, T};
const bp_sql_type bp_sql_outbox_types[BP_SQL_OUTBOX_N] = {I, I, T, T, T, I, I, I, I, I, T, T};
#undef T
#undef I

static bp_event_type type_of(const char *name)
{
    int t = name != NULL ? bp_event_type_from_name(name) : -1;
    return t >= 0 ? (bp_event_type)t : BP_EVENT_UNRECOGNIZED;
}

static bp_action action_of(const char *name)
{
    return name != NULL ? bp_action_from_name(name) : BP_ACT_NONE;
}

/* ---- the mapping of columns to the fields of a row: one table a list ---- */

/* How a column's value sits in its row struct. */
typedef enum field_kind {
    F_TEXT,      /* const char *; NULL is SQL NULL */
    F_TEXT_NONE, /* const char *, written "" for NULL (the fold state's soft list) */
    F_NUM,       /* long long */
    F_NUM_ZERO,  /* long long, written SQL NULL for 0 (lifted_at) */
    F_INT,       /* int, written as 0 or 1 */
    F_UNSIGNED,  /* unsigned */
    F_SPECIAL    /* mapped by hand (the ledger's type, action and paired_with) */
} field_kind;

typedef struct field {
    field_kind kind;
    size_t offset;
} field;

#define AT(type, kind, member)                                                                                         \
    {                                                                                                                  \
        kind, offsetof(type, member)                                                                                   \
    }
#define EV(kind, member) AT(bp_ledger_row, kind, event.member)
#define LR(kind, member) AT(bp_ledger_row, kind, member)
#define SPECIAL                                                                                                        \
    {                                                                                                                  \
        F_SPECIAL, 0                                                                                                   \
    }

/* Values of the @p n fields of @p row. */
static void values_of(const field *f, size_t n, const void *row, bp_sql_value *v)
{
    const char *base = row;
    for (size_t i = 0; i < n; i++) {
        const void *at = base + f[i].offset;
        switch (f[i].kind) {
        case F_TEXT: v[i] = bp_sql_text(*(const char *const *)at); break;
        case F_TEXT_NONE: v[i] = bp_sql_text(*(const char *const *)at != NULL ? *(const char *const *)at : ""); break;
        case F_NUM:
        case F_NUM_ZERO:
            v[i] = bp_sql_int(*(const long long *)at);
            v[i].is_null = f[i].kind == F_NUM_ZERO && v[i].num == 0;
            break;
        case F_INT: v[i] = bp_sql_int(*(const int *)at != 0); break;
        case F_UNSIGNED: v[i] = bp_sql_int(*(const unsigned *)at); break;
        case F_SPECIAL: break;
        }
    }
}

/* The @p n fields of @p row from values @p v (strings borrowed). */
static void row_of(const field *f, size_t n, const bp_sql_value *v, void *row)
{
    char *base = row;
    for (size_t i = 0; i < n; i++) {
        void *at = base + f[i].offset;
        switch (f[i].kind) {
        case F_TEXT:
        case F_TEXT_NONE: *(const char **)at = v[i].text; break;
        case F_NUM:
        case F_NUM_ZERO: *(long long *)at = v[i].num; break;
        case F_INT: *(int *)at = (int)v[i].num; break;
        case F_UNSIGNED: *(unsigned *)at = (unsigned)v[i].num; break;
        case F_SPECIAL: break;
        }
    }
}

/* LEDGER_COLUMNS; 4, 5 (type, action) and 36 (paired_with) by hand */
static const field ledger_fields[BP_SQL_LEDGER_N] = {
    LR(F_NUM, id),
    LR(F_TEXT, kind),
    LR(F_NUM, evidence_time),
    LR(F_NUM, recorded_at),
    SPECIAL,
    SPECIAL,
    EV(F_TEXT, recipient),
    EV(F_TEXT, recipient_from),
    EV(F_TEXT, status),
    EV(F_TEXT, smtp_code),
    EV(F_TEXT, diagnostic),
    EV(F_TEXT, category),
    EV(F_TEXT, feedback_type),
    EV(F_TEXT, rule),
    EV(F_INT, final),
    EV(F_TEXT, reporting_mta),
    EV(F_TEXT, remote_mta),
    EV(F_TEXT, arrival_date),
    EV(F_TEXT, source_ip),
    EV(F_TEXT, envid),
    EV(F_TEXT, job_id),
    EV(F_TEXT, source),
    EV(F_TEXT, message_id),
    EV(F_TEXT, original_message_id),
    EV(F_TEXT, blocklist),
    EV(F_TEXT, family),
    LR(F_TEXT, note),
    EV(F_TEXT, fingerprint),
    LR(F_TEXT, domain),
    LR(F_TEXT, mta_category),
    EV(F_TEXT, sending_ip),
    EV(F_TEXT, vmta),
    EV(F_TEXT, stream),
    EV(F_TEXT, receiver),
    EV(F_TEXT, listed),
    LR(F_TEXT, address_key),
    SPECIAL,
};

/* FOLD_COLUMNS; 3, 4 (type, action) and 8 (paired_with) by hand */
static const field fold_fields[BP_SQL_FOLD_N] = {
    LR(F_NUM, id),    LR(F_TEXT, kind),      LR(F_NUM, evidence_time),  SPECIAL,
    SPECIAL,          EV(F_TEXT, category),  EV(F_TEXT, feedback_type), LR(F_TEXT, note),
    SPECIAL,          EV(F_TEXT, recipient), EV(F_TEXT, status),        EV(F_TEXT, smtp_code),
    EV(F_INT, final), EV(F_TEXT, envid),     EV(F_TEXT, job_id),        EV(F_TEXT, fingerprint),
};

static const field suppression_fields[BP_SQL_SUPPRESSION_N] = {
    AT(bp_suppression, F_TEXT, address),     AT(bp_suppression, F_TEXT, domain),
    AT(bp_suppression, F_TEXT, reason),      AT(bp_suppression, F_TEXT, source_kind),
    AT(bp_suppression, F_NUM, first_seen),   AT(bp_suppression, F_NUM, last_seen),
    AT(bp_suppression, F_NUM, count),        AT(bp_suppression, F_INT, lifted),
    AT(bp_suppression, F_TEXT, lift_reason), AT(bp_suppression, F_NUM_ZERO, lifted_at),
    AT(bp_suppression, F_TEXT, address_key),
};

static const field state_fields[BP_SQL_STATE_N] = {
    AT(bp_fold_state, F_TEXT, address),     AT(bp_fold_state, F_NUM, last_time),
    AT(bp_fold_state, F_NUM, last_id),      AT(bp_fold_state, F_TEXT, policy),
    AT(bp_fold_state, F_INT, suppressed),   AT(bp_fold_state, F_TEXT, reason),
    AT(bp_fold_state, F_TEXT, source_kind), AT(bp_fold_state, F_NUM, first_seen),
    AT(bp_fold_state, F_NUM, last_seen),    AT(bp_fold_state, F_NUM, count),
    AT(bp_fold_state, F_INT, lifted),       AT(bp_fold_state, F_TEXT, lift_reason),
    AT(bp_fold_state, F_NUM, lifted_at),    AT(bp_fold_state, F_NUM, active_time),
    AT(bp_fold_state, F_NUM, active_id),    AT(bp_fold_state, F_TEXT_NONE, soft),
};

static const field position_fields[BP_SQL_POSITION_N] = {
    AT(bp_acct_position, F_TEXT, stream), AT(bp_acct_position, F_TEXT, file),      AT(bp_acct_position, F_NUM, inode),
    AT(bp_acct_position, F_NUM, offset),  AT(bp_acct_position, F_NUM, updated_at),
};

static const field outbox_fields[BP_SQL_OUTBOX_N] = {
    AT(bp_store_outbox_entry, F_NUM, id),           AT(bp_store_outbox_entry, F_NUM, ledger_id),
    AT(bp_store_outbox_entry, F_TEXT, endpoint),    AT(bp_store_outbox_entry, F_TEXT, event_key),
    AT(bp_store_outbox_entry, F_TEXT, state),       AT(bp_store_outbox_entry, F_UNSIGNED, attempts),
    AT(bp_store_outbox_entry, F_NUM, created_at),   AT(bp_store_outbox_entry, F_NUM, next_at),
    AT(bp_store_outbox_entry, F_NUM, lease_until),  AT(bp_store_outbox_entry, F_NUM, delivered_at),
    AT(bp_store_outbox_entry, F_TEXT, lease_owner), AT(bp_store_outbox_entry, F_TEXT, last_error),
};

/* The column of a pair (sql.h): paired_with on the second report, minus reported_again on
 * the row that counts. */
static bp_sql_value pair_value(const bp_ledger_row *r)
{
    bp_sql_value v = bp_sql_int(r->paired_with != 0 ? r->paired_with : -r->reported_again);
    v.is_null = v.num == 0;
    return v;
}

static void pair_of(bp_ledger_row *r, const bp_sql_value *v)
{
    r->paired_with = v->num > 0 ? v->num : 0;
    r->reported_again = v->num < 0 ? -v->num : 0;
}

void bp_sql_ledger_values(const bp_ledger_row *r, bp_sql_value v[BP_SQL_LEDGER_N])
{
    int is_event = strcmp(r->kind, BP_LEDGER_EVENT) == 0;
    values_of(ledger_fields, BP_SQL_LEDGER_N, r, v);
    v[4] = bp_sql_text(is_event ? bp_event_type_name(r->event.type) : NULL);
    v[5] = bp_sql_text(is_event ? bp_action_name(r->event.action) : NULL);
    v[36] = pair_value(r);
}

void bp_sql_ledger_row(bp_ledger_row *r, const bp_sql_value v[BP_SQL_LEDGER_N])
{
    memset(r, 0, sizeof(*r));
    row_of(ledger_fields, BP_SQL_LEDGER_N, v, r);
    r->event.type = type_of(v[4].text);
    r->event.action = action_of(v[5].text);
    pair_of(r, &v[36]);
    if (r->kind == NULL)
        r->kind = BP_LEDGER_EVENT;
}

void bp_sql_fold_row(bp_ledger_row *r, const bp_sql_value v[BP_SQL_FOLD_N], const char *address)
{
    memset(r, 0, sizeof(*r));
    row_of(fold_fields, BP_SQL_FOLD_N, v, r);
    r->event.type = type_of(v[3].text);
    r->event.action = action_of(v[4].text);
    pair_of(r, &v[8]);
    if (r->kind == NULL)
        r->kind = BP_LEDGER_EVENT;
    r->address_key = address;
}

void bp_sql_suppression_values(const bp_suppression *r, bp_sql_value v[BP_SQL_SUPPRESSION_N])
{
    values_of(suppression_fields, BP_SQL_SUPPRESSION_N, r, v);
}

void bp_sql_suppression_row(bp_suppression *r, const bp_sql_value v[BP_SQL_SUPPRESSION_N])
{
    row_of(suppression_fields, BP_SQL_SUPPRESSION_N, v, r);
}

void bp_sql_state_values(const bp_fold_state *s, bp_sql_value v[BP_SQL_STATE_N])
{
    values_of(state_fields, BP_SQL_STATE_N, s, v);
}

void bp_sql_state_row(bp_fold_state *s, const bp_sql_value v[BP_SQL_STATE_N])
{
    row_of(state_fields, BP_SQL_STATE_N, v, s);
}

void bp_sql_position_values(const bp_acct_position *pos, bp_sql_value v[BP_SQL_POSITION_N])
{
    values_of(position_fields, BP_SQL_POSITION_N, pos, v);
}

void bp_sql_position_row(bp_acct_position *pos, const bp_sql_value v[BP_SQL_POSITION_N])
{
    row_of(position_fields, BP_SQL_POSITION_N, v, pos);
}

void bp_sql_outbox_row(bp_store_outbox_entry *r, const bp_sql_value v[BP_SQL_OUTBOX_N])
{
    row_of(outbox_fields, BP_SQL_OUTBOX_N, v, r);
}

void bp_sql_mark_values(const char *fingerprint, const bp_unit_facts *facts, int state, long long now,
                        bp_sql_value v[BP_SQL_MARK_N])
{
    v[0] = bp_sql_text(fingerprint);
    v[1] = bp_sql_int(state);
    v[2] = bp_sql_text(facts->message_id);
    v[3] = bp_sql_text(facts->source);
    v[4] = bp_sql_text(facts->original_message_id);
    v[5] = bp_sql_text(facts->reporting_mta);
    v[6] = bp_sql_text(facts->envid);
    v[7] = bp_sql_text(facts->arrival_date);
    v[8] = bp_sql_int(now);
}

static int collect_text(void *user, const bp_sql_value *v)
{
    bp_sql_text_list *l = user;
    if (v[0].text == NULL)
        return 0;
    char **grown = bp_grow(l->v, l->n, &l->cap, sizeof(*grown), 16);
    if (grown == NULL) {
        l->nomem = 1;
        return 1;
    }
    l->v = grown;
    if ((l->v[l->n] = bp_strdup(v[0].text)) == NULL) {
        l->nomem = 1;
        return 1;
    }
    l->n++;
    return 0;
}

bp_status bp_sql_text_list_read(bp_status (*run)(void *h, bp_sql_call *c), void *h, bp_sql_id id,
                                bp_sql_text_list *list, const char *what)
{
    static const bp_sql_type types[] = {BP_SQL_TEXT};
    bp_sql_call c = bp_sql_read(id, NULL, 0, types, 1, collect_text, list, what);
    bp_status st = run(h, &c);
    return st == BP_OK && list->nomem ? BP_ERR_NOMEM : st;
}

void bp_sql_text_list_free(bp_sql_text_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    list->v = NULL;
    list->n = list->cap = 0;
}

bp_status bp_sql_schema_check(bp_backend_head *head, const char *where, int version, int read_only)
{
    const char *sep = where[0] != '\0' ? ": " : "";
    if (version < 0) {
        snprintf(head->error, sizeof(head->error), "%s%snot a bouncepipe database (it has other tables)", where, sep);
        return BP_ERR_STORE;
    }
    if (version > BP_STORE_SCHEMA_VERSION) {
        snprintf(head->error, sizeof(head->error), "%s%sschema version %d is newer than this program's %d", where, sep,
                 version, BP_STORE_SCHEMA_VERSION);
        return BP_ERR_STORE;
    }
    head->version = version;
    if (version < BP_STORE_SCHEMA_VERSION && read_only) {
        snprintf(head->error, sizeof(head->error), "%s%s%s", where, sep,
                 version == 0 ? "empty database" : "schema needs migrating (open it for writing once)");
        return version == 0 ? BP_ERR_NOT_FOUND : BP_ERR_STORE;
    }
    return BP_OK;
}

bp_status bp_sql_schema_migrate(void *h, const bp_sql_schema *schema, int version)
{
    bp_backend_head *head = h;
    bp_status bs = BP_OK;
    if (version >= BP_STORE_SCHEMA_VERSION)
        return BP_OK;
    for (int v = version; v < BP_STORE_SCHEMA_VERSION && bs == BP_OK; v++) {
        if (schema->steps[v] == NULL) { /* a step renumbered without filling its place */
            snprintf(head->error, sizeof(head->error), "this program has no migration to schema version %d", v + 1);
            return BP_ERR_STORE;
        }
        bs = schema->exec(h, schema->steps[v], "migrating the schema");
    }
    for (int v = version; v < BP_STORE_SCHEMA_VERSION && bs == BP_OK; v++)
        if (schema->code[v] != NULL)
            bs = schema->code[v](h);
    if (bs != BP_OK)
        return bs;
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (%d);",
             BP_STORE_SCHEMA_VERSION);
    return schema->exec(h, sql, "recording the schema version");
}

bp_status bp_sql_identity_rederive(void *h, const bp_sql_schema *schema, const char *index_sql)
{
    bp_backend_head *head = h;
    bp_sql_text_list keys = {NULL, 0, 0, 0};
    bp_status bs = bp_sql_text_list_read(schema->run, h, BP_SQL_MIGRATE_KEYS, &keys, "migrating the schema");
    if (bs == BP_OK)
        bs = schema->exec(h, BP_SQL_MIGRATE_DROP_MERGED, "migrating the schema: merged spellings");
    if (bs == BP_OK)
        bs = schema->exec(h, index_sql, "migrating the schema: indexes");
    for (size_t i = 0; i < keys.n && bs == BP_OK; i++)
        bs = head->hooks.rederive(head->hooks.ctx, h, keys.v[i]);
    bp_sql_text_list_free(&keys);
    if (bs == BP_ERR_NOMEM)
        snprintf(head->error, sizeof(head->error), "migrating the schema: out of memory");
    return bs;
}
