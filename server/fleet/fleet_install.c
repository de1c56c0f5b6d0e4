/* fleet_install.c - what a device fetches to install itself: the install
 * script for an enrollment token (server/fleet/install.sh, compiled in, with
 * the server's base URL and the token put in its two placeholders) and the
 * agent binary the script downloads.  Only the base URL and the token, both
 * checked to hold no shell metacharacters, are substituted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"
#include "server/srv/srv.h"

#define AGENT_BINARY_MAX (256u << 20)

static const char install_template[] =
#include "install_sh.inc"
    ;

/* Base URL clients reached us by (Host header; a load balancer's). */
void fleet__base_url(const struct srv_request *rq, char *out, size_t cap)
{
    const char *host = rq->header(rq, "Host");
    const char *proto = rq->header(rq, "X-Forwarded-Proto");
    size_t i;

    if (!host || !*host || strlen(host) > 255)
        host = "localhost";
    for (i = 0; host[i]; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]",
                    host[i]))
            host = "localhost";
    snprintf(out, cap, "%s://%s", proto && strcmp(proto, "https") == 0 ? "https" : "http", host);
}

/* The template with every @SERVER@ and @TOKEN@ replaced; NULL when out of
 * memory. */
static char *install_script(const char *base, const char *tok, size_t *len)
{
    static const struct {
        const char *mark;
        size_t n;
    } marks[] = { { "@SERVER@", 8 }, { "@TOKEN@", 7 } };
    struct srv_buf b = { 0 };
    const char *p = install_template, *at;

    while ((at = strchr(p, '@')) != NULL) {
        size_t k;

        srv_buf_put(&b, p, (size_t)(at - p));
        for (k = 0; k < 2 && strncmp(at, marks[k].mark, marks[k].n) != 0; k++)
            ;
        if (k < 2) {
            srv_buf_puts(&b, k == 0 ? base : tok);
            p = at + marks[k].n;
        } else {
            srv_buf_put(&b, at, 1);
            p = at + 1;
        }
    }
    srv_buf_puts(&b, p);
    return srv_buf_take(&b, len);
}

int fleet_api_install_sh(struct srv_request *rq, struct srv_response *rs)
{
    const char *tok = rq->query(rq, "token");
    const char *why = "enrollment refused";
    char base[300];
    size_t len;
    int err;

    err = fleet__token_check(tok, &why);
    if (err != SRV_OK)
        return srv_fail(rs, err, why);
    fleet__base_url(rq, base, sizeof base);
    if (!(rs->body = install_script(base, tok, &len)))
        return SRV_ENOMEM;
    rs->status = 200;
    rs->content_type = "text/x-shellscript; charset=utf-8";
    rs->body_len = len;
    return SRV_OK;
}

int fleet_api_download(struct srv_request *rq, struct srv_response *rs)
{
    const char *name = rq->params[0], *path = fleet_settings()->agent_binary;
    struct utsname u;
    char want[128];
    struct stat st;
    FILE *f;
    char *buf;

    if (!path || uname(&u) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no agent binary is served (--agent-binary)");
    snprintf(want, sizeof want, "precursor-agent-%s", u.machine);
    if (!name || strcmp(name, want) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no agent binary for that architecture");
    f = fopen(path, "rb");
    if (!f)
        return srv_fail(rs, SRV_ENOTFOUND, "agent binary not readable");
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > (off_t)AGENT_BINARY_MAX) {
        fclose(f);
        return srv_fail(rs, SRV_EINTERNAL, "agent binary size out of range");
    }
    buf = malloc((size_t)st.st_size);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        fclose(f);
        return buf ? SRV_EINTERNAL : SRV_ENOMEM;
    }
    fclose(f);
    rs->status = 200;
    rs->content_type = "application/octet-stream";
    rs->body = buf;
    rs->body_len = (size_t)st.st_size;
    return SRV_OK;
}

