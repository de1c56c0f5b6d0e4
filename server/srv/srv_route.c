/* srv_route.c - what a route table entry means: matching a request's
 * method and path against a table, how its caller authenticates, and the
 * role gate in front of its handler.  The table itself is at the top of the
 * server (server/routes.c), the one place that names every handler. */
#include <stdio.h>
#include <string.h>

#include "server/srv/srv.h"

enum srv_auth srv_route_auth(const struct srv_route *r)
{
    if (r->roles & SRV_USERS)
        return SRV_AUTH_TOKEN;
    if (r->roles & SRV_DEVICE)
        return SRV_AUTH_DEVICE;
    return SRV_AUTH_NONE;
}

int srv_route_allows(const struct srv_route *r, enum srv_role role)
{
    static const unsigned bit[] = {
        [SRV_ROLE_NONE] = 0, [SRV_ROLE_ML] = SRV_ML,
        [SRV_ROLE_OPERATOR] = SRV_OPERATOR, [SRV_ROLE_ADMIN] = SRV_ADMIN,
    };

    if (srv_route_auth(r) != SRV_AUTH_TOKEN)
        return 1;
    return (unsigned)role < sizeof bit / sizeof bit[0] && (r->roles & bit[role]) != 0;
}

static const char *roles_needed(unsigned roles)
{
    switch (roles & SRV_USERS) {
    case SRV_ADMIN: return "needs the admin role";
    case SRV_ADMIN | SRV_OPERATOR: return "needs the operator or admin role";
    case SRV_ADMIN | SRV_ML: return "needs the ml or admin role";
    default: return "not allowed for this role";
    }
}

int srv_route_call(const struct srv_route *r, struct srv_request *rq, struct srv_response *rs)
{
    /* Before the handler, so a refused request touches nothing. */
    if (!srv_route_allows(r, rq->role))
        return srv_fail(rs, SRV_EFORBIDDEN, roles_needed(r->roles));
    return r->handler(rq, rs);
}

/* Walk pattern and path segment by segment.  A "{...}" segment captures one
 * non-empty path segment, copied NUL-terminated into caps. */
static int route_path_match(const char *pattern, const char *path,
                            char *caps, size_t caps_cap,
                            const char *params[SRV_MAX_PARAMS])
{
    const char *p = pattern, *q = path;
    size_t used = 0;
    int np = 0;

    while (*p && *q) {
        if (*p != '/' || *q != '/')
            return 0;
        p++;
        q++;
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t len = strcspn(q, "/");

            if (!pe || len == 0 || np >= SRV_MAX_PARAMS || used + len + 1 > caps_cap)
                return 0;
            memcpy(caps + used, q, len);
            caps[used + len] = '\0';
            params[np++] = caps + used;
            used += len + 1;
            p = pe + 1;
            q += len;
        } else {
            size_t lp = strcspn(p, "/"), lq = strcspn(q, "/");

            if (lp != lq || memcmp(p, q, lp) != 0)
                return 0;
            p += lp;
            q += lq;
        }
    }
    return *p == '\0' && *q == '\0';
}

const struct srv_route *srv_route_match(const struct srv_route *r, size_t n,
                                        const char *method, const char *path,
                                        char *caps_buf, size_t caps_cap,
                                        const char *params[SRV_MAX_PARAMS],
                                        int *err)
{
    size_t i;
    int path_seen = 0;

    for (i = 0; i < n; i++) {
        const char *tmp[SRV_MAX_PARAMS] = { NULL, NULL };

        if (!route_path_match(r[i].pattern, path, caps_buf, caps_cap, tmp))
            continue;
        path_seen = 1;
        /* HEAD is answered like GET; libmicrohttpd drops the body. */
        if (strcmp(r[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(r[i].method, "GET") == 0)) {
            memcpy(params, tmp, sizeof tmp);
            return &r[i];
        }
    }
    *err = path_seen ? SRV_EMETHOD : SRV_ENOTFOUND;
    return NULL;
}

size_t srv_route_allow(const struct srv_route *r, size_t n, const char *path,
                       char *caps_buf, size_t caps_cap, char *out, size_t cap)
{
    /* One fixed order, so the header reads the same whatever the table's. */
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
    size_t used = 0, m, i;

    if (cap == 0)
        return 0;
    out[0] = '\0';
    for (m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        for (i = 0; i < n; i++) {
            const char *tmp[SRV_MAX_PARAMS] = { NULL, NULL };
            const char *add = strcmp(methods[m], "GET") == 0 ? "GET, HEAD" : methods[m];
            int w;

            if (strcmp(r[i].method, methods[m]) != 0 ||
                !route_path_match(r[i].pattern, path, caps_buf, caps_cap, tmp))
                continue;
            w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", add);
            if (w < 0 || (size_t)w >= cap - used) {
                out[used] = '\0';   /* what fitted, whole names only */
                return used;
            }
            used += (size_t)w;
            break;
        }
    }
    return used;
}
