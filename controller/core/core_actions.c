/*
 * The core's action loop: which pod or fence is due next (filters, limits,
 * the breaker, quarantine first, the loop guard), the answers the shell
 * reports back, and the read-only views (stats, notices, a pod's verdict).
 * See core.h.
 */
#include "core.h"

#include <errno.h>
#include <string.h>

#include "core_int.h"
#include "evict_limits.h"
#include "kc_log.h"
#include "kc_util.h"
#include "requests.h"

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

	return pod && kc_uid_eq_str(&pod->meta.uid, r->uid) ? pod : NULL;
}

/* The controller ownerReference UID of the pod a record stands for, in buf or the pod; "" when none (or gone). */
static const char *owner_of(const struct core *c, const struct planner_pod *r, char buf[KC_UID_BUF])
{
	const struct kc_pod *pod = pod_cached(c, r);
	const struct kc_owner_ref *o = pod ? kc_meta_controller(&pod->meta) : NULL;

	return o ? kc_uid_str(&o->uid, buf) : "";
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
		core_push_notice(c, r, "Warning", "EvictionLoop",
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
		char owner_buf[KC_UID_BUF], const char **ret_owner)
{
	const struct health_hit *h = fence_hit(r, now_ms);
	char *unit = quarantine_unit_of(h, r->node);
	const char *owner = owner_of(c, r, owner_buf);
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
		core_push_notice(c, r, "Normal", "WouldTaint",
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
		core_push_notice(c, NULL, "Warning", "QuarantineCapReached",
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
	core_update_breaker(c, now_ms);
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
		char *unit, owner_buf[KC_UID_BUF];
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
		if ((rc = gate(c, r, dry, now_ms, &unit, owner_buf, &owner)) < 0) {
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
			core_drop_record(c, r, false, now_ms);
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
		core_drop_record(c, r, false, now_ms);
		return;
	}
	pod = pod_cached(c, r);
	if (!pod) {
		core_drop_record(c, r, false, now_ms);
		core_update_breaker(c, now_ms);
		return;
	}
	core_eval_pod(c, pod, now_ms);
	core_update_breaker(c, now_ms);
}

void core_fence_done(struct core *c, enum quarantine_kind kind, const char *unit, enum quarantine_result r,
		     uint64_t now_ms)
{
	uint64_t removes = quarantine_stats(c->qr)->removes;
	const char *node = quarantine_done(c->qr, kind, unit, r, now_ms);

	if (node && *node) {
		/* The pods that waited for this fence may go now. */
		char *n = kc_xstrdup(node);

		core_eval_node_pods(c, n, now_ms);
		free(n);
	}
	if (quarantine_stats(c->qr)->removes != removes)
		core_eval_all(c, now_ms); /* room under the cap: pods held by it get another look */
	else
		core_update_breaker(c, now_ms);
}

bool core_wants_rules(const struct core *c)
{
	return c->p->remediation_enabled && c->p->device_taint_rules && c->p->dra;
}

void core_rule_observed(struct core *c, const char *driver, const char *pool, const char *device,
			uint64_t now_ms)
{
	quarantine_observe_rule(c->qr, driver, pool, device, now_ms);
	core_update_breaker(c, now_ms);
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
	core_notice_clear(&c->cur);
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
