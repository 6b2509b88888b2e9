/*
 * http_curl.c - the HTTP transport on libcurl, built as the module bouncepipe-http.so and found
 * by http.c with dlsym("bp_http_curl_open").  Self-contained: it needs nothing exported from
 * the executable.
 *
 * bp_http_curl_open(): one easy handle per transport, reused (kept-alive connections).
 * post(): POST the body with the given headers; TLS peer and host name always verified against
 * the system's CA store; only http and https (no redirects followed: a webhook answering 3xx
 * is a failure to fix, and a POST must not wander); the whole request bounded by timeout_ms,
 * connecting by connect_timeout_ms; no signals (curl's resolver timeouts would raise SIGALRM);
 * the response body read and dropped (at most 1 MiB is taken before the transfer is cut:
 * a receiver cannot make us read without end); Retry-After in seconds picked from the headers.
 *
 * Ownership: the transport owns its handle; close() releases it.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/deliver.h"

/* Response bytes read before the transfer is cut (the status line is all we need). */
#define MAX_RESPONSE_BYTES (1024u * 1024u)

typedef struct curl_transport {
    CURL *h;
    size_t got;
    long retry_after;
} curl_transport;

static size_t drop_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    curl_transport *t = user;
    (void)ptr;
    t->got += size * nmemb;
    if (t->got > MAX_RESPONSE_BYTES)
        return 0; /* curl stops with CURLE_WRITE_ERROR; the status is already known */
    return size * nmemb;
}

static size_t read_header(char *buf, size_t size, size_t nitems, void *user)
{
    curl_transport *t = user;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        char tmp[32];
        size_t len = n - (sizeof(name) - 1);
        if (len >= sizeof(tmp))
            len = sizeof(tmp) - 1;
        memcpy(tmp, buf + sizeof(name) - 1, len);
        tmp[len] = '\0';
        char *end = NULL;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0)
            t->retry_after = v;
    }
    return n;
}

static bp_status curl_post(void *ctx, const bp_http_request *req, bp_http_response *resp)
{
    curl_transport *t = ctx;
    struct curl_slist *list = NULL;
    char errbuf[CURL_ERROR_SIZE];
    bp_status st = BP_OK;
    errbuf[0] = '\0';
    t->got = 0;
    t->retry_after = -1;
    resp->status = 0;
    resp->retry_after = -1;
    resp->error[0] = '\0';
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(list, req->headers[i]);
        if (l == NULL) {
            st = BP_ERR_NOMEM;
            goto out;
        }
        list = l;
    }
    struct curl_slist *l = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    if (l == NULL) {
        st = BP_ERR_NOMEM;
        goto out;
    }
    list = l;
    CURL *h = t->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_WRITE_ERROR && code > 0)
        rc = CURLE_OK; /* we cut an oversized response body: the status counts */
    if (rc != CURLE_OK || code <= 0) {
        snprintf(resp->error, sizeof(resp->error), "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
        st = BP_ERR_IO;
        goto out;
    }
    resp->status = (int)code;
    resp->retry_after = t->retry_after;
out:
    curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(list);
    return st;
}

static void curl_close(void *ctx)
{
    curl_transport *t = ctx;
    if (t == NULL)
        return;
    curl_easy_cleanup(t->h);
    free(t);
}

bp_status bp_http_curl_open(bp_http_transport *out, char **error);

bp_status bp_http_curl_open(bp_http_transport *out, char **error)
{
    static int initialised;
    if (!initialised) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            if (error != NULL)
                *error = bp_strdup("libcurl could not be initialised");
            return BP_ERR_UNSUPPORTED;
        }
        initialised = 1;
    }
    curl_transport *t = bp_calloc(1, sizeof(*t));
    if (t == NULL)
        return BP_ERR_NOMEM;
    t->h = curl_easy_init();
    if (t->h == NULL) {
        free(t);
        return BP_ERR_NOMEM;
    }
    out->ctx = t;
    out->post = curl_post;
    out->close = curl_close;
    return BP_OK;
}
