/*
 * Copies the core's gauges and counters and the reflectors' counters into
 * the metrics registry (once a second, from a timer in main.c).  The core and
 * the reflectors count monotonically on their own; this module remembers what
 * it already added, so each counter in the registry grows by the difference.
 * A resource whose devices are healthy again reads 0 in unhealthy_devices
 * rather than vanishing or keeping its old value.
 */
#ifndef METRICS_REFRESH_H
#define METRICS_REFRESH_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "metrics.h"

/* The watch counters of one reflector (see kc_reflector_stats). */
struct metrics_refresh_watch {
	const char *resource; /* "pods", "nodes", ...; NULL = that reflector is not running */
	uint64_t watch_restarts;
	uint64_t relists;
	uint64_t cached;  /* objects in its store now */
	uint64_t ignored; /* objects on the server its keep predicate turned away, now */
	uint64_t oversized; /* objects left out, over a decoder bound */
};

/* pods, nodes, resourceclaims, resourceslices, devicetaintrules */
#define METRICS_REFRESH_MAX_WATCHES 5

struct metrics_refresh;

/* Registers the families it feeds that metrics_new() lacks (pods_not_evicted_total). Never fails. */
struct metrics_refresh *metrics_refresh_new(struct metrics *m);
/* Accepts NULL; returns NULL. */
struct metrics_refresh *metrics_refresh_free(struct metrics_refresh *mr);

/*
 * Brings the registry up to date with st and with n (at most
 * METRICS_REFRESH_MAX_WATCHES) watches, always given in the same order.
 */
void metrics_refresh_run(struct metrics_refresh *mr, const struct core_stats *st,
			 const struct metrics_refresh_watch *watches, size_t n);

#endif
