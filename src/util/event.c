/*
 * event.c - names of event types and actions as the event contract spells them.
 *
 * On the ground floor (util) with event.h: the event model is what classify produces and
 * what the store, the printers and the PostgreSQL module consume, so it depends on nothing
 * and everything may include it.  The SMTP command names (bp_smtp_command_name()) are the
 * contract's smtp_command values; the rule files' stage= option reads them too.
 */
#include "bouncepipe/event.h"

#include <string.h>
#include <strings.h>

static const char *const type_names[] = {"unrecognized", "bounce",    "delay",       "complaint",
                                         "autoreply",    "delivered", "dmarc-report"};

const char *bp_event_type_name(bp_event_type type)
{
    if ((unsigned)type < sizeof(type_names) / sizeof(type_names[0]))
        return type_names[type];
    return "unrecognized";
}

int bp_event_type_from_name(const char *name)
{
    for (unsigned i = 0; name != NULL && i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(type_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *bp_action_name(bp_action action)
{
    switch (action) {
    case BP_ACT_SUPPRESS: return "suppress";
    case BP_ACT_SOFT: return "soft";
    case BP_ACT_IGNORE: return "ignore";
    case BP_ACT_NONE: break;
    }
    return NULL;
}

bp_action bp_action_from_name(const char *name)
{
    if (name == NULL)
        return BP_ACT_NONE;
    if (strcmp(name, "suppress") == 0)
        return BP_ACT_SUPPRESS;
    if (strcmp(name, "soft") == 0)
        return BP_ACT_SOFT;
    if (strcmp(name, "ignore") == 0)
        return BP_ACT_IGNORE;
    return BP_ACT_NONE;
}

static const char *const command_names[] = {NULL, "CONNECT", "EHLO", "MAIL", "RCPT", "DATA"};

const char *bp_smtp_command_name(bp_smtp_command command)
{
    if ((unsigned)command < sizeof(command_names) / sizeof(command_names[0]))
        return command_names[command];
    return NULL;
}

bp_smtp_command bp_smtp_command_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return BP_SMTP_NONE;
    if (len == 4 && strncasecmp(name, "HELO", 4) == 0)
        return BP_SMTP_EHLO;
    for (unsigned i = 1; i < sizeof(command_names) / sizeof(command_names[0]); i++)
        if (strlen(command_names[i]) == len && strncasecmp(name, command_names[i], len) == 0)
            return (bp_smtp_command)i;
    return BP_SMTP_NONE;
}

void bp_event_strings(bp_event *e, const char **out[BP_EVENT_N_STRINGS])
{
    const char **v[] = {&e->source,
                        &e->message_id,
                        &e->recipient,
                        &e->recipient_from,
                        &e->status,
                        &e->smtp_code,
                        &e->diagnostic,
                        &e->category,
                        &e->feedback_type,
                        &e->rule,
                        &e->reporting_mta,
                        &e->remote_mta,
                        &e->arrival_date,
                        &e->source_ip,
                        &e->envid,
                        &e->job_id,
                        &e->original_message_id,
                        &e->blocklist,
                        &e->smtp_command,
                        &e->sending_ip,
                        &e->vmta,
                        &e->stream,
                        &e->receiver,
                        &e->listed,
                        &e->family,
                        &e->fingerprint,
                        &e->reported_domain,
                        &e->sending_ip_from,
                        &e->vmta_from,
                        &e->stream_from,
                        &e->receiver_from};
    _Static_assert(sizeof(v) / sizeof(v[0]) == BP_EVENT_N_STRINGS, "every string field of bp_event");
    memcpy(out, v, sizeof(v));
}
