/* Unit tests of the command-line flags (controller/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "options.h"

static int parse(struct options *o, struct kc_error *err, int argc, const char **argv)
{
	return options_parse(argc, (char **)argv, o, err);
}

static void test_defaults(void **state)
{
	const char *argv[] = {"dd", "--policy-config-file", "p.yaml"};
	struct options o;
	struct kc_error err = {{0}};

	(void)state;
	assert_int_equal(parse(&o, &err, 3, argv), 0);
	assert_string_equal(o.policy_file, "p.yaml");
	assert_null(o.kubeconfig);
	assert_false(o.dry_run);
	assert_int_equal(o.verbosity, 0);
	assert_int_equal(o.log_format, KC_LOG_TEXT);
	assert_false(o.leader_elect);
	assert_string_equal(o.lease_name, "device-descheduler");
	assert_string_equal(o.lease_namespace, "kube-system");
	assert_int_equal(o.lease_duration_ms, 15000);
	assert_int_equal(o.renew_deadline_ms, 10000);
	assert_int_equal(o.retry_period_ms, 2000);
	assert_string_equal(o.metrics_addr, ":8080");
	assert_string_equal(o.probe_addr, ":8081");
	assert_true(o.qps == 50.0);
	assert_int_equal(o.burst, 100);
	assert_int_equal(o.stall_timeout_ms, 120000);
	assert_true(o.protobuf);
}

static void test_forms(void **state)
{
	const char *argv[] = {"dd", "--policy-config-file=p.yaml", "--dry-run", "-v", "4", "--log-format=json",
			      "--leader-elect=true", "--leader-elect-lease-duration", "2s",
			      "--leader-elect-renew-deadline=1500ms", "--leader-elect-retry-period=300ms",
			      "--kubeconfig", "/k", "--kube-api-qps=7.5", "--v=5",
			      "--kube-api-content-type", "application/json"};
	struct options o;
	struct kc_error err = {{0}};

	(void)state;
	assert_int_equal(parse(&o, &err, (int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
	assert_true(o.dry_run);
	assert_int_equal(o.verbosity, 5);
	assert_int_equal(o.log_format, KC_LOG_JSON);
	assert_true(o.leader_elect);
	assert_int_equal(o.lease_duration_ms, 2000);
	assert_int_equal(o.renew_deadline_ms, 1500);
	assert_int_equal(o.retry_period_ms, 300);
	assert_string_equal(o.kubeconfig, "/k");
	assert_true(o.qps == 7.5);
	assert_false(o.protobuf);
}

static void expect_error(const char *msg, int argc, const char **argv)
{
	struct options o;
	struct kc_error err = {{0}};

	assert_int_equal(parse(&o, &err, argc, argv), -EINVAL);
	assert_string_equal(err.msg, msg);
}

static void test_errors(void **state)
{
	const char *a1[] = {"dd"};
	const char *a2[] = {"dd", "--policy-config-file=p", "--bogus"};
	const char *a3[] = {"dd", "--policy-config-file=p", "--dry-run=maybe"};
	const char *a4[] = {"dd", "--policy-config-file=p", "-v", "x"};
	const char *a5[] = {"dd", "--policy-config-file=p", "--log-format=xml"};
	const char *a6[] = {"dd", "--policy-config-file"};
	const char *a7[] = {"dd", "--policy-config-file=p", "--leader-elect", "--leader-elect-renew-deadline=20s"};
	const char *a8[] = {"dd", "--policy-config-file=p", "--leader-elect-lease-duration=soon"};
	const char *a9[] = {"dd", "stray"};
	const char *a10[] = {"dd", "--policy-config-file=p", "--kube-api-content-type=application/yaml"};

	(void)state;
	expect_error("--policy-config-file is required (see --help)", 1, a1);
	expect_error("unknown flag: --bogus (see --help)", 3, a2);
	expect_error("--dry-run: expected true or false, got \"maybe\"", 3, a3);
	expect_error("--v: expected a non-negative integer, got \"x\"", 4, a4);
	expect_error("--log-format: expected text or json, got \"xml\"", 3, a5);
	expect_error("flag needs an argument: --policy-config-file", 2, a6);
	expect_error("leader election timings: need lease-duration > renew-deadline > retry-period", 4, a7);
	expect_error("--leader-elect-lease-duration: expected a duration such as 15s or 1m30s, got \"soon\"", 3, a8);
	expect_error("unexpected argument \"stray\" (flags start with --)", 2, a9);
	expect_error("--kube-api-content-type: expected application/vnd.kubernetes.protobuf or application/json, "
		     "got \"application/yaml\"", 3, a10);
}

static void test_help_without_policy(void **state)
{
	const char *argv[] = {"dd", "--help"};
	struct options o;
	struct kc_error err = {{0}};

	(void)state;
	assert_int_equal(parse(&o, &err, 2, argv), 0);
	assert_true(o.help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_help_without_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
