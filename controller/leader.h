/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics and default timings, so that two replicas of the controller
 * never act at the same time and a standby takes over when the leader dies.
 *
 *   - Acquire when the Lease is absent (POST), held by us, released (empty
 *     holderIdentity), or expired: its record has not changed for
 *     leaseDurationSeconds as measured on OUR monotonic clock from the moment
 *     we last saw it change (never by comparing renewTime with our wall clock,
 *     so clock skew between nodes does not matter).
 *   - Every write is a PUT carrying metadata.resourceVersion: a 409 means
 *     another replica wrote first, and we re-read.
 *   - The leader renews every retryPeriod.  If no renewal has succeeded for
 *     renewDeadline (measured from the START of the last successful renewal),
 *     it stops leading at once: on_stopped_leading runs before any other
 *     replica can consider the lease expired, since renewDeadline < leaseDuration.
 *   - leader_stop() with release PUTs holderIdentity "" and
 *     leaseDurationSeconds 1 (client-go's ReleaseOnCancel), so a standby takes
 *     over at its next retry instead of after leaseDuration.
 */
#ifndef LEADER_H
#define LEADER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kc_http.h"
#include "kc_util.h"

#define LEADER_DEFAULT_NAME "device-descheduler"
#define LEADER_DEFAULT_NAMESPACE "kube-system"
#define LEADER_DEFAULT_LEASE_DURATION_MS 15000
#define LEADER_DEFAULT_RENEW_DEADLINE_MS 10000
#define LEADER_DEFAULT_RETRY_PERIOD_MS 2000

struct leader;

struct leader_options {
	const char *name;	    /* Lease name; NULL = "device-descheduler" */
	const char *ns;		    /* Lease namespace; NULL = "kube-system" */
	const char *identity;	    /* NULL = hostname + "_" + a random UUID */
	uint64_t lease_duration_ms; /* 0 = 15000 */
	uint64_t renew_deadline_ms; /* 0 = 10000 */
	uint64_t retry_period_ms;   /* 0 = 2000 */
	/* Run from the loop.  on_stopped_leading runs when the lease is lost (renew
	 * deadline passed, or another holder seen) and from leader_stop(); after a
	 * loss the elector goes on as a candidate and may lead again.  Any callback
	 * may call leader_stop(). */
	void (*on_started_leading)(void *userdata);
	void (*on_stopped_leading)(void *userdata);
	/* Optional: the holder we observe changed (identity "" when released). */
	void (*on_new_leader)(const char *identity, void *userdata);
	void *userdata;
};

/*
 * Creates an elector using client c (borrowed: stop the elector before closing
 * the client).  Checks lease_duration > renew_deadline > 1.2 * retry_period as
 * client-go does.  Returns 0 or -EINVAL with err set.
 */
int leader_new(uv_loop_t *loop, struct kc_client *c, const struct leader_options *o, struct leader **ret,
	       struct kc_error *err);
/* Starts campaigning (the first attempt runs at once).  Returns 0 or a negative errno. */
int leader_start(struct leader *l);
/* Whether we lead with a fresh lease: false once renewDeadline has passed since
 * the start of the last successful renewal, even before the deadline timer ran. */
bool leader_is_leader(const struct leader *l);
/* Our identity, and the holder we last observed ("" when none); owned by l. */
const char *leader_identity(const struct leader *l);
const char *leader_observed_holder(const struct leader *l);

/*
 * Stops campaigning and frees l.  When leading, on_stopped_leading runs first
 * (synchronously, so the caller's work stops before the lease can move); then,
 * if release, the lease is released with one PUT.  done (may be NULL) runs
 * from the loop once every request finished and every handle is closed.
 * Without release a standby takes over after leaseDuration.  Accepts NULL.
 */
void leader_stop(struct leader *l, bool release, void (*done)(void *userdata), void *userdata);

#endif
