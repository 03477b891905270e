/*
 * Unit tests of kc_backoff: exact caps, jitter bounds and spread, determinism
 * for a seed, and Retry-After taking precedence when larger.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kc_backoff.h"

static void test_cap_doubles_until_max(void **state)
{
	(void)state;
	assert_int_equal(kc_backoff_cap(200, 10000, 0), 200);
	assert_int_equal(kc_backoff_cap(200, 10000, 1), 200);
	assert_int_equal(kc_backoff_cap(200, 10000, 2), 400);
	assert_int_equal(kc_backoff_cap(200, 10000, 3), 800);
	assert_int_equal(kc_backoff_cap(200, 10000, 6), 6400);
	assert_int_equal(kc_backoff_cap(200, 10000, 7), 10000);
	assert_int_equal(kc_backoff_cap(200, 10000, 1000000), 10000);
	assert_int_equal(kc_backoff_cap(20000, 10000, 1), 10000);
	/* No overflow even without a useful maximum. */
	assert_true(kc_backoff_cap(1, UINT64_MAX, 200) == UINT64_MAX ||
		    kc_backoff_cap(1, UINT64_MAX, 200) >= (1ull << 63));
	assert_int_equal(kc_backoff_cap(0, 10000, 5), 0);
}

static void test_delay_within_bounds_and_spread(void **state)
{
	uint64_t rng = 42, sum = 0;
	unsigned low = 0, high = 0;
	const unsigned n = 20000;

	(void)state;
	for (unsigned attempt = 1; attempt <= 10; attempt++) {
		uint64_t cap = kc_backoff_cap(100, 5000, attempt);

		for (unsigned i = 0; i < 1000; i++)
			assert_true(kc_backoff_delay(100, 5000, attempt, &rng) <= cap);
	}
	/* Full jitter: uniform over [0, cap], so both ends occur and the mean is cap/2. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t d = kc_backoff_delay(1000, 1000, 1, &rng);

		sum += d;
		low += d < 100;
		high += d > 900;
	}
	assert_true(sum / n > 450 && sum / n < 550);
	assert_true(low > n / 20 && high > n / 20);
	assert_int_equal(kc_backoff_delay(0, 0, 3, &rng), 0);
}

static void test_deterministic_for_a_seed(void **state)
{
	uint64_t a = 7, b = 7, c = 8;
	unsigned same = 0;

	(void)state;
	for (unsigned i = 0; i < 100; i++) {
		uint64_t x = kc_backoff_delay(200, 10000, 5, &a);

		assert_int_equal(x, kc_backoff_delay(200, 10000, 5, &b));
		same += x == kc_backoff_delay(200, 10000, 5, &c);
	}
	assert_true(same < 10);
}

static void test_retry_after_wins_when_larger(void **state)
{
	(void)state;
	assert_int_equal(kc_backoff_with_retry_after(150, 0), 150);
	assert_int_equal(kc_backoff_with_retry_after(150, 1000), 1000);
	assert_int_equal(kc_backoff_with_retry_after(3000, 1000), 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cap_doubles_until_max),
	    cmocka_unit_test(test_delay_within_bounds_and_spread),
	    cmocka_unit_test(test_deterministic_for_a_seed),
	    cmocka_unit_test(test_retry_after_wins_when_larger),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
