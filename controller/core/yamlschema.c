/*
 * The YAML reader and schema walker declared in yamlschema.h: the tree built
 * from libyaml's events, the error messages with their field path, the scalar
 * conversions and the walk of a mapping against a table of fields.
 */
#include "yamlschema.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "duration.h"

/* A configuration file is short; these bounds keep hostile input cheap. */
#define MAX_DEPTH 32
#define MAX_NODES 200000

/* ---- the YAML tree ---- */

void ys_node_free(struct ys_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ys_node_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

bool ys_is_null(const struct ys_node *n)
{
	if (!n || n->kind != YS_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* ---- errors ---- */

/* Advances over what snprintf wrote, clamped so that a long key truncates the path instead of overflowing. */
static void path_advance(struct ys_ctx *c, int n)
{
	size_t room = sizeof(c->path) - c->path_len;

	if (n > 0)
		c->path_len += (size_t)n < room ? (size_t)n : room - 1;
}

void ys_path_push_key(struct ys_ctx *c, const char *key)
{
	size_t room = sizeof(c->path) - c->path_len;

	path_advance(c, snprintf(c->path + c->path_len, room, "%s%s", c->path_len ? "." : "", key));
}

void ys_path_push_index(struct ys_ctx *c, size_t i)
{
	size_t room = sizeof(c->path) - c->path_len;

	path_advance(c, snprintf(c->path + c->path_len, room, "[%zu]", i));
}

void ys_path_pop(struct ys_ctx *c, size_t len)
{
	c->path_len = len;
	c->path[len] = '\0';
}

int ys_fail_at(struct ys_ctx *c, size_t line, size_t col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kc_error_set(c->err, -EINVAL, "%s:%zu:%zu: %s%s%s", c->name, line, col, c->path,
			    c->path_len ? ": " : "", msg);
}

int ys_fail(struct ys_ctx *c, const struct ys_node *at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ys_fail_at(c, at->line, at->col, "%s", msg);
}

/*
 * Writes a scalar as a double-quoted, escaped and shortened string, so that a
 * message stays on one line and within bounds whatever the input held.
 */
static const char *quote(const struct ys_node *n, char *buf, size_t size)
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
const char *ys_got(const struct ys_node *n, bool note_quoted, char *buf, size_t size)
{
	char q[96];

	if (n->kind == YS_MAPPING)
		return "a mapping";
	if (n->kind == YS_SEQ)
		return "a list";
	if (ys_is_null(n))
		return "null";
	quote(n, q, sizeof(q));
	if (note_quoted && !n->plain)
		snprintf(buf, size, "the quoted string %s", q);
	else
		snprintf(buf, size, "%s", q);
	return buf;
}

/* ---- building the tree from libyaml events ---- */

static void append_kid(struct ys_node *parent, struct ys_node *kid)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->kids = kc_xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
	}
	parent->kids[parent->n++] = kid;
}

static struct ys_node *node_new(enum ys_kind kind)
{
	struct ys_node *n = kc_xcalloc(1, sizeof(*n));

	n->kind = kind;
	return n;
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

static int yaml_failed(struct ys_ctx *c, yaml_parser_t *parser, const char *text, size_t len)
{
	size_t line, col;

	if (parser->error == YAML_READER_ERROR) {
		offset_to_mark(text, len, parser->problem_offset, &line, &col);
		return ys_fail_at(c, line, col, "invalid YAML: %s",
			       parser->problem ? parser->problem : "unreadable");
	}
	line = parser->problem_mark.line + 1;
	col = parser->problem_mark.column + 1;
	if (parser->context)
		return ys_fail_at(c, line, col, "invalid YAML: %s (%s at line %zu)",
			       parser->problem ? parser->problem : "syntax error", parser->context,
			       parser->context_mark.line + 1);
	return ys_fail_at(c, line, col, "invalid YAML: %s", parser->problem ? parser->problem : "syntax error");
}

/*
 * Parses the text into a tree.  Returns 0 with *ret_root NULL for a stream
 * without any document.
 */
int ys_build_tree(struct ys_ctx *c, const char *text, size_t len, struct ys_node **ret_root)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct ys_node *root = NULL, *stack[MAX_DEPTH];
	size_t depth = 0, nodes = 0;
	int docs = 0, r = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser))
		return ys_fail_at(c, 1, 1, "cannot initialize the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		struct ys_node *n = NULL;
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
				r = ys_fail_at(c, line, col,
					    "a policy file holds one YAML document, found a second one");
			break;
		case YAML_ALIAS_EVENT:
			r = ys_fail_at(c, line, col, "YAML anchors and aliases are not supported");
			break;
		case YAML_SCALAR_EVENT:
			anchor = ev.data.scalar.anchor;
			tag = ev.data.scalar.tag;
			n = node_new(YS_SCALAR);
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			n->len = ev.data.scalar.length;
			n->text = kc_xstrndup((const char *)ev.data.scalar.value, n->len);
			break;
		case YAML_SEQUENCE_START_EVENT:
			anchor = ev.data.sequence_start.anchor;
			tag = ev.data.sequence_start.tag;
			n = node_new(YS_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = ev.data.mapping_start.anchor;
			tag = ev.data.mapping_start.tag;
			n = node_new(YS_MAPPING);
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
				r = ys_fail_at(c, line, col, "YAML anchors and aliases are not supported");
			else if (tag)
				r = ys_fail_at(c, line, col, "YAML tags are not supported");
			else if (++nodes > MAX_NODES)
				r = ys_fail_at(c, line, col, "too many values (a policy holds at most %d)",
					    MAX_NODES);
			else if (n->kind != YS_SCALAR) {
				if (depth == MAX_DEPTH)
					r = ys_fail_at(c, line, col, "nested too deeply (at most %d levels)",
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
	ys_node_free(root);
	yaml_parser_delete(&parser);
	return r;
}

/* ---- scalar conversions ---- */

int ys_get_string(struct ys_ctx *c, const struct ys_node *n, bool allow_empty, char **ret)
{
	char g[128];

	if (n->kind != YS_SCALAR || ys_is_null(n))
		return ys_fail(c, n, "expected a string, got %s", ys_got(n, false, g, sizeof(g)));
	if (strlen(n->text) != n->len)
		return ys_fail(c, n, "a string must not contain NUL characters");
	if (!allow_empty && n->len == 0)
		return ys_fail(c, n, "must not be empty");
	*ret = kc_xstrdup(n->text);
	return 0;
}

int ys_get_bool(struct ys_ctx *c, const struct ys_node *n, bool *ret)
{
	static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
	char g[128];

	if (n->kind == YS_SCALAR && n->plain) {
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
	return ys_fail(c, n, "expected true or false, got %s", ys_got(n, true, g, sizeof(g)));
}

/* Integers are plain decimal scalars with an optional sign; quoted "5" is a string, not a number. */
int ys_get_int(struct ys_ctx *c, const struct ys_node *n, long long min, long long max, long long *ret)
{
	bool type_max = max == INT32_MAX || max == UINT32_MAX || max == INT64_MAX;
	char what[80], g[128];
	bool number = false;
	long long v = 0;

	if (n->kind == YS_SCALAR && n->plain && n->len > 0) {
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
	return ys_fail(c, n, "expected %s, got %s", what, ys_got(n, true, g, sizeof(g)));
}

int ys_get_duration(struct ys_ctx *c, const struct ys_node *n, uint64_t *ret)
{
	char g[128];
	int r;

	if (n->kind != YS_SCALAR || ys_is_null(n))
		return ys_fail(c, n, "expected a duration such as \"30s\", \"5m\" or \"1h30m\", got %s",
			    ys_got(n, false, g, sizeof(g)));
	r = duration_parse(n->text, ret);
	if (r == -ERANGE && n->text[0] == '-')
		return ys_fail(c, n, "expected a non-negative duration, got %s", ys_got(n, false, g, sizeof(g)));
	if (r == -ERANGE)
		return ys_fail(c, n, "duration %s is too large", ys_got(n, false, g, sizeof(g)));
	if (r < 0 || strlen(n->text) != n->len)
		return ys_fail(c, n, "expected a duration such as \"30s\", \"5m\" or \"1h30m\", got %s",
			    ys_got(n, false, g, sizeof(g)));
	return 0;
}

int ys_get_status(struct ys_ctx *c, const struct ys_node *n, enum kc_cond_status *ret)
{
	char g[128];

	if (n->kind == YS_SCALAR && strcmp(n->text, "True") == 0)
		*ret = KC_COND_TRUE;
	else if (n->kind == YS_SCALAR && strcmp(n->text, "False") == 0)
		*ret = KC_COND_FALSE;
	else if (n->kind == YS_SCALAR && strcmp(n->text, "Unknown") == 0)
		*ret = KC_COND_UNKNOWN;
	else
		return ys_fail(c, n, "expected \"True\", \"False\" or \"Unknown\", got %s",
			    ys_got(n, false, g, sizeof(g)));
	return 0;
}

int ys_expect_seq(struct ys_ctx *c, const struct ys_node *n)
{
	char g[128];

	if (n->kind != YS_SEQ)
		return ys_fail(c, n, "expected a list, got %s", ys_got(n, false, g, sizeof(g)));
	return 0;
}

int ys_expect_map(struct ys_ctx *c, const struct ys_node *n)
{
	char g[128];

	if (n->kind != YS_MAPPING)
		return ys_fail(c, n, "expected a mapping, got %s", ys_got(n, false, g, sizeof(g)));
	return 0;
}

void ys_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Replaces *list (a default, possibly) with the strings of a YAML list. */
int ys_get_strv(struct ys_ctx *c, const struct ys_node *n, char ***list, size_t *count)
{
	size_t save = c->path_len;
	int r;

	if ((r = ys_expect_seq(c, n)) < 0)
		return r;
	ys_strv_free(*list, *count);
	*list = n->n ? kc_xcalloc(n->n, sizeof(char *)) : NULL;
	*count = 0;
	for (size_t i = 0; i < n->n; i++) {
		ys_path_push_index(c, i);
		r = ys_get_string(c, n->kids[i], false, &(*list)[i]);
		if (r < 0)
			return r;
		(*count)++;
		ys_path_pop(c, save);
	}
	return 0;
}

/* ---- walking mappings against tables ---- */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

const struct ys_node *ys_find_key(const struct ys_node *map, const char *name, const struct ys_node **ret_key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ys_node *k = map->kids[i];

		if (k->kind == YS_SCALAR && strcmp(k->text, name) == 0) {
			if (ret_key)
				*ret_key = k;
			return ys_is_null(map->kids[i + 1]) ? NULL : map->kids[i + 1];
		}
	}
	return NULL;
}

static int walk_field(struct ys_ctx *c, const struct ys_field *f, const struct ys_node *v, void *base)
{
	long long i;
	int r = 0;

	switch (f->type) {
	case YS_F_BOOL:
		return ys_get_bool(c, v, AT(base, f->off, bool));
	case YS_F_DURATION:
		return ys_get_duration(c, v, AT(base, f->off, uint64_t));
	case YS_F_U32:
		if ((r = ys_get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, uint32_t) = (uint32_t)i;
		return r;
	case YS_F_I32:
		if ((r = ys_get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, int32_t) = (int32_t)i;
		return r;
	case YS_F_I64:
		if ((r = ys_get_int(c, v, f->min, f->max, &i)) == 0)
			*AT(base, f->off, int64_t) = (int64_t)i;
		return r;
	case YS_F_STRING:
		return ys_get_string(c, v, false, AT(base, f->off, char *));
	case YS_F_STATUS:
		return ys_get_status(c, v, AT(base, f->off, enum kc_cond_status));
	case YS_F_STRV:
		return ys_get_strv(c, v, AT(base, f->off, char **), AT(base, f->off2, size_t));
	case YS_F_MAP:
		return ys_walk_fields(c, v, f->sub, base);
	case YS_F_CUSTOM:
		return f->fn(c, v, base);
	}
	return 0;
}

static int unknown_field(struct ys_ctx *c, const struct ys_node *key, const struct ys_fieldset *fs)
{
	char names[300];
	size_t o = 0;

	names[0] = '\0';
	for (size_t i = 0; i < fs->n && o < sizeof(names); i++)
		o +=
		    (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "", fs->fields[i].name);
	return ys_fail(c, key, "unknown field (expected one of: %s)", names);
}

int ys_field_name(struct ys_ctx *c, const struct ys_node *key)
{
	char g[128];

	if (key->kind != YS_SCALAR || ys_is_null(key) || strlen(key->text) != key->len)
		return ys_fail(c, key, "expected a field name, got %s", ys_got(key, false, g, sizeof(g)));
	return 0;
}

int ys_walk_fields(struct ys_ctx *c, const struct ys_node *map, const struct ys_fieldset *fs, void *base)
{
	size_t save = c->path_len;
	int r;

	if ((r = ys_expect_map(c, map)) < 0)
		return r;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ys_node *k = map->kids[i], *v = map->kids[i + 1];
		const struct ys_field *f = NULL;

		if ((r = ys_field_name(c, k)) < 0)
			return r;
		ys_path_push_key(c, k->text);
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
				return ys_fail(c, k, "duplicate field (first given on line %zu)",
					    map->kids[j]->line);
		}
		if (!ys_is_null(v) && (r = walk_field(c, f, v, base)) < 0)
			return r;
		ys_path_pop(c, save);
	}
	if (fs->check)
		return fs->check(c, map, base);
	return 0;
}

/* Reports a rule on `name` at its key when given, else at the mapping. */
int ys_fail_field(struct ys_ctx *c, const struct ys_node *map, const char *name, const char *fmt, ...)
{
	const struct ys_node *key = NULL;
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ys_find_key(map, name, &key);
	ys_path_push_key(c, name);
	return ys_fail(c, key ? key : map, "%s", msg);
}

int ys_require(struct ys_ctx *c, const struct ys_node *map, const char *name)
{
	if (ys_find_key(map, name, NULL))
		return 0;
	ys_path_push_key(c, name);
	return ys_fail(c, map, "required field is missing");
}

/* ---- shared checks ---- */

int ys_check_const(struct ys_ctx *c, const struct ys_node *v, const char *want)
{
	char g[128];

	if (v->kind == YS_SCALAR && strcmp(v->text, want) == 0 && strlen(v->text) == v->len)
		return 0;
	return ys_fail(c, v, "expected \"%s\", got %s", want, ys_got(v, false, g, sizeof(g)));
}

struct key_ref {
	const struct ys_node *key;
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
size_t ys_first_duplicate(const struct ys_node *map, size_t *ret_first)
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
