/*
 * text.c - string helpers: growable buffer, ASCII case folding, cleaning of remote text.
 *
 * Contracts are in include/bouncepipe/text.h.  Nothing here knows about mail; remote text
 * cleaning is where the "control bytes masked, length capped" promise of the event
 * contract is kept.
 */
#include "bouncepipe/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bp_status bp_strbuf_append(bp_strbuf *sb, const char *s, size_t len)
{
    if (sb->len + len + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + len + 1) {
            if (cap > ((size_t)-1) / 2)
                return BP_ERR_NOMEM;
            cap *= 2;
        }
        char *p = realloc(sb->data, cap);
        if (p == NULL)
            return BP_ERR_NOMEM;
        sb->data = p;
        sb->cap = cap;
    }
    if (len > 0)
        memcpy(sb->data + sb->len, s, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return BP_OK;
}

bp_status bp_strbuf_puts(bp_strbuf *sb, const char *s)
{
    return bp_strbuf_append(sb, s, strlen(s));
}

bp_status bp_strbuf_putc(bp_strbuf *sb, char c)
{
    return bp_strbuf_append(sb, &c, 1);
}

bp_status bp_strbuf_printf(bp_strbuf *sb, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return BP_ERR_PARSE;
    if ((size_t)n < sizeof(small))
        return bp_strbuf_append(sb, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return BP_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bp_status st = bp_strbuf_append(sb, big, (size_t)n);
    free(big);
    return st;
}

void bp_strbuf_clear(bp_strbuf *sb)
{
    sb->len = 0;
    if (sb->data != NULL)
        sb->data[0] = '\0';
}

void bp_strbuf_free(bp_strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

int bp_starts_with_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++)
        if (lower(*s) != lower(*prefix))
            return 0;
    return 1;
}

#define NOT_SEARCHED ((size_t)-2)
#define NONE_LEFT    ((size_t)-1)

/* Offset in @hay of the next byte at or after @from that is @lo or @up (the two ASCII cases
 * of one letter; equal for a non-letter) and before @end, or NONE_LEFT.  The next hit of
 * each case is kept in *next_lo / *next_up so that memchr never scans a byte twice. */
static size_t next_either_case(const char *hay, size_t from, size_t end, char lo, char up, size_t *next_lo,
                               size_t *next_up)
{
    if (*next_lo == NOT_SEARCHED || (*next_lo != NONE_LEFT && *next_lo < from)) {
        const char *hit = memchr(hay + from, lo, end - from);
        *next_lo = hit != NULL ? (size_t)(hit - hay) : NONE_LEFT;
    }
    if (lo == up)
        return *next_lo;
    if (*next_up == NOT_SEARCHED || (*next_up != NONE_LEFT && *next_up < from)) {
        const char *hit = memchr(hay + from, up, end - from);
        *next_up = hit != NULL ? (size_t)(hit - hay) : NONE_LEFT;
    }
    return *next_lo < *next_up ? *next_lo : *next_up; /* NONE_LEFT is the largest */
}

const char *bp_memcasemem(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len == 0)
        return hay;
    if (needle_len > hay_len)
        return NULL;
    /* Candidates are found with memchr (vectorised in libc) for both cases of the first
     * byte: a byte-by-byte scan here was most of the text-bounce parser's cost
     * (docs/performance.md). */
    char lo = lower(needle[0]);
    char up = (lo >= 'a' && lo <= 'z') ? (char)(lo - 32) : lo;
    size_t end = hay_len - needle_len + 1; /* one past the last possible start */
    size_t next_lo = NOT_SEARCHED, next_up = NOT_SEARCHED;
    for (size_t i = 0; i < end;) {
        size_t c = next_either_case(hay, i, end, lo, up, &next_lo, &next_up);
        if (c == NONE_LEFT)
            return NULL;
        size_t j = 1;
        while (j < needle_len && lower(hay[c + j]) == lower(needle[j]))
            j++;
        if (j == needle_len)
            return hay + c;
        i = c + 1;
    }
    return NULL;
}

const char *bp_strcasestr(const char *hay, const char *needle)
{
    return bp_memcasemem(hay, strlen(hay), needle, strlen(needle));
}

char *bp_ascii_lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = lower(*p);
    return s;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char *bp_trim_dup(bp_arena *arena, const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    while (len > 0 && is_space((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space((unsigned char)s[len - 1]))
        len--;
    return bp_arena_strndup(arena, s, len);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

int bp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

char *bp_clean_text(bp_arena *arena, const char *s, size_t len, size_t max_bytes)
{
    if (s == NULL)
        return NULL;
    char *out = bp_arena_alloc(arena, (len < max_bytes ? len : max_bytes) + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    int pending_space = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (is_space(c)) {
            pending_space = o > 0;
            i++;
            continue;
        }
        size_t n = utf8_seq_len(p + i, len - i);
        const unsigned char *src = p + i;
        unsigned char masked = '?';
        if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
            src = &masked;
            n = 1;
            i++;
        } else {
            i += n;
        }
        if (o + (size_t)pending_space + n > max_bytes)
            break;
        if (pending_space) {
            out[o++] = ' ';
            pending_space = 0;
        }
        memcpy(out + o, src, n);
        o += n;
    }
    out[o] = '\0';
    return o > 0 ? out : NULL;
}
