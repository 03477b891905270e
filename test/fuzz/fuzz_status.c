/*
 * libFuzzer target for kc_status_decode (API Status bodies).  Checks that a
 * failed decode leaves a zeroed status, that a successful one has every
 * string present and terminated and at most 64 causes, and that
 * kc_status_done frees everything and zeroes the struct.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "kc_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_zero(const struct kc_status *s)
{
	static const struct kc_status zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_status s;
	int r;

	memset(&s, 0xa5, sizeof(s));
	r = kc_status_decode((const char *)data, size, &s);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(is_zero(&s));
		kc_status_done(&s);
		return 0;
	}
	FUZZ_CHECK(s.status && s.reason && s.message);
	(void)strlen(s.status);
	(void)strlen(s.reason);
	(void)strlen(s.message);
	FUZZ_CHECK(s.n_causes <= 64);
	FUZZ_CHECK(s.n_causes == 0 || s.causes != NULL);
	for (size_t i = 0; i < s.n_causes; i++) {
		FUZZ_CHECK(s.causes[i].reason && s.causes[i].message && s.causes[i].field);
		(void)strlen(s.causes[i].reason);
		(void)strlen(s.causes[i].message);
		(void)strlen(s.causes[i].field);
	}
	FUZZ_CHECK(kc_status_has_cause(&s, "DisruptionBudget") == 0 || s.n_causes > 0);
	kc_status_done(&s);
	FUZZ_CHECK(is_zero(&s));
	kc_status_done(NULL);
	return 0;
}
