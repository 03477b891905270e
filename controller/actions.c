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
	struct events *events;
	unsigned in_flight;	    /* actions */
	unsigned notices_in_flight; /* notice Events */
};

/* The write an action stands for, and how logs and Events name it. */
struct write {
	const char *noun;	  /* "eviction" */
	const char *gerund;	  /* "evicting" */
	const char *event_action; /* the Event's action: "Evict" */
	const char *method, *verb, *resource;
	char *path, *body;
};

/* One action of the core being carried out: an Event, then the write. */
struct action_run {
	struct actions *owner;
	enum core_action_kind kind;
	struct write w;
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
	a->events = events_new(o->send, o->sender, o->now_ms, o->userdata);
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
	events_free(a->events);
	free(a);
	return NULL;
}

void actions_set_core(struct actions *a, struct core *c)
{
	a->o.core = c;
}

unsigned actions_in_flight(const struct actions *a)
{
	return a->in_flight + a->notices_in_flight;
}

int actions_client_send(void *sender, const struct kc_request_options *o, kc_response_cb done, void *userdata)
{
	return kc_client_request(sender, o, done, userdata, NULL);
}

static uint64_t now_ms(const struct actions *a)
{
	return a->o.now_ms(a->o.userdata);
}

static bool may_write(const struct actions *a)
{
	return !a->o.may_write || a->o.may_write(a->o.userdata);
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
	free(run->w.path);
	free(run->w.body);
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
	case CORE_RESULT_CONFLICT:
		return "conflict";
	case CORE_RESULT_ERROR:
	case CORE_RESULT_CANCELLED:
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
			     : out == REQUESTS_CONFLICT ? CORE_RESULT_CONFLICT
						       : CORE_RESULT_ERROR;
	const char *what = run->w.noun;

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
	case CORE_RESULT_CONFLICT:
		kc_log_info(1, "%s of pod %s/%s (uid %s): conflict (HTTP 409): %s; retried unless the pod is gone",
			    what, run->ns, run->name, run->uid, failure_text(resp));
		break;
	case CORE_RESULT_ERROR:
	case CORE_RESULT_CANCELLED:
		kc_log_warn("%s of pod %s/%s failed: %s (HTTP %ld); will retry", what, run->ns, run->name,
			    failure_text(resp), resp->http_status);
		break;
	}
	metrics_counter_add(a->o.metrics, "evictions_total", 1, result_label(r), run->signal, NULL);
	/* One sample per pod rescued, from the health event to the accepted eviction (or
	 * delete), however many attempts it took. */
	if (r == CORE_RESULT_EVICTED)
		metrics_histogram_observe(a->o.metrics, "eviction_latency_seconds",
					  (double)(now_ms(a) - run->detected_ms) / 1000.0, NULL);
	if (a->o.core)
		core_action_done(a->o.core, run->uid, r, resp->retry_after_ms, now_ms(a));
	action_finished(run);
}

/*
 * The write of each action kind: the one place that knows the kinds (a new
 * kind, such as fencing a node, is one more case here).
 */
static void describe_write(const struct action_run *run, struct write *w)
{
	switch (run->kind) {
	case CORE_DELETE:
		*w = (struct write){"delete", "deleting", "Delete", "DELETE", "delete", "pods",
				    kc_xasprintf("/api/v1/namespaces/%s/pods/%s", run->ns, run->name),
				    requests_delete_body(run->uid, run->grace_period_s)};
		return;
	case CORE_EVICT:
		*w = (struct write){"eviction", "evicting", "Evict", "POST", "create", "pods/eviction",
				    requests_eviction_path(run->ns, run->name),
				    requests_eviction_body(run->ns, run->name, run->uid, run->grace_period_s)};
		return;
	}
	abort();
}

static void send_write(struct action_run *run)
{
	struct actions *a = run->owner;
	struct kc_request_options o = {0};

	o.method = run->w.method;
	o.verb = run->w.verb;
	o.resource = run->w.resource;
	o.path = run->w.path;
	o.body = run->w.body;
	o.body_len = strlen(run->w.body);
	/* Not retried by the transport: a 429 is a PodDisruptionBudget answer that
	 * the core retries with its own backoff. */
	o.retry = false;
	send_request(a, &o, on_write_done, run);
}

/*
 * The Event may have taken seconds: is the write still ours to make?  When not,
 * the core hears CANCELLED and evaluates the pod again; returns false.
 */
static bool recheck(struct action_run *run)
{
	struct actions *a = run->owner;
	const char *why = "the controller is shutting down";

	if (!may_write(a))
		why = "this replica no longer holds a fresh lease";
	else if (a->o.core && core_action_check(a->o.core, run->uid, &why) == 0)
		return true;
	kc_log_info(0, "not %s pod %s/%s (uid %s) after all: %s", run->w.gerund, run->ns, run->name, run->uid, why);
	if (a->o.core)
		core_action_done(a->o.core, run->uid, CORE_RESULT_CANCELLED, 0, now_ms(a));
	action_finished(run);
	return false;
}

static void on_event_posted(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct action_run *run = userdata;

	(void)req;
	if (resp->error != EVENTS_DROPPED && (resp->error || resp->http_status < 200 || resp->http_status >= 300))
		kc_log_warn("could not record Event %s on pod %s/%s: %s (HTTP %ld)", run->reason, run->ns, run->name,
			    failure_text(resp), resp->http_status);
	if (run->dry_run) {
		action_finished(run);
		return;
	}
	if (!recheck(run))
		return;
	send_write(run);
}

static void on_notice_posted(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct actions *a = userdata;

	(void)req;
	if (resp->error != EVENTS_DROPPED && (resp->error || resp->http_status >= 300))
		kc_log_warn("could not record an Event: %s (HTTP %ld)", failure_text(resp), resp->http_status);
	a->notices_in_flight--;
	/* Room for the next notice waiting in the core. */
	if (a->o.on_done)
		a->o.on_done(a->o.userdata);
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
	describe_write(run, &run->w);

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
	ev.action = run->dry_run ? "None" : run->w.event_action;
	ev.message = run->message;
	ev.instance = a->identity;
	ev.now_ms = kc_wall_ms();
	a->in_flight++;
	events_record(a->events, &ev, on_event_posted, run);
}

static void run_notices(struct actions *a)
{
	struct core_notice n;

	while (a->notices_in_flight < ACTIONS_MAX_NOTICES_IN_FLIGHT && core_next_notice(a->o.core, &n) == 0) {
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
		a->notices_in_flight++;
		events_record(a->events, &ev, on_notice_posted, a);
	}
}

uint64_t actions_pump(struct actions *a, bool run_actions, uint64_t now)
{
	struct core_action act;

	/* A replica whose lease may have gone stale (a pause, overdue timers) chooses
	 * nothing; the leader callbacks pump again when that changes. */
	if (!a->o.core || !may_write(a))
		return UINT64_MAX;
	if (run_actions)
		while (core_next_action(a->o.core, now, &act) == 0)
			run_action(a, &act);
	run_notices(a);
	return core_next_wakeup(a->o.core, now);
}
