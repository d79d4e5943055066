/* main.c - the sheep daemon: options, store directory lock, daemonizing, event loop start and clean
 * stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/version.h"
#include "sheep/gateway/gateway.h"
#include "sheep/http/http.h"
#include "sheep/scrub/scrub.h"
#include "sheep/metrics/metrics.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/store/capacity.h"
#include "sheep/sheep.h"
#include "sheep/server/server.h"
#include "sheep/cluster/ring.h"
#include "sheep/cluster/cluster.h"
#include "sheep/store/store.h"
#include "sheep/nbd/nbd.h"
#include "sheep/snap/snap.h"

#define DEFAULT_VNODES 128

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: sheep [OPTION]... DIR[,DISK...]\n"
	    "Run a sheep: one node of a cluster, storing object fragments under DIR/obj\n"
	    "(or spread over the DISK directories by capacity: Sheepdog's multi-disk)\n"
	    "and serving the Sheepdog protocol on a TCP port.\n"
	    "\n"
	    "  -p, --port PORT         Sheepdog protocol port (default 7000)\n"
	    "  -b, --bindaddr ADDR     listen on ADDR only (default: every address)\n"
	    "  -y, --myaddr ADDR       address other sheep and clients use to reach this one\n"
	    "                          (default: the -b address, else the first non-loopback one)\n"
	    "  -z, --zone N            failure domain (default: derived from the address);\n"
	    "                          fragments of one object go to distinct zones\n"
	    "  -c, --cluster DRIVER[:OPTS]\n"
	    "                          membership driver, built in: %s\n"
	    "                            local (default): OPTS path=DIR, the rendezvous of\n"
	    "                              sheep on this machine\n"
	    "                            corosync: OPTS group=NAME (CPG group, default sheepdog)\n"
	    "                            zookeeper: OPTS HOST:PORT[,HOST:PORT...][,timeout=MS]\n"
	    "                              [,path=/NAME] (session timeout, default 5000; znode\n"
	    "                              of this cluster, default /sheepdog)\n"
	    "  -g, --gateway           gateway only: serve requests, store nothing\n"
	    "  -V, --vnodes N          fixed number of virtual nodes in the ring (default: from\n"
	    "                          the capacity, %d for a node of average size)\n"
	    "  -f, --foreground        stay in the foreground (default: daemonize, write\n"
	    "                          DIR/sheep.pid)\n"
	    "  -l, --log level=LEVEL[,dir=DIR]\n"
	    "                          log level (emerg..debug or 0..7, default info) and\n"
	    "                          directory of sheep.log (default DIR)\n"
	    "  -n, --nosync            do not sync writes to disk (tests only: a crash loses "
	    "data)\n"
	    "  -j, --journal dir=PATH[,size=N]\n"
	    "                          put the write-ahead log (wal.0, wal.1) in PATH, e.g. on\n"
	    "                          another device (default DIR); N bytes for it, suffix\n"
	    "                          K/M/G allowed (default 256M, at least 160M)\n"
	    "      --nbd PORT|off      NBD export port (default 10809; when the default port\n"
	    "                          is taken, e.g. by another sheep on this host, the sheep\n"
	    "                          warns and runs without NBD; an explicit PORT must bind)\n"
	    "  -t, --threads N         gateway worker threads (default 16)\n"
	    "  -R, --recovery max=N,interval=MS\n"
	    "                          recovery throttle: at most N fragments in flight (default "
	    "4),\n"
	    "                          a freed slot waits MS ms before reuse (default 0)\n"
	    "  -h, --help              this help\n"
	    "      --http PORT         serve a read-only dashboard (/), Prometheus metrics\n"
	    "                          (/metrics) and JSON (/api/status) on PORT (default off;\n"
	    "                          a busy PORT only warns)\n"
	    "  -s, --size SIZE         capacity this sheep offers (ring weight, dog node info):\n"
	    "                          bytes with K/M/G/T, or a bare number of MiB; default:\n"
	    "                          the size of DIR's filesystem. Give it when sheep share\n"
	    "                          a filesystem, so their sizes add up to the disk\n"
	    "      --scrub off|rate=BYTES,pause=SECONDS\n"
	    "                          background scrub: verify every local fragment's\n"
	    "                          checksums at most BYTES per second (K/M/G allowed;\n"
	    "                          default 4M), resting SECONDS between passes (default\n"
	    "                          3600); bad fragments are rebuilt (dog cluster scrub)\n"
	    "  -v, --version           print the version and exit\n"
	    "\n"
	    "A second sheep on the same DIR is refused. Example (six sheep on one machine):\n"
	    "  for i in 0 1 2 3 4 5; do sheep /var/lib/sheep/$i -z $i -p $((7000+i)) \\\n"
	    "      -c local -n -y 127.0.0.1 --nbd $((10809+i)); done\n",
	    cluster_driver_names(), DEFAULT_VNODES);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* -j dir=PATH[,size=N]: where the write-ahead log lives, and its budget. */
static int parse_journal(struct sheep_opts *o, char *arg)
{
	char *save = NULL;
	for (char *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "dir=", 4) && tok[4]) {
			o->wal_dir = tok + 4;
		} else if (!strncmp(tok, "size=", 5)) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(tok + 5, &end, 10);
			int shift = 0;
			switch (*end) {
			case 'k':
			case 'K':
				shift = 10;
				end++;
				break;
			case 'm':
			case 'M':
				shift = 20;
				end++;
				break;
			case 'g':
			case 'G':
				shift = 30;
				end++;
				break;
			}
			if (errno || end == tok + 5 || *end || v > (1ull << 40) >> shift)
				return -EINVAL;
			o->wal_size = (uint64_t)v << shift;
			if (o->wal_size < (160ull << 20))
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_log(struct sheep_opts *o, char *arg)
{
	char *save = NULL;
	for (char *tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "level=", 6)) {
			int l = sd_log_level_parse(tok + 6);
			if (l < 0)
				return -EINVAL;
			o->log_level = l;
		} else if (!strncmp(tok, "dir=", 4)) {
			o->log_dir = tok + 4;
		} else {
			int l = sd_log_level_parse(tok);
			if (l < 0)
				return -EINVAL;
			o->log_level = l;
		}
	}
	return 0;
}

/*
 * Fill o from the command line (sheep(8)). Guarantees: 0 with every option
 * checked (ranges, formats), or -1 after printing what was wrong; nothing
 * is started or opened here.
 */
static int parse_args(int argc, char **argv, struct sheep_opts *o)
{
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"bindaddr", required_argument, NULL, 'b'},
	    {"myaddr", required_argument, NULL, 'y'},
	    {"zone", required_argument, NULL, 'z'},
	    {"cluster", required_argument, NULL, 'c'},
	    {"gateway", no_argument, NULL, 'g'},
	    {"vnodes", required_argument, NULL, 'V'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"log", required_argument, NULL, 'l'},
	    {"nosync", no_argument, NULL, 'n'},
	    {"journal", required_argument, NULL, 'j'},
	    {"nbd", required_argument, NULL, 'N'},
	    {"threads", required_argument, NULL, 't'},
	    {"recovery", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'v'},
	    {"size", required_argument, NULL, 's'},
	    {"http", required_argument, NULL, 'H'},
	    {"scrub", required_argument, NULL, 0x101},
	    {"disk-space", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	o->port = SD_LISTEN_PORT;
	o->log_level = SD_LOG_INFO;
	o->nbd_port = SD_NBD_PORT;
	o->threads = 16;
	o->cluster = "local";
	unsigned long v;
	int c;
	while ((c = getopt_long(argc, argv, "p:b:y:z:c:gV:fl:nj:t:R:hvs:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(stderr, "sheep: invalid port '%s' (1..65535)\n", optarg);
				return -1;
			}
			o->port = (uint16_t)v;
			break;
		case 'b':
			o->bind_addr = optarg;
			break;
		case 'y':
			if (strlen(optarg) >= 64) {
				fprintf(stderr, "sheep: address '%s' is too long\n", optarg);
				return -1;
			}
			o->advertise = optarg;
			break;
		case 'z':
			if (parse_uint(optarg, UINT32_MAX, &v)) {
				fprintf(stderr, "sheep: invalid zone '%s' (0..4294967295)\n",
					optarg);
				return -1;
			}
			o->zone = (uint32_t)v;
			o->zone_set = true;
			break;
		case 'c':
			o->cluster = optarg;
			break;
		case 'g':
			if (o->vnodes) {
				fprintf(stderr,
					"Options '-g' and '-V' can not be both specified\n");
				return -1;
			}
			o->gateway = true;
			break;
		case 'V':
			if (o->gateway) {
				fprintf(stderr,
					"Options '-g' and '-V' can not be both specified\n");
				return -1;
			}
			if (parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(
				    stderr,
				    "Invalid number of vnodes '%s': must be an integer between 1 "
				    "and %u\n",
				    optarg, UINT16_MAX);
				return -1;
			}
			o->vnodes = (uint16_t)v;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'l':
			if (parse_log(o, optarg)) {
				fprintf(stderr,
					"sheep: invalid log option '%s' (level=emerg|alert|crit|"
					"err|warning|notice|info|debug[,dir=DIR])\n",
					optarg);
				return -1;
			}
			break;
		case 'n':
			o->nosync = true;
			break;
		case 'j':
			if (parse_journal(o, optarg)) {
				fprintf(
				    stderr,
				    "sheep: invalid journal option '%s' (dir=PATH[,size=N[K|M|G]], "
				    "size at least 160M)\n",
				    optarg);
				return -1;
			}
			break;
		case 'N':
			if (!strcmp(optarg, "off")) {
				o->nbd_port = -1;
			} else if (parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(stderr, "sheep: invalid NBD port '%s' (1..65535 or off)\n",
					optarg);
				return -1;
			} else {
				o->nbd_port = (int)v;
			}
			o->nbd_explicit = true;
			break;
		case 't':
			if (parse_uint(optarg, 256, &v) || v == 0) {
				fprintf(stderr, "sheep: invalid thread count '%s' (1..256)\n",
					optarg);
				return -1;
			}
			o->threads = (int)v;
			break;
		case 'R': /* recovery hook */
			if (sheep_recovery_parse(optarg, &o->recovery)) {
				fprintf(stderr,
					"sheep: bad -R '%s': want max=N (1..1024),interval=MS\n",
					optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'H':
			if (parse_uint(optarg, 65535, &v) || v == 0) {
				fprintf(stderr, "sheep: invalid HTTP port '%s' (1..65535)\n",
					optarg);
				return -1;
			}
			o->http_port = (int)v;
			break;
		case 's': {
			/* Sheepdog's -s took megabytes: a bare number still does. */
			char *end;
			errno = 0;
			unsigned long long mb = strtoull(optarg, &end, 10);
			uint64_t bytes;
			if (optarg[0] != '-' && !errno && end != optarg && !*end && mb &&
			    mb <= UINT64_MAX >> 20) {
				o->size = (uint64_t)mb << 20;
			} else if (sd_parse_size(optarg, &bytes) == 0 && bytes >= (1u << 20)) {
				o->size = bytes;
			} else {
				fprintf(stderr,
					"sheep: invalid size '%s' (MiB, or with K/M/G/T; at least "
					"1M)\n",
					optarg);
				return -1;
			}
			break;
		}
		case 0x101: {
			struct sheep_scrub_opts so = {0};
			if (sheep_scrub_parse(optarg, &so)) {
				fprintf(stderr,
					"sheep: bad --scrub '%s': want off, or "
					"rate=BYTES[K|M|G],pause=SECONDS\n",
					optarg);
				return -1;
			}
			o->scrub = optarg;
			break;
		}
		case 'v':
			printf("sheep (sheepdog-ec) %s\n", sd_version());
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "sheep: %s\n",
			optind >= argc ? "missing store directory DIR" : "too many arguments");
		usage(stderr);
		return -1;
	}
	/* DIR,DISK1,DISK2 (Sheepdog's): DIR keeps the log and the node's
	 * state, the fragments spread over the disks (store_md.c). */
	char *spec = strdup(argv[optind]);
	if (!spec)
		return -1;
	o->spec_buf = spec;
	char *save = NULL, *tok = strtok_r(spec, ",", &save);
	if (!tok || !*tok) {
		fprintf(stderr, "sheep: missing store directory DIR\n");
		return -1;
	}
	o->dir = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (o->nr_md_disks == (int)(sizeof(o->md_disks) / sizeof(o->md_disks[0]))) {
			fprintf(stderr, "sheep: at most %zu disks\n",
				sizeof(o->md_disks) / sizeof(o->md_disks[0]));
			return -1;
		}
		o->md_disks[o->nr_md_disks++] = tok;
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void pick_address(const struct sheep_opts *o, char *out, size_t len)
{
	if (o->advertise) {
		snprintf(out, len, "%s", o->advertise);
		return;
	}
	if (o->bind_addr && strcmp(o->bind_addr, "0.0.0.0") && strcmp(o->bind_addr, "::")) {
		snprintf(out, len, "%s", o->bind_addr);
		return;
	}
	snprintf(out, len, "127.0.0.1");
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa))
		return;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct sockaddr_in *sin = (struct sockaddr_in *)(void *)i->ifa_addr;
		if (ntohl(sin->sin_addr.s_addr) >> 24 == 127)
			continue;
		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)len);
		break;
	}
	freeifaddrs(ifa);
}

static void on_signal(int fd, uint32_t events, void *arg)
{
	struct sheep *s = arg;
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	sd_notice("signal %u: shutting down", si.ssi_signo);
	atomic_store(&s->stopping, true);
	sd_loop_stop(s->loop);
}

static int lock_dir(struct sheep *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/lock", s->opt.dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "sheep: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		char pp[PATH_MAX];
		snprintf(pp, sizeof(pp), "%s/sheep.pid", s->opt.dir);
		FILE *f = fopen(pp, "re");
		if (f) {
			if (!fgets(pid, sizeof(pid), f))
				pid[0] = '\0';
			fclose(f);
			pid[strcspn(pid, "\n")] = '\0';
		}
		fprintf(stderr,
			"sheep: %s is in use by another sheep%s%s%s; stop it first or use another "
			"directory\n",
			s->opt.dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
		close(fd);
		return -1;
	}
	s->lock_fd = fd;
	return 0;
}

/*
 * Daemonize, keeping the parent until the daemon says how startup went:
 * the parent waits on a pipe and exits 0 only after the daemon wrote "ok"
 * (setup done: listening, joined the driver). If the daemon fails, it
 * writes its reason, and the parent prints it and exits 1; if it dies
 * without a word, the parent sees EOF and exits 1. So a script's
 * `sheep ... || fail` sees every startup failure, as with -f.
 * Returns the write end of the pipe (>= 0) in the daemon, or -errno.
 */
static int daemonize(const char *logpath)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		char msg[512];
		size_t got = 0;
		for (;;) {
			ssize_t n = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
			if (got == sizeof(msg) - 1)
				break;
		}
		msg[got] = '\0';
		if (!strcmp(msg, "ok"))
			_exit(0);
		if (got)
			fprintf(stderr, "sheep: startup failed (%s); see %s\n", msg, logpath);
		else
			fprintf(stderr, "sheep: the daemon exited during startup; see %s\n",
				logpath);
		_exit(1);
	}
	close(pfd[0]);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0); /* the first parent still holds the read end; we keep pfd[1] */
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return pfd[1];
}

/* Tell the waiting parent how startup went (no-op in the foreground). */
static void report_startup(int fd, const char *msg)
{
	if (fd < 0)
		return;
	size_t len = strlen(msg);
	while (len) {
		ssize_t n = write(fd, msg, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		msg += n;
		len -= (size_t)n;
	}
	close(fd);
}

static int write_pid(struct sheep *s)
{
	char path[PATH_MAX], buf[32];
	snprintf(path, sizeof(path), "%s/sheep.pid", s->opt.dir);
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	return sheep_write_file(s, path, buf, (size_t)n);
}

/* The idle trim of mem.c, from the loop. */
static void on_trim(int fd, uint32_t events, void *arg)
{
	uint64_t n;
	if (read(fd, &n, sizeof(n)) == sizeof(n))
		server_mem_trim();
}

static int start_trim(struct sheep *s)
{
	struct itimerspec its = {{SERVER_MEM_TRIM_MS / 1000, 0}, {SERVER_MEM_TRIM_MS / 1000, 0}};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) ||
	    sd_loop_add(s->loop, fd, EPOLLIN, on_trim, s))
		return -errno;
	return 0;
}

static int setup(struct sheep *s)
{
	int ret;
	/* Block the stop signals before any thread starts: they arrive
	 * through a signalfd on the loop. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if (!s->opt.gateway) {
		struct store_config cfg = {.dir = s->opt.dir,
					   .nosync = s->opt.nosync,
					   .wal_dir = s->opt.wal_dir,
					   .wal_size = s->opt.wal_size,
					   .disks = s->opt.md_disks,
					   .nr_disks = s->opt.nr_md_disks};
		ret = store_open_config(&cfg, &s->store);
		if (ret) {
			sd_err("cannot open the store in %s: %s", s->opt.dir, strerror(-ret));
			return ret;
		}
	}
	char addr[64];
	pick_address(&s->opt, addr, sizeof(addr));
	memset(&s->self, 0, sizeof(s->self));
	snprintf(s->self.addr, sizeof(s->self.addr), "%s", addr);
	s->self.port = s->opt.port;
	s->self.zone = s->opt.zone_set ? s->opt.zone : (uint32_t)s->opt.port;
	s->self.gateway = s->opt.gateway;
	s->self.nr_vnodes = s->opt.gateway ? 0 : (s->opt.vnodes ? s->opt.vnodes : DEFAULT_VNODES);
	s->self.fixed_vnodes = s->opt.vnodes != 0;
	if (!s->opt.gateway) {
		/* A count set by dog node vnodes set before a restart. */
		char vpath[PATH_MAX], vbuf[16] = "";
		snprintf(vpath, sizeof(vpath), "%s/%s", s->opt.dir, SHEEP_VNODES_FILE);
		int vfd = open(vpath, O_RDONLY | O_CLOEXEC);
		if (vfd >= 0) {
			ssize_t n = read(vfd, vbuf, sizeof(vbuf) - 1);
			close(vfd);
			unsigned long v = n > 0 ? strtoul(vbuf, NULL, 10) : 0;
			if (v >= 1 && v <= UINT16_MAX) {
				s->self.nr_vnodes = (uint16_t)v;
				s->self.fixed_vnodes = SD_NODE_VNODES_SET;
				sd_notice("vnodes %lu, as dog node vnodes set left them (%s)", v,
					  vpath);
			}
		}
	}
	if (s->store) {
		uint64_t size = 0, free_bytes = 0;
		if (sheep_capacity(s, &size, &free_bytes) == 0)
			s->self.space = size ? size : 1;
		else
			s->self.space = 1;
	}
	s->self.incarnation = sd_now_ns() ^ ((uint64_t)getpid() << 40) ^ sd_wall_seconds();

	s->metrics = calloc(1, sizeof(*s->metrics));
	if (!s->metrics)
		return -ENOMEM;
	sheep_metrics_init(s->metrics);
	if ((ret = sd_loop_create(&s->loop)))
		return ret;
	if ((ret = sd_wq_create("sd_gw", s->opt.threads, s->loop, &s->gw_wq)))
		return ret;
	/* Peer workers mostly wait for the log's group commit: the more
	 * prepares wait at once, the more share one sync (32 covers a QD32
	 * client's writes). */
	if ((ret = sd_wq_create("sd_peer", 32, s->loop, &s->peer_wq)))
		return ret;
	if ((ret = sd_wq_create("sd_fwd", 16, s->loop, &s->fwd_wq)))
		return ret;
	if ((ret = gateway_init(s)))
		return ret;
	if ((ret = vdi_snap_init(s)))
		return ret;
	if ((ret = group_init(s)))
		return ret;

	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0 || sd_loop_add(s->loop, sfd, EPOLLIN, on_signal, s))
		return -errno;
	if ((ret = start_trim(s)))
		return ret;

	s->frag_busy = sheep_recovery_busy;
	s->frag_bad = sheep_recovery_report_bad;
	s->frag_csum_bad = sheep_scrub_report_bad;
	s->convert_kick = gateway_converter_kick;
	/* The background scrub of this node's fragments (sheep/scrub/scrub.c):
	 * before the listeners, so peer workers find it in place. It waits
	 * for the cluster to be formatted. */
	struct sheep_scrub_opts so = {0};
	if (s->opt.scrub)
		sheep_scrub_parse(s->opt.scrub, &so);
	if ((ret = sheep_scrub_start(s, &so)))
		return ret;
	if ((ret = conn_listen(s)))
		return ret;
	/*
	 * NBD before joining, so the node record we announce carries the
	 * port we really serve. Several sheep per host started the way
	 * Sheepdog's scripts start them (no --nbd) all want 10809: a busy
	 * default port is not an error, only an explicit --nbd PORT is.
	 */
	if (s->opt.nbd_port > 0) {
		ret = nbd_start(s, s->opt.bind_addr, s->opt.nbd_port);
		if (ret == -EADDRINUSE && !s->opt.nbd_explicit) {
			sd_warn("nbd: port %d is in use (another sheep on this host?); this sheep "
				"runs without NBD (give --nbd PORT to export here)",
				s->opt.nbd_port);
			s->opt.nbd_port = -1;
		} else if (ret) {
			sd_err("cannot start the NBD export on port %d: %s", s->opt.nbd_port,
			       strerror(-ret));
			return ret;
		}
	}
	s->self.nbd_port = s->opt.nbd_port > 0 ? (uint16_t)s->opt.nbd_port : 0;
	if ((ret = group_start(s)))
		return ret;
	/* vdi alter-copy's background converter (sheep/gateway/convert.c) */
	if ((ret = gateway_converter_start(s)))
		return ret;
	/* recovery hook: one recovery thread per data node (sheep/rebuild/rebuild.c) */
	if ((ret = sheep_recovery_start(s, &s->opt.recovery)))
		return ret;
	/* Last, so /api/status finds the sheep listening and joined. */
	if (s->opt.http_port && (ret = sheep_http_start(s, s->opt.bind_addr, s->opt.http_port)))
		return ret;
	return 0;
}

/* Every connection, open fragment file and log file is a descriptor:
 * take the soft limit up to the hard one (at most 65,536), as the store's
 * open-file cache sizes itself from it (store_fdcache.c). */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rlim_t want = rl.rlim_max == RLIM_INFINITY ? 65536 : SD_MIN(rl.rlim_max, (rlim_t)65536);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static struct sheep sheep_state; /* the one struct sheep, passed down from here */
	struct sheep *s = &sheep_state;
	s->listen_fd = -1;
	conn_init(s);
	s->lock_fd = -1;
	if (parse_args(argc, argv, &s->opt))
		return 1;
	s->opt.test_crash_file = getenv("SHEEP_TEST_CRASH_FILE");
	s->opt.test_pause_file = getenv("SHEEP_TEST_PAUSE_FILE");
	s->opt.test_local_writes = getenv("SHEEP_TEST_LOCAL_WRITES") != NULL;
	s->opt.test_no_in_place = getenv("SHEEP_TEST_NO_IN_PLACE") != NULL;
	const char *apply_delay = getenv("SHEEP_TEST_APPLY_DELAY_MS");
	s->opt.test_apply_delay_ms = apply_delay ? atoi(apply_delay) : 0;
	const char *echo = getenv("SHEEP_TEST_CMSG_ECHO");
	s->opt.test_cmsg_echo = echo ? atoi(echo) : 0;
	const char *wire = getenv("SHEEP_TEST_WIRE_VER");
	s->opt.test_wire_ver = wire ? atoi(wire) : 0;
	s->opt.test_no_delta = getenv("SHEEP_TEST_NO_DELTA") != NULL;
	s->opt.test_no_old_first = getenv("SHEEP_TEST_NO_OLD_FIRST") != NULL;
	s->opt.test_drop_lazy = getenv("SHEEP_TEST_DROP_LAZY") != NULL;
	s->opt.test_no_lazy = getenv("SHEEP_TEST_NO_LAZY") != NULL;
	s->opt.test_bumps = getenv("SHEEP_TEST_BUMPS") != NULL;
	s->opt.test_sole_always = getenv("SHEEP_TEST_SOLE_ALWAYS") != NULL;
	s->opt.test_no_sole = getenv("SHEEP_TEST_NO_SOLE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	server_mem_bound(); /* (a sanitizer's allocator refuses: nothing to bound) */
	int ret = mkdir_p(s->opt.dir);
	if (ret) {
		fprintf(stderr, "sheep: cannot create %s: %s\n", s->opt.dir, strerror(-ret));
		return 1;
	}
	char abs[PATH_MAX];
	if (realpath(s->opt.dir, abs) && (s->opt.dir_abs = strdup(abs)))
		s->opt.dir = s->opt.dir_abs;
	if (lock_dir(s))
		return 1;
	const char *ldir = s->opt.log_dir ? s->opt.log_dir : s->opt.dir;
	if (s->opt.log_dir && (ret = mkdir_p(s->opt.log_dir))) {
		fprintf(stderr, "sheep: cannot create log directory %s: %s\n", ldir,
			strerror(-ret));
		return 1;
	}
	char logpath[PATH_MAX];
	snprintf(logpath, sizeof(logpath), "%s/sheep.log", ldir);
	ret = sd_log_open(logpath, (enum sd_log_level)s->opt.log_level, "sheep");
	if (ret) {
		fprintf(stderr, "sheep: cannot open log %s: %s\n", logpath, strerror(-ret));
		return 1;
	}
	int status_fd = -1;
	if (!s->opt.foreground) {
		status_fd = daemonize(logpath);
		if (status_fd < 0) {
			fprintf(stderr, "sheep: cannot daemonize: %s\n", strerror(-status_fd));
			return 1;
		}
	}
	write_pid(s);
	sd_notice("sheep starting: dir %s, port %u, driver %s%s", s->opt.dir, s->opt.port,
		  s->opt.cluster, s->opt.nosync ? ", no sync" : "");
	ret = setup(s);
	if (ret) {
		sd_emerg("startup failed: %s", strerror(ret < 0 ? -ret : ret));
		report_startup(status_fd, strerror(ret < 0 ? -ret : ret));
		if (s->opt.foreground)
			fprintf(stderr, "sheep: startup failed (%s); see %s\n",
				strerror(ret < 0 ? -ret : ret), logpath);
		return 1;
	}
	sd_notice("sheep ready: %s:%u zone %u, placement %s", s->self.addr, s->self.port,
		  s->self.zone, ring_impl());
	report_startup(status_fd, "ok");
	sd_loop_run(s->loop);
	atomic_store(&s->stopping, true);
	sd_notice("sheep stopping");
	conn_shutdown_all(s);
	sheep_http_stop(s);
	if (s->opt.nbd_port > 0)
		nbd_stop(s);
	sheep_scrub_stop(s);
	sheep_recovery_stop(s); /* recovery hook */
	group_stop(s);		/* wakes workers blocked on cluster ops */
	gateway_converter_stop(s);
	conn_join_all(s); /* the threads serving peer connections in place */
	/* Then stop the pools. */
	sd_wq_destroy(s->gw_wq);
	sd_wq_destroy(s->peer_wq);
	sd_wq_destroy(s->fwd_wq);
	sheep_scrub_fini(s); /* no worker can report a bad fragment any more */
	gateway_fini(s);
	vdi_snap_fini(s);
	if (s->store)
		store_close(s->store);
	char pidpath[PATH_MAX];
	snprintf(pidpath, sizeof(pidpath), "%s/sheep.pid", s->opt.dir);
	unlink(pidpath);
	free(s->metrics);
	sd_notice("sheep stopped");
	sd_log_close();
	free(s->opt.dir_abs);
	free(s->opt.spec_buf);
	return s->exit_status;
}
