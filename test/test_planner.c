/*
 * Unit tests of the planner: the due-time heap against a brute-force model,
 * label selectors, filter order, primary hits, and retry/backoff/deleteAfter
 * timing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core_builders.h"
#include "kc_backoff.h"
#include "kc_util.h"
#include "planner.h"

static void test_heap_against_model(void **state)
{
	struct planner *pl = planner_new();
	struct planner_pod *recs[200] = {0};
	uint64_t rng = 42;

	(void)state;
	for (int step = 0; step < 20000; step++) {
		int i = (int)(kc_backoff_rand(&rng) % 200);
		unsigned op = (unsigned)(kc_backoff_rand(&rng) % 10);
		const struct planner_pod *top = planner_peek(pl);
		const struct planner_pod *best = NULL;

		if (!recs[i]) {
			struct kc_pod *pod =
			    tb_pod("ns", tb_fmt("p%d", i), tb_fmt("uid-%d-%d", i, step), "n");

			recs[i] = planner_add(pl, pod);
			free(pod);
		}
		if (op < 6)
			planner_schedule(pl, recs[i], kc_backoff_rand(&rng) % 1000);
		else if (op < 8)
			planner_schedule(pl, recs[i], UINT64_MAX);
		else {
			planner_remove(pl, recs[i]);
			recs[i] = NULL;
		}
		for (int j = 0; j < 200; j++)
			if (recs[j] && recs[j]->heap_pos != SIZE_MAX &&
			    (!best || recs[j]->due_ms < best->due_ms))
				best = recs[j];
		top = planner_peek(pl);
		if (!best)
			assert_null(top);
		else
			assert_int_equal(top->due_ms, best->due_ms);
	}
	assert_true(planner_count(pl) > 0);
	planner_free(pl);
	tb_reset();
}

static void test_ties_first_scheduled_first(void **state)
{
	struct planner *pl = planner_new();
	struct planner_pod *r[5];

	(void)state;
	for (int i = 0; i < 5; i++) {
		struct kc_pod *pod = tb_pod("ns", tb_fmt("p%d", i), tb_fmt("u%d", i), "n");

		r[i] = planner_add(pl, pod);
		free(pod);
		planner_schedule(pl, r[i], 100);
	}
	for (int i = 0; i < 5; i++) {
		assert_ptr_equal(planner_peek(pl), r[i]);
		planner_schedule(pl, r[i], UINT64_MAX);
	}
	assert_null(planner_peek(pl));
	assert_ptr_equal(planner_get(pl, "u3"), r[3]);
	assert_null(planner_get(pl, "nope"));
	planner_free(pl);
	tb_reset();
}

static void test_selector(void **state)
{
	struct policy *p = tb_policy_yaml("podFilters:\n  labelSelector:\n    matchLabels: {team: ml}\n"
					  "    matchExpressions:\n"
					  "      - {key: tier, operator: In, values: [gold, silver]}\n"
					  "      - {key: env, operator: NotIn, values: [dev]}\n"
					  "      - {key: gpu, operator: Exists}\n"
					  "      - {key: skip, operator: DoesNotExist}\n");
	struct kc_pod *pod = tb_pod("ns", "a", "u", "n");

	(void)state;
	assert_false(planner_selector_matches(&p->selector, pod));
	tb_pod_label(pod, "team", "ml");
	tb_pod_label(pod, "tier", "silver");
	tb_pod_label(pod, "gpu", "");
	assert_true(planner_selector_matches(&p->selector, pod));
	tb_pod_label(pod, "env", "dev");
	assert_false(planner_selector_matches(&p->selector, pod));
	pod->meta.labels[3].value = "prod";
	assert_true(planner_selector_matches(&p->selector, pod));
	tb_pod_label(pod, "skip", "1");
	assert_false(planner_selector_matches(&p->selector, pod));
	free(pod);
	policy_free(p);
	tb_reset();
}

static void test_filter_order_and_names(void **state)
{
	struct policy *p = tb_policy();
	struct kc_pod *pod = tb_pod("ns", "a", "u", "");

	(void)state;
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_UNSCHEDULED);
	pod->node_name = "n";
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_BARE);
	tb_pod_owner(pod, "Job", "j", false);
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_BARE); /* not a controller owner */
	tb_pod_owner(pod, "Job", "j2", true);
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_NONE);
	pod->phase = KC_POD_PENDING;
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_NONE);
	pod->is_mirror = true;
	pod->meta.deleting = true;
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_TERMINATING);
	for (int s = 0; s < PLANNER_SKIP_COUNT; s++) {
		assert_true(strlen(planner_skip_name((enum planner_skip)s)) > 0);
		assert_true(strlen(planner_skip_message((enum planner_skip)s)) > 0);
	}
	assert_string_equal(planner_skip_name(PLANNER_SKIP_DAEMONSET), "DaemonSet");
	free(pod);
	policy_free(p);
	tb_reset();
}

static void test_retry_timing(void **state)
{
	struct policy *p =
	    tb_policy_yaml("eviction: {retry: {initialBackoff: 1s, maxBackoff: 5s}, deleteAfter: 30s}\n");
	struct planner_pod r;
	static const uint64_t expect[] = {1000, 2000, 4000, 5000, 5000};
	uint64_t now = 100;

	(void)state;
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < KC_ARRAY_SIZE(expect); i++) {
		planner_retry(p, &r, true, 0, now);
		assert_int_equal(r.retry_at_ms - now, expect[i]);
		assert_false(r.delete_next);
		now = r.retry_at_ms;
	}
	assert_int_equal(r.blocked_since_ms, 100);
	/* now = 17100: Retry-After of 60 s is cut at the deleteAfter deadline (30100). */
	planner_retry(p, &r, true, 60000, now);
	assert_int_equal(r.retry_at_ms, 30100);
	planner_check_delete(p, &r, 30099);
	assert_false(r.delete_next);
	planner_check_delete(p, &r, 30100);
	assert_true(r.delete_next);
	/* A policy without deleteAfter clears it again. */
	p->delete_after_ms = 0;
	planner_check_delete(p, &r, 40000);
	assert_false(r.delete_next);
	/* Errors do not start the deleteAfter clock. */
	memset(&r, 0, sizeof(r));
	p->delete_after_ms = 1;
	planner_retry(p, &r, false, 0, 0);
	planner_check_delete(p, &r, 1000000);
	assert_false(r.delete_next);
	policy_free(p);
	tb_reset();
}

static void test_primary_hit(void **state)
{
	struct planner_pod r;
	struct health_hit hits[3] = {
	    {.signal = HEALTH_NODE_CONDITION, .first_seen_ms = 0, .for_ms = 500},
	    {.signal = HEALTH_POD_RESOURCE, .first_seen_ms = 100, .for_ms = 0},
	    {.signal = HEALTH_EXIT_CODE, .first_seen_ms = 50, .for_ms = 10},
	};

	(void)state;
	memset(&r, 0, sizeof(r));
	r.hits = hits;
	r.n_hits = 3;
	assert_int_equal(planner_hits_due(&r), 60);
	assert_int_equal(planner_primary_hit(&r, 60)->signal, HEALTH_EXIT_CODE);
	assert_int_equal(planner_primary_hit(&r, 10)->signal,
			 HEALTH_NODE_CONDITION); /* none due: the first */
	r.n_hits = 0;
	assert_null(planner_primary_hit(&r, 60));
	assert_int_equal(planner_hits_due(&r), UINT64_MAX);
}

/* planner_filter_each reports every filter that keeps a pod; planner_filter is the first of them. */
static void test_filter_each(void **state)
{
	struct policy *p = tb_policy_yaml("podFilters: {namespaces: {exclude: [ns]}, priorityThreshold: {value: 100}}\n");
	struct kc_pod *pod = tb_pod("ns", "a", "u", "n");
	bool fails[PLANNER_SKIP_COUNT];

	(void)state;
	tb_pod_owner(pod, "DaemonSet", "d", true);
	tb_pod_annotation(pod, "device-descheduler.io/evict", "false");
	pod->has_priority = true;
	pod->priority = 1000;
	planner_filter_each(p, pod, fails);
	for (int s = 0; s < PLANNER_SKIP_COUNT; s++)
		assert_int_equal(fails[s], s == PLANNER_SKIP_DAEMONSET || s == PLANNER_SKIP_NAMESPACE ||
					       s == PLANNER_SKIP_OPT_OUT || s == PLANNER_SKIP_PRIORITY);
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_DAEMONSET);
	pod->node_name = "";
	planner_filter_each(p, pod, fails);
	assert_true(fails[PLANNER_SKIP_UNSCHEDULED]);
	assert_int_equal(planner_filter(p, pod), PLANNER_SKIP_UNSCHEDULED);
	free(pod);
	policy_free(p);
	tb_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heap_against_model), cmocka_unit_test(test_ties_first_scheduled_first),
	    cmocka_unit_test(test_selector),	       cmocka_unit_test(test_filter_order_and_names),
	    cmocka_unit_test(test_retry_timing),       cmocka_unit_test(test_primary_hit),
	    cmocka_unit_test(test_filter_each),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
