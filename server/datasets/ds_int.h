/* ds_int.h - what the datasets module's files share: the SQL statements it
 * owns (listed once, in ds_sql.c), the label sources, definitions, version
 * creation and the export stream used by the GET route and by export jobs
 * alike. */
#ifndef PRECURSOR_DS_INT_H
#define PRECURSOR_DS_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/datasets/datasets.h"

enum ds_stmt {
    DS_SQL_CREATE,          /* name, definition, created_by -> id */
    DS_SQL_TIME_CHECK,      /* text -> the timestamptz PostgreSQL reads in it (or an error) */
    DS_SQL_LIST,            /* limit, before id or NULL -> id, name, definition, created_at, versions */
    DS_SQL_GET,             /* id -> id, name, definition, created_at */
    DS_SQL_VERSIONS,        /* id -> version, sha, n_windows, created_at */
    DS_SQL_GATHER,          /* the label-gathering query (ds__gather) */
    DS_SQL_VERSION_INSERT,  /* one statement: version + labels + windows */
    DS_SQL_VERSION_GET,     /* id, v -> sha hex, n_windows, summary, manifest, definition */
    DS_SQL_WINDOWS_PAGE,    /* id, v, from row, limit -> rows */
    DS_SQL_MANIFEST_SET,    /* id, v, manifest */
    DS_SQL_JOB_INSERT,      /* id, v, format, rows_total, by -> job id */
    DS_SQL_JOB_GET,         /* job -> row */
    DS_SQL_JOB_LIST,        /* dataset or NULL, before id or NULL, limit -> rows, newest first */
    DS_SQL_JOB_PROGRESS,    /* job, rows_done, bytes -> status */
    DS_SQL_JOB_FINISH,      /* job, status, bytes, sha hex, error */
    DS_SQL_JOB_CANCEL,      /* job -> status after */
    DS_SQL_FIND_DEF,        /* definition -> id of the oldest dataset with exactly it */
    DS_SQL_SCHEDULED,       /* id, v -> snapshot_id of its scheduled baselines, ascending */
    DS_SQL_UNLABELED,       /* id, v, cap -> id: its devices' scheduled baselines outside it */
    DS_SQL_UNLABELED_SNAPSHOTS, /* id, v, cap -> id, device_id, stride_s: no label reached them */
    DS_SQL_COUNT
};

/* Export jobs run again after ds_jobs_stop (the tests, which stop and go on). */
void ds__jobs_resume(void);

/* Run one of the statements above (db_exec_own on its table entry). */
int ds__exec(enum ds_stmt s, const char *const *vals, int binary, PGresult **out);
/* The DS_SQL_VERSION_GET row of one version: SRV_ENOTFOUND when there is
 * none; on success *out is the one-row result the caller clears. */
int ds__version_row(int64_t dataset_id, int version, PGresult **out);

/* Where a label comes from, in the order the hash and the summary name
 * them: "human", "rule", "vote", "disposition". */
#define DS_N_SOURCES 4
extern const char *const ds__sources[DS_N_SOURCES];
int ds__source_index(const char *s);            /* -1 when unknown */

/* Freeze a new version of dataset_id from the current labels.  *version on
 * success.  SRV_ENOTFOUND, SRV_EUNPROCESSABLE (message in *why, malloc'd:
 * too few examples for the split, names the class; nothing matches; mixed
 * layouts), or another SRV_E*. */
int ds__version_create(int64_t dataset_id, const char *created_by, int *version, char **why);

/* Parse and normalise a dataset definition body; NULL and *why on error.
 * Keys the server does not know are left out; ds__definition_fields lists
 * the ones it knows, nested ones dotted, for srv_json_ignored to name the
 * rest ("filter.equipment_type"). */
extern const char *const ds__definition_fields[];
json_t *ds__definition(const json_t *body, const char **why);

enum ds_format { DS_FMT_NPZ, DS_FMT_JSONL, DS_FMT_CSV };
int ds__format_parse(const char *s, enum ds_format *out);
const char *ds__format_ctype(enum ds_format f);
const char *ds__format_ext(enum ds_format f);

/* An export in steps: each ds__export_step appends the next piece of the
 * file to an internal buffer that ds__export_take drains. */
struct ds_export;
int ds__export_open(int64_t dataset_id, int version, enum ds_format f, struct ds_export **out);
/* The same with F computed by feature set `features` ("relations": the
 * relation features through a map of normal operation fitted on the
 * version's windows it assumes normal, exactly as a relations model of the
 * version fits it, the map in the manifest; NULL: the version's own set).
 * npz only.  SRV_EUNPROCESSABLE with *why when the version cannot give
 * them (channels, too few normal windows), SRV_EBADREQ for another name. */
int ds__export_open_features(int64_t dataset_id, int version, enum ds_format f,
                             const char *features, struct ds_export **out, const char **why);
/* Next piece: 1 produced bytes, 0 finished, negative SRV_E* on error. */
int ds__export_step(struct ds_export *e);
/* Bytes produced and not yet taken (pointer valid until the next step). */
const char *ds__export_pending(struct ds_export *e, size_t *len);
void ds__export_consume(struct ds_export *e, size_t n);
/* The next bytes into buf (at most max, max > 0): what is pending, else
 * what the next steps produce, written there directly.  > 0 bytes, 0 at
 * the end, negative SRV_E* on error. */
ssize_t ds__export_read(struct ds_export *e, char *buf, size_t max);
/* Windows handled so far / in total (over all passes). */
void ds__export_progress(const struct ds_export *e, int64_t *done, int64_t *total);
/* The manifest once an npz export finished (NUL-terminated; borrowed). */
const char *ds__export_manifest(const struct ds_export *e);
void ds__export_free(struct ds_export *e);

/* Shared by the route handlers (ds_api.c, ds_jobs.c): the {id} and {v}
 * path parameters, answering 404 with a message when malformed.  (Who is
 * asking, as stored in created_by columns, is auth_actor's.) */
struct srv_request;
struct srv_response;
int ds__param_id(const struct srv_request *rq, int64_t *out, struct srv_response *rs);
/* Where export job id's finished file lives (ds_jobs.c), for retention. */
void ds__job_file(int64_t id, enum ds_format fmt, char *out, size_t cap);
int ds__param_version(const struct srv_request *rq, int64_t *id, int *version,
                      struct srv_response *rs);

/* Memory an export and its reader keep beyond one page of rows and one
 * batch of envelopes, in bytes: the F values the X pass computes (the rest
 * are computed again in F's pass), the window rows it keeps for the small
 * arrays (all of them or none), and the samples the reader's prefetch
 * thread decodes ahead (the rest of a batch the caller decodes).  Tests
 * shrink them to walk the paths past them; nothing else writes them. */
struct ds_mem_limits {
    size_t f_cache, row_cache, decoded;
};
#define DS_MEM_LIMITS_DEFAULT { 4u << 20, 2u << 20, 4u << 20 }
extern struct ds_mem_limits ds__mem_limits;

/* The zip container of the npz export (ds_zip.c): stored entries whose
 * size is given up front and whose CRC-32 the caller gives at the end,
 * written front to back into a sink, zip64 records where a value does not
 * fit.  DS_EARCHIVE when the sink refuses (the writer then only frees),
 * DS_ESTATE out of order, DS_EINVAL past a bound. */
#define DS_ZIP_MAX_NAME 255
#define DS_ZIP_MAX_ENTRIES 4096
struct ds_zip;
/* mtime: every entry's (Unix time, 0 .. 2^32 - 1). */
int ds__zip_open(ds_sink_fn sink, void *ctx, int64_t mtime, struct ds_zip **out);
int ds__zip_begin(struct ds_zip *z, const char *name, uint64_t size);
int ds__zip_data(struct ds_zip *z, const void *buf, size_t len);
/* After exactly size bytes: crc is the CRC-32 of them (ds__zip_crc32). */
int ds__zip_end(struct ds_zip *z, uint32_t crc);
/* The central directory and end records; frees z whatever happens.
 * ds__zip_abort frees without writing. */
int ds__zip_close(struct ds_zip *z);
void ds__zip_abort(struct ds_zip *z);
/* The zip's CRC-32 (zlib's convention: start from 0, chain the result). */
uint32_t ds__zip_crc32(uint32_t crc, const void *buf, size_t len);
/* Values from which the zip64 fields are used: an entry's size, an offset
 * (or the central directory's size), the number of entries.  Tests shrink
 * them to walk the zip64 records with small archives; a writer keeps the
 * values it was opened with. */
struct ds_zip_limits {
    uint64_t size, offset;
    uint64_t entries;
};
#define DS_ZIP_LIMITS_DEFAULT { 0xffffffffu, 0xffffffffu, 0xffffu }
extern struct ds_zip_limits ds__zip_limits;

/* Nonzero: npz writers opened from now on hash (SHA-256, CRC-32) inline, as
 * when their hashing thread cannot be started.  Tests set it to walk that
 * path; nothing else writes it. */
extern int ds__npz_inline_hash;

/* The version's manifest.json, computing it (a full npz pass into a hash)
 * and caching it the first time.  *out malloc'd. */
int ds__manifest(int64_t dataset_id, int version, char **out, size_t *len);

#endif
