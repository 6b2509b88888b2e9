/*
 * process.c - bytes to events: the pipeline every command shares.
 *
 * bp_process_message(): MIME (GMime adapter) -> report (family parsers) -> classify
 * (rules, codes, policy); reading the report and matching the rules run under the message's
 * effort budget (effort.h).  A message GMime cannot read still yields one unrecognized
 * event, so that nothing that arrives goes unaccounted.
 * bp_message_fingerprint(): the idempotency key (GLib's SHA-256).
 */
#include "bouncepipe/process.h"

#include <glib.h>
#include <string.h>

#include "bouncepipe/text.h"

/* Offset of the body: after the first empty line (LF or CRLF or CR line ends). */
static size_t body_offset(const char *b, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (b[i] == '\n' && (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < len && b[i + 2] == '\n')))
            return i + (b[i + 1] == '\n' ? 2 : 3);
        if (b[i] == '\r' && b[i + 1] == '\r')
            return i + 2;
    }
    return len;
}

/* Message-ID header value, from the raw header block (no MIME parse needed). */
static void message_id_span(const char *b, size_t hdr_len, const char **id, size_t *id_len)
{
    *id = NULL;
    *id_len = 0;
    size_t i = 0;
    while (i < hdr_len) {
        const char *line = b + i;
        const char *nl = memchr(line, '\n', hdr_len - i);
        size_t llen = nl != NULL ? (size_t)(nl - line) : hdr_len - i;
        if (llen > 11 && bp_starts_with_ci(line, "Message-ID:")) {
            *id = line + 11;
            *id_len = llen - 11;
            while (*id_len > 0 && ((*id)[0] == ' ' || (*id)[0] == '\t')) {
                (*id)++;
                (*id_len)--;
            }
            while (*id_len > 0 && ((*id)[*id_len - 1] == '\r' || (*id)[*id_len - 1] == ' '))
                (*id_len)--;
            return;
        }
        i += llen + 1;
    }
}

const char *bp_message_fingerprint(bp_arena *arena, const char *bytes, size_t len)
{
    size_t body = body_offset(bytes, len);
    const char *id;
    size_t id_len;
    message_id_span(bytes, body, &id, &id_len);
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256); /* owned: freed below */
    if (sum == NULL)
        return NULL;
    if (id != NULL)
        g_checksum_update(sum, (const guchar *)id, (gssize)id_len);
    g_checksum_update(sum, (const guchar *)"\n", 1);
    /* body with CR dropped (a bare CR counts as LF), so CRLF and LF copies of one message
     * agree; the CRs are found with memchr, not a byte loop (docs/performance.md) */
    size_t start = body;
    while (start < len) {
        const char *cr = memchr(bytes + start, '\r', len - start);
        size_t i = cr != NULL ? (size_t)(cr - bytes) : len;
        if (i > start)
            g_checksum_update(sum, (const guchar *)bytes + start, (gssize)(i - start));
        if (cr == NULL)
            break;
        if (i + 1 >= len || bytes[i + 1] != '\n')
            g_checksum_update(sum, (const guchar *)"\n", 1);
        start = i + 1;
    }
    const char *hex = bp_arena_strdup(arena, g_checksum_get_string(sum));
    g_checksum_free(sum);
    return hex;
}

/* Report and events of a parsed message (or of none, when GMime found no message). */
static bp_status report_and_classify(const bp_classify_ctx *ctx, const bp_report_options *ropts, bp_arena *arena,
                                     bp_process_result *out)
{
    if (!out->mime_failed) { /* else the report stays BP_REPORT_NONE: one unrecognized event */
        bp_status st = bp_report_parse(&out->mime, ropts, arena, &out->report);
        if (st != BP_OK)
            return st;
    }
    return bp_classify(ctx, &out->report, arena, &out->events, &out->n_events, &out->explains);
}

bp_status bp_process_message(const bp_classify_ctx *ctx, const bp_report_options *ropts, const char *bytes, size_t len,
                             bp_arena *arena, bp_process_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!ctx->skip_fingerprint) {
        out->fingerprint = bp_message_fingerprint(arena, bytes, len);
        if (out->fingerprint == NULL)
            return BP_ERR_NOMEM;
    }
    bp_status st = bp_mime_parse(bytes, len, arena, &out->mime);
    if (st == BP_ERR_NOMEM)
        return st;
    out->mime_failed = st != BP_OK;
    bp_effort_begin(&out->effort);
    st = report_and_classify(ctx, ropts, arena, out);
    bp_effort_end(&out->effort);
    if (st != BP_OK)
        return st;
    for (size_t i = 0; i < out->n_events; i++)
        out->events[i].fingerprint = out->fingerprint;
    return BP_OK;
}
