/*
 * Eviction and Event bodies and eviction answers (requests.h), with jansson:
 * the bodies are small and built rarely.
 */
#include "requests.h"

#include <jansson.h>
#include <string.h>

#include "kc_log.h"
#include "kc_status.h"
#include "kc_util.h"

static char *dump(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	json_decref(obj);
	if (!s)
		kc_log_fatal("out of memory encoding a request body");
	return s;
}

/* DeleteOptions with a UID precondition, and gracePeriodSeconds when >= 0. */
static json_t *delete_options(const char *uid, int64_t grace_period_s)
{
	json_t *opts = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
				 "preconditions", "uid", uid);

	if (grace_period_s >= 0)
		json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_period_s));
	return opts;
}

char *requests_eviction_body(const char *ns, const char *name, const char *uid, int64_t grace_period_s)
{
	return dump(json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "policy/v1", "kind", "Eviction",
			      "metadata", "name", name, "namespace", ns, "deleteOptions",
			      delete_options(uid, grace_period_s)));
}

char *requests_eviction_path(const char *ns, const char *name)
{
	return kc_xasprintf("/api/v1/namespaces/%s/pods/%s/eviction", ns, name);
}

char *requests_delete_body(const char *uid, int64_t grace_period_s)
{
	return dump(delete_options(uid, grace_period_s));
}

/* Keeps Event names unique within one millisecond. */
static unsigned long long event_seq;

/* A core/v1 Event timestamp: RFC 3339 with second precision; ts has room for 40. */
static void event_time(int64_t now_ms, char *ts)
{
	char micro[40];

	kc_format_time(now_ms, micro, sizeof(micro));
	memcpy(ts, micro, 19);
	strcpy(ts + 19, "Z");
}

char *requests_event_body(const struct requests_event *e)
{
	char ts[40];
	char *name;
	json_t *ev;

	event_time(e->now_ms, ts);
	/* Unique like client-go's recorder: <involved name>.<hex nanoseconds>. */
	name = kc_xasprintf("%s.%llx", e->name, (unsigned long long)e->now_ms * 1000000ull + ++event_seq % 1000000);
	ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s,"
		       " s:s, s:i, s:{s:s}, s:s, s:s}",
		       "apiVersion", "v1", "kind", "Event",
		       "metadata", "name", name, "namespace", e->ns,
		       "involvedObject", "apiVersion", e->api_version, "kind", e->kind, "namespace", e->ns,
		       "name", e->name, "uid", e->uid,
		       "type", e->type, "reason", e->reason, "message", e->message, "action", e->action,
		       "firstTimestamp", ts, "lastTimestamp", ts, "count", 1,
		       "source", "component", "device-descheduler",
		       "reportingComponent", "device-descheduler", "reportingInstance", e->instance);
	free(name);
	return dump(ev);
}

char *requests_event_patch_body(int64_t count, int64_t now_ms)
{
	char ts[40];

	event_time(now_ms, ts);
	return dump(json_pack("{s:I, s:s}", "count", (json_int_t)count, "lastTimestamp", ts));
}

char *requests_event_path(const char *ns)
{
	return kc_xasprintf("/api/v1/namespaces/%s/events", ns);
}

enum requests_outcome requests_classify(long http_status, int transport_error, const struct kc_status *status)
{
	if (transport_error || http_status == 0)
		return REQUESTS_FAILED;
	if (http_status >= 200 && http_status < 300)
		return REQUESTS_EVICTED;
	/* Only a PodDisruptionBudget makes a 429 "blocked" (and so, after deleteAfter, a
	 * delete); a 429 from the API server's own throttling is retried like any error. */
	if (http_status == 429)
		return status && kc_status_has_cause(status, "DisruptionBudget") ? REQUESTS_BLOCKED : REQUESTS_FAILED;
	if (http_status == 404)
		return REQUESTS_GONE;
	/*
	 * The eviction subresource answers 409 both for a failed UID precondition
	 * (the name now belongs to a new pod) and for a conflicting update of the
	 * PodDisruptionBudget's status: not necessarily gone.
	 */
	if (http_status == 409)
		return REQUESTS_CONFLICT;
	return REQUESTS_FAILED;
}
