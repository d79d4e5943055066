/* dog.h - the dog admin CLI's internal interface: options, commands, client helpers, output
 * formats. */
#ifndef DOG_DOG_H
#define DOG_DOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ec/ec.h"
#include "lib/inode.h"
#include "lib/sd_internal.h"
#include "lib/sd_proto.h"

/* Exit codes, as Sheepdog 1.0's dog. */
#define DOG_EXIT_SUCCESS 0
#define DOG_EXIT_FAILURE 1 /* the command failed (bad input, refused) */
#define DOG_EXIT_SYSFAIL 2 /* cannot talk to sheep, I/O error */
#define DOG_EXIT_EXISTS	 3
#define DOG_EXIT_FULL	 4
#define DOG_EXIT_MISSING 5
#define DOG_EXIT_USAGE	 64

#define DOG_DEFAULT_ADDR "127.0.0.1"

/*
 * Everything one dog invocation knows: global options, the options of the
 * subcommand, and the positional arguments left after option parsing. One
 * instance lives on main()'s stack and is passed down; dog has no globals.
 */
struct dog {
	const char *prog;
	const char *addr;
	uint16_t port;
	bool raw;
	bool json; /* --json, -f json: machine-readable output of a listing command */
	bool verbose;
	/* subcommand options */
	bool have_policy;
	struct ec_policy policy; /* -c */
	bool prealloc;		 /* -P */
	int block_size_shift;	 /* -z, -1 = cluster default */
	uint32_t nr_vnodes;	 /* -V, 0 = by capacity */
	const char *snap;	 /* -s: a snapshot id or tag (snapshot: the new tag) */
	const char *from_snap;	 /* -F: backup from this snapshot */
	bool attr_delete;	 /* vdi setattr -d */
	bool attr_excl;		 /* vdi setattr -x */
	bool strict;		 /* cluster format -t */
	bool recycle_vid;	 /* cluster format -R */
	bool hyper;		 /* vdi create -y */
	long long obj_index;	 /* vdi track -i, -1 = the inode */
	/* progress bar on stderr for long I/O (stderr is a terminal) */
	bool progress;
	int argc; /* positional arguments after the subcommand */
	char **argv;
};

/* One subcommand: "dog GROUP NAME [options] ARGS". */
struct dog_cmd {
	const char *group;
	const char *name;
	const char *opts; /* its short options beyond the global a:p:rvh */
	const char *args; /* positional usage text */
	const char *desc;
	const char *opt_help;	/* lines describing its options, or NULL */
	int min_args, max_args; /* positional arguments it takes */
	int (*run)(struct dog *d);
};

/* Option help of the listing commands, which take "f:" in opts. */
#define DOG_JSON_HELP                                                                              \
	"  -f, --format FORMAT   output as a table (default) or json (schema in dog(8))\n"       \
	"      --json            same as -f json\n"

extern const struct dog_cmd dog_cluster_cmds[];
extern const struct dog_cmd dog_node_cmds[];
extern const struct dog_cmd dog_vdi_cmds[];
/* vdi_lock.c: dog vdi lock list|unlock. */
/* vdi_alter.c: dog vdi alter-copy. */
int dog_vdi_alter_copy(struct dog *d);
int dog_vdi_lock_cmd(struct dog *d);
/* Take VDI name's cluster-wide write lock on fd (held until fd closes or
 * RELEASE_VDI). On failure says why (who holds it) and returns a
 * DOG_EXIT_* code; 0 when taken. */
int dog_vdi_take_lock(int fd, const char *what, const char *name);
/* recovery.c (owned by the recovery work): node recovery, cluster recover. */
int dog_node_recovery(struct dog *d);
int dog_cluster_recover(struct dog *d);
/* vdi_check.c: vdi check, cluster check, cluster scrub. */
int dog_vdi_check(struct dog *d);
int dog_cluster_check(struct dog *d);
int dog_cluster_scrub(struct dog *d);
/* cluster_format.c: dog cluster format (d's -c, -z, -V, -t, -R). */
int dog_cluster_format(struct dog *d);
/* cluster_snap.c: dog cluster snapshot save|load|list. */
int dog_cluster_snapshot(struct dog *d);

/* ---- common.c: talking to sheep ---- */

/* Connect to the sheep of -a/-p. On failure prints "cannot connect to
 * ADDR:PORT: ...: is sheep running?" and returns -errno. */
int dog_connect(const struct dog *d);
int dog_connect_to(const char *addr, uint16_t port);
/* A request header with proto_ver set for opcode. */
void dog_req_init(struct sd_req *req, uint8_t opcode);
/* One exchange on a fresh connection to the -a/-p sheep. Transport errors
 * are printed and returned as -errno; otherwise returns rsp->result. */
int dog_exec(const struct dog *d, struct sd_req *req, const void *data, struct sd_rsp *rsp,
	     void *rbuf, size_t rlen);
/* Print "dog: WHAT: reason: hint" for a sheep result code and return the
 * exit code it maps to. name (may be NULL) is the VDI concerned. */
int dog_fail_result(const char *what, uint32_t result, const char *name);
/* Exit code for a sheep result code. */
int dog_exit_of_result(uint32_t result);
/* Hint for a result code ("run dog cluster format"), or NULL. */
const char *dog_result_hint(uint32_t result);
/* Exit code for a -errno transport error. */
int dog_exit_of_errno(int err);
void dog_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Look a VDI up by name: its vid (GET_VDI_INFO). Returns SD_RES_*, or
 * -errno on transport error. */
int dog_vdi_lookup(int fd, const char *name, uint32_t *vid);
/* Look up a snapshot of name by id ("3") or tag ("before-upgrade"), or the
 * working VDI when snap is NULL; *type gets 's' or 'w'. Same returns. */
int dog_vdi_lookup_snap(int fd, const char *name, const char *snap, uint32_t *vid);
/* Is snap a snapshot id (all digits, 1..2^32-1)? */
bool dog_snap_is_id(const char *snap, uint32_t *id);
/* READ_OBJ / WRITE_OBJ helpers on an open connection; return SD_RES_* or -errno. */
int dog_read_obj(int fd, uint64_t oid, void *buf, uint32_t len, uint32_t off);
int dog_write_obj(int fd, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
		  const struct sd_inode *ino, bool create, uint64_t cow_oid);
/* The fixed part of STAT_CLUSTER's answer, quietly (no message on
 * failure); SD_RES_* or -errno. */
int dog_cluster_info(const struct dog *d, struct sd_cluster_info *ci);
/* The whole in-use VDI bitmap (SD_NR_VDIS bits), malloc'ed; SD_RES_* or -errno. */
int dog_read_vdi_bitmap(int fd, uint8_t **bitmap);
/* Read the node list: nodes malloc'ed; SD_RES_* or -errno. */
int dog_get_nodes(int fd, struct sd_node **nodes, uint32_t *nr, uint32_t *local_idx);

/*
 * Call start (if not NULL) once the VDI list is read, then fn for every
 * live VDI (in VDI id order) with its inode: the header,
 * and when with_map the data_vdi_id[] entries that cover vdi_size. fn
 * returns 0 to go on, or an exit code to stop with. Returns 0, fn's code,
 * or an exit code having printed the error.
 */
int dog_vdi_foreach(int fd, bool with_map, void (*start)(void *arg),
		    int (*fn)(const struct sd_inode *ino, void *arg), void *arg);
/* Number of objects of a VDI: DIV_ROUND_UP(vdi_size, object size); 0 when
 * the header is out of range (lib/inode.h). */
uint32_t dog_vdi_nr_objs(const struct sd_inode *ino);
/* Read VDI vid's inode header into ino, its strings terminated. Returns
 * the result, <0 errno, or -EBADMSG for a header no sheep writes (object
 * size shift outside 20..31). */
int dog_read_inode_hdr(int fd, uint32_t vid, struct sd_inode *ino);
/* Object size shift of an inode (22 when the field is 0). */
uint8_t dog_inode_shift(const struct sd_inode *ino);

/* ---- format.c: output formats of REFERENCE.md (pure, unit-tested) ---- */

/* A VDI as `dog vdi list` shows it. */
struct dog_vdi_row {
	char type; /* 's' snapshot, 'c' clone, ' ' working */
	const char *name;
	uint32_t snap_id;
	uint64_t size, used, shared;
	uint64_t ctime; /* seconds since the epoch */
	uint32_t vid;
	uint8_t nr_copies, copy_policy;
	const char *tag;
	uint8_t block_size_shift;
};

/* "4.0 GB" (sd_format_size), or decimal bytes when raw. */
void dog_size_str(uint64_t bytes, bool raw, char *buf, size_t len);
/* "3" or "4:2" from an inode's (copy_policy, nr_copies); "?" if invalid. */
void dog_policy_str(uint8_t copy_policy, uint8_t nr_copies, char *buf, size_t len);
/* Seconds from an inode's create_time (Sheepdog stores sec << 32 | nsec;
 * a plain seconds value is taken as is). */
uint64_t dog_inode_seconds(uint64_t create_time);

void dog_print_vdi_header(FILE *f, bool raw);
void dog_print_vdi_row(FILE *f, const struct dog_vdi_row *r, bool raw);
void dog_print_node_header(FILE *f, bool raw);
void dog_print_node_row(FILE *f, int id, const struct sd_node *n, bool raw);
void dog_print_node_info_header(FILE *f, bool raw);
/* label: the node id, or -1 for the Total row. */
void dog_print_node_info_row(FILE *f, int id, uint64_t size, uint64_t used, bool raw);
void dog_print_total_vdi_size(FILE *f, uint64_t bytes, bool raw);
/* "Cluster status: ..." from STAT_CLUSTER's result and info. */
void dog_print_cluster_status(FILE *f, uint32_t result, const struct sd_cluster_info *ci, bool raw);
void dog_print_cluster_ctime(FILE *f, uint64_t ctime, bool raw);
void dog_print_epoch_header(FILE *f, bool raw);
void dog_print_epoch(FILE *f, const struct sd_epoch_rec *e, const struct sd_node *nodes, bool raw);

/* ---- json.c: the writer behind --json (schema in dog(8)) ---- */

#define DOG_JSON_MAX_DEPTH 16
/* A streaming JSON writer: members and elements are written as they come,
 * two-space indented, commas placed for the caller. k is the member name
 * inside an object, NULL inside an array or for the top value. Strings
 * are escaped (quotes, backslash, control characters); non-ASCII bytes are
 * passed through. */
struct dog_json {
	FILE *f;
	int depth;
	unsigned count[DOG_JSON_MAX_DEPTH];
};
void dog_json_init(struct dog_json *j, FILE *f);
void dog_json_obj_begin(struct dog_json *j, const char *k);
void dog_json_obj_end(struct dog_json *j);
void dog_json_arr_begin(struct dog_json *j, const char *k);
void dog_json_arr_end(struct dog_json *j);
void dog_json_str(struct dog_json *j, const char *k, const char *v);
void dog_json_strn(struct dog_json *j, const char *k, const char *v, size_t max);
void dog_json_u64(struct dog_json *j, const char *k, uint64_t v);
void dog_json_i64(struct dog_json *j, const char *k, int64_t v);
void dog_json_double(struct dog_json *j, const char *k, double v);
void dog_json_bool(struct dog_json *j, const char *k, bool v);
void dog_json_null(struct dog_json *j, const char *k);
void dog_json_string_value(FILE *f, const char *s);

/* ---- format_json.c: the JSON forms of the listing commands ---- */
void dog_json_vdi_row(struct dog_json *j, const struct dog_vdi_row *r);
void dog_json_node(struct dog_json *j, int id, const struct sd_node *n);
/* id -1: the "total" member instead of an array element. */
void dog_json_node_info(struct dog_json *j, int id, uint64_t size, uint64_t used);
void dog_json_epoch(struct dog_json *j, const struct sd_epoch_rec *e, const struct sd_node *nodes);
void dog_json_recovery(struct dog_json *j, int id, const struct sd_node *n,
		       const struct sd_recovery_state *st, const char *status, double percent,
		       bool recovering);

/* ---- vdi_snap.c: snapshot, clone, rollback, tree ---- */
int dog_vdi_snapshot(struct dog *d);
/* vdi_attr.c */
int dog_vdi_setattr(struct dog *d);
int dog_vdi_getattr(struct dog *d);
/* vdi_object.c */
int dog_vdi_object_location(struct dog *d);
int dog_vdi_track(struct dog *d);
int dog_vdi_clone(struct dog *d);
int dog_vdi_rollback(struct dog *d);
int dog_vdi_tree(struct dog *d);
/* vdi_backup.c */
int dog_vdi_backup(struct dog *d);
int dog_vdi_restore(struct dog *d);

/* One VDI in `dog vdi tree` (pure printer, unit-tested). */
struct dog_tree_node {
	uint32_t vid, parent;
	const char *label;
};
/* Print the forest of nodes (any order; a parent not among them makes a
 * root), children in vid order, as Sheepdog's tree: `---` one child,
 * `-+-` / ` |-` / `` `-`` several. */
void dog_print_tree(FILE *f, const struct dog_tree_node *nodes, size_t n);

/* ---- progress.c ---- */
struct dog_progress {
	bool on;
	uint64_t total, done;
	uint64_t start_ns, last_ns;
	const char *what;
};
void dog_progress_start(struct dog_progress *p, bool on, const char *what, uint64_t total);
void dog_progress_add(struct dog_progress *p, uint64_t bytes);
void dog_progress_end(struct dog_progress *p);

/* ---- vdi_io.c: parallel object I/O for vdi read / write / create -P ---- */

/* Source of the bytes a write stores (stdin, zeros) or sink of a read. */
enum dog_io_dir { DOG_IO_READ, DOG_IO_WRITE, DOG_IO_ZERO };
/*
 * Move len bytes at VDI offset off between the VDI and fd (stdout for a
 * read, stdin for a write; unused for DOG_IO_ZERO, which allocates every
 * object in the range and fills it with zeros). A write stops early at EOF
 * of fd. Returns an exit code (DOG_EXIT_*), having printed any error.
 */
int dog_vdi_io(const struct dog *d, const char *name, enum dog_io_dir dir, int fd, uint64_t off,
	       uint64_t len, bool len_given);

#endif
