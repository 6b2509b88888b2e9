/*
 * complaint.c - the one complaint model (complaint.h): feedback types, redacted recipients,
 * the order in which a complaint's recipient is looked for, and its job id.  The mail path
 * (src/report/arf.c, jmrp.c) and the accounting path (src/classify/acct_events.c) hand their
 * fields to these functions and take what they say; neither decides on its own.
 *
 * bp_feedback_type_normalise(): a report's Feedback-Type (or PowerMTA's feedbackType) to a
 * contract name.
 * bp_complaint_redacted(): the placeholders receivers put where the complainer was.
 * bp_complaint_rcpt_field(), bp_complaint_from_original(), bp_complaint_verp(): the three
 * steps of the recipient, each filling a bp_complaint_pick when it finds someone.
 * bp_complaint_job(): the original's X-Job header.
 *
 * Ownership: addresses and the job id are arena copies; names are static.
 */
#include "bouncepipe/complaint.h"

#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

const char *bp_feedback_type_normalise(const char *text)
{
    static const struct {
        const char *name, *type;
    } names[] = {
        {"abuse", "abuse"},       {"fraud", "fraud"},         {"virus", "virus"},
        {"other", "other"},       {"not-spam", "not-spam"},   {"auth-failure", "auth-failure"},
        {"dkim", "auth-failure"}, {"spf", "auth-failure"},    {"opt-out", "opt-out"},
        {"optout", "opt-out"},    {"unsubscribe", "opt-out"},
    };
    if (text == NULL)
        return "other";
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strcspn(text, " \t;\r\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(text, names[i].name, len) == 0)
            return names[i].type;
    return "other";
}

int bp_complaint_redacted(const char *addr)
{
    if (addr == NULL)
        return 0;
    const char *at = strrchr(addr, '@');
    size_t llen = at != NULL ? (size_t)(at - addr) : strlen(addr);
    if (llen == 0)
        return 1;
    if (llen == 8 && strncasecmp(addr, "redacted", 8) == 0)
        return 1;
    for (size_t i = 0; i < llen; i++)
        if (addr[i] != 'x' && addr[i] != 'X' && addr[i] != '*')
            return 0;
    return 1;
}

/* Fill @p pick with @p addr when it is a valid address (bp_address_check(): a record's or a
 * report's bytes are hostile); else the caller goes on to the next source. */
static int take(bp_complaint_pick *pick, const char *addr, const char *from, const char *field)
{
    if (bp_address_check(addr) != NULL)
        return 0;
    pick->recipient = addr;
    pick->from = from;
    pick->field = field;
    return 1;
}

/* The address in @p value, or NULL when there is none or it is redacted (noted in @p pick). */
static char *usable(bp_arena *arena, const char *value, bp_complaint_pick *pick)
{
    char *addr = bp_address_normalise(arena, value);
    if (addr != NULL && bp_complaint_redacted(addr)) {
        pick->redacted = 1;
        return NULL;
    }
    return addr;
}

int bp_complaint_rcpt_field(bp_arena *arena, const char *value, const char *from, const char *field,
                            const bp_verp_options *verp, bp_complaint_pick *pick)
{
    char *addr = usable(arena, value, pick);
    if (addr == NULL)
        return 0;
    /* one of our own bounce addresses (a report sent to the VERP address): not a person */
    if (bp_verp_explicit(verp)) {
        char *decoded = bp_verp_decode(arena, addr, verp);
        if (decoded != NULL)
            return bp_complaint_redacted(decoded) ? (pick->redacted = 1, 0) : take(pick, decoded, "verp", field);
    }
    return take(pick, addr, from, field);
}

int bp_complaint_from_original(bp_complaint_header_fn header, const void *ctx, const char *const *rcpt_headers,
                               bp_arena *arena, bp_complaint_pick *pick)
{
    if (header == NULL)
        return 0;
    char *addr = usable(arena, header(ctx, "X-HmXmrOriginalRecipient"), pick);
    if (addr != NULL)
        return take(pick, addr, "x-hmxmroriginalrecipient", "X-HmXmrOriginalRecipient");
    for (size_t i = 0; rcpt_headers != NULL && rcpt_headers[i] != NULL; i++) {
        addr = usable(arena, header(ctx, rcpt_headers[i]), pick);
        if (addr != NULL)
            return take(pick, addr, "header", rcpt_headers[i]);
    }
    const char *to = header(ctx, "To");
    if (to != NULL && strchr(to, ',') == NULL) {
        addr = usable(arena, to, pick);
        if (addr != NULL)
            return take(pick, addr, "header", "To");
    }
    return 0;
}

int bp_complaint_verp(bp_arena *arena, const char *value, const char *field, const bp_verp_options *verp,
                      bp_complaint_pick *pick)
{
    char *addr = value != NULL ? bp_verp_decode(arena, value, verp) : NULL;
    if (addr == NULL)
        return 0;
    if (bp_complaint_redacted(addr)) {
        pick->redacted = 1;
        return 0;
    }
    return take(pick, addr, "verp", field);
}

const char *bp_complaint_job(bp_complaint_header_fn header, const void *ctx, bp_arena *arena)
{
    const char *v = header != NULL ? header(ctx, BP_COMPLAINT_JOB_HEADER) : NULL;
    if (v == NULL)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v != '\0' ? bp_clean_text(arena, v, strlen(v), BP_MAX_STORED_TOKEN_BYTES) : NULL;
}
