/*
 * Limits: how fast and how much the controller may evict.  At most N
 * evictions in any interval of length `window`, per node, per namespace and in
 * total (a sliding log of the most recent eviction times for each: N is
 * small), a cap on evictions in flight, and the circuit breaker that stops
 * everything while too many device nodes look unhealthy at once (a
 * cluster-wide false signal must not empty the cluster).  Dry-run reports are
 * counted in a ledger of their own, so that a dry run never uses up the real
 * limits.  Pure: no uv.h, no curl.h; time is a monotonic millisecond argument,
 * so tests can assert exact wake-up times.
 */
#ifndef EVICT_LIMITS_H
#define EVICT_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct limits;

/* A limiter with empty logs and the breaker closed; free with limits_free(). */
struct limits *limits_new(const struct policy *p, uint64_t now_ms);
/* Accepts NULL; returns NULL. */
struct limits *limits_free(struct limits *l);

/*
 * Applies a reloaded policy.  The evictions already logged keep counting
 * under the new maximums and window (a reload cannot reset a budget).
 */
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
 * dry_run: checks the dry-run ledger, and never the in-flight cap.  On a hold,
 * *ret_wake_ms (may be NULL) is when the limit will have room (UINT64_MAX:
 * only a finished eviction or a breaker change frees it).
 */
enum limits_hold limits_check(struct limits *l, const char *ns, const char *node, bool dry_run,
			      uint64_t now_ms, uint64_t *ret_wake_ms);
/*
 * The earliest time limits_check() could pass for some pod, looking only at
 * the limits every pod shares (breaker, in flight, maxTotal): now_ms when
 * they have room, UINT64_MAX when only a result or a breaker change helps.
 */
uint64_t limits_wake(const struct limits *l, bool dry_run, uint64_t now_ms);
/* Logs one eviction (after LIMITS_OK) and, unless dry_run, takes an in-flight slot. */
void limits_take(struct limits *l, const char *ns, const char *node, bool dry_run, uint64_t now_ms);
/* An eviction counted in flight finished. */
void limits_done(struct limits *l);
uint32_t limits_in_flight(const struct limits *l);

enum limits_breaker_change {
	LIMITS_BREAKER_SAME = 0,
	LIMITS_BREAKER_OPENED,
	LIMITS_BREAKER_CLOSED,
};

/*
 * Re-evaluates the breaker at now_ms.  The condition holds while unhealthy >
 * maxUnhealthyNodes (when > 0), or while device_nodes >= minNodes and
 * unhealthy * 100 > maxUnhealthyNodePercent * device_nodes (when the
 * percentage > 0).  The breaker opens as soon as the condition holds, and
 * closes only once it has not held for closeAfter (so each open spell lasts
 * at least closeAfter: at most one Open/Closed pair per closeAfter).  A
 * disabled breaker closes at once.
 */
enum limits_breaker_change limits_breaker_update(struct limits *l, uint32_t device_nodes,
						 uint32_t unhealthy_nodes, uint64_t now_ms);
bool limits_breaker_open(const struct limits *l);
/* When an open breaker will close if nothing changes; UINT64_MAX when none is pending. */
uint64_t limits_breaker_wake(const struct limits *l);
/*
 * Why the breaker is open, e.g. "3 of 4 device nodes (75%) are unhealthy
 * (maximum 50%)", or the counts when it is not; static buffer in l.
 */
const char *limits_breaker_reason(struct limits *l);

#endif
