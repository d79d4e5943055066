/* test_cluster_local.c - unit tests of the local cluster driver: total order across processes, failure detection, restarts, compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"

/* What one member saw, one line per event. */
struct evlog {
	char *buf;
	size_t len, cap;
	size_t nr_members;
	int msgs, dones, joins, leaves;
	bool frozen; /* stop recording (a consistent cut) */
	int freeze_at_dones; /* >0: freeze on delivering this many "done"s */
	uint32_t msg_crc;
	struct sd_node last_changed;
	bool last_joined;
};

static void evlog_add(struct evlog *l, const char *line)
{
	if (l->frozen)
		return;
	size_t n = strlen(line);
	if (l->len + n + 1 > l->cap) {
		l->cap = (l->len + n + 1) * 2;
		l->buf = realloc(l->buf, l->cap);
	}
	memcpy(l->buf + l->len, line, n + 1);
	l->len += n;
}

static void node_str(const struct sd_node *n, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%u/%llu", n->addr, n->port, (unsigned long long)n->incarnation);
}

static void on_membership(void *arg, const struct sd_node *members, size_t nr,
			  const struct sd_node *changed, bool joined)
{
	struct evlog *l = arg;
	char line[4096], s[128];
	node_str(changed, s, sizeof(s));
	int o = snprintf(line, sizeof(line), "M%c %s [", joined ? '+' : '-', s);
	for (size_t i = 0; i < nr && o < (int)sizeof(line) - 200; i++) {
		node_str(&members[i], s, sizeof(s));
		o += snprintf(line + o, sizeof(line) - (size_t)o, "%s%s", i ? " " : "", s);
	}
	snprintf(line + o, sizeof(line) - (size_t)o, "]\n");
	evlog_add(l, line);
	l->nr_members = nr;
	l->last_changed = *changed;
	l->last_joined = joined;
	if (joined)
		l->joins++;
	else
		l->leaves++;
}

static void on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len)
{
	struct evlog *l = arg;
	char line[256], s[128];
	node_str(sender, s, sizeof(s));
	if (len < 100) {
		snprintf(line, sizeof(line), "D %s %.*s\n", s, (int)len, (const char *)msg);
	} else {
		snprintf(line, sizeof(line), "D %s %zu bytes crc %08x\n", s, len,
			 sd_crc32c(0, msg, len));
		l->msg_crc = sd_crc32c(l->msg_crc, msg, len);
	}
	evlog_add(l, line);
	if (len >= 4 && !memcmp(msg, "done", 4))
		l->dones++;
	else
		l->msgs++;
	/* Freeze here, not after dispatch returns: one dispatch may deliver the
	 * last done and then the leaves of members that already finished. */
	if (l->freeze_at_dones && l->dones == l->freeze_at_dones)
		l->frozen = true;
}

static const struct cluster_events events = {on_membership, on_deliver, NULL, NULL};
static const struct cluster_driver *drv = &cluster_local_driver;

static struct sd_node mknode(int port, uint64_t inc)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "127.0.0.1");
	n.port = (uint16_t)port;
	n.zone = (uint32_t)port;
	n.incarnation = inc;
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll the contexts for up to ms and dispatch what is ready. */
static void pump(struct cluster_ctx **c, int n, int ms)
{
	struct pollfd p[8];
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = drv->get_fd(c[i]), .events = POLLIN};
	if (poll(p, (nfds_t)n, ms) <= 0)
		return;
	for (int i = 0; i < n; i++)
		if (p[i].revents & POLLIN)
			drv->dispatch(c[i]);
}

#include "tests/unit/cluster_local_fixture.h"

/* In a forked member: die with the test, even when an assertion fails. */
static pid_t fork_member(void)
{
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return pid;
}

/* A member process: join, wait for nr members, send nmsgs, wait for all,
 * say done, wait for every done, write what it saw to out. */
static int member_main(const char *opts, int id, int nr, int nmsgs, const char *out)
{
	struct evlog l = {.freeze_at_dones = nr};
	struct cluster_ctx *c;
	struct sd_node self = mknode(21000 + id, (uint64_t)getpid());
	if (drv->init(&c, opts, &self, &events, &l) || drv->join(c))
		return 2;
	int sent = 0;
	bool said_done = false;
	uint64_t deadline = now_ms() + 30000;
	while (l.dones < nr) {
		if (now_ms() > deadline)
			return 3;
		pump(&c, 1, 20);
		if (l.nr_members == (size_t)nr && sent < nmsgs) {
			char m[64];
			snprintf(m, sizeof(m), "msg %d.%d", id, sent);
			if (drv->broadcast(c, m, strlen(m)))
				return 4;
			sent++;
		}
		if (l.msgs == nr * nmsgs && !said_done) {
			char m[16];
			snprintf(m, sizeof(m), "done %d", id);
			if (drv->broadcast(c, m, strlen(m)))
				return 5;
			said_done = true;
		}
		if (l.dones == nr)
			l.frozen = true;
	}
	FILE *fp = fopen(out, "w");
	if (!fp || fwrite(l.buf, 1, l.len, fp) != l.len || fclose(fp))
		return 6;
	drv->destroy(c);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void test_processes_see_one_order_of_joins_and_messages(void **state)
{
	struct fixture *f = *state;
	enum { NR = 4, NMSGS = 25 };
	pid_t pids[NR];
	char out[NR][128];
	for (int i = 0; i < NR; i++) {
		snprintf(out[i], sizeof(out[i]), "%s/out.%d", f->dir, i);
		pids[i] = fork_member();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(member_main(f->opts, i, NR, NMSGS, out[i]));
		usleep(20000 * (useconds_t)i);
	}
	for (int i = 0; i < NR; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	char *logs[NR], first[NR][160];
	for (int i = 0; i < NR; i++) {
		logs[i] = slurp(out[i]);
		assert_non_null(logs[i]);
		/* a member's first event is its own join, listing itself last */
		assert_true(!strncmp(logs[i], "M+ ", 3));
		size_t n = strcspn(logs[i], "\n");
		snprintf(first[i], sizeof(first[i]), "%.*s", (int)n, logs[i]);
		/* every message of every sender, own included */
		int d = 0;
		for (char *p = logs[i]; (p = strstr(p, "\nD ")); p++)
			d++;
		assert_int_equal(d, NR * NMSGS + NR);
		/* FIFO per sender */
		for (int s = 0; s < NR; s++) {
			char *prev = logs[i];
			for (int j = 0; j < NMSGS; j++) {
				char m[32];
				snprintf(m, sizeof(m), " msg %d.%d\n", s, j);
				char *at = strstr(logs[i], m);
				assert_non_null(at);
				assert_true(at >= prev);
				prev = at;
			}
		}
	}
	/* Virtual synchrony: from the moment j joins, i saw exactly what j saw. */
	for (int i = 0; i < NR; i++) {
		for (int j = 0; j < NR; j++) {
			if (i == j)
				continue;
			char *at = strstr(logs[i], first[j]);
			char *back = strstr(logs[j], first[i]);
			assert_true((at != NULL) != (back != NULL));
			if (at)
				assert_string_equal(at, logs[j]);
		}
	}
	for (int i = 0; i < NR; i++)
		free(logs[i]);
}

static bool saw(struct evlog *l, int joins, int leaves)
{
	return l->joins >= joins && l->leaves >= leaves;
}

/* A member that joins and then only dispatches, until it is killed. */
static void idle_member(const char *opts, int port, uint64_t inc)
{
	struct evlog l = {0};
	struct cluster_ctx *c;
	struct sd_node self = mknode(port, inc);
	if (drv->init(&c, opts, &self, &events, &l) || drv->join(c))
		_exit(2);
	for (;;)
		pump(&c, 1, 100);
}

static void test_killed_member_leaves_within_a_second(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0}, lc = {0};
	struct cluster_ctx *c[2];
	struct sd_node a = mknode(22001, 1), cc = mknode(22003, 1);
	assert_int_equal(drv->init(&c[0], f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->init(&c[1], f->opts, &cc, &events, &lc), 0);
	assert_int_equal(drv->join(c[0]), 0);
	assert_int_equal(drv->join(c[1]), 0);
	pid_t b = fork_member();
	assert_true(b >= 0);
	if (b == 0)
		idle_member(f->opts, 22002, 7);
	uint64_t deadline = now_ms() + 5000;
	while (!(saw(&la, 3, 0) && saw(&lc, 2, 0)) && now_ms() < deadline)
		pump(c, 2, 50);
	assert_true(la.nr_members == 3 && lc.nr_members == 3);

	kill(b, SIGKILL);
	uint64_t t0 = now_ms();
	waitpid(b, NULL, 0);
	while (!(saw(&la, 3, 1) && saw(&lc, 2, 1)) && now_ms() < t0 + 5000)
		pump(c, 2, 20);
	uint64_t took = now_ms() - t0;
	print_message("# leave of a SIGKILLed member delivered after %llu ms\n",
		      (unsigned long long)took);
	assert_true(took < 1500);
	assert_int_equal(la.nr_members, 2);
	assert_int_equal(la.last_changed.port, 22002);
	assert_false(la.last_joined);
	assert_int_equal(lc.nr_members, 2);
	/* exactly one LEAVE, though two members noticed */
	pump(c, 2, 500);
	assert_int_equal(la.leaves, 1);
	assert_int_equal(lc.leaves, 1);
	/* the same story from c's join on */
	char *at = strstr(la.buf, "M+ 127.0.0.1:22003/1");
	assert_non_null(at);
	assert_string_equal(at, lc.buf);

	/* a graceful leave is delivered too, and then messages reach only a */
	assert_int_equal(drv->leave(c[1]), 0);
	while (!saw(&la, 3, 2) && now_ms() < t0 + 10000)
		pump(c, 2, 20);
	assert_int_equal(la.nr_members, 1);
	assert_int_equal(drv->broadcast(c[1], "x", 1), -ENOTCONN);
	drv->destroy(c[0]);
	drv->destroy(c[1]);
	free(la.buf);
	free(lc.buf);
}

static void test_restarted_member_leaves_before_it_rejoins(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0};
	struct cluster_ctx *c;
	struct sd_node a = mknode(23001, 1);
	assert_int_equal(drv->init(&c, f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->join(c), 0);
	pid_t b = fork_member();
	if (b == 0)
		idle_member(f->opts, 23002, 100);
	uint64_t deadline = now_ms() + 5000;
	while (!saw(&la, 2, 0) && now_ms() < deadline)
		pump(&c, 1, 50);
	assert_int_equal(la.nr_members, 2);
	/* kill and restart at once, before the failure detector runs here */
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	pid_t b2 = fork_member();
	if (b2 == 0)
		idle_member(f->opts, 23002, 101);
	while (!saw(&la, 3, 1) && now_ms() < deadline)
		pump(&c, 1, 50);
	assert_int_equal(la.nr_members, 2);
	const char *want = "M- 127.0.0.1:23002/100 [127.0.0.1:23001/1]\n"
			   "M+ 127.0.0.1:23002/101 [127.0.0.1:23001/1 127.0.0.1:23002/101]\n";
	assert_non_null(strstr(la.buf, want));
	/* a second live sheep on the same addr:port is refused */
	struct evlog ld = {0};
	struct cluster_ctx *d;
	struct sd_node dup = mknode(23002, 102);
	assert_int_equal(drv->init(&d, f->opts, &dup, &events, &ld), 0);
	assert_int_equal(drv->join(d), -EADDRINUSE);
	drv->destroy(d);
	kill(b2, SIGKILL);
	waitpid(b2, NULL, 0);
	drv->destroy(c);
	free(la.buf);
}

/* A reaper (another member's failure detector) holds the dead former
 * self's member file locked while it waits for the log lock: the restarted
 * sheep's join must wait it out, not take the dead self for a live one. */
static void test_restarted_member_joins_while_a_reaper_holds_its_dead_self(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0};
	struct cluster_ctx *c;
	struct sd_node a = mknode(24001, 1);
	assert_int_equal(drv->init(&c, f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->join(c), 0);
	pid_t b = fork_member();
	if (b == 0)
		idle_member(f->opts, 24002, 100);
	uint64_t deadline = now_ms() + 5000;
	while (!saw(&la, 2, 0) && now_ms() < deadline)
		pump(&c, 1, 50);
	assert_int_equal(la.nr_members, 2);
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	/* the dead member's file, locked by a "reaper" for 400 ms */
	char shared[300], path[700] = "";
	snprintf(shared, sizeof(shared), "%s/shared", f->dir);
	DIR *d = opendir(shared);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));)
		if (!strncmp(de->d_name, "m.", 2) && strstr(de->d_name, "24002"))
			snprintf(path, sizeof(path), "%s/%s", shared, de->d_name);
	closedir(d);
	assert_true(path[0]);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t r = fork_member();
	if (r == 0) {
		int fd = open(path, O_RDONLY);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB))
			_exit(3);
		if (write(pfd[1], "x", 1) != 1)
			_exit(4);
		usleep(400000);
		_exit(0);
	}
	char ch;
	assert_int_equal(read(pfd[0], &ch, 1), 1);
	struct evlog lb = {0};
	struct cluster_ctx *b2;
	struct sd_node nb = mknode(24002, 101);
	assert_int_equal(drv->init(&b2, f->opts, &nb, &events, &lb), 0);
	uint64_t t0 = now_ms();
	assert_int_equal(drv->join(b2), 0);
	print_message("# join waited %llu ms for the reaper\n", (unsigned long long)(now_ms() - t0));
	int st;
	waitpid(r, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	while (!saw(&la, 3, 1) && now_ms() < deadline + 5000)
		pump(&c, 1, 50);
	assert_int_equal(la.nr_members, 2);
	assert_non_null(strstr(la.buf, "M- 127.0.0.1:24002/100"));
	assert_non_null(strstr(la.buf, "M+ 127.0.0.1:24002/101"));
	close(pfd[0]);
	close(pfd[1]);
	drv->destroy(b2);
	drv->destroy(c);
	free(la.buf);
	free(lb.buf);
}

/* Every member SIGKILLed at once leaves its member file behind (no LEAVE).
 * The first sheep to come back must find itself alone at its own JOIN,
 * whoever restarts next and however late the timers run: a JOIN listing
 * dead members made two restarted sheep each wait for a snapshot from the
 * other (neither alone, neither synced; 022 under load). A joiner buries
 * every dead member, not only its own former self, before its JOIN. */
static void test_after_everyone_was_killed_the_first_back_is_alone(void **state)
{
	struct fixture *f = *state;
	struct evlog old[3] = {{0}};
	struct cluster_ctx *c[3];
	for (int i = 0; i < 3; i++) {
		struct sd_node n = mknode(26001 + i, 1);
		assert_int_equal(drv->init(&c[i], f->opts, &n, &events, &old[i]), 0);
		assert_int_equal(drv->join(c[i]), 0);
	}
	uint64_t deadline = now_ms() + 5000;
	while (!(old[0].nr_members == 3 && old[2].nr_members == 3) && now_ms() < deadline)
		pump(c, 3, 20);
	assert_int_equal(old[0].nr_members, 3);
	/* the power goes: every fd closed, no LEAVE, member files stay */
	for (int i = 0; i < 3; i++) {
		drv->destroy(c[i]);
		free(old[i].buf);
	}
	/* two sheep come back and both join before either dispatches */
	struct evlog l[2] = {{0}};
	struct cluster_ctx *n2[2];
	for (int i = 0; i < 2; i++) {
		struct sd_node n = mknode(26001 + i, 2);
		assert_int_equal(drv->init(&n2[i], f->opts, &n, &events, &l[i]), 0);
		assert_int_equal(drv->join(n2[i]), 0);
	}
	/* one dispatch each, before any timer tick can bury anything */
	assert_int_equal(drv->dispatch(n2[0]), 0);
	assert_int_equal(drv->dispatch(n2[1]), 0);
	assert_non_null(l[0].buf);
	assert_non_null(l[1].buf);
	assert_string_equal(l[0].buf, "M+ 127.0.0.1:26001/2 [127.0.0.1:26001/2]\n"
				      "M+ 127.0.0.1:26002/2 [127.0.0.1:26001/2 127.0.0.1:26002/2]\n");
	assert_string_equal(l[1].buf,
			    "M+ 127.0.0.1:26002/2 [127.0.0.1:26001/2 127.0.0.1:26002/2]\n");
	/* and nothing more comes: the dead left before anyone joined */
	pump(n2, 2, 500);
	assert_int_equal(l[0].leaves + l[1].leaves, 0);
	for (int i = 0; i < 2; i++) {
		drv->destroy(n2[i]);
		free(l[i].buf);
	}
}

static void test_log_is_compacted_and_late_joiner_gets_members(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0}, lb = {0}, lc = {0};
	struct cluster_ctx *c[3];
	struct sd_node a = mknode(24001, 1), b = mknode(24002, 1), cn = mknode(24003, 1);
	assert_int_equal(drv->init(&c[0], f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->init(&c[1], f->opts, &b, &events, &lb), 0);
	assert_int_equal(drv->join(c[0]), 0);
	assert_int_equal(drv->join(c[1]), 0);
	const size_t len = 64 * 1024;
	uint8_t *m = malloc(len);
	uint32_t sent_crc = 0;
	char path[160];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/shared/log", f->dir);
	/* Nobody dispatches while the 40 go in. Reading between sends let a
	 * timer tick compact the log mid-loop once it passed 1 MiB and both
	 * had read it all; what followed (under 1 MiB) was then rightly never
	 * compacted, and the wait below timed out (ASan under load: the first
	 * compaction at message 34 left 394,240 bytes). Compaction needs every
	 * member at the end, so now it can only come after the last send. */
	for (int i = 0; i < 40; i++) {
		for (size_t k = 0; k < len; k++)
			m[k] = (uint8_t)(i * 7 + k * 13 + (k >> 9));
		assert_int_equal(drv->broadcast(c[i % 2], m, len), 0);
		sent_crc = sd_crc32c(sent_crc, m, len);
	}
	assert_int_equal(stat(path, &sb), 0);
	off_t grown = sb.st_size;
	uint64_t deadline = now_ms() + 5000;
	while ((la.msgs < 40 || lb.msgs < 40) && now_ms() < deadline)
		pump(c, 2, 20);
	assert_int_equal(la.msgs, 40);
	assert_true(la.msg_crc == sent_crc && lb.msg_crc == sent_crc);
	/* the messages went through the log: it held all 40 at once */
	assert_true(grown > 40 * 64 * 1024);
	/* the timer compacts once both have read everything */
	deadline = now_ms() + 3000;
	while (stat(path, &sb) == 0 && sb.st_size > 4096 && now_ms() < deadline)
		pump(c, 2, 50);
	assert_true(sb.st_size <= 4096);
	/* a late joiner learns the members from the compacted log, oldest first */
	assert_int_equal(drv->init(&c[2], f->opts, &cn, &events, &lc), 0);
	assert_int_equal(drv->join(c[2]), 0);
	while (!(saw(&lc, 1, 0) && saw(&la, 3, 0) && saw(&lb, 2, 0)) && now_ms() < deadline + 3000)
		pump(c, 3, 20);
	assert_string_equal(lc.buf, "M+ 127.0.0.1:24003/1 [127.0.0.1:24001/1 127.0.0.1:24002/1 "
				    "127.0.0.1:24003/1]\n");
	assert_non_null(strstr(la.buf, lc.buf));
	/* and the log still carries messages */
	assert_int_equal(drv->broadcast(c[2], "after", 5), 0);
	while (lb.msgs < 41 && now_ms() < deadline + 6000)
		pump(c, 3, 20);
	assert_non_null(strstr(lb.buf, "D 127.0.0.1:24003/1 after\n"));
	for (int i = 0; i < 3; i++)
		drv->destroy(c[i]);
	free(m);
	free(la.buf);
	free(lb.buf);
	free(lc.buf);
}

static void test_bad_options_and_calls_fail_cleanly(void **state)
{
	struct fixture *f = *state;
	struct evlog l = {0};
	struct cluster_ctx *c;
	struct sd_node a = mknode(25001, 1);
	assert_int_equal(drv->init(&c, "bogus=1", &a, &events, &l), -EINVAL);
	assert_int_equal(drv->init(&c, "path=", &a, &events, &l), -EINVAL);
	assert_int_equal(drv->init(&c, f->opts, &a, &events, &l), 0);
	assert_int_equal(drv->broadcast(c, "x", 1), -ENOTCONN);
	assert_int_equal(drv->leave(c), -ENOTCONN);
	assert_int_equal(drv->join(c), 0);
	assert_int_equal(drv->join(c), -EALREADY);
	assert_int_equal(drv->broadcast(c, "x", CLUSTER_MAX_MSG + 1), -EMSGSIZE);
	pump(&c, 1, 100);
	assert_int_equal(l.joins, 1);
	/* the shared log removed under a member: dispatch reports it, no misreads */
	char logp[160];
	snprintf(logp, sizeof(logp), "%s/shared/log", f->dir);
	assert_int_equal(unlink(logp), 0);
	assert_int_equal(drv->broadcast(c, "y", 1), 0);
	assert_int_equal(drv->dispatch(c), -EIO);
	assert_int_equal(l.msgs, 0);
	drv->destroy(c);
	/* a path that is a file (Sheepdog's shm file) means PATH.d */
	char file[128], opts[160];
	snprintf(file, sizeof(file), "%s/shm", f->dir);
	fclose(fopen(file, "w"));
	snprintf(opts, sizeof(opts), "path=%s", file);
	assert_int_equal(drv->init(&c, opts, &a, &events, &l), 0);
	assert_int_equal(drv->join(c), 0);
	struct stat sb;
	snprintf(file, sizeof(file), "%s/shm.d/log", f->dir);
	assert_int_equal(stat(file, &sb), 0);
	drv->destroy(c);
	free(l.buf);

	assert_ptr_equal(cluster_driver_find("local"), &cluster_local_driver);
	assert_ptr_equal(cluster_driver_find("local:path=/x"), &cluster_local_driver);
	assert_null(cluster_driver_find("loc"));
	assert_null(cluster_driver_find("nope:local"));
	assert_null(cluster_driver_find(NULL));
	assert_string_equal(cluster_driver_options("local:path=/x"), "path=/x");
	assert_string_equal(cluster_driver_options("local"), "");
}

/* The oldest member is the one that probes every file each tick; the
 * others probe only it. Its own death must still be noticed at once. */
static void test_killed_oldest_member_leaves_within_a_second(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0}, lc = {0};
	struct cluster_ctx *c[2];
	pid_t old = fork_member();
	assert_true(old >= 0);
	if (old == 0)
		idle_member(f->opts, 26001, 3);
	struct sd_node a = mknode(26002, 1), cc = mknode(26003, 1);
	assert_int_equal(drv->init(&c[0], f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->init(&c[1], f->opts, &cc, &events, &lc), 0);
	/* the forked member must be in the log before us: it is the oldest */
	char logp[160];
	struct stat sb;
	snprintf(logp, sizeof(logp), "%s/shared/log", f->dir);
	for (uint64_t t = now_ms(); now_ms() < t + 5000;) {
		if (stat(logp, &sb) == 0 && sb.st_size > 64)
			break;
		usleep(10000);
	}
	assert_int_equal(drv->join(c[0]), 0);
	assert_int_equal(drv->join(c[1]), 0);
	uint64_t deadline = now_ms() + 5000;
	while (!(la.nr_members == 3 && lc.nr_members == 3) && now_ms() < deadline)
		pump(c, 2, 50);
	assert_int_equal(la.nr_members, 3);
	assert_int_equal(lc.nr_members, 3);
	assert_non_null(strstr(la.buf, "[127.0.0.1:26001/3 127.0.0.1:26002/1]"));

	kill(old, SIGKILL);
	uint64_t t0 = now_ms();
	waitpid(old, NULL, 0);
	/* a delivered its own join (the oldest already listed) and c's */
	while (!(saw(&la, 2, 1) && saw(&lc, 1, 1)) && now_ms() < t0 + 5000)
		pump(c, 2, 20);
	uint64_t took = now_ms() - t0;
	print_message("# leave of the SIGKILLed oldest member delivered after %llu ms\n",
		      (unsigned long long)took);
	assert_true(took < 1500);
	assert_int_equal(la.nr_members, 2);
	assert_int_equal(la.last_changed.port, 26001);
	assert_int_equal(lc.nr_members, 2);
	drv->destroy(c[0]);
	drv->destroy(c[1]);
	free(la.buf);
	free(lc.buf);
}

/* A member rewriting its read position must not wake the others: that was
 * N wake-ups of N members per record (O(N^2)), and their shared flocks
 * kept a joiner's exclusive one waiting. After b's message, a reads it and
 * publishes its position; b, already drained, must not be readable. The
 * 200 ms failure-detection timer may wake b by chance, so one clean try in
 * ten is enough; the old driver woke b every time. */
static void test_read_position_updates_wake_no_member(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0}, lb = {0};
	struct cluster_ctx *c[2];
	struct sd_node a = mknode(27001, 1), b = mknode(27002, 1);
	assert_int_equal(drv->init(&c[0], f->opts, &a, &events, &la), 0);
	assert_int_equal(drv->init(&c[1], f->opts, &b, &events, &lb), 0);
	assert_int_equal(drv->join(c[0]), 0);
	assert_int_equal(drv->join(c[1]), 0);
	uint64_t deadline = now_ms() + 5000;
	while (!(la.nr_members == 2 && lb.nr_members == 2) && now_ms() < deadline)
		pump(c, 2, 50);
	assert_int_equal(la.nr_members, 2);
	int quiet = 0;
	for (int i = 0; i < 10; i++) {
		int msgs = la.msgs;
		assert_int_equal(drv->broadcast(c[1], "m", 1), 0);
		assert_int_equal(drv->dispatch(c[1]), 0); /* b reads its own message */
		struct pollfd pa = {.fd = drv->get_fd(c[0]), .events = POLLIN};
		assert_int_equal(poll(&pa, 1, 2000), 1); /* the append woke a */
		assert_int_equal(drv->dispatch(c[0]), 0);
		assert_int_equal(la.msgs, msgs + 1);
		struct pollfd pb = {.fd = drv->get_fd(c[1]), .events = POLLIN};
		quiet += poll(&pb, 1, 0) == 0;
		pump(c, 2, 0);
	}
	print_message("# b not woken by a's position update in %d of 10 tries\n", quiet);
	assert_true(quiet >= 1);
	drv->destroy(c[0]);
	drv->destroy(c[1]);
	free(la.buf);
	free(lb.buf);
}

/* fs.inotify.max_user_instances is per user (128 by default) and shared
 * with everything else the user runs. A sheep that cannot get an instance
 * polls the log instead, and still sees messages, joins and leaves. The
 * EMFILE is made here by a process file limit with four fds free (dir,
 * lock, timer, epoll: what init opens before inotify). */
static void test_member_without_inotify_polls_the_log(void **state)
{
	struct fixture *f = *state;
	struct evlog la = {0}, lb = {0};
	struct cluster_ctx *c[2];
	struct sd_node a = mknode(28001, 1), b = mknode(28002, 1);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	int fill[64], nfill = 0;
	while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		nfill++;
	assert_true(nfill >= 4 && nfill < 64);
	for (int i = 0; i < 4; i++)
		close(fill[--nfill]);
	int r = drv->init(&c[0], f->opts, &a, &events, &la);
	while (nfill)
		close(fill[--nfill]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(r, 0);
	assert_true(cluster_local_polling(c[0]));
	assert_int_equal(drv->init(&c[1], f->opts, &b, &events, &lb), 0);
	assert_false(cluster_local_polling(c[1]));

	assert_int_equal(drv->join(c[0]), 0);
	assert_int_equal(drv->join(c[1]), 0);
	assert_int_equal(drv->broadcast(c[1], "from b", 6), 0);
	assert_int_equal(drv->broadcast(c[0], "from a", 6), 0);
	uint64_t deadline = now_ms() + 5000;
	while (!(la.msgs == 2 && lb.msgs == 2) && now_ms() < deadline)
		pump(c, 2, 20);
	assert_int_equal(la.nr_members, 2);
	assert_int_equal(la.msgs, 2);
	assert_int_equal(lb.msgs, 2);
	/* one order for both, from b's join on */
	char *at = strstr(la.buf, "M+ 127.0.0.1:28002/1");
	assert_non_null(at);
	assert_string_equal(at, lb.buf);
	assert_non_null(strstr(la.buf, "D 127.0.0.1:28002/1 from b\nD 127.0.0.1:28001/1 from a\n"));
	/* a graceful leave reaches the polling member */
	assert_int_equal(drv->leave(c[1]), 0);
	while (!saw(&la, 2, 1) && now_ms() < deadline + 5000)
		pump(c, 1, 20);
	assert_int_equal(la.nr_members, 1);
	assert_int_equal(la.last_changed.port, 28002);
	drv->destroy(c[0]);
	drv->destroy(c[1]);
	free(la.buf);
	free(lb.buf);
}

int main(void)
{
	sd_log_set_level(SD_LOG_ERR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_processes_see_one_order_of_joins_and_messages,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_member_leaves_within_a_second, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restarted_member_leaves_before_it_rejoins,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restarted_member_joins_while_a_reaper_holds_its_dead_self,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_after_everyone_was_killed_the_first_back_is_alone,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_is_compacted_and_late_joiner_gets_members,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options_and_calls_fail_cleanly, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_killed_oldest_member_leaves_within_a_second,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_position_updates_wake_no_member, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_member_without_inotify_polls_the_log, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
