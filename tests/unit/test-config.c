/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: pool definitions. A valid definition parses into the expected
 * structure; each kind of mistake is refused with one line naming the key.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/size.h"

static const char *valid =
    "{\n"
    "  \"pool\": \"tenantA\",\n"
    "  \"resources\": { \"cpus\": \"2-3\", \"memory_max\": \"4G\" },\n"
    "  \"backend\": { \"type\": \"local\", \"root\": \"/srv/danaus\" },\n"
    "  \"cache\": { \"size\": \"1G\", \"dirty_max\": \"256M\", \"dirty_age_ms\": 5000 },\n"
    "  \"mounts\": [\n"
    "    { \"mountpoint\": \"/danaus/tenantA/c1\",\n"
    "      \"branches\": [ { \"path\": \"containers/c1\", \"mode\": \"rw\" },\n"
    "                    { \"path\": \"images/debian-12/\", \"mode\": \"ro\" } ] },\n"
    "    { \"mountpoint\": \"/danaus/tenantA/c2\", \"copy_up\": \"volatile\",\n"
    "      \"branches\": [ { \"path\": \".\", \"mode\": \"ro\" } ] }\n"
    "  ]\n"
    "}\n";

START_TEST(test_valid)
{
        PoolConfig *cfg = NULL;
        char err[256] = "";

        ck_assert_int_eq(pool_config_parse(valid, &cfg, err, sizeof(err)), 0);
        ck_assert_str_eq(cfg->pool, "tenantA");
        ck_assert_str_eq(cfg->cpus, "2-3");
        ck_assert_uint_eq(cfg->memory_max, 4ULL << 30);
        ck_assert_int_eq(cfg->backend_type, POOL_BACKEND_LOCAL);
        ck_assert_str_eq(cfg->backend_root, "/srv/danaus");
        ck_assert_uint_eq(cfg->cache_size, 1ULL << 30);
        ck_assert_uint_eq(cfg->cache_dirty_max, 256ULL << 20);
        ck_assert_uint_eq(cfg->cache_dirty_age_ms, 5000);
        ck_assert_uint_eq(cfg->n_mounts, 2);
        ck_assert_str_eq(cfg->mounts[0].mountpoint, "/danaus/tenantA/c1");
        ck_assert_uint_eq(cfg->mounts[0].n_branches, 2);
        ck_assert(cfg->mounts[0].branches[0].writable);
        ck_assert(!cfg->mounts[0].branches[1].writable);
        ck_assert_str_eq(cfg->mounts[0].branches[1].path, "images/debian-12");
        ck_assert_str_eq(cfg->mounts[1].branches[0].path, "");
        ck_assert(pool_mount_read_only(&cfg->mounts[1]));
        ck_assert(!pool_mount_read_only(&cfg->mounts[0]));
        ck_assert(!cfg->mounts[0].copy_up_volatile); /* durable unless asked */
        ck_assert(cfg->mounts[1].copy_up_volatile);
        pool_config_free(cfg);
}
END_TEST

/* Replaces the first occurrence of from in valid by to and expects an error
 * starting with want. */
static void expect_error(const char *from, const char *to, const char *want)
{
        char text[4096], err[256] = "";
        const char *at = strstr(valid, from);
        PoolConfig *cfg = NULL;

        ck_assert_ptr_nonnull(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - valid), valid, to, at + strlen(from));
        ck_assert_int_eq(pool_config_parse(text, &cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(cfg);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error \"%s\" does not start \"%s\"",
                      err, want);
        ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_errors_name_the_key)
{
        expect_error("\"pool\": \"tenantA\"", "\"pool\": \"tenant/A\"", "pool:");
        expect_error("\"pool\": \"tenantA\"", "\"pool\": 3", "pool: must be a string");
        expect_error("\"pool\": \"tenantA\",", "", "pool: missing");
        expect_error("\"cpus\"", "\"cpuz\"", "resources.cpuz: unknown key");
        expect_error("\"2-3\"", "\"two\"", "resources.cpus:");
        expect_error("\"4G\"", "\"4Q\"", "resources.memory_max:");
        expect_error("\"local\"", "\"nfs\"", "backend.type:");
        expect_error("\"/srv/danaus\"", "\"srv\"", "backend.root:");
        expect_error("\"mountpoint\": \"/danaus/tenantA/c1\"", "\"mountpiont\": \"/x\"",
                     "mounts[0].mountpiont: unknown key");
        expect_error("\"/danaus/tenantA/c2\"", "\"/danaus/tenantA/c1/sub\"",
                     "mounts[1].mountpoint:");
        expect_error("\"mode\": \"ro\"", "\"mode\": \"rx\"", "mounts[0].branches[1].mode:");
        expect_error("\"volatile\"", "\"fast\"", "mounts[1].copy_up: must be");
        expect_error("\"volatile\"", "true", "mounts[1].copy_up:");
        expect_error("\"mode\": \"ro\"", "\"mode\": \"rw\"", "mounts[0].branches[1].mode:");
        expect_error("\"containers/c1\"", "\"../etc\"", "mounts[0].branches[0].path:");
        expect_error("\"containers/c1\"", "\"/etc\"", "mounts[0].branches[0].path:");
        expect_error("[ { \"path\": \".\", \"mode\": \"ro\" } ]", "[]",
                     "mounts[1].branches: must hold");
        expect_error("\"dirty_age_ms\": 5000", "\"dirty_age_ms\": -1", "cache.dirty_age_ms:");
        expect_error("\"cache\"", "\"caches\"", "caches: unknown key");
        expect_error("\"type\": \"local\"", "\"type\": \"local\", \"conf\": \"/c\"", "backend:");
}
END_TEST

START_TEST(test_invalid_json_says_where)
{
        PoolConfig *cfg = NULL;
        char err[256];

        ck_assert_int_eq(
            pool_config_parse("{\n\"pool\": \"a\",\n\"mounts\": [,]\n}", &cfg, err, sizeof(err)),
            -EINVAL);
        ck_assert_msg(strncmp(err, "line 3: invalid JSON", 20) == 0, "%s", err);
        ck_assert_int_eq(pool_config_parse("{\"pool\": \"a\"", &cfg, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(pool_config_parse("{} {}", &cfg, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(pool_config_parse("[]", &cfg, err, sizeof(err)), -EINVAL);
        ck_assert_int_eq(pool_config_load("/nonexistent/pool.json", &cfg, err, sizeof(err)),
                         -ENOENT);
}
END_TEST

START_TEST(test_sizes)
{
        uint64_t v;

        ck_assert_int_eq(size_parse("4096", &v), 0);
        ck_assert_uint_eq(v, 4096);
        ck_assert_int_eq(size_parse("512K", &v), 0);
        ck_assert_uint_eq(v, 512 << 10);
        ck_assert_int_eq(size_parse("1.5G", &v), 0);
        ck_assert_uint_eq(v, 3ULL << 29);
        ck_assert_int_eq(size_parse("2GiB", &v), 0);
        ck_assert_uint_eq(v, 2ULL << 30);
        ck_assert_int_eq(size_parse("", &v), -EINVAL);
        ck_assert_int_eq(size_parse("-1", &v), -EINVAL);
        ck_assert_int_eq(size_parse("1.5", &v), -EINVAL);
        ck_assert_int_eq(size_parse("4 G", &v), -EINVAL);
        ck_assert_int_eq(size_parse("99999999999T", &v), -ERANGE);
        ck_assert_int_eq(size_parse("99999999999999999999999", &v), -ERANGE);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("config");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_valid);
        tcase_add_test(tc, test_errors_name_the_key);
        tcase_add_test(tc, test_invalid_json_says_where);
        tcase_add_test(tc, test_sizes);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
