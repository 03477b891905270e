/*
 * The string intern table (kc_intern.h): an open-addressing hash set with
 * linear probing whose strings live in large slabs, so that interning the
 * 150,000th "nvidia.com/gpu" costs a lookup and no allocation, and a new
 * string costs its bytes plus one 16-byte slot, never a malloc of its own.
 */
#include "kc_intern.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kc_hash.h"
#include "kc_util.h"

/* Big enough that slab headers are noise, small enough not to matter when idle. */
#define SLAB_SIZE (64 * 1024)

struct slab {
	struct slab *next;
	size_t used;
	size_t size;
	char data[];
};

struct slot {
	const char *str;  /* NULL = empty */
	uint32_t hash;
	uint32_t len;
};

struct kc_intern {
	struct slot *slots;
	size_t mask;       /* capacity - 1; capacity is a power of two */
	size_t count;
	struct slab *slabs;  /* head = the slab being filled */
	size_t slab_bytes;
};

struct kc_intern *kc_intern_new(void)
{
	struct kc_intern *in = kc_xcalloc(1, sizeof(*in));

	in->mask = 1024 - 1;
	in->slots = kc_xcalloc(in->mask + 1, sizeof(*in->slots));
	return in;
}

struct kc_intern *kc_intern_free(struct kc_intern *in)
{
	if (!in)
		return NULL;
	for (struct slab *s = in->slabs, *next; s; s = next) {
		next = s->next;
		free(s);
	}
	free(in->slots);
	free(in);
	return NULL;
}

/* Copies a string into a slab.  A string too big for a shared slab gets a
 * dedicated one behind the current head, so the head keeps filling. */
static const char *slab_store(struct kc_intern *in, const char *s, size_t len)
{
	struct slab *sl = in->slabs;
	char *p;

	if (!sl || sl->size - sl->used < len + 1) {
		size_t size = len + 1 > SLAB_SIZE / 4 ? len + 1 : SLAB_SIZE - sizeof(*sl);
		struct slab *n = kc_xmalloc(sizeof(*n) + size);

		n->used = 0;
		n->size = size;
		in->slab_bytes += sizeof(*n) + size;
		if (sl && size != SLAB_SIZE - sizeof(*sl)) {
			n->next = sl->next;
			sl->next = n;
		} else {
			n->next = sl;
			in->slabs = n;
		}
		sl = n;
	}
	p = sl->data + sl->used;
	memcpy(p, s, len);
	p[len] = '\0';
	sl->used += len + 1;
	return p;
}

static void grow(struct kc_intern *in)
{
	size_t cap = (in->mask + 1) * 2;
	struct slot *slots = kc_xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i <= in->mask; i++) {
		struct slot *o = &in->slots[i];
		size_t j;

		if (!o->str)
			continue;
		for (j = o->hash & (cap - 1); slots[j].str; j = (j + 1) & (cap - 1))
			;
		slots[j] = *o;
	}
	free(in->slots);
	in->slots = slots;
	in->mask = cap - 1;
}

const char *kc_intern(struct kc_intern *in, const char *s, size_t len)
{
	uint32_t h;
	size_t i;

	if (len == 0)
		return "";
	/* Lengths are stored in 32 bits; nothing we intern comes near that,
	 * but input must not be able to corrupt the table. */
	if (len > UINT32_MAX - 1)
		len = UINT32_MAX - 1;
	h = (uint32_t)kc_hash_bytes(0, s, len);
	for (i = h & in->mask; in->slots[i].str; i = (i + 1) & in->mask) {
		const struct slot *sl = &in->slots[i];

		if (sl->hash == h && sl->len == len && memcmp(sl->str, s, len) == 0)
			return sl->str;
	}
	if ((in->count + 1) * 10 > (in->mask + 1) * 7) {
		grow(in);
		for (i = h & in->mask; in->slots[i].str; i = (i + 1) & in->mask)
			;
	}
	in->slots[i].str = slab_store(in, s, len);
	in->slots[i].hash = h;
	in->slots[i].len = (uint32_t)len;
	in->count++;
	return in->slots[i].str;
}

const char *kc_intern_str(struct kc_intern *in, const char *s)
{
	return kc_intern(in, s, strlen(s));
}

size_t kc_intern_bytes(const struct kc_intern *in)
{
	return in ? sizeof(*in) + in->slab_bytes + (in->mask + 1) * sizeof(struct slot) : 0;
}

size_t kc_intern_count(const struct kc_intern *in)
{
	return in ? in->count : 0;
}
