/*
 * The Event recorder, after client-go's EventRecorder: an Event with the same
 * involved object, type, reason and message as one we already created is not
 * created again; its count and lastTimestamp are PATCHed (a PDB-blocked pod
 * retried every two minutes keeps one Event, not one more per retry).  A
 * per-object token bucket (client-go's spam filter: a burst of 25, then one
 * every 5 minutes) drops the rest.  Both caches are bounded.
 *
 * Requests leave through a sender function (the contract of
 * kc_client_request()), so tests see exactly what is sent.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <errno.h>
#include <stdint.h>

#include "kc_http.h"
#include "requests.h"

/* Sends one request (o is only borrowed); done runs exactly once, later, unless a negative errno is returned. */
typedef int (*events_send_fn)(void *sender, const struct kc_request_options *o, kc_response_cb done,
			      void *userdata);

/* client-go's defaults (EventSourceObjectSpamFilter, maxLruCacheEntries). */
#define EVENTS_SPAM_BURST 25
#define EVENTS_SPAM_REFILL_MS (5 * 60 * 1000)
#define EVENTS_MAX_CACHED 4096

/* The answer given to done for an Event the spam filter dropped (nothing was sent). */
#define EVENTS_DROPPED (-EBUSY)

struct events;

/* now_ms is the monotonic clock (the spam filter's); never fails. */
struct events *events_new(events_send_fn send, void *sender, uint64_t (*now_ms)(void *), void *clock_userdata);
/* Accepts NULL; returns NULL.  Only when no Event request is in flight. */
struct events *events_free(struct events *e);

/*
 * Records ev (borrowed for the call): creates it, or counts one more of an
 * Event created before.  done (may be NULL) runs once with the answer of the
 * last request made for it; when the spam filter drops it, done runs at once
 * with error EVENTS_DROPPED.
 */
void events_record(struct events *e, const struct requests_event *ev, kc_response_cb done, void *userdata);

#endif
