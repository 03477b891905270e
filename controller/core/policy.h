/*
 * The DeviceDeschedulerPolicy: which resources are devices, which health
 * signals count (each with its own debounce), which pods may be evicted, and
 * how (limits, rate, circuit breaker, dry run).  Loaded from a CRD-like YAML
 * file with a strict parser: unknown fields, wrong types and out-of-range
 * values are errors naming file:line:column and the field path.
 *
 *   apiVersion: device-descheduler/v1alpha1
 *   kind: DeviceDeschedulerPolicy
 *
 * Pure: no uv.h, no curl.h.  Durations are Go-style ("500ms", "30s", "5m",
 * "1h30m", see duration.h) and stored in milliseconds.  The defaults below are the ones a
 * missing field gets; README.md and manifests/policy.yaml document them.
 */
#ifndef POLICY_H
#define POLICY_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_objects.h"
#include "kc_util.h"

/* The pod annotation that opts a pod out: device-descheduler.io/evict: "false". */
#define POLICY_OPT_OUT_ANNOTATION "device-descheduler.io/evict"

/* The largest policy accepted, in bytes (policy_parse and policy_load_file). */
#define POLICY_MAX_SIZE (1024 * 1024)

enum policy_label_op {
	POLICY_OP_IN,
	POLICY_OP_NOT_IN,
	POLICY_OP_EXISTS,
	POLICY_OP_DOES_NOT_EXIST,
};

struct policy_label_expr {
	char *key;
	enum policy_label_op op;
	char **values;
	size_t n_values;
};

/* A Kubernetes LabelSelector; empty (no labels, no expressions) matches everything. */
struct policy_selector {
	struct kc_kv *match_labels;  /* owned strings */
	size_t n_match_labels;
	struct policy_label_expr *exprs;
	size_t n_exprs;
};

/* signals.nodeConditions[] */
struct policy_node_condition {
	char *type;                  /* e.g. "GPUXIDErrors" */
	enum kc_cond_status status;  /* default True */
	char **resources;            /* device resources it applies to; empty = all device resources */
	size_t n_resources;
	uint64_t for_ms;             /* default 0 */
	char *device_id_pattern;     /* POSIX extended regex, or NULL */
	regex_t device_id_regex;     /* compiled when device_id_pattern != NULL */
};

/* signals.draDeviceConditions.conditions[] */
struct policy_condition_match {
	char *type;
	enum kc_cond_status status;  /* default True */
};

struct policy {
	char *source;                /* the file it came from, for messages */

	/* devices: */
	char **resources;            /* devices.resources: explicit names; empty = every extended resource
	                                with a domain prefix (never cpu, memory, hugepages-*, ephemeral-storage) */
	size_t n_resources;
	char **exclude_resources;    /* devices.excludeResources */
	size_t n_exclude_resources;
	bool dra;                    /* devices.dra: DRA claims are devices; default true */
	/* The file itself sets devices.dra, draDeviceTaints.enabled or draDeviceConditions.enabled
	 * to true (not only the defaults): on a cluster without DRA that earns a warning. */
	bool dra_explicit;

	/* signals.podResourceHealth: KEP-4680 allocatedResourcesStatus */
	bool pod_health_enabled;     /* default true */
	uint64_t pod_health_for_ms;  /* default 0 */
	bool pod_health_unknown_enabled;  /* signals.podResourceHealth.unknown.enabled; default false */
	uint64_t pod_health_unknown_for_ms; /* default 5m */

	/* signals.nodeConditions[] (default none) */
	struct policy_node_condition *node_conditions;
	size_t n_node_conditions;

	/* signals.allocatableDrop */
	bool alloc_drop_enabled;     /* default false */
	uint64_t alloc_drop_for_ms;  /* default 5m */
	char **alloc_drop_resources; /* empty = all device resources */
	size_t n_alloc_drop_resources;

	/* signals.exitCodes: a device-holding container whose last termination
	 * exit code is listed, with restartCount >= minRestarts */
	bool exit_codes_enabled;     /* default false */
	int32_t *exit_codes;         /* 0..255; default none (required when enabled) */
	size_t n_exit_codes;
	int32_t exit_min_restarts;   /* default 3 */
	uint64_t exit_for_ms;        /* default 0 */

	/* signals.draDeviceTaints: ResourceSlice device taints on a pod's allocated devices */
	bool dra_taints_enabled;     /* default true */
	char **dra_taint_effects;    /* default ["NoExecute"] */
	size_t n_dra_taint_effects;
	uint64_t dra_taints_for_ms;  /* default 0 */

	/* signals.draDeviceConditions: ResourceClaim status.devices[].conditions */
	bool dra_conditions_enabled; /* default true */
	struct policy_condition_match *dra_conditions; /* default [{type: Ready, status: "False"}] */
	size_t n_dra_conditions;
	uint64_t dra_conditions_for_ms; /* default 0 */

	/* podFilters: */
	char **ns_include;           /* empty = all namespaces */
	size_t n_ns_include;
	char **ns_exclude;
	size_t n_ns_exclude;
	struct policy_selector selector;
	bool has_priority_threshold;
	int32_t priority_threshold;  /* pods with priority >= this are not evicted (descheduler semantics) */
	bool evict_bare_pods;        /* default false */

	/* eviction: */
	int64_t grace_period_s;      /* -1 (default) = the pod's own */
	uint64_t retry_initial_ms;   /* eviction.retry.initialBackoff, default 5s */
	uint64_t retry_max_ms;       /* eviction.retry.maxBackoff, default 2m */
	uint64_t delete_after_ms;    /* eviction.deleteAfter: 0 (default) = never fall back to delete */
	uint64_t window_ms;          /* eviction.limits.window, default 1m */
	uint32_t max_per_node;       /* eviction.limits.maxPerNode per window; 0 = unlimited (default) */
	uint32_t max_per_namespace;  /* eviction.limits.maxPerNamespace per window; 0 = unlimited (default) */
	uint32_t max_total;          /* eviction.limits.maxTotal per window; default 20; 0 = unlimited */
	uint32_t max_in_flight;      /* eviction.limits.maxInFlight; default 5; 0 = unlimited */

	/* eviction.circuitBreaker: stop all evictions when too many device nodes look unhealthy */
	bool breaker_enabled;        /* default true */
	uint32_t breaker_max_nodes;  /* maxUnhealthyNodes: trips above this many; 0 = off (default) */
	uint32_t breaker_max_percent; /* maxUnhealthyNodePercent: trips above this share; default 50; 0 = off */
	uint32_t breaker_min_nodes;  /* the percentage applies from this many device nodes on; default 4 */
	uint64_t breaker_close_after_ms; /* closeAfter: close once below the threshold this long; default 30s */
	uint64_t breaker_memory_ms;  /* memory: how long a device whose pods went away unrecovered counts; default 10m */

	/* remediation: fence the failed hardware before evicting, and the loop guard */
	bool remediation_enabled;    /* default true */
	bool fence_taint;            /* mode taint (default) or both: taint the node */
	bool fence_cordon;           /* mode cordon or both: set spec.unschedulable */
	char *fence_key;             /* remediation.key, default POLICY_FENCE_KEY */
	char *fence_effect;          /* remediation.effect: "NoSchedule" (default) or "NoExecute" */
	bool device_taint_rules;     /* remediation.deviceTaintRules: DRA devices by DeviceTaintRule; default true */
	uint64_t recover_after_ms;   /* remediation.recoverAfter, default 10m */
	uint32_t max_quarantined_nodes;   /* remediation.maxQuarantinedNodes; 0 = no absolute cap (default) */
	uint32_t max_quarantined_percent; /* remediation.maxQuarantinedNodePercent of device nodes; default 25; 0 = off */
	uint64_t loop_window_ms;     /* remediation.loopWindow, default 10m; 0 = no loop guard */

	bool dry_run;                /* dryRun, default false (the --dry-run flag also sets it) */
};

/* The default node taint key of a quarantine. */
#define POLICY_FENCE_KEY "device-descheduler.io/unhealthy-device"

/* A policy with every default (source NULL); never fails.  The caller frees it with policy_free(). */
struct policy *policy_new_default(void);

/*
 * Parses a policy document (at most POLICY_MAX_SIZE bytes; it need not be
 * NUL-terminated).  `name` is used in messages (the file name) and copied into
 * the policy's `source`.  On success *ret is a new policy the caller frees with
 * policy_free(); on error *ret is untouched, the return is -EINVAL and err
 * holds the first problem, e.g.
 *   policy.yaml:14:7: eviction.limits.maxPerNode: expected a non-negative integer, got "two"
 * A field set to an explicit null counts as absent and keeps its default.
 */
int policy_parse(const char *name, const char *text, size_t len, struct policy **ret, struct kc_error *err);
/*
 * Reads (at most POLICY_MAX_SIZE bytes) and parses a file; errors name the
 * file.  Returns -EINVAL for an invalid or oversized policy, or the negative
 * errno of a failed read (-ENOENT, -EISDIR, -EACCES, ...).
 */
int policy_load_file(const char *path, struct policy **ret, struct kc_error *err);
/* Accepts NULL; returns NULL. */
struct policy *policy_free(struct policy *p);

/*
 * Whether a resource name (e.g. "nvidia.com/gpu", "claim:foo/gpu") counts as a
 * device: never when listed in excludeResources; "claim:..." names when dra is
 * true; otherwise the devices.resources list when it is not empty, else any
 * "domain/name" outside the kubernetes.io and k8s.io domains (and their
 * subdomains).  Accepts NULL (false).
 */
bool policy_is_device_resource(const struct policy *p, const char *resource);

/*
 * Whether some resource name counts as a device under next but not under
 * prev (devices.dra turned on, devices.resources emptied or given a new name,
 * an exclusion dropped): the pod cache, which keeps only device pods, must
 * then list again to find the pods it turned away.  Accepts NULL prev (true).
 */
bool policy_devices_widened(const struct policy *prev, const struct policy *next);

/* Whether a node condition of this type is read by a rule of signals.nodeConditions: the node
 * cache keeps only those (kc_decode_opts.keep_condition). */
bool policy_reads_node_condition(const struct policy *p, const char *type);

/* Whether next reads a node condition type that prev does not: the node cache must list again
 * to get back the conditions it dropped.  Accepts NULL prev (true). */
bool policy_node_conditions_widened(const struct policy *prev, const struct policy *next);

/*
 * The pod label keys the policy reads (podFilters.labelSelector), each once,
 * as a new NULL-terminated array (free() it) of pointers into p, valid while p
 * is: what the pod cache keeps of a pod's labels (kc_decode_opts.keep_labels).
 * An empty array (labels kept: none) when the selector is empty.
 */
const char **policy_label_keys_new(const struct policy *p);
/* Whether next reads a pod label key that prev does not (the cache must relist to learn it). */
bool policy_label_keys_widened(const struct policy *prev, const struct policy *next);

#endif
