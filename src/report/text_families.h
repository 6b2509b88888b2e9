/*
 * text_families.h - the table of non-standard bounce formats read by textbounce.c (not
 * public).
 *
 * A family is one entry: how to recognise it (signature patterns on the report's From,
 * Subject and explanation text, all that are set must match), where its error section starts
 * and ends in the explanation, how a recipient line looks (a PCRE2 pattern with the named
 * group "rcpt" and optionally "diag", "status" and "code"), and where the diagnostic is.
 * Supporting a new format is adding an entry here and a fixture in fixtures/text/.
 *
 * Patterns are PCRE2, compiled caseless and multi-line (^ and $ at line ends) by the wrapper
 * (bouncepipe/regex.h) at build time (bp_text_family_code) or, failing that, on first use.
 * The table is static and read-only.
 */
#ifndef BOUNCEPIPE_TEXT_FAMILIES_H
#define BOUNCEPIPE_TEXT_FAMILIES_H

#include <stddef.h>

#include "bouncepipe/regex.h"
#include "bouncepipe/report.h"

/** Which text around a recipient is its diagnostic. */
typedef enum bp_text_diag_mode {
    /** The recipient's line and its paragraph (to the next blank line); when that names
     *  neither an SMTP code nor a status, the following paragraphs up to the next recipient. */
    BP_TEXT_DIAG_PARAGRAPH = 0,
    /** Everything from the recipient's line to the next recipient or the section end. */
    BP_TEXT_DIAG_TO_NEXT,
    /** The whole error section, shared by every recipient. */
    BP_TEXT_DIAG_SECTION,
    /** Only what the pattern's "diag" group captured (the recipient's line without one). */
    BP_TEXT_DIAG_GROUP,
} bp_text_diag_mode;

typedef struct bp_text_family {
    const char *name;    /**< family name reported in the event ("qmail", ...) */
    const char *from;    /**< signature on the report's From header, or NULL */
    const char *subject; /**< signature on the decoded Subject, or NULL */
    const char *body;    /**< signature on the explanation text, or NULL */
    const char *start;   /**< the section starts after the line this matches; NULL: at the top */
    const char *end;     /**< the section ends at the line this matches; NULL: the original */
    const char *rcpt;    /**< recipient pattern with group "rcpt"; NULL: X-Failed-Recipients */
    bp_text_diag_mode diag_mode;
    /** When a recipient's own text names no code: the text after the line this matches (to
     *  the next blank line) is the diagnostic shared by the recipients.  NULL: none. */
    const char *shared_diag;
    bp_rcpt_action action; /**< BP_ACTION_UNKNOWN: failed, or delayed when the text says so */
    /** The body signature alone proves a report (a data format, or a format no person writes).  Other
     *  families with only a body signature also need the message to look like a bounce
     *  (from a mailer daemon, or a bounce Subject), so that prose quoting a bounce's words
     *  is not read as one. */
    int self_evident;
    /** The family's default category, whatever the language of its prose (carried in each
     *  block's default_category: it decides when no rule matched and no specific enhanced
     *  status did).  NULL: none. */
    const char *default_category;
    /** The default yields to the codes when the recipient's SMTP stage was RCPT. */
    int default_unless_rcpt;
    /** The recipient is the returned original's (its To: when that names one address, else
     *  X-Failed-Recipients), before any address of the text: a list server's notice names
     *  the list only there. */
    int rcpt_from_original;
} bp_text_family;

/** The table, in the order families are tried; the last entry has name NULL. */
extern const bp_text_family bp_text_families[];

/** @return the number of entries of bp_text_families (without the terminator). */
size_t bp_text_family_count(void);

/** A family's patterns: signatures first, then the ones used once a signature matched. */
enum {
    BP_TEXT_PAT_FROM,
    BP_TEXT_PAT_SUBJECT,
    BP_TEXT_PAT_BODY,
    BP_TEXT_PAT_START,
    BP_TEXT_PAT_END,
    BP_TEXT_PAT_RCPT,
    BP_TEXT_PAT_SHARED,
    BP_TEXT_PAT_N
};

/** @return pattern @p which (BP_TEXT_PAT_*) of @p f, or NULL when the family has none. */
const char *bp_text_family_pattern(const bp_text_family *f, int which);

/**
 * Where pattern @p which of family @p family stands in bp_text_family_code: the table's
 * order, each family's patterns in BP_TEXT_PAT_* order, absent ones skipped.  With @p family
 * == bp_text_family_count() (and @p which 0): the number of patterns in all.
 */
size_t bp_text_pattern_position(size_t family, int which);

/** How every family pattern is compiled (bouncepipe/regex.h): caseless, multi-line, and
 *  searched window by window through long texts. */
#define BP_TEXT_PATTERN_FLAGS (BP_REGEX_CASELESS | BP_REGEX_MULTILINE | BP_REGEX_WINDOWED)

/**
 * Every family pattern compiled by the build (bp_rulegen) as one PCRE2 serialization, in
 * bp_text_pattern_position() order.
 * textbounce.c decodes it instead of compiling; a PCRE2 of another version refuses it, and
 * the patterns are then compiled.  Generated into builtin_rules.c.
 */
extern const unsigned char bp_text_family_code[];
extern const size_t bp_text_family_code_size;

#endif
