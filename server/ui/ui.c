/* ui.c - see ui.h.  Files are read per request: they are small, the page
 * loads a handful, and a rebuilt UI shows without restarting the server.
 * Each answer carries its content's hash as ETag and "no-cache": the
 * browser keeps the file and asks again on every load, answered 304 with no
 * body while the file is unchanged (and the script's compiled code, which
 * Chromium keeps only for cached scripts, is reused); a rebuilt UI is a
 * different hash, so it shows at the next load as before. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/ui/ui.h"

static const struct {
    const char *ext;
    const char *type;
} ui_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".ico", "image/x-icon" },
    /* no .json: the UI reads none, and package.json and its lock file
     * beside the sources are the build's, not the browser's */
};

const char *ui_content_type(const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < sizeof ui_types / sizeof ui_types[0]; i++) {
        size_t e = strlen(ui_types[i].ext);

        if (n > e && strcmp(name + n - e, ui_types[i].ext) == 0)
            return ui_types[i].type;
    }
    return NULL;
}

int ui_name_ok(const char *name)
{
    size_t i, n;

    if (!name || name[0] == '.' || (n = strlen(name)) == 0 || n > 128)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return strstr(name, "..") == NULL && ui_content_type(name) != NULL;
}

/* Read dir/name into a malloc'd buffer.  O_NOFOLLOW and a regular-file
 * check keep a planted symlink from pointing outside. */
static int read_file(const char *dir, const char *name, char **out, size_t *len)
{
    char path[4096];
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, err = SRV_ENOTFOUND;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return SRV_ENOTFOUND;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return SRV_ENOTFOUND;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)UI_FILE_MAX)
        goto out;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        err = SRV_ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != (size_t)st.st_size)
        goto out;
    *out = buf;
    *len = got;
    buf = NULL;
    err = SRV_OK;
out:
    free(buf);
    close(fd);
    return err;
}

/* The quoted validator of body: the first 128 bits of its SHA-256, hex. */
static void content_etag(const char *body, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char sha[SHA256_DIGEST_LENGTH];
    size_t i, o = 0;

    SHA256((const unsigned char *)body, len, sha);
    if (cap < UI_ETAG_LEN + 1)
        return;
    out[o++] = '"';
    for (i = 0; i < 16; i++) {
        out[o++] = hex[sha[i] >> 4];
        out[o++] = hex[sha[i] & 15];
    }
    out[o++] = '"';
    out[o] = '\0';
}

int ui_etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = if_none_match;
    size_t n = strlen(etag);

    if (!p || !*etag)
        return 0;
    /* a list of validators (RFC 9110 13.1.2: weak comparison), or "*" */
    while (*p) {
        size_t len;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        len = strcspn(p, ", \t");
        if (len == n && memcmp(p, etag, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

static int serve(const struct srv_request *rq, struct srv_response *rs, const char *name)
{
    char dist[4096];
    char *body = NULL;
    size_t len = 0;
    int err;

    if (!rq->cfg->ui_dir || !ui_name_ok(name))
        return srv_fail(rs, SRV_ENOTFOUND, "no such file");
    /* The built UI (with uPlot from npm) first, the sources as a fallback. */
    snprintf(dist, sizeof dist, "%s/dist", rq->cfg->ui_dir);
    err = read_file(dist, name, &body, &len);
    if (err == SRV_ENOTFOUND)
        err = read_file(rq->cfg->ui_dir, name, &body, &len);
    if (err != SRV_OK)
        return srv_fail(rs, err, "no such file");
    content_etag(body, len, rs->etag, sizeof rs->etag);
    rs->cache_control = "no-cache";
    if (ui_etag_matches(rq->header ? rq->header(rq, "If-None-Match") : NULL, rs->etag)) {
        free(body);
        rs->status = 304;
        rs->content_type = ui_content_type(name);
        return SRV_OK;
    }
    rs->status = 200;
    rs->content_type = ui_content_type(name);
    rs->body = body;
    rs->body_len = len;
    return SRV_OK;
}

int ui_index(struct srv_request *rq, struct srv_response *rs)
{
    return serve(rq, rs, "index.html");
}

int ui_file(struct srv_request *rq, struct srv_response *rs)
{
    return serve(rq, rs, rq->params[0]);
}
