/*
 * Test builders for the compact objects of kc_objects.h, and a small harness
 * (stores + core + an injected clock) for the core's unit and property tests.
 * Linked into every test binary; every symbol starts with tb_.
 *
 * Objects built here are not one heap block: the struct itself is malloc'd
 * (so the store's free() releases it), while its strings and arrays come from
 * a test arena released by tb_reset().  Builders that add to an array copy it
 * into a new arena block, so a clone (tb_pod_clone) can be changed without
 * touching the original the store still holds.
 */
#ifndef CORE_BUILDERS_H
#define CORE_BUILDERS_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "kc_objects.h"
#include "kc_store.h"
#include "policy.h"

/* Frees the arena (every string and array the builders made). */
void tb_reset(void);
const char *tb_str(const char *s);
const char *tb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct kc_pod *tb_pod(const char *ns, const char *name, const char *uid, const char *node);
/* Pod with a ReplicaSet controller owner, one container "main" requesting count of resource. */
struct kc_pod *tb_gpu_pod(const char *ns, const char *name, const char *uid, const char *node,
			  const char *resource, int64_t count);
struct kc_pod *tb_pod_clone(const struct kc_pod *p);
void tb_pod_owner(struct kc_pod *p, const char *kind, const char *name, bool controller);
void tb_pod_label(struct kc_pod *p, const char *key, const char *value);
void tb_pod_annotation(struct kc_pod *p, const char *key, const char *value);
struct kc_container *tb_pod_container(struct kc_pod *p, const char *name, const char *resource,
				      int64_t count);
struct kc_container_status *tb_pod_status(struct kc_pod *p, const char *container);
/* Sets (or adds) a device's health in a container status' allocatedResourcesStatus. */
void tb_status_health(struct kc_container_status *cs, const char *resource, const char *id, enum kc_health h,
		      const char *message);
void tb_pod_claim(struct kc_pod *p, const char *name, const char *claim_name);

struct kc_node *tb_node(const char *name);
struct kc_node *tb_node_clone(const struct kc_node *n);
void tb_node_resource(struct kc_node *n, const char *resource, int64_t capacity, int64_t allocatable);
void tb_node_condition(struct kc_node *n, const char *type, enum kc_cond_status status, const char *message);
void tb_node_taint(struct kc_node *n, const char *key, const char *value, const char *effect);
void tb_node_annotation(struct kc_node *n, const char *key, const char *value);

struct kc_resource_claim *tb_claim(const char *ns, const char *name, const char *uid);
void tb_claim_result(struct kc_resource_claim *c, const char *request, const char *driver, const char *pool,
		     const char *device);
/* Adds a toleration to the claim's last result; seconds < 0: no tolerationSeconds (for ever). */
void tb_claim_toleration(struct kc_resource_claim *c, const char *key, enum kc_toleration_op op, const char *value,
			 const char *effect, int64_t seconds);
void tb_claim_consumer(struct kc_resource_claim *c, const char *pod_name, const char *pod_uid);
void tb_claim_device_condition(struct kc_resource_claim *c, const char *driver, const char *pool,
			       const char *device, const char *type, enum kc_cond_status status,
			       const char *message);

struct kc_resource_slice *tb_slice(const char *name, const char *driver, const char *pool, const char *node);
void tb_slice_device(struct kc_resource_slice *s, const char *device, const char *taint_key,
		     const char *effect);

/* Adds a taint to the slice's last device. */
void tb_slice_taint(struct kc_resource_slice *s, const char *key, const char *value, const char *effect,
		    int64_t time_added);
/* A DeviceTaintRule; driver, pool, device "" = any, NULL driver = no selector at all. */
struct kc_device_taint_rule *tb_rule(const char *name, const char *driver, const char *pool, const char *device,
				     const char *key, const char *effect, int64_t time_added);

/* A policy with the defaults and no limits, breaker or fencing (tests turn them on). */
struct policy *tb_policy(void);

/*
 * A policy parsed from YAML (the apiVersion/kind header is added); aborts on
 * a parse error.  Unless the text mentions "limits:", "circuitBreaker:" or
 * "remediation:", limits, the breaker and fencing are off as in tb_policy().
 */
struct policy *tb_policy_yaml(const char *yaml);

/* Stores, a core and a clock. */
struct tb_env {
	struct policy *p; /* owned */
	struct kc_store *pods, *nodes, *claims, *slices, *rules;
	struct core *core;
	uint64_t now;
};

/* Takes ownership of p; the core starts synced and active unless told otherwise. */
void tb_env_init(struct tb_env *e, struct policy *p, bool synced);
void tb_env_done(struct tb_env *e);
/* Puts an object into its store (taking ownership) and tells the core, as the reflector would. */
void tb_put_pod(struct tb_env *e, struct kc_pod *pod);
void tb_del_pod(struct tb_env *e, const char *ns, const char *name);
void tb_put_node(struct tb_env *e, struct kc_node *n);
void tb_del_node(struct tb_env *e, const char *name);
void tb_put_claim(struct tb_env *e, struct kc_resource_claim *c);
void tb_put_slice(struct tb_env *e, struct kc_resource_slice *s);
void tb_del_slice(struct tb_env *e, const char *name);
void tb_put_rule(struct tb_env *e, struct kc_device_taint_rule *r);
void tb_del_rule(struct tb_env *e, const char *name);
/* Replaces the policy (hot reload); takes ownership of p. */
void tb_set_policy(struct tb_env *e, struct policy *p);

#endif
