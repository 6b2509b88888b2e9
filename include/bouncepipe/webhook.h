/*
 * webhook.h - webhook endpoints: their configuration, which events they want, and the HTTP
 * request that carries events to them (body, signature, idempotency key).
 *
 * An endpoint is the typed value of one [webhook NAME] group of the configuration file:
 *
 *   [webhook listmonk]
 *   url     = https://lists.example.com/webhooks/bounce
 *   format  = listmonk               # or contract (the default)
 *   types   = bounce;complaint       # event types (default: all)
 *   actions = suppress;soft          # policy actions (default: all)
 *   secret  = a long random string   # HMAC-SHA256 key of X-Bouncepipe-Signature
 *   headers = Authorization: token api:KEY;X-Tenant: 7
 *   timeout = 10s                    # whole request; connecting gets at most half of it
 *   batch   = 1                      # contract: events per request (a JSON array when > 1)
 *
 * The configuration reader (the only code that touches the GKeyFile) calls
 * bp_webhook_endpoint_init() for each group named "webhook NAME", then
 * bp_webhook_endpoint_set() with each key and its string value, then
 * bp_webhook_endpoint_check() (see docs/webhooks.md for the loop).  An unknown key or a bad
 * value is an error naming the key, as everywhere else in the configuration.
 *
 * Requests: bp_webhook_body() renders the body of one request for a batch of events;
 * bp_webhook_sign() the X-Bouncepipe-Signature value "t=UNIXTIME,v1=HEX" where HEX is the
 * lower-case hex HMAC-SHA256 keyed with the secret over UNIXTIME "." body (GLib's GHmac);
 * bp_webhook_event_key() the stable idempotency key of one event, which every attempt and
 * every deliver process sends unchanged.
 *
 * Ownership: a bp_webhook_endpoint owns every string in it (bp_webhook_endpoint_free()
 * releases them); errors handed out are malloc'ed (free()); bodies go into the caller's
 * bp_strbuf.
 */
#ifndef BOUNCEPIPE_WEBHOOK_H
#define BOUNCEPIPE_WEBHOOK_H

#include <stddef.h>

#include "bouncepipe/event.h"
#include "bouncepipe/status.h"
#include "bouncepipe/text.h"

/* Extra headers per endpoint.  Receivers want one or two (authorisation, a tenant); the bound
 * keeps a typo'd list from growing every request. */
#define BP_WEBHOOK_MAX_HEADERS 16u
/* Events per request of the contract format.  A batch is one request, one response and one
 * retry unit; 500 events of at most ~12 kB each keep a body under 6 MB. */
#define BP_WEBHOOK_MAX_BATCH 500u
/* The whole-request timeout may be set from 100 ms to 5 minutes: a receiver slower than that
 * holds a lease (and a deliver process) for nothing. */
#define BP_WEBHOOK_MIN_TIMEOUT_MS     100u
#define BP_WEBHOOK_MAX_TIMEOUT_MS     300000u
#define BP_WEBHOOK_DEFAULT_TIMEOUT_MS 10000u
/* Endpoints of one configuration: recording writes up to this many outbox rows per event (a
 * unit's rows are one allocation of events x endpoints); a fleet of list programs is a few. */
#define BP_WEBHOOK_MAX_ENDPOINTS 32u
/* Bytes of an endpoint name ([webhook NAME]); it is stored in every outbox row. */
#define BP_WEBHOOK_MAX_NAME 64u
/* The signature header's name. */
#define BP_WEBHOOK_SIGNATURE_HEADER "X-Bouncepipe-Signature"
/* The idempotency key's header (the same value on every attempt). */
#define BP_WEBHOOK_KEY_HEADER "Idempotency-Key"

typedef enum bp_webhook_format {
    BP_WEBHOOK_CONTRACT = 0, /**< the event contract's JSON: one object, or an array (batch > 1) */
    BP_WEBHOOK_LISTMONK,     /**< listmonk's bounce record: one object per request */
} bp_webhook_format;

typedef struct bp_webhook_endpoint {
    char *name;       /**< NAME of [webhook NAME] */
    char *url;        /**< http:// or https:// */
    unsigned types;   /**< bit (1u << bp_event_type) per wanted type; 0 = all */
    unsigned actions; /**< bit (1u << bp_action) per wanted action; 0 = all */
    char *secret;     /**< HMAC key, or NULL: then no signature header is sent */
    char **headers;   /**< NULL-terminated "Name: value" list, or NULL */
    size_t n_headers; /**< entries of headers */
    bp_webhook_format format;
    unsigned timeout_ms; /**< whole request */
    unsigned batch;      /**< events per request (contract); always 1 for listmonk */
} bp_webhook_endpoint;

/**
 * Start an endpoint named @p name with the defaults (contract, all events, 10 s, batch 1).
 * @param error receives a malloc'ed message on failure
 * @return BP_OK; BP_ERR_CONFIG (empty name, longer than BP_WEBHOOK_MAX_NAME, or a byte other
 *         than a letter, digit, '.', '_' or '-'); BP_ERR_NOMEM.
 */
bp_status bp_webhook_endpoint_init(bp_webhook_endpoint *ep, const char *name, char **error);

/**
 * Set one key of the endpoint from its configuration-file string (lists separated by ';').
 * Keys: url, format, types, actions, secret, headers, timeout, batch.
 * @param error receives a malloc'ed message "[webhook NAME] KEY: what is wrong" on failure
 * @return BP_OK; BP_ERR_CONFIG (unknown key, bad value); BP_ERR_NOMEM.
 */
bp_status bp_webhook_endpoint_set(bp_webhook_endpoint *ep, const char *key, const char *value, char **error);

/**
 * Check that the endpoint is complete after its keys were set: a url is required; listmonk
 * wants only bounces and complaints and forces batch 1.
 * @return BP_OK or BP_ERR_CONFIG with a malloc'ed @p error.
 */
bp_status bp_webhook_endpoint_check(bp_webhook_endpoint *ep, char **error);

/** Release what the endpoint holds; it is zeroed.  NULL allowed. */
void bp_webhook_endpoint_free(bp_webhook_endpoint *ep);

/**
 * Does @p ep want @p e?  Its type and action filters, and for listmonk only what maps onto a
 * listmonk bounce type (see bp_webhook_listmonk_type()).  The recording side asks this before
 * it writes an outbox row.
 */
int bp_webhook_wants(const bp_webhook_endpoint *ep, const bp_event *e);

/**
 * listmonk's bounce type of an event: "complaint" for a complaint that suppresses, "hard" for a
 * bounce that suppresses, "soft" for a bounce or delay counted as soft; NULL for everything
 * else (an ignored event would count towards listmonk's own blocklisting).
 */
const char *bp_webhook_listmonk_type(const bp_event *e);

/**
 * The idempotency key of an event: 32 lower-case hex digits of SHA-256 over the unit's
 * fingerprint, the event's position in its unit, its type and its recipient.  The same event
 * has the same key in every attempt, every deliver process and every store; two events of one
 * message differ.  Computed once when the outbox row is written.
 * @param out at least 33 bytes
 * @return @p out
 */
char *bp_webhook_event_key(const char *fingerprint, unsigned index, const bp_event *e, char out[33]);

/** One event of a request: the event, its idempotency key and when it was recorded. */
typedef struct bp_webhook_item {
    const bp_event *event;
    const char *key;
    long long recorded_at; /**< Unix seconds; 0 = unknown */
} bp_webhook_item;

/**
 * Append the body of one request carrying @p items to @p sb: contract, one item: the event's
 * contract object followed by "event_id" and "recorded_at"; contract, several: a JSON array of
 * such objects; listmonk: {"email","source":"bouncepipe","type","meta":{...},"created_at"} of
 * the single item.  Every string goes through the JSON writer, so any event makes valid JSON.
 * @return BP_OK; BP_ERR_USAGE (no item, or several for listmonk); BP_ERR_NOMEM.
 */
bp_status bp_webhook_body(const bp_webhook_endpoint *ep, const bp_webhook_item *items, size_t n, bp_strbuf *sb);

/**
 * The X-Bouncepipe-Signature value for @p body sent at @p unix_time, keyed with @p secret.
 * @param out receives "t=UNIXTIME,v1=HEX"; at least 100 bytes
 * @return BP_OK, BP_ERR_USAGE (no secret, or @p size too small).
 */
bp_status bp_webhook_sign(const char *secret, long long unix_time, const char *body, size_t body_len, char *out,
                          size_t size);

#endif
