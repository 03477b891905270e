/*
 * The object cache (kc_store.h).  Entries live in a slab array addressed by
 * 32-bit index, so they never move: an open-addressing table of indices finds
 * them by namespace/name, and intrusive doubly-linked lists threaded through
 * the entries give the objects on each node.  A second small table maps node
 * names to list heads.  About 32 bytes of entry plus 4-8 bytes of table per
 * cached object.
 */
#include "kc_store.h"

#include <stdlib.h>
#include <string.h>

#include "kc_hash.h"
#include "kc_util.h"

#define NIL UINT32_MAX

struct entry {
	void *obj;       /* NULL = free (next_free chains through node_next) */
	uint32_t hash;
	uint32_t gen;
	uint32_t node;       /* index into nodes, NIL if not on a node */
	uint32_t node_prev;
	uint32_t node_next;
	uint32_t pad_;
};

struct node {
	char *name;      /* NULL = free */
	uint32_t hash;
	uint32_t head;   /* first entry on this node */
	uint32_t count;
	uint32_t next_free;
};

/* An open-addressing table of indices with linear probing and
 * backward-shift deletion (no tombstones). */
struct itab {
	uint32_t *slots;  /* NIL = empty */
	size_t mask;
	size_t count;
};

struct kc_store {
	const struct kc_type *t;
	struct entry *entries;
	uint32_t n_entries;   /* used prefix of entries */
	uint32_t cap_entries;
	uint32_t free_entry;  /* head of the free list, NIL if none */
	size_t count;
	struct itab by_key;
	struct node *nodes;
	uint32_t n_nodes;
	uint32_t cap_nodes;
	uint32_t free_node;
	struct itab by_node;
	uint32_t gen;
};

static uint32_t key_hash(const char *ns, const char *name)
{
	uint64_t h = kc_hash_bytes(0, ns, strlen(ns));

	return (uint32_t)kc_hash_bytes(h, name, strlen(name));
}

static uint32_t str_hash(const char *s)
{
	return (uint32_t)kc_hash_bytes(0, s, strlen(s));
}

static void itab_init(struct itab *t)
{
	t->mask = 64 - 1;
	t->count = 0;
	t->slots = kc_xmalloc((t->mask + 1) * sizeof(*t->slots));
	memset(t->slots, 0xff, (t->mask + 1) * sizeof(*t->slots));
}

/* hashes[i] gives the hash of the item with index i. */
typedef uint32_t (*hash_of_fn)(const struct kc_store *s, uint32_t idx);

static uint32_t entry_hash(const struct kc_store *s, uint32_t idx)
{
	return s->entries[idx].hash;
}

static uint32_t node_hash(const struct kc_store *s, uint32_t idx)
{
	return s->nodes[idx].hash;
}

static void itab_insert(const struct kc_store *s, struct itab *t, uint32_t idx, hash_of_fn hf)
{
	size_t i;

	if ((t->count + 1) * 10 > (t->mask + 1) * 7) {
		size_t cap = (t->mask + 1) * 2;
		uint32_t *slots = kc_xmalloc(cap * sizeof(*slots));

		memset(slots, 0xff, cap * sizeof(*slots));
		for (size_t j = 0; j <= t->mask; j++) {
			uint32_t x = t->slots[j];

			if (x == NIL)
				continue;
			for (i = hf(s, x) & (cap - 1); slots[i] != NIL; i = (i + 1) & (cap - 1))
				;
			slots[i] = x;
		}
		free(t->slots);
		t->slots = slots;
		t->mask = cap - 1;
	}
	for (i = hf(s, idx) & t->mask; t->slots[i] != NIL; i = (i + 1) & t->mask)
		;
	t->slots[i] = idx;
	t->count++;
}

static void itab_remove(const struct kc_store *s, struct itab *t, uint32_t idx, hash_of_fn hf)
{
	size_t i, j;

	for (i = hf(s, idx) & t->mask; t->slots[i] != idx; i = (i + 1) & t->mask)
		;
	/* Backward shift: move later members of the cluster into the hole
	 * when their home slot is not cyclically within (i, j]. */
	for (j = (i + 1) & t->mask; t->slots[j] != NIL; j = (j + 1) & t->mask) {
		size_t home = hf(s, t->slots[j]) & t->mask;

		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i] = NIL;
	t->count--;
}

struct kc_store *kc_store_new(const struct kc_type *t)
{
	struct kc_store *s = kc_xcalloc(1, sizeof(*s));

	s->t = t;
	s->free_entry = NIL;
	s->free_node = NIL;
	itab_init(&s->by_key);
	itab_init(&s->by_node);
	return s;
}

struct kc_store *kc_store_free(struct kc_store *s)
{
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < s->n_entries; i++)
		free(s->entries[i].obj);
	for (uint32_t i = 0; i < s->n_nodes; i++)
		free(s->nodes[i].name);
	free(s->entries);
	free(s->nodes);
	free(s->by_key.slots);
	free(s->by_node.slots);
	free(s);
	return NULL;
}

static uint32_t find(const struct kc_store *s, const char *ns, const char *name)
{
	uint32_t h = key_hash(ns, name);

	for (size_t i = h & s->by_key.mask; s->by_key.slots[i] != NIL; i = (i + 1) & s->by_key.mask) {
		uint32_t x = s->by_key.slots[i];
		const struct kc_meta *m = s->entries[x].obj;

		if (s->entries[x].hash == h && strcmp(m->name, name) == 0 && strcmp(m->ns, ns) == 0)
			return x;
	}
	return NIL;
}

static uint32_t find_node(const struct kc_store *s, const char *name)
{
	uint32_t h = str_hash(name);

	for (size_t i = h & s->by_node.mask; s->by_node.slots[i] != NIL; i = (i + 1) & s->by_node.mask) {
		uint32_t x = s->by_node.slots[i];

		if (s->nodes[x].hash == h && strcmp(s->nodes[x].name, name) == 0)
			return x;
	}
	return NIL;
}

static const char *node_of(const struct kc_store *s, const void *obj)
{
	const char *n = s->t->node_of ? s->t->node_of(obj) : NULL;

	return n && *n ? n : NULL;
}

static void link_node(struct kc_store *s, uint32_t e, const char *name)
{
	uint32_t n = find_node(s, name);
	struct entry *en = &s->entries[e];

	if (n == NIL) {
		if (s->free_node != NIL) {
			n = s->free_node;
			s->free_node = s->nodes[n].next_free;
		} else {
			if (s->n_nodes == s->cap_nodes) {
				s->cap_nodes = s->cap_nodes ? s->cap_nodes * 2 : 16;
				s->nodes = kc_xrealloc(s->nodes, s->cap_nodes * sizeof(*s->nodes));
			}
			n = s->n_nodes++;
		}
		s->nodes[n].name = kc_xstrdup(name);
		s->nodes[n].hash = str_hash(name);
		s->nodes[n].head = NIL;
		s->nodes[n].count = 0;
		itab_insert(s, &s->by_node, n, node_hash);
	}
	en->node = n;
	en->node_prev = NIL;
	en->node_next = s->nodes[n].head;
	if (en->node_next != NIL)
		s->entries[en->node_next].node_prev = e;
	s->nodes[n].head = e;
	s->nodes[n].count++;
}

/* Unlinks an entry from its node's list; a node left empty is forgotten,
 * so node churn (autoscaling) does not grow the index. */
static void unlink_node(struct kc_store *s, uint32_t e)
{
	struct entry *en = &s->entries[e];
	struct node *nd;
	uint32_t n = en->node;

	if (n == NIL)
		return;
	nd = &s->nodes[n];
	if (en->node_prev != NIL)
		s->entries[en->node_prev].node_next = en->node_next;
	else
		nd->head = en->node_next;
	if (en->node_next != NIL)
		s->entries[en->node_next].node_prev = en->node_prev;
	en->node = en->node_prev = en->node_next = NIL;
	if (--nd->count == 0) {
		itab_remove(s, &s->by_node, n, node_hash);
		free(nd->name);
		nd->name = NULL;
		nd->next_free = s->free_node;
		s->free_node = n;
	}
}

void kc_store_put(struct kc_store *s, void *obj, void **ret_old)
{
	const struct kc_meta *m = obj;
	uint32_t e = find(s, m->ns, m->name);
	const char *node = node_of(s, obj);
	void *old = NULL;

	if (e != NIL) {
		struct entry *en = &s->entries[e];
		const char *was = en->node != NIL ? s->nodes[en->node].name : NULL;

		old = en->obj;
		if (!was || !node || strcmp(was, node) != 0) {
			unlink_node(s, e);
			if (node)
				link_node(s, e, node);
		}
		en->obj = obj;
		en->gen = s->gen;
	} else {
		if (s->free_entry != NIL) {
			e = s->free_entry;
			s->free_entry = s->entries[e].node_next;
		} else {
			if (s->n_entries == s->cap_entries) {
				/* 1.5x: at 150,000 pods doubling would leave ~40% of
				 * the slab (32 B per slot) unused. */
				if (s->cap_entries > (NIL - 1) / 3 * 2)
					abort();  /* 2^32 objects: beyond any cluster */
				s->cap_entries = s->cap_entries ? s->cap_entries + s->cap_entries / 2 : 64;
				s->entries = kc_xrealloc(s->entries, (size_t)s->cap_entries * sizeof(*s->entries));
			}
			e = s->n_entries++;
		}
		s->entries[e] = (struct entry){ .obj = obj, .hash = key_hash(m->ns, m->name), .gen = s->gen,
						.node = NIL, .node_prev = NIL, .node_next = NIL };
		itab_insert(s, &s->by_key, e, entry_hash);
		if (node)
			link_node(s, e, node);
		s->count++;
	}
	if (ret_old)
		*ret_old = old;
	else
		free(old);
}

static void *remove_entry(struct kc_store *s, uint32_t e)
{
	struct entry *en = &s->entries[e];
	void *obj = en->obj;

	unlink_node(s, e);
	itab_remove(s, &s->by_key, e, entry_hash);
	en->obj = NULL;
	en->node_next = s->free_entry;
	s->free_entry = e;
	s->count--;
	return obj;
}

void *kc_store_take(struct kc_store *s, const char *ns, const char *name)
{
	uint32_t e = find(s, ns ? ns : "", name);

	return e == NIL ? NULL : remove_entry(s, e);
}

const void *kc_store_get(const struct kc_store *s, const char *ns, const char *name)
{
	uint32_t e = find(s, ns ? ns : "", name);

	return e == NIL ? NULL : s->entries[e].obj;
}

size_t kc_store_count(const struct kc_store *s)
{
	return s->count;
}

int kc_store_foreach(const struct kc_store *s, kc_store_visit_cb cb, void *userdata)
{
	for (uint32_t i = 0; i < s->n_entries; i++) {
		int r;

		if (!s->entries[i].obj)
			continue;
		r = cb(s->entries[i].obj, userdata);
		if (r)
			return r;
	}
	return 0;
}

int kc_store_foreach_on_node(const struct kc_store *s, const char *node, kc_store_visit_cb cb,
			     void *userdata)
{
	uint32_t n = node ? find_node(s, node) : NIL;

	if (n == NIL)
		return 0;
	for (uint32_t e = s->nodes[n].head; e != NIL; e = s->entries[e].node_next) {
		int r = cb(s->entries[e].obj, userdata);

		if (r)
			return r;
	}
	return 0;
}

void kc_store_begin_generation(struct kc_store *s)
{
	s->gen++;
}

size_t kc_store_sweep(struct kc_store *s, kc_store_sweep_cb cb, void *userdata)
{
	size_t removed = 0;

	for (uint32_t i = 0; i < s->n_entries; i++) {
		void *obj;

		if (!s->entries[i].obj || s->entries[i].gen == s->gen)
			continue;
		obj = remove_entry(s, i);
		removed++;
		if (cb)
			cb(obj, userdata);
		else
			free(obj);
	}
	return removed;
}

size_t kc_store_index_bytes(const struct kc_store *s)
{
	size_t b = sizeof(*s);

	b += (size_t)s->cap_entries * sizeof(struct entry);
	b += (s->by_key.mask + 1) * sizeof(uint32_t);
	b += (size_t)s->cap_nodes * sizeof(struct node);
	b += (s->by_node.mask + 1) * sizeof(uint32_t);
	for (uint32_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i].name)
			b += strlen(s->nodes[i].name) + 1;
	return b;
}
