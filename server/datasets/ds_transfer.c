/* ds_transfer.c - the windows a few-shot training borrows from a related
 * equipment type, frozen as a version of a dataset of their own.
 *
 * Transfer reads windows the way every other consumer does: from a frozen
 * version, so that what a model learned from can be listed, exported and
 * reproduced later (the model's metrics name the dataset and version).  The
 * definition is the target version's window, human labels only, the
 * related type and the classes asked for, one split holding everything; a
 * dataset with exactly that definition is reused, and each training freezes
 * a new version of it from the labels as they are. */
#include "server/datasets/ds_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

/* The normalised definition of the transfer dataset, or NULL and *why. */
static json_t *transfer_definition(int64_t target_ds, int target_v, const char *type,
                                   const char *const *classes, size_t n_classes, const char **why)
{
    PGresult *r = NULL;
    json_t *tdef, *body, *cls = json_array(), *def;
    size_t i;

    *why = "the target version is unreadable";
    if (!cls || ds__version_row(target_ds, target_v, &r) != SRV_OK) {
        json_decref(cls);
        return NULL;
    }
    tdef = json_loads(db_text_or(r, 0, "definition", ""), 0, NULL);
    PQclear(r);
    for (i = 0; i < n_classes; i++)
        json_array_append_new(cls, json_string(classes[i]));
    body = json_pack("{s:s+,s:{s:[s],s:o,s:[s]},s:O,s:{s:s,s:[i,i,i],s:i}}",
                     "name", "transfer from ", type,
                     "filter", "sources", "human", "classes", cls, "equipment_types", type,
                     "window", json_object_get(tdef, "window"),
                     "split", "by", "device", "fractions", 1, 0, 0, "seed", 0);
    json_decref(tdef);
    if (!body)
        return NULL;
    def = ds__definition(body, why);
    json_decref(body);
    return def;
}

int ds_transfer_version(int64_t target_ds, int target_v, const char *type,
                        const char *const *classes, size_t n_classes, const char *created_by,
                        int64_t *ds_out, int *version_out, char **why)
{
    const char *vals[3], *dwhy = NULL;
    char *defs = NULL;
    json_t *def;
    PGresult *r = NULL;
    int64_t id = 0;
    int err;

    *why = NULL;
    if (!type || n_classes == 0 ||
        !(def = transfer_definition(target_ds, target_v, type, classes, n_classes, &dwhy))) {
        *why = strdup(dwhy ? dwhy : "no classes to transfer");
        return SRV_EUNPROCESSABLE;
    }
    if (!(defs = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS))) {
        json_decref(def);
        return SRV_ENOMEM;
    }
    vals[0] = defs;
    if ((err = ds__exec(DS_SQL_FIND_DEF, vals, 0, &r)) == SRV_OK && PQntuples(r) == 1)
        id = db_int64(r, 0, "id");
    PQclear(r);
    r = NULL;
    if (err == SRV_OK && id == 0) {
        vals[0] = json_string_value(json_object_get(def, "name"));
        vals[1] = defs;
        vals[2] = created_by;
        if ((err = ds__exec(DS_SQL_CREATE, vals, 0, &r)) == SRV_OK)
            id = db_int64(r, 0, "id");
        PQclear(r);
    }
    free(defs);
    json_decref(def);
    if (err != SRV_OK)
        return err;
    if ((err = ds__version_create(id, created_by, version_out, why)) == SRV_OK)
        *ds_out = id;
    return err;
}
