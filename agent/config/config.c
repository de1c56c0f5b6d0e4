/* config.c - option table, config file and flag parsing for the agent.
 *
 * Every option is one row of opts[]: its default is text run through the same
 * setter as a flag or a file line, so --help can never disagree with what the
 * agent actually does.  Detector keys are not listed here: the detector owns
 * them (detect_opts_set / detect_opts_help). */
#include "agent/config/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/config/detect_opts.h"
#include "agent/upload/upload.h"

enum opt_type { OPT_STR, OPT_DBL, OPT_UINT, OPT_U64, OPT_BOOL, OPT_INT };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    size_t size;                /* OPT_STR: buffer size */
    double min, max;            /* numeric range, inclusive */
    const char *def;            /* default as text; NULL = empty */
    unsigned cmds;              /* AGENT_CMD_* it applies to: listed in their --help,
                                   refused as a flag of the other, ignored with a
                                   warning as a config file line of the other */
    const char *help;
};

#define RUN AGENT_CMD_RUN
#define RPL AGENT_CMD_REPLAY
#define BOTH (RUN | RPL)
#define S(f) OPT_STR, offsetof(struct agent_config, f), sizeof(((struct agent_config *)0)->f), 0, 0
#define D(f, lo, hi) OPT_DBL, offsetof(struct agent_config, f), 0, lo, hi
#define U(f, lo, hi) OPT_UINT, offsetof(struct agent_config, f), 0, lo, hi
#define I(f, lo, hi) OPT_INT, offsetof(struct agent_config, f), 0, lo, hi
#define U64(f) OPT_U64, offsetof(struct agent_config, f), 0, 0, 0
#define B(f) OPT_BOOL, offsetof(struct agent_config, f), 0, 0, 1

static const struct opt opts[] = {
    { "config", S(config_file), NULL, BOTH, "read `key = value` lines from FILE first; flags override it" },
    { "device-id", S(device_id), NULL, BOTH, "device id, [A-Za-z0-9._-], at most 64 bytes (required for run; replay: the device a per-device model blob is for)" },
    { "server", S(server), NULL, RUN, "server base URL, e.g. http://host:8080 (required for run)" },
    { "key-dir", S(key_dir), NULL, BOTH, "key pair folder (default ./var/agent/<device-id>)" },
    { "spool", S(spool_dir), NULL, BOTH, "spool folder (default <key-dir>/spool for run; none for replay)" },
    { "enroll-secret-file", S(enroll_secret_file), NULL, RUN, "file holding the enrollment secret for first registration" },
    { "source", S(source), "sim", RUN, "sample source: sim|csv|i16le|f32le" },
    { "format", S(source), "csv", RPL, "input format: csv|i16le|f32le" },
    { "input", S(input), NULL, BOTH, "input file for csv/i16le/f32le (default stdin)" },
    { "channels", U(channels, 1, WIRE_MAX_CHANNELS), "1", BOTH, "channels in binary input" },
    { "rate", D(rate, 0, 1e7), "0", BOTH, "sample rate in Hz; 0 = the source's own (sim 2000, csv the median timestamp step of its first 64 rows; binary needs it); the detectors' profile follows it" },
    { "sim-equipment", S(sim_equipment), "bearing", RUN, "simulated equipment: bearing|motor|pump" },
    { "sim-seed", U64(sim_seed), "1", RUN, "simulator seed (noise and fault times)" },
    { "sim-fault-every", D(sim_fault_every_s, 0.1, 1e9), "20", RUN, "mean seconds between injected faults" },
    { "sim-speed", D(sim_speed, 0, 1e6), "1", RUN, "simulator pacing: 1 = real time, 0 = as fast as possible" },
    { "sim-adc-full-scale", D(sim_adc_full_scale, 0, 1e6), "0", RUN, "simulate a 16-bit ADC of +- this many g: int16 snapshots with a scale (0 = float32)" },
    { "sim-fault-log", S(sim_fault_log), NULL, RUN, "append one line `t_us,kind` per injected fault to FILE" },
    { "duration", D(duration_s, 0, 1e12), "0", RUN, "simulator: stop after this many seconds of samples; 0 = forever (a file source ends with its input)" },
    { "ring-s", D(ring_s, 0.01, 3600), "60", BOTH, "seconds of samples kept in memory" },
    { "pre-s", D(pre_s, 0, 3600), "5", BOTH, "seconds captured before the trigger" },
    { "post-s", D(post_s, 0.001, 3600), "5", BOTH, "seconds captured from the trigger on" },
    { "merge", B(merge), "false", BOTH, "merge events that overlap a pending capture into it; false = hold them off" },
    { "max-window-s", D(max_window_s, 0.01, 3600), "30", BOTH, "longest merged snapshot window, seconds" },
    { "capture-every-s", D(capture_every_s, 0, 1e9), "0", BOTH, "scheduled baseline: every this many seconds of stream time, capture a snapshot window (pre-s/post-s) without a trigger, detector \"schedule\"; no action or alarm, not a trigger (0 = off)" },
    { "zstd-level", I(zstd_level, 0, 19), "3", BOTH, "zstd level for snapshots (0 = library default)" },
    { "on-trigger", S(on_trigger), NULL, RUN, "command run at once on a trigger (event in PRECURSOR_* env)" },
    { "alarm-fifo", S(alarm_fifo), NULL, RUN, "FIFO to write one alarm line to per trigger (non-blocking)" },
    { "alarm-socket", S(alarm_socket), NULL, RUN, "UNIX datagram socket to send one alarm line to per trigger" },
    { "heartbeat-s", D(heartbeat_s, 1, 86400), "60", RUN, "whole seconds between heartbeats" },
    { "config-poll-s", D(config_poll_s, 0, 86400), "300", RUN, "seconds between config polls, which fetch a model deployed to this device (0 = never poll)" },
    { "spool-cap-mb", D(spool_cap_mb, 0, 1e7), "256", RUN, "disk cap for waiting snapshots in MB (0 = none): lowest priority dropped first, then oldest; a new snapshot of lower priority than all waiting ones is itself dropped; every drop counted and reported in heartbeats (docs/SPOOL.md)" },
    { "upload-max-bps", U64(upload_max_bps), "0", RUN, "upload bandwidth cap in bytes/s (0 = unlimited); a snapshot's request timeout grows by its time at the cap" },
    { "ca-file", S(ca_file), NULL, RUN, "extra CA bundle (PEM) for an https server" },
    { "pin-sha256", S(pin_sha256), NULL, RUN, "pin the server's public key: sha256//BASE64 of its SubjectPublicKeyInfo (several joined by ;); a server with another key is refused even if its certificate verifies" },
    { "model", S(model_file), NULL, BOTH, "signed model blob (schema/MODEL.md), scored beside the detectors with its own features, windows and threshold; refused unless signed by --model-key for this channel layout" },
    { "model-key", S(model_key_file), NULL, BOTH, "the server's model-signing Ed25519 public key: 32 raw bytes, hex or base64" },
    { "scores", S(scores), NULL, RPL, "replay output CSV: timestamp,anomaly_score,trigger (required)" },
    { "manipulated", S(manipulated), NULL, BOTH, "comma list of manipulated variables (valve positions, set-points, commands; channel names, or 0-based indices): a trigger never names one, and after a significant move of one the level and feature triggers of all channels wait hold_off_s for the plant to settle while the multivariate one keeps running; the exported score is unchanged (docs/DETECTORS.md)" },
    { "triggers", S(triggers), NULL, RPL, "also write one row per trigger to this CSV: timestamp,detector,channel,name,anomaly_score,trigger_score (which detector fired on which channel), and print the triggers per hour of stream time and the channels that fired most" },
    { "trigger-score", B(trigger_score), "false", RPL, "add a 4th column, trigger_score: the score the trigger acts on (after novelty and quiet period); anomaly_score is the calibrated surprise, never gated" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt *opt_find(const char *name, enum agent_cmd cmd)
{
    /* "format" and "source" share a field; match the command's own first. */
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0 && (opts[i].cmds & cmd))
            return &opts[i];
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static const char *cmd_name(unsigned cmd)
{
    return cmd == AGENT_CMD_REPLAY ? "replay" : "run";
}

/* The one-line reason an option of the other command is not taken by cmd.
 * "source" and "format" name the same setting in the two commands; say so. */
static void foreign_option(const struct opt *o, enum agent_cmd cmd, char *err, size_t errlen)
{
    const char *own = !strcmp(o->name, "source") ? "; replay's input format is --format"
                      : !strcmp(o->name, "format") ? "; run's sample source is --source"
                                                   : "";

    snprintf(err, errlen, "--%s is an option of `precursor-agent %s`, not of %s%s", o->name,
             cmd_name(o->cmds), cmd_name(cmd), own);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    /* Decimal only: base 0 read "010" as 8 and "0x10" as 16, so a seed or a
     * bandwidth cap typed with a leading zero silently became another number. */
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (s == NULL || !strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") ||
        !strcmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int opt_apply(struct agent_config *c, const struct opt *o, const char *value,
                     char *err, size_t errlen)
{
    char *field = (char *)c + o->off;
    double d;
    uint64_t u;
    int b;

    if (value == NULL && o->type != OPT_BOOL) {
        snprintf(err, errlen, "option %s needs a value", o->name);
        return -2;
    }
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "option %s: value longer than %zu bytes", o->name,
                     o->size - 1);
            return -2;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case OPT_DBL:
    case OPT_UINT:
    case OPT_INT:
        if (parse_double(value, &d) != 0 || d < o->min || d > o->max ||
            (o->type != OPT_DBL && d != floor(d))) {
            snprintf(err, errlen, "option %s: bad value '%s' (want %s from %g to %g)",
                     o->name, value, o->type == OPT_DBL ? "a number" : "an integer",
                     o->min, o->max);
            return -2;
        }
        if (o->type == OPT_DBL)
            memcpy(field, &d, sizeof(d));
        else if (o->type == OPT_UINT) {
            unsigned v = (unsigned)d;
            memcpy(field, &v, sizeof(v));
        } else {
            int v = (int)d;
            memcpy(field, &v, sizeof(v));
        }
        return 0;
    case OPT_U64:
        if (parse_u64(value, &u) != 0) {
            snprintf(err, errlen, "option %s: bad value '%s' (want a whole number, decimal "
                     "digits only)", o->name, value);
            return -2;
        }
        memcpy(field, &u, sizeof(u));
        return 0;
    case OPT_BOOL:
        if (parse_bool(value, &b) != 0) {
            snprintf(err, errlen, "option %s: bad value '%s' (want true or false)",
                     o->name, value);
            return -2;
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    return -2;
}

void agent_config_defaults(struct agent_config *c, enum agent_cmd cmd)
{
    char err[256];

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_OPTS; i++) {
        /* "format" belongs to replay, "source" to run; both write c->source. */
        if (opts[i].def == NULL || !(opts[i].cmds & cmd))
            continue;
        (void)opt_apply(c, &opts[i], opts[i].def, err, sizeof(err));
    }
    detect_config_defaults(&c->detect);
}

/* config_set's answer for an option only the other command takes. */
#define CONFIG_OTHER_CMD (-3)

/* agent_config_set for the commands in cmds: an option none of them takes
 * is CONFIG_OTHER_CMD, with foreign_option's reason in err, c untouched. */
static int config_set(struct agent_config *c, unsigned cmds, const char *key,
                      const char *value, char *err, size_t errlen)
{
    const struct opt *o = opt_find(key, (enum agent_cmd)cmds);
    char dkey[64];
    size_t i;
    int rc;

    if (o != NULL && !(o->cmds & cmds)) {
        foreign_option(o, (enum agent_cmd)cmds, err, errlen);
        return CONFIG_OTHER_CMD;
    }
    if (o != NULL)
        return opt_apply(c, o, value, err, errlen);
    /* Detector keys are snake_case; accept the flag spelling too. */
    if (strlen(key) >= sizeof(dkey)) {
        snprintf(err, errlen, "unknown option %s", key);
        return -1;
    }
    for (i = 0; key[i] != '\0'; i++)
        dkey[i] = key[i] == '-' ? '_' : key[i];
    dkey[i] = '\0';
    if (value == NULL) {
        /* Ask the detector on a copy whether it knows the key at all. */
        struct detect_config probe = c->detect;

        if (detect_opts_set(&probe, dkey, "") == -1) {
            snprintf(err, errlen, "unknown option %s", key);
            return -1;
        }
        snprintf(err, errlen, "option %s needs a value", key);
        return -2;
    }
    rc = detect_opts_set(&c->detect, dkey, value);
    if (rc == -1)
        snprintf(err, errlen, "unknown option %s", key);
    else if (rc == -2) {
        char want[128];
        const char *w = detect_opts_want(dkey, want, sizeof(want));

        snprintf(err, errlen, "detector option %s: bad value '%s'%s%s%s", key, value,
                 w ? " (want " : "", w ? w : "", w ? ")" : "");
    }
    else if (rc != 0) {
        snprintf(err, errlen, "detector option %s: error %d", key, rc);
        rc = -2;
    }
    return rc;
}

int agent_config_set(struct agent_config *c, const char *key, const char *value,
                     char *err, size_t errlen)
{
    return config_set(c, AGENT_CMD_RUN | AGENT_CMD_REPLAY, key, value, err, errlen);
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

int agent_config_load_file(struct agent_config *c, enum agent_cmd cmd, const char *path,
                           char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[2 * AGENT_PATH_MAX];
    char sub[256];
    unsigned lineno = 0;
    int rc = 0;

    if (f == NULL) {
        snprintf(err, errlen, "config %s: %s", path, strerror(errno));
        return AGENT_CONFIG_EUSAGE;
    }
    errno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *hash, *eq, *key, *value;
        size_t len = strlen(line);

        lineno++;
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "config %s:%u: line too long", path, lineno);
            rc = AGENT_CONFIG_EUSAGE;
            break;
        }
        hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        key = trim(line);
        if (*key == '\0')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "config %s:%u: expected `key = value`", path, lineno);
            rc = AGENT_CONFIG_EUSAGE;
            break;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        if (*key == '\0') {
            snprintf(err, errlen, "config %s:%u: expected `key = value`, found no key", path,
                     lineno);
            rc = AGENT_CONFIG_EUSAGE;
            break;
        }
        if (!strcmp(key, "config")) {
            snprintf(err, errlen, "config %s:%u: config files do not nest", path, lineno);
            rc = AGENT_CONFIG_EUSAGE;
            break;
        }
        rc = config_set(c, cmd, key, value, sub, sizeof(sub));
        if (rc == CONFIG_OTHER_CMD) {
            /* One file serves run and replay alike (a device's agent.conf
             * replayed on a laptop): the other command's keys are skipped,
             * said once each on stderr, never an error. */
            fprintf(stderr, "precursor-agent %s: config %s:%u: ignoring %s (an option of "
                            "`precursor-agent %s` only)\n", cmd_name(cmd), path, lineno, key,
                    cmd == AGENT_CMD_RUN ? "replay" : "run");
            c->config_keys_ignored++;
            rc = 0;
            continue;
        }
        if (rc != 0) {
            snprintf(err, errlen, "config %s:%u: %s", path, lineno, sub);
            rc = AGENT_CONFIG_EUSAGE;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        /* errno from the failed read: "Is a directory" says more than "read error" */
        snprintf(err, errlen, "config %s: %s", path, errno ? strerror(errno) : "read error");
        rc = AGENT_CONFIG_EUSAGE;
    }
    fclose(f);
    return rc;
}

/* Splits "--key=value" / "--key value" / "--flag"; returns argv entries used. */
static int flag_at(int argc, char **argv, int i, char *key, size_t keylen,
                   const char **value, enum agent_cmd cmd)
{
    const char *a = argv[i] + 2;
    const char *eq = strchr(a, '=');
    const struct opt *o;

    if (eq != NULL) {
        size_t n = (size_t)(eq - a);
        if (n >= keylen)
            n = keylen - 1;
        memcpy(key, a, n);
        key[n] = '\0';
        *value = eq + 1;
        return 1;
    }
    snprintf(key, keylen, "%s", a);
    o = opt_find(key, cmd);
    /* A bare boolean takes no value unless the next word is one. */
    if (o != NULL && o->type == OPT_BOOL) {
        int b;
        if (i + 1 < argc && parse_bool(argv[i + 1], &b) == 0 && argv[i + 1] != NULL &&
            strncmp(argv[i + 1], "--", 2) != 0) {
            *value = argv[i + 1];
            return 2;
        }
        *value = NULL;
        return 1;
    }
    /* The next word is the value unless it is a flag itself: `--device-id
     * --server URL` is a device id left out, not a device named "--server"
     * (a value that starts with "--" can still be given as --key=--value). */
    if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
        *value = NULL;
        return 1;
    }
    *value = argv[i + 1];
    return 2;
}

int agent_config_parse(struct agent_config *c, enum agent_cmd cmd,
                       int argc, char **argv, char *err, size_t errlen)
{
    char key[128], sub[256];
    const char *value;
    int i, used, rc;

    /* First pass: --help and --config only, so flags can override the file. */
    for (i = 0; i < argc; i += used) {
        used = 1;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return AGENT_CONFIG_HELP;
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0' || argv[i][2] == '=') {
            const struct opt *prev = NULL;

            /* A word after a bare switch (`--merge maybe`) is that switch's
             * misspelt value more often than a stray argument: name it. */
            if (i > 0 && strncmp(argv[i - 1], "--", 2) == 0 && !strchr(argv[i - 1], '='))
                prev = opt_find(argv[i - 1] + 2, cmd);
            if (prev != NULL && prev->type == OPT_BOOL)
                snprintf(err, errlen, "unexpected argument '%s' after --%s (a switch: "
                         "--%s alone, or --%s=true|false)", argv[i], prev->name, prev->name,
                         prev->name);
            else
                snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
            return AGENT_CONFIG_EUSAGE;
        }
        if (!strcmp(argv[i], "--check")) {
            c->check_only = 1;
            continue;
        }
        used = flag_at(argc, argv, i, key, sizeof(key), &value, cmd);
        if (!strcmp(key, "config")) {
            if (value == NULL) {
                snprintf(err, errlen, "--config: option config needs a value");
                return AGENT_CONFIG_EUSAGE;
            }
            rc = agent_config_load_file(c, cmd, value, err, errlen);
            if (rc != 0)
                return rc;
            snprintf(c->config_file, sizeof(c->config_file), "%s", value);
        }
    }
    for (i = 0; i < argc; i += used) {
        used = 1;
        if (!strcmp(argv[i], "--check"))
            continue;
        used = flag_at(argc, argv, i, key, sizeof(key), &value, cmd);
        if (!strcmp(key, "config"))
            continue;
        rc = config_set(c, cmd, key, value, sub, sizeof(sub));
        if (rc == CONFIG_OTHER_CMD) {
            /* A flag is typed for this run: one the command would ignore
             * (--server to replay, which never uploads) is a mistake. */
            snprintf(err, errlen, "%s", sub);
            return AGENT_CONFIG_EUSAGE;
        }
        if (rc != 0) {
            snprintf(err, errlen, "--%s: %s", key, sub);
            return AGENT_CONFIG_EUSAGE;
        }
    }
    if (c->key_dir[0] == '\0' && c->device_id[0] != '\0')
        snprintf(c->key_dir, sizeof(c->key_dir), "./var/agent/%s", c->device_id);
    if (cmd == AGENT_CMD_RUN && c->spool_dir[0] == '\0' && c->key_dir[0] != '\0') {
        int n = snprintf(c->spool_dir, sizeof(c->spool_dir), "%s/spool", c->key_dir);
        if (n < 0 || (size_t)n >= sizeof(c->spool_dir)) {
            c->spool_dir[0] = '\0';
            snprintf(err, errlen, "key-dir too long");
            return AGENT_CONFIG_EUSAGE;
        }
    }
    return agent_config_check(c, cmd, err, errlen);
}

static int device_id_ok(const char *id)
{
    if (*id == '\0')
        return 0;
    for (; *id; id++) {
        char ch = *id;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

int agent_config_check(const struct agent_config *c, enum agent_cmd cmd,
                       char *err, size_t errlen)
{
    int is_sim = !strcmp(c->source, "sim");

    if (!is_sim && strcmp(c->source, "csv") && strcmp(c->source, "i16le") &&
        strcmp(c->source, "f32le")) {
        snprintf(err, errlen, "unknown %s '%s' (want %scsv, i16le or f32le)",
                 cmd == AGENT_CMD_REPLAY ? "format" : "source", c->source,
                 cmd == AGENT_CMD_REPLAY ? "" : "sim, ");
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->pin_sha256[0] && !upload_pin_valid(c->pin_sha256)) {
        snprintf(err, errlen, "pin-sha256 must be sha256//BASE64 (44 characters), several joined by ;");
        return AGENT_CONFIG_EUSAGE;
    }
    if (cmd == AGENT_CMD_REPLAY && is_sim) {
        snprintf(err, errlen, "replay reads a file: format csv, i16le or f32le");
        return AGENT_CONFIG_EUSAGE;
    }
    /* Options the source would ignore: the simulator with an input file ran
     * simulated data in place of the file's (sim is run's default source, so
     * a forgotten --source csv uploaded a simulation as the plant's data). */
    if (is_sim && c->input[0]) {
        snprintf(err, errlen, "--input is read by --source csv, i16le or f32le, and the source "
                 "is sim (the default): name the input's format with --source");
        return AGENT_CONFIG_EUSAGE;
    }
    if (!is_sim && c->duration_s > 0) {
        snprintf(err, errlen, "--duration is the simulator's: the %s source ends with its input",
                 c->source);
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->channels != 1 && strcmp(c->source, "i16le") && strcmp(c->source, "f32le")) {
        snprintf(err, errlen, "--channels is for binary input (i16le, f32le): %s",
                 is_sim ? "the simulator has its own channels"
                        : "a CSV names its channels in its header");
        return AGENT_CONFIG_EUSAGE;
    }
    if ((!strcmp(c->source, "i16le") || !strcmp(c->source, "f32le")) && c->rate <= 0) {
        snprintf(err, errlen, "binary input needs --rate (and --channels)");
        return AGENT_CONFIG_EUSAGE;
    }
    if (is_sim && strcmp(c->sim_equipment, "bearing") && strcmp(c->sim_equipment, "motor") &&
        strcmp(c->sim_equipment, "pump")) {
        snprintf(err, errlen, "unknown sim-equipment '%s' (want bearing, motor or pump)",
                 c->sim_equipment);
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->pre_s + c->post_s > c->ring_s) {
        snprintf(err, errlen, "pre-s + post-s (%g s) must fit in ring-s (%g s)",
                 c->pre_s + c->post_s, c->ring_s);
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->merge && c->max_window_s > c->ring_s) {
        snprintf(err, errlen, "max-window-s (%g s) must fit in ring-s (%g s)",
                 c->max_window_s, c->ring_s);
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->max_window_s < c->pre_s + c->post_s) {
        snprintf(err, errlen, "max-window-s (%g s) is shorter than pre-s + post-s (%g s)",
                 c->max_window_s, c->pre_s + c->post_s);
        return AGENT_CONFIG_EUSAGE;
    }
    /* detect_init refuses it too, but only once the source is open and with
     * no reason given; --check is where a config file learns why. */
    if (!(c->detect.rearm <= c->detect.threshold)) {
        snprintf(err, errlen, "rearm (%g) must not be above threshold (%g)",
                 (double)c->detect.rearm, (double)c->detect.threshold);
        return AGENT_CONFIG_EUSAGE;
    }
    /* agent_model_setup refuses it too, once the source is open: --check
     * said ok and the agent then exited 1. */
    if (c->model_file[0] && !c->model_key_file[0]) {
        snprintf(err, errlen, "--model needs --model-key (the server's model-signing public key)");
        return AGENT_CONFIG_EUSAGE;
    }
    /* The uploader counts heartbeats in whole seconds: 1.5 ran as 1. */
    if (c->heartbeat_s != floor(c->heartbeat_s)) {
        snprintf(err, errlen, "heartbeat-s %g: want whole seconds", c->heartbeat_s);
        return AGENT_CONFIG_EUSAGE;
    }
    if (c->alarm_fifo[0] && c->alarm_socket[0]) {
        snprintf(err, errlen, "give alarm-fifo or alarm-socket, not both");
        return AGENT_CONFIG_EUSAGE;
    }
    if (cmd == AGENT_CMD_RUN) {
        if (!device_id_ok(c->device_id) || strlen(c->device_id) > WIRE_MAX_NAME) {
            snprintf(err, errlen, c->device_id[0] ? "device-id '%s': only A-Z a-z 0-9 . _ -"
                                                  : "--device-id is required%s", c->device_id);
            return AGENT_CONFIG_EUSAGE;
        }
        if (c->server[0] == '\0') {
            snprintf(err, errlen, "--server is required");
            return AGENT_CONFIG_EUSAGE;
        }
        if (!upload_url_valid(c->server)) {
            snprintf(err, errlen, "server '%.200s': want http://HOST[:PORT] or "
                     "https://HOST[:PORT] (no quotes, blanks or user:password@)", c->server);
            return AGENT_CONFIG_EUSAGE;
        }
        /* A pin or a CA with plain HTTP checks nothing: the device would run
         * believing its server authenticated. */
        if ((c->pin_sha256[0] || c->ca_file[0]) && strncasecmp(c->server, "https://", 8) != 0) {
            snprintf(err, errlen, "--%s is for an https:// server; the server is %.200s",
                     c->pin_sha256[0] ? "pin-sha256" : "ca-file", c->server);
            return AGENT_CONFIG_EUSAGE;
        }
    } else {
        if (c->device_id[0] && (!device_id_ok(c->device_id) || strlen(c->device_id) > WIRE_MAX_NAME)) {
            snprintf(err, errlen, "device-id '%s': only A-Z a-z 0-9 . _ -", c->device_id);
            return AGENT_CONFIG_EUSAGE;
        }
        if (c->input[0] == '\0' && strcmp(c->source, "csv") != 0) {
            /* stdin is fine for CSV and binary alike; nothing to check */
        }
        if (c->scores[0] == '\0') {
            snprintf(err, errlen, "--scores OUT.csv is required");
            return AGENT_CONFIG_EUSAGE;
        }
        if (c->device_id[0] && !device_id_ok(c->device_id)) {
            snprintf(err, errlen, "device-id '%s': only A-Z a-z 0-9 . _ -", c->device_id);
            return AGENT_CONFIG_EUSAGE;
        }
    }
    return AGENT_CONFIG_OK;
}

/* What a text option's value is, for the help's left column ("S" else). */
static const char *metavar(const char *name)
{
    static const char *const names[][2] = {
        { "config", "FILE" }, { "device-id", "ID" }, { "server", "URL" }, { "key-dir", "DIR" },
        { "spool", "DIR" }, { "enroll-secret-file", "FILE" }, { "source", "KIND" },
        { "format", "KIND" }, { "input", "FILE" }, { "sim-equipment", "KIND" },
        { "sim-fault-log", "FILE" }, { "on-trigger", "CMD" }, { "alarm-fifo", "PATH" },
        { "alarm-socket", "PATH" }, { "ca-file", "PEM" }, { "pin-sha256", "PINS" },
        { "model", "FILE" }, { "model-key", "FILE" }, { "scores", "OUT.csv" },
        { "triggers", "OUT.csv" },
        { "manipulated", "CH,..." },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i][0], name) == 0)
            return names[i][1];
    return "S";
}

void agent_config_help(FILE *f, enum agent_cmd cmd)
{
    if (cmd == AGENT_CMD_REPLAY)
        fprintf(f, "usage: precursor-agent replay --input FILE --scores OUT.csv [options]\n"
                   "Runs the on-device detection path over a file as fast as possible,\n"
                   "writes one score row per input row, and snapshots to --spool if given.\n");
    else
        fprintf(f, "usage: precursor-agent run --device-id ID --server URL [options]\n"
                   "Reads samples, detects on the device, captures and spools snapshots,\n"
                   "uploads them and sends heartbeats.\n");
    fprintf(f, "\nEvery option is also a `key = value` line in the --config file\n"
               "(`#` starts a comment); a flag overrides the file.  One file may serve\n"
               "run and replay: a line naming the other command's option is skipped\n"
               "with a warning (as a flag, that option is an error).\n\noptions:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        char left[64];

        if (!(o->cmds & cmd))
            continue;
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->type == OPT_BOOL ? "" : " ",
                 o->type == OPT_BOOL ? "" : o->type == OPT_STR ? metavar(o->name) : "N");
        fprintf(f, "  %-26s %s", left, o->help);
        if (o->def != NULL)
            fprintf(f, " [default %s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-26s %s\n", "--check", "check the options and the config file, print `ok` and exit 0 (exit 2 with the reason otherwise); start nothing");
    fprintf(f, "  %-26s %s\n", "--help", "print this help");
    fprintf(f, "\ndetector options (as --key value flags, `-` or `_` alike, or config lines):\n");
    detect_opts_help(f);
}
