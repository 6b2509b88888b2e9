/*
 * effort.h - the effort one message may cost: a time budget and a PCRE2 work budget
 * (limits.h: BP_EFFORT_MILLISECONDS, BP_EFFORT_REGEX_SEARCHES), after which the rest of the
 * message is treated as unrecognised text.
 *
 * Anyone who can mail the bounce domain chooses the text bouncepipe scans, and pipe mode
 * holds up the MTA while it does.  Each scan is bounded (limits.h), but many bounded scans
 * can still add up; the budget bounds the sum.  bp_process_message() begins a budget for each
 * message and ends it; while it runs it is the calling thread's current budget, which the
 * PCRE2 wrapper (regex.h) charges for every search and the text-bounce scanners consult in
 * their loops.  Once it runs out it stays out: every later search of that message finds
 * nothing, the text-bounce scan gives up (the message is unrecognised: recorded as such, or
 * quarantined by pipe mode, never lost), and rules not yet run leave the category to the
 * codes.  The budget records what ran out and where, so that explain can say so.  Memory is a
 * cut too (bp_effort_out_of_memory()): a search PCRE2 could not run for want of memory has no
 * answer, so the message must fail rather than be classified as if it had not matched.
 *
 * Time is the thread's CPU time, so that a loaded machine does not cut a message short, and
 * it is a backstop: outcomes should not depend on the machine, so the PCRE2 work budget (a
 * count of searches, each over at most BP_REGEX_WINDOW_BYTES start positions) is the one a
 * hostile text meets first, and real reports stay far below both.
 * Ownership: the caller owns the bp_effort; the thread keeps a pointer to it between
 * bp_effort_begin() and bp_effort_end() only.  One current budget per thread.
 */
#ifndef BOUNCEPIPE_EFFORT_H
#define BOUNCEPIPE_EFFORT_H

#include <stdint.h>

/** What ran out. */
typedef enum bp_effort_cut {
    BP_EFFORT_OK = 0, /**< nothing: the message was read to the end */
    BP_EFFORT_TIME,   /**< the time budget */
    BP_EFFORT_REGEX,  /**< the PCRE2 work budget */
    BP_EFFORT_MEMORY, /**< memory: PCRE2 could not get what a search or compile needed, so that
                           "no match" would be a guess (bp_process_message() then fails with
                           BP_ERR_NOMEM instead of recording a guess) */
} bp_effort_cut;

typedef struct bp_effort {
    uint64_t started_ns;     /**< the thread's CPU time at bp_effort_begin() */
    uint64_t deadline_ns;    /**< started_ns + the time budget; 0: no time budget */
    uint64_t searches;       /**< PCRE2 searches run so far */
    uint64_t searches_max;   /**< the PCRE2 work budget; 0: none */
    const char *stage;       /**< what is being scanned now ("text-bounce scan", "rules") */
    bp_effort_cut cut;       /**< BP_EFFORT_OK while the budget lasts */
    const char *cut_in;      /**< the stage that was running when it ran out */
    uint64_t cut_after_ns;   /**< time spent when it ran out */
    uint64_t elapsed_ns;     /**< CPU time spent, set by bp_effort_end() */
    unsigned checks;         /**< bp_effort_left() calls: the clock is read at every 16th */
    struct bp_effort *outer; /**< the budget that was current before this one */
} bp_effort;

/** Start @p e with the budgets of limits.h and make it the thread's current budget. */
void bp_effort_begin(bp_effort *e);

/**
 * Start @p e with the given budgets (0: none) and make it current.  For tests, and for
 * callers that must bound less than a whole message.
 */
void bp_effort_begin_with(bp_effort *e, uint64_t milliseconds, uint64_t searches);

/** Stop @p e (it must be the current budget): the budget current before it is again. */
void bp_effort_end(bp_effort *e);

/** @return the thread's current budget, or NULL (then nothing is bounded by a budget). */
bp_effort *bp_effort_current(void);

/** Name the stage now scanning, for the record of where the budget ran out. */
void bp_effort_stage(const char *stage);

/**
 * Check the current budget (the clock at every 16th call).  @return non-zero while it lasts
 * (or when there is none); 0 once it has run out, from then on.
 */
int bp_effort_left(void);

/**
 * Charge one PCRE2 search to the current budget (the wrapper does, before each search).
 * @return non-zero when the search may run; 0 when the budget has run out.
 */
int bp_effort_search(void);

/**
 * Say that memory ran out where the outcome would otherwise depend on it (a PCRE2 search or
 * compile that could not get memory): the current budget runs out with BP_EFFORT_MEMORY,
 * whatever cut it had before, and stays out (every later search finds nothing).  The cut
 * reaches the budgets around it too (bp_effort_end()).  Without a current budget, nothing.
 */
void bp_effort_out_of_memory(void);

/** @return a static name of @p cut ("time", "PCRE2 work", "memory"), "" for BP_EFFORT_OK. */
const char *bp_effort_cut_name(bp_effort_cut cut);

#endif
