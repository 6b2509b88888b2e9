/*
 * textbounce.c - non-standard bounces recognised from their text.
 *
 * bp_textbounce_parse(): for a message that comes from a mailer daemon or whose Subject says
 * it is a bounce, takes the explanation text (the first text part outside any attached
 * original, cut where the quoted original starts), and makes one block per distinct address
 * it names, with the lines around it as the diagnostic.  Addresses of the report's own
 * From/To and of the original's sender are never taken as failed recipients.
 *
 * This generic scanner is the fallback; family-specific scanners (issue: the long tail)
 * are entries of the same table.
 */
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "report_internal.h"

static const char *const subject_cues[] = {"undeliver",          "delivery status",  "delivery failure",
                                           "returned mail",      "failure notice",   "delivery notification",
                                           "mail delivery",      "non remis",        "unzustellbar",
                                           "nondeliver",         "not delivered",    "could not be delivered",
                                           "mail system error",  "delivery failed",  "rejected",
                                           "returned to sender", "delivery problem", NULL};

/* Where the quoted original begins; the explanation is everything before. */
static const char *const original_markers[] = {"------ This is a copy of the message",
                                               "--- Below this line is a copy of the message",
                                               "----- Original message -----",
                                               "-----Original Message-----",
                                               "------ Original message ------",
                                               "----- Transcript of session follows -----\n\n\n",
                                               "Original message follows",
                                               "Content-Type: message/rfc822",
                                               "--- The header of the original message is following",
                                               "------- Returned Message --------",
                                               "   ----- Unsent message follows -----",
                                               "   ----- Original message follows -----",
                                               NULL};

static int is_bounce_like(const bp_report *r, const bp_part *root)
{
    if (bp_report_from_daemon(root))
        return 1;
    for (int i = 0; r->subject != NULL && subject_cues[i] != NULL; i++)
        if (bp_strcasestr(r->subject, subject_cues[i]) != NULL)
            return 1;
    return 0;
}

static const bp_part *explanation_part(const bp_part *root)
{
    const bp_part *html = NULL;
    for (const bp_part *p = root; p != NULL; p = bp_part_walk_next(root, p)) {
        if (p != root && p->is_message)
            continue;
        const bp_part *anc = p->parent;
        int inside_original = 0;
        for (; anc != NULL && anc != root; anc = anc->parent)
            if (anc->is_message)
                inside_original = 1;
        if (inside_original || p->body == NULL || strcmp(p->type, "text") != 0)
            continue;
        if (strcmp(p->subtype, "plain") == 0)
            return p;
        if (strcmp(p->subtype, "html") == 0 && html == NULL)
            html = p;
    }
    return html;
}

/* Strip HTML tags into an arena copy (entities for < > & and nbsp only). */
static char *strip_html(bp_arena *arena, const char *s, size_t len, size_t *out_len)
{
    char *out = bp_arena_alloc(arena, len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    int in_tag = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_tag) {
            if (c == '>')
                in_tag = 0;
            continue;
        }
        if (c == '<') {
            in_tag = 1;
            if (i + 3 < len && (bp_starts_with_ci(s + i, "<br") || bp_starts_with_ci(s + i, "<p") ||
                                bp_starts_with_ci(s + i, "<div") || bp_starts_with_ci(s + i, "<tr")))
                out[o++] = '\n';
            continue;
        }
        if (c == '&') {
            static const struct {
                const char *ent;
                char ch;
            } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&nbsp;", ' '}, {"&quot;", '"'}};
            int done = 0;
            for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t el = strlen(ents[k].ent);
                if (i + el <= len && bp_starts_with_ci(s + i, ents[k].ent)) {
                    out[o++] = ents[k].ch;
                    i += el - 1;
                    done = 1;
                    break;
                }
            }
            if (done)
                continue;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static size_t explanation_length(const char *text, size_t len)
{
    size_t cut = len;
    for (int i = 0; original_markers[i] != NULL; i++) {
        const char *m = bp_memcasemem(text, cut, original_markers[i], strlen(original_markers[i]));
        if (m != NULL)
            cut = (size_t)(m - text);
    }
    return cut;
}

static int excluded(const char *addr, const char *const *ex, size_t n_ex)
{
    for (size_t i = 0; i < n_ex; i++)
        if (ex[i] != NULL && strcasecmp(addr, ex[i]) == 0)
            return 1;
    return 0;
}

/* The diagnostic for an address at offset [start,end) of text: from its line to the next
 * blank line, at most a few lines. */
static void diagnostic_span(const char *text, size_t len, size_t at, size_t *ds, size_t *de)
{
    size_t s = at;
    while (s > 0 && text[s - 1] != '\n')
        s--;
    size_t e = at;
    int lines = 0;
    while (e < len) {
        if (text[e] == '\n') {
            lines++;
            if (e + 1 >= len || text[e + 1] == '\n' || lines >= 6)
                break;
        }
        e++;
    }
    *ds = s;
    *de = e;
}

bp_status bp_textbounce_parse(const bp_mime_message *msg, bp_arena *arena, bp_report *out)
{
    const bp_part *root = msg->root;
    if (!is_bounce_like(out, root))
        return BP_OK;
    const bp_part *part = explanation_part(root);
    if (part == NULL)
        return BP_OK;
    const char *text = part->body;
    size_t len = part->body_len;
    if (strcmp(part->subtype, "html") == 0) {
        text = strip_html(arena, part->body, part->body_len, &len);
        if (text == NULL)
            return BP_ERR_NOMEM;
    }
    len = explanation_length(text, len);

    bp_report_note_original(out, root, arena);
    const char *ex[4];
    ex[0] = bp_address_normalise(arena, bp_part_header(root, "From"));
    ex[1] = bp_address_normalise(arena, bp_part_header(root, "To"));
    ex[2] = out->original != NULL ? bp_address_normalise(arena, bp_part_header(out->original, "From")) : NULL;
    ex[3] = NULL;

    size_t pos = 0;
    while (pos < len) {
        size_t end = 0;
        char *addr = bp_address_find(arena, text + pos, len - pos, &end);
        if (addr == NULL)
            break;
        size_t at = pos + end;
        pos = at;
        if (excluded(addr, ex, 3))
            continue;
        int dup = 0;
        for (size_t i = 0; i < out->n_blocks; i++)
            if (strcasecmp(out->blocks[i].recipient, addr) == 0)
                dup = 1;
        if (dup)
            continue;
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            break;
        b->recipient = addr;
        b->recipient_from = BP_FROM_BODY;
        b->field = "text";
        b->action = BP_ACTION_FAILED;
        b->part_index = part->index;
        size_t ds, de;
        diagnostic_span(text, len, at, &ds, &de);
        bp_block_set_diagnostic(b, arena, text + ds, de - ds);
    }
    if (out->n_blocks == 0) {
        char status[BP_STATUS_BUF];
        if (!bp_status_code_find(text, len, status))
            return BP_OK;
        bp_rcpt_block *b = bp_report_add_block(out, arena);
        if (b == NULL)
            return BP_ERR_NOMEM;
        b->action = BP_ACTION_FAILED;
        b->part_index = part->index;
        bp_block_set_diagnostic(b, arena, text, len < BP_MAX_DIAGNOSTIC_BYTES ? len : BP_MAX_DIAGNOSTIC_BYTES);
    }
    out->kind = BP_REPORT_TEXT;
    out->family = "text-generic";
    return BP_OK;
}
