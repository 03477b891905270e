/*
 * Unit tests of strmap: put, get, replace, delete and visit at a size that
 * makes it grow many times, and the value destructor (called by
 * strmap_remove and strmap_done, never by strmap_del or a replacing put).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_util.h"
#include "strmap.h"

static int count_cb(const char *key, void *value, void *userdata)
{
	(void)key;
	(void)value;
	(*(int *)userdata)++;
	return 0;
}

static int stop_cb(const char *key, void *value, void *userdata)
{
	(void)key;
	(void)value;
	(void)userdata;
	return 42;
}

static void test_map(void **state)
{
	struct strmap m;
	char key[32];
	int n = 0;

	(void)state;
	strmap_init(&m, NULL);
	for (intptr_t i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "k%ld", (long)i);
		assert_null(strmap_put(&m, key, (void *)(i + 1)));
	}
	assert_int_equal(m.count, 10000);
	assert_ptr_equal(strmap_get(&m, "k1234"), (void *)1235);
	assert_ptr_equal(strmap_put(&m, "k1234", (void *)7), (void *)1235);
	assert_int_equal(m.count, 10000);
	assert_ptr_equal(strmap_del(&m, "k1234"), (void *)7);
	assert_null(strmap_get(&m, "k1234"));
	assert_null(strmap_del(&m, "k1234"));
	assert_false(strmap_remove(&m, "k1234"));
	assert_true(strmap_remove(&m, "k1235"));
	assert_null(strmap_get(&m, "k1235"));
	strmap_foreach(&m, count_cb, &n);
	assert_int_equal(n, 9998);
	assert_int_equal(m.count, 9998);
	assert_int_equal(strmap_foreach(&m, stop_cb, NULL), 42);
	strmap_done(&m);
	strmap_done(&m); /* a second done is harmless */
}

static int freed;

static void count_free(void *value)
{
	freed++;
	free(value);
}

static void test_destructor(void **state)
{
	struct strmap m;
	char *old, *kept;

	(void)state;
	freed = 0;
	strmap_init(&m, count_free);
	assert_null(strmap_put(&m, "a", kc_xstrdup("1")));
	assert_null(strmap_put(&m, "b", kc_xstrdup("2")));
	assert_null(strmap_put(&m, "c", kc_xstrdup("3")));
	/* A replacing put hands the old value back, it does not free it. */
	old = strmap_put(&m, "a", kc_xstrdup("1'"));
	assert_string_equal(old, "1");
	free(old);
	assert_int_equal(freed, 0);
	/* strmap_del hands the value back too. */
	kept = strmap_del(&m, "b");
	assert_string_equal(kept, "2");
	free(kept);
	assert_int_equal(freed, 0);
	/* strmap_remove frees it. */
	assert_true(strmap_remove(&m, "c"));
	assert_int_equal(freed, 1);
	/* strmap_done frees the rest ("a"). */
	strmap_done(&m);
	assert_int_equal(freed, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map),
	    cmocka_unit_test(test_destructor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
