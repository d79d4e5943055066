/* sheep.h - the daemon struct (options, event loop, pools, and opaque pointers to each sub-module's state), the view, the VDI table and a request; each sub-module's functions are in its own header. */
#ifndef SHEEP_SHEEP_H
#define SHEEP_SHEEP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ec/ec.h"
#include "lib/event.h"
#include "lib/sd_internal.h"
#include "lib/sd_proto.h"
#include "lib/work.h"

/* Options from the command line. */
struct sheep_opts {
	const char *dir;
	/* sheep DIR,DISK1,DISK2: Sheepdog's multi-disk store (store_md.c) */
	const char *md_disks[64];
	char *spec_buf; /* main's copy of DIR,DISK...: md_disks point into it */
	char *dir_abs;  /* dir made absolute at start (main), when it is */
	int nr_md_disks;
	uint16_t port;
	const char *bind_addr;  /* -b, NULL = any */
	const char *advertise;  /* -y */
	uint32_t zone;          /* -z */
	bool zone_set;
	const char *cluster;    /* -c driver[:opts] */
	bool gateway;           /* -g */
	uint16_t vnodes;        /* -V, 0 = default */
	bool foreground;        /* -f */
	int log_level;
	const char *log_dir;    /* -l dir= */
	bool nosync;            /* -n */
	const char *wal_dir;    /* -j dir=: where the write-ahead log lives (NULL: DIR) */
	uint64_t wal_size;      /* -j size=: bytes for the log (0: default) */
	int nbd_port;           /* --nbd, -1 = off */
	bool nbd_explicit;      /* --nbd given: a busy port is fatal */
	int threads;            /* gateway worker threads */
	int http_port;          /* --http PORT: metrics and dashboard, 0 = off (http.c) */
	uint64_t size;          /* -s/--size: capacity offered, 0 = the filesystem's (capacity.c) */
	struct sd_recovery_throttle recovery; /* -R max=,interval= (recovery hook) */
	const char *scrub;      /* --scrub off | rate=BYTES,pause=SECONDS (scrub/scrub.h) */
	const char *test_crash_file; /* SHEEP_TEST_CRASH_FILE: test hook, see gateway.c */
	const char *test_pause_file; /* SHEEP_TEST_PAUSE_FILE: test hook, lib/testhook.h */
	bool test_local_writes;      /* SHEEP_TEST_LOCAL_WRITES: never forward a write */
	bool test_no_in_place;       /* SHEEP_TEST_NO_IN_PLACE: every request through the pools */
	int test_apply_delay_ms;     /* SHEEP_TEST_APPLY_DELAY_MS: others' cluster messages applied late */
	/* SHEEP_TEST_CMSG_ECHO=N: the first N cluster operations this sheep
	 * broadcasts are sent but reported not sent (loop thread only), as a
	 * ZooKeeper create whose answer a dropped connection lost (cop.c). */
	int test_cmsg_echo; /* (the operations' first copies only) */
	/* SHEEP_TEST_WIRE_VER=N: this sheep writes and expects version N of
	 * the cluster messages' layout, as another build would (apply.c) */
	int test_wire_ver;
	bool test_no_delta; /* SHEEP_TEST_NO_DELTA: range updates read the parity (no PEER_WH_DELTA) */
	/* SHEEP_TEST_NO_OLD_FIRST: range updates read the old bytes before
	 * their prepares (no PEER_WH_OLD) */
	bool test_no_old_first;
	/* SHEEP_TEST_DROP_LAZY: answer lazy version-only prepares (PEER_WH_LAZY)
	 * without keeping them, as a power cut may lose them */
	bool test_drop_lazy;
	/* SHEEP_TEST_NO_LAZY: every version-only prepare durable (before PEER_WH_LAZY) */
	bool test_no_lazy;
	/* SHEEP_TEST_BUMPS: range updates bump the data fragments they do not
	 * change (the protocol before last-changed versions, PEER_WH_LC) */
	bool test_bumps;
	/* SHEEP_TEST_SOLE_ALWAYS: a holder serves every sole read (PEER_READ
	 * with SD_PEER_FLAG_SOLE) as if its copy were current: the rule off */
	bool test_sole_always;
	/* SHEEP_TEST_NO_SOLE: gateways never try a sole read (the tree before) */
	bool test_no_sole;
};

/* The ring of one epoch (refcounted: views of later epochs keep the rings
 * of earlier ones, to find fragments that have not moved yet). */
struct sheep_ring {
	int refs;
	uint32_t epoch;
	size_t nr_data;
	struct sd_node *data;
	struct ring *ring;
	uint32_t anchor; /* first epoch of its chain (cluster/chain.c) */
	uint64_t key;    /* what its chain was built from (cluster/chain.c) */
};

#define SHEEP_VIEW_HIST 8

/*
 * A membership epoch as the gateway sees it: the members, the ring built
 * from the data-holding ones, the epoch number. Immutable once published;
 * readers take a reference (sheep_view_get) and keep a consistent picture
 * for the whole of one request.
 */
struct sheep_view {
	int refs;
	uint32_t epoch;
	size_t nr_nodes;
	struct sd_node *nodes; /* all members, sorted by address:port */
	size_t nr_data;
	struct sd_node *data;  /* ring members (not gateway-only); ring index = position */
	struct ring *ring;
	int self_data_idx;     /* this node in data[], or -1 */
	uint32_t nr_zones;     /* distinct zones among data[] */
	struct sheep_ring *cur;  /* owns data[] and ring */
	int nr_hist;
	struct sheep_ring *hist[SHEEP_VIEW_HIST]; /* earlier epochs, newest first */
	/* Set (atomically, once) when every data member has finished recovery
	 * at this epoch: every fragment is at its current holder, so the
	 * gateway stops asking earlier holders (recovery_sheep.c). */
	int settled;
};

/* One VDI as every node knows it (the full table is on every node). */
struct vdi_entry {
	uint32_t vid;
	uint32_t snapid;
	uint32_t parent;
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t shift;
	uint8_t deleted;     /* VDI_DEL_*: 0 live */
	uint8_t flags;       /* VDI_F_* */
	uint64_t size;
	uint64_t ctime;
	char name[SD_MAX_VDI_LEN];
	char tag[SD_MAX_VDI_TAG_LEN];
	/* cluster-wide lock */
	uint8_t locked;
	char lock_addr[64];
	uint16_t lock_port;
	uint64_t lock_inc;
	uint64_t lock_owner;
	/* vdi alter-copy (gateway/convert.c): data objects stored with the
	 * layout bit equal to VDI_F_GEN have the policy above; the others have
	 * alt_copies/alt_policy, the target while VDI_F_CONVERTING is set (the
	 * previous policy after). conv_mark: every object below this index is
	 * converted (runtime progress, 0 after a restart). meta_width: the
	 * width of the inode's and attributes' copies, fixed at the first
	 * conversion (0: the width of the policy). */
	uint8_t alt_copies, alt_policy, meta_width;
	uint32_t conv_mark;
	struct vdi_entry *hnext;
};

/* vdi_entry.deleted: a deleted VDI stays in the table while objects it
 * owns may exist (so its id is not reused and its descendants keep their
 * family links). */
#define VDI_DEL_RECLAIM 1 /* name gone; its objects not yet reclaimed */
#define VDI_DEL_ZOMBIE 2  /* reclaimed; kept while descendants may use its objects */
/* vdi_entry.flags */
#define VDI_F_SNAPSHOT 0x1 /* frozen: its objects and object map never change */
#define VDI_F_PENDING 0x2  /* created in the table, inode not yet written */
#define VDI_F_CONVERTING 0x4 /* vdi alter-copy in progress */
#define VDI_F_GEN 0x8        /* its objects' home id carries SD_LAYOUT_BIT */

#define VDI_HASH_BUCKETS 4096

struct vdi_table {
	size_t nr;
	struct vdi_entry *buckets[VDI_HASH_BUCKETS];
	uint8_t *bitmap; /* SD_NR_VDIS bits, in use */
};

struct cluster_driver;
struct cluster_ctx;
struct ring;
struct cluster_state;
struct gw_state;
struct snap_state;
struct peer_pool;
struct peer_sole;
struct sheep_recovery;
struct sheep_scrub;
struct nbd_server;
struct sheep_metrics;
struct sheep_http;

struct conn;

struct sheep {
	struct sheep_opts opt;
	struct sd_node self;
	struct store *store; /* NULL for a gateway-only node */
	struct sd_loop *loop;
	struct sd_wq *gw_wq;   /* client requests: may block on peers */
	struct sd_wq *peer_wq; /* peer requests: store I/O only, never wait on peers */
	struct sd_wq *fwd_wq;  /* writes forwarded to this node as coordinator */
	int listen_fd;
	struct conn *conns; /* live connections (server/conn.c, loop thread only) */
	int lock_fd;
	atomic_bool stopping; /* set by any thread; read by workers, recovery, NBD */
	int exit_status; /* main's exit status once the loop stops (1: refused by the cluster) */
	struct nbd_server *nbd;
	struct sheep_metrics *metrics; /* counters for --http's /metrics (metrics.c) */
	struct sheep_http *http;       /* --http server, NULL when off (http.c) */

	/* cluster/: the membership, the epochs, the format and the VDI table,
	 * guarded by its lock (group_priv.h; read through cluster.h). */
	struct cluster_state *cl;

	/* gateway/: object locks, version cache, commit queue (gateway_priv.h) */
	struct gw_state *gw;
	struct peer_pool *peers;
	struct peer_sole *sole; /* copies current for a sole read (peer/sole.c) */

	/* recovery (sheep/rebuild/): NULL on a gateway-only node */
	struct sheep_recovery *rec;
	/* Upcalls from peer serving into recovery, set by main before the
	 * listeners start (keeps peer/ below rebuild/): is fragment (oid, idx)
	 * being rebuilt here; a read found a checksum mismatch on it. */
	bool (*frag_busy)(struct sheep *s, uint64_t oid, uint8_t idx);
	void (*frag_bad)(struct sheep *s, uint64_t oid, uint8_t idx, bool stale);
	/* A read found a checksum mismatch on (oid, idx): counted by the
	 * scrub's found/repaired counters, then frag_bad (scrub/scrub.c). */
	void (*frag_csum_bad)(struct sheep *s, uint64_t oid, uint8_t idx);
	/* A VDI started converting (vdi alter-copy, applied in cluster/) or
	 * a new view was published (its first member drives conversions):
	 * wakes the converter (gateway/convert.c), which otherwise sleeps
	 * unless it is driving one. Set by main; NULL: none. */
	void (*convert_kick)(struct sheep *s);
	/* the background scrub (sheep/scrub/): NULL on a gateway-only node */
	struct sheep_scrub *scrub;

	/* connections */
	uint64_t next_conn_id;
	/* Peer connections served in place, each by its own thread
	 * (server/conn.c): how many such threads run, under conn_mu; main
	 * waits on conn_cond for none before it stops the pools. */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cond;
	int conn_threads;

	/* snap/: the sweep of pending and deleted VDIs (snap.c) */
	struct snap_state *snap;
};

/* A request in flight: header, payload, reply. */
struct request {
	struct sd_work work;
	struct sheep *s;
	struct conn *conn;
	struct sd_req hdr;
	void *data;          /* payload (WRITE) or reply buffer */
	uint32_t data_cap;
	struct sd_rsp rsp;
	void *rdata;         /* reply payload (may alias data) */
	uint32_t rlen;
	bool close_after;    /* KILL_NODE, SHUTDOWN: stop after the reply */
	uint64_t owner;      /* lock owner id of the connection */
	bool keep_rdata;     /* rdata is sent even with an error (an explanation, a probe) */
	bool wal_announced;  /* a peer write announced to the store's group commit */
	bool replied;        /* its worker sent (or queued) the reply (server/conn.c) */
	/* Set when r's thread owns its connection (served in place): sends a
	 * first reply before the final one (peer.h, PEER_WH_OLD). */
	bool (*interim)(void *r, const struct sd_rsp *rsp, const void *data, uint32_t len);
};

/* ---- util ---- */
bool sd_node_eq(const struct sd_node *a, const struct sd_node *b);
int sheep_node_cmp(const void *a, const void *b);
/* Write a whole file atomically (tmp + rename, fsync unless nosync). */
int sheep_write_file(struct sheep *s, const char *path, const void *buf, size_t len);

/* DIR/vnodes: the count dog node vnodes set gave this sheep, read at start
 * (it wins over -V and the capacity until the next set). */
#define SHEEP_VNODES_FILE "vnodes"

#endif
