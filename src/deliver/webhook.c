/*
 * webhook.c - webhook endpoints: configuration values, event filters, request bodies,
 * signatures and idempotency keys (webhook.h has the contract of each function).
 *
 * Configuration: bp_webhook_endpoint_set() takes the strings the configuration reader found in
 * a [webhook NAME] group, one key at a time, so that this module never sees the key file.
 * Bodies are written with the printer's JSON writer (bp_event_json_object(), bp_json_string()),
 * so any string an event holds makes valid JSON.  Signatures and keys use GLib's GHmac and
 * GChecksum; nothing here is hand-written cryptography.
 *
 * Ownership: endpoint strings are malloc'ed and owned by the endpoint; error messages are
 * malloc'ed for the caller.
 */
#include "bouncepipe/webhook.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/clock.h"
#include "bouncepipe/deliver.h"
#include "bouncepipe/emit.h"
#include "bouncepipe/text.h"

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BP_WEBHOOK_MAX_NAME)
        return 0;
    for (const char *p = name; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-')
            return 0;
    return 1;
}

bp_status bp_webhook_endpoint_init(bp_webhook_endpoint *ep, const char *name, char **error)
{
    memset(ep, 0, sizeof(*ep));
    if (name == NULL || !name_ok(name)) {
        *error = bp_strdup_printf("[webhook %s]: the name must be 1 to %u letters, digits, '.', '_' or '-'",
                                  name != NULL ? name : "", BP_WEBHOOK_MAX_NAME);
        return BP_ERR_CONFIG;
    }
    ep->name = bp_strdup(name);
    if (ep->name == NULL)
        return BP_ERR_NOMEM;
    ep->format = BP_WEBHOOK_CONTRACT;
    ep->timeout_ms = BP_WEBHOOK_DEFAULT_TIMEOUT_MS;
    ep->batch = 1;
    return BP_OK;
}

void bp_webhook_endpoint_free(bp_webhook_endpoint *ep)
{
    if (ep == NULL)
        return;
    free(ep->name);
    free(ep->url);
    if (ep->secret != NULL) /* a key: do not leave it in freed memory */
        memset(ep->secret, 0, strlen(ep->secret));
    free(ep->secret);
    for (size_t i = 0; i < ep->n_headers; i++)
        free(ep->headers[i]);
    free(ep->headers);
    memset(ep, 0, sizeof(*ep));
}

/* Split @p value at ';' into trimmed, non-empty items; @p each returns non-zero to stop. */
static bp_status each_item(const char *value, bp_status (*each)(void *user, const char *item), void *user)
{
    bp_status st = BP_OK;
    gchar **parts = g_strsplit(value, ";", -1);
    for (size_t i = 0; parts[i] != NULL && st == BP_OK; i++) {
        char *item = g_strstrip(parts[i]);
        if (*item != '\0')
            st = each(user, item);
    }
    g_strfreev(parts);
    return st;
}

static bp_status add_type(void *user, const char *item)
{
    int t = bp_event_type_from_name(item);
    if (t < 0)
        return BP_ERR_CONFIG;
    *(unsigned *)user |= 1u << (unsigned)t;
    return BP_OK;
}

static bp_status add_action(void *user, const char *item)
{
    bp_action a = bp_action_from_name(item); /* "none": unrecognised messages' placeholder rows */
    if (a == BP_ACT_NONE && strcmp(item, "none") != 0)
        return BP_ERR_CONFIG;
    *(unsigned *)user |= 1u << (unsigned)a;
    return BP_OK;
}

/* A header line "Name: value": a token name (RFC 9110), no CR, LF or other control byte in the
 * value (a header must never be able to start another), and not one this module sets itself. */
static int header_ok(const char *h)
{
    static const char *const ours[] = {"content-type",           "content-length",    "host",  "idempotency-key",
                                       "x-bouncepipe-signature", "transfer-encoding", "expect"};
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if (!g_ascii_isalnum(*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
            return 0;
    for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
            return 0;
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (strlen(ours[i]) == (size_t)(colon - h) && g_ascii_strncasecmp(h, ours[i], strlen(ours[i])) == 0)
            return 0;
    return 1;
}

static bp_status add_header(void *user, const char *item)
{
    bp_webhook_endpoint *ep = user;
    if (!header_ok(item))
        return BP_ERR_CONFIG;
    if (ep->n_headers >= BP_WEBHOOK_MAX_HEADERS)
        return BP_ERR_LIMIT;
    char **v = bp_realloc(ep->headers, (ep->n_headers + 2) * sizeof(*v));
    if (v == NULL)
        return BP_ERR_NOMEM;
    ep->headers = v;
    v[ep->n_headers] = bp_strdup(item);
    if (v[ep->n_headers] == NULL)
        return BP_ERR_NOMEM;
    v[++ep->n_headers] = NULL;
    return BP_OK;
}

static int url_ok(const char *url)
{
    const char *rest = NULL;
    if (g_ascii_strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (g_ascii_strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    if (rest == NULL || *rest == '\0' || *rest == '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return 0;
    return 1;
}

/* Replace *slot by a copy of value. */
static bp_status set_string(char **slot, const char *value)
{
    char *copy = bp_strdup(value);
    if (copy == NULL)
        return BP_ERR_NOMEM;
    free(*slot);
    *slot = copy;
    return BP_OK;
}

bp_status bp_webhook_endpoint_set(bp_webhook_endpoint *ep, const char *key, const char *value, char **error)
{
    bp_status st = BP_OK;
    const char *want = NULL;
    if (value == NULL)
        value = "";
    if (strcmp(key, "url") == 0) {
        if (!url_ok(value)) {
            want = "want an http:// or https:// URL without spaces";
            st = BP_ERR_CONFIG;
        } else {
            st = set_string(&ep->url, value);
        }
    } else if (strcmp(key, "format") == 0) {
        if (strcmp(value, "contract") == 0)
            ep->format = BP_WEBHOOK_CONTRACT;
        else if (strcmp(value, "listmonk") == 0)
            ep->format = BP_WEBHOOK_LISTMONK;
        else {
            want = "want contract or listmonk";
            st = BP_ERR_CONFIG;
        }
    } else if (strcmp(key, "types") == 0) {
        ep->types = 0;
        st = each_item(value, add_type, &ep->types);
        want = "want event types (bounce, delay, complaint, autoreply, delivered, unrecognized) separated by ';'";
    } else if (strcmp(key, "actions") == 0) {
        ep->actions = 0;
        st = each_item(value, add_action, &ep->actions);
        want = "want actions (suppress, soft, ignore, none) separated by ';'";
    } else if (strcmp(key, "secret") == 0) {
        if (strlen(value) < 16) {
            want = "want at least 16 characters (a long random string)";
            st = BP_ERR_CONFIG;
        } else {
            st = set_string(&ep->secret, value);
        }
    } else if (strcmp(key, "headers") == 0) {
        for (size_t i = 0; i < ep->n_headers; i++)
            free(ep->headers[i]);
        free(ep->headers);
        ep->headers = NULL;
        ep->n_headers = 0;
        st = each_item(value, add_header, ep);
        want = st == BP_ERR_LIMIT ? "too many headers"
                                  : "want 'Name: value' entries separated by ';' (no control "
                                    "characters; not a header bouncepipe sets itself)";
        if (st == BP_ERR_LIMIT)
            st = BP_ERR_CONFIG;
    } else if (strcmp(key, "timeout") == 0) {
        long long ms = 0;
        st = bp_parse_duration_ms(value, &ms);
        if (st == BP_OK && (ms < BP_WEBHOOK_MIN_TIMEOUT_MS || ms > BP_WEBHOOK_MAX_TIMEOUT_MS))
            st = BP_ERR_CONFIG;
        if (st == BP_OK)
            ep->timeout_ms = (unsigned)ms;
        want = "want a duration from 100ms to 5m (e.g. 10s)";
    } else if (strcmp(key, "batch") == 0) {
        char *end = NULL;
        long n = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || n < 1 || n > (long)BP_WEBHOOK_MAX_BATCH) {
            want = "want a number of events from 1 to 500";
            st = BP_ERR_CONFIG;
        } else {
            ep->batch = (unsigned)n;
        }
    } else {
        *error = bp_strdup_printf("[webhook %s] %s: unknown key", ep->name, key);
        return BP_ERR_CONFIG;
    }
    if (st == BP_ERR_CONFIG)
        *error = bp_strdup_printf("[webhook %s] %s: %s", ep->name, key, want != NULL ? want : "invalid value");
    return st;
}

bp_status bp_webhook_endpoint_check(bp_webhook_endpoint *ep, char **error)
{
    if (ep->url == NULL) {
        *error = bp_strdup_printf("[webhook %s] url: missing", ep->name);
        return BP_ERR_CONFIG;
    }
    if (ep->format == BP_WEBHOOK_LISTMONK) {
        unsigned allowed = (1u << BP_EVENT_BOUNCE) | (1u << BP_EVENT_DELAY) | (1u << BP_EVENT_COMPLAINT);
        if (ep->types & ~allowed) {
            *error =
                bp_strdup_printf("[webhook %s] types: listmonk takes bounces, delays and complaints only", ep->name);
            return BP_ERR_CONFIG;
        }
        ep->batch = 1;
    }
    return BP_OK;
}

const char *bp_webhook_listmonk_type(const bp_event *e)
{
    if (e->recipient == NULL)
        return NULL;
    if (e->type == BP_EVENT_COMPLAINT && e->action == BP_ACT_SUPPRESS)
        return "complaint";
    if (e->type == BP_EVENT_BOUNCE && e->action == BP_ACT_SUPPRESS)
        return "hard";
    if ((e->type == BP_EVENT_BOUNCE || e->type == BP_EVENT_DELAY) && e->action == BP_ACT_SOFT)
        return "soft";
    return NULL;
}

int bp_webhook_wants(const bp_webhook_endpoint *ep, const bp_event *e)
{
    if (ep->types != 0 && !(ep->types & (1u << (unsigned)e->type)))
        return 0;
    if (ep->actions != 0 && !(ep->actions & (1u << (unsigned)e->action)))
        return 0;
    if (ep->format == BP_WEBHOOK_LISTMONK && bp_webhook_listmonk_type(e) == NULL)
        return 0;
    return 1;
}

char *bp_webhook_event_key(const char *fingerprint, unsigned index, const bp_event *e, char out[33])
{
    char num[16];
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    if (sum == NULL) /* GLib aborts on out of memory; NULL means the type is unsupported */
        BP_INTERNAL_ERROR("GLib has no SHA-256");
    /* the parts are separated by a NUL byte, which none of them can contain */
    const char *type = bp_event_type_name(e->type);
    const char *rcpt = e->recipient != NULL ? e->recipient : "";
    snprintf(num, sizeof(num), "%u", index);
    g_checksum_update(sum, (const guchar *)"bouncepipe-event", 17);
    g_checksum_update(sum, (const guchar *)fingerprint, (gssize)strlen(fingerprint) + 1);
    g_checksum_update(sum, (const guchar *)num, (gssize)strlen(num) + 1);
    g_checksum_update(sum, (const guchar *)type, (gssize)strlen(type) + 1);
    g_checksum_update(sum, (const guchar *)rcpt, (gssize)strlen(rcpt));
    const char *hex = g_checksum_get_string(sum);
    memcpy(out, hex, 32);
    out[32] = '\0';
    g_checksum_free(sum);
    return out;
}

static void iso_time(long long t, char *buf, size_t size)
{
    if (t <= 0 || !bp_utc_format(t, BP_UTC_TIME, buf, size))
        snprintf(buf, size, "%s", "");
}

/* ,"name":"value" or ,"name":null */
static bp_status json_member(bp_strbuf *sb, const char *name, const char *value, int first)
{
    bp_status st = first ? BP_OK : bp_strbuf_putc(sb, ',');
    if (st == BP_OK)
        st = bp_json_string(sb, name);
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, ':');
    if (st == BP_OK)
        st = bp_json_string(sb, value);
    return st;
}

/* @p n members, the first of an object (no comma before it). */
static bp_status json_members(bp_strbuf *sb, const char *const *names, const char *const *values, size_t n)
{
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK; i++)
        st = json_member(sb, names[i], values[i], i == 0);
    return st;
}

static bp_status contract_item(bp_strbuf *sb, const bp_webhook_item *it)
{
    char when[32];
    bp_status st = bp_event_json_object(sb, it->event);
    if (st != BP_OK)
        return st;
    /* the object ends with '}': reopen it for the delivery's own members */
    sb->data[--sb->len] = '\0';
    iso_time(it->recorded_at, when, sizeof(when));
    st = json_member(sb, "event_id", it->key, 0);
    if (st == BP_OK)
        st = json_member(sb, "recorded_at", when[0] != '\0' ? when : NULL, 0);
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '}');
    return st;
}

/* listmonk's bounce record (models.Bounce): email, source, type, meta (an object), created_at. */
static bp_status listmonk_item(bp_strbuf *sb, const bp_webhook_item *it)
{
    const bp_event *e = it->event;
    const char *type = bp_webhook_listmonk_type(e);
    char when[32];
    iso_time(it->recorded_at, when, sizeof(when));
    const char *const names[] = {"email", "source", "type"};
    const char *const values[] = {e->recipient, "bouncepipe", type != NULL ? type : "soft"};
    const char *const meta[] = {"event_id", "event_type", "category", "feedback_type",
                                "status",   "diagnostic", "rule",     "message_id"};
    const char *const meta_values[] = {
        it->key,      bp_event_type_name(e->type), e->category, e->feedback_type, e->status, e->diagnostic, e->rule,
        e->message_id};
    bp_status st = bp_strbuf_putc(sb, '{');
    if (st == BP_OK)
        st = json_members(sb, names, values, sizeof(names) / sizeof(names[0]));
    if (st == BP_OK)
        st = bp_strbuf_puts(sb, ",\"meta\":{");
    if (st == BP_OK)
        st = json_members(sb, meta, meta_values, sizeof(meta) / sizeof(meta[0]));
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '}');
    if (st == BP_OK && when[0] != '\0')
        st = json_member(sb, "created_at", when, 0);
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, '}');
    return st;
}

bp_status bp_webhook_body(const bp_webhook_endpoint *ep, const bp_webhook_item *items, size_t n, bp_strbuf *sb)
{
    bp_status st = BP_OK;
    if (n == 0 || (ep->format == BP_WEBHOOK_LISTMONK && n != 1))
        return BP_ERR_USAGE;
    if (ep->format == BP_WEBHOOK_LISTMONK)
        return listmonk_item(sb, &items[0]);
    if (n == 1 && ep->batch == 1)
        return contract_item(sb, &items[0]);
    st = bp_strbuf_putc(sb, '[');
    for (size_t i = 0; st == BP_OK && i < n; i++) {
        if (i > 0)
            st = bp_strbuf_putc(sb, ',');
        if (st == BP_OK)
            st = contract_item(sb, &items[i]);
    }
    if (st == BP_OK)
        st = bp_strbuf_putc(sb, ']');
    return st;
}

bp_status bp_webhook_sign(const char *secret, long long unix_time, const char *body, size_t body_len, char *out,
                          size_t size)
{
    char t[24];
    if (secret == NULL || *secret == '\0' || size < 100)
        return BP_ERR_USAGE;
    int tn = snprintf(t, sizeof(t), "%lld", unix_time);
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret));
    g_hmac_update(h, (const guchar *)t, tn);
    g_hmac_update(h, (const guchar *)".", 1);
    g_hmac_update(h, (const guchar *)body, (gssize)body_len);
    snprintf(out, size, "t=%s,v1=%s", t, g_hmac_get_string(h));
    g_hmac_unref(h);
    return BP_OK;
}
