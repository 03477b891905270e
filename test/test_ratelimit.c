/*
 * Unit tests of the token bucket with an injected clock: the burst passes at
 * once, later callers queue at 1/qps spacing, the bucket refills to the burst
 * and no further, and a cancelled reservation gives its token back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kc_ratelimit.h"

static void test_burst_then_spacing(void **state)
{
	struct kc_ratelimit rl;

	(void)state;
	kc_ratelimit_init(&rl, 10, 3, 1000);
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 0);
	/* Queued callers are spaced 100 ms apart, in order. */
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 100);
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 200);
	assert_int_equal(kc_ratelimit_reserve(&rl, 1000), 300);
	/* 150 ms later the first two queued tokens have matured. */
	assert_int_equal(kc_ratelimit_reserve(&rl, 1150), 250);
}

static void test_refill_capped_at_burst(void **state)
{
	struct kc_ratelimit rl;

	(void)state;
	kc_ratelimit_init(&rl, 5, 2, 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 200);
	/* A long idle time refills to the burst only. */
	assert_int_equal(kc_ratelimit_reserve(&rl, 100000), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 100000), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 100000), 200);
}

static void test_fractional_qps_and_rounding_up(void **state)
{
	struct kc_ratelimit rl;

	(void)state;
	kc_ratelimit_init(&rl, 0.5, 1, 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 2000);
	kc_ratelimit_init(&rl, 3, 1, 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	/* 333.33 ms rounds up, so a caller woken then finds its token. */
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 334);
}

static void test_disabled_and_unreserve(void **state)
{
	struct kc_ratelimit rl;

	(void)state;
	kc_ratelimit_init(&rl, 0, 1, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	kc_ratelimit_init(&rl, 10, 1, 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 100);
	kc_ratelimit_unreserve(&rl, 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 0), 100);
	/* burst 0 behaves as 1; a clock going backwards refills nothing. */
	kc_ratelimit_init(&rl, 10, 0, 500);
	assert_int_equal(kc_ratelimit_reserve(&rl, 500), 0);
	assert_int_equal(kc_ratelimit_reserve(&rl, 400), 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_spacing),
	    cmocka_unit_test(test_refill_capped_at_burst),
	    cmocka_unit_test(test_fractional_qps_and_rounding_up),
	    cmocka_unit_test(test_disabled_and_unreserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
