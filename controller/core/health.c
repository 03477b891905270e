/*
 * Health signals: turns pods, nodes, ResourceClaims and ResourceSlices into
 * the list of (signal, resource, device) a pod is bound to that look
 * unhealthy, with the monotonic time each was first seen.  See health.h.
 */
#include "health.h"

#include <string.h>

#include "kc_util.h"
#include "strmap.h"

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

static const char *status_word(enum kc_cond_status s)
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

struct htaint {
	char *slice; /* the ResourceSlice that reported it */
	char *desc;  /* "key=value:effect" */
	uint64_t first_seen;
	uint64_t touch;
	uint64_t gen;
};

struct health {
	struct strmap nodes;  /* name -> struct hnode */
	struct strmap taints; /* "driver\037pool\037device" -> struct htaint */
	struct strmap slices; /* slice name -> struct hslice */
	uint64_t next_expiry; /* no remembered evidence ends before this */
	uint64_t gen;
	uint64_t touch;
	uint32_t device_nodes;
	uint32_t unhealthy_nodes;
};

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

/* The taints map's value destructor. */
static void htaint_free(void *value)
{
	struct htaint *t = value;

	free(t->slice);
	free(t->desc);
	free(t);
}

struct health *health_new(void)
{
	struct health *h = kc_xcalloc(1, sizeof(*h));

	strmap_init(&h->nodes, hnode_free);
	strmap_init(&h->taints, htaint_free);
	strmap_init(&h->slices, hslice_free);
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
			c->key = kc_xasprintf("%s=%s", pc->type, status_word(pc->status));
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

static const struct kc_taint *listed_taint(const struct policy *p, const struct kc_slice_device *d)
{
	if (!p->dra || !p->dra_taints_enabled)
		return NULL;
	for (uint32_t i = 0; i < d->n_taints; i++)
		if (str_in(p->dra_taint_effects, p->n_dra_taint_effects, d->taints[i].effect))
			return &d->taints[i];
	return NULL;
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
		const struct kc_taint *t = listed_taint(p, d);
		char *key, *desc;
		struct htaint *e;

		if (!t)
			continue;
		key = device_key(slice->driver, slice->pool, d->name);
		desc = kc_xasprintf("%s%s%s:%s", t->key, *t->value ? "=" : "", t->value, t->effect);
		e = strmap_get(&h->taints, key);
		if (!e) {
			e = kc_xcalloc(1, sizeof(*e));
			e->first_seen = now_ms;
			strmap_put(&h->taints, key, e);
			changed = true;
		} else if (strcmp(e->desc, desc) != 0) {
			changed = true;
		}
		free(e->desc);
		e->desc = desc;
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

static const struct htaint *taint_get(const struct health *h, const char *driver, const char *pool,
				      const char *device)
{
	char *key = device_key(driver, pool, device);
	const struct htaint *e = strmap_get(&h->taints, key);

	free(key);
	return e;
}

bool health_device_tainted(const struct health *h, const char *driver, const char *pool, const char *device)
{
	return taint_get(h, driver, pool, device) != NULL;
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
	n = stale_keys(&h->slices, h->gen, slice_gen, &keys);
	for (size_t i = 0; i < n; i++) {
		slice_account(h, keys[i], "", 0);
		free(keys[i]);
	}
	free(keys);
}

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

	for (uint32_t i = 0; i < pod->n_containers; i++) {
		add_quantities(p, pod->containers[i].requests, pod->containers[i].n_requests, held, &n);
		add_quantities(p, pod->containers[i].limits, pod->containers[i].n_limits, held, &n);
	}
	for (uint32_t i = 0; p->dra && i < pod->n_claims && n < MAX_HELD; i++) {
		held[n].name = pod->claims[i].name;
		held[n].claim = pod->claims[i].name;
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
			for (uint32_t k = 0; k < rs->n_devices; k++) {
				const struct kc_device_health *d = &rs->devices[k];

				if (d->health == KC_HEALTH_UNHEALTHY)
					add_hit(hs, HEALTH_POD_RESOURCE, rs->name, d->resource_id,
						"Unhealthy",
						kc_xstrdup(*d->message ? d->message : "reported Unhealthy"),
						0, true, p->pod_health_for_ms);
				else if (d->health == KC_HEALTH_UNKNOWN && p->pod_health_unknown_enabled)
					add_hit(hs, HEALTH_POD_RESOURCE, rs->name, d->resource_id, "Unknown",
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
							if (strcmp(rs->devices[d].resource_id, c->ids[k]) == 0) {
								add_hit(hs, HEALTH_NODE_CONDITION, rs->name,
									rs->devices[d].resource_id,
									"unhealthy",
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
		for (uint32_t j = 0; j < c->n_limits; j++)
			if (c->limits[j].value > 0 && policy_is_device_resource(p, c->limits[j].name))
				return kc_xstrdup(c->limits[j].name);
		if (c->claim && *c->claim) {
			char *claim = kc_xasprintf("claim:%s", c->claim);

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
	    (cs->state == KC_STATE_WAITING && strcmp(cs->state_reason, "CrashLoopBackOff") == 0) ||
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

static void eval_dra(const struct health *h, const struct policy *p, const struct kc_pod *pod,
		     const struct kc_store *claims, struct hits *hs)
{
	if (!p->dra || !claims || (!p->dra_taints_enabled && !p->dra_conditions_enabled))
		return;
	for (uint32_t i = 0; i < pod->n_claims; i++) {
		const struct kc_claim_ref *ref = &pod->claims[i];
		const struct kc_resource_claim *rc;

		if (!*ref->claim_name)
			continue;
		rc = kc_store_get(claims, pod->meta.ns, ref->claim_name);
		if (!rc || !rc->allocated)
			continue;
		for (uint32_t j = 0; j < rc->n_results; j++) {
			const struct kc_device_result *r = &rc->results[j];
			char *res = NULL, *dev = NULL;
			const struct htaint *t =
			    p->dra_taints_enabled ? taint_get(h, r->driver, r->pool, r->device) : NULL;

			if (t) {
				res = kc_xasprintf("claim:%s/%s", ref->name, r->request);
				dev = kc_xasprintf("%s/%s/%s", r->driver, r->pool, r->device);
				add_hit(hs, HEALTH_DRA_TAINT, res, dev, "tainted",
					kc_xasprintf("taint %s", t->desc), t->first_seen, false,
					p->dra_taints_for_ms);
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
							     status_word(cond->status),
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
		if (strcmp(pod->claims[i].name, claim) == 0 && *pod->claims[i].claim_name && claims)
			rc = kc_store_get(claims, pod->meta.ns, pod->claims[i].claim_name);
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
				for (uint32_t d = 0; d < cs->resources[r].n_devices; d++, n++)
					cb(held[i].name, cs->resources[r].devices[d].resource_id,
					   health_word(cs->resources[r].devices[d].health), userdata);
			}
		}
		if (n == before) {
			cb(held[i].name, "", "", userdata);
			n++;
		}
	}
	return n;
}
