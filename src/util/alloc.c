/*
 * alloc.c - bouncepipe's allocation functions and their fault hook (contract in
 * include/bouncepipe/alloc.h).
 *
 * Each function asks the hook first (when one is set) and otherwise is the C library's.
 * bp_strdup() and bp_strndup() allocate through bp_malloc() so that they count as one
 * allocation each, as every other call does; bp_array_push() grows through bp_realloc() and
 * bp_strdup_printf() allocates through bp_malloc().
 */
#include "bouncepipe/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bp_alloc_fault_fn fault_fn;
static void *fault_user;

void bp_alloc_set_fault(bp_alloc_fault_fn fn, void *user)
{
    fault_fn = fn;
    fault_user = user;
}

int bp_alloc_should_fail(size_t size)
{
    return fault_fn != NULL && fault_fn(fault_user, size);
}

void *bp_malloc(size_t size)
{
    if (bp_alloc_should_fail(size))
        return NULL;
    return malloc(size);
}

void *bp_calloc(size_t n, size_t size)
{
    if (bp_alloc_should_fail(n * size))
        return NULL;
    return calloc(n, size);
}

void *bp_realloc(void *p, size_t size)
{
    if (bp_alloc_should_fail(size))
        return NULL;
    return realloc(p, size);
}

size_t bp_grow_room(size_t n, size_t cap, size_t size, size_t first)
{
    if (n < cap)
        return cap;
    size_t room = cap > 0 ? cap * 2 : first;
    return room > cap && room <= SIZE_MAX / size ? room : 0;
}

void *bp_grow(void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    size_t room = bp_grow_room(n, *cap, size, first);
    void *all = room == *cap ? items : room > 0 ? bp_realloc(items, room * size) : NULL;
    if (all != NULL)
        *cap = room;
    return all;
}

void *bp_reserve(void *buf, size_t *cap, size_t need, size_t first, size_t most)
{
    if (need <= *cap)
        return buf;
    size_t room = *cap > 0 ? *cap : first > 0 ? first : need; /* no first size: the need */
    while (room < need) {
        if (room > SIZE_MAX / 2)
            return NULL;
        room *= 2;
    }
    if (room > most && most >= need)
        room = most;
    void *all = bp_realloc(buf, room);
    if (all != NULL)
        *cap = room;
    return all;
}

char *bp_strdup(const char *s)
{
    return bp_strndup(s, strlen(s));
}

char *bp_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = bp_malloc(len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *bp_array_push_by(bp_grow_fn grow, void *ctx, void *arrayp, size_t *n, size_t *cap, size_t size, size_t first)
{
    char *v = NULL;
    memcpy(&v, arrayp, sizeof(v)); /* the caller's T *: object pointers share one representation here */
    char *all = grow(ctx, v, *n, cap, size, first);
    if (all == NULL)
        return NULL;
    memcpy(arrayp, &all, sizeof(all));
    char *slot = all + (*n)++ * size;
    memset(slot, 0, size);
    return slot;
}

void bp_sort(void *items, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(items, n, size, cmp);
}

static void *grow_malloced(void *ctx, void *items, size_t n, size_t *cap, size_t size, size_t first)
{
    (void)ctx;
    return bp_grow(items, n, cap, size, first); /* the one growth rule */
}

void *bp_array_push(void *arrayp, size_t *n, size_t *cap, size_t size, size_t first)
{
    return bp_array_push_by(grow_malloced, NULL, arrayp, n, cap, size, first);
}

char *bp_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? bp_malloc((size_t)n + 1) : NULL;
    if (s != NULL) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}
