/* vdi_io.c - parallel, in-order VDI reads and writes through the object protocol (vdi read/write,
 * create -P). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

/*
 * The caller's thread moves bytes between fd and a ring of chunk slots in
 * VDI order; DOG_IO_WORKERS threads, each with its own connection to the
 * sheep, carry the chunks. A chunk never crosses an object boundary and is
 * at most DOG_IO_CHUNK_MAX bytes, so a whole 4 MiB object goes out in one
 * request (a full-stripe write for an erasure-coded VDI).
 *
 * A write to an object the inode does not yet point at creates it
 * (CREATE_AND_WRITE_OBJ, copy-on-write from a snapshot's object when the
 * inode points at another VDI), then records it in the inode's
 * data_vdi_id[idx]: object first, pointer second, so a crash in between
 * leaves an unreferenced object, never a pointer to nothing. Chunks of one
 * object (objects above DOG_IO_CHUNK_MAX) wait while it is being created.
 *
 * Reads of unallocated objects give zeros without asking. A failed chunk
 * stops the transfer: a read writes nothing past the last good chunk, so
 * what reaches stdout is always correct data.
 */
#define DOG_IO_WORKERS	    4
#define DOG_IO_SLOTS	    (2 * DOG_IO_WORKERS)
#define DOG_IO_CHUNK_MAX    (32u << 20)
#define DOG_IO_RETRIES	    50
#define DOG_IO_RETRY_US	    100000
#define DOG_IO_PROGRESS_MIN (16u << 20) /* no bar for smaller transfers */
#define MAP_CREATING	    0xffffffffu /* data_vdi_id slot being created */

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct io_slot {
	enum slot_state state;
	uint64_t off; /* VDI offset */
	uint32_t len;
	char *buf;
	int res; /* SD_RES_* or -errno */
};

struct io_job {
	const struct dog *d;
	const char *name;
	enum dog_io_dir dir;
	uint32_t vid;
	struct sd_inode *ino; /* header only */
	uint32_t shift;
	uint32_t first_idx;
	uint32_t *map; /* data_vdi_id[first_idx..] */
	const char *zeros;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct io_slot slots[DOG_IO_SLOTS];
	uint64_t seq_ready; /* chunks handed out so far */
	uint64_t seq_taken; /* chunks taken by workers */
	bool quit;
};

static int retryable(int res)
{
	return res == SD_RES_AGAIN || res == SD_RES_STARTUP || res == SD_RES_NODE_IN_RECOVERY;
}

/* Write one chunk that stays inside object idx. */
static int write_chunk(struct io_job *j, int fd, struct io_slot *s, uint32_t idx, uint32_t ooff)
{
	uint32_t *ent = &j->map[idx - j->first_idx];
	const char *buf = j->dir == DOG_IO_ZERO ? j->zeros : s->buf;
	uint64_t oid = vid_to_data_oid(j->vid, idx);

	pthread_mutex_lock(&j->lock);
	while (*ent == MAP_CREATING)
		pthread_cond_wait(&j->cond, &j->lock);
	uint32_t owner = *ent;
	if (owner != j->vid)
		*ent = MAP_CREATING;
	pthread_mutex_unlock(&j->lock);

	if (owner == j->vid)
		return dog_write_obj(fd, oid, buf, s->len, ooff, j->ino, false, 0);

	uint64_t cow = owner ? vid_to_data_oid(owner, idx) : 0;
	int res = dog_write_obj(fd, oid, buf, s->len, ooff, j->ino, true, cow);
	if (res == SD_RES_SUCCESS)
		res = dog_write_obj(fd, vid_to_vdi_oid(j->vid), &j->vid, sizeof(j->vid),
				    sd_inode_vid_offset(idx), j->ino, false, 0);
	pthread_mutex_lock(&j->lock);
	*ent = res == SD_RES_SUCCESS ? j->vid : owner;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return res;
}

static int do_chunk(struct io_job *j, int fd, struct io_slot *s)
{
	uint64_t obj_size = 1ull << j->shift;
	uint32_t idx = (uint32_t)(s->off >> j->shift);
	uint32_t ooff = (uint32_t)(s->off & (obj_size - 1));
	if (j->dir != DOG_IO_READ)
		return write_chunk(j, fd, s, idx, ooff);
	uint32_t owner = j->map[idx - j->first_idx];
	if (!owner) {
		memset(s->buf, 0, s->len);
		return SD_RES_SUCCESS;
	}
	return dog_read_obj(fd, vid_to_data_oid(owner, idx), s->buf, s->len, ooff);
}

static void *worker(void *arg)
{
	struct io_job *j = arg;
	int fd = sd_connect(j->d->addr, j->d->port, 5000);
	/* A worker that cannot connect fails the chunks it takes, with the
	 * reason: the sheep went away, and the caller reports it. */
	pthread_mutex_lock(&j->lock);
	for (;;) {
		while (!j->quit && j->seq_taken == j->seq_ready)
			pthread_cond_wait(&j->cond, &j->lock);
		if (j->quit)
			break;
		struct io_slot *s = &j->slots[j->seq_taken++ % DOG_IO_SLOTS];
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&j->lock);
		int res = fd < 0 ? fd : SD_RES_SUCCESS;
		for (int t = 0; fd >= 0 && t < DOG_IO_RETRIES; t++) {
			res = do_chunk(j, fd, s);
			if (!retryable(res))
				break;
			usleep(DOG_IO_RETRY_US);
		}
		pthread_mutex_lock(&j->lock);
		s->res = res;
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&j->cond);
	}
	pthread_mutex_unlock(&j->lock);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Read up to len bytes from fd, stopping early only at EOF. */
static ssize_t read_upto(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static const char *verb(enum dog_io_dir dir)
{
	return dir == DOG_IO_READ ? "vdi read" : (dir == DOG_IO_WRITE ? "vdi write" : "vdi create");
}

/* Report a failed chunk and give the exit code. */
static int chunk_error(const struct io_job *j, const struct io_slot *s)
{
	const char *op = j->dir == DOG_IO_READ ? "read" : "write";
	if (s->res < 0) {
		dog_err("%s: cannot %s VDI %s at offset %llu: %s: is sheep at %s:%u still running?",
			verb(j->dir), op, j->name, (unsigned long long)s->off, strerror(-s->res),
			j->d->addr, j->d->port);
		return DOG_EXIT_SYSFAIL;
	}
	const char *hint = dog_result_hint((uint32_t)s->res);
	dog_err("%s: cannot %s VDI %s at offset %llu: %s%s%s", verb(j->dir), op, j->name,
		(unsigned long long)s->off, sd_strerror((uint32_t)s->res), hint ? ": " : "",
		hint ? hint : "");
	int rc = dog_exit_of_result((uint32_t)s->res);
	return rc ? rc : DOG_EXIT_FAILURE;
}

/* Look the VDI up and read its header and the map of [off, off+len). */
static int open_vdi(struct io_job *j, uint64_t *off, uint64_t *len, bool len_given)
{
	int fd = dog_connect(j->d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	int rc = DOG_EXIT_SUCCESS;
	int ret = dog_vdi_lookup_snap(fd, j->name, j->d->snap, &j->vid);
	if (ret == SD_RES_SUCCESS)
		ret = dog_read_inode_hdr(fd, j->vid, j->ino);
	if (ret != SD_RES_SUCCESS)
		goto fail;
	j->shift = dog_inode_shift(j->ino);
	uint64_t size = j->ino->vdi_size;
	/* Sheepdog's dog: a write or read that runs past the end is cut at the
	 * end (the rest of stdin is ignored); one that starts past the end, or
	 * a write of a non-empty length starting exactly at it, is refused. */
	if (*off > size || (len_given && *len && *off == size && j->dir != DOG_IO_READ)) {
		char s[32];
		sd_format_size(size, s, sizeof(s));
		dog_err("%s: offset %llu is beyond the end of VDI %s (%llu bytes, %s)",
			verb(j->dir), (unsigned long long)*off, j->name, (unsigned long long)size, s);
		rc = DOG_EXIT_FAILURE;
		goto out;
	}
	if (len_given && *len > size - *off)
		*len = size - *off;
	if (!len_given)
		*len = size - *off;
	if (!*len)
		goto out;
	j->first_idx = (uint32_t)(*off >> j->shift);
	uint32_t last = (uint32_t)((*off + *len - 1) >> j->shift);
	uint32_t n = last - j->first_idx + 1;
	j->map = calloc(n, sizeof(uint32_t));
	if (!j->map) {
		rc = DOG_EXIT_SYSFAIL;
		goto out;
	}
	ret = dog_read_obj(fd, vid_to_vdi_oid(j->vid), j->map, n * (uint32_t)sizeof(uint32_t),
			   sd_inode_vid_offset(j->first_idx));
	if (ret != SD_RES_SUCCESS)
		goto fail;
	goto out;
fail:
	if (ret == -EBADMSG) {
		dog_err("%s: the inode of %s is not valid (object size shift outside 20..31)",
			verb(j->dir), j->name);
		rc = DOG_EXIT_FAILURE;
	} else if (ret < 0) {
		dog_err("%s: lost the connection to sheep: %s", verb(j->dir), strerror(-ret));
		rc = DOG_EXIT_SYSFAIL;
	} else {
		rc = dog_fail_result(verb(j->dir), (uint32_t)ret, j->name);
	}
out:
	close(fd);
	return rc;
}

/*
 * dog vdi read/write: copy between fd and [off, off+len) of VDI name over
 * the client protocol, in chunks of at most one object, on I/O threads.
 * Returns 0, or a DOG_EXIT_* code after saying on stderr what failed.
 */
int dog_vdi_io(const struct dog *d, const char *name, enum dog_io_dir dir, int fd, uint64_t off,
	       uint64_t len, bool len_given)
{
	struct io_job j;
	memset(&j, 0, sizeof(j));
	j.d = d;
	j.name = name;
	j.dir = dir;
	j.ino = malloc(sizeof(*j.ino)); /* sparse: only the header is touched */
	if (!j.ino)
		return DOG_EXIT_SYSFAIL;
	int rc = open_vdi(&j, &off, &len, len_given);
	/* One lock for every writer: a write holds the VDI's lock, so it is
	 * refused while an NBD writer (QEMU) has the VDI, and fences it out. */
	int lockfd = -1;
	if (!rc && len && dir == DOG_IO_WRITE) {
		lockfd = dog_connect(d);
		rc = lockfd < 0 ? dog_exit_of_errno(lockfd) : dog_vdi_take_lock(lockfd, verb(dir), name);
	}
	if (rc || !len) {
		if (lockfd >= 0)
			close(lockfd);
		free(j.map);
		free(j.ino);
		return rc;
	}
	uint64_t obj_size = 1ull << j.shift;
	uint32_t chunk_max = (uint32_t)SD_MIN(obj_size, DOG_IO_CHUNK_MAX);
	char *zeros = NULL;
	if (dir == DOG_IO_ZERO) {
		zeros = calloc(1, chunk_max);
		j.zeros = zeros;
	}
	bool nomem = dir == DOG_IO_ZERO && !zeros;
	for (int i = 0; i < DOG_IO_SLOTS && dir != DOG_IO_ZERO; i++)
		if (!(j.slots[i].buf = malloc(chunk_max)))
			nomem = true;
	pthread_t tids[DOG_IO_WORKERS];
	int nr_workers = 0;
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);
	if (nomem) {
		dog_err("%s: out of memory", verb(dir));
		rc = DOG_EXIT_SYSFAIL;
		goto out;
	}
	for (; nr_workers < DOG_IO_WORKERS; nr_workers++)
		if (pthread_create(&tids[nr_workers], NULL, worker, &j))
			break;
	if (!nr_workers) {
		dog_err("%s: cannot start I/O threads", verb(dir));
		rc = DOG_EXIT_SYSFAIL;
		goto out;
	}

	struct dog_progress prog;
	dog_progress_start(&prog, d->progress && len >= DOG_IO_PROGRESS_MIN,
			   dir == DOG_IO_READ ? "reading" : "writing", len);
	uint64_t pos = off, end = off + len;
	uint64_t seq_out = 0;
	bool eof = false, failed = false;
	pthread_mutex_lock(&j.lock);
	for (;;) {
		/* Hand out chunks while the ring has room. */
		while (!failed && !eof && pos < end && j.seq_ready - seq_out < DOG_IO_SLOTS) {
			struct io_slot *s = &j.slots[j.seq_ready % DOG_IO_SLOTS];
			uint64_t in_obj = obj_size - (pos & (obj_size - 1));
			uint32_t clen = (uint32_t)SD_MIN(SD_MIN(in_obj, chunk_max), end - pos);
			if (dir == DOG_IO_WRITE) {
				pthread_mutex_unlock(&j.lock);
				ssize_t n = read_upto(fd, s->buf, clen);
				pthread_mutex_lock(&j.lock);
				if (n < 0) {
					dog_err("vdi write: cannot read stdin: %s",
						strerror((int)-n));
					rc = DOG_EXIT_SYSFAIL;
					failed = true;
					break;
				}
				if ((size_t)n < clen)
					eof = true;
				if (!n)
					break;
				clen = (uint32_t)n;
			}
			s->off = pos;
			s->len = clen;
			s->res = 0;
			s->state = SLOT_READY;
			pos += clen;
			j.seq_ready++;
			pthread_cond_broadcast(&j.cond);
		}
		if (seq_out == j.seq_ready)
			break;
		struct io_slot *s = &j.slots[seq_out % DOG_IO_SLOTS];
		while (s->state != SLOT_DONE)
			pthread_cond_wait(&j.cond, &j.lock);
		if (!failed && s->res != SD_RES_SUCCESS) {
			pthread_mutex_unlock(&j.lock);
			rc = chunk_error(&j, s);
			pthread_mutex_lock(&j.lock);
			failed = true;
		}
		if (!failed && dir == DOG_IO_READ) {
			pthread_mutex_unlock(&j.lock);
			int ret = write_all(fd, s->buf, s->len);
			pthread_mutex_lock(&j.lock);
			if (ret < 0) {
				dog_err("vdi read: cannot write to stdout: %s", strerror(-ret));
				rc = DOG_EXIT_SYSFAIL;
				failed = true;
			}
		}
		if (!failed)
			dog_progress_add(&prog, s->len);
		s->state = SLOT_FREE;
		seq_out++;
	}
	j.quit = true;
	pthread_cond_broadcast(&j.cond);
	pthread_mutex_unlock(&j.lock);
	for (int i = 0; i < nr_workers; i++)
		pthread_join(tids[i], NULL);
	dog_progress_end(&prog);
out:
	if (lockfd >= 0) {
		/* Released now, not when sheep notices the closed connection. */
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_RELEASE_VDI);
		req.vdi.base_vdi_id = j.vid;
		sd_exec(lockfd, &req, NULL, &rsp, NULL, 0);
		close(lockfd);
	}
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cond);
	for (int i = 0; i < DOG_IO_SLOTS; i++)
		free(j.slots[i].buf);
	free(zeros);
	free(j.map);
	free(j.ino);
	return rc;
}
