/*
 * identity.c - an address's identity key (see identity.h for the rule).
 *
 * bp_address_key()   ASCII: A-Z lowered, byte for byte (the common case, no allocation but
 *                    the copy).  UTF-8 with other characters: GLib's Unicode normalisation and
 *                    case folding, NFC(casefold(NFD(s))).  Anything else: A-Z lowered.
 *
 * The domain is folded with the local part: DNS names compare without case, and an IDN's
 * U-labels fold as Unicode text (A-labels, "xn--...", are ASCII and only lowered).  The key is
 * a function of the text alone, the same in every process and on both backends (the SQLite
 * migration calls it through an SQL function, PostgreSQL's through store.c's hooks).
 *
 * Ownership: the key is malloc'ed; GLib's intermediate strings are freed here.
 */
#include "identity.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/limits.h"

/* @p n bytes of @p s with A-Z lowered, malloc'ed. */
static char *ascii_lowered(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return out;
}

char *bp_address_key(const char *address)
{
    if (address == NULL)
        return NULL;
    size_t n = strlen(address);
    size_t i = 0;
    while (i < n && (unsigned char)address[i] < 0x80)
        i++;
    if (i == n || !g_utf8_validate(address, (gssize)n, NULL))
        return ascii_lowered(address, n);
    char *key = NULL;
    gchar *nfd = g_utf8_normalize(address, (gssize)n, G_NORMALIZE_NFD);                 /* owned: freed below */
    gchar *folded = nfd != NULL ? g_utf8_casefold(nfd, -1) : NULL;                      /* owned: freed below */
    gchar *nfc = folded != NULL ? g_utf8_normalize(folded, -1, G_NORMALIZE_NFC) : NULL; /* owned */
    if (nfc != NULL && strlen(nfc) <= BP_MAX_ADDRESS_KEY_BYTES)
        key = strdup(nfc);
    else
        key = ascii_lowered(address, n); /* a fold past the cap: the bytes, as for non-UTF-8 */
    g_free(nfc);
    g_free(folded);
    g_free(nfd);
    return key;
}
