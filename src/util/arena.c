/*
 * arena.c - region allocator for per-message data.
 *
 * Blocks are chained; a request larger than the default block gets a block of its own.
 * bp_arena_reset() keeps the first block so that a replay of a million messages does not
 * call malloc for each.  bp_arena_alloc() zeroes memory so structs start NULL-initialised;
 * the string copies do not (they overwrite every byte, and zeroing message bodies first
 * was measurable: docs/performance.md).  Every allocation asks alloc.h's fault hook, not only
 * those that need a new block: which one needs a block depends on the sizes before it, so a
 * test that fails the Nth allocation must be able to fail any of them.  A failure is
 * remembered (bp_arena_failed()) until the arena is reset.
 */
#include "bouncepipe/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

#define ARENA_BLOCK_BYTES (64u * 1024u)
#define ARENA_ALIGN       16u

struct arena_block {
    struct arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct bp_arena {
    struct arena_block *head; /* newest block; the oldest is the kept first block */
    int failed;               /* an allocation failed since the arena was made or reset */
};

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = bp_malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

bp_arena *bp_arena_new(void)
{
    bp_arena *a = bp_calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->head = block_new(ARENA_BLOCK_BYTES);
    if (a->head == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void bp_arena_free(bp_arena *arena)
{
    if (arena == NULL)
        return;
    struct arena_block *b = arena->head;
    while (b != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(arena);
}

void bp_arena_reset(bp_arena *arena)
{
    struct arena_block *b = arena->head;
    while (b->next != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    arena->head = b;
    arena->failed = 0;
}

int bp_arena_failed(const bp_arena *arena)
{
    return arena->failed;
}

/* @size bytes, 16-aligned, NOT zeroed: for callers that overwrite all of them at once. */
static void *arena_alloc_raw(bp_arena *arena, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    /* any allocation may be the one that needs a new block: the fault hook may fail each */
    if (need < size || bp_alloc_should_fail(size)) {
        arena->failed = 1;
        return NULL;
    }
    struct arena_block *b = arena->head;
    if (b->size - b->used < need) {
        size_t bsize = need > ARENA_BLOCK_BYTES ? need : ARENA_BLOCK_BYTES;
        struct arena_block *nb = block_new(bsize);
        if (nb == NULL) {
            arena->failed = 1;
            return NULL;
        }
        if (need > ARENA_BLOCK_BYTES) {
            /* a large block goes behind the head so the head keeps its free space */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            return nb->data;
        }
        nb->next = b;
        arena->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *bp_arena_alloc(bp_arena *arena, size_t size)
{
    void *p = arena_alloc_raw(arena, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

char *bp_arena_strndup(bp_arena *arena, const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    char *p = arena_alloc_raw(arena, len + 1); /* not zeroed: copied over right away */
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *bp_arena_strdup(bp_arena *arena, const char *s)
{
    return s == NULL ? NULL : bp_arena_strndup(arena, s, strlen(s));
}

void *bp_arena_grow(bp_arena *arena, void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    size_t room = bp_grow_room(n, *cap, size, first);
    if (room == *cap)
        return items;
    char *all = room > 0 ? bp_arena_alloc(arena, room * size) : NULL;
    if (all != NULL && n > 0)
        memcpy(all, items, n * size); /* the old array stays in the arena until it goes */
    if (all != NULL)
        *cap = room;
    return all;
}

static void *grow_in_arena(void *arena, void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    return bp_arena_grow(arena, items, n, cap, size, first);
}

void *bp_arena_push(bp_arena *arena, void *arrayp, size_t *n, size_t *cap, size_t size, size_t first)
{
    return bp_array_push_by(grow_in_arena, arena, arrayp, n, cap, size, first);
}

char *bp_arena_printf(bp_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = arena_alloc_raw(arena, (size_t)n + 1); /* vsnprintf writes all n + 1 bytes */
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
