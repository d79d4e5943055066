/* recovery_sim.h - the recovery unit tests' fake in-memory cluster: nodes holding fragments with
 * versions and crc32c, rendezvous placement over zones, the I/O callbacks, and helpers that plan
 * and run recovery on every node and check redundancy. */
#ifndef SD_TEST_RECOVERY_SIM_H
#define SD_TEST_RECOVERY_SIM_H

/* Include after cmocka.h and the headers test_recovery.c includes. */

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
		  uint32_t len, uint64_t *version, struct recovery_lc *lc)
{
	memset(lc, 0, sizeof(*lc));
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
	node_put(n, job->oid, job->idx, job->copy_policy, job->nr_copies, job->put_version, buf);
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

#endif
