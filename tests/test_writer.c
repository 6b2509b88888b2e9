/*
 * test_writer.c - the structured writer (writer.h): one description of a value written as
 * JSON (compact, separators putting list items on lines of their own, NDJSON at the top level),
 * CSV (header from the first row's keys or from bp_writer_columns(), cells quoted and
 * neutralised, booleans 1/0, null empty) and text (values masked, one line per separator); and
 * a failed write that sticks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    bp_writer *w = bp_writer_new(f, format);
    assert_non_null(w);
    fn(w, n);
    assert_int_equal(bp_writer_flush(w), BP_OK);
    bp_writer_free(w);
    fclose(f);
    return buf;
}

static void check_written(const char *label, bp_writer_format format, describe fn, size_t n, const char *want)
{
    char *got = written(format, fn, n);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got [%s], want [%s]", label, got, want);
    free(got);
}

static void test_json_list(void **state)
{
    (void)state;
    check_written("empty list", BP_WRITER_JSON, rows, 0, "[]\n");
    check_written("one row", BP_WRITER_JSON, rows, 1,
                  "[\n{\"address\":\"a@example.com\",\"count\":1,\"lifted\":false,\"reason\":null}\n]\n");
    check_written("three rows", BP_WRITER_JSON, rows, 3,
                  "[\n{\"address\":\"a@example.com\",\"count\":1,\"lifted\":false,\"reason\":null},\n"
                  "{\"address\":\"=b@example.com\",\"count\":2,\"lifted\":true,\"reason\":\"bad,mailbox\"},\n"
                  "{\"address\":\"c\\\"d@example.com\",\"count\":3,\"lifted\":false,\"reason\":\"bad,mailbox\"}\n]\n");
}

static void test_csv_rows(void **state)
{
    (void)state;
    check_written("no rows: no header either", BP_WRITER_CSV, rows, 0, "");
    check_written("header from the first row's keys", BP_WRITER_CSV, rows, 3,
                  "address,count,lifted,reason\r\n"
                  "a@example.com,1,0,\r\n"
                  "\"'=b@example.com\",2,1,\"bad,mailbox\"\r\n"
                  "\"c\"\"d@example.com\",3,0,\"bad,mailbox\"\r\n");
}

static void declared(bp_writer *w, size_t n)
{
    static const char *const names[] = {"address", "count"};
    bp_writer_columns(w, names, 2);
    rows(w, n);
}

static void test_csv_declared_columns(void **state)
{
    (void)state;
    check_written("declared header, no rows", BP_WRITER_CSV, declared, 0, "address,count\r\n");
    check_written("declared header once", BP_WRITER_CSV, declared, 1, "address,count\r\na@example.com,1,0,\r\n");
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

static void test_json_nested(void **state)
{
    (void)state;
    const char *one = "{\"address\":\"x@example.com\",\"by \\\"type\\\"\":{\"bounce\":19,\"complaint\":-2},"
                      "\"evidence\":[\"one\\n\",null,[]]}\n";
    check_written("nested", BP_WRITER_JSON, nested, 1, one);
    char two[512];
    snprintf(two, sizeof(two), "%s%s", one, one);
    check_written("NDJSON: one record a line", BP_WRITER_JSON, nested, 2, two);
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

static void test_text(void **state)
{
    (void)state;
    check_written("text lines", BP_WRITER_TEXT, plain, 2, "a@example.com 0 -\nb?[31m@example.com 1 -\n");
    check_written("text rows as maps", BP_WRITER_TEXT, rows, 2,
                  "\na@example.com 1 false -\n=b@example.com 2 true bad,mailbox\n");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_list),
        cmocka_unit_test(test_csv_rows),
        cmocka_unit_test(test_csv_declared_columns),
        cmocka_unit_test(test_json_nested),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_buffer_target),
        cmocka_unit_test(test_failed_write_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
