/*
 * Token bucket (kc_ratelimit.h).
 */
#include "kc_ratelimit.h"

#include <math.h>

void kc_ratelimit_init(struct kc_ratelimit *rl, double qps, unsigned burst, uint64_t now_ms)
{
	rl->qps = qps;
	rl->burst = burst ? (double)burst : 1.0;
	rl->tokens = rl->burst;
	rl->last_ms = now_ms;
}

/* Refills for the time elapsed since the last call; a clock that goes
 * backwards (it should not: callers pass monotonic time) refills nothing. */
static void refill(struct kc_ratelimit *rl, uint64_t now_ms)
{
	if (now_ms > rl->last_ms) {
		rl->tokens += (double)(now_ms - rl->last_ms) * rl->qps / 1000.0;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
		rl->last_ms = now_ms;
	}
}

uint64_t kc_ratelimit_reserve(struct kc_ratelimit *rl, uint64_t now_ms)
{
	if (rl->qps <= 0)
		return 0;
	refill(rl, now_ms);
	rl->tokens -= 1.0;
	if (rl->tokens >= 0)
		return 0;
	/* Rounded up so that a caller woken at the returned time finds its token. */
	return (uint64_t)ceil(-rl->tokens * 1000.0 / rl->qps);
}

void kc_ratelimit_unreserve(struct kc_ratelimit *rl, uint64_t now_ms)
{
	if (rl->qps <= 0)
		return;
	refill(rl, now_ms);
	rl->tokens += 1.0;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
}
