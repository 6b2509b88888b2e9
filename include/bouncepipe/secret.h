/*
 * secret.h - passwords in database locations, and in the messages that quote them.
 *
 * A store location may carry a secret: a PostgreSQL URL (postgresql://user:PW@host/db, a
 * query parameter ?password=PW or ?sslpassword=PW, with percent-escapes anywhere) or a libpq
 * key=value connection string (host=db password=PW, password='P W').  Nothing bouncepipe
 * prints to standard error or syslog may show one: a location is printed through
 * bp_secret_mask(), and a message that may quote a location (libpq's own errors echo a
 * malformed URI whole, quote a bad percent-escape, a query parameter or a connection option)
 * through bp_secret_scrub().  This is the one module that knows what a secret looks like; the
 * CLI and the PostgreSQL backend both call it.
 *
 * Masking is conservative: when a location is malformed, more is masked, never less.
 * A masked value reads BP_SECRET_MASK.
 *
 * Ownership: every function writes into the caller's buffer and allocates nothing (the
 * PostgreSQL backend calls it on its error path); output that does not fit is cut, and the
 * buffer is always NUL-terminated.
 */
#ifndef BOUNCEPIPE_SECRET_H
#define BOUNCEPIPE_SECRET_H

#include <stddef.h>

#define BP_SECRET_MASK "***"

/**
 * @return non-zero when the connection parameter named by @p key (@p len bytes, not
 * percent-decoded) carries a secret: libpq's password, sslpassword and oauth_client_secret,
 * and, to be safe with later versions and typos, any name holding "password" or "secret"
 * (ASCII case ignored).
 */
int bp_secret_key(const char *key, size_t len);

/** @return non-zero when @p location (a path, URL or connection string) holds a secret. */
int bp_secret_present(const char *location);

/**
 * Copy @p location into @p buf with every secret replaced by BP_SECRET_MASK: the password
 * of a URL's user information, the values of secret query parameters (keys compared after
 * percent-decoding) and of secret key=value pairs (quoted or not).  A file path comes back as
 * it is.  NULL gives "".
 * @return @p buf.
 */
char *bp_secret_mask(const char *location, char *buf, size_t size);

/**
 * Copy @p message into @p buf with whatever may be a secret masked: every URL in it (as
 * bp_secret_mask() does), every secret key=value pair, the quoted fragment of libpq's
 * messages that quote part of a connection string (a percent-encoded token or value, a URI
 * query parameter, a connection option, a port), and, when @p location is given, every
 * occurrence of one of its secret values (as written and percent-decoded; values shorter than
 * BP_SECRET_MIN_MATCH bytes are left to the other rules, so that a one-letter password does
 * not mask every such letter of the message).
 * @param location the location the message is about, or NULL
 * @return @p buf.
 */
char *bp_secret_scrub(const char *message, const char *location, char *buf, size_t size);

/** Shortest secret value bp_secret_scrub() looks for by itself in a message. */
#define BP_SECRET_MIN_MATCH 3

#endif
