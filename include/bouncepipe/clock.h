/*
 * clock.h - time: the monotonic clock, sleeping, the back-off of every retry loop, and
 * dates in UTC as text.
 *
 * Waits for a busy store (SQLite's busy handler, PostgreSQL's migration retries), the
 * delivery loop's pauses and the DMARC reader's name look-ups measure time with one
 * monotonic clock, in milliseconds: the wall clock may jump (NTP, an operator), which would
 * end a wait early or never.  Processes that retry the same thing at the same moment (pipe
 * processes waiting for one SQLite writer, hosts creating one PostgreSQL schema) spread out
 * by a random back-off drawn from a seed of their own, so that they do not retry in lockstep;
 * the generator is a small LCG because the spread needs no more and the store must not touch
 * the program's rand() state.
 * Every date bouncepipe prints is UTC (the ledger keeps seconds since the epoch), written
 * by one function so that a time out of the calendar's range is met in one place.
 * Ownership: nothing is allocated; the caller keeps the seed and the buffers.
 */
#ifndef BOUNCEPIPE_CLOCK_H
#define BOUNCEPIPE_CLOCK_H

#include <stddef.h>

/** Milliseconds of CLOCK_MONOTONIC (since an arbitrary point: compare, never print). */
long long bp_monotonic_ms(void);

/** Sleep @p ms milliseconds; nothing when @p ms <= 0.  A signal ends the sleep early. */
void bp_sleep_ms(long long ms);

/** A seed for bp_backoff_ms() that differs between processes started at the same moment. */
unsigned bp_backoff_seed(void);

/**
 * The delay before retry number @p attempt (0 first): a random 1..min(@p base_ms << attempt,
 * @p cap_ms) milliseconds (at least 1), drawn from and advancing @p *seed.
 */
long long bp_backoff_ms(unsigned *seed, unsigned attempt, unsigned base_ms, unsigned cap_ms);

/** How a date is written: the layouts bouncepipe's outputs use. */
typedef enum bp_utc_layout {
    BP_UTC_TIME,   /**< 2026-03-10T09:14:05Z (ISO 8601: every timestamp of the outputs) */
    BP_UTC_DAY,    /**< 2026-03-10 */
    BP_UTC_MONTH,  /**< 2026-03 */
    BP_UTC_MINUTE, /**< 2026-03-10 09:14 UTC (the HTML report, for people) */
} bp_utc_layout;

/**
 * @p t (seconds since the epoch) in UTC, written as @p layout says into @p buf.
 * @return 1, or 0 (and @p buf "") when it has no such date (out of range) or @p size is too
 * small; the caller chooses what to show then.
 */
int bp_utc_format(long long t, bp_utc_layout layout, char *buf, size_t size);

/** bp_utc_format() for the outputs: @p t as @p layout says, or as a number of seconds when it
 *  has no such date (a size of 32 holds either).  @return @p buf. */
char *bp_utc_text(long long t, bp_utc_layout layout, char *buf, size_t size);

#endif
