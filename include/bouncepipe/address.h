/*
 * address.h - e-mail addresses as bouncepipe keeps them: extraction from report fields and
 * free text, normalisation, and VERP decoding.
 *
 * A normalised address is "local@domain" with the domain lower-cased and the local part as
 * written (RFC 5321 2.4: local parts may be case-sensitive), at most BP_MAX_ADDRESS_BYTES.
 * Extraction returns candidates; bp_address_check() says whether one is a valid address (and
 * why not), bp_address_parse() reads an operator's address exactly.
 * SRS0/SRS1 addresses are forwarders' rewrites, not VERP, and are never decoded.
 *
 * Ownership: returned strings belong to the arena passed in.
 */
#ifndef BOUNCEPIPE_ADDRESS_H
#define BOUNCEPIPE_ADDRESS_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/regex.h"

/**
 * Normalise one address as found in a field: accepts "rfc822; <A@B.C>", "<A@B.C>",
 * "Name <A@B.C>", "A@B.C", with stray quotes, brackets and trailing dots.
 * @return the normalised address, or NULL when @p text holds no plausible address.
 */
char *bp_address_normalise(bp_arena *arena, const char *text);

/**
 * Find the first plausible address in @p len bytes of free text.  An address found inside
 * something else (a control character, an escape sequence or another '@' next to it) is a
 * fragment, and skipped whole: "ops ESC [8m@example.com" holds no "8m@example.com".
 * @param end if not NULL, receives the offset just past the address found
 * @return the normalised address, or NULL.
 */
char *bp_address_find(bp_arena *arena, const char *text, size_t len, size_t *end);

/** VERP decoding settings: either a pattern, or the local-part prefix ("bounces", or NULL for
 *  any) and the characters that separate prefix from the encoded address and user from
 *  domain. */
typedef struct bp_verp_options {
    const char *prefix;      /**< NULL or "" accepts any prefix */
    const char *separators;  /**< after the prefix; default "-+" (PowerMTA, Postfix) */
    char domain_separator;   /**< between user and domain; default '=' */
    const bp_regex *pattern; /**< NULL, or the VERP form as a PCRE2 pattern searched in the
                                  bounce address (local@host), whose named groups "local" and
                                  "domain" are the encoded recipient; prefix and separators are
                                  then not used (bp_verp_pattern_compile()) */
} bp_verp_options;

/** The names of the preset VERP forms bp_verp_pattern_text() knows, NULL-terminated:
 *  "powermta" (prefix-user=domain@host), "postfix" (prefix+user=domain@host), "any" (either,
 *  the form decoded without a pattern).  Without a prefix a preset splits where the decoding
 *  without a pattern splits: after a list server's bounce word, else at the first separator. */
extern const char *const bp_verp_presets[];

/**
 * The pattern text of a VERP form: @p form is a preset name (bp_verp_presets, ASCII case
 * ignored), built with @p prefix (NULL or "" for any prefix) and @p domain_separator ('\0'
 * for '='); anything else is taken as a PCRE2 pattern as it is.
 * @return an arena string, or NULL when out of memory.
 */
char *bp_verp_pattern_text(bp_arena *arena, const char *form, const char *prefix, char domain_separator);

/**
 * Compile a VERP pattern (bp_verp_pattern_text()) through the one PCRE2 wrapper, caseless.
 * @param err receives why it is refused: it does not compile, or lacks the named group
 *        "local" or "domain"
 * @return the code (the caller frees it with bp_regex_free()), or NULL.
 */
bp_regex *bp_verp_pattern_compile(const char *text, char *err, size_t err_size);

/**
 * Decode a VERP envelope recipient: "bounces-jdoe=yahoo.com@bounces.example.com" (PowerMTA)
 * and "bounces+jdoe=yahoo.com@..." (Postfix) give "jdoe@yahoo.com".  The prefix and both
 * separators come from @p opts; the domain follows the last domain separator, so the user
 * part may contain it.  With opts->pattern, the pattern decides instead: it is searched in the
 * bounce address (it anchors itself with ^ and $ as it means to), and its groups "local" and
 * "domain" make the recipient
 * ("customer1-campaign563-uniq498294-jdoe=example.net@bounces.example.com" with a pattern for
 * that form).  @p address may be bracketed or carry a display name (a header value); it must
 * have its own "@host".
 * @param opts NULL for the defaults
 * @return the decoded, normalised address, or NULL when @p address is not VERP: no prefix
 *         match, no domain separator, no host, or an SRS0/SRS1 address (also behind a
 *         prefix).
 */
char *bp_verp_decode(bp_arena *arena, const char *address, const bp_verp_options *opts);

/**
 * Validate an address as extraction gives it ("local@domain"): valid UTF-8, a local part of
 * atext, dots and printable non-ASCII characters (RFC 6531), and a domain of LDH labels (an
 * internationalised domain as IDNA encodes it, via GLib) or an IPv4 / IPv6 address literal,
 * at most BP_MAX_ADDRESS_BYTES in all.  Dots in a row, a dot before the '@', '_' in a domain
 * and long local parts are tolerated (address.c says why).  Extraction finds candidates;
 * this decides which are addresses: every recipient an event, the store or an output gets
 * has passed it.
 * @return NULL when @p address is valid; else a static reason in words, e.g. "not valid UTF-8
 *         (an 8-bit character set such as Latin-1?)".
 */
const char *bp_address_check(const char *address);

/**
 * Parse operator input (a command-line argument, a line of an imported list) as exactly one
 * address: white space around it and one pair of angle brackets may be there, nothing else
 * ("foo' OR 1=1 --@evil.example" is an error, not "--@evil.example").  The domain is
 * lower-cased and loses a trailing root dot, as extraction does.
 * @param why receives NULL, or the reason @p text is not an address (bp_address_check()'s,
 *        "no '@'", "empty")
 * @return the normalised address, or NULL.
 */
char *bp_address_parse(bp_arena *arena, const char *text, const char **why);

/** @return non-zero when @p opts names our own VERP form explicitly (a prefix or a pattern):
 *  an address it decodes is then certainly one of our bounce addresses. */
int bp_verp_explicit(const bp_verp_options *opts);

/** @return non-zero when @p address is an SRS0/SRS1 rewritten address. */
int bp_address_is_srs(const char *address);

#endif
