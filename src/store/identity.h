/*
 * identity.h - when two addresses are the same address (internal to src/store/).
 *
 * PowerMTA lowercases $to, its accounting records keep the spelling the sender used, users
 * type what they like: the store takes an address's identity to be case-insensitive in the
 * local part and the domain alike, and keys every address by bp_address_key() (docs/store.md
 * "Identity").  The spelling first recorded is kept for display.
 *
 * Ownership: the key is malloc'ed; the caller frees it.
 */
#ifndef BOUNCEPIPE_STORE_IDENTITY_H
#define BOUNCEPIPE_STORE_IDENTITY_H

/**
 * The identity key of @p address: for ASCII text, the text with A-Z lowered; for valid UTF-8,
 * NFC(casefold(NFD(text))) (GLib's g_utf8_normalize() and g_utf8_casefold(): Unicode's
 * canonical caseless match, so "JÖRG", "jörg" and "jo\u0308rg" are one address); for text
 * that is not UTF-8 (or whose fold would pass BP_MAX_ADDRESS_KEY_BYTES), A-Z lowered.
 * @return the key (malloc'ed), or NULL when @p address is NULL or memory ran out
 */
char *bp_address_key(const char *address);

#endif
