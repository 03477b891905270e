/*
 * A string-keyed hash map (chained, doubling, FNV-1a): the one map the pure
 * decision modules (health, planner, evict_limits) share.  Keys are copied
 * and owned by the map.  Values are owned by the map once put when it was
 * given a value destructor: strmap_remove() and strmap_done() free them with
 * it, so callers need no "free every value" walk of their own.  Pure: no
 * uv.h, no curl.h.
 */
#ifndef STRMAP_H
#define STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frees one value; called by strmap_remove() and strmap_done(). */
typedef void (*strmap_free_cb)(void *value);

struct strmap_entry {
	struct strmap_entry *next;
	uint64_t hash;
	char *key; /* owned by the map */
	void *value;
};

struct strmap {
	struct strmap_entry **buckets;
	size_t n_buckets;
	size_t count;
	strmap_free_cb free_value; /* NULL: values are the caller's */
};

/* free_value (may be NULL) frees a value the map drops in strmap_remove() or strmap_done(). */
void strmap_init(struct strmap *m, strmap_free_cb free_value);
/* Frees every entry, key and (with a destructor) value. Accepts a map already done. */
void strmap_done(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns the previous value (now owned by the caller) or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Unlinks the entry; returns its value (now owned by the caller) or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/* Unlinks the entry and frees its value with the destructor; returns whether it was there. */
bool strmap_remove(struct strmap *m, const char *key);
/* Visits every entry; the callback may not modify the map. Non-zero stops and is returned. */
typedef int (*strmap_visit_cb)(const char *key, void *value, void *userdata);
int strmap_foreach(const struct strmap *m, strmap_visit_cb cb, void *userdata);

#endif
