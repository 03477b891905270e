/*
 * Unit tests of the string intern table (kc_intern.h): identity, byte-exact
 * keys (up to a NUL), growth past many slabs and rehashes with every string
 * where it was, strings at the edges of a slab, large strings and the
 * accounting of 8-byte slots.
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
	/* Interned strings are C strings: "a\0b" is "a" (the decoder never passes a NUL). */
	assert_ptr_equal(kc_intern(in, "a\0b", 3), kc_intern(in, "a", 1));
	assert_string_equal(kc_intern(in, "a\0b", 3), "a");
	assert_string_equal(kc_intern(in, "\0b", 2), "");
	assert_int_equal(kc_intern_count(in), 3);
	/* A prefix of an interned string, and a longer one, are other strings. */
	assert_ptr_not_equal(kc_intern(in, "nvidia.com/gp", 13), a);
	assert_string_equal(kc_intern_str(in, "nvidia.com/gpuss"), "nvidia.com/gpuss");
	assert_int_equal(kc_intern_count(in), 5);
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
	/* ~11 bytes of string and an 8-byte slot at load <= 0.7 each, in slabs: 262,144
	 * slots (2 MiB) and 17 slabs here; 16-byte slots made it 53 bytes a string. */
	assert_true(after > before + 100000 * 11);
	assert_true(after < before + 100000 * 36);
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

/* Strings of every length up to a few KiB, a big one now and then: hundreds of slabs
 * and a dozen rehashes, and every string stays where it was handed out. */
static void test_many_slabs_and_grows(void **state)
{
	enum { N = 300000 };
	struct kc_intern *in = kc_intern_new();
	const char **ptrs = kc_xcalloc(N, sizeof(*ptrs));
	char *buf = kc_xmalloc(40000);

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			/* Mostly short; every 1,000th 1-4 KiB; every 50,000th bigger than a
			 * quarter slab (a slab of its own). */
			size_t len = i % 50000 == 7 ? 20000 + (size_t)i % 17
				     : i % 1000 == 3 ? 1000 + (size_t)i % 3000 : 8 + (size_t)i % 40;
			int n = snprintf(buf, 40000, "s%d-", i);
			const char *p;

			memset(buf + n, 'a' + i % 26, len - (size_t)n);
			p = kc_intern(in, buf, len);
			if (round == 0) {
				ptrs[i] = p;
			} else {
				assert_ptr_equal(p, ptrs[i]);
				assert_int_equal(strlen(p), len);
				assert_memory_equal(p, buf, len);
			}
		}
		assert_int_equal(kc_intern_count(in), N);
	}
	/* Past 300,000 strings at load <= 0.7: 524,288 slots, 9 rehashes from 1,024; and
	 * more than 6 MB of strings in 64 KiB slabs. */
	assert_true(kc_intern_bytes(in) > 524288 * 8 + 6000000);
	free(buf);
	free(ptrs);
	kc_intern_free(in);
}

/* A shared slab filled to its last byte: strings at the highest offsets, then a new slab. */
static void test_slab_edges(void **state)
{
	struct kc_intern *in = kc_intern_new();
	char *buf = kc_xmalloc(16384);
	const char *q[4], *last, *next;

	(void)state;
	/* Four strings of 16,383 bytes (with their NULs, a quarter of a slab each: the
	 * largest that share one) fill the first slab exactly. */
	for (int i = 0; i < 4; i++) {
		memset(buf, 'A' + i, 16383);
		q[i] = kc_intern(in, buf, 16383);
	}
	for (int i = 1; i < 4; i++)
		assert_ptr_equal(q[i], q[i - 1] + 16384);
	/* The next goes to a second slab. */
	last = kc_intern_str(in, "x");
	assert_ptr_not_equal(last, q[3] + 16384);
	/* Fill that one to 65,534 bytes, then a 1-byte string takes offsets 65,534-65,535. */
	for (int i = 0; i < 3; i++) {
		memset(buf, 'a' + i, 16383);
		assert_ptr_equal(kc_intern(in, buf, 16383), last + 2 + 16384 * i);
	}
	memset(buf, 'z', 16379);
	assert_ptr_equal(kc_intern(in, buf, 16379), last + 2 + 16384 * 3);
	next = kc_intern_str(in, "y");
	assert_ptr_equal(next, last + 65534);
	assert_string_equal(next, "y");
	assert_ptr_equal(kc_intern_str(in, "y"), next);
	assert_ptr_not_equal(kc_intern_str(in, "w"), next + 2);  /* a third slab */
	for (int i = 0; i < 4; i++) {
		memset(buf, 'A' + i, 16383);
		assert_ptr_equal(kc_intern(in, buf, 16383), q[i]);
	}
	assert_ptr_equal(kc_intern_str(in, "x"), last);
	free(buf);
	kc_intern_free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_growth_and_bytes),
		cmocka_unit_test(test_many_slabs_and_grows),
		cmocka_unit_test(test_slab_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
