/*
 * test_mime.c - the GMime adapter: line ends, the zero-copy input view, the limits it
 * enforces (header field size, header and boundary line counts, depth, parts, decoding
 * budget), charset decoding, and header values: skipping GMime's decoding pass for values
 * that need none agrees byte for byte with g_mime_header_get_value() (tricky values, long
 * values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/mime.h"
#include "bouncepipe/text.h"
#include "test_support.h"

/* Building test messages in a bp_strbuf; memory running out fails the test. */
static void put(bp_strbuf *b, const char *s, size_t n)
{
    assert_int_equal(bp_strbuf_append(b, s, n), BP_OK);
}

static void puts_(bp_strbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_repeat(bp_strbuf *b, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bp_strbuf_putc(b, c), BP_OK);
}

/* @p unit, @p n times over. */
static void put_times(bp_strbuf *b, const char *unit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        puts_(b, unit);
}

/* Parse the message built in @p b into @p m (its tree in @p arena) and free @p b; fails the
 * test unless it parses. */
static void parse_built(bp_arena *arena, bp_strbuf *b, bp_mime_message *m)
{
    assert_int_equal(bp_mime_parse(b->data, b->len, arena, m), BP_OK);
    bp_strbuf_free(b);
}

/* Parse the message @p head, then @p unit @p n times over, then @p tail into @p m (its tree in
 * @p arena); fails the test unless it parses. */
static void parse_repeated(bp_arena *arena, const char *head, const char *unit, size_t n, const char *tail,
                           bp_mime_message *m)
{
    bp_strbuf b = {0};
    puts_(&b, head);
    put_times(&b, unit, n);
    puts_(&b, tail);
    parse_built(arena, &b, m);
}

static const char dsn_lf[] = "From: MAILER-DAEMON@mx.example.net\n"
                             "Subject: Undelivered Mail\n"
                             "MIME-Version: 1.0\n"
                             "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n"
                             "\n"
                             "--B\n"
                             "Content-Type: text/plain\n"
                             "\n"
                             "Delivery failed.\n"
                             "Second line.\n"
                             "--B\n"
                             "Content-Type: message/delivery-status\n"
                             "\n"
                             "Reporting-MTA: dns; mx.example.net\n"
                             "\n"
                             "Final-Recipient: rfc822; alice@example.com\n"
                             "Action: failed\n"
                             "Status: 5.1.1\n"
                             "--B--\n";

/* The @p in_len bytes of @p in with every LF replaced by @p eol (malloc'ed, NUL-terminated,
 * its length in @p len). */
static char *with_line_ends(const char *in, size_t in_len, const char *eol, size_t *len)
{
    bp_strbuf b = {0};
    for (size_t k = 0; k < in_len; k++) {
        if (in[k] == '\n')
            puts_(&b, eol);
        else
            put(&b, in + k, 1);
    }
    *len = b.len;
    return b.data;
}

static const bp_part *find(const bp_mime_message *m, const char *type, const char *subtype)
{
    const bp_part *p = bp_part_find(m->root, type, subtype);
    if (p == NULL)
        fail_msg("no %s/%s part", type, subtype);
    return p;
}

static void test_line_ends_agree(void **state)
{
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    const char *want_text = NULL, *want_status = NULL;
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        char *msg = with_line_ends(dsn_lf, sizeof(dsn_lf) - 1, eols[i], &len);
        bp_mime_message m;
        assert_int_equal(bp_mime_parse(msg, len, *state, &m), BP_OK);
        assert_int_equal(m.n_parts, 3);
        assert_string_equal(bp_part_header(m.root, "Subject"), "Undelivered Mail");
        assert_string_equal(m.root->report_type, "delivery-status");
        const bp_part *text = find(&m, "text", "plain");
        const bp_part *ds = find(&m, "message", "delivery-status");
        if (strchr(text->body, '\r') != NULL || strchr(ds->body, '\r') != NULL)
            fail_msg("line end %zu: a CR is left in a decoded body", i);
        if (want_text == NULL) {
            want_text = text->body;
            want_status = ds->body;
        } else if (strcmp(text->body, want_text) != 0 || strcmp(ds->body, want_status) != 0) {
            fail_msg("line end %zu: bodies differ from the LF parse: got \"%s\"", i, ds->body);
        }
        assert_false(m.input_cut);
        free(msg);
    }
    assert_non_null(strstr(want_status, "Final-Recipient: rfc822; alice@example.com\nAction: failed"));
}

/* Parse the field @p name built too long in @p b, followed by dsn_lf, into @p m: the input is
 * cut and the field is kept, shortened to the limit.  @return its value. */
static const char *parse_shortened(bp_arena *arena, bp_strbuf *b, const char *name, bp_mime_message *m)
{
    puts_(b, dsn_lf);
    parse_built(arena, b, m);
    assert_true(m->input_cut);
    const char *value = bp_part_header(m->root, name);
    assert_non_null(value);
    assert_true(strlen(value) <= BP_MAX_HEADER_BYTES);
    return value;
}

static void test_long_header_line_is_shortened(void **state)
{
    bp_strbuf b = {0};
    puts_(&b, "X-Long: ");
    put_repeat(&b, 'a', 3 * BP_MAX_HEADER_BYTES);
    puts_(&b, "\r\nX-After: yes\r\n");
    bp_mime_message m;
    const char *lng = parse_shortened(*state, &b, "X-Long", &m);
    assert_true(strlen(lng) >= BP_MAX_HEADER_BYTES - 16);
    /* what follows the long field is intact: the next field and the whole report */
    assert_string_equal(bp_part_header(m.root, "X-After"), "yes");
    assert_non_null(strstr(find(&m, "message", "delivery-status")->body, "alice@example.com"));
}

static void test_long_folded_header_is_shortened(void **state)
{
    bp_strbuf b = {0};
    puts_(&b, "X-Folded: start\n");
    for (size_t i = 0; i < 4 * BP_MAX_HEADER_BYTES / 100; i++) {
        puts_(&b, " ");
        put_repeat(&b, 'b', 98);
        puts_(&b, "\n");
    }
    bp_mime_message m;
    parse_shortened(*state, &b, "X-Folded", &m);
    assert_string_equal(bp_part_header(m.root, "Subject"), "Undelivered Mail");
    assert_non_null(find(&m, "message", "delivery-status"));
}

static void test_header_line_count_cuts_input(void **state)
{
    bp_mime_message m;
    parse_repeated(*state, "Subject: many headers\n", "X-H: v\n", BP_MAX_MIME_HEADER_LINES + 100,
                   "X-Last: never seen\n\nbody\n", &m);
    assert_true(m.input_cut);
    assert_string_equal(bp_part_header(m.root, "Subject"), "many headers");
    assert_null(bp_part_header(m.root, "X-Last"));
    assert_true(m.root->n_headers <= BP_MAX_HEADERS_PER_PART);
}

static void test_part_limits(void **state)
{
    bp_mime_message m;
    parse_repeated(*state, "Content-Type: multipart/mixed; boundary=\"p\"\n\n", "--p\n\nx\n",
                   BP_MAX_MIME_DASH_LINES + 10, "--p--\n", &m);
    assert_true(m.input_cut);
    assert_true(m.parts_truncated);
    assert_int_equal(m.n_parts, BP_MAX_MIME_PARTS);
}

static void test_depth_limit(void **state)
{
    bp_strbuf b = {0};
    char line[96];
    puts_(&b, "Content-Type: multipart/mixed; boundary=\"b0\"\n\n");
    for (unsigned i = 0; i < BP_MAX_MIME_DEPTH + 20; i++) {
        snprintf(line, sizeof(line), "--b%u\nContent-Type: multipart/mixed; boundary=\"b%u\"\n\n", i, i + 1);
        puts_(&b, line);
    }
    bp_mime_message m;
    parse_built(*state, &b, &m);
    assert_true(m.parts_truncated);
    unsigned deepest = 0;
    for (const bp_part *p = m.root; p != NULL; p = bp_part_walk_next(m.root, p))
        deepest = p->depth > deepest ? p->depth : deepest;
    assert_int_equal(deepest, BP_MAX_MIME_DEPTH);
}

static void test_decoding_budget(void **state)
{
    /* more text parts of BP_MAX_TEXT_BYTES each than the message budget holds */
    size_t n = BP_MAX_DECODED_BYTES / BP_MAX_TEXT_BYTES + 3;
    bp_strbuf b = {0};
    puts_(&b, "Content-Type: multipart/mixed; boundary=\"t\"\n\n");
    for (size_t i = 0; i < n; i++) {
        puts_(&b, "--t\nContent-Type: text/plain\n\n");
        put_times(&b, "0123456789012345678901234567890123456789012345678901234567890.\n", BP_MAX_TEXT_BYTES / 48);
    }
    puts_(&b, "--t--\n");
    bp_mime_message m;
    parse_built(*state, &b, &m);
    assert_true(m.decoded_bytes <= BP_MAX_DECODED_BYTES);
    size_t texts = 0, empty = 0, total = 0;
    for (const bp_part *p = m.root; p != NULL; p = bp_part_walk_next(m.root, p)) {
        if (!bp_part_is(p, "text", "plain") || p->body == NULL)
            continue;
        texts++;
        assert_true(p->body_len <= BP_MAX_TEXT_BYTES);
        if (!p->truncated)
            fail_msg("part %u: %zu bytes, not flagged truncated", p->index, p->body_len);
        total += p->body_len;
        empty += p->body_len == 0;
    }
    assert_int_equal(texts, n);
    assert_int_equal(total, m.decoded_bytes);
    assert_true(empty >= 3); /* the parts past the budget kept nothing */
}

static void test_charsets(void **state)
{
    static const char latin1[] = "Content-Type: text/plain; charset=iso-8859-1\n"
                                 "Content-Transfer-Encoding: quoted-printable\n\n"
                                 "Empf=E4nger unbekannt\n";
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(latin1, sizeof(latin1) - 1, *state, &m), BP_OK);
    assert_string_equal(m.root->body, "Empf\xc3\xa4nger unbekannt\n");

    /* an unknown charset keeps the bytes; invalid UTF-8 does not stop the parse */
    static const char unknown[] = "Content-Type: text/plain; charset=x-no-such-charset\n\n"
                                  "caf\xe9 \xff\xfe user unknown\n";
    assert_int_equal(bp_mime_parse(unknown, sizeof(unknown) - 1, *state, &m), BP_OK);
    assert_non_null(strstr(m.root->body, "user unknown"));

    char *decoded = bp_mime_decode_header(*state, "=?utf-8?B?w7xiZXI=?= =?x-bogus?Q?zz?=");
    assert_non_null(decoded);
    assert_non_null(strstr(decoded, "\xc3\xbc"
                                    "ber"));
}

static void test_nul_bytes_and_garbage(void **state)
{
    static const char nul[] = "Subject: a\0b\nContent-Type: text/plain\n\nbefore\0after\n";
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(nul, sizeof(nul) - 1, *state, &m), BP_OK);
    assert_non_null(m.root->body);
    assert_true(m.root->body_len >= 6);

    /* every prefix of a report parses or fails cleanly (the sanitizer build checks memory) */
    for (size_t n = 0; n <= sizeof(dsn_lf) - 1; n += 7) {
        bp_status st = bp_mime_parse(dsn_lf, n, *state, &m);
        assert_true(st == BP_OK || st == BP_ERR_PARSE);
    }
}

/* A multipart whose boundary never occurs keeps its text: one text/plain child. */
static void test_multipart_without_parts(void **state)
{
    static const char msg[] = "From: MAILER-DAEMON@mx.example.net\n"
                              "Content-Type: multipart/report; report-type=delivery-status;\n"
                              "    boundary=\"never-used\"\n"
                              "\n"
                              "Your message cannot be delivered to the following recipients:\n"
                              "  Recipient address: ana@example.org\n";
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(msg, sizeof(msg) - 1, *state, &m), BP_OK);
    const bp_part *text = find(&m, "text", "plain");
    assert_ptr_equal(text->parent, m.root);
    assert_non_null(strstr(text->body, "Recipient address: ana@example.org"));
    assert_int_equal(m.n_parts, 2);
}

static void test_cr_at_span_edges(void **state)
{
    /* a shortened field ending in a bare CR right where the view leaves bytes out: the CR
     * still reads as a line end and the next field is found */
    bp_mime_message m;
    parse_repeated(*state, "X-Long: ", "c", 2 * BP_MAX_HEADER_BYTES, "\rX-Next: found\rSubject: s\r\rbody\r", &m);
    assert_string_equal(bp_part_header(m.root, "X-Next"), "found");
    assert_string_equal(m.root->body, "body\n");
}

/*
 * Header values: bp_mime_parse() only unfolds (g_mime_utils_header_unfold()) a value that
 * needs no decoding and leaves the rest to g_mime_header_get_value().  For each tricky raw value, placed in the message
 * header, a MIME part header and an attached message's header, with LF, CRLF and CR line
 * ends, every header of every part must come out byte for byte as the reference mode
 * (every value through g_mime_header_get_value()) gives it.
 */
struct raw_value {
    const char *raw; /* as it follows "Name:", folds written with "\n" */
    size_t len;      /* 0: strlen(raw) */
};

/* Parse @p msg in both modes and require the same tree of headers. */
static void check_header_modes(bp_arena *arena, const char *msg, size_t len, const char *label)
{
    bp_mime_message fast, ref;
    bp_mime_set_reference_headers(1);
    bp_status st_ref = bp_mime_parse(msg, len, arena, &ref);
    bp_mime_set_reference_headers(0);
    bp_status st_fast = bp_mime_parse(msg, len, arena, &fast);
    assert_int_equal(st_fast, st_ref);
    if (st_fast != BP_OK)
        return;
    const bp_part *p = fast.root, *q = ref.root;
    size_t compared = 0;
    while (p != NULL && q != NULL) {
        if (p->n_headers != q->n_headers)
            fail_msg("%s: part %u has %zu headers, the reference %zu", label, p->index, p->n_headers, q->n_headers);
        for (size_t i = 0; i < p->n_headers; i++) {
            bp_test_check_field(label, "name", p->headers[i].name, q->headers[i].name);
            if (strcmp(p->headers[i].value, q->headers[i].value) != 0)
                fail_msg("%s: part %u %s: got [%s] (%zu bytes), the reference [%s] (%zu bytes)", label, p->index,
                         p->headers[i].name, p->headers[i].value, strlen(p->headers[i].value), q->headers[i].value,
                         strlen(q->headers[i].value));
            compared++;
        }
        p = bp_part_walk_next(fast.root, p);
        q = bp_part_walk_next(ref.root, q);
    }
    assert_null(p);
    assert_null(q);
    assert_true(compared >= 5);
}

static void test_header_values_match_gmime(void **state)
{
    static const struct raw_value plain[] = {
        {" plain value", 0},
        {"no-space-after-colon", 0},
        {"   leading and trailing  \t ", 0},
        {" first\n second\n\tthird", 0},
        {" tabs\tinside \t and  double  spaces", 0},
        {"\n continued from an empty first line", 0},
        {" ends in a fold\n \n\t", 0},
        {"", 0},
        {"   ", 0},
        {"\n \n\t", 0},
        {" \f form feed and vertical tab \v", 0},
        {" controls \x01\x1b\x7f end", 0},
        {" <0.1@mx.example.net> (comment) \"quoted string\"", 0},
        {" from mx.example.net (mx.example.net [192.0.2.1])\n\tby mail.example.org with ESMTPS id 1A2B\n\tfor "
         "<alice@example.org>; Mon, 1 Jan 2024 00:00:00 +0000",
         0},
        {" v=1; a=rsa-sha256; d=example.org; s=s1; bh=abc=;\n\tb=dGVzdA==", 0},
        /* encoded words in several charsets */
        {" =?utf-8?q?caf=C3=A9?=", 0},
        {" =?ISO-8859-1?Q?Empf=E4nger_unbekannt?=", 0},
        {" =?iso-2022-jp?B?GyRCJDMkcyRLJEEkTxsoQg==?=", 0},
        {" =?windows-1252?Q?=93quoted=94?= text", 0},
        {" =?koi8-r?B?8NLJ18XU?=", 0},
        {" =?shift_jis?B?k/qWe4zq?=", 0},
        {" =?utf-8?b?w7xiZXI=?= =?utf-8?q?_und_?=\n =?utf-8?b?w6Q=?=", 0},
        {" Re: =?utf-8?b?w6k=?= and text", 0},
        {" =?utf-8?q?a?= =?utf-8?q?b?=", 0},
        {" =?utf-8?q?a?=\n\t=?utf-8?q?b?=", 0},
        {" word=?utf-8?q?inside?=word", 0},
        {" =?utf-8*en?q?with_language?=", 0},
        /* malformed encoded words */
        {" =?utf-8?q?unterminated", 0},
        {" =?x-bogus?Q?zz?= after", 0},
        {" =?utf-8?x?unknown-encoding?=", 0},
        {" =?utf-8?b?!!!not base64?=", 0},
        {" =??q?no-charset?=", 0},
        {" a=?b and x =? y and =?=?", 0},
        {" ends with =?", 0},
        {" =?utf-8?q?=FF=FE?= invalid utf-8 inside", 0},
        /* undeclared 8-bit text */
        {" caf\xe9 Latin-1 Empf\xe4nger", 0},
        {" caf\xc3\xa9 UTF-8 \xe2\x82\xac", 0},
        {" \x1b$B$3$s$K$A$O\x1b(B ISO-2022-JP", 0},
        {" \x93\xfa\x96\x7b Shift_JIS", 0},
        {" \xc6\xfc\xcb\xdc EUC-JP", 0},
        {" mixed \xe9 and =?utf-8?q?=C3=A9?=", 0},
        {" \xff\xfe\xfd garbage", 0},
        {" nul \0 inside", 13},
    };
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t rlen = plain[i].len ? plain[i].len : strlen(plain[i].raw);
        bp_strbuf b = {0};
        const char *names[] = {"X-Test:", "Subject:", "From:", "Comments:"};
        for (size_t n = 0; n < 4; n++) {
            puts_(&b, names[n]);
            put(&b, plain[i].raw, rlen);
            puts_(&b, "\n");
        }
        puts_(&b, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\n"
                  "Content-Type: text/plain\nX-Part:");
        put(&b, plain[i].raw, rlen);
        puts_(&b, "\n\nbody\n--B\nContent-Type: message/rfc822\n\nX-Inner:");
        put(&b, plain[i].raw, rlen);
        puts_(&b, "\nSubject:");
        put(&b, plain[i].raw, rlen);
        puts_(&b, "\n\ninner body\n--B--\n");
        for (size_t e = 0; e < 3; e++) {
            size_t mlen = 0;
            char *m = with_line_ends(b.data, b.len, eols[e], &mlen);
            char label[64];
            snprintf(label, sizeof(label), "value %zu, line end %zu", i, e);
            check_header_modes(*state, m, mlen, label);
            free(m);
        }
        bp_strbuf_free(&b);
    }

    /* a few values pinned outright */
    static const char msg[] = "X-Fold: first\r\n second\r\n\tthird  \r\n"
                              "X-Latin: =?ISO-8859-1?Q?Empf=E4nger?=\r\n"
                              "X-Adjacent: =?utf-8?q?a?= =?utf-8?q?b?=\r\n"
                              "X-Empty:\r\n \r\n"
                              "\r\nbody\r\n";
    bp_mime_message m;
    assert_int_equal(bp_mime_parse(msg, sizeof(msg) - 1, *state, &m), BP_OK);
    assert_string_equal(bp_part_header(m.root, "X-Fold"), "first second\tthird");
    assert_string_equal(bp_part_header(m.root, "X-Latin"), "Empf\xc3\xa4nger");
    assert_string_equal(bp_part_header(m.root, "X-Adjacent"), "ab");
    assert_string_equal(bp_part_header(m.root, "X-Empty"), "");
}

/* Values longer than BP_MAX_HEADER_BYTES: one long line, long folds, the cut in the
 * middle of blanks or of a fold, and long encoded and 8-bit values. */
static void test_long_header_values_match_gmime(void **state)
{
    const size_t max = BP_MAX_HEADER_BYTES;
    for (int shape = 0; shape < 8; shape++) {
        bp_strbuf v = {0};
        switch (shape) {
        case 0: /* one line, over the limit: the view shortens it */
            put_repeat(&v, 'a', max + 5000);
            puts_(&v, " tail");
            break;
        case 1: /* folded lines that only unfold to more than the limit */
            for (int k = 0; k < 3; k++) {
                put_repeat(&v, (char)('a' + k), 40000);
                puts_(&v, "\n ");
            }
            puts_(&v, "end");
            break;
        case 2: /* the cut falls in a run of blanks */
            put_repeat(&v, 'a', 60000);
            puts_(&v, "\n ");
            put_repeat(&v, 'b', max - 60000 - 3);
            puts_(&v, "    \t  c");
            break;
        case 3: /* the cut falls right at a fold */
            put_repeat(&v, 'a', 60000);
            puts_(&v, "\n\t");
            put_repeat(&v, 'b', max - 60000 - 1);
            puts_(&v, "\n\tccc");
            break;
        case 4: /* exactly the limit after unfolding */
            put_repeat(&v, 'a', 50000);
            puts_(&v, "\n ");
            put_repeat(&v, 'b', max - 50000 - 1);
            break;
        case 5: /* encoded words, over the limit once decoded and not */
            for (size_t k = 0; v.len < max + 1000; k++)
                puts_(&v, k % 50 == 49 ? "=?utf-8?q?=C3=A9?=\n " : "=?utf-8?q?=C3=A9?= ");
            break;
        case 6: /* undeclared Latin-1 that grows when converted to UTF-8 */
            for (size_t k = 0; v.len < max - 100; k++)
                puts_(&v, k % 1000 == 999 ? "\xe9\n " : "\xe9");
            break;
        default: /* long leading blanks before a long value */
            puts_(&v, "   \n   \n\t");
            put_repeat(&v, 'x', max + 10);
            break;
        }
        bp_strbuf b = {0};
        const char *names[] = {"X-Long:", "Subject:", "X-Other:"};
        for (size_t n = 0; n < 3; n++) {
            puts_(&b, names[n]);
            put(&b, v.data, v.len);
            puts_(&b, "\n");
        }
        puts_(&b, "Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\nX-Part: ");
        put(&b, v.data, v.len);
        puts_(&b, "\nX-After: yes\n\nbody\n--B--\n");
        char label[32];
        snprintf(label, sizeof(label), "long value %d", shape);
        check_header_modes(*state, b.data, b.len, label);
        bp_strbuf_free(&v);
        bp_strbuf_free(&b);
    }
}

BP_TEST_MAIN(BP_ARENA_TEST(test_line_ends_agree), BP_ARENA_TEST(test_long_header_line_is_shortened),
             BP_ARENA_TEST(test_long_folded_header_is_shortened), BP_ARENA_TEST(test_header_line_count_cuts_input),
             BP_ARENA_TEST(test_part_limits), BP_ARENA_TEST(test_depth_limit), BP_ARENA_TEST(test_decoding_budget),
             BP_ARENA_TEST(test_charsets), BP_ARENA_TEST(test_nul_bytes_and_garbage),
             BP_ARENA_TEST(test_cr_at_span_edges), BP_ARENA_TEST(test_multipart_without_parts),
             BP_ARENA_TEST(test_header_values_match_gmime), BP_ARENA_TEST(test_long_header_values_match_gmime))
