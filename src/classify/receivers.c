/*
 * receivers.c - the table of receiving organisations (receivers.h), read from data/receivers
 * as the build embedded it.
 *
 * load(): once (pthread_once), the embedded text is split into lines "NAME SUFFIX..."
 * ('#' comments, blank lines skipped) into a static table of at most RECEIVERS_MAX names and
 * SUFFIXES_MAX suffixes; what does not fit is left out (the table is ours: a test checks
 * that all of it fits).  bp_receiver_of(): the first suffix, in table order, that equals the
 * name or ends it after a dot (its last byte compared before the rest).
 *
 * Ownership: the table is static and lives as long as the process; names handed out point
 * into it.
 */
#include "bouncepipe/receivers.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

/* data/receivers as cmake/EmbedFile.cmake wrote it into receivers_data.c */
extern const unsigned char bp_receivers_data[];
extern const size_t bp_receivers_data_len;

#define RECEIVERS_MAX   64  /* organisations */
#define SUFFIXES_MAX    512 /* suffixes of all of them */
#define RECEIVER_TOKEN  64  /* bytes of a name or suffix, NUL included */
#define RECEIVERS_BYTES 8192

static struct {
    char text[RECEIVERS_BYTES]; /* the tokens, NUL-terminated, one after the other */
    size_t used;
    const char *names[RECEIVERS_MAX];
    size_t n_names;
    const char *suffix[SUFFIXES_MAX];
    size_t suffix_len[SUFFIXES_MAX];
    size_t owner[SUFFIXES_MAX]; /* index into names */
    size_t n_suffixes;
} table;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

/* Copy one token into the table's text. @return it, or NULL when it does not fit. */
static const char *keep(const char *s, size_t n)
{
    if (n == 0 || n >= RECEIVER_TOKEN || table.used + n + 1 > sizeof(table.text))
        return NULL;
    char *t = table.text + table.used;
    for (size_t i = 0; i < n; i++)
        t[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    t[n] = '\0';
    table.used += n + 1;
    return t;
}

static void load(void)
{
    const char *p = (const char *)bp_receivers_data, *end = p + bp_receivers_data_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(eol - p));
        const char *stop = hash != NULL ? hash : eol;
        size_t owner = 0;
        int first = 1;
        while (p < stop) {
            p += strspn(p, " \t\r");
            if (p >= stop)
                break;
            size_t n = strcspn(p, " \t\r#\n");
            if (p + n > stop)
                n = (size_t)(stop - p);
            const char *tok = keep(p, n);
            p += n;
            if (tok == NULL)
                continue;
            if (first) {
                if (table.n_names == RECEIVERS_MAX)
                    break;
                owner = table.n_names;
                table.names[table.n_names++] = tok;
                first = 0;
            } else if (table.n_suffixes < SUFFIXES_MAX) {
                table.suffix[table.n_suffixes] = tok;
                table.suffix_len[table.n_suffixes] = n;
                table.owner[table.n_suffixes++] = owner;
            }
        }
        p = eol + 1;
    }
}

static void ensure_loaded(void)
{
    pthread_once(&loaded, load);
}

const char *bp_receiver_of(const char *name)
{
    if (name == NULL)
        return NULL;
    ensure_loaded();
    size_t len = strlen(name);
    while (len > 0 && name[len - 1] == '.')
        len--;
    /* the last bytes compared first: most suffixes end in another letter, and the call to
     * strncasecmp for each of them cost more than the rest of the lookup (an ASCII byte,
     * folded, against a suffix's, which the table holds folded already) */
    unsigned char last = len > 0 ? (unsigned char)name[len - 1] : 0;
    if (last >= 'A' && last <= 'Z')
        last = (unsigned char)(last + 32);
    for (size_t i = 0; i < table.n_suffixes; i++) {
        size_t n = table.suffix_len[i];
        if (n > len)
            continue;
        unsigned char s_last = (unsigned char)table.suffix[i][n - 1];
        if (last < 0x80 && s_last < 0x80 && last != s_last)
            continue;
        if (strncasecmp(name + len - n, table.suffix[i], n) != 0)
            continue;
        if (n == len || name[len - n - 1] == '.')
            return table.names[table.owner[i]];
    }
    return NULL;
}

const char *bp_receiver_for(const char *remote_mta, const char *reporting_mta, const char *recipient,
                            bp_receiver_source *from)
{
    const char *r = NULL;
    bp_receiver_source src = BP_RECEIVER_NONE;
    if ((r = bp_receiver_of(remote_mta)) != NULL)
        src = BP_RECEIVER_REMOTE_MTA;
    else if ((r = bp_receiver_of(reporting_mta)) != NULL)
        src = BP_RECEIVER_REPORTING_MTA;
    else if (recipient != NULL && strrchr(recipient, '@') != NULL &&
             (r = bp_receiver_of(strrchr(recipient, '@') + 1)) != NULL)
        src = BP_RECEIVER_RECIPIENT;
    if (from != NULL)
        *from = src;
    return r;
}

int bp_receiver_known(const char *name)
{
    if (name == NULL)
        return 0;
    ensure_loaded();
    for (size_t i = 0; i < table.n_names; i++)
        if (strcmp(table.names[i], name) == 0)
            return 1;
    return 0;
}

size_t bp_receiver_count(void)
{
    ensure_loaded();
    return table.n_names;
}

const char *bp_receiver_name(size_t i)
{
    ensure_loaded();
    return i < table.n_names ? table.names[i] : NULL;
}
