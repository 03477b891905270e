/*
 * Unit tests of the string intern table (kc_intern.h): identity, byte-exact
 * keys, growth past many rehashes, large strings and the accounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_intern.h"
#include "kc_util.h"

static void test_identity(void **state)
{
	struct kc_intern *in = kc_intern_new();
	const char *a, *b, *c;

	(void)state;
	assert_int_equal(kc_intern_count(in), 0);
	a = kc_intern_str(in, "nvidia.com/gpu");
	b = kc_intern(in, "nvidia.com/gpu-extra", 14);  /* not NUL-terminated at 14 */
	c = kc_intern_str(in, "nvidia.com/gpus");
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_string_equal(a, "nvidia.com/gpu");
	assert_string_equal(c, "nvidia.com/gpus");
	assert_int_equal(kc_intern_count(in), 2);
	/* The empty string is a constant, not stored. */
	assert_string_equal(kc_intern(in, "x", 0), "");
	assert_int_equal(kc_intern_count(in), 2);
	/* Embedded bytes count: "a\0b" differs from "a". */
	assert_ptr_not_equal(kc_intern(in, "a\0b", 3), kc_intern(in, "a", 1));
	assert_int_equal(kc_intern_count(in), 4);
	/* Non-ASCII. */
	assert_ptr_equal(kc_intern_str(in, "ключ/日本"), kc_intern_str(in, "ключ/日本"));
	assert_null(kc_intern_free(in));
	assert_null(kc_intern_free(NULL));
}

static void test_growth_and_bytes(void **state)
{
	struct kc_intern *in = kc_intern_new();
	const char **ptrs = kc_xcalloc(100000, sizeof(*ptrs));
	size_t before = kc_intern_bytes(in), after;
	char big[100000];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "node-%d", i);
		ptrs[i] = kc_intern_str(in, buf);
	}
	assert_int_equal(kc_intern_count(in), 100000);
	for (int i = 0; i < 100000; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "node-%d", i);
		assert_ptr_equal(kc_intern_str(in, buf), ptrs[i]);
		assert_string_equal(ptrs[i], buf);
	}
	after = kc_intern_bytes(in);
	/* ~11 bytes of string and a 16-byte slot at load <= 0.7 each, in slabs. */
	assert_true(after > before + 100000 * 11);
	assert_true(after < before + 100000 * 64);
	/* A string bigger than a slab gets its own and stays findable. */
	memset(big, 'g', sizeof(big));
	assert_ptr_equal(kc_intern(in, big, sizeof(big)), kc_intern(in, big, sizeof(big)));
	assert_int_equal(strlen(kc_intern(in, big, sizeof(big))), sizeof(big));
	assert_true(kc_intern_bytes(in) >= after + sizeof(big));
	/* Small strings still go to the shared slab afterwards. */
	assert_string_equal(kc_intern_str(in, "after-big"), "after-big");
	assert_int_equal(kc_intern_count(in), 100002);
	free(ptrs);
	kc_intern_free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_growth_and_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
