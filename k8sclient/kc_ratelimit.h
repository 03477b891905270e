/*
 * A client-side token bucket (QPS with a burst), the same model as
 * client-go's flowcontrol limiter, so the API server sees the load it was
 * sized for.  A caller reserves a token and learns how long to wait before
 * acting; reservations may drive the bucket negative, which queues callers in
 * FIFO order at 1/qps spacing.  Pure: time is a millisecond argument.
 */
#ifndef KC_RATELIMIT_H
#define KC_RATELIMIT_H

#include <stdint.h>

struct kc_ratelimit {
	double qps;
	double burst;
	double tokens;	  /* may be negative: tokens promised to waiting callers */
	uint64_t last_ms; /* when tokens was last brought up to date */
};

/* qps <= 0 disables the limiter; burst 0 is treated as 1.  The bucket starts full. */
void kc_ratelimit_init(struct kc_ratelimit *rl, double qps, unsigned burst, uint64_t now_ms);
/* Takes one token; returns how many ms to wait before acting (0 = now). */
uint64_t kc_ratelimit_reserve(struct kc_ratelimit *rl, uint64_t now_ms);
/* Gives back a token reserved by a caller that gave up before acting. */
void kc_ratelimit_unreserve(struct kc_ratelimit *rl, uint64_t now_ms);

#endif
