/*
 * test_webhook.c - webhook endpoints and the delivery loop without a network: configuration
 * values (table of key, value, want), filters, bodies, the signature against an independent
 * HMAC-SHA256 vector, idempotency keys, and the state machine of deliver.h driven by a
 * scripted transport and a hand-moved clock over three outboxes - the in-memory reference
 * (outbox_fake.c), the store's outbox table on SQLite, and on PostgreSQL when
 * $BOUNCEPIPE_TEST_DB_URL is set (tests/system/pg_outbox.sh) - with the same cases: delivery,
 * back-off with jitter, Retry-After, dead-lettering by age and by refusal, retry-dead, leases
 * between two deliver processes, a lease lost during a slow request, a stop that releases
 * what was not sent.  On the store also: outbox rows written in the ledger's transaction (and
 * rolled back with it, not again for a duplicate, gone with an upgraded placeholder, carried
 * state kept), processes claiming at once (each row once), and the core handing over the rows
 * the configured endpoints want.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bouncepipe/deliver.h"
#include "bouncepipe/process.h"
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
                {"1h", BP_OK, 3600000}, {"3d", BP_OK, 259200000},   {"-1s", BP_ERR_CONFIG, 0}, {"1w", BP_OK, 604800000},
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
    bp_event e = bp_test_sample_bounce("-");
    e.message_id = "<r1@mx.example.net>";
    e.recipient_from = "final-recipient";
    e.diagnostic = "550 5.1.1 user unknown";
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
        "\"job_id\":null,\"original_message_id\":null,\"blocklist\":null,\"smtp_command\":null,\"dmarc_org\":null,"
        "\"dmarc_report_id\":null,\"dmarc_domain\":null,\"dmarc_begin\":null,\"dmarc_end\":null,\"dmarc_p\":null,"
        "\"dmarc_records\":null,\"dmarc_messages\":null,\"dmarc_messages_pass\":null,\"sending_ip\":null,"
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

/* ---- the loop, over three outboxes ---------------------------------------------------------
 *
 * The same cases run over the in-memory outbox (outbox_fake.c, the reference), over the
 * store's outbox table on a temporary SQLite file, and, when $BOUNCEPIPE_TEST_DB_URL names a
 * PostgreSQL database (tests/system/pg_outbox.sh), over the store on PostgreSQL.  A case sees rows
 * through row_at() (a copy of the k-th row it added), so that it cannot tell the outboxes
 * apart; the fake clock (1700000000 on) is every outbox's clock, the store's rows being
 * written with it as their creation time.  Each case's endpoints and fingerprints carry a tag
 * of its own, so that cases sharing one PostgreSQL database do not see each other's rows. */

#define MAX_SCRIPT 64
#define MAX_ROWS   256

/* A transport that answers from a script and remembers what it was sent. */
typedef struct script {
    int status[MAX_SCRIPT]; /* 0: no answer (BP_ERR_IO) */
    long retry_after[MAX_SCRIPT];
    size_t n, at;
    char bodies[MAX_SCRIPT][4096];
    char keys[MAX_SCRIPT][100];
    char sigs[MAX_SCRIPT][200];
    size_t requests;
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

typedef enum backend_kind { BACKEND_FAKE, BACKEND_SQLITE, BACKEND_PG } backend_kind;

typedef enum row_state { ROW_PENDING = 0, ROW_DELIVERED, ROW_DEAD } row_state;

/* A row as a case sees it, whichever outbox holds it. */
typedef struct row_view {
    long long id;
    row_state state;
    unsigned attempts;
    long long created_at, next_at, lease_until;
    char owner[160], last_error[300], key[40];
} row_view;

typedef struct fixture {
    backend_kind kind;
    outbox_fake fake;
    bp_store *store;
    char dir[64], location[512];
    char tag[64];    /* unique to the case: endpoints and fingerprints carry it */
    char other[100]; /* a second endpoint's name */
    long long ids[MAX_ROWS];
    size_t n_ids;
    bp_outbox outbox;
    script sc;
    bp_http_transport http;
    loop_env le;
    bp_deliver_env env;
    volatile sig_atomic_t stop;
    bp_deliver_options opts;
    bp_webhook_endpoint ep;
} fixture;

static int fixture_setup(void **state, backend_kind kind)
{
    static unsigned cases;
    fixture *f = calloc(1, sizeof(*f));
    char *err = NULL;
    if (f == NULL)
        return -1;
    f->kind = kind;
    snprintf(f->tag, sizeof(f->tag), "t%u-%ld", ++cases, (long)getpid());
    if (kind == BACKEND_FAKE) {
        outbox_fake_ops(&f->fake, &f->outbox);
    } else {
        if (kind == BACKEND_SQLITE) {
            if (bp_test_tmpdir(f->dir, sizeof(f->dir), "webhook", f->location, sizeof(f->location), "s.db") != 0)
                return -1;
        } else {
            snprintf(f->location, sizeof(f->location), "%s", getenv("BOUNCEPIPE_TEST_DB_URL"));
        }
        f->store = bp_test_open_store(f->location, NULL);
        bp_deliver_store_outbox(f->store, &f->outbox);
    }
    f->http.ctx = &f->sc;
    f->http.post = script_post;
    f->le.now = 1700000000;
    f->le.r = 0.5;
    f->env = (bp_deliver_env){env_now, env_random, env_log, &f->le, &f->stop};
    bp_deliver_options_default(&f->opts);
    f->opts.backoff_base_ms = 10000;
    f->opts.backoff_max_ms = 80000;
    f->opts.dead_after_s = 3600;
    char name[100];
    snprintf(name, sizeof(name), "hook-%s", f->tag);
    snprintf(f->other, sizeof(f->other), "other-%s", f->tag);
    if (bp_webhook_endpoint_init(&f->ep, name, &err) != BP_OK ||
        bp_webhook_endpoint_set(&f->ep, "url", "http://127.0.0.1:1/hook", &err) != BP_OK ||
        bp_webhook_endpoint_set(&f->ep, "secret", "0123456789abcdef-secret", &err) != BP_OK)
        return -1;
    *state = f;
    return 0;
}

static int setup_fake(void **state)
{
    return fixture_setup(state, BACKEND_FAKE);
}
static int setup_sqlite(void **state)
{
    return fixture_setup(state, BACKEND_SQLITE);
}
static int setup_pg(void **state)
{
    return fixture_setup(state, BACKEND_PG);
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    outbox_fake_free(&f->fake);
    bp_store_close(f->store);
    if (f->kind == BACKEND_SQLITE)
        bp_test_rmtree(f->dir);
    bp_webhook_endpoint_free(&f->ep);
    free(f);
    return 0;
}

static bp_deliver_result run(fixture *f, const char *owner)
{
    bp_deliver_result r;
    bp_status st = bp_deliver_once(&f->ep, &f->opts, &f->outbox, &f->http, owner, &f->env, &r);
    if (st != BP_OK)
        fail_msg("bp_deliver_once: %s: %s", bp_status_to_string(st),
                 f->store != NULL ? bp_store_last_error(f->store) : "");
    return r;
}

/* The event of a store row: a bounce like outbox_fake_add()'s. */
static bp_event store_event(const char *recipient, const char *fingerprint, char diag[200])
{
    snprintf(diag, 200, "550 5.1.1 <%s>: user unknown", recipient);
    bp_event e = bp_test_event(BP_EVENT_BOUNCE, recipient, "bad-mailbox", BP_ACT_SUPPRESS);
    e.source = "-";
    e.fingerprint = fingerprint;
    e.diagnostic = diag;
    e.status = "5.1.1";
    return e;
}

static void entry_to_view(const bp_store_outbox_entry *o, row_view *v)
{
    v->id = o->id;
    v->state = strcmp(o->state, "delivered") == 0 ? ROW_DELIVERED
               : strcmp(o->state, "dead") == 0    ? ROW_DEAD
                                                  : ROW_PENDING;
    v->attempts = o->attempts;
    v->created_at = o->created_at;
    v->next_at = o->next_at;
    v->lease_until = o->lease_until;
    snprintf(v->owner, sizeof(v->owner), "%s", o->lease_owner != NULL ? o->lease_owner : "");
    snprintf(v->last_error, sizeof(v->last_error), "%s", o->last_error != NULL ? o->last_error : "");
    snprintf(v->key, sizeof(v->key), "%s", o->event_key);
}

/* Which store row to look at: by id, or by endpoint and key. */
typedef struct find_row {
    long long id;
    const char *endpoint, *key;
    row_view *out;
    int found;
} find_row;

static int match_row(void *user, const bp_store_outbox_entry *o)
{
    find_row *k = user;
    if (k->endpoint != NULL ? strcmp(o->endpoint, k->endpoint) != 0 || strcmp(o->event_key, k->key) != 0
                            : o->id != k->id)
        return 0;
    entry_to_view(o, k->out);
    k->found = 1;
    return 1;
}

static int store_find(fixture *f, find_row *k)
{
    bp_status st = bp_store_outbox_list(f->store, 0, LLONG_MAX, match_row, k);
    if (st != BP_OK)
        fail_msg("listing the outbox: %s: %s", bp_status_to_string(st), bp_store_last_error(f->store));
    return k->found;
}

/* Add a row for @p endpoint: a bounce to @p recipient created now; remember its id. */
static void add_row(fixture *f, const char *endpoint, const char *recipient)
{
    assert_true(f->n_ids < MAX_ROWS);
    if (f->kind == BACKEND_FAKE) {
        f->ids[f->n_ids++] =
            outbox_fake_add(&f->fake, endpoint, recipient, BP_EVENT_BOUNCE, BP_ACT_SUPPRESS, f->le.now);
        return;
    }
    char fp[128], diag[200], key[33], msgid[160];
    snprintf(fp, sizeof(fp), "%s-fp-%zu", f->tag, f->n_ids);
    snprintf(msgid, sizeof(msgid), "<report-%s-%zu@mx.example.net>", f->tag, f->n_ids);
    bp_event e = store_event(recipient, fp, diag);
    e.message_id = msgid;
    bp_webhook_event_key(fp, 0, &e, key);
    bp_store_outbox_want w = {0, endpoint, key, 0, 0, f->le.now, 0, NULL};
    bp_store_unit u = {fp, msgid, "-", f->le.now, NULL};
    bp_record_result rr;
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u, &e, 1, &w, 1, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    row_view v;
    find_row k = {0, endpoint, key, &v, 0};
    if (!store_find(f, &k))
        fail_msg("the store wrote no outbox row for %s", recipient);
    f->ids[f->n_ids++] = v.id;
}

static void add_rows(fixture *f, const char *endpoint, int n)
{
    char rcpt[64];
    for (int i = 0; i < n; i++) {
        snprintf(rcpt, sizeof(rcpt), "user%d@example.net", i);
        add_row(f, endpoint, rcpt);
    }
}

/* The @p k-th row the case added (0: the first), as it is now. */
static row_view row_at(fixture *f, size_t k)
{
    row_view v;
    memset(&v, 0, sizeof(v));
    assert_true(k < f->n_ids);
    if (f->kind != BACKEND_FAKE) {
        find_row by_id = {f->ids[k], NULL, NULL, &v, 0};
        if (!store_find(f, &by_id))
            fail_msg("outbox row %lld is gone", f->ids[k]);
        return v;
    }
    fake_row *r = outbox_fake_row(&f->fake, f->ids[k]);
    v.id = r->id;
    v.state = r->state == FAKE_DELIVERED ? ROW_DELIVERED : r->state == FAKE_DEAD ? ROW_DEAD : ROW_PENDING;
    v.attempts = r->attempts;
    v.created_at = r->created_at;
    v.next_at = r->next_at;
    v.lease_until = r->lease_until;
    snprintf(v.owner, sizeof(v.owner), "%s", r->lease_owner);
    snprintf(v.last_error, sizeof(v.last_error), "%s", r->last_error);
    snprintf(v.key, sizeof(v.key), "%s", r->key);
    return v;
}

/* ---- the cases every outbox must pass ------------------------------------------------------ */

static void test_loop_delivers(void **state)
{
    fixture *f = *state;
    add_rows(f, f->ep.name, 3);
    add_rows(f, f->other, 2); /* another endpoint's rows are not touched */
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.claimed, 3);
    assert_int_equal(r.delivered, 3);
    assert_int_equal(r.requests, 3); /* batch 1: one request per event */
    for (size_t k = 0; k < 3; k++) {
        row_view row = row_at(f, k);
        assert_int_equal(row.state, ROW_DELIVERED);
        assert_int_equal(row.lease_until, 0);
        bp_test_check_str("key header", f->sc.keys[k], row.key);
        /* the signature is over t "." body with the request's time */
        char want[200];
        assert_int_equal(bp_webhook_sign("0123456789abcdef-secret", f->le.now, f->sc.bodies[k], strlen(f->sc.bodies[k]),
                                         want, sizeof(want)),
                         BP_OK);
        bp_test_check_str("signature header", f->sc.sigs[k], want);
        /* the body carries the row's event */
        char rcpt[64];
        snprintf(rcpt, sizeof(rcpt), "\"recipient\":\"user%zu@example.net\"", k);
        assert_non_null(strstr(f->sc.bodies[k], rcpt));
    }
    assert_int_equal(row_at(f, 3).state, ROW_PENDING);
    /* nothing left: a second pass claims nothing and sends nothing */
    r = run(f, "a");
    assert_int_equal(r.claimed, 0);
    assert_int_equal(f->sc.requests, 3);

    /* batches: 7 rows, batch 3 -> 3 requests (3, 3, 1) */
    f->ep.batch = 3;
    add_rows(f, f->ep.name, 7);
    r = run(f, "a");
    assert_int_equal(r.delivered, 7);
    assert_int_equal(r.requests, 3);
    assert_true(f->sc.bodies[3][0] == '[');
    assert_non_null(strstr(f->sc.keys[3], "batch-"));
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, f->ep.name, f->le.now, &c), BP_OK);
    assert_int_equal(c.delivered, 10);
    assert_int_equal(c.pending, 0);
    assert_int_equal(f->outbox.counts(f->outbox.ctx, f->other, f->le.now, &c), BP_OK);
    assert_int_equal(c.pending, 2);
    assert_int_equal(c.oldest_pending, f->le.now);
}

static void test_loop_backoff_and_dead(void **state)
{
    fixture *f = *state;
    add_rows(f, f->ep.name, 1);
    /* five failures of different kinds, then success */
    int statuses[] = {500, 0, 503, 429, 502};
    for (size_t i = 0; i < 5; i++)
        f->sc.status[i] = statuses[i], f->sc.retry_after[i] = -1;
    f->sc.retry_after[3] = 300; /* 429 with Retry-After: 300 */
    f->sc.n = 5;
    long long want_delay[] = {8, 15, 30, 300, 60}; /* r = 0.5: 3/4 of base*2^(n-1), 10 s base, 80 s max */
    for (size_t i = 0; i < 5; i++) {
        long long t0 = f->le.now;
        bp_deliver_result r = run(f, "a");
        assert_int_equal(r.retried, 1);
        row_view row = row_at(f, 0);
        assert_int_equal(row.attempts, i + 1);
        if (row.next_at - t0 != want_delay[i])
            fail_msg("attempt %zu: got delay %lld, want %lld", i + 1, row.next_at - t0, want_delay[i]);
        /* not due yet: nothing is sent */
        f->le.now = row.next_at - 1;
        r = run(f, "a");
        assert_int_equal(r.claimed, 0);
        f->le.now = row.next_at;
    }
    assert_true(f->le.logs >= 5);
    bp_test_check_str("last error", row_at(f, 0).last_error, "HTTP 502");
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.delivered, 1);
    assert_int_equal(row_at(f, 0).state, ROW_DELIVERED);
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
    add_rows(f, f->ep.name, 2);
    for (size_t i = 0; i < MAX_SCRIPT; i++)
        f->sc.status[i] = 500, f->sc.retry_after[i] = -1;
    f->sc.n = MAX_SCRIPT;
    /* keep failing until the rows are older than dead_after (1 h) */
    int passes = 0;
    while (row_at(f, 0).state == ROW_PENDING && passes++ < 40) {
        run(f, "a");
        f->le.now += 600;
    }
    assert_int_equal(row_at(f, 0).state, ROW_DEAD);
    assert_int_equal(row_at(f, 1).state, ROW_DEAD);
    assert_true(f->le.now - row_at(f, 0).created_at >= 3600);
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, f->ep.name, f->le.now, &c), BP_OK);
    assert_int_equal(c.dead, 2);
    assert_int_equal(c.pending, 0);
    /* dead rows are not claimed */
    assert_int_equal(run(f, "a").claimed, 0);
    /* the operator's retry-dead makes them pending and due; the receiver is back */
    long long count = 0;
    assert_int_equal(f->outbox.retry_dead(f->outbox.ctx, f->ep.name, f->le.now, &count), BP_OK);
    assert_int_equal(count, 2);
    assert_int_equal(row_at(f, 0).attempts, 0);
    f->sc.n = 0;
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.delivered, 2);

    /* 400 and 422: dead at once, whatever the age */
    add_rows(f, f->ep.name, 2);
    f->sc.at = 0;
    f->sc.status[0] = 400;
    f->sc.status[1] = 422;
    f->sc.n = 2;
    r = run(f, "a");
    assert_int_equal(r.dead, 2);
    assert_int_equal(row_at(f, 2).state, ROW_DEAD);
    bp_test_check_str("error", row_at(f, 3).last_error, "HTTP 422");
    /* retry-dead of another endpoint leaves them dead; of every endpoint (NULL) not */
    assert_int_equal(f->outbox.retry_dead(f->outbox.ctx, f->other, f->le.now, &count), BP_OK);
    assert_int_equal(count, 0);
    assert_int_equal(row_at(f, 2).state, ROW_DEAD);
    if (f->kind != BACKEND_PG) { /* on a shared database, NULL would touch other cases' rows too */
        assert_int_equal(f->outbox.retry_dead(f->outbox.ctx, NULL, f->le.now, &count), BP_OK);
        assert_int_equal(count, 2);
        assert_int_equal(row_at(f, 3).state, ROW_PENDING);
    }
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
    add_rows(f, f->ep.name, 6);
    /* process "a" claims 4 rows, then stalls */
    size_t seen = 0;
    assert_int_equal(f->outbox.claim(f->outbox.ctx, f->ep.name, "a", f->le.now, 30, 4, ignore_row, &seen), BP_OK);
    assert_int_equal(seen, 4);
    bp_test_check_str("lease owner", row_at(f, 0).owner, "a");
    assert_int_equal(row_at(f, 0).lease_until, f->le.now + 30);
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, f->ep.name, f->le.now, &c), BP_OK);
    assert_int_equal(c.leased, 4);
    assert_int_equal(c.pending, 6);
    /* "b" gets only the two rows "a" does not hold */
    bp_deliver_result r = run(f, "b");
    assert_int_equal(r.claimed, 2);
    assert_int_equal(row_at(f, 4).state, ROW_DELIVERED);
    assert_int_equal(row_at(f, 0).state, ROW_PENDING);
    /* still leased one second before the end */
    f->le.now += 30;
    assert_int_equal(run(f, "b").claimed, 0);
    /* "a"'s lease ran out: "b" takes its rows over and delivers them */
    f->le.now += 1;
    r = run(f, "b");
    assert_int_equal(r.claimed, 4);
    assert_int_equal(r.delivered, 4);
    /* "a" comes back and marks rows it lost: refused, nothing changes */
    assert_int_equal(f->outbox.retry(f->outbox.ctx, f->ids[0], "a", f->le.now + 100, "late"), BP_ERR_NOT_FOUND);
    assert_int_equal(f->outbox.dead(f->outbox.ctx, f->ids[1], "a", f->le.now, "late"), BP_ERR_NOT_FOUND);
    assert_int_equal(f->outbox.delivered(f->outbox.ctx, f->ids[2], "a", f->le.now), BP_ERR_NOT_FOUND);
    assert_int_equal(f->outbox.release(f->outbox.ctx, f->ids[3], "a"), BP_ERR_NOT_FOUND);
    assert_int_equal(row_at(f, 0).state, ROW_DELIVERED);
    assert_int_equal(row_at(f, 0).attempts, 0);
    assert_int_equal(row_at(f, 1).state, ROW_DELIVERED);
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
        assert_int_equal(f->outbox.claim(f->outbox.ctx, f->ep.name, "b", f->le.now, 30, 10, ignore_row, &seen), BP_OK);
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
    add_rows(f, f->ep.name, 1);
    bp_deliver_result r;
    assert_int_equal(bp_deliver_once(&f->ep, &f->opts, &f->outbox, &slow, "a", &f->env, &r), BP_OK);
    assert_int_equal(r.requests, 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.retried, 0);
    row_view row = row_at(f, 0);
    bp_test_check_str("owner", row.owner, "b"); /* b still holds it, untouched */
    assert_int_equal(row.attempts, 0);
}

/* A transport that asks the loop to stop while its first request is in flight (SIGTERM). */
static bp_status stopping_post(void *ctx, const bp_http_request *req, bp_http_response *resp)
{
    fixture *f = ctx;
    (void)req;
    f->stop = 1;
    f->sc.requests++;
    resp->status = 200;
    return BP_OK;
}

static void test_loop_stop_releases(void **state)
{
    fixture *f = *state;
    bp_http_transport stopping = {f, stopping_post, NULL};
    add_rows(f, f->ep.name, 3);
    bp_deliver_result r;
    assert_int_equal(bp_deliver_once(&f->ep, &f->opts, &f->outbox, &stopping, "a", &f->env, &r), BP_OK);
    assert_int_equal(r.claimed, 3);
    assert_int_equal(r.requests, 1); /* the request in flight is answered and marked ... */
    assert_int_equal(r.delivered, 1);
    assert_int_equal(row_at(f, 0).state, ROW_DELIVERED);
    for (size_t k = 1; k < 3; k++) { /* ... the others are free again at once, untouched */
        row_view row = row_at(f, k);
        assert_int_equal(row.state, ROW_PENDING);
        assert_int_equal(row.lease_until, 0);
        assert_int_equal(row.attempts, 0);
        bp_test_check_str("owner", row.owner, "");
    }
    f->stop = 0;
    r = run(f, "b");
    assert_int_equal(r.claimed, 2);
    assert_int_equal(r.delivered, 2);
}

static void test_loop_outbox_failure(void **state)
{
    fixture *f = *state; /* the in-memory outbox fails on request */
    add_rows(f, f->ep.name, 1);
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
    add_rows(f, f->ep.name, 3);
    bp_deliver_result r = run(f, "a");
    assert_int_equal(r.requests, 3);
    assert_int_equal(r.delivered, 3);
    assert_non_null(strstr(f->sc.bodies[0], "\"type\":\"hard\""));
    assert_non_null(strstr(f->sc.bodies[2], "\"email\":\"user2@example.net\""));
}

/* ---- what only the store's outbox has ------------------------------------------------------- */

typedef struct rows_of {
    const char *endpoint;
    size_t n;
    long long ledger_id; /* of the last one */
} rows_of;

static int count_of(void *user, const bp_store_outbox_entry *o)
{
    rows_of *r = user;
    if (strcmp(o->endpoint, r->endpoint) == 0) {
        r->n++;
        r->ledger_id = o->ledger_id;
    }
    return 0;
}

/* Store rows of @p endpoint. */
static rows_of store_rows(fixture *f, const char *endpoint)
{
    rows_of r = {endpoint, 0, 0};
    assert_int_equal(bp_store_outbox_list(f->store, 0, LLONG_MAX, count_of, &r), BP_OK);
    return r;
}

static int first_id(void *user, const bp_ledger_row *r)
{
    if (*(long long *)user == 0)
        *(long long *)user = r->id;
    return 0;
}

/* Outbox rows are written with the unit, in its transaction, only for events that have a
 * ledger row of their own, and only when the unit is new or upgraded. */
static void test_store_outbox_with_the_ledger(void **state)
{
    fixture *f = *state;
    char fp[96], fp2[96], a[96], b[96], keys[4][33], diag[200], diag2[200];
    const char *ep = f->ep.name;
    snprintf(fp, sizeof(fp), "%s-unit", f->tag);
    snprintf(fp2, sizeof(fp2), "%s-unit2", f->tag);
    snprintf(a, sizeof(a), "a-%s@example.net", f->tag);
    snprintf(b, sizeof(b), "b-%s@example.net", f->tag);
    bp_event ev[3];
    ev[0] = store_event(a, fp, diag);
    memset(&ev[1], 0, sizeof(ev[1])); /* an unrecognised event beside recognised ones: no row */
    ev[1].type = BP_EVENT_UNRECOGNIZED;
    ev[1].fingerprint = fp;
    ev[2] = store_event(b, fp, diag2);
    ev[2].type = BP_EVENT_COMPLAINT;
    ev[2].category = NULL;
    ev[2].feedback_type = "abuse";
    for (unsigned i = 0; i < 3; i++)
        bp_webhook_event_key(fp, i, &ev[i], keys[i]);
    bp_store_outbox_want w[] = {{0, ep, keys[0], 0, 0, 0, 0, NULL},
                                {1, ep, keys[1], 0, 0, 0, 0, NULL},
                                {2, ep, keys[2], 0, 0, 0, 0, NULL},
                                {2, f->other, keys[2], 0, 0, 0, 0, NULL},
                                {7, ep, "no-such-event", 0, 0, 0, 0, NULL}};
    bp_store_unit u = {fp, "<u@example.net>", "-", f->le.now, NULL};
    bp_record_result rr;
    /* rolled back with the ledger */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u, ev, 3, w, 5, &rr), BP_OK);
    bp_store_rollback(f->store);
    assert_int_equal(store_rows(f, ep).n, 0);
    /* committed with it */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u, ev, 3, w, 5, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(rr.outcome, BP_RECORD_NEW);
    assert_int_equal(store_rows(f, ep).n, 2);
    rows_of other = store_rows(f, f->other);
    assert_int_equal(other.n, 1);
    long long b_row = 0;
    assert_int_equal(bp_store_ledger_for(f->store, b, first_id, &b_row), BP_OK);
    assert_int_equal(other.ledger_id, b_row); /* the row points at its event's ledger row */
    row_view v;
    find_row k = {0, ep, keys[0], &v, 0};
    assert_true(store_find(f, &k));
    assert_int_equal(v.state, ROW_PENDING);
    assert_true(v.created_at > 1700000000); /* the transaction's time (the want gave none) */
    assert_int_equal(v.next_at, v.created_at);
    /* the same unit again is a duplicate: nothing more */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u, ev, 3, w, 5, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(rr.outcome, BP_RECORD_DUPLICATE);
    assert_int_equal(store_rows(f, ep).n, 2);

    /* a unit recorded as unrecognised, then recognised: the placeholder's row goes with it */
    bp_event placeholder;
    memset(&placeholder, 0, sizeof(placeholder));
    placeholder.type = BP_EVENT_UNRECOGNIZED;
    placeholder.fingerprint = fp2;
    char pkey[33], nkey[33];
    bp_webhook_event_key(fp2, 0, &placeholder, pkey);
    bp_store_outbox_want pw = {0, f->other, pkey, 0, 0, 0, 0, NULL};
    bp_store_unit u2 = {fp2, "<u2@example.net>", "-", f->le.now, NULL};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u2, &placeholder, 1, &pw, 1, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(store_rows(f, f->other).n, 2);
    bp_event real = store_event(a, fp2, diag);
    bp_webhook_event_key(fp2, 0, &real, nkey);
    bp_store_outbox_want nw = {0, f->other, nkey, 0, 0, 0, 0, NULL};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u2, &real, 1, &nw, 1, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    assert_int_equal(rr.outcome, BP_RECORD_UPGRADED);
    find_row gone = {0, f->other, pkey, &v, 0}, there = {0, f->other, nkey, &v, 0};
    assert_false(store_find(f, &gone));
    assert_true(store_find(f, &there));
    assert_int_equal(store_rows(f, f->other).n, 2);

    /* what migrate carries: state, attempts, times, last error */
    char fp3[96], ckey[33];
    snprintf(fp3, sizeof(fp3), "%s-unit3", f->tag);
    bp_event carried = store_event(b, fp3, diag);
    bp_webhook_event_key(fp3, 0, &carried, ckey);
    bp_store_outbox_want cw = {0, ep, ckey, 1, 7, 1600000000, 1600000500, "HTTP 400"};
    bp_store_unit u3 = {fp3, "<u3@example.net>", "-", f->le.now, NULL};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u3, &carried, 1, &cw, 1, &rr), BP_OK);
    assert_int_equal(bp_store_commit(f->store), BP_OK);
    find_row c3 = {0, ep, ckey, &v, 0};
    assert_true(store_find(f, &c3));
    assert_int_equal(v.state, ROW_DEAD);
    assert_int_equal(v.attempts, 7);
    assert_int_equal(v.created_at, 1600000000);
    assert_int_equal(v.next_at, 1600000500);
    bp_test_check_str("carried error", v.last_error, "HTTP 400");

    /* a want without a key is the caller's mistake */
    bp_store_outbox_want bad = {0, ep, NULL, 0, 0, 0, 0, NULL};
    bp_store_unit u4 = {"never", NULL, "-", f->le.now, NULL};
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_equal(bp_store_record_with_outbox(f->store, &u4, &carried, 1, &bad, 1, &rr), BP_ERR_USAGE);
    bp_store_rollback(f->store);
    /* claims and marks are transactions of their own: not inside another */
    assert_int_equal(bp_store_begin(f->store), BP_OK);
    assert_int_not_equal(bp_store_outbox_mark(f->store, v.id, "x", BP_OUTBOX_RELEASE, 0, NULL), BP_OK);
    bp_store_rollback(f->store);
}

/* Several processes claim from one outbox at once (SQLite: one writer at a time; PostgreSQL:
 * FOR UPDATE SKIP LOCKED): every row is claimed by exactly one of them. */
#define CLAIMERS   4
#define CLAIM_ROWS 120

static int collect_ids(void *user, const bp_outbox_row *row)
{
    long long **at = user;
    *(*at)++ = row->id;
    return 0;
}

static void claimer(const fixture *f, int n, int start, int out)
{
    bp_store *s = NULL;
    char owner[32], line[64], go;
    if (bp_store_open(f->location, NULL, &s, NULL) != BP_OK)
        _exit(2);
    if (read(start, &go, 1) != 0) /* all start at once: when the parent closes the pipe */
        _exit(5);
    bp_outbox o;
    bp_deliver_store_outbox(s, &o);
    snprintf(owner, sizeof(owner), "claimer-%d", n);
    for (int empty = 0; empty < 3;) {
        long long ids[3], *at = ids;
        if (o.claim(o.ctx, f->ep.name, owner, 1700000000, 600, 3, collect_ids, &at) != BP_OK)
            _exit(3);
        empty = at == ids ? empty + 1 : 0;
        /* a delivery takes time (an HTTP request): without it, on a loaded host one claimer
         * may drain every row before the others are scheduled, and nothing overlaps */
        if (at != ids)
            usleep(10000);
        for (long long *p = ids; p < at; p++) {
            int len = snprintf(line, sizeof(line), "%d %lld\n", n, *p);
            if (write(out, line, (size_t)len) != len || o.delivered(o.ctx, *p, owner, 1700000001) != BP_OK)
                _exit(4);
        }
    }
    bp_store_close(s);
    _exit(0);
}

static void test_store_concurrent_claims(void **state)
{
    fixture *f = *state;
    int fds[2], start[2];
    add_rows(f, f->ep.name, CLAIM_ROWS);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(start), 0);
    pid_t pids[CLAIMERS];
    for (int i = 0; i < CLAIMERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[0]);
            close(start[1]);
            claimer(f, i, start[0], fds[1]);
        }
    }
    close(fds[1]);
    close(start[0]);
    usleep(200000); /* every claimer has opened its store and waits */
    close(start[1]);
    FILE *in = fdopen(fds[0], "r");
    assert_non_null(in);
    int times[CLAIM_ROWS] = {0}, by[CLAIMERS] = {0}, who = 0;
    long long id = 0;
    while (fscanf(in, "%d %lld", &who, &id) == 2) {
        size_t k = 0;
        while (k < f->n_ids && f->ids[k] != id)
            k++;
        if (k == f->n_ids || who < 0 || who >= CLAIMERS)
            fail_msg("claimer %d claimed row %lld, not one of this case's", who, id);
        times[k]++;
        by[who]++;
    }
    fclose(in);
    for (int i = 0; i < CLAIMERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("claimer %d failed (status %d)", i, status);
    }
    for (size_t k = 0; k < CLAIM_ROWS; k++)
        if (times[k] != 1)
            fail_msg("row %lld was claimed %d times, want once", f->ids[k], times[k]);
    int busy = 0;
    for (int i = 0; i < CLAIMERS; i++)
        busy += by[i] > 0;
    if (busy < 2)
        fail_msg("only %d claimer(s) got rows: the claims did not overlap, the test shows nothing", busy);
    bp_outbox_counts c;
    assert_int_equal(f->outbox.counts(f->outbox.ctx, f->ep.name, 1700000002, &c), BP_OK);
    assert_int_equal(c.delivered, CLAIM_ROWS);
}

/* The core hands the store the rows the configured endpoints want (process.c): a bounce goes
 * to the endpoint that takes everything, not to the one that takes complaints only; the key is
 * the event's; recording the message again adds nothing. */
static void test_core_handover(void **state)
{
    fixture *f = *state;
    char *err = NULL, msg[2048], name[2][100];
    bp_webhook_endpoint eps[2];
    snprintf(name[0], sizeof(name[0]), "all-%s", f->tag);
    snprintf(name[1], sizeof(name[1]), "complaints-%s", f->tag);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bp_webhook_endpoint_init(&eps[i], name[i], &err), BP_OK);
        assert_int_equal(bp_webhook_endpoint_set(&eps[i], "url", "https://lists.example.com/hook", &err), BP_OK);
    }
    assert_int_equal(bp_webhook_endpoint_set(&eps[1], "types", "complaint", &err), BP_OK);
    int len = snprintf(msg, sizeof(msg),
                       "Return-Path: <>\nDate: Tue, 10 Mar 2026 10:05:31 +0100\nFrom: MAILER-DAEMON@mx1.example.net\n"
                       "Subject: Undelivered Mail Returned to Sender\nMessage-Id: <dsn.%s@mx1.example.net>\n"
                       "MIME-Version: 1.0\n"
                       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
                       "--B\nContent-Type: text/plain\n\nI could not deliver your message.\n"
                       "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx1.example.net\n\n"
                       "Final-Recipient: rfc822; jdoe-%s@example.com\nAction: failed\nStatus: 5.1.1\n"
                       "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n--B--\n",
                       f->tag, f->tag);
    bp_mime_init();
    bp_arena *arena = bp_arena_new();
    bp_pipeline p;
    bp_pipeline_init(&p);
    p.webhooks = eps;
    p.n_webhooks = 2;
    bp_process_result res;
    bp_finish_result fin;
    assert_int_equal(bp_process_message(&p, NULL, 0, msg, (size_t)len, arena, &res), BP_OK);
    assert_int_equal(res.n_events, 1);
    assert_int_equal(res.events[0].type, BP_EVENT_BOUNCE);
    assert_int_equal(bp_finish_message(&p, f->store, &res, msg, (size_t)len, &fin), BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_RECORDED);
    char key[33];
    bp_webhook_event_key(res.fingerprint, 0, &res.events[0], key);
    row_view v;
    find_row k = {0, name[0], key, &v, 0};
    assert_true(store_find(f, &k));
    assert_int_equal(store_rows(f, name[0]).n, 1);
    assert_int_equal(store_rows(f, name[1]).n, 0);
    assert_int_equal(bp_finish_message(&p, f->store, &res, msg, (size_t)len, &fin), BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_DUPLICATE);
    assert_int_equal(store_rows(f, name[0]).n, 1);
    /* without endpoints nothing is written */
    p.n_webhooks = 0;
    msg[strlen("Return-Path: <>\nDate: Tue, 10 Mar 2026 10:05:31 +0100\nFrom: MAILER-DAEMON@mx1.example.net\n"
               "Subject: Undelivered Mail Returned to Sender\nMessage-Id: <dsn.")] = 'X'; /* another message */
    assert_int_equal(bp_process_message(&p, NULL, 0, msg, (size_t)len, arena, &res), BP_OK);
    assert_int_equal(bp_finish_message(&p, f->store, &res, msg, (size_t)len, &fin), BP_OK);
    assert_int_equal(fin.outcome, BP_FINISHED_RECORDED);
    assert_int_equal(store_rows(f, name[0]).n, 1);
    bp_arena_free(arena);
    bp_webhook_endpoint_free(&eps[0]);
    bp_webhook_endpoint_free(&eps[1]);
}

#define LOOP_CASES(setup)                                                                                              \
    cmocka_unit_test_setup_teardown(test_loop_delivers, setup, fixture_teardown),                                      \
        cmocka_unit_test_setup_teardown(test_loop_backoff_and_dead, setup, fixture_teardown),                          \
        cmocka_unit_test_setup_teardown(test_loop_dead_letter, setup, fixture_teardown),                               \
        cmocka_unit_test_setup_teardown(test_loop_leases, setup, fixture_teardown),                                    \
        cmocka_unit_test_setup_teardown(test_loop_lost_lease, setup, fixture_teardown),                                \
        cmocka_unit_test_setup_teardown(test_loop_stop_releases, setup, fixture_teardown),                             \
        cmocka_unit_test_setup_teardown(test_loop_listmonk, setup, fixture_teardown)

#define STORE_CASES(setup)                                                                                             \
    cmocka_unit_test_setup_teardown(test_store_outbox_with_the_ledger, setup, fixture_teardown),                       \
        cmocka_unit_test_setup_teardown(test_store_concurrent_claims, setup, fixture_teardown),                        \
        cmocka_unit_test_setup_teardown(test_core_handover, setup, fixture_teardown)

int main(void)
{
    const char *url = getenv("BOUNCEPIPE_TEST_DB_URL");
    if (url != NULL && *url != '\0') { /* tests/system/pg_outbox.sh: the store on PostgreSQL */
        const struct CMUnitTest pg[] = {LOOP_CASES(setup_pg), STORE_CASES(setup_pg)};
        return cmocka_run_group_tests_name("webhook outbox on PostgreSQL", pg, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_table), cmocka_unit_test(test_config_values), cmocka_unit_test(test_durations),
        cmocka_unit_test(test_filters),      cmocka_unit_test(test_event_key),     cmocka_unit_test(test_signature),
        cmocka_unit_test(test_bodies),
    };
    const struct CMUnitTest fake[] = {
        LOOP_CASES(setup_fake),
        cmocka_unit_test_setup_teardown(test_loop_outbox_failure, setup_fake, fixture_teardown)};
    const struct CMUnitTest sqlite[] = {LOOP_CASES(setup_sqlite), STORE_CASES(setup_sqlite)};
    int failed = cmocka_run_group_tests_name("webhooks", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("webhook outbox in memory (the reference)", fake, NULL, NULL);
    failed += cmocka_run_group_tests_name("webhook outbox on SQLite", sqlite, NULL, NULL);
    return failed;
}
