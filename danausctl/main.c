/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danausctl: global options, the command table, the manager call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "danaus-config.h"
#include "danausctl.h"
#include "varlink/varlink.h"

static void usage(FILE *out)
{
        fprintf(out, "Usage: danausctl [--socket PATH] [--json] [--timeout SEC] COMMAND ...\n"
                     "Manages Danaus pools through danaus-manager.\n"
                     "\n"
                     "  pool create --file POOL.json\n"
                     "  pool create NAME --backend local:ROOT [--cpus LIST] [--memory SIZE]\n"
                     "              [--mount MOUNTPOINT=BRANCH[:rw|:ro][,BRANCH...]]...\n"
                     "  pool list\n"
                     "  pool show NAME\n"
                     "  pool update NAME [--cpus LIST|\"\"] [--memory SIZE|\"\"]\n"
                     "  pool destroy NAME\n"
                     "  mount add NAME --file MOUNT.json | --mount MOUNTPOINT=BRANCH,...\n"
                     "  mount remove NAME MOUNTPOINT [--force]\n"
                     "  run NAME -- COMMAND [ARG...]\n"
                     "  status\n"
                     "\n"
                     "  --socket PATH  the manager's socket (default $DANAUS_MANAGER_SOCKET, else\n"
                     "                 " CTL_DEFAULT_SOCKET ")\n"
                     "  --json         print the manager's reply as JSON\n"
                     "  --timeout SEC  how long to wait for the manager (default 60)\n"
                     "  -h, --help     this text;  --version: the version\n"
                     "Exit status: 0 success, 1 refused or failed, 2 usage error.\n");
}

int ctl_fail(const char *fmt, ...)
{
        char line[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        /* one line, whatever the manager sent */
        for (char *c = line; *c; c++)
                if (*c == '\n' || *c == '\r')
                        *c = ' ';
        fprintf(stderr, "danausctl: %s\n", line);
        return CTL_EXIT_FAILED;
}

int ctl_usage_error(const char *fmt, ...)
{
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "danausctl: %s (see danausctl --help)\n", line);
        return CTL_EXIT_USAGE;
}

void ctl_print_json(json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *param_string(json_object *params, const char *key)
{
        json_object *v;

        if (params && json_object_object_get_ex(params, key, &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/* "io.danaus.Manager.NoSuchPool" {"name": "x"} -> "no such pool: x", etc. */
static int report_error(const char *method, const VarlinkReply *reply)
{
        const char *e = reply->error, *short_name = strrchr(e, '.') + 1;
        const char *name = param_string(reply->parameters, "name");
        const char *mp = param_string(reply->parameters, "mountpoint");
        const char *msg = param_string(reply->parameters, "message");
        const char *param = param_string(reply->parameters, "parameter");

        if (strcmp(short_name, "NoSuchPool") == 0)
                return ctl_fail("pool %s: no such pool", name ? name : "?");
        if (strcmp(short_name, "PoolExists") == 0)
                return ctl_fail("pool %s: exists already", name ? name : "?");
        if (strcmp(short_name, "NoSuchMount") == 0)
                return ctl_fail("pool %s: no mount at %s", name ? name : "?", mp ? mp : "?");
        if (strcmp(short_name, "PermissionDenied") == 0)
                return ctl_fail("permission denied%s%s", msg ? ": " : "", msg ? msg : "");
        if (strcmp(short_name, "InvalidParameter") == 0)
                return ctl_fail("invalid %s%s%s", param ? param : "parameter", msg ? ": " : "",
                                msg ? msg : "");
        if (strcmp(short_name, "MethodNotFound") == 0 ||
            strcmp(short_name, "InterfaceNotFound") == 0)
                return ctl_fail("%s: not offered by this manager (%s)", method, e);
        return ctl_fail("%s%s%s%s", name ? "pool " : "", name ? name : "", name ? ": " : "",
                        msg ? msg : short_name);
}

int ctl_call(const Ctl *ctl, const char *method, json_object *params, json_object **replyp)
{
        char full[VARLINK_NAME_MAX];
        VarlinkClient *client = NULL;
        VarlinkReply reply = {};
        int r;

        if (strncmp(method, "org.", 4) == 0 || strncmp(method, "io.", 3) == 0)
                snprintf(full, sizeof(full), "%s", method);
        else
                snprintf(full, sizeof(full), "io.danaus.Manager.%s", method);
        r = varlink_client_connect(&client, ctl->socket);
        if (r < 0)
                return ctl_fail("cannot reach the manager at %s: %s%s", ctl->socket, strerror(-r),
                                r == -ENOENT || r == -ECONNREFUSED ? " (is danaus-manager running?)"
                                                                   : "");
        r = varlink_client_call(client, full, params, 0, ctl->timeout_ms, &reply);
        varlink_client_free(client);
        if (r == -ETIMEDOUT)
                return ctl_fail("%s: no answer from the manager within %d s", full,
                                ctl->timeout_ms / 1000);
        if (r > 0)
                return ctl_fail("%s: the manager sent a malformed reply", full);
        if (r < 0)
                return ctl_fail("%s: %s", full, strerror(-r));
        if (reply.error) {
                r = report_error(full, &reply);
                varlink_reply_clear(&reply);
                return r;
        }
        *replyp = json_object_get(reply.parameters);
        varlink_reply_clear(&reply);
        return CTL_EXIT_OK;
}

/* Takes the global options out of argv wherever they are (before "--"), so
 * `danausctl pool list --json` and `danausctl --json pool list` both work. */
static int take_global_options(Ctl *ctl, int *argcp, char **argv)
{
        int argc = *argcp, out = 1;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *val = NULL;

                if (strcmp(a, "--") == 0) {
                        while (i < argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (strcmp(a, "--json") == 0) {
                        ctl->json = true;
                        continue;
                }
                if (strcmp(a, "--socket") == 0 || strcmp(a, "--timeout") == 0) {
                        if (i + 1 >= argc)
                                return ctl_usage_error("%s needs a value", a);
                        val = argv[++i];
                } else if (strncmp(a, "--socket=", 9) == 0 || strncmp(a, "--timeout=", 10) == 0) {
                        val = strchr(a, '=') + 1;
                } else {
                        argv[out++] = argv[i];
                        continue;
                }
                if (strncmp(a, "--socket", 8) == 0) {
                        if (!*val)
                                return ctl_usage_error("--socket needs a path");
                        ctl->socket = val;
                } else {
                        char *end;
                        long v = strtol(val, &end, 10);

                        if (*end || v <= 0 || v > 3600)
                                return ctl_usage_error("--timeout: \"%s\" is not 1-3600 seconds",
                                                       val);
                        ctl->timeout_ms = (int)v * 1000;
                }
        }
        argv[out] = NULL;
        *argcp = out;
        return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(const Ctl *, int, char **);
        } commands[] = {
            {"pool", ctl_pool},
            {"mount", ctl_mount},
            {"status", ctl_status},
            {"run", ctl_run},
        };
        Ctl ctl = {.socket = CTL_DEFAULT_SOCKET, .timeout_ms = 60000};
        const char *env = getenv("DANAUS_MANAGER_SOCKET");
        int r;

        if (env && *env)
                ctl.socket = env;
        r = take_global_options(&ctl, &argc, argv);
        if (r != CTL_EXIT_OK)
                return r;
        if (argc < 2)
                return ctl_usage_error("a command is needed");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
            strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return CTL_EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("danausctl %s\n", DANAUS_VERSION);
                return CTL_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].fn(&ctl, argc - 1, argv + 1);
        return ctl_usage_error("unknown command \"%s\"", argv[1]);
}
