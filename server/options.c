/* options.c - see options.h. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "server/alerts/alerts.h"
#include "server/options.h"
#include "server/srv/srv_worker.h"

#define ALL (OPT_SERVE | OPT_MIGRATE | OPT_USER_ADD | OPT_TOKEN_CREATE | OPT_ENROLL_CREATE | \
             OPT_DEMO_HISTORY | OPT_TOKEN_LIST | OPT_TOKEN_REVOKE | OPT_USER_DISABLE | \
             OPT_USER_PASSWD | OPT_ENROLL_REVOKE)
#define DB_CMDS ALL

enum kind { TEXT, UINT, NUM, FLAG, U64 };

struct row {
    const char *name;
    const char *arg;            /* metavar; NULL for a flag */
    unsigned cmds;
    enum kind kind;
    double lo, hi;              /* UINT, NUM, U64 */
    size_t off;
    const char *help;
};

#define F(field) offsetof(struct server_options, field)

static const struct row rows[] = {
    { "database-url", "URL", DB_CMDS, TEXT, 0, 0, F(database_url),
      "libpq URI or key=value string\n(default: $DATABASE_URL)" },
    { "app-database-url", "URL", OPT_SERVE, TEXT, 0, 0, F(app_database_url),
      "serve as this login (a member of precursor_app:\n"
      "rows only, no DDL); migrations still run with\n"
      "--database-url, the owner" },
    { "migrations-dir", "DIR", OPT_SERVE | OPT_MIGRATE, TEXT, 0, 0, F(migrations_dir),
      "the numbered SQL migrations (default: migrations/)" },
    { "port", "N", OPT_SERVE, UINT, 0, 65535, F(port),
      "listen port (default: $PORT, else 8080)" },
    { "threads", "N", OPT_SERVE, UINT, 1, 256, F(threads),
      "worker threads, one database connection each\n(default 4)" },
    { "max-body", "BYTES", OPT_SERVE, UINT, 1, 1u << 30, F(max_body),
      "largest snapshot upload (default 67108864)" },
    { "ui-dir", "DIR", OPT_SERVE, TEXT, 0, 0, F(ui_dir),
      "the labeling UI (default: labeling-ui/)" },
    { "schema-dir", "DIR", OPT_SERVE, TEXT, 0, 0, F(schema_dir),
      "where openapi.json lives (default: schema/)" },
    { "enroll-secret-file", "FILE", OPT_SERVE, TEXT, 0, 0, F(enroll_secret_file),
      "devices registering with a secret must present\n"
      "this one (trailing newline ignored); without it\n"
      "such registration is refused" },
    { "tls-cert", "FILE", OPT_SERVE, TEXT, 0, 0, F(tls_cert),
      "serve HTTPS with this PEM certificate (chain,\nleaf first)" },
    { "tls-key", "FILE", OPT_SERVE, TEXT, 0, 0, F(tls_key),
      "and this PEM private key (both or neither)" },
    { "model-key-file", "FILE", OPT_SERVE, TEXT, 0, 0, F(model_key_file),
      "Ed25519 key that signs model blobs (64 bytes:\n"
      "seed and public key, or the 32-byte seed);\n"
      "serve stops at start when it is unreadable;\n"
      "default var/model-signing.key, made on first\nuse" },
    { "conn-timeout", "S", OPT_SERVE, UINT, 1, 3600, F(conn_timeout_s),
      "idle connection timeout; also a body still\n"
      "under 1 KB/s after S seconds is cut (slow\n"
      "clients; default 30)" },
    { "header-timeout", "S", OPT_SERVE, UINT, 1, 3600, F(header_timeout_s),
      "a request's headers must arrive within S seconds\n"
      "of connecting or of the previous answer\n(default 10)" },
    { "max-conns", "N", OPT_SERVE, UINT, 16, 60000, F(max_conns),
      "open connections at most (default 1024)" },
    { "max-conns-per-ip", "N", OPT_SERVE, UINT, 0, 60000, F(max_conns_per_ip),
      "open connections per client address (default 64;\n"
      "0: no limit, e.g. behind a proxy or a NAT)" },
    { "body-memory", "MB", OPT_SERVE, UINT, 1, 1u << 20, F(body_memory_mb),
      "request bodies held in memory at once, summed\n"
      "over connections by Content-Length; beyond it\n"
      "503 overloaded (default 256)" },
    { "export-retention-h", "H", OPT_SERVE, UINT, 1, 87600, F(export_retention_h),
      "export job files are deleted H hours after\nthe job finished (default 72)" },
    { "export-quota-mb", "MB", OPT_SERVE, UINT, 1, 1u << 30, F(export_quota_mb),
      "export job files kept at most, in all; new\njobs are refused beyond it (default 10240)" },
    { "agent-binary", "FILE", OPT_SERVE, TEXT, 0, 0, F(agent_binary),
      "served as /downloads/precursor-agent-<arch>\nfor install.sh" },
    { "retention-days", "N", OPT_SERVE, UINT, 0, 36500, F(retention_days),
      "drop snapshots older than N days (default 0: keep)" },
    { "device-rate", "R", OPT_SERVE, NUM, 0, 1e6, F(device_rate),
      "uploads/s per device, token bucket refill\n(default 20; 0 off)" },
    { "device-burst", "B", OPT_SERVE, NUM, 1, 1e6, F(device_burst),
      "token bucket size (default 200)" },
    { "ingest-queue", "N", OPT_SERVE, UINT, 1, 1e6, F(queue_max),
      "snapshots waiting for commit before 503\n(default 4096)" },
    { "committers", "N", OPT_SERVE, UINT, 1, 16, F(committers),
      "group-commit threads/connections (default 2)" },
    { "batch-max", "N", OPT_SERVE, UINT, 1, 512, F(batch_max),
      "snapshots per commit transaction (default 256)" },
    { "features-memory", "MB", OPT_SERVE, UINT, 0, 4096, F(features_memory_mb),
      "new snapshots' envelopes held for the features\n"
      "worker, so it need not read them back (default\n"
      "32; 0: it reads every one from the database)" },
    { "background-nice", "N", OPT_SERVE, UINT, 0, 20, F(background_nice),
      "the background passes (features worker,\n"
      "deployment watcher, fleet maintenance) run at\n"
      "nice N below the request path; 20: the idle\n"
      "class, only on a core nothing else wants\n"
      "(default 10; 0: like any other thread)" },
    { "username", "NAME", OPT_USER_ADD | OPT_USER_DISABLE | OPT_USER_PASSWD, TEXT, 0, 0,
      F(username), "the login's name (1..64 bytes)" },
    { "id", "N", OPT_TOKEN_REVOKE, U64, 0, 0, F(id), "the token's id (see token list)" },
    { "role", "ROLE", OPT_USER_ADD | OPT_TOKEN_CREATE, TEXT, 0, 0, F(role),
      "admin, operator or ml (token create: default ml)" },
    { "name", "NAME", OPT_TOKEN_CREATE, TEXT, 0, 0, F(name), "what the token is for (1..128 bytes)" },
    { "equipment-type", "T", OPT_ENROLL_CREATE, TEXT, 0, 0, F(equipment_type),
      "equipment type of the devices enrolled" },
    { "site", "S", OPT_ENROLL_CREATE, TEXT, 0, 0, F(site), "their site" },
    { "tags", "a,b", OPT_ENROLL_CREATE, TEXT, 0, 0, F(tags), "their tags" },
    { "uses", "N", OPT_ENROLL_CREATE, UINT, 1, 1000000, F(uses),
      "devices the token may enroll (default 1)" },
    { "reusable", NULL, OPT_ENROLL_CREATE, FLAG, 0, 0, F(reusable), "no limit on uses" },
    { "expires", "D", OPT_ENROLL_CREATE, TEXT, 0, 0, F(expires),
      "lifetime like 30m, 24h, 7d or seconds\n(default: none)" },
    { "pre-approved", NULL, OPT_ENROLL_CREATE, FLAG, 0, 0, F(pre_approved),
      "devices are active at once instead of pending" },
    { "token", "pen_...", OPT_ENROLL_REVOKE, TEXT, 0, 0, F(enroll_token),
      "the enrollment token, as enroll create printed it" },
    { "seed", "N", OPT_DEMO_HISTORY, U64, 0, 0, F(seed),
      "seed of the generated history (same seed,\nsame history; default: a fixed one)" },
    { "help", NULL, ALL, FLAG, 0, 0, F(help), "this text" },
};

#define NROWS (sizeof rows / sizeof rows[0])

void options_defaults(struct server_options *o)
{
    const char *url = getenv("DATABASE_URL");

    memset(o, 0, sizeof *o);
    o->database_url = url && *url ? url : NULL;
    o->port = OPTIONS_PORT_UNSET;
    o->threads = 4;
    o->max_body = 64u << 20;
    o->max_conns_per_ip = 64;
    o->device_rate = 20.0;
    o->device_burst = 200.0;
    o->queue_max = 4096;
    o->committers = 2;
    o->batch_max = 256;
    o->features_memory_mb = 32;
    o->background_nice = SRV_WORKER_NICE_DEFAULT;
    o->uses = 0;        /* not given: enroll create makes one use of it, or refuses it beside --reusable */
    o->seed = ALERTS_DEMO_SEED;
}

/* The commands of a set of command bits as the command line names them,
 * "serve" or "user add or token create", for messages. */
static void cmd_names(unsigned cmds, char *buf, size_t len)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { OPT_SERVE, "serve" }, { OPT_MIGRATE, "migrate" }, { OPT_USER_ADD, "user add" },
        { OPT_TOKEN_CREATE, "token create" }, { OPT_ENROLL_CREATE, "enroll create" },
        { OPT_DEMO_HISTORY, "demo-history" }, { OPT_TOKEN_LIST, "token list" },
        { OPT_TOKEN_REVOKE, "token revoke" }, { OPT_USER_DISABLE, "user disable" },
        { OPT_USER_PASSWD, "user passwd" }, { OPT_ENROLL_REVOKE, "enroll revoke" },
    };
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && used < len; i++)
        if (cmds & names[i].bit)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " or " : "",
                                     names[i].name);
}

/* An option this command does not take: say whose it is when it is
 * another command's (`migrate --port 80`), so it does not read as a typo. */
static void unknown_option(unsigned cmd, const char *arg)
{
    size_t n = strcspn(arg, "=");
    char whose[160], mine[64];

    for (size_t i = 0; i < NROWS; i++) {
        if (strncmp(arg, "--", 2) != 0 || strlen(rows[i].name) != n - 2 ||
            strncmp(arg + 2, rows[i].name, n - 2) != 0)
            continue;
        cmd_names(rows[i].cmds, whose, sizeof whose);
        cmd_names(cmd, mine, sizeof mine);
        fprintf(stderr, "precursor-server: --%s is an option of %s, not of %s\n", rows[i].name,
                whose, mine);
        return;
    }
    fprintf(stderr, "precursor-server: unknown option %s\n", arg);
}

static int bad(const struct row *r, const char *why)
{
    fprintf(stderr, "precursor-server: --%s %s\n", r->name, why);
    return -1;
}

static int set(const struct row *r, const char *val, struct server_options *o)
{
    char *p = (char *)o + r->off, *end;
    double d;

    if (r->kind == FLAG) {
        *(int *)p = 1;
        return 0;
    }
    if (!val || !*val)
        return bad(r, "needs a value");
    if (r->kind == TEXT) {
        *(const char **)p = val;
        return 0;
    }
    errno = 0;
    if (r->kind == U64) {
        unsigned long long v = strtoull(val, &end, 10);

        if (errno || *end || strspn(val, "0123456789") != strlen(val))
            return bad(r, "must be a whole number");
        *(uint64_t *)p = v;
        return 0;
    }
    /* strtod takes " 80", "0x1F90", "8e3" and "80.0" for a port; a whole
     * number here is its decimal digits, a rate digits and a point. */
    if (strspn(val, r->kind == UINT ? "0123456789" : "0123456789.") != strlen(val) ||
        *val == '.')
        return bad(r, r->kind == UINT ? "must be a whole number" : "must be a decimal number");
    d = strtod(val, &end);
    if (errno || *end || d < r->lo || d > r->hi || d != d) {
        char why[96];

        snprintf(why, sizeof why, "must be a number in %g..%g", r->lo, r->hi);
        return bad(r, why);
    }
    if (r->kind == UINT) {
        if (d != (double)(unsigned)d)
            return bad(r, "must be a whole number");
        *(unsigned *)p = (unsigned)d;
    } else {
        *(double *)p = d;
    }
    return 0;
}

int options_parse(unsigned cmd, int argc, char **argv, struct server_options *o)
{
    struct option longopts[NROWS + 1];
    char **args = calloc((size_t)argc + 2, sizeof *args);  /* program name first */
    size_t n = 0, i;
    int c, err = 0;

    if (!args)
        return -1;
    for (i = 0; i < NROWS; i++) {
        if (!(rows[i].cmds & cmd))
            continue;
        longopts[n].name = rows[i].name;
        longopts[n].has_arg = rows[i].kind == FLAG ? no_argument : required_argument;
        longopts[n].flag = NULL;
        longopts[n].val = 256 + (int)i;
        n++;
    }
    memset(&longopts[n], 0, sizeof longopts[n]);
    args[0] = (char *)"precursor-server";
    for (c = 0; c < argc; c++)
        args[c + 1] = argv[c];
    args[argc + 1] = NULL;
    optind = 0;     /* glibc: start over, also after an earlier parse */
    opterr = 0;
    while (!err && (c = getopt_long(argc + 1, args, "+:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            o->help = 1;
        } else if (c >= 256) {
            err = set(&rows[c - 256], optarg, o);
        } else if (c == ':') {
            fprintf(stderr, "precursor-server: %s needs a value\n", args[optind - 1]);
            err = -1;
        } else {
            unknown_option(cmd, args[optind - 1]);
            err = -1;
        }
    }
    if (!err && optind < argc + 1) {
        fprintf(stderr, "precursor-server: unexpected argument %s\n", args[optind]);
        err = -1;
    }
    free(args);
    return err;
}

int options_port(const struct server_options *o, unsigned *port)
{
    const char *env = getenv("PORT");
    unsigned long v;
    char *end;

    if (o->port != OPTIONS_PORT_UNSET) {
        *port = o->port;
        return 0;
    }
    *port = 8080;
    if (!env || !*env)
        return 0;
    errno = 0;
    v = strtoul(env, &end, 10);
    if (errno || *end || *env == '-' || v > 65535) {
        fprintf(stderr, "precursor-server: $PORT must be a number in 0..65535\n");
        return -1;
    }
    *port = (unsigned)v;
    return 0;
}

void options_help(unsigned cmd, FILE *f)
{
    size_t i;

    for (i = 0; i < NROWS; i++) {
        char flag[48];
        const char *h = rows[i].help, *nl;

        if (!(rows[i].cmds & cmd))
            continue;
        snprintf(flag, sizeof flag, "--%s%s%s", rows[i].name, rows[i].arg ? " " : "",
                 rows[i].arg ? rows[i].arg : "");
        /* Help text may run over lines: the next ones align under the first. */
        for (;;) {
            nl = strchr(h, '\n');
            fprintf(f, "  %-26s %.*s\n", flag, nl ? (int)(nl - h) : (int)strlen(h), h);
            if (!nl)
                break;
            flag[0] = '\0';
            h = nl + 1;
        }
    }
}
