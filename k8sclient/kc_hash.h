/*
 * A small, fast, non-cryptographic string hash shared by the intern table and
 * the store.  Keys come from the API server, so a per-process seed would be
 * better against crafted collisions; linear probing with a load factor of at
 * most 0.7 and keys we do not let grow unbounded keep the worst case tolerable.
 * Private to k8sclient.
 */
#ifndef KC_HASH_H
#define KC_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t kc_hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Hashes s[0..len) and folds it into seed, 8 bytes at a time. */
static inline uint64_t kc_hash_bytes(uint64_t seed, const void *s, size_t len)
{
	const unsigned char *p = s;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return kc_hash_mix(h);
}

#endif
