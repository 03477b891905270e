/*
 * Exponential backoff with full jitter (kc_backoff.h).
 */
#include "kc_backoff.h"

uint64_t kc_backoff_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t kc_backoff_cap(uint64_t initial_ms, uint64_t max_ms, unsigned attempt)
{
	uint64_t cap = initial_ms;

	if (attempt == 0)
		attempt = 1;
	/* Doubling stops at max_ms, so the shift can never overflow. */
	for (unsigned i = 1; i < attempt && cap < max_ms; i++)
		cap = cap > UINT64_MAX / 2 ? UINT64_MAX : cap * 2;
	return cap < max_ms ? cap : max_ms;
}

uint64_t kc_backoff_delay(uint64_t initial_ms, uint64_t max_ms, unsigned attempt, uint64_t *rng)
{
	uint64_t cap = kc_backoff_cap(initial_ms, max_ms, attempt);

	if (cap == UINT64_MAX)
		return kc_backoff_rand(rng);
	return kc_backoff_rand(rng) % (cap + 1);
}

uint64_t kc_backoff_with_retry_after(uint64_t delay_ms, uint64_t retry_after_ms)
{
	return retry_after_ms > delay_ms ? retry_after_ms : delay_ms;
}
