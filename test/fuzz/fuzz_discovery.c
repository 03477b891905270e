/*
 * libFuzzer target for kc_discovery's decoder (discovery documents).  Checks
 * that any input is decoded or refused with -EBADMSG or -EMSGSIZE and a
 * reason, that feeding it in two chunks (split where the first byte says)
 * gives the same answer and the same DRA choice as feeding it whole, and
 * that a refused document adds nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "kc_discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int decode(struct kc_discovery *d, const char *buf, size_t size, size_t at)
{
	struct kc_discovery_decoder *dec = kc_discovery_decoder_new(d);
	int r = kc_discovery_decoder_feed(dec, buf, at);

	if (r == 0)
		r = kc_discovery_decoder_feed(dec, buf + at, size - at);
	if (r == 0)
		r = kc_discovery_decoder_finish(dec);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
	FUZZ_CHECK(r == 0 || kc_discovery_decoder_error(dec)[0] != '\0');
	kc_discovery_decoder_free(dec);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_discovery *whole = kc_discovery_new(), *split = kc_discovery_new();
	struct kc_dra_versions a, b;
	const char *un[8];
	size_t at = size ? data[0] % (size + 1) : 0;
	int r1, r2;

	r1 = decode(whole, (const char *)data, size, size);
	r2 = decode(split, (const char *)data, size, at);
	FUZZ_CHECK(r1 == r2);
	kc_discovery_dra(whole, &a);
	kc_discovery_dra(split, &b);
	FUZZ_CHECK(kc_dra_versions_equal(&a, &b));
	FUZZ_CHECK(kc_discovery_unresolved(whole, KC_DRA_GROUP, un, 8) ==
		   kc_discovery_unresolved(split, KC_DRA_GROUP, un, 8));
	if (r1 != 0)
		FUZZ_CHECK(!a.claims && !a.slices && !a.taint_rules && !kc_discovery_has_group(whole, KC_DRA_GROUP));
	kc_discovery_free(whole);
	kc_discovery_free(split);
	return 0;
}
