/*
 * Explain (explain.h): a throw-away core over the caller's caches, driven the
 * way the shell drives it at start-up, then read back for one pod.
 */
#include "explain.h"

#include <errno.h>
#include <string.h>

#include "kc_util.h"

/* The core's clock for explain: it starts at 0, so times read back are "from now". */
#define EXPLAIN_NOW 0

/* Draws at most this many actions before the pod's own: more pods than any cache holds. */
#define MAX_DRAWN 10000000u

const char *explain_hold_text(enum limits_hold h)
{
	switch (h) {
	case LIMITS_OK:
		return "nothing";
	case LIMITS_HOLD_IN_FLIGHT:
		return "in-flight limit (maxInFlight)";
	case LIMITS_HOLD_TOTAL:
		return "total limit (maxTotal per window)";
	case LIMITS_HOLD_NODE:
		return "node limit (maxPerNode per window)";
	case LIMITS_HOLD_NAMESPACE:
		return "namespace limit (maxPerNamespace per window)";
	case LIMITS_HOLD_BREAKER:
		return "circuit breaker open";
	}
	return "a limit";
}

const char *explain_decision_name(enum core_decision d)
{
	switch (d) {
	case CORE_DECISION_HEALTHY:
		return "Healthy";
	case CORE_DECISION_NEVER:
		return "Never";
	case CORE_DECISION_WAITING:
		return "Waiting";
	case CORE_DECISION_HELD:
		return "Held";
	case CORE_DECISION_DUE:
		return "WouldEvictNow";
	case CORE_DECISION_IN_FLIGHT:
		return "InFlight";
	case CORE_DECISION_DONE:
		return "Done";
	case CORE_DECISION_NOT_ACTIVE:
		return "NotActive";
	}
	return "Unknown";
}

static const char *phase_name(enum kc_pod_phase ph)
{
	static const char *const names[] = {"Unknown", "Pending", "Running", "Succeeded", "Failed"};

	return (unsigned)ph < KC_ARRAY_SIZE(names) ? names[ph] : "Unknown";
}

static void add_device(const char *resource, const char *device, const char *health, void *userdata)
{
	struct explain *e = userdata;
	struct explain_device *d;

	for (size_t i = 0; i < e->n_devices; i++)
		if (strcmp(e->devices[i].resource, resource) == 0 && strcmp(e->devices[i].device, device) == 0)
			return;
	e->devices = kc_xrealloc(e->devices, (e->n_devices + 1) * sizeof(*e->devices));
	d = &e->devices[e->n_devices++];
	d->resource = kc_xstrdup(resource);
	d->device = kc_xstrdup(device);
	d->health = kc_xstrdup(health);
}

static void copy_hits(struct explain *e, const struct health_hit *hits, size_t n)
{
	if (!n)
		return;
	e->hits = kc_xcalloc(n, sizeof(*e->hits));
	e->n_hits = n;
	for (size_t i = 0; i < n; i++) {
		e->hits[i] = hits[i];
		e->hits[i].resource = kc_xstrdup(hits[i].resource);
		e->hits[i].device = kc_xstrdup(hits[i].device);
		e->hits[i].state = kc_xstrdup(hits[i].state);
		e->hits[i].detail = kc_xstrdup(hits[i].detail);
	}
}

static void fill_pod(struct explain *e, const struct policy *p, const struct kc_pod *pod,
		     const struct kc_store *claims)
{
	const struct kc_owner_ref *owner = kc_meta_controller(&pod->meta);
	const char *owner_name = "";
	size_t owner_len = 0;
	char ub[KC_UID_BUF];

	if (owner)
		owner_name = kc_owner_name(&pod->meta, owner, &owner_len);
	e->ns = kc_xstrdup(pod->meta.ns);
	e->name = kc_xstrdup(pod->meta.name);
	e->uid = kc_xstrdup(kc_uid_str(&pod->meta.uid, ub));
	e->node = kc_xstrdup(pod->node_name);
	e->owner_kind = kc_xstrdup(owner ? owner->kind : "");
	e->owner_name = kc_xstrndup(owner_name, owner_len);
	e->phase = phase_name(pod->phase);
	e->dry_run = p->dry_run;
	e->signal_enabled[HEALTH_POD_RESOURCE] = p->pod_health_enabled || p->pod_health_unknown_enabled;
	e->signal_enabled[HEALTH_NODE_CONDITION] = p->n_node_conditions > 0;
	e->signal_enabled[HEALTH_ALLOC_DROP] = p->alloc_drop_enabled;
	e->signal_enabled[HEALTH_EXIT_CODE] = p->exit_codes_enabled;
	e->signal_enabled[HEALTH_DRA_TAINT] = p->dra && p->dra_taints_enabled;
	e->signal_enabled[HEALTH_DRA_CONDITION] = p->dra && p->dra_conditions_enabled;
	health_pod_devices(p, pod, claims, add_device, e);
	planner_filter_each(p, pod, e->filter_fails);
}

/* Splits "driver/pool/device" (pool names may hold slashes, drivers and devices do not). */
static bool split_device(const char *id, const char **ret_pool, size_t *ret_driver_len, size_t *ret_pool_len,
			 const char **ret_device)
{
	const char *first = strchr(id, '/'), *last = strrchr(id, '/');

	if (!first || first == last)
		return false;
	*ret_driver_len = (size_t)(first - id);
	*ret_pool = first + 1;
	*ret_pool_len = (size_t)(last - first - 1);
	*ret_device = last + 1;
	return true;
}

static bool same(const char *s, const char *prefix, size_t n)
{
	return strlen(s) == n && strncmp(s, prefix, n) == 0;
}

/* The condition a hit's detail ("Type=Status: message") names, among n. */
static int64_t condition_since(const struct kc_condition *c, uint32_t n, const char *detail)
{
	for (uint32_t i = 0; i < n; i++) {
		size_t l = strlen(c[i].type);

		if (strncmp(detail, c[i].type, l) == 0 && detail[l] == '=')
			return c[i].last_transition;
	}
	return 0;
}

struct taint_since {
	const char *id;
	int64_t since;
};

static int slice_taint_cb(const void *obj, void *userdata)
{
	const struct kc_resource_slice *sl = obj;
	struct taint_since *ts = userdata;
	const char *pool, *device;
	size_t dl, pl;

	if (!split_device(ts->id, &pool, &dl, &pl, &device) || !same(sl->driver, ts->id, dl) ||
	    !same(sl->pool, pool, pl))
		return 0;
	for (uint32_t i = 0; i < sl->n_devices; i++) {
		if (strcmp(sl->devices[i].name, device) != 0)
			continue;
		for (uint32_t t = 0; t < sl->devices[i].n_taints; t++) {
			int64_t at = sl->devices[i].taints[t].time_added;

			if (at > 0 && (ts->since == 0 || at < ts->since))
				ts->since = at;
		}
	}
	return 0;
}

/* The timeAdded of the DeviceTaintRule a hit's detail names ("DeviceTaintRule NAME: taint ..."), or -1
 * when it names none. */
static int64_t rule_since(const struct kc_store *rules, const char *detail)
{
	static const char prefix[] = "DeviceTaintRule ";
	const struct kc_device_taint_rule *r;
	const char *colon;
	char *name;

	if (strncmp(detail, prefix, sizeof(prefix) - 1) != 0 || !(colon = strchr(detail, ':')))
		return -1;
	name = kc_xstrndup(detail + sizeof(prefix) - 1, (size_t)(colon - detail) - (sizeof(prefix) - 1));
	r = rules ? kc_store_get(rules, "", name) : NULL;
	free(name);
	return r ? r->taint.time_added : 0;
}

/* When the API says a hit began, or 0 (the pod's own health, allocatable and exit codes carry no time). */
static int64_t hit_since(const struct kc_pod *pod, const struct kc_store *nodes, const struct kc_store *claims,
			 const struct kc_store *slices, const struct kc_store *rules, const struct health_hit *h)
{
	int64_t at;
	const struct kc_node *n;
	struct taint_since ts = {h->device, 0};
	const char *pool, *device;
	size_t dl, pl;

	switch (h->signal) {
	case HEALTH_NODE_CONDITION:
		n = nodes && *pod->node_name ? kc_store_get(nodes, "", pod->node_name) : NULL;
		return n ? condition_since(n->conditions, n->n_conditions, h->detail) : 0;
	case HEALTH_DRA_TAINT:
		if ((at = rule_since(rules, h->detail)) >= 0)
			return at;
		if (slices)
			kc_store_foreach(slices, slice_taint_cb, &ts);
		return ts.since;
	case HEALTH_DRA_CONDITION:
		if (!claims || !split_device(h->device, &pool, &dl, &pl, &device))
			return 0;
		for (uint32_t i = 0; i < pod->n_claims; i++) {
			const struct kc_resource_claim *rc =
			    *kc_pod_claims(pod)[i].claim_name
				? kc_store_get(claims, pod->meta.ns, kc_pod_claims(pod)[i].claim_name)
				: NULL;

			for (uint32_t j = 0; rc && j < rc->n_device_statuses; j++) {
				const struct kc_device_status *ds = &rc->device_statuses[j];

				if (same(ds->driver, h->device, dl) && same(ds->pool, pool, pl) &&
				    strcmp(ds->device, device) == 0)
					return condition_since(ds->conditions, ds->n_conditions, h->detail);
			}
		}
		return 0;
	default:
		return 0;
	}
}

uint64_t explain_left_since(const struct health_hit *h, int64_t since, int64_t now_s)
{
	int64_t held_ms = (now_s - since) * 1000;

	if (held_ms < 0)
		held_ms = 0;
	return (uint64_t)held_ms >= h->for_ms ? 0 : h->for_ms - (uint64_t)held_ms;
}

/* Seconds, rounded up: "in 25 s" must not promise a moment too early. */
static unsigned long long ceil_s(uint64_t ms)
{
	return (unsigned long long)(ms / 1000 + (ms % 1000 != 0));
}

static char *decision_text(const struct explain *e)
{
	const char *dry = e->dry_run ? " (dry run: only reported)" : "";

	switch (e->decision) {
	case CORE_DECISION_HEALTHY:
		return kc_xstrdup("not evicted: no device it holds looks unhealthy");
	case CORE_DECISION_NEVER:
		return kc_xasprintf("never: %s", planner_skip_message(e->skip));
	case CORE_DECISION_WAITING:
		if (e->fence_wait)
			return kc_xstrdup("waits for the fence of its node or device to be confirmed");
		return kc_xasprintf("would evict in %llu s%s (%s)", ceil_s(e->due_in_ms), dry,
				    e->retry ? "retry backoff" : "debounce");
	case CORE_DECISION_HELD:
		if (e->quarantine_capped)
			return kc_xstrdup("held: quarantine cap reached (remediation.maxQuarantinedNodes or "
					  "maxQuarantinedNodePercent)");
		if (e->due_in_ms == UINT64_MAX)
			return kc_xasprintf("held: %s", explain_hold_text(e->hold));
		return kc_xasprintf("held: %s; would evict in %llu s%s", explain_hold_text(e->hold),
				    ceil_s(e->due_in_ms), dry);
	case CORE_DECISION_DUE:
		return kc_xasprintf("would evict now%s", dry);
	case CORE_DECISION_IN_FLIGHT:
		return kc_xstrdup("eviction in flight");
	case CORE_DECISION_DONE:
		return kc_xstrdup(e->dry_run ? "already reported (dry run)" : "already evicted");
	case CORE_DECISION_NOT_ACTIVE:
		return kc_xstrdup("not decided: caches not synced or not the leader");
	}
	return kc_xstrdup("unknown");
}

char *explain_view_text(const struct core_pod_view *v, bool dry_run, uint64_t now_ms)
{
	struct explain e = {0};

	e.decision = v->decision;
	e.skip = v->skip;
	e.hold = v->hold;
	e.retry = v->retry;
	e.fence_wait = v->fence_wait;
	e.quarantine_capped = v->quarantine_capped;
	e.dry_run = dry_run;
	e.due_in_ms = v->due_ms == UINT64_MAX ? UINT64_MAX : v->due_ms > now_ms ? v->due_ms - now_ms : 0;
	return decision_text(&e);
}

/*
 * Draws the core's due actions in its own order until the pod's comes out
 * (0, *ret_message set) or nothing more is due (-EAGAIN).  Every other action
 * is answered "evicted", so it takes from the limits what it would take.
 */
static int draw_until(struct core *c, const char *uid, const char *node, char **ret_message,
		      char **ret_fence)
{
	struct core_action a;

	for (unsigned i = 0; i < MAX_DRAWN && core_next_action(c, EXPLAIN_NOW, &a) == 0; i++) {
		if (a.kind == CORE_FENCE) {
			/* Written and confirmed, as the API would; the first one for this pod's node is shown. */
			if (!*ret_fence && a.fence.op == QUARANTINE_ADD && a.node && strcmp(a.node, node) == 0)
				*ret_fence = kc_xstrdup(a.message);
			core_fence_done(c, a.fence.kind, a.fence.unit, QUARANTINE_OK, EXPLAIN_NOW);
			continue;
		}
		if (strcmp(a.uid, uid) == 0) {
			*ret_message = kc_xstrdup(a.message);
			return 0;
		}
		if (!a.dry_run)
			core_action_done(c, a.uid, CORE_RESULT_EVICTED, 0, EXPLAIN_NOW);
	}
	return -EAGAIN;
}

int explain_pod(const struct policy *p, const struct kc_store *pods, const struct kc_store *nodes,
		const struct kc_store *claims, const struct kc_store *slices, const struct kc_store *rules,
		const char *ns, const char *name, int64_t now_s, struct explain *ret)
{
	const struct kc_pod *pod = kc_store_get(pods, ns, name);
	const struct core_stats *st;
	struct core_pod_view v;
	struct explain e = {0};
	struct core *c;

	memset(ret, 0, sizeof(*ret));
	if (!pod)
		return -ENOENT;
	fill_pod(&e, p, pod, claims);
	c = core_new(p, pods, nodes, claims, slices);
	/* tolerationSeconds count from a taint's timeAdded: the core needs the wall clock for them. */
	core_set_wall_clock(c, now_s * 1000, EXPLAIN_NOW);
	if (rules)
		core_set_rule_store(c, rules, EXPLAIN_NOW);
	core_set_synced(c, true, EXPLAIN_NOW);
	core_set_active(c, true, EXPLAIN_NOW);
	e.node_quarantined = *e.node && core_node_quarantined(c, e.node);
	if (draw_until(c, e.uid, e.node, &e.action_message, &e.fence_message) == 0) {
		/* Its action came out: the view now says "in flight"; read the hits from it. */
		core_pod_view(c, e.uid, EXPLAIN_NOW, &v);
		v.decision = CORE_DECISION_DUE;
		v.due_ms = EXPLAIN_NOW;
	} else {
		core_pod_view(c, e.uid, EXPLAIN_NOW, &v);
	}
	copy_hits(&e, v.hits, v.n_hits);
	e.now_s = now_s;
	e.hit_since = e.n_hits ? kc_xcalloc(e.n_hits, sizeof(*e.hit_since)) : NULL;
	for (size_t i = 0; i < e.n_hits; i++)
		e.hit_since[i] = hit_since(pod, nodes, claims, slices, rules, &e.hits[i]);
	e.decision = v.decision;
	e.skip = v.skip;
	e.hold = v.hold;
	e.retry = v.retry;
	e.fence_wait = v.fence_wait;
	e.quarantine_capped = v.quarantine_capped;
	e.due_in_ms = v.due_ms == UINT64_MAX ? UINT64_MAX : v.due_ms - EXPLAIN_NOW;
	st = core_stats(c);
	e.breaker_open = st->breaker_open;
	e.device_nodes = st->device_nodes;
	e.unhealthy_nodes = st->unhealthy_nodes;
	e.breaker_reason = kc_xstrdup(v.breaker_reason);
	e.decision_text = decision_text(&e);
	core_free(c);
	*ret = e;
	return 0;
}

void explain_done(struct explain *e)
{
	free(e->ns);
	free(e->name);
	free(e->uid);
	free(e->node);
	free(e->owner_kind);
	free(e->owner_name);
	for (size_t i = 0; i < e->n_devices; i++) {
		free(e->devices[i].resource);
		free(e->devices[i].device);
		free(e->devices[i].health);
	}
	free(e->devices);
	health_hits_free(e->hits, e->n_hits);
	free(e->hit_since);
	free(e->breaker_reason);
	free(e->action_message);
	free(e->fence_message);
	free(e->decision_text);
	memset(e, 0, sizeof(*e));
}
