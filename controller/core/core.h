/*
 * The controller's pure core: the one interface the I/O shell uses.  The shell
 * tells it what changed in the caches (after the reflector updated the
 * store), whether the caches are synced and whether this replica leads, and
 * the results of the actions it carried out; the core answers with the next
 * action due (evict or delete a pod), notices to turn into Events, the next
 * time it needs to be woken, and counters for metrics.
 *
 * Driving it: after any core_* call, drain core_next_action() and
 * core_next_notice() until -EAGAIN, then arm one timer at core_next_wakeup().
 *
 * Inside: health (which devices look unhealthy, by which signal, since when),
 * planner (per-pod state, filters, retry/backoff, deleteAfter) and limits
 * (sliding logs per window, in flight, circuit breaker).  Pure: no uv.h, no curl.h;
 * time is a monotonic millisecond argument everywhere.  Not thread-safe.
 */
#ifndef CORE_H
#define CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evict_limits.h"
#include "health.h"
#include "kc_delta.h"
#include "kc_objects.h"
#include "kc_store.h"
#include "planner.h"
#include "policy.h"
#include "quarantine.h"

struct core;

/*
 * A core over borrowed stores (claims and slices may be NULL when DRA is not
 * watched) and a borrowed policy; all must outlive the core (or, for the
 * policy, until core_set_policy replaces it).  Objects already in the stores
 * are evaluated.  Never fails (allocation failure aborts, see kc_util.h).
 */
struct core *core_new(const struct policy *p, const struct kc_store *pods, const struct kc_store *nodes,
		      const struct kc_store *claims, const struct kc_store *slices);
/* Accepts NULL; returns NULL. */
struct core *core_free(struct core *c);

/*
 * Hot reload: the core borrows p from now on (the caller frees the old one
 * after this returns) and re-evaluates everything.  Debounce first-seen
 * times, retry state and "already evicted" memory are kept; pods that were
 * only reported in dry run become candidates again when dry run is turned off.
 */
void core_set_policy(struct core *c, const struct policy *p, uint64_t now_ms);

/*
 * devices.dra turned on or off by a reload: the claim and slice stores the
 * shell watches from now on (NULL when it stopped watching them; the core
 * forgets the old ones before this returns, so the caller may free them
 * after).  Borrowed as in core_new; re-evaluates everything.  New stores
 * count as not synced: their claims are read from core_set_dra_synced(true).
 */
void core_set_dra_stores(struct core *c, const struct kc_store *claims, const struct kc_store *slices,
			 uint64_t now_ms);

/*
 * The DeviceTaintRules the shell watches (NULL: none, or it stopped): only
 * rules of others, never our own fences (the shell's list leaves out what
 * carries our label: a fence of ours read as a signal would loop).  Borrowed
 * as in core_new; re-evaluates everything.
 */
void core_set_rule_store(struct core *c, const struct kc_store *rules, uint64_t now_ms);

/*
 * The wall clock (Unix milliseconds) at monotonic now_ms: a claim's
 * tolerationSeconds counts from the taint's timeAdded, a wall-clock time.
 * Until the first call it counts from when the taint was first seen.
 */
void core_set_wall_clock(struct core *c, int64_t wall_ms, uint64_t now_ms);

/*
 * Called after the reflector updated the store, with the reflector's delta;
 * obj and old are borrowed for the call.
 * A pod event re-evaluates that pod; a node event the pods on the node; a
 * claim event the claim's consumers; a slice event the consumers of the
 * claims allocated its devices.
 */
void core_pod_changed(struct core *c, enum kc_delta delta, const struct kc_pod *pod,
		      const struct kc_pod *old, uint64_t now_ms);
void core_node_changed(struct core *c, enum kc_delta delta, const struct kc_node *node,
		       const struct kc_node *old, uint64_t now_ms);
void core_claim_changed(struct core *c, enum kc_delta delta, const struct kc_resource_claim *claim,
			const struct kc_resource_claim *old, uint64_t now_ms);
void core_slice_changed(struct core *c, enum kc_delta delta, const struct kc_resource_slice *slice,
			const struct kc_resource_slice *old, uint64_t now_ms);
/* A DeviceTaintRule of others changed: re-evaluates the consumers of the claims allocated a device
 * it selects (or selected). */
void core_rule_changed(struct core *c, enum kc_delta delta, const struct kc_device_taint_rule *rule,
		       const struct kc_device_taint_rule *old, uint64_t now_ms);

/* All caches synced (nothing is chosen before; the breaker is evaluated from then on). */
void core_set_synced(struct core *c, bool synced, uint64_t now_ms);
/*
 * Whether the DRA caches (claims and slices) have synced; true from
 * core_new().  Until they have, claims are not read: a claim's device taints
 * or conditions seen before the ResourceSlices that make its node a device
 * node would count every DRA node as failing.  Turning true re-evaluates
 * everything.
 */
void core_set_dra_synced(struct core *c, bool synced, uint64_t now_ms);
/*
 * Leader (or no leader election).  Not active: nothing is chosen and no
 * notices are queued (the leader emits them); in-flight actions still
 * complete.  Becoming active re-evaluates everything.
 */
void core_set_active(struct core *c, bool active, uint64_t now_ms);

enum core_action_kind {
	CORE_EVICT,  /* POST pods/eviction (PDBs respected) */
	CORE_DELETE, /* DELETE the pod: the deleteAfter fallback after blocked evictions */
	CORE_FENCE,  /* add or remove a quarantine (action.fence); report with core_fence_done() */
};

/* Strings owned by the core, valid until the next core_* call. */
struct core_action {
	enum core_action_kind kind;
	const char *ns, *name, *uid, *node;
	int64_t grace_period_s; /* -1 = the pod's own */
	bool dry_run;
	const char *signal;	       /* "PodResourceHealth", "NodeCondition", "AllocatableDrop", "ExitCode",
					  "DRADeviceTaint", "DRADeviceCondition" */
	const char *resource, *device; /* device "" when not known (node-level signals) */
	const char *reason;	       /* Event reason: "UnhealthyDevice" */
	const char *message;	       /* "Evicting pod ml/x: nvidia.com/gpu device GPU-1 is Unhealthy (signal
					  PodResourceHealth: XID 79)"; dry run "Would evict ..."; "Deleting ..." */
	uint64_t detected_ms;	       /* when the signal the action names was first seen */
	struct quarantine_action fence; /* CORE_FENCE only (then only message is also set) */
};

/*
 * The next action due at now_ms: 0 and *ret filled, or -EAGAIN.  Each
 * returned action (not dry run) is in flight until core_action_done().  In
 * dry run actions carry dry_run=true, are final at once (not in flight) and
 * are never repeated for the same pod UID.  A UID is evicted at most once.
 */
int core_next_action(struct core *c, uint64_t now_ms, struct core_action *ret);

enum core_result {
	CORE_RESULT_EVICTED, /* 200/201: evicted (or deleted) */
	CORE_RESULT_BLOCKED, /* 429: a PodDisruptionBudget blocks it; retried with backoff */
	CORE_RESULT_GONE,    /* 404: already gone */
	CORE_RESULT_ERROR,   /* anything else; retried with backoff */
	CORE_RESULT_CONFLICT, /* 409: gone when the cache no longer has the UID, else retried with backoff */
	CORE_RESULT_CANCELLED, /* not sent: core_action_check() found it no longer due; re-evaluated */
};

/* The result of an action in flight (unknown UIDs are ignored). retry_after_ms 0 = none. */
void core_action_done(struct core *c, const char *uid, enum core_result r, uint64_t retry_after_ms,
		      uint64_t now_ms);

/*
 * The result of a CORE_FENCE action: kind and unit as in action.fence.  A
 * confirmed fence lets the pods that waited for it be evicted.
 */
void core_fence_done(struct core *c, enum quarantine_kind kind, const char *unit, enum quarantine_result r,
		     uint64_t now_ms);
/*
 * Whether the shell should list our DeviceTaintRules (once per leadership):
 * the policy fences DRA devices with them.
 */
bool core_wants_rules(const struct core *c);
/* One of our DeviceTaintRules exists (listed by the shell once this replica leads). */
void core_rule_observed(struct core *c, const char *driver, const char *pool, const char *device,
			uint64_t now_ms);
/*
 * Whether the action in flight for uid is still due, checked by the shell
 * immediately before each write (the Event may have taken seconds): the pod
 * with that UID is still in the cache, still bound to an
 * unhealthy device, not filtered out by the policy now in force, and dry run
 * was not turned on meanwhile.  0, or -ESTALE with *ret_why (static storage)
 * saying why; then report CORE_RESULT_CANCELLED.
 */
int core_action_check(const struct core *c, const char *uid, const char **ret_why);

/* The earliest debounce/backoff/limit time at which an action may become due; UINT64_MAX if none. */
uint64_t core_next_wakeup(const struct core *c, uint64_t now_ms);

#define CORE_MAX_RESOURCES 16

struct core_resource_count {
	const char *resource; /* owned by the core; "other" past CORE_MAX_RESOURCES names */
	uint64_t count;
};

/* Counters (monotonic) and gauges (current) for metrics; owned by the core, updated in place. */
struct core_stats {
	/* counters: results of actions */
	uint64_t evicted;	/* EVICT then EVICTED */
	uint64_t deleted;	/* DELETE then EVICTED */
	uint64_t blocked;	/* BLOCKED (429) results */
	uint64_t errors;	/* ERROR results */
	uint64_t gone;		/* GONE (404) results */
	uint64_t dry_run;	/* dry-run actions returned */
	uint64_t held_by_limit; /* pods found due but held by a limit (once per pod and hold) */
	uint64_t actions_by_signal[HEALTH_SIGNAL_COUNT]; /* actions returned, by the signal they name */
	uint64_t skipped[PLANNER_SKIP_COUNT]; /* pods bound to unhealthy devices not evicted, by reason */
	uint64_t breaker_trips;
	uint64_t eviction_loops;   /* pods the loop guard kept from eviction (once per pod) */
	uint64_t quarantine_adds;  /* fences written (taint, cordon, rule) */
	uint64_t quarantine_removes; /* fences removed */
	uint64_t quarantine_capped;  /* pods held because the quarantine cap was reached */
	/* gauges */
	struct core_resource_count unhealthy_devices[CORE_MAX_RESOURCES]; /* hits by resource */
	size_t n_unhealthy_devices;
	uint64_t unhealthy_pods; /* pods bound to a device that looks unhealthy (any signal, any filter) */
	uint64_t in_flight;
	uint64_t tracked_pods; /* per-pod records kept */
	uint32_t device_nodes;
	uint32_t unhealthy_nodes;
	uint32_t quarantined_nodes;   /* nodes fenced by a taint or cordon of ours */
	uint32_t quarantined_devices; /* devices fenced by a DeviceTaintRule of ours */
	bool quarantine_at_cap;
	bool breaker_open;
	bool synced;
	bool active;
};

const struct core_stats *core_stats(const struct core *c);

/* The annotations the core reads (opt-out, our quarantine record): the shell's
 * decoders must keep them (kc_decode_opts.keep_annotations); NULL-terminated. */
extern const char *const core_keep_annotations[];

/* Whether the node is quarantined by this controller (a fence of ours, from the node's annotation). */
bool core_node_quarantined(const struct core *c, const char *node);

/* The label of core_stats.skipped[i] for metrics ("DaemonSet"); static storage. */
const char *core_skip_name(size_t i);

/*
 * Notices the shell turns into Kubernetes Events and log lines: the circuit
 * breaker opened (Warning, cluster_wide, reason "CircuitBreakerOpen") or closed
 * (Normal, "CircuitBreakerClosed"), a bare pod not evicted (Normal,
 * "NotEvicted", once per pod UID), the loop guard kept a pod (Warning,
 * "EvictionLoop", once per pod UID), the quarantine cap was reached (Warning,
 * cluster_wide, "QuarantineCapReached", once until a fence is granted again),
 * a fence in dry run (Normal, "WouldTaint", on the pod that needed it).  ns/name/uid are "" when cluster_wide.
 * Strings owned by the core, valid until the next core_* call.
 */
struct core_notice {
	const char *ns, *name, *uid;
	const char *type; /* "Warning" or "Normal" */
	const char *reason;
	const char *message;
	bool cluster_wide;
};

/*
 * 0 and *ret filled, or -EAGAIN.  Notices are queued only while synced and
 * active.  At most 1024 wait; older ones are dropped (with a log line).
 */
int core_next_notice(struct core *c, struct core_notice *ret);

/* What the core would do with one pod at a moment (core_pod_view). */
enum core_decision {
	CORE_DECISION_HEALTHY = 0, /* not bound to a device that looks unhealthy */
	CORE_DECISION_NEVER,	   /* a filter keeps it (skip says which) */
	CORE_DECISION_WAITING,	   /* its debounce or a retry backoff runs until due_ms */
	CORE_DECISION_HELD,	   /* a limit or the circuit breaker holds it (hold says which) */
	CORE_DECISION_DUE,	   /* due now, nothing holds it: the next core_next_action returns it */
	CORE_DECISION_IN_FLIGHT,   /* an action was returned and has no result yet */
	CORE_DECISION_DONE,	   /* evicted, gone, or reported in dry run (dry_run) */
	CORE_DECISION_NOT_ACTIVE,  /* caches not synced or not the leader: nothing is chosen */
};

/* Borrowed from the core: valid until the next core_* call. */
struct core_pod_view {
	enum core_decision decision;
	enum planner_skip skip;	       /* NEVER: the first filter that keeps it */
	enum limits_hold hold;	       /* HELD: the limit that holds it now */
	uint64_t due_ms;	       /* WAITING, HELD: when it may go (UINT64_MAX: only a result or a
					  breaker change frees it); DUE: now */
	bool dry_run;		       /* DONE: only reported in dry run */
	bool retry;		       /* WAITING: a backoff after a blocked or failed eviction */
	bool fence_wait;	       /* WAITING: for the fence of its node or device to be confirmed */
	bool quarantine_capped;	       /* HELD: by the quarantine cap (hold is then LIMITS_OK) */
	const struct health_hit *hits; /* its hits (NULL, 0 when HEALTHY) */
	size_t n_hits;
	const char *breaker_reason; /* limits_breaker_reason(): counts, and why it is open */
};

/*
 * A read-only account of what the core decides for the pod with this UID at
 * now_ms, with the same records, limits and breaker that core_next_action()
 * uses (for `device-descheduler explain`).  Always fills *ret.
 */
void core_pod_view(struct core *c, const char *uid, uint64_t now_ms, struct core_pod_view *ret);

#endif
