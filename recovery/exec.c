/* exec.c - carry out one recovery job: verify a local fragment, else copy it from a holder, else
 * rebuild it from d others. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "recovery/recovery.h"

/* The generation a fragment idx at its own version real belongs to, by
 * the job's record (recovery.h, struct recovery_lc). */
static uint64_t gen_of(const struct recovery_job *job, uint8_t idx, uint64_t real)
{
	int d = recovery_policy_data(job->copy_policy);
	if (!job->copy_policy || !job->lc.valid || idx >= d || idx >= RECOVERY_LC_MAX ||
	    real == job->version)
		return real;
	uint8_t dl = job->lc.delta[idx];
	return dl < job->version && real == job->version - dl ? job->version : real;
}

/* What install writes for generation gen whose record is rec (may be
 * invalid): the job's fragment at its own version in gen, and the record
 * when that version is gen (the write that made gen made this fragment). */
static void put_as(struct recovery_job *job, uint64_t gen, const struct recovery_lc *rec)
{
	int d = recovery_policy_data(job->copy_policy);
	uint64_t v = gen;
	if (job->copy_policy && rec->valid && job->idx < d && job->idx < RECOVERY_LC_MAX &&
	    rec->delta[job->idx] < gen)
		v = gen - rec->delta[job->idx];
	job->put_version = v;
	memset(&job->put_lc, 0, sizeof(job->put_lc));
	if (v == gen && rec->valid)
		job->put_lc = *rec;
}

static int finish(struct recovery_job *job, int rc, uint8_t how)
{
	job->result = rc;
	if (rc == 0)
		job->how = how;
	return rc;
}

/*
 * Install buf; a newer local write that got there first also counts. The
 * local fragment may also have moved back (an early-acknowledged write
 * dropped, its fragment rolled back) or to a version still older than the
 * one built here: it is behind, so install over what is there now. Keeping
 * it left a 4:2 object at 5 of 6 after recovery said done (thrash, ASan,
 * fragment 0 at 116 while the object was at 120).
 */
static int install(const struct recovery_io *io, struct recovery_job *job, const void *buf)
{
	int rc = io->install(io->arg, job, buf);
	uint64_t cur;
	if (rc == -ESTALE && io->verify(io->arg, job->oid, job->idx, &cur) == 0 &&
	    gen_of(job, job->idx, cur) < job->version) {
		sd_info("%016" PRIx64 " fragment %u: moved to version %" PRIu64 " meanwhile, "
			"still older than %" PRIu64 ": installing over it",
			job->oid, job->idx, cur, job->version);
		job->have_version = cur;
		rc = io->install(io->arg, job, buf);
	}
	if (rc == -EEXIST || rc == -ESTALE) {
		sd_info("%016" PRIx64 " fragment %u: written locally meanwhile, kept", job->oid,
			job->idx);
		return 0;
	}
	if (rc == 0)
		job->bytes_written += job->frag_size;
	return rc;
}

/*
 * Gather d distinct fragments of one version (the newest seen, at least
 * job->version) and decode the missing one into out. A source that answers
 * with a newer version restarts the gathering at that version, once per
 * version, so a write racing with us never mixes two generations.
 */
static int rebuild(const struct recovery_io *io, struct recovery_job *job, void *out, bool *moved)
{
	int d = recovery_policy_data(job->copy_policy);
	if (d < 1 || d > 31)
		return -EINVAL;
	void *bufs[32] = {0};
	uint8_t idx[32];
	int rc = -ENODATA;
	for (int k = 0; k < d; k++) {
		bufs[k] = malloc(job->frag_size);
		if (!bufs[k]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	uint64_t ref = job->version;
	/* The record of ref: the job's, or once ref moved on, one read from
	 * a source of ref (the fragments a write makes all carry it). */
	struct recovery_lc rec = job->lc, srec;
	for (int pass = 0; pass < 3; pass++) {
		int got = 0;
		uint32_t mask = 0;
		uint64_t start_ref = ref;
		for (uint32_t k = 0; k < job->nr_src && got < d; k++) {
			const struct recovery_src *s = &job->src[k];
			if (s->idx == job->idx || s->idx >= 32 || (mask & (1u << s->idx)))
				continue;
			uint64_t v = 0;
			memset(&srec, 0, sizeof(srec));
			int r = io->read(io->arg, s->node, job->oid, s->idx, bufs[got], 0,
					 job->frag_size, &v, &srec);
			if (r) {
				sd_debug("%016" PRIx64 " fragment %u from node %u: %d", job->oid,
					 s->idx, s->node, r);
				continue;
			}
			job->bytes_read += job->frag_size;
			/* Its generation: by the job's record while ref is the
			 * job's; past it, only fragments at ref itself count
			 * (the record of a newer generation is not known for
			 * the others). */
			v = ref == job->version ? gen_of(job, s->idx, v) : v;
			if (v < ref) {
				*moved = true;
				continue;
			}
			if (v > ref) {
				/* The object moved on: start over at its version,
				 * keeping this read as the first one. */
				*moved = true;
				ref = v;
				rec = srec;
				void *t = bufs[0];
				bufs[0] = bufs[got];
				bufs[got] = t;
				got = 0;
				mask = 0;
			}
			if (!rec.valid && srec.valid)
				rec = srec;
			idx[got] = s->idx;
			mask |= 1u << s->idx;
			got++;
		}
		if (got == d) {
			rc = io->decode(io->arg, job->copy_policy, job->frag_size, idx,
					(const void *const *)bufs, job->idx, out);
			if (rc == 0) {
				job->version = ref;
				put_as(job, ref, &rec);
			}
			goto out;
		}
		if (ref == start_ref)
			break; /* no newer version appeared: sources are simply short */
	}
	rc = *moved ? -EAGAIN : -ENODATA;
out:
	for (int k = 0; k < d; k++)
		free(bufs[k]);
	return rc;
}

int recovery_execute(const struct recovery_io *io, struct recovery_job *job)
{
	job->how = RECOVERY_HOW_NONE;
	job->bytes_read = job->bytes_written = 0;
	int rc;

	if (job->kind == RECOVERY_REUSE) {
		uint64_t v = 0;
		rc = io->verify(io->arg, job->oid, job->idx, &v);
		if (rc == 0 && gen_of(job, job->idx, v) >= job->version) {
			job->version = gen_of(job, job->idx, v);
			job->put_version = v;
			return finish(job, 0, RECOVERY_HOW_REUSED);
		}
		if (rc == 0)
			job->have_version = v;
		else if (rc == -ENOENT)
			job->have_version = RECOVERY_ABSENT;
		else
			sd_warn("%016" PRIx64
				" fragment %u: local copy is bad (%d), fetching it again",
				job->oid, job->idx, rc);
	}

	void *buf = malloc(job->frag_size ? job->frag_size : 1);
	if (!buf)
		return finish(job, -ENOMEM, 0);
	bool moved = false;

	for (uint32_t k = 0; k < job->nr_src; k++) {
		const struct recovery_src *s = &job->src[k];
		if (job->copy_policy && s->idx != job->idx)
			continue; /* EC: only the same fragment is a copy */
		uint64_t v = 0;
		struct recovery_lc srec = {0};
		rc =
		    io->read(io->arg, s->node, job->oid, s->idx, buf, 0, job->frag_size, &v, &srec);
		if (rc) {
			sd_debug("%016" PRIx64 " copy %u from node %u: %d", job->oid, s->idx,
				 s->node, rc);
			continue;
		}
		job->bytes_read += job->frag_size;
		uint64_t g = gen_of(job, s->idx, v);
		if (g < job->version) {
			moved = true;
			continue;
		}
		/* A newer whole copy is as good; a copy is the fragment as it
		 * is: its version and its record. */
		job->version = g;
		job->put_version = v;
		job->put_lc = srec;
		rc = install(io, job, buf);
		free(buf);
		return finish(job, rc, RECOVERY_HOW_COPIED);
	}

	if (job->copy_policy) {
		rc = rebuild(io, job, buf, &moved);
		if (rc == 0)
			rc = install(io, job, buf);
		free(buf);
		return finish(job, rc, RECOVERY_HOW_REBUILT);
	}
	free(buf);
	return finish(job, moved ? -EAGAIN : -ENODATA, 0);
}
