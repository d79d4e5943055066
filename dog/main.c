/* main.c - dog, the admin CLI: picks the subcommand, parses its options (anywhere after it), runs
 * it. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/version.h"

static const struct {
	const char *name;
	const struct dog_cmd *cmds;
	const char *desc;
} groups[] = {
    {"cluster", dog_cluster_cmds, "cluster-wide operations: format, info, shutdown"},
    {"node", dog_node_cmds, "the sheep of the cluster: list, info, kill"},
    {"vdi", dog_vdi_cmds,
     "volumes: create, list, delete, read, write, resize, snapshots, clones, backups"},
};

/* Sheepdog's cluster format -V / --fixedvnodes: no count (see parse_opts). */
#define DOG_OPT_FIXED_VNODES 0x100
#define DOG_SHEEPDOG_VNODES 128 /* a sheep's vnodes when it is given no -V */

static const struct option long_opts[] = {
    {"address", required_argument, NULL, 'a'}, {"port", required_argument, NULL, 'p'},
    {"raw", no_argument, NULL, 'r'},	       {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},	       {"copies", required_argument, NULL, 'c'},
    {"prealloc", no_argument, NULL, 'P'},      {"block_size_shift", required_argument, NULL, 'z'},
    {"vnodes", required_argument, NULL, 'V'},  {"format", required_argument, NULL, 'f'},
    {"json", no_argument, NULL, 'J'},	       {"snapshot", required_argument, NULL, 's'},
    {"from", required_argument, NULL, 'F'},    {"delete", no_argument, NULL, 'd'},
    {"exclusive", no_argument, NULL, 'x'},     {"strict", no_argument, NULL, 't'},
    {"recyclevid", no_argument, NULL, 'R'},    {"hyper", no_argument, NULL, 'y'},
    {"index", required_argument, NULL, 'i'},
    {"fixedvnodes", no_argument, NULL, DOG_OPT_FIXED_VNODES},
    {NULL, 0, NULL, 0},
};

#define GLOBAL_OPTS "a:p:rvh"
#define GLOBAL_HELP                                                                                \
	"  -a, --address         sheep to talk to (default 127.0.0.1)\n"                           \
	"  -p, --port            its port (default 7000)\n"                                        \
	"  -r, --raw             raw output: single spaces, bytes, epoch seconds\n"                \
	"  -v, --verbose         more detail\n"                                                    \
	"  -h, --help            this help\n"

static void usage_all(FILE *f, const char *prog)
{
	fprintf(f, "Usage: %s COMMAND SUBCOMMAND [options] [arguments]\n\nCommands:\n", prog);
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (const struct dog_cmd *c = groups[g].cmds; c->name; c++) {
			char full[32];
			snprintf(full, sizeof(full), "%s %s", c->group, c->name);
			fprintf(f, "  %-18s %s\n", full, c->desc);
		}
	fprintf(f,
		"\nOptions (after the subcommand, in any order):\n" GLOBAL_HELP
		"\nFor one command: %s COMMAND SUBCOMMAND -h. %s --version: the version.\n"
		"See also dog(8).\n",
		prog, prog);
}

static void usage_group(FILE *f, const char *prog, size_t g)
{
	fprintf(f, "Usage: %s %s SUBCOMMAND [options]\n%s\n\nAvailable %s subcommands:\n", prog,
		groups[g].name, groups[g].desc, groups[g].name);
	for (const struct dog_cmd *c = groups[g].cmds; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->desc);
}

static void usage_cmd(FILE *f, const char *prog, const struct dog_cmd *c)
{
	fprintf(f, "Usage: %s %s %s [options]%s%s\n%s\n\nOptions:\n", prog, c->group, c->name,
		c->args ? " " : "", c->args ? c->args : "", c->desc);
	if (c->opt_help)
		fputs(c->opt_help, f);
	fputs(GLOBAL_HELP, f);
}

/* Parse "1".."65535". */
static int parse_u16(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* Options of subcommand c, from argv[0] (the subcommand) on. Returns -1 to
 * go on, or an exit code. */
static int parse_opts(struct dog *d, const struct dog_cmd *c, int argc, char **argv)
{
	char optstr[64];
	snprintf(optstr, sizeof(optstr), ":%s%s", GLOBAL_OPTS, c->opts ? c->opts : "");
	/* Sheepdog's -V takes no count ("fixed vnodes": every sheep keeps
	 * the count it was started with, 128 by default); here -V N fixes
	 * every node's count. A -V followed by nothing or by another option
	 * is Sheepdog's: it means -V 128. */
	for (int i = 1; c->opts && strstr(c->opts, "V:") && i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if ((!strcmp(argv[i], "-V") || !strcmp(argv[i], "--vnodes")) &&
		    (i + 1 == argc || argv[i + 1][0] == '-'))
			argv[i] = (char *)"--fixedvnodes";
	}
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, optstr, long_opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			d->addr = optarg;
			break;
		case 'p':
			if (parse_u16(optarg, &d->port) < 0) {
				dog_err("Invalid port number '%s': give 1 to 65535", optarg);
				return DOG_EXIT_USAGE;
			}
			break;
		case 'r':
			d->raw = true;
			break;
		case 'v':
			d->verbose = true;
			break;
		case 'h':
			usage_cmd(stdout, d->prog, c);
			return DOG_EXIT_SUCCESS;
		case 'c':
			if (ec_policy_parse(optarg, &d->policy) < 0) {
				const char *u = ec_policy_usage();
				fprintf(stderr, "Invalid parameter %s\n%s", optarg, u);
				if (*u && u[strlen(u) - 1] != '\n')
					fputc('\n', stderr);
				return DOG_EXIT_FAILURE;
			}
			d->have_policy = true;
			break;
		case 'P':
			d->prealloc = true;
			break;
		case 'f':
		case 'J':
			/* Only the listing commands take "f:" (and so --json). */
			if (!c->opts || !strstr(c->opts, "f:")) {
				dog_err("%s %s has no JSON output (see %s %s %s -h)", c->group,
					c->name, d->prog, c->group, c->name);
				return DOG_EXIT_USAGE;
			}
			if (ch == 'f' && strcmp(optarg, "json") && strcmp(optarg, "table")) {
				dog_err("Invalid output format '%s': give json or table", optarg);
				return DOG_EXIT_USAGE;
			}
			d->json = ch == 'J' || !strcmp(optarg, "json");
			break;
		case 's':
			d->snap = optarg;
			break;
		case 'F':
			d->from_snap = optarg;
			break;
		case 'd':
			d->attr_delete = true;
			break;
		case 'x':
			d->attr_excl = true;
			break;
		case 't':
			d->strict = true;
			break;
		case 'R':
			d->recycle_vid = true;
			break;
		case 'y':
			d->hyper = true;
			break;
		case 'i': {
			char *end;
			errno = 0;
			long long v = strtoll(optarg, &end, 0);
			if (errno || end == optarg || *end || v < 0 || v >= SD_INODE_DATA_INDEX) {
				dog_err("Invalid object index '%s': give 0 to %u", optarg,
					SD_INODE_DATA_INDEX - 1);
				return DOG_EXIT_USAGE;
			}
			d->obj_index = v;
			break;
		}
		case 'z': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || v < SD_MIN_BLOCK_SIZE_SHIFT ||
			    v > SD_MAX_BLOCK_SIZE_SHIFT) {
				dog_err("Invalid block size shift '%s': give %d to %d (object size "
					"1 MiB to 2 GiB; 22 = 4 MiB)",
					optarg, SD_MIN_BLOCK_SIZE_SHIFT, SD_MAX_BLOCK_SIZE_SHIFT);
				return DOG_EXIT_FAILURE;
			}
			d->block_size_shift = (int)v;
			break;
		}
		case 'V': {
			uint16_t v;
			if (parse_u16(optarg, &v) < 0) {
				dog_err("Invalid number of vnodes '%s': must be an integer between 1 and %u",
					optarg, UINT16_MAX);
				return DOG_EXIT_FAILURE;
			}
			d->nr_vnodes = v;
			break;
		}
		case DOG_OPT_FIXED_VNODES:
			if (!c->opts || !strstr(c->opts, "V:")) {
				dog_err("option --fixedvnodes is for cluster format");
				return DOG_EXIT_USAGE;
			}
			d->nr_vnodes = DOG_SHEEPDOG_VNODES;
			break;
		case ':':
			dog_err("option -%c needs an argument (see %s %s %s -h)", optopt, d->prog,
				c->group, c->name);
			return DOG_EXIT_USAGE;
		default:
			if (optopt)
				dog_err("unknown option -%c for %s %s (see %s %s %s -h)", optopt,
					c->group, c->name, d->prog, c->group, c->name);
			else
				dog_err("unknown option %s for %s %s (see %s %s %s -h)",
					argv[optind - 1], c->group, c->name, d->prog, c->group,
					c->name);
			return DOG_EXIT_USAGE;
		}
	}
	d->argc = argc - optind;
	d->argv = argv + optind;
	return -1;
}

int main(int argc, char **argv)
{
	struct dog d = {
	    .prog = "dog",
	    .addr = DOG_DEFAULT_ADDR,
	    .port = SD_LISTEN_PORT,
	    .block_size_shift = -1,
	    .obj_index = -1,
	    .progress = isatty(STDERR_FILENO),
	};
	if (argc < 2) {
		usage_all(stderr, d.prog);
		return DOG_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("dog (sheepdog-ec) %s\n", sd_version());
		return DOG_EXIT_SUCCESS;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage_all(stdout, d.prog);
		return DOG_EXIT_SUCCESS;
	}
	size_t g;
	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		if (!strcmp(argv[1], groups[g].name))
			break;
	if (g == sizeof(groups) / sizeof(groups[0])) {
		dog_err("Invalid command '%s'", argv[1]);
		usage_all(stderr, d.prog);
		return DOG_EXIT_USAGE;
	}
	if (argc < 3 || argv[2][0] == '-') {
		bool help = argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"));
		usage_group(help ? stdout : stderr, d.prog, g);
		return help ? DOG_EXIT_SUCCESS : DOG_EXIT_USAGE;
	}
	const struct dog_cmd *c;
	for (c = groups[g].cmds; c->name; c++)
		if (!strcmp(argv[2], c->name))
			break;
	if (!c->name) {
		dog_err("Invalid %s subcommand '%s'", groups[g].name, argv[2]);
		usage_group(stderr, d.prog, g);
		return DOG_EXIT_USAGE;
	}
	int ret = parse_opts(&d, c, argc - 2, argv + 2);
	if (ret >= 0)
		return ret;
	if (d.argc < c->min_args || d.argc > c->max_args) {
		dog_err("%s %s: %s arguments", c->group, c->name,
			d.argc < c->min_args ? "missing" : "too many");
		usage_cmd(stderr, d.prog, c);
		return DOG_EXIT_USAGE;
	}
	return c->run(&d);
}
