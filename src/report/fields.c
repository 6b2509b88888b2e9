/*
 * fields.c - parse "Name: value" field groups of delivery-status and feedback-report parts.
 *
 * bp_fields_parse(): one pass over the text; a group ends at an empty (or all-blank) line;
 * a line starting with white space continues the previous field; a line without a colon
 * that is not a continuation is ignored.  Field count per group is bounded by
 * BP_MAX_HEADERS_PER_PART; group count by the caller's max_groups.
 */
#include "bouncepipe/fields.h"

#include <string.h>
#include <strings.h>

#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

struct pending {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    const char *extra[8]; /* continuation lines beyond the first, joined on close */
    size_t extra_len[8];
    size_t n_extra;
};

static int is_blank_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Close the pending field into g (arena copy of the unfolded value). */
static bp_status close_field(bp_arena *arena, struct pending *pf, bp_field_group *g, size_t *cap)
{
    if (pf->name == NULL)
        return BP_OK;
    if (g->n >= BP_MAX_HEADERS_PER_PART)
        goto done;
    bp_field *nf = bp_arena_grow(arena, g->fields, g->n, cap, sizeof(*nf), 16);
    if (nf == NULL)
        return BP_ERR_NOMEM;
    g->fields = nf;
    size_t total = pf->value_len;
    for (size_t i = 0; i < pf->n_extra; i++)
        total += 1 + pf->extra_len[i];
    char *v = bp_arena_alloc(arena, total + 1);
    if (v == NULL)
        return BP_ERR_NOMEM;
    size_t o = 0;
    memcpy(v, pf->value, pf->value_len);
    o = pf->value_len;
    for (size_t i = 0; i < pf->n_extra; i++) {
        v[o++] = ' ';
        memcpy(v + o, pf->extra[i], pf->extra_len[i]);
        o += pf->extra_len[i];
    }
    g->fields[g->n].name = bp_trim_dup(arena, pf->name, pf->name_len);
    g->fields[g->n].value = bp_trim_dup(arena, v, o);
    if (g->fields[g->n].name == NULL || g->fields[g->n].value == NULL)
        return BP_ERR_NOMEM;
    g->n++;
done:
    memset(pf, 0, sizeof(*pf));
    return BP_OK;
}

/* Append a finished group, or count it as dropped past max_groups. */
static bp_status push_group(bp_arena *arena, const bp_field_group *g, size_t max_groups, bp_field_group **groups,
                            size_t *n, size_t *cap, size_t *dropped)
{
    if (*n >= max_groups) {
        if (dropped != NULL)
            (*dropped)++;
        return BP_OK;
    }
    bp_field_group *ng = bp_arena_grow(arena, *groups, *n, cap, sizeof(*ng), 8);
    if (ng == NULL)
        return BP_ERR_NOMEM;
    *groups = ng;
    (*groups)[(*n)++] = *g;
    return BP_OK;
}

bp_status bp_fields_parse(const char *text, size_t len, size_t max_groups, bp_arena *arena, bp_field_group **out_groups,
                          size_t *out_n, size_t *dropped)
{
    bp_field_group *groups = NULL;
    size_t n = 0, cap = 0, fcap = 0;
    struct pending pf;
    bp_field_group cur = {NULL, 0};
    bp_status st = BP_OK;

    memset(&pf, 0, sizeof(pf));
    if (dropped != NULL)
        *dropped = 0;
    size_t pos = 0;
    while (pos <= len) {
        const char *line = text + pos;
        const char *nl = pos < len ? memchr(line, '\n', len - pos) : NULL;
        size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;
        int at_end = nl == NULL;
        pos += llen + 1;

        if (is_blank_line(line, llen)) {
            if ((st = close_field(arena, &pf, &cur, &fcap)) != BP_OK)
                goto out;
            if (cur.n > 0) {
                if ((st = push_group(arena, &cur, max_groups, &groups, &n, &cap, dropped)) != BP_OK)
                    goto out;
                cur.fields = NULL;
                cur.n = 0;
                fcap = 0;
            }
            if (at_end)
                break;
            continue;
        }
        if ((line[0] == ' ' || line[0] == '\t') && pf.name != NULL) {
            /* continuation */
            size_t i = 0;
            while (i < llen && (line[i] == ' ' || line[i] == '\t'))
                i++;
            if (pf.n_extra < sizeof(pf.extra) / sizeof(pf.extra[0])) {
                pf.extra[pf.n_extra] = line + i;
                pf.extra_len[pf.n_extra] = llen - i;
                pf.n_extra++;
            }
        } else {
            if ((st = close_field(arena, &pf, &cur, &fcap)) != BP_OK)
                goto out;
            const char *colon = memchr(line, ':', llen);
            if (colon != NULL && colon > line) {
                pf.name = line;
                pf.name_len = (size_t)(colon - line);
                pf.value = colon + 1;
                pf.value_len = llen - pf.name_len - 1;
                /* a name never contains white space inside: "Final Recipient:" is not a field */
                for (size_t i = 0; i < pf.name_len; i++) {
                    char c = pf.name[i];
                    if ((c == ' ' || c == '\t') && i + 1 < pf.name_len && pf.name[i + 1] != ' ' &&
                        pf.name[i + 1] != '\t') {
                        memset(&pf, 0, sizeof(pf));
                        break;
                    }
                }
            }
        }
        if (at_end) {
            /* flush as if a blank line followed */
            if ((st = close_field(arena, &pf, &cur, &fcap)) != BP_OK)
                goto out;
            if (cur.n > 0) {
                if ((st = push_group(arena, &cur, max_groups, &groups, &n, &cap, dropped)) != BP_OK)
                    goto out;
            }
            break;
        }
    }
out:
    *out_groups = groups;
    *out_n = n;
    return st;
}

const char *bp_field_find(const bp_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(fields[i].name, name) == 0)
            return fields[i].value;
    return NULL;
}

const char *bp_fields_get(const bp_field_group *g, const char *name)
{
    return bp_field_find(g->fields, g->n, name);
}
