/* test_vdi_table.c - the VDI table's family rules: working VDI vs snapshots by name, id and tag, family roots, pending work, zombies, packing of the flags and of vdi alter-copy's state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sheep/sheep.h"
#include "sheep/vdi/vdi.h"

static struct vdi_entry ent(uint32_t vid, uint32_t parent, const char *name, uint32_t snapid,
			    uint8_t flags, const char *tag)
{
	struct vdi_entry e;
	memset(&e, 0, sizeof(e));
	e.vid = vid;
	e.parent = parent;
	e.snapid = snapid;
	e.flags = flags;
	e.nr_copies = 3;
	e.shift = 22;
	snprintf(e.name, sizeof(e.name), "%s", name);
	if (tag)
		snprintf(e.tag, sizeof(e.tag), "%s", tag);
	return e;
}

/* base: snapshot 1 (0x10, tag "gold") -> snapshot 2 (0x11) -> working (0x12);
 * clone "vm" (0x20) of snapshot 1. */
static void fill(struct vdi_table *t)
{
	struct vdi_entry e[] = {
	    ent(0x10, 0, "base", 1, VDI_F_SNAPSHOT, "gold"),
	    ent(0x11, 0x10, "base", 2, VDI_F_SNAPSHOT, NULL),
	    ent(0x12, 0x11, "base", 3, 0, NULL),
	    ent(0x20, 0x10, "vm", 1, 0, NULL),
	};
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		assert_int_equal(vdi_table_insert(t, &e[i]), 0);
}

static void test_lookup_by_name_id_and_tag_keeps_working_and_snapshots_apart(void **state)
{
	struct vdi_table t;
	assert_int_equal(vdi_table_init(&t), 0);
	fill(&t);
	assert_int_equal(vdi_table_by_name(&t, "base", NULL, 0)->vid, 0x12);
	assert_int_equal(vdi_table_by_name(&t, "base", "", 0)->vid, 0x12);
	assert_int_equal(vdi_table_by_name(&t, "base", NULL, 1)->vid, 0x10);
	assert_int_equal(vdi_table_by_name(&t, "base", NULL, 2)->vid, 0x11);
	assert_int_equal(vdi_table_by_name(&t, "base", "gold", 0)->vid, 0x10);
	/* the working VDI's own snap id is not a snapshot */
	assert_null(vdi_table_by_name(&t, "base", NULL, 3));
	assert_null(vdi_table_by_name(&t, "base", "nope", 0));
	assert_null(vdi_table_by_name(&t, "vm", NULL, 1));
	assert_int_equal(vdi_table_by_name(&t, "vm", NULL, 0)->vid, 0x20);
	/* a deleted working VDI is not found; its snapshots still are */
	struct vdi_entry w = *vdi_table_find(&t, 0x12);
	w.deleted = VDI_DEL_RECLAIM;
	vdi_table_insert(&t, &w);
	assert_null(vdi_table_by_name(&t, "base", NULL, 0));
	assert_int_equal(vdi_table_by_name(&t, "base", NULL, 2)->vid, 0x11);
	vdi_table_free(&t);
}

static void test_family_root_todo_and_zombies(void **state)
{
	struct vdi_table t;
	assert_int_equal(vdi_table_init(&t), 0);
	fill(&t);
	assert_int_equal(vdi_table_root(&t, 0x12), 0x10);
	assert_int_equal(vdi_table_root(&t, 0x20), 0x10);
	assert_int_equal(vdi_table_root(&t, 0x10), 0x10);
	assert_int_equal(vdi_table_root(&t, 0x77), 0x77); /* unknown: itself */
	assert_int_equal(vdi_table_todo(&t), 0);
	struct vdi_entry p = ent(0x30, 0x11, "x", 1, VDI_F_PENDING, NULL);
	vdi_table_insert(&t, &p);
	assert_int_equal(vdi_table_todo(&t), 1);
	/* snapshot 1 reclaimed: kept while anything descends from it */
	struct vdi_entry z = *vdi_table_find(&t, 0x10);
	z.deleted = VDI_DEL_ZOMBIE;
	vdi_table_insert(&t, &z);
	vdi_table_drop_zombies(&t);
	assert_non_null(vdi_table_find(&t, 0x10));
	assert_int_equal(vdi_table_root(&t, 0x12), 0x10);
	/* its id is not handed out again while it is there */
	assert_int_equal(vdi_table_alloc_vid(&t, 0x10), 0x13);
	/* once nothing descends from it, it goes (and its zombie parent chain) */
	struct vdi_entry s2 = *vdi_table_find(&t, 0x11);
	s2.deleted = VDI_DEL_ZOMBIE;
	vdi_table_insert(&t, &s2);
	vdi_table_remove(&t, 0x12);
	vdi_table_remove(&t, 0x20);
	vdi_table_remove(&t, 0x30);
	vdi_table_drop_zombies(&t);
	assert_null(vdi_table_find(&t, 0x11));
	assert_null(vdi_table_find(&t, 0x10));
	assert_int_equal(t.nr, 0);
	vdi_table_free(&t);
}

static void test_pack_unpack_keeps_flags_and_deletion_state(void **state)
{
	struct vdi_table t, u;
	assert_int_equal(vdi_table_init(&t), 0);
	assert_int_equal(vdi_table_init(&u), 0);
	fill(&t);
	struct vdi_entry p = ent(0x30, 0x11, "x", 1, VDI_F_PENDING, NULL);
	p.deleted = VDI_DEL_ZOMBIE;
	vdi_table_insert(&t, &p);
	char buf[1 << 16];
	long n = vdi_table_pack(&t, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(vdi_table_unpack(&u, buf, (size_t)n), 0);
	assert_int_equal(vdi_table_find(&u, 0x10)->flags, VDI_F_SNAPSHOT);
	assert_string_equal(vdi_table_find(&u, 0x10)->tag, "gold");
	assert_int_equal(vdi_table_find(&u, 0x12)->flags, 0);
	assert_int_equal(vdi_table_find(&u, 0x30)->flags, VDI_F_PENDING);
	assert_int_equal(vdi_table_find(&u, 0x30)->deleted, VDI_DEL_ZOMBIE);
	assert_int_equal(vdi_table_find(&u, 0x20)->parent, 0x10);
	vdi_table_free(&t);
	vdi_table_free(&u);
}

/* vdi alter-copy's state survives a restart and reaches joiners: the
 * two policies, the layout generation, the converting flag and the
 * inode's width; the mark is runtime progress only. */
static void test_pack_unpack_keeps_alter_copy_state(void **state)
{
	struct vdi_table t, u;
	assert_int_equal(vdi_table_init(&t), 0);
	assert_int_equal(vdi_table_init(&u), 0);
	struct vdi_entry e = ent(0x40, 0, "conv", 1, VDI_F_CONVERTING | VDI_F_GEN, NULL);
	e.copy_policy = 0x42; /* 4:2 */
	e.nr_copies = 6;
	e.alt_policy = 0;
	e.alt_copies = 3;
	e.meta_width = 6;
	e.conv_mark = 77;
	assert_int_equal(vdi_table_insert(&t, &e), 0);
	char buf[1 << 12];
	long n = vdi_table_pack(&t, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(vdi_table_unpack(&u, buf, (size_t)n), 0);
	const struct vdi_entry *g = vdi_table_find(&u, 0x40);
	assert_non_null(g);
	assert_int_equal(g->flags, VDI_F_CONVERTING | VDI_F_GEN);
	assert_int_equal(g->copy_policy, 0x42);
	assert_int_equal(g->nr_copies, 6);
	assert_int_equal(g->alt_policy, 0);
	assert_int_equal(g->alt_copies, 3);
	assert_int_equal(g->meta_width, 6);
	assert_int_equal(g->conv_mark, 0);
	assert_string_equal(g->name, "conv");
	vdi_table_free(&t);
	vdi_table_free(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookup_by_name_id_and_tag_keeps_working_and_snapshots_apart),
	    cmocka_unit_test(test_family_root_todo_and_zombies),
	    cmocka_unit_test(test_pack_unpack_keeps_flags_and_deletion_state),
	    cmocka_unit_test(test_pack_unpack_keeps_alter_copy_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
