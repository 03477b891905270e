/*
 * Unit tests of the metrics refresh (controller/metrics_refresh.c): counters
 * grow by the difference only, gauges are copied, a resource healthy again
 * reads 0, and the watch counters are labelled by resource.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics_refresh.h"

static double get1(const struct metrics *m, const char *name, const char *label)
{
	double v = -1;

	assert_int_equal(metrics_get(m, name, &v, label, NULL), 0);
	return v;
}

static double get2(const struct metrics *m, const char *name, const char *l1, const char *l2)
{
	double v = -1;

	assert_int_equal(metrics_get(m, name, &v, l1, l2, NULL), 0);
	return v;
}

static void test_refresh(void **state)
{
	struct metrics *m = metrics_new();
	struct metrics_refresh *mr = metrics_refresh_new(m);
	struct core_stats st;
	struct metrics_refresh_watch w[5] = {
	    {.resource = "pods", .watch_restarts = 2, .relists = 1, .oversized = 1},
	    {.resource = "nodes", .watch_restarts = 0, .relists = 0},
	    {.resource = NULL},
	    {.resource = NULL},
	    /* The fifth watch (DeviceTaintRules) was dropped when at most four were copied. */
	    {.resource = "devicetaintrules", .watch_restarts = 1, .cached = 2},
	};
	double v;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.unhealthy_pods = 3;
	st.breaker_open = true;
	st.n_unhealthy_devices = 2;
	st.unhealthy_devices[0] = (struct core_resource_count){"nvidia.com/gpu", 2};
	st.unhealthy_devices[1] = (struct core_resource_count){"claim:", 1};
	st.held_by_limit = 4;
	st.skipped[PLANNER_SKIP_DAEMONSET] = 5;
	st.quarantine_at_cap = true;
	metrics_refresh_run(mr, &st, w, 5);
	assert_true(metrics_get(m, "quarantine_cap_reached", &v, NULL) == 0 && v == 1);
	assert_true(metrics_get(m, "pods_bound_to_unhealthy_devices", &v, NULL) == 0 && v == 3);
	assert_true(metrics_get(m, "circuit_breaker_open", &v, NULL) == 0 && v == 1);
	assert_true(get1(m, "unhealthy_devices", "nvidia.com/gpu") == 2);
	assert_true(get1(m, "unhealthy_devices", "claim:") == 1);
	assert_true(get2(m, "evictions_total", "held_by_limit", "any") == 4);
	assert_true(get1(m, "pods_not_evicted_total", "DaemonSet") == 5);
	assert_true(get1(m, "watch_restarts_total", "pods") == 2);
	assert_true(get1(m, "relists_total", "pods") == 1);
	assert_true(get1(m, "oversized_objects_total", "pods") == 1);
	assert_true(get1(m, "watch_restarts_total", "devicetaintrules") == 1);
	assert_true(get1(m, "cached_objects", "devicetaintrules") == 2);
	/* A zero difference creates no series. */
	assert_int_equal(metrics_get(m, "watch_restarts_total", &v, "nodes", NULL), -ENOENT);

	/* Again with more: only the differences are added; a healthy resource reads 0. */
	st.breaker_open = false;
	st.quarantine_at_cap = false;
	st.n_unhealthy_devices = 1;
	st.unhealthy_devices[0] = (struct core_resource_count){"claim:", 2};
	st.held_by_limit = 6;
	st.skipped[PLANNER_SKIP_DAEMONSET] = 5;
	st.skipped[PLANNER_SKIP_BARE] = 1;
	w[0].watch_restarts = 3;
	w[1].relists = 2;
	w[0].oversized = 3;
	metrics_refresh_run(mr, &st, w, 5);
	assert_true(metrics_get(m, "circuit_breaker_open", &v, NULL) == 0 && v == 0);
	assert_true(metrics_get(m, "quarantine_cap_reached", &v, NULL) == 0 && v == 0);
	assert_true(get1(m, "unhealthy_devices", "nvidia.com/gpu") == 0);
	assert_true(get1(m, "unhealthy_devices", "claim:") == 2);
	assert_true(get2(m, "evictions_total", "held_by_limit", "any") == 6);
	assert_true(get1(m, "pods_not_evicted_total", "DaemonSet") == 5);
	assert_true(get1(m, "pods_not_evicted_total", "BarePod") == 1);
	assert_true(get1(m, "watch_restarts_total", "pods") == 3);
	assert_true(get1(m, "relists_total", "nodes") == 2);
	assert_true(get1(m, "oversized_objects_total", "pods") == 3);
	assert_null(metrics_refresh_free(mr));
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
