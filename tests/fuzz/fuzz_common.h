/*
 * fuzz_common.h - what every harness shares: the libFuzzer entry point's prototype, a
 * NUL-terminated copy of the input for APIs that take C strings, and the mode byte of the
 * harnesses with several paths.
 *
 * The harnesses are built two ways (tests/fuzz/CMakeLists.txt): with clang and libFuzzer
 * (-fsanitize=fuzzer), and with any compiler against replay_main.c, which feeds every seed
 * file to LLVMFuzzerTestOneInput() so that the normal test run replays the corpora.
 */
#ifndef BOUNCEPIPE_FUZZ_COMMON_H
#define BOUNCEPIPE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'ed NUL-terminated copy of the input (NULL when out of memory); caller frees. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return NULL;
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The first input byte picks one of @p n_modes paths of a harness: @return it (0 to
 * @p n_modes - 1) and step @p data and @p size past it; -1 for an empty input. */
static inline int fuzz_take_mode(const uint8_t **data, size_t *size, unsigned n_modes)
{
    if (*size == 0)
        return -1;
    unsigned mode = (*data)[0] % n_modes;
    (*data)++;
    (*size)--;
    return (int)mode;
}

#endif
