/*
 * The DeviceDeschedulerPolicy loader declared in policy.h.  libyaml's event
 * parser turns the text into a small tree of scalars, lists and mappings that
 * keeps every node's line and column (anchors, aliases, tags and extra
 * documents are refused while the tree is built).  The tree is then walked
 * against tables that describe each mapping of the schema, writing straight
 * into a struct policy that starts out with every default.  The walk stops at
 * the first problem and reports it once as
 *   FILE:LINE:COL: FIELD.PATH: message
 * A field given as an explicit null (`~`, `null` or nothing) counts as absent
 * and keeps its default, as Kubernetes does for JSON nulls.
 */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* A policy is a short file; these bounds (and POLICY_MAX_SIZE) keep hostile input cheap. */
#define MAX_DEPTH 32
#define MAX_NODES 200000

#define API_VERSION "device-descheduler/v1alpha1"
#define KIND "DeviceDeschedulerPolicy"

/* ---- the YAML tree ---- */

enum ykind {
	Y_SCALAR,
	Y_SEQ,
	Y_MAP,
};

struct ynode {
	enum ykind kind;
	bool plain;	  /* a plain (unquoted, non-block) scalar */
	size_t line, col; /* 1-based */
	char *text;	  /* scalars: NUL-terminated copy */
	size_t len;
	struct ynode **kids; /* lists: the items; mappings: key, value, key, value, ... */
	size_t n, cap;
};

static void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static bool is_null(const struct ynode *n)
{
	if (!n || n->kind != Y_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* ---- errors ---- */

struct ctx {
	const char *name;
	struct kc_error *err;
	char path[320];
	size_t path_len;
};

/* Advances over what snprintf wrote, clamped so that a long key truncates the path instead of overflowing. */
static void path_advance(struct ctx *c, int n)
{
	size_t room = sizeof(c->path) - c->path_len;

	if (n > 0)
		c->path_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void path_push_key(struct ctx *c, const char *key)
{
	size_t room = sizeof(c->path) - c->path_len;

	path_advance(c, snprintf(c->path + c->path_len, room, "%s%s", c->path_len ? "." : "", key));
}

static void path_push_index(struct ctx *c, size_t i)
{
	size_t room = sizeof(c->path) - c->path_len;

	path_advance(c, snprintf(c->path + c->path_len, room, "[%zu]", i));
}

static void path_pop(struct ctx *c, size_t len)
{
	c->path_len = len;
	c->path[len] = '\0';
}

static int fail_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...) KC_PRINTF(4, 5);
static int fail_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kc_error_set(c->err, -EINVAL, "%s:%zu:%zu: %s%s%s", c->name, line, col, c->path,
			    c->path_len ? ": " : "", msg);
}

static int fail(struct ctx *c, const struct ynode *at, const char *fmt, ...) KC_PRINTF(3, 4);
static int fail(struct ctx *c, const struct ynode *at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail_at(c, at->line, at->col, "%s", msg);
}

/*
 * Writes a scalar as a double-quoted, escaped and shortened string, so that a
 * message stays on one line and within bounds whatever the input held.
 */
static const char *quote(const struct ynode *n, char *buf, size_t size)
{
	size_t o = 0, limit = size - 8;

	buf[o++] = '"';
	for (size_t i = 0; i < n->len; i++) {
		unsigned char ch = (unsigned char)n->text[i];

		if (o >= limit - 4) {
			/* Do not cut a UTF-8 sequence in half. */
			while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
				o--;
			if (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
				o--;
			buf[o++] = '.';
			buf[o++] = '.';
			buf[o++] = '.';
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (ch == '\t') {
			buf[o++] = '\\';
			buf[o++] = 't';
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* What a node is, for "expected X, got Y"; quoted scalars are called out when a type needs a plain one. */
static const char *got(const struct ynode *n, bool note_quoted, char *buf, size_t size)
{
	char q[96];

	if (n->kind == Y_MAP)
		return "a mapping";
	if (n->kind == Y_SEQ)
		return "a list";
	if (is_null(n))
		return "null";
	quote(n, q, sizeof(q));
	if (note_quoted && !n->plain)
		snprintf(buf, size, "the quoted string %s", q);
	else
		snprintf(buf, size, "%s", q);
	return buf;
}

/* ---- building the tree from libyaml events ---- */

static void append_kid(struct ynode *parent, struct ynode *kid)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->kids = kc_xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
	}
	parent->kids[parent->n++] = kid;
}

/* libyaml's reader errors carry a byte offset rather than a mark. */
static void offset_to_mark(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int yaml_failed(struct ctx *c, yaml_parser_t *parser, const char *text, size_t len)
{
	size_t line, col;

	if (parser->error == YAML_READER_ERROR) {
		offset_to_mark(text, len, parser->problem_offset, &line, &col);
		return fail_at(c, line, col, "invalid YAML: %s",
			       parser->problem ? parser->problem : "unreadable");
	}
	line = parser->problem_mark.line + 1;
	col = parser->problem_mark.column + 1;
	if (parser->context)
		return fail_at(c, line, col, "invalid YAML: %s (%s at line %zu)",
			       parser->problem ? parser->problem : "syntax error", parser->context,
			       parser->context_mark.line + 1);
	return fail_at(c, line, col, "invalid YAML: %s", parser->problem ? parser->problem : "syntax error");
}

/*
 * Parses the text into a tree.  Returns 0 with *ret_root NULL for a stream
 * without any document.
 */
static int build_tree(struct ctx *c, const char *text, size_t len, struct ynode **ret_root)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct ynode *root = NULL, *stack[MAX_DEPTH];
	size_t depth = 0, nodes = 0;
	int docs = 0, r = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser))
		return fail_at(c, 1, 1, "cannot initialize the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		struct ynode *n = NULL;
		const yaml_char_t *anchor = NULL, *tag = NULL;
		size_t line, col;

		if (!yaml_parser_parse(&parser, &ev)) {
			r = yaml_failed(c, &parser, text, len);
			goto free_tree;
		}
		line = ev.start_mark.line + 1;
		col = ev.start_mark.column + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0)
				r = fail_at(c, line, col,
					    "a policy file holds one YAML document, found a second one");
			break;
		case YAML_ALIAS_EVENT:
			r = fail_at(c, line, col, "YAML anchors and aliases are not supported");
			break;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			n = kc_xcalloc(1, sizeof(*n));
			n->kind = Y_SCALAR;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			n->len = ev.data.scalar.length;
			n->text = kc_xstrndup((const char *)ev.data.scalar.value, n->len);
			break;
		case YAML_SEQUENCE_START_EVENT:
			anchor = ev.data.sequence_start.anchor;
			tag = ev.data.sequence_start.tag;
			n = kc_xcalloc(1, sizeof(*n));
			n->kind = Y_SEQ;
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = ev.data.mapping_start.anchor;
			tag = ev.data.mapping_start.tag;
			n = kc_xcalloc(1, sizeof(*n));
			n->kind = Y_MAP;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		if (n) {
			n->line = line;
			n->col = col;
			if (depth > 0)
				append_kid(stack[depth - 1], n);
			else
				root = n;
			if (anchor)
				r = fail_at(c, line, col, "YAML anchors and aliases are not supported");
			else if (tag)
				r = fail_at(c, line, col, "YAML tags are not supported");
			else if (++nodes > MAX_NODES)
				r = fail_at(c, line, col, "too many values (a policy holds at most %d)",
					    MAX_NODES);
			else if (n->kind != Y_SCALAR) {
				if (depth == MAX_DEPTH)
					r = fail_at(c, line, col, "nested too deeply (at most %d levels)",
						    MAX_DEPTH);
				else
					stack[depth++] = n;
			}
		}
		yaml_event_delete(&ev);
		if (r < 0)
			goto free_tree;
	}
	yaml_parser_delete(&parser);
	*ret_root = root;
	return 0;

free_tree:
	ynode_free(root);
	yaml_parser_delete(&parser);
	return r;
}

/* ---- scalar conversions ---- */

static int get_string(struct ctx *c, const struct ynode *n, bool allow_empty, char **ret)
{
	char g[128];

	if (n->kind != Y_SCALAR || is_null(n))
		return fail(c, n, "expected a string, got %s", got(n, false, g, sizeof(g)));
	if (strlen(n->text) != n->len)
		return fail(c, n, "a string must not contain NUL characters");
	if (!allow_empty && n->len == 0)
		return fail(c, n, "must not be empty");
	*ret = kc_xstrdup(n->text);
	return 0;
}

static int get_bool(struct ctx *c, const struct ynode *n, bool *ret)
{
	static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
	char g[128];

	if (n->kind == Y_SCALAR && n->plain) {
		for (size_t i = 0; i < KC_ARRAY_SIZE(yes); i++) {
			if (strcmp(n->text, yes[i]) == 0) {
				*ret = true;
				return 0;
			}
			if (strcmp(n->text, no[i]) == 0) {
				*ret = false;
				return 0;
			}
		}
	}
	return fail(c, n, "expected true or false, got %s", got(n, true, g, sizeof(g)));
}

/* Integers are plain decimal scalars with an optional sign; quoted "5" is a string, not a number. */
static int get_int(struct ctx *c, const struct ynode *n, long long min, long long max, long long *ret)
{
	bool type_max = max == INT32_MAX || max == UINT32_MAX || max == INT64_MAX;
	char what[80], g[128];
	bool number = false;
	long long v = 0;

	if (n->kind == Y_SCALAR && n->plain && n->len > 0) {
		const char *s = n->text + (n->text[0] == '+' || n->text[0] == '-');
		char *end;

		if (*s >= '0' && *s <= '9') {
			errno = 0;
			v = strtoll(n->text, &end, 10);
			number = *end == '\0';
			if (number && errno == 0 && v >= min && v <= max) {
				*ret = v;
				return 0;
			}
		}
	}
	if (min == 0 && (type_max || (number && v < 0)))
		snprintf(what, sizeof(what), "a non-negative integer");
	else
		snprintf(what, sizeof(what), "an integer from %lld to %lld", min, max);
	if (min == 0 && type_max && number && v > 0)
		snprintf(what, sizeof(what), "a non-negative integer no larger than %lld", max);
	return fail(c, n, "expected %s, got %s", what, got(n, true, g, sizeof(g)));
}

static int get_duration(struct ctx *c, const struct ynode *n, uint64_t *ret)
{
	char g[128];
	int r;

	if (n->kind != Y_SCALAR || is_null(n))
		return fail(c, n, "expected a duration such as \"30s\", \"5m\" or \"1h30m\", got %s",
			    got(n, false, g, sizeof(g)));
	r = policy_parse_duration(n->text, ret);
	if (r == -ERANGE && n->text[0] == '-')
		return fail(c, n, "expected a non-negative duration, got %s", got(n, false, g, sizeof(g)));
	if (r == -ERANGE)
		return fail(c, n, "duration %s is too large", got(n, false, g, sizeof(g)));
	if (r < 0 || strlen(n->text) != n->len)
		return fail(c, n, "expected a duration such as \"30s\", \"5m\" or \"1h30m\", got %s",
			    got(n, false, g, sizeof(g)));
	return 0;
}

static int get_status(struct ctx *c, const struct ynode *n, enum kc_cond_status *ret)
{
	char g[128];

	if (n->kind == Y_SCALAR && strcmp(n->text, "True") == 0)
		*ret = KC_COND_TRUE;
	else if (n->kind == Y_SCALAR && strcmp(n->text, "False") == 0)
		*ret = KC_COND_FALSE;
	else if (n->kind == Y_SCALAR && strcmp(n->text, "Unknown") == 0)
		*ret = KC_COND_UNKNOWN;
	else
		return fail(c, n, "expected \"True\", \"False\" or \"Unknown\", got %s",
			    got(n, false, g, sizeof(g)));
	return 0;
}

static int expect_seq(struct ctx *c, const struct ynode *n)
{
	char g[128];

	if (n->kind != Y_SEQ)
		return fail(c, n, "expected a list, got %s", got(n, false, g, sizeof(g)));
	return 0;
}

static int expect_map(struct ctx *c, const struct ynode *n)
{
	char g[128];

	if (n->kind != Y_MAP)
		return fail(c, n, "expected a mapping, got %s", got(n, false, g, sizeof(g)));
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Replaces *list (a default, possibly) with the strings of a YAML list. */
static int get_strv(struct ctx *c, const struct ynode *n, char ***list, size_t *count)
{
	size_t save = c->path_len;
	int r;

	if ((r = expect_seq(c, n)) < 0)
		return r;
	free_strv(*list, *count);
	*list = n->n ? kc_xcalloc(n->n, sizeof(char *)) : NULL;
	*count = 0;
	for (size_t i = 0; i < n->n; i++) {
		path_push_index(c, i);
		r = get_string(c, n->kids[i], false, &(*list)[i]);
		if (r < 0)
			return r;
		(*count)++;
		path_pop(c, save);
	}
	return 0;
}

/* ---- walking mappings against tables ---- */

enum ftype {
	F_BOOL,
	F_DURATION,
	F_U32, /* uint32_t in [min, max] */
	F_I32, /* int32_t in [min, max] */
	F_I64, /* int64_t in [min, max] */
	F_STRING,
	F_STATUS, /* enum kc_cond_status */
	F_STRV,	  /* char ** at off, size_t at off2 */
	F_MAP,	  /* a nested mapping written into the same object */
	F_CUSTOM,
};

struct field;
typedef int (*field_fn)(struct ctx *c, const struct ynode *value, void *base);

struct fieldset {
	const struct field *fields;
	size_t n;
	/* Runs after the mapping was walked, for rules that span its fields. */
	int (*check)(struct ctx *c, const struct ynode *map, void *base);
};

struct field {
	const char *name;
	enum ftype type;
	size_t off, off2;
	long long min, max;
	const struct fieldset *sub;
	field_fn fn;
};

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static const struct ynode *find_key(const struct ynode *map, const char *name, const struct ynode **ret_key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->kids[i];

		if (k->kind == Y_SCALAR && strcmp(k->text, name) == 0) {
			if (ret_key)
				*ret_key = k;
			return is_null(map->kids[i + 1]) ? NULL : map->kids[i + 1];
		}
	}
	return NULL;
}

static int walk_fields(struct ctx *c, const struct ynode *map, const struct fieldset *fs, void *base);

static int walk_field(struct ctx *c, const struct field *f, const struct ynode *v, void *base)
{
	long long i;
	int r = 0;

	switch (f->type) {
	case F_BOOL:
		return get_bool(c, v, AT(base, f->off, bool));
	case F_DURATION:
		return get_duration(c, v, AT(base, f->off, uint64_t));
	case F_U32:
		if ((r = get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, uint32_t) = (uint32_t)i;
		return r;
	case F_I32:
		if ((r = get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, int32_t) = (int32_t)i;
		return r;
	case F_I64:
		if ((r = get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, int64_t) = (int64_t)i;
		return r;
	case F_STRING:
		return get_string(c, v, false, AT(base, f->off, char *));
	case F_STATUS:
		return get_status(c, v, AT(base, f->off, enum kc_cond_status));
	case F_STRV:
		return get_strv(c, v, AT(base, f->off, char **), AT(base, f->off2, size_t));
	case F_MAP:
		return walk_fields(c, v, f->sub, base);
	case F_CUSTOM:
		return f->fn(c, v, base);
	}
	return 0;
}

static int unknown_field(struct ctx *c, const struct ynode *key, const struct fieldset *fs)
{
	char names[300];
	size_t o = 0;

	names[0] = '\0';
	for (size_t i = 0; i < fs->n && o < sizeof(names); i++)
		o +=
		    (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "", fs->fields[i].name);
	return fail(c, key, "unknown field (expected one of: %s)", names);
}

static int field_name(struct ctx *c, const struct ynode *key)
{
	char g[128];

	if (key->kind != Y_SCALAR || is_null(key) || strlen(key->text) != key->len)
		return fail(c, key, "expected a field name, got %s", got(key, false, g, sizeof(g)));
	return 0;
}

static int walk_fields(struct ctx *c, const struct ynode *map, const struct fieldset *fs, void *base)
{
	size_t save = c->path_len;
	int r;

	if ((r = expect_map(c, map)) < 0)
		return r;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->kids[i], *v = map->kids[i + 1];
		const struct field *f = NULL;

		if ((r = field_name(c, k)) < 0)
			return r;
		path_push_key(c, k->text);
		for (size_t j = 0; j < fs->n; j++) {
			if (strcmp(fs->fields[j].name, k->text) == 0) {
				f = &fs->fields[j];
				break;
			}
		}
		if (!f)
			return unknown_field(c, k, fs);
		/* Known names are few, so an unknown key ends the walk before this scan costs anything. */
		for (size_t j = 0; j < i; j += 2) {
			if (strcmp(map->kids[j]->text, k->text) == 0)
				return fail(c, k, "duplicate field (first given on line %zu)",
					    map->kids[j]->line);
		}
		if (!is_null(v) && (r = walk_field(c, f, v, base)) < 0)
			return r;
		path_pop(c, save);
	}
	if (fs->check)
		return fs->check(c, map, base);
	return 0;
}

/* Reports a rule on `name` at its key when given, else at the mapping. */
static int fail_field(struct ctx *c, const struct ynode *map, const char *name, const char *fmt, ...)
    KC_PRINTF(4, 5);
static int fail_field(struct ctx *c, const struct ynode *map, const char *name, const char *fmt, ...)
{
	const struct ynode *key = NULL;
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	find_key(map, name, &key);
	path_push_key(c, name);
	return fail(c, key ? key : map, "%s", msg);
}

static int require(struct ctx *c, const struct ynode *map, const char *name)
{
	if (find_key(map, name, NULL))
		return 0;
	path_push_key(c, name);
	return fail(c, map, "required field is missing");
}

/* ---- custom fields ---- */

static int check_const(struct ctx *c, const struct ynode *v, const char *want)
{
	char g[128];

	if (v->kind == Y_SCALAR && strcmp(v->text, want) == 0 && strlen(v->text) == v->len)
		return 0;
	return fail(c, v, "expected \"%s\", got %s", want, got(v, false, g, sizeof(g)));
}

static int f_api_version(struct ctx *c, const struct ynode *v, void *base)
{
	(void)base;
	return check_const(c, v, API_VERSION);
}

static int f_kind(struct ctx *c, const struct ynode *v, void *base)
{
	(void)base;
	return check_const(c, v, KIND);
}

static int f_exit_codes(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	long long code;
	int r;

	if ((r = expect_seq(c, v)) < 0)
		return r;
	free(p->exit_codes);
	p->exit_codes = v->n ? kc_xcalloc(v->n, sizeof(int32_t)) : NULL;
	p->n_exit_codes = 0;
	for (size_t i = 0; i < v->n; i++) {
		path_push_index(c, i);
		if ((r = get_int(c, v->kids[i], 0, 255, &code)) < 0)
			return r;
		p->exit_codes[p->n_exit_codes++] = (int32_t)code;
		path_pop(c, save);
	}
	return 0;
}

static int f_taint_effects(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	char g[128];
	int r;

	if ((r = get_strv(c, v, &p->dra_taint_effects, &p->n_dra_taint_effects)) < 0)
		return r;
	for (size_t i = 0; i < p->n_dra_taint_effects; i++) {
		const char *e = p->dra_taint_effects[i];

		if (strcmp(e, "None") != 0 && strcmp(e, "NoSchedule") != 0 && strcmp(e, "NoExecute") != 0) {
			path_push_index(c, i);
			return fail(c, v->kids[i],
				    "expected \"None\", \"NoSchedule\" or \"NoExecute\", got %s",
				    got(v->kids[i], false, g, sizeof(g)));
		}
		path_pop(c, save);
	}
	return 0;
}

static int f_device_id_pattern(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy_node_condition *nc = base;
	char *pattern = NULL, msg[200];
	int r;

	if ((r = get_string(c, v, false, &pattern)) < 0)
		return r;
	r = regcomp(&nc->device_id_regex, pattern, REG_EXTENDED);
	if (r != 0) {
		regerror(r, &nc->device_id_regex, msg, sizeof(msg));
		free(pattern);
		return fail(c, v, "invalid regular expression: %s", msg);
	}
	nc->device_id_pattern = pattern;
	return 0;
}

static const struct field node_condition_fields[] = {
    {"type", F_STRING, offsetof(struct policy_node_condition, type), 0, 0, 0, NULL, NULL},
    {"status", F_STATUS, offsetof(struct policy_node_condition, status), 0, 0, 0, NULL, NULL},
    {"resources", F_STRV, offsetof(struct policy_node_condition, resources),
     offsetof(struct policy_node_condition, n_resources), 0, 0, NULL, NULL},
    {"for", F_DURATION, offsetof(struct policy_node_condition, for_ms), 0, 0, 0, NULL, NULL},
    {"deviceIDPattern", F_CUSTOM, 0, 0, 0, 0, NULL, f_device_id_pattern},
};
static const struct fieldset node_condition_set = {node_condition_fields,
						   KC_ARRAY_SIZE(node_condition_fields), NULL};

static int f_node_conditions(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	int r;

	if ((r = expect_seq(c, v)) < 0)
		return r;
	p->node_conditions = v->n ? kc_xcalloc(v->n, sizeof(*p->node_conditions)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		struct policy_node_condition *nc = &p->node_conditions[i];

		p->n_node_conditions = i + 1;
		nc->status = KC_COND_TRUE;
		path_push_index(c, i);
		if ((r = walk_fields(c, v->kids[i], &node_condition_set, nc)) < 0)
			return r;
		if ((r = require(c, v->kids[i], "type")) < 0)
			return r;
		path_pop(c, save);
	}
	return 0;
}

static const struct field condition_match_fields[] = {
    {"type", F_STRING, offsetof(struct policy_condition_match, type), 0, 0, 0, NULL, NULL},
    {"status", F_STATUS, offsetof(struct policy_condition_match, status), 0, 0, 0, NULL, NULL},
};
static const struct fieldset condition_match_set = {condition_match_fields,
						    KC_ARRAY_SIZE(condition_match_fields), NULL};

static void free_condition_matches(struct policy_condition_match *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].type);
	free(m);
}

static int f_dra_conditions(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	int r;

	if ((r = expect_seq(c, v)) < 0)
		return r;
	free_condition_matches(p->dra_conditions, p->n_dra_conditions);
	p->n_dra_conditions = 0;
	p->dra_conditions = v->n ? kc_xcalloc(v->n, sizeof(*p->dra_conditions)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		struct policy_condition_match *m = &p->dra_conditions[i];

		p->n_dra_conditions = i + 1;
		m->status = KC_COND_TRUE;
		path_push_index(c, i);
		if ((r = walk_fields(c, v->kids[i], &condition_match_set, m)) < 0)
			return r;
		if ((r = require(c, v->kids[i], "type")) < 0)
			return r;
		path_pop(c, save);
	}
	return 0;
}

struct key_ref {
	const struct ynode *key;
	size_t index;
};

static int cmp_key_ref(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
	int d = memcmp(x->key->text, y->key->text, n);

	if (d)
		return d;
	if (x->key->len != y->key->len)
		return x->key->len < y->key->len ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * matchLabels is the one mapping with free-form keys and so the one a large
 * file can make long: find its earliest repeated key by sorting, not by
 * comparing every pair.  Returns the entry index of that repeat, or SIZE_MAX.
 */
static size_t first_duplicate(const struct ynode *map, size_t *ret_first)
{
	size_t n = map->n / 2, best = SIZE_MAX, run = 0;
	struct key_ref *refs = kc_xcalloc(n, sizeof(*refs));

	for (size_t i = 0; i < n; i++)
		refs[i] = (struct key_ref){map->kids[2 * i], i};
	qsort(refs, n, sizeof(*refs), cmp_key_ref);
	for (size_t i = 1; i < n; i++) {
		/* Within a run of equal keys (sorted by position), the run's first entry is the original. */
		if (refs[i].key->len != refs[i - 1].key->len ||
		    memcmp(refs[i].key->text, refs[i - 1].key->text, refs[i].key->len) != 0) {
			run = i;
			continue;
		}
		if (refs[i].index < best) {
			best = refs[i].index;
			*ret_first = refs[run].index;
		}
	}
	free(refs);
	return best;
}

static int f_match_labels(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy_selector *sel = &((struct policy *)base)->selector;
	size_t save = c->path_len, dup, first = 0;
	int r;

	if ((r = expect_map(c, v)) < 0)
		return r;
	for (size_t i = 0; i < v->n; i += 2) {
		if ((r = field_name(c, v->kids[i])) < 0)
			return r;
	}
	dup = first_duplicate(v, &first);
	sel->match_labels = v->n ? kc_xcalloc(v->n / 2, sizeof(*sel->match_labels)) : NULL;
	for (size_t i = 0; i < v->n / 2; i++) {
		const struct ynode *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
		char *value = NULL;

		path_push_key(c, k->text);
		if (i == dup)
			return fail(c, k, "duplicate label key (first given on line %zu)",
				    v->kids[2 * first]->line);
		if (k->len == 0)
			return fail(c, k, "a label key must not be empty");
		if ((r = get_string(c, val, true, &value)) < 0)
			return r;
		sel->match_labels[i].key = kc_xstrdup(k->text);
		sel->match_labels[i].value = value;
		sel->n_match_labels = i + 1;
		path_pop(c, save);
	}
	return 0;
}

static int f_operator(struct ctx *c, const struct ynode *v, void *base)
{
	static const char *const names[] = {
	    [POLICY_OP_IN] = "In",
	    [POLICY_OP_NOT_IN] = "NotIn",
	    [POLICY_OP_EXISTS] = "Exists",
	    [POLICY_OP_DOES_NOT_EXIST] = "DoesNotExist",
	};
	struct policy_label_expr *e = base;
	char g[128];

	for (size_t i = 0; i < KC_ARRAY_SIZE(names); i++) {
		if (v->kind == Y_SCALAR && strcmp(v->text, names[i]) == 0) {
			e->op = (enum policy_label_op)i;
			return 0;
		}
	}
	return fail(c, v, "expected \"In\", \"NotIn\", \"Exists\" or \"DoesNotExist\", got %s",
		    got(v, false, g, sizeof(g)));
}

static int check_label_expr(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy_label_expr *e = base;
	int r;

	if ((r = require(c, map, "key")) < 0 || (r = require(c, map, "operator")) < 0)
		return r;
	if ((e->op == POLICY_OP_IN || e->op == POLICY_OP_NOT_IN) && e->n_values == 0)
		return fail_field(c, map, "values", "must not be empty when operator is %s",
				  e->op == POLICY_OP_IN ? "In" : "NotIn");
	if ((e->op == POLICY_OP_EXISTS || e->op == POLICY_OP_DOES_NOT_EXIST) && e->n_values > 0)
		return fail_field(c, map, "values", "must be empty when operator is %s",
				  e->op == POLICY_OP_EXISTS ? "Exists" : "DoesNotExist");
	return 0;
}

static const struct field label_expr_fields[] = {
    {"key", F_STRING, offsetof(struct policy_label_expr, key), 0, 0, 0, NULL, NULL},
    {"operator", F_CUSTOM, 0, 0, 0, 0, NULL, f_operator},
    {"values", F_STRV, offsetof(struct policy_label_expr, values),
     offsetof(struct policy_label_expr, n_values), 0, 0, NULL, NULL},
};
static const struct fieldset label_expr_set = {label_expr_fields, KC_ARRAY_SIZE(label_expr_fields),
					       check_label_expr};

static int f_match_expressions(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy_selector *sel = &((struct policy *)base)->selector;
	size_t save = c->path_len;
	int r;

	if ((r = expect_seq(c, v)) < 0)
		return r;
	sel->exprs = v->n ? kc_xcalloc(v->n, sizeof(*sel->exprs)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		sel->n_exprs = i + 1;
		path_push_index(c, i);
		if ((r = walk_fields(c, v->kids[i], &label_expr_set, &sel->exprs[i])) < 0)
			return r;
		path_pop(c, save);
	}
	return 0;
}

static int f_priority_value(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	long long i;
	int r;

	if ((r = get_int(c, v, INT32_MIN, INT32_MAX, &i)) < 0)
		return r;
	p->priority_threshold = (int32_t)i;
	p->has_priority_threshold = true;
	return 0;
}

/* ---- rules that span fields ---- */

static int check_exit_codes(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy *p = base;

	if (p->exit_codes_enabled && p->n_exit_codes == 0)
		return fail_field(c, map, "codes",
				  "must list at least one exit code when exitCodes is enabled");
	return 0;
}

static int check_dra_taints(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy *p = base;

	if (p->dra_taints_enabled && p->n_dra_taint_effects == 0)
		return fail_field(c, map, "effects",
				  "must list at least one effect when draDeviceTaints is enabled");
	return 0;
}

static int check_dra_conditions(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy *p = base;

	if (p->dra_conditions_enabled && p->n_dra_conditions == 0)
		return fail_field(c, map, "conditions",
				  "must list at least one condition when draDeviceConditions is enabled");
	return 0;
}

/* Formats milliseconds the way a policy writes them: "500ms", "5s", "1h30m". */
static const char *format_ms(uint64_t ms, char *buf, size_t size)
{
	uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
	size_t o = 0;

	buf[0] = '\0';
	if (h)
		o += (size_t)snprintf(buf + o, size - o, "%lluh", (unsigned long long)h);
	if (m && o < size)
		o += (size_t)snprintf(buf + o, size - o, "%llum", (unsigned long long)m);
	if (s && o < size)
		o += (size_t)snprintf(buf + o, size - o, "%llus", (unsigned long long)s);
	if ((rest || ms == 0) && o < size)
		snprintf(buf + o, size - o, "%llums", (unsigned long long)rest);
	return buf;
}

static int check_retry(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy *p = base;
	char buf[64];

	if (p->retry_initial_ms == 0)
		return fail_field(c, map, "initialBackoff", "must be greater than 0");
	if (p->retry_max_ms < p->retry_initial_ms)
		return fail_field(c, map, "maxBackoff", "must not be less than initialBackoff (%s)",
				  format_ms(p->retry_initial_ms, buf, sizeof(buf)));
	return 0;
}

static int check_limits(struct ctx *c, const struct ynode *map, void *base)
{
	struct policy *p = base;

	if (p->window_ms == 0)
		return fail_field(c, map, "window", "must be greater than 0");
	return 0;
}

/* ---- the schema ---- */

/* The formatter would spread each of these one-line initializers over four lines. */
/* clang-format off */
#define P(f) offsetof(struct policy, f)
#define BOOL(name, f) {name, F_BOOL, P(f), 0, 0, 0, NULL, NULL}
#define DUR(name, f) {name, F_DURATION, P(f), 0, 0, 0, NULL, NULL}
#define U32(name, f, lo, hi) {name, F_U32, P(f), 0, lo, hi, NULL, NULL}
#define STRV(name, f) {name, F_STRV, P(f), P(n_##f), 0, 0, NULL, NULL}
#define MAP(name, set) {name, F_MAP, 0, 0, 0, 0, &set, NULL}
#define CUSTOM(name, fn) {name, F_CUSTOM, 0, 0, 0, 0, NULL, fn}
#define SET(fields, check) {fields, KC_ARRAY_SIZE(fields), check}
/* clang-format on */

static const struct field devices_fields[] = {
    STRV("resources", resources),
    STRV("excludeResources", exclude_resources),
    BOOL("dra", dra),
};
static const struct fieldset devices_set = SET(devices_fields, NULL);

static const struct field pod_health_unknown_fields[] = {
    BOOL("enabled", pod_health_unknown_enabled),
    DUR("for", pod_health_unknown_for_ms),
};
static const struct fieldset pod_health_unknown_set = SET(pod_health_unknown_fields, NULL);

static const struct field pod_health_fields[] = {
    BOOL("enabled", pod_health_enabled),
    DUR("for", pod_health_for_ms),
    MAP("unknown", pod_health_unknown_set),
};
static const struct fieldset pod_health_set = SET(pod_health_fields, NULL);

static const struct field alloc_drop_fields[] = {
    BOOL("enabled", alloc_drop_enabled),
    DUR("for", alloc_drop_for_ms),
    STRV("resources", alloc_drop_resources),
};
static const struct fieldset alloc_drop_set = SET(alloc_drop_fields, NULL);

static const struct field exit_codes_fields[] = {
    BOOL("enabled", exit_codes_enabled),
    CUSTOM("codes", f_exit_codes),
    {"minRestarts", F_I32, P(exit_min_restarts), 0, 0, INT32_MAX, NULL, NULL},
    DUR("for", exit_for_ms),
};
static const struct fieldset exit_codes_set = SET(exit_codes_fields, check_exit_codes);

static const struct field dra_taints_fields[] = {
    BOOL("enabled", dra_taints_enabled),
    CUSTOM("effects", f_taint_effects),
    DUR("for", dra_taints_for_ms),
};
static const struct fieldset dra_taints_set = SET(dra_taints_fields, check_dra_taints);

static const struct field dra_conditions_fields[] = {
    BOOL("enabled", dra_conditions_enabled),
    CUSTOM("conditions", f_dra_conditions),
    DUR("for", dra_conditions_for_ms),
};
static const struct fieldset dra_conditions_set = SET(dra_conditions_fields, check_dra_conditions);

static const struct field signals_fields[] = {
    MAP("podResourceHealth", pod_health_set), CUSTOM("nodeConditions", f_node_conditions),
    MAP("allocatableDrop", alloc_drop_set),   MAP("exitCodes", exit_codes_set),
    MAP("draDeviceTaints", dra_taints_set),   MAP("draDeviceConditions", dra_conditions_set),
};
static const struct fieldset signals_set = SET(signals_fields, NULL);

static const struct field namespaces_fields[] = {
    STRV("include", ns_include),
    STRV("exclude", ns_exclude),
};
static const struct fieldset namespaces_set = SET(namespaces_fields, NULL);

static const struct field selector_fields[] = {
    CUSTOM("matchLabels", f_match_labels),
    CUSTOM("matchExpressions", f_match_expressions),
};
static const struct fieldset selector_set = SET(selector_fields, NULL);

static const struct field priority_fields[] = {
    CUSTOM("value", f_priority_value),
};
static const struct fieldset priority_set = SET(priority_fields, NULL);

static const struct field pod_filters_fields[] = {
    MAP("namespaces", namespaces_set),
    MAP("labelSelector", selector_set),
    MAP("priorityThreshold", priority_set),
    BOOL("evictBarePods", evict_bare_pods),
};
static const struct fieldset pod_filters_set = SET(pod_filters_fields, NULL);

static const struct field retry_fields[] = {
    DUR("initialBackoff", retry_initial_ms),
    DUR("maxBackoff", retry_max_ms),
};
static const struct fieldset retry_set = SET(retry_fields, check_retry);

static const struct field limits_fields[] = {
    DUR("window", window_ms),
    U32("maxPerNode", max_per_node, 0, UINT32_MAX),
    U32("maxPerNamespace", max_per_namespace, 0, UINT32_MAX),
    U32("maxTotal", max_total, 0, UINT32_MAX),
    U32("maxInFlight", max_in_flight, 0, UINT32_MAX),
};
static const struct fieldset limits_set = SET(limits_fields, check_limits);

static const struct field breaker_fields[] = {
    BOOL("enabled", breaker_enabled),
    U32("maxUnhealthyNodes", breaker_max_nodes, 0, UINT32_MAX),
    U32("maxUnhealthyNodePercent", breaker_max_percent, 0, 100),
    U32("minNodes", breaker_min_nodes, 0, UINT32_MAX),
};
static const struct fieldset breaker_set = SET(breaker_fields, NULL);

static const struct field eviction_fields[] = {
    {"gracePeriodSeconds", F_I64, P(grace_period_s), 0, 0, INT64_MAX, NULL, NULL},
    MAP("retry", retry_set),
    DUR("deleteAfter", delete_after_ms),
    MAP("limits", limits_set),
    MAP("circuitBreaker", breaker_set),
};
static const struct fieldset eviction_set = SET(eviction_fields, NULL);

/* remediation.mode: taint, cordon or both. */
static int f_fence_mode(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	char *mode = NULL, g[128];
	int r;

	if ((r = get_string(c, v, false, &mode)) < 0)
		return r;
	p->fence_taint = strcmp(mode, "taint") == 0 || strcmp(mode, "both") == 0;
	p->fence_cordon = strcmp(mode, "cordon") == 0 || strcmp(mode, "both") == 0;
	free(mode);
	if (!p->fence_taint && !p->fence_cordon)
		return fail(c, v, "expected \"taint\", \"cordon\" or \"both\", got %s", got(v, false, g, sizeof(g)));
	return 0;
}

/* remediation.effect: a taint that keeps new pods off (PreferNoSchedule would not fence). */
static int f_fence_effect(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	char *e = NULL, g[128];
	int r;

	if ((r = get_string(c, v, false, &e)) < 0)
		return r;
	if (strcmp(e, "NoSchedule") != 0 && strcmp(e, "NoExecute") != 0) {
		free(e);
		return fail(c, v, "expected \"NoSchedule\" or \"NoExecute\", got %s", got(v, false, g, sizeof(g)));
	}
	free(p->fence_effect);
	p->fence_effect = e;
	return 0;
}

/* Whether s is a Kubernetes qualified name part: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63. */
static bool qualified_name_part(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* remediation.key: a taint key, "[prefix/]name" as the API server validates it. */
static int f_fence_key(struct ctx *c, const struct ynode *v, void *base)
{
	struct policy *p = base;
	char *k = NULL, g[128];
	const char *slash;
	bool ok;
	int r;

	if ((r = get_string(c, v, false, &k)) < 0)
		return r;
	slash = strchr(k, '/');
	if (slash) {
		size_t pn = (size_t)(slash - k);

		ok = pn > 0 && pn <= 253 && qualified_name_part(slash + 1, strlen(slash + 1));
		for (size_t i = 0; ok && i < pn; i++)
			ok = islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '-' ||
			     k[i] == '.';
	} else {
		ok = qualified_name_part(k, strlen(k));
	}
	if (!ok) {
		free(k);
		return fail(c, v, "expected a taint key ([DNS-subdomain/]name), got %s", got(v, false, g, sizeof(g)));
	}
	free(p->fence_key);
	p->fence_key = k;
	return 0;
}

static const struct field remediation_fields[] = {
    BOOL("enabled", remediation_enabled),
    CUSTOM("mode", f_fence_mode),
    CUSTOM("key", f_fence_key),
    CUSTOM("effect", f_fence_effect),
    BOOL("deviceTaintRules", device_taint_rules),
    DUR("recoverAfter", recover_after_ms),
    U32("maxQuarantinedNodes", max_quarantined_nodes, 0, UINT32_MAX),
    U32("maxQuarantinedNodePercent", max_quarantined_percent, 0, 100),
    DUR("loopWindow", loop_window_ms),
};
static const struct fieldset remediation_set = SET(remediation_fields, NULL);

static const struct field root_fields[] = {
    CUSTOM("apiVersion", f_api_version), CUSTOM("kind", f_kind),      BOOL("dryRun", dry_run),
    MAP("devices", devices_set),	 MAP("signals", signals_set), MAP("podFilters", pod_filters_set),
    MAP("eviction", eviction_set),	 MAP("remediation", remediation_set),
};
static const struct fieldset root_set = SET(root_fields, NULL);

/* ---- public API ---- */

struct policy *policy_new_default(void)
{
	struct policy *p = kc_xcalloc(1, sizeof(*p));

	p->dra = true;
	p->pod_health_enabled = true;
	p->pod_health_for_ms = 0;
	p->pod_health_unknown_enabled = false;
	p->pod_health_unknown_for_ms = 5 * 60 * 1000;
	p->alloc_drop_enabled = false;
	p->alloc_drop_for_ms = 5 * 60 * 1000;
	p->exit_codes_enabled = false;
	p->exit_min_restarts = 3;
	p->exit_for_ms = 0;
	p->dra_taints_enabled = true;
	p->dra_taint_effects = kc_xcalloc(1, sizeof(char *));
	p->dra_taint_effects[0] = kc_xstrdup("NoExecute");
	p->n_dra_taint_effects = 1;
	p->dra_taints_for_ms = 0;
	p->dra_conditions_enabled = true;
	p->dra_conditions = kc_xcalloc(1, sizeof(*p->dra_conditions));
	p->dra_conditions[0].type = kc_xstrdup("Ready");
	p->dra_conditions[0].status = KC_COND_FALSE;
	p->n_dra_conditions = 1;
	p->dra_conditions_for_ms = 0;
	p->has_priority_threshold = false;
	p->evict_bare_pods = false;
	p->grace_period_s = -1;
	p->retry_initial_ms = 5 * 1000;
	p->retry_max_ms = 2 * 60 * 1000;
	p->delete_after_ms = 0;
	p->window_ms = 60 * 1000;
	p->max_per_node = 0;
	p->max_per_namespace = 0;
	p->max_total = 20;
	p->max_in_flight = 5;
	p->breaker_enabled = true;
	p->breaker_max_nodes = 0;
	p->breaker_max_percent = 50;
	p->breaker_min_nodes = 4;
	p->remediation_enabled = true;
	p->fence_taint = true;
	p->fence_cordon = false;
	p->fence_key = kc_xstrdup(POLICY_FENCE_KEY);
	p->fence_effect = kc_xstrdup("NoSchedule");
	p->device_taint_rules = true;
	p->recover_after_ms = 10 * 60 * 1000;
	p->max_quarantined_nodes = 0;
	p->max_quarantined_percent = 25;
	p->loop_window_ms = 10 * 60 * 1000;
	p->dry_run = false;
	return p;
}

struct policy *policy_free(struct policy *p)
{
	if (!p)
		return NULL;
	free(p->source);
	free_strv(p->resources, p->n_resources);
	free_strv(p->exclude_resources, p->n_exclude_resources);
	for (size_t i = 0; i < p->n_node_conditions; i++) {
		struct policy_node_condition *nc = &p->node_conditions[i];

		free(nc->type);
		free_strv(nc->resources, nc->n_resources);
		if (nc->device_id_pattern) {
			regfree(&nc->device_id_regex);
			free(nc->device_id_pattern);
		}
	}
	free(p->node_conditions);
	free_strv(p->alloc_drop_resources, p->n_alloc_drop_resources);
	free(p->exit_codes);
	free_strv(p->dra_taint_effects, p->n_dra_taint_effects);
	free_condition_matches(p->dra_conditions, p->n_dra_conditions);
	free_strv(p->ns_include, p->n_ns_include);
	free_strv(p->ns_exclude, p->n_ns_exclude);
	for (size_t i = 0; i < p->selector.n_match_labels; i++) {
		free((char *)p->selector.match_labels[i].key);
		free((char *)p->selector.match_labels[i].value);
	}
	free(p->selector.match_labels);
	for (size_t i = 0; i < p->selector.n_exprs; i++) {
		free(p->selector.exprs[i].key);
		free_strv(p->selector.exprs[i].values, p->selector.exprs[i].n_values);
	}
	free(p->selector.exprs);
	free(p->fence_key);
	free(p->fence_effect);
	free(p);
	return NULL;
}

/*
 * apiVersion and kind are checked before anything else: when someone passes
 * the wrong kind of document, that is the one message worth reading.
 */
static int check_header(struct ctx *c, const struct ynode *root)
{
	static const struct {
		const char *name, *want;
	} header[] = {{"apiVersion", API_VERSION}, {"kind", KIND}};
	size_t save = c->path_len;
	int r;

	for (size_t i = 0; i < KC_ARRAY_SIZE(header); i++) {
		const struct ynode *v = find_key(root, header[i].name, NULL);

		path_push_key(c, header[i].name);
		if (!v)
			return fail(c, root, "required field is missing (expected \"%s\")", header[i].want);
		if ((r = check_const(c, v, header[i].want)) < 0)
			return r;
		path_pop(c, save);
	}
	return 0;
}

int policy_parse(const char *name, const char *text, size_t len, struct policy **ret, struct kc_error *err)
{
	struct ctx c = {.name = name ? name : "policy", .err = err};
	struct ynode *root = NULL;
	struct policy *p;
	char g[128];
	int r;

	if (len > POLICY_MAX_SIZE)
		return kc_error_set(err, -EINVAL, "%s: the policy is larger than 1 MiB", c.name);
	if ((r = build_tree(&c, text ? text : "", text ? len : 0, &root)) < 0)
		return r;
	if (!root || is_null(root)) {
		r = fail_at(&c, 1, 1, "the policy is empty");
		goto free_root;
	}
	if (root->kind != Y_MAP) {
		r = fail(&c, root, "expected a mapping with apiVersion, kind and the policy fields, got %s",
			 got(root, false, g, sizeof(g)));
		goto free_root;
	}
	p = policy_new_default();
	if ((r = check_header(&c, root)) < 0 || (r = walk_fields(&c, root, &root_set, p)) < 0) {
		policy_free(p);
		goto free_root;
	}
	p->source = kc_xstrdup(c.name);
	*ret = p;
free_root:
	ynode_free(root);
	return r;
}

int policy_load_file(const char *path, struct policy **ret, struct kc_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	r = kc_read_file(path, POLICY_MAX_SIZE, &data, &len);
	if (r == -EFBIG)
		return kc_error_set(err, -EINVAL, "%s: the policy file is larger than 1 MiB", path);
	if (r < 0)
		return kc_error_set(err, r, "%s: cannot read the policy file: %s", path, strerror(-r));
	r = policy_parse(path, data, len, ret, err);
	free(data);
	return r;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i], s) == 0)
			return true;
	}
	return false;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * An extended resource as the device plugin API names it: "domain/name" where
 * the domain is not Kubernetes' own.  cpu, memory, ephemeral-storage and
 * hugepages-* have no domain, so they never count.
 */
static bool is_extended_resource(const char *r)
{
	const char *slash = strchr(r, '/');
	size_t dlen;

	if (!slash || slash == r || slash[1] == '\0')
		return false;
	if (strncmp(r, "hugepages-", 10) == 0)
		return false;
	dlen = (size_t)(slash - r);
	if ((dlen == 13 && memcmp(r, "kubernetes.io", 13) == 0) || (dlen == 6 && memcmp(r, "k8s.io", 6) == 0))
		return false;
	return !has_suffix(r, dlen, ".kubernetes.io") && !has_suffix(r, dlen, ".k8s.io");
}

bool policy_is_device_resource(const struct policy *p, const char *resource)
{
	if (!p || !resource || resource[0] == '\0')
		return false;
	if (in_list(p->exclude_resources, p->n_exclude_resources, resource))
		return false;
	if (strncmp(resource, "claim:", 6) == 0)
		return p->dra && resource[6] != '\0';
	if (p->n_resources > 0)
		return in_list(p->resources, p->n_resources, resource);
	return is_extended_resource(resource);
}

static uint64_t unit_ns(const char *u, size_t len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
	    {"ns", 1ULL},
	    {"us", 1000ULL},
	    {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
	    {"\xce\xbcs", 1000ULL}, /* U+03BC Greek small letter mu */
	    {"ms", 1000000ULL},
	    {"s", 1000000000ULL},
	    {"m", 60ULL * 1000000000ULL},
	    {"h", 3600ULL * 1000000000ULL},
	};

	for (size_t i = 0; i < KC_ARRAY_SIZE(units); i++) {
		if (strlen(units[i].name) == len && memcmp(units[i].name, u, len) == 0)
			return units[i].ns;
	}
	return 0;
}

/* Follows Go's time.ParseDuration, computing in nanoseconds with its int64 range. */
int policy_parse_duration(const char *s, uint64_t *ret_ms)
{
	const uint64_t max_ns = (uint64_t)INT64_MAX;
	uint64_t total = 0;
	bool neg = false, range = false;

	if (!s)
		return -EINVAL;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	if (*s == '\0')
		return -EINVAL;
	while (*s) {
		uint64_t v = 0, f = 0, unit;
		double scale = 1;
		bool pre = false, post = false;
		const char *u;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			pre = true;
			if (v > (max_ns - 9) / 10)
				range = true;
			else
				v = v * 10 + (uint64_t)(*s - '0');
		}
		if (*s == '.') {
			s++;
			for (; *s >= '0' && *s <= '9'; s++) {
				post = true;
				if (f < 100000000000000000ULL) {
					f = f * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
			}
		}
		if (!pre && !post)
			return -EINVAL;
		for (u = s; *s && *s != '.' && !(*s >= '0' && *s <= '9'); s++)
			;
		unit = unit_ns(u, (size_t)(s - u));
		if (unit == 0)
			return -EINVAL;
		if (range || v > max_ns / unit) {
			range = true;
			continue;
		}
		v *= unit;
		if (f > 0) {
			double frac = (double)f * ((double)unit / scale);

			if (frac >= (double)(max_ns - v))
				range = true;
			else
				v += (uint64_t)frac;
		}
		if (v > max_ns - total)
			range = true;
		else
			total += v;
	}
	if (range || (neg && total > 0))
		return -ERANGE;
	/* A sub-millisecond remainder rounds up, so a duration that is not zero never becomes 0 ms. */
	*ret_ms = total / 1000000 + (total % 1000000 != 0);
	return 0;
}
