/*
 * Planner: the per-pod state of the pods of interest (those bound to a device
 * that looks unhealthy, or with an eviction pending or done), which pods the
 * policy lets us evict (filters), and when each may be acted on next
 * (debounce, retry backoff of blocked or failed evictions, the deleteAfter
 * fallback).  Records are kept in a map by UID and, while waiting, in a
 * min-heap by due time, so the next due pod and the next wake-up are found in
 * O(1) and a change costs O(log n).  Pure: no uv.h, no curl.h.
 */
#ifndef PLANNER_H
#define PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "kc_objects.h"
#include "policy.h"

/* Why a pod bound to an unhealthy device is not evicted. */
enum planner_skip {
	PLANNER_SKIP_NONE = 0,
	PLANNER_SKIP_UNSCHEDULED, /* no node: nothing is bound */
	PLANNER_SKIP_TERMINATING, /* deletionTimestamp set */
	PLANNER_SKIP_COMPLETED,	  /* Succeeded or Failed (see planner_filter) */
	PLANNER_SKIP_MIRROR,	  /* static pod: the API cannot evict it */
	PLANNER_SKIP_DAEMONSET,	  /* would come back on the same node */
	PLANNER_SKIP_NAMESPACE,	  /* podFilters.namespaces */
	PLANNER_SKIP_SELECTOR,	  /* podFilters.labelSelector */
	PLANNER_SKIP_OPT_OUT,	  /* device-descheduler.io/evict: "false" */
	PLANNER_SKIP_PRIORITY,	  /* priority >= podFilters.priorityThreshold */
	PLANNER_SKIP_BARE,	  /* no controller owner, eviction.evictBarePods false */
	PLANNER_SKIP_LOOP,	  /* the loop guard: a replacement back on the unit its owner was evicted from */
	PLANNER_SKIP_COUNT,
};

/* A short CamelCase name for metrics labels ("DaemonSet"); static storage. */
const char *planner_skip_name(enum planner_skip s);
/* A sentence for logs and Events; static storage. */
const char *planner_skip_message(enum planner_skip s);

/*
 * Whether the policy lets us evict the pod.  Succeeded and Failed pods are
 * skipped: their containers no longer run on the device, their owner already
 * replaces them, and the kubelet stops updating allocatedResourcesStatus once
 * a pod is Failed, so evicting them would only delete the record of the failure.
 */
enum planner_skip planner_filter(const struct policy *p, const struct kc_pod *pod);
/*
 * Every filter at once, for `explain`: ret_fails[s] is true when the filter
 * of skip reason s keeps the pod (ret_fails[PLANNER_SKIP_NONE] is false).
 * planner_filter() is the first of them in enum order.
 */
void planner_filter_each(const struct policy *p, const struct kc_pod *pod, bool ret_fails[PLANNER_SKIP_COUNT]);
/* Whether a LabelSelector matches a pod's labels. */
bool planner_selector_matches(const struct policy_selector *s, const struct kc_pod *pod);

enum planner_state {
	PLANNER_WAITING = 0, /* waiting for its debounce, a retry or a limit; in the heap */
	PLANNER_SKIPPED,     /* filtered out (skip says why) */
	PLANNER_IN_FLIGHT,   /* an action was returned and has no result yet */
	PLANNER_DONE,	     /* evicted, gone, or reported in dry run: never again for this UID */
};

/* One pod of interest.  All strings are owned by the record. */
struct planner_pod {
	char *uid, *ns, *name, *node;
	struct health_hit *hits;
	size_t n_hits;
	enum planner_state state;
	enum planner_skip skip;
	uint64_t due_ms;      /* when it may be acted on; meaningful while in the heap */
	size_t heap_pos;      /* SIZE_MAX when not in the heap */
	uint64_t seq;	      /* ties of due_ms go first-scheduled first */
	uint64_t retry_at_ms; /* not before this (backoff after BLOCKED/ERROR); 0 = none */
	uint64_t blocked_since_ms;
	unsigned attempts;     /* failed or blocked attempts so far */
	bool blocked;	       /* the last result was BLOCKED (PDB) */
	bool delete_next;      /* the next action is a DELETE (deleteAfter) */
	bool in_flight_delete; /* the action in flight is a DELETE */
	bool gone;	       /* deleted from the API while in flight */
	bool bare_noticed;     /* the NotEvicted notice was emitted */
	bool held;	       /* counted as held by a limit in this episode */
	bool dry_run;	       /* DONE by a dry-run action */
	bool dry_reported;     /* a dry-run action was returned for it (at most one per UID) */
	bool loop_noticed;     /* the EvictionLoop notice was emitted */
	uint64_t seen_ms;      /* when the core first saw it bound to an unhealthy device (loop guard) */
	bool evidence;	       /* its hits count for the circuit breaker (core.c: not Succeeded/Failed) */
};

struct planner;

struct planner *planner_new(void);
/* Frees every record; accepts NULL; returns NULL. */
struct planner *planner_free(struct planner *pl);

/* Borrowed; NULL if the UID has no record. */
struct planner_pod *planner_get(const struct planner *pl, const char *uid);
/* Creates the record for a pod (its UID must have none). Borrowed, owned by the planner. */
struct planner_pod *planner_add(struct planner *pl, const struct kc_pod *pod);
/* Removes and frees a record (and its hits). */
void planner_remove(struct planner *pl, struct planner_pod *r);
size_t planner_count(const struct planner *pl);

/* Puts the record in the heap at due_ms, or moves it; UINT64_MAX takes it out. */
void planner_schedule(struct planner *pl, struct planner_pod *r, uint64_t due_ms);
/* The waiting record due first, or NULL.  Borrowed. */
struct planner_pod *planner_peek(const struct planner *pl);

/* The earliest due time over a record's hits (UINT64_MAX without hits). */
uint64_t planner_hits_due(const struct planner_pod *r);
/* The hit an action names: among those due at now_ms the one due first; else the first. */
const struct health_hit *planner_primary_hit(const struct planner_pod *r, uint64_t now_ms);

/*
 * Records a BLOCKED (429) or failed result of the action in flight and sets
 * retry_at_ms: exponential backoff from retry_initial_ms to retry_max_ms, or
 * retry_after_ms when larger.  A pod blocked for delete_after_ms (> 0) gets
 * delete_next; the retry is brought forward to that deadline.
 */
void planner_retry(const struct policy *p, struct planner_pod *r, bool blocked, uint64_t retry_after_ms,
		   uint64_t now_ms);
/* Sets delete_next iff the deleteAfter deadline (of the current policy) has passed; call before acting. */
void planner_check_delete(const struct policy *p, struct planner_pod *r, uint64_t now_ms);

typedef int (*planner_visit_cb)(struct planner_pod *r, void *userdata);
/* Visits every record (the callback must not add or remove records). */
int planner_foreach(const struct planner *pl, planner_visit_cb cb, void *userdata);

#endif
