/* policy.c - redundancy policy ("3", "4:2") parsing, wire form, and fragment layout. */
#include <stdio.h>
#include <string.h>

#include "ec/ec.h"
#include "lib/util.h"

static bool ec_d_valid(unsigned d)
{
	return d == 2 || d == 4 || d == 8 || d == 16;
}

int ec_policy_validate(const struct ec_policy *pol)
{
	if (!pol)
		return -EINVAL;
	if (pol->d == 0)
		return pol->p == 0 && pol->copies >= 1 && pol->copies <= EC_MAX_COPIES ? 0
										       : -EINVAL;
	if (!ec_d_valid(pol->d) || pol->p < 1 || pol->p > EC_MAX_PARITY)
		return -EINVAL;
	return pol->copies == pol->d + pol->p ? 0 : -EINVAL;
}

/* Decimal digits only, at most 3 of them (nothing valid needs more), so a
 * long string of digits cannot overflow into something valid. Returns the
 * value and advances *s, or -1. */
static int ec_parse_uint(const char **s)
{
	const char *p = *s;
	int v = 0, n = 0;

	while (*p >= '0' && *p <= '9') {
		if (++n > 3)
			return -1;
		v = v * 10 + (*p - '0');
		p++;
	}
	if (n == 0)
		return -1;
	*s = p;
	return v;
}

int ec_policy_parse(const char *s, struct ec_policy *out)
{
	struct ec_policy pol = {0};
	int a, b;

	if (!s || !out)
		return -EINVAL;
	a = ec_parse_uint(&s);
	if (a < 0)
		return -EINVAL;
	if (*s == '\0') {
		pol.copies = (uint8_t)(a > 255 ? 0 : a);
	} else {
		if (*s++ != ':')
			return -EINVAL;
		b = ec_parse_uint(&s);
		if (b < 0 || *s != '\0' || a > 255 || b > 255)
			return -EINVAL;
		pol.d = (uint8_t)a;
		pol.p = (uint8_t)b;
		pol.copies = (uint8_t)(a + b > 255 ? 0 : a + b);
		if (pol.d == 0)
			return -EINVAL;
	}
	if (ec_policy_validate(&pol) < 0)
		return -EINVAL;
	*out = pol;
	return 0;
}

void ec_policy_format(const struct ec_policy *pol, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	if (ec_policy_validate(pol) < 0)
		snprintf(buf, len, "?");
	else if (pol->d)
		snprintf(buf, len, "%u:%u", pol->d, pol->p);
	else
		snprintf(buf, len, "%u", pol->copies);
}

const char *ec_policy_usage(void)
{
	return "To create replicated vdi, set -c x\n"
	       "  x(1 to 31)   - number of replicated copies\n"
	       "To create erasure coded vdi, set -c x:y\n"
	       "  x(2,4,8,16)  - number of data strips\n"
	       "  y(1 to 15)   - number of parity strips\n";
}

uint8_t ec_policy_byte(const struct ec_policy *pol)
{
	if (ec_policy_validate(pol) < 0 || pol->d == 0)
		return 0;
	return (uint8_t)(((pol->d / 2) << 4) | pol->p);
}

int ec_policy_from_wire(uint8_t copy_policy, uint8_t nr_copies, struct ec_policy *out)
{
	struct ec_policy pol = {0};

	if (!out)
		return -EINVAL;
	if (copy_policy == 0) {
		pol.copies = nr_copies;
	} else {
		pol.d = (uint8_t)((copy_policy >> 4) * 2);
		pol.p = copy_policy & 0x0f;
		pol.copies = nr_copies;
	}
	if (ec_policy_validate(&pol) < 0)
		return -EINVAL;
	*out = pol;
	return 0;
}

bool ec_obj_size_valid(uint32_t obj_size)
{
	return obj_size >= (1u << EC_MIN_OBJ_SHIFT) && (obj_size & (obj_size - 1)) == 0;
}

uint32_t ec_frag_size(const struct ec_policy *pol, uint32_t obj_size)
{
	if (ec_policy_validate(pol) < 0 || !ec_obj_size_valid(obj_size))
		return 0;
	return pol->d ? obj_size / pol->d : obj_size;
}

int ec_map_range(const struct ec_policy *pol, uint32_t obj_size, uint32_t off, uint32_t len,
		 struct ec_extent *out, int max_out)
{
	uint32_t fsz = ec_frag_size(pol, obj_size);
	uint64_t end = (uint64_t)off + len;
	int n = 0;

	if (fsz == 0 || end > obj_size || (len && (!out || max_out < 1)))
		return -EINVAL;
	if (len == 0)
		return 0;
	/* Count first so that a too-small out[] is left untouched. */
	if (pol->d) {
		uint32_t first = off / fsz, last = (uint32_t)((end - 1) / fsz);
		if ((int)(last - first + 1) > max_out)
			return -EINVAL;
	}
	while (off < end) {
		uint32_t idx = pol->d ? off / fsz : 0;
		uint32_t foff = off - idx * fsz;
		uint32_t chunk = (uint32_t)SD_MIN(end - off, (uint64_t)fsz - foff);

		out[n].idx = (uint8_t)idx;
		out[n].frag_off = foff;
		out[n].len = chunk;
		out[n].obj_off = off;
		n++;
		off += chunk;
	}
	return n;
}

int ec_frag_ptrs(const struct ec_policy *pol, uint8_t *obj, uint32_t obj_size, uint8_t **data)
{
	uint32_t fsz = ec_frag_size(pol, obj_size);

	if (fsz == 0 || pol->d == 0 || !obj || !data)
		return -EINVAL;
	for (int i = 0; i < pol->d; i++)
		data[i] = obj + (size_t)i * fsz;
	return pol->d;
}

int ec_choose_sources(uint8_t d, uint8_t p, uint32_t present_mask, int *have_idx)
{
	struct ec_policy pol = {.d = d, .p = p, .copies = (uint8_t)(d + p)};
	int n = 0;

	if (ec_policy_validate(&pol) < 0 || pol.d == 0 || !have_idx)
		return -EINVAL;
	if (__builtin_popcount(present_mask & ((1u << (d + p)) - 1)) < d)
		return -ENODATA;
	for (int i = 0; i < d + p && n < d; i++)
		if (present_mask & (1u << i))
			have_idx[n++] = i;
	return n;
}

const char *ec_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument (policy, fragment index, size or range)";
	case -ENOTSUP:
		return "erasure-code backend not built in";
	case -ENOMEM:
		return "out of memory";
	case -ENODATA:
		return "fewer than d fragments available (more than p lost)";
	default:
		return "unknown error";
	}
}
