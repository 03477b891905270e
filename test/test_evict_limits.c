/*
 * Unit tests of limits: exact token-bucket timings per node, namespace and in
 * total, the in-flight cap, policy reloads, and the circuit breaker's rules.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "evict_limits.h"
#include "policy.h"

static struct policy *pol(uint32_t node, uint32_t ns, uint32_t total, uint32_t in_flight, uint64_t window)
{
	struct policy *p = policy_new_default();

	p->max_per_node = node;
	p->max_per_namespace = ns;
	p->max_total = total;
	p->max_in_flight = in_flight;
	p->window_ms = window;
	p->breaker_enabled = false;
	return p;
}

static void test_unlimited(void **state)
{
	struct policy *p = pol(0, 0, 0, 0, 60000);
	struct limits *l = limits_new(p, 0);

	(void)state;
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(limits_check(l, "ns", "n1", true, 5, NULL), LIMITS_OK);
		limits_take(l, "ns", "n1", true, 5);
	}
	assert_int_equal(limits_in_flight(l), 10000);
	assert_int_equal(limits_wake(l, true, 5), 5);
	limits_free(l);
	policy_free(p);
}

static void test_total_bucket_exact(void **state)
{
	struct policy *p = pol(0, 0, 3, 0, 60000);
	struct limits *l = limits_new(p, 1000);
	uint64_t wake = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(limits_check(l, "a", "n", false, 1000, &wake), LIMITS_OK);
		limits_take(l, "a", "n", false, 1000);
	}
	assert_int_equal(limits_check(l, "a", "n", false, 1000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 21000); /* one token per 20 s */
	assert_int_equal(limits_wake(l, false, 1000), 21000);
	assert_int_equal(limits_check(l, "a", "n", false, 20999, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 21000);
	assert_int_equal(limits_check(l, "a", "n", false, 21000, &wake), LIMITS_OK);
	limits_take(l, "a", "n", false, 21000);
	/* Refill is continuous and capped at the maximum. */
	assert_int_equal(limits_check(l, "a", "n", false, 10000000, NULL), LIMITS_OK);
	for (int i = 0; i < 3; i++)
		limits_take(l, "a", "n", false, 10000000);
	assert_int_equal(limits_check(l, "a", "n", false, 10000000, NULL), LIMITS_HOLD_TOTAL);
	assert_int_equal(limits_hold_name(LIMITS_HOLD_TOTAL)[0], 'm');
	limits_free(l);
	policy_free(p);
}

static void test_per_node_and_namespace(void **state)
{
	struct policy *p = pol(1, 2, 0, 0, 10000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	limits_take(l, "a", "n1", false, 0);
	assert_int_equal(limits_check(l, "a", "n1", false, 0, &wake), LIMITS_HOLD_NODE);
	assert_int_equal(wake, 10000);
	assert_int_equal(limits_check(l, "a", "n2", false, 0, NULL), LIMITS_OK);
	limits_take(l, "a", "n2", false, 0);
	assert_int_equal(limits_check(l, "a", "n3", false, 0, &wake), LIMITS_HOLD_NAMESPACE);
	assert_int_equal(wake, 5000);
	assert_int_equal(limits_check(l, "b", "n3", false, 0, NULL), LIMITS_OK);
	assert_int_equal(limits_check(l, "a", "n3", false, 5000, NULL), LIMITS_OK);
	/* Many keys: full buckets are pruned, the others are kept. */
	for (int i = 0; i < 10000; i++) {
		char node[32];

		snprintf(node, sizeof(node), "node-%d", i);
		limits_take(l, "c", node, false, 100000 + (uint64_t)i * 20);
	}
	assert_int_equal(limits_check(l, "a", "node-9999", false, 100000 + 9999 * 20, NULL),
			 LIMITS_HOLD_NODE);
	limits_free(l);
	policy_free(p);
}

static void test_in_flight(void **state)
{
	struct policy *p = pol(0, 0, 0, 2, 60000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	limits_take(l, "a", "n", true, 0);
	limits_take(l, "a", "n", true, 0);
	assert_int_equal(limits_check(l, "a", "n", true, 0, &wake), LIMITS_HOLD_IN_FLIGHT);
	assert_int_equal(wake, UINT64_MAX);
	assert_int_equal(limits_wake(l, true, 0), UINT64_MAX);
	/* Dry run does not count in flight. */
	assert_int_equal(limits_check(l, "a", "n", false, 0, NULL), LIMITS_OK);
	limits_done(l);
	assert_int_equal(limits_check(l, "a", "n", true, 0, NULL), LIMITS_OK);
	limits_done(l);
	limits_done(l); /* never below zero */
	assert_int_equal(limits_in_flight(l), 0);
	limits_free(l);
	policy_free(p);
}

static void test_reload_keeps_tokens(void **state)
{
	struct policy *p = pol(0, 0, 4, 0, 40000);
	struct policy *q = pol(0, 0, 2, 0, 40000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	for (int i = 0; i < 3; i++)
		limits_take(l, "a", "n", false, 0);
	limits_set_policy(l, q, 0); /* 1 token left, capacity 2 */
	assert_int_equal(limits_check(l, "a", "n", false, 0, NULL), LIMITS_OK);
	limits_take(l, "a", "n", false, 0);
	assert_int_equal(limits_check(l, "a", "n", false, 0, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 20000);
	limits_set_policy(l, p, 0); /* back to 4 per 40 s: one token per 10 s */
	assert_int_equal(limits_check(l, "a", "n", false, 0, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 10000);
	limits_free(l);
	policy_free(p);
	policy_free(q);
}

static void test_breaker(void **state)
{
	struct policy *p = pol(0, 0, 0, 0, 60000);
	struct limits *l;

	(void)state;
	p->breaker_enabled = true;
	p->breaker_max_percent = 50;
	p->breaker_min_nodes = 4;
	p->breaker_max_nodes = 0;
	l = limits_new(p, 0);
	assert_int_equal(limits_breaker_update(l, 3, 3), LIMITS_BREAKER_SAME); /* below minNodes */
	assert_int_equal(limits_breaker_update(l, 4, 2), LIMITS_BREAKER_SAME); /* 50% is not above 50% */
	assert_int_equal(limits_breaker_update(l, 4, 3), LIMITS_BREAKER_OPENED);
	assert_true(limits_breaker_open(l));
	assert_string_equal(limits_breaker_reason(l),
			    "3 of 4 device nodes (75%) are unhealthy (maximum 50%)");
	assert_int_equal(limits_check(l, "a", "n", false, 0, NULL), LIMITS_HOLD_BREAKER);
	assert_int_equal(limits_wake(l, false, 0), UINT64_MAX);
	assert_int_equal(limits_breaker_update(l, 4, 3), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 10, 3), LIMITS_BREAKER_CLOSED);
	assert_false(limits_breaker_open(l));
	p->breaker_max_nodes = 2;
	p->breaker_max_percent = 0;
	limits_set_policy(l, p, 0);
	assert_int_equal(limits_breaker_update(l, 100, 2), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 100, 3), LIMITS_BREAKER_OPENED);
	assert_string_equal(limits_breaker_reason(l), "3 of 100 device nodes are unhealthy (maximum 2)");
	p->breaker_enabled = false;
	limits_set_policy(l, p, 0);
	assert_int_equal(limits_breaker_update(l, 100, 100), LIMITS_BREAKER_CLOSED);
	limits_free(l);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_total_bucket_exact),
	    cmocka_unit_test(test_per_node_and_namespace),
	    cmocka_unit_test(test_in_flight),
	    cmocka_unit_test(test_reload_keeps_tokens),
	    cmocka_unit_test(test_breaker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
