/*
 * A canonical text form of every field the decoders keep, per kind (for the
 * decoder tests: a mismatch between two objects shows as a readable diff).
 */
#ifndef OBJECT_DUMP_H
#define OBJECT_DUMP_H

#include "kc_objects.h"

/* The object as text, one part per line; the caller frees it. */
char *object_dump(const struct kc_type *t, const void *obj);

#endif
