/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: the control socket's policy. Root may do everything; a group
 * may act on its pools within its ceilings; every other caller is refused
 * with a reason. The credentials come from synthetic ucreds and, in
 * test_real_peercred, from SO_PEERCRED of a child that dropped to a
 * non-root uid/gid with setresuid/setresgid/setgroups.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/config.h"
#include "util/cpulist.h"
#include "util/policy.h"

/* gids and uids with no passwd/group entry: only the primary gid counts */
#define TENANT_GID 47110
#define OTHER_GID  47111
#define TENANT_UID 47120

static const char *policy_text =
    "{ \"rules\": [\n"
    "  { \"group\": 47110, \"pools\": [\"tenantA\", \"tenantA_*\"],\n"
    "    \"cpus\": \"2-5\", \"max_cpus\": 2, \"max_memory\": \"8G\",\n"
    "    \"backends\": [\"local\"], \"backend_roots\": [\"/srv/danaus/tenantA\"],\n"
    "    \"mount_roots\": [\"/danaus/tenantA\"] },\n"
    "  { \"group\": 47111, \"pools\": [\"shared\"], \"actions\": [\"show\"] }\n"
    "] }\n";

static PoolConfig *pool(const char *name, const char *cpus, const char *mem, const char *root,
                        const char *mountpoint)
{
        char text[2048], err[256] = "", res[256] = "";
        PoolConfig *cfg = NULL;
        int n = 0;

        if (cpus)
                n = snprintf(res, sizeof(res), "\"cpus\": \"%s\"", cpus);
        if (mem)
                snprintf(res + n, sizeof(res) - (size_t)n, "%s\"memory_max\": \"%s\"",
                         cpus ? ", " : "", mem);
        snprintf(text, sizeof(text),
                 "{ \"pool\": \"%s\", \"resources\": { %s },"
                 "  \"backend\": { \"type\": \"local\", \"root\": \"%s\" },"
                 "  \"mounts\": [ { \"mountpoint\": \"%s\","
                 "                  \"branches\": [ { \"path\": \"c1\", \"mode\": \"rw\" } ] } ] }",
                 name, res, root, mountpoint);
        ck_assert_msg(pool_config_parse(text, &cfg, err, sizeof(err)) == 0, "%s", err);
        return cfg;
}

static Policy *load(void)
{
        Policy *p = NULL;
        char err[256] = "";

        ck_assert_msg(policy_parse(policy_text, &p, err, sizeof(err)) == 0, "%s", err);
        return p;
}

/* Checks as the given uid/gid; returns the result, why in why. */
static int check_as(const Policy *p, uid_t uid, gid_t gid, PolicyAction a, const PoolConfig *cfg,
                    char *why, size_t n_why)
{
        struct ucred cred = {.pid = getpid(), .uid = uid, .gid = gid};

        why[0] = '\0';
        return policy_check(p, &cred, a, cfg, why, n_why);
}

START_TEST(test_root_may_do_everything)
{
        Policy *p = NULL;
        PoolConfig *cfg = pool("anything", NULL, NULL, "/", "/mnt/x");
        char why[256];

        ck_assert_int_eq(policy_new_empty(&p), 0);
        for (int a = 0; a < _POLICY_ACTION_MAX; a++)
                ck_assert_int_eq(check_as(p, 0, 0, (PolicyAction)a, cfg, why, sizeof(why)), 0);
        /* a non-root caller under the empty policy is refused */
        ck_assert_int_eq(
            check_as(p, TENANT_UID, TENANT_GID, POLICY_ACTION_SHOW, cfg, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, "no rule") && strstr(why, "anything"), "%s", why);
        policy_free(p);
        pool_config_free(cfg);
}
END_TEST

START_TEST(test_group_within_ceilings)
{
        Policy *p = load();
        PoolConfig *ok =
            pool("tenantA_web", "2-3", "4G", "/srv/danaus/tenantA/data", "/danaus/tenantA/c1");
        char why[256];

        for (int a = 0; a < _POLICY_ACTION_MAX; a++)
                ck_assert_msg(
                    check_as(p, TENANT_UID, TENANT_GID, (PolicyAction)a, ok, why, sizeof(why)) == 0,
                    "%s: %s", policy_action_to_string((PolicyAction)a), why);
        policy_free(p);
        pool_config_free(ok);
}
END_TEST

/* Each ceiling refuses with a reason that names the key. */
START_TEST(test_ceilings_refuse)
{
        static const struct {
                const char *cpus, *mem, *root, *mnt, *want;
        } cases[] = {
            {"2-3", "16G", "/srv/danaus/tenantA", "/danaus/tenantA/c", "memory_max: 16G exceeds"},
            {"2-3", NULL, "/srv/danaus/tenantA", "/danaus/tenantA/c", "memory_max: required"},
            {"2-4", "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c", "3 CPUs exceed max_cpus 2"},
            {"0-1", "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c", "not within the cpus"},
            {NULL, "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c", "cpus: required"},
            {"2", "1G", "/srv/danaus/tenantAB", "/danaus/tenantA/c", "backend.root"},
            {"2", "1G", "/srv/danaus/tenantA/../../../etc", "/danaus/tenantA/c", "backend.root"},
            {"2", "1G", "/", "/danaus/tenantA/c", "backend.root"},
            {"2", "1G", "/srv/danaus/tenantA", "/etc", "mounts[0].mountpoint"},
            {"2", "1G", "/srv/danaus/tenantA", "/danaus/tenantAB/c", "mounts[0].mountpoint"},
        };
        Policy *p = load();
        char why[256];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                PoolConfig *cfg =
                    pool("tenantA", cases[i].cpus, cases[i].mem, cases[i].root, cases[i].mnt);

                for (int a = POLICY_ACTION_CREATE; a <= POLICY_ACTION_MOUNT; a++) {
                        if (a == POLICY_ACTION_DESTROY)
                                continue;
                        ck_assert_int_eq(check_as(p, TENANT_UID, TENANT_GID, (PolicyAction)a, cfg,
                                                  why, sizeof(why)),
                                         -EPERM);
                        ck_assert_msg(strstr(why, cases[i].want), "case %zu: \"%s\" lacks \"%s\"",
                                      i, why, cases[i].want);
                }
                /* show and destroy do not look at ceilings */
                ck_assert_int_eq(check_as(p, TENANT_UID, TENANT_GID, POLICY_ACTION_DESTROY, cfg,
                                          why, sizeof(why)),
                                 0);
                pool_config_free(cfg);
        }
        policy_free(p);
}
END_TEST

START_TEST(test_other_callers_refused)
{
        Policy *p = load();
        PoolConfig *a = pool("tenantA", "2", "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c");
        PoolConfig *b = pool("tenantB", "2", "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c");
        PoolConfig *shared = pool("shared", "2", "1G", "/srv", "/mnt/s");
        char why[256];

        /* another group, another pool */
        ck_assert_int_eq(
            check_as(p, TENANT_UID, OTHER_GID, POLICY_ACTION_CREATE, a, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, "uid 47120") && strstr(why, "create"), "%s", why);
        ck_assert_int_eq(
            check_as(p, TENANT_UID, TENANT_GID, POLICY_ACTION_SHOW, b, why, sizeof(why)), -EPERM);
        /* a rule limited to show */
        ck_assert_int_eq(
            check_as(p, TENANT_UID, OTHER_GID, POLICY_ACTION_SHOW, shared, why, sizeof(why)), 0);
        ck_assert_int_eq(
            check_as(p, TENANT_UID, OTHER_GID, POLICY_ACTION_DESTROY, shared, why, sizeof(why)),
            -EPERM);
        ck_assert_msg(strstr(why, "destroy pool \"shared\""), "%s", why);
        /* an invalid action is refused, not read out of bounds */
        ck_assert_int_eq(check_as(p, TENANT_UID, TENANT_GID, (PolicyAction)99, a, why, sizeof(why)),
                         -EPERM);
        pool_config_free(a);
        pool_config_free(b);
        pool_config_free(shared);
        policy_free(p);
}
END_TEST

START_TEST(test_errors_name_the_key)
{
        static const struct {
                const char *text, *want;
        } cases[] = {
            {"{}", "rules: missing"},
            {"[]", "(top level): must be a JSON object"},
            {"{\"rules\": [], \"x\": 1}", "x: unknown key"},
            {"{\"rules\": {}}", "rules: must be an array"},
            {"{\"rules\": [1]}", "rules[0]: must be an object"},
            {"{\"rules\": [{\"pools\": [\"a\"]}]}", "rules[0].group: missing"},
            {"{\"rules\": [{\"group\": 0, \"pools\": [\"a\"]}]}", "rules[0].group: must be"},
            {"{\"rules\": [{\"group\": \"no-such-group-danaus\", \"pools\": [\"a\"]}]}",
             "rules[0].group: no group \"no-such-group-danaus\""},
            {"{\"rules\": [{\"group\": 5}]}", "rules[0].pools: missing"},
            {"{\"rules\": [{\"group\": 5, \"pools\": []}]}", "rules[0].pools: must not be empty"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [3]}]}",
             "rules[0].pools[0]: must be a string"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"actions\": [\"fly\"]}]}",
             "rules[0].actions[0]: \"fly\" is not one of show, create"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"max_memory\": \"8Q\"}]}",
             "rules[0].max_memory: \"8Q\" is not a size"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"max_cpus\": 0}]}",
             "rules[0].max_cpus: must be an integer"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"cpus\": \"3-1\"}]}",
             "rules[0].cpus: \"3-1\" is not a CPU list"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"cpus\": \"99999\"}]}",
             "rules[0].cpus"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"backends\": [\"nfs\"]}]}",
             "rules[0].backends[0]: \"nfs\" is not one of local, cephfs"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"backend_roots\": [\"srv\"]}]}",
             "rules[0].backend_roots[0]: \"srv\" must be an absolute, normalised path"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"mount_roots\": [\"/a/../b\"]}]}",
             "rules[0].mount_roots[0]"},
            {"{\"rules\": [{\"group\": 5, \"pools\": [\"a\"], \"mount_roots\": [\"/a/\"]}]}",
             "rules[0].mount_roots[0]"},
            {"{\"rules\": [", "line 1: invalid JSON"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Policy *p = NULL;
                char err[256] = "";

                ck_assert_int_eq(policy_parse(cases[i].text, &p, err, sizeof(err)), -EINVAL);
                ck_assert_ptr_null(p);
                ck_assert_msg(strstr(err, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
                              cases[i].want);
                ck_assert_ptr_null(strchr(err, '\n'));
        }
}
END_TEST

START_TEST(test_group_by_name_and_files)
{
        char dir[] = "/tmp/danaus-policy-XXXXXX", path[128], err[256] = "";
        PoolConfig *cfg = pool("x", NULL, NULL, "/srv", "/mnt/x");
        Policy *p = NULL;
        char why[256];
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        /* a missing file: the empty policy (root only) */
        snprintf(path, sizeof(path), "%s/none.json", dir);
        ck_assert_int_eq(policy_load(path, &p, err, sizeof(err)), 0);
        ck_assert_int_eq(check_as(p, 0, 0, POLICY_ACTION_CREATE, cfg, why, sizeof(why)), 0);
        ck_assert_int_eq(check_as(p, 1, 1, POLICY_ACTION_SHOW, cfg, why, sizeof(why)), -EPERM);
        p = policy_free(p);
        /* a group by name: "daemon" is gid 1 on Debian */
        snprintf(path, sizeof(path), "%s/p.json", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("{\"rules\": [{\"group\": \"daemon\", \"pools\": [\"x\"], \"actions\": "
              "[\"show\"]}]}",
              f);
        fclose(f);
        ck_assert_msg(policy_load(path, &p, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(check_as(p, 4242, getgrnam("daemon")->gr_gid, POLICY_ACTION_SHOW, cfg, why,
                                  sizeof(why)),
                         0);
        p = policy_free(p);
        /* a directory is not a policy file; an error says so */
        ck_assert_int_eq(policy_load(dir, &p, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "regular file"), "%s", err);
        unlink(path);
        rmdir(dir);
        pool_config_free(cfg);
}
END_TEST

/* The credentials of a real non-root peer, taken with SO_PEERCRED, as the
 * manager takes them: the child drops to TENANT_UID/TENANT_GID (or
 * OTHER_GID) and connects. Needs root to drop privileges. */
static int peer_check(gid_t gid, PolicyAction action, char *why, size_t n_why)
{
        char dir[] = "/tmp/danaus-policy-XXXXXX";
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        PoolConfig *cfg = pool("tenantA", "2", "1G", "/srv/danaus/tenantA", "/danaus/tenantA/c");
        struct ucred cred;
        socklen_t len = sizeof(cred);
        Policy *p = load();
        int lfd, cfd, status, r;
        pid_t pid;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(chmod(sa.sun_path, 0777), 0);
        ck_assert_int_eq(listen(lfd, 1), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);

                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                    setresuid(TENANT_UID, TENANT_UID, TENANT_UID) < 0 || getuid() == 0)
                        _exit(2);
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        _exit(3);
                _exit(0);
        }
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0);
        ck_assert_int_eq(getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_eq(cred.uid, TENANT_UID);
        ck_assert_int_eq(cred.gid, gid);
        r = policy_check(p, &cred, action, cfg, why, n_why);
        close(cfd);
        close(lfd);
        unlink(sa.sun_path);
        rmdir(dir);
        policy_free(p);
        pool_config_free(cfg);
        return r;
}

START_TEST(test_real_peercred)
{
        char why[256] = "";

        if (geteuid() != 0)
                return; /* registered only when root: see main() */
        ck_assert_msg(peer_check(TENANT_GID, POLICY_ACTION_CREATE, why, sizeof(why)) == 0, "%s",
                      why);
        ck_assert_int_eq(peer_check(OTHER_GID, POLICY_ACTION_CREATE, why, sizeof(why)), -EPERM);
        ck_assert_msg(strstr(why, "uid 47120: no rule"), "%s", why);
}
END_TEST

/* The shipped files: default.json (root only) and example.json (with its
 * group names replaced by gids, which need no entry on this host). */
START_TEST(test_shipped_files)
{
        char path[4096], err[256] = "", *text, *at;
        const char *src = getenv("DANAUS_SRC");
        PoolConfig *cfg = pool("tenantA_web", "2-3", "4G", "/srv/danaus/tenantA/x",
                               "/danaus/tenantA/c1");
        Policy *p = NULL;
        char why[256];
        FILE *f;
        long n;

        ck_assert_ptr_nonnull(src);
        snprintf(path, sizeof(path), "%s/policy/default.json", src);
        ck_assert_msg(policy_load(path, &p, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(check_as(p, 0, 0, POLICY_ACTION_CREATE, cfg, why, sizeof(why)), 0);
        ck_assert_int_eq(
            check_as(p, TENANT_UID, TENANT_GID, POLICY_ACTION_SHOW, cfg, why, sizeof(why)),
            -EPERM);
        p = policy_free(p);

        snprintf(path, sizeof(path), "%s/policy/example.json", src);
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        text = calloc(1, 65536);
        n = (long)fread(text, 1, 65535, f);
        fclose(f);
        ck_assert_int_gt(n, 0);
        at = strstr(text, "\"tenant-a\"");
        ck_assert_ptr_nonnull(at);
        memcpy(at, "47110     ", 10); /* same length: 10 characters */
        at = strstr(text, "\"danaus-viewers\"");
        ck_assert_ptr_nonnull(at);
        memcpy(at, "47111           ", 16);
        ck_assert_msg(policy_parse(text, &p, err, sizeof(err)) == 0, "%s", err);
        ck_assert_msg(check_as(p, TENANT_UID, TENANT_GID, POLICY_ACTION_CREATE, cfg, why,
                               sizeof(why)) == 0,
                      "%s", why);
        ck_assert_int_eq(
            check_as(p, TENANT_UID, OTHER_GID, POLICY_ACTION_SHOW, cfg, why, sizeof(why)), 0);
        ck_assert_int_eq(
            check_as(p, TENANT_UID, OTHER_GID, POLICY_ACTION_DESTROY, cfg, why, sizeof(why)),
            -EPERM);
        free(text);
        policy_free(p);
        pool_config_free(cfg);
}
END_TEST

START_TEST(test_cpulist)
{
        cpu_set_t s;

        ck_assert_int_eq(cpulist_parse("0,2-4,7", &s), 0);
        ck_assert_int_eq(CPU_COUNT(&s), 5);
        ck_assert(CPU_ISSET(3, &s) && !CPU_ISSET(1, &s) && CPU_ISSET(7, &s));
        ck_assert_int_eq(cpulist_parse("", &s), -EINVAL);
        ck_assert_int_eq(cpulist_parse("1,", &s), -EINVAL);
        ck_assert_int_eq(cpulist_parse("3-1", &s), -EINVAL);
        ck_assert_int_eq(cpulist_parse("1-", &s), -EINVAL);
        ck_assert_int_eq(cpulist_parse("a", &s), -EINVAL);
        ck_assert_int_eq(cpulist_parse("1024", &s), -ERANGE);
        ck_assert_int_eq(cpulist_parse("99999999999999999999", &s), -ERANGE);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("policy");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_root_may_do_everything);
        tcase_add_test(tc, test_group_within_ceilings);
        tcase_add_test(tc, test_ceilings_refuse);
        tcase_add_test(tc, test_other_callers_refused);
        tcase_add_test(tc, test_errors_name_the_key);
        tcase_add_test(tc, test_group_by_name_and_files);
        tcase_add_test(tc, test_cpulist);
        tcase_add_test(tc, test_shipped_files);
        suite_add_tcase(s, tc);
        if (geteuid() == 0) {
                TCase *tr = tcase_create("peercred");

                tcase_add_test(tr, test_real_peercred);
                suite_add_tcase(s, tr);
        } else {
                fprintf(stderr, "test-policy: not root: the SO_PEERCRED case is not run\n");
        }
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
