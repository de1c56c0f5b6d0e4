/* main.c - precursor-server: the command line.
 *
 *   serve           apply pending migrations, then answer HTTP until SIGINT/SIGTERM
 *   migrate         apply pending migrations and exit
 *   user add        create a login (password read from stdin, Argon2id)
 *   token create    create an API token (printed once, stored as SHA-256)
 *
 * Exit codes: 0 success, 1 failure, 2 usage error or a database schema newer
 * than this binary knows. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/alerts/alerts.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/http/http.h"
#include "server/models/models.h"
#include "server/routes.h"
#include "server/rules/rules.h"
#include "server/srv/srv.h"
#include "server/tls/tls.h"

#define EXIT_USAGE 2
#define SECRET_MAX 4096
#define OPENAPI_MAX (1u << 20)

static const char where_help[] =
    "Folders: --migrations-dir, --schema-dir and --ui-dir default to migrations/,\n"
    "schema/ and labeling-ui/ under the working directory (the repository root for\n"
    "make run and make test); failing that, under the parents of the binary's own\n"
    "location (build/bin or build/NAME/bin inside the repository).\n";

static void usage_serve(FILE *f)
{
    fprintf(f,
        "usage: precursor-server serve [--port N] [--database-url URL] [--ui-dir DIR]\n"
        "                              [--threads N] [--max-body BYTES]\n"
        "                              [--enroll-secret-file FILE] [--schema-dir DIR]\n"
        "                              [--migrations-dir DIR]\n"
        "Applies pending migrations (under an advisory lock), then serves HTTP.\n"
        "  --port N               listen port (env PORT, default 8080)\n"
        "  --database-url URL     libpq URI or key=value string (env DATABASE_URL)\n"
        "  --threads N            worker threads, one database connection each (default 4)\n"
        "  --max-body BYTES       largest snapshot upload (default 67108864)\n"
        "  --enroll-secret-file F devices registering must present this secret\n"
        "                         (trailing newline ignored); without it registration is refused\n"
        "Exits 2 when the database schema is newer than the newest migration known.\n%s",
        where_help);
}

static void usage_migrate(FILE *f)
{
    fprintf(f,
        "usage: precursor-server migrate [--database-url URL] [--migrations-dir DIR]\n"
        "Applies every migrations/NNNN_name.sql not yet recorded in schema_migrations,\n"
        "each in its own transaction, under a PostgreSQL advisory lock.  Exits 2 when\n"
        "the database records a version newer than the newest file.\n%s", where_help);
}

static void usage_user(FILE *f)
{
    fprintf(f,
        "usage: precursor-server user add --username NAME --role admin|operator|ml\n"
        "                                 [--database-url URL]\n"
        "Reads the password from the first line of stdin and stores its Argon2id hash.\n");
}

static void usage_token(FILE *f)
{
    fprintf(f,
        "usage: precursor-server token create --name NAME [--role ml|operator|admin]\n"
        "                                     [--database-url URL]\n"
        "Prints a new API token once (use as 'Authorization: Bearer TOKEN'); only its\n"
        "SHA-256 is stored.  Default role: ml.\n");
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: precursor-server serve|migrate|user add|token create [options]\n"
        "       precursor-server COMMAND --help\n"
        "DATABASE_URL and PORT are read from the environment when the flags are absent.\n");
}

struct opts {
    const char *port, *database_url, *ui_dir, *threads, *max_body, *enroll_file;
    const char *schema_dir, *migrations_dir, *username, *role, *name;
    int help;
};

/* --flag VALUE or --flag=VALUE for the flags in allowed (space separated). */
static int parse_opts(int argc, char **argv, const char *allowed, struct opts *o)
{
    static const struct { const char *flag; size_t off; } map[] = {
        { "--port", offsetof(struct opts, port) },
        { "--database-url", offsetof(struct opts, database_url) },
        { "--ui-dir", offsetof(struct opts, ui_dir) },
        { "--threads", offsetof(struct opts, threads) },
        { "--max-body", offsetof(struct opts, max_body) },
        { "--enroll-secret-file", offsetof(struct opts, enroll_file) },
        { "--schema-dir", offsetof(struct opts, schema_dir) },
        { "--migrations-dir", offsetof(struct opts, migrations_dir) },
        { "--username", offsetof(struct opts, username) },
        { "--role", offsetof(struct opts, role) },
        { "--name", offsetof(struct opts, name) },
    };
    int i;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *eq, *val;
        size_t k, flen;
        int found = 0;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        eq = strchr(a, '=');
        flen = eq ? (size_t)(eq - a) : strlen(a);
        for (k = 0; k < sizeof map / sizeof map[0]; k++) {
            const char *hit;

            if (strlen(map[k].flag) != flen || strncmp(map[k].flag, a, flen) != 0)
                continue;
            hit = strstr(allowed, map[k].flag);
            if (!hit || (hit[flen] != ' ' && hit[flen] != '\0'))
                break;
            if (eq) {
                val = eq + 1;
            } else {
                if (i + 1 >= argc) {
                    fprintf(stderr, "precursor-server: %s needs a value\n", map[k].flag);
                    return -1;
                }
                val = argv[++i];
            }
            *(const char **)((char *)o + map[k].off) = val;
            found = 1;
            break;
        }
        if (!found) {
            fprintf(stderr, "precursor-server: unknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static const char *database_url(const struct opts *o)
{
    const char *u = o->database_url ? o->database_url : getenv("DATABASE_URL");

    if (!u || !*u) {
        fprintf(stderr, "precursor-server: no database: set DATABASE_URL or --database-url\n");
        return NULL;
    }
    return u;
}

/* Read at most max bytes of a file; NULL on error or when longer. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int run_migrations(const char *url, const char *flag_dir)
{
    char dir[PATH_MAX];
    int applied = 0, newest = 0, err;

    if (srv_find_dir(flag_dir, "migrations", "0001_devices_snapshots.sql", dir, sizeof dir) != 0) {
        fprintf(stderr, "precursor-server: migrations folder not found (use --migrations-dir)\n");
        return 1;
    }
    err = db_migrate(url, dir, &applied, &newest);
    if (err == SRV_ESCHEMA)
        return EXIT_USAGE;
    if (err != SRV_OK) {
        srv_log("error", "migrate: %s", srv_err_message(err));
        return 1;
    }
    srv_log("info", "migrate: schema at version %d (%d applied now) from %s", newest, applied, dir);
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    struct opts o = { 0 };
    const char *url;

    if (parse_opts(argc, argv, "--database-url --migrations-dir", &o) != 0) {
        usage_migrate(stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage_migrate(stdout);
        return 0;
    }
    if (!(url = database_url(&o)))
        return EXIT_USAGE;
    return run_migrations(url, o.migrations_dir);
}

static int cmd_serve(int argc, char **argv)
{
    struct opts o = { 0 };
    struct srv_config cfg = { 0 };
    struct http_server *hs = NULL;
    unsigned long long v;
    char dir[PATH_MAX], path[PATH_MAX + 32], uidir[PATH_MAX];
    char *secret = NULL, *openapi = NULL;
    size_t secret_len = 0, openapi_len = 0;
    const char *port;
    sigset_t set;
    int sig = 0, rc;

    if ((argc = fleet_opts_take(argc, argv)) < 0)  /* the flags server/fleet owns */
        return EXIT_USAGE;
    if ((argc = tls_opts_take(argc, argv)) < 0)    /* --tls-cert, --tls-key */
        return EXIT_USAGE;
    if ((argc = models_opts_take(argc, argv)) < 0) /* --model-key-file */
        return EXIT_USAGE;
    if (parse_opts(argc, argv, "--port --database-url --ui-dir --threads --max-body "
                   "--enroll-secret-file --schema-dir --migrations-dir", &o) != 0) {
        usage_serve(stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage_serve(stdout);
        fleet_opts_help(stdout);
        tls_opts_help(stdout);
        models_opts_help(stdout);
        return 0;
    }
    if (!(cfg.database_url = database_url(&o)))
        return EXIT_USAGE;
    port = o.port ? o.port : getenv("PORT");
    cfg.port = 8080;
    if (port && *port) {
        if (parse_uint(port, 65535, &v) != 0) {
            fprintf(stderr, "precursor-server: bad port %s\n", port);
            return EXIT_USAGE;
        }
        cfg.port = (unsigned)v;
    }
    cfg.threads = 4;
    if (o.threads) {
        if (parse_uint(o.threads, 256, &v) != 0 || v == 0) {
            fprintf(stderr, "precursor-server: --threads must be 1..256\n");
            return EXIT_USAGE;
        }
        cfg.threads = (unsigned)v;
    }
    cfg.max_body = 64u << 20;
    if (o.max_body) {
        if (parse_uint(o.max_body, 1ull << 30, &v) != 0 || v == 0) {
            fprintf(stderr, "precursor-server: --max-body must be 1..1073741824\n");
            return EXIT_USAGE;
        }
        cfg.max_body = (size_t)v;
    }
    if (auth_init() != SRV_OK)
        return 1;
    if (o.enroll_file) {
        secret = read_file(o.enroll_file, SECRET_MAX, &secret_len);
        while (secret && secret_len && (secret[secret_len - 1] == '\n' ||
                                        secret[secret_len - 1] == '\r' ||
                                        secret[secret_len - 1] == ' '))
            secret[--secret_len] = '\0';
        if (!secret || secret_len == 0) {
            fprintf(stderr, "precursor-server: cannot read a secret from %s\n", o.enroll_file);
            free(secret);
            return 1;
        }
        cfg.enroll_secret = (const uint8_t *)secret;
        cfg.enroll_secret_len = secret_len;
    } else {
        srv_log("warn", "no --enroll-secret-file: device registration is refused");
    }
    rc = run_migrations(cfg.database_url, o.migrations_dir);
    if (rc != 0)
        goto out;
    if (srv_find_dir(o.schema_dir, "schema", "openapi.json", dir, sizeof dir) == 0) {
        snprintf(path, sizeof path, "%s/openapi.json", dir);
        openapi = read_file(path, OPENAPI_MAX, &openapi_len);
        cfg.schema_dir = dir;
    }
    if (!openapi)
        srv_log("warn", "schema/openapi.json not found: GET /api/v1/openapi.json answers 404");
    cfg.openapi = openapi;
    cfg.openapi_len = openapi_len;
    if (srv_find_dir(o.ui_dir, "labeling-ui", "index.html", uidir, sizeof uidir) == 0)
        cfg.ui_dir = uidir;
    if (db_init(cfg.database_url) != SRV_OK || fleet_start(cfg.database_url) != SRV_OK) {
        rc = 1;
        goto out;
    }
    /* Block the signals before the pool starts so only sigwait sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.conn_timeout_s = fleet_settings()->conn_timeout_s;  /* --conn-timeout */
    routes_configure(&cfg);
    if (http_start(&cfg, &hs) != SRV_OK) {
        rc = 1;
        goto out;
    }
    rules_worker_start(1000);   /* features + rules for new snapshots, off the ingest path */
    srv_log("info", "listening on port %u with %u threads, max body %zu bytes",
            http_port(hs), cfg.threads, cfg.max_body);
    sigwait(&set, &sig);
    srv_log("info", "signal %d: shutting down", sig);
    http_stop(hs);
    srv_log("info", "stopped");
    rc = 0;
out:
    fleet_stop();   /* after http_stop: no upload waits on the committer */
    rules_worker_stop();
    db_shutdown();
    if (secret)
        memset(secret, 0, secret_len);
    free(secret);
    free(openapi);
    tls_release();
    return rc;
}

static int cmd_user_add(int argc, char **argv)
{
    struct opts o = { 0 };
    char pw[AUTH_PASSWORD_MAX + 2], hash[256];
    const char *url, *vals[3];
    PGresult *r = NULL;
    size_t n;
    int err, rc = 1;

    if (parse_opts(argc, argv, "--username --role --database-url", &o) != 0) {
        usage_user(stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage_user(stdout);
        return 0;
    }
    if (!o.username || !*o.username || strlen(o.username) > 64 ||
        auth_role_parse(o.role) == SRV_ROLE_NONE) {
        usage_user(stderr);
        return EXIT_USAGE;
    }
    if (!(url = database_url(&o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK)
        return 1;
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "precursor-server: no password on stdin\n");
        return 1;
    }
    n = strlen(pw);
    if (n && pw[n - 1] == '\n')
        pw[--n] = '\0';
    else if (n > AUTH_PASSWORD_MAX) {
        fprintf(stderr, "precursor-server: password longer than %d bytes\n", AUTH_PASSWORD_MAX);
        return 1;
    }
    if (n && pw[n - 1] == '\r')
        pw[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "precursor-server: empty password\n");
        return 1;
    }
    err = auth_password_hash(pw, hash, sizeof hash);
    memset(pw, 0, sizeof pw);
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: hashing failed: %s\n", srv_err_message(err));
        return 1;
    }
    if (db_init(url) != SRV_OK)
        return 1;
    vals[0] = o.username;
    vals[1] = o.role;
    vals[2] = hash;
    err = db_exec(DB_USER_INSERT, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: cannot store user: %s\n", srv_err_message(err));
    } else if (PQntuples(r) != 1) {
        fprintf(stderr, "precursor-server: user %s exists already\n", o.username);
    } else {
        fprintf(stderr, "user %s (%s) created\n", o.username, o.role);
        rc = 0;
    }
    PQclear(r);
    db_shutdown();
    return rc;
}

static int cmd_token_create(int argc, char **argv)
{
    struct opts o = { 0 };
    char tok[AUTH_TOKEN_LEN + 1];
    uint8_t sha[32];
    const char *url, *vals[3];
    int lens[3] = { 0, 0, 32 }, fmts[3] = { 0, 0, 1 };
    PGresult *r = NULL;
    int err, rc = 1;

    if (parse_opts(argc, argv, "--name --role --database-url", &o) != 0) {
        usage_token(stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        usage_token(stdout);
        return 0;
    }
    if (!o.role)
        o.role = "ml";
    if (!o.name || !*o.name || strlen(o.name) > 128 || auth_role_parse(o.role) == SRV_ROLE_NONE) {
        usage_token(stderr);
        return EXIT_USAGE;
    }
    if (!(url = database_url(&o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK || auth_token_new(tok, sizeof tok, sha) != SRV_OK)
        return 1;
    if (db_init(url) != SRV_OK)
        return 1;
    vals[0] = o.name;
    vals[1] = o.role;
    vals[2] = (const char *)sha;
    err = db_exec(DB_TOKEN_INSERT, vals, lens, fmts, 0, &r);
    if (err != SRV_OK || PQntuples(r) != 1) {
        fprintf(stderr, "precursor-server: cannot store token: %s\n", srv_err_message(err));
    } else {
        printf("%s\n", tok);
        rc = 0;
    }
    PQclear(r);
    db_shutdown();
    memset(tok, 0, sizeof tok);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate(argc - 2, argv + 2);
    if (strcmp(argv[1], "user") == 0 && argc >= 3 && strcmp(argv[2], "add") == 0)
        return cmd_user_add(argc - 3, argv + 3);
    if (strcmp(argv[1], "user") == 0 && argc >= 3 && strcmp(argv[2], "--help") == 0) {
        usage_user(stdout);
        return 0;
    }
    if (strcmp(argv[1], "token") == 0 && argc >= 3 && strcmp(argv[2], "create") == 0)
        return cmd_token_create(argc - 3, argv + 3);
    if (strcmp(argv[1], "enroll") == 0)
        return fleet_cli_enroll(argc - 2, argv + 2);
    if (strcmp(argv[1], "demo-history") == 0)
        return alerts_demo_main(argc - 2, argv + 2);
    if (strcmp(argv[1], "token") == 0 && argc >= 3 && strcmp(argv[2], "--help") == 0) {
        usage_token(stdout);
        return 0;
    }
    usage(stderr);
    return EXIT_USAGE;
}
