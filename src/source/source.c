/*
 * source.c - message sources: file, directory, Maildir, mbox, stdin.
 *
 * bp_source_open() expands a directory into a sorted list of files at once (names only);
 * bp_source_next() then reads one file at a time.  Symbolic links to directories are
 * followed, but no directory is entered twice (by device and inode), so a link loop is read
 * once, not once per path around it (a loop of two links made 131,071 copies of a message).  A file whose first line
 * starts with "From " is an mbox and is read as a stream: a message ends where a "From " line follows a blank line;
 * ">From " (any number of '>') loses one '>' (mboxrd; for mboxo this undoes the usual escaping too).  A single-message
 * mbox is named like a plain file.
 *
 * Memory is bounded whatever the input: an mbox, standard input and other non-regular files
 * are read through a 64 KiB line reader that hands out long lines in pieces (a 10 MB header
 * line or a 1 GB file without a newline costs one chunk), and a message keeps at most
 * BP_MAX_MESSAGE_BYTES (the rest is skipped, the message flagged truncated).  A 1 GB mbox
 * costs its largest message plus one chunk.  A regular file that is not an mbox is read
 * whole with read() straight into the message buffer (no stdio buffer, no per-line copy);
 * when it is longer than BP_MAX_MESSAGE_BYTES it is cut where the line reader would have
 * stopped (read_plain_file()), so both ways give the same bytes.
 *
 * Ownership: the source owns the message buffer, the chunk and the names it hands out.
 */
#include "bouncepipe/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bouncepipe/alloc.h"
#include "bouncepipe/limits.h"
#include "bouncepipe/text.h"

/* Bytes the line reader buffers: a line longer than this is handled in pieces. */
#define SOURCE_CHUNK 65536u

/* A directory by identity, whatever path reached it. */
struct dir_id {
    dev_t dev;
    ino_t ino;
};

struct bp_source {
    char **files; /* paths to read, in order */
    size_t n_files, cap_files, next_file;
    struct dir_id *dirs; /* directories entered, sorted: none is entered twice */
    size_t n_dirs, cap_dirs;
    /* current file */
    FILE *fp;
    int fp_is_stdin;
    char *cur_path;
    int in_mbox;
    size_t mbox_index;
    int next_from; /* a "From " separator was read: another message follows */
    int skip_line; /* the rest of the current physical line is not message text */
    /* line reader: lines come out in pieces of at most SOURCE_CHUNK bytes, so that a
     * 10 MB line (or a 1 GB file without a newline) costs one chunk, not the line */
    char *rbuf;
    size_t rpos, rlen;
    int r_eof;
    int r_line_start; /* the next piece starts a physical line */
    /* current message */
    char *buf;
    size_t buf_len, buf_cap;
    char *name;
    int truncated;
};

static bp_status add_file(bp_source *s, const char *path)
{
    char **nf = bp_grow(s->files, s->n_files, &s->cap_files, sizeof(*nf), 16);
    if (nf == NULL)
        return BP_ERR_NOMEM;
    s->files = nf;
    s->files[s->n_files] = bp_strdup(path);
    if (s->files[s->n_files] == NULL)
        return BP_ERR_NOMEM;
    s->n_files++;
    return BP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bp_status add_dir(bp_source *s, const char *path, unsigned depth);

static int cmp_dir_id(const struct dir_id *a, const struct dir_id *b)
{
    if (a->dev != b->dev)
        return a->dev < b->dev ? -1 : 1;
    return a->ino < b->ino ? -1 : a->ino > b->ino ? 1 : 0;
}

/* Note directory @p path as entered.  @return BP_OK and *@p again = 1 when it was entered
 * before (by another path: a symbolic link, a bind mount), BP_ERR_NOT_FOUND / BP_ERR_IO when
 * it cannot be looked at, BP_ERR_NOMEM. */
static bp_status enter_dir(bp_source *s, const char *path, int *again)
{
    struct stat sb;
    *again = 0;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
    struct dir_id id = {sb.st_dev, sb.st_ino};
    size_t lo = 0, hi = s->n_dirs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_dir_id(&s->dirs[mid], &id);
        if (c == 0) {
            *again = 1;
            return BP_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct dir_id *nd = bp_grow(s->dirs, s->n_dirs, &s->cap_dirs, sizeof(*nd), 16);
    if (nd == NULL)
        return BP_ERR_NOMEM;
    s->dirs = nd;
    memmove(s->dirs + lo + 1, s->dirs + lo, (s->n_dirs - lo) * sizeof(*s->dirs));
    s->dirs[lo] = id;
    s->n_dirs++;
    return BP_OK;
}

/* A Maildir: new/ (not yet seen) before cur/; tmp/ holds partial deliveries and is skipped. */
static bp_status add_maildir(bp_source *s, const char *path, unsigned depth)
{
    static const char *const subdirs[] = {"new", "cur"};
    for (int i = 0; i < 2; i++) {
        char *sub = NULL;
        size_t n = strlen(path) + 5;
        sub = bp_malloc(n);
        if (sub == NULL)
            return BP_ERR_NOMEM;
        snprintf(sub, n, "%s/%s", path, subdirs[i]);
        bp_status st = add_dir(s, sub, depth + 1);
        free(sub);
        if (st != BP_OK)
            return st;
    }
    return BP_OK;
}

static bp_status add_dir(bp_source *s, const char *path, unsigned depth)
{
    if (depth > 16)
        return BP_OK; /* absurd trees */
    int again = 0;
    bp_status entered = enter_dir(s, path, &again);
    if (entered != BP_OK || again)
        return entered; /* a directory reached again (a symbolic link loop): read once */
    char probe_new[4096], probe_cur[4096];
    snprintf(probe_new, sizeof(probe_new), "%s/new", path);
    snprintf(probe_cur, sizeof(probe_cur), "%s/cur", path);
    if (is_dir(probe_new) && is_dir(probe_cur))
        return add_maildir(s, path, depth);

    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
    char **names = NULL;
    size_t n = 0, cap = 0;
    bp_status st = BP_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char **nn = bp_grow(names, n, &cap, sizeof(*nn), 64);
        if (nn == NULL) {
            st = BP_ERR_NOMEM;
            goto out;
        }
        names = nn;
        names[n] = bp_strdup(de->d_name);
        if (names[n] == NULL) {
            st = BP_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    bp_sort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        size_t len = strlen(path) + strlen(names[i]) + 2;
        char *full = bp_malloc(len);
        if (full == NULL) {
            st = BP_ERR_NOMEM;
            break;
        }
        snprintf(full, len, "%s/%s", path, names[i]);
        st = is_dir(full) ? add_dir(s, full, depth + 1) : add_file(s, full);
        free(full);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return st;
}

bp_status bp_source_open(const char *path, bp_source **out)
{
    bp_source *s = bp_calloc(1, sizeof(*s));
    if (s == NULL)
        return BP_ERR_NOMEM;
    bp_status st;
    if (strcmp(path, "-") == 0) {
        st = add_file(s, "-");
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            st = errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
        } else if (S_ISDIR(sb.st_mode)) {
            st = add_dir(s, path, 0);
        } else {
            st = add_file(s, path);
        }
    }
    if (st != BP_OK) {
        bp_source_close(s);
        return st;
    }
    *out = s;
    return BP_OK;
}

/* Make room for @need bytes in the message buffer (@need <= BP_MAX_MESSAGE_BYTES + 1). */
static bp_status buf_reserve(bp_source *s, size_t need)
{
    /* never more than the limit needs */
    char *nb = bp_reserve(s->buf, &s->buf_cap, need, 65536, (size_t)BP_MAX_MESSAGE_BYTES + 1);
    if (nb == NULL)
        return BP_ERR_NOMEM;
    s->buf = nb;
    return BP_OK;
}

static bp_status buf_append(bp_source *s, const char *data, size_t len)
{
    if (s->truncated)
        return BP_OK;
    if (s->buf_len + len > BP_MAX_MESSAGE_BYTES) {
        s->truncated = 1;
        return BP_OK;
    }
    if (buf_reserve(s, s->buf_len + len + 1) != BP_OK)
        return BP_ERR_NOMEM;
    memcpy(s->buf + s->buf_len, data, len);
    s->buf_len += len;
    s->buf[s->buf_len] = '\0';
    return BP_OK;
}

static void close_current(bp_source *s)
{
    if (s->fp != NULL && !s->fp_is_stdin)
        fclose(s->fp);
    s->fp = NULL;
    s->fp_is_stdin = 0;
    free(s->cur_path);
    s->cur_path = NULL;
    s->next_from = 0;
    s->skip_line = 0;
    s->in_mbox = 0;
    s->mbox_index = 0;
    s->rpos = s->rlen = 0;
    s->r_eof = 0;
    s->r_line_start = 1;
}

static int is_from_line(const char *line, size_t len)
{
    return len >= 5 && memcmp(line, "From ", 5) == 0;
}

/*
 * A separator in its full RFC 4155 form, "From SENDER DAY MON ...": some mailbox writers
 * omit the blank line before it, and this shape is too specific to be body text (which
 * mboxo/mboxrd writers escape anyway).
 */
static int is_strict_from_line(const char *line, size_t len)
{
    static const char *const days[] = {"Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "};
    if (!is_from_line(line, len))
        return 0;
    size_t i = 5;
    while (i < len && line[i] != ' ' && line[i] != '\n')
        i++; /* the envelope sender */
    if (i == 5)
        return 0;
    while (i < len && line[i] == ' ')
        i++;
    if (len - i < 8)
        return 0;
    for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++)
        if (memcmp(line + i, days[d], 4) == 0)
            return 1;
    return 0;
}

/*
 * Next piece of the current file: up to and including a newline, or SOURCE_CHUNK bytes of a
 * longer line.  @p line_start says whether the piece begins a physical line.
 * @return 1 and the piece (pointing into the reader's buffer, valid until the next call),
 *         0 at the end of the file, -1 on a read error.
 */
static int next_piece(bp_source *s, const char **piece, size_t *len, int *line_start)
{
    if (s->rbuf == NULL && (s->rbuf = bp_malloc(SOURCE_CHUNK)) == NULL)
        return -1;
    const char *nl = s->rlen > s->rpos ? memchr(s->rbuf + s->rpos, '\n', s->rlen - s->rpos) : NULL;
    if (nl == NULL && !s->r_eof) {
        /* move what is left to the front and fill the buffer */
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
        while (s->rlen < SOURCE_CHUNK && !s->r_eof) {
            size_t got = fread(s->rbuf + s->rlen, 1, SOURCE_CHUNK - s->rlen, s->fp);
            if (got == 0) {
                if (ferror(s->fp))
                    return -1;
                s->r_eof = 1;
                break;
            }
            const char *fresh = memchr(s->rbuf + s->rlen, '\n', got);
            s->rlen += got;
            if (fresh != NULL)
                break;
        }
        nl = s->rlen > 0 ? memchr(s->rbuf, '\n', s->rlen) : NULL;
    }
    if (s->rpos >= s->rlen)
        return 0;
    size_t n = nl != NULL ? (size_t)(nl - (s->rbuf + s->rpos)) + 1 : s->rlen - s->rpos;
    *piece = s->rbuf + s->rpos;
    *len = n;
    *line_start = s->r_line_start;
    s->rpos += n;
    s->r_line_start = nl != NULL;
    return 1;
}

/*
 * Read one mbox message: the pieces up to the next "From " line that follows a blank line
 * (which is consumed, and sets next_from).  Nothing is kept of a line but its pieces, so a
 * message costs at most BP_MAX_MESSAGE_BYTES and a line at most SOURCE_CHUNK.
 */
static bp_status read_mbox_message(bp_source *s, int *more)
{
    const char *p;
    size_t len;
    int line_start, got, prev_blank = 1;
    bp_status st = BP_OK;
    *more = 0;
    s->next_from = 0;
    while ((got = next_piece(s, &p, &len, &line_start)) > 0) {
        if (!line_start && s->skip_line)
            continue; /* rest of a separator line */
        s->skip_line = 0;
        if (line_start && (prev_blank ? is_from_line(p, len) : is_strict_from_line(p, len)) && s->buf_len > 0) {
            s->skip_line = 1; /* the separator of the next message */
            s->next_from = 1;
            *more = 1;
            break;
        }
        if (line_start) {
            prev_blank = (len == 1 && p[0] == '\n') || (len == 2 && p[0] == '\r' && p[1] == '\n');
            size_t gt = 0;
            while (gt < len && p[gt] == '>')
                gt++;
            if (gt > 0 && is_from_line(p + gt, len - gt)) {
                p++;
                len--;
            }
        } else {
            prev_blank = 0;
        }
        if ((st = buf_append(s, p, len)) != BP_OK)
            break;
    }
    if (got < 0 && st == BP_OK)
        st = BP_ERR_IO;
    /* the blank line before a separator belongs to the separator (RFC 4155) */
    if (*more && s->buf_len > 0 && s->buf[s->buf_len - 1] == '\n') {
        s->buf_len--;
        if (s->buf_len > 0 && s->buf[s->buf_len - 1] == '\r')
            s->buf_len--;
        s->buf[s->buf_len] = '\0';
    }
    return st;
}

/*
 * Read the regular file @fd (@size bytes by fstat, a hint: the file is read to its end) into
 * the message buffer, unless it is an mbox (*@is_mbox set, nothing kept: the caller rewinds
 * and streams it).  The first read() is at most one chunk, so an mbox is not read whole.
 *
 * The bytes are those the line reader would have kept: all of them, or, past
 * BP_MAX_MESSAGE_BYTES, the whole pieces that fit.  Its pieces are lines, a line longer than
 * SOURCE_CHUNK cut into SOURCE_CHUNK pieces from the line start; so the cut is at the last
 * line end within the limit, moved on by as many whole chunks of the next line as fit.
 */
static bp_status read_plain_file(bp_source *s, int fd, off_t size, int *is_mbox)
{
    const size_t max = BP_MAX_MESSAGE_BYTES;
    size_t want = size <= 0 ? 0 : (unsigned long long)size < max ? (size_t)size : max, len = 0;
    int checked = 0; /* the mbox test is done */
    bp_status st = BP_OK;
    *is_mbox = 0;
    if (buf_reserve(s, (want < SOURCE_CHUNK ? want : SOURCE_CHUNK) + 1) != BP_OK)
        return BP_ERR_NOMEM;
    for (;;) {
        if (len + 1 == s->buf_cap) {
            if (len == max) {
                char probe;
                ssize_t more;
                while ((more = read(fd, &probe, 1)) < 0 && errno == EINTR) {
                }
                if (more < 0)
                    st = BP_ERR_IO;
                s->truncated = more > 0;
                break;
            }
            size_t need = len * 2; /* the buffer is full and the file goes on */
            if (buf_reserve(s, (need < max ? need : max) + 1) != BP_OK) {
                st = BP_ERR_NOMEM;
                break;
            }
        }
        size_t room = s->buf_cap - 1 - len;
        if (!checked && room > SOURCE_CHUNK - len)
            room = SOURCE_CHUNK - len;
        ssize_t got = read(fd, s->buf + len, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            st = BP_ERR_IO;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (!checked && len >= 5) {
            if (is_from_line(s->buf, len)) {
                *is_mbox = 1;
                s->buf[0] = '\0';
                return BP_OK;
            }
            checked = 1;
            if (buf_reserve(s, want + 1) != BP_OK) {
                st = BP_ERR_NOMEM;
                break;
            }
        }
    }
    if (s->truncated) {
        size_t line = len; /* start of the line that crosses the limit */
        while (line > 0 && s->buf[line - 1] != '\n')
            line--;
        len = line + (len - line) / SOURCE_CHUNK * SOURCE_CHUNK;
    }
    s->buf_len = len;
    s->buf[len] = '\0';
    return st;
}

/*
 * Open the file at @path.  A regular file that is not an mbox is read whole here (*@read_whole
 * set: the message is in the buffer, the file closed again); anything else is opened for the
 * line reader (s->fp).  @return BP_OK, or the error (s->fp stays NULL unless read whole).
 */
static bp_status open_file(bp_source *s, const char *path, int *read_whole)
{
    *read_whole = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        int is_mbox = 0;
        bp_status st = read_plain_file(s, fd, sb.st_size, &is_mbox);
        if (!is_mbox) {
            close(fd);
            *read_whole = 1;
            return st;
        }
        if (lseek(fd, 0, SEEK_SET) != 0) {
            close(fd);
            return BP_ERR_IO;
        }
    }
    s->fp = fdopen(fd, "rb");
    if (s->fp == NULL) {
        close(fd);
        return BP_ERR_IO;
    }
    return BP_OK;
}

static bp_status set_name(bp_source *s, size_t index, int numbered)
{
    free(s->name);
    s->name = NULL;
    if (!numbered) {
        s->name = bp_strdup(s->cur_path);
    } else {
        size_t n = strlen(s->cur_path) + 24;
        s->name = bp_malloc(n);
        if (s->name != NULL)
            snprintf(s->name, n, "%s#%zu", s->cur_path, index);
    }
    return s->name != NULL ? BP_OK : BP_ERR_NOMEM;
}

/* Hand out the message collected in s->buf; @p path names it when set_name() could not. */
static void hand_out(const bp_source *s, bp_source_msg *msg, const char *path)
{
    msg->data = s->buf != NULL ? s->buf : "";
    msg->len = s->buf_len;
    msg->name = s->name != NULL ? s->name : path;
    msg->truncated = s->truncated;
}

bp_status bp_source_next(bp_source *s, bp_source_msg *msg, int *done)
{
    *done = 0;
    s->buf_len = 0;
    s->truncated = 0;
    if (s->buf != NULL)
        s->buf[0] = '\0';
    for (;;) {
        if (s->fp != NULL && s->in_mbox) {
            if (!s->next_from) {
                close_current(s);
                continue;
            }
            int more = 0;
            s->mbox_index++;
            bp_status st = read_mbox_message(s, &more);
            if (st == BP_OK)
                st = set_name(s, s->mbox_index, more || s->mbox_index > 1);
            hand_out(s, msg, NULL);
            return st;
        }
        if (s->fp != NULL || s->cur_path != NULL)
            close_current(s); /* a plain file is closed already, its path not yet freed */
        if (s->next_file >= s->n_files) {
            *done = 1;
            return BP_OK;
        }
        const char *path = s->files[s->next_file++];
        s->cur_path = bp_strdup(path);
        if (s->cur_path == NULL)
            return BP_ERR_NOMEM;
        bp_status st = BP_OK;
        if (strcmp(path, "-") == 0) {
            s->fp = stdin;
            s->fp_is_stdin = 1;
        } else {
            int read_whole = 0;
            st = open_file(s, path, &read_whole);
            if (read_whole) {
                if (st == BP_OK)
                    st = set_name(s, 0, 0);
                hand_out(s, msg, path);
                close_current(s); /* and forget its path */
                return st;
            }
        }
        if (s->fp == NULL) {
            set_name(s, 0, 0);
            msg->name = s->name;
            msg->data = "";
            msg->len = 0;
            msg->truncated = 0;
            free(s->cur_path);
            s->cur_path = NULL;
            return st;
        }
        /* peek the first line: an mbox starts with "From " */
        s->rpos = s->rlen = 0;
        s->r_eof = 0;
        s->r_line_start = 1;
        const char *p;
        size_t len;
        int line_start;
        int got = next_piece(s, &p, &len, &line_start);
        if (got > 0 && is_from_line(p, len)) {
            s->in_mbox = 1;
            s->next_from = 1;
            s->skip_line = 1;
            continue;
        }
        while (got > 0 && st == BP_OK && !s->truncated) {
            st = buf_append(s, p, len);
            got = next_piece(s, &p, &len, &line_start);
        }
        if (st == BP_OK && got < 0)
            st = BP_ERR_IO;
        if (st == BP_OK)
            st = set_name(s, 0, 0);
        hand_out(s, msg, path);
        /* plain file done: close it now (and forget its path), the next call opens the next one */
        close_current(s);
        return st;
    }
}

void bp_source_progress(const bp_source *s, size_t *files_done, size_t *files_total)
{
    *files_done = s->next_file;
    *files_total = s->n_files;
}

void bp_source_close(bp_source *s)
{
    if (s == NULL)
        return;
    close_current(s);
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    free(s->dirs);
    free(s->buf);
    free(s->rbuf);
    free(s->name);
    free(s);
}
