/*
 * Limits: how fast and how much the controller may evict.  Token buckets per
 * node, per namespace and in total (capacity = the policy's maximum per
 * window, refilled continuously at that maximum per window), a cap on
 * evictions in flight, and the circuit breaker that stops everything while
 * too many device nodes look unhealthy at once (a cluster-wide false signal
 * must not empty the cluster).  Pure: no uv.h, no curl.h; time is a
 * monotonic millisecond argument.  Token arithmetic is exact (integers in
 * token-milliseconds), so tests can assert exact wake-up times.
 */
#ifndef LIMITS_H
#define LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct limits;

/* A new limiter with every bucket full and the breaker closed; free with limits_free(). */
struct limits *limits_new(const struct policy *p, uint64_t now_ms);
/* Accepts NULL; returns NULL. */
struct limits *limits_free(struct limits *l);

/* Applies a reloaded policy: buckets keep their share of tokens, clamped to the new capacity. */
void limits_set_policy(struct limits *l, const struct policy *p, uint64_t now_ms);

enum limits_hold {
	LIMITS_OK = 0,
	LIMITS_HOLD_IN_FLIGHT, /* maxInFlight reached: wait for a result */
	LIMITS_HOLD_TOTAL,     /* maxTotal per window */
	LIMITS_HOLD_NODE,      /* maxPerNode per window */
	LIMITS_HOLD_NAMESPACE, /* maxPerNamespace per window */
	LIMITS_HOLD_BREAKER,   /* the circuit breaker is open */
};

/* "maxInFlight", "maxTotal", ...; static storage. */
const char *limits_hold_name(enum limits_hold h);

/*
 * Whether one eviction of a pod in namespace ns on node node may start now.
 * in_flight: whether it would count as in flight (not for dry run).  On a
 * hold, *ret_wake_ms (may be NULL) is when the limit will have room
 * (UINT64_MAX: only a finished eviction or a breaker change frees it).
 */
enum limits_hold limits_check(struct limits *l, const char *ns, const char *node, bool in_flight,
			      uint64_t now_ms, uint64_t *ret_wake_ms);
/*
 * The earliest time limits_check() could pass for some pod, looking only at
 * the limits every pod shares (breaker, in flight, maxTotal): now_ms when
 * they have room, UINT64_MAX when only a result or a breaker change helps.
 */
uint64_t limits_wake(const struct limits *l, bool in_flight, uint64_t now_ms);
/* Takes the tokens (after LIMITS_OK) and, if in_flight, an in-flight slot. */
void limits_take(struct limits *l, const char *ns, const char *node, bool in_flight, uint64_t now_ms);
/* An eviction counted in flight finished. */
void limits_done(struct limits *l);
uint32_t limits_in_flight(const struct limits *l);

enum limits_breaker_change {
	LIMITS_BREAKER_SAME = 0,
	LIMITS_BREAKER_OPENED,
	LIMITS_BREAKER_CLOSED,
};

/*
 * Re-evaluates the breaker: it is open while unhealthy > maxUnhealthyNodes
 * (when > 0), or while device_nodes >= minNodes and unhealthy * 100 >
 * maxUnhealthyNodePercent * device_nodes (when the percentage > 0).
 */
enum limits_breaker_change limits_breaker_update(struct limits *l, uint32_t device_nodes,
						 uint32_t unhealthy_nodes);
bool limits_breaker_open(const struct limits *l);
/* Why the breaker is open, e.g. "3 of 4 device nodes (75%) are unhealthy (maximum 50%)"; static buffer in l.
 */
const char *limits_breaker_reason(const struct limits *l);

#endif
