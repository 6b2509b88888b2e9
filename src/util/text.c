/*
 * text.c - string helpers: growable buffer, ASCII case folding, cleaning of remote text, the
 * byte pairs of a text (the test that spares a memmem for a needle that cannot be there),
 * durations of configuration values.
 *
 * Contracts are in include/bouncepipe/text.h.  Nothing here knows about mail; remote text
 * cleaning is where the "control bytes masked, length capped" promise of the event
 * contract is kept.
 */
#include "bouncepipe/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bouncepipe/alloc.h"

bp_status bp_strbuf_append(bp_strbuf *sb, const char *s, size_t len)
{
    if (sb->len + len + 1 > sb->cap) {
        char *p = bp_reserve(sb->data, &sb->cap, sb->len + len + 1, 256, SIZE_MAX);
        if (p == NULL)
            return BP_ERR_NOMEM;
        sb->data = p;
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

bp_status bp_strbuf_vprintf(bp_strbuf *sb, const char *fmt, va_list ap)
{
    char small[256];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    bp_status st = BP_ERR_PARSE;
    char *big = NULL;
    if (n < 0)
        goto out;
    if ((size_t)n < sizeof(small)) {
        st = bp_strbuf_append(sb, small, (size_t)n);
        goto out;
    }
    st = BP_ERR_NOMEM;
    if ((big = bp_malloc((size_t)n + 1)) == NULL)
        goto out;
    vsnprintf(big, (size_t)n + 1, fmt, again);
    st = bp_strbuf_append(sb, big, (size_t)n);
out:
    va_end(again);
    free(big);
    return st;
}

bp_status bp_strbuf_printf(bp_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bp_status st = bp_strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
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

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid; its code point
 * in *cp. */
static size_t utf8_decode(const unsigned char *s, size_t avail, unsigned int *cp)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned int cp;
    return utf8_decode(s, avail, &cp);
}

/* Characters that reorder or break the text around them on a terminal or in a browser: the
 * bidirectional embeddings, overrides and isolates ("Trojan Source") and the Unicode line and
 * paragraph separators. */
static int is_unsafe_format(unsigned int cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

size_t bp_text_char(const char *s, size_t avail, bp_text_kind *kind, unsigned int *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned int v = p[0];
    size_t n = utf8_decode(p, avail, &v);
    if (cp != NULL)
        *cp = n > 0 ? v : p[0];
    if (n == 0) {
        *kind = BP_TEXT_INVALID;
        return 1;
    }
    if (is_space(p[0]))
        *kind = BP_TEXT_SPACE;
    else if (v < 0x20 || v == 0x7F || (v >= 0x80 && v <= 0x9F))
        *kind = BP_TEXT_CONTROL;
    else if (is_unsafe_format(v))
        *kind = BP_TEXT_UNSAFE;
    else
        *kind = BP_TEXT_PLAIN;
    return n;
}

bp_status bp_text_mask_append(bp_strbuf *sb, const char *s, size_t len, unsigned flags)
{
    bp_status st = BP_OK;
    size_t i = 0;
    while (st == BP_OK && i < len) {
        /* runs of printable ASCII in one append: the usual case */
        size_t run = i;
        while (run < len && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7F)
            run++;
        if (run > i) {
            st = bp_strbuf_append(sb, s + i, run - i);
            i = run;
            continue;
        }
        bp_text_kind kind;
        size_t n = bp_text_char(s + i, len - i, &kind, NULL);
        int keep = kind == BP_TEXT_PLAIN || (s[i] == '\n' && (flags & BP_MASK_KEEP_NEWLINES) != 0) ||
                   ((s[i] == '\n' || s[i] == '\r' || s[i] == '\t') && (flags & BP_MASK_KEEP_WHITESPACE) != 0);
        st = keep ? bp_strbuf_append(sb, s + i, n) : bp_strbuf_putc(sb, '?');
        i += n;
    }
    return st;
}

char *bp_text_mask(bp_arena *arena, const char *s, size_t max_bytes)
{
    if (s == NULL)
        return NULL;
    bp_strbuf sb = {0};
    size_t len = strlen(s);
    char *out = NULL;
    if (bp_text_mask_append(&sb, s, len, 0) == BP_OK) {
        size_t n = bp_utf8_cut(sb.data, sb.len, max_bytes);
        out = bp_arena_strndup(arena, sb.data != NULL ? sb.data : "", n);
    }
    bp_strbuf_free(&sb);
    return out;
}

size_t bp_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* s[n] continues a character: keep none of it */
    return n;
}

void bp_byte_pairs_note(bp_byte_pairs *p, const char *s, size_t len)
{
    memset(p->bits, 0, sizeof(p->bits));
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned pair = BP_BYTE_PAIR(s[i], s[i + 1]);
        p->bits[pair >> 6] |= (uint64_t)1 << (pair & 63);
    }
}

const char *bp_byte_pairs_memmem(const bp_byte_pairs *p, const char *hay, size_t len, const char *needle, size_t n)
{
    if (p != NULL && !bp_byte_pairs_may_hold(p, needle, n))
        return NULL;
    return memmem(hay, len, needle, n);
}

int bp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII, the bulk of mail text, eight bytes at a time: no byte with its high bit set */
        uint64_t w = 0;
        while (i + sizeof(w) <= len) {
            memcpy(&w, p + i, sizeof(w));
            if ((w & UINT64_C(0x8080808080808080)) != 0)
                break;
            i += sizeof(w);
        }
        if (i >= len)
            break;
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
    size_t o = 0, i = 0;
    int pending_space = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7F) { /* printable ASCII, most of any text: as it is */
            if (o + (size_t)pending_space + 1 > max_bytes)
                break;
            if (pending_space) {
                out[o++] = ' ';
                pending_space = 0;
            }
            out[o++] = (char)c;
            i++;
            continue;
        }
        bp_text_kind kind;
        size_t n = bp_text_char(s + i, len - i, &kind, NULL);
        if (kind == BP_TEXT_SPACE) {
            pending_space = o > 0;
            i += n;
            continue;
        }
        const char *src = s + i;
        i += n;
        if (kind != BP_TEXT_PLAIN) {
            src = "?"; /* a control, an unsafe format character or an invalid byte */
            n = 1;
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

/* Longest duration a setting takes: a year (a longer window or delay is a typo). */
#define MAX_DURATION_MS (366LL * 86400000LL)

bp_status bp_parse_duration_ms(const char *s, long long *ms)
{
    static const struct {
        const char *suffix;
        long long ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000}, {"", 1000}};
    if (s == NULL)
        return BP_ERR_CONFIG;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return BP_ERR_CONFIG;
    /* whole and fraction in integers: no locale, no rounding surprise ("1.5s" is 1500 ms) */
    long long whole = 0, frac = 0, scale = 1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > MAX_DURATION_MS)
            return BP_ERR_CONFIG;
        whole = whole * 10 + (*s - '0');
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++)
            if (scale < 1000000000LL) {
                frac = frac * 10 + (*s - '0');
                scale *= 10;
            }
    }
    size_t len = strcspn(s, " \t");
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].suffix) != len || strncmp(s, units[i].suffix, len) != 0)
            continue;
        const char *rest = s + len;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        if (*rest != '\0' || whole > MAX_DURATION_MS / units[i].ms)
            return BP_ERR_CONFIG;
        long long r = whole * units[i].ms + frac * units[i].ms / scale;
        if (r > MAX_DURATION_MS)
            return BP_ERR_CONFIG;
        *ms = r;
        return BP_OK;
    }
    return BP_ERR_CONFIG;
}

const char *bp_arena_cut(bp_arena **arena, const char *s, size_t max, int *nomem)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len <= max)
        return s;
    if (*arena == NULL && (*arena = bp_arena_new()) == NULL) {
        *nomem = 1;
        return NULL;
    }
    const char *copy = bp_arena_strndup(*arena, s, bp_utf8_cut(s, len, max));
    if (copy == NULL)
        *nomem = 1;
    return copy;
}
