/*
 * explanation.c - the text a non-standard bounce explains itself in (explanation.h).
 *
 * bp_explanation_part(): the first text/plain part outside any attached original, else the
 * first text/html.  bp_explanation_text(): its body in UTF-8 - text with no or a wrong
 * charset label guessed (ISO-2022-JP by its escapes, else for bytes that are not UTF-8
 * Shift_JIS or EUC-JP by their lead bytes, else Windows-1252) and converted by the MIME
 * adapter - with HTML tags, <style>, <script> and <head> removed.  bp_explanation_length():
 * where the quoted original starts (the first of the markers below), found in a copy of the
 * text folded to lower case (bp_explanation_fold()) by glibc's memmem, which is linear in
 * the worst case: a case-blind scan compares at every candidate, and a text of a megabyte
 * of newlines or dashes is all candidates for the markers that start with one.
 *
 * bp_explanation_quoted_line(): whether a line of the text is quoted from the original (a
 * header line of it or its continuation, a "> " quote): an address there is nobody's verdict.
 *
 * bp_explanation_read(): all of that once per message, kept in the bp_report that the
 * auto-reply parser, the text-bounce scanner and reading.c are each handed in turn.
 *
 * Ownership: texts that had to be converted or stripped are arena copies; otherwise the
 * part's own body is returned.
 */
#include "explanation.h"

#include <string.h>
#include <strings.h>

#include "bouncepipe/text.h"

/* Where the quoted original begins; the explanation is everything before.  A line of the
 * original's own headers at the start of a line ("\nreceived: ") only appears once the
 * original is being quoted.  In lower case: they are looked for in the folded text. */
static const char *const original_markers[] = {"------ this is a copy of the message",
                                               "------ this is a copy of your message",
                                               "--- below this line is a copy of the message",
                                               "--- enclosed are the original headers",
                                               "----- original message -----",
                                               "-----original message-----",
                                               "--- original message ---",
                                               "------ original message ------",
                                               "----- transcript of session follows -----\n\n\n",
                                               "original message follows",
                                               "original mail as follows",
                                               "content-type: message/rfc822",
                                               "--- the header of the original message is following",
                                               "------- returned message --------",
                                               "-------original message",
                                               "   ----- unsent message follows -----",
                                               "   ----- original message follows -----",
                                               "\nmessage headers follow",
                                               "\noriginal message headers:",
                                               "\nreceived: from ",
                                               "\nreceived: by ",
                                               "\nreceived:from ",
                                               "included is a copy of the message header",
                                               "below is a copy of the original message",
                                               "the attachment contains the original mail headers",
                                               "\nreturn-path: <",
                                               "\ndkim-signature: ",
                                               "\narc-seal: ",
                                               "\nx-received: ",
                                               "\nx-google-smtp-source: ",
                                               NULL};

const bp_part *bp_explanation_part(const bp_part *root)
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

/* Strip HTML tags into an arena copy (entities for < > & " and nbsp only); the contents of
 * <style>, <script> and <head> go too. */
static char *strip_html(bp_arena *arena, const char *s, size_t len, size_t *out_len)
{
    char *out = bp_arena_alloc(arena, len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    int in_tag = 0;
    int unclosed[3] = {0, 0, 0}; /* once a closing tag was not found, it never will be */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_tag) {
            if (c == '>')
                in_tag = 0;
            continue;
        }
        if (c == '<') {
            static const char *const skipped[] = {"<style", "</style>", "<script", "</script>", "<head", "</head>"};
            int skip = 0;
            for (size_t k = 0; k < sizeof(skipped) / sizeof(skipped[0]); k += 2)
                if (!unclosed[k / 2] && bp_starts_with_ci(s + i, skipped[k])) {
                    const char *close = bp_memcasemem(s + i, len - i, skipped[k + 1], strlen(skipped[k + 1]));
                    unclosed[k / 2] = close == NULL;
                    if (close != NULL) {
                        i = (size_t)(close - s) + strlen(skipped[k + 1]) - 1;
                        skip = 1;
                    }
                    break;
                }
            if (skip)
                continue;
            in_tag = 1;
            if (i + 3 < len && (bp_starts_with_ci(s + i, "<br") || bp_starts_with_ci(s + i, "<p") ||
                                bp_starts_with_ci(s + i, "<div") || bp_starts_with_ci(s + i, "<tr") ||
                                bp_starts_with_ci(s + i, "</p") || bp_starts_with_ci(s + i, "<li")))
                out[o++] = '\n';
            continue;
        }
        if (c == '&') {
            static const struct {
                const char *ent;
                char ch;
            } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&nbsp;", ' '}, {"&quot;", '"'}, {"&#64;", '@'}};
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

/* Guess the charset of text the MIME structure did not label (or labelled wrongly):
 * ISO-2022-JP by its escapes, else for bytes that are not UTF-8 Shift_JIS or EUC-JP by
 * their lead bytes, else Windows-1252 (a superset of ISO-8859-1 for printable text). */
static const char *guess_charset(const char *s, size_t len)
{
    /* the escapes have no case: one memchr-driven scan for ESC, not a case-blind search */
    for (const char *e = memchr(s, 0x1b, len); e != NULL && (size_t)(e - s) + 2 < len;
         e = memchr(e + 1, 0x1b, len - (size_t)(e - s) - 1))
        if (e[1] == '$' && (e[2] == 'B' || e[2] == '@'))
            return "ISO-2022-JP";
    if (bp_utf8_valid(s, len))
        return NULL;
    size_t sjis_lead = 0, euc_pair = 0, high = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            continue;
        high++;
        if ((c >= 0x81 && c <= 0x9f) || (c >= 0xe0 && c <= 0xef))
            sjis_lead += c <= 0x9f ? 2 : 0;
        if (c >= 0xa1 && c <= 0xfe && i + 1 < len && (unsigned char)s[i + 1] >= 0xa1 &&
            (unsigned char)s[i + 1] <= 0xfe) {
            euc_pair++;
            i++;
        }
    }
    if (sjis_lead > 0)
        return "Shift_JIS";
    if (euc_pair * 2 >= high && euc_pair > 0)
        return "EUC-JP";
    return "windows-1252";
}

const char *bp_explanation_text(bp_arena *arena, const bp_part *part, size_t *len)
{
    const char *text = part->body;
    *len = part->body_len;
    const char *cs = guess_charset(text, *len);
    if (cs != NULL) {
        char *conv = bp_mime_to_utf8(arena, cs, text, *len);
        if (conv != NULL) {
            text = conv;
            *len = strlen(conv);
        }
    }
    if (strcmp(part->subtype, "html") == 0)
        text = strip_html(arena, text, *len, len);
    return text;
}

bp_status bp_explanation_read(bp_report *r, bp_arena *arena, const bp_part *part)
{
    if (r->explanation != NULL && r->explanation_part == part->index)
        return BP_OK;
    size_t len = 0;
    const char *text = bp_explanation_text(arena, part, &len);
    const char *folded = text != NULL ? bp_explanation_fold(arena, text, len) : NULL;
    bp_byte_pairs *pairs = folded != NULL ? bp_arena_alloc(arena, sizeof(*pairs)) : NULL;
    if (pairs == NULL)
        return BP_ERR_NOMEM;
    bp_byte_pairs_note(pairs, folded, len);
    r->explanation = text;
    r->explanation_folded = folded;
    r->explanation_pairs = pairs;
    r->explanation_len = bp_explanation_length(pairs, folded, len);
    r->explanation_full_len = len;
    r->explanation_part = part->index;
    return BP_OK;
}

char *bp_explanation_fold(bp_arena *arena, const char *text, size_t len)
{
    char *folded = bp_arena_alloc(arena, len + 1);
    if (folded == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        folded[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    folded[len] = '\0';
    return folded;
}

const char *bp_explanation_find(const bp_byte_pairs *pairs, const char *folded, size_t len, const char *needle)
{
    return bp_byte_pairs_memmem(pairs, folded, len, needle, strlen(needle));
}

size_t bp_explanation_length(const bp_byte_pairs *pairs, const char *folded, size_t len)
{
    size_t cut = len;
    for (int i = 0; original_markers[i] != NULL; i++) {
        const char *marker = original_markers[i];
        /* a marker that must start a line also counts at the very start of the text */
        size_t head = strlen(marker) - 1;
        if (marker[0] == '\n' && head <= len && memcmp(folded, marker + 1, head) == 0)
            return 0;
        const char *m = bp_explanation_find(pairs, folded, cut, marker);
        if (m != NULL)
            cut = (size_t)(m - folded);
    }
    return cut;
}

/* Header names whose lines, in an explanation, are quotes of the original message. */
static const char *const quoted_header_names[] = {"from",
                                                  "to",
                                                  "cc",
                                                  "bcc",
                                                  "reply-to",
                                                  "sender",
                                                  "return-path",
                                                  "message-id",
                                                  "in-reply-to",
                                                  "references",
                                                  "delivered-to",
                                                  "x-original-to",
                                                  "received",
                                                  "date",
                                                  "subject",
                                                  "envelope-to",
                                                  "errors-to",
                                                  "resent-from",
                                                  "resent-to",
                                                  "list-id",
                                                  "list-post",
                                                  "list-unsubscribe",
                                                  "authentication-results",
                                                  "dkim-signature",
                                                  "arc-authentication-results",
                                                  "received-spf",
                                                  "x-received",
                                                  "x-sender",
                                                  "x-envelope-from",
                                                  "mail from",
                                                  NULL};

/* How many lines up a continuation is followed to its header: a quoted header's continuation
 * lines rarely exceed a Received: field's few lines, and a hostile text of thousands of
 * indented lines costs no more than this per line asked about. */
static const int quote_continuation_lines = 8;

size_t bp_explanation_line_start(const char *text, size_t at)
{
    while (at > 0 && text[at - 1] != '\n')
        at--;
    return at;
}

int bp_explanation_line_blank(const char *text, size_t len, size_t ls)
{
    for (size_t i = ls; i < len && text[i] != '\n'; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
            return 0;
    return 1;
}

/* Non-zero when the line at @p ls is "Name: value" for a header of the original. */
static int quoted_header_line(const char *text, size_t len, size_t ls)
{
    size_t i = ls;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '>'))
        i++;
    size_t ns = i;
    while (i < len && text[i] != ':' && text[i] != '\n' && i - ns < 40)
        i++;
    if (i >= len || text[i] != ':')
        return 0;
    for (int k = 0; quoted_header_names[k] != NULL; k++) {
        size_t n = strlen(quoted_header_names[k]);
        if (n == i - ns && strncasecmp(text + ns, quoted_header_names[k], n) == 0)
            return 1;
    }
    return 0;
}

int bp_explanation_quoted_line(const char *text, size_t len, size_t ls)
{
    if (quoted_header_line(text, len, ls))
        return 1;
    /* "> text" and ">> text" quote a message; ">>> RCPT TO:<...>" is an SMTP transcript */
    if (text[ls] == '>' && (ls + 1 >= len || text[ls + 1] != '>' || ls + 2 >= len || text[ls + 2] != '>'))
        return 1;
    size_t l = ls;
    for (int n = 0; n < quote_continuation_lines && l > 0 && (text[l] == ' ' || text[l] == '\t') &&
                    !bp_explanation_line_blank(text, len, l);
         n++) {
        l = bp_explanation_line_start(text, l - 1);
        if (text[l] != ' ' && text[l] != '\t')
            return quoted_header_line(text, len, l);
    }
    return 0;
}
