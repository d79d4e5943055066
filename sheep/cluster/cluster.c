/* cluster.c - the table of cluster drivers and the parsing of sheep -c NAME[:OPTIONS]. */
#include <string.h>

#include "config.h"
#include "sheep/cluster/cluster.h"

static const struct cluster_driver *const drivers[] = {
	&cluster_local_driver,
#if HAVE_COROSYNC
	&cluster_corosync_driver,
#endif
#if HAVE_ZOOKEEPER
	&cluster_zookeeper_driver,
#endif
};

const char *cluster_driver_names(void)
{
	return "local"
#if HAVE_COROSYNC
	       ", corosync"
#endif
#if HAVE_ZOOKEEPER
	       ", zookeeper"
#endif
		;
}

const struct cluster_driver *cluster_driver_find(const char *spec)
{
	if (!spec)
		return NULL;
	size_t n = strcspn(spec, ":");
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strlen(drivers[i]->name) == n && !strncmp(drivers[i]->name, spec, n))
			return drivers[i];
	return NULL;
}

const char *cluster_driver_options(const char *spec)
{
	if (!spec)
		return "";
	const char *c = strchr(spec, ':');
	return c ? c + 1 : "";
}
