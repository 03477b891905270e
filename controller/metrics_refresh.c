/*
 * The metrics refresh (see metrics_refresh.h): differences of monotonic
 * counters into the registry, gauges copied as they are.
 */
#include <stdlib.h>
#include <string.h>

#include "kc_util.h"
#include "metrics_refresh.h"

struct metrics_refresh {
	struct metrics *m;
	uint64_t seen_restarts[METRICS_REFRESH_MAX_WATCHES], seen_relists[METRICS_REFRESH_MAX_WATCHES];
	uint64_t seen_oversized[METRICS_REFRESH_MAX_WATCHES];
	uint64_t seen_held;
	uint64_t seen_adds, seen_removes, seen_loops;
	uint64_t seen_skipped[PLANNER_SKIP_COUNT];
	char *seen_resources[CORE_MAX_RESOURCES + 1]; /* unhealthy_devices series ever set */
};

struct metrics_refresh *metrics_refresh_new(struct metrics *m)
{
	static const char *const reason_label[] = {"reason", NULL};
	struct metrics_refresh *mr = kc_xcalloc(1, sizeof(*mr));

	mr->m = m;
	/* Both actions read 0 from the start, so rates and alerts have a series before the first fence. */
	metrics_counter_add(m, "quarantine_actions_total", 0, "taint", NULL);
	metrics_counter_add(m, "quarantine_actions_total", 0, "untaint", NULL);
	metrics_register(m, METRICS_COUNTER, "pods_not_evicted_total",
			 "Pods bound to an unhealthy device that a filter kept from eviction, by reason.", reason_label,
			 NULL, 0);
	return mr;
}

struct metrics_refresh *metrics_refresh_free(struct metrics_refresh *mr)
{
	if (!mr)
		return NULL;
	for (size_t i = 0; i < KC_ARRAY_SIZE(mr->seen_resources); i++)
		free(mr->seen_resources[i]);
	free(mr);
	return NULL;
}

/* Adds now - *seen to a counter series and remembers now. */
static void add_difference(struct metrics *m, const char *name, uint64_t now, uint64_t *seen, const char *label1,
			   const char *label2)
{
	if (now > *seen)
		metrics_counter_add(m, name, (double)(now - *seen), label1, label2, NULL);
	*seen = now;
}

static void refresh_unhealthy_devices(struct metrics_refresh *mr, const struct core_stats *st)
{
	/* A resource that is healthy again must read 0, not vanish or keep its old value. */
	for (size_t i = 0; i < KC_ARRAY_SIZE(mr->seen_resources) && mr->seen_resources[i]; i++)
		metrics_gauge_set(mr->m, "unhealthy_devices", 0, mr->seen_resources[i], NULL);
	for (size_t i = 0; i < st->n_unhealthy_devices; i++) {
		size_t j = 0;

		metrics_gauge_set(mr->m, "unhealthy_devices", (double)st->unhealthy_devices[i].count,
				  st->unhealthy_devices[i].resource, NULL);
		while (j < CORE_MAX_RESOURCES && mr->seen_resources[j] &&
		       strcmp(mr->seen_resources[j], st->unhealthy_devices[i].resource) != 0)
			j++;
		if (j < CORE_MAX_RESOURCES && !mr->seen_resources[j])
			mr->seen_resources[j] = kc_xstrdup(st->unhealthy_devices[i].resource);
	}
}

void metrics_refresh_run(struct metrics_refresh *mr, const struct core_stats *st,
			 const struct metrics_refresh_watch *watches, size_t n)
{
	metrics_gauge_set(mr->m, "pods_bound_to_unhealthy_devices", (double)st->unhealthy_pods, NULL);
	metrics_gauge_set(mr->m, "circuit_breaker_open", st->breaker_open ? 1 : 0, NULL);
	refresh_unhealthy_devices(mr, st);
	add_difference(mr->m, "evictions_total", st->held_by_limit, &mr->seen_held, "held_by_limit", "any");
	metrics_gauge_set(mr->m, "quarantined_nodes", st->quarantined_nodes, NULL);
	metrics_gauge_set(mr->m, "quarantined_devices", st->quarantined_devices, NULL);
	metrics_gauge_set(mr->m, "quarantine_cap_reached", st->quarantine_at_cap ? 1 : 0, NULL);
	add_difference(mr->m, "quarantine_actions_total", st->quarantine_adds, &mr->seen_adds, "taint", NULL);
	add_difference(mr->m, "quarantine_actions_total", st->quarantine_removes, &mr->seen_removes, "untaint", NULL);
	add_difference(mr->m, "eviction_loops_total", st->eviction_loops, &mr->seen_loops, NULL, NULL);
	for (size_t i = 1; i < PLANNER_SKIP_COUNT; i++)
		add_difference(mr->m, "pods_not_evicted_total", st->skipped[i], &mr->seen_skipped[i],
			       core_skip_name(i), NULL);
	for (size_t i = 0; i < n && i < METRICS_REFRESH_MAX_WATCHES; i++) {
		if (!watches[i].resource)
			continue;
		add_difference(mr->m, "watch_restarts_total", watches[i].watch_restarts, &mr->seen_restarts[i],
			       watches[i].resource, NULL);
		add_difference(mr->m, "relists_total", watches[i].relists, &mr->seen_relists[i], watches[i].resource,
			       NULL);
		add_difference(mr->m, "oversized_objects_total", watches[i].oversized, &mr->seen_oversized[i],
			       watches[i].resource, NULL);
		metrics_gauge_set(mr->m, "cached_objects", (double)watches[i].cached, watches[i].resource, NULL);
		metrics_gauge_set(mr->m, "ignored_objects", (double)watches[i].ignored, watches[i].resource, NULL);
	}
}
