/*
 * The request bodies the controller sends (policy/v1 Eviction, core/v1
 * Event) and how it reads the answers to evictions.  Pure: builds strings and
 * classifies responses; the shell sends them.
 */
#ifndef REQUESTS_H
#define REQUESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "kc_objects.h"

/*
 * A policy/v1 Eviction for ns/name, with a UID precondition (so that a pod
 * recreated under the same name is never evicted by mistake) and
 * gracePeriodSeconds when grace_period_s >= 0.  The caller frees the result.
 */
char *requests_eviction_body(const char *ns, const char *name, const char *uid, int64_t grace_period_s);
/* The eviction path: /api/v1/namespaces/NS/pods/NAME/eviction; the caller frees it. */
char *requests_eviction_path(const char *ns, const char *name);
/* DeleteOptions with a UID precondition and optional grace period, for the deleteAfter fallback. */
char *requests_delete_body(const char *uid, int64_t grace_period_s);

struct requests_event {
	const char *ns;            /* the involved object's namespace (the Event lives there) */
	const char *kind;          /* "Pod" */
	const char *api_version;   /* "v1" */
	const char *name;
	const char *uid;
	const char *type;          /* "Warning" or "Normal" */
	const char *reason;        /* "UnhealthyDevice" */
	const char *action;        /* "Evict", "Delete", "None" */
	const char *message;
	const char *instance;      /* reportingInstance: the controller's identity */
	int64_t now_ms;            /* wall clock */
};

/* A core/v1 Event (with the events.k8s.io fields action/reportingController filled). */
char *requests_event_body(const struct requests_event *e);
char *requests_event_path(const char *ns);
/* A strategic merge patch that counts one more occurrence of an Event: count and lastTimestamp. */
char *requests_event_patch_body(int64_t count, int64_t now_ms);

enum requests_outcome {
	REQUESTS_EVICTED,   /* 200/201 */
	REQUESTS_BLOCKED,   /* 429 with a DisruptionBudget cause: a PodDisruptionBudget */
	REQUESTS_GONE,      /* 404: the pod we meant no longer exists */
	REQUESTS_CONFLICT,  /* 409: a failed UID precondition (the pod was replaced) or a conflicting
	                       PodDisruptionBudget update; only the cache can tell which (core) */
	REQUESTS_FAILED,    /* anything else (a 429 from throttling too): retry with backoff */
};

/* Classifies the answer to an eviction or delete request. */
enum requests_outcome requests_classify(long http_status, int transport_error, const struct kc_status *status);

#endif
