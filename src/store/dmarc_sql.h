/*
 * dmarc_sql.h - the DMARC tables of the store (internal to src/store/; docs/dmarc.md, "What is
 * stored"): their DDL in each backend's dialect, which sqlite.c and postgres.c run as their
 * migration to BP_DMARC_SCHEMA_VERSION (one self-contained step), and the hook
 * bp_store_record() calls for every event of a unit it records (dmarc_store.c).
 *
 *   dmarc_reports   one row per report, UNIQUE (org_name, report_id): the report's identity,
 *                   so that a report arriving twice (pipe retries, replays, a receiver that
 *                   sends it again in another message) is stored once; its period, policy
 *                   domain, p, sp, pct and totals as columns, the rest of its metadata (email,
 *                   extra_contact_info, generator, version, xml_namespace, adkim, aspf, np, fo,
 *                   testing, discovery_method, errors, detail_cut) as "key TAB value" lines in
 *                   meta; fingerprint: the message it came in
 *   dmarc_records   its records (report, n): source IP, count, policy_evaluated (a record passes
 *                   DMARC when its dkim or spf is "pass": RFC 7489's alignment), identifiers, and
 *                   its auth_results and reasons as lines in auth ("dkim|spf TAB domain TAB
 *                   selector|scope TAB result TAB human_result") and reasons ("type TAB comment")
 *   dmarc_failures  failure (ruf) reports: an ARF auth-failure report's fingerprint and its
 *                   Reported-Domain (the rest is its ledger row), linked to the domain view
 *   dmarc_rdns      reverse DNS of source IPs, cached by `bouncepipe dmarc --resolve`
 *
 * Why four tables and packed lines rather than a table per list: SQLite parses the whole
 * schema each time a connection opens it, so every table, column and index costs every
 * pipe-mode process instructions, DMARC report or not (measured, callgrind: about 14 k for a
 * table, 2.5 k a column, 10 k an index; six normalised tables cost 305 k, these four 160 k of a
 * pipe's 10 M).  The lists are read whole, for a report or for a flagged source, never
 * searched.  Stored text holds no tab or newline (bp_clean_text() folds white space), so the
 * separators are unambiguous.  No foreign keys are declared: dmarc_store.c alone writes the
 * rows, a report with all of them in one transaction.
 */
#ifndef BOUNCEPIPE_STORE_DMARC_SQL_H
#define BOUNCEPIPE_STORE_DMARC_SQL_H

#include "bouncepipe/event.h"
#include "bouncepipe/store.h"

/*
 * The store schema version the DMARC migration brings a store to: the one place its number
 * lives.  sqlite.c's and postgres.c's migrations[] hold the step at index
 * BP_DMARC_SCHEMA_VERSION - 1 (a designated initializer) and their SCHEMA_VERSION is the
 * number of migrations, so renumbering the step (another branch's migration landing first)
 * is changing this number.  Two steps on one index are an error at compile time
 * (-Woverride-init, -Werror); an index left empty is refused at the next open.
 */
#define BP_DMARC_SCHEMA_VERSION 5

/* The tables in both dialects: K the key, T text, I integer, W " WITHOUT ROWID" or "". */
#define BP_DMARC_SCHEMA(K, T, I, W)                                                                                    \
    "CREATE TABLE dmarc_reports ("                                                                                     \
    "  id " K ", org_name " T " NOT NULL, report_id " T " NOT NULL, fingerprint " T ", domain " T " NOT NULL,"         \
    "  begin_time " I " NOT NULL, end_time " I " NOT NULL, p " T ", sp " T ", pct " I ", records " I " NOT NULL,"      \
    "  messages " I " NOT NULL, messages_pass " I " NOT NULL, meta " T ", UNIQUE (org_name, report_id)"                \
    ");"                                                                                                               \
    "CREATE TABLE dmarc_records ("                                                                                     \
    "  report " I " NOT NULL, n " I " NOT NULL, source_ip " T " NOT NULL, count " I " NOT NULL, disposition " T ","    \
    "  dkim " T ", spf " T ", header_from " T ", envelope_from " T ", envelope_to " T ", auth " T ", reasons " T ","   \
    "  PRIMARY KEY (report, n)"                                                                                        \
    ")" W ";"                                                                                                          \
    "CREATE TABLE dmarc_failures ("                                                                                    \
    "  fingerprint " T " PRIMARY KEY, reported_domain " T " NOT NULL, evidence_time " I " NOT NULL"                    \
    ")" W ";"                                                                                                          \
    "CREATE TABLE dmarc_rdns (ip " T " PRIMARY KEY, name " T ", resolved_at " I " NOT NULL)" W ";"

#define BP_DMARC_SCHEMA_SQLITE BP_DMARC_SCHEMA("INTEGER PRIMARY KEY", "TEXT", "INTEGER", " WITHOUT ROWID")
#define BP_DMARC_SCHEMA_PG                                                                                             \
    BP_DMARC_SCHEMA("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "TEXT COLLATE \"C\"", "BIGINT", "")

/**
 * What bp_store_record() does with each event of a unit it records (after the unit's
 * processed row, in its transaction): a dmarc-report event's report goes to the DMARC tables
 * (once per organisation and report id), an auth-failure complaint's Reported-Domain to
 * dmarc_failures; other events are left alone.
 * @param when the unit's evidence time
 * @return BP_OK or the backend's status.
 */
bp_status bp_dmarc_store_event(bp_store *s, const char *fingerprint, const bp_event *e, long long when);

#endif
