/*
 * Unit tests of 17-byte device IDs (kc_devid.h): "GPU-<uuid>", "MIG-<uuid>" and
 * a bare UUID of any variant pack and format back to the same text; anything
 * else (upper case, a time-sliced replica "GPU-<uuid>::3", near misses of the
 * packed forms, PCI addresses, the empty ID) is kept as its text, byte for
 * byte; equality is that of the texts, whatever the kinds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kc_devid.h"

static void test_packed_round_trip(void **state)
{
	static const struct {
		const char *s;
		enum kc_devid_kind kind;
	} ids[] = {
		{ "GPU-00000000-0000-4a5b-8c9d-000000000000", KC_DEVID_GPU },
		/* Not the RFC 9562 variant (NVIDIA's UUIDs need not be): packed all the same. */
		{ "GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0", KC_DEVID_GPU },
		{ "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff", KC_DEVID_GPU },
		{ "MIG-0b9f5a2e-7c1d-4e2f-a83b-9c4d5e6f7a8b", KC_DEVID_MIG },
		{ "MIG-5b2d6b8b-2ad5-b5f7-73ff-ffa5b24fdad0", KC_DEVID_MIG },
		{ "5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f", KC_DEVID_UUID },
		{ "5f0c7a3e-1b2d-4c8e-cf10-2a3b4c5d6e7f", KC_DEVID_UUID },
		{ "00000000-0000-0000-0000-000000000000", KC_DEVID_UUID },
	};
	char buf[KC_DEVID_BUF];

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct kc_devid d;

		assert_true(kc_devid_pack(ids[i].s, strlen(ids[i].s), &d));
		assert_int_equal(kc_devid_kind(&d), ids[i].kind);
		assert_null(kc_devid_text(&d));
		assert_string_equal(kc_devid_str(&d, buf), ids[i].s);
		assert_true(kc_devid_eq_str(&d, ids[i].s));
		kc_devid_set(&d, ids[i].s);
		assert_int_equal(kc_devid_kind(&d), ids[i].kind);
		assert_ptr_equal(kc_devid_str(&d, buf), buf);
		assert_string_equal(buf, ids[i].s);
	}
	/* Arrays of them stay 17 bytes an element. */
	assert_int_equal(sizeof(struct kc_devid[4]), 4 * 17);
}

static void test_text_kept_exactly(void **state)
{
	static const char *const texts[] = {
		"GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0",  /* upper case: would not come back the same */
		"GPU-5b2d6b8b-2ad5-b5f7-d3fF-ffa5b24fdad0",
		"5F0C7A3E-1B2D-4C8E-9F10-2A3B4C5D6E7F",
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0::3",  /* a time-sliced replica */
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad",      /* 35 hex-and-dash characters */
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad00",    /* 37 */
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7",
		"5f0c7a3e-1b2d-4c8e-9f10-2a3b4c5d6e7f0",
		"GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdag0",     /* a 'g' */
		"GPU-5b2d6b8b02ad5-b5f7-d3ff-ffa5b24fdad0",     /* a dash missing */
		"GPU-5b2d6b8b-2ad5-b5f7-d3ffeffa5b24fdad0",
		"GPU5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0-",
		"gpu-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0",     /* another prefix, same length */
		"NIC-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0",
		"MIG-GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0/1/0",  /* old MIG form */
		"5f0c7a3e1b2d4c8e9f102a3b4c5d6e7f",             /* no dashes */
		"0000:3b:00.0",
		"nvidia0",
		"",
	};
	char buf[KC_DEVID_BUF];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct kc_devid d, before;

		memset(&before, 0xAB, sizeof(before));
		d = before;
		assert_false(kc_devid_pack(texts[i], strlen(texts[i]), &d));
		assert_memory_equal(&d, &before, sizeof(d));  /* untouched */
		kc_devid_set(&d, texts[i]);
		assert_int_equal(kc_devid_kind(&d), KC_DEVID_TEXT);
		assert_ptr_equal(kc_devid_text(&d), texts[i]);  /* borrowed, not copied */
		assert_ptr_equal(kc_devid_str(&d, buf), texts[i]);
		assert_true(kc_devid_eq_str(&d, texts[i]));
	}
	/* A NUL inside the length is not a packed ID either. */
	assert_false(kc_devid_pack("GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad\0", 40, &(struct kc_devid){ { 0 } }));
}

static void test_empty_and_compare(void **state)
{
	static const char gpu[] = "GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0";
	struct kc_devid zero, packed, text, other, bare, mig;
	char copy[sizeof(gpu)];
	char buf[KC_DEVID_BUF];

	(void)state;
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(kc_devid_kind(&zero), KC_DEVID_TEXT);
	assert_string_equal(kc_devid_text(&zero), "");
	assert_string_equal(kc_devid_str(&zero, buf), "");
	assert_true(kc_devid_eq_str(&zero, ""));

	kc_devid_set(&packed, gpu);
	assert_false(kc_devid_eq_str(&packed, "GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0"));
	assert_false(kc_devid_eq_str(&packed, "GPU-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad1"));
	assert_false(kc_devid_eq_str(&packed, "5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0"));
	assert_false(kc_devid_eq_str(&packed, ""));
	assert_false(kc_devid_eq(&packed, &zero));

	/* The same text kept as text (a caller may): equal to the packed ID, both ways. */
	memcpy(copy, gpu, sizeof(gpu));
	kc_devid_set_text(&text, copy);
	assert_int_equal(kc_devid_kind(&text), KC_DEVID_TEXT);
	assert_true(kc_devid_eq(&packed, &text));
	assert_true(kc_devid_eq(&text, &packed));

	/* Two texts compare by their bytes, not their pointers. */
	kc_devid_set_text(&other, gpu);
	assert_true(kc_devid_eq(&text, &other));
	kc_devid_set(&other, "GPU-5B2D6B8B-2AD5-B5F7-D3FF-FFA5B24FDAD0");
	assert_false(kc_devid_eq(&text, &other));
	assert_false(kc_devid_eq(&packed, &other));

	/* The same 16 bytes under another prefix, or none, are another ID. */
	kc_devid_set(&bare, gpu + 4);
	kc_devid_set(&mig, "MIG-5b2d6b8b-2ad5-b5f7-d3ff-ffa5b24fdad0");
	assert_memory_equal(bare.b + 1, packed.b + 1, 16);
	assert_memory_equal(mig.b + 1, packed.b + 1, 16);
	assert_false(kc_devid_eq(&packed, &bare));
	assert_false(kc_devid_eq(&packed, &mig));
	assert_false(kc_devid_eq(&bare, &mig));
	assert_true(kc_devid_eq(&packed, &packed));
	assert_true(kc_devid_eq(&zero, &zero));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packed_round_trip),
		cmocka_unit_test(test_text_kept_exactly),
		cmocka_unit_test(test_empty_and_compare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
