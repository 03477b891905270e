/*
 * The string-keyed hash map declared in strmap.h.  Buckets are a power of
 * two and double when the map holds more entries than buckets, so a lookup
 * walks about one entry; keys are compared by hash first.
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "kc_util.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *m, strmap_free_cb free_value)
{
	m->n_buckets = 16;
	m->buckets = kc_xcalloc(m->n_buckets, sizeof(*m->buckets));
	m->count = 0;
	m->free_value = free_value;
}

void strmap_done(struct strmap *m)
{
	if (!m->buckets)
		return;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct strmap_entry *e = m->buckets[i];

		while (e) {
			struct strmap_entry *next = e->next;

			if (m->free_value)
				m->free_value(e->value);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
	m->count = 0;
}

static struct strmap_entry **find_slot(const struct strmap *m, const char *key, uint64_t h)
{
	struct strmap_entry **pe = &m->buckets[h & (m->n_buckets - 1)];

	while (*pe && ((*pe)->hash != h || strcmp((*pe)->key, key) != 0))
		pe = &(*pe)->next;
	return pe;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_entry **pe = find_slot(m, key, hash_str(key));

	return *pe ? (*pe)->value : NULL;
}

static void grow(struct strmap *m)
{
	size_t n = m->n_buckets * 2;
	struct strmap_entry **b = kc_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->n_buckets; i++) {
		struct strmap_entry *e = m->buckets[i];

		while (e) {
			struct strmap_entry *next = e->next;

			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	struct strmap_entry **pe = find_slot(m, key, h);
	struct strmap_entry *e;

	if (*pe) {
		void *old = (*pe)->value;

		(*pe)->value = value;
		return old;
	}
	e = kc_xmalloc(sizeof(*e));
	e->next = NULL;
	e->hash = h;
	e->key = kc_xstrdup(key);
	e->value = value;
	*pe = e;
	if (++m->count > m->n_buckets)
		grow(m);
	return NULL;
}

/* Unlinks and frees the entry; *ret_value gets its value. */
static bool unlink_entry(struct strmap *m, const char *key, void **ret_value)
{
	struct strmap_entry **pe = find_slot(m, key, hash_str(key));
	struct strmap_entry *e = *pe;

	if (!e)
		return false;
	*pe = e->next;
	*ret_value = e->value;
	free(e->key);
	free(e);
	m->count--;
	return true;
}

void *strmap_del(struct strmap *m, const char *key)
{
	void *v = NULL;

	unlink_entry(m, key, &v);
	return v;
}

bool strmap_remove(struct strmap *m, const char *key)
{
	void *v;

	if (!unlink_entry(m, key, &v))
		return false;
	if (m->free_value)
		m->free_value(v);
	return true;
}

int strmap_foreach(const struct strmap *m, strmap_visit_cb cb, void *userdata)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		for (struct strmap_entry *e = m->buckets[i]; e; e = e->next) {
			int r = cb(e->key, e->value, userdata);

			if (r)
				return r;
		}
	}
	return 0;
}
