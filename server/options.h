/* options.h - the server's command line: one option table for every
 * command (getopt_long underneath), typed values with their defaults and
 * ranges, and the --help text made from the same table, so a flag is
 * declared, checked and documented in one place. */
#ifndef PRECURSOR_OPTIONS_H
#define PRECURSOR_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

/* The commands, as bits: an option belongs to the commands it names.  One
 * bit per command, never one for two: a row then reaches only commands that
 * read it, and the others refuse it by name instead of ignoring it
 * (`token list --id 3`). */
enum options_cmd {
    OPT_SERVE = 1u << 0,
    OPT_MIGRATE = 1u << 1,
    OPT_USER_ADD = 1u << 2,
    OPT_TOKEN_CREATE = 1u << 3,
    OPT_ENROLL_CREATE = 1u << 4,
    OPT_DEMO_HISTORY = 1u << 5,
    OPT_TOKEN_LIST = 1u << 6,
    OPT_TOKEN_REVOKE = 1u << 7,
    OPT_USER_DISABLE = 1u << 8,
    OPT_USER_PASSWD = 1u << 9,
    OPT_ENROLL_REVOKE = 1u << 10
};

struct server_options {
    const char *database_url;       /* --database-url, else $DATABASE_URL */
    const char *migrations_dir;
    /* serve */
    unsigned port;                  /* --port, or OPTIONS_PORT_UNSET: see options_port */
    unsigned threads;
    unsigned max_body;
    const char *ui_dir, *schema_dir, *enroll_secret_file;
    const char *tls_cert, *tls_key, *model_key_file;
    unsigned conn_timeout_s;        /* 0: the http layer's default */
    unsigned header_timeout_s, max_conns, max_conns_per_ip, body_memory_mb;
    unsigned export_retention_h, export_quota_mb;
    const char *app_database_url;   /* serve: connect as this once migrated */
    const char *agent_binary;
    unsigned retention_days;
    double device_rate, device_burst;
    unsigned queue_max, committers, batch_max;
    unsigned features_memory_mb;    /* the features worker's handoff */
    unsigned background_nice;       /* srv_worker_set_background */
    /* user add, token create */
    const char *username, *role, *name;
    /* enroll create */
    const char *equipment_type, *site, *tags;
    unsigned uses;                  /* 0: not given (one use) */
    int reusable, pre_approved;
    const char *expires;            /* "30m", "24h", "7d" or seconds */
    const char *enroll_token;       /* enroll revoke --token */
    /* demo-history */
    uint64_t seed;
    /* token revoke */
    uint64_t id;
    int help;
};

#define OPTIONS_PORT_UNSET 65536u

/* Defaults for every field (the environment's DATABASE_URL included). */
void options_defaults(struct server_options *o);

/* The port to listen on: --port, else $PORT, else 8080.  0, or -1 after a
 * message when $PORT is not a port number. */
int options_port(const struct server_options *o, unsigned *port);

/* Parse argv (the command's own arguments, argv[0] being the first option)
 * for cmd into o, over its defaults.  0, or -1 after a message on stderr
 * (unknown option, missing or out-of-range value, stray argument). */
int options_parse(unsigned cmd, int argc, char **argv, struct server_options *o);

/* The options of cmd, one line each with its default, for --help. */
void options_help(unsigned cmd, FILE *f);

#endif
