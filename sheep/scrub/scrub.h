/* scrub.h - the background scrub of a sheep: walks its own fragments at a bounded rate, verifies
 * their checksums, asks recovery to rebuild bad ones, and counts what was found and repaired. */
#ifndef SHEEP_SCRUB_H
#define SHEEP_SCRUB_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_internal.h"

struct sheep;

/*
 * One thread per data sheep. A pass lists the fragments of the local
 * store, then verifies each one whole (store_verify: every block's
 * crc32c) and sleeps so that it reads at most `rate` bytes per second on
 * average; after a pass it rests `pause` seconds. A fragment that fails
 * goes to sheep_scrub_report_bad(), the same door a client read or
 * `dog vdi check` that meets a checksum mismatch uses.
 *
 * Counting: every fragment reported bad is counted once as found (until
 * it is good again) and kept on a watch list; the thread verifies the
 * watched fragments again about once a second, and each one found good
 * (rebuilt by recovery, or rewritten by dog vdi check) is counted as
 * repaired. A watched fragment that disappears (dropped, moved) leaves the
 * list uncounted.
 *
 * Locking: the scrub's own mutex guards its state and is never held
 * across store I/O or a call into recovery; store_verify takes the
 * store's per-fragment lock for reading (a writer of that fragment waits
 * for one fragment's verify at most).
 */

#define SHEEP_SCRUB_RATE  (4ull << 20) /* default: 4 MiB/s */
#define SHEEP_SCRUB_PAUSE 3600	       /* seconds between passes */

struct sheep_scrub_opts {
	bool off;
	uint64_t rate;	/* bytes per second; 0 = default */
	uint32_t pause; /* seconds; 0 = default */
	bool pause_set;
};

/* Parse sheep --scrub "off" | "rate=BYTES[KMG],pause=SECONDS" (either
 * part optional) into o. 0 or -EINVAL. */
int sheep_scrub_parse(const char *arg, struct sheep_scrub_opts *o);

/* Start the thread (nothing for a gateway-only node). 0 or -errno. */
int sheep_scrub_start(struct sheep *s, const struct sheep_scrub_opts *o);
/* Stop the thread (before recovery stops: it calls into recovery). The
 * counters stay for workers still reporting until sheep_scrub_fini(),
 * once no worker runs. */
void sheep_scrub_stop(struct sheep *s);
void sheep_scrub_fini(struct sheep *s);

/* A checksum mismatch on local fragment (oid, idx), found by anyone:
 * count it, watch it, and ask recovery to rebuild it. Any thread. */
void sheep_scrub_report_bad(struct sheep *s, uint64_t oid, uint8_t idx);

/* Fill the scrub_* and csum_* fields of st (zeros without a scrub). */
void sheep_scrub_stat(struct sheep *s, struct sd_store_stat *st);

/* SD_OP_SCRUB: status, start (with a rate), stop. SD_RES_*. */
int sheep_scrub_ctl(struct sheep *s, const struct sd_scrub_ctl *ctl);

#endif
