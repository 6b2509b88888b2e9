/*
 * readfile.c - whole-stream and whole-file reads for the commands and loaders that need
 * their input in one piece (pipe mode's message, rule files, a tested message).
 * Contracts in include/bouncepipe/readfile.h.
 */
#include "bouncepipe/readfile.h"

#include <errno.h>

#include "bouncepipe/text.h"

bp_status bp_read_stream(FILE *f, size_t max, char **data, size_t *len, int *truncated)
{
    bp_strbuf sb = {0};
    char chunk[65536];
    size_t got;
    *truncated = 0;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (sb.len + got > max) {
            *truncated = 1;
            got = max - sb.len;
        }
        if (bp_strbuf_append(&sb, chunk, got) != BP_OK) {
            bp_strbuf_free(&sb);
            return BP_ERR_NOMEM;
        }
        if (*truncated) {
            while (fread(chunk, 1, sizeof(chunk), f) > 0) {
                /* drain, so the writer of a pipe is not killed by SIGPIPE */
            }
            break;
        }
    }
    if (ferror(f)) {
        bp_strbuf_free(&sb);
        return BP_ERR_IO;
    }
    if (sb.data == NULL && bp_strbuf_append(&sb, "", 0) != BP_OK)
        return BP_ERR_NOMEM;
    *data = sb.data;
    *len = sb.len;
    return BP_OK;
}

bp_status bp_read_file(const char *path, size_t max, char **data, size_t *len, int *truncated)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
    bp_status st = bp_read_stream(f, max, data, len, truncated);
    fclose(f);
    return st;
}
