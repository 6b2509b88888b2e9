/*
 * test_alloc.c - the growth helpers of the allocation modules, against their contracts in
 * alloc.h and arena.h: bp_reserve() (a byte buffer doubled towards the room asked for, up to
 * a ceiling, refused on overflow) and bp_arena_push() (an array in an arena, one zeroed
 * element at a time), each also out of memory through alloc.h's fault hook.  bp_array_push()
 * is tested in test_cli.c, where it came from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/arena.h"
#include "test_support.h"

/* bp_reserve(): one row, a buffer of @p cap bytes (filled with a pattern) asked for @p need
 * bytes; @p want the room it must have after (0: refused, the buffer and its room untouched). */
static void test_reserve(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        size_t cap, need, first, most, want;
    } rows[] = {
        {"empty, nothing needed", 0, 0, 16, SIZE_MAX, 0},
        {"room enough", 32, 10, 16, SIZE_MAX, 32},
        {"exactly the room", 32, 32, 16, SIZE_MAX, 32},
        {"first time: first bytes", 0, 10, 16, SIZE_MAX, 16},
        {"first time: first exactly", 0, 16, 16, SIZE_MAX, 16},
        {"first time: first doubled until it fits", 0, 100, 16, SIZE_MAX, 128},
        {"one byte more: doubled", 16, 17, 64, SIZE_MAX, 32},
        {"doubled twice", 16, 33, 64, SIZE_MAX, 64},
        {"doubled to exactly the need", 16, 64, 64, SIZE_MAX, 64},
        {"ceiling cuts the doubling", 16, 17, 64, 20, 20},
        {"need exactly the ceiling", 16, 20, 64, 20, 20},
        {"doubling reaches exactly the ceiling", 16, 17, 64, 32, 32},
        {"ceiling above the doubling", 16, 17, 64, 1000, 32},
        {"need one past the ceiling: doubled anyway", 16, 21, 64, 20, 32},
        {"ceiling below the room already there", 64, 65, 16, 20, 128},
        {"first time under a ceiling", 0, 10, 16, 12, 12},
        {"first time, no first size: the need", 0, 10, 0, SIZE_MAX, 10},
        {"first time, no first size, nothing needed", 0, 0, 0, SIZE_MAX, 0},
        {"SIZE_MAX needed: overflow", 16, SIZE_MAX, 16, SIZE_MAX, 0},
        {"first time, SIZE_MAX needed: overflow", 0, SIZE_MAX, 16, SIZE_MAX, 0},
        {"past half of SIZE_MAX: overflow", 16, SIZE_MAX / 2 + 2, 16, SIZE_MAX, 0},
        {"room past half of SIZE_MAX cannot double", SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2, 16, SIZE_MAX, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        /* a real buffer of the row's room, or a small one standing in for a room too large
         * to have (only refused rows have one: nothing is realloc'ed there) */
        size_t cap = rows[i].cap, have = cap < 4096 ? cap : 16;
        unsigned char *buf = have > 0 ? malloc(have) : NULL;
        if (have > 0) {
            assert_non_null(buf);
            for (size_t b = 0; b < have; b++)
                buf[b] = (unsigned char)(b * 7 + 1);
        }
        unsigned char *got = bp_reserve(buf, &cap, rows[i].need, rows[i].first, rows[i].most);
        if (rows[i].want == 0 && rows[i].need > 0) {
            if (got != NULL)
                fail_msg("%s: got room %zu, want it refused", rows[i].label, cap);
            if (cap != rows[i].cap)
                fail_msg("%s: refused, but the room changed to %zu", rows[i].label, cap);
            got = buf; /* untouched, still ours */
        } else {
            if (cap != rows[i].want)
                fail_msg("%s: got room %zu, want %zu", rows[i].label, cap, rows[i].want);
            if (rows[i].want == rows[i].cap && got != buf)
                fail_msg("%s: the buffer had the room, yet was replaced", rows[i].label);
            if (rows[i].want > 0 && got == NULL)
                fail_msg("%s: no buffer", rows[i].label);
            for (size_t b = 0; b < have; b++)
                if (got[b] != (unsigned char)(b * 7 + 1))
                    fail_msg("%s: byte %zu lost in the move", rows[i].label, b);
            if (rows[i].want > have)
                memset(got + have, 0xa5, rows[i].want - have); /* all of it is ours (ASan) */
        }
        free(got);
    }
}

/* bp_reserve() out of memory: NULL, the buffer and its room untouched; no allocation while
 * the room is there. */
static void test_reserve_nomem(void **state)
{
    (void)state;
    size_t cap = 16;
    char *buf = malloc(cap);
    assert_non_null(buf);
    memcpy(buf, "fifteen bytes..", 16);
    bp_alloc_set_fault(bp_test_fail_all, NULL);
    char *kept = bp_reserve(buf, &cap, 16, 16, SIZE_MAX);
    char *grown = bp_reserve(buf, &cap, 17, 16, SIZE_MAX);
    bp_alloc_set_fault(NULL, NULL);
    assert_ptr_equal(kept, buf);
    assert_null(grown);
    assert_int_equal(cap, 16);
    assert_string_equal(buf, "fifteen bytes..");
    free(buf);
}

/* bp_arena_push(): @p pushes elements with room @p first the first time; the room after each
 * push doubles when full.  Each element is zeroed and counted, and those before it are kept
 * across the moves. */
static void test_arena_push(void **state)
{
    static const struct {
        const char *label;
        size_t first, pushes, want_cap;
    } rows[] = {
        {"one element: the first room, one", 1, 1, 1},
        {"room for one, then doubled to 2 and to 4", 1, 3, 4},
        {"the first room exactly filled: no growth", 4, 4, 4},
        {"one past the first room: doubled to 8", 4, 5, 8},
        {"the first room doubled three times: 4, 8, 16", 2, 9, 16},
        {"doubled until exactly full: 16 of 16", 2, 16, 16},
        {"a large first room, hardly used", 64, 3, 64},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        long *v = NULL;
        size_t n = 0, cap = 0;
        for (size_t i = 0; i < rows[r].pushes; i++) {
            size_t room_before = cap;
            long *slot = bp_arena_push(*state, &v, &n, &cap, sizeof(*slot), rows[r].first);
            if (slot == NULL)
                fail_msg("%s: push %zu failed", rows[r].label, i);
            if (slot != &v[i] || n != i + 1)
                fail_msg("%s: push %zu: not the element after the last (n %zu)", rows[r].label, i, n);
            if (*slot != 0)
                fail_msg("%s: push %zu: not zeroed", rows[r].label, i);
            size_t want_room = room_before == 0 ? rows[r].first : i < room_before ? room_before : room_before * 2;
            if (cap != want_room)
                fail_msg("%s: push %zu: got room %zu, want %zu", rows[r].label, i, cap, want_room);
            *slot = (long)i * 10 + 1;
        }
        if (cap != rows[r].want_cap)
            fail_msg("%s: got room %zu, want %zu", rows[r].label, cap, rows[r].want_cap);
        for (size_t i = 0; i < n; i++)
            if (v[i] != (long)i * 10 + 1)
                fail_msg("%s: element %zu lost: %ld", rows[r].label, i, v[i]);
    }
    /* an element pushed where one was before (the count taken back) is zeroed again */
    long *v = NULL;
    size_t n = 0, cap = 0;
    *(long *)bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 2) = 42;
    n--;
    long *again = bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 2);
    assert_ptr_equal(again, v);
    assert_int_equal(*again, 0);
    assert_false(bp_arena_failed(*state));
}

/* bp_arena_push() refused: out of memory (the arena says it failed) or a room whose size
 * overflows; the array, its count and its room untouched either way.  While there is room it
 * allocates nothing, so it works even then. */
static void test_arena_push_refused(void **state)
{
    long *v = NULL;
    size_t n = 0, cap = 0;
    for (long i = 0; i < 4; i++)
        *(long *)bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 4) = i + 1;
    long *full = v;
    bp_alloc_set_fault(bp_test_fail_all, NULL);
    void *got = bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 4);
    bp_alloc_set_fault(NULL, NULL);
    assert_null(got);
    assert_true(bp_arena_failed(*state));
    assert_ptr_equal(v, full);
    assert_int_equal(n, 4);
    assert_int_equal(cap, 4);
    for (long i = 0; i < 4; i++)
        assert_int_equal(v[i], i + 1);

    bp_arena_reset(*state);
    v = NULL;
    n = 0;
    cap = 0;
    assert_non_null(bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 4));
    bp_alloc_set_fault(bp_test_fail_all, NULL);
    got = bp_arena_push(*state, &v, &n, &cap, sizeof(*v), 4); /* room for it: no allocation */
    bp_alloc_set_fault(NULL, NULL);
    assert_ptr_equal(got, &v[1]);
    assert_int_equal(n, 2);
    assert_false(bp_arena_failed(*state));

    /* the doubled room of elements this large does not fit in a size_t: refused before any
     * allocation (the array is never read, so a stand-in pointer will do) */
    char stand_in[1];
    char *big = stand_in;
    size_t bn = 4, bcap = 4, size = SIZE_MAX / 4;
    assert_null(bp_arena_push(*state, &big, &bn, &bcap, size, 4));
    assert_ptr_equal(big, stand_in);
    assert_int_equal(bn, 4);
    assert_int_equal(bcap, 4);
    /* and the first room already: SIZE_MAX / 2 elements of 4 bytes */
    char *none = NULL;
    size_t zn = 0, zcap = 0;
    assert_null(bp_arena_push(*state, &none, &zn, &zcap, 4, SIZE_MAX / 2));
    assert_null(none);
    assert_int_equal(zn, 0);
    assert_int_equal(zcap, 0);
}

BP_TEST_MAIN(cmocka_unit_test(test_reserve), cmocka_unit_test(test_reserve_nomem), BP_ARENA_TEST(test_arena_push),
             BP_ARENA_TEST(test_arena_push_refused))
