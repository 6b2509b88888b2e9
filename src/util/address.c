/*
 * address.c - extract, normalise and VERP-decode e-mail addresses.
 *
 * Quotes around an address and an "smtp=" tag before it are not part of it; a "#" after or
 * inside the domain does not make it no address (see domain_end()).  VERP without a
 * configured prefix splits after the list server's bounce word (verp_split()).
 * The character set accepted for a local part is RFC 5322 dot-atom text plus UTF-8 bytes
 * (RFC 6531); quoted local parts are rare in bounces and their quotes are dropped.  A domain
 * must have a dot, or be an address literal in brackets.
 *
 * VERP: bp_verp_decode() takes a prefix and separators, or a pattern ([verp] pattern): a
 * PCRE2 pattern run through the one wrapper (regex.h) over the whole bounce address, whose
 * named groups "local" and "domain" are the recipient.  The presets of bp_verp_pattern_text()
 * write today's forms (PowerMTA "-", Postfix "+", either) as such patterns, so that a
 * per-message form ("customer1-campaign563-uniq498294-jdoe=example.net@...") is one more
 * pattern, not one more parser.  SRS addresses are refused either way.
 */
#include "bouncepipe/address.h"

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
    size_t start = de;
    while (de < len && is_domain_char((unsigned char)text[de]))
        de++;
    if (de + 1 < len && text[de] == '#' && memchr(text + start, '.', de - start) == NULL &&
        is_domain_char((unsigned char)text[de + 1])) {
        de++;
        while (de < len && (is_domain_char((unsigned char)text[de]) || text[de] == '#'))
            de++;
    }
    return de;
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
        size_t ls = at;
        while (ls > 0 && is_local_char((unsigned char)text[ls - 1]))
            ls--;
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
