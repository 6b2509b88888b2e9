/*
 * clock.c - the monotonic clock, sleeping and back-off (contract in
 * include/bouncepipe/clock.h).
 */
#include "bouncepipe/clock.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

long long bp_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bp_sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

unsigned bp_backoff_seed(void)
{
    return (unsigned)getpid() ^ (unsigned)bp_monotonic_ms();
}

long long bp_backoff_ms(unsigned *seed, unsigned attempt, unsigned base_ms, unsigned cap_ms)
{
    unsigned long long top = cap_ms;
    if (attempt < 32 && ((unsigned long long)base_ms << attempt) < top)
        top = (unsigned long long)base_ms << attempt;
    if (top == 0)
        top = 1;
    *seed = *seed * 1103515245u + 12345u;
    return 1 + (long long)((*seed >> 16) % top);
}

int bp_utc_format(long long t, bp_utc_layout layout, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    size_t n = 0;
    if (size == 0)
        return 0;
    if ((long long)tt == t && gmtime_r(&tt, &tm) != NULL) {
        switch (layout) {
        case BP_UTC_TIME: n = strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm); break;
        case BP_UTC_DAY: n = strftime(buf, size, "%Y-%m-%d", &tm); break;
        case BP_UTC_MONTH: n = strftime(buf, size, "%Y-%m", &tm); break;
        case BP_UTC_MINUTE: n = strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm); break;
        }
    }
    if (n == 0)
        buf[0] = '\0';
    return n > 0;
}

char *bp_utc_text(long long t, bp_utc_layout layout, char *buf, size_t size)
{
    if (!bp_utc_format(t, layout, buf, size) && size > 0)
        snprintf(buf, size, "%lld", t);
    return buf;
}
