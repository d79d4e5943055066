/* capacity.h - how much a sheep may store: its -s/--size, else its filesystem; what is left of it.
 */
#ifndef SHEEP_CAPACITY_H
#define SHEEP_CAPACITY_H

#include <stdint.h>

struct sd_node;
struct sheep;
struct sheep_view;

/*
 * The capacity this sheep offers (its ring weight, STAT_SHEEP's
 * store_size) and what it can still take (store_free).
 *   size: -s/--size when given, else the size of the store's filesystem.
 *   free: size minus this store's own fragment bytes, never more than the
 *         filesystem's available bytes (other files and other sheep on the
 *         same filesystem eat into it).
 * Returns 0, or -errno when the filesystem cannot be asked (statvfs), with
 * *size and *free untouched. A gateway (no store) has 0 and 0.
 */
int sheep_capacity(struct sheep *s, uint64_t *size, uint64_t *free_bytes);

/* The pure rule behind sheep_capacity, for unit tests: limit 0 = no -s. */
void sheep_capacity_of(uint64_t limit, uint64_t fs_size, uint64_t fs_avail, uint64_t own_used,
		       uint64_t *size, uint64_t *free_bytes);

/* In a copy of v's members (nodes, nr), replace the nominal vnodes of every
 * node that did not fix them (-V) with the count the ring gave it, so
 * dog node list shows the weights placement really uses. */
void sheep_capacity_show_vnodes(const struct sheep_view *v, struct sd_node *nodes, size_t nr);

#endif
