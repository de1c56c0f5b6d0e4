/* check_config_poll.c - the agent side of model deployment without a
 * network: the config answer's bounds, the signed-GET headers (verified
 * with the device key over the documented message), and the run-time model
 * slot a poll installs into: nothing trusted before a key is pinned, a
 * pinned key never replaced, a blob signed by another key refused with the
 * running model kept, and the previous model kept for roll-back.  And
 * against a tiny scripted server (libmicrohttpd, in this process): a server
 * that forgot the device is answered as the uploader answers it, through the
 * one struct upload_forgotten they share. */
#include <check.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config/config.h"
#include "agent/fleet/config_poll.h"
#include "agent/model/agent_model.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
#include "agent/upload/upload.h"
#include "schema/model.h"
#include "testmodel.h"

static const char sha_ok[] = "6bdff797edf3ee8c03508d174da4ab460cfe7da26448242879ea2d41265dd492";

START_TEST(parse_bounds)
{
    struct config_poll_answer a;
    char buf[512];

    snprintf(buf, sizeof buf, "{\"model\":{\"id\":3,\"sha256\":\"%s\",\"bytes\":400},"
             "\"model_signing_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", sha_ok);
    ck_assert_int_eq(config_poll_parse(buf, strlen(buf), &a), 0);
    ck_assert(a.has_model && a.model_id == 3 && a.bytes == 400 && a.has_key);
    ck_assert_int_eq(config_poll_parse("{\"model\":null}", 14, &a), 0);
    ck_assert(!a.has_model && !a.has_key);
    /* Out of bounds: size over the blob limit, short hash, id 0, bad key. */
    snprintf(buf, sizeof buf, "{\"model\":{\"id\":3,\"sha256\":\"%s\",\"bytes\":%d}}", sha_ok, MODEL_MAX_BLOB + 1);
    ck_assert_int_eq(config_poll_parse(buf, strlen(buf), &a), CONFIG_POLL_EANSWER);
    snprintf(buf, sizeof buf, "{\"model\":{\"id\":3,\"sha256\":\"abc\",\"bytes\":4}}");
    ck_assert_int_eq(config_poll_parse(buf, strlen(buf), &a), CONFIG_POLL_EANSWER);
    snprintf(buf, sizeof buf, "{\"model\":{\"id\":0,\"sha256\":\"%s\",\"bytes\":4}}", sha_ok);
    ck_assert_int_eq(config_poll_parse(buf, strlen(buf), &a), CONFIG_POLL_EANSWER);
    snprintf(buf, sizeof buf, "{\"model\":null,\"model_signing_key\":\"AAAA\"}");
    ck_assert_int_eq(config_poll_parse(buf, strlen(buf), &a), CONFIG_POLL_EANSWER);
    ck_assert_int_eq(config_poll_parse("[1]", 3, &a), CONFIG_POLL_EANSWER);
    ck_assert_int_eq(config_poll_parse("{\"model\":5}", 11, &a), CONFIG_POLL_EANSWER);
}
END_TEST

START_TEST(signed_headers_verify)
{
    uint8_t pk[32], sk[64], sig[64];
    char d[200], t[200], s[200];
    const char *msg = "precursor-get-v1\n/api/v1/devices/d1/config\n1700000000";
    size_t bin = 0;

    ck_assert_int_ge(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
    ck_assert_int_eq(config_poll_sign(sk, "d1", "/api/v1/devices/d1/config", 1700000000, d, t, s, sizeof d), 0);
    ck_assert_str_eq(d, "X-Precursor-Device: d1");
    ck_assert_str_eq(t, "X-Precursor-Timestamp: 1700000000");
    ck_assert_int_eq(sodium_base642bin(sig, sizeof sig, s + strlen("X-Precursor-Signature: "),
                                       strlen(s) - strlen("X-Precursor-Signature: "), NULL, &bin, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    ck_assert_uint_eq(bin, 64);
    ck_assert_int_eq(crypto_sign_verify_detached(sig, (const uint8_t *)msg, strlen(msg), pk), 0);
    ck_assert_int_eq(config_poll_sign(sk, "d1", "/x", 1, d, t, s, 10), CONFIG_POLL_EINVAL);
}
END_TEST

START_TEST(runtime_slot_pins_and_refuses)
{
    struct source src;
    struct agent_config c;
    struct pipeline_config pc;
    struct agent_model_slot *s = NULL;
    uint8_t pk[32], sk[64], epk[32], esk[64], *b1, *b2, *evil;
    size_t l1, l2, le;
    char err[256];

    ck_assert_int_ge(sodium_init(), 0);
    memset(&src, 0, sizeof src);
    src.channels = 2;
    src.rate = 1000;
    strcpy(src.chan[0].name, "x");
    strcpy(src.chan[1].name, "y");
    strcpy(src.chan[0].unit, "g");
    strcpy(src.chan[1].unit, "g");
    memset(&c, 0, sizeof c);
    memset(&pc, 0, sizeof pc);
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(epk, esk);
    b1 = testmodel_blob(&src, 0.0f, 1, sk, &l1);
    b2 = testmodel_blob(&src, 1.0f, 2, sk, &l2);
    evil = testmodel_blob(&src, 5.0f, 3, esk, &le);

    ck_assert_int_eq(agent_model_setup_runtime(&c, &src, &pc, &s, err, sizeof err), 0);
    ck_assert_ptr_nonnull(pc.model.step);
    /* No model yet: the hook scores 0 and never alarms.  No key yet:
     * nothing is trusted. */
    {
        float x[2] = { 0 }, sc = 1.0f;

        ck_assert_int_eq(pc.model.step(pc.model.ctx, x, &sc), 0);
        ck_assert(sc == 0.0f);
    }
    ck_assert(!agent_model_slot_has_key(s));
    ck_assert_int_eq(agent_model_slot_load(s, b1, l1), MODEL_ESIGNATURE);
    ck_assert_int_eq(agent_model_slot_set_key(s, pk), 0);
    ck_assert_int_eq(agent_model_slot_set_key(s, epk), MODEL_ESIGNATURE);   /* pinned stays */
    ck_assert_int_eq(agent_model_slot_load(s, b1, l1), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    ck_assert(agent_model_slot_healthy(s));
    ck_assert_int_eq(agent_model_slot_load(s, evil, le), MODEL_ESIGNATURE);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    ck_assert_int_eq(agent_model_slot_load(s, b2, l2), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 2);
    ck_assert_uint_eq(agent_model_slot_previous(s), 1);
    ck_assert_int_eq(agent_model_slot_rollback(s), 0);
    ck_assert_uint_eq(agent_model_slot_version(s), 1);
    agent_model_slot_free(s);
    free(b1);
    free(b2);
    free(evil);
}
END_TEST

/* ---- a server that forgets the device ---- */

static const char forgot_body[] =
    "{\"error\":{\"code\":\"unknown_device\",\"message\":\"device is not registered\"}}";

/* The server knows the device once `known` is set (by a registration). */
static struct {
    atomic_int known;
    atomic_int config_gets, other;
    atomic_int rereg_calls;
    struct MHD_Daemon *d;
    char url[64];
    char dir[512];
} fs;

static enum MHD_Result forget_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *data,
                                      size_t *data_size, void **ctx)
{
    static const char ok[] = "{\"device_id\":\"d1\",\"model\":null}";
    struct MHD_Response *r;
    enum MHD_Result ret;
    int known = atomic_load(&fs.known);

    (void)cls; (void)method; (void)version; (void)data; (void)data_size; (void)ctx;
    if (strcmp(url, "/api/v1/devices/d1/config") == 0)
        atomic_fetch_add(&fs.config_gets, 1);
    else
        atomic_fetch_add(&fs.other, 1);
    r = known ? MHD_create_response_from_buffer(strlen(ok), (void *)ok, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(strlen(forgot_body), (void *)forgot_body,
                                                MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, known ? 200 : 403, r);
    MHD_destroy_response(r);
    return ret;
}

static int rereg_ok(void *ctx, const atomic_bool *abort, char *err, size_t errlen)
{
    (void)ctx; (void)abort; (void)err; (void)errlen;
    atomic_fetch_add(&fs.rereg_calls, 1);
    atomic_store(&fs.known, 1);
    return 0;
}

static void forget_setup(void)
{
    const char *t = getenv("TMPDIR");
    const union MHD_DaemonInfo *di;

    memset(&fs, 0, sizeof fs);
    snprintf(fs.dir, sizeof fs.dir, "%s/config-poll-test-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(fs.dir));
    fs.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            forget_handler, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(fs.d);
    di = MHD_get_daemon_info(fs.d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(fs.url, sizeof fs.url, "http://127.0.0.1:%u", di->port);
    ck_assert_int_ge(sodium_init(), 0);
}

static void forget_teardown(void)
{
    char cmd[600];

    if (fs.d)
        MHD_stop_daemon(fs.d);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fs.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* A model slot for a two-channel source, as the agent sets it up. */
static struct agent_model_slot *new_slot(void)
{
    struct source src;
    struct agent_config c;
    struct pipeline_config pc;
    struct agent_model_slot *s = NULL;
    char err[256];

    memset(&src, 0, sizeof src);
    src.channels = 2;
    src.rate = 1000;
    strcpy(src.chan[0].name, "x");
    strcpy(src.chan[1].name, "y");
    memset(&c, 0, sizeof c);
    memset(&pc, 0, sizeof pc);
    ck_assert_int_eq(agent_model_setup_runtime(&c, &src, &pc, &s, err, sizeof err), 0);
    return s;
}

static struct config_poll *new_poll(struct agent_model_slot *slot, struct upload_forgotten *f)
{
    struct config_poll_config cfg = { .server_url = fs.url, .device_id = "d1",
                                      .key_dir = fs.dir, .interval_s = 1, .forgotten = f };
    struct config_poll *p = NULL;
    uint8_t pk[32];

    crypto_sign_keypair(pk, cfg.secret_key);
    ck_assert_int_eq(config_poll_new(&cfg, slot, &p), 0);
    return p;
}

/* An agent with nothing to upload and heartbeats far apart learns from its
 * config poll that the server forgot it: the poll registers it again through
 * the uploader's path (counted where heartbeats read it) and asks once more,
 * and the poll succeeds. */
START_TEST(poll_unknown_device_registers_again)
{
    struct upload_counters counters;
    struct upload_forgotten_config fc = { .server_url = fs.url, .device_id = "d1",
                                          .key_dir = fs.dir, .reregister = rereg_ok,
                                          .counters = &counters, .rng_seed = 7 };
    struct upload_forgotten *f = NULL;
    struct agent_model_slot *slot = new_slot();
    struct config_poll *p;

    memset(&counters, 0, sizeof counters);
    ck_assert_int_eq(upload_forgotten_new(&fc, &f), 0);
    p = new_poll(slot, f);
    ck_assert_int_eq(config_poll_once(p), 0);
    ck_assert_int_eq(atomic_load(&fs.rereg_calls), 1);
    ck_assert_int_eq(atomic_load(&fs.config_gets), 2);
    ck_assert_int_eq(atomic_load(&fs.other), 0);
    ck_assert_uint_eq(atomic_load(&counters.reregistrations), 1);
    ck_assert_uint_eq(upload_forgotten_generation(f), 1);
    /* Known now: the next poll is one GET, no registration. */
    ck_assert_int_eq(config_poll_once(p), 0);
    ck_assert_int_eq(atomic_load(&fs.rereg_calls), 1);
    ck_assert_int_eq(atomic_load(&fs.config_gets), 3);
    config_poll_free(p);
    upload_forgotten_free(f);
    agent_model_slot_free(slot);
}
END_TEST

/* Without a shared memory (NULL) the poll only reports the answer, as
 * before; and without a secret it logs the hint once, shared with the
 * uploader's answers: one line, not one per caller. */
START_TEST(poll_without_secret_one_hint_shared)
{
    struct upload_forgotten_config fc = { .server_url = fs.url, .device_id = "d1",
                                          .key_dir = "/var/lib/precursor/keys" };
    struct upload_forgotten *f = NULL;
    struct agent_model_slot *slot = new_slot();
    struct config_poll *p, *bare;
    char log[600], line[1024];
    int saved = dup(2), fd, hints = 0, registering = 0;
    FILE *lf;

    ck_assert_int_eq(upload_forgotten_new(&fc, &f), 0);
    p = new_poll(slot, f);
    bare = new_poll(slot, NULL);
    snprintf(log, sizeof log, "%s/stderr.log", fs.dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    ck_assert_int_eq(config_poll_once(bare), CONFIG_POLL_ENET);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(config_poll_once(p), CONFIG_POLL_ENET);
        /* The uploader's answers between the polls. */
        ck_assert_int_eq(upload_forgotten_answer(f, 403, forgot_body,
                                                 upload_forgotten_generation(f), NULL, "upload",
                                                 "uploading what waits"), 0);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(atomic_load(&fs.config_gets), 4);     /* no second GET: nothing changed */
    lf = fopen(log, "r");
    ck_assert_ptr_nonnull(lf);
    while (fgets(line, sizeof line, lf) != NULL) {
        registering += strstr(line, "registering again") != NULL;
        if (strstr(line, "does not know device d1 and the agent has no --enroll-secret-file")) {
            hints++;
            ck_assert_msg(strncmp(line, "agent: config poll: server http://127.0.0.1:", 44) == 0 &&
                          strstr(line, "--device-id d1 --key-dir /var/lib/precursor/keys "
                                       "--token-file PATH"), "hint '%s'", line);
        }
    }
    fclose(lf);
    ck_assert_int_eq(hints, 1);
    ck_assert_int_eq(registering, 0);
    config_poll_free(p);
    config_poll_free(bare);
    upload_forgotten_free(f);
    agent_model_slot_free(slot);
}
END_TEST

Suite *config_poll_suite(void);
Suite *config_poll_suite(void)
{
    Suite *s = suite_create("config_poll");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, parse_bounds);
    tcase_add_test(tc, signed_headers_verify);
    tcase_add_test(tc, runtime_slot_pins_and_refuses);
    suite_add_tcase(s, tc);
    tc = tcase_create("forgotten");
    tcase_add_checked_fixture(tc, forget_setup, forget_teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, poll_unknown_device_registers_again);
    tcase_add_test(tc, poll_without_secret_one_hint_shared);
    suite_add_tcase(s, tc);
    return s;
}
