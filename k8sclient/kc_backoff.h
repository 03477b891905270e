/*
 * Retry delays: exponential backoff with "full jitter" (a uniform draw in
 * [0, min(max, initial * 2^(attempt-1))]), which spreads the retries of many
 * clients hit by the same outage instead of having them return in lockstep.
 * Pure: the random source is a seeded state passed in, so tests are exact.
 */
#ifndef KC_BACKOFF_H
#define KC_BACKOFF_H

#include <stdint.h>

/* The upper bound of the delay before retry number `attempt` (1 = first retry). */
uint64_t kc_backoff_cap(uint64_t initial_ms, uint64_t max_ms, unsigned attempt);
/* A delay drawn uniformly from [0, kc_backoff_cap(...)]; advances *rng. */
uint64_t kc_backoff_delay(uint64_t initial_ms, uint64_t max_ms, unsigned attempt, uint64_t *rng);
/* The delay to wait given a server's Retry-After (0 = none): the larger of the two. */
uint64_t kc_backoff_with_retry_after(uint64_t delay_ms, uint64_t retry_after_ms);
/* splitmix64: a small, good-enough generator for jitter (not for secrets). */
uint64_t kc_backoff_rand(uint64_t *state);

#endif
