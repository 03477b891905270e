/*
 * The action runner: carries out what the core decides.  Each action becomes
 * a core/v1 Event on the pod, then (unless it is a dry run) the policy/v1
 * Eviction or the deleteAfter DELETE, whose answer goes back to the core and
 * to the metrics; each notice becomes an Event (on the pod, or on our own pod
 * for cluster-wide notices).  A fence (CORE_FENCE) is written without an
 * Event: a node taint by GET and a merge patch carrying the node's
 * resourceVersion (a 409 reads it again), a DeviceTaintRule by create or
 * delete in the newest resource.k8s.io version the server serves; our rules
 * are listed once per leadership so the core can lift them after a restart.
 *
 * Requests leave through a sender function, so a unit test can see exactly
 * which requests are built and in what order, and answer them, without a
 * server (actions_client_send is the real sender over a kc_client).
 *
 * Adding an Event-then-write action kind: one case in the switch of
 * build_write() in actions.c.
 */
#ifndef ACTIONS_H
#define ACTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "events.h"
#include "kc_http.h"
#include "metrics.h"

/*
 * Sends one request (o and everything it points to is only borrowed for the
 * call); done runs exactly once, later, unless a negative errno is returned.
 * The contract of kc_client_request().
 */
typedef events_send_fn actions_send_fn;

/* The most notice Events (NotEvicted, the breaker's) waiting for an answer at
 * once; the rest wait in the core's bounded queue, so a burst of notices never
 * queues ahead of lease renewals in the client. */
#define ACTIONS_MAX_NOTICES_IN_FLIGHT 8

struct actions_options {
	struct core *core;	 /* borrowed; see actions_set_core() */
	struct metrics *metrics; /* borrowed */
	const char *identity;	 /* reportingInstance of our Events; copied */
	/* Our own pod, from the downward API, for cluster-wide notices (NULL = unknown:
	 * such notices are then only logged); copied. */
	const char *pod_ns, *pod_name, *pod_uid;
	actions_send_fn send;
	void *sender;
	/* The monotonic clock (the loop's), in ms. */
	uint64_t (*now_ms)(void *userdata);
	/* Whether this replica may write now (it holds a fresh lease); checked before
	 * choosing actions and again immediately before every write.  NULL = always. */
	bool (*may_write)(void *userdata);
	/* An action finished: the core may have more to do (schedule a pump).  Runs
	 * from a response callback, where no request may be started synchronously
	 * by a kc_client user, so defer. */
	void (*on_done)(void *userdata);
	void *userdata;
};

struct actions;

/* Never fails (allocation failure aborts).  Free with actions_free(). */
struct actions *actions_new(const struct actions_options *o);
/* Accepts NULL; returns NULL.  Call only when nothing is in flight. */
struct actions *actions_free(struct actions *a);

/* Replaces the core (NULL once it is freed: answers still in flight are then only counted). */
void actions_set_core(struct actions *a, struct core *c);

/*
 * Carries out every action due at now (only when run_actions: not while
 * shutting down), then turns queued notices into Events (at most
 * ACTIONS_MAX_NOTICES_IN_FLIGHT unanswered).  Nothing at all while
 * may_write says no.  Returns the core's next wakeup (UINT64_MAX when none,
 * without a core, or while we may not write).
 *
 * Before the eviction or delete that follows an action's Event, the runner
 * asks may_write and core_action_check() again: a lease lost, a pod gone or
 * healthy again, or a policy reloaded while the Event was in flight cancels
 * the write (CORE_RESULT_CANCELLED).
 */
uint64_t actions_pump(struct actions *a, bool run_actions, uint64_t now);

/*
 * The DeviceTaintRule version API discovery chose ("v1", "v1beta2" or
 * "v1alpha3"), or NULL when the server serves none: rules are then written and
 * listed in that version without trying the others first, and with NULL a DRA
 * device is fenced through its node at once.  Until this is called (or for a
 * version not listed here) versions are tried newest first.
 */
void actions_set_rule_version(struct actions *a, const char *version);

/* Actions with a request outstanding (the shutdown waits for them). */
unsigned actions_in_flight(const struct actions *a);

/* The real sender: kc_client_request() on sender, a struct kc_client. */
int actions_client_send(void *sender, const struct kc_request_options *o, kc_response_cb done, void *userdata);

#endif
