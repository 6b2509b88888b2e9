/*
 * alloc.h - the allocation functions of bouncepipe's own code, and the one hook that makes
 * them fail on purpose (fault injection, as SQLite's test_malloc.c and libssh's OOM fuzzer
 * do).
 *
 * Every malloc, calloc, realloc, strdup and strndup of src/ goes through these (the ctest case
 * alloc_hook checks that no other call is left), and so does PCRE2's memory: the one PCRE2
 * wrapper (regex.h) hands PCRE2 a general context whose allocator is bp_malloc().  They
 * behave as the C library's functions do; memory they return is released with free().
 * Without a hook (always, outside tests) they cost one pointer test more than the C library.
 *
 * The hook (bp_alloc_set_fault()) is asked before each allocation; when it says fail, the
 * function returns NULL without allocating, and callers must then answer BP_ERR_NOMEM with
 * nothing half-done.  tests/unit/oom_inject.c uses it to fail the Nth allocation of a message's
 * way through parse -> classify -> record for every N.  GLib and GMime allocate with
 * g_malloc(), which aborts instead of failing: that boundary is in docs/hardening.md.
 *
 * Ownership: the caller owns what these return.  The hook is process-wide and not
 * synchronised: set it only while no other thread allocates (tests).
 */
#ifndef BOUNCEPIPE_ALLOC_H
#define BOUNCEPIPE_ALLOC_H

#include <stddef.h>

/** malloc(); NULL when out of memory or when the hook says fail. */
void *bp_malloc(size_t size);
/** calloc(); NULL when out of memory, on overflow, or when the hook says fail. */
void *bp_calloc(size_t n, size_t size);
/** realloc(); on failure NULL and @p p untouched (still the caller's to free). */
void *bp_realloc(void *p, size_t size);
/** The room (in items) an array of @p n items of @p size bytes with room for @p cap needs for
 *  one more: @p cap while there is room, else twice it (@p first the first time); 0 when that
 *  would overflow. */
size_t bp_grow_room(size_t n, size_t cap, size_t size, size_t first);
/**
 * Room for one more item in a malloc'ed array of @p n items of @p size bytes that has room for
 * @p *cap: @p items itself while there is room, else the array realloc'ed to twice its room
 * (@p first items the first time) with *cap updated.
 * @return the array to keep, or NULL when out of memory (@p items still holds the @p n items)
 */
void *bp_grow(void *items, size_t n, size_t *cap, size_t size, size_t first);
/**
 * Room for @p need bytes in a malloc'ed buffer of @p *cap bytes: @p buf itself when it has it,
 * else the buffer realloc'ed to its room doubled (@p first bytes the first time, @p need when
 * @p first is 0) until @p need fits, but no more than @p most when that holds @p need (SIZE_MAX: no bound); *cap
 * updated.
 * @return the buffer to keep, or NULL when out of memory or on overflow (@p buf untouched).
 */
void *bp_reserve(void *buf, size_t *cap, size_t need, size_t first, size_t most);
/** strdup(); NULL when out of memory or when the hook says fail. */
char *bp_strdup(const char *s);
/** strndup(): at most @p n bytes of @p s, NUL-terminated. */
char *bp_strndup(const char *s, size_t n);
/** asprintf(): the formatted text in memory of its own; NULL when out of memory. */
char *bp_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Append one element to a growing array: @p arrayp is the address of the array pointer (a
 * `T **`, NULL-initialised), @p n its count, @p cap its room; when full it is reallocated to
 * twice its room (@p first elements the first time): bp_grow() and the append.
 * @return the new element, zeroed, counted in @p n; or NULL when out of memory or on overflow
 *         (then the array, @p n and @p cap are untouched: still the caller's to free).
 */
void *bp_array_push(void *arrayp, size_t *n, size_t *cap, size_t size, size_t first);

/** qsort() of @p n items, which may be none at a NULL @p items (qsort() takes no NULL array,
 *  even of nothing: UBSan says so). */
void bp_sort(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *));
/** A growth rule: bp_grow()'s contract, with @p ctx (bp_arena_grow(): the arena). */
typedef void *(*bp_grow_fn)(void *ctx, void *items, size_t n, size_t *cap, size_t size, size_t first);
/** bp_array_push() with the array grown by @p grow (with @p ctx): the one push behind it and
 *  bp_arena_push() (arena.h). */
void *bp_array_push_by(bp_grow_fn grow, void *ctx, void *arrayp, size_t *n, size_t *cap, size_t size, size_t first);

/**
 * The fault hook: called before every allocation above with its size.
 * @return non-zero to make that allocation fail (return NULL).
 */
typedef int (*bp_alloc_fault_fn)(void *user, size_t size);

/** Install @p fn (NULL: none, the default) with @p user passed to it.  For tests. */
void bp_alloc_set_fault(bp_alloc_fault_fn fn, void *user);

/**
 * Ask the hook about an allocation of @p size made elsewhere (a library's allocator that a
 * test routes through the same count, e.g. SQLite's).  @return non-zero: fail it.
 */
int bp_alloc_should_fail(size_t size);

#endif
