/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danausctl pool|mount|status: one manager call each, printed as a table or
 * as the reply's JSON.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "danausctl.h"
#include "util/config.h"

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

static bool get_int(json_object *o, const char *key, int64_t *vp)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)) {
                *vp = json_object_get_int64(v);
                return true;
        }
        return false;
}

static json_object *get_array(json_object *o, const char *key)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array))
                return v;
        return NULL;
}

/* "containers/c1 (rw), images/base (ro)" */
static void format_branches(json_object *mount, char *buf, size_t n)
{
        json_object *br = get_array(mount, "branches");
        size_t off = 0;

        buf[0] = '\0';
        for (size_t i = 0; br && i < json_object_array_length(br) && off < n; i++) {
                json_object *b = json_object_array_get_idx(br, i);
                const char *p = get_str(b, "path"), *m = get_str(b, "mode");
                int w = snprintf(buf + off, n - off, "%s%s (%s)", i ? ", " : "",
                                 p ? (*p ? p : ".") : "?", m ? m : "?");

                if (w < 0)
                        break;
                off += (size_t)w;
        }
}

static void format_memory(json_object *pool, char *buf, size_t n)
{
        int64_t cur, max;
        char a[32] = "", b[32] = "";
        bool has_cur = get_int(pool, "memory_current", &cur),
             has_max = get_int(pool, "memory_max", &max);

        if (has_cur)
                ctl_format_size(cur, a, sizeof(a));
        if (has_max)
                ctl_format_size(max, b, sizeof(b));
        if (has_cur && has_max)
                snprintf(buf, n, "%s/%s", a, b);
        else if (has_max)
                snprintf(buf, n, "-/%s", b);
        else if (has_cur)
                snprintf(buf, n, "%s/-", a);
        else
                snprintf(buf, n, "-");
}

static void print_pool_table(json_object *pools)
{
        static const char *const headers[] = {"NAME",   "STATE", "BACKEND", "CPUS",
                                              "MEMORY", "PID",   "MOUNTS"};
        CtlTable *t = ctl_table_new(7, headers);

        for (size_t i = 0; pools && i < json_object_array_length(pools); i++) {
                json_object *p = json_object_array_get_idx(pools, i), *m = get_array(p, "mounts");
                char mem[80], pid[24] = "-", n_mounts[24];
                int64_t v;

                format_memory(p, mem, sizeof(mem));
                if (get_int(p, "pid", &v))
                        snprintf(pid, sizeof(pid), "%" PRId64, v);
                snprintf(n_mounts, sizeof(n_mounts), "%zu", m ? json_object_array_length(m) : 0);
                const char *cells[] = {get_str(p, "name"),
                                       get_str(p, "state"),
                                       get_str(p, "backend"),
                                       get_str(p, "cpus"),
                                       mem,
                                       pid,
                                       n_mounts};
                ctl_table_add(t, cells);
        }
        ctl_table_print(t);
}

static void print_pool(json_object *p)
{
        json_object *mounts = get_array(p, "mounts"), *cg = get_array(p, "cgroups");
        char mem[80], branches[4096];
        const char *s;
        int64_t v;

        format_memory(p, mem, sizeof(mem));
        printf("name:      %s\n", get_str(p, "name") ? get_str(p, "name") : "?");
        printf("state:     %s\n", get_str(p, "state") ? get_str(p, "state") : "?");
        printf("backend:   %s\n", get_str(p, "backend") ? get_str(p, "backend") : "?");
        if (get_int(p, "pid", &v))
                printf("pid:       %" PRId64 "\n", v);
        s = get_str(p, "cpus_effective");
        printf("cpus:      %s%s%s%s\n", get_str(p, "cpus") ? get_str(p, "cpus") : "-",
               s ? " (effective " : "", s ? s : "", s ? ")" : "");
        printf("memory:    %s (in use/limit)\n", mem);
        if ((s = get_str(p, "slice")))
                printf("slice:     %s\n", s);
        for (size_t i = 0; cg && i < json_object_array_length(cg); i++)
                printf("cgroup:    %s\n", json_object_get_string(json_object_array_get_idx(cg, i)));
        if (get_int(p, "restarts", &v))
                printf("restarts:  %" PRId64 "\n", v);
        printf("mounts:    %zu\n", mounts ? json_object_array_length(mounts) : 0);
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
                json_object *m = json_object_array_get_idx(mounts, i);

                format_branches(m, branches, sizeof(branches));
                printf("  %s: %s\n", get_str(m, "mountpoint") ? get_str(m, "mountpoint") : "?",
                       branches);
        }
}

/* Prints a reply holding "pool" (or the reply itself with --json). */
static int print_pool_reply(const Ctl *ctl, json_object *reply)
{
        json_object *p = NULL;

        if (ctl->json)
                ctl_print_json(reply);
        else if (json_object_object_get_ex(reply, "pool", &p))
                print_pool(p);
        json_object_put(reply);
        return CTL_EXIT_OK;
}

static int call_and_print(const Ctl *ctl, const char *method, json_object *params)
{
        json_object *reply = NULL;
        int r = ctl_call(ctl, method, params, &reply);

        json_object_put(params);
        if (r != CTL_EXIT_OK)
                return r;
        return print_pool_reply(ctl, reply);
}

/* Options shared by pool create and mount add. */
enum {
        OPT_FILE = 'f',
        OPT_CPUS = 'c',
        OPT_MEMORY = 'm',
        OPT_BACKEND = 'b',
        OPT_MOUNT = 'M',
        OPT_FORCE = 'F'
};

static const struct option sub_options[] = {
    {"file", required_argument, NULL, OPT_FILE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"force", no_argument, NULL, OPT_FORCE},
    {},
};

typedef struct SubArgs {
        const char *file, *cpus, *memory, *backend;
        const char *mounts[64];
        size_t n_mounts;
        bool force;
        char *pos[4]; /* positional arguments after the command word */
        size_t n_pos;
} SubArgs;

/* Parses argv[1..] (argv[0] is the command word); allowed: the option
 * letters accepted. */
static int parse_sub(int argc, char **argv, const char *cmd, const char *allowed, SubArgs *a)
{
        int c;

        *a = (SubArgs){};
        optind = 0; /* glibc: start over, GNU permutation on */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:", sub_options, NULL)) >= 0 || optind < argc) {
                if (c < 0) { /* a positional argument: keep it, go on */
                        if (a->n_pos == sizeof(a->pos) / sizeof(a->pos[0]))
                                return ctl_usage_error("%s: too many arguments", cmd);
                        a->pos[a->n_pos++] = argv[optind++];
                        continue;
                }
                if (c == '?' || c == ':' || !strchr(allowed, c))
                        return ctl_usage_error("%s: unknown or incomplete option \"%s\"", cmd,
                                               argv[optind - 1]);
                switch (c) {
                case OPT_FILE:
                        a->file = optarg;
                        break;
                case OPT_CPUS:
                        a->cpus = optarg;
                        break;
                case OPT_MEMORY:
                        a->memory = optarg;
                        break;
                case OPT_BACKEND:
                        a->backend = optarg;
                        break;
                case OPT_MOUNT:
                        if (a->n_mounts == sizeof(a->mounts) / sizeof(a->mounts[0]))
                                return ctl_usage_error("%s: too many --mount", cmd);
                        a->mounts[a->n_mounts++] = optarg;
                        break;
                case OPT_FORCE:
                        a->force = true;
                        break;
                }
        }
        return CTL_EXIT_OK;
}

/* The definition from flags; checked locally like a file. */
static int definition_from_flags(const SubArgs *a, json_object **defp)
{
        json_object *def = json_object_new_object(), *res = json_object_new_object(),
                    *be = json_object_new_object(), *mounts = json_object_new_array();
        const char *colon;
        char err[512];

        if (!a->backend || !(colon = strchr(a->backend, ':')) ||
            strncmp(a->backend, "local:", 6) != 0 || !colon[1]) {
                json_object_put(def);
                json_object_put(res);
                json_object_put(be);
                json_object_put(mounts);
                return ctl_usage_error("pool create NAME: --backend local:ROOT is needed (a "
                                       "cephfs pool is created with --file)");
        }
        json_object_object_add(def, "pool", json_object_new_string(a->pos[0]));
        if (a->cpus)
                json_object_object_add(res, "cpus", json_object_new_string(a->cpus));
        if (a->memory)
                json_object_object_add(res, "memory_max", json_object_new_string(a->memory));
        json_object_object_add(def, "resources", res);
        json_object_object_add(be, "type", json_object_new_string("local"));
        json_object_object_add(be, "root", json_object_new_string(colon + 1));
        json_object_object_add(def, "backend", be);
        for (size_t i = 0; i < a->n_mounts; i++) {
                json_object *m = ctl_mount_from_spec(a->mounts[i], err, sizeof(err));

                if (!m) {
                        json_object_put(def);
                        json_object_put(mounts);
                        return ctl_usage_error("%s", err);
                }
                json_object_array_add(mounts, m);
        }
        json_object_object_add(def, "mounts", mounts);
        *defp = def;
        return CTL_EXIT_OK;
}

static int pool_create(const Ctl *ctl, int argc, char **argv)
{
        json_object *def = NULL, *params;
        PoolConfig *cfg = NULL;
        char err[1024] = "";
        SubArgs a;
        int r;

        r = parse_sub(argc, argv, "pool create", "fcmbM", &a);
        if (r != CTL_EXIT_OK)
                return r;
        if (a.file) {
                if (a.n_pos || a.cpus || a.memory || a.backend || a.n_mounts)
                        return ctl_usage_error("pool create: --file takes no other arguments");
                def = ctl_read_json_file(a.file, err, sizeof(err));
                if (!def)
                        return ctl_fail("%s: %s", a.file, err);
        } else {
                if (a.n_pos != 1)
                        return ctl_usage_error("pool create: --file FILE or a pool NAME");
                r = definition_from_flags(&a, &def);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        /* The manager checks again; this gives the error with the file's name. */
        r = pool_config_parse(json_object_to_json_string(def), &cfg, err, sizeof(err));
        pool_config_free(cfg);
        if (r < 0) {
                json_object_put(def);
                return ctl_fail("%s: %s", a.file ? a.file : "pool", err);
        }
        params = json_object_new_object();
        json_object_object_add(params, "definition", def);
        return call_and_print(ctl, "CreatePool", params);
}

static json_object *name_params(const char *name)
{
        json_object *p = json_object_new_object();

        json_object_object_add(p, "name", json_object_new_string(name));
        return p;
}

static int pool_list(const Ctl *ctl, int argc, char **argv)
{
        json_object *reply = NULL;
        int r;

        if (argc != 1)
                return ctl_usage_error("pool list takes no arguments");
        r = ctl_call(ctl, "ListPools", NULL, &reply);
        if (r != CTL_EXIT_OK)
                return r;
        if (ctl->json)
                ctl_print_json(reply);
        else
                print_pool_table(get_array(reply, "pools"));
        json_object_put(reply);
        return CTL_EXIT_OK;
}

static int pool_update(const Ctl *ctl, int argc, char **argv)
{
        json_object *params;
        SubArgs a;
        int r;

        r = parse_sub(argc, argv, "pool update", "cm", &a);
        if (r != CTL_EXIT_OK)
                return r;
        if (a.n_pos != 1)
                return ctl_usage_error("pool update NAME [--cpus LIST] [--memory SIZE]");
        if (!a.cpus && !a.memory)
                return ctl_usage_error("pool update: nothing to change (--cpus, --memory)");
        params = name_params(a.pos[0]);
        if (a.cpus)
                json_object_object_add(params, "cpus", json_object_new_string(a.cpus));
        if (a.memory)
                json_object_object_add(params, "memory_max", json_object_new_string(a.memory));
        return call_and_print(ctl, "UpdatePool", params);
}

int ctl_pool(const Ctl *ctl, int argc, char **argv)
{
        const char *sub = argc > 1 ? argv[1] : "";

        if (strcmp(sub, "create") == 0)
                return pool_create(ctl, argc - 1, argv + 1);
        if (strcmp(sub, "list") == 0)
                return pool_list(ctl, argc - 1, argv + 1);
        if (strcmp(sub, "update") == 0)
                return pool_update(ctl, argc - 1, argv + 1);
        if (strcmp(sub, "show") == 0 || strcmp(sub, "destroy") == 0) {
                bool show = sub[0] == 's';
                json_object *reply = NULL;
                int r;

                if (argc != 3)
                        return ctl_usage_error("pool %s NAME", sub);
                if (show)
                        return call_and_print(ctl, "GetPool", name_params(argv[2]));
                json_object *params = name_params(argv[2]);
                r = ctl_call(ctl, "DestroyPool", params, &reply);
                json_object_put(params);
                if (r != CTL_EXIT_OK)
                        return r;
                if (ctl->json)
                        ctl_print_json(reply);
                json_object_put(reply);
                return CTL_EXIT_OK;
        }
        return ctl_usage_error("pool: expected create, list, show, update or destroy");
}

int ctl_mount(const Ctl *ctl, int argc, char **argv)
{
        const char *sub = argc > 1 ? argv[1] : "";
        json_object *params, *m = NULL;
        PoolMount *pm = NULL;
        char err[1024] = "";
        SubArgs a;
        int r;

        if (strcmp(sub, "add") == 0) {
                r = parse_sub(argc - 1, argv + 1, "mount add", "fM", &a);
                if (r != CTL_EXIT_OK)
                        return r;
                if (a.n_pos != 1 || (!a.file == !a.n_mounts) || a.n_mounts > 1)
                        return ctl_usage_error(
                            "mount add NAME --file MOUNT.json | --mount MOUNTPOINT=BRANCH,...");
                m = a.file ? ctl_read_json_file(a.file, err, sizeof(err))
                           : ctl_mount_from_spec(a.mounts[0], err, sizeof(err));
                if (!m)
                        return a.file ? ctl_fail("%s: %s", a.file, err)
                                      : ctl_usage_error("%s", err);
                r = pool_mount_parse(m, "mount", &pm, err, sizeof(err));
                pool_mount_free(pm);
                if (r < 0) {
                        json_object_put(m);
                        return ctl_fail("%s: %s", a.file ? a.file : "--mount", err);
                }
                params = name_params(a.pos[0]);
                json_object_object_add(params, "mount", m);
                return call_and_print(ctl, "AddMount", params);
        }
        if (strcmp(sub, "remove") == 0) {
                r = parse_sub(argc - 1, argv + 1, "mount remove", "F", &a);
                if (r != CTL_EXIT_OK)
                        return r;
                if (a.n_pos != 2)
                        return ctl_usage_error("mount remove NAME MOUNTPOINT [--force]");
                params = name_params(a.pos[0]);
                json_object_object_add(params, "mountpoint", json_object_new_string(a.pos[1]));
                if (a.force)
                        json_object_object_add(params, "force", json_object_new_boolean(true));
                return call_and_print(ctl, "RemoveMount", params);
        }
        return ctl_usage_error("mount: expected add or remove");
}

int ctl_status(const Ctl *ctl, int argc, char **argv)
{
        json_object *info = NULL, *list = NULL, *pools;
        size_t n_running = 0, n;
        int r;

        if (argc != 1)
                return ctl_usage_error("status takes no arguments");
        r = ctl_call(ctl, "org.varlink.service.GetInfo", NULL, &info);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_call(ctl, "ListPools", NULL, &list);
        if (r != CTL_EXIT_OK) {
                json_object_put(info);
                return r;
        }
        pools = get_array(list, "pools");
        n = pools ? json_object_array_length(pools) : 0;
        if (ctl->json) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "socket", json_object_new_string(ctl->socket));
                json_object_object_add(o, "manager", json_object_get(info));
                json_object_object_add(o, "pools", json_object_get(pools));
                ctl_print_json(o);
                json_object_put(o);
        } else {
                for (size_t i = 0; i < n; i++) {
                        const char *st = get_str(json_object_array_get_idx(pools, i), "state");

                        n_running += st && strcmp(st, "running") == 0;
                }
                printf("manager: %s %s on %s\n",
                       get_str(info, "product") ? get_str(info, "product") : "?",
                       get_str(info, "version") ? get_str(info, "version") : "?", ctl->socket);
                printf("pools:   %zu (%zu running)\n", n, n_running);
                if (n)
                        print_pool_table(pools);
        }
        json_object_put(info);
        json_object_put(list);
        return CTL_EXIT_OK;
}
