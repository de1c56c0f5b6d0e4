/* action.c - the local action: command spawn and alarm line.  See action.h.
 *
 * The command's environment is built once: the inherited variables (minus
 * any PRECURSOR_* of the agent's own environment, which would be stale or
 * forged) followed by fixed slots that each trigger overwrites in place. */
#include "agent/action/action.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_CHILDREN 16
#define ENV_EXTRA 6
#define ENV_VAL 96
/* Room for a 64-byte channel name of control characters (six bytes each
 * escaped), the device id and detector name (64 bytes at most, nothing
 * to escape in them: [A-Za-z0-9._-] and fixed names) and the numbers. */
#define ALARM_LINE_MAX 1024

struct action {
    char *device_id, *on_trigger, *alarm_fifo, *alarm_socket;
    char **envp;
    char env_val[ENV_EXTRA][ENV_VAL];
    pid_t children[MAX_CHILDREN];
    int alarm_fd;
    int alarm_is_sock;
    int alarm_said;             /* the current run of drops was logged */
    struct action_stats st;
};

static char *dup_opt(const char *s)
{
    return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

static int build_env(struct action *a)
{
    size_t n = 0, k = 0;

    while (environ != NULL && environ[n] != NULL)
        n++;
    a->envp = calloc(n + ENV_EXTRA + 1, sizeof(char *));
    if (a->envp == NULL)
        return ACTION_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PRECURSOR_", 10) != 0)
            a->envp[k++] = environ[i];
    for (int i = 0; i < ENV_EXTRA; i++)
        a->envp[k++] = a->env_val[i];
    a->envp[k] = NULL;
    return 0;
}

int action_new(const struct action_config *cfg, struct action **out)
{
    struct action *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return ACTION_ENOMEM;
    a->alarm_fd = -1;
    a->device_id = strdup(cfg->device_id != NULL ? cfg->device_id : "");
    a->on_trigger = dup_opt(cfg->on_trigger);
    a->alarm_fifo = dup_opt(cfg->alarm_fifo);
    a->alarm_socket = dup_opt(cfg->alarm_socket);
    if (a->device_id == NULL || (cfg->on_trigger && *cfg->on_trigger && !a->on_trigger) ||
        (cfg->alarm_fifo && *cfg->alarm_fifo && !a->alarm_fifo) ||
        (cfg->alarm_socket && *cfg->alarm_socket && !a->alarm_socket) || build_env(a) != 0) {
        action_free(a);
        return ACTION_ENOMEM;
    }
    *out = a;
    return 0;
}

int action_configured(const struct action *a)
{
    return a->on_trigger != NULL || a->alarm_fifo != NULL || a->alarm_socket != NULL;
}

/* A relay command that fails (a typo, a device gone) said nothing unless
 * the command itself did: say its status. */
static void child_done(int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "agent: on-trigger command exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "agent: on-trigger command killed by signal %d\n", WTERMSIG(status));
}

void action_reap(struct action *a)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        int status;
        if (a->children[i] > 0 && waitpid(a->children[i], &status, WNOHANG) == a->children[i]) {
            a->children[i] = 0;
            child_done(status);
        }
    }
}

static int free_slot(const struct action *a)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (a->children[i] == 0)
            return i;
    return -1;
}

static void spawn_command(struct action *a, const struct action_event *ev)
{
    char *argv[] = { "/bin/sh", "-c", a->on_trigger, NULL };
    int slot = free_slot(a);
    pid_t pid;

    if (slot < 0) {
        action_reap(a);
        slot = free_slot(a);
    }
    if (slot < 0) {             /* all still running: do not pile up */
        a->st.errors++;
        return;
    }
    snprintf(a->env_val[0], ENV_VAL, "PRECURSOR_DEVICE_ID=%s", a->device_id);
    snprintf(a->env_val[1], ENV_VAL, "PRECURSOR_EVENT_TIME_US=%lld", (long long)ev->t_us);
    snprintf(a->env_val[2], ENV_VAL, "PRECURSOR_SCORE=%.6f", (double)ev->score);
    snprintf(a->env_val[3], ENV_VAL, "PRECURSOR_CHANNEL=%s", ev->channel);
    snprintf(a->env_val[4], ENV_VAL, "PRECURSOR_DETECTOR=%s", ev->detector);
    snprintf(a->env_val[5], ENV_VAL, "PRECURSOR_FRAME=%llu", (unsigned long long)ev->frame);
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, a->envp) != 0) {
        a->st.errors++;
        return;
    }
    a->children[slot] = pid;
}

/* ---- alarm line -------------------------------------------------------- */

static int put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - *len)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

/* s as a JSON string: quoted, with '"', '\\' and control characters
 * escaped.  Other bytes pass as they are (names are UTF-8 or ASCII). */
static int put_string(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    if (put(buf, cap, len, "\"", 1) != 0)
        return -1;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        const char *esc = *c == '"' ? "\\\"" : *c == '\\' ? "\\\\" : *c == '\n' ? "\\n"
                        : *c == '\r' ? "\\r" : *c == '\t' ? "\\t" : NULL;
        int rc;

        if (esc != NULL) {
            rc = put(buf, cap, len, esc, 2);
        } else if (*c < 0x20) {
            char u[6] = { '\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15] };
            rc = put(buf, cap, len, u, sizeof(u));
        } else {
            rc = put(buf, cap, len, (const char *)c, 1);
        }
        if (rc != 0)
            return -1;
    }
    return put(buf, cap, len, "\"", 1);
}

static int put_time_score(char *buf, size_t cap, size_t *len, const struct action_event *ev)
{
    int n = snprintf(buf + *len, cap - *len, ",\"time_us\":%lld,\"score\":%.6f",
                     (long long)ev->t_us, (double)ev->score);

    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

int action_alarm_line(char *buf, size_t cap, const char *device_id,
                      const struct action_event *ev)
{
    static const char dev_key[] = "{\"device_id\":", chan_key[] = ",\"channel\":",
                      det_key[] = ",\"detector\":";
    size_t len = 0;

    if (put(buf, cap, &len, dev_key, sizeof(dev_key) - 1) != 0 ||
        put_string(buf, cap, &len, device_id) != 0 ||
        put_time_score(buf, cap, &len, ev) != 0 ||
        put(buf, cap, &len, chan_key, sizeof(chan_key) - 1) != 0 ||
        put_string(buf, cap, &len, ev->channel) != 0 ||
        put(buf, cap, &len, det_key, sizeof(det_key) - 1) != 0 ||
        put_string(buf, cap, &len, ev->detector) != 0 ||
        put(buf, cap, &len, "}\n", 2) != 0)
        return -1;
    return len <= INT_MAX ? (int)len : -1;
}

static int alarm_connect(struct action *a)
{
    struct sockaddr_un sa;
    int fd;

    if (a->alarm_fifo != NULL) {
        /* Non-blocking open fails with ENXIO while no reader: retried per alarm. */
        a->alarm_is_sock = 0;
        return open(a->alarm_fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (strlen(a->alarm_socket) >= sizeof(sa.sun_path))
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, a->alarm_socket, strlen(a->alarm_socket) + 1);
    a->alarm_is_sock = 1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    /* The listener may be a stream socket. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The first alarm line dropped after one went through (or the first of
 * all) says why on stderr, once: a mistyped --alarm-fifo was otherwise only
 * a count in the exit log.  After the actions, so it costs them nothing. */
static void alarm_dropped(struct action *a, const char *why, int err)
{
    a->st.alarm_drops++;
    if (a->alarm_said)
        return;
    a->alarm_said = 1;
    fprintf(stderr, "agent: alarm %s %s: %s%s%s; alarm lines are dropped and counted until "
                    "one goes through\n", a->alarm_fifo ? "fifo" : "socket",
            a->alarm_fifo ? a->alarm_fifo : a->alarm_socket, why, err ? ": " : "",
            err ? strerror(err) : "");
}

static void send_alarm(struct action *a, const struct action_event *ev)
{
    char line[ALARM_LINE_MAX];
    int n = action_alarm_line(line, sizeof(line), a->device_id, ev);
    ssize_t w;

    if (n <= 0) {
        alarm_dropped(a, "line does not fit", 0);
        return;
    }
    if (a->alarm_fd < 0) {
        errno = 0;
        a->alarm_fd = alarm_connect(a);
    }
    if (a->alarm_fd < 0) {
        /* ENXIO: a FIFO nobody reads yet */
        alarm_dropped(a, errno == ENXIO ? "no reader" : "cannot open", errno == ENXIO ? 0 : errno);
        return;
    }
    if (a->alarm_is_sock)
        w = send(a->alarm_fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    else
        w = write(a->alarm_fd, line, (size_t)n);   /* SIGPIPE is ignored by the agent */
    if (w != n) {
        alarm_dropped(a, "reader gone or not keeping up", w < 0 ? errno : 0);
        close(a->alarm_fd);     /* reader gone or full: reconnect on the next alarm */
        a->alarm_fd = -1;
        return;
    }
    a->alarm_said = 0;
}

void action_fire(struct action *a, const struct action_event *ev)
{
    if (a->on_trigger != NULL)
        spawn_command(a, ev);
    if (a->alarm_fifo != NULL || a->alarm_socket != NULL)
        send_alarm(a, ev);
}

void action_get_stats(const struct action *a, struct action_stats *st)
{
    *st = a->st;
}

void action_free(struct action *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        int status;

        if (a->children[i] > 0 && waitpid(a->children[i], &status, 0) == a->children[i])
            child_done(status);
    }
    if (a->alarm_fd >= 0)
        close(a->alarm_fd);
    free(a->envp);
    free(a->device_id);
    free(a->on_trigger);
    free(a->alarm_fifo);
    free(a->alarm_socket);
    free(a);
}
