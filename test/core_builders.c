/*
 * Test builders and harness for the core's tests (see core_builders.h).
 */
#include "core_builders.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kc_util.h"

struct arena_block {
	struct arena_block *next;
	max_align_t align[];
};

static struct arena_block *arena;

static void *arena_alloc(size_t n)
{
	struct arena_block *b = kc_xcalloc(1, sizeof(*b) + n);

	b->next = arena;
	arena = b;
	return b->align;
}

void tb_reset(void)
{
	while (arena) {
		struct arena_block *next = arena->next;

		free(arena);
		arena = next;
	}
}

const char *tb_str(const char *s)
{
	char *d = arena_alloc(strlen(s) + 1);

	memcpy(d, s, strlen(s) + 1);
	return d;
}

const char *tb_fmt(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return tb_str(buf);
}

/* A copy of arr (n elements) with room for one more, zeroed, in the arena. */
static void *grow(const void *arr, uint32_t n, size_t size)
{
	void *d = arena_alloc((n + 1) * size);

	if (n)
		memcpy(d, arr, n * size);
	return d;
}

#define APPEND(arr, n) ((arr) = grow((arr), (n), sizeof(*(arr))), &(arr)[(n)++])

static void meta_init(struct kc_meta *m, const char *ns, const char *name, const char *uid)
{
	m->ns = tb_str(ns);
	m->name = tb_str(name);
	kc_uid_set(&m->uid, tb_str(uid));
	m->rv_key = 1;
}

struct kc_pod *tb_pod(const char *ns, const char *name, const char *uid, const char *node)
{
	struct kc_pod *p = kc_xcalloc(1, sizeof(*p));

	meta_init(&p->meta, ns, name, uid);
	p->node_name = tb_str(node);
	p->phase = KC_POD_RUNNING;
	return p;
}

struct kc_pod *tb_gpu_pod(const char *ns, const char *name, const char *uid, const char *node,
			  const char *resource, int64_t count)
{
	struct kc_pod *p = tb_pod(ns, name, uid, node);

	tb_pod_owner(p, "ReplicaSet", "rs", true);
	tb_pod_container(p, "main", resource, count);
	return p;
}

/*
 * Lays out a resource status's notes and IDs as the decoder does: the notes,
 * then the IDs right after them (kc_rs_notes), in a new arena block.
 */
static void rs_lay_out(struct kc_resource_status *rs, const struct kc_device_note *notes, uint32_t n_notes,
		       const struct kc_devid *ids, uint32_t n_ids)
{
	size_t nb = n_notes * sizeof(*notes);
	char *d = arena_alloc(nb + n_ids * sizeof(*ids) + 1);

	if (n_notes)
		memmove(d, notes, nb);
	if (n_ids)
		memmove(d + nb, ids, n_ids * sizeof(*ids));
	rs->ids = (struct kc_devid *)(void *)(d + nb);
	rs->n_notes = (uint16_t)n_notes;
	rs->n_devices = (uint16_t)n_ids;
}

/* A pod's containers and claims share one array, the claims after the containers
 * (kc_pod_claims): a copy with one more of either, zeroed. */
static void pod_parts(struct kc_pod *p, bool container)
{
	size_t cb = p->n_containers * sizeof(struct kc_container), lb = p->n_claims * sizeof(struct kc_claim_ref);
	char *d = arena_alloc(cb + lb + sizeof(struct kc_container) + sizeof(struct kc_claim_ref));

	if (cb)
		memcpy(d, p->containers, cb);
	if (lb)
		memcpy(d + cb + (container ? sizeof(struct kc_container) : 0), kc_pod_claims(p), lb);
	p->containers = (struct kc_container *)(void *)d;
	if (container)
		p->n_containers++;
	else
		p->n_claims++;
}

struct kc_pod *tb_pod_clone(const struct kc_pod *src)
{
	struct kc_pod *p = kc_xmalloc(sizeof(*p));

	*p = *src;
	/* Deep-copy the arrays a test may change in place. */
	p->statuses = grow(src->statuses, src->n_statuses, sizeof(*p->statuses));
	for (uint32_t i = 0; i < p->n_statuses; i++) {
		struct kc_container_status *cs = &p->statuses[i];

		cs->resources = grow(cs->resources, cs->n_resources, sizeof(*cs->resources));
		for (uint32_t j = 0; j < cs->n_resources; j++) {
			struct kc_resource_status *rs = &cs->resources[j];

			rs_lay_out(rs, kc_rs_notes(rs), rs->n_notes, rs->ids, rs->n_devices);
		}
	}
	p->meta.labels = grow(src->meta.labels, src->meta.n_labels + src->meta.n_annotations,
			      sizeof(*p->meta.labels));
	p->meta.owners = grow(src->meta.owners, src->meta.n_owners, sizeof(*p->meta.owners));
	return p;
}

void tb_pod_owner(struct kc_pod *p, const char *kind, const char *name, bool controller)
{
	struct kc_owner_ref *o = APPEND(p->meta.owners, p->meta.n_owners);

	o->kind = tb_str(kind);
	o->name = tb_str(name);
	kc_uid_set(&o->uid, tb_fmt("owner-%s", name));
	if (controller && !p->meta.controller)
		p->meta.controller = p->meta.n_owners;
}

/* Labels and annotations share one array, labels first (kc_meta_annotations). */
static void meta_kv(struct kc_meta *m, bool label, const char *key, const char *value)
{
	uint32_t n = (uint32_t)m->n_labels + m->n_annotations, at = label ? m->n_labels : n;
	struct kc_kv *kv;

	m->labels = grow(m->labels, n, sizeof(*m->labels));
	kv = &m->labels[at];
	memmove(kv + 1, kv, (n - at) * sizeof(*kv));
	kv->key = tb_str(key);
	kv->value = tb_str(value);
	if (label)
		m->n_labels++;
	else
		m->n_annotations++;
}

void tb_pod_label(struct kc_pod *p, const char *key, const char *value)
{
	meta_kv(&p->meta, true, key, value);
}

void tb_pod_annotation(struct kc_pod *p, const char *key, const char *value)
{
	meta_kv(&p->meta, false, key, value);
}

struct kc_container *tb_pod_container(struct kc_pod *p, const char *name, const char *resource, int64_t count)
{
	struct kc_container *c;

	pod_parts(p, true);
	c = &p->containers[p->n_containers - 1];
	c->name = tb_str(name);
	c->claim = 0;
	if (resource) {
		struct kc_quantity *q = APPEND(c->requests, c->n_requests);

		q->name = tb_str(resource);
		q->value = count;
	}
	return c;
}

struct kc_container_status *tb_pod_status(struct kc_pod *p, const char *container)
{
	for (uint32_t i = 0; i < p->n_statuses; i++)
		if (strcmp(p->statuses[i].name, container) == 0)
			return &p->statuses[i];
	struct kc_container_status *cs = APPEND(p->statuses, p->n_statuses);

	cs->name = tb_str(container);
	cs->state = KC_STATE_RUNNING;
	return cs;
}

void tb_status_health(struct kc_container_status *cs, const char *resource, const char *id, enum kc_health h,
		      const char *message)
{
	struct kc_resource_status *rs = NULL;
	struct kc_device_note *note = NULL;
	uint16_t idx = 0;

	for (uint32_t i = 0; i < cs->n_resources; i++)
		if (strcmp(cs->resources[i].name, resource) == 0)
			rs = &cs->resources[i];
	if (!rs) {
		rs = APPEND(cs->resources, cs->n_resources);
		rs->name = tb_str(resource);
	}
	while (idx < rs->n_devices && !kc_devid_eq_str(&rs->ids[idx], id))
		idx++;
	/* Work on copies, then lay the notes and IDs out again as the decoder does. */
	struct kc_device_note *notes = kc_xcalloc(rs->n_notes + 1u, sizeof(*notes));
	struct kc_devid *ids = kc_xcalloc(rs->n_devices + 1u, sizeof(*ids));
	uint32_t n_notes = rs->n_notes, n_ids = rs->n_devices, at = 0;

	if (n_notes)
		memcpy(notes, kc_rs_notes(rs), n_notes * sizeof(*notes));
	if (n_ids)
		memcpy(ids, rs->ids, n_ids * sizeof(*ids));
	if (idx == n_ids)
		kc_devid_set(&ids[n_ids++], tb_str(id));
	/* As the decoder keeps it: a note unless plainly Healthy, notes in the order of their index. */
	while (at < n_notes && notes[at].index < idx)
		at++;
	if (at < n_notes && notes[at].index == idx)
		note = &notes[at];
	if (h == KC_HEALTH_HEALTHY && (!message || !*message)) {
		if (note) {
			memmove(note, note + 1, (n_notes - at - 1) * sizeof(*note));
			n_notes--;
		}
	} else {
		if (!note) {
			memmove(&notes[at + 1], &notes[at], (n_notes - at) * sizeof(*notes));
			n_notes++;
			note = &notes[at];
			note->index = idx;
		}
		note->health = (uint8_t)h;
		note->message = tb_str(message ? message : "");
	}
	rs_lay_out(rs, notes, n_notes, ids, n_ids);
	free(notes);
	free(ids);
}

void tb_pod_claim(struct kc_pod *p, const char *name, const char *claim_name)
{
	struct kc_claim_ref *c;

	pod_parts(p, false);
	c = (struct kc_claim_ref *)(void *)(p->containers + p->n_containers) + p->n_claims - 1;
	c->name = tb_str(name);
	c->claim_name = tb_str(claim_name);
}

struct kc_node *tb_node(const char *name)
{
	struct kc_node *n = kc_xcalloc(1, sizeof(*n));

	meta_init(&n->meta, "", name, tb_fmt("uid-node-%s", name));
	return n;
}

struct kc_node *tb_node_clone(const struct kc_node *src)
{
	struct kc_node *n = kc_xmalloc(sizeof(*n));

	*n = *src;
	n->conditions = grow(src->conditions, src->n_conditions, sizeof(*n->conditions));
	n->capacity = grow(src->capacity, src->n_capacity, sizeof(*n->capacity));
	n->allocatable = grow(src->allocatable, src->n_allocatable, sizeof(*n->allocatable));
	n->taints = grow(src->taints, src->n_taints, sizeof(*n->taints));
	n->meta.labels = grow(src->meta.labels, src->meta.n_labels + src->meta.n_annotations, sizeof(*n->meta.labels));
	return n;
}

void tb_node_taint(struct kc_node *n, const char *key, const char *value, const char *effect)
{
	struct kc_taint *t = APPEND(n->taints, n->n_taints);

	t->key = tb_str(key);
	t->value = tb_str(value);
	t->effect = tb_str(effect);
}

void tb_node_annotation(struct kc_node *n, const char *key, const char *value)
{
	meta_kv(&n->meta, false, key, value);
}

void tb_node_resource(struct kc_node *n, const char *resource, int64_t capacity, int64_t allocatable)
{
	struct kc_quantity *q = NULL;

	for (uint32_t i = 0; i < n->n_capacity; i++)
		if (strcmp(n->capacity[i].name, resource) == 0)
			q = &n->capacity[i];
	if (!q)
		q = APPEND(n->capacity, n->n_capacity);
	q->name = tb_str(resource);
	q->value = capacity;
	q = NULL;
	for (uint32_t i = 0; i < n->n_allocatable; i++)
		if (strcmp(n->allocatable[i].name, resource) == 0)
			q = &n->allocatable[i];
	if (!q)
		q = APPEND(n->allocatable, n->n_allocatable);
	q->name = tb_str(resource);
	q->value = allocatable;
}

void tb_node_condition(struct kc_node *n, const char *type, enum kc_cond_status status, const char *message)
{
	struct kc_condition *c = NULL;

	for (uint32_t i = 0; i < n->n_conditions; i++)
		if (strcmp(n->conditions[i].type, type) == 0)
			c = &n->conditions[i];
	if (!c)
		c = APPEND(n->conditions, n->n_conditions);
	c->type = tb_str(type);
	c->reason = "";
	c->message = tb_str(message ? message : "");
	c->status = status;
}

struct kc_resource_claim *tb_claim(const char *ns, const char *name, const char *uid)
{
	struct kc_resource_claim *c = kc_xcalloc(1, sizeof(*c));

	meta_init(&c->meta, ns, name, uid);
	c->allocated = true;
	return c;
}

void tb_claim_result(struct kc_resource_claim *c, const char *request, const char *driver, const char *pool,
		     const char *device)
{
	struct kc_device_result *r = APPEND(c->results, c->n_results);

	r->request = tb_str(request);
	r->driver = tb_str(driver);
	r->pool = tb_str(pool);
	r->device = tb_str(device);
}

void tb_claim_toleration(struct kc_resource_claim *c, const char *key, enum kc_toleration_op op, const char *value,
			 const char *effect, int64_t seconds)
{
	struct kc_device_result *r = &c->results[c->n_results - 1];
	struct kc_toleration *t = APPEND(r->tolerations, r->n_tolerations);

	t->key = tb_str(key);
	t->op = op;
	t->value = tb_str(value);
	t->effect = tb_str(effect);
	t->has_seconds = seconds >= 0;
	t->seconds = seconds >= 0 ? seconds : 0;
}

void tb_claim_consumer(struct kc_resource_claim *c, const char *pod_name, const char *pod_uid)
{
	struct kc_consumer *u = APPEND(c->consumers, c->n_consumers);

	u->resource = "pods";
	u->name = tb_str(pod_name);
	u->uid = tb_str(pod_uid);
}

void tb_claim_device_condition(struct kc_resource_claim *c, const char *driver, const char *pool,
			       const char *device, const char *type, enum kc_cond_status status,
			       const char *message)
{
	struct kc_device_status *d = APPEND(c->device_statuses, c->n_device_statuses);
	struct kc_condition *cond;

	d->driver = tb_str(driver);
	d->pool = tb_str(pool);
	d->device = tb_str(device);
	cond = APPEND(d->conditions, d->n_conditions);
	cond->type = tb_str(type);
	cond->reason = "";
	cond->message = tb_str(message ? message : "");
	cond->status = status;
}

struct kc_resource_slice *tb_slice(const char *name, const char *driver, const char *pool, const char *node)
{
	struct kc_resource_slice *s = kc_xcalloc(1, sizeof(*s));

	meta_init(&s->meta, "", name, tb_fmt("uid-slice-%s", name));
	s->driver = tb_str(driver);
	s->pool = tb_str(pool);
	s->node_name = tb_str(node ? node : "");
	return s;
}

void tb_slice_device(struct kc_resource_slice *s, const char *device, const char *taint_key,
		     const char *effect)
{
	struct kc_slice_device *d = APPEND(s->devices, s->n_devices);

	d->name = tb_str(device);
	if (taint_key) {
		struct kc_taint *t = APPEND(d->taints, d->n_taints);

		t->key = tb_str(taint_key);
		t->value = "";
		t->effect = tb_str(effect);
	}
}

void tb_slice_taint(struct kc_resource_slice *s, const char *key, const char *value, const char *effect,
		    int64_t time_added)
{
	struct kc_slice_device *d = &s->devices[s->n_devices - 1];
	struct kc_taint *t = APPEND(d->taints, d->n_taints);

	t->key = tb_str(key);
	t->value = tb_str(value);
	t->effect = tb_str(effect);
	t->time_added = time_added;
}

struct kc_device_taint_rule *tb_rule(const char *name, const char *driver, const char *pool, const char *device,
				     const char *key, const char *effect, int64_t time_added)
{
	struct kc_device_taint_rule *r = kc_xcalloc(1, sizeof(*r));

	meta_init(&r->meta, "", name, tb_fmt("uid-%s", name));
	r->has_selector = driver != NULL;
	r->driver = tb_str(driver ? driver : "");
	r->pool = tb_str(pool);
	r->device = tb_str(device);
	r->taint.key = tb_str(key);
	r->taint.value = "";
	r->taint.effect = tb_str(effect);
	r->taint.time_added = time_added;
	return r;
}

struct policy *tb_policy(void)
{
	struct policy *p = policy_new_default();

	p->max_total = 0;
	p->max_in_flight = 0;
	p->breaker_enabled = false;
	p->remediation_enabled = false;
	return p;
}

struct policy *tb_policy_yaml(const char *yaml)
{
	char *text =
	    kc_xasprintf("apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\n%s", yaml);
	struct policy *p = NULL;
	struct kc_error err = {{0}};

	if (policy_parse("test.yaml", text, strlen(text), &p, &err) != 0) {
		fprintf(stderr, "tb_policy_yaml: %s\n%s\n", err.msg, text);
		abort();
	}
	if (!strstr(yaml, "limits:")) {
		p->max_total = 0;
		p->max_in_flight = 0;
	}
	if (!strstr(yaml, "circuitBreaker:"))
		p->breaker_enabled = false;
	if (!strstr(yaml, "remediation:"))
		p->remediation_enabled = false;
	free(text);
	return p;
}

void tb_env_init(struct tb_env *e, struct policy *p, bool synced)
{
	memset(e, 0, sizeof(*e));
	e->p = p;
	e->pods = kc_store_new(&kc_type_pod);
	e->nodes = kc_store_new(&kc_type_node);
	e->claims = kc_store_new(&kc_type_resource_claim);
	e->slices = kc_store_new(&kc_type_resource_slice);
	e->rules = kc_store_new(&kc_type_device_taint_rule);
	e->now = 1000;
	e->core = core_new(p, e->pods, e->nodes, e->claims, e->slices);
	core_set_rule_store(e->core, e->rules, e->now);
	if (synced)
		core_set_synced(e->core, true, e->now);
}

void tb_env_done(struct tb_env *e)
{
	e->core = core_free(e->core);
	e->pods = kc_store_free(e->pods);
	e->nodes = kc_store_free(e->nodes);
	e->claims = kc_store_free(e->claims);
	e->slices = kc_store_free(e->slices);
	e->rules = kc_store_free(e->rules);
	e->p = policy_free(e->p);
	tb_reset();
}

void tb_put_pod(struct tb_env *e, struct kc_pod *pod)
{
	void *old = NULL;

	kc_store_put(e->pods, pod, &old);
	core_pod_changed(e->core, old ? 2 : 1, pod, old, e->now);
	free(old);
}

void tb_del_pod(struct tb_env *e, const char *ns, const char *name)
{
	struct kc_pod *pod = kc_store_take(e->pods, ns, name);

	if (pod)
		core_pod_changed(e->core, 3, pod, NULL, e->now);
	free(pod);
}

void tb_put_node(struct tb_env *e, struct kc_node *n)
{
	void *old = NULL;

	kc_store_put(e->nodes, n, &old);
	core_node_changed(e->core, old ? 2 : 1, n, old, e->now);
	free(old);
}

void tb_del_node(struct tb_env *e, const char *name)
{
	struct kc_node *n = kc_store_take(e->nodes, "", name);

	if (n)
		core_node_changed(e->core, 3, n, NULL, e->now);
	free(n);
}

void tb_put_claim(struct tb_env *e, struct kc_resource_claim *c)
{
	void *old = NULL;

	kc_store_put(e->claims, c, &old);
	core_claim_changed(e->core, old ? 2 : 1, c, old, e->now);
	free(old);
}

void tb_put_slice(struct tb_env *e, struct kc_resource_slice *s)
{
	void *old = NULL;

	kc_store_put(e->slices, s, &old);
	core_slice_changed(e->core, old ? 2 : 1, s, old, e->now);
	free(old);
}

void tb_del_slice(struct tb_env *e, const char *name)
{
	struct kc_resource_slice *s = kc_store_take(e->slices, "", name);

	if (s)
		core_slice_changed(e->core, 3, s, NULL, e->now);
	free(s);
}

void tb_set_policy(struct tb_env *e, struct policy *p)
{
	core_set_policy(e->core, p, e->now);
	policy_free(e->p);
	e->p = p;
}

void tb_put_rule(struct tb_env *e, struct kc_device_taint_rule *r)
{
	void *old = NULL;

	kc_store_put(e->rules, r, &old);
	core_rule_changed(e->core, old ? 2 : 1, r, old, e->now);
	free(old);
}

void tb_del_rule(struct tb_env *e, const char *name)
{
	struct kc_device_taint_rule *r = kc_store_take(e->rules, "", name);

	if (r)
		core_rule_changed(e->core, 3, r, NULL, e->now);
	free(r);
}
