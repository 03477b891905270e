/*
 * A string intern table.  Node names, namespaces, resource names, label keys,
 * condition types and the like repeat across 150,000 cached objects; each
 * distinct value is stored once and objects point at it.  Interned strings
 * live until kc_intern_free(); two interned strings are equal iff their
 * pointers are.  Not thread-safe (one loop, one thread).
 */
#ifndef KC_INTERN_H
#define KC_INTERN_H

#include <stddef.h>

struct kc_intern;

struct kc_intern *kc_intern_new(void);
/* Frees the table and every string it returned; accepts NULL; returns NULL. */
struct kc_intern *kc_intern_free(struct kc_intern *in);
/* Returns the interned copy of s[0..len) (which need not be NUL-terminated), up to its first NUL
 * if it holds one: interned strings are C strings.  At most 4 GiB of strings (kc_intern.c). */
const char *kc_intern(struct kc_intern *in, const char *s, size_t len);
const char *kc_intern_str(struct kc_intern *in, const char *s);
/* Bytes held by the table (strings and index), for the benchmark and metrics. */
size_t kc_intern_bytes(const struct kc_intern *in);
size_t kc_intern_count(const struct kc_intern *in);

#endif
