/*
 * The request bodies the controller sends (policy/v1 Eviction, core/v1
 * Event) and how it reads the answers to evictions.  Pure: builds strings and
 * classifies responses; the shell sends them.
 */
#ifndef REQUESTS_H
#define REQUESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "kc_objects.h"

/*
 * A policy/v1 Eviction for ns/name, with a UID precondition (so that a pod
 * recreated under the same name is never evicted by mistake) and
 * gracePeriodSeconds when grace_period_s >= 0.  The caller frees the result.
 */
char *requests_eviction_body(const char *ns, const char *name, const char *uid, int64_t grace_period_s);
/* The eviction path: /api/v1/namespaces/NS/pods/NAME/eviction; the caller frees it. */
char *requests_eviction_path(const char *ns, const char *name);
/* DeleteOptions with a UID precondition and optional grace period, for the deleteAfter fallback. */
char *requests_delete_body(const char *uid, int64_t grace_period_s);

struct requests_event {
	const char *ns;            /* the involved object's namespace (the Event lives there) */
	const char *kind;          /* "Pod" */
	const char *api_version;   /* "v1" */
	const char *name;
	const char *uid;
	const char *type;          /* "Warning" or "Normal" */
	const char *reason;        /* "UnhealthyDevice" */
	const char *action;        /* "Evict", "Delete", "None" */
	const char *message;
	const char *instance;      /* reportingInstance: the controller's identity */
	int64_t now_ms;            /* wall clock */
};

/* A core/v1 Event (with the events.k8s.io fields action/reportingController filled). */
char *requests_event_body(const struct requests_event *e);
char *requests_event_path(const char *ns);
/* A strategic merge patch that counts one more occurrence of an Event: count and lastTimestamp. */
char *requests_event_patch_body(int64_t count, int64_t now_ms);

enum requests_outcome {
	REQUESTS_EVICTED,   /* 200/201 */
	REQUESTS_BLOCKED,   /* 429 with a DisruptionBudget cause: a PodDisruptionBudget */
	REQUESTS_GONE,      /* 404: the pod we meant no longer exists */
	REQUESTS_CONFLICT,  /* 409: a failed UID precondition (the pod was replaced) or a conflicting
	                       PodDisruptionBudget update; only the cache can tell which (core) */
	REQUESTS_FAILED,    /* anything else (a 429 from throttling too): retry with backoff */
};

/* Classifies the answer to an eviction or delete request. */
enum requests_outcome requests_classify(long http_status, int transport_error, const struct kc_status *status);

/* ---- fencing: node taints and cordons, DeviceTaintRules ---- */

/*
 * A name made into a valid label value (what a taint value must be): every
 * character outside [A-Za-z0-9-_.] becomes '_', leading and trailing
 * non-alphanumerics are dropped, at most 63 characters; "nvidia.com/gpu" ->
 * "nvidia.com_gpu".  The caller frees the result.
 */
char *requests_label_value(const char *s);

/* What a fence writes, and what its record (the quarantine annotation) says. */
struct requests_fence {
	const char *key, *effect; /* the taint */
	bool taint, cordon;	  /* remediation.mode */
	int64_t since_ms;	  /* wall clock: the taint's timeAdded and the record's since */
	const char *signal, *resource, *message;
};

/*
 * The JSON merge patch that adds our fence to a node (add) or removes it,
 * from the node as just read (GET), carrying its resourceVersion so that the
 * server refuses it with 409 if the node changed meanwhile.  The taint list
 * has no merge key, so the patch holds the whole list: every other taint as
 * it was, ours (exactly key and effect; never a taint with a similar key)
 * added or dropped.  Adding cordons only a node not cordoned already, and
 * records that in the annotation; removing uncordons only what the record
 * says we cordoned, and removes the taint named by the record.  Returns 0 and
 * *ret_patch (the caller frees it), -EALREADY when the node is already as
 * wanted, or -EINVAL when node_json is not a Node with a resourceVersion.
 */
int requests_node_fence_patch(const char *node_json, size_t len, const struct requests_fence *f, bool add,
			      char **ret_patch);

/* The DeviceTaintRule name for one device: "device-descheduler-" and a hash; the caller frees it. */
char *requests_taint_rule_name(const char *driver, const char *pool, const char *device);
/* /apis/resource.k8s.io/VERSION/devicetaintrules[/NAME] (name may be NULL); the caller frees it. */
char *requests_taint_rule_path(const char *version, const char *name);
/*
 * A DeviceTaintRule (resource.k8s.io/VERSION: v1, v1beta2 or v1alpha3 have
 * the same shape here) selecting exactly driver/pool/device, with f's taint,
 * our label and the quarantine annotation.  The caller frees the result.
 */
char *requests_taint_rule_body(const char *version, const struct requests_fence *f, const char *driver,
			       const char *pool, const char *device);

/* One DeviceTaintRule of ours, from a list. */
struct requests_rule {
	char *name, *driver, *pool, *device;
};
/*
 * The rules of a DeviceTaintRuleList that carry our label and select one
 * device.  Returns 0 with *ret (free with requests_rules_free) and *ret_n,
 * or -EINVAL for a body that is not a list.
 */
int requests_taint_rules_parse(const char *json, size_t len, struct requests_rule **ret, size_t *ret_n);
void requests_rules_free(struct requests_rule *r, size_t n);

#endif
