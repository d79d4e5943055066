/* test_cluster_corosync.c - the corosync driver against a real corosync: same order everywhere, 1 MiB messages, failures, clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "sheep/cluster/cluster.h"

#if HAVE_COROSYNC

/*
 * Each member is a child process (CPG tells processes apart by pid). A
 * child logs every callback as one line to its own file:
 *   M <nr> join|leave <changed port>: <member ports...>
 *   D <sender port> <len> <crc32c>
 * and, outside the ordered sequence, Q <quorate> and R <op> <result>.
 * The parent drives the children through a pipe and compares the logs.
 */

#define MAX_CHILD 12
#define PORT0 7100

enum { OP_SEND = 1, OP_QUIT = 2 };

struct cmd {
	int op;
	uint32_t len;
	uint32_t seed;
};

struct child {
	pid_t pid;
	int cmd_fd;
	char log[256];
};

struct fixture {
	char dir[128];
	char group[64];
	struct child ch[MAX_CHILD];
};

static void fill(uint8_t *buf, uint32_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (uint32_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
}

struct child_ctx {
	FILE *f;
};

static void on_membership(void *arg, const struct sd_node *m, size_t nr, const struct sd_node *changed,
			  bool joined)
{
	struct child_ctx *c = arg;
	fprintf(c->f, "M %zu %s %u:", nr, joined ? "join" : "leave", changed->port);
	for (size_t i = 0; i < nr; i++)
		fprintf(c->f, " %u", m[i].port);
	fprintf(c->f, "\n");
}

static void on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len)
{
	struct child_ctx *c = arg;
	fprintf(c->f, "D %u %zu %08x\n", sender->port, len, sd_crc32c(0, msg, len));
}

static void on_quorum(void *arg, bool q)
{
	struct child_ctx *c = arg;
	fprintf(c->f, "Q %d\n", q);
}

static void child_main(int idx, const char *group, int cmd_fd, const char *logpath)
{
	static const struct cluster_events ev = { on_membership, on_deliver, on_quorum, NULL };
	struct child_ctx c;
	struct cluster_ctx *ctx;
	struct sd_node self;
	char opts[128];
	int ret;

	c.f = fopen(logpath, "w");
	if (!c.f)
		_exit(2);
	setvbuf(c.f, NULL, _IOLBF, 0);
	memset(&self, 0, sizeof(self));
	snprintf(self.addr, sizeof(self.addr), "127.0.0.1");
	self.port = (uint16_t)(PORT0 + idx);
	self.zone = (uint32_t)idx;
	self.incarnation = (uint64_t)getpid();
	snprintf(opts, sizeof(opts), "group=%s", group);
	ret = cluster_corosync_driver.init(&ctx, opts, &self, &ev, &c);
	if (ret == 0)
		ret = cluster_corosync_driver.join(ctx);
	if (ret < 0) {
		fprintf(c.f, "R init %d\n", ret);
		_exit(1);
	}
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = cluster_corosync_driver.get_fd(ctx), .events = POLLIN },
			{ .fd = cmd_fd, .events = POLLIN },
		};
		if (poll(p, 2, 1000) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			ret = cluster_corosync_driver.dispatch(ctx);
			if (ret < 0) {
				fprintf(c.f, "R dispatch %d\n", ret);
				_exit(1);
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			struct cmd cm;
			if (read(cmd_fd, &cm, sizeof(cm)) != (ssize_t)sizeof(cm) || cm.op == OP_QUIT) {
				cluster_corosync_driver.leave(ctx);
				cluster_corosync_driver.destroy(ctx);
				fclose(c.f);
				_exit(0);
			}
			uint8_t *buf = malloc(cm.len ? cm.len : 1);
			fill(buf, cm.len, cm.seed);
			ret = cluster_corosync_driver.broadcast(ctx, buf, cm.len);
			fprintf(c.f, "R send %d\n", ret);
			free(buf);
		}
	}
}

static void start_child(struct fixture *fx, int idx)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	char path[sizeof(fx->ch[idx].log)];
	snprintf(path, sizeof(path), "%s/member%d.log", fx->dir, idx);
	memcpy(fx->ch[idx].log, path, sizeof(path));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		child_main(idx, fx->group, p[0], fx->ch[idx].log);
		_exit(0);
	}
	close(p[0]);
	fx->ch[idx].pid = pid;
	fx->ch[idx].cmd_fd = p[1];
}

static void send_cmd(struct fixture *fx, int idx, int op, uint32_t len, uint32_t seed)
{
	struct cmd cm = { op, len, seed };
	assert_int_equal(write(fx->ch[idx].cmd_fd, &cm, sizeof(cm)), (ssize_t)sizeof(cm));
}

static void kill_child(struct fixture *fx, int idx, int sig)
{
	if (fx->ch[idx].pid <= 0)
		return;
	if (sig)
		kill(fx->ch[idx].pid, sig);
	else
		send_cmd(fx, idx, OP_QUIT, 0, 0);
	waitpid(fx->ch[idx].pid, NULL, 0);
	close(fx->ch[idx].cmd_fd);
	fx->ch[idx].pid = 0;
}

/* Lines of a member's log; ordered=true keeps only M and D lines. */
static int read_lines(const char *path, char lines[][512], int max, bool ordered)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	if (!f)
		return 0;
	while (n < max && fgets(lines[n], 512, f)) {
		if (!strchr(lines[n], '\n'))
			break; /* partial line: still being written */
		if (ordered && lines[n][0] != 'M' && lines[n][0] != 'D')
			continue;
		n++;
	}
	fclose(f);
	return n;
}

#define MAXL 400
static char la[MAXL][512], lb[MAXL][512];

static int count_prefix(const char *path, const char *prefix)
{
	static char l[MAXL][512];
	int n = read_lines(path, l, MAXL, false), c = 0;
	for (int i = 0; i < n; i++)
		if (!strncmp(l[i], prefix, strlen(prefix)))
			c++;
	return c;
}

/* Wait until member idx's log has want lines starting with prefix. */
static bool wait_count(struct fixture *fx, int idx, const char *prefix, int want, int secs)
{
	for (int t = 0; t < secs * 20; t++) {
		if (count_prefix(fx->ch[idx].log, prefix) >= want)
			return true;
		usleep(50000);
	}
	print_message("member %d: fewer than %d lines '%s' after %d s\n", idx, want, prefix, secs);
	return false;
}

static int find_line(char lines[][512], int n, const char *want)
{
	int k;
	for (k = 0; k < n; k++)
		if (!strcmp(lines[k], want))
			break;
	return k;
}

/* The later member's log must be exactly the tail of the earlier one's,
 * starting where the earlier one saw the later one join. Which of the two
 * joined first is for the logs to say. */
static void assert_same_sequence(struct fixture *fx, int early, int late)
{
	int na = read_lines(fx->ch[early].log, la, MAXL, true);
	int nb = read_lines(fx->ch[late].log, lb, MAXL, true);
	int k;

	assert_true(na > 0 && nb > 0);
	k = find_line(la, na, lb[0]);
	if (k == na && find_line(lb, nb, la[0]) < nb) {
		int t = early;
		early = late;
		late = t;
		na = read_lines(fx->ch[early].log, la, MAXL, true);
		nb = read_lines(fx->ch[late].log, lb, MAXL, true);
		k = find_line(la, na, lb[0]);
	}
	if (k == na)
		print_message("member %d never saw '%s'", early, lb[0]);
	assert_true(k < na);
	if (na - k != nb)
		print_message("member %d has %d events after the join, member %d has %d\n", early,
			      na - k, late, nb);
	assert_int_equal(na - k, nb);
	for (int i = 0; i < nb; i++) {
		if (strcmp(la[k + i], lb[i]))
			print_message("event %d differs: '%s' vs '%s'", i, la[k + i], lb[i]);
		assert_string_equal(la[k + i], lb[i]);
	}
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_cluster_corosync.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->group, sizeof(fx->group), "sdtest-%d", (int)getpid());
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[300];
	for (int i = 0; i < MAX_CHILD; i++)
		kill_child(fx, i, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void test_first_member_founds_and_sees_itself(void **state)
{
	struct fixture *fx = *state;
	start_child(fx, 0);
	assert_true(wait_count(fx, 0, "M ", 1, 20));
	assert_int_equal(read_lines(fx->ch[0].log, la, MAXL, true), 1);
	assert_string_equal(la[0], "M 1 join 7100: 7100\n");
}

static void test_joiners_and_concurrent_senders_see_one_order(void **state)
{
	struct fixture *fx = *state;
	int i, j;

	for (i = 1; i < 6; i++)
		start_child(fx, i);
	for (i = 0; i < 6; i++)
		assert_true(wait_count(fx, i, "M 6 ", 1, 30));
	/* Everybody sends at once, sizes from 0 bytes to 200 KiB. */
	for (j = 0; j < 5; j++)
		for (i = 0; i < 6; i++)
			send_cmd(fx, i, OP_SEND, (uint32_t)(j * 50000 + i * 7), (uint32_t)(i * 100 + j));
	for (i = 0; i < 6; i++)
		assert_true(wait_count(fx, i, "D ", 30, 30));
	for (i = 1; i < 6; i++)
		assert_same_sequence(fx, 0, i);
	/* A message's content arrives intact: check one crc by hand. */
	uint8_t *buf = malloc(100014);
	fill(buf, 100014, 202);
	char want[64];
	snprintf(want, sizeof(want), "D 7102 100014 %08x\n", sd_crc32c(0, buf, 100014));
	free(buf);
	int n = read_lines(fx->ch[5].log, la, MAXL, true);
	bool found = false;
	for (i = 0; i < n; i++)
		found |= !strcmp(la[i], want);
	assert_true(found);
}

static void test_one_mib_message_delivered_whole_and_larger_refused(void **state)
{
	struct fixture *fx = *state;
	uint8_t *buf = malloc(CLUSTER_MAX_MSG);
	char want[64];
	int i, n;

	fill(buf, CLUSTER_MAX_MSG, 77);
	snprintf(want, sizeof(want), "D 7103 %u %08x\n", CLUSTER_MAX_MSG,
		 sd_crc32c(0, buf, CLUSTER_MAX_MSG));
	free(buf);
	send_cmd(fx, 3, OP_SEND, CLUSTER_MAX_MSG, 77);
	send_cmd(fx, 3, OP_SEND, CLUSTER_MAX_MSG + 1, 78);
	for (i = 0; i < 6; i++) {
		assert_true(wait_count(fx, i, "D ", 31, 30));
		n = read_lines(fx->ch[i].log, la, MAXL, true);
		assert_string_equal(la[n - 1], want);
	}
	assert_true(wait_count(fx, 3, "R send -90", 1, 5)); /* -EMSGSIZE */
	for (i = 1; i < 6; i++)
		assert_same_sequence(fx, 0, i);
}

static void test_killed_member_leaves_everywhere_and_newcomer_catches_up(void **state)
{
	struct fixture *fx = *state;
	int i;

	kill_child(fx, 2, SIGKILL);
	for (i = 0; i < 6; i++)
		if (i != 2)
			assert_true(wait_count(fx, i, "M 5 leave 7102:", 1, 20));
	/* The founder goes too: the next oldest leads. */
	kill_child(fx, 0, SIGKILL);
	for (i = 1; i < 6; i++)
		if (i != 2)
			assert_true(wait_count(fx, i, "M 4 leave 7100:", 1, 20));
	start_child(fx, 6);
	for (i = 1; i < 7; i++)
		if (i != 2)
			assert_true(wait_count(fx, i, "M 5 join 7106:", 1, 20));
	send_cmd(fx, 6, OP_SEND, 1234, 9);
	send_cmd(fx, 1, OP_SEND, 4321, 10);
	for (i = 1; i < 7; i++)
		if (i != 2)
			assert_true(wait_count(fx, i, "D ", i == 6 ? 2 : 33, 20));
	assert_same_sequence(fx, 1, 3);
	assert_same_sequence(fx, 1, 4);
	assert_same_sequence(fx, 1, 5);
	assert_same_sequence(fx, 1, 6);
	/* A clean leave looks the same to the others as a crash. */
	kill_child(fx, 4, 0);
	for (i = 1; i < 7; i++)
		if (i != 2 && i != 4)
			assert_true(wait_count(fx, i, "M 4 leave 7104:", 1, 20));
	assert_same_sequence(fx, 1, 6);
}

static void test_many_joiners_at_once_agree(void **state)
{
	struct fixture *fx = *state;
	int i;

	for (i = 7; i < 11; i++)
		start_child(fx, i);
	for (i = 7; i < 11; i++)
		assert_true(wait_count(fx, i, "M 8 ", 1, 30));
	for (i = 7; i < 11; i++)
		send_cmd(fx, i, OP_SEND, 100 + (uint32_t)i, (uint32_t)i);
	for (i = 7; i < 11; i++)
		assert_true(wait_count(fx, i, "D ", 4, 20));
	assert_true(wait_count(fx, 1, "D ", 37, 20));
	for (i = 3; i < 11; i++)
		if (i != 4)
			assert_same_sequence(fx, 1, i);
}

#endif /* HAVE_COROSYNC */

/* Without corosync the driver must fail at init with the advice, not hang. */
static void test_init_without_corosync_says_start_corosync(void **state)
{
#if HAVE_COROSYNC
	static const struct cluster_events ev = { 0 };
	char path[] = "/tmp/test_cluster_corosync_log.XXXXXX";
	struct cluster_ctx *ctx = NULL;
	struct sd_node self = { .port = 1 };
	char buf[4096] = { 0 };
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sd_log_open(path, SD_LOG_INFO, "test"), 0);
	assert_int_equal(cluster_corosync_driver.init(&ctx, "", &self, &ev, NULL), -ECONNREFUSED);
	assert_null(ctx);
	sd_log_close();
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	unlink(path);
	assert_non_null(strstr(buf, "cannot connect to corosync: is corosync running? "
				    "(systemctl start corosync)"));
#else
	(void)state;
	skip();
#endif
}

static void test_bad_options_refused(void **state)
{
#if HAVE_COROSYNC
	static const struct cluster_events ev = { 0 };
	struct cluster_ctx *ctx = NULL;
	struct sd_node self = { .port = 1 };
	(void)state;
	assert_int_equal(cluster_corosync_driver.init(&ctx, "bogus=1", &self, &ev, NULL), -EINVAL);
	assert_null(ctx);
#else
	(void)state;
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(test_init_without_corosync_says_start_corosync),
		cmocka_unit_test(test_bad_options_refused),
	};
#if HAVE_COROSYNC
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_bad_options_refused),
		cmocka_unit_test(test_first_member_founds_and_sees_itself),
		cmocka_unit_test(test_joiners_and_concurrent_senders_see_one_order),
		cmocka_unit_test(test_one_mib_message_delivered_whole_and_larger_refused),
		cmocka_unit_test(test_killed_member_leaves_everywhere_and_newcomer_catches_up),
		cmocka_unit_test(test_many_joiners_at_once_agree),
	};
	struct cluster_ctx *probe = NULL;
	static const struct cluster_events none = { 0 };
	struct sd_node self = { .port = 1 };

	/* Is a corosync reachable? Probe quietly. */
	sd_log_open("/dev/null", SD_LOG_ERR, "probe");
	int ret = cluster_corosync_driver.init(&probe, "group=sdtest-probe", &self, &none, NULL);
	sd_log_close();
	if (ret == 0) {
		cluster_corosync_driver.destroy(probe);
		sd_log_open(getenv("SD_TEST_LOG"), SD_LOG_INFO, "test");
		return cmocka_run_group_tests_name("corosync running", live, setup, teardown);
	}
#endif
	return cmocka_run_group_tests_name("no corosync", offline, NULL, NULL);
}
