/*
 * Health signals of one pod: which devices it holds (device-plugin
 * resources and DRA claims) and which of them a signal reports unhealthy,
 * from the pod's own status, its node's state and the DRA taints that
 * health.c keeps (ResourceSlice taints and DeviceTaintRules of others, each
 * weighed against the claim's tolerations).  See health.h.
 */
#include "health.h"

#include <string.h>

#include "health_int.h"
#include "kc_util.h"

/* ---- pods ---- */

/* A device resource a pod holds: a name, or "claim:<claim>" for a DRA claim. */
struct held {
	const char *name;
	const char *claim; /* non-NULL: the resource is "claim:<claim>" */
};

#define MAX_HELD 32

static bool held_has(const struct held *held, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!held[i].claim && strcmp(held[i].name, name) == 0)
			return true;
	return false;
}

static void add_quantities(const struct policy *p, const struct kc_quantity *q, uint32_t nq,
			   struct held *held, size_t *n)
{
	for (uint32_t i = 0; i < nq && *n < MAX_HELD; i++) {
		if (q[i].value <= 0 || held_has(held, *n, q[i].name) ||
		    !policy_is_device_resource(p, q[i].name))
			continue;
		held[*n].name = q[i].name;
		held[*n].claim = NULL;
		(*n)++;
	}
}

static size_t pod_held(const struct policy *p, const struct kc_pod *pod, struct held *held)
{
	size_t n = 0;

	/* A container's limits are in its requests (kc_objects.h). */
	for (uint32_t i = 0; i < pod->n_containers; i++)
		add_quantities(p, pod->containers[i].requests, pod->containers[i].n_requests, held, &n);
	for (uint32_t i = 0; p->dra && i < pod->n_claims && n < MAX_HELD; i++) {
		held[n].name = kc_pod_claims(pod)[i].name;
		held[n].claim = kc_pod_claims(pod)[i].name;
		n++;
	}
	return n;
}

bool health_pod_holds_device(const struct policy *p, const struct kc_pod *pod)
{
	struct held held[MAX_HELD];

	return pod_held(p, pod, held) > 0;
}

/* Whether a held resource matches a listed resource name ("claim:x" matches "claim:x" and "claim:x/req"). */
static bool held_matches(const struct held *hd, const char *listed)
{
	size_t n;

	if (!hd->claim)
		return strcmp(hd->name, listed) == 0;
	if (strncmp(listed, "claim:", 6) != 0)
		return false;
	n = strlen(hd->claim);
	return strncmp(listed + 6, hd->claim, n) == 0 && (listed[6 + n] == '\0' || listed[6 + n] == '/');
}

static char *held_name(const struct held *hd)
{
	return hd->claim ? kc_xasprintf("claim:%s", hd->claim) : kc_xstrdup(hd->name);
}

/* Whether an allocatedResourcesStatus name belongs to a listed resource set (empty = all device resources).
 */
static bool status_name_in(const struct policy *p, const char *name, char *const *list, size_t n)
{
	if (!policy_is_device_resource(p, name))
		return false;
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list[i]);

		if (strcmp(list[i], name) == 0 ||
		    (strncmp(list[i], "claim:", 6) == 0 && strncmp(name, list[i], l) == 0 && name[l] == '/'))
			return true;
	}
	return false;
}

struct hits {
	struct health_hit *v;
	size_t n;
	const struct health_hit *prev;
	size_t n_prev;
	uint64_t now;
};

/*
 * Adds a hit unless one with the same (signal, resource, device) exists.
 * first_seen 0 means "pod-level": carried over from the previous evaluation,
 * or now.  Takes ownership of detail.
 */
static void add_hit(struct hits *hs, enum health_signal sig, const char *resource, const char *device,
		    const char *state, char *detail, uint64_t first_seen, bool pod_level, uint64_t for_ms)
{
	struct health_hit *h;

	for (size_t i = 0; i < hs->n; i++) {
		if (hs->v[i].signal == sig && strcmp(hs->v[i].resource, resource) == 0 &&
		    strcmp(hs->v[i].device, device) == 0) {
			free(detail);
			return;
		}
	}
	if (pod_level) {
		first_seen = hs->now;
		for (size_t i = 0; i < hs->n_prev; i++) {
			const struct health_hit *p = &hs->prev[i];

			if (p->signal == sig && strcmp(p->resource, resource) == 0 &&
			    strcmp(p->device, device) == 0 && strcmp(p->state, state) == 0) {
				first_seen = p->first_seen_ms;
				break;
			}
		}
	}
	hs->v = kc_xrealloc(hs->v, (hs->n + 1) * sizeof(*hs->v));
	h = &hs->v[hs->n++];
	h->signal = sig;
	h->resource = kc_xstrdup(resource);
	h->device = kc_xstrdup(device);
	h->state = kc_xstrdup(state);
	h->detail = detail;
	h->first_seen_ms = first_seen;
	h->for_ms = for_ms;
}

static void eval_pod_health(const struct policy *p, const struct kc_pod *pod, struct hits *hs)
{
	if (!p->pod_health_enabled)
		return;
	for (uint32_t i = 0; i < pod->n_statuses; i++) {
		const struct kc_container_status *cs = &pod->statuses[i];

		for (uint32_t j = 0; j < cs->n_resources; j++) {
			const struct kc_resource_status *rs = &cs->resources[j];

			if (!policy_is_device_resource(p, rs->name))
				continue;
			/* A plainly Healthy device has no note (kc_objects.h). */
			for (uint32_t k = 0; k < rs->n_notes; k++) {
				const struct kc_device_note *d = &kc_rs_notes(rs)[k];
				char buf[KC_DEVID_BUF];
				const char *id = d->index < rs->n_devices ? kc_devid_str(&rs->ids[d->index], buf) : "";

				if (d->health == KC_HEALTH_UNHEALTHY)
					add_hit(hs, HEALTH_POD_RESOURCE, rs->name, id, "Unhealthy",
						kc_xstrdup(*d->message ? d->message : "reported Unhealthy"),
						0, true, p->pod_health_for_ms);
				else if (d->health == KC_HEALTH_UNKNOWN && p->pod_health_unknown_enabled)
					add_hit(hs, HEALTH_POD_RESOURCE, rs->name, id, "Unknown",
						kc_xstrdup(*d->message ? d->message : "reported Unknown"), 0,
						true, p->pod_health_unknown_for_ms);
			}
		}
	}
}

static void eval_node_conditions(const struct policy *p, const struct kc_pod *pod, const struct hnode *n,
				 const struct held *held, size_t n_held, struct hits *hs)
{
	for (size_t i = 0; n && i < n->n_conds; i++) {
		const struct node_cond *c = &n->conds[i];
		const struct policy_node_condition *pc;

		if (c->index >= p->n_node_conditions)
			continue;
		pc = &p->node_conditions[c->index];
		/*
		 * IDs from the message narrow the condition down to those devices,
		 * each compared whole and exactly (nvidia1 is not nvidia10).  A
		 * message the pattern finds no ID in says nothing about which
		 * device failed, so it counts for the whole node, as without a
		 * pattern.
		 */
		if (pc->device_id_pattern && c->n_ids > 0) {
			for (uint32_t s = 0; s < pod->n_statuses; s++) {
				const struct kc_container_status *cs = &pod->statuses[s];

				for (uint32_t r = 0; r < cs->n_resources; r++) {
					const struct kc_resource_status *rs = &cs->resources[r];

					if (!status_name_in(p, rs->name, pc->resources, pc->n_resources))
						continue;
					for (uint32_t d = 0; d < rs->n_devices; d++)
						for (size_t k = 0; k < c->n_ids; k++)
							if (kc_devid_eq_str(&rs->ids[d], c->ids[k])) {
								add_hit(hs, HEALTH_NODE_CONDITION, rs->name,
									c->ids[k], "unhealthy",
									kc_xasprintf("%s: %s", c->key,
										     c->message),
									c->id_first_seen[k], false, pc->for_ms);
								break;
							}
				}
			}
			continue;
		}
		for (size_t k = 0; k < n_held; k++) {
			bool match = !pc->n_resources;
			char *res;

			for (size_t r = 0; !match && r < pc->n_resources; r++)
				match = held_matches(&held[k], pc->resources[r]);
			if (!match)
				continue;
			res = held_name(&held[k]);
			add_hit(hs, HEALTH_NODE_CONDITION, res, "", "unhealthy",
				kc_xasprintf("%s%s%s", c->key, *c->message ? ": " : "", c->message),
				c->first_seen, false, pc->for_ms);
			free(res);
			break; /* one hit per condition: the action names the first matching resource */
		}
	}
}

static void eval_alloc_drop(const struct policy *p, const struct kc_pod *pod, const struct hnode *n,
			    const struct held *held, size_t n_held, struct hits *hs)
{
	for (size_t i = 0; n && i < n->n_drops; i++) {
		const struct node_drop *d = &n->drops[i];

		if (!held_has(held, n_held, d->resource))
			continue;
		add_hit(hs, HEALTH_ALLOC_DROP, d->resource, "", "unhealthy",
			kc_xasprintf("node %s allocatable %lld < capacity %lld", pod->node_name,
				     (long long)d->allocatable, (long long)d->capacity),
			d->first_seen, false, p->alloc_drop_for_ms);
	}
}

/*
 * The device resource a container holds, or NULL: a device-plugin resource
 * it requests, a DRA claim it uses (resources.claims, as "claim:<name>"), or
 * one its allocatedResourcesStatus lists.  The caller frees it.
 */
static char *container_device(const struct policy *p, const struct kc_pod *pod,
			      const struct kc_container_status *cs)
{
	for (uint32_t i = 0; i < pod->n_containers; i++) {
		const struct kc_container *c = &pod->containers[i];

		if (c->init != cs->init || strcmp(c->name, cs->name) != 0)
			continue;
		for (uint32_t j = 0; j < c->n_requests; j++)
			if (c->requests[j].value > 0 && policy_is_device_resource(p, c->requests[j].name))
				return kc_xstrdup(c->requests[j].name);
		if (*kc_container_claim(pod, c)) {
			char *claim = kc_xasprintf("claim:%s", kc_container_claim(pod, c));

			if (policy_is_device_resource(p, claim))
				return claim;
			free(claim);
		}
	}
	for (uint32_t j = 0; j < cs->n_resources; j++)
		if (cs->resources[j].n_devices && policy_is_device_resource(p, cs->resources[j].name))
			return kc_xstrdup(cs->resources[j].name);
	return NULL;
}

static bool code_listed(const struct policy *p, int32_t code)
{
	for (size_t i = 0; i < p->n_exit_codes; i++)
		if (p->exit_codes[i] == code)
			return true;
	return false;
}

/*
 * The exitCodes signal holds while the container is not running and ready,
 * or while it is crash-looping (waiting in CrashLoopBackOff, or terminated
 * with a listed code).  A container that runs and is ready again clears it,
 * so `for:` is a real debounce: a crash loop that stops before it ends is no
 * reason to evict.
 */
static bool exit_signal_holds(const struct policy *p, const struct kc_container_status *cs)
{
	bool crash_looping =
	    (cs->state == KC_STATE_WAITING && cs->crash_loop_backoff) ||
	    (cs->state == KC_STATE_TERMINATED && cs->has_exit_code && code_listed(p, cs->exit_code));

	return crash_looping || !(cs->state == KC_STATE_RUNNING && cs->ready);
}

static void eval_exit_codes(const struct policy *p, const struct kc_pod *pod, struct hits *hs)
{
	if (!p->exit_codes_enabled)
		return;
	for (uint32_t i = 0; i < pod->n_statuses; i++) {
		const struct kc_container_status *cs = &pod->statuses[i];
		char *res;
		int32_t code;

		if (cs->restart_count < p->exit_min_restarts || !exit_signal_holds(p, cs))
			continue;
		if (cs->has_exit_code && code_listed(p, cs->exit_code))
			code = cs->exit_code;
		else if (cs->has_last_exit_code && code_listed(p, cs->last_exit_code))
			code = cs->last_exit_code;
		else
			continue;
		res = container_device(p, pod, cs);
		if (!res)
			continue;
		add_hit(hs, HEALTH_EXIT_CODE, res, "", "failing",
			kc_xasprintf("container %s exited with code %d after %d restarts", cs->name, code,
				     cs->restart_count),
			0, true, p->exit_for_ms);
		free(res);
	}
}

static bool cond_listed(const struct policy *p, const struct kc_condition *c)
{
	for (size_t i = 0; i < p->n_dra_conditions; i++)
		if (strcmp(p->dra_conditions[i].type, c->type) == 0 &&
		    p->dra_conditions[i].status == c->status)
			return true;
	return false;
}

/* tolerationSeconds beyond this (a century) count as this: no overflow in milliseconds. */
#define MAX_TOLERATION_S (100LL * 365 * 24 * 3600)

/* Whether the toleration matches the taint, as the API defines it (resourceclaim.ToleratesTaint). */
static bool tolerates(const struct kc_toleration *tol, const struct dtaint *t)
{
	if (*tol->effect && strcmp(tol->effect, t->effect) != 0)
		return false;
	if (*tol->key && strcmp(tol->key, t->key) != 0)
		return false;
	switch (tol->op) {
	case KC_TOLERATION_EQUAL:
		return strcmp(tol->value, t->value) == 0;
	case KC_TOLERATION_EXISTS:
		return true;
	default:
		return false;
	}
}

/* The monotonic time a toleration of secs seconds ends: counted from the taint's timeAdded when the
 * wall clock is known, else from when we first saw the taint. */
static uint64_t toleration_end(const struct health *h, const struct dtaint *t, int64_t secs)
{
	int64_t end;

	if (!h->wall_known || t->time_added <= 0)
		return t->first_seen + (uint64_t)secs * 1000;
	end = (t->time_added + secs) * 1000 - h->wall_offset_ms;
	return end < 0 ? 0 : (uint64_t)end;
}

/*
 * Whether a taint holds for a device the claim was allocated with those
 * tolerations (results[].tolerations), and from when (*ret_since,
 * monotonic).  As kube-controller-manager's device taint eviction: for a
 * NoExecute taint only tolerations of effect NoExecute count; one without
 * tolerationSeconds tolerates it for ever, else the shortest matching
 * tolerationSeconds (negative = 0) after the taint's timeAdded ends the
 * tolerance.  Other effects evict nobody in the cluster, and the API ignores
 * tolerationSeconds for them: any matching toleration tolerates them for ever.
 */
static bool taint_holds(const struct health *h, const struct kc_device_result *r, const struct dtaint *t,
			uint64_t *ret_since)
{
	bool noexec = strcmp(t->effect, "NoExecute") == 0, limited = false;
	int64_t secs = MAX_TOLERATION_S;

	for (uint32_t i = 0; i < r->n_tolerations; i++) {
		const struct kc_toleration *tol = &r->tolerations[i];

		if ((noexec && strcmp(tol->effect, "NoExecute") != 0) || !tolerates(tol, t))
			continue;
		if (!noexec || !tol->has_seconds)
			return false;
		limited = true;
		if (tol->seconds < secs)
			secs = tol->seconds < 0 ? 0 : tol->seconds;
	}
	*ret_since = t->first_seen;
	if (limited) {
		uint64_t end = toleration_end(h, t, secs);

		if (end > *ret_since)
			*ret_since = end;
	}
	return true;
}

/* The taint of a device that holds first for one allocation result, from its slice or a rule. */
struct taint_pick {
	const struct health *h;
	const struct kc_device_result *r;
	const struct dtaint *t;
	const char *rule; /* the DeviceTaintRule's name, NULL for a slice taint */
	uint64_t since;
};

static void consider(struct taint_pick *pk, const struct dtaint *t, const char *rule)
{
	uint64_t since;

	if (taint_holds(pk->h, pk->r, t, &since) && (!pk->t || since < pk->since)) {
		pk->t = t;
		pk->rule = rule;
		pk->since = since;
	}
}

static int rule_pick_cb(const char *name, void *value, void *userdata)
{
	const struct hrule *rule = value;
	struct taint_pick *pk = userdata;

	if (health_selects(rule->driver, rule->pool, rule->device, pk->r->driver, pk->r->pool, pk->r->device))
		consider(pk, &rule->taint, name);
	return 0;
}

static void eval_dra(const struct health *h, const struct policy *p, const struct kc_pod *pod,
		     const struct kc_store *claims, struct hits *hs)
{
	if (!p->dra || !claims || (!p->dra_taints_enabled && !p->dra_conditions_enabled))
		return;
	for (uint32_t i = 0; i < pod->n_claims; i++) {
		const struct kc_claim_ref *ref = &kc_pod_claims(pod)[i];
		const struct kc_resource_claim *rc;

		if (!*ref->claim_name)
			continue;
		rc = kc_store_get(claims, pod->meta.ns, ref->claim_name);
		if (!rc || !rc->allocated)
			continue;
		for (uint32_t j = 0; j < rc->n_results; j++) {
			const struct kc_device_result *r = &rc->results[j];
			char *res = NULL, *dev = NULL;
			struct taint_pick pk = {h, r, NULL, NULL, 0};
			const struct htaint *st =
			    p->dra_taints_enabled ? health_taint_get(h, r->driver, r->pool, r->device) : NULL;

			for (size_t k = 0; st && k < st->n; k++)
				consider(&pk, &st->t[k], NULL);
			if (p->dra_taints_enabled)
				strmap_foreach(&h->rules, rule_pick_cb, &pk);
			if (pk.t) {
				res = kc_xasprintf("claim:%s/%s", ref->name, r->request);
				dev = kc_xasprintf("%s/%s/%s", r->driver, r->pool, r->device);
				/* The detail ends with the effect: quarantine_fence_for() reads it. */
				add_hit(hs, HEALTH_DRA_TAINT, res, dev, "tainted",
					pk.rule ? kc_xasprintf("DeviceTaintRule %s: taint %s", pk.rule, pk.t->desc)
						: kc_xasprintf("taint %s", pk.t->desc),
					pk.since, false, p->dra_taints_for_ms);
			}
			for (uint32_t k = 0; p->dra_conditions_enabled && k < rc->n_device_statuses; k++) {
				const struct kc_device_status *ds = &rc->device_statuses[k];

				if (strcmp(ds->driver, r->driver) != 0 || strcmp(ds->pool, r->pool) != 0 ||
				    strcmp(ds->device, r->device) != 0)
					continue;
				for (uint32_t c = 0; c < ds->n_conditions; c++) {
					const struct kc_condition *cond = &ds->conditions[c];

					if (!cond_listed(p, cond))
						continue;
					if (!res) {
						res = kc_xasprintf("claim:%s/%s", ref->name, r->request);
						dev = kc_xasprintf("%s/%s/%s", r->driver, r->pool, r->device);
					}
					add_hit(hs, HEALTH_DRA_CONDITION, res, dev, "unhealthy",
						kc_xasprintf("%s=%s%s%s", cond->type,
							     health_status_word(cond->status),
							     *cond->message ? ": " : "", cond->message),
						0, true, p->dra_conditions_for_ms);
					break;
				}
			}
			free(res);
			free(dev);
		}
	}
}

size_t health_pod_eval(const struct health *h, const struct policy *p, const struct kc_pod *pod,
		       const struct kc_store *claims, const struct health_hit *prev, size_t n_prev,
		       uint64_t now_ms, struct health_hit **ret_hits)
{
	struct hits hs = {.prev = prev, .n_prev = n_prev, .now = now_ms};
	struct held held[MAX_HELD];
	size_t n_held = pod_held(p, pod, held);
	const struct hnode *n = *pod->node_name ? strmap_get(&h->nodes, pod->node_name) : NULL;

	eval_pod_health(p, pod, &hs);
	if (n && n_held) {
		eval_node_conditions(p, pod, n, held, n_held, &hs);
		eval_alloc_drop(p, pod, n, held, n_held, &hs);
	} else if (n) {
		/* A pattern condition needs only allocatedResourcesStatus. */
		eval_node_conditions(p, pod, n, held, 0, &hs);
	}
	eval_exit_codes(p, pod, &hs);
	eval_dra(h, p, pod, claims, &hs);
	*ret_hits = hs.v;
	return hs.n;
}

static const char *health_word(enum kc_health h)
{
	return h == KC_HEALTH_HEALTHY	  ? "Healthy"
	       : h == KC_HEALTH_UNHEALTHY ? "Unhealthy"
	       : h == KC_HEALTH_UNKNOWN	  ? "Unknown"
					  : "";
}

/* The devices of one held DRA claim: its allocation results, or the claim itself while unallocated. */
static size_t claim_devices(const struct kc_pod *pod, const struct kc_store *claims, const char *claim,
			    health_device_cb cb, void *userdata)
{
	const struct kc_resource_claim *rc = NULL;
	size_t n = 0;

	for (uint32_t i = 0; i < pod->n_claims && !rc; i++)
		if (strcmp(kc_pod_claims(pod)[i].name, claim) == 0 && *kc_pod_claims(pod)[i].claim_name && claims)
			rc = kc_store_get(claims, pod->meta.ns, kc_pod_claims(pod)[i].claim_name);
	for (uint32_t j = 0; rc && rc->allocated && j < rc->n_results; j++) {
		const struct kc_device_result *r = &rc->results[j];
		char *res = kc_xasprintf("claim:%s/%s", claim, r->request);
		char *dev = kc_xasprintf("%s/%s/%s", r->driver, r->pool, r->device);

		cb(res, dev, "", userdata);
		free(res);
		free(dev);
		n++;
	}
	if (!n) {
		char *res = kc_xasprintf("claim:%s", claim);

		cb(res, "", "", userdata);
		free(res);
		n++;
	}
	return n;
}

size_t health_pod_devices(const struct policy *p, const struct kc_pod *pod, const struct kc_store *claims,
			  health_device_cb cb, void *userdata)
{
	struct held held[MAX_HELD];
	size_t n_held = pod_held(p, pod, held), n = 0;

	for (size_t i = 0; i < n_held; i++) {
		size_t before = n;

		if (held[i].claim) {
			n += claim_devices(pod, claims, held[i].claim, cb, userdata);
			continue;
		}
		for (uint32_t s = 0; s < pod->n_statuses; s++) {
			const struct kc_container_status *cs = &pod->statuses[s];

			for (uint32_t r = 0; r < cs->n_resources; r++) {
				if (strcmp(cs->resources[r].name, held[i].name) != 0)
					continue;
				for (uint32_t d = 0; d < cs->resources[r].n_devices; d++, n++) {
					char buf[KC_DEVID_BUF];

					cb(held[i].name, kc_devid_str(&cs->resources[r].ids[d], buf),
					   health_word(kc_device_health(&cs->resources[r], d, NULL)), userdata);
				}
			}
		}
		if (n == before) {
			cb(held[i].name, "", "", userdata);
			n++;
		}
	}
	return n;
}
