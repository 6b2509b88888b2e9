/*
 * test_report_html.c - the HTML report renderer on plain data: hostile strings in every place
 * a string can go come out masked and escaped (valid UTF-8, no markup of theirs), absent
 * sections say "no data" with their reason, marks carry the values given, the "other" row sums
 * what is beyond the top, and the document has what a phone and an offline browser need.
 * (tests/system/html_browser.py loads a real report in chromium.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "bouncepipe/report_html.h"
#include "test_support.h"

static const char hostile[] = "<script>alert('x')</script>\"&\x01\x7f\xc2\x85\xff\xfe end";

static void check_clean(const char *doc)
{
    assert_true(g_utf8_validate(doc, -1, NULL));
    assert_null(strstr(doc, "<script"));
    assert_null(strstr(doc, "\x01"));
    assert_null(strstr(doc, "\x7f"));
    assert_null(strstr(doc, "\xc2\x85")); /* U+0085, a C1 control */
}

static long long sum_marks(const char *doc, const char *chart)
{
    char want[64];
    snprintf(want, sizeof(want), "data-chart=\"%s\"", chart);
    const char *p = strstr(doc, want);
    assert_non_null(p);
    const char *end = strstr(p, "</svg>");
    long long sum = 0;
    while ((p = strstr(p, "data-value=\"")) != NULL && p < end) {
        sum += strtoll(p + 12, NULL, 10);
        p += 12;
    }
    return sum;
}

static void test_hostile_strings(void **state)
{
    (void)state;
    const char *keys[] = {hostile, "example.org"};
    const long long values[] = {7, 3};
    const char *types[] = {"bounce", hostile};
    const long long cells[] = {1, 2, 3, 4};
    const long long den[] = {1000, 10};
    bp_report_data d;
    memset(&d, 0, sizeof(d));
    d.title = hostile;
    d.source = hostile;
    d.generated = 1700000000;
    d.events = 10;
    d.by_action = (bp_report_counts){keys, values, 2};
    d.suppressed = (bp_report_counts){keys, values, 2};
    d.day_type = (bp_report_matrix){keys, 2, types, 2, cells};
    d.domain_category = (bp_report_matrix){keys, 2, types, 2, cells};
    d.growth = (bp_report_counts){keys, values, 2};
    d.stream_complaints = (bp_report_rates){keys, values, den, 2};
    d.ip_blocklist = (bp_report_matrix){keys, 2, types, 2, cells};
    d.blocklists = (bp_report_counts){keys, values, 2};
    d.rules = (bp_report_counts){keys, values, 2};
    d.quarantine = 5;
    d.quarantine_dir = hostile;
    bp_strbuf sb = {0};
    assert_int_equal(bp_report_html(&d, &sb), BP_OK);
    check_clean(sb.data);
    assert_non_null(strstr(sb.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;???"));
    assert_int_equal(sum_marks(sb.data, "events-per-day"), 10);
    assert_int_equal(sum_marks(sb.data, "receivers"), 10);
    assert_int_equal(sum_marks(sb.data, "rules"), 10);
    assert_int_equal(sum_marks(sb.data, "growth"), 10);
    assert_int_equal(sum_marks(sb.data, "stream-complaints"), 10);
    assert_int_equal(sum_marks(sb.data, "ip-blocklists"), 10);
    assert_null(strstr(sb.data, "data-nodata"));
    /* what an offline phone browser needs */
    assert_non_null(strstr(sb.data, "<meta name=\"viewport\""));
    assert_non_null(strstr(sb.data, "default-src 'none'"));
    assert_null(strstr(sb.data, "http://"));
    assert_null(strstr(sb.data, "https://"));
    bp_strbuf_free(&sb);
}

static void test_no_data(void **state)
{
    (void)state;
    bp_report_data d;
    memset(&d, 0, sizeof(d));
    d.stream_missing = "streams are not recorded";
    d.ip_missing = hostile;
    d.quarantine = -1;
    bp_strbuf sb = {0};
    assert_int_equal(bp_report_html(&d, &sb), BP_OK);
    check_clean(sb.data);
    assert_null(strstr(sb.data, "<svg"));
    assert_non_null(strstr(sb.data, "no data: streams are not recorded"));
    /* every section says so: days, receivers, growth, streams, IPs, lists, rules, quarantine */
    int n = 0;
    for (const char *p = sb.data; (p = strstr(p, "data-nodata")) != NULL; p++)
        n++;
    assert_int_equal(n, 8);
    bp_strbuf_free(&sb);
}

static void test_top_and_other(void **state)
{
    (void)state;
    char names[40][16];
    const char *keys[40];
    long long values[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "rule-%02d", i);
        keys[i] = names[i];
        values[i] = 40 - i;
    }
    bp_report_data d;
    memset(&d, 0, sizeof(d));
    d.rules = (bp_report_counts){keys, values, 40};
    bp_strbuf sb = {0};
    assert_int_equal(bp_report_html(&d, &sb), BP_OK);
    /* 12 bars and one "other" bar that sums the remaining 28 */
    assert_int_equal(sum_marks(sb.data, "rules"), 40 * 41 / 2);
    assert_non_null(strstr(sb.data, "(28 more)"));
    assert_null(strstr(sb.data, "rule-12<"));
    assert_non_null(strstr(sb.data, "rule-11<"));
    bp_strbuf_free(&sb);
}

BP_TEST_MAIN(cmocka_unit_test(test_hostile_strings), cmocka_unit_test(test_no_data),
             cmocka_unit_test(test_top_and_other))
