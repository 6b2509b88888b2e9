/*
 * effort.c - the per-message effort budget (contract in include/bouncepipe/effort.h).
 *
 * The current budget is a thread-local pointer: the PCRE2 wrapper and the scanners charge the
 * message being processed without every function between bp_process_message() and them
 * passing it along.  Budgets nest (bp_effort_begin() keeps the outer one and bp_effort_end()
 * restores it), so that a caller bounding a part of a message does not lose the message's.
 * Time is the CPU time of the thread (CLOCK_THREAD_CPUTIME_ID), not the wall clock: the budget
 * bounds what a message costs, and a machine busy with other work must not cut a message
 * short (a DSN for 1,000 recipients left to the codes because the host was loaded).  Reading
 * it is a system call (about 330 ns), so it is read at every CLOCK_EVERY-th check only: before
 * PCRE2 searches and in the scanners' loops, never inside a search, so a single search is
 * bounded by the PCRE2 limits and the search window instead (limits.h).
 * Under valgrind a program runs some fifty times slower, so the time budget is scaled by
 * VALGRIND_SLOWDOWN there: the memory checks of the broken corpus (make valgrind-broken) must
 * see the same outcomes as a real run, and the PCRE2 work budget still bounds a hostile text.
 */
#include "bouncepipe/effort.h"

#include <stddef.h>
#include <time.h>

#include "bouncepipe/limits.h"

#ifdef BP_HAVE_VALGRIND_H /* CMakeLists.txt: when the header is there */
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#define VALGRIND_SLOWDOWN 100u

/* Checks between two readings of the clock: 16 searches of at most a window each. */
#define CLOCK_EVERY 16u

static _Thread_local bp_effort *current;

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bp_effort_begin_with(bp_effort *e, uint64_t milliseconds, uint64_t searches)
{
    *e = (bp_effort){0};
    e->started_ns = now_ns();
    if (RUNNING_ON_VALGRIND)
        milliseconds *= VALGRIND_SLOWDOWN;
    e->deadline_ns = milliseconds > 0 ? e->started_ns + milliseconds * 1000000u : 0;
    e->searches_max = searches;
    e->outer = current;
    current = e;
}

void bp_effort_begin(bp_effort *e)
{
    bp_effort_begin_with(e, BP_EFFORT_MILLISECONDS, BP_EFFORT_REGEX_SEARCHES);
}

void bp_effort_end(bp_effort *e)
{
    e->elapsed_ns = now_ns() - e->started_ns;
    if (current == e)
        current = e->outer;
    e->outer = NULL;
}

bp_effort *bp_effort_current(void)
{
    return current;
}

void bp_effort_stage(const char *stage)
{
    if (current != NULL)
        current->stage = stage;
}

static int run_out(bp_effort *e, bp_effort_cut cut, uint64_t now)
{
    e->cut = cut;
    e->cut_in = e->stage;
    e->cut_after_ns = now - e->started_ns;
    return 0;
}

int bp_effort_left(void)
{
    bp_effort *e = current;
    if (e == NULL)
        return 1;
    if (e->cut != BP_EFFORT_OK)
        return 0;
    if (e->deadline_ns == 0 || ++e->checks % CLOCK_EVERY != 0)
        return 1;
    uint64_t now = now_ns();
    return now < e->deadline_ns ? 1 : run_out(e, BP_EFFORT_TIME, now);
}

int bp_effort_search(void)
{
    bp_effort *e = current;
    if (e == NULL)
        return 1;
    if (!bp_effort_left())
        return 0;
    if (e->searches_max > 0 && e->searches >= e->searches_max)
        return run_out(e, BP_EFFORT_REGEX, now_ns());
    e->searches++;
    return 1;
}

const char *bp_effort_cut_name(bp_effort_cut cut)
{
    switch (cut) {
    case BP_EFFORT_TIME: return "time";
    case BP_EFFORT_REGEX: return "PCRE2 work";
    case BP_EFFORT_OK: break;
    }
    return "";
}
