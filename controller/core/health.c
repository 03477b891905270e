/*
 * Health signals: turns pods, nodes, ResourceClaims and ResourceSlices into
 * the list of (signal, resource, device) a pod is bound to that look
 * unhealthy, with the monotonic time each was first seen.  See health.h.
 */
#include "health.h"

#include <string.h>

#include "health_int.h"
#include "kc_util.h"

/* ---- signals and hits ---- */

static const char *const signal_names[HEALTH_SIGNAL_COUNT] = {
    [HEALTH_POD_RESOURCE] = "PodResourceHealth", [HEALTH_NODE_CONDITION] = "NodeCondition",
    [HEALTH_ALLOC_DROP] = "AllocatableDrop",	 [HEALTH_EXIT_CODE] = "ExitCode",
    [HEALTH_DRA_TAINT] = "DRADeviceTaint",	 [HEALTH_DRA_CONDITION] = "DRADeviceCondition",
};

const char *health_signal_name(enum health_signal s)
{
	return (unsigned)s < HEALTH_SIGNAL_COUNT ? signal_names[s] : "Unknown";
}

uint64_t health_hit_due(const struct health_hit *h)
{
	uint64_t due = h->first_seen_ms + h->for_ms;

	return due < h->first_seen_ms ? UINT64_MAX : due;
}

void health_hits_free(struct health_hit *hits, size_t n)
{
	if (!hits)
		return;
	for (size_t i = 0; i < n; i++) {
		free(hits[i].resource);
		free(hits[i].device);
		free(hits[i].state);
		free(hits[i].detail);
	}
	free(hits);
}

const char *health_status_word(enum kc_cond_status s)
{
	switch (s) {
	case KC_COND_TRUE:
		return "True";
	case KC_COND_FALSE:
		return "False";
	default:
		return "Unknown";
	}
}

/* ---- per-node state ---- */

static void conds_free(struct node_cond *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].key);
		free(c[i].message);
		for (size_t j = 0; j < c[i].n_ids; j++)
			free(c[i].ids[j]);
		free(c[i].ids);
		free(c[i].id_first_seen);
	}
	free(c);
}

static void drops_free(struct node_drop *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].resource);
	free(d);
}

/* The nodes map's value destructor. */
static void hnode_free(void *value)
{
	struct hnode *n = value;

	conds_free(n->conds, n->n_conds);
	drops_free(n->drops, n->n_drops);
	for (size_t i = 0; i < n->n_ev; i++)
		free(n->ev[i].key);
	free(n->ev);
	free(n->name);
	free(n);
}

/* The slices map's value destructor. */
static void hslice_free(void *value)
{
	struct hslice *sl = value;

	free(sl->node);
	free(sl);
}

static void dtaint_done(struct dtaint *t)
{
	free(t->key);
	free(t->value);
	free(t->effect);
	free(t->desc);
}

static void dtaints_free(struct dtaint *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dtaint_done(&t[i]);
	free(t);
}

/* The taints map's value destructor. */
static void htaint_free(void *value)
{
	struct htaint *t = value;

	free(t->slice);
	dtaints_free(t->t, t->n);
	free(t);
}

/* The rules map's value destructor. */
static void hrule_free(void *value)
{
	struct hrule *r = value;

	free(r->driver);
	free(r->pool);
	free(r->device);
	dtaint_done(&r->taint);
	free(r);
}

struct health *health_new(void)
{
	struct health *h = kc_xcalloc(1, sizeof(*h));

	strmap_init(&h->nodes, hnode_free);
	strmap_init(&h->taints, htaint_free);
	strmap_init(&h->slices, hslice_free);
	strmap_init(&h->rules, hrule_free);
	h->next_expiry = UINT64_MAX;
	return h;
}

struct health *health_free(struct health *h)
{
	if (!h)
		return NULL;
	strmap_done(&h->nodes);
	strmap_done(&h->taints);
	strmap_done(&h->slices);
	strmap_done(&h->rules);
	free(h);
	return NULL;
}

/*
 * Whether the breaker counts the node as unhealthy: a listed condition that
 * applies to its devices, any device resource short of its capacity (whatever
 * the allocatableDrop switch says: a plugin that lowers allocatable has seen
 * a device fail), or a device that pods reported unhealthy and that has not
 * recovered (remembered for a while after its pods went away).
 */
static bool node_unhealthy(const struct hnode *n)
{
	for (size_t i = 0; i < n->n_conds; i++)
		if (n->conds[i].on_capacity || (n->conds[i].on_slices && n->slice_devices))
			return true;
	return n->short_alloc || n->n_drops > 0 || n->n_ev > 0;
}

/* Keeps the breaker counters in step with one node, and drops an entry that holds nothing. */
static void node_recount(struct health *h, struct hnode *n)
{
	bool unhealthy = node_unhealthy(n);
	bool device = n->device || n->slice_devices > 0 || unhealthy;
	bool keep = device || n->n_conds > 0 || n->n_drops > 0;

	if (device != n->counted_device) {
		if (device)
			h->device_nodes++;
		else
			h->device_nodes--;
		n->counted_device = device;
	}
	if (unhealthy != n->counted_unhealthy) {
		if (unhealthy)
			h->unhealthy_nodes++;
		else
			h->unhealthy_nodes--;
		n->counted_unhealthy = unhealthy;
	}
	if (!keep)
		strmap_remove(&h->nodes, n->name);
}

static struct hnode *node_get_or_add(struct health *h, const char *name)
{
	struct hnode *n = strmap_get(&h->nodes, name);

	if (!n) {
		n = kc_xcalloc(1, sizeof(*n));
		n->name = kc_xstrdup(name);
		strmap_put(&h->nodes, name, n);
	}
	return n;
}

/*
 * Extracts device IDs from a condition message: every match of the pattern,
 * or of its first parenthesized group when it has one.
 */
static void extract_ids(const regex_t *re, const char *msg, struct node_cond *c)
{
	const char *s = msg;
	regmatch_t m[2];
	int flags = 0;

	while (c->n_ids < MAX_COND_IDS && regexec(re, s, 2, m, flags) == 0) {
		int g = (re->re_nsub >= 1 && m[1].rm_so >= 0) ? 1 : 0;

		if (m[g].rm_eo > m[g].rm_so) {
			c->ids = kc_xrealloc(c->ids, (c->n_ids + 1) * sizeof(*c->ids));
			c->id_first_seen = kc_xrealloc(c->id_first_seen, (c->n_ids + 1) * sizeof(*c->id_first_seen));
			c->id_first_seen[c->n_ids] = c->first_seen;
			c->ids[c->n_ids++] = kc_xstrndup(s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
		}
		if (m[0].rm_eo == m[0].rm_so) {
			if (!s[m[0].rm_eo])
				break;
			s += m[0].rm_eo + 1;
		} else {
			s += m[0].rm_eo;
		}
		flags = REG_NOTBOL;
	}
}

/*
 * A condition that still holds keeps its first-seen time, and so does each
 * device ID its message still names; an ID named for the first time starts
 * its own debounce now (extract_ids set it to the new observation's time).
 */
static void cond_carry_over(struct node_cond *c, const struct node_cond *old)
{
	c->first_seen = old->first_seen;
	for (size_t i = 0; i < c->n_ids; i++)
		for (size_t j = 0; j < old->n_ids; j++)
			if (strcmp(c->ids[i], old->ids[j]) == 0) {
				c->id_first_seen[i] = old->id_first_seen[j];
				break;
			}
}

static int64_t quantity(const struct kc_quantity *q, uint32_t n, const char *name, bool *found)
{
	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(q[i].name, name) == 0) {
			if (found)
				*found = true;
			return q[i].value;
		}
	}
	if (found)
		*found = false;
	return 0;
}

static bool str_in(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool conds_equal(const struct node_cond *a, size_t na, const struct node_cond *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].key, b[i].key) != 0 || a[i].index != b[i].index || a[i].n_ids != b[i].n_ids)
			return false;
		for (size_t j = 0; j < a[i].n_ids; j++)
			if (strcmp(a[i].ids[j], b[i].ids[j]) != 0)
				return false;
	}
	return true;
}

static bool drops_equal(const struct node_drop *a, size_t na, const struct node_drop *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].resource, b[i].resource) != 0)
			return false;
	return true;
}

/* Where a listed condition counts for the breaker on this node (see struct node_cond). */
static void cond_scope(const struct policy *p, const struct policy_node_condition *pc, const struct kc_node *node,
		       bool device, struct node_cond *c)
{
	if (!pc->n_resources) {
		c->on_capacity = device;
		c->on_slices = p->dra;
		return;
	}
	for (size_t i = 0; i < pc->n_resources; i++) {
		const char *r = pc->resources[i];

		if (strncmp(r, "claim:", 6) == 0)
			c->on_slices = p->dra;
		else if (policy_is_device_resource(p, r) && quantity(node->capacity, node->n_capacity, r, NULL) > 0)
			c->on_capacity = true;
	}
}

/* Whether any device resource of the node has less allocatable than capacity. */
static bool short_alloc(const struct policy *p, const struct kc_node *node)
{
	for (uint32_t i = 0; i < node->n_capacity; i++) {
		const struct kc_quantity *q = &node->capacity[i];

		if (q->value > 0 && policy_is_device_resource(p, q->name) &&
		    quantity(node->allocatable, node->n_allocatable, q->name, NULL) < q->value)
			return true;
	}
	return false;
}

bool health_node_update(struct health *h, const struct policy *p, const struct kc_node *node, uint64_t now_ms)
{
	const char *name = node->meta.name;
	struct hnode *n = strmap_get(&h->nodes, name);
	struct node_cond *conds = NULL;
	struct node_drop *drops = NULL;
	size_t n_conds = 0, n_drops = 0;
	bool device = false, changed;

	for (uint32_t i = 0; i < node->n_capacity; i++)
		if (node->capacity[i].value > 0 && policy_is_device_resource(p, node->capacity[i].name))
			device = true;

	for (size_t i = 0; i < p->n_node_conditions; i++) {
		const struct policy_node_condition *pc = &p->node_conditions[i];

		for (uint32_t j = 0; j < node->n_conditions; j++) {
			const struct kc_condition *nc = &node->conditions[j];
			struct node_cond *c;

			if (strcmp(nc->type, pc->type) != 0 || nc->status != pc->status)
				continue;
			conds = kc_xrealloc(conds, (n_conds + 1) * sizeof(*conds));
			c = &conds[n_conds++];
			memset(c, 0, sizeof(*c));
			c->key = kc_xasprintf("%s=%s", pc->type, health_status_word(pc->status));
			c->index = i;
			c->first_seen = now_ms;
			c->message = kc_xstrdup(nc->message);
			if (pc->device_id_pattern)
				extract_ids(&pc->device_id_regex, nc->message, c);
			cond_scope(p, pc, node, device, c);
			for (size_t k = 0; n && k < n->n_conds; k++)
				if (strcmp(n->conds[k].key, c->key) == 0) {
					cond_carry_over(c, &n->conds[k]);
					break;
				}
			break;
		}
	}

	if (p->alloc_drop_enabled) {
		for (uint32_t i = 0; i < node->n_capacity; i++) {
			const struct kc_quantity *q = &node->capacity[i];
			int64_t alloc;
			struct node_drop *d;

			if (!policy_is_device_resource(p, q->name))
				continue;
			if (p->n_alloc_drop_resources &&
			    !str_in(p->alloc_drop_resources, p->n_alloc_drop_resources, q->name))
				continue;
			alloc = quantity(node->allocatable, node->n_allocatable, q->name, NULL);
			if (q->value <= alloc)
				continue;
			drops = kc_xrealloc(drops, (n_drops + 1) * sizeof(*drops));
			d = &drops[n_drops++];
			d->resource = kc_xstrdup(q->name);
			d->first_seen = now_ms;
			d->capacity = q->value;
			d->allocatable = alloc;
			for (size_t k = 0; n && k < n->n_drops; k++)
				if (strcmp(n->drops[k].resource, d->resource) == 0) {
					d->first_seen = n->drops[k].first_seen;
					break;
				}
		}
	}

	if (!n) {
		if (!device && !n_conds && !n_drops)
			return false;
		n = node_get_or_add(h, name);
	}
	changed = !conds_equal(n->conds, n->n_conds, conds, n_conds) ||
		  !drops_equal(n->drops, n->n_drops, drops, n_drops);
	/* A message change alone matters only when IDs come from it (compared above). */
	conds_free(n->conds, n->n_conds);
	drops_free(n->drops, n->n_drops);
	n->conds = conds;
	n->n_conds = n_conds;
	n->drops = drops;
	n->n_drops = n_drops;
	n->device = device;
	n->short_alloc = short_alloc(p, node);
	n->gen = h->gen;
	node_recount(h, n);
	return changed;
}

bool health_node_remove(struct health *h, const char *name)
{
	struct hnode *n = strmap_get(&h->nodes, name);
	bool had;

	if (!n)
		return false;
	had = n->n_conds > 0 || n->n_drops > 0;
	conds_free(n->conds, n->n_conds);
	drops_free(n->drops, n->n_drops);
	n->conds = NULL;
	n->drops = NULL;
	n->n_conds = n->n_drops = 0;
	n->device = false;
	n->short_alloc = false;
	/* Its slices and the devices pods reported go their own way (and expire). */
	node_recount(h, n);
	return had;
}

/* ---- the circuit breaker's view ---- */

static struct evidence *evidence_find(const struct hnode *n, const char *key)
{
	for (size_t i = 0; i < n->n_ev; i++)
		if (strcmp(n->ev[i].key, key) == 0)
			return &n->ev[i];
	return NULL;
}

static void evidence_remove(struct hnode *n, struct evidence *e)
{
	free(e->key);
	*e = n->ev[--n->n_ev];
}

void health_evidence_add(struct health *h, const char *node, const char *resource, const char *device)
{
	char *key;
	struct hnode *n;
	struct evidence *e;

	if (!node || !*node)
		return;
	n = node_get_or_add(h, node);
	key = kc_xasprintf("%s\037%s", resource, device);
	e = evidence_find(n, key);
	if (!e) {
		n->ev = kc_xrealloc(n->ev, (n->n_ev + 1) * sizeof(*n->ev));
		e = &n->ev[n->n_ev++];
		memset(e, 0, sizeof(*e));
		e->key = key;
	} else {
		free(key);
	}
	e->pods++;
	e->recovered = false;
	node_recount(h, n);
}

bool health_node_has_signal(const struct health *h, const char *node)
{
	const struct hnode *n = strmap_get(&h->nodes, node);

	return n && (n->n_conds || n->n_drops);
}

bool health_node_unhealthy(const struct health *h, const char *node)
{
	const struct hnode *n = strmap_get(&h->nodes, node);

	return n && n->counted_unhealthy;
}

void health_evidence_drop(struct health *h, const char *node, const char *resource, const char *device,
			  bool recovered, uint64_t now_ms, uint64_t memory_ms)
{
	uint64_t until_ms = now_ms + memory_ms < now_ms ? UINT64_MAX : now_ms + memory_ms;
	char *key;
	struct hnode *n;
	struct evidence *e;

	if (!node || !*node || !(n = strmap_get(&h->nodes, node)))
		return;
	key = kc_xasprintf("%s\037%s", resource, device);
	e = evidence_find(n, key);
	free(key);
	if (!e)
		return;
	if (e->pods)
		e->pods--;
	if (recovered)
		e->recovered = true;
	else if (until_ms > e->until)
		e->until = until_ms;
	if (!e->pods) {
		if (e->recovered || e->until <= now_ms)
			evidence_remove(n, e);
		else if (e->until < h->next_expiry)
			h->next_expiry = e->until;
	}
	node_recount(h, n);
}

struct expire_ctx {
	struct health *h;
	uint64_t now;
	uint64_t next;
	char **nodes;
	size_t n;
};

static int collect_expiring(const char *key, void *value, void *userdata)
{
	struct expire_ctx *x = userdata;
	struct hnode *n = value;
	bool expired = false;

	for (size_t i = 0; i < n->n_ev; i++) {
		if (n->ev[i].pods)
			continue;
		if (n->ev[i].until <= x->now)
			expired = true;
		else if (n->ev[i].until < x->next)
			x->next = n->ev[i].until;
	}
	if (expired) {
		x->nodes = kc_xrealloc(x->nodes, (x->n + 1) * sizeof(*x->nodes));
		x->nodes[x->n++] = kc_xstrdup(key);
	}
	return 0;
}

/* Forgets remembered devices whose memory ran out by now. */
static void expire(struct health *h, uint64_t now_ms)
{
	struct expire_ctx x = {h, now_ms, UINT64_MAX, NULL, 0};

	if (now_ms < h->next_expiry)
		return;
	strmap_foreach(&h->nodes, collect_expiring, &x);
	for (size_t i = 0; i < x.n; i++) {
		struct hnode *n = strmap_get(&h->nodes, x.nodes[i]);

		for (size_t j = n->n_ev; j-- > 0;)
			if (!n->ev[j].pods && n->ev[j].until <= now_ms)
				evidence_remove(n, &n->ev[j]);
		node_recount(h, n);
		free(x.nodes[i]);
	}
	free(x.nodes);
	h->next_expiry = x.next;
}

void health_breaker_counts(struct health *h, uint64_t now_ms, uint32_t *ret_device_nodes,
			   uint32_t *ret_unhealthy_nodes)
{
	expire(h, now_ms);
	*ret_device_nodes = h->device_nodes;
	*ret_unhealthy_nodes = h->unhealthy_nodes;
}

uint64_t health_breaker_wake(const struct health *h)
{
	return h->next_expiry;
}

/* Moves a slice's devices to its (new) node; 0 devices forgets the slice. */
static void slice_account(struct health *h, const char *name, const char *node, uint32_t devices)
{
	struct hslice *sl = strmap_get(&h->slices, name);
	struct hnode *n;

	if (sl && (n = strmap_get(&h->nodes, sl->node))) {
		n->slice_devices -= sl->devices < n->slice_devices ? sl->devices : n->slice_devices;
		node_recount(h, n);
	}
	if (!devices || !*node) {
		if (sl)
			strmap_remove(&h->slices, name);
		return;
	}
	if (!sl) {
		sl = kc_xcalloc(1, sizeof(*sl));
		strmap_put(&h->slices, name, sl);
	}
	free(sl->node);
	sl->node = kc_xstrdup(node);
	sl->devices = devices;
	sl->gen = h->gen;
	n = node_get_or_add(h, node);
	n->slice_devices += devices;
	node_recount(h, n);
}

/* ---- DRA device taints ---- */

static char *device_key(const char *driver, const char *pool, const char *device)
{
	return kc_xasprintf("%s\037%s\037%s", driver, pool, device);
}

static bool effect_listed(const struct policy *p, const char *effect)
{
	return p->dra && p->dra_taints_enabled && str_in(p->dra_taint_effects, p->n_dra_taint_effects, effect);
}

static bool same_taint(const struct dtaint *a, const struct kc_taint *b)
{
	return strcmp(a->key, b->key) == 0 && strcmp(a->value, b->value) == 0 && strcmp(a->effect, b->effect) == 0 &&
	       a->time_added == b->time_added;
}

/*
 * A copy of t; first_seen is kept from the taint of the same key and effect
 * in prev[0..n_prev) (a new value or timeAdded updates that taint: the device
 * stayed tainted), else now.
 */
static void dtaint_set(struct dtaint *d, const struct kc_taint *t, const struct dtaint *prev, size_t n_prev,
		       uint64_t now_ms)
{
	d->first_seen = now_ms;
	for (size_t i = 0; i < n_prev; i++)
		if (strcmp(prev[i].key, t->key) == 0 && strcmp(prev[i].effect, t->effect) == 0) {
			d->first_seen = prev[i].first_seen;
			break;
		}
	d->key = kc_xstrdup(t->key);
	d->value = kc_xstrdup(t->value);
	d->effect = kc_xstrdup(t->effect);
	d->desc = kc_xasprintf("%s%s%s:%s", t->key, *t->value ? "=" : "", t->value, t->effect);
	d->time_added = t->time_added;
}

/* Whether the device's listed taints are those of e (in any order). */
static bool same_taints(const struct htaint *e, const struct kc_slice_device *d, const struct policy *p,
			size_t n_listed)
{
	if (e->n != n_listed)
		return false;
	for (uint32_t i = 0; i < d->n_taints; i++) {
		size_t k;

		if (!effect_listed(p, d->taints[i].effect))
			continue;
		for (k = 0; k < e->n && !same_taint(&e->t[k], &d->taints[i]); k++)
			;
		if (k == e->n)
			return false;
	}
	return true;
}

bool health_slice_update(struct health *h, const struct policy *p, const struct kc_resource_slice *slice,
			 const struct kc_resource_slice *old, uint64_t now_ms)
{
	uint64_t touch = ++h->touch;
	bool changed = false;

	/* A node whose slices publish devices is a device node (DRA-only clusters). */
	if (slice)
		slice_account(h, slice->meta.name, slice->node_name, p->dra ? slice->n_devices : 0);
	else if (old)
		slice_account(h, old->meta.name, "", 0);

	for (uint32_t i = 0; slice && i < slice->n_devices; i++) {
		const struct kc_slice_device *d = &slice->devices[i];
		struct dtaint *t;
		size_t n = 0;
		char *key;
		struct htaint *e;

		for (uint32_t k = 0; k < d->n_taints; k++)
			n += effect_listed(p, d->taints[k].effect);
		if (!n)
			continue;
		key = device_key(slice->driver, slice->pool, d->name);
		e = strmap_get(&h->taints, key);
		if (!e) {
			e = kc_xcalloc(1, sizeof(*e));
			strmap_put(&h->taints, key, e);
			changed = true;
		} else if (!same_taints(e, d, p, n)) {
			changed = true;
		}
		/* Every listed taint, each with its own first-seen time: a claim may tolerate some of them. */
		t = kc_xcalloc(n, sizeof(*t));
		n = 0;
		for (uint32_t k = 0; k < d->n_taints; k++)
			if (effect_listed(p, d->taints[k].effect))
				dtaint_set(&t[n++], &d->taints[k], e->t, e->n, now_ms);
		dtaints_free(e->t, e->n);
		e->t = t;
		e->n = n;
		free(e->slice);
		e->slice = kc_xstrdup(slice->meta.name);
		e->touch = touch;
		e->gen = h->gen;
		free(key);
	}
	for (uint32_t i = 0; old && i < old->n_devices; i++) {
		char *key = device_key(old->driver, old->pool, old->devices[i].name);
		struct htaint *e = strmap_get(&h->taints, key);

		if (e && e->touch != touch && strcmp(e->slice, old->meta.name) == 0) {
			strmap_remove(&h->taints, key);
			changed = true;
		}
		free(key);
	}
	return changed;
}

const struct htaint *health_taint_get(const struct health *h, const char *driver, const char *pool,
				      const char *device)
{
	char *key = device_key(driver, pool, device);
	const struct htaint *e = strmap_get(&h->taints, key);

	free(key);
	return e;
}

/* ---- DeviceTaintRules of others ---- */

bool health_selects(const char *sel_driver, const char *sel_pool, const char *sel_device, const char *driver,
		    const char *pool, const char *device)
{
	return (!*sel_driver || strcmp(sel_driver, driver) == 0) && (!*sel_pool || strcmp(sel_pool, pool) == 0) &&
	       (!*sel_device || strcmp(sel_device, device) == 0);
}

bool health_rule_selects(const struct kc_device_taint_rule *rule, const char *driver, const char *pool,
			 const char *device)
{
	return rule->has_selector && health_selects(rule->driver, rule->pool, rule->device, driver, pool, device);
}

bool health_rule_update(struct health *h, const struct policy *p, const struct kc_device_taint_rule *rule,
			const struct kc_device_taint_rule *old, uint64_t now_ms)
{
	struct hrule *e;
	bool changed = false, moved;

	if (old && (!rule || strcmp(old->meta.name, rule->meta.name) != 0))
		changed = strmap_remove(&h->rules, old->meta.name);
	if (!rule)
		return changed;
	e = strmap_get(&h->rules, rule->meta.name);
	/* Without a selector a rule picks no device (the API's and kube-controller-manager's reading). */
	if (!rule->has_selector || !effect_listed(p, rule->taint.effect))
		return strmap_remove(&h->rules, rule->meta.name) || changed;
	if (!e) {
		e = kc_xcalloc(1, sizeof(*e));
		strmap_put(&h->rules, rule->meta.name, e);
		changed = true;
		moved = true;
	} else {
		moved = strcmp(e->driver, rule->driver) != 0 || strcmp(e->pool, rule->pool) != 0 ||
			strcmp(e->device, rule->device) != 0;
		changed = moved || !same_taint(&e->taint, &rule->taint);
	}
	{
		struct dtaint prev = e->taint;

		/* Another selector taints other devices: for them the taint is new. */
		dtaint_set(&e->taint, &rule->taint, &prev, moved ? 0 : 1, now_ms);
		dtaint_done(&prev);
	}
	free(e->driver);
	free(e->pool);
	free(e->device);
	e->driver = kc_xstrdup(rule->driver);
	e->pool = kc_xstrdup(rule->pool);
	e->device = kc_xstrdup(rule->device);
	e->gen = h->gen;
	return changed;
}

struct selects_ctx {
	const char *driver, *pool, *device;
	bool found;
};

static int rule_selects_cb(const char *key, void *value, void *userdata)
{
	const struct hrule *r = value;
	struct selects_ctx *c = userdata;

	(void)key;
	if (health_selects(r->driver, r->pool, r->device, c->driver, c->pool, c->device)) {
		c->found = true;
		return 1;
	}
	return 0;
}

bool health_device_tainted(const struct health *h, const char *driver, const char *pool, const char *device)
{
	struct selects_ctx c = {driver, pool, device, false};

	if (health_taint_get(h, driver, pool, device))
		return true;
	strmap_foreach(&h->rules, rule_selects_cb, &c);
	return c.found;
}

void health_set_wall_clock(struct health *h, int64_t wall_ms, uint64_t now_ms)
{
	h->wall_offset_ms = wall_ms - (int64_t)now_ms;
	h->wall_known = true;
}

void health_begin_generation(struct health *h)
{
	h->gen++;
}

/* Reads the generation of one kind of map value. */
typedef uint64_t (*gen_of_cb)(const void *value);

static uint64_t node_gen(const void *value)
{
	return ((const struct hnode *)value)->gen;
}

static uint64_t taint_gen(const void *value)
{
	return ((const struct htaint *)value)->gen;
}

static uint64_t slice_gen(const void *value)
{
	return ((const struct hslice *)value)->gen;
}

static uint64_t rule_gen(const void *value)
{
	return ((const struct hrule *)value)->gen;
}

struct sweep_ctx {
	uint64_t gen;
	gen_of_cb gen_of;
	char **keys;
	size_t n;
};

static int collect_stale(const char *key, void *value, void *userdata)
{
	struct sweep_ctx *s = userdata;

	if (s->gen_of(value) != s->gen) {
		s->keys = kc_xrealloc(s->keys, (s->n + 1) * sizeof(*s->keys));
		s->keys[s->n++] = kc_xstrdup(key);
	}
	return 0;
}

/* The keys of the map's values not updated in generation gen (a copy the caller frees). */
static size_t stale_keys(const struct strmap *m, uint64_t gen, gen_of_cb gen_of, char ***ret_keys)
{
	struct sweep_ctx s = {gen, gen_of, NULL, 0};

	strmap_foreach(m, collect_stale, &s);
	*ret_keys = s.keys;
	return s.n;
}

void health_sweep(struct health *h)
{
	char **keys;
	size_t n;

	n = stale_keys(&h->nodes, h->gen, node_gen, &keys);
	for (size_t i = 0; i < n; i++) {
		health_node_remove(h, keys[i]);
		free(keys[i]);
	}
	free(keys);
	n = stale_keys(&h->taints, h->gen, taint_gen, &keys);
	for (size_t i = 0; i < n; i++) {
		strmap_remove(&h->taints, keys[i]);
		free(keys[i]);
	}
	free(keys);
	n = stale_keys(&h->rules, h->gen, rule_gen, &keys);
	for (size_t i = 0; i < n; i++) {
		strmap_remove(&h->rules, keys[i]);
		free(keys[i]);
	}
	free(keys);
	n = stale_keys(&h->slices, h->gen, slice_gen, &keys);
	for (size_t i = 0; i < n; i++) {
		slice_account(h, keys[i], "", 0);
		free(keys[i]);
	}
	free(keys);
}
