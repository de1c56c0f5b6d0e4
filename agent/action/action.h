/* action.h - the agent's local action on a trigger: the --on-trigger command
 * (sh -c, with the event in PRECURSOR_* variables) and one alarm line, a JSON
 * object, to a FIFO or a UNIX socket.
 *
 * Both start in the sample thread the moment a detector triggers, before
 * capture, encoding or the network, so neither may wait: the command is
 * spawned and reaped later (a bounded number run at once), the alarm goes out
 * non-blocking, and a line that cannot be delivered (no reader, a full pipe
 * or queue) is counted as a drop, never retried.  action_new() allocates
 * everything; firing allocates nothing. */
#ifndef PRECURSOR_ACTION_H
#define PRECURSOR_ACTION_H

#include <stddef.h>
#include <stdint.h>

enum action_error {
    ACTION_OK = 0,
    ACTION_ENOMEM = -1
};

struct action_config {
    const char *device_id;          /* copied */
    const char *on_trigger;         /* sh -c command; NULL/"" = none; copied */
    const char *alarm_fifo;         /* NULL/"" = none; copied */
    const char *alarm_socket;       /* UNIX datagram or stream socket; NULL/"" = none; copied */
};

/* One trigger, as the command's environment and the alarm line report it. */
struct action_event {
    int64_t t_us;                   /* unix time of the trigger sample */
    float score;
    const char *channel;            /* name; "" when the source gives none */
    const char *detector;
    uint64_t frame;                 /* absolute frame number of the trigger */
};

struct action_stats {
    uint64_t errors;                /* commands that could not be started */
    uint64_t alarm_drops;           /* alarm lines not delivered */
};

struct action;

int action_new(const struct action_config *cfg, struct action **out);
/* 1 when a command or an alarm is configured: firing then does something. */
int action_configured(const struct action *a);
/* Start the command and send the alarm line for ev. */
void action_fire(struct action *a, const struct action_event *ev);
/* Collects commands that have finished, without waiting. */
void action_reap(struct action *a);
void action_get_stats(const struct action *a, struct action_stats *st);
/* Waits for the commands still running and closes the alarm. */
void action_free(struct action *a);

/* The alarm line for ev into buf: {"device_id","time_us","score","channel",
 * "detector"} and '\n', every string JSON-escaped.  Returns its length, or -1
 * when it does not fit in cap. */
int action_alarm_line(char *buf, size_t cap, const char *device_id,
                      const struct action_event *ev);

#endif
