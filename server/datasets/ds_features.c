/* ds_features.c - a version's windows as model feature vectors: the one
 * place the server chooses the feature set for a dataset version, used by
 * the export's F array and by model training (server/models), so what the
 * ML team downloads is what a model of the version is trained on and what
 * the agent computes (schema/featureset.h). */
#include "server/datasets/datasets.h"

#include <jansson.h>
#include <stdlib.h>

#include "schema/featureset.h"

uint32_t ds_spectral_window(uint32_t window_samples)
{
    return window_samples < FEATURESET_MAX_WINDOW ? window_samples : FEATURESET_MAX_WINDOW;
}

void ds_feature_spec(const struct ds_info *in, struct featureset_spec *fs)
{
    /* Non-overlapping windows of the version's length: the device scores
     * one window every `window` samples, as the version cut them.  The
     * spectral sets zero-pad a window that is not a power of two to the
     * next one (schema/spectral.h), so they read all of it, up to their
     * 65536 samples (ds_spectral_window). */
    fs->kin = (struct featureset_kin)FEATURESET_NO_KIN;
    if (in->feature_set == FEATURESET_SPECTRAL) {
        /* asked for by a training run (a few-shot model on vibration) */
        fs->id = FEATURESET_SPECTRAL;
        fs->version = FEATURESET_SPECTRAL_VERSION;
    } else if (in->feature_set == FEATURESET_ENVELOPE) {
        /* the same where the taxonomy knows how the machine turns */
        fs->id = FEATURESET_ENVELOPE;
        fs->version = FEATURESET_ENVELOPE_VERSION;
        fs->kin = in->feature_kin;
    } else {
        fs->id = FEATURESET_STATS;
        fs->version = FEATURESET_STATS_VERSION;
    }
    fs->window = fs->id == FEATURESET_STATS ? in->window_samples
                                             : ds_spectral_window(in->window_samples);
    fs->hop = fs->window;
    fs->sample_rate = (float)in->sample_rate;
}

unsigned ds_feature_count(const struct ds_info *in)
{
    struct featureset_spec fs;

    ds_feature_spec(in, &fs);
    if (featureset_unsupported(&fs, in->channel_count))
        return 0;
    return in->channel_count * featureset_per_channel(fs.id, fs.version);
}

size_t ds_feature_scratch_floats(const struct ds_info *in)
{
    struct featureset_spec fs;

    ds_feature_spec(in, &fs);
    return featureset_scratch_floats(&fs);
}

int ds_window_features_scratch(const struct ds_info *in, const float *x, float *scratch,
                               size_t scratch_floats, float *out)
{
    struct featureset_spec fs;

    ds_feature_spec(in, &fs);
    return featureset_compute(&fs, x, in->window_samples, in->channel_count, scratch,
                              scratch_floats, out) == FEATURESET_OK ? DS_OK : DS_EINVAL;
}

int ds_window_features(const struct ds_info *in, const float *x, float *out)
{
    size_t ns = ds_feature_scratch_floats(in);
    float *scratch = ns ? malloc(ns * sizeof *scratch) : NULL;
    int rc;

    if (ns && !scratch)
        return DS_ENOMEM;
    rc = ds_window_features_scratch(in, x, scratch, ns, out);
    free(scratch);
    return rc;
}

void *ds_feature_json(const struct ds_info *in)
{
    struct featureset_spec fs;
    json_t *names = json_array(), *j;
    unsigned per;

    ds_feature_spec(in, &fs);
    per = featureset_per_channel(fs.id, fs.version);
    for (unsigned c = 0; names && c < in->channel_count; c++)
        for (unsigned k = 0; k < per; k++)
            json_array_append_new(names, json_sprintf("%s.%s", in->channel_names[c],
                                                      featureset_feature_name(fs.id, fs.version, k)));
    j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:f,s:o}", "set", featureset_name(fs.id), "id", fs.id,
                  "version", fs.version, "window", (int)fs.window, "hop", (int)fs.hop,
                  "sample_rate", (double)fs.sample_rate, "names", names);
    return j;
}
