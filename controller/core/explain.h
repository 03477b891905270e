/*
 * Explain: what the controller would decide about one pod, and why, for
 * `device-descheduler explain NAMESPACE/POD`.  It runs the controller's own
 * decision code, not a copy: a core (core.h) over the caches the caller
 * filled, synced and active, whose due actions are drawn as a freshly
 * started leader would draw them (each one answered "evicted", so pods ahead
 * of this one in the queue use up the limits they would use); then the
 * pod's record, filters (planner_filter_each), devices (health_pod_devices)
 * and hits are read back.  Fences (quarantine.h) the draw asks for are
 * answered "written", as the API would confirm them; a quarantine the node
 * already carries is read from its annotation, as the controller does.
 *
 * Time: the core runs on a clock of its own that starts now, so debounces
 * count from now, as for a controller that first sees the pod now.  A
 * running controller counts from when it first saw the signal, which the API
 * does not record.  Limits likewise start empty: evictions the running
 * controller made in its current window are not known here.
 *
 * Pure: no I/O, no uv.h, no curl.h.
 */
#ifndef EXPLAIN_H
#define EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "health.h"
#include "kc_objects.h"
#include "kc_store.h"
#include "planner.h"
#include "policy.h"

/* One device the pod holds (see health_pod_devices); strings owned. */
struct explain_device {
	char *resource;
	char *device; /* "" when the API names no device ID */
	char *health; /* KEP-4680 word from allocatedResourcesStatus, or "" */
};

/* The last skip reason that is a filter of the policy (the loop guard after it is not). */
#define EXPLAIN_LAST_FILTER PLANNER_SKIP_BARE

/* Everything explain_pod() found; every string owned, freed by explain_done(). */
struct explain {
	char *ns, *name, *uid, *node;
	char *owner_kind, *owner_name; /* the controller owner; "" for a bare pod */
	const char *phase;	       /* "Running", ...; static */
	struct explain_device *devices;
	size_t n_devices;
	struct health_hit *hits; /* the core's hits for the pod (copies) */
	size_t n_hits;
	int64_t *hit_since; /* per hit: when the API says it began (Unix seconds: a node or claim device
			       condition's lastTransitionTime, a slice taint's timeAdded), 0 when it does not say */
	int64_t now_s;	    /* the wall clock explain_pod() was given */
	bool signal_enabled[HEALTH_SIGNAL_COUNT];
	bool filter_fails[PLANNER_SKIP_COUNT]; /* see planner_filter_each: the policy's filters are
						  1 .. EXPLAIN_LAST_FILTER */
	enum core_decision decision;
	enum planner_skip skip;	 /* NEVER: the filter that decides */
	enum limits_hold hold;	 /* HELD */
	uint64_t due_in_ms;	 /* WAITING, HELD: from now; UINT64_MAX: no time known */
	bool retry;		 /* WAITING on a retry backoff (not a debounce) */
	bool fence_wait;	 /* WAITING for its node's or device's fence */
	bool quarantine_capped;	 /* HELD by the quarantine cap */
	bool node_quarantined;	 /* its node carries a quarantine of this controller */
	char *fence_message;	 /* the fence the controller would write first for this pod's node or
				    devices ("Quarantining node ..."), or NULL */
	bool dry_run;		 /* the policy's dryRun */
	bool breaker_open;
	uint32_t device_nodes, unhealthy_nodes;
	char *breaker_reason;
	char *action_message; /* DUE: the message of the core's action ("Evicting pod ..."); else NULL */
	char *decision_text;  /* "would evict now", "would evict in 25 s", "never: DaemonSet pod",
				 "held: node limit (maxPerNode)", "not evicted: no device it holds looks unhealthy" */
};

/*
 * Explains the pod ns/name of the pods store, under policy p, with the other
 * stores (claims, slices and rules, the DeviceTaintRules of others, may be
 * NULL, as for the core); now_s is the wall clock, to read the API's
 * timestamps against (and to count tolerationSeconds from a taint's
 * timeAdded).  Returns 0 and fills *ret, or -ENOENT when the store has no
 * such pod (*ret is then zeroed).
 */
int explain_pod(const struct policy *p, const struct kc_store *pods, const struct kc_store *nodes,
		const struct kc_store *claims, const struct kc_store *slices, const struct kc_store *rules,
		const char *ns, const char *name, int64_t now_s, struct explain *ret);

/* Seconds of a hit's debounce left at now_s for a controller that has watched since the API's
 * time `since` (> 0), as explain reports it next to the count from now. */
uint64_t explain_left_since(const struct health_hit *h, int64_t since, int64_t now_s);
/* The decision text of a core_pod_view read at now_ms ("held: node limit ...; would evict in 60 s"),
 * as explain_pod() words it; the caller frees it. */
char *explain_view_text(const struct core_pod_view *v, bool dry_run, uint64_t now_ms);
/* Frees what explain_pod() filled and zeroes it; accepts a zeroed struct. */
void explain_done(struct explain *e);

/* For output: what holds a pod ("node limit (maxPerNode)") and a decision's
 * name ("WouldEvictNow", "Waiting", "Held", "Never", ...); static storage. */
const char *explain_hold_text(enum limits_hold h);
const char *explain_decision_name(enum core_decision d);

#endif
