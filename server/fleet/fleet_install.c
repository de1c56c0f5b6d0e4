/* fleet_install.c - what a device fetches to install itself: the install
 * script for an enrollment token (server/fleet/install.sh, compiled in, with
 * the server's base URL, the token, the SHA-256 of the agent binary served
 * and the model-signing public key put in its placeholders) and the agent
 * binary the script downloads.  Only those four, each holding no shell
 * metacharacters (a checked host, a checked token, hex digests), are
 * substituted.  The script refuses a binary with another digest, so a
 * tampered download is never run as root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <sodium.h>

#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"
#include "server/srv/srv.h"

#define AGENT_BINARY_MAX (256u << 20)

static char install_model_key[65];

void fleet_set_install_model_key(const char *hex)
{
    snprintf(install_model_key, sizeof install_model_key, "%s",
             hex && strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64 ? hex : "");
}

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
    /* HTTPS whenever the client reached us by it: our own TLS or a proxy's. */
    snprintf(out, cap, "%s://%s",
             (rq->cfg && rq->cfg->tls) || (proto && strcmp(proto, "https") == 0) ? "https"
                                                                                  : "http",
             host);
}

/* The template with every @SERVER@, @TOKEN@, @AGENT_SHA256@ and
 * @MODEL_KEY@ replaced by vals in that order; NULL when out of memory. */
static char *install_script(const char *const vals[4], size_t *len)
{
    static const struct {
        const char *mark;
        size_t n;
    } marks[] = { { "@SERVER@", 8 }, { "@TOKEN@", 7 }, { "@AGENT_SHA256@", 14 },
                  { "@MODEL_KEY@", 11 } };
    struct srv_buf b = { 0 };
    const char *p = install_template, *at;

    while ((at = strchr(p, '@')) != NULL) {
        size_t k;

        srv_buf_put(&b, p, (size_t)(at - p));
        for (k = 0; k < 4 && strncmp(at, marks[k].mark, marks[k].n) != 0; k++)
            ;
        if (k < 4) {
            srv_buf_puts(&b, vals[k]);
            p = at + marks[k].n;
        } else {
            srv_buf_put(&b, at, 1);
            p = at + 1;
        }
    }
    srv_buf_puts(&b, p);
    return srv_buf_take(&b, len);
}

/* Hex SHA-256 of the agent binary served, "" when none is (the script then
 * stops before downloading anything). */
static int agent_sha256(char hex[65])
{
    const char *path = fleet_settings()->agent_binary;
    crypto_hash_sha256_state st;
    uint8_t buf[65536], digest[32];
    FILE *f;
    size_t n;
    int bad;

    hex[0] = '\0';
    if (!path || !(f = fopen(path, "rb")))
        return SRV_OK;
    crypto_hash_sha256_init(&st);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    bad = ferror(f);
    fclose(f);
    if (bad)
        return SRV_EINTERNAL;
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    return SRV_OK;
}

/* The enrollment token of an install.sh request, from "Authorization:
 * Bearer T" (a header stays out of access logs, proxies' too, where a URL's
 * query is written) or ?token=T (for tools that only fetch a URL); NULL when
 * neither carries one.  Another scheme in Authorization (a proxy's
 * Basic) is no token and leaves the query to decide.  SRV_EBADREQ when the
 * two are given and differ: which one was meant is not ours to guess. */
static int install_token(const struct srv_request *rq, const char **tok)
{
    const char *authz = rq->header ? rq->header(rq, "Authorization") : NULL;
    const char *q = rq->query ? rq->query(rq, "token") : NULL;
    const char *h = NULL;

    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        h = authz + 7;
        h += strspn(h, " ");
    }
    if (h && !*h)
        h = NULL;
    if (q && !*q)
        q = NULL;
    if (h && q && strcmp(h, q) != 0)
        return SRV_EBADREQ;
    *tok = h ? h : q;
    return SRV_OK;
}

int fleet_api_install_sh(struct srv_request *rq, struct srv_response *rs)
{
    const char *tok = NULL;
    const char *why = "enrollment refused";
    char base[300], sha[65];
    const char *vals[4] = { base, NULL, sha, install_model_key };
    size_t len;
    int err;

    if (install_token(rq, &tok) != SRV_OK)
        return srv_fail(rs, SRV_EBADREQ, "install.sh got two different enrollment tokens, in "
                        "Authorization: Bearer and in ?token=: give one");
    if (!tok)
        return srv_fail(rs, SRV_EENROLL, "install.sh needs ?token= or Authorization: Bearer "
                        "with an enrollment token (precursor-server enroll create)");
    vals[1] = tok;
    err = fleet__token_check(tok, &why);
    if (err != SRV_OK)
        return srv_fail(rs, err, why);
    fleet__base_url(rq, base, sizeof base);
    if (agent_sha256(sha) != SRV_OK)
        return srv_fail(rs, SRV_EINTERNAL, "agent binary not readable");
    if (!(rs->body = install_script(vals, &len)))
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

