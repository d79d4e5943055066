/* test_cluster_local_records.c - unit tests of the local cluster driver's record decoding: what a
 * damaged shared log hands up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/local_priv.h"

/* The last membership change one member saw, and the list with it. */
struct seen {
	int changes;
	bool joined;
	struct sd_node changed;
	struct sd_node members[4];
	size_t nr;
	int delivered;
	struct sd_node sender;
};

static void on_membership(void *arg, const struct sd_node *members, size_t nr,
			  const struct sd_node *changed, bool joined)
{
	struct seen *s = arg;
	s->changes++;
	s->joined = joined;
	s->changed = *changed;
	s->nr = nr < 4 ? nr : 4;
	memcpy(s->members, members, s->nr * sizeof(members[0]));
}

static void on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len)
{
	struct seen *s = arg;
	s->delivered++;
	s->sender = *sender;
}

static const struct cluster_events events = {on_membership, on_deliver, NULL, NULL};
static const struct cluster_driver *drv = &cluster_local_driver;

#include "tests/unit/cluster_local_fixture.h"

static struct sd_node mknode(int port)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "127.0.0.1");
	n.port = (uint16_t)port;
	n.zone = (uint32_t)port;
	n.incarnation = 1;
	return n;
}

/* Dispatch until the member has seen want membership changes (bounded by
 * the number of wake-ups, not by time: each append wakes it at once). */
static void pump_until(struct cluster_ctx *c, const struct seen *s, int want)
{
	for (int i = 0; i < 200 && s->changes < want; i++) {
		struct pollfd p = {.fd = drv->get_fd(c), .events = POLLIN};
		if (poll(&p, 1, 50) > 0)
			drv->dispatch(c);
	}
}

/* Append one record to the shared log as a peer process would, under the
 * log lock, through the member's own context. */
static void append(struct cluster_ctx *c, enum rec_type type, const struct sd_node *n,
		   const void *payload, uint32_t len)
{
	assert_int_equal(lc_lock_log(c, LOCK_EX), 0);
	assert_int_equal(lc_log_append(c, type, n, payload, len), 0);
	lc_unlock_log(c);
}

/* A JOIN whose address fills all 64 bytes with no NUL (a damaged or hostile
 * log; its crc is valid) is handed up with the address cut to 63 bytes:
 * the member list and the changed node are printed as strings. Without the
 * terminator in lc_deliver_batch the callback got 64 non-NUL bytes. */
static void test_unterminated_address_is_cut_at_its_field(void **state)
{
	struct fixture *f = *state;
	struct seen s = {0};
	struct cluster_ctx *c;
	struct sd_node a = mknode(29001);
	assert_int_equal(drv->init(&c, f->opts, &a, &events, &s), 0);
	assert_int_equal(drv->join(c), 0);
	pump_until(c, &s, 1);
	assert_int_equal(s.changes, 1);

	struct sd_node bad = mknode(29002);
	memset(bad.addr, 'x', sizeof(bad.addr));
	append(c, REC_JOIN, &bad, NULL, 0);
	pump_until(c, &s, 2);
	assert_int_equal(s.changes, 2);
	assert_true(s.joined);
	assert_int_equal(s.changed.port, 29002);
	assert_non_null(memchr(s.changed.addr, '\0', sizeof(s.changed.addr)));
	assert_int_equal(strlen(s.changed.addr), sizeof(s.changed.addr) - 1);
	assert_int_equal(s.nr, 2);
	assert_non_null(memchr(s.members[1].addr, '\0', sizeof(s.members[1].addr)));
	assert_string_equal(s.members[0].addr, "127.0.0.1");

	/* its messages and its LEAVE find it by the same (cut) address */
	append(c, REC_MSG, &bad, "hello", 5);
	append(c, REC_LEAVE, &bad, NULL, 0);
	pump_until(c, &s, 3);
	assert_int_equal(s.delivered, 1);
	assert_non_null(memchr(s.sender.addr, '\0', sizeof(s.sender.addr)));
	assert_int_equal(s.changes, 3);
	assert_false(s.joined);
	assert_int_equal(s.nr, 1);
	drv->destroy(c);
}

int main(void)
{
	sd_log_set_level(SD_LOG_ERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unterminated_address_is_cut_at_its_field, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
