/* corosync_evq.c - the corosync driver's event queues: FIFO lists of copied libcpg events, shared
 * by its transport (corosync_cpg.c) and the member protocol's unit test. */
#include "config.h"

#if HAVE_COROSYNC

#include <stdlib.h>

#include "sheep/cluster/corosync_priv.h"

void cc_evq_push(struct cc_evq *q, struct cc_event *e)
{
	e->next = NULL;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
}

struct cc_event *cc_evq_pop(struct cc_evq *q)
{
	struct cc_event *e = q->head;
	if (e) {
		q->head = e->next;
		if (!q->head)
			q->tail = NULL;
	}
	return e;
}

void cc_ev_free(struct cc_event *e)
{
	if (!e)
		return;
	free(e->data);
	free(e->addrs);
	free(e);
}

void cc_evq_clear(struct cc_evq *q)
{
	struct cc_event *e;
	while ((e = cc_evq_pop(q)))
		cc_ev_free(e);
}

#endif /* HAVE_COROSYNC */
