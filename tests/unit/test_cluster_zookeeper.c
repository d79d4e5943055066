/* test_cluster_zookeeper.c - unit tests of the zookeeper driver's option parser (-c zookeeper:...) and its refusal of bad options before any connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "lib/log.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/zookeeper.h"

static void test_one_server_takes_the_defaults(void **state)
{
	struct zk_options o;
	char err[256] = "";
	(void)state;
	assert_int_equal(zk_parse_options("127.0.0.1:2181", &o, err, sizeof(err)), 0);
	assert_string_equal(o.hosts, "127.0.0.1:2181");
	assert_int_equal(o.nr_hosts, 1);
	assert_int_equal(o.timeout_ms, ZK_DEFAULT_TIMEOUT_MS);
	assert_string_equal(o.path, "/sheepdog");
}

static void test_servers_timeout_and_path_are_read(void **state)
{
	struct zk_options o;
	char err[256] = "";
	(void)state;
	assert_int_equal(zk_parse_options("10.0.0.1:2181,zk-2.example.com:2182,[::1]:2183,"
					  "timeout=3000,path=/clusters/a",
					  &o, err, sizeof(err)),
			 0);
	assert_string_equal(o.hosts, "10.0.0.1:2181,zk-2.example.com:2182,[::1]:2183");
	assert_int_equal(o.nr_hosts, 3);
	assert_int_equal(o.timeout_ms, 3000);
	assert_string_equal(o.path, "/clusters/a");
	/* the options in either order */
	assert_int_equal(zk_parse_options("h:1,path=/x,timeout=500", &o, err, sizeof(err)), 0);
	assert_int_equal(o.timeout_ms, 500);
	assert_string_equal(o.path, "/x");
}

static void test_zookeeper_chroot_suffix_is_the_path(void **state)
{
	struct zk_options o;
	char err[256] = "";
	(void)state;
	assert_int_equal(zk_parse_options("a:1,b:2/sd/one,timeout=4000", &o, err, sizeof(err)), 0);
	assert_string_equal(o.hosts, "a:1,b:2");
	assert_string_equal(o.path, "/sd/one");
	assert_int_equal(o.timeout_ms, 4000);
	/* a chroot and a path= at once is ambiguous */
	assert_int_equal(zk_parse_options("a:1/x,path=/y", &o, err, sizeof(err)), -EINVAL);
}

/* Each bad string is refused with a sentence that names the problem. */
static void test_malformed_strings_are_refused_with_a_reason(void **state)
{
	static const struct {
		const char *opts, *why;
	} bad[] = {
		{"", "no ZooKeeper server"},
		{"127.0.0.1", "no HOST:PORT"},
		{":2181", "no HOST:PORT"},
		{"127.0.0.1:", "bad port"},
		{"127.0.0.1:0", "bad port"},
		{"127.0.0.1:65536", "bad port"},
		{"127.0.0.1:-5", "bad port"},
		{"127.0.0.1:21x", "bad port"},
		{"a:b:2181", "no HOST:PORT"},
		{"ho st:2181", "bad host name"},
		{"[::1:2181", "bad ZooKeeper server"},
		{"[]:2181", "bad ZooKeeper server"},
		{"[zz]:2181", "bad IPv6"},
		{"h:1,", "empty item"},
		{",h:1", "empty item"},
		{"h:1,,h:2", "empty item"},
		{"h:1,timeout=", "timeout=MS"},
		{"h:1,timeout=abc", "timeout=MS"},
		{"h:1,timeout=-1", "timeout=MS"},
		{"h:1,timeout=499", "timeout=MS"},
		{"h:1,timeout=600001", "timeout=MS"},
		{"h:1,timeout=99999999999999999999", "timeout=MS"},
		{"h:1,timeout=1000,timeout=2000", "timeout=MS"},
		{"h:1,path=", "path=/NAME"},
		{"h:1,path=rel", "path=/NAME"},
		{"h:1,path=/", "path=/NAME"},
		{"h:1,path=/a/", "path=/NAME"},
		{"h:1,path=/a//b", "path=/NAME"},
		{"h:1,path=/a/../b", "path=/NAME"},
		{"h:1,path=/a/./b", "path=/NAME"},
		{"h:1,path=/a b", "path=/NAME"},
		{"h:1,color=blue", "unknown zookeeper option"},
		{"timeout=1000,h:1", "servers come first"},
		{"h:1/", "bad chroot"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zk_options o;
		char err[256] = "";
		int r = zk_parse_options(bad[i].opts, &o, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, bad[i].why))
			fail_msg("'%s': got %d '%s', wanted -EINVAL and '%s'", bad[i].opts, r, err,
				 bad[i].why);
	}
	/* NULL options and a NULL error buffer are safe */
	struct zk_options o;
	assert_int_equal(zk_parse_options(NULL, &o, NULL, 0), -EINVAL);
	assert_int_equal(zk_parse_options("h:0", &o, NULL, 0), -EINVAL);
}

static void test_too_long_or_too_many_is_refused(void **state)
{
	char opts[2048], err[256] = "";
	struct zk_options o;
	size_t n = 0;
	(void)state;
	for (int i = 0; i < ZK_MAX_HOSTS + 1; i++)
		n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%sh%d:1", i ? "," : "", i);
	assert_int_equal(zk_parse_options(opts, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than"));
	memset(opts, 'a', sizeof(opts) - 1);
	opts[sizeof(opts) - 1] = '\0';
	assert_int_equal(zk_parse_options(opts, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
}

/* The driver refuses bad options in init, before it tries to connect. */
static void test_driver_init_refuses_bad_options(void **state)
{
	(void)state;
#if HAVE_ZOOKEEPER
	static const struct cluster_events ev = {0};
	struct cluster_ctx *ctx = (void *)1;
	struct sd_node self = {.port = 1};
	sd_log_open("/dev/null", SD_LOG_ERR, "test");
	assert_ptr_equal(cluster_driver_find("zookeeper:h:1"), &cluster_zookeeper_driver);
	assert_int_equal(cluster_zookeeper_driver.init(&ctx, "h:1,bogus=1", &self, &ev, NULL), -EINVAL);
	assert_null(ctx);
	assert_int_equal(cluster_zookeeper_driver.init(&ctx, "", &self, &ev, NULL), -EINVAL);
	assert_non_null(strstr(cluster_driver_names(), "zookeeper"));
#else
	assert_null(cluster_driver_find("zookeeper:h:1"));
	assert_null(strstr(cluster_driver_names(), "zookeeper"));
#endif
	assert_non_null(strstr(cluster_driver_names(), "local"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_server_takes_the_defaults),
		cmocka_unit_test(test_servers_timeout_and_path_are_read),
		cmocka_unit_test(test_zookeeper_chroot_suffix_is_the_path),
		cmocka_unit_test(test_malformed_strings_are_refused_with_a_reason),
		cmocka_unit_test(test_too_long_or_too_many_is_refused),
		cmocka_unit_test(test_driver_init_refuses_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
