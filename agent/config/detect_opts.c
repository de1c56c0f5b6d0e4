/* detect_opts.c - detector settings by name (config file, command line).
 *
 * Parses strictly: the whole value must be a number in range, so a typo in a
 * config file is an error at start, not a silently different detector. */
#include "agent/config/detect_opts.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_float(const char *v, double lo, double hi, float *out)
{
    char *end;
    double x;

    if (!v || !*v)
        return -2;
    errno = 0;
    x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi)
        return -2;
    *out = (float)x;
    return 0;
}

static int parse_u32(const char *v, unsigned long lo, unsigned long hi, uint32_t *out)
{
    char *end;
    unsigned long x;

    if (!v || *v < '0' || *v > '9')
        return -2;
    errno = 0;
    x = strtoul(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -2;
    *out = (uint32_t)x;
    return 0;
}

static int parse_detectors(const char *v, uint32_t *out)
{
    uint32_t mask = 0;
    const char *p = v;

    if (!v || !*v)
        return -2;
    while (*p) {
        size_t n = strcspn(p, ",");

        if (n == 5 && !strncmp(p, "level", 5))
            mask |= DETECT_LEVEL;
        else if (n == 7 && !strncmp(p, "feature", 7))
            mask |= DETECT_FEATURE;
        else if (n == 5 && !strncmp(p, "model", 5))
            mask |= DETECT_MODEL;
        else if (n == 5 && !strncmp(p, "multi", 5))
            mask |= DETECT_MULTI;
        else if (n == 7 && !strncmp(p, "context", 7))
            mask |= DETECT_CONTEXT;
        else if (n == 5 && !strncmp(p, "range", 5))
            mask |= DETECT_RANGE;
        else if (n == 8 && !strncmp(p, "sequence", 8))
            mask |= DETECT_SEQUENCE;
        else
            return -2;
        p += n;
        if (*p == ',' && *++p == '\0')
            return -2;          /* trailing comma */
    }
    *out = mask;
    return 0;
}

static int parse_profile(const char *v, uint32_t *out)
{
    static const uint32_t all[] = { DETECT_PROFILE_AUTO, DETECT_PROFILE_PROCESS,
                                    DETECT_PROFILE_VIBRATION };
    size_t i;

    for (i = 0; v && i < sizeof(all) / sizeof(all[0]); i++) {
        if (!strcmp(v, detect_profile_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    }
    return -2;
}

/* The numeric keys and their ranges: one table for the parser and for the
 * range an error names (detect_opts_want). */
struct numeric_key {
    const char *key;
    size_t off;
    int is_float;               /* else a whole number (uint32_t) */
    double lo, hi;
};

#define NF(k, lo, hi) { #k, offsetof(struct detect_config, k), 1, lo, hi }
#define NU(k, lo, hi) { #k, offsetof(struct detect_config, k), 0, lo, hi }
static const struct numeric_key numeric[] = {
    NF(threshold, 1e-6, 1.0),
    NF(rearm, 0.0, 1.0),
    NF(hold_off_s, 0.0, 1e6),
    NU(max_per_hour, 0, 100000),
    NF(level_alpha, 1e-9, 0.999),
    NU(window, 4, 65536),
    NF(warmup_s, 0.0, 1e8),
    NU(lik_short, 0, 65536),
    NU(lik_long, 2, 100000000),
    NU(quiet_frames, 0, 100000000),
    NU(novelty_half, 0, 100000000),
};
#define N_NUMERIC (sizeof(numeric) / sizeof(numeric[0]))

const char *detect_opts_want(const char *key, char *buf, size_t len)
{
    static const char *const auto_keys[] = { "hold_off_s", "max_per_hour", "window" };
    const char *or_auto = "";

    if (!key || !buf || len == 0)
        return NULL;
    if (!strcmp(key, "profile"))
        return "auto, process or vibration";
    if (!strcmp(key, "detectors"))
        return "auto, or a comma list of level, feature, model, multi, context, range, sequence";
    for (size_t i = 0; i < sizeof(auto_keys) / sizeof(auto_keys[0]); i++)
        if (!strcmp(key, auto_keys[i]))
            or_auto = ", or auto";
    for (size_t i = 0; i < N_NUMERIC; i++) {
        if (strcmp(key, numeric[i].key) != 0)
            continue;
        snprintf(buf, len, "%s from %g to %g%s", numeric[i].is_float ? "a number"
                                                                      : "a whole number",
                 numeric[i].lo, numeric[i].hi, or_auto);
        return buf;
    }
    return NULL;
}

static int is_auto(const char *v)
{
    return v && !strcmp(v, "auto");
}

int detect_opts_set(struct detect_config *c, const char *key, const char *value)
{
    if (!c || !key)
        return -1;
    /* Keys whose default comes from the rate's profile take "auto" back. */
    if (is_auto(value)) {
        if (!strcmp(key, "hold_off_s")) {
            c->hold_off_s = DETECT_AUTO_F;
            return 0;
        }
        if (!strcmp(key, "max_per_hour")) {
            c->max_per_hour = DETECT_AUTO_U32;
            return 0;
        }
        if (!strcmp(key, "window")) {
            c->window = 0;
            return 0;
        }
    }
    if (!strcmp(key, "profile"))
        return parse_profile(value, &c->profile);
    if (!strcmp(key, "detectors") && is_auto(value)) {
        c->enable = (c->enable & DETECT_MODEL) | DETECT_LEVEL | DETECT_FEATURE | DETECT_MULTI |
                    DETECT_CONTEXT | DETECT_RANGE | DETECT_ENABLE_AUTO;
        return 0;
    }
    for (size_t i = 0; i < N_NUMERIC; i++) {
        const struct numeric_key *k = &numeric[i];
        char *field = (char *)c + k->off;

        if (strcmp(key, k->key) != 0)
            continue;
        if (k->is_float)
            return parse_float(value, k->lo, k->hi, (float *)(void *)field);
        return parse_u32(value, (unsigned long)k->lo, (unsigned long)k->hi,
                         (uint32_t *)(void *)field);
    }
    if (!strcmp(key, "detectors"))
        return parse_detectors(value, &c->enable);
    return -1;
}

int detect_opts_manipulated(struct detect_config *c, const char *list,
                            const char *const *names, unsigned channels,
                            char *err, size_t errlen)
{
    uint64_t mask = 0;
    const char *p = list;

    if (!c || !list) {
        snprintf(err, errlen, "manipulated: no list");
        return -2;
    }
    if (channels < 1 || channels > DETECT_MAX_CHANNELS) {
        snprintf(err, errlen, "manipulated: the stream has %u channels (1..%d)", channels,
                 DETECT_MAX_CHANNELS);
        return -2;
    }
    while (*p) {
        size_t n, i, end;
        unsigned ch = channels;

        /* "a, b" in a config line: blanks around an entry are not its name */
        while (*p == ' ' || *p == '\t')
            p++;
        end = n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0) {
            snprintf(err, errlen, "manipulated: empty entry in '%.200s'", list);
            return -2;
        }
        for (i = 0; names && i < channels; i++) {
            if (names[i] && strlen(names[i]) == n && !strncmp(names[i], p, n)) {
                ch = (unsigned)i;
                break;
            }
        }
        if (ch == channels) {
            unsigned long x = 0;
            size_t k;

            for (k = 0; k < n && p[k] >= '0' && p[k] <= '9' && x < 100000; k++)
                x = x * 10 + (unsigned long)(p[k] - '0');
            if (k != n) {
                snprintf(err, errlen, "manipulated: no channel named '%.*s'%s", (int)(n < 80 ? n : 80),
                         p, names ? "" : " (channels are given by 0-based index here)");
                return -2;
            }
            if (x >= channels) {
                snprintf(err, errlen, "manipulated: channel index %lu beyond the stream's %u "
                         "channels (0-based)", x, channels);
                return -2;
            }
            ch = (unsigned)x;
        }
        if ((mask >> ch) & 1u) {
            snprintf(err, errlen, "manipulated: channel '%.*s' given twice", (int)(n < 80 ? n : 80),
                     p);
            return -2;
        }
        mask |= (uint64_t)1 << ch;
        p += end;
        if (*p == ',' && *++p == '\0') {
            snprintf(err, errlen, "manipulated: trailing comma in '%.200s'", list);
            return -2;
        }
    }
    if (channels < 64 ? mask == ((uint64_t)1 << channels) - 1 : mask == ~(uint64_t)0) {
        snprintf(err, errlen, "manipulated: every channel declared, none left to watch");
        return -2;
    }
    c->manipulated = mask;
    return 0;
}

/* One line of the help: key=default, aligned, then what it does. */
static void help_row(FILE *f, const char *key, const char *def, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void help_row(FILE *f, const char *key, const char *def, const char *fmt, ...)
{
    char left[48];
    va_list ap;

    snprintf(left, sizeof left, "%s=%s", key, def);
    fprintf(f, "  %-18s ", left);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

void detect_opts_help(FILE *f)
{
    struct detect_config d, proc, vib;
    char v[32];

    detect_config_defaults(&d);
    proc = vib = d;
    detect_config_resolve(&proc, 1.0);
    detect_config_resolve(&vib, 10000.0);
    help_row(f, "profile", detect_profile_name(d.profile),
             "auto|process|vibration; auto: by the stream's rate, process below %g Hz, "
             "vibration from it", DETECT_PROCESS_MAX_HZ);
    snprintf(v, sizeof v, "%g", (double)d.threshold);
    help_row(f, "threshold", v, "trigger when the trigger score (0..1) reaches this and the "
             "surprise is significant");
    snprintf(v, sizeof v, "%g", (double)d.rearm);
    help_row(f, "rearm", v, "re-arm the trigger when the trigger score falls below this "
             "(at most threshold)");
    help_row(f, "hold_off_s", "auto", "no new trigger this many seconds after one "
             "(process %g, vibration %g)", (double)proc.hold_off_s, (double)vib.hold_off_s);
    help_row(f, "max_per_hour", "auto", "triggers per sliding hour, then suppressed, 0 = no cap "
             "(process %u, vibration %u)", (unsigned)proc.max_per_hour,
             (unsigned)vib.max_per_hour);
    snprintf(v, sizeof v, "%g", (double)d.level_alpha);
    help_row(f, "level_alpha", v, "EWMA weight of the level/variance baseline per sample");
    help_row(f, "window", "auto", "samples in the short-window feature detector "
             "(process %u, vibration %u)", (unsigned)proc.window, (unsigned)vib.window);
    snprintf(v, sizeof v, "%g", (double)d.warmup_s);
    help_row(f, "warmup_s", v, "no trigger during the first seconds of data (nor in the first 32 "
             "frames, whatever this says)");
    snprintf(v, sizeof v, "%u", (unsigned)d.lik_short);
    help_row(f, "lik_short", v, "frames in the likelihood stage's short mean (0 = stage off: "
             "the novelty stage acts)");
    snprintf(v, sizeof v, "%u", (unsigned)d.lik_long);
    help_row(f, "lik_long", v, "frames in its long-term mean and variance of the raw score");
    snprintf(v, sizeof v, "%u", (unsigned)d.quiet_frames);
    help_row(f, "quiet_frames", v, "frames the trigger score is held at 0 after reaching the "
             "threshold");
    snprintf(v, sizeof v, "%u", (unsigned)d.novelty_half);
    help_row(f, "novelty_half", v, "half-life in frames of the recent peak a new surprise must "
             "beat (0 = off, and the repeat memory with it)");
    help_row(f, "detectors", "auto", "comma list of level, feature, model, multi, context, range, "
             "sequence (auto: process level,multi,context,range; vibration level,feature,multi; "
             "multi scores with 2+ correlated channels; context, range and sequence add to the "
             "exported score only; sequence is not in any profile; model is the core's hook, which the "
             "agent leaves empty: --model runs whatever this says)");
}
