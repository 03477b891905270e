/*
 * A cache of typed objects keyed by namespace/name, with an index by node
 * (kc_type.node_of).  The store owns the objects put into it.  Pure: no uv.h,
 * no curl.h.
 *
 * Relists use generations: kc_store_begin_generation() starts a new one,
 * every kc_store_put() stamps its entry with the current generation, and
 * kc_store_sweep() removes (and hands to a callback) every entry that was not
 * put since, which is how objects deleted while a watch was down become
 * deletions.
 */
#ifndef KC_STORE_H
#define KC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kc_objects.h"

struct kc_store;

struct kc_store *kc_store_new(const struct kc_type *t);
/* Frees the store and every object in it; accepts NULL; returns NULL. */
struct kc_store *kc_store_free(struct kc_store *s);

/*
 * Inserts obj (taking ownership), replacing any object with the same
 * namespace/name.  *ret_old (may be NULL to free it instead) receives the
 * replaced object, now owned by the caller, or NULL.
 */
void kc_store_put(struct kc_store *s, void *obj, void **ret_old);
/* Removes and returns the object (owned by the caller), or NULL. */
void *kc_store_take(struct kc_store *s, const char *ns, const char *name);
/* Borrowed pointer, valid until the object is replaced or removed. */
const void *kc_store_get(const struct kc_store *s, const char *ns, const char *name);
size_t kc_store_count(const struct kc_store *s);

/* Visitors get borrowed pointers and must not modify the store; non-zero stops and is returned. */
typedef int (*kc_store_visit_cb)(const void *obj, void *userdata);
int kc_store_foreach(const struct kc_store *s, kc_store_visit_cb cb, void *userdata);
int kc_store_foreach_on_node(const struct kc_store *s, const char *node, kc_store_visit_cb cb,
			     void *userdata);

void kc_store_begin_generation(struct kc_store *s);
/* Removes entries not put in the current generation; cb takes ownership of each. */
typedef void (*kc_store_sweep_cb)(void *obj, void *userdata);
size_t kc_store_sweep(struct kc_store *s, kc_store_sweep_cb cb, void *userdata);

/* Bytes held by the store's index (not the objects), for the benchmark. */
size_t kc_store_index_bytes(const struct kc_store *s);

#endif
