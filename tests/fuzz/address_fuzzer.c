/*
 * address_fuzzer.c - address normalisation, free-text address search, VERP decoding and
 * the SRS test; validation (bp_address_check()) of every candidate and of the input itself,
 * an operator's exact address (bp_address_parse()), and the masking of text.h.
 *
 * Promises checked: a candidate is at most BP_MAX_ADDRESS_BYTES and has an '@'; one that
 * bp_address_check() accepts is valid UTF-8 without a control, space or bidi override, and
 * so is what bp_address_parse() returns (which it accepts again, unchanged); masked text is
 * valid UTF-8 with nothing bp_text_char() calls unsafe.
 *
 * The whole input is the address text for the default options; when it holds a NUL, the
 * bytes before it give custom VERP options ("prefix" up to the first byte < 0x20 in it, then
 * separators, last byte the domain separator) and the bytes after it the address.
 */
#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"
#include "fuzz_common.h"

/* Every character of @p s is printable (text.h) and, with @p no_space, not a space either. */
static void check_printable(const char *s, int no_space)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        bp_text_kind kind;
        i += bp_text_char(s + i, len - i, &kind, NULL);
        if (kind != BP_TEXT_PLAIN && (no_space || kind != BP_TEXT_SPACE))
            abort();
    }
}

static void check_address(const char *a)
{
    if (a == NULL)
        return;
    if (strlen(a) > BP_MAX_ADDRESS_BYTES)
        abort(); /* the documented bound */
    if (strchr(a, '@') == NULL)
        abort(); /* a normalised address is local@domain */
    if (bp_address_check(a) == NULL)
        check_printable(a, 1); /* a valid address: nothing to mask, no space */
}

/* What an operator's input becomes: an address that is valid as it is, or a reason. */
static void check_parse(bp_arena *arena, const char *text)
{
    const char *why = NULL;
    const char *a = bp_address_parse(arena, text, &why);
    if ((a == NULL) == (why == NULL))
        abort();
    if (a == NULL)
        return;
    check_address(a);
    const char *again = NULL;
    const char *b = bp_address_parse(arena, a, &again);
    if (bp_address_check(a) != NULL || b == NULL || strcmp(a, b) != 0)
        abort(); /* parsing is idempotent on its own output */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bp_arena *arena = bp_arena_new();
    char *text = fuzz_cstring(data, size);
    if (arena == NULL || text == NULL)
        goto out;
    check_address(bp_address_normalise(arena, text));
    size_t end = 0;
    const char *found = bp_address_find(arena, (const char *)data, size, &end);
    check_address(found);
    if (found != NULL && end > size)
        abort();
    check_address(bp_verp_decode(arena, text, NULL));
    (void)bp_address_is_srs(text);
    (void)bp_address_check(text);
    check_parse(arena, text);
    const char *masked = bp_text_mask(arena, text, BP_MAX_ADDRESS_BYTES);
    if (masked == NULL || strlen(masked) > BP_MAX_ADDRESS_BYTES)
        abort();
    check_printable(masked, 0);

    const char *nul = memchr(data, '\0', size);
    if (nul != NULL) {
        size_t opt_len = (size_t)(nul - (const char *)data);
        char *opts_text = text; /* NUL-terminated at opt_len already */
        const char *address = text + opt_len + 1;
        bp_verp_options opts = {NULL, NULL, '=', NULL};
        char *cut = opts_text;
        while (*cut != '\0' && (unsigned char)*cut >= 0x20)
            cut++;
        if (*cut != '\0') {
            *cut = '\0';
            opts.prefix = opts_text;
            opts.separators = cut + 1;
            size_t sl = strlen(opts.separators);
            if (sl > 0) {
                opts.domain_separator = opts.separators[sl - 1];
                cut[sl] = '\0'; /* last byte is the domain separator, not a separator */
            }
        } else {
            opts.prefix = opts_text;
        }
        check_address(bp_verp_decode(arena, address, &opts));
    }
out:
    free(text);
    bp_arena_free(arena);
    return 0;
}
