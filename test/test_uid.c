/*
 * Unit tests of 16-byte UIDs (kc_uid.h): a lower-case RFC 9562 UUID packs and
 * formats back to the same text; anything else (upper case, another variant,
 * a test server's "uid-7", the empty UID) is kept as its text, byte for byte,
 * and never mistaken for a packed UUID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kc_uid.h"

static void test_uuid_round_trip(void **state)
{
	static const char *const uuids[] = {
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f", "00000000-0000-4000-8000-000000000000",
		"ffffffff-ffff-ffff-bfff-ffffffffffff", "0b9f5a2e-7c1d-4e2f-a83b-9c4d5e6f7a8b",
	};
	char buf[KC_UID_BUF];

	(void)state;
	for (size_t i = 0; i < sizeof(uuids) / sizeof(uuids[0]); i++) {
		struct kc_uid u;

		assert_true(kc_uid_pack(uuids[i], strlen(uuids[i]), &u));
		assert_null(kc_uid_text(&u));
		assert_string_equal(kc_uid_str(&u, buf), uuids[i]);
		assert_true(kc_uid_eq_str(&u, uuids[i]));
		kc_uid_set(&u, uuids[i]);
		assert_null(kc_uid_text(&u));
		assert_string_equal(kc_uid_str(&u, buf), uuids[i]);
	}
}

static void test_text_kept_exactly(void **state)
{
	static const char *const texts[] = {
		"uid-7",
		"5F0C7A3E-1B2D-4C8E-9F10-2A3B4C5D6E7F",  /* upper case: would not come back the same */
		"5f0c7a3e-1b2d-4c8e-9F10-2a3b4c5d6e7f",
		"5f0c7a3e-1b2d-4c8e-7f10-2a3b4c5d6e7f",  /* NCS variant */
		"5f0c7a3e-1b2d-4c8e-cf10-2a3b4c5d6e7f",  /* Microsoft variant */
		"5f0c7a3e1b2d4c8e9f102a3b4c5d6e7f",      /* no hyphens */
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f0",
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7",
		"5f0c7a3e_1b2d-4c8e-9f10-2a3b4c5d6e7f",
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7g",
		"",
	};
	char buf[KC_UID_BUF];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct kc_uid u, before;

		memset(&before, 0xAB, sizeof(before));
		u = before;
		assert_false(kc_uid_pack(texts[i], strlen(texts[i]), &u));
		assert_memory_equal(&u, &before, sizeof(u));  /* untouched */
		kc_uid_set(&u, texts[i]);
		assert_ptr_equal(kc_uid_text(&u), texts[i]);  /* borrowed, not copied */
		assert_ptr_equal(kc_uid_str(&u, buf), texts[i]);
		assert_true(kc_uid_eq_str(&u, texts[i]));
	}
}

static void test_empty_and_compare(void **state)
{
	struct kc_uid zero, u;
	char buf[KC_UID_BUF];

	(void)state;
	memset(&zero, 0, sizeof(zero));
	assert_string_equal(kc_uid_text(&zero), "");
	assert_string_equal(kc_uid_str(&zero, buf), "");
	assert_true(kc_uid_eq_str(&zero, ""));
	kc_uid_set(&u, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f");
	assert_false(kc_uid_eq_str(&u, "5F0C7A3E-1B2D-4C8E-9F10-2A3B4C5D6E7F"));
	assert_false(kc_uid_eq_str(&u, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e70"));
	assert_false(kc_uid_eq_str(&u, ""));
	assert_true(kc_uid_is_empty(&zero));
	assert_false(kc_uid_is_empty(&u));
	kc_uid_set(&u, "");
	assert_true(kc_uid_is_empty(&u));
	kc_uid_set(&u, "uid-7");
	assert_false(kc_uid_is_empty(&u));
}

/* Two UIDs are equal when their texts are: packed ones by their bytes, unpacked ones by text, not pointer. */
static void test_eq(void **state)
{
	static const char uuid[] = "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f";
	char copy1[] = "uid-7", copy2[] = "uid-7";
	struct kc_uid a, b, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	kc_uid_set(&a, uuid);
	kc_uid_set(&b, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f");
	assert_true(kc_uid_eq(&a, &b));
	kc_uid_set(&b, "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e70");
	assert_false(kc_uid_eq(&a, &b));
	kc_uid_set(&b, "5F0C7A3E-1B2D-4C8E-9F10-2A3B4C5D6E7F");
	assert_false(kc_uid_eq(&a, &b));
	assert_false(kc_uid_eq(&b, &a));
	/* The same text borrowed from two places (two objects' blocks). */
	kc_uid_set(&a, copy1);
	kc_uid_set(&b, copy2);
	assert_true(kc_uid_eq(&a, &b));
	kc_uid_set(&b, "uid-8");
	assert_false(kc_uid_eq(&a, &b));
	/* A lower-case UUID kept as text is the same UID as the packed one. */
	kc_uid_set_text(&a, uuid);
	kc_uid_set(&b, uuid);
	assert_true(kc_uid_eq(&a, &b));
	assert_true(kc_uid_eq(&b, &a));
	assert_true(kc_uid_eq(&zero, &zero));
	assert_false(kc_uid_eq(&zero, &b));
	kc_uid_set(&a, "");
	assert_true(kc_uid_eq(&zero, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_round_trip),
		cmocka_unit_test(test_text_kept_exactly),
		cmocka_unit_test(test_empty_and_compare),
		cmocka_unit_test(test_eq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
