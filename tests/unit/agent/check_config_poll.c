/* check_config_poll.c - the agent side of model deployment without a
 * network: the config answer's bounds, the signed-GET headers (verified
 * with the device key over the documented message), and the run-time model
 * slot a poll installs into: nothing trusted before a key is pinned, a
 * pinned key never replaced, a blob signed by another key refused with the
 * running model kept, and the previous model kept for roll-back. */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config/config.h"
#include "agent/fleet/config_poll.h"
#include "agent/model/agent_model.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
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

Suite *config_poll_suite(void);
Suite *config_poll_suite(void)
{
    Suite *s = suite_create("config_poll");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, parse_bounds);
    tcase_add_test(tc, signed_headers_verify);
    tcase_add_test(tc, runtime_slot_pins_and_refuses);
    suite_add_tcase(s, tc);
    return s;
}
