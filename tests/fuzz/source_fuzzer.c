/*
 * source_fuzzer.c - the message source: mbox splitting (separators after blank lines,
 * ">From" unescaping, lines longer than the read chunk) and plain files.
 *
 * The input is written to one scratch file (made once per process, rewritten per input,
 * removed at exit) and read back through bp_source_open() / bp_source_next() until the end;
 * every message must be within BP_MAX_MESSAGE_BYTES, NUL-terminated at its length, and named.
 */
#include <stdio.h>
#include <unistd.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/source.h"
#include "fuzz_common.h"

static char path[64];

static void remove_scratch(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/bp-source-fuzz.XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_scratch); /* libFuzzer exits through exit() when its time is up */
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    if (fclose(f) != 0)
        abort();
    bp_source *src = NULL;
    if (bp_source_open(path, &src) != BP_OK)
        abort();
    size_t total = 0;
    for (;;) {
        bp_source_msg msg;
        int done = 0;
        bp_status st = bp_source_next(src, &msg, &done);
        if (done || st != BP_OK)
            break;
        if (msg.name == NULL || msg.len > BP_MAX_MESSAGE_BYTES || msg.data[msg.len] != '\0')
            abort(); /* the source's contract */
        total += msg.len;
        if (total > size + 1)
            abort(); /* unescaping only ever removes bytes */
    }
    bp_source_close(src);
    return 0;
}
