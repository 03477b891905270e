/*
 * The compact, typed objects that k8sclient keeps in its caches.
 *
 * A decoder (kc_decode.h) turns the JSON of a Pod, Node, ResourceClaim,
 * ResourceSlice or DeviceTaintRule into one of these structs, keeping only what a device
 * controller needs.  Ownership rules, the same for every kind:
 *
 *  - Each decoded object is ONE heap block: the struct, its arrays and its
 *    non-interned strings live in a single allocation, so free(obj) releases
 *    it.  (kc_object_free() exists for readability.)
 *  - Strings marked "interned" point into the struct kc_intern given to the
 *    decoder and live until that intern table is freed.  Interned strings may
 *    be compared by pointer.
 *  - No string is NULL: an absent field is "".  Arrays with n == 0 may be NULL.
 *  - Every object starts with struct kc_meta, so generic code (the store, the
 *    reflector) casts any object to struct kc_meta *.
 *  - Times are Unix seconds; 0 means absent.
 *  - Counts are 16 bits: an object with more than 16,384 elements of one
 *    kind is not cached (a LIST leaves it out with a warning, a watch
 *    delivers its deletion; kc_decode.h).  Some are 8 bits: past 255 ownerReferences, or 255
 *    containers, statuses or claims that a pod keeps, the first 255 are kept
 *    (one object must not fail the LIST or watch it comes in).  Enums that the
 *    structs keep in one byte say so.
 *  - A pod keeps what a device controller reads, not the whole object: with a
 *    device predicate (kc_decode_opts.is_device) only the containers and
 *    statuses of devices, and never the fields no reader uses.
 */
#ifndef KC_OBJECTS_H
#define KC_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kc_devid.h"
#include "kc_uid.h"

struct kc_kv {
	const char *key;   /* interned */
	const char *value;
};

struct kc_owner_ref {
	const char *kind;  /* interned */
	/*
	 * NULL when the name is the object's own name up to its last '-', as
	 * for the pods of a ReplicaSet, Job, StatefulSet or DaemonSet
	 * (<owner>-<suffix>): read it with kc_owner_name().  Owner names churn
	 * with every rollout and Job, so they are not interned.
	 */
	const char *name;
	struct kc_uid uid;  /* an unpacked UID's text is in the object's block */
};

struct kc_meta {
	const char *ns;    /* interned; "" for cluster-scoped objects */
	const char *name;
	/*
	 * Packed when it is a lower-case UUID (what kube-apiserver sends), else its text is in
	 * the object's block: read it with kc_uid_str(), compare it with kc_uid_eq_str().
	 */
	struct kc_uid uid;
	/*
	 * metadata.resourceVersion as a key that tells a changed object from an
	 * unchanged one (kc_decode_rv_key): the number itself for a decimal
	 * resourceVersion (what kube-apiserver sends: etcd's revision), else a
	 * hash of the text.  Compare for equality only; the text is in
	 * kc_watch_event.resource_version while an event is delivered.
	 */
	uint64_t rv_key;
	/*
	 * The labels, then the annotations (only the keys the decode options keep) in
	 * the same array: read the annotations with kc_meta_annotations().  One
	 * pointer less in every cached object.
	 */
	struct kc_kv *labels;
	struct kc_owner_ref *owners;
	uint16_t n_labels;
	uint16_t n_annotations;
	uint8_t n_owners;     /* the first 255 ownerReferences are kept */
	uint8_t controller;   /* 1 + the index of the first owner marked controller; 0 = none */
	bool deleting;        /* metadata.deletionTimestamp is set (a valid time): being deleted */
};

/* The n_annotations annotations of m, right after its labels. */
static inline const struct kc_kv *kc_meta_annotations(const struct kc_meta *m)
{
	return m->n_annotations ? m->labels + m->n_labels : NULL;
}

/* The name of an owner of m: *ret_len bytes at the returned pointer (not NUL-terminated). */
static inline const char *kc_owner_name(const struct kc_meta *m, const struct kc_owner_ref *o, size_t *ret_len)
{
	const char *dash = o->name ? NULL : strrchr(m->name, '-');

	if (o->name) {
		*ret_len = strlen(o->name);
		return o->name;
	}
	*ret_len = dash ? (size_t)(dash - m->name) : 0;
	return m->name;
}

/* The first owner marked controller (the API server allows one), or NULL. */
static inline const struct kc_owner_ref *kc_meta_controller(const struct kc_meta *m)
{
	return m->controller && m->controller <= m->n_owners ? &m->owners[m->controller - 1] : NULL;
}

/* An extended-resource quantity.  Device counts are integers; "2" -> 2, "1k" -> 1000. */
struct kc_quantity {
	const char *name;  /* interned, e.g. "nvidia.com/gpu" */
	int64_t value;
};

enum kc_cond_status {
	KC_COND_UNKNOWN = 0,
	KC_COND_TRUE,
	KC_COND_FALSE,
};

struct kc_condition {
	const char *type;     /* interned */
	const char *reason;   /* interned */
	const char *message;  /* truncated to kc_decode_opts.max_message bytes */
	int64_t last_transition;
	enum kc_cond_status status;
};

enum kc_pod_phase {
	KC_POD_PHASE_UNKNOWN = 0,
	KC_POD_PENDING,
	KC_POD_RUNNING,
	KC_POD_SUCCEEDED,
	KC_POD_FAILED,
};

/* KEP-4680 health of one allocated device. */
enum kc_health {
	KC_HEALTH_UNSET = 0,  /* field absent or an unknown word */
	KC_HEALTH_HEALTHY,
	KC_HEALTH_UNHEALTHY,
	KC_HEALTH_UNKNOWN,
};

/*
 * A container (regular or init) and the extended resources it asks for.
 * Only resource names containing '/' are kept (cpu, memory, hugepages-* and
 * ephemeral-storage are dropped by the decoder).  Requests and limits are one
 * list: a limit without a request counts as the request, as the API server
 * defaults it (and for extended resources the two must be equal).
 */
struct kc_container {
	const char *name;  /* interned: container names repeat across a workload's pods */
	struct kc_quantity *requests;
	uint16_t n_requests;
	/* The first of resources.claims[].name, a DRA claim of the pod it uses, as 1 + its index
	 * in kc_pod.claims; 0 if none.  Read it with kc_container_claim(). */
	uint8_t claim;
	bool init;  /* from spec.initContainers (sidecars can hold devices) */
};

/* A device of a kc_resource_status that is not plainly Healthy: Unhealthy, Unknown, an
 * unknown word or no health at all, or Healthy with a message. */
struct kc_device_note {
	const char *message;  /* cut to kc_decode_opts.max_message; "" if none */
	uint16_t index;       /* of the device in kc_resource_status.ids */
	uint8_t health;       /* enum kc_health */
};

/*
 * One entry of a container status' allocatedResourcesStatus.  Nearly every
 * device is Healthy without a message, and a training pod holds eight: such a
 * device is only its ID; the others have a note too.  Read a device's health
 * with kc_device_health().
 *
 * Device IDs are kc_devid values in the object's block, 17 bytes each: a
 * UUID-shaped ID ("GPU-<uuid>", "MIG-<uuid>", a bare UUID) is packed, since
 * it names one device and interning it would cost ~70 bytes a device (slab
 * and table slot) for no sharing; any other ID points at its interned text
 * (PCI addresses, "nvidia0", "GPU-<uuid>::3": they repeat as pods come and go
 * on the same device).  Read one with kc_devid_str(), compare with
 * kc_devid_eq() or kc_devid_eq_str(): an ID cannot be compared by pointer.
 */
struct kc_resource_status {
	const char *name;  /* interned: "nvidia.com/gpu" or "claim:<claim>/<request>" */
	/* resources[].resourceID, n_devices of them; right before them, the n_notes notes in the
	 * order of their index (kc_rs_notes): one pointer for both. */
	struct kc_devid *ids;
	uint16_t n_devices;
	uint16_t n_notes;
};

/* The notes of rs (n_notes of them), right before its IDs; NULL without one. */
static inline const struct kc_device_note *kc_rs_notes(const struct kc_resource_status *rs)
{
	return rs->n_notes ? (const struct kc_device_note *)(const void *)((const char *)rs->ids -
									 rs->n_notes * sizeof(struct kc_device_note))
			   : NULL;
}

/* The health of device i of rs, and its message ("" if none) in *ret_message (may be NULL). */
static inline enum kc_health kc_device_health(const struct kc_resource_status *rs, uint32_t i,
					      const char **ret_message)
{
	const struct kc_device_note *notes = kc_rs_notes(rs);

	for (uint32_t k = 0; k < rs->n_notes; k++) {
		if (notes[k].index == i) {
			if (ret_message)
				*ret_message = notes[k].message;
			return (enum kc_health)notes[k].health;
		}
	}
	if (ret_message)
		*ret_message = "";
	return KC_HEALTH_HEALTHY;
}

enum kc_container_state {
	KC_STATE_UNKNOWN = 0,
	KC_STATE_WAITING,
	KC_STATE_RUNNING,
	KC_STATE_TERMINATED,
};

struct kc_container_status {
	const char *name;              /* interned */
	struct kc_resource_status *resources;  /* allocatedResourcesStatus */
	int32_t restart_count;
	int32_t exit_code;             /* state.terminated.exitCode when has_exit_code */
	int32_t last_exit_code;        /* lastState.terminated.exitCode when has_last_exit_code */
	uint16_t n_resources;
	uint8_t state;                 /* enum kc_container_state */
	bool has_exit_code : 1;
	bool has_last_exit_code : 1;
	bool ready : 1;                /* containerStatuses[].ready */
	bool init : 1;                 /* from status.initContainerStatuses */
	/* The state's reason (state.waiting.reason, else state.terminated.reason) is CrashLoopBackOff. */
	bool crash_loop_backoff : 1;
};

/* A pod's claim: from spec.resourceClaims (claim_name = resourceClaimName when
 * set directly) merged with status.resourceClaimStatuses (generated names). */
struct kc_claim_ref {
	const char *name;        /* the pod-level claim name */
	const char *claim_name;  /* the ResourceClaim object's name; "" if not yet known */
};

struct kc_pod {
	struct kc_meta meta;
	const char *node_name;   /* interned; "" when not scheduled */
	/* The containers, then the n_claims claims right after them (kc_pod_claims): one pointer
	 * for both, set when either count is not 0. */
	struct kc_container *containers;
	struct kc_container_status *statuses;
	int32_t priority;
	uint8_t n_containers;    /* counts of a pod's parts: the decoder refuses more than 255 */
	uint8_t n_statuses;
	uint8_t n_claims;
	uint8_t phase : 3;       /* enum kc_pod_phase */
	bool has_priority : 1;
	bool is_mirror : 1;      /* has the kubernetes.io/config.mirror annotation */
};

/* The pod's claims (spec.resourceClaims with the names the status gives them), n_claims of
 * them, right after its containers; NULL without one. */
static inline const struct kc_claim_ref *kc_pod_claims(const struct kc_pod *p)
{
	return p->n_claims ? (const struct kc_claim_ref *)(const void *)(p->containers + p->n_containers) : NULL;
}

/* The name of the pod's claim that c uses (resources.claims), or "". */
static inline const char *kc_container_claim(const struct kc_pod *p, const struct kc_container *c)
{
	return c->claim && c->claim <= p->n_claims ? kc_pod_claims(p)[c->claim - 1].name : "";
}

struct kc_taint {
	const char *key;     /* interned */
	const char *value;
	const char *effect;  /* interned: "NoSchedule", "PreferNoSchedule", "NoExecute", "None" */
	int64_t time_added;
};

struct kc_node {
	struct kc_meta meta;
	struct kc_taint *taints;
	struct kc_condition *conditions;  /* all of them */
	struct kc_quantity *capacity;     /* extended resources only */
	struct kc_quantity *allocatable;  /* extended resources only */
	uint32_t n_taints;
	uint32_t n_conditions;
	uint32_t n_capacity;
	uint32_t n_allocatable;
	bool unschedulable;
};

enum kc_toleration_op {
	KC_TOLERATION_EQUAL = 0, /* "Equal", or absent (the API's default) */
	KC_TOLERATION_EXISTS,
	KC_TOLERATION_OTHER,	 /* an operator this client does not know: it tolerates nothing */
};

/* A DRA device toleration (results[].tolerations[]: a copy of the request's, taken at allocation). */
struct kc_toleration {
	const char *key;     /* interned; "" = every key (operator Exists) */
	const char *value;
	const char *effect;  /* interned; "" = every effect */
	int64_t seconds;     /* tolerationSeconds, when has_seconds */
	enum kc_toleration_op op;
	bool has_seconds;    /* absent: tolerated for ever */
};

/* status.allocation.devices.results[] */
struct kc_device_result {
	const char *request;
	const char *driver;  /* interned */
	const char *pool;    /* interned */
	const char *device;
	struct kc_toleration *tolerations;
	uint32_t n_tolerations;
};

/* status.devices[] (KEP-4817, written by drivers) */
struct kc_device_status {
	const char *driver;  /* interned */
	const char *pool;    /* interned */
	const char *device;
	struct kc_condition *conditions;
	uint32_t n_conditions;
};

/* status.reservedFor[] */
struct kc_consumer {
	const char *resource;  /* interned, e.g. "pods" */
	const char *name;
	const char *uid;
};

struct kc_resource_claim {
	struct kc_meta meta;
	struct kc_device_result *results;
	struct kc_device_status *device_statuses;
	struct kc_consumer *consumers;
	uint32_t n_results;
	uint32_t n_device_statuses;
	uint32_t n_consumers;
	bool allocated;
};

struct kc_slice_device {
	const char *name;
	struct kc_taint *taints;  /* v1: devices[].taints; v1beta1: devices[].basic.taints */
	uint32_t n_taints;
};

struct kc_resource_slice {
	struct kc_meta meta;
	const char *driver;     /* interned */
	const char *pool;       /* interned: spec.pool.name */
	const char *node_name;  /* interned: spec.nodeName, "" if absent */
	struct kc_slice_device *devices;
	uint32_t n_devices;
	bool all_nodes;
};

/*
 * A DeviceTaintRule (resource.k8s.io v1, v1beta2, v1alpha3: the same shape):
 * one taint on every device its selector picks.  The selector's driver, pool
 * and device are "" when not set (any); deviceClassName and CEL selectors are
 * tombstoned since Kubernetes 1.35 and not read.  A rule without a
 * spec.deviceSelector selects no device.
 */
struct kc_device_taint_rule {
	struct kc_meta meta;
	const char *driver;  /* interned */
	const char *pool;    /* interned */
	const char *device;
	struct kc_taint taint;  /* spec.taint */
	bool has_selector;
};

/* An API Status object (error bodies and watch ERROR events). */
struct kc_status_cause {
	char *reason;
	char *message;
	char *field;
};

struct kc_status {
	int code;         /* HTTP code inside the Status, 0 if absent */
	char *status;     /* "Success" or "Failure" */
	char *reason;     /* e.g. "TooManyRequests", "Expired", "Gone" */
	char *message;
	struct kc_status_cause *causes;
	size_t n_causes;
	int retry_after_s;  /* details.retryAfterSeconds, 0 if absent */
};

/* Frees the strings of an embedded status and zeroes it; accepts NULL. */
void kc_status_done(struct kc_status *s);

/*
 * Describes one kind to the generic code.  The decoder ops are private to
 * the decoders (kc_decode_int.h); the rest is public.
 */
struct kc_decoder_ops;

struct kc_type {
	const char *kind;        /* "Pod" */
	const char *resource;    /* "pods": for metrics and log lines */
	const char *list_path;   /* "/api/v1/pods": list/watch across namespaces */
	bool namespaced;
	/* The node an object is bound to, for the store's by-node index; NULL if none. */
	const char *(*node_of)(const void *obj);
	const struct kc_decoder_ops *ops;
};

extern const struct kc_type kc_type_pod;
extern const struct kc_type kc_type_node;
extern const struct kc_type kc_type_resource_claim;
extern const struct kc_type kc_type_resource_slice;
extern const struct kc_type kc_type_device_taint_rule;

static inline void kc_object_free(void *obj)
{
	free(obj);
}

#endif
