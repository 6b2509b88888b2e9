/*
 * test_webhook.c - webhook endpoints and the delivery loop without a network: configuration
 * values (table of key, value, want), filters, bodies, the signature against an independent
 * HMAC-SHA256 vector, idempotency keys, and the state machine of deliver.h driven over the
 * in-memory outbox (outbox_fake.c) by a scripted transport and a hand-moved clock: delivery,
 * back-off with jitter, Retry-After, dead-lettering by age and by refusal, retry-dead, and
 * leases between two deliver processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/deliver.h"
#include "bouncepipe/webhook.h"
#include "outbox_fake.h"
#include "test_support.h"

/* ---- configuration ---------------------------------------------------------------------- */

static void test_config_table(void **state)
{
    (void)state;
    static const struct {
        const char *label, *key, *value;
        bp_status want;
    } rows[] = {
        {"https url", "url", "https://lists.example.com/webhooks/bounce", BP_OK},
        {"http url", "url", "http://127.0.0.1:8080/hook", BP_OK},
        {"ftp url", "url", "ftp://example.com/x", BP_ERR_CONFIG},
        {"url with space", "url", "https://example.com/a b", BP_ERR_CONFIG},
        {"url without host", "url", "https:///x", BP_ERR_CONFIG},
        {"format contract", "format", "contract", BP_OK},
        {"format listmonk", "format", "listmonk", BP_OK},
        {"format unknown", "format", "json", BP_ERR_CONFIG},
        {"types", "types", "bounce; complaint", BP_OK},
        {"types unknown", "types", "bounce;spam", BP_ERR_CONFIG},
        {"actions", "actions", "suppress;soft;none", BP_OK},
        {"actions unknown", "actions", "delete", BP_ERR_CONFIG},
        {"secret", "secret", "0123456789abcdef-secret", BP_OK},
        {"secret too short", "secret", "short", BP_ERR_CONFIG},
        {"headers", "headers", "Authorization: token api:KEY; X-Tenant: 7", BP_OK},
        {"header without colon", "headers", "Authorization token", BP_ERR_CONFIG},
        {"header with CR", "headers", "X-A: 1\r\nX-Evil: 2", BP_ERR_CONFIG},
        {"header we set", "headers", "Content-Type: text/plain", BP_ERR_CONFIG},
        {"signature header", "headers", "x-bouncepipe-signature: t=1,v1=0", BP_ERR_CONFIG},
        {"timeout", "timeout", "2.5s", BP_OK},
        {"timeout ms", "timeout", "250ms", BP_OK},
        {"timeout too long", "timeout", "10m", BP_ERR_CONFIG},
        {"timeout too short", "timeout", "10ms", BP_ERR_CONFIG},
        {"timeout garbage", "timeout", "soon", BP_ERR_CONFIG},
        {"batch", "batch", "50", BP_OK},
        {"batch zero", "batch", "0", BP_ERR_CONFIG},
        {"batch too big", "batch", "501", BP_ERR_CONFIG},
        {"unknown key", "retries", "3", BP_ERR_CONFIG},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bp_webhook_endpoint ep;
        char *err = NULL;
        assert_int_equal(bp_webhook_endpoint_init(&ep, "lists", &err), BP_OK);
        bp_status got = bp_webhook_endpoint_set(&ep, rows[i].key, rows[i].value, &err);
        if (got != rows[i].want)
            fail_msg("%s: got %s, want %s (%s)", rows[i].label, bp_status_to_string(got),
                     bp_status_to_string(rows[i].want), err != NULL ? err : "");
        if (got != BP_OK) {
            /* the message names the group and the key */
            assert_non_null(err);
            if (strstr(err, "[webhook lists]") == NULL || strstr(err, rows[i].key) == NULL)
                fail_msg("%s: message does not name the key: %s", rows[i].label, err);
        }
        free(err);
        bp_webhook_endpoint_free(&ep);
    }
}

static void test_config_values(void **state)
{
    (void)state;
    bp_webhook_endpoint ep;
    char *err = NULL;
    assert_int_equal(bp_webhook_endpoint_init(&ep, "crm", &err), BP_OK);
    assert_int_equal(ep.timeout_ms, BP_WEBHOOK_DEFAULT_TIMEOUT_MS);
    assert_int_equal(ep.batch, 1);
    /* a url is required */
    assert_int_equal(bp_webhook_endpoint_check(&ep, &err), BP_ERR_CONFIG);
    free(err);
    err = NULL;
    assert_int_equal(bp_webhook_endpoint_set(&ep, "url", "https://crm.example.com/in", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "timeout", "2.5s", &err), BP_OK);
    assert_int_equal(ep.timeout_ms, 2500);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "headers", "A: 1;B: two words", &err), BP_OK);
    assert_int_equal(ep.n_headers, 2);
    bp_test_check_str("header 2", ep.headers[1], "B: two words");
    assert_null(ep.headers[2]);
    /* setting a list again replaces it */
    assert_int_equal(bp_webhook_endpoint_set(&ep, "headers", "C: 3", &err), BP_OK);
    assert_int_equal(ep.n_headers, 1);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "types", "complaint", &err), BP_OK);
    assert_int_equal(ep.types, 1u << BP_EVENT_COMPLAINT);
    assert_int_equal(bp_webhook_endpoint_check(&ep, &err), BP_OK);
    bp_webhook_endpoint_free(&ep);

    /* listmonk: bounces, delays and complaints only; batch forced to 1 */
    assert_int_equal(bp_webhook_endpoint_init(&ep, "lm", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "url", "http://127.0.0.1/webhooks/bounce", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "format", "listmonk", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "batch", "20", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_check(&ep, &err), BP_OK);
    assert_int_equal(ep.batch, 1);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "types", "bounce;autoreply", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_check(&ep, &err), BP_ERR_CONFIG);
    free(err);
    err = NULL;
    bp_webhook_endpoint_free(&ep);

    /* names */
    assert_int_equal(bp_webhook_endpoint_init(&ep, "bad name", &err), BP_ERR_CONFIG);
    free(err);
    err = NULL;
    assert_int_equal(bp_webhook_endpoint_init(&ep, "", &err), BP_ERR_CONFIG);
    free(err);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bp_status want;
        long long ms;
    } rows[] = {{"30", BP_OK, 30000},   {"250ms", BP_OK, 250},      {"1.5s", BP_OK, 1500},     {"5m", BP_OK, 300000},
                {"1h", BP_OK, 3600000}, {"3d", BP_OK, 259200000},   {"-1s", BP_ERR_CONFIG, 0}, {"1w", BP_ERR_CONFIG, 0},
                {"", BP_ERR_CONFIG, 0}, {"400d", BP_ERR_CONFIG, 0}, {"s", BP_ERR_CONFIG, 0}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long long ms = 0;
        bp_status got = bp_parse_duration_ms(rows[i].in, &ms);
        if (got != rows[i].want || (got == BP_OK && ms != rows[i].ms))
            fail_msg("duration '%s': got %s %lld, want %s %lld", rows[i].in, bp_status_to_string(got), ms,
                     bp_status_to_string(rows[i].want), rows[i].ms);
    }
    bp_deliver_options o;
    char *err = NULL;
    bp_deliver_options_default(&o);
    assert_int_equal(bp_deliver_options_set(&o, "dead_after", "2d", &err), BP_OK);
    assert_int_equal(o.dead_after_s, 172800);
    assert_int_equal(bp_deliver_options_set(&o, "backoff_base", "2s", &err), BP_OK);
    assert_int_equal(o.backoff_base_ms, 2000);
    assert_int_equal(bp_deliver_options_set(&o, "retries", "2", &err), BP_ERR_CONFIG);
    assert_non_null(strstr(err, "[deliver] retries"));
    free(err);
}

/* ---- filters, bodies, keys, signatures ---------------------------------------------------- */

static bp_event sample_event(void)
{
    bp_event e;
    memset(&e, 0, sizeof(e));
    e.source = "-";
    e.message_id = "<r1@mx.example.net>";
    e.type = BP_EVENT_BOUNCE;
    e.recipient = "jdoe@example.net";
    e.recipient_from = "final-recipient";
    e.status = "5.1.1";
    e.smtp_code = "550";
    e.diagnostic = "550 5.1.1 user unknown";
    e.category = "bad-mailbox";
    e.action = BP_ACT_SUPPRESS;
    e.rule = "r1";
    e.fingerprint = "fp1";
    return e;
}

static void test_filters(void **state)
{
    (void)state;
    bp_webhook_endpoint ep;
    char *err = NULL;
    bp_event e = sample_event();
    assert_int_equal(bp_webhook_endpoint_init(&ep, "x", &err), BP_OK);
    assert_true(bp_webhook_wants(&ep, &e)); /* no filter: everything */
    assert_int_equal(bp_webhook_endpoint_set(&ep, "actions", "soft", &err), BP_OK);
    assert_false(bp_webhook_wants(&ep, &e));
    e.action = BP_ACT_SOFT;
    assert_true(bp_webhook_wants(&ep, &e));
    assert_int_equal(bp_webhook_endpoint_set(&ep, "types", "complaint", &err), BP_OK);
    assert_false(bp_webhook_wants(&ep, &e));
    bp_webhook_endpoint_free(&ep);

    /* listmonk: only what maps onto hard, soft, complaint */
    static const struct {
        bp_event_type type;
        bp_action action;
        const char *want;
    } map[] = {
        {BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, "hard"}, {BP_EVENT_BOUNCE, BP_ACT_SOFT, "soft"},
        {BP_EVENT_DELAY, BP_ACT_SOFT, "soft"},      {BP_EVENT_COMPLAINT, BP_ACT_SUPPRESS, "complaint"},
        {BP_EVENT_BOUNCE, BP_ACT_IGNORE, NULL},     {BP_EVENT_COMPLAINT, BP_ACT_IGNORE, NULL},
        {BP_EVENT_AUTOREPLY, BP_ACT_IGNORE, NULL},  {BP_EVENT_UNRECOGNIZED, BP_ACT_NONE, NULL},
    };
    assert_int_equal(bp_webhook_endpoint_init(&ep, "lm", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "format", "listmonk", &err), BP_OK);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        e.type = map[i].type;
        e.action = map[i].action;
        bp_test_check_str(bp_event_type_name(e.type), bp_webhook_listmonk_type(&e), map[i].want);
        assert_int_equal(bp_webhook_wants(&ep, &e), map[i].want != NULL);
    }
    e = sample_event();
    e.recipient = NULL; /* a redacted recipient is nothing listmonk can act on */
    assert_null(bp_webhook_listmonk_type(&e));
    bp_webhook_endpoint_free(&ep);
}

static void test_event_key(void **state)
{
    (void)state;
    char a[33], b[33];
    bp_event e = sample_event();
    bp_webhook_event_key("fp1", 0, &e, a);
    assert_int_equal(strlen(a), 32);
    bp_webhook_event_key("fp1", 0, &e, b);
    bp_test_check_str("same event, same key", b, a);
    bp_webhook_event_key("fp1", 1, &e, b);
    assert_string_not_equal(a, b);
    bp_webhook_event_key("fp2", 0, &e, b);
    assert_string_not_equal(a, b);
    e.type = BP_EVENT_UNRECOGNIZED; /* the placeholder of a later-upgraded message */
    bp_webhook_event_key("fp1", 0, &e, b);
    assert_string_not_equal(a, b);
    /* pinned (computed with Python: sha256(b"bouncepipe-event\0fp1\00\0bounce\0jdoe@example.net")[:32]):
     * receivers store the key, it must not change between versions */
    e = sample_event();
    bp_test_check_str("pinned key", bp_webhook_event_key("fp1", 0, &e, b), "f92a73661b9a96a5cbffb5d503c83004");
}

static void test_signature(void **state)
{
    (void)state;
    char sig[200];
    /* HMAC-SHA256("0123456789abcdef-secret", "1700000000.{\"a\":1}") computed with Python's hmac */
    assert_int_equal(bp_webhook_sign("0123456789abcdef-secret", 1700000000, "{\"a\":1}", 7, sig, sizeof(sig)), BP_OK);
    bp_test_check_str("signature", sig,
                      "t=1700000000,v1=6948a2dc6985c92d09b9edade5c97dce2ba201452d91a72e4a20d35abe4d3420");
    assert_int_equal(bp_webhook_sign(NULL, 1, "x", 1, sig, sizeof(sig)), BP_ERR_USAGE);
    assert_int_equal(bp_webhook_sign("0123456789abcdef-secret", 1, "x", 1, sig, 10), BP_ERR_USAGE);
}

static void test_bodies(void **state)
{
    (void)state;
    bp_webhook_endpoint ep;
    char *err = NULL;
    bp_strbuf sb = {0};
    bp_event e = sample_event();
    bp_webhook_item it = {&e, "k1", 1700000000};
    assert_int_equal(bp_webhook_endpoint_init(&ep, "c", &err), BP_OK);
    assert_int_equal(bp_webhook_body(&ep, &it, 1, &sb), BP_OK);
    bp_test_check_str(
        "contract, one event", sb.data,
        "{\"source\":\"-\",\"message_id\":\"<r1@mx.example.net>\",\"type\":\"bounce\",\"recipient\":\"jdoe@example."
        "net\",\"recipient_from\":\"final-recipient\",\"status\":\"5.1.1\",\"smtp_code\":\"550\",\"diagnostic\":\"550 "
        "5.1.1 user unknown\",\"category\":\"bad-mailbox\",\"feedback_type\":null,\"action\":\"suppress\",\"rule\":"
        "\"r1\",\"reporting_mta\":null,\"remote_mta\":null,\"arrival_date\":null,\"source_ip\":null,\"envid\":null,"
        "\"job_id\":null,\"original_message_id\":null,\"blocklist\":null,\"smtp_command\":null,\"sending_ip\":null,"
        "\"vmta\":null,\"stream\":null,\"receiver\":null,\"listed\":null,\"event_id\":\"k1\",\"recorded_at\":\"2023-"
        "11-14T22:13:20Z\"}");
    /* a batch is an array of the same objects */
    bp_webhook_item two[2] = {it, {&e, "k2", 0}};
    assert_int_equal(bp_webhook_endpoint_set(&ep, "batch", "10", &err), BP_OK);
    bp_strbuf_clear(&sb);
    assert_int_equal(bp_webhook_body(&ep, two, 2, &sb), BP_OK);
    assert_true(sb.data[0] == '[' && sb.data[sb.len - 1] == ']');
    assert_non_null(strstr(sb.data, "\"event_id\":\"k1\""));
    assert_non_null(strstr(sb.data, "},{"));
    assert_non_null(strstr(sb.data, "\"event_id\":\"k2\",\"recorded_at\":null}]"));
    /* hostile strings stay inside their JSON strings */
    e.diagnostic = "quote \" backslash \\ newline \n tab \t bell \a";
    bp_strbuf_clear(&sb);
    assert_int_equal(bp_webhook_body(&ep, &it, 1, &sb), BP_OK);
    assert_non_null(strstr(sb.data, "quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007"));
    assert_null(strchr(sb.data, '\n'));
    bp_webhook_endpoint_free(&ep);

    /* listmonk */
    e = sample_event();
    assert_int_equal(bp_webhook_endpoint_init(&ep, "lm", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&ep, "format", "listmonk", &err), BP_OK);
    bp_strbuf_clear(&sb);
    assert_int_equal(bp_webhook_body(&ep, &it, 1, &sb), BP_OK);
    bp_test_check_str("listmonk", sb.data,
                      "{\"email\":\"jdoe@example.net\",\"source\":\"bouncepipe\",\"type\":\"hard\",\"meta\":{\"event_"
                      "id\":\"k1\",\"event_type\":\"bounce\",\"category\":\"bad-mailbox\",\"feedback_type\":null,"
                      "\"status\":\"5.1.1\",\"diagnostic\":\"550 5.1.1 user unknown\",\"rule\":\"r1\",\"message_id\":"
                      "\"<r1@mx.example.net>\"},\"created_at\":\"2023-11-14T22:13:20Z\"}");
    assert_int_equal(bp_webhook_body(&ep, two, 2, &sb), BP_ERR_USAGE);
    assert_int_equal(bp_webhook_body(&ep, two, 0, &sb), BP_ERR_USAGE);
    bp_webhook_endpoint_free(&ep);
    bp_strbuf_free(&sb);
}

/* ---- the loop ------------------------------------------------------------------------------ */

#define MAX_SCRIPT 64

/* A transport that answers from a script and remembers what it was sent. */
typedef struct script {
    int status[MAX_SCRIPT]; /* 0: no answer (BP_ERR_IO) */
    long retry_after[MAX_SCRIPT];
    size_t n, at;
    char bodies[MAX_SCRIPT][4096];
    char keys[MAX_SCRIPT][100];
    char sigs[MAX_SCRIPT][200];
    size_t requests;
    long long *clock; /* each request takes this many seconds of the fake clock */
    long long cost;
} script;

static const char *header_value(const bp_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; req->headers[i] != NULL; i++)
        if (strncmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return req->headers[i] + n + 2;
    return NULL;
}

static bp_status script_post(void *ctx, const bp_http_request *req, bp_http_response *resp)
{
    script *s = ctx;
    size_t i = s->requests++;
    assert_true(i < MAX_SCRIPT);
    snprintf(s->bodies[i], sizeof(s->bodies[i]), "%.*s", (int)req->body_len, req->body);
    const char *k = header_value(req, BP_WEBHOOK_KEY_HEADER);
    const char *g = header_value(req, BP_WEBHOOK_SIGNATURE_HEADER);
    snprintf(s->keys[i], sizeof(s->keys[i]), "%s", k != NULL ? k : "");
    snprintf(s->sigs[i], sizeof(s->sigs[i]), "%s", g != NULL ? g : "");
    assert_non_null(header_value(req, "Content-Type"));
    if (s->clock != NULL)
        *s->clock += s->cost;
    int status = s->at < s->n ? s->status[s->at] : 200;
    resp->retry_after = s->at < s->n ? s->retry_after[s->at] : -1;
    s->at++;
    if (status == 0) {
        snprintf(resp->error, sizeof(resp->error), "Connection refused");
        return BP_ERR_IO;
    }
    resp->status = status;
    return BP_OK;
}

typedef struct loop_env {
    long long now;
    double r;
    int logs;
} loop_env;

static long long env_now(void *user)
{
    return ((loop_env *)user)->now;
}
static double env_random(void *user)
{
    return ((loop_env *)user)->r;
}
static void env_log(void *user, const char *msg)
{
    (void)msg;
    ((loop_env *)user)->logs++;
}

typedef struct fixture {
    outbox_fake fake;
    bp_outbox outbox;
    script sc;
    bp_http_transport http;
    loop_env le;
    bp_deliver_env env;
    bp_deliver_options opts;
    bp_webhook_endpoint ep;
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char *err = NULL;
    if (f == NULL)
        return -1;
    outbox_fake_ops(&f->fake, &f->outbox);
    f->http.ctx = &f->sc;
    f->http.post = script_post;
    f->le.now = 1700000000;
    f->le.r = 0.5;
    f->env = (bp_deliver_env){env_now, env_random, env_log, &f->le};
    bp_deliver_options_default(&f->opts);
    f->opts.backoff_base_ms = 10000;
    f->opts.backoff_max_ms = 80000;
    f->opts.dead_after_s = 3600;
    if (bp_webhook_endpoint_init(&f->ep, "hook", &err) != BP_OK ||
        bp_webhook_endpoint_set(&f->ep, "url", "http://127.0.0.1:1/hook", &err) != BP_OK ||
        bp_webhook_endpoint_set(&f->ep, "secret", "0123456789abcdef-secret", &err) != BP_OK)
        return -1;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    outbox_fake_free(&f->fake);
    bp_webhook_endpoint_free(&f->ep);
    free(f);
    return 0;
}

static bp_deliver_result run(fixture *f, const char *owner)
{
    bp_deliver_result r;
    assert_int_equal(bp_deliver_once(&f->ep, &f->opts, &f->outbox, &f->http, owner, &f->env, &r), BP_OK);
    return r;
}

static void add_rows(fixture *f, const char *endpoint, int n)
{
    char rcpt[64];
    for (int i = 0; i < n; i++) {
        snprintf(rcpt, sizeof(rcpt), "user%d@example.net", i);
        outbox_fake_add(&f->fake, endpoint, rcpt, BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, f->le.now);
    }
}

static void test_loop_delivers(void **state)
{
    fixture *f = *state;
    add_rows(f, "hook", 3);
    add_rows(f, "other", 2); /* another endpoint's rows are not touched */
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.claimed, 3);
    assert_int_equal(r.delivered, 3);
    assert_int_equal(r.requests, 3); /* batch 1: one request per event */
    for (long long id = 1; id <= 3; id++) {
        fake_row *row = outbox_fake_row(&f->fake, id);
        assert_int_equal(row->state, FAKE_DELIVERED);
        bp_test_check_str("key header", f->sc.keys[id - 1], row->key);
        /* the signature is over t "." body with the request's time */
        char want[200];
        assert_int_equal(bp_webhook_sign("0123456789abcdef-secret", f->le.now, f->sc.bodies[id - 1],
                                         strlen(f->sc.bodies[id - 1]), want, sizeof(want)),
                         BP_OK);
        bp_test_check_str("signature header", f->sc.sigs[id - 1], want);
    }
    assert_int_equal(outbox_fake_row(&f->fake, 4)->state, FAKE_PENDING);
    /* nothing left: a second pass claims nothing and sends nothing */
    r = run(f, "a");
    assert_int_equal(r.claimed, 0);
    assert_int_equal(f->sc.requests, 3);

    /* batches: 7 rows, batch 3 -> 3 requests (3, 3, 1) */
    f->ep.batch = 3;
    add_rows(f, "hook", 7);
    r = run(f, "a");
    assert_int_equal(r.delivered, 7);
    assert_int_equal(r.requests, 3);
    assert_true(f->sc.bodies[3][0] == '[');
    assert_non_null(strstr(f->sc.keys[3], "batch-"));
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, "hook", f->le.now, &c), BP_OK);
    assert_int_equal(c.delivered, 10);
    assert_int_equal(c.pending, 0);
}

static void test_loop_backoff_and_dead(void **state)
{
    fixture *f = *state;
    add_rows(f, "hook", 1);
    /* five failures of different kinds, then success */
    int statuses[] = {500, 0, 503, 429, 502};
    for (size_t i = 0; i < 5; i++)
        f->sc.status[i] = statuses[i], f->sc.retry_after[i] = -1;
    f->sc.retry_after[3] = 300; /* 429 with Retry-After: 300 */
    f->sc.n = 5;
    fake_row *row = outbox_fake_row(&f->fake, 1);
    long long want_delay[] = {8, 15, 30, 300, 60}; /* r = 0.5: 3/4 of base*2^(n-1), 10 s base, 80 s max */
    for (size_t i = 0; i < 5; i++) {
        long long t0 = f->le.now;
        bp_deliver_result r = run(f, "a");
        assert_int_equal(r.retried, 1);
        assert_int_equal(row->attempts, i + 1);
        if (row->next_at - t0 != want_delay[i])
            fail_msg("attempt %zu: got delay %lld, want %lld", i + 1, row->next_at - t0, want_delay[i]);
        /* not due yet: nothing is sent */
        f->le.now = row->next_at - 1;
        r = run(f, "a");
        assert_int_equal(r.claimed, 0);
        f->le.now = row->next_at;
    }
    assert_true(f->le.logs >= 5);
    bp_test_check_str("last error", row->last_error, "HTTP 502");
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.delivered, 1);
    assert_int_equal(row->state, FAKE_DELIVERED);
    /* every attempt carried the same key */
    for (size_t i = 1; i < 6; i++)
        bp_test_check_str("key of a retry", f->sc.keys[i], f->sc.keys[0]);

    /* the jitter spans [d/2, d] */
    assert_int_equal(bp_deliver_backoff_ms(&f->opts, 1, 0.0), 5000);
    assert_int_equal(bp_deliver_backoff_ms(&f->opts, 1, 0.999999), 9999);
    assert_int_equal(bp_deliver_backoff_ms(&f->opts, 20, 0.0), 40000); /* capped at backoff_max */
}

static void test_loop_dead_letter(void **state)
{
    fixture *f = *state;
    add_rows(f, "hook", 2);
    for (size_t i = 0; i < MAX_SCRIPT; i++)
        f->sc.status[i] = 500, f->sc.retry_after[i] = -1;
    f->sc.n = MAX_SCRIPT;
    /* keep failing until the rows are older than dead_after (1 h) */
    int passes = 0;
    while (outbox_fake_row(&f->fake, 1)->state == FAKE_PENDING && passes++ < 40) {
        run(f, "a");
        f->le.now += 600;
    }
    assert_int_equal(outbox_fake_row(&f->fake, 1)->state, FAKE_DEAD);
    assert_int_equal(outbox_fake_row(&f->fake, 2)->state, FAKE_DEAD);
    assert_true(f->le.now - outbox_fake_row(&f->fake, 1)->created_at >= 3600);
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, "hook", f->le.now, &c), BP_OK);
    assert_int_equal(c.dead, 2);
    /* dead rows are not claimed */
    assert_int_equal(run(f, "a").claimed, 0);
    /* the operator's retry-dead makes them pending and due; the receiver is back */
    long long count = 0;
    assert_int_equal(f->outbox.retry_dead(f->outbox.ctx, "hook", f->le.now, &count), BP_OK);
    assert_int_equal(count, 2);
    f->sc.n = 0;
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.delivered, 2);

    /* 400 and 422: dead at once, whatever the age */
    add_rows(f, "hook", 2);
    f->sc.at = 0;
    f->sc.status[0] = 400;
    f->sc.status[1] = 422;
    f->sc.n = 2;
    r = run(f, "a");
    assert_int_equal(r.dead, 2);
    assert_int_equal(outbox_fake_row(&f->fake, 3)->state, FAKE_DEAD);
    bp_test_check_str("error", outbox_fake_row(&f->fake, 4)->last_error, "HTTP 422");
}

static int ignore_row(void *user, const bp_outbox_row *row)
{
    (void)row;
    (*(size_t *)user)++;
    return 0;
}

/* Two deliver processes: a claim leases rows, the other sees only the rest; a lease that ran
 * out lets the other take the rows over; the first one's late marks are refused. */
static void test_loop_leases(void **state)
{
    fixture *f = *state;
    add_rows(f, "hook", 6);
    /* process "a" claims 4 rows, then stalls */
    size_t seen = 0;
    assert_int_equal(f->outbox.claim(f->outbox.ctx, "hook", "a", f->le.now, 30, 4, ignore_row, &seen), BP_OK);
    assert_int_equal(seen, 4);
    /* "b" gets only the two rows "a" does not hold */
    bp_deliver_result r = run(f, "b");
    assert_int_equal(r.claimed, 2);
    assert_int_equal(outbox_fake_row(&f->fake, 5)->state, FAKE_DELIVERED);
    assert_int_equal(outbox_fake_row(&f->fake, 1)->state, FAKE_PENDING);
    /* still leased one second before the end */
    f->le.now += 30;
    assert_int_equal(run(f, "b").claimed, 0);
    /* "a"'s lease ran out: "b" takes its rows over and delivers them */
    f->le.now += 1;
    r = run(f, "b");
    assert_int_equal(r.claimed, 4);
    assert_int_equal(r.delivered, 4);
    /* "a" comes back and marks rows it lost: refused, nothing changes */
    assert_int_equal(f->outbox.retry(f->outbox.ctx, 1, "a", f->le.now + 100, "late"), BP_ERR_NOT_FOUND);
    assert_int_equal(f->outbox.dead(f->outbox.ctx, 2, "a", f->le.now, "late"), BP_ERR_NOT_FOUND);
    assert_int_equal(f->outbox.delivered(f->outbox.ctx, 3, "a", f->le.now), BP_ERR_NOT_FOUND);
    assert_int_equal(outbox_fake_row(&f->fake, 1)->state, FAKE_DELIVERED);
    assert_int_equal(outbox_fake_row(&f->fake, 1)->attempts, 0);
}

/* A transport that, while "a" waits for its answer, lets process "b" take the rows over
 * (a's lease ran out during a slow request): a's marks must be refused and counted lost. */
typedef struct takeover {
    fixture *f;
    int done;
} takeover;

static bp_status takeover_post(void *ctx, const bp_http_request *req, bp_http_response *resp)
{
    takeover *t = ctx;
    (void)req;
    if (!t->done) {
        t->done = 1;
        fixture *f = t->f;
        f->le.now += 1000; /* the request was slow: the lease is long gone */
        size_t seen = 0;
        assert_int_equal(f->outbox.claim(f->outbox.ctx, "hook", "b", f->le.now, 30, 10, ignore_row, &seen), BP_OK);
        assert_int_equal(seen, 1);
    }
    resp->status = 500;
    return BP_OK;
}

static void test_loop_lost_lease(void **state)
{
    fixture *f = *state;
    takeover t = {f, 0};
    bp_http_transport slow = {&t, takeover_post, NULL};
    add_rows(f, "hook", 1);
    bp_deliver_result r;
    assert_int_equal(bp_deliver_once(&f->ep, &f->opts, &f->outbox, &slow, "a", &f->env, &r), BP_OK);
    assert_int_equal(r.requests, 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.retried, 0);
    fake_row *row = outbox_fake_row(&f->fake, 1);
    bp_test_check_str("owner", row->lease_owner, "b"); /* b still holds it, untouched */
    assert_int_equal(row->attempts, 0);
}

static void test_loop_outbox_failure(void **state)
{
    fixture *f = *state;
    add_rows(f, "hook", 1);
    f->fake.fail_claim = 1;
    bp_deliver_result r;
    assert_int_equal(bp_deliver_once(&f->ep, &f->opts, &f->outbox, &f->http, "a", &f->env, &r), BP_ERR_BUSY);
    assert_int_equal(f->sc.requests, 0);
    assert_int_equal(run(f, "a").delivered, 1);
}

static void test_loop_listmonk(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    assert_int_equal(bp_webhook_endpoint_set(&f->ep, "format", "listmonk", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_set(&f->ep, "batch", "50", &err), BP_OK);
    assert_int_equal(bp_webhook_endpoint_check(&f->ep, &err), BP_OK);
    add_rows(f, "hook", 3);
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.requests, 3);
    assert_int_equal(r.delivered, 3);
    assert_non_null(strstr(f->sc.bodies[0], "\"type\":\"hard\""));
    assert_non_null(strstr(f->sc.bodies[2], "\"email\":\"user2@example.net\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_table),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_event_key),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test_setup_teardown(test_loop_delivers, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_backoff_and_dead, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_dead_letter, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_leases, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_lost_lease, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_outbox_failure, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_listmonk, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
