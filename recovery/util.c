/* util.c - recovery helpers: the (oid, idx) map, throttle parsing, names and error text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "recovery/engine_priv.h"

static uint64_t key_hash(uint64_t oid, uint32_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 56)) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static int map_grow(struct rec_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	struct rec_key *ns = malloc(ncap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < ncap; i++)
		ns[i].val = UINT32_MAX;
	for (size_t i = 0; i < m->cap; i++) {
		struct rec_key *k = &m->slots[i];
		if (k->val == UINT32_MAX)
			continue;
		size_t j = key_hash(k->oid, k->idx) & (ncap - 1);
		while (ns[j].val != UINT32_MAX)
			j = (j + 1) & (ncap - 1);
		ns[j] = *k;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int rec_map_put(struct rec_map *m, uint64_t oid, uint32_t idx, uint32_t val)
{
	if ((m->used + 1) * 2 > m->cap) {
		int rc = map_grow(m);
		if (rc)
			return rc;
	}
	size_t j = key_hash(oid, idx) & (m->cap - 1);
	while (m->slots[j].val != UINT32_MAX) {
		if (m->slots[j].oid == oid && m->slots[j].idx == idx) {
			m->slots[j].val = val;
			return 0;
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->slots[j].oid = oid;
	m->slots[j].idx = idx;
	m->slots[j].val = val;
	m->used++;
	return 0;
}

long rec_map_get(const struct rec_map *m, uint64_t oid, uint32_t idx)
{
	if (!m->cap)
		return -1;
	size_t j = key_hash(oid, idx) & (m->cap - 1);
	while (m->slots[j].val != UINT32_MAX) {
		if (m->slots[j].oid == oid && m->slots[j].idx == idx)
			return m->slots[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	return -1;
}

void rec_map_clear(struct rec_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		m->slots[i].val = UINT32_MAX;
	m->used = 0;
}

void rec_map_free(struct rec_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

int recovery_policy_data(uint8_t copy_policy)
{
	if (copy_policy == 0)
		return 1;
	return (copy_policy >> 4) * 2;
}

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	if (len == 0 || len > 9)
		return -EINVAL;
	uint32_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int recovery_throttle_parse(const char *s, struct recovery_throttle *t)
{
	struct recovery_throttle n = *t;
	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		uint32_t v;
		if (len > 4 && !strncmp(s, "max=", 4)) {
			if (parse_u32(s + 4, len - 4, &v) || v < 1 || v > RECOVERY_MAX_INFLIGHT)
				return -EINVAL;
			n.max = v;
		} else if (len > 9 && !strncmp(s, "interval=", 9)) {
			if (parse_u32(s + 9, len - 9, &v) || v > 3600000)
				return -EINVAL;
			n.interval_ms = v;
		} else {
			return -EINVAL;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	*t = n;
	return 0;
}

const char *recovery_state_name(enum recovery_state s)
{
	switch (s) {
	case RECOVERY_IDLE:
		return "idle";
	case RECOVERY_RUNNING:
		return "running";
	case RECOVERY_DONE:
		return "done";
	case RECOVERY_REFUSED:
		return "refused";
	case RECOVERY_DISABLED:
		return "disabled";
	}
	return "unknown";
}

const char *recovery_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ENOSPC:
		return "recovery refused: not enough free space on this node";
	case -ENODATA:
		return "too few consistent fragments to rebuild";
	case -EAGAIN:
		return "throttled, disabled, or versions moved: try again";
	case -ENOENT:
		return "nothing to do";
	case -EINVAL:
		return "invalid argument";
	case -ENOMEM:
		return "out of memory";
	}
	return strerror(err < 0 ? -err : err);
}
