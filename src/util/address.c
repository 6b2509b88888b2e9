/*
 * address.c - extract, normalise, validate and VERP-decode e-mail addresses.
 *
 * Extraction (bp_address_find(), bp_address_normalise(), bp_verp_decode()) finds what looks
 * like an address: a local part of RFC 5322 dot-atom text plus any byte >= 0x80, a domain
 * with a dot or an address literal in brackets; quoted local parts are rare in bounces and
 * their quotes are dropped.  Quotes around an address and an "smtp=" tag before it are not
 * part of it; a "#" after or inside the domain does not make it no address (see
 * domain_end()).  A candidate must stand between delimiters an address can have around it:
 * where the scan from its '@' stopped at a control character, an escape sequence, another
 * '@' or a quoted pair, it read a fragment of something else, and there is no address there
 * rather than a shortened one (is_border()).  The quotation marks, brackets and spaces of
 * other scripts delimit as their ASCII kin (is_text_delimiter()).  VERP without a configured
 * prefix splits after the list server's bounce word (verp_split()).  What extraction finds is
 * a candidate, not yet an address.
 *
 * Validation (bp_address_check(), bp_address_parse()) decides: an address is valid UTF-8, a
 * local part of atext, dots and printable non-ASCII characters (RFC 6531), and a domain of
 * LDH labels - an internationalised one as GLib's IDNA encodes it (g_hostname_to_ascii),
 * an xn-- label as it decodes it (g_hostname_to_unicode) - or an IPv4 or IPv6 address
 * literal (RFC 5321 4.1.3).  Tolerated, because real mail has them: dots in a row and a dot
 * before the '@' (Japanese carriers' old addresses), '_' in a domain label, local parts over
 * 64 bytes (under BP_MAX_ADDRESS_BYTES in all).  Everything else is rejected with a reason.
 *
 * VERP: bp_verp_decode() takes a prefix and separators, or a pattern ([verp] pattern): a
 * PCRE2 pattern run through the one wrapper (regex.h) over the whole bounce address, whose
 * named groups "local" and "domain" are the recipient.  The presets of bp_verp_pattern_text()
 * write today's forms (PowerMTA "-", Postfix "+", either) as such patterns, so that a
 * per-message form ("customer1-campaign563-uniq498294-jdoe=example.net@...") is one more
 * pattern, not one more parser.  SRS addresses are refused either way.
 */
#include "bouncepipe/address.h"

#include <arpa/inet.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

static int is_local_char(unsigned char c)
{
    if (c >= 0x80)
        return 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL && c != '\0';
}

static int is_domain_char(unsigned char c)
{
    if (c >= 0x80)
        return 1;
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

/* A non-ASCII character that quotes, brackets or separates words rather than spelling one:
 * the quotation marks and brackets of every script (U+201C/U+201D, U+2018/U+2019, guillemets,
 * CJK corner and lenticular brackets, fullwidth parentheses) and its spaces (no-break,
 * ideographic).  An address in text stops at one as at its ASCII kin ('"', '<', ' '); in a
 * domain, where no punctuation is valid, at any punctuation (the ideographic full stop
 * ending a sentence).  Other non-ASCII characters stay in the candidate, and validation
 * judges them (a C1 control or a bidi override there is rejected, never cut off). */
static int is_text_delimiter(gunichar c, int in_domain)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_INITIAL_PUNCTUATION:
    case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION:
    case G_UNICODE_SPACE_SEPARATOR:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR: return 1;
    case G_UNICODE_CONNECT_PUNCTUATION:
    case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_OTHER_PUNCTUATION: return in_domain;
    default: return 0;
    }
}

/* The length of the UTF-8 character that ends just before text[i] (i > 0), or 0 when the
 * bytes there are no valid character. */
static size_t char_before(const char *text, size_t i)
{
    size_t start = i - 1;
    while (start > 0 && i - start < 4 && ((unsigned char)text[start] & 0xc0) == 0x80)
        start--;
    gunichar c = g_utf8_get_char_validated(text + start, (gssize)(i - start));
    return c < 0x80 || c == (gunichar)-1 || c == (gunichar)-2 ||
                   (size_t)g_utf8_skip[(unsigned char)text[start]] != i - start
               ? 0
               : i - start;
}

/* Where the local part that ends at @p at starts: back over local-part characters, up to a
 * delimiter (is_text_delimiter()). */
static size_t local_start(const char *text, size_t at)
{
    size_t ls = at;
    while (ls > 0 && is_local_char((unsigned char)text[ls - 1])) {
        size_t n = (unsigned char)text[ls - 1] >= 0x80 ? char_before(text, ls) : 0;
        if (n > 0 && is_text_delimiter(g_utf8_get_char(text + ls - n), 0))
            break;
        ls -= n > 0 ? n : 1;
    }
    return ls;
}

/* The length of the domain character at text[i] (i < len), or 0 where the domain ends. */
static size_t domain_char(const char *text, size_t len, size_t i)
{
    unsigned char c = (unsigned char)text[i];
    if (c < 0x80)
        return is_domain_char(c) ? 1 : 0;
    gunichar u = g_utf8_get_char_validated(text + i, (gssize)(len - i));
    if (u == (gunichar)-1 || u == (gunichar)-2)
        return 1; /* not UTF-8: kept, validation rejects it */
    return is_text_delimiter(u, 1) ? 0 : (size_t)g_utf8_skip[c];
}

/* Build "local@domain" from the spans, lower-casing the domain and trimming dots. */
static char *assemble(bp_arena *arena, const char *local, size_t llen, const char *domain, size_t dlen)
{
    while (llen > 0 && local[0] == '.') {
        local++;
        llen--;
    }
    while (dlen > 0 && domain[dlen - 1] == '.')
        dlen--;
    while (dlen > 0 && domain[0] == '.') {
        domain++;
        dlen--;
    }
    if (llen == 0 || dlen == 0 || llen + dlen + 1 > BP_MAX_ADDRESS_BYTES)
        return NULL;
    int literal = domain[0] == '[';
    if (!literal && memchr(domain, '.', dlen) == NULL)
        return NULL;
    char *out = bp_arena_alloc(arena, llen + dlen + 2);
    if (out == NULL)
        return NULL;
    memcpy(out, local, llen);
    out[llen] = '@';
    for (size_t i = 0; i < dlen; i++) {
        char c = domain[i];
        out[llen + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[llen + 1 + dlen] = '\0';
    return out;
}

/* Where the local part in text[ls, at) really starts: after quotes around the address
 * ('jdoe@example.org') and an "smtp=" tag (Exchange's and some gateways' way of writing the
 * address type), none of which is part of the address. */
static size_t skip_local_wrapping(const char *text, size_t ls, size_t at)
{
    while (ls < at && text[ls] == '\'')
        ls++;
    if (at - ls > 5 && strncasecmp(text + ls, "smtp=", 5) == 0)
        ls += 5;
    return ls;
}

/* The end of the domain that starts at @p de.  A "#" may follow it (a route or an extension
 * some MTAs write after the domain: "example.org#5.1.1") - the domain ends there when what
 * came before has a dot; else the "#" is inside the domain ("mail#1.example.org") and kept,
 * so that the address is not dropped for it. */
static size_t domain_end(const char *text, size_t len, size_t de)
{
    size_t start = de, n;
    while (de < len && (n = domain_char(text, len, de)) > 0)
        de += n;
    if (de + 1 < len && text[de] == '#' && memchr(text + start, '.', de - start) == NULL &&
        domain_char(text, len, de + 1) > 0) {
        de++;
        while (de < len && (text[de] == '#' || (n = domain_char(text, len, de)) > 0))
            de += text[de] == '#' ? 1 : n;
    }
    return de;
}

/* Whether the byte text[i], where a scan from an '@' stopped, can border an address: before
 * its local part (@p local) or after its domain.  An address stands between white space and
 * the RFC 5322 specials that bracket, quote or separate it ("<a@b.example>", "[a@b.example]:",
 * "RCPT TO:<...>", "(a@b.example)", "To: a@b.example, c@d.example;"), and after it also
 * the punctuation and escapes of the text around it ("a@b.example!", "&gt;", a JSON "\"").
 * A scan that stopped anywhere else stopped inside something else, and what it read is a
 * fragment of that, i.e. a different address, so there is none: a control character (an
 * escape sequence, binary junk), another '@' (a longer address-like word), a '\' before the
 * local part (a quoted pair: inside a quoted string), and a delimiter that belongs to an
 * escape sequence - ESC and the byte after it ("ESC [", "ESC ("), or a CSI's parameter bytes
 * back to its "ESC [" or C1 CSI ("ESC [1;31m").  So "ops ESC [8m@example.com" holds no
 * "8m@example.com".  Only the stop point is looked at, and the parameter bytes (0x30-0x3f)
 * do not include '@': the look back stays before this '@' and after the one before it. */
static int is_border(const char *text, size_t i, int local)
{
    unsigned char c = (unsigned char)text[i];
    /* white space among the C0 controls: '\t' to '\r' */
    if (c == '@' || c == 0x7f || (c < 0x20 && (c < '\t' || c > '\r')) || (local && c == '\\'))
        return 0;
    if (!local)
        return 1;
    size_t j = i + 1; /* back over a CSI's parameter bytes, the delimiter among them */
    while (j > 0 && (unsigned char)text[j - 1] >= 0x30 && (unsigned char)text[j - 1] <= 0x3f)
        j--;
    if (j == 0)
        return 1;
    unsigned char last = (unsigned char)text[j - 1], before = j > 1 ? (unsigned char)text[j - 2] : 0;
    if (last == 0x1b || before == 0x1b) /* ESC and the byte after it */
        return 0;
    /* a C1 CSI: raw, or U+009B in UTF-8 (not the last byte of another character) */
    return !(last == 0x9b && (before < 0x80 || before == 0xc2));
}

char *bp_address_find(bp_arena *arena, const char *text, size_t len, size_t *end)
{
    if (text == NULL)
        return NULL;
    /* the first ']' at or after the last literal's '[' (len: none; SIZE_MAX: not looked for):
     * reused while later literals open before it, so "x@[" repeated is one scan, not n */
    size_t close_at = SIZE_MAX;
    for (size_t at = 0; at < len; at++) {
        if (text[at] != '@')
            continue;
        size_t ls = local_start(text, at);
        if (ls > 0 && !is_border(text, ls - 1, 1))
            continue;
        ls = skip_local_wrapping(text, ls, at);
        size_t de = at + 1;
        if (de < len && text[de] == '[') {
            if (close_at == SIZE_MAX || de > close_at) {
                const char *close = memchr(text + de, ']', len - de);
                close_at = close != NULL ? (size_t)(close - text) : len;
            }
            if (close_at >= len)
                continue;
            de = close_at + 1;
        } else {
            de = domain_end(text, len, de);
            if (de < len && !is_border(text, de, 0))
                continue;
        }
        if (ls == at || de == at + 1)
            continue;
        char *addr = assemble(arena, text + ls, at - ls, text + at + 1, de - at - 1);
        if (addr != NULL) {
            if (end != NULL)
                *end = de;
            return addr;
        }
    }
    return NULL;
}

char *bp_address_normalise(bp_arena *arena, const char *text)
{
    if (text == NULL)
        return NULL;
    const char *s = text;
    /* "rfc822; addr" / "utf-8; addr": drop the address type */
    const char *semi = strchr(s, ';');
    if (semi != NULL && semi - s < 16) {
        int is_type = 1;
        for (const char *p = s; p < semi; p++)
            if (*p == '@' || *p == '<')
                is_type = 0;
        if (is_type)
            s = semi + 1;
    }
    /* prefer the bracketed form when there is one */
    const char *lt = strchr(s, '<');
    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        size_t n = gt != NULL ? (size_t)(gt - lt - 1) : strlen(lt + 1);
        char *inner = bp_arena_strndup(arena, lt + 1, n);
        if (inner == NULL)
            return NULL;
        char *found = bp_address_find(arena, inner, n, NULL);
        if (found != NULL)
            return found;
    }
    char *stripped = bp_arena_strdup(arena, s);
    if (stripped == NULL)
        return NULL;
    for (char *p = stripped; *p; p++)
        if (*p == '"')
            *p = ' ';
    return bp_address_find(arena, stripped, strlen(stripped), NULL);
}

int bp_address_is_srs(const char *address)
{
    return address != NULL && (strncasecmp(address, "SRS0=", 5) == 0 || strncasecmp(address, "SRS1=", 5) == 0 ||
                               strncasecmp(address, "SRS0+", 5) == 0 || strncasecmp(address, "SRS0-", 5) == 0 ||
                               strncasecmp(address, "SRS1+", 5) == 0 || strncasecmp(address, "SRS1-", 5) == 0);
}

/*
 * Without a configured prefix: where the prefix ends in the local part @p local (@p
 * local_len bytes), i.e. the separator before the encoded address.  The prefix is a list
 * server's or a bounce processor's own address, and the documented forms end it with their
 * bounce word: Mailman "list-bounces+user=domain", ezmlm and qmail "list-return-N-user=domain",
 * mlmmj "list+bounces-N-user=domain".  So the split is after the last bounce word ("bounce",
 * "bounces", "return") followed by a separator - and a message number after it - before the
 * domain separator; without one, at the first separator (PowerMTA's "prefix-user=domain").
 * @return the separator's offset, or local_len when there is none.
 */
static size_t verp_split(const char *local, size_t local_len, const char *seps, char dsep)
{
    static const char *const words[] = {"bounces", "bounce", "returns", "return", NULL};
    size_t last_dsep = local_len;
    for (size_t i = 0; i < local_len; i++)
        if (local[i] == dsep)
            last_dsep = i;
    size_t split = local_len;
    for (size_t i = 1; i < last_dsep; i++) {
        if (strchr(seps, local[i]) == NULL)
            continue;
        for (int w = 0; words[w] != NULL; w++) {
            size_t n = strlen(words[w]);
            /* the word is a whole segment: it starts the local part or follows a separator */
            if (i >= n && strncasecmp(local + i - n, words[w], n) == 0 &&
                (i == n || strchr(seps, local[i - n - 1]) != NULL)) {
                split = i;
                break;
            }
        }
    }
    if (split < last_dsep) {
        size_t d = split + 1; /* a message number after the bounce word: "-return-42-user" */
        while (d < last_dsep && local[d] >= '0' && local[d] <= '9')
            d++;
        if (d > split + 1 && d < last_dsep && strchr(seps, local[d]) != NULL)
            split = d;
        return split;
    }
    return strcspn(local, seps);
}

const char *const bp_verp_presets[] = {"powermta", "postfix", "any", NULL};

char *bp_verp_pattern_text(bp_arena *arena, const char *form, const char *prefix, char domain_separator)
{
    static const struct {
        const char *name, *seps;
    } presets[] = {{"powermta", "-"}, {"postfix", "\\+"}, {"any", "-+"}};
    const char *seps = NULL;
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]) && form != NULL; i++)
        if (strcasecmp(form, presets[i].name) == 0)
            seps = presets[i].seps;
    if (seps == NULL)
        return bp_arena_strdup(arena, form != NULL ? form : "");
    unsigned char d = (unsigned char)(domain_separator != '\0' ? domain_separator : '=');
    bp_strbuf sb = {0};
    bp_strbuf_puts(&sb, "^");
    if (prefix != NULL && prefix[0] != '\0') {
        /* the prefix as literal text: every character that is not a letter or digit escaped */
        for (const char *p = prefix; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                bp_strbuf_printf(&sb, "\\x{%02x}", c);
            else
                bp_strbuf_putc(&sb, (char)c);
        }
    } else {
        /* any prefix, split as verp_split() splits it: after the last bounce word that is a
         * segment of its own (and a message number after it), else at the first separator */
        bp_strbuf_printf(&sb, "(?:(?:[^@]*[%s])?(?:bounces?|returns?)[%s](?:\\d+[%s])?|[^%s@]+[%s])", seps, seps, seps,
                         seps, seps);
        bp_strbuf_printf(&sb, "(?<local>[^@]+)\\x{%02x}(?<domain>[^@\\x{%02x}]+)@[^@]+$", d, d);
        char *text = sb.data != NULL ? bp_arena_strdup(arena, sb.data) : NULL;
        bp_strbuf_free(&sb);
        return text;
    }
    bp_strbuf_printf(&sb, "[%s](?<local>[^@]+)\\x{%02x}(?<domain>[^@\\x{%02x}]+)@[^@]+$", seps, d, d);
    char *text = sb.data != NULL ? bp_arena_strdup(arena, sb.data) : NULL;
    bp_strbuf_free(&sb);
    return text;
}

bp_regex *bp_verp_pattern_compile(const char *text, char *err, size_t err_size)
{
    char detail[256];
    bp_regex *re = bp_regex_compile(text, BP_REGEX_CASELESS, detail, sizeof(detail));
    if (re == NULL) {
        if (err != NULL)
            snprintf(err, err_size, "does not compile: %s", detail);
        return NULL;
    }
    const char *missing = !bp_regex_has_group(re, "local")    ? "local"
                          : !bp_regex_has_group(re, "domain") ? "domain"
                                                              : NULL;
    if (missing != NULL) {
        if (err != NULL)
            snprintf(err, err_size, "has no named group (?<%s>...)", missing);
        bp_regex_free(re);
        return NULL;
    }
    return re;
}

int bp_verp_explicit(const bp_verp_options *opts)
{
    return opts != NULL && (opts->pattern != NULL || (opts->prefix != NULL && opts->prefix[0] != '\0'));
}

/* Decode @p address (an address, "local@host") with the pattern of @p opts. */
static char *verp_by_pattern(bp_arena *arena, const char *address, const bp_regex *pattern)
{
    size_t len = strlen(address);
    if (len > BP_MAX_ADDRESS_BYTES)
        return NULL;
    bp_regex_matcher *m = bp_regex_matcher_new(); /* owned: freed below */
    if (m == NULL)
        return NULL;
    char *out = NULL;
    size_t ms = 0, me = 0, ls = 0, le = 0, ds = 0, de = 0; /* the pattern anchors itself (^...$) */
    if (bp_regex_search(m, pattern, address, len, 0, &ms, &me) && bp_regex_group(m, pattern, "local", &ls, &le) &&
        bp_regex_group(m, pattern, "domain", &ds, &de) && !(le - ls >= 5 && bp_address_is_srs(address + ls)))
        out = assemble(arena, address + ls, le - ls, address + ds, de - ds);
    bp_regex_matcher_free(m);
    return out;
}

char *bp_verp_decode(bp_arena *arena, const char *address, const bp_verp_options *opts)
{
    if (address == NULL)
        return NULL;
    /* "<bounces-...@host>" or "Name <...>" as a header gives it: take the address itself */
    if (strpbrk(address, "<> \t\"") != NULL) {
        address = bp_address_normalise(arena, address);
        if (address == NULL)
            return NULL;
    }
    if (bp_address_is_srs(address))
        return NULL;
    if (opts != NULL && opts->pattern != NULL) {
        const char *host_at = strrchr(address, '@');
        return host_at != NULL && host_at[1] != '\0' ? verp_by_pattern(arena, address, opts->pattern) : NULL;
    }
    const char *seps =
        (opts != NULL && opts->separators != NULL && *opts->separators != '\0') ? opts->separators : "-+";
    char dsep = (opts != NULL && opts->domain_separator != '\0') ? opts->domain_separator : '=';
    const char *prefix = (opts != NULL && opts->prefix != NULL && *opts->prefix != '\0') ? opts->prefix : NULL;

    /* the bounce address needs its own host: "prefix-user=domain@host" */
    const char *at = strrchr(address, '@');
    if (at == NULL || at[1] == '\0')
        return NULL;
    size_t local_len = (size_t)(at - address);
    const char *encoded;
    if (prefix != NULL) {
        size_t plen = strlen(prefix);
        if (local_len <= plen + 1 || strncasecmp(address, prefix, plen) != 0 || strchr(seps, address[plen]) == NULL)
            return NULL;
        encoded = address + plen + 1;
    } else {
        size_t i = verp_split(address, local_len, seps, dsep);
        if (i == 0 || i >= local_len)
            return NULL;
        encoded = address + i + 1;
    }
    size_t enc_len = local_len - (size_t)(encoded - address);
    /* an SRS address behind a VERP prefix is still a forwarder's rewrite */
    if (enc_len >= 5 && bp_address_is_srs(encoded))
        return NULL;
    /* the user part may itself contain the separator; the domain follows the last one */
    const char *eq = NULL;
    for (const char *p = encoded; p < encoded + enc_len; p++)
        if (*p == dsep)
            eq = p;
    if (eq == NULL || eq == encoded || eq + 1 >= encoded + enc_len)
        return NULL;
    return assemble(arena, encoded, (size_t)(eq - encoded), eq + 1, (size_t)(encoded + enc_len - eq - 1));
}

/* ---- validation ---------------------------------------------------------------------------- */

/* RFC 5322 atext: what an unquoted local part is made of, besides dots. */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A non-ASCII character an address may hold: anything printable (RFC 6531 takes any
 * UTF8-non-ascii); not a control, a format character (bidi overrides, zero-width joiners,
 * the byte-order mark), a space or line separator, or a surrogate. */
static int printable_unichar(gunichar c)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_SURROGATE:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SPACE_SEPARATOR: return 0;
    default: return 1;
    }
}

static const char *check_local(const char *s, size_t len)
{
    if (len == 0)
        return "the local part is empty";
    if (s[0] == '.')
        return "the local part starts with a dot";
    for (const char *p = s; p < s + len;) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            if (!printable_unichar(g_utf8_get_char(p)))
                return "a control, format or space character in the local part";
            p = g_utf8_next_char(p);
            continue;
        }
        if (c == ' ' || c == '\t')
            return "white space in the local part";
        if (c < 0x20 || c == 0x7F)
            return "a control character in the local part";
        if (!is_atext(c) && c != '.')
            return "a character the local part may not hold unquoted (quoted local parts are not taken)";
        p++;
    }
    return NULL;
}

/* "[192.0.2.1]", "[IPv6:2001:db8::1]": the only literals RFC 5321 gives a meaning (a
 * General-address-literal needs a tag registered with IANA, and only IPv6 is). */
static const char *check_literal(const char *s, size_t len)
{
    char ip[64];
    if (len < 3 || s[len - 1] != ']')
        return "an address literal without its closing ']'";
    const char *in = s + 1;
    size_t n = len - 2;
    int family = AF_INET;
    if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0) {
        family = AF_INET6;
        in += 5;
        n -= 5;
    }
    unsigned char addr[16];
    if (n == 0 || n >= sizeof(ip) || memchr(in, '\0', n) != NULL)
        return "an address literal that is neither an IPv4 nor an IPv6 address";
    memcpy(ip, in, n);
    ip[n] = '\0';
    if (inet_pton(family, ip, addr) != 1)
        return "an address literal that is neither an IPv4 nor an IPv6 address";
    return NULL;
}

/* One label of a domain name, ASCII letters, digits, '-' and '_' (tolerated), and printable
 * non-ASCII characters (checked again by IDNA).  *@p non_ascii is set when it has any. */
static const char *check_label(const char *s, size_t len, int *non_ascii)
{
    if (len == 0)
        return "an empty label in the domain (a dot at its start or two dots in a row)";
    if (s[0] == '-' || s[len - 1] == '-')
        return "a domain label that starts or ends with '-'";
    for (const char *p = s; p < s + len;) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) {
            if (!printable_unichar(g_utf8_get_char(p)))
                return "a control, format or space character in the domain";
            *non_ascii = 1;
            p = g_utf8_next_char(p);
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return c < 0x20 || c == 0x7F ? "a control character in the domain"
                                         : "a character a domain name may not hold";
        p++;
    }
    if (!*non_ascii && len > 63)
        return "a domain label longer than 63 bytes";
    if (!*non_ascii && len > 4 && strncasecmp(s, "xn--", 4) == 0) {
        /* an A-label must decode (RFC 5891 5.4): GLib's decoder says */
        char *label = g_strndup(s, len);
        char *u = g_hostname_to_unicode(label);
        int ok = u != NULL && u[0] != '\0' && strchr(u, '.') == NULL;
        g_free(u);
        g_free(label);
        if (!ok)
            return "an xn-- label that is not valid Punycode";
    }
    return NULL;
}

static const char *check_domain(const char *s, size_t len)
{
    if (len == 0)
        return "the domain is empty";
    if (s[0] == '[')
        return check_literal(s, len);
    if (len > 255)
        return "a domain longer than 255 bytes";
    int non_ascii = 0;
    size_t labels = 0;
    for (size_t start = 0;;) {
        const char *dot = memchr(s + start, '.', len - start);
        size_t end = dot != NULL ? (size_t)(dot - s) : len;
        int label_non_ascii = 0;
        const char *why = check_label(s + start, end - start, &label_non_ascii);
        if (why != NULL)
            return why;
        non_ascii |= label_non_ascii;
        labels++;
        if (dot == NULL)
            break;
        start = end + 1;
    }
    if (labels < 2)
        return "a domain without a dot";
    if (non_ascii) {
        /* an internationalised domain: valid when IDNA encodes it to LDH labels that fit */
        char *copy = g_strndup(s, len);
        char *ascii = g_hostname_to_ascii(copy);
        const char *why = NULL;
        if (ascii == NULL)
            why = "an internationalised domain name that IDNA cannot encode";
        else if (strlen(ascii) > 255)
            why = "a domain longer than 255 bytes once IDNA-encoded";
        for (char *label = ascii; why == NULL && label != NULL;) {
            char *dot = strchr(label, '.');
            size_t n = dot != NULL ? (size_t)(dot - label) : strlen(label);
            int more = 0;
            why = check_label(label, n, &more);
            if (why == NULL && more)
                why = "an internationalised domain name that IDNA cannot encode";
            label = dot != NULL ? dot + 1 : NULL;
        }
        g_free(ascii);
        g_free(copy);
        if (why != NULL)
            return why;
    }
    return NULL;
}

const char *bp_address_check(const char *address)
{
    if (address == NULL || address[0] == '\0')
        return "empty";
    size_t len = strlen(address);
    if (len > BP_MAX_ADDRESS_BYTES)
        return "longer than an address may be (BP_MAX_ADDRESS_BYTES)";
    if (!g_utf8_validate(address, (gssize)len, NULL))
        return "not valid UTF-8 (an 8-bit character set such as Latin-1?)";
    const char *at = strchr(address, '@');
    if (at == NULL)
        return "no '@'";
    const char *why = check_local(address, (size_t)(at - address));
    if (why == NULL)
        why = check_domain(at + 1, len - (size_t)(at - address) - 1);
    return why;
}

char *bp_address_parse(bp_arena *arena, const char *text, const char **why)
{
    *why = NULL;
    if (text == NULL) {
        *why = "empty";
        return NULL;
    }
    size_t len = strlen(text);
    while (len > 0 && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r' || text[len - 1] == '\n'))
        len--;
    if (len >= 2 && text[0] == '<' && text[len - 1] == '>') {
        text++;
        len -= 2;
    }
    if (len == 0) {
        *why = "empty";
        return NULL;
    }
    const char *at = NULL;
    for (const char *p = text; p < text + len; p++)
        if (*p == '@')
            at = p; /* the last: an '@' before it is the local part's, and rejected there */
    if (at == NULL) {
        *why = "no '@'";
        return NULL;
    }
    size_t llen = (size_t)(at - text), dlen = len - llen - 1;
    if (dlen > 1 && at[dlen] == '.')
        dlen--; /* the root's dot: "user@example.com." */
    char *out = bp_arena_alloc(arena, len + 1);
    if (out == NULL) {
        *why = "out of memory";
        return NULL;
    }
    memcpy(out, text, llen);
    out[llen] = '@';
    for (size_t i = 0; i < dlen; i++) {
        char c = at[1 + i];
        out[llen + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[llen + 1 + dlen] = '\0';
    *why = bp_address_check(out);
    return *why == NULL ? out : NULL;
}
