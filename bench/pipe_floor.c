/*
 * pipe_floor.c - the pipe-mode floor: the least a process that accepts one message can do.
 *
 * usage: pipe_floor DB [SYNCHRONOUS] < message
 *
 * Starts, reads one message from standard input, parses it with GMime and walks its parts,
 * then opens the SQLite database DB in WAL mode (busy_timeout 5 s, PRAGMA synchronous =
 * SYNCHRONOUS, default FULL) and commits one row (the message's SHA-256 and size) in a
 * BEGIN IMMEDIATE transaction, and exits.  That is bouncepipe pipe without rules, report
 * parsing or policy: bench/run.py reports pipe latency as a ratio of it.
 *
 * Exits 0 when the row is committed, 75 (EX_TEMPFAIL) when the database is busy or fails,
 * 1 on other errors.  The SQL is constant; message bytes reach SQLite only as bound values.
 *
 * Ownership: the message buffer, GMime objects and the database handle are released on the
 * single exit path.
 */
#include <gmime/gmime.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "walk_parts.h"

#define EXIT_TEMPFAIL 75
#define MAX_MESSAGE   (64u * 1024u * 1024u) /* the same cap as BP_MAX_MESSAGE_BYTES */

/* Read standard input to at most MAX_MESSAGE bytes into a GByteArray (caller unrefs). */
static GByteArray *read_stdin(void)
{
    GByteArray *buf = g_byte_array_sized_new(65536);
    guint8 chunk[65536];
    size_t n;
    while (buf->len < MAX_MESSAGE && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        g_byte_array_append(buf, chunk, (guint)n);
    if (ferror(stdin)) {
        g_byte_array_unref(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv)
{
    int rc = 1;
    GByteArray *bytes = NULL;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *insert = NULL;
    gchar *digest = NULL;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: pipe_floor DB [OFF|NORMAL|FULL] < message\n");
        return 2;
    }
    const char *sync_pragma = "PRAGMA synchronous=FULL";
    if (argc == 3 && strcmp(argv[2], "NORMAL") == 0)
        sync_pragma = "PRAGMA synchronous=NORMAL";
    else if (argc == 3 && strcmp(argv[2], "OFF") == 0)
        sync_pragma = "PRAGMA synchronous=OFF";

    bytes = read_stdin();
    if (bytes == NULL)
        goto out;
    g_mime_init();
    stream = g_mime_stream_mem_new_with_buffer((const char *)bytes->data, bytes->len); /* owned: a copy */
    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    message = g_mime_parser_construct_message(parser, NULL);
    size_t parts = message != NULL ? walk_parts(g_mime_message_get_mime_part(message), 0) : 0;
    digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, bytes->data, bytes->len); /* owned */

    rc = EXIT_TEMPFAIL;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sync_pragma, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS floor_message(fingerprint TEXT PRIMARY KEY, bytes INTEGER, "
                     "parts INTEGER)",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO floor_message VALUES (?1, ?2, ?3)", -1, &insert, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(insert, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(insert, 2, (sqlite3_int64)bytes->len);
    sqlite3_bind_int64(insert, 3, (sqlite3_int64)parts);
    if (sqlite3_step(insert) != SQLITE_DONE)
        goto out;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    rc = 0;

out:
    if (rc != 0 && db != NULL)
        fprintf(stderr, "pipe_floor: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(insert);
    sqlite3_close(db); /* rolls back an open transaction */
    g_free(digest);
    if (message != NULL)
        g_object_unref(message);
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream);
    if (bytes != NULL)
        g_byte_array_unref(bytes);
    return rc;
}
