/*
 * A strict YAML reader for configuration files, with a table-driven schema
 * walker.  libyaml's event parser turns the text into a small tree of
 * scalars, lists and mappings that keeps every node's line and column
 * (anchors, aliases, tags and extra documents are refused while the tree is
 * built).  The tree is then walked against tables (struct ys_fieldset) that
 * describe each mapping of a schema, writing straight into a C struct at the
 * offsets the tables give.  The walk stops at the first problem and reports it
 * once, through struct ys_ctx, as
 *   FILE:LINE:COL: FIELD.PATH: message
 * A field given as an explicit null (`~`, `null` or nothing) counts as absent,
 * as Kubernetes does for JSON nulls.  The schema itself (which fields, which
 * defaults, which cross-field rules) belongs to the caller: policy.c holds the
 * DeviceDeschedulerPolicy's.  Every function that fails returns -EINVAL with
 * the message in the context's kc_error.  Pure: no uv.h, no curl.h.
 */
#ifndef YAMLSCHEMA_H
#define YAMLSCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_objects.h"
#include "kc_util.h"

/* ---- the tree ---- */

enum ys_kind {
	YS_SCALAR,
	YS_SEQ,
	YS_MAPPING,
};

struct ys_node {
	enum ys_kind kind;
	bool plain;	  /* a plain (unquoted, non-block) scalar */
	size_t line, col; /* 1-based */
	char *text;	  /* scalars: NUL-terminated copy */
	size_t len;
	struct ys_node **kids; /* lists: the items; mappings: key, value, key, value, ... */
	size_t n, cap;
};

/* Frees a tree; accepts NULL. */
void ys_node_free(struct ys_node *n);
/* Whether a node is an explicit null: a plain "", "~", "null", "Null" or "NULL" (NULL counts too). */
bool ys_is_null(const struct ys_node *n);

/* ---- errors and the field path ---- */

/* The walk's state: the file name for messages, where the error goes, and the current field path. */
struct ys_ctx {
	const char *name;
	struct kc_error *err;
	char path[320];
	size_t path_len;
};


/* Appends ".key" (or "key" at the root) / "[i]" to the path; ys_path_pop(c, saved_len) undoes either. */
void ys_path_push_key(struct ys_ctx *c, const char *key);
void ys_path_push_index(struct ys_ctx *c, size_t i);
void ys_path_pop(struct ys_ctx *c, size_t len);
/* Sets the error "NAME:LINE:COL: PATH: message"; returns -EINVAL. */
int ys_fail_at(struct ys_ctx *c, size_t line, size_t col, const char *fmt, ...) KC_PRINTF(4, 5);
/* The same at a node's position. */
int ys_fail(struct ys_ctx *c, const struct ys_node *at, const char *fmt, ...) KC_PRINTF(3, 4);
/* Reports a rule on field `name` of `map` at its key when given, else at the mapping. */
int ys_fail_field(struct ys_ctx *c, const struct ys_node *map, const char *name, const char *fmt, ...)
    KC_PRINTF(4, 5);
/*
 * What a node is, for "expected X, got Y": "a mapping", "a list", "null" or
 * the scalar quoted, escaped and shortened (with note_quoted, a quoted scalar
 * is called "the quoted string ...").  Writes into buf and returns it, or a
 * static string.
 */
const char *ys_got(const struct ys_node *n, bool note_quoted, char *buf, size_t size);

/*
 * Parses text (len bytes, need not be NUL-terminated) into a tree.  Returns 0
 * with *ret_root NULL for a stream without any document; on success the
 * caller frees *ret_root with ys_node_free().
 */
int ys_build_tree(struct ys_ctx *c, const char *text, size_t len, struct ys_node **ret_root);

/* ---- scalar conversions (each fails with a message at the node) ---- */

/* A string (no NUL inside; empty only with allow_empty); *ret is a copy the caller frees. */
int ys_get_string(struct ys_ctx *c, const struct ys_node *n, bool allow_empty, char **ret);
/* A plain true/false (True, TRUE, False, FALSE). */
int ys_get_bool(struct ys_ctx *c, const struct ys_node *n, bool *ret);
/* A plain decimal integer in [min, max]; a quoted "5" is a string, not a number. */
int ys_get_int(struct ys_ctx *c, const struct ys_node *n, long long min, long long max, long long *ret);
/* A non-negative Go-style duration (see duration.h), in ms. */
int ys_get_duration(struct ys_ctx *c, const struct ys_node *n, uint64_t *ret);
/* "True", "False" or "Unknown". */
int ys_get_status(struct ys_ctx *c, const struct ys_node *n, enum kc_cond_status *ret);
int ys_expect_seq(struct ys_ctx *c, const struct ys_node *n);
int ys_expect_map(struct ys_ctx *c, const struct ys_node *n);
/* Replaces *list (a default, possibly) with the non-empty strings of a YAML list; owned by the caller. */
int ys_get_strv(struct ys_ctx *c, const struct ys_node *n, char ***list, size_t *count);
/* Frees a string vector; accepts NULL. */
void ys_strv_free(char **v, size_t n);
/* Fails unless the node is exactly the string `want`. */
int ys_check_const(struct ys_ctx *c, const struct ys_node *v, const char *want);

/* ---- mappings walked against tables ---- */

enum ys_ftype {
	YS_F_BOOL,
	YS_F_DURATION,
	YS_F_U32, /* uint32_t in [min, max] */
	YS_F_I32, /* int32_t in [min, max] */
	YS_F_I64, /* int64_t in [min, max] */
	YS_F_STRING,
	YS_F_STATUS, /* enum kc_cond_status */
	YS_F_STRV,	  /* char ** at off, size_t at off2 */
	YS_F_MAP,	  /* a nested mapping written into the same object */
	YS_F_CUSTOM,
};

struct ys_field;
typedef int (*ys_field_fn)(struct ys_ctx *c, const struct ys_node *value, void *base);

struct ys_fieldset {
	const struct ys_field *fields;
	size_t n;
	/* Runs after the mapping was walked, for rules that span its fields. */
	int (*check)(struct ys_ctx *c, const struct ys_node *map, void *base);
};

struct ys_field {
	const char *name;
	enum ys_ftype type;
	size_t off, off2;
	long long min, max;
	const struct ys_fieldset *sub;
	ys_field_fn fn;
};

/*
 * Walks a mapping: every key must name a field of fs (unknown and duplicate
 * keys are errors), null values are skipped, then fs->check runs.  base is
 * the struct the fields' offsets refer to.
 */
int ys_walk_fields(struct ys_ctx *c, const struct ys_node *map, const struct ys_fieldset *fs, void *base);
/* The value of key `name` in a mapping, or NULL when absent or null; *ret_key (optional) gets the key. */
const struct ys_node *ys_find_key(const struct ys_node *map, const char *name, const struct ys_node **ret_key);
/* Fails unless field `name` is present (and not null). */
int ys_require(struct ys_ctx *c, const struct ys_node *map, const char *name);
/* Fails unless a mapping key is a usable field name (a scalar without NUL). */
int ys_field_name(struct ys_ctx *c, const struct ys_node *key);
/*
 * For mappings with free-form keys (labels): the entry index of the earliest
 * repeated key, found by sorting, or SIZE_MAX; *ret_first is set to the index
 * of the entry it repeats.
 */
size_t ys_first_duplicate(const struct ys_node *map, size_t *ret_first);

#endif
