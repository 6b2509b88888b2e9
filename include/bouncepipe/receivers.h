/*
 * receivers.h - the receiving organisation of an event (its `receiver` field): gmail,
 * microsoft, yahoo, apple, comcast, orange, gmx, mailru, yandex, ... as the table
 * data/receivers names them, found by the host that answered or the recipient's domain.
 *
 * The table is data compiled into the binary (cmake/EmbedFile.cmake), read once, at the
 * first look-up.  Names it returns are static strings.
 */
#ifndef BOUNCEPIPE_RECEIVERS_H
#define BOUNCEPIPE_RECEIVERS_H

#include <stddef.h>

/** Where an event's receiver was found (bp_receiver_for()). */
typedef enum bp_receiver_source {
    BP_RECEIVER_NONE = 0,
    BP_RECEIVER_REMOTE_MTA,    /**< the remote MTA: the host that answered */
    BP_RECEIVER_REPORTING_MTA, /**< the reporting MTA: the host that wrote the report */
    BP_RECEIVER_RECIPIENT,     /**< the recipient's domain */
} bp_receiver_source;

/**
 * The organisation whose host name or domain @p name is (a suffix of the table matches it
 * label by label, ASCII case-insensitive; a trailing dot is ignored).
 * @return its name (static), or NULL when the table does not know it.
 */
const char *bp_receiver_of(const char *name);

/**
 * The receiver of an event: from @p remote_mta, else @p reporting_mta, else the domain of
 * @p recipient (any may be NULL).
 * @param from receives where it was found (may be NULL)
 * @return its name (static), or NULL.
 */
const char *bp_receiver_for(const char *remote_mta, const char *reporting_mta, const char *recipient,
                            bp_receiver_source *from);

/** @return non-zero when @p name is a receiver of the table (a block list named so is that
 *  receiver's own reputation system). */
int bp_receiver_known(const char *name);

/** @return the number of receivers in the table, and the name of receiver @p i (NULL past
 *  the end) - for tests and documentation. */
size_t bp_receiver_count(void);
const char *bp_receiver_name(size_t i);

#endif
