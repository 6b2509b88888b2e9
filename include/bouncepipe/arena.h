/*
 * arena.h - a region allocator: everything parsed from one message lives in one arena and
 * is released at once with bp_arena_reset() or bp_arena_free().
 *
 * Ownership: strings and structs returned by bp_arena_* belong to the arena; callers never
 * free them one by one.  Allocation failure: bp_arena_alloc() and the others return NULL, and
 * the arena remembers it until bp_arena_reset() (bp_arena_failed()).  Parsers take many a
 * NULL for "absent" (a field that could not be copied reads as a field that was not there),
 * so whoever finishes the work done in an arena asks bp_arena_failed() and reports
 * BP_ERR_NOMEM rather than a result with holes (bp_process_message() does).
 */
#ifndef BOUNCEPIPE_ARENA_H
#define BOUNCEPIPE_ARENA_H

#include <stddef.h>

typedef struct bp_arena bp_arena;

/** @return a new, empty arena or NULL when out of memory. */
bp_arena *bp_arena_new(void);
/** Release every block of @p arena and the arena itself; NULL is allowed. */
void bp_arena_free(bp_arena *arena);
/** Forget all allocations but keep the first block for reuse (fast path between messages);
 *  also forgets that one failed. */
void bp_arena_reset(bp_arena *arena);
/** @return non-zero when an allocation from @p arena failed since it was made or reset: what
 *  was built in it may lack parts and must not be used as a result. */
int bp_arena_failed(const bp_arena *arena);
/** @return @p size zeroed bytes aligned for any type, or NULL when out of memory. */
void *bp_arena_alloc(bp_arena *arena, size_t size);
/** @return a NUL-terminated copy of @p len bytes of @p s, or NULL (also when @p s is NULL). */
char *bp_arena_strndup(bp_arena *arena, const char *s, size_t len);
/** @return a NUL-terminated copy of @p s, or NULL (also when @p s is NULL). */
char *bp_arena_strdup(bp_arena *arena, const char *s);
/**
 * Room for one more item in an array of @p n items of @p size bytes made in @p arena, with
 * room for @p *cap: @p items itself while there is room, else a copy in @p arena with twice the
 * room (@p first items the first time), *cap updated.
 * @return the array to keep, or NULL when out of memory (@p items unchanged)
 */
void *bp_arena_grow(bp_arena *arena, void *items, size_t n, size_t *cap, size_t size, size_t first);
/**
 * Append one element to an array made in @p arena, as bp_array_push() (alloc.h) does to a
 * malloc'ed one: @p arrayp is the address of the array pointer (a `T **`), @p n its count,
 * @p cap its room; grown by bp_arena_grow().
 * @return the new element, zeroed, counted in @p n; or NULL when out of memory or on overflow
 *         (then the array, @p n and @p cap are untouched).
 */
void *bp_arena_push(bp_arena *arena, void *arrayp, size_t *n, size_t *cap, size_t size, size_t first);
/** printf into the arena. @return the new string or NULL. */
char *bp_arena_printf(bp_arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
