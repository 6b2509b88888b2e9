/*
 * esp.c - the event notifications of sending services, as JSON in the text of a message:
 * Amazon SES (SNS notifications, raw or in their SNS envelope, and event publishing),
 * SendGrid's Event Webhook, Mailgun's webhooks, Postmark's bounce, spam-complaint and
 * delivery webhooks, SparkPost's webhook events - each in the shape its documentation gives.
 *
 * bp_esp_parse(): a message whose explanation text (explanation.h) is a JSON object or
 * array (after white space; SNS's "email" protocol adds an unsubscribe footer after it) is
 * read with SQLite's JSON functions - no JSON parsing here.  Each event is recognised by the
 * service's own fields (SES: notificationType or eventType with a mail object; SendGrid:
 * event and email with an sg_ id; Mailgun: event-data, or event and recipient; Postmark:
 * RecordType; SparkPost: msys), and becomes one block per recipient:
 *   - a bounce, delay or delivery: action failed, delayed or delivered; the recipient, the
 *     status, the SMTP reply and the service's diagnostic text;
 *   - a complaint or an unsubscription: the report is a complaint (kind BP_REPORT_FEEDBACK)
 *     with the service's feedback type (an unsubscription is opt-out);
 *   - an auto-reply the service caught (Postmark AutoResponder, SparkPost class 60): an
 *     auto-reply (kind BP_REPORT_AUTOREPLY);
 *   - events about opens, clicks, sends, subscriptions, challenge-response: nothing.
 * The service's own bounce type decides the category when it names one (SES NoEmail is
 * bad-mailbox, Suppressed policy-related, MailboxFull quota-issues; SendGrid's
 * bounce_classification; Mailgun's suppress-* reasons; Postmark's Type; SparkPost's
 * bounce_class): the block's stated_category, with stated_by naming the service and type
 * ("amazonses:Permanent/NoEmail").  A generic type (SES General, Mailgun bounce) leaves the
 * category to the rules over the diagnostic.  A message mixes no complaints with bounces
 * (SES never does, SNS carries one notification per message): the first event's kind
 * (failure, complaint of one feedback type, auto-reply) decides the report's kind, and events
 * of another kind are counted as dropped.
 *
 * Bounds: the JSON text is at most the explanation text (BP_MAX_TEXT_BYTES); at most
 * BP_MAX_RECIPIENTS blocks; SQLite bounds JSON nesting itself.
 * One SQLite in-memory connection per process (one thread), opened at the first JSON text.
 * Ownership: every string put into the report belongs to the arena passed in.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "explanation.h"
#include "report_internal.h"

typedef enum esp_kind { EV_NONE = 0, EV_FAILED, EV_DELAYED, EV_DELIVERED, EV_COMPLAINT, EV_AUTOREPLY } esp_kind;

/* One recipient of one event, as the service reported it; strings in the arena. */
typedef struct esp_event {
    esp_kind kind;
    const char *family;    /* "amazonses", "sendgrid", ... */
    const char *recipient; /* as written; normalised when the block is made */
    const char *status;
    const char *smtp_code;
    const char *diagnostic;
    const char *category;  /* the service's verdict, or NULL */
    const char *stated_by; /* "service:type" */
    const char *feedback_type;
} esp_event;

/* A service's type name and what it means. */
typedef struct esp_type {
    const char *name;
    esp_kind kind;        /* EV_NONE: the kind the event already has */
    const char *category; /* NULL: the rules decide */
    const char *feedback; /* for EV_COMPLAINT */
} esp_type;

static const esp_type *type_find(const esp_type *table, const char *name)
{
    for (size_t i = 0; name != NULL && table[i].name != NULL; i++)
        if (strcasecmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* ---- JSON through SQLite ------------------------------------------------------------- */

static sqlite3 *db;
static sqlite3_stmt *st_get;  /* json_extract and json_type of ?1 at path ?2 */
static sqlite3_stmt *st_each; /* the elements of ?1 at path ?2 */
static int db_broken;

static int json_ready(void)
{
    if (db != NULL)
        return 1;
    if (db_broken)
        return 0;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2), json_type(?1, ?2)", -1, &st_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT value, type FROM json_each(?1, ?2)", -1, &st_each, NULL) != SQLITE_OK) {
        sqlite3_finalize(st_get);
        sqlite3_finalize(st_each);
        sqlite3_close(db);
        db = NULL;
        st_get = st_each = NULL;
        db_broken = 1;
        return 0;
    }
    return 1;
}

/* A JSON text: where it lives and how long it is (not NUL-terminated in general). */
typedef struct jtext {
    const char *s;
    size_t len;
} jtext;

/* The value at @p path of @p doc as text (a string's contents, a number's digits, an object's
 * or array's JSON), its JSON type in @p type (static "object", "text", ...); NULL when absent
 * or null. */
static const char *jget(bp_arena *arena, jtext doc, const char *path, const char **type)
{
    const char *out = NULL;
    if (type != NULL)
        *type = NULL;
    if (doc.s == NULL || doc.len > (size_t)BP_MAX_TEXT_BYTES)
        return NULL;
    sqlite3_bind_text(st_get, 1, doc.s, (int)doc.len, SQLITE_STATIC);
    sqlite3_bind_text(st_get, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(st_get) == SQLITE_ROW && sqlite3_column_type(st_get, 0) != SQLITE_NULL) {
        const unsigned char *v = sqlite3_column_text(st_get, 0);
        const unsigned char *t = sqlite3_column_text(st_get, 1);
        if (v != NULL)
            out = bp_arena_strndup(arena, (const char *)v, (size_t)sqlite3_column_bytes(st_get, 0));
        if (type != NULL && t != NULL) {
            static const char *const names[] = {"object", "array", "text", "integer", "real", "true", "false"};
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp((const char *)t, names[i]) == 0)
                    *type = names[i];
        }
    }
    sqlite3_reset(st_get);
    sqlite3_clear_bindings(st_get);
    return out;
}

static jtext jsub(bp_arena *arena, jtext doc, const char *path)
{
    const char *type = NULL;
    const char *v = jget(arena, doc, path, &type);
    jtext t = {NULL, 0};
    if (v != NULL && type != NULL && (strcmp(type, "object") == 0 || strcmp(type, "array") == 0)) {
        t.s = v;
        t.len = strlen(v);
    }
    return t;
}

/* The elements of the array at @p path (or the value itself when it is not an array), as JSON
 * texts (strings as their contents) in an arena array; at most @p max. */
static size_t jeach(bp_arena *arena, jtext doc, const char *path, size_t max, const char ***out)
{
    *out = NULL;
    if (doc.s == NULL || doc.len > (size_t)BP_MAX_TEXT_BYTES || max == 0)
        return 0;
    size_t n = 0, cap = 0;
    const char **list = NULL;
    sqlite3_bind_text(st_each, 1, doc.s, (int)doc.len, SQLITE_STATIC);
    sqlite3_bind_text(st_each, 2, path, -1, SQLITE_STATIC);
    while (n < max && sqlite3_step(st_each) == SQLITE_ROW) {
        if (sqlite3_column_type(st_each, 0) == SQLITE_NULL)
            continue;
        const char **grown = bp_arena_grow(arena, list, n, &cap, sizeof(*grown), 8);
        if (grown == NULL)
            break;
        list = grown;
        const char *v = bp_arena_strndup(arena, (const char *)sqlite3_column_text(st_each, 0),
                                         (size_t)sqlite3_column_bytes(st_each, 0));
        if (v == NULL)
            break;
        list[n++] = v;
    }
    sqlite3_reset(st_each);
    sqlite3_clear_bindings(st_each);
    *out = list;
    return n;
}

static jtext jt(const char *s)
{
    jtext t = {s, s != NULL ? strlen(s) : 0};
    return t;
}

/* ---- the services ---------------------------------------------------------------------- */

/* The events found so far, grown in the arena. */
typedef struct esp_list {
    bp_arena *arena;
    esp_event *ev;
    size_t n, cap;
    int nomem;
} esp_list;

static esp_event *add_event(esp_list *l, esp_kind kind, const char *family)
{
    if (l->n >= BP_MAX_RECIPIENTS)
        return NULL;
    esp_event *e = bp_arena_push(l->arena, &l->ev, &l->n, &l->cap, sizeof(*e), 4);
    if (e == NULL) {
        l->nomem = 1;
        return NULL;
    }
    e->kind = kind;
    e->family = family;
    return e;
}

/* The service's own verdict on @p e: @p category, stated by "family:type" or, with a
 * @p subtype, "family:type/subtype". */
static void state_category(bp_arena *arena, esp_event *e, const char *category, const char *type, const char *subtype)
{
    e->category = category;
    if (subtype != NULL)
        e->stated_by = bp_arena_printf(arena, "%s:%s/%s", e->family, type != NULL ? type : "", subtype);
    else
        e->stated_by = bp_arena_printf(arena, "%s:%s", e->family, type != NULL ? type : "");
}

/* Amazon SES: bounceType/bounceSubType (notification contents, "Bounce object"). */
static const esp_type ses_bounce_subtypes[] = {
    {"NoEmail", EV_NONE, "bad-mailbox", NULL},
    {"Suppressed", EV_NONE, "policy-related", NULL},
    {"OnAccountSuppressionList", EV_NONE, "policy-related", NULL},
    {"MailboxFull", EV_NONE, "quota-issues", NULL},
    {"MessageTooLarge", EV_NONE, "content-related", NULL},
    {"ContentRejected", EV_NONE, "content-related", NULL},
    {"AttachmentRejected", EV_NONE, "content-related", NULL},
    {NULL, EV_NONE, NULL, NULL},
};

/* Amazon SES event publishing: deliveryDelay.delayType. */
static const esp_type ses_delay_types[] = {
    {"MailboxFull", EV_NONE, "quota-issues", NULL},
    {"SpamDetected", EV_NONE, "spam-related", NULL},
    {"IPFailure", EV_NONE, "policy-related", NULL},
    {"TransientCommunicationFailure", EV_NONE, "bad-connection", NULL},
    {NULL, EV_NONE, NULL, NULL},
};

/* One SES event per recipient object of the array at @p path (bounced or delayed
 * recipients: emailAddress, status, diagnosticCode), with the category of @p t when the
 * service named a type (stated as "amazonses:STATED/SUBTYPE", or "amazonses:TYPE"). */
static void ses_recipients(esp_list *l, jtext ev, const char *path, esp_kind kind, const esp_type *t,
                           const char *stated_type)
{
    bp_arena *a = l->arena;
    const char **rc = NULL;
    size_t n = jeach(a, ev, path, BP_MAX_RECIPIENTS, &rc);
    for (size_t i = 0; i < n; i++) {
        esp_event *e = add_event(l, kind, "amazonses");
        if (e == NULL)
            return;
        e->recipient = jget(a, jt(rc[i]), "$.emailAddress", NULL);
        e->status = jget(a, jt(rc[i]), "$.status", NULL);
        e->diagnostic = jget(a, jt(rc[i]), "$.diagnosticCode", NULL);
        if (t != NULL)
            state_category(a, e, t->category, stated_type != NULL ? stated_type : t->name,
                           stated_type != NULL ? t->name : NULL);
    }
}

static void ses_event(esp_list *l, jtext ev, const char *type)
{
    bp_arena *a = l->arena;
    const char **rc = NULL;
    size_t n = 0;
    if (strcasecmp(type, "Bounce") == 0) {
        const char *bst = jget(a, ev, "$.bounce.bounceSubType", NULL);
        ses_recipients(l, ev, "$.bounce.bouncedRecipients", EV_FAILED, type_find(ses_bounce_subtypes, bst), NULL);
    } else if (strcasecmp(type, "DeliveryDelay") == 0) {
        const char *dt = jget(a, ev, "$.deliveryDelay.delayType", NULL);
        ses_recipients(l, ev, "$.deliveryDelay.delayedRecipients", EV_DELAYED, type_find(ses_delay_types, dt),
                       "DeliveryDelay");
    } else if (strcasecmp(type, "Complaint") == 0) {
        const char *ft = jget(a, ev, "$.complaint.complaintFeedbackType", NULL);
        n = jeach(a, ev, "$.complaint.complainedRecipients", BP_MAX_RECIPIENTS, &rc);
        for (size_t i = 0; i < n; i++) {
            esp_event *e = add_event(l, EV_COMPLAINT, "amazonses");
            if (e == NULL)
                return;
            e->recipient = jget(a, jt(rc[i]), "$.emailAddress", NULL);
            e->feedback_type = ft;
        }
    } else if (strcasecmp(type, "Delivery") == 0) {
        const char *resp = jget(a, ev, "$.delivery.smtpResponse", NULL);
        n = jeach(a, ev, "$.delivery.recipients", BP_MAX_RECIPIENTS, &rc);
        for (size_t i = 0; i < n; i++) {
            esp_event *e = add_event(l, EV_DELIVERED, "amazonses");
            if (e == NULL)
                return;
            e->recipient = rc[i];
            e->diagnostic = resp;
        }
    }
}

/* SendGrid's Event Webhook: "event" and, for bounces, "type" (bounce or blocked) and
 * "bounce_classification"; dropped messages name why in "reason". */
static const esp_type sendgrid_classes[] = {
    {"Invalid Address", EV_NONE, "bad-mailbox", NULL},
    {"Mailbox Unavailable", EV_NONE, "inactive-mailbox", NULL},
    {"Reputation", EV_NONE, "spam-related", NULL},
    {"Content", EV_NONE, "content-related", NULL},
    {"Frequency or Volume", EV_NONE, "policy-related", NULL},
    {NULL, EV_NONE, NULL, NULL},
};

static const esp_type sendgrid_events[] = {
    {"bounce", EV_FAILED, NULL, NULL},
    {"dropped", EV_FAILED, "policy-related", NULL}, /* not sent: the address is on a list */
    {"deferred", EV_DELAYED, NULL, NULL},
    {"delivered", EV_DELIVERED, NULL, NULL},
    {"spamreport", EV_COMPLAINT, NULL, "abuse"},
    {"unsubscribe", EV_COMPLAINT, NULL, "opt-out"},
    {"group_unsubscribe", EV_COMPLAINT, NULL, "opt-out"},
    {NULL, EV_NONE, NULL, NULL},
};

static void sendgrid_event(esp_list *l, jtext ev, const char *name)
{
    bp_arena *a = l->arena;
    const esp_type *t = type_find(sendgrid_events, name);
    if (t == NULL)
        return;
    esp_event *e = add_event(l, t->kind, "sendgrid");
    if (e == NULL)
        return;
    e->recipient = jget(a, ev, "$.email", NULL);
    e->status = jget(a, ev, "$.status", NULL);
    e->feedback_type = t->feedback;
    const char *reason = jget(a, ev, "$.reason", NULL);
    e->diagnostic = reason != NULL ? reason : jget(a, ev, "$.response", NULL);
    if (t->category != NULL) { /* dropped: SendGrid's own suppression, whatever the reason */
        state_category(a, e, t->category, t->name, NULL);
        return;
    }
    const char *cls = jget(a, ev, "$.bounce_classification", NULL);
    const esp_type *c = type_find(sendgrid_classes, cls);
    if (c != NULL)
        state_category(a, e, c->category, t->name, c->name);
}

/* Mailgun's webhooks: event-data.event, severity and reason. */
static const esp_type mailgun_reasons[] = {
    {"suppress-bounce", EV_NONE, "policy-related", NULL},
    {"suppress-unsubscribe", EV_NONE, "policy-related", NULL},
    {"suppress-complaint", EV_NONE, "policy-related", NULL},
    {"espblock", EV_NONE, "policy-related", NULL},
    {"old", EV_NONE, "message-expired", NULL},
    {NULL, EV_NONE, NULL, NULL},
};

static const esp_type mailgun_events[] = {
    {"failed", EV_FAILED, NULL, NULL},
    {"bounced", EV_FAILED, NULL, NULL},
    {"dropped", EV_FAILED, NULL, NULL},
    {"delivered", EV_DELIVERED, NULL, NULL},
    {"complained", EV_COMPLAINT, NULL, "abuse"},
    {"unsubscribed", EV_COMPLAINT, NULL, "opt-out"},
    {NULL, EV_NONE, NULL, NULL},
};

static void mailgun_event(esp_list *l, jtext ev, const char *name)
{
    bp_arena *a = l->arena;
    const esp_type *t = type_find(mailgun_events, name);
    if (t == NULL)
        return;
    const char *severity = jget(a, ev, "$.severity", NULL);
    esp_kind kind = t->kind;
    if (kind == EV_FAILED && severity != NULL && strcasecmp(severity, "temporary") == 0)
        kind = EV_DELAYED;
    esp_event *e = add_event(l, kind, "mailgun");
    if (e == NULL)
        return;
    e->recipient = jget(a, ev, "$.recipient", NULL);
    e->feedback_type = t->feedback;
    e->smtp_code = jget(a, ev, "$.\"delivery-status\".code", NULL);
    e->status = jget(a, ev, "$.\"delivery-status\".\"enhanced-code\"", NULL);
    const char *msg = jget(a, ev, "$.\"delivery-status\".message", NULL);
    const char *desc = jget(a, ev, "$.\"delivery-status\".description", NULL);
    e->diagnostic = msg != NULL && *msg != '\0' ? msg : desc;
    if (e->diagnostic == NULL) /* the legacy form's fields */
        e->diagnostic = jget(a, ev, "$.error", NULL);
    const char *reason = jget(a, ev, "$.reason", NULL);
    const esp_type *r = type_find(mailgun_reasons, reason);
    if (r != NULL && kind == EV_FAILED)
        state_category(a, e, r->category, t->name, r->name);
}

/* Postmark: RecordType and, for bounces, Type (the bounce types of its API). */
static const esp_type postmark_types[] = {
    {"HardBounce", EV_FAILED, "bad-mailbox", NULL},
    {"BadEmailAddress", EV_FAILED, "bad-mailbox", NULL},
    {"SoftBounce", EV_FAILED, NULL, NULL},
    {"Transient", EV_DELAYED, NULL, NULL},
    {"DnsError", EV_FAILED, "routing-errors", NULL},
    {"SpamNotification", EV_FAILED, "spam-related", NULL},
    {"VirusNotification", EV_FAILED, "virus-related", NULL},
    {"Blocked", EV_FAILED, "policy-related", NULL},
    {"ManuallyDeactivated", EV_FAILED, "policy-related", NULL},
    {"DMARCPolicy", EV_FAILED, "policy-related", NULL},
    {"Unsubscribe", EV_COMPLAINT, NULL, "opt-out"},
    {"SpamComplaint", EV_COMPLAINT, NULL, "abuse"},
    {"Unknown", EV_FAILED, NULL, NULL},
    {"AutoResponder", EV_AUTOREPLY, NULL, NULL},
    {NULL, EV_NONE, NULL, NULL},
};

static void postmark_event(esp_list *l, jtext ev, const char *record)
{
    bp_arena *a = l->arena;
    esp_event *e = NULL;
    if (strcasecmp(record, "Delivery") == 0) {
        if ((e = add_event(l, EV_DELIVERED, "postmark")) == NULL)
            return;
        e->recipient = jget(a, ev, "$.Recipient", NULL);
        e->diagnostic = jget(a, ev, "$.Details", NULL);
        return;
    }
    if (strcasecmp(record, "Bounce") != 0 && strcasecmp(record, "SpamComplaint") != 0)
        return;
    const char *type = jget(a, ev, "$.Type", NULL);
    const esp_type *t = type_find(postmark_types, type != NULL ? type : record);
    if (t == NULL) /* auto-responders, challenges, subscriptions: not failures */
        return;
    if ((e = add_event(l, t->kind, "postmark")) == NULL)
        return;
    e->recipient = jget(a, ev, "$.Email", NULL);
    e->feedback_type = t->feedback;
    const char *details = jget(a, ev, "$.Details", NULL);
    e->diagnostic = details != NULL && *details != '\0' ? details : jget(a, ev, "$.Description", NULL);
    if (t->category != NULL)
        state_category(a, e, t->category, t->name, NULL);
}

/* SparkPost: msys.<class>_event.type and bounce_class (its bounce classification codes). */
static const esp_type sparkpost_classes[] = {
    {"10", EV_NONE, "bad-mailbox", NULL},
    {"21", EV_NONE, "routing-errors", NULL},
    {"22", EV_NONE, "quota-issues", NULL},
    {"23", EV_NONE, "content-related", NULL},
    {"24", EV_NONE, "no-answer-from-host", NULL},
    {"25", EV_NONE, "policy-related", NULL},
    {"26", EV_NONE, "policy-related", NULL},
    {"50", EV_NONE, "policy-related", NULL},
    {"51", EV_NONE, "spam-related", NULL},
    {"52", EV_NONE, "spam-related", NULL},
    {"53", EV_NONE, "content-related", NULL},
    {"54", EV_NONE, "relaying-issues", NULL},
    {NULL, EV_NONE, NULL, NULL},
};

/* Classes that are no failure of the recipient's: subscriptions, challenge-response (an
 * auto-reply, class 60, is one). */
static const char *const sparkpost_not_failures[] = {"80", "90", "100", NULL};

static const esp_type sparkpost_events[] = {
    {"bounce", EV_FAILED, NULL, NULL},
    {"out_of_band", EV_FAILED, NULL, NULL},
    {"policy_rejection", EV_FAILED, NULL, NULL},
    {"delay", EV_DELAYED, NULL, NULL},
    {"delivery", EV_DELIVERED, NULL, NULL},
    {"spam_complaint", EV_COMPLAINT, NULL, "abuse"},
    {"list_unsubscribe", EV_COMPLAINT, NULL, "opt-out"},
    {"link_unsubscribe", EV_COMPLAINT, NULL, "opt-out"},
    {NULL, EV_NONE, NULL, NULL},
};

static void sparkpost_event(esp_list *l, jtext ev)
{
    bp_arena *a = l->arena;
    const char **inner = NULL;
    if (jeach(a, ev, "$", 1, &inner) != 1) /* msys holds one object: message_event, ... */
        return;
    jtext in = jt(inner[0]);
    const char *type = jget(a, in, "$.type", NULL);
    const esp_type *t = type_find(sparkpost_events, type);
    if (t == NULL)
        return;
    const char *cls = jget(a, in, "$.bounce_class", NULL);
    for (size_t i = 0; cls != NULL && sparkpost_not_failures[i] != NULL; i++)
        if (strcmp(cls, sparkpost_not_failures[i]) == 0)
            return;
    esp_event *e = add_event(l, cls != NULL && strcmp(cls, "60") == 0 ? EV_AUTOREPLY : t->kind, "sparkpost");
    if (e == NULL)
        return;
    e->recipient = jget(a, in, "$.rcpt_to", NULL);
    if (e->recipient == NULL)
        e->recipient = jget(a, in, "$.raw_rcpt_to", NULL);
    e->smtp_code = jget(a, in, "$.error_code", NULL);
    e->diagnostic = jget(a, in, "$.raw_reason", NULL);
    if (e->diagnostic == NULL)
        e->diagnostic = jget(a, in, "$.reason", NULL);
    e->feedback_type = t->feedback;
    if (t->kind == EV_COMPLAINT) {
        const char *fb = jget(a, in, "$.fbtype", NULL);
        if (fb != NULL)
            e->feedback_type = fb;
    }
    const esp_type *c = type_find(sparkpost_classes, cls);
    if (c != NULL && e->kind == EV_FAILED)
        state_category(a, e, c->category, t->name, c->name);
}

/* One event object of any service. */
static void read_event(esp_list *l, jtext ev)
{
    bp_arena *a = l->arena;
    const char *type = NULL;
    const char *v = NULL;
    jtext sub = jsub(a, ev, "$.msys");
    if (sub.s != NULL) {
        sparkpost_event(l, sub);
        return;
    }
    sub = jsub(a, ev, "$.\"event-data\"");
    if (sub.s != NULL && (v = jget(a, sub, "$.event", NULL)) != NULL) {
        mailgun_event(l, sub, v);
        return;
    }
    if ((v = jget(a, ev, "$.RecordType", &type)) != NULL) {
        postmark_event(l, ev, v);
        return;
    }
    if (jsub(a, ev, "$.mail").s != NULL &&
        ((v = jget(a, ev, "$.notificationType", NULL)) != NULL || (v = jget(a, ev, "$.eventType", NULL)) != NULL)) {
        ses_event(l, ev, v);
        return;
    }
    if ((v = jget(a, ev, "$.event", NULL)) != NULL && jget(a, ev, "$.email", NULL) != NULL &&
        (jget(a, ev, "$.sg_event_id", NULL) != NULL || jget(a, ev, "$.sg_message_id", NULL) != NULL ||
         jget(a, ev, "$.\"smtp-id\"", NULL) != NULL)) {
        sendgrid_event(l, ev, v);
        return;
    }
    if (v != NULL && jget(a, ev, "$.recipient", NULL) != NULL) /* Mailgun's legacy form */
        mailgun_event(l, ev, v);
}

/* The JSON document in @p text: from its first non-blank byte ({ or [) to the last closing
 * bracket that makes it valid JSON. */
static jtext find_document_as_is(bp_arena *arena, const char *text, size_t len)
{
    jtext none = {NULL, 0};
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i >= len || (text[i] != '{' && text[i] != '['))
        return none;
    char close = text[i] == '{' ? '}' : ']';
    /* SNS's "email" protocol puts a footer after the JSON: try the last two closing
     * brackets, which covers it, and nothing more (a bounded cost) */
    size_t end = len;
    for (int tries = 0; tries < 2; tries++) {
        while (end > i && text[end - 1] != close)
            end--;
        if (end <= i)
            return none;
        jtext doc = {text + i, end - i};
        const char *type = NULL;
        if (jget(arena, doc, "$", &type) != NULL && type != NULL)
            return doc;
        end--;
    }
    return none;
}

/* The same, also when a mail system wrapped its long lines, putting line ends inside JSON
 * strings (docs/violations.md): line ends are not JSON's to need, so they are dropped. */
static jtext find_document(bp_arena *arena, const char *text, size_t len)
{
    jtext doc = find_document_as_is(arena, text, len);
    if (doc.s != NULL || memchr(text, '\n', len) == NULL)
        return doc;
    char *joined = bp_arena_alloc(arena, len + 1);
    if (joined == NULL)
        return doc;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] != '\n' && text[i] != '\r')
            joined[n++] = text[i];
    joined[n] = '\0';
    return find_document_as_is(arena, joined, n);
}

static bp_rcpt_action action_of(esp_kind k)
{
    switch (k) {
    case EV_DELAYED: return BP_ACTION_DELAYED;
    case EV_DELIVERED: return BP_ACTION_DELIVERED;
    case EV_AUTOREPLY: return BP_ACTION_UNKNOWN;
    case EV_FAILED:
    case EV_COMPLAINT:
    case EV_NONE: break;
    }
    return BP_ACTION_FAILED;
}

static const char *feedback_type(const char *v)
{
    static const char *const known[] = {"abuse",    "fraud",        "virus",   "other",
                                        "not-spam", "auth-failure", "opt-out", NULL};
    for (size_t i = 0; v != NULL && known[i] != NULL; i++)
        if (strcasecmp(v, known[i]) == 0)
            return known[i];
    return v != NULL && strcasecmp(v, "not_spam") == 0 ? "not-spam" : v == NULL ? "abuse" : "other";
}

bp_status bp_esp_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    (void)opts;
    const bp_part *part = bp_explanation_part(msg->root);
    if (part == NULL || part->body == NULL || !bp_part_is(part, "text", "plain"))
        return BP_OK;
    /* cheap refusal first: the text must open with a JSON object or array */
    size_t k = strspn(part->body, " \t\r\n");
    if (part->body[k] != '{' && part->body[k] != '[')
        return BP_OK;
    if (!json_ready())
        return BP_OK;
    size_t len = 0;
    const char *text = bp_explanation_text(arena, part, &len);
    if (text == NULL)
        return BP_ERR_NOMEM;
    jtext doc = find_document(arena, text, len);
    if (doc.s == NULL)
        return BP_OK;
    /* SNS's "email-json" envelope: the notification is the string in Message */
    const char *type = NULL;
    const char *sns = jget(arena, doc, "$.Type", NULL);
    const char *inner = sns != NULL && strcmp(sns, "Notification") == 0 ? jget(arena, doc, "$.Message", &type) : NULL;
    if (inner != NULL && type != NULL && strcmp(type, "text") == 0) {
        jtext in = find_document(arena, inner, strlen(inner));
        if (in.s != NULL)
            doc = in;
    }

    esp_list l = {arena, NULL, 0, 0, 0};
    const char *top = NULL;
    (void)jget(arena, doc, "$", &top);
    if (top != NULL && strcmp(top, "array") == 0) {
        const char **items = NULL;
        size_t n = jeach(arena, doc, "$", BP_MAX_RECIPIENTS, &items);
        for (size_t i = 0; i < n && !l.nomem && l.n < BP_MAX_RECIPIENTS; i++)
            read_event(&l, jt(items[i]));
    } else {
        read_event(&l, doc);
    }
    if (l.nomem)
        return BP_ERR_NOMEM;
    if (l.n == 0)
        return BP_OK;

    esp_kind first = l.ev[0].kind;
    int complaint = first == EV_COMPLAINT;
    out->kind = complaint ? BP_REPORT_FEEDBACK : first == EV_AUTOREPLY ? BP_REPORT_AUTOREPLY : BP_REPORT_TEXT;
    out->family = l.ev[0].family;
    if (complaint)
        out->feedback_type = feedback_type(l.ev[0].feedback_type);
    for (size_t i = 0; i < l.n; i++) {
        const esp_event *e = &l.ev[i];
        int same = complaint
                       ? e->kind == EV_COMPLAINT && strcmp(feedback_type(e->feedback_type), out->feedback_type) == 0
                   : first == EV_AUTOREPLY ? e->kind == EV_AUTOREPLY
                                           : e->kind != EV_COMPLAINT && e->kind != EV_AUTOREPLY;
        if (!same) { /* one kind per report: see the contract above */
            out->n_blocks_dropped++;
            continue;
        }
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            break;
        b->recipient = bp_address_normalise(arena, e->recipient);
        b->recipient_from = b->recipient != NULL ? BP_FROM_BODY : BP_FROM_NONE;
        b->field = e->family;
        b->part_index = part->index;
        b->action = action_of(e->kind);
        char st[BP_STATUS_BUF];
        if (e->status != NULL && bp_status_code_parse(e->status, st))
            b->status = bp_arena_strdup(arena, st);
        if (e->smtp_code != NULL && strlen(e->smtp_code) == 3 && e->smtp_code[0] >= '2' && e->smtp_code[0] <= '5')
            b->smtp_code = e->smtp_code;
        if (e->diagnostic != NULL)
            bp_block_set_diagnostic(b, arena, e->diagnostic, strlen(e->diagnostic));
        b->stated_category = e->category;
        b->stated_by = e->stated_by;
    }
    return BP_OK;
}
