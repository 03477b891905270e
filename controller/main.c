/*
 * device-descheduler: the daemon.  This file is the shell around the pure
 * core: it parses flags, loads the policy and the client configuration, runs
 * the reflectors for pods, nodes, ResourceClaims and ResourceSlices on one
 * libuv loop, feeds their changes to the core, carries out the core's actions
 * (an Event, then a policy/v1 Eviction or the deleteAfter delete), and takes
 * care of leader election, metrics and probes, policy reloads and signals.
 *
 * Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for bad flags or a
 * bad policy (before any request is sent), 1 for other start-up failures.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core.h"
#include "httpserver.h"
#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_reflector.h"
#include "kc_util.h"
#include "leader.h"
#include "metrics.h"
#include "options.h"
#include "policy.h"
#include "requests.h"

#ifndef DD_VERSION
#define DD_VERSION "0.1.0"
#endif

/* How often the policy file is checked by stat(), in addition to inotify. */
#define POLICY_POLL_MS 2000

/* What the policy file held when it was last read: its bytes, or the error that
 * kept us from reading it.  Compared by length and content, so NUL bytes and the
 * different kinds of unreadable file (missing, a directory, too large) all count
 * as changes. */
struct file_bytes {
	char *data;
	size_t len;
	int err;
	bool valid;
};

struct app {
	uv_loop_t *loop;
	struct options opts;
	struct policy *policy;
	struct file_bytes policy_bytes;    /* what the loaded policy was parsed from */
	struct file_bytes rejected_bytes;  /* the last rejected file, so it is reported once */
	struct kc_config cfg;
	struct kc_client *client;
	struct kc_intern *intern;
	struct kc_decode_opts decode;
	struct kc_reflector *pods, *nodes, *claims, *slices;
	struct core *core;
	struct leader *leader;
	struct metrics *metrics;
	struct httpserver *http;
	uv_timer_t metrics_timer;   /* refreshes gauges from the core and the reflectors */
	uint64_t seen_restarts[4], seen_relists[4], seen_held;
	uint64_t seen_skipped[PLANNER_SKIP_COUNT];
	char *seen_resources[CORE_MAX_RESOURCES + 1];  /* unhealthy_devices series ever set */
	char *identity;

	uv_timer_t wake;            /* the core's next wakeup, and deferred pumps */
	uv_timer_t policy_poll;
	uv_fs_event_t policy_watch;
	bool policy_watch_active;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t shutdown_timer;

	unsigned in_flight;         /* actions with a request outstanding */
	bool synced;
	bool leading;
	bool shutting_down;
	uint64_t shutdown_started_ms;
	int exit_code;
};

/* One action of the core being carried out: an Event, then the eviction. */
struct action_run {
	struct app *app;
	enum core_action_kind kind;
	char *ns, *name, *uid, *node, *signal, *resource, *device, *reason, *message;
	int64_t grace_period_s;
	uint64_t detected_ms;
	bool dry_run;
};

static void schedule_pump(struct app *app);
static void on_wake(uv_timer_t *t);
static void start_shutdown(struct app *app, const char *why);

static const char *const keep_annotations[] = {POLICY_OPT_OUT_ANNOTATION, NULL};

/* ---- actions ---------------------------------------------------------------- */

static void action_run_free(struct action_run *a)
{
	free(a->ns);
	free(a->name);
	free(a->uid);
	free(a->node);
	free(a->signal);
	free(a->resource);
	free(a->device);
	free(a->reason);
	free(a->message);
	free(a);
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
		return "error";
	}
	return "error";
}

static void on_evict_done(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct action_run *a = userdata;
	struct app *app = a->app;
	enum requests_outcome out = requests_classify(resp->http_status, resp->error, resp->status);
	enum core_result r = out == REQUESTS_EVICTED ? CORE_RESULT_EVICTED
			     : out == REQUESTS_BLOCKED ? CORE_RESULT_BLOCKED
			     : out == REQUESTS_GONE    ? CORE_RESULT_GONE
			     : out == REQUESTS_CONFLICT ? CORE_RESULT_CONFLICT
						       : CORE_RESULT_ERROR;
	const char *what = a->kind == CORE_DELETE ? "delete" : "eviction";
	uint64_t now = uv_now(app->loop);

	(void)req;
	switch (r) {
	case CORE_RESULT_EVICTED:
		kc_log_info(0, "%s of pod %s/%s (uid %s) accepted: %s", what, a->ns, a->name, a->uid,
			    resp->http_status == 201 || resp->http_status == 200 ? "the pod is being terminated" : "ok");
		break;
	case CORE_RESULT_BLOCKED:
		kc_log_info(1, "%s of pod %s/%s blocked (HTTP 429): %s; will retry", what, a->ns, a->name,
			    resp->status && resp->status->n_causes ? resp->status->causes[0].message
			    : resp->status			      ? resp->status->message
								      : "too many requests");
		break;
	case CORE_RESULT_GONE:
		kc_log_info(1, "%s of pod %s/%s (uid %s): the pod is already gone (HTTP %ld)", what, a->ns, a->name,
			    a->uid, resp->http_status);
		break;
	case CORE_RESULT_CONFLICT:
		kc_log_info(1, "%s of pod %s/%s (uid %s): conflict (HTTP 409); retried unless the pod is gone", what,
			    a->ns, a->name, a->uid);
		break;
	case CORE_RESULT_ERROR:
		kc_log_warn("%s of pod %s/%s failed: %s (HTTP %ld); will retry", what, a->ns, a->name,
			    resp->status ? resp->status->message
			    : resp->error_message ? resp->error_message
						  : "unexpected answer",
			    resp->http_status);
		break;
	}
	metrics_counter_add(app->metrics, "evictions_total", 1, result_label(r), a->signal, NULL);
	if (app->core)
		core_action_done(app->core, a->uid, r, resp->retry_after_ms, now);
	app->in_flight--;
	action_run_free(a);
	schedule_pump(app);
}

static void send_eviction(struct action_run *a)
{
	struct app *app = a->app;
	struct kc_request_options o = {0};
	char *path, *body;
	int r;

	if (a->kind == CORE_DELETE) {
		path = kc_xasprintf("/api/v1/namespaces/%s/pods/%s", a->ns, a->name);
		body = requests_delete_body(a->uid, a->grace_period_s);
		o.method = "DELETE";
		o.verb = "delete";
		o.resource = "pods";
	} else {
		path = requests_eviction_path(a->ns, a->name);
		body = requests_eviction_body(a->ns, a->name, a->uid, a->grace_period_s);
		o.method = "POST";
		o.verb = "create";
		o.resource = "pods/eviction";
	}
	o.path = path;
	o.body = body;
	o.body_len = strlen(body);
	/* Not retried by the transport: a 429 is a PodDisruptionBudget answer that
	 * the core retries with its own backoff. */
	o.retry = false;
	metrics_histogram_observe(app->metrics, "eviction_latency_seconds",
				  (double)(uv_now(app->loop) - a->detected_ms) / 1000.0, NULL);
	r = kc_client_request(app->client, &o, on_evict_done, a, NULL);
	free(path);
	free(body);
	if (r < 0) {
		struct kc_response resp = {.error = r, .error_message = "request not sent"};

		on_evict_done(NULL, &resp, a);
	}
}

static void on_event_posted(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct action_run *a = userdata;

	(void)req;
	if (resp->error || resp->http_status < 200 || resp->http_status >= 300)
		kc_log_warn("could not record Event %s on pod %s/%s: %s (HTTP %ld)", a->reason, a->ns, a->name,
			    resp->status ? resp->status->message
			    : resp->error_message ? resp->error_message
						  : "unexpected answer",
			    resp->http_status);
	if (a->dry_run) {
		a->app->in_flight--;
		action_run_free(a);
		return;
	}
	send_eviction(a);
}

/* Posts an Event about an object; done (may be NULL) runs when it is answered. */
static void post_event(struct app *app, const struct requests_event *ev, kc_response_cb done, void *userdata)
{
	struct kc_request_options o = {0};
	char *path = requests_event_path(ev->ns);
	char *body = requests_event_body(ev);
	int r;

	o.method = "POST";
	o.path = path;
	o.body = body;
	o.body_len = strlen(body);
	o.timeout_ms = 5000;
	o.verb = "create";
	o.resource = "events";
	r = kc_client_request(app->client, &o, done, userdata, NULL);
	free(path);
	free(body);
	if (r < 0 && done) {
		struct kc_response resp = {.error = r, .error_message = "request not sent"};

		done(NULL, &resp, userdata);
	}
}

static void ignore_response(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	(void)req;
	(void)userdata;
	if (resp->error || resp->http_status >= 300)
		kc_log_warn("could not record an Event: %s (HTTP %ld)",
			    resp->status ? resp->status->message
			    : resp->error_message ? resp->error_message
						  : "unexpected answer",
			    resp->http_status);
}

static void run_action(struct app *app, const struct core_action *act)
{
	struct action_run *a = kc_xcalloc(1, sizeof(*a));
	struct requests_event ev = {0};

	a->app = app;
	a->kind = act->kind;
	a->ns = kc_xstrdup(act->ns);
	a->name = kc_xstrdup(act->name);
	a->uid = kc_xstrdup(act->uid);
	a->node = kc_xstrdup(act->node ? act->node : "");
	a->signal = kc_xstrdup(act->signal);
	a->resource = kc_xstrdup(act->resource ? act->resource : "");
	a->device = kc_xstrdup(act->device ? act->device : "");
	a->reason = kc_xstrdup(act->reason);
	a->message = kc_xstrdup(act->message);
	a->grace_period_s = act->grace_period_s;
	a->detected_ms = act->detected_ms;
	a->dry_run = act->dry_run;

	/* One log line with the same facts as the Event. */
	kc_log_info(0, "%s (pod=%s/%s uid=%s node=%s resource=%s device=%s signal=%s)", a->message, a->ns, a->name,
		    a->uid, a->node, a->resource[0] ? a->resource : "-", a->device[0] ? a->device : "-", a->signal);
	if (a->dry_run)
		metrics_counter_add(app->metrics, "evictions_total", 1, "dry_run", a->signal, NULL);

	ev.ns = a->ns;
	ev.kind = "Pod";
	ev.api_version = "v1";
	ev.name = a->name;
	ev.uid = a->uid;
	ev.type = a->dry_run ? "Normal" : "Warning";
	ev.reason = a->reason;
	ev.action = a->dry_run ? "None" : a->kind == CORE_DELETE ? "Delete" : "Evict";
	ev.message = a->message;
	ev.instance = app->identity;
	ev.now_ms = kc_wall_ms();
	app->in_flight++;
	post_event(app, &ev, on_event_posted, a);
}

static void run_notices(struct app *app)
{
	struct core_notice n;

	while (core_next_notice(app->core, &n) == 0) {
		struct requests_event ev = {0};
		const char *pod_ns = getenv("POD_NAMESPACE"), *pod_name = getenv("POD_NAME");

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
		ev.instance = app->identity;
		ev.now_ms = kc_wall_ms();
		if (n.cluster_wide) {
			/* Cluster-wide notices (the circuit breaker) go on our own pod when the
			 * downward API tells us who we are. */
			if (!pod_ns || !pod_name)
				continue;
			ev.ns = pod_ns;
			ev.name = pod_name;
			ev.uid = getenv("POD_UID") ? getenv("POD_UID") : "";
		} else {
			ev.ns = n.ns;
			ev.name = n.name;
			ev.uid = n.uid;
		}
		post_event(app, &ev, ignore_response, NULL);
	}
}

/* Carries out every action that is due, then sleeps until the core's next wakeup. */
static void pump(struct app *app)
{
	uint64_t now = uv_now(app->loop), next;
	struct core_action act;

	if (!app->core)
		return;
	if (!app->shutting_down)
		while (core_next_action(app->core, now, &act) == 0)
			run_action(app, &act);
	run_notices(app);
	next = core_next_wakeup(app->core, now);
	/* At least 1 ms, so that a wakeup that is already due cannot spin the loop. */
	if (next != UINT64_MAX && !app->shutting_down)
		uv_timer_start(&app->wake, on_wake, next > now + 1 ? next - now : 1, 0);
}

static void on_wake(uv_timer_t *t)
{
	pump(kc_container_of(t, struct app, wake));
}

/* Reflector handlers run inside curl's callbacks, where no new request may be
 * started: the pump is deferred to the next loop iteration. */
static void schedule_pump(struct app *app)
{
	if (!app->shutting_down)
		uv_timer_start(&app->wake, on_wake, 0, 0);
}

/* ---- reflectors ------------------------------------------------------------- */

static void check_synced(struct app *app)
{
	bool synced = kc_reflector_has_synced(app->pods) && kc_reflector_has_synced(app->nodes);

	if (synced && !app->synced) {
		app->synced = true;
		kc_log_info(1, "caches synced: %zu pods, %zu nodes", kc_store_count(kc_reflector_store(app->pods)),
			    kc_store_count(kc_reflector_store(app->nodes)));
		core_set_synced(app->core, true, uv_now(app->loop));
		metrics_gauge_set(app->metrics, "caches_synced", 1, NULL);
		schedule_pump(app);
	}
}

static void on_pod(struct kc_reflector *r, enum kc_delta d, const void *obj, const void *old, void *ud)
{
	struct app *app = ud;

	(void)r;
	core_pod_changed(app->core, (int)d, obj, old, uv_now(app->loop));
	schedule_pump(app);
}

static void on_node(struct kc_reflector *r, enum kc_delta d, const void *obj, const void *old, void *ud)
{
	struct app *app = ud;

	(void)r;
	core_node_changed(app->core, (int)d, obj, old, uv_now(app->loop));
	schedule_pump(app);
}

static void on_claim(struct kc_reflector *r, enum kc_delta d, const void *obj, const void *old, void *ud)
{
	struct app *app = ud;

	(void)r;
	core_claim_changed(app->core, (int)d, obj, old, uv_now(app->loop));
	schedule_pump(app);
}

static void on_slice(struct kc_reflector *r, enum kc_delta d, const void *obj, const void *old, void *ud)
{
	struct app *app = ud;

	(void)r;
	core_slice_changed(app->core, (int)d, obj, old, uv_now(app->loop));
	schedule_pump(app);
}

static void on_synced(struct kc_reflector *r, void *ud)
{
	(void)r;
	check_synced(ud);
}

static int start_reflector(struct app *app, const struct kc_type *type, kc_reflector_handler handler,
			   struct kc_reflector **ret)
{
	struct kc_reflector_options o = {0};
	int r;

	o.loop = app->loop;
	o.type = type;
	o.stall_timeout_ms = app->opts.stall_timeout_ms;
	o.decode = &app->decode;
	o.on_change = handler;
	o.on_synced = on_synced;
	o.userdata = app;
	r = kc_reflector_new(app->client, app->intern, &o, ret);
	if (r < 0)
		return r;
	return kc_reflector_start(*ret);
}

/* ---- policy ------------------------------------------------------------------ */

static void file_bytes_read(const char *path, struct file_bytes *ret)
{
	ret->data = NULL;
	ret->len = 0;
	ret->err = kc_read_file(path, POLICY_MAX_SIZE, &ret->data, &ret->len);
	ret->valid = true;
}

static void file_bytes_done(struct file_bytes *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool file_bytes_equal(const struct file_bytes *a, const struct file_bytes *b)
{
	return a->valid && b->valid && a->err == b->err && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Parses the policy from bytes already read; --dry-run forces dryRun on. */
static int parse_policy(struct app *app, const struct file_bytes *b, struct policy **ret, struct kc_error *err)
{
	int r;

	if (b->err < 0)
		return kc_error_set(err, b->err, "%s: cannot read the policy: %s", app->opts.policy_file,
				    b->err == -EFBIG ? "larger than 1 MiB" : strerror(-b->err));
	r = policy_parse(app->opts.policy_file, b->data, b->len, ret, err);
	if (r < 0)
		return r;
	if (app->opts.dry_run)
		(*ret)->dry_run = true;
	return 0;
}

static void reload_policy(struct app *app, const char *why)
{
	struct kc_error err = {{0}};
	struct policy *p = NULL;
	struct file_bytes b;

	file_bytes_read(app->opts.policy_file, &b);
	if (file_bytes_equal(&b, &app->policy_bytes)) {
		/* Same bytes (a touch, or the inotify event of our own read): nothing to do,
		 * but a later return to a rejected text must be reported again. */
		file_bytes_done(&app->rejected_bytes);
		file_bytes_done(&b);
		return;
	}
	if (parse_policy(app, &b, &p, &err) < 0) {
		/* Report a bad file once, not at every poll, until it changes again;
		 * SIGHUP always reports. */
		bool repeated = file_bytes_equal(&b, &app->rejected_bytes) && strcmp(why, "SIGHUP") != 0;

		file_bytes_done(&app->rejected_bytes);
		app->rejected_bytes = b;
		if (repeated)
			return;
		kc_log_error("policy reload (%s) failed, keeping the previous policy: %s", why, err.msg);
		metrics_counter_add(app->metrics, "policy_reloads_total", 1, "failure", NULL);
		return;
	}
	file_bytes_done(&app->rejected_bytes);
	core_set_policy(app->core, p, uv_now(app->loop));
	policy_free(app->policy);
	file_bytes_done(&app->policy_bytes);
	app->policy = p;
	app->policy_bytes = b;
	metrics_counter_add(app->metrics, "policy_reloads_total", 1, "success", NULL);
	kc_log_info(0, "policy reloaded from %s (%s)%s", app->opts.policy_file, why, p->dry_run ? ", dry run" : "");
	schedule_pump(app);
}

/* A cheap check that also catches the kubelet's symlink swap of a mounted
 * ConfigMap, which inotify on the directory can report before it completes. */
static void on_policy_poll(uv_timer_t *t)
{
	struct app *app = kc_container_of(t, struct app, policy_poll);
	struct file_bytes b;
	bool same;

	file_bytes_read(app->opts.policy_file, &b);
	same = file_bytes_equal(&b, &app->policy_bytes) || file_bytes_equal(&b, &app->rejected_bytes);
	if (file_bytes_equal(&b, &app->policy_bytes))
		file_bytes_done(&app->rejected_bytes);
	file_bytes_done(&b);
	if (!same)
		reload_policy(app, "file changed");
}

static void on_policy_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct app *app = kc_container_of(h, struct app, policy_watch);

	(void)filename;
	(void)events;
	if (status < 0)
		return;
	/* Let a burst of events (write, rename, symlink swap) settle first. */
	uv_timer_start(&app->policy_poll, on_policy_poll, 100, POLICY_POLL_MS);
}

static void watch_policy(struct app *app)
{
	char *dir = kc_xstrdup(app->opts.policy_file);
	char *slash = strrchr(dir, '/');
	int r;

	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	/* Watch the directory: a ConfigMap update replaces the ..data symlink, not the file. */
	r = uv_fs_event_init(app->loop, &app->policy_watch);
	if (r == 0) {
		app->policy_watch_active = true;
		r = uv_fs_event_start(&app->policy_watch, on_policy_fs_event, dir[0] ? dir : "/", 0);
	}
	if (r < 0)
		kc_log_warn("cannot watch %s for policy changes (%s); checking every %d ms instead", dir, uv_strerror(r),
			    POLICY_POLL_MS);
	free(dir);
	uv_timer_start(&app->policy_poll, on_policy_poll, POLICY_POLL_MS, POLICY_POLL_MS);
}

/* ---- leader election --------------------------------------------------------- */

static void set_active(struct app *app, bool active)
{
	app->leading = active;
	metrics_gauge_set(app->metrics, "leader", active ? 1 : 0, NULL);
	if (app->core)
		core_set_active(app->core, active, uv_now(app->loop));
	schedule_pump(app);
}

static void on_started_leading(void *ud)
{
	struct app *app = ud;

	kc_log_info(0, "became leader (identity %s): evictions enabled", app->identity);
	set_active(app, true);
}

static void on_stopped_leading(void *ud)
{
	struct app *app = ud;

	if (!app->leading)
		return;
	kc_log_warn("lost leadership: evictions stopped");
	set_active(app, false);
}

/* ---- metrics and probes ------------------------------------------------------- */

/* Copies the core's gauges and the reflectors' counters into the registry. */
static void refresh_metrics(struct app *app)
{
	struct kc_reflector *rs[] = {app->pods, app->nodes, app->claims, app->slices};
	const struct core_stats *st;

	if (!app->core)
		return;
	st = core_stats(app->core);
	metrics_gauge_set(app->metrics, "pods_bound_to_unhealthy_devices", (double)st->unhealthy_pods, NULL);
	metrics_gauge_set(app->metrics, "circuit_breaker_open", st->breaker_open ? 1 : 0, NULL);
	/* A resource that is healthy again must read 0, not vanish or keep its old value. */
	for (size_t i = 0; i < KC_ARRAY_SIZE(app->seen_resources) && app->seen_resources[i]; i++)
		metrics_gauge_set(app->metrics, "unhealthy_devices", 0, app->seen_resources[i], NULL);
	for (size_t i = 0; i < st->n_unhealthy_devices; i++) {
		size_t j = 0;

		metrics_gauge_set(app->metrics, "unhealthy_devices", (double)st->unhealthy_devices[i].count,
				  st->unhealthy_devices[i].resource, NULL);
		while (j < CORE_MAX_RESOURCES && app->seen_resources[j] &&
		       strcmp(app->seen_resources[j], st->unhealthy_devices[i].resource) != 0)
			j++;
		if (j < CORE_MAX_RESOURCES && !app->seen_resources[j])
			app->seen_resources[j] = kc_xstrdup(st->unhealthy_devices[i].resource);
	}
	if (st->held_by_limit > app->seen_held) {
		metrics_counter_add(app->metrics, "evictions_total", (double)(st->held_by_limit - app->seen_held),
				    "held_by_limit", "any", NULL);
		app->seen_held = st->held_by_limit;
	}
	for (size_t i = 1; i < PLANNER_SKIP_COUNT; i++) {
		if (st->skipped[i] > app->seen_skipped[i])
			metrics_counter_add(app->metrics, "pods_not_evicted_total",
					    (double)(st->skipped[i] - app->seen_skipped[i]), planner_skip_name(i), NULL);
		app->seen_skipped[i] = st->skipped[i];
	}
	for (size_t i = 0; i < KC_ARRAY_SIZE(rs); i++) {
		const struct kc_reflector_stats *rst;
		const char *res;

		if (!rs[i])
			continue;
		rst = kc_reflector_stats(rs[i]);
		res = kc_reflector_type(rs[i])->resource;
		if (rst->watch_restarts > app->seen_restarts[i])
			metrics_counter_add(app->metrics, "watch_restarts_total",
					    (double)(rst->watch_restarts - app->seen_restarts[i]), res, NULL);
		if (rst->relists > app->seen_relists[i])
			metrics_counter_add(app->metrics, "relists_total", (double)(rst->relists - app->seen_relists[i]),
					    res, NULL);
		app->seen_restarts[i] = rst->watch_restarts;
		app->seen_relists[i] = rst->relists;
	}
}

static void on_metrics_timer(uv_timer_t *t)
{
	refresh_metrics(kc_container_of(t, struct app, metrics_timer));
}

static bool is_ready(void *ud, char *reason, size_t size)
{
	struct app *app = ud;

	if (!app->policy) {
		snprintf(reason, size, "policy not loaded");
		return false;
	}
	if (!app->synced) {
		snprintf(reason, size, "caches not synced");
		return false;
	}
	return true;
}

/* ---- shutdown ------------------------------------------------------------------ */

static void close_handle(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

/* The client is closed (every request answered): free what used it and close our own handles.
 * The loop then ends by itself once every close callback has run. */
static void on_client_closed(void *ud)
{
	struct app *app = ud;
	struct kc_reflector **rs[] = {&app->pods, &app->nodes, &app->claims, &app->slices};

	app->client = NULL;
	app->core = core_free(app->core);
	for (size_t i = 0; i < KC_ARRAY_SIZE(rs); i++)
		if (*rs[i]) {
			kc_reflector_free(*rs[i]);
			*rs[i] = NULL;
		}
	close_handle((uv_handle_t *)&app->wake);
	close_handle((uv_handle_t *)&app->policy_poll);
	close_handle((uv_handle_t *)&app->metrics_timer);
	close_handle((uv_handle_t *)&app->shutdown_timer);
	close_handle((uv_handle_t *)&app->sig_term);
	close_handle((uv_handle_t *)&app->sig_int);
	close_handle((uv_handle_t *)&app->sig_hup);
	if (app->policy_watch_active)
		close_handle((uv_handle_t *)&app->policy_watch);
}

static void finish_shutdown(struct app *app)
{
	uv_timer_stop(&app->shutdown_timer);
	if (app->pods)
		kc_reflector_stop(app->pods);
	if (app->nodes)
		kc_reflector_stop(app->nodes);
	if (app->claims)
		kc_reflector_stop(app->claims);
	if (app->slices)
		kc_reflector_stop(app->slices);
	uv_timer_stop(&app->metrics_timer);
	if (app->http)
		httpserver_close(app->http, NULL, NULL);
	app->http = NULL;
	if (app->client)
		kc_client_close(app->client, on_client_closed, app);
	else
		on_client_closed(app);
}

static void on_lease_released(void *ud)
{
	finish_shutdown(ud);
}

/* Once the in-flight requests are done (or the shutdown timeout passed): release the lease, then close. */
static void finish(struct app *app)
{
	if (app->leader) {
		struct leader *l = app->leader;

		/* leader_stop frees the elector; done runs once the release is answered. */
		app->leader = NULL;
		leader_stop(l, true, on_lease_released, app);
	} else
		finish_shutdown(app);
}

static void on_shutdown_poll(uv_timer_t *t)
{
	struct app *app = kc_container_of(t, struct app, shutdown_timer);
	uint64_t waited = uv_now(app->loop) - app->shutdown_started_ms;

	if (app->in_flight > 0 && waited < app->opts.shutdown_timeout_ms)
		return;
	/* Requests still in flight are cancelled when the client closes; their
	 * callbacks still run and report to the core. */
	if (app->in_flight > 0)
		kc_log_warn("shutdown: %u requests still in flight after %llu ms; exiting anyway", app->in_flight,
			    (unsigned long long)app->opts.shutdown_timeout_ms);
	uv_timer_stop(t);
	finish(app);
}

static void start_shutdown(struct app *app, const char *why)
{
	if (app->shutting_down)
		return;
	app->shutting_down = true;
	kc_log_info(0, "shutting down (%s): no new evictions; waiting for %u in-flight requests", why,
		    app->in_flight);
	uv_timer_stop(&app->wake);
	uv_timer_stop(&app->policy_poll);
	if (app->policy_watch_active)
		uv_fs_event_stop(&app->policy_watch);
	uv_signal_stop(&app->sig_hup);
	uv_signal_stop(&app->sig_term);
	uv_signal_stop(&app->sig_int);
	if (app->core)
		core_set_active(app->core, false, uv_now(app->loop));
	app->shutdown_started_ms = uv_now(app->loop);
	uv_timer_start(&app->shutdown_timer, on_shutdown_poll, 0, 100);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct app *app = s->data;

	if (signum == SIGHUP)
		reload_policy(app, "SIGHUP");
	else
		start_shutdown(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start-up ------------------------------------------------------------------- */

static char *make_identity(void)
{
	char host[256] = "unknown";
	unsigned char rnd[4] = {0};

	gethostname(host, sizeof(host) - 1);
	uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL);
	return kc_xasprintf("%s_%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3]);
}

static int start_servers(struct app *app, struct kc_error *err)
{
	struct httpserver_options o = {0};
	int r;

	o.metrics_address = app->opts.metrics_addr;
	o.probe_address = app->opts.probe_addr;
	o.metrics = app->metrics;
	o.ready = is_ready;
	o.userdata = app;
	r = httpserver_new(app->loop, &o, &app->http, err);
	if (r < 0)
		return r;
	if (httpserver_metrics_port(app->http) > 0)
		kc_log_info(1, "serving metrics on port %d", httpserver_metrics_port(app->http));
	if (httpserver_probe_port(app->http) > 0)
		kc_log_info(1, "serving probes on port %d", httpserver_probe_port(app->http));
	return 0;
}

int main(int argc, char **argv)
{
	struct app app_storage, *app = &app_storage;
	struct kc_client_options copts = {0};
	struct kc_error err = {{0}};
	uv_loop_t loop;
	int r;

	memset(app, 0, sizeof(*app));
	signal(SIGPIPE, SIG_IGN);
	if (options_parse(argc, argv, &app->opts, &err) < 0) {
		fprintf(stderr, "device-descheduler: %s\n", err.msg);
		return 2;
	}
	if (app->opts.help) {
		options_usage(stdout);
		return 0;
	}
	if (app->opts.version) {
		printf("device-descheduler %s\n", DD_VERSION);
		return 0;
	}
	kc_log_setup(app->opts.verbosity, app->opts.log_format, stderr);
	file_bytes_read(app->opts.policy_file, &app->policy_bytes);
	if (parse_policy(app, &app->policy_bytes, &app->policy, &err) < 0) {
		kc_log_error("invalid policy: %s", err.msg);
		r = 2;
		goto free_policy;
	}
	if (kc_config_load(app->opts.kubeconfig, app->opts.context, &app->cfg, &err) < 0) {
		kc_log_error("%s", err.msg);
		r = 1;
		goto free_policy;
	}
	kc_log_info(1, "device-descheduler %s: API server %s (%s)%s", DD_VERSION, app->cfg.server, app->cfg.source,
		    app->policy->dry_run ? ", dry run" : "");

	r = uv_loop_init(&loop);
	if (r < 0) {
		kc_log_error("uv_loop_init: %s", uv_strerror(r));
		r = 1;
		goto free_config;
	}
	app->loop = &loop;
	app->identity = make_identity();
	uv_timer_init(app->loop, &app->wake);
	uv_timer_init(app->loop, &app->policy_poll);
	uv_timer_init(app->loop, &app->shutdown_timer);
	uv_timer_init(app->loop, &app->metrics_timer);
	uv_signal_init(app->loop, &app->sig_term);
	uv_signal_init(app->loop, &app->sig_int);
	uv_signal_init(app->loop, &app->sig_hup);
	app->sig_term.data = app->sig_int.data = app->sig_hup.data = app;
	app->metrics = metrics_new();
	{
		static const char *const reason_label[] = {"reason", NULL};

		metrics_register(app->metrics, METRICS_COUNTER, "pods_not_evicted_total",
				 "Pods bound to an unhealthy device that a filter kept from eviction, by reason.",
				 reason_label, NULL, 0);
	}
	metrics_gauge_set(app->metrics, "build_info", 1, DD_VERSION, NULL);
	metrics_gauge_set(app->metrics, "caches_synced", 0, NULL);
	metrics_gauge_set(app->metrics, "leader", 0, NULL);
	metrics_gauge_set(app->metrics, "circuit_breaker_open", 0, NULL);
	copts.qps = app->opts.qps;
	copts.burst = app->opts.burst;
	copts.user_agent = "device-descheduler/" DD_VERSION;
	if (kc_client_new(app->loop, &app->cfg, &copts, &app->client, &err) < 0) {
		kc_log_error("%s", err.msg);
		app->client = NULL;
		r = 1;
		goto close_client;
	}
	kc_client_set_observer(app->client, metrics_api_request_observer, app->metrics);
	if (start_servers(app, &err) < 0) {
		kc_log_error("%s", err.msg);
		r = 1;
		goto close_client;
	}

	uv_signal_start(&app->sig_term, on_signal, SIGTERM);
	uv_signal_start(&app->sig_int, on_signal, SIGINT);
	uv_signal_start(&app->sig_hup, on_signal, SIGHUP);
	watch_policy(app);

	app->intern = kc_intern_new();
	app->decode.keep_annotations = keep_annotations;
	app->decode.max_message = 1024;
	/* The stores exist before the core; the reflectors fill them once started. */
	if ((r = start_reflector(app, &kc_type_pod, on_pod, &app->pods)) < 0 ||
	    (r = start_reflector(app, &kc_type_node, on_node, &app->nodes)) < 0 ||
	    (app->policy->dra && (r = start_reflector(app, &kc_type_resource_claim, on_claim, &app->claims)) < 0) ||
	    (app->policy->dra && (r = start_reflector(app, &kc_type_resource_slice, on_slice, &app->slices)) < 0)) {
		kc_log_error("cannot start the caches: %s", strerror(-r));
		r = 1;
		goto close_client;
	}
	app->core = core_new(app->policy, kc_reflector_store(app->pods), kc_reflector_store(app->nodes),
			     app->claims ? kc_reflector_store(app->claims) : NULL,
			     app->slices ? kc_reflector_store(app->slices) : NULL);
	/* Nobody evicts until it knows it may: the leader callback or the branch below says so. */
	core_set_active(app->core, false, uv_now(app->loop));
	uv_timer_start(&app->metrics_timer, on_metrics_timer, 1000, 1000);
	if (app->opts.leader_elect) {
		struct leader_options lo = {0};

		lo.name = app->opts.lease_name;
		lo.ns = app->opts.lease_namespace;
		lo.identity = app->identity;
		lo.lease_duration_ms = app->opts.lease_duration_ms;
		lo.renew_deadline_ms = app->opts.renew_deadline_ms;
		lo.retry_period_ms = app->opts.retry_period_ms;
		lo.on_started_leading = on_started_leading;
		lo.on_stopped_leading = on_stopped_leading;
		lo.userdata = app;
		if (leader_new(app->loop, app->client, &lo, &app->leader, &err) < 0 || leader_start(app->leader) < 0) {
			kc_log_error("leader election: %s", err.msg);
			r = 1;
			goto close_client;
		}
	} else {
		set_active(app, true);
	}

	uv_run(app->loop, UV_RUN_DEFAULT);
	r = app->exit_code;
	goto done;

close_client:
	/* Start-up failed after the loop was running handles: close them all. */
	start_shutdown(app, "start-up failed");
	app->exit_code = r;
	uv_run(app->loop, UV_RUN_DEFAULT);
done:
	for (size_t i = 0; i < KC_ARRAY_SIZE(app->seen_resources); i++)
		free(app->seen_resources[i]);
	app->intern = kc_intern_free(app->intern);
	metrics_free(app->metrics);
	if (uv_loop_close(app->loop) != 0)
		kc_log_warn("event loop closed with handles still open");
	free(app->identity);
free_config:
	kc_config_done(&app->cfg);
free_policy:
	policy_free(app->policy);
	file_bytes_done(&app->policy_bytes);
	file_bytes_done(&app->rejected_bytes);
	kc_log_info(1, "exiting with status %d", r);
	return r;
}
