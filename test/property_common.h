/*
 * Scaffolding shared by the seeded property tests (test_property.c,
 * test_property_fence.c): the current case's random stream and a check that,
 * when it fails, names the case and the PROPERTY_SEED that replays it.  Each
 * test defines fail() before using PROPERTY_CHECK.  Header-only: each test
 * is its own program.
 */
#ifndef DD_PROPERTY_COMMON_H
#define DD_PROPERTY_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "kc_backoff.h"

static uint64_t rng, case_seed;
static unsigned case_no;

/* A number in [0, n) from the case's stream; 0 when n is 0. */
static inline unsigned rnd(unsigned n)
{
	return n ? (unsigned)(kc_backoff_rand(&rng) % n) : 0;
}

#define PROPERTY_CHECK(what, cond, ...)                                                                      \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, what " failed (case %u, PROPERTY_SEED=%llu): %s: ", case_no,          \
				(unsigned long long)case_seed, #cond);                                       \
			fprintf(stderr, __VA_ARGS__);                                                        \
			fprintf(stderr, "\n");                                                               \
			fail();                                                                              \
		}                                                                                            \
	} while (0)

#endif
