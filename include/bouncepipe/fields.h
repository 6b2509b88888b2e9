/*
 * fields.h - the "Name: value" field-group grammar of report parts (RFC 3464 section 2.1,
 * RFC 5965 section 3.1): groups separated by blank lines, continuation lines folded in.
 *
 * Lenient on purpose (docs/violations.md): leading blank lines, spaces before the colon,
 * CR line ends, a group break written as a line of white space, and lines without a colon
 * (skipped) are all accepted.
 *
 * Ownership: groups and their strings belong to the arena.
 */
#ifndef BOUNCEPIPE_FIELDS_H
#define BOUNCEPIPE_FIELDS_H

#include <stddef.h>

#include "bouncepipe/arena.h"
#include "bouncepipe/status.h"

typedef struct bp_field {
    const char *name;  /**< as written, trimmed */
    const char *value; /**< unfolded (continuation lines joined by one space), trimmed */
} bp_field;

typedef struct bp_field_group {
    bp_field *fields;
    size_t n;
} bp_field_group;

/**
 * Split @p len bytes of @p text into field groups.
 * @param max_groups groups past this are dropped and counted in @p dropped (may be NULL)
 * @return BP_OK or BP_ERR_NOMEM; @p out_groups / @p out_n describe an arena array.
 */
bp_status bp_fields_parse(const char *text, size_t len, size_t max_groups, bp_arena *arena, bp_field_group **out_groups,
                          size_t *out_n, size_t *dropped);

/** @return the value of the first field @p name (case-insensitive) in @p g, or NULL. */
const char *bp_fields_get(const bp_field_group *g, const char *name);
/** @return the value of the first of the @p n @p fields named @p name (any case), or NULL;
 *  the one lookup behind bp_fields_get() and bp_part_header() (mime.h). */
const char *bp_field_find(const bp_field *fields, size_t n, const char *name);

#endif
