/*
 * walk_parts.h - the part walk both floor programs share (gmime_floor, pipe_floor): count a
 * GMime object and its descendants, descending into multipart children and attached
 * messages to a depth of 64, touching each part's content type so that the walk is not
 * optimised away.  Header-only: each floor program is one translation unit.
 *
 * Ownership: everything it touches is borrowed from the caller's GMime tree.
 */
#ifndef BOUNCEPIPE_BENCH_WALK_PARTS_H
#define BOUNCEPIPE_BENCH_WALK_PARTS_H

#include <gmime/gmime.h>
#include <stddef.h>

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

#endif
