/*
 * Unit tests of the process metrics (controller/procstat.c): the /proc
 * parsers on sample contents (a command name with spaces and parentheses,
 * "unlimited", malformed text), the registry glue under bare names, and one
 * read of this process's own /proc.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "procstat.h"

/* proc(5) field order; utime 1500, stime 500, starttime 123456, vsize 104857600, rss 2560. */
static const char stat_text[] =
    "4242 (device (de)sched) S 1 4242 4242 0 -1 4194560 1200 0 0 0 1500 500 0 0 20 0 3 0 123456 "
    "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

static const char sys_stat_text[] = "cpu  1 2 3 4 5 6 7 0 0 0\n"
				    "intr 12345 0 0\n"
				    "ctxt 99\n"
				    "btime 1764740000\n"
				    "processes 100\n";

static const char limits_text[] = "Limit                     Soft Limit           Hard Limit           Units     \n"
				  "Max cpu time              unlimited            unlimited            seconds   \n"
				  "Max open files            1024                 1048576              files     \n"
				  "Max locked memory         8388608              8388608              bytes     \n";

static void test_parse_stat(void **state)
{
	struct procstat ps = {.open_fds = 9};

	(void)state;
	assert_int_equal(procstat_parse_stat(stat_text, 100, 4096, 1764740000, &ps), 0);
	assert_true(ps.cpu_seconds == 20.0);
	assert_true(ps.resident_bytes == 2560.0 * 4096);
	assert_true(ps.virtual_bytes == 104857600.0);
	assert_true(ps.start_time_seconds == 1764740000.0 + 1234.56);
	assert_true(ps.open_fds == 9); /* left alone */

	assert_int_equal(procstat_parse_stat("4242 (x) S 1 2 3", 100, 4096, 0, &ps), -EINVAL);
	assert_int_equal(procstat_parse_stat("no parenthesis at all", 100, 4096, 0, &ps), -EINVAL);
	assert_int_equal(procstat_parse_stat("1 (x) 7 1 2", 100, 4096, 0, &ps), -EINVAL);
	assert_int_equal(procstat_parse_stat(stat_text, 0, 4096, 0, &ps), -EINVAL);
	assert_int_equal(procstat_parse_stat(NULL, 100, 4096, 0, &ps), -EINVAL);
}

static void test_parse_boot_time(void **state)
{
	uint64_t b = 0;

	(void)state;
	assert_int_equal(procstat_parse_boot_time(sys_stat_text, &b), 0);
	assert_true(b == 1764740000);
	assert_int_equal(procstat_parse_boot_time("cpu 1 2\nbtime x\n", &b), -EINVAL);
	assert_int_equal(procstat_parse_boot_time("cpu 1 2\n", &b), -EINVAL);
	assert_int_equal(procstat_parse_boot_time("", &b), -EINVAL);
}

static void test_parse_max_fds(void **state)
{
	double v = 0;

	(void)state;
	assert_int_equal(procstat_parse_max_fds(limits_text, &v), 0);
	assert_true(v == 1024);
	assert_int_equal(procstat_parse_max_fds("Max open files            unlimited            unlimited  files\n",
						&v),
			 0);
	assert_true(isinf(v) && v > 0);
	assert_int_equal(procstat_parse_max_fds("Max cpu time   unlimited  unlimited  seconds\n", &v), -EINVAL);
	assert_int_equal(procstat_parse_max_fds("Max open files   lots  lots  files\n", &v), -EINVAL);
}

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

static void test_update(void **state)
{
	struct metrics *m = metrics_new();
	struct procstat ps = {.cpu_seconds = 1.5,
			      .resident_bytes = 10485760,
			      .virtual_bytes = 104857600,
			      .start_time_seconds = 1764741234.56,
			      .open_fds = 12,
			      .max_fds = INFINITY};
	double v = 0;
	char *text;

	(void)state;
	assert_int_equal(procstat_register(m), 0);
	assert_int_equal(procstat_register(m), -EEXIST);
	procstat_update(m, &ps);
	ps.cpu_seconds = 2.25;
	procstat_update(m, &ps);
	/* A counter never goes back, even if a reading did. */
	ps.cpu_seconds = 2;
	procstat_update(m, &ps);
	assert_int_equal(metrics_get(m, "process_cpu_seconds_total", &v, NULL), 0);
	assert_true(v == 2.25);
	text = render(m);
	assert_non_null(strstr(text, "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
				     "seconds.\n# TYPE process_cpu_seconds_total counter\n"
				     "process_cpu_seconds_total 2.25\n"));
	assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"
				     "process_resident_memory_bytes 10485760\n"));
	assert_non_null(strstr(text, "process_virtual_memory_bytes 104857600\n"));
	assert_non_null(strstr(text, "process_start_time_seconds 1764741234.56\n"));
	assert_non_null(strstr(text, "process_open_fds 12\n"));
	assert_non_null(strstr(text, "process_max_fds +Inf\n"));
	assert_null(strstr(text, "device_descheduler_process"));
	free(text);
	metrics_free(m);
}

/* This process, read for real: plausible values, and a missing root is an error. */
static void test_read_self(void **state)
{
	struct procstat ps = {0}, untouched = {.open_fds = -1};
	double now = (double)time(NULL);

	(void)state;
	assert_int_equal(procstat_read("/proc", &ps), 0);
	assert_true(ps.resident_bytes > 0);
	assert_true(ps.virtual_bytes >= ps.resident_bytes);
	assert_true(ps.open_fds >= 3);
	assert_true(ps.max_fds >= ps.open_fds);
	assert_true(ps.cpu_seconds >= 0);
	assert_true(ps.start_time_seconds > 1.5e9 && ps.start_time_seconds <= now + 1);
	assert_int_equal(procstat_read("/nonexistent-proc", &untouched), -ENOENT);
	assert_true(untouched.open_fds == -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_stat),
	    cmocka_unit_test(test_parse_boot_time),
	    cmocka_unit_test(test_parse_max_fds),
	    cmocka_unit_test(test_update),
	    cmocka_unit_test(test_read_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
