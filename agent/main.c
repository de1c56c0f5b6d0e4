/* main.c - precursor-agent: `run` on a device, `replay` for offline evaluation.
 *
 * Parses the command line into struct agent_config (agent/config/config.c)
 * and hands over to command_run() or command_replay().  SIGINT/SIGTERM stop
 * the sample loop cleanly: the pending capture is spooled, the uploader
 * joined. */
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "agent/command/command.h"
#include "agent/config/config.h"
#include "agent/fleet/enroll.h"
#include "version.h"

static atomic_int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: precursor-agent run    --device-id ID --server URL [options]\n"
               "       precursor-agent enroll --server URL --token-file PATH|- --device-id ID --key-dir DIR\n"
               "       precursor-agent replay --input FILE --scores OUT.csv [options]\n"
               "       precursor-agent run --help | enroll --help | replay --help   (every option, with defaults)\n"
               "       precursor-agent run|replay ... --check   (check the options and --config file, start nothing)\n"
               "       precursor-agent --version   (this build's version, as heartbeats report it)\n");
}

int main(int argc, char **argv)
{
    static struct agent_config cfg;    /* large: keep it off the stack */
    struct sigaction sa;
    enum agent_cmd cmd;
    char err[512];
    int rc;

    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("precursor-agent %s\n", PRECURSOR_VERSION_TEXT);
        return 0;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        if (argc >= 2) {
            fputc('\n', stdout);
            agent_config_help(stdout, AGENT_CMD_RUN);
        }
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "enroll"))     /* install.sh: key pair + token registration */
        return enroll_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run"))
        cmd = AGENT_CMD_RUN;
    else if (!strcmp(argv[1], "replay"))
        cmd = AGENT_CMD_REPLAY;
    else {
        fprintf(stderr, "precursor-agent: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    agent_config_defaults(&cfg, cmd);
    rc = agent_config_parse(&cfg, cmd, argc - 2, argv + 2, err, sizeof(err));
    if (rc == AGENT_CONFIG_HELP) {
        agent_config_help(stdout, cmd);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "precursor-agent %s: %s (see --help)\n", argv[1], err);
        return 2;
    }
    if (cfg.check_only) {       /* a config file checked before it is rolled out */
        printf("precursor-agent %s: ok\n", argv[1]);
        return 0;
    }
    cfg.agent_version = PRECURSOR_VERSION_TEXT;     /* heartbeats say which build runs */

    /* Memory (docs/BENCHMARKS.md): glibc gives each thread that allocates an
     * arena of its own, and each keeps what was freed in it; one arena for
     * the agent's few threads (none of which allocates in a hot path).  A
     * fixed mmap threshold stops glibc from raising it after the first large
     * free, so a large transient buffer (a spool file read for upload) goes
     * back to the system when freed instead of staying in the heap. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A FIFO reader that went away must cost one alarm line, not the agent. */
    signal(SIGPIPE, SIG_IGN);
    /* Before any thread: libsodium's one-time set-up (keys, signatures, TLS randomness). */
    if (cmd == AGENT_CMD_RUN && sodium_init() < 0) {
        fprintf(stderr, "precursor-agent: libsodium failed to initialise\n");
        return 1;
    }

    return cmd == AGENT_CMD_RUN ? command_run(&cfg, &stop_flag)
                                : command_replay(&cfg, &stop_flag);
}
