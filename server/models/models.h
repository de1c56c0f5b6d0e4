/* models.h - models the server trains from dataset versions, and the key it
 * signs them with.
 *
 * POST /api/v1/models queues a training job that runs in a background thread
 * (schema/model.c does the maths); GET returns its status, grouped
 * cross-validation metrics and the test vector; the blob is signed with the
 * server's Ed25519 model key (--model-key-file, else one generated under
 * var/ on first use) whose public half GET /api/v1/models/signing-key gives
 * to agents.  Handlers return SRV_E* codes. */
#ifndef PRECURSOR_MODELS_H
#define PRECURSOR_MODELS_H

#include <stdint.h>
#include <stdio.h>

struct srv_request;
struct srv_response;

int models_api_create(struct srv_request *rq, struct srv_response *rs);
int models_api_get(struct srv_request *rq, struct srv_response *rs);
int models_api_header(struct srv_request *rq, struct srv_response *rs);
int models_api_blob(struct srv_request *rq, struct srv_response *rs);
int models_api_signing_key(struct srv_request *rq, struct srv_response *rs);

/* Take --model-key-file FILE out of argv (serve); returns the new argc, or
 * -1 with a message on a missing value. */
int models_opts_take(int argc, char **argv);
void models_opts_help(FILE *f);

/* Key file to use (copied); NULL: var/model-signing.key, made when absent.
 * The file holds the 64-byte libsodium secret key (seed || public key). */
void models_set_key_file(const char *path);

/* The signing key pair, loaded or generated once.  0 or SRV_E*. */
int models_signing_key(uint8_t sk[64], uint8_t pk[32]);

/* Train model id now, in the calling thread (the worker and the tests). */
int models_train(int64_t id);

#endif
