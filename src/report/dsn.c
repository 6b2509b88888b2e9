/*
 * dsn.c - RFC 3464 delivery status notifications and RFC 6533 global ones.
 *
 * bp_dsn_parse(): finds the delivery-status part (message/delivery-status,
 * message/global-delivery-status, or - leniently - a text part of a delivery-status report
 * that holds the fields, or a delivery-status part written inline in a text part whose MIME
 * structure was lost), reads the per-message group and one block per per-recipient group.
 * Fields taken: Reporting-MTA, Arrival-Date, Original-Envelope-Id, X-Postfix-Sender (the
 * envelope sender); Final-Recipient, Original-Recipient, Action, Status, Diagnostic-Code,
 * Remote-MTA, Last-Attempt-Date, X-PowerMTA-BounceCategory (the sending MTA's own verdict).
 * A Status that is missing or malformed is taken from the diagnostic text; a generic X.0.0
 * yields to a specific code in the diagnostic.  A block without Diagnostic-Code takes the
 * comment after its Status code, else the notification text's line about its recipient.
 * Recipient groups written without blank lines between them are split at each
 * Final-Recipient; MTA names keep the host only.  Every accepted deviation from the RFCs
 * is listed in docs/violations.md.  Strings belong to the arena.
 */
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "report_internal.h"

static int is_status_part(const bp_part *p)
{
    return bp_part_is(p, "message", "delivery-status") || bp_part_is(p, "message", "global-delivery-status");
}

/* A text part whose body reads as delivery-status fields (a mislabelled status part). */
static int looks_like_status_fields(const bp_part *p)
{
    if (p->body == NULL || p->is_message)
        return 0;
    if (!(bp_part_is(p, "text", "plain") || bp_part_is(p, "text", "delivery-status") || bp_part_is(p, "message", "*") ||
          bp_part_is(p, "application", "*")))
        return 0;
    const char *b = p->body;
    size_t n = p->body_len < 4096 ? p->body_len : 4096;
    const char *fr = bp_memcasemem(b, n, "Final-Recipient:", 16);
    const char *st = bp_memcasemem(b, n, "Status:", 7);
    if (fr == NULL || st == NULL)
        return 0;
    /* the field must start a line */
    return (fr == b || fr[-1] == '\n') && (st == b || st[-1] == '\n');
}

static const bp_part *find_status_part(const bp_part *root)
{
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p)) {
        if (p->is_message && p != root)
            continue; /* never inside the returned original; its parts are skipped below */
        if (is_status_part(p))
            return p;
    }
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p))
        if (looks_like_status_fields(p) && (p->parent == NULL || !p->parent->is_message || p->parent == root))
            return p;
    return NULL;
}

/*
 * A delivery-status part that MIME does not show as one: the report's own Content-Type
 * header was lost (Sendmail relays that cut headers), or a DSN was forwarded inline as
 * text.  Look in the top-level text parts for a "Content-Type: message/delivery-status"
 * line; the fields run from the blank line after it to the next boundary ("--...") line.
 * @return the part holding them, with @p text / @p len set, or NULL.
 */
static const bp_part *find_embedded_status(const bp_part *root, const char **text, size_t *len, int *global)
{
    static const char marker[] = "content-type: message/";
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p)) {
        if ((p->is_message && p != root) || p->body == NULL || !bp_part_is(p, "text", "plain"))
            continue;
        const char *b = p->body;
        const char *end = b + p->body_len;
        for (const char *at = b; at < end;) {
            const char *m = bp_memcasemem(at, (size_t)(end - at), marker, sizeof(marker) - 1);
            if (m == NULL)
                break;
            at = m + sizeof(marker) - 1;
            if (m != b && m[-1] != '\n')
                continue;
            int is_global = bp_starts_with_ci(at, "global-delivery-status");
            if (!is_global && !bp_starts_with_ci(at, "delivery-status"))
                continue;
            /* the part's header block ends at the first empty line */
            const char *s = at;
            while (s < end) {
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                if (nl == NULL) {
                    s = end;
                    break;
                }
                s = nl + 1;
                if (s < end && (*s == '\n' || (*s == '\r' && s + 1 < end && s[1] == '\n')))
                    break;
            }
            const char *e = s;
            while (e < end) {
                if (e + 2 <= end && e[0] == '-' && e[1] == '-' && (e == b || e[-1] == '\n'))
                    break;
                const char *nl = memchr(e, '\n', (size_t)(end - e));
                e = nl != NULL ? nl + 1 : end;
            }
            if (bp_memcasemem(s, (size_t)(e - s), "Final-Recipient:", 16) == NULL) {
                /* a later marker before e would look at a part of this same region: go on
                 * after it, so that many markers cost one pass, not one pass each */
                if (e > at)
                    at = e;
                continue;
            }
            *text = s;
            *len = (size_t)(e - s);
            *global = is_global;
            return p;
        }
    }
    return NULL;
}

static bp_rcpt_action parse_action(const char *v)
{
    if (v == NULL)
        return BP_ACTION_UNKNOWN;
    while (*v == ' ')
        v++;
    if (bp_starts_with_ci(v, "failed") || bp_starts_with_ci(v, "failure"))
        return BP_ACTION_FAILED;
    if (bp_starts_with_ci(v, "delayed") || bp_starts_with_ci(v, "delay"))
        return BP_ACTION_DELAYED;
    if (bp_starts_with_ci(v, "delivered"))
        return BP_ACTION_DELIVERED;
    if (bp_starts_with_ci(v, "relayed"))
        return BP_ACTION_RELAYED;
    if (bp_starts_with_ci(v, "expanded"))
        return BP_ACTION_EXPANDED;
    return BP_ACTION_UNKNOWN;
}

/* "rfc822; user@x" -> type "rfc822" (lower case) */
static const char *address_type(bp_arena *arena, const char *v)
{
    const char *semi = v != NULL ? strchr(v, ';') : NULL;
    if (semi == NULL)
        return NULL;
    char *t = bp_trim_dup(arena, v, (size_t)(semi - v));
    return t != NULL ? bp_ascii_lower(t) : NULL;
}

/*
 * "dns; gmail-smtp-in.l.google.com. (192.0.2.27, the server for the domain ...)" ->
 * "gmail-smtp-in.l.google.com": the name after the type, without a trailing dot or the
 * comment some MTAs add (docs/violations.md).
 */
static const char *mta_name(bp_arena *arena, const char *v)
{
    if (v == NULL)
        return NULL;
    const char *semi = strchr(v, ';');
    const char *s = semi != NULL ? semi + 1 : v;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strcspn(s, " \t(");
    while (len > 1 && s[len - 1] == '.')
        len--;
    return len > 0 ? bp_arena_strndup(arena, s, len) : NULL;
}

static int is_recipient_group(const bp_field_group *g)
{
    return bp_fields_get(g, "Final-Recipient") != NULL || bp_fields_get(g, "Original-Recipient") != NULL ||
           bp_fields_get(g, "X-Actual-Recipient") != NULL;
}

/*
 * RFC 3464 allows a comment after the status code, and some MTAs put the reason there
 * ("Status: 4.0.0 (cat.example.net: host name lookup failure)").  With no Diagnostic-Code
 * it is the best text the block has; the bare class names are not worth keeping.
 */
static void diagnostic_from_status_comment(const char *status, bp_arena *arena, bp_rcpt_block *b)
{
    static const char *const generic[] = {"permanent failure",
                                          "temporary failure",
                                          "persistent transient failure",
                                          "transient failure",
                                          "success",
                                          "delivered",
                                          NULL};
    const char *open = status != NULL ? strchr(status, '(') : NULL;
    if (open == NULL)
        return;
    const char *close = strrchr(open, ')');
    size_t len = close != NULL ? (size_t)(close - open - 1) : strlen(open + 1);
    char *text = bp_clean_text(arena, open + 1, len, BP_MAX_DIAGNOSTIC_BYTES);
    if (text == NULL)
        return;
    for (int i = 0; generic[i] != NULL; i++)
        if (strcasecmp(text, generic[i]) == 0)
            return;
    b->diagnostic = text;
}

static void read_block(const bp_field_group *g, const bp_part *part, bp_arena *arena, bp_rcpt_block *b)
{
    const char *fr = bp_fields_get(g, "Final-Recipient");
    const char *orr = bp_fields_get(g, "Original-Recipient");
    if (fr == NULL)
        fr = bp_fields_get(g, "X-Actual-Recipient");
    b->final_recipient = bp_address_normalise(arena, fr);
    b->final_recipient_type = address_type(arena, fr);
    b->original_recipient = bp_address_normalise(arena, orr);
    if (b->final_recipient != NULL) {
        b->recipient = b->final_recipient;
        b->recipient_from = BP_FROM_FINAL_RECIPIENT;
        b->field = "Final-Recipient";
    } else if (b->original_recipient != NULL) {
        b->recipient = b->original_recipient;
        b->recipient_from = BP_FROM_ORIGINAL_RECIPIENT;
        b->field = "Original-Recipient";
    }
    b->action = parse_action(bp_fields_get(g, "Action"));
    char status[BP_STATUS_BUF];
    if (bp_status_code_parse(bp_fields_get(g, "Status"), status))
        b->status = bp_arena_strdup(arena, status);
    const char *diag = bp_fields_get(g, "Diagnostic-Code");
    if (diag != NULL) {
        const char *semi = strchr(diag, ';');
        const char *text = diag;
        if (semi != NULL && semi - diag < 24) {
            char *type = bp_trim_dup(arena, diag, (size_t)(semi - diag));
            b->diagnostic_type = type != NULL ? bp_ascii_lower(type) : NULL;
            text = semi + 1;
        }
        bp_block_set_diagnostic(b, arena, text, strlen(text));
        /* Sendmail's "X-Unix; 255" is a program's exit status, not an SMTP reply */
        if (b->diagnostic_type != NULL && strcmp(b->diagnostic_type, "x-unix") == 0 && b->diagnostic != NULL &&
            strspn(b->diagnostic, "0123456789") == strlen(b->diagnostic))
            b->smtp_code = NULL;
    }
    if (b->diagnostic == NULL)
        diagnostic_from_status_comment(bp_fields_get(g, "Status"), arena, b);
    b->remote_mta = mta_name(arena, bp_fields_get(g, "Remote-MTA"));
    /* PowerMTA's own verdict on the failure, a per-recipient extension field */
    const char *pmta = bp_fields_get(g, "X-PowerMTA-BounceCategory");
    if (pmta != NULL) {
        char *cat = bp_clean_text(arena, pmta, strlen(pmta), 40);
        b->mta_category = cat != NULL ? bp_ascii_lower(cat) : NULL;
    }
    b->last_attempt_date = bp_fields_get(g, "Last-Attempt-Date");
    b->part_index = part->index;
    /* a DSN with an action but no status: infer the class */
    if (b->status == NULL) {
        if (b->action == BP_ACTION_DELIVERED || b->action == BP_ACTION_RELAYED || b->action == BP_ACTION_EXPANDED)
            b->status = "2.0.0";
        else if (b->action == BP_ACTION_DELAYED)
            b->status = "4.0.0";
    }
}

/*
 * Some MTAs (AOL's among them) write every per-recipient block of a DSN without the blank
 * line between them, and some run the per-message fields straight into the first block.
 * Split a group wherever a second Final-Recipient begins a new recipient; an
 * Original-Recipient written just before it (the RFC order) goes with it.
 */
static bp_status split_recipient_groups(bp_arena *arena, bp_field_group *groups, size_t n, bp_field_group **out,
                                        size_t *out_n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += groups[i].n > 0 ? groups[i].n : 1;
    bp_field_group *res = bp_arena_alloc(arena, (total + 1) * sizeof(*res));
    if (res == NULL)
        return BP_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const bp_field_group *g = &groups[i];
        size_t start = 0;
        int seen_final = 0;
        for (size_t k = 0; k < g->n; k++) {
            if (strcasecmp(g->fields[k].name, "Final-Recipient") != 0)
                continue;
            if (seen_final) {
                size_t cut = k;
                if (k > start + 1 && strcasecmp(g->fields[k - 1].name, "Original-Recipient") == 0)
                    cut = k - 1;
                res[m].fields = g->fields + start;
                res[m].n = cut - start;
                m++;
                start = cut;
            }
            seen_final = 1;
        }
        res[m].fields = g->fields + start;
        res[m].n = g->n - start;
        m++;
    }
    *out = res;
    *out_n = m;
    return BP_OK;
}

/* The human-readable part of the report: its first text/plain part outside the original. */
static const bp_part *find_notification(const bp_part *root, const bp_part *status_part)
{
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p)) {
        if (p == status_part || p->body == NULL || !bp_part_is(p, "text", "plain"))
            continue;
        int in_original = 0;
        for (const bp_part *a = p; a != NULL && a != root; a = a->parent)
            if (a->is_message)
                in_original = 1;
        if (!in_original)
            return p;
    }
    return NULL;
}

/*
 * A block without Diagnostic-Code (OpenSMTPD, some Sendmail and Exchange versions): take
 * the notification's line about the recipient, with its indented continuation lines, as the
 * diagnostic ("<rcpt>: 421 4.7.0 [TSS04] Messages from ... deferred").  The address and
 * the colon after it are not part of the remote text.  Only the report's own text is read.
 * Each call scans the notification once; @p budget (bytes, shared by all blocks of the
 * message) keeps a report of many recipients and a long text from costing their product.
 */
static void diagnostic_from_notification(const bp_part *note, bp_arena *arena, bp_rcpt_block *b, size_t *budget)
{
    if (note == NULL || b->recipient == NULL)
        return;
    size_t alen = strlen(b->recipient);
    size_t len = note->body_len < BP_MAX_TEXT_BYTES ? note->body_len : BP_MAX_TEXT_BYTES;
    if (len > *budget)
        return;
    *budget -= len;
    const char *body = note->body;
    const char *end = body + len;
    const char *at = NULL;
    /* the first mention that starts its line (after white space, '<' or '"'): a mention
     * inside a sentence or a quoted header ("To: user@...") is not the recipient's entry */
    for (const char *from = body; from < end;) {
        const char *m = bp_memcasemem(from, (size_t)(end - from), b->recipient, alen);
        if (m == NULL)
            break;
        const char *q = m;
        while (q > body && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '<' || q[-1] == '"'))
            q--;
        if (q == body || q[-1] == '\n') {
            at = m;
            break;
        }
        from = m + alen;
    }
    if (at == NULL)
        return;
    const char *s = at + alen;
    while (s < end && (*s == '>' || *s == '"' || *s == ':' || *s == ' ' || *s == '\t'))
        s++;
    /* the rest of the line and the continuation lines indented below it */
    const char *e = memchr(s, '\n', (size_t)(end - s));
    if (e == s || (e != NULL && e == s + 1 && *s == '\r'))
        s = e + 1; /* Sendmail: the reason is on the next, indented line */
    while (e != NULL && e + 1 < end && (e[1] == ' ' || e[1] == '\t')) {
        const char *t = e + 1;
        while (t < end && (*t == ' ' || *t == '\t'))
            t++;
        if (t >= end || *t == '\n' || *t == '\r')
            break; /* an indented blank line ends it */
        e = memchr(t, '\n', (size_t)(end - t));
    }
    if (e == NULL)
        e = end;
    if (s >= e)
        return;
    /* Sendmail's "(reason: 550 5.1.1 ...)" wrapper */
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    if ((size_t)(e - s) > 8 && bp_starts_with_ci(s, "(reason:")) {
        s += 8;
        const char *close = e;
        while (close > s && close[-1] != ')')
            close--;
        if (close > s)
            e = close - 1;
    }
    char *clean = bp_clean_text(arena, s, (size_t)(e - s), BP_MAX_DIAGNOSTIC_BYTES);
    if (clean == NULL || strlen(clean) < 8)
        return; /* a bare address in a list, or an empty reason, says nothing */
    bp_block_set_diagnostic(b, arena, clean, strlen(clean));
}

bp_status bp_dsn_parse(const bp_mime_message *msg, const bp_report_options *opts, bp_arena *arena, bp_report *out)
{
    (void)opts;
    const bp_part *part = find_status_part(msg->root);
    const char *text = part != NULL ? part->body : NULL;
    size_t text_len = part != NULL ? part->body_len : 0;
    int global = part != NULL && bp_part_is(part, "message", "global-delivery-status");
    if (part == NULL && (part = find_embedded_status(msg->root, &text, &text_len, &global)) == NULL)
        return BP_OK;
    if (text == NULL)
        return BP_OK;
    bp_field_group *groups = NULL;
    size_t n = 0, dropped = 0;
    bp_status st = bp_fields_parse(text, text_len, BP_MAX_RECIPIENTS + 1, arena, &groups, &n, &dropped);
    if (st != BP_OK)
        return st;
    if ((st = split_recipient_groups(arena, groups, n, &groups, &n)) != BP_OK)
        return st;
    size_t first_rcpt = 0;
    if (n > 0 && !is_recipient_group(&groups[0]))
        first_rcpt = 1;
    const bp_field_group *per_msg = n > 0 ? &groups[0] : NULL;
    size_t n_rcpt = 0;
    for (size_t i = first_rcpt; i < n; i++)
        if (is_recipient_group(&groups[i]))
            n_rcpt++;
    if (n_rcpt == 0)
        return BP_OK; /* not a usable delivery-status: let the text scanners try */

    out->kind = BP_REPORT_DSN;
    out->family = global ? "global-dsn" : "dsn";
    if (per_msg != NULL) {
        out->reporting_mta = mta_name(arena, bp_fields_get(per_msg, "Reporting-MTA"));
        out->arrival_date = bp_fields_get(per_msg, "Arrival-Date");
        out->envid = bp_fields_get(per_msg, "Original-Envelope-Id");
        /* Postfix names the original's envelope sender: "X-Postfix-Sender: rfc822; x@y" */
        out->envelope_sender = bp_address_normalise(arena, bp_fields_get(per_msg, "X-Postfix-Sender"));
    }
    const bp_part *note = find_notification(msg->root, part);
    size_t note_budget = BP_MAX_TEXT_BYTES; /* at most one full text's worth of scanning */
    for (size_t i = first_rcpt; i < n; i++) {
        if (!is_recipient_group(&groups[i]))
            continue;
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL) {
            if (out->n_blocks < BP_MAX_RECIPIENTS)
                return BP_ERR_NOMEM;
            continue;
        }
        read_block(&groups[i], part, arena, b);
        if (b->diagnostic == NULL)
            diagnostic_from_notification(note, arena, b, &note_budget);
    }
    out->n_blocks_dropped += dropped;
    bp_report_note_original(out, msg->root, arena);
    return BP_OK;
}
