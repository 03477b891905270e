/*
 * Unit tests of duration: Go's time.ParseDuration cases (units, fractions,
 * signs, rounding of sub-millisecond remainders, range) and the formatting
 * used in messages, including that formatting and parsing round-trip.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"
#include "kc_util.h"

struct duration_case {
	const char *s;
	int r;
	uint64_t ms;
};

static const struct duration_case durations[] = {
    {"0", 0, 0},
    {"+0", 0, 0},
    {"-0", 0, 0},
    {"0s", 0, 0},
    {"1ns", 0, 1},
    {"999us", 0, 1},
    {"1000us", 0, 1},
    {"1001\xc2\xb5s", 0, 2},
    {"1\xce\xbcs", 0, 1},
    {"1ms", 0, 1},
    {"1.5ms", 0, 2},
    {"500ms", 0, 500},
    {"1s", 0, 1000},
    {"1.5s", 0, 1500},
    {".5s", 0, 500},
    {"5.s", 0, 5000},
    {"30s", 0, 30000},
    {"5m", 0, 300000},
    {"1h", 0, 3600000},
    {"1h30m", 0, 5400000},
    {"1h2m3.5s", 0, 3723500},
    {"2h45m10s500ms", 0, 9910500},
    {"+5s", 0, 5000},
    {"0.1h", 0, 360000},
    {"2562047h", 0, 9223369200000ULL},
    {"", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"30", -EINVAL, 0},
    {"00", -EINVAL, 0},
    {".s", -EINVAL, 0},
    {"1.", -EINVAL, 0},
    {"5 s", -EINVAL, 0},
    {" 5s", -EINVAL, 0},
    {"5sec", -EINVAL, 0},
    {"1d", -EINVAL, 0},
    {"5S", -EINVAL, 0},
    {"1h-5m", -EINVAL, 0},
    {"-", -EINVAL, 0},
    {"-5s", -ERANGE, 0},
    {"2562048h", -ERANGE, 0},
    {"99999999999999999999s", -ERANGE, 0},
};

static void test_durations(void **state)
{
	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(durations); i++) {
		uint64_t ms = 12345;
		int r = duration_parse(durations[i].s, &ms);

		if (r != durations[i].r || (r == 0 && ms != durations[i].ms))
			fail_msg("duration \"%s\": r=%d ms=%llu, want r=%d ms=%llu", durations[i].s, r,
				 (unsigned long long)ms, durations[i].r, (unsigned long long)durations[i].ms);
		if (r != 0)
			assert_int_equal(ms, 12345);
	}
	assert_int_equal(duration_parse(NULL, NULL), -EINVAL);
}

static void test_format(void **state)
{
	static const struct {
		uint64_t ms;
		const char *s;
	} cases[] = {
	    {0, "0ms"},	    {1, "1ms"},		{999, "999ms"},	     {1000, "1s"},
	    {1500, "1s500ms"}, {60000, "1m"},	{90000, "1m30s"},    {3600000, "1h"},
	    {5400000, "1h30m"}, {3723500, "1h2m3s500ms"}, {UINT64_MAX, "5124095576030h25m51s615ms"},
	};
	char buf[32];
	uint64_t back;

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		assert_string_equal(duration_format(cases[i].ms, buf, sizeof(buf)), cases[i].s);
		if (cases[i].ms <= 9223372036854ULL) {
			assert_int_equal(duration_parse(buf, &back), 0);
			assert_int_equal(back, cases[i].ms);
		}
	}
	/* A short buffer truncates, it never overflows. */
	assert_string_equal(duration_format(5400000, buf, 3), "1h");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
