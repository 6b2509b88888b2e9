/*
 * reading.c - what a report says around its codes.
 *
 * bp_report_read() (report.h), once the family parser made the blocks, for every failure and
 * delay block:
 *   - the innermost remote reply when the diagnostic wraps one (bp_reply_inner()), with its
 *     own status and code; a Sendmail X.4.7 ("could not be delivered for 5 days") whose text
 *     carries the remote's own status;
 *   - the report's passages about the recipient: every mention of the address in the report's
 *     own text (the notification of a DSN, the explanation of a text bounce, up to the quoted
 *     original) - its line and paragraph, cut where another recipient's entry starts - and
 *     the recipient's reply in a transcript;
 *   - the SMTP stage: the first that the diagnostic, the recipient's transcript reply or the
 *     passages state (bp_stage_find(), bp_transcript_find());
 *   - the parties: the envelope sender (X-Postfix-Sender read by dsn.c, Exim's "A message
 *     sent by <x>", the original's Return-Path) and the sending host (a transcript's EHLO,
 *     else the Reporting-MTA), and whether the reply names one of them instead of the
 *     recipient;
 *   - a local delivery program's failure (Diagnostic-Code type x-unix, procmail, maildrop,
 *     "Command died with status", a pipe).
 * The classify layer decides what these mean (classify.h); nothing here is a verdict.
 *
 * bp_stage_find(), bp_transcript_find(), bp_reply_inner() (reading.h) read the MTAs' own
 * templates, cited beside each table.  Every scan is linear in its text, and the passages of
 * all the blocks of one message share one budget of BP_MAX_TEXT_BYTES scanned bytes (a report
 * of a thousand recipients on a long text costs one long text, not a thousand).
 *
 * Ownership: every string put into the report belongs to the arena.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/address.h"
#include "bouncepipe/alloc.h"
#include "bouncepipe/effort.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/smtpcode.h"
#include "bouncepipe/text.h"
#include "explanation.h"
#include "reading.h"
#include "report_internal.h"

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Non-zero when @p s holds a word (a letter or a non-ASCII byte), not only codes. */
static int has_words(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_alpha(s[i]) || (unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* ---- the SMTP stage ----------------------------------------------------------------- */

/* Words that name the stage by themselves (lower case). */
static const struct {
    const char *words;
    bp_smtp_command command;
} stage_phrases[] = {
    /* qmail-remote.c: "HOST does not like recipient.", "Connected to HOST but sender was
     * rejected.", "HOST failed on DATA command.", "HOST failed after I sent the message.",
     * "Connected to HOST but greeting failed.", "Connected to HOST but my name was rejected." */
    {"does not like recipient", BP_SMTP_RCPT},
    {"but sender was rejected", BP_SMTP_MAIL},
    {"failed on data command", BP_SMTP_DATA},
    {"failed after i sent the message", BP_SMTP_DATA},
    {"but greeting failed", BP_SMTP_CONNECT},
    {"but my name was rejected", BP_SMTP_EHLO},
    /* Postfix smtp_proto.c: "host HOST refused to talk to me: REPLY" (greeting, HELO);
     * smtp_stream_except(): "lost connection with HOST while receiving the initial server
     * greeting" / "while performing the EHLO handshake" */
    {"refused to talk to me", BP_SMTP_CONNECT},
    {"while receiving the initial server greeting", BP_SMTP_CONNECT},
    {"while performing the initial protocol handshake", BP_SMTP_EHLO},
    {"while performing the ehlo handshake", BP_SMTP_EHLO},
    {"while performing the helo handshake", BP_SMTP_EHLO},
    /* Yahoo's relay marks the command its reply answered: "... User Unknown [RCPT_TO]" */
    {"[rcpt_to]", BP_SMTP_RCPT},
    {"[mail_from]", BP_SMTP_MAIL},
};

/* Words after which the report names the command (lower case). */
static const char *const stage_leads[] = {
    "in reply to ",                         /* Postfix smtp(8): "(in reply to RCPT TO command)" */
    "error from remote mail server after ", /* Exim transports/smtp.c: "SMTP error from remote mail
                                               server after RCPT TO:<x>:", "after pipelined DATA:",
                                               "after end of data:", "after initial connection:" */
    "error from remote mailer after ",      /* the same in older Exim */
    "error from remote server after ",      /* GMX: "SMTP error from remote server after RCPT command:" */
    "error from remote server for ",        /* 1&1: "SMTP error from remote server for RCPT TO command",
                                               "for TEXT command" (the message text) */
    "lmtp error after ",                    /* Exim's LMTP transport */
    "did not like our ",                    /* DragonFly dma: "HOST [IP] did not like our RCPT TO:" */
    "error following ",                     /* "rejected recipient <x> (Error following RCPT command)" */
    "while sending ",                       /* Postfix smtp_proto.c xfer_states: "lost connection with
                                               HOST while sending RCPT TO", "... end of data" */
    "smtp:",                                /* "SMTP:RCPT host 192.0.2.8: 553 ..." */
};

/* The command named at the start of @p s (lower or upper case). */
static bp_smtp_command command_named(const char *s, size_t n)
{
    static const char *const fillers[] = {"pipelined ", "the ", "final ", NULL};
    static const struct {
        const char *word;
        bp_smtp_command command;
    } words[] = {
        {"rcpt", BP_SMTP_RCPT},
        {"mail", BP_SMTP_MAIL},
        {"end of data", BP_SMTP_DATA},
        {"data", BP_SMTP_DATA},
        {"bdat", BP_SMTP_DATA},
        {"text command", BP_SMTP_DATA},
        {"message body", BP_SMTP_DATA},
        {"initial connection", BP_SMTP_CONNECT},
        {"initial greeting", BP_SMTP_CONNECT},
        {"connect", BP_SMTP_CONNECT},
        {"ehlo", BP_SMTP_EHLO},
        {"helo", BP_SMTP_EHLO},
        {"lhlo", BP_SMTP_EHLO},
        {"starttls", BP_SMTP_EHLO},
        {"auth", BP_SMTP_EHLO},
    };
    for (int again = 1; again;) {
        again = 0;
        for (int k = 0; fillers[k] != NULL; k++) {
            size_t fl = strlen(fillers[k]);
            if (n > fl && strncasecmp(s, fillers[k], fl) == 0) {
                s += fl;
                n -= fl;
                again = 1;
            }
        }
    }
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        size_t wl = strlen(words[k].word);
        if (n >= wl && strncasecmp(s, words[k].word, wl) == 0 && (n == wl || !is_alpha(s[wl])))
            return words[k].command;
    }
    return BP_SMTP_NONE;
}

bp_smtp_command bp_stage_find(const char *text, size_t len, size_t *at, size_t *end)
{
    /* one lower-case copy, then memmem (vectorised in libc) per phrase: a case-blind search
     * per phrase cost five times as much over every block's diagnostic and passages.  The
     * copy's byte pairs rule out most phrases without a search: on these short texts memmem's
     * set-up of each phrase cost more than the scan, and four texts in five name no stage */
    char buf[1024];
    bp_byte_pairs pairs;
    char *low = buf;
    if (len >= sizeof(buf) && (low = bp_malloc(len + 1)) == NULL) {
        bp_effort_out_of_memory(); /* no answer, not "no stage": the message fails */
        return BP_SMTP_NONE;
    }
    for (size_t i = 0; i < len; i++)
        low[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + 32) : text[i];
    low[len] = '\0';
    bp_byte_pairs_note(&pairs, low, len);
    bp_smtp_command best = BP_SMTP_NONE;
    size_t best_at = len, best_end = len;
    for (size_t k = 0; k < sizeof(stage_phrases) / sizeof(stage_phrases[0]); k++) {
        size_t wl = strlen(stage_phrases[k].words);
        const char *m = bp_byte_pairs_memmem(&pairs, low, best_at, stage_phrases[k].words, wl);
        if (m != NULL) {
            best = stage_phrases[k].command;
            best_at = (size_t)(m - low);
            best_end = best_at + wl;
        }
    }
    for (size_t k = 0; k < sizeof(stage_leads) / sizeof(stage_leads[0]); k++) {
        size_t ll = strlen(stage_leads[k]);
        if (!bp_byte_pairs_may_hold(&pairs, stage_leads[k], ll))
            continue;
        for (size_t from = 0; from < best_at;) {
            const char *m = memmem(low + from, best_at - from, stage_leads[k], ll);
            if (m == NULL)
                break;
            size_t after = (size_t)(m - low) + ll;
            bp_smtp_command c = command_named(low + after, len - after);
            if (c != BP_SMTP_NONE) {
                best = c;
                best_at = (size_t)(m - low);
                size_t e = after;
                while (e < len && e < after + 24 && low[e] != ':' && low[e] != ')' && low[e] != ',' && low[e] != '<')
                    e++;
                best_end = e;
                break;
            }
            from = after;
        }
    }
    if (low != buf)
        free(low);
    if (best != BP_SMTP_NONE && at != NULL) {
        *at = best_at;
        *end = best_end;
    }
    return best;
}

/* ---- transcripts ---------------------------------------------------------------------- */

#define MAX_PENDING 32 /* commands sent and not yet answered (pipelining); older ones are dropped */

/* The command of a ">>> " line (its text after the marker). */
static bp_smtp_command transcript_command(const char *s, size_t n)
{
    if (n >= 1 && s[0] == '.' && (n == 1 || is_space(s[1])))
        return BP_SMTP_DATA; /* the end of the data */
    return command_named(s, n);
}

/* Whether the host of "... while talking to HOST:" (the line @p line) is the recipient's:
 * 2 when it is @p host (the block's Remote-MTA), 1 when it lies in the recipient's domain
 * @p domain (mx.example.org for x@example.org), else 0. */
static int session_host_is(const char *line, size_t n, const char *host, const char *domain)
{
    const char *m = bp_memcasemem(line, n, "while talking to ", 17);
    if (m == NULL)
        return 0;
    const char *h = m + 17;
    size_t hl = 0;
    while (h + hl < line + n && !is_space(h[hl]) && h[hl] != ':')
        hl++;
    while (hl > 0 && h[hl - 1] == '.')
        hl--;
    if (host != NULL && hl == strlen(host) && strncasecmp(h, host, hl) == 0)
        return 2;
    size_t dl = domain != NULL ? strlen(domain) : 0;
    if (dl > 0 && hl >= dl && strncasecmp(h + hl - dl, domain, dl) == 0 && (hl == dl || h[hl - dl - 1] == '.'))
        return 1;
    return 0;
}

typedef struct session_pick {
    int have;
    bp_transcript_reply reply;
} session_pick;

int bp_transcript_find(const char *text, size_t len, const char *rcpt, const char *host, bp_transcript_reply *out,
                       int *n_sessions)
{
    struct {
        bp_smtp_command command;
        int names;
    } pending[MAX_PENDING];
    size_t head = 0, n_pending = 0;
    size_t rlen = rcpt != NULL ? strlen(rcpt) : 0;
    const char *domain = rcpt != NULL ? strrchr(rcpt, '@') : NULL;
    domain = domain != NULL ? domain + 1 : NULL;
    int lines = 0, sessions = 0, commands_in_session = 0;
    int session_named = 0, session_host = 0;
    session_pick own = {0}, last = {0}, named = {0}, hosted = {0}, in_domain = {0}, only = {0};
    size_t group_start = 0;
    int group_open = 0;
    for (size_t pos = 0;;) {
        const char *nl = pos < len ? memchr(text + pos, '\n', len - pos) : NULL;
        size_t ls = pos, le = nl != NULL ? (size_t)(nl - text) : len;
        pos = le + 1;
        size_t t = ls;
        while (t < le && (text[t] == ' ' || text[t] == '\t'))
            t++;
        int new_session = ls < len && bp_memcasemem(text + t, le - t, "while talking to ", 17) != NULL;
        if (new_session || ls >= len) {
            /* the session before ends here (or the text does): keep what concerns the recipient */
            if (last.have && session_named && !named.have)
                named = last;
            if (last.have && session_host == 2 && !hosted.have)
                hosted = last;
            if (last.have && session_host == 1 && !in_domain.have)
                in_domain = last;
            if (last.have && sessions <= 1)
                only = last;
            if (ls >= len)
                break;
        }
        if (new_session) {
            sessions++;
            n_pending = head = 0;
            commands_in_session = 0;
            session_named = 0;
            session_host = session_host_is(text + t, le - t, host, domain);
            last.have = 0;
            group_open = 0;
            continue;
        }
        if (le - t >= 4 && text[t] == '>' && text[t + 1] == '>' && text[t + 2] == '>' && text[t + 3] == ' ') {
            lines++;
            const char *c = text + t + 4;
            size_t cn = le - t - 4;
            bp_smtp_command cmd = transcript_command(c, cn);
            int names = rlen > 0 && bp_memcasemem(c, cn, rcpt, rlen) != NULL;
            session_named |= names;
            commands_in_session++;
            if (n_pending == MAX_PENDING) { /* too many unanswered: the oldest is forgotten */
                head = (head + 1) % MAX_PENDING;
                n_pending--;
            }
            size_t slot = (head + n_pending) % MAX_PENDING;
            pending[slot].command = cmd;
            pending[slot].names = names;
            n_pending++;
            group_open = 0;
            continue;
        }
        if (le - t >= 7 && text[t] == '<' && text[t + 1] == '<' && text[t + 2] == '<' && text[t + 3] == ' ' &&
            text[t + 4] >= '2' && text[t + 4] <= '5' && is_digit(text[t + 5]) && is_digit(text[t + 6])) {
            lines++;
            if (!group_open) {
                group_open = 1;
                group_start = t;
            }
            if (le - t > 7 && text[t + 7] == '-')
                continue; /* a multi-line reply goes on */
            group_open = 0;
            bp_transcript_reply r = {group_start, le, BP_SMTP_NONE, 0};
            if (n_pending > 0) {
                r.command = pending[head].command;
                r.own = pending[head].names && pending[head].command == BP_SMTP_RCPT;
                head = (head + 1) % MAX_PENDING;
                n_pending--;
            } else if (commands_in_session == 0) {
                r.command = BP_SMTP_CONNECT; /* nothing was sent yet: the greeting */
            }
            if (text[t + 4] != '4' && text[t + 4] != '5')
                continue;
            if (r.own) {
                own.have = 1;
                own.reply = r;
            } else if (r.command != BP_SMTP_RCPT) {
                /* a failure at MAIL, DATA or the greeting concerns every recipient of the session */
                last.have = 1;
                last.reply = r;
            }
            continue;
        }
        group_open = 0;
    }
    if (n_sessions != NULL)
        *n_sessions = sessions;
    if (lines == 0)
        return 0;
    const session_pick *pick = own.have                     ? &own
                               : named.have                 ? &named
                               : hosted.have                ? &hosted
                               : in_domain.have             ? &in_domain
                               : only.have && sessions <= 1 ? &only
                                                            : NULL;
    if (pick == NULL)
        return 0;
    *out = pick->reply;
    return 1;
}

/* ---- wrappers ------------------------------------------------------------------------- */

/* Non-zero when @p s starts with an SMTP reply code ("550 ", "550-") or an enhanced status. */
static int starts_reply(const char *s, size_t n)
{
    if (n >= 4 && s[0] >= '2' && s[0] <= '5' && is_digit(s[1]) && is_digit(s[2]) && (s[3] == ' ' || s[3] == '-'))
        return 1;
    char status[BP_STATUS_BUF];
    return n >= 5 && s[0] >= '2' && s[0] <= '5' && s[1] == '.' && bp_status_code_parse(s, status);
}

int bp_reply_inner(const char *text, size_t len, size_t *s, size_t *e, char code[4])
{
    code[0] = '\0';
    /* Sendmail: "(reason: 550 5.1.1 <x>... User unknown)" */
    const char *m = bp_memcasemem(text, len, "(reason:", 8);
    if (m != NULL) {
        size_t a = (size_t)(m - text) + 8, b = len;
        while (b > a && text[b - 1] != ')')
            b--;
        if (b > a)
            b--;
        else
            b = len;
        if (has_words(text + a, b - a)) {
            *s = a;
            *e = b;
            return 1;
        }
    }
    /* qmail-send.c: the last error, then "I'm not going to try again; this message has been
     * in the queue too long." */
    static const char trailer[] = "not going to try again; this message has been in the queue too long";
    m = bp_memcasemem(text, len, trailer, sizeof(trailer) - 1);
    if (m != NULL) {
        size_t b = (size_t)(m - text);
        if (b >= 4 && strncasecmp(text + b - 4, "i'm ", 4) == 0)
            b -= 4;
        if (has_words(text, b)) {
            *s = 0;
            *e = b;
            return 1;
        }
    }
    /* Zoho: "Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <x>... User Unknown" */
    m = bp_memcasemem(text, len, "error_code :", 12);
    if (m != NULL) {
        size_t a = (size_t)(m - text) + 12;
        const char *second = bp_memcasemem(text + a, len - a, "error_code :", 12);
        if (second != NULL) {
            if (len - a >= 3 && text[a] >= '2' && text[a] <= '5' && is_digit(text[a + 1]) && is_digit(text[a + 2])) {
                memcpy(code, text + a, 3);
                code[3] = '\0';
            }
            size_t b = (size_t)(second - text) + 12;
            if (has_words(text + b, len - b)) {
                *s = b;
                *e = len;
                return 1;
            }
            code[0] = '\0';
        }
    }
    /* A reply quoted inside a summary: "550-'...'" (Amazon SES), "returned '550 5.1.1 ...'"
     * (Exchange), "responded as follows: [550 5.1.1 ...]" */
    for (size_t i = 0; i + 1 < len; i++) {
        char open = text[i];
        if (open != '\'' && open != '"' && open != '[')
            continue;
        int prefixed = i >= 4 && text[i - 4] >= '2' && text[i - 4] <= '5' && is_digit(text[i - 3]) &&
                       is_digit(text[i - 2]) && (text[i - 1] == '-' || text[i - 1] == ' ') &&
                       (i == 4 || !is_digit(text[i - 5]));
        if (!prefixed && !starts_reply(text + i + 1, len - i - 1))
            continue;
        char close = open == '[' ? ']' : open;
        size_t b = len;
        while (b > i + 1 && text[b - 1] != close)
            b--;
        b = b > i + 1 ? b - 1 : len;
        if (!has_words(text + i + 1, b - i - 1))
            continue;
        if (prefixed) {
            memcpy(code, text + i - 4, 3);
            code[3] = '\0';
        }
        *s = i + 1;
        *e = b;
        return 1;
    }
    return 0;
}

/* ---- the parties ---------------------------------------------------------------------- */

static int host_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}

/* Non-zero when @p name occurs in @p text as a whole name: not inside a longer host name,
 * word or address ("example.com" in "mx.example.com", "example.community" or "x@example.com"
 * is not it). */
static int names_token(const char *text, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t from = 0; n > 0 && from < len;) {
        const char *m = bp_memcasemem(text + from, len - from, name, n);
        if (m == NULL)
            return 0;
        size_t a = (size_t)(m - text), b = a + n;
        int before_ok = a == 0 || !(host_char(text[a - 1]) || text[a - 1] == '.' || text[a - 1] == '@');
        int after_ok = b >= len || !(host_char(text[b]) || (text[b] == '.' && b + 1 < len && host_char(text[b + 1])));
        if (before_ok && after_ok)
            return 1;
        from = a + 1;
    }
    return 0;
}

/* Non-zero when @p addr occurs in @p text other than as the echo of a command
 * ("MAIL FROM:<addr>", "envelope-from <addr>"): the reply itself names it. */
static int names_address(const char *text, size_t len, const char *addr)
{
    size_t n = strlen(addr);
    for (size_t from = 0; n > 0 && from < len;) {
        const char *m = bp_memcasemem(text + from, len - from, addr, n);
        if (m == NULL)
            return 0;
        size_t a = (size_t)(m - text);
        size_t w = a > 16 ? a - 16 : 0;
        if (bp_memcasemem(text + w, a - w, "from:", 5) == NULL && bp_memcasemem(text + w, a - w, "from <", 6) == NULL)
            return 1;
        from = a + n;
    }
    return 0;
}

/* Non-zero when @p text names a mailbox other than @p sender: an address the reply is about
 * (the recipient, an alias it was expanded to, a forwarding target). */
static int names_other_address(bp_arena *arena, const char *text, size_t len, const char *sender)
{
    for (size_t pos = 0, n = 0; pos < len && n < 8; n++) {
        size_t end = 0;
        const char *a = bp_address_find(arena, text + pos, len - pos, &end);
        if (a == NULL)
            return 0;
        if (sender == NULL || strcasecmp(a, sender) != 0)
            return 1;
        pos += end;
    }
    return 0;
}

/* Whom @p text (a reply) names, when it names neither the recipient nor any other mailbox. */
static bp_party party_of(bp_arena *arena, const char *text, const bp_rcpt_block *b, const char *sender,
                         const char *host, const char **named)
{
    *named = NULL;
    const char *rcpt = b->recipient;
    if (text == NULL || rcpt == NULL)
        return BP_PARTY_RECIPIENT;
    size_t len = strlen(text);
    const char *rdomain = strrchr(rcpt, '@');
    rdomain = rdomain != NULL ? rdomain + 1 : NULL;
    if (names_other_address(arena, text, len, sender))
        return BP_PARTY_RECIPIENT;
    if (sender != NULL && strcasecmp(sender, rcpt) != 0 &&
        (b->original_recipient == NULL || strcasecmp(sender, b->original_recipient) != 0)) {
        if (names_address(text, len, sender)) {
            *named = sender;
            return BP_PARTY_SENDER;
        }
        const char *sdomain = strrchr(sender, '@');
        sdomain = sdomain != NULL ? sdomain + 1 : NULL;
        if (sdomain != NULL && (rdomain == NULL || strcasecmp(sdomain, rdomain) != 0) &&
            names_token(text, len, sdomain) && (rdomain == NULL || !names_token(text, len, rdomain))) {
            *named = sdomain;
            return BP_PARTY_SENDER;
        }
    }
    if (host != NULL && strchr(host, '.') != NULL && (rdomain == NULL || strcasecmp(host, rdomain) != 0) &&
        names_token(text, len, host) && (rdomain == NULL || !names_token(text, len, rdomain))) {
        *named = host;
        return BP_PARTY_SENDING_HOST;
    }
    return BP_PARTY_RECIPIENT;
}

const char *bp_report_exim_sender(bp_arena *arena, const char *text, size_t len, const bp_byte_pairs *pairs)
{
    /* Exim deliver.c, a bounce sent to an errors address other than the sender: "A message
     * sent by\n\n  <SENDER>\n\ncould not be delivered to one or more of its recipients." */
    if (pairs != NULL && !bp_byte_pairs_may_hold(pairs, "a message sent by", 17))
        return NULL;
    const char *m = bp_memcasemem(text, len, "a message sent by", 17);
    if (m == NULL)
        return NULL;
    size_t a = (size_t)(m - text) + 17;
    size_t n = len - a < 400 ? len - a : 400;
    const char *until = bp_memcasemem(text + a, n, "could not be delivered", 22);
    if (until == NULL)
        until = bp_memcasemem(text + a, n, "has not yet been delivered", 26);
    if (until == NULL)
        return NULL;
    return bp_address_find(arena, text + a, (size_t)(until - text) - a, NULL);
}

/* The sending host's own name: ">>> EHLO NAME" / ">>> HELO NAME" of a transcript. */
static const char *transcript_helo(bp_arena *arena, const char *text, size_t len, const bp_byte_pairs *pairs)
{
    static const char *const verbs[] = {">>> ehlo ", ">>> helo ", NULL};
    for (int k = 0; verbs[k] != NULL; k++) {
        if (pairs != NULL && !bp_byte_pairs_may_hold(pairs, verbs[k], 9))
            continue; /* pairs of the folded text: the words cannot be there in any case */
        const char *m = bp_memcasemem(text, len, verbs[k], 9);
        if (m == NULL)
            continue;
        const char *h = m + 9;
        size_t n = 0;
        while (h + n < text + len && !is_space(h[n]))
            n++;
        if (n > 0 && n < 256) {
            char *host = bp_arena_strndup(arena, h, n); /* NULL: the arena remembers */
            return host != NULL ? bp_ascii_lower(host) : NULL;
        }
    }
    return NULL;
}

/* ---- local delivery programs ------------------------------------------------------------ */

/* What a local delivery program's failure says of itself (lower case): procmail, maildrop,
 * Postfix local(8)/pipe(8) "Command died with status N" and "Command time limit exceeded",
 * Exim's "Child process of TRANSPORT transport returned N", a pipe ("pipe to |..."), Sendmail's
 * mail.local. */
static const char *const local_cues[] = {"procmail:",
                                         "maildrop:",
                                         "command died with status",
                                         "command time limit exceeded",
                                         "child process of",
                                         "pipe to |",
                                         "mail.local:",
                                         NULL};

static int local_delivery(const bp_rcpt_block *b)
{
    if (b->diagnostic_type != NULL && strcmp(b->diagnostic_type, "x-unix") == 0)
        return 1;
    for (int k = 0; b->diagnostic != NULL && local_cues[k] != NULL; k++)
        if (bp_strcasestr(b->diagnostic, local_cues[k]) != NULL)
            return 1;
    return 0;
}

/* ---- passages ----------------------------------------------------------------------------- */

#define MAX_PASSAGES   8   /* mentions of one recipient read */
#define PASSAGE_BYTES  600 /* of text taken from one mention on */
#define PASSAGE_PREFIX 300 /* a mention this far into a line starts its passage at its sentence */

/* The report's own text: its explanation part, without the quoted original. */
typedef struct report_text {
    const char *text;
    size_t len;
    const char *folded; /* lower case copy */
} report_text;

/* Non-zero when the line at @p ls starts with the address of another block than @p self. */
static int other_entry(const report_text *rt, size_t ls, size_t le, const bp_report *r, size_t self)
{
    size_t t = ls;
    while (t < le && (rt->text[t] == ' ' || rt->text[t] == '\t' || rt->text[t] == '<' || rt->text[t] == '"'))
        t++;
    for (size_t i = 0; i < r->n_blocks; i++) {
        const char *a = r->blocks[i].recipient;
        if (i == self || a == NULL)
            continue;
        size_t n = strlen(a);
        if (n <= le - t && strncasecmp(rt->text + t, a, n) == 0 &&
            (r->blocks[self].recipient == NULL || strcasecmp(a, r->blocks[self].recipient) != 0))
            return 1;
    }
    return 0;
}

/* One passage from the mention at @p at: its line (from its sentence when the line runs long
 * before it) and the rest of its paragraph, to a blank line, another recipient's entry or a
 * transcript, at most PASSAGE_BYTES. */
static void passage_span(const report_text *rt, size_t at, const bp_report *r, size_t self, size_t *s, size_t *e)
{
    const char *t = rt->text;
    size_t ls = bp_explanation_line_start(t, at);
    *s = ls;
    if (at - ls > PASSAGE_PREFIX) {
        size_t k = at;
        while (k > at - PASSAGE_PREFIX && !(t[k - 1] == ' ' && k >= 2 && (t[k - 2] == '.' || t[k - 2] == '!')))
            k--;
        *s = k;
    }
    size_t limit = at + PASSAGE_BYTES < rt->len ? at + PASSAGE_BYTES : rt->len;
    const char *nl = memchr(t + at, '\n', limit - at);
    size_t p = nl != NULL ? (size_t)(nl - t) + 1 : limit;
    while (p < limit) {
        const char *n2 = memchr(t + p, '\n', limit - p);
        size_t le = n2 != NULL ? (size_t)(n2 - t) : limit;
        size_t q = p;
        while (q < le && (t[q] == ' ' || t[q] == '\t'))
            q++;
        if (bp_explanation_line_blank(t, le, p) || other_entry(rt, p, le, r, self) ||
            (le - q >= 4 && (strncmp(t + q, ">>> ", 4) == 0 || strncmp(t + q, "<<< ", 4) == 0)) ||
            bp_memcasemem(t + q, le - q, "while talking to", 16) != NULL)
            break;
        p = le + 1;
    }
    *e = p < limit ? p : limit;
}

/* The passages of block @p self joined (cleaned, capped), and the transcript reply in
 * @p reply (or start == end). */
static const char *passages_of(bp_arena *arena, const report_text *rt, const bp_report *r, size_t self, size_t *budget,
                               bp_transcript_reply *reply)
{
    const bp_rcpt_block *b = &r->blocks[self];
    memset(reply, 0, sizeof(*reply));
    if (rt->text == NULL || b->recipient == NULL || rt->len > *budget)
        return NULL;
    *budget -= rt->len;
    char *needle = bp_arena_strdup(arena, b->recipient);
    if (needle == NULL) /* the arena remembers: the message fails for want of memory */
        return NULL;
    bp_ascii_lower(needle);
    size_t nlen = strlen(needle);
    bp_strbuf sb = {0};
    size_t covered = 0;
    int n = 0;
    for (size_t from = 0; from < rt->len && n < MAX_PASSAGES;) {
        const char *m = memmem(rt->folded + from, rt->len - from, needle, nlen);
        if (m == NULL)
            break;
        size_t at = (size_t)(m - rt->folded);
        from = at + nlen;
        if (at < covered)
            continue;
        size_t ls = bp_explanation_line_start(rt->text, at);
        size_t q = ls;
        while (q < at && (rt->text[q] == ' ' || rt->text[q] == '\t'))
            q++;
        if (bp_explanation_quoted_line(rt->text, rt->len, ls) || strncmp(rt->text + q, ">>> ", 4) == 0 ||
            strncmp(rt->text + q, "<<< ", 4) == 0)
            continue;
        size_t s = 0, e = 0;
        passage_span(rt, at, r, self, &s, &e);
        covered = e;
        if (e > s && (bp_strbuf_append(&sb, rt->text + s, e - s) != BP_OK || bp_strbuf_append(&sb, " ", 1) != BP_OK))
            break;
        n++;
    }
    if (bp_transcript_find(rt->text, rt->len, b->recipient, b->remote_mta, reply, NULL) && reply->end > reply->start)
        (void)bp_strbuf_append(&sb, rt->text + reply->start, reply->end - reply->start);
    const char *out = sb.len > 0 ? bp_clean_text(arena, sb.data, sb.len, BP_MAX_DIAGNOSTIC_BYTES) : NULL;
    bp_strbuf_free(&sb);
    return out;
}

const char *bp_transcript_reply_text(bp_arena *arena, const char *text, const bp_transcript_reply *r)
{
    bp_strbuf sb = {0};
    for (size_t p = r->start; p < r->end;) {
        const char *nl = memchr(text + p, '\n', r->end - p);
        size_t le = nl != NULL ? (size_t)(nl - text) : r->end;
        size_t q = p;
        while (q < le && (text[q] == ' ' || text[q] == '\t'))
            q++;
        if (le - q >= 4 && strncmp(text + q, "<<< ", 4) == 0)
            q += 4;
        if (bp_strbuf_append(&sb, text + q, le - q) != BP_OK || bp_strbuf_append(&sb, " ", 1) != BP_OK)
            break;
        p = le + 1;
    }
    const char *out = sb.len > 0 ? bp_clean_text(arena, sb.data, sb.len, BP_MAX_DIAGNOSTIC_BYTES) : NULL;
    bp_strbuf_free(&sb);
    return out;
}

/* ---- the blocks --------------------------------------------------------------------------- */

/* The words that stated the stage, for explain: at most 60 bytes of @p text from @p at. */
static const char *said(bp_arena *arena, const char *text, size_t at, size_t end)
{
    if (end - at > 60)
        end = at + 60;
    return bp_clean_text(arena, text + at, end - at, 60);
}

/* The stage of block @p b from its own texts: the diagnostic, its transcript reply, its
 * passages. */
static void read_stage(bp_arena *arena, bp_rcpt_block *b, bp_smtp_command transcript, const char *transcript_said)
{
    size_t at = 0, end = 0;
    if (b->diagnostic != NULL &&
        (b->smtp_command = bp_stage_find(b->diagnostic, strlen(b->diagnostic), &at, &end)) != BP_SMTP_NONE) {
        b->smtp_command_said = said(arena, b->diagnostic, at, end);
        return;
    }
    if (transcript != BP_SMTP_NONE) {
        b->smtp_command = transcript;
        b->smtp_command_said = transcript_said;
        return;
    }
    if (b->passages != NULL &&
        (b->smtp_command = bp_stage_find(b->passages, strlen(b->passages), &at, &end)) != BP_SMTP_NONE)
        b->smtp_command_said = said(arena, b->passages, at, end);
}

/* The innermost reply of @p b's diagnostic, with its own codes. */
static void read_reply(bp_arena *arena, bp_rcpt_block *b)
{
    if (b->diagnostic == NULL)
        return;
    size_t len = strlen(b->diagnostic), s = 0, e = 0;
    char code[4];
    char status[BP_STATUS_BUF];
    if (bp_reply_inner(b->diagnostic, len, &s, &e, code)) {
        b->reply = bp_clean_text(arena, b->diagnostic + s, e - s, BP_MAX_DIAGNOSTIC_BYTES);
        if (b->reply == NULL)
            return;
        size_t rl = strlen(b->reply);
        char found[4];
        if (bp_status_code_find(b->reply, rl, status))
            b->reply_status = bp_arena_strdup(arena, status);
        if (bp_smtp_code_find(b->reply, rl, found))
            b->reply_code = bp_arena_strdup(arena, found);
        else if (code[0] != '\0')
            b->reply_code = bp_arena_strdup(arena, code);
        return;
    }
    /* Sendmail's "Cannot send message for 5 days" (X.4.7) around the last remote reply: the
     * reply's own status decides, not the expiry */
    if (b->status != NULL && strcmp(b->status + 1, ".4.7") == 0 && bp_status_code_find(b->diagnostic, len, status) &&
        strcmp(status, b->status) != 0) {
        b->reply = b->diagnostic;
        b->reply_status = bp_arena_strdup(arena, status);
        b->reply_code = b->smtp_code;
    }
}

bp_status bp_report_read(const bp_mime_message *msg, bp_arena *arena, bp_report *r)
{
    if (r->kind != BP_REPORT_DSN && r->kind != BP_REPORT_TEXT)
        return BP_OK;
    bp_effort_stage("reading the report");
    /* a text bounce's explanation was read by its scanner; a DSN's is read here */
    const bp_part *part = r->explanation == NULL ? bp_explanation_part(msg->root) : NULL;
    if (part != NULL) {
        bp_status st = bp_explanation_read(r, arena, part);
        if (st != BP_OK)
            return st;
    }
    report_text rt = {r->explanation, r->explanation_len, r->explanation_folded};
    /* the parties */
    if (r->envelope_sender == NULL && rt.text != NULL)
        r->envelope_sender = bp_report_exim_sender(arena, rt.text, rt.len, r->explanation_pairs);
    if (r->envelope_sender == NULL && r->original != NULL)
        r->envelope_sender = bp_address_normalise(arena, bp_part_header(r->original, "Return-Path"));
    if (r->sending_host == NULL && rt.text != NULL)
        r->sending_host = transcript_helo(arena, rt.text, rt.len, r->explanation_pairs);
    if (r->sending_host == NULL)
        r->sending_host = r->reporting_mta;

    size_t budget = BP_MAX_TEXT_BYTES;
    for (size_t i = 0; i < r->n_blocks && bp_effort_left(); i++) {
        bp_rcpt_block *b = &r->blocks[i];
        if (b->action != BP_ACTION_FAILED && b->action != BP_ACTION_DELAYED && b->action != BP_ACTION_UNKNOWN)
            continue;
        read_reply(arena, b);
        bp_transcript_reply tr;
        b->passages = passages_of(arena, &rt, r, i, &budget, &tr);
        const char *tr_said = NULL;
        if (tr.end > tr.start && tr.command != BP_SMTP_NONE) {
            const char *line = rt.text + tr.start;
            size_t ll = 0;
            while (tr.start + ll < tr.end && line[ll] != '\n')
                ll++;
            tr_said = said(arena, line, 0, ll);
        }
        read_stage(arena, b, tr.end > tr.start ? tr.command : BP_SMTP_NONE, tr_said);
        b->local_delivery = local_delivery(b);
        b->party = party_of(arena, b->reply != NULL ? b->reply : b->diagnostic, b, r->envelope_sender, r->sending_host,
                            &b->party_named);
    }
    return BP_OK;
}
