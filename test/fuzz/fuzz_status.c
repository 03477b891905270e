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

#include "kc_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);         \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

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
		CHECK(r == -EBADMSG);
		CHECK(is_zero(&s));
		kc_status_done(&s);
		return 0;
	}
	CHECK(s.status && s.reason && s.message);
	(void)strlen(s.status);
	(void)strlen(s.reason);
	(void)strlen(s.message);
	CHECK(s.n_causes <= 64);
	CHECK(s.n_causes == 0 || s.causes != NULL);
	for (size_t i = 0; i < s.n_causes; i++) {
		CHECK(s.causes[i].reason && s.causes[i].message && s.causes[i].field);
		(void)strlen(s.causes[i].reason);
		(void)strlen(s.causes[i].message);
		(void)strlen(s.causes[i].field);
	}
	CHECK(kc_status_has_cause(&s, "DisruptionBudget") == 0 || s.n_causes > 0);
	kc_status_done(&s);
	CHECK(is_zero(&s));
	kc_status_done(NULL);
	return 0;
}
