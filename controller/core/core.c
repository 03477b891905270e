/*
 * The core: wires health, planner and limits to the cache events and to the
 * shell's action loop (see core.h).  Every event re-evaluates only the pods it
 * can affect; per-pod state exists only for pods bound to a device that looks
 * unhealthy or with an action pending or done, so 150,000 healthy pods cost
 * nothing but their evaluation when they change.
 */
#include "core.h"

#include <errno.h>
#include <string.h>

#include "evict_limits.h"
#include "kc_log.h"
#include "kc_util.h"
#include "requests.h"

/* Most notices waiting for the shell; older ones are dropped past this. */
#define MAX_NOTICES 1024

struct notice {
	char *ns, *name, *uid, *type, *reason, *message;
	bool cluster_wide;
};

struct core {
	const struct policy *p;
	const struct kc_store *pods, *nodes, *claims, *slices;
	struct health *h;
	struct planner *pl;
	struct limits *lim;
	struct quarantine *qr;
	bool synced, active;
	bool cap_noticed; /* the QuarantineCapReached notice of this episode went out */
	bool dra_synced; /* claims are read only once the DRA caches synced */
	struct core_stats st;
	struct notice q[MAX_NOTICES];
	size_t q_head, q_len;
	uint64_t q_dropped;
	struct notice cur; /* the notice last returned */
	char *action_msg;  /* the message of the action last returned */
	uint64_t now;	   /* for store visitors */
};

static void notice_clear(struct notice *n)
{
	free(n->ns);
	free(n->name);
	free(n->uid);
	free(n->type);
	free(n->reason);
	free(n->message);
	memset(n, 0, sizeof(*n));
}

static void push_notice(struct core *c, const struct planner_pod *r, const char *type, const char *reason,
			char *message)
{
	struct notice *n;

	/* A standby replica or unsynced caches would announce what the leader also announces. */
	if (!c->active || !c->synced) {
		free(message);
		return;
	}
	if (c->q_len == MAX_NOTICES) {
		notice_clear(&c->q[c->q_head]);
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

static void update_breaker(struct core *c, uint64_t now_ms)
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
		push_notice(c, NULL, "Warning", "CircuitBreakerOpen",
			    kc_xasprintf("Circuit breaker open: %s; no pods are evicted until it closes",
					 limits_breaker_reason(c->lim)));
		break;
	case LIMITS_BREAKER_CLOSED:
		kc_log_info(0, "core: circuit breaker closed: %s", limits_breaker_reason(c->lim));
		push_notice(c, NULL, "Normal", "CircuitBreakerClosed",
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
static void drop_record(struct core *c, struct planner_pod *r, bool recovered, uint64_t now_ms)
{
	set_hits(c, r, NULL, 0, NULL, false, recovered, now_ms);
	planner_remove(c->pl, r);
}

/* ---- evaluation ---- */

static void eval_pod(struct core *c, const struct kc_pod *pod, uint64_t now_ms)
{
	struct planner_pod *r = planner_get(c->pl, pod->meta.uid);
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
		drop_record(c, r, !terminal, now_ms);
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
			push_notice(c, r, "Normal", "NotEvicted",
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

	eval_pod(c, obj, c->now);
	return 0;
}

static void eval_node_pods(struct core *c, const char *node, uint64_t now_ms)
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

/* Re-evaluates everything: after the policy changed or the caches synced. */
static void eval_all(struct core *c, uint64_t now_ms)
{
	c->now = now_ms;
	health_begin_generation(c->h);
	if (c->nodes)
		kc_store_foreach(c->nodes, update_node_cb, c);
	if (c->slices)
		kc_store_foreach(c->slices, update_slice_cb, c);
	health_sweep(c->h);
	if (c->pods)
		kc_store_foreach(c->pods, eval_pod_cb, c);
	update_breaker(c, now_ms);
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
	eval_all(c, 0);
	return c;
}

struct core *core_free(struct core *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->q_len; i++)
		notice_clear(&c->q[(c->q_head + i) % MAX_NOTICES]);
	notice_clear(&c->cur);
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
	eval_all(c, now_ms);
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
	eval_all(c, now_ms);
}

static void pod_gone(struct core *c, const char *uid, uint64_t now_ms)
{
	struct planner_pod *r = planner_get(c->pl, uid);

	if (!r)
		return;
	if (r->state == PLANNER_IN_FLIGHT) {
		set_hits(c, r, NULL, 0, NULL, false, false, now_ms);
		r->gone = true;
		return;
	}
	drop_record(c, r, false, now_ms);
}

void core_pod_changed(struct core *c, enum kc_delta delta, const struct kc_pod *pod,
		      const struct kc_pod *old, uint64_t now_ms)
{
	if (delta == KC_DELTA_DELETED) {
		pod_gone(c, pod->meta.uid, now_ms);
	} else {
		if (old && strcmp(old->meta.uid, pod->meta.uid) != 0)
			pod_gone(c, old->meta.uid, now_ms); /* recreated under the same name: a new pod */
		eval_pod(c, pod, now_ms);
	}
	update_breaker(c, now_ms);
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
		eval_node_pods(c, node->meta.name, now_ms);
	update_breaker(c, now_ms);
}

static void eval_consumers(struct core *c, const struct kc_resource_claim *claim, uint64_t now_ms)
{
	for (uint32_t i = 0; i < claim->n_consumers; i++) {
		const struct kc_consumer *u = &claim->consumers[i];
		const struct kc_pod *pod;

		if (strcmp(u->resource, "pods") != 0)
			continue;
		pod = kc_store_get(c->pods, claim->meta.ns, u->name);
		if (pod && (!*u->uid || strcmp(pod->meta.uid, u->uid) == 0))
			eval_pod(c, pod, now_ms);
	}
}

void core_claim_changed(struct core *c, enum kc_delta delta, const struct kc_resource_claim *claim,
			const struct kc_resource_claim *old, uint64_t now_ms)
{
	(void)delta;
	eval_consumers(c, claim, now_ms);
	if (old)
		eval_consumers(c, old, now_ms);
	update_breaker(c, now_ms);
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

struct slice_ctx {
	struct core *c;
	const struct kc_resource_slice *a, *b;
};

static int slice_claim_cb(const void *obj, void *userdata)
{
	struct slice_ctx *s = userdata;
	const struct kc_resource_claim *claim = obj;

	for (uint32_t i = 0; i < claim->n_results; i++) {
		if (slice_has(s->a, &claim->results[i]) || slice_has(s->b, &claim->results[i])) {
			eval_consumers(s->c, claim, s->c->now);
			break;
		}
	}
	return 0;
}

void core_slice_changed(struct core *c, enum kc_delta delta, const struct kc_resource_slice *slice,
			const struct kc_resource_slice *old, uint64_t now_ms)
{
	const struct kc_resource_slice *cur = delta == KC_DELTA_DELETED ? NULL : slice;
	const struct kc_resource_slice *prev = delta == KC_DELTA_DELETED ? slice : old;

	if (health_slice_update(c->h, c->p, cur, prev, now_ms) && c->claims) {
		struct slice_ctx s = {c, cur, prev};

		c->now = now_ms;
		kc_store_foreach(c->claims, slice_claim_cb, &s);
	}
	update_breaker(c, now_ms);
}

void core_set_synced(struct core *c, bool synced, uint64_t now_ms)
{
	bool was = c->synced;

	c->synced = synced;
	c->st.synced = synced;
	if (synced && !was) {
		kc_log_info(2, "core: caches synced, evaluating every pod");
		eval_all(c, now_ms);
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
		eval_all(c, now_ms);
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
		push_notice(c, NULL, "Warning", "CircuitBreakerOpen",
			    kc_xasprintf("Circuit breaker open: %s; no pods are evicted until it closes",
					 limits_breaker_reason(c->lim)));
	eval_all(c, now_ms);
}

/* ---- actions ---- */

static void count_held(struct core *c, struct planner_pod *r, enum limits_hold hold)
{
	if (r->held)
		return;
	r->held = true;
	c->st.held_by_limit++;
	kc_log_info(4, "core: pod %s/%s held by %s", r->ns, r->name, limits_hold_name(hold));
}

/* The cached pod the record is about: same namespace, name and UID; NULL when it is gone. */
static const struct kc_pod *pod_cached(const struct core *c, const struct planner_pod *r)
{
	const struct kc_pod *pod = c->pods ? kc_store_get(c->pods, r->ns, r->name) : NULL;

	return pod && strcmp(pod->meta.uid, r->uid) == 0 ? pod : NULL;
}

/* The controller ownerReference UID of the pod a record stands for; "" when none (or gone). */
static const char *owner_of(const struct core *c, const struct planner_pod *r)
{
	const struct kc_pod *pod = pod_cached(c, r);

	if (!pod)
		return "";
	for (uint32_t i = 0; i < pod->meta.n_owners; i++)
		if (pod->meta.owners[i].controller)
			return pod->meta.owners[i].uid;
	return "";
}

/* Among the due hits, the one needing the strongest fence (a node fence covers its devices too). */
static const struct health_hit *fence_hit(const struct planner_pod *r, uint64_t now_ms)
{
	const struct health_hit *dev = NULL;

	for (size_t i = 0; i < r->n_hits; i++) {
		const struct health_hit *h = &r->hits[i];
		enum quarantine_fence f;

		if (health_hit_due(h) > now_ms)
			continue;
		f = quarantine_fence_for(h);
		if (f == QUARANTINE_FENCE_NODE)
			return h;
		if (f == QUARANTINE_FENCE_DEVICE && !dev)
			dev = h;
	}
	return dev ? dev : planner_primary_hit(r, now_ms);
}

/* How a fence of this hit on this node reads in messages: "node N with K=V:E", "device D". */
static char *fence_words(const struct core *c, const struct health_hit *h, const char *node)
{
	char *value, *out;

	if (quarantine_fence_for(h) == QUARANTINE_FENCE_DEVICE && c->p->device_taint_rules &&
	    !quarantine_stats(c->qr)->no_rule_api)
		return kc_xasprintf("taint device %s with a DeviceTaintRule", h->device);
	value = requests_label_value(h->resource);
	if (c->p->fence_taint && c->p->fence_cordon)
		out = kc_xasprintf("taint node %s with %s=%s:%s and cordon it", node, c->p->fence_key, value,
				   c->p->fence_effect);
	else if (c->p->fence_taint)
		out = kc_xasprintf("taint node %s with %s=%s:%s", node, c->p->fence_key, value, c->p->fence_effect);
	else
		out = kc_xasprintf("cordon node %s", node);
	free(value);
	return out;
}

static void loop_skip(struct core *c, struct planner_pod *r, const struct health_hit *h, const char *unit)
{
	if (!r->loop_noticed) {
		r->loop_noticed = true;
		c->st.eviction_loops++;
		c->st.skipped[PLANNER_SKIP_LOOP]++;
		kc_log_warn("core: not evicting pod %s/%s: eviction loop on %s (%s %s%s%s, signal %s); its owner had a "
			    "pod evicted from there within %llu s",
			    r->ns, r->name, unit, h->resource, h->state, *h->device ? " device " : "", h->device,
			    health_signal_name(h->signal), (unsigned long long)(c->p->loop_window_ms / 1000));
		push_notice(c, r, "Warning", "EvictionLoop",
			    kc_xasprintf("Not evicting pod %s/%s: a pod of the same owner was evicted from %s "
					 "within %llu s and its replacement came back to the same failed hardware "
					 "(%s signal %s: %s); check that the scheduler honours the fence",
					 r->ns, r->name, unit, (unsigned long long)(c->p->loop_window_ms / 1000),
					 h->resource, health_signal_name(h->signal), h->detail));
	}
	r->state = PLANNER_SKIPPED;
	r->skip = PLANNER_SKIP_LOOP;
	planner_schedule(c->pl, r, UINT64_MAX);
}

/* A quarantine write due now, as a CORE_FENCE action. */
static int next_fence(struct core *c, uint64_t now_ms, struct core_action *ret)
{
	struct quarantine_action qa;
	char *value;

	if (c->p->dry_run || quarantine_next_action(c->qr, now_ms, &qa) < 0)
		return -EAGAIN;
	memset(ret, 0, sizeof(*ret));
	ret->kind = CORE_FENCE;
	ret->fence = qa;
	ret->fence.key = c->p->fence_key;
	ret->fence.effect = c->p->fence_effect;
	ret->fence.taint = c->p->fence_taint;
	ret->fence.cordon = c->p->fence_cordon;
	ret->node = qa.node;
	ret->signal = qa.signal;
	ret->resource = qa.resource;
	ret->device = qa.kind == QUARANTINE_DEVICE ? qa.unit : "";
	ret->reason = qa.op == QUARANTINE_ADD ? "Quarantined" : "QuarantineLifted";
	value = requests_label_value(qa.resource);
	if (qa.op == QUARANTINE_REMOVE)
		c->action_msg = kc_xasprintf("Lifting the quarantine of %s %s: %s", qa.kind == QUARANTINE_NODE ? "node" : "device",
					     qa.unit, c->p->remediation_enabled ? "healthy long enough (remediation.recoverAfter)"
										: "remediation is turned off");
	else if (qa.kind == QUARANTINE_DEVICE)
		c->action_msg = kc_xasprintf("Quarantining device %s on node %s with a DeviceTaintRule (%s=%s:%s) "
					     "before evicting its pods (signal %s: %s)",
					     qa.unit, qa.node, c->p->fence_key, value, c->p->fence_effect, qa.signal,
					     qa.message);
	else
		c->action_msg = kc_xasprintf("Quarantining node %s (%s%s%s%s%s%s) before evicting its pods: %s is "
					     "unhealthy (signal %s: %s)",
					     qa.unit, c->p->fence_taint ? "taint " : "", c->p->fence_taint ? c->p->fence_key : "",
					     c->p->fence_taint ? "=" : "", c->p->fence_taint ? value : "",
					     c->p->fence_taint && c->p->fence_cordon ? ", " : "", c->p->fence_cordon ? "cordon" : "",
					     qa.resource, qa.signal, qa.message);
	free(value);
	ret->message = c->action_msg;
	return 0;
}

/*
 * Fencing before eviction: 0 when the pod may go on to be evicted; otherwise
 * the record was parked (waiting for its fence, at the cap, or a loop).
 */
static int gate(struct core *c, struct planner_pod *r, bool dry, uint64_t now_ms, char **ret_unit,
		const char **ret_owner)
{
	const struct health_hit *h = fence_hit(r, now_ms);
	char *unit = quarantine_unit_of(h, r->node);
	const char *owner = owner_of(c, r);
	enum quarantine_need need;
	bool new_dry;

	if (quarantine_loop_check(c->qr, owner, unit, r->seen_ms, now_ms)) {
		loop_skip(c, r, h, unit);
		free(unit);
		return -ELOOP;
	}
	need = quarantine_need(c->qr, h, r->node, c->st.device_nodes, dry, &new_dry, now_ms);
	if (!quarantine_stats(c->qr)->at_cap)
		c->cap_noticed = false;
	if (new_dry) {
		char *what = fence_words(c, h, r->node);

		kc_log_info(0, "core: would %s before evicting pod %s/%s (dry run)", what, r->ns, r->name);
		push_notice(c, r, "Normal", "WouldTaint",
			    kc_xasprintf("Would %s before evicting pod %s/%s: %s is %s (signal %s: %s)", what,
					 r->ns, r->name, h->resource, h->state, health_signal_name(h->signal),
					 h->detail));
		free(what);
	}
	if (need == QUARANTINE_READY) {
		*ret_unit = unit;
		*ret_owner = owner;
		return 0;
	}
	free(unit);
	r->state = PLANNER_WAITING;
	planner_schedule(c->pl, r, UINT64_MAX);
	if (need == QUARANTINE_WAIT) {
		kc_log_info(4, "core: pod %s/%s waits for its fence", r->ns, r->name);
		return -EAGAIN;
	}
	c->st.quarantine_capped++;
	if (!c->cap_noticed) {
		char *what = fence_words(c, h, r->node);

		c->cap_noticed = true;
		kc_log_warn("core: quarantine cap reached: not allowed to %s, so pod %s/%s and the other pods "
			    "needing a new fence are not evicted",
			    what, r->ns, r->name);
		push_notice(c, NULL, "Warning", "QuarantineCapReached",
			    kc_xasprintf("Quarantine cap reached (remediation.maxQuarantinedNodes/"
					 "maxQuarantinedNodePercent): not allowed to %s; pods that need a new fence "
					 "are not evicted until a quarantine is lifted",
					 what));
		free(what);
	}
	return -EDQUOT;
}

int core_next_action(struct core *c, uint64_t now_ms, struct core_action *ret)
{
	bool dry = c->p->dry_run;

	free(c->action_msg);
	c->action_msg = NULL;
	/* Time alone can close the breaker (closeAfter) or end a remembered failure (memory). */
	update_breaker(c, now_ms);
	if (!c->synced || !c->active)
		return -EAGAIN;
	/* Fences (and their removal) first: evictions wait for them. */
	if (next_fence(c, now_ms, ret) == 0)
		return 0;
	for (;;) {
		struct planner_pod *r = planner_peek(c->pl);
		const struct health_hit *hit;
		enum limits_hold hold;
		uint64_t wake;
		const char *verb, *owner;
		char *unit;
		int rc;

		if (!r || r->due_ms > now_ms)
			return -EAGAIN;
		if (r->state != PLANNER_WAITING || !r->n_hits) {
			planner_schedule(c->pl, r, UINT64_MAX); /* not expected: a record out of step */
			continue;
		}
		hold = limits_check(c->lim, r->ns, r->node, dry, now_ms, &wake);
		if (hold == LIMITS_HOLD_BREAKER || hold == LIMITS_HOLD_IN_FLIGHT ||
		    hold == LIMITS_HOLD_TOTAL) {
			/* Shared limits hold every pod alike: leave the queue as it is. */
			count_held(c, r, hold);
			return -EAGAIN;
		}
		if (hold != LIMITS_OK) {
			count_held(c, r, hold);
			planner_schedule(c->pl, r, wake);
			continue;
		}

		if (dry && r->dry_reported) {
			/* Reported in an earlier dry run, dry run since off and on again: not twice. */
			r->state = PLANNER_DONE;
			r->dry_run = true;
			planner_schedule(c->pl, r, UINT64_MAX);
			continue;
		}
		if ((rc = gate(c, r, dry, now_ms, &unit, &owner)) < 0) {
			/* A fence the pod waits for goes out at once. */
			if (rc == -EAGAIN && next_fence(c, now_ms, ret) == 0)
				return 0;
			continue;
		}
		if (!dry)
			quarantine_loop_record(c->qr, owner, unit, now_ms);
		free(unit);
		planner_check_delete(c->p, r, now_ms);
		hit = planner_primary_hit(r, now_ms);
		limits_take(c->lim, r->ns, r->node, dry, now_ms);
		planner_schedule(c->pl, r, UINT64_MAX);
		r->held = false;
		memset(ret, 0, sizeof(*ret));
		ret->kind = r->delete_next && !dry ? CORE_DELETE : CORE_EVICT;
		verb = dry ? "Would evict" : ret->kind == CORE_DELETE ? "Deleting" : "Evicting";
		if (*hit->device)
			c->action_msg = kc_xasprintf("%s pod %s/%s: %s device %s is %s (signal %s: %s)", verb,
						     r->ns, r->name, hit->resource, hit->device, hit->state,
						     health_signal_name(hit->signal), hit->detail);
		else
			c->action_msg = kc_xasprintf("%s pod %s/%s: %s on node %s is %s (signal %s: %s)",
						     verb, r->ns, r->name, hit->resource, r->node, hit->state,
						     health_signal_name(hit->signal), hit->detail);
		if (ret->kind == CORE_DELETE) {
			char *m = kc_xasprintf(
			    "%s; eviction blocked for %llu s, deleting without the eviction API",
			    c->action_msg, (unsigned long long)((now_ms - r->blocked_since_ms) / 1000));

			free(c->action_msg);
			c->action_msg = m;
		}
		ret->ns = r->ns;
		ret->name = r->name;
		ret->uid = r->uid;
		ret->node = r->node;
		ret->grace_period_s = c->p->grace_period_s;
		ret->dry_run = dry;
		ret->signal = health_signal_name(hit->signal);
		ret->resource = hit->resource;
		ret->device = hit->device;
		ret->reason = "UnhealthyDevice";
		ret->message = c->action_msg;
		ret->detected_ms = hit->first_seen_ms;
		c->st.actions_by_signal[hit->signal]++;
		if (dry) {
			r->state = PLANNER_DONE;
			r->dry_run = true;
			r->dry_reported = true;
			c->st.dry_run++;
		} else {
			r->state = PLANNER_IN_FLIGHT;
			r->in_flight_delete = ret->kind == CORE_DELETE;
		}
		c->st.in_flight = limits_in_flight(c->lim);
		kc_log_info(2, "core: %s", c->action_msg);
		return 0;
	}
}

void core_action_done(struct core *c, const char *uid, enum core_result res, uint64_t retry_after_ms,
		      uint64_t now_ms)
{
	struct planner_pod *r = planner_get(c->pl, uid);
	const struct kc_pod *pod;

	if (!r || r->state != PLANNER_IN_FLIGHT) {
		kc_log_info(2, "core: result for pod UID %s that has no action in flight, ignored", uid);
		return;
	}
	limits_done(c->lim);
	c->st.in_flight = limits_in_flight(c->lim);
	if (res == CORE_RESULT_CONFLICT)
		res = pod_cached(c, r) ? CORE_RESULT_ERROR : CORE_RESULT_GONE;
	switch (res) {
	case CORE_RESULT_EVICTED:
	case CORE_RESULT_GONE:
		if (res == CORE_RESULT_GONE)
			c->st.gone++;
		else if (r->in_flight_delete)
			c->st.deleted++;
		else
			c->st.evicted++;
		kc_log_info(2, "core: pod %s/%s %s", r->ns, r->name,
			    res == CORE_RESULT_GONE ? "was already gone"
			    : r->in_flight_delete   ? "deleted"
						    : "evicted");
		r->state = PLANNER_DONE;
		if (r->gone)
			drop_record(c, r, false, now_ms);
		return;
	case CORE_RESULT_BLOCKED:
		c->st.blocked++;
		planner_retry(c->p, r, !r->in_flight_delete, retry_after_ms, now_ms);
		break;
	case CORE_RESULT_CANCELLED:
		/* Nothing was sent: no retry backoff, just evaluate the pod again as it is now. */
		kc_log_info(2, "core: action on pod %s/%s cancelled before the write", r->ns, r->name);
		r->state = PLANNER_WAITING;
		goto reevaluate;
	default:
		c->st.errors++;
		planner_retry(c->p, r, false, retry_after_ms, now_ms);
		break;
	}
	kc_log_info(2, "core: %s of pod %s/%s %s, retrying in %llu ms",
		    r->in_flight_delete ? "deletion" : "eviction", r->ns, r->name,
		    res == CORE_RESULT_BLOCKED ? "blocked" : "failed",
		    (unsigned long long)(r->retry_at_ms - now_ms));
	r->state = PLANNER_WAITING;
reevaluate:
	if (r->gone) {
		drop_record(c, r, false, now_ms);
		return;
	}
	pod = pod_cached(c, r);
	if (!pod) {
		drop_record(c, r, false, now_ms);
		update_breaker(c, now_ms);
		return;
	}
	eval_pod(c, pod, now_ms);
	update_breaker(c, now_ms);
}

void core_fence_done(struct core *c, enum quarantine_kind kind, const char *unit, enum quarantine_result r,
		     uint64_t now_ms)
{
	uint64_t removes = quarantine_stats(c->qr)->removes;
	const char *node = quarantine_done(c->qr, kind, unit, r, now_ms);

	if (node && *node) {
		/* The pods that waited for this fence may go now. */
		char *n = kc_xstrdup(node);

		eval_node_pods(c, n, now_ms);
		free(n);
	}
	if (quarantine_stats(c->qr)->removes != removes)
		eval_all(c, now_ms); /* room under the cap: pods held by it get another look */
	else
		update_breaker(c, now_ms);
}

bool core_wants_rules(const struct core *c)
{
	return c->p->remediation_enabled && c->p->device_taint_rules && c->p->dra;
}

void core_rule_observed(struct core *c, const char *driver, const char *pool, const char *device,
			uint64_t now_ms)
{
	quarantine_observe_rule(c->qr, driver, pool, device, now_ms);
	update_breaker(c, now_ms);
}

int core_action_check(const struct core *c, const char *uid, const char **ret_why)
{
	const struct planner_pod *r = planner_get(c->pl, uid);
	const struct kc_pod *pod;
	enum planner_skip skip;

	/* Not c->active: leadership is the shell's check (a fresh lease), and a
	 * shutdown lets the actions in flight finish. */
	if (!r || r->state != PLANNER_IN_FLIGHT) {
		*ret_why = "no action in flight for this pod";
		return -ESTALE;
	}
	pod = pod_cached(c, r);
	if (r->gone || !pod) {
		*ret_why = "the pod is gone from the cache";
		return -ESTALE;
	}
	if (!r->n_hits) {
		*ret_why = "the pod is no longer bound to an unhealthy device";
		return -ESTALE;
	}
	skip = planner_filter(c->p, pod);
	if (skip != PLANNER_SKIP_NONE) {
		*ret_why = planner_skip_message(skip);
		return -ESTALE;
	}
	if (c->p->dry_run) {
		*ret_why = "dry run was turned on";
		return -ESTALE;
	}
	return 0;
}

uint64_t core_next_wakeup(const struct core *c, uint64_t now_ms)
{
	const struct planner_pod *r;
	uint64_t wake, breaker, fence;

	if (!c->synced || !c->active)
		return UINT64_MAX;
	/* The breaker's next change is due even when no pod waits: its Event must go out. */
	breaker = limits_breaker_wake(c->lim);
	if (health_breaker_wake(c->h) < breaker)
		breaker = health_breaker_wake(c->h);
	/* So are recoveries and retries of fences (never in dry run: nothing is written). */
	fence = c->p->dry_run ? UINT64_MAX : quarantine_next_wakeup(c->qr, now_ms);
	if (fence < breaker)
		breaker = fence;
	r = planner_peek(c->pl);
	if (!r)
		return breaker;
	wake = limits_wake(c->lim, c->p->dry_run, now_ms);
	if (r->due_ms > wake)
		wake = r->due_ms;
	return wake < breaker ? wake : breaker;
}

const char *const core_keep_annotations[] = {POLICY_OPT_OUT_ANNOTATION, QUARANTINE_ANNOTATION, NULL};

bool core_node_quarantined(const struct core *c, const char *node)
{
	return quarantine_node_fenced(c->qr, node);
}

const char *core_skip_name(size_t i)
{
	return planner_skip_name((enum planner_skip)i);
}

const struct core_stats *core_stats(const struct core *c)
{
	struct core *m = (struct core *)c; /* gauges computed on read */

	const struct quarantine_stats *qs = quarantine_stats(c->qr);

	m->st.tracked_pods = planner_count(c->pl);
	m->st.in_flight = limits_in_flight(c->lim);
	m->st.quarantined_nodes = qs->nodes;
	m->st.quarantined_devices = qs->devices;
	m->st.quarantine_adds = qs->adds;
	m->st.quarantine_removes = qs->removes;
	m->st.quarantine_at_cap = qs->at_cap;
	return &c->st;
}

int core_next_notice(struct core *c, struct core_notice *ret)
{
	notice_clear(&c->cur);
	if (!c->q_len)
		return -EAGAIN;
	c->cur = c->q[c->q_head];
	memset(&c->q[c->q_head], 0, sizeof(c->q[c->q_head]));
	c->q_head = (c->q_head + 1) % MAX_NOTICES;
	c->q_len--;
	ret->ns = c->cur.ns;
	ret->name = c->cur.name;
	ret->uid = c->cur.uid;
	ret->type = c->cur.type;
	ret->reason = c->cur.reason;
	ret->message = c->cur.message;
	ret->cluster_wide = c->cur.cluster_wide;
	return 0;
}

void core_pod_view(struct core *c, const char *uid, uint64_t now_ms, struct core_pod_view *ret)
{
	struct planner_pod *r = planner_get(c->pl, uid);
	uint64_t wake = UINT64_MAX;
	enum limits_hold hold;

	memset(ret, 0, sizeof(*ret));
	ret->due_ms = UINT64_MAX;
	ret->breaker_reason = limits_breaker_reason(c->lim);
	if (!r || (!r->n_hits && r->state != PLANNER_DONE && r->state != PLANNER_IN_FLIGHT)) {
		ret->decision = CORE_DECISION_HEALTHY;
		return;
	}
	ret->hits = r->hits;
	ret->n_hits = r->n_hits;
	if (!c->synced || !c->active) {
		ret->decision = CORE_DECISION_NOT_ACTIVE;
		return;
	}
	switch (r->state) {
	case PLANNER_SKIPPED:
		ret->decision = CORE_DECISION_NEVER;
		ret->skip = r->skip;
		return;
	case PLANNER_IN_FLIGHT:
		ret->decision = CORE_DECISION_IN_FLIGHT;
		return;
	case PLANNER_DONE:
		ret->decision = CORE_DECISION_DONE;
		ret->dry_run = r->dry_run;
		return;
	case PLANNER_WAITING:
		break;
	}
	/* The same check core_next_action() makes; a pod it already found held (r->held) was
	 * rescheduled to when that limit has room. */
	hold = limits_check(c->lim, r->ns, r->node, c->p->dry_run, now_ms, &wake);
	if (r->heap_pos == SIZE_MAX && !r->held && hold != LIMITS_HOLD_BREAKER) {
		/* Parked by the fencing gate: at the quarantine cap, or waiting for its fence. */
		ret->quarantine_capped = quarantine_stats(c->qr)->at_cap;
		ret->fence_wait = !ret->quarantine_capped;
		ret->decision = ret->quarantine_capped ? CORE_DECISION_HELD : CORE_DECISION_WAITING;
	} else if (hold != LIMITS_OK && (r->due_ms <= now_ms || r->held || hold == LIMITS_HOLD_BREAKER)) {
		ret->decision = CORE_DECISION_HELD;
		ret->hold = hold;
		ret->due_ms = wake > r->due_ms ? wake : r->due_ms;
	} else if (r->due_ms <= now_ms) {
		ret->decision = CORE_DECISION_DUE;
		ret->due_ms = now_ms;
	} else {
		ret->decision = CORE_DECISION_WAITING;
		ret->due_ms = r->due_ms;
		ret->retry = r->retry_at_ms > now_ms && r->retry_at_ms >= planner_hits_due(r);
	}
}
