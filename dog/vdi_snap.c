/* vdi_snap.c - dog vdi snapshot / clone / rollback / tree: Sheepdog's copy-on-write volume commands. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

#define SNAP_TEXT_MAX 1024

static int check_tag(const char *what, const char *tag)
{
	if (tag && strlen(tag) >= SD_MAX_VDI_TAG_LEN) {
		dog_err("%s: tag too long (%zu bytes): at most %d", what, strlen(tag),
			SD_MAX_VDI_TAG_LEN - 1);
		return DOG_EXIT_USAGE;
	}
	return 0;
}

static int check_vdi_name(const char *what, const char *name)
{
	if (!name[0] || strlen(name) >= SD_MAX_VDI_LEN) {
		dog_err("%s: invalid VDI name '%s': give 1 to %d characters", what, name,
			SD_MAX_VDI_LEN - 1);
		return DOG_EXIT_USAGE;
	}
	return 0;
}

/* NEW_VDI as a snapshot / clone / rollback; prints the sheep's text on error. */
static int new_vdi(const struct dog *d, const char *what, struct sd_req *req, const char *name,
		   const char *tag, const char *about, uint32_t *vid)
{
	char buf[SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN], text[SNAP_TEXT_MAX];
	memset(buf, 0, sizeof(buf));
	memset(text, 0, sizeof(text));
	strncpy(buf, name, SD_MAX_VDI_LEN - 1);
	if (tag)
		strncpy(buf + SD_MAX_VDI_LEN, tag, SD_MAX_VDI_TAG_LEN - 1);
	req->flags = SD_FLAG_CMD_WRITE;
	req->data_length = sizeof(buf);
	struct sd_rsp rsp;
	int ret = dog_exec(d, req, buf, &rsp, text, sizeof(text) - 1);
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS) {
		if (rsp.data_length && text[0]) {
			dog_err("%s: %s", what, text);
			int rc = dog_exit_of_result((uint32_t)ret);
			return rc ? rc : DOG_EXIT_FAILURE;
		}
		return dog_fail_result(what, (uint32_t)ret, about);
	}
	if (rsp.data_length && text[0])
		dog_err("warning: %s", text);
	*vid = sd_rsp_vdi_id(&rsp);
	return DOG_EXIT_SUCCESS;
}

/* The vid of snapshot snap of name, with a clear message when missing. */
static int find_snapshot(const struct dog *d, const char *what, const char *name, const char *snap,
			 uint32_t *vid)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	int ret = dog_vdi_lookup_snap(fd, name, snap, vid);
	close(fd);
	if (ret < 0) {
		dog_err("%s: lost the connection to sheep: %s", what, strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (ret == SD_RES_NO_VDI || ret == SD_RES_NO_TAG) {
		if (snap)
			dog_err("%s: VDI %s has no snapshot %s: see dog vdi list %s", what, name, snap,
				name);
		else
			dog_err("%s: VDI %s not found: see dog vdi list", what, name);
		return DOG_EXIT_MISSING;
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result(what, (uint32_t)ret, name);
	return DOG_EXIT_SUCCESS;
}

int dog_vdi_snapshot(struct dog *d)
{
	const char *name = d->argv[0];
	int ret = check_vdi_name("vdi snapshot", name);
	if (!ret)
		ret = check_tag("vdi snapshot", d->snap);
	if (ret)
		return ret;
	uint32_t id;
	if (d->snap && dog_snap_is_id(d->snap, &id)) {
		dog_err("vdi snapshot: tag '%s' is a number, which would read as a snapshot id: "
			"give a tag with a non-digit", d->snap);
		return DOG_EXIT_USAGE;
	}
	struct sd_req req;
	dog_req_init(&req, SD_OP_NEW_VDI);
	req.vdi.snapid = 1; /* Sheepdog 1.0: snapid != 0 makes a snapshot */
	uint32_t vid;
	ret = new_vdi(d, "vdi snapshot", &req, name, d->snap, name, &vid);
	if (ret == DOG_EXIT_SUCCESS && d->verbose)
		printf("VDI %s: snapshot taken, working VDI id now %x\n", name, vid);
	return ret;
}

int dog_vdi_clone(struct dog *d)
{
	const char *src = d->argv[0], *dst = d->argv[1];
	int ret = check_vdi_name("vdi clone", src);
	if (!ret)
		ret = check_vdi_name("vdi clone", dst);
	if (!ret)
		ret = check_tag("vdi clone", d->snap);
	if (ret)
		return ret;
	uint32_t base;
	/* Without -s this names the working VDI, which sheep refuses to clone
	 * with its reason, as Sheepdog does. */
	ret = find_snapshot(d, "vdi clone", src, d->snap, &base);
	if (ret)
		return ret;
	struct sd_req req;
	dog_req_init(&req, SD_OP_NEW_VDI);
	req.vdi.base_vdi_id = base;
	if (d->have_policy) {
		req.vdi.copies = (uint8_t)ec_policy_width(&d->policy);
		req.vdi.copy_policy = ec_policy_byte(&d->policy);
	}
	uint32_t vid;
	ret = new_vdi(d, "vdi clone", &req, dst, NULL, dst, &vid);
	if (ret == DOG_EXIT_SUCCESS && d->verbose)
		printf("VDI %s cloned from %s, id %x\n", dst, src, vid);
	return ret;
}

int dog_vdi_rollback(struct dog *d)
{
	const char *name = d->argv[0];
	int ret = check_vdi_name("vdi rollback", name);
	if (!ret)
		ret = check_tag("vdi rollback", d->snap);
	if (ret)
		return ret;
	if (!d->snap) {
		dog_err("vdi rollback: give the snapshot to go back to with -s ID|TAG (see dog vdi "
			"list %s)", name);
		return DOG_EXIT_USAGE;
	}
	uint32_t base;
	ret = find_snapshot(d, "vdi rollback", name, d->snap, &base);
	if (ret)
		return ret;
	struct sd_req req;
	dog_req_init(&req, SD_OP_NEW_VDI);
	req.vdi.base_vdi_id = base;
	req.vdi.type = SD_NEW_VDI_ROLLBACK;
	uint32_t vid;
	ret = new_vdi(d, "vdi rollback", &req, name, NULL, name, &vid);
	if (ret == DOG_EXIT_SUCCESS && d->verbose)
		printf("VDI %s rolled back to snapshot %s, working VDI id now %x\n", name, d->snap,
		       vid);
	return ret;
}

/* ---- tree ---- */

static int tree_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct dog_tree_node *)a)->vid, y = ((const struct dog_tree_node *)b)->vid;
	return x < y ? -1 : x > y;
}

static bool tree_has(const struct dog_tree_node *nodes, size_t n, uint32_t vid)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].vid == vid)
			return true;
	return false;
}

/* Print node i (the cursor is after prefix on the current line), then its
 * subtree; prefix is what goes under it on the following lines. */
static void tree_node(FILE *f, const struct dog_tree_node *nodes, size_t n, size_t i, char *prefix,
		      size_t plen, size_t cap, int depth)
{
	fputs(nodes[i].label, f);
	size_t kids = 0, last = 0;
	for (size_t k = 0; k < n; k++)
		if (nodes[k].parent == nodes[i].vid && k != i)
			kids++, last = k;
	if (!kids || depth > 4096) {
		fputc('\n', f);
		return;
	}
	size_t lab = strlen(nodes[i].label);
	size_t base = plen + lab;
	if (base + 4 >= cap) {
		fputc('\n', f);
		return;
	}
	memset(prefix + plen, ' ', lab);
	bool first = true;
	for (size_t k = 0; k < n; k++) {
		if (nodes[k].parent != nodes[i].vid || k == i)
			continue;
		if (kids == 1) {
			fputs("---", f);
			memcpy(prefix + base, "   ", 3);
		} else if (first) {
			fputs("-+-", f);
			memcpy(prefix + base, " | ", 3);
		} else {
			fwrite(prefix, 1, base, f);
			fputs(k == last ? " `-" : " |-", f);
			memcpy(prefix + base, k == last ? "   " : " | ", 3);
		}
		first = false;
		tree_node(f, nodes, n, k, prefix, base + 3, cap, depth + 1);
	}
}

void dog_print_tree(FILE *f, const struct dog_tree_node *nodes, size_t n)
{
	struct dog_tree_node *s = malloc((n ? n : 1) * sizeof(*s));
	char *prefix = malloc(1 << 16);
	if (!s || !prefix) {
		free(s);
		free(prefix);
		return;
	}
	if (n)
		memcpy(s, nodes, n * sizeof(*s));
	qsort(s, n, sizeof(*s), tree_cmp);
	for (size_t i = 0; i < n; i++)
		if (!s[i].parent || s[i].parent == s[i].vid || !tree_has(s, n, s[i].parent)) {
			uint32_t keep = s[i].parent;
			s[i].parent = 0; /* a root: its children are found by vid */
			tree_node(f, s, n, i, prefix, 0, 1 << 16, 0);
			s[i].parent = keep;
		}
	free(prefix);
	free(s);
}

struct tree_arg {
	struct dog_tree_node *nodes;
	char (*names)[SD_MAX_VDI_LEN];
	size_t n, cap;
	char **labels;
};

static int tree_one(const struct sd_inode *ino, void *arg)
{
	struct tree_arg *t = arg;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct dog_tree_node *nn = realloc(t->nodes, cap * sizeof(*nn));
		if (nn)
			t->nodes = nn;
		char **nl = realloc(t->labels, cap * sizeof(*nl));
		if (nl)
			t->labels = nl;
		char(*nm)[SD_MAX_VDI_LEN] = realloc(t->names, cap * sizeof(*nm));
		if (nm)
			t->names = nm;
		if (!nn || !nl || !nm)
			return DOG_EXIT_SYSFAIL;
		t->cap = cap;
	}
	const struct sd_inode_hdr *h = (const struct sd_inode_hdr *)(const void *)ino;
	char when[64] = "";
	if (sd_inode_is_snapshot(h)) {
		time_t tt = (time_t)dog_inode_seconds(h->snap_ctime);
		struct tm tm;
		localtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	}
	size_t len = strlen(h->name) + strlen(h->tag) + sizeof(when) + 32;
	char *label = malloc(len);
	if (!label)
		return DOG_EXIT_SYSFAIL;
	/* The name is shown where it starts: at a root and at a clone. */
	const char *show = "";
	if (!h->parent_vdi_id || sd_inode_is_clone(h))
		show = h->name;
	if (sd_inode_is_snapshot(h))
		snprintf(label, len, "%s%s[%u %s%s%s]", show, *show ? " " : "", h->snap_id, when,
			 h->tag[0] ? " " : "", h->tag);
	else
		snprintf(label, len, "%s%s(you are here)", show, *show ? " " : "");
	t->labels[t->n] = label;
	t->nodes[t->n] = (struct dog_tree_node){h->vdi_id, h->parent_vdi_id, label};
	t->n++;
	return 0;
}

int dog_vdi_tree(struct dog *d)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct tree_arg t = {0};
	int ret = dog_vdi_foreach(fd, false, NULL, tree_one, &t);
	close(fd);
	if (!ret) {
		/* A deleted snapshot is not listed: its children become roots. */
		dog_print_tree(stdout, t.nodes, t.n);
	}
	for (size_t i = 0; i < t.n; i++)
		free(t.labels[i]);
	free(t.labels);
	free(t.nodes);
	free(t.names);
	return ret;
}
