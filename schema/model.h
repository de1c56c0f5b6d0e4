/* model.h - the on-device model: blob format v1 and scoring.
 *
 * The server trains a model from feature vectors (server/models/), signs it
 * with its own Ed25519 model-signing key (model_encode) and exports the same
 * parameters as a self-contained C99 header.  The agent loads the blob with
 * model_load, which checks bounds, the signature against the key the agent
 * is configured to trust, and the channel layout the model was trained for.
 * Scoring (model_score) is one implementation here and its statement-for-
 * statement copy in the generated header; a unit test compiles the header
 * and checks the two agree bit for bit.
 *
 * The byte layout is in schema/MODEL.md.  Every function returns 0 on success
 * or a negative MODEL_E* code; out parameters are written only on success.
 * Nothing here knows HTTP, PostgreSQL or files. */
#ifndef PRECURSOR_MODEL_H
#define PRECURSOR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "schema/featureset.h"

#define MODEL_MAGIC "PRMD"
/* 2: the blob records the feature set it was trained on (v1 blobs did not,
 * and were scored on features other than their training's: refused). */
#define MODEL_VERSION_MAJOR 2
/* 2.1: kind 3 (few-shot nearest prototype); a 2.0 reader refuses it by kind.
 * 2.2: feature set 3 (envelope), whose kinematics precede the parameters.
 * 2.3: n_selected (a few-shot model reads a selection of the vector).
 * 2.4: feature set 4 (relations), whose map precedes the parameters.
 * 2.5: flag MODEL_FLAG_DEVICE (a few-shot blob made for one device, its
 *      reference as the center), whose device section precedes the
 *      parameters; a 2.4 reader refuses it by its flags. */
#define MODEL_VERSION_MINOR 5

#define MODEL_FIXED_LEN 120         /* bytes before the parameters */
#define MODEL_SIG_LEN 64
#define MODEL_PK_LEN 32
#define MODEL_SK_LEN 64
#define MODEL_LAYOUT_LEN 32         /* SHA-256 of the channel layout */

#define MODEL_MAX_CHANNELS 64
#define MODEL_MAX_FEATURES 512      /* 64 channels x 7 detector features fit */
#define MODEL_MAX_CLASSES 32
#define MODEL_MAX_PARAMS (2u * MODEL_MAX_FEATURES + MODEL_MAX_CLASSES * MODEL_MAX_FEATURES)
#define MODEL_KIN_LEN 20            /* feature set 3 only: its kinematics, before the parameters */
/* feature set 4 only: u32 rank, then mean[C], scale[C], basis[C][rank]
 * (floats, C = channel_count, rank < C), before the parameters */
#define MODEL_REL_MAX_FLOATS (RELATIONS_MAX_CH * (RELATIONS_MAX_CH + 1u))
#define MODEL_REL_MAX_LEN (4u + 4u * MODEL_REL_MAX_FLOATS)
/* Flag bit 0: the blob is one device's (fewshot only): its center is the
 * median of that device's reference windows, and a device section (the
 * SHA-256 of the device id, then u32 reference windows >= 1) follows the
 * set's section.  A reader refuses the blob unless it is that device. */
#define MODEL_FLAG_DEVICE 0x0001u
#define MODEL_DEVICE_LEN 36         /* SHA-256 of the device id, u32 reference windows */
#define MODEL_DEVICE_DIGEST_LEN 32
/* the kinematics and the map never come together (one set per blob) */
#define MODEL_MAX_BLOB (MODEL_FIXED_LEN + MODEL_REL_MAX_LEN + MODEL_DEVICE_LEN + \
                        4u * MODEL_MAX_PARAMS + MODEL_SIG_LEN)
#define MODEL_NO_CLASS 0xFFFFu
#define MODEL_MAX_PROTOS 64         /* prototypes of a few-shot model, all classes */

enum model_kind {
    MODEL_ANOMALY = 1,          /* diagonal Gaussian (Mahalanobis), normal data only */
    MODEL_CENTROID = 2,         /* nearest centroid on standardised features */
    MODEL_FEWSHOT = 3           /* nearest prototype, several per class, learned metric */
};

enum model_error {
    MODEL_OK = 0,
    MODEL_ETRUNCATED = -1,      /* shorter than its own lengths say */
    MODEL_EMAGIC = -2,          /* not a model blob */
    MODEL_EVERSION = -3,        /* unknown major version */
    MODEL_EFIELD = -4,          /* a field out of its documented range */
    MODEL_ETOOBIG = -5,         /* a length beyond a limit */
    MODEL_ESIGNATURE = -6,      /* signature does not verify, or not by the trusted key */
    MODEL_ELAYOUT = -7,         /* trained for another channel layout */
    MODEL_ETOOFEW = -8,         /* training: too few examples (of a class) */
    MODEL_EINVAL = -9,          /* bad argument */
    MODEL_ENOMEM = -10,
    MODEL_EFEATURES = -11,      /* a feature set this reader cannot compute */
    MODEL_EDEVICE = -12         /* made for another device (MODEL_FLAG_DEVICE) */
};

/* A model in memory.  params is laid out by kind:
 *   anomaly:  mean[n], inv_std[n], scale          (2n + 1)
 *   centroid: mean[n], inv_std[n], centroid[k][n] (2n + k*n)
 *   fewshot:  center[n], scale[n], proto[P][n], proto_class[P] (2n + P*(n+1));
 *             P is not in the header: it follows from param_count */
struct model {
    uint8_t kind;
    uint8_t channel_count;
    uint16_t n_features;
    uint16_t n_classes;             /* anomaly: 1 */
    uint16_t normal_class;          /* classifiers: class scoring 0; MODEL_NO_CLASS if none */
    uint16_t n_protos;              /* fewshot: P (set by model_parse, or by the trainer) */
    uint16_t n_selected;            /* fewshot: features it reads, S < n_features; 0 = all */
    uint16_t flags;                 /* MODEL_FLAG_DEVICE or 0 */
    uint32_t ref_windows;           /* MODEL_FLAG_DEVICE: the device's reference windows (>= 1) */
    uint8_t device[MODEL_DEVICE_DIGEST_LEN];   /* MODEL_FLAG_DEVICE: SHA-256 of its device id */
    uint32_t version;               /* the server's model id */
    int64_t created_us;
    uint8_t layout[MODEL_LAYOUT_LEN];
    uint8_t signer_pk[MODEL_PK_LEN];/* filled by model_encode and model_parse */
    float threshold;                /* score from which the server calls it an alarm */
    struct featureset_spec features;/* what the vector is computed from (its rel
                                     * stays NULL here: model_feature_spec) */
    uint32_t rel_rank;              /* set "relations": its map's rank, else 0 */
    float rel[MODEL_REL_MAX_FLOATS];/* and mean[C], scale[C], basis[C][rank] */
    uint32_t param_count;
    float params[MODEL_MAX_PARAMS];
};

/* Parameter count a kind needs; 0 when out of range.  fewshot: n_classes
 * is read as the prototype count P. */
uint32_t model_param_count(uint8_t kind, uint16_t n_features, uint16_t n_classes);

/* fewshot with n_selected features of n_features (0: all) and P
 * prototypes: S + 2S + P(S + 1) with the selection, 2n + P(n + 1) without;
 * 0 when out of range. */
uint32_t model_fewshot_param_count(uint16_t n_features, uint16_t n_selected, uint16_t n_protos);

/* Where a fewshot model's parameters are: the S features it reads (sel:
 * their indices into the vector as floats holding integers, NULL when it
 * reads all n_features in order), then center[S], scale[S], proto[P][S],
 * proto_class[P]. */
struct model_fewshot_view {
    uint32_t n_sel;
    const float *sel, *center, *scale, *proto, *proto_class;
};
void model_fewshot_view(const struct model *m, struct model_fewshot_view *v);

/* SHA-256 over count, then each channel's name and unit (NUL-terminated).
 * names/units are arrays of count strings of at most 64 bytes. */
int model_layout_digest(const char *const *names, const char *const *units, unsigned count,
                        uint8_t out[MODEL_LAYOUT_LEN]);

/* The range checks every blob passes (model_encode and model_parse apply
 * them): kind, counts, finite parameters, positive deviations and scale. */
int model_check(const struct model *m);

/* Score in [0, 1] of one vector of n features (0 when n does not match).
 * anomaly: d2 / (d2 + scale), d2 the mean squared standardised distance.
 * centroid: 1 - P(normal) under a softmax of -d2/2 (max P without a normal class).
 * fewshot: the same over each class's nearest prototype. */
float model_score(const struct model *m, const float *x, uint32_t n);
/* anomaly: the mean squared standardised distance d2 of x (n_features
 * floats) that model_score maps to d2 / (d2 + scale). */
float model_anomaly_d2(const struct model *m, const float *x);
/* centroid, fewshot: the nearest class (probs[k] filled when not NULL); anomaly: 0. */
int model_classify(const struct model *m, const float *x, uint32_t n, float *probs);

/* Serialise and sign with sk (libsodium layout, seed || pk); *out is
 * malloc'd, the caller frees it.  Sets m->signer_pk from sk first. */
int model_encode(struct model *m, const uint8_t sk[MODEL_SK_LEN], uint8_t **out, size_t *out_len);
/* Bounds-check and read a blob without verifying its signature. */
int model_parse(const uint8_t *buf, size_t len, struct model *out);
/* Pure Ed25519 over every byte before the last 64, by pk. */
int model_verify(const uint8_t *buf, size_t len, const uint8_t pk[MODEL_PK_LEN]);
/* What the agent calls: parse, verify by trusted_pk, and when layout is not
 * NULL refuse a model for another channel layout (MODEL_ELAYOUT).  A blob
 * made for one device (MODEL_FLAG_DEVICE) is refused (MODEL_EDEVICE): a
 * reader that does not say which device it is cannot take it. */
int model_load(const uint8_t *buf, size_t len, const uint8_t trusted_pk[MODEL_PK_LEN],
               const uint8_t *layout, struct model *out);
/* model_load for the device whose id digest (model_device_digest) is
 * device: a blob made for another device is refused (MODEL_EDEVICE); a blob
 * for no device in particular is taken as model_load takes it.  device NULL:
 * model_load. */
int model_load_device(const uint8_t *buf, size_t len, const uint8_t trusted_pk[MODEL_PK_LEN],
                      const uint8_t *layout, const uint8_t *device, struct model *out);
/* SHA-256 of a device id's bytes (1..64 of them), as a device section
 * carries it. */
int model_device_digest(const char *device_id, uint8_t out[MODEL_DEVICE_DIGEST_LEN]);
/* Bytes of the device section a blob of m carries (0 unless MODEL_FLAG_DEVICE). */
uint32_t model_device_len(const struct model *m);

/* Bytes of the map section a blob of m carries (0 unless set "relations"). */
uint32_t model_relations_len(const struct model *m);

/* The spec to compute m's vector with: m->features, and for "relations"
 * rel pointing at *map, a view of m's map (m and map must outlive it). */
void model_feature_spec(const struct model *m, struct relations_map *map,
                        struct featureset_spec *out);

/* featureset_scratch_floats of model_feature_spec's spec. */
size_t model_scratch_floats(const struct model *m);

/* A deterministic test input (n_features floats) derived from the parameters. */
void model_test_input(const struct model *m, float *x);

const char *model_strerror(int err);
const char *model_errcode(int err);
const char *model_kind_name(uint8_t kind);      /* "anomaly", "classifier", "fewshot", "?" */

/* NULL when this build computes m's feature set (with its map) for m's
 * channels and n_features matches it, else why not (featureset_unsupported's reasons). */
const char *model_features_unsupported(const struct model *m);

#endif
