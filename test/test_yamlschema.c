/*
 * Unit tests of yamlschema on a small schema of its own (the policy's schema
 * is tested in test_policy.c): every field type, nested mappings, nulls kept
 * as absent, the cross-field check, and the exact FILE:LINE:COL: PATH error
 * for unknown and duplicate keys, wrong types, anchors and a second document.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_util.h"
#include "yamlschema.h"

struct thing {
	bool on;
	uint64_t wait_ms;
	uint32_t count;
	int32_t delta;
	int64_t big;
	char *name;
	enum kc_cond_status status;
	char **tags;
	size_t n_tags;
};

static int check_thing(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct thing *t = base;

	if (t->on && t->count == 0)
		return ys_fail_field(c, map, "count", "must be set when on");
	return 0;
}

static const struct ys_field inner_fields[] = {
    {"count", YS_F_U32, offsetof(struct thing, count), 0, 0, 10, NULL, NULL},
    {"delta", YS_F_I32, offsetof(struct thing, delta), 0, -5, 5, NULL, NULL},
};
static const struct ys_fieldset inner_set = {inner_fields, KC_ARRAY_SIZE(inner_fields), NULL};

static const struct ys_field thing_fields[] = {
    {"on", YS_F_BOOL, offsetof(struct thing, on), 0, 0, 0, NULL, NULL},
    {"wait", YS_F_DURATION, offsetof(struct thing, wait_ms), 0, 0, 0, NULL, NULL},
    {"big", YS_F_I64, offsetof(struct thing, big), 0, 0, INT64_MAX, NULL, NULL},
    {"name", YS_F_STRING, offsetof(struct thing, name), 0, 0, 0, NULL, NULL},
    {"status", YS_F_STATUS, offsetof(struct thing, status), 0, 0, 0, NULL, NULL},
    {"tags", YS_F_STRV, offsetof(struct thing, tags), offsetof(struct thing, n_tags), 0, 0, NULL, NULL},
    {"inner", YS_F_MAP, 0, 0, 0, 0, &inner_set, NULL},
};
static const struct ys_fieldset thing_set = {thing_fields, KC_ARRAY_SIZE(thing_fields), check_thing};

static void thing_done(struct thing *t)
{
	free(t->name);
	ys_strv_free(t->tags, t->n_tags);
}

/* Parses and walks text into *t; returns the walk's result, with the message in err. */
static int load(const char *text, struct thing *t, struct kc_error *err)
{
	struct ys_ctx c = {.name = "t.yaml", .err = err};
	struct ys_node *root = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	t->count = 3;
	r = ys_build_tree(&c, text, strlen(text), &root);
	if (r == 0 && root)
		r = ys_walk_fields(&c, root, &thing_set, t);
	ys_node_free(root);
	return r;
}

static void test_walk(void **state)
{
	struct kc_error err = {0};
	struct thing t;

	(void)state;
	assert_int_equal(load("on: true\nwait: 1m30s\nbig: 12345678901\nname: gpu\nstatus: \"False\"\n"
			      "tags: [a, b]\ninner: {count: 7, delta: -2}\n",
			      &t, &err),
			 0);
	assert_true(t.on);
	assert_int_equal(t.wait_ms, 90000);
	assert_int_equal(t.big, 12345678901LL);
	assert_string_equal(t.name, "gpu");
	assert_int_equal(t.status, KC_COND_FALSE);
	assert_int_equal(t.n_tags, 2);
	assert_string_equal(t.tags[1], "b");
	assert_int_equal(t.count, 7);
	assert_int_equal(t.delta, -2);
	thing_done(&t);

	/* An explicit null keeps the default. */
	assert_int_equal(load("inner: {count: ~}\nname: null\n", &t, &err), 0);
	assert_int_equal(t.count, 3);
	assert_null(t.name);
	thing_done(&t);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	    {"inner:\n  cuont: 1\n", "t.yaml:2:3: inner.cuont: unknown field (expected one of: count, delta)"},
	    {"on: true\non: false\n", "t.yaml:2:1: on: duplicate field (first given on line 1)"},
	    {"inner: {delta: 9}\n", "t.yaml:1:16: inner.delta: expected an integer from -5 to 5, got \"9\""},
	    {"on: \"true\"\n", "t.yaml:1:5: on: expected true or false, got the quoted string \"true\""},
	    {"tags: [a, '']\n", "t.yaml:1:11: tags[1]: must not be empty"},
	    {"wait: 5 s\n", "t.yaml:1:7: wait: expected a duration such as \"30s\", \"5m\" or \"1h30m\", got \"5 s\""},
	    {"on: true\ninner: {count: 0}\n", "t.yaml:1:1: count: must be set when on"},
	    {"a: &x 1\n", "t.yaml:1:4: YAML anchors and aliases are not supported"},
	    {"on: true\n---\non: false\n", "t.yaml:2:1: a policy file holds one YAML document, found a second one"},
	    {"- 1\n", "t.yaml:1:1: expected a mapping, got a list"},
	};
	struct kc_error err = {0};
	struct thing t;

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		int r = load(cases[i].text, &t, &err);

		thing_done(&t);
		if (r != -EINVAL || strcmp(err.msg, cases[i].msg) != 0)
			fail_msg("case %zu: r=%d msg \"%s\", want \"%s\"", i, r, err.msg, cases[i].msg);
	}
}

static void test_first_duplicate(void **state)
{
	struct kc_error err = {0};
	struct ys_ctx c = {.name = "t.yaml", .err = &err};
	struct ys_node *root = NULL;
	const char *text = "b: 1\na: 2\nc: 3\na: 4\nb: 5\n";
	size_t first = 99;

	(void)state;
	assert_int_equal(ys_build_tree(&c, text, strlen(text), &root), 0);
	/* Entry 3 ("a", line 4) is the earliest repeat; it repeats entry 1. */
	assert_int_equal(ys_first_duplicate(root, &first), 3);
	assert_int_equal(first, 1);
	assert_null(ys_find_key(root, "zz", NULL));
	assert_string_equal(ys_find_key(root, "c", NULL)->text, "3");
	ys_node_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_walk),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_first_duplicate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
