/* gateway.h - object and VDI access through the cluster, for in-daemon users (NBD export, recovery). */
#ifndef SHEEP_GATEWAY_H
#define SHEEP_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/sd_internal.h"

struct sheep;

/*
 * Blocking calls, safe from any worker thread (never from the event-loop
 * thread). They do what a client request to this sheep would do: place the
 * object, fan out to the holders, encode/decode, apply the acknowledgement
 * rule, retry on epoch change. Return SD_RES_* codes (lib/sd_proto.h).
 *
 * The object's redundancy policy comes from its VDI (the VDI table every
 * sheep keeps); a data object of an unknown VDI is SD_RES_NO_VDI.
 */
int gateway_read_obj(struct sheep *s, uint64_t oid, void *buf, uint32_t len, uint32_t off);
/* create: the object does not exist yet (CREATE_AND_WRITE_OBJ); unwritten
 * parts of a new object read as zeros. */
int gateway_write_obj(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
		      bool create);
int gateway_remove_obj(struct sheep *s, uint64_t oid);
/*
 * Copy-on-write without moving data: when snapshot object src and the new
 * object dst have the same policy and the same holders (placement by
 * family root, group_placement_key) and every holder has src's current
 * fragment, each holder copies its own fragment (PEER_COPY) and dst
 * exists as a copy of src. SD_RES_NO_SUPPORT when that does not apply
 * (the caller copies through the gateway): nothing of dst is left then.
 */
int gateway_copy_obj(struct sheep *s, uint64_t src, uint64_t dst);
/* An EC object no generation of which can be read: finish the write whose
 * coordinator died during its commits, from its pending copies. SUCCESS
 * when it was finished, NO_OBJ when there was nothing to finish, EIO when
 * it cannot be. */
int gateway_settle_obj(struct sheep *s, uint64_t oid);

/*
 * dog vdi check's work on one object (SD_OP_CHECK_OBJ): every copy or
 * fragment is read whole from its holder and checked (checksum, version,
 * EC parity against the data, replicas against each other); what is
 * missing, stale or wrong is rebuilt from the good ones, written back in
 * one whole-fragment write conditional on the version read, and read
 * back. out says, per position, what was found and whether it is fixed.
 * SUCCESS (see out->unrepairable), NO_OBJ (no holder has any of it),
 * NO_SUPPORT (too large to hold in memory at once), or an error.
 */
int gateway_check_obj(struct sheep *s, uint64_t oid, struct sd_check_obj *out);

/* Where each fragment (or copy) of oid is under the current view: out[i]
 * for position i (width of them, at most max), the node holding it (its
 * current holder, or an earlier one that still keeps it while recovery
 * has not moved it) and whether it answered that it has it. *ec and *d
 * say how to read the positions (d data fragments first). SD_RES_*. */
struct gateway_loc {
	struct sd_node node;
	bool present;
	bool moved; /* found at an earlier holder, not at the current one */
	uint64_t version;
};
/* Every object some data member of the current view holds (at least one
 * fragment or copy) whose oid satisfies (oid & mask) == value: *out
 * (malloc'd, each oid once), *nr of them. A member that does not answer
 * fails the call (NETWORK_ERROR), so a caller never takes a partial list
 * for the whole. SD_RES_*. */
int gateway_list_objs(struct sheep *s, uint64_t mask, uint64_t value, uint64_t **out, size_t *nr);

int gateway_locate_obj(struct sheep *s, uint64_t oid, struct gateway_loc *out, int max,
		       int *width, bool *ec, int *d);

/* VDI namespace. snapid 0 with tag NULL or "" = the working VDI. */
int gateway_vdi_lookup(struct sheep *s, const char *name, uint32_t snapid, const char *tag,
		       uint32_t *vid);
/* Take the VDI's cluster-wide write lock for owner (any u64 unique to the
 * caller on this sheep); SD_RES_VDI_LOCKED when someone else has it. */
int gateway_vdi_lock(struct sheep *s, uint32_t vid, uint64_t owner);
int gateway_vdi_unlock(struct sheep *s, uint32_t vid, uint64_t owner);
/* Does owner (of this sheep) still hold VDI vid's lock? SD_RES_SUCCESS also
 * for a frozen VDI (a snapshot: its writes are refused READONLY anyway);
 * SD_RES_VDI_LOCKED when the lock is gone or someone else's; SD_RES_NO_VDI.
 * Answered from this sheep's copy of the VDI table, which a lock change
 * reaches before its originator is answered. */
int gateway_vdi_lock_held(struct sheep *s, uint32_t vid, uint64_t owner);
/* The in-use VDI bitmap, as SD_OP_READ_VDIS answers it: bit vid (LSB-first
 * within each byte) set = VDI vid exists. len >= SD_NR_VDIS / 8. */
int gateway_read_vdis(struct sheep *s, void *bitmap, size_t len);

struct nbd_server;
/* Where struct sheep keeps the NBD export's state (sheep/nbd/nbd_vdi.c). */
struct nbd_server **gateway_nbd_slot(struct sheep *s);

/* Daemon-side entry points (main, ops). */
/* Apply a write here, as the object's coordinator (no forwarding). */
int gateway_write_local(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
			bool create);
/* vdi alter-copy (convert.c): move data object oid of a converting VDI
 * to its new layout at its write coordinator (gateway_convert_obj) or here
 * as that coordinator (gateway_convert_local). SUCCESS also when there
 * was nothing to move. */
int gateway_convert_obj(struct sheep *s, uint64_t oid);
int gateway_convert_local(struct sheep *s, uint64_t oid);
/* The converter thread (convert.c): started once the node has joined,
 * stopped before gateway_fini. The view's first member drives every
 * conversion in the VDI table, from each VDI's mark. While no VDI is
 * converting it sleeps until kicked. */
int gateway_converter_start(struct sheep *s);
void gateway_converter_stop(struct sheep *s);
/* A VDI started converting, or a new view: wake the converter
 * (s->convert_kick). */
void gateway_converter_kick(struct sheep *s);
int gateway_init(struct sheep *s);
void gateway_fini(struct sheep *s);

#endif
