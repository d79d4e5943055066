/* exec.c - carry out one recovery job: verify a local fragment, else copy it from a holder, else
 * rebuild it from d others. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "recovery/recovery.h"

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
	    cur < job->version) {
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
	for (int pass = 0; pass < 3; pass++) {
		int got = 0;
		uint32_t mask = 0;
		uint64_t start_ref = ref;
		for (uint32_t k = 0; k < job->nr_src && got < d; k++) {
			const struct recovery_src *s = &job->src[k];
			if (s->idx == job->idx || s->idx >= 32 || (mask & (1u << s->idx)))
				continue;
			uint64_t v = 0;
			int r = io->read(io->arg, s->node, job->oid, s->idx, bufs[got], 0,
					 job->frag_size, &v);
			if (r) {
				sd_debug("%016" PRIx64 " fragment %u from node %u: %d", job->oid,
					 s->idx, s->node, r);
				continue;
			}
			job->bytes_read += job->frag_size;
			if (v < ref) {
				*moved = true;
				continue;
			}
			if (v > ref) {
				/* The object moved on: start over at its version,
				 * keeping this read as the first one. */
				*moved = true;
				ref = v;
				void *t = bufs[0];
				bufs[0] = bufs[got];
				bufs[got] = t;
				got = 0;
				mask = 0;
			}
			idx[got] = s->idx;
			mask |= 1u << s->idx;
			got++;
		}
		if (got == d) {
			rc = io->decode(io->arg, job->copy_policy, job->frag_size, idx,
					(const void *const *)bufs, job->idx, out);
			if (rc == 0)
				job->version = ref;
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
		if (rc == 0 && v >= job->version) {
			job->version = v;
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
		rc = io->read(io->arg, s->node, job->oid, s->idx, buf, 0, job->frag_size, &v);
		if (rc) {
			sd_debug("%016" PRIx64 " copy %u from node %u: %d", job->oid, s->idx,
				 s->node, rc);
			continue;
		}
		job->bytes_read += job->frag_size;
		if (v < job->version) {
			moved = true;
			continue;
		}
		job->version = v; /* a newer whole copy is as good */
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
