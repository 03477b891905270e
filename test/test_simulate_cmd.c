/*
 * Unit tests of the simulate command's pure helpers (controller/simulate_cmd.c):
 * the RFC 7386 merge patch (its appendix's examples) and timeline times.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simulate_cmd.h"

static void check_patch(const char *target, const char *patch, const char *want)
{
	json_t *t = json_loads(target, JSON_DECODE_ANY, NULL), *p = json_loads(patch, JSON_DECODE_ANY, NULL);
	json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);

	assert_non_null(t);
	assert_non_null(p);
	assert_non_null(w);
	simulate_merge_patch(t, p);
	if (!json_equal(t, w)) {
		char *got = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);

		print_error("merge %s by %s: got %s, want %s\n", target, patch, got, want);
		free(got);
		fail();
	}
	json_decref(t);
	json_decref(p);
	json_decref(w);
}

/* RFC 7386, Appendix A (the cases whose target is an object). */
static void test_merge_patch(void **state)
{
	(void)state;
	check_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	check_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	check_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	check_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	check_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	check_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	check_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
	check_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	check_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
	check_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
	/* What a pod status patch looks like. */
	check_patch("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\"}}",
		    "{\"status\":{\"phase\":\"Failed\"}}",
		    "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Failed\",\"podIP\":\"10.0.0.1\"}}");
}

static void test_parse_at(void **state)
{
	uint64_t ms = 1;
	json_t *j;

	(void)state;
	j = json_string("1m30s");
	assert_int_equal(simulate_parse_at(j, &ms), 0);
	assert_int_equal(ms, 90000);
	json_decref(j);
	j = json_real(2.5);
	assert_int_equal(simulate_parse_at(j, &ms), 0);
	assert_int_equal(ms, 2500);
	json_decref(j);
	j = json_integer(0);
	assert_int_equal(simulate_parse_at(j, &ms), 0);
	assert_int_equal(ms, 0);
	json_decref(j);
	j = json_integer(-1);
	assert_int_equal(simulate_parse_at(j, &ms), -EINVAL);
	json_decref(j);
	j = json_string("soon");
	assert_int_equal(simulate_parse_at(j, &ms), -EINVAL);
	json_decref(j);
	assert_int_equal(simulate_parse_at(NULL, &ms), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_patch),
	    cmocka_unit_test(test_parse_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
