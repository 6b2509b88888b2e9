/*
 * test_writer.c - the structured writer (writer.h): one description of a value written as
 * JSON (compact, separators putting list items on lines of their own, NDJSON at the top level),
 * CSV (header from the first row's keys or from bp_writer_columns(), cells quoted and
 * neutralised, booleans 1/0, null empty) and text (values masked, one line per separator);
 * hostile strings (8-bit bytes, ESC, C1, bidi overrides) in every back end and the house
 * masking of text.h; and a failed write that sticks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/text.h"
#include "bouncepipe/writer.h"
#include "test_support.h"

/* The rows a command like export describes. */
static void rows(bp_writer *w, size_t n)
{
    static const char *const addr[] = {"a@example.com", "=b@example.com", "c\"d@example.com"};
    assert_int_equal(bp_writer_begin_list(w), BP_OK);
    for (size_t i = 0; i < n; i++) {
        bp_writer_separator(w);
        bp_writer_begin_map(w);
        bp_writer_key(w, "address");
        bp_writer_string(w, addr[i]);
        bp_writer_key(w, "count");
        bp_writer_integer(w, (long long)i + 1);
        bp_writer_key(w, "lifted");
        bp_writer_boolean(w, i == 1);
        bp_writer_key(w, "reason");
        bp_writer_string(w, i == 0 ? NULL : "bad,mailbox");
        assert_int_equal(bp_writer_end(w), BP_OK);
    }
    assert_int_equal(bp_writer_end(w), BP_OK);
    assert_int_equal(bp_writer_separator(w), BP_OK);
}

typedef void (*describe)(bp_writer *w, size_t n);

/* Write with @p fn in @p format into a string (the caller frees it). */
static char *written(bp_writer_format format, describe fn, size_t n)
{
    bp_test_capture out;
    bp_writer *w = bp_writer_new(bp_test_capture_open(&out), format);
    assert_non_null(w);
    fn(w, n);
    assert_int_equal(bp_writer_flush(w), BP_OK);
    bp_writer_free(w);
    return bp_test_capture_close(&out);
}

static void check_written(const char *label, bp_writer_format format, describe fn, size_t n, const char *want)
{
    char *got = written(format, fn, n);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got [%s], want [%s]", label, got, want);
    free(got);
}

static void declared(bp_writer *w, size_t n)
{
    static const char *const names[] = {"address", "count"};
    bp_writer_columns(w, names, 2);
    rows(w, n);
}

/* A map of maps and lists, as lookup and stats write them; NDJSON records. */
static void nested(bp_writer *w, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        bp_writer_begin_map(w);
        bp_writer_key(w, "address");
        bp_writer_string(w, "x@example.com");
        bp_writer_key(w, "by \"type\"");
        bp_writer_begin_map(w);
        bp_writer_key(w, "bounce");
        bp_writer_integer(w, 19);
        bp_writer_key(w, "complaint");
        bp_writer_integer(w, -2);
        bp_writer_end(w);
        bp_writer_key(w, "evidence");
        bp_writer_begin_list(w);
        bp_writer_string(w, "one\n");
        bp_writer_null(w);
        bp_writer_begin_list(w);
        bp_writer_end(w);
        bp_writer_end(w);
        bp_writer_end(w);
        bp_writer_separator(w);
    }
}

static void plain(bp_writer *w, size_t n)
{
    bp_writer_begin_list(w);
    for (size_t i = 0; i < n; i++) {
        bp_writer_string(w, i == 1 ? "b\x1b[31m@example.com" : "a@example.com");
        bp_writer_integer(w, (long long)i);
        bp_writer_null(w);
        bp_writer_separator(w);
    }
    bp_writer_end(w);
}

/* Hostile strings (issue 19 item 2): an 8-bit byte, a cut UTF-8 sequence, ESC, a C1 CSI
 * (U+009B), a bidi override (U+202E), a line separator, and a line break - as a value, a key
 * and in a raw layout. */
static const char *const hostile_values[] = {"j\xf6rg@example.de",
                                             "cut\xe2\x80",
                                             "esc\x1b[8mhidden",
                                             "csi\xc2\x9b"
                                             "31m",
                                             "moc.\xe2\x80\xae"
                                             "evil",
                                             "ls\xe2\x80\xa8"
                                             "x",
                                             "a\nvictim@gmail.com"};
#define N_HOSTILE (sizeof(hostile_values) / sizeof(hostile_values[0]))

static void hostile(bp_writer *w, size_t n)
{
    (void)n;
    bp_writer_begin_map(w);
    for (size_t i = 0; i < N_HOSTILE; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%zu", i);
        bp_writer_key(w, key);
        bp_writer_string(w, hostile_values[i]);
    }
    bp_writer_key(w, hostile_values[3]); /* data as a key (stats' domains) */
    bp_writer_integer(w, 1);
    bp_writer_end(w);
    bp_writer_separator(w);
}

static void hostile_layout(bp_writer *w, size_t n)
{
    (void)n;
    for (size_t i = 0; i < N_HOSTILE; i++) {
        bp_writer_raw(w, hostile_values[i], strlen(hostile_values[i]));
        bp_writer_raw(w, "\n", 1);
    }
}

#define NESTED_RECORD                                                                                                  \
    "{\"address\":\"x@example.com\",\"by "                                                                             \
    "\\\"type\\\"\":{\"bounce\":19,\"complaint\":-2},\"evidence\":[\"one\\n\",null,[]]}\n"

/* What each back end makes of each layout: lists, rows, declared columns, nested maps
 * (NDJSON), plain text, and hostile strings (issue 19 item 2). */
static void test_layouts(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        bp_writer_format format;
        describe fn;
        size_t n;
        const char *want;
    } cases[] = {
        {"empty list", BP_WRITER_JSON, rows, 0, "[]\n"},
        {"one row", BP_WRITER_JSON, rows, 1,
         "[\n{\"address\":\"a@example.com\",\"count\":1,\"lifted\":false,\"reason\":null}\n]\n"},
        {"three rows", BP_WRITER_JSON, rows, 3,
         "[\n{\"address\":\"a@example.com\",\"count\":1,\"lifted\":false,\"reason\":null},\n"
         "{\"address\":\"=b@example.com\",\"count\":2,\"lifted\":true,\"reason\":\"bad,mailbox\"},\n"
         "{\"address\":\"c\\\"d@example.com\",\"count\":3,\"lifted\":false,\"reason\":\"bad,mailbox\"}\n]\n"},
        {"csv: no rows, no header either", BP_WRITER_CSV, rows, 0, ""},
        {"csv: header from the first row's keys", BP_WRITER_CSV, rows, 3,
         "address,count,lifted,reason\r\n"
         "a@example.com,1,0,\r\n"
         "\"'=b@example.com\",2,1,\"bad,mailbox\"\r\n"
         "\"c\"\"d@example.com\",3,0,\"bad,mailbox\"\r\n"},
        {"csv: declared header, no rows", BP_WRITER_CSV, declared, 0, "address,count\r\n"},
        {"csv: declared header once", BP_WRITER_CSV, declared, 1, "address,count\r\na@example.com,1,0,\r\n"},
        {"nested", BP_WRITER_JSON, nested, 1, NESTED_RECORD},
        {"NDJSON: one record a line", BP_WRITER_JSON, nested, 2, NESTED_RECORD NESTED_RECORD},
        {"text lines", BP_WRITER_TEXT, plain, 2, "a@example.com 0 -\nb?[31m@example.com 1 -\n"},
        {"text rows as maps", BP_WRITER_TEXT, rows, 2,
         "\na@example.com 1 false -\n=b@example.com 2 true bad,mailbox\n"},
        {"json: escaped, invalid bytes masked", BP_WRITER_JSON, hostile, 1,
         "{\"k0\":\"j?rg@example.de\",\"k1\":\"cut??\",\"k2\":\"esc\\u001b[8mhidden\",\"k3\":\"csi\\u009b31m\","
         "\"k4\":\"moc.\\u202eevil\",\"k5\":\"ls\\u2028x\",\"k6\":\"a\\nvictim@gmail.com\","
         "\"csi\\u009b31m\":1}\n"},
        {"csv: masked, line break quoted", BP_WRITER_CSV, hostile, 1,
         "k0,k1,k2,k3,k4,k5,k6,csi?31m\r\n"
         "j?rg@example.de,cut??,esc?[8mhidden,csi?31m,moc.?evil,ls?x,\"a\nvictim@gmail.com\",1\r\n"},
        {"text: masked, one line", BP_WRITER_TEXT, hostile, 1,
         "j?rg@example.de cut?? esc?[8mhidden csi?31m moc.?evil ls?x a?victim@gmail.com 1\n"},
        {"raw layout: masked but its own line ends", BP_WRITER_TEXT, hostile_layout, 1,
         "j?rg@example.de\ncut??\nesc?[8mhidden\ncsi?31m\nmoc.?evil\nls?x\na\nvictim@gmail.com\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_written(cases[i].label, cases[i].format, cases[i].fn, cases[i].n, cases[i].want);
}

/* The house masking (text.h) and the cleaning of remote text, which did not mask C1 controls
 * or bidi overrides. */
static void test_masking(void **state)
{
    (void)state;
    bp_arena *arena = bp_arena_new();
    assert_non_null(arena);
    static const struct {
        const char *label, *in, *masked, *cleaned;
    } rows[] = {
        {"plain utf-8", "caf\xc3\xa9 \xe7\x94\xa8", "caf\xc3\xa9 \xe7\x94\xa8", "caf\xc3\xa9 \xe7\x94\xa8"},
        {"escape", "a\x1b[8mb", "a?[8mb", "a?[8mb"},
        {"c1 csi",
         "a\xc2\x9b"
         "8mb",
         "a?8mb", "a?8mb"},
        {"c1 nel",
         "a\xc2\x85"
         "b",
         "a?b", "a?b"},
        {"bidi override",
         "a\xe2\x80\xae"
         "b",
         "a?b", "a?b"},
        {"bidi isolate",
         "a\xe2\x81\xa6"
         "b",
         "a?b", "a?b"},
        {"paragraph separator",
         "a\xe2\x80\xa9"
         "b",
         "a?b", "a?b"},
        {"right-to-left mark kept",
         "a\xe2\x80\x8f"
         "b",
         "a\xe2\x80\x8f"
         "b",
         "a\xe2\x80\x8f"
         "b"},
        {"invalid byte",
         "a\xff"
         "b",
         "a?b", "a?b"},
        {"surrogate",
         "a\xed\xa0\x80"
         "b",
         "a???b", "a???b"},
        {"white space", "a\t b\n", "a? b?", "a b"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_test_check_field(rows[i].label, "masked", bp_text_mask(arena, rows[i].in, 1000), rows[i].masked);
        bp_test_check_field(rows[i].label, "cleaned", bp_clean_text(arena, rows[i].in, strlen(rows[i].in), 1000),
                            rows[i].cleaned);
    }
    bp_test_check_str("cut on a character", bp_text_mask(arena, "ab\xc3\xa9", 3), "ab");
    bp_arena_free(arena);
}

/* bp_utf8_valid() reads ASCII eight bytes at a time: a sequence anywhere, across or at the
 * end of such a word, and NUL bytes (ASCII) are judged as byte by byte. */
static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        size_t len;
        int valid;
    } seqs[] =
        {
            {"\xc3\xa9", 2, 1}, {"\xe2\x82\xac", 3, 1}, {"\xf0\x9f\x98\x80", 4, 1},
            {"\0", 1, 1},       {"\xff", 1, 0},         {"\xc3", 1, 0},
            {"\xc0\x80", 2, 0}, {"\xe2\x82", 2, 0},     {"\xed\xa0\x80", 3, 0}, /* a surrogate */
        };
    char buf[64];
    for (size_t k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++)
        for (size_t at = 0; at <= 24; at++)
            for (size_t after = 0; after <= 9; after++) {
                memset(buf, 'a', sizeof(buf));
                memcpy(buf + at, seqs[k].seq, seqs[k].len);
                size_t len = at + seqs[k].len + after;
                if (bp_utf8_valid(buf, len) != seqs[k].valid)
                    fail_msg("sequence %zu at %zu with %zu after: want %d", k, at, after, seqs[k].valid);
            }
    assert_true(bp_utf8_valid("", 0));
    assert_true(bp_utf8_valid("0123456789abcdef", 16));
}

/* bp_byte_pairs: a needle with a pair the text lacks is ruled out without a search; what is
 * not ruled out is memmem's answer, for every stretch of the text and every needle cut from
 * it or from another text (the pairs of the whole text stand for any stretch of it). */
static void test_byte_pairs(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "550 5.1.1 <x@example.org>: Recipient address rejected (in reply to RCPT TO command)",
        "Sorry, I couldn't find any host named example.org. (#5.1.2)\n--- Below this line",
        "caf\xc3\xa9 \xd0\xbf\xd0\xbe\xd1\x87\xd1\x82\xd0\xb0 \xff\x80 tail",
        "",
    };
    bp_byte_pairs p;
    size_t n_texts = sizeof(texts) / sizeof(texts[0]);
    for (size_t t = 0; t < n_texts; t++) {
        const char *s = texts[t];
        size_t len = strlen(s);
        bp_byte_pairs_note(&p, s, len);
        for (size_t o = 0; o < n_texts; o++)
            for (size_t ns = 0; ns < strlen(texts[o]); ns += 3)
                for (size_t nl = 1; nl <= 12 && ns + nl <= strlen(texts[o]); nl++) {
                    const char *needle = texts[o] + ns;
                    if (o == t && !bp_byte_pairs_may_hold(&p, needle, nl))
                        fail_msg("text %zu: its own bytes %zu+%zu ruled out", t, ns, nl);
                    for (size_t from = 0; from <= len; from += 7)
                        if (bp_byte_pairs_memmem(&p, s + from, len - from, needle, nl) !=
                            memmem(s + from, len - from, needle, nl))
                            fail_msg("text %zu from %zu, needle %zu+%zu of %zu: not memmem's answer", t, from, ns, nl,
                                     o);
                }
    }
    bp_byte_pairs_note(&p, texts[0], strlen(texts[0]));
    assert_false(bp_byte_pairs_may_hold(&p, "in reply to data", 16)); /* "da" is not there */
    assert_false(bp_byte_pairs_may_hold(&p, "zz", 2));
    assert_true(bp_byte_pairs_may_hold(&p, "z", 1)); /* no pair: never ruled out */
    assert_true(bp_byte_pairs_may_hold(&p, "in reply to", 11));
    /* noting again forgets the text before */
    bp_byte_pairs_note(&p, "abc", 3);
    assert_false(bp_byte_pairs_may_hold(&p, "re", 2));
    assert_true(bp_byte_pairs_may_hold(&p, "abc", 3));
}

static void test_buffer_target(void **state)
{
    (void)state;
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "body: ");
    bp_writer *w = bp_writer_new_buffer(&sb, BP_WRITER_JSON);
    assert_non_null(w);
    bp_writer_begin_map(w);
    bp_writer_key(w, "a");
    bp_writer_string(w, "\x01");
    assert_int_equal(bp_writer_end(w), BP_OK);
    assert_int_equal(bp_writer_flush(w), BP_OK); /* no FILE to flush: into the buffer */
    bp_test_check_str("appended", sb.data, "body: {\"a\":\"\\u0001\"}");
    bp_writer_free(w);
    bp_strbuf_free(&sb);
}

/* An entry helper writes what bp_writer_key() and the scalar would. */
static void test_entries(void **state)
{
    (void)state;
    bp_strbuf sb = {0};
    bp_writer *w = bp_writer_new_buffer(&sb, BP_WRITER_JSON);
    assert_non_null(w);
    bp_writer_begin_map(w);
    bp_writer_entry_string(w, "s", "x\"y");
    bp_writer_entry_string(w, "none", NULL);
    bp_writer_entry_integer(w, "n", -42);
    bp_writer_entry_boolean(w, "b", 1);
    assert_int_equal(bp_writer_end(w), BP_OK);
    assert_int_equal(bp_writer_flush(w), BP_OK);
    bp_test_check_str("entries", sb.data, "{\"s\":\"x\\\"y\",\"none\":null,\"n\":-42,\"b\":true}");
    bp_writer_free(w);
    bp_strbuf_free(&sb);
}

static void test_failed_write_sticks(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        skip();
    setvbuf(f, NULL, _IONBF, 0);
    bp_writer *w = bp_writer_new(f, BP_WRITER_JSON);
    assert_non_null(w);
    bp_writer_begin_map(w);
    bp_writer_key(w, "a");
    bp_writer_string(w, "b");
    assert_int_equal(bp_writer_end(w), BP_OK);
    assert_int_equal(bp_writer_separator(w), BP_ERR_IO); /* the record goes out with its separator */
    assert_int_equal(bp_writer_string(w, "more"), BP_ERR_IO);
    assert_int_equal(bp_writer_flush(w), BP_ERR_IO);
    bp_writer_free(w);
    fclose(f);
}

BP_TEST_MAIN(cmocka_unit_test(test_layouts), cmocka_unit_test(test_masking), cmocka_unit_test(test_utf8_valid),
             cmocka_unit_test(test_byte_pairs), cmocka_unit_test(test_buffer_target), cmocka_unit_test(test_entries),
             cmocka_unit_test(test_failed_write_sticks))
