/*
 * gmime_floor.c - the replay floor: what reading and MIME-parsing a corpus costs at least.
 *
 * usage: gmime_floor PATH...
 *
 * Reads every message of every PATH with bouncepipe's own sources (file, directory, mbox,
 * Maildir: the same messages replay sees), parses each with GMime (default parser options)
 * and walks its parts, descending into attached messages, touching each part's content type.
 * It decodes no body, classifies nothing and prints nothing per message: bouncepipe replay
 * cannot be faster than this, so bench/run.py reports replay as a ratio of it.
 *
 * Prints "messages N parts P" on stderr; exits 0, or 1 when an input could not be read.
 *
 * Ownership: each GMime message, parser and stream lives for one loop iteration and is
 * released (g_object_unref) before the next message is read.
 */
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>

#include "bouncepipe/source.h"

/* Count @object and its descendants (multipart children, attached messages). */
static size_t walk_parts(GMimeObject *object, unsigned depth)
{
    if (object == NULL || depth > 64)
        return 0;
    size_t parts = 1;
    GMimeContentType *ct = g_mime_object_get_content_type(object); /* borrowed */
    if (ct != NULL && g_mime_content_type_get_media_type(ct) == NULL)
        return parts; /* touched, so the walk is not optimised away */
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *mp = GMIME_MULTIPART(object);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            parts += walk_parts(g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object)); /* borrowed */
        if (inner != NULL)
            parts += walk_parts(g_mime_message_get_mime_part(inner), depth + 1);
    }
    return parts;
}

/* Parse one message; @return its number of parts, 0 when GMime found no message. */
static size_t parse_one(const char *data, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len); /* owned: copies data */
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);        /* owned */
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *message = g_mime_parser_construct_message(parser, NULL); /* owned */
    size_t parts = 0;
    if (message != NULL) {
        parts = walk_parts(g_mime_message_get_mime_part(message), 0);
        g_object_unref(message); /* the whole tree */
    }
    g_object_unref(parser);
    g_object_unref(stream);
    return parts;
}

int main(int argc, char **argv)
{
    size_t messages = 0, parts = 0;
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: gmime_floor PATH...\n");
        return 2;
    }
    g_mime_init();
    for (int i = 1; i < argc; i++) {
        bp_source *src = NULL;
        if (bp_source_open(argv[i], &src) != BP_OK) {
            fprintf(stderr, "gmime_floor: cannot open %s\n", argv[i]);
            failed = 1;
            continue;
        }
        for (;;) {
            bp_source_msg msg;
            int done = 0;
            bp_status st = bp_source_next(src, &msg, &done);
            if (done)
                break;
            if (st != BP_OK) {
                failed = 1;
                if (st == BP_ERR_NOMEM)
                    break;
                continue;
            }
            parts += parse_one(msg.data, msg.len);
            messages++;
        }
        bp_source_close(src);
    }
    g_mime_shutdown();
    fprintf(stderr, "messages %zu parts %zu\n", messages, parts);
    return failed;
}
