/*
 * The core: wires health, planner and limits to the cache events and to the
 * shell's action loop (see core.h).  Every event re-evaluates only the pods it
 * can affect; per-pod state exists only for pods bound to a device that looks
 * unhealthy or with an action pending or done, so 150,000 healthy pods cost
 * nothing but their evaluation when they change.
 */
#include "core.h"
#include "core_int.h"

#include <errno.h>
#include <string.h>

#include "evict_limits.h"
#include "kc_log.h"
#include "kc_util.h"
#include "requests.h"

void core_notice_clear(struct notice *n)
{
	free(n->ns);
	free(n->name);
	free(n->uid);
	free(n->type);
	free(n->reason);
	free(n->message);
	memset(n, 0, sizeof(*n));
}

void core_push_notice(struct core *c, const struct planner_pod *r, const char *type, const char *reason,
			char *message)
{
	struct notice *n;

	/* A standby replica or unsynced caches would announce what the leader also announces. */
	if (!c->active || !c->synced) {
		free(message);
		return;
	}
	if (c->q_len == MAX_NOTICES) {
		core_notice_clear(&c->q[c->q_head]);
		c->q_head = (c->q_head + 1) % MAX_NOTICES;
		c->q_len--;
		if (c->q_dropped++ % 100 == 0)
			kc_log_warn("core: notice queue full, dropping the oldest notices");
	}
	n = &c->q[(c->q_head + c->q_len++) % MAX_NOTICES];
	n->ns = kc_xstrdup(r ? r->ns : "");
	n->name = kc_xstrdup(r ? r->name : "");
	n->uid = kc_xstrdup(r ? r->uid : "");
	n->type = kc_xstrdup(type);
	n->reason = kc_xstrdup(reason);
	n->message = message;
	n->cluster_wide = r == NULL;
}

/* ---- gauges ---- */

static struct core_resource_count *resource_slot(struct core *c, const char *resource)
{
	struct core_stats *st = &c->st;
	const char *other = "other";

	for (size_t i = 0; i < st->n_unhealthy_devices; i++)
		if (strcmp(st->unhealthy_devices[i].resource, resource) == 0)
			return &st->unhealthy_devices[i];
	if (st->n_unhealthy_devices < CORE_MAX_RESOURCES - 1) {
		struct core_resource_count *e = &st->unhealthy_devices[st->n_unhealthy_devices++];

		e->resource = kc_xstrdup(resource);
		e->count = 0;
		return e;
	}
	if (st->n_unhealthy_devices == CORE_MAX_RESOURCES - 1) {
		struct core_resource_count *e = &st->unhealthy_devices[st->n_unhealthy_devices++];

		e->resource = kc_xstrdup(other);
		e->count = 0;
		return e;
	}
	return &st->unhealthy_devices[CORE_MAX_RESOURCES - 1];
}

struct fenced_ctx {
	const struct health *h;
	uint32_t extra;
};

static void count_fenced_cb(const char *node, void *userdata)
{
	struct fenced_ctx *fc = userdata;

	if (*node && !health_node_unhealthy(fc->h, node))
		fc->extra++;
}

void core_update_breaker(struct core *c, uint64_t now_ms)
{
	struct fenced_ctx fc = {c->h, 0};
	uint32_t dn, un;

	health_breaker_counts(c->h, now_ms, &dn, &un);
	/* A quarantined node still counts until its fence is gone, even once its signals have cleared. */
	quarantine_foreach_node(c->qr, count_fenced_cb, &fc);
	un += fc.extra;
	c->st.device_nodes = dn;
	c->st.unhealthy_nodes = un;
	if (!c->synced)
		return;
	switch (limits_breaker_update(c->lim, dn, un, now_ms)) {
	case LIMITS_BREAKER_OPENED:
		c->st.breaker_trips++;
		kc_log_warn("core: circuit breaker open: %s; no pods are evicted until it closes",
			    limits_breaker_reason(c->lim));
		core_push_notice(c, NULL, "Warning", "CircuitBreakerOpen",
			    kc_xasprintf("Circuit breaker open: %s; no pods are evicted until it closes",
					 limits_breaker_reason(c->lim)));
		break;
	case LIMITS_BREAKER_CLOSED:
		kc_log_info(0, "core: circuit breaker closed: %s", limits_breaker_reason(c->lim));
		core_push_notice(c, NULL, "Normal", "CircuitBreakerClosed",
			    kc_xasprintf("Circuit breaker closed: %s; evictions resume",
					 limits_breaker_reason(c->lim)));
		break;
	default:
		break;
	}
	c->st.breaker_open = limits_breaker_open(c->lim);
}

/*
 * Whether a hit is a device report the breaker keeps (health_evidence_add):
 * node conditions and allocatable drops count from the node itself, and stop
 * counting when the node recovers.
 */
static bool is_evidence(const struct health_hit *h)
{
	return h->signal != HEALTH_NODE_CONDITION && h->signal != HEALTH_ALLOC_DROP;
}

/* Whether hits[0..n) has an evidence hit on the same resource and device as x. */
static bool has_evidence(const struct health_hit *hits, size_t n, const struct health_hit *x)
{
	for (size_t i = 0; i < n; i++)
		if (is_evidence(&hits[i]) && strcmp(hits[i].resource, x->resource) == 0 &&
		    strcmp(hits[i].device, x->device) == 0)
			return true;
	return false;
}

/*
 * Replaces a record's hits (taking ownership), keeping the gauges and the
 * breaker's evidence in step.  evidence: the new hits count for the breaker
 * (the pod is not Succeeded or Failed).  recovered: a device the record no
 * longer reports has recovered (the pod is still there and running); else
 * the pod went away or finished, and the breaker remembers the device for
 * circuitBreaker.memory.
 */
static void set_hits(struct core *c, struct planner_pod *r, struct health_hit *hits, size_t n,
		     const char *node, bool evidence, bool recovered, uint64_t now_ms)
{
	bool moved = node && strcmp(node, r->node) != 0;

	for (size_t i = 0; i < r->n_hits; i++) {
		resource_slot(c, r->hits[i].resource)->count--;
		quarantine_hit(c->qr, &r->hits[i], r->node, -1, now_ms);
	}
	for (size_t i = 0; i < n; i++)
		resource_slot(c, hits[i].resource)->count++;
	if (r->n_hits)
		c->st.unhealthy_pods--;
	if (n)
		c->st.unhealthy_pods++;
	for (size_t i = 0; r->evidence && i < r->n_hits; i++) {
		const struct health_hit *o = &r->hits[i];

		if (!is_evidence(o) || has_evidence(r->hits, i, o))
			continue;
		if (moved || !evidence || !has_evidence(hits, n, o))
			health_evidence_drop(c->h, r->node, o->resource, o->device, recovered && !moved, now_ms,
					     c->p->breaker_memory_ms);
	}
	for (size_t i = 0; evidence && i < n; i++) {
		const struct health_hit *x = &hits[i];

		if (!is_evidence(x) || has_evidence(hits, i, x))
			continue;
		if (moved || !r->evidence || !has_evidence(r->hits, r->n_hits, x))
			health_evidence_add(c->h, node ? node : r->node, x->resource, x->device);
	}
	if (moved) {
		free(r->node);
		r->node = kc_xstrdup(node);
	}
	r->evidence = evidence;
	for (size_t i = 0; i < n; i++)
		quarantine_hit(c->qr, &hits[i], r->node, +1, now_ms);
	health_hits_free(r->hits, r->n_hits);
	r->hits = hits;
	r->n_hits = n;
}

/* Forgets a record; recovered as in set_hits(). */
void core_drop_record(struct core *c, struct planner_pod *r, bool recovered, uint64_t now_ms)
{
	set_hits(c, r, NULL, 0, NULL, false, recovered, now_ms);
	planner_remove(c->pl, r);
}

/* ---- evaluation ---- */

void core_eval_pod(struct core *c, const struct kc_pod *pod, uint64_t now_ms)
{
	char ub[KC_UID_BUF];
	struct planner_pod *r = planner_get(c->pl, kc_uid_str(&pod->meta.uid, ub));
	struct health_hit *hits = NULL;
	size_t n =
	    health_pod_eval(c->h, c->p, pod, c->dra_synced ? c->claims : NULL, r ? r->hits : NULL,
			    r ? r->n_hits : 0, now_ms, &hits);
	bool terminal = pod->phase == KC_POD_SUCCEEDED || pod->phase == KC_POD_FAILED;
	enum planner_skip skip;
	uint64_t due;

	if (!r) {
		if (!n)
			return;
		r = planner_add(c->pl, pod);
		r->seen_ms = now_ms;
	}
	/* Succeeded and Failed pods are no evidence: a stale status says nothing about the device now. */
	set_hits(c, r, hits, n, pod->node_name, !terminal, !terminal, now_ms);
	if (r->state == PLANNER_IN_FLIGHT || r->state == PLANNER_DONE)
		return;
	if (!n) {
		if (r->bare_noticed || r->dry_reported || r->loop_noticed) {
			/* Keep the UID so the notice or the dry-run report is not repeated if the device
			 * fails again. */
			r->state = PLANNER_SKIPPED;
			planner_schedule(c->pl, r, UINT64_MAX);
			return;
		}
		kc_log_info(4, "core: pod %s/%s no longer bound to an unhealthy device", r->ns, r->name);
		core_drop_record(c, r, !terminal, now_ms);
		return;
	}
	skip = planner_filter(c->p, pod);
	if (skip != PLANNER_SKIP_NONE) {
		if (r->state != PLANNER_SKIPPED || r->skip != skip) {
			c->st.skipped[skip]++;
			kc_log_info(4, "core: not evicting pod %s/%s (%s device %s %s, signal %s): %s", r->ns,
				    r->name, r->hits[0].resource,
				    *r->hits[0].device ? r->hits[0].device : "-", r->hits[0].state,
				    health_signal_name(r->hits[0].signal), planner_skip_message(skip));
		}
		if (skip == PLANNER_SKIP_BARE && !r->bare_noticed && c->active && c->synced) {
			r->bare_noticed = true;
			core_push_notice(c, r, "Normal", "NotEvicted",
				    kc_xasprintf("Not evicting pod %s/%s bound to unhealthy %s device %s: %s",
						 r->ns, r->name, r->hits[0].resource,
						 *r->hits[0].device ? r->hits[0].device : "(node-level)",
						 planner_skip_message(skip)));
		}
		r->state = PLANNER_SKIPPED;
		r->skip = skip;
		planner_schedule(c->pl, r, UINT64_MAX);
		return;
	}
	due = planner_hits_due(r);
	if (r->retry_at_ms > due)
		due = r->retry_at_ms;
	if (r->state != PLANNER_WAITING || r->heap_pos == SIZE_MAX || r->due_ms != due)
		kc_log_info(4, "core: pod %s/%s bound to %s device %s (%s, signal %s): evictable in %lld ms",
			    r->ns, r->name, r->hits[0].resource, *r->hits[0].device ? r->hits[0].device : "-",
			    r->hits[0].state, health_signal_name(r->hits[0].signal),
			    due > now_ms ? (long long)(due - now_ms) : 0LL);
	r->state = PLANNER_WAITING;
	r->skip = PLANNER_SKIP_NONE;
	planner_schedule(c->pl, r, due);
}

static int eval_pod_cb(const void *obj, void *userdata)
{
	struct core *c = userdata;

	core_eval_pod(c, obj, c->now);
	return 0;
}

void core_eval_node_pods(struct core *c, const char *node, uint64_t now_ms)
{
	c->now = now_ms;
	kc_store_foreach_on_node(c->pods, node, eval_pod_cb, c);
}

/* Brings health and quarantine up to date for a node; true if its pods need a new look. */
static bool node_update(struct core *c, const struct kc_node *node, uint64_t now_ms)
{
	bool changed = health_node_update(c->h, c->p, node, now_ms);

	if (quarantine_observe_node(c->qr, node, false, now_ms))
		changed = true;
	quarantine_node_signal(c->qr, node->meta.name, health_node_has_signal(c->h, node->meta.name), now_ms);
	return changed;
}

static int update_node_cb(const void *obj, void *userdata)
{
	struct core *c = userdata;

	node_update(c, obj, c->now);
	return 0;
}

static int update_slice_cb(const void *obj, void *userdata)
{
	struct core *c = userdata;

	health_slice_update(c->h, c->p, obj, NULL, c->now);
	return 0;
}

static int update_rule_cb(const void *obj, void *userdata)
{
	struct core *c = userdata;

	health_rule_update(c->h, c->p, obj, NULL, c->now);
	return 0;
}

/* Re-evaluates everything: after the policy changed or the caches synced. */
void core_eval_all(struct core *c, uint64_t now_ms)
{
	c->now = now_ms;
	health_begin_generation(c->h);
	if (c->nodes)
		kc_store_foreach(c->nodes, update_node_cb, c);
	if (c->slices)
		kc_store_foreach(c->slices, update_slice_cb, c);
	if (c->rules)
		kc_store_foreach(c->rules, update_rule_cb, c);
	health_sweep(c->h);
	if (c->pods)
		kc_store_foreach(c->pods, eval_pod_cb, c);
	core_update_breaker(c, now_ms);
}

struct core *core_new(const struct policy *p, const struct kc_store *pods, const struct kc_store *nodes,
		      const struct kc_store *claims, const struct kc_store *slices)
{
	struct core *c = kc_xcalloc(1, sizeof(*c));

	c->p = p;
	c->pods = pods;
	c->nodes = nodes;
	c->claims = claims;
	c->slices = slices;
	c->h = health_new();
	c->pl = planner_new();
	c->lim = limits_new(p, 0);
	c->qr = quarantine_new(p);
	c->active = true;
	c->st.active = true;
	c->dra_synced = true;
	core_eval_all(c, 0);
	return c;
}

struct core *core_free(struct core *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->q_len; i++)
		core_notice_clear(&c->q[(c->q_head + i) % MAX_NOTICES]);
	core_notice_clear(&c->cur);
	free(c->action_msg);
	for (size_t i = 0; i < c->st.n_unhealthy_devices; i++)
		free((char *)c->st.unhealthy_devices[i].resource);
	planner_free(c->pl);
	health_free(c->h);
	limits_free(c->lim);
	quarantine_free(c->qr);
	free(c);
	return NULL;
}

static int undo_dry_run_cb(struct planner_pod *r, void *userdata)
{
	(void)userdata;
	if (r->state == PLANNER_DONE && r->dry_run) {
		r->state = PLANNER_WAITING;
		r->dry_run = false;
	}
	return 0;
}

void core_set_policy(struct core *c, const struct policy *p, uint64_t now_ms)
{
	/* Pods only reported in dry run are evicted for real once dry run is turned off. */
	if (c->p->dry_run && !p->dry_run)
		planner_foreach(c->pl, undo_dry_run_cb, NULL);
	c->p = p;
	limits_set_policy(c->lim, p, now_ms);
	quarantine_set_policy(c->qr, p, now_ms);
	core_eval_all(c, now_ms);
	kc_log_info(2, "core: policy applied, %zu pods tracked", planner_count(c->pl));
}

/* ---- events ---- */

void core_set_dra_stores(struct core *c, const struct kc_store *claims, const struct kc_store *slices,
			 uint64_t now_ms)
{
	c->claims = claims;
	c->slices = slices;
	/* New caches have not listed yet: claims wait for core_set_dra_synced(). */
	c->dra_synced = claims == NULL;
	core_eval_all(c, now_ms);
}

void core_set_rule_store(struct core *c, const struct kc_store *rules, uint64_t now_ms)
{
	c->rules = rules;
	core_eval_all(c, now_ms);
}

void core_set_wall_clock(struct core *c, int64_t wall_ms, uint64_t now_ms)
{
	health_set_wall_clock(c->h, wall_ms, now_ms);
}

static void pod_gone(struct core *c, const struct kc_uid *uid, uint64_t now_ms)
{
	char ub[KC_UID_BUF];
	struct planner_pod *r = planner_get(c->pl, kc_uid_str(uid, ub));

	if (!r)
		return;
	if (r->state == PLANNER_IN_FLIGHT) {
		set_hits(c, r, NULL, 0, NULL, false, false, now_ms);
		r->gone = true;
		return;
	}
	core_drop_record(c, r, false, now_ms);
}

void core_pod_changed(struct core *c, enum kc_delta delta, const struct kc_pod *pod,
		      const struct kc_pod *old, uint64_t now_ms)
{
	if (delta == KC_DELTA_DELETED) {
		pod_gone(c, &pod->meta.uid, now_ms);
	} else {
		if (old && !kc_uid_eq(&old->meta.uid, &pod->meta.uid))
			pod_gone(c, &old->meta.uid, now_ms); /* recreated under the same name: a new pod */
		core_eval_pod(c, pod, now_ms);
	}
	core_update_breaker(c, now_ms);
}

void core_node_changed(struct core *c, enum kc_delta delta, const struct kc_node *node,
		       const struct kc_node *old, uint64_t now_ms)
{
	bool changed;

	(void)old;
	if (delta == KC_DELTA_DELETED) {
		changed = health_node_remove(c->h, node->meta.name);
		quarantine_node_signal(c->qr, node->meta.name, false, now_ms);
		quarantine_observe_node(c->qr, node, true, now_ms);
	} else {
		changed = node_update(c, node, now_ms);
	}
	if (changed)
		core_eval_node_pods(c, node->meta.name, now_ms);
	core_update_breaker(c, now_ms);
}

static void eval_consumers(struct core *c, const struct kc_resource_claim *claim, uint64_t now_ms)
{
	for (uint32_t i = 0; i < claim->n_consumers; i++) {
		const struct kc_consumer *u = &claim->consumers[i];
		const struct kc_pod *pod;

		if (strcmp(u->resource, "pods") != 0)
			continue;
		pod = kc_store_get(c->pods, claim->meta.ns, u->name);
		if (pod && (!*u->uid || kc_uid_eq_str(&pod->meta.uid, u->uid)))
			core_eval_pod(c, pod, now_ms);
	}
}

void core_claim_changed(struct core *c, enum kc_delta delta, const struct kc_resource_claim *claim,
			const struct kc_resource_claim *old, uint64_t now_ms)
{
	(void)delta;
	eval_consumers(c, claim, now_ms);
	if (old)
		eval_consumers(c, old, now_ms);
	core_update_breaker(c, now_ms);
}

static bool slice_has(const struct kc_resource_slice *s, const struct kc_device_result *r)
{
	if (!s || strcmp(s->driver, r->driver) != 0 || strcmp(s->pool, r->pool) != 0)
		return false;
	for (uint32_t i = 0; i < s->n_devices; i++)
		if (strcmp(s->devices[i].name, r->device) == 0)
			return true;
	return false;
}

/* Which claims a slice or rule event concerns: those allocated a device it names (a, or before, b). */
struct claims_ctx {
	struct core *c;
	bool (*names)(const void *obj, const struct kc_device_result *r);
	const void *a, *b;
};

static int claims_cb(const void *obj, void *userdata)
{
	struct claims_ctx *s = userdata;
	const struct kc_resource_claim *claim = obj;

	for (uint32_t i = 0; i < claim->n_results; i++) {
		if ((s->a && s->names(s->a, &claim->results[i])) || (s->b && s->names(s->b, &claim->results[i]))) {
			eval_consumers(s->c, claim, s->c->now);
			break;
		}
	}
	return 0;
}

/* Re-evaluates the consumers of the claims allocated a device that a or b names. */
static void eval_claims_naming(struct core *c, bool (*names)(const void *obj, const struct kc_device_result *r),
			       const void *a, const void *b, uint64_t now_ms)
{
	struct claims_ctx s = {c, names, a, b};

	if (!c->claims)
		return;
	c->now = now_ms;
	kc_store_foreach(c->claims, claims_cb, &s);
}

static bool slice_names(const void *obj, const struct kc_device_result *r)
{
	return slice_has(obj, r);
}

static bool slice_update(struct core *c, const void *cur, const void *prev, uint64_t now_ms)
{
	return health_slice_update(c->h, c->p, cur, prev, now_ms);
}

static bool rule_names(const void *obj, const struct kc_device_result *r)
{
	return health_rule_selects(obj, r->driver, r->pool, r->device);
}

static bool rule_update(struct core *c, const void *cur, const void *prev, uint64_t now_ms)
{
	return health_rule_update(c->h, c->p, cur, prev, now_ms);
}

/* A slice or rule changed: health learns its taints; the claims on the devices it names, now or
 * before, are looked at again if they changed. */
static void device_source_changed(struct core *c, enum kc_delta delta, const void *obj, const void *old,
				  bool (*update)(struct core *c, const void *cur, const void *prev, uint64_t now_ms),
				  bool (*names)(const void *obj, const struct kc_device_result *r), uint64_t now_ms)
{
	const void *cur = delta == KC_DELTA_DELETED ? NULL : obj;
	const void *prev = delta == KC_DELTA_DELETED ? obj : old;

	if (update(c, cur, prev, now_ms))
		eval_claims_naming(c, names, cur, prev, now_ms);
	core_update_breaker(c, now_ms);
}

void core_slice_changed(struct core *c, enum kc_delta delta, const struct kc_resource_slice *slice,
			const struct kc_resource_slice *old, uint64_t now_ms)
{
	device_source_changed(c, delta, slice, old, slice_update, slice_names, now_ms);
}

void core_rule_changed(struct core *c, enum kc_delta delta, const struct kc_device_taint_rule *rule,
		       const struct kc_device_taint_rule *old, uint64_t now_ms)
{
	device_source_changed(c, delta, rule, old, rule_update, rule_names, now_ms);
}

void core_set_synced(struct core *c, bool synced, uint64_t now_ms)
{
	bool was = c->synced;

	c->synced = synced;
	c->st.synced = synced;
	if (synced && !was) {
		kc_log_info(2, "core: caches synced, evaluating every pod");
		core_eval_all(c, now_ms);
		quarantine_synced(c->qr, now_ms);
	}
}

void core_set_dra_synced(struct core *c, bool synced, uint64_t now_ms)
{
	if (synced == c->dra_synced)
		return;
	c->dra_synced = synced;
	if (synced) {
		kc_log_info(2, "core: DRA caches synced, evaluating every pod");
		core_eval_all(c, now_ms);
	}
}

void core_set_active(struct core *c, bool active, uint64_t now_ms)
{
	bool was = c->active;

	if (active == was)
		return;
	/* Before the caches sync nothing is evicted anyway: going inactive then (the shell
	 * does so at start until it knows it leads) is not news worth a line. */
	if (active || c->synced)
		kc_log_info(2, "core: %s", active ? "active: evictions enabled" : "not active: no evictions");
	c->active = active;
	c->st.active = active;
	if (!active || !c->synced)
		return;
	/* A new leader announces what a standby kept quiet about: an open breaker, bare pods. */
	if (limits_breaker_open(c->lim))
		core_push_notice(c, NULL, "Warning", "CircuitBreakerOpen",
			    kc_xasprintf("Circuit breaker open: %s; no pods are evicted until it closes",
					 limits_breaker_reason(c->lim)));
	core_eval_all(c, now_ms);
}
