/*
 * signal_fields.c - an event's signal fields and their provenance (signal_fields.h).
 *
 * bp_signal_from_source(): for sending_ip, vmta and stream, the first name of the
 * configured list whose value the source has and that is valid; fields already set are left.
 * bp_signal_take_ip(): one candidate sending IP.
 * bp_signal_finish(): the text (the deciding rule's named groups ip and domain, matched again
 * on the diagnostic with bp_rules_group()), then the receiver (receivers.h).
 * The checks (bp_signal_ip_canonical(), bp_signal_token_valid(), host names) keep every value
 * that reaches the store, a Prometheus label or an alert's argv tame.
 *
 * Ownership: values and provenances are arena copies.
 */
#include "bouncepipe/signal_fields.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/receivers.h"
#include "bouncepipe/text.h"

const char *const bp_signal_default_stream_headers[] = {"X-Traffic-Type", NULL};
const char *const bp_signal_default_vmta_headers[] = {"X-PowerMTA-VirtualMTA", "X-Virtual-MTA", NULL};
const char *const bp_signal_default_ip_columns[] = {"dlvSourceIp", NULL};
const char *const bp_signal_default_vmta_columns[] = {"vmta", NULL};
const char *const bp_signal_default_stream_columns[] = {"header_X-Traffic-Type", NULL};

int bp_signal_ip_canonical(const char *s, char *out, size_t size)
{
    char buf[64];
    unsigned char addr[16];
    if (s == NULL)
        return 0;
    s += strspn(s, " \t[");
    if (strncasecmp(s, "IPv6:", 5) == 0)
        s += 5;
    size_t n = strcspn(s, " \t]");
    while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ','))
        n--; /* "from 192.0.2.10." */
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    int family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(family, buf, addr) != 1)
        return 0;
    return inet_ntop(family, addr, out, (socklen_t)size) != NULL;
}

int bp_signal_token_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > BP_MAX_SIGNAL_TOKEN_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._-:@+=/", c)))
            return 0;
    }
    return 1;
}

/* A listed domain: a host name (letters, digits, hyphens, dots; a dot inside), lower-cased. */
static char *domain_copy(bp_arena *arena, const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n < 3 || n > 253 || memchr(s, '.', n) == NULL || s[0] == '.' || s[0] == '-')
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return NULL;
    }
    char *d = bp_arena_strndup(arena, s, n);
    return d != NULL ? bp_ascii_lower(d) : NULL;
}

bp_status bp_signal_take_ip(bp_event *e, const char *value, const char *from, bp_arena *arena)
{
    char ip[64];
    if (e->sending_ip != NULL || !bp_signal_ip_canonical(value, ip, sizeof(ip)))
        return BP_OK;
    e->sending_ip = bp_arena_strdup(arena, ip);
    e->sending_ip_from = bp_arena_strdup(arena, from);
    return e->sending_ip != NULL && e->sending_ip_from != NULL ? BP_OK : BP_ERR_NOMEM;
}

/* A VMTA or stream value: trimmed, and kept only when valid. */
static bp_status take_token(const char **field, const char **field_from, const char *value, const char *from,
                            bp_arena *arena)
{
    if (*field != NULL || value == NULL)
        return BP_OK;
    size_t skip = strspn(value, " \t"), n = strlen(value + skip);
    while (n > 0 && (value[skip + n - 1] == ' ' || value[skip + n - 1] == '\t' || value[skip + n - 1] == '\r'))
        n--;
    if (n == 0 || n > BP_MAX_SIGNAL_TOKEN_BYTES)
        return BP_OK;
    char *v = bp_arena_strndup(arena, value + skip, n);
    if (v == NULL)
        return BP_ERR_NOMEM;
    if (!bp_signal_token_valid(v))
        return BP_OK;
    *field = v;
    *field_from = bp_arena_strdup(arena, from);
    return *field_from != NULL ? BP_OK : BP_ERR_NOMEM;
}

bp_status bp_signal_from_source(bp_event *e, const bp_signal_options *o, bp_signal_source source,
                                bp_signal_lookup_fn lookup, const void *ctx, bp_arena *arena)
{
    static const bp_signal_options none = {NULL, NULL, NULL, NULL, NULL};
    if (o == NULL)
        o = &none;
    const char *const *ips = NULL, *const * vmtas, *const * streams;
    const char *kind;
    if (source == BP_SIGNAL_ACCOUNTING) {
        ips = o->acct_ip_columns != NULL ? o->acct_ip_columns : bp_signal_default_ip_columns;
        vmtas = o->acct_vmta_columns != NULL ? o->acct_vmta_columns : bp_signal_default_vmta_columns;
        streams = o->acct_stream_columns != NULL ? o->acct_stream_columns : bp_signal_default_stream_columns;
        kind = "accounting";
    } else {
        vmtas = o->vmta_headers != NULL ? o->vmta_headers : bp_signal_default_vmta_headers;
        streams = o->stream_headers != NULL ? o->stream_headers : bp_signal_default_stream_headers;
        kind = "header";
    }
    /* the fields not set yet, each from the first of its names that gives a value */
    const struct {
        const char *const *names;
        const char **field, **field_from;
        int ip; /* canonical by bp_signal_take_ip(), else a token by take_token() */
    } wanted[] = {
        {ips, &e->sending_ip, &e->sending_ip_from, 1},
        {vmtas, &e->vmta, &e->vmta_from, 0},
        {streams, &e->stream, &e->stream_from, 0},
    };
    bp_status st = BP_OK;
    char from[160]; /* "header:NAME", written only for a value found (snprintf cost more than the lookups) */
    for (size_t k = 0; k < sizeof(wanted) / sizeof(wanted[0]); k++) {
        const char *const *names = wanted[k].names;
        for (size_t i = 0; st == BP_OK && names != NULL && names[i] != NULL && *wanted[k].field == NULL; i++) {
            const char *v = lookup(ctx, names[i]);
            if (v == NULL)
                continue;
            snprintf(from, sizeof(from), "%s:%s", kind, names[i]);
            st = wanted[k].ip ? bp_signal_take_ip(e, v, from, arena)
                              : take_token(wanted[k].field, wanted[k].field_from, v, from, arena);
        }
    }
    return st;
}

/* The deciding rule's groups ip and domain in the diagnostic. */
static bp_status from_text(bp_event *e, bp_rules *rules, bp_arena *arena)
{
    if (e->diagnostic == NULL || e->rule == NULL)
        return BP_OK;
    const bp_rule *r = bp_rules_find(rules, e->rule);
    if (r == NULL || (strstr(r->pattern, "(?<ip>") == NULL && strstr(r->pattern, "(?<domain>") == NULL))
        return BP_OK;
    size_t len = strlen(e->diagnostic), gs = 0, ge = 0;
    char from[160];
    snprintf(from, sizeof(from), "text:%s", r->id);
    if (bp_rules_group(rules, r, e->diagnostic, len, "ip", &gs, &ge)) {
        char raw[64], ip[64];
        if (ge - gs < sizeof(raw)) {
            memcpy(raw, e->diagnostic + gs, ge - gs);
            raw[ge - gs] = '\0';
            if (bp_signal_ip_canonical(raw, ip, sizeof(ip))) {
                if (e->listed == NULL && (e->listed = bp_arena_strdup(arena, ip)) == NULL)
                    return BP_ERR_NOMEM;
                return bp_signal_take_ip(e, ip, from, arena);
            }
        }
    }
    if (e->listed == NULL && bp_rules_group(rules, r, e->diagnostic, len, "domain", &gs, &ge)) {
        e->listed = domain_copy(arena, e->diagnostic + gs, ge - gs);
    }
    return BP_OK;
}

bp_status bp_signal_finish(bp_event *e, bp_rules *rules, bp_arena *arena)
{
    bp_status st = from_text(e, rules, arena);
    if (st != BP_OK || e->receiver != NULL)
        return st;
    bp_receiver_source src = BP_RECEIVER_NONE;
    e->receiver = bp_receiver_for(e->remote_mta, e->reporting_mta, e->recipient, &src);
    switch (src) {
    case BP_RECEIVER_REMOTE_MTA: e->receiver_from = bp_arena_printf(arena, "remote-mta:%s", e->remote_mta); break;
    case BP_RECEIVER_REPORTING_MTA:
        e->receiver_from = bp_arena_printf(arena, "reporting-mta:%s", e->reporting_mta);
        break;
    case BP_RECEIVER_RECIPIENT:
        e->receiver_from = bp_arena_printf(arena, "recipient-domain:%s", strrchr(e->recipient, '@') + 1);
        break;
    case BP_RECEIVER_NONE: return BP_OK;
    }
    return e->receiver_from != NULL ? BP_OK : BP_ERR_NOMEM;
}
