/*
 * Unit tests of the object store (kc_store.h): lookups by namespace/name,
 * replacement, the by-node index as pods move between nodes, generations and
 * sweep, and a churn run that checks the hash table against a model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_store.h"
#include "kc_util.h"

static struct kc_intern *intern;

static int setup(void **state)
{
	(void)state;
	intern = kc_intern_new();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	intern = kc_intern_free(intern);
	return 0;
}

static struct kc_pod *pod(const char *ns, const char *name, const char *node, const char *rv)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	char *json = kc_xasprintf("{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"resourceVersion\":\"%s\"},"
				  "\"spec\":{\"nodeName\":\"%s\"}}",
				  ns, name, rv, node);
	void *obj = NULL;

	assert_int_equal(kc_decode_object(&kc_type_pod, &ctx, json, strlen(json), &obj, NULL), 0);
	free(json);
	return obj;
}

static int count_cb(const void *obj, void *ud)
{
	(void)obj;
	(*(size_t *)ud)++;
	return 0;
}

static size_t on_node(const struct kc_store *s, const char *node)
{
	size_t n = 0;

	assert_int_equal(kc_store_foreach_on_node(s, node, count_cb, &n), 0);
	return n;
}

static size_t total(const struct kc_store *s)
{
	size_t n = 0;

	assert_int_equal(kc_store_foreach(s, count_cb, &n), 0);
	return n;
}

static void test_put_get_take(void **state)
{
	struct kc_store *s = kc_store_new(&kc_type_pod);
	const struct kc_pod *got;
	void *old = (void *)1;

	(void)state;
	kc_store_put(s, pod("a", "p1", "n1", "1"), &old);
	assert_null(old);
	kc_store_put(s, pod("b", "p1", "n1", "1"), NULL);
	kc_store_put(s, pod("a", "p2", "", "1"), NULL);
	assert_int_equal(kc_store_count(s), 3);
	got = kc_store_get(s, "a", "p1");
	assert_non_null(got);
	assert_string_equal(got->meta.ns, "a");
	assert_null(kc_store_get(s, "c", "p1"));
	assert_null(kc_store_get(s, "a", "p3"));
	/* The key is ns + name, not their concatenation. */
	assert_null(kc_store_get(s, "", "ap1"));
	assert_null(kc_store_get(s, "ap", "1"));

	/* Replacement hands back the old object. */
	kc_store_put(s, pod("a", "p1", "n1", "2"), &old);
	assert_non_null(old);
	assert_int_equal(((struct kc_pod *)old)->meta.rv_key, 1);
	kc_object_free(old);
	assert_int_equal(((const struct kc_pod *)kc_store_get(s, "a", "p1"))->meta.rv_key, 2);
	assert_int_equal(kc_store_count(s), 3);

	old = kc_store_take(s, "b", "p1");
	assert_non_null(old);
	kc_object_free(old);
	assert_null(kc_store_take(s, "b", "p1"));
	assert_int_equal(kc_store_count(s), 2);
	assert_int_equal(total(s), 2);
	assert_true(kc_store_index_bytes(s) > 0);
	assert_null(kc_store_free(s));
	assert_null(kc_store_free(NULL));
}

static void test_by_node(void **state)
{
	struct kc_store *s = kc_store_new(&kc_type_pod);
	void *old;

	(void)state;
	kc_store_put(s, pod("a", "p1", "n1", "1"), NULL);
	kc_store_put(s, pod("a", "p2", "n1", "1"), NULL);
	kc_store_put(s, pod("a", "p3", "n2", "1"), NULL);
	kc_store_put(s, pod("a", "p4", "", "1"), NULL);  /* not scheduled: in no node list */
	assert_int_equal(on_node(s, "n1"), 2);
	assert_int_equal(on_node(s, "n2"), 1);
	assert_int_equal(on_node(s, ""), 0);
	assert_int_equal(on_node(s, "n3"), 0);
	assert_int_equal(kc_store_foreach_on_node(s, NULL, count_cb, &(size_t){ 0 }), 0);

	/* p1 moves n1 -> n2, p4 gets scheduled on n3, p3 becomes unscheduled. */
	kc_store_put(s, pod("a", "p1", "n2", "2"), NULL);
	kc_store_put(s, pod("a", "p4", "n3", "2"), NULL);
	kc_store_put(s, pod("a", "p3", "", "2"), NULL);
	assert_int_equal(on_node(s, "n1"), 1);
	assert_int_equal(on_node(s, "n2"), 1);
	assert_int_equal(on_node(s, "n3"), 1);
	/* Same node again: still listed once. */
	kc_store_put(s, pod("a", "p4", "n3", "3"), NULL);
	assert_int_equal(on_node(s, "n3"), 1);

	/* Removing the last pod of a node empties it; the node can come back. */
	old = kc_store_take(s, "a", "p2");
	kc_object_free(old);
	assert_int_equal(on_node(s, "n1"), 0);
	kc_store_put(s, pod("b", "q", "n1", "1"), NULL);
	assert_int_equal(on_node(s, "n1"), 1);
	assert_int_equal(kc_store_count(s), 4);
	kc_store_free(s);
}

static int stop_cb(const void *obj, void *ud)
{
	(void)obj;
	return ++*(int *)ud == 2 ? 42 : 0;
}

static void test_foreach_stop_and_nodes_type(void **state)
{
	struct kc_store *s = kc_store_new(&kc_type_node);
	struct kc_decode_ctx ctx = { NULL, NULL };
	int calls = 0;

	(void)state;
	ctx.intern = intern;
	for (int i = 0; i < 3; i++) {
		char *json = kc_xasprintf("{\"metadata\":{\"name\":\"node-%d\"}}", i);
		void *obj;

		assert_int_equal(kc_decode_object(&kc_type_node, &ctx, json, strlen(json), &obj, NULL), 0);
		kc_store_put(s, obj, NULL);
		free(json);
	}
	assert_non_null(kc_store_get(s, "", "node-1"));
	assert_non_null(kc_store_get(s, NULL, "node-1"));
	assert_int_equal(kc_store_foreach(s, stop_cb, &calls), 42);
	assert_int_equal(calls, 2);
	assert_int_equal(on_node(s, "node-1"), 0);  /* nodes have no node_of */
	kc_store_free(s);
}

struct swept {
	char names[8][16];
	size_t n;
};

static void sweep_cb(void *obj, void *ud)
{
	struct swept *sw = ud;

	snprintf(sw->names[sw->n++], sizeof(sw->names[0]), "%s", ((struct kc_meta *)obj)->name);
	kc_object_free(obj);
}

static void test_generations(void **state)
{
	struct kc_store *s = kc_store_new(&kc_type_pod);
	struct swept sw = { .n = 0 };

	(void)state;
	kc_store_put(s, pod("a", "p1", "n1", "1"), NULL);
	kc_store_put(s, pod("a", "p2", "n1", "1"), NULL);
	kc_store_put(s, pod("a", "p3", "n2", "1"), NULL);
	/* Nothing to sweep in the generation everything was put in. */
	assert_int_equal(kc_store_sweep(s, sweep_cb, &sw), 0);

	/* A relist sees p1 (moved to n2) and p4, not p2 or p3. */
	kc_store_begin_generation(s);
	kc_store_put(s, pod("a", "p1", "n2", "2"), NULL);
	kc_store_put(s, pod("a", "p4", "n1", "1"), NULL);
	assert_int_equal(kc_store_sweep(s, sweep_cb, &sw), 2);
	assert_int_equal(sw.n, 2);
	assert_true((strcmp(sw.names[0], "p2") == 0 && strcmp(sw.names[1], "p3") == 0)
		    || (strcmp(sw.names[0], "p3") == 0 && strcmp(sw.names[1], "p2") == 0));
	assert_int_equal(kc_store_count(s), 2);
	assert_null(kc_store_get(s, "a", "p2"));
	assert_int_equal(on_node(s, "n1"), 1);
	assert_int_equal(on_node(s, "n2"), 1);
	/* Sweeping again removes nothing; a NULL callback frees. */
	assert_int_equal(kc_store_sweep(s, NULL, NULL), 0);
	kc_store_begin_generation(s);
	assert_int_equal(kc_store_sweep(s, NULL, NULL), 2);
	assert_int_equal(kc_store_count(s), 0);
	assert_int_equal(total(s), 0);
	assert_int_equal(on_node(s, "n1"), 0);
	kc_store_free(s);
}

/* Random puts and takes against a presence model: exercises growth,
 * backward-shift deletion and free-slot reuse. */
static void test_churn(void **state)
{
	enum { N = 20000 };
	struct kc_store *s = kc_store_new(&kc_type_pod);
	unsigned char *present = kc_xcalloc(N, 1);
	int *node = kc_xcalloc(N, sizeof(int));
	size_t want = 0, per_node[8] = { 0 };
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (int step = 0; step < 200000; step++) {
		int i, nd;
		char name[16], nn[16];

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (int)(x % N);
		nd = (int)((x >> 32) % 8);
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(nn, sizeof(nn), "n%d", nd);
		if ((x >> 20) % 3 == 0) {
			void *o = kc_store_take(s, "ns", name);

			assert_true((o != NULL) == present[i]);
			if (o) {
				kc_object_free(o);
				per_node[node[i]]--;
				present[i] = 0;
				want--;
			}
		} else {
			kc_store_put(s, pod("ns", name, nn, "1"), NULL);
			if (present[i])
				per_node[node[i]]--;
			else
				want++;
			present[i] = 1;
			node[i] = nd;
			per_node[nd]++;
		}
	}
	assert_int_equal(kc_store_count(s), want);
	assert_int_equal(total(s), want);
	for (int i = 0; i < N; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		assert_true((kc_store_get(s, "ns", name) != NULL) == present[i]);
	}
	for (int nd = 0; nd < 8; nd++) {
		char nn[16];

		snprintf(nn, sizeof(nn), "n%d", nd);
		assert_int_equal(on_node(s, nn), per_node[nd]);
	}
	/* A relist across many chunks: only the even pods are put again, the sweep takes the rest. */
	kc_store_begin_generation(s);
	want = 0;
	for (int i = 0; i < N; i += 2) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		kc_store_put(s, pod("ns", name, "n0", "2"), NULL);
		want++;
	}
	kc_store_sweep(s, NULL, NULL);
	assert_int_equal(kc_store_count(s), want);
	assert_int_equal(total(s), want);
	assert_int_equal(on_node(s, "n0"), want);
	for (int nd = 1; nd < 8; nd++) {
		char nn[16];

		snprintf(nn, sizeof(nn), "n%d", nd);
		assert_int_equal(on_node(s, nn), 0);
	}
	for (int i = 0; i < N; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		assert_true((kc_store_get(s, "ns", name) != NULL) == (i % 2 == 0));
	}
	free(present);
	free(node);
	kc_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_take),
		cmocka_unit_test(test_by_node),
		cmocka_unit_test(test_foreach_stop_and_nodes_type),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
