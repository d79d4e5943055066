/* zookeeper.h - options of the zookeeper cluster driver (private to the driver and its unit test). */
#ifndef SHEEP_CLUSTER_ZOOKEEPER_H
#define SHEEP_CLUSTER_ZOOKEEPER_H

#include <stddef.h>

#define ZK_DEFAULT_TIMEOUT_MS 5000
#define ZK_MIN_TIMEOUT_MS 500
#define ZK_MAX_TIMEOUT_MS 600000
#define ZK_DEFAULT_PATH "/sheepdog"
#define ZK_MAX_HOSTS 32

/* What "-c zookeeper:OPTIONS" asks for. */
struct zk_options {
	char hosts[1024];  /* "h1:p1,h2:p2" as the C client takes it */
	unsigned nr_hosts;
	unsigned timeout_ms; /* session timeout asked of the ensemble */
	char path[256];	     /* znode under which this cluster lives */
};

/*
 * Parse HOST:PORT[,HOST:PORT...][,timeout=MS][,path=/NAME]. A host is a
 * name, an IPv4 address or [IPv6]; the port is 1..65535. ZooKeeper's own
 * chroot suffix ("h:p,h:p/NAME") is accepted as path=/NAME. Returns 0 or
 * -EINVAL with a sentence for the user in err (nothing is logged).
 */
int zk_parse_options(const char *opts, struct zk_options *o, char *err, size_t errlen);

#endif
