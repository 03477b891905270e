/*
 * Private to the health module (health.c: node state, the breaker's
 * evidence, DRA device taints; health_pod.c: a pod's signals): the state
 * both halves read.  Nothing outside controller/core/health*.c includes it.
 */
#ifndef DD_HEALTH_INT_H
#define DD_HEALTH_INT_H

#include "health.h"
#include "strmap.h"

/* Most device IDs a deviceIDPattern may extract from one condition message. */
#define MAX_COND_IDS 64

struct node_cond {
	char *key;    /* "Type=Status": matches the node's condition across policy reloads */
	size_t index; /* into policy->node_conditions */
	uint64_t first_seen;
	char *message;
	char **ids; /* device IDs extracted by the pattern */
	uint64_t *id_first_seen; /* per ID: when the message first named it (its own debounce) */
	size_t n_ids;
	/* Where it counts for the breaker: the node has capacity of a listed resource, or (for
	 * claims) publishes DRA devices.  A condition on a CPU-only node is no device failure. */
	bool on_capacity, on_slices;
};

struct node_drop {
	char *resource;
	uint64_t first_seen;
	int64_t capacity;
	int64_t allocatable;
};

struct hnode {
	char *name;
	uint64_t gen;
	bool device; /* has capacity of a device resource */
	struct node_cond *conds;
	size_t n_conds;
	struct node_drop *drops;
	size_t n_drops;
	bool short_alloc;	/* a device resource's allocatable is below its capacity */
	uint32_t slice_devices; /* devices its ResourceSlices publish (with devices.dra) */
	struct evidence *ev;	/* devices pods reported unhealthy (see health_evidence_add) */
	size_t n_ev;
	bool counted_device;
	bool counted_unhealthy;
};

/* A device a pod on the node reported unhealthy, as the breaker remembers it. */
struct evidence {
	char *key;	  /* "resource\037device" */
	uint32_t pods;	  /* pods reporting it now */
	bool recovered;	  /* a pod that reported it saw it recover */
	uint64_t until;	  /* with pods == 0: counts until then (its last pod went away unrecovered) */
};

/* A ResourceSlice's share of a node's DRA devices. */
struct hslice {
	char *node;
	uint32_t devices;
	uint64_t gen;
};

/* One taint with a listed effect on a DRA device, from a ResourceSlice or a DeviceTaintRule. */
struct dtaint {
	char *key;
	char *value;
	char *effect;
	char *desc;	     /* "key=value:effect" */
	int64_t time_added;  /* the API's timeAdded (wall clock, Unix seconds); 0 when absent */
	uint64_t first_seen; /* monotonic: when this controller first saw it */
};

/* The listed taints a ResourceSlice gives one device. */
struct htaint {
	char *slice; /* the ResourceSlice that reported them */
	struct dtaint *t;
	size_t n;
	uint64_t touch;
	uint64_t gen;
};

/* A DeviceTaintRule of someone else's whose taint has a listed effect (one with a selector). */
struct hrule {
	char *driver, *pool, *device; /* the selector; "" = any */
	struct dtaint taint;
	uint64_t gen;
};

struct health {
	struct strmap nodes;  /* name -> struct hnode */
	struct strmap taints; /* "driver\037pool\037device" -> struct htaint */
	struct strmap slices; /* slice name -> struct hslice */
	struct strmap rules;  /* DeviceTaintRule name -> struct hrule */
	int64_t wall_offset_ms; /* wall clock minus monotonic clock (health_set_wall_clock) */
	bool wall_known;
	uint64_t next_expiry; /* no remembered evidence ends before this */
	uint64_t gen;
	uint64_t touch;
	uint32_t device_nodes;
	uint32_t unhealthy_nodes;
};

/* "True", "False" or "Unknown". */
const char *health_status_word(enum kc_cond_status s);
/* The listed taints a slice gives the device now, or NULL. */
const struct htaint *health_taint_get(const struct health *h, const char *driver, const char *pool,
				      const char *device);
/* Whether a selector (driver, pool, device; "" = any) picks driver/pool/device, as kube-controller-manager matches. */
bool health_selects(const char *sel_driver, const char *sel_pool, const char *sel_device, const char *driver,
		    const char *pool, const char *device);

#endif
