/*
 * FUZZ_CHECK, the one assertion of the fuzz targets: a failed invariant is
 * printed with its place and aborts, so that libFuzzer saves the input.  It
 * is not assert(): it stays on in every build, NDEBUG or not.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                                     \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);         \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

#endif
