/* test_recovery.c - unit tests of recovery/ on a fake in-memory cluster: node loss, joins,
 * replanning, priority, throttle, space. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "ec/ec.h"
#include "lib/crc.h"
#include "lib/fnv.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "recovery/recovery.h"

/* ---- the fake cluster -------------------------------------------------
 * Nodes hold fragments in memory with a version and a crc32c; a node that
 * is "killed" answers nothing. Placement is a per-position rendezvous hash
 * over distinct zones (a position with no zone left has no home), so the
 * tests measure moves against whatever it decides, not against a formula.
 */

#define MAXN 16
#define FS   4096 /* fragment size: small, the engine does not care */

struct ffrag {
	uint64_t oid;
	uint64_t version;
	uint32_t crc;
	uint8_t idx, cp, nc;
	uint8_t data[FS];
};

struct fnode {
	int alive;
	uint32_t zone;
	struct ffrag **frags;
	size_t nr, cap;
};

/* What each object must read back as (whole object, d*FS or FS bytes). */
struct fobj {
	uint64_t oid;
	uint8_t cp, nc;
	uint64_t version;
	uint8_t frag[EC_MAX_WIDTH][FS]; /* expected fragment i */
};

struct fcluster {
	struct fnode node[MAXN];
	int nr;
	struct fobj *objs;
	size_t nr_objs;
	uint64_t exec_calls;
};

static struct ffrag *node_find(struct fnode *n, uint64_t oid, uint8_t idx)
{
	for (size_t k = 0; k < n->nr; k++)
		if (n->frags[k]->oid == oid && n->frags[k]->idx == idx)
			return n->frags[k];
	return NULL;
}

static struct ffrag *node_put(struct fnode *n, uint64_t oid, uint8_t idx, uint8_t cp, uint8_t nc,
			      uint64_t version, const void *data)
{
	struct ffrag *f = node_find(n, oid, idx);
	if (!f) {
		if (n->nr == n->cap) {
			n->cap = n->cap ? n->cap * 2 : 64;
			n->frags = realloc(n->frags, n->cap * sizeof(*n->frags));
			assert_non_null(n->frags);
		}
		f = calloc(1, sizeof(*f));
		assert_non_null(f);
		n->frags[n->nr++] = f;
	}
	f->oid = oid;
	f->idx = idx;
	f->cp = cp;
	f->nc = nc;
	f->version = version;
	memcpy(f->data, data, FS);
	f->crc = sd_crc32c(0, f->data, FS);
	return f;
}

static void node_remove(struct fnode *n, uint64_t oid, uint8_t idx)
{
	for (size_t k = 0; k < n->nr; k++)
		if (n->frags[k]->oid == oid && n->frags[k]->idx == idx) {
			free(n->frags[k]);
			n->frags[k] = n->frags[--n->nr];
			return;
		}
}

static void cluster_free(struct fcluster *c)
{
	for (int i = 0; i < MAXN; i++) {
		for (size_t k = 0; k < c->node[i].nr; k++)
			free(c->node[i].frags[k]);
		free(c->node[i].frags);
	}
	free(c->objs);
	free(c);
}

static struct fcluster *cluster_new(int nr)
{
	struct fcluster *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->nr = nr;
	for (int i = 0; i < nr; i++) {
		c->node[i].alive = 1;
		c->node[i].zone = (uint32_t)i;
	}
	return c;
}

static uint64_t hrw(uint64_t oid, int pos, uint32_t node)
{
	uint64_t k[3] = {oid, (uint64_t)pos, node};
	return fnv_64a_buf(k, sizeof(k), 0xcbf29ce484222325ULL);
}

/* Position i takes the alive node of highest hash(oid, i, node) whose zone
 * no earlier position uses. */
static int fake_locate(void *arg, uint64_t oid, int n, uint32_t *out)
{
	struct fcluster *c = arg;
	uint32_t used_zones[MAXN];
	int nz = 0;
	for (int i = 0; i < n; i++) {
		uint64_t best = 0;
		uint32_t who = RECOVERY_NO_NODE;
		for (int k = 0; k < c->nr; k++) {
			if (!c->node[k].alive)
				continue;
			int taken = 0;
			for (int z = 0; z < nz; z++)
				taken |= used_zones[z] == c->node[k].zone;
			if (taken)
				continue;
			uint64_t h = hrw(oid, i, (uint32_t)k);
			if (who == RECOVERY_NO_NODE || h > best) {
				best = h;
				who = (uint32_t)k;
			}
		}
		out[i] = who;
		if (who != RECOVERY_NO_NODE)
			used_zones[nz++] = c->node[who].zone;
	}
	return 0;
}

static void fill_random(uint8_t *p, size_t n, uint64_t *seed)
{
	for (size_t k = 0; k < n; k++) {
		*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
		p[k] = (uint8_t)(*seed >> 33);
	}
}

/* Compute the expected fragments of o from fresh random data. */
static void obj_make(struct fobj *o, uint64_t *seed)
{
	if (!o->cp) {
		fill_random(o->frag[0], FS, seed);
		for (int i = 1; i < o->nc; i++)
			memcpy(o->frag[i], o->frag[0], FS);
		return;
	}
	int d = recovery_policy_data(o->cp), p = o->nc - d;
	const struct ec_codec *codec;
	assert_int_equal(ec_codec_get((uint8_t)d, (uint8_t)p, EC_BACKEND_ISAL, &codec), 0);
	uint8_t *data[EC_MAX_WIDTH], *par[EC_MAX_WIDTH];
	for (int i = 0; i < d; i++) {
		fill_random(o->frag[i], FS, seed);
		data[i] = o->frag[i];
	}
	for (int j = 0; j < p; j++)
		par[j] = o->frag[d + j];
	assert_int_equal(ec_encode(codec, FS, data, par), 0);
}

/* Write every object to its current placement, as a gateway would. */
static void write_objects(struct fcluster *c, int nr_ec, int nr_rep, uint64_t seed)
{
	c->nr_objs = (size_t)(nr_ec + nr_rep);
	c->objs = calloc(c->nr_objs, sizeof(*c->objs));
	assert_non_null(c->objs);
	for (size_t k = 0; k < c->nr_objs; k++) {
		struct fobj *o = &c->objs[k];
		o->oid = vid_to_data_oid(0x7c2b25, (uint32_t)k);
		if ((int)k < nr_ec) {
			o->cp = 0x22; /* 4:2 */
			o->nc = 6;
		} else {
			o->cp = 0;
			o->nc = 3;
		}
		o->version = 1;
		obj_make(o, &seed);
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, o->oid, o->nc, h);
		for (int i = 0; i < o->nc; i++) {
			assert_true(h[i] != RECOVERY_NO_NODE);
			node_put(&c->node[h[i]], o->oid, (uint8_t)i, o->cp, o->nc, 1, o->frag[i]);
		}
	}
}

/* ---- the I/O callbacks ----------------------------------------------- */

struct fio {
	struct fcluster *c;
	uint32_t self;
};

static int f_read(void *arg, uint32_t node, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		  uint32_t len, uint64_t *version)
{
	struct fio *io = arg;
	if (node >= (uint32_t)io->c->nr || !io->c->node[node].alive)
		return -ECONNREFUSED;
	struct ffrag *f = node_find(&io->c->node[node], oid, idx);
	if (!f)
		return -ENOENT;
	if (off + len > FS)
		return -EINVAL;
	if (sd_crc32c(0, f->data, FS) != f->crc)
		return -EIO;
	memcpy(buf, f->data + off, len);
	*version = f->version;
	return 0;
}

static int f_verify(void *arg, uint64_t oid, uint8_t idx, uint64_t *version)
{
	struct fio *io = arg;
	struct ffrag *f = node_find(&io->c->node[io->self], oid, idx);
	if (!f)
		return -ENOENT;
	if (sd_crc32c(0, f->data, FS) != f->crc)
		return -EIO;
	*version = f->version;
	return 0;
}

static int f_install(void *arg, const struct recovery_job *job, const void *buf)
{
	struct fio *io = arg;
	struct fnode *n = &io->c->node[io->self];
	struct ffrag *f = node_find(n, job->oid, job->idx);
	if (job->have_version == RECOVERY_ABSENT && f)
		return -EEXIST;
	if (job->have_version != RECOVERY_ABSENT && (!f || f->version != job->have_version))
		return -ESTALE;
	node_put(n, job->oid, job->idx, job->copy_policy, job->nr_copies, job->version, buf);
	return 0;
}

static int f_decode(void *arg, uint8_t cp, uint32_t fs, const uint8_t *src_idx,
		    const void *const *src, uint8_t want, void *out)
{
	int d = recovery_policy_data(cp), p = (cp & 0xf);
	const struct ec_codec *codec;
	int rc = ec_codec_get((uint8_t)d, (uint8_t)p, EC_BACKEND_ISAL, &codec);
	if (rc)
		return rc;
	int have[EC_MAX_WIDTH], w = want;
	for (int k = 0; k < d; k++)
		have[k] = src_idx[k];
	uint8_t *o = out;
	return ec_decode(codec, fs, have, (const uint8_t *const *)src, 1, &w, &o);
}

/* ---- driving recovery on every node ---------------------------------- */

struct fnodes_rec {
	struct recovery *r[MAXN];
	struct fio io[MAXN];
	struct recovery_io rio[MAXN];
	uint32_t members[MAXN];
	size_t nr_members;
};

static struct recovery_frag *gather(struct fcluster *c, size_t *nr)
{
	size_t n = 0, cap = 256;
	struct recovery_frag *v = malloc(cap * sizeof(*v));
	assert_non_null(v);
	for (int i = 0; i < c->nr; i++) {
		if (!c->node[i].alive)
			continue;
		for (size_t k = 0; k < c->node[i].nr; k++) {
			struct ffrag *f = c->node[i].frags[k];
			if (n == cap) {
				cap *= 2;
				v = realloc(v, cap * sizeof(*v));
				assert_non_null(v);
			}
			memset(&v[n], 0, sizeof(v[n]));
			v[n].oid = f->oid;
			v[n].version = f->version;
			v[n].disk_bytes = FS;
			v[n].frag_size = FS;
			v[n].node = (uint32_t)i;
			v[n].idx = f->idx;
			v[n].copy_policy = f->cp;
			v[n].nr_copies = f->nc;
			n++;
		}
	}
	*nr = n;
	return v;
}

static void epoch_of(struct fcluster *c, struct fnodes_rec *nr, uint32_t self, uint32_t epoch,
		     struct recovery_epoch *ep)
{
	nr->nr_members = 0;
	for (int i = 0; i < c->nr; i++)
		if (c->node[i].alive)
			nr->members[nr->nr_members++] = (uint32_t)i;
	memset(ep, 0, sizeof(*ep));
	ep->epoch = epoch;
	ep->self = self;
	ep->members = nr->members;
	ep->nr_members = nr->nr_members;
	ep->locate = fake_locate;
	ep->locate_arg = c;
	ep->free_bytes = 1ULL << 40;
}

/* Plan on every alive node for a new epoch (engines survive replans). */
static void plan_all(struct fcluster *c, struct fnodes_rec *nr, uint32_t epoch)
{
	size_t n;
	struct recovery_frag *fr = gather(c, &n);
	for (int i = 0; i < c->nr; i++) {
		if (!c->node[i].alive)
			continue;
		if (!nr->r[i])
			assert_int_equal(recovery_new(NULL, &nr->r[i]), 0);
		nr->io[i].c = c;
		nr->io[i].self = (uint32_t)i;
		nr->rio[i] = (struct recovery_io){.arg = &nr->io[i],
						  .read = f_read,
						  .verify = f_verify,
						  .install = f_install,
						  .decode = f_decode};
		struct recovery_epoch ep;
		epoch_of(c, nr, (uint32_t)i, epoch, &ep);
		assert_int_equal(recovery_plan(nr->r[i], &ep, fr, n), 0);
	}
	free(fr);
}

/* Run up to max_jobs jobs round-robin over the alive nodes (0 = until done). */
static size_t run_all(struct fcluster *c, struct fnodes_rec *nr, size_t max_jobs)
{
	size_t jobs = 0;
	for (;;) {
		int progressed = 0;
		for (int i = 0; i < c->nr; i++) {
			if (!c->node[i].alive || !nr->r[i])
				continue;
			struct recovery_job *job;
			if (recovery_take(nr->r[i], 0, &job, NULL))
				continue;
			recovery_execute(&nr->rio[i], job);
			c->exec_calls++;
			recovery_finish(nr->r[i], job, 0);
			progressed = 1;
			if (max_jobs && ++jobs == max_jobs)
				return jobs;
		}
		if (!progressed)
			return jobs;
	}
}

static void free_all(struct fnodes_rec *nr)
{
	for (int i = 0; i < MAXN; i++)
		recovery_free(nr->r[i]);
	memset(nr, 0, sizeof(*nr));
}

/* Every object holds each position on its placed node, at its version,
 * with the expected bytes; returns how many positions have no home. */
static int assert_full_redundancy(struct fcluster *c)
{
	int homeless = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		struct fobj *o = &c->objs[k];
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, o->oid, o->nc, h);
		for (int i = 0; i < o->nc; i++) {
			if (h[i] == RECOVERY_NO_NODE) {
				homeless++;
				continue;
			}
			struct ffrag *f = node_find(&c->node[h[i]], o->oid, (uint8_t)i);
			if (!f)
				fail_msg("object %zu fragment %d missing on node %u", k, i, h[i]);
			assert_int_equal(f->version, o->version);
			assert_int_equal(f->crc, sd_crc32c(0, f->data, FS));
			assert_memory_equal(f->data, o->frag[i], FS);
		}
	}
	return homeless;
}

/* Read every object back from whatever alive nodes hold (any d fragments
 * of its version, or any copy) and compare with what was written. */
static void assert_all_readable(struct fcluster *c)
{
	for (size_t k = 0; k < c->nr_objs; k++) {
		struct fobj *o = &c->objs[k];
		int d = recovery_policy_data(o->cp);
		uint8_t got_buf[EC_MAX_WIDTH][FS];
		int have[EC_MAX_WIDTH], nh = 0;
		uint32_t mask = 0;
		for (int i = 0; i < c->nr && nh < d; i++) {
			if (!c->node[i].alive)
				continue;
			for (size_t j = 0; j < c->node[i].nr && nh < d; j++) {
				struct ffrag *f = c->node[i].frags[j];
				if (f->oid != o->oid || f->version != o->version ||
				    (mask & (1u << f->idx)))
					continue;
				if (sd_crc32c(0, f->data, FS) != f->crc)
					continue;
				mask |= 1u << f->idx;
				have[nh] = f->idx;
				memcpy(got_buf[nh], f->data, FS);
				nh++;
			}
		}
		if (nh < d)
			fail_msg("object %zu: only %d of %d fragments readable", k, nh, d);
		if (!o->cp) {
			assert_memory_equal(got_buf[0], o->frag[0], FS);
			continue;
		}
		const struct ec_codec *codec;
		assert_int_equal(
		    ec_codec_get((uint8_t)d, (uint8_t)(o->nc - d), EC_BACKEND_ISAL, &codec), 0);
		const uint8_t *hv[EC_MAX_WIDTH];
		for (int i = 0; i < d; i++)
			hv[i] = got_buf[i];
		for (int want = 0; want < d; want++) {
			uint8_t out[FS];
			uint8_t *op = out;
			int w = want;
			assert_int_equal(ec_decode(codec, FS, have, hv, 1, &w, &op), 0);
			assert_memory_equal(out, o->frag[want], FS);
		}
	}
}

static void sum_progress(struct fcluster *c, struct fnodes_rec *nr, struct recovery_progress *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < c->nr; i++) {
		if (!c->node[i].alive || !nr->r[i])
			continue;
		struct recovery_progress p;
		recovery_progress(nr->r[i], &p);
		sum->total += p.total;
		sum->done += p.done;
		sum->failed += p.failed;
		sum->reused += p.reused;
		sum->copied += p.copied;
		sum->rebuilt += p.rebuilt;
		sum->degraded += p.degraded;
		sum->lost += p.lost;
		sum->in_flight += p.in_flight;
	}
}

/* ---- tests ----------------------------------------------------------- */

static void test_kill_one_node_restores_full_redundancy_then_survives_two_more(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 40, 1);
	assert_int_equal(assert_full_redundancy(c), 0);

	c->node[3].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	assert_true(p.rebuilt > 0); /* EC fragments of the dead node */
	assert_true(p.copied > 0);  /* replicas of the dead node */
	for (int i = 0; i < 8; i++)
		if (nr.r[i]) {
			struct recovery_progress q;
			recovery_progress(nr.r[i], &q);
			assert_int_equal(q.state, RECOVERY_DONE);
		}
	assert_int_equal(assert_full_redundancy(c), 0);

	/* Two more failures, no recovery: everything still reads back. */
	c->node[0].alive = 0;
	c->node[6].alive = 0;
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* Count (object, position) pairs whose holder differs between two placements. */
static size_t moved_positions(struct fcluster *c, uint32_t (*before)[EC_MAX_WIDTH])
{
	size_t moved = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, h);
		for (int i = 0; i < c->objs[k].nc; i++)
			moved += h[i] != before[k][i];
	}
	return moved;
}

static void test_join_moves_only_what_placement_moves(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 60, 2);
	uint32_t(*before)[EC_MAX_WIDTH] = calloc(c->nr_objs, sizeof(*before));
	for (size_t k = 0; k < c->nr_objs; k++)
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, before[k]);

	/* Two fresh nodes join, new zones. */
	c->nr = 10;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	c->node[9] = (struct fnode){.alive = 1, .zone = 9};
	size_t moved = moved_positions(c, before);
	assert_true(moved > 0);

	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	/* Exactly the moved positions were fetched; the rest was reused. */
	assert_int_equal(p.copied + p.rebuilt, moved);
	assert_int_equal(p.reused, p.total - moved);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* The old holders may now drop what moved, and nothing else. */
	size_t droppable = 0;
	for (int i = 0; i < 8; i++) {
		for (size_t k = 0; k < c->node[i].nr; k++) {
			struct ffrag *f = c->node[i].frags[k];
			struct recovery_frag rf = {.oid = f->oid,
						   .version = f->version,
						   .node = (uint32_t)i,
						   .idx = f->idx,
						   .copy_policy = f->cp,
						   .nr_copies = f->nc,
						   .frag_size = FS};
			uint32_t h[EC_MAX_WIDTH];
			fake_locate(c, f->oid, f->nc, h);
			bool can = recovery_can_drop(nr.r[i], &rf);
			assert_true(can == (h[f->idx] != (uint32_t)i));
			droppable += can;
		}
	}
	assert_int_equal(droppable, moved);
	free(before);
	free_all(&nr);
	cluster_free(c);
}

static void test_replan_mid_recovery_keeps_finished_work(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 30, 3);

	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	struct recovery_progress p0;
	sum_progress(c, &nr, &p0);
	size_t half = (size_t)p0.total / 2 + 20;
	run_all(c, &nr, half);
	struct recovery_progress p1;
	sum_progress(c, &nr, &p1);
	assert_true(p1.done > 0 && p1.done < p1.total);

	/* A second node fails mid-recovery: replan on the survivors. */
	c->node[5].alive = 0;
	uint64_t calls_before = c->exec_calls;
	plan_all(c, &nr, 3);
	struct recovery_progress p2;
	sum_progress(c, &nr, &p2);
	/* What the survivors had finished and still must hold stays done: at
	 * least the done jobs of nodes that survived, minus those whose
	 * position moved again. */
	uint64_t kept_done = 0;
	for (int i = 0; i < 8; i++)
		if (c->node[i].alive && nr.r[i]) {
			struct recovery_progress q;
			recovery_progress(nr.r[i], &q);
			kept_done += q.done;
		}
	assert_true(kept_done > 0);
	run_all(c, &nr, 0);
	struct recovery_progress p3;
	sum_progress(c, &nr, &p3);
	assert_int_equal(p3.failed, 0);
	assert_int_equal(p3.done, p3.total);
	/* Finished work was not redone: the jobs run after the replan are at
	 * most the ones not already done. */
	assert_true(c->exec_calls - calls_before <= p2.total - p2.done);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* A node that loses fragments it already holds (a failed or unplugged
 * disk: store_md.c) replans at the same epoch. Without
 * recovery_forget_done() the engine carried "done" over from the last
 * plan and the lost fragments stayed lost (test 140 found it); with it
 * they are fetched or rebuilt again. */
static void test_forget_done_refetches_fragments_lost_locally(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 30, 15, 7);
	c->node[1].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* Node 3 loses every other fragment it holds. */
	struct fnode *n3 = &c->node[3];
	size_t kept = 0, lost = 0;
	for (size_t k = 0; k < n3->nr; k++) {
		if (k % 2) {
			free(n3->frags[k]);
			lost++;
		} else {
			n3->frags[kept++] = n3->frags[k];
		}
	}
	n3->nr = kept;
	assert_true(lost > 0);
	recovery_forget_done(nr.r[3]);
	plan_all(c, &nr, 2); /* the same epoch: only node 3's plan changes */
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[3], &p);
	assert_int_equal(p.failed, 0);
	assert_true(p.copied + p.rebuilt >= lost);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* Work finished under one epoch is not reported again as this epoch's
 * copies or rebuilds: after the next membership change (recovery disabled,
 * as an admin does for maintenance) nothing counts as moved, and the
 * fragments moved before count as reused. A replan within the same epoch
 * keeps how each item was done. */
static void test_moves_of_an_earlier_epoch_are_not_counted_again(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 20, 5);
	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p1;
	sum_progress(c, &nr, &p1);
	assert_int_equal(p1.done, p1.total);
	uint64_t moved = p1.copied + p1.rebuilt;
	assert_true(moved > 0);

	/* Same epoch, planned again: the moves stay counted. */
	plan_all(c, &nr, 2);
	struct recovery_progress p2;
	sum_progress(c, &nr, &p2);
	assert_int_equal(p2.copied + p2.rebuilt, moved);

	/* Next epoch with recovery disabled: nothing may run, nothing counts
	 * as moved. */
	c->node[6].alive = 0;
	for (int i = 0; i < c->nr; i++)
		if (nr.r[i])
			recovery_set_enabled(nr.r[i], false);
	uint64_t calls = c->exec_calls;
	plan_all(c, &nr, 3);
	assert_int_equal(run_all(c, &nr, 0), 0);
	assert_int_equal(c->exec_calls, calls);
	struct recovery_progress p3;
	sum_progress(c, &nr, &p3);
	assert_int_equal(p3.copied, 0);
	assert_int_equal(p3.rebuilt, 0);
	assert_int_equal(p3.reused, p3.done);
	assert_true(p3.done > 0); /* fragments moved at epoch 2, still placed */
	free_all(&nr);
	cluster_free(c);
}

static void test_priority_object_is_recovered_first(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 0, 4);
	/* A fresh node joins: it must fetch many fragments. */
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	plan_all(c, &nr, 2);
	/* Pick the last object the new node must hold. */
	uint64_t last = 0;
	uint8_t last_idx = 0;
	int count = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, 6, h);
		for (int i = 0; i < 6; i++)
			if (h[i] == 8) {
				last = c->objs[k].oid;
				last_idx = (uint8_t)i;
				count++;
			}
	}
	assert_true(count > 2);
	assert_true(recovery_pending(nr.r[8], last, last_idx));
	assert_int_equal(recovery_prioritize(nr.r[8], last), 0);
	struct recovery_job *job;
	assert_int_equal(recovery_take(nr.r[8], 0, &job, NULL), 0);
	assert_true(job->oid == last);
	assert_int_equal(job->idx, last_idx);
	assert_int_equal(recovery_execute(&nr.rio[8], job), 0);
	recovery_finish(nr.r[8], job, 0);
	assert_false(recovery_pending(nr.r[8], last, last_idx));
	struct ffrag *f = node_find(&c->node[8], last, last_idx);
	assert_non_null(f);
	for (size_t k = 0; k < c->nr_objs; k++)
		if (c->objs[k].oid == last)
			assert_memory_equal(f->data, c->objs[k].frag[last_idx], FS);
	/* Nothing pending for it any more. */
	assert_int_equal(recovery_prioritize(nr.r[8], last), -ENOENT);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_throttle_bounds_jobs_in_flight_and_spaces_them(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 0, 5);
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	plan_all(c, &nr, 2);
	struct recovery *r = nr.r[8];
	struct recovery_throttle t = {.max = 2, .interval_ms = 10};
	assert_int_equal(recovery_set_throttle(r, &t), 0);
	struct recovery_job *a, *b, *x;
	uint64_t wait;
	assert_int_equal(recovery_take(r, 100, &a, &wait), 0);
	assert_int_equal(recovery_take(r, 100, &b, &wait), 0);
	assert_int_equal(recovery_take(r, 100, &x, &wait), -EAGAIN);
	struct recovery_progress p;
	recovery_progress(r, &p);
	assert_int_equal(p.in_flight, 2);
	recovery_execute(&nr.rio[8], a);
	recovery_finish(r, a, 100);
	/* The freed slot pauses for the interval. */
	assert_int_equal(recovery_take(r, 105, &x, &wait), -EAGAIN);
	assert_int_equal(wait, 5);
	assert_int_equal(recovery_take(r, 110, &x, &wait), 0);
	recovery_execute(&nr.rio[8], b);
	recovery_finish(r, b, 110);
	recovery_execute(&nr.rio[8], x);
	recovery_finish(r, x, 110);
	struct recovery_throttle g;
	recovery_get_throttle(r, &g);
	assert_int_equal(g.max, 2);
	assert_int_equal(g.interval_ms, 10);
	t.max = 0;
	assert_int_equal(recovery_set_throttle(r, &t), -EINVAL);

	/* Disabled: nothing is handed out, the state says so. */
	recovery_set_enabled(r, false);
	assert_int_equal(recovery_take(r, 1000, &x, &wait), -EAGAIN);
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_DISABLED);
	recovery_set_enabled(r, true);
	t = (struct recovery_throttle){.max = 4, .interval_ms = 0};
	recovery_set_throttle(r, &t);
	run_all(c, &nr, 0);
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_DONE);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_throttle_parse_accepts_max_and_interval(void **state)
{
	(void)state;
	struct recovery_throttle t = {.max = 4, .interval_ms = 0};
	assert_int_equal(recovery_throttle_parse("max=8,interval=100", &t), 0);
	assert_int_equal(t.max, 8);
	assert_int_equal(t.interval_ms, 100);
	assert_int_equal(recovery_throttle_parse("interval=5", &t), 0);
	assert_int_equal(t.max, 8);
	assert_int_equal(t.interval_ms, 5);
	assert_int_equal(recovery_throttle_parse("max=0", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("max=x", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("speed=3", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("", &t), -EINVAL);
	assert_int_equal(t.max, 8); /* unchanged on error */
}

static void test_returning_node_reuses_valid_data_and_refetches_stale(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 20, 6);
	/* Node 4 goes away with its store; the others recover. */
	c->node[4].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* While it is away, a few objects are rewritten (new version). */
	uint64_t seed = 99;
	for (size_t k = 0; k < c->nr_objs; k += 7) {
		struct fobj *o = &c->objs[k];
		o->version = 2;
		obj_make(o, &seed);
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, o->oid, o->nc, h);
		for (int i = 0; i < o->nc; i++)
			node_put(&c->node[h[i]], o->oid, (uint8_t)i, o->cp, o->nc, 2, o->frag[i]);
	}
	/* It comes back with its old data, one fragment of it now corrupt. */
	c->node[4].alive = 1;
	size_t old_held = c->node[4].nr;
	assert_true(old_held > 2);
	struct ffrag *bad = NULL;
	for (size_t k = 0; k < c->node[4].nr && !bad; k++)
		if (c->node[4].frags[k]->version == 1 &&
		    c->objs[(c->node[4].frags[k]->oid & 0xffffffff)].version == 1)
			bad = c->node[4].frags[k];
	assert_non_null(bad);
	bad->data[7] ^= 0xff; /* crc no longer matches */

	free_all(&nr);
	plan_all(c, &nr, 3);
	c->exec_calls = 0;
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[4], &p);
	assert_int_equal(p.failed, 0);
	/* Unchanged fragments were verified and kept, not fetched again. */
	assert_true(p.reused > 0);
	assert_true(p.copied + p.rebuilt >= 1); /* the stale and the corrupt ones */
	size_t stale = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, h);
		for (int i = 0; i < c->objs[k].nc; i++)
			if (h[i] == 4 && c->objs[k].version == 2)
				stale++;
	}
	assert_int_equal(p.copied + p.rebuilt, stale + 1);
	assert_int_equal(p.reused, p.total - stale - 1);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_recovery_that_would_fill_the_disk_is_refused(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	write_objects(c, 60, 0, 7);
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	size_t n;
	struct recovery_frag *fr = gather(c, &n);
	struct fnodes_rec nr = {0};
	struct recovery *r;
	assert_int_equal(recovery_new(NULL, &r), 0);
	struct recovery_epoch ep;
	epoch_of(c, &nr, 8, 2, &ep);
	ep.free_bytes = 3 * FS; /* far less than the share it must take */
	ep.reserve_bytes = FS;
	assert_int_equal(recovery_plan(r, &ep, fr, n), -ENOSPC);
	assert_non_null(strstr(recovery_refusal(r), "refused"));
	assert_non_null(strstr(recovery_refusal(r), "free"));
	struct recovery_progress p;
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_REFUSED);
	assert_true(p.need_bytes > 2 * FS);
	struct recovery_job *job;
	assert_int_equal(recovery_take(r, 0, &job, NULL), -ENOSPC);
	assert_int_equal(c->node[8].nr, 0); /* nothing written */

	/* With room, the same plan goes ahead. */
	ep.free_bytes = 1ULL << 30;
	assert_int_equal(recovery_plan(r, &ep, fr, n), 0);
	assert_string_equal(recovery_refusal(r), "");
	assert_int_equal(recovery_take(r, 0, &job, NULL), 0);
	recovery_finish(r, job, 0);
	recovery_free(r);
	free(fr);
	cluster_free(c);
}

static void test_source_dying_mid_recovery_falls_back_to_others(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 40, 8);
	c->node[1].alive = 0;
	plan_all(c, &nr, 2);
	/* Node 6 dies before anyone noticed: plans still list it as a source. */
	c->node[6].alive = 0;
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	/* Jobs whose only copy was on 6 fail (replicas with 2 of 3 gone... no:
	 * 3 copies, 2 lost, 1 left) or rebuild from the 4 left; none corrupt. */
	/* Membership catches up: replan and finish. */
	plan_all(c, &nr, 3);
	run_all(c, &nr, 0);
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

static void test_too_few_zones_gives_best_redundancy_then_completes_on_join(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(6);
	struct fnodes_rec nr = {0};
	write_objects(c, 30, 0, 9);
	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	/* Every node reports every object degraded: one position, no home. */
	recovery_progress(nr.r[0], &p);
	assert_int_equal(p.degraded, 30);
	assert_int_equal(p.state, RECOVERY_DONE);
	assert_int_equal(assert_full_redundancy(c), 30);
	/* A fragment whose position has no home is never dropped. */
	size_t homeless_checked = 0;
	for (int i = 0; i < 6; i++) {
		if (!c->node[i].alive)
			continue;
		for (size_t k = 0; k < c->node[i].nr; k++) {
			struct ffrag *f = c->node[i].frags[k];
			uint32_t h[EC_MAX_WIDTH];
			fake_locate(c, f->oid, f->nc, h);
			if (h[f->idx] != RECOVERY_NO_NODE)
				continue;
			struct recovery_frag rf = {.oid = f->oid,
						   .version = f->version,
						   .node = (uint32_t)i,
						   .idx = f->idx,
						   .copy_policy = f->cp,
						   .nr_copies = f->nc};
			assert_false(recovery_can_drop(nr.r[i], &rf));
			homeless_checked++;
		}
	}
	assert_true(homeless_checked > 0);
	assert_all_readable(c);

	/* A node joins: full redundancy again. */
	c->nr = 7;
	c->node[6] = (struct fnode){.alive = 1, .zone = 6};
	plan_all(c, &nr, 3);
	run_all(c, &nr, 0);
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.degraded, 0);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_corrupt_fragment_is_rebuilt_by_plan_object(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 10, 0, 10);
	plan_all(c, &nr, 1);
	run_all(c, &nr, 0); /* all verified, all reused */
	struct fobj *o = &c->objs[3];
	uint32_t h[EC_MAX_WIDTH];
	fake_locate(c, o->oid, o->nc, h);
	uint32_t victim = h[1];
	struct ffrag *f = node_find(&c->node[victim], o->oid, 1);
	f->data[100] ^= 0x5a;

	size_t n;
	struct recovery_frag *all = gather(c, &n), *mine = calloc(n, sizeof(*mine));
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (all[k].oid == o->oid)
			mine[m++] = all[k];
	struct recovery_epoch ep;
	epoch_of(c, &nr, victim, 1, &ep);
	assert_int_equal(recovery_plan_object(nr.r[victim], &ep, mine, m), 0);
	assert_true(recovery_pending(nr.r[victim], o->oid, 1));
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[victim], &p);
	assert_int_equal(p.failed, 0);
	assert_true(p.rebuilt + p.copied >= 1);
	f = node_find(&c->node[victim], o->oid, 1);
	assert_int_equal(f->crc, sd_crc32c(0, f->data, FS));
	assert_memory_equal(f->data, o->frag[1], FS);
	/* A node that holds no position of it has nothing to do. */
	uint32_t other = RECOVERY_NO_NODE;
	for (uint32_t i = 0; i < 8 && other == RECOVERY_NO_NODE; i++) {
		int holds = 0;
		for (int k = 0; k < o->nc; k++)
			holds |= h[k] == i;
		if (!holds)
			other = i;
	}
	epoch_of(c, &nr, other, 1, &ep);
	assert_int_equal(recovery_plan_object(nr.r[other], &ep, mine, m), -ENOENT);
	free(all);
	free(mine);
	free_all(&nr);
	cluster_free(c);
}

static void test_lost_object_is_reported_and_never_dropped(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 5, 0, 11);
	/* Object 0 loses 3 of 6 fragments: below d = 4. */
	struct fobj *o = &c->objs[0];
	uint32_t h[EC_MAX_WIDTH];
	fake_locate(c, o->oid, o->nc, h);
	for (int i = 0; i < 3; i++)
		node_remove(&c->node[h[i]], o->oid, (uint8_t)i);
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[h[4]], &p);
	assert_int_equal(p.lost, 1);
	/* The daemon names it (one err line per object, issue 14). */
	uint64_t lost[4] = {0};
	assert_int_equal(recovery_lost_oids(nr.r[h[4]], lost, 4), 1);
	assert_int_equal(lost[0], o->oid);
	assert_int_equal(recovery_lost_oids(nr.r[h[4]], NULL, 0), 1);
	struct recovery_frag rf = {.oid = o->oid,
				   .version = 1,
				   .node = h[4],
				   .idx = 4,
				   .copy_policy = o->cp,
				   .nr_copies = o->nc};
	assert_false(recovery_can_drop(nr.r[h[4]], &rf));
	free_all(&nr);
	cluster_free(c);
}

/* Every holder of a one-copy object is this node. */
static int locate_self(void *arg, uint64_t oid, int n, uint32_t *out)
{
	for (int i = 0; i < n; i++)
		out[i] = 0;
	return 0;
}

/* A one-node cluster with one copy: the only job keeps the local fragment
 * and has no source at all. Taking it copied zero sources from a source
 * table that was never allocated (memcpy from NULL + 0: UBSan's "applying
 * zero offset to null pointer", found by fuzz_client). */
static void test_job_without_sources_is_taken(void **state)
{
	(void)state;
	struct recovery_frag f = {.oid = 0x0000000100000001ull,
				  .version = 3,
				  .disk_bytes = FS,
				  .frag_size = FS,
				  .node = 0,
				  .idx = 0,
				  .nr_copies = 1};
	uint32_t members[1] = {0};
	struct recovery_epoch ep = {.epoch = 2,
				    .self = 0,
				    .members = members,
				    .nr_members = 1,
				    .locate = locate_self,
				    .free_bytes = 1ull << 30};
	struct recovery *r;
	assert_int_equal(recovery_new(NULL, &r), 0);
	assert_int_equal(recovery_plan(r, &ep, &f, 1), 0);
	struct recovery_job *job;
	assert_int_equal(recovery_take(r, 0, &job, NULL), 0);
	assert_int_equal(job->kind, RECOVERY_REUSE);
	assert_int_equal(job->nr_src, 0);
	assert_true(job->oid == f.oid && job->version == 3);
	recovery_finish(r, job, 0);
	recovery_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_one_node_restores_full_redundancy_then_survives_two_more),
	    cmocka_unit_test(test_join_moves_only_what_placement_moves),
	    cmocka_unit_test(test_replan_mid_recovery_keeps_finished_work),
	    cmocka_unit_test(test_moves_of_an_earlier_epoch_are_not_counted_again),
	    cmocka_unit_test(test_priority_object_is_recovered_first),
	    cmocka_unit_test(test_throttle_bounds_jobs_in_flight_and_spaces_them),
	    cmocka_unit_test(test_throttle_parse_accepts_max_and_interval),
	    cmocka_unit_test(test_returning_node_reuses_valid_data_and_refetches_stale),
	    cmocka_unit_test(test_recovery_that_would_fill_the_disk_is_refused),
	    cmocka_unit_test(test_source_dying_mid_recovery_falls_back_to_others),
	    cmocka_unit_test(test_too_few_zones_gives_best_redundancy_then_completes_on_join),
	    cmocka_unit_test(test_corrupt_fragment_is_rebuilt_by_plan_object),
	    cmocka_unit_test(test_lost_object_is_reported_and_never_dropped),
	    cmocka_unit_test(test_job_without_sources_is_taken),
	    cmocka_unit_test(test_forget_done_refetches_fragments_lost_locally),
	};
	sd_log_set_level(SD_LOG_WARNING);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ec_codec_cleanup();
	return rc;
}
