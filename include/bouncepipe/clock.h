/*
 * clock.h - the monotonic clock, sleeping, and the back-off of every retry loop.
 *
 * Waits for a busy store (SQLite's busy handler, PostgreSQL's migration retries), the
 * delivery loop's pauses and the DMARC reader's name look-ups measure time with one
 * monotonic clock, in milliseconds: the wall clock may jump (NTP, an operator), which would
 * end a wait early or never.  Processes that retry the same thing at the same moment (pipe
 * processes waiting for one SQLite writer, hosts creating one PostgreSQL schema) spread out
 * by a random back-off drawn from a seed of their own, so that they do not retry in lockstep;
 * the generator is a small LCG because the spread needs no more and the store must not touch
 * the program's rand() state.
 * Ownership: nothing is allocated; the caller keeps the seed.
 */
#ifndef BOUNCEPIPE_CLOCK_H
#define BOUNCEPIPE_CLOCK_H

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

#endif
