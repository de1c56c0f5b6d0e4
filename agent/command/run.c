/* run.c - `precursor-agent run`: keys, registration, spool, uploader thread
 * and the sample pipeline.
 *
 * The sample path never waits on the network: registration and uploads run
 * in a thread of their own while the pipeline detects and spools from the
 * first sample on; snapshots wait in the spool until the device is
 * registered and the server answers.  A server that forgets the device later
 * (`unknown_device`) is registered with again by whichever request sees it
 * first, an upload, a heartbeat or a config poll, when the agent has the
 * enrollment secret: one struct upload_forgotten that the uploader and the
 * config poll share (one back-off, one registration at a time, one hourly
 * hint without the secret). */
#include "agent/command/command.h"
#include "agent/command/command_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/fleet/config_poll.h"
#include "agent/model/agent_model.h"
#include "agent/spool/spool.h"
#include "agent/upload/upload.h"

#define DRAIN_WAIT_S 10     /* after end of input, how long uploads may finish */

/* Registration, then the uploader: everything that touches the network. */
struct net {
    const struct agent_config *c;
    const struct keys *keys;
    struct spool *sp;
    struct upload_counters *counters;
    atomic_int *stop;
    atomic_int fatal;
    struct upload *up;
    struct agent_model_slot *ms;        /* NULL: no config poll */
    double hold_off_s;                  /* resolved at the source's rate */
    struct config_poll *cp;
    struct upload_forgotten *forgotten; /* shared by the uploader and the config poll */
    pthread_mutex_t mu;
};

/* upload_forgotten_config.reregister: the server forgot the device; register
 * it again as net_main did the first time, with the same id and key (one
 * request: upload_forgotten decides when to try again, and makes it one at
 * a time whichever thread saw the answer). */
static int reregister(void *ctx, const atomic_bool *abort, char *err, size_t errlen)
{
    struct net *n = ctx;
    const struct agent_config *c = n->c;

    return keys_register_once(c->key_dir, c->server, c->device_id, n->keys,
                              c->enroll_secret_file, abort, err, errlen) == KEYS_OK ? 0 : -1;
}

static void *net_main(void *arg)
{
    struct net *n = arg;
    const struct agent_config *c = n->c;
    char err[512], what[400];
    enum keys_marker mark;
    int rc;

    mark = keys_registration(c->key_dir, c->server, c->device_id, n->keys->pk, what,
                             sizeof(what));
    if (mark == KEYS_MARKER_LEGACY) {
        /* An older agent's marker names nothing: taken as this config's, and
         * written so, so that a later change of server or id is seen. */
        if (keys_mark_registered(c->key_dir, c->server, c->device_id, n->keys->pk) != 0)
            fprintf(stderr, "agent: cannot rewrite the registration marker in %s: %s\n",
                    c->key_dir, strerror(errno));
    } else if (mark == KEYS_MARKER_OTHER) {
        /* Another server (or the same under another id or key) does not know
         * this device: uploads would be refused forever. */
        fprintf(stderr, "agent: %s was registered as %s, not as %s with %s: registering anew\n",
                c->key_dir, what, c->device_id, c->server);
    }
    /* For the first registration and for any later one (reregister). */
    keys_tls(c->ca_file[0] ? c->ca_file : NULL, c->pin_sha256[0] ? c->pin_sha256 : NULL);
    if (mark == KEYS_MARKER_NONE || mark == KEYS_MARKER_OTHER) {
        rc = keys_register(c->key_dir, c->server, c->device_id, n->keys,
                           c->enroll_secret_file, n->stop, err, sizeof(err));
        if (rc == KEYS_EREFUSED || rc == KEYS_EIO || rc == KEYS_EINVAL) {
            fprintf(stderr, "agent: fatal: %s\n", err);
            atomic_store(&n->fatal, 1);
            atomic_store(n->stop, 1);
            return NULL;
        }
        if (rc != 0)
            return NULL;            /* stopped */
        fprintf(stderr, "agent: registered %s with %s\n", c->device_id, c->server);
    }
    struct upload_config uc = {
        .server_url = c->server, .device_id = c->device_id,
        .agent_version = c->agent_version,
        .detector_version = "precursor-detect-1", .model_version = NULL,
        .max_send_bytes_per_s = c->upload_max_bps,
        .heartbeat_s = (uint32_t)c->heartbeat_s,
        .ca_file = c->ca_file[0] ? c->ca_file : NULL,
        .pin_sha256 = c->pin_sha256[0] ? c->pin_sha256 : NULL,
        /* Without a secret the uploader can only say what to run. */
        .reregister = c->enroll_secret_file[0] ? reregister : NULL, .reregister_ctx = n,
        .key_dir = c->key_dir,
    };
    memcpy(uc.secret_key, n->keys->sk, sizeof(uc.secret_key));
    pthread_mutex_lock(&n->mu);
    {
        struct upload_forgotten_config fc = {
            .server_url = c->server, .device_id = c->device_id, .key_dir = c->key_dir,
            .reregister = uc.reregister, .reregister_ctx = n, .counters = n->counters,
        };

        rc = upload_forgotten_new(&fc, &n->forgotten);
        if (rc != 0)   /* then the uploader keeps its own, and polls only log it */
            fprintf(stderr, "agent: registering again when forgotten: %s\n",
                    upload_strerror(rc));
        uc.forgotten = n->forgotten;
    }
    if (n->ms && !atomic_load(n->stop)) {
        /* Model deployment: poll once registered; heartbeats say what runs. */
        struct config_poll_config pcfg = {
            .server_url = c->server, .device_id = c->device_id, .key_dir = c->key_dir,
            .interval_s = c->config_poll_s, .ca_file = uc.ca_file, .pin_sha256 = uc.pin_sha256,
            .hold_off_s = n->hold_off_s, .forgotten = n->forgotten,
        };
        memcpy(pcfg.secret_key, n->keys->sk, sizeof(pcfg.secret_key));
        rc = config_poll_new(&pcfg, n->ms, &n->cp);
        if (rc == 0 && (rc = config_poll_start(n->cp)) != 0) {
            config_poll_free(n->cp);
            n->cp = NULL;
        }
        if (rc != 0)
            fprintf(stderr, "agent: config poll: %s\n", config_poll_strerror(rc));
        memset(pcfg.secret_key, 0, sizeof(pcfg.secret_key));
        uc.heartbeat_fill = n->cp ? config_poll_heartbeat_fill : NULL;
        uc.heartbeat_ctx = n->cp;
    }
    if (!atomic_load(n->stop)) {
        rc = upload_start(&uc, n->sp, n->counters, &n->up);
        if (rc != 0)
            fprintf(stderr, "agent: uploader: %s\n", upload_strerror(rc));
    }
    pthread_mutex_unlock(&n->mu);
    memset(uc.secret_key, 0, sizeof(uc.secret_key));
    return NULL;
}

static void log_stats(struct pipeline *p, struct spool *sp)
{
    struct pipeline_stats st;
    struct spool_stats ss;

    pipeline_get_stats(p, &st);
    fprintf(stderr,
            "agent: frames %llu, triggers %llu, snapshots %llu (merged %llu, held off %llu, "
            "scheduled %llu, errors %llu), action errors %llu, alarm drops %llu, action latency p50 %.0f us "
            "p99 %.0f us max %.0f us over %llu\n",
            (unsigned long long)st.frames, (unsigned long long)st.triggers,
            (unsigned long long)st.snapshots, (unsigned long long)st.merged,
            (unsigned long long)st.held_off, (unsigned long long)st.scheduled,
            (unsigned long long)st.sink_errors,
            (unsigned long long)st.action_errors, (unsigned long long)st.alarm_drops,
            st.lat_p50_us, st.lat_p99_us, st.lat_max_us, (unsigned long long)st.lat_count);
    if (sp != NULL) {
        spool_get_stats(sp, &ss);
        fprintf(stderr, "agent: spool waiting %llu (%llu bytes), uploaded %llu, dropped %llu, "
                        "quarantined %llu, dead-lettered %llu\n",
                (unsigned long long)ss.files, (unsigned long long)ss.bytes,
                (unsigned long long)ss.uploaded, (unsigned long long)ss.dropped,
                (unsigned long long)ss.quarantined, (unsigned long long)ss.dead_lettered);
    }
}

/* What the running model did in this run: the counters heartbeats report,
 * final (the last heartbeat may be up to an interval older). */
static void log_model(struct agent_model_slot *ms)
{
    struct agent_model_stats st;

    if (ms == NULL)
        return;
    agent_model_slot_stats(ms, &st);
    if (st.version == 0)
        return;
    fprintf(stderr, "agent: model %u (%s): windows %llu, above threshold %llu, alerts %llu, "
                    "run %.1f s, max score %.3f\n", st.version, agent_model_mode_name(st.mode),
            (unsigned long long)st.windows, (unsigned long long)st.above,
            (unsigned long long)st.alerts, st.run_s, (double)st.max_score);
}

/* End of input (not a signal): give the uploader a moment to drain. */
static void wait_for_uploads(struct spool *sp, atomic_int *stop)
{
    for (int i = 0; i < DRAIN_WAIT_S * 10 && !atomic_load(stop); i++) {
        struct spool_stats ss;
        struct timespec ts = { 0, 100000000L };
        spool_get_stats(sp, &ss);
        if (ss.files == 0)
            break;
        nanosleep(&ts, NULL);
    }
}

int command_run(const struct agent_config *c, atomic_int *stop)
{
    struct command_parts cp;
    struct upload_counters counters;
    struct net net;
    pthread_t th;
    int rc, status = 1;
    FILE *fault_log = NULL;
    struct timespec now;
    char err[512];

    memset(&cp, 0, sizeof(cp));
    memset(&counters, 0, sizeof(counters));
    rc = keys_load_or_create(c->key_dir, &cp.keys, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "agent: keys: %s\n", err);
        return 1;
    }
    if (cp.keys.created)
        fprintf(stderr, "agent: new key pair in %s\n", c->key_dir);
    rc = spool_open(c->spool_dir, (uint64_t)(c->spool_cap_mb * 1048576.0), &cp.sp);
    if (rc != 0) {
        fprintf(stderr, "agent: spool %s: %s\n", c->spool_dir, spool_strerror(rc));
        goto out;
    }
    if (c->sim_fault_log[0] && (fault_log = fopen(c->sim_fault_log, "a")) == NULL) {
        fprintf(stderr, "agent: sim-fault-log %s: %s\n", c->sim_fault_log, strerror(errno));
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    if (command_open_source(c, fault_log, (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000,
                            &cp.src, err, sizeof(err)) != 0) {
        if (atomic_load(stop)) {
            /* SIGTERM while a CSV stream had not sent its header yet: a stop
             * asked for, not a failure (systemd would call it one). */
            fprintf(stderr, "agent: stopped before the source sent its first line\n");
            status = 0;
        } else {
            fprintf(stderr, "agent: %s\n", err);
        }
        goto out;
    }
    command_pipeline_config(c, &cp.pc);
    cp.pc.secret_key = cp.keys.sk;
    cp.pc.sink = command_spool_sink(cp.sp);
    cp.pc.counters = &counters;
    if (command_parts_start(&cp, c, c->config_poll_s > 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "agent: %s\n", err);
        goto out;
    }

    memset(&net, 0, sizeof(net));
    net.c = c;
    net.keys = &cp.keys;
    net.sp = cp.sp;
    net.counters = &counters;
    net.stop = stop;
    net.ms = c->config_poll_s > 0 ? cp.ms : NULL;
    net.hold_off_s = cp.pc.detect.hold_off_s;
    pthread_mutex_init(&net.mu, NULL);
    if (pthread_create(&th, NULL, net_main, &net) != 0) {
        fprintf(stderr, "agent: cannot start the network thread\n");
        pthread_mutex_destroy(&net.mu);
        goto out;
    }
    fprintf(stderr, "agent: %s running: %s source, %u channel%s at %g Hz, spool %s\n",
            c->device_id, c->source, cp.src->channels, cp.src->channels == 1 ? "" : "s",
            cp.src->rate, c->spool_dir);

    rc = pipeline_run(cp.p, stop);
    if (rc != 0)
        fprintf(stderr, "agent: %s\n", pipeline_err(cp.p));
    status = rc == 0 ? 0 : 1;
    if (rc == 0)
        wait_for_uploads(cp.sp, stop);
    atomic_store(stop, 1);
    pthread_join(th, NULL);
    if (net.up != NULL)
        upload_stop(net.up);
    config_poll_free(net.cp);   /* after the uploader: its heartbeats read it */
    upload_forgotten_free(net.forgotten);   /* after both, who share it */
    pthread_mutex_destroy(&net.mu);
    if (atomic_load(&net.fatal))
        status = 1;
    log_stats(cp.p, cp.sp);
    if (atomic_load(&counters.reregistrations) > 0)
        fprintf(stderr, "agent: registered again %llu time%s with a server that had forgotten "
                        "the device\n",
                (unsigned long long)atomic_load(&counters.reregistrations),
                atomic_load(&counters.reregistrations) == 1 ? "" : "s");
    log_model(cp.ms);
out:
    command_parts_release(&cp);
    if (fault_log != NULL)
        fclose(fault_log);      /* after the source that writes to it */
    return status;
}
