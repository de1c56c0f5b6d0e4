/* csv.c - CSV source: "timestamp,<channel>[unit],..." text, one frame a row.
 *
 * Reads through one fixed buffer (a read call per BUF_SIZE bytes, never per
 * sample); a line is bounded by CSV_MAX_LINE and anything wrong in the input
 * is an error carrying its line number.  When no rate is given, the first
 * rows are parsed ahead and the rate is the median of their timestamp steps.
 * The timestamp text of each frame of the last block is kept so replay can
 * write it back unchanged.
 *
 * Latency: a stream with a file descriptor is read with read(2), not fread,
 * and next() returns as soon as it holds at least one complete row and no
 * more bytes are ready (poll with a zero timeout).  fread on a pipe waited
 * until its whole 64 KB buffer was filled, and next() until its block of
 * rows was: the row that should trigger sat unread behind rows not yet
 * written.  A regular file still fills the block in big reads. */
#include "agent/source/source.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define CSV_MAX_LINE 4096       /* bytes, without the line end */
#define TS_MAX 48               /* timestamp text, with its NUL */
#define BLOCK_MAX 256           /* frames per next(): the size of the ts text store */
#define AHEAD 64                /* rows parsed ahead to estimate the rate */

/* How read_line may wait for bytes. */
enum wait_mode {
    WAIT_BLOCK,                 /* until a line or end of input, whatever signal comes */
    WAIT_STOP,                  /* header, read-ahead, first row of a block: may be cut
                                   short by a signal */
    WAIT_NONE                   /* rows already in hand: only bytes ready now */
};
#define LINE_LATER 2            /* read_line: no complete line without waiting */

struct csv {
    FILE *f;
    int fd;                     /* fileno(f), or -1 (fmemopen): then fread */
    int own;                    /* fclose at close */
    char name[128];
    char buf[BUF_SIZE];
    size_t pos, len;
    int eof;
    uint64_t line;              /* number of the last line read */
    char ts[BLOCK_MAX][TS_MAX]; /* texts of the last block */
    size_t ts_n;
    /* rows parsed ahead at open, handed out first */
    float *ahead;               /* AHEAD * channels */
    int64_t ahead_t[AHEAD];
    char ahead_ts[AHEAD][TS_MAX];
    size_t ahead_n, ahead_pos;
    int failed;                 /* sticky error code */
};

static _Thread_local char open_err[256];

const char *source_open_error(void)
{
    return open_err;
}

void source_set_open_error(const char *msg)
{
    snprintf(open_err, sizeof(open_err), "%s", msg ? msg : "");
}

/* Reads more bytes into buf[len, room).  Returns the count (0 at end of
 * input), LINE_LATER (as a negative: -LINE_LATER) when mode says not to wait
 * or a signal cut a WAIT_STOP read short, or SOURCE_EIO. */
static ssize_t fill(struct csv *c, size_t room, enum wait_mode mode)
{
    if (c->fd < 0) {
        size_t got = fread(c->buf + c->len, 1, room, c->f);

        return got == 0 && ferror(c->f) ? SOURCE_EIO : (ssize_t)got;
    }
    if (mode == WAIT_NONE) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

        if (poll(&pfd, 1, 0) <= 0)
            return -LINE_LATER;     /* nothing ready (or interrupted): hand over what we have */
    }
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->len, room);

        if (r >= 0)
            return r;
        if (errno != EINTR)
            return SOURCE_EIO;
        /* The agent's handled signals ask it to stop: give control back. */
        if (mode != WAIT_BLOCK)
            return -LINE_LATER;
    }
}

/* Next line, NUL-terminated in place (line end and a trailing CR removed).
 * Returns 1 with *out, 0 at end of input, LINE_LATER when mode forbids the
 * wait a complete line needs, or a negative error. */
static int read_line(struct csv *c, char **out, enum wait_mode mode, char *err, size_t errlen)
{
    for (;;) {
        char *start = c->buf + c->pos;
        char *nl = memchr(start, '\n', c->len - c->pos);
        size_t n;

        if (nl || (c->eof && c->pos < c->len)) {
            n = nl ? (size_t)(nl - start) : c->len - c->pos;
            c->line++;
            if (n > CSV_MAX_LINE) {
                snprintf(err, errlen, "%s: line %llu: longer than %d bytes", c->name,
                         (unsigned long long)c->line, CSV_MAX_LINE);
                return SOURCE_EFORMAT;
            }
            c->pos += n + (nl ? 1 : 0);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            start[n] = '\0';    /* the '\n', or spare room kept below */
            *out = start;
            return 1;
        }
        if (c->eof)
            return 0;
        if (c->len - c->pos > CSV_MAX_LINE) {
            snprintf(err, errlen, "%s: line %llu: longer than %d bytes", c->name,
                     (unsigned long long)c->line + 1, CSV_MAX_LINE);
            return SOURCE_EFORMAT;
        }
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
        {
            /* Keep one byte spare so a last line without '\n' can be ended. */
            ssize_t got = fill(c, BUF_SIZE - 1 - c->len, mode);

            if (got == -LINE_LATER)
                return LINE_LATER;
            if (got < 0) {
                snprintf(err, errlen, "%s: read failed: %s", c->name, strerror(errno));
                return SOURCE_EIO;
            }
            c->len += (size_t)got;
            if (got == 0)
                c->eof = 1;
        }
    }
}

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Up to 6 fraction digits to microseconds; more digits are ignored. */
static int fraction_us(const char *s, int64_t *us)
{
    int64_t v = 0, scale = 100000;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v += (*s - '0') * scale;
        scale /= 10;
    }
    *us = v;
    return 0;
}

/* Unix seconds ("1500000000.25") or "YYYY-MM-DD HH:MM:SS[.fff]" (UTC, 'T'
 * also accepted) to microseconds. */
static int parse_ts(const char *s, int64_t *t_us)
{
    size_t len = strlen(s);

    if (len >= 19 && s[4] == '-' && s[7] == '-' && (s[10] == ' ' || s[10] == 'T') &&
        s[13] == ':' && s[16] == ':') {
        unsigned y, mo, d, h, mi, se;
        int64_t frac = 0;
        static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

        if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
            return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
            return -1;
        if (len > 19) {
            if (s[19] != '.' || fraction_us(s + 20, &frac))
                return -1;
        }
        *t_us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) *
                 INT64_C(1000000)) + frac;
        return 0;
    } else {
        /* Unix seconds: digits, optional fraction; integer part bounded so
         * the microseconds fit in int64. */
        const char *p = s;
        int64_t sec = 0, frac = 0;
        int nd = 0, neg = 0;

        if (*p == '-') {
            neg = 1;
            p++;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++nd > 12)
                return -1;
            sec = sec * 10 + (*p - '0');
        }
        if (nd == 0)
            return -1;
        if (*p == '.') {
            if (fraction_us(p + 1, &frac))
                return -1;
        } else if (*p) {
            return -1;
        }
        *t_us = (sec * INT64_C(1000000) + frac) * (neg ? -1 : 1);
        return 0;
    }
}

/* One data row into samples[channels], *t_us and the ts text.  Returns 0,
 * or SOURCE_EFORMAT with a message naming the line and column. */
static int parse_row(struct source *s, struct csv *c, char *line, float *samples,
                     int64_t *t_us, char ts_out[TS_MAX], char *err, size_t errlen)
{
    char *p = line, *field;
    unsigned col;

    for (col = 0; col <= s->channels; col++) {
        char *comma = strchr(p, ',');

        if (!comma && col < s->channels) {
            snprintf(err, errlen, "%s: line %llu: %u fields, expected %u", c->name,
                     (unsigned long long)c->line, col + 1, s->channels + 1);
            return SOURCE_EFORMAT;
        }
        if (comma && col == s->channels) {
            snprintf(err, errlen, "%s: line %llu: more than %u fields", c->name,
                     (unsigned long long)c->line, s->channels + 1);
            return SOURCE_EFORMAT;
        }
        if (comma)
            *comma = '\0';
        field = trim(p);
        p = comma ? comma + 1 : p + strlen(p);
        if (col == 0) {
            size_t n = strlen(field);

            if (n == 0 || n >= TS_MAX || parse_ts(field, t_us)) {
                snprintf(err, errlen, "%s: line %llu: bad timestamp \"%.40s\"", c->name,
                         (unsigned long long)c->line, field);
                return SOURCE_EFORMAT;
            }
            memcpy(ts_out, field, n + 1);
        } else {
            char *end;
            double v;

            if (!*field) {
                snprintf(err, errlen, "%s: line %llu: empty value for %s", c->name,
                         (unsigned long long)c->line, s->chan[col - 1].name);
                return SOURCE_EFORMAT;
            }
            errno = 0;
            v = strtod(field, &end);
            if (*end || !isfinite(v) || fabs(v) > 3.4e38) {
                snprintf(err, errlen, "%s: line %llu: bad value \"%.40s\" for %s", c->name,
                         (unsigned long long)c->line, field, s->chan[col - 1].name);
                return SOURCE_EFORMAT;
            }
            samples[col - 1] = (float)v;
        }
    }
    return 0;
}

/* Header: first column is the timestamp, the others name channels with an
 * optional "[unit]". */
static int parse_header(struct source *s, struct csv *c, char *line, char *err, size_t errlen)
{
    char *p = line;
    unsigned col = 0;

    for (;;) {
        char *comma = strchr(p, ',');
        char *field;

        if (comma)
            *comma = '\0';
        field = trim(p);
        if (col > 0) {
            struct wire_channel *ch;
            char *br = strchr(field, '[');
            size_t nlen;

            if (col > WIRE_MAX_CHANNELS) {
                snprintf(err, errlen, "%s: line 1: more than %d channels", c->name,
                         WIRE_MAX_CHANNELS);
                return SOURCE_EFORMAT;
            }
            ch = &s->chan[col - 1];
            if (br) {
                char *close = strchr(br, ']');
                size_t ulen;

                if (!close || close[1] != '\0') {
                    snprintf(err, errlen, "%s: line 1: column %u: unit needs a closing ']'",
                             c->name, col + 1);
                    return SOURCE_EFORMAT;
                }
                ulen = (size_t)(close - br - 1);
                if (ulen > WIRE_MAX_NAME) {
                    snprintf(err, errlen, "%s: line 1: column %u: unit longer than %d",
                             c->name, col + 1, WIRE_MAX_NAME);
                    return SOURCE_EFORMAT;
                }
                memcpy(ch->unit, br + 1, ulen);
                ch->unit[ulen] = '\0';
                *br = '\0';
                field = trim(field);
            }
            nlen = strlen(field);
            if (nlen == 0 || nlen > WIRE_MAX_NAME) {
                snprintf(err, errlen, "%s: line 1: column %u: channel name empty or longer "
                         "than %d", c->name, col + 1, WIRE_MAX_NAME);
                return SOURCE_EFORMAT;
            }
            memcpy(ch->name, field, nlen + 1);
            /* A name is how labels, rules, datasets and --detectors name a
             * channel: two of one name could never be told apart. */
            for (unsigned k = 0; k + 1 < col; k++)
                if (strcmp(s->chan[k].name, ch->name) == 0) {
                    snprintf(err, errlen, "%s: line 1: column %u: channel name \"%s\" is column "
                             "%u's too", c->name, col + 1, ch->name, k + 2);
                    return SOURCE_EFORMAT;
                }
        }
        col++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (col < 2) {
        snprintf(err, errlen, "%s: line 1: header needs a timestamp and at least one channel",
                 c->name);
        return SOURCE_EFORMAT;
    }
    s->channels = col - 1;
    return 0;
}

/* 0 with a row, SOURCE_EOF, LINE_LATER (see read_line) or an error. */
static int next_row(struct source *s, struct csv *c, float *samples, int64_t *t_us,
                    char ts_out[TS_MAX], enum wait_mode mode)
{
    char *line;
    int rc;

    do {
        rc = read_line(c, &line, mode, s->err, sizeof(s->err));
        if (rc == LINE_LATER)
            return LINE_LATER;
        if (rc <= 0)
            return rc == 0 ? SOURCE_EOF : rc;
    } while (is_blank(line));
    return parse_row(s, c, line, samples, t_us, ts_out, s->err, sizeof(s->err));
}

static int csv_next(struct source *s, float *samples, int64_t *t_us, size_t cap, size_t *n)
{
    struct csv *c = s->impl;
    size_t i = 0;
    int rc = 0;

    c->ts_n = 0;
    if (c->failed && c->ahead_pos >= c->ahead_n)
        return c->failed;
    if (!samples || !t_us || !n || cap == 0) {
        snprintf(s->err, sizeof(s->err), "next: no room for frames");
        return SOURCE_EARG;
    }
    if (cap > BLOCK_MAX)
        cap = BLOCK_MAX;
    while (i < cap && c->ahead_pos < c->ahead_n) {
        memcpy(samples + i * s->channels, c->ahead + c->ahead_pos * s->channels,
               sizeof(float) * s->channels);
        t_us[i] = c->ahead_t[c->ahead_pos];
        memcpy(c->ts[i], c->ahead_ts[c->ahead_pos], TS_MAX);
        c->ahead_pos++;
        i++;
    }
    /* Wait for the first row only; after it take what is ready now.  Not
     * past a bad row found while reading ahead. */
    while (i < cap && !c->failed) {
        rc = next_row(s, c, samples + i * s->channels, &t_us[i], c->ts[i],
                      i == 0 ? WAIT_STOP : WAIT_NONE);
        if (rc != 0)
            break;
        i++;
    }
    if (rc == LINE_LATER)
        rc = 0;                 /* i == 0 here only after a signal: reported as the end */
    if (rc < 0) {
        /* The good rows before the bad line are handed out first (they
         * were dropped, up to a block of them, unscored and never in a
         * snapshot); the error is the next call's answer, and sticky. */
        c->failed = rc;
        if (i == 0)
            return rc;
    } else if (c->failed && i == 0) {
        return c->failed;
    }
    if (i == 0)
        return SOURCE_EOF;
    c->ts_n = i;
    *n = i;
    return 0;
}

static const char *csv_ts_text(struct source *s, size_t i)
{
    struct csv *c = s->impl;

    return i < c->ts_n ? c->ts[i] : NULL;
}

static void csv_close(struct source *s)
{
    struct csv *c;

    if (!s)
        return;
    c = s->impl;
    if (c) {
        if (c->own && c->f)
            fclose(c->f);
        free(c->ahead);
        free(c);
    }
    free(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Without a rate hint, parse up to AHEAD rows now; the rate is the median
 * positive step. */
static int read_ahead(struct source *s, struct csv *c, double rate_hint)
{
    int64_t steps[AHEAD];
    size_t ns = 0, i;
    int rc = 0;

    c->ahead = malloc(sizeof(float) * AHEAD * s->channels);
    if (!c->ahead) {
        snprintf(s->err, sizeof(s->err), "%s: out of memory", c->name);
        return SOURCE_ENOMEM;
    }
    if (rate_hint > 0.0) {
        /* Nothing to estimate: do not make open wait for AHEAD rows of a
         * stream that may be written a row at a time. */
        s->rate = rate_hint;
        return 0;
    }
    /* WAIT_STOP: a stream written a row at a time (1 Hz plant data on a
     * pipe) takes a minute to give 64 rows, and a SIGTERM meanwhile must end
     * the wait (it was retried, and the agent stopped only when the rows
     * came); the rate is then the rows' so far. */
    while (c->ahead_n < AHEAD) {
        rc = next_row(s, c, c->ahead + c->ahead_n * s->channels, &c->ahead_t[c->ahead_n],
                      c->ahead_ts[c->ahead_n], WAIT_STOP);
        if (rc != 0)
            break;
        c->ahead_n++;
    }
    /* A bad row among the first: the rows before it are still the stream's
     * (scored, then the error), as they are further on; with none before
     * it the open fails with the error. */
    if (rc < 0 && c->ahead_n == 0)
        return rc;
    if (rc < 0)
        c->failed = rc;
    for (i = 1; i < c->ahead_n; i++) {
        int64_t dt = c->ahead_t[i] - c->ahead_t[i - 1];

        if (dt > 0)
            steps[ns++] = dt;
    }
    if (ns == 0) {
        s->rate = 1.0;          /* one row, or no time passes: nothing better to say */
        return 0;
    }
    qsort(steps, ns, sizeof(steps[0]), cmp_i64);
    s->rate = 1e6 / (double)steps[ns / 2];
    return 0;
}

int source_csv_fopen(FILE *f, const char *name, double rate_hint, struct source **out)
{
    struct source *s;
    struct csv *c;
    char *line;
    int rc;

    if (!f || !out || !(rate_hint >= 0.0) || rate_hint > 1e9) {
        source_set_open_error("csv: bad argument");
        return SOURCE_EARG;
    }
    s = calloc(1, sizeof(*s));
    c = calloc(1, sizeof(*c));
    if (!s || !c) {
        free(s);
        free(c);
        source_set_open_error("csv: out of memory");
        return SOURCE_ENOMEM;
    }
    s->impl = c;
    s->next = csv_next;
    s->close = csv_close;
    s->ts_text = csv_ts_text;
    s->wire_type = WIRE_F32;
    c->f = f;
    /* f must not have been read through stdio yet: its fd is read directly. */
    c->fd = fileno(f);
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "csv");

    rc = read_line(c, &line, WAIT_STOP, s->err, sizeof(s->err));
    if (rc == 0) {
        snprintf(s->err, sizeof(s->err), "%s: empty input, expected a header line", c->name);
        rc = SOURCE_EFORMAT;
    }
    if (rc == LINE_LATER) {
        /* A signal (the agent asked to stop) before the header came. */
        snprintf(s->err, sizeof(s->err), "%s: interrupted before the header line", c->name);
        rc = SOURCE_EIO;
    }
    if (rc == 1)
        rc = parse_header(s, c, line, s->err, sizeof(s->err));
    if (rc == 0)
        rc = read_ahead(s, c, rate_hint);
    if (rc < 0) {
        source_set_open_error(s->err);
        c->own = 0;             /* the caller still owns f on failure */
        csv_close(s);
        return rc;
    }
    source_set_open_error("");
    *out = s;
    return 0;
}

int source_csv_open(const char *path, double rate_hint, struct source **out)
{
    FILE *f;
    int rc;
    char msg[256];

    if (!path || !strcmp(path, "-"))
        return source_csv_fopen(stdin, "stdin", rate_hint, out);
    f = fopen(path, "r");
    if (!f) {
        snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(errno));
        source_set_open_error(msg);
        return SOURCE_EIO;
    }
    rc = source_csv_fopen(f, path, rate_hint, out);
    if (rc < 0) {
        fclose(f);
        return rc;
    }
    ((struct csv *)(*out)->impl)->own = 1;
    return 0;
}
