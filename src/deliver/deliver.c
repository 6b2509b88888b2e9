/*
 * deliver.c - the webhook delivery loop over an outbox (deliver.h has the state machine,
 * the outbox contract and the back-off rule).
 *
 * bp_deliver_once(): claim due rows of one endpoint under a lease long enough to send all of
 * them at the endpoint's timeout, copy them (the outbox's strings live only during its
 * callback), group them into requests, sign and post each, and mark every row of a request
 * by its outcome: 2xx delivered; 400/422 (the receiver refuses these bytes: sending them again
 * cannot help) or a row older than dead_after: dead; anything else, a transport failure
 * included: retried after the back-off.  A mark the outbox refuses (the lease passed to
 * another process) is counted as lost, never forced.
 * A pass asked to stop (env->stop) ends after the request in flight and releases the rows it
 * has not sent, so that the next deliver process takes them at once.
 * bp_deliver_options_set(): the [deliver] group's values (durations: text.h's parser).
 *
 * Ownership: one arena per pass holds the copied rows and is freed before returning; request
 * bodies live in a bp_strbuf of the pass.
 */
#include "bouncepipe/deliver.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/text.h"

/* Requests per pass: small, so that a pass returns soon and the caller can stop or move on. */
#define REQUESTS_PER_PASS 4u

void bp_deliver_options_default(bp_deliver_options *o)
{
    o->backoff_base_ms = 30000;
    o->backoff_max_ms = 3600000;
    o->dead_after_s = 3 * 86400;
    o->lease_margin_s = 30;
    o->poll_ms = 1000;
}

bp_status bp_deliver_options_set(bp_deliver_options *o, const char *key, const char *value, char **error)
{
    long long ms = 0;
    bp_status st = bp_parse_duration_ms(value, &ms);
    const char *want = "want a duration (250ms, 30s, 5m, 1h, 3d)";
    if (strcmp(key, "backoff_base") == 0) {
        if (st == BP_OK && (ms < 1 || ms > 86400000))
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            o->backoff_base_ms = (unsigned)ms;
    } else if (strcmp(key, "backoff_max") == 0) {
        if (st == BP_OK && (ms < 1 || ms > 7 * 86400000LL))
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            o->backoff_max_ms = (unsigned)ms;
    } else if (strcmp(key, "dead_after") == 0) {
        if (st == BP_OK && ms < 1000)
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            o->dead_after_s = ms / 1000;
    } else if (strcmp(key, "lease_margin") == 0) {
        if (st == BP_OK && (ms < 1000 || ms > 3600000))
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            o->lease_margin_s = (unsigned)(ms / 1000);
    } else if (strcmp(key, "poll_interval") == 0) {
        if (st == BP_OK && (ms < 10 || ms > 3600000))
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            o->poll_ms = (unsigned)ms;
        want = "want a duration from 10ms to 1h";
    } else {
        st = BP_ERR_CONFIG;
        want = "unknown key";
    }
    if (st != BP_OK) {
        char *msg = NULL;
        if (asprintf(&msg, "[deliver] %s: %s", key, want) < 0)
            msg = NULL;
        *error = msg;
    }
    return st;
}

long long bp_deliver_backoff_ms(const bp_deliver_options *opts, unsigned attempts, double r)
{
    double d = opts->backoff_base_ms;
    for (unsigned i = 1; i < attempts && d < opts->backoff_max_ms; i++)
        d *= 2;
    if (d > opts->backoff_max_ms)
        d = opts->backoff_max_ms;
    if (r < 0 || r >= 1)
        r = 0;
    return (long long)(d / 2 + r * (d / 2));
}

/* ---- one pass ------------------------------------------------------------------------- */

typedef struct row_copy {
    long long id;
    unsigned attempts;
    long long created_at;
    char *key;
    bp_event event;
} row_copy;

typedef struct pass {
    bp_arena *arena;
    row_copy *rows;
    size_t n, cap;
    int nomem;
} pass;

static int copy_str(bp_arena *a, const char **slot)
{
    if (*slot == NULL)
        return 1;
    *slot = bp_arena_strdup(a, *slot);
    return *slot != NULL;
}

static int collect(void *user, const bp_outbox_row *row)
{
    pass *p = user;
    if (p->n == p->cap) { /* max rows is known, but the outbox is not trusted to keep it */
        p->nomem = 1;
        return 1;
    }
    row_copy *c = &p->rows[p->n];
    memset(c, 0, sizeof(*c));
    c->id = row->id;
    c->attempts = row->attempts;
    c->created_at = row->created_at;
    c->key = bp_arena_strdup(p->arena, row->event_key != NULL ? row->event_key : "");
    c->event = row->event;
    c->event.dmarc = NULL; /* a ledger row has no report attached */
    const char **strs[BP_EVENT_N_STRINGS];
    bp_event_strings(&c->event, strs);
    int ok = c->key != NULL;
    for (size_t i = 0; ok && i < BP_EVENT_N_STRINGS; i++)
        ok = copy_str(p->arena, strs[i]);
    if (!ok) {
        p->nomem = 1;
        return 1;
    }
    p->n++;
    return 0;
}

static long long real_now(void *user)
{
    (void)user;
    return (long long)time(NULL);
}

static double real_random(void *user)
{
    (void)user;
    return g_random_double();
}

static void say(const bp_deliver_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const bp_deliver_env *env, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    if (env == NULL || env->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    env->log(env->user, msg);
}

/* The Idempotency-Key of a request: the event's key, or for a batch a digest of its keys in
 * order (the same batch sent again carries the same value; each event also carries its own). */
static void request_key(const row_copy *rows, size_t n, char out[65])
{
    if (n == 1) {
        snprintf(out, 65, "%s", rows[0].key);
        return;
    }
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    for (size_t i = 0; i < n; i++) {
        g_checksum_update(sum, (const guchar *)rows[i].key, (gssize)strlen(rows[i].key));
        g_checksum_update(sum, (const guchar *)",", 1);
    }
    snprintf(out, 65, "batch-%.32s", g_checksum_get_string(sum));
    g_checksum_free(sum);
}

typedef enum outcome { OUT_DELIVERED, OUT_RETRY, OUT_REFUSED } outcome;

static outcome judge(bp_status st, const bp_http_response *resp)
{
    if (st == BP_OK && resp->status >= 200 && resp->status < 300)
        return OUT_DELIVERED;
    if (st == BP_OK && (resp->status == 400 || resp->status == 422))
        return OUT_REFUSED;
    return OUT_RETRY;
}

/* Mark the rows of one request; @return BP_OK or the outbox's failure. */
static bp_status mark(const bp_webhook_endpoint *ep, const bp_deliver_options *opts, const bp_outbox *outbox,
                      const char *owner, const bp_deliver_env *env, const row_copy *rows, size_t n, outcome out,
                      long retry_after, const char *error, bp_deliver_result *r)
{
    long long now = env->now(env->user);
    for (size_t i = 0; i < n; i++) {
        bp_status st;
        int dead = 0;
        if (out == OUT_DELIVERED) {
            st = outbox->delivered(outbox->ctx, rows[i].id, owner, now);
        } else {
            dead = out == OUT_REFUSED || now - rows[i].created_at >= opts->dead_after_s;
            if (dead) {
                st = outbox->dead(outbox->ctx, rows[i].id, owner, now, error);
            } else {
                long long delay_ms = bp_deliver_backoff_ms(opts, rows[i].attempts + 1, env->random01(env->user));
                long long delay = (delay_ms + 999) / 1000;
                if (retry_after > delay && retry_after <= 86400)
                    delay = retry_after;
                st = outbox->retry(outbox->ctx, rows[i].id, owner, now + delay, error);
            }
        }
        if (st == BP_ERR_NOT_FOUND) {
            r->lost++;
            say(env, "webhook %s: row %lld: the lease passed to another process; its outcome is not recorded here",
                ep->name, rows[i].id);
            continue;
        }
        if (st != BP_OK)
            return st;
        if (out == OUT_DELIVERED)
            r->delivered++;
        else if (dead)
            r->dead++;
        else
            r->retried++;
    }
    return BP_OK;
}

static bp_status send_request(const bp_webhook_endpoint *ep, const bp_http_transport *http, const row_copy *rows,
                              size_t n, long long now, bp_strbuf *body, bp_http_response *resp)
{
    bp_webhook_item items[BP_WEBHOOK_MAX_BATCH];
    const char *headers[BP_WEBHOOK_MAX_HEADERS + 8];
    char key[65], keyh[100], sig[200], sigh[240];
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].event = &rows[i].event;
        items[i].key = rows[i].key;
        items[i].recorded_at = rows[i].created_at;
    }
    bp_strbuf_clear(body);
    bp_status st = bp_webhook_body(ep, items, n, body);
    if (st != BP_OK)
        return st;
    request_key(rows, n, key);
    snprintf(keyh, sizeof(keyh), "%s: %s", BP_WEBHOOK_KEY_HEADER, key);
    headers[h++] = "Content-Type: application/json";
    headers[h++] = "User-Agent: bouncepipe/" BP_VERSION;
    headers[h++] = keyh;
    if (ep->secret != NULL) {
        st = bp_webhook_sign(ep->secret, now, body->data, body->len, sig, sizeof(sig));
        if (st != BP_OK)
            return st;
        snprintf(sigh, sizeof(sigh), "%s: %s", BP_WEBHOOK_SIGNATURE_HEADER, sig);
        headers[h++] = sigh;
    }
    for (size_t i = 0; i < ep->n_headers; i++)
        headers[h++] = ep->headers[i];
    headers[h] = NULL;
    bp_http_request req = {
        .url = ep->url,
        .headers = headers,
        .body = body->data,
        .body_len = body->len,
        .timeout_ms = ep->timeout_ms,
        .connect_timeout_ms = ep->timeout_ms / 2 > 0 ? ep->timeout_ms / 2 : 1,
    };
    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    return http->post(http->ctx, &req, resp);
}

bp_status bp_deliver_once(const bp_webhook_endpoint *ep, const bp_deliver_options *opts, const bp_outbox *outbox,
                          const bp_http_transport *http, const char *owner, const bp_deliver_env *env_in,
                          bp_deliver_result *result)
{
    bp_deliver_env env = {real_now, real_random, NULL, NULL, NULL};
    pass p;
    bp_strbuf body = {0};
    bp_status st = BP_OK;
    memset(result, 0, sizeof(*result));
    memset(&p, 0, sizeof(p));
    if (env_in != NULL) {
        env.user = env_in->user;
        env.log = env_in->log;
        env.stop = env_in->stop;
        if (env_in->now != NULL)
            env.now = env_in->now;
        if (env_in->random01 != NULL)
            env.random01 = env_in->random01;
    }
    size_t per_request = ep->format == BP_WEBHOOK_LISTMONK || ep->batch < 1 ? 1 : ep->batch;
    size_t max_rows = per_request * REQUESTS_PER_PASS;
    /* the lease covers every request of the pass at the full timeout, plus the margin */
    unsigned lease = REQUESTS_PER_PASS * ((ep->timeout_ms + 999) / 1000 + 1) + opts->lease_margin_s;
    p.arena = bp_arena_new();
    p.rows = bp_calloc(max_rows, sizeof(*p.rows));
    p.cap = max_rows;
    if (p.arena == NULL || p.rows == NULL) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    st = outbox->claim(outbox->ctx, ep->name, owner, env.now(env.user), lease, max_rows, collect, &p);
    result->claimed = p.n;
    if (st == BP_OK && p.nomem)
        st = BP_ERR_NOMEM; /* what was claimed comes back when the lease runs out */
    if (st != BP_OK)
        goto out;
    for (size_t at = 0; at < p.n; at += per_request) {
        size_t n = p.n - at < per_request ? p.n - at : per_request;
        if (env.stop != NULL && *env.stop) { /* asked to stop: what was not sent is free again */
            for (size_t i = at; i < p.n; i++)
                if (outbox->release(outbox->ctx, p.rows[i].id, owner) == BP_ERR_NOT_FOUND)
                    result->lost++;
            break;
        }
        bp_http_response resp;
        char error[300];
        bp_status hs = send_request(ep, http, &p.rows[at], n, env.now(env.user), &body, &resp);
        if (hs == BP_ERR_NOMEM || hs == BP_ERR_USAGE) {
            st = hs;
            goto out;
        }
        result->requests++;
        outcome out = judge(hs, &resp);
        if (hs != BP_OK)
            snprintf(error, sizeof(error), "%s", resp.error[0] != '\0' ? resp.error : bp_status_to_string(hs));
        else
            snprintf(error, sizeof(error), "HTTP %d", resp.status);
        if (out != OUT_DELIVERED) {
            say(&env, "webhook %s: %zu event(s) not delivered: %s%s", ep->name, n, error,
                out == OUT_REFUSED ? " (the receiver refuses them: dead)" : "");
            snprintf(result->last_error, sizeof(result->last_error), "%s", error);
        }
        st = mark(ep, opts, outbox, owner, &env, &p.rows[at], n, out, hs == BP_OK ? resp.retry_after : -1,
                  out == OUT_DELIVERED ? NULL : error, result);
        if (st != BP_OK)
            goto out;
    }
out:
    bp_strbuf_free(&body);
    free(p.rows);
    bp_arena_free(p.arena);
    return st;
}
