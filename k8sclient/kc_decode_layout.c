/*
 * The scratch area of the decoders (kc_decode.h) and the layout of a finished
 * object.  The handler of kc_decode_schema.c builds an object into a reusable
 * scratch area (a typed head, growable element vectors and a string arena);
 * kc_dec_finish() copies the result into one heap block sized exactly: the
 * struct, then its arrays, then its non-interned strings.  The scratch area
 * is reused from object to object, so steady-state decoding allocates only
 * the final block and new interned strings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_decode_int.h"
#include "kc_hash.h"

/* Every vector and the string arena are bounded: input cannot grow them
 * further.  etcd refuses objects over 1.5 MB, so real objects stay far below. */
#define MAX_ELEMS 16384
#define MAX_ARENA (4u * 1024 * 1024)
#define ARENA_CHUNK (16u * 1024)
#define DEFAULT_MAX_MESSAGE 1024

/* ---- scratch area ----------------------------------------------------------- */

uint64_t kc_decode_rv_key(const char *rv, size_t len)
{
	uint64_t v = 0;

	if (len == 0)
		return 0;
	if (rv[0] != '0' && len <= 19) {
		size_t i;

		for (i = 0; i < len && rv[i] >= '0' && rv[i] <= '9'; i++)
			v = v * 10 + (uint64_t)(rv[i] - '0');
		if (i == len && v < (1ULL << 63))
			return v;
	}
	return kc_hash_bytes(0x72766b6579ULL, rv, len) | 1ULL << 63;
}

static void vec_init(struct vec *v, size_t elsz)
{
	memset(v, 0, sizeof(*v));
	v->elsz = (uint32_t)elsz;
}

void *kc_dec_vec_push(struct dec *d, struct vec *v, const void *tmpl)
{
	void *p;

	if (v->n >= MAX_ELEMS) {
		/* Not an error: one object anybody may create must not fail the LIST or watch
		 * it comes in.  The push is dropped, and with it the object (struct dec.over). */
		if (!d->over)
			snprintf(d->overmsg, sizeof(d->overmsg), "more than %u elements in one array", MAX_ELEMS);
		d->over = true;
		return NULL;
	}
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->data = kc_xrealloc(v->data, (size_t)v->cap * v->elsz);
	}
	p = vec_at(v, v->n++);
	memcpy(p, tmpl, v->elsz);
	return p;
}

const char *kc_dec_arena_dup(struct dec *d, const char *s, size_t len)
{
	struct chunk *c = d->cur;
	char *p;

	if (len == 0)
		return "";
	if (d->arena_used + len + 1 > MAX_ARENA) {
		if (!d->over)
			snprintf(d->overmsg, sizeof(d->overmsg), "object keeps more than %u bytes of strings",
				 MAX_ARENA);
		d->over = true;
		return NULL;
	}
	while (c && c->size - c->used < len + 1)
		c = c->next;
	if (!c) {
		size_t size = len + 1 > ARENA_CHUNK ? len + 1 : ARENA_CHUNK;

		c = kc_xmalloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = d->chunks ? d->chunks->next : NULL;
		if (d->chunks)
			d->chunks->next = c;
		else
			d->chunks = c;
	}
	d->cur = c;
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	d->arena_used += len + 1;
	return p;
}

static void arena_reset(struct dec *d)
{
	struct chunk *first = d->chunks;

	/* Keep one chunk for the next object; a rare huge object gives its
	 * extra chunks back at once. */
	if (first) {
		for (struct chunk *c = first->next, *next; c; c = next) {
			next = c->next;
			free(c);
		}
		first->next = NULL;
		first->used = 0;
	}
	d->cur = first;
	d->arena_used = 0;
}

/* Read as each object begins: the owner may change the options between objects (a policy reload). */
static void read_opts(struct dec *d)
{
	const struct kc_decode_opts *o = d->opts;

	d->keep_labels = o ? o->keep_labels : NULL;
	d->keep_annotations = o ? o->keep_annotations : NULL;
	d->max_message = o && o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
	d->is_device = o ? o->is_device : NULL;
	d->device_userdata = o ? o->device_userdata : NULL;
	d->keep_condition = o ? o->keep_condition : NULL;
	d->condition_userdata = o ? o->condition_userdata : NULL;
}

void kc_dec_init(struct dec *d, const struct kc_type *t, const struct kc_decode_ctx *ctx, enum layer layer)
{
	memset(d, 0, sizeof(*d));
	d->t = t;
	d->in = ctx ? ctx->intern : NULL;
	d->layer = layer;
	d->opts = ctx ? ctx->opts : NULL;
	read_opts(d);
	vec_init(&d->v.labels, sizeof(struct kc_kv));
	vec_init(&d->v.annots, sizeof(struct kc_kv));
	vec_init(&d->v.owners, sizeof(struct kc_owner_ref));
	vec_init(&d->v.conds, sizeof(struct kc_condition));
	vec_init(&d->v.taints, sizeof(struct kc_taint));
	vec_init(&d->v.qa, sizeof(struct kc_quantity));
	vec_init(&d->v.qb, sizeof(struct kc_quantity));
	vec_init(&d->v.containers, sizeof(struct kc_container));
	vec_init(&d->v.cclaims, sizeof(const char *));
	vec_init(&d->v.statuses, sizeof(struct kc_container_status));
	vec_init(&d->v.resstat, sizeof(struct kc_resource_status));
	vec_init(&d->v.devhealth, sizeof(struct dec_device));
	vec_init(&d->v.sclaims, sizeof(struct kc_claim_ref));
	vec_init(&d->v.clst, sizeof(struct kc_claim_ref));
	vec_init(&d->v.results, sizeof(struct kc_device_result));
	vec_init(&d->v.devstat, sizeof(struct kc_device_status));
	vec_init(&d->v.consumers, sizeof(struct kc_consumer));
	vec_init(&d->v.sdevs, sizeof(struct kc_slice_device));
	vec_init(&d->v.tols, sizeof(struct kc_toleration));
}

static struct vec *dec_vecs(struct dec *d, size_t *n)
{
	*n = sizeof(d->v) / sizeof(struct vec);
	return (struct vec *)(void *)&d->v;
}

void kc_dec_done(struct dec *d)
{
	size_t n;
	struct vec *v = dec_vecs(d, &n);

	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	arena_reset(d);
	free(d->chunks);
	d->chunks = d->cur = NULL;
}

void kc_dec_reset(struct dec *d)
{
	size_t n;
	struct vec *v = dec_vecs(d, &n);

	read_opts(d);
	for (size_t i = 0; i < n; i++)
		v[i].n = 0;
	arena_reset(d);
	memset(&d->h, 0, sizeof(d->h));
	d->h.meta.ns = d->h.meta.name = d->rv = "";  /* the memset made meta.uid the empty UID */
	switch (d->t->ops->kind) {
	case K_POD:
		d->h.pod.node_name = "";
		break;
	case K_SLICE:
		d->h.slice.driver = d->h.slice.pool = d->h.slice.node_name = "";
		break;
	case K_RULE:
		d->h.rule.driver = d->h.rule.pool = d->h.rule.device = "";
		d->h.rule.taint = (struct kc_taint){ "", "", "", 0 };
		break;
	case K_NODE:
	case K_CLAIM:
		break;
	}
	d->mirror = false;
	d->initial_events_end = false;
	d->err = 0;
	d->over = false;
	d->st_code = d->st_retry = 0;
	d->st_status = d->st_reason = d->st_message = "";
}

/* ---- building the one-block object ---------------------------------------------- */

/*
 * Layout runs twice: once to size the block (base == NULL, arrays NULL, the
 * head a dummy), once to fill it.  Arrays go first (8-byte aligned), strings after them, so both passes
 * advance the cursors identically.
 */
struct blk {
	char *base;
	size_t a;  /* next array offset */
	size_t s;  /* next string offset */
};

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

static void *blk_arr(struct blk *b, const struct vec *v, uint32_t from, uint32_t n)
{
	size_t sz = (size_t)n * v->elsz;
	void *p = NULL;

	if (n == 0)
		return NULL;
	b->a = ALIGN8(b->a);
	if (b->base) {
		p = b->base + b->a;
		memcpy(p, vec_at(v, from), sz);
	}
	b->a += sz;
	return p;
}

/* Room for sz bytes of array, 8-byte aligned; NULL in the sizing pass. */
static void *blk_alloc(struct blk *b, size_t sz)
{
	void *p = NULL;

	if (sz == 0)
		return NULL;
	b->a = ALIGN8(b->a);
	if (b->base)
		p = b->base + b->a;
	b->a += sz;
	return p;
}

static const char *blk_str(struct blk *b, const char *s)
{
	size_t len;
	char *p = NULL;

	if (!*s)
		return "";
	len = strlen(s) + 1;
	if (b->base) {
		p = b->base + b->s;
		memcpy(p, s, len);
	}
	b->s += len;
	return p;
}

/* Assigns only in the filling pass. */
#define PUT(dst, val)                             \
	do {                                      \
		const char *v_ = (val);           \
		if (b->base)                      \
			(dst) = v_;               \
	} while (0)

/*
 * The block's copy (NUL-terminated) of an unpacked UID's text; NULL for a packed UID or the
 * empty one, which are all in their 16 bytes, copied with the struct they are in, and NULL
 * in the sizing pass.
 */
static const char *uid_text_copy(struct blk *b, const struct kc_uid *src)
{
	const char *text = kc_uid_text(src);

	return text && *text ? blk_str(b, text) : NULL;
}

static void layout_meta(struct dec *d, struct blk *b, struct kc_meta *m)
{
	const char *dash = strrchr(d->h.meta.name, '-');
	const char *text;
	struct kc_kv *kv;
	struct kc_owner_ref *o;

	PUT(m->name, blk_str(b, d->h.meta.name));
	text = uid_text_copy(b, &d->h.meta.uid);
	if (text)
		kc_uid_set_text(&m->uid, text);
	/* Labels then annotations, one array (kc_meta_annotations): a kc_kv is 16 bytes, so the
	 * second blk_arr starts where the first ends. */
	kv = blk_arr(b, &d->v.labels, 0, d->v.labels.n);
	for (uint32_t i = 0; i < d->v.labels.n; i++)
		PUT(kv[i].value, blk_str(b, ((struct kc_kv *)vec_at(&d->v.labels, i))->value));
	if (b->base) {
		m->labels = kv;
		m->n_labels = d->v.labels.n;
	}
	kv = blk_arr(b, &d->v.annots, 0, d->v.annots.n);
	for (uint32_t i = 0; i < d->v.annots.n; i++)
		PUT(kv[i].value, blk_str(b, ((struct kc_kv *)vec_at(&d->v.annots, i))->value));
	if (b->base) {
		if (!m->n_labels)
			m->labels = kv;
		m->n_annotations = d->v.annots.n;
	}
	o = blk_arr(b, &d->v.owners, 0, d->v.owners.n);
	for (uint32_t i = 0; i < d->v.owners.n; i++) {
		const struct kc_owner_ref *so = vec_at(&d->v.owners, i);

		/* A pod is most often named <owner>-<suffix>: no copy of the owner's name then. */
		if (*so->name && dash && (size_t)(dash - d->h.meta.name) == strlen(so->name) &&
		    strncmp(d->h.meta.name, so->name, (size_t)(dash - d->h.meta.name)) == 0)
			PUT(o[i].name, NULL);
		else
			PUT(o[i].name, blk_str(b, so->name));
		text = uid_text_copy(b, &so->uid);
		if (text)
			kc_uid_set_text(&o[i].uid, text);
	}
	if (b->base) {
		m->owners = o;
		m->n_owners = (uint8_t)d->v.owners.n;
	}
}

static struct kc_condition *layout_conds(struct dec *d, struct blk *b, uint32_t from, uint32_t n)
{
	struct kc_condition *c = blk_arr(b, &d->v.conds, from, n);

	for (uint32_t i = 0; i < n; i++)
		PUT(c[i].message, blk_str(b, ((struct kc_condition *)vec_at(&d->v.conds, from + i))->message));
	return c;
}

static struct kc_taint *layout_taints(struct dec *d, struct blk *b, uint32_t from, uint32_t n)
{
	struct kc_taint *t = blk_arr(b, &d->v.taints, from, n);

	for (uint32_t i = 0; i < n; i++)
		PUT(t[i].value, blk_str(b, ((struct kc_taint *)vec_at(&d->v.taints, from + i))->value));
	return t;
}

/* A device that is plainly Healthy is only its ID; the others get a note. */
static bool noted(const struct dec_device *dev)
{
	return dev->health != KC_HEALTH_HEALTHY || *dev->message;
}

/* The IDs and notes of one allocatedResourcesStatus entry: the n devices of d->v.devhealth
 * from index from (r is NULL in the sizing pass). */
static void layout_devices(struct dec *d, struct blk *b, struct kc_resource_status *r, uint32_t from, uint32_t n)
{
	/* Not vec_at(): with no device the vector may have no storage at all. */
	const struct dec_device *dev = n ? vec_at(&d->v.devhealth, from) : NULL;
	struct kc_device_note *notes = NULL;
	struct kc_devid *ids = NULL;
	uint16_t n_notes = 0;
	char *p;

	for (uint32_t m = 0; m < n; m++)
		n_notes += noted(&dev[m]);
	/* The notes, then the IDs (17 bytes each) right after them: kc_rs_notes() finds the
	 * notes before the IDs, so a resource status keeps no pointer to them. */
	p = blk_alloc(b, n_notes * sizeof(*notes) + n * sizeof(*ids));
	if (p) {
		notes = n_notes ? (struct kc_device_note *)(void *)p : NULL;
		ids = (struct kc_devid *)(void *)(p + n_notes * sizeof(*notes));
		for (uint32_t m = 0; m < n; m++)
			ids[m] = dev[m].id;
	}
	n_notes = 0;
	for (uint32_t m = 0; m < n; m++) {
		const char *msg;

		if (!noted(&dev[m]))
			continue;
		msg = blk_str(b, dev[m].message);
		if (notes)
			notes[n_notes] = (struct kc_device_note){ msg, (uint16_t)m, (uint8_t)dev[m].health };
		n_notes++;
	}
	if (r) {
		r->ids = ids;
		r->n_notes = n_notes;
	}
}

/* Claims from the spec, completed by the status (generated claim names). */
static void merge_claims(struct dec *d)
{
	for (uint32_t i = 0; i < d->v.clst.n; i++) {
		const struct kc_claim_ref *st = vec_at(&d->v.clst, i);
		uint32_t j;

		for (j = 0; j < d->v.sclaims.n; j++) {
			struct kc_claim_ref *sp = vec_at(&d->v.sclaims, j);

			if (strcmp(sp->name, st->name) == 0) {
				if (!*sp->claim_name)
					sp->claim_name = st->claim_name;
				break;
			}
		}
		if (j == d->v.sclaims.n && !kc_dec_vec_push(d, &d->v.sclaims, st))
			return;
	}
}

/* ---- keeping only what a device controller reads ---------------------------- */

static bool counts(const struct dec *d, const char *resource)
{
	return d->is_device(resource, d->device_userdata);
}

/* Moves the kept quantities of n at *from down to *to (to <= from); returns how many. */
static uint32_t keep_quantities(struct dec *d, struct vec *q, uint32_t *from, uint32_t *to, uint32_t n)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct kc_quantity *x = vec_at(q, *from + i);

		if (x->value > 0 && counts(d, x->name))
			memmove(vec_at(q, *to + kept++), x, sizeof(*x));
	}
	*from += n;
	*to += kept;
	return kept;
}

/*
 * 1 + the index of the pod's claim of this name (spec.resourceClaims, or a status
 * entry), 0 if none: a container's resources.claims[].name must name one, the API
 * server refuses a pod otherwise, and one that names none holds no device.
 */
static uint32_t claim_slot(const struct dec *d, const char *name)
{
	if (!*name)
		return 0;
	for (uint32_t i = 0; i < d->v.sclaims.n; i++)
		if (strcmp(((const struct kc_claim_ref *)vec_at(&d->v.sclaims, i))->name, name) == 0)
			return i + 1;
	return 0;
}

static void filter_containers(struct dec *d)
{
	uint32_t qa = 0, wa = 0, w = 0;

	for (uint32_t i = 0; i < d->v.containers.n; i++) {
		struct kc_container c = *(struct kc_container *)vec_at(&d->v.containers, i);
		const char *claim = *(const char **)vec_at(&d->v.cclaims, i);
		uint32_t wa0 = wa;

		c.n_requests = (uint16_t)keep_quantities(d, &d->v.qa, &qa, &wa, c.n_requests);
		if (!c.n_requests && !claim_slot(d, claim)) {
			wa = wa0;  /* a container without a device: its quantities go too */
			continue;
		}
		*(const char **)vec_at(&d->v.cclaims, w) = claim;
		*(struct kc_container *)vec_at(&d->v.containers, w++) = c;
	}
	d->v.containers.n = w;
	d->v.cclaims.n = w;
	d->v.qa.n = wa;
}

static bool container_kept(const struct dec *d, const struct kc_container_status *cs)
{
	for (uint32_t i = 0; i < d->v.containers.n; i++) {
		const struct kc_container *c = vec_at(&d->v.containers, i);

		if (c->init == cs->init && strcmp(c->name, cs->name) == 0)
			return true;
	}
	return false;
}

static void filter_statuses(struct dec *d)
{
	uint32_t rs = 0, dh = 0, wrs = 0, wdh = 0, w = 0;

	for (uint32_t i = 0; i < d->v.statuses.n; i++) {
		struct kc_container_status cs = *(struct kc_container_status *)vec_at(&d->v.statuses, i);
		uint32_t wrs0 = wrs, wdh0 = wdh, kept = 0;

		for (uint32_t k = 0; k < cs.n_resources; k++) {
			struct kc_resource_status r = *(struct kc_resource_status *)vec_at(&d->v.resstat, rs + k);

			if (r.n_devices && counts(d, r.name)) {
				memmove(vec_at(&d->v.devhealth, wdh), vec_at(&d->v.devhealth, dh),
					(size_t)r.n_devices * d->v.devhealth.elsz);
				*(struct kc_resource_status *)vec_at(&d->v.resstat, wrs++) = r;
				wdh += r.n_devices;
				kept++;
			}
			dh += r.n_devices;
		}
		rs += cs.n_resources;
		cs.n_resources = (uint16_t)kept;
		if (!kept && !container_kept(d, &cs)) {
			wrs = wrs0;
			wdh = wdh0;
			continue;
		}
		*(struct kc_container_status *)vec_at(&d->v.statuses, w++) = cs;
	}
	d->v.statuses.n = w;
	d->v.resstat.n = wrs;
	d->v.devhealth.n = wdh;
}

/*
 * With a device predicate (kc_decode_opts.is_device), drops what the
 * controller never reads: containers without a device and the statuses that
 * say nothing about one.  Run on the complete pod, since "status" may come
 * before "spec" in the JSON.
 */
static void filter_pod(struct dec *d)
{
	if (!d->is_device)
		return;
	filter_containers(d);
	filter_statuses(d);
}

static void layout_pod(struct dec *d, struct blk *b, struct kc_pod *p)
{
	struct kc_container *c;
	struct kc_container_status *cs;
	struct kc_claim_ref *cl;
	uint32_t qa = 0, rs = 0, dh = 0;

	layout_meta(d, b, &p->meta);
	/* The claims right after the containers, in one piece (kc_pod_claims): a kc_container is a
	 * multiple of 8 bytes, so the second blk_arr starts where the first ends. */
	c = blk_arr(b, &d->v.containers, 0, d->v.containers.n);
	cl = blk_arr(b, &d->v.sclaims, 0, d->v.sclaims.n);
	for (uint32_t i = 0; i < d->v.sclaims.n; i++) {
		const struct kc_claim_ref *sc = vec_at(&d->v.sclaims, i);

		PUT(cl[i].name, blk_str(b, sc->name));
		PUT(cl[i].claim_name, blk_str(b, sc->claim_name));
	}
	for (uint32_t i = 0; i < d->v.containers.n; i++) {
		const struct kc_container *sc = vec_at(&d->v.containers, i);
		/* The name is interned: blk_arr copied the pointer. */
		struct kc_quantity *rq = blk_arr(b, &d->v.qa, qa, sc->n_requests);

		qa += sc->n_requests;
		if (b->base) {
			c[i].requests = rq;
			/* After the clamp: at most 255 claims, the slot fits kc_container.claim. */
			c[i].claim = (uint8_t)claim_slot(d, *(const char **)vec_at(&d->v.cclaims, i));
		}
	}
	cs = blk_arr(b, &d->v.statuses, 0, d->v.statuses.n);
	for (uint32_t i = 0; i < d->v.statuses.n; i++) {
		const struct kc_container_status *ss = vec_at(&d->v.statuses, i);
		struct kc_resource_status *r;

		/* The name is interned (container names repeat across the pods of a workload). */
		r = blk_arr(b, &d->v.resstat, rs, ss->n_resources);
		for (uint32_t k = 0; k < ss->n_resources; k++) {
			const struct kc_resource_status *sr = vec_at(&d->v.resstat, rs + k);

			layout_devices(d, b, b->base ? &r[k] : NULL, dh, sr->n_devices);
			dh += sr->n_devices;
		}
		rs += ss->n_resources;
		if (b->base)
			cs[i].resources = r;
	}
	if (b->base) {
		p->containers = d->v.containers.n ? c : (struct kc_container *)(void *)cl;
		p->n_containers = (uint8_t)d->v.containers.n;
		p->statuses = cs;
		p->n_statuses = (uint8_t)d->v.statuses.n;
		p->n_claims = (uint8_t)d->v.sclaims.n;
		p->is_mirror = d->mirror;
	}
}

static void layout_node(struct dec *d, struct blk *b, struct kc_node *n)
{
	struct kc_quantity *cap, *alloc;

	layout_meta(d, b, &n->meta);
	cap = blk_arr(b, &d->v.qa, 0, d->v.qa.n);
	alloc = blk_arr(b, &d->v.qb, 0, d->v.qb.n);
	if (b->base) {
		n->taints = layout_taints(d, b, 0, d->v.taints.n);
		n->n_taints = d->v.taints.n;
		n->conditions = layout_conds(d, b, 0, d->v.conds.n);
		n->n_conditions = d->v.conds.n;
		n->capacity = cap;
		n->n_capacity = d->v.qa.n;
		n->allocatable = alloc;
		n->n_allocatable = d->v.qb.n;
	} else {
		layout_taints(d, b, 0, d->v.taints.n);
		layout_conds(d, b, 0, d->v.conds.n);
	}
}

static void layout_claim(struct dec *d, struct blk *b, struct kc_resource_claim *c)
{
	struct kc_device_result *r;
	struct kc_device_status *ds;
	struct kc_consumer *co;
	uint32_t cd = 0, tn = 0;

	layout_meta(d, b, &c->meta);
	r = blk_arr(b, &d->v.results, 0, d->v.results.n);
	for (uint32_t i = 0; i < d->v.results.n; i++) {
		const struct kc_device_result *s = vec_at(&d->v.results, i);
		struct kc_toleration *tl = blk_arr(b, &d->v.tols, tn, s->n_tolerations);

		PUT(r[i].request, blk_str(b, s->request));
		PUT(r[i].device, blk_str(b, s->device));
		/* Keys and effects are interned: blk_arr copied the pointers. */
		for (uint32_t k = 0; k < s->n_tolerations; k++)
			PUT(tl[k].value, blk_str(b, ((struct kc_toleration *)vec_at(&d->v.tols, tn + k))->value));
		tn += s->n_tolerations;
		if (b->base)
			r[i].tolerations = tl;
	}
	ds = blk_arr(b, &d->v.devstat, 0, d->v.devstat.n);
	for (uint32_t i = 0; i < d->v.devstat.n; i++) {
		const struct kc_device_status *s = vec_at(&d->v.devstat, i);
		struct kc_condition *conds;

		PUT(ds[i].device, blk_str(b, s->device));
		conds = layout_conds(d, b, cd, s->n_conditions);
		cd += s->n_conditions;
		if (b->base)
			ds[i].conditions = conds;
	}
	co = blk_arr(b, &d->v.consumers, 0, d->v.consumers.n);
	for (uint32_t i = 0; i < d->v.consumers.n; i++) {
		const struct kc_consumer *s = vec_at(&d->v.consumers, i);

		PUT(co[i].name, blk_str(b, s->name));
		PUT(co[i].uid, blk_str(b, s->uid));
	}
	if (b->base) {
		c->results = r;
		c->n_results = d->v.results.n;
		c->device_statuses = ds;
		c->n_device_statuses = d->v.devstat.n;
		c->consumers = co;
		c->n_consumers = d->v.consumers.n;
	}
}

static void layout_slice(struct dec *d, struct blk *b, struct kc_resource_slice *sl)
{
	struct kc_slice_device *dv;
	uint32_t t = 0;

	layout_meta(d, b, &sl->meta);
	dv = blk_arr(b, &d->v.sdevs, 0, d->v.sdevs.n);
	for (uint32_t i = 0; i < d->v.sdevs.n; i++) {
		const struct kc_slice_device *s = vec_at(&d->v.sdevs, i);
		struct kc_taint *taints;

		PUT(dv[i].name, blk_str(b, s->name));
		taints = layout_taints(d, b, t, s->n_taints);
		t += s->n_taints;
		if (b->base)
			dv[i].taints = taints;
	}
	if (b->base) {
		sl->devices = dv;
		sl->n_devices = d->v.sdevs.n;
	}
}

static void layout_rule(struct dec *d, struct blk *b, struct kc_device_taint_rule *r)
{
	const struct kc_taint *t = d->v.taints.n ? vec_at(&d->v.taints, 0) : NULL;

	layout_meta(d, b, &r->meta);
	PUT(r->device, blk_str(b, d->h.rule.device));
	/* spec.taint is one object: its fields went to the taints vector's only element. */
	if (t) {
		PUT(r->taint.value, blk_str(b, t->value));
		if (b->base) {
			r->taint.key = t->key;
			r->taint.effect = t->effect;
			r->taint.time_added = t->time_added;
		}
	}
}

/* Sizes, allocates and fills the block; the head is copied from the scratch. */
#define FINISH(name, type, field)                                                  \
	static void *finish_##name(struct dec *d)                                  \
	{                                                                          \
		struct blk b = { NULL, 0, 0 };                                     \
		size_t head = ALIGN8(sizeof(type)), arrays;                        \
		type *o;                                                           \
                                                                                   \
		type sizing;  /* written to, never read, by the sizing pass */     \
                                                                                   \
		layout_##name(d, &b, &sizing);                                     \
		arrays = b.a;  /* may end in device IDs' bytes: strings need no alignment */ \
		b.base = kc_xmalloc(head + arrays + b.s);                          \
		o = (type *)(void *)b.base;                                        \
		*o = d->h.field;                                                   \
		b.a = head;                                                        \
		b.s = head + arrays;                                               \
		layout_##name(d, &b, o);                                           \
		return o;                                                          \
	}

FINISH(node, struct kc_node, node)
FINISH(claim, struct kc_resource_claim, claim)
FINISH(slice, struct kc_resource_slice, slice)
FINISH(rule, struct kc_device_taint_rule, rule)

FINISH(pod, struct kc_pod, pod)

/*
 * An object past a count the structs keep in 8 bits (ownerReferences; a pod's
 * device containers, statuses and claims) keeps the first 255 instead of
 * failing: an object the decoder refused would fail the whole LIST page or
 * watch stream it came in, so one pod that anybody may create could stop the
 * cache of the whole cluster.  What is dropped can only hide a device or an
 * owner, never add one: a device beyond the kept containers is not read, and
 * an owner past the 255th is not seen (a pod whose controller is not kept
 * counts as bare, which is never evicted unless evictBarePods is on).
 */
static void clamp(struct vec *v, uint32_t max)
{
	if (v->n > max)
		v->n = max;
}

static void *finish_pod_merged(struct dec *d)
{
	merge_claims(d);
	if (d->err)
		return NULL;
	filter_pod(d);
	/* Past the 8-bit counts, the first 255 are kept (see clamp). */
	clamp(&d->v.containers, UINT8_MAX);
	clamp(&d->v.statuses, UINT8_MAX);
	clamp(&d->v.sclaims, UINT8_MAX);
	return finish_pod(d);
}


/* A node keeps the conditions of the types kc_decode_opts.keep_condition keeps, in their order. */
static void filter_node(struct dec *d)
{
	struct vec *v = &d->v.conds;
	uint32_t n = 0;

	if (!d->keep_condition)
		return;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct kc_condition *c = vec_at(v, i);

		if (!d->keep_condition(c->type, d->condition_userdata))
			continue;
		if (n != i)
			memcpy(vec_at(v, n), c, v->elsz);
		n++;
	}
	v->n = n;
}

void *kc_dec_finish(struct dec *d)
{
	if (d->over)
		return NULL;  /* dropped, err 0: the callers skip it (see struct dec.over) */
	clamp(&d->v.owners, UINT8_MAX);
	switch (d->t->ops->kind) {
	case K_POD:
		return finish_pod_merged(d);
	case K_NODE:
		filter_node(d);
		return finish_node(d);
	case K_CLAIM:
		return finish_claim(d);
	case K_SLICE:
		return finish_slice(d);
	case K_RULE:
		return finish_rule(d);
	}
	return NULL;
}

void *kc_dec_finish_meta_only(struct dec *d)
{
	size_t n;
	struct vec *v = dec_vecs(d, &n);

	if (!*d->h.meta.name)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i].n = 0;
	d->over = false;
	return kc_dec_finish(d);
}
