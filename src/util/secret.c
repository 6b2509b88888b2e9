/*
 * secret.c - mask passwords in database locations and in messages about them (secret.h).
 *
 * One scanner serves both entry points.  It copies text to a bounded output and, on the way,
 * replaces with BP_SECRET_MASK:
 *   - in a URL (scheme "://" anywhere): the password of the user information - everything
 *     from the first ':' to the '@' that ends it (mask_url() says which: an unencoded '@',
 *     '/' or '?' in a password hides more, not less) - and the value of every query parameter whose key,
 *     percent-decoded, is secret (bp_secret_key()), together with any following parameter
 *     without '=' (what an unencoded '&' inside a password leaves behind);
 *   - outside URLs: the value of every secret key=value pair (libpq connection-string
 *     syntax: blanks around '=', a value single-quoted with backslash escapes or unquoted up
 *     to white space; an unterminated quote masks to the end) and, in a location, the bare
 *     words after it (an unquoted value with a blank in it);
 *   - in messages only: the double-quoted fragment after the phrases with which libpq quotes
 *     part of a connection string it could not parse (QUOTING_PHRASES), and every occurrence
 *     of a secret value the location holds (collected by masking the location first).
 * A URL inside a message runs to the end of its line (libpq puts the URI it echoes last,
 * in quotes), a URL inside a connection string to the next blank, a URL location to its end.
 *
 * Ownership: output goes to the caller's buffer; nothing is allocated.
 */
#include "bouncepipe/secret.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Secret values of a location remembered for bp_secret_scrub(): as written and decoded. */
#define MAX_SECRETS    16
#define MAX_SECRET_LEN 256

struct secrets {
    size_t n;
    const char *raw[MAX_SECRETS]; /* into the location */
    size_t raw_len[MAX_SECRETS];
    char decoded[MAX_SECRETS][MAX_SECRET_LEN];
    size_t decoded_len[MAX_SECRETS];
};

struct out {
    char *buf;
    size_t size, len;
};

enum mode {
    MODE_LOCATION, /* the text is a store location */
    MODE_MESSAGE,  /* the text is a message that may quote one */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->size == 0)
        return;
    size_t room = o->size - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put_mask(struct out *o)
{
    put(o, BP_SECRET_MASK, sizeof(BP_SECRET_MASK) - 1);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode @p s[0..n) into @p dst (at most @p cap - 1 bytes, NUL-terminated); a
 * malformed escape stays as it is. @return the decoded length. */
static size_t percent_decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1, lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            dst[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[k++] = s[i];
        }
    }
    dst[k] = '\0';
    return k;
}

int bp_secret_key(const char *key, size_t len)
{
    static const char *const names[] = {"password", "sslpassword", "oauth_client_secret"};
    char k[128];
    size_t n = percent_decode(key, len, k, sizeof(k));
    while (n > 0 && (k[n - 1] == ' ' || k[n - 1] == '\t'))
        k[--n] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(k, names[i]) == 0)
            return 1;
    for (size_t i = 0; i < n; i++)
        k[i] = (char)tolower((unsigned char)k[i]);
    return strstr(k, "password") != NULL || strstr(k, "secret") != NULL;
}

/* Remember a secret value of the location (and its percent-decoded form). */
static void remember(struct secrets *sec, const char *raw, size_t len, int decode)
{
    if (sec == NULL || len == 0 || sec->n == MAX_SECRETS)
        return;
    size_t i = sec->n++;
    sec->raw[i] = raw;
    sec->raw_len[i] = len;
    if (decode) {
        sec->decoded_len[i] = percent_decode(raw, len, sec->decoded[i], sizeof(sec->decoded[i]));
    } else { /* a quoted connection-string value: backslash escapes */
        size_t k = 0;
        for (size_t j = 0; j < len && k + 1 < sizeof(sec->decoded[i]); j++) {
            if (raw[j] == '\\' && j + 1 < len)
                j++;
            sec->decoded[i][k++] = raw[j];
        }
        sec->decoded[i][k] = '\0';
        sec->decoded_len[i] = k;
    }
}

/* Remember the pieces of a value that libpq would split at '@' or '&' (a malformed
 * location: libpq may quote one piece alone). */
static void remember_pieces(struct secrets *sec, const char *raw, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || raw[i] == '@' || raw[i] == '&') {
            if (start > 0 || i < len)
                remember(sec, raw + start, i - start, 1);
            start = i + 1;
        }
    }
}

static int scheme_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

/* Is there a URL scheme ("name://") starting at s[i]?  @return the offset of "://" or 0. */
static size_t url_at(const char *s, size_t n, size_t i)
{
    if (!isalpha((unsigned char)s[i]) || (i > 0 && scheme_char(s[i - 1])))
        return 0;
    size_t j = i;
    while (j < n && scheme_char(s[j]))
        j++;
    return j + 3 <= n && memcmp(s + j, "://", 3) == 0 ? j : 0;
}

/* Mask the URL s[0..n) (its scheme ends at @p sep, the "://"). */
static void mask_url(struct out *o, const char *s, size_t n, size_t sep, struct secrets *sec)
{
    size_t p = sep + 3;
    /* the end of the user information: the last '@' before the first '?' (an unencoded '@'
     * or '/' in a password), or libpq's own choice, the first '@' before the first '/' (an
     * unencoded '?' in a password), whichever comes later; 0 for none */
    size_t at = 0;
    for (size_t i = p; i < n && s[i] != '?'; i++)
        if (s[i] == '@')
            at = i;
    for (size_t i = p; i < n && s[i] != '/'; i++)
        if (s[i] == '@') {
            at = i > at ? i : at;
            break;
        }
    size_t q = p; /* start of what follows the user information */
    if (at > 0) {
        const char *colon = memchr(s + p, ':', at - p);
        if (colon != NULL) {
            size_t c = (size_t)(colon - s);
            put(o, s, c + 1);
            put_mask(o);
            remember(sec, s + c + 1, at - c - 1, 1);
            remember_pieces(sec, s + c + 1, at - c - 1);
            q = at;
        }
    }
    if (q == p)
        put(o, s, p);
    const char *qm = memchr(s + q, '?', n - q);
    size_t query = qm != NULL ? (size_t)(qm - s) : n;
    put(o, s + q, query - q);
    if (query == n)
        return;
    put(o, "?", 1);
    size_t i = query + 1;
    int after_secret = 0;
    while (i <= n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t end = amp != NULL ? (size_t)(amp - s) : n;
        const char *eq = memchr(s + i, '=', end - i);
        if (eq != NULL && bp_secret_key(s + i, (size_t)(eq - s) - i)) {
            size_t v = (size_t)(eq - s) + 1;
            put(o, s + i, v - i);
            put_mask(o);
            remember(sec, s + v, end - v, 1);
            after_secret = 1;
        } else if (eq == NULL && after_secret && end > i) {
            put_mask(o); /* a piece of the password after an unencoded '&' */
            remember(sec, s + i, end - i, 1);
        } else {
            put(o, s + i, end - i);
            after_secret = 0;
        }
        if (amp == NULL)
            break;
        put(o, "&", 1);
        i = end + 1;
    }
}

/* Where a URL found at s[i] ends in text of @p mode (see the top of the file). */
static size_t url_end(const char *s, size_t n, size_t i, enum mode mode, int whole)
{
    if (whole)
        return n;
    size_t j = i;
    while (j < n && s[j] != '\n' && (mode == MODE_MESSAGE || (s[j] != ' ' && s[j] != '\t')))
        j++;
    /* a message quotes the URI: the closing quote and what follows are not part of it */
    if (mode == MODE_MESSAGE && i > 0 && s[i - 1] == '"') {
        size_t k = j;
        while (k > i && s[k - 1] != '"')
            k--;
        if (k > i)
            j = k - 1;
    }
    return j;
}

static int word_boundary(const char *s, size_t i)
{
    return i == 0 || strchr(" \t\r\n(\"',;", s[i - 1]) != NULL;
}

static int key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '%';
}

/* A secret "key = value" at s[i]?  Masks it and @return the offset after it, else 0. */
static size_t mask_pair(struct out *o, const char *s, size_t n, size_t i, enum mode mode, struct secrets *sec)
{
    if (!word_boundary(s, i) || !key_char(s[i]))
        return 0;
    size_t k = i;
    while (k < n && key_char(s[k]))
        k++;
    size_t e = k;
    while (e < n && (s[e] == ' ' || s[e] == '\t'))
        e++;
    if (e >= n || s[e] != '=' || !bp_secret_key(s + i, k - i))
        return 0;
    e++;
    while (e < n && (s[e] == ' ' || s[e] == '\t'))
        e++;
    put(o, s + i, e - i);
    size_t v = e;
    if (v < n && s[v] == '\'') {
        v++;
        while (v < n && s[v] != '\'')
            v += s[v] == '\\' && v + 1 < n ? 2 : 1;
        remember(sec, s + e + 1, (v < n ? v : n) - e - 1, 0);
        v = v < n ? v + 1 : n;
    } else {
        while (v < n && s[v] != ' ' && s[v] != '\t' && s[v] != '\n' && s[v] != '\r')
            v += s[v] == '\\' && v + 1 < n ? 2 : 1;
        if (v > n)
            v = n;
        remember(sec, s + e, v - e, 0);
    }
    put_mask(o);
    if (mode == MODE_LOCATION) { /* bare words after it: an unquoted value with blanks */
        for (;;) {
            size_t w = v;
            while (w < n && (s[w] == ' ' || s[w] == '\t'))
                w++;
            size_t x = w;
            while (x < n && s[x] != ' ' && s[x] != '\t' && s[x] != '=')
                x++;
            if (w == n || x == w || (x < n && s[x] == '='))
                break;
            put(o, s + v, w - v);
            put_mask(o);
            remember(sec, s + w, x - w, 0);
            v = x;
        }
    }
    return v;
}

/* Phrases after which libpq quotes part of a connection string it could not parse. */
static const char *const QUOTING_PHRASES[] = {
    "percent-encoded token: ", "percent-encoded value: ", "query parameter: ",
    "missing \"=\" after ",    "connection option ",      "port number: ",
};

/* A quoting phrase ending at s[i]?  Masks the quoted fragment after it; @return the offset
 * after the fragment, else 0. */
static size_t mask_quoted(struct out *o, const char *s, size_t n, size_t i)
{
    if (s[i] != '"')
        return 0;
    int found = 0;
    for (size_t p = 0; p < sizeof(QUOTING_PHRASES) / sizeof(QUOTING_PHRASES[0]) && !found; p++) {
        size_t len = strlen(QUOTING_PHRASES[p]);
        found = i >= len && memcmp(s + i - len, QUOTING_PHRASES[p], len) == 0;
    }
    if (!found)
        return 0;
    size_t eol = i + 1;
    while (eol < n && s[eol] != '\n')
        eol++;
    size_t close = eol; /* the last quote of the line: a fragment may hold quotes itself */
    while (close > i + 1 && s[close - 1] != '"')
        close--;
    put(o, "\"", 1);
    put_mask(o);
    if (close > i + 1) {
        put(o, "\"", 1);
        return close;
    }
    return eol;
}

/* A remembered secret value at s[i]?  @return its length, else 0. */
static size_t secret_at(const struct secrets *sec, const char *s, size_t n, size_t i)
{
    size_t best = 0;
    for (size_t k = 0; sec != NULL && k < sec->n; k++) {
        size_t r = sec->raw_len[k], d = sec->decoded_len[k];
        if (r >= BP_SECRET_MIN_MATCH && r <= n - i && r > best && memcmp(s + i, sec->raw[k], r) == 0)
            best = r;
        if (d >= BP_SECRET_MIN_MATCH && d <= n - i && d > best && memcmp(s + i, sec->decoded[k], d) == 0)
            best = d;
    }
    return best;
}

/* The scanner (see the top of the file).  @p find: secrets to look for (messages); @p keep:
 * where to remember the secrets met (locations). */
static void scan(struct out *o, const char *s, enum mode mode, const struct secrets *find, struct secrets *keep)
{
    size_t n = strlen(s);
    size_t whole = mode == MODE_LOCATION ? url_at(s, n, 0) : 0;
    size_t i = 0;
    while (i < n) {
        size_t skip = secret_at(find, s, n, i);
        if (skip > 0) {
            put_mask(o);
            i += skip;
            continue;
        }
        size_t sep = url_at(s, n, i);
        if (sep > 0) {
            size_t end = url_end(s, n, i, mode, i == 0 && whole > 0);
            mask_url(o, s + i, end - i, sep - i, keep);
            i = end;
            continue;
        }
        size_t next = mask_pair(o, s, n, i, mode, keep);
        if (next == 0 && mode == MODE_MESSAGE)
            next = mask_quoted(o, s, n, i);
        if (next > 0) {
            i = next;
            continue;
        }
        put(o, s + i, 1);
        i++;
    }
}

static void out_init(struct out *o, char *buf, size_t size)
{
    o->buf = buf;
    o->size = size;
    o->len = 0;
    if (size > 0)
        buf[0] = '\0';
}

char *bp_secret_mask(const char *location, char *buf, size_t size)
{
    struct out o;
    out_init(&o, buf, size);
    if (location != NULL)
        scan(&o, location, MODE_LOCATION, NULL, NULL);
    return buf;
}

int bp_secret_present(const char *location)
{
    struct secrets sec;
    char scratch[16];
    struct out o;
    sec.n = 0;
    out_init(&o, scratch, sizeof(scratch));
    if (location != NULL)
        scan(&o, location, MODE_LOCATION, NULL, &sec);
    return sec.n > 0;
}

char *bp_secret_scrub(const char *message, const char *location, char *buf, size_t size)
{
    struct secrets sec;
    char scratch[16];
    struct out o;
    sec.n = 0;
    if (location != NULL) { /* collect its secrets; the masked copy itself is not needed */
        out_init(&o, scratch, sizeof(scratch));
        scan(&o, location, MODE_LOCATION, NULL, &sec);
    }
    out_init(&o, buf, size);
    if (message != NULL)
        scan(&o, message, MODE_MESSAGE, &sec, NULL);
    return buf;
}
