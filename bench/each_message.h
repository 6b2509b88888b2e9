/*
 * each_message.h - the corpus walk the bench programs that read messages share (gmime_floor,
 * dmarc_parse): every message of a PATH read with bouncepipe's own sources (file, directory,
 * mbox, Maildir: the messages replay sees) and handed to the program.  Header-only: each bench
 * program is one translation unit.
 *
 * Ownership: a message's bytes are the source's, valid only during the call; the program
 * copies what it keeps.
 */
#ifndef BOUNCEPIPE_BENCH_EACH_MESSAGE_H
#define BOUNCEPIPE_BENCH_EACH_MESSAGE_H

#include <stddef.h>
#include <stdio.h>

#include "bouncepipe/source.h"

/* A program's handling of one message: @return 0 to go on, nonzero to stop (a failure). */
typedef int (*each_message_fn)(void *user, const char *data, size_t len);

/* Hand every message of @p path to @p fn.  @return 0, or -1 when the path cannot be opened
 * (said on stderr after "@p prog: "), a message cannot be read (the walk goes on; out of
 * memory ends it) or @p fn asked to stop. */
static int each_message(const char *prog, const char *path, each_message_fn fn, void *user)
{
    bp_source *src = NULL;
    if (bp_source_open(path, &src) != BP_OK) {
        fprintf(stderr, "%s: cannot open %s\n", prog, path);
        return -1;
    }
    int rc = 0;
    for (;;) {
        bp_source_msg m;
        int done = 0;
        bp_status st = bp_source_next(src, &m, &done);
        if (done)
            break;
        if (st != BP_OK) {
            rc = -1;
            if (st == BP_ERR_NOMEM)
                break;
            continue;
        }
        if (fn(user, m.data, m.len) != 0) {
            rc = -1;
            break;
        }
    }
    bp_source_close(src);
    return rc;
}

#endif
