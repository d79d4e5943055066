/* format.c - dog's output formats (vdi list, node list/info, cluster info), matching Sheepdog 1.0
 * byte for byte. */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "dog/dog.h"
#include "lib/util.h"

void dog_size_str(uint64_t bytes, bool raw, char *buf, size_t len)
{
	if (raw)
		snprintf(buf, len, "%" PRIu64, bytes);
	else
		sd_format_size(bytes, buf, len);
}

void dog_policy_str(uint8_t copy_policy, uint8_t nr_copies, char *buf, size_t len)
{
	struct ec_policy pol;
	if (ec_policy_from_wire(copy_policy, nr_copies, &pol) < 0) {
		snprintf(buf, len, "?");
		return;
	}
	ec_policy_format(&pol, buf, len);
}

uint64_t dog_inode_seconds(uint64_t create_time)
{
	/* Sheepdog packs seconds in the high half; any real time in that
	 * encoding is >= 2^32, while plain seconds stay below until 2106. */
	return create_time >> 32 ? create_time >> 32 : create_time;
}

/* "host:port", bracketing IPv6 hosts. */
static void host_port(const struct sd_node *n, char *buf, size_t len)
{
	if (strchr(n->addr, ':'))
		snprintf(buf, len, "[%s]:%u", n->addr, n->port);
	else
		snprintf(buf, len, "%s:%u", n->addr, n->port);
}

void dog_print_vdi_header(FILE *f, bool raw)
{
	if (!raw)
		fprintf(f,
			"  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies"
			"  Tag   Block Size Shift\n");
}

void dog_print_vdi_row(FILE *f, const struct dog_vdi_row *r, bool raw)
{
	char size[32], used[32], shared[32], when[64], copies[16];
	dog_size_str(r->size, raw, size, sizeof(size));
	dog_size_str(r->used, raw, used, sizeof(used));
	dog_size_str(r->shared, raw, shared, sizeof(shared));
	dog_policy_str(r->copy_policy, r->nr_copies, copies, sizeof(copies));
	if (raw) {
		snprintf(when, sizeof(when), "%" PRIu64, r->ctime);
		/* Raw rows are split on spaces by scripts: escape them. */
		fprintf(f, "%c ", r->type == ' ' ? '=' : r->type);
		for (const char *p = r->name; *p; p++) {
			if (isspace((unsigned char)*p) || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fprintf(f, " %" PRIu32 " %s %s %s %s %" PRIx32 " %s %s %u\n", r->snap_id, size,
			used, shared, when, r->vid, copies, r->tag, r->block_size_shift);
		return;
	}
	time_t t = (time_t)r->ctime;
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	fprintf(f, "%c %-8s %5d %7s %7s %7s %s  %7" PRIx32 " %6s %13s %3u\n", r->type, r->name,
		(int)r->snap_id, size, used, shared, when, r->vid, copies, r->tag,
		r->block_size_shift);
}

void dog_print_node_header(FILE *f, bool raw)
{
	if (!raw)
		fprintf(f, "  Id   Host:Port         V-Nodes       Zone\n");
}

void dog_print_node_row(FILE *f, int id, const struct sd_node *n, bool raw)
{
	char hp[96];
	host_port(n, hp, sizeof(hp));
	fprintf(f, raw ? "%d %s %d %u\n" : "%4d   %-20s\t%2d%11u\n", id, hp, n->nr_vnodes, n->zone);
}

void dog_print_node_info_header(FILE *f, bool raw)
{
	if (!raw)
		fprintf(f, "Id\tSize\tUsed\tAvail\tUse%%\n");
}

void dog_print_node_info_row(FILE *f, int id, uint64_t size, uint64_t used, bool raw)
{
	char s[32], u[32], a[32];
	uint64_t avail = used < size ? size - used : 0;
	int pct = size ? (int)(used * 100 / size) : 0;
	dog_size_str(size, raw, s, sizeof(s));
	dog_size_str(used, raw, u, sizeof(u));
	dog_size_str(avail, raw, a, sizeof(a));
	if (id < 0)
		fprintf(f, raw ? "%s %s %s %s %d%%\n" : "%2s\t%s\t%s\t%s\t%3d%%\n", "Total", s, u,
			a, pct);
	else
		fprintf(f, raw ? "%d %s %s %s %d%%\n" : "%2d\t%s\t%s\t%s\t%3d%%\n", id, s, u, a,
			pct);
}

void dog_print_total_vdi_size(FILE *f, uint64_t bytes, bool raw)
{
	char s[32];
	dog_size_str(bytes, raw, s, sizeof(s));
	fprintf(f, raw ? "Total virtual image size %s\n" : "\nTotal virtual image size\t%s\n", s);
}

void dog_print_cluster_status(FILE *f, uint32_t result, const struct sd_cluster_info *ci, bool raw)
{
	if (!raw)
		fprintf(f, "Cluster status: ");
	if (result == SD_RES_SUCCESS)
		fprintf(f, "running, auto-recovery %s\n",
			ci && !ci->recovery_enabled ? "disabled" : "enabled");
	else
		fprintf(f, "%s\n", sd_strerror(result));
}

void dog_print_cluster_ctime(FILE *f, uint64_t ctime_sec, bool raw)
{
	if (raw)
		return;
	time_t t = (time_t)ctime_sec;
	struct tm tm;
	char buf[64];
	localtime_r(&t, &tm);
	/* ctime(3)'s layout: "Thu Jan  1 10:00:00 2026" */
	strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(f, "\nCluster created at %s\n\n", buf);
}

void dog_print_epoch_header(FILE *f, bool raw)
{
	if (!raw)
		fprintf(f, "Epoch Time           Version [Host:Port:V-Nodes,,,]\n");
}

void dog_print_epoch(FILE *f, const struct sd_epoch_rec *e, const struct sd_node *nodes, bool raw)
{
	time_t t = (time_t)e->time;
	struct tm tm;
	char when[64], hp[96];
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, raw ? "%s %" PRIu32 " [" : "%s %6" PRIu32 " [", when, e->epoch);
	for (uint32_t i = 0; i < e->nr_nodes; i++) {
		host_port(&nodes[i], hp, sizeof(hp));
		fprintf(f, "%s%s:%u", i ? ", " : "", hp, nodes[i].nr_vnodes);
	}
	fprintf(f, "]\n");
}
