/*
 * address_fuzzer.c - address normalisation, free-text address search, VERP decoding and
 * the SRS test.
 *
 * The whole input is the address text for the default options; when it holds a NUL, the
 * bytes before it give custom VERP options ("prefix" up to the first byte < 0x20 in it, then
 * separators, last byte the domain separator) and the bytes after it the address.
 */
#include "bouncepipe/address.h"
#include "bouncepipe/arena.h"
#include "bouncepipe/limits.h"
#include "fuzz_common.h"

static void check_address(const char *a)
{
    if (a == NULL)
        return;
    if (strlen(a) > BP_MAX_ADDRESS_BYTES)
        abort(); /* the documented bound */
    if (strchr(a, '@') == NULL)
        abort(); /* a normalised address is local@domain */
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
