/*
 * Quarantine: keeping the scheduler away from failed hardware before its pods
 * are evicted, so that the replacements land on healthy devices, and letting
 * it back once the hardware has been healthy for a while.  Two kinds of
 * fence: a node taint (and/or cordon) for signals the scheduler cannot see
 * per device, and a DRA DeviceTaintRule selecting exactly one device.
 * Which one a health hit needs is quarantine_fence_for() (the matrix in
 * docs/policy.md).
 *
 * The module also holds the loop guard: an owner whose pod was evicted from a
 * unit of failure (a node, or one device) gets no second eviction from the
 * same unit within the loop window, whatever fenced it or not.
 *
 * State lives on the API objects: a node quarantined by us carries the taint
 * and the annotation QUARANTINE_ANNOTATION; a rule carries the label
 * QUARANTINE_RULE_LABEL.  quarantine_observe_node() and
 * quarantine_observe_rule() rebuild the state from them after a restart or a
 * leader change; the loop guard's memory is the only state kept in memory
 * alone.  Pure: no uv.h, no curl.h; time is a monotonic millisecond argument.
 * Not thread-safe.
 */
#ifndef QUARANTINE_H
#define QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"
#include "kc_objects.h"
#include "policy.h"

/* The node annotation recording a quarantine: JSON {since, signal, resource, message, key, cordoned}. */
#define QUARANTINE_ANNOTATION "device-descheduler.io/quarantine"
/* The label (value "device-descheduler") on the DeviceTaintRules this controller creates. */
#define QUARANTINE_RULE_LABEL "app.kubernetes.io/managed-by"
#define QUARANTINE_RULE_LABEL_VALUE "device-descheduler"
/* The label selector of every DeviceTaintRule but ours: the rules of others are a health signal,
 * ours never (a fence read as a signal would keep itself alive). */
#define QUARANTINE_FOREIGN_RULES QUARANTINE_RULE_LABEL "!=" QUARANTINE_RULE_LABEL_VALUE

/* What fences a device that a hit reports unhealthy. */
enum quarantine_fence {
	QUARANTINE_FENCE_NONE = 0, /* the cluster fences it itself (kubelet allocatable, slice taint) */
	QUARANTINE_FENCE_NODE,	   /* taint (or cordon) the node */
	QUARANTINE_FENCE_DEVICE,   /* a DeviceTaintRule for driver/pool/device */
};

/*
 * The matrix: KEP-4680 Unhealthy on a device-plugin resource needs nothing
 * (the kubelet drops the device from allocatable); a ResourceSlice taint needs
 * nothing unless its effect is None; a DRA device named driver/pool/device
 * needs a DeviceTaintRule; every other signal (node conditions, allocatable
 * drops, exit codes, Unknown health, a DRA signal without a device) needs the
 * node taint.
 */
enum quarantine_fence quarantine_fence_for(const struct health_hit *hit);

enum quarantine_kind {
	QUARANTINE_NODE = 0,
	QUARANTINE_DEVICE,
};

enum quarantine_op {
	QUARANTINE_ADD,	   /* taint/cordon the node, or create the rule */
	QUARANTINE_REMOVE, /* undo what we added */
};

/* An API write the shell carries out.  Strings owned by the module, valid until the next call. */
struct quarantine_action {
	enum quarantine_kind kind;
	enum quarantine_op op;
	const char *unit;		  /* the node name, or "driver/pool/device" */
	const char *node;		  /* the node (for a device: the node of the pod that named it) */
	const char *driver, *pool, *device; /* devices only */
	const char *signal, *resource, *message; /* what made it unhealthy (ADD) */
	/* The fence as the policy says (filled by the core): the taint and the mode. */
	const char *key, *effect;
	bool taint, cordon;
};

/* Answers of quarantine_need(). */
enum quarantine_need {
	QUARANTINE_READY = 0, /* fenced and confirmed (or no fence needed / disabled / dry run): evict */
	QUARANTINE_WAIT,      /* a fence is on its way: wait for quarantine_done or the watch */
	QUARANTINE_CAPPED,    /* the cap is reached: neither fence nor evict */
};

/* Results of an action, from the shell. */
enum quarantine_result {
	QUARANTINE_OK = 0,	   /* written (or already as wanted) */
	QUARANTINE_FAILED,	   /* retried with backoff */
	QUARANTINE_UNSUPPORTED,	   /* no DeviceTaintRule API is served: fall back to node taints */
};

struct quarantine;

/* A new module under the borrowed policy (replace it with quarantine_set_policy). */
struct quarantine *quarantine_new(const struct policy *p);
/* Accepts NULL; returns NULL. */
struct quarantine *quarantine_free(struct quarantine *q);

/* The policy changed; with remediation turned off every fence of ours is queued for removal. */
void quarantine_set_policy(struct quarantine *q, const struct policy *p, uint64_t now_ms);

/*
 * The unit of failure an eviction for this hit is counted against (for the
 * loop guard) and that a fence covers: the node for node-scoped signals,
 * "resource|device" for a per-device signal.  The caller frees the result.
 */
char *quarantine_unit_of(const struct health_hit *hit, const char *node);

/*
 * Whether the pod may be evicted as far as fencing goes, for the hit that
 * needs the strongest fence (see quarantine_fence_for), on node `node`.
 * device_nodes is the breaker's count of device nodes (for the percentage
 * cap).  May queue an ADD action.  In dry run nothing is written and the unit
 * counts as fenced at once; *ret_new_dry is then true the first time (the
 * caller reports "Would taint").
 */
enum quarantine_need quarantine_need(struct quarantine *q, const struct health_hit *hit, const char *node,
				     uint32_t device_nodes, bool dry_run, bool *ret_new_dry, uint64_t now_ms);

/*
 * Health hits needing a fence, counted per unit (delta +1 or -1 per pod
 * record and unit).  A quarantined unit with no such hit and no node-level
 * signal starts its recovery clock.
 */
void quarantine_hit(struct quarantine *q, const struct health_hit *hit, const char *node, int delta,
		    uint64_t now_ms);
/* Whether a node-level signal (condition or allocatable drop) holds on the node now. */
void quarantine_node_signal(struct quarantine *q, const char *node, bool signal, uint64_t now_ms);

/*
 * A node as the watch delivers it: our annotation (or our taint) marks it
 * quarantined by us.  Returns true when that confirms a fence pods were
 * waiting for (the caller re-evaluates the node's pods).  deleted: the node is
 * gone.
 */
bool quarantine_observe_node(struct quarantine *q, const struct kc_node *node, bool deleted, uint64_t now_ms);
/*
 * The caches have synced: every recovery clock starts no earlier than now,
 * since nothing before says how long a fence found on the API has been healthy.
 */
void quarantine_synced(struct quarantine *q, uint64_t now_ms);
/* One of our DeviceTaintRules exists (from a list after start-up or leader change). */
void quarantine_observe_rule(struct quarantine *q, const char *driver, const char *pool, const char *device,
			     uint64_t now_ms);

/* The next write due: 0 and *ret filled, or -EAGAIN.  The action is in flight until quarantine_done. */
int quarantine_next_action(struct quarantine *q, uint64_t now_ms, struct quarantine_action *ret);
/*
 * The result of the action in flight for (kind, unit).  Returns the node whose
 * pods were waiting for it when a fence got confirmed, or NULL (borrowed,
 * valid until the next call).
 */
const char *quarantine_done(struct quarantine *q, enum quarantine_kind kind, const char *unit,
			    enum quarantine_result r, uint64_t now_ms);

/* The earliest time an action may become due (recovery, retry); UINT64_MAX if none. */
uint64_t quarantine_next_wakeup(const struct quarantine *q, uint64_t now_ms);

/* Whether the node is quarantined by us (any state but recovered), for the breaker. */
bool quarantine_node_fenced(const struct quarantine *q, const char *node);
typedef void (*quarantine_node_cb)(const char *node, void *userdata);
/* Visits every node quarantined by us (a node with several device rules once). */
void quarantine_foreach_node(const struct quarantine *q, quarantine_node_cb cb, void *userdata);

struct quarantine_stats {
	uint32_t nodes;	  /* nodes quarantined by a node fence (gauge) */
	uint32_t devices; /* devices quarantined by a rule (gauge) */
	uint64_t adds;	  /* confirmed ADD writes (counter) */
	uint64_t removes; /* confirmed REMOVE writes (counter) */
	uint64_t capped;  /* fences refused by the cap (counter) */
	bool at_cap;	  /* a fence was refused by the cap and none was granted or removed since */
	bool no_rule_api; /* no DeviceTaintRule API: devices fall back to node fences */
};
const struct quarantine_stats *quarantine_stats(const struct quarantine *q);

/* ---- the loop guard ---- */

/*
 * Whether evicting a pod of `owner` (the controller ownerReference UID; ""
 * for none: never a loop) from `unit` would repeat an eviction of the same
 * owner from the same unit within the loop window: there was one at or before
 * pod_seen_ms (the pod was first seen bound to the failure after it, so it is a
 * replacement that came back) and the last one is younger than the window.
 */
bool quarantine_loop_check(const struct quarantine *q, const char *owner, const char *unit, uint64_t pod_seen_ms,
			   uint64_t now_ms);
/* Records an eviction of a pod of `owner` from `unit` at now_ms. */
void quarantine_loop_record(struct quarantine *q, const char *owner, const char *unit, uint64_t now_ms);

#endif
