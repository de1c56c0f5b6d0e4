/* main.c - precursor-server: the commands, their options (server/options.c)
 * and the order in which `serve` brings the modules up and down.
 *
 *   serve           apply pending migrations, then answer HTTP until SIGINT/SIGTERM
 *   migrate         apply pending migrations and exit
 *   user add        create a login (password read from stdin, Argon2id)
 *   user disable    disable a login, end its sessions, revoke its tokens
 *   user passwd     set a login's password (read from stdin)
 *   token create    create an API token (printed once, stored as SHA-256)
 *   token list      print the API tokens as JSON (never the token)
 *   token revoke    revoke an API token by id
 *   enroll create   create an enrollment token for devices (printed once)
 *   enroll revoke   revoke an enrollment token (its devices stay as they are)
 *   demo-history    fill the database with a marked demo history
 *   --version       print "precursor-server VERSION (git DESCRIBE)" and exit
 *
 * Exit codes: 0 success, 1 failure, 2 usage error or a database schema newer
 * than this binary knows. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "server/alerts/alerts.h"
#include "server/auth/auth.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/deploy/deploy.h"
#include "server/features/features.h"
#include "server/fleet/fleet.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/models/models.h"
#include "server/options.h"
#include "server/routes.h"
#include "server/rules/rules.h"
#include "server/session/session.h"
#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"
#include "server/tls/tls.h"
#include "version.h"

#define EXIT_USAGE 2
#define SECRET_MAX 4096
#define OPENAPI_MAX (1u << 20)

static const char where_help[] =
    "Folders: --migrations-dir, --schema-dir and --ui-dir default to migrations/,\n"
    "schema/ and labeling-ui/ under the working directory (the repository root for\n"
    "make run and make test); failing that, under the parents of the binary's own\n"
    "location (build/bin or build/NAME/bin inside the repository).  A folder or\n"
    "file that a flag names must be there: serve stops at start otherwise, as it\n"
    "does for a secret file (--enroll-secret-file, --model-key-file, --tls-key)\n"
    "that group or others may write.\n";

static const char *database_url(const struct server_options *o)
{
    if (!o->database_url || !*o->database_url) {
        fprintf(stderr, "precursor-server: no database: set DATABASE_URL or --database-url\n");
        return NULL;
    }
    return o->database_url;
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
        if (flag_dir)
            fprintf(stderr, "precursor-server: --migrations-dir %s: no readable "
                    "0001_devices_snapshots.sql there\n", flag_dir);
        else
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

static int cmd_migrate(const struct server_options *o)
{
    const char *url = database_url(o);

    return url ? run_migrations(url, o->migrations_dir) : EXIT_USAGE;
}

/* The enrollment secret, trailing white space dropped; NULL after a
 * message when unreadable or empty. */
static char *read_secret(const char *path, size_t *len)
{
    char *secret = read_file(path, SECRET_MAX, len);

    while (secret && *len && (secret[*len - 1] == '\n' || secret[*len - 1] == '\r' ||
                              secret[*len - 1] == ' '))
        secret[--*len] = '\0';
    if (!secret || *len == 0) {
        fprintf(stderr, "precursor-server: cannot read a secret from %s\n", path);
        free(secret);
        return NULL;
    }
    return secret;
}

static int readable_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* A secret that others on the machine may change is one an attacker sets
 * (the enrollment secret, the model-signing key, the TLS key): refused.  One
 * they may read is a leak worth a line, not a stop (a container may mount
 * it 0644).  0, or -1 after a message naming the flag and the fix. */
static int secret_mode_check(const char *flag, const char *path)
{
    struct stat st;

    if (!path || stat(path, &st) != 0)
        return 0;   /* missing: the reader names it */
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        fprintf(stderr, "precursor-server: --%s %s is writable by group or others: chmod 600 it\n",
                flag, path);
        return -1;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH))
        srv_log("warn", "--%s %s is readable by group or others: chmod 600 it", flag, path);
    return 0;
}

/* Is the port free?  Tried before the migrations, so a second server or a
 * port below 1024 is named at once and nothing runs first; libmicrohttpd's
 * own bind later still decides (this is a look, not a reservation).  0, or
 * -1 after a message saying what to change. */
static int port_check(unsigned port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY),
                             .sin_port = htons((uint16_t)port) };
    int fd, one = 1, rc = 0;

    if (port == 0 || (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    /* As libmicrohttpd binds: a port in TIME_WAIT is free. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno == EADDRINUSE)
            fprintf(stderr, "precursor-server: port %u is in use (another server?): stop it or "
                    "give --port\n", port);
        else if (errno == EACCES)
            fprintf(stderr, "precursor-server: port %u needs privileges (below 1024): give "
                    "--port 8080, or the binary CAP_NET_BIND_SERVICE\n", port);
        else
            fprintf(stderr, "precursor-server: cannot bind port %u: %s\n", port, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

/* The pages import uPlot: present in a build (scripts/ui-build.sh copies
 * uPlot.min.css beside the bundle, into dist/ or the folder given), or beside
 * the sources by hand.  Without it every page stays blank, which an operator
 * would otherwise learn from the browser's console only. */
static void ui_check(const char *dir)
{
    static const char *const has_uplot[] = { "dist/uPlot.min.css", "uPlot.min.css",
                                             "uPlot.esm.js" };
    char path[PATH_MAX + 32];
    size_t i;

    for (i = 0; i < sizeof has_uplot / sizeof has_uplot[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, has_uplot[i]);
        if (access(path, R_OK) == 0)
            return;
    }
    srv_log("warn", "labeling UI %s: no dist/ and no uPlot beside the sources, so the pages "
            "will not load; run scripts/ui-build.sh", dir);
}

/* The folders and documents serve finds at start; dir buffers are the
 * caller's (cfg points into them).  One not found by default is a warning
 * (a server may run without its UI); one a flag names and that is not there
 * is a typo to stop at, before anything is migrated or started: -1 after a
 * message naming the flag. */
static int find_assets(const struct server_options *o, struct srv_config *cfg, char *schema_dir,
                       char *ui_dir, char **openapi)
{
    char path[PATH_MAX + 32];
    size_t len = 0;

    *openapi = NULL;
    if (srv_find_dir(o->schema_dir, "schema", "openapi.json", schema_dir, PATH_MAX) == 0) {
        snprintf(path, sizeof path, "%s/openapi.json", schema_dir);
        *openapi = read_file(path, OPENAPI_MAX, &len);
        cfg->schema_dir = schema_dir;
    }
    if (!*openapi && o->schema_dir) {
        fprintf(stderr, "precursor-server: --schema-dir %s: no readable openapi.json there\n",
                o->schema_dir);
        return -1;
    }
    if (!*openapi)
        srv_log("warn", "schema/openapi.json not found: GET /api/v1/openapi.json answers 404");
    cfg->openapi = *openapi;
    cfg->openapi_len = len;
    if (srv_find_dir(o->ui_dir, "labeling-ui", "index.html", ui_dir, PATH_MAX) == 0) {
        cfg->ui_dir = ui_dir;
        ui_check(ui_dir);
    } else if (o->ui_dir) {
        fprintf(stderr, "precursor-server: --ui-dir %s: no readable index.html there\n",
                o->ui_dir);
        return -1;
    } else {
        srv_log("warn", "labeling UI: no index.html found (use --ui-dir): GET / answers 404");
    }
    /* install.sh would fail on every device, long after the start. */
    if (o->agent_binary && !readable_file(o->agent_binary)) {
        fprintf(stderr, "precursor-server: --agent-binary %s: not a readable file\n",
                o->agent_binary);
        return -1;
    }
    return 0;
}

/* The modules with state of their own, in the order they start; stopped in
 * reverse after the http layer, so nothing waits on a stopped part. */
static int start_modules(const struct server_options *o, const char *url)
{
    const struct fleet_settings fs = { o->agent_binary, o->retention_days, o->device_rate,
                                       o->device_burst };
    char model_pk_hex[65];
    uint8_t sk[64], pk[32];

    if (o->model_key_file)
        models_set_key_file(o->model_key_file);
    /* install.sh hands the key to the agents it installs, so no agent has
     * to trust whatever key it meets first. */
    if (models_signing_key(sk, pk) == SRV_OK) {
        sodium_bin2hex(model_pk_hex, sizeof model_pk_hex, pk, sizeof pk);
        fleet_set_install_model_key(model_pk_hex);
    } else if (o->model_key_file) {
        /* A key named and not readable is a mistake to stop at, not a
         * server whose every model route answers 500. */
        srv_log("error", "refusing to start: --model-key-file names no usable key");
        return -1;
    } else {
        srv_log("warn", "no model-signing key: install.sh will not give one");
    }
    sodium_memzero(sk, sizeof sk);
    fleet_configure(&fs);
    ds_set_export_limits(o->export_retention_h, o->export_quota_mb);
    /* Before the first background pass starts (fleet_start below). */
    srv_worker_set_background((int)o->background_nice);
    if (db_init(url) != SRV_OK)
        return -1;
    if (ingest_commit_start(url, o->committers, o->queue_max, o->batch_max) != SRV_OK)
        return -1;
    return fleet_start(url) == SRV_OK ? 0 : -1;
}

static void stop_modules(void)
{
    /* After http_stop, so no new job comes; before the database goes: an
     * export job removes its .part file and fails its row, a model still
     * training after a while is marked failed, and neither stays 'running'. */
    ds_jobs_stop(5000);
    models_training_stop(10000);
    features_spectrum_stop();   /* after http_stop: no spectrum request parks */
    features_worker_stop();
    deploy_watch_stop();
    fleet_stop();
    ingest_commit_stop();   /* after http_stop: no upload waits on the committer */
    db_shutdown();
}

static int cmd_serve(const struct server_options *o)
{
    struct srv_config cfg = { 0 };
    struct http_server *hs = NULL;
    char schema_dir[PATH_MAX], ui_dir[PATH_MAX];
    char *secret = NULL, *openapi = NULL;
    size_t secret_len = 0;
    sigset_t set;
    int sig = 0, rc;

    if (!(cfg.database_url = database_url(o)))
        return EXIT_USAGE;
    if (options_port(o, &cfg.port) != 0)
        return EXIT_USAGE;
    cfg.version = PRECURSOR_VERSION_TEXT;
    cfg.threads = o->threads;
    cfg.max_body = o->max_body;
    cfg.conn_timeout_s = o->conn_timeout_s;
    cfg.header_timeout_s = o->header_timeout_s;
    cfg.max_conns = o->max_conns;
    cfg.max_conns_per_ip = o->max_conns_per_ip;
    cfg.body_memory = (size_t)o->body_memory_mb << 20;
    routes_configure(&cfg);
    if (secret_mode_check("enroll-secret-file", o->enroll_secret_file) != 0 ||
        secret_mode_check("model-key-file", o->model_key_file) != 0 ||
        secret_mode_check("tls-key", o->tls_key) != 0)
        return 1;
    if (tls_load(o->tls_cert, o->tls_key) != TLS_OK || auth_init() != SRV_OK)
        return tls_cert_pem() ? 1 : EXIT_USAGE;
    cfg.tls = tls_cert_pem() != NULL;
    if (o->enroll_secret_file) {
        if (!(secret = read_secret(o->enroll_secret_file, &secret_len))) {
            tls_release();
            return 1;
        }
        cfg.enroll_secret = (const uint8_t *)secret;
        cfg.enroll_secret_len = secret_len;
    } else {
        srv_log("warn", "no --enroll-secret-file: device registration is refused");
    }
    rc = 1;
    if (find_assets(o, &cfg, schema_dir, ui_dir, &openapi) != 0 || port_check(cfg.port) != 0)
        goto out;
    rc = run_migrations(cfg.database_url, o->migrations_dir);
    if (rc != 0)
        goto out;
    /* Least privilege: the owner migrates, a role with row rights serves. */
    if (o->app_database_url)
        cfg.database_url = o->app_database_url;
    rc = 1;
    if (start_modules(o, cfg.database_url) != 0)
        goto out;
    /* Block the signals before the pool starts so only sigwait sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (http_start(&cfg, &hs) != SRV_OK)
        goto out;
    /* Features, then rules, for each new snapshot: off the ingest path. */
    features_worker_start(1000, (size_t)o->features_memory_mb << 20, rules_eval_snapshots);
    /* Active models over their alarm budget: rolled back per device. */
    deploy_watch_start(5000);
    srv_log("info", "listening on port %u with %u threads, max body %zu bytes",
            http_port(hs), cfg.threads, cfg.max_body);
    sigwait(&set, &sig);
    srv_log("info", "signal %d: shutting down", sig);
    http_stop(hs);
    srv_log("info", "stopped");
    rc = 0;
out:
    stop_modules();
    if (secret)
        sodium_memzero(secret, secret_len);
    free(secret);
    free(openapi);
    tls_release();
    return rc;
}

/* fgets from stdin; at a terminal, first a prompt on stderr and the echo
 * off, so a password typed by hand is neither invisible-waited-for nor
 * shown.  Scripts that pipe it in see no difference. */
static char *read_line_quietly(char *buf, int cap, const char *user)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    char *got;

    if (tty) {
        /* Echo off before the prompt: TCSAFLUSH drops what was typed ahead,
         * so nothing typed after the prompt may be lost to it. */
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fprintf(stderr, "password for %s: ", user);
        fflush(stderr);
    }
    got = fgets(buf, cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    return got;
}

static int cmd_user_add(const struct server_options *o)
{
    char pw[AUTH_PASSWORD_MAX + 2], hash[256];
    const char *url;
    int64_t id;
    size_t n;
    int err, rc = 1;

    if (!o->username || strlen(o->username) > 64 || !o->role) {
        fprintf(stderr, "precursor-server: user add needs --username (1..64 bytes) and --role "
                        "admin|operator|ml\n");
        return EXIT_USAGE;
    }
    if (auth_role_parse(o->role) == SRV_ROLE_NONE) {
        fprintf(stderr, "precursor-server: user add: --role %s is none of admin, operator or ml\n",
                o->role);
        return EXIT_USAGE;
    }
    if (!(url = database_url(o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK)
        return 1;
    if (!read_line_quietly(pw, sizeof pw, o->username)) {
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
    if (auth_password_policy(pw, o->username)) {
        fprintf(stderr, "precursor-server: %s\n", auth_password_policy(pw, o->username));
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    err = auth_password_hash(pw, hash, sizeof hash);
    sodium_memzero(pw, sizeof pw);
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: hashing failed: %s\n", srv_err_message(err));
        return 1;
    }
    if (db_init(url) != SRV_OK)
        return 1;
    err = session_user_insert(o->username, o->role, hash, &id);
    if (err == SRV_ECONFLICT) {
        fprintf(stderr, "precursor-server: user %s exists already\n", o->username);
    } else if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: cannot store user: %s\n", srv_err_message(err));
    } else {
        fprintf(stderr, "user %s (%s) created\n", o->username, o->role);
        rc = 0;
    }
    db_shutdown();
    return rc;
}

/* The first line of stdin, without its line end, into pw.  0 or -1 after a
 * message. */
static int read_password(char *pw, size_t cap, const char *user)
{
    size_t n;

    if (!read_line_quietly(pw, (int)cap, user)) {
        fprintf(stderr, "precursor-server: no password on stdin\n");
        return -1;
    }
    n = strlen(pw);
    while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
        pw[--n] = '\0';
    return 0;
}

/* user disable, user passwd: the account life cycle for scripts and for the
 * admin who is locked out of the page.  A new password or a disabled user
 * ends the user's sessions (migration 0063). */
static int cmd_user_admin(const struct server_options *o, int disable)
{
    char pw[AUTH_PASSWORD_MAX + 2];
    const char *url;
    int err;

    if (!o->username) {
        fprintf(stderr, "precursor-server: needs --username\n");
        return EXIT_USAGE;
    }
    if (!(url = database_url(o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK || (!disable && read_password(pw, sizeof pw, o->username) != 0))
        return 1;
    if (!disable && auth_password_policy(pw, o->username)) {
        fprintf(stderr, "precursor-server: %s\n", auth_password_policy(pw, o->username));
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    if (db_init(url) != SRV_OK)
        return 1;
    err = disable ? session_user_disable_name(o->username)
                  : session_password_set(0, o->username, pw, NULL);
    if (!disable)
        sodium_memzero(pw, sizeof pw);
    db_shutdown();
    if (err == SRV_ENOTFOUND)
        fprintf(stderr, "precursor-server: no user %s%s\n", o->username,
                disable ? "" : " (or it is disabled)");
    else if (err != SRV_OK)
        fprintf(stderr, "precursor-server: %s\n", srv_err_message(err));
    else
        fprintf(stderr, "user %s %s; their sessions ended\n", o->username,
                disable ? "disabled" : "has a new password");
    return err == SRV_OK ? 0 : 1;
}

static int cmd_user_disable(const struct server_options *o)
{
    return cmd_user_admin(o, 1);
}

static int cmd_user_passwd(const struct server_options *o)
{
    return cmd_user_admin(o, 0);
}

static int cmd_token_list_or_revoke(const struct server_options *o, int revoke)
{
    const char *url;
    char *items = NULL;
    int err;

    if (revoke && o->id == 0) {
        fprintf(stderr, "precursor-server: token revoke needs --id (see token list)\n");
        return EXIT_USAGE;
    }
    if (!(url = database_url(o)))
        return EXIT_USAGE;
    if (db_init(url) != SRV_OK)
        return 1;
    err = revoke ? session_token_revoke_id((int64_t)o->id) : session_tokens_json(&items);
    db_shutdown();
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: %s\n",
                err == SRV_ENOTFOUND ? "no such token" : srv_err_message(err));
        return 1;
    }
    if (revoke)
        fprintf(stderr, "token %llu revoked\n", (unsigned long long)o->id);
    else
        printf("%s\n", items);
    free(items);
    return 0;
}

static int cmd_token_list(const struct server_options *o)
{
    return cmd_token_list_or_revoke(o, 0);
}

static int cmd_token_revoke(const struct server_options *o)
{
    return cmd_token_list_or_revoke(o, 1);
}

static int cmd_token_create(const struct server_options *o)
{
    const char *role = o->role ? o->role : "ml";
    char tok[AUTH_TOKEN_LEN + 1];
    uint8_t sha[32];
    const char *url;
    int64_t id;
    int err, rc = 1;

    if (!o->name || strlen(o->name) > 128) {
        fprintf(stderr, "precursor-server: token create needs --name (1..128 bytes) and a --role "
                        "of ml, operator or admin\n");
        return EXIT_USAGE;
    }
    if (auth_role_parse(role) == SRV_ROLE_NONE) {
        fprintf(stderr, "precursor-server: token create: --role %s is none of ml, operator or admin\n",
                role);
        return EXIT_USAGE;
    }
    if (!(url = database_url(o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK || auth_token_new(tok, sizeof tok, sha) != SRV_OK)
        return 1;
    if (db_init(url) != SRV_OK)
        return 1;
    err = auth_token_insert(o->name, role, sha, &id);
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: cannot store token: %s\n", srv_err_message(err));
    } else {
        printf("%s\n", tok);
        rc = 0;
    }
    db_shutdown();
    sodium_memzero(tok, sizeof tok);
    return rc;
}

static int cmd_enroll_create(const struct server_options *o)
{
    struct fleet_token_spec spec = { 0 };
    const char *url;
    char tok[128];
    int err;

    spec.equipment_type = o->equipment_type;
    spec.site = o->site;
    spec.tags = o->tags;
    /* --uses beside --reusable would be ignored: the token had no limit. */
    if (o->uses && o->reusable) {
        fprintf(stderr, "precursor-server: enroll create: give --uses N or --reusable, not both\n");
        return EXIT_USAGE;
    }
    spec.uses = o->uses ? (int)o->uses : 1;
    spec.reusable = o->reusable;
    spec.pre_approved = o->pre_approved;
    if (o->expires && fleet_parse_duration(o->expires, &spec.expires_s) != SRV_OK) {
        fprintf(stderr, "precursor-server: --expires like 30m, 24h, 7d or seconds\n");
        return EXIT_USAGE;
    }
    /* The command line first: its mistakes are named even without a database. */
    if (!(url = database_url(o)))
        return EXIT_USAGE;
    if (auth_init() != SRV_OK || db_init(url) != SRV_OK)
        return 1;
    err = fleet_token_create(&spec, tok, sizeof tok);
    db_shutdown();
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: cannot create enrollment token: %s\n",
                err == SRV_EBADREQ ? "equipment type, site and tags: 1..64 of [A-Za-z0-9._-:/ ]"
                                   : srv_err_message(err));
        return err == SRV_EBADREQ ? EXIT_USAGE : 1;
    }
    printf("%s\n", tok);
    sodium_memzero(tok, sizeof tok);
    return 0;
}

static int cmd_enroll_revoke(const struct server_options *o)
{
    const char *url = database_url(o);
    int err;

    if (!url)
        return EXIT_USAGE;
    if (!o->enroll_token) {
        fprintf(stderr, "precursor-server: enroll revoke: --token is required\n");
        return EXIT_USAGE;
    }
    if (auth_init() != SRV_OK || db_init(url) != SRV_OK)
        return 1;
    err = fleet_token_revoke(o->enroll_token);
    db_shutdown();
    if (err == SRV_EBADREQ) {
        fprintf(stderr, "precursor-server: enroll revoke: --token is not an enrollment token "
                        "(pen_ and 64 hex digits, as enroll create printed it)\n");
        return EXIT_USAGE;
    }
    if (err == SRV_ENOTFOUND) {
        fprintf(stderr, "precursor-server: enroll revoke: no such token, or revoked already\n");
        return 1;
    }
    if (err != SRV_OK) {
        fprintf(stderr, "precursor-server: enroll revoke: %s\n", srv_err_message(err));
        return 1;
    }
    fprintf(stderr, "enrollment token revoked: install.sh and enrollment refuse it; devices "
                    "it enrolled stay as they are\n");
    return 0;
}

static int cmd_demo_history(const struct server_options *o)
{
    const char *url = database_url(o);

    if (!url)
        return EXIT_USAGE;
    return alerts_demo_run(url, o->seed) == SRV_OK ? 0 : 1;
}

struct command {
    const char *name, *sub;     /* "user", "add"; sub NULL for one-word commands */
    unsigned opts;              /* enum options_cmd */
    int (*run)(const struct server_options *o);
    const char *synopsis;
    const char *about;
    const char *summary;        /* one line for the command list */
};

static const struct command commands[] = {
    { "serve", NULL, OPT_SERVE, cmd_serve, "[options]",
      "Applies pending migrations (under an advisory lock), then serves HTTP until\n"
      "SIGINT or SIGTERM.  Exits 2 when the database schema is newer than the newest\n"
      "migration known.",
      "run the server (migrations first)" },
    { "migrate", NULL, OPT_MIGRATE, cmd_migrate, "[--database-url URL] [--migrations-dir DIR]",
      "Applies every migrations/NNNN_name.sql not yet recorded in schema_migrations,\n"
      "each in its own transaction, under a PostgreSQL advisory lock.  Exits 2 when\n"
      "the database records a version newer than the newest file.",
      "apply pending migrations and exit" },
    { "user", "add", OPT_USER_ADD, cmd_user_add, "--username NAME --role admin|operator|ml",
      "Reads the password from the first line of stdin (at a terminal: asked for,\n"
      "not echoed) and stores its Argon2id hash.",
      "add a login (password on stdin)" },
    { "user", "disable", OPT_USER_DISABLE, cmd_user_disable, "--username NAME",
      "Disables the user: no login, every session ended, the user's API tokens\n"
      "revoked.",
      "disable a login, end its sessions" },
    { "user", "passwd", OPT_USER_PASSWD, cmd_user_passwd, "--username NAME",
      "Reads a new password from the first line of stdin (at a terminal: asked for,\n"
      "not echoed): at least 10 characters, not the username, not a common\n"
      "password.  Every session of the user ends.",
      "set a new password (on stdin)" },
    { "token", "create", OPT_TOKEN_CREATE, cmd_token_create, "--name NAME [--role ml|operator|admin]",
      "Prints a new API token once (use as 'Authorization: Bearer TOKEN'); only its\n"
      "SHA-256 is stored.  Default role: ml.",
      "make an API token (printed once)" },
    { "token", "list", OPT_TOKEN_LIST, cmd_token_list, "",
      "Prints every API token as JSON: id, name, role, owner, created, last used,\n"
      "revoked.  Never the token.",
      "list API tokens as JSON" },
    { "token", "revoke", OPT_TOKEN_REVOKE, cmd_token_revoke, "--id N",
      "Revokes the token: refused from its next request on.",
      "revoke an API token" },
    { "enroll", "create", OPT_ENROLL_CREATE, cmd_enroll_create,
      "[--equipment-type T] [--site S] [--tags a,b] [--uses N | --reusable] [--expires 24h]\n"
      "                                      [--pre-approved]",
      "Prints a new enrollment token once; devices install with\n"
      "  curl -fsS -H 'Authorization: Bearer TOKEN' -o precursor-install.sh \\\n"
      "    'http://SERVER/install.sh' && sh precursor-install.sh\n"
      "('http://SERVER/install.sh?token=TOKEN' works too, for tools that only fetch a\n"
      "URL, but puts the token in access logs).\n"
      "Default: one use, no expiry, devices pending until approved\n"
      "(POST /api/v1/devices/{id}/approve).",
      "make an enrollment token for devices" },
    { "enroll", "revoke", OPT_ENROLL_REVOKE, cmd_enroll_revoke, "--token pen_...",
      "Revokes the enrollment token: install.sh and enrollment refuse it from now\n"
      "on (403 \"enrollment token revoked\").  Devices it enrolled stay as they are:\n"
      "revoke those one by one (POST /api/v1/devices/{id}/revoke).",
      "revoke an enrollment token" },
    { "demo-history", NULL, OPT_DEMO_HISTORY, cmd_demo_history, "[--seed N]",
      "Adds six months of synthetic alert history with dispositions and devices\n"
      "(demo-*, marked as demo data) so the operational pages show something on a\n"
      "fresh database; does nothing when they are present already.",
      "seed the marked demo history" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: precursor-server COMMAND [options]\n       precursor-server COMMAND --help\n"
               "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++) {
        char name[32];

        snprintf(name, sizeof name, "%s%s%s", commands[i].name, commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        fprintf(f, "  %-16s %s\n", name, commands[i].summary);
    }
    fprintf(f, "DATABASE_URL and PORT are read from the environment when the flags are absent.\n"
               "precursor-server --version prints this build's version.\n");
}

/* Every subcommand of one command name ("user": add, disable, passwd). */
static void subcommands_usage(const char *name, FILE *f)
{
    const char *lead = "usage:";
    size_t i;

    for (i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        fprintf(f, "%-6s precursor-server %s %s%s%s\n", lead, name, commands[i].sub,
                *commands[i].synopsis ? " " : "", commands[i].synopsis);
        lead = "";
    }
    fprintf(f, "precursor-server %s SUBCOMMAND --help prints its options.\n", name);
}

static void command_help(const struct command *c, FILE *f)
{
    fprintf(f, "usage: precursor-server %s%s%s%s%s\n%s\nOptions:\n", c->name, c->sub ? " " : "",
            c->sub ? c->sub : "", c->synopsis[0] ? " " : "", c->synopsis, c->about);
    options_help(c->opts, f);
    if (c->opts & (OPT_SERVE | OPT_MIGRATE))
        fputs(where_help, f);
}

int main(int argc, char **argv)
{
    struct server_options o;
    const struct command *c = NULL;
    size_t i;
    int skip;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("precursor-server %s\n", PRECURSOR_VERSION_TEXT);
        return 0;
    }
    /* The command of that name and subcommand; else the first of the name,
     * for its help and usage. */
    for (i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!c)
            c = &commands[i];
        if (commands[i].sub && argc >= 3 && strcmp(argv[2], commands[i].sub) == 0) {
            c = &commands[i];
            break;
        }
    }
    if (!c) {
        fprintf(stderr, "precursor-server: unknown command %s\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    skip = 2;
    if (c->sub) {
        /* "user --help" lists every user subcommand; anything else must
         * name one. */
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            if (c + 1 < commands + NCOMMANDS && strcmp(c[1].name, c->name) == 0)
                subcommands_usage(c->name, stdout);
            else
                command_help(c, stdout);    /* the only one: its options at once */
            return 0;
        }
        if (argc < 3 || strcmp(argv[2], c->sub) != 0) {
            if (argc < 3)
                fprintf(stderr, "precursor-server: %s needs a subcommand\n", c->name);
            else
                fprintf(stderr, "precursor-server: unknown subcommand %s %s\n", c->name, argv[2]);
            subcommands_usage(c->name, stderr);
            return EXIT_USAGE;
        }
        skip = 3;
    }
    options_defaults(&o);
    if (options_parse(c->opts, argc - skip, argv + skip, &o) != 0) {
        fprintf(stderr, "precursor-server: see precursor-server %s%s%s --help\n", c->name,
                c->sub ? " " : "", c->sub ? c->sub : "");
        return EXIT_USAGE;
    }
    if (o.help) {
        command_help(c, stdout);
        return 0;
    }
    return c->run(&o);
}
