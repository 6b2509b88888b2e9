/*
 * address.c - extract, normalise and VERP-decode e-mail addresses.
 *
 * The character set accepted for a local part is RFC 5322 dot-atom text plus UTF-8 bytes
 * (RFC 6531); quoted local parts are rare in bounces and their quotes are dropped.  A domain
 * must have a dot, or be an address literal in brackets.
 */
#include "bouncepipe/address.h"

#include <stdint.h>
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
            while (de < len && is_domain_char((unsigned char)text[de]))
                de++;
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
        size_t i = strcspn(address, seps);
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
