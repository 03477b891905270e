/*
 * Health: which devices a pod is bound to look unhealthy under the policy, by
 * which signal, and since when.  It keeps the state that outlives a single
 * pod event: per node, the policy's node conditions and allocatable drops
 * that currently hold (with the monotonic time they were first seen, since
 * the API's wall-clock lastTransitionTime is not comparable with our clock),
 * and per DRA device, the ResourceSlice taints with a listed effect, and
 * the DeviceTaintRules of others whose effect is listed.  From
 * that and the pod itself, health_pod_eval() lists the pod's "hits": one per
 * (signal, resource, device) that holds now.  The planner decides what to do
 * with them.  Pure: no uv.h, no curl.h; time is a monotonic millisecond
 * argument.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_objects.h"
#include "kc_store.h"
#include "policy.h"

/* ---- signals and hits ---- */

enum health_signal {
	HEALTH_POD_RESOURCE = 0, /* "PodResourceHealth" */
	HEALTH_NODE_CONDITION,	 /* "NodeCondition" */
	HEALTH_ALLOC_DROP,	 /* "AllocatableDrop" */
	HEALTH_EXIT_CODE,	 /* "ExitCode" */
	HEALTH_DRA_TAINT,	 /* "DRADeviceTaint" */
	HEALTH_DRA_CONDITION,	 /* "DRADeviceCondition" */
	HEALTH_SIGNAL_COUNT,
};

/* The signal's name as used in actions, Events and metrics; static storage. */
const char *health_signal_name(enum health_signal s);

/*
 * One reason a pod looks bound to an unhealthy device.  All strings are owned
 * by the hit.  The hit is "due" (unhealthy under the policy) at
 * first_seen_ms + for_ms.
 */
struct health_hit {
	enum health_signal signal;
	char *resource; /* "nvidia.com/gpu" or "claim:<claim>/<request>" */
	char *device;	/* "GPU-7540a9b3", "driver/pool/device"; "" when not known (node-level) */
	char *state;	/* "Unhealthy", "Unknown", "tainted", ... for messages */
	char *detail;	/* e.g. "XID 79", "GPUXIDErrors=True: ...": the text after "signal X: " */
	uint64_t first_seen_ms;
	uint64_t for_ms;
};

uint64_t health_hit_due(const struct health_hit *h);
/* Frees an array of hits and their strings; accepts NULL. */
void health_hits_free(struct health_hit *hits, size_t n);

struct health;

struct health *health_new(void);
/* Accepts NULL; returns NULL. */
struct health *health_free(struct health *h);

/*
 * Brings a node's state up to date (node added or modified, or the policy
 * changed).  First-seen times of conditions and drops that still hold are
 * kept.  Returns true if anything pods depend on changed (the caller then
 * re-evaluates the node's pods).
 */
bool health_node_update(struct health *h, const struct policy *p, const struct kc_node *node,
			uint64_t now_ms);
/* The node was deleted.  Returns true if it had signals. */
bool health_node_remove(struct health *h, const char *name);

/*
 * Brings the tainted-device index up to date for one ResourceSlice: `slice` is
 * its new state (NULL when deleted), `old` its previous state (NULL when
 * added).  Returns true if the set of tainted devices changed.
 */
bool health_slice_update(struct health *h, const struct policy *p, const struct kc_resource_slice *slice,
			 const struct kc_resource_slice *old, uint64_t now_ms);
/*
 * Brings the foreign DeviceTaintRules up to date for one rule: `rule` is its
 * new state (NULL when deleted), `old` its previous state (NULL when added).
 * The caller passes only rules that are not ours (our fences carry our label:
 * counting them would make a fence its own signal).  A rule counts when its
 * taint's effect is listed and it has a deviceSelector; it then taints every
 * device the selector picks, as a slice taint does.  Returns true if the set
 * of rule taints changed.
 */
bool health_rule_update(struct health *h, const struct policy *p, const struct kc_device_taint_rule *rule,
			const struct kc_device_taint_rule *old, uint64_t now_ms);
/* Whether the rule's selector picks driver/pool/device (a rule without a selector picks none). */
bool health_rule_selects(const struct kc_device_taint_rule *rule, const char *driver, const char *pool,
			 const char *device);
/* Whether driver/pool/device currently has a taint with a listed effect (slice or rule). */
bool health_device_tainted(const struct health *h, const char *driver, const char *pool, const char *device);

/*
 * The wall clock (Unix milliseconds) at monotonic now_ms.  A claim's
 * tolerationSeconds counts from the taint's timeAdded, a wall-clock time;
 * until this is called it counts from when the taint was first seen.
 */
void health_set_wall_clock(struct health *h, int64_t wall_ms, uint64_t now_ms);

/*
 * Generations for a full re-evaluation (policy change): begin, update every
 * node, slice and rule, then sweep drops the state of nodes, slices and rules
 * that were not updated since.
 */
void health_begin_generation(struct health *h);
void health_sweep(struct health *h);

/*
 * Lists the pod's hits now.  prev/n_prev (may be NULL/0) are its hits from the
 * last evaluation: a pod-level hit that still holds keeps its first-seen time.
 * claims (may be NULL) resolves the pod's ResourceClaims.  Returns the number
 * of hits; *ret_hits (owned by the caller, free with health_hits_free) is NULL
 * when there are none, and nothing is allocated then.
 */
size_t health_pod_eval(const struct health *h, const struct policy *p, const struct kc_pod *pod,
		       const struct kc_store *claims, const struct health_hit *prev, size_t n_prev,
		       uint64_t now_ms, struct health_hit **ret_hits);

/*
 * The devices a pod holds, for `explain`, as the health code counts them: each
 * device-plugin resource it requests, once per device ID its
 * allocatedResourcesStatus names (health "Healthy", "Unhealthy", "Unknown" or
 * ""), or once with device "" when no ID is known; and each device allocated
 * to its DRA claims (resource "claim:<claim>/<request>", device
 * "driver/pool/device"; "claim:<claim>" and "" while not allocated).  claims
 * may be NULL.  Calls cb for each (strings borrowed for the call); returns how many.
 */
typedef void (*health_device_cb)(const char *resource, const char *device, const char *health, void *userdata);
size_t health_pod_devices(const struct policy *p, const struct kc_pod *pod, const struct kc_store *claims,
			  health_device_cb cb, void *userdata);

/* Whether the pod holds any device resource (requests, limits or, with dra, a claim). */
bool health_pod_holds_device(const struct policy *p, const struct kc_pod *pod);

/*
 * The circuit breaker's view of the cluster.  A device node has capacity of a
 * device resource, or ResourceSlices that publish devices (with devices.dra),
 * or is unhealthy.  An unhealthy node has:
 *  - a listed node condition, where the node holds one of the condition's
 *    resources (a condition on a CPU-only node is not a device failure);
 *  - a device resource whose allocatable is below its capacity, whatever the
 *    allocatableDrop switch says;
 *  - or a device that pods reported unhealthy (the caller reports them with
 *    health_evidence_add/drop).  Such a device counts until a pod sees it
 *    recover; once every pod that reported it has gone away or finished
 *    without that, it still counts for the policy's circuitBreaker.memory,
 *    so that evicting a pod does not erase the evidence of its failure.
 * Signals count as soon as they are observed, before their debounce: the
 * breaker guards against a cluster-wide false signal, and should hold before
 * any eviction fires.
 */
/* Whether a node-level signal (a policy node condition or an allocatable drop) holds on the node now. */
bool health_node_has_signal(const struct health *h, const char *node);
/* Whether the breaker counts the node as unhealthy. */
bool health_node_unhealthy(const struct health *h, const char *node);
/* A pod on node reports resource/device unhealthy ("" device: the resource as a whole). */
void health_evidence_add(struct health *h, const char *node, const char *resource, const char *device);
/*
 * A pod stopped reporting it: recovered (the pod is still there, running, and
 * no longer reports it) or not (the pod went away or finished: the device
 * then counts until now_ms + memory_ms, unless a pod sees it recover first).
 */
void health_evidence_drop(struct health *h, const char *node, const char *resource, const char *device,
			  bool recovered, uint64_t now_ms, uint64_t memory_ms);
/* The counts at now_ms (remembered devices whose memory ran out are forgotten first). */
void health_breaker_counts(struct health *h, uint64_t now_ms, uint32_t *ret_device_nodes,
			   uint32_t *ret_unhealthy_nodes);
/* When the next remembered device may be forgotten (the counts may drop then); UINT64_MAX if none. */
uint64_t health_breaker_wake(const struct health *h);

#endif
