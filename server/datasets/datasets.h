/* datasets.h - training sets: window and split policies, and the npz export
 * writer.
 *
 * The pieces here know no HTTP and no PostgreSQL: the policy functions turn
 * labeled snapshots into windows and assign whole groups (device, asset, day,
 * equipment type) to train/validation/test, seeded and reproducible; the
 * export writer turns rows into the bytes of an .npz (a zip of stored .npy
 * files, fixed timestamps, so the same rows give the same bytes) in steps, so a streamed response pulls a chunk at a time and memory
 * does not grow with the dataset.  Formats: docs/DATASETS.md and
 * schema/EXPORT.md.
 *
 * Functions return 0 or a negative DS_E* code. */
#ifndef PRECURSOR_DATASETS_H
#define PRECURSOR_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "schema/featureset.h"

enum ds_error {
    DS_OK = 0,
    DS_EINVAL = -1,         /* a policy or argument out of range */
    DS_ETOOFEW = -2,        /* a class has too few examples for the split asked */
    DS_ENOMEM = -3,
    DS_EARCHIVE = -4,       /* the archive's sink refused its bytes (logged) */
    DS_ESTATE = -5          /* writer used out of order */
};

const char *ds_strerror(int err);

#define DS_MAX_CLASSES 64
#define DS_MAX_NAME 64
#define DS_SPLITS 3                 /* train, validation, test */

enum ds_edge {
    DS_EDGE_MAJORITY = 0,   /* window takes the label covering at least half of it */
    DS_EDGE_STRICT = 1,     /* only windows entirely inside a label */
    DS_EDGE_ANY = 2         /* any overlap labels the window (largest overlap wins) */
};

/* One label interval on one snapshot. */
struct ds_label {
    int64_t snapshot_id;
    double start_s, end_s;      /* from the snapshot's first sample */
    int cls;                    /* 0..DS_MAX_CLASSES-1 */
    int source;                 /* label source index (human, rule, vote, disposition) */
};

/* One snapshot that carries labels. */
struct ds_snapshot {
    int64_t snapshot_id;
    int64_t t0_us;              /* time of its first sample */
    double rate;                /* Hz */
    uint32_t n_samples;         /* per channel */
    uint32_t group;             /* index into the caller's group list */
};

struct ds_window {
    int64_t snapshot_id;
    int64_t start_us;
    uint32_t start;             /* first sample */
    int cls;
    int source;
    uint32_t group;
    int split;                  /* 0 train, 1 validation, 2 test */
};

/* Windows of length_s every stride_s over each snapshot (sorted by id),
 * labeled by labels (any order) under edge; unlabeled windows are dropped.
 * *out is malloc'd (caller frees), ordered by snapshot id then start. */
int ds_windows(const struct ds_snapshot *snaps, size_t n_snaps,
               const struct ds_label *labels, size_t n_labels,
               double length_s, double stride_s, enum ds_edge edge,
               struct ds_window **out, size_t *n_out);

/* Assign whole groups to splits.  order_key[g] sorts groups for a time split
 * (NULL: a seeded keyed hash of group_names[g] orders them instead).  Groups
 * are taken in order into train while that keeps it nearest fractions[0] of
 * the windows (at least one group), then validation, then test.  Then every class present must have at least
 * min_per_split windows in each split whose fraction is > 0, otherwise
 * DS_ETOOFEW with *bad_class and *bad_split set (the windows keep the
 * assignment so the caller can report counts). */
int ds_split(struct ds_window *w, size_t n, const char *const *group_names,
             const int64_t *order_key, uint32_t n_groups, const double fractions[DS_SPLITS],
             uint64_t seed, unsigned min_per_split, int *bad_class, int *bad_split);

/* Balanced class weights n / (k * count_c) for the classes present. */
void ds_class_weights(const size_t *counts, unsigned k, double *weights);

/* ---- npz writer ---------------------------------------------------------- */

/* The writer appends archive bytes to a sink; a streaming response drains
 * the sink between steps. */
typedef int (*ds_sink_fn)(void *ctx, const void *buf, size_t len);

struct ds_npz;

/* Fixed entry time (zip DOS time cannot hold 1970): 2020-01-01T00:00:00Z. */
#define DS_NPZ_MTIME 1577836800

int ds_npz_open(ds_sink_fn sink, void *ctx, struct ds_npz **out);
/* Start one array entry "<name>.npy".  descr is a numpy dtype string
 * ("<f4", "<i8", "|S64"), shape up to 3 dims; the .npy header is written
 * here and the data must follow in exactly prod(shape) * itemsize bytes. */
int ds_npz_begin(struct ds_npz *z, const char *name, const char *descr, size_t itemsize,
                 const uint64_t *shape, unsigned ndim);
int ds_npz_data(struct ds_npz *z, const void *buf, size_t len);
/* A whole non-array entry (manifest.json). */
int ds_npz_file(struct ds_npz *z, const char *name, const void *buf, size_t len);
/* SHA-256 of the last finished entry's bytes (for the manifest). */
int ds_npz_last_sha256(const struct ds_npz *z, uint8_t out[32]);
/* Finish the archive (central directory) and free z.  ds_npz_abort frees
 * without finishing. */
int ds_npz_close(struct ds_npz *z);
void ds_npz_abort(struct ds_npz *z);

/* ---- stored versions (frozen by ds_version.c, read by ds_reader.c) ------- */

/* What a stored version says about itself (dataset_versions.summary). */
struct ds_info {
    int64_t dataset_id;
    int version;
    int64_t n_windows;
    unsigned n_classes;
    char classes[DS_MAX_CLASSES][DS_MAX_NAME + 1];
    int normal_class;               /* index of "normal"; -1 when absent */
    uint32_t n_groups;
    unsigned n_devices;
    unsigned channel_count;
    char channel_names[64][DS_MAX_NAME + 1];
    char channel_units[64][DS_MAX_NAME + 1];
    double sample_rate;
    uint32_t window_samples;        /* T */
    uint16_t feature_set;           /* feature set id for training; 0: "stats" (the export's F) */
    struct featureset_kin feature_kin;  /* the envelope set's shaft speed and bearing */
    int64_t t_min_us, t_max_us;     /* first and last window start */
};

/* One window row of a stored version, in export order. */
struct ds_row {
    int64_t row, snapshot_id, start_us;
    uint32_t start_sample, group;
    int cls, split;
    char source[16];
};

/* Reads a version's windows a page at a time and, when asked, their samples
 * (each snapshot decoded once: windows come ordered by snapshot), so memory
 * is two pages, two batches of envelopes (at most 8 MB each) with their
 * samples decoded (at most 4 MB each) and one decoded snapshot whatever the
 * version's size.  Uses the calling thread's database connection, and a
 * thread of its own with its own connection that fetches and decodes the
 * next batch of envelopes while the caller reads this one. */
struct ds_reader;

/* SRV_ENOTFOUND for an unknown dataset or version, else 0 or SRV_E*. */
int ds_reader_open(int64_t dataset_id, int version, struct ds_reader **out);
const struct ds_info *ds_reader_info(const struct ds_reader *r);
const char *ds_reader_group(const struct ds_reader *r, uint32_t g);  /* "" when out of range */
void ds_reader_rewind(struct ds_reader *r);
/* The next ds_reader_next starts at the first window row >= row. */
void ds_reader_seek(struct ds_reader *r, int64_t row);
/* 1 with *row (and *x: channel_count * window_samples floats, channel-major,
 * valid until the next call) filled; 0 at the end; negative SRV_E* on error.
 * x may be NULL when the samples are not needed. */
int ds_reader_next(struct ds_reader *r, struct ds_row *row, const float **x);
void ds_reader_free(struct ds_reader *r);

/* Stored snapshots by id, in the order given (ids with no snapshot are
 * passed over), each decoded with the version's layout: each(ctx, id, x,
 * samples) with x its channel_count x samples floats (channel-major, valid
 * for the call), for every snapshot of in's channel count and sample rate
 * and at least window_samples long; the others (and envelopes that do not
 * decode) only counted in *skipped (may be NULL).  Memory: one batch of
 * envelopes (8 MB at most) and one decoded snapshot.  A non-zero return of
 * each stops the walk and is returned; else 0 or SRV_E*. */
int ds_snapshots_read(const struct ds_info *in, const int64_t *ids, size_t n,
                      int (*each)(void *ctx, int64_t id, const float *x, size_t samples),
                      void *ctx, size_t *skipped);

/* The unlabeled windows of a version's devices: the windows of their
 * scheduled baseline snapshots (detector "schedule", the agents'
 * --capture-every-s) that the version does not hold, not demo ones,
 * received up to the version's freeze (so a version reads the same ones
 * every time), within DS_UNLABELED_MAX_WINDOWS and DS_UNLABELED_MAX_BYTES of
 * samples: the snapshots spread evenly over the time they were received,
 * each giving as many whole windows (hop = window) as keeps the total
 * within the cap, spread over it.  A relations map's candidates (training
 * and the export fit the same map from them: ds_relations_fit_trimmed).
 * 4,096 windows estimate a correlation of 64 channels well and are 16 times
 * cranfield's 256 commissioning windows; 128 MiB keeps them a quarter of
 * what a relations training may hold of the version's own windows. */
#define DS_UNLABELED_MAX_WINDOWS 4096u
#define DS_UNLABELED_MAX_BYTES ((size_t)128 << 20)
struct ds_unlabeled {
    float *raw;                 /* n x channels x window (channel-major); NULL unless kept */
    float *means;               /* n x channels: each channel's window mean (ds_relations_window_means) */
    size_t n, snapshots, skipped;   /* windows; snapshots read; passed over (another layout) */
};
/* keep_samples: also the windows' samples (raw).  0 or SRV_E* (*u empty). */
int ds_unlabeled_read(const struct ds_info *in, int keep_samples, struct ds_unlabeled *u);
void ds_unlabeled_free(struct ds_unlabeled *u);

/* The snapshots no label reached of a version's devices, for what a
 * classifier of the version thinks of them (the queue's least-certain
 * order, models_train.c): the snapshots of its devices that the version
 * does not hold, not demo ones, with no human label (labeled_at), received
 * up to the version's freeze (so a retrain predicts the same ones), the
 * newest first, at most DS_UNLABELED_SNAPSHOTS_MAX of them and
 * DS_UNLABELED_SNAPSHOTS_MAX_BYTES of decoded samples.  Each of the
 * version's layout (channel count, rate) is cut as the version cut its own
 * (window_samples long, every definition stride from its first sample) and
 * given to each(ctx, id, device_id, x, n): x its n windows (n x channels x
 * window, each channel-major as ds_reader_next gives one; valid for the
 * call).  The others (another layout, shorter than a window, unreadable)
 * are only counted.  2,000 snapshots are a few weeks of a device's hourly
 * baselines; 256 MiB of samples keeps the pass within seconds of feature
 * computation.  A non-zero return of each stops the walk and is returned;
 * else 0 or SRV_E*. */
#define DS_UNLABELED_SNAPSHOTS_MAX 2000u
#define DS_UNLABELED_SNAPSHOTS_MAX_BYTES ((size_t)256 << 20)
struct ds_unlabeled_stats {
    size_t snapshots;           /* given to each */
    size_t skipped;             /* passed over: another layout, too short, unreadable */
    size_t capped;              /* left out by the caps */
};
int ds_unlabeled_snapshots_read(const struct ds_info *in,
                                int (*each)(void *ctx, int64_t id, const char *device_id,
                                            const float *x, size_t n),
                                void *ctx, struct ds_unlabeled_stats *st);

/* Transfer (ds_transfer.c): freeze a version of the windows human-labeled
 * on equipment type `type` with one of classes[n_classes], cut as the
 * target version's definition cuts them, all in one split, in a dataset
 * named "transfer from <type>" whose definition says exactly that (reused
 * when it exists).  *ds_out and *version_out on success; otherwise
 * SRV_EUNPROCESSABLE with *why (malloc'd: nothing matches, mixed layouts)
 * or another SRV_E*. */
int ds_transfer_version(int64_t target_ds, int target_v, const char *type,
                        const char *const *classes, size_t n_classes, const char *created_by,
                        int64_t *ds_out, int *version_out, char **why);

/* ---- model features of a version (ds_features.c) ------------------------ */

struct featureset_spec;
/* The feature set (schema/featureset.h) models of this version are trained
 * on and the export's F array holds: "stats" over non-overlapping windows
 * of the version's length at its sample rate; the spectral sets (a few-shot
 * model's) over the first ds_spectral_window samples of each. */
void ds_feature_spec(const struct ds_info *in, struct featureset_spec *fs);
/* The window a spectral set reads of a window_samples-long one: all of it
 * (zero-padded to a power of two by the set), up to FEATURESET_MAX_WINDOW;
 * below 64 samples the length itself, too short for a spectrum. */
uint32_t ds_spectral_window(uint32_t window_samples);
/* Features per window (channels x per channel); 0 when the version's
 * windows are out of the set's range. */
unsigned ds_feature_count(const struct ds_info *in);
/* One window (x as ds_reader_next gives it) -> ds_feature_count floats. */
int ds_window_features(const struct ds_info *in, const float *x, float *out);
/* The same with the set's working memory from the caller (a loop over
 * windows allocates it once): ds_feature_scratch_floats floats (0: none,
 * scratch may be NULL). */
size_t ds_feature_scratch_floats(const struct ds_info *in);
int ds_window_features_scratch(const struct ds_info *in, const float *x, float *scratch,
                               size_t scratch_floats, float *out);
/* {"set","id","version","window","hop","sample_rate","names":[...]} as a
 * new jansson reference (json_t *). */
void *ds_feature_json(const struct ds_info *in);

/* ---- REST (ds_api.c, ds_jobs.c); handlers return SRV_E* codes ---------- */

struct srv_request;
struct srv_response;
int ds_api_create(struct srv_request *rq, struct srv_response *rs);
/* GET /api/v1/datasets: paged by before= / next as the export jobs are
 * (DS_LIST_DEFAULT, at most DS_LIST_MAX a page), the newest page first; a
 * page's items stay oldest first, as the list was before it was paged. */
#define DS_LIST_DEFAULT 100
#define DS_LIST_MAX 500
int ds_api_list(struct srv_request *rq, struct srv_response *rs);
int ds_api_get(struct srv_request *rq, struct srv_response *rs);
int ds_api_version_create(struct srv_request *rq, struct srv_response *rs);
int ds_api_version_get(struct srv_request *rq, struct srv_response *rs);
int ds_api_export(struct srv_request *rq, struct srv_response *rs);
int ds_api_manifest(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_create(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_get(struct srv_request *rq, struct srv_response *rs);
/* GET /api/v1/export-jobs: newest first, ?dataset_id= narrows, paged by
 * before= / next (DS_JOB_LIST_DEFAULT, at most DS_JOB_LIST_MAX a page). */
#define DS_JOB_LIST_DEFAULT 50
#define DS_JOB_LIST_MAX 500
int ds_api_job_list(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_cancel(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_file(struct srv_request *rq, struct srv_response *rs);

/* Where export jobs write their files (default "var/exports"); copied. */
void ds_set_export_dir(const char *dir);

/* serve is stopping: each running export job ends at its next step, its
 * .part file removed and its row failed with the reason (not left 'running'
 * for ever, holding quota); waits up to wait_ms for them.  The jobs still
 * running then (logged), 0 when none. */
int ds_jobs_stop(unsigned wait_ms);

/* Export files: kept DS_EXPORT_RETENTION_H after their job finished, at most
 * DS_EXPORT_QUOTA_MB in all (ds_retention.c); 0 keeps a default. */
#define DS_EXPORT_RETENTION_H 72
#define DS_EXPORT_QUOTA_MB 10240
void ds_set_export_limits(unsigned retention_hours, unsigned quota_mb);
/* Delete the files of jobs finished longer ago than the retention. */
int ds_exports_sweep(void);
/* DELETE /api/v1/export-jobs/{id}: cancels a job still running, deletes a
 * finished job's file.  The create and file routes with retention and the
 * quota in front of ds_api_job_create and ds_api_job_file. */
int ds_api_job_delete(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_create_bounded(struct srv_request *rq, struct srv_response *rs);
int ds_api_job_file_kept(struct srv_request *rq, struct srv_response *rs);

#endif
