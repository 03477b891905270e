/*
 * device-descheduler: the daemon.  This file parses flags, loads the policy
 * and the client configuration, and wires the parts together on one libuv
 * loop: the reflectors for pods, nodes, ResourceClaims, ResourceSlices and
 * the DeviceTaintRules of others feed their changes to the core; the action runner (actions.c) carries out the
 * core's actions; the policy watcher (policy_watch.c) reloads the policy; the
 * metrics refresh (metrics_refresh.c) copies counters once a second; leader
 * election, probes and signals decide when we act and when we stop.
 *
 * Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for bad flags or a
 * bad policy (before any request is sent), 1 for other start-up failures.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "actions.h"
#include "api_discovery.h"
#include "core.h"
#include "dd_version.h"
#include "explain_cmd.h"
#include "simulate_cmd.h"
#include "httpserver.h"
#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_reflector.h"
#include "kc_util.h"
#include "leader.h"
#include "metrics.h"
#include "metrics_refresh.h"
#include "procstat.h"
#include "options.h"
#include "policy_watch.h"

#ifndef DD_VERSION
#define DD_VERSION "0.1.0"
#endif

struct app {
	uv_loop_t *loop;
	struct options opts;
	struct policy_watch *policy;
	struct kc_config cfg;
	struct kc_client *client;
	struct kc_intern *intern;
	struct kc_decode_opts decode;
	struct kc_reflector *pods, *nodes, *claims, *slices;
	struct kc_reflector *rules; /* DeviceTaintRules of others (never ours), with the DRA reflectors */
	/* The policy whose device rules decide which pods the cache keeps (the current one). */
	const struct policy *pod_policy;
	/* The label keys its selector reads: the only labels the caches keep (decode.keep_labels). */
	const char **label_keys;
	struct api_discovery *discovery; /* which DRA versions the server serves */
	const char *claims_version, *slices_version, *rules_version; /* of the running DRA reflectors */
	bool dra_warned; /* the policy enables DRA on a cluster without it: said once */
	struct core *core;
	struct actions *actions;
	struct leader *leader;
	struct metrics *metrics;
	struct metrics_refresh *refresh;
	struct httpserver *http;
	uv_timer_t metrics_timer; /* refreshes gauges from the core and the reflectors */
	char *identity;

	uv_timer_t wake; /* the core's next wakeup, and deferred pumps */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t shutdown_timer;

	bool synced;
	bool leading;
	bool shutting_down;
	uint64_t shutdown_started_ms;
	int exit_code;
};

static void schedule_pump(struct app *app);
static void start_shutdown(struct app *app, const char *why);


/* ---- the core and its actions ------------------------------------------------ */

static void on_wake(uv_timer_t *t);
static bool may_write(void *ud);

/* How soon the pump looks again while our lease is overdue for renewal. */
#define STALE_LEASE_RECHECK_MS 100

/* Carries out every action that is due, then sleeps until the core's next wakeup. */
static void pump(struct app *app)
{
	uint64_t now = uv_now(app->loop), next;

	if (!app->actions)
		return;
	if (app->leading && !may_write(app)) {
		/* The lease is overdue for renewal (a pause): choose nothing until the
		 * renewal succeeds or the deadline timer ends our leadership. */
		if (!app->shutting_down)
			uv_timer_start(&app->wake, on_wake, STALE_LEASE_RECHECK_MS, 0);
		return;
	}
	next = actions_pump(app->actions, !app->shutting_down, now);
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

static void on_action_done(void *ud)
{
	schedule_pump(ud);
}

/* Only the holder of a fresh lease writes (or everybody without leader election). */
static bool may_write(void *ud)
{
	struct app *app = ud;

	return !app->leader || leader_is_leader(app->leader);
}

static uint64_t loop_now(void *ud)
{
	struct app *app = ud;

	return uv_now(app->loop);
}

/* ---- reflectors ------------------------------------------------------------- */

static void check_synced(struct app *app)
{
	bool synced = kc_reflector_has_synced(app->pods) && kc_reflector_has_synced(app->nodes);

	/* DRA signals wait for both DRA caches: claims seen before the slices that make their nodes
	 * device nodes would look like every device node failing at once (see core_set_dra_synced). */
	if (app->claims && kc_reflector_has_synced(app->claims) && kc_reflector_has_synced(app->slices)) {
		core_set_dra_synced(app->core, true, uv_now(app->loop));
		schedule_pump(app);
	}
	if (synced && !app->synced) {
		app->synced = true;
		kc_log_info(1, "caches synced: %zu pods with devices (%llu others not cached), %zu nodes",
			    kc_store_count(kc_reflector_store(app->pods)),
			    (unsigned long long)kc_reflector_stats(app->pods)->ignored,
			    kc_store_count(kc_reflector_store(app->nodes)));
		core_set_synced(app->core, true, uv_now(app->loop));
		metrics_gauge_set(app->metrics, "caches_synced", 1, NULL);
		schedule_pump(app);
	}
}

/* The core's clocks: the loop's monotonic time, and the wall clock beside it (a claim's
 * tolerationSeconds counts from a taint's timeAdded, a wall-clock time). */
static uint64_t core_now(struct app *app)
{
	uint64_t now = uv_now(app->loop);

	if (app->core)
		core_set_wall_clock(app->core, kc_wall_ms(), now);
	return now;
}

/* Every watched type: the store was updated, tell the core what changed. */
static void on_change(struct kc_reflector *r, enum kc_delta d, const void *obj, const void *old, void *ud)
{
	struct app *app = ud;
	const struct kc_type *t = kc_reflector_type(r);
	uint64_t now = core_now(app);

	if (t == &kc_type_pod)
		core_pod_changed(app->core, (int)d, obj, old, now);
	else if (t == &kc_type_node)
		core_node_changed(app->core, (int)d, obj, old, now);
	else if (t == &kc_type_resource_claim)
		core_claim_changed(app->core, (int)d, obj, old, now);
	else if (t == &kc_type_resource_slice)
		core_slice_changed(app->core, (int)d, obj, old, now);
	else if (t == &kc_type_device_taint_rule)
		core_rule_changed(app->core, (int)d, obj, old, now);
	schedule_pump(app);
}

static void on_synced(struct kc_reflector *r, void *ud)
{
	(void)r;
	check_synced(ud);
}

/*
 * The pod cache keeps only pods that hold a device under the policy's device
 * rules: only they can ever be evicted, and at the largest clusters most pods
 * hold none.  The reflector counts the others without storing them.
 */
static bool keep_pod(const void *obj, void *ud)
{
	struct app *app = ud;

	return health_pod_holds_device(app->pod_policy, obj);
}

/* Within a kept pod, the decoder keeps only the containers and statuses of devices under the
 * same policy (kc_decode_opts.is_device); a reload that widens it relists the pods. */
static bool is_device(const char *resource, void *ud)
{
	struct app *app = ud;

	return policy_is_device_resource(app->pod_policy, resource);
}

/* A node keeps only the conditions that a rule of the same policy reads; a reload that reads a
 * new type relists the nodes. */
static bool keep_condition(const char *type, void *ud)
{
	struct app *app = ud;

	return policy_reads_node_condition(app->pod_policy, type);
}

/* A LIST or WATCH of a DRA resource got 404: the version may be gone, so discovery looks again. */
static void on_reflector_error(struct kc_reflector *r, long http_status, void *ud)
{
	struct app *app = ud;
	const struct kc_type *t = kc_reflector_type(r);

	if (http_status == 404 &&
	    (t == &kc_type_resource_claim || t == &kc_type_resource_slice || t == &kc_type_device_taint_rule))
		api_discovery_refresh(app->discovery, "HTTP 404 from a DRA LIST or WATCH");
}

/* path: NULL for the type's own, or the DRA version discovery chose. */
static int start_reflector_at(struct app *app, const struct kc_type *type, const char *path,
			      struct kc_reflector **ret)
{
	struct kc_reflector_options o = {0};
	int r;

	o.loop = app->loop;
	o.type = type;
	o.path = path;
	o.on_error = on_reflector_error;
	/* Streaming initial sync where the server serves it; paged LIST where it does not. */
	o.watch_list = true;
	o.protobuf = app->opts.protobuf;
	if (type == &kc_type_pod)
		o.keep = keep_pod;
	/* Our own fences are no signal: the server leaves them out of the list and the watch. */
	if (type == &kc_type_device_taint_rule)
		o.label_selector = QUARANTINE_FOREIGN_RULES;
	o.stall_timeout_ms = app->opts.stall_timeout_ms;
	o.decode = &app->decode;
	o.on_change = on_change;
	o.on_synced = on_synced;
	o.userdata = app;
	r = kc_reflector_new(app->client, app->intern, &o, ret);
	if (r < 0)
		return r;
	return kc_reflector_start(*ret);
}

static int start_reflector(struct app *app, const struct kc_type *type, struct kc_reflector **ret)
{
	return start_reflector_at(app, type, NULL, ret);
}

static int start_dra_reflector(struct app *app, const struct kc_type *type, const char *version,
			       struct kc_reflector **ret)
{
	char *path = kc_xasprintf("/apis/%s/%s/%s", KC_DRA_GROUP, version, type->resource);
	int r = start_reflector_at(app, type, path, ret);

	free(path);
	return r;
}

/* ---- policy ------------------------------------------------------------------ */

/* Watches the DeviceTaintRules of others in version (NULL: stops), moving when the version changes. */
static void set_rules(struct app *app, const char *version)
{
	int r;

	if (app->rules && version && strcmp(app->rules_version, version) == 0)
		return;
	if (app->rules) {
		core_set_rule_store(app->core, NULL, core_now(app));
		kc_reflector_free(app->rules);
		app->rules = NULL;
		if (!version)
			kc_log_info(0, "no longer watching DeviceTaintRules");
	}
	if (!version)
		return;
	if ((r = start_dra_reflector(app, &kc_type_device_taint_rule, version, &app->rules)) < 0) {
		kc_log_error("the DeviceTaintRule cache cannot start: %s", strerror(-r));
		kc_reflector_free(app->rules);
		app->rules = NULL;
		return;
	}
	app->rules_version = version;
	core_set_rule_store(app->core, kc_reflector_store(app->rules), core_now(app));
	kc_log_info(0, "watching DeviceTaintRules (%s/%s) but ours", KC_DRA_GROUP, version);
}

/*
 * Watches ResourceClaims and ResourceSlices when the policy wants DRA (on:
 * devices.dra) and discovery found the API served, in the version it chose;
 * stops them when either says no, and restarts them when the version
 * changes.  Called after a policy reload and after a discovery change.
 */
static void set_dra(struct app *app, bool on)
{
	const struct kc_dra_versions *v = api_discovery_dra(app->discovery);
	bool served = v->claims && v->slices;
	int r;

	if (on && !served && api_discovery_known(app->discovery) && policy_watch_policy(app->policy)->dra_explicit &&
	    !app->dra_warned) {
		kc_log_warn("the policy enables DRA signals, but this cluster does not serve resource.k8s.io: "
			    "they stay off until it does");
		app->dra_warned = true;
	}
	if (served)
		app->dra_warned = false;
	on = on && served;
	set_rules(app, on ? v->taint_rules : NULL);
	if (on == (app->claims != NULL) &&
	    (!on || (strcmp(app->claims_version, v->claims) == 0 && strcmp(app->slices_version, v->slices) == 0)))
		return;
	if (app->claims) {
		core_set_dra_stores(app->core, NULL, NULL, uv_now(app->loop));
		kc_reflector_free(app->claims);
		kc_reflector_free(app->slices);
		app->claims = app->slices = NULL;
		if (!on)
			kc_log_info(0, "no longer watching ResourceClaims and ResourceSlices (%s)",
				    served ? "devices.dra is off" : "resource.k8s.io is not served");
	}
	if (!on)
		return;
	if ((r = start_dra_reflector(app, &kc_type_resource_claim, v->claims, &app->claims)) < 0 ||
	    (r = start_dra_reflector(app, &kc_type_resource_slice, v->slices, &app->slices)) < 0) {
		kc_log_error("the claim and slice caches cannot start: %s", strerror(-r));
		kc_reflector_free(app->claims);
		kc_reflector_free(app->slices);
		app->claims = app->slices = NULL;
		return;
	}
	app->claims_version = v->claims;
	app->slices_version = v->slices;
	core_set_dra_stores(app->core, kc_reflector_store(app->claims), kc_reflector_store(app->slices),
			    uv_now(app->loop));
	kc_log_info(0, "watching ResourceClaims (%s/%s) and ResourceSlices (%s/%s)", KC_DRA_GROUP, v->claims,
		    KC_DRA_GROUP, v->slices);
}

/* Discovery chose other DRA versions (or found DRA served or gone). */
static void on_discovery_changed(const struct kc_dra_versions *v, void *ud)
{
	struct app *app = ud;

	if (app->actions)
		actions_set_rule_version(app->actions, v->taint_rules);
	if (!app->shutting_down && app->core)
		set_dra(app, policy_watch_policy(app->policy)->dra);
}

static void on_policy_reloaded(const struct policy *p, const char *why, void *ud)
{
	struct app *app = ud;
	bool widened = policy_devices_widened(app->pod_policy, p);
	bool new_labels = policy_label_keys_widened(app->pod_policy, p);
	bool new_conditions = policy_node_conditions_widened(app->pod_policy, p);

	(void)why;
	app->pod_policy = p;
	/* Swapped before the old policy, whose keys the old array points into, is freed. */
	free(app->label_keys);
	app->label_keys = policy_label_keys_new(p);
	app->decode.keep_labels = app->label_keys;
	core_set_policy(app->core, p, uv_now(app->loop));
	if ((widened || new_labels) && app->pods && !app->shutting_down) {
		/* Pods the cache turned away may hold a device now, and the cached ones lack the labels the
		 * new selector reads: only a new LIST brings them. */
		kc_log_info(0, "policy reload %s: relisting pods",
			    widened && new_labels ? "widened the device resources and reads new pod labels"
			    : widened	       ? "widened the device resources"
					       : "reads new pod labels");
		kc_reflector_relist(app->pods);
	}
	if (new_conditions && app->nodes && !app->shutting_down) {
		/* The cached nodes lack the conditions of the new types. */
		kc_log_info(0, "policy reload reads new node condition types: relisting nodes");
		kc_reflector_relist(app->nodes);
	}
	if (!app->shutting_down)
		set_dra(app, p->dra);
	schedule_pump(app);
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

static void on_metrics_timer(uv_timer_t *t)
{
	struct app *app = kc_container_of(t, struct app, metrics_timer);
	struct kc_reflector *rs[] = {app->pods, app->nodes, app->claims, app->slices, app->rules};
	struct metrics_refresh_watch w[KC_ARRAY_SIZE(rs)] = {{0}};
	struct procstat ps;

	/* Every reflector's counters reach the registry (the rules' did not when the limit was 4). */
	_Static_assert(KC_ARRAY_SIZE(rs) <= METRICS_REFRESH_MAX_WATCHES, "metrics_refresh drops watches");

	if (procstat_read("/proc", &ps) == 0)
		procstat_update(app->metrics, &ps);
	if (!app->core)
		return;
	for (size_t i = 0; i < KC_ARRAY_SIZE(rs); i++) {
		if (!rs[i])
			continue;
		w[i].resource = kc_reflector_type(rs[i])->resource;
		w[i].watch_restarts = kc_reflector_stats(rs[i])->watch_restarts;
		w[i].relists = kc_reflector_stats(rs[i])->relists;
		w[i].cached = kc_store_count(kc_reflector_store(rs[i]));
		w[i].ignored = kc_reflector_stats(rs[i])->ignored;
		w[i].oversized = kc_reflector_stats(rs[i])->oversized;
	}
	metrics_refresh_run(app->refresh, core_stats(app->core), w, KC_ARRAY_SIZE(w));
}

/* The API server answered within `times` x (read idle + ping timeout): the client's health
 * probes keep a healthy connection answering at least every read-idle period. */
static bool api_answers(struct app *app, uint64_t times, char *reason, size_t size)
{
	uint64_t silent, bound;

	if (!app->client)
		return true;
	bound = times * kc_client_health_window_ms(app->client);
	silent = uv_now(app->loop) - kc_client_last_success_ms(app->client);
	if (silent <= bound)
		return true;
	snprintf(reason, size, "no answer from the API server for %llu s", (unsigned long long)(silent / 1000));
	return false;
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
	return api_answers(app, 2, reason, size);
}

/* Liveness: a client that has heard nothing from the API server for long (its health checks
 * close silent connections, so this means the server stays out of reach) is restarted. */
static bool is_live(void *ud, char *reason, size_t size)
{
	return api_answers(ud, 4, reason, size);
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
	struct kc_reflector **rs[] = {&app->pods, &app->nodes, &app->claims, &app->slices, &app->rules};

	app->client = NULL;
	app->discovery = api_discovery_free(app->discovery);
	if (app->actions)
		actions_set_core(app->actions, NULL);
	app->core = core_free(app->core);
	for (size_t i = 0; i < KC_ARRAY_SIZE(rs); i++)
		if (*rs[i]) {
			kc_reflector_free(*rs[i]);
			*rs[i] = NULL;
		}
	close_handle((uv_handle_t *)&app->wake);
	policy_watch_close(app->policy);
	close_handle((uv_handle_t *)&app->metrics_timer);
	close_handle((uv_handle_t *)&app->shutdown_timer);
	close_handle((uv_handle_t *)&app->sig_term);
	close_handle((uv_handle_t *)&app->sig_int);
	close_handle((uv_handle_t *)&app->sig_hup);
}

static void finish_shutdown(struct app *app)
{
	uv_timer_stop(&app->shutdown_timer);
	api_discovery_stop(app->discovery);
	if (app->pods)
		kc_reflector_stop(app->pods);
	if (app->nodes)
		kc_reflector_stop(app->nodes);
	if (app->claims)
		kc_reflector_stop(app->claims);
	if (app->slices)
		kc_reflector_stop(app->slices);
	if (app->rules)
		kc_reflector_stop(app->rules);
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
	unsigned in_flight = app->actions ? actions_in_flight(app->actions) : 0;

	if (in_flight > 0 && waited < app->opts.shutdown_timeout_ms)
		return;
	/* Requests still in flight are cancelled when the client closes; their
	 * callbacks still run and report to the core. */
	if (in_flight > 0)
		kc_log_warn("shutdown: %u requests still in flight after %llu ms; exiting anyway", in_flight,
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
		    app->actions ? actions_in_flight(app->actions) : 0);
	uv_timer_stop(&app->wake);
	policy_watch_stop(app->policy);
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
		policy_watch_reload(app->policy, "SIGHUP");
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
	o.live = is_live;
	o.userdata = app;
	r = httpserver_new(app->loop, &o, &app->http, err);
	if (r < 0)
		return r;
	/* httpserver logs each endpoint it serves, once. */
	return 0;
}

int main(int argc, char **argv)
{
	struct app app_storage, *app = &app_storage;
	struct kc_client_options copts = {0};
	struct kc_error err = {{0}};
	uv_loop_t loop;
	struct procstat ps;
	int r;

	memset(app, 0, sizeof(*app));
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "explain") == 0)
		return explain_cmd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "simulate") == 0)
		return simulate_cmd_main(argc - 1, argv + 1);
	if (options_parse(argc, argv, &app->opts, &err) < 0) {
		fprintf(stderr, "device-descheduler: %s\n", err.msg);
		return 2;
	}
	if (app->opts.help) {
		options_usage(stdout);
		return 0;
	}
	if (app->opts.version) {
		printf("device-descheduler %s (commit %s)\n", DD_VERSION, DD_GIT_COMMIT);
		return 0;
	}
	kc_log_setup(app->opts.verbosity, app->opts.log_format, stderr);
	if (policy_watch_new(app->opts.policy_file, app->opts.dry_run, &app->policy, &err) < 0) {
		kc_log_error("invalid policy: %s", err.msg);
		r = 2;
		goto free_policy;
	}
	if (kc_config_load(app->opts.kubeconfig, app->opts.context, &app->cfg, &err) < 0) {
		kc_log_error("%s", err.msg);
		r = 1;
		goto free_policy;
	}
	kc_log_info(1, "device-descheduler %s (commit %s): API server %s (%s)%s", DD_VERSION, DD_GIT_COMMIT,
		    app->cfg.server, app->cfg.source,
		    policy_watch_policy(app->policy)->dry_run ? ", dry run" : "");

	r = uv_loop_init(&loop);
	if (r < 0) {
		kc_log_error("uv_loop_init: %s", uv_strerror(r));
		r = 1;
		goto free_config;
	}
	app->loop = &loop;
	app->identity = make_identity();
	uv_timer_init(app->loop, &app->wake);
	uv_timer_init(app->loop, &app->shutdown_timer);
	uv_timer_init(app->loop, &app->metrics_timer);
	uv_signal_init(app->loop, &app->sig_term);
	uv_signal_init(app->loop, &app->sig_int);
	uv_signal_init(app->loop, &app->sig_hup);
	app->sig_term.data = app->sig_int.data = app->sig_hup.data = app;
	app->metrics = metrics_new();
	app->refresh = metrics_refresh_new(app->metrics);
	/* Registered and read at once: the first scrape already shows them. */
	procstat_register(app->metrics);
	if (procstat_read("/proc", &ps) == 0)
		procstat_update(app->metrics, &ps);
	metrics_gauge_set(app->metrics, "build_info", 1, DD_VERSION, NULL);
	metrics_gauge_set(app->metrics, "caches_synced", 0, NULL);
	metrics_gauge_set(app->metrics, "leader", 0, NULL);
	metrics_gauge_set(app->metrics, "circuit_breaker_open", 0, NULL);
	copts.qps = app->opts.qps;
	copts.burst = app->opts.burst;
	copts.read_idle_ms = app->opts.read_idle_ms;
	copts.ping_timeout_ms = app->opts.ping_timeout_ms;
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
	policy_watch_start(app->policy, app->loop, app->metrics, on_policy_reloaded, app);

	app->intern = kc_intern_new();
	app->decode.keep_annotations = core_keep_annotations;
	app->decode.max_message = 1024;
	app->decode.is_device = is_device;
	app->decode.device_userdata = app;
	app->decode.keep_condition = keep_condition;
	app->decode.condition_userdata = app;
	/* The stores exist before the core; the reflectors fill them once started.  The DRA
	 * reflectors wait for discovery, which says whether and in which version to watch. */
	app->pod_policy = policy_watch_policy(app->policy);
	app->label_keys = policy_label_keys_new(app->pod_policy);
	app->decode.keep_labels = app->label_keys;
	if ((r = start_reflector(app, &kc_type_pod, &app->pods)) < 0 ||
	    (r = start_reflector(app, &kc_type_node, &app->nodes)) < 0) {
		kc_log_error("cannot start the caches: %s", strerror(-r));
		r = 1;
		goto close_client;
	}
	app->core = core_new(policy_watch_policy(app->policy), kc_reflector_store(app->pods),
			     kc_reflector_store(app->nodes), NULL, NULL);
	core_now(app);
	{
		struct api_discovery_options dopts = {0};

		dopts.loop = app->loop;
		dopts.client = app->client;
		dopts.interval_ms = app->opts.discovery_interval_ms;
		dopts.on_change = on_discovery_changed;
		dopts.userdata = app;
		if ((r = api_discovery_new(&dopts, &app->discovery)) < 0) {
			kc_log_error("API discovery: %s", uv_strerror(r));
			r = 1;
			goto close_client;
		}
		api_discovery_start(app->discovery);
	}
	{
		struct actions_options ao = {0};

		ao.core = app->core;
		ao.metrics = app->metrics;
		ao.identity = app->identity;
		/* Cluster-wide notices go on our own pod, named by the downward API. */
		ao.pod_ns = getenv("POD_NAMESPACE");
		ao.pod_name = getenv("POD_NAME");
		ao.pod_uid = getenv("POD_UID");
		ao.send = actions_client_send;
		ao.sender = app->client;
		ao.now_ms = loop_now;
		ao.may_write = may_write;
		ao.on_done = on_action_done;
		ao.userdata = app;
		app->actions = actions_new(&ao);
	}
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
	app->actions = actions_free(app->actions);
	app->refresh = metrics_refresh_free(app->refresh);
	app->intern = kc_intern_free(app->intern);
	free(app->label_keys);
	app->label_keys = NULL;
	metrics_free(app->metrics);
	if (uv_loop_close(app->loop) != 0)
		kc_log_warn("event loop closed with handles still open");
	free(app->identity);
free_config:
	kc_config_done(&app->cfg);
free_policy:
	policy_watch_free(app->policy);
	kc_log_info(1, "exiting with status %d", r);
	return r;
}