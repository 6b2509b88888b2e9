/*
 * smtpcode.c - scanners for SMTP reply codes and enhanced status codes.
 *
 * Tokens are delimited so that "192.0.2.1", "10.5.1.1" or "v1.2.3" never read as codes:
 * the character before a code must not be a digit, letter or dot, and the one after must
 * not be a digit or a dot followed by a digit.
 */
#include "bouncepipe/smtpcode.h"

#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Try to read X.Y.Z at text[i]; returns the length consumed or 0. */
static size_t read_status(const char *text, size_t len, size_t i, char out[BP_STATUS_BUF])
{
    if (i >= len || (text[i] != '2' && text[i] != '4' && text[i] != '5'))
        return 0;
    if (i > 0 && (is_alnum(text[i - 1]) || text[i - 1] == '.'))
        return 0;
    size_t p = i + 1;
    size_t parts[2];
    for (int k = 0; k < 2; k++) {
        if (p >= len || text[p] != '.')
            return 0;
        p++;
        size_t start = p;
        while (p < len && is_digit(text[p]) && p - start < 4)
            p++;
        if (p == start || p - start > 3)
            return 0;
        parts[k] = p - start;
    }
    (void)parts;
    if (p < len && (is_digit(text[p]) || (text[p] == '.' && p + 1 < len && is_digit(text[p + 1]))))
        return 0;
    size_t n = p - i;
    if (n >= BP_STATUS_BUF)
        return 0;
    memcpy(out, text + i, n);
    out[n] = '\0';
    return n;
}

int bp_status_code_parse(const char *text, char out[BP_STATUS_BUF])
{
    if (text == NULL)
        return 0;
    while (*text == ' ' || *text == '\t')
        text++;
    return read_status(text, strlen(text), 0, out) > 0;
}

int bp_status_code_find(const char *text, size_t len, char out[BP_STATUS_BUF])
{
    if (text == NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (read_status(text, len, i, out) > 0)
            return 1;
    return 0;
}

int bp_smtp_code_find(const char *text, size_t len, char out[4])
{
    if (text == NULL)
        return 0;
    for (size_t i = 0; i + 3 <= len; i++) {
        char c = text[i];
        if (c != '2' && c != '4' && c != '5')
            continue;
        if (i > 0 && (is_alnum(text[i - 1]) || text[i - 1] == '.' || text[i - 1] == '-' || text[i - 1] == ':' ||
                      text[i - 1] == '#' || text[i - 1] == '/'))
            continue;
        if (!is_digit(text[i + 1]) || !is_digit(text[i + 2]))
            continue;
        if (text[i + 1] > '5')
            continue;
        if (i + 3 < len) {
            char n = text[i + 3];
            if (!(n == ' ' || n == '-' || n == '\t' || n == '\n' || n == '\r' || n == ')' || n == ']' || n == ',' ||
                  n == ';' || (n == '.' && (i + 4 >= len || !is_digit(text[i + 4])))))
                continue;
        }
        memcpy(out, text + i, 3);
        out[3] = '\0';
        return 1;
    }
    return 0;
}
