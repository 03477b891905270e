/*
 * The object cache (kc_store.h).  Entries live in fixed-size chunks addressed
 * by index, so they never move and a growing store wastes at most one chunk:
 * an entry is the object pointer and the index of the next entry on the same
 * node (12 bytes).  An open-addressing table of 32-bit slots, each an entry
 * index and 8 bits of its key's hash, finds entries by namespace/name; singly
 * linked lists threaded through the entries give the objects on each node,
 * whose names a second small table maps to list heads.  The hash and the node
 * of an entry are not stored: they are computed from the object again when
 * needed (a table grows, an entry leaves a node), which is rare next to
 * lookups.  About 12 bytes of entry plus 6-12 bytes of table per object.
 */
#include "kc_store.h"

#include <stdlib.h>
#include <string.h>

#include "kc_hash.h"
#include "kc_util.h"

#define NIL UINT32_MAX

/* Entries per chunk: 1024 x 12 bytes, plus the generation bits. */
#define CHUNK_SHIFT 10
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
/* A table slot is an entry index in its low 24 bits and 8 bits of the key's hash above them. */
#define IDX_BITS 24
#define MAX_ENTRIES ((1u << IDX_BITS) - 1)
#define SLOT_IDX(x) ((x) & MAX_ENTRIES)
#define SLOT_TAG(h) ((h) >> IDX_BITS)

struct chunk {
	void *obj[CHUNK_ENTRIES];       /* NULL = free (the free list chains through next) */
	uint32_t next[CHUNK_ENTRIES];   /* the next entry on the same node, NIL at the end */
	uint64_t seen[CHUNK_ENTRIES / 64]; /* put since kc_store_begin_generation() */
};

struct node {
	char *name;      /* NULL = free */
	uint32_t hash;
	uint32_t head;   /* first entry on this node */
	uint32_t count;
	uint32_t next_free;
};

/* An open-addressing table of 32-bit slots with linear probing and
 * backward-shift deletion (no tombstones). */
struct itab {
	uint32_t *slots;  /* NIL = empty */
	size_t mask;
	size_t count;
};

struct kc_store {
	const struct kc_type *t;
	struct chunk **chunks;
	uint32_t n_chunks;
	uint32_t n_entries;   /* used prefix of the entries */
	uint32_t free_entry;  /* head of the free list, NIL if none */
	size_t count;
	struct itab by_key;
	struct node *nodes;
	uint32_t n_nodes;
	uint32_t cap_nodes;
	uint32_t free_node;
	struct itab by_node;
};

static inline struct chunk *chunk_of(const struct kc_store *s, uint32_t e)
{
	return s->chunks[e >> CHUNK_SHIFT];
}

static inline void *obj_at(const struct kc_store *s, uint32_t e)
{
	return chunk_of(s, e)->obj[e & (CHUNK_ENTRIES - 1)];
}

static inline uint32_t *next_at(const struct kc_store *s, uint32_t e)
{
	return &chunk_of(s, e)->next[e & (CHUNK_ENTRIES - 1)];
}

static void set_seen(struct kc_store *s, uint32_t e, bool seen)
{
	uint64_t *w = &chunk_of(s, e)->seen[(e & (CHUNK_ENTRIES - 1)) / 64];
	uint64_t bit = 1ULL << (e % 64);

	*w = seen ? *w | bit : *w & ~bit;
}

static bool is_seen(const struct kc_store *s, uint32_t e)
{
	return chunk_of(s, e)->seen[(e & (CHUNK_ENTRIES - 1)) / 64] >> (e % 64) & 1;
}

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

/* The full hash of what slot x stands for. */
typedef uint32_t (*hash_of_fn)(const struct kc_store *s, uint32_t x);

static uint32_t entry_hash(const struct kc_store *s, uint32_t x)
{
	const struct kc_meta *m = obj_at(s, SLOT_IDX(x));

	return key_hash(m->ns, m->name);
}

static uint32_t node_hash(const struct kc_store *s, uint32_t x)
{
	return s->nodes[x].hash;
}

/* Inserts slot value x (whose hash is h). */
static void itab_insert(const struct kc_store *s, struct itab *t, uint32_t x, uint32_t h, hash_of_fn hf)
{
	size_t i;

	if ((t->count + 1) * 10 > (t->mask + 1) * 7) {
		size_t cap = (t->mask + 1) * 2;
		uint32_t *slots = kc_xmalloc(cap * sizeof(*slots));

		memset(slots, 0xff, cap * sizeof(*slots));
		for (size_t j = 0; j <= t->mask; j++) {
			uint32_t y = t->slots[j];

			if (y == NIL)
				continue;
			for (i = hf(s, y) & (cap - 1); slots[i] != NIL; i = (i + 1) & (cap - 1))
				;
			slots[i] = y;
		}
		free(t->slots);
		t->slots = slots;
		t->mask = cap - 1;
	}
	for (i = h & t->mask; t->slots[i] != NIL; i = (i + 1) & t->mask)
		;
	t->slots[i] = x;
	t->count++;
}

static void itab_remove(const struct kc_store *s, struct itab *t, uint32_t x, uint32_t h, hash_of_fn hf)
{
	size_t i, j;

	for (i = h & t->mask; t->slots[i] != x; i = (i + 1) & t->mask)
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
		free(obj_at(s, i));
	for (uint32_t i = 0; i < s->n_chunks; i++)
		free(s->chunks[i]);
	for (uint32_t i = 0; i < s->n_nodes; i++)
		free(s->nodes[i].name);
	free(s->chunks);
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
		const struct kc_meta *m;

		if (x >> IDX_BITS != SLOT_TAG(h))
			continue;
		m = obj_at(s, SLOT_IDX(x));
		if (strcmp(m->name, name) == 0 && strcmp(m->ns, ns) == 0)
			return SLOT_IDX(x);
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
		itab_insert(s, &s->by_node, n, s->nodes[n].hash, node_hash);
	}
	*next_at(s, e) = s->nodes[n].head;
	s->nodes[n].head = e;
	s->nodes[n].count++;
}

/* Unlinks an entry from the list of the node its object is on (the walk is
 * as long as that node's list: tens of pods); a node left empty is
 * forgotten, so node churn (autoscaling) does not grow the index. */
static void unlink_node(struct kc_store *s, uint32_t e)
{
	const char *name = node_of(s, obj_at(s, e));
	uint32_t n = name ? find_node(s, name) : NIL;
	struct node *nd;
	uint32_t *link;

	if (n == NIL)
		return;
	nd = &s->nodes[n];
	for (link = &nd->head; *link != e; link = next_at(s, *link))
		;
	*link = *next_at(s, e);
	*next_at(s, e) = NIL;
	if (--nd->count == 0) {
		itab_remove(s, &s->by_node, n, nd->hash, node_hash);
		free(nd->name);
		nd->name = NULL;
		nd->next_free = s->free_node;
		s->free_node = n;
	}
}

static uint32_t new_entry(struct kc_store *s)
{
	uint32_t e;

	if (s->free_entry != NIL) {
		e = s->free_entry;
		s->free_entry = *next_at(s, e);
		return e;
	}
	if (s->n_entries == MAX_ENTRIES)
		abort(); /* 16.7 million objects of one kind: beyond any cluster */
	if ((s->n_entries & (CHUNK_ENTRIES - 1)) == 0) {
		s->chunks = kc_xrealloc(s->chunks, (s->n_chunks + 1) * sizeof(*s->chunks));
		s->chunks[s->n_chunks++] = kc_xcalloc(1, sizeof(struct chunk));
	}
	return s->n_entries++;
}

void kc_store_put(struct kc_store *s, void *obj, void **ret_old)
{
	const struct kc_meta *m = obj;
	uint32_t e = find(s, m->ns, m->name);
	const char *node = node_of(s, obj);
	void *old = NULL;

	if (e != NIL) {
		const char *was = node_of(s, obj_at(s, e));

		old = obj_at(s, e);
		if (!was || !node || strcmp(was, node) != 0) {
			unlink_node(s, e);
			if (node)
				link_node(s, e, node);
		}
		chunk_of(s, e)->obj[e & (CHUNK_ENTRIES - 1)] = obj;
	} else {
		uint32_t h = key_hash(m->ns, m->name);

		e = new_entry(s);
		chunk_of(s, e)->obj[e & (CHUNK_ENTRIES - 1)] = obj;
		*next_at(s, e) = NIL;
		itab_insert(s, &s->by_key, e | SLOT_TAG(h) << IDX_BITS, h, entry_hash);
		if (node)
			link_node(s, e, node);
		s->count++;
	}
	set_seen(s, e, true);
	if (ret_old)
		*ret_old = old;
	else
		free(old);
}

static void *remove_entry(struct kc_store *s, uint32_t e)
{
	void *obj = obj_at(s, e);
	const struct kc_meta *m = obj;
	uint32_t h = key_hash(m->ns, m->name);

	unlink_node(s, e);
	itab_remove(s, &s->by_key, e | SLOT_TAG(h) << IDX_BITS, h, entry_hash);
	chunk_of(s, e)->obj[e & (CHUNK_ENTRIES - 1)] = NULL;
	*next_at(s, e) = s->free_entry;
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

	return e == NIL ? NULL : obj_at(s, e);
}

size_t kc_store_count(const struct kc_store *s)
{
	return s->count;
}

int kc_store_foreach(const struct kc_store *s, kc_store_visit_cb cb, void *userdata)
{
	for (uint32_t i = 0; i < s->n_entries; i++) {
		const void *obj = obj_at(s, i);
		int r;

		if (!obj)
			continue;
		r = cb(obj, userdata);
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
	for (uint32_t e = s->nodes[n].head; e != NIL; e = *next_at(s, e)) {
		int r = cb(obj_at(s, e), userdata);

		if (r)
			return r;
	}
	return 0;
}

void kc_store_begin_generation(struct kc_store *s)
{
	for (uint32_t i = 0; i < s->n_chunks; i++)
		memset(s->chunks[i]->seen, 0, sizeof(s->chunks[i]->seen));
}

size_t kc_store_sweep(struct kc_store *s, kc_store_sweep_cb cb, void *userdata)
{
	size_t removed = 0;

	for (uint32_t i = 0; i < s->n_entries; i++) {
		void *obj;

		if (!obj_at(s, i) || is_seen(s, i))
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

	b += (size_t)s->n_chunks * (sizeof(struct chunk) + sizeof(*s->chunks));
	b += (s->by_key.mask + 1) * sizeof(uint32_t);
	b += (size_t)s->cap_nodes * sizeof(struct node);
	b += (s->by_node.mask + 1) * sizeof(uint32_t);
	for (uint32_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i].name)
			b += strlen(s->nodes[i].name) + 1;
	return b;
}
