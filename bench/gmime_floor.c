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

#include "each_message.h"
#include "walk_parts.h"

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

struct counts {
    size_t messages, parts;
};

/* Parse and count one message and its parts (each_message_fn). */
static int count_one(void *user, const char *data, size_t len)
{
    struct counts *c = user;
    c->parts += parse_one(data, len);
    c->messages++;
    return 0;
}

int main(int argc, char **argv)
{
    struct counts c = {0, 0};
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: gmime_floor PATH...\n");
        return 2;
    }
    g_mime_init();
    for (int i = 1; i < argc; i++)
        if (each_message("gmime_floor", argv[i], count_one, &c) != 0)
            failed = 1;
    g_mime_shutdown();
    fprintf(stderr, "messages %zu parts %zu\n", c.messages, c.parts);
    return failed;
}
