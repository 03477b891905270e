/*
 * The action runner (see actions.h): an Event first, so the pod's owner can
 * read why, then the write the action stands for, and its answer back to the
 * core.  One struct action_run lives from the Event POST to the write's answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "kc_log.h"
#include "kc_util.h"
#include "requests.h"

struct actions {
	struct actions_options o;
	char *identity, *pod_ns, *pod_name, *pod_uid;
	unsigned in_flight;
};

/* One action of the core being carried out: an Event, then the eviction. */
struct action_run {
	struct actions *owner;
	enum core_action_kind kind;
	char *ns, *name, *uid, *node, *signal, *resource, *device, *reason, *message;
	int64_t grace_period_s;
	uint64_t detected_ms;
	bool dry_run;
};

static char *dup_or_null(const char *s)
{
	return s ? kc_xstrdup(s) : NULL;
}

struct actions *actions_new(const struct actions_options *o)
{
	struct actions *a = kc_xcalloc(1, sizeof(*a));

	a->o = *o;
	a->identity = kc_xstrdup(o->identity ? o->identity : "");
	a->pod_ns = dup_or_null(o->pod_ns);
	a->pod_name = dup_or_null(o->pod_name);
	a->pod_uid = dup_or_null(o->pod_uid);
	return a;
}

struct actions *actions_free(struct actions *a)
{
	if (!a)
		return NULL;
	free(a->identity);
	free(a->pod_ns);
	free(a->pod_name);
	free(a->pod_uid);
	free(a);
	return NULL;
}

void actions_set_core(struct actions *a, struct core *c)
{
	a->o.core = c;
}

unsigned actions_in_flight(const struct actions *a)
{
	return a->in_flight;
}

int actions_client_send(void *sender, const struct kc_request_options *o, kc_response_cb done, void *userdata)
{
	return kc_client_request(sender, o, done, userdata, NULL);
}

static uint64_t now_ms(const struct actions *a)
{
	return a->o.now_ms(a->o.userdata);
}

static void action_run_free(struct action_run *run)
{
	free(run->ns);
	free(run->name);
	free(run->uid);
	free(run->node);
	free(run->signal);
	free(run->resource);
	free(run->device);
	free(run->reason);
	free(run->message);
	free(run);
}

/* The action is over: the core may have more to do. */
static void action_finished(struct action_run *run)
{
	struct actions *a = run->owner;

	a->in_flight--;
	action_run_free(run);
	if (a->o.on_done)
		a->o.on_done(a->o.userdata);
}

/* Sends o; a request that cannot be sent is answered at once, as a transport error. */
static void send_request(struct actions *a, const struct kc_request_options *o, kc_response_cb done, void *ud)
{
	int r = a->o.send(a->o.sender, o, done, ud);

	if (r < 0 && done) {
		struct kc_response resp = {.error = r, .error_message = "request not sent"};

		done(NULL, &resp, ud);
	}
}

/* The human-readable reason of a failed answer. */
static const char *failure_text(const struct kc_response *resp)
{
	return resp->status ? resp->status->message : resp->error_message ? resp->error_message : "unexpected answer";
}

static const char *result_label(enum core_result r)
{
	switch (r) {
	case CORE_RESULT_EVICTED:
		return "success";
	case CORE_RESULT_BLOCKED:
		return "blocked";
	case CORE_RESULT_GONE:
		return "gone";
	case CORE_RESULT_ERROR:
		return "error";
	}
	return "error";
}

static void on_write_done(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct action_run *run = userdata;
	struct actions *a = run->owner;
	enum requests_outcome out = requests_classify(resp->http_status, resp->error, resp->status);
	enum core_result r = out == REQUESTS_EVICTED ? CORE_RESULT_EVICTED
			     : out == REQUESTS_BLOCKED ? CORE_RESULT_BLOCKED
			     : out == REQUESTS_GONE    ? CORE_RESULT_GONE
						       : CORE_RESULT_ERROR;
	const char *what = run->kind == CORE_DELETE ? "delete" : "eviction";

	(void)req;
	switch (r) {
	case CORE_RESULT_EVICTED:
		kc_log_info(0, "%s of pod %s/%s (uid %s) accepted: %s", what, run->ns, run->name, run->uid,
			    resp->http_status == 201 || resp->http_status == 200 ? "the pod is being terminated" : "ok");
		break;
	case CORE_RESULT_BLOCKED:
		kc_log_info(1, "%s of pod %s/%s blocked (HTTP 429): %s; will retry", what, run->ns, run->name,
			    resp->status && resp->status->n_causes ? resp->status->causes[0].message
			    : resp->status			      ? resp->status->message
							      : "too many requests");
		break;
	case CORE_RESULT_GONE:
		kc_log_info(1, "%s of pod %s/%s (uid %s): the pod is already gone (HTTP %ld)", what, run->ns,
			    run->name, run->uid, resp->http_status);
		break;
	case CORE_RESULT_ERROR:
		kc_log_warn("%s of pod %s/%s failed: %s (HTTP %ld); will retry", what, run->ns, run->name,
			    failure_text(resp), resp->http_status);
		break;
	}
	metrics_counter_add(a->o.metrics, "evictions_total", 1, result_label(r), run->signal, NULL);
	if (a->o.core)
		core_action_done(a->o.core, run->uid, r, resp->retry_after_ms, now_ms(a));
	action_finished(run);
}

/*
 * The write an action stands for: its method, path and body (the caller
 * frees path and body).  The one place that knows the action kinds' requests.
 */
static void build_write(const struct action_run *run, struct kc_request_options *o, char **path, char **body)
{
	switch (run->kind) {
	case CORE_DELETE:
		*path = kc_xasprintf("/api/v1/namespaces/%s/pods/%s", run->ns, run->name);
		*body = requests_delete_body(run->uid, run->grace_period_s);
		o->method = "DELETE";
		o->verb = "delete";
		o->resource = "pods";
		return;
	case CORE_EVICT:
		*path = requests_eviction_path(run->ns, run->name);
		*body = requests_eviction_body(run->ns, run->name, run->uid, run->grace_period_s);
		o->method = "POST";
		o->verb = "create";
		o->resource = "pods/eviction";
		return;
	case CORE_FENCE:
		break; /* not an Event-then-write action: see run_fence() */
	}
	abort();
}

static void send_write(struct action_run *run)
{
	struct actions *a = run->owner;
	struct kc_request_options o = {0};
	char *path, *body;

	build_write(run, &o, &path, &body);
	o.path = path;
	o.body = body;
	o.body_len = strlen(body);
	/* Not retried by the transport: a 429 is a PodDisruptionBudget answer that
	 * the core retries with its own backoff. */
	o.retry = false;
	metrics_histogram_observe(a->o.metrics, "eviction_latency_seconds",
				  (double)(now_ms(a) - run->detected_ms) / 1000.0, NULL);
	send_request(a, &o, on_write_done, run);
	free(path);
	free(body);
}

static void on_event_posted(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct action_run *run = userdata;

	(void)req;
	if (resp->error || resp->http_status < 200 || resp->http_status >= 300)
		kc_log_warn("could not record Event %s on pod %s/%s: %s (HTTP %ld)", run->reason, run->ns, run->name,
			    failure_text(resp), resp->http_status);
	if (run->dry_run) {
		action_finished(run);
		return;
	}
	send_write(run);
}

/* Posts an Event about an object; done (may be NULL) runs when it is answered. */
static void post_event(struct actions *a, const struct requests_event *ev, kc_response_cb done, void *userdata)
{
	struct kc_request_options o = {0};
	char *path = requests_event_path(ev->ns);
	char *body = requests_event_body(ev);

	o.method = "POST";
	o.path = path;
	o.body = body;
	o.body_len = strlen(body);
	o.timeout_ms = 5000;
	o.verb = "create";
	o.resource = "events";
	send_request(a, &o, done, userdata);
	free(path);
	free(body);
}

static void ignore_response(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	(void)req;
	(void)userdata;
	if (resp->error || resp->http_status >= 300)
		kc_log_warn("could not record an Event: %s (HTTP %ld)", failure_text(resp), resp->http_status);
}

static void run_action(struct actions *a, const struct core_action *act)
{
	struct action_run *run = kc_xcalloc(1, sizeof(*run));
	struct requests_event ev = {0};

	run->owner = a;
	run->kind = act->kind;
	run->ns = kc_xstrdup(act->ns);
	run->name = kc_xstrdup(act->name);
	run->uid = kc_xstrdup(act->uid);
	run->node = kc_xstrdup(act->node ? act->node : "");
	run->signal = kc_xstrdup(act->signal);
	run->resource = kc_xstrdup(act->resource ? act->resource : "");
	run->device = kc_xstrdup(act->device ? act->device : "");
	run->reason = kc_xstrdup(act->reason);
	run->message = kc_xstrdup(act->message);
	run->grace_period_s = act->grace_period_s;
	run->detected_ms = act->detected_ms;
	run->dry_run = act->dry_run;

	/* One log line with the same facts as the Event. */
	kc_log_info(0, "%s (pod=%s/%s uid=%s node=%s resource=%s device=%s signal=%s)", run->message, run->ns,
		    run->name, run->uid, run->node, run->resource[0] ? run->resource : "-",
		    run->device[0] ? run->device : "-", run->signal);
	if (run->dry_run)
		metrics_counter_add(a->o.metrics, "evictions_total", 1, "dry_run", run->signal, NULL);

	ev.ns = run->ns;
	ev.kind = "Pod";
	ev.api_version = "v1";
	ev.name = run->name;
	ev.uid = run->uid;
	ev.type = run->dry_run ? "Normal" : "Warning";
	ev.reason = run->reason;
	ev.action = run->dry_run ? "None" : run->kind == CORE_DELETE ? "Delete" : "Evict";
	ev.message = run->message;
	ev.instance = a->identity;
	ev.now_ms = kc_wall_ms();
	a->in_flight++;
	post_event(a, &ev, on_event_posted, run);
}

static void run_notices(struct actions *a)
{
	struct core_notice n;

	while (core_next_notice(a->o.core, &n) == 0) {
		struct requests_event ev = {0};

		if (strcmp(n.type, "Warning") == 0)
			kc_log_warn("%s: %s", n.reason, n.message);
		else
			kc_log_info(1, "%s: %s", n.reason, n.message);
		ev.kind = "Pod";
		ev.api_version = "v1";
		ev.type = n.type;
		ev.reason = n.reason;
		ev.action = "None";
		ev.message = n.message;
		ev.instance = a->identity;
		ev.now_ms = kc_wall_ms();
		if (n.cluster_wide) {
			/* Cluster-wide notices (the circuit breaker) go on our own pod when the
			 * downward API tells us who we are. */
			if (!a->pod_ns || !a->pod_name)
				continue;
			ev.ns = a->pod_ns;
			ev.name = a->pod_name;
			ev.uid = a->pod_uid ? a->pod_uid : "";
		} else {
			ev.ns = n.ns;
			ev.name = n.name;
			ev.uid = n.uid;
		}
		post_event(a, &ev, ignore_response, NULL);
	}
}

uint64_t actions_pump(struct actions *a, bool run_actions, uint64_t now)
{
	struct core_action act;

	if (!a->o.core)
		return UINT64_MAX;
	if (run_actions)
		while (core_next_action(a->o.core, now, &act) == 0)
			run_action(a, &act);
	run_notices(a);
	return core_next_wakeup(a->o.core, now);
}
