/*
 * Unit tests of limits: exact sliding-window timings per node, namespace and
 * in total (never more than N in any window, unlike a token bucket), the
 * in-flight cap, policy reloads, the separate dry-run ledger, and the circuit
 * breaker's rules and hysteresis.
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
		assert_int_equal(limits_check(l, "ns", "n1", false, 5, NULL), LIMITS_OK);
		limits_take(l, "ns", "n1", false, 5);
	}
	assert_int_equal(limits_in_flight(l), 10000);
	assert_int_equal(limits_wake(l, false, 5), 5);
	limits_free(l);
	policy_free(p);
}

static void take(struct limits *l, const char *ns, const char *node, uint64_t now)
{
	assert_int_equal(limits_check(l, ns, node, true, now, NULL), LIMITS_OK);
	limits_take(l, ns, node, true, now);
}

/*
 * maxTotal 3 per 60 s: three at once hold the fourth for a whole window.  A
 * token bucket refilled one token per 20 s and let a fourth through at 20 s,
 * four in one window (and up to 2N in the worst case).
 */
static void test_total_window_exact(void **state)
{
	struct policy *p = pol(0, 0, 3, 0, 60000);
	struct limits *l = limits_new(p, 1000);
	uint64_t wake = 0;

	(void)state;
	for (int i = 0; i < 3; i++)
		take(l, "a", "n", 1000);
	assert_int_equal(limits_check(l, "a", "n", true, 1000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 61000);
	assert_int_equal(limits_wake(l, true, 1000), 61000);
	assert_int_equal(limits_check(l, "a", "n", true, 21000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 61000);
	assert_int_equal(limits_check(l, "a", "n", true, 60999, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(limits_check(l, "a", "n", true, 61000, &wake), LIMITS_OK);
	/* Spread out: 61 s, 90 s, 120.999 s; the next fits when the first leaves the window. */
	take(l, "a", "n", 61000);
	take(l, "a", "n", 90000);
	take(l, "a", "n", 120999);
	assert_int_equal(limits_check(l, "a", "n", true, 120999, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 121000);
	take(l, "a", "n", 121000);
	assert_int_equal(limits_check(l, "a", "n", true, 121000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 150000);
	/* Long idle: the full budget again, and never more. */
	for (int i = 0; i < 3; i++)
		take(l, "a", "n", 10000000);
	assert_int_equal(limits_check(l, "a", "n", true, 10000000, NULL), LIMITS_HOLD_TOTAL);
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
	take(l, "a", "n1", 0);
	assert_int_equal(limits_check(l, "a", "n1", true, 0, &wake), LIMITS_HOLD_NODE);
	assert_int_equal(wake, 10000);
	take(l, "a", "n2", 3000);
	assert_int_equal(limits_check(l, "a", "n3", true, 3000, &wake), LIMITS_HOLD_NAMESPACE);
	assert_int_equal(wake, 10000);
	assert_int_equal(limits_check(l, "b", "n3", true, 3000, NULL), LIMITS_OK);
	assert_int_equal(limits_check(l, "a", "n3", true, 10000, NULL), LIMITS_OK);
	take(l, "a", "n3", 10000);
	assert_int_equal(limits_check(l, "a", "n4", true, 10000, &wake), LIMITS_HOLD_NAMESPACE);
	assert_int_equal(wake, 13000);
	/* Many keys: expired logs are pruned, the others are kept. */
	for (int i = 0; i < 10000; i++) {
		char node[32];

		snprintf(node, sizeof(node), "node-%d", i);
		limits_take(l, "c", node, true, 100000 + (uint64_t)i * 20);
	}
	assert_int_equal(limits_check(l, "a", "node-9999", true, 100000 + 9999 * 20, NULL), LIMITS_HOLD_NODE);
	assert_int_equal(limits_check(l, "a", "node-9600", true, 100000 + 9999 * 20, NULL), LIMITS_HOLD_NODE);
	limits_free(l);
	policy_free(p);
}

static void test_in_flight(void **state)
{
	struct policy *p = pol(0, 0, 0, 2, 60000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	limits_take(l, "a", "n", false, 0);
	limits_take(l, "a", "n", false, 0);
	assert_int_equal(limits_check(l, "a", "n", false, 0, &wake), LIMITS_HOLD_IN_FLIGHT);
	assert_int_equal(wake, UINT64_MAX);
	assert_int_equal(limits_wake(l, false, 0), UINT64_MAX);
	/* Dry run does not count in flight. */
	assert_int_equal(limits_check(l, "a", "n", true, 0, NULL), LIMITS_OK);
	limits_done(l);
	assert_int_equal(limits_check(l, "a", "n", false, 0, NULL), LIMITS_OK);
	limits_done(l);
	limits_done(l); /* never below zero */
	assert_int_equal(limits_in_flight(l), 0);
	limits_free(l);
	policy_free(p);
}

/* A reload keeps what was logged: lowering the maximum cannot reset the budget. */
static void test_reload_keeps_log(void **state)
{
	struct policy *p = pol(0, 0, 4, 0, 40000);
	struct policy *q = pol(0, 0, 2, 0, 40000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	for (int i = 0; i < 3; i++)
		take(l, "a", "n", i * 1000);
	limits_set_policy(l, q, 5000); /* 3 logged, 2 allowed */
	assert_int_equal(limits_check(l, "a", "n", true, 5000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 41000); /* when only one of them is left in the window */
	limits_set_policy(l, p, 5000); /* back to 4 per 40 s: one more fits */
	take(l, "a", "n", 5000);
	assert_int_equal(limits_check(l, "a", "n", true, 5000, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 40000);
	limits_free(l);
	policy_free(p);
	policy_free(q);
}

/* Dry-run reports count in their own ledger: turning dry run off finds the real budget untouched. */
static void test_dry_run_ledger(void **state)
{
	struct policy *p = pol(1, 1, 2, 1, 60000);
	struct limits *l = limits_new(p, 0);
	uint64_t wake;

	(void)state;
	assert_int_equal(limits_check(l, "a", "n1", true, 0, NULL), LIMITS_OK);
	limits_take(l, "a", "n1", true, 0);
	assert_int_equal(limits_check(l, "b", "n2", true, 0, NULL), LIMITS_OK);
	limits_take(l, "b", "n2", true, 0);
	assert_int_equal(limits_check(l, "c", "n3", true, 0, &wake), LIMITS_HOLD_TOTAL);
	assert_int_equal(wake, 60000);
	assert_int_equal(limits_wake(l, true, 0), 60000);
	assert_int_equal(limits_in_flight(l), 0);
	/* The real ledger: nothing taken yet, not per node, not per namespace. */
	assert_int_equal(limits_wake(l, false, 1), 1);
	assert_int_equal(limits_check(l, "a", "n1", false, 1, NULL), LIMITS_OK);
	limits_take(l, "a", "n1", false, 1);
	assert_int_equal(limits_check(l, "b", "n2", false, 1, NULL), LIMITS_HOLD_IN_FLIGHT);
	limits_done(l);
	assert_int_equal(limits_check(l, "a", "n2", false, 1, NULL), LIMITS_HOLD_NAMESPACE);
	assert_int_equal(limits_check(l, "b", "n1", false, 1, NULL), LIMITS_HOLD_NODE);
	assert_int_equal(limits_check(l, "b", "n2", false, 1, NULL), LIMITS_OK);
	limits_free(l);
	policy_free(p);
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
	p->breaker_close_after_ms = 0;
	l = limits_new(p, 0);
	assert_int_equal(limits_breaker_update(l, 3, 3, 0), LIMITS_BREAKER_SAME); /* below minNodes */
	assert_int_equal(limits_breaker_update(l, 4, 2, 0), LIMITS_BREAKER_SAME); /* 50% is not above 50% */
	assert_int_equal(limits_breaker_update(l, 4, 3, 0), LIMITS_BREAKER_OPENED);
	assert_true(limits_breaker_open(l));
	assert_string_equal(limits_breaker_reason(l), "3 of 4 device nodes (75%) are unhealthy (maximum 50%)");
	assert_int_equal(limits_check(l, "a", "n", true, 0, NULL), LIMITS_HOLD_BREAKER);
	assert_int_equal(limits_wake(l, true, 0), UINT64_MAX);
	assert_int_equal(limits_breaker_update(l, 4, 3, 0), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 10, 3, 0), LIMITS_BREAKER_CLOSED);
	assert_false(limits_breaker_open(l));
	assert_string_equal(limits_breaker_reason(l), "3 of 10 device nodes are unhealthy");
	p->breaker_max_nodes = 2;
	p->breaker_max_percent = 0;
	limits_set_policy(l, p, 0);
	assert_int_equal(limits_breaker_update(l, 100, 2, 0), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 100, 3, 0), LIMITS_BREAKER_OPENED);
	assert_string_equal(limits_breaker_reason(l), "3 of 100 device nodes are unhealthy (maximum 2)");
	p->breaker_enabled = false;
	p->breaker_close_after_ms = 30000;
	limits_set_policy(l, p, 0);
	/* A disabled breaker closes at once, whatever closeAfter says. */
	assert_int_equal(limits_breaker_update(l, 100, 100, 0), LIMITS_BREAKER_CLOSED);
	limits_free(l);
	policy_free(p);
}

/*
 * closeAfter: the breaker opens at once but closes only after the condition
 * has not held for closeAfter, so a count flapping at the threshold gives one
 * Open and one Closed, not one pair per flap.
 */
static void test_breaker_hysteresis(void **state)
{
	struct policy *p = pol(0, 0, 0, 0, 60000);
	struct limits *l;
	int opened = 0, closed = 0;

	(void)state;
	p->breaker_enabled = true;
	p->breaker_max_percent = 50;
	p->breaker_min_nodes = 4;
	p->breaker_close_after_ms = 30000;
	l = limits_new(p, 0);
	assert_int_equal(limits_breaker_wake(l), UINT64_MAX);
	assert_int_equal(limits_breaker_update(l, 8, 5, 1000), LIMITS_BREAKER_OPENED);
	assert_int_equal(limits_breaker_wake(l), UINT64_MAX);
	assert_int_equal(limits_breaker_update(l, 8, 4, 2000), LIMITS_BREAKER_SAME);
	assert_true(limits_breaker_open(l));
	assert_int_equal(limits_breaker_wake(l), 32000);
	assert_int_equal(limits_check(l, "a", "n", true, 2000, NULL), LIMITS_HOLD_BREAKER);
	/* Above again: the clock starts over. */
	assert_int_equal(limits_breaker_update(l, 8, 5, 3000), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_wake(l), UINT64_MAX);
	assert_int_equal(limits_breaker_update(l, 8, 4, 4000), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 8, 4, 33999), LIMITS_BREAKER_SAME);
	assert_int_equal(limits_breaker_update(l, 8, 4, 34000), LIMITS_BREAKER_CLOSED);
	assert_int_equal(limits_breaker_wake(l), UINT64_MAX);
	/* Ten flaps one second apart, starting over: one Open, and no Closed within closeAfter. */
	for (int i = 0; i < 20; i++) {
		enum limits_breaker_change ch = limits_breaker_update(l, 8, i % 2 ? 4 : 5, 40000 + (uint64_t)i * 1000);

		opened += ch == LIMITS_BREAKER_OPENED;
		closed += ch == LIMITS_BREAKER_CLOSED;
	}
	assert_int_equal(opened, 1);
	assert_int_equal(closed, 0);
	assert_int_equal(limits_breaker_update(l, 8, 4, 59000 + 30000), LIMITS_BREAKER_CLOSED);
	limits_free(l);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_total_window_exact),
	    cmocka_unit_test(test_per_node_and_namespace),
	    cmocka_unit_test(test_in_flight),
	    cmocka_unit_test(test_reload_keeps_log),
	    cmocka_unit_test(test_dry_run_ledger),
	    cmocka_unit_test(test_breaker),
	    cmocka_unit_test(test_breaker_hysteresis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
