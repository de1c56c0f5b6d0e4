/* command.c - the set-up `run` and `replay` share: source, pipeline
 * configuration, the spool sink, and the release of what they built. */
#include "agent/command/command_int.h"
#include "agent/config/detect_opts.h"

#include <string.h>

#include "agent/model/agent_model.h"
#include "agent/spool/spool.h"

int command_open_source(const struct agent_config *c, FILE *fault_log, int64_t start_us,
                        struct source **out, char *err, size_t errlen)
{
    const char *in = c->input[0] && strcmp(c->input, "-") ? c->input : NULL;
    int rc;

    if (!strcmp(c->source, "sim")) {
        struct sim_config sc = {
            .equipment = c->sim_equipment, .rate = c->rate, .seed = c->sim_seed,
            .fault_every_s = c->sim_fault_every_s, .speed = c->sim_speed,
            .adc_full_scale = c->sim_adc_full_scale,
            .duration_s = c->duration_s, .start_us = start_us, .fault_log = fault_log
        };
        rc = source_sim_open(&sc, out);
    } else if (!strcmp(c->source, "csv")) {
        rc = source_csv_open(in, c->rate, out);
    } else {
        rc = source_bin_open(in, c->source, c->channels, c->rate, start_us, out);
    }
    /* The file sources say why in source_open_error(); their codes are
     * SOURCE_E*, not errno values (SOURCE_EFORMAT read as ENOENT said "No
     * such file or directory" of a file with a bad row). */
    if (rc != 0 && strcmp(c->source, "sim") != 0 && source_open_error()[0] != '\0')
        snprintf(err, errlen, "cannot open %s source: %s", c->source, source_open_error());
    else if (rc != 0)
        snprintf(err, errlen, "cannot open %s source %s%s%s", c->source,
                 in ? in : "(stdin)", rc < -1 && -rc < 200 ? ": " : "",
                 rc < -1 && -rc < 200 ? strerror(-rc) : "");
    return rc;
}

void command_pipeline_config(const struct agent_config *c, struct pipeline_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->device_id = c->device_id;
    pc->detect = c->detect;
    pc->ring_s = c->ring_s;
    pc->pre_s = c->pre_s;
    pc->post_s = c->post_s;
    pc->max_window_s = c->max_window_s;
    pc->merge = c->merge;
    pc->capture_every_s = c->capture_every_s;
    pc->zstd_level = c->zstd_level;
    pc->on_trigger = c->on_trigger;
    pc->alarm_fifo = c->alarm_fifo;
    pc->alarm_socket = c->alarm_socket;
}

static uint64_t sink_next_seq(void *ctx)
{
    return spool_next_seq(ctx);
}

/* A snapshot's spool priority: its score on 0..255 (the cap drops the
 * lowest first, docs/SPOOL.md). */
static uint8_t spool_priority(const struct wire_meta *m)
{
    float s = m->score < 0 ? 0 : m->score > 1 ? 1 : m->score;

    return (uint8_t)(s * 255.0f);
}

/* What a put into the spool came to, said once: a drop by the cap is not
 * an error (the spool counted it as a gap, and its own line says so: a
 * second line here made every drop two). */
static int spool_put_result(uint64_t seq, int rc)
{
    if (rc == SPOOL_EDROPPED)
        return 0;
    if (rc != 0)
        fprintf(stderr, "agent: spool put seq %llu: %s\n", (unsigned long long)seq,
                spool_strerror(rc));
    return rc;
}

static int sink_put(void *ctx, uint64_t seq, const struct wire_meta *m,
                    const uint8_t *env, size_t len)
{
    return spool_put_result(seq, spool_put(ctx, seq, spool_priority(m), env, len));
}

/* The streamed put: the encoder writes the envelope into the spool's
 * temporary file as it makes it (spool_stream_*), so the agent never holds
 * a snapshot's envelope in memory (docs/BENCHMARKS.md, agent memory). */
static int stream_append(void *ctx, const void *p, size_t len)
{
    return spool_stream_append(ctx, p, len);
}

static int stream_patch(void *ctx, uint64_t off, const void *p, size_t len)
{
    return spool_stream_patch(ctx, off, p, len);
}

static int stream_read(void *ctx, uint64_t off, void *p, size_t len)
{
    return spool_stream_read(ctx, off, p, len);
}

static int sink_begin(void *ctx, uint64_t seq, struct wire_file *f)
{
    int rc = spool_stream_begin(ctx, seq);

    if (rc != 0) {
        spool_put_result(seq, rc);      /* never a cap drop: that is decided at commit */
        return rc;
    }
    *f = (struct wire_file){ stream_append, stream_patch, stream_read, ctx };
    return 0;
}

static int sink_commit(void *ctx, uint64_t seq, const struct wire_meta *m, size_t len)
{
    (void)len;                  /* the spool counted what was appended */
    return spool_put_result(seq, spool_stream_commit(ctx, spool_priority(m)));
}

static void sink_abort(void *ctx, uint64_t seq)
{
    (void)seq;
    spool_stream_abort(ctx);
}

struct pipeline_sink command_spool_sink(struct spool *sp)
{
    struct pipeline_sink s = { sink_next_seq, sink_put, sp, sink_begin, sink_commit, sink_abort };
    return s;
}

int command_parts_start(struct command_parts *cp, const struct agent_config *c, int runtime,
                        char *err, size_t errlen)
{
    int rc;

    if (c->manipulated[0]) {
        const char *names[WIRE_MAX_CHANNELS];
        unsigned i;

        for (i = 0; i < cp->src->channels; i++)
            names[i] = cp->src->chan[i].name;
        if (detect_opts_manipulated(&cp->pc.detect, c->manipulated, names, cp->src->channels,
                                    err, errlen) != 0)
            return -1;
    }
    /* "auto" settings take the profile's values at the source's rate here,
     * once: the model's alert count and trigger hold-off and the heartbeat
     * read pc.detect, and -1 s (auto) is no hold-off at all. */
    detect_config_resolve(&cp->pc.detect, cp->src->rate);
    rc = runtime ? agent_model_setup_runtime(c, cp->src, &cp->pc, &cp->ms, err, errlen)
                 : agent_model_setup(c, cp->src, &cp->pc, &cp->ms, err, errlen);
    if (rc != 0)
        return rc;
    return pipeline_init(&cp->pc, cp->src, &cp->p, err, errlen);
}

void command_parts_release(struct command_parts *cp)
{
    pipeline_free(cp->p);
    agent_model_slot_free(cp->ms);
    if (cp->src != NULL)
        cp->src->close(cp->src);
    if (cp->sp != NULL)
        spool_close(cp->sp);
    keys_wipe(&cp->keys);
    cp->p = NULL;
    cp->ms = NULL;
    cp->src = NULL;
    cp->sp = NULL;
}
