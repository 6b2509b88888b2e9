/*
 * rules_startup.c - what the rule database costs a fresh process (issue 3: PowerMTA starts
 * one bouncepipe per message, so loading the shipped rules plus one match must stay under
 * 1 ms).
 *
 *   rules_startup [ITERATIONS]     (default 300)
 *
 * For each sample diagnostic the program re-executes itself ITERATIONS times
 * (/proc/self/exe, so every run is a fresh process with cold allocator, cold rule
 * structures and nothing compiled); the child times bp_rules_new() + bp_rules_load_builtin()
 * + one bp_rules_match() + bp_rules_free() with CLOCK_MONOTONIC and writes the nanoseconds to
 * a pipe.  The parent prints the median, p90 and max in microseconds per sample, and the
 * median wall time of the whole fork+exec+exit for scale (process start is not ours to cut).
 * Exit status 1 when a median is 1000 us or more, so the figure can gate a build.
 *
 * The samples are the cases that cost differently: a rule near the top (a block list), a
 * rule near the end (generic user unknown), a non-ASCII text, and a text no rule matches
 * (every prefilter runs, nothing wins).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bouncepipe/rules.h"

static const struct {
    const char *label;
    const char *text;
} samples[] = {
    {"block list (early rule)",
     "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; "
     "https://www.spamhaus.org/query/ip/192.0.2.10"},
    {"user unknown (late rule)",
     "550 5.1.1 <jdoe@example.com>: Recipient address rejected: User unknown in local recipient table"},
    {"Russian text", "550 Message was not accepted -- Пользователь не найден"},
    {"no rule matches", "250 2.0.0 Ok: queued as 4BX1Fz6Q7Tz9tq8 and this text names nothing in particular"},
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The measured work, in the child. */
static int child(const char *text)
{
    long long t0 = now_ns();
    bp_rules *r = NULL;
    if (bp_rules_new(&r) != BP_OK || bp_rules_load_builtin(r, NULL, NULL, NULL) != BP_OK)
        return 2;
    bp_rule_subject s = {text, strlen(text), NULL, NULL, NULL, BP_SMTP_NONE};
    bp_rule_match m;
    int hit = bp_rules_match(r, &s, &m);
    bp_rules_free(r);
    long long t1 = now_ns();
    printf("%lld %d\n", t1 - t0, hit);
    return 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Run one child; fills its measured ns and the whole wall time of fork+exec+exit. */
static int run_child(const char *text, long long *inner, long long *wall)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "rules_startup", "--child", text, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[64] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *wall = now_ns() - t0;
    if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    *inner = strtoll(buf, NULL, 10);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    int iterations = argc > 1 ? atoi(argv[1]) : 300;
    if (iterations < 1 || iterations > 100000) {
        fprintf(stderr, "usage: rules_startup [ITERATIONS]\n");
        return 64;
    }
    int rc = 0;
    bp_rules *r = NULL;
    long long *inner = calloc((size_t)iterations, sizeof(*inner));
    long long *wall = calloc((size_t)iterations, sizeof(*wall));
    if (inner == NULL || wall == NULL || bp_rules_new(&r) != BP_OK ||
        bp_rules_load_builtin(r, NULL, NULL, NULL) != BP_OK) {
        rc = 70;
        goto out;
    }
    printf("shipped database: %zu rules; %d fresh processes per sample\n", bp_rules_count(r), iterations);
    printf("%-26s %10s %10s %10s %14s\n", "sample", "median us", "p90 us", "max us", "fork+exec us");
    for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
        for (int i = 0; i < iterations; i++)
            if (run_child(samples[k].text, &inner[i], &wall[i]) != 0) {
                fprintf(stderr, "rules_startup: child failed: %s\n", strerror(errno));
                rc = 1;
                goto out;
            }
        qsort(inner, (size_t)iterations, sizeof(*inner), cmp_ll);
        qsort(wall, (size_t)iterations, sizeof(*wall), cmp_ll);
        double median = inner[iterations / 2] / 1000.0;
        printf("%-26s %10.1f %10.1f %10.1f %14.1f\n", samples[k].label, median, inner[(iterations * 9) / 10] / 1000.0,
               inner[iterations - 1] / 1000.0, wall[iterations / 2] / 1000.0);
        if (median >= 1000.0)
            rc = 1; /* over the budget */
    }
out:
    bp_rules_free(r);
    free(inner);
    free(wall);
    return rc;
}
