/*
 * Unit tests of the Prometheus registry: exact exposition text (ordering,
 * escaping, histograms), the standard families, and every error path.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static char *render(const struct metrics *m)
{
	struct kc_buf b;
	char *s;

	kc_buf_init(&b, METRICS_MAX_RENDER);
	assert_int_equal(metrics_render(m, &b), 0);
	s = kc_xstrdup(b.data ? b.data : "");
	kc_buf_done(&b);
	return s;
}

static void test_format_value(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"},		{-0.0, "0"},
	    {1, "1"},		{-3, "-3"},
	    {0.005, "0.005"},	{2.5, "2.5"},
	    {60, "60"},		{0.1 + 0.2, "0.30000000000000004"},
	    {1e20, "1e+20"},	{123456789, "123456789"},
	    {INFINITY, "+Inf"}, {-INFINITY, "-Inf"},
	    {NAN, "NaN"},
	};
	char buf[40];

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		metrics_format_value(cases[i].v, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

/* Series sort by label values whatever the order they appeared in; values and HELP are escaped. */
static void test_custom_families(void **state)
{
	static const char *const labels[] = {"b", "a", NULL};
	static const double buckets[] = {0.5, 1, 2.5};
	struct metrics *m = metrics_new_empty();
	char *text;

	(void)state;
	assert_int_equal(metrics_register(m, METRICS_GAUGE, "zeta", "Last family.", NULL, NULL, 0), 0);
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "alpha_total",
					  "Help with \\ and\nnewline \"q\".", labels, NULL, 0),
			 0);
	assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "hist_seconds", "A histogram.", labels + 1,
					  buckets, KC_ARRAY_SIZE(buckets)),
			 0);
	assert_int_equal(metrics_register(m, METRICS_GAUGE, "empty", "Labelled, never set.", labels, NULL, 0),
			 0);

	assert_int_equal(metrics_counter_add(m, "alpha_total", 2, "y", "2", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "alpha_total", 1, "x", "q\"uo\\te\nnl", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "device_descheduler_alpha_total", 0.5, "y", "2", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "alpha_total", 1, "y", "10", NULL), 0);
	assert_int_equal(metrics_gauge_set(m, "zeta", -1.25, NULL), 0);
	assert_int_equal(metrics_histogram_observe(m, "hist_seconds", 0.5, "b", NULL), 0);
	assert_int_equal(metrics_histogram_observe(m, "hist_seconds", 2, "b", NULL), 0);
	assert_int_equal(metrics_histogram_observe(m, "hist_seconds", 100, "b", NULL), 0);
	assert_int_equal(metrics_histogram_observe(m, "hist_seconds", 0.25, "a", NULL), 0);

	text = render(m);
	assert_string_equal(text,
			    "# HELP device_descheduler_alpha_total Help with \\\\ and\\nnewline \"q\".\n"
			    "# TYPE device_descheduler_alpha_total counter\n"
			    "device_descheduler_alpha_total{b=\"x\",a=\"q\\\"uo\\\\te\\nnl\"} 1\n"
			    "device_descheduler_alpha_total{b=\"y\",a=\"10\"} 1\n"
			    "device_descheduler_alpha_total{b=\"y\",a=\"2\"} 2.5\n"
			    "# HELP device_descheduler_hist_seconds A histogram.\n"
			    "# TYPE device_descheduler_hist_seconds histogram\n"
			    "device_descheduler_hist_seconds_bucket{a=\"a\",le=\"0.5\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"a\",le=\"1\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"a\",le=\"2.5\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"a\",le=\"+Inf\"} 1\n"
			    "device_descheduler_hist_seconds_sum{a=\"a\"} 0.25\n"
			    "device_descheduler_hist_seconds_count{a=\"a\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"b\",le=\"0.5\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"b\",le=\"1\"} 1\n"
			    "device_descheduler_hist_seconds_bucket{a=\"b\",le=\"2.5\"} 2\n"
			    "device_descheduler_hist_seconds_bucket{a=\"b\",le=\"+Inf\"} 3\n"
			    "device_descheduler_hist_seconds_sum{a=\"b\"} 102.5\n"
			    "device_descheduler_hist_seconds_count{a=\"b\"} 3\n"
			    "# HELP device_descheduler_zeta Last family.\n"
			    "# TYPE device_descheduler_zeta gauge\n"
			    "device_descheduler_zeta -1.25\n");
	free(text);
	metrics_free(m);
}

static void test_errors(void **state)
{
	static const char *const labels[] = {"a", NULL};
	static const char *const bad_labels[] = {"__a", NULL};
	static const char *const le[] = {"le", NULL};
	static const double bad_buckets[] = {1, 1};
	struct metrics *m = metrics_new_empty();
	char long_value[METRICS_MAX_LABEL_VALUE + 2];
	double v = -1;

	(void)state;
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "c_total", "C.", labels, NULL, 0), 0);
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "c_total", "C.", labels, NULL, 0), -EEXIST);
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "1bad", "C.", NULL, NULL, 0), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "bad-name", "C.", NULL, NULL, 0), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_COUNTER, "x", "C.", bad_labels, NULL, 0), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "h", "H.", le, bad_buckets, 1), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "h", "H.", NULL, bad_buckets, 2), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "h", "H.", NULL, NULL, 0), -EINVAL);

	assert_int_equal(metrics_counter_add(m, "nope", 1, NULL), -ENOENT);
	assert_int_equal(metrics_counter_add(m, "c_total", 1, NULL), -EINVAL);
	assert_int_equal(metrics_counter_add(m, "c_total", 1, "x", "y", NULL), -EINVAL);
	assert_int_equal(metrics_counter_add(m, "c_total", -1, "x", NULL), -EINVAL);
	assert_int_equal(metrics_counter_add(m, "c_total", NAN, "x", NULL), -EINVAL);
	assert_int_equal(metrics_gauge_set(m, "c_total", 1, "x", NULL), -EINVAL);
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	assert_int_equal(metrics_counter_add(m, "c_total", 1, long_value, NULL), -EINVAL);
	assert_int_equal(metrics_get(m, "c_total", &v, "x", NULL), -ENOENT);

	/* The series bound. */
	for (int i = 0; i < METRICS_MAX_SERIES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(metrics_counter_add(m, "c_total", 1, name, NULL), 0);
	}
	assert_int_equal(metrics_counter_add(m, "c_total", 1, "one-more", NULL), -E2BIG);
	assert_int_equal(metrics_counter_add(m, "c_total", 1, "s7", NULL), 0);
	assert_int_equal(metrics_get(m, "c_total", &v, "s7", NULL), 0);
	assert_true(v == 2);

	/* Rendering past the buffer's bound fails and leaves what was there. */
	{
		struct kc_buf b;

		kc_buf_init(&b, 64);
		assert_int_equal(kc_buf_append(&b, "keep", 4), 0);
		assert_int_equal(metrics_render(m, &b), -EMSGSIZE);
		assert_int_equal(b.len, 4);
		assert_string_equal(b.data, "keep");
		kc_buf_done(&b);
	}
	metrics_free(m);
	metrics_free(NULL);
}

static void test_standard_families(void **state)
{
	struct metrics *m = metrics_new();
	char *text;
	double v = 0;

	(void)state;
	text = render(m);
	/* Fresh: only the families without labels, at zero. */
	assert_string_equal(
	    text,
	    "# HELP device_descheduler_caches_synced 1 once every informer cache has synced, else 0.\n"
	    "# TYPE device_descheduler_caches_synced gauge\n"
	    "device_descheduler_caches_synced 0\n"
	    "# HELP device_descheduler_circuit_breaker_open 1 when the circuit breaker holds evictions "
	    "because too much looks unhealthy, else 0.\n"
	    "# TYPE device_descheduler_circuit_breaker_open gauge\n"
	    "device_descheduler_circuit_breaker_open 0\n"
	    "# HELP device_descheduler_eviction_latency_seconds Time from the health event to the accepted "
	    "eviction, in seconds: one sample per pod rescued.\n"
	    "# TYPE device_descheduler_eviction_latency_seconds histogram\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.005\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.01\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.025\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.05\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.1\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.25\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"0.5\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"1\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"2.5\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"5\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"10\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"30\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"60\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_bucket{le=\"+Inf\"} 0\n"
	    "device_descheduler_eviction_latency_seconds_sum 0\n"
	    "device_descheduler_eviction_latency_seconds_count 0\n"
	    "# HELP device_descheduler_eviction_loops_total Number of pods not evicted because their owner's "
	    "previous pod was evicted from the same node or device within remediation.loopWindow.\n"
	    "# TYPE device_descheduler_eviction_loops_total counter\n"
	    "device_descheduler_eviction_loops_total 0\n"
	    "# HELP device_descheduler_leader 1 when this replica holds the leader lease, else 0.\n"
	    "# TYPE device_descheduler_leader gauge\n"
	    "device_descheduler_leader 0\n"
	    "# HELP device_descheduler_pods_bound_to_unhealthy_devices Number of pods currently bound to at "
	    "least one unhealthy device.\n"
	    "# TYPE device_descheduler_pods_bound_to_unhealthy_devices gauge\n"
	    "device_descheduler_pods_bound_to_unhealthy_devices 0\n"
	    "# HELP device_descheduler_quarantine_cap_reached 1 while a fence was refused by the quarantine "
	    "cap (remediation.maxQuarantinedNodes/Percent), else 0.\n"
	    "# TYPE device_descheduler_quarantine_cap_reached gauge\n"
	    "device_descheduler_quarantine_cap_reached 0\n"
	    "# HELP device_descheduler_quarantined_devices Number of DRA devices this controller fenced by a "
	    "DeviceTaintRule.\n"
	    "# TYPE device_descheduler_quarantined_devices gauge\n"
	    "device_descheduler_quarantined_devices 0\n"
	    "# HELP device_descheduler_quarantined_nodes Number of nodes this controller fenced (taint or "
	    "cordon).\n"
	    "# TYPE device_descheduler_quarantined_nodes gauge\n"
	    "device_descheduler_quarantined_nodes 0\n");
	free(text);

	assert_int_equal(metrics_counter_add(m, "evictions_total", 1, "success", "DeviceUnhealthy", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "evictions_total", 1, "blocked", "DeviceUnhealthy", NULL), 0);
	assert_int_equal(metrics_gauge_set(m, "build_info", 1, "0.1.0", NULL), 0);
	assert_int_equal(metrics_gauge_set(m, "unhealthy_devices", 2, "nvidia.com/gpu", NULL), 0);
	assert_int_equal(metrics_gauge_add(m, "unhealthy_devices", -1, "nvidia.com/gpu", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "policy_reloads_total", 1, "failure", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "watch_restarts_total", 1, "pods", NULL), 0);
	assert_int_equal(metrics_counter_add(m, "relists_total", 1, "nodes", NULL), 0);
	assert_int_equal(metrics_gauge_set(m, "leader", 1, NULL), 0);
	assert_int_equal(metrics_histogram_observe(m, "eviction_latency_seconds", 0.007, NULL), 0);
	metrics_api_request_observer("list", "pods", 200, 12, m);
	metrics_api_request_observer("list", "pods", 200, 12, m);
	metrics_api_request_observer("create", "pods/eviction", 429, 3, m);
	metrics_api_request_observer("watch", "nodes", 0, 3, m);
	assert_int_equal(metrics_get(m, "api_requests_total", &v, "list", "pods", "200", NULL), 0);
	assert_true(v == 2);
	assert_int_equal(metrics_get(m, "eviction_latency_seconds", &v, NULL), 0);
	assert_true(v == 1);
	assert_int_equal(metrics_get(m, "unhealthy_devices", &v, "nvidia.com/gpu", NULL), 0);
	assert_true(v == 1);

	text = render(m);
	assert_non_null(strstr(
	    text, "# HELP device_descheduler_api_requests_total Number of requests to the API "
		  "server, by verb, resource and HTTP status code.\n"
		  "# TYPE device_descheduler_api_requests_total counter\n"
		  "device_descheduler_api_requests_total{verb=\"create\",resource=\"pods/eviction\","
		  "code=\"429\"} 1\n"
		  "device_descheduler_api_requests_total{verb=\"list\",resource=\"pods\",code=\"200\"} 2\n"
		  "device_descheduler_api_requests_total{verb=\"watch\",resource=\"nodes\","
		  "code=\"<error>\"} 1\n"
		  "# HELP device_descheduler_build_info"));
	assert_non_null(strstr(text, "device_descheduler_build_info{version=\"0.1.0\"} 1\n"));
	assert_non_null(strstr(
	    text, "# TYPE device_descheduler_evictions_total counter\n"
		  "device_descheduler_evictions_total{result=\"blocked\",signal=\"DeviceUnhealthy\"} 1\n"
		  "device_descheduler_evictions_total{result=\"success\",signal=\"DeviceUnhealthy\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_eviction_latency_seconds_bucket{le=\"0.005\"} 0\n"
				     "device_descheduler_eviction_latency_seconds_bucket{le=\"0.01\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_eviction_latency_seconds_sum 0.007\n"));
	assert_non_null(strstr(text, "device_descheduler_leader 1\n"));
	assert_non_null(strstr(text, "device_descheduler_policy_reloads_total{result=\"failure\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_relists_total{resource=\"nodes\"} 1\n"));
	assert_non_null(
	    strstr(text, "device_descheduler_unhealthy_devices{resource=\"nvidia.com/gpu\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_watch_restarts_total{resource=\"pods\"} 1\n"));
	/* Family order is by name. */
	assert_true(strstr(text, "api_requests_total") < strstr(text, "build_info"));
	assert_true(strstr(text, "relists_total") <
		    strstr(text, "# HELP device_descheduler_unhealthy_devices"));
	free(text);
	metrics_free(m);
}

/* The request latency histogram: by verb and resource, in seconds, watches left out. */
static void test_api_request_duration(void **state)
{
	struct metrics *m = metrics_new();
	double v = -1;
	char *text;

	(void)state;
	metrics_api_request_observer("list", "pods", 200, 12, m);
	metrics_api_request_observer("list", "pods", 500, 300, m);
	metrics_api_request_observer("create", "pods/eviction", 0, 3, m);
	metrics_api_request_observer("watch", "nodes", 200, 300000, m);
	assert_int_equal(metrics_get(m, "api_request_duration_seconds", &v, "list", "pods", NULL), 0);
	assert_true(v == 2);
	assert_int_equal(metrics_get(m, "api_request_duration_seconds", &v, "watch", "nodes", NULL), -ENOENT);
	text = render(m);
	assert_non_null(strstr(text, "# TYPE device_descheduler_api_request_duration_seconds histogram\n"
				     "device_descheduler_api_request_duration_seconds_bucket{verb=\"create\","
				     "resource=\"pods/eviction\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_api_request_duration_seconds_bucket{verb=\"list\","
				     "resource=\"pods\",le=\"0.01\"} 0\n"
				     "device_descheduler_api_request_duration_seconds_bucket{verb=\"list\","
				     "resource=\"pods\",le=\"0.025\"} 1\n"));
	assert_non_null(strstr(text, "device_descheduler_api_request_duration_seconds_sum{verb=\"list\","
				     "resource=\"pods\"} 0.312\n"));
	assert_null(strstr(text, "duration_seconds_count{verb=\"watch\""));
	free(text);
	metrics_free(m);
}

/* A family registered unprefixed keeps its bare name in HELP, TYPE and samples. */
static void test_unprefixed(void **state)
{
	struct metrics *m = metrics_new_empty();
	char *text;

	(void)state;
	assert_int_equal(metrics_register_unprefixed(m, METRICS_GAUGE, "process_open_fds", "Open fds.", NULL,
						     NULL, 0),
			 0);
	assert_int_equal(metrics_register_unprefixed(m, METRICS_GAUGE, "process_open_fds", "x", NULL, NULL, 0),
			 -EEXIST);
	assert_int_equal(metrics_register_unprefixed(m, METRICS_GAUGE, "bad name", "x", NULL, NULL, 0), -EINVAL);
	assert_int_equal(metrics_register(m, METRICS_GAUGE, "leader", "Leader.", NULL, NULL, 0), 0);
	assert_int_equal(metrics_gauge_set(m, "process_open_fds", 7, NULL), 0);
	text = render(m);
	assert_string_equal(text, "# HELP device_descheduler_leader Leader.\n"
				  "# TYPE device_descheduler_leader gauge\n"
				  "device_descheduler_leader 0\n"
				  "# HELP process_open_fds Open fds.\n"
				  "# TYPE process_open_fds gauge\n"
				  "process_open_fds 7\n");
	free(text);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_value),
	    cmocka_unit_test(test_custom_families),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_standard_families),
	    cmocka_unit_test(test_api_request_duration),
	    cmocka_unit_test(test_unprefixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
