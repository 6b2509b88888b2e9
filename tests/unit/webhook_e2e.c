/*
 * webhook_e2e.c - the delivery loop against a real HTTP server, for tests/system/webhook_server.py.
 *
 * Usage: webhook_e2e BASE_URL SECRET
 *
 * Fills the in-memory outbox (outbox_fake.c) with 30 events for the endpoint "contract"
 * (BASE_URL/contract, contract format, batches of 5) and 10 for "listmonk" (BASE_URL/listmonk,
 * listmonk format), prints "EVENT ENDPOINT KEY RECIPIENT" for each, then runs bp_deliver_once()
 * over both endpoints with the real libcurl transport (bouncepipe-http.so) until every row is
 * delivered, sleeping 100 ms when nothing was due.  Timeout 1 s, back-off from 500 ms.
 * Prints "DONE requests=N retried=N" and exits 0, or exits 1 after 120 s or on an outbox or
 * transport failure.  Failures of single requests are printed as "LOG ..." lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/deliver.h"
#include "bouncepipe/webhook.h"
#include "outbox_fake.h"

static void log_line(void *user, const char *msg)
{
    (void)user;
    printf("LOG %s\n", msg);
    fflush(stdout);
}

static int setup_endpoint(bp_webhook_endpoint *ep, const char *name, const char *base, const char *secret,
                          const char *format, const char *batch)
{
    char url[512], *err = NULL;
    snprintf(url, sizeof(url), "%s/%s", base, name);
    bp_status st = bp_webhook_endpoint_init(ep, name, &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "url", url, &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "secret", secret, &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "format", format, &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "batch", batch, &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "timeout", "1s", &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_set(ep, "headers", "Authorization: token api:test-token", &err);
    if (st == BP_OK)
        st = bp_webhook_endpoint_check(ep, &err);
    if (st != BP_OK) {
        fprintf(stderr, "webhook_e2e: %s\n", err != NULL ? err : bp_status_to_string(st));
        free(err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    outbox_fake fake = {0};
    bp_outbox outbox;
    bp_http_transport http;
    bp_webhook_endpoint eps[2];
    bp_deliver_options opts;
    char *err = NULL, owner[64];
    int rc = 1;
    size_t requests = 0, retried = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: webhook_e2e BASE_URL SECRET\n");
        return 64;
    }
    memset(eps, 0, sizeof(eps));
    if (setup_endpoint(&eps[0], "contract", argv[1], argv[2], "contract", "5") != 0 ||
        setup_endpoint(&eps[1], "listmonk", argv[1], argv[2], "listmonk", "1") != 0)
        goto out;
    if (bp_http_transport_open(&http, &err) != BP_OK) {
        fprintf(stderr, "webhook_e2e: %s\n", err != NULL ? err : "no HTTP transport");
        goto out;
    }
    outbox_fake_ops(&fake, &outbox);
    long long now = (long long)time(NULL);
    for (int i = 0; i < 40; i++) {
        char rcpt[64];
        const char *ep = i < 30 ? "contract" : "listmonk";
        bp_event_type type = i % 7 == 3 ? BP_EVENT_COMPLAINT : BP_EVENT_BOUNCE;
        /* hostile text in recipients' diagnostics goes through too (outbox_fake builds it) */
        snprintf(rcpt, sizeof(rcpt), "user%02d+\"q\"@example.net", i);
        long long id = outbox_fake_add(&fake, ep, rcpt, type, BP_ACT_SUPPRESS, now);
        fake_row *r = outbox_fake_row(&fake, id);
        printf("EVENT %s %s %s\n", ep, r->key, rcpt);
    }
    fflush(stdout);
    bp_deliver_options_default(&opts);
    opts.backoff_base_ms = 500;
    opts.backoff_max_ms = 2000;
    opts.lease_margin_s = 2;
    snprintf(owner, sizeof(owner), "e2e:%ld", (long)getpid());
    bp_deliver_env env = {NULL, NULL, log_line, NULL, NULL};
    time_t deadline = time(NULL) + 120;
    while (time(NULL) < deadline) {
        size_t claimed = 0;
        for (int e = 0; e < 2; e++) {
            bp_deliver_result r;
            bp_status st = bp_deliver_once(&eps[e], &opts, &outbox, &http, owner, &env, &r);
            if (st != BP_OK) {
                fprintf(stderr, "webhook_e2e: %s\n", bp_status_to_string(st));
                goto close;
            }
            claimed += r.claimed;
            requests += r.requests;
            retried += r.retried;
            if (r.dead > 0 || r.lost > 0) {
                fprintf(stderr, "webhook_e2e: %zu dead, %zu lost\n", r.dead, r.lost);
                goto close;
            }
        }
        bp_outbox_counts c0, c1;
        outbox.counts(outbox.ctx, "contract", (long long)time(NULL), &c0);
        outbox.counts(outbox.ctx, "listmonk", (long long)time(NULL), &c1);
        if (c0.pending == 0 && c1.pending == 0) {
            printf("DONE requests=%zu retried=%zu delivered=%lld\n", requests, retried, c0.delivered + c1.delivered);
            rc = 0;
            goto close;
        }
        if (claimed == 0)
            usleep(100000);
    }
    fprintf(stderr, "webhook_e2e: not everything delivered within 120 s\n");
close:
    bp_http_transport_close(&http);
out:
    free(err);
    bp_webhook_endpoint_free(&eps[0]);
    bp_webhook_endpoint_free(&eps[1]);
    outbox_fake_free(&fake);
    return rc;
}
