/* config.h - the agent's options: defaults, config file, command-line flags.
 *
 * One table (config.c) lists every option with its type, default and help
 * text; the same names work as `--name value` flags and as `name = value`
 * lines in the --config file.  Precedence: defaults < file < flags.  Keys the
 * table does not know are forwarded to the detector (detect_opts_set), so
 * `--threshold 0.9` and `threshold = 0.9` both reach struct detect_config. */
#ifndef PRECURSOR_AGENT_CONFIG_H
#define PRECURSOR_AGENT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "agent/core/detect.h"
#include "schema/wire.h"

#define AGENT_PATH_MAX 1024

enum agent_cmd {
    AGENT_CMD_RUN = 1,
    AGENT_CMD_REPLAY = 2
};

struct agent_config {
    const char *agent_version;             /* this build's, for heartbeats; static; may be NULL */
    char device_id[WIRE_MAX_NAME + 1];
    char server[AGENT_PATH_MAX];
    char key_dir[AGENT_PATH_MAX];          /* "" = ./var/agent/<device-id> */
    char spool_dir[AGENT_PATH_MAX];        /* "" = <key-dir>/spool (run) or none (replay) */
    char enroll_secret_file[AGENT_PATH_MAX];

    char source[16];                       /* sim, csv, i16le, f32le */
    char input[AGENT_PATH_MAX];            /* "" or "-" = stdin */
    unsigned channels;                     /* binary input */
    double rate;                           /* Hz; 0 = source's own */

    char sim_equipment[16];
    uint64_t sim_seed;
    double sim_fault_every_s;
    double sim_speed;
    double sim_adc_full_scale;             /* > 0: int16 ADC codes, +- this many g */
    char sim_fault_log[AGENT_PATH_MAX];

    double duration_s;                     /* 0 = forever */
    double ring_s;
    double pre_s;
    double post_s;
    int merge;                             /* 1 merge overlapping events, 0 hold off */
    int trigger_score;                     /* replay: also write the trigger's score */
    double max_window_s;                   /* cap on a merged window */
    double capture_every_s;                /* scheduled baseline capture period; 0 = off */
    int zstd_level;

    char on_trigger[AGENT_PATH_MAX];
    char alarm_fifo[AGENT_PATH_MAX];
    char alarm_socket[AGENT_PATH_MAX];
    double heartbeat_s;
    double config_poll_s;                  /* config poll (model deployment); 0 = off */

    double spool_cap_mb;
    uint64_t upload_max_bps;
    char ca_file[AGENT_PATH_MAX];
    char pin_sha256[512];                  /* "sha256//<base64>[;sha256//...]"; "" = no pin */

    char model_file[AGENT_PATH_MAX];       /* signed model blob (schema/MODEL.md); "" = none */
    char model_key_file[AGENT_PATH_MAX];   /* the server's model-signing public key */

    char scores[AGENT_PATH_MAX];           /* replay: OUT.csv */
    char triggers[AGENT_PATH_MAX];         /* replay: one row per trigger, "" = none */
    char config_file[AGENT_PATH_MAX];
    unsigned config_keys_ignored;          /* lines of the file for the other command */
    int check_only;                        /* --check: parse, report, start nothing */
    /* manipulated channels, a comma list of names or 0-based indices,
     * resolved against the source's channels when it is open ("" = none) */
    char manipulated[WIRE_MAX_CHANNELS * (WIRE_MAX_NAME + 1)];

    struct detect_config detect;
};

enum agent_config_result {
    AGENT_CONFIG_OK = 0,
    AGENT_CONFIG_HELP = 1,                 /* --help was given: print and exit 0 */
    AGENT_CONFIG_EUSAGE = -1               /* message in err */
};

void agent_config_defaults(struct agent_config *c, enum agent_cmd cmd);
/* Set one option by name (without "--"), of either command; value NULL for
 * a bare flag.  Returns 0, -1 unknown key, -2 bad value; err says which and
 * why. */
int agent_config_set(struct agent_config *c, const char *key, const char *value,
                     char *err, size_t errlen);
/* Read `key = value` lines for cmd; `#` starts a comment.  A key only the
 * other command takes is skipped with a warning on stderr (one file may
 * serve both) and counted in c->config_keys_ignored. */
int agent_config_load_file(struct agent_config *c, enum agent_cmd cmd, const char *path,
                           char *err, size_t errlen);
/* argv after the sub-command: finds --config first, loads it, then applies
 * every flag over it, then derives defaults that depend on other options
 * (key-dir, spool).  A flag only the other command takes is a usage error
 * naming it and that command.  Returns an agent_config_result. */
int agent_config_parse(struct agent_config *c, enum agent_cmd cmd,
                       int argc, char **argv, char *err, size_t errlen);
/* Checks that need every option at once (pre+post fit in the ring, ...). */
int agent_config_check(const struct agent_config *c, enum agent_cmd cmd,
                       char *err, size_t errlen);
void agent_config_help(FILE *f, enum agent_cmd cmd);

#endif
