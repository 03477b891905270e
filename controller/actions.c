/*
 * The action runner (see actions.h): an Event first, so the pod's owner can
 * read why, then the write the action stands for, and its answer back to the
 * core.  One struct action_run lives from the Event POST to the write's answer;
 * one struct fence_run from a fence's first request to its last answer.
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
	/* DeviceTaintRules: the version the server serves (an index into rule_versions),
	 * found by the first list or create; rules_listed once ours were listed while
	 * this replica leads. */
	size_t rule_version, list_version;
	bool rule_version_known, no_rule_api_logged, rules_listed, rules_listing;
	bool rule_api_absent;	     /* API discovery found no DeviceTaintRule version served */
	bool rule_version_discovered; /* rule_version (or rule_api_absent) came from API discovery */
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
	case CORE_FENCE:
		break; /* not an Event-then-write action: see run_fence() */
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

/* ---- fences: the node read-modify-write, DeviceTaintRules ---- */

/* Newest first: device taints are GA in v1 (Kubernetes 1.37), v1beta2 in 1.36, v1alpha3 from 1.33. */
static const char *const rule_versions[] = {"v1", "v1beta2", "v1alpha3"};
#define RULE_VERSIONS (sizeof(rule_versions) / sizeof(rule_versions[0]))
/* Conflicts (409) on the node in a row before the write counts as failed (the core retries later). */
#define MAX_CONFLICTS 5
#define RULE_SELECTOR "labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddevice-descheduler"

/* One CORE_FENCE action being carried out. */
struct fence_run {
	struct actions *owner;
	enum quarantine_kind kind;
	enum quarantine_op op;
	char *unit, *node, *driver, *pool, *device;
	char *key, *effect, *signal, *resource, *message;
	bool taint, cordon;
	int64_t since_ms;
	unsigned conflicts;
	size_t version; /* the rule version being tried */
};

static void fence_run_free(struct fence_run *run)
{
	free(run->unit);
	free(run->node);
	free(run->driver);
	free(run->pool);
	free(run->device);
	free(run->key);
	free(run->effect);
	free(run->signal);
	free(run->resource);
	free(run->message);
	free(run);
}

static void fence_finished(struct fence_run *run, enum quarantine_result r)
{
	struct actions *a = run->owner;

	if (a->o.core)
		core_fence_done(a->o.core, run->kind, run->unit, r, now_ms(a));
	a->in_flight--;
	fence_run_free(run);
	if (a->o.on_done)
		a->o.on_done(a->o.userdata);
}

static void fence_failed(struct fence_run *run, const char *what, const struct kc_response *resp)
{
	kc_log_warn("could not %s %s %s: %s (HTTP %ld); will retry", what,
		    run->kind == QUARANTINE_NODE ? "node" : "device", run->unit, failure_text(resp), resp->http_status);
	fence_finished(run, QUARANTINE_FAILED);
}

static struct requests_fence fence_of(const struct fence_run *run)
{
	struct requests_fence f = {run->key,	  run->effect,	 run->taint,  run->cordon,
				   run->since_ms, run->signal, run->resource, run->message};

	return f;
}

static void node_get(struct fence_run *run);

static void on_node_patched(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct fence_run *run = userdata;
	bool add = run->op == QUARANTINE_ADD;

	(void)req;
	if (resp->http_status >= 200 && resp->http_status < 300) {
		kc_log_info(0, "node %s %s", run->unit,
			    add ? "quarantined: fence written (the scheduler keeps new pods off it)"
				: "released from quarantine: our taint and record removed");
		fence_finished(run, QUARANTINE_OK);
	} else if (resp->http_status == 409 && ++run->conflicts < MAX_CONFLICTS) {
		/* The node changed since we read it: read it again, never overwrite blind. */
		kc_log_info(2, "node %s changed while we wrote its taints (409); reading it again", run->unit);
		node_get(run);
	} else if (resp->http_status == 404 && !add) {
		fence_finished(run, QUARANTINE_OK); /* the node is gone, and our fence with it */
	} else {
		fence_failed(run, add ? "quarantine" : "lift the quarantine of", resp);
	}
}

static void on_node_got(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct fence_run *run = userdata;
	struct requests_fence f = fence_of(run);
	struct kc_request_options o = {0};
	char *patch = NULL, *path;
	int r;

	(void)req;
	if (resp->http_status == 404 && run->op == QUARANTINE_REMOVE) {
		fence_finished(run, QUARANTINE_OK);
		return;
	}
	if (resp->http_status != 200 || !resp->body) {
		fence_failed(run, "read", resp);
		return;
	}
	r = requests_node_fence_patch(resp->body, resp->body_len, &f, run->op == QUARANTINE_ADD, &patch);
	if (r == -EALREADY) {
		kc_log_info(1, "node %s is already %s", run->unit,
			    run->op == QUARANTINE_ADD ? "fenced by us" : "free of our fence");
		fence_finished(run, QUARANTINE_OK);
		return;
	}
	if (r < 0) {
		kc_log_warn("node %s: the API server's answer is not a Node with a resourceVersion", run->unit);
		fence_finished(run, QUARANTINE_FAILED);
		return;
	}
	if (!may_write(run->owner)) {
		/* Our lease may have gone stale meanwhile: only the leader writes. */
		kc_log_info(1, "node %s: not written, this replica may no longer lead", run->unit);
		free(patch);
		fence_finished(run, QUARANTINE_FAILED);
		return;
	}
	path = kc_xasprintf("/api/v1/nodes/%s", run->unit);
	o.method = "PATCH";
	o.path = path;
	o.body = patch;
	o.body_len = strlen(patch);
	/* A merge patch with metadata.resourceVersion: the server answers 409 if the node changed. */
	o.content_type = "application/merge-patch+json";
	o.verb = "patch";
	o.resource = "nodes";
	send_request(run->owner, &o, on_node_patched, run);
	free(path);
	free(patch);
}

static void node_get(struct fence_run *run)
{
	struct kc_request_options o = {0};
	char *path = kc_xasprintf("/api/v1/nodes/%s", run->unit);

	o.method = "GET";
	o.path = path;
	o.verb = "get";
	o.resource = "nodes";
	o.retry = true;
	send_request(run->owner, &o, on_node_got, run);
	free(path);
}

static void rule_send(struct fence_run *run);

/* No version of the DeviceTaintRule API is served: say so once; the core falls back to node taints. */
static void no_rule_api(struct actions *a)
{
	if (a->no_rule_api_logged)
		return;
	a->no_rule_api_logged = true;
	kc_log_warn("the API server serves no DeviceTaintRule (resource.k8s.io v1, v1beta2 or v1alpha3): DRA "
		    "devices are fenced by tainting their node instead");
}

static void on_rule_done(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct fence_run *run = userdata;
	struct actions *a = run->owner;
	bool add = run->op == QUARANTINE_ADD;

	(void)req;
	if (resp->http_status == 404 && a->rule_version_discovered && (a->rule_api_absent || run->version != a->rule_version)) {
		/* Sent before discovery answered, to a version it since found not served. */
		run->version = a->rule_version;
		rule_send(run);
		return;
	}
	/* 409 AlreadyExists on create: a restart, or our answer lost; the rule is there. */
	if ((resp->http_status >= 200 && resp->http_status < 300) || (add && resp->http_status == 409)) {
		a->rule_version = run->version;
		a->rule_version_known = true;
		kc_log_info(0, "device %s %s", run->unit,
			    add ? "quarantined: DeviceTaintRule written" : "released: our DeviceTaintRule deleted");
		fence_finished(run, QUARANTINE_OK);
	} else if (resp->http_status == 404 && !add && a->rule_version_known && run->version == a->rule_version) {
		fence_finished(run, QUARANTINE_OK); /* the rule is gone already */
	} else if (resp->http_status == 404 && run->version + 1 < RULE_VERSIONS) {
		/* This version is not served (a list may have found the one that is meanwhile): an older one. */
		run->version = a->rule_version_known && a->rule_version > run->version ? a->rule_version : run->version + 1;
		rule_send(run);
	} else if (resp->http_status == 404) {
		if (add)
			no_rule_api(a);
		fence_finished(run, add ? QUARANTINE_UNSUPPORTED : QUARANTINE_OK);
	} else {
		fence_failed(run, add ? "quarantine" : "lift the quarantine of", resp);
	}
}

static void rule_send(struct fence_run *run)
{
	struct requests_fence f = fence_of(run);
	struct kc_request_options o = {0};
	const char *v = rule_versions[run->version];
	char *name, *path, *body;

	if (run->owner->rule_api_absent) {
		/* Discovery says no version is served: no request to learn that again. */
		if (run->op == QUARANTINE_ADD)
			no_rule_api(run->owner);
		fence_finished(run, run->op == QUARANTINE_ADD ? QUARANTINE_UNSUPPORTED : QUARANTINE_OK);
		return;
	}
	if (!may_write(run->owner)) {
		kc_log_info(1, "device %s: not written, this replica may no longer lead", run->unit);
		fence_finished(run, QUARANTINE_FAILED);
		return;
	}
	name = requests_taint_rule_name(run->driver, run->pool, run->device);
	path = requests_taint_rule_path(v, run->op == QUARANTINE_ADD ? NULL : name);
	body = run->op == QUARANTINE_ADD ? requests_taint_rule_body(v, &f, run->driver, run->pool, run->device) : NULL;
	o.method = run->op == QUARANTINE_ADD ? "POST" : "DELETE";
	o.path = path;
	o.body = body;
	o.body_len = body ? strlen(body) : 0;
	o.verb = run->op == QUARANTINE_ADD ? "create" : "delete";
	o.resource = "devicetaintrules";
	send_request(run->owner, &o, on_rule_done, run);
	free(body);
	free(path);
	free(name);
}

static void run_fence(struct actions *a, const struct core_action *act)
{
	const struct quarantine_action *q = &act->fence;
	struct fence_run *run = kc_xcalloc(1, sizeof(*run));

	run->owner = a;
	run->kind = q->kind;
	run->op = q->op;
	run->unit = kc_xstrdup(q->unit);
	run->node = kc_xstrdup(q->node ? q->node : "");
	run->driver = kc_xstrdup(q->driver ? q->driver : "");
	run->pool = kc_xstrdup(q->pool ? q->pool : "");
	run->device = kc_xstrdup(q->device ? q->device : "");
	run->key = kc_xstrdup(q->key);
	run->effect = kc_xstrdup(q->effect);
	run->signal = kc_xstrdup(q->signal ? q->signal : "");
	run->resource = kc_xstrdup(q->resource ? q->resource : "");
	run->message = kc_xstrdup(q->message ? q->message : "");
	run->taint = q->taint;
	run->cordon = q->cordon;
	run->since_ms = kc_wall_ms();
	run->version = a->rule_version_known ? a->rule_version : 0;
	kc_log_info(0, "%s", act->message);
	a->in_flight++;
	if (run->kind == QUARANTINE_NODE)
		node_get(run);
	else
		rule_send(run);
}

static void on_rules_listed(struct kc_request *req, const struct kc_response *resp, void *userdata);

static void list_rules_at(struct actions *a, size_t version)
{
	struct kc_request_options o = {0};
	char *base = requests_taint_rule_path(rule_versions[version], NULL);
	char *path = kc_xasprintf("%s?%s", base, RULE_SELECTOR);

	o.method = "GET";
	o.path = path;
	o.verb = "list";
	o.resource = "devicetaintrules";
	o.retry = true;
	a->rules_listing = true;
	a->list_version = version;
	a->in_flight++;
	send_request(a, &o, on_rules_listed, a);
	free(path);
	free(base);
}

/* Our DeviceTaintRules after a restart or a leader change: the core recovers them in time. */
static void on_rules_listed(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct actions *a = userdata;
	struct requests_rule *rules = NULL;
	size_t n = 0;

	(void)req;
	a->in_flight--;
	a->rules_listing = false;
	if (a->rule_version_discovered && (a->rule_api_absent || a->list_version != a->rule_version)) {
		/* Discovery answered meanwhile: list where it says the rules are (or nowhere). */
		a->rules_listed = false;
		if (a->o.on_done)
			a->o.on_done(a->o.userdata);
		return;
	}
	if (resp->http_status == 404 && a->list_version + 1 < RULE_VERSIONS) {
		list_rules_at(a, a->list_version + 1);
		return;
	}
	if (resp->http_status == 404) {
		a->rules_listed = true;
		no_rule_api(a);
	} else if (resp->http_status == 200 && resp->body &&
		   requests_taint_rules_parse(resp->body, resp->body_len, &rules, &n) == 0) {
		a->rule_version = a->list_version;
		a->rule_version_known = true;
		a->rules_listed = true;
		kc_log_info(1, "%zu DeviceTaintRules of ours (resource.k8s.io/%s)", n, rule_versions[a->rule_version]);
		for (size_t i = 0; i < n && a->o.core; i++)
			core_rule_observed(a->o.core, rules[i].driver, rules[i].pool, rules[i].device, now_ms(a));
		requests_rules_free(rules, n);
	} else {
		kc_log_warn("could not list our DeviceTaintRules: %s (HTTP %ld); will retry", failure_text(resp),
			    resp->http_status);
	}
	if (a->o.on_done)
		a->o.on_done(a->o.userdata);
}

/* Lists our rules once per leadership (the leader alone writes, and must know what to undo). */
static void maybe_list_rules(struct actions *a)
{
	const struct core_stats *st = core_stats(a->o.core);

	if (!st->synced || !st->active || !core_wants_rules(a->o.core)) {
		a->rules_listed = false;
		return;
	}
	if (!a->rules_listed && !a->rules_listing && a->rule_api_absent) {
		no_rule_api(a);
		a->rules_listed = true; /* none can exist */
	}
	if (!a->rules_listed && !a->rules_listing)
		list_rules_at(a, a->rule_version_known ? a->rule_version : 0);
}

void actions_set_rule_version(struct actions *a, const char *version)
{
	size_t i;

	for (i = 0; version && i < RULE_VERSIONS && strcmp(version, rule_versions[i]) != 0; i++)
		;
	if (version && i == RULE_VERSIONS)
		return; /* a version this code does not write: keep finding one by trying */
	if (a->rule_api_absent != !version || (version && (!a->rule_version_known || a->rule_version != i)))
		a->rules_listed = false; /* list ours again where they now are */
	a->rule_api_absent = !version;
	a->rule_version_known = version != NULL;
	a->rule_version = version ? i : 0;
	a->rule_version_discovered = true;
}

uint64_t actions_pump(struct actions *a, bool run_actions, uint64_t now)
{
	struct core_action act;

	/* A replica whose lease may have gone stale (a pause, overdue timers) chooses
	 * nothing; the leader callbacks pump again when that changes. */
	if (!a->o.core || !may_write(a))
		return UINT64_MAX;
	if (run_actions) {
		maybe_list_rules(a);
		while (core_next_action(a->o.core, now, &act) == 0) {
			if (act.kind == CORE_FENCE)
				run_fence(a, &act);
			else
				run_action(a, &act);
		}
	}
	run_notices(a);
	return core_next_wakeup(a->o.core, now);
}
