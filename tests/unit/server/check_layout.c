/* check_layout.c - the server's layering, as the code states it: folders of
 * server/ are modules whose #include lines may point one way only (no two
 * folders include each other, no cycle), the http layer knows no module but
 * the core vocabulary (srv), tls and metrics, and only the top (main.c,
 * routes.c, options.c beside them) may name every module.  Also: no
 * function in server/, agent/ or schema/ runs over 150 lines.  Reads the
 * sources, so it fails the moment a change bends a rule. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/srv/srv.h"

#define MAX_MODS 64
#define FUNC_MAX_LINES 150

static char root[1024];                     /* the repository */
static char mods[MAX_MODS][32];             /* mods[0] is the top */
static int nmods;
static unsigned char edge[MAX_MODS][MAX_MODS];
static char edge_file[MAX_MODS][MAX_MODS][96]; /* one file behind each edge */

static int mod_index(const char *name)
{
    int i;

    for (i = 0; i < nmods; i++)
        if (strcmp(mods[i], name) == 0)
            return i;
    ck_assert_int_lt(nmods, MAX_MODS);
    snprintf(mods[nmods], sizeof mods[nmods], "%s", name);
    return nmods++;
}

/* The module a path under server/ belongs to: its first folder, or the top. */
static int module_of(const char *rel)
{
    char name[32];
    const char *slash = strchr(rel, '/');

    if (!slash)
        return 0;
    snprintf(name, sizeof name, "%.*s", (int)(slash - rel), rel);
    return mod_index(name);
}

static int is_source(const char *name)
{
    size_t n = strlen(name);

    return (n > 2 && (strcmp(name + n - 2, ".c") == 0 || strcmp(name + n - 2, ".h") == 0)) ||
           (n > 4 && strcmp(name + n - 4, ".def") == 0);
}

/* Call fn for every source file under root/dir (rel: the path below root). */
static void walk(const char *dir, void (*fn)(const char *path, const char *rel))
{
    char path[PATH_MAX + 8];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof path, "%s/%s", root, dir);
    d = opendir(path);
    ck_assert_msg(d != NULL, "cannot open %s", path);
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX / 2], full[PATH_MAX];
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk(sub, fn);
        else if (is_source(e->d_name))
            fn(full, sub);
    }
    closedir(d);
}

static void add_includes(const char *path, const char *rel)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int from = module_of(rel + strlen("server/"));

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f)) {
        char target[256];
        int to;

        if (sscanf(line, " # include \"server/%255[^\"]\"", target) != 1)
            continue;
        to = module_of(target);
        if (to == from)
            continue;
        if (!edge[from][to])
            snprintf(edge_file[from][to], sizeof edge_file[from][to], "%s", rel);
        edge[from][to] = 1;
    }
    fclose(f);
}

static void load_graph(void)
{
    char dir[PATH_MAX], *slash;

    /* srv_find_dir gives the folder itself: the repository is its parent. */
    ck_assert_int_eq(srv_find_dir(NULL, "server", "main.c", dir, sizeof dir), 0);
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(root, sizeof root, "%.1000s", slash ? dir : ".");
    memset(edge, 0, sizeof edge);
    nmods = 0;
    mod_index("(top)");
    walk("server", add_includes);
    ck_assert_int_gt(nmods, 10);
}

START_TEST(test_no_mutual_includes)
{
    int a, b;

    load_graph();
    for (a = 0; a < nmods; a++)
        for (b = a + 1; b < nmods; b++)
            ck_assert_msg(!(edge[a][b] && edge[b][a]),
                          "server/%s and server/%s include each other (%s, %s)", mods[a],
                          mods[b], edge_file[a][b], edge_file[b][a]);
}
END_TEST

/* Depth-first search; a node met again while on the stack closes a cycle. */
static int cycle_from(int n, int *state, int *stack, int depth, char *why, size_t cap)
{
    int m, k;

    state[n] = 1;
    stack[depth] = n;
    for (m = 0; m < nmods; m++) {
        if (!edge[n][m])
            continue;
        if (state[m] == 1) {
            size_t used = 0;

            for (k = 0; k <= depth; k++)
                if (stack[k] == m || used)
                    used += (size_t)snprintf(why + used, used < cap ? cap - used : 0, "%s -> ",
                                             mods[stack[k]]);
            snprintf(why + (used < cap ? used : cap - 1), used < cap ? cap - used : 1, "%s",
                     mods[m]);
            return 1;
        }
        if (state[m] == 0 && cycle_from(m, state, stack, depth + 1, why, cap))
            return 1;
    }
    state[n] = 2;
    return 0;
}

START_TEST(test_no_cycles)
{
    int state[MAX_MODS] = { 0 }, stack[MAX_MODS], n;
    char why[1024] = "";

    load_graph();
    for (n = 0; n < nmods; n++)
        ck_assert_msg(state[n] != 0 || !cycle_from(n, state, stack, 0, why, sizeof why),
                      "include cycle: %s", why);
}
END_TEST

START_TEST(test_http_knows_http_only)
{
    static const char *const allowed[] = { "srv", "tls", "metrics" };
    int http, m;
    size_t k;

    load_graph();
    http = mod_index("http");
    for (m = 0; m < nmods; m++) {
        int ok = 0;

        if (!edge[http][m])
            continue;
        for (k = 0; k < sizeof allowed / sizeof allowed[0]; k++)
            ok |= strcmp(mods[m], allowed[k]) == 0;
        ck_assert_msg(ok, "server/http includes server/%s (%s)", mods[m], edge_file[http][m]);
    }
}
END_TEST

START_TEST(test_only_the_top_knows_everything)
{
    int m;

    load_graph();
    for (m = 1; m < nmods; m++)
        ck_assert_msg(!edge[m][0], "server/%s includes a top file (%s)", mods[m], edge_file[m][0]);
    /* The top does name the modules: a sign the graph was read at all. */
    ck_assert(edge[0][mod_index("http")]);
    ck_assert(edge[0][mod_index("ingest")]);
}
END_TEST

/* Functions: a line starting with '{' opens one, the next line starting
 * with '}' closes it (the house style puts both at column 0, and nothing
 * else there). */
static char long_funcs[2048];

static void check_lengths(const char *path, const char *rel)
{
    FILE *f = fopen(path, "r");
    char line[2048], name[128] = "", sig[2048] = "";
    int lineno = 0, start = 0;
    size_t used = strlen(long_funcs);

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '{' && !start) {
            start = lineno;
            snprintf(name, sizeof name, "%.*s", (int)strcspn(sig, "(\n"), sig);
        } else if (line[0] == '}' && start) {
            if (lineno - start + 1 > FUNC_MAX_LINES && used < sizeof long_funcs)
                used += (size_t)snprintf(long_funcs + used, sizeof long_funcs - used,
                                         "%s:%d %s (%d lines); ", rel, start, name,
                                         lineno - start + 1);
            start = 0;
        }
        /* A definition's first line starts at column 0 with its type. */
        if ((line[0] >= 'a' && line[0] <= 'z') || (line[0] >= 'A' && line[0] <= 'Z') ||
            line[0] == '_')
            snprintf(sig, sizeof sig, "%s", line);
    }
    fclose(f);
}

START_TEST(test_functions_short)
{
    load_graph();
    long_funcs[0] = '\0';
    walk("server", check_lengths);
    walk("agent", check_lengths);
    walk("schema", check_lengths);
    ck_assert_msg(long_funcs[0] == '\0', "functions over %d lines: %s", FUNC_MAX_LINES,
                  long_funcs);
}
END_TEST

Suite *layout_suite(void);
Suite *layout_suite(void)
{
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("sources");

    tcase_add_test(tc, test_no_mutual_includes);
    tcase_add_test(tc, test_no_cycles);
    tcase_add_test(tc, test_http_knows_http_only);
    tcase_add_test(tc, test_only_the_top_knows_everything);
    tcase_add_test(tc, test_functions_short);
    suite_add_tcase(s, tc);
    return s;
}
