/*
 * original.c - what the family parsers share about a report's origins: finding the original
 * message a report carries (message/rfc822 or message/global, or only its headers as
 * text/rfc822-headers or RFC 6533 message/global-headers), the one recipient it was
 * addressed to, and whether the report comes from a mailer daemon.
 */
#include <string.h>

#include "bouncepipe/address.h"
#include "bouncepipe/text.h"
#include "report_internal.h"

const bp_part *bp_report_find_original(const bp_part *root, bp_arena *arena)
{
    for (const bp_part *p = root->child != NULL ? root->child : NULL; p != NULL; p = bp_part_walk_next(root, p)) {
        if (p->is_message && p != root)
            return p;
        /* "text/rfc822-header" (singular) is a typo seen in opt-out reports */
        if (bp_part_is(p, "text", "rfc822-headers") || bp_part_is(p, "message", "rfc822-headers") ||
            bp_part_is(p, "text", "rfc822-header") || bp_part_is(p, "message", "global-headers")) {
            if (p->body == NULL)
                continue;
            bp_field_group *groups = NULL;
            size_t n = 0;
            if (bp_fields_parse(p->body, p->body_len, 1, arena, &groups, &n, NULL) != BP_OK || n == 0)
                continue;
            bp_part *synthetic = bp_arena_alloc(arena, sizeof(*synthetic));
            bp_header *hs = bp_arena_alloc(arena, sizeof(*hs) * (groups[0].n ? groups[0].n : 1));
            if (synthetic == NULL || hs == NULL)
                return NULL;
            *synthetic = *p;
            for (size_t i = 0; i < groups[0].n; i++) {
                hs[i].name = groups[0].fields[i].name;
                hs[i].value = groups[0].fields[i].value;
            }
            synthetic->headers = hs;
            synthetic->n_headers = groups[0].n;
            synthetic->child = NULL;
            synthetic->is_message = 1;
            return synthetic;
        }
    }
    return NULL;
}

void bp_report_note_original(bp_report *out, const bp_part *root, bp_arena *arena)
{
    const bp_part *orig = bp_report_find_original(root, arena);
    if (orig == NULL)
        return;
    out->original = orig;
    out->original_message_id = bp_part_header(orig, "Message-ID");
    out->original_to = bp_part_header(orig, "To");
}

int bp_report_from_daemon(const bp_part *root)
{
    static const char *const daemons[] = {"mailer-daemon", "postmaster",         "mail delivery",
                                          "mailerdaemon",  "mail-daemon",        "maildaemon",
                                          "mmdf",          "mail administrator", NULL};
    const char *from = bp_part_header(root, "From");
    const char *rp = bp_part_header(root, "Return-Path");
    for (int i = 0; daemons[i] != NULL; i++)
        if ((from != NULL && bp_strcasestr(from, daemons[i]) != NULL))
            return 1;
    return rp != NULL && (strcmp(rp, "<>") == 0 || bp_strcasestr(rp, "mailer-daemon") != NULL);
}

const char *bp_report_original_recipient(const bp_part *orig, bp_arena *arena)
{
    const char *to = orig != NULL ? bp_part_header(orig, "To") : NULL;
    const char *cc = orig != NULL ? bp_part_header(orig, "Cc") : NULL;
    if (to == NULL || (cc != NULL && bp_address_find(arena, cc, strlen(cc), NULL) != NULL))
        return NULL; /* copies went to others too: which one failed is not known */
    size_t len = strlen(to), end = 0;
    char *first = bp_address_find(arena, to, len, &end);
    if (first == NULL || bp_address_find(arena, to + end, len - end, NULL) != NULL)
        return NULL; /* none, or more than one: the original names no single recipient */
    return first;
}
