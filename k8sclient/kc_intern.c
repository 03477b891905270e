/*
 * The string intern table (kc_intern.h): an open-addressing hash set with
 * linear probing whose strings live in large slabs, so that interning the
 * 150,000th "nvidia.com/gpu" costs a lookup and no allocation, and a new
 * string costs its bytes plus one 8-byte slot, never a malloc of its own.
 *
 * A slot is the string's 32-bit hash and a 32-bit reference to its bytes:
 * the index of its slab in a table of slabs (high 16 bits) and its offset in
 * that slab (low 16 bits), plus one so that 0 is an empty slot; hence a shared
 * slab of 64 KiB (no string starts at its last byte, so the sum never wraps).  A string
 * too big for the shared slab gets a slab of its own (at offset 0).  Slabs
 * never move, so the strings handed out stay where they are; only the table
 * of slab pointers grows.  A slot holds no length: strings are compared as C
 * strings, hence kc_intern() stops at a NUL in its input.
 */
#include "kc_intern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_hash.h"
#include "kc_util.h"

/* Big enough that the table of slabs is noise, small enough not to matter when idle;
 * and no bigger than a 16-bit offset reaches. */
#define SLAB_SIZE (64 * 1024)
#define MAX_SLABS (1u << 16)  /* 4 GiB of shared slabs, or 65,536 big strings */
#define NO_SLAB UINT32_MAX

struct slot {
	uint32_t hash;
	uint32_t ref;  /* (slab << 16 | offset) + 1; 0 = empty */
};

struct kc_intern {
	struct slot *slots;
	size_t mask;       /* capacity - 1; capacity is a power of two */
	size_t count;
	char **slabs;      /* by index; each a SLAB_SIZE shared slab or one big string */
	uint32_t n_slabs;
	uint32_t cap_slabs;
	uint32_t cur;      /* the shared slab being filled; NO_SLAB before the first */
	size_t used;       /* bytes of it in use */
	size_t slab_bytes;
};

struct kc_intern *kc_intern_new(void)
{
	struct kc_intern *in = kc_xcalloc(1, sizeof(*in));

	in->mask = 1024 - 1;
	in->slots = kc_xcalloc(in->mask + 1, sizeof(*in->slots));
	in->cur = NO_SLAB;
	return in;
}

struct kc_intern *kc_intern_free(struct kc_intern *in)
{
	if (!in)
		return NULL;
	for (uint32_t i = 0; i < in->n_slabs; i++)
		free(in->slabs[i]);
	free(in->slabs);
	free(in->slots);
	free(in);
	return NULL;
}

static char *ref_str(const struct kc_intern *in, uint32_t ref)
{
	return in->slabs[(ref - 1) >> 16] + ((ref - 1) & 0xFFFF);
}

/* A new slab of size bytes, at the next index. */
static uint32_t slab_new(struct kc_intern *in, size_t size)
{
	if (in->n_slabs == MAX_SLABS) {
		/* The bound of the references: 4 GiB of strings, far past any
		 * memory limit the controller runs under.  Fatal, as running out of
		 * memory is (kc_util.h). */
		fprintf(stderr, "F device-descheduler: intern table full (%u slabs)\n", MAX_SLABS);
		abort();
	}
	if (in->n_slabs == in->cap_slabs) {
		in->cap_slabs = in->cap_slabs ? in->cap_slabs * 2 : 16;
		in->slabs = kc_xrealloc(in->slabs, in->cap_slabs * sizeof(*in->slabs));
	}
	in->slabs[in->n_slabs] = kc_xmalloc(size);
	in->slab_bytes += size;
	return in->n_slabs++;
}

/* Copies a string into a slab and returns its reference.  A string too big
 * for the shared slab gets one of its own, and the shared one keeps filling. */
static uint32_t slab_store(struct kc_intern *in, const char *s, size_t len)
{
	uint32_t ref;
	char *p;

	if (len + 1 > SLAB_SIZE / 4) {
		ref = (slab_new(in, len + 1) << 16) + 1;
	} else {
		if (in->cur == NO_SLAB || SLAB_SIZE - in->used < len + 1) {
			in->cur = slab_new(in, SLAB_SIZE);
			in->used = 0;
		}
		ref = (in->cur << 16 | (uint32_t)in->used) + 1;
		in->used += len + 1;
	}
	p = ref_str(in, ref);
	memcpy(p, s, len);
	p[len] = '\0';
	return ref;
}

static void grow(struct kc_intern *in)
{
	size_t cap = (in->mask + 1) * 2;
	struct slot *slots = kc_xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i <= in->mask; i++) {
		struct slot *o = &in->slots[i];
		size_t j;

		if (!o->ref)
			continue;
		for (j = o->hash & (cap - 1); slots[j].ref; j = (j + 1) & (cap - 1))
			;
		slots[j] = *o;
	}
	free(in->slots);
	in->slots = slots;
	in->mask = cap - 1;
}

const char *kc_intern(struct kc_intern *in, const char *s, size_t len)
{
	const char *nul = len ? memchr(s, '\0', len) : NULL;
	uint32_t h;
	size_t i;

	if (nul)
		len = (size_t)(nul - s);
	if (len == 0)
		return "";
	h = (uint32_t)kc_hash_bytes(0, s, len);
	for (i = h & in->mask; in->slots[i].ref; i = (i + 1) & in->mask) {
		const struct slot *sl = &in->slots[i];
		const char *str;

		if (sl->hash != h)
			continue;
		/* strncmp stops at the stored string's NUL: s has none before len. */
		str = ref_str(in, sl->ref);
		if (strncmp(str, s, len) == 0 && str[len] == '\0')
			return str;
	}
	if ((in->count + 1) * 10 > (in->mask + 1) * 7) {
		grow(in);
		for (i = h & in->mask; in->slots[i].ref; i = (i + 1) & in->mask)
			;
	}
	in->slots[i].ref = slab_store(in, s, len);
	in->slots[i].hash = h;
	in->count++;
	return ref_str(in, in->slots[i].ref);
}

const char *kc_intern_str(struct kc_intern *in, const char *s)
{
	return kc_intern(in, s, strlen(s));
}

size_t kc_intern_bytes(const struct kc_intern *in)
{
	return in ? sizeof(*in) + in->slab_bytes + in->cap_slabs * sizeof(*in->slabs) +
			    (in->mask + 1) * sizeof(struct slot)
		  : 0;
}

size_t kc_intern_count(const struct kc_intern *in)
{
	return in ? in->count : 0;
}
